"""Population of any unit or grid: a dasymetric estimate from official zone totals.

The finest official population for Brussels is Statbel's registered population per
statistical sector (1 Jan 2024, catalog layer ``population_sectors``); the commune totals
(1 Jan 2020, ``population_communes``) are the fallback when the sector file is absent,
and users can bring their own points or polygons (:func:`estimate_population`).

Each source zone's total :math:`P_z` is spread over its *residential* land
:math:`R_z` - land-use polygons whose function is housing or mixed (PRAS when present,
OSM ``landuse=residential`` otherwise) - at a uniform density (binary dasymetric
mapping, Eicher & Brewer 2001; Mennis 2003), capped at a plausible maximum
:math:`d_{max}` as in the limiting-variable method of Eicher & Brewer (2001):

.. math::

    d_z = \\min\\left(\\frac{P_z}{|R_z|},\\ d_{max}\\right), \\qquad
    e_z = \\frac{P_z - d_z |R_z|}{|O_z|}

where :math:`O_z` is the zone's other land: neither residential nor green/transport
(or, when there is none, every non-residential part of the zone). The cap keeps a
sector whose residential land is a mapping sliver (a park or rail-yard sector touched
by a neighbouring residential polygon) from piling its residents onto that sliver; a
zone without residential land gets :math:`d_z = 0` and all its residents on
:math:`O_z`. Both cases are reported with the zone codes. A target unit :math:`t` gets

.. math:: \\hat P_t = \\sum_z s_z \\left( d_z |t \\cap R_z| + e_z |t \\cap O_z| \\right),
    \\qquad s_z = \\max\\left(1,\\ \\frac{P_z}{S_z}\\right), \\quad
    S_z = \\sum_t d_z |t \\cap R_z| + e_z |t \\cap O_z|

The renormalisation :math:`s_z` (1 when the targets cover the zone) makes targets that
tile the region receive every zone's total exactly even where zones stick out of them
(Statbel sectors and the UrbIS region outline differ by slivers along the border); it
never scales down, so overlapping targets each keep their own share (overlaps above
0.1 % of a zone's total are reported). A zone none of whose weighted land is covered is
spread over the part of its area the targets cover; one entirely outside them cannot be
placed and is reported with its code and population. Use ``renormalise=False`` for
targets that are only part of the region: they get their share, not whole totals.

References
----------
Eicher, C. L. & Brewer, C. A. (2001). Dasymetric mapping and areal interpolation:
implementation and evaluation. *Cartography and Geographic Information Science* 28(2),
125-138.

Mennis, J. (2003). Generating surface models of population using dasymetric mapping.
*The Professional Geographer* 55(1), 31-42.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import DataError
from .catalog import catalog
from .provenance import provenance
from .readers import read_vector
from .validate import clean_geometries, to_working_crs

__all__ = [
    "MAX_RESIDENTIAL_DENSITY_KM2",
    "RESIDENTIAL_FUNCTIONS",
    "UNINHABITED_FUNCTIONS",
    "dasymetric_pieces",
    "dasymetric_population",
    "dasymetric_spread",
    "estimate_population",
    "read_user_population",
    "residential_land",
]

#: Land-use functions whose land receives residents first.
RESIDENTIAL_FUNCTIONS = ("housing", "mixed")
#: Functions that receive residents only when a zone has no other land.
UNINHABITED_FUNCTIONS = ("green", "transport")
#: Upper bound of a plausible density on residential land (inhabitants per km², i.e.
#: 1,000 per hectare: high-rise housing blocks). The densest Brussels sectors whose
#: residential land is mapped at all (over a fifth of the sector) reach about 63,000.
MAX_RESIDENTIAL_DENSITY_KM2 = 100_000.0
#: Land smaller than this (m²) counts as none: intersection noise, not a place to live.
MIN_AREA_M2 = 1.0
#: Zones whose land is covered by the targets for less than this share are reported.
FULL_COVERAGE = 0.999
#: Targets receiving more than this multiple of a zone's total are reported as
#: overlapping (the pack's neighbourhoods share about 1 m² in all: not reported).
OVERLAP_REPORTED = 1.001
_LIST = 12  # codes listed in a report line


def _codes_text(codes: np.ndarray) -> str:
    shown = ", ".join(map(str, codes[:_LIST]))
    more = f" and {len(codes) - _LIST} more" if len(codes) > _LIST else ""
    return f"[{shown}{more}]"


def _geoms(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """The geometries as a plain array of shapely objects (fast vectorised ops)."""
    return np.asarray(gdf.geometry.values, dtype=object)


def _function_geoms(
    landuse: gpd.GeoDataFrame, functions: tuple[str, ...]
) -> np.ndarray:
    return _geoms(landuse)[landuse["function"].isin(functions).to_numpy()]


def _land_by_zone(zones: np.ndarray, land: np.ndarray) -> np.ndarray:
    """The part of each zone covered by ``land`` (one dissolved geometry per zone).

    Each zone is intersected with the land polygons it touches and only those pieces
    are dissolved: no region-wide union, whose size would slow every intersection.
    """
    out = np.array([shapely.Polygon()] * len(zones), dtype=object)
    if len(land) == 0 or len(zones) == 0:
        return out
    z_idx, l_idx = shapely.STRtree(land).query(zones, predicate="intersects")
    pieces = shapely.intersection(zones[z_idx], land[l_idx])
    order = np.argsort(z_idx, kind="stable")
    z_sorted = z_idx[order]
    starts = np.flatnonzero(np.r_[True, z_sorted[1:] != z_sorted[:-1]])
    for start, stop in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        out[z_sorted[start]] = shapely.union_all(pieces[order[start:stop]])
    return out


def _check_landuse(landuse: gpd.GeoDataFrame) -> None:
    if "function" not in landuse:
        raise DataError(
            "the land-use layer needs a 'function' column (load it with "
            "bxlplan.load('pras') or bxlplan.load('landuse_osm'))"
        )


def _check_crs(*layers: tuple[str, gpd.GeoDataFrame]) -> None:
    crs = {name: gdf.crs for name, gdf in layers}
    first = next(iter(crs.values()))
    if first is None or any(c is None or c != first for c in crs.values()):
        found = ", ".join(
            f"{n}: {c.to_string() if c is not None else 'none'}" for n, c in crs.items()
        )
        raise DataError(
            f"the population layers must share one CRS (EPSG:31370); found {found}. "
            "Load them with bxlplan.load or reproject them with .to_crs('EPSG:31370')."
        )


def _zone_codes(zones: gpd.GeoDataFrame) -> np.ndarray:
    if "code" in zones:
        return zones["code"].astype(str).to_numpy()
    return zones.index.astype(str).to_numpy()


def _zone_totals(
    zones: gpd.GeoDataFrame, column: str, label: str
) -> tuple[np.ndarray, np.ndarray]:
    codes = _zone_codes(zones)
    if column not in zones:
        raise DataError(
            f"the {label} layer has no '{column}' column with the number of "
            f"inhabitants (its columns: {', '.join(map(str, zones.columns))})"
        )
    values = pd.to_numeric(zones[column], errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        raise DataError(
            f"the {label} layer's '{column}' must be a non-negative number on every "
            f"{label}; {label}(s) {_codes_text(codes[bad])} have "
            f"{[zones[column].iloc[i] for i in np.flatnonzero(bad)[:_LIST]]}. Fix "
            "these values (0 for an uninhabited zone)."
        )
    return codes, values


def _polygon_parts(
    geoms: np.ndarray, values: np.ndarray, zone: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Explode (multi)polygons and collections into polygons, carrying their values."""
    for _ in range(2):  # collections may hold multipolygons
        geoms, idx = shapely.get_parts(geoms, return_index=True)
        values, zone = values[idx], zone[idx]
    keep = shapely.area(geoms) > 0
    return geoms[keep], values[keep], zone[keep]


