"""Scenarios for the priority development poles: programme a pole, compare with today.

``bxlplan.scenario.run(path, ctx)``, ``bxlplan.scenario.compare(paths, ctx)`` and
``bxlplan.scenario.batch(paths, ctx, grid=[...])`` are the short names of
:func:`run_scenario`, :func:`compare_scenarios` and :func:`run_batch` (files and
``--grid`` variants as Dask tasks over one baseline).
"""

from __future__ import annotations

from .batch import (
    Variant,
    batch_summary,
    expand_batch,
    parse_grid,
    run_batch,
    write_batch,
)
from .outputs import report_markdown, write_comparison, write_scenario
from .report import report_html
from .run import ScenarioResult, apply_scenario, compare_scenarios, run_scenario
from .spec import Scenario, read_scenario

#: short names for the flat API (``bxlplan.scenario.run``)
run = run_scenario
compare = compare_scenarios
batch = run_batch
read = read_scenario
write = write_scenario

__all__ = [
    "Scenario",
    "ScenarioResult",
    "Variant",
    "apply_scenario",
    "batch",
    "batch_summary",
    "compare",
    "compare_scenarios",
    "expand_batch",
    "parse_grid",
    "read",
    "read_scenario",
    "report_html",
    "report_markdown",
    "run",
    "run_batch",
    "run_scenario",
    "write",
    "write_batch",
    "write_comparison",
    "write_scenario",
]
