"""Interactive maps (folium): a choropleth of a score or indicator, facility layers,
shortage zones and perimeters, with a layer control, a legend, bilingual tooltips and
the attribution of every source.

``offline=True`` makes one self-contained HTML file with no tile layer: Leaflet and its
plugins are inlined from the npm packages installed by the set-up step. Text from data
is HTML-escaped, so a feature named ``<script>`` shows as text. To keep files small,
geometries are simplified and coordinates rounded to 1e-5 degrees (~1 m), and only the
properties shown are kept.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import branca.colormap as cm
import folium
import folium.plugins
import geopandas as gpd
import mapclassify
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement, Template

from .._io import atomic_write, check_target
from ..errors import DataError
from ..loading.catalog import read_catalog_file
from ..loading.facilities import categories
from .labels import column_label, ui
from .offline import inline_assets

__all__ = ["class_breaks", "make_map", "save_map"]

NO_DATA = "#bdbdbd"
THEME_COLOURS = {
    "early_childhood": "#e377c2", "education": "#1f77b4", "health": "#d62728",
    "social": "#9467bd", "culture": "#8c564b", "sport": "#2ca02c", "shops": "#ff7f0e",
    "mobility": "#17becf", "green": "#3a7d44",
}  # fmt: skip
SCHEMES = {
    "quantiles": mapclassify.Quantiles,
    "natural_breaks": mapclassify.NaturalBreaks,
    "equal_interval": mapclassify.EqualInterval,
}


def class_breaks(
    values: pd.Series, scheme: str = "quantiles", k: int = 5
) -> np.ndarray:
    """Upper bounds of the classes (mapclassify) of the non-missing values."""
    if scheme not in SCHEMES:
        raise DataError(
            f"unknown classification '{scheme}'; choose {', '.join(SCHEMES)}"
        )
    vals = values.dropna().to_numpy(dtype=float)
    if len(vals) == 0:
        return np.array([])
    k = max(1, min(k, len(np.unique(vals))))
    return np.asarray(SCHEMES[scheme](vals, k=k).bins)


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
    """Simplify (m, EPSG:31370), reproject, round coordinates, keep only ``keep``."""
    geoms = gdf.geometry.values
    if tolerance > 0:
        geoms = shapely.simplify(geoms, tolerance, preserve_topology=True)
    out = gpd.GeoDataFrame(
        gdf[keep].reset_index(drop=True), geometry=geoms, crs=gdf.crs
    ).to_crs(4326)
    out = out.set_geometry(shapely.set_precision(out.geometry.values, 1e-5))
    for (
        col
    ) in keep:  # text from data is shown as text: escape it (pandas 3 has str dtype)
        if pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(
            out[col]
        ):
            out[col] = out[col].map(
                lambda v: html.escape(str(v)) if v is not None and v == v else ""
            )
    return out


class _Legend(MacroElement):
    def __init__(self, title: str, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        body = "".join(
            f'<div><span style="background:{c};width:14px;height:14px;display:inline-block;'
            f'margin-right:6px;border:1px solid #555"></span>{html.escape(t)}</div>'
            for c, t in rows
        )
        self._template = Template(
            "{% macro html(this, kwargs) %}"
            '<div class="bxlplan-legend" style="position:fixed;bottom:24px;right:12px;z-index:9999;'
            'background:white;padding:8px 10px;border:1px solid #999;font:12px sans-serif">'
            f"<b>{html.escape(title)}</b>{body}</div>"
            "{% endmacro %}"
        )


class _Attribution(MacroElement):
    def __init__(self, text: str) -> None:
        super().__init__()
        js_text = text.replace("\\", "\\\\").replace('"', '\\"')
        self._template = Template(
            "{% macro script(this, kwargs) %}"
            f'{{{{ this._parent.get_name() }}}}.attributionControl.addAttribution("{html.escape(js_text)}");'
            "{% endmacro %}"
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
    """Light GeoJSON-ready areas with their fill colour and formatted values."""
    data = _light(areas, ["area_id", "name_fr", "name_nl", indicator, *scores], tol)
    values = data[indicator].to_numpy(dtype=float)
    cls = np.searchsorted(breaks, values, side="left")
    data["fill"] = [
        NO_DATA if not np.isfinite(v) else palette[min(c, len(palette) - 1)]
        for v, c in zip(values, cls, strict=True)
    ]
    # values shown in tooltips and popups, formatted with their units
    data["value"] = [_fmt(v, unit) or ui("no_data", lang) for v in values]
    for col in scores:
        s_label, s_unit = column_label(col, lang)
        data[s_label] = [_fmt(v, s_unit) for v in data[col]]
    return data.drop(columns=[indicator, *scores])


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
    scheme, k
        mapclassify classification (``quantiles``, ``natural_breaks``,
        ``equal_interval``) and number of classes.
    simplify_m
        Simplification tolerance in metres (default: 2 m, 5 m above 1,000 areas).
    before
        The same areas before a change (a scenario): drawn as a second layer with the
        same classes, to toggle against ``areas`` (after) in the layer control.
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
    colours = cm.linear.YlGnBu_09.scale(0, max(len(breaks) - 1, 1))
    palette = [colours(i) for i in range(len(breaks))]

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
    for gdf, name, show in layers:
        data = _choropleth_data(
            gdf, indicator, scores, breaks, palette, unit, lang, tol
        )
        folium.GeoJson(
            data.__geo_interface__, name=name, show=show,
            style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#555", "weight": 0.4, "fillOpacity": 0.75},
            tooltip=folium.GeoJsonTooltip(fields=[name_col, "value"], aliases=[ui("name", lang), label]),
            popup=folium.GeoJsonPopup(fields=["name_fr", "name_nl", "value", *[column_label(c, lang)[0] for c in scores]], aliases=["FR", "NL", label, *[column_label(c, lang)[0] for c in scores]]),
        ).add_to(m)  # fmt: skip
    rows = []
    lower = float(areas[indicator].min()) if len(breaks) else 0.0
    for i, upper in enumerate(breaks):
        rows.append((palette[i], f"{_fmt(lower, unit)} – {_fmt(upper, unit)}"))
        lower = upper
    if areas[indicator].isna().any():
        rows.append((NO_DATA, ui("no_data", lang)))
    m.add_child(_Legend(f"{label} ({scheme})", rows))

    if shortage is not None and len(shortage):
        cats = categories()
        for row in shortage.itertuples():
            cat_label = (
                cats.get(row.category, {}).get("label", {}).get(lang, row.category)
            )
            zone = _light(
                gpd.GeoDataFrame(
                    {"category": [row.category]},
                    geometry=[row.geometry],
                    crs=shortage.crs,
                ),
                ["category"],
                5.0,
            )
            folium.GeoJson(
                zone.__geo_interface__, name=f"{ui('shortage', lang)}: {cat_label} (> {row.threshold_m} m)", show=False,
                style_function=lambda _f: {"fillColor": "#d7301f", "color": "#d7301f", "weight": 0.5, "fillOpacity": 0.35},
            ).add_to(m)  # fmt: skip
    if facilities is not None and len(facilities):
        _add_facilities(m, facilities, lang)
    for name, gdf in (perimeters or {}).items():
        outline = _light(gdf.assign(perimeter=name), ["perimeter"], 5.0)
        folium.GeoJson(
            outline.__geo_interface__, name=f"{ui('perimeters', lang)}: {html.escape(name)}",
            style_function=lambda _f: {"fill": False, "color": "#000", "weight": 2, "dashArray": "6 4"},
        ).add_to(m)  # fmt: skip
    folium.LayerControl(collapsed=True).add_to(m)
    m.add_child(_Attribution(read_catalog_file("labels.yaml")["attribution"]))
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return m


def _add_facilities(m: folium.Map, facilities: gpd.GeoDataFrame, lang: str) -> None:
    """One clustered layer per category (green spaces are drawn as areas elsewhere)."""
    cats = categories()
    pts = facilities[
        ~facilities["facility_id"].astype(str).str.startswith("green:")
    ].to_crs(4326)
    for cat, group in pts.groupby("category"):
        info = cats.get(cat, {})
        colour = THEME_COLOURS.get(info.get("theme", ""), "#333")
        names = group["name"].where(
            group["name"].notna(), info.get("label", {}).get(lang, cat)
        )
        rows = [
            [round(y, 5), round(x, 5), html.escape(str(n))]
            for x, y, n in zip(group.geometry.x, group.geometry.y, names, strict=True)
        ]
        callback = (
            "function (row) { var m = L.circleMarker(new L.LatLng(row[0], row[1]), "
            f"{{radius: 5, color: '{colour}', weight: 1, fillOpacity: 0.8}}); "
            "m.bindTooltip(row[2]); return m; }"
        )
        group = folium.FeatureGroup(
            name=f"{ui('facilities', lang)}: {info.get('label', {}).get(lang, cat)}",
            show=False,
        )
        folium.plugins.FastMarkerCluster(rows, callback=callback, control=False).add_to(
            group
        )
        group.add_to(m)


def save_map(
    m: folium.Map, path: str | Path, *, offline: bool = False, overwrite: bool = False
) -> Path:
    """Write the map as one HTML file (self-contained with ``offline=True``), atomically."""
    path = Path(path)
    check_target(path, overwrite)
    page = m.get_root().render()
    if offline:
        page = inline_assets(page)
    atomic_write(path, page.encode("utf-8"))
    return path
