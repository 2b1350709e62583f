"""Change maps: what a plan changes, area by area (after minus before), and how two
variants differ (variant B minus variant A), drawn with a diverging palette centred on 0.

* :func:`label_cells` gives grid cells a readable name (``Josaphat – cell 264,
  Schaerbeek / Helmet``): the pole, the cell's number and the commune and Monitoring
  neighbourhood that contain the cell's representative point.
* :func:`cell_changes` aligns two assessments of the same areas by ``area_id`` and
  computes ``<column>_change = after - before``; a value missing on either side gives a
  missing change, never 0.
* :func:`diverging_breaks` and :func:`diverging_palette` classify changes
  symmetrically around 0: ``k`` classes of equal, rounded width on each side, one
  neutral class for no change (``|change| <= 1e-9 x`` the largest change: float noise).
* :func:`add_change_layers`, :func:`add_new_facilities` and :func:`add_outlines` draw
  on a folium map; :func:`change_map` (a scenario: the before/after map of
  :func:`~bxlplan.exports.maps.make_map` plus the change) and :func:`comparison_map`
  (variants: the differences to the first variant) build whole maps.

Red is a decrease and blue an increase whatever the indicator: the legend says which
way each class goes, with signed values in the indicator's unit (``+2.5 /100``,
``-5 pts``). Every text from data (names of places, facilities and variants) is
written with :func:`~bxlplan.exports.maps.html_text`; the maps are saved with
:func:`~bxlplan.exports.maps.save_map`, which refuses any text that could run as a
template.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import branca.colormap as cm
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement, Template

from ..errors import DataError
from ..loading.catalog import read_catalog_file
from ..loading.facilities import categories
from .basemap import add_context
from .labels import check_lang, column_label, ui
from .maps import NO_DATA, html_text, make_map

__all__ = [
    "SCORES",
    "add_change_layers",
    "add_new_facilities",
    "add_outlines",
    "cell_changes",
    "change_map",
    "comparison_map",
    "diverging_breaks",
    "diverging_classes",
    "diverging_palette",
    "label_cells",
    "signed_text",
]

SCORES = ("score_overall", "score_diversity", "score_social_mix", "score_services")
NEUTRAL = "#f7f7f7"  # the centre of ColorBrewer's RdBu: no change
_LABELS = ("name_fr", "name_nl", "name_en", "neighbourhood_code", "neighbourhood_fr",
           "neighbourhood_nl", "commune_fr", "commune_nl")  # fmt: skip
_TRAILING_NUMBER = re.compile(r"(\d+)$")


# --- labels ---------------------------------------------------------------------------


def _contained_by(
    points: np.ndarray, layer: gpd.GeoDataFrame, columns: Sequence[str]
) -> pd.DataFrame:
    """For each point, ``columns`` of the first polygon of ``layer`` that covers it,
    boundary included (missing where none does)."""
    out = pd.DataFrame(index=range(len(points)), columns=list(columns), dtype=object)
    i, j = layer.sindex.query(points, predicate="intersects")
    first = pd.Series(j).groupby(i).first()  # overlapping polygons: the first
    for col in columns:
        out.loc[first.index, col] = layer[col].to_numpy()[first.to_numpy()]
    return out


def label_cells(
    cells: gpd.GeoDataFrame,
    neighbourhoods: gpd.GeoDataFrame,
    communes: gpd.GeoDataFrame | None = None,
    *,
    prefix: str | Mapping[str, str] = "",
) -> gpd.GeoDataFrame:
    """Cells with a readable name in French, Dutch and English and the neighbourhood
    (and commune) that contains their representative point.

    ``name_<lang>`` becomes ``<prefix> – cell <n>, <commune> / <neighbourhood>``, where
    ``n`` is the number that ends the cell's ``area_id`` (``square100_264`` -> 264, the
    number in the GeoPackage) and the place is the one containing the cell's
    representative point (:func:`shapely.point_on_surface`); cells outside every
    neighbourhood are "outside the Region". English names use the French place names.

    Parameters
    ----------
    cells
        Polygons with an ``area_id`` (:func:`bxlplan.loading.areas.make_grid`).
    neighbourhoods
        Polygons with ``code``, ``name_fr`` and ``name_nl`` (the ``neighbourhoods``
        layer), in the cells' CRS.
    communes
        Optional polygons with ``name_fr`` and ``name_nl`` (the ``communes`` layer).
    prefix
        What the cells belong to (a pole's name), or one text per language (French
        where a language is missing).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``cells`` with ``name_fr``, ``name_nl``, ``name_en``,
        ``neighbourhood_code``, ``neighbourhood_fr``, ``neighbourhood_nl`` and, with
        ``communes``, ``commune_fr`` and ``commune_nl``.

    Raises
    ------
    DataError
        When a layer lacks a column named above or the CRSs differ.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> hoods = gpd.GeoDataFrame(
    ...     {"code": [85], "name_fr": ["Helmet"], "name_nl": ["Helmet"]},
    ...     geometry=[shapely.box(0, 0, 200, 100)], crs=31370)
    >>> cells = gpd.GeoDataFrame({"area_id": ["square100_7", "square100_8"]},
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(300, 0, 400, 100)],
    ...     crs=31370)
    >>> label_cells(cells, hoods, prefix="Josaphat")["name_en"].tolist()
    ['Josaphat – cell 7, Helmet', 'Josaphat – cell 8, outside the Region']
    """
    _need(cells, ["area_id"], "the cells")
    _need(neighbourhoods, ["code", "name_fr", "name_nl"], "the neighbourhoods")
    layers = [(neighbourhoods, "neighbourhoods")]
    if communes is not None:
        _need(communes, ["name_fr", "name_nl"], "the communes")
        layers.append((communes, "communes"))
    for layer, what in layers:
        if layer.crs != cells.crs:
            raise DataError(
                f"the {what} are in {layer.crs}, the cells in {cells.crs}: reproject "
                "one of them (to_crs) before labelling the cells"
            )
    points = shapely.point_on_surface(cells.geometry.values)
    hood = _contained_by(points, neighbourhoods, ["code", "name_fr", "name_nl"])
    out = cells.copy()
    out["neighbourhood_code"] = pd.to_numeric(hood["code"]).astype("Int64")
    out["neighbourhood_fr"] = hood["name_fr"].to_numpy()
    out["neighbourhood_nl"] = hood["name_nl"].to_numpy()
    place = {"fr": hood["name_fr"], "nl": hood["name_nl"]}
    if communes is not None:
        com = _contained_by(points, communes, ["name_fr", "name_nl"])
        out["commune_fr"] = com["name_fr"].to_numpy()
        out["commune_nl"] = com["name_nl"].to_numpy()
        place = {
            lang: com[f"name_{lang}"].where(com[f"name_{lang}"].notna(), "").astype(str)
            + " / "
            + hood[f"name_{lang}"].astype(str)
            for lang in ("fr", "nl")
        }
        for lang in place:  # a neighbourhood's point may miss every commune
            place[lang] = place[lang].str.removeprefix(" / ")
    place["en"] = place["fr"]
    ids = out["area_id"].astype(str)
    numbers = [m.group(1) if (m := _TRAILING_NUMBER.search(i)) else i for i in ids]
    for lang in ("fr", "nl", "en"):
        pre = (
            (prefix.get(lang) or prefix.get("fr", ""))
            if isinstance(prefix, Mapping)
            else prefix
        )
        outside = ui("map_outside_region", lang)
        where = [
            outside if pd.isna(h) else str(p)
            for h, p in zip(hood["code"], place[lang], strict=True)
        ]
        template = ui("map_cell", lang)
        out[f"name_{lang}"] = [
            template.format(pole=pre, n=n, place=w).removeprefix(" – ")
            for n, w in zip(numbers, where, strict=True)
        ]
    return out


def _need(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what} have no column {', '.join(repr(c) for c in missing)} "
            f"(columns: {', '.join(map(str, frame.columns[:20]))})"
        )


# --- the change -----------------------------------------------------------------------


def _numeric(frame: pd.DataFrame, column: str) -> bool:
    s = frame[column]
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def cell_changes(
    before: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
    columns: Sequence[str] | None = None,
    *,
    key: str = "area_id",
) -> gpd.GeoDataFrame:
    """``after - before`` for each column, area by area, matched on ``key``.

    Parameters
    ----------
    before, after
        The same areas assessed twice (before and after a plan, or variants A and B).
        Rows are matched on ``key``, not on their order.
    columns
        The numeric columns to compare (default: every numeric column of both).
    key
        The column that identifies an area; unique on each side.

    Returns
    -------
    geopandas.GeoDataFrame
        ``after``'s areas in ``after``'s order, with ``key``, the label columns of
        ``after`` (names, neighbourhood, commune) and, for each column,
        ``<column>_before``, ``<column>_after`` and ``<column>_change``. A value
        missing (or infinite) on either side gives a missing change.

    Raises
    ------
    DataError
        When ``key`` is missing or repeated, the two sides do not hold the same
        areas (the first ones are named), or a column is missing or not numeric.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> boxes = [shapely.box(i, 0, i + 1, 1) for i in range(3)]
    >>> before = gpd.GeoDataFrame({"area_id": ["a", "b", "c"],
    ...     "score": [10.0, 40.0, float("nan")]}, geometry=boxes, crs=31370)
    >>> after = gpd.GeoDataFrame({"area_id": ["c", "a", "b"],
    ...     "score": [50.0, 13.0, 35.0]}, geometry=boxes[::-1], crs=31370)
    >>> cell_changes(before, after, ["score"])["score_change"].tolist()
    [nan, 3.0, -5.0]
    """
    for frame, side in ((before, "before"), (after, "after")):
        _need(frame, [key], f"the areas {side} the change")
        repeated = frame[key][frame[key].duplicated()]
        if len(repeated):
            raise DataError(
                f"the areas {side} the change repeat {key} "
                f"{', '.join(map(str, repeated.unique()[:5]))}: each area must appear "
                "once"
            )
    only_after = after[key][~after[key].isin(before[key])]
    only_before = before[key][~before[key].isin(after[key])]
    for ids, where, other in ((only_after, "after", "before"),
                              (only_before, "before", "after")):  # fmt: skip
        if len(ids):
            raise DataError(
                f"{len(ids)} area(s) of the '{where}' side are not on the '{other}' "
                f"side ({key} {', '.join(map(str, ids.iloc[:5]))}): compare "
                "assessments of the same areas (the same grid)"
            )
    if columns is None:
        columns = [
            c for c in after.columns
            if c != key and c in before.columns and c not in _LABELS
            and _numeric(after, c) and _numeric(before, c)
        ]  # fmt: skip
    for col in columns:
        for frame, side in ((before, "before"), (after, "after")):
            if col not in frame.columns:
                raise DataError(
                    f"no column '{col}' in the areas {side} the change: compare "
                    "columns that both assessments have"
                )
            if not _numeric(frame, col):
                raise DataError(
                    f"column '{col}' of the areas {side} the change is not numeric: "
                    "only numbers have a difference"
                )
    keep = [key] + [c for c in _LABELS if c in after.columns and c != key]
    out = pd.DataFrame(after[keep])
    matched = before.set_index(key).loc[after[key]]
    values: dict[str, np.ndarray] = {}
    for col in columns:
        b = pd.to_numeric(matched[col], errors="coerce").to_numpy(
            dtype=float, copy=True
        )
        a = pd.to_numeric(after[col], errors="coerce").to_numpy(dtype=float, copy=True)
        b[~np.isfinite(b)] = np.nan
        a[~np.isfinite(a)] = np.nan
        values |= {f"{col}_before": b, f"{col}_after": a, f"{col}_change": a - b}
    out = pd.concat([out, pd.DataFrame(values, index=out.index)], axis=1)
    return gpd.GeoDataFrame(out, geometry=after.geometry.values, crs=after.crs)


# --- classes and colours --------------------------------------------------------------


def _nice_step(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n that is at least ``x`` (> 0)."""
    exp = math.floor(math.log10(x))
    for mantissa in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = mantissa * 10.0**exp
        if step >= x * (1 - 1e-12):
            return step
    return 10.0 ** (exp + 1)  # pragma: no cover - 10 x 10^exp always qualifies


