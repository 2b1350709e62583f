"""A QGIS-ready assessment: styles in layer_styles (QML), aliases in gpkg_data_columns,
layer descriptions, full provenance, readable Shapefile names, the `areas` extent.

QGIS is not needed: the GeoPackage is checked with GDAL (pyogrio, warnings as errors)
and sqlite3, the styles with an XML parser."""

from __future__ import annotations

import json
import sqlite3
import warnings
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from bxlplan.errors import ConfigError, DataError
from bxlplan.exports.gis import assessment_names, write_assessment
from bxlplan.exports.labels import column_label
from bxlplan.exports.maps import class_breaks, class_palette
from bxlplan.exports.qgis import layer_qml

HOSTILE = '<b>"Q&A"</b>\x01'  # markup, quotes, an ampersand and a control character
SCORES = ["score_overall", "score_diversity", "score_social_mix", "score_services"]


def _result(hostile: str = HOSTILE) -> SimpleNamespace:
    n = 8
    rng = np.random.default_rng(0)
    areas = gpd.GeoDataFrame(
        {
            "area_id": [str(i) for i in range(n)],
            "name_fr": [hostile] + [f"Zone {i}" for i in range(1, n)],
            "name_nl": [f"Zone {i}" for i in range(n)],
            "population_est": rng.uniform(0, 2000, n),
            "access_pharmacy_nearest_m": rng.uniform(50, 900, n),
            "access_pharmacy_within_800m_share": rng.uniform(0, 1, n),
            "site_pharmacy_within_800m_land_share": rng.uniform(0, 1, n),
            "mix_landuse_entropy": rng.uniform(0, 1, n),
            **{s: np.append(rng.uniform(0, 100, n - 1), np.nan) for s in SCORES},
            "flags": [""] * n,
        },
        geometry=[
            shapely.box(148000 + 500 * i, 169000, 148500 + 500 * i, 169500)
            for i in range(n)
        ],
        crs="EPSG:31370",
    )
    areas.attrs["bxlplan"] = {
        "bxlplan_version": "test",
        "created_at": "2024-01-01T00:00:00+00:00",
        "data": "../my data",  # a relative --data, recorded as given
        "sources": {"communes": "../my data/boundaries/communes.gpkg"},
        "parameters": {"thresholds_m": {"pharmacy": 800}},
    }
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["a", "b", "far"],
            "category": ["pharmacy", hostile, "pharmacy"],
            "name": ["P", "Q", "far away"],
            "threshold_m": [800, 800, 800],
        },
        geometry=[
            shapely.Point(148200, 169200),
            shapely.Point(149000, 169300),
            shapely.Point(190000, 169300),  # 38 km east: outside the surroundings
        ],
        crs="EPSG:31370",
    )
    facilities.attrs["bxlplan"] = {
        "layer": "facilities", "source": "/abs/osm/poi.geojson", "sha256": "0" * 64,
        "licence": "ODbL", "attribution": "© OpenStreetMap contributors",
        "report": ["a long report"],
    }  # fmt: skip
    zones = gpd.GeoDataFrame(
        {
            "category": ["pharmacy", "library"],
            "threshold_m": [800, 800],
            "population_est": [1200.0, 30.0],
        },
        geometry=[
            shapely.box(140000, 160000, 180000, 180000),  # cut to the surroundings
            shapely.box(190000, 160000, 191000, 161000),  # beyond them: left out
        ],
        crs="EPSG:31370",
    )
    ctx = SimpleNamespace(
        facilities=facilities, categories={"pharmacy": {"threshold_m": 800}},
        sources={}, config={}, communes=areas,
    )  # fmt: skip
    return SimpleNamespace(areas=areas, shortage_zones=zones, context=ctx)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("qgis")
    result = _result()
    write_assessment(result, out / "en", ["gpkg", "shp"], lang="en")
    write_assessment(result, out / "nl", ["gpkg"], lang="nl", extent="region")
    return out, result


def _db(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _qml(text: str) -> ET.Element:
    assert text.startswith("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>")
    root = ET.fromstring(text.split("\n", 1)[1])
    assert root.tag == "qgis" and root.get("styleCategories") == "Symbology|Fields"
    return root


def test_gdal_reads_the_geopackage_without_warning(written):
    out, _ = written
    path = out / "en" / "assessment.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*unrecognized user_version.*")
        layers = [name for name, _ in pyogrio.list_layers(path)]
        assert layers == ["areas", "shortage_pharmacy", "facilities", "layer_styles"]
        for name in layers:
            info = pyogrio.read_info(path, layer=name)
            assert info["features"] >= 1
            pyogrio.read_dataframe(path, layer=name)


