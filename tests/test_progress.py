"""Progress that works in logs (issue 12, item 4): one line per step off a terminal."""

from __future__ import annotations

import importlib
import re

import pytest
from typer.testing import CliRunner

from bxlplan.cli import app

STEP = re.compile(r"^\[\d+\.\d s\] (.+)$", re.MULTILINE)


@pytest.fixture
def fake_prepare(monkeypatch):
    """``assess`` with a preparation that only reports steps, then fails on purpose
    (the progress is what is tested, not the assessment)."""
    mod = importlib.import_module("bxlplan.scoring.baseline")

    def fake(*_args, progress=None, cache=None, **_kwargs):
        assert cache is False  # --no-cache reaches prepare()
        for msg in ("loading layers", "access: pharmacy (1/2)", "access: school (2/2)"):
            progress(msg)
        raise mod.DataError("stop here")

    monkeypatch.setattr(mod, "prepare", fake)


def _run(pack, tmp_path, *options):
    args = [*options, "assess", "--units", "communes", "--data", str(pack)]
    args += ["--out", str(tmp_path / "out"), "--no-cache"]
    return CliRunner().invoke(app, args)


@pytest.mark.usefixtures("fake_prepare")
def test_steps_are_lines_with_elapsed_time_off_a_terminal(pack, tmp_path):
    res = _run(pack, tmp_path)
    assert res.exit_code == 2 and "stop here" in res.output
    steps = STEP.findall(res.output)
    assert steps == [
        "preparing",
        "loading layers",
        "access: pharmacy (1/2)",
        "access: school (2/2)",
    ]


@pytest.mark.usefixtures("fake_prepare")
def test_quiet_silences_progress(pack, tmp_path):
    res = _run(pack, tmp_path, "-q")
    assert res.exit_code == 2 and "stop here" in res.output  # errors still shown
    assert STEP.findall(res.output) == []


def test_steps_reporter_counts_and_done(monkeypatch, capsys):
    from bxlplan import cli

    monkeypatch.setitem(cli._state, "quiet", False)
    with cli.Steps("start") as steps:
        steps("access: pharmacy (6/16)")
    lines = STEP.findall(capsys.readouterr().err)
    assert lines == ["start", "access: pharmacy (6/16)", "done"]
