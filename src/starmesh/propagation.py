"""Propagation: orbital elements -> ECEF positions, one time chunk at a time.

Two propagators:

* analytic circular Kepler orbits with the J2 secular drift of the node and of the argument of
  latitude, for Walker shells (exact for the model, fast: a few array operations per chunk);
* SGP4 through the ``sgp4`` package's vectorized ``SatrecArray`` for TLE/OMM records, either
  at every step or, for dense runs, as an interpolated ephemeris (below).

Interpolated SGP4 ephemeris (``Propagator(..., node_spacing_s=60)``; runs choose it through
``[constellation] ephemeris``, :func:`starmesh.plan.ephemeris_node_spacing_s`): as orbit tools
do for dense ephemerides (Orekit's and STK's ephemeris interpolation), SGP4 is evaluated in TEME
only at nodes ``k h`` seconds after the scenario's epoch (an absolute grid: a step's position
never depends on which chunk or window asked for it) and positions in between come from
Lagrange interpolation over ``p`` nodes centred on the step's node interval; the rotation to
ECEF is per step, as with SGP4 at every step. Nodes are cached between calls, so a 1-s run
evaluates SGP4 once a minute instead of every second.

Error study (``scripts/ephemeris_error.py``): every object of the shipped snapshot (10,361:
the operational filter's 8,596 and the direct-to-cell, low, decaying and manoeuvring objects it
drops), 24 h from 2026-05-13T00:00Z, against SGP4 at the same instants, largest position error
[m] at 5 phases of every node interval (0.125 ... 0.875):

======  ==========  ==========  ==========  ==========  ==========
h [s]   p = 4       p = 6       p = 8       p = 10      p = 12
======  ==========  ==========  ==========  ==========  ==========
30      2.5e-1      7.3e-5      6.8e-6      6.8e-6      6.8e-6
60      4.1         4.7e-3      1.1e-5      7.1e-6      7.2e-6
90      2.1e1       5.3e-2      2.4e-4      8.0e-6      7.1e-6
120     6.5e1       3.0e-1      2.3e-3      5.3e-5      8.7e-6
180     3.3e2       3.4         5.8e-2      2.9e-3      2.4e-4
240     1.0e3       1.9e1       5.6e-1      4.7e-2      6.5e-3
======  ==========  ==========  ==========  ==========  ==========

The floor near 7 um is SGP4's own numerical roughness (its positions at consecutive seconds
jump by micrometres: high-order differences grow like noise, not like a smooth orbit), which no
interpolant follows. Chosen: h = 60 s, p = 8 (:data:`EPHEMERIS_NODE_S`,
:data:`EPHEMERIS_POINTS`): at that floor (every 1-s step of the day through the production path:
the figure in ``docs/ephemeris.md``), with the shortest stencil reach (4 nodes, 240 s, each side)
of the configurations at the floor. On W4 (8,596 satellites, 1-s steps, 30-step chunks with
~45-step windows) ``positions_ecef_m`` went from 4.7 to 0.63 ms of CPU per routed step, of which
~0.5 ms is now the rotation to ECEF. :data:`EPHEMERIS_MAX_ERROR_M` (30 um) is the documented
bound, 1/30 of a millimetre; the satgenpy agreement is 200 m and SGP4's own accuracy km.

Where the orbit SGP4 computes is not smooth, steps fall back to SGP4 itself: where a node of
the step's stencil failed (SGP4 error code: same ``ok`` and NaN as without nodes), and where
SGP4's eccentricity floor (:data:`SGP4_ECC_FLOOR`) may act within the stencil. Without the
latter, three just-launched objects of the snapshot whose drag-decayed eccentricity crosses
1e-6 during the day were off by up to 2 m. Deep-space and eccentric (e > 0.01) records are never
interpolated.

This is the only module that imports ``sgp4``. Its split Julian dates ``(jd, fr)`` and its
``(S, T, 3)`` kilometre output stay in here: everything leaving this module is ECEF metres of
shape ``(T, S, 3)``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from sgp4 import omm as sgp4_omm
from sgp4.api import WGS72, Satrec, SatrecArray, jday
from sgp4.model import Satrec as PySatrec

from .constants import (
    J2,
    J2_RADIUS_M,
    LIBASTRO_EARTH_RADIUS_KM,
    MU_EARTH_M3_S2,
    SGP4_WGS72_RADIUS_KM,
)
from .constellation import Constellation, KeplerElements
from .elements import ElementSet
from .errors import StarmeshError, TLEFormatError
from .frames import gmst82_rad, libastro_sidereal_rad, teme_to_ecef
from .timegrid import J2000_UTC

#: sgp4's error codes (Vallado's sgp4 ``error`` field): 0 means success.
SGP4_ERRORS = {
    1: "mean eccentricity out of range",
    2: "mean motion below zero",
    3: "perturbed eccentricity out of range",
    4: "semi-latus rectum below zero",
    6: "satellite has decayed",
}


def j2_rates(
    a_m: NDArray[np.float64], inc_rad: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Secular J2 rates of a circular orbit.

    For eccentricity 0: ``dRAAN/dt = -3/2 n J2 (Re/a)^2 cos i`` and
    ``du/dt = n + 3/4 n J2 (Re/a)^2 (5 cos^2 i - 1) + 3/4 n J2 (Re/a)^2 (3 cos^2 i - 1)``
    (argument of perigee plus mean anomaly drift), with ``n = sqrt(mu / a^3)``.

    Parameters
    ----------
    a_m, inc_rad : ndarray, shape (S,)
        Orbit radius [m] and inclination [rad].

    Returns
    -------
    raan_dot, u_dot : ndarray, shape (S,)
        Rates [rad/s].

    References
    ----------
    Vallado, *Fundamentals of Astrodynamics and Applications*, 4th ed., eqs. 9-41 and 9-43.
    """
    n = np.sqrt(MU_EARTH_M3_S2 / a_m**3)
    k = 0.75 * n * J2 * (J2_RADIUS_M / a_m) ** 2
    c2 = np.cos(inc_rad) ** 2
    raan_dot = -2.0 * k * np.cos(inc_rad)
    u_dot = n + k * (5.0 * c2 - 1.0) + k * (3.0 * c2 - 1.0)
    return raan_dot, u_dot


