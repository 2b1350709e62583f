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
"""

from __future__ import annotations

import datetime as dt
import json
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
from .._io import atomic_path, atomic_write, check_target
from ..errors import DataError

__all__ = [
    "FORMATS",
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
) -> Path:
    """Write several layers into one GeoPackage; provenance goes in each layer's
    metadata (``bxlplan`` key, JSON)."""
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        for name, gdf in layers.items():
            pyogrio.write_dataframe(
                _plain(gdf), tmp, layer=name, driver="GPKG", append=tmp.exists(),
                layer_metadata={"bxlplan": _meta_json(metadata)},
            )  # fmt: skip
    return path


def write_geojson(
    gdf: gpd.GeoDataFrame,
    path: str | Path,
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """GeoJSON in EPSG:4326 following RFC 7946; provenance in a ``.provenance.json``
    sidecar (RFC 7946 has no place for it)."""
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        pyogrio.write_dataframe(
            _plain(gdf).to_crs(4326), tmp, driver="GeoJSON", RFC7946="YES"
        )
    atomic_write(
        path.with_name(path.name + ".provenance.json"), _meta_json(metadata).encode()
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
) -> Path:
    """Shapefile with 10-character field names and a ``<name>_fields.csv`` sidecar
    (short name, full name); provenance in ``<name>.provenance.json``."""
    path = Path(path)
    plain = _plain(gdf)
    names = shapefile_names([c for c in plain.columns if c != plain.geometry.name])
    check_target(path, overwrite)
    tmpdir = path.parent / f".{path.stem}.tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
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
    atomic_write(
        path.with_name(path.stem + "_fields.csv"), table.to_csv(index=False).encode()
    )
    atomic_write(
        path.with_name(path.stem + ".provenance.json"), _meta_json(metadata).encode()
    )
    return path


def write_csv(
    gdf: pd.DataFrame,
    path: str | Path,
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """CSV of the attributes (no geometry) with a provenance sidecar."""
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
    atomic_write(path, table.to_csv(index=False).encode("utf-8"))
    atomic_write(
        path.with_name(path.stem + ".provenance.json"), _meta_json(metadata).encode()
    )
    return path


def write_distance_rasters(
    ctx: Any,
    out: str | Path,
    *,
    resolution: float = 100.0,
    categories: list[str] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """GeoTIFF of the network distance (m) to the nearest facility, one per category.

    Cell centres inside the region are attached to the street network like any origin;
    cells outside the region are nodata. Float32, DEFLATE, tiled, with overviews (2, 4,
    8, 16) and provenance tags.
    """
    from ..indicators.access import euclidean_nearest

    out = Path(out)
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
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                parameters=_meta_json({"origins_cell_m": ctx.config.get("origins_cell_m"), "walking_thresholds_m": {c: v["threshold_m"] for c, v in ctx.categories.items()}}),
                    description=f"distance to the nearest {cat} (m); nodata outside the region",
                )  # fmt: skip
            dst.set_band_description(1, f"distance_to_nearest_{cat}_m")
            dst.build_overviews([2, 4, 8, 16], Resampling.average)
            dst.update_tags(ns="rio_overview", resampling="average")
        written.append(target)
    return written


def write_assessment(
    result: Any,
    out: str | Path,
    formats: list[str],
    *,
    overwrite: bool = False,
    perimeters: dict[str, gpd.GeoDataFrame] | None = None,
    raster_resolution: float = 100.0,
) -> list[Path]:
    """Write an assessment in the chosen formats (``gpkg``, ``geojson``, ``shp``,
    ``csv``, ``tif``) into ``out``.

    The GeoPackage holds the scored areas (``areas``), one ``shortage_<category>`` layer
    per category, the facilities (``facilities``) and the perimeters given
    (``perimeter_<name>``).
    """
    out = Path(out)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise DataError(
            f"unknown format(s) {unknown}; choose among {', '.join(FORMATS)}"
        )
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(result.areas.attrs.get("bxlplan", {}))
    areas = result.areas
    written: list[Path] = []
    if "gpkg" in formats:
        layers = {"areas": areas}
        for cat, zone in result.shortage_zones.groupby("category"):
            layers[f"shortage_{cat}"] = zone.reset_index(drop=True)
        fac = result.context.facilities
        keep = [
            "facility_id",
            "category",
            "theme",
            "name",
            "name_fr",
            "name_nl",
            "threshold_m",
            "source",
            "rule_text",
            "in_region",
            "geometry",
        ]
        layers["facilities"] = fac[[c for c in keep if c in fac]]
        for name, gdf in (perimeters or {}).items():
            layers[f"perimeter_{name}"] = gdf
        written.append(
            write_gpkg(layers, out / "assessment.gpkg", meta, overwrite=overwrite)
        )
    if "geojson" in formats:
        written.append(
            write_geojson(areas, out / "assessment.geojson", meta, overwrite=overwrite)
        )
    if "shp" in formats:
        written.append(
            write_shapefile(areas, out / "assessment.shp", meta, overwrite=overwrite)
        )
    if "csv" in formats:
        written.append(
            write_csv(areas, out / "assessment.csv", meta, overwrite=overwrite)
        )
    if "tif" in formats:
        written += write_distance_rasters(
            result.context,
            out / "rasters",
            resolution=raster_resolution,
            overwrite=overwrite,
        )
    return written
