"""Areas of assessment: catalog units, user polygons and regular grids."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from ..errors import DataError
from .load import load, load_polygons

__all__ = ["load_areas", "make_grid"]


def make_grid(
    region: gpd.GeoDataFrame, size: float, shape: str = "square", clip: bool = True
) -> gpd.GeoDataFrame:
    """A regular grid over ``region``: square cells of side ``size`` or flat-top hexagons
    of width ``size`` (m); cells that do not touch the region are dropped, the others are
    clipped to it (``clip=True``)."""
    if size <= 0:
        raise DataError(f"grid cell size must be positive, got {size}")
    outline = shapely.union_all(region.geometry.values)
    xmin, ymin, xmax, ymax = outline.bounds
    if shape == "square":
        xs = np.arange(xmin, xmax, size)
        ys = np.arange(ymin, ymax, size)
        gx, gy = np.meshgrid(xs, ys)
        cells = shapely.box(
            gx.ravel(), gy.ravel(), gx.ravel() + size, gy.ravel() + size
        )
    elif shape == "hex":
        r = size / 2.0
        h = np.sqrt(3) * r
        xs = np.arange(xmin - r, xmax + size, 1.5 * r)
        cells = []
        for i, x in enumerate(xs):
            y0 = ymin - h + (h / 2 if i % 2 else 0)
            for y in np.arange(y0, ymax + h, h):
                ang = np.deg2rad(np.arange(0, 360, 60))
                cells.append(
                    shapely.Polygon(
                        np.column_stack([x + r * np.cos(ang), y + r * np.sin(ang)])
                    )
                )
        cells = np.array(cells)
    else:
        raise DataError(f"grid shape must be 'square' or 'hex', got '{shape}'")
    shapely.prepare(outline)
    keep = shapely.intersects(outline, cells)
    cells = cells[keep]
    if clip:  # only cells on the border need the (costly) intersection
        border = ~shapely.contains_properly(outline, cells)
        cells = cells.copy()
        cells[border] = shapely.intersection(cells[border], outline)
        cells = cells[shapely.area(cells) > 0]
    grid = gpd.GeoDataFrame(geometry=cells, crs=region.crs)
    grid["area_id"] = [f"{shape}{int(size)}_{i}" for i in range(len(grid))]
    return grid


def load_areas(spec: str, data: Path) -> gpd.GeoDataFrame:
    """Areas from a spec: ``neighbourhoods``, ``communes``, ``zru``, ``cru``, ``cqd``,
    ``grid:<metres>``, ``hex:<metres>`` or a path to a polygon file. Returns
    ``area_id``, ``name_fr``, ``name_nl`` and the geometry (EPSG:31370)."""
    if spec in ("neighbourhoods", "communes", "zru", "cru", "cqd"):
        units = load(spec, data)
        out = units.copy()
        out["area_id"] = (
            units["code"].astype(str) if "code" in units else units.index.astype(str)
        )
        for col in ("name_fr", "name_nl"):
            if col not in out:
                out[col] = out.get("label", out["area_id"])
        out.attrs = units.attrs
        return out
    for prefix, shape in (("grid:", "square"), ("hex:", "hex")):
        if spec.startswith(prefix):
            try:
                size = float(spec[len(prefix) :])
            except ValueError as exc:
                raise DataError(
                    f"'{spec}': the grid size must be a number of metres, e.g. grid:250"
                ) from exc
            grid = make_grid(load("region", data), size, shape)
            grid["name_fr"] = grid["name_nl"] = grid["area_id"]
            return grid
    path = Path(spec)
    if path.suffix.lower() in (".gpkg", ".geojson", ".json", ".shp"):
        areas = load_polygons(path)
        for col in ("name_fr", "name_nl"):
            if col not in areas:
                areas[col] = areas.get("name", areas["area_id"])
        return areas
    raise DataError(
        f"unknown areas '{spec}': use neighbourhoods, communes, zru, cru, cqd, "
        "grid:<metres>, hex:<metres> or the path of a polygon file (.gpkg, .geojson, "
        ".shp); for a pole's perimeter use scenarios.spec.perimeter_area (or a scenario "
        ".yaml on the command line)"
    )
