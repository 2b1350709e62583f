"""GIS exports that open cleanly in QGIS.

* GeoPackage: several layers in one file, provenance in the layer metadata;
* GeoJSON: EPSG:4326, RFC 7946 (lon/lat order, no ``crs`` member);
* Shapefile: field names cut to 10 characters, with a sidecar CSV mapping each short
  name to the full column name so nothing is ambiguous;
* CSV without geometry;
* GeoTIFF: network distance to the nearest facility per category (EPSG:31370, nodata
  outside the region, DEFLATE-compressed, with overviews and provenance tags).

Every writer is atomic (temporary file, then rename), refuses to replace an existing
file without ``overwrite=True``, and leaves no partial file behind on failure.
:func:`write_assessment` writes its whole set at once (``bxlplan._io.output_set``): the
folder holds the old set or the new one, never a mix, and every target is checked
before anything is written (:func:`assessment_names` lists them for a check before the
computation).

Time stamps (GeoPackage ``last_change``, GeoTIFF ``TIFFTAG_DATETIME`` and
``created_at``, ``written_at`` in the provenance) come from one run time stamp, which
``SOURCE_DATE_EPOCH`` sets for byte-identical re-runs.

CSV formula injection: text cells (and column names) that start with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return are prefixed with ``'`` in every CSV bxlplan
writes, as OWASP recommends, so that a spreadsheet shows them as text instead of
running them as formulas; numeric columns are written unchanged (a negative number
stays a number).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely
from rasterio.enums import Resampling
from rasterio.transform import from_origin

from .._gpkg import _meta_json, _plain, _stamped
from .._gpkg import write_gpkg as _write_gpkg
from .._io import atomic_path, atomic_write, check_target, output_set, run_timestamp
from .._outputs import EXTENTS, FORMATS, assessment_names
from .._version import __version__
from ..errors import DataError
from ..loading.catalog import read_catalog_file

__all__ = [
    "FORMATS",
    "assessment_layers",
    "assessment_names",
    "csv_safe",
    "csv_bytes",
    "shapefile_names",
    "write_assessment",
    "write_csv",
    "write_distance_rasters",
    "write_geojson",
    "write_gpkg",
    "write_shapefile",
]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_text(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas (OWASP).

    Text cells, column names and index labels starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return get a leading ``'``; numbers are left as they
    are, so a negative number stays a number.

    Parameters
    ----------
    table : DataFrame
        The table to export.

    Returns
    -------
    pandas.DataFrame
        The neutralised copy.

    Examples
    --------
    >>> csv_safe(pd.DataFrame({"name": ["=HYPERLINK()"], "v": [-3]}))
                name  v
    0  '=HYPERLINK() -3
    """
    out = table.copy()
    for col in out.columns:
        dtype = out[col].dtype
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            out[col] = out[col].map(_safe_text)
    out.columns = [_safe_text(c) for c in out.columns]
    if pd.api.types.is_object_dtype(out.index.dtype) or pd.api.types.is_string_dtype(
        out.index.dtype
    ):
        out.index = out.index.map(_safe_text)
    return out


def csv_bytes(table: pd.DataFrame, *, index: bool = False) -> bytes:
    """The table as UTF-8 CSV, neutralised against formula injection (:func:`csv_safe`).

    Parameters
    ----------
    table : DataFrame
        The table.
    index : bool, default False
        Write the index as the first column.

    Returns
    -------
    bytes
        The CSV text, UTF-8.

    Examples
    --------
    >>> csv_bytes(pd.DataFrame({"name": ["=1+1", "ok"], "v": [-1, 2]}))
    b"name,v\\n'=1+1,-1\\nok,2\\n"
    """
    return csv_safe(table).to_csv(index=index).encode("utf-8")


