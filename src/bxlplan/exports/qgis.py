"""QGIS-ready GeoPackages: a default style per layer, field aliases, layer descriptions.

QGIS reads, from the GeoPackage itself:

* the ``layer_styles`` table: one QML document per layer (``useAsDefault`` = 1 is the
  style a layer opens with; the areas get one more style per score column, to load
  from *Properties > Style > Load style > From database*). The table is created by
  GDAL, as QGIS creates it, so it is registered in ``gpkg_contents`` as an
  ``attributes`` table and GDAL reads the file without a warning;
* field aliases: the GeoPackage Schema extension (``gpkg_data_columns``: ``title`` is
  the alias, ``description`` the unit and definition), registered in
  ``gpkg_extensions`` as the specification requires. GDAL reads ``title`` as the
  field's alternative name, which QGIS shows as its alias; the QML repeats them;
* ``gpkg_contents.description``: the layer's title.

Styles: the score columns are drawn as on the maps (``exports/maps.py``: the classes
of :func:`~bxlplan.exports.maps.class_breaks`, quantiles, 5 classes, the YlGnBu
palette); shortage zones in the map's red; facilities by category, one colour each
(``layers/styles.yaml``); perimeters as dashed outlines. Labels come from the indicator
registry (``layers/indicators.yaml``) and ``layers/styles.yaml``, in French, Dutch or
English.

Names and labels are data (a category, a layer or a perimeter name can be anything):
every string put in a QML document goes through :mod:`xml.etree.ElementTree`, which
escapes ``<``, ``&`` and quotes, after :func:`xml_text` has dropped the characters XML
1.0 cannot hold at all (control characters), so a document always parses.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from ..indicators.registry import describe
from ..loading.catalog import read_catalog_file
from ..loading.facilities import categories
from .labels import check_lang, column_label
from .maps import NO_DATA, THEME_COLOURS, _fmt, class_breaks, class_palette

__all__ = [
    "QGIS_VERSION",
    "field_alias",
    "layer_description",
    "layer_qml",
    "style_gpkg",
    "xml_text",
]

QGIS_VERSION = "3.28.0-Firenze"
DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
SCORES = ("score_overall", "score_diversity", "score_social_mix", "score_services")
# characters XML 1.0 cannot hold, even escaped
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SCHEMA_EXT = "http://www.geopackage.org/spec/#extension_schema"


def _styles() -> dict[str, Any]:
    return read_catalog_file("styles.yaml")


def xml_text(value: Any) -> str:
    """Text fit for an XML document: ``str(value)`` without forbidden characters.

    The control characters XML 1.0 forbids are dropped (``<``, ``&`` and quotes are
    escaped by the XML writer).

    Parameters
    ----------
    value : object
        Any value.

    Returns
    -------
    str
        Its text; ``""`` for a missing value (None, NaN).

    Examples
    --------
    >>> xml_text("Saint-Gilles\\x00"), xml_text(None), xml_text(float("nan"))
    ('Saint-Gilles', '', '')
    """
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return _NOT_XML.sub("", str(value))


def _category_label(cat: Any, lang: str) -> str:
    info = categories().get(cat, {}) if isinstance(cat, str) else {}
    return str(info.get("label", {}).get(lang, cat))


def field_alias(column: str, lang: str = "fr") -> tuple[str, str] | None:
    """(alias, description) of a column in ``lang``, or None when it has none.

    Indicators: the registry label with its unit, and the unit and formula as the
    description; other fields: ``layers/styles.yaml`` (``fields``).

    Parameters
    ----------
    column : str
        A column of an assessment layer.
    lang : {"fr", "nl", "en"}
        The language.

    Returns
    -------
    tuple of (str, str) or None
        The alias and the description.

    Examples
    --------
    >>> field_alias("area_id", "en")
    ('Identifier', '')
    >>> field_alias("access_pharmacy_nearest_m", "en")[0]
    'Pharmacy: distance to the nearest (m)'
    >>> field_alias("my_own_column") is None
    True
    """
    check_lang(lang)
    found = describe(column)
    if found is not None:
        label, unit = column_label(column, lang)
        alias = f"{label} ({unit})" if unit else label
        unit_text = f"unit: {found.unit}; " if found.unit else ""
        return alias, f"{unit_text}{found.formula}"
    fields = _styles().get("fields", {})
    if column in fields:
        return str(fields[column][lang]), ""
    return None


def layer_description(
    name: str, gdf: gpd.GeoDataFrame | None = None, lang: str = "fr"
) -> str:
    """The title of a layer of an assessment (``gpkg_contents.description``).

    Parameters
    ----------
    name : str
        The layer (``areas``, ``facilities``, ``shortage_<category>``, ...).
    gdf : GeoDataFrame, optional
        Its features (a shortage layer names its threshold from them).
    lang : {"fr", "nl", "en"}
        The language.

    Returns
    -------
    str
        The title.

    Examples
    --------
    >>> layer_description("areas", lang="en")
    'Scores and indicators of the assessed areas'
    """
    check_lang(lang)
    texts = _styles()["descriptions"]
    if name in ("areas", "facilities", "layer_styles"):
        return str(texts[name][lang])
    if name.startswith("shortage"):
        cat = name.removeprefix("shortage_")
        threshold: Any = "?"
        if gdf is not None and len(gdf) and "category" in gdf:
            cats = list(dict.fromkeys(gdf["category"]))
            cat = ", ".join(_category_label(c, lang) for c in cats)
            if "threshold_m" in gdf and gdf["threshold_m"].nunique() == 1:
                threshold = gdf["threshold_m"].iloc[0]
        else:
            cat = _category_label(cat, lang)
        if threshold == "?":
            thr = (
                categories().get(name.removeprefix("shortage_"), {}).get("threshold_m")
            )
            threshold = thr if thr is not None else "?"
        return str(texts["shortage"][lang]).format(
            category=cat, threshold=_int_text(threshold)
        )
    if name.startswith("perimeter_"):
        return str(texts["perimeter"][lang]).format(
            name=name.removeprefix("perimeter_")
        )
    return str(texts["layer"][lang]).format(name=name)


def _int_text(value: Any) -> str:
    try:
        return f"{float(value):.0f}"
    except (TypeError, ValueError):
        return str(value)


# ------------------------------------------------------------------ QML documents


def _rgba(colour: str, opacity: float = 1.0) -> str:
    """``#rrggbb`` or ``#rrggbbaa`` as QGIS's ``r,g,b,a``."""
    text = colour.lstrip("#")
    r, g, b = (int(text[i : i + 2], 16) for i in (0, 2, 4))
    a = int(text[6:8], 16) if len(text) == 8 else 255
    return f"{r},{g},{b},{round(a * opacity)}"


