"""Benchmark: the region-wide assessment and network access against cityseer.

Prints its figures so runs can be compared; it is not a timed test. Targets (issue 3):
region on a 100 m grid + the 145 neighbourhoods under 30 s wall on 2 cores and under
2 GB peak memory; nearest distances and counts within 400/800/1,600 m for all
categories at least 10x faster than cityseer's ``compute_accessibilities`` on the same
graph, facilities and distances (issue 12; 3x in issue 3).

The comparison with cityseer (issue 10) is made fair and reproducible:

* the same work on both sides, timed: attach the facilities of every category with
  data (the green-space edge points left out, as in the oracle test) to the street
  graph, then for every graph node the nearest distance and the counts within
  400/800/1,600 m. cityseer: one ``compute_accessibilities`` call (its data assignment
  included) with ``decay_fn="1"``, which computes the plain counts only (the default
  adds a distance-weighted variant we do not compute). Ours: attach the nodes and each
  category's facilities, ``nearest`` + ``counts_within_network`` (the counts-only
  search: the same bounded searches as ``pair_distances``, counted per origin and
  distance without materialising the pairs, as the assessment does not need them for
  counts; ``--pairs`` times ``pair_distances`` + ``counts_within`` instead);
* not timed, built once: our ``StreetGraph`` and cityseer's network structure
  (``network_structure_from_nx``), the inputs both sides share;
* both warm: each side runs once untimed first (numba loads or compiles our search;
  cityseer's first call), then the timed runs alternate ours, cityseer, ours, ... so
  that a load change on the machine hits both; the figure is the median of the
  ratios of each back-to-back pair;
* the outputs are compared: nearest distances one-sided as in the oracle test
  (ours <= cityseer's + 1 m), counts within each distance.

Both sides use every core (cityseer: rayon; ours: one thread per core); cityseer's
progress bar is switched off. Timings taken while the machine is busy are noisy; the
paired ratios are much less so. The load average is printed with the figures.

Run: ``BXLPLAN_DATA=../shared/data/brussels python benchmarks/bench_access.py``
(``--only access`` or ``--only assessment`` for one part, ``--runs N`` timed runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from importlib.metadata import version

# before cityseer is imported: no progress bar (its polling thread would draw it)
os.environ.setdefault("CITYSEER_QUIET_MODE", "1")

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402

import bxlplan  # noqa: E402
from bxlplan.indicators.access import (  # noqa: E402
    StreetGraph,
    counts_within,
    counts_within_network,
    pair_distances,
)
from bxlplan.loading.areas import load_areas, make_grid  # noqa: E402
from bxlplan.scoring import assess, prepare  # noqa: E402

DISTANCES = [400, 800, 1600]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


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


def ours(
    graph: StreetGraph, fac: gpd.GeoDataFrame, cats: list[str], pairs: bool = False
) -> dict:
    """Nearest distance and counts within DISTANCES for every node and category
    (``pairs``: through the materialised pairs instead of the counts-only search)."""
    node_att = graph.attach(graph.nodes.geometry)
    n = len(graph.nodes)
    out = {}
    for cat in cats:
        sub = fac[fac["category"] == cat]
        f_att = graph.attach(sub.geometry)
        out[cat] = graph.nearest(node_att, f_att)
        ids = np.arange(len(sub))
        if pairs:
            found = pair_distances(graph, node_att, f_att, ids, limit=max(DISTANCES))
            counts = counts_within(found, n, DISTANCES)
        else:
            counts = counts_within_network(graph, node_att, f_att, ids, DISTANCES)
        for d, c in counts.items():
            out[cat, d] = c
    return out


def theirs(data, cats, nodes_gdf, structure) -> dict:
    """The same outputs from cityseer's ``compute_accessibilities`` (node order: ours)."""
    from cityseer.metrics import layers

    res = layers.compute_accessibilities(
        data, landuse_column_label="category", accessibility_keys=cats,
        nodes_gdf=nodes_gdf, network_structure=structure, distances=DISTANCES,
        decay_fn="1",
    )  # fmt: skip
    res = res.set_axis(res.index.map(int)).sort_index()
    assert (res.index == np.arange(len(res))).all(), "cityseer's nodes are not ours"
    out = {}
    for cat in cats:
        out[cat] = res[f"cc_{cat}_nearest_max_{max(DISTANCES)}"].to_numpy(dtype=float)
        for d in DISTANCES:
            out[cat, d] = res[f"cc_{cat}_{d}"].to_numpy(dtype=float)
    return out


