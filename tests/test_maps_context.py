"""Maps with context (issue 11, item 1): the base map drawn from the data folder, tile
base maps only online, one map with many indicators (legends with units, words in the
map's language), popups that say why a value is missing. The browser side is in
test_browser.py."""

from __future__ import annotations

import html
import logging
import os

import folium
import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

from bxlplan.cli import app
from bxlplan.errors import ConfigError
from bxlplan.exports.basemap import add_basemap, add_context, context_layers
from bxlplan.exports.labels import column_label, ui
from bxlplan.exports.maps import make_map, save_map
from bxlplan.loading.facilities import categories

INDICATORS = [
    "score_overall",
    "access_pharmacy_within_800m_share",
    "access_green_space_large_nearest_m",
    "mix_landuse_entropy",
]


def box(i: int) -> shapely.Polygon:
    return shapely.box(148000 + 1000 * i, 169000, 149000 + 1000 * i, 170500)


@pytest.fixture(scope="module")
def areas() -> gpd.GeoDataFrame:
    """Four areas: scored, land use unmapped, pharmacies missing, uninhabited."""
    return gpd.GeoDataFrame(
        {"area_id": ["1", "2", "3", "4"], "name_fr": ["Un", "Deux", "Trois", "Quatre"],
         "name_nl": ["Een", "Twee", "Drie", "Vier"],
         "population_est": [1200.4, 3400.0, 5600.0, 0.0],
         "score_overall": [30.0, 55.0, 80.0, np.nan],
         "access_pharmacy_within_800m_share": [0.25, 0.5, np.nan, np.nan],
         "access_green_space_large_nearest_m": [350.0, 900.0, 1500.0, np.nan],
         "mix_landuse_entropy": [0.4, np.nan, 0.7, 0.2],
         "flags": ["", "landuse_unmapped", "missing:pharmacy", "uninhabited"]},
        geometry=[box(i) for i in range(4)], crs="EPSG:31370",
    )  # fmt: skip


def spec_of(m: folium.Map) -> dict:
    """The data of the areas' switch and legend (what the page's script draws)."""
    return next(c for c in m._children.values() if hasattr(c, "spec")).spec


def area_props(m: folium.Map) -> list[dict]:
    layer = next(c for c in m._children.values() if hasattr(c, "engine"))
    return [f["properties"] for f in layer.data["features"]]


def test_legends_carry_units_and_words_of_the_language(areas):
    for lang in ("fr", "nl", "en"):
        m = make_map(areas, indicators=INDICATORS, lang=lang, context=False)
        spec = spec_of(m)
        titles = [html.unescape(i["title"]) for i in spec["ind"]]
        units = [column_label(c, lang)[1] for c in INDICATORS]
        assert units[:3] == ["/100", "%", "m"]  # what the registry says
        for title, col, unit in zip(titles, INDICATORS, units, strict=True):
            label = column_label(col, lang)[0]
            assert title == (f"{label} ({unit})" if unit else label)
        words = html.unescape(spec["words"]["scheme"])
        assert words == ui("scheme_quantiles", lang)
    assert "quantiles" not in ui("scheme_quantiles", "nl")  # translated
    # the share's classes read as percentages, the distance's in metres
    rows = [html.unescape(r[1]) for r in spec["ind"][1]["rows"]]
    assert rows[0].endswith("%") and "m" in html.unescape(spec["ind"][2]["rows"][0][1])


def test_missing_values_say_why(areas):
    lang = "en"
    m = make_map(areas, indicators=INDICATORS, lang=lang, context=False)
    spec, props = spec_of(m), area_props(m)
    cols = [html.unescape(c["label"]) for c in spec["cols"]]
    reasons = [html.unescape(r) for r in spec["reasons"]]

    def why(area: int, column: str) -> str:
        j = cols.index(column_label(column, lang)[0])
        assert props[area]["v"][j] is None
        return reasons[props[area]["x"][str(j)]]

    assert why(3, "score_overall") == ui("reason_uninhabited", lang)
    assert why(1, "mix_landuse_entropy") == ui("reason_landuse_unmapped", lang)
    pharmacy = categories()["pharmacy"]["label"][lang]
    assert why(2, "access_pharmacy_within_800m_share") == (
        ui("reason_missing", lang).format(category=pharmacy)
    )
    # the uninhabited area is marked so (light grey, its own legend row); the
    # others are not, and its land-weighted value is still drawn
    assert [p.get("u") for p in props] == [None, None, None, 1]
    assert props[3]["v"][cols.index(column_label("mix_landuse_entropy", lang)[0])]
    rows = [html.unescape(r[1]) for r in spec["ind"][0]["rows"]]
    assert ui("uninhabited", lang) in rows and ui("no_data", lang) not in rows
    # flags in words, population first in the popup, as a whole number
    assert html.unescape(spec["flags"][props[3]["f"]]) == ui("reason_uninhabited", lang)
    first = spec["cols"][spec["pop"][0]]
    assert html.unescape(first["label"]) == column_label("population_est", lang)[0]
    assert first["kind"] == "whole" and props[0]["v"][spec["pop"][0]] == 1200
    kinds = {html.unescape(c["label"]): c["kind"] for c in spec["cols"]}
    assert kinds[column_label("score_overall", lang)[0]] == "score"
    assert kinds[column_label(INDICATORS[1], lang)[0]] == "share"


