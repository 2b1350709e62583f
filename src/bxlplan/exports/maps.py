"""Interactive maps (folium): one layer of areas whose indicator is chosen in the
legend (the scores and the main indicators, each with its classes and unit), facility
layers, shortage zones and perimeters, on a light base map drawn from the data folder
(:mod:`.basemap`: communes and their names, main streets, rail, green, water,
neighbourhood names), with a layer control, a metric scale, keys for every symbol,
tooltips and popups in the map's language and the attribution of every source.

``offline=True`` makes one self-contained HTML file with no tile layer: Leaflet and its
plugins are inlined from the npm packages installed by the set-up step. Online, a tile
base map may be added (``basemap="osm"`` or ``"urbis"``). To keep files small,
geometries are simplified and coordinates rounded to 1e-5 degrees (~1 m); each area
carries only its names, its values (rounded numbers, formatted in the browser) and
short codes for its flags and the reasons of missing values (``layers/styles.yaml``
``map`` says which indicators, decimals and styles).

Text is data, never code. branca and folium render each element's output through Jinja
a second time (a rendered string becomes the source of a new ``jinja2.Template``), so
HTML escaping alone would let a place named ``{{ ... }}`` run Python. Every string that
reaches the page (names from OSM, user layers and scenario files, labels from the
catalog, layer names, legend, attribution) goes through :func:`html_text`: HTML-escaped,
with ``{``, ``}`` and ``%`` written as character references, so it shows as the same
text and no template delimiter can survive. Our own elements take their text as
template variables, never as template source, and :func:`save_map` refuses to render a
map in which any text still holds ``{{``, ``{%`` or ``{#``.
"""

from __future__ import annotations

import html
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import branca.colormap as cm
import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement, Template

from .._io import atomic_write, check_target
from ..errors import ConfigError, DataError
from ..indicators.registry import describe, resident_weighted
from ..loading.catalog import read_catalog_file
from ..loading.facilities import categories
from .basemap import BASEMAPS, add_basemap, add_context
from .labels import check_lang, column_label, ui
from .offline import inline_assets

__all__ = [
    "class_breaks",
    "class_palette",
    "html_text",
    "legend_rows",
    "make_map",
    "save_map",
]

NO_DATA = "#bdbdbd"
THEME_COLOURS = {
    "early_childhood": "#e377c2", "education": "#1f77b4", "health": "#d62728",
    "social": "#9467bd", "culture": "#8c564b", "sport": "#2ca02c", "shops": "#ff7f0e",
    "mobility": "#17becf", "green": "#3a7d44",
}  # fmt: skip
# classification schemes -> mapclassify class (imported when a map is classified: its
# import compiles numba code, ~6 s, which every CLI command would otherwise pay)
SCHEMES = {
    "quantiles": "Quantiles",
    "natural_breaks": "NaturalBreaks",
    "equal_interval": "EqualInterval",
}
# Jinja's delimiters: none may reach branca's second rendering pass from text
_DELIMITERS = ("{{", "{%", "{#")
_INERT = str.maketrans({"{": "&#123;", "}": "&#125;", "%": "&#37;"})


def html_text(value: Any) -> str:
    """Text as inert HTML: shown as the same text, never run as markup or template.

    HTML-escapes the text (``<``, ``>``, ``&``, quotes), then writes ``{``, ``}`` and
    ``%`` as the character references ``&#123;``, ``&#125;`` and ``&#37;``, so no
    Jinja delimiter (``{{``, ``{%``, ``{#``) survives into the page, where branca
    renders each element's output as a template again. Missing values give ``""``.

    Parameters
    ----------
    value
        Any value; it is converted with ``str``.

    Returns
    -------
    str
        HTML text to place in a tooltip, popup, legend, layer name or attribution.

    Examples
    --------
    >>> html_text("{{ 6*7 }} <b>")
    '&#123;&#123; 6*7 &#125;&#125; &lt;b&gt;'
    """
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return html.escape(str(value)).translate(_INERT)


def class_breaks(
    values: pd.Series, scheme: str = "quantiles", k: int = 5
) -> np.ndarray:
    """Upper bounds of the classes (mapclassify) of the finite values.

    Parameters
    ----------
    values
        The values to classify; missing and infinite values are left out.
    scheme
        ``quantiles``, ``natural_breaks`` or ``equal_interval`` (``--scheme``).
    k
        Number of classes (``--classes``), at least 1; fewer are made when there
        are fewer distinct values.

    Returns
    -------
    numpy.ndarray
        The upper bound of each class, ascending; empty when no value is finite.

    Raises
    ------
    ConfigError
        For an unknown scheme or fewer than one class.

    Examples
    --------
    >>> class_breaks(pd.Series([1.0, 2.0, 3.0, 4.0]), "equal_interval", k=2).tolist()
    [2.5, 4.0]
    >>> class_breaks(pd.Series([7.0, 7.0, None])).tolist()  # one value: one class
    [7.0]
    """
    if scheme not in SCHEMES:
        raise ConfigError(
            f"--scheme: unknown classification '{scheme}'; choose {', '.join(SCHEMES)}"
        )
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(
            f"--classes: the number of classes must be a whole number of at least 1, "
            f"got {k!r}; use for example --classes 5"
        )
    vals = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    vals = vals[np.isfinite(vals)]
    distinct = np.unique(vals)
    if len(distinct) <= 1:  # no value, or one: a single class (mapclassify refuses)
        return distinct
    with warnings.catch_warnings():
        # many equal values (e.g. shares of 100 %): mapclassify makes fewer classes,
        # which is what this function promises - not news for the user
        warnings.filterwarnings("ignore", message="Not enough unique values")
        import mapclassify

        classifier = getattr(mapclassify, SCHEMES[scheme])
        bins = classifier(vals, k=min(int(k), len(distinct))).bins
    return np.asarray(bins)