def test_every_layer_has_a_default_qml_style(written):
    out, result = written
    with _db(out / "en" / "assessment.gpkg") as db:
        rows = db.execute(
            "SELECT f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
            "styleName, styleQML, useAsDefault FROM layer_styles"
        ).fetchall()
        kinds = dict(db.execute("SELECT table_name, data_type FROM gpkg_contents"))
    assert kinds["layer_styles"] == "attributes"
    defaults = {r[2]: r for r in rows if r[6] == 1}
    assert set(defaults) == {"areas", "shortage_pharmacy", "facilities"}
    for catalog, schema, _, geom, *_ in rows:
        assert (catalog, schema, geom) == ("", "", "geom")
    # areas: the map's classes (quantiles, 5) and colours of the overall score
    areas = _qml(defaults["areas"][5])
    renderer = areas.find("renderer-v2")
    assert renderer.get("type") == "graduatedSymbol"
    assert renderer.get("attr") == "score_overall"
    uppers = [float(r.get("upper")) for r in renderer.iter("range")]
    breaks = class_breaks(result.areas["score_overall"], "quantiles", 5)
    assert np.allclose(uppers, breaks) and len(uppers) == 5
    colours = [
        o.get("value")
        for s in renderer.find("symbols")
        for o in s.iter("Option")
        if o.get("name") == "color"
    ]
    expected = [
        ",".join(str(int(c[i : i + 2], 16)) for i in (1, 3, 5, 7))
        for c in class_palette(5)
    ]
    assert colours == expected
    # one more style per other score, not the default
    others = {r[4] for r in rows if r[2] == "areas" and r[6] == 0}
    assert len(others) == 3
    # shortage zones and facilities by category
    for layer in ("shortage_pharmacy", "facilities"):
        renderer = _qml(defaults[layer][5]).find("renderer-v2")
        assert renderer.get("type") == "categorizedSymbol"
        assert renderer.get("attr") == "category"
    facilities = _qml(defaults["facilities"][5])
    values = [c.get("value") for c in facilities.iter("category")]
    labels = [c.get("label") for c in facilities.iter("category")]
    assert HOSTILE.replace("\x01", "") in values and "Pharmacy" in labels
    assert facilities.find("layerGeometryType").text == "0"


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_aliases_for_every_score_column_in_the_chosen_language(written, lang):
    out, result = written
    with _db(out / lang / "assessment.gpkg") as db:
        titles = dict(
            db.execute(
                "SELECT column_name, title FROM gpkg_data_columns WHERE table_name='areas'"
            )
        )
        ext = db.execute(
            "SELECT table_name FROM gpkg_extensions WHERE extension_name='gpkg_schema'"
        ).fetchall()
    assert sorted(t for (t,) in ext) == [
        "gpkg_data_column_constraints",
        "gpkg_data_columns",
    ]
    for col in result.areas.columns:
        if col.startswith(("score_", "access_", "site_", "mix_")):
            label, unit = column_label(col, lang)
            assert titles[col] == (f"{label} ({unit})" if unit else label)
    assert titles["score_overall"] == {"en": "Overall score (/100)", "nl": "Totaalscore (/100)"}[lang]  # fmt: skip
    # the QML repeats them
    with _db(out / lang / "assessment.gpkg") as db:
        qml = db.execute(
            "SELECT styleQML FROM layer_styles WHERE f_table_name='areas' AND useAsDefault"
        ).fetchone()[0]
    aliases = {a.get("field"): a.get("name") for a in _qml(qml).iter("alias")}
    assert all(aliases[s] == titles[s] for s in SCORES)


def test_layer_descriptions(written):
    out, _ = written
    for lang in ("en", "nl"):
        with _db(out / lang / "assessment.gpkg") as db:
            rows = dict(db.execute("SELECT table_name, description FROM gpkg_contents"))
        assert all(text.strip() for text in rows.values()), rows
    assert rows["areas"] == "Scores en indicatoren van de beoordeelde gebieden"
    assert rows["shortage_pharmacy"] == "Tekortzone: Apotheek (verder dan 800 m)"


def test_provenance_on_every_layer(written):
    out, _ = written
    path = out / "en" / "assessment.gpkg"
    for layer in ("areas", "shortage_pharmacy", "facilities"):
        meta = json.loads(
            pyogrio.read_info(path, layer=layer)["layer_metadata"]["bxlplan"]
        )
        assert meta["bxlplan_version"] == "test" and meta["parameters"]
        assert meta["written_at"] and meta["created_at"]
        assert meta["data"] == "../my data"  # as given, never relativised
        assert meta["data_absolute"].endswith("/my data")
        communes = meta["sources"]["communes"]
        assert communes["source"] == "../my data/boundaries/communes.gpkg"
        assert communes["licence"] and communes["attribution"]  # from the catalog
    fac = json.loads(
        pyogrio.read_info(path, layer="facilities")["layer_metadata"]["bxlplan"]
    )
    assert fac["facilities"]["sha256"] == "0" * 64
    assert fac["facilities"]["licence"] == "ODbL" and "report" not in fac["facilities"]
    assert fac["layer"]["extent"] == "areas"


