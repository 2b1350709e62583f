"""Score rules, score_table and the scoring file's validation (hand-computed values)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bxlplan.errors import ConfigError
from bxlplan.scoring.scores import (
    income_position,
    linear,
    score_spread,
    score_table,
    scoring_config,
    target_band,
    validate_scoring,
)


def _ind(**cols: list[float]) -> pd.DataFrame:
    base = {
        "mix_landuse_entropy": [0.5],
        "mix_activity_hill_q1_mean": [3.0],
        "social_income_class_mix_entropy": [0.8],
        "social_income_ratio_to_region": [1.0],
        "access_pharmacy_within_800m_share": [0.9],
        "access_green_space_large_within_1600m_share": [0.5],
    }
    base.update(cols)
    n = max(len(v) for v in base.values())
    return pd.DataFrame({k: (v * n if len(v) == 1 else v) for k, v in base.items()})


# ---------------------------------------------------------------- rules
def test_income_position_is_symmetric_in_the_log_ratio():
    r = np.array([0.25, 0.5, 0.8, 1.0, 1.25, 2.0, 4.0])
    s = income_position(r)
    assert s[3] == 100
    np.testing.assert_allclose(income_position(1 / r), s)  # r and 1/r score the same
    assert s[1] == s[5] == 0  # half and double the median: 0
    # 0.8: 1 - ln(1.25)/ln 2 = 0.678072
    assert s[2] == pytest.approx(100 * (1 - math.log(1.25) / math.log(2)))
    assert income_position([2.0], span=4.0)[0] == pytest.approx(50)
    assert np.isnan(income_position([np.nan])[0])


def test_target_band_rewards_the_band_not_concentration():
    s = target_band([0.0, 0.075, 0.15, 0.2, 0.3, 0.45, 0.6, 1.0], (0.15, 0.3), (0, 0.6))
    np.testing.assert_allclose(s, [0, 50, 100, 100, 100, 50, 0, 0])
    assert np.isnan(target_band([np.nan], (0.15, 0.3), (0, 0.6))[0])
    # a 100 % social estate no longer gets full marks (the old min(1, share / 0.15) did)
    assert target_band([1.0], (0.15, 0.3), (0, 0.6))[0] == 0


def test_linear_clips_and_keeps_nan():
    np.testing.assert_allclose(linear([-1, 0.25, 2, np.nan]), [0, 25, 100, np.nan])
    np.testing.assert_allclose(linear([3.0], 1, 5), [50])


# ---------------------------------------------------------------- score_table
def test_score_table_hand_computed():
    ind = _ind(social_income_ratio_to_region=[2.0])
    cfg = {"weights": {"diversity": 1, "social_mix": 1, "services": 2}}
    out = score_table(ind, ["pharmacy", "green_space_large"], cfg, 5).iloc[0]
    assert out["score_diversity"] == pytest.approx((50 + 50) / 2)  # (3-1)/(5-1)
    assert out["score_social_mix"] == pytest.approx((80 + 0) / 2)
    assert out["score_services"] == pytest.approx((90 + 50) / 2)
    assert out["score_overall"] == pytest.approx((50 + 40 + 2 * 70) / 4)


def test_services_use_only_the_categories_given():
    ind = _ind()
    out = score_table(ind, ["pharmacy"], {}, 5).iloc[0]  # green_space_large left out
    assert out["score_services"] == pytest.approx(90)


def test_nan_scores_are_left_out_and_weights_renormalised():
    ind = _ind(
        mix_landuse_entropy=[np.nan, 0.5],
        mix_activity_hill_q1_mean=[np.nan, 3.0],
        access_pharmacy_within_800m_share=[np.nan, np.nan],
    )
    cfg = {"weights": {"diversity": 3, "social_mix": 1, "services": 1}}
    out = score_table(ind, ["pharmacy"], cfg, 5)
    assert np.isnan(out.loc[0, "score_diversity"])
    assert np.isnan(out.loc[0, "score_services"])
    # only social mix is known for area 0: overall = social mix, not a 0-filled mean
    assert out.loc[0, "score_overall"] == pytest.approx(out.loc[0, "score_social_mix"])
    assert out.loc[1, "score_overall"] == pytest.approx((3 * 50 + 90) / 4)


def test_all_nan_gives_nan_overall_never_zero():
    nan = [np.nan]
    ind = _ind(
        mix_landuse_entropy=nan, mix_activity_hill_q1_mean=nan,
        social_income_class_mix_entropy=nan, social_income_ratio_to_region=nan,
        access_pharmacy_within_800m_share=nan,
    )  # fmt: skip
    out = score_table(ind, ["pharmacy"], {}, 5)
    assert out.isna().all(axis=None)


def test_social_housing_band_joins_the_social_mix():
    ind = _ind(social_housing_share=[0.075, 1.0])
    out = score_table(ind, ["pharmacy"], {}, 5)
    assert out.loc[0, "score_social_mix"] == pytest.approx((80 + 100 + 50) / 3)
    assert out.loc[1, "score_social_mix"] == pytest.approx((80 + 100 + 0) / 3)


def test_scores_stay_in_0_100_whatever_the_indicators():
    rng = np.random.default_rng(1)
    ind = _ind(
        mix_landuse_entropy=list(rng.uniform(-1, 2, 50)),
        mix_activity_hill_q1_mean=list(rng.uniform(0, 9, 50)),
        social_income_class_mix_entropy=list(rng.uniform(-1, 2, 50)),
        social_income_ratio_to_region=list(rng.uniform(0, 5, 50)),
        access_pharmacy_within_800m_share=list(rng.uniform(-1, 2, 50)),
    )
    out = score_table(ind, ["pharmacy"], {}, 5)
    assert ((out >= 0) & (out <= 100)).all(axis=None)


def test_score_spread_reports_every_component():
    ind = _ind(mix_landuse_entropy=[0.2, 0.4, 0.6])
    spread = score_spread(ind, ["pharmacy"], {}, 5)
    assert spread.loc["diversity.landuse_entropy", "mean"] == pytest.approx(40)
    assert spread.loc["diversity.landuse_entropy", "count"] == 3
    assert "services.pharmacy" in spread.index


# ---------------------------------------------------------------- the scoring file
def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scoring.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("weights: {diversity: -1}", "weights.diversity' must be between 0"),
        ("weights: {diversity: heavy}", "weights.diversity' must be a number"),
        (
            "weights: {diversity: 0, social_mix: 0, services: 0}",
            "all weights are zero",
        ),
        (
            "weights: {diversty: 1}",
            "'weights.diversty' is not a score; valid: diversity",
        ),
        ("wieghts: {diversity: 1}", "'wieghts' is not a scoring key; valid keys:"),
        ("income_classes: 0", "'income_classes' must be between 2 and 20"),
        ("income_classes: 2.5", "must be a whole number"),
        ("population_floor: .nan", "'population_floor' must be between"),
        ("- 1\n- 2", "the top level must be a mapping"),
        ("rules: {income_position: {span: 1}}", "rules.income_position.span"),
        (
            "rules: {social_housing: {target_band: [0.3, 0.15]}}",
            "low 0.3 is above high 0.15",
        ),
        ("rules: {median: {}}", "'rules.median' is not a rule"),
        ("indicators: {seniors: {layer: nope, range: [0, 1]}}", "not a table layer"),
        ("weights: [1, 2]", "'weights' must be a mapping"),
        ("a: [1, 2", "line"),  # bad YAML is located
    ],
)
def test_bad_scoring_files_get_located_errors(tmp_path: Path, text: str, message: str):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        scoring_config(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_and_empty_scoring_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        scoring_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="empty"):
        scoring_config(_write(tmp_path, ""))


def test_user_weights_merge_with_the_shipped_ones(tmp_path: Path):
    cfg = scoring_config(_write(tmp_path, "weights: {services: 2}"))
    assert cfg["weights"] == {"diversity": 1.0, "social_mix": 1.0, "services": 2}
    assert cfg["rules"]["income_position"]["span"] == 2.0  # shipped rules kept


def test_shipped_scoring_file_is_valid():
    validate_scoring(scoring_config(), "layers/scoring.yaml")