def _options(parent: ET.Element, props: dict[str, str]) -> None:
    box = ET.SubElement(parent, "Option", type="Map")
    for key, value in props.items():
        ET.SubElement(box, "Option", type="QString", name=key, value=xml_text(value))


def _symbol(name: str, geometry: str, colour: str, **style: Any) -> ET.Element:
    """A one-layer QGIS symbol: ``fill`` (polygons), ``marker`` (points), ``line``."""
    sym = ET.Element(
        "symbol", type=geometry, name=name, alpha="1", clip_to_extent="1",
        force_rhr="0", is_animated="0", frame_rate="10",
    )  # fmt: skip
    outline = style.get("outline", _styles()["symbols"]["outline"])
    opacity = float(style.get("opacity", 1.0))
    if geometry == "marker":
        layer = ET.SubElement(sym, "layer", {"class": "SimpleMarker", "pass": "0"}, enabled="1", locked="0")  # fmt: skip
        props = {
            "name": "circle", "color": _rgba(colour, opacity), "outline_color": _rgba(outline),
            "outline_style": "solid", "outline_width": "0.2", "outline_width_unit": "MM",
            "size": "2.2", "size_unit": "MM", "scale_method": "diameter", "angle": "0",
        }  # fmt: skip
    elif geometry == "line":
        layer = ET.SubElement(sym, "layer", {"class": "SimpleLine", "pass": "0"}, enabled="1", locked="0")  # fmt: skip
        props = {
            "line_color": _rgba(colour, opacity), "line_style": "dash" if style.get("dash") else "solid",
            "line_width": str(style.get("width", 0.5)), "line_width_unit": "MM",
        }  # fmt: skip
    else:
        layer = ET.SubElement(sym, "layer", {"class": "SimpleFill", "pass": "0"}, enabled="1", locked="0")  # fmt: skip
        props = {
            "color": _rgba(colour, opacity), "style": "no" if style.get("hollow") else "solid",
            "outline_color": _rgba(outline), "outline_style": "dash" if style.get("dash") else "solid",
            "outline_width": str(style.get("width", 0.26)), "outline_width_unit": "MM",
            "joinstyle": "bevel", "offset": "0,0", "offset_unit": "MM",
        }  # fmt: skip
    _options(layer, props)
    return sym


def _renderer_tail(renderer: ET.Element) -> None:
    ET.SubElement(renderer, "rotation")
    ET.SubElement(renderer, "sizescale")


