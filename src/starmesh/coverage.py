"""Coverage, satellites in view and handovers over H3 cells, and per-terminal visibility.

Geometry. A cell is its H3 centre, read as a geodetic latitude and longitude on the WGS84
ellipsoid (``earth_model="wgs84"``, the default): a satellite is in view when its elevation above
the ellipsoid normal there is at least the mask, exactly the test the run engine applies to a
terminal (``frames.elevation_rad``), so a terminal's availability in a run and its cell's
coverage agree. ``earth_model="sphere"`` puts the cells on a sphere of mean radius ``R``
(IUGG R1, 6,371.0088 km), the convention of coverage studies (StarPerf, LEOCraft), where a
satellite at geocentric radius ``r`` is at least ``eps`` above the horizon exactly when the Earth
central angle is at most

    lambda(r) = arccos(R cos(eps) / r) - eps,

the coverage half-angle of textbook coverage analysis (Wertz, *Space Mission Analysis and
Design*, 3rd ed., sec. 5.2; nadir angle ``eta = arcsin(R cos eps / r)``, ``lambda = 90 deg -
eps - eta``); the closed-form tests use it. The two models differ: for a satellite at 550 km
seen above 20 deg, elevations differ by up to about 2 deg (mean 0.6 deg), because the sphere
moves the ground point by up to 21 km along the meridian and up to 14 km vertically, so
coverage edges move by tens of km.

Speed. The whole Earth at H3 resolution 3 (41,162 cells) against 10,000 satellites for 2,880
steps is about 3e9 visible cell-satellite pairs: no per-pair array in numpy (BLAS dot products
would compute all C x S = 4e8 products per step, 200 times more than are visible) can do that in
minutes. So the counting kernel is compiled with numba, as the routing kernels are
(``routing/kernels.py``): per step the
satellites are sorted into a latitude/longitude bucket grid, and each cell (in parallel threads)
scans only the buckets within a safe bound on ``lambda`` of it, where each candidate gets the
exact elevation test (a few multiply-adds, no square root); the per-cell state (histogram of
satellites in view, gaps, the serving satellite) is carried from step to step and from chunk to
chunk, so memory is flat in the number of steps. No library offers a per-point range count with
a per-satellite radius and a stateful selection policy; ``scipy.spatial.cKDTree`` answers each
query in ~1 us, which is 2 min for the counts alone, before any selection.

Selection policy (``"highest_elevation"``): at the start of each ``slot_s`` slot (Starlink
reassigns terminals every 15 s) the cell is served by the visible satellite of highest
elevation, and keeps it until the slot ends; a serving satellite that drops below the mask (or
fails) is replaced at once by the highest one then. A handover is a change from one satellite to
another; losing all satellites is an outage, not a handover, and regaining one is none either.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from h3.api import basic_int as h3i
from numpy.typing import ArrayLike, NDArray

from .constants import EARTH_MEAN_RADIUS_M, WGS84_B_M
from .constellation import Constellation
from .errors import ScenarioError
from .frames import geodetic_to_ecef, up_vectors
from .propagation import Propagator
from .regions import MAX_CELLS_DEFAULT, CellGrid, Region, region_cells
from .timegrid import TimeGrid

#: Starlink's terminal-satellite reassignment period [s] (SpaceX FCC filings; measured by
#: Tanveer et al., "Making sense of constellations", IMC 2023: 15 s, to within milliseconds).
SLOT_S_DEFAULT = 15.0

#: Default cap on cells x steps for one :func:`coverage` call (a time budget: the kernel does
#: about 2e6 cell-steps per CPU-second for Gen1 with a 25 deg mask, half that for the 10,000
#: satellites of the real snapshot; 2e9 is roughly 15 to 30 CPU-minutes).
MAX_CELL_STEPS_DEFAULT = 2_000_000_000

#: Statistics per cell, in output order, with units in their names.
STATISTICS = (
    "frac_ge1",
    "frac_ge_k",
    "n_view_mean",
    "n_view_min",
    "n_view_p05",
    "n_view_p50",
    "n_view_p95",
    "n_view_max",
    "gap_max_s",
    "gap_mean_s",
    "n_gaps",
    "handovers",
    "handovers_per_hour",
    "serving_elevation_mean_deg",
)


def slot_shift_s(epoch: Any, offset_s: float | None = None) -> float:
    """Shift [s] that puts slot boundaries on Starlink's global ones: a time ``t`` [s since
    ``epoch``] is in slot ``floor((t + shift) / slot_s)``.

    Starlink's 15-s slots start at 12, 27, 42 and 57 s past the UTC minute
    (``starmesh.service.params.SLOT_OFFSET_S``; Mohan et al., WWW 2024), so the shift is the
    epoch's seconds past the minute minus that offset, and slots do not depend on where a run
    or a chunk starts.
    """
    from .service.params import SLOT_OFFSET_S

    off = SLOT_OFFSET_S if offset_s is None else offset_s
    return float(epoch.second + epoch.microsecond * 1e-6 - off)


def coverage_half_angle_rad(
    r_m: ArrayLike, min_elevation_rad: float, *, earth_radius_m: float = EARTH_MEAN_RADIUS_M
) -> NDArray[np.float64]:
    """Earth central angle covered by a satellite above an elevation mask (spherical Earth).

    Parameters
    ----------
    r_m : array_like, shape (...)
        Geocentric radius of the satellite [m].
    min_elevation_rad : float
        Elevation mask [rad].

    Returns
    -------
    ndarray, shape (...)
        ``arccos(R cos(eps) / r) - eps`` [rad]; NaN where ``r <= R`` (no coverage).
    """
    r = np.asarray(r_m, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = earth_radius_m * math.cos(min_elevation_rad) / r
        lam = np.where(
            r > earth_radius_m, np.arccos(np.clip(x, -1.0, 1.0)) - min_elevation_rad, np.nan
        )
    return np.asarray(lam, dtype=np.float64)


# --- compiled kernels -----------------------------------------------------------------------------


@nb.njit(cache=True, nogil=True)
def _bucket_sats(
    r_ecef_m: NDArray[np.float64],
    usable: NDArray[np.bool_],
    n_lat: int,
    n_lon: int,
    dlat_bin: float,
    dlon_bin: float,
    packed: NDArray[np.float64],
    start: NDArray[np.int32],
) -> None:
    # Counting sort of one step's usable satellites into a bucket grid of geocentric latitude
    # and longitude, packed as rows (x, y, z, index) so that a cell's scan reads contiguous
    # memory.
    n_b = n_lat * n_lon
    n_s = r_ecef_m.shape[0]
    key = np.full(n_s, -1, np.int64)
    start[:] = 0
    for s in range(n_s):
        if usable[s]:
            x, y, z = r_ecef_m[s, 0], r_ecef_m[s, 1], r_ecef_m[s, 2]
            lat = math.atan2(z, math.sqrt(x * x + y * y))
            lon = math.atan2(y, x)
            i = min(int((lat + 0.5 * np.pi) / dlat_bin), n_lat - 1)
            j = min(int((lon + np.pi) / dlon_bin), n_lon - 1)
            key[s] = i * n_lon + j
            start[key[s] + 1] += 1
    for b in range(n_b):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    for s in range(n_s):
        if key[s] >= 0:
            q = fill[key[s]]
            packed[q, 0] = r_ecef_m[s, 0]
            packed[q, 1] = r_ecef_m[s, 1]
            packed[q, 2] = r_ecef_m[s, 2]
            packed[q, 3] = s
            fill[key[s]] += 1


@nb.njit(cache=True, nogil=True, parallel=True)
def _coverage_steps(
    cell_g: NDArray[np.float64],
    cell_n: NDArray[np.float64],
    cell_lat: NDArray[np.float64],
    cell_lon: NDArray[np.float64],
    packed: NDArray[np.float64],
    start: NDArray[np.int32],
    lam_max: NDArray[np.float64],
    n_lat: int,
    n_lon: int,
    dlat_bin: float,
    dlon_bin: float,
    denied: NDArray[np.bool_],
    new_slot: NDArray[np.bool_],
    sin2_eps: float,
    k: int,
    hist: NDArray[np.int32],
    cov_k: NDArray[np.int64],
    run: NDArray[np.int64],
    n_gaps: NDArray[np.int64],
    gap_sum: NDArray[np.int64],
    gap_max: NDArray[np.int64],
    serving: NDArray[np.int32],
    n_ho: NDArray[np.int64],
    el_sum: NDArray[np.float64],
    n_served: NDArray[np.int64],
) -> None:
    # Time outside (the per-cell state is sequential in time), cells in parallel inside: one
    # step's packed satellites (32 B each) stay in cache while every cell reads them.
    n_t = packed.shape[0]
    n_c = cell_g.shape[0]
    n_hist = hist.shape[0]
    den_per_step = denied.shape[0] > 1
    for t in range(n_t):
        lam = lam_max[t] + 1e-9
        sl = math.sin(lam)
        pk = packed[t]
        st = start[t]
        for c in nb.prange(n_c):
            n = 0
            best = -1
            best_p = 0.0
            best_d2 = 1.0
            held = serving[c]
            held_sin = -2.0
            if lam_max[t] > 0.0 and not denied[t if den_per_step else 0, c]:
                gx, gy, gz = cell_g[c, 0], cell_g[c, 1], cell_g[c, 2]
                nx, ny, nz = cell_n[c, 0], cell_n[c, 1], cell_n[c, 2]
                clat = cell_lat[c]
                coslat = math.cos(clat)
                i0 = max(int((clat - lam + 0.5 * np.pi) / dlat_bin), 0)
                i1 = min(int((clat + lam + 0.5 * np.pi) / dlat_bin), n_lat - 1)
                j0 = 0
                j1 = n_lon - 1
                if coslat > sl:
                    # Longitude half-width of a cap of radius lam centred at latitude clat.
                    dlon = math.asin(sl / coslat)
                    a = math.floor((cell_lon[c] - dlon + np.pi) / dlon_bin)
                    b = math.floor((cell_lon[c] + dlon + np.pi) / dlon_bin)
                    if b - a + 1 < n_lon:
                        j0 = a
                        j1 = b
                # Buckets of one latitude row are contiguous in the packed order, so a row's
                # longitude range is one run of satellites (two where it wraps at +-180 deg).
                n_runs = 1
                ja, jb, jc, jd = j0, j1, 0, -1
                if j0 < 0:
                    ja, jb, jc, jd = 0, j1, j0 + n_lon, n_lon - 1
                    n_runs = 2
                elif j1 >= n_lon:
                    ja, jb, jc, jd = j0, n_lon - 1, 0, j1 - n_lon
                    n_runs = 2
                for i in range(i0, i1 + 1):
                    row = i * n_lon
                    for run_k in range(n_runs):
                        if run_k == 0:
                            qa = st[row + ja]
                            qb = st[row + jb + 1]
                        else:
                            qa = st[row + jc]
                            qb = st[row + jd + 1]
                        for q in range(qa, qb):
                            # Elevation above the cell's horizon: sin(el) = p / |d| with
                            # d = r_sat - g and p = d . up; the mask test needs no sqrt.
                            dx = pk[q, 0] - gx
                            dy = pk[q, 1] - gy
                            dz = pk[q, 2] - gz
                            p = dx * nx + dy * ny + dz * nz
                            if p < 0.0:
                                continue
                            d2 = dx * dx + dy * dy + dz * dz
                            if p * p < sin2_eps * d2:
                                continue
                            n += 1
                            s = int(pk[q, 3])
                            # Highest elevation: compare p^2 / d2 across candidates.
                            lhs = p * p * best_d2
                            rhs = best_p * best_p * d2
                            if best < 0 or lhs > rhs or (lhs == rhs and s < best):
                                best_p = p
                                best_d2 = d2
                                best = s
                            if s == held:
                                held_sin = p / math.sqrt(d2)
            hist[min(n, n_hist - 1), c] += 1
            if n >= k:
                cov_k[c] += 1
            if n == 0:
                run[c] += 1
            elif run[c] > 0:
                n_gaps[c] += 1
                gap_sum[c] += run[c]
                gap_max[c] = max(gap_max[c], run[c])
                run[c] = 0
            if n == 0:
                new = -1
                new_sin = -2.0
            elif new_slot[t] or held < 0 or held_sin < -1.5:
                new = best
                new_sin = best_p / math.sqrt(best_d2)
            else:
                new = held
                new_sin = held_sin
            if held >= 0 and new >= 0 and new != held:
                n_ho[c] += 1
            serving[c] = new
            if new >= 0:
                el_sum[c] += math.asin(min(new_sin, 1.0))
                n_served[c] += 1


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageResult:
    """Per-cell coverage statistics of one :func:`coverage` call.

    All arrays have the cells first, shape ``(C, ...)``; ``n_view_hist[c, n]`` counts the steps
    with ``n`` usable satellites in view (the last column: ``n`` or more).

    Attributes
    ----------
    grid : CellGrid
    time : TimeGrid
    k : int
    min_elevation_deg, slot_s : float
    n_view_hist : ndarray of int32, shape (C, H)
    steps_ge_k : ndarray of int64, shape (C,)
    n_gaps, gap_steps_total, gap_steps_max : ndarray of int64, shape (C,)
        Gaps are maximal runs of steps with no usable satellite; a run cut by the start or end
        of the window counts with its observed length.
    handovers : ndarray of int64, shape (C,)
    serving_elevation_mean_deg : ndarray, shape (C,)
        NaN where never served.
    """

    grid: CellGrid
    time: TimeGrid
    k: int
    min_elevation_deg: float
    slot_s: float
    n_view_hist: NDArray[np.int32]
    steps_ge_k: NDArray[np.int64]
    n_gaps: NDArray[np.int64]
    gap_steps_total: NDArray[np.int64]
    gap_steps_max: NDArray[np.int64]
    handovers: NDArray[np.int64]
    serving_elevation_mean_deg: NDArray[np.float64]
    meta: dict[str, Any] = field(default_factory=dict)

    def _percentile(self, p: float) -> NDArray[np.float64]:
        # Nearest-rank percentile of satellites in view from the histogram.
        cum = np.cumsum(self.n_view_hist, axis=1)
        need = np.ceil(p * self.time.n_steps - 1e-9)
        return np.argmax(cum >= max(need, 1), axis=1).astype(np.float64)

    def statistics(self) -> dict[str, NDArray[np.float64]]:
        """Every statistic of :data:`STATISTICS` as a float64 array of shape (C,)."""
        n_t = self.time.n_steps
        step = self.time.step_s
        counts = np.arange(self.n_view_hist.shape[1], dtype=np.float64)
        present = self.n_view_hist > 0
        hours = self.time.duration_s / 3600.0
        with np.errstate(invalid="ignore", divide="ignore"):
            gap_mean = np.where(self.n_gaps > 0, self.gap_steps_total * step / self.n_gaps, 0.0)
        return {
            "frac_ge1": (n_t - self.n_view_hist[:, 0]) / n_t,
            "frac_ge_k": self.steps_ge_k / n_t,
            "n_view_mean": self.n_view_hist @ counts / n_t,
            "n_view_min": np.argmax(present, axis=1).astype(np.float64),
            "n_view_p05": self._percentile(0.05),
            "n_view_p50": self._percentile(0.50),
            "n_view_p95": self._percentile(0.95),
            "n_view_max": (present.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)).astype(
                np.float64
            ),
            "gap_max_s": self.gap_steps_max * step,
            "gap_mean_s": gap_mean.astype(np.float64),
            "n_gaps": self.n_gaps.astype(np.float64),
            "handovers": self.handovers.astype(np.float64),
            "handovers_per_hour": self.handovers / hours,
            "serving_elevation_mean_deg": self.serving_elevation_mean_deg,
        }

    def meta_dict(self) -> dict[str, Any]:
        """Region, resolution, time grid, k, mask, slot and the constellation, as plain data."""
        return _meta(self)

    def summary(self) -> dict[str, float]:
        """Region-wide figures: area-weighted means over the cells (``*_mean``, and
        ``area_always_covered``, the area fraction with coverage at every step) and extremes."""
        st = self.statistics()
        w = self.grid.area_km2()
        w = w / w.sum()
        return {
            "n_cells": float(self.grid.n_cells),
            "n_steps": float(self.time.n_steps),
            "frac_ge1_mean": float(w @ st["frac_ge1"]),
            "frac_ge_k_mean": float(w @ st["frac_ge_k"]),
            "area_always_covered": float(w @ (st["frac_ge1"] == 1.0)),
            "n_view_mean": float(w @ st["n_view_mean"]),
            "gap_max_s": float(st["gap_max_s"].max()),
            "handovers_per_hour_mean": float(w @ st["handovers_per_hour"]),
        }


# --- the driver -----------------------------------------------------------------------------------


def _as_mask(
    mask: ArrayLike | None, n_t: int, n: int, what: str, fix: str
) -> NDArray[np.bool_] | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise ScenarioError(what, f"must be a boolean array, got dtype {m.dtype}: {fix}")
    if m.shape == (n,):
        return m[None, :]
    if m.shape == (n_t, n):
        return m
    raise ScenarioError(
        what, f"shape {m.shape} matches neither ({n},) nor ({n_t}, {n}) (time, {fix})"
    )


def _check(cond: bool, field_name: str, message: str) -> None:
    if not cond:
        raise ScenarioError(field_name, message)


EarthModel = Literal["wgs84", "sphere"]


def cell_geometry(
    grid: CellGrid, earth_model: EarthModel = "wgs84"
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
    """Ground points and verticals of the cells.

    Parameters
    ----------
    grid : CellGrid
    earth_model : {"wgs84", "sphere"}
        ``"wgs84"``: the cell centres' latitude and longitude are geodetic, the ground point is
        on the WGS84 ellipsoid and the vertical is the ellipsoid normal, as for every terminal
        in a run (``frames.elevation_rad``). ``"sphere"``: a sphere of mean radius, where the
        textbook coverage half-angle is exact.

    Returns
    -------
    g_m : ndarray, shape (C, 3)
        Ground points, ECEF [m].
    up : ndarray, shape (C, 3)
        Unit verticals.
    ground_min_m : float
        Smallest geocentric radius of a ground point of this model [m].
    tilt_rad : float
        Largest angle between the vertical and the geocentric direction [rad].
    """
    if earth_model == "sphere":
        u = grid.unit_vectors()
        return EARTH_MEAN_RADIUS_M * u, u, EARTH_MEAN_RADIUS_M, 0.0
    if earth_model != "wgs84":
        raise ScenarioError(
            "coverage.earth_model", f"must be 'wgs84' or 'sphere', got {earth_model!r}"
        )
    lat = np.radians(grid.lat_deg)
    lon = np.radians(grid.lon_deg)
    g = geodetic_to_ecef(lat, lon, 0.0)
    # Geodetic minus geocentric latitude peaks at f (1 + f/2 ...) ~ 0.1924 deg near 45 deg;
    # 0.2 deg bounds it.
    return g, up_vectors(lat, lon), WGS84_B_M, math.radians(0.2)


def coverage(
    constellation: Constellation,
    time: TimeGrid,
    *,
    region: Region | CellGrid = None,
    res: int = 3,
    min_elevation_deg: float = 25.0,
    k: int = 2,
    slot_s: float = SLOT_S_DEFAULT,
    sat_failed: ArrayLike | None = None,
    cell_denied: ArrayLike | None = None,
    earth_model: EarthModel = "wgs84",
    chunk_steps: int = 60,
    max_cells: int = MAX_CELLS_DEFAULT,
    max_cell_steps: int = MAX_CELL_STEPS_DEFAULT,
    propagator: Propagator | None = None,
    slot_shift_s: float = 0.0,
) -> CoverageResult:
    """Coverage of a region on H3 cells over a time grid.

    Parameters
    ----------
    constellation : Constellation
    time : TimeGrid
    region : None, str, bbox, GeoJSON or CellGrid
        Where (see :func:`starmesh.regions.region_shape`); a ready :class:`CellGrid` is used as
        is and ``res`` is ignored. ``None``: the whole Earth.
    res : int
        H3 resolution.
    min_elevation_deg : float
        Elevation mask [deg], in [0, 90).
    k : int
        The multiplicity whose time fraction ``frac_ge_k`` reports (>= 1).
    slot_s : float
        Selection slot [s] of the highest-elevation policy (see the module docstring).
    sat_failed : array_like of bool, shape (S,) or (T, S), optional
        Satellites out of service (e.g. ``FailurePlan.sat_failed(time.t_s())``).
    cell_denied : array_like of bool, shape (C,) or (T, C), optional
        Cells without service (jammed, geofenced; see :func:`denied_cells`), in the order of
        the region's cells.
    earth_model : {"wgs84", "sphere"}
        Where the cells' ground points and verticals are (see :func:`cell_geometry`):
        ``"wgs84"`` (default) matches a run's terminals; ``"sphere"`` the closed forms.
    chunk_steps : int
        Steps propagated at a time (memory ~ ``chunk_steps * S * 100`` bytes).
    max_cells, max_cell_steps : int
        Budgets checked before any work.
    propagator : Propagator, optional
        Reuse one (its epoch must be the time grid's).
    slot_shift_s : float
        Time ``t`` [s since the epoch] is in slot ``floor((t + slot_shift_s) / slot_s)``; 0
        aligns slots to the epoch, :func:`slot_shift_s` to Starlink's UTC boundaries.

    Returns
    -------
    CoverageResult

    Raises
    ------
    ScenarioError
        On a bad region, parameter or mask shape, or a problem over a budget.
    """
    _check(
        0.0 <= float(min_elevation_deg) < 90.0,
        "coverage.min_elevation_deg",
        f"must be in [0, 90) deg, got {min_elevation_deg!r}",
    )
    _check(
        isinstance(k, int | np.integer) and not isinstance(k, bool) and k >= 1,
        "coverage.k",
        f"must be an integer >= 1, got {k!r}",
    )
    _check(
        math.isfinite(slot_s) and slot_s > 0, "coverage.slot_s", f"must be > 0 s, got {slot_s!r}"
    )
    _check(chunk_steps >= 1, "coverage.chunk_steps", f"must be >= 1, got {chunk_steps!r}")
    grid = (
        region if isinstance(region, CellGrid) else region_cells(region, res, max_cells=max_cells)
    )
    n_c, n_t, n_s = grid.n_cells, time.n_steps, constellation.n_sats
    _check(
        n_c * n_t <= max_cell_steps,
        "coverage.res",
        f"{n_c:,} cells x {n_t:,} steps = {n_c * n_t:,} cell-steps is over the budget of "
        f"{max_cell_steps:,}: use a coarser resolution, a longer step or a shorter span "
        "(or raise max_cell_steps)",
    )
    failed = _as_mask(
        sat_failed,
        n_t,
        n_s,
        "coverage.sat_failed",
        "one entry per satellite, or per step and satellite",
    )
    denied = _as_mask(
        cell_denied, n_t, n_c, "coverage.cell_denied", "one entry per cell, or per step and cell"
    )
    prop = propagator if propagator is not None else Propagator(constellation, time.epoch)
    eps = math.radians(float(min_elevation_deg))
    cell_g, cell_n, ground_min_m, tilt_rad = cell_geometry(grid, earth_model)
    cell_lat = np.arcsin(np.clip(cell_g[:, 2] / np.linalg.norm(cell_g, axis=1), -1.0, 1.0))
    cell_lon = np.arctan2(cell_g[:, 1], cell_g[:, 0])

    n_hist = min(n_s, 255) + 1
    # (H, C): neighbouring cells, which see similar counts, share cache lines.
    hist = np.zeros((n_hist, n_c), np.int32)
    cov_k = np.zeros(n_c, np.int64)
    run = np.zeros(n_c, np.int64)
    n_gaps = np.zeros(n_c, np.int64)
    gap_sum = np.zeros(n_c, np.int64)
    gap_max = np.zeros(n_c, np.int64)
    serving = np.full(n_c, -1, np.int32)
    n_ho = np.zeros(n_c, np.int64)
    el_sum = np.zeros(n_c, np.float64)
    n_served = np.zeros(n_c, np.int64)
    no_denial = np.zeros((1, n_c), np.bool_)

    slot_prev = -1
    for t0, t1 in time.chunks(chunk_steps):
        t_s = time.t_s(t0, t1)
        r_ecef, ok = prop.positions_ecef_m(t_s)
        r = np.linalg.norm(r_ecef, axis=-1)
        usable = ok & np.isfinite(r) & (r > ground_min_m)
        if failed is not None:
            usable &= ~(failed[t0:t1] if failed.shape[0] > 1 else failed)
        # Widest geocentric angle at which a cell can see a satellite: the spherical half-angle
        # for the lowest ground radius and the mask lowered by the largest tilt of the
        # vertical from the geocentric direction (exact for the sphere, a bound for WGS84).
        r_max = np.where(usable, r, 0.0).max(axis=1)
        lam_max = np.where(
            r_max > ground_min_m,
            coverage_half_angle_rad(
                np.maximum(r_max, ground_min_m * (1 + 1e-12)), eps - tilt_rad,
                earth_radius_m=ground_min_m,
            ),
            0.0,
        )  # fmt: skip
        # Buckets of about a quarter of the widest coverage cone: few empty buckets scanned,
        # few satellites outside the cone tested.
        dbin = float(np.clip(lam_max.max() / 4.0, math.radians(0.5), math.radians(10.0)))
        # Whole numbers of buckets: the last longitude bucket must end exactly at +180 deg for
        # the wrap-around at the antimeridian to be seamless.
        n_lat = math.ceil(math.pi / dbin)
        n_lon = math.ceil(2.0 * math.pi / dbin)
        dlat_bin = math.pi / n_lat
        dlon_bin = 2.0 * math.pi / n_lon
        nt = t1 - t0
        packed = np.zeros((nt, n_s, 4), np.float64)
        start = np.zeros((nt, n_lat * n_lon + 1), np.int32)
        r_clean = np.where(usable[..., None], r_ecef, 0.0)
        for i in range(nt):
            _bucket_sats(
                r_clean[i], usable[i], n_lat, n_lon, dlat_bin, dlon_bin, packed[i], start[i]
            )
        slot_idx = np.floor((t_s + slot_shift_s) / slot_s + 1e-9).astype(np.int64)
        new_slot = np.empty(nt, np.bool_)
        new_slot[0] = slot_idx[0] != slot_prev
        new_slot[1:] = slot_idx[1:] != slot_idx[:-1]
        slot_prev = int(slot_idx[-1])
        den = no_denial if denied is None else (denied[t0:t1] if denied.shape[0] > 1 else denied)
        _coverage_steps(
            cell_g, cell_n, cell_lat, cell_lon, packed, start, lam_max,
            n_lat, n_lon, dlat_bin, dlon_bin, np.ascontiguousarray(den), new_slot,
            math.sin(eps) ** 2, int(k),
            hist, cov_k, run, n_gaps, gap_sum, gap_max, serving, n_ho, el_sum, n_served,
        )  # fmt: skip
    # Close gaps still open at the end of the window.
    open_ = run > 0
    n_gaps[open_] += 1
    gap_sum[open_] += run[open_]
    gap_max[open_] = np.maximum(gap_max[open_], run[open_])
    with np.errstate(invalid="ignore", divide="ignore"):
        el_mean = np.where(n_served > 0, np.degrees(el_sum / np.maximum(n_served, 1)), np.nan)
    return CoverageResult(
        grid=grid,
        time=time,
        k=int(k),
        min_elevation_deg=float(min_elevation_deg),
        slot_s=float(slot_s),
        n_view_hist=np.ascontiguousarray(hist.T),
        steps_ge_k=cov_k,
        n_gaps=n_gaps,
        gap_steps_total=gap_sum,
        gap_steps_max=gap_max,
        handovers=n_ho,
        serving_elevation_mean_deg=el_mean,
        meta={"constellation": constellation.name, "n_sats": n_s, "earth_model": earth_model},
    )


def denied_cells(grid: CellGrid, geofence: Any) -> NDArray[np.bool_]:
    """Cells whose centre lies in a service-denied area, shape (C,).

    Parameters
    ----------
    grid : CellGrid
    geofence : starmesh.disruptions.Geofence
        Polygons and circles (a jammer's footprint can be given as a circle).
    """
    return np.asarray(geofence.denied_sites(grid.lat_deg, grid.lon_deg), dtype=np.bool_)


# --- outputs --------------------------------------------------------------------------------------


def coverage_table(result: CoverageResult) -> pa.Table:
    """One row per cell and statistic: ``cell`` (H3 hex string), ``lat_deg``, ``lon_deg``,
    ``statistic`` (one of :data:`STATISTICS`), ``value`` (float64; units in the statistic's
    name, fractions in [0, 1], counts of satellites, seconds).

    Rows are ordered by cell (ascending H3 index), then statistic in :data:`STATISTICS` order.
    """
    st = result.statistics()
    n_c = result.grid.n_cells
    n_st = len(STATISTICS)
    values = np.stack([st[name] for name in STATISTICS], axis=1).reshape(-1)
    ids = np.repeat(np.array(result.grid.cell_ids, dtype=object), n_st)
    names = pa.DictionaryArray.from_arrays(
        pa.array(np.tile(np.arange(n_st, dtype=np.int32), n_c)), pa.array(list(STATISTICS))
    )
    return pa.table(
        {
            "cell": pa.array(ids, type=pa.string()),
            "lat_deg": pa.array(np.repeat(result.grid.lat_deg, n_st)),
            "lon_deg": pa.array(np.repeat(result.grid.lon_deg, n_st)),
            "statistic": names,
            "value": pa.array(values, type=pa.float64()),
        },
        metadata={
            b"starmesh.coverage": json.dumps(_meta(result), sort_keys=True).encode(),
        },
    )


def _meta(result: CoverageResult) -> dict[str, Any]:
    return {
        "region": result.grid.name,
        "h3_res": result.grid.res,
        "epoch_utc": result.time.epoch.isoformat().replace("+00:00", "Z"),
        "step_s": result.time.step_s,
        "n_steps": result.time.n_steps,
        "k": result.k,
        "min_elevation_deg": result.min_elevation_deg,
        "slot_s": result.slot_s,
        **result.meta,
    }


def write_coverage_parquet(result: CoverageResult, path: str | Path) -> Path:
    """Write :func:`coverage_table` to ``path`` (zstd; same inputs, same bytes)."""
    path = Path(path)
    pq.write_table(coverage_table(result), path, compression="zstd", write_statistics=False)
    return path


def _ring_lonlat(cell: int) -> list[list[float]]:
    # H3 boundaries are (lat, lng); GeoJSON wants [lon, lat], closed, counter-clockwise.
    pts = [(round(lng, 6), round(lat, 6)) for lat, lng in h3i.cell_to_boundary(cell)]
    lons = [p[0] for p in pts]
    if max(lons) - min(lons) > 180.0:
        # A cell across the antimeridian: continue its longitudes past +-180 so the ring does
        # not wrap around the globe (web maps draw it; RFC 7946 would split it in two).
        pts = [(lon + 360.0 if lon < 0 else lon, lat) for lon, lat in pts]
    ring = [[lon, lat] for lon, lat in pts]
    ring.append(ring[0])
    return ring


def coverage_geojson(result: CoverageResult) -> dict[str, Any]:
    """A GeoJSON FeatureCollection: one Polygon feature per cell with every statistic as a
    property (NaN as null), plus ``cell``, ``lat_deg``, ``lon_deg``."""
    st = result.statistics()
    feats = []
    for i, cell in enumerate(result.grid.cells):
        props: dict[str, Any] = {
            "cell": h3i.int_to_str(int(cell)),
            "lat_deg": round(float(result.grid.lat_deg[i]), 6),
            "lon_deg": round(float(result.grid.lon_deg[i]), 6),
        }
        for name in STATISTICS:
            v = float(st[name][i])
            props[name] = None if math.isnan(v) else round(v, 6)
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [_ring_lonlat(int(cell))]},
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "properties": _meta(result), "features": feats}


def write_coverage_geojson(result: CoverageResult, path: str | Path) -> Path:
    """Write :func:`coverage_geojson` as compact JSON (sorted keys; same inputs, same bytes)."""
    path = Path(path)
    text = json.dumps(
        coverage_geojson(result), separators=(",", ":"), sort_keys=True, allow_nan=False
    )
    path.write_text(text + "\n", encoding="utf-8")
    return path


# --- per-terminal statistics ----------------------------------------------------------------------


@dataclass(frozen=True)
class TerminalVisibility:
    """Satellites in view and the serving satellite of ``G`` terminals over ``T`` steps.

    Attributes
    ----------
    n_in_view : ndarray of int32, shape (T, G)
    serving : ndarray of int32, shape (T, G)
        Serving satellite, -1 when none is visible.
    serving_elevation_rad : ndarray, shape (T, G)
        NaN when none is served.
    handover : ndarray of bool, shape (T, G)
        True at steps where the serving satellite changed from one satellite to another.
    step_s : float
    """

    n_in_view: NDArray[np.int32]
    serving: NDArray[np.int32]
    serving_elevation_rad: NDArray[np.float64]
    handover: NDArray[np.bool_]
    step_s: float

    @property
    def handovers(self) -> NDArray[np.int64]:
        """Handovers per terminal, shape (G,)."""
        return self.handover.sum(axis=0).astype(np.int64)

    def handover_intervals_s(self, terminal: int) -> NDArray[np.float64]:
        """Time between consecutive handovers of one terminal [s], shape (H - 1,)."""
        steps = np.flatnonzero(self.handover[:, terminal])
        return np.diff(steps).astype(np.float64) * self.step_s

    def table(self, names: list[str] | None = None) -> pa.Table:
        """Long table, one row per step and terminal: ``t_s``, ``terminal``, ``n_in_view``,
        ``serving_sat`` (-1: none), ``serving_elevation_deg`` (null: none), ``handover``."""
        n_t, n_g = self.n_in_view.shape
        names = names if names is not None else [str(g) for g in range(n_g)]
        if len(names) != n_g:
            raise ScenarioError(
                "names", f"{len(names)} names for {n_g} terminals: give one name per terminal"
            )
        el = np.degrees(self.serving_elevation_rad).reshape(-1)
        return pa.table(
            {
                "t_s": pa.array(np.repeat(np.arange(n_t) * self.step_s, n_g)),
                "terminal": pa.DictionaryArray.from_arrays(
                    pa.array(np.tile(np.arange(n_g, dtype=np.int32), n_t)), pa.array(names)
                ),
                "n_in_view": pa.array(self.n_in_view.reshape(-1)),
                "serving_sat": pa.array(self.serving.reshape(-1)),
                "serving_elevation_deg": pa.array(el, mask=np.isnan(el)),
                "handover": pa.array(self.handover.reshape(-1)),
            }
        )


def _serving0(serving0: ArrayLike | None, n_g: int) -> NDArray[np.int64]:
    if serving0 is None:
        return np.full(n_g, -1, np.int64)
    held = np.asarray(serving0, dtype=np.int64)
    if held.shape != (n_g,):
        raise ScenarioError(
            "serving0", f"shape {held.shape} does not match ({n_g},): one entry per terminal"
        )
    return held.copy()


def terminal_visibility(
    visible: ArrayLike,
    elevation_rad: ArrayLike,
    *,
    step_s: float,
    slot_s: float = SLOT_S_DEFAULT,
    t0_s: float = 0.0,
    serving0: ArrayLike | None = None,
) -> TerminalVisibility:
    """Satellites in view, serving satellite and handovers of terminals in a run.

    The serving satellite follows the highest-elevation policy of the module docstring: chosen
    at each ``slot_s`` slot start, held while visible within the slot.

    Parameters
    ----------
    visible : array_like of bool, shape (T, G, S)
        Satellite usable by the terminal (above its mask, not failed, not denied).
    elevation_rad : array_like, shape (T, G, S)
        Elevation [rad]; read only where ``visible``.
    step_s : float
        Step of the time grid [s].
    slot_s : float
        Selection slot [s].
    t0_s : float
        Offset of the first step from the scenario epoch [s] (slots are aligned to the epoch).
    serving0 : array_like of int, shape (G,), optional
        Serving satellite at the step before the first (-1: none), to continue a run chunk by
        chunk: pass the previous chunk's ``serving[-1]`` and its ``t0_s``; the result is then
        the same as in one call (a new chunk does not open a new slot by itself).

    Returns
    -------
    TerminalVisibility
    """
    vis = np.asarray(visible, dtype=np.bool_)
    el = np.asarray(elevation_rad, dtype=np.float64)
    if vis.ndim != 3 or el.shape != vis.shape:
        raise ScenarioError(
            "visible",
            f"visible {vis.shape} and elevation_rad {el.shape} must both be (T, G, S)",
        )
    n_t, n_g, _ = vis.shape
    masked = np.where(vis, el, -np.inf)
    n_in_view = vis.sum(axis=2).astype(np.int32)
    best = np.argmax(masked, axis=2).astype(np.int32)
    slot_idx = np.floor((t0_s + np.arange(n_t) * step_s) / slot_s + 1e-9).astype(np.int64)
    serving = np.full((n_t, n_g), -1, np.int32)
    serving_el = np.full((n_t, n_g), np.nan)
    handover = np.zeros((n_t, n_g), np.bool_)
    held = _serving0(serving0, n_g).astype(np.int32)
    prev_slot = math.floor((t0_s - step_s) / slot_s + 1e-9) if serving0 is not None else None
    g_idx = np.arange(n_g)
    for t in range(n_t):  # the policy is sequential in time; vectorised over terminals
        any_vis = n_in_view[t] > 0
        held_ok = (held >= 0) & vis[t, g_idx, np.maximum(held, 0)]
        before = prev_slot if t == 0 else slot_idx[t - 1]
        new_slot = before is None or slot_idx[t] != before
        new = np.where(held_ok & (not new_slot), held, best[t])
        new = np.where(any_vis, new, -1).astype(np.int32)
        handover[t] = (held >= 0) & (new >= 0) & (new != held)
        serving[t] = new
        serving_el[t] = np.where(new >= 0, el[t, g_idx, np.maximum(new, 0)], np.nan)
        held = new
    return TerminalVisibility(n_in_view, serving, serving_el, handover, float(step_s))


def _int_links(x: ArrayLike) -> NDArray[np.integer]:
    a = np.asarray(x)
    return a if a.dtype.kind in "iu" else a.astype(np.int64)


@nb.njit(cache=True, nogil=True)
def _check_links(
    t: NDArray[np.integer],
    g: NDArray[np.integer],
    s: NDArray[np.integer],
    e: NDArray[np.float64],
    n_steps: int,
    n_sites: int,
) -> tuple[bool, bool]:
    """Whether every link's step and site are in range, and whether the links are in
    :class:`~starmesh.topology.GslCandidates` order (strictly by step, site, satellite) with
    no NaN elevation: one pass, where numpy made a dozen."""
    ordered = True
    for i in range(t.size):
        if t[i] < 0 or t[i] >= n_steps or g[i] < 0 or g[i] >= n_sites:
            return False, False
        if math.isnan(e[i]):
            ordered = False
        elif i > 0 and ordered:
            if t[i] != t[i - 1]:
                ordered = t[i] > t[i - 1]
            elif g[i] != g[i - 1]:
                ordered = g[i] > g[i - 1]
            else:
                ordered = s[i] > s[i - 1]
    return True, ordered


def terminal_visibility_links(
    t_idx: ArrayLike,
    site_idx: ArrayLike,
    sat_idx: ArrayLike,
    elevation_rad: ArrayLike,
    *,
    n_steps: int,
    n_sites: int,
    step_s: float,
    slot_s: float = SLOT_S_DEFAULT,
    t0_s: float = 0.0,
    serving0: ArrayLike | None = None,
) -> TerminalVisibility:
    """:func:`terminal_visibility` from sparse links, as a run's ground-satellite link
    candidates hold them (``topology.GslCandidates``: ``t_idx``, ``site_idx``, ``sat_idx``),
    without forming ``(T, G, S)`` arrays.

    Parameters
    ----------
    t_idx, site_idx, sat_idx : array_like of int, shape (L,)
        One entry per usable terminal-satellite link: step (``0 .. n_steps - 1``), terminal
        (``0 .. n_sites - 1``) and satellite; any order.
    elevation_rad : array_like, shape (L,)
        Elevation of each link [rad].
    n_steps, n_sites : int
        ``T`` and ``G``.
    step_s, slot_s, t0_s : float
        As in :func:`terminal_visibility`.
    serving0 : array_like of int, shape (G,), optional
        As in :func:`terminal_visibility`.

    Returns
    -------
    TerminalVisibility
        Identical to :func:`terminal_visibility` on the equivalent dense arrays.
    """
    # Integer arrays are read as they come (a run's are int32): the compiled passes are
    # specialised to their type, so no int64 copy of every link is made.
    t, g, s = (_int_links(x) for x in (t_idx, site_idx, sat_idx))
    e = np.asarray(elevation_rad, dtype=np.float64)
    if not (t.shape == g.shape == s.shape == e.shape and t.ndim == 1):
        raise ScenarioError(
            "links",
            f"t_idx {t.shape}, site_idx {g.shape}, sat_idx {s.shape} and elevation_rad "
            f"{e.shape} must be 1-D of one length",
        )
    in_range, ordered = _check_links(t, g, s, e, n_steps, n_sites)
    if not in_range:
        raise ScenarioError(
            "links",
            f"t_idx must be in [0, {n_steps}) and site_idx in [0, {n_sites}), got t_idx in "
            f"[{t.min()}, {t.max()}] and site_idx in [{g.min()}, {g.max()}]",
        )
    if not ordered:
        # By step, then terminal, then elevation descending, then satellite: the first link of
        # each (step, terminal) is the highest, ties to the lower satellite index as argmax
        # does.
        order = np.lexsort((s, -e, g, t))
        t, g, s, e = t[order], g[order], s[order], e[order]
        is_best = np.ones(t.size, np.bool_)
        is_best[1:] = (t[1:] != t[:-1]) | (g[1:] != g[:-1])
    else:
        # In GslCandidates order without NaN: the highest link of each (step, terminal) is
        # found in the pass over the links (its first maximum: the lowest satellite).
        is_best = np.zeros(0, np.bool_)
    bounds = np.searchsorted(t, np.arange(n_steps + 1, dtype=t.dtype)).astype(np.int64)
    slot_idx = np.floor((t0_s + np.arange(n_steps) * step_s) / slot_s + 1e-9).astype(np.int64)
    held = _serving0(serving0, n_sites)
    prev_slot = math.floor((t0_s - step_s) / slot_s + 1e-9) if serving0 is not None else None
    new_slot = np.ones(n_steps, np.bool_)
    if n_steps:
        new_slot[1:] = slot_idx[1:] != slot_idx[:-1]
        new_slot[0] = prev_slot is None or slot_idx[0] != prev_slot
    n_in_view, serving, serving_el, handover = _visibility_steps(
        g, s, e, is_best, bounds, new_slot, held, n_sites
    )
    return TerminalVisibility(n_in_view, serving, serving_el, handover, float(step_s))


@nb.njit(cache=True, nogil=True)
def _visibility_steps(
    g: NDArray[np.integer],
    s: NDArray[np.integer],
    e: NDArray[np.float64],
    is_best: NDArray[np.bool_],
    bounds: NDArray[np.int64],
    new_slot: NDArray[np.bool_],
    held: NDArray[np.int64],
    n_sites: int,
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float64], NDArray[np.bool_]]:
    # The policy of terminal_visibility_links, step by step (it is sequential in time): count
    # the links, note each terminal's highest satellite and whether its held one is still in
    # view, then keep the held one within a slot and take the highest at a slot's start. One
    # pass over the links per step, where numpy made a dozen (W4: 2 ms per step). With
    # ``is_best`` empty the links are in GslCandidates order without NaN, and each terminal's
    # highest link is its first maximum in that order (ties to the lower satellite).
    n_steps = bounds.size - 1
    n_in_view = np.zeros((n_steps, n_sites), np.int32)
    serving = np.full((n_steps, n_sites), -1, np.int32)
    serving_el = np.full((n_steps, n_sites), np.nan)
    handover = np.zeros((n_steps, n_sites), np.bool_)
    held = held.copy()
    best = np.empty(n_sites, np.int64)
    best_el = np.empty(n_sites)
    held_ok = np.empty(n_sites, np.bool_)
    held_el = np.empty(n_sites)
    given = is_best.size > 0
    for k in range(n_steps):
        best[:] = -1
        best_el[:] = np.nan
        held_ok[:] = False
        held_el[:] = np.nan
        # A step's links come grouped by terminal (both orders sort by step, then terminal):
        # each group is read into locals and stored once, so that no store waits on the
        # previous link's store to the same terminal.
        i = bounds[k]
        end = bounds[k + 1]
        while i < end:
            gi = g[i]
            hg = held[gi]
            n = 0
            b_s = best[gi]
            b_e = best_el[gi]
            h_ok = held_ok[gi]
            h_e = held_el[gi]
            while i < end and g[i] == gi:
                n += 1
                if given:
                    if is_best[i]:
                        b_s = s[i]
                        b_e = e[i]
                elif b_s < 0 or e[i] > b_e:
                    b_s = s[i]
                    b_e = e[i]
                if s[i] == hg:
                    h_ok = True
                    h_e = e[i]
                i += 1
            n_in_view[k, gi] += n
            best[gi] = b_s
            best_el[gi] = b_e
            held_ok[gi] = h_ok
            held_el[gi] = h_e
        for gi in range(n_sites):
            keep = held_ok[gi] and not new_slot[k]
            new = held[gi] if keep else best[gi]
            handover[k, gi] = held[gi] >= 0 and new >= 0 and new != held[gi]
            serving[k, gi] = new
            serving_el[k, gi] = held_el[gi] if keep else best_el[gi]
            held[gi] = new
    return n_in_view, serving, serving_el, handover
