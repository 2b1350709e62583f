"""Scenarios for the priority development poles: programme a pole, compare with today."""

from __future__ import annotations

from .outputs import report_markdown, write_comparison, write_scenario
from .run import ScenarioResult, apply_scenario, compare_scenarios, run_scenario
from .spec import Scenario, read_scenario

__all__ = [
    "Scenario",
    "ScenarioResult",
    "apply_scenario",
    "compare_scenarios",
    "read_scenario",
    "report_markdown",
    "run_scenario",
    "write_comparison",
    "write_scenario",
]
