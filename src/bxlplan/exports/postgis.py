"""Layers written into a PostGIS schema, all at once or not at all.

``bxlplan assess --format postgis --db postgresql://user@host/database --schema s``
writes the layers of the assessment's GeoPackage (``areas``, ``shortage_<category>``,
``facilities``, ``perimeter_<name>``) as tables of schema ``s``; a scenario writes
``<scenario>_areas``, ``<scenario>_cells_before``, ``<scenario>_cells_after`` and
``<scenario>_new_facilities``.

One write is one transaction on one connection (:func:`write_postgis`): every layer
is copied into a staging table (``bxlplan_stage_<random>_<n>``, invisible to other
sessions), then the tables it replaces are dropped and the staging tables renamed in
place, and the transaction commits. Another session sees the previous tables or the
new ones, never a mix; a write that fails or is killed half-way leaves the previous
tables as they were (PostgreSQL rolls the transaction back), and no staging table.
Two writers into one schema take turns (a transaction-level advisory lock).

As for files, existing tables are never replaced without ``overwrite=True``
(``--overwrite``); :func:`check_postgis_target` checks the database, the rights and
the targets before the long computation. Tables of the schema that are not part of
the set are never touched.

Each table has a typed geometry column (``geometry(MultiPolygon,31370)``, ``Point``...;
polygons are always written as MultiPolygons), a GiST index on it, a primary key
``fid`` (1..n, for QGIS; ``bxlplan_fid`` when the layer has a ``fid`` column of its
own), a comment, and a row of ``<schema>.bxlplan_provenance``
(``table_name``, ``output_set``, ``written_at``, ``bxlplan_version``, ``provenance``
as ``jsonb``: the same record as a GeoPackage layer's ``bxlplan`` metadata).

User-given schema and table names are quoted as identifiers
(:class:`psycopg.sql.Identifier`), never formatted into SQL. Passwords of connection
URLs are masked in every message and record (:func:`bxlplan.loading.postgis.mask_dsn`).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from .._io import run_timestamp
from .._version import __version__
from ..errors import ConfigError, DataError
from ..loading.postgis import _psycopg, connect, mask_dsn

__all__ = [
    "ASSESSMENT_TABLES",
    "PROVENANCE_TABLE",
    "check_postgis_target",
    "scenario_tables",
    "write_assessment_postgis",
    "write_gpkg_postgis",
    "write_postgis",
]

PROVENANCE_TABLE = "bxlplan_provenance"
# the tables of an assessment (patterns: their names are known after the preparation)
ASSESSMENT_TABLES = ("areas", "shortage_*", "facilities", "perimeter_*")
ASSESSMENT_SET = "assessment"
# the layers of a scenario's GeoPackage (bxlplan.scenarios.outputs.write_scenario)
SCENARIO_LAYERS = ("areas", "cells_before", "cells_after", "change", "new_facilities")
_MAX_NAME = 63  # PostgreSQL's identifier length (NAMEDATALEN - 1), in bytes
# shapely's type ids -> PostGIS type names; single parts made multi on writing
_TYPES = {
    0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
    5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection",
}  # fmt: skip
_SINGLE = {"Point": 0, "LineString": 1, "Polygon": 3}
_MAKERS: dict[str, Callable[..., Any]] = {
    "Point": shapely.multipoints,
    "LineString": shapely.multilinestrings,
    "Polygon": shapely.multipolygons,
}


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ConfigError(f"{what} {name!r} is not a valid PostgreSQL name")
    if len(name.encode("utf-8")) > _MAX_NAME:
        raise ConfigError(
            f"{what} '{name}' is longer than PostgreSQL's {_MAX_NAME} bytes: "
            "choose a shorter name (PostgreSQL would cut it silently)"
        )


def _existing(conn: Any, schema: str) -> dict[str, str]:
    """The relations of ``schema``: name -> kind (``r`` table, ``v`` view...)."""
    rows = conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        (schema,),
    ).fetchall()
    return dict(rows)


def _recorded(conn: Any, schema: str, output_set: str) -> list[str]:
    """The tables a previous write of ``output_set`` recorded in the schema."""
    from psycopg import sql

    if PROVENANCE_TABLE not in _existing(conn, schema):
        return []
    rows = conn.execute(
        sql.SQL("SELECT table_name FROM {} WHERE output_set = %s").format(
            sql.Identifier(schema, PROVENANCE_TABLE)
        ),
        (output_set,),
    ).fetchall()
    return [r[0] for r in rows]


def _conflicts(
    conn: Any, schema: str, tables: Sequence[str], output_set: str
) -> list[str]:
    """The existing tables that a write of ``tables`` (patterns allowed) would replace,
    and those of the previous write of the same set."""
    existing = _existing(conn, schema)
    hit = {
        name
        for name in existing
        for pattern in tables
        if name != PROVENANCE_TABLE and fnmatch.fnmatchcase(name, pattern)
    }
    hit |= {t for t in _recorded(conn, schema, output_set) if t in existing}
    return sorted(hit)


def _check_database(conn: Any, where: str, schema: str) -> None:
    """PostGIS installed, and the right to create tables in ``schema``."""
    if not conn.execute(
        "SELECT 1 FROM pg_extension WHERE extname = 'postgis'"
    ).fetchone():
        raise DataError(
            f"{where}: the database has no PostGIS extension; ask its owner to run "
            "CREATE EXTENSION postgis"
        )
    exists = conn.execute(
        "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
    ).fetchone()
    if exists:
        allowed = conn.execute(
            "SELECT has_schema_privilege(%s, 'CREATE')", (schema,)
        ).fetchone()[0]
    else:
        allowed = conn.execute(
            "SELECT has_database_privilege(current_database(), 'CREATE')"
        ).fetchone()[0]
    if not allowed:
        what = f"create tables in schema '{schema}'" if exists else "create schemas"
        raise DataError(
            f"{where}: user {conn.info.user!r} may not {what}; ask the database "
            "owner for the right (GRANT CREATE), or choose another --schema"
        )


def check_postgis_target(
    db: str,
    schema: str,
    tables: Sequence[str],
    *,
    overwrite: bool = False,
    output_set: str = ASSESSMENT_SET,
) -> None:
    """Check, before any long computation, that :func:`write_postgis` can write.

    Parameters
    ----------
    db
        ``postgresql://[user@]host[:port]/database[?parameters]``.
    schema
        The schema of the tables (created when absent).
    tables
        The tables the write will create (glob patterns allowed, e.g.
        :data:`ASSESSMENT_TABLES`).
    overwrite
        Whether existing tables may be replaced.
    output_set
        The name of the set in ``bxlplan_provenance``: the tables of its previous
        write are part of the targets too.

    Raises
    ------
    FetchError
        When the database cannot be reached.
    DataError
        When PostGIS is not installed, the user may not create tables there, or
        tables would be replaced and ``overwrite`` is False.
    ConfigError
        When a name is longer than PostgreSQL allows.

    Examples
    --------
    >>> check_postgis_target("postgresql://gis@db/planning", "bxlplan",
    ...                      ASSESSMENT_TABLES)  # doctest: +SKIP
    """
    _check_name(schema, "schema")
    for name in tables:
        _check_name(name, "table")
    where = mask_dsn(db)
    with connect(db) as conn:
        _check_database(conn, where, schema)
        found = _conflicts(conn, schema, tables, output_set)
    if found and not overwrite:
        raise DataError(
            f"{where}: schema '{schema}' already has the table(s) "
            f"{', '.join(found)}: use --overwrite (overwrite=True) to replace them, "
            "or choose another --schema"
        )


def _typed(gdf: gpd.GeoDataFrame, where: str) -> tuple[gpd.GeoDataFrame, str, int]:
    """A copy fit for PostgreSQL, its geometry type and SRID: single polygons and
    lines made multi, extra geometry columns dropped, text for objects, the index
    ``fid`` 1..n."""
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.crs is None:
        raise DataError(f"{where}: a GeoDataFrame with a CRS is needed")
    srid = gdf.crs.to_epsg()
    if srid is None:
        raise DataError(
            f"{where}: its CRS has no EPSG code ({gdf.crs.to_string()}); reproject it "
            "(e.g. .to_crs(31370))"
        )
    out = gdf.copy()
    out.attrs = {}
    geom = out.geometry.name
    extra = [
        c
        for c in out.columns
        if c != geom and isinstance(out[c].dtype, gpd.array.GeometryDtype)
    ]
    out = out.drop(columns=extra)
    for col in out.columns:
        if col == geom:
            continue
        _check_name(str(col), f"{where}: column")
        dtype = out[col].dtype
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(
            dtype
        ):
            out[col] = (
                out[col]
                .map(lambda v: None if v is None or v != v else str(v))
                .astype(object)
            )
    values = out.geometry.values
    ids = shapely.get_type_id(values)
    names = {_TYPES[i] for i in set(ids.tolist()) if i >= 0}
    base = {n.removeprefix("Multi") for n in names}
    if len(base) == 1 and names != {"Point"} and (single := base.pop()) in _SINGLE:
        kind = f"Multi{single}"
        singles = ids == _SINGLE[single]
        if singles.any():
            maker = _MAKERS[single]
            fixed = values.copy()
            fixed[singles] = [maker([g]) for g in values[singles]]
            out[geom] = gpd.GeoSeries(fixed, index=out.index, crs=out.crs)
    elif len(names) == 1:
        kind = names.pop()
    else:
        kind = "Geometry"
    if shapely.has_z(values).any():
        kind += "Z"
    taken = {str(c).lower() for c in out.columns}
    key = "fid" if "fid" not in taken else "bxlplan_fid"
    if key in taken:
        raise DataError(f"{where}: rename its columns 'fid' or 'bxlplan_fid'")
    out.index = pd.RangeIndex(1, len(out) + 1, name=key)
    return out, kind, srid


def _layer_comment(name: str, output_set: str, schema: str, when: str) -> str:
    return (
        f"bxlplan {__version__}: layer '{name}' of '{output_set}', written {when}. "
        f"Provenance: {schema}.{PROVENANCE_TABLE} (table_name = '{name}')."
    )


def write_postgis(
    layers: dict[str, gpd.GeoDataFrame],
    db: str,
    schema: str,
    metadata: dict[str, Any],
    *,
    output_set: str,
    overwrite: bool = False,
    layer_metadata: dict[str, dict[str, Any]] | None = None,
    run_time: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Write ``layers`` as tables of ``schema``, in one transaction.

    Parameters
    ----------
    layers
        Table name -> GeoDataFrame (any CRS with an EPSG code).
    db
        ``postgresql://[user@]host[:port]/database[?parameters]``.
    schema
        The schema (created when absent).
    metadata
        The provenance record of every table (``written_at`` is added), with the
        table's own entries of ``layer_metadata`` merged over it.
    output_set
        The set's name in ``bxlplan_provenance`` (``assessment``, ``scenario:<name>``):
        on ``overwrite``, the tables of its previous write that this one does not
        replace are dropped too, as a folder's old files are.
    overwrite
        Replace existing tables; without it, any existing target is refused before
        anything is written.
    layer_metadata
        Extra provenance per table.
    run_time
        The time stamp of the run (default :func:`bxlplan._io.run_timestamp`).
    progress
        Called with a line per table.

    Returns
    -------
    list of str
        The tables written, as ``schema.table``.

    Raises
    ------
    FetchError
        When the database cannot be reached.
    DataError
        When PostGIS is missing, the user may not create tables, tables exist and
        ``overwrite`` is False, a layer has no CRS, or the write fails (nothing is
        changed then: the transaction is rolled back).
    ConfigError
        When a schema, table or column name is longer than PostgreSQL allows.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> cells = gpd.GeoDataFrame({"score": [1.0]},
    ...                          geometry=[shapely.box(149000, 170000, 149100, 170100)],
    ...                          crs="EPSG:31370")
    >>> write_postgis({"cells": cells}, "postgresql://gis@db/planning", "bxlplan",
    ...               {"source": "example"}, output_set="example")  # doctest: +SKIP
    ['bxlplan.cells']
    """
    psycopg = _psycopg()
    import sqlalchemy as sa
    from psycopg import sql
    from sqlalchemy.pool import NullPool

    _check_name(schema, "schema")
    for name in layers:
        _check_name(name, "table")
    where = mask_dsn(db)
    when = (run_time or run_timestamp()).isoformat()
    prepared = {
        name: _typed(gdf, f"layer '{name}'") for name, gdf in layers.items()
    }  # every layer checked before the database is touched
    extra = layer_metadata or {}
    token = secrets.token_hex(4)
    stages = {name: f"bxlplan_stage_{token}_{i}" for i, name in enumerate(layers)}
    engine = sa.create_engine(
        "postgresql+psycopg://", creator=lambda: connect(db), poolclass=NullPool
    )
    try:
        with engine.connect() as conn, conn.begin():
            raw: Any = conn.connection.driver_connection  # the psycopg connection
            raw.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"bxlplan:{schema}",)
            )
            _check_database(raw, where, schema)
            found = _conflicts(raw, schema, list(layers), output_set)
            if found and not overwrite:
                raise DataError(
                    f"{where}: schema '{schema}' already has the table(s) "
                    f"{', '.join(found)}: use --overwrite (overwrite=True) to replace "
                    "them, or choose another --schema"
                )
            raw.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
            for i, (name, (frame, kind, srid)) in enumerate(prepared.items(), 1):
                if progress is not None:
                    progress(f"PostGIS: table {schema}.{name} ({i}/{len(prepared)})")
                stage, geom = stages[name], frame.geometry.name
                frame.to_postgis(
                    stage, conn, schema=schema, index=True, index_label=frame.index.name
                )
                table, column = sql.Identifier(schema, stage), sql.Identifier(geom)
                # pandas indexes the index column: the primary key will do that
                for (index,) in raw.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND "
                    "tablename = %s AND indexdef NOT LIKE '%%USING gist%%'",
                    (schema, stage),
                ).fetchall():
                    raw.execute(
                        sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, index))
                    )
                raw.execute(
                    sql.SQL(
                        "ALTER TABLE {t} ALTER COLUMN {g} TYPE geometry({k}, {s}) "
                        "USING ST_SetSRID({g}, {s}), ADD PRIMARY KEY ({key})"
                    ).format(
                        t=table,
                        g=column,
                        k=sql.SQL(kind),
                        s=sql.Literal(srid),
                        key=sql.Identifier(frame.index.name),
                    )  # fmt: skip
                )
            _publish(raw, schema, stages, output_set, metadata, extra, when)
    except (psycopg.Error, sa.exc.SQLAlchemyError) as exc:
        detail = mask_dsn(str(exc).strip()).replace("\n", " ")
        raise DataError(
            f"{where}: writing schema '{schema}' failed, nothing was changed (the "
            f"transaction was rolled back): {detail}"
        ) from exc
    finally:
        engine.dispose()
    return [f"{schema}.{name}" for name in layers]


