"""Rank robustness: a Monte Carlo over the assumptions a planner cannot pin down.

Which areas are *robustly* short of services, and which merely fall on the wrong side
of an arbitrary weight? :func:`robustness` re-scores the areas many times, each draw
with its own

* **weights** of the scores, :math:`w \\sim \\mathrm{Dirichlet}(c\\, w_0 / \\sum w_0)`
  around the configured weights :math:`w_0` (zero weights stay zero; ``c =
  weight_concentration``, ``inf`` keeps :math:`w_0`);
* **walking thresholds**, each category's :math:`t_c \\cdot U(1 - j, 1 + j)`
  (``j = threshold_jitter``);
* **population** of the origins, :math:`p_o \\exp(s z_o - s^2 / 2)` with
  :math:`z_o \\sim N(0, 1)`, rescaled so that every statistical sector keeps its
  registered total (``s = population_noise``; the dasymetric estimate spreads a
  sector's residents evenly over its residential land, the real density varies);
* optionally **income**: each IBSA neighbourhood median times a log-normal factor of
  mean 1 and relative standard deviation ``income_noise``
  (:math:`\\sigma = \\sqrt{\\ln(1 + e^2)}`), the regional median and income classes
  recomputed.

The defaults and their rationale are in ``layers/robustness.yaml``. In each draw every
scored area gets a rank per score, **1 = best** (highest score), ties share the
smallest rank (``min``); scores are compared at 1e-9 so that float noise never breaks
a tie. An area is in the **bottom quintile** of a score when its rank is above
``(1 - bottom_share) x`` the number of areas ranked (with 118 inhabited
neighbourhoods: ranks 95-118), and **in shortage** of a category when fewer than
``shortage_share`` of its residents live within the (jittered) threshold. Per area the
result gives the base rank, the median rank and the 5-95 % interval (empirical
quantiles, inverted CDF: always a rank some draw gave), the probability of the bottom
quintile of each score, the share of draws in shortage per category, and the flags
``robust_shortage_<category>`` and ``robustly_bottom_fifth`` (overall score): true in at
least ``robust_share`` (90 %) of the draws.

Who is scored is decided once, on the base figures (:func:`~bxlplan.scoring.assess.
assess`: uninhabited and small-population areas are flagged); those areas get no rank
and no flag (missing, never a rank as if known), and every draw ranks the same areas.

Cheap draws: the base assessment runs once; a draw recomputes only what it changes.
Thresholds change only the within-threshold shares (the services components: counts
and gravity sums are not scored), computed from the stored nearest distances
(``CategoryAccess.nearest``) without the street graph; population re-weights the
resident-weighted means; weights only re-combine the scores. The draws run on Dask
(:func:`bxlplan.parallel.run_tasks`, ``draws_per_task`` draws per task, the compact
base shipped to each worker once). Draw ``i`` takes its random numbers from
``numpy.random.SeedSequence(seed, spawn_key=(i,))`` (one sub-stream per noise source),
so the result depends on the seed only: not on the scheduler, the number of workers or
``draws_per_task``, and switching one noise source on does not change the draws of the
others.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from .._io import run_timestamp
from .._version import __version__
from ..errors import ConfigError
from ..indicators.diversity import hill, shares
from ..indicators.social import local_entropy
from ..loading.catalog import read_catalog_file
from ..parallel import check_scheduler, run_tasks
from .aggregate import area_origins
from .assess import Assessment, assess
from .context import Context
from .origins import income_classes
from .scores import score_components

__all__ = [
    "RobustnessResult",
    "rank_areas",
    "robustness",
    "robustness_settings",
]

# key: (low, high, low inclusive, high inclusive, integer, command-line option)
_BOUNDS: dict[str, tuple[float, float, bool, bool, bool, str]] = {
    "draws": (1, math.inf, True, True, True, "--draws"),
    "seed": (0, 2**63 - 1, True, True, True, "--seed"),
    "weight_concentration": (0, math.inf, False, True, False, "--weight-concentration"),
    "threshold_jitter": (0, 1, True, False, False, "--threshold-jitter"),
    "population_noise": (0, 1, True, True, False, "--population-noise"),
    "income_noise": (0, 1, True, False, False, "--income-noise"),
    "shortage_share": (0, 1, False, True, False, "--shortage-share"),
    "robust_share": (0.5, 1, False, True, False, "--robust-share"),
    "bottom_share": (0, 0.5, False, True, False, "--bottom-share"),
    "draws_per_task": (1, math.inf, True, True, True, "--draws-per-task"),
}
_NOISE = (
    "weight_concentration",
    "threshold_jitter",
    "population_noise",
    "income_noise",
)
#: precision at which scores are compared when ranking
_DECIMALS = 9


def robustness_settings(**overrides: Any) -> dict[str, Any]:
    """The settings of a robustness run: ``layers/robustness.yaml`` with the given
    values (None keeps the default), validated.

    Parameters
    ----------
    **overrides
        Any key of ``layers/robustness.yaml``: ``draws``, ``seed``,
        ``weight_concentration``, ``threshold_jitter``, ``population_noise``,
        ``income_noise``, ``shortage_share``, ``robust_share``, ``bottom_share``,
        ``draws_per_task``.

    Returns
    -------
    dict
        Every key, with numbers as ``int`` or ``float``.

    Raises
    ------
    ConfigError
        For an unknown key or a value out of its bounds (``draws`` at most
        ``robustness.draws_max`` of ``layers/limits.yaml``); the message names the
        option and the valid range.

    Examples
    --------
    >>> s = robustness_settings(draws=200, threshold_jitter=0.2)
    >>> s["draws"], s["threshold_jitter"], s["robust_share"]
    (200, 0.2, 0.9)
    >>> robustness_settings(threshold_jitter=1.5)
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: --threshold-jitter (threshold_jitter) must be in [0, 1),
    got 1.5; ...
    """
    shipped = dict(read_catalog_file("robustness.yaml"))
    unknown = sorted(set(overrides) - set(_BOUNDS))
    if unknown:
        raise ConfigError(
            f"robustness: unknown setting(s) {', '.join(unknown)}; valid: "
            f"{', '.join(_BOUNDS)}"
        )
    extra = sorted(set(shipped) - set(_BOUNDS))
    if extra:
        raise ConfigError(
            f"layers/robustness.yaml: unknown key(s) {', '.join(extra)}; valid: "
            f"{', '.join(_BOUNDS)}"
        )
    settings = {**shipped, **{k: v for k, v in overrides.items() if v is not None}}
    draws_max = int(read_catalog_file("limits.yaml")["robustness"]["draws_max"])
    out: dict[str, Any] = {}
    for key, (lo, hi, lo_in, hi_in, integer, option) in _BOUNDS.items():
        if key not in settings:
            raise ConfigError(f"layers/robustness.yaml: '{key}' is missing")
        if key == "draws":
            hi = draws_max
        value = settings[key]
        where = f"{option} ({key})"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        ok = (value >= lo if lo_in else value > lo) and (
            value <= hi if hi_in else value < hi
        )
        if math.isnan(value) or not ok:
            span = f"{'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"
            why = (
                "; the bound is robustness.draws_max in layers/limits.yaml"
                if key == "draws"
                else "; see layers/robustness.yaml for its meaning"
            )
            raise ConfigError(f"{where} must be in {span}, got {value!r}{why}")
        if integer and int(value) != value:
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        out[key] = int(value) if integer else float(value)
    return out


def rank_areas(scores: NDArray[np.float64]) -> NDArray[np.int32]:
    """Rank the areas of each row of ``scores``: 1 = best (highest), ties ``min``.

    Scores are compared rounded to 1e-9; a NaN score gets rank 0 (not ranked) and the
    others are ranked among the finite ones only.

    Parameters
    ----------
    scores
        One row per draw, one column per area (a 1-D array is one draw).

    Returns
    -------
    numpy.ndarray
        Integer ranks, the shape of ``scores``; 0 where the score is NaN.

    Examples
    --------
    >>> rank_areas(np.array([50.0, 80.0, np.nan, 50.0, 10.0])).tolist()
    [2, 1, 0, 2, 4]
    """
    v = np.round(np.atleast_2d(np.asarray(scores, dtype=float)), _DECIMALS)
    out = np.zeros(v.shape, dtype=np.int32)
    for d in range(v.shape[0]):
        ok = np.isfinite(v[d])
        finite = np.sort(v[d][ok])
        # 1 + the number of areas with a strictly higher score
        out[d][ok] = 1 + len(finite) - np.searchsorted(finite, v[d][ok], side="right")
    return out.reshape(np.shape(scores))


@dataclass
class RobustnessResult:
    """The result of :func:`robustness`.

    Parameters
    ----------
    areas
        One row per area: ``area_id``, names, ``population_est``, the base
        ``score_overall``; per score ``rank_<score>_base``, ``_median``, ``_p05``,
        ``_p95`` and ``prob_bottom_quintile_<score>``; per category with complete
        data ``prob_shortage_<category>`` and ``robust_shortage_<category>``;
        ``robustly_bottom_fifth``; ``flags``. Unscored areas (flags
        ``uninhabited``, ``small_population``) have missing values there, never a
        rank. The provenance is in ``areas.attrs["bxlplan"]``.
    draws
        One row per draw: ``draw``, the weights drawn (``weight_<score>``, summing
        to 1), the thresholds drawn (``threshold_<category>_m``) and
        ``rank_correlation_overall`` (correlation of the draw's overall ranks with
        the base ranks, over the scored areas).
    provenance
        Seed, draws, settings, noise models, the population zones used, the
        conventions and the base assessment's parameters.
    ranks
        Score -> every draw's ranks (draws x areas, 0 = not ranked), for further
        analysis.

    Examples
    --------
    After a run (``result = robustness(areas, ctx)``)::

        result.areas[["area_id", "rank_score_overall_median",
                      "prob_bottom_quintile_score_overall"]]
        result.draws["rank_correlation_overall"].describe()
        result.ranks["score_services"].shape   # (draws, areas)
    """

    areas: gpd.GeoDataFrame
    draws: pd.DataFrame
    provenance: dict[str, Any]
    ranks: dict[str, NDArray[np.int32]] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        scored = int(self.areas["rank_score_overall_base"].notna().sum())
        robust = int(self.areas["robustly_bottom_fifth"].fillna(False).sum())
        return (
            f"<RobustnessResult: {len(self.areas)} areas, {scored} ranked, "
            f"{len(self.draws)} draws, {robust} robustly in the bottom fifth>"
        )


@dataclass
class _Base:
    """What every draw reads (shipped once to each worker): compact arrays, no graph."""

    settings: dict[str, Any]
    scored: NDArray[np.bool_]
    members: sp.csr_matrix  # areas x origins: the origin lies in the area
    around: sp.csr_matrix  # areas x origins: within income_surroundings_m
    pop: NDArray[np.float64]
    groups: NDArray[np.int64]  # population zone of each origin
    nearest: NDArray[np.float64]  # origins x categories
    thresholds: NDArray[np.float64]  # the categories' thresholds, m
    categories: list[str]
    share_columns: list[str]
    hill1: NDArray[np.float64]
    users: NDArray[np.float64]  # origins x user indicators
    user_columns: list[str]
    income: NDArray[np.float64]
    hood: NDArray[np.int64]  # neighbourhood position of each origin (-1 unknown)
    n_hoods: int
    income_classes: int
    ind0: pd.DataFrame  # base indicators the scores read
    config: dict[str, Any]
    complete: list[str]
    n_activity: int
    weights0: NDArray[np.float64]
    score_names: list[str]  # the component scores, without score_overall


def robustness(
    areas: gpd.GeoDataFrame | None,
    ctx: Context,
    *,
    draws: int | None = None,
    seed: int | None = None,
    weight_concentration: float | None = None,
    threshold_jitter: float | None = None,
    population_noise: float | None = None,
    income_noise: float | None = None,
    draws_per_task: int | None = None,
    population_zones: gpd.GeoDataFrame | None = None,
    assessment: Assessment | None = None,
    scheduler: Any = None,
    progress: Callable[[str], None] | None = None,
    **settings: Any,
) -> RobustnessResult:
    """Median rank, 5-95 % rank interval, bottom-quintile probability and robust
    shortages of each area under uncertain weights, thresholds, population and income.

    See the module docstring for the noise models and the conventions (rank 1 = best,
    ties ``min``; bottom quintile; shortage; the 90 % rule). A parameter left None
    takes its value from ``layers/robustness.yaml``.

    Parameters
    ----------
    areas
        Polygons (``bxlplan.areas(...)``), as for :func:`~bxlplan.scoring.assess.
        assess`.
    ctx
        A prepared context (:func:`~bxlplan.scoring.baseline.prepare`).
    draws
        Number of draws (at most ``robustness.draws_max`` of ``layers/limits.yaml``).
    seed
        Seed of the run (a non-negative integer): the same seed, the same result.
    weight_concentration
        Dirichlet concentration ``c`` of the weights (``inf``: the configured ones).
    threshold_jitter
        Share ``j`` in [0, 1): thresholds drawn in ``[1 - j, 1 + j]`` times theirs.
    population_noise
        Log-normal spread ``s`` in [0, 1] of the origins' residents within their zone.
    income_noise
        Relative standard error in [0, 1) of the neighbourhood median incomes (0: off).
    draws_per_task
        Draws per Dask task (does not change the result).
    population_zones
        Polygons with a ``code`` whose totals the population noise keeps (default:
        the statistical sectors when the population came from them, else the
        communes when it came from the commune totals, else the neighbourhoods).
    assessment
        The base assessment of these areas on ``ctx`` when you already have it
        (``assess(areas, ctx)``): reused instead of assessing again; ``areas`` is
        then ignored (pass None).
    scheduler
        As for :func:`bxlplan.parallel.run_tasks`: None (every core of this machine),
        ``"sync"``, ``"tcp://host:8786"`` or a ``distributed.Client``.
    progress
        Called with a short message at each step (``"robustness: draws (3/20)"``).
    **settings
        ``shortage_share``, ``robust_share``, ``bottom_share`` (see
        ``layers/robustness.yaml``).

    Returns
    -------
    RobustnessResult
        ``.areas``, ``.draws``, ``.provenance``, ``.ranks``.

    Raises
    ------
    ConfigError
        For a setting out of bounds, an unreachable scheduler or an ``assessment``
        made on another context, before any computation.
    DataError
        For invalid areas (:func:`~bxlplan.scoring.assess.validate_areas`).

    Examples
    --------
    On a prepared context (``ctx = bp.prepare()``)::

        result = robustness(bp.areas("neighbourhoods"), ctx, draws=1000, seed=0)
        result.areas.sort_values("prob_bottom_quintile_score_overall").tail()
        result.areas.filter(like="robust_shortage_").sum()
    """
    opts = robustness_settings(
        draws=draws,
        seed=seed,
        weight_concentration=weight_concentration,
        threshold_jitter=threshold_jitter,
        population_noise=population_noise,
        income_noise=income_noise,
        draws_per_task=draws_per_task,
        **settings,
    )
    if assessment is not None and assessment.context is not ctx:
        raise ConfigError(
            "robustness: the assessment given was made on another context; pass the "
            "context it was made on, or leave assessment out"
        )
    check_scheduler(scheduler)
    step = progress or (lambda _msg: None)
    if assessment is None:
        step("robustness: base assessment")
        base_run = assess(areas, ctx)
    else:
        base_run = assessment
    base, zones = _base(base_run, ctx, opts, population_zones)
    n_draws, per = opts["draws"], opts["draws_per_task"]
    items = [
        (opts["seed"], start, min(start + per, n_draws))
        for start in range(0, n_draws, per)
    ]

    def tick(done: int, total: int) -> None:
        step(f"robustness: {n_draws:,} draws in {total} task(s) ({done}/{total})")

    chunks = run_tasks(
        _draw_chunk, items, shared=base, scheduler=scheduler, progress=tick
    )
    step("robustness: summarising")
    return _summarise(base_run, base, chunks, opts, zones)


# ------------------------------------------------------------------ the base
def _pairs_matrix(a: NDArray[Any], o: NDArray[Any], n: int, m: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(a)), (a, o)), shape=(n, m))


def _population_groups(
    ctx: Context, zones: gpd.GeoDataFrame | None, wanted: bool
) -> tuple[NDArray[np.int64], str]:
    """The zone of each origin whose total the population noise keeps, and its name."""
    origins = ctx.origins
    n = len(origins)
    if not wanted:
        return np.arange(n), "none (no population noise)"
    source = (ctx.sources.get("population") or {}).get("population_source")
    codes: Any
    if zones is None and source == "population_sectors" and ctx.data is not None:
        from ..loading.load import load

        zones = load("population_sectors", ctx.data)
        label = "statistical sectors (population_sectors)"
    elif zones is not None:
        label = "the given population zones"
    elif source == "population_communes":
        codes, label = origins["commune"], "communes (population_communes)"
    else:
        codes, label = origins["neighbourhood"], "neighbourhoods"
    if zones is not None:  # codes may be text (Statbel sectors): not tag_points
        zones = zones.to_crs(origins.crs)
        i, j = zones.sindex.query(origins.geometry.values, predicate="within")
        codes = np.full(n, None, dtype=object)
        codes[i] = zones["code"].to_numpy()[j]
    codes = pd.Series(np.asarray(codes, dtype=object))
    group = pd.factorize(codes.where(codes.notna(), None), use_na_sentinel=True)[0]
    # an origin in no zone is a zone of its own (its residents are kept)
    alone = group < 0
    group[alone] = group.max(initial=-1) + 1 + np.arange(int(alone.sum()))
    return group.astype(np.int64), label


def _base(
    run: Any, ctx: Context, opts: dict[str, Any], zones: gpd.GeoDataFrame | None
) -> tuple[_Base, str]:
    areas = run.areas
    n, origins = len(areas), ctx.origins
    m = len(origins)
    codes = areas["flags"].fillna("").str.split(";")
    unscored = codes.map(lambda c: "uninhabited" in c or "small_population" in c)
    a_idx, o_idx = area_origins(areas, origins)
    buf = float(ctx.config.get("income_surroundings_m", 800))
    ba, bo = area_origins(areas, origins, buf)
    complete = run.provenance["parameters"]["scored_categories"]
    cats = [c for c in complete if c in ctx.access]
    thr = np.array([int(ctx.categories[c]["threshold_m"]) for c in cats], dtype=float)
    share_cols = [
        f"access_{c}_within_{int(t)}m_share" for c, t in zip(cats, thr, strict=True)
    ]
    act = sorted(ctx.access)
    if act:
        counts = np.column_stack([ctx.access[c].count_mix for c in act])
        hill1 = np.asarray(hill(shares(counts), 1), dtype=float)
    else:
        hill1 = np.full(m, np.nan)
    hood_codes = origins["neighbourhood"].to_numpy(dtype=float, na_value=np.nan)
    user_cols = [f"user_{name}" for name in ctx.user_values]
    users = np.column_stack(
        [
            pd.Series(hood_codes).map(v).to_numpy(dtype=float)
            for v in ctx.user_values.values()
        ]
        or [np.zeros(m)]
    )[:, : len(user_cols)]
    hood = pd.factorize(pd.Series(hood_codes), use_na_sentinel=True)[0]
    fixed = ["mix_landuse_entropy", "social_housing_share"]
    recomputed = [
        "mix_activity_hill_q1_mean",
        "social_income_class_mix_entropy",
        "social_income_ratio_to_region",
    ]
    ind0 = pd.DataFrame(
        {
            c: areas[c].to_numpy(dtype=float)
            for c in [*fixed, *recomputed, *share_cols, *user_cols]
            if c in areas
        }
    )
    for c in share_cols:  # a category scored: its share column is there
        ind0[c] = areas[c].to_numpy(dtype=float)
    weights = ctx.config.get("weights") or {}
    score_names = [
        c for c in areas.columns if c.startswith("score_") and c != "score_overall"
    ]
    groups, zone_label = _population_groups(ctx, zones, opts["population_noise"] > 0)
    base = _Base(
        settings=opts,
        scored=~unscored.to_numpy(dtype=bool),
        members=_pairs_matrix(a_idx, o_idx, n, m),
        around=_pairs_matrix(ba, bo, n, m),
        pop=origins["population"].to_numpy(dtype=float),
        groups=groups,
        nearest=(
            np.column_stack([ctx.access[c].nearest for c in cats])
            if cats
            else np.zeros((m, 0))
        ),
        thresholds=thr,
        categories=cats,
        share_columns=share_cols,
        hill1=hill1,
        users=users,
        user_columns=user_cols,
        income=origins["income"].to_numpy(dtype=float),
        hood=hood.astype(np.int64),
        n_hoods=int(hood.max(initial=-1) + 1),
        income_classes=int(ctx.config.get("income_classes", 5)),
        ind0=ind0,
        config={k: ctx.config.get(k) for k in ("weights", "rules", "indicators")},
        complete=list(complete),
        n_activity=len(ctx.access),
        weights0=np.array(
            [float(weights.get(s[len("score_") :], 1.0)) for s in score_names]
        ),
        score_names=score_names,
    )
    return base, zone_label


# ------------------------------------------------------------------ one task
def _wmean(
    matrix: sp.csr_matrix,
    values: NDArray[Any],
    weights: NDArray[np.float64],
    *,
    finite: bool = False,
) -> NDArray[np.float64]:
    """Weighted means over the areas of ``matrix`` (NaN values skipped), one column
    per column of ``values`` (as :func:`bxlplan.scoring.aggregate.weighted_mean`);
    ``finite=True`` when ``values`` has no NaN (skips the mask)."""
    v = values if values.ndim == 2 else values[:, None]
    if finite:
        num = matrix @ (v * weights[:, None])
        den = np.broadcast_to((matrix @ weights)[:, None], num.shape)
    else:
        ok = np.isfinite(v)
        num = matrix @ np.where(ok, v * weights[:, None], 0.0)
        den = matrix @ np.where(ok, weights[:, None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out if values.ndim == 2 else out[:, 0]


def _draw_chunk(base: _Base, item: tuple[int, int, int]) -> dict[str, Any]:
    """Draws ``start .. stop - 1`` of the run seeded ``seed``: ranks, shortages and the
    draws' weights and thresholds."""
    seed, start, stop = item
    s = base.settings
    n, n_cat, n_drawn = len(base.scored), len(base.categories), stop - start
    unscored = ~base.scored  # their indicators stay NaN, as in the base
    rows = np.flatnonzero(base.scored)
    x0 = base.ind0.to_numpy(dtype=float)
    col = {c: i for i, c in enumerate(base.ind0.columns)}
    share_at = np.array([col[c] for c in base.share_columns], dtype=int)
    user_at = np.array([col[c] for c in base.user_columns], dtype=int)
    # weights of the origins in each area's mean under the base population
    den = base.members @ base.pop
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(den > 0, 1.0 / np.where(den > 0, den, 1.0), np.nan)
    fixed_pop = sp.csr_matrix(sp.diags(inv) @ base.members @ sp.diags(base.pop))
    reach = np.empty(base.nearest.shape, dtype=bool)
    within = np.empty(base.nearest.shape)
    tables, weights, factors, shortage = [], [], [], []
    positive = base.weights0 > 0
    for draw in range(start, stop):
        # one stream per noise source (weights, thresholds, population, income)
        rw, rt, rp, ri = np.random.SeedSequence(seed, spawn_key=(draw,)).spawn(4)
        # weights: Dirichlet around the configured ones
        w = base.weights0 / base.weights0.sum()
        if math.isfinite(s["weight_concentration"]) and positive.sum() > 1:
            w = np.zeros_like(w)
            w[positive] = np.random.default_rng(rw).dirichlet(
                s["weight_concentration"]
                * base.weights0[positive]
                / base.weights0[positive].sum()
            )
        # thresholds
        j = s["threshold_jitter"]
        f = (
            np.random.default_rng(rt).uniform(1 - j, 1 + j, n_cat)
            if j > 0
            else np.ones(n_cat)
        )
        # population within zones
        pop = base.pop
        if s["population_noise"] > 0:
            sd = s["population_noise"]
            z = np.random.default_rng(rp).standard_normal(len(pop))
            pop = pop * np.exp(sd * z - sd * sd / 2)
            total = np.bincount(base.groups, weights=base.pop)
            drawn = np.bincount(base.groups, weights=pop)
            pop = pop * (total / np.where(drawn > 0, drawn, 1.0))[base.groups]
        # income within its standard error
        income, changed_income = base.income, False
        if s["income_noise"] > 0 and base.n_hoods:
            sigma = math.sqrt(math.log1p(s["income_noise"] ** 2))
            z = np.random.default_rng(ri).standard_normal(base.n_hoods)
            factor = np.exp(sigma * z - sigma**2 / 2)
            income = income * np.where(base.hood >= 0, factor[base.hood], np.nan)
            changed_income = True
        changed_pop = pop is not base.pop
        table = x0.copy()  # areas x indicator columns, unscored rows stay NaN
        share = x0[:, share_at]
        if n_cat and (j > 0 or changed_pop):
            # in buffers made once: a fresh 1.5 MB array per draw costs an mmap and
            # its page faults on Dask workers (MALLOC_TRIM_THRESHOLD_ is set there)
            np.less_equal(base.nearest, base.thresholds * f, out=reach)
            within[...] = reach
            if changed_pop:
                np.multiply(within, pop[:, None], out=within)
                with np.errstate(invalid="ignore", divide="ignore"):
                    share = (base.members @ within) / (base.members @ pop)[:, None]
            else:  # the base population: its normalised weights, made once
                share = fixed_pop @ within
            table[rows[:, None], share_at] = share[rows]
        if changed_pop:
            table[rows, col["mix_activity_hill_q1_mean"]] = _wmean(
                base.members, base.hill1, pop
            )[rows]
            if base.user_columns:
                table[rows[:, None], user_at] = _wmean(base.members, base.users, pop)[
                    rows
                ]
        if changed_pop or changed_income:
            classes, reference = income_classes(income, pop, base.income_classes)
            ok = classes >= 0
            onehot = np.zeros((len(pop), base.income_classes))
            onehot[np.flatnonzero(ok), classes[ok]] = pop[ok]
            entropy = local_entropy(np.asarray(base.around @ onehot))
            ratio = _wmean(base.members, income, pop) / reference
            table[rows, col["social_income_class_mix_entropy"]] = entropy[rows]
            table[rows, col["social_income_ratio_to_region"]] = ratio[rows]
        tables.append(table)
        weights.append(w)
        factors.append(f)
        shortage.append(share < s["shortage_share"])
    big = pd.DataFrame(np.concatenate(tables), columns=list(base.ind0.columns))
    comps = score_components(big, base.complete, base.config, base.n_activity)
    values = np.column_stack(
        [
            comps[name[len("score_") :]].mean(axis=1, skipna=True).to_numpy(dtype=float)
            if comps[name[len("score_") :]].shape[1]
            else np.full(len(big), np.nan)
            for name in base.score_names
        ]
    ).reshape(n_drawn, n, len(base.score_names))
    w = np.array(weights)  # draws x scores
    present = np.isfinite(values)
    wsum = (present * w[:, None, :]).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        overall = (np.where(present, values, 0.0) * w[:, None, :]).sum(axis=2) / wsum
    overall[wsum <= 0] = np.nan
    allscores = np.concatenate([values, overall[:, :, None]], axis=2)
    allscores[:, unscored, :] = np.nan
    ranks = np.stack(
        [rank_areas(allscores[:, :, k]) for k in range(allscores.shape[2])], axis=2
    )
    return {
        "ranks": ranks,
        "shortage": np.array(shortage, dtype=bool).reshape(n_drawn, n, n_cat),
        "weights": w,
        "factors": np.array(factors).reshape(n_drawn, n_cat),
    }


