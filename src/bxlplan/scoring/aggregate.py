"""Stage 3 of the pipeline: aggregation of the origins and their access over areas.

:func:`aggregate` turns a prepared context (origins, access, land use) into the
indicator table of any set of areas: resident-weighted means of the per-origin values
(an origin belongs to every area its point lies in), land-use mix from the surface, and
the share of residential land within reach (site access). The names of the columns and
their meaning are in the indicator registry (``layers/indicators.yaml``,
``docs/indicators.md``). :func:`shortage_zones` gives the inhabited land beyond each
category's threshold.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..indicators.access import two_step_fca
from ..indicators.diversity import hill, hill_distance_weighted, landuse_mix, shares
from ..indicators.social import dissimilarity, information_theory_h, local_entropy
from .context import Context

__all__ = [
    "aggregate",
    "area_origins",
    "latest_poverty_rate",
    "shortage_zones",
    "weighted_mean",
]


def area_origins(
    areas: gpd.GeoDataFrame, origins: gpd.GeoDataFrame, buffer: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Which origins lie in which area (``buffer`` metres around it).

    Parameters
    ----------
    areas
        Polygons (same CRS as ``origins``).
    origins
        Points.
    buffer
        Distance added around each area, metres.

    Returns
    -------
    tuple of numpy.ndarray
        Positions of the areas and of the origins of every (area, origin) pair.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> areas = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10)], crs=31370)
    >>> pts = gpd.GeoDataFrame(geometry=shapely.points([[5, 5], [15, 5]]), crs=31370)
    >>> [a.tolist() for a in area_origins(areas, pts)]
    [[0], [0]]
    >>> [a.tolist() for a in area_origins(areas, pts, buffer=6)]
    [[0, 0], [0, 1]]
    """
    geoms = (
        areas.geometry.values
        if buffer == 0
        else shapely.buffer(areas.geometry.values, buffer)
    )
    tree = shapely.STRtree(origins.geometry.values)
    a, o = tree.query(geoms, predicate="intersects")
    return a, o


