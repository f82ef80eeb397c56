"""Throughput comparable with speed tests: load spread over satellites, beams and cells.

Flow-level model. Each satellite has a total user-downlink capacity (its generation's,
:mod:`starmesh.service.params`), delivered by a few steerable beams, each carrying the DVB-S2X
capacity of its link budget (``starmesh.linkbudget``), optionally after ITU-R P.618 rain fade
(``itur``). A cell (H3 hexagon) gets at most ``beams_per_cell`` beams at a time.

**Beam time-sharing.** A satellite has far fewer beams (16 on v1.5: Pekhterev 2022) than there
are cells with subscribers under it (thousands of 250 km^2 cells in a footprint of ~2-3 million
km^2), so its beams hop between the cells it serves and a cell gets a fraction of a beam's time.
The global scheduler hands each occupied cell to one of the satellites in view, so a satellite
serves ``occupied cells in its footprint / satellites in view`` cells
(:func:`cells_per_satellite`) and, sharing its capacity evenly among them, gives a cell
``min(beams_per_cell x beam capacity, satellite capacity / cells served)``
(:func:`cell_capacity_bps`). Spreading each terminal over every satellite in view instead
(:func:`spread_terminals`, the scheduler's ``"random"`` policy) would make every satellite visit
every cell of its footprint: a duty of ~0.5 % per cell and single-digit Mbit/s speed tests, which
no measurement shows; the cell-level partition is the one consistent with them.

A speed test is one more elastic flow on its bottleneck: under processor sharing its mean rate
is ``C (1 - rho)`` (Ben Fredj, Bonald, Proutiere, Regnie, Roberts, "Statistical bandwidth
sharing", SIGCOMM 2001), capped by the terminal's own maximum rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from starmesh.constants import EARTH_MEAN_RADIUS_M
from starmesh.linkbudget import LinkProfile, capacity_bps, starlink_ku_user

FloatArray = NDArray[np.float64]


def cells_of(lat_deg: ArrayLike, lon_deg: ArrayLike, res: int) -> list[str]:
    """H3 cell (hexagon) id of each site at resolution ``res``."""
    import h3

    return [
        h3.latlng_to_cell(float(a), float(b), res)
        for a, b in zip(np.atleast_1d(lat_deg), np.atleast_1d(lon_deg), strict=True)
    ]


def cell_area_m2(cells: list[str]) -> FloatArray:
    """Area of each H3 cell [m^2] (h3's exact spherical area)."""
    import h3

    return np.array([h3.cell_area(c, unit="m^2") for c in cells], dtype=np.float64)


def spread_terminals(
    n_terminals: ArrayLike, eligible: NDArray[np.bool_], rng: np.random.Generator
) -> NDArray[np.int64]:
    """Assign each site's terminals independently and uniformly to eligible satellites.

    Parameters
    ----------
    n_terminals : array_like of int, shape (G,)
    eligible : ndarray of bool, shape (G, S)
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int64, shape (G, S)
        Terminals per site and satellite; each row sums to ``n_terminals`` (0 if nothing is
        eligible).
    """
    n = np.asarray(n_terminals, dtype=np.int64)
    el = np.asarray(eligible, dtype=bool)
    k = el.sum(axis=1)
    out = np.zeros(el.shape, dtype=np.int64)
    for g in np.flatnonzero(k > 0):
        idx = np.flatnonzero(el[g])
        out[g, idx] = rng.multinomial(int(n[g]), np.full(idx.size, 1.0 / idx.size))
    return out


def beam_capacity_bps(
    distance_m: ArrayLike,
    elevation_rad: ArrayLike,
    *,
    profile: LinkProfile | None = None,
    rain_db: ArrayLike = 0.0,
) -> FloatArray:
    """Downlink capacity of one user beam [bit/s] from the link budget, after rain fade.

    The Ku downlink budget of :func:`starmesh.linkbudget.starlink_ku_user` gives the SINR at the
    terminal (boresight gains, no interference); ``rain_db`` is subtracted and the best DVB-S2X
    MODCOD the result supports is taken.
    """
    prof = profile if profile is not None else starlink_ku_user()
    lb = prof.downlink
    q = lb.evaluate(
        np.atleast_1d(np.asarray(distance_m, dtype=np.float64)),
        np.atleast_1d(np.asarray(elevation_rad, dtype=np.float64)),
    )
    sinr = q.sinr_db - np.asarray(rain_db, dtype=np.float64)
    return capacity_bps(
        sinr,
        lb.bandwidth_hz,
        table=lb.modcods,
        implementation_margin_db=lb.implementation_margin_db,
    )


def rain_fade_db(
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    elevation_deg: ArrayLike,
    *,
    frequency_hz: float,
    exceedance_percent: float,
) -> FloatArray:
    """Rain attenuation exceeded ``exceedance_percent`` % of an average year [dB] (ITU-R P.618
    via ``itur``). Optional dependency: ``pip install itur``."""
    import itur

    a = itur.models.itu618.rain_attenuation(
        np.asarray(lat_deg, dtype=np.float64),
        np.asarray(lon_deg, dtype=np.float64),
        frequency_hz / 1e9,
        np.asarray(elevation_deg, dtype=np.float64),
        p=exceedance_percent,
    )
    return np.asarray(a.value, dtype=np.float64)


def satellite_load_bps(counts: NDArray[np.int64], demand_per_terminal_bps: ArrayLike) -> FloatArray:
    """Offered load per satellite [bit/s], shape ``(S,)``: ``sum_g counts[g, s] * demand[g]``."""
    d = np.broadcast_to(np.asarray(demand_per_terminal_bps, dtype=np.float64), (counts.shape[0],))
    return d @ counts


def carried_load_bps(offered_bps: ArrayLike, capacity_bps_: ArrayLike) -> FloatArray:
    """Load a resource carries [bit/s]: ``min(offered, capacity)``."""
    return np.minimum(
        np.asarray(offered_bps, dtype=np.float64), np.asarray(capacity_bps_, dtype=np.float64)
    )


def ps_throughput_bps(capacity: ArrayLike, offered: ArrayLike) -> FloatArray:
    """Mean rate of an elastic flow under processor sharing [bit/s]: ``C (1 - rho)``, 0 if
    ``rho >= 1`` (Ben Fredj et al. 2001)."""
    c = np.asarray(capacity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(c > 0, np.asarray(offered, dtype=np.float64) / c, np.inf)
        return np.where(rho < 1.0, c * (1.0 - rho), 0.0)


def footprint_area_m2(altitude_m: ArrayLike, min_elevation_rad: float) -> FloatArray:
    """Area of the ground a satellite sees above the elevation mask [m^2] (spherical cap).

    ``2 pi R^2 (1 - cos lambda)`` with the Earth-central half-angle
    ``lambda = arccos(R cos(eps) / (R + h)) - eps`` (mean sphere ``R``; Wertz, *Space Mission
    Analysis and Design*, Sec. 5.2).

    Parameters
    ----------
    altitude_m : array_like
        Satellite altitude above the mean sphere [m].
    min_elevation_rad : float
        Elevation mask ``eps`` [rad].
    """
    r = EARTH_MEAN_RADIUS_M
    h = np.asarray(altitude_m, dtype=np.float64)
    lam = np.arccos(r * np.cos(min_elevation_rad) / (r + h)) - min_elevation_rad
    return 2.0 * np.pi * r**2 * (1.0 - np.cos(lam))


def occupied_fraction(mean_subscribers_per_cell: ArrayLike) -> FloatArray:
    """Fraction of cells with at least one subscriber: ``1 - exp(-m)``.

    Subscribers placed independently at a uniform density make the count of a cell Poisson
    with mean ``m = density x cell area``; a cell with none needs no beam time.
    """
    return -np.expm1(-np.asarray(mean_subscribers_per_cell, dtype=np.float64))


def cells_per_satellite(
    subscribers_per_m2: float,
    footprint_m2: ArrayLike,
    cell_area_m2: ArrayLike,
    n_visible: ArrayLike,
) -> FloatArray:
    """Occupied cells one satellite serves: occupied cells in its footprint / satellites in view.

    The global scheduler hands each occupied cell to one of the ``n_visible`` satellites that
    see it (evenly in expectation), so each satellite serves its footprint's occupied cells
    divided by the number of satellites sharing them.

    Parameters
    ----------
    subscribers_per_m2 : float
    footprint_m2, cell_area_m2, n_visible : array_like
        Footprint area (:func:`footprint_area_m2`), cell area, satellites in view of the cell
        (>= 1); broadcast together, ``(T, G)`` in a run.
    """
    area = np.asarray(cell_area_m2, dtype=np.float64)
    occ = occupied_fraction(subscribers_per_m2 * area)
    n = np.maximum(np.asarray(n_visible, dtype=np.float64), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cells = np.where(area > 0, np.asarray(footprint_m2, dtype=np.float64) / area, 0.0)
    return cells * occ / n


def cell_capacity_bps(
    beam_capacity: ArrayLike,
    beams_per_cell: float,
    sat_capacity_bps: ArrayLike,
    cells_served: ArrayLike,
) -> FloatArray:
    """Downlink capacity a cell gets under beam time-sharing [bit/s].

    ``min(beams_per_cell x beam_capacity, sat_capacity / cells_served)``: the satellite's
    capacity shared evenly over the cells it serves, never more than the cell's own beams
    (a satellite with fewer cells than beams parks a beam on each). ``cells_served`` <= 0
    gives the beam limit.
    """
    beam = np.asarray(beam_capacity, dtype=np.float64) * beams_per_cell
    n = np.asarray(cells_served, dtype=np.float64)
    with np.errstate(divide="ignore"):
        share = np.where(n > 0, np.asarray(sat_capacity_bps, dtype=np.float64) / n, np.inf)
    return np.minimum(beam, share)


@dataclass(frozen=True)
class DensityLoad:
    """Offered loads and capacities of the subscriber-density load model, shape ``(T, G)``.

    Attributes
    ----------
    cell_capacity_bps : ndarray
        Capacity of the terminal's cell under beam time-sharing (:func:`cell_capacity_bps`).
    cell_offered_bps : ndarray
        Busy-hour demand of the cell's subscribers (all on the cell's serving satellite).
    sat_offered_bps : ndarray
        Busy-hour demand on the serving satellite: ``density x footprint x demand / n_visible``.
    cells_served : ndarray
        Occupied cells the serving satellite time-shares its beams over.
    """

    cell_capacity_bps: FloatArray
    cell_offered_bps: FloatArray
    sat_offered_bps: FloatArray
    cells_served: FloatArray


def density_load(
    *,
    subscribers_per_m2: float,
    demand_bps: float,
    altitude_m: ArrayLike,
    min_elevation_rad: float,
    cell_area_m2: ArrayLike,
    n_visible: ArrayLike,
    beam_capacity: ArrayLike,
    beams_per_cell: float,
    sat_capacity_bps: float,
) -> DensityLoad:
    """Loads of a uniform subscriber density on a terminal's cell and serving satellite.

    Each of the ``n_visible`` satellites a terminal sees carries ``1 / n_visible`` of the
    subscribers under its footprint (the expectation of an even partition of occupied cells);
    the terminal's own cell is served whole by one satellite, which time-shares its beams over
    :func:`cells_per_satellite` cells. All arrays broadcast, ``(T, G)`` in a run.
    """
    foot = footprint_area_m2(altitude_m, min_elevation_rad)
    n = np.maximum(np.asarray(n_visible, dtype=np.float64), 1.0)
    served = cells_per_satellite(subscribers_per_m2, foot, cell_area_m2, n)
    cap = cell_capacity_bps(beam_capacity, beams_per_cell, sat_capacity_bps, served)
    cell_off = subscribers_per_m2 * np.asarray(cell_area_m2, dtype=np.float64) * demand_bps
    sat_off = subscribers_per_m2 * foot * demand_bps / n
    shape = np.broadcast_shapes(cap.shape, np.shape(cell_off), sat_off.shape)
    return DensityLoad(
        cell_capacity_bps=np.broadcast_to(cap, shape).copy(),
        cell_offered_bps=np.broadcast_to(cell_off, shape).copy(),
        sat_offered_bps=np.broadcast_to(sat_off, shape).copy(),
        cells_served=np.broadcast_to(served, shape).copy(),
    )


def speed_test_bps(
    *,
    cell_capacity: ArrayLike,
    cell_offered_bps: ArrayLike,
    sat_capacity_bps: ArrayLike,
    sat_offered_bps: ArrayLike,
    terminal_max_bps: float,
) -> FloatArray:
    """Speed-test download rate [bit/s]: the tightest of terminal, cell and satellite.

    ``min(terminal_max, PS(cell_capacity, cell_offered), PS(sat_capacity, sat_offered))`` with
    :func:`ps_throughput_bps`; ``cell_capacity`` is the cell's share of beam time
    (:func:`cell_capacity_bps`). All arrays broadcast.
    """
    cell = ps_throughput_bps(cell_capacity, cell_offered_bps)
    sat = ps_throughput_bps(sat_capacity_bps, sat_offered_bps)
    return np.minimum(np.minimum(cell, sat), terminal_max_bps)