def propagate_kepler_eci_m(kep: KeplerElements, dt_s: NDArray[np.float64]) -> NDArray[np.float64]:
    """Positions of circular orbits with J2 secular drift, in the inertial frame of the elements.

    Parameters
    ----------
    kep : KeplerElements
        Elements of ``S`` satellites at ``kep.epoch``.
    dt_s : ndarray, shape (T,)
        Seconds since ``kep.epoch``.

    Returns
    -------
    ndarray, shape (T, S, 3)
        Positions [m] in the equatorial inertial frame (treated as TEME).
    """
    raan_dot, u_dot = j2_rates(kep.a_m, kep.inc_rad)
    dt = np.asarray(dt_s, dtype=np.float64)[:, None]
    raan = kep.raan_rad + raan_dot * dt
    u = kep.u_rad + u_dot * dt
    cu, su = np.cos(u), np.sin(u)
    cr, sr = np.cos(raan), np.sin(raan)
    ci, si = np.cos(kep.inc_rad), np.sin(kep.inc_rad)
    r = np.empty((*u.shape, 3))
    r[..., 0] = cu * cr - su * ci * sr
    r[..., 1] = cu * sr + su * ci * cr
    r[..., 2] = su * si
    r *= kep.a_m[:, None]
    return r


#: pyephem's scale on SGP4's positions (its Earth radius over SGP4's WGS72 radius).
PYEPHEM_SCALE = LIBASTRO_EARTH_RADIUS_KM / SGP4_WGS72_RADIUS_KM


#: Vallado's SGP4 (python-sgp4) raises a mean eccentricity below this to it ("sgp4fix");
#: libastro's older SGP4 does not, so pyephem propagates satgenpy's e = 1e-7 as is.
SGP4_MIN_ECC = 1.0e-6


def _f32(x: float) -> float:
    return float(np.float32(x))


def libastro_satrec(line1: str, line2: str, *, ecc: float | None = None) -> Satrec:
    """SGP4 initialised with the elements of a TLE as pyephem (libastro) holds them.

    libastro stores inclination, RAAN, eccentricity, argument of perigee and mean anomaly as
    C ``float`` (degrees, ``astro.h`` ``eso_*``), then hands SGP4 ``(float) degrad(x)``
    (``earthsat.c`` ``esat_prop``): each angle is rounded to float32 twice. Mean motion, epoch
    and drag terms stay double, as in libastro. ``ecc`` replaces the eccentricity (see
    :func:`libastro_satrecs`).
    """
    sat = Satrec.twoline2rv(line1, line2, WGS72)

    def rad(field: str) -> float:
        return _f32(_f32(float(field)) * np.pi / 180.0)

    e = _f32(float("0." + line2[26:33].strip())) if ecc is None else ecc
    sat.sgp4init(
        WGS72,
        "i",
        sat.satnum,
        sat.jdsatepoch + sat.jdsatepochF - 2433281.5,
        sat.bstar,
        sat.ndot,
        sat.nddot,
        e,
        rad(line2[34:42]),
        rad(line2[8:16]),
        rad(line2[43:51]),
        sat.no_kozai,
        rad(line2[17:25]),
    )
    return sat


