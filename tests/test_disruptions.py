"""Tests of starmesh.disruptions: failure masks, jamming of ground-satellite links, line of
sight, and geofenced areas (checked against shapely and GeographicLib directly)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from geographiclib.geodesic import Geodesic
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from shapely.geometry import Point, Polygon

from starmesh.constants import EARTH_MEAN_RADIUS_M
from starmesh.constellation import Constellation, WalkerShell
from starmesh.disruptions import (
    Circle,
    FailurePlan,
    Geofence,
    GslQuality,
    Jammer,
    gsl_failed,
    gsl_quality,
    isl_outage_by_endpoints,
    line_of_sight,
    outage_of,
    plane_outage,
    random_outage,
    shell_plane_of_sats,
)
from starmesh.errors import ScenarioError
from starmesh.frames import ecef_to_geodetic, geodetic_to_ecef, up_vectors
from starmesh.linkbudget import starlink_ka_feeder, starlink_ku_user
from starmesh.topology import plus_grid_edges

ONE_MM = 1e-3
KU_DOWN_HZ = 11.7e9
KU_UP_HZ = 14.25e9


def one_line(exc: pytest.ExceptionInfo[ScenarioError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# --------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------


def small_constellation() -> Constellation:
    shells = [
        WalkerShell("a", 4, 5, 1, 550e3, 53.0),
        WalkerShell("b", 3, 4, 1, 570e3, 70.0),
    ]
    return Constellation.from_shells("two", shells, epoch="2025-03-01T00:00:00Z")


def test_random_outage_deterministic_by_seed() -> None:
    a = random_outage(1584, 0.1, seed=42)
    b = random_outage(1584, 0.1, seed=42)
    c = random_outage(1584, 0.1, seed=43)
    assert np.array_equal(a.idx, b.idx)
    assert not np.array_equal(a.idx, c.idx)
    g1 = random_outage(1584, 0.1, seed=np.random.default_rng(42))
    assert np.array_equal(a.idx, g1.idx)
    plan_a = FailurePlan(1584, np.zeros((0, 2), np.int64), 0, sats=(a,))
    plan_b = FailurePlan(1584, np.zeros((0, 2), np.int64), 0, sats=(b,))
    t = np.arange(0.0, 60.0, 15.0)
    assert np.array_equal(plan_a.sat_failed(t), plan_b.sat_failed(t))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 5000), fraction=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_random_outage_count_is_rounded_fraction(n: int, fraction: float, seed: int) -> None:
    o = random_outage(n, fraction, seed=seed)
    assert o.idx.size == math.floor(fraction * n + 0.5)
    assert np.unique(o.idx).size == o.idx.size
    assert o.idx.size == 0 or (o.idx.min() >= 0 and o.idx.max() < n)


def test_masks_respect_windows() -> None:
    sats = (
        outage_of([1, 3], 6, start_s=30.0, end_s=60.0),
        outage_of([5], 6),  # the whole run
    )
    sites = (outage_of([0], 2, what="site", start_s=45.0),)
    plan = FailurePlan(6, np.array([[0, 1], [2, 3], [4, 5]]), 2, sats=sats, sites=sites)
    t = np.array([0.0, 29.999, 30.0, 59.999, 60.0, 1e6])
    sf = plan.sat_failed(t)
    assert sf.shape == (6, 6) and sf.dtype == np.bool_
    in_window = (t >= 30.0) & (t < 60.0)
    assert np.array_equal(sf[:, 1], in_window) and np.array_equal(sf[:, 3], in_window)
    assert sf[:, 5].all() and not sf[:, [0, 2, 4]].any()
    # ISLs go down with either endpoint.
    isl = plan.isl_failed(t)
    assert np.array_equal(isl[:, 0], in_window) and np.array_equal(isl[:, 1], in_window)
    assert isl[:, 2].all()
    site = plan.site_failed(t)
    assert np.array_equal(site[:, 0], t >= 45.0) and not site[:, 1].any()
    # GSL candidates to failed satellites or from failed sites are down.
    down = gsl_failed(
        [0, 2, 2, 5],
        [1, 1, 0, 0],
        [0, 3, 0, 2],
        sat_failed=sf,
        site_failed=site,
        site_denied=np.array([False, False]),
    )
    assert down.tolist() == [False, True, False, True]


def test_plane_and_isl_outages() -> None:
    con = small_constellation()
    shell_idx, plane_idx = shell_plane_of_sats(con)
    assert shell_idx.tolist() == [0] * 20 + [1] * 12
    o = plane_outage(shell_idx, plane_idx, shell=0, planes=[1, 3])
    assert o.idx.tolist() == list(range(5, 10)) + list(range(15, 20))
    assert plane_outage(shell_idx, plane_idx, shell=1).idx.tolist() == list(range(20, 32))
    edges = plus_grid_edges(con)
    a, b = int(edges[7, 0]), int(edges[7, 1])
    assert isl_outage_by_endpoints(edges, [[b, a]]).idx.tolist() == [7]
    with pytest.raises(ScenarioError, match="no ISL between satellites 0 and 31") as exc:
        isl_outage_by_endpoints(edges, [[31, 0]])
    one_line(exc)
    with pytest.raises(ScenarioError, match="shell 0 has no plane 4") as exc:
        plane_outage(shell_idx, plane_idx, shell=0, planes=[4])
    one_line(exc)


def test_failure_errors_are_one_line() -> None:
    with pytest.raises(ScenarioError, match=r"satellite index 6 out of range: there are 6") as exc:
        outage_of([6], 6)
    one_line(exc)
    with pytest.raises(ScenarioError, match=r"must be in \[0, 1\], got 1.5") as exc:
        random_outage(10, 1.5, seed=1)
    one_line(exc)
    with pytest.raises(ScenarioError, match="is empty: give start_s < end_s") as exc:
        outage_of([0], 6, start_s=60.0, end_s=60.0)
    one_line(exc)
    with pytest.raises(ScenarioError, match="site index 2 out of range"):
        FailurePlan(6, np.zeros((0, 2), np.int64), 2, sites=(outage_of([2], 3, what="site"),))


# --------------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------------

SITE_LAT, SITE_LON = 50.0, 36.0


def enu_basis(lat_deg: float, lon_deg: float) -> tuple[NDArray[np.float64], ...]:
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    east = np.array([-math.sin(lon), math.cos(lon), 0.0])
    north = np.array(
        [-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon), math.cos(lat)]
    )
    up = up_vectors(lat, lon)
    return east, north, up


def direction(az_deg: float, el_deg: float) -> NDArray[np.float64]:
    e, n, u = enu_basis(SITE_LAT, SITE_LON)
    az, el = math.radians(az_deg), math.radians(el_deg)
    return math.cos(el) * (math.sin(az) * e + math.cos(az) * n) + math.sin(el) * u


def site_arrays() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r = geodetic_to_ecef(math.radians(SITE_LAT), math.radians(SITE_LON), 0.0).reshape(1, 3)
    up = up_vectors(math.radians(SITE_LAT), math.radians(SITE_LON)).reshape(1, 3)
    return r, up


def satellites_in_view() -> NDArray[np.float64]:
    """Five satellites 550 km up, seen from the site at various elevations: shape (1, 5, 3)."""
    r_site, _ = site_arrays()
    pts = []
    for az, el in [(0.0, 90.0), (40.0, 60.0), (150.0, 45.0), (250.0, 35.0), (300.0, 26.0)]:
        # Slant range to 550 km altitude at this elevation over the local sphere.
        big_r = float(np.linalg.norm(r_site))
        e = math.radians(el)
        rng = math.sqrt((big_r + 550e3) ** 2 - (big_r * math.cos(e)) ** 2) - big_r * math.sin(e)
        pts.append(r_site[0] + rng * direction(az, el))
    return np.array(pts).reshape(1, 5, 3)


def jammer_at(
    r_ecef: NDArray[np.float64],
    eirp_dbw: float,
    band: str = "downlink",
    *,
    start_s: float = -math.inf,
    end_s: float = math.inf,
) -> Jammer:
    lat, lon, h = ecef_to_geodetic(r_ecef)
    freq = KU_DOWN_HZ if band == "downlink" else KU_UP_HZ
    return Jammer(
        math.degrees(float(lat)),
        math.degrees(float(lon)),
        float(h),
        eirp_dbw,
        band,  # type: ignore[arg-type]
        500e6,
        freq,
        start_s,
        end_s,
    )


def quality(jammers: list[Jammer]) -> GslQuality:
    r_site, up = site_arrays()
    r_sat = satellites_in_view()
    n = r_sat.shape[1]
    return gsl_quality(
        np.zeros(n, np.int32),
        np.zeros(n, np.int32),
        np.arange(n, dtype=np.int32),
        r_sat,
        r_site,
        up,
        starlink_ku_user(),
        jammers=jammers,
        t_s=np.array([100.0]),
    )


# --------------------------------------------------------------------------------------------
# Line of sight
# --------------------------------------------------------------------------------------------


def test_line_of_sight_radio_horizon() -> None:
    # A 30 m mast sees ground level out to sqrt(2 k R h) = 22.58 km (k = 4/3, R = 6,371 km).
    horizon_m = math.sqrt(2 * (4 / 3) * EARTH_MEAN_RADIUS_M * 30.0)
    assert abs(horizon_m - 22_576.0) < 1.0
    mast = geodetic_to_ecef(math.radians(SITE_LAT), math.radians(SITE_LON), 30.0)
    for frac, want in [(0.9, True), (1.1, False)]:
        # A ground point at great-circle distance frac * horizon towards the north-east.
        g = Geodesic.WGS84.Direct(SITE_LAT, SITE_LON, 45.0, frac * horizon_m)
        ground = geodetic_to_ecef(math.radians(g["lat2"]), math.radians(g["lon2"]), 0.0)
        assert bool(line_of_sight(mast, ground)) is want
        assert bool(line_of_sight(ground, mast)) is want
    # Two stations at ground level never see each other; a satellite overhead is seen, one
    # on the far side of the Earth is not; NaN is never in sight.
    here = geodetic_to_ecef(math.radians(SITE_LAT), math.radians(SITE_LON), 0.0)
    there = geodetic_to_ecef(math.radians(SITE_LAT), math.radians(SITE_LON + 0.1), 0.0)
    overhead = geodetic_to_ecef(math.radians(SITE_LAT), math.radians(SITE_LON), 550e3)
    antipode = geodetic_to_ecef(math.radians(-SITE_LAT), math.radians(SITE_LON - 180), 550e3)
    got = line_of_sight(here, np.stack([there, overhead, antipode, np.full(3, np.nan)]))
    assert got.tolist() == [False, True, False, False]


# --------------------------------------------------------------------------------------------
# Jamming
# --------------------------------------------------------------------------------------------


def test_jammer_beyond_line_of_sight_changes_nothing() -> None:
    base = quality([])
    r_site, _ = site_arrays()
    far = [
        # Other side of the Earth, both bands, huge power.
        Jammer(-50.0, -144.0, 0.0, 120.0, "downlink", 2e9, KU_DOWN_HZ, name="antipode-d"),
        Jammer(-50.0, -144.0, 0.0, 120.0, "uplink", 2e9, KU_UP_HZ, name="antipode-u"),
        # Ground level 50 km away: below the terminal's horizon.
        jammer_at(r_site[0] + 50e3 * direction(90.0, -0.3), 90.0),
        # In sight but off the air (window) or out of band.
        jammer_at(r_site[0] + 5e3 * direction(0.0, 10.0), 90.0, start_s=0.0, end_s=100.0),
        Jammer(SITE_LAT, SITE_LON + 0.05, 100.0, 90.0, "downlink", 100e6, 20e9, name="ka"),
    ]
    got = quality(far)
    for a, b in ((base.downlink, got.downlink), (base.uplink, got.uplink)):
        assert np.array_equal(a.capacity_bps, b.capacity_bps)
        assert np.array_equal(a.sinr_db, b.sinr_db)
        assert np.array_equal(a.modcod_idx, b.modcod_idx)
    assert not got.interference_down_w.any() and not got.interference_up_w.any()
    assert base.up.all()


def test_low_elevation_jammer_is_attenuated_by_the_terminal() -> None:
    # Same distance and power: on the horizon (far side lobes of an up-facing panel) versus
    # along the line to the overhead satellite (its main lobe).
    r_site, _ = site_arrays()
    horizon = quality([jammer_at(r_site[0] + 3e3 * direction(90.0, 0.5), 30.0)])
    beam = quality([jammer_at(r_site[0] + 3e3 * direction(0.0, 89.999), 30.0)])
    ratio_db = 10 * np.log10(beam.interference_down_w[0] / horizon.interference_down_w[0])
    assert ratio_db > 40.0
    # A main-lobe jammer of that power takes the link down; the uplink is untouched.
    assert beam.downlink.capacity_bps[0] == 0.0
    assert np.array_equal(beam.uplink.capacity_bps, quality([]).uplink.capacity_bps)


def test_uplink_jammer_near_the_terminal_hurts_more_than_far_away() -> None:
    r_site, _ = site_arrays()
    near = quality([jammer_at(r_site[0] + 2e3 * direction(10.0, 1.0), 50.0, "uplink")])
    g = Geodesic.WGS84.Direct(SITE_LAT, SITE_LON, 200.0, 800e3)
    far = quality([Jammer(g["lat2"], g["lon2"], 0.0, 50.0, "uplink", 500e6, KU_UP_HZ)])
    assert np.all(near.interference_up_w > 0.0)
    # The overhead satellite's beam points at the terminal: a jammer 2 km from it sits in the
    # main lobe, one 800 km away in the side lobes.
    assert near.interference_up_w[0] > 1e3 * far.interference_up_w[0]
    assert np.all(near.uplink.sinr_db <= quality([]).uplink.sinr_db)


@settings(max_examples=60, deadline=None)
@given(
    az=st.floats(0.0, 360.0),
    el=st.floats(-1.0, 89.0),
    dist_km=st.floats(0.5, 300.0),
    eirp=st.floats(-20.0, 80.0),
    extra_db=st.floats(0.0, 40.0),
    band=st.sampled_from(["downlink", "uplink"]),
)
def test_sinr_never_rises_with_jammer_power(
    az: float, el: float, dist_km: float, eirp: float, extra_db: float, band: str
) -> None:
    r_site, _ = site_arrays()
    r = r_site[0] + dist_km * 1e3 * direction(az, el)
    lo = quality([jammer_at(r, eirp, band)])
    hi = quality([jammer_at(r, eirp + extra_db, band)])
    for a, b in ((lo.downlink, hi.downlink), (lo.uplink, hi.uplink)):
        assert np.all(b.sinr_db <= a.sinr_db)
        assert np.all(b.capacity_bps <= a.capacity_bps)


@settings(max_examples=60, deadline=None)
@given(
    az=st.floats(0.0, 360.0),
    el=st.floats(1.0, 89.0),
    dist_km=st.floats(0.5, 300.0),
    factor=st.floats(1.01, 20.0),
    eirp=st.floats(0.0, 80.0),
)
def test_sinr_never_falls_with_jammer_distance(
    az: float, el: float, dist_km: float, factor: float, eirp: float
) -> None:
    # Moving a downlink jammer further out along the same ray from the terminal keeps its
    # direction (hence the antenna gain) and only adds path loss.
    r_site, _ = site_arrays()
    u = direction(az, el)
    near = quality([jammer_at(r_site[0] + dist_km * 1e3 * u, eirp)])
    far = quality([jammer_at(r_site[0] + factor * dist_km * 1e3 * u, eirp)])
    assert np.all(far.interference_down_w <= near.interference_down_w)
    assert np.all(far.downlink.sinr_db >= near.downlink.sinr_db)
    assert np.all(far.downlink.capacity_bps >= near.downlink.capacity_bps)


def test_gsl_quality_profiles_per_site_and_bad_positions() -> None:
    # A terminal (Ku) and a gateway (Ka) at the same place see the same satellites with
    # different budgets; a NaN satellite position gives a down link, not an exception.
    r_site, up = site_arrays()
    r_sat = satellites_in_view()
    r_sat[0, 4] = np.nan
    sites_r = np.vstack([r_site, r_site])
    sites_up = np.vstack([up, up])
    ku, ka = starlink_ku_user(), starlink_ka_feeder()
    t = np.zeros(10, np.int32)
    g = np.repeat(np.arange(2, dtype=np.int32), 5)
    s = np.tile(np.arange(5, dtype=np.int32), 2)
    q = gsl_quality(t, g, s, r_sat, sites_r, sites_up, [ku, ka])
    only_ku = gsl_quality(t[:5], g[:5], s[:5], r_sat, r_site, up, ku)
    assert np.array_equal(q.downlink.capacity_bps[:5], only_ku.downlink.capacity_bps)
    assert q.downlink.capacity_bps[[4, 9]].tolist() == [0.0, 0.0]
    assert q.up[[0, 1, 2, 3, 5, 6, 7, 8]].all() and not q.up[[4, 9]].any()
    assert not np.array_equal(q.downlink.cnr_db[5:9], q.downlink.cnr_db[:4])
    with pytest.raises(ValueError, match="conflicting sizes: 3 link profiles, 2 sites"):
        gsl_quality(t, g, s, r_sat, sites_r, sites_up, [ku, ka, ku])
    with pytest.raises(ValueError, match="needs t_s"):
        gsl_quality(t, g, s, r_sat, sites_r, sites_up, ku, jammers=[jammer_at(r_site[0], 0.0)])
    empty = gsl_quality(t[:0], g[:0], s[:0], r_sat, sites_r, sites_up, ku)
    assert empty.downlink.capacity_bps.shape == (0,)


def test_jammer_validation() -> None:
    ok = Jammer(50.0, 36.0, 0.0, -10.0, "downlink", 250e6, 11.7e9)  # 0.1 W is fine
    assert ok.eirp_dbw == -10.0
    assert (
        abs(Jammer.from_power_w(50.0, 36.0, 0.0, 100.0, 10.0, "uplink", 1e6, 14e9).eirp_dbw - 30.0)
        < 1e-12
    )
    cases: list[tuple[dict[str, Any], str]] = [
        (dict(lat_deg=95.0), r"lat_deg must be in \[-90, 90\], got 95.0"),
        (dict(lon_deg=200.0), r"lon_deg must be in \[-180, 180\], got 200.0"),
        (dict(eirp_dbw=math.nan), "eirp_dbw must be finite, got nan"),
        (dict(bandwidth_hz=0.0), "bandwidth_hz must be > 0 Hz"),
        (dict(band="sideways"), "band must be 'downlink'"),
        (dict(start_s=10.0, end_s=5.0), "is empty"),
    ]
    base: dict[str, Any] = dict(
        lat_deg=50.0,
        lon_deg=36.0,
        alt_m=0.0,
        eirp_dbw=40.0,
        band="downlink",
        bandwidth_hz=250e6,
        center_freq_hz=11.7e9,
        name="j1",
    )
    for change, pattern in cases:
        with pytest.raises(ScenarioError, match=pattern) as exc:
            Jammer(**{**base, **change})
        assert one_line(exc).startswith("disruptions.jammers['j1']: ")
    with pytest.raises(ScenarioError, match=r"power_w must be > 0 W, got -5\.0") as exc:
        Jammer.from_power_w(50.0, 36.0, 0.0, -5.0, 0.0, "downlink", 1e6, 11.7e9)
    one_line(exc)
    assert abs(ok.overlap(11.7e9, 240e6) - 0.96) < 1e-12
    assert ok.overlap(14e9, 60e6) == 0.0


# --------------------------------------------------------------------------------------------
# Geofencing
# --------------------------------------------------------------------------------------------

#: A concave (L-shaped) area around Kharkiv, [lon, lat].
L_SHAPE = [
    [35.5, 49.5],
    [37.0, 49.5],
    [37.0, 50.0],
    [36.2, 50.0],
    [36.2, 50.6],
    [35.5, 50.6],
    [35.5, 49.5],
]


def test_polygon_membership_matches_shapely() -> None:
    fence = Geofence.from_geojson({"type": "Polygon", "coordinates": [L_SHAPE]})
    poly = Polygon(L_SHAPE)
    rng = np.random.default_rng(5)
    lon = rng.uniform(35.0, 37.5, 2000)
    lat = rng.uniform(49.0, 51.0, 2000)
    want = np.array([poly.contains(Point(x, y)) for x, y in zip(lon, lat, strict=True)])
    got = fence.denied_sites(lat, lon)
    assert np.array_equal(got, want)
    assert 0 < want.sum() < want.size
    # A vertex (on the boundary) counts as inside; NaN as outside.
    assert fence.denied_sites([49.5, np.nan], [35.5, 36.0]).tolist() == [True, False]


def test_circle_radius_is_geodesic() -> None:
    radius_km = 75.0
    fence = Geofence(circles=(Circle(49.99, 36.23, radius_km),))
    az = np.linspace(0.0, 360.0, 37)[:-1]
    inside: list[tuple[float, float]] = []
    outside: list[tuple[float, float]] = []
    for a in az:
        for scale, sink in ((1 - 1e-6, inside), (1 + 1e-6, outside)):
            g = Geodesic.WGS84.Direct(49.99, 36.23, float(a), radius_km * 1e3 * scale)
            sink.append((g["lat2"], g["lon2"]))
    lat_in, lon_in = np.array(inside).T
    lat_out, lon_out = np.array(outside).T
    assert fence.denied_sites(lat_in, lon_in).all()
    assert not fence.denied_sites(lat_out, lon_out).any()


def test_geojson_feature_collection_with_circle() -> None:
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [L_SHAPE]},
            },
            {
                "type": "Feature",
                "properties": {"radius_km": 20, "name": "Odesa port"},
                "geometry": {"type": "Point", "coordinates": [30.73, 46.48]},
            },
        ],
    }
    fence = Geofence.from_geojson(fc, name="front")
    assert len(fence.polygons) == 1 and fence.circles[0].radius_km == 20.0
    got = fence.denied_sites([50.3, 46.5, 50.45], [35.8, 30.75, 30.52])
    assert got.tolist() == [True, True, False]  # Kharkiv area, Odesa port, Kyiv
    both = fence | Geofence(circles=(Circle(50.45, 30.52, 10.0),))
    assert both.denied_sites([50.45], [30.52]).tolist() == [True]


def test_geojson_errors_are_one_line_and_name_the_fix() -> None:
    square = [[30.0, 50.0], [31.0, 50.0], [31.0, 51.0], [30.0, 51.0]]
    cases = [
        ({"type": "Polygon", "coordinates": [[*square, [30.0, 50.5]]]}, "not closed"),
        ({"type": "Polygon", "coordinates": [[*square[:2], square[0]]]}, "at least 4 positions"),
        (
            {
                "type": "Polygon",
                "coordinates": [[[30, 50], [31, 51], [31, 50], [30, 51], [30, 50]]],
            },
            "polygon is not valid \\(Self-intersection",
        ),
        (
            {"type": "Polygon", "coordinates": [[[50, 30], [51, 100], [51, 31], [50, 30]]]},
            r"GeoJSON positions are \[longitude, latitude\]",
        ),
        ({"type": "LineString", "coordinates": square}, "unsupported GeoJSON type 'LineString'"),
        ({"type": "Point", "coordinates": [30.0, 50.0]}, "a bare Point has no area"),
        (
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Point", "coordinates": [30, 50]},
            },
            "needs properties.radius_km",
        ),
        ("{not json", "not valid GeoJSON text"),
    ]
    for data, pattern in cases:
        with pytest.raises(ScenarioError, match=pattern) as exc:
            Geofence.from_geojson(data, name="g")  # type: ignore[arg-type]
        assert one_line(exc).startswith("disruptions.geofence['g']")
    with pytest.raises(ScenarioError, match=r"radius_km must be in \(0, 20000\] km, got -3") as exc:
        Circle(50.0, 30.0, -3.0)
    one_line(exc)
    with pytest.raises(ScenarioError, match=r"lat_deg must be in \[-90, 90\]"):
        Circle(91.0, 30.0, 3.0)


def _shapely_covers(
    polys: list[Polygon], lat: NDArray[np.float64], lon: NDArray[np.float64]
) -> Any:
    """Reference membership straight from shapely: inside or on the boundary of any polygon."""
    return np.array(
        [any(p.covers(Point(x, y)) for p in polys) for x, y in zip(lon, lat, strict=True)]
    )


def test_multipolygon_and_several_polygons_per_feature_match_shapely() -> None:
    # Two disjoint squares, the first with a square hole, as one MultiPolygon; a third area as a
    # Polygon in a second feature, and a fourth in a GeometryCollection inside a third feature.
    outer = [[30.0, 50.0], [32.0, 50.0], [32.0, 52.0], [30.0, 52.0], [30.0, 50.0]]
    hole = [[30.5, 50.5], [31.5, 50.5], [31.5, 51.5], [30.5, 51.5], [30.5, 50.5]]
    east = [[34.0, 50.0], [35.0, 50.0], [35.0, 51.0], [34.0, 50.0]]
    north = [[30.0, 53.0], [31.0, 53.0], [31.0, 54.0], [30.0, 54.0], [30.0, 53.0]]
    south = [[33.0, 47.0], [34.0, 47.0], [33.5, 48.0], [33.0, 47.0]]
    west = [[29.6, 47.0], [29.9, 47.0], [29.9, 49.0], [29.6, 47.0]]
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": None,
                "geometry": {"type": "MultiPolygon", "coordinates": [[outer, hole], [east]]},
            },
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [north]},
            },
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "GeometryCollection",
                    "geometries": [
                        {"type": "Polygon", "coordinates": [south]},
                        {"type": "Polygon", "coordinates": [west]},
                    ],
                },
            },
        ],
    }
    fence = Geofence.from_geojson(fc)
    assert len(fence.polygons) == 5 and not fence.circles
    ref = [Polygon(outer, [hole]), Polygon(east), Polygon(north), Polygon(south), Polygon(west)]
    for got_p, want_p in zip(fence.polygons, ref, strict=True):
        assert got_p.equals(want_p)
    rng = np.random.default_rng(17)
    lon = rng.uniform(29.5, 35.5, 4000)
    lat = rng.uniform(46.5, 54.5, 4000)
    want = _shapely_covers(ref, lat, lon)
    assert np.array_equal(fence.denied_sites(lat, lon), want)
    # Every area and the hole hold some of the points.
    for p in [*ref, Polygon(hole)]:
        assert _shapely_covers([p], lat, lon).sum() > 10
    # Hand-solved: the hole's centre is free, its edge and the areas' centres are denied.
    pts_lat = [51.0, 50.5, 51.0, 50.25, 53.5, 47.4, 51.0]
    pts_lon = [31.0, 31.0, 30.25, 34.75, 30.5, 33.5, 33.0]
    assert fence.denied_sites(pts_lat, pts_lon).tolist() == [
        False,
        True,
        True,
        True,
        True,
        True,
        False,
    ]


def test_geojson_accepts_the_range_bounds_and_altitudes() -> None:
    # Longitudes exactly +-180 and latitudes exactly +-90 are valid GeoJSON positions; a
    # third number (altitude, RFC 7946 3.1.1) is ignored.
    west = [[-180.0, -90.0], [-170.0, -90.0], [-170.0, 90.0], [-180.0, 90.0], [-180.0, -90.0]]
    east = [[170.0, 0.0, 5.0], [180.0, 0.0, 5.0], [180.0, 10.0, 5.0], [170.0, 0.0, 5.0]]
    fence = Geofence.from_geojson({"type": "MultiPolygon", "coordinates": [[west], [east]]})
    assert fence.polygons[0].equals(Polygon(west))
    assert fence.polygons[1].equals(Polygon([p[:2] for p in east]))
    got = fence.denied_sites([0.0, 89.0, 5.0, 5.0, 5.0], [-175.0, -180.0, 180.0, 179.0, 171.0])
    assert got.tolist() == [True, True, True, True, False]
    circle = Geofence(circles=(Circle(-90.0, 180.0, 20_000.0, name="pole"),))
    assert circle.circles[0].lon_deg == 180.0 and circle.circles[0].radius_km == 20_000.0
    # The whole globe but the far end of the meridian (20,003.93 km pole to pole, WGS84).
    assert circle.denied_sites([-89.0, 89.0, 89.99], [0.0, 0.0, 0.0]).tolist() == [
        True,
        True,
        False,
    ]
    # WGS84 quarter meridian: 10,001.966 km from the south pole to the equator (geographiclib);
    # 0.1 deg of latitude there is 11.06 km.
    quarter = Geofence(circles=(Circle(-90.0, 180.0, 10_000.0),))
    assert quarter.denied_sites([-0.1, 0.1], [0.0, 0.0]).tolist() == [True, False]
    assert Circle(0.0, -180.0, 1.0).lon_deg == -180.0


def test_geojson_position_and_polygon_errors() -> None:
    sq = [[30.0, 50.0], [31.0, 50.0], [31.0, 51.0], [30.0, 51.0], [30.0, 50.0]]
    cases: list[tuple[Any, str]] = [
        ({"type": "Polygon", "coordinates": [[*sq[:4], [180.5, 50.0], sq[0]]]}, "out of range"),
        ({"type": "Polygon", "coordinates": [[*sq[:4], [-180.5, 50.0], sq[0]]]}, "out of range"),
        ({"type": "Polygon", "coordinates": [[*sq[:4], [30.0, 90.5], sq[0]]]}, "out of range"),
        ({"type": "Polygon", "coordinates": [[*sq[:4], [30.0, -90.5], sq[0]]]}, "out of range"),
        (
            {"type": "Polygon", "coordinates": [[*sq[:4], [30.0], sq[0]]]},
            r"\[longitude, latitude\], got \[30.0\]",
        ),
        (
            {"type": "Polygon", "coordinates": [[*sq[:4], [1, 2, 3, 4], sq[0]]]},
            "must be \\[longitude",
        ),
        ({"type": "Polygon", "coordinates": [[*sq[:4], "ab", sq[0]]]}, "must be \\[longitude"),
        ({"type": "Polygon", "coordinates": [[*sq[:4], ["a", 1], sq[0]]]}, "two numbers"),
        ({"type": "Polygon", "coordinates": [[*sq[:4], [math.nan, 1], sq[0]]]}, "is not finite"),
        ({"type": "Polygon", "coordinates": [[*sq[:4], [1, math.inf], sq[0]]]}, "is not finite"),
        ({"type": "Polygon", "coordinates": []}, "must be a list of rings, got \\[\\]"),
        ({"type": "Polygon", "coordinates": "x"}, "must be a list of rings"),
        ({"type": "Polygon", "coordinates": [5]}, "at least 4 positions .*got 5"),
        ({"type": "MultiPolygon", "coordinates": 7}, "must be a list of polygons, got 7"),
        ({"type": "MultiPolygon", "coordinates": [[sq], [[*sq[:2], sq[0]]]]}, "at least 4"),
        ([1, 2], "expected a GeoJSON object with a 'type'"),
        ({"coordinates": []}, "expected a GeoJSON object with a 'type'"),
    ]
    for data, pattern in cases:
        with pytest.raises(ScenarioError, match=pattern) as exc:
            Geofence.from_geojson(data, name="g")
        assert one_line(exc).startswith("disruptions.geofence['g']")
    # The message points at the offending position.
    with pytest.raises(ScenarioError, match=r"\.coordinates\[1\]\.coordinates\[0\]\[2\]"):
        Geofence.from_geojson(
            {"type": "MultiPolygon", "coordinates": [[sq], [[*sq[:2], [0, 95], *sq[3:]]]]}
        )
    for bad in (20_000.5, 0.0, math.nan, "far"):
        with pytest.raises(ScenarioError, match="radius_km must be in"):
            Circle(50.0, 30.0, bad)  # type: ignore[arg-type]
    for lat, lon in ((90.5, 0.0), (-90.5, 0.0), (0.0, 180.5), (0.0, -180.5)):
        with pytest.raises(ScenarioError, match="must be in"):
            Circle(lat, lon, 1.0)
    with pytest.raises(ScenarioError, match="must be numbers"):
        Circle("north", 30.0, 1.0)  # type: ignore[arg-type]


def test_empty_geofence_and_union_names() -> None:
    empty = Geofence()
    assert empty.denied_sites([0.0, 10.0], [0.0, 20.0]).tolist() == [False, False]
    assert Geofence.from_geojson('{"type": "FeatureCollection", "features": []}').polygons == ()
    a = Geofence(circles=(Circle(0.0, 0.0, 100.0),), name="a")
    b = Geofence.from_geojson(
        '{"type": "Polygon", "coordinates": [[[10, 10], [11, 10], [11, 11], [10, 10]]]}', name="b"
    )
    both = a | b
    assert both.name == "a|b" and len(both.polygons) == 1 and len(both.circles) == 1
    assert both.denied_sites([0.0, 10.2, 5.0], [0.0, 10.5, 5.0]).tolist() == [True, True, False]
    # A named point feature keeps its name; an unnamed one is named after where it is.
    fc = {
        "type": "Feature",
        "properties": {"radius_km": 5},
        "geometry": {"type": "Point", "coordinates": [30.0, 50.0, 100.0]},
    }
    c = Geofence.from_geojson(fc, name="g").circles[0]
    assert (c.lat_deg, c.lon_deg, c.name) == (50.0, 30.0, "disruptions.geofence['g']")


def test_geofence_messages_locations_and_stored_types() -> None:
    sq = [[30.0, 50.0], [31.0, 50.0], [31.0, 51.0], [30.0, 51.0], [30.0, 50.0]]
    g = r"^disruptions\.geofence\['g'\]"
    cases: list[tuple[Any, str]] = [
        (
            {"type": "Polygon", "coordinates": [[*sq[:4], [30.0, 50.5]]]},
            g + r"\.coordinates\[0\]: polygon ring is not closed: first position \[30\.0, 50\.0\] "
            r"!= last \[30\.0, 50\.5\]; repeat the first position at the end \(GeoJSON, RFC 7946 "
            r"3\.1\.6\)$",
        ),
        (
            {"type": "Polygon", "coordinates": [sq[:3]]},
            g + r"\.coordinates\[0\]: a polygon ring needs at least 4 positions \(a triangle plus "
            r"the closing repeat of the first\), got 3$",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[30, 50], [31, 51], [31, 50], [30, 51], [30, 50]]],
            },
            r"its edges must not cross and holes must lie inside the outer ring; reorder the "
            r"vertices \(or repair it with shapely\.make_valid\)$",
        ),
        (
            {"type": "Polygon", "coordinates": [[[50, 30], [51, 100], [51, 31], [50, 30]]]},
            r"GeoJSON positions are \[longitude, latitude\] in degrees, longitude in "
            r"\[-180, 180\], latitude in \[-90, 90\]; are they swapped\?$",
        ),
        (
            {"type": "Point", "coordinates": [30.0, 50.0]},
            g + r": a bare Point has no area: wrap it in a Feature with properties\.radius_km, or "
            r"use a circle with lat_deg, lon_deg and radius_km$",
        ),
        (
            {"type": "LineString", "coordinates": sq},
            r"service-denied areas are Polygon, MultiPolygon or Point features with "
            r"properties\.radius_km$",
        ),
        (
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Point", "coordinates": [1, 2]},
            },
            g + r": a Point feature denotes a circle and needs properties\.radius_km, e\.g\. "
            r'\{"radius_km": 50\}$',
        ),
        (
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [sq]}},
                    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [sq[:3]]}},
                ],
            },
            g + r"\.features\[1\]\.geometry\.coordinates\[0\]: a polygon ring needs",
        ),
        (
            {
                "type": "GeometryCollection",
                "geometries": [{"type": "Polygon", "coordinates": [[*sq[:4], [0, 95], sq[0]]]}],
            },
            g + r"\.geometries\[0\]\.coordinates\[0\]\[4\]: position \[0, 95\] is out of range",
        ),
        (
            {
                "type": "Feature",
                "properties": {"radius_km": 5},
                "geometry": {"type": "Point", "coordinates": [0, 95]},
            },
            g + r"\.geometry\.coordinates: position \[0, 95\] is out of range",
        ),
    ]
    for data, pattern in cases:
        with pytest.raises(ScenarioError, match=pattern):
            Geofence.from_geojson(data, name="g")
    with pytest.raises(ScenarioError, match=r"^disruptions\.geofence\['c'\]: lat_deg must be in"):
        Circle(91.0, 0.0, 1.0, name="c")
    with pytest.raises(ScenarioError, match=r"^disruptions\.geofence\['c'\]: radius_km must be in"):
        Circle(0.0, 0.0, 0.0, name="c")
    # Collections without members are empty, not errors.
    for empty in ({"type": "FeatureCollection"}, {"type": "GeometryCollection"}):
        fence = Geofence.from_geojson(empty)
        assert fence.polygons == () and fence.circles == () and fence.name == "geofence"
    # Several circles in one collection, each with its name; numbers stored as floats.
    two = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"radius_km": 20, "name": "Odesa port"},
                "geometry": {"type": "Point", "coordinates": [30.73, 46.48]},
            },
            {
                "type": "Feature",
                "properties": {"radius_km": 10},
                "geometry": {"type": "Point", "coordinates": [30, 50]},
            },
        ],
    }
    circles = Geofence.from_geojson(two).circles
    assert [c.name for c in circles] == [
        "Odesa port",
        "disruptions.geofence['geofence'].features[1]",
    ]
    c = Circle(50, 30, 10)  # type: ignore[arg-type]
    assert all(type(v) is float for v in (c.lat_deg, c.lon_deg, c.radius_km))
    assert c.lat_deg == 50.0 and c.lon_deg == 30.0 and c.radius_km == 10.0
    # Lists given to the constructor are kept as tuples (so fences can be joined).
    fence = Geofence(polygons=[Polygon(sq)], circles=[c])  # type: ignore[arg-type]
    assert isinstance(fence.polygons, tuple) and isinstance(fence.circles, tuple)
    assert len((fence | fence).polygons) == 2
    # One latitude against many longitudes and the other way round; NaN is outside (no warning).
    assert fence.denied_sites(50.5, [30.5, 35.0]).tolist() == [True, False]
    assert fence.denied_sites([50.5, 55.0], 30.5).tolist() == [True, False]
    assert fence.denied_sites([np.nan, 50.0], [30.0, np.nan]).tolist() == [False, False]


def test_outage_fields_messages_and_overlapping_windows() -> None:
    f = r"^disruptions\.failures"
    with pytest.raises(ScenarioError, match=f + r"\['x'\]: time window \[start_s, end_s\)"):
        outage_of([0], 6, start_s=5.0, end_s=5.0, label="x")
    with pytest.raises(ScenarioError, match=f + r": time window"):
        outage_of([0], 6, start_s=5.0, end_s=5.0)
    with pytest.raises(ScenarioError, match=r"^w: site indices must be integers, got "
                       r"array\(\[0\.5, 1\.5, 2\.5\]\)$"):  # fmt: skip
        outage_of([0.5, 1.5, 2.5, 3.5], 6, what="site", where="w")
    with pytest.raises(ScenarioError, match=r"^w: site index -1 out of range: there are 3 sites "
                       r"\(0 \.\. 2\)$"):  # fmt: skip
        outage_of([[0, -1]], 3, what="site", where="w")
    o = outage_of([[3, 1], [1, 2]], 6, start_s=0, end_s=10, label="L")  # type: ignore[arg-type]
    assert o.idx.tolist() == [1, 2, 3] and o.idx.dtype == np.int64 and o.label == "L"
    assert not o.idx.flags.writeable
    assert type(o.start_s) is float and type(o.end_s) is float and o.end_s == 10.0
    assert outage_of(np.array([2, 0], np.int32), 3).idx.dtype == np.int64
    # The same satellite down in two separate windows: down in both, up between them.
    plan = FailurePlan(
        3,
        [[0, 1], [1, 2]],  # type: ignore[arg-type]
        1,
        sats=(
            outage_of([1], 3, start_s=0.0, end_s=10.0),
            outage_of([1], 3, start_s=20.0, end_s=30.0),
        ),
        isls=(outage_of([0], 2, what="ISL", label="cut"),),
    )
    assert plan.sat_failed([5.0, 15.0, 25.0])[:, 1].tolist() == [True, False, True]
    assert isinstance(plan.isl_edges, np.ndarray) and plan.isl_edges.shape == (2, 2)
    assert not plan.isl_edges.flags.writeable
    # ISL 0 is cut all run long; ISL 1 goes down with either of its satellites.
    assert plan.isl_failed([15.0]).tolist() == [[True, False]]
    assert plan.isl_failed([5.0]).tolist() == [[True, True]]
    # A given satellite mask is used as given: satellite 2 (ISL 1's second end) down.
    given_sf = np.array([[False, False, True]])
    assert plan.isl_failed([15.0], sat_failed=given_sf).tolist() == [[True, True]]
    for kw, want in (
        (
            {"sats": (outage_of([3], 9),)},
            f + r"\.sats: satellite index 3 out of range: there are 3 ",
        ),
        (
            {"isls": (outage_of([3], 5, label="c"),)},
            f + r"\.isls\['c'\]: ISL index 3 out of range: "
            r"there are 3 ISLs \(0 \.\. 2\)$",
        ),
        ({"sites": (outage_of([1], 2),)}, f + r"\.sites: site index 1 out of range: there are 1 "),
    ):
        with pytest.raises(ScenarioError, match=want):
            FailurePlan(3, np.array([[0, 1], [1, 2], [0, 2]]), 1, **kw)  # type: ignore[arg-type]
    # A service-denied site takes its GSLs down.
    none_down = np.zeros((1, 3), bool)
    no_site = np.zeros((1, 2), bool)
    denied = np.array([False, True])
    down = gsl_failed(
        [0, 0], [0, 1], [0, 0], sat_failed=none_down, site_failed=no_site, site_denied=denied
    )
    assert down.tolist() == [False, True] and down.dtype == np.bool_


def test_plane_and_random_outage_edges() -> None:
    f = r"^disruptions\.failures"
    sh, pl = [-1, 0, 0, 1, 1], [-1, 0, 1, 0, 1]
    with pytest.raises(ScenarioError, match=f + r": conflicting sizes: 5 shell indices, 4 plane "):
        plane_outage(sh, pl[:4], shell=0)
    with pytest.raises(ScenarioError, match=f + r": no satellite in shell 2: shells are \[0, 1\]$"):
        plane_outage(sh, pl, shell=2)
    with pytest.raises(
        ScenarioError, match=r"^w: shell 1 has no plane 2: its planes are 0 \.\. 1$"
    ):
        plane_outage(sh, pl, shell=1, planes=[2], where="w")
    o = plane_outage(sh, pl, shell=1, planes=[1], label="p", start_s=1.0, end_s=2.0)
    assert o.idx.tolist() == [4] and o.label == "p" and (o.start_s, o.end_s) == (1.0, 2.0)
    # Every element can fail: drawn without replacement, so all of them.
    for seed in range(5):
        assert random_outage(10, 1.0, seed=seed).idx.tolist() == list(range(10))
    o = random_outage(10, 0.0, seed=1, label="none")
    assert o.idx.size == 0 and o.idx.dtype == np.int64 and o.label == "none"
    with pytest.raises(ScenarioError, match=f + r": fraction of satellites must be in \[0, 1\], "
                       r"got 1\.5 \(10 % is 0\.1\)$"):  # fmt: skip
        random_outage(10, 1.5, seed=1)
    with pytest.raises(ScenarioError, match=r"^w: fraction of sites must be in"):
        random_outage(10, -0.1, seed=1, what="site", where="w")
    edges = np.array([[0, 1], [1, 2], [2, 3]])
    assert isl_outage_by_endpoints(edges, [[2, 1], [3, 2]], label="e").idx.tolist() == [1, 2]
    with pytest.raises(ScenarioError, match=r"^w: no ISL between satellites 0 and 2: list pairs "
                       r"from the run's isls\.parquet \(\+Grid links join in-plane and "
                       r"adjacent-plane neighbours only\)$"):  # fmt: skip
        isl_outage_by_endpoints(edges, [[2, 0]], where="w")
    # Unlabelled unless given a label.
    assert isl_outage_by_endpoints(edges, [[0, 1]]).label == ""
    assert random_outage(4, 0.5, seed=0).label == ""
    assert plane_outage(sh, pl, shell=0).label == ""


def _fspl_p525_db(d_m: float, f_hz: float) -> float:
    """Free-space basic transmission loss, ITU-R P.525-4 eq. (4), written out here."""
    return 20.0 * math.log10(4.0 * math.pi * d_m * f_hz / 299_792_458.0)


def _angle(u: NDArray[np.float64], v: NDArray[np.float64]) -> float:
    c = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return math.acos(max(-1.0, min(1.0, c)))


def test_jamming_power_against_a_hand_computation() -> None:
    # Received jamming power = EIRP + G_rx(off-axis, angle from the panel normal) - FSPL
    # (P.525), in W, times the share of the jammer's band inside the victim's channel.
    prof = starlink_ku_user()
    r_site, up = site_arrays()
    r_sat = satellites_in_view()[0]
    # Downlink jammer 3 km from the terminal, 2 deg off the line to satellite 2 (azimuth 150,
    # elevation 45): near the main lobe but 45 deg from the panel normal (scan loss counts).
    r_jd = r_site[0] + 3e3 * direction(152.0, 45.0)
    # Uplink jammer 20 km away, low (2 deg): seen by every satellite, off their beams.
    r_ju = r_site[0] + 20e3 * direction(300.0, 2.0)
    jd = jammer_at(r_jd, 20.0, "downlink")
    ju = jammer_at(r_ju, 45.0, "uplink")
    jd_band = (KU_DOWN_HZ, 500e6)
    got = quality([jd, ju])
    f_d, b_d = prof.downlink.frequency_hz, prof.downlink.bandwidth_hz
    f_u, b_u = prof.uplink.frequency_hz, prof.uplink.bandwidth_hz

    def share(fc: float, bw: float, f_v: float, b_v: float) -> float:
        lo, hi = max(fc - bw / 2, f_v - b_v / 2), min(fc + bw / 2, f_v + b_v / 2)
        return max(0.0, hi - lo) / bw

    ov_d = share(*jd_band, f_d, b_d)
    ov_u = share(KU_UP_HZ, 500e6, f_u, b_u)
    assert 0.0 < ov_d <= 1.0 and 0.0 < ov_u <= 1.0
    for i in range(r_sat.shape[0]):
        to_sat = r_sat[i] - r_site[0]
        to_jam = r_jd - r_site[0]
        g_rx = float(
            prof.downlink.rx_antenna.gain_dbi(_angle(to_sat, to_jam), _angle(up[0], to_jam))
        )
        level = jd.eirp_dbw + g_rx - _fspl_p525_db(float(np.linalg.norm(to_jam)), f_d)
        want_d = 10.0 ** (level / 10.0) * ov_d
        assert got.interference_down_w[i] == pytest.approx(want_d, rel=1e-9)
        sat_to_ground = r_site[0] - r_sat[i]
        sat_to_jam = r_ju - r_sat[i]
        g_sat = float(
            prof.uplink.rx_antenna.gain_dbi(
                _angle(sat_to_ground, sat_to_jam), _angle(-r_sat[i], sat_to_jam)
            )
        )
        level = ju.eirp_dbw + g_sat - _fspl_p525_db(float(np.linalg.norm(sat_to_jam)), f_u)
        assert got.interference_up_w[i] == pytest.approx(10.0 ** (level / 10.0) * ov_u, rel=1e-9)
    # The scan loss towards the downlink jammer matters here (else this test could not tell).
    g_scan = prof.downlink.rx_antenna.gain_dbi(0.035, math.radians(45.0))
    g_flat = prof.downlink.rx_antenna.gain_dbi(0.035, None)
    assert abs(float(g_scan) - float(g_flat)) > 0.5


def test_link_quality_uses_the_geometry_of_each_link() -> None:
    # The five satellites were placed at known elevations; each link's C/N is the profile's
    # budget at that distance and elevation, scanned by the terminal (90 deg - elevation from
    # its vertical) and by the satellite (the angle from its nadir), uplink the other way round.
    prof = starlink_ku_user()
    r_site, _ = site_arrays()
    r_sat = satellites_in_view()[0]
    el_deg = np.array([90.0, 60.0, 45.0, 35.0, 26.0])
    got = quality([])
    d = np.linalg.norm(r_sat - r_site[0], axis=1)
    sat_scan = np.array([_angle(-r_sat[i], r_site[0] - r_sat[i]) for i in range(5)])
    site_scan = np.radians(90.0 - el_deg)
    want_d = prof.downlink.evaluate(
        d, np.radians(el_deg), tx_normal_rad=sat_scan, rx_normal_rad=site_scan
    )
    want_u = prof.uplink.evaluate(
        d, np.radians(el_deg), tx_normal_rad=site_scan, rx_normal_rad=sat_scan
    )
    np.testing.assert_allclose(got.downlink.cnr_db, want_d.cnr_db, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.uplink.cnr_db, want_u.cnr_db, rtol=0, atol=1e-9)
    assert np.array_equal(got.downlink.modcod_idx, want_d.modcod_idx)


def test_jammer_fields_messages_and_single_link_chunks() -> None:
    where = r"^disruptions\.jammers\['j'\]: "
    base: dict[str, Any] = dict(
        lat_deg=50, lon_deg=36, alt_m=10, eirp_dbw=40, band="downlink", bandwidth_hz=1e6,
        center_freq_hz=11.7e9, start_s=0, end_s=60, name="j",
    )  # fmt: skip
    j = Jammer(**base)
    for attr in ("lat_deg", "lon_deg", "alt_m", "eirp_dbw", "start_s", "end_s"):
        assert type(getattr(j, attr)) is float, attr
    for change, pattern in (
        ({"alt_m": "high"}, where + r"alt_m must be a number, got 'high'$"),
        (
            {"eirp_dbw": math.inf},
            where + r"eirp_dbw must be finite, got inf \(a power in dBW may "
            r"be negative: -10 dBW is 0\.1 W\)$",
        ),
        ({"alt_m": math.nan}, where + r"alt_m must be finite, got nan$"),
        ({"center_freq_hz": 0.5}, None),
    ):
        if pattern is None:  # half a hertz is odd but valid
            assert Jammer(**{**base, **change}).center_freq_hz == 0.5
            continue
        with pytest.raises(ScenarioError, match=pattern):
            Jammer(**{**base, **change})
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(ScenarioError, match=where + r"power_w must be > 0 W, got .*: give the "
                           r"transmitter power in watts \(or eirp_dbw in dBW, which may be "
                           r"negative\)$"):  # fmt: skip
            Jammer.from_power_w(50.0, 36.0, 0.0, bad, 0.0, "uplink", 1e6, 14e9, name="j")
    half = Jammer.from_power_w(50.0, 36.0, 0.0, 0.5, 3.0, "uplink", 1e6, 14e9, name="j")
    assert half.name == "j" and half.eirp_dbw == pytest.approx(3.0 - 10.0 * math.log10(2.0))
    assert Jammer.from_power_w(50.0, 36.0, 0.0, 1.0, 0.0, "uplink", 1e6, 14e9).name == "jammer"
    # One link alone, and per-site profiles where the first profile serves no link: both
    # directions evaluated like the five-satellite chunk.
    r_site, up = site_arrays()
    r_sat = satellites_in_view()
    full = quality([])
    one = gsl_quality([0], [0], [2], r_sat, r_site, up, starlink_ku_user())
    assert one.downlink.cnr_db.tolist() == [full.downlink.cnr_db[2]]
    assert one.uplink.capacity_bps.tolist() == [full.uplink.capacity_bps[2]]
    two_sites = np.vstack([r_site, r_site])
    two_up = np.vstack([up, up])
    per_site = gsl_quality(
        [0, 0], [1, 1], [0, 1], r_sat, two_sites, two_up, [starlink_ka_feeder(), starlink_ku_user()]
    )
    assert np.array_equal(per_site.downlink.cnr_db, full.downlink.cnr_db[:2])
    assert np.array_equal(per_site.uplink.cnr_db, full.uplink.cnr_db[:2])
    with pytest.raises(ValueError, match=r"^conflicting sizes: 1 link profiles, 2 sites \(give one "
                       r"profile, or one per site\)$"):  # fmt: skip
        gsl_quality([0], [0], [0], r_sat, two_sites, two_up, [starlink_ku_user()])
    with pytest.raises(ValueError, match=r"^gsl_quality needs t_s, the chunk's step times, when "):
        gsl_quality([0], [0], [0], r_sat, r_site, up, starlink_ku_user(), jammers=[j])
