"""Tests of starmesh.topology: +Grid ISLs, nearest-k ISLs, GSLs and fibre, against brute force
and closed forms."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from starmesh.constants import EARTH_MEAN_RADIUS_M, WGS84_A_M
from starmesh.constellation import Constellation, Pattern, WalkerShell, preset_shells
from starmesh.frames import elevation_rad, geodetic_to_ecef, slant_range_m, up_vectors
from starmesh.propagation import Propagator
from starmesh.topology import (
    GslCandidates,
    GslRule,
    fibre_links,
    find_gsls,
    isl_lengths_m,
    max_isl_range_m,
    nearest_k_edges,
    plus_grid_edges,
)

ONE_MM = 1e-3
ONE_M = 1.0
EPOCH = datetime(2025, 3, 1, tzinfo=UTC)
#: Hypatia's Starlink 550 km ISL limit (satgenpy ``main_starlink_550.py``: 2 sqrt((R + h)^2 -
#: (R + 80 km)^2) with R = 6,378,135 m), and its GSL limit sqrt(940,700^2 + 550,000^2) m.
HYPATIA_MAX_ISL_M = 5_016_591.233
HYPATIA_MAX_GSL_M = 1_089_686.4181956202


def shell(
    planes: int,
    per: int,
    phasing: int,
    *,
    alt_km: float = 550.0,
    inc: float = 53.0,
    pattern: Pattern = "delta",
    name: str = "s",
) -> WalkerShell:
    return WalkerShell(name, planes, per, phasing, alt_km * 1e3, inc, pattern)


def edge_set(edges: NDArray[np.int32]) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in edges}


def check_edge_array(edges: NDArray[np.int32], n_sats: int) -> None:
    """int32 pairs a < b, sorted, no duplicates, endpoints in range."""
    assert edges.dtype == np.int32
    assert edges.ndim == 2 and edges.shape[1] == 2
    assert np.all(edges[:, 0] < edges[:, 1])
    assert np.all((edges >= 0) & (edges < n_sats))
    assert len(edge_set(edges)) == len(edges)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    np.testing.assert_array_equal(order, np.arange(len(edges)))


def expected_plus_grid(
    p_n: int, n: int, shift: int | None, offset: int = 0
) -> set[tuple[int, int]]:
    """+Grid written out slot by slot: in-plane ring, plane p slot j to plane p + 1 slot j,
    and across the seam last plane slot j to plane 0 slot (j + shift) mod n."""
    want: set[tuple[int, int]] = set()

    def add(a: int, b: int) -> None:
        want.add((offset + min(a, b), offset + max(a, b)))

    for p in range(p_n):
        for j in range(n):
            add(p * n + j, p * n + (j + 1) % n)
            if p < p_n - 1:
                add(p * n + j, (p + 1) * n + j)
            elif shift is not None:
                add(p * n + j, (j + shift) % n)
    return want


# --- +Grid ------------------------------------------------------------------------------------


@st.composite
def walker_pnf(draw: st.DrawFn) -> tuple[int, int, int]:
    p = draw(st.integers(3, 9))
    n = draw(st.integers(3, 9))
    return p, n, draw(st.integers(0, p - 1))


@settings(max_examples=40, deadline=None)
@given(walker_pnf())
def test_plus_grid_delta_shell(pnf: tuple[int, int, int]) -> None:
    p_n, n, f = pnf
    constellation = Constellation.from_shells("w", [shell(p_n, n, f)], epoch=EPOCH)
    s = p_n * n
    edges = plus_grid_edges(constellation)
    check_edge_array(edges, s)
    assert len(edges) == 2 * s
    np.testing.assert_array_equal(np.bincount(edges.ravel(), minlength=s), np.full(s, 4))
    assert edge_set(edges) == expected_plus_grid(p_n, n, f)
    # Every seam link: last plane slot j <-> plane 0 slot (j + F) mod N.
    for j in range(n):
        assert ((j + f) % n, (p_n - 1) * n + j) in edge_set(edges) or (
            (p_n - 1) * n + j,
            (j + f) % n,
        ) in edge_set(edges)
    # Every cross-plane link, the seam included, joins satellites whose arguments of latitude
    # differ by the same Walker offset 2 pi F / S, so the seam is no different from the others.
    raan, u = constellation.shells[0].shell.angles_rad()
    plane = np.arange(s) // n
    a, b = edges[:, 0], edges[:, 1]
    cross = plane[a] != plane[b]
    lo = np.where(plane[b] == (plane[a] + 1) % p_n, a, b)[cross]
    hi = np.where(plane[b] == (plane[a] + 1) % p_n, b, a)[cross]
    assert np.all(plane[hi] == (plane[lo] + 1) % p_n)
    du = np.mod(u[hi] - u[lo] - 2 * math.pi * f / s + math.pi, 2 * math.pi) - math.pi
    assert np.abs(du).max() < 1e-12
    draan = np.mod(raan[hi] - raan[lo] - 2 * math.pi / p_n + math.pi, 2 * math.pi) - math.pi
    assert np.abs(draan).max() < 1e-12


@settings(max_examples=30, deadline=None)
@given(walker_pnf())
def test_plus_grid_star_shell_has_no_seam(pnf: tuple[int, int, int]) -> None:
    p_n, n, f = pnf
    star = shell(p_n, n, f, inc=87.9, pattern="star")
    constellation = Constellation.from_shells("w", [star], epoch=EPOCH)
    s = p_n * n
    edges = plus_grid_edges(constellation)
    check_edge_array(edges, s)
    assert len(edges) == 2 * s - n
    assert edge_set(edges) == expected_plus_grid(p_n, n, None)
    degree = np.bincount(edges.ravel(), minlength=s).reshape(p_n, n)
    assert np.all(degree[[0, -1]] == 3)
    assert np.all(degree[1:-1] == 4)


def test_plus_grid_hypatia_layout_seam_has_no_shift() -> None:
    """satgenpy's +Grid links the last plane's slot j to slot j of plane 0."""
    hyp = WalkerShell("h", 6, 5, 0, 550e3, 53.0, layout="hypatia", mean_motion_rev_day=15.19)
    constellation = Constellation.from_shells("h", [hyp], epoch=EPOCH)
    edges = plus_grid_edges(constellation)
    assert edge_set(edges) == expected_plus_grid(6, 5, 0)
    assert len(edges) == 60


def test_plus_grid_multi_shell_never_crosses_shells() -> None:
    shells = [
        shell(5, 7, 2, name="a"),
        shell(3, 3, 0, alt_km=560.0, inc=97.6, name="b"),
        shell(4, 6, 1, alt_km=1200.0, inc=87.9, pattern="star", name="c"),
        shell(8, 4, 7, alt_km=570.0, inc=70.0, name="d"),
    ]
    constellation = Constellation.from_shells("multi", shells, epoch=EPOCH)
    edges = plus_grid_edges(constellation)
    check_edge_array(edges, constellation.n_sats)
    sizes = [sh.n_sats for sh in shells]
    bounds = np.cumsum([0, *sizes])
    shell_of = np.repeat(np.arange(len(shells)), sizes)
    np.testing.assert_array_equal(shell_of[edges[:, 0]], shell_of[edges[:, 1]])
    want: set[tuple[int, int]] = set()
    for sh, off in zip(shells, bounds[:-1].tolist(), strict=True):
        want |= expected_plus_grid(sh.n_planes, sh.sats_per_plane, sh.seam_shift(), off)
    assert edge_set(edges) == want
    assert len(edges) == 2 * sum(sizes) - shells[2].sats_per_plane


def test_plus_grid_starlink_gen1() -> None:
    constellation = Constellation.from_shells(
        "starlink-gen1", preset_shells("starlink-gen1"), epoch=EPOCH
    )
    assert constellation.n_sats == 4408
    edges = plus_grid_edges(constellation)
    check_edge_array(edges, 4408)
    assert len(edges) == 2 * 4408
    np.testing.assert_array_equal(np.bincount(edges.ravel()), np.full(4408, 4))


# --- ISL lengths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("planes", "per", "phasing"), [(24, 16, 1), (72, 22, 39)], ids=["24x16", "starlink-550"]
)
def test_isl_lengths_over_time(planes: int, per: int, phasing: int) -> None:
    """In-plane ISLs keep the chord 2 a sin(pi / N); cross-plane ISLs breathe but stay within
    Hypatia's 550 km limit."""
    constellation = Constellation.walker_delta(
        planes=planes, sats_per_plane=per, phasing=phasing, altitude_m=550e3, inclination_deg=53.0
    )
    a_m = WGS84_A_M + 550e3
    period = constellation.shells[0].shell.period_s
    t_s = np.concatenate([np.linspace(0.0, period, 25), [86_400.0]])
    r, ok = Propagator(constellation, EPOCH).positions_ecef_m(t_s)
    assert ok.all()
    edges = plus_grid_edges(constellation)
    length = isl_lengths_m(r, edges)
    assert length.shape == (t_s.size, len(edges))
    plane = np.arange(constellation.n_sats) // per
    in_plane = plane[edges[:, 0]] == plane[edges[:, 1]]
    assert in_plane.sum() == constellation.n_sats
    assert np.abs(length[:, in_plane] - 2 * a_m * math.sin(math.pi / per)).max() < ONE_MM
    cross = length[:, ~in_plane]
    assert np.all(cross.max(axis=0) - cross.min(axis=0) > 1e3)
    assert cross.max() <= max_isl_range_m(550e3)
    assert cross.min() > 0.0
    # Brute force for one step.
    k = 7
    want = np.linalg.norm(r[k, edges[:, 0]] - r[k, edges[:, 1]], axis=1)
    assert np.abs(length[k] - want).max() < ONE_MM


