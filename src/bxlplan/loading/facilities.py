"""Facilities: OSM POIs, sport/play polygons and points, transit stops and green spaces
classified into planner categories by the rule table of ``layers/facilities.yaml``.

A category with no facility in the data is *missing data*: it is listed in
``.attrs["bxlplan"]["missing_categories"]`` and must never be read as "nobody has
access". A category is *partial* (``.attrs["bxlplan"]["partial_categories"]``, with
the reason) when a source it draws on is not available, or when the file a source
layer was read from is marked ``partial`` in the catalog (e.g. the truncated GTFS
sample of transit stops).

Transit stops are counted per stop place (:func:`bxlplan.loading.transit.stop_places`):
the stop points of one place share one ``facility_id`` and the place is reached at its
nearest stop point. A source marked ``required`` in the catalog must be present.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import ConfigError, DataError
from .catalog import LayerSpec, get_spec
from .layers import load_layer
from .provenance import provenance
from .readers import read_vector
from .transit import file_entry, stop_places
from .validate import WORKING_CRS, clean_geometries, to_working_crs

__all__ = [
    "categories",
    "classify",
    "facility_summary",
    "load_facilities",
]


def categories(spec: LayerSpec | None = None) -> dict[str, dict[str, Any]]:
    """Facility categories with label, theme, minutes and ``threshold_m`` (metres).

    The threshold is the walking time at the walking speed of the catalog
    (``walking_speed_m_s`` of ``layers/facilities.yaml``, its only place).

    Parameters
    ----------
    spec : LayerSpec, optional
        The ``facilities`` entry of the catalog (default: the catalog's).

    Returns
    -------
    dict
        Category -> its entry of the catalog (``label``, ``theme``, ``minutes``, ...)
        and ``threshold_m``.

    Raises
    ------
    ConfigError
        When the catalog gives no walking speed.

    Examples
    --------
    >>> cats = categories()
    >>> cats["pharmacy"]["minutes"], cats["pharmacy"]["threshold_m"]
    (10, 800)
    """
    spec = spec or get_spec("facilities")
    if "walking_speed_m_s" not in spec.raw:
        raise ConfigError(
            f"layer '{spec.name}': 'walking_speed_m_s' is missing from the catalog "
            "(metres per second, e.g. 1.3333333 for 4.8 km/h)"
        )
    speed = float(spec.raw["walking_speed_m_s"])
    out = {}
    for name, cat in spec.raw["categories"].items():
        minutes = float(cat["minutes"])
        out[name] = {**cat, "threshold_m": round(minutes * 60 * speed)}
    return out


def _tag_match(values: pd.Series, patterns: str | list[str]) -> pd.Series:
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    rx = re.compile(
        "|".join(f"(?:{fnmatch.translate(p.lower())})" for p in pats), re.IGNORECASE
    )
    text = values.astype("object")
    present = text.notna() & (text.astype(str).str.strip() != "")
    return present & text.astype(str).str.lower().str.match(rx)


def classify(
    features: pd.DataFrame,
    rules: list[dict[str, Any]],
    source: str,
    multi: bool = False,
) -> pd.DataFrame:
    """Classify the features of one source with the rules written for it.

    Parameters
    ----------
    features : DataFrame
        The features of the source, with their tags as columns.
    rules : list of dict
        The rule table (``rules`` of ``layers/facilities.yaml``): ``source``,
        ``category``, ``tags`` (tag -> glob patterns), optionally ``name`` (a regular
        expression) and ``min_area_ha``.
    source : str
        The source the features come from: only its rules apply.
    multi : bool, default False
        With False the first matching rule wins; with True every matching rule
        applies.

    Returns
    -------
    DataFrame
        One row per (feature, category): the feature's index in ``feature``, the
        ``category`` and the ``rule`` (its number in the table).

    Examples
    --------
    >>> pois = pd.DataFrame({"amenity": ["pharmacy", "bar", "library"]})
    >>> rules = [
    ...     {"source": "poi", "category": "pharmacy", "tags": {"amenity": "pharmacy"}},
    ...     {"source": "poi", "category": "library", "tags": {"amenity": "librar*"}},
    ... ]
    >>> classify(pois, rules, "poi")
       feature  category  rule
    0        0  pharmacy     0
    1        2   library     1
    """
    taken = pd.Series(False, index=features.index)
    parts = []
    for number, rule in enumerate(rules):
        if rule.get("source") != source:
            continue
        ok = pd.Series(True, index=features.index)
        for tag, patterns in (rule.get("tags") or {}).items():
            col = (
                features[tag]
                if tag in features
                else pd.Series(None, index=features.index)
            )
            ok &= _tag_match(col, patterns)
        if "name" in rule:
            names = features.get("name", pd.Series(None, index=features.index))
            ok &= names.fillna("").astype(str).str.contains(rule["name"], regex=True)
        if "min_area_ha" in rule:
            ok &= features.get(
                "area_ha", pd.Series(0.0, index=features.index)
            ) >= float(rule["min_area_ha"])
        if not multi:
            ok &= ~taken
            taken |= ok
        hit = features.index[ok.to_numpy()]
        parts.append(
            pd.DataFrame({"feature": hit, "category": rule["category"], "rule": number})
        )
    if not parts:
        return pd.DataFrame({"feature": [], "category": [], "rule": []})
    return pd.concat(parts, ignore_index=True)


def _only_source_of(name: str, rules: list[dict[str, Any]]) -> list[str]:
    """Categories whose every rule reads the source ``name``."""
    by_cat: dict[str, set[str]] = {}
    for rule in rules:
        by_cat.setdefault(rule["category"], set()).add(rule["source"])
    return sorted(c for c, srcs in by_cat.items() if srcs == {name})


def _read_source(
    name: str,
    src: dict[str, Any],
    data: Path,
    report: list[str],
    given: dict[str, Any],
    rules: list[dict[str, Any]],
):
    if "layer" in src:
        if src["layer"] in given:
            return given[src["layer"]]
        try:
            return load_layer(src["layer"], data)
        except DataError as exc:
            report.append(f"facility source '{name}' not available: {exc}")
            return None
    path = data / src["path"]
    if not path.is_file():
        if src.get("required"):
            only = ", ".join(_only_source_of(name, rules)) or "several categories"
            raise DataError(
                f"facility source '{name}' is missing: {path} does not exist. It is "
                f"required: it is the only source of {only}. Put "
                f"the file at {src['path']} in the data folder, or set "
                f"sources.{name}.path in layers/facilities.yaml to where it is."
            )
        report.append(f"facility source '{name}' not available: {path} is missing")
        return None
    gdf = read_vector(path, columns=src.get("columns"))
    gdf = to_working_crs(gdf, str(path))
    gdf = clean_geometries(gdf, str(path), report)
    gdf.attrs["bxlplan"] = {"source": str(path)}
    return gdf


def _partial_file(src: dict[str, Any], gdf: gpd.GeoDataFrame) -> str | None:
    """The catalog's ``partial`` note of the file a layer source was read from."""
    if "layer" not in src:
        return None
    used = gdf.attrs.get("bxlplan", {}).get("source")
    if not used:
        return None
    note = file_entry(get_spec(src["layer"]), used).get("partial")
    return f"{note} ({used})" if note else None


def _boundary_points(green: gpd.GeoDataFrame, spacing: float) -> gpd.GeoDataFrame:
    rings = shapely.boundary(green.geometry.values)
    lengths = shapely.length(rings)
    counts = np.maximum(1, np.ceil(lengths / spacing).astype(int))
    owner = np.repeat(np.arange(len(green)), counts)
    frac = np.concatenate([np.arange(c) / c for c in counts])
    pts = shapely.line_interpolate_point(rings[owner], frac, normalized=True)
    out = green.iloc[owner].drop(columns=green.geometry.name).reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry=pts, crs=green.crs)


