"""Exports: GIS files read back with pyogrio and rasterio, maps escaped and offline."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from bxlplan.errors import DataError
from bxlplan.exports.gis import (
    shapefile_names,
    write_csv,
    write_geojson,
    write_gpkg,
    write_shapefile,
)
from bxlplan.exports.maps import make_map, save_map

META = {"bxlplan_version": "test", "sources": {"x": "y"}}
EVIL = "<script>alert(1)</script>"


@pytest.fixture
def scored():
    return gpd.GeoDataFrame(
        {
            "area_id": ["1", "2", "3"],
            "name_fr": [EVIL, "Deux", "Trois"],
            "name_nl": ["Een", "Twee", "Drie"],
            "score_overall": [10.0, 55.5, np.nan],
            "access_pharmacy_within_800m_share": [0.5, 1.0, 0.0],
            "access_pharmacy_within_800m_count": [1.0, 2.0, 0.0],
        },
        geometry=[
            shapely.box(148000 + 1000 * i, 169000, 149000 + 1000 * i, 170000)
            for i in range(3)
        ],
        crs="EPSG:31370",
    )


def test_gpkg_layers_and_metadata(tmp_path, scored):
    path = write_gpkg(
        {"areas": scored, "other": scored.iloc[:1]}, tmp_path / "a.gpkg", META
    )
    assert [n for n, _ in pyogrio.list_layers(path)] == ["areas", "other"]
    back = pyogrio.read_dataframe(path, layer="areas")
    assert back.crs.to_epsg() == 31370 and len(back) == 3
    assert back["name_fr"].iloc[0] == EVIL  # data kept as it is in GIS files
    assert back["score_overall"].iloc[1] == 55.5 and np.isnan(
        back["score_overall"].iloc[2]
    )
    meta = pyogrio.read_info(path, layer="areas")["layer_metadata"]
    assert json.loads(meta["bxlplan"])["bxlplan_version"] == "test"


def test_never_overwrites_without_flag_and_leaves_no_partial_file(
    tmp_path, scored, monkeypatch
):
    path = write_gpkg({"areas": scored}, tmp_path / "a.gpkg", META)
    before = path.read_bytes()
    with pytest.raises(DataError, match="already exists.*--overwrite"):
        write_gpkg({"areas": scored}, path, META)
    # a failure after the first layer is written (disk full, GDAL error...)
    import bxlplan.exports.gis as gis

    real = gis.pyogrio.write_dataframe
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(gis.pyogrio, "write_dataframe", failing)
    with pytest.raises(OSError, match="disk full"):
        write_gpkg({"areas": scored, "second": scored}, path, META, overwrite=True)
    assert path.read_bytes() == before  # the good file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["a.gpkg"]  # no temp left


def test_geojson_is_rfc7946(tmp_path, scored):
    path = write_geojson(scored, tmp_path / "a.geojson", META)
    content = json.loads(path.read_text())
    assert "crs" not in content
    x, y = content["features"][0]["geometry"]["coordinates"][0][0]
    assert 4.2 < x < 4.5 and 50.7 < y < 51.0  # lon, lat
    back = pyogrio.read_dataframe(path)
    assert back.crs.to_epsg() == 4326 and len(back) == 3
    assert json.loads((tmp_path / "a.geojson.provenance.json").read_text())[
        "sources"
    ] == {"x": "y"}


def test_shapefile_names_are_unique_and_mapped(tmp_path, scored):
    names = shapefile_names(list(scored.columns.drop("geometry")))
    assert len({n.lower() for n in names.values()}) == len(names)
    assert all(len(n) <= 10 for n in names.values())
    path = write_shapefile(scored, tmp_path / "a.shp", META)
    back = pyogrio.read_dataframe(path)
    fields = (tmp_path / "a_fields.csv").read_text().splitlines()
    assert fields[0] == "short_name,full_name"
    mapping = dict(line.split(",") for line in fields[1:])
    full = back.rename(columns=mapping)
    assert full["access_pharmacy_within_800m_share"].tolist() == [0.5, 1.0, 0.0]
    assert full["access_pharmacy_within_800m_count"].tolist() == [1.0, 2.0, 0.0]
    assert back.crs.to_epsg() == 31370


def test_csv(tmp_path, scored):
    path = write_csv(scored, tmp_path / "a.csv", META)
    assert path.read_text().splitlines()[0].startswith("area_id,name_fr")


def test_map_escapes_text_from_data(tmp_path, scored):
    m = make_map(scored, "score_overall", lang="en")
    path = save_map(m, tmp_path / "m.html")
    page = path.read_text()
    assert EVIL not in page
    # HTML-escaped, then JSON-encoded by folium (& -> \u0026)
    assert "\\u0026lt;script\\u0026gt;alert(1)" in page
    assert "no data" in page  # the NaN area


def test_offline_map_is_self_contained(tmp_path, scored):
    path = save_map(
        make_map(scored, "access_pharmacy_within_800m_share", offline=True),
        tmp_path / "m.html",
        offline=True,
    )
    page = path.read_text()
    import re

    assert not re.findall(r'<script[^>]+src="http|<link[^>]+href="http', page)
    assert "L.map(" in page or "L.map (" in page
    assert "part des habitants" in page  # French label of the indicator


def test_unknown_indicator(scored):
    with pytest.raises(DataError, match="no column 'nope'"):
        make_map(scored, "nope")


@pytest.mark.pack
@pytest.mark.slow
def test_distance_rasters_read_back(ctx, tmp_path):
    import rasterio

    from bxlplan.exports.gis import write_distance_rasters

    (path,) = write_distance_rasters(
        ctx, tmp_path, resolution=250, categories=["pharmacy"]
    )
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 31370
        assert src.res == (250.0, 250.0)
        assert src.nodata == -1.0
        # four overview levels (GDAL reports the effective factor of the last one)
        assert len(src.overviews(1)) == 4 and src.overviews(1)[:3] == [2, 4, 8]
        assert src.compression.name.lower() == "deflate"
        tags = src.tags()
        assert tags["category"] == "pharmacy" and tags["unit"] == "m"
        assert tags["created_at"].startswith("20") and "pharmacy" in tags["parameters"]
        band = src.read(1)
        # a cell in the centre of Brussels: its value is the network distance from the
        # cell centre to the nearest pharmacy
        row, col = src.index(149_000, 170_000)
        x, y = src.xy(row, col)
    sub = ctx.facilities[ctx.facilities["category"] == "pharmacy"]
    expected = ctx.graph.nearest(
        ctx.graph.attach(np.array([shapely.Point(x, y)])),
        ctx.graph.attach(sub.geometry),
    )
    assert band[row, col] == pytest.approx(expected[0], rel=1e-5)
    assert band[0, 0] == -1.0  # the corner of the bounding box lies outside the region
    inside = band[band >= 0]
    assert np.isfinite(inside).all() and np.median(inside) < 1000  # forests lie far out


@pytest.mark.pack
@pytest.mark.slow
def test_cli_all_formats_and_offline_map(pack, tmp_path):
    from typer.testing import CliRunner

    from bxlplan.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["assess", "--units", "zru", "--data", str(pack), "--out", str(tmp_path),
                              "--format", "gpkg,geojson,shp,csv,tif", "--resolution", "500"])  # fmt: skip
    assert res.exit_code == 0, res.output
    for name in ("assessment.gpkg", "assessment.geojson", "assessment.shp", "assessment_fields.csv",
                 "assessment.csv", "rasters/distance_pharmacy.tif"):  # fmt: skip
        assert (tmp_path / name).is_file(), name
    layers = dict(pyogrio.list_layers(tmp_path / "assessment.gpkg"))
    assert {"areas", "facilities", "perimeter_zru"} <= set(layers)
    out = tmp_path / "map.html"
    res = runner.invoke(app, ["map", str(tmp_path / "assessment.gpkg"), "--out", str(out), "--offline",
                              "--lang", "nl", "--indicator", "score_services"])  # fmt: skip
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert "Nabijheid van voorzieningen" in page and "https://unpkg" not in page
    again = runner.invoke(
        app, ["map", str(tmp_path / "assessment.gpkg"), "--out", str(out)]
    )
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_shapefile_names_follow_the_documented_abbreviations():
    from bxlplan.exports.gis import short_name

    expected = {
        "access_pharmacy_within_800m_share": "acc_phar_s",
        "access_pharmacy_nearest_m": "acc_phar_d",
        "access_pharmacy_within_800m_count": "acc_phar_n",
        "access_green_space_large_gravity_1600m": "acc_grnl_g",
        "site_transit_stop_within_400m_land_share": "sit_stop_s",
        "mix_landuse_hill_q1": "lu_h_q1",
        "mix_activity_hill_wt_q2_mean": "act_hwt_q2",
        "score_overall": "sc_overall",
        "score_social_mix": "sc_socmix",
        "population_est": "pop_est",
        "area_id": "area_id",
    }
    assert {c: short_name(c) for c in expected} == expected
    # long unknown names still fit, and clashes are numbered, deterministically
    cols = ["a_very_long_unknown_column_name", "a_very_long_unknown_column_nam"]
    names = shapefile_names(cols)
    assert names == shapefile_names(cols)
    assert all(len(n) <= 10 for n in names.values())
    assert len({n.lower() for n in names.values()}) == 2
