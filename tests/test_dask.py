"""Scale-out on Dask (issue 12, item 6): bxlplan.parallel and scenario batches.

One real ``distributed.LocalCluster`` (2 worker processes, one thread each) serves the
whole module; no mocks. The same tasks give the same results in this process
(``"sync"``), on the default local cluster, on the cluster by address and through a
``Client``; the shared object reaches each worker once; an unreachable scheduler and a
bad ``--grid`` are refused with a message naming them, before any preparation.
"""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bxlplan.cli import app
from bxlplan.errors import ConfigError
from bxlplan.parallel import check_scheduler, run_tasks
from bxlplan.scenarios.batch import (
    SUMMARY_FILE,
    _attach,
    _detach,
    batch_summary,
    expand_batch,
    parse_grid,
    run_batch,
    write_batch,
)

ROOT = Path(__file__).resolve().parent.parent
JOSAPHAT = ROOT / "scenarios" / "josaphat.yaml"
DEAD = "tcp://127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
        ) as cluster,
        Client(cluster, set_as_default=False) as c,
    ):
        c.wait_for_workers(2)
        yield c


# -- tasks: module-level, so that the workers unpickle them by reference --------------

_UNPICKLED = []  # per process: how many Probe objects this process has unpickled


class Probe:
    """A shared object that counts how often a process unpickles it."""

    def __init__(self, size: int) -> None:
        self.data = np.arange(size, dtype=np.float64)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        _UNPICKLED.append(1)


def draw(shared: Probe, item: tuple[int, int]) -> float:
    """A deterministic 'draw': the seed travels in the item."""
    seed, n = item
    rng = np.random.default_rng(seed)
    return float(rng.choice(shared.data, size=n).sum())


def where(shared: Probe, item: int) -> tuple[int, int, int, int]:
    """The worker's process id, the shared object's id and unpickling count."""
    time.sleep(0.05)
    return item, os.getpid(), id(shared), len(_UNPICKLED)


ITEMS = [(seed, 1000) for seed in range(12)]


def test_results_are_identical_on_every_scheduler(client):
    probe = Probe(10_000)
    expected = run_tasks(draw, ITEMS, shared=probe, scheduler="sync")
    assert expected == [draw(probe, it) for it in ITEMS]
    assert len(set(expected)) == len(ITEMS)  # the seeds do differ
    seen = []
    by_client = run_tasks(
        draw,
        ITEMS,
        shared=probe,
        scheduler=client,
        progress=lambda i, n: seen.append((i, n)),
    )
    by_address = run_tasks(
        draw, ITEMS, shared=probe, scheduler=client.scheduler.address
    )
    local = run_tasks(draw, ITEMS, shared=probe)  # its own LocalCluster, then closed
    assert by_client == by_address == local == expected
    assert seen == [(i, len(ITEMS)) for i in range(len(ITEMS) + 1)]
    assert client.status == "running"  # a Client passed in is left open


def _reset() -> None:
    _UNPICKLED.clear()


def test_the_shared_object_reaches_each_worker_once(client):
    client.run(_reset)  # the workers have served other tests
    rows = run_tasks(where, range(16), shared=Probe(1_000_000), scheduler=client)
    assert [r[0] for r in rows] == list(range(16))  # results in the order of items
    pids = {pid for _, pid, _, _ in rows}
    assert os.getpid() not in pids  # the tasks ran in the worker processes
    for pid in pids:
        mine = [r for r in rows if r[1] == pid]
        # every task of a worker saw the same object, unpickled once in that worker
        assert len({obj for _, _, obj, _ in mine}) == 1
        assert {count for _, _, _, count in mine} == {1}
    # nothing is left on the cluster after the call (released asynchronously)
    deadline = time.monotonic() + 10
    while sum(client.run(lambda dask_worker: len(dask_worker.data)).values()):
        assert time.monotonic() < deadline, "the shared object stayed on the workers"
        time.sleep(0.1)


def test_a_task_error_comes_back_with_its_type(client):
    with pytest.raises(ZeroDivisionError):
        run_tasks(lambda shared, x: shared / x, [1, 0, 2], shared=1, scheduler=client)