def diverging_breaks(values: Any, k: int = 3) -> np.ndarray:
    """Class edges symmetric around 0: ``k`` classes of equal width on each side.

    The width is the largest absolute change divided by ``k``, rounded up to 1, 2,
    2.5 or 5 times a power of ten, so that the legend reads in round numbers.

    Parameters
    ----------
    values
        The changes (missing and infinite values are left out).
    k
        Classes on each side of 0, at least 1.

    Returns
    -------
    numpy.ndarray
        ``2k + 1`` ascending edges with ``edges[k] == 0`` and
        ``edges == -edges[::-1]``; ``[0.]`` when no value differs from 0 (or none is
        finite).

    Raises
    ------
    DataError
        When ``k`` is not a whole number of at least 1.

    Examples
    --------
    >>> diverging_breaks([-5.0, 1.0, 7.3], k=3).tolist()
    [-7.5, -5.0, -2.5, 0.0, 2.5, 5.0, 7.5]
    >>> diverging_breaks([0.0, float("nan")]).tolist()
    [0.0]
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise DataError(f"the number of classes on each side of 0 must be >= 1: {k!r}")
    given = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    vals = given.to_numpy(dtype=float)
    vals = np.abs(vals[np.isfinite(vals)])
    top = float(vals.max()) if len(vals) else 0.0
    if top <= _noise(top):
        return np.array([0.0])
    step = _nice_step(top / k)
    return step * np.arange(-k, k + 1, dtype=float)


def _noise(top: float) -> float:
    """Changes this small are no change (float noise of two computations)."""
    return 1e-9 * max(1.0, top)


def diverging_classes(values: Any, edges: np.ndarray) -> np.ndarray:
    """The class of each change: ``-k`` .. ``-1`` (decrease), 0 (no change), 1 .. ``k``
    (increase); ``-k - 1`` for a missing value.

    Each class includes its edge away from 0: with edges ``[-5, -2.5, 0, 2.5, 5]``,
    2.5 is class 1 and 2.6 class 2. A change of at most ``1e-9 x`` the largest edge
    (float noise) is no change. Values beyond the last edge fall in the last class.

    Parameters
    ----------
    values
        The changes.
    edges
        Edges from :func:`diverging_breaks`.

    Returns
    -------
    numpy.ndarray
        One integer class per value.

    Examples
    --------
    >>> edges = diverging_breaks([-5.0, 7.3], k=3)
    >>> diverging_classes([0.0, 2.5, 2.6, -0.1, -7.5, float("nan")], edges).tolist()
    [0, 1, 2, -1, -3, -4]
    """
    edges = np.asarray(edges, dtype=float)
    k = (len(edges) - 1) // 2
    given = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    vals = given.to_numpy(dtype=float)
    out = np.full(len(vals), -k - 1, dtype=int)
    finite = np.isfinite(vals)
    out[finite] = 0
    if k == 0:
        return out
    step = float(edges[k + 1])
    moved = finite & (np.abs(vals) > _noise(float(edges[-1])))
    size = np.clip(np.ceil(np.abs(vals[moved]) / step - 1e-9), 1, k).astype(int)
    out[moved] = np.sign(vals[moved]).astype(int) * size
    return out


def diverging_palette(k: int) -> list[str]:
    """``2k + 1`` colours of ColorBrewer's RdBu: reds (decrease), the neutral
    :data:`NEUTRAL` in the middle (no change), blues (increase).

    Parameters
    ----------
    k
        Classes on each side of 0 (0 gives the neutral colour alone).

    Returns
    -------
    list of str
        ``#rrggbb`` colours from the largest decrease to the largest increase.

    Examples
    --------
    >>> diverging_palette(1)
    ['#b2182b', '#f7f7f7', '#2166ac']
    """
    scale = cm.linear.RdBu_11.scale(-1, 1)  # type: ignore[attr-defined]
    side = [0.8 * i / k for i in range(1, k + 1)] if k else []
    colours = [scale(-x) for x in side[::-1]] + [NEUTRAL] + [scale(x) for x in side]
    return [c[:7] for c in colours]


# --- text -----------------------------------------------------------------------------


def _display(value: float, unit: str) -> tuple[float, str]:
    """A value in the unit shown (shares in percentage points) and that unit's text."""
    if unit == "%":
        return 100.0 * value, "pts"
    return value, unit


