"""``starmesh coverage``: a scenario's coverage over H3 cells, with its disruptions applied.

The front door of :mod:`starmesh.coverage` for a scenario: the region, resolution, ``k`` and
slot come from the scenario's ``[coverage]`` table (or the caller), the constellation, time
span and elevation mask from the scenario, failed satellites from its ``[disruptions]``
failures (:meth:`FailurePlan.sat_failed` at every step) and denied cells from the union of
its denied areas (:func:`starmesh.coverage.denied_cells`). Jammers are not applied: their
effect is a link-budget question (SINR at each terminal, :mod:`starmesh.linkbudget`) with no
cheap, sourced rule for a denied radius, so the result carries a note saying so. Files are
written through :mod:`starmesh.io.runfolder` (checked, locked, atomic).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .coverage import CoverageResult, coverage, denied_cells, slot_shift_s
from .errors import ScenarioError
from .plan import build_plan, denied_fence
from .regions import region_cells
from .scenario import Scenario
from .scenario.coverage import CoverageSpec

#: Step of a coverage run when the caller gives none [s] (30 s: the issue's whole-Earth
#: benchmark grid; coverage edges move ~225 km per 30 s with the satellites).
COVERAGE_STEP_S_DEFAULT = 30.0


def parse_region(text: str) -> str | list[float]:
    """A region as typed on the command line: ``"lon_min,lat_min,lon_max,lat_max"`` becomes a
    bounding box, anything else (``earth``, a country, a ``.geojson`` path) stays text."""
    parts = text.split(",")
    if len(parts) == 4:
        try:
            return [float(p) for p in parts]
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class CoverageRun:
    """A coverage result with what the user should know about it (one line each)."""

    result: CoverageResult
    notes: tuple[str, ...]


def coverage_spec(scenario: Scenario, **given: Any) -> CoverageSpec:
    """The scenario's ``[coverage]`` table with the non-None entries of ``given`` applied
    (validated like the table)."""
    base = scenario.coverage.model_dump() if scenario.coverage is not None else {}
    base.update({k: v for k, v in given.items() if v is not None})
    from pydantic import ValidationError

    from .scenario import format_validation_error

    try:
        return CoverageSpec.model_validate(base)
    except ValidationError as exc:
        # One line: the first problem (field, bad value, fix).
        line = format_validation_error(exc)[0]
        raise ScenarioError("coverage." + line.split(": ", 1)[0], line.split(": ", 1)[-1]) from None


def run_coverage(
    scenario: Scenario,
    *,
    region: Any = None,
    res: int | None = None,
    k: int | None = None,
    min_elevation_deg: float | None = None,
    slot_s: float | None = None,
) -> CoverageRun:
    """Coverage of the scenario's constellation over a region, disruptions applied.

    Parameters
    ----------
    scenario : Scenario
        Its time grid is used as is (callers set ``time.step_s``; the CLI defaults to
        :data:`COVERAGE_STEP_S_DEFAULT`).
    region, res, k, min_elevation_deg, slot_s : optional
        Override ``[coverage]`` (see :class:`~starmesh.scenario.coverage.CoverageSpec`); the
        mask defaults to ``[links] min_elevation_deg``.

    Returns
    -------
    CoverageRun

    Raises
    ------
    ScenarioError
        Bad region, resolution over the budget, bad parameter.
    """
    spec = coverage_spec(
        scenario,
        region=region,
        res=res,
        k=k,
        min_elevation_deg=min_elevation_deg,
        slot_s=slot_s,
    )
    mask_deg = (
        spec.min_elevation_deg
        if spec.min_elevation_deg is not None
        else scenario.links.min_elevation_deg
    )
    reg = spec.region
    grid = region_cells(None if reg in ("earth", "world", "globe") else reg, spec.res)
    plan = build_plan(scenario)
    notes: list[str] = []
    failed = None
    if plan.failures is not None:
        failed = plan.failures.sat_failed(plan.grid.t_s())
    fence = denied_fence(scenario)
    denied = denied_cells(grid, fence) if fence is not None else None
    if denied is not None:
        notes.append(f"{int(denied.sum())} of {grid.n_cells} cells are in denied areas")
    if plan.jammers:
        notes.append(
            f"{len(plan.jammers)} jammer(s) not applied: coverage is geometric; a jammer's "
            "effect needs the link budget of a run (starmesh run)"
        )
    result = coverage(
        plan.constellation,
        plan.grid,
        region=grid,
        min_elevation_deg=float(mask_deg),
        k=spec.k,
        slot_s=spec.slot_s,
        sat_failed=failed,
        cell_denied=denied,
        propagator=plan.propagator(),
        slot_shift_s=slot_shift_s(plan.grid.epoch),
    )
    return CoverageRun(result, tuple(notes))


def write_coverage_run(run: CoverageRun, out: Path, *, force: bool = False) -> list[Path]:
    """Write a coverage run into ``out`` (checked and locked as a run folder): the Parquet,
    GeoJSON and summary files and ``report.html``."""
    from .io.runfolder import write_coverage_folder
    from .report.coverage import render_coverage_report
    from .runner import locked_folder

    with locked_folder(out, force=force):
        if force:
            from .io.runfolder import prepare_run_dir

            prepare_run_dir(out, force=True)
        html = render_coverage_report(run.result, run.notes)
        return write_coverage_folder(run.result, out, html)
