"""Independent tasks on Dask: scenario batches and robustness draws.

:func:`run_tasks` calls ``func(shared, item)`` for every item and returns the results in
the order of the items, on one of these schedulers:

``None`` or ``"local"``
    A ``distributed.LocalCluster`` started for the call and closed after it: one worker
    process per available core (at most one per item), one thread each. Worker
    processes, not threads, because the scenario work holds the GIL most of the time
    (pandas, shapely and Python loops). A distributed cluster rather than dask's plain
    ``processes`` scheduler because the shared object is shipped once per *worker*
    (``Client.scatter(..., broadcast=True)``) and then stays in its memory, while the
    ``processes`` scheduler pickles every input again into every task. Measured on
    the 2-core development machine (shared with other jobs), a 61 MB shared object and
    8 tasks of 0.5 s: the ``processes`` scheduler took 11-17 s, the ``LocalCluster``
    6.4-9.0 s including its 1.6-4 s start and 1.1 s to scatter the object. With one
    item, or one core, the task runs in this process: a cluster cannot make a single
    task faster.
``"sync"``
    In this process, one item after the other (debugging, doctests, profiling).
``"tcp://host:port"`` (or ``tls://``, ``ucx://`` ...)
    An existing ``dask.distributed`` cluster (``dask scheduler`` and ``dask worker``
    commands on one or many machines), which is how a run goes past one machine. Its
    workers need bxlplan installed (the same version) and, when the shared object
    reads files later, the same data folder at the same path.
a ``distributed.Client``
    A client the caller already holds; it is left open.

Memory: every worker holds one copy of ``shared`` plus the working memory of one task
at a time (``threads_per_worker=1``), so the memory of a run is about ``n_workers x
(size of shared + one task)`` plus the main process. ``LocalCluster`` caps each worker
at the machine's memory divided by the number of workers (``memory_limit="auto"``).

The local cluster starts its workers with ``multiprocessing``'s *spawn* method: a
script that calls :func:`run_tasks` with the local scheduler needs the usual ``if
__name__ == "__main__":`` guard (notebooks and the ``bxlplan`` command need nothing).

Results are identical whatever the scheduler, as long as ``func`` is deterministic
given its item: random seeds travel in the items, never in the worker's state.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .errors import ConfigError

__all__ = ["CONNECT_TIMEOUT", "check_scheduler", "local_workers", "run_tasks"]

#: seconds to wait for a ``--scheduler`` address before refusing it
CONNECT_TIMEOUT = 5.0

_LOCAL = (None, "local")


def local_workers(n_items: int | None = None) -> int:
    """Return the number of worker processes the local scheduler starts.

    One per core this process may run on (``os.sched_getaffinity`` where available),
    and never more than the number of items.

    Parameters
    ----------
    n_items
        Number of tasks to run, or None for no cap.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> local_workers(1)
    1
    >>> local_workers() >= 1
    True
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    if n_items is not None:
        cores = min(cores, n_items)
    return max(1, cores)


def check_scheduler(scheduler: Any = None) -> None:
    """Refuse a bad scheduler quickly, before any long computation.

    A ``"tcp://host:port"`` address is connected to (within :data:`CONNECT_TIMEOUT`
    seconds) and the connection closed again; the other forms are only checked for
    syntax.

    Parameters
    ----------
    scheduler
        None, ``"local"``, ``"sync"``, a scheduler address or a ``distributed.Client``
        (see :func:`run_tasks`).

    Raises
    ------
    ConfigError
        The value is none of those forms, or the address cannot be reached; the message
        names the address and says what to do.

    Examples
    --------
    >>> check_scheduler("sync")
    >>> try:
    ...     check_scheduler("my-cluster")
    ... except ConfigError as exc:
    ...     print(str(exc).split(";")[0])
    --scheduler 'my-cluster' is not 'local', 'sync' or a scheduler address like tcp://host:8786
    """
    if scheduler in _LOCAL or scheduler == "sync" or _is_client(scheduler):
        return
    address = _address(scheduler)
    client = _connect(address)
    client.close()


