"""bxlplan: planning toolkit for the Brussels-Capital Region's priority development poles.

The everyday verbs, without knowing the folder layout::

    import bxlplan as bp

    hoods = bp.load("neighbourhoods")            # any catalog layer, EPSG:31370
    areas = bp.areas("grid:250")                 # or "neighbourhoods", a path, a GeoDataFrame
    result = bp.assess(areas)                    # prepares a context itself when none is given
    ctx = bp.prepare()                           # ... or prepare once, assess many times
    result = bp.assess(areas, ctx)
    result                                       # a summary in a notebook; .areas, .flags, ...
    result.explore()                             # an interactive map
    result.to_file("assessment.gpkg")
    bp.scenario.run("scenarios/josaphat.yaml", ctx)
    bp.scenario.compare(["a.yaml", "b.yaml"], ctx)
    bp.scenario.batch(["a.yaml"], ctx, grid=["programme.dwellings.social=200,400"])
    bp.robustness(areas, ctx, draws=1000, seed=0)  # rank intervals, robust shortages
    bp.export.map(result.areas)                  # folium map; bp.export.gpkg, .geojson, ...
    bp.registry.describe("score_services")       # what a column means

Layers: ``loading`` -> ``indicators`` -> ``scoring`` -> ``exports``, with ``scenarios``
and ``cli`` on top; nothing upstream imports downstream (``.importlinter``). The heavy
layers (``prepare``, ``assess``, ``scenario``, ``export``, ``registry``) are imported on
first use, so ``import bxlplan`` stays light.
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import TYPE_CHECKING, Any

from ._version import __version__

# GDAL notes that some published GeoPackages have user_version 0: harmless, not news.
warnings.filterwarnings(
    "ignore", message="GPKG: unrecognized user_version", category=RuntimeWarning
)

from .errors import BxlplanError, ConfigError, DataError, FetchError  # noqa: E402

if TYPE_CHECKING:  # for type checkers and IDEs; at run time they load on first use
    import geopandas as gpd

    from . import exports as export
    from . import scenarios as scenario
    from .indicators import registry
    from .loading import catalog, data_dir, load, load_polygons, polygon_areas
    from .scoring import (
        Assessment,
        Context,
        RobustnessResult,
        assess,
        prepare,
        robustness,
    )

__all__ = [
    "Assessment",
    "BxlplanError",
    "ConfigError",
    "Context",
    "DataError",
    "FetchError",
    "__version__",
    "areas",
    "assess",
    "catalog",
    "data_dir",
    "export",
    "load",
    "load_polygons",
    "polygon_areas",
    "prepare",
    "registry",
    "robustness",
    "RobustnessResult",
    "scenario",
]

# name -> (module, attribute or None for the module itself), imported on first use
_LAZY: dict[str, tuple[str, str | None]] = {
    "load": (".loading.load", "load"),
    "load_polygons": (".loading.load", "load_polygons"),
    "polygon_areas": (".loading.load", "polygon_areas"),
    "catalog": (".loading.catalog", "catalog"),
    "data_dir": (".loading.catalog", "data_dir"),
    "prepare": (".scoring.baseline", "prepare"),
    "assess": (".scoring.assess", "assess"),
    "Assessment": (".scoring.assess", "Assessment"),
    "Context": (".scoring.context", "Context"),
    "robustness": (".scoring.robustness", "robustness"),
    "RobustnessResult": (".scoring.robustness", "RobustnessResult"),
    "scenario": (".scenarios", None),
    "export": (".exports", None),
    "registry": (".indicators.registry", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'bxlplan' has no attribute '{name}'")
    module, attr = _LAZY[name]
    value = importlib.import_module(module, __name__)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def areas(
    spec: Any,
    data: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> gpd.GeoDataFrame:
    """Areas to assess, from whatever you have.

    Parameters
    ----------
    spec : str, path-like or GeoDataFrame
        ``"neighbourhoods"``, ``"communes"``, ``"zru"``, ``"cru"``, ``"cqd"``,
        ``"grid:<metres>"``, ``"hex:<metres>"``, the path of a polygon file, or a
        GeoDataFrame of polygons (any CRS; checked and reprojected to EPSG:31370).
    data : str or path-like, optional
        The data folder (default ``$BXLPLAN_DATA``).
    **kwargs
        ``id_field``, ``name_field`` (a file or a GeoDataFrame), ``max_cells`` (a
        grid), ``layer`` (a file).

    Returns
    -------
    GeoDataFrame
        ``area_id``, ``name_fr``, ``name_nl`` and polygons in EPSG:31370.

    Raises
    ------
    DataError
        For an unknown spec, a frame or file without a CRS, geometries that are not
        polygons, areas outside the region or repeated identifiers.

    Examples
    --------
    >>> import bxlplan
    >>> grid = bxlplan.areas("grid:1000")  # the data folder from $BXLPLAN_DATA
    >>> grid.crs.to_epsg(), {"area_id", "name_fr", "name_nl"} <= set(grid.columns)
    (31370, True)
    """
    import geopandas as gpd

    from .loading import data_dir, load_polygons, polygon_areas

    if isinstance(spec, gpd.GeoDataFrame):
        return polygon_areas(spec, data=data, **kwargs)
    if not isinstance(spec, str | os.PathLike):
        raise DataError(
            "areas must be a spec ('neighbourhoods', 'grid:250', ...), a polygon file "
            f"or a GeoDataFrame, got {type(spec).__name__}"
        )
    from .loading.areas import load_areas

    if "layer" in kwargs:  # only a file has layers
        return load_polygons(spec, data=data, **kwargs)
    return load_areas(os.fspath(spec), data_dir(data), **kwargs)
