"""Scenario batches: many scenario files and parameter grids, run as Dask tasks.

A batch is a list of *variants*. Each scenario file is one variant; with a grid
(``--grid programme.dwellings.social=200,400,600``) each file becomes one variant per
value, and several grid keys form their cartesian product. A grid key is a dotted path
into the scenario file (``scenarios/README.md``): ``programme.dwellings.social``,
``programme.persons_per_dwelling``, ``surroundings_m``,
``programme.facilities.0.capacity`` (list items by position). Every variant is
validated like a scenario file (types, ``layers/limits.yaml`` bounds, region) before any
preparation, and gets a slug name that says what it varies
(``josaphat__dwellings_social_800``), which names its output folder.

The variants run over one prepared baseline with :func:`bxlplan.parallel.run_tasks`: the
baseline is shipped to each worker once, the variants are independent tasks, and the
results are the same on every scheduler. Each task carries its variant's YAML text, so
the workers of a remote cluster need no copy of the scenario files (a ``perimeter.file``
must still be readable at the same path there).

:func:`run_batch` returns the :class:`~bxlplan.scenarios.run.ScenarioResult` of every
variant. :func:`write_batch` writes every variant's folder (the same files as
``bxlplan scenario run``) and ``batch_summary.csv``, one row per variant with its
parameters and headline before/after figures: the workers also render the files (map,
report, GeoPackage) into a private temporary folder, and the main process alone
publishes each folder as one atomic set (:func:`bxlplan._io.output_set`), as soon as
its task has finished.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import itertools
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import yaml

from .._io import atomic_write, check_output_set, output_set, run_timestamp
from .._yaml import load_yaml
from ..errors import ConfigError, DataError
from ..parallel import check_scheduler, run_tasks
from ..scoring import Context
from .outputs import SCENARIO_FILES, scenario_folder, write_scenario
from .run import ScenarioResult, run_scenario
from .spec import read_scenario

__all__ = [
    "SUMMARY_FILE",
    "Variant",
    "batch_summary",
    "expand_batch",
    "parse_grid",
    "run_batch",
    "write_batch",
]

#: the batch's summary table, written into the output folder
SUMMARY_FILE = "batch_summary.csv"

_SLUG_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_WHERE = re.compile(r"^.*?, line \d+: ")  # "<file>, line N: " of a spec error


@dataclass(frozen=True)
class Variant:
    """One scenario of a batch: a scenario file, possibly with grid values set.

    Parameters
    ----------
    name
        The variant's slug name (its output folder): the file's ``name``, then
        ``__<key>_<value>`` for each grid key.
    source
        The scenario file it comes from.
    params
        Grid key -> value set in this variant (empty for a plain file).
    text
        The variant's YAML text, what a task runs.

    Examples
    --------
    >>> v = Variant("josaphat__surroundings_m_400", Path("scenarios/josaphat.yaml"),
    ...             {"surroundings_m": 400})
    >>> v.label
    'scenarios/josaphat.yaml [surroundings_m=400]'
    """

    name: str
    source: Path
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def label(self) -> str:
        """The source file and the grid values, for reports and messages."""
        given = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.source} [{given}]" if given else str(self.source)


def parse_grid(
    grid: Iterable[str] | Mapping[str, Sequence[Any]] | None,
) -> dict[str, list[Any]]:
    """Parse ``--grid key=a,b,c`` options into ``{key: [values]}``.

    Values are read as YAML scalars (``800`` is a whole number, ``2.1`` a number,
    ``inside`` text); whether they suit the key is checked by :func:`expand_batch`.

    Parameters
    ----------
    grid
        ``"key=a,b,c"`` strings, or a mapping of keys to lists of values (used as
        given), or None.

    Returns
    -------
    dict
        Key -> list of values, in the order given.

    Raises
    ------
    ConfigError
        An option without ``=``, an empty or malformed key, an empty value, a key
        given twice, or a value repeated.

    Examples
    --------
    >>> parse_grid(["programme.dwellings.social=200,400", "surroundings_m=800"])
    {'programme.dwellings.social': [200, 400], 'surroundings_m': [800]}
    >>> parse_grid(["programme.dwellings.social"])
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: --grid 'programme.dwellings.social': expected key=a,b,c, e.g. --grid programme.dwellings.social=200,400,600
    """
    if grid is None:
        return {}
    if isinstance(grid, Mapping):
        given = {str(k): list(v) for k, v in grid.items()}
        for key, values in given.items():
            _check_key(key, key)
            if not values:
                raise ConfigError(f"--grid {key}: give at least one value")
        return given
    out: dict[str, list[Any]] = {}
    for option in grid:
        key, sep, raw = str(option).partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(
                f"--grid {option!r}: expected key=a,b,c, e.g. "
                "--grid programme.dwellings.social=200,400,600"
            )
        _check_key(key, option)
        if key in out:
            raise ConfigError(
                f"--grid {key} is given twice: put all its values in one option "
                f"({key}=a,b,c)"
            )
        values = []
        for text in raw.split(","):
            text = text.strip()
            if not text:
                raise ConfigError(
                    f"--grid {option!r}: an empty value; separate values with "
                    "commas, without a trailing comma"
                )
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError:
                value = text
            if isinstance(value, dict | list) or value is None:
                raise ConfigError(
                    f"--grid {key}={text}: a value must be a number or a word, "
                    f"got {text!r}"
                )
            if value in values:
                raise ConfigError(f"--grid {key}: the value {text} is given twice")
            values.append(value)
        out[key] = values
    return out


def _check_key(key: str, option: str) -> None:
    parts = key.split(".")
    if not key or not all(re.fullmatch(r"[A-Za-z0-9_]+", p) for p in parts):
        raise ConfigError(
            f"--grid {option!r}: the key must be a dotted path into the scenario file, "
            "e.g. programme.dwellings.social or surroundings_m (scenarios/README.md)"
        )
    if parts[0] in ("name", "title", "pole", "sources", "facts", "assumptions"):
        raise ConfigError(
            f"--grid {key}: '{parts[0]}' is a label, not a parameter; vary a number of "
            "the programme, the perimeter or surroundings_m"
        )


def _set(data: Any, key: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``key`` ``"a.b.c"`` (list items by position)."""
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "the file"
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f"--grid {key}: {where} is a list of {len(node)}; give a "
                    f"position from 0 to {len(node) - 1}, got '{part}'"
                )
            index: Any = int(part)
        elif isinstance(node, dict):
            index = part
            if not last and part not in node:
                node[part] = {}
        else:
            raise ConfigError(
                f"--grid {key}: {where} is a single value ({node!r}), it has no "
                f"'{part}'"
            )
        if last:
            node[index] = value
        else:
            node = node[index]


