"""0-100 scores from indicators (rules in ``layers/scoring.yaml``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["score_table"]


def _mean(cols: list[pd.Series], index: pd.Index) -> pd.Series:
    if not cols:
        return pd.Series(np.nan, index=index)
    return pd.concat(cols, axis=1).mean(axis=1, skipna=True)


def score_table(
    ind: pd.DataFrame, categories: list[str], config: dict[str, Any], n_activity: int
) -> pd.DataFrame:
    """Scores of each area (see the rules in ``layers/scoring.yaml``).

    Parameters
    ----------
    ind
        Indicator table from :func:`bxlplan.scoring.assess`.
    categories
        Facility categories with data (the services score is their mean; missing
        categories are never scored as zero access).
    config
        The scoring configuration (weights).
    n_activity
        Number of activity categories K of the reachable activity mix.
    """
    idx = ind.index
    div = [100 * ind["mix_landuse_entropy"]]
    if n_activity > 1:
        div.append(100 * (ind["mix_activity_hill_q1_mean"] - 1) / (n_activity - 1))
    social = [100 * ind["social_income_diversity_entropy"]]
    ratio = ind["social_income_ratio_to_region"]
    social.append(100 * (1 - np.minimum(1, (ratio - 1).abs())))
    if "social_housing_share" in ind and ind["social_housing_share"].notna().any():
        target = float(config.get("social_housing_target", 0.15))
        social.append(100 * np.minimum(1, ind["social_housing_share"] / target))
    services = [
        100 * ind[c]
        for c in ind.columns
        if c.startswith("access_")
        and c.endswith("_share")
        and "within" in c
        and c.split("_within")[0][7:] in categories
    ]
    out = pd.DataFrame(index=idx)
    out["score_diversity"] = _mean([s.clip(0, 100) for s in div], idx)
    out["score_social_mix"] = _mean([s.clip(0, 100) for s in social], idx)
    out["score_services"] = _mean([s.clip(0, 100) for s in services], idx)
    weights = config.get("weights", {})
    w = pd.Series(
        {
            "score_diversity": weights.get("diversity", 1.0),
            "score_social_mix": weights.get("social_mix", 1.0),
            "score_services": weights.get("services", 1.0),
        }
    )
    vals = out[w.index]
    wmat = vals.notna() * w
    with np.errstate(invalid="ignore", divide="ignore"):
        out["score_overall"] = (vals.fillna(0) * w).sum(axis=1) / wmat.sum(axis=1)
    out.loc[wmat.sum(axis=1) == 0, "score_overall"] = np.nan
    return out