def agreement(a: dict, b: dict, cats: list[str]) -> list[str]:
    """Nearest distances (one-sided as in the oracle test, and both ways) and counts."""
    limit = max(DISTANCES)
    n = within = close = 0
    for cat in cats:
        both = np.isfinite(b[cat]) & (a[cat] <= limit)
        n += int(both.sum())
        within += int((a[cat][both] <= b[cat][both] + 1.0).sum())
        close += int((np.abs(a[cat][both] - b[cat][both]) <= 1.0).sum())
    lines = [
        f"nearest distance, {n:,} node-category pairs both within {limit:,} m: "
        f"ours <= cityseer + 1 m for {within / n:.2%} (oracle test: >= 99 %), "
        f"within 1 m both ways {close / n:.2%}"
    ]
    for d in DISTANCES:
        diff = np.concatenate([a[cat, d] - b[cat, d] for cat in cats])
        lines.append(
            f"counts within {d:,} m ({len(diff):,} pairs): equal {np.mean(diff == 0):.2%}, "
            f"mean |difference| {np.mean(np.abs(diff)):.3f}, ours higher "
            f"{np.mean(diff > 0):.2%}, cityseer higher {np.mean(diff < 0):.2%}"
        )
    return lines


def bench_against_cityseer(runs: int, pairs: bool = False) -> None:
    from cityseer.tools import io

    edges = bxlplan.load("streets")
    fac = bxlplan.load("facilities")
    fac = fac[~fac["facility_id"].str.startswith("green:")].reset_index(drop=True)
    cats = sorted(fac["category"].unique())
    data = gpd.GeoDataFrame(fac[["category", "geometry"]])

    # shared inputs, built once and not timed
    t0 = time.perf_counter()
    graph = StreetGraph(edges)
    t_graph = time.perf_counter() - t0
    t0 = time.perf_counter()
    nodes_gdf, _e, structure = io.network_structure_from_nx(graph.to_networkx())
    t_structure = time.perf_counter() - t0
    n = len(graph.nodes)
    print(f"access: {len(cats)} categories, {len(fac):,} facilities, {n:,} nodes, "
          f"{DISTANCES} m, counts {'from pairs' if pairs else 'counts-only search'}; not timed: StreetGraph {t_graph:.1f} s, cityseer network "
          f"structure {t_structure:.1f} s")  # fmt: skip

    def run_ours():
        return ours(graph, fac, cats, pairs=pairs)

    def run_theirs():
        return theirs(data, cats, nodes_gdf.copy(), structure)

    # warm-up, untimed for the figure: numba loads (or compiles) our search
    t0 = time.perf_counter()
    out_ours = run_ours()
    w_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    out_theirs = run_theirs()
    w_theirs = time.perf_counter() - t0
    print(f"  warm-up (not in the figure): bxlplan {w_ours:.2f} s, cityseer {w_theirs:.2f} s")  # fmt: skip

    t_ours, t_theirs = [], []
    for i in range(runs):
        for name, fn, times in (("bxlplan", run_ours, t_ours), ("cityseer", run_theirs, t_theirs)):  # fmt: skip
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
            print(f"  run {i + 1} {name:8s} {times[-1]:6.2f} s  (load {load_avg()})")
    ratios = [c / o for c, o in zip(t_theirs, t_ours, strict=True)]
    m_ours, m_theirs = statistics.median(t_ours), statistics.median(t_theirs)
    print(f"  median: bxlplan {m_ours:.2f} s (range {min(t_ours):.2f}-{max(t_ours):.2f}), "
          f"cityseer {m_theirs:.2f} s (range {min(t_theirs):.2f}-{max(t_theirs):.2f})")  # fmt: skip
    print(f"  ratios of the back-to-back pairs: {', '.join(f'{r:.1f}x' for r in ratios)}; "
          f"median ratio {statistics.median(ratios):.1f}x (target >= 10x); "
          f"ratio of the medians {m_theirs / m_ours:.1f}x")  # fmt: skip
    for line in agreement(out_ours, out_theirs, cats):
        print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["access", "assessment"])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side")
    parser.add_argument(
        "--pairs", action="store_true",
        help="count through pair_distances + counts_within (materialised pairs)",
    )  # fmt: skip
    args = parser.parse_args()
    pkgs = ("bxlplan", "cityseer", "numba", "numpy")
    print(", ".join(f"{p} {version(p)}" for p in pkgs)
          + f", Python {platform.python_version()}; {os.cpu_count()} cores "
          f"({len(os.sched_getaffinity(0))} usable), {platform.machine()}, "
          f"load average {load_avg()}")  # fmt: skip
    t0 = time.perf_counter()
    # the assessment first: its peak memory is then not the comparison's
    if args.only != "access":
        bench_assessment()
    if args.only != "assessment":
        bench_against_cityseer(args.runs, pairs=args.pairs)
    print(f"benchmark wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