def _slug(text: Any) -> str:
    return _SLUG_CHARS.sub("-", str(text).replace(".", "p")).strip("-") or "x"


def _variant_name(base: str, params: dict[str, Any], raw: dict[str, str]) -> str:
    parts = [base]
    for key in params:
        segs = key.split(".")
        if segs[0] == "programme" and len(segs) > 1:
            segs = segs[1:]
        parts.append(f"{'_'.join(segs)}_{_slug(raw[key])}")
    name = "__".join(parts)
    if len(name) > 64:  # the spec's name_max_length: shorten, keep it unique
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:55]}-{digest}"
    return name


def expand_batch(
    paths: Iterable[str | Path | Variant],
    grid: Iterable[str] | Mapping[str, Sequence[Any]] | None = None,
    *,
    region: gpd.GeoDataFrame | None = None,
    neighbourhoods: gpd.GeoDataFrame | Iterable[int] | None = None,
) -> list[Variant]:
    """Expand scenario files and a grid into validated variants (no computation).

    Parameters
    ----------
    paths
        Scenario files (already expanded :class:`Variant` objects are kept as they
        are).
    grid
        ``--grid`` options (``"key=a,b,c"``) or ``{key: [values]}``; every file gets
        one variant per combination of values (cartesian product).
    region, neighbourhoods
        As for :func:`~bxlplan.scenarios.spec.read_scenario`: when given, perimeters,
        locations and codes are checked against them.

    Returns
    -------
    list of Variant
        In the order of the files, then of the grid values.

    Raises
    ------
    ConfigError
        A file or a variant is invalid (the message names the file, or the grid key
        and value), or two variants would write the same output folder.

    Examples
    --------
    >>> josaphat = Path(__file__).parents[3] / "scenarios" / "josaphat.yaml"
    >>> variants = expand_batch([josaphat], ["programme.dwellings.social=200,400"])
    >>> [v.name for v in variants]
    ['josaphat__dwellings_social_200', 'josaphat__dwellings_social_400']
    >>> expand_batch([josaphat], ["programme.dwellings.social=-5"])
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: --grid programme.dwellings.social=-5 (.../josaphat.yaml): programme: dwellings: 'social' must be >= 0, got -5
    """
    spec = parse_grid(grid)
    raw_text = {k: [str(v) for v in vals] for k, vals in spec.items()}
    out: list[Variant] = []
    for item in paths:
        if isinstance(item, Variant):
            out.append(item)
            continue
        source = Path(item)
        scn = read_scenario(source, region=region, neighbourhoods=neighbourhoods)
        text = source.read_text(encoding="utf-8")
        data = load_yaml(source, text=text, what="scenario file")
        perimeter = data.get("perimeter") if isinstance(data, dict) else None
        if isinstance(perimeter, dict) and "file" in perimeter:
            # the variant's text is run from another folder: make the path absolute
            perimeter["file"] = str(scn.perimeter["file"])
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        if not spec:
            out.append(Variant(scn.name, source, {}, text))
            continue
        keys = list(spec)
        for combo in itertools.product(*(range(len(spec[k])) for k in keys)):
            params = {k: spec[k][i] for k, i in zip(keys, combo, strict=True)}
            raw = {k: raw_text[k][i] for k, i in zip(keys, combo, strict=True)}
            variant_data = copy.deepcopy(data)
            for key, value in params.items():
                _set(variant_data, key, value)
            name = _variant_name(scn.name, params, raw)
            variant_data["name"] = name
            variant_text = yaml.safe_dump(
                variant_data, sort_keys=False, allow_unicode=True
            )
            variant = Variant(name, source, params, variant_text)
            try:
                _read(variant, region=region, neighbourhoods=neighbourhoods)
            except ConfigError as exc:
                given = ", ".join(f"{k}={raw[k]}" for k in keys)
                msg = _WHERE.sub("", str(exc))
                raise ConfigError(f"--grid {given} ({source}): {msg}") from None
            out.append(variant)
    seen: dict[str, Variant] = {}
    for v in out:
        if v.name in seen:
            raise ConfigError(
                f"two scenarios of the batch are named '{v.name}' ({seen[v.name].label} "
                f"and {v.label}): they would write the same folder; give each file its "
                "own 'name'"
            )
        seen[v.name] = v
    return out


