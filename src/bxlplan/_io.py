"""Atomic writes shared by the fetcher and the exports: single files and whole sets.

Single files
    A file is written under a temporary name in its target folder and renamed over the
    target only when complete: a failure never leaves a partial file, and never replaces
    a good one.

Output sets (:func:`output_set`)
    The files of one run (an assessment, a scenario, a comparison) are published
    together or not at all:

    * every target is checked before anything is written (:func:`check_output_set`,
      which the command line also calls before the long preparation);
    * a lock file (``<out>/.bxlplan.lock``, ``fcntl.flock``) lets one run at a time write
      into a folder; a second run waits up to ``wait`` seconds, then fails with a message
      naming the folder and the other run's process id. A run also takes a shared lock
      on every enclosing folder that has a lock file, so a run writing into ``out`` and
      one writing into ``out/scenarios/x`` never overlap;
    * the whole set is written into a staging folder beside the target
      (``.<name>.bxlplan-staging-<pid>-<random>``). The files of the target that are not
      part of the set are hard-linked into it, then the two folders are exchanged in one
      step (Linux ``renameat2(RENAME_EXCHANGE)``): at every instant the folder holds
      either the old set or the new one. Entries that appeared in the old folder in the
      meantime, and sub-folders that are not part of the set, are moved back; nothing
      that is not bxlplan's is ever deleted;
    * where the exchange is not possible (no ``renameat2``, a read-only parent folder, the
      working directory inside the target, a folder owned by someone else, a mount point
      inside it), the set is committed by a journal (a commit record in the staging
      folder, then one rename per file) that the next run completes if it was killed
      half-way;
    * leftover staging folders of killed runs are cleaned up (or completed) by the next
      run into the same folder, which reports what it did (``logging`` warning and
      :attr:`OutputStage.notes`).

Timestamps
    :func:`run_timestamp` is the one time stamp of a run: the current time, or
    ``SOURCE_DATE_EPOCH`` when it is set (reproducible builds), so that two runs give
    byte-identical GeoPackages, GeoTIFFs, CSV and GeoJSON files.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, DataError

__all__ = [
    "OutputStage",
    "atomic_path",
    "atomic_write",
    "check_output_set",
    "check_target",
    "clean_output_set",
    "output_set",
    "run_timestamp",
]

log = logging.getLogger(__name__)

LOCK_NAME = ".bxlplan.lock"
STAGE_MARKER = ".bxlplan-stage.json"  # in a staging folder: the set it holds
COMMIT_NAME = ".bxlplan-commit.json"  # journal mode: the set is committed
_INTERNAL = {LOCK_NAME, STAGE_MARKER, COMMIT_NAME}
_STAGING = ".bxlplan-staging-"


def _publish(tmp: Path, path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    if tmp.is_file():
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files
    os.replace(tmp, path)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A reader never sees a half-written file: either the old one or the new one.

    Parameters
    ----------
    path : Path
        The file to write (its folder is created when absent).
    data : bytes
        The whole content.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "out" / "note.txt"
    >>> atomic_write(path, b"hello")
    >>> path.read_bytes(), [p.name for p in path.parent.iterdir()]
    (b'hello', ['note.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(
    path: Path, *, overwrite: bool = False, suffix: str = ""
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    For writers that want a file name rather than bytes (GDAL, rasterio). On an
    exception nothing replaces ``path``.

    Parameters
    ----------
    path : Path
        The file to write.
    overwrite : bool, default False
        Replace ``path`` when it exists.
    suffix : str, optional
        The suffix of the temporary file (default: that of ``path``).

    Yields
    ------
    Path
        The temporary file to write.

    Raises
    ------
    DataError
        When ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "table.csv"
    >>> with atomic_path(path) as tmp:
    ...     _ = tmp.write_text("a,b\\n1,2\\n")
    >>> path.read_text().splitlines()
    ['a,b', '1,2']
    """
    path = Path(path)
    check_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp = tmpdir / (path.stem + (suffix or path.suffix))
    try:
        yield tmp
        _publish(tmp, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing file unless ``overwrite``.

    Parameters
    ----------
    path : Path
        The file about to be written.
    overwrite : bool
        Whether replacing it is allowed.

    Raises
    ------
    DataError
        When ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "map.html"
    >>> check_target(path, overwrite=False)  # absent: fine
    >>> _ = path.write_text("<html/>")
    >>> check_target(path, overwrite=False)
    Traceback (most recent call last):
    ...
    bxlplan.errors.DataError: .../map.html already exists: pass --overwrite ...
    """
    if Path(path).exists() and not overwrite:
        raise DataError(
            f"{path} already exists: pass --overwrite (overwrite=True) to replace it"
        )


# --------------------------------------------------------------------------- time


def run_timestamp() -> dt.datetime:
    """The time stamp of a run (UTC, whole seconds).

    ``SOURCE_DATE_EPOCH`` (seconds since 1970, https://reproducible-builds.org) replaces
    the current time when it is set, for byte-identical outputs.

    Returns
    -------
    datetime.datetime
        An aware datetime in UTC, without microseconds.

    Raises
    ------
    ConfigError
        When ``SOURCE_DATE_EPOCH`` is not a whole number of seconds.

    Examples
    --------
    >>> saved = os.environ.pop("SOURCE_DATE_EPOCH", None)
    >>> run_timestamp().microsecond
    0
    >>> os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    >>> run_timestamp().isoformat()
    '2023-11-14T22:13:20+00:00'
    >>> if saved is None:
    ...     del os.environ["SOURCE_DATE_EPOCH"]
    ... else:
    ...     os.environ["SOURCE_DATE_EPOCH"] = saved
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise ConfigError(
            f"environment variable SOURCE_DATE_EPOCH={epoch!r} is not a whole number "
            "of seconds since 1970-01-01: set it to e.g. $(git log -1 --format=%ct) "
            "or unset it"
        ) from None


# ----------------------------------------------------------------- pre-flight check


def _matches(target: Path, pattern: str) -> list[Path]:
    if any(ch in pattern for ch in "*?["):
        return sorted(p for p in target.glob(pattern) if p.exists())
    path = target / pattern
    return [path] if path.exists() or path.is_symlink() else []


def _check_name(name: str) -> None:
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts:
        raise ValueError(f"output name {name!r} must be a path inside the folder")


def check_output_set(
    target: str | Path, names: Iterable[str], overwrite: bool = False
) -> None:
    """Check that an output set can be written into ``target``, before any work.

    Parameters
    ----------
    target
        The output folder (created when absent).
    names
        The files of the set, relative to ``target``; glob patterns
        (``rasters/distance_*.tif``) stand for files whose names are known later.
    overwrite
        Replace the files of the set that exist.

    Raises
    ------
    DataError
        When ``target`` (or a folder above it) is a file, when the folder cannot be
        written, or when files of the set exist and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp())
    >>> check_output_set(target, ["assessment.gpkg", "rasters/distance_*.tif"])
    >>> _ = (target / "assessment.gpkg").write_bytes(b"")
    >>> check_output_set(target, ["assessment.gpkg"])
    Traceback (most recent call last):
    ...
    bxlplan.errors.DataError: ...assessment.gpkg...
    """
    target = Path(target)
    names = list(names)
    for name in names:
        _check_name(name)
    probe = target
    while not probe.exists() and not probe.is_symlink():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise DataError(
            f"output folder {target}: {probe} is a file, not a folder; "
            "choose another --out"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "" if probe == target else f" (it would be created in {probe})"
        raise DataError(
            f"output folder {target} is not writable{what}: "
            "fix its permissions or choose another --out"
        )
    if probe != target:
        return
    for name in names:
        for path in _matches(target, name):
            if path.is_dir() and not path.is_symlink():
                raise DataError(
                    f"{path} is a folder where the output file {name} goes: "
                    "move it away or choose another --out"
                )
    if overwrite:
        return
    existing = sorted({str(p) for n in names for p in _matches(target, n)})
    existing = [p for p in existing if not Path(p).is_dir()]
    if existing:
        shown = ", ".join(existing[:8]) + (" ..." if len(existing) > 8 else "")
        raise DataError(
            f"output folder {target} already holds {len(existing)} file(s) of this "
            f"output set ({shown}): pass --overwrite (overwrite=True) to replace "
            "them, or choose another --out"
        )


# -------------------------------------------------------------------------- locks


def _lock(path: Path, mode: int, wait: float, folder: Path) -> int:
    """Open ``path`` and take a flock on it, waiting up to ``wait`` seconds."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                try:
                    pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
                finally:
                    os.close(fd)
                who = f"process {pid}" if pid else "another process"
                raise DataError(
                    f"output folder {folder} is being written by another bxlplan run "
                    f"({who}, lock file {path}); waited {wait:g} s: wait for it to "
                    "finish or choose another --out"
                ) from None
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)


@contextlib.contextmanager
def _locked(target: Path, wait: float) -> Iterator[None]:
    fds = []
    try:
        # enclosing output folders first (shared), then this one (exclusive): one order
        for parent in reversed(Path(os.path.abspath(target)).parents):
            lock = parent / LOCK_NAME
            if lock.is_file():
                with contextlib.suppress(PermissionError):
                    fds.append(_lock(lock, fcntl.LOCK_SH, wait, parent))
        fd = _lock(target / LOCK_NAME, fcntl.LOCK_EX, wait, target)
        fds.append(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        for fd in reversed(fds):
            os.close(fd)  # releases the lock


# ------------------------------------------------------------------------ staging


@dataclass
class OutputStage:
    """The staging folder of an output set: write every file of the set into ``path``.

    :func:`output_set` makes one; its fields are what a writer needs.

    Parameters
    ----------
    path : Path
        The staging folder; write the set here, under the names it will have in
        ``target``.
    target : Path
        The output folder.
    run_time : datetime.datetime
        The run's time stamp (:func:`run_timestamp`), for every file of the set.
    notes : list of str
        What was cleaned up from earlier interrupted runs.

    Examples
    --------
    >>> import datetime as dt
    >>> stage = OutputStage(Path("out/.stage"), Path("out"), dt.datetime(2026, 1, 1))
    >>> stage.final(stage.path / "maps" / "map.html").as_posix()
    'out/maps/map.html'
    """

    path: Path
    target: Path
    run_time: dt.datetime
    notes: list[str] = field(default_factory=list)

    def final(self, path: str | Path) -> Path:
        """Where a file written in the staging folder ends up once published.

        Parameters
        ----------
        path : str or Path
            A file inside the staging folder.

        Returns
        -------
        Path
            The same file under ``target``.

        Examples
        --------
        >>> import datetime as dt
        >>> stage = OutputStage(Path("s"), Path("out"), dt.datetime(2026, 1, 1))
        >>> stage.final("s/report.html").as_posix()
        'out/report.html'
        """
        return self.target / Path(path).relative_to(self.path)


def _stage_prefix(target: Path) -> str:
    return f".{target.name}{_STAGING}"


def _files(root: Path) -> list[str]:
    """Files (and symlinks) under ``root``, relative, bxlplan's own files left out."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        for name in filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            if rel == Path(".") and name in _INTERNAL:
                continue
            out.append((rel / name).as_posix())
    return sorted(out)


_renameat2 = None


def _exchange(a: Path, b: Path) -> None:
    """Swap two folders in one step (Linux renameat2 with RENAME_EXCHANGE)."""
    global _renameat2
    if _renameat2 is None:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(libc, "renameat2", None)
        if fn is None:
            raise OSError(errno.ENOSYS, "renameat2 is not available")
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
        fn.argtypes += [ctypes.c_uint]
        fn.restype = ctypes.c_int
        _renameat2 = fn
    at_fdcwd, rename_exchange = -100, 2
    if _renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange):
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a), None, str(b))


