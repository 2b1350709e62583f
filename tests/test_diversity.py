"""Diversity indices on hand-computed values, bounds, permutation invariance, and the
land-use mix of hand-made polygons."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from bxlplan.indicators.diversity import (
    gini_simpson,
    hill,
    hill_distance_weighted,
    landuse_mix,
    landuse_surface,
    normalised_entropy,
    shannon,
    shares,
)


def test_hand_computed_values():
    p = shares([[2, 1, 1, 0]])  # 0.5, 0.25, 0.25, 0
    h = 0.5 * np.log(2) + 2 * 0.25 * np.log(4)  # = 1.5 ln 2
    assert shannon(p)[0] == pytest.approx(1.5 * np.log(2))
    assert shannon(p)[0] == pytest.approx(h)
    assert normalised_entropy(p)[0] == pytest.approx(h / np.log(4))
    assert gini_simpson(p)[0] == pytest.approx(1 - (0.25 + 0.0625 + 0.0625))
    assert hill(p, 0)[0] == 3
    assert hill(p, 1)[0] == pytest.approx(np.exp(h))
    assert hill(p, 2)[0] == pytest.approx(1 / 0.375)


def test_even_and_single():
    even = shares([[1, 1, 1, 1]])
    assert normalised_entropy(even)[0] == pytest.approx(1.0)
    assert hill(even, 1)[0] == pytest.approx(4)
    assert hill(even, 2)[0] == pytest.approx(4)
    single = shares([[0, 5, 0, 0]])
    assert normalised_entropy(single)[0] == 0
    assert hill(single, 1)[0] == pytest.approx(1)


def test_no_observation_is_nan_not_zero():
    p = shares([[0, 0, 0]])
    for value in (
        shannon(p),
        normalised_entropy(p),
        gini_simpson(p),
        hill(p, 1),
        hill(p, 0),
    ):
        assert np.isnan(value[0])


def test_bounds_and_permutation():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 20, size=(200, 6))
    x[x.sum(axis=1) == 0, 0] = 1
    p = shares(x)
    perm = p[:, rng.permutation(6)]
    e = normalised_entropy(p)
    assert ((e >= 0) & (e <= 1 + 1e-12)).all()
    assert np.allclose(e, normalised_entropy(perm))
    for q in (0, 1, 2):
        d = hill(p, q)
        assert ((d >= 1 - 1e-12) & (d <= 6 + 1e-12)).all()
        assert np.allclose(d, hill(perm, q))
    # Hill numbers decrease with q
    assert (hill(p, 0) >= hill(p, 1) - 1e-12).all() and (
        hill(p, 1) >= hill(p, 2) - 1e-12
    ).all()


def test_matches_momepy_style_definitions():
    """Shannon with natural log and Gini-Simpson as in momepy / scipy.stats.entropy."""
    from scipy.stats import entropy

    p = shares([[3, 1, 6]])
    assert shannon(p)[0] == pytest.approx(entropy([3, 1, 6]))


def test_a_frame_gives_a_series_indexed_like_it():
    # the package docstring's promise: indexed like the input when it has an index
    counts = pd.DataFrame({"a": [2, 0, 0], "b": [2, 1, 0]}, index=[10, 20, 30])
    p = shares(counts)
    assert isinstance(p, pd.DataFrame) and list(p.columns) == ["a", "b"]
    for out in (
        shannon(p),
        normalised_entropy(p),
        gini_simpson(p),
        hill(p, 2),
        hill_distance_weighted(counts, np.zeros((3, 2)), 1, 0.01),
    ):
        assert isinstance(out, pd.Series) and list(out.index) == [10, 20, 30]
        assert np.isnan(out[30])
    assert hill(p, 1)[10] == pytest.approx(2.0)
    assert isinstance(hill(p.to_numpy(), 1), np.ndarray)  # arrays stay arrays


def test_landuse_mix_of_polygons():
    # area: 100 x 100; housing on the left 60 %, economic on 30 %, nothing on the last 10 %
    zoning = gpd.GeoDataFrame(
        {"function": ["housing", "economic", "green"]},
        geometry=[
            shapely.box(0, 0, 60, 100),
            shapely.box(60, 0, 90, 100),
            shapely.box(500, 500, 510, 510),
        ],
        crs=31370,
    )
    surface = landuse_surface(zoning, ["green", "economic", "housing"])
    areas = gpd.GeoDataFrame(
        geometry=[shapely.box(0, 0, 100, 100), shapely.box(1000, 0, 1100, 100)],
        crs=31370,
    )
    mix = landuse_mix(areas, surface)
    assert mix.loc[0, "mix_landuse_share_housing"] == pytest.approx(60 / 90)
    assert mix.loc[0, "mix_landuse_no_info_share"] == pytest.approx(0.1)
    p = np.array([[0, 30, 60]]) / 90
    assert mix.loc[0, "mix_landuse_entropy"] == pytest.approx(shannon(p)[0] / np.log(3))
    assert mix.loc[0, "mix_landuse_hill_q0"] == 2
    assert np.isnan(mix.loc[1, "mix_landuse_entropy"])  # no information: NaN, not 0
    assert mix.loc[1, "mix_landuse_no_info_share"] == pytest.approx(1.0)


def test_overlap_goes_to_the_first_function():
    zoning = gpd.GeoDataFrame(
        {"function": ["housing", "green"]},
        geometry=[shapely.box(0, 0, 100, 100), shapely.box(0, 0, 50, 100)],
        crs=31370,
    )
    surface = landuse_surface(zoning, ["green", "housing"])
    assert surface.area.tolist() == pytest.approx([5000, 5000])


def test_distance_weighted_hill_hand_computed():
    # two equally common categories at 0 m and 100 m, beta = 0.005: w = 1, e^-0.5
    w2 = np.exp(-0.5)
    d = hill_distance_weighted([[5, 5]], [[0.0, 100.0]], 0, 0.005)
    assert d[0] == pytest.approx(1 + w2)  # D0 = sum of weights
    d2 = hill_distance_weighted([[5, 5]], [[0.0, 100.0]], 2, 0.005)
    T = 0.5 * (1 + w2)
    assert d2[0] == pytest.approx(1 / ((1 + w2) * (0.5 / T) ** 2))
    # at distance 0 it is the plain Hill number
    p = shares([[3, 1, 6]])
    for q in (0, 1, 2):
        assert hill_distance_weighted([[3, 1, 6]], [[0, 0, 0]], q, 0.01)[
            0
        ] == pytest.approx(hill(p, q)[0])
    assert np.isnan(hill_distance_weighted([[0, 0]], [[1, 1]], 1, 0.01)[0])


def test_distance_weighted_hill_agrees_with_cityseer():
    from cityseer import rustalgos

    ref_fn = rustalgos.diversity.hill_diversity_branch_distance_wt
    rng = np.random.default_rng(7)
    beta = 4 / 800
    for _ in range(100):
        k = int(rng.integers(1, 9))
        c = rng.integers(0, 12, k)
        c[0] = max(c[0], 1)
        d = rng.uniform(0, 1600, k)
        for q in (0.0, 0.5, 1.0, 2.0):
            ref = ref_fn([int(x) for x in c], [float(x) for x in d], q, beta, 1.0)
            ours = hill_distance_weighted([c], [d], q, beta)[0]
            assert ours == pytest.approx(ref, rel=1e-3)  # cityseer computes in float32


def test_one_list_of_land_use_functions():
    from bxlplan.loading.layers import function_rules, land_use_functions

    functions = land_use_functions()
    assert len(set(functions)) == len(functions) == 7
    assert {r["function"] for r in function_rules("pras")} <= set(functions)
    assert set(function_rules("osm_landuse").values()) <= set(functions)
