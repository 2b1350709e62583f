"""Running a scenario: the pole's programme applied to the baseline, and the difference.

How a programme changes the model (assumptions are listed in every report):

* **new residents** = dwellings x persons per dwelling, spread evenly over the
  perimeter's land as new residential origins (100 m cells clipped to the perimeter),
  one origin per cell and tenure; households of each tenure join an income quintile of
  today's residents (``layers/scenario_defaults.yaml``): social -> lowest, moderate ->
  middle, market -> fourth;
* **new facilities** are added where the file puts them (``inside`` = a point inside
  the perimeter) with their capacity;
* **land-use changes** replace the functions of the perimeter by the shares given
  (the perimeter is cut into strips of those shares);
* jobs and floor areas are reported, not modelled.

Access, diversity and social-mix indicators are recomputed for the pole and its walking
surroundings (the perimeter buffered by ``surroundings_m``), before and after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .._io import run_timestamp
from .._version import __version__
from ..errors import ConfigError, DataError
from ..loading.areas import make_grid
from ..loading.catalog import read_catalog_file
from ..scoring import Assessment, Context, assess, compute_access
from ..scoring.origins import tag_points
from .spec import TENURES, Scenario, perimeter_area, read_scenario

__all__ = [
    "ScenarioResult",
    "apply_scenario",
    "compare_scenarios",
    "perimeter_of",
    "run_scenario",
]


@dataclass
class ScenarioResult:
    """One scenario run: the pole and its surroundings before and after.

    Parameters
    ----------
    scenario : Scenario
        The scenario file, read and validated.
    areas : GeoDataFrame
        The pole and its surroundings with ``<column>_before``, ``_after`` and
        ``_change`` for the scores and headline indicators.
    table : DataFrame
        Every indicator per area: ``before``, ``after``, ``change``.
    demand : DataFrame
        Places needed by the new residents per category against the capacity within
        reach, with a ``status`` (surplus, shortfall, unknown) and a note.
    social_housing : dict
        The programme's social share against the target.
    before, after : Assessment
        The two assessments of the pole and its surroundings.
    new_facilities : GeoDataFrame
        The programme's facilities, placed.
    context_after : Context
        The baseline with the programme applied.

    Examples
    --------
    >>> import bxlplan as bp
    >>> ctx = bp.prepare(cache=True)  # doctest: +SKIP
    >>> res = bp.scenario.run("scenarios/josaphat.yaml", ctx)  # doctest: +SKIP
    >>> res.table.query("indicator == 'score_overall'")  # doctest: +SKIP
    """

    scenario: Scenario
    areas: gpd.GeoDataFrame  # pole + surroundings, with before / after / change columns
    table: pd.DataFrame  # indicator x area: before, after, change
    demand: pd.DataFrame  # facility demand of new residents vs capacity within reach
    social_housing: dict[str, Any]
    before: Assessment
    after: Assessment
    new_facilities: gpd.GeoDataFrame
    context_after: Context


def perimeter_of(scn: Scenario, ctx: Context) -> shapely.Geometry:
    """The pole's perimeter (EPSG:31370).

    Parameters
    ----------
    scn : Scenario
        A scenario read by :func:`~bxlplan.scenarios.spec.read_scenario`.
    ctx : Context
        The prepared baseline (its neighbourhoods, for perimeters given as codes).

    Returns
    -------
    shapely.Geometry
        The perimeter.

    Examples
    --------
    >>> import bxlplan as bp
    >>> ctx = bp.prepare(cache=True)  # doctest: +SKIP
    >>> scn = bp.scenario.read("scenarios/josaphat.yaml")  # doctest: +SKIP
    >>> perimeter_of(scn, ctx).area / 1e4  # hectares  # doctest: +SKIP
    """
    return perimeter_area(scn, ctx.neighbourhoods).geometry.iloc[0]


def _split_by_shares(
    poly: shapely.Geometry, shares: dict[str, float]
) -> list[tuple[str, shapely.Geometry]]:
    """Cut a polygon into west-to-east strips whose areas follow ``shares``."""
    xmin, ymin, xmax, ymax = (float(v) for v in shapely.bounds(poly))
    total = float(shapely.area(poly))
    out: list[tuple[str, shapely.Geometry]] = []
    left, acc = xmin, 0.0
    items = [(k, v) for k, v in shares.items() if v > 0]
    for i, (fn, share) in enumerate(items):
        acc += share
        if i == len(items) - 1:
            right = xmax
        else:
            lo, hi = left, xmax
            for _ in range(40):  # bisection on the cut's x
                mid = (lo + hi) / 2
                strip = shapely.intersection(shapely.box(xmin, ymin, mid, ymax), poly)
                if shapely.area(strip) < acc * total:
                    lo = mid
                else:
                    hi = mid
            right = hi
        out.append(
            (fn, shapely.intersection(shapely.box(left, ymin, right, ymax), poly))
        )
        left = right
    return out


def apply_scenario(scn: Scenario, ctx: Context) -> tuple[Context, gpd.GeoDataFrame]:
    """A new context with the programme applied (see the module docstring).

    Parameters
    ----------
    scn : Scenario
        The scenario.
    ctx : Context
        The prepared baseline (left unchanged).

    Returns
    -------
    tuple of Context and GeoDataFrame
        The context with the new residents, facilities and land use (access
        recomputed), and the new facilities.

    Raises
    ------
    ConfigError
        When a new facility lies outside the region.

    Examples
    --------
    >>> import bxlplan as bp
    >>> ctx = bp.prepare(cache=True)  # doctest: +SKIP
    >>> after, new = apply_scenario(bp.scenario.read("scenarios/josaphat.yaml"), ctx)  # doctest: +SKIP
    >>> after.origins["population"].sum() - ctx.origins["population"].sum()  # doctest: +SKIP
    """
    defaults = read_catalog_file("scenario_defaults.yaml")
    perimeter = perimeter_of(scn, ctx)
    origins = ctx.origins
    # --- new residents
    if scn.new_residents > 0:
        cell = float(ctx.config.get("origins_cell_m", 100))
        pole = gpd.GeoDataFrame(geometry=[perimeter], crs=origins.crs)
        cells = make_grid(pole, cell, "square").geometry.values
        cells = cells[shapely.area(cells) > 1.0]
        weights = shapely.area(cells) / shapely.area(cells).sum()
        classes = defaults["tenure_income_class"]
        incomes = (
            origins.loc[origins["income_class"] >= 0]
            .groupby("income_class")["income"]
            .median()
        )
        rows = []
        for tenure in TENURES:
            people = scn.dwellings[tenure] * scn.persons_per_dwelling
            if people <= 0:
                continue
            k = int(classes[tenure])
            rows.append(
                gpd.GeoDataFrame(
                    {
                        "population": people * weights,
                        "income_class": k,
                        "income": float(incomes.get(k, np.nan)),
                        "tenure": tenure,
                        "cell": cells,
                    },
                    geometry=shapely.point_on_surface(cells),
                    crs=origins.crs,
                )
            )
        new = pd.concat(rows, ignore_index=True)
        tag_points(new, ctx.neighbourhoods, "neighbourhood")
        tag_points(new, ctx.communes, "commune")
        origins = gpd.GeoDataFrame(
            pd.concat([origins, new], ignore_index=True),
            geometry="geometry",
            crs=origins.crs,
        )
    # --- new facilities
    cats = ctx.categories
    rows = []
    for i, fac in enumerate(scn.facilities):
        point = (
            shapely.point_on_surface(perimeter)
            if fac.location == "inside"
            else shapely.Point(*fac.location)
        )
        if not shapely.contains(shapely.union_all(ctx.communes.geometry.values), point):
            raise ConfigError(
                f"{scn.path}: new {fac.category} at {fac.location} lies outside the region"
            )
        rows.append(
            {
                "facility_id": f"scenario:{scn.name}:{i}", "category": fac.category, "rule": -1,
                "source": "scenario", "name": fac.name or "",
                "capacity": fac.capacity, "theme": cats[fac.category]["theme"],
                "threshold_m": cats[fac.category]["threshold_m"], "rule_text": f"scenario {scn.name}",
                "in_region": True, "geometry": point,
            }
        )  # fmt: skip
    new_fac = (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=ctx.facilities.crs)
        if rows
        else ctx.facilities.iloc[:0]
    )
    facilities = (
        pd.concat([ctx.facilities, new_fac], ignore_index=True)
        if rows
        else ctx.facilities
    )
    facilities = gpd.GeoDataFrame(
        facilities, geometry="geometry", crs=ctx.facilities.crs
    )
    # --- land-use change
    surface = ctx.surface
    if scn.land_use:
        pieces = dict(_split_by_shares(perimeter, scn.land_use))
        geoms = [
            shapely.union(
                shapely.difference(g, perimeter), pieces.get(fn, shapely.Polygon())
            )
            for fn, g in zip(surface["function"], surface.geometry.values, strict=True)
        ]
        surface = surface.set_geometry(geoms)
    # A category with no baseline data stays out of the access indicators and the
    # services score on both sides: one new crèche must not make the "after" score count
    # a category the "before" could not (the demand balance counts its places).
    after = replace(
        ctx, origins=origins, facilities=facilities, surface=surface, access={}
    )
    compute_access(after)
    return after, new_fac


def _areas(scn: Scenario, ctx: Context) -> gpd.GeoDataFrame:
    perimeter = perimeter_of(scn, ctx)
    title = scn.title
    return gpd.GeoDataFrame(
        {
            "area_id": ["pole", "surroundings"],
            "name_fr": [
                title.get("fr", scn.pole),
                f"{title.get('fr', scn.pole)} + {scn.surroundings_m:g} m",
            ],
            "name_nl": [
                title.get("nl", scn.pole),
                f"{title.get('nl', scn.pole)} + {scn.surroundings_m:g} m",
            ],
        },
        geometry=[perimeter, shapely.buffer(perimeter, scn.surroundings_m)],
        crs=ctx.origins.crs,
    )


def _demand(
    scn: Scenario, before: Context, after: Context, pole: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Places needed by the new residents vs the capacity within reach of the pole."""
    defaults = read_catalog_file("scenario_defaults.yaml")["demand"]
    # the pole's residential origins (once): facilities within reach are those any of
    # them reaches within the category's threshold on the network
    inside = np.flatnonzero(
        shapely.within(after.origins.geometry.values, pole.geometry.iloc[0])
    )
    rows = []
    for cat, d in defaults.items():
        children = scn.new_residents * float(d["age_share"])
        needed = children * float(d["places_per_child"])
        fac = after.facilities[after.facilities["category"] == cat]
        acc = after.access.get(cat)  # None for a category without baseline data
        if acc is None:
            reached = fac.iloc[:0]
        else:
            pairs = acc.pairs
            reached_ids = acc.facility_ids[
                pairs.loc[pairs["origin"].isin(inside), "facility"].unique()
            ]
            reached = fac[fac["facility_id"].isin(reached_ids)]
        new_cap = float(
            sum(f.capacity or 0 for f in scn.facilities if f.category == cat)
        )
        existing = reached[reached["source"] != "scenario"]
        existing_known = len(existing) > 0 and bool(existing["capacity"].notna().all())
        known_cap = float(reached["capacity"].sum())  # NaN capacities skipped
        supply = known_cap if existing_known or len(existing) == 0 else new_cap
        rows.append(
            {
                "category": cat, "ages": d["ages"], "threshold_m": before.categories[cat]["threshold_m"],
                "new_children": round(children, 1), "places_needed": round(needed, 1),
                "new_places_in_programme": new_cap,
                "existing_facilities_within_reach": len(existing),
                "existing_capacity_known": existing_known,
                "capacity_within_reach_known": known_cap,
                "balance_places": round(supply - needed, 1),
            }
        )  # fmt: skip
    out = pd.DataFrame(rows)
    no_data = out["category"].isin(before.missing).to_numpy()
    # a balance is known only where every existing facility within reach has a
    # capacity, or there is none, in a category with data: never a "shortfall" else
    known = (
        out["existing_capacity_known"] | (out["existing_facilities_within_reach"] == 0)
    ).to_numpy() & ~no_data
    out["status"] = np.where(
        known, np.where(out["balance_places"] >= 0, "surplus", "shortfall"), "unknown"
    )
    out["note"] = np.where(
        known,
        "",
        "capacity of existing facilities unknown: balance counts the programme's new places only",
    )
    out.loc[no_data, "existing_facilities_within_reach"] = pd.NA
    out.loc[no_data, "note"] = (
        "no data on existing facilities of this category: existing supply unknown, "
        "balance counts the programme's new places only"
    )
    return out


