"""Scenario outputs: GeoPackage, tables, a before/after map and the planner's report
(``report.md`` and a self-contained ``report.html``, :mod:`bxlplan.scenarios.report`).

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
import pandas as pd

from .._io import atomic_write, check_output_set, output_set
from ..errors import ConfigError
from ..exports.gis import _stamped, csv_bytes, write_gpkg
from ..exports.maps import make_map, save_map
from ..loading.areas import make_grid
from ..scoring.assess import Context, assess
from .report import labelled_table, report_html, report_markdown
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
    "scenario.gpkg", "table.csv", "demand.csv", "report.md", "report.html", "provenance.json",
    "map.html",
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


def write_scenario(
    res: ScenarioResult,
    out: str | Path,
    *,
    overwrite: bool = False,
    offline: bool = True,
    lang: str = "fr",
    run_time: dt.datetime | None = None,
) -> list[Path]:
    """Write ``<out>/<name>/``: scenario.gpkg, table.csv (with label and unit in
    ``lang``, rounded), demand.csv, report.md and report.html (in ``lang``),
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
        atomic_write(tmp / "table.csv", csv_bytes(labelled_table(res.table, lang)))
        atomic_write(tmp / "demand.csv", csv_bytes(res.demand))
        atomic_write(tmp / "report.md", report_markdown(res, lang).encode())
        atomic_write(tmp / "report.html", report_html(res, lang).encode())
        atomic_write(
            tmp / "provenance.json",
            json.dumps(_stamped(meta, when), default=str, indent=2).encode(),
        )
        save_map(m, tmp / "map.html", offline=offline, overwrite=True)
    names = (
        "scenario.gpkg",
        "table.csv",
        "demand.csv",
        "report.md",
        "report.html",
        "map.html",
    )
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