def _publish(
    raw: Any,
    schema: str,
    stages: dict[str, str],
    output_set: str,
    metadata: dict[str, Any],
    extra: dict[str, dict[str, Any]],
    when: str,
) -> None:
    """Inside the write's transaction: drop the tables replaced (those of the names
    written and the previous write of the set), rename the staging tables and their
    indexes, comment them and record their provenance."""
    from psycopg import sql

    provenance = sql.Identifier(schema, PROVENANCE_TABLE)
    raw.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, "
            "output_set text NOT NULL, written_at timestamptz NOT NULL, "
            "bxlplan_version text NOT NULL, provenance jsonb NOT NULL)"
        ).format(provenance)
    )
    existing = _existing(raw, schema)
    old = set(_recorded(raw, schema, output_set)) | set(stages)
    for name in sorted(t for t in old if t in existing):
        # never CASCADE: a view of the user's on a table stops the write instead
        raw.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, name)))
    raw.execute(
        sql.SQL("DELETE FROM {} WHERE output_set = %s OR table_name = ANY(%s)").format(
            provenance
        ),
        (output_set, list(stages)),
    )
    for name, stage in stages.items():
        raw.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(schema, stage), sql.Identifier(name)
            )
        )
        indexes = raw.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (schema, name),
        ).fetchall()
        for (index,) in indexes:
            new = index.replace(stage, name).encode("utf-8")[:_MAX_NAME]
            raw.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(schema, index),
                    sql.Identifier(new.decode("utf-8", "ignore")),
                )
            )
        raw.execute(
            sql.SQL("COMMENT ON TABLE {} IS {}").format(
                sql.Identifier(schema, name),
                sql.Literal(_layer_comment(name, output_set, schema, when)),
            )
        )
        record = {**metadata, "written_at": when, **extra.get(name, {})}
        text = mask_dsn(json.dumps(record, default=str, ensure_ascii=False))
        raw.execute(
            sql.SQL(
                "INSERT INTO {} (table_name, output_set, written_at, bxlplan_version, "
                "provenance) VALUES (%s, %s, %s, %s, %s::jsonb)"
            ).format(provenance),
            (name, output_set, when, __version__, text),
        )


