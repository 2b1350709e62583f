"""Functional diversity: Shannon entropy, Gini-Simpson and Hill numbers of category
shares, and the land-use mix of areas.

With :math:`p_i` the share of category :math:`i` and :math:`K` the number of categories:

* Shannon :math:`H = -\\sum_i p_i \\ln p_i`; normalised entropy :math:`H / \\ln K` in
  [0, 1] (Frank et al. 2010, land-use mix);
* Gini-Simpson :math:`1 - \\sum_i p_i^2`;
* Hill numbers :math:`D_q = (\\sum_i p_i^q)^{1/(1-q)}`: :math:`D_0` richness,
  :math:`D_1 = e^H`, :math:`D_2 = 1 / \\sum_i p_i^2` (Hill 1973; cityseer; Jost 2006).

Zero shares contribute nothing (:math:`0 \\ln 0 = 0`). Rows with no observation
(all shares zero) give NaN, never 0.

The indices (:func:`shares`, :func:`shannon`, :func:`normalised_entropy`,
:func:`gini_simpson`, :func:`hill`, :func:`hill_distance_weighted`) work on the rows of
a 2-D table of counts or shares, one value per row. Given a DataFrame they return a
Series (a DataFrame for :func:`shares`) indexed like it; given an array or nested lists,
a plain NumPy array in the order of the rows (the vectorised core called on thousands
of origins). :func:`landuse_mix` works on areas and returns a DataFrame indexed like
them.

Examples
--------
>>> counts = pd.DataFrame({"housing": [2, 1], "shops": [2, 0]}, index=["a", "b"])
>>> hill(shares(counts), 1)
a    2.0
b    1.0
dtype: float64
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "gini_simpson",
    "hill",
    "hill_distance_weighted",
    "landuse_mix",
    "landuse_surface",
    "normalised_entropy",
    "shannon",
    "shares",
]


Float = NDArray[np.float64]


def _rows(x: ArrayLike) -> Float:
    return np.atleast_2d(np.asarray(x, dtype=float))


def _per_row(values: Float, like: object) -> pd.Series | Float:
    """``values`` as a Series indexed like ``like`` when it is a DataFrame."""
    if isinstance(like, pd.DataFrame):
        return pd.Series(values, index=like.index)
    return values


@overload
def shares(counts: pd.DataFrame) -> pd.DataFrame: ...
@overload
def shares(counts: ArrayLike) -> Float: ...
def shares(counts: ArrayLike | pd.DataFrame) -> Float | pd.DataFrame:
    """Row-normalise counts or areas to shares; rows summing to 0 become NaN.

    Parameters
    ----------
    counts : array_like or DataFrame
        Counts or areas, one row per place and one column per category.

    Returns
    -------
    ndarray or DataFrame
        The shares of each row (a 2-D float array; a DataFrame with the index and
        columns of ``counts`` when it is one).

    Raises
    ------
    ValueError
        When a count or area is negative.

    Examples
    --------
    >>> shares([[2, 2, 0], [1, 0, 0], [0, 0, 0]])
    array([[0.5, 0.5, 0. ],
           [1. , 0. , 0. ],
           [nan, nan, nan]])
    >>> shares(pd.DataFrame({"shops": [1, 3]}, index=["a", "b"]))
       shops
    a    1.0
    b    1.0
    """
    x = _rows(counts)
    if (x < 0).any():
        raise ValueError("counts and areas must not be negative")
    total = x.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, x / np.where(total > 0, total, 1), np.nan)
    if isinstance(counts, pd.DataFrame):
        return pd.DataFrame(out, index=counts.index, columns=counts.columns)
    return out


def _shannon(p: Float) -> Float:
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1)), 0.0)
    return np.where(np.isnan(p).all(axis=1), np.nan, terms.sum(axis=1))


@overload
def shannon(p: pd.DataFrame) -> pd.Series: ...
@overload
def shannon(p: ArrayLike) -> Float: ...
def shannon(p: ArrayLike | pd.DataFrame) -> Float | pd.Series:
    """Shannon entropy :math:`H = -\\sum p_i \\ln p_i` of each row of shares.

    Parameters
    ----------
    p : array_like or DataFrame
        Shares, one row per place (:func:`shares`).

    Returns
    -------
    ndarray or Series
        One value per row (a Series indexed like ``p`` when it is a DataFrame); NaN
        for a row of NaN shares.

    Examples
    --------
    >>> float(shannon(np.array([[0.5, 0.5]]))[0])  # ln 2
    0.6931471805599453
    >>> shannon(shares([[2, 2, 0], [1, 0, 0], [0, 0, 0]]))
    array([0.69314718, 0.        ,        nan])
    """
    return _per_row(_shannon(_rows(p)), p)


@overload
def normalised_entropy(p: pd.DataFrame, k: int | None = None) -> pd.Series: ...
@overload
def normalised_entropy(p: ArrayLike, k: int | None = None) -> Float: ...
def normalised_entropy(
    p: ArrayLike | pd.DataFrame, k: int | None = None
) -> Float | pd.Series:
    """Shannon entropy divided by :math:`\\ln K` (Frank et al. 2010), in [0, 1].

    Parameters
    ----------
    p : array_like or DataFrame
        Shares, one row per place (:func:`shares`).
    k : int, optional
        The number of possible categories (default: the number of columns).

    Returns
    -------
    ndarray or Series
        One value per row in [0, 1] (0 when fewer than 2 categories are possible); NaN
        for a row of NaN shares. A Series indexed like ``p`` when it is a DataFrame.

    Examples
    --------
    >>> normalised_entropy([[0.5, 0.5], [1.0, 0.0]])
    array([1., 0.])
    >>> normalised_entropy([[0.5, 0.5]], k=4).round(3)  # 2 of 4 possible categories
    array([0.5])
    """
    x = _rows(p)
    k = k or x.shape[1]
    if k < 2:
        return _per_row(np.where(np.isnan(x).all(axis=1), np.nan, 0.0), p)
    return _per_row(_shannon(x) / np.log(k), p)


@overload
def gini_simpson(p: pd.DataFrame) -> pd.Series: ...
@overload
def gini_simpson(p: ArrayLike) -> Float: ...
def gini_simpson(p: ArrayLike | pd.DataFrame) -> Float | pd.Series:
    """Gini-Simpson index :math:`1 - \\sum p_i^2` of each row of shares.

    Parameters
    ----------
    p : array_like or DataFrame
        Shares, one row per place (:func:`shares`).

    Returns
    -------
    ndarray or Series
        One value per row (a Series indexed like ``p`` when it is a DataFrame); NaN
        for a row of NaN shares.

    Examples
    --------
    >>> gini_simpson(shares([[2, 2, 0], [1, 0, 0], [0, 0, 0]]))
    array([0.5, 0. , nan])
    """
    x = _rows(p)
    out = 1.0 - np.nansum(x**2, axis=1)
    return _per_row(np.where(np.isnan(x).all(axis=1), np.nan, out), p)


@overload
def hill(p: pd.DataFrame, q: float) -> pd.Series: ...
@overload
def hill(p: ArrayLike, q: float) -> Float: ...
def hill(p: ArrayLike | pd.DataFrame, q: float) -> Float | pd.Series:
    """Hill number (effective number of categories) of order ``q`` of each row.

    :math:`D_q = (\\sum_i p_i^q)^{1/(1-q)}`; :math:`D_1 = \\exp(H)` (the limit at q = 1);
    :math:`D_0` counts the categories present.

    Parameters
    ----------
    p : array_like or DataFrame
        Shares, one row per place (:func:`shares`).
    q : float
        The order: 0 (richness), 1 (exponential of Shannon), 2 (inverse Simpson), ...

    Returns
    -------
    ndarray or Series
        One value per row (a Series indexed like ``p`` when it is a DataFrame); NaN
        for a row of NaN shares.

    Examples
    --------
    >>> p = shares([[1, 1, 2], [1, 0, 0]])
    >>> hill(p, 0), hill(p, 1).round(3), hill(p, 2).round(3)
    (array([3., 1.]), array([2.828, 1.   ]), array([2.667, 1.   ]))
    """
    x = _rows(p)
    empty = np.isnan(x).all(axis=1)
    if q == 0:
        out = (x > 0).sum(axis=1).astype(float)
    elif q == 1:
        out = np.exp(_shannon(x))
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(x > 0, np.where(x > 0, x, 1) ** q, 0.0).sum(axis=1)
            out = s ** (1.0 / (1.0 - q))
    return _per_row(np.where(empty, np.nan, out), p)


@overload
def hill_distance_weighted(
    counts: pd.DataFrame, distances: ArrayLike, q: float, beta: float
) -> pd.Series: ...
@overload
def hill_distance_weighted(
    counts: ArrayLike, distances: ArrayLike, q: float, beta: float
) -> Float: ...
def hill_distance_weighted(
    counts: ArrayLike | pd.DataFrame, distances: ArrayLike, q: float, beta: float
) -> Float | pd.Series:
    """Hill number weighted by the distance to the nearest instance of each category.

    Cityseer's ``hill_wt``, a phylogenetic-style Hill number after Chao, Chiu & Jost
    2010 with branch lengths :math:`w_i = e^{-\\beta d_i}`. With :math:`p_i` the
    category shares, :math:`d_i` the distance to the nearest instance of category
    :math:`i` and :math:`T = \\sum_i w_i p_i`:

    .. math:: D_q = \\Big(\\sum_i w_i (p_i / T)^q\\Big)^{1/(1-q)}, \\qquad
              D_1 = \\exp\\Big(-\\sum_i \\frac{w_i p_i}{T} \\ln \\frac{w_i p_i}{T}\\Big)

    :math:`D_0 = \\sum_i w_i`: each category present counts less the farther it is.
    Rows with no observation give NaN. Agrees with cityseer's
    ``hill_diversity_branch_distance_wt`` (with ``max_curve_wt = 1``).

    Parameters
    ----------
    counts : array_like or DataFrame
        Counts of each category (columns) around each place (rows).
    distances : array_like
        Distance (m) from each place to the nearest instance of each category, same
        shape as ``counts``.
    q : float
        The order of the Hill number (0, 1, 2, ...).
    beta : float
        Decay per metre of the weights :math:`w_i = e^{-\\beta d_i}`.

    Returns
    -------
    ndarray or Series
        One value per row (a Series indexed like ``counts`` when it is a DataFrame).

    Examples
    --------
    Two categories at the doorstep count as two; one of them 400 m away counts less
    (:math:`1 + e^{-0.005 \\times 400}`):

    >>> hill_distance_weighted([[2, 2]], [[0, 0]], q=1, beta=0.005)
    array([2.])
    >>> hill_distance_weighted([[2, 2]], [[0, 400]], q=0, beta=0.005).round(3)
    array([1.135])
    """
    c = _rows(counts)
    d = _rows(distances)
    p = shares(c)
    present = c > 0
    w = np.where(present, np.exp(-beta * np.where(present, d, 0.0)), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        T = np.nansum(w * np.nan_to_num(p), axis=1, keepdims=True)
        r = np.where(present, np.nan_to_num(p) / np.where(T > 0, T, 1), 0.0)
        if q == 1:
            x = w * r
            out = np.exp(
                -np.where(x > 0, x * np.log(np.where(x > 0, x, 1)), 0.0).sum(axis=1)
            )
        else:
            out = np.where(present, w * np.where(present, r, 1) ** q, 0.0).sum(
                axis=1
            ) ** (1.0 / (1.0 - q))
    return _per_row(
        np.where(np.isnan(p).all(axis=1) | (T[:, 0] <= 0), np.nan, out), counts
    )


def landuse_surface(
    zoning: gpd.GeoDataFrame, functions: Sequence[str]
) -> gpd.GeoDataFrame:
    """Non-overlapping surface of each function: one (multi)polygon per function.

    Where polygons of different functions overlap (e.g. a park inside a residential
    polygon), the function listed first in ``functions`` wins the overlap - put the more
    specific functions first.

    Parameters
    ----------
    zoning : GeoDataFrame
        Polygons with a ``function`` column (:func:`bxlplan.loading.classify_functions`).
    functions : sequence of str
        The functions to keep, the one that wins an overlap first.

    Returns
    -------
    GeoDataFrame
        ``function`` and one geometry per function, in the order of ``functions``.

    Examples
    --------
    A park overlapping a housing block keeps the overlap when listed first:

    >>> zoning = gpd.GeoDataFrame(
    ...     {"function": ["housing", "green"]},
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(50, 0, 150, 100)],
    ...     crs="EPSG:31370")
    >>> surface = landuse_surface(zoning, ["green", "housing"])
    >>> surface.assign(m2=surface.area)[["function", "m2"]]
      function       m2
    0    green  10000.0
    1  housing   5000.0
    """
    taken: shapely.Geometry = shapely.Polygon()
    geoms = []
    for fn in functions:
        g = shapely.union_all(zoning.loc[zoning["function"] == fn].geometry.values)
        g = shapely.difference(g, taken)
        geoms.append(g)
        taken = shapely.union(taken, g)
    return gpd.GeoDataFrame(
        {"function": list(functions)}, geometry=geoms, crs=zoning.crs
    )


def landuse_mix(
    areas: gpd.GeoDataFrame, surface: gpd.GeoDataFrame, prefix: str = "mix_landuse"
) -> pd.DataFrame:
    """Land-use mix of each area from the area-weighted shares of the functions.

    Parameters
    ----------
    areas : GeoDataFrame
        Polygons to assess (EPSG:31370).
    surface : GeoDataFrame
        One non-overlapping geometry per function (:func:`landuse_surface`).
    prefix : str, default "mix_landuse"
        The prefix of the columns.

    Returns
    -------
    DataFrame
        ``<prefix>_share_<function>``, ``<prefix>_entropy`` (Shannon / ln K, K = number of
        functions), ``<prefix>_gini_simpson``, ``<prefix>_hill_q0/q1/q2`` and
        ``<prefix>_no_info_share`` (share of the area with no land-use information);
        NaN where the area has no land-use information at all.

    Examples
    --------
    >>> zoning = gpd.GeoDataFrame(
    ...     {"function": ["housing", "green"]},
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 150, 100)],
    ...     crs="EPSG:31370")
    >>> surface = landuse_surface(zoning, ["green", "housing"])
    >>> areas = gpd.GeoDataFrame(
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(0, 0, 200, 100)],
    ...     crs="EPSG:31370")
    >>> mix = landuse_mix(areas, surface)
    >>> mix[["mix_landuse_share_green", "mix_landuse_entropy",
    ...      "mix_landuse_no_info_share"]].round(3)
       mix_landuse_share_green  mix_landuse_entropy  mix_landuse_no_info_share
    0                    0.000                0.000                       0.00
    1                    0.333                0.918                       0.25
    """
    functions = list(surface["function"])
    area = shapely.area(areas.geometry.values)
    # explode each function into its parts: small polygons intersect fast
    parts = surface.explode(index_parts=False).reset_index(drop=True)
    fn_index = pd.Index(functions).get_indexer(parts["function"])
    tree = shapely.STRtree(parts.geometry.values)
    a_idx, p_idx = tree.query(areas.geometry.values, predicate="intersects")
    pieces = shapely.area(
        shapely.intersection(areas.geometry.values[a_idx], parts.geometry.values[p_idx])
    )
    inter = np.zeros((len(areas), len(functions)))
    np.add.at(inter, (a_idx, fn_index[p_idx]), pieces)
    p = shares(inter)
    out = pd.DataFrame(index=areas.index)
    for i, fn in enumerate(functions):
        out[f"{prefix}_share_{fn}"] = p[:, i]
    out[f"{prefix}_entropy"] = normalised_entropy(p, len(functions))
    out[f"{prefix}_gini_simpson"] = gini_simpson(p)
    for q in (0, 1, 2):
        out[f"{prefix}_hill_q{q}"] = hill(p, q)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[f"{prefix}_no_info_share"] = np.clip(1 - inter.sum(axis=1) / area, 0, 1)
    return out