def residential_land(
    landuse: gpd.GeoDataFrame, zones: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """Residential land of each zone (one dissolved geometry per zone).

    Zones with no residential land get their whole area (and a ``fallback`` flag).

    Parameters
    ----------
    landuse : GeoDataFrame
        Land use with a ``function`` column; ``housing`` and ``mixed`` are residential.
    zones : GeoDataFrame
        The zones (EPSG:31370), with a ``code`` when they have one.

    Returns
    -------
    GeoDataFrame
        One row per zone: ``code``, ``fallback`` (True when the whole zone stands in)
        and the residential land.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> zones = gpd.GeoDataFrame({"code": ["z"], "population": [100]},
    ...                          geometry=[shapely.box(0, 0, 200, 100)], crs=31370)
    >>> landuse = gpd.GeoDataFrame({"function": ["housing"]},
    ...                            geometry=[shapely.box(0, 0, 100, 100)], crs=31370)
    >>> halves = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100),
    ...                                     shapely.box(100, 0, 200, 100)], crs=31370)
    >>> land = residential_land(landuse, zones)
    >>> land.area.tolist(), land["fallback"].tolist()
    ([10000.0], [False])
    """
    _check_landuse(landuse)
    zg = _geoms(zones)
    geoms = _land_by_zone(zg, _function_geoms(landuse, RESIDENTIAL_FUNCTIONS))
    empty = shapely.area(geoms) < MIN_AREA_M2
    geoms[empty] = zg[empty]
    return gpd.GeoDataFrame(
        {"code": _zone_codes(zones), "fallback": empty}, geometry=geoms, crs=zones.crs
    )


def dasymetric_pieces(
    targets: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    landuse: gpd.GeoDataFrame,
    *,
    column: str = "population",
    label: str = "zone",
    max_density: float | None = MAX_RESIDENTIAL_DENSITY_KM2,
    renormalise: bool = True,
    report: list[str] | None = None,
) -> pd.DataFrame:
    """Spread each zone's total over the targets: one row per (target, zone) piece.

    The method and its formulas are in the module docstring.

    Parameters
    ----------
    targets
        Polygons receiving residents (EPSG:31370): grid cells, neighbourhoods, any
        units.
    zones
        Source zones with their totals: Statbel sectors, communes, a user's polygons.
        ``code`` names them in reports (else the index).
    landuse
        Land use with a ``function`` column (``load("pras")`` or ``load("landuse_osm")``,
        optionally with green spaces as ``function="green"``).
    column
        The column of ``zones`` holding the number of inhabitants.
    label
        What a zone is called in reports and errors (``sector``, ``commune``).
    max_density
        Cap on the density on residential land, inhabitants per km² (``None``: no cap,
        the plain binary method).
    renormalise
        Scale each zone's densities up so that the targets receive its total exactly
        where part of the zone lies outside them (targets that tile the region).
        ``False`` keeps the densities: targets covering part of the region get their
        share only.
    report
        List to which notes about fallbacks and coverage are appended.

    Returns
    -------
    DataFrame
        ``target`` (position in ``targets``), ``zone`` (position in ``zones``),
        ``code`` (the zone's code) and ``population`` (inhabitants the zone gives the
        target). Summed by ``zone`` it gives each zone's total (when renormalised and
        covered); summed by ``target``, :func:`dasymetric_spread`.

    Raises
    ------
    DataError
        When a total is missing, negative or not finite, or the layers' CRS differ.

    Examples
    --------
    One zone of 100 residents whose housing is its western half:

    >>> import geopandas as gpd, shapely
    >>> zones = gpd.GeoDataFrame({"code": ["z"], "population": [100]},
    ...                          geometry=[shapely.box(0, 0, 200, 100)], crs=31370)
    >>> landuse = gpd.GeoDataFrame({"function": ["housing"]},
    ...                            geometry=[shapely.box(0, 0, 100, 100)], crs=31370)
    >>> halves = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100),
    ...                                     shapely.box(100, 0, 200, 100)], crs=31370)
    >>> dasymetric_pieces(halves, zones, landuse, label="sector")
       target  zone code  population
    0       0     0    z       100.0
    """
    report = report if report is not None else []
    _check_landuse(landuse)
    _check_crs(("targets", targets), (label, zones), ("land use", landuse))
    codes, P = _zone_totals(zones, column, label)
    n = len(zones)
    zg = _geoms(zones)
    tg = _geoms(targets)

    res_land = _function_geoms(landuse, RESIDENTIAL_FUNCTIONS)
    res = _land_by_zone(zg, res_land)
    a_res = shapely.area(res)
    a_res[a_res < MIN_AREA_M2] = 0.0
    cap = np.inf if max_density is None else float(max_density) / 1e6
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(a_res > 0, np.minimum(P / a_res, cap), 0.0)
    excess = P - d * a_res
    need = excess > 1e-9 * np.maximum(P, 1.0)
    other = np.array([shapely.Polygon()] * n, dtype=object)
    claimed = _function_geoms(landuse, RESIDENTIAL_FUNCTIONS + UNINHABITED_FUNCTIONS)
    other[need] = shapely.difference(zg[need], _land_by_zone(zg[need], claimed))
    a_other = shapely.area(other)
    bare = need & (a_other < MIN_AREA_M2)  # all residential, green or transport
    other[bare] = shapely.difference(zg[bare], res[bare])
    a_other = shapely.area(other)
    # all residential: no other land to take what the cap leaves
    whole = need & (a_other < MIN_AREA_M2) & (a_res > 0)
    d[whole] = P[whole] / a_res[whole]
    if whole.any():
        report.append(
            f"{label}(s) {_codes_text(codes[whole])} are all residential land: "
            "their density exceeds the cap and is kept"
        )
    need &= ~whole
    e = np.zeros(n)
    ok = need & (a_other >= MIN_AREA_M2)
    e[ok] = (P[ok] - d[ok] * a_res[ok]) / a_other[ok]

    no_res = (a_res <= 0) & (P > 0)
    if no_res.any():
        report.append(
            f"no residential land in {label}(s) {_codes_text(codes[no_res])} "
            f"({P[no_res].sum():,.0f} inhabitants): spread over their land that is "
            "neither green nor transport (their whole area when they have none)"
        )
    capped = need & (a_res > 0)
    if capped.any():
        extra = (P[capped] - d[capped] * a_res[capped]).sum()
        report.append(
            f"residential land too small for the population of {label}(s) "
            f"{_codes_text(codes[capped])}: density capped at {max_density:,.0f} "
            f"inhabitants/km² of residential land, the other {extra:,.0f} inhabitants "
            "spread over the rest of these zones"
        )

    has_r, has_o = d > 0, e > 0
    parts, dens, zone_of = _polygon_parts(
        np.concatenate([res[has_r], other[has_o]]),
        np.concatenate([d[has_r], e[has_o]]),
        np.concatenate([np.flatnonzero(has_r), np.flatnonzero(has_o)]),
    )
    t_idx, p_idx = shapely.STRtree(parts).query(tg, predicate="intersects")
    area = shapely.area(shapely.intersection(tg[t_idx], parts[p_idx]))
    value = area * dens[p_idx]
    z_idx = zone_of[p_idx]
    if renormalise:
        S = np.bincount(z_idx, weights=value, minlength=n)
        # scale up only: overlapping targets each keep their own share
        scale = np.where((S > 0) & (S < P), P / np.where(S > 0, S, 1.0), 1.0)
        value = value * scale[z_idx]
        over = S > P * OVERLAP_REPORTED
        if over.any():
            report.append(
                f"the targets overlap inside {label}(s) {_codes_text(codes[over])} "
                f"(up to {(S[over] / P[over]).max() - 1:.1%} of the total counted "
                "twice): each target keeps its own share"
            )
        partial = (S > 0) & (S < P * FULL_COVERAGE)
        if partial.any():
            share = S[partial] / P[partial]
            report.append(
                f"{int(partial.sum())} {label}(s) have part of their land outside the "
                f"targets (covered {share.min():.1%} to {share.max():.1%}: "
                f"{_codes_text(codes[partial])}): their totals are spread over the "
                "covered part"
            )
        lost = np.flatnonzero((P > 0) & (S <= 0))
        if len(lost):  # no weighted land inside the targets: use the zone's area
            t2, j = shapely.STRtree(zg[lost]).query(tg, predicate="intersects")
            a2 = shapely.area(shapely.intersection(tg[t2], zg[lost][j]))
            A = np.bincount(j, weights=a2, minlength=len(lost))
            placed = A[j] > 0
            t_idx = np.concatenate([t_idx, t2[placed]])
            z_idx = np.concatenate([z_idx, lost[j[placed]]])
            value = np.concatenate(
                [value, (P[lost[j]] * a2 / np.where(A[j] > 0, A[j], 1))[placed]]
            )
            moved = lost[A > 0]
            if len(moved):
                report.append(
                    f"{label}(s) {_codes_text(codes[moved])}: none of their weighted "
                    "land lies inside the targets; their residents are spread over the "
                    "part of the zone that does"
                )
            gone = lost[A <= 0]
            if len(gone):
                report.append(
                    f"{label}(s) outside every target, their residents left out: "
                    + ", ".join(
                        f"{c} ({p:,.0f})"
                        for c, p in zip(codes[gone], P[gone], strict=True)
                    )
                )
    keep = value > 0
    return pd.DataFrame(
        {
            "target": t_idx[keep],
            "zone": z_idx[keep],
            "code": codes[z_idx[keep]],
            "population": value[keep],
        }
    )


def dasymetric_spread(
    targets: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    landuse: gpd.GeoDataFrame,
    **kwargs: Any,
) -> pd.Series:
    """Estimate the population of each target from zone totals (module docstring).

    Parameters
    ----------
    targets, zones, landuse, **kwargs
        As for :func:`dasymetric_pieces`.

    Returns
    -------
    Series
        Estimated inhabitants :math:`\\hat P_t`, indexed like ``targets``.

    Examples
    --------
    One zone of 100 residents whose housing is its western half:

    >>> import geopandas as gpd, shapely
    >>> zones = gpd.GeoDataFrame({"code": ["z"], "population": [100]},
    ...                          geometry=[shapely.box(0, 0, 200, 100)], crs=31370)
    >>> landuse = gpd.GeoDataFrame({"function": ["housing"]},
    ...                            geometry=[shapely.box(0, 0, 100, 100)], crs=31370)
    >>> halves = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100),
    ...                                     shapely.box(100, 0, 200, 100)], crs=31370)
    >>> dasymetric_spread(halves, zones, landuse, label="sector").round(6).tolist()
    [100.0, 0.0]
    """
    pieces = dasymetric_pieces(targets, zones, landuse, **kwargs)
    est = np.bincount(
        pieces["target"].to_numpy(),
        weights=pieces["population"].to_numpy(),
        minlength=len(targets),
    )
    return pd.Series(est, index=targets.index, name="population_est")


def dasymetric_population(
    targets: gpd.GeoDataFrame,
    communes: gpd.GeoDataFrame,
    population: pd.DataFrame,
    landuse: gpd.GeoDataFrame,
    *,
    report: list[str] | None = None,
    **kwargs: Any,
) -> pd.Series:
    """Estimate the population of each target from the commune totals.

    The fallback when the sector population is absent; the method is
    :func:`dasymetric_pieces` with the communes as zones.

    Parameters
    ----------
    targets
        Polygons (EPSG:31370): neighbourhoods, grid cells, any units.
    communes
        The communes layer (``code`` = NIS code).
    population
        Commune totals: a table with ``code`` and ``value`` (``load("population_communes")``).
    landuse
        Land use with a ``function`` column (``load("landuse_osm")`` or ``load("pras")``).
    report, **kwargs
        As for :func:`dasymetric_pieces`.

    Returns
    -------
    Series
        Estimated inhabitants, indexed like ``targets``.

    Raises
    ------
    DataError
        As :func:`dasymetric_pieces`, or when a commune has no total.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> communes = gpd.GeoDataFrame({"code": [21001]},
    ...                             geometry=[shapely.box(0, 0, 200, 100)], crs=31370)
    >>> totals = pd.DataFrame({"code": [21001], "value": [100.0]})
    >>> landuse = gpd.GeoDataFrame({"function": ["housing"]},
    ...                            geometry=[shapely.box(0, 0, 100, 100)], crs=31370)
    >>> halves = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100),
    ...                                     shapely.box(100, 0, 200, 100)], crs=31370)
    >>> dasymetric_population(halves, communes, totals, landuse).tolist()
    [100.0, 0.0]
    """
    pop = population.set_index(population["code"].astype(int))["value"]
    codes = communes["code"].astype(int)
    missing = sorted(set(codes) - set(pop.index))
    if missing:
        raise DataError(
            f"population table has no total for commune(s) {missing}: every commune of "
            "the communes layer needs one"
        )
    zones = gpd.GeoDataFrame(
        {"code": codes.to_numpy(), "population": pop.reindex(codes).to_numpy()},
        geometry=communes.geometry.values,
        crs=communes.crs,
    )
    return dasymetric_spread(
        targets, zones, landuse, label="commune", report=report, **kwargs
    )


def read_user_population(
    user: gpd.GeoDataFrame | str | os.PathLike[str],
    *,
    column: str = "population",
    layer: str | None = None,
    report: list[str] | None = None,
) -> gpd.GeoDataFrame:
    """Read and check a user's population: points or polygons with a number of inhabitants.

    Parameters
    ----------
    user
        A GeoDataFrame or a vector file (GeoPackage, GeoJSON, Shapefile).
    column
        The field with the number of inhabitants (matched case-insensitively).
    layer
        The layer of a multi-layer file.
    report
        List to which notes about what was read are appended.

    Returns
    -------
    GeoDataFrame
        In EPSG:31370 with a float ``population`` column and ``code`` (from ``code``,
        ``id`` or ``name`` when present, else the row number); ``.attrs["bxlplan"]``
        holds the provenance and ``kind`` (``points`` or ``polygons``).

    Raises
    ------
    DataError
        When the layer has no CRS, does not fall in Brussels, has no ``column``, a value
        that is not a finite non-negative number, or mixes points and polygons.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> mine = gpd.GeoDataFrame({"Population": [30, 20]}, crs=31370,
    ...     geometry=[shapely.Point(149000, 170000), shapely.Point(149500, 170000)])
    >>> people = read_user_population(mine)
    >>> people["population"].tolist(), people.attrs["bxlplan"]["kind"]
    ([30.0, 20.0], 'points')
    """

    report = report if report is not None else []
    if isinstance(user, gpd.GeoDataFrame):
        gdf, where = user, "the user population layer"
        record = dict(user.attrs.get("bxlplan", {})) or {
            "source": "user-supplied GeoDataFrame",
            "licence": "user-supplied",
        }
    elif isinstance(user, (str, os.PathLike)):
        path = Path(user)
        if not path.is_file():
            raise DataError(f"user population file {path} does not exist")
        gdf, where = read_vector(path, layer=layer), str(path)
        record = provenance(None, path, [])
    else:
        raise DataError(
            f"user population must be a GeoDataFrame or a file path, got "
            f"{type(user).__name__}"
        )
    if gdf.crs is None:
        raise DataError(
            f"{where} has no coordinate reference system: set it (e.g. "
            "gdf.set_crs('EPSG:31370'), a .prj for a Shapefile, a 'crs' member for "
            "GeoJSON) so the population can be placed."
        )
    gdf = clean_geometries(to_working_crs(gdf, where, layer), where, report, layer)
    if len(gdf) == 0:
        raise DataError(f"{where} has no feature with a geometry")
    lower = {str(c).lower(): c for c in gdf.columns if c != gdf.geometry.name}
    if column.lower() not in lower:
        raise DataError(
            f"{where} has no '{column}' column with the number of inhabitants (the "
            f"columns are: {', '.join(map(str, lower.values())) or 'none'}). Name that "
            f"column '{column}' or pass the name of yours."
        )
    raw = gdf[lower[column.lower()]]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        pos = np.flatnonzero(bad)[:_LIST]
        raise DataError(
            f"{where}: '{lower[column.lower()]}' must be a finite number >= 0 on every "
            "feature; "
            + "; ".join(f"row {gdf.index[i]}: {raw.iloc[i]!r}" for i in pos)
            + (
                f" (and {int(bad.sum()) - len(pos)} more)"
                if bad.sum() > len(pos)
                else ""
            )
        )
    types = set(gdf.geom_type)
    if types <= {"Point"}:
        kind = "points"
    elif types <= {"Polygon", "MultiPolygon"}:
        kind = "polygons"
    else:
        raise DataError(
            f"{where}: population features must all be points or all polygons; found "
            f"{', '.join(sorted(types))}. Split multipoints into single points."
        )
    id_col = next((lower[c] for c in ("code", "id", "name") if c in lower), None)
    out = gpd.GeoDataFrame(
        {
            "code": gdf[id_col].astype(str).to_numpy()
            if id_col
            else np.arange(len(gdf)).astype(str),
            "population": values,
        },
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )
    out.attrs["bxlplan"] = {**record, "kind": kind, "report": list(report)}
    return out


def _points_to_targets(
    targets: gpd.GeoDataFrame, points: gpd.GeoDataFrame, report: list[str]
) -> pd.Series:
    tg, pg = _geoms(targets), _geoms(points)
    p_idx, t_idx = shapely.STRtree(tg).query(pg, predicate="within")
    # a point on a shared edge is within no target: take the first it touches
    on_edge = np.setdiff1d(np.arange(len(points)), p_idx)
    if len(on_edge):
        e_p, e_t = shapely.STRtree(tg).query(pg[on_edge], predicate="intersects")
        p_idx = np.concatenate([p_idx, on_edge[e_p]])
        t_idx = np.concatenate([t_idx, e_t])
    first = np.unique(p_idx, return_index=True)[1]
    p_idx, t_idx = p_idx[first], t_idx[first]
    pop = points["population"].to_numpy()
    outside = np.setdiff1d(np.arange(len(points)), p_idx)
    if len(outside):
        report.append(
            f"{len(outside)} user population point(s) lie outside every target "
            f"({pop[outside].sum():,.0f} inhabitants): left out"
        )
    est = np.bincount(t_idx, weights=pop[p_idx], minlength=len(targets))
    return pd.Series(est, index=targets.index, name="population_est")


def _source_record(layer: pd.DataFrame, label: str) -> dict[str, Any]:
    """Provenance of a population source: its catalog entry when it was loaded by
    name (title, year, licence), else what its ``.attrs`` say, else ``label``."""
    meta = dict(layer.attrs.get("bxlplan", {}))
    spec = catalog().get(meta.get("layer") or "")
    raw = spec.raw if spec is not None else {}
    return {
        "population_source": spec.name if spec is not None else label,
        "population_label": spec.title.get("en", spec.name) if spec else label,
        "year": meta.get("year", raw.get("year")),
        "file": meta.get("source"),
        "sha256": meta.get("sha256"),
        "licence": meta.get("licence") or (spec.licence if spec else None),
        "attribution": meta.get("attribution") or (spec.attribution if spec else None),
    }


def estimate_population(
    targets: gpd.GeoDataFrame,
    *,
    landuse: gpd.GeoDataFrame,
    sectors: gpd.GeoDataFrame | None = None,
    communes: gpd.GeoDataFrame | None = None,
    commune_table: pd.DataFrame | None = None,
    user: gpd.GeoDataFrame | str | os.PathLike[str] | None = None,
    user_column: str = "population",
    max_density: float | None = MAX_RESIDENTIAL_DENSITY_KM2,
    renormalise: bool = True,
    report: list[str] | None = None,
) -> pd.Series:
    """Population of each target from the best source available.

    In order of precedence: the user's population (points are summed into the target
    holding them; polygons are spread like sectors), Statbel's statistical sectors
    (``load("population_sectors")``), the commune totals (``load("communes")`` with
    ``load("population_communes")``). Zones are spread with :func:`dasymetric_pieces`:

    .. math:: \\hat P_t = \\sum_z s_z \\left( d_z |t \\cap R_z| + e_z |t \\cap O_z| \\right)

    (Eicher & Brewer 2001; Mennis 2003; see the module docstring).

    Parameters
    ----------
    targets
        Polygons receiving residents (EPSG:31370), e.g. the 100 m grid of origins.
    landuse
        Land use with a ``function`` column (PRAS when fetched, OSM land use otherwise).
    sectors
        Sectors with ``code`` and ``population``.
    communes, commune_table
        The communes layer and the commune totals (``code``, ``value``).
    user
        A GeoDataFrame or file of points or polygons with ``user_column``.
    user_column
        The user's field with the number of inhabitants.
    max_density, renormalise
        As for :func:`dasymetric_pieces`.
    report
        List to which notes are appended (the source used first).

    Returns
    -------
    Series
        Estimated inhabitants indexed like ``targets``; ``.attrs["bxlplan"]`` says which
        source was used: ``population_source`` (catalog layer or ``user``),
        ``population_label``, ``year``, ``file``, ``sha256``, ``licence``,
        ``attribution``, ``method`` and the ``report``.

    Raises
    ------
    DataError
        When no source is given, or a source fails its checks.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> zones = gpd.GeoDataFrame({"code": ["z"], "population": [100]},
    ...                          geometry=[shapely.box(0, 0, 200, 100)], crs=31370)
    >>> landuse = gpd.GeoDataFrame({"function": ["housing"]},
    ...                            geometry=[shapely.box(0, 0, 100, 100)], crs=31370)
    >>> halves = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100),
    ...                                     shapely.box(100, 0, 200, 100)], crs=31370)
    >>> people = estimate_population(halves, landuse=landuse, sectors=zones)
    >>> people.tolist(), people.attrs["bxlplan"]["population_source"]
    ([100.0, 0.0], 'statistical sectors')
    """
    report = report if report is not None else []
    notes: list[str] = []
    spread: dict[str, Any] = {
        "max_density": max_density,
        "renormalise": renormalise,
        "report": notes,
    }
    method = (
        f"dasymetric: zone totals over residential land (capped at {max_density:,.0f} "
        "inhabitants/km²)"
        if max_density is not None
        else "dasymetric: zone totals over residential land"
    )
    if user is not None:
        pts = read_user_population(user, column=user_column, report=notes)
        kind = pts.attrs["bxlplan"]["kind"]
        _check_crs(("targets", targets), ("user population", pts))
        if kind == "points":
            est = _points_to_targets(targets, pts, notes)
            method = "user points summed per target"
        else:
            est = dasymetric_spread(targets, pts, landuse, label="user zone", **spread)
        record = _source_record(pts, f"user-supplied population ({kind})")
        record["population_source"] = "user"
        record["population_label"] = f"user-supplied population ({kind})"
    elif sectors is not None:
        est = dasymetric_spread(targets, sectors, landuse, label="sector", **spread)
        record = _source_record(sectors, "statistical sectors")
    elif communes is not None and commune_table is not None:
        est = dasymetric_population(targets, communes, commune_table, landuse, **spread)
        record = _source_record(commune_table, "commune totals")
    else:
        raise DataError(
            "no population source: give sectors=load('population_sectors'), or "
            "communes=load('communes') with commune_table=load('population_communes'), "
            "or user= points or polygons with a population column"
        )
    year = record["year"]
    report.append(
        f"population from {record['population_label']}"
        + (f" ({year})" if year is not None else " (year not stated)")
        + f", {est.sum():,.0f} inhabitants"
    )
    report.extend(notes)
    est.attrs["bxlplan"] = {**record, "method": method, "report": list(notes)}
    return est