def run_scenario(path: str | Path, ctx: Context) -> ScenarioResult:
    """Run one scenario file against a prepared baseline context.

    Parameters
    ----------
    path : str or Path
        The scenario file (``scenarios/*.yaml``).
    ctx : Context
        The prepared baseline (:func:`bxlplan.prepare`).

    Returns
    -------
    ScenarioResult
        Before, after and change for the pole and its surroundings.

    Raises
    ------
    ConfigError
        When the scenario file is invalid (located, see
        :func:`~bxlplan.scenarios.spec.read_scenario`).

    Examples
    --------
    >>> import bxlplan as bp
    >>> ctx = bp.prepare(cache=True)  # doctest: +SKIP
    >>> res = run_scenario("scenarios/josaphat.yaml", ctx)  # doctest: +SKIP
    >>> res.demand[["category", "status"]]  # doctest: +SKIP
    """
    region = ctx.communes
    scn = read_scenario(path, region=region, neighbourhoods=ctx.neighbourhoods)
    areas = _areas(scn, ctx)
    before = assess(areas, ctx)
    after_ctx, new_fac = apply_scenario(scn, ctx)
    after = assess(areas, after_ctx)
    numeric = [
        c for c in before.areas.columns
        if c not in areas.columns and pd.api.types.is_numeric_dtype(before.areas[c])
        and not pd.api.types.is_bool_dtype(before.areas[c])
    ]  # fmt: skip
    rows = []
    for i, area_id in enumerate(areas["area_id"]):
        for col in numeric:
            b, a = before.areas[col].iloc[i], after.areas[col].iloc[i]
            rows.append(
                {
                    "area": area_id,
                    "indicator": col,
                    "before": b,
                    "after": a,
                    "change": a - b,
                }
            )
    table = pd.DataFrame(rows)
    cols: dict[str, np.ndarray] = {}
    for col in ("score_overall", "score_diversity", "score_social_mix", "score_services", "population_est",
                "social_income_class_mix_entropy", "mix_landuse_entropy"):  # fmt: skip
        b, a = before.areas[col].to_numpy(), after.areas[col].to_numpy()
        cols |= {f"{col}_before": b, f"{col}_after": a, f"{col}_change": a - b}
    out = gpd.GeoDataFrame(
        areas.join(pd.DataFrame(cols, index=areas.index)),
        geometry="geometry",
        crs=areas.crs,
    )
    total = sum(scn.dwellings.values())
    target = float(ctx.config.get("social_housing_target", 0.15))
    social = {
        "new_dwellings": total,
        "social_dwellings": scn.dwellings["social"],
        "programme_social_share": scn.dwellings["social"] / total
        if total
        else float("nan"),
        "target": target,
        "gap_dwellings_to_target": target * total - scn.dwellings["social"]
        if total
        else float("nan"),
        "existing_stock": "unknown: no dwellings by tenure in the data (share of the programme only)",
    }
    demand = _demand(scn, ctx, after_ctx, areas.iloc[:1])
    meta = {
        "scenario": str(scn.path), "bxlplan_version": __version__,
        "created_at": run_timestamp().isoformat(),
        "assumptions": scn.assumptions + scn.used_defaults, "sources": scn.sources,
    }  # fmt: skip
    out.attrs["bxlplan"] = meta
    return ScenarioResult(
        scn, out, table, demand, social, before, after, new_fac, after_ctx
    )


