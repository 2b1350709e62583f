"""Stage 1 of the pipeline: the origins, residential points with population and income.

Each origin is a cell of the origins grid (``origins_cell_m``, 100 m by default) with
residents, represented by a point on its surface. It carries the population estimate,
the neighbourhood and commune it lies in, the neighbourhood's median income and an
income class (population-weighted quantiles of the region's residents). Your own points
can replace them (:func:`make_origins` validates them).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import DataError
from ..indicators.social import weighted_quantiles

__all__ = ["income_classes", "make_origins", "tag_points"]

#: the columns every origins frame carries
ORIGIN_COLUMNS = ("population", "income", "income_class", "neighbourhood", "commune")


def tag_points(
    points: gpd.GeoDataFrame, units: gpd.GeoDataFrame, column: str
) -> gpd.GeoDataFrame:
    """Add the ``code`` of the unit each point lies in as ``column`` (nullable Int64;
    NA outside every unit).

    Parameters
    ----------
    points
        Points, in the CRS of ``units``.
    units
        Polygons with a ``code`` column (communes, neighbourhoods, sectors).
    column
        Name of the new column.

    Returns
    -------
    geopandas.GeoDataFrame
        ``points`` (same index, not copied) with ``column``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> units = gpd.GeoDataFrame({"code": [21004]}, geometry=[shapely.box(0, 0, 10, 10)],
    ...                          crs=31370)
    >>> pts = gpd.GeoDataFrame(geometry=shapely.points([[5, 5], [50, 5]]), crs=31370)
    >>> tag_points(pts, units, "commune")["commune"].tolist()
    [21004, <NA>]
    """
    i, j = units.sindex.query(points.geometry.values, predicate="within")
    points[column] = pd.array([pd.NA] * len(points), dtype="Int64")
    points.loc[points.index[i], column] = units["code"].to_numpy()[j]
    return points


def income_classes(
    income: np.ndarray, population: np.ndarray, k: int
) -> tuple[np.ndarray, float]:
    """Income class of each origin (0 .. k-1, -1 where the income is unknown) from the
    population-weighted ``k``-quantiles, and the weighted median (the reference).

    Parameters
    ----------
    income
        Income per origin (NaN unknown).
    population
        Residents per origin (the weights).
    k
        Number of classes (``income_classes`` of the scoring file).

    Returns
    -------
    tuple of numpy.ndarray and float
        The classes and the population-weighted median income.

    Examples
    --------
    >>> import numpy as np
    >>> cls, ref = income_classes(np.array([10.0, 20, 30, np.nan]), np.ones(4), 2)
    >>> cls.tolist(), ref
    ([0, 1, 1, -1], 20.0)
    """
    ref = float(weighted_quantiles(income, population, np.array([0.5]))[0])
    breaks = weighted_quantiles(income, population, np.linspace(0, 1, k + 1)[1:-1])
    classes = np.where(
        np.isfinite(income), np.searchsorted(breaks, income, side="right"), -1
    )
    return classes, ref


def make_origins(
    grid: gpd.GeoDataFrame,
    neighbourhoods: gpd.GeoDataFrame,
    communes: gpd.GeoDataFrame,
    income: pd.DataFrame,
    k: int = 5,
) -> tuple[gpd.GeoDataFrame, float]:
    """The origins: the inhabited cells of ``grid`` as points with their population,
    units, income and income class.

    Parameters
    ----------
    grid
        Polygons (EPSG:31370) with a ``population`` column: the origins grid with the
        dasymetric estimate, or your own polygons or points.
    neighbourhoods, communes
        Units with a ``code`` column.
    income
        Median income per neighbourhood: ``code``, ``value`` (EUR).
    k
        Number of income classes.

    Returns
    -------
    tuple of geopandas.GeoDataFrame and float
        Points (``population`` > 0) with ``cell`` (the original geometry),
        ``neighbourhood``, ``commune``, ``income``, ``income_class``; and the
        population-weighted median income.

    Raises
    ------
    DataError
        When ``grid`` has no ``population`` column, negative or non-finite values, or
        is not in EPSG:31370.

    Examples
    --------
    Two inhabited cells in two neighbourhoods and an empty one:

    >>> import geopandas as gpd, pandas as pd, shapely
    >>> hoods = gpd.GeoDataFrame({"code": [1, 2]}, crs=31370, geometry=[
    ...     shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)])
    >>> grid = gpd.GeoDataFrame({"population": [10.0, 30.0, 0.0]}, crs=31370,
    ...     geometry=[shapely.box(x, 0, x + 100, 100) for x in (0, 100, 200)])
    >>> income = pd.DataFrame({"code": [1, 2], "value": [18000.0, 30000.0]})
    >>> origins, ref = make_origins(grid, hoods, hoods, income, k=2)
    >>> origins[["population", "neighbourhood", "income_class"]].values.tolist()
    [[10.0, 1, 0], [30.0, 2, 1]]
    """
    if "population" not in grid:
        raise DataError(
            "origins: the 'population' column is missing; columns: "
            f"{', '.join(map(str, grid.columns))}"
        )
    if grid.crs is None or grid.crs.to_epsg() != 31370:
        raise DataError(
            f"origins: expected EPSG:31370, got {grid.crs}; reproject with to_crs(31370)"
        )
    pop = pd.to_numeric(grid["population"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(pop) | (pop < 0)
    if bad.any():
        raise DataError(
            f"origins: {int(bad.sum())} rows have a missing or negative population "
            f"(first row {int(np.flatnonzero(bad)[0])}); fix or drop them"
        )
    origins = grid.loc[pop > 0].reset_index(drop=True)
    origins["cell"] = origins.geometry.values  # kept for the shortage zones
    origins = origins.set_geometry(shapely.point_on_surface(origins.geometry.values))
    tag_points(origins, neighbourhoods, "neighbourhood")
    tag_points(origins, communes, "commune")
    values = income.set_index("code")["value"]
    origins["income"] = origins["neighbourhood"].map(values).astype(float)
    classes, ref = income_classes(
        origins["income"].to_numpy(), origins["population"].to_numpy(), k
    )
    origins["income_class"] = classes
    return origins, ref