def class_palette(n: int) -> list[str]:
    """The colours of ``n`` classes (branca's YlGnBu), shared by the maps and the QGIS
    styles so that a layer looks the same in both.

    Parameters
    ----------
    n
        The number of classes.

    Returns
    -------
    list of str
        ``#rrggbbaa`` colours, from light yellow to dark blue.

    Examples
    --------
    >>> class_palette(2)
    ['#ffffd9ff', '#081d58ff']
    """
    colours = cm.linear.YlGnBu_09.scale(0, max(n - 1, 1))  # type: ignore[attr-defined]
    return [colours(i) for i in range(n)]


def _fmt(value: Any, unit: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if unit == "%":
        return f"{100 * float(value):.0f} %"
    if unit == "/100":
        return f"{float(value):.0f}"
    v = float(value)
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
    return f"{text} {unit}".strip()


def _light(
    gdf: gpd.GeoDataFrame, keep: list[str], tolerance: float
) -> gpd.GeoDataFrame:
    """Simplify (m, EPSG:31370), reproject, round coordinates, keep only ``keep``.

    Every column that is not numeric becomes inert HTML text (:func:`html_text`).
    """
    geoms = gdf.geometry.values
    if tolerance > 0:
        geoms = shapely.simplify(geoms, tolerance, preserve_topology=True)
    out = gpd.GeoDataFrame(
        gdf[keep].reset_index(drop=True), geometry=geoms, crs=gdf.crs
    ).to_crs(4326)
    out = out.set_geometry(shapely.set_precision(out.geometry.values, 1e-5))
    for col in keep:
        if not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].astype(object).map(html_text).astype(object)
    return out


