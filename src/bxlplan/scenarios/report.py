"""The planner's report of a scenario, in French, Dutch or English.

The content is built once (:func:`build_report`: a headline summary, sections of
paragraphs, bullet lists and tables of formatted cells) and rendered twice: as
Markdown (:func:`report_markdown`) and as one self-contained HTML page
(:func:`report_html`: inline CSS, an inline SVG map drawn from the geometries, no
script, no external resource). Every string that comes from data (scenario names,
titles, facility names, facts, assumptions, sources) is escaped by the renderer:
``html.escape`` in the page, ``|`` and newlines in the Markdown tables.

Numbers are rounded to what they mean (:func:`format_value`): shares as whole
percentages, scores /100 without decimals, distances to 10 m, money to the euro,
resident-weighted counts to one decimal ("mean number"); a missing value says why
where the area's ``flags`` tell (too few residents, no data). Where the capacity of
existing facilities is unknown the demand balance is "unknown (capacity not
supplied)", never a shortfall. :func:`check_figures` compares the figures a scenario
file states (facts, assumptions) with what its programme implies, so a stale figure
is flagged in the report.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
import shapely

from ..exports.labels import check_lang, column_label, ui
from ..indicators.registry import describe
from ..loading.catalog import read_catalog_file
from ..loading.facilities import categories
from .run import ScenarioResult
from .spec import TENURES, Scenario

__all__ = [
    "Check",
    "Report",
    "Table",
    "build_report",
    "check_figures",
    "format_value",
    "labelled_table",
    "report_html",
    "report_markdown",
]

KEY_ROWS = [
    "score_overall", "score_diversity", "score_social_mix", "score_services", "population_est",
    "mix_landuse_entropy", "mix_activity_hill_q1_mean", "social_income_median_popmean_eur",
    "social_income_class_mix_entropy",
]  # fmt: skip
# an access share is reported when it changes by more than this (2 points)
ACCESS_CHANGE_MIN = 0.02
AREAS = ("pole", "surroundings")


def _t(key: str, lang: str, **values: Any) -> str:
    """A report phrase of ``layers/labels.yaml`` with its ``{placeholders}`` filled
    (the values are inserted as text, never interpreted)."""
    text = ui(key, lang)
    return text.format(**values) if values else text


# ---------------------------------------------------------------- numbers


def _num(v: float, decimals: int, lang: str, sign: bool = False) -> str:
    """``v`` with ``decimals`` decimals and the language's separators."""
    v = round(float(v), decimals)
    if v == 0:
        v = 0.0  # no "-0"
    s = f"{v:{'+' if sign else ''},.{decimals}f}"
    if lang == "fr":
        return s.replace(",", "\u202f").replace(".", ",")
    if lang == "nl":
        return s.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return s


def _sig_decimals(v: float, digits: int = 3) -> int:
    if not v or not math.isfinite(v):
        return 0
    return max(0, min(3, digits - 1 - math.floor(math.log10(abs(v)))))


def _unit_of(indicator: str) -> str:
    found = describe(indicator)
    return found.unit if found is not None else ""


def display_unit(unit: str, lang: str) -> str:
    """How a registry unit is shown next to a rounded value."""
    return {
        "%": "%",
        "/100": "/100",
        "m": "m",
        "EUR": "€",
        "inhabitants": _t("report_residents", lang),
        "facilities": _t("report_mean_number", lang),
        "dwellings": _t("report_dwellings_unit", lang),
        "0-1": "0-1",
    }.get(unit, unit)


def format_value(
    v: Any, unit: str, lang: str, *, change: bool = False, na: str | None = None
) -> str:
    """A value rounded to meaningful precision for the registry ``unit``.

    Parameters
    ----------
    v : object
        The value (None, NA and NaN are missing).
    unit : str
        The registry unit (``%``, ``m``, ``EUR``, ``/100``, ``0-1``, ...).
    lang : {"fr", "nl", "en"}
        The language (decimal and thousands separators).
    change : bool, default False
        A change: signed, and a share's change in points.
    na : str, optional
        The text of a missing value (default: the report's, in ``lang``).

    Returns
    -------
    str
        The value without its unit, except the points of a share's change.

    Examples
    --------
    >>> format_value(0.12345, "%", "en"), format_value(0.05, "%", "en", change=True)
    ('12', '+5 pts')
    >>> format_value(float("nan"), "m", "fr", na="-")
    '-'
    """
    if (
        v is None
        or v is pd.NA
        or (isinstance(v, float | np.floating) and not np.isfinite(v))
    ):
        return na if na is not None else _t("report_na", lang)
    v = float(v)
    if unit == "%":
        s = _num(100 * v, 0, lang, change)
        return f"{s} {_t('report_points', lang)}" if change else s
    if unit == "m":
        return _num(round(v / 10) * 10, 0, lang, change)
    if unit in ("/100", "EUR", "inhabitants", "dwellings"):
        return _num(v, 0, lang, change)
    if unit == "facilities":
        return _num(v, 1, lang, change)
    if unit == "0-1" or change:
        return _num(v, 2, lang, change)
    return _num(v, _sig_decimals(v), lang, change)


