"""Stage 2 of the pipeline: the access model, per origin and facility category.

For every category with data, :func:`compute_access` finds each origin's distance to the
nearest facility (on the street network, or in a straight line when the context's
``distance`` is ``"euclidean"``), the facilities within the category's threshold
(count, gravity sum, the pairs for 2SFCA) and within the activity-mix distance, and the
distance from every land cell (site access). :func:`access_table` returns the distances
as one documented DataFrame.

Every (origin, facility) pair within the category's **search limit** is kept, sorted by
distance (:class:`~bxlplan.scoring.context.Reach`): the search limit is
``access_search_factor`` (``layers/scoring.yaml``, 1.5) times the category's catalog
threshold, and at least the activity-mix distance. :func:`with_thresholds` re-derives
counts, gravity sums, 2SFCA pairs and shares for other thresholds up to that limit from
those pairs alone, without the street graph; the preparation derives them the same way,
so a re-derived context equals one prepared with those thresholds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import ConfigError
from ..indicators.access import (
    euclidean_nearest,
    pair_distances,
    within_sums,
)
from .context import CategoryAccess, Context, Reach

__all__ = ["access_table", "compute_access", "search_limit", "with_thresholds"]

#: default of ``access_search_factor`` (``layers/scoring.yaml``)
SEARCH_FACTOR = 1.5


def search_limit(info: Mapping[str, Any], config: Mapping[str, Any]) -> float:
    """The distance up to which a category's (origin, facility) pairs are kept.

    ``access_search_factor`` times the category's catalog threshold
    (``catalog_threshold_m``, else ``threshold_m``), at least the activity-mix distance
    and the threshold in effect. Thresholds up to it can be changed without the graph
    (:func:`with_thresholds`).

    Parameters
    ----------
    info
        The category's entry of ``Context.categories``.
    config
        The scoring configuration (``access_search_factor``,
        ``activity_mix_distance_m``).

    Returns
    -------
    float
        The limit, metres.

    Examples
    --------
    >>> search_limit({"threshold_m": 800}, {"access_search_factor": 1.5})
    1200.0
    >>> search_limit({"threshold_m": 300, "catalog_threshold_m": 400}, {})
    800.0
    """
    base = float(info.get("catalog_threshold_m", info["threshold_m"]))
    factor = float(config.get("access_search_factor", SEARCH_FACTOR))
    mix_d = float(config.get("activity_mix_distance_m", 800))
    return max(factor * base, mix_d, float(info["threshold_m"]))


def _reach(pairs: pd.DataFrame, limit: float) -> Reach:
    """The pairs as a :class:`Reach` sorted by distance (stable, so deterministic)."""
    d = pairs["distance"].to_numpy(dtype=np.float64)
    order = np.argsort(d, kind="stable")
    arrays = (
        pairs["origin"].to_numpy()[order].astype(np.int32),
        pairs["facility"].to_numpy()[order].astype(np.int32),
        d[order],
    )
    for a in arrays:
        a.flags.writeable = False
    return Reach(float(limit), *arrays)


def _within(
    reach: Reach, n: int, thr: float, beta_k: float
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Count, gravity sum and pairs within ``thr`` of every origin, from ``reach``:
    the one derivation both the preparation and :func:`with_thresholds` use."""
    k = int(np.searchsorted(reach.distance, thr, side="right"))
    count, gravity = within_sums(reach.origin, reach.distance, k, n, -beta_k / thr)
    # views of the read-only stored arrays, not copies (a write raises, never
    # corrupts the store)
    return count, gravity, reach.within(thr)


def _capacity(sub: gpd.GeoDataFrame, ids: np.ndarray) -> pd.Series | None:
    """Capacity per facility (index = position in ``ids``) when every facility of the
    category has one; None otherwise (2SFCA is then not computed, never guessed)."""
    if "capacity" not in sub or sub["capacity"].isna().any():
        return None
    cap = sub.groupby("facility_id")["capacity"].max()
    return pd.Series(cap.reindex(ids).to_numpy(), index=np.arange(len(ids)))


