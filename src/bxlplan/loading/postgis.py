"""Layers and units read from a PostGIS table.

A table is named by a PostgreSQL connection URL followed by the table::

    postgresql://[user@]host[:port]/database/[schema.]table[?libpq parameters]

e.g. ``postgresql://gis@db.example.org/planning/public.poles`` or, through a local
socket, ``postgresql:///planning/poles?host=/run/postgresql``. Without a schema the
server's ``search_path`` decides (usually ``public``). Put the password in
``~/.pgpass`` or ``PGPASSWORD`` rather than in the URL: the URL is recorded in the
provenance and shown in messages, always with its password masked (:func:`mask_dsn`).

The table must have a geometry column with an SRID (``geometry(MultiPolygon,31370)``,
any CRS), as a file must have a CRS. Units read from it are then checked exactly as a
polygon file is (:func:`bxlplan.loading.load.polygon_areas`): polygons only, inside the
region, a unique identifier field.

The client libraries are the optional extra ``bxlplan[postgis]`` (psycopg 3); they are
imported on first use only.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from .._io import run_timestamp
from .._version import __version__
from ..errors import ConfigError, DataError, FetchError

__all__ = [
    "connect",
    "is_postgres_url",
    "load_table_layer",
    "mask_dsn",
    "read_table",
    "split_table_url",
]

SCHEMES = ("postgresql://", "postgres://")
# libpq parameters that must never be shown
_SECRET_PARAMS = ("password", "sslpassword")


def is_postgres_url(value: Any) -> bool:
    """Whether ``value`` is a PostgreSQL connection URL (``postgresql://...``).

    Parameters
    ----------
    value
        A spec, a path or a URL.

    Returns
    -------
    bool
        True for a string starting with ``postgresql://`` or ``postgres://``.

    Examples
    --------
    >>> is_postgres_url("postgresql://gis@db/planning/poles")
    True
    >>> is_postgres_url("units.gpkg")
    False
    """
    return isinstance(value, str) and value.lower().startswith(SCHEMES)


def mask_dsn(text: str) -> str:
    """``text`` with the password of every PostgreSQL URL in it replaced by ``***``.

    Both forms are masked: ``user:password@host`` and the ``password=`` parameter (in a
    URL query or a ``key=value`` connection string). Use it on anything shown or
    recorded: messages, logs, provenance.

    Parameters
    ----------
    text
        A URL, a connection string or a message quoting one.

    Returns
    -------
    str
        The same text, passwords masked.

    Examples
    --------
    >>> mask_dsn("postgresql://gis:s3cret@db:5432/planning/poles")
    'postgresql://gis:***@db:5432/planning/poles'
    >>> mask_dsn("postgresql:///planning?host=/tmp&password=s3cret")
    'postgresql:///planning?host=/tmp&password=***'
    """
    out = re.sub(r"(?i)(postgres(?:ql)?://[^:/@\s?#]*:)[^@\s]*(@)", r"\1***\2", text)
    names = "|".join(_SECRET_PARAMS)
    return re.sub(rf"(?i)\b({names})\s*=\s*('[^']*'|[^&\s]*)", r"\1=***", out)


def split_table_url(url: str) -> tuple[str, str | None, str]:
    """Split ``postgresql://.../database/[schema.]table`` into the connection URL, the
    schema (None: the server's ``search_path``) and the table.

    Parameters
    ----------
    url
        The URL of a table (see the module's documentation).

    Returns
    -------
    tuple
        ``(dsn, schema, table)``; ``dsn`` is a URL libpq accepts.

    Raises
    ------
    DataError
        When the URL names no database or no table.

    Examples
    --------
    >>> split_table_url("postgresql://gis@db/planning/public.poles?sslmode=require")
    ('postgresql://gis@db/planning?sslmode=require', 'public', 'poles')
    >>> split_table_url("postgres:///planning/poles?host=/tmp")
    ('postgres:///planning?host=/tmp', None, 'poles')
    """
    parts = urllib.parse.urlsplit(url)
    segments = parts.path.lstrip("/").split("/", 1)
    if len(segments) != 2 or not segments[0] or not segments[1]:
        raise DataError(
            f"{mask_dsn(url)}: name the database and the table, e.g. "
            "postgresql://user@host/database/schema.table"
        )
    database, name = segments[0], urllib.parse.unquote(segments[1])
    schema, _, table = name.rpartition(".")
    # by hand: urlunsplit drops the "//" of an empty host (a local socket)
    dsn = f"{parts.scheme}://{parts.netloc}/{database}"
    dsn += f"?{parts.query}" if parts.query else ""
    return dsn, schema or None, table


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # the optional extra is not installed
        raise ConfigError(
            "reading or writing PostGIS needs the PostgreSQL client libraries: "
            "pip install 'bxlplan[postgis]'"
        ) from exc
    return psycopg


def connect(dsn: str, *, autocommit: bool = False) -> Any:
    """Open a connection (psycopg 3) to the database of ``dsn``.

    Parameters
    ----------
    dsn
        A libpq connection URL (``postgresql://user@host:port/database``); without a
        ``connect_timeout`` one of 10 s applies.
    autocommit
        The connection's autocommit mode.

    Returns
    -------
    psycopg.Connection
        The open connection; close it (or use it in a ``with`` block).

    Raises
    ------
    FetchError
        When the server cannot be reached or refuses the connection (the message
        quotes the URL with its password masked).
    ConfigError
        When the PostgreSQL client libraries are not installed.

    Examples
    --------
    >>> with connect("postgresql://gis@db/planning") as conn:  # doctest: +SKIP
    ...     conn.execute("select 1").fetchone()
    (1,)
    """
    psycopg = _psycopg()
    extra = {} if "connect_timeout" in dsn else {"connect_timeout": 10}
    try:
        return psycopg.connect(dsn, autocommit=autocommit, **extra)
    except psycopg.Error as exc:
        detail = mask_dsn(str(exc).strip()).replace("\n", " ")
        raise FetchError(
            f"cannot connect to the database {mask_dsn(dsn)}: {detail}. Check the "
            "host, port, database name and credentials (~/.pgpass or PGPASSWORD), and "
            "that the server accepts connections from this machine"
        ) from exc


def _crs(conn: Any, srid: int) -> Any:
    """The CRS of ``srid`` as PostGIS defines it (``spatial_ref_sys``)."""
    row = conn.execute(
        "SELECT auth_name, auth_srid, srtext FROM spatial_ref_sys WHERE srid = %s",
        (srid,),
    ).fetchone()
    if row is None:
        return f"EPSG:{srid}"
    auth, code, wkt = row
    return f"{auth}:{code}" if auth and code else wkt


def _number(series: pd.Series) -> pd.Series:
    """``numeric`` values (Decimal) as floats."""
    return pd.to_numeric(series.map(lambda v: None if v is None else float(v)))


def read_table(
    url: str,
    *,
    check: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame] | None = None,
) -> gpd.GeoDataFrame:
    """Read a PostGIS table (see the module's documentation for the URL).

    Parameters
    ----------
    url
        ``postgresql://[user@]host[:port]/database/[schema.]table``.
    check
        Applied to the frame read (e.g. :func:`bxlplan.loading.load.polygon_areas`);
        its :class:`DataError` is located at the table.

    Returns
    -------
    GeoDataFrame
        Every column of the table, the geometry in the table's CRS (its SRID);
        provenance in ``.attrs["bxlplan"]`` (the URL with its password masked, the
        table, the rows read).

    Raises
    ------
    DataError
        When the table does not exist, has no geometry column, or its geometry has no
        SRID (with the SQL to set one).
    FetchError
        When the database cannot be reached.

    Examples
    --------
    >>> units = read_table("postgresql://gis@db/planning/public.poles")  # doctest: +SKIP
    """
    psycopg = _psycopg()
    from psycopg import sql

    dsn, schema, table = split_table_url(url)
    where = mask_dsn(url)
    with connect(dsn) as conn:
        qualified = sql.Identifier(*(p for p in (schema, table) if p))
        oid = conn.execute(
            "SELECT to_regclass(%s)::oid", (qualified.as_string(conn),)
        ).fetchone()[0]
        if oid is None:
            raise DataError(
                f"{where}: there is no table {qualified.as_string(conn)} in this "
                "database (or you may not read it); check the schema and table name"
            )
        has_postgis = conn.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'postgis'"
        ).fetchone()
        if not has_postgis:
            raise DataError(
                f"{where}: the database has no PostGIS extension, so no geometry "
                "column to read (CREATE EXTENSION postgis, as its owner)"
            )
        columns = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
            "t.typname, postgis_typmod_srid(a.atttypmod) "
            "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            (oid,),
        ).fetchall()
        geoms = [c for c in columns if c[2] == "geometry"]
        if not geoms:
            raise DataError(
                f"{where}: the table has no geometry column (PostGIS 'geometry'); "
                f"columns: {', '.join(c[0] for c in columns)}"
            )
        geom_col, geom_type, _, srid = geoms[0]
        if not srid:  # an untyped column: the SRID of its geometries
            found = conn.execute(
                sql.SQL("SELECT DISTINCT ST_SRID({}) FROM {} LIMIT 2").format(
                    sql.Identifier(geom_col), qualified
                )
            ).fetchall()
            srid = found[0][0] if len(found) == 1 else 0
        if not srid:
            raise DataError(
                f"{where}: the geometry column '{geom_col}' ({geom_type}) has no SRID "
                "(or several): set the CRS of its coordinates, e.g. ALTER TABLE "
                f"{qualified.as_string(conn)} ALTER COLUMN {geom_col} TYPE "
                f"geometry(MultiPolygon, 31370) USING ST_SetSRID({geom_col}, 31370)"
            )
        crs = _crs(conn, int(srid))
        others = [c for c in columns if c[2] != "geometry"]
        fields = [sql.Identifier(c[0]) for c in others] + [
            sql.SQL("ST_AsBinary({})").format(sql.Identifier(geom_col))
        ]
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(fields), qualified
        )
        try:
            rows = conn.execute(query).fetchall()
        except psycopg.Error as exc:
            raise DataError(f"{where}: the table cannot be read: {exc}") from exc
    frame = pd.DataFrame.from_records(rows, columns=[c[0] for c in others] + [geom_col])
    for name, _, typname, _ in others:
        if typname == "numeric":
            frame[name] = _number(frame[name])
    wkb = frame[geom_col].map(lambda v: None if v is None else bytes(v))
    frame[geom_col] = shapely.from_wkb(wkb.to_numpy())
    gdf = gpd.GeoDataFrame(frame, geometry=geom_col, crs=crs)
    report = []
    if len(geoms) > 1:
        report.append(
            f"{where}: {len(geoms)} geometry columns; '{geom_col}' read, the others "
            "left out"
        )
    gdf.attrs["bxlplan"] = {
        "layer": None,
        "source": where,
        "table": ".".join(p for p in (schema, table) if p),
        "geometry_column": geom_col,
        "rows": len(gdf),
        "licence": "user-supplied",
        "attribution": "",
        "loaded_at": run_timestamp().isoformat(),
        "bxlplan_version": __version__,
        "report": report,
    }
    if check is None:
        return gdf
    try:
        return check(gdf)
    except DataError as exc:
        message = str(exc).removeprefix("the areas GeoDataFrame: ")
        raise DataError(f"{where}: {message}") from exc


def load_table_layer(spec: Any, url: str) -> gpd.GeoDataFrame:
    """A vector layer of the catalog read from a PostGIS table instead of a file, with
    the same cleaning and canonical columns (``bxlplan.load(name, path=url)``).

    Parameters
    ----------
    spec
        The layer's catalog entry (:class:`bxlplan.loading.catalog.LayerSpec`).
    url
        ``postgresql://[user@]host[:port]/database/[schema.]table``.

    Returns
    -------
    GeoDataFrame
        EPSG:31370 with the layer's canonical columns; provenance in
        ``.attrs["bxlplan"]`` (URL with its password masked, the catalog's licence).

    Raises
    ------
    ConfigError
        When the layer is not a plain vector layer (tables, the street network, GTFS
        stops and facilities are read from files).
    DataError
        As :func:`read_table`, and when the table fails the layer's checks.

    Examples
    --------
    >>> import bxlplan
    >>> hoods = bxlplan.load(  # doctest: +SKIP
    ...     "neighbourhoods", path="postgresql://gis@db/planning/ref.neighbourhoods")
    """
    from .layers import _POST
    from .validate import apply_columns, clean_geometries, to_working_crs

    if spec.kind != "vector":
        raise ConfigError(
            f"layer '{spec.name}' ({spec.kind}) cannot be read from a database table: "
            "give a file (only vector layers are read from PostGIS)"
        )
    gdf = read_table(url)
    record = gdf.attrs["bxlplan"]
    source = record["source"]
    report: list[str] = list(record["report"])
    gdf = to_working_crs(gdf, source)
    gdf = clean_geometries(gdf, source, report)
    if len(gdf) == 0:
        raise DataError(f"{source}: no feature has a geometry; the layer is empty")
    gdf = apply_columns(gdf, spec.columns, source=source, report=report)
    post = _POST.get(spec.name)
    if post is not None:
        gdf = post(spec, gdf, report)
    gdf = gdf.reset_index(drop=True)
    gdf.attrs["bxlplan"] = {
        **record,
        "layer": spec.name,
        "licence": spec.licence,
        "attribution": spec.attribution,
        "report": report,
    }
    return gdf
