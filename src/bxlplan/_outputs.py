"""The names of an assessment's output files, known before any computation.

Below the layers (it imports nothing heavy) so that ``bxlplan assess`` can refuse an
existing output in a fraction of a second, before geopandas is even imported;
:mod:`bxlplan.exports.gis` writes the files these names describe.
"""

from __future__ import annotations

from .errors import DataError

__all__ = ["EXTENTS", "FORMATS", "assessment_names"]

#: the file formats of ``bxlplan assess --format``
FORMATS = ("gpkg", "geojson", "shp", "csv", "tif")

_SHP_PARTS = ("shp", "shx", "dbf", "prj", "cpg")
# the Shapefiles of an assessment: the areas, the shortage zones, the facilities and the
# perimeters given (their names are known when the set is written)
_SHP_STEMS = ("assessment", "shortage_zones", "facilities", "perimeter_*")
EXTENTS = ("areas", "region")


def _shapefile_set(stem: str) -> list[str]:
    return [f"{stem}.{ext}" for ext in _SHP_PARTS] + [
        f"{stem}_fields.csv", f"{stem}.provenance.json", f"{stem}.qml",
    ]  # fmt: skip


def assessment_names(formats: list[str]) -> list[str]:
    """The files :func:`bxlplan.exports.gis.write_assessment` writes for ``formats``, relative to its folder.

    The GeoTIFFs and the perimeters' Shapefiles are patterns: their names are known
    after the preparation. Pass them to :func:`bxlplan._io.check_output_set` before
    the computation.

    Parameters
    ----------
    formats : list of str
        ``gpkg``, ``geojson``, ``shp``, ``csv``, ``tif``.

    Returns
    -------
    list of str
        File names and glob patterns.

    Raises
    ------
    DataError
        When a format is unknown.

    Examples
    --------
    >>> assessment_names(["gpkg", "csv"])
    ['assessment.gpkg', 'assessment.csv', 'assessment.provenance.json']
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise DataError(
            f"unknown format(s) {unknown} in --format; choose among {', '.join(FORMATS)}"
        )
    files = {
        "gpkg": ["assessment.gpkg"],
        "geojson": ["assessment.geojson", "assessment.geojson.provenance.json"],
        "shp": [n for stem in _SHP_STEMS for n in _shapefile_set(stem)],
        "csv": ["assessment.csv", "assessment.provenance.json"],
        "tif": ["rasters/distance_*.tif"],
    }
    return list(dict.fromkeys(n for f in FORMATS if f in formats for n in files[f]))
