"""PostGIS: write an assessment's layers into a schema, read units from a table.

A real PostgreSQL with PostGIS (Debian's ``postgresql`` and ``postgis`` packages,
which ``.ci/run`` installs) is started on a temporary cluster for the session: as the
``postgres`` user when the tests run as root (PostgreSQL refuses to run as root), on
a private socket folder and a free port. Without it the tests skip, except in CI
(``BXLPLAN_REQUIRE_PACK``), where they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from bxlplan.errors import ConfigError, DataError, FetchError

PASSWORD = "s3cret-never-shown"
ROOT = Path(__file__).resolve().parent.parent


def _binaries() -> Path | None:
    """The newest PostgreSQL server whose PostGIS extension is installed."""
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        version = bindir.parent.name
        control = Path(f"/usr/share/postgresql/{version}/extension/postgis.control")
        if (bindir / "pg_ctl").is_file() and control.is_file():
            return bindir
    return None


def _unavailable(why: str) -> None:
    if os.environ.get("BXLPLAN_REQUIRE_PACK"):
        pytest.fail(f"PostgreSQL with PostGIS is required in CI but {why}")
    pytest.skip(f"PostgreSQL with PostGIS unavailable: {why}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server() -> dict:
    """A throw-away PostgreSQL cluster with a PostGIS database, for the session."""
    bindir = _binaries()
    if bindir is None:
        _unavailable("no /usr/lib/postgresql/*/bin with postgis (apt-get install "
                     "postgresql postgis)")  # fmt: skip
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[test]')")
    root = Path(tempfile.mkdtemp(prefix="bxlplan-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data = root / "data"

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        if done.returncode:
            log = root / "server.log"
            raise RuntimeError(
                f"{' '.join(args)} failed: {done.stderr}{done.stdout}"
                + (log.read_text() if log.is_file() else "")
            )

    base = f"postgresql://postgres:{PASSWORD}@/%s?host={root}&port={port}"
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        options = (
            f"-p {port} -k {root} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
            str(root / "server.log"), "-w", "-t", "60", "start")  # fmt: skip
        with psycopg.connect(base % "postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE bxlplan_test")
        with psycopg.connect(base % "bxlplan_test", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
            conn.execute("CREATE ROLE reader LOGIN")
        yield {
            "db": base % "bxlplan_test",
            "url": lambda table: base % f"bxlplan_test/{table}",
            "root": root,
        }
    finally:
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
            if (data / "postmaster.pid").exists():
                run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _sql(server: dict, query: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(server["db"], autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def _layers() -> dict[str, gpd.GeoDataFrame]:
    """Small layers of every kind an assessment writes."""
    areas = gpd.GeoDataFrame(
        {
            "area_id": ["a", "b", "c"],
            "name_fr": ["Un", "Deux", "=1+1"],
            "population_est": [120.5, np.nan, 3.0],
            "rank": [1, 2, 3],
            "flagged": [False, True, False],
        },
        geometry=[
            shapely.box(149000, 170000, 149500, 170500),
            shapely.MultiPolygon(
                [
                    shapely.box(149500, 170000, 149600, 170100),
                    shapely.box(149700, 170000, 149800, 170100),
                ]
            ),
            shapely.box(150000, 170000, 150100, 170100),
        ],  # fmt: skip
        crs="EPSG:31370",
    )
    facilities = gpd.GeoDataFrame(
        {"facility_id": ["f1", "f2"], "category": ["school", "pharmacy"]},
        geometry=[shapely.Point(149100, 170100), shapely.Point(149900, 170050)],
        crs="EPSG:31370",
    )
    return {"areas": areas, "facilities": facilities}


def _read(server: dict, table: str) -> gpd.GeoDataFrame:
    from bxlplan.loading.postgis import read_table

    return read_table(server["url"](table))


def test_round_trip_typed_indexed_with_provenance(server):
    from bxlplan.exports.postgis import write_postgis

    layers = _layers()
    meta = {"sources": {"units": server["url"]("public.units")}, "note": "été"}
    written = write_postgis(
        layers, server["db"], "rt", meta, output_set="assessment",
        layer_metadata={"facilities": {"layer": {"extent": "areas"}}},
    )  # fmt: skip
    assert written == ["rt.areas", "rt.facilities"]
    back = _read(server, "rt.areas").set_index("fid")
    expected = layers["areas"].copy()
    expected["geometry"] = [
        shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g
        for g in expected.geometry
    ]  # polygons are written as MultiPolygons
    expected.index = pd.RangeIndex(1, 4, name="fid")
    assert_geodataframe_equal(back, expected, check_dtype=False, check_like=True)
    assert back["rank"].dtype.kind == "i" and back["flagged"].dtype == bool
    facilities = _read(server, "rt.facilities")
    assert list(facilities["facility_id"]) == ["f1", "f2"]
    assert facilities.crs.to_epsg() == 31370
    # typed geometry, GiST index, primary key, comment, provenance
    types = dict(_sql(server, "SELECT f_table_name, type || ',' || srid FROM "
                              "geometry_columns WHERE f_table_schema = 'rt'"))  # fmt: skip
    assert types == {"areas": "MULTIPOLYGON,31370", "facilities": "POINT,31370"}
    indexes = _sql(server, "SELECT tablename, indexdef FROM pg_indexes "
                           "WHERE schemaname = 'rt' ORDER BY 1, 2")  # fmt: skip
    assert [t for t, d in indexes if "USING gist" in d] == ["areas", "facilities"]
    assert {
        d.split(" ON ")[0].split()[-1] for t, d in indexes if t != "bxlplan_provenance"
    } == {
        "areas_pkey",
        "idx_areas_geometry",
        "facilities_pkey",
        "idx_facilities_geometry",
    }
    comment = _sql(server, "SELECT obj_description('rt.areas'::regclass)")[0][0]
    assert "bxlplan" in comment and "rt.bxlplan_provenance" in comment
    rows = dict(
        _sql(server, "SELECT table_name, provenance FROM rt.bxlplan_provenance")
    )
    assert rows["areas"]["note"] == "été" and "written_at" in rows["areas"]
    assert rows["facilities"]["layer"] == {"extent": "areas"}
    assert PASSWORD not in str(rows) and "postgres:***@" in str(rows)
    leftovers = _sql(server, "SELECT relname FROM pg_class WHERE relname LIKE "
                             "'%%bxlplan_stage%%'")  # fmt: skip
    assert leftovers == []


def test_overwrite_refused_then_accepted_as_for_files(server):
    from bxlplan.exports.postgis import check_postgis_target, write_postgis

    layers = _layers()
    write_postgis(layers, server["db"], "ow", {}, output_set="assessment")
    _sql(server, "CREATE TABLE ow.notes (t text)")  # the user's: never touched
    with pytest.raises(DataError, match=r"areas, facilities: use --overwrite"):
        check_postgis_target(server["db"], "ow", ["areas", "facilities"])
    with pytest.raises(DataError, match="already has the table"):
        write_postgis(layers, server["db"], "ow", {}, output_set="assessment")
    check_postgis_target(server["db"], "ow", ["areas", "facilities"], overwrite=True)
    # the new set has no facilities: the old set's table goes, as a folder's old file
    new = {"areas": layers["areas"].iloc[:1]}
    write_postgis(new, server["db"], "ow", {"run": 2}, output_set="assessment",
                  overwrite=True)  # fmt: skip
    tables = {r[0] for r in _sql(server, "SELECT tablename FROM pg_tables WHERE "
                                         "schemaname = 'ow'")}  # fmt: skip
    assert tables == {"areas", "notes", "bxlplan_provenance"}
    assert len(_read(server, "ow.areas")) == 1
    assert _sql(server, "SELECT table_name, provenance->>'run' FROM "
                        "ow.bxlplan_provenance") == [("areas", "2")]  # fmt: skip


def test_interrupted_write_leaves_the_previous_tables(server, tmp_path):
    """A writer killed (SIGKILL) in the middle of its transaction, its first table
    staged: the previous set is intact, and once the server has dropped the dead
    session, no staging table is left and the next write goes through."""
    from bxlplan.exports.postgis import write_postgis

    layers = _layers()
    write_postgis(layers, server["db"], "kill", {}, output_set="assessment")
    before = {n: _read(server, f"kill.{n}") for n in layers}
    script = tmp_path / "writer.py"
    script.write_text(
        textwrap.dedent(f"""
        import time
        import geopandas as gpd, shapely
        from bxlplan.exports.postgis import write_postgis
        cells = gpd.GeoDataFrame(
            {{"area_id": [str(i) for i in range(2000)]}},
            geometry=[shapely.box(149000 + i, 170000, 149001 + i, 170001)
                      for i in range(2000)],
            crs="EPSG:31370",
        )
        def progress(line):
            print(line, flush=True)
            if "(2/2)" in line:  # the first table staged: wait to be killed
                time.sleep(120)
        write_postgis({{"areas": cells, "facilities": cells}}, {server["db"]!r},
                      "kill", {{}}, output_set="assessment", overwrite=True,
                      progress=progress)
        print("done", flush=True)
    """)
    )
    with subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                          text=True) as proc:  # fmt: skip
        try:
            lines: list[str] = []
            while not any("(2/2)" in line for line in lines):
                line = proc.stdout.readline()
                assert line, f"the writer ended early: {lines}"
                lines.append(line)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and "done" not in "".join(lines)
    for name, frame in before.items():
        assert_geodataframe_equal(_read(server, f"kill.{name}"), frame)
    deadline = time.monotonic() + 60
    while _sql(server, "SELECT pid FROM pg_stat_activity WHERE datname = "
                       "current_database() AND pid <> pg_backend_pid() AND "
                       "state LIKE 'idle in transaction%%'"):  # fmt: skip
        assert time.monotonic() < deadline, "the dead writer's session stays open"
        time.sleep(0.1)
    stages = _sql(server, "SELECT relname FROM pg_class WHERE relname LIKE "
                          "'%%bxlplan_stage%%'")  # fmt: skip
    assert stages == []
    for name, frame in before.items():
        assert_geodataframe_equal(_read(server, f"kill.{name}"), frame)
    # the killed writer's lock is gone with it: the next write goes through
    write_postgis(layers, server["db"], "kill", {}, output_set="assessment",
                  overwrite=True)  # fmt: skip


def test_units_from_a_table_are_checked_as_files(server, pack):
    import bxlplan
    from bxlplan.exports.postgis import write_postgis

    hoods = bxlplan.load("neighbourhoods", pack).iloc[:3]
    units = hoods[["code", "name_fr", "name_nl", "geometry"]].rename(
        columns={"code": "unit"}
    )
    source = units.rename(columns={"unit": "mdrc"})  # the file's own field names
    write_postgis({"units": units.to_crs(4326), "hoods": source}, server["db"],
                  "src", {}, output_set="units")  # fmt: skip
    areas = bxlplan.areas(server["url"]("src.units"), pack, id_field="unit")
    assert list(areas["area_id"]) == list(hoods["code"].astype(str))
    assert areas.crs.to_epsg() == 31370
    record = areas.attrs["bxlplan"]
    assert record["table"] == "src.units" and PASSWORD not in record["source"]
    # a catalog layer from a table: the same cleaning and columns as from its file
    again = bxlplan.load("neighbourhoods", pack, path=server["url"]("src.hoods"))
    assert list(again["code"]) == list(hoods["code"])
    assert again.attrs["bxlplan"]["layer"] == "neighbourhoods"
    # points are not areas; a table without an SRID is refused; errors are located
    _sql(server, "CREATE TABLE src.pts AS SELECT 'x' AS unit, "
                 "ST_SetSRID(ST_Point(149000, 170000), 31370) AS geom")  # fmt: skip
    with pytest.raises(
        DataError, match=r"src\.pts\b.*: areas must be polygons; found Point"
    ):
        bxlplan.areas(server["url"]("src.pts"), pack)
    _sql(server, "CREATE TABLE src.nosrid AS SELECT 'x' AS unit, "
                 "ST_MakeEnvelope(149000, 170000, 149100, 170100) AS geom")  # fmt: skip
    with pytest.raises(DataError, match="has no SRID") as err:
        bxlplan.areas(server["url"]("src.nosrid"), pack)
    assert PASSWORD not in str(err.value)
    with pytest.raises(DataError, match="there is no table"):
        bxlplan.areas(server["url"]("src.absent"), pack)


def test_unreachable_database_and_bad_names_are_clear(server):
    from bxlplan.exports.postgis import check_postgis_target
    from bxlplan.loading.postgis import mask_dsn

    dead = f"postgresql://u:{PASSWORD}@/x?host={server['root']}&port=1"
    with pytest.raises(FetchError, match="cannot connect") as err:
        check_postgis_target(dead, "s", ["areas"])
    assert PASSWORD not in str(err.value) and "u:***@" in str(err.value)
    with pytest.raises(ConfigError, match="longer than PostgreSQL"):
        check_postgis_target(server["db"], "s" * 64, ["areas"])
    reader = server["db"].replace("postgres:", "reader:")  # may not create schemas
    with pytest.raises(DataError, match="user 'reader' may not create schemas"):
        check_postgis_target(reader, "s", ["areas"])
    assert PASSWORD not in mask_dsn(f"host=h password={PASSWORD} dbname=x")


def _cli(*args: str):
    from typer.testing import CliRunner

    from bxlplan.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_checks_the_database_before_the_preparation(server, pack, tmp_path):
    from bxlplan.exports.postgis import write_postgis

    common = ["--data", str(pack), "--out", str(tmp_path / "out")]
    res = _cli("assess", *common, "--format", "postgis")
    assert res.exit_code == 2 and "--format postgis needs the database" in res.output
    res = _cli("assess", *common, "--format", "gpkg", "--db", server["db"])
    assert res.exit_code == 2 and "--format has no postgis" in res.output
    dead = f"postgresql://u:{PASSWORD}@/x?host={server['root']}&port=1"
    res = _cli("assess", *common, "--format", "postgis", "--db", dead)
    assert res.exit_code == 2 and "cannot connect to the database" in res.output
    assert PASSWORD not in res.output
    write_postgis(_layers(), server["db"], "cli", {}, output_set="assessment")
    res = _cli("assess", *common, "--format", "gpkg,postgis", "--db", server["db"],
               "--schema", "cli")  # fmt: skip
    assert res.exit_code == 2 and "use --overwrite" in res.output, res.output
    assert "preparing" not in res.output  # refused before the preparation
    assert not (tmp_path / "out").exists()
    scenario = ["scenario", "run", str(ROOT / "scenarios" / "josaphat.yaml"), "--data",
                str(pack), "--out", str(tmp_path / "scn"), "--format", "postgis"]  # fmt: skip
    res = _cli(*scenario)
    assert res.exit_code == 2 and "--format postgis needs the database" in res.output
    write_postgis({"josaphat_areas": _layers()["areas"]}, server["db"], "cliscn", {},
                  output_set="scenario:josaphat")  # fmt: skip
    res = _cli(*scenario, "--db", server["db"], "--schema", "cliscn")
    assert res.exit_code == 2 and "josaphat_areas: use --overwrite" in res.output
    assert "baseline" not in res.output  # refused before the preparation


@pytest.mark.slow
def test_cli_assess_from_and_into_postgis(server, pack, tmp_path):
    """End to end: units read from a table, the assessment written both as a
    GeoPackage and as tables; the tables hold what the GeoPackage holds."""
    import pyogrio

    import bxlplan
    from bxlplan.exports.postgis import write_postgis

    hoods = bxlplan.load("neighbourhoods", pack).iloc[:2]
    write_postgis({"poles": hoods[["code", "name_fr", "geometry"]]}, server["db"],
                  "e2e_in", {}, output_set="units")  # fmt: skip
    out = tmp_path / "out"
    args = ["assess", "--data", str(pack), "--out", str(out), "--units",
            server["url"]("e2e_in.poles"), "--id-field", "code", "--format",
            "gpkg,postgis", "--db", server["db"], "--schema", "e2e"]  # fmt: skip
    res = _cli(*args)
    assert res.exit_code == 0, res.output
    assert PASSWORD not in res.output and "wrote e2e.areas\n" in res.output
    for layer, _ in pyogrio.list_layers(out / "assessment.gpkg"):
        if layer == "layer_styles":
            continue
        gpkg = pyogrio.read_dataframe(out / "assessment.gpkg", layer=layer)
        table = _read(server, f"e2e.{layer}")
        key = "bxlplan_fid" if "bxlplan_fid" in table else "fid"
        table = table.drop(columns=key)  # the key of the table, not of the layer
        # the input's own 'fid' (the units table's key) is the GeoPackage's fid
        assert [c for c in table.columns if c != "fid"] == list(gpkg.columns), layer
        assert len(table) == len(gpkg) and table.crs == gpkg.crs, layer
        assert table.geometry.geom_equals(gpkg.geometry).all() or layer != "areas"
    areas = _read(server, "e2e.areas")
    assert list(areas["area_id"]) == list(hoods["code"].astype(str))
    prov = dict(
        _sql(server, "SELECT table_name, provenance FROM e2e.bxlplan_provenance")
    )
    assert prov["areas"]["sources"] and PASSWORD not in json.dumps(prov)
    again = [a if a != "gpkg,postgis" else "postgis" for a in args]
    res = _cli(*again)  # the tables exist: refused, as files are
    assert res.exit_code == 2 and "already has the table(s) areas" in res.output


def test_scenario_layers_copied_from_their_geopackage(server, tmp_path):
    """A scenario's tables are its scenario.gpkg layers, each with its provenance."""
    from bxlplan.exports.gis import write_gpkg
    from bxlplan.exports.postgis import check_postgis_target, write_gpkg_postgis

    gpkg = write_gpkg(_layers(), tmp_path / "scenario.gpkg", {"scenario": "pole"},
                      layer_metadata={"facilities": {"layer": "new"}})  # fmt: skip
    tables = write_gpkg_postgis(gpkg, server["db"], "scn", output_set="scenario:pole",
                                prefix="pole_")  # fmt: skip
    assert tables == ["scn.pole_areas", "scn.pole_facilities"]
    prov = dict(
        _sql(server, "SELECT table_name, provenance FROM scn.bxlplan_provenance")
    )
    assert prov["pole_areas"]["scenario"] == "pole"
    assert prov["pole_facilities"]["layer"] == "new"
    assert list(_read(server, "scn.pole_areas")["area_id"]) == ["a", "b", "c"]
    with pytest.raises(DataError, match="pole_areas, pole_facilities: use --overwrite"):
        check_postgis_target(server["db"], "scn", ["pole_areas"],
                             output_set="scenario:pole")  # fmt: skip
    # another scenario in the same schema is another set: no conflict
    check_postgis_target(
        server["db"], "scn", ["other_areas"], output_set="scenario:other"
    )
