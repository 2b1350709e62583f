"""``load(name)``: one obvious way to get any Brussels layer as a clean GeoDataFrame,
and ``load_polygons`` / ``polygon_areas``: a user's own polygons, checked as strictly.

Every vector layer comes back in Belgian Lambert 72 (EPSG:31370) with its canonical
columns (see the catalog) next to the source columns, and provenance in
``.attrs["bxlplan"]``: source path or URL, sha256, licence, attribution, load time and
the report of what cleaning changed.

The layers themselves are read by :mod:`.layers` (one file each) and :mod:`.facilities`
(several layers classified); provenance is :mod:`.provenance`. This module is the
dispatcher above them: none of them imports it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import DataError
from .catalog import data_dir, get_spec, read_catalog_file
from .facilities import load_facilities
from .layers import classify_functions, function_rules, load_layer
from .postgis import is_postgres_url, load_table_layer
from .provenance import provenance, sha256_file
from .readers import read_vector
from .validate import WORKING_CRS, clean_geometries, to_working_crs

__all__ = [
    "classify_functions",
    "function_rules",
    "load",
    "load_polygons",
    "polygon_areas",
    "provenance",
    "sha256_file",
]

_log = logging.getLogger(__name__)


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
        Read this file instead of looking in the data folder, or this PostGIS table
        (``postgresql://user@host/database/schema.table``, vector layers only; see
        :mod:`bxlplan.loading.postgis`).

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
    >>> import bxlplan
    >>> hoods = bxlplan.load("neighbourhoods")  # the data folder from $BXLPLAN_DATA
    >>> len(hoods), hoods.crs.to_epsg()
    (145, 31370)
    """
    spec = get_spec(name)
    if is_postgres_url(path):  # a PostGIS table (bxlplan.loading.postgis)
        return load_table_layer(spec, str(path))
    if spec.kind == "facilities":
        return load_facilities(spec, data_dir(data))
    return load_layer(name, data, path=path)


def _field(gdf: gpd.GeoDataFrame, given: str | None, tried: list[str],
           what: str, where: str) -> str | None:  # fmt: skip
    by_lower = {str(c).lower(): c for c in gdf.columns if c != gdf.geometry.name}
    if given is not None:
        if given.lower() not in by_lower:
            raise DataError(
                f"{where}: there is no field '{given}' for the {what}; fields: "
                f"{', '.join(map(str, by_lower.values()))}"
            )
        return by_lower[given.lower()]
    return next((by_lower[f] for f in tried if f in by_lower), None)


def _flatten_lists(
    gdf: gpd.GeoDataFrame, where: str, report: list[str]
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
                f"{where}: field '{col}' holds lists or objects in {int(flags.sum())} "
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

    Examples
    --------
    >>> import tempfile, geopandas as gpd, shapely
    >>> path = Path(tempfile.mkdtemp()) / "my_units.geojson"
    >>> gpd.GeoDataFrame({"id": [7], "nom": ["Gare du Nord"]}, crs=31370,
    ...                  geometry=[shapely.box(149000, 171000, 149500, 171500)]
    ...                  ).to_file(path)
    >>> units = load_polygons(path)  # the region of $BXLPLAN_DATA
    >>> units[["area_id", "name_fr"]].to_dict("records"), units.crs.to_epsg()
    ([{'area_id': '7', 'name_fr': 'Gare du Nord'}], 31370)
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file} does not exist (or is a folder): give a polygon file")
    report: list[str] = []
    gdf = read_vector(file, layer=layer)
    gdf = to_working_crs(gdf, str(file), layer)
    gdf, id_col, name_col = _units(
        gdf, str(file), report, layer=layer, id_field=id_field,
        name_field=name_field, data=data, hint="--id-field",
    )  # fmt: skip
    gdf.attrs["bxlplan"] = provenance(
        None, file, report, id_field=id_col, name_field=name_col
    )
    return gdf


FRAME = "the areas GeoDataFrame"


