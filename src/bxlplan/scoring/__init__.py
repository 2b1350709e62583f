"""Scoring: the assessment of areas (indicators -> 0-100 scores).

The stages, each public and typed: :mod:`~bxlplan.scoring.origins` (residential points),
:mod:`~bxlplan.scoring.access` (per-origin distances per category),
:mod:`~bxlplan.scoring.aggregate` (indicators per area), :mod:`~bxlplan.scoring.scores`
(0-100 scores); :mod:`~bxlplan.scoring.baseline` prepares the area-independent stages
once (:func:`prepare`, with the persistent :mod:`~bxlplan.scoring.cache`), and
:mod:`~bxlplan.scoring.assess` runs the rest over any areas.
"""

from __future__ import annotations

from .access import access_table, compute_access
from .aggregate import aggregate, shortage_zones
from .assess import Assessment, assess, validate_areas
from .baseline import facility_table, prepare
from .context import CategoryAccess, Context
from .origins import make_origins
from .robustness import RobustnessResult, robustness
from .scores import score_table, scoring_config

__all__ = [
    "Assessment",
    "CategoryAccess",
    "Context",
    "RobustnessResult",
    "access_table",
    "aggregate",
    "assess",
    "compute_access",
    "facility_table",
    "make_origins",
    "prepare",
    "robustness",
    "score_table",
    "scoring_config",
    "shortage_zones",
    "validate_areas",
]