def load_facilities(
    spec: LayerSpec, data: Path, layers: dict[str, Any] | None = None
) -> gpd.GeoDataFrame:
    """Load and classify every facility source (see the module docstring).

    :func:`bxlplan.load` calls it for ``load("facilities")``.

    Parameters
    ----------
    spec : LayerSpec
        The ``facilities`` entry of the catalog.
    data : Path
        The data folder.
    layers : dict, optional
        Catalog layers already loaded (e.g. ``green_spaces``, ``region``): reused
        instead of being read again.

    Returns
    -------
    GeoDataFrame
        One row per (facility, category) in EPSG:31370: ``facility_id``,
        ``category``, ``threshold_m``, ``source``, ``rule_text``, ... Missing and
        partial categories, counts and provenance in ``.attrs["bxlplan"]``.

    Raises
    ------
    DataError
        When a required source is missing or unreadable.

    Examples
    --------
    >>> from bxlplan.loading.catalog import data_dir, get_spec
    >>> fac = load_facilities(get_spec("facilities"), data_dir())  # $BXLPLAN_DATA
    >>> fac.crs.to_epsg(), "pharmacy" in set(fac["category"])
    (31370, True)
    """
    given = layers or {}
    report: list[str] = []
    cats = categories(spec)
    rules = spec.raw["rules"]
    unknown = sorted({r["category"] for r in rules} - set(cats))
    if unknown:
        raise ConfigError(f"{spec.path}: rules name unknown categories {unknown}")
    frames = []
    sources_used = {}
    degraded: dict[str, str] = {}  # source -> why its categories are partial
    places: dict[str, int] = {}  # source -> stop points, for the report
    for order, (name, src) in enumerate(spec.raw["sources"].items()):
        gdf = _read_source(name, src, data, report, given, rules)
        if gdf is None:
            degraded[name] = f"facility source '{name}' not available"
            continue
        sources_used[name] = gdf.attrs.get("bxlplan", {}).get(
            "source", str(src.get("path"))
        )
        note = _partial_file(src, gdf)
        if note:
            degraded[name] = note
        if "layer" in src:  # what loading the layer reported (kept, left out, fixed)
            report += [
                f"layer '{src['layer']}': {line}"
                for line in gdf.attrs.get("bxlplan", {}).get("report", [])
            ]
        gdf = gdf.reset_index(drop=True)
        if "stop_places" in src:  # one facility per stop place, not per stop point
            within = float(src["stop_places"]["same_name_within_m"])
            gdf = stop_places(gdf, within, report=report)
            gdf["name"] = gdf["place_name"]
            places[name] = len(gdf)
        multi = name == "green"
        hits = classify(gdf, rules, name, multi=multi)
        if hits.empty:
            continue
        if multi:  # green spaces: reached at their edge, identified by green_id
            pts = _boundary_points(gdf, float(src.get("boundary_spacing_m", 50)))
            sel = hits.merge(
                pd.DataFrame({"feature": gdf.index, "green_id": gdf["green_id"]}),
                on="feature",
            )
            pts = pts.merge(sel[["green_id", "category", "rule"]], on="green_id")
            pts["facility_id"] = "green:" + pts["green_id"].astype(str)
            frame = pts
        else:
            frame = (
                gdf.loc[hits["feature"]]
                .reset_index()
                .rename(columns={"index": "feature"})
            )
            frame["category"] = hits["category"].to_numpy()
            frame["rule"] = hits["rule"].to_numpy()
            ident = frame["place_id"] if "place_id" in frame else frame["feature"]
            frame["facility_id"] = name + ":" + ident.astype(str)
            frame = frame.set_geometry(shapely.point_on_surface(frame.geometry.values))
        frame["source"] = name
        frame["source_order"] = order
        frames.append(frame)
    if not frames:
        raise DataError(
            f"no facility source could be read from {data}: put the files that "
            "layers/facilities.yaml lists under sources in the data folder"
        )
    keep = [
        "facility_id",
        "category",
        "rule",
        "source",
        "source_order",
        "name",
        "name:fr",
        "name:nl",
        "capacity",
        "area_ha",
        "geometry",
    ]
    fac = pd.concat([f[[c for c in keep if c in f]] for f in frames], ignore_index=True)
    fac = gpd.GeoDataFrame(fac, geometry="geometry", crs=WORKING_CRS)
    fac = fac.rename(columns={"name:fr": "name_fr", "name:nl": "name_nl"})
    for col in ("name", "name_fr", "name_nl"):
        if col not in fac:
            fac[col] = None
    fac["name"] = fac["name"].where(fac["name"].notna(), fac["name_fr"])
    fac["capacity"] = pd.to_numeric(fac.get("capacity"), errors="coerce")
    fac = _dedupe(fac, float(spec.raw.get("dedupe_m", 25)), report)
    fac["theme"] = fac["category"].map(lambda c: cats[c]["theme"])
    fac["threshold_m"] = fac["category"].map(lambda c: cats[c]["threshold_m"])
    fac["rule_text"] = fac["rule"].map(lambda r: _rule_text(rules[int(r)]))
    try:
        region = given["region"] if "region" in given else load_layer("region", data)
        outline = region.geometry.iloc[0].buffer(1.0)
        shapely.prepare(outline)  # thousands of points against one complex polygon
        fac["in_region"] = shapely.contains(outline, np.asarray(fac.geometry.values))
    except DataError as exc:
        report.append(f"region not available, in_region unknown: {exc}")
        fac["in_region"] = pd.NA
    fac = fac.drop(columns=["source_order"]).reset_index(drop=True)
    for name, n_points in places.items():
        _report_places(fac[fac["source"] == name], name, n_points, report)
    counts = fac.groupby("category")["facility_id"].nunique()
    missing = [c for c in cats if counts.get(c, 0) == 0]
    partial = _partial_categories(rules, degraded, missing)
    for c in missing:
        report.append(
            f"category '{c}' has no facility in the data: reported as missing, never as "
            "zero access"
        )
    for c, why in partial.items():
        report.append(f"category '{c}' is partial: {why}")
    # provenance names the first source read from a file (the POI file in the pack)
    first = next((Path(p) for p in sources_used.values() if Path(p).is_file()), None)
    record = (
        provenance(spec, first, report)
        if first is not None
        else {"layer": spec.name, "source": str(data), "report": list(report)}
    )
    fac.attrs["bxlplan"] = {
        **record,
        "sources": sources_used,
        "counts": {c: int(counts.get(c, 0)) for c in cats},
        "missing_categories": missing,
        "partial_categories": partial,
    }
    return fac


