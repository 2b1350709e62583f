"""The indicator registry (layers/indicators.yaml): one declaration per column."""

from __future__ import annotations

from pathlib import Path

import pytest

from bxlplan.indicators import registry
from bxlplan.indicators.registry import describe, resident_weighted

ROOT = Path(__file__).resolve().parent.parent


def test_patterns_bind_their_placeholders():
    d = describe("access_green_space_large_within_1600m_share")
    assert d is not None and d.params == {
        "category": "green_space_large",
        "threshold": "1600",
    }
    assert d.label("fr") == "Espace vert >= 3 ha : part des habitants à moins de 1600 m"
    assert d.label("nl").startswith("Groene ruimte >= 3 ha: aandeel inwoners")
    assert describe("mix_landuse_share_green").label("en") == (
        "Land-use share: Green and open space"
    )
    assert describe("site_pharmacy_within_800m_land_share").weighting == "land"


def test_unknown_columns_and_categories_are_not_indicators():
    assert describe("name_fr") is None
    assert describe("access_unicorns_nearest_m") is None  # not a facility category


def test_resident_weighted_selection():
    cols = ["population_est", "access_pharmacy_nearest_m", "mix_landuse_entropy",
            "mix_activity_hill_q1_mean", "site_pharmacy_within_800m_land_share"]  # fmt: skip
    assert resident_weighted(cols) == [
        "access_pharmacy_nearest_m",
        "mix_activity_hill_q1_mean",
    ]


def test_every_entry_is_complete_and_trilingual():
    for ident, entry in registry.indicators().items():
        assert set(entry["label"]) == {"fr", "nl", "en"}, ident
        assert entry["weighting"] in registry.WEIGHTINGS, ident
        assert entry["formula"] and entry["reference"], ident


def test_docs_are_made_from_the_registry():
    doc = (ROOT / "docs" / "indicators.md").read_text(encoding="utf-8")
    assert doc == registry.markdown(), (
        "docs/indicators.md is stale: python -m bxlplan.indicators.registry > "
        "docs/indicators.md"
    )


@pytest.mark.pack
@pytest.mark.slow
def test_every_published_column_is_declared(ctx):
    from bxlplan.loading.areas import load_areas
    from bxlplan.scoring import assess

    areas = load_areas("communes", ctx.data)
    out = assess(areas, ctx).areas
    published = [c for c in out.columns if c not in areas.columns and c != "geometry"]
    undeclared = [c for c in published if describe(c) is None]
    assert not undeclared, f"declare these in layers/indicators.yaml: {undeclared}"
