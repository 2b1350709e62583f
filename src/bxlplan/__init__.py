"""bxlplan: planning toolkit for the Brussels-Capital Region's priority development poles.

Layers: ``loading`` -> ``indicators`` -> ``scoring`` -> ``exports``, with
``scenarios`` on top. Nothing upstream imports downstream.
"""

from __future__ import annotations

__version__ = "0.1.0"

import warnings  # noqa: E402

# GDAL notes that some published GeoPackages have user_version 0: harmless, not news.
warnings.filterwarnings(
    "ignore", message="GPKG: unrecognized user_version", category=RuntimeWarning
)

from .errors import BxlplanError, ConfigError, DataError, FetchError  # noqa: E402
from .loading import catalog, data_dir, load, load_polygons  # noqa: E402

__all__ = [
    "BxlplanError",
    "ConfigError",
    "DataError",
    "FetchError",
    "__version__",
    "catalog",
    "data_dir",
    "load",
    "load_polygons",
]
