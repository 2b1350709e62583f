"""Output sets: all files of a run or none, a lock per folder, reproducible bytes."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from bxlplan.errors import ConfigError, DataError

NAMES = [f"f{i}" for i in range(6)] + ["d/g"]

# A child process writing NAMES slowly into argv[1] (content: argv[2]); argv[3] is the
# lock wait, argv[4] "journal" forces the journalled publish. It prints "staging"
# once it holds the lock, then sleeps between files and before the clean-up that
# follows the folder exchange, so that a kill can land in every phase.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from bxlplan import _io

    target, run, wait, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    if mode == "journal":
        _io._can_exchange = lambda stage, target: False
    real_reconcile, real_replace = _io._reconcile, os.replace

    def slow_reconcile(*args):
        time.sleep(0.3)
        return real_reconcile(*args)

    def slow_replace(*args):
        time.sleep(0.05)
        return real_replace(*args)

    _io._reconcile = slow_reconcile
    names = [f"f{i}" for i in range(6)] + ["d/g"]
    with _io.output_set(target, names, overwrite=True, wait=wait) as stage:
        print("staging", flush=True)
        for name in names:
            path = stage.path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{run} {name}")
            time.sleep(0.1)
        os.replace = slow_replace  # the journal's renames, one by one
    print("done", flush=True)
    """
)


