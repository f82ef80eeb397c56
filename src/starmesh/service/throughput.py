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

**Upload.** The upload test is the same flow in the other direction: the terminal's cell gets
``min(beams_per_cell x uplink beam capacity, satellite uplink capacity / cells served)`` (the
uplink budget's capacity of the terminal -> satellite link; the satellite's uplink capacity is
its downlink capacity x ``params.UPLINK_CAPACITY_RATIO``; the same cells served, handed out
the same way), loaded by the upstream demand (``params.UPSTREAM_RATIO`` of the downstream), and
the rate is capped by the terminal's upload ceiling (``params.TERMINAL_UP_MAX_BPS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    direction: Literal["down", "up"] = "down",
) -> FloatArray:
    """Capacity of one user beam [bit/s] from the link budget, after rain fade.

    ``direction="down"``: the Ku downlink budget of :func:`starmesh.linkbudget.starlink_ku_user`
    gives the SINR at the terminal (boresight gains, no interference); ``"up"``: its uplink
    budget (the terminal's 42.1 dBW EIRP in one 60 MHz channel at 14.25 GHz) gives the SINR at
    the satellite. ``rain_db`` (at that direction's frequency) is subtracted and the best
    DVB-S2X MODCOD the result supports is taken.
    """
    prof = profile if profile is not None else starlink_ku_user()
    if direction not in ("down", "up"):
        raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")
    lb = prof.downlink if direction == "down" else prof.uplink
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


def footprint_half_angle_rad(altitude_m: ArrayLike, min_elevation_rad: float) -> FloatArray:
    """Earth-central half-angle of the ground a satellite sees above the elevation mask [rad]:
    ``arccos(R cos(eps) / (R + h)) - eps`` (mean sphere; Wertz, *Space Mission Analysis and
    Design*, Sec. 5.2)."""
    r = EARTH_MEAN_RADIUS_M
    h = np.asarray(altitude_m, dtype=np.float64)
    return np.arccos(r * np.cos(min_elevation_rad) / (r + h)) - min_elevation_rad


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
    lam = footprint_half_angle_rad(altitude_m, min_elevation_rad)
    return 2.0 * np.pi * EARTH_MEAN_RADIUS_M**2 * (1.0 - np.cos(lam))


@dataclass(frozen=True)
class RegionCells:
    """Where subscribers live: H3 cells of a set of countries, with their centres and areas.

    Attributes
    ----------
    names : tuple of str
        The countries (Natural Earth names or ISO alpha-3 codes, as given).
    lat_rad, lon_rad : ndarray, shape (C,)
        Cell centres [rad].
    area_m2 : ndarray, shape (C,)
        Cell areas [m^2] (h3's exact spherical areas).
    """

    names: tuple[str, ...]
    lat_rad: FloatArray
    lon_rad: FloatArray
    area_m2: FloatArray


def region_cells_of(countries: list[str] | tuple[str, ...], res: int = 4) -> RegionCells:
    """H3 cells (resolution ``res``, default 4: ~1,770 km^2, 45 km apart) whose centres lie in
    the countries' Natural Earth 1:110m outlines (:func:`starmesh.regions.region_cells`)."""
    import h3

    from starmesh.regions import region_cells

    lat, lon, ints = [], [], []
    for c in countries:
        g = region_cells(c, res)
        lat.append(g.lat_deg)
        lon.append(g.lon_deg)
        ints.append(g.cells)
    cells, first = np.unique(np.concatenate(ints), return_index=True)
    area = np.array([h3.cell_area(h3.int_to_str(int(c)), unit="m^2") for c in cells])
    return RegionCells(
        names=tuple(countries),
        lat_rad=np.radians(np.concatenate(lat)[first]),
        lon_rad=np.radians(np.concatenate(lon)[first]),
        area_m2=area,
    )