def weighted_mean(
    values: np.ndarray,
    weights: np.ndarray,
    area_idx: np.ndarray,
    origin_idx: np.ndarray,
    n: int,
) -> np.ndarray:
    """Weighted mean of per-origin ``values`` over each area, NaN values skipped.

    :math:`\\bar v_a = \\sum_{o \\in a} w_o v_o / \\sum_{o \\in a} w_o` over the origins
    of area ``a`` with a finite value; NaN where the area has none.

    Parameters
    ----------
    values, weights
        One value and one weight (residents) per origin.
    area_idx, origin_idx
        The (area, origin) pairs (:func:`area_origins`).
    n
        Number of areas.

    Returns
    -------
    numpy.ndarray
        One mean per area.

    Examples
    --------
    >>> import numpy as np
    >>> weighted_mean(np.array([1.0, 3.0, np.nan]), np.array([1.0, 3.0, 5.0]),
    ...               np.array([0, 0, 0]), np.array([0, 1, 2]), 2).tolist()
    [2.5, nan]
    """
    v = values[origin_idx]
    w = weights[origin_idx]
    ok = np.isfinite(v)
    num = np.bincount(area_idx[ok], weights=(v * w)[ok], minlength=n)
    den = np.bincount(area_idx[ok], weights=w[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def latest_poverty_rate(poverty: pd.DataFrame) -> pd.Series:
    """Each commune's most recent known poverty rate (years without a value skipped).

    Parameters
    ----------
    poverty
        ``code``, ``year``, ``value`` rows (``bxlplan.load("poverty_communes")``).

    Returns
    -------
    pandas.Series
        Rate by commune code.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"code": [1, 1, 2], "year": [2019, 2020, 2020],
    ...                   "value": [0.2, None, 0.3]})
    >>> latest_poverty_rate(t).to_dict()
    {1: 0.2, 2: 0.3}
    """
    return (
        poverty.dropna(subset=["value"])
        .sort_values("year")
        .groupby("code")["value"]
        .last()
    )


def _site_access(areas: gpd.GeoDataFrame, ctx: Context) -> pd.DataFrame:
    """Share of each area's residential land (all its land where it has none) whose
    cell reaches each category within its threshold.

    A cell counts with the part of it inside the area: its residential land times the
    share of the cell inside the area (residential land assumed even within a cell).
    """
    out = pd.DataFrame(index=areas.index)
    n = len(areas)
    if ctx.land is None or not ctx.site:
        return out
    cells = ctx.land.geometry.values
    a_idx, c_idx = shapely.STRtree(cells).query(
        areas.geometry.values, predicate="intersects"
    )
    inside = shapely.area(
        shapely.intersection(areas.geometry.values[a_idx], cells[c_idx])
    )
    land_m2 = ctx.land["land_m2"].to_numpy()
    frac = np.where(land_m2[c_idx] > 0, inside / land_m2[c_idx], 0.0)
    res_w = ctx.land["residential_m2"].to_numpy()[c_idx] * frac
    res_area = np.bincount(a_idx, weights=res_w, minlength=n)
    # areas with no residential land are weighed by all their land
    w = np.where(res_area[a_idx] > 0, res_w, inside)
    den = np.bincount(a_idx, weights=w, minlength=n)
    for cat, nearest in ctx.site.items():
        thr = int(ctx.categories[cat]["threshold_m"])
        reach = (nearest[c_idx] <= thr).astype(float)
        num = np.bincount(a_idx, weights=w * reach, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"site_{cat}_within_{thr}m_land_share"] = np.where(
                den > 0, num / den, np.nan
            )
    return out


def _poverty_segregation(
    ctx: Context, a_idx: np.ndarray, o_idx: np.ndarray, n: int
) -> pd.DataFrame:
    """Dissimilarity D and information-theory H of the at-risk-of-poverty population
    across the communes an area spans (NaN for areas within one commune).

    Sub-units are the parts of the area in each commune (residents t_c from the
    dasymetric origins); the poor are t_c times the commune's latest poverty rate.
    """
    out = pd.DataFrame(index=range(n), dtype=float)
    out["social_poverty_dissimilarity_across_communes"] = np.nan
    out["social_poverty_information_h_across_communes"] = np.nan
    if ctx.poverty is None:
        return out
    rate = latest_poverty_rate(ctx.poverty)
    commune = ctx.origins["commune"].to_numpy(dtype=float, na_value=np.nan)
    codes = np.array(sorted(rate.index), dtype=float)
    col = np.searchsorted(codes, commune[o_idx])
    ok = np.isfinite(commune[o_idx]) & (col < len(codes))
    ok[ok] &= codes[col[ok]] == commune[o_idx][ok]
    table = np.zeros((n, len(codes)))
    np.add.at(
        table, (a_idx[ok], col[ok]), ctx.origins["population"].to_numpy()[o_idx][ok]
    )
    r = rate.reindex(codes.astype(int)).to_numpy()
    for i in np.flatnonzero((table > 0).sum(axis=1) >= 2):
        t = table[i]
        poor = t * r
        out.loc[i, "social_poverty_dissimilarity_across_communes"] = dissimilarity(
            poor, t
        )
        out.loc[i, "social_poverty_information_h_across_communes"] = (
            information_theory_h(np.column_stack([poor, t - poor]))
        )
    return out


def aggregate(
    areas: gpd.GeoDataFrame,
    ctx: Context,
    dwellings: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The indicator table of ``areas``: every indicator of the registry, before the
    unscored areas are blanked and before scoring.

    Parameters
    ----------
    areas
        Validated polygons in EPSG:31370 with ``area_id``, index ``0 .. n-1``
        (:func:`bxlplan.scoring.assess.validate_areas`).
    ctx
        A prepared context.
    dwellings
        Optional dwellings by tenure per area (index ``area_id``; ``social``,
        ``total``).

    Returns
    -------
    pandas.DataFrame
        One row per area (index of ``areas``): ``population_est`` and the indicator
        columns (``mix_*``, ``social_*``, ``user_*``, ``access_*``, ``site_*``).
        ``attrs["landuse_unmapped"]`` is the boolean mask of areas whose land use is
        mostly unmapped (their ``mix_landuse_*`` values are NaN).

    Examples
    --------
    On a prepared context (``ctx = bp.prepare()``)::

        table = aggregate(bp.areas("neighbourhoods").reset_index(drop=True), ctx)
        table["access_pharmacy_within_800m_share"].describe()
    """
    n = len(areas)
    origins = ctx.origins
    pop = origins["population"].to_numpy()
    a_idx, o_idx = area_origins(areas, origins)
    ind = pd.DataFrame(index=areas.index)
    ind["population_est"] = np.bincount(a_idx, weights=pop[o_idx], minlength=n)
    # --- functional diversity
    unmapped_max = float(ctx.config.get("landuse_unmapped_max", 0.5))
    mix = landuse_mix(areas, ctx.surface)
    unmapped = mix["mix_landuse_no_info_share"].to_numpy() > unmapped_max
    mix.loc[unmapped, [c for c in mix if c != "mix_landuse_no_info_share"]] = np.nan
    ind = ind.join(mix)
    act = sorted(ctx.access)
    counts = (
        np.column_stack([ctx.access[c].count_mix for c in act])
        if act
        else np.zeros((len(origins), 0))
    )
    p_act = shares(counts) if act else np.full((len(origins), 1), np.nan)
    mix_d = float(ctx.config.get("activity_mix_distance_m", 800))
    near = (
        np.column_stack([ctx.access[c].nearest for c in act])
        if act
        else np.zeros((len(origins), 0))
    )
    beta_mix = float(ctx.config.get("gravity_beta_at_threshold", 4.0)) / mix_d
    for q in (0, 1, 2):
        per_origin = hill(p_act, q)
        ind[f"mix_activity_hill_q{q}_mean"] = weighted_mean(
            per_origin, pop, a_idx, o_idx, n
        )
        weighted = (
            hill_distance_weighted(counts, near, q, beta_mix) if act else per_origin
        )
        ind[f"mix_activity_hill_wt_q{q}_mean"] = weighted_mean(
            weighted, pop, a_idx, o_idx, n
        )
    # --- social mix
    ind["social_income_median_popmean_eur"] = weighted_mean(
        origins["income"].to_numpy(), pop, a_idx, o_idx, n
    )
    ind["social_income_ratio_to_region"] = (
        ind["social_income_median_popmean_eur"] / ctx.income_reference
    )
    k = int(ctx.config.get("income_classes", 5))
    buf = float(ctx.config.get("income_surroundings_m", 800))
    ba, bo = area_origins(areas, origins, buf)
    cls = origins["income_class"].to_numpy()
    ok = cls[bo] >= 0
    class_pop = np.zeros((n, k))
    np.add.at(class_pop, (ba[ok], cls[bo][ok]), pop[bo][ok])
    ind["social_income_class_mix_entropy"] = local_entropy(class_pop)
    # Segregation across sub-units needs a group split inside each sub-unit. Income
    # classes do not give one (neighbourhood medians: one class per neighbourhood, D and
    # H would be trivially 1); commune poverty rates do: poor = residents x rate.
    ind = ind.join(_poverty_segregation(ctx, a_idx, o_idx, n))
    if ctx.poverty is not None:
        latest = latest_poverty_rate(ctx.poverty)
        cent = shapely.point_on_surface(areas.geometry.values)
        ai, ci = ctx.communes.sindex.query(cent, predicate="within")
        commune = pd.Series(np.nan, index=areas.index)
        commune.iloc[ai] = ctx.communes["code"].to_numpy()[ci].astype(float)
        ind["social_poverty_rate_commune"] = commune.map(latest)
    target = float(ctx.config.get("social_housing_target", 0.15))
    if dwellings is not None:
        dw = dwellings.reindex(areas["area_id"])
        with np.errstate(invalid="ignore", divide="ignore"):
            ind["social_housing_share"] = (dw["social"] / dw["total"]).to_numpy()
        ind["social_housing_gap_to_target_dwellings"] = (
            target * dw["total"] - dw["social"]
        ).to_numpy()
    else:
        ind["social_housing_share"] = np.nan  # unknown: no tenure data for these areas
    # --- user indicators (scoring file): resident-weighted mean of the values of the
    # neighbourhoods the residents live in
    hood = origins["neighbourhood"].to_numpy(dtype=float, na_value=np.nan)
    for name, values in ctx.user_values.items():
        per_origin = pd.Series(hood).map(values).to_numpy(dtype=float)
        ind[f"user_{name}"] = weighted_mean(per_origin, pop, a_idx, o_idx, n)
    # --- distance to services
    for cat in ctx.categories:
        thr = int(ctx.categories[cat]["threshold_m"])
        prefix = f"access_{cat}"
        if cat not in ctx.access:
            ind[f"{prefix}_within_{thr}m_share"] = np.nan
            continue
        a = ctx.access[cat]
        within = (a.nearest <= thr).astype(float)
        ind[f"{prefix}_nearest_m"] = weighted_mean(
            np.where(np.isfinite(a.nearest), a.nearest, np.nan), pop, a_idx, o_idx, n
        )
        ind[f"{prefix}_within_{thr}m_share"] = weighted_mean(
            within, pop, a_idx, o_idx, n
        )
        ind[f"{prefix}_within_{thr}m_count"] = weighted_mean(
            a.count, pop, a_idx, o_idx, n
        )
        ind[f"{prefix}_gravity_{thr}m"] = weighted_mean(a.gravity, pop, a_idx, o_idx, n)
        if a.capacity is not None:  # 2SFCA where every capacity is known
            sfca = two_step_fca(a.pairs, a.capacity, pop)
            ind[f"{prefix}_2sfca_per_1000_within_{thr}m"] = 1000 * weighted_mean(
                sfca, pop, a_idx, o_idx, n
            )
    ind = ind.join(_site_access(areas, ctx))
    ind.attrs["landuse_unmapped"] = unmapped
    return ind


def shortage_zones(ctx: Context) -> gpd.GeoDataFrame:
    """Inhabited land beyond each category's threshold ("zones de carence").

    The union of the origin cells whose nearest facility is farther than the
    threshold. The zones do not depend on the areas assessed: they are computed once
    per access and origins (the unions take seconds) and remembered in the context.

    Parameters
    ----------
    ctx
        A prepared context.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy: one row per category with a shortage (``category``, ``threshold_m``,
        ``population_est``, geometry).

    Examples
    --------
    On a prepared context (``ctx = bp.prepare()``)::

        zones = shortage_zones(ctx)
        zones.set_index("category")["population_est"]
    """
    memo = ctx.shortage_memo
    if memo is not None and memo[0] is ctx.access and memo[1] is ctx.origins:
        return memo[2].copy()
    gdf = _shortage_zones(ctx)
    ctx.shortage_memo = (ctx.access, ctx.origins, gdf)
    return gdf.copy()


def _shortage_zones(ctx: Context) -> gpd.GeoDataFrame:
    cells = ctx.origins["cell"].to_numpy()
    pop = ctx.origins["population"].to_numpy()
    rows = []
    for cat, a in ctx.access.items():
        far = a.nearest > a.threshold_m
        if far.any():
            rows.append(
                {
                    "category": cat,
                    "threshold_m": int(a.threshold_m),
                    "population_est": float(pop[far].sum()),
                    "geometry": shapely.union_all(cells[far]),
                }
            )
    if rows:
        return gpd.GeoDataFrame(rows, geometry="geometry", crs=ctx.origins.crs)
    return gpd.GeoDataFrame(
        {"category": [], "threshold_m": [], "population_est": []},
        geometry=[],
        crs=ctx.origins.crs,
    )
