"""``load(name)``: one obvious way to get any Brussels layer as a clean GeoDataFrame.

Every vector layer comes back in Belgian Lambert 72 (EPSG:31370) with its canonical
columns (see the catalog) next to the source columns, and provenance in
``.attrs["bxlplan"]``: source path or URL, sha256, licence, attribution, load time and
the report of what cleaning changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .. import __version__
from .._io import run_timestamp
from ..errors import DataError
from .catalog import LayerSpec, data_dir, get_spec, read_catalog_file
from .readers import read_table, read_vector
from .transit import read_stops
from .validate import apply_columns, clean_geometries, to_working_crs

__all__ = ["load", "load_polygons", "provenance", "sha256_file"]

_log = logging.getLogger(__name__)


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def provenance(
    spec: LayerSpec | None, path: Path, report: list[str], **extra: Any
) -> dict[str, Any]:
    """Build the provenance record stored in ``.attrs["bxlplan"]``."""
    record: dict[str, Any] = {
        "layer": spec.name if spec else None,
        "source": str(path),
        "sha256": sha256_file(path),
        "licence": spec.licence if spec else "user-supplied",
        "attribution": spec.attribution if spec else "",
        "loaded_at": run_timestamp().isoformat(),
        "bxlplan_version": __version__,
        "report": list(report),
    }
    sidecar = path.with_name(path.name + ".provenance.json")
    if sidecar.is_file():  # written by `bxlplan fetch`
        try:
            record["fetched"] = json.loads(sidecar.read_text(encoding="utf-8"))
            record["source_url"] = record["fetched"].get("url")
        except json.JSONDecodeError:
            report.append(f"{sidecar}: unreadable provenance record, ignored")
    record.update(extra)
    return record


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


def load(
    name: str,
    data: str | os.PathLike[str] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> gpd.GeoDataFrame | pd.DataFrame:
    """Load one layer of the catalog.

    Parameters
    ----------
    name
        A layer of the catalog (``bxlplan layers`` lists them): e.g. ``"neighbourhoods"``,
        ``"communes"``, ``"income_equivalised"``, ``"facilities"``, ``"streets"``.
    data
        The data folder (default: ``$BXLPLAN_DATA``).
    path
        Read this file instead of looking in the data folder.

    Returns
    -------
    GeoDataFrame or DataFrame
        Vector layers in EPSG:31370 with canonical columns; tables (``kind: table``)
        as DataFrames with ``code``, ``value`` and ``value_flag``; ``streets`` as the
        edges of the walkable graph (``u``, ``v``, ``length``). Provenance is in
        ``.attrs["bxlplan"]``.

    Raises
    ------
    DataError
        When the file is missing or fails validation; the message says which file,
        field or row, and what to do.

    Examples
    --------
    >>> hoods = bxlplan.load("neighbourhoods", data="../shared/data/brussels")
    >>> len(hoods), hoods.crs.to_epsg()
    (145, 31370)
    """
    spec = get_spec(name)
    folder = data_dir(data) if path is None else None
    if spec.kind == "facilities":
        from .facilities import load_facilities

        return load_facilities(spec, data_dir(data))
    file, entry = _resolve(spec, folder, Path(path) if path else None)
    if spec.kind == "network":
        from .network import load_streets

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
    from .expect import require_plausible

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


def _field(gdf: gpd.GeoDataFrame, given: str | None, tried: list[str],
           what: str, file: Path) -> str | None:  # fmt: skip
    by_lower = {str(c).lower(): c for c in gdf.columns if c != gdf.geometry.name}
    if given is not None:
        if given.lower() not in by_lower:
            raise DataError(
                f"{file}: there is no field '{given}' for the {what}; fields: "
                f"{', '.join(map(str, by_lower.values()))}"
            )
        return by_lower[given.lower()]
    return next((by_lower[f] for f in tried if f in by_lower), None)


def _flatten_lists(
    gdf: gpd.GeoDataFrame, file: Path, report: list[str]
) -> gpd.GeoDataFrame:
    """List- or mapping-valued properties (GeoJSON arrays, objects) become JSON text,
    with a note: GIS formats cannot store them and they must never crash a run."""

    def nested(v: Any) -> bool:
        return isinstance(v, list | tuple | dict | set | np.ndarray)

    def text(v: Any) -> Any:
        if not nested(v):
            return v
        v = v.tolist() if isinstance(v, np.ndarray) else v
        return json.dumps(v, ensure_ascii=False, default=str)

    for col in gdf.columns:
        if col == gdf.geometry.name or not pd.api.types.is_object_dtype(gdf[col]):
            continue
        flags = gdf[col].map(nested).to_numpy(dtype=bool)
        if flags.any():
            gdf[col] = gdf[col].map(text)
            report.append(
                f"{file}: field '{col}' holds lists or objects in {int(flags.sum())} "
                "feature(s): kept as JSON text"
            )
    return gdf


def load_polygons(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    id_field: str | None = None,
    name_field: str | None = None,
    data: str | os.PathLike[str] | None = None,
) -> gpd.GeoDataFrame:
    """Load a user's polygon file (areas to assess) with the same checks as the catalog.

    Parameters
    ----------
    path
        A GeoPackage, GeoJSON or Shapefile of polygons, in any CRS.
    layer
        The layer of a multi-layer file.
    id_field, name_field
        The fields holding each unit's identifier and name; detected from common names
        (``layers/user_units.yaml``, case-insensitive) when not given.
    data
        The data folder (default ``$BXLPLAN_DATA``): units must touch its region.

    Returns
    -------
    GeoDataFrame
        EPSG:31370, with ``area_id`` (text; the row number when no identifier field is
        found), ``name_fr`` and ``name_nl`` (the name field, else the identifier).

    Raises
    ------
    DataError
        When the file is missing, not polygons, has no CRS, lies elsewhere (wrong CRS,
        or units outside the Brussels region: how many, and how to clip), or repeats
        identifiers; all before any expensive work.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file} does not exist (or is a folder): give a polygon file")
    report: list[str] = []
    gdf = read_vector(file, layer=layer)
    gdf = to_working_crs(gdf, str(file), layer)
    gdf = clean_geometries(gdf, str(file), report, layer)
    polys = gdf.geom_type.isin(["Polygon", "MultiPolygon"])
    if not polys.all():
        kinds = sorted(set(gdf.geom_type[~polys]))
        raise DataError(f"{file}: areas must be polygons; found {', '.join(kinds)}")
    gdf = _flatten_lists(gdf.reset_index(drop=True), file, report)
    region = _region_outline(data)
    if region is not None:
        outside = ~shapely.intersects(gdf.geometry.values, region)
        if outside.any():
            raise DataError(
                f"{file}: {int(outside.sum()):,} of {len(gdf):,} units lie outside the "
                "Brussels region; clip or filter them first (e.g. `ogr2ogr -clipsrc "
                "<region.geojson> brussels.gpkg your_file`, or in Python "
                "`gdf[gdf.intersects(bxlplan.load('region').union_all())]`)"
            )
    known = read_catalog_file("user_units.yaml")
    id_col = _field(gdf, id_field, known["id_fields"], "identifier (--id-field)", file)
    name_col = _field(
        gdf, name_field, known["name_fields"], "name (--name-field)", file
    )
    gdf["area_id"] = (
        gdf[id_col].map(lambda v: "" if v is None or v != v else str(v))
        if id_col
        else gdf.index.astype(str)
    )
    if id_col is None:
        report.append(f"{file}: no identifier field found: units numbered by row")
    if gdf["area_id"].duplicated().any() or (gdf["area_id"] == "").any():
        dups = sorted(set(gdf["area_id"][gdf["area_id"].duplicated()]))[:5]
        raise DataError(
            f"{file}: the identifiers of field '{id_col}' are empty or repeat "
            f"({', '.join(dups)}): make them unique, or choose another with --id-field"
        )
    names = gdf[name_col].astype("string").fillna(gdf["area_id"]) if name_col else None
    for col in ("name_fr", "name_nl"):
        if col not in gdf or name_field is not None:
            gdf[col] = names if names is not None else gdf["area_id"]
    gdf.attrs["bxlplan"] = provenance(
        None, file, report, id_field=id_col, name_field=name_col
    )
    return gdf


def _region_outline(data: str | os.PathLike[str] | None) -> Any:
    """The region's outline, or None when no data folder is configured."""
    try:
        folder = data_dir(data)
    except DataError:
        return None
    return shapely.union_all(load("region", folder).geometry.values)


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


def function_rules(kind: str) -> Any:
    """Return the mapping ``kind`` (``pras`` or ``osm_landuse``) of functions.yaml."""
    return read_catalog_file("functions.yaml")[kind]


def classify_functions(values: pd.Series, kind: str) -> pd.Series:
    """Map zone names (``pras``) or OSM ``landuse`` values to canonical functions."""
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
