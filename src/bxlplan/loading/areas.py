"""Areas of assessment: catalog units, user polygons and regular grids."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from ..errors import DataError
from .catalog import read_catalog_file
from .load import load, load_polygons, polygon_areas
from .postgis import is_postgres_url, read_table

__all__ = ["grid_cell_count", "load_areas", "make_grid"]

SHAPES = ("square", "hex")


def _arange_len(start: float, stop: float, step: float) -> int:
    """Length of ``np.arange(start, stop, step)``, without building it."""
    return max(0, math.ceil((stop - start) / step))


def grid_cell_count(
    bounds: tuple[float, float, float, float], size: float, shape: str = "square"
) -> int:
    """Number of cells :func:`make_grid` builds over ``bounds`` before clipping.

    What a grid costs in time and memory, known before anything is built.

    Parameters
    ----------
    bounds : tuple of float
        x min, y min, x max, y max (m).
    size : float
        The side of a square or the width of a hexagon (m).
    shape : {"square", "hex"}
        The shape of the cells.

    Returns
    -------
    int
        The number of cells over the bounding box.

    Examples
    --------
    >>> grid_cell_count((0, 0, 1000, 500), 100)
    50
    """
    xmin, ymin, xmax, ymax = bounds
    if shape == "square":
        return _arange_len(xmin, xmax, size) * _arange_len(ymin, ymax, size)
    r = size / 2.0
    h = math.sqrt(3) * r
    columns = _arange_len(xmin - r, xmax + size, 1.5 * r)
    even = _arange_len(ymin - h, ymax + h, h)
    odd = _arange_len(ymin - h / 2, ymax + h, h)
    return (columns + 1) // 2 * even + columns // 2 * odd


def _bounds(region: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    xmin, ymin, xmax, ymax = (float(v) for v in region.total_bounds)
    return xmin, ymin, xmax, ymax


def _check_grid(
    bounds: tuple[float, float, float, float],
    size: float,
    shape: str,
    max_cells: int | None,
    label: str,
) -> None:
    """Refuse a grid size that is not a positive finite number or that would build
    more than ``max_cells`` cells (default: ``layers/limits.yaml``)."""
    if shape not in SHAPES:
        raise DataError(f"grid shape must be 'square' or 'hex', got '{shape}'")
    if isinstance(size, bool) or not math.isfinite(size) or size <= 0:
        raise DataError(
            f"{label}: the cell size must be a positive, finite number of metres, "
            f"e.g. grid:250 or hex:250 (got {size})"
        )
    limits = read_catalog_file("limits.yaml")["grid"]
    if max_cells is None:
        max_cells = int(limits["max_cells"])
    if max_cells < 1:
        raise DataError(f"max_cells must be a positive number, got {max_cells}")
    cells = grid_cell_count(bounds, size, shape)
    if cells <= max_cells:
        return
    lo, hi = math.ceil(size), math.ceil(max(bounds[2] - bounds[0], 1.0)) + 1
    while lo < hi:  # the smallest whole-metre size within the limit
        mid = (lo + hi) // 2
        if grid_cell_count(bounds, mid, shape) <= max_cells:
            hi = mid
        else:
            lo = mid + 1
    needed = cells * float(limits["bytes_per_cell"])
    memory = f"{needed / 1e9:,.1f} GB" if needed >= 1e9 else f"{needed / 1e6:,.0f} MB"
    raise DataError(
        f"{label} means {cells:,} cells over the region's bounding box (about "
        f"{memory} to build, more to assess), above the limit of "
        f"{max_cells:,}: use a cell size of at least {lo} m, or raise the limit "
        "with --max-cells (max_cells= in Python)"
    )


def make_grid(
    region: gpd.GeoDataFrame,
    size: float,
    shape: str = "square",
    clip: bool = True,
    *,
    max_cells: int | None = None,
) -> gpd.GeoDataFrame:
    """A regular grid over ``region``: square cells or flat-top hexagons.

    Cells that do not touch the region are dropped, the others are clipped to it.

    Parameters
    ----------
    region : GeoDataFrame
        The polygons to cover (EPSG:31370).
    size : float
        The side of a square or the width of a hexagon (m).
    shape : {"square", "hex"}
        The shape of the cells.
    clip : bool, default True
        Clip the cells to the region.
    max_cells : int, optional
        Most cells over the region's bounding box.

    Returns
    -------
    GeoDataFrame
        ``area_id`` (``g<size>_<n>``), ``name_fr``, ``name_nl`` and the cells.

    Raises
    ------
    DataError
        When ``size`` is not a positive finite number, or the grid would have more
        than ``max_cells`` cells over the region's bounding box (default
        ``grid.max_cells`` of ``layers/limits.yaml``); the count is checked before
        anything is built.

    Examples
    --------
    >>> region = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 250, 100)], crs=31370)
    >>> grid = make_grid(region, 100)
    >>> len(grid), grid.area.round().tolist()
    (3, [10000.0, 10000.0, 5000.0])
    """
    bounds = _bounds(region)
    _check_grid(bounds, size, shape, max_cells, f"a {shape} grid of {size:g} m")
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


def load_areas(
    spec: str,
    data: Path,
    *,
    max_cells: int | None = None,
    id_field: str | None = None,
    name_field: str | None = None,
) -> gpd.GeoDataFrame:
    """Areas from a spec: ``neighbourhoods``, ``communes``, ``zru``, ``cru``, ``cqd``,
    ``grid:<metres>``, ``hex:<metres>``, a path to a polygon file or the URL of a
    PostGIS table (``postgresql://user@host/database/schema.table``,
    :mod:`bxlplan.loading.postgis`).

    Parameters
    ----------
    spec
        What to assess.
    data
        The data folder.
    max_cells
        Most cells a grid may have over the region's bounding box (default
        ``grid.max_cells`` of ``layers/limits.yaml``, 2 million).
    id_field, name_field : str, optional
        For a polygon file: the fields of the unit identifier and name (detected from
        common names when not given, see :func:`bxlplan.loading.load.load_polygons`).

    Returns
    -------
    GeoDataFrame
        ``area_id``, ``name_fr``, ``name_nl`` and the geometry (EPSG:31370).

    Raises
    ------
    DataError
        For an unknown spec, a grid size that is not a positive finite number of
        metres, or a grid above ``max_cells`` (with the count, the memory it would
        take and the smallest cell size within the limit).

    Examples
    --------
    >>> from bxlplan.loading.catalog import data_dir
    >>> communes = load_areas("communes", data_dir())  # $BXLPLAN_DATA
    >>> len(communes), communes.crs.to_epsg()
    (19, 31370)
    """
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
            if not math.isfinite(size) or size <= 0:
                raise DataError(
                    f"--units '{spec}': the cell size must be a positive, finite "
                    f"number of metres, e.g. {prefix}250"
                )
            region = load("region", data)
            bounds = _bounds(region)
            _check_grid(bounds, size, shape, max_cells, f"--units '{spec}'")
            grid = make_grid(region, size, shape, max_cells=max_cells)
            grid["name_fr"] = grid["name_nl"] = grid["area_id"]
            return grid
    if is_postgres_url(spec):  # a PostGIS table, checked as a polygon file is
        return read_table(
            spec,
            check=functools.partial(
                polygon_areas, id_field=id_field, name_field=name_field, data=data
            ),
        )
    path = Path(spec)
    if path.suffix.lower() in (".gpkg", ".geojson", ".json", ".shp"):
        return load_polygons(path, id_field=id_field, name_field=name_field, data=data)
    raise DataError(
        f"unknown areas '{spec}': use neighbourhoods, communes, zru, cru, cqd, "
        "grid:<metres>, hex:<metres> or the path of a polygon file (.gpkg, .geojson, "
        ".shp); for a pole's perimeter use scenarios.spec.perimeter_area (or a scenario "
        ".yaml on the command line)"
    )