def test_max_isl_range_hypatia() -> None:
    got = max_isl_range_m(550e3)
    assert abs(got - HYPATIA_MAX_ISL_M) < ONE_MM
    # Geometric meaning: the chord's midpoint grazes 80 km above the (WGS72) sphere.
    for h in [340e3, 550e3, 1200e3]:
        length = max_isl_range_m(h)
        r = 6_378_135.0 + h
        assert abs(math.sqrt(r**2 - (length / 2) ** 2) - (6_378_135.0 + 80e3)) < ONE_MM
    assert max_isl_range_m(550e3, grazing_altitude_m=550e3) == 0.0


# --- GSLs -------------------------------------------------------------------------------------

# A few dozen sites from pole to pole; heights from below sea level to a high plateau.
SITE_LAT_DEG = [
    -90.0,
    -89.9,
    -77.85,
    -70.0,
    -60.0,
    -45.0,
    -33.9,
    -20.0,
    -5.0,
    0.0,
    0.0,
    5.0,
    14.6,
    25.0,
    35.7,
    45.0,
    45.0,
    50.45,
    52.2,
    55.0,
    60.0,
    64.15,
    69.6,
    71.3,
    78.2,
    82.5,
    89.9,
    90.0,
]
SITE_LON_DEG = [
    0.0,
    45.0,
    166.7,
    -60.0,
    10.0,
    170.0,
    18.4,
    -45.0,
    120.0,
    0.0,
    -179.9,
    80.0,
    121.0,
    55.0,
    139.7,
    -100.0,
    7.0,
    30.5,
    21.0,
    -3.0,
    24.9,
    -21.9,
    18.9,
    -156.8,
    15.6,
    -62.3,
    -30.0,
    0.0,
]
SITE_H_M = [
    2835.0,
    0.0,
    10.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    -400.0,
    40.0,
    0.0,
    0.0,
    170.0,
    100.0,
    0.0,
    0.0,
    0.0,
    0.0,
    3.0,
    0.0,
    30.0,
    0.0,
    0.0,
]