def _renderer(kind: str, **attrs: str) -> ET.Element:
    return ET.Element(
        "renderer-v2", {"type": kind, **attrs}, forceraster="0", symbollevels="0",
        enableorderby="0", referencescale="-1",
    )  # fmt: skip


def graduated(
    values: pd.Series, column: str, geometry: str, lang: str,
    scheme: str = "quantiles", k: int = 5,
) -> ET.Element:  # fmt: skip
    """A ``graduatedSymbol`` renderer of ``column``: the map's classes and colours
    (features with no value are not drawn, as QGIS does for a graduated style)."""
    breaks = class_breaks(values, scheme, k)
    colours = class_palette(len(breaks))
    unit = column_label(column, lang)[1]
    finite = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    renderer = _renderer(
        "graduatedSymbol", attr=xml_text(column), graduatedMethod="GraduatedColor"
    )
    ranges = ET.SubElement(renderer, "ranges")
    symbols = ET.SubElement(renderer, "symbols")
    lower = float(finite.min()) if len(finite) else 0.0
    for i, upper in enumerate(breaks):
        label = f"{_fmt(lower, unit)} – {_fmt(float(upper), unit)}"
        ET.SubElement(
            ranges, "range", symbol=str(i), lower=repr(float(lower)),
            upper=repr(float(upper)), label=xml_text(label), render="true",
        )  # fmt: skip
        symbols.append(_symbol(str(i), geometry, colours[i]))
        lower = float(upper)
    source = ET.SubElement(renderer, "source-symbol")
    source.append(_symbol("0", geometry, NO_DATA))
    ramp = ET.SubElement(renderer, "colorramp", type="gradient", name="[source]")
    _options(
        ramp,
        {
            "color1": _rgba(class_palette(5)[0]),
            "color2": _rgba(class_palette(5)[-1]),
            "discrete": "0",
            "rampType": "gradient",
            "stops": ":".join(
                f"{i / 4:g};{_rgba(c)}"
                for i, c in list(enumerate(class_palette(5)))[1:-1]
            ),
        },
    )
    method = ET.SubElement(
        renderer,
        "classificationMethod",
        id={"quantiles": "Quantile", "natural_breaks": "Jenks", "equal_interval": "EqualInterval"}[scheme],
    )  # fmt: skip
    ET.SubElement(method, "symmetricMode", enabled="0", symmetrypoint="0", astride="0")
    ET.SubElement(method, "labelFormat", format="%1 - %2", labelprecision="0", trimtrailingzeroes="1")  # fmt: skip
    ET.SubElement(ET.SubElement(method, "parameters"), "Option")
    ET.SubElement(method, "extraInformation")
    _renderer_tail(renderer)
    return renderer


def categorized(
    values: pd.Series, column: str, geometry: str, lang: str, colour_of: Any, **style: Any
) -> ET.Element:  # fmt: skip
    """A ``categorizedSymbol`` renderer of ``column``: one class per value present,
    labelled in ``lang`` (facility categories by their catalog label)."""
    renderer = _renderer("categorizedSymbol", attr=xml_text(column))
    cats = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    present = sorted({str(v) for v in values if not pd.isna(v)})
    for i, value in enumerate(present):
        ET.SubElement(
            cats, "category", symbol=str(i), value=xml_text(value),
            label=xml_text(_category_label(value, lang)), render="true",
        )  # fmt: skip
        symbols.append(_symbol(str(i), geometry, colour_of(value), **style))
    source = ET.SubElement(renderer, "source-symbol")
    source.append(_symbol("0", geometry, "#333333", **style))
    _renderer_tail(renderer)
    return renderer


def single(geometry: str, colour: str, **style: Any) -> ET.Element:
    """A ``singleSymbol`` renderer."""
    renderer = _renderer("singleSymbol")
    ET.SubElement(renderer, "symbols").append(_symbol("0", geometry, colour, **style))
    _renderer_tail(renderer)
    return renderer


def _geometry_kind(gdf: gpd.GeoDataFrame) -> tuple[str, int]:
    """(QGIS symbol type, layerGeometryType) of a layer."""
    types = {str(t) for t in gdf.geometry.geom_type.dropna().unique()}
    if types and types <= {"Point", "MultiPoint"}:
        return "marker", 0
    if types and types <= {"LineString", "MultiLineString"}:
        return "line", 1
    return "fill", 2


def facility_colour(category: str) -> str:
    """A facility category's colour: ``layers/styles.yaml``, else its theme's colour
    on the map, else dark grey."""
    listed = _styles()["symbols"].get("facilities", {})
    if category in listed:
        return str(listed[category])
    theme = categories().get(category, {}).get("theme", "")
    return THEME_COLOURS.get(theme, "#333333")


