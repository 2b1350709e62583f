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
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from .._io import atomic_write, check_output_set, output_set
from ..errors import ConfigError, DataError
from ..exports.change import (
    SCORES,
    cell_changes,
    change_map,
    comparison_map,
    label_cells,
)
from ..exports.gis import _stamped, csv_bytes, write_gpkg
from ..exports.maps import save_map
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

    Parameters
    ----------
    out
        The scenarios' root folder (``--out``).
    name
        The scenario's ``name`` key.

    Returns
    -------
    pathlib.Path
        ``out / name``.

    Raises
    ------
    ConfigError
        When ``name`` is not letters, digits, ``_`` and ``-`` (a path, ``..``, a
        hidden name...): it would write outside ``out``.

    Examples
    --------
    >>> scenario_folder("out", "josaphat").as_posix()
    'out/josaphat'
    >>> scenario_folder("out", "../etc")
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: scenario name '../etc' is not a plain name: ...
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


def _assess_cells(grid: gpd.GeoDataFrame, ctx: Context) -> gpd.GeoDataFrame:
    """The cells assessed in ``ctx`` with the cells' population floor."""
    config = {**ctx.config, "population_floor": CELL_POPULATION_FLOOR}
    return assess(grid, replace(ctx, config=config)).areas


def _labelled(cells: gpd.GeoDataFrame, ctx: Context, pole: str) -> gpd.GeoDataFrame:
    """Cells named ``<pole> – cell <n>, <commune> / <neighbourhood>``."""
    return label_cells(cells, ctx.neighbourhoods, ctx.communes, prefix=pole)


def _cells(res: ScenarioResult) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """100 m cells of the surroundings, assessed before and after, with readable
    names (the pole, the cell's number, its commune and neighbourhood)."""
    sur = res.areas.iloc[[1]]
    ctx = res.before.context
    grid = make_grid(sur, float(ctx.config.get("origins_cell_m", 100)))
    pole = res.scenario.pole
    return (
        _labelled(_assess_cells(grid, ctx), ctx, pole),
        _labelled(_assess_cells(grid, res.context_after), ctx, pole),
    )


