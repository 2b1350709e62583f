"""Benchmark: rank robustness, 1,000 draws over the 145 neighbourhoods (issue 12, 5-6).

Budget: 1,000 weight-and-threshold draws over the 145 neighbourhoods, on 2 cores, take
at most 3x one cold assessment. Measured in this process, one after the other:

* **cold assessment**: ``prepare`` with an empty cache folder (the whole preparation, as
  a user's first run), then ``assess`` of the 145 neighbourhoods; the ``assess`` alone
  is printed too (the strictest reading of "one assessment");
* **robustness**: ``robustness(areas, ctx, draws=1000)`` with weight and threshold noise
  only (``population_noise=0``), including its own base assessment, on each scheduler:
  ``sync`` (this process), the default local cluster (started and closed by the call:
  one worker process per core) and an already running 2-worker ``LocalCluster``;
* **draws per second**: the same runs reusing the base assessment (``assessment=``),
  so the time is the draws' only; and, for information, with the default population
  noise on.

Timings taken while the machine is busy are noisy: the load average is printed.

Run: ``BXLPLAN_DATA=../shared/data/brussels python benchmarks/bench_robustness.py``
(``--draws N`` to change the number of draws).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()
    n = args.draws

    from distributed import Client, LocalCluster

    import bxlplan as bp
    from bxlplan.loading.catalog import data_dir
    from bxlplan.parallel import local_workers
    from bxlplan.scoring import assess, prepare
    from bxlplan.scoring.robustness import robustness

    folder = data_dir(None)
    print(f"load average {os.getloadavg()[0]:.1f}, cores {local_workers()}")
    areas = bp.areas("neighbourhoods", folder)
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        ctx = prepare(folder, cache=cache)
        t1 = time.perf_counter()
        base = assess(areas, ctx)
        t2 = time.perf_counter()
    cold, one = t2 - t0, t2 - t1
    print(
        f"cold assessment: {cold:.1f} s (prepare {t1 - t0:.1f} s, assess {one:.1f} s)"
    )

    wt = {"population_noise": 0.0, "income_noise": 0.0, "seed": 0, "draws": n}
    results = {}

    def timed(label: str, **kwargs) -> float:
        t = time.perf_counter()
        results[label] = robustness(areas if "assessment" not in kwargs else None,
                                    ctx, **kwargs)  # fmt: skip
        return time.perf_counter() - t

    total = timed("sync", scheduler="sync", **wt)
    print(
        f"robustness, {n:,} weight+threshold draws incl. its base assessment, sync: "
        f"{total:.1f} s = {total / cold:.2f}x the cold assessment "
        f"({total / one:.2f}x the assess alone); budget 3x"
    )
    local = timed("local", scheduler=None, **wt)
    print(
        f"  same on the default local cluster (started by the call, "
        f"{local_workers()} workers): {local:.1f} s = {local / cold:.2f}x cold "
        f"({local / one:.2f}x assess)"
    )
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):  # fmt: skip
        client.wait_for_workers(2)
        on = timed("cluster", scheduler=client, **wt)
        print(f"  same on a running 2-worker LocalCluster: {on:.1f} s")
        d_sync = timed("d_sync", scheduler="sync", assessment=base, **wt)
        d_cluster = timed("d_cluster", scheduler=client, assessment=base, **wt)
        pop = {**wt, "population_noise": 0.2}
        p_sync = timed("p_sync", scheduler="sync", assessment=base, **pop)
        p_cluster = timed("p_cluster", scheduler=client, assessment=base, **pop)
    print("draws per second (base assessment reused: the draws only):")
    print(f"  weights + thresholds: sync {n / d_sync:,.0f}/s, 2-worker cluster "
          f"{n / d_cluster:,.0f}/s (x{d_sync / d_cluster:.2f})")  # fmt: skip
    print(f"  + population noise 0.2: sync {n / p_sync:,.0f}/s, 2-worker cluster "
          f"{n / p_cluster:,.0f}/s (x{p_sync / p_cluster:.2f})")  # fmt: skip
    same = all(
        results["sync"]
        .areas.drop(columns="geometry")
        .equals(results[k].areas.drop(columns="geometry"))
        for k in ("local", "cluster")
    )
    print(f"identical results sync / local / cluster: {same}")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
