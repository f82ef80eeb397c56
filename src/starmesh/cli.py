"""The ``starmesh`` command line: thin commands over the library."""

from __future__ import annotations

import errno
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from typer.core import TyperGroup

from .api import constellation_info, to_scenario
from .errors import StarmeshError
from .io.runfolder import check_run_dir
from .plan import build_plan
from .results import Summary
from .runner import (
    check_sweep,
    default_out_dir,
    folder_kind,
    plan_scenario,
    resume_scenario,
    run_scenario,
    run_sweep,
)
from .scenario import (
    BUILTIN_SCENARIOS,
    DEFAULT_SCENARIO,
    builtin_description,
    builtin_text,
    expand_sweep,
    expand_variants,
    format_validation_error,
)


def _clicks() -> list[Any]:
    """The click modules typer may raise from: its own copy (typer >= 0.20) and/or click."""
    found = [getattr(typer.core, "_click", None)]
    try:
        import click

        found.append(click)
    except ImportError:  # typer >= 0.20 does not need click installed
        pass
    return [c for c in dict.fromkeys(found) if c is not None]


_CLICKS = _clicks()
_CLICK_ERRORS = tuple(c.exceptions.ClickException for c in _CLICKS)
_ABORTS = (typer.Abort, *(c.exceptions.Abort for c in _CLICKS if hasattr(c.exceptions, "Abort")))
_NO_ARGS = tuple(
    c.exceptions.NoArgsIsHelpError for c in _CLICKS if hasattr(c.exceptions, "NoArgsIsHelpError")
)


class _OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, an unknown option) as one ``error:`` line and exit 1,
    like every other error, instead of click's usage box."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        standalone = kwargs.pop("standalone_mode", True)
        try:
            rv = super().main(*args, **{**kwargs, "standalone_mode": False})
        except _NO_ARGS:
            if not standalone:
                raise
            return super().main(*args, **{**kwargs, "standalone_mode": True})
        except _CLICK_ERRORS as exc:
            if not standalone:
                raise
            ctx = getattr(exc, "ctx", None)
            param = getattr(exc, "param", None)
            opt = ""
            if param is not None and getattr(param, "opts", None):
                opt = f"{param.opts[0]}: "
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            err_console.print(
                f"[red]error:[/red] {escape(opt + exc.format_message())}{escape(hint)}",
                markup=True,
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(1)
        except _ABORTS:
            if not standalone:
                raise
            err_console.print("aborted", highlight=False)
            sys.exit(130)
        if standalone:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


app = typer.Typer(
    cls=_OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    help="starmesh: simulate Starlink-class satellite networks, from orbits to per-step RTT.",
    pretty_exceptions_enable=False,
)
out_console = Console()
err_console = Console(stderr=True)


class _State:
    verbose = False


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")
    ] = False,
) -> None:
    _State.verbose = verbose
    # Warnings (a report that could not be written, say) as one line each, like errors.
    warnings.formatwarning = _one_line_warning


def _one_line_warning(
    message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any
) -> str:
    return f"warning: {message}\n"