def polygon_areas(
    gdf: gpd.GeoDataFrame,
    *,
    id_field: str | None = None,
    name_field: str | None = None,
    data: str | os.PathLike[str] | None = None,
    check_region: bool = True,
) -> gpd.GeoDataFrame:
    """Check a GeoDataFrame of polygons as areas to assess, as :func:`load_polygons`
    checks a file: the same rules, in the same order, before any expensive work.

    Parameters
    ----------
    gdf
        Polygons in any CRS (it must have one); left unchanged.
    id_field, name_field
        The fields of each area's identifier and name; ``area_id`` when present, else
        detected from common names (``layers/user_units.yaml``), else the row number.
    data
        The data folder (default ``$BXLPLAN_DATA``): areas must touch its region.
    check_region
        ``False`` skips the region check (e.g. against a prepared context).

    Returns
    -------
    GeoDataFrame
        A copy in EPSG:31370 with ``area_id`` (text), ``name_fr`` and ``name_nl``; what
        the check changed (reprojection, repaired or dropped geometries, identifiers
        numbered by row) is in ``.attrs["bxlplan"]["report"]``.

    Raises
    ------
    DataError
        When ``gdf`` is not a GeoDataFrame, has no CRS, holds no polygon or other
        geometries, lies elsewhere, or repeats identifiers.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> gdf = gpd.GeoDataFrame(geometry=[shapely.box(4.35, 50.84, 4.36, 50.85)],
    ...                        crs="EPSG:4326")
    >>> areas = polygon_areas(gdf, check_region=False)
    >>> areas.crs.to_epsg(), list(areas["area_id"])
    (31370, ['0'])
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise DataError(
            f"areas must be a GeoDataFrame of polygons (or a spec such as "
            f"'neighbourhoods', 'grid:250' or a file path), got {type(gdf).__name__}"
        )
    if gdf.crs is None:
        raise DataError(
            f"{FRAME} has no coordinate reference system: set the one its coordinates "
            "are in, e.g. gdf.set_crs('EPSG:4326') for longitude/latitude or "
            "gdf.set_crs('EPSG:31370') for Belgian Lambert 72"
        )
    if len(gdf) == 0:
        raise DataError(f"{FRAME} has no rows: give at least one polygon")
    report: list[str] = []
    before = gdf.crs
    out = to_working_crs(gdf.copy(), FRAME)
    if not before.equals(out.crs):
        note = f"{FRAME}: reprojected from {before.to_string()} to {WORKING_CRS}"
        _log.info(note)
        report.append(note)
    region: str | os.PathLike[str] | Literal[False] | None = (
        data if check_region else False
    )
    out, id_col, name_col = _units(
        out, FRAME, report, id_field=id_field, name_field=name_field, data=region,
        hint="id_field=",
    )  # fmt: skip
    record = dict(gdf.attrs.get("bxlplan", {})) or {
        "source": "user-supplied GeoDataFrame",
        "licence": "user-supplied",
    }
    record["report"] = list(record.get("report", [])) + report
    record.update(id_field=id_col, name_field=name_col)
    out.attrs["bxlplan"] = record
    return out


def _units(
    gdf: gpd.GeoDataFrame,
    where: str,
    report: list[str],
    *,
    layer: str | None = None,
    id_field: str | None,
    name_field: str | None,
    data: str | os.PathLike[str] | Literal[False] | None,
    hint: str,
) -> tuple[gpd.GeoDataFrame, str | None, str | None]:
    """The checks of user units once in EPSG:31370: geometries cleaned, polygons only,
    list fields as text, inside the region (``data=False``: not checked), ``area_id``
    unique and non-empty, ``name_fr`` / ``name_nl``."""
    gdf = clean_geometries(gdf, where, report, layer)
    polys = gdf.geom_type.isin(["Polygon", "MultiPolygon"])
    if len(gdf) == 0:
        raise DataError(f"{where}: no feature has a geometry; give polygons")
    if not polys.all():
        kinds = sorted(set(gdf.geom_type[~polys]))
        raise DataError(f"{where}: areas must be polygons; found {', '.join(kinds)}")
    gdf = _flatten_lists(gdf.reset_index(drop=True), where, report)
    region = _region_outline(data) if data is not False else None
    if region is not None:
        outside = ~shapely.intersects(gdf.geometry.values, region)
        if outside.any():
            raise DataError(
                f"{where}: {int(outside.sum()):,} of {len(gdf):,} units lie outside the "
                "Brussels region; clip or filter them first (e.g. `ogr2ogr -clipsrc "
                "<region.geojson> brussels.gpkg your_file`, or in Python "
                "`gdf[gdf.intersects(bxlplan.load('region').union_all())]`)"
            )
    known = read_catalog_file("user_units.yaml")
    id_col = _field(gdf, id_field, known["id_fields"], f"identifier ({hint})", where)
    name_hint = hint.replace("id", "name")
    name_col = _field(
        gdf, name_field, known["name_fields"], f"name ({name_hint})", where
    )
    gdf["area_id"] = (
        gdf[id_col].map(lambda v: "" if v is None or v != v else str(v))
        if id_col
        else gdf.index.astype(str)
    )
    if id_col is None:
        report.append(f"{where}: no identifier field found: units numbered by row")
    if gdf["area_id"].duplicated().any() or (gdf["area_id"] == "").any():
        dups = sorted(set(gdf["area_id"][gdf["area_id"].duplicated()]))[:5]
        raise DataError(
            f"{where}: the identifiers of field '{id_col}' are empty or repeat "
            f"({', '.join(dups)}): make them unique, or choose another with {hint}"
        )
    names = gdf[name_col].astype("string").fillna(gdf["area_id"]) if name_col else None
    for col in ("name_fr", "name_nl"):
        if col not in gdf or name_field is not None:
            gdf[col] = names if names is not None else gdf["area_id"]
    return gdf, id_col, name_col


def _region_outline(data: str | os.PathLike[str] | None) -> Any:
    """The region's outline, or None when no data folder is configured."""
    try:
        folder = data_dir(data)
    except DataError:
        return None
    return shapely.union_all(np.asarray(load("region", folder).geometry.values))
