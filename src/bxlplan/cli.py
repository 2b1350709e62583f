"""The ``bxlplan`` command line: a thin layer over the library's functions."""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from .errors import BxlplanError

_state = {"verbose": False, "quiet": False}


class _Group(TyperGroup):
    """The command group: every error ends in one located message and exit code 2.

    A :class:`BxlplanError` already names the file, layer, field or row; anything else
    is a bug and says so. ``-v`` adds the traceback for debugging.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own exits and usage errors (typer vendors its click)
        except BxlplanError as exc:
            _report(exc, "error:", str(exc))
        except OSError as exc:  # a disk full, a permission refused: say where
            where = f": {exc.filename}" if exc.filename else ""
            _report(exc, "error:", f"{exc.strerror or exc}{where}")
        except Exception as exc:
            _report(
                exc,
                "internal error:",
                f"{type(exc).__name__}: {exc}. This is a bug in bxlplan: run again "
                "with -v and report the traceback.",
            )


def _report(exc: BaseException, label: str, message: str) -> NoReturn:
    # the message quotes data (paths, names): printed as text, never as rich markup
    err.print(f"[bold red]{label}[/] {escape(message)}", highlight=False)
    if _state["verbose"]:
        err.print(
            "".join(traceback.format_exception(exc)), highlight=False, markup=False
        )
    raise typer.Exit(2)


app = typer.Typer(
    cls=_Group,
    help="bxlplan: load Brussels layers, score areas, model pole scenarios, export maps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)
err = Console(stderr=True, soft_wrap=True)  # never break paths in error messages

DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data", help="Data folder (default: $BXLPLAN_DATA).", show_default=False
    ),
]


CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        help="Baseline cache folder (default: $BXLPLAN_CACHE, else the user cache "
        "folder).",
        show_default=False,
    ),
]
NoCacheOpt = Annotated[
    bool,
    typer.Option("--no-cache", help="Prepare the baseline without the cache."),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="PostgreSQL database for --format postgis: postgresql://user@host:port/"
        "database (the password in ~/.pgpass or PGPASSWORD, never shown).",
        show_default=False,
    ),
]
SchemaOpt = Annotated[
    str,
    typer.Option(help="Schema of the tables written with --format postgis."),
]


def _postgis_choice(
    formats: list[str], db: str | None, files: tuple[str, ...]
) -> tuple[list[str], bool]:
    """The file formats asked for, and whether PostGIS is (``--format postgis``, which
    needs ``--db``); checked before any computation."""
    from .errors import ConfigError

    to_db = "postgis" in formats
    if to_db and not db:
        raise ConfigError(
            "--format postgis needs the database: add --db "
            "postgresql://user@host:port/database"
        )
    if db and not to_db:
        raise ConfigError(
            f"--db is given but --format has no postgis: add it (e.g. --format "
            f"{','.join([*files, 'postgis'])}) or leave --db out"
        )
    if db:  # the PostGIS helpers (and geopandas) only when a database is named
        from .loading.postgis import is_postgres_url, mask_dsn
    if db and not is_postgres_url(db):
        raise ConfigError(
            f"--db must be a PostgreSQL URL postgresql://user@host:port/database, got "
            f"'{mask_dsn(db)}'"
        )
    return [f for f in formats if f != "postgis"], to_db


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More detail; tracebacks on errors.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress messages.")
    ] = False,
) -> None:
    _state["verbose"] = verbose
    _state["quiet"] = quiet
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)


class Steps:
    """Progress of a long command, as a callable ``steps("access: pharmacy (6/16)")``.

    On a terminal, a rich progress line (spinner, current step, a bar for counted steps
    ``(i/n)``, elapsed time); otherwise (logs, pipes, CI) one line per step on stderr
    with the seconds since the command started: ``[12.3 s] access: pharmacy (6/16)``.
    ``-q`` silences it; ``-v`` also prints each step's line on a terminal.
    """

    _COUNT = re.compile(r"\((\d+)/(\d+)\)\s*$")

    def __init__(self, first: str = "preparing") -> None:
        self.start = time.monotonic()
        self.quiet = _state["quiet"]
        self.bar: Any = None
        self.first = first

    def __enter__(self) -> Steps:
        if not self.quiet and err.is_terminal:
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=err,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.first, total=None)
        else:
            self(self.first)
        return self

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        line = f"[{time.monotonic() - self.start:.1f} s] {message}"
        if self.bar is None:
            err.print(line, markup=False, highlight=False)
            return
        count = self._COUNT.search(message)
        if count:
            done, total = int(count[1]) - 1, int(count[2])
            self.bar.update(self.task, description=message, completed=done, total=total)
        else:
            self.bar.update(self.task, description=message, completed=0, total=None)
        if _state["verbose"]:
            self.bar.console.print(line, markup=False, highlight=False)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
        elif exc[0] is None:
            self("done")


def _cache_choice(cache: Path | None, no_cache: bool) -> Path | bool:
    """The ``cache`` argument of ``prepare`` for ``--cache DIR`` / ``--no-cache``,
    checked before any work."""
    from .errors import ConfigError
    from .scoring.cache import cache_folder

    if no_cache and cache is not None:
        raise ConfigError("give --cache DIR or --no-cache, not both")
    choice: Path | bool = False if no_cache else (cache or True)
    cache_folder(choice)  # a file where the folder goes: refused now
    return choice


@app.command("layers")
def layers_cmd(data: DataOpt = None) -> None:
    """List the layer catalog: source, licence, presence in the data folder, features."""
    from .loading.catalog import data_dir
    from .loading.check import list_layers

    folder = data_dir(data) if data is not None or _env_data() else None
    df = list_layers(folder)
    table = Table(title=f"bxlplan layers ({folder or 'no data folder'})")
    for col in (
        "layer",
        "group",
        "required",
        "present",
        "features",
        "source",
        "official",
        "licence",
    ):
        table.add_column(col)
    for row in df.to_dict(orient="records"):
        features = row["features"]
        table.add_row(
            str(row["layer"]),
            str(row["group"]),
            "yes" if row["required"] else "",
            "[green]yes[/]" if row["present"] else "[yellow]no[/]",
            "" if features is None or features != features else f"{int(features):,}",
            Text(str(row["source"])),
            str(row["official"]),
            str(row["licence"]),
        )
    console.print(table)


def _env_data() -> bool:
    import os

    return bool(os.environ.get("BXLPLAN_DATA"))


@app.command("check")
def check_cmd(
    data: DataOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write check_report.json and facilities.csv here."),
    ] = None,
) -> None:
    """Validate every layer of the data folder; exit 1 when a required layer is broken."""
    from .loading.catalog import data_dir
    from .loading.check import check_data

    folder = data_dir(data)
    with console.status("checking layers..."):
        results = check_data(folder)
    colours = {"ok": "green", "missing": "yellow", "broken": "red"}
    table = Table(title=f"bxlplan check {folder}")
    for col in ("layer", "required", "status", "features", "notes"):
        table.add_column(col, overflow="fold")
    for r in results:
        status = r.status if not r.failed else f"{r.status} (REQUIRED)"
        table.add_row(
            r.layer,
            "yes" if r.required else "",
            f"[{colours[r.status]}]{status}[/]",
            "" if r.features is None else f"{r.features:,}",
            Text("\n".join(r.messages)),  # messages quote data: text, not markup
        )
    console.print(table)
    summary = next(
        (r.details["summary"] for r in results if "summary" in r.details), None
    )
    if summary is not None:
        ftable = Table(title="Facilities per category")
        for col in ("category", "threshold_m", "count", "status"):
            ftable.add_column(col)
        for row in summary.itertuples(index=False):
            ftable.add_row(
                row.category,
                str(row.threshold_m),
                "-" if row.status == "missing" else f"{int(row.count):,}",
                {
                    "missing": "[yellow]missing data[/]",
                    "partial": "[yellow]partial[/]",
                }.get(row.status, "ok"),
            )
        console.print(ftable, markup=False)
    if out is not None:
        from ._io import atomic_write

        report = [
            {k: v for k, v in vars(r).items() if k != "details"}
            | {"network": r.details.get("network")}
            for r in results
        ]
        atomic_write(
            Path(out) / "check_report.json",
            json.dumps(report, indent=2, default=str).encode(),
        )
        if summary is not None:
            atomic_write(
                Path(out) / "facilities_per_category.csv",
                summary.to_csv(index=False).encode(),
            )
        console.print(f"report written to {out}", markup=False)
    failed = [r.layer for r in results if r.failed]
    if failed:
        err.print(
            f"[bold red]required layer(s) missing or broken:[/] {', '.join(failed)}"
        )
        raise typer.Exit(1)


@app.command("fetch")
def fetch_cmd(
    layers: Annotated[
        list[str] | None,
        typer.Argument(help="Layers to fetch (default: all official)."),
    ] = None,
    data: DataOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Download again even if present.")
    ] = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="Send requests to this host instead (mirror, stand-in)."
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds one network read may wait.")
    ] = 30.0,
    retries: Annotated[int, typer.Option(help="Retries per request.")] = 3,
    deadline: Annotated[
        float | None,
        typer.Option(
            help="Seconds for a whole layer: every request, retry and wait "
            "(default: layers/fetch.yaml)."
        ),
    ] = None,
    request_deadline: Annotated[
        float | None,
        typer.Option(
            "--request-deadline",
            help="Seconds for one request, body included (default: layers/fetch.yaml).",
        ),
    ] = None,
    max_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-bytes",
            help="Bytes one layer may download (default: layers/fetch.yaml).",
        ),
    ] = None,
    max_pages: Annotated[
        int | None,
        typer.Option(
            "--max-pages",
            help="WFS pages one layer may take (default: layers/fetch.yaml).",
        ),
    ] = None,
    page_size: Annotated[
        int, typer.Option("--page-size", help="Features per WFS page.")
    ] = 1000,
) -> None:
    """Download official layers (WFS, Monitoring API) into the data folder."""
    from .loading.catalog import data_dir
    from .loading.fetch import fetch

    folder = data_dir(data) if data is not None else data_dir()
    failed = False
    names = layers or None
    from .loading.catalog import catalog

    for name in names or [n for n, s in catalog().items() if s.fetch]:
        try:
            (res,) = fetch(
                folder,
                [name],
                force=force,
                base_url=base_url,
                timeout=timeout,
                retries=retries,
                deadline=deadline,
                request_deadline=request_deadline,
                max_bytes=max_bytes,
                max_pages=max_pages,
                page_size=page_size,
            )
        except BxlplanError as exc:  # the message names the layer and the URL
            err.print(f"[red]{escape(str(exc))}[/]", highlight=False)
            failed = True
            continue
        for part in res.cleaned:
            console.print(
                f"{name}: removed {part}, left by a killed fetch", markup=False
            )
        if res.status == "fetched":
            console.print(
                f"{name}: {res.features} feature(s) -> {res.path}", markup=False
            )
        elif res.status == "present":
            console.print(
                f"{name}: already present ({res.path}); --force to refresh",
                markup=False,
            )
        else:
            console.print(f"{name}: no official service in the catalog", markup=False)
    if failed:
        raise typer.Exit(2)


@app.command("assess")
def assess_cmd(
    units: Annotated[
        str,
        typer.Option(
            "--units",
            help="neighbourhoods | communes | zru | cru | cqd | grid:<m> | hex:<m> | polygons PATH | scenario.yaml | a PostGIS table postgresql://user@host/database/schema.table",
        ),
    ] = "neighbourhoods",
    data: DataOpt = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out"),
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="Comma-separated: gpkg,geojson,shp,csv,tif,postgis (postgis: tables "
            "of --schema in the database --db).",
        ),
    ] = "gpkg,csv",
    resolution: Annotated[float, typer.Option(help="GeoTIFF cell size (m).")] = 100.0,
    distance: Annotated[
        str,
        typer.Option(
            help="network: walking distances on the street network; euclidean: "
            "straight lines (a labelled fallback)."
        ),
    ] = "network",
    scoring: Annotated[
        Path | None,
        typer.Option(help="A scoring YAML replacing layers/scoring.yaml keys."),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="Walking threshold of a category in metres, category=metres "
            "(repeatable, e.g. --threshold pharmacy=600); overrides the scoring file.",
        ),
    ] = None,
    id_field: Annotated[
        str | None,
        typer.Option(
            "--id-field",
            help="Field of the unit identifier in a polygon file (default: detected).",
        ),
    ] = None,
    name_field: Annotated[
        str | None,
        typer.Option(
            "--name-field",
            help="Field of the unit name in a polygon file (default: detected).",
        ),
    ] = None,
    max_cells: Annotated[
        int | None,
        typer.Option(
            "--max-cells",
            min=1,
            help="Most cells a grid:/hex: may have (default 2,000,000, layers/limits.yaml).",
        ),
    ] = None,
    lang: Annotated[
        str,
        typer.Option(
            help="Labels of the GIS layers (QGIS aliases, styles, titles): fr, nl or en."
        ),
    ] = "fr",
    extent: Annotated[
        str,
        typer.Option(
            help="areas: facilities and shortage zones near the assessed areas only; "
            "region: all of them."
        ),
    ] = "areas",
    population: Annotated[
        Path | None,
        typer.Option(
            help="Your own population: points or polygons with a 'population' field "
            "(replaces the official sector figures)."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing output files.")
    ] = False,
    db: DbOpt = None,
    schema: SchemaOpt = "bxlplan",
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Score areas on functional diversity, social mix and distance to services."""
    from ._io import check_output_set, run_timestamp
    from ._outputs import EXTENTS, assessment_names
    from .errors import ConfigError

    # everything that needs no computation is checked before the preparation; the
    # outputs first, before the heavy imports (geopandas and the rest: ~1 s)
    formats = [f.strip().lower() for f in fmt.split(",") if f.strip()]
    formats, to_db = _postgis_choice(formats, db, ("gpkg", "csv"))
    dsn = db or ""  # given whenever to_db: _postgis_choice refuses postgis without --db
    if extent not in EXTENTS:
        raise ConfigError(
            f"--extent must be one of {', '.join(EXTENTS)}, got '{extent}'"
        )
    if formats:
        check_output_set(out, assessment_names(formats), overwrite)

    import pandas as pd

    from .exports.gis import write_assessment
    from .exports.labels import check_lang
    from .loading.areas import load_areas
    from .loading.catalog import data_dir
    from .loading.postgis import mask_dsn
    from .scoring.assess import assess
    from .scoring.baseline import prepare
    from .scoring.scores import merge_thresholds, scoring_config

    folder = data_dir(data)
    check_lang(lang)
    if to_db:
        from .exports.postgis import ASSESSMENT_TABLES, check_postgis_target

        check_postgis_target(dsn, schema, ASSESSMENT_TABLES, overwrite=overwrite)
    shown_units = mask_dsn(units)  # a PostGIS table's URL: never its password
    use_cache = _cache_choice(cache, no_cache)
    config = scoring_config(scoring)
    if threshold:
        config = merge_thresholds(config, threshold)
    if units.endswith((".yaml", ".yml")):  # a pole's perimeter from a scenario file
        from .loading.load import load
        from .scenarios.spec import perimeter_area, read_scenario

        hoods = load("neighbourhoods", folder)
        scn = read_scenario(units, region=load("region", folder), neighbourhoods=hoods)
        areas = perimeter_area(scn, hoods)
    else:
        areas = load_areas(
            units, folder, max_cells=max_cells, id_field=id_field, name_field=name_field
        )
    with Steps() as steps:
        ctx = prepare(
            folder,
            config=config,
            distance=distance,
            population=population,
            progress=steps,
            cache=use_cache,
        )
        steps(f"assessing {shown_units} ({len(areas):,} areas)")
        result = assess(areas, ctx)
        steps("writing")
        perimeters, when = _perimeters(folder), run_timestamp()
        written: list[Any] = []
        if formats:
            written = write_assessment(
                result, out, formats, overwrite=overwrite, perimeters=perimeters,
                raster_resolution=resolution, lang=lang, extent=extent, run_time=when,
            )  # fmt: skip
        if to_db:
            from .exports.postgis import write_assessment_postgis

            tables = write_assessment_postgis(
                result, dsn, schema=schema, overwrite=overwrite, perimeters=perimeters,
                extent=extent, run_time=when, progress=steps,
            )  # fmt: skip
            written += tables
    table = Table(title=f"Assessment of {shown_units} ({len(result.areas)} areas)")
    for col in (
        "area",
        "name",
        "residents",
        "diversity",
        "social mix",
        "services",
        "overall",
    ):
        table.add_column(
            col, justify="right" if col not in ("area", "name") else "left"
        )
    # flagged areas (uninhabited, small population) have no score: never ranked
    ranked = result.areas.dropna(subset=["score_overall"]).sort_values(
        "score_overall", ascending=False
    )
    shown = ranked if len(ranked) <= 12 else pd.concat([ranked.head(6), ranked.tail(6)])
    for row in shown.itertuples():
        table.add_row(
            Text(str(row.area_id)),
            Text(str(row.name_fr)),
            f"{row.population_est:,.0f}",
            *(
                f"{v:.0f}" if v == v else "n/a"
                for v in (
                    row.score_diversity,
                    row.score_social_mix,
                    row.score_services,
                    row.score_overall,
                )
            ),
        )
    console.print(table)
    params = result.areas.attrs["bxlplan"]["parameters"]
    unscored = len(result.areas) - len(ranked)
    if unscored:
        console.print(
            f"[yellow]{unscored} area(s) not scored: uninhabited or fewer than "
            f"{params['population_floor']:,.0f} residents (see the `flags` column)[/]"
        )
    if params["missing_categories"]:
        console.print(
            f"[yellow]no data for: {', '.join(params['missing_categories'])} "
            "(left out of the services score)[/]"
        )
    if params["partial_categories"]:
        console.print(
            f"[yellow]partial data for: {', '.join(params['partial_categories'])} "
            "(shown, left out of the services score)[/]"
        )
    for path in written:
        console.print(f"wrote {path}", markup=False)
    if to_db:
        console.print(f"(PostGIS tables, in {mask_dsn(dsn)})", markup=False)