def write_gpkg(
    layers: dict[str, gpd.GeoDataFrame],
    path: str | Path,
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
    layer_metadata: dict[str, dict[str, Any]] | None = None,
    qgis_lang: str | None = None,
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
    qgis_lang : {"fr", "nl", "en"}, optional
        Make the file QGIS-ready (:func:`bxlplan.exports.qgis.style_gpkg`): a default
        style per layer in ``layer_styles``, field aliases in ``gpkg_data_columns``
        and layer descriptions in ``gpkg_contents``, in that language.

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
    >>> areas = gpd.GeoDataFrame({"area_id": ["1"], "score_services": [50.0]},
    ...     geometry=[shapely.box(149000, 170000, 149100, 170100)], crs=31370)
    >>> path = write_gpkg({"areas": areas}, Path(tempfile.mkdtemp()) / "a.gpkg",
    ...                   {"source": "example"}, qgis_lang="en")
    >>> [name for name, _ in pyogrio.list_layers(path)]
    ['areas', 'layer_styles']
    """
    finish = None
    if qgis_lang is not None:
        from .qgis import style_gpkg

        def finish(tmp: Path) -> None:
            style_gpkg(
                tmp, {n: _plain(g) for n, g in layers.items()}, qgis_lang,
                run_time=run_time or run_timestamp(),
            )  # fmt: skip

    return _write_gpkg(
        layers, path, metadata, overwrite=overwrite, run_time=run_time,
        layer_metadata=layer_metadata, finish=finish,
    )  # fmt: skip


def write_geojson(
    gdf: gpd.GeoDataFrame,
    path: str | Path,
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
) -> Path:
    """GeoJSON in EPSG:4326 following RFC 7946, with a provenance sidecar.

    Parameters
    ----------
    gdf : GeoDataFrame
        The layer (any CRS; written in EPSG:4326).
    path : str or Path
        The file (written atomically).
    metadata : dict
        Provenance, written to ``<path>.provenance.json`` (RFC 7946 has no place for
        it).
    overwrite : bool, default False
        Replace the files when they exist.
    run_time : datetime.datetime, optional
        The time stamp of the provenance (default :func:`bxlplan._io.run_timestamp`).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    DataError
        When a file exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, shapely
    >>> areas = gpd.GeoDataFrame({"area_id": ["1"]},
    ...     geometry=[shapely.box(149000, 170000, 149100, 170100)], crs=31370)
    >>> path = write_geojson(areas, Path(tempfile.mkdtemp()) / "a.geojson",
    ...                      {"source": "example"})
    >>> sorted(p.name for p in path.parent.iterdir())
    ['a.geojson', 'a.geojson.provenance.json']
    """
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        pyogrio.write_dataframe(
            _plain(gdf).to_crs(4326), tmp, driver="GeoJSON", RFC7946="YES"
        )
    atomic_write(
        path.with_name(path.name + ".provenance.json"),
        _meta_json(_stamped(metadata, run_time)).encode(),
    )
    return path


_THRESHOLD = re.compile(r"^\d+m$")


@functools.cache
def _abbreviations() -> tuple[tuple[tuple[str, ...], str], ...]:
    """The phrases and words of ``layers/styles.yaml`` (``shapefile``), longest first."""
    table = read_catalog_file("styles.yaml").get("shapefile", {})
    pairs = [
        (tuple(str(k).split("_")), str(v or ""))
        for group in ("phrases", "words")
        for k, v in (table.get(group) or {}).items()
    ]
    return tuple(sorted(pairs, key=lambda kv: -len(kv[0])))


def short_name(column: str, width: int = 10) -> str:
    """A readable abbreviation of a column name of at most ``width`` characters.

    The scheme (documented with its table in ``layers/styles.yaml``, ``shapefile``): a
    name that fits is kept; otherwise thresholds (``800m``) are dropped, phrases and
    words are replaced by their abbreviations (``access`` -> ``acc``, ``pharmacy`` ->
    ``phar``, ``within..share`` -> ``s``...), the parts joined by ``_``; a name still
    too long loses the last letter of its longest part (the last of equals) until it
    fits, then its ``_``, then is cut.

    Examples
    --------
    >>> short_name("access_pharmacy_within_800m_share")
    'acc_phar_s'
    >>> short_name("score_overall")
    'sc_overall'
    """
    if len(column) <= width:
        return column
    tokens = [t for t in column.split("_") if t and not _THRESHOLD.match(t)]
    table = _abbreviations()
    parts: list[str] = []
    i = 0
    while i < len(tokens):
        for words, abbr in table:
            if tuple(tokens[i : i + len(words)]) == words:
                if abbr:
                    parts.append(abbr)
                i += len(words)
                break
        else:
            parts.append(tokens[i])
            i += 1
    parts = parts or [column[:width]]
    while len("_".join(parts)) > width and max(map(len, parts)) > 1:
        longest = max(range(len(parts)), key=lambda j: (len(parts[j]), j))
        parts[longest] = parts[longest][:-1]
    name = "_".join(parts)
    if len(name) > width:
        name = "".join(parts)[:width]
    return name


def shapefile_names(columns: list[str]) -> dict[str, str]:
    """Unique field names of at most 10 characters for a Shapefile.

    By the readable abbreviation scheme of :func:`short_name`; a name already taken
    (case-insensitively, as in dBase) ends in ``_2``, ``_3``... instead.
    Deterministic: the same columns in the same order give the same names.

    Parameters
    ----------
    columns : list of str
        The full column names.

    Returns
    -------
    dict
        Full name -> short name.

    Examples
    --------
    >>> shapefile_names(["access_pharmacy_within_800m_share", "area_id"])
    {'access_pharmacy_within_800m_share': 'acc_phar_s', 'area_id': 'area_id'}
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    for col in columns:
        short = short_name(col)
        i = 2
        base = short
        while short.lower() in used:
            tail = f"_{i}"
            short = base[: 10 - len(tail)].rstrip("_") + tail
            i += 1
        used.add(short.lower())
        out[col] = short
    return out


def write_shapefile(
    gdf: gpd.GeoDataFrame,
    path: str | Path,
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
    qgis_lang: str | None = None,
    style_as: str | None = None,
) -> Path:
    """Shapefile with readable field names of at most 10 characters.

    Field names by :func:`shapefile_names`, with a ``<name>_fields.csv`` sidecar
    (short name, full name); provenance in ``<name>.provenance.json``.

    Parameters
    ----------
    gdf : GeoDataFrame
        The layer.
    path : str or Path
        The ``.shp`` file (the set of files is written atomically).
    metadata : dict
        Provenance.
    overwrite : bool, default False
        Replace the files when they exist.
    run_time : datetime.datetime, optional
        The time stamp of the provenance (default :func:`bxlplan._io.run_timestamp`).
    qgis_lang : {"fr", "nl", "en"}, optional
        Write a ``<name>.qml`` style beside it, which QGIS loads by default: the
        layer's renderer and the full labels of its short fields as aliases
        (:func:`bxlplan.exports.qgis.layer_qml`).
    style_as : str, optional
        The kind of layer the style is for: ``areas``, ``shortage_zones``,
        ``facilities``, ``perimeter_<name>`` (default: the file name).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    DataError
        When a file exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, shapely
    >>> areas = gpd.GeoDataFrame({"area_id": ["1"], "score_services": [50.0]},
    ...     geometry=[shapely.box(149000, 170000, 149100, 170100)], crs=31370)
    >>> path = write_shapefile(areas, Path(tempfile.mkdtemp()) / "a.shp",
    ...                        {"source": "example"}, qgis_lang="en", style_as="areas")
    >>> sorted(p.suffix for p in path.parent.iterdir())
    ['.cpg', '.csv', '.dbf', '.json', '.prj', '.qml', '.shp', '.shx']
    """
    path = Path(path)
    plain = _plain(gdf)
    names = shapefile_names([c for c in plain.columns if c != plain.geometry.name])
    qml = None
    if qgis_lang is not None:
        from .qgis import layer_qml

        qml = layer_qml(style_as or path.stem, plain, qgis_lang, fields=names)
    check_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        pyogrio.write_dataframe(
            plain.rename(columns=names),
            tmpdir / path.name,
            driver="ESRI Shapefile",
            encoding="UTF-8",
        )
        for part in tmpdir.iterdir():
            part.replace(path.parent / part.name)
    finally:
        for part in tmpdir.glob("*"):
            part.unlink()
        tmpdir.rmdir()
    table = pd.DataFrame({"short_name": list(names.values()), "full_name": list(names)})
    atomic_write(path.with_name(path.stem + "_fields.csv"), csv_bytes(table))
    atomic_write(
        path.with_name(path.stem + ".provenance.json"),
        _meta_json(_stamped(metadata, run_time)).encode(),
    )
    if qml is not None:
        atomic_write(path.with_suffix(".qml"), qml.encode("utf-8"))
    return path


def write_csv(
    gdf: pd.DataFrame,
    path: str | Path,
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
) -> Path:
    """CSV of the attributes (no geometry) with a provenance sidecar.

    Text cells are neutralised against formula injection (:func:`csv_safe`).

    Parameters
    ----------
    gdf : DataFrame
        The table (a geometry column is left out).
    path : str or Path
        The file (written atomically).
    metadata : dict
        Provenance, written to a ``.provenance.json`` sidecar.
    overwrite : bool, default False
        Replace the files when they exist.
    run_time : datetime.datetime, optional
        The time stamp of the provenance (default :func:`bxlplan._io.run_timestamp`).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    DataError
        When a file exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile
    >>> path = write_csv(pd.DataFrame({"area_id": ["1"], "name": ["=cmd"]}),
    ...                  Path(tempfile.mkdtemp()) / "a.csv", {"source": "example"})
    >>> path.read_text(encoding="utf-8").splitlines()
    ['area_id,name', "1,'=cmd"]
    """
    path = Path(path)
    check_target(path, overwrite)
    table = pd.DataFrame(
        gdf.drop(columns=[gdf.geometry.name])
        if isinstance(gdf, gpd.GeoDataFrame)
        else gdf
    )
    table = table.drop(
        columns=[
            c
            for c in table.columns
            if isinstance(table[c].dtype, gpd.array.GeometryDtype)
        ]
    )
    atomic_write(path, csv_bytes(table))
    atomic_write(
        path.with_name(path.stem + ".provenance.json"),
        _meta_json(_stamped(metadata, run_time)).encode(),
    )
    return path


def write_distance_rasters(
    ctx: Any,
    out: str | Path,
    *,
    resolution: float = 100.0,
    categories: list[str] | None = None,
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
) -> list[Path]:
    """GeoTIFF of the network distance (m) to the nearest facility, one per category.

    Cell centres inside the region are attached to the street network like any origin;
    cells outside the region are nodata. Float32, DEFLATE, tiled, with overviews (2, 4,
    8, 16) and provenance tags.

    Parameters
    ----------
    ctx : Context
        A prepared assessment context (:func:`bxlplan.prepare`).
    out : str or Path
        The folder of the GeoTIFFs (``distance_<category>.tif``).
    resolution : float, default 100.0
        The cell size (m).
    categories : list of str, optional
        The categories (default: every category with facilities).
    overwrite : bool, default False
        Replace the files when they exist.
    run_time : datetime.datetime, optional
        ``TIFFTAG_DATETIME`` and ``created_at`` (default
        :func:`bxlplan._io.run_timestamp`).

    Returns
    -------
    list of Path
        The GeoTIFFs written.

    Raises
    ------
    DataError
        When a category has no distance (missing data or unknown), or a file exists
        and ``overwrite`` is False.

    Examples
    --------
    Needs a prepared context (minutes on the whole pack), so it is not run here:

    >>> import bxlplan
    >>> paths = write_distance_rasters(bxlplan.prepare(), "out",
    ...                                categories=["pharmacy"])  # doctest: +SKIP
    >>> [p.name for p in paths]  # doctest: +SKIP
    ['distance_pharmacy.tif']
    """
    from ..indicators.access import euclidean_nearest

    out = Path(out)
    stamp = (run_time or run_timestamp()).astimezone(dt.UTC)
    region = shapely.union_all(ctx.communes.geometry.values)
    xmin, ymin, xmax, ymax = region.bounds
    xmin, ymin = (
        np.floor(xmin / resolution) * resolution,
        np.floor(ymin / resolution) * resolution,
    )
    width = int(np.ceil((xmax - xmin) / resolution))
    height = int(np.ceil((ymax - ymin) / resolution))
    xs = xmin + (np.arange(width) + 0.5) * resolution
    ys = ymin + height * resolution - (np.arange(height) + 0.5) * resolution
    gx, gy = np.meshgrid(xs, ys)
    pts = shapely.points(gx.ravel(), gy.ravel())
    shapely.prepare(region)
    inside = shapely.contains(region, pts)
    att = ctx.graph.attach(pts[inside]) if ctx.distance == "network" else None
    transform = from_origin(xmin, ymin + height * resolution, resolution, resolution)
    written = []
    for cat in categories or list(ctx.access):
        if cat not in ctx.access:
            raise DataError(
                f"no distance for category '{cat}' (missing data or unknown)"
            )
        sub = ctx.facilities.loc[ctx.facilities["category"] == cat]
        if att is not None:
            dist = ctx.graph.nearest(att, ctx.graph.attach(sub.geometry))
        else:
            dist = euclidean_nearest(pts[inside], sub.geometry.values)
        flat = np.full(width * height, -1.0, dtype="float32")
        flat[inside] = np.where(np.isfinite(dist), dist, -1.0)
        band = flat.reshape(height, width)
        target = out / f"distance_{cat}.tif"
        profile = {
            "driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32",
            "crs": "EPSG:31370", "transform": transform, "nodata": -1.0, "compress": "deflate",
            "tiled": True, "blockxsize": 256, "blockysize": 256,
        }  # fmt: skip
        with (
            atomic_path(target, overwrite=overwrite) as tmp,
            rasterio.open(tmp, "w", **profile) as dst,
        ):
            dst.write(band, 1)
            dst.update_tags(
                    category=cat, unit="m", distance=ctx.distance,
                    threshold_m=str(ctx.categories[cat]["threshold_m"]), resolution_m=str(resolution),
                    bxlplan_version=__version__, sources=_meta_json(ctx.sources),
                created_at=stamp.isoformat(timespec="seconds"),
                TIFFTAG_DATETIME=stamp.strftime("%Y:%m:%d %H:%M:%S"),
                parameters=_meta_json({"origins_cell_m": ctx.config.get("origins_cell_m"), "walking_thresholds_m": {c: v["threshold_m"] for c, v in ctx.categories.items()}}),
                    description=f"distance to the nearest {cat} (m); nodata outside the region",
                )  # fmt: skip
            dst.set_band_description(1, f"distance_to_nearest_{cat}_m")
            dst.build_overviews([2, 4, 8, 16], Resampling.average)
            dst.update_tags(ns="rio_overview", resampling="average")
        written.append(target)
    return written


# provenance keys of a layer's load() record kept in an output's sources
_SOURCE_KEYS = (
    "layer", "source", "source_url", "sha256", "licence", "attribution", "loaded_at",
    "bxlplan_version", "fetched", "population_source", "population_label", "year",
    "file", "method", "kind",
)  # fmt: skip


def _loaded_records(ctx: Any) -> dict[str, dict[str, Any]]:
    """The load() provenance records the context's layers still carry, by layer."""
    found: dict[str, dict[str, Any]] = {}
    for value in (
        vars(ctx).values() if ctx is not None and hasattr(ctx, "__dict__") else ()
    ):
        attrs = getattr(value, "attrs", None)
        record = attrs.get("bxlplan") if isinstance(attrs, dict) else None
        if isinstance(record, dict) and isinstance(record.get("layer"), str):
            found.setdefault(record["layer"], record)
    return found


def _source_record(name: str, value: Any, loaded: dict[str, dict[str, Any]]) -> Any:
    """A source's full provenance: path or URL as given, sha256, licence, attribution.

    A record (dict) is kept as it is; a bare path takes the record its layer was
    loaded with when the context still has it, else the catalog's licence and
    attribution and the sha256 of the file now (``sha256_at: export``). Paths are
    recorded as given, never made relative to another folder.
    """
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "report"}
    if value is None:
        return None
    record = loaded.get(name)
    if record is not None and str(record.get("source")) == str(value):
        return {k: record[k] for k in _SOURCE_KEYS if k in record}
    out: dict[str, Any] = {"source": str(value)}
    from ..errors import ConfigError
    from ..loading.catalog import get_spec

    try:
        spec = get_spec(name)
        out.update(licence=spec.licence, attribution=spec.attribution)
    except (ConfigError, DataError):
        pass
    file = Path(str(value))
    if file.is_file():
        from ..loading.provenance import sha256_file

        out.update(sha256=sha256_file(file), sha256_at="export")
    return out