def _partial_categories(
    rules: list[dict[str, Any]], degraded: dict[str, str], missing: list[str]
) -> dict[str, str]:
    """Categories with facilities that draw on a degraded source, with the reasons.

    A source is degraded when it is not available or its file is marked ``partial``;
    a category with no facility at all is missing, not partial.
    """
    out: dict[str, list[str]] = {}
    for rule in rules:
        why = degraded.get(rule["source"])
        cat = rule["category"]
        if why and cat not in missing and why not in out.setdefault(cat, []):
            out[cat].append(why)
    return {c: "; ".join(w) for c, w in out.items() if w}


def _report_places(
    sub: gpd.GeoDataFrame, source: str, n_points: int, report: list[str]
) -> None:
    """Counts of a stop-place source: stop points, stop places, places in the region."""
    n_places = sub["facility_id"].nunique()
    line = (
        f"facility source '{source}': {n_places} stop places from {n_points} stop "
        "points"
    )
    if n_places and sub["in_region"].notna().all():
        inside = sub.groupby("facility_id")["in_region"].any()
        line += (
            f"; {int(inside.sum())} stop places ({int(sub['in_region'].sum())} stop "
            f"points) inside the region, {int((~inside).sum())} beyond it kept (they "
            "serve residents near the border; in_region is False)"
        )
    report.append(line)


