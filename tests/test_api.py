"""The flat, notebook-grade API (issue 13): ``import bxlplan as bp`` gives the everyday
verbs; areas are checked before any work; errors are ``ValueError``s; an
``Assessment`` shows a summary, maps itself and writes itself."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

import bxlplan as bp
from bxlplan.errors import BxlplanError, ConfigError, DataError, FetchError
from bxlplan.scoring.assess import Assessment

# --- errors ----------------------------------------------------------------------


def test_errors_are_standard_python_errors() -> None:
    for cls in (DataError, ConfigError):
        assert issubclass(cls, BxlplanError) and issubclass(cls, ValueError)
    assert issubclass(FetchError, BxlplanError)


def test_fetch_error_is_an_oserror() -> None:
    assert issubclass(FetchError, OSError)


def _lonlat(n: int = 2) -> gpd.GeoDataFrame:
    """Squares in central Brussels in longitude/latitude, without ``area_id``."""
    x, y = 4.35 + 0.005 * (np.arange(n) % 40), 50.84 + 0.005 * (np.arange(n) // 40)
    boxes = shapely.box(x, y, x + 0.004, y + 0.004)
    return gpd.GeoDataFrame(
        {"name": [f"zone {i}" for i in range(n)]}, geometry=boxes, crs="EPSG:4326"
    )


def test_a_frame_without_crs_is_a_located_valueerror() -> None:
    gdf = _lonlat().set_crs(None, allow_override=True)
    with pytest.raises(ValueError, match="no coordinate reference system.*set_crs"):
        bp.areas(gdf)


# --- areas -----------------------------------------------------------------------


def test_frame_areas_reprojected_numbered_and_named() -> None:
    gdf = _lonlat(3)
    out = bp.polygon_areas(gdf, check_region=False)
    assert out.crs.to_epsg() == 31370
    assert list(out["area_id"]) == ["0", "1", "2"]
    assert list(out["name_fr"]) == ["zone 0", "zone 1", "zone 2"]
    report = " ".join(out.attrs["bxlplan"]["report"])
    assert "reprojected from EPSG:4326" in report and "numbered by row" in report
    assert gdf.crs.to_epsg() == 4326 and "area_id" not in gdf  # input left unchanged
    bounds = out.total_bounds
    assert 140_000 < bounds[0] < 160_000 and 160_000 < bounds[1] < 180_000


def test_frame_areas_keep_area_id_and_refuse_bad_frames() -> None:
    gdf = _lonlat(2).assign(area_id=["a", "b"])
    assert list(bp.polygon_areas(gdf, check_region=False)["area_id"]) == ["a", "b"]
    with pytest.raises(DataError, match="repeat"):
        bp.polygon_areas(gdf.assign(area_id=["a", "a"]), check_region=False)
    points = gdf.set_geometry(gdf.geometry.representative_point())
    with pytest.raises(DataError, match="must be polygons; found Point"):
        bp.polygon_areas(points, check_region=False)
    with pytest.raises(DataError, match="must be a GeoDataFrame"):
        bp.polygon_areas(pd.DataFrame(gdf), check_region=False)
    with pytest.raises(DataError, match="GeoDataFrame"):
        bp.areas(42)


def test_assess_checks_the_areas_before_preparing(monkeypatch) -> None:
    mod = importlib.import_module("bxlplan.scoring.assess")  # not the function

    def never(*_a, **_k):
        raise AssertionError("prepare() ran before the areas were checked")

    monkeypatch.setattr(mod, "prepare", never)
    no_crs = _lonlat().set_crs(None, allow_override=True)
    with pytest.raises(DataError, match="no coordinate reference system"):
        bp.assess(no_crs)
    with pytest.raises(DataError, match="must be polygons"):
        bp.assess(_lonlat().set_geometry(_lonlat().representative_point()))


@pytest.mark.pack
def test_areas_outside_the_region_refused_before_preparing(pack, monkeypatch) -> None:
    mod = importlib.import_module("bxlplan.scoring.assess")  # not the function

    monkeypatch.setattr(mod, "prepare", lambda *_a, **_k: pytest.fail("prepared"))
    ghent = gpd.GeoDataFrame(
        geometry=[shapely.box(3.70, 51.04, 3.72, 51.06)], crs="EPSG:4326"
    )
    with pytest.raises(DataError, match="outside"):
        bp.assess(ghent, data=pack)


@pytest.mark.pack
def test_areas_from_a_spec_a_file_or_a_frame(pack, tmp_path) -> None:
    hoods = bp.areas("neighbourhoods", pack)
    assert len(hoods) == 145 and hoods["area_id"].is_unique
    path = tmp_path / "mine.geojson"
    _lonlat(2).to_file(path, driver="GeoJSON")
    from_file = bp.areas(path, pack)
    from_frame = bp.areas(_lonlat(2), pack)
    assert list(from_file["area_id"]) == list(from_frame["area_id"]) == ["0", "1"]
    assert from_file.geom_equals_exact(from_frame.geometry, 1e-6).all()


# --- the flat API ------------------------------------------------------------------


def test_the_everyday_verbs_without_the_folder_layout() -> None:
    from bxlplan.exports import make_map, write_gpkg
    from bxlplan.indicators import registry
    from bxlplan.loading.load import load
    from bxlplan.scenarios import compare_scenarios, run_scenario
    from bxlplan.scoring import assess, prepare

    assert bp.load is load and bp.prepare is prepare and bp.assess is assess
    assert bp.scenario.run is run_scenario and bp.scenario.compare is compare_scenarios
    assert bp.export.map is make_map and bp.export.gpkg is write_gpkg
    assert bp.export.make_map is make_map  # the old names stay
    assert bp.registry is registry and bp.Assessment is Assessment
    assert {"areas", "assess", "export", "scenario", "registry"} <= set(dir(bp))
    with pytest.raises(AttributeError):
        _ = bp.no_such_verb


def test_import_bxlplan_stays_light() -> None:
    code = (
        "import sys, bxlplan; heavy = [m for m in ('bxlplan.scoring', 'bxlplan.exports',"
        " 'bxlplan.scenarios', 'folium', 'numba', 'networkx') if m in sys.modules];"
        " print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# --- Assessment ------------------------------------------------------------------


def _assessment(n: int = 3) -> Assessment:
    areas = bp.polygon_areas(_lonlat(n), check_region=False)
    areas["name_fr"] = "<script>alert('x')</script>"
    areas["score_overall"] = np.r_[np.nan, np.linspace(40, 60, n - 1)]
    areas["score_services"] = np.r_[np.nan, np.linspace(50, 70, n - 1)]
    areas["flags"] = ["uninhabited;partial:<b>x</b>"] + ["partial:<b>x</b>"] * (n - 1)
    areas.attrs["bxlplan"] = {
        "parameters": {
            "missing_categories": ["sport"],
            "partial_categories": {"<b>x</b>": "<script>evil()</script>"},
            "distance": "network",
        }
    }
    zones = gpd.GeoDataFrame(
        {"category": ["school"], "threshold_m": [800], "population_est": [10.0]},
        geometry=[areas.geometry.iloc[0]],
        crs=areas.crs,
    )
    return Assessment(areas, context=None, zones=zones)  # type: ignore[arg-type]


def test_assessment_summary_is_escaped_and_small() -> None:
    result = _assessment(1000)
    page = result._repr_html_()
    assert "<script" not in page and "<b>" not in page
    assert "&lt;script&gt;evil()&lt;/script&gt;" in page
    assert "alert" not in page  # names are rows: not in the summary
    assert "1,000" in page and "999" in page and "uninhabited" in page
    assert "sport" in page and "median score_overall" in page
    assert len(page) < 5_000
    assert "1000 areas, 999 scored" in repr(result)


def test_assessment_flags_provenance_explore_and_to_file(tmp_path: Path) -> None:
    result = _assessment()
    assert list(result.flags.columns) == ["area_id", "flags"]
    assert result.provenance["parameters"]["missing_categories"] == ["sport"]
    m = result.explore()
    assert type(m).__name__ == "Map"
    with pytest.raises(DataError, match="no column 'nope'"):
        result.explore("nope")
    path = tmp_path / "result.gpkg"
    assert result.to_file(path) == path
    layers = {name for name, _ in pyogrio.list_layers(path)}
    assert layers == {"areas", "shortage_school"}
    with pytest.raises(DataError, match="overwrite=True"):
        result.to_file(path)
    result.to_file(path, overwrite=True)
    with pytest.raises(DataError, match=r"\.gpkg"):
        result.to_file(tmp_path / "result.shp")


# --- on the pack (the session's prepared context) ---------------------------------


@pytest.mark.pack
@pytest.mark.slow
def test_lonlat_frame_without_area_id_gets_its_residents(ctx, pack_layers) -> None:
    """Regression: a frame read from GeoJSON (EPSG:4326, no ``area_id``) used to get
    population 0 and NaN scores, silently."""
    hoods = pack_layers["neighbourhoods"].iloc[:3]
    raw = gpd.GeoDataFrame(
        {"label": hoods["name_fr"].to_numpy()}, geometry=hoods.geometry.to_crs(4326)
    )
    lonlat = bp.assess(raw, ctx).areas
    lambert = bp.assess(bp.areas(hoods.assign(area_id=["0", "1", "2"])), ctx).areas
    assert list(lonlat["area_id"]) == ["0", "1", "2"]
    assert (lonlat["population_est"] > 0).all()
    assert np.allclose(lonlat["population_est"], lambert["population_est"], rtol=1e-3)
    assert (
        lonlat["score_overall"].notna().sum() == lambert["score_overall"].notna().sum()
    )


@pytest.mark.pack
@pytest.mark.slow
def test_real_assessment_summary(ctx, pack_layers) -> None:
    result = bp.assess(bp.areas(pack_layers["neighbourhoods"].iloc[:20]), ctx)
    page = result._repr_html_()
    assert "20" in page and "median score_overall" in page
    assert result.provenance["parameters"]["distance"] == "network"