def libastro_satrecs(
    elements: ElementSet,
) -> tuple[SatrecArray, SatrecArray, NDArray[np.float64]]:
    """SGP4 set up to reproduce pyephem's propagation of TLE records.

    Vallado's SGP4 raises an eccentricity below :data:`SGP4_MIN_ECC` to it, libastro does not:
    for satgenpy's e = 1e-7 that moves every satellite along its track by up to
    ``2 (1e-6 - 1e-7) a`` = 12.5 m. SGP4 is smooth in the eccentricity, so pyephem's position
    is recovered by propagating at ``e0 = 1e-6`` and ``e0 + 1e-6`` and extrapolating linearly to
    the record's ``e`` (the neglected second-order term is ``~ a e0^2``, micrometres).

    Returns
    -------
    lo, hi : SatrecArray
        ``S`` satellites at ``max(e, e0)`` and at ``e0 + 1e-6`` (``e`` itself when ``e >= e0``).
    weight : ndarray, shape (S,)
        ``r = r_lo + weight (r_hi - r_lo)``: ``(e - e0) / 1e-6`` below ``e0``, else 0.
    """
    lo: list[Satrec] = []
    hi: list[Satrec] = []
    weight = np.zeros(len(elements.records))
    for i, rec in enumerate(elements.records):
        try:
            if rec.line1 is None or rec.line2 is None:
                sat = Satrec()
                sgp4_omm.initialize(sat, dict(rec.omm or {}))
                lo.append(sat)
                hi.append(sat)
                continue
            e = _f32(float("0." + rec.line2[26:33].strip()))
            if e >= SGP4_MIN_ECC:
                sat = libastro_satrec(rec.line1, rec.line2)
                lo.append(sat)
                hi.append(sat)
                continue
            lo.append(libastro_satrec(rec.line1, rec.line2, ecc=SGP4_MIN_ECC))
            hi.append(libastro_satrec(rec.line1, rec.line2, ecc=2.0 * SGP4_MIN_ECC))
            weight[i] = (e - SGP4_MIN_ECC) / SGP4_MIN_ECC
        except (ValueError, KeyError) as exc:
            raise TLEFormatError(elements.source, rec.line_no, f"sgp4 rejects it: {exc}") from exc
    return SatrecArray(lo), SatrecArray(hi), weight


def satrecs_from_elements(elements: ElementSet) -> SatrecArray:
    """Initialise SGP4 for every record (WGS72 constants, as the TLEs were fitted with).

    Raises
    ------
    TLEFormatError
        If sgp4 rejects a record, naming its line.
    """
    return SatrecArray(_satrec_list(elements))


def _satrec_list(elements: ElementSet) -> list[Satrec]:
    sats: list[Satrec] = []
    for rec in elements.records:
        try:
            if rec.line1 is not None and rec.line2 is not None:
                sat = Satrec.twoline2rv(rec.line1, rec.line2, WGS72)
            else:
                sat = Satrec()
                sgp4_omm.initialize(sat, dict(rec.omm or {}))
        except (ValueError, KeyError) as exc:
            raise TLEFormatError(elements.source, rec.line_no, f"sgp4 rejects it: {exc}") from exc
        sats.append(sat)
    return sats