def write_assessment_postgis(
    result: Any,
    db: str,
    *,
    schema: str = "bxlplan",
    overwrite: bool = False,
    perimeters: dict[str, gpd.GeoDataFrame] | None = None,
    extent: str = "areas",
    run_time: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Write an assessment's layers (those of its GeoPackage,
    :func:`bxlplan.exports.gis.assessment_layers`) as tables of ``schema``, in one
    transaction (:func:`write_postgis`).

    Parameters
    ----------
    result
        An :class:`bxlplan.Assessment`.
    db
        ``postgresql://[user@]host[:port]/database[?parameters]``.
    schema
        The schema of the tables (default ``bxlplan``; created when absent).
    overwrite
        Replace the tables of a previous assessment in ``schema``.
    perimeters
        Context perimeters written as ``perimeter_<name>``.
    extent
        ``areas`` or ``region``, as for the files.
    run_time, progress
        As for :func:`write_postgis`.

    Returns
    -------
    list of str
        The tables written, as ``schema.table``.

    Raises
    ------
    FetchError, DataError, ConfigError
        As :func:`write_postgis`.

    Examples
    --------
    >>> import bxlplan
    >>> result = bxlplan.assess("neighbourhoods")  # doctest: +SKIP
    >>> write_assessment_postgis(result, "postgresql://gis@db/planning")  # doctest: +SKIP
    ['bxlplan.areas', 'bxlplan.shortage_pharmacy', ...]
    """
    from .gis import assessment_layers, assessment_provenance

    layers, extra = assessment_layers(result, extent=extent, perimeters=perimeters)
    return write_postgis(
        layers, db, schema, assessment_provenance(result),
        output_set=ASSESSMENT_SET, overwrite=overwrite, layer_metadata=extra,
        run_time=run_time, progress=progress,
    )  # fmt: skip


def scenario_tables(name: str) -> list[str]:
    """The tables of scenario ``name`` (``<name>_areas``, ``<name>_cells_before``...),
    for :func:`check_postgis_target` before the scenario runs.

    Parameters
    ----------
    name
        The scenario's name (a slug).

    Returns
    -------
    list of str
        The table names.

    Examples
    --------
    >>> scenario_tables("josaphat")[:2]
    ['josaphat_areas', 'josaphat_cells_before']
    """
    return [f"{name}_{layer}" for layer in SCENARIO_LAYERS]


def write_gpkg_postgis(
    gpkg: str | os.PathLike[str],
    db: str,
    schema: str,
    *,
    output_set: str,
    prefix: str = "",
    overwrite: bool = False,
    run_time: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Copy the vector layers of a GeoPackage written by bxlplan (a scenario's
    ``scenario.gpkg``...) into tables ``<prefix><layer>`` of ``schema``, each with the
    provenance of its layer (its ``bxlplan`` metadata), in one transaction
    (:func:`write_postgis`).

    Parameters
    ----------
    gpkg
        The GeoPackage.
    db
        ``postgresql://[user@]host[:port]/database[?parameters]``.
    schema
        The schema (created when absent).
    output_set
        The set's name in ``bxlplan_provenance`` (``scenario:<name>``).
    prefix
        Put before every layer name (``<scenario>_``).
    overwrite, run_time, progress
        As for :func:`write_postgis`.

    Returns
    -------
    list of str
        The tables written, as ``schema.table``.

    Raises
    ------
    FetchError, DataError, ConfigError
        As :func:`write_postgis`.

    Examples
    --------
    >>> write_gpkg_postgis("out/scenarios/josaphat/scenario.gpkg",  # doctest: +SKIP
    ...                    "postgresql://gis@db/planning", "bxlplan",
    ...                    output_set="scenario:josaphat", prefix="josaphat_")
    ['bxlplan.josaphat_areas', 'bxlplan.josaphat_cells_before', ...]
    """
    layers: dict[str, gpd.GeoDataFrame] = {}
    extra: dict[str, dict[str, Any]] = {}
    for name, geometry_type in pyogrio.list_layers(gpkg):
        if geometry_type is None:  # a table without geometry (QGIS styles...)
            continue
        layers[prefix + name] = pyogrio.read_dataframe(gpkg, layer=name)
        meta = pyogrio.read_info(gpkg, layer=name).get("layer_metadata") or {}
        try:
            extra[prefix + name] = json.loads(meta.get("bxlplan") or "{}")
        except json.JSONDecodeError:
            extra[prefix + name] = {}
    return write_postgis(
        layers, db, schema, {}, output_set=output_set, overwrite=overwrite,
        layer_metadata=extra, run_time=run_time, progress=progress,
    )  # fmt: skip