def _read(variant: Variant, **kwargs: Any) -> Any:
    """Validate a variant's text as a scenario file (written to a temporary file)."""
    with tempfile.TemporaryDirectory(prefix="bxlplan-variant-") as tmp:
        path = Path(tmp) / f"{variant.name}.yaml"
        path.write_text(variant.text, encoding="utf-8")
        return read_scenario(path, **kwargs)


def _run_variant(variant: Variant, ctx: Context) -> ScenarioResult:
    """Run one variant on ``ctx`` (the worker side), labelled with its source."""
    with tempfile.TemporaryDirectory(prefix="bxlplan-variant-") as tmp:
        path = Path(tmp) / f"{variant.name}.yaml"
        path.write_text(variant.text, encoding="utf-8")
        res = run_scenario(path, ctx)
    res.scenario.path = variant.source
    meta = res.areas.attrs.get("bxlplan")
    if isinstance(meta, dict):
        meta["scenario"] = str(variant.source)
        if variant.params:
            meta["grid"] = dict(variant.params)
    return res


def _headline(variant: Variant, res: ScenarioResult) -> dict[str, Any]:
    """One summary row: the variant, its parameters and its headline figures."""
    row: dict[str, Any] = {
        "variant": variant.name,
        "scenario_file": str(variant.source),
        **{f"grid_{k}": v for k, v in variant.params.items()},
        "pole": res.scenario.pole,
        "new_dwellings": res.social_housing["new_dwellings"],
        "new_residents": round(res.scenario.new_residents),
        "programme_social_share": res.social_housing["programme_social_share"],
    }
    for area, r in zip(("pole", "surroundings"), res.areas.itertuples(), strict=False):
        for col in ("score_overall", "score_diversity", "score_social_mix",
                    "score_services", "population_est"):  # fmt: skip
            for when in ("before", "after", "change"):
                row[f"{area}_{col}_{when}"] = getattr(r, f"{col}_{when}")
    for d in res.demand.itertuples():
        row[f"{d.category}_balance_places"] = d.balance_places
    return row