def footprint_area_in_region_m2(
    sub_lat_rad: ArrayLike,
    sub_lon_rad: ArrayLike,
    half_angle_rad: ArrayLike,
    region: RegionCells,
    *,
    block: int = 256,
) -> FloatArray:
    """Area of each footprint that lies in the region [m^2]: the summed areas of the region's
    cells whose centres are within ``half_angle_rad`` (great circle) of the sub-satellite point.

    A cell-centre count, exact to about one cell area along the footprint's edge (res 4: a
    footprint of ~2.5 million km^2 has ~1,400 cells, its rim ~130). Vectorised over points in
    blocks of ``block`` (memory ``block x C`` floats).

    Parameters
    ----------
    sub_lat_rad, sub_lon_rad, half_angle_rad : array_like, shape (N,)
        Sub-satellite points [rad] and footprint half-angles
        (:func:`footprint_half_angle_rad`) [rad].
    region : RegionCells

    Returns
    -------
    ndarray, shape (N,)
    """
    la = np.atleast_1d(np.asarray(sub_lat_rad, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(sub_lon_rad, dtype=np.float64))
    cos_lam = np.cos(np.broadcast_to(np.asarray(half_angle_rad, dtype=np.float64), la.shape))
    s_c, c_c = np.sin(region.lat_rad), np.cos(region.lat_rad)
    out = np.empty(la.shape)
    for b0 in range(0, la.size, block):
        sl = slice(b0, b0 + block)
        cosd = np.sin(la[sl])[:, None] * s_c[None, :] + np.cos(la[sl])[:, None] * c_c[
            None, :
        ] * np.cos(lo[sl][:, None] - region.lon_rad[None, :])
        out[sl] = (cosd >= cos_lam[sl][:, None]) @ region.area_m2
    return out


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
    *,
    share: ArrayLike | None = None,
) -> FloatArray:
    """Occupied cells one satellite serves: occupied cells in its footprint x its share.

    The global scheduler hands each occupied cell to one of the satellites that see it, so a
    satellite serves its footprint's occupied cells times its share of them: ``1 / n_visible``
    for an even split by number (the default), or ``share`` (e.g. its capacity over the
    capacity in view, :func:`density_load`).

    Parameters
    ----------
    subscribers_per_m2 : float
    footprint_m2, cell_area_m2, n_visible : array_like
        Footprint area (:func:`footprint_area_m2`), cell area, satellites in view of the cell
        (>= 1); broadcast together, ``(T, G)`` in a run.
    share : array_like, optional
        Fraction of the footprint's cells the satellite serves, in [0, 1].
    """
    area = np.asarray(cell_area_m2, dtype=np.float64)
    occ = occupied_fraction(subscribers_per_m2 * area)
    if share is None:
        frac = 1.0 / np.maximum(np.asarray(n_visible, dtype=np.float64), 1.0)
    else:
        frac = np.asarray(share, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cells = np.where(area > 0, np.asarray(footprint_m2, dtype=np.float64) / area, 0.0)
    return cells * occ * frac


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
        Busy-hour demand on the serving satellite: ``density x footprint x demand x share``
        (share ``1 / n_visible``, or capacity over capacity in view).
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
    sat_capacity_bps: ArrayLike,
    capacity_in_view_bps: ArrayLike | None = None,
    populated_m2: ArrayLike | None = None,
) -> DensityLoad:
    """Loads of a uniform subscriber density on a terminal's cell and serving satellite.

    The serving satellite carries a share of the subscribers under its footprint: ``1 /
    n_visible`` (the expectation of an even partition of occupied cells among the satellites
    in view) or, with ``capacity_in_view_bps``, ``sat_capacity / capacity_in_view`` (cells
    handed out in proportion to capacity, so that every satellite in view is equally
    utilised: ``rho = density x footprint x demand / capacity in view``). The terminal's own
    cell is served whole by one satellite, which time-shares its beams over
    :func:`cells_per_satellite` cells. All arrays broadcast, ``(T, G)`` in a run.

    Parameters
    ----------
    sat_capacity_bps : array_like
        User-downlink capacity of the serving satellite [bit/s].
    capacity_in_view_bps : array_like, optional
        Sum of the capacities of the satellites in view of the terminal [bit/s] (those the
        scheduler could assign), including the serving one.
    populated_m2 : array_like, optional
        Area of the serving satellite's footprint where the subscribers live [m^2]
        (:func:`footprint_area_in_region_m2`); default the whole footprint (the density then
        also covers sea and foreign land under it).
    """
    foot = footprint_area_m2(altitude_m, min_elevation_rad)
    if populated_m2 is not None:
        foot = np.minimum(np.asarray(populated_m2, dtype=np.float64), foot)
    n = np.maximum(np.asarray(n_visible, dtype=np.float64), 1.0)
    if capacity_in_view_bps is None:
        share = 1.0 / n
    else:
        c_sat = np.asarray(sat_capacity_bps, dtype=np.float64)
        c_view = np.asarray(capacity_in_view_bps, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(c_view > 0, np.minimum(c_sat / c_view, 1.0), 1.0 / n)
    served = cells_per_satellite(subscribers_per_m2, foot, cell_area_m2, n, share=share)
    cap = cell_capacity_bps(beam_capacity, beams_per_cell, sat_capacity_bps, served)
    cell_off = subscribers_per_m2 * np.asarray(cell_area_m2, dtype=np.float64) * demand_bps
    sat_off = subscribers_per_m2 * foot * demand_bps * share
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
    """Speed-test rate [bit/s]: the tightest of terminal, cell and satellite.

    ``min(terminal_max, PS(cell_capacity, cell_offered), PS(sat_capacity, sat_offered))`` with
    :func:`ps_throughput_bps`; ``cell_capacity`` is the cell's share of beam time
    (:func:`cell_capacity_bps`). All arrays broadcast. The download test takes the user-downlink
    capacities and downstream loads, the upload test the user-uplink ones (the terminal ->
    satellite beam of the uplink budget, the satellite's uplink capacity, the upstream demand
    and the terminal's upload ceiling) under the same cell and satellite sharing.
    """
    cell = ps_throughput_bps(cell_capacity, cell_offered_bps)
    sat = ps_throughput_bps(sat_capacity_bps, sat_offered_bps)
    return np.minimum(np.minimum(cell, sat), terminal_max_bps)