def assessment_provenance(result: Any) -> dict[str, Any]:
    """The provenance of an assessment, as written in every file of its set.

    ``result.areas.attrs["bxlplan"]`` with each source's full record
    (:func:`_source_record`: sha256, licence, attribution) and the data folder as
    given (``data``) and as an absolute path (``data_absolute``).
    """
    meta = dict(result.areas.attrs.get("bxlplan", {}))
    loaded = _loaded_records(getattr(result, "context", None))
    sources = meta.get("sources")
    if isinstance(sources, dict):
        meta["sources"] = {k: _source_record(k, v, loaded) for k, v in sources.items()}
    if meta.get("data"):
        meta["data_absolute"] = str(Path(str(meta["data"])).absolute())
    return meta


def _reach(ctx: Any) -> float:
    """The largest walking threshold of the context's categories (m)."""
    cats = getattr(ctx, "categories", None) or {}
    values = [
        float(v["threshold_m"])
        for v in cats.values()
        if isinstance(v, dict) and v.get("threshold_m") is not None
    ]
    return max(values, default=0.0)


def _clip_to(gdf: gpd.GeoDataFrame, zone: Any, *, cut: bool) -> gpd.GeoDataFrame:
    """The features of ``gdf`` that touch ``zone``; cut to it when ``cut``."""
    geoms = gdf.geometry.values
    shapely.prepare(zone)
    keep = shapely.intersects(zone, geoms)
    out = gdf.loc[keep].copy()
    if cut and len(out):
        out = out.set_geometry(shapely.intersection(out.geometry.values, zone))
        out = out.loc[~out.geometry.is_empty]
    return out.reset_index(drop=True)