def renderer_for(name: str, gdf: gpd.GeoDataFrame, lang: str, column: str | None = None) -> ET.Element:  # fmt: skip
    """The renderer of a layer of an assessment, from its name (``areas``,
    ``shortage_*``, ``facilities``, ``perimeter_*``) and content; ``column`` picks
    the score drawn on the areas (default: the first of ``score_overall``,
    ``score_diversity``, ``score_social_mix``, ``score_services`` present)."""
    geometry, _ = _geometry_kind(gdf)
    sym = _styles()["symbols"]
    if column is None:
        column = next((c for c in SCORES if c in gdf), None)
    if name.startswith("shortage") and "category" in gdf:
        red = sym["shortage"]
        return categorized(
            gdf["category"], "category", geometry, lang, lambda _c: red["fill"],
            opacity=float(red["opacity"]), outline=red["fill"],
        )  # fmt: skip
    if name.startswith("facilities") and "category" in gdf:
        return categorized(gdf["category"], "category", geometry, lang, facility_colour)
    if name.startswith("perimeter"):
        return single(geometry, sym["perimeter"], hollow=True, dash=True, outline=sym["perimeter"], width=0.6)  # fmt: skip
    if column is not None and column in gdf:
        return graduated(gdf[column], column, geometry, lang)
    return single(geometry, "#9ecae1")


def layer_qml(
    name: str, gdf: gpd.GeoDataFrame, lang: str = "fr", *,
    column: str | None = None, fields: dict[str, str] | None = None,
) -> str:  # fmt: skip
    """The QML style of a layer: its renderer (:func:`renderer_for`) and the aliases
    of its fields in ``lang``.

    Parameters
    ----------
    name : str
        The layer (``areas``, ``facilities``, ``shortage_<category>``, ...).
    gdf : GeoDataFrame
        Its features.
    lang : {"fr", "nl", "en"}
        The language of the aliases and legend.
    column : str, optional
        The column the renderer shows (default: the layer's own choice).
    fields : dict, optional
        The column names of ``gdf`` -> the names the file has (the Shapefile's short
        names); by default the columns keep their names, after the GeoPackage's
        ``fid``.

    Returns
    -------
    str
        The QML document.

    Examples
    --------
    >>> import shapely
    >>> areas = gpd.GeoDataFrame({"area_id": ["1"], "score_services": [50.0]},
    ...                          geometry=[shapely.box(0, 0, 1, 1)], crs=31370)
    >>> qml = layer_qml("areas", areas, "en")
    >>> qml.startswith("<!DOCTYPE qgis"), 'attr="score_services"' in qml
    (True, True)
    """
    check_lang(lang)
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology|Fields")
    renderer = renderer_for(name, gdf, lang, column)
    names = fields or {}
    if names:  # the renderer's field by its name in the file
        attr = renderer.get("attr")
        if attr is not None:
            renderer.set("attr", xml_text(names.get(attr, attr)))
    root.append(renderer)
    aliases = ET.SubElement(root, "aliases")
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    offset = 0 if fields else 1  # a GeoPackage layer's first field is its fid
    for i, col in enumerate(columns):
        found = field_alias(col, lang)
        if found is not None:
            ET.SubElement(
                aliases, "alias", field=xml_text(names.get(col, col)),
                index=str(i + offset), name=xml_text(found[0]),
            )  # fmt: skip
    ET.SubElement(root, "layerGeometryType").text = str(_geometry_kind(gdf)[1])
    body = ET.tostring(root, encoding="unicode")
    return f"{DOCTYPE}\n{body}\n"


# ------------------------------------------------------------ the GeoPackage tables

_DATA_COLUMNS = """CREATE TABLE IF NOT EXISTS gpkg_data_columns (
  table_name TEXT NOT NULL,
  column_name TEXT NOT NULL,
  name TEXT,
  title TEXT,
  description TEXT,
  mime_type TEXT,
  constraint_name TEXT,
  CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name),
  CONSTRAINT gdc_tn UNIQUE (table_name, name)
)"""
_CONSTRAINTS = """CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (
  constraint_name TEXT NOT NULL,
  constraint_type TEXT NOT NULL,
  value TEXT,
  min NUMERIC,
  min_is_inclusive BOOLEAN,
  max NUMERIC,
  max_is_inclusive BOOLEAN,
  description TEXT,
  CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value)
)"""
_EXTENSIONS = """CREATE TABLE IF NOT EXISTS gpkg_extensions (
  table_name TEXT,
  column_name TEXT,
  extension_name TEXT NOT NULL,
  definition TEXT NOT NULL,
  scope TEXT NOT NULL,
  CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name)
)"""


