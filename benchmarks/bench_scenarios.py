"""Benchmark: a batch of scenarios on Dask vs one cold scenario run (issue 12, item 6).

Budget: the 7 shipped scenarios from a warm cache take at most 2x one cold scenario
run. Both are measured in this process, one after the other:

* **cold**: ``prepare`` with an empty cache folder (the whole preparation, plus storing
  it in the cache, as a user's first run does), then ``run_scenario`` on Josaphat;
* **batch**: ``prepare`` from that now warm cache, a local cluster started (one worker
  process per core, one thread each: what ``scheduler=None`` starts), the baseline
  scattered to the workers once, and the 7 scenarios of ``scenarios/`` run as tasks
  (:func:`bxlplan.scenarios.batch.run_batch`), their results back in this process.

With ``--write`` both sides also write their output folders (``write_scenario`` /
``write_batch``, which renders the files on the workers). Without it, the same batch
is also timed in this process, one scenario after the other (``scheduler="sync"``), for
comparison: on 2 cores a scenario run is single-threaded, so the cluster can at best
halve the tasks' time, and it pays its start, the baseline's transfer and the results'
trip back.

Memory per worker is measured on the workers themselves (``psutil`` resident set
size): once started, once the baseline is there, and the peak over the batch
(``getrusage``). The figures are printed; timings taken while the machine is busy are
noisy, so the load average is printed with them.

Run: ``BXLPLAN_DATA=../shared/data/brussels python benchmarks/bench_scenarios.py``
(``--write`` to include the output files).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="write the output files")
    args = parser.parse_args()

    from distributed import Client, LocalCluster, get_task_stream

    from bxlplan.loading.catalog import data_dir
    from bxlplan.parallel import local_workers
    from bxlplan.scenarios import run_scenario, write_scenario
    from bxlplan.scenarios.batch import run_batch, write_batch
    from bxlplan.scoring import prepare

    folder = data_dir()
    cache = Path(tempfile.mkdtemp(prefix="bxlplan-bench-cache-"))
    out = Path(tempfile.mkdtemp(prefix="bxlplan-bench-out-"))
    print(f"{len(SCENARIOS)} scenarios; {os.cpu_count()} cores; load {os.getloadavg()}")

    t0 = time.perf_counter()
    ctx = prepare(folder, cache=cache)
    t_prepare = time.perf_counter() - t0
    res = run_scenario(ROOT / "scenarios" / "josaphat.yaml", ctx)
    if args.write:
        write_scenario(res, out / "cold")
    cold = time.perf_counter() - t0
    print(
        f"cold run: {cold:.1f} s (prepare {t_prepare:.1f} s, cache empty; "
        f"scenario {cold - t_prepare:.1f} s{' with its files' if args.write else ''})"
    )
    del ctx, res

    t0 = time.perf_counter()
    ctx = prepare(folder, cache=cache)
    t_warm = time.perf_counter() - t0
    n_workers = local_workers(len(SCENARIOS))
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        client.wait_for_workers(n_workers)
        t_cluster = time.perf_counter() - t0 - t_warm
        started = client.run(_rss_mb)
        t1 = time.perf_counter()  # not timed: the memory of a worker holding ctx
        [shared] = client.scatter([ctx], broadcast=True, hash=False)
        holding = client.run(_rss_mb)
        client.cancel(shared)
        del shared
        while sum(client.run(lambda dask_worker: len(dask_worker.data)).values()):
            time.sleep(0.1)
        untimed = time.perf_counter() - t1
        with get_task_stream(client) as stream:
            if args.write:
                table = write_batch(SCENARIOS, ctx, out / "batch", scheduler=client)
                names = list(table["variant"])
            else:
                results = run_batch(SCENARIOS, ctx, scheduler=client)
                names = [r.scenario.name for r in results]
        batch = time.perf_counter() - t0 - untimed
        peak = client.run(_peak_mb)
    print(
        f"batch of {len(names)} from a warm cache on {n_workers} workers: {batch:.1f} s "
        f"(prepare {t_warm:.1f} s, cluster start {t_cluster:.1f} s, tasks "
        f"{batch - t_warm - t_cluster:.1f} s{', files written' if args.write else ''})"
    )
    print(f"ratio batch / cold: {batch / cold:.2f} (budget <= 2.00)")
    if t_warm > t_prepare / 2:
        print(
            "  the warm prepare rebuilt the baseline: the cache was refused (was the "
            "source changed during the run?); the ratio is not the budget's"
        )
    spans = [
        (ss["stop"] - ss["start"], t["key"])
        for t in stream.data
        for ss in t["startstops"]
        if ss["action"] == "compute" and "_call" in str(t["key"])
    ]
    print(
        "task compute seconds on the workers: "
        + ", ".join(f"{s:.1f}" for s, _ in sorted(spans, reverse=True))
    )
    for w in sorted(started):
        print(
            f"worker {w}: {started[w]:.0f} MB started, {holding[w]:.0f} MB holding "
            f"the baseline, peak {peak[w]:.0f} MB over the batch"
        )
    if not args.write:
        t0 = time.perf_counter()
        run_batch(SCENARIOS, ctx, scheduler="sync")
        sync = time.perf_counter() - t0 + t_warm
        print(
            f"for comparison, the same batch in this process, one after the other "
            f"(scheduler='sync'): {sync:.1f} s, ratio {sync / cold:.2f}"
        )
    print(f"main process: peak {_peak_mb():.0f} MB; load {os.getloadavg()}")


if __name__ == "__main__":
    main()
