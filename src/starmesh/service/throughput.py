"""Throughput comparable with speed tests: load spread over satellites, beams and cells.

Flow-level model. Terminals of a site are assigned independently to satellites in view (the
scheduler's ``"random"`` policy, or :func:`spread_terminals`), so a site's demand spreads over
satellites instead of riding one shortest path. Each satellite has a generation capacity; a cell
(H3 hexagon) gets at most ``beams_per_cell`` beams from one satellite, each carrying the DVB-S2X
capacity of its link budget (``starmesh.linkbudget``), optionally after ITU-R P.618 rain fade
(``itur``). A speed test is one more elastic flow on its bottleneck: under processor sharing
its mean rate is ``C (1 - rho)`` (Ben Fredj, Bonald, Proutiere, Regnie, Roberts, "Statistical
bandwidth sharing", SIGCOMM 2001), capped by the terminal's own maximum rate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

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


def speed_test_bps(
    *,
    beam_capacity: ArrayLike,
    beams_per_cell: float,
    cell_offered_bps: ArrayLike,
    sat_capacity_bps: ArrayLike,
    sat_offered_bps: ArrayLike,
    terminal_max_bps: float,
) -> FloatArray:
    """Speed-test download rate [bit/s]: the tightest of terminal, cell beams and satellite.

    ``min(terminal_max, PS(beams_per_cell * beam_capacity, cell_offered),
    PS(sat_capacity, sat_offered))`` with :func:`ps_throughput_bps`. All arrays broadcast.
    """
    cell = ps_throughput_bps(
        np.asarray(beam_capacity, dtype=np.float64) * beams_per_cell, cell_offered_bps
    )
    sat = ps_throughput_bps(sat_capacity_bps, sat_offered_bps)
    return np.minimum(np.minimum(cell, sat), terminal_max_bps)
