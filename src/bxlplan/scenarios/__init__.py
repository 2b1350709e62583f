"""Scenarios for the priority development poles: programme a pole, compare with today.

``bxlplan.scenario.run(path, ctx)`` and ``bxlplan.scenario.compare(paths, ctx)`` are
the short names of :func:`run_scenario` and :func:`compare_scenarios`.
"""

from __future__ import annotations

from .outputs import report_markdown, write_comparison, write_scenario
from .report import report_html
from .run import ScenarioResult, apply_scenario, compare_scenarios, run_scenario
from .spec import Scenario, read_scenario

#: short names for the flat API (``bxlplan.scenario.run``)
run = run_scenario
compare = compare_scenarios
read = read_scenario
write = write_scenario

__all__ = [
    "Scenario",
    "ScenarioResult",
    "apply_scenario",
    "compare",
    "compare_scenarios",
    "read",
    "read_scenario",
    "report_html",
    "report_markdown",
    "run",
    "run_scenario",
    "write",
    "write_comparison",
    "write_scenario",
]
