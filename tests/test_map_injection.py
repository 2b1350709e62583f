"""Text from data never runs as a template in a map (issue 9, item 1), and the number
of classes is checked.

branca and folium render each element's output through Jinja a second time, so a name
holding ``{{ ... }}`` used to be evaluated (code execution) and a lone ``{{`` or ``{%``
crashed the map. Every text path gets its own tag here (``area_fr:``, ``pole:``, ...),
so each test shows that the text of that path reached the page, unevaluated.
"""

from __future__ import annotations

import html
import os
import re

import folium
import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

import bxlplan.exports.maps as maps
from bxlplan.cli import app
from bxlplan.errors import BxlplanError, ConfigError, DataError
from bxlplan.exports.maps import html_text, make_map, save_map
from bxlplan.exports.offline import inline_assets

MKDIR = "{{ lipsum.__globals__.os.mkdir(range.__name__) }}"
PAYLOADS = [
    MKDIR,
    "{{ 6*7 }}",
    "{% for x in range(3) %}{{ x }}{% endfor %}",
    "{{",  # lone delimiters: a jinja2 TemplateSyntaxError before
    "{%",
    "{#",
    "<script>alert(1)</script>{{ 6*7 }}",
]
# every text path of make_map, as make_map, the CLI and scenarios/outputs.py use it
TAGS = [
    "area_fr", "area_nl", "before_fr", "facility", "facility_cat", "zone_cat",
    "pole", "legend", "attribution",
]  # fmt: skip


def box(i: int) -> shapely.Polygon:
    return shapely.box(148000 + 1000 * i, 169000, 149000 + 1000 * i, 170500)


def evil_inputs(payload: str, indicator: str) -> dict:
    """make_map arguments with ``tag:payload`` in every place text can come from."""
    t = {tag: f"{tag}:{payload}" for tag in TAGS}
    areas = gpd.GeoDataFrame(
        {
            "area_id": ["1", "2", "3"],
            "name_fr": [t["area_fr"], "Deux", "Trois"],
            "name_nl": [t["area_nl"], "Twee", "Drie"],
            indicator: [10.0, 40.0, np.nan],
            "score_services": [5.0, 50.0, 90.0],
        },
        geometry=[box(i) for i in range(3)],
        crs="EPSG:31370",
    )
    before = areas.assign(name_fr=[t["before_fr"], "Deux", "Trois"])
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["osm:1", "osm:2", "green:3"],
            "category": ["pharmacy", t["facility_cat"], "park"],
            "name": [t["facility"], None, "Parc"],
        },
        geometry=[shapely.Point(148500, 169500), shapely.Point(149500, 169500),
                  shapely.Point(150500, 169500)],
        crs="EPSG:31370",
    )  # fmt: skip
    shortage = gpd.GeoDataFrame(
        {"category": [t["zone_cat"], "pharmacy"], "threshold_m": [800, 400]},
        geometry=[box(0), box(1)],
        crs="EPSG:31370",
    )
    # a pole's outline, keyed by its name as scenarios/outputs.py does
    perimeter = gpd.GeoDataFrame(
        {"name": [t["pole"]]}, geometry=[box(1)], crs="EPSG:31370"
    )
    return {
        "areas": areas,
        "indicator": indicator,
        "before": before,
        "facilities": facilities,
        "shortage": shortage,
        "perimeters": {t["pole"]: perimeter},
    }


@pytest.fixture
def evil_attribution(monkeypatch):
    """The catalog's attribution (a user may point BXLPLAN_LAYERS to their own)."""
    real = maps.read_catalog_file

    def patched(name: str) -> dict:
        content = real(name)
        if name == "labels.yaml":
            content = {**content, "attribution": f"attribution:{patched.payload}"}
        return content

    monkeypatch.setattr(maps, "read_catalog_file", patched)
    return patched


