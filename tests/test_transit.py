"""Transit stops: stop points from GTFS stops.txt or a GeoJSON export, stop places,
partial only when the file used is the truncated sample (issue 10, item 4), and a
missing POI file as a located error (issue 9)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import bxlplan
from bxlplan.errors import DataError
from bxlplan.loading.catalog import get_spec
from bxlplan.loading.facilities import load_facilities
from bxlplan.loading.transit import file_entry, read_stops, stop_places

from .conftest import pack_without

# stop_id, name, location_type, parent_station, lon, lat  (WGS84, central Brussels)
ROWS = [
    ("36", "MONTGOMERY", 1, None, 4.40880, 50.83800),  # station
    ("0089", "MONTGOMERY", 0, 36.0, 4.40897, 50.83801),  # its platforms
    ("0090", "MONTGOMERY", 0, 36.0, 4.40860, 50.83790),
    ("0600163", "1 - Sortie", 2, 36.0, 4.40850, 50.83820),  # its entrance
    ("1001", "PETILLON", 0, None, 4.39000, 50.83000),  # two directions, ~40 m
    ("1002", "Petillon", None, None, 4.39050, 50.83010),  # empty type = stop point
    ("1003", "PETILLON", 0, None, 4.35000, 50.83000),  # same name ~2.8 km away
    ("1004", "ALMA", 0, None, 4.45340, 50.84999),
]


def _geojson(tmp_path: Path, rows=ROWS, drop: tuple[str, ...] = ()) -> Path:
    df = pd.DataFrame(
        rows,
        columns=["stop_id", "stop_name", "location_type", "parent_station", "x", "y"],
    )
    df["stop_lat"], df["stop_lon"] = df["y"], df["x"]
    df["freq_peak"] = 90.0
    gdf = gpd.GeoDataFrame(
        df.drop(columns=["x", "y", *drop]),
        geometry=gpd.points_from_xy(df["x"], df["y"]),
        crs="EPSG:4326",
    )
    path = tmp_path / "stops.geojson"
    gdf.to_file(path, driver="GeoJSON")
    return path


def _stops_txt(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "stops.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GTFS_HEADER = "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station"
GTFS_LINES = [
    GTFS_HEADER,
    "36,MONTGOMERY,50.838,4.4088,1,",
    "0089,MONTGOMERY,50.83801,4.40897,0,36",
    "0090,MONTGOMERY,50.8379,4.4086,0,36",
    "0600163,1 - Sortie,,,2,36",  # an entrance without coordinates: not used
    "1001,PETILLON,50.83,4.39,0,",
    "1002,Petillon,50.8301,4.3905,,",
    "1003,PETILLON,50.83,4.35,0,",
    "1004,ALMA,50.84999,4.4534,0,",
]
STOP_POINTS = {"0089", "0090", "1001", "1002", "1003", "1004"}


def test_geojson_keeps_stop_points_with_their_station(tmp_path):
    report: list[str] = []
    stops = read_stops(_geojson(tmp_path), report=report)
    assert set(stops["code"]) == STOP_POINTS  # no station, no entrance
    by_code = stops.set_index("code")
    # parent_station written as a float by the export (36.0) is station 36
    assert by_code.loc["0089", "parent_station"] == "36"
    assert by_code.loc["0089", "station_name"] == "MONTGOMERY"
    assert pd.isna(by_code.loc["1001", "parent_station"])
    assert (stops["location_type"] == 0).all()
    text = " ".join(report)
    assert "8 rows" in text and "kept 6 stop points" in text
    assert "1 stations, 1 entrances" in text
    assert "36.0" in text  # the float ids are reported


def test_gtfs_text_gives_the_same_stop_points(tmp_path):
    stops = read_stops(_stops_txt(tmp_path, GTFS_LINES))
    assert set(stops["code"]) == STOP_POINTS
    assert stops.crs.to_epsg() == 4326
    assert stops.set_index("code").loc["0090", "station_name"] == "MONTGOMERY"
    # stop ids keep their leading zeros
    assert "0089" in set(stops["stop_id"])


def test_stop_places_count_each_stop_once(tmp_path):
    stops = read_stops(_geojson(tmp_path)).to_crs(31370)
    report: list[str] = []
    places = stop_places(stops, 200, report=report).set_index("code")
    # platforms of one station: one place, named after the station
    assert places.loc["0089", "place_id"] == places.loc["0090", "place_id"]
    assert places.loc["0089", "place_name"] == "MONTGOMERY"
    # the two directions of one stop (same name, case aside, ~40 m): one place
    assert places.loc["1001", "place_id"] == places.loc["1002", "place_id"]
    # the same name 2.8 km away is another stop
    assert places.loc["1003", "place_id"] != places.loc["1001", "place_id"]
    assert places["place_id"].nunique() == 4
    assert "6 stop points form 4 stop places" in report[0]
    # with no distance, only the station groups its platforms
    assert stop_places(stops, 0)["place_id"].nunique() == 5


def test_stop_places_need_metres(tmp_path):
    stops = read_stops(_geojson(tmp_path))  # WGS84
    with pytest.raises(DataError, match="projected CRS"):
        stop_places(stops, 200)


def test_frequencies_are_left_out_when_the_entry_says_so(tmp_path):
    path = _geojson(tmp_path)
    assert "freq_peak" in read_stops(path, entry={})
    report: list[str] = []
    stops = read_stops(path, entry={"drop_fields": ["freq_peak"]}, report=report)
    assert "freq_peak" not in stops
    assert any("freq_peak" in line for line in report)
    # the catalog leaves them out of the full STIB file (absolute values ~3-4x high)
    spec = get_spec("transit_stops")
    entry = file_entry(spec, Path("/d/transit/stib_stops_full.geojson"))
    assert set(entry["drop_fields"]) == {"freq_peak", "freq_allday"}


def test_null_geometry_takes_lat_lon_or_is_dropped_and_reported(tmp_path):
    rows = [*ROWS, ("1005", "NOWHERE", 0, None, np.nan, np.nan)]
    path = _geojson(tmp_path, rows)
    gdf = gpd.read_file(path)
    gdf.loc[gdf["stop_id"] == "1004", "geometry"] = None  # has stop_lat/stop_lon
    gdf.loc[gdf["stop_id"] == "1005", "geometry"] = None  # has nothing
    gdf.to_file(path, driver="GeoJSON")
    report: list[str] = []
    stops = read_stops(path, report=report)
    assert set(stops["code"]) == STOP_POINTS  # 1004 placed, 1005 dropped
    alma = stops.set_index("code").loc["1004", "geometry"]
    assert alma.distance(shapely.Point(4.45340, 50.84999)) < 1e-9
    text = " ".join(report)
    assert "1 stop(s) without geometry placed" in text
    assert "dropped 1 stop(s)" in text and "1005" in text


def test_missing_stop_id_field_is_a_located_error(tmp_path):
    path = _geojson(tmp_path, drop=("stop_id",))
    with pytest.raises(DataError) as err:
        read_stops(path)
    msg = str(err.value)
    assert str(path) in msg and "stop_id" in msg and "transit_stops.yaml" in msg


def test_gtfs_text_without_coordinates_is_a_located_error(tmp_path):
    path = _stops_txt(tmp_path, ["stop_id,stop_name", "1,A"])
    with pytest.raises(DataError, match=r"stops\.txt.*stop_lat and stop_lon"):
        read_stops(path)


def test_bad_coordinates_name_the_line(tmp_path):
    lines = [*GTFS_LINES[:2], "0089,MONTGOMERY,north,4.40897,0,36"]
    with pytest.raises(DataError, match=r"stops\.txt.*line\(s\) 3"):
        read_stops(_stops_txt(tmp_path, lines))


def test_unknown_location_type_names_field_and_line(tmp_path):
    lines = [*GTFS_LINES, "2000,X,50.83,4.35,7,"]
    with pytest.raises(DataError) as err:
        read_stops(_stops_txt(tmp_path, lines))
    msg = str(err.value)
    assert "'location_type'" in msg and "line(s) 10" in msg and "(7)" in msg


def test_only_stations_is_an_error(tmp_path):
    lines = [GTFS_HEADER, "36,MONTGOMERY,50.838,4.4088,1,"]
    with pytest.raises(DataError, match="no stop point"):
        read_stops(_stops_txt(tmp_path, lines))


def test_catalog_prefers_the_complete_file_and_marks_only_the_sample_partial():
    spec = get_spec("transit_stops")
    paths = [e["path"] for e in spec.files]
    full = paths.index("transit/stib_stops_full.geojson")
    sample = paths.index("transit/stib_gtfs_sample_2024-12/stops.txt")
    assert full < sample
    assert "partial" not in spec.raw  # a property of a file, not of the layer
    assert file_entry(spec, Path("/data/transit/stib_gtfs_sample_2024-12/stops.txt"))[
        "partial"
    ]
    assert "partial" not in file_entry(spec, Path("/data/" + paths[full]))
    # a user's own stops.txt is not mistaken for the sample
    assert file_entry(spec, Path("/elsewhere/stops.txt")) == {}


# --- facilities: partial from the file used, one facility per stop place ----------


def _tiny_data(tmp_path: Path) -> tuple[Path, dict]:
    """A data folder with a two-pharmacy POI file; other layers given in memory."""
    data = tmp_path / "data"
    (data / "osm").mkdir(parents=True)
    poi = gpd.GeoDataFrame(
        {"amenity": ["pharmacy", "pharmacy"], "name": ["A", "B"]},
        geometry=[shapely.Point(4.39, 50.83), shapely.Point(4.40, 50.84)],
        crs="EPSG:4326",
    )
    poi.to_file(data / "osm" / "poi_2026-05.geojson", driver="GeoJSON")
    region = gpd.GeoDataFrame(
        geometry=[shapely.box(140000, 160000, 160000, 180000)], crs="EPSG:31370"
    )
    green = gpd.GeoDataFrame(
        {"green_id": [0], "area_ha": [4.0], "name": ["Parc"]},
        geometry=[shapely.box(150000, 170000, 150200, 170200)],
        crs="EPSG:31370",
    )
    return data, {"region": region, "green_spaces": green}


def _as_loaded(stops: gpd.GeoDataFrame, source: str) -> gpd.GeoDataFrame:
    stops = stops.to_crs(31370)
    stops.attrs["bxlplan"] = {"source": source, "report": ["kept 6 stop points"]}
    return stops


def test_facilities_partial_only_when_the_sample_is_used(tmp_path):
    data, layers = _tiny_data(tmp_path)
    stops = read_stops(_stops_txt(tmp_path, GTFS_LINES))
    spec = get_spec("facilities")

    sample = str(data / "transit/stib_gtfs_sample_2024-12/stops.txt")
    fac = load_facilities(
        spec, data, {**layers, "transit_stops": _as_loaded(stops, sample)}
    )
    partial = fac.attrs["bxlplan"]["partial_categories"]
    assert "truncated sample" in partial["transit_stop"]

    full = str(data / "transit/stib_stops_full.geojson")
    fac = load_facilities(
        spec, data, {**layers, "transit_stops": _as_loaded(stops, full)}
    )
    meta = fac.attrs["bxlplan"]
    assert "transit_stop" not in meta["partial_categories"]
    # one facility per stop place, every stop point kept as a place to reach it
    transit = fac[fac["category"] == "transit_stop"]
    assert len(transit) == 6 and meta["counts"]["transit_stop"] == 4
    station = transit[transit["name"] == "MONTGOMERY"]
    assert len(station) == 2 and station["facility_id"].nunique() == 1
    # the leisure files are absent: categories only they and the POIs feed are
    # missing (nothing left), never partial
    assert "sport" in meta["missing_categories"]
    assert "sport" not in meta["partial_categories"]
    text = " ".join(meta["report"])
    assert "4 stop places from 6 stop points" in text
    assert "layer 'transit_stops': kept 6 stop points" in text


def test_facilities_without_the_transit_layer_mark_transit_partial(tmp_path):
    data, layers = _tiny_data(tmp_path)
    station = gpd.GeoDataFrame(  # a train station from OSM
        {"railway": ["station"], "name": ["Gare de Schaerbeek"]},
        geometry=[shapely.Point(4.3789, 50.8781)],
        crs="EPSG:4326",
    )
    station.to_file(data / "osm" / "poi_2026-05.geojson", driver="GeoJSON")
    fac = load_facilities(get_spec("facilities"), data, layers)  # no stops file
    partial = fac.attrs["bxlplan"]["partial_categories"]
    assert "facility source 'transit' not available" in partial["transit_stop"]


def test_missing_poi_file_is_a_located_error_not_a_traceback(tmp_path):
    data, layers = _tiny_data(tmp_path)
    (data / "osm" / "poi_2026-05.geojson").unlink()
    with pytest.raises(DataError) as err:
        load_facilities(get_spec("facilities"), data, layers)
    msg = str(err.value)
    assert "poi_2026-05.geojson" in msg and "Put the file" in msg


# --- the reference pack -------------------------------------------------------------


@pytest.mark.pack
def test_pack_without_poi_file_names_it_and_says_what_to_do(pack, tmp_path):
    data = pack_without(pack, tmp_path, "osm/poi_2026-05.geojson")
    with pytest.raises(DataError) as err:
        bxlplan.load("facilities", data)
    msg = str(err.value)
    assert str(data / "osm/poi_2026-05.geojson") in msg
    assert "required" in msg and "Put the file" in msg
    assert "primary_school" in msg  # what it alone feeds


@pytest.mark.pack
def test_pack_full_stops_file(pack):
    report: list[str] = []
    path = pack / "transit/stib_stops_full.geojson"
    stops = read_stops(path, report=report)
    # MANIFEST: 2,820 rows = 2,507 stop points + 70 stations + 243 entrances
    assert len(stops) == 2507
    assert "left out 70 stations, 243 entrances" in " ".join(report)
    assert stops["code"].is_unique
    assert stops["parent_station"].notna().sum() == 168
    assert stops.loc[stops["parent_station"].notna(), "station_name"].notna().all()
    assert not {"freq_peak", "freq_allday"} & set(stops.columns)
    places = stop_places(stops.to_crs(31370), 200)
    n_places = places["place_id"].nunique()
    assert 800 <= n_places <= 1000, n_places  # 886 on the pack
    # stops beyond the region are kept (they serve residents near the border)
    region = bxlplan.load("region", pack).geometry.union_all().buffer(1.0)
    inside = shapely.contains(region, np.asarray(places.to_crs(31370).geometry.values))
    assert 2300 < inside.sum() < len(places)  # 2,3xx of 2,507 stop points


@pytest.mark.pack
def test_pack_sample_still_loads_and_is_the_partial_fallback(pack):
    path = pack / "transit/stib_gtfs_sample_2024-12/stops.txt"
    stops = read_stops(path)
    assert len(stops) == 961  # 999 rows less 38 entrances
    entry = file_entry(get_spec("transit_stops"), path)
    assert entry["partial"] and entry["fallback"]


@pytest.mark.pack
def test_pack_transit_is_complete_once_wired(pack_layers):
    """Needs load() to read kind gtfs_stops with transit.read_stops."""
    stops = pack_layers["transit_stops"]
    assert len(stops) == 2507 and stops.crs.to_epsg() == 31370
    assert any("2820 rows" in line for line in stops.attrs["bxlplan"]["report"])
    fac = pack_layers["facilities"]
    meta = fac.attrs["bxlplan"]
    assert "transit_stop" not in meta["partial_categories"]
    assert 800 <= meta["counts"]["transit_stop"] <= 1000
    transit = fac[fac["source"] == "transit"]
    assert len(transit) == 2507
    assert (~transit["in_region"].astype(bool)).sum() > 0  # border stops kept
