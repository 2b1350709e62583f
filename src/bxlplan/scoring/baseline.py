"""The prepared baseline: :func:`prepare` loads every layer once and runs the stages
that do not depend on the areas assessed (origins, access, shortage zones).

The result, a :class:`~bxlplan.scoring.context.Context`, is what
:func:`bxlplan.scoring.assess.assess` aggregates over any areas, what scenarios modify,
and what the persistent cache (:mod:`bxlplan.scoring.cache`) stores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import ConfigError, DataError
from ..indicators.access import StreetGraph
from ..indicators.diversity import landuse_surface
from ..loading.areas import make_grid
from ..loading.catalog import get_spec
from ..loading.expect import require_plausible
from ..loading.facilities import categories as facility_categories
from ..loading.facilities import load_facilities
from ..loading.layers import land_use_functions
from ..loading.load import load
from ..loading.population import RESIDENTIAL_FUNCTIONS, estimate_population
from .access import compute_access, with_thresholds
from .aggregate import shortage_zones
from .cache import baseline_key, cache_folder, get_or_build
from .context import DISTANCES, Context
from .origins import make_origins
from .scores import scoring_config, validate_scoring

__all__ = ["check_network_coverage", "facility_table", "prepare"]

log = logging.getLogger(__name__)


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
    distance: str = "network",
    progress: Callable[[str], None] | None = None,
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
    distance
        ``"network"`` (default): walking distances along the street network.
        ``"euclidean"``: straight-line distances, an explicit, labelled fallback
        (column names keep saying ``_m``; ``ctx.distance`` and the provenance's
        ``parameters["distance"]`` say "euclidean"). The command line's
        ``--distance``.
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

    Returns
    -------
    Context
        The prepared baseline (:class:`~bxlplan.scoring.context.Context`).

    Raises
    ------
    ConfigError
        When ``cache`` names a file instead of a folder, ``distance`` is unknown, or
        the configuration is invalid.

    Examples
    --------
    On the data pack (a few minutes the first time; then read from the cache):

    >>> ctx = prepare(cache=True)  # doctest: +SKIP
    >>> ctx.distance  # doctest: +SKIP
    'network'

    An unknown distance mode is refused before anything is loaded:

    >>> prepare(distance="manhattan")
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: distance must be one of network, euclidean, not 'manhattan'
    """
    from ..loading.catalog import data_dir

    if distance not in DISTANCES:
        raise ConfigError(
            f"distance must be one of {', '.join(DISTANCES)}, not {distance!r}"
        )
    folder = data_dir(data)
    config = validate_scoring(config) if config is not None else scoring_config()
    root = cache_folder(cache)
    if root is not None and (layers or isinstance(population, gpd.GeoDataFrame)):
        log.info("baseline cache not used: layers or population given as frames")
        root = None
    build = partial(_prepare, folder, config, distance, progress, layers, population)
    if root is None:
        return build()
    step = progress or (lambda _msg: None)
    step("baseline: hashing the inputs")
    key, parts = baseline_key(folder, config, distance=distance, population=population)
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
        ctx = _rethreshold(ctx, config)
    return ctx