def _extent_parts(
    result: Any, extent: str
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, dict[str, Any]]:
    """The shortage zones, the facilities (their exported columns) and the extent
    record of an assessment's outputs: all of them (``region``), or those within the
    largest walking threshold of the areas (``areas``; the zones cut there)."""
    areas = result.areas
    ctx = getattr(result, "context", None)
    zones = result.shortage_zones
    fac = ctx.facilities if ctx is not None else None
    keep = [
        "facility_id", "category", "theme", "name", "name_fr", "name_nl",
        "threshold_m", "source", "rule_text", "in_region", "geometry",
    ]  # fmt: skip
    if fac is not None:
        fac = fac[[c for c in keep if c in fac]]
    where: dict[str, Any] = {"extent": extent}
    if extent == "areas" and len(areas):
        reach = _reach(ctx)
        zone = shapely.union_all(areas.geometry.values).buffer(reach)
        where["within_m_of_the_areas"] = reach
        zones = _clip_to(
            zones.to_crs(areas.crs) if zones.crs else zones, zone, cut=True
        )
        if "population_est" in zones:
            zones = zones.rename(columns={"population_est": "population_est_region"})
        if fac is not None:
            fac = _clip_to(fac.to_crs(areas.crs) if fac.crs else fac, zone, cut=False)
    return zones, fac, where


