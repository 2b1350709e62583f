"""The assessment: indicators and 0-100 scores for any set of areas.

``prepare()`` loads and builds what every assessment needs once (street graph,
residential origins with dasymetric population, facilities attached to the network,
access per origin); ``assess()`` aggregates it over areas and scores them. Scenarios reuse
a prepared context with modified inputs.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .._io import run_timestamp
from .._version import __version__
from ..errors import DataError
from ..indicators.access import (
    StreetGraph,
    counts_within,
    euclidean_nearest,
    pair_distances,
    two_step_fca,
)
from ..indicators.diversity import (
    hill,
    hill_distance_weighted,
    landuse_mix,
    landuse_surface,
    shares,
)
from ..indicators.registry import resident_weighted
from ..indicators.social import (
    dissimilarity,
    information_theory_h,
    local_entropy,
    weighted_quantiles,
)
from ..loading.areas import make_grid
from ..loading.catalog import get_spec
from ..loading.expect import require_plausible
from ..loading.facilities import categories as facility_categories
from ..loading.facilities import load_facilities
from ..loading.load import load, polygon_areas
from ..loading.population import RESIDENTIAL_FUNCTIONS, estimate_population
from .cache import baseline_key, cache_folder, get_or_build
from .scores import score_spread, score_table, scoring_config, validate_scoring

__all__ = ["Assessment", "Context", "assess", "prepare", "validate_areas"]

log = logging.getLogger(__name__)

FUNCTION_ORDER = [
    "green",
    "transport",
    "facilities",
    "economic",
    "mixed",
    "housing",
    "other",
]


@dataclass
class Context:
    """Everything an assessment needs, loaded and computed once."""

    data: Path | None
    config: dict[str, Any]
    graph: StreetGraph
    origins: (
        gpd.GeoDataFrame
    )  # points with population, income, income_class, neighbourhood
    facilities: gpd.GeoDataFrame
    categories: dict[str, dict[str, Any]]
    missing: list[str]
    surface: gpd.GeoDataFrame  # land-use functions, non-overlapping
    neighbourhoods: gpd.GeoDataFrame
    communes: gpd.GeoDataFrame
    poverty: pd.DataFrame | None
    income_reference: float
    network_mode: str = "network"
    sources: dict[str, Any] = field(default_factory=dict)
    partial: dict[str, str] = field(default_factory=dict)  # category -> why partial
    land: gpd.GeoDataFrame | None = None  # every 100 m cell: land_m2, residential_m2
    user_values: dict[str, pd.Series] = field(default_factory=dict)  # id -> by code
    _access: dict[str, Any] = field(default_factory=dict, repr=False)
    _site: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # (access, origins, zones): the shortage zones of that access and those origins
    _shortage: tuple[Any, Any, gpd.GeoDataFrame] | None = field(
        default=None, repr=False, compare=False
    )


def _zoning(data: Path, green: gpd.GeoDataFrame, report: list[str]) -> gpd.GeoDataFrame:
    try:
        zoning = load("pras", data)
        report.append("land-use mix from the PRAS/GBP zoning")
    except DataError:
        zoning = load("landuse_osm", data)
        report.append(
            "land-use mix from OSM land use (stand-in for the PRAS) plus public green spaces"
        )
        zoning = pd.concat(
            [
                zoning[["function", "geometry"]],
                green.assign(function="green")[["function", "geometry"]],
            ],
            ignore_index=True,
        )
    return gpd.GeoDataFrame(zoning, geometry="geometry", crs=green.crs)


def prepare(
    data: str | Path | None = None,
    *,
    config: dict[str, Any] | None = None,
    network: bool = True,
    progress: Any = None,
    layers: dict[str, Any] | None = None,
    population: str | Path | gpd.GeoDataFrame | None = None,
    cache: str | Path | bool | None = None,
) -> Context:
    """Load every layer the assessment needs and compute access for all origins.

    Parameters
    ----------
    data
        The data folder (default ``$BXLPLAN_DATA``).
    config
        Scoring configuration (default ``layers/scoring.yaml``).
    network
        ``False`` uses straight-line distances instead of the street network: an
        explicit, labelled fallback (column names keep saying ``_m``; ``.attrs`` and
        the ``distance_mode`` say "euclidean").
    progress
        Called with a short message at each step (``"access: pharmacy (6/16)"``).
    layers
        Already-loaded layers to reuse (name -> GeoDataFrame). The cache is not used
        with them: their content cannot be known from the files.
    population
        Your own population: points or polygons (a file or a GeoDataFrame) with a
        ``population`` column. They take precedence over the official sectors (2024),
        which take precedence over the commune totals (2020). The cache is not used
        with a GeoDataFrame.
    cache
        The baseline cache (:mod:`bxlplan.scoring.cache`): ``None`` or ``False`` (the
        default) prepares without it; ``True`` uses ``$BXLPLAN_CACHE`` or the user's
        cache folder; a path uses that folder. A cached context is reused when every
        input file, catalog file and preparation setting is unchanged; the scoring-only
        keys of ``config`` (weights, rules, population floor, ...) are then replaced,
        so that ``assess`` re-scores without touching the network. The command line
        uses the cache by default (``--cache DIR``, ``--no-cache``).

    Raises
    ------
    ConfigError
        When ``cache`` names a file instead of a folder, or the configuration is
        invalid.
    """
    from ..loading.catalog import data_dir

    folder = data_dir(data)
    config = validate_scoring(config) if config is not None else scoring_config()
    root = cache_folder(cache)
    if root is not None and (layers or isinstance(population, gpd.GeoDataFrame)):
        log.info("baseline cache not used: layers or population given as frames")
        root = None
    build = partial(_prepare, folder, config, network, progress, layers, population)
    if root is None:
        return build()
    step = progress or (lambda _msg: None)
    step("baseline: hashing the inputs")
    key, parts = baseline_key(folder, config, network=network, population=population)
    log.info(
        "baseline key %s: %d input files (%d present), %d catalog files",
        key[:12], len(parts["files"]), sum(v is not None for v in parts["files"].values()),
        len(parts["catalog"]),
    )  # fmt: skip
    ctx, hit = get_or_build(
        root, key, build, meta={"data": str(folder)}, progress=progress
    )
    if hit:  # the stored context with this run's scoring-only settings
        ctx.config = config
    return ctx


def _prepare(
    folder: Path,
    config: dict[str, Any],
    network: bool,
    progress: Any,
    layers: dict[str, Any] | None,
    population: str | Path | gpd.GeoDataFrame | None,
) -> Context:
    """The preparation itself (:func:`prepare` without the cache)."""
    report: list[str] = []
    layers = dict(layers or {})

    def get(name: str):
        if name not in layers:
            # the same plausibility checks as `bxlplan check`: a layer that cannot
            # cover the region is refused here, before minutes of work on it
            layers[name] = load(name, folder)
            require_plausible(get_spec(name), layers[name])
        return layers[name]

    step = progress or (lambda _msg: None)
    step("loading layers")
    region, communes, hoods = get("region"), get("communes"), get("neighbourhoods")
    green = get("green_spaces")
    zoning = _zoning(
        folder, green, report
    )  # PRAS when fetched, else OSM land use + green
    surface = landuse_surface(zoning, FUNCTION_ORDER)
    step("estimating population")
    cell = float(config.get("origins_cell_m", 100))
    grid = make_grid(region, cell, "square")
    # the 2024 sector population; the 2020 commune totals only when it is absent
    has_sectors = "population_sectors" in layers or (
        get_spec("population_sectors").find_file(folder) is not None
    )
    sectors = get("population_sectors") if has_sectors else None
    if sectors is None:
        report.append("population from the commune totals: no sector population file")
    estimate = estimate_population(
        grid,
        landuse=zoning,
        sectors=sectors,
        communes=communes,
        commune_table=get("population_communes") if sectors is None else None,
        user=population,
        report=report,
    )
    grid["population"] = estimate.to_numpy()
    land = _land_cells(grid, surface)
    origins = grid.loc[grid["population"] > 0].reset_index(drop=True)
    origins["cell"] = origins.geometry.values  # kept for the shortage zones
    origins = origins.set_geometry(shapely.point_on_surface(origins.geometry.values))
    # income of the neighbourhood each origin lies in
    income = get("income_equivalised")
    hood_idx = hoods.sindex.query(origins.geometry.values, predicate="within")
    origins["neighbourhood"] = pd.array([pd.NA] * len(origins), dtype="Int64")
    origins.loc[hood_idx[0], "neighbourhood"] = hoods["code"].to_numpy()[hood_idx[1]]
    com_o, com_c = communes.sindex.query(origins.geometry.values, predicate="within")
    origins["commune"] = pd.array([pd.NA] * len(origins), dtype="Int64")
    origins.loc[com_o, "commune"] = communes["code"].to_numpy()[com_c]
    inc = income.set_index("code")["value"]
    origins["income"] = origins["neighbourhood"].map(inc).astype(float)
    ref = float(
        weighted_quantiles(
            origins["income"].to_numpy(),
            origins["population"].to_numpy(),
            np.array([0.5]),
        )[0]
    )
    k = int(config.get("income_classes", 5))
    breaks = weighted_quantiles(
        origins["income"].to_numpy(),
        origins["population"].to_numpy(),
        np.linspace(0, 1, k + 1)[1:-1],
    )
    origins["income_class"] = np.where(
        origins["income"].notna(),
        np.searchsorted(breaks, origins["income"].to_numpy(), side="right"),
        -1,
    )
    try:
        poverty = get("poverty_communes")
    except DataError:
        poverty = None
    if "facilities" not in layers:  # reuse the green spaces and region loaded above
        layers["facilities"] = load_facilities(
            get_spec("facilities"),
            folder,
            {n: layers[n] for n in ("green_spaces", "region")},
        )
    cats = facility_categories()
    fac = layers["facilities"] = facility_table(layers["facilities"], cats)
    missing = list(fac.attrs.get("bxlplan", {}).get("missing_categories", []))
    partial = dict(fac.attrs.get("bxlplan", {}).get("partial_categories", {}))
    user_values = _user_indicator_values(config, get)
    step("building the street graph")
    graph = StreetGraph(get("streets"))
    ctx = Context(
        data=folder, config=config, graph=graph, origins=origins, facilities=fac, categories=cats,
        missing=missing, surface=surface, neighbourhoods=hoods, communes=communes, poverty=poverty,
        income_reference=ref, network_mode="network" if network else "euclidean",
        partial=partial, land=land, user_values=user_values,
        sources={n: getattr(layer, "attrs", {}).get("bxlplan", {}).get("source") for n, layer in layers.items()},
    )  # fmt: skip
    ctx.sources["report"] = report
    ctx.sources["population"] = estimate.attrs.get("bxlplan", {})
    compute_access(ctx, progress=step)
    step("shortage zones")
    shortage_zones(ctx)  # area-independent: computed once, kept (and cached) with ctx
    return ctx


def facility_table(
    facilities: gpd.GeoDataFrame, categories: dict[str, dict[str, Any]]
) -> gpd.GeoDataFrame:
    """Check a facility layer (your own, or ``load("facilities")``) before any work.

    Only ``category`` and point geometries are required: a missing ``facility_id``
    is numbered (``user:<row>``), a missing ``name`` left empty; the layer is
    reprojected to EPSG:31370.

    Raises
    ------
    DataError
        When it is not a GeoDataFrame with a CRS, lacks ``category``, names an unknown
        category (listing the known ones), or has non-point or empty geometries.
    """
    if not isinstance(facilities, gpd.GeoDataFrame) or facilities.crs is None:
        raise DataError(
            "facilities: give a GeoDataFrame of points with a CRS and a 'category' "
            "column (e.g. bxlplan.load('facilities'))"
        )
    if "category" not in facilities:
        raise DataError(
            "facilities: the 'category' column is missing; columns: "
            f"{', '.join(map(str, facilities.columns))}"
        )
    unknown = sorted(set(facilities["category"].astype(str)) - set(categories))
    if unknown:
        raise DataError(
            f"facilities: unknown categories {unknown}; the categories of "
            f"layers/facilities.yaml are: {', '.join(categories)}"
        )
    kinds = set(facilities.geom_type.dropna())
    if facilities.geometry.is_empty.any() or facilities.geometry.isna().any():
        raise DataError("facilities: some rows have no geometry; drop or locate them")
    if not kinds <= {"Point"}:
        raise DataError(
            f"facilities: geometries must be points, found {', '.join(sorted(kinds))} "
            "(use representative points of polygons)"
        )
    out = facilities.to_crs(31370) if facilities.crs.to_epsg() != 31370 else facilities
    if "facility_id" not in out:
        out = out.assign(facility_id=[f"user:{i}" for i in range(len(out))])
    if "name" not in out:
        out = out.assign(name="")
    return out


def _land_cells(grid: gpd.GeoDataFrame, surface: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Every cell of the origins grid with its land area and its residential land area
    (functions housing and mixed of the non-overlapping land-use surface): the support
    of the site accessibility."""
    res = surface.loc[surface["function"].isin(RESIDENTIAL_FUNCTIONS)]
    parts = shapely.get_parts(res.geometry.values)
    tree = shapely.STRtree(parts)
    cells = grid.geometry.values
    c_idx, p_idx = tree.query(cells, predicate="intersects")
    pieces = shapely.area(shapely.intersection(cells[c_idx], parts[p_idx]))
    res_m2 = np.bincount(c_idx, weights=pieces, minlength=len(grid))
    return gpd.GeoDataFrame(
        {"land_m2": shapely.area(cells), "residential_m2": res_m2},
        geometry=cells,
        crs=grid.crs,
    )