def shown(page: str) -> str:
    """The page as text, roughly: JSON escapes (& -> \\u0026), then HTML references."""
    page = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    return html.unescape(page)


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("label_from", ["column", "pattern"])
def test_no_text_path_runs_as_template(
    payload, label_from, tmp_path, monkeypatch, evil_attribution
):
    monkeypatch.chdir(tmp_path)  # where mkdir(range.__name__) would create "range"
    evil_attribution.payload = payload
    # the legend title, tooltip alias and layer name come from the indicator's label:
    # the column name itself, or a catalog pattern filled with a category from data
    indicator = (
        f"legend:{payload}"
        if label_from == "column"
        else f"access_legend:{payload}_within_800m_share"
    )
    m = make_map(**evil_inputs(payload, indicator), lang="nl")
    path = save_map(m, tmp_path / "map.html")
    assert os.listdir(tmp_path) == ["map.html"]  # no folder "range", nothing else
    text = shown(path.read_text(encoding="utf-8"))
    for tag in TAGS:
        assert f"{tag}:{payload}" in text, tag  # the path's text is there, as text
    assert "<script>alert(1)" not in path.read_text(encoding="utf-8")
    if payload == "{{ 6*7 }}":
        assert not [tag for tag in TAGS if f"{tag}:42" in text]


def test_scenario_and_comparison_maps_as_outputs_py_draws_them(tmp_path, monkeypatch):
    """write_scenario: pole name as the perimeter key, before/after cells; write_comparison:
    variant titles as area names and variant names as perimeter keys."""
    monkeypatch.chdir(tmp_path)
    cells = gpd.GeoDataFrame(
        {"area_id": ["a", "b"], "name_fr": ["x", "y"], "name_nl": ["x", "y"],
         "score_overall": [20.0, 60.0]},
        geometry=[box(0), box(1)], crs="EPSG:31370",
    )  # fmt: skip
    pole = f"Josaphat {MKDIR} {{{{ 6*7 }}}}"
    perimeter = gpd.GeoDataFrame({"name": [pole]}, geometry=[box(0)], crs=cells.crs)
    m = make_map(
        cells.assign(score_overall=[30.0, 70.0]), "score_overall", before=cells,
        perimeters={pole: perimeter}, lang="fr", offline=True,
    )  # fmt: skip
    scenario = save_map(m, tmp_path / "map.html", offline=True)
    poles = cells.assign(
        area_id=["v1", "v2"],
        name_fr=[f"Titre {MKDIR}", "{% raw %}"],
        name_nl=["{{ 6*7 }}", "{#"],
        score_overall_change=[3.0, -2.0],
    )
    m = make_map(
        poles, "score_overall_change",
        perimeters={"{{ 6*7 }}": cells.iloc[[0]], MKDIR: cells.iloc[[1]]},
        lang="nl", offline=True,
    )  # fmt: skip
    comparison = save_map(m, tmp_path / "comparison_map.html", offline=True)
    assert sorted(os.listdir(tmp_path)) == ["comparison_map.html", "map.html"]
    assert f"Périmètres: {pole}" in shown(scenario.read_text(encoding="utf-8"))
    text = shown(comparison.read_text(encoding="utf-8"))
    for name in (
        f"Titre {MKDIR}",
        "{% raw %}",
        "{{ 6*7 }}",
        "{#",
        f"Perimeters: {MKDIR}",
    ):
        assert name in text


def test_cli_map_of_an_area_named_like_a_template(tmp_path, monkeypatch):
    """The issue's reproduction: `bxlplan map X.gpkg --offline`."""
    monkeypatch.chdir(tmp_path)
    areas = gpd.GeoDataFrame(
        {"area_id": ["1", "2"], "name_fr": [MKDIR, "{{"], "name_nl": ["{%", "{{ 6*7 }}"],
         "score_overall": [10.0, 90.0]},
        geometry=[box(0), box(1)], crs="EPSG:31370",
    )  # fmt: skip
    pyogrio.write_dataframe(areas, tmp_path / "x.gpkg", layer="areas")
    result = CliRunner().invoke(app, ["map", "x.gpkg", "--offline", "--out", "m.html"])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ["m.html", "x.gpkg"]
    assert MKDIR in shown((tmp_path / "m.html").read_text(encoding="utf-8"))


def test_html_text_leaves_no_delimiter_and_reads_back():
    for payload in [*PAYLOADS, "}} %} #} 100 %"]:
        out = html_text(payload)
        assert not set("{}%<>") & set(out)
        assert html.unescape(out) == payload
    assert html_text(None) == "" and html_text(float("nan")) == ""


