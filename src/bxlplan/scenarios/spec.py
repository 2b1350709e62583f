"""Scenario files: reading and validating a pole programme (``scenarios/*.yaml``).

Every error names the file, the key and its line, and says what is expected. The
structure is described in ``scenarios/README.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import yaml

from .._yaml import compose_yaml, construct
from ..errors import BxlplanError, ConfigError
from ..loading.catalog import read_catalog_file
from ..loading.layers import land_use_functions

__all__ = ["Facility", "Scenario", "perimeter_area", "read_scenario"]

TENURES = ("social", "moderate", "market")
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
POLYGON_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp")
# a name names the output folder: a slug, never a path
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Facility:
    """A facility the programme adds (``programme.facilities`` of a scenario file).

    Parameters
    ----------
    category : str
        A facility category of ``layers/facilities.yaml``.
    capacity : float or None
        Its capacity (places, beds, ...), when known.
    location : str or tuple of float
        ``"inside"`` (the perimeter's representative point) or (x, y) in EPSG:31370.
    name : str, optional
        Its name.

    Examples
    --------
    >>> Facility("primary_school", 450, "inside", "École Josaphat").capacity
    450
    """

    category: str
    capacity: float | None
    location: str | tuple[float, float]  # "inside" or (x, y) in EPSG:31370
    name: str | None = None


@dataclass
class Scenario:
    """A validated scenario file (:func:`read_scenario` makes them).

    Parameters
    ----------
    path : Path
        The file.
    name : str
        A slug; it names the output folder.
    title : dict
        Title per language.
    pole : str
        The priority development pole.
    perimeter : dict
        ``neighbourhoods`` (Monitoring codes), ``wkt``, ``geojson`` or ``file``.
    dwellings : dict
        New dwellings per tenure (``social``, ``moderate``, ``market``).
    persons_per_dwelling : float
        Residents per new dwelling.
    jobs : dict
        New jobs per function.
    floor_area_m2 : dict
        New floor area per function (m²).
    facilities : list of Facility
        The facilities the programme adds.
    land_use : dict or None
        Share of the perimeter per land-use function (adds up to 1).
    phasing_year : int or None
        The year the programme is complete.
    surroundings_m : float
        The walking distance around the perimeter that is assessed too (m).
    sources : list of str
        Where the figures come from.
    facts : list
        Figures stated as facts (checked against the programme in the report).
    assumptions : list of str
        Figures stated as assumptions (checked likewise).
    used_defaults : list of str
        The defaults of ``layers/scenario_defaults.yaml`` that were used.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "my_pole.yaml"
    >>> _ = path.write_text(
    ...     "name: my_pole\\n"
    ...     "pole: Josaphat\\n"
    ...     "perimeter: {neighbourhoods: [85]}\\n"
    ...     "programme:\\n"
    ...     "  dwellings: {social: 100, market: 200}\\n"
    ...     "assumptions: ['300 dwellings, 700 residents']\\n")
    >>> scn = read_scenario(path)
    >>> scn.name, scn.persons_per_dwelling, scn.new_residents
    ('my_pole', 2.1, 630.0)
    """

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
        """New residents: dwellings x persons per dwelling."""
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
        self, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
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
    return construct(node)


def _limits() -> dict[str, Any]:
    return read_catalog_file("limits.yaml")["scenario"]


def _number(
    doc: _Doc,
    node: yaml.Node,
    key: str,
    *,
    integer: bool = False,
    minimum: float = 0.0,
    maximum: float = math.inf,
    why: str = "",
) -> float:
    """A finite number in [minimum, maximum]; ``why`` says where the maximum comes
    from."""
    value = _value(node)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.error(f"'{key}' must be a number, got {value!r}", node)
    if not math.isfinite(value):
        raise doc.error(
            f"'{key}' must be a finite number, got {value!r}"
            + (
                f"; allowed: {minimum:,g} to {maximum:,g}" if maximum < math.inf else ""
            ),
            node,
        )
    if integer and value != int(value):
        raise doc.error(f"'{key}' must be a whole number, got {value!r}", node)
    if value < minimum:
        raise doc.error(f"'{key}' must be >= {minimum:g}, got {value!r}", node)
    if value > maximum:
        raise doc.error(
            f"'{key}' = {value:,g} is above the plausible maximum of {maximum:,g}"
            + (f" ({why})" if why else "")
            + "; bounds in layers/limits.yaml",
            node,
        )
    return float(value)


def _numbers(
    doc: _Doc,
    node: yaml.Node,
    key: str,
    allowed: tuple[str, ...] | None,
    *,
    integer: bool = False,
    maximum: float = math.inf,
    why: str = "",
) -> dict[str, float]:
    sub = doc.sub(node, key)
    out = {}
    for k, (knode, vnode) in sub.items().items():
        if allowed is not None and k not in allowed:
            raise sub.error(f"unknown key '{k}'; allowed: {', '.join(allowed)}", knode)
        if not isinstance(k, str):
            raise sub.error(f"keys must be names, got {k!r}", knode)
        out[k] = _number(sub, vnode, k, integer=integer, maximum=maximum, why=why)
    return out


def _total(
    doc: _Doc,
    node: yaml.Node,
    key: str,
    values: dict[str, float],
    maximum: float,
    why: str,
) -> None:
    total = sum(values.values())
    if total > maximum:
        raise doc.error(
            f"'{key}' add up to {total:,g}, above the plausible maximum of "
            f"{maximum:,g} for one pole ({why}); bounds in layers/limits.yaml",
            node,
        )


def _text(doc: _Doc, node: yaml.Node, key: str) -> str:
    value = _value(node)
    if not isinstance(value, str) or not value.strip():
        raise doc.error(f"'{key}' must be text, got {_kind(node)}", node)
    return value


def _slug(doc: _Doc, node: yaml.Node, maximum: int) -> str:
    value = _value(node)
    if (
        not isinstance(value, str)
        or len(value) > maximum
        or not NAME_PATTERN.fullmatch(value)
    ):
        raise doc.error(
            f"'name' must be a short identifier: letters, digits, '_' and '-', "
            f"starting with a letter or digit, at most {maximum} characters (it names "
            f"the output folder, never a path), got {value!r}; put the display name in "
            "'title'",
            node,
        )
    return value


def _code_set(neighbourhoods: gpd.GeoDataFrame | Iterable[int]) -> set[int]:
    if isinstance(neighbourhoods, pd.DataFrame):  # the neighbourhoods layer
        return {int(c) for c in neighbourhoods["code"]}
    return {int(c) for c in neighbourhoods}


def _ranges(codes: set[int]) -> str:
    """1, 2, 3, 7 -> '1-3, 7'."""
    out: list[str] = []
    ordered = sorted(codes)
    start = prev = ordered[0] if ordered else 0
    for c in ordered[1:] + [None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        out.append(f"{start}-{prev}" if prev > start else f"{start}")
        if c is not None:
            start = prev = c
    return ", ".join(out) if ordered else "none"


def _perimeter_file(pdoc: _Doc, node: yaml.Node, scenario: Path) -> str:
    """The perimeter file as declared: a polygon file on disk, relative to the
    scenario; never a URL, a GDAL virtual path or a folder."""
    value = _value(node)
    allowed = ", ".join(POLYGON_SUFFIXES)
    if not isinstance(value, str) or not value.strip():
        raise pdoc.error(
            f"'file' must be the path of a polygon file ({allowed}), got {_kind(node)}",
            node,
        )
    if "://" in value or value.lstrip().lower().startswith("/vsi"):
        raise pdoc.error(
            f"'file' {value!r} must be the path of a polygon file on disk (relative to "
            "the scenario file); URLs and GDAL virtual paths are not read",
            node,
        )
    resolved = (scenario.parent / value).resolve()
    if resolved.is_dir():
        raise pdoc.error(
            f"'file' {value!r} is a folder ({resolved}): give a polygon file ({allowed})",
            node,
        )
    if not resolved.is_file():
        raise pdoc.error(
            f"'file' {value!r} does not exist (looked for {resolved}; the path is "
            "relative to the scenario file)",
            node,
        )
    if resolved.suffix.lower() not in POLYGON_SUFFIXES:
        raise pdoc.error(
            f"'file' {value!r} is not a polygon file: allowed are {allowed}", node
        )
    return str(resolved)


def _text_list(doc: _Doc, node: yaml.Node, key: str) -> list[Any]:
    if not isinstance(node, yaml.SequenceNode):
        raise doc.error(f"'{key}' must be a list", node)
    return [_value(n) for n in node.value]


def read_scenario(
    path: str | Path,
    *,
    region: gpd.GeoDataFrame | None = None,
    neighbourhoods: gpd.GeoDataFrame | Iterable[int] | None = None,
) -> Scenario:
    """Read and validate a scenario file.

    The file is read with the project's safe YAML reader (no anchors, aliases or
    tags); every number must be finite and within the plausible bounds of
    ``layers/limits.yaml``; the name is a slug (it names the output folder).

    Parameters
    ----------
    path
        The YAML file.
    region
        The region layer: when given, a perimeter (WKT, GeoJSON or file) that does not
        lie in the region, or a facility location outside it, is an error (without
        it, locations are checked against the region's bounding box).
    neighbourhoods
        The neighbourhoods layer (its ``code`` column) or the valid Monitoring codes:
        when given, a perimeter naming a code that is not among them is an error here,
        before any preparation.

    Returns
    -------
    Scenario
        The validated scenario, with the defaults used listed in
        ``used_defaults``.

    Raises
    ------
    ConfigError
        Naming the file, the key and its line, and what is allowed.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "my_pole.yaml"
    >>> _ = path.write_text(
    ...     "name: my_pole\\n"
    ...     "pole: Josaphat\\n"
    ...     "perimeter: {neighbourhoods: [85]}\\n"
    ...     "programme:\\n"
    ...     "  dwellings: {social: 100, market: 200}\\n"
    ...     "assumptions: ['300 dwellings, 700 residents']\\n")
    >>> scn = read_scenario(path)
    >>> scn.dwellings, scn.surroundings_m
    ({'social': 100.0, 'moderate': 0.0, 'market': 200.0}, 800.0)
    >>> _ = path.write_text("name: ../etc\\n")
    >>> read_scenario(path)
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: .../my_pole.yaml, line 1: ...
    """
    path = Path(path)
    root = compose_yaml(path, what="scenario file")
    if root is None:
        raise ConfigError(f"{path} is empty")
    doc = _Doc(path, root)
    defaults = read_catalog_file("scenario_defaults.yaml")
    limits = _limits()
    items = doc.check_keys(TOP_KEYS, {"name", "pole", "perimeter", "programme"})
    used: list[str] = []
    name = _slug(doc, items["name"][1], int(limits["name_max_length"]))
    pole = _text(doc, items["pole"][1], "pole")
    outline = shapely.union_all(region.geometry.values) if region is not None else None

    # perimeter
    pdoc = doc.sub(items["perimeter"][1], "perimeter")
    pitems = pdoc.check_keys(PERIMETER_KEYS)
    given = [k for k in ("neighbourhoods", "wkt", "geojson", "file") if k in pitems]
    if len(given) != 1:
        raise pdoc.error("give exactly one of neighbourhoods, wkt, geojson or file")
    perimeter: dict[str, Any] = {k: _value(v) for k, (_kn, v) in pitems.items()}
    if "neighbourhoods" in perimeter:
        codes = perimeter["neighbourhoods"]
        cnode = pitems["neighbourhoods"][1]
        if (
            not isinstance(codes, list)
            or not codes
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes)
        ):
            raise pdoc.error(
                "'neighbourhoods' must be a list of Monitoring codes (whole numbers)",
                cnode,
            )
        if neighbourhoods is not None:
            known = _code_set(neighbourhoods)
            for code, item in zip(codes, cnode.value, strict=True):
                if code not in known:
                    raise pdoc.error(
                        f"neighbourhoods: {code} is not a Monitoring neighbourhood "
                        f"code of the data; known codes: {_ranges(known)}",
                        item,
                    )
    for key in ("kind", "note"):
        if key in pitems:
            _text(pdoc, pitems[key][1], key)
    if "buffer_m" in perimeter:
        perimeter["buffer_m"] = _number(
            pdoc,
            pitems["buffer_m"][1],
            "buffer_m",
            maximum=float(limits["buffer_m_max"]),
            why="a buffer of 5 km covers a third of the region",
        )
    if "file" in perimeter:
        perimeter["file"] = _perimeter_file(pdoc, pitems["file"][1], path)
    geom = _perimeter_geometry(perimeter, pdoc, pitems)
    if geom is not None and outline is not None:
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
        why = "all PRDD poles together announce about 45,000 dwellings"
        top = float(limits["dwellings_max"])
        given_d = _numbers(
            gdoc,
            gitems["dwellings"][1],
            "dwellings",
            TENURES,
            integer=True,
            maximum=top,
            why=why,
        )
        _total(gdoc, gitems["dwellings"][1], "dwellings", given_d, top, why)
        dwellings.update(given_d)
    low, high = (float(v) for v in limits["persons_per_dwelling"])
    if "persons_per_dwelling" in gitems:
        pnode = gitems["persons_per_dwelling"][1]
        ppd = _number(gdoc, pnode, "persons_per_dwelling")
        if not low <= ppd <= high:
            raise gdoc.error(
                f"'persons_per_dwelling' = {ppd:g} is implausible ({low:g}-{high:g})",
                pnode,
            )
    else:
        ppd = float(defaults["persons_per_dwelling"])
        used.append(f"persons per dwelling = {ppd:g} (default, scenario_defaults.yaml)")
    land_use = None
    if "land_use" in gitems:
        land_use = _numbers(
            gdoc,
            gitems["land_use"][1],
            "land_use",
            land_use_functions(),
            maximum=1.0,
            why="a share of the perimeter is between 0 and 1",
        )
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
            if not isinstance(cat, str) or cat not in cats:
                raise fdoc.error(
                    f"unknown category '{cat}'; known: {', '.join(cats)}",
                    fitems["category"][1],
                )
            cap = (
                _number(
                    fdoc,
                    fitems["capacity"][1],
                    "capacity",
                    maximum=float(limits["capacity_max"]),
                    why="the region's largest venue seats about 50,000",
                )
                if "capacity" in fitems
                else None
            )
            loc: Any = (
                _value(fitems["location"][1]) if "location" in fitems else "inside"
            )
            if loc != "inside":
                loc = _location(fdoc, fitems["location"][1], loc, outline, limits)
            label = _text(fdoc, fitems["name"][1], "name") if "name" in fitems else None
            facilities.append(Facility(cat, cap, loc, label))
    first_year, last_year = (int(v) for v in limits["phasing_year"])
    phasing = (
        int(
            _number(
                gdoc,
                gitems["phasing_year"][1],
                "phasing_year",
                integer=True,
                minimum=first_year,
                maximum=last_year,
                why="the PRDD horizons are 2025 and 2040",
            )
        )
        if "phasing_year" in gitems
        else None
    )
    surroundings = (
        _number(
            doc,
            items["surroundings_m"][1],
            "surroundings_m",
            maximum=float(limits["surroundings_m_max"]),
            why="the longest walking threshold is 1,600 m",
        )
        if "surroundings_m" in items
        else float(defaults["surroundings_m"])
    )
    title = _value(items["title"][1]) if "title" in items else {"en": name}
    if not isinstance(title, str | dict) or (
        isinstance(title, dict)
        and not all(isinstance(k, str) and isinstance(v, str) for k, v in title.items())
    ):
        raise doc.error(
            "'title' must be text or a mapping of languages to text, e.g. "
            "{fr: ..., nl: ...}",
            items["title"][1],
        )
    jobs = {}
    if "jobs" in gitems:
        jobs = _numbers(
            gdoc,
            gitems["jobs"][1],
            "jobs",
            None,
            maximum=float(limits["jobs_max"]),
            why="all PRDD poles together announce about 20,000 jobs",
        )
        _total(
            gdoc,
            gitems["jobs"][1],
            "jobs",
            jobs,
            float(limits["jobs_max"]),
            "all PRDD poles together announce about 20,000 jobs",
        )
    floor = {}
    if "floor_area_m2" in gitems:
        floor = _numbers(
            gdoc,
            gitems["floor_area_m2"][1],
            "floor_area_m2",
            None,
            maximum=float(limits["floor_area_m2_max"]),
            why="Heysel, the largest pole, at a floor-area ratio of 5",
        )
    return Scenario(
        path=path,
        name=name,
        title=title if isinstance(title, dict) else {"en": str(title)},
        pole=pole,
        perimeter=perimeter,
        dwellings=dwellings,
        persons_per_dwelling=ppd,
        jobs=jobs,
        floor_area_m2=floor,
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


def _location(
    doc: _Doc,
    node: yaml.Node,
    loc: Any,
    outline: shapely.Geometry | None,
    limits: dict[str, Any],
) -> tuple[float, float]:
    """A facility location [x, y]: finite EPSG:31370 metres inside the region (or its
    bounding box when the region is not given)."""
    ok = (
        isinstance(loc, list)
        and len(loc) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in loc)
    )
    if not ok:
        raise doc.error("'location' must be 'inside' or [x, y] in EPSG:31370", node)
    x, y = float(loc[0]), float(loc[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        raise doc.error(f"'location' must be finite coordinates, got {loc!r}", node)
    if outline is not None:
        inside = bool(shapely.intersects(outline, shapely.Point(x, y)))
    else:
        xmin, ymin, xmax, ymax = (float(v) for v in limits["region_bbox"])
        inside = xmin <= x <= xmax and ymin <= y <= ymax
    if not inside:
        raise doc.error(
            f"'location' [{x:g}, {y:g}] is outside the Brussels region: give [x, y] "
            "in EPSG:31370 (Belgian Lambert 72, metres), e.g. [149000, 170000]",
            node,
        )
    return x, y


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
    except (shapely.errors.GEOSException, ValueError, TypeError, BxlplanError) as exc:
        key = next(k for k in ("wkt", "geojson", "file") if k in perimeter)
        raise doc.error(
            f"cannot read the perimeter '{key}': {exc}", items[key][1]
        ) from exc
    key = next(k for k in ("wkt", "geojson", "file") if k in perimeter)
    if geom is None or shapely.is_empty(geom):
        raise doc.error(
            f"the perimeter '{key}' is empty: give a polygon, or a point with buffer_m",
            items[key][1],
        )
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise doc.error(
            f"the perimeter '{key}' has coordinates that are not finite numbers "
            "(nan or inf): give EPSG:31370 coordinates in metres",
            items[key][1],
        )
    if "buffer_m" in perimeter:
        geom = shapely.buffer(geom, perimeter["buffer_m"])
    if not shapely.area(geom) > 0:
        raise doc.error(
            "the perimeter has no area (give a polygon, or a point with buffer_m)"
        )
    perimeter["_geometry"] = geom
    return geom


def perimeter_area(scn: Scenario, neighbourhoods: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The pole's perimeter as one area (``area_id`` = the scenario name), EPSG:31370.

    Parameters
    ----------
    scn : Scenario
        The scenario.
    neighbourhoods : GeoDataFrame
        The neighbourhoods layer, for a perimeter given as Monitoring codes.

    Returns
    -------
    GeoDataFrame
        One row: ``area_id``, ``name_fr``, ``name_nl`` and the perimeter.

    Raises
    ------
    ConfigError
        When the perimeter names unknown neighbourhoods or is not a polygon.

    Examples
    --------
    >>> import bxlplan
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "my_pole.yaml"
    >>> _ = path.write_text(
    ...     "name: my_pole\\n"
    ...     "pole: Josaphat\\n"
    ...     "perimeter: {neighbourhoods: [85]}\\n"
    ...     "programme:\\n"
    ...     "  dwellings: {social: 100, market: 200}\\n"
    ...     "assumptions: ['300 dwellings, 700 residents']\\n")
    >>> area = perimeter_area(read_scenario(path), bxlplan.load("neighbourhoods"))
    >>> area["area_id"].tolist(), round(float(area.area.iloc[0]) / 1e4)  # hectares
    (['my_pole'], 61)
    """
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
