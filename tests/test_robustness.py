"""Rank robustness (issue 12, item 5) on Dask (item 6): bxlplan.scoring.robustness.

The base assessment of the 145 neighbourhoods is made once (module fixture) and reused
by every run (``assessment=``); runs use a dozen draws. With zero noise every interval
collapses to the base rank, which is the rank of the plain assessment's scores; the
same seed gives the same draws whatever the chunking and the scheduler (in this process
and on a real ``distributed.LocalCluster`` of 2 worker processes); unscored areas are
never ranked; ``robust_shortage`` follows the 90 % rule recomputed by hand from the
thresholds each draw reports.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

from bxlplan.cli import app
from bxlplan.errors import ConfigError
from bxlplan.scoring.aggregate import area_origins, weighted_mean
from bxlplan.scoring.robustness import rank_areas, robustness, robustness_settings

SCORES = ["score_overall", "score_diversity", "score_social_mix", "score_services"]
ZERO = {
    "weight_concentration": math.inf,
    "threshold_jitter": 0.0,
    "population_noise": 0.0,
    "income_noise": 0.0,
}
NOISY = {
    "seed": 3,
    "draws": 12,
    "threshold_jitter": 0.3,
    "population_noise": 0.3,
    "income_noise": 0.05,
}


# ---------------------------------------------------------------- without the pack
@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        (
            "threshold_jitter",
            1.0,
            "--threshold-jitter (threshold_jitter) must be in [0, 1)",
        ),
        ("population_noise", -0.1, "--population-noise"),
        ("draws", 0, "--draws (draws) must be in [1,"),
        ("draws", 10**9, "robustness.draws_max in layers/limits.yaml"),
        ("draws", 2.5, "must be a whole number"),
        ("weight_concentration", 0.0, "--weight-concentration"),
        ("robust_share", 0.4, "--robust-share"),
        ("seed", "zero", "must be a number"),
    ],
)
def test_settings_refused_with_the_option_named(key, value, says):
    with pytest.raises(ConfigError) as exc:
        robustness_settings(**{key: value})
    assert says in str(exc.value)


def test_settings_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid: draws, seed"):
        robustness_settings(jitter=0.1)


def test_settings_defaults_from_the_yaml():
    s = robustness_settings(draws=7, weight_concentration=math.inf)
    assert s["draws"] == 7 and math.isinf(s["weight_concentration"])
    assert 0 <= s["threshold_jitter"] < 1 and s["income_noise"] == 0.0


def test_ranks_best_first_ties_min_nan_unranked():
    scores = np.array([[50.0, 80.0, np.nan, 50.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    assert rank_areas(scores).tolist() == [[2, 1, 0, 2, 4], [5, 4, 3, 2, 1]]
    # float noise below 1e-9 does not break a tie
    assert rank_areas(np.array([70.0, 70.0 + 1e-12, 20.0])).tolist() == [1, 1, 3]


# ---------------------------------------------------------------- on the pack


@pytest.fixture(scope="module")
def base(ctx):
    import bxlplan as bp
    from bxlplan.scoring.assess import assess

    return assess(bp.areas("neighbourhoods", ctx.data), ctx)


@pytest.fixture(scope="module")
def noisy(base, ctx):
    return robustness(
        None, ctx, assessment=base, draws_per_task=5, scheduler="sync", **NOISY
    )


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(
        pd.DataFrame(a.areas.drop(columns="geometry")),
        pd.DataFrame(b.areas.drop(columns="geometry")),
    )
    pd.testing.assert_frame_equal(a.draws, b.draws)


@pytest.mark.pack
@pytest.mark.slow
def test_zero_noise_collapses_to_the_plain_assessment_ranks(base, ctx):
    result = robustness(
        None, ctx, assessment=base, draws=5, draws_per_task=2, scheduler="sync", **ZERO
    )
    areas, scored = result.areas, base.areas["score_overall"].notna().to_numpy()
    n = int(scored.sum())
    for score in SCORES:
        plain = base.areas.loc[scored, score].rank(ascending=False, method="min")
        got = areas.loc[scored, f"rank_{score}_base"].astype(float)
        np.testing.assert_array_equal(got.to_numpy(), plain.to_numpy())
        for q in ("median", "p05", "p95"):
            np.testing.assert_array_equal(
                areas.loc[scored, f"rank_{score}_{q}"].astype(float).to_numpy(),
                got.to_numpy(),
            )
        # the bottom fifth is decided without doubt: probability 0 or 1
        prob = areas.loc[scored, f"prob_bottom_quintile_{score}"].to_numpy()
        np.testing.assert_array_equal(prob, (got.to_numpy() > 0.8 * n).astype(float))
    assert (result.draws["rank_correlation_overall"] == 1.0).all()
    assert int(areas["robustly_bottom_fifth"].sum()) == int(
        (areas.loc[scored, "rank_score_overall_base"] > 0.8 * n).sum()
    )


@pytest.mark.pack
@pytest.mark.slow
def test_unscored_areas_are_never_ranked(noisy, base):
    areas = noisy.areas
    codes = base.areas["flags"].str.split(";")
    unscored = codes.map(lambda c: "uninhabited" in c or "small_population" in c)
    assert unscored.any() and (~unscored).any()
    cols = [c for c in areas if c.startswith(("rank_", "prob_", "robust"))]
    assert areas.loc[unscored.to_numpy(), cols].isna().all().all()
    assert areas.loc[~unscored.to_numpy(), cols].notna().all().all()
    n = int((~unscored).sum())
    # the population noise kept the statistical sectors' totals
    assert noisy.provenance["population_zones"].startswith("statistical sectors")
    ranks = noisy.ranks["score_overall"]
    assert (ranks[:, unscored.to_numpy()] == 0).all()
    assert ranks[:, ~unscored.to_numpy()].min() >= 1
    assert ranks[:, ~unscored.to_numpy()].max() <= n


@pytest.mark.pack
@pytest.mark.slow
def test_same_seed_same_result_whatever_the_chunking(noisy, base, ctx):
    again = robustness(
        None, ctx, assessment=base, draws_per_task=12, scheduler="sync", **NOISY
    )
    _same(noisy, again)
    other = robustness(
        None, ctx, assessment=base, draws_per_task=12, scheduler="sync",
        **{**NOISY, "seed": 4},
    )  # fmt: skip
    assert not other.draws.equals(noisy.draws)
    # the noise did move ranks: the test above compares something
    spread = (
        noisy.areas["rank_score_overall_p95"] - noisy.areas["rank_score_overall_p05"]
    )
    assert spread.max() > 0


@pytest.mark.pack
@pytest.mark.slow
def test_robust_shortage_is_the_90_percent_rule_by_hand(noisy, base, ctx):
    # threshold noise only: the draws take the same thresholds as the noisy run (one
    # random stream per noise source), and the population is the base one
    only = {
        k: v for k, v in NOISY.items() if k not in ("population_noise", "income_noise")
    }
    run = robustness(
        None, ctx, assessment=base, population_noise=0.0, scheduler="sync", **only
    )
    cats = run.provenance["scored_categories"]
    cols = [f"threshold_{c}_m" for c in cats]
    pd.testing.assert_frame_equal(run.draws[cols], noisy.draws[cols])
    areas = base.areas
    a_idx, o_idx = area_origins(areas, ctx.origins)
    pop = ctx.origins["population"].to_numpy()
    scored = areas["score_overall"].notna().to_numpy()
    for cat in cats:
        nearest = ctx.access[cat].nearest
        short = np.array(
            [
                weighted_mean(
                    (nearest <= t).astype(float), pop, a_idx, o_idx, len(areas)
                )
                < 0.5
                for t in run.draws[f"threshold_{cat}_m"]
            ]
        )
        expected = short.mean(axis=0) >= 0.9
        got = run.areas[f"robust_shortage_{cat}"]
        np.testing.assert_array_equal(got[scored].astype(bool), expected[scored])
        np.testing.assert_allclose(
            run.areas[f"prob_shortage_{cat}"][scored], short.mean(axis=0)[scored]
        )


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
        ) as cluster,
        Client(cluster, set_as_default=False) as c,
    ):
        c.wait_for_workers(2)
        yield c


@pytest.mark.pack
@pytest.mark.slow
def test_local_and_cluster_results_are_identical(noisy, base, ctx, client):
    on_cluster = robustness(
        None, ctx, assessment=base, draws_per_task=5, scheduler=client, **NOISY
    )
    _same(noisy, on_cluster)
    # ... and by the scheduler's address, as --scheduler tcp://host:8786 does
    address = client.scheduler_info()["address"]
    by_address = robustness(
        None, ctx, assessment=base, draws_per_task=3, scheduler=address, **NOISY
    )
    _same(noisy, by_address)
    # the tasks did run on the workers' processes
    assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.pack
@pytest.mark.slow
def test_an_assessment_of_another_context_is_refused(base, ctx):
    import dataclasses

    other = dataclasses.replace(ctx)
    with pytest.raises(ConfigError, match="another context"):
        robustness(None, other, assessment=base, draws=1)


# ---------------------------------------------------------------- command line
def test_cli_refuses_bad_settings_and_existing_outputs_before_preparing(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(
        app, ["robustness", "--threshold-jitter", "1.2", "--out", str(tmp_path)]
    )
    assert bad.exit_code == 2 and "--threshold-jitter" in bad.output
    (tmp_path / "robustness.csv").write_text("old")
    there = runner.invoke(app, ["robustness", "--out", str(tmp_path)])
    assert there.exit_code == 2 and "--overwrite" in there.output
    dead = runner.invoke(
        app,
        [
            "robustness",
            "--out",
            str(tmp_path / "new"),
            "--scheduler",
            "tcp://127.0.0.1:1",
        ],
    )
    assert dead.exit_code == 2 and "tcp://127.0.0.1:1" in dead.output


@pytest.mark.pack
@pytest.mark.slow
def test_cli_writes_the_three_outputs(pack, tmp_path, monkeypatch):
    monkeypatch.setenv("BXLPLAN_DATA", str(pack))
    out = tmp_path / "rob"
    res = CliRunner().invoke(
        app,
        ["-q", "robustness", "--draws", "8", "--seed", "1", "--draws-per-task", "4",
         "--scheduler", "sync", "--out", str(out), "--lang", "en"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "robustness.csv")
    assert len(table) == 145
    assert {"rank_score_overall_median", "robustly_bottom_fifth"} <= set(table)
    info = pyogrio.read_info(out / "robustness.gpkg", layer="robustness")
    assert info["features"] == 145
    meta = json.loads(pyogrio.read_info(out / "robustness.gpkg", layer="robustness")[
        "layer_metadata"]["bxlplan"])  # fmt: skip
    assert meta["seed"] == 1 and meta["draws"] == 8
    page = (out / "robustness_map.html").read_text(encoding="utf-8")
    assert "Robustly in the bottom fifth" in page
    draws = pd.read_csv(out / "robustness_draws.csv")
    assert len(draws) == 8 and np.allclose(draws.filter(like="weight_").sum(axis=1), 1)
