"""GeoPackage writing shared by every layer: several layers in one file, atomically,
with their provenance in each layer's metadata and a reproducible ``last_change``.

It lives below the layers so that :meth:`bxlplan.scoring.assess.Assessment.to_file`
and :mod:`bxlplan.exports.gis` (which adds the QGIS styles) share it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from ._io import atomic_path, run_timestamp

__all__ = ["write_gpkg"]


def _meta_json(meta: dict[str, Any]) -> str:
    return json.dumps(meta, default=str, ensure_ascii=False)


def _stamped(meta: dict[str, Any], run_time: dt.datetime | None) -> dict[str, Any]:
    """Provenance with the time the file was written (the run's time stamp)."""
    return {**meta, "written_at": (run_time or run_timestamp()).isoformat()}


@contextlib.contextmanager
def _gpkg_date(run_time: dt.datetime | None) -> Iterator[None]:
    """GDAL's ``OGR_CURRENT_DATE``: the GeoPackage ``last_change`` of every layer."""
    stamp = (run_time or run_timestamp()).astimezone(dt.UTC)
    key = "OGR_CURRENT_DATE"
    before = pyogrio.get_gdal_config_option(key)
    pyogrio.set_gdal_config_options({key: stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z")})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({key: before})


def _plain(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy fit for GDAL: no attrs, nullable integers/booleans as plain types."""
    out = gdf.copy()
    out.attrs = {}
    for col in out.columns:
        if col == out.geometry.name:
            continue
        dtype = out[col].dtype
        if isinstance(dtype, pd.BooleanDtype) or str(dtype) == "boolean":
            out[col] = out[col].astype("float").astype("Int8")
        if str(dtype).startswith("Int") and out[col].isna().any():
            out[col] = out[col].astype(float)
        if pd.api.types.is_object_dtype(dtype):
            out[col] = out[col].map(lambda v: None if v is None or v != v else str(v))
    extra_geoms = [
        c
        for c in out.columns
        if c != out.geometry.name and isinstance(out[c].dtype, gpd.array.GeometryDtype)
    ]
    return out.drop(columns=extra_geoms)


def write_gpkg(
    layers: dict[str, gpd.GeoDataFrame],
    path: str | Path,
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
    layer_metadata: dict[str, dict[str, Any]] | None = None,
    finish: Callable[[Path], None] | None = None,
) -> Path:
    """Write several layers into one GeoPackage, with their provenance.

    Provenance goes in each layer's metadata (``bxlplan`` key, JSON): ``metadata``,
    with the layer's own entries of ``layer_metadata`` (by layer name) merged over it.

    Parameters
    ----------
    layers : dict
        Layer name -> GeoDataFrame.
    path : str or Path
        The GeoPackage (written atomically).
    metadata : dict
        Provenance shared by every layer.
    overwrite : bool, default False
        Replace ``path`` when it exists.
    run_time : datetime.datetime, optional
        Every layer's ``last_change`` (default :func:`bxlplan._io.run_timestamp`).
    layer_metadata : dict, optional
        Layer name -> provenance entries of that layer only.
    finish : callable, optional
        Called with the temporary file once every layer is written, before it
        replaces ``path`` (the QGIS styles of :func:`bxlplan.exports.gis.write_gpkg`).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    DataError
        When ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, pyogrio, shapely
    >>> import geopandas as gpd
    >>> areas = gpd.GeoDataFrame({"area_id": ["1"], "score_services": [50.0]},
    ...     geometry=[shapely.box(149000, 170000, 149100, 170100)], crs=31370)
    >>> path = write_gpkg({"areas": areas}, Path(tempfile.mkdtemp()) / "a.gpkg",
    ...                   {"source": "example"})
    >>> [name for name, _ in pyogrio.list_layers(path)]
    ['areas']
    """
    path = Path(path)
    stamped = _stamped(metadata, run_time)
    extra = layer_metadata or {}
    with atomic_path(path, overwrite=overwrite) as tmp, _gpkg_date(run_time):
        for name, gdf in layers.items():
            meta = _meta_json({**stamped, **extra.get(name, {})})
            pyogrio.write_dataframe(
                _plain(gdf), tmp, layer=name, driver="GPKG", append=tmp.exists(),
                layer_metadata={"bxlplan": meta},
            )  # fmt: skip
        if finish is not None:
            finish(tmp)
    return path