def compare_scenarios(
    paths: Sequence[str | Path], ctx: Context
) -> tuple[pd.DataFrame, list[ScenarioResult]]:
    """Run several scenarios (variants) and put their key results side by side.

    Parameters
    ----------
    paths : sequence of str or Path
        The scenario files.
    ctx : Context
        The prepared baseline.

    Returns
    -------
    tuple of DataFrame and list of ScenarioResult
        One row per variant (headline figures), and the runs.

    Raises
    ------
    DataError
        When no file is given.
    ConfigError
        When a scenario file is invalid.

    Examples
    --------
    >>> import bxlplan as bp
    >>> ctx = bp.prepare(cache=True)  # doctest: +SKIP
    >>> table, runs = compare_scenarios(["scenarios/josaphat.yaml",
    ...                                  "scenarios/josaphat_more_social.yaml"], ctx)  # doctest: +SKIP
    """
    if not paths:
        raise DataError("give at least one scenario file to compare")
    results = [run_scenario(p, ctx) for p in paths]
    keys = []
    for r in results:
        pole = r.areas.iloc[0]
        sur = r.areas.iloc[1]
        row = {
            "scenario": r.scenario.name, "pole": r.scenario.pole,
            "new_dwellings": r.social_housing["new_dwellings"], "new_residents": round(r.scenario.new_residents),
            "programme_social_share": r.social_housing["programme_social_share"],
            "social_gap_to_target_dwellings": r.social_housing["gap_dwellings_to_target"],
        }  # fmt: skip
        for col in (
            "score_overall",
            "score_diversity",
            "score_social_mix",
            "score_services",
        ):
            row[f"pole_{col}_change"] = pole[f"{col}_change"]
            row[f"surroundings_{col}_change"] = sur[f"{col}_change"]
        for d in r.demand.itertuples():
            row[f"{d.category}_balance_places"] = d.balance_places
        keys.append(row)
    return pd.DataFrame(keys).set_index("scenario").T, results
