"""The command line and the examples, end to end on the reference pack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bxlplan.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.mark.pack
def test_check_on_the_pack(pack, tmp_path):
    result = runner.invoke(app, ["check", "--data", str(pack), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "missing data" in result.output  # childcare: no data, not zero
    report = {
        r["layer"]: r for r in json.loads((tmp_path / "check_report.json").read_text())
    }
    assert report["neighbourhoods"]["status"] == "ok"
    assert report["cru"]["status"] == "missing" and not report["cru"]["required"]
    assert report["streets"]["network"]["largest_component_share"] >= 0.95


@pytest.mark.pack
def test_check_fails_on_a_broken_required_layer(pack, tmp_path):
    data = tmp_path / "data"
    for sub in pack.iterdir():  # link the pack, then break one required file
        if sub.is_dir():
            (data / sub.name).mkdir(parents=True)
            for f in sub.iterdir():
                (data / sub.name / f.name).symlink_to(f)
    (data / "socio/ibsa_2498_median_equivalised_income_2023.csv").unlink()
    (data / "socio/ibsa_2498_median_equivalised_income_2023.csv").write_text(
        "MD_ID;nom_fr;nom_nl;valeur\n1;a;a;12,5\n1;b;b;13\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["check", "--data", str(data)])
    assert result.exit_code == 1
    assert "income_equivalised" in result.output and "duplicate" in result.output


@pytest.mark.pack
def test_layers_lists_the_catalog(pack):
    result = runner.invoke(app, ["layers", "--data", str(pack)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("neighbourhoods", "pras", "facilities", "streets", "sectors"):
        assert name in result.output


def test_missing_data_folder_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["check", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())


@pytest.mark.pack
@pytest.mark.slow
def test_example_load_layers(pack):
    env = {**os.environ, "BXLPLAN_DATA": str(pack)}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples/load_layers.py")],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert "145 neighbourhoods, 118 with a 2023 median income" in out.stdout
    assert "19 communes" in out.stdout
