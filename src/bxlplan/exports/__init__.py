"""Exports: GIS layers (GeoPackage, GeoJSON, Shapefile, CSV, GeoTIFF) and interactive
maps (folium), each with provenance and written atomically."""

from __future__ import annotations

from .gis import (
    write_assessment,
    write_csv,
    write_distance_rasters,
    write_geojson,
    write_gpkg,
    write_shapefile,
)
from .maps import make_map, save_map

__all__ = [
    "make_map",
    "save_map",
    "write_assessment",
    "write_csv",
    "write_distance_rasters",
    "write_geojson",
    "write_gpkg",
    "write_shapefile",
]
