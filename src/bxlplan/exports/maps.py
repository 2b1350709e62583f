"""Interactive maps (folium): a choropleth of a score or indicator, facility layers,
shortage zones and perimeters, with a layer control, a legend, bilingual tooltips and
the attribution of every source.

``offline=True`` makes one self-contained HTML file with no tile layer: Leaflet and its
plugins are inlined from the npm packages installed by the set-up step. To keep files
small, geometries are simplified and coordinates rounded to 1e-5 degrees (~1 m), and only
the properties shown are kept.

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
from ..loading.catalog import read_catalog_file
from ..loading.facilities import categories
from .labels import column_label, ui
from .offline import inline_assets

__all__ = ["class_breaks", "html_text", "make_map", "save_map"]

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
    styles so that a layer looks the same in both."""
    colours = cm.linear.YlGnBu_09.scale(0, max(n - 1, 1))
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


def _choropleth_data(
    areas: gpd.GeoDataFrame, indicator: str, scores: list[str], breaks: np.ndarray,
    palette: list[str], unit: str, lang: str, tol: float,
) -> gpd.GeoDataFrame:  # fmt: skip
    """Light GeoJSON-ready areas with their fill colour and formatted values.

    Properties: ``area_id``, ``name_fr``, ``name_nl`` (inert HTML text), ``fill``,
    ``value`` (the indicator with its unit) and each score column, formatted.
    """
    data = _light(areas, ["area_id", "name_fr", "name_nl"], tol)
    values = pd.to_numeric(areas[indicator], errors="coerce").to_numpy(dtype=float)
    cls = np.searchsorted(breaks, values, side="left")
    data["fill"] = [
        NO_DATA if not np.isfinite(v) else palette[min(c, len(palette) - 1)]
        for v, c in zip(values, cls, strict=True)
    ]
    # values shown in tooltips and popups, formatted with their units
    data["value"] = [html_text(_fmt(v, unit) or ui("no_data", lang)) for v in values]
    for col in scores:
        s_unit = column_label(col, lang)[1]
        data[col] = [html_text(_fmt(v, s_unit)) for v in areas[col]]
    return data


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
) -> folium.Map:
    """Build the map (see the module docstring).

    Parameters
    ----------
    areas
        Scored areas (``assess(...).areas`` or the ``areas`` layer of assessment.gpkg).
    indicator
        The column drawn as a choropleth.
    shortage
        Shortage zones: ``category``, ``threshold_m`` (optional) and a geometry each.
    facilities
        Facility points: ``category`` and ``name`` (optional).
    perimeters
        Outlines to draw, by name (a pole, a scenario).
    scheme, k
        mapclassify classification (``quantiles``, ``natural_breaks``,
        ``equal_interval``) and number of classes (at least 1).
    simplify_m
        Simplification tolerance in metres (default: 2 m, 5 m above 1,000 areas).
    before
        The same areas before a change (a scenario): drawn as a second layer with the
        same classes, to toggle against ``areas`` (after) in the layer control.

    Returns
    -------
    folium.Map
        The map; every text in it is inert HTML (:func:`html_text`).
    """
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
    label, unit = column_label(indicator, lang)
    tol = simplify_m if simplify_m is not None else (5.0 if len(areas) > 1000 else 2.0)
    name_col = f"name_{lang}" if f"name_{lang}" in areas else "name_fr"
    areas = _with_names(areas)
    scores = [
        c
        for c in (
            "score_overall",
            "score_diversity",
            "score_social_mix",
            "score_services",
        )
        if c in areas and c != indicator
    ]
    both = (
        areas[indicator]
        if before is None
        else pd.concat([areas[indicator], before[indicator]])
    )
    breaks = class_breaks(both, scheme, k)
    palette = class_palette(len(breaks))

    bounds = areas.to_crs(4326).total_bounds
    m = folium.Map(
        location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2],
        zoom_start=12, tiles=None if offline else "OpenStreetMap", control_scale=True,
        prefer_canvas=len(areas) > 2000,
    )  # fmt: skip
    # without tiles Leaflet has no zoom range; marker clusters need one
    m.options.update({"maxZoom": 19, "minZoom": 9})
    layers = [(areas, label, True)]
    if before is not None:
        layers = [
            (_with_names(before), f"{label} ({ui('before', lang)})", False),
            (areas, f"{label} ({ui('after', lang)})", True),
        ]
    score_labels = [html_text(column_label(c, lang)[0]) for c in scores]
    for gdf, name, show in layers:
        data = _choropleth_data(
            gdf, indicator, scores, breaks, palette, unit, lang, tol
        )
        folium.GeoJson(
            data.__geo_interface__, name=html_text(name), show=show,
            style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#555", "weight": 0.4, "fillOpacity": 0.75},
            tooltip=folium.GeoJsonTooltip(fields=[name_col, "value"], aliases=[html_text(ui("name", lang)), html_text(label)]),
            popup=folium.GeoJsonPopup(fields=["name_fr", "name_nl", "value", *scores], aliases=["FR", "NL", html_text(label), *score_labels]),
        ).add_to(m)  # fmt: skip
    rows = []
    finite = pd.to_numeric(both, errors="coerce")
    finite = finite[np.isfinite(finite)]
    lower = float(finite.min()) if len(breaks) else 0.0
    for i, upper in enumerate(breaks):
        rows.append((palette[i], f"{_fmt(lower, unit)} – {_fmt(upper, unit)}"))
        lower = upper
    if len(finite) < len(both):
        rows.append((NO_DATA, ui("no_data", lang)))
    m.add_child(_Legend(f"{label} ({scheme})", rows))

    if shortage is not None and len(shortage):
        _add_shortage(m, shortage, lang)
    if facilities is not None and len(facilities):
        _add_facilities(m, facilities, lang)
    for name, gdf in (perimeters or {}).items():
        outline = _light(gdf.assign(perimeter=str(name)), ["perimeter"], 5.0)
        folium.GeoJson(
            outline.__geo_interface__, name=html_text(f"{ui('perimeters', lang)}: {name}"),
            style_function=lambda _f: {"fill": False, "color": "#000", "weight": 2, "dashArray": "6 4"},
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


def _add_shortage(m: folium.Map, shortage: gpd.GeoDataFrame, lang: str) -> None:
    """One layer per shortage zone, named by its category and threshold."""
    if "category" not in shortage:
        raise DataError(
            "the shortage zones have no 'category' field: give each zone the "
            "facility category it lacks"
        )
    symbol = read_catalog_file("styles.yaml")["symbols"]["shortage"]  # as in QGIS
    fill, opacity = symbol["fill"], float(symbol["opacity"])
    for row in shortage.itertuples():
        beyond = _beyond(getattr(row, "threshold_m", None))
        zone = _light(
            gpd.GeoDataFrame(
                {"category": [row.category]}, geometry=[row.geometry], crs=shortage.crs
            ),
            ["category"],
            5.0,
        )
        name = f"{ui('shortage', lang)}: {_category_label(row.category, lang)}{beyond}"
        folium.GeoJson(
            zone.__geo_interface__, name=html_text(name), show=False,
            style_function=lambda _f: {"fillColor": fill, "color": fill, "weight": 0.5, "fillOpacity": opacity},
        ).add_to(m)  # fmt: skip


def _add_facilities(m: folium.Map, facilities: gpd.GeoDataFrame, lang: str) -> None:
    """One clustered layer per category (green spaces are drawn as areas elsewhere)."""
    if "category" not in facilities:
        raise DataError(
            "the facilities have no 'category' field: give each facility its category"
        )
    cats = categories()
    pts = facilities
    if "facility_id" in facilities:
        pts = facilities[
            ~facilities["facility_id"].astype(str).str.startswith("green:")
        ]
    pts = pts.to_crs(4326)
    for cat, group in pts.groupby("category"):
        info = cats.get(cat, {}) if isinstance(cat, str) else {}
        colour = THEME_COLOURS.get(info.get("theme", ""), "#333")
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
            name=html_text(f"{ui('facilities', lang)}: {cat_label}"), show=False
        )
        folium.plugins.FastMarkerCluster(rows, callback=callback, control=False).add_to(
            group
        )
        group.add_to(m)


def save_map(
    m: folium.Map, path: str | Path, *, offline: bool = False, overwrite: bool = False
) -> Path:
    """Write the map as one HTML file (self-contained with ``offline=True``), atomically.

    Refuses (:class:`~bxlplan.errors.DataError`) a map in which some text holds
    template syntax (see :func:`html_text`), before anything is rendered or written.
    """
    path = Path(path)
    check_target(path, overwrite)
    _check_inert(m)
    page = m.get_root().render()
    if offline:
        page = inline_assets(page)
    atomic_write(path, page.encode("utf-8"))
    return path
