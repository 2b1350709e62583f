"""Thresholds per category (issue 12, item 2): the scoring file, --threshold, and
re-deriving counts, gravity sums, 2SFCA pairs and shares from the stored pairs
(``with_thresholds``) instead of searching the graph again.

The unit tests use a hand-made 1 km street grid; the pack's cold-versus-cached
equality is in ``tests/test_cache.py``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from bxlplan.errors import ConfigError
from bxlplan.indicators.access import StreetGraph
from bxlplan.loading.network import edges_from_lines
from bxlplan.scoring.access import compute_access, search_limit, with_thresholds
from bxlplan.scoring.context import Context
from bxlplan.scoring.scores import merge_thresholds, validate_thresholds

X0, Y0 = 148000.0, 169000.0
CRS = "EPSG:31370"


def _pts(xy) -> gpd.GeoSeries:
    return gpd.GeoSeries([shapely.Point(X0 + x, Y0 + y) for x, y in xy], crs=CRS)


def _tiny(thresholds: dict[str, int] | None = None, distance: str = "network"):
    """A 1 km x 1 km grid of streets every 100 m, 121 origins at the crossings
    (shifted off the streets by 7 m), pharmacies with capacities and stops without."""
    lines = [shapely.LineString([(X0, Y0 + y), (X0 + 1000, Y0 + y)]) for y in range(0, 1001, 100)]  # fmt: skip
    lines += [shapely.LineString([(X0 + x, Y0), (X0 + x, Y0 + 1000)]) for x in range(0, 1001, 100)]  # fmt: skip
    graph = StreetGraph(edges_from_lines(np.array(lines, dtype=object)))
    xy = [(x + 7, y + 3) for x in range(0, 1001, 100) for y in range(0, 1001, 100)]
    origins = gpd.GeoDataFrame(
        {"population": np.arange(1, len(xy) + 1, dtype=float)}, geometry=_pts(xy)
    )
    fac_xy = [(150, 250), (820, 610), (400, 990), (50, 20), (500, 500), (930, 80)]
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": [f"f{i}" for i in range(len(fac_xy))],
            "category": ["pharmacy"] * 3 + ["transit_stop"] * 3,
            "capacity": [10.0, 20.0, 5.0, np.nan, np.nan, np.nan],
        },
        geometry=_pts(fac_xy),
    )
    config = {"activity_mix_distance_m": 300, "access_search_factor": 1.5}
    if thresholds:
        config["thresholds"] = thresholds
    cats = {}
    for cat, thr in (("pharmacy", 400), ("transit_stop", 200), ("library", 400)):
        use = (thresholds or {}).get(cat, thr)
        cats[cat] = {"threshold_m": use, "catalog_threshold_m": thr}
    empty = gpd.GeoDataFrame(geometry=[], crs=CRS)
    ctx = Context(
        data=None, config=config, graph=graph, origins=origins, facilities=facilities,
        categories=cats, missing=["library"], surface=empty, neighbourhoods=empty,
        communes=empty, poverty=None, income_reference=1.0, distance=distance,
    )  # fmt: skip
    return compute_access(ctx)


def _assert_same_access(a: Context, b: Context) -> None:
    assert a.categories == b.categories
    assert a.access.keys() == b.access.keys()
    for cat in a.access:
        x, y = a.access[cat], b.access[cat]
        assert x.threshold_m == y.threshold_m
        for name in ("nearest", "count", "gravity", "count_mix"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name))
        pd.testing.assert_frame_equal(x.pairs, y.pairs, check_exact=True)


@pytest.mark.parametrize("distance", ["network", "euclidean"])
def test_rederived_thresholds_equal_a_cold_computation(distance):
    """Counts, gravity sums and pairs re-derived for new thresholds are exactly those
    computed with the thresholds from the start; the original context is untouched."""
    new = {"pharmacy": 550, "transit_stop": 120}
    base = _tiny(distance=distance)
    before = {c: (a.count.copy(), a.gravity.copy()) for c, a in base.access.items()}
    derived = with_thresholds(base, new)
    cold = _tiny(new, distance=distance)
    _assert_same_access(derived, cold)
    assert derived.config["thresholds"] == new
    # the test can fail: the new thresholds did change counts
    assert (derived.access["pharmacy"].count > base.access["pharmacy"].count).any()
    assert (derived.access["transit_stop"].count < base.access["transit_stop"].count).any()  # fmt: skip
    # the original is untouched, and shares what did not change
    for cat, (count, gravity) in before.items():
        np.testing.assert_array_equal(base.access[cat].count, count)
        np.testing.assert_array_equal(base.access[cat].gravity, gravity)
    assert base.categories["pharmacy"]["threshold_m"] == 400
    assert derived.access["pharmacy"].nearest is base.access["pharmacy"].nearest
    assert derived.shortage_memo is None
    # and back: the default thresholds re-derived equal the default computation
    _assert_same_access(with_thresholds(derived, {"pharmacy": 400, "transit_stop": 200}), base)  # fmt: skip


def test_counts_and_gravity_follow_the_definition():
    """Against a brute-force count of the stored pairs within the new threshold."""
    base = _tiny()
    a = with_thresholds(base, {"pharmacy": 500}).access["pharmacy"]
    r = base.access["pharmacy"].reach
    keep = r.distance <= 500
    n = len(base.origins)
    np.testing.assert_array_equal(a.count, np.bincount(r.origin[keep], minlength=n))
    want = np.bincount(r.origin[keep], np.exp(-4.0 / 500 * r.distance[keep]), n)
    np.testing.assert_allclose(a.gravity, want, rtol=1e-12)
    assert len(a.pairs) == keep.sum() and a.pairs["distance"].max() <= 500


def test_stored_pairs_cannot_be_changed_through_a_view():
    a = _tiny().access["pharmacy"]
    with pytest.raises(ValueError, match="read-only"):
        a.reach.distance[0] = 0.0


def test_threshold_beyond_the_search_limit_is_refused():
    base = _tiny()
    limit = search_limit(base.categories["pharmacy"], base.config)
    assert limit == 600.0  # 1.5 x 400
    with_thresholds(base, {"pharmacy": 600})  # at the limit: fine
    with pytest.raises(ConfigError, match=r"beyond its search limit 600 m.*access_search_factor"):  # fmt: skip
        with_thresholds(base, {"pharmacy": 601})


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"pharmacie": 600}, "not a facility category; known categories: pharmacy"),
        ({"pharmacy": 0}, "positive whole number"),
        ({"pharmacy": 512.5}, "positive whole number"),
        ({"pharmacy": "600"}, "positive whole number"),
    ],
)
def test_bad_thresholds_are_refused(given, message):
    with pytest.raises(ConfigError, match=message):
        with_thresholds(_tiny(), given)


def test_a_category_without_data_changes_its_label_only():
    derived = with_thresholds(_tiny(), {"library": 300})
    assert derived.categories["library"]["threshold_m"] == 300
    assert "library" not in derived.access


# ------------------------------------------------------------- scoring file, CLI
@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"thresholds": {"pharmacie": 600}},
            "'thresholds.pharmacie' is not a facility category; known categories: childcare",
        ),  # fmt: skip
        ({"thresholds": {"pharmacy": 10}}, "between 50 and 5000"),
        ({"thresholds": {"pharmacy": 600.5}}, "whole number"),
        (
            {"thresholds": {"pharmacy": 1300}},
            r"beyond the category's search limit 1200 m.*at least 1.63",
        ),  # fmt: skip
        (
            {"thresholds": {"hospital": 2000}, "access_search_factor": 9},
            "between 1 and 4",
        ),  # fmt: skip
        ({"thresholds": ["pharmacy"]}, "must be a mapping"),
    ],
)
def test_scoring_file_thresholds_are_validated(config, message):
    with pytest.raises(ConfigError, match=message):
        validate_thresholds(config, "my.yaml")


def test_raising_the_search_factor_allows_longer_thresholds():
    config = {"thresholds": {"pharmacy": 1300}, "access_search_factor": 1.7}
    assert validate_thresholds(config) == {"pharmacy": 1300}


def test_threshold_options_merge_over_the_scoring_file():
    config = {"thresholds": {"pharmacy": 600, "library": 500}, "weights": {}}
    merged = merge_thresholds(config, ["pharmacy=700", "transit_stop = 300"])
    assert merged["thresholds"] == {"pharmacy": 700, "library": 500, "transit_stop": 300}  # fmt: skip
    assert config["thresholds"] == {"pharmacy": 600, "library": 500}  # untouched
    for bad, message in (
        (["pharmacy"], "--threshold 'pharmacy': give category=metres"),
        (["pharmacy=abc"], "--threshold 'pharmacy=abc': .* whole number of metres"),
        (["pharmacie=600"], "--threshold.*known categories"),
        (["pharmacy=9000"], "between 50 and 5000"),
    ):
        with pytest.raises(ConfigError, match=message):
            merge_thresholds(config, bad)


def test_cli_threshold_is_checked_before_the_preparation(tmp_path, monkeypatch):
    """A bad --threshold fails in the CLI before any layer is read (no data folder)."""
    from typer.testing import CliRunner

    import bxlplan.scoring.baseline as baseline
    from bxlplan.cli import app

    def never(*_a, **_k):
        raise AssertionError("prepare() must not run")

    monkeypatch.setattr(baseline, "prepare", never)
    res = CliRunner().invoke(
        app,
        ["assess", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
         "--threshold", "pharmacie=600"],
    )  # fmt: skip
    assert res.exit_code != 0
    assert "pharmacie" in res.output and "known categories" in res.output


def test_cli_threshold_reaches_the_preparation(tmp_path, monkeypatch, pack):
    """--threshold is merged over the scoring file and handed to prepare()."""
    from typer.testing import CliRunner

    import bxlplan.scoring.baseline as baseline
    from bxlplan.cli import app

    seen = {}

    def stop(*_a, config=None, **_k):
        seen.update(config)
        raise ConfigError("stop here")

    monkeypatch.setattr(baseline, "prepare", stop)
    scoring = tmp_path / "scoring.yaml"
    scoring.write_text("thresholds: {pharmacy: 600, library: 500}\n", encoding="utf-8")
    res = CliRunner().invoke(
        app,
        ["assess", "--data", str(pack), "--out", str(tmp_path / "o"), "--units",
         "communes", "--scoring", str(scoring), "--threshold", "pharmacy=700",
         "--threshold", "transit_stop=300"],
    )  # fmt: skip
    assert "stop here" in res.output
    assert seen["thresholds"] == {"pharmacy": 700, "library": 500, "transit_stop": 300}


def test_pickled_access_keeps_pairs_and_read_only_store():
    """The cache pickles the reach once (the pairs are its prefix) and gets both back."""
    import pickle

    ctx = _tiny()
    back = pickle.loads(pickle.dumps(ctx))
    _assert_same_access(back, ctx)
    assert not back.access["pharmacy"].reach.distance.flags.writeable
    derived = with_thresholds(back, {"pharmacy": 550})
    _assert_same_access(derived, with_thresholds(ctx, {"pharmacy": 550}))