# ------------------------------------------------------------------ summary
def _summarise(
    run: Any,
    base: _Base,
    chunks: list[dict[str, Any]],
    opts: dict[str, Any],
    zones: str,
) -> RobustnessResult:
    areas = run.areas
    scored = base.scored
    ranks = np.concatenate([c["ranks"] for c in chunks])  # draws x areas x scores
    short = np.concatenate([c["shortage"] for c in chunks])
    weights = np.concatenate([c["weights"] for c in chunks])
    factors = np.concatenate([c["factors"] for c in chunks])
    names = [*base.score_names, "score_overall"]
    keep = [
        c
        for c in ("area_id", "name_fr", "name_nl", "name_en", "population_est")
        if c in areas
    ]
    out = pd.DataFrame(areas[keep]).copy()
    out["score_overall"] = areas["score_overall"].to_numpy(dtype=float)
    summary: dict[str, Any] = {}
    share_bottom = opts["bottom_share"]
    robust = opts["robust_share"]
    by_score: dict[str, NDArray[np.int32]] = {}
    for k, name in enumerate(names):
        base_scores = np.where(scored, areas[name].to_numpy(dtype=float), np.nan)
        base_rank = rank_areas(base_scores)
        r = ranks[:, :, k]
        by_score[name] = r
        ranked = r > 0
        n_ranked = ranked.sum(axis=1, keepdims=True)
        bottom = ranked & (r > (1 - share_bottom) * n_ranked)
        rf = np.where(ranked, r, np.nan).astype(float)
        q = np.full((3, len(areas)), np.nan)
        any_ranked = ranked.any(axis=0)
        if any_ranked.any():
            q[:, any_ranked] = np.nanquantile(
                rf[:, any_ranked], [0.5, 0.05, 0.95], axis=0, method="inverted_cdf"
            )
        summary[f"rank_{name}_base"] = pd.array(
            np.where(base_rank > 0, base_rank, 0), dtype="Int64"
        )
        summary[f"rank_{name}_base"][base_rank == 0] = pd.NA
        for label, row in zip(("median", "p05", "p95"), q, strict=True):
            summary[f"rank_{name}_{label}"] = pd.array(
                [pd.NA if not np.isfinite(v) else int(v) for v in row], dtype="Int64"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            prob = bottom.sum(axis=0) / ranked.sum(axis=0)
        summary[f"prob_bottom_quintile_{name}"] = np.where(any_ranked, prob, np.nan)
    for c, cat in enumerate(base.categories):
        prob = np.where(scored, short[:, :, c].mean(axis=0), np.nan)
        summary[f"prob_shortage_{cat}"] = prob
        flag = pd.array(prob >= robust, dtype="boolean")
        flag[~scored] = pd.NA
        summary[f"robust_shortage_{cat}"] = flag
    flag = pd.array(
        summary["prob_bottom_quintile_score_overall"] >= robust, dtype="boolean"
    )
    flag[~np.isfinite(summary["prob_bottom_quintile_score_overall"])] = pd.NA
    summary["robustly_bottom_fifth"] = flag
    out = out.join(pd.DataFrame(summary, index=out.index))
    out["flags"] = areas["flags"].to_numpy()
    gdf = gpd.GeoDataFrame(out, geometry=areas.geometry.values, crs=areas.crs)
    draws = pd.DataFrame({"draw": np.arange(len(weights))})
    for k, name in enumerate(base.score_names):
        draws[f"weight_{name[len('score_') :]}"] = weights[:, k]
    for c, cat in enumerate(base.categories):
        draws[f"threshold_{cat}_m"] = base.thresholds[c] * factors[:, c]
    base_overall = np.asarray(
        summary["rank_score_overall_base"].to_numpy(dtype=float, na_value=np.nan)
    )
    ok = np.isfinite(base_overall)
    r_all = by_score["score_overall"][:, ok].astype(float)
    draws["rank_correlation_overall"] = [
        float(np.corrcoef(row, base_overall[ok])[0, 1])
        if ok.sum() > 1 and row.std() > 0 and base_overall[ok].std() > 0
        else (1.0 if np.array_equal(row, base_overall[ok]) else np.nan)
        for row in r_all
    ]
    params = run.provenance.get("parameters", {})
    provenance = {
        "bxlplan_version": __version__,
        "created_at": run_timestamp().isoformat(),
        "analysis": "rank robustness (Monte Carlo)",
        "seed": opts["seed"],
        "draws": opts["draws"],
        # inf (fixed weights) as text: JSON has no infinity
        "settings": {
            k: v if not (isinstance(v, float) and math.isinf(v)) else "inf"
            for k, v in opts.items()
            if k not in ("seed", "draws")
        },
        "noise_models": {
            "weights": "Dirichlet(c * w0 / sum(w0)) over scores with w0 > 0; c = "
            "weight_concentration (inf: the configured weights)",
            "thresholds": "each category's threshold x U(1 - j, 1 + j); j = "
            "threshold_jitter",
            "population": "origin residents x exp(s z - s^2/2), z ~ N(0,1), rescaled to "
            f"keep each zone's total; s = population_noise; zones: {zones}",
            "income": "each neighbourhood median x lognormal of mean 1 and relative "
            "sd e = income_noise; regional median and classes recomputed",
            "random_streams": "draw i: numpy SeedSequence(seed, spawn_key=(i,)), "
            "one sub-stream each for weights, thresholds, population, income",
        },
        "conventions": {
            "rank": "1 = best (highest score), ties share the smallest rank (min); "
            "scores compared at 1e-9",
            "interval": "p05, median, p95: empirical quantiles of the draws' ranks "
            "(inverted CDF)",
            "bottom_quintile": f"rank > {1 - share_bottom:g} x areas ranked",
            "shortage": f"fewer than {opts['shortage_share']:g} of the area's "
            "residents within the category's threshold",
            "robust": f"in at least {robust:g} of the draws",
            "not_ranked": "areas flagged uninhabited or small_population in the base "
            "assessment: no rank, no flag",
        },
        "scored_categories": base.categories,
        "population_zones": zones,
        "weights": dict(zip(base.score_names, base.weights0.tolist(), strict=True)),
        "assessment": {
            "parameters": params,
            "sources": run.provenance.get("sources", {}),
            "data": run.provenance.get("data"),
        },
    }
    gdf.attrs["bxlplan"] = provenance
    return RobustnessResult(gdf, draws, provenance, by_score)
