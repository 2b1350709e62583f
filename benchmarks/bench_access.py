"""Benchmark: the region-wide assessment and network access against cityseer.

Prints its figures so runs can be compared; it is not a timed test. Targets (issue 3):
region on a 100 m grid + the 145 neighbourhoods under 30 s wall on 2 cores and under
2 GB peak memory; nearest distances and counts within 400/800/1,600 m for all
categories at least 3x faster than cityseer's ``compute_accessibilities`` on the same
graph, facilities and distances.

Run: ``BXLPLAN_DATA=../shared/data/brussels python benchmarks/bench_access.py``
"""

from __future__ import annotations

import resource
import time

import geopandas as gpd
import numpy as np

import bxlplan
from bxlplan.indicators.access import StreetGraph, counts_within, pair_distances
from bxlplan.loading.areas import load_areas, make_grid
from bxlplan.scoring import assess, prepare

DISTANCES = [400, 800, 1600]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_assessment() -> None:
    t0 = time.perf_counter()
    ctx = prepare()
    t1 = time.perf_counter()
    grid = make_grid(bxlplan.load("region", ctx.data), 100)
    res_grid = assess(grid, ctx)
    t2 = time.perf_counter()
    res_hoods = assess(load_areas("neighbourhoods", ctx.data), ctx)
    t3 = time.perf_counter()
    print(f"assessment: prepare {t1 - t0:.1f} s (origins {len(ctx.origins):,}); "
          f"100 m grid {len(res_grid.areas):,} cells {t2 - t1:.1f} s; "
          f"145 neighbourhoods {t3 - t2:.1f} s; total {t3 - t0:.1f} s wall "
          f"(target < 30 s); peak memory {peak_mb():,.0f} MB (target < 2,048 MB)")  # fmt: skip
    del res_hoods


def bench_against_cityseer() -> None:
    from cityseer.metrics import layers
    from cityseer.tools import io

    edges = bxlplan.load("streets")
    fac = bxlplan.load("facilities")
    fac = fac[~fac["facility_id"].str.startswith("green:")].reset_index(drop=True)
    cats = sorted(fac["category"].unique())
    graph = StreetGraph(edges)
    G = graph.to_networkx()
    nodes_gdf, _e, structure = io.network_structure_from_nx(G)

    t0 = time.perf_counter()
    layers.compute_accessibilities(
        gpd.GeoDataFrame(fac[["category", "geometry"]]), landuse_column_label="category",
        accessibility_keys=cats, nodes_gdf=nodes_gdf, network_structure=structure, distances=DISTANCES,
    )  # fmt: skip
    t_cs = time.perf_counter() - t0

    # the compiled search is built on its first call and cached on disk (numba
    # cache=True): once per install, like cityseer's ahead-of-time Rust build
    t0 = time.perf_counter()
    graph.nearest(
        graph.attach(graph.nodes.geometry[:1]), graph.attach(fac.geometry[:1])
    )
    t_warm = time.perf_counter() - t0

    # ours: the same outputs for every node (nearest distance, counts within 400/800/1600)
    t0 = time.perf_counter()
    node_att = graph.attach(graph.nodes.geometry)
    n = len(graph.nodes)
    for cat in cats:
        sub = fac[fac["category"] == cat]
        f_att = graph.attach(sub.geometry)
        graph.nearest(node_att, f_att)
        pairs = pair_distances(
            graph, node_att, f_att, np.arange(len(sub)), limit=max(DISTANCES)
        )
        counts_within(pairs, n, DISTANCES)
    t_ours = time.perf_counter() - t0
    print(f"access, {len(cats)} categories x {DISTANCES} m on {n:,} nodes: cityseer "
          f"{t_cs:.2f} s, bxlplan {t_ours:.2f} s, ratio {t_cs / t_ours:.1f}x (target >= 3x); "
          f"first call / compile {t_warm:.1f} s (cached after the first run)")  # fmt: skip


if __name__ == "__main__":
    bench_assessment()
    bench_against_cityseer()
