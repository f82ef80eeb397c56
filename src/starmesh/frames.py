"""Geometry: Earth rotation (TEME -> ECEF), WGS84 geodetic <-> ECEF, elevation, great circles.

Everything here is a closed form of a few lines that runs on whole arrays at once. They are written
here rather than taken from pyproj or skyfield because the hot paths need them broadcast over
``(T, S, 3)`` arrays with precomputed site vectors, which those libraries do not expose; each
function is tested against a published reference (Vallado et al., AIAA 2006-6753 App. C) or a
closed form.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .constants import EARTH_MEAN_RADIUS_M, WGS84_A_M, WGS84_B_M, WGS84_E2, WGS84_F

_ARCSEC_RAD = np.pi / (180.0 * 3600.0)


def gmst82_rad(days_ut1: ArrayLike) -> NDArray[np.float64]:
    """Greenwich mean sidereal time, IAU 1982 model (the angle SGP4's TEME frame uses).

    Parameters
    ----------
    days_ut1 : array_like, shape (T,)
        UT1 days since J2000.0 (2000-01-01 12:00 UT1).

    Returns
    -------
    ndarray, shape (T,)
        GMST [rad] in ``[0, 2 pi)``.

    References
    ----------
    Vallado, Crawford, Hujsak, Kelso, "Revisiting Spacetrack Report #3", AIAA 2006-6753, eq. for
    ``gstime``; Aoki et al. (1982).
    """
    d = np.asarray(days_ut1, dtype=np.float64)
    t = d / 36525.0
    # Split the dominant linear term so float64 keeps sub-microsecond resolution:
    # 876600 h * 3600 s/h per century is exactly 86400 s per day * 36525 days.
    sec = 67310.54841 + 86400.0 * (d % 1.0) + 8640184.812866 * t + 0.093104 * t**2 - 6.2e-6 * t**3
    return np.mod(sec * (2.0 * np.pi / 86400.0), 2.0 * np.pi)


#: libastro's ratio of sidereal to solar time (earthsat.c ``SiderealSolar``).
LIBASTRO_SIDEREAL_SOLAR = 1.0027379093


def libastro_sidereal_rad(days_utc: ArrayLike) -> NDArray[np.float64]:
    """Earth rotation angle of pyephem's (libastro's) satellite code, which satgenpy measures with.

    libastro's ``earthsat.c`` (``InitOrbitRoutines``, ``GetSitPosition``) does not use GMST82:
    it takes Newcomb's sidereal time at 0 h UT of the current day,
    ``(6.6460656 + 2400.051262 T + 0.00002581 T^2) h`` with ``T`` Julian centuries from
    1900 January 0.5, and adds the time since midnight times 1.0027379093, with UTC standing
    for UT1. At 2000-01-01 this is 5.5 urad (0.076 s of rotation, 35 m at the equator)
    behind GMST82. Written out here because no library exposes libastro's formula; it is
    tested against pyephem's own ranges (``tests/test_pyephem_compat.py``).

    Parameters
    ----------
    days_utc : array_like, shape (T,)
        UTC days since J2000.0 (2000-01-01 12:00 UTC).

    Returns
    -------
    ndarray, shape (T,)
        Angle [rad] in ``[0, 2 pi)`` by which TEME is rotated into libastro's Earth-fixed frame.
    """
    # libastro's "CrntTime": days since 1899-12-31 00:00 (xephem's mjd + 0.5); J2000.0 is
    # xephem mjd 36525.0.
    crnt = 36525.5 + np.asarray(days_utc, dtype=np.float64)
    sid_day = np.floor(crnt)
    t = (sid_day - 0.5) / 36525.0
    ref = (6.6460656 + 2400.051262 * t + 0.00002581 * t * t) / 24.0
    ref -= np.floor(ref)
    return np.mod(2.0 * np.pi * ((crnt - sid_day) * LIBASTRO_SIDEREAL_SOLAR + ref), 2.0 * np.pi)


def rotation_teme_to_ecef(
    gmst_rad: ArrayLike, *, xp_rad: float = 0.0, yp_rad: float = 0.0
) -> NDArray[np.float64]:
    """Rotation matrices from TEME to ECEF (ITRF), one per time.

    TEME -> PEF is a rotation by GMST about z; PEF -> ITRF applies polar motion ``(xp, yp)``.
    Polar motion is below 0.5 arcsec (about 15 m at LEO altitude) and defaults to zero, as in
    Hypatia and most network simulators; pass IERS values for sub-metre work.

    Parameters
    ----------
    gmst_rad : array_like, shape (T,)
        Greenwich mean sidereal time [rad].
    xp_rad, yp_rad : float
        Polar motion [rad].

    Returns
    -------
    ndarray, shape (T, 3, 3)
        ``r_ecef = R @ r_teme``.
    """
    g = np.atleast_1d(np.asarray(gmst_rad, dtype=np.float64))
    c, s = np.cos(g), np.sin(g)
    rz = np.zeros((g.size, 3, 3))
    rz[:, 0, 0] = c
    rz[:, 0, 1] = s
    rz[:, 1, 0] = -s
    rz[:, 1, 1] = c
    rz[:, 2, 2] = 1.0
    if xp_rad == 0.0 and yp_rad == 0.0:
        return rz
    cx, sx, cy, sy = np.cos(xp_rad), np.sin(xp_rad), np.cos(yp_rad), np.sin(yp_rad)
    # Vallado's polar-motion matrix maps ITRF -> PEF; its transpose maps PEF -> ITRF.
    w = np.array([[cx, 0.0, -sx], [sx * sy, cy, cx * sy], [sx * cy, -sy, cx * cy]])
    return np.einsum("ji,tjk->tik", w, rz)


def teme_to_ecef(
    r_teme: NDArray[np.float64], gmst_rad: ArrayLike, *, xp_rad: float = 0.0, yp_rad: float = 0.0
) -> NDArray[np.float64]:
    """Rotate TEME positions into ECEF.

    Parameters
    ----------
    r_teme : ndarray, shape (T, S, 3)
        Positions in TEME (any length unit; returned in the same unit).
    gmst_rad : array_like, shape (T,)
        GMST at each time [rad].

    Returns
    -------
    ndarray, shape (T, S, 3)
        Positions in ECEF.
    """
    rot = rotation_teme_to_ecef(gmst_rad, xp_rad=xp_rad, yp_rad=yp_rad)
    # Written out component by component: plain products and sums, the same on every CPU
    # (einsum and matmul pick SIMD or BLAS kernels by CPU), and 6x faster than einsum for
    # (30, 8600, 3) positions.
    x, y, z = r_teme[..., 0], r_teme[..., 1], r_teme[..., 2]
    out = np.empty(r_teme.shape)
    for i in range(3):
        out[..., i] = rot[:, i, 0, None] * x + rot[:, i, 1, None] * y + rot[:, i, 2, None] * z
    return out


def geodetic_to_ecef(
    lat_rad: ArrayLike,
    lon_rad: ArrayLike,
    h_m: ArrayLike = 0.0,
    *,
    a_m: float = WGS84_A_M,
    f: float = WGS84_F,
) -> NDArray[np.float64]:
    """Geodetic coordinates to ECEF (WGS84 unless another ellipsoid is given).

    Parameters
    ----------
    lat_rad, lon_rad : array_like, shape (G,)
        Geodetic latitude and longitude [rad].
    h_m : array_like, shape (G,)
        Height above the ellipsoid [m].
    a_m, f : float
        Semi-major axis [m] and flattening of the ellipsoid.

    Returns
    -------
    ndarray, shape (G, 3)
        ECEF position [m].
    """
    lat = np.asarray(lat_rad, dtype=np.float64)
    lon = np.asarray(lon_rad, dtype=np.float64)
    h = np.asarray(h_m, dtype=np.float64)
    e2 = f * (2.0 - f)
    sl, cl = np.sin(lat), np.cos(lat)
    n = a_m / np.sqrt(1.0 - e2 * sl**2)
    x = (n + h) * cl * np.cos(lon)
    y = (n + h) * cl * np.sin(lon)
    z = (n * (1.0 - e2) + h) * sl
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def libastro_site_ecef(
    lat_rad: ArrayLike, lon_rad: ArrayLike, h_m: ArrayLike, *, a_m: float, f: float
) -> NDArray[np.float64]:
    """Earth-fixed position of an observer as pyephem's satellite code places it.

    libastro's ``GetSitPosition`` (earthsat.c) evaluates the geodetic formula of
    :func:`geodetic_to_ecef` not at the latitude ``phi`` but at
    ``atan(tan(phi) / (1 - f^2))``: up to 5.6 urad (36 m) north of the true point at 45 deg.
    satgenpy's ground-station distances carry this shift, so the pyephem Earth model
    reproduces it. Written out here because no library reproduces libastro's quirk.

    Parameters
    ----------
    lat_rad, lon_rad : array_like, shape (G,)
        Geodetic latitude and longitude [rad].
    h_m : array_like, shape (G,)
        Height above the ellipsoid [m].
    a_m, f : float
        libastro's equatorial radius [m] and flattening (6,378,160 m, 1 / 298.25).

    Returns
    -------
    ndarray, shape (G, 3)
        Position [m] in libastro's Earth-fixed frame.
    """
    lat = np.arctan(np.tan(np.asarray(lat_rad, dtype=np.float64)) / (1.0 - f * f))
    lon = np.asarray(lon_rad, dtype=np.float64)
    h = np.asarray(h_m, dtype=np.float64)
    sl, cl = np.sin(lat), np.cos(lat)
    g1 = a_m / np.sqrt(1.0 - (2.0 * f - f * f) * sl * sl)
    g2 = g1 * (1.0 - f) ** 2 + h
    g1 = g1 + h
    x = g1 * cl * np.cos(lon)
    y = g1 * cl * np.sin(lon)
    z = g2 * sl
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def ecef_to_geodetic(
    r_ecef_m: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """ECEF to WGS84 geodetic coordinates (Bowring's method, three iterations).

    Three iterations of Bowring's formula converge to well below a micrometre for heights from
    the Earth's centre region out to GEO, which is far beyond what LEO networking needs.

    Parameters
    ----------
    r_ecef_m : ndarray, shape (..., 3)
        ECEF position [m].

    Returns
    -------
    lat_rad, lon_rad, h_m : ndarray, shape (...)
        Geodetic latitude, longitude [rad] and ellipsoidal height [m].
    """
    r = np.asarray(r_ecef_m, dtype=np.float64)
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    ep2 = (WGS84_A_M**2 - WGS84_B_M**2) / WGS84_B_M**2
    beta = np.arctan2(z * WGS84_A_M, p * WGS84_B_M)
    for _ in range(3):
        lat = np.arctan2(
            z + ep2 * WGS84_B_M * np.sin(beta) ** 3, p - WGS84_E2 * WGS84_A_M * np.cos(beta) ** 3
        )
        beta = np.arctan2(WGS84_B_M * np.sin(lat), WGS84_A_M * np.cos(lat))
    sl = np.sin(lat)
    n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sl**2)
    # Height formula that stays accurate near the poles (p ~ 0) as well as the equator.
    h = p * np.cos(lat) + (z + WGS84_E2 * n * sl) * sl - n
    return lat, lon, h


def up_vectors(lat_rad: ArrayLike, lon_rad: ArrayLike) -> NDArray[np.float64]:
    """Unit vectors of the local geodetic vertical (ellipsoid normal), shape ``(G, 3)``."""
    lat = np.asarray(lat_rad, dtype=np.float64)
    lon = np.asarray(lon_rad, dtype=np.float64)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def elevation_rad(
    r_site_m: NDArray[np.float64], up: NDArray[np.float64], r_target_m: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Elevation of targets above the sites' geodetic horizon.

    Parameters
    ----------
    r_site_m : ndarray, shape (..., 3)
        Site ECEF positions [m].
    up : ndarray, shape (..., 3)
        Unit geodetic vertical at each site.
    r_target_m : ndarray, shape (..., 3)
        Target ECEF positions [m]; broadcast against the sites.

    Returns
    -------
    ndarray, shape (...)
        Elevation [rad], in ``[-pi/2, pi/2]``; NaN where a target position is NaN.
    """
    d = r_target_m - r_site_m
    rng = np.linalg.norm(d, axis=-1)
    return np.arcsin(np.clip(np.einsum("...i,...i->...", d, up) / rng, -1.0, 1.0))


def slant_range_m(
    elevation: ArrayLike, orbit_radius_m: ArrayLike, site_radius_m: ArrayLike
) -> NDArray[np.float64]:
    """Slant range from a site to a satellite seen at a given elevation, spherical Earth.

    ``d = sqrt(r^2 - R^2 cos^2 e) - R sin e`` for site radius ``R`` and orbit radius ``r``.

    Parameters
    ----------
    elevation : array_like
        Elevation [rad].
    orbit_radius_m, site_radius_m : array_like
        Geocentric radii of the satellite and the site [m].

    Returns
    -------
    ndarray
        Slant range [m].
    """
    e = np.asarray(elevation, dtype=np.float64)
    r = np.asarray(orbit_radius_m, dtype=np.float64)
    big_r = np.asarray(site_radius_m, dtype=np.float64)
    return np.sqrt(r**2 - (big_r * np.cos(e)) ** 2) - big_r * np.sin(e)


def great_circle_m(
    lat1_rad: ArrayLike, lon1_rad: ArrayLike, lat2_rad: ArrayLike, lon2_rad: ArrayLike
) -> NDArray[np.float64]:
    """Great-circle distance on the mean sphere (haversine) [m], broadcast over inputs."""
    la1, lo1 = np.asarray(lat1_rad, float), np.asarray(lon1_rad, float)
    la2, lo2 = np.asarray(lat2_rad, float), np.asarray(lon2_rad, float)
    a = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    return 2.0 * EARTH_MEAN_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def arcsec_to_rad(arcsec: float) -> float:
    """Arcseconds to radians."""
    return arcsec * _ARCSEC_RAD