def _child(tmp_path: Path, target: Path, run: str, wait=30.0, mode="exchange"):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.Popen(
        [sys.executable, str(script), str(target), run, str(wait), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _end(proc: subprocess.Popen) -> tuple[int, str]:
    """Wait for a child and close its pipes: (exit code, stderr)."""
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _ok(proc: subprocess.Popen) -> None:
    code, err = _end(proc)
    assert code == 0, err


def _state(target: Path) -> dict[str, str]:
    return {n: (target / n).read_text() for n in NAMES if (target / n).exists()}


def _full(run: str) -> dict[str, str]:
    return {n: f"{run} {n}" for n in NAMES}


def _leftovers(target: Path) -> list[str]:
    return sorted(
        p.name
        for p in [*target.parent.iterdir(), *target.iterdir()]
        if "staging" in p.name
    )


def _write(target: Path, run: str, wait: float = 30.0) -> None:
    """The child's set, written by this process at once."""
    from bxlplan._io import output_set

    with output_set(target, NAMES, overwrite=True, wait=wait) as stage:
        for name in NAMES:
            (stage.path / name).parent.mkdir(parents=True, exist_ok=True)
            (stage.path / name).write_text(f"{run} {name}")


def _seed(tmp_path: Path) -> Path:
    """A folder holding the set of run 'old' plus a user's file and sub-folder."""
    target = tmp_path / "out"
    _write(target, "old")
    (target / "mine.txt").write_text("not bxlplan's")
    (target / "scenarios" / "x").mkdir(parents=True)
    (target / "scenarios" / "x" / "keep.csv").write_text("keep")
    return target


@pytest.mark.parametrize("mode", ["exchange", "journal"])
def test_killed_writer_leaves_the_old_set_or_the_new_one(tmp_path, mode):
    target = _seed(tmp_path)
    outcomes = set()
    # the child stages for ~0.7 s, then publishes (0.3 s pause after the exchange)
    for delay in (0.05, 0.5, 0.8, 0.9, 3.0):
        proc = _child(tmp_path, target, "new", mode=mode)
        assert proc.stdout.readline().strip() == "staging", _end(proc)
        time.sleep(delay)
        still_running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        _end(proc)
        if mode == "exchange":  # never a mix, even before any clean-up
            assert _state(target) in (_full("old"), _full("new")), delay
        from bxlplan._io import clean_output_set

        clean_output_set(target, wait=5)
        state = _state(target)
        assert state in (_full("old"), _full("new")), (delay, state)
        outcomes.add("new" if state == _full("new") else "old")
        assert _leftovers(target) == [], delay
        assert (target / "mine.txt").read_text() == "not bxlplan's"
        assert (target / "scenarios/x/keep.csv").read_text() == "keep"
        if not still_running:
            assert state == _full("new")
        _write(target, "old")  # back to the old set for the next kill
    assert outcomes == {"old", "new"}  # kills landed before and after the swap


def test_next_run_cleans_up_and_reports_leftovers(tmp_path, caplog):
    from bxlplan._io import output_set

    target = _seed(tmp_path)
    proc = _child(tmp_path, target, "new")
    assert proc.stdout.readline().strip() == "staging"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    _end(proc)
    assert _leftovers(target)  # a staging folder of the killed run
    with output_set(target, ["other.txt"]) as stage:
        (stage.path / "other.txt").write_text("x")
    assert any("interrupted run" in n for n in stage.notes)
    assert "interrupted run" in caplog.text
    assert _leftovers(target) == [] and _state(target) == _full("old")
    assert (target / "other.txt").read_text() == "x"


def test_two_runs_into_one_folder_never_mix(tmp_path):
    target = _seed(tmp_path)
    first = _child(tmp_path, target, "one")
    assert first.stdout.readline().strip() == "staging"
    _write(target, "two")  # this process waits for the child's lock, then writes
    _ok(first)
    assert _state(target) == _full("two")
    assert (target / "mine.txt").exists() and _leftovers(target) == []


def test_second_run_fails_clearly_when_the_wait_is_over(tmp_path):
    target = _seed(tmp_path)
    first = _child(tmp_path, target, "one")
    assert first.stdout.readline().strip() == "staging"
    with pytest.raises(DataError) as info:
        _write(target, "two", wait=0.2)
    message = str(info.value)
    assert f"output folder {target} is being written by another bxlplan run" in message
    assert f"process {first.pid}" in message and "choose another --out" in message
    _ok(first)
    assert _state(target) == _full("one")


# ------------------------------------------------------------- the real writers


def _result():
    areas = gpd.GeoDataFrame(
        {"area_id": ["1", "2"], "name_fr": ["=HYPERLINK(1)", "Deux"],
         "score_overall": [-1.5, 55.0]},
        geometry=[shapely.box(148000, 169000, 149000, 170000),
                  shapely.box(149000, 169000, 150000, 170000)],
        crs="EPSG:31370",
    )  # fmt: skip
    areas.attrs["bxlplan"] = {"bxlplan_version": "test"}
    facilities = gpd.GeoDataFrame(
        {"facility_id": ["a"], "category": ["pharmacy"], "name": ["P"]},
        geometry=[shapely.Point(148500, 169500)],
        crs="EPSG:31370",
    )
    ctx = SimpleNamespace(
        communes=areas,
        distance="euclidean",
        graph=None,
        access={"pharmacy": None},
        facilities=facilities,
        categories={"pharmacy": {"threshold_m": 400}},
        sources={},
        config={"origins_cell_m": 100},
    )
    shortage = areas.iloc[:1].assign(category="pharmacy")[["category", "geometry"]]
    return SimpleNamespace(areas=areas, shortage_zones=shortage, context=ctx)


ALL = ["gpkg", "geojson", "shp", "csv", "tif"]


def test_refused_run_writes_nothing(tmp_path):
    from bxlplan.exports.gis import write_assessment

    (tmp_path / "assessment.csv").write_text("old")
    with pytest.raises(DataError, match="assessment.csv.*--overwrite"):
        write_assessment(_result(), tmp_path, ALL, raster_resolution=20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assessment.csv"]
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.bxlplan-staging-*"))


def test_assessment_names_cover_every_file_written(tmp_path):
    from bxlplan._io import check_output_set
    from bxlplan.exports.gis import assessment_names, write_assessment

    written = write_assessment(_result(), tmp_path, ALL, raster_resolution=20)
    assert written and all(p.is_file() for p in written)
    files = {
        p.relative_to(tmp_path).as_posix()
        for p in tmp_path.rglob("*")
        if p.is_file() and p.name != ".bxlplan.lock"
    }
    names = assessment_names(ALL)
    covered = {f for f in files for n in names if Path(f).match(n)}
    assert covered == files and "rasters/distance_pharmacy.tif" in files
    with pytest.raises(DataError, match=r"already holds \d+ file"):
        check_output_set(tmp_path, names)
    check_output_set(tmp_path, names, overwrite=True)
    with pytest.raises(DataError, match="unknown format.*--format"):
        assessment_names(["gpkg", "xlsx"])


def test_bad_targets_are_refused_before_anything_is_written(tmp_path):
    from bxlplan._io import check_output_set

    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError, match="afile is a file, not a folder.*--out"):
        check_output_set(tmp_path / "afile", ["a.csv"])
    with pytest.raises(DataError, match="afile is a file, not a folder"):
        check_output_set(tmp_path / "afile" / "below", ["a.csv"])
    (tmp_path / "out" / "a.csv").mkdir(parents=True)
    with pytest.raises(DataError, match="a.csv is a folder where the output file"):
        check_output_set(tmp_path / "out", ["a.csv"], overwrite=True)


def test_reruns_are_byte_identical_with_source_date_epoch(tmp_path, monkeypatch):
    from bxlplan.exports.gis import write_assessment

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    digests = []
    for run in ("a", "b"):
        write_assessment(_result(), tmp_path / run, ALL, raster_resolution=20)
        digests.append(
            {
                p.relative_to(tmp_path / run).as_posix(): hashlib.sha256(
                    p.read_bytes()
                ).hexdigest()
                for p in (tmp_path / run).rglob("*")
                if p.is_file()
            }
        )
        time.sleep(1.1)  # a clock-based time stamp would differ
    assert digests[0] == digests[1]
    import rasterio

    with rasterio.open(tmp_path / "a" / "rasters" / "distance_pharmacy.tif") as src:
        assert src.tags()["TIFFTAG_DATETIME"] == "2023:11:14 22:13:20"
        assert src.tags()["created_at"] == "2023-11-14T22:13:20+00:00"
    import sqlite3

    with sqlite3.connect(tmp_path / "a" / "assessment.gpkg") as db:
        dates = {r[0] for r in db.execute("select last_change from gpkg_contents")}
    assert dates == {"2023-11-14T22:13:20.000Z"}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH='yesterday'"):
        write_assessment(_result(), tmp_path / "c", ["csv"])


def test_scenario_csvs_are_neutralised():
    from bxlplan.exports.gis import csv_bytes

    table = pd.DataFrame(
        {
            "indicator": ["=cmd|' /C calc'!A0", "+1", "ok", "\tx"],
            "change": [-1.0, 2, 3, 4],
        }
    )
    text = csv_bytes(table).decode()
    assert "'=cmd" in text and "'+1" in text and "'\tx" in text
    assert ",-1.0" in text  # numbers untouched


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", ".hidden", "a/b", ""])
def test_scenario_writer_refuses_names_that_are_not_slugs(tmp_path, name):
    from bxlplan.scenarios.outputs import write_scenario

    res = SimpleNamespace(scenario=SimpleNamespace(name=name))
    out = tmp_path / "deep" / "out"
    with pytest.raises(ConfigError, match="is not a plain name"):
        write_scenario(res, out)
    assert not any(tmp_path.rglob("*.gpkg")) and not (tmp_path / "deep").exists()