def _perimeters(folder: Path) -> dict:
    """Renewal perimeters present in the data folder (ZRU, CRU, CQD), for context."""
    from .loading.load import load

    found = {}
    for name in ("zru", "cru", "cqd"):
        try:
            found[name] = load(name, folder)
        except BxlplanError:
            continue
    return found


@app.command("map")
def map_cmd(
    assessment: Annotated[
        Path, typer.Argument(help="An assessment.gpkg written by `bxlplan assess`.")
    ],
    indicator: Annotated[
        str, typer.Option(help="Column drawn as a choropleth.")
    ] = "score_overall",
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("map.html"),
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="One self-contained file, no tiles, no network."
        ),
    ] = False,
    lang: Annotated[str, typer.Option(help="fr, nl or en.")] = "fr",
    scheme: Annotated[
        str, typer.Option(help="quantiles, natural_breaks or equal_interval.")
    ] = "quantiles",
    classes: Annotated[
        int, typer.Option(min=1, help="Number of classes (at least 1).")
    ] = 5,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing file.")
    ] = False,
    basemap: Annotated[
        str | None,
        typer.Option(
            help="Tiles under the map, which need network access: osm, urbis or none "
            "(default: osm, none with --offline).",
            show_default=False,
        ),
    ] = None,
    data: DataOpt = None,
) -> None:
    """Draw an interactive map (folium) of an assessment, on a light base map drawn
    from the data folder (communes and their names, main streets, rail, green, water);
    without a data folder it is drawn without, and a log line says so."""
    from .exports.maps import make_map, save_map
    from .loading.readers import read_vector

    if not assessment.is_file():
        raise BxlplanError(f"{assessment} does not exist: run `bxlplan assess` first")
    import pyogrio

    layers = [name for name, _ in pyogrio.list_layers(assessment)]
    if "areas" not in layers:
        raise BxlplanError(
            f"{assessment} has no 'areas' layer: is it an assessment.gpkg?"
        )
    areas = read_vector(assessment, layer="areas")
    shortage = [
        read_vector(assessment, layer=n).assign(category=n[len("shortage_") :])
        for n in layers
        if n.startswith("shortage_")
    ]
    import pandas as pd

    zones = pd.concat(shortage, ignore_index=True) if shortage else None
    facilities = (
        read_vector(assessment, layer="facilities") if "facilities" in layers else None
    )
    perimeters = {
        n[len("perimeter_") :]: read_vector(assessment, layer=n)
        for n in layers
        if n.startswith("perimeter_")
    }
    m = make_map(
        areas, indicator, shortage=zones, facilities=facilities, perimeters=perimeters,
        lang=lang, offline=offline, scheme=scheme, k=classes, basemap=basemap,
        data=data,
    )  # fmt: skip
    path = save_map(m, out, offline=offline, overwrite=overwrite)
    size = path.stat().st_size / 1e6
    console.print(
        f"wrote {path} ({size:.1f} MB{', offline' if offline else ''})", markup=False
    )


