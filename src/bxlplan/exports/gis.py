"""GIS exports that open cleanly in QGIS.

* GeoPackage: several layers in one file, provenance in the layer metadata;
* GeoJSON: EPSG:4326, RFC 7946 (lon/lat order, no ``crs`` member);
* Shapefile: field names cut to 10 characters, with a sidecar CSV mapping each short
  name to the full column name so nothing is ambiguous;
* CSV without geometry;
* GeoTIFF: network distance to the nearest facility per category (EPSG:31370, nodata
  outside the region, DEFLATE-compressed, with overviews and provenance tags).

Every writer is atomic (temporary file, then rename), refuses to replace an existing
file without ``overwrite=True``, and leaves no partial file behind on failure.
:func:`write_assessment` writes its whole set at once (``bxlplan._io.output_set``): the
folder holds the old set or the new one, never a mix, and every target is checked
before anything is written (:func:`assessment_names` lists them for a check before the
computation).

Time stamps (GeoPackage ``last_change``, GeoTIFF ``TIFFTAG_DATETIME`` and
``created_at``, ``written_at`` in the provenance) come from one run time stamp, which
``SOURCE_DATE_EPOCH`` sets for byte-identical re-runs.

CSV formula injection: text cells (and column names) that start with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return are prefixed with ``'`` in every CSV bxlplan
writes, as OWASP recommends, so that a spreadsheet shows them as text instead of
running them as formulas; numeric columns are written unchanged (a negative number
stays a number).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely
from rasterio.enums import Resampling
from rasterio.transform import from_origin

from .. import __version__
from .._io import atomic_path, atomic_write, check_target, output_set, run_timestamp
from ..errors import DataError

__all__ = [
    "FORMATS",
    "assessment_names",
    "csv_safe",
    "csv_bytes",
    "shapefile_names",
    "write_assessment",
    "write_csv",
    "write_distance_rasters",
    "write_geojson",
    "write_gpkg",
    "write_shapefile",
]

FORMATS = ("gpkg", "geojson", "shp", "csv", "tif")


def _meta_json(meta: dict[str, Any]) -> str:
    return json.dumps(meta, default=str, ensure_ascii=False)


def _stamped(meta: dict[str, Any], run_time: dt.datetime | None) -> dict[str, Any]:
    """Provenance with the time the file was written (the run's time stamp)."""
    return {**meta, "written_at": (run_time or run_timestamp()).isoformat()}


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_text(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas (OWASP).

    Text cells, column names and index labels starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return get a leading ``'``; numbers are left as they
    are, so a negative number stays a number.

    Parameters
    ----------
    table
        The table to export.

    Returns
    -------
    pandas.DataFrame
        The neutralised copy.
    """
    out = table.copy()
    for col in out.columns:
        dtype = out[col].dtype
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            out[col] = out[col].map(_safe_text)
    out.columns = [_safe_text(c) for c in out.columns]
    if pd.api.types.is_object_dtype(out.index.dtype) or pd.api.types.is_string_dtype(
        out.index.dtype
    ):
        out.index = out.index.map(_safe_text)
    return out


def csv_bytes(table: pd.DataFrame, *, index: bool = False) -> bytes:
    """The table as UTF-8 CSV, neutralised against formula injection (:func:`csv_safe`)."""
    return csv_safe(table).to_csv(index=index).encode("utf-8")


@contextlib.contextmanager
def _gpkg_date(run_time: dt.datetime | None) -> Iterator[None]:
    """GDAL's ``OGR_CURRENT_DATE``: the GeoPackage ``last_change`` of every layer."""
    stamp = (run_time or run_timestamp()).astimezone(dt.UTC)
    key = "OGR_CURRENT_DATE"
    before = pyogrio.get_gdal_config_option(key)
    pyogrio.set_gdal_config_options({key: stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z")})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({key: before})


def _plain(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy fit for GDAL: no attrs, nullable integers/booleans as plain types."""
    out = gdf.copy()
    out.attrs = {}
    for col in out.columns:
        if col == out.geometry.name:
            continue
        dtype = out[col].dtype
        if isinstance(dtype, pd.BooleanDtype) or str(dtype) == "boolean":
            out[col] = out[col].astype("float").astype("Int8")
        if str(dtype).startswith("Int") and out[col].isna().any():
            out[col] = out[col].astype(float)
        if pd.api.types.is_object_dtype(dtype):
            out[col] = out[col].map(lambda v: None if v is None or v != v else str(v))
    extra_geoms = [
        c
        for c in out.columns
        if c != out.geometry.name and isinstance(out[c].dtype, gpd.array.GeometryDtype)
    ]
    return out.drop(columns=extra_geoms)


def write_gpkg(
    layers: dict[str, gpd.GeoDataFrame],
    path: str | Path,
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
) -> Path:
    """Write several layers into one GeoPackage; provenance goes in each layer's
    metadata (``bxlplan`` key, JSON). Every layer's ``last_change`` is ``run_time``
    (default :func:`bxlplan._io.run_timestamp`)."""
    path = Path(path)
    meta = _meta_json(_stamped(metadata, run_time))
    with atomic_path(path, overwrite=overwrite) as tmp, _gpkg_date(run_time):
        for name, gdf in layers.items():
            pyogrio.write_dataframe(
                _plain(gdf), tmp, layer=name, driver="GPKG", append=tmp.exists(),
                layer_metadata={"bxlplan": meta},
            )  # fmt: skip
    return path


def write_geojson(
    gdf: gpd.GeoDataFrame,
    path: str | Path,
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
) -> Path:
    """GeoJSON in EPSG:4326 following RFC 7946; provenance in a ``.provenance.json``
    sidecar (RFC 7946 has no place for it)."""
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        pyogrio.write_dataframe(
            _plain(gdf).to_crs(4326), tmp, driver="GeoJSON", RFC7946="YES"
        )
    atomic_write(
        path.with_name(path.name + ".provenance.json"),
        _meta_json(_stamped(metadata, run_time)).encode(),
    )
    return path


def shapefile_names(columns: list[str]) -> dict[str, str]:
    """Unique 10-character field names for a Shapefile (full name -> short name)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for col in columns:
        short = col[:10]
        i = 1
        while short.lower() in used:
            tail = f"_{i}"
            short = col[: 10 - len(tail)] + tail
            i += 1
        used.add(short.lower())
        out[col] = short
    return out


def write_shapefile(
    gdf: gpd.GeoDataFrame,
    path: str | Path,
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
) -> Path:
    """Shapefile with 10-character field names and a ``<name>_fields.csv`` sidecar
    (short name, full name); provenance in ``<name>.provenance.json``."""
    path = Path(path)
    plain = _plain(gdf)
    names = shapefile_names([c for c in plain.columns if c != plain.geometry.name])
    check_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        pyogrio.write_dataframe(
            plain.rename(columns=names),
            tmpdir / path.name,
            driver="ESRI Shapefile",
            encoding="UTF-8",
        )
        for part in tmpdir.iterdir():
            part.replace(path.parent / part.name)
    finally:
        for part in tmpdir.glob("*"):
            part.unlink()
        tmpdir.rmdir()
    table = pd.DataFrame({"short_name": list(names.values()), "full_name": list(names)})
    atomic_write(path.with_name(path.stem + "_fields.csv"), csv_bytes(table))
    atomic_write(
        path.with_name(path.stem + ".provenance.json"),
        _meta_json(_stamped(metadata, run_time)).encode(),
    )
    return path


def write_csv(
    gdf: pd.DataFrame,
    path: str | Path,
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
) -> Path:
    """CSV of the attributes (no geometry) with a provenance sidecar; text cells are
    neutralised against formula injection (:func:`csv_safe`)."""
    path = Path(path)
    check_target(path, overwrite)
    table = pd.DataFrame(
        gdf.drop(columns=[gdf.geometry.name])
        if isinstance(gdf, gpd.GeoDataFrame)
        else gdf
    )
    table = table.drop(
        columns=[
            c
            for c in table.columns
            if isinstance(table[c].dtype, gpd.array.GeometryDtype)
        ]
    )
    atomic_write(path, csv_bytes(table))
    atomic_write(
        path.with_name(path.stem + ".provenance.json"),
        _meta_json(_stamped(metadata, run_time)).encode(),
    )
    return path


def write_distance_rasters(
    ctx: Any,
    out: str | Path,
    *,
    resolution: float = 100.0,
    categories: list[str] | None = None,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
) -> list[Path]:
    """GeoTIFF of the network distance (m) to the nearest facility, one per category.

    Cell centres inside the region are attached to the street network like any origin;
    cells outside the region are nodata. Float32, DEFLATE, tiled, with overviews (2, 4,
    8, 16) and provenance tags; ``TIFFTAG_DATETIME`` and ``created_at`` are
    ``run_time`` (default :func:`bxlplan._io.run_timestamp`).
    """
    from ..indicators.access import euclidean_nearest

    out = Path(out)
    stamp = (run_time or run_timestamp()).astimezone(dt.UTC)
    region = shapely.union_all(ctx.communes.geometry.values)
    xmin, ymin, xmax, ymax = region.bounds
    xmin, ymin = (
        np.floor(xmin / resolution) * resolution,
        np.floor(ymin / resolution) * resolution,
    )
    width = int(np.ceil((xmax - xmin) / resolution))
    height = int(np.ceil((ymax - ymin) / resolution))
    xs = xmin + (np.arange(width) + 0.5) * resolution
    ys = ymin + height * resolution - (np.arange(height) + 0.5) * resolution
    gx, gy = np.meshgrid(xs, ys)
    pts = shapely.points(gx.ravel(), gy.ravel())
    shapely.prepare(region)
    inside = shapely.contains(region, pts)
    att = ctx.graph.attach(pts[inside]) if ctx.network_mode == "network" else None
    transform = from_origin(xmin, ymin + height * resolution, resolution, resolution)
    written = []
    for cat in categories or list(ctx._access):
        if cat not in ctx._access:
            raise DataError(
                f"no distance for category '{cat}' (missing data or unknown)"
            )
        sub = ctx.facilities.loc[ctx.facilities["category"] == cat]
        if att is not None:
            dist = ctx.graph.nearest(att, ctx.graph.attach(sub.geometry))
        else:
            dist = euclidean_nearest(pts[inside], sub.geometry.values)
        band = np.full(width * height, -1.0, dtype="float32")
        band[inside] = np.where(np.isfinite(dist), dist, -1.0)
        band = band.reshape(height, width)
        target = out / f"distance_{cat}.tif"
        profile = {
            "driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32",
            "crs": "EPSG:31370", "transform": transform, "nodata": -1.0, "compress": "deflate",
            "tiled": True, "blockxsize": 256, "blockysize": 256,
        }  # fmt: skip
        with (
            atomic_path(target, overwrite=overwrite) as tmp,
            rasterio.open(tmp, "w", **profile) as dst,
        ):
            dst.write(band, 1)
            dst.update_tags(
                    category=cat, unit="m", distance_mode=ctx.network_mode,
                    threshold_m=str(ctx.categories[cat]["threshold_m"]), resolution_m=str(resolution),
                    bxlplan_version=__version__, sources=_meta_json(ctx.sources),
                created_at=stamp.isoformat(timespec="seconds"),
                TIFFTAG_DATETIME=stamp.strftime("%Y:%m:%d %H:%M:%S"),
                parameters=_meta_json({"origins_cell_m": ctx.config.get("origins_cell_m"), "walking_thresholds_m": {c: v["threshold_m"] for c, v in ctx.categories.items()}}),
                    description=f"distance to the nearest {cat} (m); nodata outside the region",
                )  # fmt: skip
            dst.set_band_description(1, f"distance_to_nearest_{cat}_m")
            dst.build_overviews([2, 4, 8, 16], Resampling.average)
            dst.update_tags(ns="rio_overview", resampling="average")
        written.append(target)
    return written


def assessment_names(formats: list[str]) -> list[str]:
    """The files :func:`write_assessment` writes for ``formats``, relative to its
    folder (the GeoTIFFs as a pattern: their categories are known after the
    preparation).

    Pass them to :func:`bxlplan._io.check_output_set` before the computation.

    Raises
    ------
    DataError
        When a format is unknown.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise DataError(
            f"unknown format(s) {unknown} in --format; choose among {', '.join(FORMATS)}"
        )
    files = {
        "gpkg": ["assessment.gpkg"],
        "geojson": ["assessment.geojson", "assessment.geojson.provenance.json"],
        "shp": [f"assessment.{ext}" for ext in ("shp", "shx", "dbf", "prj", "cpg")]
        + ["assessment_fields.csv", "assessment.provenance.json"],
        "csv": ["assessment.csv", "assessment.provenance.json"],
        "tif": ["rasters/distance_*.tif"],
    }
    return list(dict.fromkeys(n for f in FORMATS if f in formats for n in files[f]))


def write_assessment(
    result: Any,
    out: str | Path,
    formats: list[str],
    *,
    overwrite: bool = False,
    perimeters: dict[str, gpd.GeoDataFrame] | None = None,
    raster_resolution: float = 100.0,
    run_time: dt.datetime | None = None,
) -> list[Path]:
    """Write an assessment in the chosen formats (``gpkg``, ``geojson``, ``shp``,
    ``csv``, ``tif``) into ``out``, as one set: the folder holds the previous set or
    the new one, never a mix (``bxlplan._io.output_set``).

    The GeoPackage holds the scored areas (``areas``), one ``shortage_<category>`` layer
    per category, the facilities (``facilities``) and the perimeters given
    (``perimeter_<name>``). Files of the folder outside the set are kept.

    Raises
    ------
    DataError
        When a format is unknown, ``out`` cannot be written, or files of the set exist
        and ``overwrite`` is False (checked before anything is written).
    """
    out = Path(out)
    names = assessment_names(formats)
    meta = dict(result.areas.attrs.get("bxlplan", {}))
    areas = result.areas
    written: list[str] = []
    with output_set(out, names, overwrite=overwrite, run_time=run_time) as stage:
        folder, when = stage.path, stage.run_time
        if "gpkg" in formats:
            layers = {"areas": areas}
            for cat, zone in result.shortage_zones.groupby("category"):
                layers[f"shortage_{cat}"] = zone.reset_index(drop=True)
            fac = result.context.facilities
            keep = [
                "facility_id", "category", "theme", "name", "name_fr", "name_nl",
                "threshold_m", "source", "rule_text", "in_region", "geometry",
            ]  # fmt: skip
            layers["facilities"] = fac[[c for c in keep if c in fac]]
            for name, gdf in (perimeters or {}).items():
                layers[f"perimeter_{name}"] = gdf
            write_gpkg(layers, folder / "assessment.gpkg", meta, run_time=when)
            written.append("assessment.gpkg")
        if "geojson" in formats:
            write_geojson(areas, folder / "assessment.geojson", meta, run_time=when)
            written.append("assessment.geojson")
        if "shp" in formats:
            write_shapefile(areas, folder / "assessment.shp", meta, run_time=when)
            written.append("assessment.shp")
        if "csv" in formats:
            write_csv(areas, folder / "assessment.csv", meta, run_time=when)
            written.append("assessment.csv")
        if "tif" in formats:
            tifs = write_distance_rasters(
                result.context, folder / "rasters",
                resolution=raster_resolution, run_time=when,
            )  # fmt: skip
            written += [f"rasters/{p.name}" for p in tifs]
    return [out / rel for rel in written]
