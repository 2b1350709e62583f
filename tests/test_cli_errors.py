"""The command line ends every error in one located message, exit code 2, no traceback.

``-v`` adds the traceback; text quoted from data is printed as text, never as markup.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bxlplan.cli import app
from bxlplan.errors import DataError

runner = CliRunner()


def test_bxlplan_error_exit_2_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "no such folder"
    result = runner.invoke(app, ["check", "--data", str(missing)])
    assert result.exit_code == 2
    assert str(missing) in result.output
    assert "Traceback" not in result.output


def test_verbose_adds_the_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["-v", "check", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "Traceback" in result.output


def test_markup_in_data_text_is_printed_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bxlplan.loading.check as check

    def boom(_folder: Path) -> None:
        raise DataError("row 3: name '[/]' and '[bold]x[/bold]' in field name_fr")

    monkeypatch.setattr(check, "check_data", boom)
    result = runner.invoke(app, ["check", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "name '[/]' and '[bold]x[/bold]'" in result.output


def test_unexpected_error_is_reported_as_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bxlplan.loading.check as check

    def boom(_folder: Path) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(check, "check_data", boom)
    result = runner.invoke(app, ["check", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "internal error" in result.output and "ZeroDivisionError" in result.output
    assert "Traceback" not in result.output


def test_os_error_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bxlplan.loading.check as check

    def boom(_folder: Path) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.gpkg"))

    monkeypatch.setattr(check, "check_data", boom)
    result = runner.invoke(app, ["check", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "Permission denied" in result.output and "x.gpkg" in result.output


def test_fetch_failure_exits_2_with_the_layer_and_url(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["fetch", "--data", str(tmp_path), "--base-url", "http://127.0.0.1:9",
         "--deadline", "2", "--retries", "0", "communes"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "layer 'communes': http://127.0.0.1:9/" in result.output
    assert "Traceback" not in result.output