def compute_access(
    ctx: Context, progress: Callable[[str], None] | None = None
) -> Context:
    """Compute ``ctx.access`` and ``ctx.site`` (in place) for every category with data.

    Parameters
    ----------
    ctx
        A context with ``origins``, ``facilities``, ``graph``, ``categories`` and
        ``land``; its ``access`` and ``site`` are replaced.
    progress
        Called with ``"access: <category> (i/n)"`` before each category.

    Returns
    -------
    Context
        ``ctx`` itself.

    Examples
    --------
    After replacing the facilities of a prepared context (``ctx``)::

        ctx2 = dataclasses.replace(ctx, facilities=my_facilities, access={})
        compute_access(ctx2)
        access_table(ctx2)["pharmacy"].median()
    """
    step = progress or (lambda _msg: None)
    origins = ctx.origins
    network = ctx.distance == "network"
    o_att = ctx.graph.attach(origins.geometry) if network else None
    mix_d = float(ctx.config.get("activity_mix_distance_m", 800))
    beta_k = float(ctx.config.get("gravity_beta_at_threshold", 4.0))
    acc: dict[str, CategoryAccess] = {}
    site: dict[str, np.ndarray] = {}
    land_pts = (
        shapely.point_on_surface(ctx.land.geometry.values)
        if ctx.land is not None
        else None
    )
    l_att = (
        ctx.graph.attach(gpd.GeoSeries(land_pts, crs=origins.crs))
        if land_pts is not None and network
        else None
    )
    todo = [c for c in ctx.categories if c not in ctx.missing]
    n = len(origins)
    for i, cat in enumerate(todo, start=1):
        info = ctx.categories[cat]
        step(f"access: {cat} ({i}/{len(todo)})")
        sub = ctx.facilities.loc[ctx.facilities["category"] == cat]
        thr = float(info["threshold_m"])
        limit = search_limit(info, ctx.config)
        ids, group = np.unique(sub["facility_id"].to_numpy(), return_inverse=True)
        if network:
            assert o_att is not None  # attached above whenever the network is used
            f_att = ctx.graph.attach(sub.geometry)
            nearest = ctx.graph.nearest(o_att, f_att)
            if l_att is not None:
                site[cat] = ctx.graph.nearest(l_att, f_att)
            pairs = pair_distances(ctx.graph, o_att, f_att, group, limit=limit)
        else:
            nearest = euclidean_nearest(origins.geometry.values, sub.geometry.values)
            if land_pts is not None:
                site[cat] = euclidean_nearest(land_pts, sub.geometry.values)
            tree = shapely.STRtree(sub.geometry.values)
            oi, fi = tree.query(
                origins.geometry.values, predicate="dwithin", distance=limit
            )
            d = shapely.distance(origins.geometry.values[oi], sub.geometry.values[fi])
            # as_index=False: a DataFrame (origin, facility, distance), not a Series
            pairs = cast(
                pd.DataFrame,
                pd.DataFrame({"origin": oi, "facility": group[fi], "distance": d})
                .groupby(["origin", "facility"], as_index=False)["distance"]
                .min(),
            )
        reach = _reach(pairs, limit)
        count, gravity, within = _within(reach, n, thr, beta_k)
        k_mix = int(np.searchsorted(reach.distance, mix_d, side="right"))
        acc[cat] = CategoryAccess(
            threshold_m=thr,
            nearest=nearest,
            count=count,
            gravity=gravity,
            count_mix=np.bincount(reach.origin[:k_mix], minlength=n).astype(float),
            pairs=within,
            facility_ids=ids,
            capacity=_capacity(sub, ids),
            reach=reach,
        )
    ctx.access = acc
    ctx.site = site
    return ctx


def access_table(ctx: Context) -> pd.DataFrame:
    """Distance from every origin to the nearest facility of every category.

    Parameters
    ----------
    ctx
        A prepared context (:func:`bxlplan.scoring.baseline.prepare`).

    Returns
    -------
    pandas.DataFrame
        One row per origin (same index and order as ``ctx.origins``), one float column
        per category with data, in metres along the street network (or in a straight
        line when ``ctx.distance == "euclidean"``); ``inf`` where no facility is
        reachable. ``attrs["bxlplan"]`` holds the thresholds and the distance mode.

    Examples
    --------
    On a prepared context (``ctx = bp.prepare()``)::

        table = access_table(ctx)
        (table["pharmacy"] <= 800).mean()   # share of origins within 800 m
    """
    out = pd.DataFrame(
        {cat: a.nearest for cat, a in ctx.access.items()}, index=ctx.origins.index
    )
    out.attrs["bxlplan"] = {
        "unit": "m",
        "distance": ctx.distance,
        "thresholds_m": {cat: a.threshold_m for cat, a in ctx.access.items()},
    }
    return out


