"""Benchmark: iterating on an assessment (issue 12 budgets).

Prints its figures so runs can be compared; it is not a timed test. Budgets:

* warm cache: ``prepare`` from the baseline cache + ``assess`` of a new set of areas
  takes at most 1/5 of the cold run (``prepare`` without a usable cache entry, which
  writes it, + ``assess`` of another new set); aim 1/10;
* re-weighting the 145 neighbourhoods in process under 0.5 s (``Assessment.rescore``:
  re-scoring the stored indicators; a full ``assess`` with the new weights is printed
  too, and all three are compared);
* new thresholds: ``with_thresholds`` (no graph) + ``assess``;
* fail fast: ``bxlplan assess`` refused by validation (the output exists, no
  ``--overwrite``), a whole process, under 1/10 of the cold run; the refusal of a
  street network serving one commune (in process, before the access) is printed too;
* peak memory (max RSS) of a warm ``prepare`` + ``assess`` of the 145 neighbourhoods,
  in a fresh process.

Fairness: cold and warm run in the same process, alternating (cold, warm, cold, ...;
the cache folder is emptied before each cold run), so that a load change on the
machine hits both; the ratio is the median of each back-to-back pair's ratio. Each
warm run assesses a set of areas no run assessed before (hexagons and squares of
sizes not used elsewhere), so nothing area-specific is reused. The outputs are
compared: the warm assessment of the cold run's areas equals the cold one exactly.
The load average is printed with the figures.

Run: ``BXLPLAN_DATA=../shared/data/brussels python benchmarks/bench_iteration.py``
(``--runs N`` pairs of cold and warm runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import pandas as pd

import bxlplan
from bxlplan.errors import DataError
from bxlplan.loading.areas import load_areas, make_grid
from bxlplan.scoring import assess, prepare
from bxlplan.scoring.access import with_thresholds
from bxlplan.scoring.scores import score_table


def load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_cold_warm(runs: int, cache: Path) -> object:
    """Alternating cold and warm runs; returns the last warm context."""
    region = bxlplan.load("region")
    ratios, colds, warms = [], [], []
    ctx = None
    for i in range(runs):
        # sizes no other run uses: every set of areas is new
        cold_areas = make_grid(region, 500 + 10 * i, "hex")
        warm_areas = make_grid(region, 300 + 10 * i, "square")
        shutil.rmtree(cache, ignore_errors=True)
        t0 = time.perf_counter()
        cold_ctx = prepare(cache=cache)
        cold_res = assess(cold_areas, cold_ctx)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        ctx = prepare(cache=cache)
        warm_res = assess(warm_areas, ctx)
        warm = time.perf_counter() - t0
        colds.append(cold)
        warms.append(warm)
        ratios.append(warm / cold)
        print(f"  pair {i + 1}: cold {cold:5.1f} s ({len(cold_areas):,} hexagons), "
              f"warm {warm:5.2f} s ({len(warm_areas):,} squares), warm/cold "
              f"{warm / cold:.3f}  (load {load_avg()})")  # fmt: skip
        # outputs compared: the warm context assesses the cold areas identically
        again = assess(cold_areas, ctx)
        pd.testing.assert_frame_equal(
            again.areas.drop(columns="geometry"),
            cold_res.areas.drop(columns="geometry"),
            check_exact=True,
        )
        del cold_ctx, cold_res, warm_res, again
    med = statistics.median(ratios)
    print(f"warm cache: median cold {statistics.median(colds):.1f} s, warm "
          f"{statistics.median(warms):.2f} s; median warm/cold {med:.3f} = 1/{1 / med:.0f} "
          f"(budget <= 1/5, aim 1/10); outputs equal (cold areas re-assessed warm)")  # fmt: skip
    return ctx, statistics.median(colds)


def bench_rescoring(ctx) -> None:
    hoods = load_areas("neighbourhoods", ctx.data)
    base = assess(hoods, ctx)
    weights = {"diversity": 2.0, "social_mix": 0.5, "services": 1.0}
    new_config = {**ctx.config, "weights": weights}
    ind = base.areas
    complete = [c for c in ctx.categories if c in ctx.access and c not in ctx.partial]
    times, public = [], []
    for _ in range(5):
        scores, t = timed(score_table, ind, complete, new_config, len(ctx.access))
        times.append(t)
        quick, t = timed(base.rescore, weights=weights)  # the public method
        public.append(t)
    re_ctx = dataclasses.replace(ctx, config=new_config)
    full, t_full = timed(assess, hoods, re_ctx)
    valid = full.areas["score_overall"].notna()
    assert (scores["score_overall"][valid] - full.areas["score_overall"][valid]).abs().max() < 1e-9  # fmt: skip
    assert (quick.areas["score_overall"][valid] - full.areas["score_overall"][valid]).abs().max() < 1e-9  # fmt: skip
    assert not full.areas["score_overall"].equals(base.areas["score_overall"])
    print(f"re-weighting 145 neighbourhoods: Assessment.rescore median "
          f"{statistics.median(public) * 1000:.1f} ms (score_table alone "
          f"{statistics.median(times) * 1000:.1f} ms); a full assess with the new weights "
          f"{t_full:.2f} s (budget < 0.5 s)  (load {load_avg()})")  # fmt: skip

    thresholds = {"pharmacy": 600, "transit_stop": 500, "daily_shops": 1000}
    times = []
    for _ in range(5):
        ctx2, t = timed(with_thresholds, ctx, thresholds)
        times.append(t)
    every = {c: int(a.threshold_m * 0.9) for c, a in ctx.access.items()}
    t_every = statistics.median(timed(with_thresholds, ctx, every)[1] for _ in range(5))
    res2, t_assess = timed(assess, hoods, ctx2)
    assert "access_pharmacy_within_600m_share" in res2.areas
    print(f"new thresholds (3 categories): with_thresholds median "
          f"{statistics.median(times) * 1000:.1f} ms (all {len(every)} categories "
          f"{t_every * 1000:.1f} ms); assess of the 145 neighbourhoods with them "
          f"{t_assess:.2f} s (shortage zones recomputed)")  # fmt: skip


def bench_fail_fast(cold: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        (out / "assessment.gpkg").write_bytes(b"")
        script = Path(sys.executable).with_name("bxlplan")  # the installed command
        cmd = [str(script), "assess", "--out", str(out)]
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            times.append(time.perf_counter() - t0)
            assert proc.returncode != 0, proc.stdout
        t = statistics.median(times)
        msg = (proc.stderr or proc.stdout).strip().splitlines()[-1][:100]
        # the same refusal in process (imports done): the checks themselves
        from typer.testing import CliRunner

        from bxlplan.cli import app

        runner = CliRunner()
        runner.invoke(app, ["assess", "--out", str(out)])  # its lazy imports, untimed
        in_proc = []
        for args in (["--out", str(out)], ["--threshold", "pharmacie=600"]):
            t0 = time.perf_counter()
            res = runner.invoke(app, ["assess", *args])
            in_proc.append(time.perf_counter() - t0)
            assert res.exit_code != 0, res.output
        print(f"fail fast in process (CliRunner, imports done): existing output refused in "
              f"{in_proc[0] * 1000:.0f} ms, an unknown --threshold category in "
              f"{in_proc[1] * 1000:.0f} ms (budget < 1/10 of the cold run = "
              f"{cold / 10:.1f} s)")  # fmt: skip
        print(f"fail fast: `bxlplan assess` with an existing output, no --overwrite, "
              f"refused in {t:.2f} s (whole process, median of 3) = 1/{cold / t:.0f} of "
              f"the cold run (budget < 1/10): {msg!r}")  # fmt: skip
    # a street network serving one commune: refused before the access computation
    communes = bxlplan.load("communes")
    streets = bxlplan.load("streets")
    ixelles = communes.loc[communes["name_fr"] == "Ixelles"].geometry.iloc[0]
    clipped = streets[streets.intersects(ixelles)]
    t0 = time.perf_counter()
    try:
        prepare(layers={"streets": clipped})
    except DataError as exc:
        t = time.perf_counter() - t0
        print(f"fail fast: a street network clipped to one commune refused in {t:.1f} "
              f"s = 1/{cold / t:.0f} of the cold run (right after loading the streets "
              f"and the communes, before the population and the access): "
              f"{str(exc)[:90]!r}...")  # fmt: skip
    else:
        raise AssertionError("the clipped network was not refused")


PEAK = """
import resource, time
from bxlplan.loading.areas import load_areas
from bxlplan.scoring import assess, prepare
t0 = time.perf_counter()
ctx = prepare(cache={cache!r})
res = assess(load_areas("neighbourhoods", ctx.data), ctx)
print(f"{{time.perf_counter() - t0:.2f}} {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}}")
"""


def bench_peak_memory(cache: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PEAK.format(cache=str(cache))],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall, rss = proc.stdout.split()[-2:]
    print(f"warm assessment in a fresh process (prepare from the cache + 145 "
          f"neighbourhoods): {wall} s after imports, peak memory (max RSS) {rss} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=2, help="pairs of cold and warm runs"
    )
    args = parser.parse_args()
    pkgs = ("bxlplan", "numba", "numpy", "pandas")
    print(", ".join(f"{p} {version(p)}" for p in pkgs)
          + f", Python {platform.python_version()}; {os.cpu_count()} cores "
          f"({len(os.sched_getaffinity(0))} usable), load average {load_avg()}")  # fmt: skip
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        ctx, cold = bench_cold_warm(args.runs, cache)
        bench_rescoring(ctx)
        bench_peak_memory(cache)
        bench_fail_fast(cold)
    print(f"this process: peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB; "
          f"benchmark wall time {time.perf_counter() - t0:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