def _decimals(value: float) -> int:
    """Decimals that show ``value`` as it is (a class edge), at most 4."""
    for d in range(5):
        if abs(round(value, d) - value) <= 1e-9 * max(1.0, abs(value)):
            return d
    return 4


def signed_text(
    value: Any, unit: str = "", lang: str = "fr", *, decimals: int | None = None
) -> str:
    """A change with its sign and unit: ``+2.5 /100``, ``−5 pts``, ``+120 m``.

    Shares (unit ``%``, stored 0-1) change in percentage points. Without
    ``decimals``: none from 100 up, one from 1 up, two below; a change that rounds to
    0 but is not 0 shows as ``+<0.01``. 0 has no sign; decreases have a minus sign
    (U+2212); a missing value gives ``""``.

    Parameters
    ----------
    value
        The change.
    unit
        The indicator's unit (:func:`bxlplan.exports.labels.column_label`).
    lang
        ``fr``, ``nl`` or ``en`` (the word for points).
    decimals
        Fixed decimals.

    Returns
    -------
    str
        The signed text.

    Examples
    --------
    >>> signed_text(6.3, "/100"), signed_text(-0.05, "%", "nl"), signed_text(0.0, "m")
    ('+6.3 /100', '−5.0 ptn', '0 m')
    >>> signed_text(0.001, "/100")
    '+<0.1 /100'
    """
    check_lang(lang)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(v):
        return ""
    v, shown = _display(v, unit)
    if shown == "pts":
        shown = ui("report_points", lang)
    if decimals is None:
        decimals = 0 if abs(v) >= 100 else 1 if abs(v) >= 1 else 2
        if unit in ("%", "/100"):
            decimals = min(decimals, 1)
    if v == 0:
        text = "0"
    elif round(abs(v), decimals) == 0:
        text = f"{'+' if v > 0 else '−'}<{10.0**-decimals:.{decimals}f}"
    else:
        text = f"{v:+,.{decimals}f}".replace("-", "−")
    return f"{text} {shown}".strip()


