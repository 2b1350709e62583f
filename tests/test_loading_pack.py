"""The loaders on the real reference data pack (figures from MANIFEST.md / DOMAIN.md)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

import bxlplan
from bxlplan.loading.facilities import facility_summary
from bxlplan.loading.population import dasymetric_population

pytestmark = pytest.mark.pack


def test_neighbourhoods(pack_layers):
    hoods = pack_layers["neighbourhoods"]
    assert len(hoods) == 145
    assert hoods.crs.to_epsg() == 31370
    assert hoods["code"].is_unique
    assert hoods["inhabited"].sum() == 118
    assert {"name_fr", "name_nl", "mdrc", "inspire_id"} <= set(
        hoods.columns
    )  # source kept
    meta = hoods.attrs["bxlplan"]
    assert len(meta["sha256"]) == 64 and meta["licence"] == "CC BY 4.0"
    assert meta["source"].endswith("monitoring_districts.gpkg")


def test_wfs_answer_reads_like_the_gpkg(pack, pack_layers):
    raw = bxlplan.load(
        "neighbourhoods", path=pack / "units/monitoring_districts_wfs_response.json"
    )
    hoods = pack_layers["neighbourhoods"]
    assert sorted(raw["code"]) == sorted(hoods["code"])
    assert raw.area.sum() == pytest.approx(hoods.area.sum(), rel=1e-7)  # rounding only


def test_income_2023(pack_layers):
    inc = pack_layers["income_equivalised"]
    assert len(inc) == 145
    assert inc["value"].notna().sum() == 118
    assert inc.loc[inc["code"] == 1, "value"].item() == pytest.approx(19258.84)
    assert (inc.loc[inc["value"].isna(), "value_flag"] == "empty").all()
    taxable = pack_layers["income_taxable"]
    assert taxable["value"].notna().sum() == 118
    assert set(taxable.loc[taxable["value"].isna(), "value_flag"]) <= {"ND", "VS"}
    assert (
        taxable.attrs["bxlplan"]["summary"]["Moyenne régionale / Médiane régionale"]
        == "24488"
    )


def test_communes_and_region(pack_layers):
    communes = pack_layers["communes"]
    assert len(communes) == 19
    assert sorted(communes["code"]) == list(range(21001, 21020))
    assert communes.set_index("code").loc[21009, "name_fr"] == "Ixelles"
    region = pack_layers["region"]
    assert 161 <= region.area.sum() / 1e6 <= 163
    pop = pack_layers["population_communes"]
    assert len(pop) == 19 and pop["value"].sum() == 1_218_255
    assert pop.attrs["bxlplan"]["summary"]  # the region row is kept apart


def test_poverty_footnotes_are_missing_not_zero(pack_layers):
    pov = pack_layers["poverty_communes"]
    assert len(pov) == 171
    ixelles = pov[(pov["code"] == 21009) & (pov["year"] <= 2019)]
    assert ixelles["value"].isna().all()
    assert ixelles["note"].str.contains("⁽²⁾").all()


def test_facilities_per_category(pack_layers):
    fac = pack_layers["facilities"]
    summary = facility_summary(fac).set_index("category")
    # categories the pack lacks (MANIFEST: no amenity=childcare, no nursing homes)
    assert summary.loc["childcare", "status"] == "missing"
    assert summary.loc["senior_home", "status"] == "missing"
    assert set(fac.attrs["bxlplan"]["missing_categories"]) == {
        "childcare",
        "senior_home",
    }
    for cat in ["primary_school", "secondary_school", "higher_education", "gp_medical",
                "pharmacy", "hospital", "library", "culture", "sport", "playground",
                "social_community", "daily_shops", "transit_stop", "green_space",
                "green_space_large"]:  # fmt: skip
        assert summary.loc[cat, "count"] > 0, cat
    assert summary.loc["transit_stop", "status"] == "ok"  # every STIB stop
    assert summary.loc["pharmacy", "count"] == 426  # every amenity=pharmacy POI
    assert summary.loc["hospital", "count"] == 20
    # POIs across the border are kept (they serve residents near it) and flagged
    # (MANIFEST: about 400 POIs, of every kind, lie just outside the region)
    poi = fac[fac["source"] == "poi"]
    assert 50 < (~poi["in_region"].astype(bool)).sum() < 400
    assert fac.crs.to_epsg() == 31370


def test_green_spaces(pack_layers):
    green = pack_layers["green_spaces"]
    assert green["large"].sum() > 50
    assert (green.loc[green["large"], "area_ha"] >= 3).all()
    # merged: no two green spaces overlap
    tree = shapely.STRtree(green.geometry.values)
    a, b = tree.query(green.geometry.values, predicate="overlaps")
    assert len(a) == 0


def test_street_network(pack_layers):
    edges = pack_layers["streets"]
    net = edges.attrs["bxlplan"]["network"]
    assert net["largest_component_share"] >= 0.95
    assert 2000 <= net["kept_length_km"] <= 2200
    assert net["components"] > 100  # reported, not hidden
    assert abs(edges["length"].sum() / 1000 - net["kept_length_km"]) < 1e-6
    # geometries run from u to v
    from bxlplan.loading.network import network_nodes

    nodes = network_nodes(edges)
    start = shapely.get_coordinates(shapely.get_point(edges.geometry.values, 0))
    assert np.allclose(start, nodes.loc[edges["u"], ["x", "y"]].to_numpy())


def test_graphml_network(pack):
    edges = bxlplan.load(
        "streets", path=pack / "network/city_of_brussels_drive_osmnx_2026-01-12.graphml"
    )
    assert edges.crs.to_epsg() == 31370
    assert 1500 < edges.attrs["bxlplan"]["network"]["nodes"] <= 2299
    assert edges["length"].min() > 0


def test_transit_stops(pack_layers):
    stops = pack_layers["transit_stops"]
    assert 2000 < len(stops) < 3000  # stop points of the full file (2,507)
    assert stops.crs.to_epsg() == 31370


def test_dasymetric_population_sums_back(pack_layers):
    communes = pack_layers["communes"]
    pop = pack_layers["population_communes"]
    landuse = pack_layers["landuse_osm"]
    # a grid over the communes' extent covers all residential land: exact sums
    xmin, ymin, xmax, ymax = communes.total_bounds
    xs = np.arange(xmin, xmax, 500.0)
    ys = np.arange(ymin, ymax, 500.0)
    cells = [shapely.box(x, y, x + 500, y + 500) for x in xs for y in ys]
    import geopandas as gpd

    grid = gpd.GeoDataFrame(geometry=cells, crs=communes.crs)
    est = dasymetric_population(grid, communes, pop, landuse)
    assert est.sum() == pytest.approx(1_218_255, rel=1e-9)
    assert (est >= 0).all()
    # per commune: the estimate inside each commune sums to its total
    est_c = dasymetric_population(communes, communes, pop, landuse)
    expected = (
        pop.set_index("code").loc[communes["code"].astype(int), "value"].to_numpy()
    )
    assert np.allclose(est_c.to_numpy(), expected, rtol=1e-9)
    # neighbourhoods: uninhabited ones (parks, cemeteries) get almost nobody
    hoods = pack_layers["neighbourhoods"]
    est_h = dasymetric_population(hoods, communes, pop, landuse)
    assert est_h.sum() == pytest.approx(1_218_255, rel=0.01)
    assert est_h[hoods["code"] >= 900].sum() < 0.02 * est_h.sum()
