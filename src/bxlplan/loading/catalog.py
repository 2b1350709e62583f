"""The layer catalog: declarative descriptions of every layer kind (``layers/*.yaml``).

The shipped catalog is the copy packaged in the wheel (``bxlplan/_catalog``) or the
repository's ``layers/`` folder (editable installs and checkouts). ``$BXLPLAN_LAYERS``
names one or more folders (separated by ``os.pathsep``) whose YAML files are *added* to
it: a user's new layer (e.g. an IBSA export to score) sits beside the shipped ones, and
a user file with the same name as a shipped one replaces that one file only.

Examples
--------
>>> spec = get_spec("neighbourhoods")
>>> spec.kind, spec.title["en"], spec.licence
('vector', 'Monitoring neighbourhoods', 'CC BY 4.0')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError

__all__ = [
    "LayerSpec",
    "catalog",
    "catalog_dir",
    "catalog_dirs",
    "data_dir",
    "get_spec",
    "read_catalog_file",
]

DEFAULT_DATA_HINT = "../shared/data/brussels"


def catalog_dir() -> Path:
    """Return the folder holding the shipped layer catalog (``layers/``).

    Returns
    -------
    Path
        ``bxlplan/_catalog`` in an installed wheel, ``layers/`` in a checkout.

    Raises
    ------
    ConfigError
        When the catalog is not packaged (a broken install).

    Examples
    --------
    >>> (catalog_dir() / "neighbourhoods.yaml").is_file()
    True
    """
    here = Path(__file__).resolve().parent.parent
    candidates = [here / "_catalog", here.parent.parent / "layers"]
    for cand in candidates:
        if (cand / "neighbourhoods.yaml").is_file():
            return cand
    raise ConfigError(
        "cannot find the layer catalog (layers/*.yaml); looked in "
        + ", ".join(str(c) for c in candidates)
        + ". Reinstall bxlplan."
    )


def catalog_dirs() -> list[Path]:
    """The shipped catalog folder, then the user folders of ``$BXLPLAN_LAYERS``.

    Returns
    -------
    list of Path
        The folders, later ones overriding earlier ones file by file.

    Raises
    ------
    ConfigError
        When ``$BXLPLAN_LAYERS`` names something that is not a folder.

    Examples
    --------
    >>> catalog_dirs()[0] == catalog_dir()
    True
    """
    dirs = [catalog_dir()]
    for part in filter(None, os.environ.get("BXLPLAN_LAYERS", "").split(os.pathsep)):
        folder = Path(part).expanduser()
        if not folder.is_dir():
            raise ConfigError(
                f"BXLPLAN_LAYERS names {folder}, which is not a folder: give folders "
                "of extra catalog files (*.yaml), separated by " + repr(os.pathsep)
            )
        dirs.append(folder)
    return dirs


def _catalog_path(name: str) -> Path:
    """The file ``name`` of the catalog: the last folder of :func:`catalog_dirs` that
    has it (a user's file replaces the shipped one of the same name)."""
    for folder in reversed(catalog_dirs()):
        if (folder / name).is_file():
            return folder / name
    return catalog_dir() / name


def data_dir(data: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data folder: the argument, else ``$BXLPLAN_DATA``.

    Parameters
    ----------
    data : str or path-like, optional
        The data folder; None reads ``$BXLPLAN_DATA``.

    Returns
    -------
    Path
        The folder, resolved.

    Raises
    ------
    DataError
        When no folder is given or the folder does not exist.

    Examples
    --------
    >>> data_dir(catalog_dir()) == catalog_dir()
    True
    >>> data_dir("/no/such/folder")
    Traceback (most recent call last):
    ...
    bxlplan.errors.DataError: data folder /no/such/folder does not exist or is not a folder
    """
    if data is None:
        data = os.environ.get("BXLPLAN_DATA")
    if data is None:
        raise DataError(
            "no data folder given: pass data=... (or --data DIR) or set BXLPLAN_DATA, "
            f"e.g. BXLPLAN_DATA={DEFAULT_DATA_HINT}"
        )
    path = Path(data).expanduser()
    if not path.is_dir():
        raise DataError(f"data folder {path} does not exist or is not a folder")
    return path


@cache
def read_catalog_file(name: str) -> dict[str, Any]:
    """Read one YAML file of the catalog (cached), with the project's safe reader.

    Parameters
    ----------
    name : str
        The file name (``"functions.yaml"``), looked up in :func:`catalog_dirs`.

    Raises
    ------
    ConfigError
        When the file is not valid YAML or does not hold a mapping.

    Examples
    --------
    >>> read_catalog_file("scoring.yaml")["weights"]
    {'diversity': 1.0, 'social_mix': 1.0, 'services': 1.0}
    """
    from .._yaml import load_yaml

    path = _catalog_path(name)
    content = load_yaml(path, what="catalog file")
    if not isinstance(content, dict):
        raise ConfigError(f"catalog file {path} must hold a mapping")
    return content


@dataclass(frozen=True)
class ColumnSpec:
    """A canonical column: which source fields feed it and how it is checked."""

    name: str
    source: tuple[str, ...]
    type: str = "str"
    required: bool = False
    unique: bool = False


@dataclass(frozen=True)
class LayerSpec:
    """One layer kind of the catalog (see ``layers/README.md``).

    :func:`get_spec` and :func:`catalog` make them from ``layers/*.yaml``.

    Parameters
    ----------
    name : str
        The layer's name (``neighbourhoods``).
    title : dict
        Title per language.
    group : str
        The group of layers it belongs to (``units``, ``facilities``, ...).
    kind : str
        ``vector``, ``table``, ``network``, ``gtfs_stops`` or ``facilities``.
    required : bool
        Whether an assessment needs it.
    licence : str
        The licence of the data.
    attribution : str
        The attribution the licence asks for.
    files : tuple of dict
        The candidate files in the data folder, preferred first (``path``,
        ``layer``, ``fallback``, ...).
    columns : tuple of ColumnSpec
        The canonical columns and where they come from.
    fetch : dict, optional
        Where :func:`bxlplan.loading.fetch.fetch_layer` downloads it from.
    raw : dict
        The whole catalog entry.
    path : Path, optional
        The catalog file it was read from.

    Examples
    --------
    >>> spec = get_spec("neighbourhoods")
    >>> spec.kind, spec.required, spec.files[0]["path"]
    ('vector', True, 'official/neighbourhoods.geojson')
    """

    name: str
    title: dict[str, str]
    group: str
    kind: str
    required: bool
    licence: str
    attribution: str
    files: tuple[dict[str, Any], ...]
    columns: tuple[ColumnSpec, ...]
    fetch: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    path: Path | None = None

    def find_file(self, data: Path) -> tuple[Path, dict[str, Any]] | None:
        """Return the first candidate file present in ``data`` and its entry.

        Parameters
        ----------
        data : Path
            The data folder.

        Returns
        -------
        tuple of (Path, dict) or None
            The file and its entry of ``files``; None when no candidate is present.

        Examples
        --------
        >>> from pathlib import Path
        >>> get_spec("neighbourhoods").find_file(Path("/no/such/folder")) is None
        True
        """
        for entry in self.files:
            candidate = data / entry["path"]
            if candidate.is_file():
                return candidate, entry
        return None

    @property
    def expect(self) -> dict[str, Any]:
        """The plausible ranges of the layer (``expect`` of the catalog entry)."""
        return self.raw.get("expect", {})


_KNOWN_KEYS = {
    "name",
    "title",
    "group",
    "kind",
    "geometry",
    "required",
    "licence",
    "attribution",
    "files",
    "fetch",
    "columns",
    "expect",
    "names",
    "inhabited_codes",
    "function_mapping",
    "units",
    "unit",
    "year",
    "summary_codes",
    "key",
    "partial",
    "include",
    "exclude",
    "large_ha",
    "walking_speed_m_s",
    "dedupe_m",
    "sources",
    "categories",
    "rules",
}
_KINDS = {"vector", "table", "network", "gtfs_stops", "facilities"}


def _parse_spec(path: Path) -> LayerSpec:
    raw = read_catalog_file(path.name)
    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}")
    for key in ("name", "kind"):
        if key not in raw:
            raise ConfigError(f"{path}: missing key '{key}'")
    if raw["kind"] not in _KINDS:
        raise ConfigError(f"{path}: kind must be one of {sorted(_KINDS)}")
    cols = []
    for cname, cdef in (raw.get("columns") or {}).items():
        src = cdef.get("source", [cname])
        cols.append(
            ColumnSpec(
                name=cname,
                source=tuple([src] if isinstance(src, str) else src),
                type=cdef.get("type", "str"),
                required=bool(cdef.get("required", False)),
                unique=bool(cdef.get("unique", False)),
            )
        )
    return LayerSpec(
        name=raw["name"],
        title=raw.get("title", {"en": raw["name"]}),
        group=raw.get("group", "other"),
        kind=raw["kind"],
        required=bool(raw.get("required", False)),
        licence=str(raw.get("licence", "unknown")),
        attribution=str(raw.get("attribution", "")),
        files=tuple(raw.get("files") or ()),
        columns=tuple(cols),
        fetch=raw.get("fetch"),
        raw=raw,
        path=path,
    )


@cache
def catalog() -> dict[str, LayerSpec]:
    """Return every layer kind of the catalog, by name, in a stable order.

    Raises
    ------
    ConfigError
        When a catalog file has an unknown key, no ``name`` or an unknown ``kind``.

    Examples
    --------
    >>> layers = catalog()
    >>> "neighbourhoods" in layers, layers["streets"].kind
    (True, 'network')
    """
    specs: dict[str, LayerSpec] = {}
    names = sorted({p.name for d in catalog_dirs() for p in d.glob("*.yaml")})
    for path in (_catalog_path(n) for n in names):
        # layer files have a `kind`; the others (functions, labels, scoring, scenario
        # defaults) are settings read by name
        if "kind" not in read_catalog_file(path.name):
            continue
        spec = _parse_spec(path)
        specs[spec.name] = spec
    return specs


def get_spec(name: str) -> LayerSpec:
    """Return the catalog entry called ``name`` or raise a helpful error.

    Parameters
    ----------
    name : str
        The layer's name.

    Returns
    -------
    LayerSpec
        Its catalog entry.

    Raises
    ------
    ConfigError
        When the catalog has no layer ``name``; the message lists the ones it has.

    Examples
    --------
    >>> get_spec("income_equivalised").kind
    'table'
    >>> get_spec("hoods")
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: unknown layer 'hoods'; the catalog has: communes, ...
    """
    specs = catalog()
    if name not in specs:
        raise ConfigError(
            f"unknown layer '{name}'; the catalog has: {', '.join(sorted(specs))}"
        )
    return specs[name]
