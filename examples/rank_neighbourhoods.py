"""Rank the 145 neighbourhoods on the three scores and show one area's full profile.

Run: ``BXLPLAN_DATA=../shared/data/brussels python examples/rank_neighbourhoods.py [code]``
"""

from __future__ import annotations

import sys

from bxlplan.loading.areas import load_areas
from bxlplan.scoring import assess, prepare


def main(code: str = "15") -> None:
    ctx = prepare()  # loads every layer and computes access once
    result = assess(load_areas("neighbourhoods", ctx.data), ctx)
    areas = result.areas
    scores = ["score_diversity", "score_social_mix", "score_services", "score_overall"]
    ranked = areas.dropna(subset=["score_overall"]).sort_values(
        "score_overall", ascending=False
    )
    print("best and worst neighbourhoods (0-100 scores; unscored areas left out):")
    print(
        ranked[["area_id", "name_fr", *scores]].head(5).round(0).to_string(index=False)
    )
    print(
        ranked[["area_id", "name_fr", *scores]].tail(5).round(0).to_string(index=False)
    )

    row = areas.loc[areas["area_id"] == code].iloc[0]
    print(
        f"\nprofile of {row['name_fr']} / {row['name_nl']} ({code}), ~{row['population_est']:,.0f} residents"
    )
    if row["flags"]:
        print(f"  flags: {row['flags']}")
    for col in [*scores, "mix_landuse_entropy", "mix_activity_hill_q1_mean",
                "social_income_median_popmean_eur", "social_income_ratio_to_region",
                "social_income_class_mix_entropy", "social_poverty_rate_commune"]:  # fmt: skip
        print(f"  {col:45s} {row[col]:10.3f}")
    print("  share of residents within the walking threshold:")
    for col in sorted(c for c in areas.columns if c.endswith("m_share")):
        value = row[col]
        shown = "no data" if value != value else f"{value:.0%}"
        print(f"    {col:50s} {shown}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