def test_extent_areas_keeps_the_surroundings_only(written):
    out, _ = written
    near = pyogrio.read_dataframe(out / "en" / "assessment.gpkg", layer="facilities")
    assert sorted(near["facility_id"]) == ["a", "b"]
    zone = pyogrio.read_dataframe(
        out / "en" / "assessment.gpkg", layer="shortage_pharmacy"
    )
    assert (
        zone.total_bounds[0] >= 148000 - 800 - 1
        and zone.total_bounds[2] <= 152000 + 800 + 1
    )
    assert zone["population_est_region"].tolist() == [1200.0]
    layers = [n for n, _ in pyogrio.list_layers(out / "nl" / "assessment.gpkg")]
    assert "shortage_library" in layers  # extent="region": everything
    whole = pyogrio.read_dataframe(out / "nl" / "assessment.gpkg", layer="facilities")
    assert len(whole) == 3


def test_shapefiles_of_every_layer_with_readable_names_and_styles(written):
    out, result = written
    folder = out / "en"
    for stem, rows in (("assessment", 8), ("shortage_zones", 1), ("facilities", 2)):
        gdf = pyogrio.read_dataframe(folder / f"{stem}.shp")
        assert len(gdf) == rows
        fields = pd.read_csv(folder / f"{stem}_fields.csv", keep_default_na=False)
        mapping = dict(zip(fields["short_name"], fields["full_name"], strict=True))
        assert set(gdf.columns) - {"geometry"} == set(mapping)
        assert all(len(s) <= 10 for s in mapping)
        assert len({s.lower() for s in mapping}) == len(mapping)
        qml = _qml((folder / f"{stem}.qml").read_text(encoding="utf-8"))
        aliases = {a.get("field") for a in qml.iter("alias")}
        assert aliases <= set(mapping)
    back = pyogrio.read_dataframe(folder / "assessment.shp")
    fields = pd.read_csv(folder / "assessment_fields.csv")
    full = back.rename(
        columns=dict(zip(fields["short_name"], fields["full_name"], strict=True))
    )
    assert np.allclose(
        full["access_pharmacy_within_800m_share"],
        result.areas["access_pharmacy_within_800m_share"],
    )
    names = dict(zip(fields["full_name"], fields["short_name"], strict=True))
    assert names["access_pharmacy_within_800m_share"] == "acc_phar_s"
    assert names["score_overall"] == "sc_overall"
    qml = _qml((folder / "assessment.qml").read_text(encoding="utf-8"))
    assert qml.find("renderer-v2").get("attr") == "sc_overall"
    # every file written is listed for the check made before the computation
    listed = assessment_names(["gpkg", "shp"])
    files = {p.name for p in folder.iterdir() if p.name != ".bxlplan.lock"}
    assert all(any(__import__("fnmatch").fnmatch(f, n) for n in listed) for f in files)


def test_hostile_text_cannot_break_a_style():
    gdf = gpd.GeoDataFrame(
        {
            "category": [HOSTILE, "pharmacy", "]]>&amp;"],
            "score_overall": [1.0, 2.0, 3.0],
        },
        geometry=[shapely.Point(0, 0)] * 3,
        crs="EPSG:31370",
    )
    for name in ("facilities", "shortage_x", "areas", f"perimeter_{HOSTILE}"):
        root = _qml(layer_qml(name, gdf, "fr"))
        values = {c.get("value") for c in root.iter("category")}
        if name != "areas" and not name.startswith("perimeter"):
            assert values == {'<b>"Q&A"</b>', "pharmacy", "]]>&amp;"}
    root = _qml(layer_qml("areas", gdf, "fr", fields={"score_overall": '"><x'}))
    assert root.find("renderer-v2").get("attr") == '"><x'


def test_bad_language_or_extent_is_refused_before_writing(tmp_path):
    with pytest.raises(ConfigError, match="language"):
        write_assessment(_result(), tmp_path, ["gpkg"], lang="de")
    with pytest.raises(DataError, match="extent.*areas or region"):
        write_assessment(_result(), tmp_path, ["gpkg"], extent="world")
    assert not list(tmp_path.iterdir())
