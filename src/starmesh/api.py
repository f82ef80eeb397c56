"""The front door: run scenarios and read runs from Python, as labelled results.

>>> import starmesh
>>> res = starmesh.run("hypatia-starlink-550", duration_s=0.3)   # in memory, nothing written
>>> res.rtt.dims
('mode', 'time', 'pair')
>>> float(res.rtt.sel(pair="Tokyo -> Delhi").max()) > 0
True
>>> res.summary.to_dataframe().columns[:3].tolist()
['mode', 'src', 'dst']

With ``out=`` the same run writes its run folder, and :func:`open_run` reads one back:

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp()) / "run"
>>> _ = starmesh.run("hypatia-starlink-550", out=folder, duration_s=0.3, report=False)
>>> again = starmesh.open_run(folder)
>>> bool((again.rtt == res.rtt).all())
True
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RunFolderError, ScenarioError
from .results import Results
from .scenario import Scenario, load_scenario, parse_scenario

__all__ = [
    "constellation_info",
    "constellation_table",
    "load_scenario",
    "open_run",
    "open_sweep",
    "replay_packets",
    "run",
    "to_scenario",
]

#: Keyword overrides of :func:`run` and the scenario fields they set.
OVERRIDES = {
    "duration_s": "time.duration_s",
    "step_s": "time.step_s",
    "start_utc": "time.start_utc",
    "workers": "run.workers",
    "seed": "seed",
}


def to_scenario(
    scenario: str | Path | Mapping[str, Any] | Scenario,
    *,
    tle: str | Path | None = None,
    skip_bad_tle: bool = False,
    **overrides: Any,
) -> Scenario:
    """A :class:`~starmesh.scenario.Scenario` from a built-in name, a TOML path, a mapping or a
    scenario, with overrides applied and validated like a scenario file.

    Parameters
    ----------
    scenario : str, Path, mapping or Scenario
    tle : str or Path, optional
        A TLE/3LE or OMM file replacing the constellation (the ground segment, links, variants
        and sweep are kept). The scenario's operational filter (``operational_filter``,
        ``[constellation.filter]``, on by default) applies, and +Grid ISLs are built on the
        inferred shells and planes, re-paired at every step.
    skip_bad_tle : bool
        Skip (and count) malformed records of ``tle``.
    **overrides
        ``duration_s``, ``step_s``, ``start_utc``, ``workers``, ``seed``; other fields are
        changed through a mapping.

    Raises
    ------
    ScenarioError, pydantic.ValidationError
    """
    if isinstance(scenario, Scenario):
        sc = scenario
    elif isinstance(scenario, Mapping):
        sc = parse_scenario(dict(scenario))
    else:
        sc = load_scenario(scenario)
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ScenarioError(
            unknown[0],
            f"not an override of run(): use one of {', '.join(OVERRIDES)}, or pass a mapping",
        )
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given and tle is None:
        return sc
    data = sc.model_dump(mode="json", exclude_none=True)
    for key, value in given.items():
        node = data
        *head, leaf = OVERRIDES[key].split(".")
        for part in head:
            node = node.setdefault(part, {})
        node[leaf] = value
    if tle is not None:
        old = data.get("constellation", {})
        data["constellation"] = {
            "tle_file": str(Path(tle).resolve()),
            "skip_bad_tle": skip_bad_tle,
            # The scenario's operational filter and ephemeris settings apply to the file.
            **{k: old[k] for k in ("operational_filter", "filter", "ephemeris") if k in old},
        }
    return parse_scenario(data)


def constellation_info(
    source: str | Path,
    *,
    epoch: str | None = None,
    operational_filter: bool = True,
) -> Any:
    """A real constellation filtered and inferred, as ``starmesh constellation`` shows it.

    Parameters
    ----------
    source : str or Path
        A built-in real constellation (``"starlink-2026"``) or a TLE/OMM file.
    epoch : str, optional
        UTC reference for stale elements and the inference (ISO 8601); default the newest
        element epoch.
    operational_filter : bool
        Drop what is not an operational relay (default), or keep everything (the report still
        counts what fails each test).

    Returns
    -------
    starmesh.realset.RealConstellation
        ``.report`` (:class:`~starmesh.realset.FilterReport`), ``.inference``
        (:class:`~starmesh.realset.ShellInference`), ``.constellation``.

    Raises
    ------
    ScenarioError, TLEFormatError
        An unknown name or unreadable file, or a filter that keeps nothing.
    """
    from .constellation import REAL_CONSTELLATIONS
    from .elements import load_elements, load_starlink_snapshot
    from .realset import keep_everything, real_constellation

    crit = None if operational_filter else keep_everything()
    name = str(source)
    if name in REAL_CONSTELLATIONS:
        elements = load_starlink_snapshot()
    elif Path(name).is_file():
        elements = load_elements(name)
        name = Path(name).stem
    else:
        raise ScenarioError(
            "constellation",
            f"{name!r} is neither a built-in real constellation "
            f"({', '.join(sorted(REAL_CONSTELLATIONS))}) nor a TLE/OMM file: check the name or "
            "path",
        )
    rc = real_constellation(name, elements, epoch=epoch, criteria=crit)
    if rc.report.n_kept == 0:
        raise ScenarioError(
            "constellation",
            f"the operational filter keeps none of the {rc.report.n_input:,} objects of {name} "
            f"({rc.report.summary()}): use --no-filter (operational_filter=False)",
        )
    return rc


def constellation_table(
    source: str | Path,
    *,
    epoch: str | None = None,
    operational_filter: bool = True,
) -> Any:
    """The inferred shells of a real constellation as a pandas DataFrame, one row per shell in
    :data:`starmesh.realset.SHELL_TABLE_COLUMNS` order (see :func:`constellation_info`; the
    filter report is ``df.attrs["filter"]``, unassigned satellites ``df.attrs["unassigned"]``).
    """
    rc = constellation_info(source, epoch=epoch, operational_filter=operational_filter)
    df = rc.inference.to_dataframe()
    df.attrs["filter"] = rc.report.to_dict()
    df.attrs["unassigned"] = rc.inference.n_unassigned
    return df


def run(
    scenario: str | Path | Mapping[str, Any] | Scenario = "ukraine",
    *,
    out: str | Path | None = None,
    force: bool = False,
    executor: str = "auto",
    report: bool = True,
    progress: Any = None,
    **overrides: Any,
) -> Results:
    """Run a scenario, in memory or into a run folder, and return its labelled results.

    Parameters
    ----------
    scenario : str, Path, mapping or Scenario
        A built-in name (``starmesh scenarios``), a TOML file, a mapping of the TOML's content,
        or a :class:`~starmesh.scenario.Scenario`.
    out : str or Path, optional
        Run folder to write (as ``starmesh run --out``); None computes in memory.
    force : bool
        Replace an existing run folder ``out``.
    executor : str
        ``"auto"``, ``"serial"``, ``"processes"``, ``"dask:local"`` or ``"tcp://HOST:PORT"``.
    report : bool
        Write ``report.html`` into ``out``.
    progress : callable, optional
        ``progress(steps_just_done, total_steps)``.
    **overrides
        ``duration_s``, ``step_s``, ``start_utc``, ``workers``, ``seed``, ``tle``,
        ``skip_bad_tle`` (see :func:`to_scenario`).

    Returns
    -------
    Results
        ``.rtt`` (xarray, dims ``mode, time, pair``), ``.dataset``, ``.summary``, and
        ``.variants`` / ``.comparison`` for a scenario with ``[[variants]]``.
    """
    from .runner import run_in_memory, run_scenario

    sc = to_scenario(scenario, **overrides)
    if out is None:
        return run_in_memory(sc, executor=executor)
    folder = Path(out)
    run_scenario(sc, folder, force=force, executor=executor, progress=progress, report=report)
    return open_run(folder)


def run_coverage(
    scenario: str | Path | Mapping[str, Any] | Scenario = "ukraine",
    *,
    region: Any = None,
    res: int | None = None,
    k: int | None = None,
    min_elevation_deg: float | None = None,
    slot_s: float | None = None,
    out: str | Path | None = None,
    force: bool = False,
    **overrides: Any,
) -> Any:
    """Coverage of a scenario's constellation over a region of H3 cells, its disruptions
    applied (failed satellites, denied areas; jammers are not applied, see
    :mod:`starmesh.coverage_run`), as ``starmesh coverage`` computes it.

    (Named ``run_coverage`` because ``starmesh.coverage`` is the coverage library module.)

    Parameters
    ----------
    scenario : str, Path, mapping or Scenario
    region : str, sequence of 4 floats or GeoJSON mapping, optional
        ``"earth"``, a country, a ``.geojson`` path or ``[lon_min, lat_min, lon_max, lat_max]``
        [deg]; default ``[coverage] region`` (``"earth"``).
    res, k, min_elevation_deg, slot_s : optional
        Override ``[coverage]``; the mask defaults to ``[links] min_elevation_deg``.
    out : str or Path, optional
        Folder for ``coverage.parquet``, ``coverage.geojson``, ``coverage_summary.json`` and
        ``report.html`` (checked and locked like a run folder).
    force : bool
        Replace a starmesh folder ``out``.
    **overrides
        As :func:`run` (``duration_s``, ``step_s``, ...); the step is the scenario's.

    Returns
    -------
    starmesh.coverage.CoverageResult
        ``.statistics()`` (per cell), ``.summary()`` (region-wide), ``.grid`` (cells).
    """
    from .coverage_run import run_coverage as _run_coverage
    from .coverage_run import write_coverage_run
    from .io.runfolder import check_run_dir

    sc = to_scenario(scenario, **overrides)
    folder = Path(out) if out is not None else None
    if folder is not None:
        check_run_dir(folder, force=force)
    job = _run_coverage(
        sc, region=region, res=res, k=k, min_elevation_deg=min_elevation_deg, slot_s=slot_s
    )
    if folder is not None:
        write_coverage_run(job, folder, force=force)
    return job.result


def open_run(path: str | Path) -> Results:
    """The results of a finished run folder; arrays are read when first used.

    A folder of a run with ``[[variants]]`` gives the baseline, with ``.variants`` and
    ``.comparison``.

    Raises
    ------
    StarmeshError
        If ``path`` is not a finished run folder.
    """
    from .io.runfolder import (
        COMPARISON,
        VARIANTS_DIR,
        read_json,
        read_run,
        read_run_series,
        read_summary,
        read_traffic_series,
    )

    folder = Path(path)
    summary = read_summary(folder)
    epoch = np.datetime64(read_run(folder).epoch.replace(tzinfo=None), "ns")
    variants: dict[str, Results] = {}
    comparison: list[dict[str, Any]] = []
    data = read_json(folder / COMPARISON)
    if isinstance(data, dict) and isinstance(data.get("variants"), list):
        comparison = list(data["variants"])
        names = list(dict.fromkeys(r["variant"] for r in comparison))
        for name in names:
            if name != "baseline" and (folder / VARIANTS_DIR / name).is_dir():
                variants[name] = open_run(folder / VARIANTS_DIR / name)
    return Results(
        summary,
        epoch,
        lambda: read_run_series(folder),
        lambda: read_traffic_series(folder),
        path=folder,
        variants=variants,
        comparison=comparison,
    )


def open_sweep(path: str | Path) -> dict[str, Results]:
    """Every variant of a finished sweep folder, by variant id (``v000``, ``v001``, ...).

    The sweep's parameters of each variant are in ``sweep.parquet``; the returned mapping is
    ordered as the sweep ran.

    Raises
    ------
    RunFolderError
        If ``path`` is not a finished sweep folder.
    """
    from .io.runfolder import SWEEP_SUMMARY, VARIANTS_DIR, read_json

    folder = Path(path)
    data = read_json(folder / SWEEP_SUMMARY)
    if not isinstance(data, dict) or not isinstance(data.get("variants"), list):
        raise RunFolderError(
            f"{str(folder)!r} is not a finished sweep folder (no readable {SWEEP_SUMMARY}): "
            "pass a folder written by `starmesh sweep`"
        )
    ids = list(dict.fromkeys(r["variant"] for r in data["variants"]))
    return {vid: open_run(folder / VARIANTS_DIR / vid) for vid in ids}


def replay_packets(run_dir: str | Path, scenario: str | Path | None = None) -> Any:
    """Replay a finished run at packet level in ns-3 and write the traces into its folder.

    Parameters
    ----------
    run_dir : str or Path
        A run folder written with ``[routing] forwarding_state = true``.
    scenario : str or Path, optional
        A TOML file whose ``[packets]`` table names the flows; by default the run's own
        ``scenario.toml``.

    Returns
    -------
    starmesh.packets.PacketResult

    Raises
    ------
    StarmeshError
        ns-3 not installed (``pip install "starmesh[ns3]"``), no ``[packets]`` table, a run
        without forwarding state, or a replay beyond its time or memory budget.
    """
    from .io.runfolder import SCENARIO
    from .packets.replay import replay_run, require_ns3
    from .runner import locked_folder

    require_ns3()
    folder = Path(run_dir)
    source = Path(scenario) if scenario is not None else folder / SCENARIO
    sc = load_scenario(source)
    if sc.packets is None:
        raise ScenarioError(
            "packets",
            f"{str(source)!r} has no [packets] table: add one with [[packets.flows]] entries",
        )
    with locked_folder(folder, resume=True):
        result = replay_run(folder, sc.packets, seed=sc.seed)
    return result