def batch_summary(
    variants: Sequence[Variant], results: Sequence[ScenarioResult]
) -> pd.DataFrame:
    """One row per variant: its name, file, grid values and headline figures.

    Parameters
    ----------
    variants
        The batch's variants (:func:`expand_batch`).
    results
        Their results, in the same order (:func:`run_batch`).

    Returns
    -------
    pandas.DataFrame
        Columns ``variant``, ``scenario_file``, ``grid_<key>`` for each grid key,
        ``pole``, ``new_dwellings``, ``new_residents``, ``programme_social_share``,
        then ``pole_`` and ``surroundings_`` scores and population before, after and
        change, and the places balance of each demand category.

    Examples
    --------
    >>> batch_summary([], []).empty
    True
    """
    return pd.DataFrame(
        [_headline(v, r) for v, r in zip(variants, results, strict=True)]
    )


# -- shipping results back: the parts a result shares with the baseline stay behind


class _Baseline:
    """Stands for a field of the baseline context in a result sent back."""

    def __init__(self, name: str) -> None:
        self.name = name


def _detach(res: ScenarioResult, ctx: Context) -> ScenarioResult:
    """Replace what ``res`` shares with ``ctx`` by placeholders (small to send)."""
    after = res.context_after
    shared: dict[str, Any] = {
        f.name: _Baseline(f.name)
        for f in dataclasses.fields(after)
        if f.name != "shortage_memo" and getattr(after, f.name) is getattr(ctx, f.name)
    }
    # a memo (tens of MB), recomputed when needed: not worth sending back
    light_after = dataclasses.replace(after, **shared, shortage_memo=None)
    before = dataclasses.replace(res.before, context=None)  # type: ignore[arg-type]
    after_assessment = res.after
    if res.after.context is after:
        after_assessment = dataclasses.replace(res.after, context=light_after)
    return dataclasses.replace(
        res, before=before, after=after_assessment, context_after=light_after
    )


def _attach(res: ScenarioResult, ctx: Context) -> ScenarioResult:
    """Undo :func:`_detach` with this process's baseline."""
    after = res.context_after
    restore = {
        f.name: getattr(ctx, f.name)
        for f in dataclasses.fields(after)
        if isinstance(getattr(after, f.name), _Baseline)
    }
    full_after = dataclasses.replace(after, **restore)
    before = (
        dataclasses.replace(res.before, context=ctx)
        if res.before.context is None
        else res.before
    )
    after_assessment = res.after
    if res.after.context is after:
        after_assessment = dataclasses.replace(res.after, context=full_after)
    return dataclasses.replace(
        res, before=before, after=after_assessment, context_after=full_after
    )


def _result_task(ctx: Context, variant: Variant) -> ScenarioResult:
    return _detach(_run_variant(variant, ctx), ctx)