scenario_app = typer.Typer(
    help="Pole scenarios: run one programme, or compare variants.", no_args_is_help=True
)
app.add_typer(scenario_app, name="scenario")


def _prepare_for_scenarios(
    data: Path | None,
    files: list[Path],
    steps: Steps,
    check: Any = None,
    cache: Path | bool = False,
) -> Any:
    """Validate every scenario file and its outputs first (fast, through ``check``),
    then prepare the baseline once."""
    from .loading.catalog import data_dir
    from .loading.load import load
    from .scenarios.spec import read_scenario
    from .scoring.baseline import prepare

    folder = data_dir(data)
    region, hoods = load("region", folder), load("neighbourhoods", folder)
    for f in files:
        scn = read_scenario(f, region=region, neighbourhoods=hoods)
        if check is not None:
            check(scn)
    return prepare(folder, progress=steps, cache=cache)


@scenario_app.command("run")
def scenario_run_cmd(
    files: Annotated[list[Path], typer.Argument(help="Scenario YAML file(s).")],
    data: DataOpt = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/scenarios"),
    lang: Annotated[str, typer.Option(help="Map labels: fr, nl or en.")] = "fr",
    online: Annotated[
        bool,
        typer.Option("--online", help="Maps with a web basemap instead of offline."),
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="files (the scenario folder), postgis (the layers of scenario.gpkg "
            "as tables <scenario>_<layer> of --schema in the database --db), or both: "
            "files,postgis.",
        ),
    ] = "files",
    db: DbOpt = None,
    schema: SchemaOpt = "bxlplan",
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            help="KEY=a,b,c: one variant of each file per value of KEY, a dotted path "
            "into the scenario file (programme.dwellings.social=200,400); several "
            "--grid options form every combination.",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Where the scenarios run: every core of this machine (default), "
            "sync (one after the other, in this process) or a dask.distributed "
            "scheduler address, tcp://host:8786.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Baseline vs scenario for a pole and its walking surroundings.

    Several files, and --grid variants, run as parallel tasks over one baseline;
    with more than one, batch_summary.csv in --out has one row per variant.
    """
    import tempfile

    from ._io import check_output_set
    from .errors import ConfigError
    from .loading.catalog import data_dir
    from .loading.load import load
    from .loading.postgis import mask_dsn
    from .parallel import check_scheduler
    from .scenarios.batch import SUMMARY_FILE, expand_batch, parse_grid, write_batch
    from .scenarios.outputs import SCENARIO_FILES, scenario_folder

    formats = [f.strip().lower() for f in fmt.split(",") if f.strip()]
    if not formats or set(formats) - {"files", "postgis"}:
        raise ConfigError(
            f"--format must be files, postgis or files,postgis; got '{fmt}'"
        )
    files_out, to_db = _postgis_choice(formats, db, ("files",))
    dsn = db or ""  # given whenever to_db: _postgis_choice refuses postgis without --db

    def check(scn: Any) -> None:
        if files_out:
            check_output_set(scenario_folder(out, scn.name), SCENARIO_FILES, overwrite)
        if to_db:
            from .exports.postgis import check_postgis_target, scenario_tables

            check_postgis_target(
                dsn, schema, scenario_tables(scn.name), overwrite=overwrite,
                output_set=f"scenario:{scn.name}",
            )  # fmt: skip

    use_cache = _cache_choice(cache, no_cache)
    parse_grid(grid)  # --grid syntax, then the scheduler: refused before any work
    check_scheduler(scheduler)
    with Steps("checking the scenarios") as steps:
        folder = data_dir(data)
        variants = expand_batch(
            files, grid, region=load("region", folder),
            neighbourhoods=load("neighbourhoods", folder),
        )  # fmt: skip
        for variant in variants:
            check(variant)
        if files_out and len(variants) > 1:
            check_output_set(out, (SUMMARY_FILE,), overwrite)
        ctx = _prepare_for_scenarios(data, [], steps, cache=use_cache)
        n = len(variants)

        def progress(done: int, total: int) -> None:
            # each scenario's folder is written as soon as it has run
            if done < total:
                steps(f"running and writing {total} scenario(s) ({done + 1}/{total})")
            else:
                steps(f"{total} scenario folder(s) written")

        with tempfile.TemporaryDirectory(prefix="bxlplan-scenario-") as tmp:
            # PostGIS alone: the files are made in a temporary folder, and their
            # scenario.gpkg's layers copied into the database
            target = out if files_out else Path(tmp)
            summary = write_batch(
                variants, ctx, target, scheduler=scheduler, progress=progress,
                overwrite=overwrite, offline=not online, lang=lang,
            )  # fmt: skip
            tables: dict[str, list[str]] = {}
            if to_db:
                from .exports.postgis import write_gpkg_postgis

                for name in summary["variant"]:
                    tables[name] = write_gpkg_postgis(
                        scenario_folder(target, name) / "scenario.gpkg", dsn, schema,
                        output_set=f"scenario:{name}", prefix=f"{name}_",
                        overwrite=overwrite, progress=steps,
                    )  # fmt: skip
    for row in summary.to_dict(orient="records"):
        name = str(row["variant"])
        console.print(
            f"[bold]{escape(name)}[/]: "
            f"{row['new_residents']:,.0f} new residents; overall score of the pole "
            f"{_score_text(float(row['pole_score_overall_before']))} -> "
            f"{_score_text(float(row['pole_score_overall_after']))}; social share of "
            f"the programme {row['programme_social_share']:.0%} (target 15 %)"
        )
        if files_out:
            console.print(f"  wrote {scenario_folder(out, name)}", markup=False)
        for table in tables.get(name, []):
            console.print(f"  wrote {table}", markup=False)
        if tables.get(name):
            console.print(f"  (PostGIS tables, in {mask_dsn(dsn)})", markup=False)
    if files_out and n > 1:
        console.print(f"wrote {out / SUMMARY_FILE}", markup=False)


def _score_text(v: float) -> str:
    return "n/a (too few residents)" if v != v else f"{v:.0f}"


@scenario_app.command("compare")
def scenario_compare_cmd(
    files: Annotated[
        list[Path], typer.Argument(help="Two or more scenario YAML files.")
    ],
    data: DataOpt = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/scenarios"),
    lang: Annotated[str, typer.Option(help="Map labels: fr, nl or en.")] = "fr",
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Variants side by side in one table and one map."""
    from ._io import check_output_set
    from .scenarios import compare_scenarios, write_comparison
    from .scenarios.outputs import COMPARISON_FILES

    check_output_set(out, COMPARISON_FILES, overwrite)
    use_cache = _cache_choice(cache, no_cache)
    with Steps("checking the scenarios") as steps:
        ctx = _prepare_for_scenarios(data, files, steps, cache=use_cache)
        steps(f"comparing {len(files)} scenarios")
        table, results = compare_scenarios(files, ctx)
        steps("writing")
        written = write_comparison(table, results, out, overwrite=overwrite, lang=lang)
    tab = Table(title="Scenario comparison")
    tab.add_column("")
    for col in table.columns:
        tab.add_column(str(col), justify="right")
    for idx, row in table.iterrows():
        tab.add_row(
            Text(str(idx)),
            *(Text(f"{v:,.2f}" if isinstance(v, float) else str(v)) for v in row),
        )
    console.print(tab)
    for p in written:
        console.print(f"wrote {p}", markup=False)