def _user_indicator_values(config: dict[str, Any], get: Any) -> dict[str, pd.Series]:
    """Values of the scoring file's user indicators, by neighbourhood code."""
    out = {}
    for name, spec in (config.get("indicators") or {}).items():
        table = get(spec["layer"])
        column = spec.get("column", "value")
        if column not in table:
            raise DataError(
                f"layer '{spec['layer']}' ({table.attrs.get('bxlplan', {}).get('source')})"
                f" has no column '{column}' for the indicator '{name}' of the scoring "
                f"file; columns: {', '.join(map(str, table.columns))}"
            )
        out[name] = pd.to_numeric(table.set_index("code")[column], errors="coerce")
    return out


def _site_access(areas: gpd.GeoDataFrame, ctx: Context) -> pd.DataFrame:
    """Share of each area's residential land (all its land where it has none) whose
    cell reaches each category within its threshold.

    A cell counts with the part of it inside the area: its residential land times the
    share of the cell inside the area (residential land assumed even within a cell).
    """
    out = pd.DataFrame(index=areas.index)
    n = len(areas)
    if ctx.land is None or not ctx._site:
        return out
    cells = ctx.land.geometry.values
    a_idx, c_idx = shapely.STRtree(cells).query(
        areas.geometry.values, predicate="intersects"
    )
    inside = shapely.area(
        shapely.intersection(areas.geometry.values[a_idx], cells[c_idx])
    )
    land_m2 = ctx.land["land_m2"].to_numpy()
    frac = np.where(land_m2[c_idx] > 0, inside / land_m2[c_idx], 0.0)
    res_w = ctx.land["residential_m2"].to_numpy()[c_idx] * frac
    res_area = np.bincount(a_idx, weights=res_w, minlength=n)
    # areas with no residential land are weighed by all their land
    w = np.where(res_area[a_idx] > 0, res_w, inside)
    den = np.bincount(a_idx, weights=w, minlength=n)
    for cat, nearest in ctx._site.items():
        thr = int(ctx.categories[cat]["threshold_m"])
        reach = (nearest[c_idx] <= thr).astype(float)
        num = np.bincount(a_idx, weights=w * reach, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"site_{cat}_within_{thr}m_land_share"] = np.where(
                den > 0, num / den, np.nan
            )
    return out


