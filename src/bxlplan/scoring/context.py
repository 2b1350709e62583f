"""The prepared baseline's data types: :class:`Context` and :class:`CategoryAccess`.

The pipeline has four public, typed stages, each in its own module:

1. **origins** (:mod:`bxlplan.scoring.origins`): residential points with population,
   income and income class (``Context.origins``);
2. **access** (:mod:`bxlplan.scoring.access`): per origin and category, the distance to
   the nearest facility and the counts within reach (``Context.access``, one
   :class:`CategoryAccess` per category; :func:`~bxlplan.scoring.access.access_table`
   gives the distances as one DataFrame);
3. **aggregation** (:mod:`bxlplan.scoring.aggregate`): resident-weighted indicators
   per area;
4. **scoring** (:mod:`bxlplan.scoring.scores`): 0-100 scores.

:func:`bxlplan.scoring.baseline.prepare` builds a :class:`Context` from the data folder;
:func:`bxlplan.scoring.assess.assess` runs stages 3 and 4 over any areas. Every field is
public: a researcher may replace a stage's output (``dataclasses.replace(ctx,
facilities=...)`` then :func:`~bxlplan.scoring.access.compute_access`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..indicators.access import StreetGraph

__all__ = ["DISTANCES", "CategoryAccess", "Context", "Reach"]

#: the values of the one distance switch (``prepare(distance=...)``, ``--distance``)
DISTANCES = ("network", "euclidean")


@dataclass(frozen=True)
class Reach:
    """Every (origin, facility) pair of one category within the search limit.

    Sorted by distance: what a change of threshold is re-derived from without the graph
    (:func:`bxlplan.scoring.access.with_thresholds`).

    Parameters
    ----------
    limit_m
        The search limit, metres: thresholds up to it can be re-derived.
    origin
        Origin position (in ``Context.origins``) of each pair.
    facility
        Facility position (in ``CategoryAccess.facility_ids``) of each pair.
    distance
        Distance of each pair, metres, ascending (the pairs within a threshold are a
        prefix).

    Examples
    --------
    >>> r = Reach(900.0, np.array([3, 0, 3], np.int32), np.array([1, 0, 0], np.int32),
    ...           np.array([120.0, 400.0, 850.0]))
    >>> len(r), r.limit_m
    (3, 900.0)
    """

    limit_m: float
    origin: NDArray[np.int32]
    facility: NDArray[np.int32]
    distance: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.distance)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # unpickled arrays come back writeable: the store stays read-only
        self.__dict__.update(state)
        for name in ("origin", "facility", "distance"):
            getattr(self, name).flags.writeable = False

    def within(self, threshold_m: float) -> pd.DataFrame:
        """The pairs within ``threshold_m``, in distance order.

        Parameters
        ----------
        threshold_m
            The distance, metres (pairs at exactly this distance are kept).

        Returns
        -------
        DataFrame
            ``origin``, ``facility``, ``distance``: views of the read-only store.

        Examples
        --------
        >>> r = Reach(900.0, np.array([3, 0, 3], np.int32), np.array([1, 0, 0], np.int32),
        ...           np.array([120.0, 400.0, 850.0]))
        >>> r.within(400).to_dict("list")
        {'origin': [3, 0], 'facility': [1, 0], 'distance': [120.0, 400.0]}
        """
        k = int(np.searchsorted(self.distance, threshold_m, side="right"))
        return pd.DataFrame(
            {
                "origin": self.origin[:k],
                "facility": self.facility[:k],
                "distance": self.distance[:k],
            },
            copy=False,
        )


@dataclass
class CategoryAccess:
    """Access of every origin to one facility category.

    The arrays are aligned with ``Context.origins``.

    Parameters
    ----------
    threshold_m
        The category's walking threshold (``layers/facilities.yaml`` or the scoring
        file), in metres.
    nearest
        Distance to the nearest facility, metres (``inf`` when none is reachable).
    count
        Facilities within ``threshold_m``.
    gravity
        Sum of ``exp(-beta * d / threshold_m)`` over facilities within the threshold.
    count_mix
        Facilities within the activity-mix distance.
    pairs
        ``origin``, ``facility`` (position in ``facility_ids``), ``distance`` of every
        pair within ``threshold_m``.
    facility_ids
        The category's facility identifiers.
    capacity
        Capacity per facility (index: position in ``facility_ids``) when every facility
        has one, else None (2SFCA is then not computed).
    reach
        The pairs within the search limit (:class:`Reach`), or None when they were not
        kept (the threshold cannot then be changed without a new preparation).

    Examples
    --------
    Two origins and one facility 120 m from the second (threshold 400 m):

    >>> r = Reach(900.0, np.array([1], np.int32), np.array([0], np.int32),
    ...           np.array([120.0]))
    >>> ca = CategoryAccess(
    ...     threshold_m=400.0, nearest=np.array([np.inf, 120.0]),
    ...     count=np.array([0.0, 1.0]), gravity=np.array([0.0, 0.74]),
    ...     count_mix=np.array([0.0, 1.0]), pairs=r.within(400.0),
    ...     facility_ids=np.array(["school-1"]), reach=r,
    ... )
    >>> ca.pairs.to_dict("list")
    {'origin': [1], 'facility': [0], 'distance': [120.0]}
    """

    threshold_m: float
    nearest: NDArray[np.float64]
    count: NDArray[np.float64]
    gravity: NDArray[np.float64]
    count_mix: NDArray[np.float64]
    pairs: pd.DataFrame
    facility_ids: NDArray[Any]
    capacity: pd.Series | None = None
    reach: Reach | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        # the pairs are a prefix of the stored reach: not pickled twice (the cache)
        state = dict(self.__dict__)
        if self.reach is not None:
            state["pairs"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.pairs is None and self.reach is not None:
            self.pairs = self.reach.within(self.threshold_m)


@dataclass
class Context:
    """Everything an assessment needs, loaded and computed once.

    Built by :func:`bxlplan.scoring.baseline.prepare`.

    Parameters
    ----------
    data
        The data folder the layers came from.
    config
        The scoring configuration (``layers/scoring.yaml`` or the user's file).
    graph
        The walkable street graph.
    origins
        Residential points (EPSG:31370): ``population``, ``income``, ``income_class``
        (-1 unknown), ``neighbourhood`` and ``commune`` codes, and the origin ``cell``
        polygon (:func:`bxlplan.scoring.origins.make_origins`).
    facilities
        Points with ``facility_id``, ``category``, ``name`` (and ``capacity`` where
        known).
    categories
        Category -> its catalog entry (``threshold_m``, labels, ...).
    missing, partial
        Categories with no data; categories with partial data (-> why).
    surface
        Land-use functions, non-overlapping polygons.
    neighbourhoods, communes
        The statistical units, with ``code`` and names.
    poverty
        At-risk-of-poverty rates per commune and year, or None.
    income_reference
        The region's resident-weighted median income (the social-mix reference), EUR.
    distance
        ``"network"`` (street network) or ``"euclidean"`` (straight line, labelled
        fallback).
    sources
        Provenance of every layer, the preparation report and the population source.
    land
        Every origins-grid cell with ``land_m2`` and ``residential_m2`` (site access).
    user_values
        The scoring file's user indicators, by neighbourhood code.
    access
        Category -> :class:`CategoryAccess` (:mod:`bxlplan.scoring.access`).
    site
        Category -> distance to the nearest facility from every cell of ``land``.
    shortage_memo
        ``(access, origins, zones)``: the shortage zones of that access and those
        origins, remembered by :func:`bxlplan.scoring.aggregate.shortage_zones`
        (not compared).

    Examples
    --------
    A context is prepared from a data pack (a few minutes the first time, then read
    from the cache):

    >>> from bxlplan.scoring.baseline import prepare
    >>> ctx = prepare()  # doctest: +SKIP
    >>> ctx.distance, set(ctx.access) <= set(ctx.categories)  # doctest: +SKIP
    ('network', True)
    """

    data: Path | None
    config: dict[str, Any]
    graph: StreetGraph
    origins: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    categories: dict[str, dict[str, Any]]
    missing: list[str]
    surface: gpd.GeoDataFrame
    neighbourhoods: gpd.GeoDataFrame
    communes: gpd.GeoDataFrame
    poverty: pd.DataFrame | None
    income_reference: float
    distance: Literal["network", "euclidean"] = "network"
    sources: dict[str, Any] = field(default_factory=dict)
    partial: dict[str, str] = field(default_factory=dict)
    land: gpd.GeoDataFrame | None = None
    user_values: dict[str, pd.Series] = field(default_factory=dict)
    access: dict[str, CategoryAccess] = field(default_factory=dict, repr=False)
    site: dict[str, NDArray[np.float64]] = field(default_factory=dict, repr=False)
    #: (access, origins, zones): the shortage zones of that access and those origins,
    #: remembered by :func:`bxlplan.scoring.aggregate.shortage_zones`
    shortage_memo: tuple[Any, Any, gpd.GeoDataFrame] | None = field(
        default=None, repr=False, compare=False
    )
