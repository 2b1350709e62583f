"""Scenario files: reading and validating a pole programme (``scenarios/*.yaml``).

Every error names the file, the key and its line, and says what is expected. The
structure is described in ``scenarios/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
import yaml

from ..errors import ConfigError
from ..loading.catalog import read_catalog_file

__all__ = ["Facility", "Scenario", "perimeter_area", "read_scenario"]

TENURES = ("social", "moderate", "market")
FUNCTIONS = (
    "housing",
    "mixed",
    "economic",
    "facilities",
    "green",
    "transport",
    "other",
)
TOP_KEYS = {
    "name",
    "title",
    "pole",
    "perimeter",
    "programme",
    "surroundings_m",
    "sources",
    "facts",
    "assumptions",
    "notes",
}
PERIMETER_KEYS = {
    "neighbourhoods",
    "wkt",
    "geojson",
    "file",
    "buffer_m",
    "kind",
    "note",
}
PROGRAMME_KEYS = {
    "dwellings",
    "persons_per_dwelling",
    "jobs",
    "floor_area_m2",
    "facilities",
    "land_use",
    "phasing_year",
}
FACILITY_KEYS = {"category", "capacity", "location", "name"}


@dataclass(frozen=True)
class Facility:
    category: str
    capacity: float | None
    location: str | tuple[float, float]  # "inside" or (x, y) in EPSG:31370
    name: str | None = None


@dataclass
class Scenario:
    """A validated scenario file."""

    path: Path
    name: str
    title: dict[str, str]
    pole: str
    perimeter: dict[str, Any]
    dwellings: dict[str, float]
    persons_per_dwelling: float
    jobs: dict[str, float]
    floor_area_m2: dict[str, float]
    facilities: list[Facility]
    land_use: dict[str, float] | None
    phasing_year: int | None
    surroundings_m: float
    sources: list[str] = field(default_factory=list)
    facts: list[Any] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    used_defaults: list[str] = field(default_factory=list)

    @property
    def new_residents(self) -> float:
        return sum(self.dwellings.values()) * self.persons_per_dwelling


class _Doc:
    """A YAML mapping with the line of every key, for error messages."""

    def __init__(self, path: Path, node: yaml.Node, where: str = "") -> None:
        self.path, self.node, self.where = path, node, where

    def line(self, node: yaml.Node | None = None) -> int:
        return (node or self.node).start_mark.line + 1

    def error(self, msg: str, node: yaml.Node | None = None) -> ConfigError:
        return ConfigError(f"{self.path}, line {self.line(node)}: {self.where}{msg}")

    def items(self) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(self.node, yaml.MappingNode):
            raise self.error(f"expected a mapping (key: value), got {_kind(self.node)}")
        return {k.value: (k, v) for k, v in self.node.value}

    def check_keys(
        self, allowed: set[str], required: set[str] = frozenset()
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        items = self.items()
        for key, (knode, _v) in items.items():
            if key not in allowed:
                raise self.error(
                    f"unknown key '{key}'; allowed here: {', '.join(sorted(allowed))}",
                    knode,
                )
        for key in required:
            if key not in items:
                raise self.error(f"missing key '{key}'")
        return items

    def sub(self, node: yaml.Node, key: str) -> _Doc:
        return _Doc(self.path, node, f"{self.where}{key}: ")


def _kind(node: yaml.Node) -> str:
    return {"MappingNode": "a mapping", "SequenceNode": "a list"}.get(
        type(node).__name__, f"'{getattr(node, 'value', '')}'"
    )


def _value(node: yaml.Node) -> Any:
    return yaml.safe_load(yaml.serialize(node))


def _number(
    doc: _Doc, node: yaml.Node, key: str, *, integer: bool = False, minimum: float = 0.0
) -> float:
    value = _value(node)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.error(f"'{key}' must be a number, got {value!r}", node)
    if integer and value != int(value):
        raise doc.error(f"'{key}' must be a whole number, got {value!r}", node)
    if value < minimum:
        raise doc.error(f"'{key}' must be >= {minimum:g}, got {value!r}", node)
    return float(value)


def _numbers(
    doc: _Doc,
    node: yaml.Node,
    key: str,
    allowed: tuple[str, ...] | None,
    *,
    integer: bool = False,
) -> dict[str, float]:
    sub = doc.sub(node, key)
    out = {}
    for k, (knode, vnode) in sub.items().items():
        if allowed is not None and k not in allowed:
            raise sub.error(f"unknown key '{k}'; allowed: {', '.join(allowed)}", knode)
        out[k] = _number(sub, vnode, k, integer=integer)
    return out


def _text_list(doc: _Doc, node: yaml.Node, key: str) -> list[Any]:
    if not isinstance(node, yaml.SequenceNode):
        raise doc.error(f"'{key}' must be a list", node)
    return [_value(n) for n in node.value]


def read_scenario(
    path: str | Path, *, region: gpd.GeoDataFrame | None = None
) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path
        The YAML file.
    region
        The region layer: when given, a perimeter (WKT, GeoJSON or file) that does not
        lie in the region is an error.

    Raises
    ------
    ConfigError
        Naming the file, the key and its line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text)
    except FileNotFoundError as exc:
        raise ConfigError(f"scenario file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if root is None:
        raise ConfigError(f"{path} is empty")
    doc = _Doc(path, root)
    defaults = read_catalog_file("scenario_defaults.yaml")
    items = doc.check_keys(TOP_KEYS, {"name", "pole", "perimeter", "programme"})
    used: list[str] = []

    # perimeter
    pdoc = doc.sub(items["perimeter"][1], "perimeter")
    pitems = pdoc.check_keys(PERIMETER_KEYS)
    given = [k for k in ("neighbourhoods", "wkt", "geojson", "file") if k in pitems]
    if len(given) != 1:
        raise pdoc.error("give exactly one of neighbourhoods, wkt, geojson or file")
    perimeter: dict[str, Any] = {k: _value(v) for k, (_kn, v) in pitems.items()}
    if "neighbourhoods" in perimeter:
        codes = perimeter["neighbourhoods"]
        if (
            not isinstance(codes, list)
            or not codes
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes)
        ):
            raise pdoc.error(
                "'neighbourhoods' must be a list of Monitoring codes (whole numbers)",
                pitems["neighbourhoods"][1],
            )
    if "buffer_m" in perimeter:
        perimeter["buffer_m"] = _number(pdoc, pitems["buffer_m"][1], "buffer_m")
    if "file" in perimeter:
        perimeter["file"] = str((path.parent / perimeter["file"]).resolve())
    geom = _perimeter_geometry(perimeter, pdoc, pitems)
    if geom is not None and region is not None:
        outline = shapely.union_all(region.geometry.values)
        inside = shapely.area(shapely.intersection(geom, outline)) / max(
            shapely.area(geom), 1e-9
        )
        if inside < 0.9:
            node = pitems[given[0]][1]
            raise pdoc.error(
                f"the perimeter lies {1 - inside:.0%} outside the Brussels region: is it in "
                "EPSG:31370 (Belgian Lambert 72, metres)?",
                node,
            )

    # programme
    gdoc = doc.sub(items["programme"][1], "programme")
    gitems = gdoc.check_keys(PROGRAMME_KEYS)
    dwellings = dict.fromkeys(TENURES, 0.0)
    if "dwellings" in gitems:
        dwellings.update(
            _numbers(gdoc, gitems["dwellings"][1], "dwellings", TENURES, integer=True)
        )
    if "persons_per_dwelling" in gitems:
        ppd = _number(gdoc, gitems["persons_per_dwelling"][1], "persons_per_dwelling")
        if not 0.5 <= ppd <= 6:
            raise gdoc.error(
                f"'persons_per_dwelling' = {ppd:g} is implausible (0.5-6)",
                gitems["persons_per_dwelling"][1],
            )
    else:
        ppd = float(defaults["persons_per_dwelling"])
        used.append(f"persons per dwelling = {ppd:g} (default, scenario_defaults.yaml)")
    land_use = None
    if "land_use" in gitems:
        land_use = _numbers(gdoc, gitems["land_use"][1], "land_use", FUNCTIONS)
        total = sum(land_use.values())
        if abs(total - 1.0) > 0.01:
            raise gdoc.error(
                f"'land_use' shares add up to {total:.3f}, not 1", gitems["land_use"][1]
            )
    facilities = []
    if "facilities" in gitems:
        fnode = gitems["facilities"][1]
        if not isinstance(fnode, yaml.SequenceNode):
            raise gdoc.error("'facilities' must be a list", fnode)
        from ..loading.facilities import categories

        cats = categories()
        for item in fnode.value:
            fdoc = gdoc.sub(item, "facilities[]")
            fitems = fdoc.check_keys(FACILITY_KEYS, {"category"})
            cat = _value(fitems["category"][1])
            if cat not in cats:
                raise fdoc.error(
                    f"unknown category '{cat}'; known: {', '.join(cats)}",
                    fitems["category"][1],
                )
            cap = (
                _number(fdoc, fitems["capacity"][1], "capacity")
                if "capacity" in fitems
                else None
            )
            loc: Any = (
                _value(fitems["location"][1]) if "location" in fitems else "inside"
            )
            if loc != "inside":
                ok = (
                    isinstance(loc, list)
                    and len(loc) == 2
                    and all(isinstance(v, int | float) for v in loc)
                )
                if not ok:
                    raise fdoc.error(
                        "'location' must be 'inside' or [x, y] in EPSG:31370",
                        fitems["location"][1],
                    )
                loc = (float(loc[0]), float(loc[1]))
            name = _value(fitems["name"][1]) if "name" in fitems else None
            facilities.append(Facility(cat, cap, loc, name))
    phasing = (
        int(
            _number(
                gdoc,
                gitems["phasing_year"][1],
                "phasing_year",
                integer=True,
                minimum=2000,
            )
        )
        if "phasing_year" in gitems
        else None
    )
    surroundings = (
        _number(doc, items["surroundings_m"][1], "surroundings_m")
        if "surroundings_m" in items
        else float(defaults["surroundings_m"])
    )
    title = (
        _value(items["title"][1])
        if "title" in items
        else {"en": _value(items["name"][1])}
    )
    return Scenario(
        path=path,
        name=str(_value(items["name"][1])),
        title=title if isinstance(title, dict) else {"en": str(title)},
        pole=str(_value(items["pole"][1])),
        perimeter=perimeter,
        dwellings=dwellings,
        persons_per_dwelling=ppd,
        jobs=_numbers(gdoc, gitems["jobs"][1], "jobs", None)
        if "jobs" in gitems
        else {},
        floor_area_m2=_numbers(gdoc, gitems["floor_area_m2"][1], "floor_area_m2", None)
        if "floor_area_m2" in gitems
        else {},
        facilities=facilities,
        land_use=land_use,
        phasing_year=phasing,
        surroundings_m=surroundings,
        sources=_text_list(doc, items["sources"][1], "sources")
        if "sources" in items
        else [],
        facts=_text_list(doc, items["facts"][1], "facts") if "facts" in items else [],
        assumptions=_text_list(doc, items["assumptions"][1], "assumptions")
        if "assumptions" in items
        else [],
        used_defaults=used,
    )


def _perimeter_geometry(
    perimeter: dict[str, Any], doc: _Doc, items: dict
) -> shapely.Geometry | None:
    """The perimeter geometry for WKT / GeoJSON / file perimeters (None for units)."""
    try:
        if "wkt" in perimeter:
            geom = shapely.from_wkt(perimeter["wkt"])
        elif "geojson" in perimeter:
            import json

            gj = perimeter["geojson"]
            geom = shapely.from_geojson(
                json.dumps(gj) if not isinstance(gj, str) else gj
            )
        elif "file" in perimeter:
            from ..loading.load import load_polygons

            geom = shapely.union_all(load_polygons(perimeter["file"]).geometry.values)
        else:
            return None
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        key = next(k for k in ("wkt", "geojson", "file") if k in perimeter)
        raise doc.error(
            f"cannot read the perimeter '{key}': {exc}", items[key][1]
        ) from exc
    if "buffer_m" in perimeter:
        geom = shapely.buffer(geom, perimeter["buffer_m"])
    if shapely.area(geom) <= 0:
        raise doc.error(
            "the perimeter has no area (give a polygon, or a point with buffer_m)"
        )
    perimeter["_geometry"] = geom
    return geom


def perimeter_area(scn: Scenario, neighbourhoods: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The pole's perimeter as one area (``area_id`` = the scenario name), EPSG:31370."""
    if "_geometry" in scn.perimeter:
        geom = scn.perimeter["_geometry"]
    else:
        codes = scn.perimeter["neighbourhoods"]
        unknown = sorted(set(codes) - set(neighbourhoods["code"].astype(int)))
        if unknown:
            raise ConfigError(
                f"{scn.path}: perimeter neighbourhoods {unknown} are not Monitoring codes"
            )
        geom = shapely.union_all(
            neighbourhoods.loc[neighbourhoods["code"].isin(codes)].geometry.values
        )
        if "buffer_m" in scn.perimeter:
            geom = shapely.buffer(geom, scn.perimeter["buffer_m"])
    return gpd.GeoDataFrame(
        {
            "area_id": [scn.name],
            "name_fr": [scn.title.get("fr", scn.pole)],
            "name_nl": [scn.title.get("nl", scn.pole)],
        },
        geometry=[geom],
        crs=neighbourhoods.crs,
    )
