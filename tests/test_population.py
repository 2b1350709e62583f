"""Dasymetric population from zone totals: hand-computed on tiny zones, then the pack.

Synthetic layout (metres from X0, Y0 in EPSG:31370), one row of 100 m high strips:

- zone A  x 0-200,   500 inhabitants, residential land x 0-100 (10,000 m²);
- zone B  x 200-400, 300 inhabitants, no residential land, green x 200-300, so its
  residents go to its other land x 300-400;
- zone C  x 400-600, 0 inhabitants, residential land x 450-500.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from bxlplan.errors import DataError
from bxlplan.loading.areas import make_grid
from bxlplan.loading.population import (
    dasymetric_pieces,
    dasymetric_population,
    dasymetric_spread,
    estimate_population,
    read_user_population,
    residential_land,
)

X0, Y0 = 148_000.0, 169_000.0
CRS = "EPSG:31370"


def strip(x0: float, x1: float, y0: float = 0.0, y1: float = 100.0) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def layer(geoms: list, crs: str | None = CRS, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=crs)


@pytest.fixture
def zones() -> gpd.GeoDataFrame:
    return layer(
        [strip(0, 200), strip(200, 400), strip(400, 600)],
        code=["A", "B", "C"],
        population=[500, 300, 0],
    )


@pytest.fixture
def landuse() -> gpd.GeoDataFrame:
    return layer(
        [strip(0, 100), strip(200, 300), strip(450, 500)],
        function=["housing", "green", "mixed"],
    )


def cells(*edges: float) -> gpd.GeoDataFrame:
    """Targets: strips between consecutive x edges."""
    return layer([strip(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)])


def test_spread_over_residential_land_by_hand(zones, landuse):
    targets = cells(-50, 50, 150, 250, 350, 450, 550, 650)
    report: list[str] = []
    est = dasymetric_spread(targets, zones, landuse, label="sector", report=report)
    # A: 500 over x 0-100 -> 250 + 250; B: 300 over x 300-400 -> 150 + 150; C: 0
    assert est.tolist() == pytest.approx([250, 250, 0, 150, 150, 0, 0])
    assert est.sum() == pytest.approx(800, rel=1e-12)
    assert any("no residential land in sector(s) [B]" in m for m in report)
    assert est.index.equals(targets.index)


def test_pieces_sum_to_each_zone_total(zones, landuse):
    targets = cells(0, 30, 70, 130, 310, 380, 600)
    pieces = dasymetric_pieces(targets, zones, landuse)
    by_zone = pieces.groupby("code")["population"].sum()
    assert by_zone.to_dict() == pytest.approx({"A": 500.0, "B": 300.0})
    assert "C" not in set(pieces["code"])  # zero population gives nothing
    by_target = pieces.groupby("target")["population"].sum()
    # A: 0.05 /m² on x 0-100 -> 150, 200, 150; B: 0.03 /m² on x 300-400 -> 30, 210, 60
    expected = {0: 150, 1: 200, 2: 150, 3: 30, 4: 210, 5: 60}
    assert by_target.to_dict() == pytest.approx(expected)


def test_zone_partly_outside_the_targets_is_renormalised(zones, landuse):
    # the targets start at x 25: a quarter of A's residential land is outside them
    targets = cells(25, 75, 600)
    report: list[str] = []
    est = dasymetric_spread(targets, zones, landuse, report=report)
    # raw shares 250 and 125 of A, scaled by 500 / 375; B's 300 all in the second
    assert est.tolist() == pytest.approx([250 * 4 / 3, 125 * 4 / 3 + 300])
    assert any("covered 75.0% to 75.0%: [A]" in m for m in report)
    raw = dasymetric_spread(targets, zones, landuse, renormalise=False)
    assert raw.tolist() == pytest.approx([250, 425])


def test_zone_outside_every_target_is_reported(zones, landuse):
    far = pd.concat(
        [zones, layer([strip(1000, 1100)], code=["D"], population=[40])],
        ignore_index=True,
    )
    report: list[str] = []
    est = dasymetric_spread(cells(0, 600), far, landuse, report=report)
    assert est.sum() == pytest.approx(800)
    assert any("outside every target" in m and "D (40)" in m for m in report)


def test_zone_whose_weighted_land_is_outside_uses_its_covered_area(zones, landuse):
    # the only target covers x 100-200: A's land but none of its residential land
    report: list[str] = []
    est = dasymetric_spread(cells(100, 200), zones, landuse, report=report)
    assert est.tolist() == pytest.approx([500])
    assert any("[A]: none of their weighted land" in m for m in report)


def test_density_cap_on_a_residential_sliver():
    zone = layer([strip(0, 100)], code=["E"], population=[200])
    sliver = layer([strip(0, 10, 0, 10)], function=["housing"])  # 100 m²
    halves = cells(0, 50, 100)
    report: list[str] = []
    capped = dasymetric_spread(halves, zone, sliver, report=report)
    # cap 100,000 /km² = 0.1 /m²: 10 on the sliver, 190 over the other 9,900 m²
    west = 10 + 190 * 4_900 / 9_900
    assert capped.tolist() == pytest.approx([west, 200 - west])
    assert any("capped at 100,000" in m and "[E]" in m for m in report)
    plain = dasymetric_spread(halves, zone, sliver, max_density=None)
    assert plain.tolist() == pytest.approx([200, 0])


def test_zone_all_green_falls_back_to_its_whole_area():
    zone = layer([strip(0, 100)], code=["park"], population=[80])
    green = layer([strip(0, 100)], function=["green"])
    est = dasymetric_spread(cells(0, 25, 100), zone, green)
    assert est.tolist() == pytest.approx([20, 60])


def test_overlapping_targets_keep_their_own_share(zones, landuse):
    targets = layer([strip(0, 100), strip(0, 100), strip(50, 100)])
    report: list[str] = []
    est = dasymetric_spread(targets, zones, landuse, report=report)
    assert est.tolist() == pytest.approx([500, 500, 250])
    assert any("overlap inside zone(s) [A]" in m for m in report)


def test_residential_land_per_zone(zones, landuse):
    land = residential_land(landuse, zones)
    assert land.area.tolist() == pytest.approx([10_000, 20_000, 5_000])
    assert land["fallback"].tolist() == [False, True, False]  # B: its whole area


def test_zone_totals_must_be_non_negative_numbers(zones, landuse):
    bad = zones.assign(population=[500, np.nan, -3])
    with pytest.raises(DataError, match=r"zone\(s\) \[B, C\]"):
        dasymetric_spread(cells(0, 600), bad, landuse)
    with pytest.raises(DataError, match="no 'population' column"):
        dasymetric_spread(cells(0, 600), zones.drop(columns="population"), landuse)
    with pytest.raises(DataError, match="'function' column"):
        dasymetric_spread(cells(0, 600), zones, landuse.drop(columns="function"))
    with pytest.raises(DataError, match="share one CRS"):
        dasymetric_spread(cells(0, 600).to_crs(3812), zones, landuse)


def test_commune_totals_keep_the_old_call(zones, landuse):
    communes = zones.assign(code=[21001, 21002, 21003]).drop(columns="population")
    table = pd.DataFrame({"code": [21001, 21002, 21003], "value": [500.0, 300.0, 0.0]})
    est = dasymetric_population(cells(-50, 50, 150, 650), communes, table, landuse)
    assert est.tolist() == pytest.approx([250, 250, 300])
    with pytest.raises(DataError, match=r"commune\(s\) \[21003\]"):
        dasymetric_population(cells(0, 600), communes, table.iloc[:2], landuse)


# --- estimate_population: the choice of source and user input ----------------------


def test_sectors_before_communes_and_provenance(zones, landuse):
    sectors = zones.copy()
    sectors.attrs["bxlplan"] = {"layer": "population_sectors", "source": "s.geojson"}
    communes = zones.assign(code=[1, 2, 3]).drop(columns="population")
    table = pd.DataFrame({"code": [1, 2, 3], "value": [1.0, 1.0, 1.0]})
    table.attrs["bxlplan"] = {"layer": "population_communes", "year": 2020}
    targets = cells(0, 600)
    report: list[str] = []
    est = estimate_population(
        targets,
        landuse=landuse,
        sectors=sectors,
        communes=communes,
        commune_table=table,
        report=report,
    )
    assert est.sum() == pytest.approx(800)
    meta = est.attrs["bxlplan"]
    assert meta["population_source"] == "population_sectors"
    assert meta["year"] == 2024 and meta["file"] == "s.geojson"
    assert "Statbel" in meta["attribution"]
    assert report[0].startswith("population from Population by statistical sector")
    old = estimate_population(
        targets, landuse=landuse, communes=communes, commune_table=table
    )
    assert old.sum() == pytest.approx(3)
    assert old.attrs["bxlplan"]["population_source"] == "population_communes"
    assert old.attrs["bxlplan"]["year"] == 2020
    with pytest.raises(DataError, match="no population source"):
        estimate_population(targets, landuse=landuse)


def test_user_points_take_precedence(zones, landuse):
    points = layer(
        [
            shapely.Point(X0 + 20, Y0 + 50),
            shapely.Point(X0 + 30, Y0 + 60),
            shapely.Point(X0 + 350, Y0 + 50),
            shapely.Point(X0 + 100, Y0 + 50),  # on the edge of both targets
            shapely.Point(X0 + 900, Y0 + 50),  # outside every target
        ],
        Population=[7, 3, 5, 4, 2],
    )
    report: list[str] = []
    est = estimate_population(
        cells(0, 100, 600), landuse=landuse, sectors=zones, user=points, report=report
    )
    assert est.tolist() == pytest.approx([14, 5])  # the edge point counted once
    assert est.attrs["bxlplan"]["population_source"] == "user"
    assert est.attrs["bxlplan"]["year"] is None
    assert any("1 user population point(s) lie outside" in m for m in report)


def test_user_polygons_are_spread_like_sectors(zones, landuse, tmp_path):
    path = tmp_path / "mine.geojson"
    zones.to_crs(4326).rename(columns={"population": "pop"}).to_file(path)
    est = estimate_population(
        cells(-50, 50, 150, 250, 350, 450, 550, 650),
        landuse=landuse,
        user=path,
        user_column="pop",
    )
    assert est.tolist() == pytest.approx([250, 250, 0, 150, 150, 0, 0], abs=1e-3)
    meta = est.attrs["bxlplan"]
    assert meta["population_label"] == "user-supplied population (polygons)"
    assert meta["file"] == str(path) and len(meta["sha256"]) == 64


def test_user_input_is_checked(zones):
    with pytest.raises(DataError, match="no coordinate reference system"):
        read_user_population(zones.set_crs(None, allow_override=True))
    with pytest.raises(DataError, match=r"columns are: code, population\)"):
        read_user_population(zones, column="inhabitants")
    bad = zones.assign(population=["12", "n/a", -1])
    with pytest.raises(DataError, match=r"row 1: 'n/a'; row 2: -1"):
        read_user_population(bad)
    inf = zones.assign(population=[1.0, np.inf, 2.0])
    with pytest.raises(DataError, match="finite number"):
        read_user_population(inf)
    mixed = layer([strip(0, 10), shapely.Point(X0, Y0)], population=[1, 2])
    with pytest.raises(DataError, match="Point, Polygon"):
        read_user_population(mixed)
    with pytest.raises(DataError, match="does not exist"):
        read_user_population("/nonexistent/pop.gpkg")
    lonlat = read_user_population(
        layer([shapely.Point(4.3546, 50.8404)], crs="EPSG:4326", population=[3])
    )
    assert lonlat.crs.to_epsg() == 31370
    x, y = lonlat.geometry.iloc[0].coords[0]
    assert abs(x - 149_000) < 50 and abs(y - 170_000) < 50
    assert lonlat["population"].tolist() == [3.0]


# --- on the reference pack -----------------------------------------------------------


@pytest.fixture(scope="module")
def pack_grid(pack_layers):
    """The 100 m origins grid and the land use of prepare(): OSM land use plus the
    public green spaces (the pack has no PRAS)."""
    grid = make_grid(pack_layers["region"], 100.0, "square")
    landuse = pack_layers["landuse_osm"][["function", "geometry"]]
    green = pack_layers["green_spaces"].assign(function="green")
    zoning = pd.concat([landuse, green[["function", "geometry"]]], ignore_index=True)
    return grid, gpd.GeoDataFrame(zoning, geometry="geometry", crs=landuse.crs)


@pytest.mark.pack
def test_sectors_layer_loads(pack_layers):
    sectors = pack_layers["population_sectors"]
    assert len(sectors) == 724 and sectors.crs.to_epsg() == 31370
    assert sectors["code"].is_unique
    assert sectors["population"].sum() == 1_246_136
    assert (sectors["population"] >= 0).all()
    assert (sectors["commune"].between(21001, 21019)).all()
    # 5 sectors of the pack's file have no name: names are optional
    assert sectors["name_fr"].notna().sum() >= 700
    assert sectors["name_nl"].notna().sum() >= 700


@pytest.mark.pack
def test_origins_reproduce_every_sector_total(pack_layers, pack_grid):
    grid, zoning = pack_grid
    sectors = pack_layers["population_sectors"]
    pieces = dasymetric_pieces(grid, sectors, zoning, label="sector")
    got = pieces.groupby("code")["population"].sum().reindex(sectors["code"])
    expected = sectors["population"].to_numpy(dtype=float)
    assert np.allclose(got.fillna(0).to_numpy(), expected, rtol=1e-9, atol=1e-6)
    # without the renormalisation, sectors sticking out of the region lose residents
    raw = dasymetric_pieces(grid, sectors, zoning, renormalise=False)
    lost = expected - raw.groupby("code")["population"].sum().reindex(
        sectors["code"]
    ).fillna(0).to_numpy(dtype=float)
    assert lost.max() > 1


@pytest.mark.pack
def test_region_total_is_statbel_2024(pack_layers, pack_grid):
    grid, zoning = pack_grid
    report: list[str] = []
    est = estimate_population(
        grid,
        landuse=zoning,
        sectors=pack_layers["population_sectors"],
        communes=pack_layers["communes"],
        commune_table=pack_layers["population_communes"],
        report=report,
    )
    assert est.sum() == pytest.approx(1_246_136, rel=1e-12)
    assert (est >= 0).all()
    meta = est.attrs["bxlplan"]
    assert meta["population_source"] == "population_sectors" and meta["year"] == 2024
    assert meta["file"].endswith("statbel_sectors_2024_population.geojson")
    # uninhabited neighbourhoods (parks, cemeteries, industry) get few residents
    hoods = pack_layers["neighbourhoods"]
    per_hood = dasymetric_spread(hoods, pack_layers["population_sectors"], zoning)
    assert per_hood[~hoods["inhabited"]].sum() < 0.015 * per_hood.sum()
