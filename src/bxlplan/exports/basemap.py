"""A light base map drawn from the data folder: commune outlines and names, main
streets, rail, green spaces, water and neighbourhood names, so that an offline map
shows where it is without any tile server.

What is drawn, from which layer or file, how it is filtered, simplified and styled is
declared in ``layers/styles.yaml`` (``context``). The layers are read once per data
folder and process (they are small once simplified); :func:`add_context` adds them to
any folium map (``make_map`` and the scenario change maps). Names come from data: they
are written with :func:`~bxlplan.exports.maps.html_text`-style inert text and placed
as Leaflet labels, never as markup or template source.

With network access a tile base map can be added as well (:func:`add_basemap`:
``osm`` or ``urbis``, ``layers/styles.yaml`` ``basemaps``); an offline map never has
one.
"""

from __future__ import annotations

import html
import logging
import os
import threading
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement, Template
from shapely.ops import polylabel

from ..errors import BxlplanError, ConfigError, DataError
from ..loading import data_dir, get_spec, load
from ..loading.catalog import read_catalog_file
from ..loading.readers import read_vector

__all__ = ["BASEMAPS", "add_basemap", "add_context", "context_layers"]

_log = logging.getLogger(__name__)
_INERT = str.maketrans({"{": "&#123;", "}": "&#125;", "%": "&#37;"})
_CACHE: dict[str, dict[str, gpd.GeoDataFrame]] = {}
_LOCK = threading.Lock()
BASEMAPS = ("none", "osm", "urbis")