def _na_reason(indicator: str, flags: str, lang: str) -> str:
    """Why an indicator of an area is NaN, from the area's ``flags``."""
    found = describe(indicator)
    codes = set(filter(None, str(flags or "").split(";")))
    if found is not None:
        cat = found.params.get("category")
        if cat and f"missing:{cat}" in codes:
            return _t("report_na_no_data", lang)
        if found.weighting == "residents" and codes & {
            "uninhabited",
            "small_population",
        }:
            return _t("report_na_few_residents", lang)
    return _t("report_na", lang)


def _round_csv(v: Any, unit: str) -> Any:
    if v is None or v is pd.NA or not np.isfinite(v):
        return v
    v = float(v)
    if unit == "%":
        return round(v, 4)
    if unit in ("m", "EUR", "inhabitants", "dwellings"):
        return round(v)
    if unit == "/100":
        return round(v, 1)
    return float(f"{v:.6g}")


def labelled_table(table: pd.DataFrame, lang: str = "fr") -> pd.DataFrame:
    """``table.csv``: the indicator table with its label and unit in ``lang``, rounded.

    Shares to 4 decimals, metres, euros and counts of people to the unit, scores to
    1 decimal, anything else to 6 significant digits.

    Parameters
    ----------
    table : DataFrame
        ``indicator``, ``before``, ``after`` and ``change``.
    lang : {"fr", "nl", "en"}
        The language of the labels.

    Returns
    -------
    DataFrame
        ``indicator``, ``label``, ``unit``, ``before``, ``after``, ``change``.

    Examples
    --------
    >>> table = pd.DataFrame({"indicator": ["access_pharmacy_within_800m_share"],
    ...                       "before": [0.81234], "after": [0.9], "change": [0.08766]})
    >>> labelled_table(table, "en").iloc[0].to_dict()
    {'indicator': 'access_pharmacy_within_800m_share', 'label': 'Pharmacy: share of residents within 800 m', 'unit': 'share (0-1)', 'before': 0.8123, 'after': 0.9, 'change': 0.0877}
    """
    check_lang(lang)
    out = table.copy()
    units = out["indicator"].map(_unit_of)
    out.insert(
        list(out.columns).index("indicator") + 1,
        "label",
        out["indicator"].map(lambda c: column_label(c, lang)[0]),
    )
    out.insert(
        list(out.columns).index("label") + 1,
        "unit",
        units.map(
            lambda u: (
                _t("report_share_unit", lang) if u == "%" else display_unit(u, lang)
            )
        ),
    )
    for col in ("before", "after", "change"):
        out[col] = [_round_csv(v, u) for v, u in zip(out[col], units, strict=True)]
    return out


# ---------------------------------------------------------------- demand