def with_thresholds(ctx: Context, thresholds: Mapping[str, float]) -> Context:
    """The context with other walking thresholds, re-derived without the street graph.

    For every category given, the count, gravity sum and 2SFCA pairs within the new
    threshold are re-derived from the pairs kept up to the search limit
    (``CategoryAccess.reach``); the share within the threshold and the shortage zones
    follow (they compare ``nearest`` with the category's ``threshold_m``, which is
    replaced too). The result equals a context prepared with those thresholds.
    ``ctx`` is left untouched: the new context shares everything else with it.

    Parameters
    ----------
    ctx
        A prepared context (:func:`bxlplan.scoring.baseline.prepare`).
    thresholds
        Category -> threshold in whole metres (``{"pharmacy": 600}``); categories not
        given keep theirs. A category without data only changes its label.

    Returns
    -------
    Context
        A new context (``dataclasses.replace``): ``categories``, ``access`` and
        ``config["thresholds"]`` replaced, the remembered shortage zones dropped.

    Raises
    ------
    ConfigError
        On an unknown category (listing the known ones), a threshold that is not a
        positive whole number of metres, or one beyond the category's search limit
        (naming the limit and ``access_search_factor``, the preparation key that raises
        it), before any computation.

    Examples
    --------
    On a prepared context (``ctx = bp.prepare()``)::

        ctx600 = with_thresholds(ctx, {"pharmacy": 600})
        assess(areas, ctx600)["access_pharmacy_within_600m_share"]
    """
    new = _checked_thresholds(ctx, thresholds)
    n = len(ctx.origins)
    beta_k = float(ctx.config.get("gravity_beta_at_threshold", 4.0))
    categories = dict(ctx.categories)
    access = dict(ctx.access)
    for cat, thr in new.items():
        categories[cat] = {**ctx.categories[cat], "threshold_m": _metres(thr)}
        a = access.get(cat)
        if a is None or a.threshold_m == thr:
            continue
        assert a.reach is not None  # checked by _checked_thresholds
        count, gravity, pairs = _within(a.reach, n, thr, beta_k)
        access[cat] = dataclasses.replace(
            a, threshold_m=thr, count=count, gravity=gravity, pairs=pairs
        )
    config = {**ctx.config, "thresholds": {**(ctx.config.get("thresholds") or {})}}
    config["thresholds"].update({c: _metres(t) for c, t in new.items()})
    return dataclasses.replace(
        ctx, categories=categories, access=access, config=config, shortage_memo=None
    )


def _metres(value: float) -> int | float:
    """Whole metres as an int (the catalog's type), as they appear in column names."""
    return int(value) if float(value).is_integer() else float(value)


def _checked_thresholds(
    ctx: Context, thresholds: Mapping[str, float]
) -> dict[str, float]:
    """``thresholds`` as floats, every one checked before any computation."""
    if not isinstance(thresholds, Mapping):
        raise ConfigError(
            "thresholds: give a mapping of category -> metres, e.g. {'pharmacy': 600}"
        )
    out = {}
    for cat, value in thresholds.items():
        if cat not in ctx.categories:
            raise ConfigError(
                f"thresholds: '{cat}' is not a facility category; known categories: "
                f"{', '.join(ctx.categories)}"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float | np.integer | np.floating)
            or not math.isfinite(value)
            or value <= 0
            or not float(value).is_integer()
        ):
            raise ConfigError(
                f"thresholds: '{cat}' must be a positive whole number of metres, got "
                f"{value!r}"
            )
        thr = float(value)
        a = ctx.access.get(cat)
        if a is not None and thr != a.threshold_m:
            if a.reach is None:
                raise ConfigError(
                    f"thresholds: '{cat}' has no stored pairs to re-derive from (its "
                    "access was computed without them); prepare again with the "
                    "threshold in the scoring file"
                )
            if thr > a.reach.limit_m:
                base = ctx.categories[cat].get("catalog_threshold_m", a.threshold_m)
                raise ConfigError(
                    f"thresholds: '{cat}' = {thr:g} m is beyond its search limit "
                    f"{a.reach.limit_m:g} m (access_search_factor "
                    f"{ctx.config.get('access_search_factor', SEARCH_FACTOR):g} x the "
                    f"catalog threshold {float(base):g} m): raise access_search_factor "
                    f"to at least {thr / float(base):.2f} in the scoring file "
                    "(a preparation key: the baseline is then prepared again)"
                )
        out[cat] = thr
    return out
