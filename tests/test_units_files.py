"""Unseen unit layers (`assess --units FILE`): ids, names, odd properties and places
are checked before any preparation (issue 10, item 8)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from typer.testing import CliRunner

from bxlplan.cli import app
from bxlplan.errors import DataError
from bxlplan.loading.areas import load_areas

pytestmark = pytest.mark.pack

CENTRE = (148_000, 169_000)  # Lambert 72, central Brussels
ANTWERP = (152_000, 212_000)
GHENT = (105_000, 194_000)


def _squares(origins, **fields) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        fields,
        geometry=[shapely.box(x, y, x + 500, y + 500) for x, y in origins],
        crs="EPSG:31370",
    )


def _write(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    gdf.to_file(path)
    return path


def test_a_belgian_layer_is_told_to_clip_not_that_its_crs_is_wrong(pack, tmp_path):
    gdf = _squares([CENTRE, ANTWERP, GHENT, (ANTWERP[0] + 600, ANTWERP[1])],
                   NIS=["21004", "11002", "44021", "11003"])  # fmt: skip
    path = _write(gdf.to_crs(4326), tmp_path / "belgium.geojson")
    with pytest.raises(DataError) as err:
        load_areas(str(path), pack)
    msg = str(err.value)
    assert "3 of 4 features lie outside the Brussels region" in msg
    assert "Clip or filter" in msg and "probably wrong" not in msg


def test_a_few_units_outside_the_region_are_counted(pack, tmp_path):
    gdf = _squares(
        [CENTRE, (CENTRE[0] + 600, CENTRE[1]), ANTWERP], code=["a", "b", "c"]
    )
    with pytest.raises(DataError, match="1 of 3 units lie outside the Brussels region"):
        load_areas(str(_write(gdf, tmp_path / "u.gpkg")), pack)


def test_id_and_name_fields_are_detected_case_insensitively(pack, tmp_path):
    gdf = _squares([CENTRE, (CENTRE[0] + 600, CENTRE[1])], NIS=[21004, 21001],
                   NAAM=["Brussel", "Anderlecht"])  # fmt: skip
    areas = load_areas(str(_write(gdf, tmp_path / "c.gpkg")), pack)
    assert list(areas["area_id"]) == ["21004", "21001"]
    assert list(areas["name_fr"]) == ["Brussel", "Anderlecht"]
    assert areas.attrs["bxlplan"]["id_field"] == "NIS"


def test_given_fields_win_and_a_wrong_one_lists_the_fields(pack, tmp_path):
    gdf = _squares([CENTRE, (CENTRE[0] + 600, CENTRE[1])], code=["x", "y"],
                   ref=["r1", "r2"], titre=["Un", "Deux"])  # fmt: skip
    path = str(_write(gdf, tmp_path / "c.gpkg"))
    areas = load_areas(path, pack, id_field="REF", name_field="titre")
    assert list(areas["area_id"]) == ["r1", "r2"] and list(areas["name_nl"]) == [
        "Un",
        "Deux",
    ]
    with pytest.raises(
        DataError, match=r"no field 'nope' for the identifier.*code, ref"
    ):
        load_areas(path, pack, id_field="nope")


def test_list_valued_properties_become_text_with_a_note(pack, tmp_path):
    feats = [
        {"type": "Feature",
         "properties": {"id": i, "tags": ["a", "b"], "meta": {"k": i}, "name": f"U{i}"},
         "geometry": shapely.geometry.mapping(shapely.box(x, 169_000, x + 500, 169_500))}
        for i, x in enumerate((148_000, 148_600))
    ]  # fmt: skip
    doc = {"type": "FeatureCollection", "features": feats,
           "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::31370"}}}  # fmt: skip
    path = tmp_path / "lists.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    areas = load_areas(str(path), pack)
    assert areas["tags"].iloc[0] == '["a", "b"]'
    assert any("holds lists or objects" in r for r in areas.attrs["bxlplan"]["report"])


def test_repeated_ids_are_refused_with_the_field(pack, tmp_path):
    gdf = _squares([CENTRE, (CENTRE[0] + 600, CENTRE[1])], code=["x", "x"])
    with pytest.raises(DataError, match="field 'code' are empty or repeat \\(x\\)"):
        load_areas(str(_write(gdf, tmp_path / "d.gpkg")), pack)


def test_cli_refuses_units_outside_before_preparing(pack, tmp_path):
    gdf = _squares([CENTRE, ANTWERP], code=["in", "out"])
    path = _write(gdf, tmp_path / "u.gpkg")
    r = CliRunner().invoke(app, ["assess", "--units", str(path), "--data", str(pack),
                                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert r.exit_code == 2
    assert "1 of 2 units lie outside" in r.output
    assert "preparing" not in r.output and not (tmp_path / "out").exists()
