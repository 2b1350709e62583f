"""Social-mix indices: hand-computed values and agreement with pysal segregation."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from bxlplan.indicators.social import (
    dissimilarity,
    information_theory_h,
    local_entropy,
    weighted_quantiles,
)


def test_dissimilarity_hand_computed():
    # two units: group 10 of 20 and 0 of 20 -> P = 0.25
    # D = (20 |0.5 - .25| + 20 |0 - .25|) / (2 * 40 * .25 * .75) = 10 / 15
    assert dissimilarity([10, 0], [20, 20]) == pytest.approx(10 / 15)
    assert dissimilarity([5, 5], [20, 20]) == pytest.approx(0.0)
    assert dissimilarity([20, 0], [20, 20]) == pytest.approx(1.0)
    assert np.isnan(dissimilarity([0, 0], [10, 10]))


def test_information_theory_bounds():
    even = np.array([[10, 10], [10, 10]])
    apart = np.array([[20, 0], [0, 20]])
    assert information_theory_h(even) == pytest.approx(0.0)
    assert information_theory_h(apart) == pytest.approx(1.0)


def test_local_entropy():
    assert local_entropy([[5, 5, 5, 5, 5]])[0] == pytest.approx(1.0)
    assert np.isnan(local_entropy([[0, 0]])[0])


def test_local_entropy_keeps_the_index_of_a_frame():
    counts = pd.DataFrame({"poor": [5, 0], "rich": [5, 0]}, index=["x", "y"])
    out = local_entropy(counts)
    assert isinstance(out, pd.Series) and list(out.index) == ["x", "y"]
    assert out["x"] == pytest.approx(1.0) and np.isnan(out["y"])


def test_weighted_quantiles():
    q = weighted_quantiles(
        np.array([1.0, 2.0, np.nan]), np.array([1.0, 1.0, 5.0]), np.array([0.5])
    )
    assert q[0] == pytest.approx(1.5)


def _segregation_frame(rng, n=40, k=3):
    counts = rng.integers(0, 300, size=(n, k))
    geoms = [shapely.box(i, 0, i + 1, 1) for i in range(n)]
    df = gpd.GeoDataFrame(
        pd.DataFrame(counts, columns=[f"g{j}" for j in range(k)]),
        geometry=geoms,
        crs=31370,
    )
    df["total"] = counts.sum(axis=1)
    return counts, df


def test_agrees_with_pysal_segregation():
    from segregation.multigroup import MultiInfoTheory
    from segregation.singlegroup import Dissim

    rng = np.random.default_rng(11)
    counts, df = _segregation_frame(rng)
    ref_d = Dissim(df, group_pop_var="g0", total_pop_var="total").statistic
    assert dissimilarity(counts[:, 0], counts.sum(axis=1)) == pytest.approx(
        ref_d, rel=1e-9
    )
    ref_h = MultiInfoTheory(df, groups=["g0", "g1", "g2"]).statistic
    assert information_theory_h(counts) == pytest.approx(ref_h, rel=1e-9)