def _can_exchange(stage: Path, target: Path) -> bool:
    if stage.parent != target.parent or target.is_symlink():
        return False
    st = target.stat()
    if st.st_uid != os.geteuid() or os.path.ismount(target):
        return False
    with contextlib.suppress(OSError, AttributeError):
        if os.listxattr(target):  # ACLs and other attributes could not be copied
            return False
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        return True
    real = target.resolve()
    return cwd != real and real not in cwd.parents


def _link_others(target: Path, stage: Path, staged: set[str]) -> None:
    """Hard-link the target's files that are not part of the set into the stage.

    Sub-folders the set does not touch are moved back after the exchange instead.
    """
    for dirpath, dirnames, filenames in os.walk(target):
        here = Path(dirpath)
        rel = here.relative_to(target)
        filenames += [d for d in dirnames if (here / d).is_symlink()]
        keep = []
        for d in dirnames:
            child = (rel / d).as_posix()
            if (here / d).is_symlink():
                continue
            if (stage / child).is_dir() and not (stage / child).is_symlink():
                keep.append(d)  # a folder of the set: merge it file by file
            elif (stage / child).exists() or (stage / child).is_symlink():
                raise DataError(
                    f"{here / d} is a folder where the output file {child} goes: "
                    "move it away or choose another --out"
                )
            elif os.path.ismount(here / d):
                raise OSError(errno.EXDEV, "mount point inside the output folder")
        dirnames[:] = keep
        for name in filenames:
            child = (rel / name).as_posix()
            if child in staged or (rel == Path(".") and name == STAGE_MARKER):
                continue
            os.link(here / name, stage / child, follow_symlinks=False)