cache_app = typer.Typer(
    help="The baseline cache: prepared contexts reused by assess and scenario.",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")


def _cache_root(cache: Path | None) -> Path:
    from .scoring.cache import cache_folder

    return cache_folder(cache or True)  # type: ignore[return-value]


@cache_app.command("info")
def cache_info_cmd(cache: CacheOpt = None) -> None:
    """The cache folder, its entries (key, size, date, version, data) and their status."""
    from .scoring.cache import entries

    root = _cache_root(cache)
    found = entries(root)
    total = sum(e.size for e in found)
    console.print(
        f"baseline cache {root}: {len(found)} entr{'y' if len(found) == 1 else 'ies'}, "
        f"{total / 1e6:,.1f} MB",
        markup=False,
        soft_wrap=True,  # never break the folder's path
    )
    if not found:
        return
    table = Table()
    for col in ("key", "MB", "created", "bxlplan", "data", "status"):
        table.add_column(
            col, justify="right" if col == "MB" else "left", overflow="fold"
        )
    for e in found:
        table.add_row(
            e.key[:12],
            f"{e.size / 1e6:,.1f}",
            e.created or "?",
            e.bxlplan_version or "?",
            Text(e.data or "?"),
            Text(e.status),
        )
    console.print(table)


@cache_app.command("clear")
def cache_clear_cmd(cache: CacheOpt = None) -> None:
    """Remove every entry of the cache folder (nothing else in it is touched)."""
    from .scoring.cache import clear

    root = _cache_root(cache)
    gone = clear(root)
    console.print(
        f"removed {len(gone)} file(s) from {root}", markup=False, soft_wrap=True
    )


@app.command("robustness")
def robustness_cmd(
    units: Annotated[
        str,
        typer.Option(
            "--units",
            help="neighbourhoods | communes | zru | cru | cqd | grid:<m> | hex:<m> | "
            "polygons PATH (as for assess).",
        ),
    ] = "neighbourhoods",
    data: DataOpt = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/robustness"),
    draws: Annotated[
        int | None,
        typer.Option(help="Number of draws (default 1000, layers/robustness.yaml)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed: the same seed gives the same result (default 0)."),
    ] = None,
    weight_concentration: Annotated[
        float | None,
        typer.Option(
            "--weight-concentration",
            help="Dirichlet concentration of the score weights around the configured "
            "ones (default 20; inf keeps them).",
        ),
    ] = None,
    threshold_jitter: Annotated[
        float | None,
        typer.Option(
            "--threshold-jitter",
            help="Thresholds drawn within +/- this share (default 0.1; 0 keeps them).",
        ),
    ] = None,
    population_noise: Annotated[
        float | None,
        typer.Option(
            "--population-noise",
            help="Log-normal spread of residents within their statistical sector, "
            "sector totals kept (default 0.2; 0 keeps the estimate).",
        ),
    ] = None,
    income_noise: Annotated[
        float | None,
        typer.Option(
            "--income-noise",
            help="Relative standard error of the neighbourhood median incomes "
            "(default 0: off).",
        ),
    ] = None,
    draws_per_task: Annotated[
        int | None,
        typer.Option(
            "--draws-per-task", help="Draws per Dask task (default 50; same result)."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Where the draws run: every core of this machine (default), sync "
            "(in this process) or a dask.distributed scheduler address, "
            "tcp://host:8786.",
            show_default=False,
        ),
    ] = None,
    distance: Annotated[
        str,
        typer.Option(help="network (street network) or euclidean (straight lines)."),
    ] = "network",
    scoring: Annotated[
        Path | None,
        typer.Option(help="A scoring YAML replacing layers/scoring.yaml keys."),
    ] = None,
    lang: Annotated[str, typer.Option(help="Map labels: fr, nl or en.")] = "fr",
    offline: Annotated[
        bool, typer.Option("--offline", help="A self-contained map, no tiles.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing output files.")
    ] = False,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Which areas are robustly short of services: ranks under uncertain weights,
    thresholds, population and income (a Monte Carlo, reproducible with --seed)."""
    from ._io import check_output_set
    from .exports.labels import check_lang
    from .exports.robustness import ROBUSTNESS_FILES, write_robustness
    from .loading.areas import load_areas
    from .loading.catalog import data_dir
    from .parallel import check_scheduler
    from .scoring.baseline import prepare
    from .scoring.robustness import robustness, robustness_settings
    from .scoring.scores import scoring_config

    # everything that needs no computation is checked before the preparation
    settings = robustness_settings(
        draws=draws,
        seed=seed,
        weight_concentration=weight_concentration,
        threshold_jitter=threshold_jitter,
        population_noise=population_noise,
        income_noise=income_noise,
        draws_per_task=draws_per_task,
    )
    check_lang(lang)
    check_output_set(out, ROBUSTNESS_FILES, overwrite)
    check_scheduler(scheduler)
    folder = data_dir(data)
    use_cache = _cache_choice(cache, no_cache)
    config = scoring_config(scoring)
    areas = load_areas(units, folder)
    with Steps() as steps:
        ctx = prepare(
            folder, config=config, distance=distance, progress=steps, cache=use_cache
        )
        result = robustness(areas, ctx, scheduler=scheduler, progress=steps, **settings)
        steps("writing")
        written = write_robustness(
            result, out, overwrite=overwrite, lang=lang, offline=offline
        )
    res = result.areas
    ranked = res.dropna(subset=["rank_score_overall_base"])
    table = Table(
        title=f"Robustness of {units}: {settings['draws']:,} draws, seed "
        f"{settings['seed']} (rank 1 = best of {len(ranked)})"
    )
    for col in ("area", "name", "base rank", "median", "5-95 %", "P(bottom 5th)"):
        table.add_column(col, justify="left" if col in ("area", "name") else "right")
    worst = ranked.sort_values(
        ["prob_bottom_quintile_score_overall", "rank_score_overall_median"],
        ascending=False,
    ).head(12)
    for row in worst.itertuples():
        table.add_row(
            Text(str(row.area_id)),
            Text(str(getattr(row, "name_fr", ""))),
            f"{row.rank_score_overall_base}",
            f"{row.rank_score_overall_median}",
            f"{row.rank_score_overall_p05}-{row.rank_score_overall_p95}",
            f"{row.prob_bottom_quintile_score_overall:.0%}",
        )
    console.print(table)
    robust = int(res["robustly_bottom_fifth"].fillna(False).sum())
    share = result.provenance["settings"]["robust_share"]
    console.print(
        f"{robust} area(s) robustly in the bottom fifth of the overall score "
        f"(in at least {share:.0%} of the draws)"
    )
    flags = res.filter(like="robust_shortage_").fillna(False).sum()
    short = {k[len("robust_shortage_") :]: int(v) for k, v in flags.items() if v}
    if short:
        console.print(
            "robust shortages (areas): "
            + ", ".join(f"{k} {v}" for k, v in sorted(short.items())),
            markup=False,
        )
    unscored = len(res) - len(ranked)
    if unscored:
        console.print(
            f"[yellow]{unscored} area(s) not ranked: uninhabited or small population "
            "(see the `flags` column)[/]"
        )
    for path in written:
        console.print(f"wrote {path}", markup=False)