def test_an_unreachable_scheduler_is_refused_quickly_naming_it():
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"--scheduler tcp://127\.0\.0\.1:1: no dask"):
        run_tasks(draw, ITEMS, shared=Probe(10), scheduler=DEAD)
    assert time.monotonic() - start < 10
    with pytest.raises(ConfigError, match="not 'local', 'sync' or a scheduler address"):
        check_scheduler("my-cluster:8786")
    with pytest.raises(ConfigError, match="has no port"):
        check_scheduler("tcp://localhost")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["programme.dwellings.social"], "expected key=a,b,c"),
        (["programme..social=1"], "must be a dotted path"),
        (["programme.dwellings.social=1,,2"], "an empty value"),
        (["programme.dwellings.social=1,1"], "the value 1 is given twice"),
        (["surroundings_m=400", "surroundings_m=800"], "surroundings_m is given twice"),
        (["name=a,b"], "'name' is a label"),
    ],
)
def test_grid_syntax_errors_name_the_option(options, message):
    with pytest.raises(ConfigError, match=message):
        parse_grid(options)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        # an unknown key, as the scenario schema says
        (
            "programme.dwelings.social=100",
            r"--grid programme\.dwelings\.social=100 .*unknown key 'dwelings'",
        ),
        # a wrong type
        (
            "programme.dwellings.social=many",
            r"--grid programme\.dwellings\.social=many .*must be a number, got 'many'",
        ),
        # out of the bounds of layers/limits.yaml
        (
            "programme.dwellings.social=50000",
            r"social=50000 .*above the plausible maximum of 45,000",
        ),
        (
            "programme.persons_per_dwelling=9",
            r"persons_per_dwelling=9 .*implausible \(0\.5-6\)",
        ),
        # into a list, by position
        ("programme.facilities.7.capacity=10", r"programme\.facilities is a list of 2"),
        ("surroundings_m.x=1", r"surroundings_m is a single value"),
    ],
)
def test_grid_values_are_validated_against_the_scenario_schema(option, message):
    with pytest.raises(ConfigError, match=message):
        expand_batch([JOSAPHAT], [option])


def test_grid_variants_are_a_product_with_readable_names():
    variants = expand_batch(
        [JOSAPHAT],
        [
            "programme.dwellings.social=200,400",
            "programme.persons_per_dwelling=1.8,2.1",
        ],
    )
    assert [v.name for v in variants] == [
        "josaphat__dwellings_social_200__persons_per_dwelling_1p8",
        "josaphat__dwellings_social_200__persons_per_dwelling_2p1",
        "josaphat__dwellings_social_400__persons_per_dwelling_1p8",
        "josaphat__dwellings_social_400__persons_per_dwelling_2p1",
    ]
    assert variants[3].params == {
        "programme.dwellings.social": 400,
        "programme.persons_per_dwelling": 2.1,
    }
    assert "social: 400" in variants[3].text and "market: 800" in variants[3].text
    with pytest.raises(
        ConfigError, match="two scenarios of the batch are named 'josaphat'"
    ):
        expand_batch([JOSAPHAT, JOSAPHAT])


@pytest.mark.pack
def test_cli_refuses_a_bad_grid_or_scheduler_before_preparing(pack, tmp_path):
    runner = CliRunner()
    base = [
        "scenario",
        "run",
        str(JOSAPHAT),
        "--data",
        str(pack),
        "--out",
        str(tmp_path),
    ]
    start = time.monotonic()
    r = runner.invoke(app, [*base, "--grid", "programme.dwellings.social=lots"])
    assert r.exit_code == 2, r.output
    assert "--grid programme.dwellings.social=lots" in r.output
    assert "must be a number" in r.output
    r = runner.invoke(app, [*base, "--scheduler", DEAD])
    assert r.exit_code == 2, r.output
    assert DEAD in r.output and "dask scheduler" in r.output
    assert time.monotonic() - start < 20  # no preparation (which takes ~25 s)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_batch_is_the_same_in_this_process_and_on_the_cluster(ctx, client, tmp_path):
    grid = ["programme.dwellings.social=200,900"]
    variants = expand_batch([JOSAPHAT], grid)
    local = run_batch([JOSAPHAT], ctx, grid=grid, scheduler="sync")
    out = tmp_path / "out"
    table = write_batch(variants, ctx, out, scheduler=client)
    assert [r.scenario.name for r in local] == list(table["variant"])
    # the headline figures, computed in the workers, equal those of this process
    expected = batch_summary(variants, local)
    pd.testing.assert_frame_equal(table, expected)
    assert (
        table["pole_population_est_after"].iloc[1]
        > table["pole_population_est_after"].iloc[0]
    )
    # every variant's folder is complete, the summary lists them
    for name in table["variant"]:
        assert (out / name / "report.html").stat().st_size > 0
        assert (out / name / "scenario.gpkg").stat().st_size > 0
    summary = pd.read_csv(out / SUMMARY_FILE)
    assert list(summary["grid_programme.dwellings.social"]) == [200, 900]
    # a result travels back without the baseline (run_batch on a cluster) and holds
    # this process's baseline again; nothing else changes on the way
    back = _attach(pickle.loads(pickle.dumps(_detach(local[1], ctx))), ctx)
    # it is sent without the baseline: well under the whole result
    assert len(pickle.dumps(_detach(local[1], ctx))) < len(pickle.dumps(local[1])) * 0.6
    assert back.before.context is ctx and back.context_after.graph is ctx.graph
    assert back.context_after.origins is not ctx.origins  # with the new residents
    pd.testing.assert_frame_equal(back.table, local[1].table, check_exact=True)
    pd.testing.assert_frame_equal(back.demand, local[1].demand, check_exact=True)
    pd.testing.assert_frame_equal(back.after.areas, local[1].after.areas)
    assert local[0].before.context is ctx
