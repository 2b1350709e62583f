"""Social mix: income position, income diversity, segregation indices, social housing.

With :math:`t_i` the population of sub-unit :math:`i`, :math:`T = \\sum_i t_i`,
:math:`p_{ik}` the share of group :math:`k` in :math:`i` and :math:`P_k` its share overall:

* dissimilarity (two groups) :math:`D = \\sum_i t_i |p_i - P| / (2 T P (1 - P))`
  (Massey & Denton 1988);
* multigroup information theory index
  :math:`H = \\sum_i \\sum_k t_i p_{ik} \\ln(p_{ik} / P_k) / (T E)`,
  :math:`E = -\\sum_k P_k \\ln P_k` (Reardon & Firebaugh 2002);
* local entropy :math:`-\\sum_k p_{ik} \\ln p_{ik} / \\ln K` (diversity of one place).
"""

from __future__ import annotations

import numpy as np

from .diversity import normalised_entropy, shares

__all__ = [
    "dissimilarity",
    "income_position",
    "information_theory_h",
    "local_entropy",
    "social_housing_share",
    "weighted_quantiles",
]


def dissimilarity(group: np.ndarray, total: np.ndarray) -> float:
    """Index of dissimilarity D of a group across sub-units (NaN if undefined).

    ``group`` and ``total`` are the group's count and the population of each sub-unit;
    D is NaN when the population is zero or the group is nobody or everybody.

    Examples
    --------
    The poor (a third overall) live in two of three equal sub-units:

    >>> round(dissimilarity([10, 0, 10], [20, 20, 20]), 3)
    0.5
    >>> dissimilarity([0, 0], [10, 10])
    nan
    """
    group = np.asarray(group, dtype=float)
    total = np.asarray(total, dtype=float)
    T = total.sum()
    if T <= 0:
        return float("nan")
    P = group.sum() / T
    if P <= 0 or P >= 1:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total > 0, group / np.where(total > 0, total, 1), 0.0)
    return float((total * np.abs(p - P)).sum() / (2 * T * P * (1 - P)))


def information_theory_h(counts: np.ndarray) -> float:
    """Multigroup information theory index H (sub-units x groups counts).

    0 when every sub-unit has the overall group mix, 1 when each sub-unit holds one
    group only; NaN with no population or a single group.

    Examples
    --------
    >>> information_theory_h([[10, 0], [0, 10]]), information_theory_h([[5, 5], [5, 5]])
    (1.0, 0.0)
    """
    x = np.asarray(counts, dtype=float)
    t = x.sum(axis=1)
    T = t.sum()
    if T <= 0:
        return float("nan")
    P = x.sum(axis=0) / T
    E = -(P[P > 0] * np.log(P[P > 0])).sum()
    if E <= 0:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(t[:, None] > 0, x / np.where(t[:, None] > 0, t[:, None], 1), 0.0)
        terms = np.where(
            p > 0,
            t[:, None] * p * np.log(np.where(p > 0, p, 1) / np.where(P > 0, P, 1)),
            0,
        )
    return float(terms.sum() / (T * E))


def local_entropy(counts: np.ndarray) -> np.ndarray:
    """Normalised entropy of each row of group counts (NaN for empty rows).

    Returns
    -------
    ndarray
        One value per row in [0, 1] (a plain array, not a Series).

    Examples
    --------
    >>> local_entropy([[5, 5], [10, 0], [0, 0]])
    array([ 1.,  0., nan])
    """
    x = np.atleast_2d(np.asarray(counts, dtype=float))
    return normalised_entropy(shares(x), x.shape[1])


def income_position(income: np.ndarray, reference: float) -> np.ndarray:
    """Median income relative to the regional median (1 = regional median).

    Examples
    --------
    >>> income_position([20000, 40000], 20000)
    array([1., 2.])
    """
    return np.asarray(income, dtype=float) / float(reference)


def weighted_quantiles(
    values: np.ndarray, weights: np.ndarray, qs: np.ndarray
) -> np.ndarray:
    """Quantiles of ``values`` weighted by ``weights`` (NaN values ignored).

    Each value sits at the middle of its weight on the cumulative scale; quantiles
    between two values are interpolated linearly.

    Examples
    --------
    >>> weighted_quantiles([1, 2, 3, np.nan], [1, 1, 2, 5], [0.5]).round(3)
    array([2.333])
    """
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    ok = np.isfinite(v) & (w > 0)
    v, w = v[ok], w[ok]
    order = np.argsort(v)
    v, w = v[order], w[order]
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(qs, cum, v)


def social_housing_share(
    social: np.ndarray, total: np.ndarray, target: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """Share of social dwellings and the gap to the target (positive = dwellings missing).

    Returns (share, gap_dwellings) with NaN where the dwelling stock is unknown or zero.

    Examples
    --------
    >>> share, gap = social_housing_share([30, 0], [100, 0])
    >>> share, gap  # 30 % social: 15 dwellings above the 15 % target
    (array([0.3, nan]), array([-15.,  nan]))
    """
    social = np.asarray(social, dtype=float)
    total = np.asarray(total, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, social / np.where(total > 0, total, 1), np.nan)
    gap = np.where(np.isfinite(share), target * total - social, np.nan)
    return share, gap
