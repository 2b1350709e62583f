"""Social mix: income diversity, segregation indices and weighted quantiles.

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

from typing import overload

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from .diversity import normalised_entropy, shares

__all__ = [
    "dissimilarity",
    "information_theory_h",
    "local_entropy",
    "weighted_quantiles",
]


def dissimilarity(group: ArrayLike, total: ArrayLike) -> float:
    """Index of dissimilarity D of a group across sub-units (NaN if undefined).

    Parameters
    ----------
    group : array_like
        The group's count in each sub-unit.
    total : array_like
        The population of each sub-unit.

    Returns
    -------
    float
        D in [0, 1]; NaN when the population is zero or the group is nobody or
        everybody.

    Examples
    --------
    The poor (a third overall) live in two of three equal sub-units:

    >>> round(dissimilarity([10, 0, 10], [20, 20, 20]), 3)
    0.5
    >>> dissimilarity([0, 0], [10, 10])
    nan
    """
    g = np.asarray(group, dtype=float)
    t = np.asarray(total, dtype=float)
    T = t.sum()
    if T <= 0:
        return float("nan")
    P = g.sum() / T
    if P <= 0 or P >= 1:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(t > 0, g / np.where(t > 0, t, 1), 0.0)
    return float((t * np.abs(p - P)).sum() / (2 * T * P * (1 - P)))


def information_theory_h(counts: ArrayLike) -> float:
    """Multigroup information theory index H of counts (sub-units x groups).

    Parameters
    ----------
    counts : array_like
        The count of each group (columns) in each sub-unit (rows).

    Returns
    -------
    float
        0 when every sub-unit has the overall group mix, 1 when each sub-unit holds
        one group only; NaN with no population or a single group.

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


@overload
def local_entropy(counts: pd.DataFrame) -> pd.Series: ...
@overload
def local_entropy(counts: ArrayLike) -> NDArray[np.float64]: ...
def local_entropy(counts: ArrayLike | pd.DataFrame) -> NDArray[np.float64] | pd.Series:
    """Normalised entropy of each row of group counts (NaN for empty rows).

    Parameters
    ----------
    counts : array_like or DataFrame
        The count of each group (columns) in each place (rows).

    Returns
    -------
    ndarray or Series
        One value per row in [0, 1]; a Series indexed like ``counts`` when it is a
        DataFrame.

    Examples
    --------
    >>> local_entropy([[5, 5], [10, 0], [0, 0]])
    array([ 1.,  0., nan])
    """
    x = np.atleast_2d(np.asarray(counts, dtype=float))
    out = normalised_entropy(shares(x), x.shape[1])
    if isinstance(counts, pd.DataFrame):
        return pd.Series(out, index=counts.index)
    return out


def weighted_quantiles(
    values: ArrayLike, weights: ArrayLike, qs: ArrayLike
) -> NDArray[np.float64]:
    """Quantiles of ``values`` weighted by ``weights`` (NaN values ignored).

    Each value sits at the middle of its weight on the cumulative scale; quantiles
    between two values are interpolated linearly.

    Parameters
    ----------
    values : array_like
        The values (NaN values and values of zero weight are ignored).
    weights : array_like
        The weight of each value (e.g. its population).
    qs : array_like
        The quantiles wanted, in [0, 1].

    Returns
    -------
    ndarray
        One value per quantile of ``qs``.

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
    return np.interp(np.asarray(qs, dtype=float), cum, v)
