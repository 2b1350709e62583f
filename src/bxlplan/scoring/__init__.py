"""Scoring: the assessment of areas (indicators -> 0-100 scores)."""

from __future__ import annotations

from .assess import Assessment, Context, assess, prepare, validate_areas
from .scores import score_table, scoring_config

__all__ = [
    "Assessment",
    "Context",
    "assess",
    "prepare",
    "score_table",
    "scoring_config",
    "validate_areas",
]