def gsl_scene() -> tuple[
    NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]
]:
    """A 53-degree and a polar shell over four steps, and the sites above."""
    shells = [shell(20, 12, 3, name="mid"), shell(8, 15, 1, alt_km=1200.0, inc=97.6, name="polar")]
    constellation = Constellation.from_shells("gsl", shells, epoch=EPOCH)
    r, ok = Propagator(constellation, EPOCH).positions_ecef_m(
        np.array([0.0, 300.0, 1700.0, 5000.0])
    )
    lat, lon = np.radians(SITE_LAT_DEG), np.radians(SITE_LON_DEG)
    return r, ok, geodetic_to_ecef(lat, lon, np.array(SITE_H_M)), up_vectors(lat, lon)


#: Elevation agreement of two float64 implementations of the same geometry (numerical error).
EL_TOL_RAD = 1e-9


def pymap3d_elevation_rad(r: NDArray[np.float64]) -> NDArray[np.float64]:
    """Elevation [rad] of every satellite from every site, shape (T, sites, S), by pymap3d."""
    import pymap3d

    lat = np.array(SITE_LAT_DEG)[None, :, None]
    lon = np.array(SITE_LON_DEG)[None, :, None]
    h = np.array(SITE_H_M)[None, :, None]
    x, y, z = (r[:, None, :, k] for k in range(3))
    _az, el_deg, _rng = pymap3d.ecef2aer(x, y, z, lat, lon, h, deg=True)
    return np.radians(np.asarray(el_deg, dtype=np.float64))


def test_site_frames_match_pymap3d() -> None:
    # Our WGS84 site positions and up vectors against pymap3d's geodetic2ecef and enu2ecef.
    import pymap3d

    lat, lon = np.radians(SITE_LAT_DEG), np.radians(SITE_LON_DEG)
    h = np.array(SITE_H_M)
    site_r = geodetic_to_ecef(lat, lon, h)
    want = np.stack(pymap3d.geodetic2ecef(lat, lon, h, deg=False), axis=-1)
    assert np.abs(site_r - want).max() < ONE_MM
    up = up_vectors(lat, lon)
    want_up = np.stack(pymap3d.enu2uvw(0.0, 0.0, 1.0, lat, lon, deg=False), axis=-1)
    assert np.abs(up - want_up).max() < 1e-12


def as_set(gsl: GslCandidates) -> set[tuple[int, int, int]]:
    return set(zip(gsl.t_idx.tolist(), gsl.site_idx.tolist(), gsl.sat_idx.tolist(), strict=True))


def check_candidates(
    gsl: GslCandidates, r: NDArray[np.float64], site_r: NDArray[np.float64]
) -> None:
    """Sorted by (t, site, sat), int32 indices, lengths equal to the site-satellite distance."""
    for x in (gsl.t_idx, gsl.site_idx, gsl.sat_idx):
        assert x.dtype == np.int32
    order = np.lexsort((gsl.sat_idx, gsl.site_idx, gsl.t_idx))
    np.testing.assert_array_equal(order, np.arange(order.size))
    assert len(as_set(gsl)) == gsl.t_idx.size
    want = np.linalg.norm(r[gsl.t_idx, gsl.sat_idx] - site_r[gsl.site_idx], axis=1)
    assert np.abs(gsl.length_m - want).max() < ONE_MM


@pytest.mark.parametrize(
    "min_el_deg",
    [
        0.0,  # the loosened search angle goes negative: must keep the poleward horizon
        10.0,
        25.0,
        40.0,
    ],
)
@pytest.mark.parametrize("method", ["window", "kdtree", "dense"])
def test_find_gsls_elevation_equals_brute_force(min_el_deg: float, method: str) -> None:
    r, ok, site_r, up = gsl_scene()
    min_el = math.radians(min_el_deg)
    gsl = find_gsls(r, ok, site_r, up, GslRule(min_elevation_rad=min_el), method=method)
    # Oracle: pymap3d's WGS84 ECEF -> azimuth/elevation/range from each site's geodetic
    # coordinates (none of our frames code).
    el = pymap3d_elevation_rad(r)
    near = np.abs(el - min_el) < EL_TOL_RAD
    assert not near.any(), "a satellite sits on the mask within numerical error: move it"
    want = {tuple(x) for x in np.argwhere(el >= min_el).tolist()}
    assert as_set(gsl) == want
    assert len(want) > 50
    # Each link's elevation, as the search reports it, is pymap3d's.
    got_el = el[gsl.t_idx, gsl.site_idx, gsl.sat_idx]
    assert np.abs(gsl.elevation_rad - got_el).max() < EL_TOL_RAD
    check_candidates(gsl, r, site_r)
    # The polar shell serves the poles.
    polar_sites = np.flatnonzero(np.abs(SITE_LAT_DEG) > 80.0)
    if min_el_deg <= 25.0:
        assert np.isin(gsl.site_idx, polar_sites).any()