def compute_access(ctx: Context, progress: Any = None) -> None:
    """Per origin and category: nearest distance, count within the threshold, gravity
    sum, and counts within the activity-mix distance (stored in ``ctx._access``)."""
    step = progress or (lambda _msg: None)
    origins = ctx.origins
    o_att = (
        ctx.graph.attach(origins.geometry) if ctx.network_mode == "network" else None
    )
    mix_d = float(ctx.config.get("activity_mix_distance_m", 800))
    beta_k = float(ctx.config.get("gravity_beta_at_threshold", 4.0))
    acc: dict[str, Any] = {}
    site: dict[str, np.ndarray] = {}
    land_pts = (
        shapely.point_on_surface(ctx.land.geometry.values)
        if ctx.land is not None
        else None
    )
    l_att = (
        ctx.graph.attach(gpd.GeoSeries(land_pts, crs=origins.crs))
        if land_pts is not None and ctx.network_mode == "network"
        else None
    )
    todo = [c for c in ctx.categories if c not in ctx.missing]
    for i, cat in enumerate(todo, start=1):
        info = ctx.categories[cat]
        step(f"access: {cat} ({i}/{len(todo)})")
        sub = ctx.facilities.loc[ctx.facilities["category"] == cat]
        thr = float(info["threshold_m"])
        ids, group = np.unique(sub["facility_id"].to_numpy(), return_inverse=True)
        if ctx.network_mode == "network":
            f_att = ctx.graph.attach(sub.geometry)
            nearest = ctx.graph.nearest(o_att, f_att)
            if l_att is not None:
                site[cat] = ctx.graph.nearest(l_att, f_att)
            pairs = pair_distances(
                ctx.graph, o_att, f_att, group, limit=max(thr, mix_d)
            )
        else:
            nearest = euclidean_nearest(origins.geometry.values, sub.geometry.values)
            if land_pts is not None:
                site[cat] = euclidean_nearest(land_pts, sub.geometry.values)
            tree = shapely.STRtree(sub.geometry.values)
            oi, fi = tree.query(
                origins.geometry.values, predicate="dwithin", distance=max(thr, mix_d)
            )
            d = shapely.distance(origins.geometry.values[oi], sub.geometry.values[fi])
            pairs = (
                pd.DataFrame({"origin": oi, "facility": group[fi], "distance": d})
                .groupby(["origin", "facility"], as_index=False)["distance"]
                .min()
            )
        n = len(origins)
        counts = counts_within(pairs, n, [thr, mix_d])
        within = pairs[pairs["distance"].to_numpy() <= thr]
        acc[cat] = {
            "threshold_m": thr,
            "nearest": nearest,
            "count": counts[thr].astype(float),
            "gravity": np.bincount(
                within["origin"].to_numpy(),
                weights=np.exp(-beta_k / thr * within["distance"].to_numpy()),
                minlength=n,
            ),
            "count_mix": counts[mix_d].astype(float),
            "pairs": within,
            "facility_ids": ids,
            "capacity": _capacity(sub, ids),
        }
    ctx._access = acc
    ctx._site = site


