"""The offline maps in a real browser: headless Chromium (Debian package) driven by
Playwright. No console error, no network request, not blank, the legend's lists show
what is drawn, text from data is shown as text (no script runs); with the base map:
commune names visible, the indicator switch changes the legend, an uninhabited unit's
popup says why its values are missing; the size budgets."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from bxlplan.exports.maps import make_map, save_map

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        # CI (BXLPLAN_REQUIRE_PACK=1) installs chromium: there a missing browser fails
        if os.environ.get("BXLPLAN_REQUIRE_PACK"):
            pytest.fail("chromium is required in CI (apt-get install chromium)")
        pytest.skip("chromium not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield b
        b.close()


class Visit:
    """Open a local page and record console errors, page errors, requests, dialogs."""

    def __init__(self, browser, path: Path) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page(viewport={"width": 1000, "height": 700})
        self.page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type == "error" else None,
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(path.resolve().as_uri(), wait_until="load", timeout=60_000)
        # SVG paths, or a canvas for large maps (prefer_canvas)
        self.page.wait_for_selector(
            ".leaflet-interactive, .leaflet-overlay-pane canvas",
            state="attached",
            timeout=60_000,
        )

    def network(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:"))]

    def pixels(self) -> np.ndarray:
        from PIL import Image

        png = self.page.screenshot()
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _colours(img: np.ndarray) -> int:
    return len(np.unique(img.reshape(-1, 3) // 8, axis=0))


@pytest.fixture
def small_map(tmp_path):
    areas = gpd.GeoDataFrame(
        {
            "area_id": ["1", "2", "3", "4"],
            "name_fr": [EVIL, "Deux", "Trois", "Quatre"],
            "name_nl": ["Een", "Twee", "Drie", "Vier"],
            "score_overall": [10.0, 40.0, 70.0, np.nan],
        },  # fmt: skip
        geometry=[
            shapely.box(148000 + 1000 * i, 169000, 149000 + 1000 * i, 170500)
            for i in range(4)
        ],
        crs="EPSG:31370",
    )
    zone = gpd.GeoDataFrame(
        {"category": ["pharmacy"], "threshold_m": [800], "population_est": [10.0]},
        geometry=[shapely.box(149200, 169200, 151800, 170300)], crs="EPSG:31370",
    )  # fmt: skip
    m = make_map(
        areas, "score_overall", shortage=zone, offline=True, lang="fr", context=False
    )
    return save_map(m, tmp_path / "map.html", offline=True)


def test_offline_map_in_chromium(browser, small_map):
    visit = Visit(browser, small_map)
    assert visit.errors == []
    assert visit.network() == []  # nothing but the file itself
    before = visit.pixels()
    assert _colours(before) > 5  # not blank: choropleth classes, legend, controls
    # the legend shows the classes
    assert "Score global" in visit.page.inner_text(".bxlplan-legend")
    # show the shortage zones of a category (chosen in the legend): the drawing changes
    zones = visit.page.locator(".bxlplan-chooser", has_text="Zone de carence")
    zones.locator("select").select_option(label="Pharmacie (> 800 m)")
    visit.page.mouse.move(5, 5)
    visit.page.wait_for_timeout(300)
    after = visit.pixels()
    assert (
        np.abs(after.astype(int) - before.astype(int)).sum(axis=2) > 30
    ).sum() > 1000


def test_text_from_data_is_shown_as_text(browser, small_map):
    visit = Visit(browser, small_map)
    # hover the first area (the one named <script>...): the tooltip shows the text
    box = visit.page.locator("path.leaflet-interactive").first.bounding_box()
    visit.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    visit.page.wait_for_selector(".leaflet-tooltip", timeout=5_000)
    assert EVIL in visit.page.inner_text(".leaflet-tooltip")
    assert visit.dialogs == []  # no alert ran
    assert visit.errors == []


SIX_SEVEN = "{{ 6*7 }}"
MKDIR = "{{ lipsum.__globals__.os.mkdir(range.__name__) }}"


@pytest.fixture
def template_map(tmp_path, monkeypatch):
    """Template syntax in every text path: areas, facilities, zones, pole, legend,
    attribution. Returns the page, the map's JavaScript name and where things are."""
    import bxlplan.exports.maps as maps

    monkeypatch.chdir(tmp_path)  # where mkdir(range.__name__) would create "range"
    real = maps.read_catalog_file
    monkeypatch.setattr(
        maps, "read_catalog_file",
        lambda name: {**real(name), "attribution": f"Src {SIX_SEVEN}"}
        if name == "labels.yaml" else real(name),
    )  # fmt: skip
    boxes = [
        shapely.box(148000 + 1000 * i, 169000, 149000 + 1000 * i, 170500)
        for i in range(3)
    ]
    areas = gpd.GeoDataFrame(
        {"area_id": ["1", "2", "3"], "name_fr": [f"A {SIX_SEVEN}", "Deux", "Trois"],
         "name_nl": [MKDIR, "Twee", "Drie"], f"I {SIX_SEVEN}": [10.0, 40.0, 70.0]},
        geometry=boxes, crs="EPSG:31370",
    )  # fmt: skip
    facilities = gpd.GeoDataFrame(
        {"facility_id": ["osm:1"], "category": [f"C {SIX_SEVEN}"],
         "name": [f"F {SIX_SEVEN}"]},
        geometry=[shapely.Point(150500, 169750)], crs="EPSG:31370",
    )  # fmt: skip
    zone = gpd.GeoDataFrame(
        {"category": [f"Z {SIX_SEVEN}"], "threshold_m": [800]},
        geometry=[boxes[1]], crs="EPSG:31370",
    )  # fmt: skip
    perimeter = gpd.GeoDataFrame(geometry=[boxes[2]], crs="EPSG:31370")
    m = make_map(
        areas, f"I {SIX_SEVEN}", shortage=zone, facilities=facilities,
        perimeters={f"P {SIX_SEVEN}": perimeter}, offline=True, lang="fr",
        context=False,
    )  # fmt: skip
    path = save_map(m, tmp_path / "map.html", offline=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.html"]
    where = {
        "area": areas.geometry.iloc[[0]].centroid.to_crs(4326).iloc[0],
        "facility": facilities.to_crs(4326).geometry.iloc[0],
    }
    return path, m.get_name(), {k: (p.y, p.x) for k, p in where.items()}


def _point(visit: Visit, map_name: str, latlon: tuple[float, float]) -> tuple:
    """Where a place is drawn in the page (CSS pixels)."""
    xy = visit.page.evaluate(
        "([name, lat, lon]) => { const m = window[name];"
        " const p = m.latLngToContainerPoint(L.latLng(lat, lon));"
        " const r = m.getContainer().getBoundingClientRect();"
        " return [r.left + p.x, r.top + p.y]; }",
        [map_name, *latlon],
    )
    return xy[0], xy[1]


def test_template_syntax_from_data_is_shown_as_text(browser, template_map):
    path, map_name, where = template_map
    visit = Visit(browser, path)
    assert visit.errors == [] and visit.dialogs == []
    legend = visit.page.inner_text(".bxlplan-legend")
    assert f"I {SIX_SEVEN}" in legend and "classes : quantiles" in legend
    assert f"Src {SIX_SEVEN}" in visit.page.inner_text(".leaflet-control-attribution")
    control = visit.page.text_content(".leaflet-control-layers")
    assert f"Périmètres: P {SIX_SEVEN}" in control
    # categories of zones and facilities, named from data, are chosen in the legend
    choosers = visit.page.text_content(".bxlplan-choosers")
    assert f"Z {SIX_SEVEN} (> 800 m)" in choosers and f"C {SIX_SEVEN}" in choosers
    # the area's tooltip (name, indicator) and popup (both names)
    visit.page.mouse.move(*_point(visit, map_name, where["area"]))
    visit.page.wait_for_selector(".leaflet-tooltip", timeout=5_000)
    tooltip = visit.page.inner_text(".leaflet-tooltip")
    assert f"A {SIX_SEVEN}" in tooltip and f"I {SIX_SEVEN}" in tooltip
    visit.page.mouse.click(*_point(visit, map_name, where["area"]))
    visit.page.wait_for_selector(".leaflet-popup-content", timeout=5_000)
    popup = visit.page.inner_text(".leaflet-popup-content")
    assert f"A {SIX_SEVEN}" in popup and MKDIR in popup
    visit.page.keyboard.press("Escape")
    # a facility's tooltip, once its category (named from data) is chosen
    facilities = visit.page.locator(".bxlplan-chooser", has_text="Équipements")
    facilities.locator("select").select_option(label=f"C {SIX_SEVEN}")
    visit.page.mouse.move(5, 5)
    visit.page.wait_for_timeout(300)
    visit.page.mouse.move(*_point(visit, map_name, where["facility"]))
    visit.page.wait_for_function(
        "t => [...document.querySelectorAll('.leaflet-tooltip')]"
        ".some(e => e.innerText.includes(t))",
        arg=f"F {SIX_SEVEN}",
        timeout=5_000,
    )
    # nothing anywhere was evaluated
    body = visit.page.text_content("body")
    assert not [
        t for t in ("A 42", "I 42", "F 42", "P 42", "Z 42", "C 42") if t in body
    ]
    assert visit.errors == [] and visit.dialogs == []


@pytest.fixture(scope="module")
def context_map(pack, tmp_path_factory):
    """Four areas in central Brussels on the base map of the pack, in Dutch: three
    scored, one uninhabited (no scores: its popup must say why)."""
    boxes = [
        shapely.box(148000 + 1000 * i, 169000, 149000 + 1000 * i, 170500)
        for i in range(4)
    ]
    areas = gpd.GeoDataFrame(
        {"area_id": ["1", "2", "3", "4"], "name_fr": ["Un", "Deux", "Trois", "Quatre"],
         "name_nl": ["Een", "Twee", "Drie", "Vier"],
         "population_est": [1200.0, 3400.0, 5600.0, 0.0],
         "score_overall": [30.0, 55.0, 80.0, np.nan],
         "score_services": [70.0, 40.0, 10.0, np.nan],
         "access_pharmacy_within_800m_share": [0.25, 0.5, 0.95, np.nan],
         "flags": ["", "", "missing:childcare", "uninhabited"]},
        geometry=boxes, crs="EPSG:31370",
    )  # fmt: skip
    m = make_map(areas, "score_overall", offline=True, lang="nl", data=pack)
    path = save_map(m, tmp_path_factory.mktemp("context") / "map.html", offline=True)
    centres = areas.geometry.centroid.to_crs(4326)
    return path, m.get_name(), [(p.y, p.x) for p in centres]


@pytest.mark.pack
def test_context_map_offline_names_switch_and_reasons(browser, pack, context_map):
    """Issue 11 item 1: commune names visible (in the map's language), no request
    to the network, the indicator switch changes the legend, and an uninhabited
    unit's popup says "n/a (reason)"."""
    from bxlplan import load
    from bxlplan.exports.labels import column_label, ui

    path, map_name, centres = context_map
    visit = Visit(browser, path)
    assert visit.errors == [] and visit.network() == []  # offline: the file only
    # commune names, in Dutch, drawn inside the window
    dutch = set(load("communes", pack)["name_nl"])
    labels = visit.page.locator(".bxlplan-label")
    shown = [
        labels.nth(i).inner_text()
        for i in range(labels.count())
        if labels.nth(i).is_visible()
        and _inside(labels.nth(i).bounding_box(), 1000, 700)
    ]
    assert shown and set(shown) <= dutch, shown
    # the switch: another indicator, another legend (with its unit)
    before = visit.page.inner_text(".bxlplan-legend .bxlplan-classes")
    label, unit = column_label("access_pharmacy_within_800m_share", "nl")
    visit.page.select_option(".bxlplan-switch", label=label)
    after = visit.page.inner_text(".bxlplan-legend .bxlplan-classes")
    assert after != before and label in after and f"({unit})" in after
    assert column_label("score_overall", "nl")[0] in before and "(/100)" in before
    # the uninhabited unit: its popup gives the reason of each missing value
    visit.page.mouse.click(*_point(visit, map_name, centres[3]))
    visit.page.wait_for_selector(".leaflet-popup-content", timeout=5_000)
    popup = visit.page.inner_text(".leaflet-popup-content")
    assert f"{ui('na', 'nl')} ({ui('reason_uninhabited', 'nl')})" in popup
    assert "Vier" in popup and ui("population", "nl") in popup
    assert visit.errors == []


def _inside(box: dict | None, width: int, height: int) -> bool:
    return bool(box) and 0 <= box["x"] < width and 0 <= box["y"] < height


@pytest.mark.pack
@pytest.mark.slow
def test_neighbourhood_and_grid_maps_budgets(browser, ctx, tmp_path):
    """Issue 11 budgets, with the base map: neighbourhoods under 3 MB, the 100 m grid
    under 12 MB; both drawn without error or request (the drawing time is measured
    in benchmarks/bench_maps.py)."""
    from bxlplan.loading.areas import load_areas, make_grid
    from bxlplan.scoring import assess

    hoods = assess(load_areas("neighbourhoods", ctx.data), ctx)
    m = make_map(hoods.areas, "score_overall", shortage=hoods.shortage_zones,
                 facilities=ctx.facilities, offline=True, data=ctx.data)  # fmt: skip
    path = save_map(m, tmp_path / "hoods.html", offline=True)
    assert path.stat().st_size < 3e6
    visit = Visit(browser, path)
    assert visit.errors == [] and visit.network() == []
    assert _colours(visit.pixels()) > 5
    assert visit.page.locator(".bxlplan-label").count() >= 19  # the communes named

    grid = assess(make_grid(ctx.communes, 100), ctx)
    gpath = save_map(
        make_map(grid.areas, "score_services", offline=True, data=ctx.data),
        tmp_path / "grid.html",
        offline=True,
    )
    assert gpath.stat().st_size < 12e6
    visit = Visit(browser, gpath)
    assert visit.errors == [] and visit.network() == []
