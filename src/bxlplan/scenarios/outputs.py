"""Scenario outputs: GeoPackage, tables, a before/after map and a short report.

Each scenario folder (``<out>/<name>/``) and each comparison is written as one set
(``bxlplan._io.output_set``): all files or none, never a mix of two runs. Scenario
names are plain slugs; the writer refuses any other name so that it can never write
outside ``out``. CSV text cells are neutralised against formula injection
(:func:`bxlplan.exports.gis.csv_safe`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from .._io import atomic_write, check_output_set, output_set
from ..errors import ConfigError
from ..exports.gis import _stamped, csv_bytes, write_gpkg
from ..exports.labels import column_label
from ..exports.maps import make_map, save_map
from ..loading.areas import make_grid
from ..scoring.assess import Context, assess
from .run import ScenarioResult, perimeter_of

__all__ = [
    "COMPARISON_FILES",
    "SCENARIO_FILES",
    "report_markdown",
    "scenario_folder",
    "write_comparison",
    "write_scenario",
]

SCENARIO_FILES = (
    "scenario.gpkg", "table.csv", "demand.csv", "report.md", "provenance.json", "map.html",
)  # fmt: skip
COMPARISON_FILES = ("comparison.csv", "comparison_map.html")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


def scenario_folder(out: str | Path, name: str) -> Path:
    """The folder of scenario ``name`` under ``out``; the name must be a plain slug.

    Raises
    ------
    ConfigError
        When ``name`` is not letters, digits, ``_`` and ``-`` (a path, ``..``, a
        hidden name...): it would write outside ``out``.
    """
    if not isinstance(name, str) or not _SLUG.fullmatch(name):
        raise ConfigError(
            f"scenario name {name!r} is not a plain name: use letters, digits, '_' "
            "and '-' only (at most 100, starting with a letter or digit) in the "
            "scenario file's 'name' key; it names the output folder under --out"
        )
    return Path(out) / name


KEY_ROWS = [
    "score_overall", "score_diversity", "score_social_mix", "score_services", "population_est",
    "mix_landuse_entropy", "mix_activity_hill_q1_mean", "social_income_median_popmean_eur",
    "social_income_class_mix_entropy",
]  # fmt: skip
# The map's 100 m cells hold a few hundred residents at most: the areas' population
# floor (200, IBSA's publication threshold) would grey out most of them. A cell is
# scored when it has at least one estimated resident; the report says so.
CELL_POPULATION_FLOOR = 1.0


def _cells(res: ScenarioResult) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """100 m cells of the surroundings, assessed before and after."""
    sur = res.areas.iloc[[1]]
    grid = make_grid(sur, float(res.before.context.config.get("origins_cell_m", 100)))

    def cells(ctx: Context) -> gpd.GeoDataFrame:
        config = {**ctx.config, "population_floor": CELL_POPULATION_FLOOR}
        return assess(grid, replace(ctx, config=config)).areas

    return cells(res.before.context), cells(res.context_after)


def _fmt(v: float, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    if unit == "%":
        return f"{100 * v:.1f} %"
    return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"


def report_markdown(res: ScenarioResult, lang: str = "en") -> str:
    """A short report a planner can paste into a note."""
    scn = res.scenario
    sh = res.social_housing
    lines = [
        f"# Scenario {scn.name}: {scn.title.get(lang, scn.pole)}",
        "",
        f"- Pole: **{scn.pole}**; perimeter: {scn.perimeter.get('kind', 'given')} "
        f"- {scn.perimeter.get('note', '')}",
        f"- Programme: {int(sh['new_dwellings']):,} dwellings "
        f"({int(scn.dwellings['social']):,} social, {int(scn.dwellings['moderate']):,} moderate, "
        f"{int(scn.dwellings['market']):,} market), {scn.persons_per_dwelling:g} persons per dwelling "
        f"= {scn.new_residents:,.0f} new residents"
        + (f"; delivery {scn.phasing_year}" if scn.phasing_year else ""),
        "- New facilities: "
        + (
            ", ".join(
                f"{f.category} ({f.capacity:g} places)" if f.capacity else f.category
                for f in scn.facilities
            )
            or "none"
        ),
        f"- Jobs: {sum(scn.jobs.values()):,.0f} (reported, not modelled); land use: "
        + (
            ", ".join(f"{k} {v:.0%}" for k, v in scn.land_use.items())
            if scn.land_use
            else "unchanged"
        ),
        "",
        "## What changes",
        "",
        "| indicator | area | before | after | change |",
        "|---|---|---:|---:|---:|",
    ]
    t = res.table.set_index(["indicator", "area"])
    for col in KEY_ROWS:
        label, unit = column_label(col, lang)
        for area in ("pole", "surroundings"):
            if (col, area) in t.index:
                r = t.loc[(col, area)]
                lines.append(
                    f"| {label} | {area} | {_fmt(r.before, unit)} | {_fmt(r.after, unit)} | {_fmt(r.change, unit)} |"
                )
    site = res.table[
        res.table["indicator"].str.startswith("site_") & (res.table["area"] == "pole")
    ]
    if len(site):
        lines += [
            "",
            "## The site itself: share of the pole's land within walking distance",
            "",
            "Known even where nobody lives yet (the planner's first question for a "
            "pole): the share of the pole's residential land (all its land where it has "
            "none) whose 100 m cell reaches the category within its threshold.",
            "",
            "| category | today | after | change |",
            "|---|---:|---:|---:|",
        ]
        for r in site.itertuples():
            label, _ = column_label(r.indicator, lang)
            lines.append(
                f"| {label} | {_fmt(r.before, '%')} | {_fmt(r.after, '%')} "
                f"| {_fmt(r.change, '%')} |"
            )
    changed = res.table[
        (res.table["indicator"].str.endswith("m_share"))
        & res.table["indicator"].str.startswith("access_")
        & (res.table["change"].abs() > 0.005)
    ]
    if len(changed):
        lines += [
            "",
            "Share of residents within walking distance that changed by more than 0.5 point:",
            "",
        ]
        for r in changed.itertuples():
            label, _ = column_label(r.indicator, lang)
            lines.append(
                f"- {label} ({r.area}): {_fmt(r.before, '%')} -> {_fmt(r.after, '%')}"
            )
    lines += [
        "",
        "## Social housing",
        "",
        f"The programme has {_fmt(sh['programme_social_share'], '%')} social dwellings against the "
        f"{sh['target']:.0%} target: "
        + (
            f"{sh['gap_dwellings_to_target']:,.0f} more social dwellings would reach it."
            if sh["gap_dwellings_to_target"] > 0
            else "the target is met."
        ),
        f"Existing stock: {sh['existing_stock']}.",
        "",
        "## Facility demand of the new residents",
        "",
        "| category | ages | children | places needed | new places | existing facilities within reach | balance | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for d in res.demand.itertuples():
        lines.append(
            f"| {d.category} | {d.ages} | {d.new_children:,.0f} | {d.places_needed:,.0f} | {d.new_places_in_programme:,.0f} "
            f"| {d.existing_facilities_within_reach} | {d.balance_places:+,.0f} ({d.status}) | {d.note} |"
        )
    lines += ["", "## Assumptions that drive these results", ""]
    lines += [f"- {a}" for a in scn.assumptions + scn.used_defaults]
    lines += [
        "- New households of each tenure join an income quintile of today's residents "
        "(social: lowest, moderate: middle, market: fourth; layers/scenario_defaults.yaml).",
        "- Demand ratios (age shares, places per child) from layers/scenario_defaults.yaml.",
        "- Jobs and floor areas are not modelled; the land-use mix uses the shares given.",
        "- Areas with fewer than the population floor of layers/scoring.yaml are not "
        "scored (n/a); the map's 100 m cells are scored from one estimated resident.",
    ]
    if scn.facts:
        lines += ["", "## Published figures", ""]
        for f in scn.facts:
            lines.append(
                f"- {f['figure']} ({f['source']})" if isinstance(f, dict) else f"- {f}"
            )
    lines += ["", "Sources: " + "; ".join(scn.sources) if scn.sources else "", ""]
    return "\n".join(lines)


def write_scenario(
    res: ScenarioResult,
    out: str | Path,
    *,
    overwrite: bool = False,
    offline: bool = True,
    lang: str = "fr",
    run_time: dt.datetime | None = None,
) -> list[Path]:
    """Write ``<out>/<name>/``: scenario.gpkg, table.csv, demand.csv, report.md,
    provenance.json and map.html, as one set (all files or none).

    Raises
    ------
    ConfigError
        When the scenario name is not a plain slug (:func:`scenario_folder`).
    DataError
        When the folder cannot be written or holds these files and ``overwrite`` is
        False (checked before the computation).
    """
    folder = scenario_folder(out, res.scenario.name)
    check_output_set(folder, SCENARIO_FILES, overwrite)  # before the computation
    before_cells, after_cells = _cells(res)
    meta = res.areas.attrs.get("bxlplan", {})
    layers = {
        "areas": res.areas,
        "cells_before": before_cells,
        "cells_after": after_cells,
    }
    if len(res.new_facilities):
        layers["new_facilities"] = res.new_facilities[
            ["facility_id", "category", "name", "capacity", "geometry"]
        ]
    perimeter = gpd.GeoDataFrame(
        {"name": [res.scenario.pole]},
        geometry=[perimeter_of(res.scenario, res.before.context)],
        crs=res.areas.crs,
    )
    m = make_map(
        after_cells,
        "score_overall",
        before=before_cells,
        perimeters={res.scenario.pole: perimeter},
        lang=lang,
        offline=offline,
    )
    # ``out`` is the scenarios' root: its lock keeps a comparison from swapping it
    # while this scenario is written (bxlplan._io.output_set)
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / ".bxlplan.lock").touch()
    with output_set(
        folder, SCENARIO_FILES, overwrite=overwrite, run_time=run_time
    ) as stage:
        tmp, when = stage.path, stage.run_time
        write_gpkg(layers, tmp / "scenario.gpkg", meta, run_time=when)
        atomic_write(tmp / "table.csv", csv_bytes(res.table))
        atomic_write(tmp / "demand.csv", csv_bytes(res.demand))
        atomic_write(tmp / "report.md", report_markdown(res).encode())
        atomic_write(
            tmp / "provenance.json",
            json.dumps(_stamped(meta, when), default=str, indent=2).encode(),
        )
        save_map(m, tmp / "map.html", offline=offline, overwrite=True)
    names = ("scenario.gpkg", "table.csv", "demand.csv", "report.md", "map.html")
    return [folder / n for n in names]


def write_comparison(
    table: pd.DataFrame,
    results: list[ScenarioResult],
    out: str | Path,
    *,
    overwrite: bool = False,
    offline: bool = True,
    lang: str = "fr",
) -> list[Path]:
    """Variants side by side: comparison.csv and one map of the poles' score changes,
    written together into ``out`` (the scenario folders in it are kept).

    Raises
    ------
    DataError
        When ``out`` cannot be written or holds these files and ``overwrite`` is False.
    """
    out = Path(out)
    check_output_set(out, COMPARISON_FILES, overwrite)
    poles = pd.concat(
        [
            r.areas.iloc[[0]].assign(
                area_id=r.scenario.name,
                name_fr=r.scenario.title.get("fr", r.scenario.name),
                name_nl=r.scenario.title.get("nl", r.scenario.name),
            )
            for r in results
        ],
        ignore_index=True,
    )
    poles = gpd.GeoDataFrame(poles, geometry="geometry", crs=results[0].areas.crs)
    poles["score_overall"] = poles["score_overall_after"]
    # overlapping variants of one pole: offset nothing, the layer control lists each
    perimeters = {r.scenario.name: r.areas.iloc[[1]] for r in results}
    m = make_map(
        poles, "score_overall_change", perimeters=perimeters, lang=lang, offline=offline
    )
    with output_set(out, COMPARISON_FILES, overwrite=overwrite) as stage:
        atomic_write(stage.path / "comparison.csv", csv_bytes(table, index=True))
        save_map(m, stage.path / "comparison_map.html", offline=offline, overwrite=True)
    return [out / n for n in COMPARISON_FILES]
