"""Files of a rank-robustness run (:func:`bxlplan.scoring.robustness.robustness`).

:func:`write_robustness` writes one set, all together or not at all
(:func:`bxlplan._io.output_set`):

``robustness.csv``
    One row per area (no geometry), neutralised against spreadsheet formulas, with its
    provenance in ``robustness.provenance.json``.
``robustness_draws.csv``
    One row per draw: the weights and thresholds drawn and the rank correlation of the
    draw's overall ranks with the base ranks.
``robustness.gpkg``
    Layer ``robustness`` (the areas with their geometry), the provenance in the layer's
    metadata.
``robustness_map.html``
    A map of the probability of being in the bottom fifth of the overall score, the
    areas robustly there (at least 90 % of the draws) outlined; unscored areas grey.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd

from .._io import output_set
from ..scoring.robustness import RobustnessResult
from .gis import write_csv, write_gpkg
from .labels import check_lang
from .maps import html_text, make_map, save_map

__all__ = ["ROBUSTNESS_FILES", "robustness_map", "write_robustness"]

#: the files of the set (relative to the output folder)
ROBUSTNESS_FILES = (
    "robustness.csv",
    "robustness.provenance.json",
    "robustness_draws.csv",
    "robustness_draws.provenance.json",
    "robustness.gpkg",
    "robustness_map.html",
)
_DRAWN = "prob_bottom_quintile_score_overall"
_SWITCH = [
    "prob_bottom_quintile_score_services",
    "prob_bottom_quintile_score_diversity",
    "prob_bottom_quintile_score_social_mix",
    "rank_score_overall_median",
]
_PANE = "bxlplan-robust"
_TITLE = {
    "fr": "Robustement dans le cinquième inférieur (score global)",
    "nl": "Robuust in het laagste vijfde (totaalscore)",
    "en": "Robustly in the bottom fifth (overall score)",
}


def robustness_map(
    result: RobustnessResult,
    *,
    lang: str = "fr",
    offline: bool = False,
    data: str | os.PathLike[str] | None = None,
) -> folium.Map:
    """The map of a robustness run: the probability of the bottom fifth of the overall
    score, with the areas robustly there outlined.

    Built with :func:`bxlplan.exports.maps.make_map` (unscored areas grey, tooltips,
    legend, sources); a switch shows the probabilities of the other scores and the
    median overall rank. The areas flagged ``robustly_bottom_fifth`` are drawn again as
    a layer of thick outlines named "robustly in the bottom fifth".

    Parameters
    ----------
    result
        A :class:`~bxlplan.scoring.robustness.RobustnessResult`.
    lang
        ``fr``, ``nl`` or ``en``.
    offline
        No tile layer (see :func:`~bxlplan.exports.maps.make_map`).
    data
        The data folder of the base map (default: the run's, else ``$BXLPLAN_DATA``).

    Returns
    -------
    folium.Map
        The map.

    Examples
    --------
    After a run (``result = robustness(areas, ctx)``)::

        robustness_map(result, lang="en").save("robustness_map.html")
    """
    check_lang(lang)
    areas = result.areas
    if data is None:
        data = (result.provenance.get("assessment") or {}).get("data")
        data = data if data and data != "None" and Path(data).is_dir() else None
    m = make_map(
        areas,
        _DRAWN,
        lang=lang,
        offline=offline,
        indicators=[c for c in _SWITCH if c in areas],
        data=data,
        scheme="equal_interval",
        k=5,
    )
    robust = areas.loc[areas["robustly_bottom_fifth"].fillna(False).astype(bool)]
    if len(robust):
        outline = gpd.GeoDataFrame(
            {"name": robust.get("name_fr", robust["area_id"]).astype(str)},
            geometry=robust.geometry.values,
            crs=areas.crs,
        ).to_crs(4326)
        # the tooltip says what the outline means
        outline["name"] = (outline["name"] + " - " + _TITLE[lang]).map(html_text)
        # its own pane above the areas (drawn on a canvas, which covers the shared
        # overlay pane's SVG) and below the base map's labels
        folium.map.CustomPane(_PANE, z_index=460, pointer_events=True).add_to(m)
        folium.GeoJson(
            outline.__geo_interface__,
            pane=_PANE,
            # not in make_map's layer control: its script is written before this
            # layer exists (it would reference an undefined variable)
            control=False,
            name=html_text(_TITLE[lang]),
            style_function=lambda _f: {
                "color": "#b2182b",
                "weight": 3,
                "fill": False,
            },
            tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
        ).add_to(m)
    return m


def write_robustness(
    result: RobustnessResult,
    out: str | Path,
    *,
    overwrite: bool = False,
    lang: str = "fr",
    offline: bool = False,
    run_time: dt.datetime | None = None,
) -> list[Path]:
    """Write a robustness run's files (:data:`ROBUSTNESS_FILES`) into ``out``, as one set.

    Parameters
    ----------
    result
        A :class:`~bxlplan.scoring.robustness.RobustnessResult`.
    out
        The output folder (created when absent).
    overwrite
        Replace the files of an earlier set.
    lang
        Language of the map: ``fr``, ``nl`` or ``en``.
    offline
        A self-contained map with no tiles.
    run_time
        The run's time stamp (default :func:`bxlplan._io.run_timestamp`).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    DataError
        When files of the set exist and ``overwrite`` is False (before anything is
        written).
    ConfigError
        For an unknown language.

    Examples
    --------
    After a run (``result = robustness(areas, ctx)``)::

        write_robustness(result, "out/robustness", overwrite=True)
    """
    check_lang(lang)
    out = Path(out)
    meta: dict[str, Any] = dict(result.provenance)
    m = robustness_map(result, lang=lang, offline=offline)
    with output_set(
        out, ROBUSTNESS_FILES, overwrite=overwrite, run_time=run_time
    ) as stage:
        folder, when = stage.path, stage.run_time
        write_csv(result.areas, folder / "robustness.csv", meta, run_time=when)
        write_csv(result.draws, folder / "robustness_draws.csv", meta, run_time=when)
        write_gpkg(
            {"robustness": result.areas},
            folder / "robustness.gpkg",
            meta,
            run_time=when,
        )
        save_map(m, folder / "robustness_map.html", offline=offline)
    return [out / name for name in ROBUSTNESS_FILES]
