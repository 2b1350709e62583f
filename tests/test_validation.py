"""Bad input gets a clear error naming the file, field or row (small fixtures)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import bxlplan
from bxlplan.errors import DataError
from bxlplan.loading.validate import parse_numbers


def _write_units(tmp_path, gdf, name="units.gpkg"):
    path = tmp_path / name
    gdf.to_file(path)
    return path


def test_good_file_loads(tmp_path, tiny_units):
    path = _write_units(tmp_path, tiny_units)
    hoods = bxlplan.load("neighbourhoods", path=path)
    assert list(hoods["code"]) == [1, 2]
    assert hoods.attrs["bxlplan"]["report"] == []


@pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")
def test_missing_crs(tmp_path, tiny_units):
    path = tmp_path / "units.shp"
    tiny_units.set_crs(None, allow_override=True).to_file(path)
    with pytest.raises(
        DataError, match=r"units\.shp has no coordinate reference system"
    ):
        bxlplan.load("neighbourhoods", path=path)


def test_lonlat_declared_as_lambert(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"mdrc": [1], "name_fr": ["a"], "name_nl": ["b"]},
        geometry=[shapely.box(4.35, 50.84, 4.36, 50.85)],
        crs="EPSG:31370",
    )
    path = _write_units(tmp_path, gdf)
    with pytest.raises(DataError, match="look like longitude/latitude.*EPSG:4326"):
        bxlplan.load("neighbourhoods", path=path)


def test_coordinates_outside_brussels(tmp_path, tiny_units):
    # Lambert 72 coordinates written as Lambert 2008 (EPSG:3812) land in the sea
    path = _write_units(tmp_path, tiny_units.set_crs(3812, allow_override=True))
    with pytest.raises(DataError, match="do not fall in Brussels"):
        bxlplan.load("neighbourhoods", path=path)


def test_empty_layer(tmp_path, tiny_units):
    path = _write_units(tmp_path, tiny_units.iloc[:0])
    with pytest.raises(DataError, match="is empty"):
        bxlplan.load("neighbourhoods", path=path)


def test_missing_required_field(tmp_path, tiny_units):
    path = _write_units(tmp_path, tiny_units.drop(columns="mdrc"))
    with pytest.raises(
        DataError, match=r"required field 'code' is missing \(looked for mdrc"
    ):
        bxlplan.load("neighbourhoods", path=path)


def test_duplicate_codes(tmp_path, tiny_units):
    dup = tiny_units.assign(mdrc=[7, 7])
    with pytest.raises(DataError, match="duplicate code value.*7.*unique"):
        bxlplan.load("neighbourhoods", path=_write_units(tmp_path, dup))


def test_null_geometry_dropped_and_invalid_repaired(tmp_path, tiny_units):
    bowtie = shapely.Polygon(
        [(148000, 169000), (149000, 170000), (149000, 169000), (148000, 170000)]
    )
    gdf = gpd.GeoDataFrame(
        {"mdrc": [1, 2, 3], "name_fr": list("abc"), "name_nl": list("abc")},
        geometry=[tiny_units.geometry[0], None, bowtie],
        crs="EPSG:31370",
    )
    hoods = bxlplan.load("neighbourhoods", path=_write_units(tmp_path, gdf))
    assert list(hoods["code"]) == [1, 3]
    assert hoods.is_valid.all()
    report = " ".join(hoods.attrs["bxlplan"]["report"])
    assert "dropped 1 feature(s) with no geometry" in report
    assert "repaired 1 invalid" in report


def test_unparseable_number_names_the_row(tmp_path):
    path = tmp_path / "inc.csv"
    path.write_text(
        "MD_ID;nom_fr;nom_nl;valeur\n1;a;a;19258,84\n2;b;b;douze\n3;c;c;ND\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"field 'valeur'.*row 3: 'douze'"):
        bxlplan.load("income_equivalised", path=path)


def test_ibsa_csv_decimal_comma_and_flags(tmp_path):
    path = tmp_path / "ibsa_2498_median_equivalised_income_2023.csv"
    path.write_text(
        "MD_ID;nom_fr;nom_nl;valeur\n1;a;a;19258,84\n2;b;b;\n3;c;c;ND\n",
        encoding="utf-8",
    )
    inc = bxlplan.load("income_equivalised", path=path)
    assert inc["value"].iloc[0] == pytest.approx(19258.84)
    assert inc["value"].iloc[1:].isna().all()
    assert list(inc["value_flag"]) == [None, "empty", "ND"]


def test_ibsa_json_summary_rows(tmp_path):
    rows = [["Code", "Territoire", "Revenu"], ["Moyenne régionale", "24488"], ["Total RBC", "ND"],
            ["1", "Grand Place", "22662"], ["2", "X", "VS"]]  # fmt: skip
    path = tmp_path / "ibsa_2336_median_taxable_income_2023.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    tab = bxlplan.load("income_taxable", path=path)
    assert list(tab["code"]) == [1, 2]
    assert tab["value"].iloc[0] == 22662 and np.isnan(tab["value"].iloc[1])
    assert tab["value_flag"].iloc[1] == "VS"
    assert tab.attrs["bxlplan"]["summary"]["Moyenne régionale"] == "24488"


def test_truncated_json_is_a_clear_error(tmp_path):
    path = tmp_path / "ibsa_2336_median_taxable_income_2023.json"
    path.write_text('[["Code", "Territoire", "V"], ["1", "a", "2', encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON.*truncated"):
        bxlplan.load("income_taxable", path=path)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("19258,84", 19258.84),
        ("1 218 255", 1218255),
        ("1.234,5", 1234.5),
        ("42", 42.0),
        ("0.32", 0.32),
    ],
)
def test_parse_numbers_belgian_formats(raw, expected):
    nums, flags = parse_numbers(pd.Series([raw]), source="t", field="f")
    assert nums.iloc[0] == pytest.approx(expected)
    assert flags.iloc[0] is None


def test_missing_layer_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="not in the data folder.*bxlplan fetch"):
        bxlplan.load("cru", tmp_path)


def test_no_data_folder(monkeypatch):
    monkeypatch.delenv("BXLPLAN_DATA", raising=False)
    with pytest.raises(DataError, match="BXLPLAN_DATA"):
        bxlplan.load("neighbourhoods")


def test_unknown_layer():
    with pytest.raises(
        bxlplan.ConfigError, match="unknown layer 'nope'.*neighbourhoods"
    ):
        bxlplan.load("nope", ".")


def test_user_polygons(tmp_path, tiny_units):
    path = _write_units(
        tmp_path, tiny_units.to_crs(4326).rename(columns={"mdrc": "id"})
    )
    areas = bxlplan.load_polygons(path)
    assert areas.crs.to_epsg() == 31370
    assert list(areas["area_id"]) == ["1", "2"]
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(148500, 169500)], crs=31370)
    with pytest.raises(DataError, match="must be polygons"):
        bxlplan.load_polygons(_write_units(tmp_path, pts, "pts.gpkg"))
    # back in Lambert 72 where they were drawn: the same two 1 km squares
    assert areas.area.tolist() == pytest.approx([1e6, 1e6], rel=1e-6)
    assert areas.geometry.iloc[0].equals_exact(tiny_units.geometry.iloc[0], 0.01)


def test_unknown_area_spec_names_the_choices(tmp_path):
    from bxlplan.loading.areas import load_areas

    with pytest.raises(DataError, match=r"unknown areas 'wards'.*cru, cqd"):
        load_areas("wards", tmp_path)
    with pytest.raises(DataError, match="grid size must be a number of metres"):
        load_areas("grid:fine", tmp_path)


def test_walking_speed_comes_from_the_catalog_only():
    import dataclasses

    from bxlplan.errors import ConfigError
    from bxlplan.loading.catalog import get_spec
    from bxlplan.loading.facilities import categories

    spec = get_spec("facilities")
    assert categories(spec)["pharmacy"]["threshold_m"] == 800  # 10 min at 4.8 km/h
    faster = {**spec.raw, "walking_speed_m_s": 1.5}
    assert (
        categories(dataclasses.replace(spec, raw=faster))["pharmacy"]["threshold_m"]
        == 900
    )
    unknown = {k: v for k, v in spec.raw.items() if k != "walking_speed_m_s"}
    with pytest.raises(ConfigError, match="walking_speed_m_s"):
        categories(dataclasses.replace(spec, raw=unknown))