def poleward_satellite(
    lat_deg: float, alt_km: float, el_deg: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]:
    """Site at (lat, 0) and a satellite at altitude ``alt_km`` seen due poleward at geodetic
    elevation ``el_deg``, where the geodetic vertical makes the slant range longest.

    Returns site position (1, 3), up (1, 3), satellite position (3,) and the slant range.
    """
    lat, lon = np.radians([lat_deg]), np.zeros(1)
    site_r, up = geodetic_to_ecef(lat, lon), up_vectors(lat, lon)
    poleward = math.copysign(1.0, lat_deg) * np.array([-math.sin(lat[0]), 0.0, math.cos(lat[0])])
    e = math.radians(el_deg)
    direction = math.cos(e) * poleward + math.sin(e) * up[0]
    # Distance along the direction to the orbit sphere: |site + d direction| = a + h.
    b = float(site_r[0] @ direction)
    c = float(site_r[0] @ site_r[0]) - (WGS84_A_M + alt_km * 1e3) ** 2
    d = -b + math.sqrt(b * b - c)
    sat = site_r[0] + d * direction
    assert abs(elevation_rad(site_r[0], up[0], sat) - e) < 1e-9
    return site_r, up, sat, d


@pytest.mark.parametrize("min_el_deg", [0.6, 10.0, 25.0, 40.0])
@pytest.mark.parametrize(("lat_deg", "alt_km"), [(60.0, 550.0), (-60.0, 550.0), (45.0, 1200.0)])
@pytest.mark.parametrize("method", ["window", "kdtree", "dense"])
def test_find_gsls_keeps_satellite_just_above_mask_poleward(
    lat_deg: float, alt_km: float, min_el_deg: float, method: str
) -> None:
    """0.01 deg above the mask, due poleward: in; 0.01 deg below: out."""
    for el_deg, want in [(min_el_deg + 0.01, [0]), (min_el_deg - 0.01, [])]:
        site_r, up, sat, d = poleward_satellite(lat_deg, alt_km, el_deg)
        rule = GslRule(min_elevation_rad=math.radians(min_el_deg))
        gsl = find_gsls(sat[None, None], np.ones((1, 1), bool), site_r, up, rule, method=method)
        assert gsl.sat_idx.tolist() == want
        assert np.abs(gsl.length_m - d).max(initial=0.0) < ONE_MM


@pytest.mark.parametrize("method", ["window", "kdtree", "dense"])
def test_find_gsls_mask_is_exact_below_the_prefilter_slack(method: str) -> None:
    """A satellite 1e-11 rad below the mask is out and 1e-8 rad above is in, for every method
    (the compiled window search prefilters with a 1e-9 slack on the sine; the mask test itself
    is exact); each link carries the elevation it was tested with."""
    min_el = math.radians(25.0)
    rule = GslRule(min_elevation_rad=min_el)
    for delta, want in [(-1e-11, []), (1e-8, [0])]:
        site_r, up, sat, _d = poleward_satellite(45.0, 550.0, math.degrees(min_el + delta))
        r = np.stack([sat, sat + 5e3])[None]  # a second satellite 5 km up: a candidate pair too
        gsl = find_gsls(r, np.ones((1, 2), bool), site_r, up, rule, method=method)  # type: ignore[arg-type]
        assert [s for s in gsl.sat_idx.tolist() if s == 0] == want
        assert (gsl.elevation_rad >= min_el).all()
        el = elevation_rad(site_r[0], up[0], r[0, gsl.sat_idx])
        assert np.abs(gsl.elevation_rad - el).max(initial=0.0) < 1e-12


def test_gsl_candidates_select_keeps_every_field_aligned() -> None:
    g = GslCandidates(
        np.array([0, 0, 1], np.int32),
        np.array([2, 3, 2], np.int32),
        np.array([7, 8, 9], np.int32),
        np.array([1.0, 2.0, 3.0]),
        np.array([0.1, 0.2, 0.3]),
    )
    for keep in (np.array([True, False, True]), np.array([0, 2]), slice(0, 3, 2)):
        sub = g.select(keep)
        assert sub.t_idx.tolist() == [0, 1] and sub.site_idx.tolist() == [2, 2]
        assert sub.sat_idx.tolist() == [7, 9] and sub.length_m.tolist() == [1.0, 3.0]
        assert sub.elevation_rad.tolist() == [0.1, 0.3]
    e = GslCandidates.empty()
    assert e.t_idx.dtype == np.int32 and e.elevation_rad.size == e.length_m.size == 0


