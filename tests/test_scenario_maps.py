"""Scenario change maps and variant comparisons (exports/change.py, scenarios/outputs.py):
changes computed by hand on tiny frames, classes centred on 0, readable cell names,
names from data shown as text, and the maps in a real browser (offline: no request)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from bxlplan.errors import DataError
from bxlplan.exports.change import (
    NEUTRAL,
    cell_changes,
    change_map,
    comparison_map,
    diverging_breaks,
    diverging_classes,
    diverging_palette,
    label_cells,
    signed_text,
)
from bxlplan.exports.maps import save_map
from tests.test_browser import Visit, browser  # noqa: F401 - the module's browser

EVIL = "<script>alert(1)</script>"
SIX_SEVEN = "{{ 6*7 }}"
X0, Y0 = 150000, 170000  # central Brussels, EPSG:31370


def _cells(values: dict[str, list[float]], ids: list[str] | None = None):
    """A row of 100 m cells ``square100_1``... with the given columns."""
    n = len(next(iter(values.values())))
    ids = ids or [f"square100_{i + 1}" for i in range(n)]
    order = [int(i.rsplit("_", 1)[1]) - 1 for i in ids]
    boxes = [shapely.box(X0 + 100 * i, Y0, X0 + 100 * i + 100, Y0 + 100) for i in order]
    return gpd.GeoDataFrame({"area_id": ids, **values}, geometry=boxes, crs=31370)


# --- the change, by hand --------------------------------------------------------------


def test_changes_are_after_minus_before_matched_by_id():
    before = _cells({"score_overall": [10.0, 40.0, np.nan, 70.0],
                     "access_pharmacy_within_800m_share": [0.5, 1.0, 0.0, 0.2]})  # fmt: skip
    # the same cells in another order: matched by area_id, not by position
    after = _cells(
        {"score_overall": [70.0, 5.0, 42.5, 13.0],
         "access_pharmacy_within_800m_share": [0.2, 0.5, 0.75, 0.25]},
        ids=["square100_4", "square100_3", "square100_2", "square100_1"],
    )  # fmt: skip
    ch = cell_changes(before, after)
    assert ch["area_id"].tolist() == after["area_id"].tolist()
    # d: 70 - 70, c: missing before, b: 42.5 - 40, a: 13 - 10
    np.testing.assert_array_equal(ch["score_overall_change"], [0.0, np.nan, 2.5, 3.0])
    np.testing.assert_allclose(
        ch["access_pharmacy_within_800m_share_change"], [0.0, 0.5, -0.25, -0.25]
    )
    np.testing.assert_array_equal(ch["score_overall_before"], [70.0, np.nan, 40, 10])
    assert ch.geometry.equals(after.geometry)


def test_changes_refuse_different_areas_or_columns():
    before = _cells({"score_overall": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match=r"1 area\(s\) of the 'before' side are not "
                       r"on the 'after' side \(area_id square100_3\)"):  # fmt: skip
        cell_changes(before, before.iloc[:2])
    twice = before.assign(area_id=["square100_1", "square100_1", "square100_2"])
    with pytest.raises(DataError, match="repeat area_id square100_1"):
        cell_changes(before, twice)
    with pytest.raises(DataError, match="no column 'score_services' in the areas"):
        cell_changes(before, before, ["score_services"])
    with pytest.raises(DataError, match="is not numeric"):
        cell_changes(before.assign(x="a"), before.assign(x="b"), ["x"])


def test_classes_are_symmetric_around_zero():
    edges = diverging_breaks([-5.0, 1.0, 7.3, np.nan], k=3)
    assert edges.tolist() == [-7.5, -5.0, -2.5, 0.0, 2.5, 5.0, 7.5]
    for values, k in (([0.02, -0.004], 2), ([-130.0], 4), ([3e-7, 1.0], 1)):
        e = diverging_breaks(values, k)
        assert len(e) == 2 * k + 1 and e[k] == 0
        np.testing.assert_array_equal(e, -e[::-1])
        assert e[-1] >= max(abs(v) for v in values)
    assert diverging_breaks([0.02, -0.004], 2).tolist() == [-0.02, -0.01, 0, 0.01, 0.02]
    assert diverging_breaks([0.0, 1e-12, np.nan]).tolist() == [0.0]  # no change
    # each class holds its edge away from 0; float noise is no change; -k-1: missing
    classes = diverging_classes([0.0, 1e-13, 2.5, 2.6, -0.1, -7.5, -9.0, np.nan], edges)
    assert classes.tolist() == [0, 0, 1, 2, -1, -3, -3, -4]


def test_palette_is_centred_on_a_neutral_colour():
    palette = diverging_palette(3)
    assert len(palette) == 7 and palette[3] == NEUTRAL
    rgb = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in palette]
    assert all(r > b for r, _, b in rgb[:3])  # decreases in reds
    assert all(b > r for r, _, b in rgb[4:])  # increases in blues
    # darker away from 0 on both sides
    light = [sum(c) for c in rgb]
    assert light[0] < light[1] < light[2] < light[3] > light[4] > light[5] > light[6]


def test_signed_values_and_units():
    assert signed_text(2.5, "/100") == "+2.5 /100"
    assert signed_text(-0.05, "%", "en") == "−5.0 pts"  # shares in points
    assert signed_text(-0.05, "%", "nl") == "−5.0 ptn"
    assert signed_text(120.4, "m") == "+120 m"
    assert signed_text(0.0, "/100") == "0 /100"
    assert signed_text(0.001, "/100") == "+<0.1 /100"  # never a bare "+0"
    assert signed_text(np.nan, "/100") == ""


# --- readable cells -------------------------------------------------------------------


@pytest.fixture
def places():
    hoods = gpd.GeoDataFrame(
        {"code": [85, 15], "name_fr": ["Helmet", "Gare de l'Ouest"],
         "name_nl": ["Helmet", "Weststation"]},
        geometry=[shapely.box(X0, Y0, X0 + 200, Y0 + 100),
                  shapely.box(X0 + 200, Y0, X0 + 300, Y0 + 100)],
        crs=31370,
    )  # fmt: skip
    communes = gpd.GeoDataFrame(
        {"name_fr": ["Schaerbeek"], "name_nl": ["Schaarbeek"]},
        geometry=[shapely.box(X0, Y0, X0 + 200, Y0 + 100)],
        crs=31370,
    )
    return hoods, communes


def test_cells_are_named_by_pole_number_commune_and_neighbourhood(places):
    hoods, communes = places
    cells = _cells({"score_overall": [1.0, 2.0, 3.0, 4.0]},
                   ids=["square100_1", "square100_2", "square100_3", "square100_264"])  # fmt: skip
    named = label_cells(cells, hoods, communes, prefix="Josaphat")
    assert named["name_fr"].tolist() == [
        "Josaphat – maille 1, Schaerbeek / Helmet",
        "Josaphat – maille 2, Schaerbeek / Helmet",
        "Josaphat – maille 3, Gare de l'Ouest",  # in no commune of the frame
        "Josaphat – maille 264, hors de la Région",
    ]
    assert named["name_nl"].iloc[0] == "Josaphat – cel 1, Schaarbeek / Helmet"
    assert named["neighbourhood_code"].tolist()[:3] == [85, 85, 15]
    assert named["neighbourhood_code"].isna().iloc[3]
    assert named["area_id"].tolist() == cells["area_id"].tolist()  # ids kept
    with pytest.raises(DataError, match="reproject"):
        label_cells(cells.to_crs(4326), hoods)


# --- maps: escaped text and the browser -----------------------------------------------


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    """A scenario change map and a comparison map on tiny frames, with hostile names
    (cells, facilities, variants), saved offline, without the base map."""
    folder = tmp_path_factory.mktemp("change_maps")
    hoods = gpd.GeoDataFrame(
        {"code": [85], "name_fr": [f"Helmet {SIX_SEVEN}"], "name_nl": [EVIL]},
        geometry=[shapely.box(X0 - 100, Y0 - 100, X0 + 900, Y0 + 200)], crs=31370,
    )  # fmt: skip
    scores = {"score_overall": [50.0, 60.0, 70.0, 40.0, np.nan, 55.0],
              "score_services": [50.0, 50.0, 50.0, 50.0, 50.0, 50.0]}  # fmt: skip
    before = label_cells(_cells(scores), hoods, prefix=f"P {SIX_SEVEN}")
    after = before.assign(
        score_overall=[53.0, 60.0, 62.0, 48.0, 30.0, 54.0], score_services=50.0
    )
    facilities = gpd.GeoDataFrame(
        {"name": [EVIL, f"F {SIX_SEVEN}", "sport (Pole)"],
         "category": ["primary_school", "childcare", "sport"],
         "capacity": [450.0, None, 20.0]},
        geometry=[shapely.Point(X0 + 250, Y0 + 50)] * 2 + [shapely.Point(X0 + 450, Y0 + 50)],
        crs=31370,
    )  # fmt: skip
    perimeter = gpd.GeoDataFrame(
        geometry=[shapely.box(X0 + 100, Y0, X0 + 400, Y0 + 100)], crs=31370
    )
    m = change_map(
        before, after, ["score_overall", "score_services"], facilities=facilities,
        perimeters={f"Pole {SIX_SEVEN}": perimeter}, offline=True, context=False,
    )  # fmt: skip
    scenario = save_map(m, folder / "map.html", offline=True)
    variants = {"a": before, f"b {SIX_SEVEN}": after}
    c = comparison_map(
        variants, ["score_overall"], facilities={EVIL: facilities.iloc[:1]},
        perimeters={"a": perimeter}, offline=True, context=False, lang="en",
    )  # fmt: skip
    comparison = save_map(c, folder / "comparison.html", offline=True)
    centre = after.geometry.centroid.to_crs(4326)
    return {
        "scenario": scenario, "scenario_js": m.get_name(), "comparison": comparison,
        "cells": [(p.y, p.x) for p in centre],
    }  # fmt: skip


def test_names_from_data_are_text_in_the_files(maps):
    for key in ("scenario", "comparison"):
        page = maps[key].read_text(encoding="utf-8")
        assert EVIL not in page and SIX_SEVEN not in page
        # escaped for HTML, then JSON-encoded in the layers' data (& as \u0026)
        assert "lt;script\\u0026gt;alert(1)" in page
        assert "#123;\\u0026#123; 6*7 \\u0026#125;" in page
    page = maps["comparison"].read_text(encoding="utf-8")
    assert "Difference (b &#123;&#123; 6*7 &#125;&#125; − a)" in page


PAYLOADS = [
    "{{ lipsum.__globals__.os.mkdir(range.__name__) }}",
    "{% for x in range(3) %}{{ x }}{% endfor %}",
    "{{", "{%", "{#",  # lone delimiters
    "</script><script>alert(1)</script>",
]  # fmt: skip
# harmless inside JSON strings (where the data goes), fatal in a JavaScript template
# literal (folium.Tooltip's text): these are opened in Chromium
JS_PAYLOADS = ["`); alert(1); (`", "${alert(1)}"]


@pytest.mark.parametrize("payload", PAYLOADS + JS_PAYLOADS)
def test_every_text_path_is_inert(payload, tmp_path, monkeypatch, request):
    """Pole, neighbourhood, commune, facility name and category, perimeter and variant
    names holding template or script syntax: the maps save, nothing is evaluated."""
    monkeypatch.chdir(tmp_path)  # where mkdir(range.__name__) would create "range"
    t = {k: f"{k}:{payload}" for k in ("pole", "hood", "commune", "fac", "cat", "per",
                                       "var")}  # fmt: skip
    hoods = gpd.GeoDataFrame(
        {"code": [1], "name_fr": [t["hood"]], "name_nl": [t["hood"]]},
        geometry=[shapely.box(X0, Y0, X0 + 300, Y0 + 100)], crs=31370,
    )  # fmt: skip
    communes = hoods.drop(columns="code").assign(name_fr=t["commune"])
    before = label_cells(
        _cells({"score_overall": [1.0, 2.0, 3.0]}), hoods, communes, prefix=t["pole"]
    )
    after = before.assign(score_overall=[2.0, 2.0, 1.0])
    fac = gpd.GeoDataFrame(
        {"name": [t["fac"]], "category": [t["cat"]], "capacity": [3.0]},
        geometry=[shapely.Point(X0 + 50, Y0 + 50)], crs=31370,
    )  # fmt: skip
    outline = {t["per"]: before.iloc[[0]]}
    maps = [
        change_map(before, after, ["score_overall"], facilities=fac,
                   perimeters=outline, offline=True, context=False),
        comparison_map({"a": before, t["var"]: after}, ["score_overall"],
                       facilities={t["var"]: fac}, perimeters=outline, offline=True,
                       context=False),
    ]  # fmt: skip
    paths = [
        save_map(m, tmp_path / f"{i}.html", offline=True) for i, m in enumerate(maps)
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.html", "1.html"]
    for path in paths:
        page = path.read_text("utf-8")
        assert "alert(1)</script>" not in page
        if payload in JS_PAYLOADS:
            visit = Visit(request.getfixturevalue("browser"), path)
            assert visit.dialogs == [] and visit.errors == []
            assert payload in visit.page.inner_text(".bxlplan-new-facility")
        else:
            assert payload not in page  # only as escaped text


def test_change_map_in_chromium(browser, maps):  # noqa: F811 - the imported fixture
    visit = Visit(browser, maps["scenario"])
    page = visit.page
    assert visit.errors == [] and visit.dialogs == []
    assert visit.network() == []  # offline: nothing but the file itself
    # the change layer: in the layer control, drawn with reds, blues and the neutral
    control = page.text_content(".leaflet-control-layers")
    assert "Score global : évolution (après − avant)" in control
    fills = set(
        page.eval_on_selector_all(
            "path.leaflet-interactive", "ps => ps.map(p => p.getAttribute('fill'))"
        )
    )
    palette = diverging_palette(3)
    assert palette[3] in fills  # no change (the second cell)
    assert fills & set(palette[:3]) and fills & set(palette[4:])  # down and up
    legend = page.locator(".bxlplan-change-legend").first
    assert legend.is_visible()
    text = legend.inner_text()
    # changes +3, 0, -8, +8, missing, -1: classes of 5 (8 / 3 rounded up) up to 15
    assert "pas de changement" in text and "+5 – +10 /100" in text
    assert "−10 – −5 /100" in text and "pas de donnée" in text
    # the new facilities, labelled with names and capacities (missing: said so)
    labels = " ".join(page.locator(".bxlplan-new-facility").all_inner_texts())
    assert EVIL in labels and f"F {SIX_SEVEN}" in labels
    assert "450 places" in labels and "inconnue (capacité non fournie)" in labels
    assert "Sport (Pole) (20 places)" in labels  # the category's label, not its code
    # a cell's popup names the pole, the cell and its neighbourhood
    xy = page.evaluate(
        "([name, lat, lon]) => { const m = window[name];"
        " const p = m.latLngToContainerPoint(L.latLng(lat, lon));"
        " const r = m.getContainer().getBoundingClientRect();"
        " return [r.left + p.x, r.top + p.y]; }",
        [maps["scenario_js"], *maps["cells"][0]],
    )
    page.mouse.click(*xy)
    page.wait_for_selector(".leaflet-popup-content", timeout=5_000)
    popup = page.inner_text(".leaflet-popup-content")
    assert f"P {SIX_SEVEN} – maille 1, Helmet {SIX_SEVEN}" in popup
    assert "50.0 /100 → 53.0 /100 (+3.0 /100)" in popup
    # switching the change layer off hides its legend
    page.keyboard.press("Escape")
    page.hover(".leaflet-control-layers")
    page.locator(".leaflet-control-layers").get_by_text(
        "Score global : évolution (après − avant)"
    ).click()
    page.wait_for_timeout(200)
    assert not legend.is_visible()
    assert visit.errors == [] and visit.dialogs == [] and visit.network() == []


def test_comparison_map_in_chromium(browser, maps):  # noqa: F811
    visit = Visit(browser, maps["comparison"])
    assert visit.errors == [] and visit.dialogs == [] and visit.network() == []
    control = visit.page.text_content(".leaflet-control-layers")
    assert f"Overall score: difference (b {SIX_SEVEN} − a)" in control
    assert "Perimeters: a" in control and "New facilities" in control
    labels = visit.page.inner_text(".bxlplan-new-facility")
    assert f"{EVIL}: {EVIL} (450 places)" in labels  # variant: name (capacity)
    legend = visit.page.inner_text(".bxlplan-change-legend")
    assert f"Difference (b {SIX_SEVEN} − a)" in legend and "no change" in legend


# --- the scenario outputs on the reference pack ---------------------------------------


@pytest.mark.pack
@pytest.mark.slow
def test_scenario_and_comparison_outputs_on_the_pack(ctx, tmp_path):
    """Two variants on one perimeter: the 'change' layer is after minus before of the
    cell layers, cells are named by pole and neighbourhood, and the comparison map
    draws the difference with one shared perimeter."""
    import pyogrio

    from bxlplan.scenarios import compare_scenarios, write_comparison, write_scenario

    root = Path(__file__).resolve().parent.parent / "scenarios"
    table, results = compare_scenarios(
        [root / "josaphat.yaml", root / "josaphat_more_social.yaml"], ctx
    )
    write_scenario(results[0], tmp_path)
    gpkg = tmp_path / "josaphat" / "scenario.gpkg"
    assert "change" in pyogrio.list_layers(gpkg)[:, 0]
    before, after, change = (
        gpd.read_file(gpkg, layer=n) for n in ("cells_before", "cells_after", "change")
    )
    np.testing.assert_allclose(
        change["score_overall_change"],
        after["score_overall"] - before["score_overall"],
        equal_nan=True,
    )
    assert change["name_fr"].str.startswith("Josaphat – maille ").all()
    hoods = set(ctx.neighbourhoods["name_fr"])
    assert change["neighbourhood_fr"].dropna().isin(hoods).all()
    assert change["neighbourhood_fr"].notna().mean() > 0.9
    page = (tmp_path / "josaphat" / "map.html").read_text(encoding="utf-8")
    assert "bxlplan-change-legend" in page and "Évolution (après − avant)" in page
    assert "cole fondamentale Josaphat (programme)" in page  # \u00c9cole in JSON

    write_comparison(table, results, tmp_path)
    page = (tmp_path / "comparison_map.html").read_text(encoding="utf-8")
    assert "Différence (josaphat_more_social − josaphat)" in page  # the legend
    # one shared perimeter: a single outline, named after the pole
    assert page.count("P\\u00e9rim\\u00e8tres: ") == 1