def _text(value: Any) -> str:
    """Inert HTML text (as ``maps.html_text``, which imports this module)."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return html.escape(str(value)).translate(_INERT)


def _settings() -> dict[str, Any]:
    return read_catalog_file("styles.yaml")["context"]


def _matches(gdf: pd.DataFrame, rules: list[dict[str, list[str]]]) -> pd.Series:
    """Rows matching any rule (``tag: [values]``: every tag of a rule must match)."""
    hit = pd.Series(False, index=gdf.index)
    for rule in rules or []:
        one = pd.Series(True, index=gdf.index)
        for tag, values in rule.items():
            col = gdf[tag] if tag in gdf else pd.Series(None, index=gdf.index)
            one &= col.astype(str).isin([str(v) for v in values])
        hit |= one
    return hit


def _main_streets(lines: gpd.GeoDataFrame, min_length: float) -> gpd.GeoDataFrame:
    """The streets whose name runs for ``min_length`` metres or more, merged by name."""
    lines = lines[lines.geometry.notna() & ~lines.geometry.is_empty]
    if "name" not in lines:
        return lines.iloc[:0]
    length = lines.geometry.length.groupby(lines["name"]).transform("sum")
    main = lines[length >= float(min_length)]
    merged = main.dissolve(by="name").reset_index()
    merged = merged.set_geometry(shapely.line_merge(merged.geometry.values))
    return merged


def _read(spec: dict[str, Any], folder: Path) -> gpd.GeoDataFrame:
    """One context layer, in EPSG:31370, with a ``label`` column where named."""
    if "layer" in spec:
        if spec["layer"] == "streets":
            # the raw lines, not the noded network (which takes far longer to build)
            found = get_spec("streets").find_file(folder)
            if found is None or found[0].suffix.lower() == ".graphml":
                raise DataError(f"no street lines in {folder}")
            gdf = read_vector(found[0], layer=found[1].get("layer")).to_crs(31370)
            return _main_streets(gdf, spec.get("main_min_length_m", 0))
        gdf = load(spec["layer"], folder)
    else:
        path = folder / spec["file"]
        if not path.is_file():
            raise DataError(f"{path} is not in the data folder")
        gdf = read_vector(path).to_crs(31370)
    if "include" in spec:
        gdf = gdf[_matches(gdf, spec["include"])]
    if "exclude" in spec:
        gdf = gdf[~_matches(gdf, spec["exclude"])]
    if "min_area_m2" in spec:
        gdf = gdf[gdf.geometry.area >= float(spec["min_area_m2"])]
    if spec.get("merge"):
        # one feature: lines joined where they meet, no per-feature overhead
        pieces = shapely.get_parts(gdf.geometry.values)
        merged = shapely.line_merge(shapely.multilinestrings(pieces))
        gdf = gpd.GeoDataFrame(geometry=[merged], crs=gdf.crs)
    return gdf


def _light(
    gdf: gpd.GeoDataFrame, tolerance: float, keep: list[str]
) -> gpd.GeoDataFrame:
    geoms = shapely.simplify(gdf.geometry.values, tolerance, preserve_topology=True)
    out = gpd.GeoDataFrame(
        gdf[keep].reset_index(drop=True), geometry=geoms, crs=gdf.crs
    ).to_crs(4326)
    out = out.set_geometry(shapely.set_precision(out.geometry.values, 1e-5))
    vals = out.geometry.values
    return out[~(shapely.is_empty(vals) | shapely.is_missing(vals))].reset_index(
        drop=True
    )


def _label_points(gdf: gpd.GeoDataFrame) -> dict[str, np.ndarray]:
    """Where each polygon's name goes: the pole of inaccessibility of its largest
    part (inside it, far from its edges), as ``label_lat``/``label_lon``."""
    points = []
    for geom in gdf.geometry.values:
        parts = shapely.get_parts(geom)
        largest = parts[int(np.argmax(shapely.area(parts)))]
        points.append(polylabel(largest, tolerance=10.0))
    wgs = gpd.GeoSeries(points, crs=gdf.crs).to_crs(4326)
    return {
        "label_lat": wgs.y.round(5).to_numpy(),
        "label_lon": wgs.x.round(5).to_numpy(),
    }


def context_layers(
    data: str | os.PathLike[str] | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """The context layers of a data folder, light and ready to draw (cached).

    Each layer of ``context.layers`` in ``layers/styles.yaml`` that the folder holds
    comes back simplified, in EPSG:4326 with coordinates rounded to 1e-5 degrees, with
    ``name_fr``/``name_nl`` and ``label_lat``/``label_lon`` (where the name goes) for
    the named ones (communes, neighbourhoods). A layer the
    folder lacks is left out and logged; the result is read once per folder.

    Parameters
    ----------
    data
        The data folder (default ``$BXLPLAN_DATA``).

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        By context layer name (``water``, ``green``, ``streets``, ``rail``,
        ``neighbourhoods``, ``communes``), in drawing order.

    Raises
    ------
    DataError
        When no data folder is given or it does not exist.

    Examples
    --------
    A folder without any of the files gives no layer (the pack gives six):

    >>> from bxlplan.loading.catalog import catalog_dir
    >>> context_layers(catalog_dir())
    {}
    >>> context_layers("/no/such/folder")
    Traceback (most recent call last):
    ...
    bxlplan.errors.DataError: data folder /no/such/folder does not exist or is not a folder
    """
    folder = data_dir(data).resolve()
    key = str(folder)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        out: dict[str, gpd.GeoDataFrame] = {}
        for name, spec in _settings()["layers"].items():
            try:
                gdf = _read(spec, folder)
            except BxlplanError as exc:
                _log.info("base map: no %s layer (%s)", name, exc)
                continue
            keep = []
            if "label_zoom" in spec:
                keep = [c for c in ("name_fr", "name_nl") if c in gdf]
                gdf = gdf.assign(**_label_points(gdf))
                keep += ["label_lat", "label_lon"]
            out[name] = _light(gdf, float(spec.get("simplify_m", 5)), keep)
        _CACHE[key] = out
        return out


class _Panes(MacroElement):
    """The panes of the base map: under the areas, over them (lines), labels."""

    _template = Template(
        "{% macro header(this, kwargs) %}<style>"
        ".leaflet-container{background:{{ this.background }}}"
        ".bxlplan-label,.bxlplan-label-small{background:none;border:none;"
        "white-space:nowrap;text-align:center;font:600 12px sans-serif;color:#222;"
        "text-shadow:0 0 3px #fff,0 0 3px #fff,0 0 2px #fff}"
        ".bxlplan-label-small{font:italic 11px sans-serif;color:#333}"
        ".bxlplan-label span,.bxlplan-label-small span{position:relative;"
        "left:-50%;top:-0.7em}</style>{% endmacro %}"
        "{% macro script(this, kwargs) %}"
        "{% for name, z in this.panes %}"
        "{{ this._parent.get_name() }}.createPane({{ name|tojson }}).style.zIndex = {{ z|tojson }};"
        "{{ this._parent.get_name() }}.getPane({{ name|tojson }}).style.pointerEvents = 'none';"
        "{% endfor %}{% endmacro %}"
    )

    def __init__(self, panes: dict[str, int], background: str) -> None:
        super().__init__()
        self._name = "BxlplanPanes"
        self.panes = [(f"bxlplan-{k}", int(v)) for k, v in panes.items()]
        self.background = _text(background)


class _Labels(MacroElement):
    """Names at points, shown between two zoom levels, in their own pane.

    ``rows`` are ``[lat, lon, text]`` with inert HTML text; the label is a Leaflet
    ``divIcon`` (not interactive), added to the parent feature group."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "(function () {"
        " var group = {{ this._parent.get_name() }}, map = {{ this.map_name }};"
        " var pane = map.getPane({{ this.pane|tojson }}) ||"
        " map.createPane({{ this.pane|tojson }});"
        " pane.style.zIndex = {{ this.z|tojson }}; pane.style.pointerEvents = 'none';"
        " {{ this.rows|tojson }}.forEach(function (r) {"
        "  group.addLayer(L.marker([r[0], r[1]], {pane: {{ this.pane|tojson }},"
        "   interactive: false, keyboard: false, icon: L.divIcon({"
        "   className: {{ this.css|tojson }}, iconSize: null,"
        "   html: '<span>' + r[2] + '</span>'})}));"
        " });"
        " function show() { var z = map.getZoom();"
        "  pane.style.display = (z >= {{ this.zoom[0]|tojson }} &&"
        "  z <= {{ this.zoom[1]|tojson }}) ? '' : 'none'; }"
        " map.on('zoomend', show); show();"
        "})();"
        "{% endmacro %}"
    )

    def __init__(
        self, rows: list[list[Any]], zoom: list[int], css: str, pane: str, z: int,
        map_name: str,
    ) -> None:  # fmt: skip
        super().__init__()
        self._name = "BxlplanLabels"
        self.rows = rows
        self.zoom = [int(zoom[0]), int(zoom[1])]
        self.css = _text(css)
        self.pane = _text(pane)
        self.z = int(z)
        self.map_name = map_name


def _in_bounds(gdf: gpd.GeoDataFrame, box: Any) -> gpd.GeoDataFrame:
    if box is None:
        return gdf
    return gdf[gdf.intersects(box)]


def add_context(
    m: folium.Map,
    data: str | os.PathLike[str] | None = None,
    lang: str = "fr",
    bounds: tuple[float, float, float, float] | None = None,
    *,
    lines: bool = True,
) -> bool:
    """Draw the light base map (``layers/styles.yaml`` ``context``) on a folium map.

    Water and green spaces go under the areas; main streets, rail, neighbourhood and
    commune outlines over them (they never catch the mouse); commune names and, when
    zoomed in, neighbourhood names on top, in the map's language. Two entries in the
    layer control: the base map, and the names. Everything is read from the data
    folder: no request goes to the network.

    Parameters
    ----------
    m
        The map to draw on.
    data
        The data folder (default ``$BXLPLAN_DATA``). When there is none, or it holds
        no context layer, nothing is drawn and a log line (WARNING) says so.
    lang
        ``fr``, ``nl`` or ``en``: the language of the names.
    bounds
        ``(west, south, east, north)`` in degrees (EPSG:4326, as
        ``GeoDataFrame.total_bounds``): only what crosses this box, widened by a
        quarter of its size, is drawn (smaller files for small maps).
    lines
        ``False`` draws only outlines and names (on top of a tile base map, which
        has its own streets and parks).

    Returns
    -------
    bool
        Whether a base map was drawn.

    Raises
    ------
    ConfigError
        For a language other than ``fr``, ``nl``, ``en``.

    Examples
    --------
    >>> m = folium.Map(tiles=None)
    >>> add_context(m, data="/no/such/folder")
    False
    >>> add_context(m, lang="de")
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: --lang: language must be one of fr, nl, en, got 'de'
    """
    if lang not in ("fr", "nl", "en"):
        raise ConfigError(f"--lang: language must be one of fr, nl, en, got '{lang}'")
    try:
        layers = context_layers(data)
    except DataError as exc:
        _log.warning("map drawn without a base map: %s", exc)
        return False
    if not layers:
        _log.warning(
            "map drawn without a base map: the data folder has no context layer"
        )
        return False
    settings = _settings()
    box = None
    if bounds is not None:
        w, s, e, n = (float(v) for v in bounds)
        dx, dy = max((e - w) / 4, 0.005), max((n - s) / 4, 0.005)
        box = shapely.box(w - dx, s - dy, e + dx, n + dy)
    from .labels import ui  # labels import the registry: read only when drawing

    panes = settings["panes"]
    m.add_child(_Panes({k: v for k, v in panes.items() if k != "labels"},
                       settings.get("background", "#eeece7")))  # fmt: skip
    base = folium.FeatureGroup(name=_text(ui("context", lang)), control=True)
    names = folium.FeatureGroup(name=_text(ui("context_names", lang)), control=True)
    name_col = settings["names"][lang]
    drawn = False
    for name, gdf in layers.items():
        spec = settings["layers"][name]
        if (
            not lines
            and spec.get("pane") == "below"
            or not lines
            and name in ("streets", "rail")
        ):
            continue
        part = _in_bounds(gdf, box)
        if not len(part):
            continue
        style = dict(spec.get("style", {}))
        folium.GeoJson(
            part[["geometry"]].__geo_interface__,
            style_function=lambda _f, s=style: s,
            pane=f"bxlplan-{spec.get('pane', 'lines')}",
            interactive=False,
            control=False,
        ).add_to(base)
        drawn = True
        if "label_zoom" in spec and name_col in part:
            rows = [
                [float(lat), float(lon), _text(t)]
                for lat, lon, t in zip(
                    part["label_lat"], part["label_lon"], part[name_col], strict=True
                )
                if isinstance(t, str) and t
            ]
            names.add_child(
                _Labels(rows, spec["label_zoom"], spec.get("label_class", "bxlplan-label"),
                        f"bxlplan-labels-{name}", int(panes["labels"]), m.get_name())
            )  # fmt: skip
    if drawn:
        base.add_to(m)
        names.add_to(m)
    return drawn


def add_basemap(m: folium.Map, basemap: str | None, lang: str = "fr") -> bool:
    """Add a tile base map (needs network access when the page is opened).

    Parameters
    ----------
    m
        The map.
    basemap
        ``osm``, ``urbis`` or ``none`` (or ``None``): ``layers/styles.yaml``
        ``basemaps``.
    lang
        The language of the UrbIS map (``fr``, ``nl``; ``en`` takes French).

    Returns
    -------
    bool
        Whether a tile layer was added.

    Raises
    ------
    ConfigError
        For an unknown base map.

    Examples
    --------
    >>> add_basemap(folium.Map(tiles=None), "none")
    False
    >>> add_basemap(folium.Map(tiles=None), "google")
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: --basemap: unknown base map 'google'; choose none, osm, urbis
    """
    if basemap in (None, "none"):
        return False
    tiles = read_catalog_file("styles.yaml")["basemaps"]
    if basemap not in tiles:
        raise ConfigError(
            f"--basemap: unknown base map '{basemap}'; choose "
            + ", ".join(["none", *tiles])
        )
    spec = tiles[basemap]
    if "wms_layers" in spec:
        folium.WmsTileLayer(
            url=spec["url"], layers=spec["wms_layers"].get(lang, "urbisFRGray"),
            fmt="image/png", transparent=False, attr=_text(spec["attribution"]),
            name=_text(basemap), overlay=False, control=False,
            max_zoom=int(spec.get("max_zoom", 19)),
        ).add_to(m)  # fmt: skip
    else:
        folium.TileLayer(
            tiles=spec["url"], attr=_text(spec["attribution"]), name=_text(basemap),
            overlay=False, control=False, max_zoom=int(spec.get("max_zoom", 19)),
        ).add_to(m)  # fmt: skip
    return True
