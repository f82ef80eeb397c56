"""What running a scenario means: baseline, variants, sweeps, resume, executors, in memory.

One place decides, for the command line and the library alike:

- a scenario without ``[[variants]]`` runs into one run folder (:func:`run_plan`);
- a scenario with ``[[variants]]`` runs its baseline into the folder and every variant into
  ``variants/<name>/``, through one executor and one writer, then writes ``comparison.json``;
  the scenario as given is kept in ``variants.toml`` so that ``--resume`` finishes every
  variant (:func:`run_scenario`);
- ``[sweep]`` runs a grid of variants (:func:`run_sweep`);
- :func:`resume` finishes whatever kind of run a folder holds;
- :func:`run_in_memory` computes the same results without any folder.

Chunks are computed by an executor (:mod:`starmesh.executors`) in any order and written, in
order, by this process alone (:mod:`starmesh.io.runfolder`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import tomli_w

from .errors import BudgetError, RunFolderError, RunLockedError, ScenarioError, StarmeshError
from .executors import Executor, make_executor
from .io.runfolder import (
    COMPARISON,
    LOCK,
    MANIFEST,
    SCENARIO,
    SUMMARY,
    SWEEP_SPEC,
    SWEEP_SUMMARY,
    SWEEP_TABLE,
    VARIANTS_DIR,
    VARIANTS_SPEC,
    ChunkStore,
    Manifest,
    atomic_write_bytes,
    atomic_write_table,
    check_run_dir,
    fstate_last,
    make_chunk_dirs,
    prepare_run_dir,
    write_chunk,
    write_run_header,
)
from .plan import RunPlan, build_plan
from .results import (
    KeptChunk,
    MemoryStore,
    Results,
    Summary,
    compare_rows,
    series_from_chunks,
    summarize,
    sweep_row,
    table_cell,
    traffic_from_chunks,
)
from .scenario import Scenario, expand_sweep, expand_variants, load_scenario

#: ``progress(steps_just_done, total_steps)``: how runs report progress.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RunOutcome:
    """What a run into a folder gives back.

    Attributes
    ----------
    out : Path
        The run folder (the baseline's, for a run with variants).
    summary : Summary
        The baseline's summary.
    variants : dict of str to Summary
        Every variant's summary, baseline first (just the baseline without variants).
    comparison : list of dict
        Rows of ``comparison.json`` (empty without variants).
    """

    out: Path
    summary: Summary
    variants: dict[str, Summary]
    comparison: list[dict[str, Any]]


def scenario_bytes(data: dict[str, Any]) -> bytes:
    """A scenario mapping as the TOML bytes a run folder records."""
    return tomli_w.dumps(data).encode()


# --- Locking ---------------------------------------------------------------------------------


@contextmanager
def locked_folder(out: Path, *, force: bool = False, resume: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on a run folder while writing it.

    The folder is checked first (:func:`~starmesh.io.runfolder.check_run_dir`: ``force`` replaces
    only a starmesh run folder), then created and locked with ``filelock`` (an OS lock, released
    by the OS if the process dies). A second process gets one line naming the holder's pid. If
    the run fails before writing anything, a folder this call created is removed again.

    Raises
    ------
    RunLockedError
        Another process holds the lock.
    RunFolderError
        The folder cannot be used.
    """
    from filelock import FileLock, Timeout

    if not resume:
        check_run_dir(out, force=force)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    pid_file = out / (LOCK + ".pid")
    lock = FileLock(out / LOCK, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = pid_file.read_text(encoding="utf-8").strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise RunLockedError(
            f"{str(out)!r} is being written by another starmesh process (pid {holder}): "
            "wait for it to finish or stop it, or choose another --out"
        ) from None
    try:
        atomic_write_bytes(pid_file, f"{os.getpid()}\n".encode())
        yield
    except BaseException:
        if created and all(p.name in (LOCK, LOCK + ".pid") for p in out.iterdir()):
            lock.release()
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        pid_file.unlink(missing_ok=True)
        # The lock file goes with the lock, so a finished run folder holds only its results.
        # (Lockers never wait, so no process can be queued on the file being removed.)
        (out / LOCK).unlink(missing_ok=True)
        lock.release()


# --- One run folder --------------------------------------------------------------------------


@dataclass
class _Target:
    """One run folder being written: its plan, manifest, chunk store and chunks to compute."""

    plan: RunPlan
    out: Path
    digest: str
    manifest: Manifest
    store: ChunkStore
    chunks: list[tuple[int, int]]
    todo: list[int]


def _prepare(
    plan: RunPlan, out: Path, *, force: bool, resume: bool, keep: tuple[str, ...] = ()
) -> _Target:
    """Create (or reopen, to resume) a run folder and list the chunks still to compute.

    A folder to resume that has no manifest yet (killed before its first record) starts afresh.
    ``keep`` names entries that emptying the folder leaves in place.
    """
    if resume and not (out / MANIFEST).is_file():
        resume, force = False, True
    resolved = scenario_bytes(plan.resolved)
    digest = hashlib.sha256(resolved).hexdigest()
    chunks = plan.chunks
    if resume:
        manifest = Manifest.load(out)
        if manifest.scenario_sha256 != digest or manifest.chunks != chunks:
            raise RunFolderError(
                f"cannot resume {str(out)!r}: it holds another scenario or chunking than "
                "its scenario.toml now gives; start it again with --force"
            )
        make_chunk_dirs(plan, out)
    else:
        prepare_run_dir(out, force=force, keep=keep)
        manifest = Manifest(out, digest, chunks)
        write_run_header(plan, out, resolved)
        manifest.save()
    todo = [i for i in range(len(chunks)) if not manifest.is_complete(i)]
    return _Target(plan, out, digest, manifest, ChunkStore(out, chunks), chunks, todo)


def check_disk(plans: list[RunPlan], out: Path) -> None:
    """Refuse a run whose files would not fit on the disk of ``out`` (an estimate, with 20 %
    to spare), before computing anything."""
    need = int(1.2 * sum(p.disk_bytes() for p in plans))
    probe = next((p for p in [out, *out.absolute().parents] if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    if need > free:
        raise BudgetError(
            f"this run needs about {_size(need)} of disk and {str(probe)!r} has "
            f"{_size(free)} free: free some space, choose another --out, or write "
            "fewer series (routing.series_pairs)"
        )


def _size(n_bytes: float) -> str:
    """A size in the unit that reads best (kB, MB, GB)."""
    for unit, factor in (("GB", 1e9), ("MB", 1e6)):
        if n_bytes >= factor:
            return f"{n_bytes / factor:.1f} {unit}"
    return f"{n_bytes / 1e3:.0f} kB"


#: Most variants one sweep runs (each is a run folder).
MAX_SWEEP_VARIANTS = 1000


def _execute(targets: list[_Target], runner: Executor, progress: Progress | None) -> None:
    """Compute every missing chunk of every target through one executor; write them in order."""
    total = sum(t.plan.grid.n_steps for t in targets)
    if progress is not None:
        progress(
            sum(b - a for t in targets for i, (a, b) in enumerate(t.chunks) if i not in t.todo),
            total,
        )
    keys = [(v, i) for v, t in enumerate(targets) for i in t.todo]
    units = [(v, *targets[v].chunks[i]) for v, i in keys]
    results = runner.run([t.plan for t in targets], units)
    for (v, i), kept in zip(keys, results, strict=True):
        t = targets[v]
        res = kept.res
        prev = fstate_last(t.plan, t.store, i - 1) if res.fstate is not None and i > 0 else None
        write_chunk(t.plan, t.out, i, kept, t.store, t.manifest, prev)
        if progress is not None:
            progress(res.stop - res.start, total)


def _finish(t: _Target) -> Summary:
    """Write ``summary.json`` from the chunk store, then drop the store."""
    summary = summarize(t.plan, t.store)
    summary = Summary(**{**summary.__dict__, "scenario_sha256": t.digest})
    _write_json(t.out / SUMMARY, summary.to_dict())
    t.store.remove()
    return summary


def _write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1, allow_nan=False) + "\n").encode())


def write_report_safely(out: Path) -> None:
    """Write ``report.html``; a report that cannot be drawn never costs the run its data."""
    from .report import write_report

    try:
        write_report(out)
    except (StarmeshError, OSError, ValueError) as exc:
        warnings.warn(f"report.html not written for {out}: {exc}", RuntimeWarning, stacklevel=2)


def run_plan(
    plan: RunPlan,
    out: Path,
    *,
    force: bool = False,
    resume: bool = False,
    executor: str = "auto",
    progress: Progress | None = None,
    report: bool = True,
) -> Summary:
    """Run a plan into the folder ``out``, or finish an interrupted run there.

    Writes ``scenario.toml`` (resolved), ``sites.parquet``, ``isls.parquet``,
    ``rtt.parquet/part-*.parquet`` (one file per chunk), with ``forwarding_state`` also
    ``fstate.parquet/part-*.parquet``, ``manifest.json`` and ``summary.json``. Every file is
    written atomically; the manifest records each complete chunk with its files' hashes.

    Parameters
    ----------
    plan : RunPlan
    out : Path
        Run folder; must be absent or empty unless ``force`` or ``resume``.
    force : bool
        Empty a non-empty ``out`` first.
    resume : bool
        ``out`` holds an interrupted run of the same scenario: keep its complete chunks
        (verified by hash) and compute the rest.
    executor : str
        ``"auto"`` (worker processes when the run has at least 4 chunks per core, else one process
        whose routing uses every core), ``"serial"``, ``"processes"``, or a Dask scheduler:
        ``"dask:local"`` (a LocalCluster) or ``"tcp://HOST:PORT"``.
    progress : callable, optional
        ``progress(steps_just_done, total_steps)``.
    report : bool
        Write ``report.html`` at the end.

    Returns
    -------
    Summary
    """
    if not resume:
        check_disk([plan], out)
    # First, so that an unreachable cluster leaves no run folder behind.
    runner = make_executor(executor, plan.workers, n_units=plan.n_chunks)
    try:
        with locked_folder(out, force=force, resume=resume):
            target = _prepare(plan, out, force=force, resume=resume)
            _execute([target], runner, progress)
            runner.close()
            summary = _finish(target)
            if report:
                write_report_safely(out)
    finally:
        runner.close()
    return summary


def _run_folders(
    plans: list[RunPlan],
    folders: list[Path],
    *,
    workers: int | None,
    executor: str,
    resume: bool,
    progress: Progress | None,
    setup: Callable[[], None] | None = None,
    keep: tuple[str, ...] = (),
) -> tuple[list[Summary], list[_Target]]:
    """Run several plans into their folders through one executor and one writer.

    The executor is made before anything is written; ``setup`` then prepares the parent folder
    (the folders are inside it, or the first is it). A folder with a manifest is resumed when
    ``resume``; the others start afresh (emptied, but for the entries named in ``keep``).
    """
    n_units = sum(p.n_chunks for p in plans)
    runner = make_executor(executor, workers, n_units=n_units)
    try:
        if setup is not None:
            setup()
        targets = []
        for plan, folder in zip(plans, folders, strict=True):
            folder.parent.mkdir(parents=True, exist_ok=True)
            targets.append(_prepare(plan, folder, force=True, resume=resume, keep=keep))
        _execute(targets, runner, progress)
    finally:
        runner.close()
    return [_finish(t) for t in targets], targets


# --- Scenarios, variants and sweeps ----------------------------------------------------------


@dataclass(frozen=True)
class ScenarioJob:
    """A scenario with every plan built (so every input checked): its baseline and variants.

    Attributes
    ----------
    scenario : Scenario
        The scenario as given (with its ``[[variants]]``).
    names : list of str
        ``"baseline"``, then every variant's name.
    changes : list of dict
        The fields each variant sets (empty for the baseline).
    plans : list of RunPlan
    """

    scenario: Scenario
    names: list[str]
    changes: list[dict[str, Any]]
    plans: list[RunPlan]

    @property
    def n_steps(self) -> int:
        """Steps of all runs together."""
        return sum(p.grid.n_steps for p in self.plans)


def plan_scenario(scenario: Scenario) -> ScenarioJob:
    """Build the plans of a scenario and of each of its variants; every input error is raised
    here, before anything is written."""
    if scenario.packets is not None:
        if not scenario.routing.forwarding_state:
            raise ScenarioError(
                "packets",
                "packets follow the run's forwarding state: set [routing] forwarding_state = true",
            )
        if scenario.packets.mode not in scenario.routing.modes:
            raise ScenarioError(
                "packets.mode",
                f"{scenario.packets.mode!r} is not one of routing.modes "
                f"({', '.join(scenario.routing.modes)})",
            )
        from .packets.replay import require_ns3

        require_ns3()
    if not scenario.variants:
        return ScenarioJob(scenario, ["baseline"], [{}], [build_plan(scenario)])
    variants = expand_variants(scenario)
    return ScenarioJob(
        scenario,
        [n for n, _c, _v in variants],
        [c for _n, c, _v in variants],
        [build_plan(v) for _n, _c, v in variants],
    )


def run_scenario(
    scenario: Scenario | ScenarioJob,
    out: Path,
    *,
    force: bool = False,
    resume: bool = False,
    executor: str = "auto",
    progress: Progress | None = None,
    report: bool = True,
) -> RunOutcome:
    """Run a scenario into ``out``: its baseline and, if it has ``[[variants]]``, each variant
    into ``out/variants/<name>/``, compared in ``out/comparison.json``.

    Every plan is built (so every input is checked) before anything is written.

    Returns
    -------
    RunOutcome
    """
    job = scenario if isinstance(scenario, ScenarioJob) else plan_scenario(scenario)
    scenario = job.scenario
    if not scenario.variants:
        plan = job.plans[0]
        summary = run_plan(
            plan,
            out,
            force=force,
            resume=resume,
            executor=executor,
            progress=progress,
            report=report and scenario.packets is None,
        )
        if scenario.packets is not None:
            from .packets.replay import replay_run

            with locked_folder(out, resume=True):
                replay_run(out, scenario.packets, seed=scenario.seed)
                if report:
                    write_report_safely(out)
        return RunOutcome(out, summary, {"baseline": summary}, [])
    spec = scenario_bytes(scenario.model_dump(mode="json", exclude_none=True))
    if not resume:
        check_disk(job.plans, out)

    def setup() -> None:
        if resume:
            if (out / VARIANTS_SPEC).read_bytes() != spec:
                raise RunFolderError(
                    f"cannot resume {str(out)!r}: its {VARIANTS_SPEC} holds another scenario"
                )
            return
        prepare_run_dir(out, force=force)
        atomic_write_bytes(out / VARIANTS_SPEC, spec)

    with locked_folder(out, force=force, resume=resume):
        summaries, targets = _run_folders(
            job.plans,
            [out if name == "baseline" else out / VARIANTS_DIR / name for name in job.names],
            workers=scenario.run.workers,
            executor=executor,
            resume=resume,
            progress=progress,
            setup=setup,
            keep=(VARIANTS_SPEC, VARIANTS_DIR),
        )
        rows = [
            row
            for name, changes, summary in zip(job.names, job.changes, summaries, strict=True)
            for row in compare_rows(name, changes, summary)
        ]
        _write_json(out / COMPARISON, {"variants": rows})
        if scenario.packets is not None:
            from .packets.replay import replay_run

            replay_run(out, scenario.packets, seed=scenario.seed)
        if report:
            for t in targets:
                write_report_safely(t.out)
    return RunOutcome(
        out,
        summaries[0],
        dict(zip(job.names, summaries, strict=True)),
        rows,
    )


def check_sweep(scenario: Scenario) -> list[tuple[str, dict[str, Any], Scenario]]:
    """The variants of a scenario's sweep, refused when there are more than a sweep runs or
    more steps in all than ``run.max_steps``.

    Raises
    ------
    ScenarioError, BudgetError
    """
    variants = expand_sweep(scenario)
    if len(variants) > MAX_SWEEP_VARIANTS:
        raise BudgetError(
            f"sweep: the grid gives {len(variants):,} variants, more than one sweep runs "
            f"({MAX_SWEEP_VARIANTS:,}): sweep fewer values, or split it into several sweeps"
        )
    steps = sum(round(v.time.duration_s / v.time.step_s) for _vid, _params, v in variants)
    if steps > scenario.run.max_steps:
        raise BudgetError(
            f"sweep: {len(variants)} variants are {steps:,} steps in all, more than "
            f"run.max_steps = {scenario.run.max_steps:,}: sweep fewer values or shorter runs, "
            "or raise run.max_steps"
        )
    return variants


def run_sweep(
    scenario: Scenario,
    out: Path,
    *,
    force: bool = False,
    resume: bool = False,
    executor: str = "auto",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every variant of a scenario's ``[sweep]`` into ``out/variants/<id>/``.

    Work units are (variant, time chunk), all through one executor; one writer writes them.
    ``out`` gets ``sweep.toml`` (the scenario as given), one run folder per variant,
    ``sweep.parquet`` (every variant's per-pair statistics, with the variant's parameters as
    columns) and ``sweep_summary.json`` (one row per variant and mode).

    Raises
    ------
    ScenarioError
        No sweep, an empty grid, an unknown parameter, a value a variant cannot take; raised
        before anything is written.
    """
    variants = check_sweep(scenario)
    plans = [build_plan(v) for _vid, _params, v in variants]
    check_disk(plans, out)

    def setup() -> None:
        if not resume:
            prepare_run_dir(out, force=force)
            spec = scenario.model_dump(mode="json", exclude_none=True)
            atomic_write_bytes(out / SWEEP_SPEC, scenario_bytes(spec))
        elif not (out / SWEEP_SPEC).is_file():
            raise RunFolderError(f"cannot resume {str(out)!r}: no {SWEEP_SPEC} there")

    with locked_folder(out, force=force, resume=resume):
        summaries, _targets = _run_folders(
            plans,
            [out / VARIANTS_DIR / vid for vid, _params, _v in variants],
            workers=scenario.run.workers,
            executor=executor,
            resume=resume,
            progress=progress,
            setup=setup,
        )
        return _write_sweep(out, variants, summaries)


def _write_sweep(
    out: Path, variants: list[tuple[str, dict[str, Any], Scenario]], summaries: list[Summary]
) -> dict[str, Any]:
    """``sweep.parquet`` and ``sweep_summary.json`` of a finished sweep."""
    rows: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    for (vid, params, _v), summary in zip(variants, summaries, strict=True):
        table.extend(sweep_row(vid, params, summary, mode) for mode in summary.modes)
        for p in summary.to_dict()["pairs"]:
            rows.append({"variant": vid, **{k: table_cell(v) for k, v in params.items()}, **p})
    atomic_write_table(out / SWEEP_TABLE, pa.Table.from_pylist(rows))
    result = {"variants": table}
    _write_json(out / SWEEP_SUMMARY, result)
    return result


def folder_kind(folder: Path) -> str:
    """What an interrupted folder holds: ``"sweep"``, ``"variants"`` or ``"run"``.

    Raises
    ------
    RunFolderError
        If it holds no starmesh run.
    """
    if (folder / SWEEP_SPEC).is_file():
        return "sweep"
    if (folder / VARIANTS_SPEC).is_file():
        return "variants"
    if (folder / SCENARIO).is_file():
        return "run"
    raise RunFolderError(
        f"--resume {str(folder)!r}: no run folder there (no {SCENARIO}); "
        "give the folder of the interrupted run"
    )


def resume_scenario(folder: Path) -> Scenario:
    """The scenario an interrupted run folder (or variants run) was started with."""
    kind = folder_kind(folder)
    if kind == "sweep":
        return load_scenario(folder / SWEEP_SPEC)
    if kind == "variants":
        return load_scenario(folder / VARIANTS_SPEC)
    return load_scenario(folder / SCENARIO)


# --- In memory -------------------------------------------------------------------------------


def run_plan_in_memory(plan: RunPlan, *, executor: str = "auto") -> Results:
    """Compute a plan without writing anything; the same numbers as its run folder would hold."""
    chunks = plan.chunks
    runner = make_executor(executor, plan.workers, n_units=len(chunks))
    store = MemoryStore(chunks)
    kept: list[KeptChunk] = []
    try:
        for i, chunk in enumerate(runner.run([plan], [(0, a, b) for a, b in chunks])):
            store.write(i, chunk)
            kept.append(chunk)
    finally:
        runner.close()
    summary = summarize(plan, store)
    series = series_from_chunks(plan, kept)
    traffic = traffic_from_chunks(plan, kept)
    epoch = np.datetime64(plan.grid.epoch.replace(tzinfo=None), "ns")
    return Results(summary, epoch, lambda: series, (lambda: traffic) if traffic else None)


def run_in_memory(scenario: Scenario, *, executor: str = "auto") -> Results:
    """Run a scenario (and its variants) in memory."""
    if not scenario.variants:
        return run_plan_in_memory(build_plan(scenario), executor=executor)
    variants = expand_variants(scenario)
    plans = [build_plan(v) for _n, _c, v in variants]
    done = {
        name: run_plan_in_memory(plan, executor=executor)
        for (name, _c, _v), plan in zip(variants, plans, strict=True)
    }
    rows = [
        row
        for name, changes, _v in variants
        for row in compare_rows(name, changes, done[name].summary)
    ]
    base = done["baseline"]
    base.variants.update({k: v for k, v in done.items() if k != "baseline"})
    base.comparison.extend(rows)
    return base


def default_out_dir(name: str, now: datetime) -> Path:
    """``runs/<scenario>-<UTC time>``, never an existing folder."""
    base = Path("runs") / f"{name}-{now.strftime('%Y%m%dT%H%M%SZ')}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out