def _same(a: Path, b: Path) -> bool:
    try:
        sa, sb = a.lstat(), b.lstat()
    except FileNotFoundError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _reconcile(old: Path, target: Path, staged: set[str] | None) -> list[str]:
    """Move back what the old folder holds that the new one lacks; remove the rest.

    ``staged`` is the set just published (None when unknown: then only entries that
    are the same file in both folders are removed). Returns what could not be
    resolved (left in ``old``).
    """
    left = []
    for dirpath, dirnames, filenames in os.walk(old, topdown=True):
        here = Path(dirpath)
        rel = here.relative_to(old)
        keep = []
        for d in dirnames:
            dest = target / rel / d
            if (here / d).is_symlink():
                filenames.append(d)
            elif not dest.exists() and not dest.is_symlink():
                os.rename(here / d, dest)  # a sub-folder the set does not touch
            elif dest.is_dir():
                keep.append(d)
            else:
                left.append(str(here / d))
        dirnames[:] = keep
        for name in filenames:
            child = (rel / name).as_posix()
            src, dest = here / name, target / child
            if rel == Path(".") and name in _INTERNAL:
                src.unlink()
            elif staged is not None and child in staged:
                src.unlink()  # the old version of a file of the set
            elif _same(src, dest):
                src.unlink()  # hard-linked into the new folder
            elif staged is not None or not (dest.exists() or dest.is_symlink()):
                os.replace(src, dest)  # created or replaced during the swap
            else:
                left.append(str(src))
    if not left:
        shutil.rmtree(old)
    return left