@pytest.mark.parametrize(("lat_deg", "alt_km"), [(60.0, 550.0), (-60.0, 550.0), (45.0, 1200.0)])
def test_find_gsls_zero_mask_keeps_satellite_on_polar_horizon(
    lat_deg: float, alt_km: float
) -> None:
    """A satellite 0.01 deg above the geodetic horizon, due poleward, passes a 0 deg mask."""
    site_r, up, sat, d = poleward_satellite(lat_deg, alt_km, 0.01)
    gsl = find_gsls(
        sat[None, None], np.ones((1, 1), bool), site_r, up, GslRule(min_elevation_rad=0.0)
    )
    assert gsl.sat_idx.tolist() == [0]
    assert abs(gsl.length_m[0] - d) < ONE_MM


@pytest.mark.parametrize("max_range_m", [HYPATIA_MAX_GSL_M, 2_500e3])
@pytest.mark.parametrize("method", ["window", "kdtree", "dense"])
def test_find_gsls_max_range_equals_brute_force(max_range_m: float, method: str) -> None:
    r, ok, site_r, up = gsl_scene()
    gsl = find_gsls(r, ok, site_r, up, GslRule(max_range_m=max_range_m), method=method)
    dist = np.linalg.norm(r[:, None, :, :] - site_r[None, :, None, :], axis=-1)
    want = {tuple(x) for x in np.argwhere(dist <= max_range_m).tolist()}
    assert as_set(gsl) == want
    assert len(want) > 20
    check_candidates(gsl, r, site_r)
    assert gsl.length_m.max() <= max_range_m


@pytest.mark.parametrize("method", ["window", "dense"])
@pytest.mark.parametrize("nan_positions", [False, True], ids=["kept", "nan"])
def test_find_gsls_skips_satellites_without_position(nan_positions: bool, method: str) -> None:
    r, ok, site_r, up = gsl_scene()
    rng = np.random.default_rng(7)
    ok = ok & (rng.random(ok.shape) > 0.3)
    if nan_positions:
        r = r.copy()
        r[~ok] = np.nan
    rule = GslRule(min_elevation_rad=math.radians(10.0))
    gsl = find_gsls(r, ok, site_r, up, rule, method=method)  # type: ignore[arg-type]
    assert ok[gsl.t_idx, gsl.sat_idx].all()
    full = find_gsls(*gsl_scene(), rule)
    kept = {x for x in as_set(full) if ok[x[0], x[2]]}
    assert as_set(gsl) == kept
    assert len(kept) < len(as_set(full))
    none = find_gsls(r, np.zeros_like(ok), site_r, up, rule)
    assert none.t_idx.size == none.length_m.size == 0


