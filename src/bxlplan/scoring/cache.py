"""A persistent cache of prepared baselines (:func:`bxlplan.scoring.prepare`).

A prepared context (street graph, origins with their population and income class,
facilities attached to the network, distances per origin and category, shortage zones)
takes 20-40 s to build and depends only on the input files and a few settings. It is
stored once per **key** and reused by every later run with the same inputs.

Key
    The sha256 of: the cache format; the data folder as given (the provenance names
    it); the distance switch; the content (sha256) of every file any catalog layer may
    read in the data folder (every candidate of ``files:`` and the facility sources'
    paths, present or absent, with their Shapefile and ``.provenance.json`` sidecars);
    the content of the catalog files (``layers/*.yaml`` and ``$BXLPLAN_LAYERS``
    additions) except those the preparation never reads (:data:`NOT_PREPARATION`);
    the scoring configuration **less** the keys that only score
    (:data:`SCORING_ONLY`: weights, rules, population floor, ...); and the content of a
    user population file. It is computed *before* anything is loaded (hashing the
    34 MB pack takes about 0.1 s). Changing weights or rules therefore reuses the
    entry: the assessment re-scores the stored indicators with the new configuration.

Entries
    One file per key, ``context-<key>.pickle``: a first line ``BXLPLAN-CACHE <format>``,
    a JSON header line (bxlplan version, fingerprint of the code that builds a context,
    versions of the libraries whose objects are pickled, key, payload size and sha256,
    creation time, data folder) and the pickled payload. On reading, an entry whose
    header does not match this bxlplan (another version or code, other library
    versions) is refused with a one-line warning and rebuilt; a truncated or corrupt
    entry (bad header, wrong size, wrong sha256, unpickling error) is reported in one
    line and rebuilt. Nothing in an entry is ever trusted without these checks.

Writes and concurrent runs
    An entry is written to a temporary file in the cache folder (mode 0600) and renamed
    over the entry's name only when complete (``os.replace``, atomic on POSIX). Two runs
    that miss the same key at once both build it and both rename; the last rename wins,
    and a reader always opens either the old complete file or the new complete one,
    never a partial one. No lock is needed for correctness: at worst the work is done
    twice. Temporary files of killed runs older than an hour are removed by later
    writes and by ``bxlplan cache clear``.

Security
    Unpickling runs code chosen by whoever wrote the file. Entries are therefore only
    read from a cache folder the user chose or the user's own platform cache folder,
    only when the entry file is owned by the current user and not writable by group or
    others, and only after the payload's sha256 matches the header's (a check against
    corruption, not against an attacker who can write the folder: ownership is the
    protection). Do not point ``--cache`` / ``BXLPLAN_CACHE`` at a folder others can
    write into.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import pickle
import platform
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import ConfigError
from ..loading.provenance import sha256_file

__all__ = [
    "CacheEntry",
    "NOT_PREPARATION",
    "SCORING_ONLY",
    "baseline_key",
    "cache_folder",
    "clear",
    "entries",
    "get_or_build",
    "read_entry",
    "write_entry",
]

log = logging.getLogger(__name__)

FORMAT = 1
MAGIC = b"BXLPLAN-CACHE"
PREFIX, SUFFIX = "context-", ".pickle"
_HEADER_MAX = 1 << 20

#: scoring keys that only turn indicators into scores: not part of the key
SCORING_ONLY = frozenset(
    {
        "weights",
        "rules",
        "population_floor",
        "landuse_unmapped_max",
        "income_surroundings_m",
        "social_housing_target",
        # re-derived from the stored pairs (scoring.access.with_thresholds); the
        # search limit they must stay within (access_search_factor) is in the key
        "thresholds",
    }
)
#: catalog files the preparation never reads (``scoring.yaml`` enters the key through
#: its preparation keys, :data:`SCORING_ONLY` aside)
NOT_PREPARATION = frozenset(
    {
        "scoring.yaml",
        "labels.yaml",
        "styles.yaml",
        "indicators.yaml",
        "scenario_defaults.yaml",
        "fetch.yaml",
    }
)
#: code whose change changes a prepared context (relative to the package)
_CODE = ("loading", "indicators", "scoring", "_yaml.py", "_version.py")
_SIDECARS = (".dbf", ".shx", ".prj", ".cpg")


# ------------------------------------------------------------------------ folder
def cache_folder(cache: str | os.PathLike[str] | bool | None = True) -> Path | None:
    """The cache folder ``cache`` stands for.

    Parameters
    ----------
    cache
        ``None`` or ``False``: no cache (returns None). ``True``: ``$BXLPLAN_CACHE``
        when set, else the platform's user cache folder (``platformdirs``, e.g.
        ``~/.cache/bxlplan`` on Linux). A path: that folder.

    Returns
    -------
    Path or None
        The folder (not created here), or None when no cache is used.

    Raises
    ------
    ConfigError
        When the folder exists and is not a folder.

    Examples
    --------
    >>> cache_folder(None) is None, cache_folder(False) is None
    (True, True)
    >>> cache_folder("/tmp/bxlplan-cache")
    PosixPath('/tmp/bxlplan-cache')
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as fh:
    ...     cache_folder(fh.name)
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: --cache ... is a file, not a folder: give a folder for
    the baseline cache (or --no-cache)
    """
    if cache is None or cache is False:
        return None
    if cache is True:
        env = os.environ.get("BXLPLAN_CACHE", "").strip()
        if env:
            folder, what = Path(env).expanduser(), "BXLPLAN_CACHE"
        else:
            import platformdirs

            folder, what = Path(platformdirs.user_cache_dir("bxlplan")), "cache"
    else:
        folder, what = Path(cache).expanduser(), "--cache"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"{what} {folder} is a file, not a folder: give a folder for the baseline "
            "cache (or --no-cache)"
        )
    return folder


# --------------------------------------------------------------------------- key
def _file_state(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def _with_sidecars(path: Path) -> list[Path]:
    out = [path]
    if path.suffix.lower() == ".shp":
        out += [path.with_suffix(s) for s in _SIDECARS]
    out.append(path.with_name(path.name + ".provenance.json"))
    return out


def _input_files() -> list[str]:
    """Every path (relative to the data folder) a layer of the catalog may read."""
    from ..loading.catalog import catalog

    rel: set[str] = set()
    for spec in catalog().values():
        rel.update(str(entry["path"]) for entry in spec.files if "path" in entry)
        for src in (spec.raw.get("sources") or {}).values():
            if isinstance(src, dict) and "path" in src:
                rel.add(str(src["path"]))
    return sorted(rel)


def _catalog_files() -> dict[str, str]:
    from ..loading.catalog import catalog_dirs

    out = {}
    names = sorted({p.name for d in catalog_dirs() for p in d.glob("*.yaml")})
    for name in names:
        if name in NOT_PREPARATION:
            continue
        path = next(d / name for d in reversed(catalog_dirs()) if (d / name).is_file())
        out[name] = sha256_file(path)
    return out


def _code_fingerprint() -> str:
    """sha256 of the source of the modules that build a context."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for part in _CODE:
        base = root / part
        files = sorted(base.rglob("*.py")) if base.is_dir() else [base]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(root)).encode() + b"\0")
                h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _environment() -> dict[str, str]:
    """Versions of Python and of the libraries whose objects a context pickles."""
    import geopandas
    import numpy
    import pandas
    import pyproj
    import scipy
    import shapely

    return {
        "python": platform.python_version(),
        **{
            m.__name__: m.__version__
            for m in (numpy, pandas, geopandas, shapely, scipy, pyproj)
        },
    }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def baseline_key(
    data: Path,
    config: dict[str, Any],
    *,
    distance: str = "network",
    population: str | os.PathLike[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The cache key of a preparation, computed before anything is loaded.

    Parameters
    ----------
    data
        The data folder, as given to :func:`~bxlplan.scoring.prepare`.
    config
        The validated scoring configuration.
    distance
        The distance switch (``"network"`` or ``"euclidean"``).
    population
        A user population file, or None.

    Returns
    -------
    key : str
        64 hexadecimal digits.
    parts : dict
        What the key was made from (shown by ``bxlplan cache info`` and ``-v``).

    Examples
    --------
    The scoring-only keys (:data:`SCORING_ONLY`) leave the key unchanged, the
    preparation's keys change it:

    >>> import tempfile
    >>> data = Path(tempfile.mkdtemp())
    >>> key, parts = baseline_key(data, {"origins_cell_m": 100, "weights": {"a": 1}})
    >>> len(key), parts["distance"], parts["config"]
    (64, 'network', {'origins_cell_m': 100})
    >>> key == baseline_key(data, {"origins_cell_m": 100, "weights": {"a": 2}})[0]
    True
    >>> key == baseline_key(data, {"origins_cell_m": 200})[0]
    False
    >>> data.rmdir()
    """
    data = Path(data)
    files = {rel: _file_state(data / rel) for rel in _input_files()}
    for rel in list(files):
        if files[rel] is not None:
            for side in _with_sidecars(data / rel)[1:]:
                if side.is_file():
                    files[str(side.relative_to(data))] = sha256_file(side)
    parts: dict[str, Any] = {
        "format": FORMAT,
        "data": str(data),
        "distance": str(distance),
        "files": files,
        "catalog": _catalog_files(),
        "config": _jsonable({k: v for k, v in config.items() if k not in SCORING_ONLY}),
        "population": None
        if population is None
        else {"path": str(population), "sha256": _file_state(Path(population))},
    }
    if parts["population"] is not None:
        pop = Path(population)  # type: ignore[arg-type]
        for side in _with_sidecars(pop)[1:]:
            if side.is_file():
                parts["population"][side.suffix] = sha256_file(side)
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest(), parts


# ----------------------------------------------------------------------- entries
def entry_path(folder: Path, key: str) -> Path:
    """The file of the entry ``key`` in the cache folder."""
    return Path(folder) / f"{PREFIX}{key}{SUFFIX}"


def _header(key: str, payload: bytes, meta: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "bxlplan_version": __version__,
        "code": _code_fingerprint(),
        "environment": _environment(),
        "key": key,
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        **(meta or {}),
    }


def write_entry(
    folder: Path, key: str, obj: Any, meta: dict[str, Any] | None = None
) -> Path:
    """Pickle ``obj`` as the entry ``key``: temporary file, then an atomic rename.

    Parameters
    ----------
    folder
        The cache folder (created, mode 0700, when absent).
    key
        The entry's key (:func:`baseline_key`).
    obj
        The object stored (pickled).
    meta
        Further header fields (e.g. ``{"data": "<data folder>"}``).

    Returns
    -------
    Path
        The entry's file.

    Examples
    --------
    >>> import shutil, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = write_entry(folder, "abc", {"answer": 42}, meta={"data": "here"})
    >>> path.name, oct(path.stat().st_mode & 0o777)
    ('context-abc.pickle', '0o600')
    >>> shutil.rmtree(folder)
    """
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    head = json.dumps(_header(key, payload, meta), sort_keys=True).encode()
    path = entry_path(folder, key)
    _remove_stale(folder, age_s=3600)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:  # mkstemp: mode 0600, owned by the current user
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"%s %d\n" % (MAGIC, FORMAT))
            fh.write(head + b"\n")
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read_header(fh: Any) -> dict[str, Any]:
    """The header of an open entry; ValueError naming what is wrong."""
    first = fh.readline(64)
    if not first.startswith(MAGIC + b" "):
        raise ValueError("not a bxlplan cache file")
    line = fh.readline(_HEADER_MAX)
    if not line.endswith(b"\n"):
        raise ValueError("truncated header")
    try:
        head = json.loads(line)
    except ValueError:
        raise ValueError("unreadable header") from None
    if not isinstance(head, dict):
        raise ValueError("unreadable header")
    return head


def _incompatible(head: dict[str, Any], key: str) -> str | None:
    """Why an entry with this header cannot be used by this bxlplan, or None."""
    if head.get("format") != FORMAT:
        return f"cache format {head.get('format')} (this bxlplan reads {FORMAT})"
    if head.get("bxlplan_version") != __version__:
        return f"built by bxlplan {head.get('bxlplan_version')}, this is {__version__}"
    if head.get("code") != _code_fingerprint():
        return "built by another bxlplan code (modified source)"
    env = _environment()
    if head.get("environment") != env:
        theirs = head.get("environment") or {}
        diff = [
            f"{k} {theirs.get(k)} -> {v}" for k, v in env.items() if theirs.get(k) != v
        ]
        return f"built with other libraries ({', '.join(diff) or 'unknown'})"
    if head.get("key") != key:
        return "its header names another key"
    return None


def _owned_safely(path: Path) -> str | None:
    st = path.stat()
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return "owned by another user"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "writable by other users"
    return None


def read_entry(folder: Path, key: str) -> Any | None:
    """The object stored as ``key``, or None when absent or not usable.

    An entry that is not safe to load (another owner, writable by others), was built by
    another bxlplan or other library versions, or is truncated or corrupt is reported
    in one warning line and never unpickled (None: the caller rebuilds it).

    Parameters
    ----------
    folder
        The cache folder.
    key
        The entry's key (:func:`baseline_key`).

    Returns
    -------
    object or None
        The unpickled object, or None.

    Examples
    --------
    >>> import shutil, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_entry(folder, "abc", {"answer": 42})
    >>> read_entry(folder, "abc"), read_entry(folder, "other")
    ({'answer': 42}, None)
    >>> shutil.rmtree(folder)
    """
    path = entry_path(folder, key)
    if not path.is_file():
        return None
    why_unsafe = _owned_safely(path)
    if why_unsafe:
        log.warning(
            "baseline cache %s is %s: not loaded (pickles run code); rebuilding it",
            path, why_unsafe,
        )  # fmt: skip
        return None
    try:
        with open(path, "rb") as fh:
            head = _read_header(fh)
            why = _incompatible(head, key)
            if why:
                log.warning("baseline cache %s refused: %s; rebuilding it", path, why)
                return None
            payload = fh.read()
    except ValueError as exc:
        log.warning("baseline cache %s is corrupt (%s): rebuilding it", path, exc)
        return None
    expected = head.get("payload_bytes")
    if len(payload) != expected:
        log.warning(
            "baseline cache %s is truncated (%s of %s bytes): rebuilding it",
            path, f"{len(payload):,}", f"{expected:,}" if isinstance(expected, int) else "?",
        )  # fmt: skip
        return None
    if hashlib.sha256(payload).hexdigest() != head.get("payload_sha256"):
        log.warning(
            "baseline cache %s is corrupt (sha256 mismatch): rebuilding it", path
        )
        return None
    try:
        return pickle.loads(payload)
    except Exception as exc:  # a payload that passed the checks but does not load
        log.warning(
            "baseline cache %s cannot be loaded (%s: %s): rebuilding it",
            path, type(exc).__name__, exc,
        )  # fmt: skip
        return None


def get_or_build(
    folder: Path,
    key: str,
    build: Callable[[], Any],
    *,
    meta: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Any, bool]:
    """The entry ``key`` when usable, else ``build()``, stored for the next run.

    Parameters
    ----------
    folder
        The cache folder.
    key
        The entry's key (:func:`baseline_key`).
    build
        Builds the object on a miss (no arguments).
    meta
        Further header fields of a new entry (:func:`write_entry`).
    progress
        Called with a short message when reading or saving the entry.

    Returns
    -------
    obj : Any
        The cached or built object.
    hit : bool
        True when it came from the cache.

    Examples
    --------
    >>> import shutil, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> get_or_build(folder, "abc", lambda: [1, 2, 3])
    ([1, 2, 3], False)
    >>> get_or_build(folder, "abc", lambda: [4, 5, 6])
    ([1, 2, 3], True)
    >>> shutil.rmtree(folder)
    """
    step = progress or (lambda _msg: None)
    path = entry_path(folder, key)
    if path.is_file():
        step("baseline: reading the cache")
    obj = read_entry(folder, key)
    if obj is not None:
        log.info("baseline cache hit: %s", path)
        return obj, True
    log.info("baseline cache miss: building %s", path)
    obj = build()
    step("baseline: saving it to the cache")
    try:
        write_entry(folder, key, obj, meta)
    except OSError as exc:  # a full disk or a read-only folder never fails the run
        log.warning(
            "baseline cache %s not written (%s): the next run prepares again",
            path, exc.strerror or exc,
        )  # fmt: skip
    return obj, False


# ------------------------------------------------------------------------- manage
@dataclass
class CacheEntry:
    """One entry of the cache folder, as ``bxlplan cache info`` shows it.

    Parameters
    ----------
    path
        The entry's file.
    key
        Its key (from the file name).
    size
        File size, bytes.
    created
        Creation time (ISO 8601, UTC) from the header, or None when unreadable.
    bxlplan_version
        The bxlplan version that wrote it, or None.
    data
        The data folder it was prepared from, or None.
    status
        ``ok``, ``incompatible: <why>``, ``truncated`` or ``corrupt: <why>``.

    Examples
    --------
    >>> e = CacheEntry(Path("context-abc.pickle"), "abc", 1024,
    ...                "2026-01-01T00:00:00+00:00", "1.0", None, "ok")
    >>> e.key, e.status
    ('abc', 'ok')
    """

    path: Path
    key: str
    size: int
    created: str | None
    bxlplan_version: str | None
    data: str | None
    status: str  # ok | incompatible: ... | truncated | corrupt: ...


def entries(folder: Path) -> list[CacheEntry]:
    """The entries of a cache folder (headers only, newest first).

    Parameters
    ----------
    folder
        The cache folder (absent: no entries).

    Returns
    -------
    list of CacheEntry
        One per entry file, with its status; none is unpickled.

    Examples
    --------
    >>> import shutil, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_entry(folder, "abc", {"answer": 42})
    >>> [(e.key, e.status) for e in entries(folder)]
    [('abc', 'ok')]
    >>> shutil.rmtree(folder)
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in folder.glob(f"{PREFIX}*{SUFFIX}"):
        key = path.name[len(PREFIX) : -len(SUFFIX)]
        size = path.stat().st_size
        head: dict[str, Any] = {}
        try:
            with open(path, "rb") as fh:
                head = _read_header(fh)
                body = size - fh.tell()
            why = _incompatible(head, key)
            if why:
                status = f"incompatible: {why}"
            elif body != head.get("payload_bytes"):
                status = "truncated"
            else:
                status = "ok"
        except (OSError, ValueError) as exc:
            status = f"corrupt: {exc}"
        out.append(
            CacheEntry(path, key, size, head.get("created"),
                       head.get("bxlplan_version"), head.get("data"), status)
        )  # fmt: skip
    return sorted(out, key=lambda e: e.created or "", reverse=True)


def _remove_stale(folder: Path, age_s: float) -> list[Path]:
    gone = []
    now = time.time()
    for part in folder.glob(f".{PREFIX}*{SUFFIX}.*.part"):
        with contextlib.suppress(OSError):
            if now - part.stat().st_mtime > age_s:
                part.unlink()
                gone.append(part)
    return gone


def clear(folder: Path) -> list[Path]:
    """Remove every entry of the cache folder and leftover temporary files.

    The temporary files are those of killed runs; nothing else in the folder is
    touched.

    Parameters
    ----------
    folder
        The cache folder (absent: nothing to remove).

    Returns
    -------
    list of Path
        The files removed.

    Examples
    --------
    >>> import shutil, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_entry(folder, "abc", {"answer": 42})
    >>> (folder / "notes.txt").write_text("mine")
    4
    >>> [p.name for p in clear(folder)], sorted(p.name for p in folder.iterdir())
    (['context-abc.pickle'], ['notes.txt'])
    >>> shutil.rmtree(folder)
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    gone = _remove_stale(folder, age_s=0)
    for path in folder.glob(f"{PREFIX}*{SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            gone.append(path)
    return gone
