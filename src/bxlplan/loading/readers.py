"""Readers for the file formats of Brussels data: vector files, IBSA / Statbel tables,
GTFS stops and OSMnx GraphML. Each turns a read failure into a :class:`DataError`
naming the file."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from ..errors import DataError

__all__ = ["read_table", "read_vector"]


def read_vector(
    path: Path,
    *,
    layer: str | None = None,
    columns: list[str] | None = None,
    crs: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a GeoPackage, GeoJSON (including raw WFS answers) or Shapefile layer.

    Parameters
    ----------
    path : Path
        The file.
    layer : str, optional
        The layer of a GeoPackage (default: its only or first layer).
    columns : list of str, optional
        The fields to read (only those present are asked for); default all.
    crs : str, optional
        The CRS of a file that declares none (it never overrides one in the file).

    Returns
    -------
    GeoDataFrame
        The features as read, in the file's CRS.

    Raises
    ------
    DataError
        When the file cannot be read.

    Examples
    --------
    >>> import tempfile, shapely
    >>> path = Path(tempfile.mkdtemp()) / "one.geojson"
    >>> gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.Point(4.35, 50.85)],
    ...                  crs=4326).to_file(path)
    >>> gdf = read_vector(path)
    >>> list(gdf["name"]), gdf.crs.to_epsg()
    (['a'], 4326)
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*user_version.*")
            if columns is not None:
                fields = set(pyogrio.read_info(path, layer=layer)["fields"])
                columns = [c for c in columns if c in fields]
            gdf = pyogrio.read_dataframe(path, layer=layer, columns=columns)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise DataError(
            f"cannot read {path}"
            + (f" (layer '{layer}')" if layer else "")
            + f": {exc}. "
            "Check that the file is a complete GeoPackage, GeoJSON or Shapefile."
        ) from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf:
        raise DataError(f"{path} has no geometry column: is it a table, not a layer?")
    if gdf.crs is None and crs is not None:
        gdf = gdf.set_crs(crs)
    if len(gdf) == 0:
        raise DataError(
            f"{path}" + (f" (layer '{layer}')" if layer else "") + " is empty: it has "
            "no features. Re-export or re-fetch it (bxlplan fetch --force)."
        )
    return gdf


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}): "
            f"{exc.msg}. The file may be truncated: fetch it again."
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text (byte {exc.start}): JSON files must be UTF-8"
        ) from exc
    except RecursionError:
        raise DataError(
            f"{path}: the JSON is nested too deeply to be a data table"
        ) from None


def _check_separator(path: Path, encoding: str, sep: str) -> None:
    """Refuse a table whose header line does not use ``sep`` but another separator,
    before any field is looked for (the message would be about a missing field)."""
    with open(path, encoding=encoding, newline="") as fh:
        header = fh.readline()
    if sep in header:
        return
    for other, name in ((",", "','"), ("\t", "a tab"), ("|", "'|'")):
        if other in header:
            raise DataError(
                f"{path}, line 1: the header {header.strip()[:80]!r} is separated by "
                f"{name} where IBSA CSV files use '{sep}' (with decimal commas): "
                f"export the table again with '{sep}' as separator, or declare the "
                "file as format: csv in the layer catalog"
            )


def _read_csv(path: Path, sep: str | None) -> pd.DataFrame:
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            if sep is None:
                with open(path, encoding=encoding, newline="") as fh:
                    sample = fh.read(4096)
                sep = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
            else:
                _check_separator(path, encoding, sep)
            return pd.read_csv(
                path, sep=sep, dtype=str, keep_default_na=False, encoding=encoding
            )
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, csv.Error) as exc:
            raise DataError(f"cannot parse {path} as CSV: {exc}") from exc
    raise DataError(f"{path}: unknown text encoding (tried UTF-8 and Latin-1)")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return "an object" if isinstance(value, dict) else "a list"


def _check_json_row(path: Path, index: int, row: Any, header: list[str]) -> None:
    """An IBSA JSON row is a non-empty list of plain cells (text, number or null)."""
    where = f"{path}: row {index} of the JSON array (counting the header as row 0)"
    if not isinstance(row, list):
        raise DataError(
            f"{where} is {_json_kind(row)}, not a list of cells like the header "
            f"{header}: the file is damaged or not an IBSA export; fetch it again"
        )
    if not row:
        raise DataError(f"{where} is an empty list; expected cells like {header}")
    for j, cell in enumerate(row):
        if isinstance(cell, list | dict):
            raise DataError(
                f"{where}, cell {j} is {_json_kind(cell)}; cells must be text, "
                "numbers or null"
            )


def _value_position(
    path: Path, header: list[str], value_column: str | int | None
) -> int:
    """Position of the value column of an IBSA export (see :func:`read_table`)."""
    if value_column is None:
        return len(header) - 1
    if isinstance(value_column, int):
        if not 0 <= value_column < len(header):
            raise DataError(
                f"{path}: value_column {value_column} is outside the header's "
                f"{len(header)} columns ({header})"
            )
        return value_column

    def norm(text: str) -> str:
        return " ".join(str(text).split()).casefold()

    found = [i for i, h in enumerate(header) if norm(h) == norm(value_column)]
    if len(found) != 1:
        raise DataError(
            f"{path}: value_column '{value_column}' of the catalog is "
            f"{'not' if not found else 'more than once'} in the header; columns: "
            f"{header}"
        )
    return found[0]


def read_table(
    path: Path, fmt: str, value_column: str | int | None = None
) -> tuple[pd.DataFrame, list[int], dict[str, Any]]:
    """Read a socio-economic table.

    Parameters
    ----------
    path
        The file.
    fmt
        ``csv`` (separator sniffed), ``ibsa_csv`` (``;``, decimal commas),
        ``ibsa_json`` (a JSON array of rows: a header row, summary rows, then
        ``[code, name, value]``) or ``mdq_api`` (the perspective.brussels Monitoring API:
        entries ``{id, value, flag}``).
    value_column
        ``ibsa_json`` only: which column of a multi-indicator export is the layer's
        ``value`` - its header text (case and spacing ignored) or its position (0 = the
        first column); default the last column. Summary rows ("Moyenne régionale",
        "Total RBC", ...) carry one value per indicator column, aligned on the last
        columns of the header; the summary returned is the chosen indicator's.

    Returns
    -------
    (table, rows, summary)
        Text cells; the line number of each row in the file (JSON: its position in the
        array); summary rows found in the file (label -> value).

    Raises
    ------
    DataError
        When the file cannot be read or parsed.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "income.csv"
    >>> _ = path.write_text("code;value\\n1;19258,84\\n2;ND\\n")
    >>> table, rows, summary = read_table(path, "ibsa_csv")
    >>> table.to_dict("list"), rows
    ({'code': ['1', '2'], 'value': ['19258,84', 'ND']}, [2, 3])
    """
    summary: dict[str, Any] = {}
    if fmt in ("csv", "ibsa_csv"):
        df = _read_csv(path, ";" if fmt == "ibsa_csv" else None)
        return df, [i + 2 for i in range(len(df))], summary
    if fmt == "ibsa_json":
        content = _read_json(path)
        if (
            not isinstance(content, list)
            or not content
            or not isinstance(content[0], list)
        ):
            raise DataError(
                f"{path}: expected a JSON array of rows (IBSA export), with a header row"
            )
        header = [str(h) for h in content[0]]
        value_at = _value_position(path, header, value_column)
        data, rows = [], []
        for i, row in enumerate(content[1:], start=1):
            _check_json_row(path, i, row, header)
            first = str(row[0]).strip()
            if not first.isdigit():  # "Moyenne régionale", "Total RBC", "Seuil", ...
                # one value per indicator column, aligned on the header's last columns
                values = row[1:]
                at = value_at - (len(header) - len(values))
                summary[first] = values[at] if 0 <= at < len(values) else None
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{path}: row {i} has {len(row)} cells, the header has "
                    f"{len(header)} ({header})"
                )
            data.append([str(v) if v is not None else "" for v in row])
            rows.append(i)
        df = pd.DataFrame(data, columns=header)
        df.columns = [*header[:value_at], "value", *header[value_at + 1 :]]
        return df, rows, summary
    if fmt == "mdq_api":
        content = _read_json(path)
        if isinstance(content, dict):
            content = content.get("data", content.get("values", content.get("items")))
        if not isinstance(content, list) or not all(
            isinstance(r, dict) for r in content
        ):
            raise DataError(
                f"{path}: expected the Monitoring API's list of {{id, value, flag}} entries"
            )
        df = pd.DataFrame(content).astype(object)
        df = df.where(df.notna(), "").astype(str)
        if "flag" in df and "value" in df:
            flagged = df["flag"].str.strip() != ""
            df.loc[flagged & (df["value"].isin(["", "None", "nan"])), "value"] = df[
                "flag"
            ]
        return df, list(range(len(df))), summary
    raise DataError(f"{path}: unknown table format '{fmt}' in the layer catalog")
