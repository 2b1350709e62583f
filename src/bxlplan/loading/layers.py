"""One catalog layer of any kind but ``facilities``, read from its file and cleaned.

The loader below :func:`bxlplan.load`: the facilities (a composite of several layers,
:mod:`.facilities`) read their source layers through :func:`load_layer`, and
:func:`bxlplan.load` dispatches to one or the other, so that no two loading modules
import each other.

Every vector layer comes back in Belgian Lambert 72 (EPSG:31370) with its canonical
columns (see the catalog) next to the source columns, and provenance in
``.attrs["bxlplan"]``: source path or URL, sha256, licence, attribution, load time and
the report of what cleaning changed.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from ..errors import ConfigError, DataError
from .catalog import LayerSpec, data_dir, get_spec, read_catalog_file
from .expect import require_plausible
from .network import load_streets
from .provenance import provenance
from .readers import read_table, read_vector
from .transit import read_stops
from .validate import apply_columns, clean_geometries, to_working_crs

__all__ = ["classify_functions", "function_rules", "land_use_functions", "load_layer"]

_log = logging.getLogger(__name__)


def _resolve(
    spec: LayerSpec, data: Path | None, path: Path | None
) -> tuple[Path, dict]:
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path} does not exist (layer '{spec.name}')")
        entry = next((e for e in spec.files if Path(e["path"]).name == path.name), {})
        return path, entry
    assert data is not None
    found = spec.find_file(data)
    if found is None:
        wanted = ", ".join(e["path"] for e in spec.files) or "(no file: official only)"
        hint = (
            f" or run `bxlplan fetch --data {data} {spec.name}`" if spec.fetch else ""
        )
        raise DataError(
            f"layer '{spec.name}' is not in the data folder {data}: looked for "
            f"{wanted}. Put the file there{hint}."
        )
    return found


def load_layer(
    name: str,
    data: str | os.PathLike[str] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> gpd.GeoDataFrame | pd.DataFrame:
    """Load one layer of the catalog of any kind but ``facilities``.

    :func:`bxlplan.load` calls it for every layer but ``facilities`` (built from
    several layers).

    Parameters
    ----------
    name : str
        The catalog name of the layer.
    data : str or path-like, optional
        The data folder (default ``$BXLPLAN_DATA``).
    path : str or path-like, optional
        A file to read instead of the one the catalog finds in ``data``.

    Returns
    -------
    GeoDataFrame or DataFrame
        The cleaned layer (a DataFrame for tables), provenance in
        ``.attrs["bxlplan"]``.

    Raises
    ------
    ConfigError
        For ``facilities`` or a name not in the catalog.
    DataError
        When the file is missing, unreadable or empty.

    Examples
    --------
    >>> region = load_layer("region")  # the data folder from $BXLPLAN_DATA
    >>> len(region), region.crs.to_epsg()
    (1, 31370)
    """
    spec = get_spec(name)
    if spec.kind == "facilities":
        raise ConfigError(
            f"layer '{name}' is built from several layers: load it with "
            "bxlplan.load('facilities'), not as a source of another layer"
        )
    folder = data_dir(data) if path is None else None
    file, entry = _resolve(spec, folder, Path(path) if path else None)
    if spec.kind == "network":
        obj = load_streets(spec, file)
    elif spec.kind == "table":
        obj = _load_table(spec, file, entry)
    else:
        report: list[str] = []
        if spec.kind == "gtfs_stops":
            gdf = read_stops(file, spec, entry=entry, report=report)
        else:
            gdf = read_vector(file, layer=entry.get("layer"), crs=entry.get("crs"))
        obj = _finish_vector(spec, gdf, file, report, layer=entry.get("layer"))
    if path is None and entry.get("fallback"):
        _announce_fallback(spec, obj, file, entry)
    return obj


def _announce_fallback(spec: LayerSpec, obj: Any, file: Path, entry: dict) -> None:
    """A fallback file stands in for a missing better one: it must pass the same
    plausibility checks as ``bxlplan check``, and its use is announced on the console
    (a warning) and in the provenance (``fallback``), never silent."""
    preferred = [e["path"] for e in spec.files[: spec.files.index(entry)]]
    what = f" - a fallback used because {', '.join(preferred)} is missing -"
    require_plausible(spec, obj, what=what)
    note = (
        f"layer '{spec.name}': {file} is a fallback ({entry['fallback']}), used because "
        f"{', '.join(preferred)} is missing from the data folder"
    )
    _log.warning(note)
    meta = obj.attrs.setdefault("bxlplan", {})
    meta["fallback"] = {
        "file": str(file),
        "reason": entry["fallback"],
        "instead_of": preferred,
    }
    meta.setdefault("report", []).append(note)


def _finish_vector(
    spec: LayerSpec,
    gdf: gpd.GeoDataFrame,
    file: Path,
    report: list[str],
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    source = str(file)
    gdf = to_working_crs(gdf, source, layer)
    gdf = clean_geometries(gdf, source, report, layer)
    if len(gdf) == 0:
        raise DataError(f"{source}: no feature has a geometry; the layer is empty")
    gdf = apply_columns(gdf, spec.columns, source=source, report=report)
    post = _POST.get(spec.name)
    if post is not None:
        gdf = post(spec, gdf, report)
    gdf = gdf.reset_index(drop=True)
    gdf.attrs["bxlplan"] = provenance(spec, file, report)
    return gdf


def _load_table(spec: LayerSpec, file: Path, entry: dict) -> pd.DataFrame:
    report: list[str] = []
    df, rows, summary = read_table(
        file, entry.get("format", "csv"), entry.get("value_column")
    )
    if len(df) == 0:
        raise DataError(f"{file}: the table has no rows")
    summary_codes = {int(c) for c in spec.raw.get("summary_codes", [])}
    key = spec.raw.get("key")
    code_col = next(c for c in spec.columns if c.name == "code")
    src = next((s for s in code_col.source if s in df.columns), None)
    if src is not None and summary_codes:
        as_int = pd.to_numeric(df[src], errors="coerce")
        is_summary = as_int.isin(summary_codes)
        for _, row in df[is_summary].iterrows():
            summary[str(row[src])] = row.to_dict()
        rows = [r for r, s in zip(rows, is_summary, strict=True) if not s]
        df = df.loc[~is_summary].reset_index(drop=True)
    df = apply_columns(
        df, spec.columns, source=str(file), report=report, rows=rows, key=key
    )
    if "value" in df and "value_flag" not in df:
        df["value_flag"] = pd.Series([None] * len(df), dtype="object")
    df.attrs["bxlplan"] = provenance(
        spec,
        file,
        report,
        units=spec.raw.get("units"),
        unit=spec.raw.get("unit"),
        year=spec.raw.get("year"),
        summary={k: str(v) for k, v in summary.items()},
    )
    return df


# --- per-layer post-processing ----------------------------------------------------


def _post_communes(
    spec: LayerSpec, gdf: gpd.GeoDataFrame, report: list[str]
) -> gpd.GeoDataFrame:
    names = {int(k): v for k, v in spec.raw.get("names", {}).items()}
    for lang in ("fr", "nl"):
        col = f"name_{lang}"
        filled = gdf["code"].map(lambda c, lang=lang: names.get(int(c), {}).get(lang))
        gdf[col] = gdf[col].where(gdf[col].notna(), filled)
    unknown = sorted(int(c) for c in gdf["code"] if int(c) not in names)
    if unknown:
        report.append(f"communes with NIS codes not in the catalog's table: {unknown}")
    return gdf


def _post_neighbourhoods(
    spec: LayerSpec, gdf: gpd.GeoDataFrame, _report: list[str]
) -> gpd.GeoDataFrame:
    lo, hi = spec.raw.get("inhabited_codes", [1, 118])
    gdf["inhabited"] = gdf["code"].between(lo, hi).astype(bool)
    return gdf


def land_use_functions() -> tuple[str, ...]:
    """The canonical land-use functions, in the order that wins an overlap.

    The one list of ``layers/functions.yaml`` (``functions``): the land-use mix, the
    scenarios' ``land_use`` and the labels all read it from there.

    Returns
    -------
    tuple of str
        The functions, the more specific first (a park inside a residential polygon
        counts as green, see :func:`bxlplan.indicators.diversity.landuse_surface`).

    Examples
    --------
    >>> land_use_functions()
    ('green', 'transport', 'facilities', 'economic', 'mixed', 'housing', 'other')
    """
    return tuple(read_catalog_file("functions.yaml")["functions"])


def function_rules(kind: str) -> Any:
    """Return the rules of ``layers/functions.yaml`` that map ``kind`` to functions.

    Parameters
    ----------
    kind : {"pras", "osm_landuse"}
        The classification: PRAS/GBP zone names or OSM ``landuse`` values.

    Returns
    -------
    list of dict or dict
        For ``pras``, the ordered rules (``pattern``, ``function``); for
        ``osm_landuse``, a mapping value -> function (``*`` the default).

    Examples
    --------
    >>> function_rules("osm_landuse")["residential"]
    'housing'
    """
    return read_catalog_file("functions.yaml")[kind]


def classify_functions(values: pd.Series, kind: str) -> pd.Series:
    """Map zone names (``pras``) or OSM ``landuse`` values to canonical functions.

    Parameters
    ----------
    values : Series
        Zone names (``pras``) or OSM ``landuse`` values.
    kind : {"pras", "osm_landuse"}
        Which rules of ``layers/functions.yaml`` apply (:func:`function_rules`).

    Returns
    -------
    Series
        The function of each value (:func:`land_use_functions`), indexed like
        ``values``; ``other`` when no rule matches.

    Examples
    --------
    >>> zones = pd.Series(["Zone d'habitation", "Zone de parc"])
    >>> classify_functions(zones, "pras").tolist()
    ['housing', 'green']
    >>> classify_functions(pd.Series(["retail", "quarry"]), "osm_landuse").tolist()
    ['economic', 'other']
    """
    rules = function_rules(kind)
    if kind == "osm_landuse":
        default = rules.get("*", "other")
        return values.map(lambda v: rules.get(str(v).strip().lower(), default))
    compiled = [(re.compile(r["pattern"], re.IGNORECASE), r["function"]) for r in rules]

    def one(v: Any) -> str:
        text = "" if v is None else str(v)
        return next((f for rx, f in compiled if rx.search(text)), "other")

    return values.map(one)


def _post_zoning(
    spec: LayerSpec, gdf: gpd.GeoDataFrame, report: list[str]
) -> gpd.GeoDataFrame:
    column = "zone" if spec.name == "pras" else "landuse"
    gdf["function"] = classify_functions(gdf[column], spec.raw["function_mapping"])
    non_poly = ~gdf.geom_type.isin(["Polygon", "MultiPolygon"])
    if non_poly.any():
        report.append(f"dropped {int(non_poly.sum())} non-polygon feature(s)")
        gdf = gdf.loc[~non_poly]
    return gdf


def _matches(gdf: pd.DataFrame, rule: dict[str, list[str]]) -> pd.Series:
    ok = pd.Series(True, index=gdf.index)
    for tag, values in rule.items():
        col = gdf[tag] if tag in gdf else pd.Series(None, index=gdf.index)
        ok &= col.isin(values)
    return ok


def _post_green(
    spec: LayerSpec, gdf: gpd.GeoDataFrame, report: list[str]
) -> gpd.GeoDataFrame:
    keep = pd.Series(False, index=gdf.index)
    for rule in spec.raw.get("include", []):
        keep |= _matches(gdf, rule)
    for rule in spec.raw.get("exclude", []):
        keep &= ~_matches(gdf, rule)
    src = gdf.loc[keep]
    report.append(
        f"{int(keep.sum())} of {len(gdf)} green polygons are public parks/woods; "
        "overlapping and touching pieces merged into green spaces"
    )
    merged = shapely.get_parts(shapely.union_all(src.geometry.values))
    merged = merged[shapely.area(merged) > 0]
    out = gpd.GeoDataFrame(geometry=merged, crs=gdf.crs)
    # name of each merged green space: the name of its largest named piece
    named = src.loc[src["name"].notna(), ["name", "geometry"]].copy()
    named["piece_area"] = named.area
    joined = gpd.sjoin(
        out, gpd.GeoDataFrame(named, crs=gdf.crs), predicate="intersects"
    )
    joined = joined.sort_values("piece_area", ascending=False)
    out["name"] = joined.groupby(level=0)["name"].first().reindex(out.index)
    out["area_ha"] = out.area / 10_000.0
    out["large"] = out["area_ha"] >= float(spec.raw.get("large_ha", 3.0))
    out["green_id"] = range(len(out))
    return out


_POST = {
    "communes": _post_communes,
    "neighbourhoods": _post_neighbourhoods,
    "pras": _post_zoning,
    "landuse_osm": _post_zoning,
    "green_spaces": _post_green,
}
