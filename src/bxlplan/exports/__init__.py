"""Exports: GIS layers (GeoPackage, GeoJSON, Shapefile, CSV, GeoTIFF) and interactive
maps (folium), each with provenance and written atomically.

Short names for the flat API (``bxlplan.export.map(...)``): ``map`` (:func:`make_map`),
``save`` (:func:`save_map`), ``gpkg``, ``geojson``, ``shapefile``, ``csv``,
``rasters`` and ``assessment`` (the ``write_*`` functions); :func:`change_map` and
:func:`comparison_map` for scenarios; ``postgis`` and ``postgis_assessment`` (tables in
a PostGIS schema, with the ``postgis`` extra).
"""

from __future__ import annotations

from .change import change_map, comparison_map
from .gis import (
    write_assessment,
    write_csv,
    write_distance_rasters,
    write_geojson,
    write_gpkg,
    write_shapefile,
)
from .maps import make_map, save_map
from .postgis import write_assessment_postgis, write_postgis
from .robustness import robustness_map, write_robustness

map = make_map  # noqa: A001 - bxlplan.export.map, as in the issue's flat API
save = save_map
gpkg = write_gpkg
geojson = write_geojson
shapefile = write_shapefile
csv = write_csv
rasters = write_distance_rasters
assessment = write_assessment
postgis = write_postgis
robustness = write_robustness
postgis_assessment = write_assessment_postgis

__all__ = [
    "assessment",
    "change_map",
    "comparison_map",
    "csv",
    "geojson",
    "gpkg",
    "make_map",
    "map",
    "postgis",
    "postgis_assessment",
    "rasters",
    "robustness",
    "robustness_map",
    "save",
    "save_map",
    "shapefile",
    "write_assessment",
    "write_assessment_postgis",
    "write_csv",
    "write_distance_rasters",
    "write_geojson",
    "write_gpkg",
    "write_postgis",
    "write_robustness",
    "write_shapefile",
]