def style_rows(
    layers: dict[str, gpd.GeoDataFrame], lang: str, geometry_columns: dict[str, str],
    run_time: dt.datetime,
) -> pd.DataFrame:  # fmt: skip
    """The ``layer_styles`` rows of ``layers``: one default style per layer, and one
    more per score column of a layer that has several."""
    rows = []
    stamp = pd.Timestamp(run_time.astimezone(dt.UTC)).tz_localize(None)

    def row(
        name: str, style: str, qml: str, default: bool, text: str
    ) -> dict[str, Any]:
        return {
            "f_table_catalog": "", "f_table_schema": "", "f_table_name": name,
            "f_geometry_column": geometry_columns.get(name, ""), "styleName": style,
            "styleQML": qml, "styleSLD": "", "useAsDefault": default,
            "description": text, "owner": "bxlplan", "ui": "", "update_time": stamp,
        }  # fmt: skip

    for name, gdf in layers.items():
        text = layer_description(name, gdf, lang)
        rows.append(row(name, name, layer_qml(name, gdf, lang), True, text))
        scores = [c for c in SCORES if c in gdf]
        for col in scores[1:]:
            label = column_label(col, lang)[0]
            rows.append(
                row(name, f"{name}: {label}", layer_qml(name, gdf, lang, column=col), False, label)
            )  # fmt: skip
    return pd.DataFrame(rows)


def style_gpkg(
    path: str | Path,
    layers: dict[str, gpd.GeoDataFrame],
    lang: str = "fr",
    *,
    run_time: dt.datetime,
) -> None:
    """Make a GeoPackage written by ``write_gpkg`` QGIS-ready, in place.

    Adds a ``layer_styles`` table (written by GDAL, registered in ``gpkg_contents``),
    field aliases (``gpkg_data_columns``, with its ``gpkg_extensions`` rows) and the
    layers' descriptions, in ``lang``. Call it on a file nobody else reads yet (the
    staged file of an atomic write); the caller sets GDAL's ``OGR_CURRENT_DATE``.

    Parameters
    ----------
    path : str or Path
        The GeoPackage.
    layers : dict
        Layer name -> the GeoDataFrame written as that layer.
    lang : {"fr", "nl", "en"}
        The language of the aliases, legends and descriptions.
    run_time : datetime.datetime
        The run's time stamp, written as the styles' update time.

    Examples
    --------
    >>> import datetime as dt, sqlite3, tempfile, shapely
    >>> path = Path(tempfile.mkdtemp()) / "assessment.gpkg"
    >>> areas = gpd.GeoDataFrame({"area_id": ["1"], "score_services": [50.0]},
    ...                          geometry=[shapely.box(0, 0, 1, 1)], crs=31370)
    >>> areas.to_file(path, layer="areas")
    >>> style_gpkg(path, {"areas": areas}, "en", run_time=dt.datetime(2026, 1, 1))
    >>> with sqlite3.connect(path) as db:
    ...     db.execute("SELECT f_table_name FROM layer_styles").fetchall()
    [('areas',)]
    """
    check_lang(lang)
    path = Path(path)
    with sqlite3.connect(path) as db:
        geometry_columns = dict(
            db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns")
        )
    db.close()
    styles = style_rows(layers, lang, geometry_columns, run_time)
    pyogrio.write_dataframe(
        styles, path, layer="layer_styles", driver="GPKG", append=True,
        layer_options={"DESCRIPTION": layer_description("layer_styles", None, lang)},
    )  # fmt: skip
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute(_EXTENSIONS)
            db.execute(_DATA_COLUMNS)
            db.execute(_CONSTRAINTS)
            for table in ("gpkg_data_columns", "gpkg_data_column_constraints"):
                db.execute(
                    "INSERT OR IGNORE INTO gpkg_extensions VALUES (?, NULL, 'gpkg_schema', ?, 'read-write')",
                    (table, _SCHEMA_EXT),
                )  # fmt: skip
            for name, gdf in layers.items():
                db.execute(
                    "UPDATE gpkg_contents SET description = ? WHERE table_name = ?",
                    (layer_description(name, gdf, lang), name),
                )
                for col in gdf.columns:
                    if col == gdf.geometry.name:
                        continue
                    found = field_alias(col, lang)
                    if found is None:
                        continue
                    db.execute(
                        "INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title, description) VALUES (?, ?, ?, ?, ?)",
                        (name, col, col, found[0], found[1]),
                    )  # fmt: skip
    finally:
        db.close()