def latest_poverty_rate(poverty: pd.DataFrame) -> pd.Series:
    """Each commune's most recent known poverty rate (years without a value skipped)."""
    return (
        poverty.dropna(subset=["value"])
        .sort_values("year")
        .groupby("code")["value"]
        .last()
    )


def _poverty_segregation(
    ctx: Context, a_idx: np.ndarray, o_idx: np.ndarray, n: int
) -> pd.DataFrame:
    """Dissimilarity D and information-theory H of the at-risk-of-poverty population
    across the communes an area spans (NaN for areas within one commune).

    Sub-units are the parts of the area in each commune (residents t_c from the
    dasymetric origins); the poor are t_c times the commune's latest poverty rate.
    """
    out = pd.DataFrame(index=range(n), dtype=float)
    out["social_poverty_dissimilarity_across_communes"] = np.nan
    out["social_poverty_information_h_across_communes"] = np.nan
    if ctx.poverty is None:
        return out
    rate = latest_poverty_rate(ctx.poverty)
    commune = ctx.origins["commune"].to_numpy(dtype=float, na_value=np.nan)
    codes = np.array(sorted(rate.index), dtype=float)
    col = np.searchsorted(codes, commune[o_idx])
    ok = np.isfinite(commune[o_idx]) & (col < len(codes))
    ok[ok] &= codes[col[ok]] == commune[o_idx][ok]
    table = np.zeros((n, len(codes)))
    np.add.at(
        table, (a_idx[ok], col[ok]), ctx.origins["population"].to_numpy()[o_idx][ok]
    )
    r = rate.reindex(codes.astype(int)).to_numpy()
    for i in np.flatnonzero((table > 0).sum(axis=1) >= 2):
        t = table[i]
        poor = t * r
        out.loc[i, "social_poverty_dissimilarity_across_communes"] = dissimilarity(
            poor, t
        )
        out.loc[i, "social_poverty_information_h_across_communes"] = (
            information_theory_h(np.column_stack([poor, t - poor]))
        )
    return out


