"""``starmesh coverage``: a scenario's coverage over H3 cells, with its disruptions applied.

The front door of :mod:`starmesh.coverage` for a scenario: the region, resolution, ``k`` and
slot come from the scenario's ``[coverage]`` table (or the caller), the constellation, time
span and elevation mask from the scenario, failed satellites from its ``[disruptions]``
failures (:meth:`FailurePlan.sat_failed` at every step) and denied cells from the union of
its denied areas (:func:`starmesh.coverage.denied_cells`), and jammed cells from the same link
budget and jammer model as a run (:func:`jammed_cells`: a cell is out of service at a step when
none of its visible satellites' Ku downlinks closes). Files are written through
:mod:`starmesh.io.runfolder` (checked, locked, atomic).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .constants import EARTH_MEAN_RADIUS_M
from .coverage import CoverageResult, coverage, denied_cells, slot_shift_s
from .errors import ScenarioError
from .plan import RunPlan, build_plan, denied_fence
from .regions import CellGrid, region_cells
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
        jammed = jammed_cells(plan, grid, float(mask_deg))
        notes.append(
            f"{len(plan.jammers)} jammer(s) applied through the Ku user link budget: "
            f"{int(jammed.any(axis=0).sum())} cells lose service at some step"
        )
        denied = jammed if denied is None else (jammed | denied[None, :])
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


#: Effective Earth radius factor of radio horizons (4/3: standard refraction, ITU-R P.453).
_K_EARTH = 4.0 / 3.0
#: Height of a user terminal's antenna above the ground for its radio horizon [m] (assumed).
_TERMINAL_HEIGHT_M = 2.0
#: Steps of satellite positions held at once while testing jammed links.
_JAM_CHUNK_STEPS = 60


def jammed_cells(plan: RunPlan, grid: CellGrid, mask_deg: float) -> NDArray[np.bool_]:
    """Cells whose every visible satellite's Ku downlink fails under the scenario's jammers.

    A cell is a terminal at its centre (on the ground, facing up, the Starlink Ku user profile
    of :func:`starmesh.linkbudget.starlink_ku_user`); at each step its links to the satellites
    above the mask are tested with :func:`starmesh.disruptions.gsl_quality`, the same link
    budget and jammer model a run uses. A cell with no link that closes is out of service at
    that step. Only cells within radio line of sight of a jammer (4/3-Earth horizons of the
    jammer and of a terminal 2 m up) can be affected, so only those are tested. Satellites in
    view are still counted geometrically.

    Returns
    -------
    ndarray of bool, shape (T, C)
    """
    from .disruptions import gsl_quality
    from .frames import geodetic_to_ecef, great_circle_m, up_vectors
    from .linkbudget import starlink_ku_user
    from .topology import GslRule, find_gsls

    n_t, n_c = plan.grid.n_steps, grid.n_cells
    out = np.zeros((n_t, n_c), bool)
    lat = np.radians(grid.lat_deg)
    lon = np.radians(grid.lon_deg)
    near = np.zeros(n_c, bool)
    r_eff = _K_EARTH * EARTH_MEAN_RADIUS_M
    for j in plan.jammers:
        horizon = np.sqrt(2.0 * r_eff * max(j.alt_m, 0.0)) + np.sqrt(
            2.0 * r_eff * _TERMINAL_HEIGHT_M
        )
        d = great_circle_m(lat, lon, np.radians(j.lat_deg), np.radians(j.lon_deg))
        near |= d <= horizon
    cells = np.flatnonzero(near)
    if cells.size == 0:
        return out
    site_r = geodetic_to_ecef(lat[cells], lon[cells], np.zeros(cells.size))
    site_up = up_vectors(lat[cells], lon[cells])
    rule = GslRule(min_elevation_rad=np.radians(mask_deg))
    prop = plan.propagator()
    profile = starlink_ku_user()
    for a in range(0, n_t, _JAM_CHUNK_STEPS):
        b = min(a + _JAM_CHUNK_STEPS, n_t)
        t_s = plan.grid.t_s(a, b)
        r, ok = prop.positions_ecef_m(t_s)
        if plan.failures is not None:
            ok = ok & ~plan.failures.sat_failed(t_s)
        gsl = find_gsls(r, ok, site_r, site_up, rule)
        served = np.zeros((b - a, cells.size), bool)
        if gsl.t_idx.size:
            q = gsl_quality(
                gsl.t_idx,
                gsl.site_idx,
                gsl.sat_idx,
                r,
                site_r,
                site_up,
                profile,
                jammers=plan.jammers,
                t_s=t_s,
            )
            served[gsl.t_idx[q.up], gsl.site_idx[q.up]] = True
        seen = np.zeros((b - a, cells.size), bool)
        seen[gsl.t_idx, gsl.site_idx] = True
        out[a:b, cells] = seen & ~served
    return out


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
