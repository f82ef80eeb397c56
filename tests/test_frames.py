"""Frames against Vallado et al. (AIAA 2006-6753, App. C), sgp4's own GMST, and closed forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sgp4.api import jday
from sgp4.propagation import gstime

from starmesh import frames
from starmesh.constants import WGS84_A_M, WGS84_B_M
from starmesh.timegrid import J2000_UTC

ONE_MM = 1e-3
ONE_UM = 1e-6

# AIAA 2006-6753 Appendix C: TEME -> ITRF at 2004-04-06 07:51:28.386009 UTC,
# dUT1 = -0.4399619 s, xp = -0.140682", yp = 0.333309".
R_TEME_KM = np.array([5094.18016210, 6127.64465950, 6380.34453270])
R_ITRF_KM = np.array([-1033.4793830, 7901.2952754, 6380.3565958])
UTC_VALLADO = datetime(2004, 4, 6, 7, 51, 28, 386009, tzinfo=UTC)
DUT1_S = -0.4399619
XP = frames.arcsec_to_rad(-0.140682)
YP = frames.arcsec_to_rad(0.333309)


def test_teme_to_itrf_matches_vallado_with_his_gmst():
    # Vallado's code evaluates GMST from one double-precision Julian date; feed the same angle
    # (sgp4's gstime is that code) to isolate our rotation and polar motion: 5e-8 km, as printed.
    jd, fr = jday(2004, 4, 6, 7, 51, 28.386009 + DUT1_S)
    got = frames.teme_to_ecef(R_TEME_KM[None, None, :], [gstime(jd + fr)], xp_rad=XP, yp_rad=YP)
    assert np.abs(got[0, 0] - R_ITRF_KM).max() < 5e-8


def test_teme_to_itrf_matches_vallado_through_our_time_handling():
    # Our GMST comes from days since J2000 (float64 resolves ~1e-11 day), whereas a single-double
    # Julian date near 2.45e6 resolves only ~5e-10 day = 40 us of Earth rotation: at 8,000 km
    # that is ~1 cm, the size of the difference we allow here.
    d = ((UTC_VALLADO + timedelta(seconds=DUT1_S)) - J2000_UTC).total_seconds() / 86400.0
    got = frames.teme_to_ecef(
        R_TEME_KM[None, None, :], [frames.gmst82_rad(d)], xp_rad=XP, yp_rad=YP
    )
    assert np.abs(got[0, 0] - R_ITRF_KM).max() * 1e3 < 0.015


@given(st.floats(-20000.0, 20000.0, allow_nan=False))
def test_gmst_equals_sgp4_gstime(days):
    # Same IAU-82 formula, independent code; difference bounded by gstime's JD resolution.
    want = gstime(2451545.0 + days)
    got = float(frames.gmst82_rad(days))
    diff = (got - want + np.pi) % (2 * np.pi) - np.pi
    assert abs(diff) < 3e-9


def test_rotation_is_orthonormal_and_array_shapes():
    rot = frames.rotation_teme_to_ecef(np.linspace(0, 7, 5), xp_rad=XP, yp_rad=YP)
    assert rot.shape == (5, 3, 3)
    np.testing.assert_allclose(
        np.einsum("tij,tkj->tik", rot, rot), np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-15
    )
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-15)


def test_geodetic_closed_forms():
    r = frames.geodetic_to_ecef(
        np.radians([0.0, 90.0, -90.0, 0.0]),
        np.radians([0.0, 0.0, 0.0, 90.0]),
        [0.0, 0.0, 100.0, 10.0],
    )
    np.testing.assert_allclose(r[0], [WGS84_A_M, 0, 0], atol=ONE_UM)
    np.testing.assert_allclose(r[1], [0, 0, WGS84_B_M], atol=ONE_UM)
    np.testing.assert_allclose(r[2], [0, 0, -WGS84_B_M - 100.0], atol=ONE_UM)
    np.testing.assert_allclose(r[3], [0, WGS84_A_M + 10.0, 0], atol=ONE_UM)


@settings(max_examples=200)
@given(
    st.floats(-90.0, 90.0),
    st.floats(-180.0, 180.0, exclude_max=True),
    st.floats(-1000.0, 2_000_000.0),
)
def test_geodetic_round_trip(lat_deg, lon_deg, h_m):
    r = frames.geodetic_to_ecef(np.radians(lat_deg), np.radians(lon_deg), h_m)
    lat, lon, h = frames.ecef_to_geodetic(r)
    # Compare positions, not angles: longitude is undefined at the poles.
    back = frames.geodetic_to_ecef(lat, lon, h)
    assert np.abs(back - r).max() < ONE_MM
    assert abs(float(h) - h_m) < ONE_MM


def test_geodetic_arrays_match_scalars():
    lat = np.radians([10.0, -45.0, 60.0])
    lon = np.radians([20.0, 170.0, -100.0])
    h = np.array([0.0, 500.0, 550e3])
    r = frames.geodetic_to_ecef(lat, lon, h)
    assert r.shape == (3, 3)
    for i in range(3):
        np.testing.assert_array_equal(r[i], frames.geodetic_to_ecef(lat[i], lon[i], h[i]))


@given(st.floats(0.0, 89.9), st.floats(300e3, 2000e3))
def test_slant_range_matches_geometry(elev_deg, alt_m):
    # Spherical Earth: place the site at (R, 0, 0), the satellite at elevation e in the x-z plane.
    big_r = 6_371_000.0
    e = np.radians(elev_deg)
    d = float(frames.slant_range_m(e, big_r + alt_m, big_r))
    sat = np.array([big_r + d * np.sin(e), 0.0, d * np.cos(e)])
    assert abs(np.linalg.norm(sat) - (big_r + alt_m)) < ONE_MM
    site = np.array([big_r, 0.0, 0.0])
    up = np.array([1.0, 0.0, 0.0])
    assert abs(float(frames.elevation_rad(site, up, sat)) - e) < 1e-9


def test_slant_range_at_zenith_is_altitude():
    assert float(frames.slant_range_m(np.pi / 2, 7_000e3, 6_400e3)) == pytest.approx(600e3)


def test_great_circle_quarter_meridian():
    d = frames.great_circle_m(0.0, 0.0, np.pi / 2, 0.0)
    assert float(d) == pytest.approx(np.pi / 2 * 6_371_008.8, rel=1e-12)


def test_geodetic_on_another_ellipsoid():
    # libastro's ellipsoid (pyephem; earth_model = "pyephem"): pole at a (1 - f), equator at a.
    a, f = 6_378_160.0, 1.0 / 298.25
    r = frames.geodetic_to_ecef(np.radians([0.0, 90.0]), np.zeros(2), [0.0, 0.0], a_m=a, f=f)
    np.testing.assert_allclose(r[0], [a, 0, 0], atol=ONE_UM)
    np.testing.assert_allclose(r[1], [0, 0, a * (1 - f)], atol=ONE_UM)


# --- Independent libraries: ERFA (IAU SOFA), pyproj (PROJ), geographiclib, pymap3d -------------

#: Two float64 evaluations of the same GMST polynomial (numerical error; a sign error in the
#: t^3 term is 3e-9 rad at +-1.5 centuries, the 0.093 s t^2 term 1.5e-5 rad).
GMST_TOL_RAD = 1e-10
#: Two exact rotation matrices built in different order (numerical error).
ROT_TOL = 1e-11
#: Haversine at antipodal points (numerical: arcsin's slope is infinite at 1; measured 0.19 m).
HAVERSINE_ANTIPODE_TOL_M = 0.5
#: Geodetic latitude against PROJ's exact inverse (numerical error of three Bowring iterations).
LAT_TOL_RAD = 1e-11


def test_gmst82_matches_erfa_over_three_centuries():
    import erfa

    d = np.linspace(-1.5 * 36525.0, 1.5 * 36525.0, 2001) + 0.123
    want = erfa.gmst82(2451545.0, d)
    diff = np.angle(np.exp(1j * (frames.gmst82_rad(d) - want)))
    assert np.abs(diff).max() < GMST_TOL_RAD
    # float32 input is widened, not computed in float32 (which would be ~1e-3 rad off).
    d32 = d.astype(np.float32)
    np.testing.assert_array_equal(frames.gmst82_rad(d32), frames.gmst82_rad(d32.astype(np.float64)))


@pytest.mark.parametrize(
    ("xp_arcsec", "yp_arcsec"), [(0.0, 0.0), (0.2, 0.0), (0.0, -0.3), (-0.14, 0.33)]
)
def test_polar_motion_matches_erfa_pom00(xp_arcsec, yp_arcsec):
    # ERFA's pom00 (IERS Conventions 2003, with s' = 0) maps TIRS -> ITRS; ours is that after the
    # GMST rotation about z.
    import erfa

    xp, yp = frames.arcsec_to_rad(xp_arcsec), frames.arcsec_to_rad(yp_arcsec)
    g = np.array([0.3, 2.0, 5.5])
    rz = np.array([[[np.cos(x), np.sin(x), 0], [-np.sin(x), np.cos(x), 0], [0, 0, 1]] for x in g])
    want = erfa.pom00(xp, yp, 0.0) @ rz
    got = frames.rotation_teme_to_ecef(g, xp_rad=xp, yp_rad=yp)
    assert np.abs(got - want).max() < ROT_TOL
    r = np.random.default_rng(0).normal(size=(3, 4, 3))
    moved = frames.teme_to_ecef(r, g, xp_rad=xp, yp_rad=yp)
    assert np.abs(moved - np.einsum("tij,tsj->tsi", want, r)).max() < ROT_TOL
    if xp == yp == 0.0:
        # Defaults: no polar motion.
        np.testing.assert_array_equal(frames.rotation_teme_to_ecef(g), got)
        np.testing.assert_array_equal(frames.teme_to_ecef(r, g), moved)


def test_arcsec_to_rad():
    assert frames.arcsec_to_rad(3600.0) == pytest.approx(np.pi / 180.0, rel=1e-15)


def test_geodetic_matches_pyproj_both_ways():
    # PROJ's WGS84 geographic 3D (EPSG:4979) <-> geocentric (EPSG:4978), from the sea floor to
    # GEO and from the equator to the poles.
    from pyproj import Transformer

    rng = np.random.default_rng(7)
    lat_deg = np.concatenate([rng.uniform(-90, 90, 300), [0.0, 89.99999, -89.99999, 45.0]])
    lon_deg = np.concatenate([rng.uniform(-180, 180, 300), [0.0, 10.0, -170.0, 100.0]])
    h = np.concatenate([rng.uniform(-500.0, 3.6e7, 300), [0.0, 1200e3, 3.6e7, -400.0]])
    fwd = Transformer.from_crs("EPSG:4979", "EPSG:4978")
    x, y, z = fwd.transform(lat_deg, lon_deg, h)
    want = np.stack([x, y, z], axis=-1)
    got = frames.geodetic_to_ecef(np.radians(lat_deg), np.radians(lon_deg), h)
    assert np.abs(got - want).max() < ONE_MM
    # Default height is 0 (on the ellipsoid).
    x0, y0, z0 = fwd.transform(lat_deg, lon_deg, np.zeros_like(h))
    on = frames.geodetic_to_ecef(np.radians(lat_deg), np.radians(lon_deg))
    assert np.abs(on - np.stack([x0, y0, z0], axis=-1)).max() < ONE_MM
    lat, _lon, hh = frames.ecef_to_geodetic(want)
    assert np.abs(lat - np.radians(lat_deg)).max() < LAT_TOL_RAD
    assert np.abs(hh - h).max() < ONE_MM
    # float32 positions are widened before Bowring's iterations.
    lat32, _, h32 = frames.ecef_to_geodetic(want.astype(np.float32))
    lat64, _, h64 = frames.ecef_to_geodetic(want.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(lat32, lat64)
    np.testing.assert_array_equal(h32, h64)


def test_great_circle_matches_geographiclib_on_the_sphere():
    # geographiclib's geodesic on a sphere (flattening 0) of the IUGG mean radius; 500 random
    # pairs and antipodal pairs, where rounding can push the haversine argument above 1.
    from geographiclib.geodesic import Geodesic

    sphere = Geodesic(6_371_008.8, 0.0)
    rng = np.random.default_rng(3)
    la1, la2 = rng.uniform(-90, 90, (2, 500))
    lo1, lo2 = rng.uniform(-180, 180, (2, 500))
    la1 = np.concatenate([la1, [0.3, -17.0, 45.0]])
    lo1 = np.concatenate([lo1, [0.0, 33.0, -120.0]])
    la2 = np.concatenate([la2, -la1[-3:]])
    lo2 = np.concatenate([lo2, lo1[-3:] + 180.0])
    want = np.array(
        [sphere.Inverse(a, b, c, d)["s12"] for a, b, c, d in zip(la1, lo1, la2, lo2, strict=True)]
    )
    got = frames.great_circle_m(*np.radians([la1, lo1, la2, lo2]))
    assert np.isfinite(got).all()
    assert np.abs(got[:-3] - want[:-3]).max() < ONE_MM
    # Numerical error: arcsin near 1 turns rounding of 1e-16 into sqrt(1e-16) R, about 0.1 m.
    assert np.abs(got[-3:] - want[-3:]).max() < HAVERSINE_ANTIPODE_TOL_M


def test_elevation_matches_pymap3d_and_stays_finite_at_zenith_and_nadir():
    import pymap3d

    rng = np.random.default_rng(11)
    lat, lon = np.radians(rng.uniform(-89, 89, 200)), np.radians(rng.uniform(-180, 180, 200))
    site = frames.geodetic_to_ecef(lat, lon, 0.0)
    up = frames.up_vectors(lat, lon)
    targets = site + rng.normal(size=(200, 3)) * 1e6
    _az, el, _rng = pymap3d.ecef2aer(*targets.T, lat, lon, 0.0, deg=False)
    got = frames.elevation_rad(site, up, targets)
    assert got.shape == (200,)
    assert np.abs(got - el).max() < 1e-9
    # Straight up and straight down: the cosine can round past +-1; the result must be +-pi/2.
    dist = rng.uniform(3e5, 2e6, 200)[:, None]
    np.testing.assert_allclose(frames.elevation_rad(site, up, site + dist * up), np.pi / 2)
    np.testing.assert_allclose(frames.elevation_rad(site, up, site - dist * up), -np.pi / 2)


def test_slant_range_widens_float32():
    e = np.radians(np.array([10.0, 25.0, 60.0], dtype=np.float32))
    r = np.full(3, 6_928_137.0, dtype=np.float32)
    big_r = np.full(3, 6_371_000.0, dtype=np.float32)
    np.testing.assert_array_equal(
        frames.slant_range_m(e, r, big_r),
        frames.slant_range_m(e.astype(float), r.astype(float), big_r.astype(float)),
    )