def _plain_text(value: Any, unit: str) -> str:
    """A before or after value: ``52.4 /100``, ``61 %``, ``840 m``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(v):
        return ""
    if unit == "%":
        return f"{100 * v:.0f} %"
    if unit == "/100":
        return f"{v:.1f} /100"
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
    return f"{text} {unit}".strip()


def _legend_rows(
    edges: np.ndarray, unit: str, lang: str, has_missing: bool
) -> list[tuple[str, str]]:
    """(colour, text) from the largest increase down to the largest decrease, each
    class written from its lower to its upper edge (``−5 – −2.5 /100``)."""
    k = (len(edges) - 1) // 2
    palette = diverging_palette(k)
    decimals = _decimals(_display(float(edges[-1]) / k, unit)[0]) if k else 0
    rows = []
    for c in range(k, -k - 1, -1):
        if c == 0:
            rows.append((palette[k], ui("map_no_change", lang)))
            continue
        lo, hi = (
            (edges[k + c - 1], edges[k + c])
            if c > 0
            else (edges[k + c], edges[k + c + 1])
        )
        lo_t, hi_t = (signed_text(v, unit, lang, decimals=decimals) for v in (lo, hi))
        rows.append(
            (palette[k + c], f"{lo_t.rsplit(' ', 1)[0] if unit else lo_t} – {hi_t}")
        )
    if has_missing:
        rows.append((NO_DATA, ui("no_data", lang)))
    return rows


# --- drawing --------------------------------------------------------------------------


class _ChangeLegend(MacroElement):
    """A legend shown while its layer is on, in a box of legends at the bottom left;
    its text is passed as template variables, never as template source."""

    _template = Template(
        "{% macro html(this, kwargs) %}"
        '<div id="{{ this.get_name() }}" class="bxlplan-change-legend" '
        'style="background:white;padding:8px 10px;border:1px solid #999;'
        'font:12px sans-serif"><b>{{ this.title }}</b><br>{{ this.subtitle }}'
        "{% for colour, text in this.rows %}"
        '<div><span style="background:{{ colour }};width:14px;height:14px;'
        'display:inline-block;margin-right:6px;border:1px solid #555"></span>'
        "{{ text }}</div>"
        "{% endfor %}</div>"
        "{% endmacro %}"
        "{% macro script(this, kwargs) %}"
        "(function () {"
        " var map = {{ this._parent.get_name() }}, layer = {{ this.layer }};"
        " var box = document.getElementById('bxlplan-change-legends');"
        " if (!box) { box = document.createElement('div');"
        " box.id = 'bxlplan-change-legends';"
        " box.style.cssText = 'position:fixed;bottom:48px;left:12px;z-index:9999;"
        "display:flex;gap:6px;align-items:flex-end';"
        " document.body.appendChild(box); }"
        " var div = document.getElementById({{ this.get_name()|tojson }});"
        " box.appendChild(div);"
        " function update() { div.style.display = map.hasLayer(layer) ? '' : 'none'; }"
        " map.on('overlayadd overlayremove', update); update();"
        "})();"
        "{% endmacro %}"
    )

    def __init__(
        self, title: str, subtitle: str, rows: list[tuple[str, str]], layer: str
    ) -> None:
        super().__init__()
        self._name = "BxlplanChangeLegend"
        self.title = html_text(title)
        self.subtitle = html_text(subtitle)
        self.rows = [(html_text(c), html_text(t)) for c, t in rows]
        self.layer = str(layer)  # the JavaScript name of our layer (folium's)


class _Sources(MacroElement):
    """The sources, added to Leaflet's attribution control as a JSON string, and a
    metric scale (as on :func:`~bxlplan.exports.maps.make_map`'s maps)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{{ this._parent.get_name() }}.attributionControl.addAttribution("
        "{{ this.text|tojson }});"
        "L.control.scale({imperial: false, metric: true, maxWidth: 160})"
        ".addTo({{ this._parent.get_name() }});"
        "{% endmacro %}"
    )

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "BxlplanChangeSources"
        self.text = html_text(text)