# ---------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """A figure stated in a scenario file and what the programme implies.

    Parameters
    ----------
    stated : str
        The words of the file.
    programme : str
        The programme's figure (with its derivation).
    ok : bool
        Whether they agree.

    Examples
    --------
    >>> Check("300 dwellings", "300", True).ok
    True
    """

    stated: str  # the words of the file
    programme: str  # the programme's figure
    ok: bool


_N = r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_APPROX = r"(at least |au moins |minimum |~ ?|about |ca\. |environ |ongeveer )?"


def _f(text: str) -> float:
    return float(text.replace(",", ""))


def _close(stated: float, actual: float, approx: str | None, rel: float) -> bool:
    approx = (approx or "").strip()
    if approx in ("at least", "au moins", "minimum"):
        return actual >= stated - 1e-9
    tol = 0.1 if approx else rel
    return abs(actual - stated) <= tol * max(abs(stated), 1e-9)


def check_figures(scn: Scenario) -> list[Check]:
    """Figures a scenario file states (``facts``, ``assumptions``) checked against
    the programme: dwellings, residents (dwellings x persons per dwelling), persons
    per dwelling and its derivation (``2.33 = 7,000 inhabitants / 3,000 dwellings``),
    tenure shares, jobs, a land-use share derived from areas (``3 ha green of 13 ha =
    23 %``) and facility capacities (``450 places``). A figure that disagrees is
    stale: the programme was changed and the text was not.

    Parameters
    ----------
    scn : Scenario
        The scenario.

    Returns
    -------
    list of Check
        One per figure found, in the order of the file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from bxlplan.scenarios.spec import read_scenario
    >>> path = Path(tempfile.mkdtemp()) / "my_pole.yaml"
    >>> _ = path.write_text(
    ...     "name: my_pole\\npole: Josaphat\\nperimeter: {neighbourhoods: [85]}\\n"
    ...     "programme:\\n  dwellings: {social: 100, market: 200}\\n"
    ...     "assumptions: ['300 dwellings, 700 residents']\\n")
    >>> for check in check_figures(read_scenario(path)):
    ...     print(check.stated, "|", check.programme, "|", check.ok)
    300 dwellings | 300 | True
    700 residents | 300 x 2.1 = 630 | False
    """
    texts = [f["figure"] if isinstance(f, dict) else str(f) for f in scn.facts]
    texts += [str(a) for a in scn.assumptions]
    total = sum(scn.dwellings.values())
    jobs = sum(scn.jobs.values())
    caps = {float(f.capacity) for f in scn.facilities if f.capacity}
    fns = read_catalog_file("functions.yaml").get("functions", {})
    out: list[Check] = []
    seen: set[str] = set()

    def add(stated: str, programme: str, ok: bool) -> None:
        if stated not in seen:
            seen.add(stated)
            out.append(Check(stated, programme, ok))

    flags = re.IGNORECASE
    for text in texts:
        for m in re.finditer(_APPROX + _N + r"\s*(?:new |nouveaux |nieuwe )?(dwellings|logements|woningen)\b", text, flags):  # fmt: skip
            add(
                m.group(0).strip(),
                f"{total:,.0f}",
                _close(_f(m.group(2)), total, m.group(1), 0.0),
            )
        for m in re.finditer(_APPROX + _N + r"\s*(inhabitants|residents|habitants|inwoners|bewoners)\b", text, flags):  # fmt: skip
            add(
                m.group(0).strip(),
                f"{total:,.0f} x {scn.persons_per_dwelling:g} = {scn.new_residents:,.0f}",
                _close(_f(m.group(2)), scn.new_residents, m.group(1), 0.02),
            )
        for m in re.finditer(r"persons per dwelling\s*(?:of |= ?)?" + _N + r"|" + _N + r"\s*persons per dwelling", text, flags):  # fmt: skip
            v = _f(m.group(1) or m.group(2))
            add(
                m.group(0).strip(),
                f"{scn.persons_per_dwelling:g}",
                abs(v - scn.persons_per_dwelling) < 0.005,
            )
        for m in re.finditer(_N + r"\s*=\s*" + _N + r"[^=/;]*?/\s*" + _N, text):
            x, a, b = (_f(m.group(i)) for i in (1, 2, 3))
            dec = len(m.group(1).partition(".")[2])
            add(
                m.group(0).strip(),
                f"{a / b:.{dec + 1}f}" if b else "n/a",
                b != 0 and round(a / b, dec) == x,
            )
        for m in re.finditer(_N + r"\s*%\s*(social|moderate|market)\b", text, flags):
            tenure = m.group(2).lower()
            share = scn.dwellings[tenure] / total if total else float("nan")
            add(
                m.group(0).strip(),
                f"{share:.1%}",
                bool(total) and abs(100 * share - _f(m.group(1))) <= 2.5,
            )
        for m in re.finditer(_APPROX + _N + r"\s*(jobs|emplois|banen|arbeidsplaatsen)\b", text, flags):  # fmt: skip
            add(
                m.group(0).strip(),
                f"{jobs:,.0f}",
                _close(_f(m.group(2)), jobs, m.group(1), 0.01),
            )
        for m in re.finditer(_N + r"\s*ha\b([^=;]*?)\bof\s+" + _N + r"\s*ha\s*=\s*" + _N + r"\s*%\s*([a-z]+)?", text, flags):  # fmt: skip
            a, b, pct = _f(m.group(1)), _f(m.group(3)), _f(m.group(4))
            words = f"{m.group(2)} {m.group(5) or ''}".lower().split()
            fn = next((w for w in words if w in fns), None)
            ok = b > 0 and abs(100 * a / b - pct) <= 1.0
            given = f"{100 * a / b:.0f} %" if b else "n/a"
            if fn is not None and scn.land_use is not None:
                share = scn.land_use.get(fn, 0.0)
                ok = ok and abs(100 * share - pct) <= 1.0
                given += f"; {fn} {share:.0%}"
            add(m.group(0).strip(), given, ok)
        for m in re.finditer(_N + r"\s*(places|plaatsen)\b", text, flags):
            listed = ", ".join(f"{c:g}" for c in sorted(caps)) or "-"
            add(m.group(0).strip(), listed, _f(m.group(1)) in caps)
    return out


# ---------------------------------------------------------------- content


@dataclass
class Table:
    """A table of the report.

    Parameters
    ----------
    header : list of str
        The column headings.
    rows : list of list of str
        The cells, already formatted.
    align : str
        One ``l`` or ``r`` per column (default: all left).

    Examples
    --------
    >>> Table(["indicator", "after"], [["score", "55"]], "lr").align
    'lr'
    """

    header: list[str]
    rows: list[list[str]]
    align: str = ""  # one "l" or "r" per column


@dataclass
class Section:
    heading: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # (kind, content)

    def p(self, text: str) -> Section:
        self.blocks.append(("p", text))
        return self

    def ul(self, items: list[str]) -> Section:
        if items:
            self.blocks.append(("ul", items))
        return self

    def table(self, table: Table) -> Section:
        if table.rows:
            self.blocks.append(("table", table))
        return self


@dataclass
class Report:
    """The content of a scenario report (:func:`build_report`), before rendering.

    Parameters
    ----------
    lang : str
        The language.
    title : str
        The title.
    headline : list of str
        The key figures, first thing on the page.
    sections : list of Section
        The sections (paragraphs, lists, tables).
    svg : str
        An inline SVG map of the perimeter (HTML only).

    Examples
    --------
    >>> Report("en", "Josaphat", ["1,600 dwellings"], []).svg
    ''
    """

    lang: str
    title: str
    headline: list[str]
    sections: list[Section]
    svg: str = ""


def _cat_label(cat: str, lang: str) -> str:
    return categories().get(cat, {}).get("label", {}).get(lang, cat)


def _fn_label(fn: str, lang: str) -> str:
    return (
        read_catalog_file("functions.yaml")
        .get("functions", {})
        .get(fn, {})
        .get(lang, fn)
    )


def _title(scn: Scenario, lang: str) -> str:
    return scn.title.get(lang) or scn.title.get("fr") or scn.pole


def _indicator_rows(
    res: ScenarioResult, indicators: list[str], areas: tuple[str, ...], lang: str
) -> list[list[str]]:
    """(label, area, unit, before, after, change) of each indicator and area."""
    t = res.table.set_index(["indicator", "area"])
    flags = {
        side: dict(zip(AREAS, getattr(res, side).areas["flags"].fillna(""), strict=False))
        for side in ("before", "after")
    }  # fmt: skip
    rows = []
    for col in indicators:
        label, _ = column_label(col, lang)
        unit = _unit_of(col)
        for area in areas:
            if (col, area) not in t.index:
                continue
            r = cast(pd.Series, t.loc[(col, area)])
            nb = _na_reason(col, flags["before"].get(area, ""), lang)
            na = _na_reason(col, flags["after"].get(area, ""), lang)
            rows.append(
                [
                    label,
                    _t(f"report_area_{area}", lang),
                    display_unit(unit, lang),
                    format_value(r["before"], unit, lang, na=nb),
                    format_value(r["after"], unit, lang, na=na),
                    format_value(
                        r["change"], unit, lang, change=True, na=_t("report_na", lang)
                    ),
                ]
            )
    return rows


def build_report(res: ScenarioResult, lang: str = "en") -> Report:
    """The report's content, once: rendered by :func:`report_markdown` and :func:`report_html`.

    Parameters
    ----------
    res : ScenarioResult
        A scenario run (:func:`bxlplan.scenarios.run_scenario`).
    lang : {"fr", "nl", "en"}
        The language of the report.

    Returns
    -------
    Report
        Title, headline figures and sections.

    Raises
    ------
    ConfigError
        When ``lang`` is not ``fr``, ``nl`` or ``en``.

    Examples
    --------
    Needs a scenario run (:func:`bxlplan.scenario.run`, minutes on the pack), so it is
    not run here:

    >>> import bxlplan
    >>> res = bxlplan.scenario.run("scenarios/josaphat.yaml")  # doctest: +SKIP
    >>> build_report(res, "en").title  # doctest: +SKIP
    'Scenario josaphat: Josaphat (ancienne gare de formation)'
    """
    check_lang(lang)
    scn = res.scenario
    sh = res.social_housing
    n = lambda v, d=0: _num(v, d, lang)  # noqa: E731
    pct = lambda v: "n/a" if not np.isfinite(v) else f"{_num(100 * v, 0, lang)} %"  # noqa: E731
    cat_lab = lambda c: _cat_label(c, lang)  # noqa: E731
    title = _t("report_scenario", lang, name=scn.name, title=_title(scn, lang))

    # --- demand: known balance, or unknown capacity
    demand = res.demand
    known = (demand["status"] != "unknown").to_numpy()
    no_data = pd.to_numeric(
        demand["existing_facilities_within_reach"], errors="coerce"
    ).isna()
    checks = check_figures(scn)
    stale = [c for c in checks if not c.ok]

    # --- headline
    t = res.table.set_index(["indicator", "area"])

    def val(col: str, area: str, side: str) -> str:
        return (
            format_value(t.loc[(col, area), side], "/100", lang)
            if (col, area) in t.index
            else _t("report_na", lang)
        )

    programme = _t(
        "report_headline_programme", lang, dwellings=n(sum(scn.dwellings.values())),
        ppd=_num(scn.persons_per_dwelling, 2, lang).rstrip("0").rstrip(",."),
        residents=n(scn.new_residents),
    )  # fmt: skip
    if scn.phasing_year:
        programme += f"; {_t('report_delivery', lang, year=scn.phasing_year)}"
    headline = [
        programme,
        _t(
            "report_headline_score", lang,
            pb=val("score_overall", "pole", "before"), pa=val("score_overall", "pole", "after"),
            sb=val("score_overall", "surroundings", "before"), sa=val("score_overall", "surroundings", "after"),
        ),
        _t("report_headline_social", lang, share=pct(sh["programme_social_share"]), target=pct(sh["target"])),
    ]  # fmt: skip
    if len(demand):
        items = ", ".join(
            f"{cat_lab(d.category)} {n(d.places_needed)}" for d in demand.itertuples()
        )
        line = _t("report_headline_demand", lang, items=items)
        unknown = [cat_lab(c) for c in demand.loc[~known, "category"]]
        if unknown:
            line += "; " + _t("report_headline_unknown", lang, items=", ".join(unknown))
        headline.append(line)
    if stale:
        headline.append(_t("report_headline_stale", lang, n=len(stale)))

    sections: list[Section] = []
    # --- pole and surroundings
    kind = str(scn.perimeter.get("kind", "given"))
    try:
        kind_label = _t(f"report_kind_{kind}", lang)
    except KeyError:
        kind_label = kind
    sections.append(
        Section(_t("report_areas", lang))
        .p(_t("report_pole_is", lang, pole=scn.pole, kind=kind_label, note=scn.perimeter.get("note", "")).rstrip(": "))
        .p(_t("report_surroundings_are", lang, m=n(scn.surroundings_m)))
    )  # fmt: skip

    # --- programme
    prog = Section(_t("report_programme", lang))
    tenure_cells = [n(scn.dwellings[k]) for k in TENURES]
    prog.table(
        Table(
            [_t("report_dwellings", lang)] + [_t(f"report_tenure_{k}", lang) for k in TENURES] + [_t("report_total", lang)],
            [[_t("report_dwellings", lang)] + tenure_cells + [n(sum(scn.dwellings.values()))]],
            "l" + "r" * (len(TENURES) + 1),
        )
    )  # fmt: skip
    fac_rows = []
    for f in scn.facilities:
        where = (
            _t("report_inside", lang)
            if f.location == "inside"
            else f"x {n(f.location[0])}, y {n(f.location[1])}"
        )
        cap = (
            _t("report_places", lang, n=n(f.capacity))
            if f.capacity
            else _t("report_capacity_not_given", lang)
        )
        fac_rows.append(
            [
                f.name or f"{cat_lab(f.category)} ({scn.pole})",
                cat_lab(f.category),
                cap,
                where,
            ]
        )
    prog.p(
        f"{_t('report_new_facilities', lang)}:"
        if fac_rows
        else f"{_t('report_new_facilities', lang)}: {_t('report_none', lang)}"
    )
    prog.table(
        Table(
            [
                ui("name", lang),
                _t("report_category", lang),
                _t("report_new_places", lang),
                "",
            ],
            fac_rows,
            "llrl",
        )
    )
    other = [_t("report_jobs", lang, n=n(sum(scn.jobs.values())))]
    if scn.floor_area_m2:
        other.append(
            _t(
                "report_floor_area",
                lang,
                items=", ".join(
                    f"{_fn_label(k, lang)} {n(v)} m²"
                    for k, v in scn.floor_area_m2.items()
                ),
            )
        )
    other.append(
        _t("report_land_use", lang, items=", ".join(f"{_fn_label(k, lang)} {pct(v)}" for k, v in scn.land_use.items()))
        if scn.land_use else _t("report_land_use", lang, items=_t("report_unchanged", lang))
    )  # fmt: skip
    sections.append(prog.ul(other))

    # --- map
    sections.append(
        Section(_t("report_map", lang)).p(
            _t("report_map_note", lang, m=n(scn.surroundings_m))
        )
    )

    # --- what changes
    head = [
        _t(k, lang)
        for k in (
            "report_indicator",
            "report_area",
            "report_unit",
            "report_before",
            "report_after",
            "report_change",
        )
    ]
    changes = Section(_t("report_what_changes", lang)).table(
        Table(head, _indicator_rows(res, KEY_ROWS, AREAS, lang), "lllrrr")
    )
    sections.append(changes)
    site_cols = [
        c
        for c in res.table.loc[res.table["area"] == "pole", "indicator"]
        if c.startswith("site_")
    ]
    if site_cols:
        rows = [
            [r[0], r[2], r[3], r[4], r[5]]
            for r in _indicator_rows(res, site_cols, ("pole",), lang)
        ]
        sections.append(
            Section(_t("report_site", lang)).p(_t("report_site_note", lang))
            .table(Table([head[0], head[2], head[3], head[4], head[5]], rows, "llrrr"))
        )  # fmt: skip
    tab = res.table
    moved = tab[
        tab["indicator"].str.startswith("access_") & tab["indicator"].str.endswith("m_share")
        & (tab["change"].abs() > ACCESS_CHANGE_MIN)
    ]  # fmt: skip
    pts = n(100 * ACCESS_CHANGE_MIN)
    access = Section(_t("report_access_changed", lang, pts=pts))
    if len(moved):
        rows = []
        for area in AREAS:
            cols = list(moved.loc[moved["area"] == area, "indicator"])
            rows += _indicator_rows(res, cols, (area,), lang)
        access.table(Table(head, rows, "lllrrr"))
    else:
        access.p(_t("report_access_none_changed", lang, pts=pts))
    sections.append(access)

    # --- social housing
    social = Section(_t("report_social_housing", lang)).p(
        _t("report_social_text", lang, share=pct(sh["programme_social_share"]), target=pct(sh["target"]))
        + " "
        + (
            _t("report_social_gap", lang, n=n(math.ceil(sh["gap_dwellings_to_target"] - 1e-9)))
            if sh["gap_dwellings_to_target"] > 0 else _t("report_social_met", lang)
        )
    ).p(_t("report_social_stock", lang))  # fmt: skip
    sections.append(social)

    # --- demand
    rows = []
    demand_rows: Iterable[Any] = demand.itertuples()
    for d, ok, nd in zip(demand_rows, known, no_data, strict=True):
        if nd:
            existing = capacity = _t("report_na_no_data", lang)
            balance = _t("report_unknown_no_data", lang)
        elif ok:
            existing, capacity = (
                n(d.existing_facilities_within_reach),
                _t(
                    "report_places",
                    lang,
                    n=n(d.capacity_within_reach_known - d.new_places_in_programme),
                ),
            )
            word = _t(
                "report_surplus" if d.balance_places >= 0 else "report_shortfall", lang
            )
            balance = f"{_num(d.balance_places, 0, lang, True)} ({word})"
        else:
            existing = n(d.existing_facilities_within_reach)
            capacity = balance = _t("report_unknown_capacity", lang)
        rows.append(
            [
                cat_lab(d.category),
                str(d.ages),
                n(d.new_children),
                n(d.places_needed),
                n(d.new_places_in_programme),
                existing,
                capacity,
                balance,
            ]
        )
    dem_head = [_t(k, lang) for k in ("report_category", "report_ages", "report_new_children", "report_places_needed",
                                      "report_new_places", "report_existing_within_reach", "report_existing_capacity", "report_balance")]  # fmt: skip
    sections.append(
        Section(_t("report_demand", lang))
        .table(Table(dem_head, rows, "llrrrrll"))
        .p(_t("report_demand_note", lang))
    )

    # --- assumptions, figures, sources, checks
    colon = " :" if lang == "fr" else ":"
    assume = Section(_t("report_assumptions", lang))
    if scn.assumptions or scn.used_defaults:
        assume.p(_t("report_file_assumptions", lang) + colon).ul(
            list(scn.assumptions) + list(scn.used_defaults)
        )
    assume.p(_t("report_model_assumptions", lang) + colon).ul(
        [
            _t(k, lang)
            for k in (
                "report_model_tenure",
                "report_model_demand",
                "report_model_jobs",
                "report_model_floor",
            )
        ]
    )
    if scn.facts:
        assume.p(_t("report_published_figures", lang) + colon).ul(
            [
                f"{f['figure']} ({f.get('source', '')})"
                if isinstance(f, dict)
                else str(f)
                for f in scn.facts
            ]
        )
    if scn.sources:
        assume.p(ui("sources", lang) + colon).ul(list(scn.sources))
    sections.append(assume)
    check = Section(_t("report_checks", lang))
    if checks:
        check.p(_t("report_checks_note", lang)).table(
            Table(
                [
                    _t(k, lang)
                    for k in (
                        "report_check_stated",
                        "report_check_programme",
                        "report_check_status",
                    )
                ],
                [
                    [
                        c.stated,
                        c.programme,
                        _t("report_check_ok" if c.ok else "report_check_stale", lang),
                    ]
                    for c in checks
                ],
                "lll",
            )
        )
    else:
        check.p(_t("report_checks_none", lang))
    sections.append(check)
    return Report(lang, title, headline, sections, svg=map_svg(res))


# ---------------------------------------------------------------- map


def _path(geom: shapely.Geometry, tx) -> str:
    parts = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.is_empty or poly.geom_type != "Polygon":
            continue
        for ring in [poly.exterior, *poly.interiors]:
            pts = [tx(x, y) for x, y in ring.coords]
            parts.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + " Z")
    return " ".join(parts)


def map_svg(res: ScenarioResult, width: int = 640) -> str:
    """A static map as inline SVG: the surroundings (dashed), the pole's perimeter,
    the new facilities as dots with their names as ``<title>``, and a scale bar."""
    pole = res.areas.geometry.iloc[0]
    sur = res.areas.geometry.iloc[1]
    xmin, ymin, xmax, ymax = sur.bounds
    pad = 0.04 * max(xmax - xmin, ymax - ymin)
    xmin, ymin, xmax, ymax = xmin - pad, ymin - pad, xmax + pad, ymax + pad
    s = width / (xmax - xmin)
    height = round((ymax - ymin) * s)

    def tx(x: float, y: float) -> tuple[float, float]:
        return (x - xmin) * s, (ymax - y) * s

    tol = 0.5 / s
    bar = next(
        b
        for b in (50, 100, 200, 500, 1000, 2000, 5000, 10000, 1e9)
        if b * s >= width / 6
    )
    bx, by = 12, height - 14
    out = [
        f'<svg viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" class="map">',
        f'<rect width="{width}" height="{height}" fill="#f7f7f4"/>',
        f'<path d="{_path(sur.simplify(tol), tx)}" fill="#dfe9f3" stroke="#5b7fa6" '
        'stroke-dasharray="6 4" stroke-width="1.5" fill-rule="evenodd"/>',
        f'<path d="{_path(pole.simplify(tol), tx)}" fill="#f4c98b" stroke="#b35806" '
        'stroke-width="2" fill-rule="evenodd"/>',
    ]
    for row in res.new_facilities.itertuples():
        x, y = tx(row.geometry.x, row.geometry.y)
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#1b7837" stroke="#fff" '
            f'stroke-width="1.5"><title>{html.escape(str(row.name or row.category))}</title></circle>'
        )
    out += [
        f'<line x1="{bx}" y1="{by}" x2="{bx + bar * s:.1f}" y2="{by}" stroke="#333" stroke-width="3"/>',
        f'<text x="{bx}" y="{by - 6}" font-size="12" fill="#333">{bar:,.0f} m</text>',
        "</svg>",
    ]  # fmt: skip
    return "\n".join(out)


# ---------------------------------------------------------------- rendering


def _md_cell(text: str) -> str:
    return (
        str(text)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def _md_text(text: str) -> str:
    return str(text).replace("\r", " ").replace("\n", " ")


def report_markdown(res: ScenarioResult, lang: str = "en") -> str:
    """The report as Markdown (the same content as :func:`report_html`, no map).

    Parameters
    ----------
    res : ScenarioResult
        A scenario run (:func:`bxlplan.scenarios.run_scenario`).
    lang : {"fr", "nl", "en"}
        The language of the report.

    Returns
    -------
    str
        The Markdown text.

    Examples
    --------
    Needs a scenario run (:func:`bxlplan.scenario.run`, minutes on the pack), so it is
    not run here:

    >>> import bxlplan
    >>> res = bxlplan.scenario.run("scenarios/josaphat.yaml")  # doctest: +SKIP
    >>> report_markdown(res, "fr").startswith("# ")  # doctest: +SKIP
    True
    """
    rep = build_report(res, lang)
    lines = [f"# {_md_text(rep.title)}", "", f"## {_t('report_summary', lang)}", ""]
    lines += [f"- {_md_text(h)}" for h in rep.headline]
    for sec in rep.sections:
        lines += ["", f"## {_md_text(sec.heading)}"]
        for kind, content in sec.blocks:
            lines.append("")
            if kind == "p":
                lines.append(_md_text(content))
            elif kind == "ul":
                lines += [f"- {_md_text(i)}" for i in content]
            else:
                align = content.align or "l" * len(content.header)
                lines.append(
                    "| " + " | ".join(_md_cell(h) for h in content.header) + " |"
                )
                lines.append(
                    "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
                )
                lines += [
                    "| " + " | ".join(_md_cell(c) for c in r) + " |"
                    for r in content.rows
                ]
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:60rem;
margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.5rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #ccc;padding-bottom:.2rem}
.summary{background:#f3f6f9;border-left:4px solid #5b7fa6;padding:.6rem 1rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;vertical-align:top}
th{background:#f0f0f0;text-align:left}td.r{text-align:right;white-space:nowrap}
.map{max-width:100%;height:auto;border:1px solid #ccc}
"""