def _split_jd(
    epoch: datetime, t_s: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Exact whole Julian date of ``epoch``'s day plus float fractions (sgp4's ``(jd, fr)``)."""
    jd0, fr0 = jday(epoch.year, epoch.month, epoch.day, 0, 0, 0.0)
    sec = epoch.hour * 3600 + epoch.minute * 60 + epoch.second + epoch.microsecond * 1e-6
    fr = fr0 + (sec + np.asarray(t_s, dtype=np.float64)) / 86_400.0
    whole = np.floor(fr)
    return jd0 + whole, fr - whole


def propagate_sgp4_teme_m(
    satrecs: SatrecArray, epoch: datetime, t_s: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.uint8]]:
    """SGP4 positions in TEME.

    Parameters
    ----------
    satrecs : SatrecArray
        ``S`` satellites.
    epoch : datetime
        UTC time of ``t_s == 0``.
    t_s : ndarray, shape (T,)
        Offsets [s].

    Returns
    -------
    r_teme_m : ndarray, shape (T, S, 3)
        Positions [m]; NaN where SGP4 failed.
    error : ndarray of uint8, shape (T, S)
        sgp4's error code, 0 on success (see :data:`SGP4_ERRORS`).
    """
    jd, fr = _split_jd(epoch, t_s)
    err, r_km, _v = satrecs.sgp4(jd, fr)
    r_teme_m = np.ascontiguousarray(np.transpose(r_km, (1, 0, 2))) * 1e3
    error = np.ascontiguousarray(err.T).astype(np.uint8)
    r_teme_m[error != 0] = np.nan
    return r_teme_m, error


# --- Interpolated SGP4 ephemeris -------------------------------------------------------------

#: Node spacing of the interpolated SGP4 ephemeris [s]: SGP4 is evaluated at ``k h`` seconds
#: after the scenario's epoch only (see :class:`Propagator` for the error study).
EPHEMERIS_NODE_S = 60.0
#: Points of the Lagrange stencil: ``p / 2`` nodes on each side of a step's node interval.
EPHEMERIS_POINTS = 8
#: Satellites whose ephemeris is interpolated: near-Earth SGP4 (period below 225 min, no
#: deep-space terms) with a mean eccentricity at most this; the others get SGP4 at every step.
EPHEMERIS_MAX_ECC = 0.01
#: Node positions a propagator keeps between calls (consecutive chunks share nodes).
EPHEMERIS_CACHED_NODES = 64

#: Documented bound on the position error of the interpolated ephemeris (h = 60 s, p = 8)
#: against SGP4 [m]: the study (module docstring) measured 11 um at most over every object of
#: the shipped snapshot for 24 h; the tests hold every result to this bound.
EPHEMERIS_MAX_ERROR_M = 3e-5


def ephemeris_summary(node_s: float) -> dict[str, object]:
    """How a run's positions were computed, for its summary: SGP4 at nodes ``node_s`` apart
    and Lagrange interpolation between them, with the error bound of the study (for the
    default spacing and stencil only)."""
    out: dict[str, object] = {
        "mode": "sgp4-interpolated",
        "node_s": node_s,
        "points": EPHEMERIS_POINTS,
    }
    if node_s == EPHEMERIS_NODE_S:
        out["max_error_m"] = EPHEMERIS_MAX_ERROR_M
    return out


def lagrange_weights(s: NDArray[np.float64], n_points: int) -> NDArray[np.float64]:
    """Lagrange basis weights of ``p`` equally spaced nodes, at a fraction of the central interval.

    The nodes sit at offsets ``j = -(p/2 - 1) .. p/2`` (in node spacings) from the start of the
    interval that holds the step; the weight of node ``j`` is
    ``prod_{m != j} (s - m) / (j - m)``. Each weight is computed element by element in a fixed
    order, so a step's weights do not depend on the other steps asked with it; at ``s = 0``
    they are exactly 1 for ``j = 0`` and 0 elsewhere (a step on a node is that node).

    Parameters
    ----------
    s : ndarray, shape (T,)
        Fraction of the node interval, in ``[0, 1)``.
    n_points : int
        Stencil points ``p`` (even, >= 2).

    Returns
    -------
    ndarray, shape (T, p)
        Weights of the nodes ``j = -(p/2 - 1) .. p/2``.
    """
    if n_points < 2 or n_points % 2:
        raise StarmeshError(f"n_points must be even and >= 2, got {n_points}")
    s = np.asarray(s, dtype=np.float64)
    offsets = np.arange(n_points) - (n_points // 2 - 1)
    diff = s[:, None] - offsets.astype(np.float64)
    w = np.empty((s.size, n_points))
    for j in range(n_points):
        num = np.ones(s.size)
        den = 1.0
        for m in range(n_points):
            if m != j:
                num = num * diff[:, m]
                den *= float(offsets[j] - offsets[m])
        w[:, j] = num / den
    return w


def node_stencil(
    t_s: NDArray[np.float64], node_s: float, n_points: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The nodes and weights that interpolate the steps ``t_s`` on the grid ``k node_s``.

    Parameters
    ----------
    t_s : ndarray, shape (T,)
        Offsets from the scenario's epoch [s].
    node_s : float
        Node spacing ``h`` [s].
    n_points : int
        Stencil points ``p`` (even).

    Returns
    -------
    first : ndarray of int64, shape (T,)
        Index ``k`` of each step's first stencil node (node ``k`` is at ``k h``): the step at
        ``t`` uses nodes ``first .. first + p - 1`` with ``first = floor(t / h) - (p/2 - 1)``.
    weights : ndarray, shape (T, p)
        Their Lagrange weights (:func:`lagrange_weights`).
    """
    u = np.asarray(t_s, dtype=np.float64) / node_s
    k0 = np.floor(u)
    first = k0.astype(np.int64) - (n_points // 2 - 1)
    return first, lagrange_weights(u - k0, n_points)


#: SGP4 raises a mean eccentricity below this to it ("sgp4fix ... avoid a divide by zero",
#: Vallado's ``sgp4``): where a satellite's drag-decayed eccentricity crosses it, its position is
#: continuous but not smooth, and no polynomial through nodes on both sides follows it.
SGP4_ECC_FLOOR = 1.0e-6


class _EccentricityModel:
    """Where SGP4's eccentricity floor acts: the near-Earth mean eccentricity before the floor,

    ``e(t) = e0 - B* C4 t - B* C5 (sin M(t) - sin M0)`` (``B* C5`` term only without SGP4's
    simplified drag), ``M(t) = M0 + Mdot t + omgcof t + xmcof ((1 + eta cos(M0 + Mdot t))^3 -
    delmo)``, ``t`` in minutes since the element epoch (Vallado's ``sgp4``, as in
    python-sgp4's ``propagation.py``). The compiled ``SatrecArray`` neither returns ``e(t)`` nor
    exposes ``C4``/``C5``, so the coefficients come from sgp4's pure-Python ``sgp4init`` on the
    same elements and these three lines are evaluated here, vectorized over satellites.
    """

    def __init__(self, sats: list[Satrec]):
        cols: dict[str, list[float]] = {
            k: []
            for k in (
                "ecco", "bstar", "cc4", "cc5", "mo", "mdot", "omgcof", "xmcof", "eta", "delmo",
                "sinmao", "simple", "jd", "rate",
            )
        }  # fmt: skip
        for sat in sats:
            py = PySatrec()
            py.sgp4init(
                WGS72,
                "i",
                sat.satnum,
                sat.jdsatepoch + sat.jdsatepochF - 2433281.5,
                sat.bstar,
                sat.ndot,
                sat.nddot,
                sat.ecco,
                sat.argpo,
                sat.inclo,
                sat.mo,
                sat.no_kozai,
                sat.nodeo,
            )
            simple = py.isimp == 1
            for k in ("ecco", "bstar", "cc4", "mo", "mdot"):
                cols[k].append(float(getattr(py, k)))
            for k in ("cc5", "omgcof", "xmcof", "eta", "delmo", "sinmao"):
                cols[k].append(0.0 if simple else float(getattr(py, k)))
            cols["simple"].append(float(simple))
            cols["jd"].append(sat.jdsatepoch + sat.jdsatepochF)
            # |de/dt| [1/min]: the secular term plus the largest slope of the periodic one,
            # |dM/dt| <= |Mdot| (1 + 3 |xmcof eta| (1 + |eta|)^2) + |omgcof|.
            xmcof, eta, cc5 = cols["xmcof"][-1], cols["eta"][-1], cols["cc5"][-1]
            m_rate = abs(py.mdot) * (1.0 + 3.0 * abs(xmcof * eta) * (1.0 + abs(eta)) ** 2)
            m_rate += abs(cols["omgcof"][-1])
            cols["rate"].append(abs(py.bstar * py.cc4) + abs(py.bstar * cc5) * m_rate)
        self._c = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}

    def ecc(self, jd: NDArray[np.float64], fr: NDArray[np.float64]) -> NDArray[np.float64]:
        """Mean eccentricity before the floor at the split Julian dates ``(jd, fr)`` of shape
        ``(K,)``: shape ``(K, S)``."""
        c = self._c
        t = ((jd[:, None] - c["jd"]) + fr[:, None]) * 1440.0
        xmdf = c["mo"] + c["mdot"] * t
        delm = c["xmcof"] * ((1.0 + c["eta"] * np.cos(xmdf)) ** 3 - c["delmo"])
        mm = xmdf + c["omgcof"] * t + delm
        tempe = c["bstar"] * c["cc4"] * t + c["bstar"] * c["cc5"] * (np.sin(mm) - c["sinmao"])
        return np.asarray(c["ecco"] - tempe, dtype=np.float64)

    def near_floor(
        self, jd: NDArray[np.float64], fr: NDArray[np.float64], span_s: float
    ) -> NDArray[np.bool_]:
        """``(K, S)``: True where the eccentricity may reach the floor within ``span_s`` of the
        dates (twice the largest rate, so a stencil whose nodes are all False is smooth)."""
        guard = SGP4_ECC_FLOOR + 2.0 * self._c["rate"] * (span_s / 60.0)
        return self.ecc(jd, fr) < guard