@pytest.mark.parametrize("nan_positions", [True, False], ids=["nan", "kept"])
@pytest.mark.parametrize("step_s", [1.0, 10.0, 60.0])
@pytest.mark.parametrize("rule", ["elevation", "range"])
def test_find_gsls_window_blocks_equal_dense(step_s: float, rule: str, nan_positions: bool) -> None:
    """Consecutive steps (one block at 1 s, split blocks at 10 and 60 s), satellites missing at
    random steps including a block's middle: the windowed search equals the dense product
    exactly (same links, same order, lengths bit for bit). Missing satellites have no position
    (propagation failed) or keep theirs (a failed satellite, as runs mark them)."""
    from starmesh.topology import WINDOW_MAX_DRIFT, _window_blocks

    shells = [shell(20, 12, 3, name="mid"), shell(8, 15, 1, alt_km=1200.0, inc=97.6, name="polar")]
    constellation = Constellation.from_shells("gsl", shells, epoch=EPOCH)
    r, ok = Propagator(constellation, EPOCH).positions_ecef_m(np.arange(40) * step_s)
    ok = ok & (np.random.default_rng(3).random(ok.shape) > 0.2)
    ok[20:30] = False  # steps without any position (a block of their own at 60 s steps)
    if nan_positions:
        r = np.where(ok[..., None], r, np.nan)
    lat, lon = np.radians(SITE_LAT_DEG), np.radians(SITE_LON_DEG)
    site_r, up = geodetic_to_ecef(lat, lon, np.array(SITE_H_M)), up_vectors(lat, lon)
    g_rule = (
        GslRule(min_elevation_rad=math.radians(25.0))
        if rule == "elevation"
        else GslRule(max_range_m=HYPATIA_MAX_GSL_M)
    )
    got = find_gsls(r, ok, site_r, up, g_rule, method="window")
    want = find_gsls(r, ok, site_r, up, g_rule, method="dense")
    assert want.t_idx.size > 100
    assert ok[got.t_idx, got.sat_idx].all()
    for name in ("t_idx", "site_idx", "sat_idx", "length_m", "elevation_rad"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    assert not ((got.t_idx >= 20) & (got.t_idx < 30)).any() and (got.t_idx >= 30).any()
    radius = g_rule.search_radius_m(float(np.nanmax(np.linalg.norm(r, axis=-1))))
    blocks = _window_blocks(r, ok, radius)
    # Sorted, disjoint, and covering every step where some satellite has a position.
    assert all(x[1] <= y[0] for x, y in itertools.pairwise(blocks))
    covered = np.concatenate([np.arange(a, b) for a, b, _s, _r, _d in blocks])
    assert set(np.flatnonzero(ok.any(axis=1)).tolist()) <= set(covered.tolist())
    assert all(d <= WINDOW_MAX_DRIFT * radius or b - a == 1 for a, b, _s, _r, d in blocks)
    if step_s >= 10.0:
        assert len(blocks) > 1
    elif rule == "elevation":
        assert len(blocks) == 1


@pytest.mark.parametrize("lat_deg", [0.0, 30.0, 53.0, 89.0, -65.0])
def test_gsl_to_satellite_overhead(lat_deg: float) -> None:
    """A satellite h above the site along its vertical is at 90 deg elevation, h away."""
    heights = np.array([550e3, 1200e3])
    lat, lon = np.radians([lat_deg]), np.radians([25.0])
    site_r, up = geodetic_to_ecef(lat, lon), up_vectors(lat, lon)
    sats = site_r + heights[:, None] * up
    gsl = find_gsls(
        sats[None], np.ones((1, 2), bool), site_r, up, GslRule(min_elevation_rad=math.radians(25.0))
    )
    np.testing.assert_array_equal(gsl.sat_idx, [0, 1])
    assert np.abs(gsl.length_m - heights).max() < ONE_M
    assert np.abs(elevation_rad(site_r, up, sats) - math.pi / 2).max() < 1e-7


def test_gsl_overhead_at_equator() -> None:
    """Satellite on the x axis at a + h, site at (a, 0, 0): the GSL is h long."""
    h = 550e3
    site_r = geodetic_to_ecef(np.zeros(1), np.zeros(1))
    np.testing.assert_allclose(site_r, [[WGS84_A_M, 0.0, 0.0]], rtol=0, atol=ONE_MM)
    sat = np.array([[[WGS84_A_M + h, 0.0, 0.0]]])
    gsl = find_gsls(
        sat,
        np.ones((1, 1), bool),
        site_r,
        up_vectors(np.zeros(1), np.zeros(1)),
        GslRule(min_elevation_rad=math.radians(25.0)),
    )
    assert gsl.length_m.size == 1
    assert abs(gsl.length_m[0] - h) < ONE_M


def test_slant_range_closed_form() -> None:
    """A point built at slant range d(e) along elevation e lies on the orbit sphere, at e."""
    big_r = WGS84_A_M
    orbit_r = np.array([big_r + 550e3, big_r + 1200e3])[:, None]
    e = np.radians([0.0, 10.0, 25.0, 40.0, 89.9, 90.0])[None, :]
    d = slant_range_m(e, orbit_r, big_r)
    assert d.shape == (2, 6)
    point = np.stack([big_r + d * np.sin(e), d * np.cos(e), np.zeros_like(d)], axis=-1)
    assert np.abs(np.linalg.norm(point, axis=-1) - orbit_r).max() < ONE_MM
    site = np.array([big_r, 0.0, 0.0])
    got_e = elevation_rad(site, np.array([1.0, 0.0, 0.0]), point)
    assert np.abs(got_e - e).max() < 1e-9
    np.testing.assert_allclose(d[:, -1], orbit_r[:, 0] - big_r, rtol=0, atol=ONE_MM)
    np.testing.assert_allclose(d[:, 0], np.sqrt(orbit_r[:, 0] ** 2 - big_r**2), rtol=0, atol=ONE_MM)
    # Scalar input, and the search radius of the elevation rule covers it.
    d25 = float(slant_range_m(math.radians(25.0), big_r + 550e3, big_r))
    assert abs(d25 - float(d[0, 2])) < ONE_MM
    assert GslRule(min_elevation_rad=math.radians(25.0)).search_radius_m(big_r + 550e3) > d25


@pytest.mark.parametrize("min_el_deg", [0.0, 25.0])
def test_gsl_elevation_threshold_at_equator(min_el_deg: float) -> None:
    """At the equator the geodetic vertical is radial, so a satellite built at elevation
    e +- 1e-6 rad from the closed form is just in or just out."""
    min_el = math.radians(min_el_deg)
    r_orbit = WGS84_A_M + 550e3
    e = np.array([min_el + 1e-6, min_el - 1e-6])
    d = slant_range_m(e, r_orbit, WGS84_A_M)
    sats = np.stack([WGS84_A_M + d * np.sin(e), d * np.cos(e), np.zeros(2)], axis=-1)
    site_r = geodetic_to_ecef(np.zeros(1), np.zeros(1))
    gsl = find_gsls(
        sats[None],
        np.ones((1, 2), bool),
        site_r,
        up_vectors(np.zeros(1), np.zeros(1)),
        GslRule(min_elevation_rad=min_el),
    )
    np.testing.assert_array_equal(gsl.sat_idx, [0])
    assert abs(gsl.length_m[0] - d[0]) < ONE_MM


# --- Nearest-k ISLs ---------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 60),
    k=st.integers(1, 6),
    range_km=st.floats(300.0, 6000.0),
)
def test_nearest_k_edges_equals_brute_force(seed: int, n: int, k: int, range_km: float) -> None:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    r = v / np.linalg.norm(v, axis=1, keepdims=True) * rng.uniform(6.9e6, 7.6e6, size=(n, 1))
    ok = rng.random(n) > 0.1
    max_range = range_km * 1e3
    edges = nearest_k_edges(r, ok, k=k, max_range_m=max_range)
    check_edge_array(edges, n)
    idx = np.flatnonzero(ok)
    dist = np.linalg.norm(r[:, None] - r[None, :], axis=-1)
    want: set[tuple[int, int]] = set()
    for i in idx:
        others = idx[idx != i]
        near = others[np.argsort(dist[i, others])][:k]
        want |= {(min(i, j), max(i, j)) for j in near.tolist() if dist[i, j] <= max_range}
    assert edge_set(edges) == want
    if len(edges):
        assert ok[edges].all()
        assert dist[edges[:, 0], edges[:, 1]].max() <= max_range
    degree = np.bincount(edges.ravel(), minlength=n)
    in_range = (dist <= max_range)[np.ix_(idx, idx)].sum(axis=1) - 1
    assert np.all(degree[idx] >= np.minimum(k, in_range))