def _light(gdf: gpd.GeoDataFrame, tolerance: float = 2.0) -> gpd.GeoDataFrame:
    """Geometries only, simplified (m), in EPSG:4326, rounded to ~1 m."""
    geoms = shapely.simplify(gdf.geometry.values, tolerance, preserve_topology=True)
    out = gpd.GeoDataFrame(geometry=geoms, crs=gdf.crs).to_crs(4326)
    return out.set_geometry(shapely.set_precision(out.geometry.values, 1e-5))


def _place(row: Mapping[str, Any], lang: str) -> str:
    """``Helmet`` or ``Helmet / Helmet-NL``; ``""`` without a neighbourhood."""
    given = [row.get("neighbourhood_fr"), row.get("neighbourhood_nl")]
    names = [str(n) for n in given if isinstance(n, str) and n]
    if lang == "nl":
        names = names[::-1]
    return " / ".join(dict.fromkeys(names))


def add_change_layers(
    m: folium.Map,
    change: gpd.GeoDataFrame,
    columns: Sequence[str],
    *,
    lang: str = "fr",
    variants: tuple[str, str] | None = None,
    k: int = 3,
    show: int | None = 0,
) -> list[str]:
    """Draw ``<column>_change`` of :func:`cell_changes` as one layer per column, in a
    diverging palette centred on 0 (classes of its own), with a legend each (shown
    while its layer is on).

    Each area's tooltip gives its name and the change; its popup the name, the
    neighbourhood and, for every column, ``before → after (change)``.

    Parameters
    ----------
    m
        The map to draw on.
    change
        The output of :func:`cell_changes` (with its label columns, if any).
    columns
        The compared columns (without the ``_change`` suffix).
    lang
        ``fr``, ``nl`` or ``en``.
    variants
        ``(a, b)``: the layers show the difference between variant ``b`` and variant
        ``a`` (``b - a``); default: a change (after - before).
    k
        Classes on each side of 0.
    show
        Index of the layer switched on; ``None``: all off.

    Returns
    -------
    list of str
        The layers' names (as shown in the layer control, inert HTML).

    Raises
    ------
    DataError
        When a ``<column>_change`` (or its before/after) column is missing.

    Examples
    --------
    >>> import folium, geopandas as gpd, shapely
    >>> boxes = [shapely.box(150000 + 100 * i, 170000, 150100 + 100 * i, 170100)
    ...          for i in range(2)]
    >>> a = gpd.GeoDataFrame({"area_id": ["1", "2"], "score_overall": [50.0, 60.0]},
    ...     geometry=boxes, crs=31370)
    >>> b = a.assign(score_overall=[53.0, 55.0])
    >>> add_change_layers(folium.Map(), cell_changes(a, b), ["score_overall"],
    ...     lang="en")
    ['Overall score: change (after − before)']
    """
    check_lang(lang)
    for col in columns:
        _need(change, [f"{col}_{s}" for s in ("before", "after", "change")],
              "the changes")  # fmt: skip
    name_col = f"name_{lang}" if f"name_{lang}" in change else "name_fr"
    names = (
        change[name_col] if name_col in change else change.get("area_id", change.index)
    )
    base = _light(change)
    rows = change.to_dict("records")
    places = [html_text(_place(r, lang)) for r in rows]
    labels = {col: column_label(col, lang) for col in columns}
    # before -> after (change) of every column, for the popups
    summaries = {
        col: [
            html_text(
                f"{_plain_text(b, labels[col][1]) or ui('no_data', lang)} → "
                f"{_plain_text(a, labels[col][1]) or ui('no_data', lang)} "
                f"({signed_text(c, labels[col][1], lang) or ui('no_data', lang)})"
            )
            for b, a, c in zip(
                change[f"{col}_before"],
                change[f"{col}_after"],
                change[f"{col}_change"],
                strict=True,
            )  # fmt: skip
        ]
        for col in columns
    }
    if variants is None:
        layer_key, legend = "map_change_layer", ui("map_change_legend", lang)
        fill = {}
    else:
        layer_key = "map_difference_layer"
        fill = {"a": variants[0], "b": variants[1]}
        legend = ui("map_difference_legend", lang).format(**fill)
    popup_fields = ["name", "place", *[f"c{i}" for i in range(len(columns))]]
    popup_aliases = [
        html_text(ui("name", lang)),
        html_text(ui("map_neighbourhood", lang)),
        *[html_text(labels[c][0]) for c in columns],
    ]
    layer_names = []
    for i, col in enumerate(columns):
        label, unit = labels[col]
        values = change[f"{col}_change"]
        edges = diverging_breaks(values, k)
        cls = diverging_classes(values, edges)
        kk = (len(edges) - 1) // 2
        palette = diverging_palette(kk)
        data = base.copy()
        data["name"] = [html_text(n) for n in names]
        data["place"] = places
        data["value"] = [
            html_text(signed_text(v, unit, lang) or ui("no_data", lang)) for v in values
        ]
        for j, c in enumerate(columns):
            data[f"c{j}"] = summaries[c]
        data["fill"] = [NO_DATA if c < -kk else palette[c + kk] for c in cls]
        name = html_text(ui(layer_key, lang).format(indicator=label, **fill))
        layer = folium.GeoJson(
            data.__geo_interface__, name=name, show=show == i,
            style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#555", "weight": 0.4, "fillOpacity": 0.85},
            tooltip=folium.GeoJsonTooltip(fields=["name", "value"], aliases=[html_text(ui("name", lang)), name]),
            popup=folium.GeoJsonPopup(fields=popup_fields, aliases=popup_aliases),
        )  # fmt: skip
        layer.add_to(m)
        rows = _legend_rows(edges, unit, lang, bool(values.isna().any()))
        m.add_child(_ChangeLegend(label, legend, rows, layer.get_name()))
        layer_names.append(name)
    return layer_names