def _capacity(sub: gpd.GeoDataFrame, ids: np.ndarray) -> pd.Series | None:
    """Capacity per facility (index = position in ``ids``) when every facility of the
    category has one; None otherwise (2SFCA is then not computed, never guessed)."""
    if "capacity" not in sub or sub["capacity"].isna().any():
        return None
    cap = sub.groupby("facility_id")["capacity"].max()
    return pd.Series(cap.reindex(ids).to_numpy(), index=np.arange(len(ids)))


def _area_origins(
    areas: gpd.GeoDataFrame, origins: gpd.GeoDataFrame, buffer: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    geoms = (
        areas.geometry.values
        if buffer == 0
        else shapely.buffer(areas.geometry.values, buffer)
    )
    tree = shapely.STRtree(origins.geometry.values)
    a, o = tree.query(geoms, predicate="intersects")
    return a, o


def _weighted_mean(
    values: np.ndarray,
    weights: np.ndarray,
    area_idx: np.ndarray,
    origin_idx: np.ndarray,
    n: int,
) -> np.ndarray:
    v = values[origin_idx]
    w = weights[origin_idx]
    ok = np.isfinite(v)
    num = np.bincount(area_idx[ok], weights=(v * w)[ok], minlength=n)
    den = np.bincount(area_idx[ok], weights=w[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


SCORES = ["score_overall", "score_diversity", "score_social_mix", "score_services"]


@dataclass
class Assessment:
    """Scored areas plus shortage zones, with provenance and parameters.

    Attributes
    ----------
    areas
        One row per area: ``area_id``, names, indicators, ``score_*`` and ``flags``;
        provenance in ``areas.attrs["bxlplan"]`` (also :attr:`provenance`).
    shortage_zones
        Inhabited land beyond each category's threshold (``category``,
        ``threshold_m``, ``population_est``).
    context
        The prepared context the assessment used (:func:`prepare`).

    In a notebook the object shows a summary (counts, score medians, flags, missing and
    partial categories), not its rows; :meth:`explore` maps it and :meth:`to_file`
    writes it.
    """

    areas: gpd.GeoDataFrame
    shortage_zones: gpd.GeoDataFrame
    context: Context

    @property
    def provenance(self) -> dict[str, Any]:
        """Sources, parameters, report and score spread (``areas.attrs["bxlplan"]``)."""
        return self.areas.attrs.get("bxlplan", {})

    @property
    def flags(self) -> pd.DataFrame:
        """``area_id`` and ``flags`` (';'-separated codes, ``layers/indicators.yaml``)
        of every area."""
        cols = [c for c in ("area_id", "flags") if c in self.areas]
        return pd.DataFrame(self.areas[cols])

    def _summary(self) -> dict[str, Any]:
        areas = self.areas
        scored = (
            int(areas["score_overall"].notna().sum()) if "score_overall" in areas else 0
        )
        codes = (
            areas["flags"].fillna("").str.split(";").explode()
            if "flags" in areas
            else pd.Series(dtype=str)
        )
        codes = codes[codes.astype(bool)]
        per_area = codes[~codes.str.match(r"^(missing|partial):")]
        params = self.provenance.get("parameters", {})
        return {
            "areas": len(areas),
            "scored": scored,
            "medians": {c: float(areas[c].median()) for c in SCORES if c in areas},
            "flags": per_area.value_counts().sort_index().to_dict(),
            "missing": list(params.get("missing_categories", [])),
            "partial": dict(params.get("partial_categories", {})),
            "shortage_zones": len(self.shortage_zones),
            "distance_mode": params.get("distance_mode"),
        }

    def __repr__(self) -> str:
        s = self._summary()
        return (
            f"<Assessment: {s['areas']} areas, {s['scored']} scored, "
            f"{s['shortage_zones']} shortage zones>"
        )

    def _repr_html_(self) -> str:
        """A compact summary for notebooks (never the rows); every text from the data
        is HTML-escaped."""
        s = self._summary()

        def esc(v: Any) -> str:
            return html.escape(str(v), quote=True)

        def num(v: float) -> str:
            return "n/a" if not np.isfinite(v) else f"{v:.1f}"

        rows = [
            ("areas", f"{s['areas']:,}"),
            ("scored", f"{s['scored']:,}"),
            ("not scored", f"{s['areas'] - s['scored']:,}"),
            ("shortage zones", f"{s['shortage_zones']:,}"),
            ("distance", s["distance_mode"] or "n/a"),
        ]
        rows += [(f"median {c}", num(v)) for c, v in s["medians"].items()]
        rows += [(f"flag {k}", f"{v:,} areas") for k, v in s["flags"].items()]
        if s["missing"]:
            rows.append(("missing categories (no data)", ", ".join(s["missing"])))
        for cat, why in s["partial"].items():
            rows.append((f"partial category {cat}", why))
        body = "".join(
            f"<tr><th style='text-align:left'>{esc(k)}</th>"
            f"<td style='text-align:left'>{esc(v)}</td></tr>"
            for k, v in rows
        )
        return (
            "<div class='bxlplan-assessment'><strong>bxlplan Assessment</strong>"
            f"<table>{body}</table>"
            "<small>.areas, .shortage_zones, .flags, .provenance; .explore() maps it, "
            ".to_file(path) writes it</small></div>"
        )

    def explore(self, column: str = "score_overall", **kwargs: Any) -> Any:
        """An interactive map of the areas (:meth:`geopandas.GeoDataFrame.explore`).

        Defaults: the column as a choropleth, a tooltip with the area's identifier,
        name and scores, grey areas where the column is NaN (not scored); any keyword
        of ``explore`` overrides them.
        """
        areas = self.areas
        if column not in areas:
            raise DataError(
                f"the assessment has no column '{column}'; scores: "
                f"{', '.join(c for c in areas if str(c).startswith('score_'))}"
            )
        tooltip = [
            c for c in ["area_id", "name_fr", "name_nl", *SCORES, "flags"] if c in areas
        ]
        if column not in tooltip:
            tooltip.append(column)
        options: dict[str, Any] = {
            "column": column,
            "tooltip": tooltip,
            "cmap": "viridis",
            "missing_kwds": {"color": "lightgrey", "label": "not scored"},
            "style_kwds": {"weight": 0.5, "fillOpacity": 0.7},
        }
        options.update(kwargs)
        return areas.to_crs(4326).explore(**options)

    def to_file(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write one GeoPackage: the areas (layer ``areas``) and one
        ``shortage_<category>`` layer per category, with the provenance in each
        layer's metadata (as ``bxlplan assess`` writes them).

        Raises
        ------
        DataError
            When ``path`` does not end in ``.gpkg``, or exists and ``overwrite`` is
            False.
        """
        # the writer is an export: imported here, the one use of a higher layer,
        # declared in the architecture contract (.importlinter)
        from ..exports.gis import write_gpkg

        path = Path(path)
        if path.suffix.lower() != ".gpkg":
            raise DataError(
                f"{path}: Assessment.to_file writes a GeoPackage (.gpkg); for other "
                "formats use bxlplan.export.assessment(result, folder, formats)"
            )
        if path.exists() and not overwrite:
            raise DataError(f"{path} exists: pass overwrite=True to replace it")
        layers = {"areas": self.areas}
        for cat, zone in self.shortage_zones.groupby("category"):
            layers[f"shortage_{cat}"] = zone.reset_index(drop=True)
        return write_gpkg(layers, path, dict(self.provenance), overwrite=overwrite)


def validate_areas(
    areas: Any, data: str | Path | None = None, *, check_region: bool = True
) -> gpd.GeoDataFrame:
    """Check the areas given to :func:`assess` (see
    :func:`bxlplan.loading.load.polygon_areas`): a GeoDataFrame of polygons with a CRS,
    reprojected to EPSG:31370, with a unique ``area_id``."""
    return polygon_areas(areas, data=data, check_region=check_region)


def assess(
    areas: gpd.GeoDataFrame,
    ctx: Context | None = None,
    *,
    data: str | Path | None = None,
    dwellings: pd.DataFrame | None = None,
) -> Assessment:
    """Indicators and scores of each area.

    Parameters
    ----------
    areas
        Polygons in any CRS (``bxlplan.areas(...)``), checked first: a CRS,
        polygons only, a unique ``area_id`` (detected from common identifier fields,
        else the row number). An ``inhabited`` column (the neighbourhoods' catalog
        field) is respected.
    ctx
        A prepared context (:func:`prepare`); built from ``data`` when omitted.
    dwellings
        Optional dwellings by tenure per area (index ``area_id``; columns ``social``,
        ``total``) for the social-housing share against the target band.

    Returns
    -------
    Assessment
        ``areas`` with the indicator columns of the registry
        (``layers/indicators.yaml``; names carry unit and threshold, e.g.
        ``access_pharmacy_within_800m_share``), ``score_*`` and ``flags``; shortage
        zones per category. An area flagged ``uninhabited`` or ``small_population``
        gets NaN for every resident-weighted indicator and every score, never 0.

    Raises
    ------
    DataError
        When the areas are not polygons with a CRS, lie outside the region (checked
        when no context is given) or repeat identifiers; before any preparation.
    """
    if ctx is None:  # the areas are checked before minutes of preparation
        areas = validate_areas(areas, data)
        ctx = prepare(data)
    else:  # areas outside the context's region are flagged uninhabited
        areas = validate_areas(areas, ctx.data, check_region=False)
    areas = areas.reset_index(drop=True)
    n = len(areas)
    origins = ctx.origins
    pop = origins["population"].to_numpy()
    a_idx, o_idx = _area_origins(areas, origins)
    ind = pd.DataFrame(index=areas.index)
    ind["population_est"] = np.bincount(a_idx, weights=pop[o_idx], minlength=n)
    # --- functional diversity
    unmapped_max = float(ctx.config.get("landuse_unmapped_max", 0.5))
    mix = landuse_mix(areas, ctx.surface)
    unmapped = mix["mix_landuse_no_info_share"].to_numpy() > unmapped_max
    mix.loc[unmapped, [c for c in mix if c != "mix_landuse_no_info_share"]] = np.nan
    ind = ind.join(mix)
    act = sorted(ctx._access)
    counts = (
        np.column_stack([ctx._access[c]["count_mix"] for c in act])
        if act
        else np.zeros((len(origins), 0))
    )
    p_act = shares(counts) if act else np.full((len(origins), 1), np.nan)
    mix_d = float(ctx.config.get("activity_mix_distance_m", 800))
    near = (
        np.column_stack([ctx._access[c]["nearest"] for c in act])
        if act
        else np.zeros((len(origins), 0))
    )
    beta_mix = float(ctx.config.get("gravity_beta_at_threshold", 4.0)) / mix_d
    for q in (0, 1, 2):
        per_origin = hill(p_act, q)
        ind[f"mix_activity_hill_q{q}_mean"] = _weighted_mean(
            per_origin, pop, a_idx, o_idx, n
        )
        weighted = (
            hill_distance_weighted(counts, near, q, beta_mix) if act else per_origin
        )
        ind[f"mix_activity_hill_wt_q{q}_mean"] = _weighted_mean(
            weighted, pop, a_idx, o_idx, n
        )
    # --- social mix
    ind["social_income_median_popmean_eur"] = _weighted_mean(
        origins["income"].to_numpy(), pop, a_idx, o_idx, n
    )
    ind["social_income_ratio_to_region"] = (
        ind["social_income_median_popmean_eur"] / ctx.income_reference
    )
    k = int(ctx.config.get("income_classes", 5))
    buf = float(ctx.config.get("income_surroundings_m", 800))
    ba, bo = _area_origins(areas, origins, buf)
    cls = origins["income_class"].to_numpy()
    ok = cls[bo] >= 0
    class_pop = np.zeros((n, k))
    np.add.at(class_pop, (ba[ok], cls[bo][ok]), pop[bo][ok])
    ind["social_income_class_mix_entropy"] = local_entropy(class_pop)
    # Segregation across sub-units needs a group split inside each sub-unit. Income
    # classes do not give one (neighbourhood medians: one class per neighbourhood, D and
    # H would be trivially 1); commune poverty rates do: poor = residents x rate.
    ind = ind.join(_poverty_segregation(ctx, a_idx, o_idx, n))
    if ctx.poverty is not None:
        latest = latest_poverty_rate(ctx.poverty)
        cent = shapely.point_on_surface(areas.geometry.values)
        ai, ci = ctx.communes.sindex.query(cent, predicate="within")
        commune = pd.Series(np.nan, index=areas.index)
        commune.iloc[ai] = ctx.communes["code"].to_numpy()[ci].astype(float)
        ind["social_poverty_rate_commune"] = commune.map(latest)
    target = float(ctx.config.get("social_housing_target", 0.15))
    if dwellings is not None:
        dw = dwellings.reindex(areas["area_id"])
        with np.errstate(invalid="ignore", divide="ignore"):
            ind["social_housing_share"] = (dw["social"] / dw["total"]).to_numpy()
        ind["social_housing_gap_to_target_dwellings"] = (
            target * dw["total"] - dw["social"]
        ).to_numpy()
    else:
        ind["social_housing_share"] = np.nan  # unknown: no tenure data for these areas
    # --- user indicators (scoring file): resident-weighted mean of the values of the
    # neighbourhoods the residents live in
    hood = origins["neighbourhood"].to_numpy(dtype=float, na_value=np.nan)
    for name, values in ctx.user_values.items():
        per_origin = pd.Series(hood).map(values).to_numpy(dtype=float)
        ind[f"user_{name}"] = _weighted_mean(per_origin, pop, a_idx, o_idx, n)
    # --- distance to services
    for cat in ctx.categories:
        thr = int(ctx.categories[cat]["threshold_m"])
        prefix = f"access_{cat}"
        if cat not in ctx._access:
            ind[f"{prefix}_within_{thr}m_share"] = np.nan
            continue
        a = ctx._access[cat]
        within = (a["nearest"] <= thr).astype(float)
        ind[f"{prefix}_nearest_m"] = _weighted_mean(
            np.where(np.isfinite(a["nearest"]), a["nearest"], np.nan),
            pop,
            a_idx,
            o_idx,
            n,
        )
        ind[f"{prefix}_within_{thr}m_share"] = _weighted_mean(
            within, pop, a_idx, o_idx, n
        )
        ind[f"{prefix}_within_{thr}m_count"] = _weighted_mean(
            a["count"], pop, a_idx, o_idx, n
        )
        ind[f"{prefix}_gravity_{thr}m"] = _weighted_mean(
            a["gravity"], pop, a_idx, o_idx, n
        )
        if a.get("capacity") is not None:  # 2SFCA where every capacity is known
            sfca = two_step_fca(a["pairs"], a["capacity"], pop)
            ind[f"{prefix}_2sfca_per_1000_within_{thr}m"] = 1000 * _weighted_mean(
                sfca, pop, a_idx, o_idx, n
            )
    ind = ind.join(_site_access(areas, ctx))
    # --- who is scored: inhabited by the catalog and by the data
    floor = float(ctx.config.get("population_floor", 200))
    catalog_says = (
        areas["inhabited"].fillna(True).astype(bool).to_numpy()
        if "inhabited" in areas
        else np.ones(n, dtype=bool)
    )
    pop_est = ind["population_est"].to_numpy()
    uninhabited = ~catalog_says | (pop_est <= 0)
    small = ~uninhabited & (pop_est < floor)
    unscored = uninhabited | small
    user_cols = [f"user_{name}" for name in ctx.user_values]
    ind.loc[unscored, resident_weighted(list(ind.columns)) + user_cols] = np.nan
    have = [c for c in ctx.categories if c in ctx._access]
    complete = [c for c in have if c not in ctx.partial]
    scores = score_table(ind, complete, ctx.config, len(act))
    scores.loc[unscored] = np.nan
    flags = _flags(n, uninhabited, small, unmapped, ctx)
    out = areas.join(ind).join(scores).copy()  # one block per dtype, not hundreds
    out["flags"] = flags
    shortage = shortage_zones(ctx)
    spread = score_spread(ind.loc[~unscored], complete, ctx.config, len(act))
    params = {
        "distance_mode": ctx.network_mode,
        "thresholds_m": {c: int(v["threshold_m"]) for c, v in ctx.categories.items()},
        "missing_categories": ctx.missing,
        "partial_categories": ctx.partial,
        "scored_categories": complete,
        "population_floor": floor,
        "landuse_unmapped_max": unmapped_max,
        "income_reference_eur": ctx.income_reference,
        "origins": int(len(origins)),
        "origins_cell_m": ctx.config.get("origins_cell_m"),
        "weights": ctx.config.get("weights"),
        "rules": ctx.config.get("rules"),
        "user_indicators": ctx.config.get("indicators") or {},
    }
    out.attrs["bxlplan"] = {
        "bxlplan_version": __version__,
        "created_at": run_timestamp().isoformat(),
        "data": str(ctx.data),
        "sources": {k: v for k, v in ctx.sources.items() if k != "report"},
        "report": ctx.sources.get("report", [])
        + [
            f"category '{c}' has no data: left out of the services score"
            for c in ctx.missing
        ]
        + [
            f"category '{c}' is partial ({why}): shown, left out of the services score"
            for c, why in ctx.partial.items()
        ],
        "parameters": params,
        "score_spread": spread.round(3).to_dict(orient="index"),
    }
    return Assessment(out, shortage, ctx)


def _flags(
    n: int,
    uninhabited: np.ndarray,
    small: np.ndarray,
    unmapped: np.ndarray,
    ctx: Context,
) -> list[str]:
    """The ``flags`` column: short codes, ';'-separated (``layers/indicators.yaml``)."""
    common = [f"missing:{c}" for c in ctx.missing] + [
        f"partial:{c}" for c in ctx.partial
    ]
    out = []
    for i in range(n):
        codes = (
            (["uninhabited"] if uninhabited[i] else [])
            + (["small_population"] if small[i] else [])
            + (["landuse_unmapped"] if unmapped[i] else [])
            + common
        )
        out.append(";".join(codes))
    return out


def shortage_zones(ctx: Context) -> gpd.GeoDataFrame:
    """Inhabited land beyond each category's threshold ("zones de carence"): the union
    of the origin cells whose nearest facility is farther than the threshold.

    They do not depend on the areas assessed: computed once per access and origins
    (the unions take seconds) and remembered in the context; a copy is returned.
    """
    memo = ctx._shortage
    if memo is not None and memo[0] is ctx._access and memo[1] is ctx.origins:
        return memo[2].copy()
    gdf = _shortage_zones(ctx)
    ctx._shortage = (ctx._access, ctx.origins, gdf)
    return gdf.copy()


def _shortage_zones(ctx: Context) -> gpd.GeoDataFrame:
    cells = ctx.origins["cell"].to_numpy()
    pop = ctx.origins["population"].to_numpy()
    rows = []
    for cat, a in ctx._access.items():
        far = a["nearest"] > a["threshold_m"]
        if far.any():
            rows.append(
                {
                    "category": cat,
                    "threshold_m": int(a["threshold_m"]),
                    "population_est": float(pop[far].sum()),
                    "geometry": shapely.union_all(cells[far]),
                }
            )
    gdf = (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=ctx.origins.crs)
        if rows
        else gpd.GeoDataFrame(
            {"category": [], "threshold_m": [], "population_est": []},
            geometry=[],
            crs=ctx.origins.crs,
        )
    )
    return gdf