# --- Fibre ------------------------------------------------------------------------------------


def sphere_distance_m(
    lat1: NDArray[np.float64],
    lon1: NDArray[np.float64],
    lat2: NDArray[np.float64],
    lon2: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Great circle on the mean sphere from the angle between unit vectors (atan2 form)."""

    def unit(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)

    a, b = unit(lat1, lon1), unit(lat2, lon2)
    a, b = np.broadcast_arrays(a, b)
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return EARTH_MEAN_RADIUS_M * np.arctan2(cross, np.einsum("...i,...i->...", a, b))


def test_fibre_links_nearest_and_all() -> None:
    rng = np.random.default_rng(2025)
    n = 40
    lat = np.radians(rng.uniform(30.0, 70.0, n))
    lon = np.radians(rng.uniform(-20.0, 50.0, n))
    kinds = rng.choice(np.array(["terminal", "gateway", "pop"]), size=n, p=[0.3, 0.5, 0.2])
    gw_idx = np.flatnonzero(kinds == "gateway")
    pop_idx = np.flatnonzero(kinds == "pop")
    assert gw_idx.size > 5 and pop_idx.size > 2
    factor = 1.3
    gc = sphere_distance_m(
        lat[gw_idx, None], lon[gw_idx, None], lat[None, pop_idx], lon[None, pop_idx]
    )

    gw, pop, length = fibre_links(lat, lon, gw_idx, pop_idx, route_factor=factor)
    np.testing.assert_array_equal(gw, gw_idx)
    np.testing.assert_array_equal(pop, pop_idx[np.argmin(gc, axis=1)])
    assert np.abs(length - gc.min(axis=1) * factor).max() < ONE_MM

    gw, pop, length = fibre_links(lat, lon, gw_idx, pop_idx, route_factor=factor, policy="all")
    assert len(gw) == gw_idx.size * pop_idx.size
    got = {(int(g), int(p)): float(x) for g, p, x in zip(gw, pop, length, strict=True)}
    assert set(got) == {(int(g), int(p)) for g in gw_idx for p in pop_idx}
    for i, g in enumerate(gw_idx.tolist()):
        for j, p in enumerate(pop_idx.tolist()):
            assert abs(got[g, p] - gc[i, j] * factor) < ONE_MM

    for empty in [(gw_idx[:0], pop_idx), (gw_idx, pop_idx[:0])]:
        gw, pop, length = fibre_links(lat, lon, *empty, route_factor=factor)
        assert gw.size == pop.size == length.size == 0


def test_fibre_link_closed_form() -> None:
    """A quarter of the equator is pi R / 2; a gateway at a PoP gets a zero-length link."""
    lat = np.zeros(3)
    lon = np.radians([0.0, 90.0, 0.0])
    gw, pop, length = fibre_links(lat, lon, np.array([1, 2]), np.array([0]), route_factor=1.5)
    np.testing.assert_array_equal(gw, [1, 2])
    np.testing.assert_array_equal(pop, [0, 0])
    assert abs(length[0] - 1.5 * math.pi * EARTH_MEAN_RADIUS_M / 2) < ONE_MM
    assert length[1] == 0.0


def test_gsl_rule_needs_exactly_one_criterion() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        GslRule()
    with pytest.raises(ValueError, match="exactly one"):
        GslRule(min_elevation_rad=0.4, max_range_m=1e6)


def test_small_edge_cases() -> None:
    # Two satellites per plane still have their in-plane link (one, not two).
    const = Constellation.from_shells("two", [shell(1, 2, 0)], epoch=EPOCH)
    assert plus_grid_edges(const).tolist() == [[0, 1]]
    # Two satellites in range are each other's nearest neighbour.
    r = np.array([[7.0e6, 0.0, 0.0], [7.0e6, 1.0e5, 0.0]])
    assert nearest_k_edges(r, np.ones(2, bool), k=1, max_range_m=1e6).tolist() == [[0, 1]]
    # One gateway still gets its fibre to the nearest PoP; no PoP gives typed empty arrays.
    lat, lon = np.radians([50.0, 51.0, 40.0]), np.radians([0.0, 1.0, 10.0])
    gw, pop, length = fibre_links(lat, lon, np.array([0]), np.array([1, 2]), route_factor=1.5)
    assert gw.tolist() == [0] and pop.tolist() == [1]
    assert length[0] == pytest.approx(1.5 * sphere_distance_m(lat[0], lon[0], lat[1], lon[1]))
    gw, pop, length = fibre_links(lat, lon, np.array([0]), np.zeros(0, np.int64), route_factor=1.5)
    assert gw.dtype == pop.dtype == np.int64 and gw.size == pop.size == length.size == 0


@pytest.mark.parametrize("case", ["no-valid-satellite", "no-site"])
def test_find_gsls_empty_result_is_typed(case: str) -> None:
    r, ok, site_r, up = gsl_scene()
    if case == "no-valid-satellite":
        ok = np.zeros_like(ok)
    else:
        site_r, up = site_r[:0], up[:0]
    gsl = find_gsls(r, ok, site_r, up, GslRule(min_elevation_rad=0.4))
    for x in (gsl.t_idx, gsl.site_idx, gsl.sat_idx):
        assert x.dtype == np.int32 and x.size == 0
    assert gsl.length_m.dtype == np.float64 and gsl.length_m.size == 0


def test_link_geometry_of_a_zero_vector_is_nan_without_a_warning() -> None:
    """A satellite at the site itself: range 0, elevation undefined (NaN), and no warning
    (the suite turns warnings into errors)."""
    from starmesh.topology import link_geometry

    d = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 7e5]])
    up = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    dist, el = link_geometry(d, up)
    assert dist.tolist() == [0.0, 7e5]
    assert np.isnan(el[0]) and el[1] == pytest.approx(math.pi / 2)


def test_libastro_gsl_lengths_are_float32_ranges() -> None:
    """pyephem reports ranges as C floats (``ess_range``): lengths round to float32 exactly."""
    from starmesh.topology import libastro_gsl_lengths_m

    x = np.array([1_234_567.891, 987_654.321, 550_000.0])
    got = libastro_gsl_lengths_m(x)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, x.astype(np.float32).astype(np.float64))
    assert (got[:2] != x[:2]).all()


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 5),
    st.integers(1, 12),
    st.integers(0, 2**31 - 1),
)
def test_distinct_links_equal_numpy_unique(n_t: int, n_sites: int, n_sats: int, seed: int) -> None:
    # np.unique is the oracle: random links per step in GslCandidates order (site, then sat).
    from starmesh.gsl_kernel import distinct_links

    rng = np.random.default_rng(seed)
    site_l, sat_l, bounds = [], [], [0]
    for _ in range(n_t):
        on = rng.random((n_sites, n_sats)) < rng.uniform(0.0, 1.0)
        g, s = np.nonzero(on)  # row-major: by site, then satellite
        site_l.append(g)
        sat_l.append(s)
        bounds.append(bounds[-1] + g.size)
    site = np.concatenate(site_l).astype(np.int64) * 3  # site numbers with gaps
    sat = np.concatenate(sat_l).astype(np.int64)
    keys, index, ok = distinct_links(site, sat, np.array(bounds, np.int64), n_sats)
    want, inverse = np.unique(site * n_sats + sat, return_inverse=True)
    assert ok
    assert keys.dtype == index.dtype == np.int64
    np.testing.assert_array_equal(keys, want)
    np.testing.assert_array_equal(index, inverse)


def test_distinct_links_refuses_links_out_of_order() -> None:
    from starmesh.gsl_kernel import distinct_links

    site = np.array([0, 0, 1, 0, 1], np.int64)
    bounds = np.array([0, 3, 5], np.int64)
    assert distinct_links(site, np.array([1, 2, 0, 2, 2]), bounds, 4)[2]
    keys, index, ok = distinct_links(site, np.array([2, 1, 0, 2, 2]), bounds, 4)  # sats swapped
    assert not ok
    assert keys.shape == index.shape == (0,) and keys.dtype == index.dtype == np.int64
    assert not distinct_links(site[[2, 1, 0, 3, 4]], np.array([0, 2, 1, 2, 2]), bounds, 4)[2]
    assert not distinct_links(site, np.array([1, 1, 0, 2, 2]), bounds, 4)[2]  # a repeat


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)), max_size=12),
    st.booleans(),
)
def test_in_link_order_is_strict_lexicographic_order(triples, sort_first) -> None:
    # Oracle: Python's own tuple ordering (sorted, no repeats).
    from starmesh.topology import in_link_order

    if sort_first:
        triples = sorted(set(triples))
    want = all(a < b for a, b in itertools.pairwise(triples))
    t, g, s = (np.array([x[i] for x in triples], np.int32) for i in range(3))
    assert in_link_order(t, g, s) == want
    assert in_link_order(t.astype(np.int64), g, s.astype(np.int16)) == want


def test_in_link_order_refuses_a_repeated_link() -> None:
    from starmesh.topology import in_link_order

    t, g = np.array([0, 0, 1]), np.array([2, 2, 0])
    assert in_link_order(t, g, np.array([1, 3, 0]))
    assert not in_link_order(t, g, np.array([3, 3, 0]))
    assert not in_link_order(t, g, np.array([3, 1, 0]))
    assert not in_link_order(t, np.array([2, 1, 0]), np.array([1, 3, 0]))  # sites swapped
    assert not in_link_order(np.array([1, 0, 1]), g, np.array([1, 3, 0]))  # steps swapped


def test_in_link_order_refuses_arrays_of_different_lengths() -> None:
    from starmesh.topology import in_link_order

    with pytest.raises(ValueError, match="sizes differ: 3, 2, 3"):
        in_link_order(np.zeros(3, int), np.zeros(2, int), np.arange(3))