def _capacity_text(capacity: Any, lang: str) -> str:
    try:
        cap = float(capacity)
    except (TypeError, ValueError):
        cap = float("nan")
    if not np.isfinite(cap):
        return ui("report_unknown_capacity", lang)
    return ui("report_places", lang).format(n=f"{cap:,.0f}".replace(",", "\u202f"))


def add_new_facilities(
    m: folium.Map,
    facilities: gpd.GeoDataFrame,
    *,
    lang: str = "fr",
    name: str | None = None,
    colour: str = "#111111",
) -> str | None:
    """Draw new facilities as labelled points: name and capacity always shown (one
    label per place, facilities at the same place listed together), the category in
    the popup. A missing capacity reads "unknown (capacity not supplied)".

    Parameters
    ----------
    m
        The map to draw on.
    facilities
        Points with ``name``, ``category`` and ``capacity`` (places; may be missing)
        and, optionally, ``variant``: the label then starts with it. A name
        ``<category> (<pole>)`` shows the category's label instead of its code.
    lang
        ``fr``, ``nl`` or ``en``.
    name
        The layer's name (default "New facilities" in ``lang``).
    colour
        The points' outline colour.

    Returns
    -------
    str or None
        The layer's name (inert HTML), or None when there is no facility.

    Raises
    ------
    DataError
        When a column named above is missing or a geometry is not a point.

    Examples
    --------
    >>> import folium, geopandas as gpd, shapely
    >>> fac = gpd.GeoDataFrame({"name": ["<b>École</b>"], "category":
    ...     ["primary_school"], "capacity": [None]},
    ...     geometry=[shapely.Point(150000, 170000)], crs=31370)
    >>> add_new_facilities(folium.Map(), fac, lang="en")
    'New facilities'
    """
    check_lang(lang)
    if facilities is None or not len(facilities):
        return None
    _need(facilities, ["name", "category", "capacity"], "the new facilities")
    if not (facilities.geom_type == "Point").all():
        raise DataError("the new facilities must be points (one per facility)")
    cats = categories()
    pts = facilities.to_crs(4326)
    xy = np.round(shapely.get_coordinates(pts.geometry.values), 5)
    groups: dict[tuple[float, float], list[tuple[str, str]]] = {}
    for (x, y), row in zip(xy, pts.itertuples(), strict=True):
        cat = row.category
        info = cats.get(cat, {}) if isinstance(cat, str) else {}
        cat_label = str(info.get("label", {}).get(lang, cat))
        title = row.name if isinstance(row.name, str) and row.name else cat_label
        if isinstance(cat, str) and title.startswith(f"{cat} ("):  # "school (Pole)"
            title = cat_label + title[len(cat) :]
        cap = _capacity_text(row.capacity, lang)
        variant = getattr(row, "variant", None)
        tag = f"{html_text(variant)}: " if isinstance(variant, str) else ""
        groups.setdefault((x, y), []).append(
            (
                f"{tag}<b>{html_text(title)}</b> ({html_text(cap)})",
                f"<b>{html_text(title)}</b><br>{html_text(ui('report_category', lang))}"
                f": {html_text(cat_label)}<br>{html_text(ui('map_capacity', lang))}: "
                f"{html_text(cap)}",
            )
        )
    rows = [
        [float(y), float(x), "<br>".join(t for t, _ in items),
         "<hr>".join(d for _, d in items)]
        for (x, y), items in groups.items()
    ]  # fmt: skip
    layer_name = html_text(name or ui("report_new_facilities", lang))
    group = folium.FeatureGroup(name=layer_name, show=True)
    group.add_child(_LabelledPoints(rows, html_text(colour)))
    group.add_to(m)
    return layer_name


