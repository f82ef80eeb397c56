"""Propagation: orbital elements -> ECEF positions, one time chunk at a time.

Two propagators:

* analytic circular Kepler orbits with the J2 secular drift of the node and of the argument of
  latitude, for Walker shells (exact for the model, fast: a few array operations per chunk);
* SGP4 through the ``sgp4`` package's vectorized ``SatrecArray`` for TLE/OMM records.

This is the only module that imports ``sgp4``. Its split Julian dates ``(jd, fr)`` and its
``(S, T, 3)`` kilometre output stay in here: everything leaving this module is ECEF metres of
shape ``(T, S, 3)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from sgp4 import omm as sgp4_omm
from sgp4.api import WGS72, Satrec, SatrecArray, jday

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
    """

    def __init__(
        self,
        constellation: Constellation,
        epoch: datetime,
        *,
        dut1_s: float = 0.0,
        scale: float = 1.0,
        earth_model: Literal["wgs84", "pyephem"] | None = None,
    ):
        self.constellation = constellation
        self.epoch = epoch
        self.dut1_s = dut1_s
        self.scale = scale
        if earth_model is None:
            earth_model = "pyephem" if scale == PYEPHEM_SCALE else "wgs84"
        self.earth_model = earth_model
        self._satrecs: SatrecArray | None = None
        self._satrecs_hi: SatrecArray | None = None
        self._ecc_weight: NDArray[np.float64] | None = None
        if constellation.kepler is None:
            if constellation.elements is None:
                raise StarmeshError(f"constellation {constellation.name!r} has no elements")
            if earth_model == "pyephem":
                lo, hi, w = libastro_satrecs(constellation.elements)
                self._satrecs = lo
                if w.any():
                    self._satrecs_hi, self._ecc_weight = hi, w
            else:
                self._satrecs = satrecs_from_elements(constellation.elements)

    def gmst_rad(self, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """Earth rotation angle at the offsets ``t_s``, shape ``(T,)`` [rad]: GMST82, or
        libastro's sidereal angle with ``earth_model = "pyephem"``."""
        base_s = (self.epoch - J2000_UTC).total_seconds() + self.dut1_s
        days = (base_s + np.asarray(t_s, dtype=np.float64)) / 86_400.0
        if self.earth_model == "pyephem":
            return libastro_sidereal_rad(days)
        return gmst82_rad(days)

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
        kep = self.constellation.kepler
        if kep is not None:
            dt = t_s + (self.epoch - kep.epoch).total_seconds()
            r_eci = propagate_kepler_eci_m(kep, dt)
            ok = np.ones(r_eci.shape[:2], dtype=bool)
        else:
            assert self._satrecs is not None
            r_eci, err = propagate_sgp4_teme_m(self._satrecs, self.epoch, t_s)
            if self._satrecs_hi is not None and self._ecc_weight is not None:
                r_hi, err_hi = propagate_sgp4_teme_m(self._satrecs_hi, self.epoch, t_s)
                r_eci += self._ecc_weight[:, None] * (r_hi - r_eci)
                err = np.maximum(err, err_hi)
            ok = err == 0
        r = teme_to_ecef(r_eci, self.gmst_rad(t_s))
        if self.scale != 1.0:
            r *= self.scale
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