@contextmanager
def _errors() -> Iterator[None]:
    """Print one ``field: message`` line per error and exit 1; tracebacks only with -v."""
    try:
        yield
    except ValidationError as exc:
        if _State.verbose:
            raise
        for line in format_validation_error(exc):
            err_console.print(
                f"[red]error:[/red] {escape(line)}", markup=True, highlight=False, soft_wrap=True
            )
        raise typer.Exit(1) from None
    except StarmeshError as exc:
        if _State.verbose:
            raise
        err_console.print(
            f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True
        )
        raise typer.Exit(1) from None
    except (RecursionError, MemoryError) as exc:
        if _State.verbose:
            raise
        what = "input nests too deeply" if isinstance(exc, RecursionError) else "out of memory"
        err_console.print(
            f"[red]error:[/red] {what}: the input is not what starmesh reads, or the run is too "
            "large for this machine",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    except OSError as exc:
        # A full disk, a read-only folder, a vanished file: what and where, never a traceback.
        if _State.verbose:
            raise
        what = exc.strerror or str(exc)
        where = f": {exc.filename}" if exc.filename else ""
        fix = {
            errno.ENOSPC: "free some space or choose another --out",
            errno.EROFS: "choose a folder you can write (--out)",
            errno.EACCES: "choose a folder you can write (--out)",
            errno.EPERM: "choose a folder you can write (--out)",
        }.get(exc.errno or 0, "check the path")
        err_console.print(
            f"[red]error:[/red] {escape(what + where)}; {fix}",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def _executor(dask: str | None) -> str:
    """The executor of ``--dask`` (none given: local processes or threads)."""
    if dask is None:
        return "auto"
    if dask != "local" and not dask.startswith("tcp://"):
        raise StarmeshError(f"--dask must be 'local' or tcp://HOST:PORT, got {dask!r}")
    return f"dask:{dask}" if dask == "local" else dask


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "—" if x is None else format(x, spec)


def _summary_table(summary: Summary, max_pairs: int = 40) -> Table:
    """One row per (pair, mode), the modes of a pair side by side in consecutive rows."""
    table = Table(
        title=f"{summary.scenario}: RTT per pair \\[ms], "
        f"{summary.n_steps} steps of {summary.step_s:g} s"
    )
    for col in ("src", "dst", "mode"):
        table.add_column(col)
    for col in ("min", "median", "p95", "max", "avail", "path chg"):
        table.add_column(col, justify="right")
    by_pair: dict[tuple[str, str], list[Any]] = {}
    for row in summary.pairs:
        by_pair.setdefault((row.src, row.dst), []).append(row)
    for n, ((src, dst), rows) in enumerate(by_pair.items()):
        if n == max_pairs:
            table.add_row(f"... {len(by_pair) - max_pairs} more pairs in summary.json")
            break
        for k, r in enumerate(sorted(rows, key=lambda r: summary.modes.index(r.mode))):
            table.add_row(
                src if k == 0 else "",
                dst if k == 0 else "",
                r.mode,
                _fmt(r.rtt_min_ms),
                _fmt(r.rtt_median_ms),
                _fmt(r.rtt_p95_ms),
                _fmt(r.rtt_max_ms),
                f"{100 * r.availability:.1f}%",
                str(r.path_changes),
                end_section=k == len(rows) - 1,
            )
    return table


@app.command()
def run(
    scenario: Annotated[
        str | None,
        typer.Argument(help=f"Built-in scenario name or TOML file (default: {DEFAULT_SCENARIO})."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder (default: runs/<scenario>-<UTC time>)."),
    ] = None,
    duration_s: Annotated[
        float | None, typer.Option("--duration-s", help="Override time.duration_s [s].")
    ] = None,
    step_s: Annotated[
        float | None, typer.Option("--step-s", help="Override time.step_s [s].")
    ] = None,
    tle: Annotated[
        Path | None,
        typer.Option(
            "--tle",
            help="TLE/3LE or OMM (JSON/CSV/XML) file replacing the "
            "scenario's constellation; the ground segment is kept.",
        ),
    ] = None,
    skip_bad_tle: Annotated[
        bool, typer.Option("--skip-bad-tle", help="Skip (and count) malformed TLE records.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a non-empty run folder.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Worker processes or threads (default: every core)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Finish the interrupted run in this folder (its complete chunks are kept).",
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            help="Compute chunks on Dask: 'local' starts a LocalCluster, or a scheduler "
            "address tcp://HOST:PORT (needs starmesh[dask]).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
) -> None:
    """Run a scenario: propagate, build links, route every pair at every step, write the run
    folder (scenario.toml, rtt.parquet, summary.json) and print the summary."""
    with _errors():
        executor = _executor(dask)
        if resume is not None:
            given = [
                name
                for name, value in (
                    (scenario, scenario),
                    ("--out", out),
                    ("--tle", tle),
                    ("--duration-s", duration_s),
                    ("--step-s", step_s),
                    ("--force", force or None),
                )
                if value is not None
            ]
            if given:
                raise StarmeshError(
                    f"--resume finishes a run as it was started, so {given[0]} cannot be "
                    f"changed: drop {given[0]}, or start a new run without --resume"
                )
            if folder_kind(resume) == "sweep":
                raise StarmeshError(
                    f"--resume {str(resume)!r} is a sweep folder: use starmesh sweep --resume"
                )
            source: Any = resume_scenario(resume)
            folder = resume
        else:
            source = scenario or DEFAULT_SCENARIO
        sc = to_scenario(
            source,
            tle=tle,
            skip_bad_tle=skip_bad_tle,
            duration_s=duration_s,
            step_s=step_s,
            workers=workers,
        )
        job = plan_scenario(sc)
        if resume is None:
            folder = out or default_out_dir(sc.name, datetime.now(UTC))
            check_run_dir(folder, force=force)
        if not quiet:
            plan = job.plans[0]
            for note in plan.notes:
                err_console.print(note, highlight=False, soft_wrap=True)
            err_console.print(
                f"[bold]{sc.name}[/bold]: {plan.constellation.n_sats} satellites, "
                f"{len(plan.sites)} sites, {plan.problem.pair_src.size} pairs, "
                f"{plan.grid.n_steps} steps, modes {', '.join(plan.modes)} -> {folder}"
                + (f"\nvariants: {', '.join(job.names)}" if sc.variants else ""),
                highlight=False,
            )
        started = datetime.now(UTC)
        outcome = _with_progress(
            lambda cb: run_scenario(
                job, folder, force=force, resume=resume is not None, executor=executor, progress=cb
            ),
            quiet,
        )
        wall = (datetime.now(UTC) - started).total_seconds()
        if not quiet:
            summary = outcome.summary
            out_console.print(_summary_table(summary))
            if summary.traffic is not None:
                out_console.print(_traffic_table(summary))
            if outcome.comparison:
                out_console.print(_comparison_table(sc.name, outcome.comparison))
            err_console.print(f"done in {wall:.1f} s: {folder}", highlight=False)


@app.command()
def coverage(
    scenario: Annotated[
        str | None,
        typer.Argument(help=f"Built-in scenario name or TOML file (default: {DEFAULT_SCENARIO})."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="'earth', a country name or ISO code, 'lon_min,lat_min,lon_max,lat_max' "
            "[deg] or a .geojson file (default: [coverage] region, or earth).",
        ),
    ] = None,
    res: Annotated[
        int | None, typer.Option("--res", help="H3 resolution (default: [coverage] res, or 3).")
    ] = None,
    k: Annotated[
        int | None,
        typer.Option("--k", help="Report the time with at least k satellites (default 2)."),
    ] = None,
    min_elevation_deg: Annotated[
        float | None,
        typer.Option(
            "--min-elevation-deg", help="Elevation mask [deg] (default: [links] min_elevation_deg)."
        ),
    ] = None,
    duration_s: Annotated[
        float | None, typer.Option("--duration-s", help="Override time.duration_s [s].")
    ] = None,
    step_s: Annotated[
        float, typer.Option("--step-s", help="Time step [s] of the coverage run.")
    ] = 30.0,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output folder (default: runs/coverage-<scenario>-<UTC>)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a starmesh folder at --out.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table.")] = False,
) -> None:
    """Coverage over H3 cells: time with >= 1 and >= k satellites in view, satellites in view,
    gaps and handovers per cell, disruptions applied; writes coverage.parquet,
    coverage.geojson, coverage_summary.json and report.html (a map)."""
    from .api import run_coverage
    from .coverage_run import parse_region

    with _errors():
        sc = to_scenario(scenario or DEFAULT_SCENARIO, duration_s=duration_s, step_s=step_s)
        folder = (
            out if out is not None else default_out_dir(f"coverage-{sc.name}", datetime.now(UTC))
        )
        started = datetime.now(UTC)
        result = run_coverage(
            sc,
            region=parse_region(region) if region is not None else None,
            res=res,
            k=k,
            min_elevation_deg=min_elevation_deg,
            out=folder,
            force=force,
        )
        wall = (datetime.now(UTC) - started).total_seconds()
        if not quiet:
            table = Table(
                title=f"{sc.name}: coverage of {result.grid.name} at H3 res {result.grid.res}, "
                f"{result.time.n_steps} steps of {result.time.step_s:g} s"
            )
            table.add_column("figure")
            table.add_column("value", justify="right")
            for key, value in result.summary().items():
                table.add_row(key, f"{value:.4g}")
            out_console.print(table)
            err_console.print(f"done in {wall:.1f} s: {folder}", highlight=False)


def _traffic_table(summary: Summary) -> Table:
    """Mean throughput per terminal of every site, the modes side by side."""
    assert summary.traffic is not None
    t = summary.to_dict()["traffic"]
    modes = list(t["modes"])
    table = Table(title=f"{summary.scenario}: mean throughput per terminal \\[Mbit/s]")
    table.add_column("site")
    table.add_column("terminals", justify="right")
    table.add_column("demand down/up", justify="right")
    for mode in modes:
        table.add_column(f"{mode} down", justify="right")
        table.add_column(f"{mode} up", justify="right")
    by_site: dict[str, dict[str, dict[str, Any]]] = {}
    for r in t["sites"]:
        by_site.setdefault(r["site"], {})[r["mode"]] = r
    for site, rows in by_site.items():
        first = rows[modes[0]]
        cells = [site, str(first["terminals"]), f"{first['down_demand_mbps_per_terminal']:.1f}"]
        for mode in modes:
            r = rows[mode]
            cells += [f"{r['down_mbps_per_terminal']:.1f}", f"{r['up_mbps_per_terminal']:.2f}"]
        table.add_row(*cells)
    for mode in modes:
        m = t["modes"][mode]
        table.caption = (table.caption or "") + (
            f"{mode}: {m['allocated_gbps_mean']:.1f} of {m['demand_gbps_mean']:.1f} Gbit/s "
            f"served ({100 * m['unmet_fraction']:.0f} % unmet), Jain {m['jain_index_mean']:.2f}. "
        )
    return table


def _comparison_table(name: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{name}: variants compared")
    for col in ("variant", "mode"):
        table.add_column(col)
    traffic = any("down_mbps_per_terminal" in r for r in rows)
    service = any("service_rtt_p50_ms" in r for r in rows)
    cols = ["availability", "never served"]
    if service:
        cols += ["RTT p50 (service)", "RTT p95 (service)"]
    cols += ["propagation RTT", "path chg"]
    if traffic:
        cols += ["Mbit/s per terminal", "unmet"]
    for col in cols:
        table.add_column(col, justify="right")
    for r in rows:
        cells = [
            r["variant"],
            r["mode"],
            f"{r['availability_pct']:.1f}%",
            str(r["pairs_never_served"]),
        ]
        if service:
            cells += [
                _fmt(r.get("service_rtt_p50_ms")) + " ms",
                _fmt(r.get("service_rtt_p95_ms")) + " ms",
            ]
        cells += [_fmt(r["rtt_median_ms"]) + " ms", str(r["path_changes"])]
        if traffic:
            cells += [_fmt(r.get("down_mbps_per_terminal")), f"{100 * r['unmet_fraction']:.0f}%"]
        table.add_row(*cells)
    return table


def _with_progress(job: Callable[[Any], Any], quiet: bool) -> Any:
    """Run ``job(progress)`` under one progress bar (none when quiet); the job tells the total
    number of steps with each call of ``progress(steps_done, total)``."""
    if quiet:
        return job(None)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task("routing", total=None)

        def advance(n: int, total: int) -> None:
            progress.update(task, total=total, advance=n)

        return job(advance)


@app.command()
def sweep(
    file: Annotated[
        str | None,
        typer.Argument(help="Scenario TOML with a [sweep] table (not with --resume)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Sweep folder (default: runs/<scenario>-sweep-<time>)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a non-empty sweep folder.")
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Finish the interrupted sweep in this folder."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Worker processes (default: every core)."),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option("--dask", help="'local' (a LocalCluster) or a scheduler tcp://HOST:PORT."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
) -> None:
    """Run every variant of a scenario's [sweep] (grid of fields x seeds) and compare them:
    one run folder per variant, sweep.parquet and sweep_summary.json."""
    with _errors():
        executor = _executor(dask)
        if resume is not None:
            if folder_kind(resume) != "sweep":
                raise StarmeshError(
                    f"--resume {str(resume)!r}: no sweep folder there (no sweep.toml)"
                )
            source: Any = resume_scenario(resume)
            folder = resume
        elif file is None:
            raise StarmeshError("give the scenario FILE to sweep (or --resume SWEEP_DIR)")
        else:
            source = file
        sc = to_scenario(source, workers=workers)
        if resume is None:
            folder = out or default_out_dir(f"{sc.name}-sweep", datetime.now(UTC))
        n_variants = len(check_sweep(sc))
        if resume is None:
            check_run_dir(folder, force=force)
        if not quiet:
            err_console.print(
                f"[bold]{sc.name}[/bold]: {n_variants} variants -> {folder}", highlight=False
            )
        result = _with_progress(
            lambda cb: run_sweep(
                sc, folder, force=force, resume=resume is not None, executor=executor, progress=cb
            ),
            quiet,
        )
        if not quiet:
            rows = result["variants"]
            table = Table(title=f"{sc.name}: sweep of {n_variants} variants")
            for col in rows[0]:
                table.add_column(col, justify="right" if col not in ("variant", "mode") else "left")
            for r in rows:
                table.add_row(
                    *[_fmt(v, ".4g") if isinstance(v, float) else str(v) for v in r.values()]
                )
            out_console.print(table)


@app.command()
def scenarios() -> None:
    """List the built-in scenarios (the first is the default of `starmesh run`)."""
    with _errors():
        table = Table(title="built-in scenarios")
        table.add_column("name")
        table.add_column("description")
        for name in BUILTIN_SCENARIOS:
            label = name + (" (default)" if name == DEFAULT_SCENARIO else "")
            table.add_row(label, builtin_description(name))
        out_console.print(table)


@app.command()
def constellation(
    source: Annotated[
        str, typer.Argument(help="A real constellation (starlink-2026) or a TLE/OMM file.")
    ],
    epoch: Annotated[
        str | None,
        typer.Option("--epoch", help="UTC reference for stale elements (default: newest epoch)."),
    ] = None,
    no_filter: Annotated[
        bool, typer.Option("--no-filter", help="Keep every object (still report the tests).")
    ] = False,
) -> None:
    """Filter a real constellation and print its inferred shells, planes and Walker parameters."""
    from .realset import SHELL_TABLE_COLUMNS

    with _errors():
        rc = constellation_info(source, epoch=epoch, operational_filter=not no_filter)
        rep, inf = rc.report, rc.inference
        out_console.print(f"{rc.constellation.name}: {rep.summary()}", highlight=False)
        table = Table(
            title=f"{rc.constellation.name}: inferred shells at {inf.epoch:%Y-%m-%d %H:%M} UTC",
            box=box.SIMPLE_HEAD,
            padding=(0, 1, 0, 0),
            pad_edge=False,
            show_edge=False,
        )
        # Short headers (in SHELL_TABLE_COLUMNS order) so the table fits 80 columns.
        heads = {
            "n_sats": "sats",
            "inclination_deg": "inc°",
            "altitude_km": "alt km",
            "n_planes": "planes",
            "lattice_planes": "P",
            "sats_per_plane": "S/P",
            "phasing": "F",
            "phasing_agreement": "F agr",
            "raan_spread_deg": "RAAN sd°",
        }
        for col in SHELL_TABLE_COLUMNS:
            table.add_column(
                heads.get(col, col), justify="left" if col == "shell" else "right", no_wrap=True
            )
        for row in inf.to_table():
            table.add_row(
                *(
                    f"{row[c]:,}" if isinstance(row[c], int) else str(row[c])
                    for c in SHELL_TABLE_COLUMNS
                )
            )
        out_console.print(table)
        out_console.print(
            f"{inf.n_unassigned:,} satellite(s) in no inferred shell", highlight=False
        )


@app.command()
def show(name: Annotated[str, typer.Argument(help="Built-in scenario name.")]) -> None:
    """Print a built-in scenario's TOML, to copy and edit."""
    with _errors():
        sys.stdout.write(builtin_text(name))


@app.command()
def validate(
    file: Annotated[str, typer.Argument(help="Scenario TOML file (or built-in name).")],
) -> None:
    """Check a scenario without running it: keys, ranges, presets, city and gateway names."""
    with _errors():
        sc = to_scenario(file)
        plan = build_plan(sc)
        for _name, _changes, variant in expand_variants(sc)[1:]:
            build_plan(variant)
        if sc.sweep is not None:
            for _vid, _params, variant in expand_sweep(sc):
                build_plan(variant)
        out_console.print(
            f"ok: {plan.name}: {plan.constellation.n_sats} satellites, "
            f"{len(plan.sites)} sites, {plan.problem.pair_src.size} pairs, "
            f"{plan.grid.n_steps} steps",
            highlight=False,
        )


export_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Write a run folder in another tool's format."
)
app.add_typer(export_app, name="export")


@export_app.command("hypatia")
def export_hypatia_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (with forwarding state).")],
    out_dir: Annotated[Path, typer.Argument(help="New folder for Hypatia's files.")],
) -> None:
    """Write a run as Hypatia's satellite network state (satgenpy's files) for its ns-3
    simulator: tles.txt, isls.txt, ground_stations.txt, gsl_interfaces_info.txt,
    description.txt and dynamic_state_<ms>ms_for_<s>s/fstate_<t_ns>.txt."""
    from .io.hypatia import export_hypatia

    with _errors():
        info = export_hypatia(run_dir, out_dir)
        out_console.print(
            f"wrote {out_dir}: {info['n_sats']} satellites, {info['n_ground_stations']} ground "
            f"stations, {info['n_steps']} steps of {info['step_ms']} ms\n"
            f"ns-3: satellite_network_dir={out_dir} "
            f"satellite_network_routes_dir={info['dynamic_state_dir']} "
            f"dynamic_state_update_interval_ns={info['dynamic_state_update_interval_ns']} "
            f"simulation_end_time_ns<={info['simulation_end_time_ns']}",
            highlight=False,
            soft_wrap=True,
        )


@export_app.command("czml")
def export_czml_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run folder.")],
    file: Annotated[Path, typer.Argument(help="CZML file to write (e.g. run.czml).")],
    sample_step_s: Annotated[
        float, typer.Option("--sample-step-s", help="Time between position samples [s].")
    ] = 60.0,
) -> None:
    """Write a run as CZML for CesiumJS: satellites as sampled positions over the run,
    ground sites as points."""
    from .io.czml import export_czml

    with _errors():
        info = export_czml(run_dir, file, sample_step_s=sample_step_s)
        out_console.print(
            f"wrote {file}: {info['n_sats']} satellites x {info['n_samples']} samples, "
            f"{info['n_sites']} ground sites",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def packets(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (with forwarding state).")],
    file: Annotated[
        Path | None,
        typer.Argument(help="TOML with a [packets] table (default: the run's scenario.toml)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table.")] = False,
) -> None:
    """Replay a run's flows at packet level in ns-3 (TCP NewReno/Cubic/BBR, UDP): goodput,
    cwnd, RTT samples, losses and reordering per flow, written into the run folder."""
    from .api import replay_packets
    from .packets import flow_summary
    from .runner import write_report_safely

    with _errors():
        res = replay_packets(run_dir, file)
        write_report_safely(run_dir)
        if not quiet:
            rows = flow_summary(res).to_pylist()
            table = Table(title=f"packets: {len(rows)} flows, {res.events:,} ns-3 events")
            for col in rows[0]:
                table.add_column(
                    col, justify="left" if col in ("flow", "protocol", "src", "dst") else "right"
                )
            for r in rows:
                table.add_row(
                    *[_fmt(v, ".3g") if isinstance(v, float) else str(v) for v in r.values()]
                )
            out_console.print(table)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `starmesh run`.")],
    pair: Annotated[
        tuple[str, str] | None,
        typer.Option("--pair", help="SRC DST: the pair whose path the globe shows first."),
    ] = None,
) -> None:
    """(Re)write report.html in a run folder: an offline page with RTT, availability, a map
    and an animated globe."""
    from .report import write_report

    with _errors():
        started = datetime.now(UTC)
        path = write_report(run_dir, pair=pair)
        wall = (datetime.now(UTC) - started).total_seconds()
        out_console.print(
            f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {wall:.1f} s",
            highlight=False,
            soft_wrap=True,
        )


if __name__ == "__main__":  # pragma: no cover
    app()
