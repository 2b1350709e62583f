"""The architecture is enforced, not just described: ``lint-imports`` (import-linter,
contracts in ``pyproject.toml``, ``[tool.importlinter]``) must pass, and it must fail when a lower layer imports a
higher one or when two sibling modules import each other, even inside a function."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "pyproject.toml"
LINT = Path(sys.executable).with_name("lint-imports")



def _lint(src: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if src is not None:  # this copy of the package first on the path
        env["PYTHONPATH"] = str(src)
    return subprocess.run(
        [str(LINT), str(CONFIG), "--no-cache", "--no-logo"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _copy(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return src


def test_the_contracts_are_kept() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_them(tmp_path: Path) -> None:
    src = _copy(tmp_path)
    readers = src / "bxlplan" / "loading" / "readers.py"
    readers.write_text(readers.read_text() + "\nimport bxlplan.exports  # noqa\n")
    result = _lint(src)
    assert result.returncode != 0
    assert "bxlplan.loading is not allowed to import bxlplan.exports" in result.stdout


def test_a_cycle_hidden_in_a_function_breaks_them(tmp_path: Path) -> None:
    src = _copy(tmp_path)
    network = src / "bxlplan" / "loading" / "network.py"
    network.write_text(
        network.read_text() + "\n\ndef _hidden():\n    from .load import load  # noqa\n"
    )
    result = _lint(src)
    assert result.returncode != 0
    assert "No cycles are allowed in bxlplan.loading" in result.stdout


def test_importing_the_package_root_from_inside_breaks_them(tmp_path: Path) -> None:
    src = _copy(tmp_path)
    areas = src / "bxlplan" / "loading" / "areas.py"
    areas.write_text(areas.read_text() + "\nfrom .. import __version__  # noqa\n")
    result = _lint(src)
    assert result.returncode != 0
    assert "bxlplan.loading.areas is not allowed to import bxlplan" in result.stdout