class _LabelledPoints(MacroElement):
    """Points with a permanent label and a popup, added to the parent layer; the rows
    ``[lat, lon, label, popup]`` (inert HTML) are passed as JSON, never as code."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "(function () {"
        " var group = {{ this._parent.get_name() }};"
        " {{ this.rows|tojson }}.forEach(function (r) {"
        " L.circleMarker([r[0], r[1]], {radius: 8, color: {{ this.colour|tojson }},"
        " weight: 2, fillColor: '#ffd92f', fillOpacity: 1})"
        ".bindTooltip(r[2], {permanent: true, direction: 'right',"
        " className: 'bxlplan-new-facility'})"
        ".bindPopup(r[3]).addTo(group); });"
        "})();"
        "{% endmacro %}"
    )

    def __init__(self, rows: list[list[Any]], colour: str) -> None:
        super().__init__()
        self._name = "BxlplanLabelledPoints"
        self.rows = rows
        self.colour = colour


def add_outlines(
    m: folium.Map, outlines: Mapping[str, gpd.GeoDataFrame], *, lang: str = "fr"
) -> list[str]:
    """Draw perimeters as outlines only (no fill), one layer each.

    Parameters
    ----------
    m
        The map to draw on.
    outlines
        Polygons by name (a pole, a variant).
    lang
        ``fr``, ``nl`` or ``en``.

    Returns
    -------
    list of str
        The layers' names (inert HTML).

    Examples
    --------
    >>> import folium, geopandas as gpd, shapely
    >>> pole = gpd.GeoDataFrame(geometry=[shapely.box(150000, 170000, 150500, 170500)],
    ...     crs=31370)
    >>> add_outlines(folium.Map(), {"Josaphat": pole}, lang="en")
    ['Perimeters: Josaphat']
    """
    check_lang(lang)
    dashes = ("6 4", "2 4", "10 4 2 4", None)
    names = []
    for i, (name, gdf) in enumerate(outlines.items()):
        layer_name = html_text(f"{ui('perimeters', lang)}: {name}")
        style = {"fill": False, "color": "#000", "weight": 2.5,
                 "dashArray": dashes[i % len(dashes)]}  # fmt: skip
        folium.GeoJson(
            _light(gdf, 5.0).__geo_interface__,
            name=layer_name,
            style_function=lambda _f, s=style: s,
        ).add_to(m)
        names.append(layer_name)
    return names


def _control_last(m: folium.Map) -> None:
    """One layer control, rendered after every layer (its script names them)."""
    controls = [k for k, v in m._children.items() if isinstance(v, folium.LayerControl)]
    if not controls:
        folium.LayerControl(collapsed=True).add_to(m)
        return
    for key in controls:
        m._children.move_to_end(key)


def change_map(
    before: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
    columns: Sequence[str] = SCORES,
    *,
    facilities: gpd.GeoDataFrame | None = None,
    perimeters: dict[str, gpd.GeoDataFrame] | None = None,
    lang: str = "fr",
    offline: bool = False,
    k: int = 3,
    context: bool = True,
    data: str | os.PathLike[str] | None = None,
) -> folium.Map:
    """A before/after map (:func:`~bxlplan.exports.maps.make_map` of ``columns[0]``)
    with the change of each column on top (the first one shown), the new facilities
    labelled with their names and capacities, and the perimeters as outlines.

    Parameters
    ----------
    before, after
        The same areas assessed before and after (matched on ``area_id``); label them
        with :func:`label_cells` for readable names in tooltips and popups.
    columns
        The numeric columns whose change is drawn (default: the four scores).
    facilities
        The new facilities (:func:`add_new_facilities`).
    perimeters
        Outlines to draw, by name.
    lang
        ``fr``, ``nl`` or ``en``.
    offline
        No tile layer (save with ``save_map(..., offline=True)``).
    k
        Classes on each side of 0.
    context
        Draw the light base map from the data folder
        (:func:`~bxlplan.exports.basemap.add_context`).
    data
        The data folder of the base map (default ``$BXLPLAN_DATA``).

    Returns
    -------
    folium.Map
        The map; save it with :func:`~bxlplan.exports.maps.save_map`.

    Raises
    ------
    DataError
        See :func:`cell_changes` and :func:`~bxlplan.exports.maps.make_map`.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> boxes = [shapely.box(150000 + 100 * i, 170000, 150100 + 100 * i, 170100)
    ...          for i in range(2)]
    >>> a = gpd.GeoDataFrame({"area_id": ["1", "2"], "score_overall": [50.0, 60.0]},
    ...     geometry=boxes, crs=31370)
    >>> m = change_map(a, a.assign(score_overall=[53.0, 55.0]), ["score_overall"],
    ...     context=False)
    >>> "bxlplan-change-legend" in m.get_root().render()
    True
    """
    check_lang(lang)
    columns = [c for c in columns if c in after.columns or c in before.columns]
    if not columns:
        raise DataError("none of the columns to compare is in the areas")
    change = cell_changes(before, after, columns)
    m = make_map(
        after, columns[0], before=before, perimeters=perimeters, lang=lang,
        offline=offline, context=context, data=data,
    )  # fmt: skip
    add_change_layers(m, change, columns, lang=lang, k=k)
    if facilities is not None and len(facilities):
        add_new_facilities(m, facilities, lang=lang)
    _control_last(m)
    return m


def comparison_map(
    cells: Mapping[str, gpd.GeoDataFrame],
    columns: Sequence[str] = SCORES,
    *,
    facilities: Mapping[str, gpd.GeoDataFrame] | None = None,
    perimeters: Mapping[str, gpd.GeoDataFrame] | None = None,
    lang: str = "fr",
    offline: bool = False,
    k: int = 3,
    context: bool = True,
    data: str | os.PathLike[str] | None = None,
) -> folium.Map:
    """Variants of one plan on the same areas: each variant after the first is drawn
    as its difference to the first (``B - A``, per area and column, in a diverging
    palette centred on 0), rather than as stacked polygons.

    Parameters
    ----------
    cells
        The same areas (``area_id``) assessed after each variant, by variant name,
        the reference variant first.
    columns
        The numeric columns compared (default: the four scores).
    facilities
        Each variant's new facilities, by variant name: one layer, each label
        starting with its variant.
    perimeters
        Outlines by name: give one per variant only where they differ.
    lang
        ``fr``, ``nl`` or ``en``.
    offline
        No tile layer (save with ``save_map(..., offline=True)``).
    k
        Classes on each side of 0.
    context
        Draw the light base map from the data folder
        (:func:`~bxlplan.exports.basemap.add_context`).
    data
        The data folder of the base map (default ``$BXLPLAN_DATA``).

    Returns
    -------
    folium.Map
        The map; save it with :func:`~bxlplan.exports.maps.save_map`.

    Raises
    ------
    DataError
        With fewer than two variants, or see :func:`cell_changes`.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> boxes = [shapely.box(150000 + 100 * i, 170000, 150100 + 100 * i, 170100)
    ...          for i in range(2)]
    >>> a = gpd.GeoDataFrame({"area_id": ["1", "2"], "score_overall": [50.0, 60.0]},
    ...     geometry=boxes, crs=31370)
    >>> m = comparison_map({"a": a, "b": a.assign(score_overall=[51.0, 58.0])},
    ...     ["score_overall"], lang="en", context=False)
    >>> "Difference (b − a)" in m.get_root().render()
    True
    """
    check_lang(lang)
    if len(cells) < 2:
        raise DataError("a comparison needs at least two variants")
    names = list(cells)
    ref = cells[names[0]]
    columns = [c for c in columns if c in ref.columns]
    if not columns:
        raise DataError("none of the columns to compare is in the areas")
    bounds = ref.to_crs(4326).total_bounds
    m = folium.Map(
        location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2],
        zoom_start=13, tiles=None if offline else "OpenStreetMap", control_scale=False,
    )  # fmt: skip
    m.options.update({"maxZoom": 19, "minZoom": 9})
    if context:
        # over tiles (online), only outlines and names, as make_map does
        add_context(m, data, lang, bounds=tuple(bounds), lines=offline)
    for i, other in enumerate(names[1:]):
        change = cell_changes(ref, cells[other], columns)
        add_change_layers(
            m, change, columns, lang=lang, variants=(names[0], other), k=k,
            show=0 if i == 0 else None,
        )  # fmt: skip
    add_outlines(m, perimeters or {}, lang=lang)
    # every variant's facilities in one layer, each label prefixed by its variant
    # (variants often put theirs at the same place: one label lists them all)
    new = [
        fac.to_crs(4326).assign(variant=str(name))
        for name, fac in (facilities or {}).items()
        if fac is not None and len(fac)
    ]
    if new:
        add_new_facilities(
            m, gpd.GeoDataFrame(pd.concat(new, ignore_index=True), crs=4326), lang=lang
        )
    folium.LayerControl(collapsed=True).add_to(m)
    m.add_child(_Sources(read_catalog_file("labels.yaml")["attribution"]))
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return m
