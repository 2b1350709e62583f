"""Scenario files: validation errors with file/key/line, properties that must hold, and
every shipped scenario end to end on the reference pack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from bxlplan.errors import ConfigError
from bxlplan.exports.labels import ui
from bxlplan.scenarios import read_scenario, run_scenario, write_scenario
from bxlplan.scoring import shortage_zones

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
REGION = gpd.GeoDataFrame(
    geometry=[shapely.box(140000, 160000, 160000, 180000)], crs=31370
)

GOOD = """\
name: t
pole: Test
perimeter:
  wkt: "POINT (149000 170000)"
  buffer_m: 200
programme:
  dwellings: {social: 10, moderate: 0, market: 30}
  land_use: {housing: 0.6, green: 0.4}
"""


def _write(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file(tmp_path):
    scn = read_scenario(_write(tmp_path, GOOD), region=REGION)
    assert scn.new_residents == pytest.approx(40 * 2.1)
    assert scn.used_defaults  # the default persons per dwelling is reported


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("  dwellings:", "  dwelings:"), r"line 7: programme: unknown key 'dwelings'"),
        (
            ("social: 10", "social: -10"),
            r"line 7: programme: dwellings: 'social' must be >= 0, got -10",
        ),
        (
            ("social: 10", "social: ten"),
            r"line 7: .*'social' must be a number, got 'ten'",
        ),
        (("social: 10", "social: 10.5"), r"must be a whole number"),
        (
            ("green: 0.4", "green: 0.3"),
            r"line 8: .*'land_use' shares add up to 0.900, not 1",
        ),
        (
            ("POINT (149000 170000)", "POINT (4.35 50.84)"),
            r"line 4: perimeter: .*outside the Brussels region.*EPSG:31370",
        ),
        (("pole: Test\n", ""), r"missing key 'pole'"),
        (
            ("  buffer_m: 200\n", "  buffer_m: 200\n  neighbourhoods: [1]\n"),
            r"exactly one of",
        ),
    ],
)
def test_invalid_files_name_file_key_and_line(tmp_path, change, message):
    text = GOOD.replace(*change)
    with pytest.raises(ConfigError, match=message) as err:
        read_scenario(_write(tmp_path, text), region=REGION)
    assert "s.yaml" in str(err.value)


def test_unknown_facility_category(tmp_path):
    text = GOOD + "  facilities:\n    - {category: casino, capacity: 3}\n"
    with pytest.raises(ConfigError, match=r"line 10: .*unknown category 'casino'"):
        read_scenario(_write(tmp_path, text), region=REGION)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_files_are_valid(path):
    scn = read_scenario(path, region=REGION)
    assert scn.perimeter.get("note"), "say what the perimeter is"
    assert scn.assumptions or scn.facts


# --- properties on the reference pack -----------------------------------------------


def _scenario(tmp_path, perimeter: str, programme: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(
        f"name: p\npole: P\nperimeter:\n{perimeter}\nprogramme:\n{programme}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.pack
@pytest.mark.slow
def test_market_housing_in_a_low_income_area_raises_income_diversity(ctx, tmp_path):
    inc = ctx.origins.groupby("neighbourhood")["income"].first().dropna()
    poorest = int(inc.idxmin())
    path = _scenario(
        tmp_path, f"  neighbourhoods: [{poorest}]", "  dwellings: {market: 600}"
    )
    res = run_scenario(path, ctx)
    pole = res.areas.iloc[0]
    assert (
        pole["social_income_class_mix_entropy_after"]
        > pole["social_income_class_mix_entropy_before"]
    )


@pytest.mark.pack
@pytest.mark.slow
def test_new_school_in_a_shortage_zone_shrinks_it(ctx, tmp_path):
    before = shortage_zones(ctx).set_index("category").loc["primary_school"]
    parts = shapely.get_parts(before.geometry)
    big = parts[np.argmax(shapely.area(parts))]
    x, y = shapely.get_coordinates(shapely.point_on_surface(big))[0]
    path = _scenario(
        tmp_path,
        f'  wkt: "POINT ({x:.0f} {y:.0f})"\n  buffer_m: 50',
        f"  facilities:\n    - {{category: primary_school, capacity: 300, location: [{x:.0f}, {y:.0f}]}}",
    )
    res = run_scenario(path, ctx)
    after = (
        shortage_zones(res.context_after).set_index("category").loc["primary_school"]
    )
    assert after.geometry.area < before.geometry.area
    assert after["population_est"] < before["population_est"]


@pytest.mark.pack
@pytest.mark.slow
def test_empty_programme_changes_nothing(ctx, tmp_path):
    path = _scenario(
        tmp_path, "  neighbourhoods: [15]", "  dwellings: {social: 0, market: 0}"
    )
    res = run_scenario(path, ctx)
    both = res.table.dropna(subset=["before", "after"], how="all")
    assert np.allclose(both["before"], both["after"], equal_nan=True)
    assert (res.demand["places_needed"] == 0).all()


@pytest.mark.pack
@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_runs_end_to_end(ctx, path, tmp_path):
    res = run_scenario(path, ctx)
    written = write_scenario(res, tmp_path)
    folder = tmp_path / res.scenario.name
    for name in ("scenario.gpkg", "table.csv", "demand.csv", "report.md", "report.html",
                 "map.html"):  # fmt: skip
        assert (folder / name).is_file(), name
    report = (folder / "report.md").read_text()
    assert res.scenario.pole in report and ui("report_assumptions", "fr") in report
    pole = res.areas.iloc[0]
    assert pole["population_est_change"] == pytest.approx(
        res.scenario.new_residents, rel=1e-6
    )
    assert 0 <= pole["score_overall_after"] <= 100
    assert written


@pytest.mark.pack
@pytest.mark.slow
def test_example_compare_variants(pack, tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples/compare_variants.py"), str(tmp_path)],
        env={**os.environ, "BXLPLAN_DATA": str(pack)}, capture_output=True, text=True,
        timeout=900, check=True,
    )  # fmt: skip
    assert "josaphat_more_social" in run.stdout
    assert (tmp_path / "comparison.csv").is_file() and (
        tmp_path / "comparison_map.html"
    ).is_file()


@pytest.mark.pack
@pytest.mark.slow
def test_facility_of_a_category_without_data_does_not_shift_scores(ctx, tmp_path):
    """The pack has no childcare: a new crèche must not make the 'after' services score
    count a category the 'before' could not (it is counted in the demand balance)."""
    path = _scenario(
        tmp_path,
        "  neighbourhoods: [15]",
        "  facilities:\n    - {category: childcare, capacity: 48}",
    )
    res = run_scenario(path, ctx)
    assert np.allclose(res.areas["score_services_change"], 0.0)
    childcare = res.demand.set_index("category").loc["childcare"]
    assert childcare["new_places_in_programme"] == 48
    assert "no data on existing facilities" in childcare["note"]


@pytest.mark.pack
def test_cli_reports_a_bad_scenario_file_before_any_work(pack, tmp_path):
    from typer.testing import CliRunner

    from bxlplan.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\npole: X\nperimeter:\n  neighbourhoods: [15]\nprogramme:\n  dwelings: {social: 3}\n"
    )
    result = CliRunner().invoke(
        app, ["scenario", "run", str(bad), "--data", str(pack), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert (
        "bad.yaml, line 6" in result.output
        and "unknown key 'dwelings'" in result.output
    )
    assert not (tmp_path / "x").exists()


@pytest.mark.pack
def test_cli_refuses_an_unknown_neighbourhood_before_preparing(pack, tmp_path):
    from typer.testing import CliRunner

    from bxlplan.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\npole: X\nperimeter:\n  neighbourhoods: [999]\nprogramme: {}\n",
        encoding="utf-8",
    )
    r = CliRunner().invoke(
        app, ["scenario", "run", str(bad), "--data", str(pack), "--out", str(tmp_path)]
    )
    assert r.exit_code == 2
    assert "bad.yaml, line 4" in r.output and "999 is not a Monitoring" in r.output


def test_a_named_facility_does_not_rename_the_scenario():
    # regression: the facility loop reused the scenario's `name` variable
    scn = read_scenario(ROOT / "scenarios" / "josaphat.yaml", region=REGION)
    assert scn.name == "josaphat"
    assert "Crèche Josaphat (programme)" in [f.name for f in scn.facilities]