def report_html(res: ScenarioResult, lang: str = "en") -> str:
    """The report as one self-contained HTML page.

    Inline CSS, an inline SVG map, no script and no external resource; every data
    string is escaped.

    Parameters
    ----------
    res : ScenarioResult
        A scenario run (:func:`bxlplan.scenarios.run_scenario`).
    lang : {"fr", "nl", "en"}
        The language of the report.

    Returns
    -------
    str
        The HTML page.

    Examples
    --------
    Needs a scenario run (:func:`bxlplan.scenario.run`, minutes on the pack), so it is
    not run here:

    >>> import bxlplan
    >>> res = bxlplan.scenario.run("scenarios/josaphat.yaml")  # doctest: +SKIP
    >>> "<script" in report_html(res, "nl")  # doctest: +SKIP
    False
    """
    rep = build_report(res, lang)
    e = html.escape
    body = [
        f"<h1>{e(rep.title)}</h1>",
        f"<h2>{e(_t('report_summary', lang))}</h2>",
        '<ul class="summary">',
    ]
    body += [f"<li>{e(h)}</li>" for h in rep.headline]
    body.append("</ul>")
    for sec in rep.sections:
        body.append(f"<h2>{e(sec.heading)}</h2>")
        for kind, content in sec.blocks:
            if kind == "p":
                body.append(f"<p>{e(content)}</p>")
            elif kind == "ul":
                body.append(
                    "<ul>" + "".join(f"<li>{e(i)}</li>" for i in content) + "</ul>"
                )
            else:
                align = content.align or "l" * len(content.header)
                body.append(
                    "<table><thead><tr>"
                    + "".join(f"<th>{e(h)}</th>" for h in content.header)
                    + "</tr></thead><tbody>"
                )
                for r in content.rows:
                    cells = "".join(
                        f'<td class="r">{e(c)}</td>' if a == "r" else f"<td>{e(c)}</td>"
                        for c, a in zip(r, align, strict=False)
                    )
                    body.append(f"<tr>{cells}</tr>")
                body.append("</tbody></table>")
        if sec.heading == _t("report_map", lang):
            body.append(rep.svg)
    return (
        f'<!DOCTYPE html>\n<html lang="{e(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(rep.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