class Propagator:
    """Positions of one constellation in ECEF, chunk by chunk.

    Parameters
    ----------
    constellation : Constellation
        What to propagate.
    epoch : datetime
        UTC time of ``t_s == 0`` (the scenario's start).
    dut1_s : float
        UT1 - UTC [s] for Earth rotation (IERS Bulletin A; within +-0.9 s). Defaults to 0, as
        satgenpy/pyephem assume; 0.1 s of UT1 error moves a ground point by up to 46 m.
    scale : float
        Factor on every position: 1, or pyephem's 6378.16 / 6378.135 to reproduce satgenpy
        (pyephem turns SGP4's Earth radii into km with its own radius).
    earth_model : {"wgs84", "pyephem"}, optional
        ``"pyephem"`` reproduces pyephem's satellite code, which satgenpy measures with:
        libastro's Earth rotation angle (:func:`starmesh.frames.libastro_sidereal_rad`) instead
        of GMST82, and TLE elements rounded to float32 as libastro stores them
        (:func:`libastro_satrec`). Default: ``"pyephem"`` when ``scale`` is pyephem's
        (:data:`PYEPHEM_SCALE`), else ``"wgs84"``.
    node_spacing_s : float, optional
        Interpolated SGP4 ephemeris (module docstring): SGP4 at ``k node_spacing_s`` seconds
        after ``epoch`` only, Lagrange interpolation in TEME between. None (default): SGP4 at
        every requested time. SGP4 element sets on ``earth_model = "wgs84"`` only.
    node_points : int
        Points of the Lagrange stencil (even); the study's choice by default.

    Notes
    -----
    With ``node_spacing_s``, a step's position depends only on its time: the nodes are on an
    absolute grid, each is SGP4 of one instant, and the interpolation sums the same products in
    the same order whichever steps are asked together (no BLAS), so single steps, windows,
    chunks, executors and resumed runs get the same bytes; a step on a node is SGP4's value.
    """

    def __init__(
        self,
        constellation: Constellation,
        epoch: datetime,
        *,
        dut1_s: float = 0.0,
        scale: float = 1.0,
        earth_model: Literal["wgs84", "pyephem"] | None = None,
        node_spacing_s: float | None = None,
        node_points: int = EPHEMERIS_POINTS,
    ):
        self.constellation = constellation
        self.epoch = epoch
        self.dut1_s = dut1_s
        self.scale = scale
        if earth_model is None:
            earth_model = "pyephem" if scale == PYEPHEM_SCALE else "wgs84"
        self.earth_model = earth_model
        self.node_spacing_s = node_spacing_s
        self.node_points = node_points
        self._satrecs: SatrecArray | None = None
        self._satrecs_hi: SatrecArray | None = None
        self._ecc_weight: NDArray[np.float64] | None = None
        self._sat_list: list[Satrec] = []
        self._interpolated = np.zeros(constellation.n_sats, dtype=bool)
        self._nodes: OrderedDict[int, tuple[NDArray[np.float64], NDArray[np.bool_]]] = OrderedDict()
        self._nodes_lock = threading.Lock()
        self._ecc_model: _EccentricityModel | None = None
        if constellation.kepler is None:
            if constellation.elements is None:
                raise StarmeshError(f"constellation {constellation.name!r} has no elements")
            if earth_model == "pyephem":
                lo, hi, w = libastro_satrecs(constellation.elements)
                self._satrecs = lo
                if w.any():
                    self._satrecs_hi, self._ecc_weight = hi, w
            else:
                self._sat_list = _satrec_list(constellation.elements)
                self._satrecs = SatrecArray(self._sat_list)
        if node_spacing_s is not None:
            if not node_spacing_s > 0.0:
                raise StarmeshError(f"node_spacing_s must be > 0 s, got {node_spacing_s!r}")
            if node_points < 2 or node_points % 2:
                raise StarmeshError(f"node_points must be even and >= 2, got {node_points!r}")
            if not self._sat_list:
                raise StarmeshError(
                    "node_spacing_s (the interpolated ephemeris) applies to SGP4 element sets "
                    f"with earth_model 'wgs84'; {constellation.name!r} is "
                    + (
                        "a closed-form Kepler set"
                        if constellation.kepler is not None
                        else "on pyephem's Earth model"
                    )
                    + ": leave node_spacing_s = None"
                )
            # Near-Earth SGP4 only ("n": period below 225 min): the deep-space integrator is
            # piecewise, and very eccentric orbits were not part of the error study.
            self._interpolated = np.array(
                [sat.method == "n" and sat.ecco <= EPHEMERIS_MAX_ECC for sat in self._sat_list],
                dtype=bool,
            )
            # Shared by every propagator of this constellation in the process (and shipped
            # with a pickled plan): sgp4's pure-Python initialisation takes ~20 us a satellite.
            model = constellation._cache.get("sgp4_eccentricity")
            if not isinstance(model, _EccentricityModel):
                model = _EccentricityModel(self._sat_list)
                constellation._cache["sgp4_eccentricity"] = model
            self._ecc_model = model

    def gmst_rad(self, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """Earth rotation angle at the offsets ``t_s``, shape ``(T,)`` [rad]: GMST82, or
        libastro's sidereal angle with ``earth_model = "pyephem"``."""
        base_s = (self.epoch - J2000_UTC).total_seconds() + self.dut1_s
        days = (base_s + np.asarray(t_s, dtype=np.float64)) / 86_400.0
        if self.earth_model == "pyephem":
            return libastro_sidereal_rad(days)
        return gmst82_rad(days)

    def positions_teme_m(
        self, t_s: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Inertial positions at offsets ``t_s``: SGP4's TEME (Kepler sets: the equatorial
        frame of their elements), before Earth rotation and ``scale``.

        Parameters
        ----------
        t_s : ndarray, shape (T,)
            Seconds since the scenario epoch.

        Returns
        -------
        r_teme_m : ndarray, shape (T, S, 3)
            Positions [m]; NaN for satellites SGP4 could not propagate.
        ok : ndarray of bool, shape (T, S)
            False where propagation failed.
        """
        t_s = np.asarray(t_s, dtype=np.float64)
        kep = self.constellation.kepler
        if kep is not None:
            dt = t_s + (self.epoch - kep.epoch).total_seconds()
            r_eci = propagate_kepler_eci_m(kep, dt)
            return r_eci, np.ones(r_eci.shape[:2], dtype=bool)
        if self.node_spacing_s is not None:
            return self._interpolated_teme_m(t_s, self.node_spacing_s)
        assert self._satrecs is not None
        r_eci, err = propagate_sgp4_teme_m(self._satrecs, self.epoch, t_s)
        if self._satrecs_hi is not None and self._ecc_weight is not None:
            r_hi, err_hi = propagate_sgp4_teme_m(self._satrecs_hi, self.epoch, t_s)
            r_eci += self._ecc_weight[:, None] * (r_hi - r_eci)
            err = np.maximum(err, err_hi)
        return r_eci, err == 0

    def positions_ecef_m(
        self, t_s: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """ECEF positions at offsets ``t_s``.

        Parameters
        ----------
        t_s : ndarray, shape (T,)
            Seconds since the scenario epoch.

        Returns
        -------
        r_ecef_m : ndarray, shape (T, S, 3)
            Positions [m]; NaN for satellites SGP4 could not propagate.
        ok : ndarray of bool, shape (T, S)
            False where propagation failed.
        """
        t_s = np.asarray(t_s, dtype=np.float64)
        r_eci, ok = self.positions_teme_m(t_s)
        r = teme_to_ecef(r_eci, self.gmst_rad(t_s))
        if self.scale != 1.0:
            r *= self.scale
        return r, ok

    def _node_teme_m(
        self, ks: NDArray[np.int64], node_s: float
    ) -> dict[int, tuple[NDArray[np.float64], NDArray[np.bool_]]]:
        """SGP4 at the nodes ``ks`` (node ``k`` at ``k node_s``): positions ``(S, 3)`` [m] and
        unusable flags ``(S,)`` (SGP4 failed, or the eccentricity floor is near) per node, from
        the cache or computed in one batch."""
        out: dict[int, tuple[NDArray[np.float64], NDArray[np.bool_]]] = {}
        with self._nodes_lock:
            for k in ks.tolist():
                hit = self._nodes.get(k)
                if hit is not None:
                    self._nodes.move_to_end(k)
                    out[k] = hit
        missing = np.array([k for k in ks.tolist() if k not in out], dtype=np.int64)
        if missing.size:
            assert self._satrecs is not None
            # k * h is exact for integer k and h, and each (node, satellite) is evaluated alone
            # by sgp4, so a node's value never depends on the batch that computed it.
            t_nodes = missing.astype(np.float64) * node_s
            r, err = propagate_sgp4_teme_m(self._satrecs, self.epoch, t_nodes)
            # A node is unusable where SGP4 failed, or where the eccentricity floor may act
            # within a node spacing (the orbit is not smooth there).
            assert self._ecc_model is not None
            bad = (err != 0) | self._ecc_model.near_floor(*_split_jd(self.epoch, t_nodes), node_s)
            with self._nodes_lock:
                for i, k in enumerate(missing.tolist()):
                    out[k] = (r[i].copy(), bad[i])
                    self._nodes[k] = out[k]
                    self._nodes.move_to_end(k)
                while len(self._nodes) > EPHEMERIS_CACHED_NODES:
                    self._nodes.popitem(last=False)
        return out

    def _interpolated_teme_m(
        self, t_s: NDArray[np.float64], node_s: float
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """TEME positions [m] ``(T, S, 3)`` and ``ok`` ``(T, S)`` from SGP4 at the nodes
        ``k node_s`` and Lagrange interpolation between them; direct SGP4 for satellites
        outside the interpolated set and at steps whose stencil holds a failed node."""
        n_t, n_s, p = t_s.size, self.constellation.n_sats, self.node_points
        r = np.empty((n_t, n_s, 3))
        direct = np.broadcast_to(~self._interpolated, (n_t, n_s)).copy()
        if n_t and self._interpolated.any():
            first, w = node_stencil(t_s, node_s, p)
            starts = np.unique(first)
            nodes = self._node_teme_m(
                np.unique(starts[:, None] + np.arange(p, dtype=np.int64)), node_s
            )
            tmp = np.empty((n_t, n_s, 3))
            for b in starts.tolist():
                idx = np.flatnonzero(first == b)
                rows: slice | NDArray[np.int64] = idx
                if idx[-1] - idx[0] + 1 == idx.size:
                    rows = slice(int(idx[0]), int(idx[-1]) + 1)
                # Each element is ((w0 r0 + w1 r1) + w2 r2) + ..., in this order whichever
                # steps are asked together: no BLAS, no reordered sums (bit-identical windows).
                wb = w[rows]
                # Sum in place in the output where the steps are contiguous (the usual case).
                acc = r[rows] if isinstance(rows, slice) else np.empty((idx.size, n_s, 3))
                np.multiply(wb[:, 0, None, None], nodes[b][0], out=acc)
                bad = nodes[b][1].copy()
                for j in range(1, p):
                    node_r, node_bad = nodes[b + j]
                    prod = tmp[: acc.shape[0]]
                    np.multiply(wb[:, j, None, None], node_r, out=prod)
                    acc += prod
                    bad |= node_bad
                if not isinstance(rows, slice):
                    r[rows] = acc
                direct[rows] |= bad
        cols = np.flatnonzero(direct.any(axis=0))
        ok = np.ones((n_t, n_s), dtype=bool)
        if cols.size:
            # Satellites outside the interpolated set, and those with a failed node in some
            # step's stencil: SGP4 itself at those steps (same NaN and ok as without nodes).
            sub = SatrecArray([self._sat_list[i] for i in cols.tolist()])
            r_d, err_d = propagate_sgp4_teme_m(sub, self.epoch, t_s)
            use = direct[:, cols]
            r_cols = r[:, cols]
            r_cols[use] = r_d[use]
            r[:, cols] = r_cols
            ok[:, cols] = ~use | (err_d == 0)
        return r, ok


def mean_elements_arrays(elements: ElementSet) -> dict[str, NDArray[np.float64]]:
    """The SGP4 mean elements of every record, as arrays, for filtering and shell inference.

    Parameters
    ----------
    elements : ElementSet
        ``S`` records.

    Returns
    -------
    dict of str to ndarray, shape (S,)
        ``n_kozai_rad_s`` (Kozai mean motion), ``ecc``, ``inc_rad``, ``raan_rad``, ``argp_rad``,
        ``mean_anomaly_rad``, ``bstar_per_er`` (B* [1/Earth radii]), ``ndot_rev_day2`` (the TLE's
        first-derivative field, i.e. half the rate of change of mean motion, [rev/day^2]) and
        ``epoch_jd`` (Julian date UTC of the element epoch).
    """
    sats = _satrec_list(elements)
    out: dict[str, list[float]] = {
        k: []
        for k in (
            "n_kozai_rad_s",
            "ecc",
            "inc_rad",
            "raan_rad",
            "argp_rad",
            "mean_anomaly_rad",
            "bstar_per_er",
            "ndot_rev_day2",
            "epoch_jd",
        )
    }
    for sat in sats:
        out["n_kozai_rad_s"].append(sat.no_kozai / 60.0)
        out["ecc"].append(sat.ecco)
        out["inc_rad"].append(sat.inclo)
        out["raan_rad"].append(sat.nodeo)
        out["argp_rad"].append(sat.argpo)
        out["mean_anomaly_rad"].append(sat.mo)
        out["bstar_per_er"].append(sat.bstar)
        # sgp4 stores ndot in rad/min^2 (the TLE field, already halved); back to rev/day^2.
        out["ndot_rev_day2"].append(sat.ndot * 1440.0**2 / (2.0 * np.pi))
        out["epoch_jd"].append(sat.jdsatepoch + sat.jdsatepochF)
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def sgp4_state_teme_m(
    elements: ElementSet, epoch: datetime
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """SGP4 position and velocity of every record at one instant, in TEME.

    Returns
    -------
    r_teme_m, v_teme_m_s : ndarray, shape (S, 3)
        Position [m] and velocity [m/s]; NaN where SGP4 failed.
    ok : ndarray of bool, shape (S,)
    """
    jd, fr = _split_jd(epoch, np.zeros(1))
    err, r_km, v_km_s = satrecs_from_elements(elements).sgp4(jd, fr)
    ok = err[:, 0] == 0
    r = r_km[:, 0, :] * 1e3
    v = v_km_s[:, 0, :] * 1e3
    r[~ok] = np.nan
    v[~ok] = np.nan
    return r, v, ok