def _gpkg_layers(
    result: Any,
    zones: gpd.GeoDataFrame,
    fac: gpd.GeoDataFrame | None,
    where: dict[str, Any],
    perimeters: dict[str, gpd.GeoDataFrame] | None,
) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, dict[str, Any]]]:
    """The layers of the assessment's GeoPackage and their own provenance entries."""
    ctx: Any = getattr(result, "context", None)
    layers = {"areas": result.areas}
    extra: dict[str, dict[str, Any]] = {}
    for cat, zone_rows in zones.groupby("category"):
        layers[f"shortage_{cat}"] = zone_rows.reset_index(drop=True)
        extra[f"shortage_{cat}"] = {"layer": {"category": cat, **where}}
    if fac is not None:
        layers["facilities"] = fac
        fac_meta = dict(ctx.facilities.attrs.get("bxlplan", {}))
        extra["facilities"] = {
            "layer": where,
            "facilities": {k: v for k, v in fac_meta.items() if k != "report"},
        }
    for name, gdf in (perimeters or {}).items():
        layers[f"perimeter_{name}"] = gdf
        prov = gdf.attrs.get("bxlplan") if isinstance(gdf.attrs, dict) else None
        if isinstance(prov, dict):
            extra[f"perimeter_{name}"] = {
                "layer": {k: prov[k] for k in _SOURCE_KEYS if k in prov}
            }
    return layers, extra