class _Legend(MacroElement):
    """A fixed legend: its text is passed as template variables, never as source."""

    _template = Template(
        "{% macro html(this, kwargs) %}"
        '<div class="bxlplan-legend" style="position:fixed;bottom:24px;right:12px;'
        "z-index:9999;background:white;padding:8px 10px;border:1px solid #999;"
        'font:12px sans-serif"><b>{{ this.title }}</b>'
        "{% for colour, text in this.rows %}"
        '<div><span style="background:{{ colour }};width:14px;height:14px;'
        'display:inline-block;margin-right:6px;border:1px solid #555"></span>'
        "{{ text }}</div>"
        "{% endfor %}</div>"
        "{% endmacro %}"
    )

    def __init__(self, title: str, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self._name = "BxlplanLegend"
        self.title = html_text(title)
        self.rows = [(html_text(c), html_text(t)) for c, t in rows]


class _Attribution(MacroElement):
    """The sources, added to Leaflet's attribution control as a JSON string."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{{ this._parent.get_name() }}.attributionControl.addAttribution("
        "{{ this.text|tojson }});"
        "{% endmacro %}"
    )

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "BxlplanAttribution"
        self.text = html_text(text)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a nested value (dict keys too); geometries are skipped."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            if key not in ("geometry", "coordinates"):
                yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif hasattr(value, "js_code"):  # folium.JsCode
        yield str(value.js_code)


def _plain_inert(value: Any) -> bool:
    """Fast path for large data (the areas of a 100 m grid): a dict or list of plain
    JSON values whose JSON text holds no delimiter holds none in any string either
    (JSON syntax itself never writes ``{{``, ``{%`` or ``{#``)."""
    if not isinstance(value, dict | list):
        return False
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return not any(d in text for d in _DELIMITERS)


def _check_inert(m: Element) -> None:
    """Refuse a map in which any text could be read as Jinja source.

    branca renders each element's output as a new template, so a ``{{``, ``{%`` or
    ``{#`` in any attribute of any element (data, layer names, fields, labels) would
    be evaluated. :func:`make_map` writes all text with :func:`html_text`; this is
    the check that no path was missed.
    """
    skip = {"_parent", "_children", "_template", "_template_str", "_template_name"}
    stack, seen = [m.get_root()], set()
    while stack:
        element = stack.pop()
        if id(element) in seen:
            continue
        seen.add(id(element))
        stack.extend(element._children.values())
        for attr, value in vars(element).items():
            if attr in skip:
                continue
            if isinstance(value, Element):
                stack.append(value)
                continue
            if _plain_inert(value):
                continue
            for text in _strings(value):
                if any(d in text for d in _DELIMITERS):
                    raise DataError(
                        f"map element {element.get_name()} ({attr}) holds template "
                        f"syntax in {text[:80]!r}: bxlplan writes text from data with "
                        "exports.maps.html_text; pass any text you add to a map "
                        "through it"
                    )


def _with_names(areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if "area_id" not in areas:
        areas = areas.assign(area_id=areas.index.astype(str))
    for col in ("name_fr", "name_nl"):
        if col not in areas:
            areas = areas.assign(**{col: areas["area_id"]})
    return areas


def legend_rows(
    values: pd.Series, breaks: np.ndarray, palette: list[str], unit: str, lang: str
) -> list[tuple[str, str]]:
    """The rows (colour, text) of a class legend: each class from its lower to its
    upper bound, with the unit (``%``, ``m``...; a ``/100`` score gives numbers and
    its legend title the unit). A class whose bounds read the same (one area, equal
    values) shows that one value; missing values get a grey ``no data`` row.

    Parameters
    ----------
    values
        The values classified (missing and infinite ones are left out of classes).
    breaks, palette
        Upper bounds of the classes (:func:`class_breaks`) and their colours.
    unit
        The unit (registry): ``%`` for shares 0-1, ``/100``, ``m``, ``EUR``, ``""``.
    lang
        ``fr``, ``nl`` or ``en``.

    Returns
    -------
    list of (str, str)
        Plain text (not escaped): pass it through :func:`html_text` to show it.

    Examples
    --------
    >>> legend_rows(pd.Series([0.2, 0.5, 1.0]), np.array([0.5, 1.0]),
    ...             ["#fff", "#000"], "%", "en")
    [('#fff', '20 % – 50 %'), ('#000', '50 % – 100 %')]
    >>> legend_rows(pd.Series([1.0, 1.0, None]), np.array([1.0]), ["#fff"], "%", "fr")
    [('#fff', '100 %'), ('#bdbdbd', 'pas de donnée')]
    """
    vals = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    finite = vals[np.isfinite(vals)]
    rows = []
    lower = float(finite.min()) if len(finite) else 0.0
    for i, upper in enumerate(breaks):
        low, up = _fmt(lower, unit), _fmt(float(upper), unit)
        rows.append((palette[i], up if low == up else f"{low} – {up}"))
        lower = float(upper)
    if len(finite) < len(vals):
        rows.append((NO_DATA, ui("no_data", lang)))
    return rows


def _flag_codes(areas: pd.DataFrame) -> list[list[str]]:
    if "flags" not in areas:
        return [[] for _ in range(len(areas))]
    return [
        [c for c in str(f).split(";") if c] if isinstance(f, str) else []
        for f in areas["flags"]
    ]


def _uninhabited(areas: pd.DataFrame, codes: list[list[str]]) -> np.ndarray:
    flagged = np.array(
        [bool({"uninhabited", "small_population"} & set(c)) for c in codes], dtype=bool
    )
    if "inhabited" in areas:
        flagged |= ~areas["inhabited"].fillna(True).astype(bool).to_numpy()
    return flagged


def _reason(codes: list[str], column: str, weighted: set[str]) -> tuple[str, str]:
    """Why ``column`` has no value in an area with these flags: (ui key, category)."""
    by_residents = column in weighted or column.startswith("score_")
    for code in ("uninhabited", "small_population"):
        if code in codes and by_residents:
            return f"reason_{code}", ""
    if "landuse_unmapped" in codes and column.startswith("mix_landuse"):
        return "reason_landuse_unmapped", ""
    for code in codes:
        kind, _, cat = code.partition(":")
        if kind in ("missing", "partial") and f"_{cat}_" in f"{column}_":
            return f"reason_{kind}", cat
    return "reason_no_data", ""


def _flag_words(codes: list[str], lang: str) -> str:
    words = []
    for code in codes:
        kind, _, cat = code.partition(":")
        key = f"reason_{kind}"
        try:
            word = ui(key, lang)
        except KeyError:
            word = code
        words.append(word.format(category=_category_label(cat, lang)) if cat else word)
    return "; ".join(words)


def _map_settings() -> dict[str, Any]:
    return read_catalog_file("styles.yaml")["map"]


def _whole(column: str) -> bool:
    """Whether the column counts whole things (residents, dwellings): no decimals."""
    found = describe(column)
    return found is not None and found.unit in _map_settings().get("whole_units", [])


def _columns(
    areas: gpd.GeoDataFrame, indicator: str, indicators: list[str] | None
) -> tuple[list[str], list[str]]:
    """(switch, popup) columns: numeric columns the areas have, drawn one first."""
    cfg = _map_settings()
    wanted = cfg["indicators"] if indicators is None else list(indicators)
    switch = [indicator]
    for col in wanted:
        if col not in switch and col in areas:
            if not pd.api.types.is_numeric_dtype(areas[col]):
                raise DataError(
                    f"column '{col}' is not numeric: it cannot be mapped as a "
                    "choropleth; leave it out of indicators="
                )
            switch.append(col)
    popup = [c for c in cfg.get("popup", []) if c in areas and c not in switch]
    popup = [c for c in popup if pd.api.types.is_numeric_dtype(areas[c])]
    return switch, popup


def _area_data(
    areas: gpd.GeoDataFrame, columns: list[str], lang: str, tol: float,
    reasons: list[str], flag_texts: list[str],
) -> dict[str, Any]:  # fmt: skip
    """The areas as light GeoJSON: ``n`` the name in the map's language, ``o`` the
    other one (inert HTML), ``v`` the values of ``columns`` (rounded; ``null`` when
    missing), ``x`` why a value is missing (index into ``reasons``, which grows),
    ``u`` 1 for an uninhabited area, ``f`` its flags in words (index into
    ``flag_texts``)."""
    areas = _with_names(areas)
    main = "name_nl" if lang == "nl" else "name_fr"
    other = "name_fr" if lang == "nl" else "name_nl"
    data = _light(areas, [main, other], tol)
    decimals = _map_settings()["decimals"]
    codes = _flag_codes(areas)
    empty = _uninhabited(areas, codes)
    weighted = set(resident_weighted(columns))
    vals = []
    for col in columns:
        unit = column_label(col, lang)[1]
        places = 0 if _whole(col) else int(decimals.get(unit, 2))
        x = pd.to_numeric(areas[col], errors="coerce").to_numpy(dtype=float)
        x = np.round(x, places)
        vals.append([float(v) if np.isfinite(v) else None for v in x])
    features = []
    memo: dict[str, tuple[list[int], int | None]] = {}
    flag_keys = [";".join(c) for c in codes]
    # plain lists: a column of a frame with provenance attrs is deep-copied per access
    names, others = data[main].tolist(), data[other].tolist()
    geoms = shapely.to_geojson(data.geometry.values)
    for i, geom in enumerate(geoms):
        v = [col_vals[i] for col_vals in vals]
        props: dict[str, Any] = {"n": names[i], "v": v}
        if others[i] != names[i]:
            props["o"] = others[i]
        known = memo.get(flag_keys[i])
        if known is None:  # once per distinct set of flags
            known = memo[flag_keys[i]] = _explain(codes[i], columns, weighted, lang,
                                                  reasons, flag_texts)  # fmt: skip
        why, words = known
        missing = {str(j): why[j] for j, value in enumerate(v) if value is None}
        if missing:
            props["x"] = missing
        if empty[i]:
            props["u"] = 1
        if words is not None:
            props["f"] = words
        features.append(
            {
                "type": "Feature",
                "geometry": None if geom is None else json.loads(geom),
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _explain(
    codes: list[str], columns: list[str], weighted: set[str], lang: str,
    reasons: list[str], flag_texts: list[str],
) -> tuple[list[int], int | None]:  # fmt: skip
    """For an area with these flags: the reason (index into ``reasons``) each column
    would be missing for, and its flags in words (index into ``flag_texts``)."""
    why = []
    for col in columns:
        key, cat = _reason(codes, col, weighted)
        text = ui(key, lang)
        text = html_text(
            text.format(category=_category_label(cat, lang)) if cat else text
        )
        if text not in reasons:
            reasons.append(text)
        why.append(reasons.index(text))
    if not codes:
        return why, None
    words = html_text(_flag_words(codes, lang))
    if words not in flag_texts:
        flag_texts.append(words)
    return why, flag_texts.index(words)


# The areas layer and its indicator switch (static code: the data come as JSON).
# Every text it places in the page was written with html_text in Python; numbers
# are formatted here, in the map's language.
_CHOROPLETH_JS = """
window.bxlplanChoropleth = function (map, spec) {
  var cur = spec.cur, layers = [], legend;
  // uninhabited areas hatched (SVG maps; a canvas, for large grids, draws them plain)
  var hatch = !map.options.preferCanvas;
  if (hatch && !document.getElementById('bxlplan-hatch')) {
    var u = spec.styles.uninhabited, ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('width', '0'); svg.setAttribute('height', '0');
    svg.style.position = 'absolute';
    var pattern = document.createElementNS(ns, 'pattern');
    pattern.id = 'bxlplan-hatch';
    pattern.setAttribute('patternUnits', 'userSpaceOnUse');
    pattern.setAttribute('width', '6'); pattern.setAttribute('height', '6');
    pattern.setAttribute('patternTransform', 'rotate(45)');
    var rect = document.createElementNS(ns, 'rect');
    rect.setAttribute('width', '6'); rect.setAttribute('height', '6');
    rect.setAttribute('fill', u.fillColor);
    var line = document.createElementNS(ns, 'line');
    line.setAttribute('x1', '0'); line.setAttribute('y1', '0');
    line.setAttribute('x2', '0'); line.setAttribute('y2', '6');
    line.setAttribute('stroke', u.color); line.setAttribute('stroke-width', '1.5');
    pattern.appendChild(rect); pattern.appendChild(line);
    var defs = document.createElementNS(ns, 'defs');
    defs.appendChild(pattern); svg.appendChild(defs); document.body.appendChild(svg);
  }
  function fmt(v, col) {
    var loc = spec.locale, t;
    if (col.kind === 'share') return Math.round(100 * v).toLocaleString(loc) + ' ' + col.unit;
    if (col.kind === 'score' || col.kind === 'whole' || Math.abs(v) >= 100) {
      t = Math.round(v).toLocaleString(loc);
    } else {
      t = v.toLocaleString(loc, {minimumFractionDigits: 2, maximumFractionDigits: 2});
    }
    return col.unit ? t + ' ' + col.unit : t;
  }
  function text(p, c) {
    var v = p.v[c];
    if (v !== null) return fmt(v, spec.cols[c]);
    var r = (p.x && p.x[c] !== undefined) ? spec.reasons[p.x[c]] : spec.words.no_data;
    return spec.words.na + ' (' + r + ')';
  }
  function style(f) {
    var p = f.properties, ind = spec.ind[cur], v = p.v[ind.col], s = {}, k;
    if (v === null && p.u) {
      for (k in spec.styles.uninhabited) s[k] = spec.styles.uninhabited[k];
      if (hatch) s.fillColor = 'url(#bxlplan-hatch)';
      return s;
    }
    s.color = spec.styles.outline.color; s.weight = spec.styles.outline.weight;
    s.dashArray = null; s.fillOpacity = spec.styles.opacity;
    if (v === null || !ind.breaks.length) { s.fillColor = spec.styles.no_data; return s; }
    var i = 0;
    while (i < ind.breaks.length - 1 && v > ind.breaks[i]) i++;
    s.fillColor = ind.palette[i];
    return s;
  }
  function tooltip(l) {
    var p = l.feature.properties, c = spec.ind[cur].col;
    return '<b>' + p.n + '</b><br>' + spec.cols[c].label + ': ' + text(p, c);
  }
  function popup(l) {
    var p = l.feature.properties, h = '<div class="bxlplan-popup"><b>' + p.n + '</b>';
    if (p.o) h += '<br>' + p.o;
    h += '<table>';
    spec.pop.forEach(function (c) {
      h += '<tr><th>' + spec.cols[c].label + '</th><td>' + text(p, c) + '</td></tr>';
    });
    h += '</table>';
    if (p.f !== undefined) h += '<div>' + spec.words.flags + ': ' + spec.flags[p.f] + '</div>';
    return h + '</div>';
  }
  function swatch(kind, colour) {
    var css = 'display:inline-block;width:14px;height:14px;margin-right:6px;' +
      'vertical-align:middle;border:1px solid #555;background:' + colour;
    if (kind === 'point') css += ';border-radius:50%;width:10px;height:10px';
    if (kind === 'empty' && hatch) css += ';background:repeating-linear-gradient(45deg,' +
      spec.styles.uninhabited.color + ' 0 1.5px,' + colour + ' 1.5px 5px)';
    if (kind === 'line') css = 'display:inline-block;width:16px;height:0;' +
      'margin-right:6px;vertical-align:middle;border-top:2px dashed ' + colour;
    return '<span style="' + css + '"></span>';
  }
  function classes() {
    var ind = spec.ind[cur], h = '<b>' + ind.title + '</b><div class="bxlplan-scheme">' +
      spec.words.scheme + '</div>';
    ind.rows.forEach(function (r) {
      h += '<div>' + swatch(r[2] || 'fill', r[0]) + r[1] + '</div>';
    });
    return h;
  }
  function restyle() {
    layers.forEach(function (l) { l.setStyle(style); });
    legend.querySelector('.bxlplan-classes').innerHTML = classes();
  }
  var control = L.control({position: 'bottomright'});
  control.onAdd = function () {
    var div = L.DomUtil.create('div', 'bxlplan-legend'), h = '';
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    if (spec.ind.length > 1) {
      h += '<label>' + spec.words.indicator + '<br><select class="bxlplan-switch">';
      spec.ind.forEach(function (d, i) {
        h += '<option value="' + i + '"' + (i === cur ? ' selected' : '') + '>' +
          spec.cols[d.col].label + '</option>';
      });
      h += '</select></label>';
    }
    h += '<div class="bxlplan-classes"></div><div class="bxlplan-choosers"></div>';
    var open = false;
    spec.keys.forEach(function (r) {
      if (r[2] === 'group') {
        h += (open ? '</details>' : '') + '<details><summary>' + r[1] + '</summary>';
        open = true;
      } else h += '<div>' + swatch(r[2], r[0]) + r[1] + '</div>';
    });
    if (open) h += '</details>';
    div.innerHTML = h;
    legend = div;
    var select = div.querySelector('select');
    if (select) select.addEventListener('change', function () {
      cur = parseInt(select.value, 10); restyle();
    });
    div.querySelector('.bxlplan-classes').innerHTML = classes();
    return div;
  };
  control.addTo(map);
  L.control.scale({imperial: false, metric: true, maxWidth: 160}).addTo(map);
  return {
    chooser: function (title, none, options) {
      var box = L.DomUtil.create('div', 'bxlplan-chooser',
        legend.querySelector('.bxlplan-choosers'));
      var h = '<label>' + title + '<br><select><option value="-1">' + none + '</option>';
      options.forEach(function (o, i) {
        h += '<option value="' + i + '">' + o[0] + '</option>';
      });
      box.innerHTML = h + '</select></label>';
      var select = box.querySelector('select');
      select.addEventListener('change', function () {
        var i = parseInt(select.value, 10);
        options.forEach(function (o) { map.removeLayer(o[1]); });
        if (i >= 0) map.addLayer(options[i][1]);
      });
    },
    layer: function (data) {
      var l = L.geoJSON(data, {style: style, onEachFeature: function (f, x) {
        x.bindTooltip(tooltip, {sticky: true}); x.bindPopup(popup, {maxWidth: 360, maxHeight: 420});
      }});
      layers.push(l);
      return l;
    }
  };
};
"""

_LEGEND_CSS = (
    ".bxlplan-legend{background:#fff;padding:8px 10px;border:1px solid #999;"
    "font:12px sans-serif;max-width:260px;max-height:70vh;overflow-y:auto}"
    ".bxlplan-legend select{max-width:240px;margin:2px 0 6px}"
    ".bxlplan-chooser{margin-top:4px}"
    ".bxlplan-scheme{color:#555;font-size:11px;margin-bottom:2px}"
    ".bxlplan-popup th{text-align:left;font-weight:normal;padding-right:8px}"
    ".bxlplan-popup td{text-align:right;white-space:nowrap}"
    ".bxlplan-legend summary{cursor:pointer;margin-top:4px}"
    # the sources wrap in the right corner, leaving the scale (bottom left) visible
    ".leaflet-control-attribution{max-width:55vw}"
)


class _Choropleth(MacroElement):
    """The indicator switch, its legend and the metric scale; the areas layers
    (:class:`_AreasLayer`) register with it. Texts and data are template variables
    (JSON), never template source."""

    _template = Template(
        "{% macro header(this, kwargs) %}<style>{{ this.css }}</style>"
        "<script>{{ this.code }}</script>{% endmacro %}"
        "{% macro script(this, kwargs) %}"
        "var {{ this.get_name() }} = window.bxlplanChoropleth("
        "{{ this._parent.get_name() }}, {{ this.spec|tojson }});"
        "{% endmacro %}"
    )

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self._name = "BxlplanChoropleth"
        self.spec = spec
        self.css = _LEGEND_CSS
        self.code = _CHOROPLETH_JS


class _AreasLayer(folium.map.Layer):
    """One layer of areas drawn by a :class:`_Choropleth` (listed in the layer
    control: before and after a change are two of them)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "var {{ this.get_name() }} = {{ this.engine }}.layer({{ this.data|tojson }});"
        "{% endmacro %}"
    )

    def __init__(
        self, data: dict[str, Any], engine: str, name: str, show: bool
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "BxlplanAreas"
        self.data = data
        self.engine = engine


def _keys(
    shortage: gpd.GeoDataFrame | None, facilities: gpd.GeoDataFrame | None,
    perimeters: dict[str, gpd.GeoDataFrame] | None, lang: str,
) -> list[list[str]]:  # fmt: skip
    """Legend rows for the shortage zones, facility markers and perimeters drawn."""
    symbols = read_catalog_file("styles.yaml")["symbols"]
    keys = []
    if shortage is not None and len(shortage):
        keys.append([symbols["shortage"]["fill"], ui("legend_shortage", lang), "fill"])
    if perimeters:
        keys.append([symbols["perimeter"], ui("legend_perimeter", lang), "line"])
    if facilities is not None and len(facilities) and "category" in facilities:
        keys.append(["", ui("legend_facilities", lang), "group"])
        for cat in sorted(_point_categories(facilities)):
            keys.append([_facility_colour(cat), _category_label(cat, lang), "point"])
    return [[html_text(c), html_text(t), k] for c, t, k in keys]


def make_map(
    areas: gpd.GeoDataFrame,
    indicator: str = "score_overall",
    *,
    shortage: gpd.GeoDataFrame | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    perimeters: dict[str, gpd.GeoDataFrame] | None = None,
    lang: str = "fr",
    offline: bool = False,
    scheme: str = "quantiles",
    k: int = 5,
    simplify_m: float | None = None,
    before: gpd.GeoDataFrame | None = None,
    indicators: list[str] | None = None,
    context: bool = True,
    data: str | os.PathLike[str] | None = None,
    basemap: str | None = None,
) -> folium.Map:
    """Build the map (see the module docstring).

    One layer of areas; a switch in the legend changes the indicator drawn between
    ``indicator`` and the main indicators (each with its legend and unit). Tooltips
    give the name and the value drawn; popups the population, the scores and key
    sub-indicators with units, the flags in words and ``n/a (reason)`` where a value
    is missing. Areas flagged uninhabited are drawn hatched (light grey on the canvas
    of large maps), never as low values. A light base map (:func:`~bxlplan.exports.basemap.add_context`)
    is drawn from the data folder; a metric scale, a legend for the shortage zones,
    facilities and perimeters shown, and the sources.

    Parameters
    ----------
    areas
        Scored areas (``assess(...).areas`` or the ``areas`` layer of assessment.gpkg).
    indicator
        The column drawn first (a numeric column).
    shortage
        Shortage zones: ``category``, ``threshold_m`` (optional) and a geometry each.
    facilities
        Facility points: ``category`` and ``name`` (optional).
    perimeters
        Outlines to draw, by name (a pole, a scenario).
    lang
        ``fr``, ``nl`` or ``en``: labels, legends, names and numbers.
    offline
        No tile layer: with :func:`save_map` ``offline=True``, one self-contained
        file that never touches the network.
    scheme, k
        mapclassify classification (``quantiles``, ``natural_breaks``,
        ``equal_interval``) and number of classes (at least 1).
    simplify_m
        Simplification tolerance in metres (default: 2 m, 5 m above 1,000 areas).
    before
        The same areas before a change (a scenario): drawn as a second layer with the
        same classes, to toggle against ``areas`` (after) in the layer control.
    indicators
        The columns of the switch after ``indicator`` (default: ``map.indicators`` of
        ``layers/styles.yaml``, those the areas have); ``[]`` for none.
    context
        Draw the base map from the data folder (when there is one).
    data
        The data folder of the base map (default ``$BXLPLAN_DATA``); without one the
        map is drawn without it and a log line says so.
    basemap
        ``osm``, ``urbis`` or ``none``: tiles, which need network access (default
        ``osm`` online, ``none`` offline; an offline map cannot have them).

    Returns
    -------
    folium.Map
        The map; every text in it is inert HTML (:func:`html_text`).

    Raises
    ------
    DataError
        For an indicator the areas lack or that is not numeric.
    ConfigError
        For an unknown scheme, language or base map, fewer than 1 class, or tiles
        asked for an offline map.

    Examples
    --------
    >>> import shapely
    >>> areas = gpd.GeoDataFrame(
    ...     {"name_fr": ["Un", "Deux"], "score_overall": [40.0, None],
    ...      "flags": ["", "uninhabited"]},
    ...     geometry=[shapely.box(150000, 170000, 150500, 170500),
    ...               shapely.box(150500, 170000, 151000, 170500)], crs=31370)
    >>> m = make_map(areas, lang="en", offline=True, context=False)
    >>> "n/a" in m.get_root().render()
    True
    >>> make_map(areas, "population_est")
    Traceback (most recent call last):
    ...
    bxlplan.errors.DataError: no column 'population_est' in the areas; choose one of: score_overall
    """
    check_lang(lang)
    if indicator not in areas:
        raise DataError(
            f"no column '{indicator}' in the areas; choose one of: "
            + ", ".join(
                c
                for c in areas.columns
                if c.startswith(("score_", "access_", "mix_", "social_"))
            )
        )
    if not pd.api.types.is_numeric_dtype(areas[indicator]):
        raise DataError(
            f"column '{indicator}' is not numeric: it cannot be mapped as a choropleth"
        )
    if before is not None and indicator not in before:
        raise DataError(f"no column '{indicator}' in the areas before the change")
    if basemap is None:
        basemap = "none" if offline else "osm"
    if offline and basemap != "none":
        raise ConfigError(
            f"--basemap {basemap}: tiles need network access and an offline map never "
            "loads anything; drop --offline, or use --basemap none (the offline map "
            "draws its own base map from the data folder)"
        )
    if basemap not in BASEMAPS:
        raise ConfigError(
            f"--basemap: unknown base map '{basemap}'; choose {', '.join(BASEMAPS)}"
        )
    switch, extra = _columns(areas, indicator, indicators)
    if before is not None:
        switch = [c for c in switch if c in before]
        extra = [c for c in extra if c in before]
    columns = switch + extra
    breaks_of = {}
    for col in switch:
        both = areas[col] if before is None else pd.concat([areas[col], before[col]])
        breaks_of[col] = (both, class_breaks(both, scheme, k))
    tol = simplify_m if simplify_m is not None else (5.0 if len(areas) > 1000 else 2.0)
    cfg = _map_settings()

    bounds = areas.to_crs(4326).total_bounds
    m = folium.Map(
        location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2],
        zoom_start=12, tiles=None, control_scale=False,
        prefer_canvas=len(areas) > 2000,
    )  # fmt: skip
    # without tiles Leaflet has no zoom range; marker clusters need one
    m.options.update({"maxZoom": 19, "minZoom": 9})
    tiles = add_basemap(m, basemap, lang)
    if context:
        add_context(m, data, lang, bounds=tuple(bounds), lines=not tiles)

    reasons: list[str] = []
    flag_texts: list[str] = []
    layers = [(areas, ui("areas", lang), True)]
    if before is not None:
        layers = [
            (before, f"{ui('areas', lang)} ({ui('before', lang)})", False),
            (areas, f"{ui('areas', lang)} ({ui('after', lang)})", True),
        ]
    datasets = [
        (_area_data(g, columns, lang, tol, reasons, flag_texts), name, show)
        for g, name, show in layers
    ]
    empty_both = np.concatenate(
        [
            _uninhabited(g, _flag_codes(g))
            for g in ([areas] if before is None else [areas, before])
        ]
    )
    any_empty = any(
        "u" in f["properties"] for d, _, _ in datasets for f in d["features"]
    )
    ind = []
    for col in switch:
        label, unit = column_label(col, lang)
        values, breaks = breaks_of[col]
        palette = class_palette(len(breaks))
        # a value missing because the area is uninhabited has its own row
        shown = values[~(values.isna().to_numpy() & empty_both)]
        rows = [[html_text(c), html_text(t)] for c, t in
                legend_rows(shown, breaks, palette, unit, lang)]  # fmt: skip
        if any_empty:
            rows.append([html_text(cfg["uninhabited"]["fillColor"]),
                         html_text(ui("uninhabited", lang)), "empty"])  # fmt: skip
        title = f"{label} ({unit})" if unit else label
        ind.append({
            "col": columns.index(col), "title": html_text(title), "rows": rows,
            "breaks": [float(b) for b in breaks], "palette": palette,
        })  # fmt: skip
    cols = []
    for col in columns:
        label, unit = column_label(col, lang)
        # how the browser formats it: a share 0-1 as a percentage, a score or a
        # count of whole things without decimals (the unit is shown as it is)
        kind = {"%": "share", "/100": "score"}.get(unit, "whole" if _whole(col) else "")
        cols.append({"label": html_text(label), "unit": html_text(unit), "kind": kind})
    spec = {
        "cur": 0, "ind": ind, "cols": cols,
        "pop": [columns.index(c) for c in extra] + list(range(len(switch))),
        "reasons": reasons, "flags": flag_texts,
        "keys": _keys(shortage, facilities, perimeters, lang),
        "locale": html_text(cfg["locale"][lang]),
        "styles": {
            "no_data": NO_DATA, "opacity": float(cfg["fill_opacity"]),
            "outline": {k: html_text(v) if isinstance(v, str) else v
                        for k, v in cfg["outline"].items()},
            "uninhabited": {k: html_text(v) if isinstance(v, str) else v
                            for k, v in cfg["uninhabited"].items()},
        },
        "words": {
            w: html_text(ui(w, lang)) for w in ("na", "flags", "indicator", "no_data")
        } | {"scheme": html_text(ui(f"scheme_{scheme}", lang))},
    }  # fmt: skip
    engine = _Choropleth(spec)
    m.add_child(engine)
    for d, name, show in datasets:
        m.add_child(_AreasLayer(d, engine.get_name(), html_text(name), show))

    # categories of zones and facilities are chosen in the legend, one at a time,
    # instead of crowding the layer control with one entry each
    none = html_text(ui("none_shown", lang))
    if shortage is not None and len(shortage):
        zones = _add_shortage(m, shortage, lang)
        m.add_child(
            _Chooser(engine.get_name(), html_text(ui("shortage", lang)), none, zones)
        )
    if facilities is not None and len(facilities):
        points = _add_facilities(m, facilities, lang)
        m.add_child(
            _Chooser(engine.get_name(), html_text(ui("facilities", lang)), none, points)
        )
    perimeter_colour = read_catalog_file("styles.yaml")["symbols"]["perimeter"]
    for name, gdf in (perimeters or {}).items():
        outline = _light(gdf.assign(perimeter=str(name)), ["perimeter"], 5.0)
        folium.GeoJson(
            outline.__geo_interface__, name=html_text(f"{ui('perimeters', lang)}: {name}"),
            style_function=lambda _f: {"fill": False, "color": perimeter_colour, "weight": 2, "dashArray": "6 4"},
        ).add_to(m)  # fmt: skip
    folium.LayerControl(collapsed=True).add_to(m)
    m.add_child(_Attribution(read_catalog_file("labels.yaml")["attribution"]))
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    _check_inert(m)
    return m


def _category_label(cat: Any, lang: str) -> str:
    """The catalog label of a facility category; the category itself if unknown."""
    info = categories().get(cat, {}) if isinstance(cat, str) else {}
    return str(info.get("label", {}).get(lang, cat))


def _beyond(threshold: Any) -> str:
    """`` (> 800 m)`` for a zone's walking threshold; empty when it is missing."""
    if threshold is None:
        return ""
    try:
        metres = float(threshold)
    except (TypeError, ValueError):
        return f" (> {threshold} m)"
    return f" (> {metres:.0f} m)" if np.isfinite(metres) else ""


def _add_shortage(
    m: folium.Map, shortage: gpd.GeoDataFrame, lang: str
) -> list[tuple[str, str]]:
    """One hidden layer per category of shortage zone; returns (label, JS name) of
    each, for the chooser in the legend."""
    if "category" not in shortage:
        raise DataError(
            "the shortage zones have no 'category' field: give each zone the "
            "facility category it lacks"
        )
    symbol = read_catalog_file("styles.yaml")["symbols"]["shortage"]  # as in QGIS
    fill, opacity = symbol["fill"], float(symbol["opacity"])
    chosen = []
    for row in shortage.itertuples():
        beyond = _beyond(getattr(row, "threshold_m", None))
        zone = _light(
            gpd.GeoDataFrame(
                {"category": [row.category]}, geometry=[row.geometry], crs=shortage.crs
            ),
            ["category"],
            5.0,
        )
        label = f"{_category_label(row.category, lang)}{beyond}"
        layer = folium.GeoJson(
            zone.__geo_interface__, name=html_text(f"{ui('shortage', lang)}: {label}"),
            show=False, control=False,
            style_function=lambda _f: {"fillColor": fill, "color": fill, "weight": 0.5, "fillOpacity": opacity},
        ).add_to(m)  # fmt: skip
        chosen.append((html_text(label), layer.get_name()))
    return chosen


def _points(facilities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The facility points drawn (green spaces are areas, drawn by the base map)."""
    if "facility_id" in facilities:
        return facilities[
            ~facilities["facility_id"].astype(str).str.startswith("green:")
        ]
    return facilities


def _point_categories(facilities: gpd.GeoDataFrame) -> list[Any]:
    return list(_points(facilities)["category"].dropna().unique())


def _facility_colour(cat: Any) -> str:
    """The category's colour (``symbols.facilities`` of styles.yaml, as in QGIS),
    else its theme's."""
    own = read_catalog_file("styles.yaml")["symbols"].get("facilities", {})
    if isinstance(cat, str) and cat in own:
        return str(own[cat])
    info = categories().get(cat, {}) if isinstance(cat, str) else {}
    return THEME_COLOURS.get(info.get("theme", ""), "#333")


def _add_facilities(
    m: folium.Map, facilities: gpd.GeoDataFrame, lang: str
) -> list[tuple[str, str]]:
    """One hidden clustered layer per category (green spaces are drawn as areas by
    the base map); returns (label, JS name) of each, for the chooser in the legend."""
    if "category" not in facilities:
        raise DataError(
            "the facilities have no 'category' field: give each facility its category"
        )
    pts = _points(facilities).to_crs(4326)
    chosen = []
    for cat, group in pts.groupby("category"):
        colour = html_text(_facility_colour(cat))
        cat_label = _category_label(cat, lang)
        names = (
            group["name"].where(group["name"].notna(), cat_label)
            if "name" in group
            else pd.Series(cat_label, index=group.index)
        )
        rows = [
            [round(y, 5), round(x, 5), html_text(n)]
            for x, y, n in zip(group.geometry.x, group.geometry.y, names, strict=True)
        ]
        callback = (
            "function (row) { var m = L.circleMarker(new L.LatLng(row[0], row[1]), "
            f"{{radius: 5, color: '{colour}', weight: 1, fillOpacity: 0.8}}); "
            "m.bindTooltip(row[2]); return m; }"
        )
        group = folium.FeatureGroup(
            name=html_text(f"{ui('facilities', lang)}: {cat_label}"),
            show=False,
            control=False,
        )
        folium.plugins.FastMarkerCluster(rows, callback=callback, control=False).add_to(
            group
        )
        group.add_to(m)
        chosen.append((html_text(cat_label), group.get_name()))
    return chosen


class _Chooser(MacroElement):
    """A list in the legend that shows one of several hidden layers (a category of
    shortage zones, of facilities) instead of one layer-control entry each. Labels
    are inert HTML; layer names are the JS names folium gave them."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{{ this.engine }}.chooser({{ this.title|tojson }}, {{ this.none|tojson }}, ["
        "{% for label, name in this.options %}[{{ label|tojson }}, {{ name }}],"
        "{% endfor %}]);"
        "{% endmacro %}"
    )

    def __init__(
        self, engine: str, title: str, none: str, options: list[tuple[str, str]]
    ) -> None:
        super().__init__()
        self._name = "BxlplanChooser"
        self.engine = engine
        self.title = title
        self.none = none
        for _, name in options:
            if not name.replace("_", "").isalnum():
                raise DataError(f"not a JavaScript name: {name!r}")
        self.options = options


def save_map(
    m: folium.Map, path: str | Path, *, offline: bool = False, overwrite: bool = False
) -> Path:
    """Write the map as one HTML file (self-contained with ``offline=True``), atomically.

    Parameters
    ----------
    m
        The map (:func:`make_map`, or any folium map).
    path
        The HTML file to write.
    offline
        Inline Leaflet and its plugins; refuse a page that would still load anything
        from the network.
    overwrite
        Replace an existing file (refused otherwise).

    Returns
    -------
    pathlib.Path
        The file written (never half-written: it appears whole or not at all).

    Raises
    ------
    DataError
        For a map in which some text holds template syntax (see :func:`html_text`),
        before anything is rendered or written.
    BxlplanError
        For an existing file without ``overwrite``, or an offline page that would
        load something from the network.

    Examples
    --------
    >>> import tempfile, shapely
    >>> areas = gpd.GeoDataFrame({"score_overall": [50.0]},
    ...     geometry=[shapely.box(150000, 170000, 150500, 170500)], crs=31370)
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = save_map(make_map(areas, offline=True, context=False),
    ...                 folder / "map.html", offline=True)
    >>> 'src="http' in path.read_text()  # Leaflet is inlined
    False
    """
    path = Path(path)
    check_target(path, overwrite)
    _check_inert(m)
    page = m.get_root().render()
    if offline:
        page = inline_assets(page)
    atomic_write(path, page.encode("utf-8"))
    return path
