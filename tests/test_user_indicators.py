"""A user's own indicator, from an IBSA multi-indicator export, scored without code."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

import bxlplan
from bxlplan.errors import ConfigError, DataError
from bxlplan.indicators import registry
from bxlplan.scoring import scores

# the module, not the function of the same name that bxlplan.loading re-exports
cat_module = importlib.import_module("bxlplan.loading.catalog")

EXPORT = [
    ["Code", "Territoire", "Part des 65+ (%) 2023", "Isolés 30+ (%)", "Isolés <30 (%)"],
    ["Moyenne régionale / Médiane régionale", "13,1", "21,5", "8,2"],
    ["Total RBC", "160000", "ND", "ND"],
    ["1", "Grand Place", "9,5", "30,1", "12,4"],
    ["2", "Dansaert", "11,0", "ND", "10,0"],
    ["3", "Béguinage", "12,5", "25,0", "VS"],
]

LAYER = """name: {name}
title: {{fr: {name}, nl: {name}, en: {name}}}
kind: table
units: neighbourhoods
unit: "%"
files:
  - path: socio/export.json
    format: ibsa_json
    value_column: "{column}"
columns:
  code: {{source: [Code], type: int, required: true, unique: true}}
  value: {{source: [value], type: float, required: true}}
"""


def _clear() -> None:
    cat_module.catalog.cache_clear()
    cat_module.read_catalog_file.cache_clear()
    registry._entries.cache_clear()


@pytest.fixture
def user_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = tmp_path / "data"
    (data / "socio").mkdir(parents=True)
    (data / "socio/export.json").write_text(json.dumps(EXPORT), encoding="utf-8")
    layers = tmp_path / "catalog"
    layers.mkdir()
    for name, column in (
        ("seniors", "part des 65+ (%) 2023"),
        ("isolated30", "Isolés 30+ (%)"),
    ):
        (layers / f"{name}.yaml").write_text(LAYER.format(name=name, column=column))
    monkeypatch.setenv("BXLPLAN_LAYERS", str(layers))
    _clear()
    yield data
    monkeypatch.delenv("BXLPLAN_LAYERS")
    _clear()


@pytest.mark.usefixtures("user_catalog")
def test_user_layers_add_to_the_shipped_catalog():
    names = set(cat_module.catalog())
    assert {"seniors", "isolated30"} <= names
    assert {"neighbourhoods", "streets", "facilities"} <= names  # still there


def test_each_indicator_of_a_multi_indicator_export_has_its_own_column_and_summary(
    user_catalog,
):
    seniors = bxlplan.load("seniors", user_catalog).set_index("code")
    isolated = bxlplan.load("isolated30", user_catalog).set_index("code")
    assert seniors.loc[1, "value"] == pytest.approx(9.5)
    assert isolated.loc[1, "value"] == pytest.approx(30.1)
    assert isolated["value"].isna().sum() == 1  # ND: NaN with its flag, never 0
    assert isolated.loc[2, "value_flag"] == "ND"
    s_summary = seniors.attrs["bxlplan"]["summary"]
    i_summary = isolated.attrs["bxlplan"]["summary"]
    assert s_summary["Moyenne régionale / Médiane régionale"] == "13,1"
    assert i_summary["Moyenne régionale / Médiane régionale"] == "21,5"
    assert s_summary["Total RBC"] == "160000" and i_summary["Total RBC"] == "ND"


def test_unknown_value_column_is_located(user_catalog, tmp_path):
    bad = tmp_path / "catalog" / "bad.yaml"
    bad.write_text(LAYER.format(name="bad", column="Part des 80+"))
    _clear()
    with pytest.raises(
        DataError, match=r"value_column 'Part des 80\+' .* not in the header"
    ):
        bxlplan.load("bad", user_catalog)


def test_user_indicator_is_scored_with_its_weight(user_catalog, tmp_path):
    from bxlplan.scoring.baseline import _user_indicator_values

    path = tmp_path / "scoring.yaml"
    path.write_text(
        "indicators:\n  seniors: {layer: seniors, range: [5, 15]}\n"
        "weights: {seniors: 2}\n",
        encoding="utf-8",
    )
    cfg = scores.scoring_config(path)
    values = _user_indicator_values(cfg, lambda n: bxlplan.load(n, user_catalog))
    assert values["seniors"].loc[2] == pytest.approx(11.0)
    import pandas as pd

    ind = pd.DataFrame({
        "mix_landuse_entropy": [0.5], "mix_activity_hill_q1_mean": [3.0],
        "social_income_class_mix_entropy": [0.8], "social_income_ratio_to_region": [1.0],
        "access_pharmacy_within_800m_share": [0.9], "user_seniors": [11.0],
    })  # fmt: skip
    out = scores.score_table(ind, ["pharmacy"], cfg, 5).iloc[0]
    assert out["score_seniors"] == pytest.approx(60)  # (11 - 5) / (15 - 5)
    # overall: (50 + 90 + 90 + 2 * 60) / 5
    assert out["score_overall"] == pytest.approx((50 + 90 + 90 + 2 * 60) / 5)


@pytest.mark.usefixtures("user_catalog")
def test_scoring_file_refuses_a_layer_not_joined_by_neighbourhood(tmp_path):
    path = tmp_path / "scoring.yaml"
    path.write_text("indicators:\n  x: {layer: population_communes, range: [0, 1]}\n")
    with pytest.raises(ConfigError, match="joined by neighbourhood code"):
        scores.scoring_config(path)


def test_bxlplan_layers_must_name_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("BXLPLAN_LAYERS", str(tmp_path / "nope"))
    _clear()
    try:
        with pytest.raises(ConfigError, match="BXLPLAN_LAYERS names .*not a folder"):
            cat_module.catalog()
    finally:
        monkeypatch.delenv("BXLPLAN_LAYERS")
        _clear()
