"""The assessment: indicators and 0-100 scores for any set of areas.

:func:`assess` validates the areas, aggregates a prepared baseline over them
(:mod:`bxlplan.scoring.aggregate`), decides which areas are scored (flags), scores them
(:mod:`bxlplan.scoring.scores`) and records the provenance. :func:`prepare`
(:mod:`bxlplan.scoring.baseline`) builds the baseline once; scenarios reuse it with
modified inputs.
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from .._gpkg import write_gpkg
from .._io import run_timestamp
from .._version import __version__
from ..errors import DataError
from ..indicators.registry import resident_weighted
from ..loading.load import polygon_areas
from .aggregate import aggregate, shortage_zones
from .baseline import prepare
from .context import Context
from .scores import score_spread, score_table, validate_scoring

__all__ = ["SCORES", "Assessment", "assess", "validate_areas"]

#: the four score columns, 0-100
SCORES = ["score_overall", "score_diversity", "score_social_mix", "score_services"]


@dataclass
class Assessment:
    """Scored areas plus shortage zones, with provenance and parameters.

    :func:`assess` makes them; the constructor is for results built by other means.

    Parameters
    ----------
    areas
        One row per area: ``area_id``, names, indicators, ``score_*`` and ``flags``;
        provenance in ``areas.attrs["bxlplan"]`` (also :attr:`provenance`).
    context
        The prepared context the assessment used (:func:`prepare`).
    zones
        The shortage zones once made (None until :attr:`shortage_zones` is first read);
        given, they are used as they are.

    Notes
    -----
    :attr:`shortage_zones` gives the inhabited land beyond each category's threshold
    (``category``, ``threshold_m``, ``population_est``): the context's, made on first
    use (the unions take seconds; a scenario's "after" assessment never needs them).
    In a notebook the object shows a summary (counts, score medians, flags, missing and
    partial categories), not its rows; :meth:`explore` maps it and :meth:`to_file`
    writes it.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> areas = gpd.GeoDataFrame({"area_id": ["a", "b"], "score_overall": [40.0, None],
    ...     "flags": ["", "uninhabited"]}, crs=31370,
    ...     geometry=[shapely.box(149000, 170000, 149500, 170500),
    ...               shapely.box(149500, 170000, 150000, 170500)])
    >>> zones = gpd.GeoDataFrame({"category": ["pharmacy"], "threshold_m": [800],
    ...     "population_est": [120.0]}, geometry=[areas.geometry[0]], crs=31370)
    >>> result = Assessment(areas, context=None, zones=zones)
    >>> result
    <Assessment: 2 areas, 1 scored, 1 shortage zones>
    >>> result.flags.values.tolist()
    [['a', ''], ['b', 'uninhabited']]
    """

    areas: gpd.GeoDataFrame
    context: Context
    zones: gpd.GeoDataFrame | None = field(default=None, repr=False)

    @property
    def shortage_zones(self) -> gpd.GeoDataFrame:
        """Inhabited land beyond each category's threshold (see the class)."""
        if self.zones is None:
            self.zones = shortage_zones(self.context)
        return self.zones

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

    def rescore(
        self,
        weights: dict[str, float] | None = None,
        rules: dict[str, Any] | None = None,
    ) -> Assessment:
        """The same areas scored with other weights or score rules, from the stored
        indicators: no network, no aggregation (milliseconds for 145 areas).

        Equal to :func:`assess` with the new settings (tested). Thresholds change the
        indicators themselves: use :func:`bxlplan.scoring.access.with_thresholds` and
        :func:`assess` for them.

        Parameters
        ----------
        weights : dict, optional
            Weight of each score in ``score_overall`` (the scoring file's ``weights``).
        rules : dict, optional
            Score rules (the scoring file's ``rules``).

        Returns
        -------
        Assessment
            A new assessment; this one is unchanged.

        Raises
        ------
        ConfigError
            When the weights or rules are invalid (checked against the registry).

        Examples
        --------
        >>> import bxlplan as bp
        >>> result = bp.assess(bp.areas("neighbourhoods"))  # doctest: +SKIP
        >>> services_first = result.rescore(weights={"diversity": 1, "social_mix": 1,
        ...                                          "services": 3})  # doctest: +SKIP
        """
        config = dict(self.context.config)
        if weights is not None:
            config["weights"] = weights
        if rules is not None:
            config["rules"] = rules
        config = validate_scoring(config)
        params = dict(self.provenance.get("parameters", {}))
        complete = list(params.get("scored_categories", []))
        n_act = len(self.context.access)
        flags = self.areas["flags"].fillna("").str.split(";")
        unscored = flags.map(
            lambda codes: "uninhabited" in codes or "small_population" in codes
        ).to_numpy(dtype=bool)
        scores = score_table(self.areas, complete, config, n_act)
        scores.loc[unscored] = np.nan
        out = self.areas.copy()
        out[list(scores.columns)] = scores
        spread = score_spread(self.areas.loc[~unscored], complete, config, n_act)
        meta = dict(self.areas.attrs.get("bxlplan", {}))
        meta["parameters"] = {
            **params,
            "weights": config.get("weights"),
            "rules": config.get("rules"),
        }
        meta["score_spread"] = spread.round(3).to_dict(orient="index")
        out.attrs["bxlplan"] = meta
        ctx = dataclasses.replace(self.context, config=config)
        return Assessment(out, ctx, self.zones)

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
            # without the unions (seconds): categories with an origin beyond reach
            "shortage_zones": len(self.zones)
            if self.zones is not None
            else sum(
                bool((acc.nearest > acc.threshold_m).any())
                for acc in self.context.access.values()
            ),
            "distance": params.get("distance"),
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
            ("distance", s["distance"] or "n/a"),
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

        Parameters
        ----------
        column : str, default "score_overall"
            The column to colour the areas by.
        **kwargs
            Keywords of :meth:`geopandas.GeoDataFrame.explore`, over the defaults.

        Returns
        -------
        folium.Map
            The map (shown by a notebook).

        Raises
        ------
        DataError
            When the assessment has no such column (the scores are listed).

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> areas = gpd.GeoDataFrame({"area_id": ["a", "b"], "score_overall": [40.0, None],
        ...     "flags": ["", "uninhabited"]}, crs=31370,
        ...     geometry=[shapely.box(149000, 170000, 149500, 170500),
        ...               shapely.box(149500, 170000, 150000, 170500)])
        >>> zones = gpd.GeoDataFrame({"category": ["pharmacy"], "threshold_m": [800],
        ...     "population_est": [120.0]}, geometry=[areas.geometry[0]], crs=31370)
        >>> result = Assessment(areas, context=None, zones=zones)
        >>> type(result.explore()).__name__
        'Map'
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
        """Write one GeoPackage: the areas and one layer of shortage zones per category.

        The layers are ``areas`` and ``shortage_<category>``, with the provenance in
        each layer's metadata (as ``bxlplan assess`` writes them), written atomically.

        Parameters
        ----------
        path : str or Path
            The GeoPackage (``.gpkg``).
        overwrite : bool, default False
            Replace ``path`` when it exists.

        Returns
        -------
        Path
            ``path``.

        Raises
        ------
        DataError
            When ``path`` does not end in ``.gpkg``, or exists and ``overwrite`` is
            False.

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> areas = gpd.GeoDataFrame({"area_id": ["a", "b"], "score_overall": [40.0, None],
        ...     "flags": ["", "uninhabited"]}, crs=31370,
        ...     geometry=[shapely.box(149000, 170000, 149500, 170500),
        ...               shapely.box(149500, 170000, 150000, 170500)])
        >>> zones = gpd.GeoDataFrame({"category": ["pharmacy"], "threshold_m": [800],
        ...     "population_est": [120.0]}, geometry=[areas.geometry[0]], crs=31370)
        >>> result = Assessment(areas, context=None, zones=zones)
        >>> import tempfile, pyogrio
        >>> path = result.to_file(Path(tempfile.mkdtemp()) / "result.gpkg")
        >>> sorted(name for name, _ in pyogrio.list_layers(path))
        ['areas', 'shortage_pharmacy']
        """
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
    """Check the areas given to :func:`assess`, before any preparation.

    See :func:`bxlplan.loading.load.polygon_areas`: a GeoDataFrame of polygons with a
    CRS, reprojected to EPSG:31370, with a unique ``area_id``.

    Parameters
    ----------
    areas : GeoDataFrame
        The areas, in any CRS.
    data : str or Path, optional
        The data folder (its region outline; default ``$BXLPLAN_DATA``).
    check_region : bool, default True
        Refuse areas outside the Brussels region.

    Returns
    -------
    geopandas.GeoDataFrame
        The areas in EPSG:31370 with ``area_id``.

    Raises
    ------
    DataError
        When they are not polygons with a CRS, repeat identifiers or lie outside the
        region.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> lonlat = gpd.GeoDataFrame({"code": ["x"]}, crs=4326,
    ...     geometry=[shapely.box(4.35, 50.84, 4.36, 50.85)])
    >>> checked = validate_areas(lonlat, check_region=False)
    >>> checked.crs.to_epsg(), checked["area_id"].tolist()
    (31370, ['x'])
    """
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
        A prepared context (:func:`~bxlplan.scoring.baseline.prepare`); when
        omitted, one is prepared from ``data`` with the persistent baseline cache
        (``$BXLPLAN_CACHE`` or the user's cache folder), after the areas are checked.
    data
        The data folder when ``ctx`` is omitted (default ``$BXLPLAN_DATA``).
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

    Examples
    --------
    Any polygons, prepared once and assessed many times (the preparation takes
    tens of seconds, minutes without the cache):

    >>> import bxlplan as bp
    >>> ctx = bp.prepare(cache=True)  # doctest: +SKIP
    >>> result = assess(bp.areas("neighbourhoods"), ctx)  # doctest: +SKIP
    >>> result.areas.nsmallest(3, "score_services")  # doctest: +SKIP
    """
    if ctx is None:  # the areas are checked before minutes of preparation
        areas = validate_areas(areas, data)
        ctx = prepare(data, cache=True)
    else:  # areas outside the context's region are flagged uninhabited
        areas = validate_areas(areas, ctx.data, check_region=False)
    areas = areas.reset_index(drop=True)
    n = len(areas)
    ind = aggregate(areas, ctx, dwellings)
    unmapped = ind.attrs.pop("landuse_unmapped")
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
    n_act = len(ctx.access)
    complete = [c for c in ctx.categories if c in ctx.access and c not in ctx.partial]
    scores = score_table(ind, complete, ctx.config, n_act)
    scores.loc[unscored] = np.nan
    flags = _flags(n, uninhabited, small, unmapped, ctx)
    out = areas.join(ind).join(scores).copy()  # one block per dtype, not hundreds
    out["flags"] = flags
    spread = score_spread(ind.loc[~unscored], complete, ctx.config, n_act)
    out.attrs["bxlplan"] = _provenance(ctx, complete, spread)
    return Assessment(out, ctx)


def _provenance(
    ctx: Context, complete: list[str], spread: pd.DataFrame
) -> dict[str, Any]:
    """The ``attrs["bxlplan"]`` of an assessment: sources, parameters, report."""
    params = {
        "distance": ctx.distance,
        "thresholds_m": {c: int(v["threshold_m"]) for c, v in ctx.categories.items()},
        "missing_categories": ctx.missing,
        "partial_categories": ctx.partial,
        "scored_categories": complete,
        "population_floor": float(ctx.config.get("population_floor", 200)),
        "landuse_unmapped_max": float(ctx.config.get("landuse_unmapped_max", 0.5)),
        "income_reference_eur": ctx.income_reference,
        "origins": int(len(ctx.origins)),
        "origins_cell_m": ctx.config.get("origins_cell_m"),
        "weights": ctx.config.get("weights"),
        "rules": ctx.config.get("rules"),
        "user_indicators": ctx.config.get("indicators") or {},
    }
    return {
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