def run_tasks(
    func: Callable[[Any, Any], Any],
    items: Iterable[Any],
    *,
    shared: Any = None,
    scheduler: Any = None,
    progress: Callable[[int, int], None] | None = None,
    on_result: Callable[[int, Any], Any] | None = None,
) -> list[Any]:
    """Run ``func(shared, item)`` for every item, on Dask, and return the results in order.

    The tasks must be independent and ``func`` deterministic given its item (random
    seeds travel in the items), so that every scheduler gives the same results.

    Parameters
    ----------
    func
        A function of two arguments, ``(shared, item)``. On a cluster it is pickled
        (with cloudpickle): define it at module level in an importable module.
    items
        The task inputs, small and picklable (paths, parameters, seeds).
    shared
        One object every task reads (for instance a prepared baseline, tens of MB). On
        a cluster it is shipped to each worker once (``Client.scatter(...,
        broadcast=True)``) and every task on that worker receives the same object:
        tasks must not modify it.
    scheduler
        None or ``"local"`` (a local cluster of one process per core, closed at the
        end), ``"sync"`` (in this process, one after the other), a scheduler address
        such as ``"tcp://host:8786"`` (an existing ``dask.distributed`` cluster) or a
        ``distributed.Client`` (left open). See the module's notes.
    progress
        Called as ``progress(done, total)`` in this process after each finished task
        (in the order they finish), and once with ``(0, total)`` before the first.
    on_result
        Called as ``on_result(index, result)`` in this process as soon as the task
        of ``items[index]`` has finished (in the order they finish, before
        ``progress``); what it returns takes the result's place in the returned list.
        A batch uses it to write each result while the other tasks run, and to keep
        only a summary of each in memory.

    Returns
    -------
    list
        ``[func(shared, item) for item in items]``, in the order of ``items`` (each
        passed through ``on_result`` when given).

    Raises
    ------
    ConfigError
        ``scheduler`` is not one of the forms above, or its address cannot be reached
        (within :data:`CONNECT_TIMEOUT` seconds).
    Exception
        The first exception a task raised, re-raised here with its type; the other
        tasks are cancelled.

    Examples
    --------
    >>> def scale(factor, x):
    ...     return factor * x
    >>> run_tasks(scale, [1, 2, 3], shared=10, scheduler="sync")
    [10, 20, 30]
    >>> run_tasks(scale, [1, 2], shared=10, scheduler="sync",
    ...           on_result=lambda i, r: f"item {i}: {r}")
    ['item 0: 10', 'item 1: 20']
    >>> run_tasks(scale, [], shared=10)
    []
    """
    items = list(items)
    n = len(items)
    if scheduler not in _LOCAL and scheduler != "sync" and not _is_client(scheduler):
        address = _address(scheduler)  # syntax first: a typo fails without waiting
    if progress is not None:
        progress(0, n)
    if n == 0:
        return []
    if scheduler == "sync" or (scheduler in _LOCAL and local_workers(n) == 1):
        results = []
        for i, item in enumerate(items):
            result = func(shared, item)
            results.append(result if on_result is None else on_result(i, result))
            if progress is not None:
                progress(i + 1, n)
        return results
    if _is_client(scheduler):
        return _run_on(scheduler, func, items, shared, progress, on_result)
    if scheduler in _LOCAL:
        from distributed import Client, LocalCluster

        with (
            _quiet("distributed"),
            LocalCluster(
                n_workers=local_workers(n),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # no dashboard; its HTTP server on a free port, never a clash on 8787
                scheduler_kwargs={"dashboard_address": ":0"},
                # the worker processes' own logs: a task's error comes back to the
                # caller as its exception; what they log at shut-down ("failed to
                # communicate with scheduler during heartbeat") is not the user's news
                silence_logs=logging.CRITICAL,
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            return _run_on(client, func, items, shared, progress, on_result)
    client = _connect(address)
    try:
        return _run_on(client, func, items, shared, progress, on_result)
    finally:
        client.close()


def _run_on(client, func, items, shared, progress, on_result) -> list[Any]:
    """Scatter ``shared`` to every worker once, map ``func`` over ``items``, and
    collect each result as its task finishes."""
    from distributed import as_completed

    n = len(items)
    # wrapped in a list: scatter() would otherwise ship a dict or list item by item;
    # hash=False: a fresh key, so that an equal object of another run is not reused
    [shared_future] = client.scatter([shared], broadcast=True, hash=False)
    futures = client.map(_call, items, task=func, shared=shared_future, pure=False)
    position = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * n
    try:
        for done, future in enumerate(as_completed(futures, loop=client.loop), 1):
            i = position[future.key]
            result = future.result()  # a task's exception is raised here
            results[i] = result if on_result is None else on_result(i, result)
            future.release()  # the worker may drop it now
            if progress is not None:
                progress(done, n)
        return results
    finally:
        client.cancel([*futures, shared_future])


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Only errors from logger ``name`` while a private local cluster runs: its
    start-up and shut-down notes (workers killed after 4 s at close) are not the
    user's business."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _call(item, task, shared):
    """The task run on a worker: ``task(shared, item)``."""
    return task(shared, item)


def _is_client(obj: Any) -> bool:
    """Whether ``obj`` is a ``distributed.Client`` (without importing distributed)."""
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith(
        "distributed"
    )


def _address(scheduler: Any) -> str:
    """Return ``scheduler`` as an address, or raise a ConfigError saying what is valid."""
    if not isinstance(scheduler, str) or "://" not in scheduler:
        raise ConfigError(
            f"--scheduler {scheduler!r} is not 'local', 'sync' or a scheduler address "
            "like tcp://host:8786; leave it out to use every core of this machine"
        )
    scheme, _, rest = scheduler.partition("://")
    port = rest.rpartition(":")[2]
    if scheme == "tcp" and not (":" in rest and port.isdigit()):
        raise ConfigError(
            f"--scheduler {scheduler!r} has no port; give the scheduler's address "
            "with its port, e.g. tcp://host:8786 (the `dask scheduler` default)"
        )
    return scheduler


def _connect(address: str):
    """Open a Client on ``address``, or raise a ConfigError naming it."""
    from distributed import Client

    try:
        _probe(address)
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:  # refused, timed out, or not a dask scheduler
        raise ConfigError(
            f"--scheduler {address}: no dask scheduler answered within "
            f"{CONNECT_TIMEOUT:g} s ({type(exc).__name__}: {exc}); start one there "
            "(`dask scheduler`, then `dask worker "
            f"{address}` on each machine), check the host and port, or leave "
            "--scheduler out to use this machine's cores"
        ) from exc


def _probe(address: str) -> None:
    """Open and close a plain TCP connection to a ``tcp://`` address (fails fast)."""
    scheme, _, rest = address.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme != "tcp":
        return
    with socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT):
        pass
