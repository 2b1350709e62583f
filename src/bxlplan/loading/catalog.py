"""The layer catalog: declarative descriptions of every layer kind (``layers/*.yaml``).

The catalog folder is found, in order, from ``$BXLPLAN_LAYERS``, the copy packaged in
the wheel (``bxlplan/_catalog``) and the repository's ``layers/`` folder (editable
installs and checkouts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, DataError

__all__ = [
    "LayerSpec",
    "catalog",
    "catalog_dir",
    "data_dir",
    "get_spec",
    "read_catalog_file",
]

DEFAULT_DATA_HINT = "../shared/data/brussels"


def catalog_dir() -> Path:
    """Return the folder holding the layer catalog (``layers/``)."""
    env = os.environ.get("BXLPLAN_LAYERS")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent.parent
    candidates += [here / "_catalog", here.parent.parent / "layers"]
    for cand in candidates:
        if (cand / "neighbourhoods.yaml").is_file():
            return cand
    raise ConfigError(
        "cannot find the layer catalog (layers/*.yaml); looked in "
        + ", ".join(str(c) for c in candidates)
        + ". Set BXLPLAN_LAYERS to the folder of the catalog."
    )


def data_dir(data: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data folder: the argument, else ``$BXLPLAN_DATA``.

    Raises
    ------
    DataError
        When no folder is given or the folder does not exist.
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
    """Read one YAML file of the catalog folder (cached)."""
    path = catalog_dir() / name
    try:
        with open(path, encoding="utf-8") as fh:
            content = yaml.safe_load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"catalog file {path} is missing") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"catalog file {path} is not valid YAML: {exc}") from exc
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
    """One layer kind of the catalog (see ``layers/README.md``)."""

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
        """Return the first candidate file present in ``data`` and its entry."""
        for entry in self.files:
            candidate = data / entry["path"]
            if candidate.is_file():
                return candidate, entry
        return None

    @property
    def expect(self) -> dict[str, Any]:
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
    """Return every layer kind of the catalog, by name, in a stable order."""
    specs: dict[str, LayerSpec] = {}
    for path in sorted(catalog_dir().glob("*.yaml")):
        # layer files have a `kind`; the others (functions, labels, scoring, scenario
        # defaults) are settings read by name
        if "kind" not in read_catalog_file(path.name):
            continue
        spec = _parse_spec(path)
        specs[spec.name] = spec
    return specs


def get_spec(name: str) -> LayerSpec:
    """Return the catalog entry called ``name`` or raise a helpful error."""
    specs = catalog()
    if name not in specs:
        raise ConfigError(
            f"unknown layer '{name}'; the catalog has: {', '.join(sorted(specs))}"
        )
    return specs[name]