def _categories(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The facility categories with the scoring file's thresholds in effect; the
    catalog's kept as ``catalog_threshold_m`` (the search limit is set from it)."""
    cats = facility_categories()
    given = config.get("thresholds") or {}
    for cat, info in cats.items():
        info["catalog_threshold_m"] = info["threshold_m"]
        if cat in given:
            info["threshold_m"] = int(given[cat])
    return cats


def _rethreshold(ctx: Context, config: dict[str, Any]) -> Context:
    """A cached context with this run's thresholds (re-derived, never searched)."""
    want = {
        cat: int((config.get("thresholds") or {}).get(cat, info["catalog_threshold_m"]))
        for cat, info in ctx.categories.items()
    }
    changed = {c: t for c, t in want.items() if t != ctx.categories[c]["threshold_m"]}
    if not changed:
        return ctx
    ctx = with_thresholds(ctx, changed)
    ctx.config = config
    return ctx


def _prepare(
    folder: Path,
    config: dict[str, Any],
    distance: str,
    progress: Callable[[str], None] | None,
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
    graph = None
    if distance == "network":  # the network must cover the region: checked first
        step("building the street graph")
        graph = StreetGraph(get("streets"))
        check_network_coverage(
            graph, _land_samples(communes), communes, _source(layers["streets"]), "land"
        )
        step("loading layers")
    green = get("green_spaces")
    zoning = _zoning(
        folder, green, report
    )  # PRAS when fetched, else OSM land use + green
    surface = landuse_surface(zoning, list(land_use_functions()))  # overlap order
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
    origins, ref = make_origins(
        grid, hoods, communes, get("income_equivalised"),
        int(config.get("income_classes", 5)),
    )  # fmt: skip
    if graph is not None:  # and serve its residents, before facilities and access
        check_network_coverage(graph, origins, communes, _source(layers["streets"]))
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
    cats = _categories(config)
    fac = layers["facilities"] = facility_table(layers["facilities"], cats)
    missing = list(fac.attrs.get("bxlplan", {}).get("missing_categories", []))
    partial = dict(fac.attrs.get("bxlplan", {}).get("partial_categories", {}))
    user_values = _user_indicator_values(config, get)
    if graph is None:  # euclidean distances: the graph serves the site access only
        step("building the street graph")
        graph = StreetGraph(get("streets"))
    ctx = Context(
        data=folder, config=config, graph=graph, origins=origins, facilities=fac, categories=cats,
        missing=missing, surface=surface, neighbourhoods=hoods, communes=communes, poverty=poverty,
        income_reference=ref, distance=cast(Literal["network", "euclidean"], distance),
        partial=partial, land=land, user_values=user_values,
        sources={n: getattr(layer, "attrs", {}).get("bxlplan", {}).get("source") for n, layer in layers.items()},
    )  # fmt: skip
    ctx.sources["report"] = report
    ctx.sources["population"] = estimate.attrs.get("bxlplan", {})
    compute_access(ctx, progress=step)
    step("shortage zones")
    shortage_zones(ctx)  # area-independent: computed once, kept (and cached) with ctx
    return ctx


def _source(layer: Any) -> str:
    """Where a layer came from (its provenance), for messages."""
    source = getattr(layer, "attrs", {}).get("bxlplan", {}).get("source")
    return str(source) if source else "given as a GeoDataFrame"


def _land_samples(communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Points on a regular grid inside the communes (``network.land_sample_m``), each
    weighing 1 as ``population``, with its commune's ``commune`` code: the land the
    early network check (:func:`check_network_coverage`, ``what="land"``) uses."""
    from ..loading.catalog import read_catalog_file

    step = float(read_catalog_file("limits.yaml")["network"]["land_sample_m"])
    x0, y0, x1, y1 = communes.total_bounds
    xs, ys = np.meshgrid(np.arange(x0, x1, step) + step / 2, np.arange(y0, y1, step) + step / 2)  # fmt: skip
    pts = np.asarray(shapely.points(xs.ravel(), ys.ravel()))
    p_idx, c_idx = shapely.STRtree(communes.geometry.values).query(
        pts, predicate="within"
    )
    return gpd.GeoDataFrame(
        {"population": 1.0, "commune": communes["code"].to_numpy()[c_idx]},
        geometry=pts[p_idx],
        crs=communes.crs,
    )


def check_network_coverage(
    graph: StreetGraph,
    origins: gpd.GeoDataFrame,
    communes: gpd.GeoDataFrame,
    source: str = "",
    what: str = "residents",
) -> pd.DataFrame:
    """Check that a street network serves every inhabited commune, before the access
    computation: a network covering part of the region would give its far residents
    distances along the wrong streets, silently.

    A resident is served when the origin lies within ``network.served_within_m`` of a
    street (``layers/limits.yaml``, 250 m); every commune with residents must have at
    least ``network.commune_served_share`` (95 %) of them served. The preparation
    checks the land first (``what="land"``: points every 200 m inside the communes,
    at least ``network.commune_land_served_share``, 50 %, served), right after loading
    the streets and the communes, then the residents once they are estimated.

    Parameters
    ----------
    graph
        The street graph.
    origins
        Residential origins with ``population`` and ``commune`` (code).
    communes
        The communes, with ``code`` and ``name_fr`` (names in the message).
    source
        The street layer's source, named in the message.
    what
        ``"residents"`` (the origins weighted by ``population``) or ``"land"`` (points
        of :func:`_land_samples`, looser share).

    Returns
    -------
    pandas.DataFrame
        Per commune code: ``residents``, ``served_share`` and ``covered``.

    Raises
    ------
    DataError
        When a commune is not covered: the message names the layer, the communes it
        covers and those it does not, and what to do.

    Examples
    --------
    A street network of 1 km along one commune, none in the other:

    >>> import geopandas as gpd, shapely
    >>> from bxlplan.loading.network import edges_from_lines
    >>> line = shapely.LineString([(0, 0), (1000, 0)])
    >>> graph = StreetGraph(edges_from_lines(np.array([line], dtype=object)))
    >>> origins = gpd.GeoDataFrame({"population": [100.0, 50.0], "commune": [1, 2]},
    ...     geometry=gpd.points_from_xy([500, 500], [20, 5000]), crs=31370)
    >>> communes = gpd.GeoDataFrame({"code": [1, 2], "name_fr": ["Un", "Deux"]},
    ...     geometry=[shapely.box(0, -100, 1000, 100)] * 2, crs=31370)
    >>> check_network_coverage(graph, origins.iloc[:1], communes)
            residents  served_share  covered
    commune
    1           100.0           1.0     True
    >>> check_network_coverage(graph, origins, communes, "my_streets.gpkg")
    Traceback (most recent call last):
    ...
    bxlplan.errors.DataError: layer 'streets' (my_streets.gpkg): the street network
    serves 1 of 2 inhabited communes (Un); not Deux, where fewer than 95% of the
    residents lie within 250 m of one of its streets ... fallback)
    """
    from ..loading.catalog import read_catalog_file

    limits = read_catalog_file("limits.yaml")["network"]
    within = float(limits["served_within_m"])
    share_min = float(
        limits[
            "commune_served_share"
            if what == "residents"
            else "commune_land_served_share"
        ]
    )
    offset = graph.attach(origins.geometry).offset
    pop = origins["population"].to_numpy(dtype=float)
    table = (
        pd.DataFrame(
            {
                "commune": origins["commune"].to_numpy(),
                "residents": pop,
                "served": np.where(offset <= within, pop, 0.0),
            }
        )
        .groupby("commune")[["residents", "served"]]
        .sum()
    )
    table = table[table["residents"] > 0]
    table["served_share"] = table["served"] / table["residents"]
    table["covered"] = table["served_share"] >= share_min
    table = table.drop(columns="served")
    if table["covered"].all():
        return table
    names = communes.set_index("code")["name_fr"] if "name_fr" in communes else None

    def named(codes: Any) -> str:
        if names is None:
            return ", ".join(map(str, codes))
        return ", ".join(str(names.get(c, c)) for c in codes)

    ok, bad = table.index[table["covered"]], table.index[~table["covered"]]
    raise DataError(
        f"layer 'streets'{f' ({source})' if source else ''}: the street network "
        f"serves {len(ok)} of {len(table)} inhabited communes"
        f"{f' ({named(ok)})' if len(ok) else ''}; not {named(bad)}, where fewer than "
        f"{share_min:.0%} of the {what} lie within {within:g} m of one of its "
        "streets (layers/limits.yaml, network). Give a street network covering the "
        "whole region (e.g. the pack's, bxlplan.load('streets'), extended with "
        "yours), or use straight-line distances (--distance euclidean, a labelled "
        "fallback)"
    )


def facility_table(
    facilities: gpd.GeoDataFrame, categories: dict[str, dict[str, Any]]
) -> gpd.GeoDataFrame:
    """Check a facility layer (your own, or ``load("facilities")``) before any work.

    Only ``category`` and point geometries are required: a missing ``facility_id``
    is numbered (``user:<row>``), a missing ``name`` left empty; the layer is
    reprojected to EPSG:31370.

    Parameters
    ----------
    facilities
        Facility points with a CRS and a ``category`` column (optionally
        ``facility_id``, ``name``, ``capacity``).
    categories
        Category -> its catalog entry (``layers/facilities.yaml``): the known
        categories.

    Returns
    -------
    geopandas.GeoDataFrame
        The facilities in EPSG:31370 with ``facility_id`` and ``name`` (the layer
        itself when nothing had to change).

    Raises
    ------
    DataError
        When it is not a GeoDataFrame with a CRS, lacks ``category``, names an unknown
        category (listing the known ones), or has non-point or empty geometries.

    Examples
    --------
    >>> import geopandas as gpd
    >>> cats = {"pharmacy": {"threshold_m": 500}, "school": {"threshold_m": 800}}
    >>> mine = gpd.GeoDataFrame({"category": ["pharmacy", "school"]},
    ...     geometry=gpd.points_from_xy([149000, 150000], [170000, 171000]), crs=31370)
    >>> facility_table(mine, cats)[["category", "facility_id", "name"]]
       category facility_id name
    0  pharmacy      user:0
    1    school      user:1
    >>> facility_table(mine.assign(category=["pharmacy", "bakery"]), cats)
    Traceback (most recent call last):
    ...
    bxlplan.errors.DataError: facilities: unknown categories ['bakery']; the categories
    of layers/facilities.yaml are: pharmacy, school
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
