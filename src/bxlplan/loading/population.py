"""Population of any unit or grid: a dasymetric estimate from commune totals.

The reference pack has population per commune only (Statbel, 1 Jan 2020). The estimate
spreads each commune's total over its *residential* land - land-use polygons whose
function is housing or mixed (PRAS when present, OSM ``landuse=residential`` otherwise) -
at a uniform density per commune (binary dasymetric mapping, Eicher & Brewer 2001;
Mennis 2003):

.. math:: \\hat P_t = \\sum_c P_c \\, \\frac{|t \\cap R_c|}{|R_c|}

where :math:`P_c` is the population of commune :math:`c`, :math:`R_c` its residential
land and :math:`t` a target unit. Targets that cover all residential land sum back
exactly to the commune totals; a commune with no residential land has its population
spread over its whole area (reported). Pass ``population=`` to use your own figures.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import DataError

__all__ = ["RESIDENTIAL_FUNCTIONS", "dasymetric_population", "residential_land"]

RESIDENTIAL_FUNCTIONS = ("housing", "mixed")


def residential_land(
    landuse: gpd.GeoDataFrame, communes: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """Residential land of each commune (one dissolved geometry per commune).

    Communes with no residential land get their whole area (and a ``fallback`` flag).
    """
    if "function" not in landuse:
        raise DataError(
            "the land-use layer needs a 'function' column (load it with bxlplan.load)"
        )
    res = landuse.loc[landuse["function"].isin(RESIDENTIAL_FUNCTIONS)]
    res_union = (
        shapely.union_all(res.geometry.values) if len(res) else shapely.Polygon()
    )
    geoms = shapely.intersection(communes.geometry.values, res_union)
    empty = shapely.area(geoms) <= 0
    geoms[empty] = communes.geometry.values[empty]
    return gpd.GeoDataFrame(
        {"code": communes["code"].to_numpy(), "fallback": empty},
        geometry=geoms,
        crs=communes.crs,
    )


def dasymetric_population(
    targets: gpd.GeoDataFrame,
    communes: gpd.GeoDataFrame,
    population: pd.DataFrame,
    landuse: gpd.GeoDataFrame,
    *,
    report: list[str] | None = None,
) -> pd.Series:
    """Estimate the population of each target polygon (see the module docstring).

    Parameters
    ----------
    targets
        Polygons (EPSG:31370): neighbourhoods, grid cells, any units.
    communes
        The communes layer (``code`` = NIS code).
    population
        Commune totals: a table with ``code`` and ``value`` (``load("population_communes")``).
    landuse
        Land use with a ``function`` column (``load("landuse_osm")`` or ``load("pras")``).

    Returns
    -------
    Series
        Estimated inhabitants, indexed like ``targets``.
    """
    report = report if report is not None else []
    pop = population.set_index("code")["value"]
    missing = sorted(set(communes["code"].astype(int)) - set(pop.index.astype(int)))
    if missing:
        raise DataError(
            f"population table has no total for commune(s) {missing}: every commune of "
            "the communes layer needs one"
        )
    res = residential_land(landuse, communes)
    if res["fallback"].any():
        report.append(
            "no residential land in commune(s) "
            f"{res.loc[res['fallback'], 'code'].tolist()}: population spread over the "
            "whole commune"
        )
    density = pop.reindex(res["code"].astype(int)).to_numpy() / res.area.to_numpy()
    # explode residential land into its parts: small polygons intersect fast
    parts = (
        res.assign(density=density).explode(index_parts=False).reset_index(drop=True)
    )
    tree = shapely.STRtree(parts.geometry.values)
    left, right = tree.query(targets.geometry.values, predicate="intersects")
    pieces = shapely.intersection(
        targets.geometry.values[left], parts.geometry.values[right]
    )
    est = np.bincount(
        left,
        weights=shapely.area(pieces) * parts["density"].to_numpy()[right],
        minlength=len(targets),
    )
    return pd.Series(est, index=targets.index, name="population_est")