def _journal_publish(stage: Path, target: Path, staged: list[str]) -> None:
    atomic_write(stage / COMMIT_NAME, json.dumps(staged).encode())  # commit point
    _roll_forward(stage, target, staged)


def _roll_forward(stage: Path, target: Path, staged: list[str]) -> None:
    for rel in staged:
        src = stage / rel
        if src.exists() or src.is_symlink():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, target / rel)
    shutil.rmtree(stage)


def _read_json(path: Path) -> list[str] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return [str(x) for x in data] if isinstance(data, list) else None


def _recover(target: Path) -> list[str]:
    """Clean up after runs into ``target`` that were interrupted (lock held)."""
    notes = []
    marker = target / STAGE_MARKER
    staged = _read_json(marker) if marker.exists() else None
    leftovers = []
    with contextlib.suppress(OSError):
        prefix = _stage_prefix(target)
        leftovers += [p for p in target.parent.iterdir() if p.name.startswith(prefix)]
    leftovers += [p for p in target.iterdir() if p.name.startswith(_STAGING)]
    for old in sorted(leftovers):
        if not old.is_dir() or old.is_symlink():
            continue
        commit = _read_json(old / COMMIT_NAME)
        if commit is not None:  # journal: committed, complete it
            _roll_forward(old, target, commit)
            notes.append(f"completed the interrupted write of {target} ({old.name})")
        elif (old / STAGE_MARKER).exists():  # never published: discard
            shutil.rmtree(old)
            notes.append(f"removed {old}, the staging folder of an interrupted run")
        else:  # the previous folder, swapped out by a run killed before cleaning up
            left = _reconcile(old, target, set(staged) if staged is not None else None)
            if left:
                notes.append(
                    f"{old} holds files of an interrupted run that bxlplan could not "
                    f"place back into {target} ({', '.join(left[:5])}): check and "
                    "remove it"
                )
            else:
                notes.append(f"removed {old}, left by an interrupted run")
    marker.unlink(missing_ok=True)
    for note in notes:
        log.warning(note)
    return notes


