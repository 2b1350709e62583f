"""Validation and cleaning shared by every loader.

Each check raises :class:`~bxlplan.errors.DataError` with a message naming the file,
layer, field or row and saying what to do. Cleaning steps that change data (null
geometries dropped, invalid geometries repaired, missing-value flags) are recorded in a
report list that ends up in ``.attrs["bxlplan"]["report"]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import DataError
from .catalog import ColumnSpec

__all__ = [
    "BRUSSELS_ENVELOPE_31370",
    "MISSING_FLAGS",
    "WORKING_CRS",
    "apply_columns",
    "clean_geometries",
    "parse_numbers",
    "to_working_crs",
]

WORKING_CRS = "EPSG:31370"
#: Generous envelope of the Brussels-Capital Region in Lambert 72 (the region spans
#: about x 140-158 km, y 160-179 km; the margin keeps facilities across the border).
BRUSSELS_ENVELOPE_31370 = (125_000.0, 145_000.0, 175_000.0, 195_000.0)
#: Belgium's envelope in EPSG:31370 (with a margin), to tell "elsewhere in Belgium"
#: (a national layer to clip) from "a wrong CRS".
BELGIUM_ENVELOPE_31370 = (15_000.0, 15_000.0, 300_000.0, 250_000.0)
#: Cell values meaning "no value" in IBSA / Statbel exports.
MISSING_FLAGS = {"", "ND", "VS", "NA", "N/A", "-", "NON DISPONIBLE", "NAN", "NONE", "."}


def _where(source: str, layer: str | None) -> str:
    return f"{source} (layer '{layer}')" if layer else source


def to_working_crs(
    gdf: gpd.GeoDataFrame, source: str, layer: str | None = None
) -> gpd.GeoDataFrame:
    """Check the CRS and the location of ``gdf`` and reproject it to EPSG:31370.

    Parameters
    ----------
    gdf : GeoDataFrame
        The layer as read.
    source : str
        The file it was read from, named in messages.
    layer : str, optional
        The layer of the file, named in messages.

    Returns
    -------
    GeoDataFrame
        The layer in EPSG:31370.

    Raises
    ------
    DataError
        When the layer has no CRS, or its coordinates do not fall in Brussels for the
        CRS it declares (e.g. longitude/latitude declared as EPSG:31370).

    Examples
    --------
    >>> lonlat = gpd.GeoDataFrame(geometry=[shapely.Point(4.3517, 50.8466)], crs=4326)
    >>> out = to_working_crs(lonlat, "mine.geojson")
    >>> out.crs.to_epsg(), [round(v, -2) for v in out.geometry.iloc[0].coords[0]]
    (31370, [148800.0, 170700.0])
    >>> to_working_crs(lonlat.set_crs(31370, allow_override=True), "mine.geojson")
    Traceback (most recent call last):
    ...
    bxlplan.errors.DataError: mine.geojson declares the projected CRS EPSG:31370 but ...
    """
    where = _where(source, layer)
    if gdf.crs is None:
        raise DataError(
            f"{where} has no coordinate reference system. Add one to the file (a .prj "
            "for a Shapefile, a 'crs' member for GeoJSON) or declare it with "
            "'crs: EPSG:31370' in the file entry of the layer catalog."
        )
    geoms = gdf.geometry.values
    present = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if len(present) == 0:
        return gdf.to_crs(WORKING_CRS)
    bounds = shapely.bounds(present)
    if gdf.crs.is_projected and np.nanmax(np.abs(bounds)) <= 360:
        raise DataError(
            f"{where} declares the projected CRS {gdf.crs.to_string()} but its "
            "coordinates look like longitude/latitude degrees "
            f"(x {bounds[:, 0].min():.4f}..{bounds[:, 2].max():.4f}). Declare EPSG:4326 "
            "for this file instead."
        )
    out = gdf.to_crs(WORKING_CRS)
    pts = shapely.get_coordinates(shapely.point_on_surface(out.geometry.values))
    xmin, ymin, xmax, ymax = BRUSSELS_ENVELOPE_31370
    inside = (
        (pts[:, 0] >= xmin)
        & (pts[:, 0] <= xmax)
        & (pts[:, 1] >= ymin)
        & (pts[:, 1] <= ymax)
    )
    if inside.mean() < 0.5:
        x, y = np.nanmedian(pts[:, 0]), np.nanmedian(pts[:, 1])
        bx0, by0, bx1, by1 = BELGIUM_ENVELOPE_31370
        in_belgium = (
            (pts[:, 0] >= bx0)
            & (pts[:, 0] <= bx1)
            & (pts[:, 1] >= by0)
            & (pts[:, 1] <= by1)
        )
        if in_belgium.mean() > 0.9:  # the CRS is right: the features are elsewhere
            raise DataError(
                f"{where}: {int((~inside).sum()):,} of {len(pts):,} features lie outside "
                "the Brussels region (the CRS looks right: they are elsewhere in "
                "Belgium). Clip or filter them to the region first, e.g. "
                "`ogr2ogr -clipsrc <region.geojson> brussels.gpkg your_file` or, in "
                "Python, `gdf[gdf.intersects(bxlplan.load('region').union_all())]`."
            )
        raise DataError(
            f"{where}: most features do not fall in Brussels for the declared CRS "
            f"{gdf.crs.to_string()} (median position x={x:.1f}, y={y:.1f} in "
            "EPSG:31370). The CRS written in the file is probably wrong: check it "
            "(lon/lat is EPSG:4326, Belgian Lambert 72 is EPSG:31370, Lambert 2008 is "
            "EPSG:3812)."
        )
    return out


def clean_geometries(
    gdf: gpd.GeoDataFrame, source: str, report: list[str], layer: str | None = None
) -> gpd.GeoDataFrame:
    """Drop null or empty geometries and repair invalid ones, reporting both counts.

    Parameters
    ----------
    gdf : GeoDataFrame
        The layer.
    source : str
        The file it was read from, named in messages.
    report : list of str
        Where the counts are appended (changed in place).
    layer : str, optional
        The layer of the file, named in messages.

    Returns
    -------
    GeoDataFrame
        The layer without null or empty geometries, every geometry valid.

    Examples
    --------
    >>> bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    >>> gdf = gpd.GeoDataFrame(geometry=[bowtie, None], crs=31370)
    >>> report = []
    >>> out = clean_geometries(gdf, "mine.gpkg", report)
    >>> len(out), bool(out.is_valid.all()), len(report)
    (1, True, 2)
    """
    geoms = gdf.geometry.values
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        report.append(
            f"{_where(source, layer)}: dropped {int(missing.sum())} feature(s) with no "
            "geometry"
        )
        gdf = gdf.loc[~missing].copy()
        geoms = gdf.geometry.values
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        gdf = gdf.copy()
        gdf.loc[gdf.index[invalid], gdf.geometry.name] = fixed
        report.append(
            f"{_where(source, layer)}: repaired {int(invalid.sum())} invalid "
            "geometry(ies) with make_valid"
        )
    return gdf


_NUMBER_CLEAN = re.compile(r"[\s\u00a0\u202f€%]")


def parse_numbers(
    values: pd.Series,
    *,
    source: str,
    field: str,
    rows: Sequence[int] | None = None,
    percent_as_share: bool = False,
) -> tuple[pd.Series, pd.Series]:
    """Parse numbers written the Belgian way (``19258,84``, ``1 218 255``, ``21,2%``).

    Parameters
    ----------
    values
        The raw cells.
    source, field
        Named in error messages.
    rows
        The row number of each cell in the file (for messages); defaults to the index.
    percent_as_share
        Divide values written with ``%`` by 100.

    Returns
    -------
    (numbers, flags)
        Floats (NaN for missing) and the missing-value flag found (``ND``, ``VS``,
        ``empty``) or ``None``.

    Raises
    ------
    DataError
        Naming the rows whose cells are neither numbers nor missing-value flags.

    Examples
    --------
    >>> numbers, flags = parse_numbers(pd.Series(["19258,84", "1 218 255", "ND"]),
    ...                                source="income.csv", field="value")
    >>> numbers.tolist(), flags.tolist()
    ([19258.84, 1218255.0, nan], [None, None, 'ND'])
    """
    raw = values.astype("object")
    text = raw.where(raw.notna(), "").astype(str).str.strip()
    upper = text.str.upper()
    is_flag = upper.isin(MISSING_FLAGS)
    flags = pd.Series(
        np.where(
            is_flag.to_numpy(),
            np.where(text == "", "empty", upper),
            np.full(len(text), None, dtype=object),
        ),
        index=values.index,
        dtype="object",
    )
    cleaned = text.str.replace(_NUMBER_CLEAN, "", regex=True)
    has_comma = cleaned.str.contains(",", regex=False)
    has_dot = cleaned.str.contains(".", regex=False)
    # "1.234,5": dots are thousands separators; "19258,84": the comma is the decimal
    cleaned = cleaned.where(
        ~(has_comma & has_dot), cleaned.str.replace(".", "", regex=False)
    )
    cleaned = cleaned.str.replace(",", ".", regex=False)
    numbers = pd.to_numeric(cleaned.where(~is_flag), errors="coerce")
    bad = numbers.isna() & ~is_flag
    if bad.any():
        labels = list(rows) if rows is not None else list(values.index)
        where = [
            f"row {labels[i]}: {text.iloc[i]!r}"
            for i in np.flatnonzero(bad.to_numpy())[:5]
        ]
        more = f" (and {int(bad.sum()) - 5} more)" if bad.sum() > 5 else ""
        raise DataError(
            f"{source}: field '{field}' has values that are not numbers: "
            + "; ".join(where)
            + more
            + ". Fix these cells, or leave them empty (or ND) if there is no value."
        )
    if percent_as_share:
        pct = text.str.contains("%", regex=False)
        numbers = numbers.where(~pct, numbers / 100.0)
    return numbers.astype(float), flags


def apply_columns(
    df: pd.DataFrame,
    columns: Sequence[ColumnSpec],
    *,
    source: str,
    report: list[str],
    rows: Sequence[int] | None = None,
    key: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Add the canonical columns of a layer to ``df`` (source columns stay).

    Numeric columns are parsed with :func:`parse_numbers`; ``<name>_flag`` columns keep
    missing-value flags. Required columns must exist; unique columns (or the ``key``
    combination) must not repeat.

    Parameters
    ----------
    df : DataFrame
        The layer as read.
    columns : sequence of ColumnSpec
        The canonical columns of the catalog entry (``LayerSpec.columns``).
    source : str
        The file it was read from, named in messages.
    report : list of str
        Where what was kept as text or filled is appended (changed in place).
    rows : sequence of int, optional
        The row number of each row in the file (for messages).
    key : sequence of str, optional
        Columns whose combination must not repeat.

    Returns
    -------
    DataFrame
        ``df`` with the canonical columns added.

    Raises
    ------
    DataError
        When a required column is absent, a number cannot be parsed or a unique
        value repeats.

    Examples
    --------
    >>> columns = [ColumnSpec("code", ("MD_ID",), "int", required=True, unique=True),
    ...            ColumnSpec("value", ("valeur",), "float")]
    >>> raw = pd.DataFrame({"MD_ID": ["1", "2"], "valeur": ["19258,84", "ND"]})
    >>> out = apply_columns(raw, columns, source="income.csv", report=[])
    >>> out[["code", "value", "value_flag"]].to_dict("list")
    {'code': [1, 2], 'value': [19258.84, nan], 'value_flag': [None, 'ND']}
    """
    df = df.copy()
    available = [
        c for c in df.columns if c != getattr(df, "_geometry_column_name", None)
    ]
    lower = {str(c).lower(): c for c in available}
    for col in columns:
        found = next((lower[s.lower()] for s in col.source if s.lower() in lower), None)
        if found is None:
            if col.required:
                raise DataError(
                    f"{source}: required field '{col.name}' is missing (looked for "
                    f"{', '.join(col.source)}; the file has {', '.join(map(str, available))}"
                    "). Rename the field in the file or add its name to the layer's "
                    "catalog entry."
                )
            if col.name not in df.columns:
                df[col.name] = np.nan if col.type in ("int", "float") else None
            continue
        series = df[found]
        if col.type in ("int", "float"):
            nums, flags = parse_numbers(
                series, source=source, field=str(found), rows=rows
            )
            if col.type == "int":
                frac = nums.dropna() % 1 != 0
                if frac.any():
                    i = frac.idxmax()
                    at = (
                        i
                        if rows is None
                        else rows[int(df.index.get_indexer(pd.Index([i]))[0])]
                    )
                    raise DataError(
                        f"{source}: field '{found}' must hold whole numbers; row "
                        f"{at} has {series.at[i]!r}"
                    )
                missing = nums.isna()
                if col.required and missing.any():
                    pos = np.flatnonzero(missing.to_numpy())[:5]
                    labels = [rows[p] if rows is not None else df.index[p] for p in pos]
                    raise DataError(
                        f"{source}: required field '{found}' is empty on row(s) "
                        f"{', '.join(map(str, labels))}. Every feature needs a "
                        f"{col.name}."
                    )
                df[col.name] = nums.astype("Int64")
            else:
                df[col.name] = nums
                if flags.notna().any():
                    df[f"{col.name}_flag"] = flags
                    counts = flags.value_counts().to_dict()
                    report.append(
                        f"{source}: field '{found}' has no value on {int(flags.notna().sum())}"
                        f" row(s) (flags {counts}); kept as NaN, never as 0"
                    )
        else:
            text = series.astype("object")
            df[col.name] = text.where(text.notna(), None).map(
                lambda v: None if v is None else str(v).strip()
            )
            if col.required and df[col.name].isna().any():
                n = int(df[col.name].isna().sum())
                raise DataError(
                    f"{source}: required field '{found}' is empty on {n} row(s)."
                )
    unique_cols = [c.name for c in columns if c.unique]
    if key:
        unique_cols = []
        dup = df.duplicated(subset=list(key), keep=False)
        if dup.any():
            raise DataError(
                f"{source}: the combination {list(key)} repeats on "
                f"{int(dup.sum())} rows; each must appear once."
            )
    for name in unique_cols:
        vals = df[name]
        dup = vals.notna() & vals.duplicated(keep=False)
        if dup.any():
            codes = sorted(set(vals[dup].astype(str)))[:10]
            pos = np.flatnonzero(dup.to_numpy())[:10]
            labels = [rows[p] if rows is not None else df.index[p] for p in pos]
            raise DataError(
                f"{source}: duplicate {name} value(s) {', '.join(codes)} on rows "
                f"{', '.join(map(str, labels))}. Unit codes must be unique: remove the "
                "duplicated features or fix their codes."
            )
    return df
