"""Every published number is right or flagged (issue 10), on the reference pack."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bxlplan.loading.areas import load_areas
from bxlplan.scoring import assess

pytestmark = [pytest.mark.pack, pytest.mark.slow]

SCORES = ["score_diversity", "score_social_mix", "score_services", "score_overall"]


@pytest.fixture(scope="module")
def hoods(ctx):
    return assess(load_areas("neighbourhoods", ctx.data), ctx).areas


def test_uninhabited_units_have_nan_scores_and_the_flag(hoods, ctx):
    floor = ctx.config["population_floor"]
    unscored = (~hoods["inhabited"].astype(bool)) | (hoods["population_est"] < floor)
    assert unscored.sum() >= 27  # the 27 parks, woods, cemeteries, industry, stations
    flagged = hoods["flags"].str.contains(r"\buninhabited\b|\bsmall_population\b")
    assert (flagged == unscored).all()
    assert hoods.loc[unscored, SCORES].isna().all(axis=None)
    # resident-weighted indicators are NaN there too; land-weighted ones are not
    assert hoods.loc[unscored, "access_pharmacy_within_800m_share"].isna().all()
    assert hoods.loc[unscored, "mix_activity_hill_q1_mean"].isna().all()
    site = hoods.loc[unscored, "site_pharmacy_within_800m_land_share"]
    assert site.notna().all() and site.between(0, 1).all()
    # inhabited neighbourhoods above the floor are all scored
    assert hoods.loc[~unscored, "score_overall"].notna().all()
    forest = hoods.set_index("area_id").loc["906"]
    assert np.isnan(forest["score_overall"]) and "uninhabited" in forest["flags"]


def test_transit_is_complete_and_scored(hoods):
    params = hoods.attrs["bxlplan"]["parameters"]
    assert "transit_stop" not in params["partial_categories"]
    assert "transit_stop" in params["scored_categories"]
    assert not hoods["flags"].str.contains("partial:transit_stop").any()
    share = hoods["access_transit_stop_within_400m_share"].dropna()
    assert share.median() > 0.8  # every STIB stop: most residents are near one


def test_partial_category_is_shown_but_not_scored(ctx):
    from dataclasses import replace

    part = replace(ctx, partial={"pharmacy": "test: a sample"})
    areas = load_areas("communes", ctx.data)
    full, partial = assess(areas, ctx).areas, assess(areas, part).areas
    # the indicator is still published, the services score no longer averages it
    pd.testing.assert_series_equal(
        full["access_pharmacy_within_800m_share"],
        partial["access_pharmacy_within_800m_share"],
    )
    assert (full["score_services"] != partial["score_services"]).any()
    assert partial["flags"].str.contains("partial:pharmacy").all()
    assert "pharmacy" not in partial.attrs["bxlplan"]["parameters"]["scored_categories"]


def test_mostly_unmapped_land_is_not_scored_as_mixed(hoods, ctx):
    limit = ctx.config["landuse_unmapped_max"]
    over = hoods["mix_landuse_no_info_share"] > limit
    assert over.any()
    assert hoods.loc[over, "mix_landuse_entropy"].isna().all()
    assert hoods.loc[over, "flags"].str.contains("landuse_unmapped").all()
    assert not hoods.loc[~over, "flags"].str.contains("landuse_unmapped").any()
    assert hoods.loc[~over, "mix_landuse_entropy"].notna().all()


def test_scores_do_not_depend_on_the_other_areas_assessed(hoods, ctx):
    """A score is an absolute rule, never a rank: assessing a subset gives the same
    rows as assessing all 145."""
    areas = load_areas("neighbourhoods", ctx.data)
    rng = np.random.default_rng(7)
    pick = np.sort(rng.choice(len(areas), 20, replace=False))
    subset = assess(areas.iloc[pick], ctx).areas
    cols = [
        c
        for c in hoods.columns
        if c.startswith(("score_", "access_", "mix_", "social_", "site_"))
    ]
    expected = hoods.iloc[pick][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(subset[cols].reset_index(drop=True), expected)


def test_flags_and_spread_are_published(hoods):
    meta = hoods.attrs["bxlplan"]
    spread = meta["score_spread"]
    assert {"diversity.landuse_entropy", "social_mix.income_position"} <= set(spread)
    assert "missing:childcare" in hoods["flags"].iloc[0]
    assert meta["parameters"]["population_floor"] == 200
