"""Scoring: the assessment of areas (indicators -> 0-100 scores)."""

from __future__ import annotations

from .assess import Assessment, assess, prepare
from .scores import score_table, scoring_config

__all__ = ["Assessment", "assess", "prepare", "score_table", "scoring_config"]