def assessment_layers(
    result: Any,
    *,
    extent: str = "areas",
    perimeters: dict[str, gpd.GeoDataFrame] | None = None,
) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, dict[str, Any]]]:
    """The layers of an assessment's GeoPackage (also its PostGIS tables,
    :mod:`bxlplan.exports.postgis`) and each layer's own provenance entries.

    Parameters
    ----------
    result
        An :class:`bxlplan.Assessment`.
    extent
        ``areas`` or ``region`` (see :func:`write_assessment`).
    perimeters
        Context perimeters, written as ``perimeter_<name>``.

    Returns
    -------
    tuple
        ``(layers, layer_metadata)``: name -> GeoDataFrame (``areas``,
        ``shortage_<category>``, ``facilities``, ``perimeter_<name>``) and name -> the
        entries merged over the assessment's provenance
        (:func:`assessment_provenance`).

    Raises
    ------
    DataError
        When ``extent`` is unknown.

    Examples
    --------
    >>> import bxlplan
    >>> layers, extra = assessment_layers(bxlplan.assess("communes"))  # doctest: +SKIP
    >>> list(layers)[:2]  # doctest: +SKIP
    ['areas', 'shortage_pharmacy']
    """
    if extent not in EXTENTS:
        raise DataError(f"unknown extent '{extent}'; choose {' or '.join(EXTENTS)}")
    zones, fac, where = _extent_parts(result, extent)
    return _gpkg_layers(result, zones, fac, where, perimeters)