def test_one_area_or_equal_values(areas):
    one = areas.iloc[[0]]
    spec = spec_of(make_map(one, indicators=INDICATORS[:2], context=False))
    rows = [html.unescape(r[1]) for r in spec["ind"][0]["rows"]]
    assert rows == ["30"]  # not "30 – 30"
    same = areas.assign(access_pharmacy_within_800m_share=1.0, flags="")
    spec = spec_of(make_map(same, indicators=INDICATORS[:2], context=False))
    assert [html.unescape(r[1]) for r in spec["ind"][1]["rows"]] == ["100 %"]


def test_basemaps_only_online(areas, tmp_path):
    with pytest.raises(ConfigError, match="--basemap osm"):
        make_map(areas, offline=True, basemap="osm", context=False)
    with pytest.raises(ConfigError, match="unknown base map"):
        make_map(areas, basemap="google", context=False)
    osm = make_map(areas, basemap="osm", context=False).get_root().render()
    assert "tile.openstreetmap.org" in osm
    urbis = make_map(areas, basemap="urbis", lang="nl", context=False)
    page = urbis.get_root().render()
    assert "geoservices-urbis.irisnet.be" in page and "urbisNLGray" in page
    none = make_map(areas, basemap="none", context=False).get_root().render()
    assert "tileLayer" not in none
    assert add_basemap(folium.Map(tiles=None), None) is False
    # an offline map never loads a tile: the writer checks it
    path = save_map(make_map(areas, offline=True, context=False), tmp_path / "o.html",
                    offline=True)  # fmt: skip
    assert "tile.openstreetmap.org" not in path.read_text(encoding="utf-8")
    # the scale is metric only
    assert "imperial: false" in none


@pytest.mark.pack
def test_context_layers_of_the_pack(pack):
    layers = context_layers(pack)
    assert list(layers) == ["water", "green", "streets", "rail", "neighbourhoods",
                            "communes"]  # fmt: skip
    communes = layers["communes"]
    assert len(communes) == 19 and communes.crs.to_epsg() == 4326
    # each name goes inside its commune
    inside = [
        shapely.contains_xy(g.buffer(1e-4), lon, lat)
        for g, lat, lon in zip(communes.geometry, communes["label_lat"],
                               communes["label_lon"], strict=True)
    ]  # fmt: skip
    assert all(inside)
    assert set(layers["streets"].geom_type) <= {"LineString", "MultiLineString"}
    assert len(layers["rail"]) == 1  # merged into one feature
    assert context_layers(pack) is layers  # read once


@pytest.mark.pack
def test_add_context_names_language_and_bounds(pack):
    names = context_layers(pack)["communes"]
    for lang, col in (("fr", "name_fr"), ("nl", "name_nl")):
        m = folium.Map(tiles=None)
        assert add_context(m, pack, lang)
        page = html.unescape(m.get_root().render())
        assert all(name in page for name in names[col])
    # a small map draws only its surroundings
    whole = folium.Map(tiles=None)
    add_context(whole, pack, "fr")
    part = folium.Map(tiles=None)
    bounds = gpd.GeoSeries([box(1)], crs=31370).to_crs(4326).total_bounds
    add_context(part, pack, "fr", bounds=tuple(bounds))
    whole_page, part_page = whole.get_root().render(), part.get_root().render()
    assert len(part_page) < len(whole_page) / 2
    assert sum(n in html.unescape(part_page) for n in names["name_fr"]) < 19


def test_no_data_folder_draws_without_and_says_so(areas, monkeypatch, caplog):
    monkeypatch.delenv("BXLPLAN_DATA", raising=False)
    with caplog.at_level(logging.WARNING, logger="bxlplan.exports.basemap"):
        m = make_map(areas, offline=True)
    assert "without a base map" in caplog.text
    assert "bxlplan-label" not in m.get_root().render()


def test_cli_map_basemap_and_data(tmp_path, monkeypatch, areas):
    monkeypatch.chdir(tmp_path)
    pyogrio.write_dataframe(areas, tmp_path / "x.gpkg", layer="areas")
    bad = CliRunner().invoke(
        app, ["map", "x.gpkg", "--offline", "--basemap", "osm", "--out", "m.html"]
    )
    assert bad.exit_code != 0 and "--basemap" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "m.html").exists()


@pytest.mark.pack
def test_cli_map_draws_the_base_map_of_data(tmp_path, monkeypatch, areas, pack):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BXLPLAN_DATA", raising=False)
    pyogrio.write_dataframe(areas, tmp_path / "x.gpkg", layer="areas")
    res = CliRunner().invoke(
        app, ["map", "x.gpkg", "--offline", "--lang", "nl", "--data", str(pack),
              "--out", "m.html"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    page = html.unescape((tmp_path / "m.html").read_text(encoding="utf-8"))
    communes = context_layers(pack)["communes"]
    near = communes[communes.intersects(areas.to_crs(4326).union_all())]
    assert len(near) and all(name in page for name in near["name_nl"])
    assert sorted(os.listdir(tmp_path)) == ["m.html", "x.gpkg"]
