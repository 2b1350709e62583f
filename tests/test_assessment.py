"""The assessment end to end on the reference pack (marked slow: ~30 s to prepare)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyogrio
import pytest
from typer.testing import CliRunner

from bxlplan.cli import app
from bxlplan.loading.areas import load_areas, make_grid
from bxlplan.scoring import assess, prepare

pytestmark = [pytest.mark.pack, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hoods(ctx):
    return assess(load_areas("neighbourhoods", ctx.data), ctx)


def test_population_of_origins_sums_to_the_region(ctx):
    # every sector's official 2024 total is preserved exactly (Statbel region total)
    assert ctx.origins["population"].sum() == pytest.approx(1_246_136, rel=1e-9)
    assert ctx.sources["population"]["population_source"] == "population_sectors"


def test_scores_in_bounds_and_named(hoods):
    a = hoods.areas
    assert len(a) == 145
    for col in (
        "score_diversity",
        "score_social_mix",
        "score_services",
        "score_overall",
    ):
        scored = a[col].dropna()
        assert scored.between(0, 100).all(), col
        assert len(scored) >= 100, col  # the inhabited neighbourhoods are scored
    assert "access_pharmacy_within_800m_share" in a
    assert "access_green_space_large_within_1600m_share" in a
    assert a["access_pharmacy_within_800m_share"].dropna().between(0, 1).all()
    assert a["mix_landuse_entropy"].dropna().between(0, 1).all()


def test_missing_categories_are_nan_not_zero(hoods):
    a = hoods.areas
    assert a["access_childcare_within_800m_share"].isna().all()
    assert "childcare" in a.attrs["bxlplan"]["parameters"]["missing_categories"]
    assert "childcare" not in set(hoods.shortage_zones["category"])


def test_income_and_flags(hoods):
    a = hoods.areas.set_index("area_id")
    # a neighbourhood's own median is its value (all its origins lie inside it)
    assert a.loc["1", "social_income_median_popmean_eur"] == pytest.approx(19258.84)
    # parks and woods with no value: NaN, never 0
    no_value = a.loc[[c for c in a.index if int(c) >= 900]]
    assert no_value["social_income_median_popmean_eur"].isna().any()
    assert (no_value["social_income_median_popmean_eur"].dropna() > 0).all()


def test_shortage_zones_hold_inhabited_land_beyond_the_threshold(hoods, ctx):
    zones = hoods.shortage_zones.set_index("category")
    assert zones.crs.to_epsg() == 31370
    # residents in the primary-school shortage zone = residents farther than 800 m
    a = ctx.access["primary_school"]
    far = ctx.origins["population"].to_numpy()[a.nearest > a.threshold_m].sum()
    assert zones.loc["primary_school", "population_est"] == pytest.approx(far)
    assert far > 0


def test_grids(ctx):
    grid = make_grid(ctx.communes, 2000)
    res = assess(grid, ctx)
    assert len(res.areas) == len(grid)
    assert res.areas.attrs["bxlplan"]["parameters"]["distance"] == "network"
    hexes = make_grid(ctx.communes, 2000, "hex")
    assert hexes.area.sum() == pytest.approx(ctx.communes.area.sum(), rel=1e-6)


def test_network_distances_are_longer_than_straight_lines(pack, pack_layers, ctx):
    names = ["region", "communes", "neighbourhoods", "green_spaces", "landuse_osm",
             "population_communes", "income_equivalised", "poverty_communes", "facilities", "streets"]  # fmt: skip
    eu = prepare(pack, distance="euclidean", layers={n: pack_layers[n] for n in names})
    assert eu.distance == "euclidean"
    for cat in ("pharmacy", "library"):
        net = ctx.access[cat].nearest
        straight = eu.access[cat].nearest
        # origin by origin: a walk (offsets to and from the street included) is never
        # shorter than the straight line between its ends
        assert len(net) == len(straight) == len(ctx.origins)
        assert (net >= straight - 1e-6).all()
        assert (net > straight + 1).mean() > 0.5  # and mostly longer


def test_cli_assess_writes_layers(pack, tmp_path):
    runner = CliRunner()
    args = [
        "assess",
        "--units",
        "communes",
        "--data",
        str(pack),
        "--out",
        str(tmp_path),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    layers = dict(pyogrio.list_layers(tmp_path / "assessment.gpkg"))
    assert "areas" in layers and "shortage_primary_school" in layers
    back = pyogrio.read_dataframe(tmp_path / "assessment.gpkg", layer="areas")
    assert len(back) == 19 and back.crs.to_epsg() == 31370
    assert (tmp_path / "assessment.csv").read_text().count("\n") == 20
    again = runner.invoke(app, args)  # never overwrite without --overwrite
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_example_rank_neighbourhoods(pack):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples/rank_neighbourhoods.py"), "15"],
        env={**os.environ, "BXLPLAN_DATA": str(pack)}, capture_output=True, text=True,
        timeout=600, check=True,
    )  # fmt: skip
    assert "profile of gare de l'ouest" in out.stdout.lower()
    assert (
        "access_childcare_within_800m_share" in out.stdout and "no data" in out.stdout
    )


def test_2sfca_when_capacities_are_known(ctx):
    """Supply per resident appears only for categories whose capacities are all known,
    and conserves supply: sum_i P_i A_i = total capacity reaching anyone."""
    from dataclasses import replace

    from bxlplan.scoring import compute_access

    assert ctx.access["pharmacy"].capacity is None  # the pack has no capacities
    fac = ctx.facilities.copy()
    fac.loc[fac["category"] == "pharmacy", "capacity"] = 10.0
    ctx2 = replace(ctx, facilities=fac, access={})
    compute_access(ctx2)
    a = ctx2.access["pharmacy"]
    from bxlplan.indicators.access import two_step_fca

    pop = ctx2.origins["population"].to_numpy()
    acc = two_step_fca(a.pairs, a.capacity, pop)
    reaching = a.pairs["facility"].nunique()
    assert (acc * pop).sum() == pytest.approx(10.0 * reaching)
    res = assess(load_areas("communes", ctx2.data), ctx2)
    col = "access_pharmacy_2sfca_per_1000_within_800m"
    assert col in res.areas and res.areas[col].gt(0).all()
    assert "access_library_2sfca_per_1000_within_800m" not in res.areas


def test_poverty_segregation_across_communes(ctx):
    from bxlplan.indicators.social import dissimilarity

    zru = assess(load_areas("zru", ctx.data), ctx).areas
    d = zru["social_poverty_dissimilarity_across_communes"]
    assert d.between(0, 1).all()  # the ZRU spans several communes
    communes = assess(load_areas("communes", ctx.data), ctx).areas
    assert (
        communes["social_poverty_dissimilarity_across_communes"].isna().all()
    )  # one commune each
    # hand check on the whole region: D of the poor across the 19 communes
    pov = (
        ctx.poverty.dropna(subset=["value"])
        .sort_values("year")
        .groupby("code")["value"]
        .last()
    )
    pop = ctx.origins.groupby("commune")["population"].sum()
    t = pop.to_numpy()
    expected = dissimilarity(t * pov.reindex(pop.index.astype(int)).to_numpy(), t)
    whole = ctx.communes.dissolve().assign(
        area_id="region", name_fr="Région", name_nl="Gewest"
    )
    got = (
        assess(whole, ctx).areas["social_poverty_dissimilarity_across_communes"].item()
    )
    assert got == pytest.approx(expected, rel=1e-9)


def test_example_make_map(pack, tmp_path):
    out = tmp_path / "example.html"
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples/make_map.py"), str(out)],
        env={**os.environ, "BXLPLAN_DATA": str(pack)}, capture_output=True, text=True,
        timeout=600, check=True,
    )  # fmt: skip
    assert "wrote" in run.stdout and out.stat().st_size < 3e6


def test_cli_assess_a_pole_perimeter_from_a_scenario_file(pack, tmp_path):
    runner = CliRunner()
    args = [
        "assess",
        "--units",
        str(ROOT / "scenarios/tour_et_taxis.yaml"),
        "--data",
        str(pack),
        "--out",
        str(tmp_path),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    back = pyogrio.read_dataframe(tmp_path / "assessment.gpkg", layer="areas")
    assert back["area_id"].tolist() == ["tour_et_taxis"]
    assert back.area.iloc[0] == pytest.approx(
        np.pi * 380**2, rel=0.01
    )  # the 380 m circle


def test_rescore_equals_an_assessment_with_the_new_weights(hoods, ctx):
    """Re-scoring from the stored indicators gives what a new assessment gives."""
    from dataclasses import replace

    from bxlplan.scoring.scores import validate_scoring

    weights = {"diversity": 1.0, "social_mix": 1.0, "services": 3.0}
    quick = hoods.rescore(weights=weights)
    config = validate_scoring({**ctx.config, "weights": weights})
    full = assess(load_areas("neighbourhoods", ctx.data), replace(ctx, config=config))
    cols = [c for c in quick.areas if c.startswith("score_")]
    a = quick.areas.set_index("area_id")[cols]
    b = full.areas.set_index("area_id")[cols]
    np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), equal_nan=True)
    assert quick.provenance["parameters"]["weights"] == weights
    # the overall score moved with the weights; the component scores did not
    assert not np.allclose(
        quick.areas["score_overall"].dropna(), hoods.areas["score_overall"].dropna()
    )
    np.testing.assert_allclose(
        quick.areas["score_services"].to_numpy(float),
        hoods.areas["score_services"].to_numpy(float),
        equal_nan=True,
    )