def write_assessment(
    result: Any,
    out: str | Path,
    formats: list[str],
    *,
    overwrite: bool = False,
    perimeters: dict[str, gpd.GeoDataFrame] | None = None,
    raster_resolution: float = 100.0,
    run_time: dt.datetime | None = None,
    lang: str = "fr",
    extent: str = "areas",
) -> list[Path]:
    """Write an assessment in the chosen formats (``gpkg``, ``geojson``, ``shp``,
    ``csv``, ``tif``) into ``out``, as one set: the folder holds the previous set or
    the new one, never a mix (``bxlplan._io.output_set``).

    The GeoPackage holds the scored areas (``areas``), one ``shortage_<category>`` layer
    per category, the facilities (``facilities``) and the perimeters given
    (``perimeter_<name>``); it is QGIS-ready (:mod:`bxlplan.exports.qgis`: a default
    style per layer, field aliases and layer titles in ``lang``). The Shapefiles are
    ``assessment``, ``shortage_zones``, ``facilities`` and ``perimeter_<name>``, each
    with its ``_fields.csv`` map and a ``.qml`` style. Files of the folder outside the
    set are kept.

    Parameters
    ----------
    result : Assessment
        The assessment (:func:`bxlplan.assess`).
    out : str or Path
        The output folder.
    formats : list of str
        ``gpkg``, ``geojson``, ``shp``, ``csv``, ``tif``.
    overwrite : bool, default False
        Replace the files of the set that exist.
    perimeters : dict, optional
        Context perimeters (name -> GeoDataFrame), written as ``perimeter_<name>``.
    raster_resolution : float, default 100.0
        The cell size of the GeoTIFFs (m).
    run_time : datetime.datetime, optional
        The time stamp of every file (default :func:`bxlplan._io.run_timestamp`).
    lang : {"fr", "nl", "en"}
        Aliases, layer titles and legend labels in QGIS.
    extent : {"areas", "region"}
        ``areas`` (default): the facilities and shortage zones within the largest
        walking threshold of the assessed areas (the zones cut there; their
        ``population_est`` becomes ``population_est_region``, the residents of the
        whole zone); ``region``: all of them.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    DataError
        When a format or extent is unknown, ``out`` cannot be written, or files of the
        set exist and ``overwrite`` is False (checked before anything is written).
    ConfigError
        When ``lang`` is not ``fr``, ``nl`` or ``en``.

    Examples
    --------
    Needs an assessment (minutes on the whole pack), so it is not run here:

    >>> import bxlplan
    >>> files = write_assessment(bxlplan.assess("communes"), "out",
    ...                          ["gpkg", "csv"])  # doctest: +SKIP
    >>> [p.name for p in files]  # doctest: +SKIP
    ['assessment.gpkg', 'assessment.csv', 'assessment.provenance.json']
    """
    from .labels import check_lang

    out = Path(out)
    names = assessment_names(formats)
    check_lang(lang)
    if extent not in EXTENTS:
        raise DataError(
            f"unknown extent '{extent}'; choose {' or '.join(EXTENTS)} (--extent)"
        )
    meta = assessment_provenance(result)
    areas = result.areas
    zones, fac, where = _extent_parts(result, extent)
    written: list[str] = []
    with output_set(out, names, overwrite=overwrite, run_time=run_time) as stage:
        folder, when = stage.path, stage.run_time
        if "gpkg" in formats:
            layers, extra = _gpkg_layers(result, zones, fac, where, perimeters)
            write_gpkg(
                layers, folder / "assessment.gpkg", meta, run_time=when,
                layer_metadata=extra, qgis_lang=lang,
            )  # fmt: skip
            written.append("assessment.gpkg")
        if "geojson" in formats:
            write_geojson(areas, folder / "assessment.geojson", meta, run_time=when)
            written.append("assessment.geojson")
        if "shp" in formats:
            shapes = {"assessment": (areas, "areas", meta)}
            if len(zones):
                shapes["shortage_zones"] = (
                    zones,
                    "shortage_zones",
                    {**meta, "layer": where},
                )
            if fac is not None and len(fac):
                shapes["facilities"] = (fac, "facilities", {**meta, "layer": where})
            for name, gdf in (perimeters or {}).items():
                shapes[f"perimeter_{name}"] = (gdf, f"perimeter_{name}", meta)
            for stem, (gdf, kind, layer_meta) in shapes.items():
                write_shapefile(
                    gdf, folder / f"{stem}.shp", layer_meta, run_time=when,
                    qgis_lang=lang, style_as=kind,
                )  # fmt: skip
                written.append(f"{stem}.shp")
        if "csv" in formats:
            write_csv(areas, folder / "assessment.csv", meta, run_time=when)
            written.append("assessment.csv")
        if "tif" in formats:
            tifs = write_distance_rasters(
                result.context, folder / "rasters",
                resolution=raster_resolution, run_time=when,
            )  # fmt: skip
            written += [f"rasters/{p.name}" for p in tifs]
    return [out / rel for rel in written]
