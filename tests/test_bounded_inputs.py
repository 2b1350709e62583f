"""Bounded inputs: YAML that expands or runs code, implausible or non-finite numbers,
scenario names that are paths, grids too fine to build, damaged IBSA tables. Each is
refused with a message naming the file, the key (or field) and the line (or row).

Every fixture is built by the test; only the ``pack`` tests read the reference pack (the
region's outline, a fraction of a second)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
import yaml

import bxlplan
from bxlplan.errors import ConfigError, DataError
from bxlplan.loading.areas import load_areas, make_grid
from bxlplan.scenarios import read_scenario

from .test_scenarios import GOOD, REGION  # one small region and programme

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _billion_laughs(levels: int = 9) -> str:
    """A ``facts:`` list whose last item expands to 9^levels strings."""
    lines = [
        "facts:",
        '  - &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ]
    for i in range(1, levels):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"  - &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# --- the safe YAML reader ------------------------------------------------------------


def test_billion_laughs_is_refused_at_the_first_anchor(tmp_path):
    text = _billion_laughs()
    assert len(text.encode()) < 2048  # the 2 KB file of the issue: 9^9 "lol"s
    path = _write(tmp_path, GOOD + text)
    with pytest.raises(ConfigError, match=r"s\.yaml, line 10, column 5: anchor '&a'"):
        read_scenario(path, region=REGION)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!python/object/apply:os.system [echo hi]", r"tag .*python/object/apply"),
        ("!!python/name:os.system", r"tag .*python/name"),
        ("!include other.yaml", r"tag '!include' refused"),
        ("!!set {a, b}", r"tag .*set' refused"),
    ],
)
def test_code_and_custom_tags_are_refused_with_the_line(tmp_path, value, message):
    text = GOOD.replace("pole: Test", f"pole: {value}")
    with pytest.raises(ConfigError, match=rf"s\.yaml, line 2, column 7: {message}"):
        read_scenario(_write(tmp_path, text), region=REGION)


def test_repeated_key_is_refused(tmp_path):
    text = GOOD.replace("  buffer_m: 200\n", "  buffer_m: 200\n  buffer_m: 5\n")
    with pytest.raises(
        ConfigError, match=r"line 6, column 3: key 'buffer_m' is repeated .*line 5"
    ):
        read_scenario(_write(tmp_path, text), region=REGION)


def test_safe_reader_reads_every_shipped_yaml_like_pyyaml():
    from bxlplan._yaml import load_yaml

    files = sorted((ROOT / "layers").glob("*.yaml")) + sorted(
        (ROOT / "scenarios").glob("*.yaml")
    )
    assert len(files) > 20
    for path in files:
        with open(path, encoding="utf-8") as fh:
            assert load_yaml(path) == yaml.safe_load(fh), path


# --- scenario numbers: finite and plausible --------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("social: 10", "social: .inf"),
            r"line 7: programme: dwellings: 'social' must be a finite number, got inf"
            r"; allowed: 0 to 45,000",
        ),
        (("social: 10", "social: .nan"), r"line 7: .*'social' must be a finite number"),
        (
            ("social: 10", "social: 1000000000"),
            r"line 7: .*'social' = 1e\+09 is above the plausible maximum of 45,000",
        ),
        (
            ("{social: 10, moderate: 0, market: 30}", "{social: 20000, market: 30000}"),
            r"line 7: programme: 'dwellings' add up to 50,000, above .* 45,000",
        ),
        (
            ("green: 0.4", "green: .nan"),
            r"line 8: programme: land_use: 'green' must be a finite number",
        ),
        (
            ("{housing: 0.6, green: 0.4}", "{housing: 1.6, green: -0.6}"),
            r"line 8: .*'housing' = 1.6 is above the plausible maximum of 1",
        ),
        (
            ("  buffer_m: 200", "  buffer_m: .inf"),
            r"line 5: perimeter: 'buffer_m' must be a finite number",
        ),
        (
            ("  buffer_m: 200", "  buffer_m: 1.0e+9"),
            r"line 5: perimeter: 'buffer_m' = 1e\+09 is above .* 5,000",
        ),
        (
            ("POINT (149000 170000)", "POINT (nan nan)"),
            r"line 4: perimeter: the perimeter 'wkt' has coordinates that are not finite",
        ),
        (
            ("  land_use:", "  phasing_year: 3000\n  land_use:"),
            r"line 8: programme: 'phasing_year' = 3,000 is above .* 2,100",
        ),
        (
            ("  land_use:", "  jobs: {economic: 1.0e+12}\n  land_use:"),
            r"line 8: programme: jobs: 'economic' = 1e\+12 is above .* 50,000",
        ),
        (
            ("  land_use:", "  floor_area_m2: {economic: .inf}\n  land_use:"),
            r"line 8: programme: floor_area_m2: 'economic' must be a finite number",
        ),
        (
            ("pole: Test", "pole: Test\nsurroundings_m: .nan"),
            r"line 3: 'surroundings_m'",
        ),
    ],
)
def test_numbers_must_be_finite_and_plausible(tmp_path, change, message):
    text = GOOD.replace(*change)
    with pytest.raises(ConfigError, match=message) as err:
        read_scenario(_write(tmp_path, text), region=REGION)
    assert str(err.value).startswith(str(tmp_path / "s.yaml"))


@pytest.mark.parametrize(
    ("facility", "message"),
    [
        ("{category: primary_school, capacity: .inf}", r"'capacity' must be a finite"),
        (
            "{category: primary_school, capacity: 1.0e+9}",
            r"'capacity' = 1e\+09 is above the plausible maximum of 100,000",
        ),
        (
            "{category: primary_school, location: [.nan, 170000]}",
            r"'location' must be finite coordinates",
        ),
        (
            "{category: primary_school, location: [4.35, 50.84]}",
            r"'location' \[4.35, 50.84\] is outside the Brussels region.*EPSG:31370",
        ),
    ],
)
def test_facility_numbers_and_locations_are_bounded(tmp_path, facility, message):
    text = GOOD + f"  facilities:\n    - {facility}\n"
    with pytest.raises(
        ConfigError, match=rf"line 10: programme: facilities\[\]: {message}"
    ):
        read_scenario(_write(tmp_path, text), region=REGION)
    # without the region layer, the region's bounding box (layers/limits.yaml)
    with pytest.raises(ConfigError, match=message):
        read_scenario(_write(tmp_path, text))


def test_bounds_leave_every_shipped_programme_valid():
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        scn = read_scenario(path, region=REGION)
        assert 0 < sum(scn.dwellings.values()) <= 45000, path


# --- names are slugs, perimeter files are files ----------------------------------------


@pytest.mark.parametrize(
    "name", ["../../x", "/tmp/bxlplan-escape", "a/b", "..", "x y", "'{a: 1}'", "''"]
)
def test_scenario_name_is_a_slug_not_a_path(tmp_path, name):
    text = GOOD.replace("name: t", f"name: {name}")
    with pytest.raises(
        ConfigError,
        match=r"s\.yaml, line 1: 'name' must be a short identifier.*never a path",
    ):
        read_scenario(_write(tmp_path, text), region=REGION)


def test_perimeter_folder_is_reported_as_a_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    text = GOOD.replace('  wkt: "POINT (149000 170000)"', "  file: ../")
    with pytest.raises(
        ConfigError, match=r"line 4: perimeter: 'file' '\.\./' is a folder"
    ):
        read_scenario(_write(tmp_path / "sub", text), region=REGION)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/vsicurl/http://example.invalid/p.geojson", "URLs and GDAL virtual paths"),
        ("https://example.invalid/p.geojson", "URLs and GDAL virtual paths"),
        ("notes.txt", r"is not a polygon file: allowed are \.gpkg"),
        ("missing.gpkg", r"does not exist \(looked for .*missing\.gpkg"),
    ],
)
def test_perimeter_file_is_read_only_as_declared(tmp_path, value, message):
    (tmp_path / "notes.txt").write_text("POLYGON ((0 0, 1 0, 1 1, 0 0))")
    text = GOOD.replace('  wkt: "POINT (149000 170000)"', f"  file: {value}")
    with pytest.raises(ConfigError, match=rf"line 4: perimeter: 'file' .*{message}"):
        read_scenario(_write(tmp_path, text), region=REGION)


def test_unknown_neighbourhood_code_is_refused_at_validation(tmp_path, tiny_units):
    text = GOOD.replace(
        '  wkt: "POINT (149000 170000)"', "  neighbourhoods:\n    - 1\n    - 999"
    )
    path = _write(tmp_path, text)
    hoods = tiny_units.rename(columns={"mdrc": "code"})
    for known in (hoods, [1, 2]):
        with pytest.raises(
            ConfigError,
            match=r"line 6: perimeter: neighbourhoods: 999 is not a Monitoring "
            r"neighbourhood code of the data; known codes: 1-2",
        ):
            read_scenario(path, region=REGION, neighbourhoods=known)
    ok = read_scenario(path, region=REGION)
    assert ok.perimeter["neighbourhoods"] == [1, 999]  # the old call still works


# --- grids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    ["grid:nan", "grid:inf", "grid:-inf", "hex:nan", "hex:inf", "grid:0", "hex:-5"],
)
def test_grid_size_must_be_positive_and_finite(tmp_path, spec):
    with pytest.raises(
        DataError, match=rf"--units '{spec}': the cell size must be a positive, finite"
    ):
        load_areas(spec, tmp_path)  # refused before any layer is read


def test_grid_limit_counts_cells_before_building_and_can_be_raised():
    from bxlplan.loading.areas import grid_cell_count

    region = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1000, 1000)], crs=31370)
    assert grid_cell_count(tuple(region.total_bounds), 10) == 10_000
    with pytest.raises(
        DataError,
        match=r"a square grid of 10 m means 10,000 cells .*about 5 MB.* limit of "
        r"5,000: use a cell size of at least 15 m, or raise the limit with --max-cells",
    ):
        make_grid(region, 10, max_cells=5_000)
    assert len(make_grid(region, 15, max_cells=5_000)) == 67 * 67
    assert len(make_grid(region, 10, max_cells=10_000)) == 10_000


@pytest.mark.parametrize("shape", ["square", "hex"])
def test_cell_count_is_what_make_grid_builds(shape):
    from bxlplan.loading.areas import grid_cell_count

    region = gpd.GeoDataFrame(geometry=[shapely.box(3, 7, 830, 611)], crs=31370)
    count = grid_cell_count(tuple(region.total_bounds), 37, shape)
    built = make_grid(region, 37, shape, clip=False)
    if shape == "square":  # every cell of the bounding box touches the rectangle
        assert len(built) == count
    else:  # the hexagons of the outer ring that miss the rectangle are dropped
        assert len(built) <= count < 1.5 * len(built)
    with pytest.raises(DataError, match=rf"{count:,} cells"):
        make_grid(region, 37, shape, max_cells=count - 1)


@pytest.mark.pack
@pytest.mark.parametrize(
    ("spec", "cells", "size"),
    [("grid:1", "280,962,144", 12), ("hex:1", "432,614,475", 15)],
)
def test_one_metre_grid_is_refused_with_count_memory_and_advice(
    pack, spec, cells, size
):
    with pytest.raises(
        DataError,
        match=rf"--units '{spec}' means {cells} cells .*\(about \d+\.\d GB to build.* "
        rf"at least {size} m, or raise the limit with --max-cells",
    ):
        load_areas(spec, pack)
    with pytest.raises(DataError, match=r"means 57,599 cells .*limit of 1,000"):
        load_areas("grid:70", pack, max_cells=1_000)


# --- IBSA tables ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (None, "is null, not a list of cells"),
        (7, "is the number 7, not a list of cells"),
        ("1;a;2", "is the text '1;a;2', not a list"),
        ([], "is an empty list"),
        (["2", ["b"], "3"], r", cell 1 is a list; cells must be text, numbers or null"),
    ],
)
def test_ibsa_json_bad_row_names_file_and_row(tmp_path, row, message):
    rows = [["Code", "Territoire", "Revenu"], ["Moyenne régionale", "24488"],
            ["1", "Grand Place", "22662"], row]  # fmt: skip
    path = tmp_path / "ibsa_2336_median_taxable_income_2023.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(DataError, match=rf"ibsa_2336_.*\.json: row 3.*{message}"):
        bxlplan.load("income_taxable", path=path)


def test_ibsa_csv_with_commas_gets_a_message_about_the_separator(tmp_path):
    path = tmp_path / "ibsa_2498_median_equivalised_income_2023.csv"
    path.write_text(
        'MD_ID,nom_fr,nom_nl,valeur\n1,a,a,"19258,84"\n2,b,b,ND\n', encoding="utf-8"
    )
    with pytest.raises(
        DataError,
        match=r"ibsa_2498_.*\.csv, line 1: the header 'MD_ID,nom_fr,nom_nl,valeur' is "
        r"separated by ',' where IBSA CSV files use ';'",
    ):
        bxlplan.load("income_equivalised", path=path)


# --- the command line -----------------------------------------------------------------------


@pytest.mark.pack
def test_cli_refuses_an_expanding_scenario_with_exit_2_and_no_traceback(pack, tmp_path):
    from typer.testing import CliRunner

    from bxlplan.cli import app

    bad = _write(tmp_path, GOOD + _billion_laughs(), "laughs.yaml")
    result = CliRunner().invoke(
        app, ["scenario", "run", str(bad), "--data", str(pack), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "laughs.yaml, line 10" in result.output and "anchor" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "t").exists()
