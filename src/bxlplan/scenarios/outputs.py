"""Scenario outputs: GeoPackage, tables, a before/after map and a short report."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from .._io import atomic_write, check_target
from ..exports.gis import write_gpkg
from ..exports.labels import column_label
from ..exports.maps import make_map, save_map
from ..loading.areas import make_grid
from ..scoring.assess import assess
from .run import ScenarioResult, perimeter_of

__all__ = ["report_markdown", "write_comparison", "write_scenario"]

KEY_ROWS = [
    "score_overall", "score_diversity", "score_social_mix", "score_services", "population_est",
    "mix_landuse_entropy", "mix_activity_hill_q1_mean", "social_income_median_eur",
    "social_income_diversity_entropy",
]  # fmt: skip


def _cells(res: ScenarioResult) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """100 m cells of the surroundings, assessed before and after."""
    sur = res.areas.iloc[[1]]
    grid = make_grid(sur, float(res.before.context.config.get("origins_cell_m", 100)))
    return assess(grid, res.before.context).areas, assess(grid, res.context_after).areas


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
    changed = res.table[
        (res.table["indicator"].str.endswith("m_share"))
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
) -> list[Path]:
    """Write ``<out>/<name>/``: scenario.gpkg, table.csv, demand.csv, report.md, map.html."""
    folder = Path(out) / res.scenario.name
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("scenario.gpkg", "table.csv", "demand.csv", "report.md", "map.html"):
        check_target(folder / name, overwrite)
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
    written = [write_gpkg(layers, folder / "scenario.gpkg", meta, overwrite=overwrite)]
    atomic_write(folder / "table.csv", res.table.to_csv(index=False).encode())
    atomic_write(folder / "demand.csv", res.demand.to_csv(index=False).encode())
    atomic_write(folder / "report.md", report_markdown(res).encode())
    atomic_write(
        folder / "provenance.json", json.dumps(meta, default=str, indent=2).encode()
    )
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
    written += [folder / "table.csv", folder / "demand.csv", folder / "report.md"]
    written.append(save_map(m, folder / "map.html", offline=offline, overwrite=True))
    return written


def write_comparison(
    table: pd.DataFrame,
    results: list[ScenarioResult],
    out: str | Path,
    *,
    overwrite: bool = False,
    offline: bool = True,
    lang: str = "fr",
) -> list[Path]:
    """Variants side by side: comparison.csv and one map of the poles' score changes."""
    out = Path(out)
    check_target(out / "comparison.csv", overwrite)
    atomic_write(out / "comparison.csv", table.to_csv().encode())
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
    path = save_map(
        m, out / "comparison_map.html", offline=offline, overwrite=overwrite
    )
    return [out / "comparison.csv", path]