def _files_task(
    ctx: Context, item: tuple[Variant, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Run a variant and render its output files into a private temporary folder."""
    variant, options = item
    res = _run_variant(variant, ctx)
    with tempfile.TemporaryDirectory(prefix="bxlplan-render-") as tmp:
        write_scenario(res, tmp, overwrite=True, **options)
        folder = Path(tmp) / res.scenario.name
        files = {n: (folder / n).read_bytes() for n in SCENARIO_FILES}
    return _headline(variant, res), files


def _variants(
    paths: Iterable[str | Path | Variant],
    grid: Any,
    ctx: Context,
) -> list[Variant]:
    variants = expand_batch(
        paths, grid, region=ctx.communes, neighbourhoods=ctx.neighbourhoods
    )
    if not variants:
        raise DataError("give at least one scenario file to run")
    return variants


def run_batch(
    paths: Iterable[str | Path | Variant],
    ctx: Context,
    *,
    grid: Iterable[str] | Mapping[str, Sequence[Any]] | None = None,
    scheduler: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ScenarioResult]:
    """Run scenario files and their grid variants over one baseline, as Dask tasks.

    Parameters
    ----------
    paths
        Scenario files, or variants from :func:`expand_batch`.
    ctx
        The prepared baseline (:func:`bxlplan.scoring.baseline.prepare`), shipped to
        each worker once.
    grid
        ``--grid`` options (``"programme.dwellings.social=200,400"``) or ``{key:
        [values]}``: each file runs once per combination of values.
    scheduler
        As for :func:`bxlplan.parallel.run_tasks`: None (every core of this machine),
        ``"sync"``, ``"tcp://host:8786"`` or a ``distributed.Client``.
    progress
        ``progress(done, total)``, called as variants finish.

    Returns
    -------
    list of ScenarioResult
        One per variant, in the order of :func:`expand_batch`; ``result.scenario.name``
        is the variant's name. The results are the same whatever the scheduler.

    Raises
    ------
    ConfigError
        A file or grid value is invalid, or the scheduler cannot be reached (before
        any task runs).

    Examples
    --------
    >>> from bxlplan.scoring import prepare
    >>> ctx = prepare()  # doctest: +SKIP
    >>> josaphat = Path(__file__).parents[3] / "scenarios" / "josaphat.yaml"
    >>> results = run_batch([josaphat], ctx, grid=["surroundings_m=400,800"],
    ...                     scheduler="sync")  # doctest: +SKIP
    >>> [r.scenario.name for r in results]  # doctest: +SKIP
    ['josaphat__surroundings_m_400', 'josaphat__surroundings_m_800']
    """
    check_scheduler(scheduler)
    variants = _variants(paths, grid, ctx)
    detached = run_tasks(
        _result_task, variants, shared=ctx, scheduler=scheduler, progress=progress
    )
    return [_attach(r, ctx) for r in detached]


def write_batch(
    paths: Iterable[str | Path | Variant],
    ctx: Context,
    out: str | Path,
    *,
    grid: Iterable[str] | Mapping[str, Sequence[Any]] | None = None,
    scheduler: Any = None,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
    lang: str = "fr",
    offline: bool = True,
    summary: bool | None = None,
    run_time: dt.datetime | None = None,
) -> pd.DataFrame:
    """Run a batch and write ``<out>/<variant>/`` for every variant, plus a summary.

    The tasks run the variants and render their files (as
    :func:`~bxlplan.scenarios.outputs.write_scenario`) on the workers, into private
    temporary folders; as each task finishes, this process publishes that variant's
    folder as one set (all files or none) while the other tasks run, and keeps only
    its summary row. ``<out>/batch_summary.csv`` is written last. A failed task stops
    the batch: the folders already published stay, no summary is written.

    Parameters
    ----------
    paths, ctx, grid, scheduler, progress
        As for :func:`run_batch`.
    out
        The scenarios' output folder.
    overwrite
        Replace existing output files (else an existing file is an error, checked
        before any task runs).
    lang, offline
        As for :func:`~bxlplan.scenarios.outputs.write_scenario`.
    summary
        Write ``batch_summary.csv``; by default when the batch has more than one
        variant.
    run_time
        The time stamp of every file of the batch (default: now, or
        ``SOURCE_DATE_EPOCH``).

    Returns
    -------
    pandas.DataFrame
        The summary (:func:`batch_summary`), one row per variant.

    Raises
    ------
    ConfigError
        As :func:`run_batch`.
    DataError
        An output file exists and ``overwrite`` is False, or ``out`` cannot be
        written (before any task runs).

    Examples
    --------
    >>> from bxlplan.scoring import prepare
    >>> ctx = prepare()  # doctest: +SKIP
    >>> josaphat = Path(__file__).parents[3] / "scenarios" / "josaphat.yaml"
    >>> table = write_batch([josaphat], ctx, "out/scenarios",
    ...                     grid=["programme.dwellings.social=200,400"])  # doctest: +SKIP
    >>> list(table["variant"])  # doctest: +SKIP
    ['josaphat__dwellings_social_200', 'josaphat__dwellings_social_400']
    """
    check_scheduler(scheduler)
    variants = _variants(paths, grid, ctx)
    out = Path(out)
    for v in variants:
        check_output_set(scenario_folder(out, v.name), SCENARIO_FILES, overwrite)
    with_summary = len(variants) > 1 if summary is None else summary
    if with_summary:
        check_output_set(out, (SUMMARY_FILE,), overwrite)
    when = run_time or run_timestamp()
    options = {"lang": lang, "offline": offline, "run_time": when}
    out.mkdir(parents=True, exist_ok=True)
    (out / ".bxlplan.lock").touch()  # as write_scenario: the scenarios' root lock

    def publish(i: int, rendered: tuple[dict[str, Any], dict[str, bytes]]) -> dict:
        row, files = rendered
        folder = scenario_folder(out, variants[i].name)
        with output_set(
            folder, SCENARIO_FILES, overwrite=overwrite, run_time=when
        ) as stage:
            for name, data in files.items():
                atomic_write(stage.path / name, data)
        return row  # the files are on disk: only the summary row is kept

    rows = run_tasks(
        _files_task,
        [(v, options) for v in variants],
        shared=ctx,
        scheduler=scheduler,
        progress=progress,
        on_result=publish,
    )
    table = pd.DataFrame(rows)
    if with_summary:
        from ..exports.gis import csv_bytes

        with output_set(
            out, (SUMMARY_FILE,), overwrite=overwrite, run_time=when
        ) as stage:
            atomic_write(stage.path / SUMMARY_FILE, csv_bytes(table))
    return table
