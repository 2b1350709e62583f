"""Stage 2 of the pipeline: the access model, per origin and facility category.

For every category with data, :func:`compute_access` finds each origin's distance to the
nearest facility (on the street network, or in a straight line when the context's
``distance`` is ``"euclidean"``), the facilities within the category's threshold
(count, gravity sum, the pairs for 2SFCA) and within the activity-mix distance, and the
distance from every land cell (site access). :func:`access_table` returns the distances
as one documented DataFrame.
"""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..indicators.access import (
    counts_within,
    euclidean_nearest,
    pair_distances,
)
from .context import CategoryAccess, Context

__all__ = ["access_table", "compute_access"]


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
    for i, cat in enumerate(todo, start=1):
        info = ctx.categories[cat]
        step(f"access: {cat} ({i}/{len(todo)})")
        sub = ctx.facilities.loc[ctx.facilities["category"] == cat]
        thr = float(info["threshold_m"])
        ids, group = np.unique(sub["facility_id"].to_numpy(), return_inverse=True)
        if network:
            f_att = ctx.graph.attach(sub.geometry)
            nearest = ctx.graph.nearest(o_att, f_att)
            if l_att is not None:
                site[cat] = ctx.graph.nearest(l_att, f_att)
            pairs = pair_distances(
                ctx.graph, o_att, f_att, group, limit=max(thr, mix_d)
            )
        else:
            nearest = euclidean_nearest(origins.geometry.values, sub.geometry.values)
            if land_pts is not None:
                site[cat] = euclidean_nearest(land_pts, sub.geometry.values)
            tree = shapely.STRtree(sub.geometry.values)
            oi, fi = tree.query(
                origins.geometry.values, predicate="dwithin", distance=max(thr, mix_d)
            )
            d = shapely.distance(origins.geometry.values[oi], sub.geometry.values[fi])
            pairs = (
                pd.DataFrame({"origin": oi, "facility": group[fi], "distance": d})
                .groupby(["origin", "facility"], as_index=False)["distance"]
                .min()
            )
        n = len(origins)
        counts = counts_within(pairs, n, [thr, mix_d])
        within = pairs[pairs["distance"].to_numpy() <= thr]
        acc[cat] = CategoryAccess(
            threshold_m=thr,
            nearest=nearest,
            count=counts[thr].astype(float),
            gravity=np.bincount(
                within["origin"].to_numpy(),
                weights=np.exp(-beta_k / thr * within["distance"].to_numpy()),
                minlength=n,
            ),
            count_mix=counts[mix_d].astype(float),
            pairs=within,
            facility_ids=ids,
            capacity=_capacity(sub, ids),
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