def test_save_map_refuses_text_added_outside_make_map(tmp_path, monkeypatch):
    """The backstop: a text path that bypasses html_text fails before rendering."""
    monkeypatch.chdir(tmp_path)
    areas = evil_inputs("x", "score_overall")["areas"]
    m = make_map(areas, "score_overall")
    folium.Marker([50.84, 4.35], tooltip=MKDIR).add_to(m)
    with pytest.raises(DataError, match="template syntax"):
        save_map(m, tmp_path / "map.html")
    assert os.listdir(tmp_path) == []  # nothing rendered, nothing written


@pytest.mark.parametrize("k", [0, -3])
def test_classes_below_one_are_refused(k):
    areas = evil_inputs("x", "score_overall")["areas"]
    with pytest.raises(ConfigError, match="--classes"):
        make_map(areas, "score_overall", k=k)


def test_cli_classes_zero_is_a_located_error(tmp_path):
    areas = evil_inputs("x", "score_overall")["areas"]
    pyogrio.write_dataframe(areas, tmp_path / "x.gpkg", layer="areas")
    result = CliRunner().invoke(
        app, ["map", str(tmp_path / "x.gpkg"), "--classes", "0",
              "--out", str(tmp_path / "m.html")],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "--classes" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.html").exists()


# one area, equal values, infinite values: each case below crashed (mapclassify) or
# gave a legend class with no upper bound before (quantiles and natural breaks of one
# or equal finite values already gave one class)
CLASS_CASES = [
    ("equal_interval", [42.0]),
    ("equal_interval", [7.0, 7.0, 7.0]),
    ("equal_interval", [np.nan, 3.0, np.inf]),
    ("natural_breaks", [np.nan, 3.0, np.inf]),
    ("natural_breaks", [1.0, 2.0, np.inf]),
    ("quantiles", [np.nan, 3.0, np.inf]),
    ("quantiles", [1.0, 2.0, np.inf]),
    # most values equal (a grid where most cells have every service): mapclassify
    # warned "Not enough unique values", an error under the tests' warning filter
    ("quantiles", [100.0] * 20 + [20.0, 30.0, 40.0]),
]


def legend_of(m: folium.Map) -> list[str]:
    """The class rows of the indicator drawn first, as the page's legend shows them."""
    engine = next(c for c in m._children.values() if hasattr(c, "spec"))
    return [html.unescape(text) for _, text, *_ in engine.spec["ind"][0]["rows"]]


@pytest.mark.parametrize(("scheme", "values"), CLASS_CASES)
def test_one_area_equal_or_infinite_values_classify(scheme, values, tmp_path):
    n = len(values)
    areas = gpd.GeoDataFrame(
        {"score_overall": values}, geometry=[box(i) for i in range(n)],
        crs="EPSG:31370",
    )  # fmt: skip
    m = make_map(areas, "score_overall", scheme=scheme, k=5, lang="en", context=False)
    save_map(m, tmp_path / "map.html")
    rows = legend_of(m)
    finite = sorted(v for v in values if np.isfinite(v))
    classes = [r for r in rows if r != "no data"]
    # every class has both bounds, from the smallest to the largest finite value;
    # a single value (one area, equal values) reads as that value, not "42 – 42"
    if len(set(finite)) == 1:
        assert classes == [f"{finite[0]:.0f}"], rows
    else:
        # (a class holding one value, such as the lowest of natural breaks, reads
        # as that value)
        assert all(re.fullmatch(r"\S+( – \S+)?", r) for r in classes), rows
        assert classes[0].split(" – ")[0] == f"{finite[0]:.0f}"
        assert classes[-1].split(" – ")[-1] == f"{finite[-1]:.0f}"
    assert ("no data" in rows) == (len(finite) < n)  # the grey areas are explained


def test_offline_check_reads_css_not_text_from_data(tmp_path):
    """A place named like a CSS url is text: the offline map is written. A real CSS
    url(...) outside the inlined assets still stops it."""
    areas = evil_inputs("x", "score_overall")["areas"]
    areas.loc[0, "name_fr"] = "url(https://example.com/x.png) {{ 6*7 }}"
    path = save_map(make_map(areas, offline=True), tmp_path / "a.html", offline=True)
    assert "url(https://example.com/x.png) {{ 6*7 }}" in shown(path.read_text())
    page = '<html><head><style>.x { background: url("https://cdn.test/i.png") }</style>'
    with pytest.raises(BxlplanError, match="cdn.test"):
        inline_assets(page)
    with pytest.raises(BxlplanError, match="cdn.test"):
        inline_assets('<div style="background:url(https://cdn.test/i.png)"></div>')