def _change_layer(
    before: gpd.GeoDataFrame, after: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """The ``change`` layer of scenario.gpkg: each cell's labels and, for every
    numeric column, ``<column>_change`` (after minus before; before and after are the
    ``cells_before`` and ``cells_after`` layers)."""
    change = cell_changes(before, after)
    drop = [c for c in change.columns if c.endswith(("_before", "_after"))]
    return change.drop(columns=drop)


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

    scenario.gpkg holds the pole and its surroundings (``areas``), the 100 m cells of
    the surroundings before and after (``cells_before``, ``cells_after``), their
    change (``change``: ``<column>_change`` = after minus before) and the
    programme's facilities (``new_facilities``). Cells are named after the pole,
    their number and the commune and neighbourhood that contain them. map.html shows
    the overall score before and after, each score's change (diverging classes
    centred on 0, :mod:`bxlplan.exports.change`), the new facilities with their
    names and capacities, and the perimeter.

    Parameters
    ----------
    res
        The scenario's result (:func:`bxlplan.scenarios.run_scenario`).
    out
        The scenarios' root folder: the files go to ``<out>/<name>/``.
    overwrite
        Replace the files of an earlier run.
    offline
        A self-contained map.html (no tile layer, assets inlined).
    lang
        ``fr``, ``nl`` or ``en``: the report, the table's labels and the map.
    run_time
        The time stamped in the files (default: now).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    ConfigError
        When the scenario name is not a plain slug (:func:`scenario_folder`).
    DataError
        When the folder cannot be written or holds these files and ``overwrite`` is
        False (checked before the computation).

    Examples
    --------
    A result comes from :func:`bxlplan.scenarios.run_scenario` on a prepared baseline
    (the data pack). Its name is checked before anything is computed or written:

    >>> from types import SimpleNamespace
    >>> res = SimpleNamespace(scenario=SimpleNamespace(name="../josaphat"))
    >>> write_scenario(res, "out")
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: scenario name '../josaphat' is not a plain name: ...
    """
    folder = scenario_folder(out, res.scenario.name)
    check_output_set(folder, SCENARIO_FILES, overwrite)  # before the computation
    before_cells, after_cells = _cells(res)
    meta = res.areas.attrs.get("bxlplan", {})
    layers = {
        "areas": res.areas,
        "cells_before": before_cells,
        "cells_after": after_cells,
        "change": _change_layer(before_cells, after_cells),
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
    m = change_map(
        before_cells,
        after_cells,
        SCORES,
        facilities=res.new_facilities,
        perimeters={res.scenario.pole: perimeter},
        lang=lang,
        offline=offline,
        data=res.before.context.data,
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
    """Variants side by side: comparison.csv and comparison_map.html, written together
    into ``out`` (the scenario folders in it are kept).

    The map shows, for the 100 m cells of the variants' surroundings, how each
    variant differs from the first one (variant minus first variant, per cell and
    score, diverging classes centred on 0), each variant's new facilities, and the
    perimeters as outlines: one when the variants share it, one per variant where
    they differ. With a single variant, it shows that variant's change (after minus
    before).

    Parameters
    ----------
    table
        The comparison table (:func:`bxlplan.scenarios.compare_scenarios`).
    results
        The variants' results, the reference variant first.
    out
        The folder written into.
    overwrite
        Replace the files of an earlier comparison.
    offline
        A self-contained map (no tile layer, assets inlined).
    lang
        ``fr``, ``nl`` or ``en``.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    DataError
        When ``out`` cannot be written or holds these files and ``overwrite`` is False,
        or no variant is given.

    Examples
    --------
    The results come from :func:`bxlplan.scenarios.compare_scenarios` on a prepared
    baseline (the data pack); without any, nothing is written:

    >>> import tempfile
    >>> write_comparison(pd.DataFrame(), [], tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    bxlplan.errors.DataError: give at least one scenario result to compare
    """
    out = Path(out)
    check_output_set(out, COMPARISON_FILES, overwrite)
    if not results:
        raise DataError("give at least one scenario result to compare")
    m = _comparison(results, lang, offline)
    with output_set(out, COMPARISON_FILES, overwrite=overwrite) as stage:
        atomic_write(stage.path / "comparison.csv", csv_bytes(table, index=True))
        save_map(m, stage.path / "comparison_map.html", offline=offline, overwrite=True)
    return [out / n for n in COMPARISON_FILES]


def _same(a: shapely.Geometry, b: shapely.Geometry) -> bool:
    """Two perimeters are the same when they differ by less than 1 m²."""
    return float(shapely.area(shapely.symmetric_difference(a, b))) < 1.0


def _comparison(results: list[ScenarioResult], lang: str, offline: bool) -> Any:
    """The comparison map (see :func:`write_comparison`)."""
    names = [r.scenario.name for r in results]
    if len(set(names)) < len(names):
        raise DataError(
            f"two variants have the same scenario name ({', '.join(names)}): give each "
            "variant its own 'name' in its scenario file"
        )
    first = results[0]
    ctx = first.before.context
    poles = list(dict.fromkeys(r.scenario.pole for r in results))
    crs = first.areas.crs
    perimeters = {
        r.scenario.name: gpd.GeoDataFrame(geometry=[r.areas.geometry.iloc[0]], crs=crs)
        for r in results
    }
    shared = all(
        _same(p.geometry.iloc[0], perimeters[first.scenario.name].geometry.iloc[0])
        for p in perimeters.values()
    )
    if shared:  # one outline, named after the pole
        perimeters = {" / ".join(poles): perimeters[first.scenario.name]}
    facilities = {r.scenario.name: r.new_facilities for r in results}
    if len(results) == 1:
        before, after = _cells(first)
        return change_map(
            before, after, SCORES, facilities=first.new_facilities,
            perimeters=perimeters, lang=lang, offline=offline, data=ctx.data,
        )  # fmt: skip
    # one grid over every variant's surroundings: the same cells for all
    surroundings = gpd.GeoDataFrame(
        geometry=[shapely.union_all([r.areas.geometry.iloc[1] for r in results])],
        crs=crs,
    )
    grid = make_grid(surroundings, float(ctx.config.get("origins_cell_m", 100)))
    pole = " / ".join(poles)
    cells = {
        r.scenario.name: _labelled(_assess_cells(grid, r.context_after), ctx, pole)
        for r in results
    }
    return comparison_map(
        cells, SCORES, facilities=facilities, perimeters=perimeters, lang=lang,
        offline=offline, data=ctx.data,
    )  # fmt: skip