def clean_output_set(target: str | Path, *, wait: float = 60.0) -> list[str]:
    """Complete or remove what interrupted runs left beside ``target``.

    Parameters
    ----------
    target : str or Path
        The output folder.
    wait : float, default 60.0
        Seconds to wait for another run writing into ``target``.

    Returns
    -------
    list of str
        One sentence per leftover handled (also logged as warnings).

    Raises
    ------
    DataError
        When another run keeps ``target`` locked for longer than ``wait`` seconds.

    Examples
    --------
    >>> import tempfile
    >>> clean_output_set(Path(tempfile.mkdtemp()))  # nothing left over
    []
    """
    target = Path(target)
    if not target.is_dir():
        return []
    with _locked(target, wait):
        return _recover(target)


@contextlib.contextmanager
def output_set(
    target: str | Path,
    names: Iterable[str],
    *,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
    wait: float = 60.0,
) -> Iterator[OutputStage]:
    """Write a set of files into ``target`` all together or not at all.

    Parameters
    ----------
    target
        The output folder (created when absent).
    names
        The files the set will hold, relative to ``target`` (glob patterns allowed),
        checked before anything is written; files written into the stage under other
        names are checked again before publishing.
    overwrite
        Replace files of the set that exist.
    run_time
        The run's time stamp; :func:`run_timestamp` when None.
    wait
        Seconds to wait for another run writing into ``target``.

    Yields
    ------
    OutputStage
        Write every file of the set under ``stage.path``. On a normal exit the set
        replaces the old one in one step; on an exception nothing is published.

    Raises
    ------
    DataError
        See :func:`check_output_set`; also when another run keeps ``target`` locked
        for longer than ``wait`` seconds.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "run"
    >>> with output_set(target, ["a.txt", "b.txt"]) as stage:
    ...     _ = (stage.path / "a.txt").write_text("a")
    ...     _ = (stage.path / "b.txt").write_text("b")
    >>> sorted(p.name for p in target.glob("*.txt"))
    ['a.txt', 'b.txt']
    """
    target = Path(target)
    names = list(names)
    check_output_set(target, names, overwrite)
    run_time = run_time or run_timestamp()
    target.mkdir(parents=True, exist_ok=True)
    with _locked(target, wait):
        notes = _recover(target)
        check_output_set(target, names, overwrite)  # another run may have just written
        try:
            stage = Path(
                tempfile.mkdtemp(
                    prefix=f"{_stage_prefix(target)}{os.getpid()}-",
                    dir=target.parent,
                )
            )
        except OSError:  # parent folder not writable: stage inside the target
            stage = target / f"{_STAGING}{os.getpid()}-{secrets.token_hex(4)}"
            stage.mkdir()
        try:
            with contextlib.suppress(OSError):
                os.chmod(stage, stat.S_IMODE(target.stat().st_mode))
            atomic_write(stage / STAGE_MARKER, b"[]")
            out = OutputStage(stage, target, run_time, notes)
            yield out
            staged = _files(stage)
            if not overwrite:
                clash = [r for r in staged if (target / r).exists()]
                if clash:
                    raise DataError(
                        f"output folder {target} already holds {', '.join(clash)}: "
                        "pass --overwrite (overwrite=True) to replace them"
                    )
            atomic_write(stage / STAGE_MARKER, json.dumps(staged).encode())
            _publish_set(stage, target, staged)
        except BaseException:
            # a staging folder not yet published (after an exchange it holds the
            # previous folder, without the marker; after a commit, the journal)
            if (stage / STAGE_MARKER).exists() and not (stage / COMMIT_NAME).exists():
                shutil.rmtree(stage, ignore_errors=True)
            raise


def _publish_set(stage: Path, target: Path, staged: list[str]) -> None:
    """Swap the staged set in (one exchange), or commit it by journal."""
    if _can_exchange(stage, target):
        try:
            _link_others(target, stage, set(staged))
            _exchange(stage, target)
        except OSError as exc:
            log.debug("folder exchange impossible (%s): journalled publish", exc)
            for rel in _files(stage):  # undo the links, keep the set
                if rel not in staged:
                    (stage / rel).unlink()
        else:
            # ``stage`` now holds the previous folder, ``target`` the new set
            try:
                left = _reconcile(stage, target, set(staged))
            except OSError as exc:  # the next run tries again (_recover)
                left = [f"{exc}"]
            else:
                (target / STAGE_MARKER).unlink(missing_ok=True)
            if left:
                log.warning(
                    "%s holds files bxlplan could not place back into %s: %s",
                    stage, target, ", ".join(left[:5]),
                )  # fmt: skip
            return
    _journal_publish(stage, target, staged)