def _rule_text(rule: dict[str, Any]) -> str:
    tags = ", ".join(f"{k}={v}" for k, v in (rule.get("tags") or {}).items())
    extra = f" name~/{rule['name']}/" if "name" in rule else ""
    return f"{rule['source']}: {tags or 'all'}{extra}"


def _dedupe(
    fac: gpd.GeoDataFrame, radius: float, report: list[str]
) -> gpd.GeoDataFrame:
    """Drop a facility found again by a later source within ``radius`` metres."""
    drop = np.zeros(len(fac), dtype=bool)
    for _cat, group in fac[~fac["facility_id"].str.startswith("green:")].groupby(
        "category"
    ):
        if group["source_order"].nunique() < 2:
            continue
        first = group["source_order"].min()
        base = group[group["source_order"] == first]
        later = group[group["source_order"] != first]
        tree = shapely.STRtree(base.geometry.values)
        idx_later, _ = tree.query(
            later.geometry.values, predicate="dwithin", distance=radius
        )
        drop[fac.index.get_indexer(later.index[np.unique(idx_later)])] = True
    if drop.any():
        report.append(
            f"dropped {int(drop.sum())} facilities mapped twice (within {radius:g} m of the "
            "same category from an earlier source)"
        )
    return fac.loc[~drop]


def facility_summary(fac: gpd.GeoDataFrame) -> pd.DataFrame:
    """Count of facilities per category with its status.

    Parameters
    ----------
    fac : GeoDataFrame
        Facilities (:func:`load_facilities`).

    Returns
    -------
    DataFrame
        One row per category of the catalog: ``category``, ``label_en``,
        ``threshold_m``, ``count`` and ``status``: ``ok``, ``partial`` or ``missing``
        (no data: never to be read as zero facilities; ``count`` is NA then).

    Examples
    --------
    >>> fac = gpd.GeoDataFrame({"category": ["pharmacy", "pharmacy"],
    ...                         "facility_id": [1, 2]},
    ...                        geometry=gpd.points_from_xy([0, 1], [0, 1]))
    >>> summary = facility_summary(fac).set_index("category")
    >>> summary.loc["pharmacy", "count"], summary.loc["library", "status"]
    (2, 'missing')
    """
    meta = fac.attrs.get("bxlplan", {})
    cats = categories()
    counts = (
        meta.get("counts") or fac.groupby("category")["facility_id"].nunique().to_dict()
    )
    partial = meta.get("partial_categories", {})
    rows = []
    for cat, info in cats.items():
        n = int(counts.get(cat, 0))
        status = "missing" if n == 0 else ("partial" if cat in partial else "ok")
        rows.append(
            {
                "category": cat,
                "label_en": info["label"]["en"],
                "threshold_m": info["threshold_m"],
                "count": n if n else pd.NA,
                "status": status,
            }
        )
    return pd.DataFrame(rows)
