"""The planner's report (scenarios/report.py): FR/NL/EN, rounded, self-contained, escaped."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from bxlplan.exports.labels import ui
from bxlplan.scenarios.report import check_figures, format_value
from bxlplan.scenarios.spec import read_scenario

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "scenarios" / "gare_de_l_ouest.yaml"
HOSTILE = "<script>alert(1)</script>"
TEMPLATE = "{{ 6*7 }}"


def _variant(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = SHIPPED.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "variant.yaml"
    path.write_text(text)
    return path


def test_stale_figures_are_flagged(tmp_path):
    # the shipped file agrees with its programme
    assert all(c.ok for c in check_figures(read_scenario(SHIPPED)))
    # the programme changed, the text did not: "450 dwellings" and the shares are stale
    path = _variant(
        tmp_path,
        ("{social: 70, moderate: 90, market: 290}", "{social: 70, moderate: 90, market: 400}"),
        ("green: 0.23}", "green: 0.13, other: 0.10}"),
    )  # fmt: skip
    stale = {c.stated for c in check_figures(read_scenario(path)) if not c.ok}
    assert "450 dwellings" in stale
    assert "65 % market" in stale
    assert "3 ha green of 13 ha = 23 %" in stale


def test_numbers_are_rounded_to_their_meaning():
    assert format_value(0.91587, "%", "fr") == "92"
    assert format_value(-0.0234, "%", "en", change=True) == "-2 pts"
    assert format_value(60.403274, "/100", "en") == "60"
    assert format_value(973.61, "m", "en") == "970"
    assert format_value(14021.87, "EUR", "fr") == "14\u202f022"
    assert format_value(14021.87, "EUR", "nl") == "14.022"
    assert format_value(2.448939, "facilities", "en") == "2.4"
    assert format_value(float("nan"), "%", "nl") == "n.b."
    assert format_value(float("nan"), "%", "en", na="n/a (too few residents)") == (
        "n/a (too few residents)"
    )


@pytest.fixture(scope="module")
def hostile_result(ctx, tmp_path_factory):
    """gare_de_l_ouest with a hostile title and a second, hostile facility name."""
    from bxlplan.scenarios import run_scenario

    path = _variant(
        tmp_path_factory.mktemp("report"),
        ('title: {fr: "Gare de l\'Ouest", nl: "Weststation"}',
         f'title: {{fr: "{HOSTILE} fr", nl: "{TEMPLATE} nl", en: "{HOSTILE}"}}'),
        ("    - {category: green_space_large",
         f'    - {{category: playground, location: inside, name: "{HOSTILE} {TEMPLATE} | x"}}\n'
         "    - {category: green_space_large"),
    )  # fmt: skip
    return run_scenario(path, ctx)


@pytest.mark.pack
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["fr", "nl"])
def test_report_html_is_translated_rounded_and_escaped(hostile_result, lang):
    from bxlplan.scenarios.report import report_html, report_markdown

    res = hostile_result
    page = report_html(res, lang)
    md = report_markdown(res, lang)
    for text in (page, md):
        # headings in the language
        for key in ("report_summary", "report_what_changes", "report_demand",
                    "report_assumptions", "report_checks"):  # fmt: skip
            assert ui(key, lang) in text, key
        assert "What changes" not in text
        assert not re.search(r"\bnan\b", text, re.IGNORECASE)
        # category labels, not ids
        for cat in ("green_space_large", "primary_school", "childcare"):
            assert cat not in text, cat
        # the user's facility name, the unknown capacity, what "surroundings" is
        assert "Parc de la Gare de l&#x27;Ouest" in page
        assert "Parc de la Gare de l'Ouest" in md
        assert ui("report_unknown_capacity", lang) in text
        assert ui("report_shortfall", lang) not in text
        surroundings = ui("report_surroundings_are", lang).format(m="800")
        assert html_or_md(surroundings, text is page) in text
    # self-contained: an inline SVG, no script, no external resource
    assert page.count("<svg") == 1 and "<circle" in page
    lowered = page.lower()
    for bad in (
        "<script",
        "<img",
        "<link",
        "<iframe",
        "src=",
        "href=",
        "url(",
        "@import",
    ):
        assert bad not in lowered, bad
    # the only URLs are the scenario's sources, shown as text
    sources = "".join(res.scenario.sources)
    assert set(re.findall(r"https?://[^\s<)]+", page)) <= set(
        re.findall(r"https?://[^\s<)]+", sources)
    )
    # hostile strings are escaped, never markup or a template
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert TEMPLATE in page and TEMPLATE in md  # shown as typed, never evaluated
    # markdown tables: a '|' in a data string cannot split a cell
    assert f"{HOSTILE} {TEMPLATE} \\| x" in md


def html_or_md(text: str, is_html: bool) -> str:
    import html

    return html.escape(text) if is_html else text


@pytest.mark.pack
@pytest.mark.slow
def test_write_scenario_writes_the_report_and_a_labelled_table(
    hostile_result, tmp_path
):
    from bxlplan.scenarios.outputs import SCENARIO_FILES, write_scenario

    assert "report.html" in SCENARIO_FILES
    written = write_scenario(hostile_result, tmp_path, lang="nl")
    folder = tmp_path / hostile_result.scenario.name
    assert folder / "report.html" in written
    page = (folder / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'lang="nl"' in page
    assert ui("report_summary", "nl") in (folder / "report.md").read_text()
    table = pd.read_csv(folder / "table.csv")
    assert {"label", "unit"} <= set(table.columns)
    row = table[(table["indicator"] == "score_overall") & (table["area"] == "pole")]
    assert row["label"].iloc[0] == "Totaalscore" and row["unit"].iloc[0] == "/100"
    # rounded: no 15-digit floats
    text = (folder / "table.csv").read_text()
    for token in re.findall(r"\d+\.\d+(?:e-?\d+)?", text):
        digits = token.split("e")[0].replace(".", "").strip("0")
        assert len(digits) <= 6, token
    demand = pd.read_csv(folder / "demand.csv")
    unknown = ~demand["existing_capacity_known"] & (
        demand["existing_facilities_within_reach"].fillna(-1) != 0
    )
    assert (demand.loc[unknown, "status"] == "unknown").all() and unknown.any()
