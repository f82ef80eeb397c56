"""Service model: each latency component against its closed form, the slot scheduler, PoP
assignment and load spread."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starmesh.constants import C_M_S, FIBRE_GROUP_INDEX
from starmesh.errors import ScenarioError
from starmesh.service import latency as L
from starmesh.service.params import FRAME_S, ServiceParams
from starmesh.service.pops import assign_pops, backhaul_delay_s, load_pop_table
from starmesh.service.scheduler import count_handovers, schedule, slot_index
from starmesh.service.throughput import (
    cell_area_m2,
    cells_of,
    ps_throughput_bps,
    satellite_load_bps,
    speed_test_bps,
    spread_terminals,
)

ONE_US = 1e-6
N = 200_000


def test_uplink_access_mean_and_bounds():
    rng = np.random.default_rng(0)
    u = rng.random(N)
    prop = 2.5e-3
    x = L.uplink_access_s(prop, u, frame_s=FRAME_S, grant_frames=2.0)
    want_mean = 1.5 * FRAME_S + 2 * prop + 2.0 * FRAME_S
    assert abs(x.mean() - want_mean) < 0.01 * FRAME_S
    assert x.min() >= 2 * prop + 3 * FRAME_S - ONE_US
    assert x.max() <= 2 * prop + 4 * FRAME_S + ONE_US
    # Scalar and array inputs agree.
    assert L.uplink_access_s(prop, 0.0, frame_s=FRAME_S, grant_frames=2.0) == pytest.approx(
        2 * prop + 3 * FRAME_S
    )


def test_downlink_and_feeder_access_uniform():
    u = np.linspace(0, 1, 11)[:-1]
    for f in (L.downlink_access_s, L.feeder_access_s):
        x = f(u, frame_s=FRAME_S)
        np.testing.assert_allclose(x, (1 + u) * FRAME_S, rtol=0, atol=1e-15)


def test_processing_closed_form():
    p = ServiceParams(
        sat_processing_s=0.4e-3, ground_processing_s=0.9e-3, isl_hop_processing_s=0.2e-3
    )
    hops = np.array([[0, 3], [5, 1]])
    np.testing.assert_allclose(L.processing_s(hops, p), 2 * (0.4e-3 + 0.9e-3 + hops * 0.2e-3))


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.8, 0.95])
def test_md1_mean_is_pollaczek_khinchine(rho):
    # P-K for M/G/1: W = lambda E[S^2] / (2 (1 - rho)); deterministic S = D: E[S^2] = D^2.
    lam = rho / FRAME_S
    want = lam * FRAME_S**2 / (2 * (1 - rho))
    assert L.md1_mean_wait_s(rho, FRAME_S) == pytest.approx(want, rel=1e-12)
    u = np.random.default_rng(1).random(N)
    w = L.md1_wait_s(u, rho, FRAME_S)
    assert w.mean() == pytest.approx(want, rel=0.03)
    assert np.mean(w == 0) == pytest.approx(1 - rho, abs=0.005)
    x = 2 * want
    assert np.mean(w > x) == pytest.approx(float(L.md1_wait_tail(x, rho, FRAME_S)), abs=0.005)


def test_md1_against_simulated_queue():
    # Lindley recursion of a real M/D/1 queue: mean wait and the whole waiting-time
    # distribution match P-K and Erlang's formula used here.
    rng = np.random.default_rng(2)
    rho, d = 0.7, 1.0
    a = rng.exponential(d / rho, 400_000)
    w = np.zeros_like(a)
    for i in range(1, a.size):
        w[i] = max(0.0, w[i - 1] + d - a[i])
    w = w[1000:]
    assert w.mean() == pytest.approx(float(L.md1_mean_wait_s(rho, d)), rel=0.05)
    for x in (0.0, 0.5, 1.0, 2.5, 4.0, 7.0):
        assert np.mean(w <= x) == pytest.approx(float(L.md1_wait_cdf([x], rho, d)[0]), abs=0.006)
    # Samples drawn by inversion have the same distribution.
    smp = L.md1_wait_s(rng.random(200_000), rho, d)
    for q in (0.5, 0.9, 0.99):
        assert np.quantile(smp, q) == pytest.approx(np.quantile(w, q), abs=0.08 * d)


def _erlang_decimal(x: str, rho: str) -> float:
    # Erlang's M/D/1 formula in 80-digit decimal arithmetic (D = 1): no cancellation error.
    import math
    from decimal import Decimal, getcontext

    getcontext().prec = 80
    lam, xx, s = Decimal(rho), Decimal(x), Decimal(0)
    for k in range(int(xx) + 1):
        y = lam * (k - xx)
        s += y**k / Decimal(math.factorial(k)) * (-y).exp()
    return float((1 - Decimal(rho)) * s)


@pytest.mark.parametrize("rho", ["0.3", "0.7", "0.95", "0.99"])
@pytest.mark.parametrize("x", ["0.5", "5.5", "10", "20", "50"])
def test_md1_cdf_against_high_precision(rho, x):
    want = _erlang_decimal(x, rho)
    got = float(L.md1_wait_cdf([float(x)], float(rho), 1.0)[0])
    # Absolute error tiny, relative error of the tail probability below 2 %.
    assert abs(got - want) < 1e-7 and abs(got - want) <= 0.02 * max(1 - want, 1e-12) + 1e-15


def test_md1_decay_rate_solves_lundberg():
    for rho in (0.2, 0.6, 0.9):
        th = L.md1_decay_rate(rho, 2e-3)
        assert rho / 2e-3 * np.expm1(th * 2e-3) == pytest.approx(th, rel=1e-9)


def test_md1_overload_is_inf_and_zero_load_is_zero():
    assert np.isinf(L.md1_mean_wait_s(1.0, FRAME_S))
    assert L.md1_mean_wait_s(0.0, FRAME_S) == 0.0
    assert np.all(L.md1_wait_s(np.random.default_rng(3).random(100), 0.0, FRAME_S) == 0.0)


def test_internet_leg_closed_form():
    # Equator, 1 deg of longitude: R * pi / 180.
    d = L.great_circle_m(0.0, 0.0, 0.0, 1.0)
    assert d == pytest.approx(6_371_008.8 * np.pi / 180, rel=1e-12)
    assert L.fibre_delay_s(1e6, route_factor=1.5) == pytest.approx(
        1.5e6 * FIBRE_GROUP_INDEX / C_M_S
    )


def test_rtt_breakdown_means_sum_and_zero_jitter_limit():
    p = ServiceParams(utilisation=0.0)
    rng = np.random.default_rng(4)
    prop = np.full((3, 2), 8e-3)
    up = np.full((3, 2), 2.5e-3)
    b = L.rtt_breakdown(
        prop, up, np.zeros((3, 2)), params=p, rng=rng, n_samples=20_000, internet_s=1e-3
    )
    assert b.samples_s.shape == (3, 2, 20_000)
    assert b.samples_s.mean() == pytest.approx(b.mean_s.sum(axis=-1).mean(), rel=0.002)
    # Minimum: every uniform wait 0.
    floor = (
        8e-3
        + 2 * 2.5e-3
        + (p.grant_frames + 2) * FRAME_S
        + 2 * FRAME_S
        + 2 * (p.sat_processing_s + p.ground_processing_s)
        + 2e-3
    )
    assert b.samples_s.min() >= floor - ONE_US
    assert b.samples_s.min() < floor + 0.3 * FRAME_S  # sum of 4 uniform waits
    assert b.share().sum() == pytest.approx(1.0)


def test_unreachable_stays_inf():
    b = L.rtt_breakdown(
        np.array([[np.inf]]),
        np.array([[np.nan]]),
        np.zeros((1, 1)),
        params=ServiceParams(),
        rng=np.random.default_rng(0),
        n_samples=4,
    )
    assert np.isinf(b.samples_s).all()


# --- scheduler ---------------------------------------------------------------------------------


def _sky(n_t, n_g, n_s, seed):
    rng = np.random.default_rng(seed)
    el = rng.uniform(-0.5, 1.5, (n_t, n_g, n_s)) + np.sin(np.arange(n_t) / 7.0)[:, None, None] * 0.3
    return el >= 0.4, el, rng


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 10_000),
    st.sampled_from(["hold", "highest", "north", "random"]),
    st.floats(0, 59),
    st.floats(0.5, 7.0),
)
def test_assignment_changes_only_at_slot_boundaries(seed, policy, offset, step):
    n_t = 60
    vis, el, rng = _sky(n_t, 3, 7, seed)
    t = np.arange(n_t) * step
    az = rng.uniform(0, 2 * np.pi, el.shape)
    sch = schedule(
        t,
        vis,
        el,
        policy=policy,
        rng=rng,
        azimuth_rad=az,
        site_lat_deg=[40.0, -30.0, 10.0],
        offset_s=offset,
    )
    slot = slot_index(t, offset_s=offset)
    s = sch.serving
    for k in np.unique(slot):
        block = s[slot == k]
        for g in range(3):
            # One satellite per terminal and slot (unserved steps aside).
            assert np.unique(block[:, g][block[:, g] >= 0]).size <= 1
    for k in range(n_t):
        assert np.all(vis[k, np.arange(3)[s[k] >= 0], s[k][s[k] >= 0]])


def test_slot_boundaries_are_global_and_offset():
    t = np.arange(0.0, 60.0, 1.0)
    k = slot_index(t, offset_s=12.0)
    assert list(np.flatnonzero(np.diff(k)) + 1) == [12, 27, 42, 57]
    # Epoch at 5 s past the minute: boundaries at 12/27/42/57 s past it are t = 7, 22, 37, 52.
    k2 = slot_index(t, offset_s=12.0, epoch_second_of_minute=5.0)
    assert list(np.flatnonzero(np.diff(k2)) + 1) == [7, 22, 37, 52]


def test_policies_documented_behaviour():
    # One terminal at 40 N, three satellites, one 20-s window inside one slot.
    t = np.arange(12.0, 27.0)
    n = t.size
    el = np.zeros((n, 1, 3))
    el[:, 0, 0] = np.linspace(1.2, 0.3, n)  # highest at slot start, sets below the mask mid-slot
    el[:, 0, 1] = 0.9  # steady, south
    el[:, 0, 2] = 0.8  # steady, north
    vis = el >= 0.5
    az = np.zeros_like(el)
    az[:, 0, 0] = np.pi
    az[:, 0, 1] = np.pi
    az[:, 0, 2] = 0.0
    hi = schedule(t, vis, el, policy="highest").serving[:, 0]
    assert hi[0] == 0 and hi[-1] == -1  # held until it set, then unserved
    hold = schedule(t, vis, el, policy="hold").serving[:, 0]
    assert np.all(hold == 1)  # best minimum elevation over the slot
    north = schedule(t, vis, el, policy="north", azimuth_rad=az, site_lat_deg=[40.0]).serving[:, 0]
    assert np.all(north == 2)
    south = schedule(t, vis, el, policy="north", azimuth_rad=az, site_lat_deg=[-40.0]).serving[:, 0]
    assert south[0] in (0, 1) and south[0] == 0
    picks = {
        int(schedule(t, vis, el, policy="random", rng=np.random.default_rng(s)).serving[0, 0])
        for s in range(40)
    }
    assert picks == {0, 1, 2}
    a = schedule(t, vis, el, policy="random", rng=np.random.default_rng(7)).serving
    b = schedule(t, vis, el, policy="random", rng=np.random.default_rng(7)).serving
    assert np.array_equal(a, b)


def test_handover_count_and_carry_in():
    s = np.array([[1, 2], [1, 2], [3, -1], [3, 2]], dtype=np.int32)
    assert count_handovers(s).tolist() == [1, 0]
    assert count_handovers(s, (0, np.array([5, 2], dtype=np.int32))).tolist() == [2, 0]


def test_handover_count_skips_unserved_steps_on_random_schedules():
    """Against the definition, column by column: drop unserved steps, count changes."""
    rng = np.random.default_rng(11)
    for _ in range(30):
        s = rng.integers(-1, 3, size=(int(rng.integers(0, 12)), 5)).astype(np.int32)
        prev = (0, rng.integers(-1, 3, size=5).astype(np.int32))
        for previous in (None, prev):
            full = s if previous is None else np.vstack([previous[1][None, :], s])
            want = []
            for g in range(5):
                col = [int(x) for x in full[:, g] if x >= 0]
                want.append(sum(a != b for a, b in itertools.pairwise(col)))
            assert count_handovers(s, previous).tolist() == want


def test_bad_policy_message():
    with pytest.raises(ScenarioError, match="unknown policy 'best'"):
        schedule([0.0], np.ones((1, 1, 1), bool), np.ones((1, 1, 1)), policy="best")  # type: ignore[arg-type]


# --- PoPs --------------------------------------------------------------------------------------


def test_region_table_beats_nearest():
    table = load_pop_table()
    # Lisbon, Portugal is not in the region table: nearest (Madrid). Belgium's home PoP is
    # Frankfurt although London is about as close.
    idx, hit = assign_pops([38.72, 50.67], [-9.14, 4.61], ["PT", "BE"], table=table)
    assert table.code[idx[0]] == "mdrdesp1" and not hit[0]
    assert table.code[idx[1]] == "frntdeu1" and hit[1]
    near, _ = assign_pops([50.67], [4.61], ["BE"], table=table, policy="nearest")
    assert table.code[near[0]] in ("frntdeu1", "lndngbr1")
    d = backhaul_delay_s(
        np.array([50.0]), np.array([8.0]), table.lat_deg, table.lon_deg, route_factor=1.5
    )
    assert d.shape == (1, len(table.code)) and np.all(d >= 0)


# --- throughput --------------------------------------------------------------------------------


def test_spread_conserves_terminals_and_load():
    rng = np.random.default_rng(5)
    eligible = rng.random((6, 40)) < 0.3
    eligible[0] = False
    n = np.array([100, 1000, 7, 0, 55, 3000])
    c = spread_terminals(n, eligible, rng)
    assert np.all(c[~eligible] == 0)
    assert c[1:].sum(axis=1).tolist() == n[1:].tolist() and c[0].sum() == 0
    demand = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) * 1e6
    load = satellite_load_bps(c, demand)
    assert load.sum() == pytest.approx(float((c.sum(axis=1) * demand).sum()))
    # Roughly uniform: the busiest satellite of a large site carries about its share.
    row = c[5][eligible[5]]
    assert row.max() < 2 * 3000 / eligible[5].sum()


def test_processor_sharing_and_speed_test():
    assert ps_throughput_bps(1e9, 0.25e9) == pytest.approx(0.75e9)
    assert ps_throughput_bps(1e9, 1.2e9) == 0.0
    r = speed_test_bps(
        cell_capacity=np.array([1e9, 1e9]),
        cell_offered_bps=np.array([0.5e9, 0.95e9]),
        sat_capacity_bps=20e9,
        sat_offered_bps=10e9,
        terminal_max_bps=220e6,
    )
    np.testing.assert_allclose(r, [220e6, 50e6])


# --- beam time-sharing: footprint, occupied cells, cell capacity ------------------------------


def test_footprint_area_against_monte_carlo_elevation():
    """The spherical-cap footprint against an independent count: points drawn uniformly on the
    sphere, kept where frames.elevation_rad sees the satellite above the mask."""
    from starmesh.constants import EARTH_MEAN_RADIUS_M as R
    from starmesh.frames import elevation_rad
    from starmesh.service.throughput import footprint_area_m2

    rng = np.random.default_rng(3)
    n = 400_000
    v = rng.normal(size=(n, 3))
    p = R * v / np.linalg.norm(v, axis=1, keepdims=True)
    up = p / R
    for h, eps_deg in ((550e3, 25.0), (485e3, 25.0), (1_200e3, 10.0)):
        sat = np.array([0.0, 0.0, R + h])
        near = p[:, 2] > 0.8 * R  # the cap is far smaller than a hemisphere
        el = elevation_rad(p[near], up[near], sat)
        frac = np.mean(near) * np.mean(el >= np.radians(eps_deg))
        want = frac * 4.0 * np.pi * R**2
        got = float(footprint_area_m2(h, np.radians(eps_deg)))
        # Binomial standard error of the count is ~1 % at these fractions.
        assert abs(got / want - 1.0) < 0.03, (h, eps_deg, got, want)


def test_occupied_fraction_is_poisson():
    from starmesh.service.throughput import occupied_fraction

    rng = np.random.default_rng(11)
    for m in (0.05, 0.7, 2.5, 62.0):
        sim = np.mean(rng.poisson(m, size=200_000) > 0)
        assert abs(float(occupied_fraction(m)) - sim) < 4e-3, m


def test_cell_capacity_shares_the_satellite_over_its_cells():
    from starmesh.service.throughput import cell_capacity_bps, cells_per_satellite

    # Dense: every cell occupied; 9,000 cells under the footprint, 60 satellites share them.
    served = cells_per_satellite(1.0, 9_000 * 250e6, 250e6, 60)
    assert float(served) == pytest.approx(150.0, rel=1e-9)
    cap = cell_capacity_bps(1.4e9, 1, 58e9, served)
    assert float(cap) == pytest.approx(58e9 / 150.0)  # the share binds: < one beam
    # Few cells: each gets a whole beam, never more.
    assert float(cell_capacity_bps(1.4e9, 1, 58e9, 10.0)) == pytest.approx(1.4e9)
    assert float(cell_capacity_bps(1.4e9, 2, 58e9, 0.0)) == pytest.approx(2.8e9)
    # Sparse: only occupied cells take beam time (Poisson occupancy 1 - exp(-m)).
    m = 1e-3 * 250.0  # 0.25 subscribers per cell
    sparse = cells_per_satellite(1e-9, 9_000 * 250e6, 250e6, 60)
    assert float(sparse) == pytest.approx(150.0 * (1.0 - np.exp(-m)), rel=1e-9)


def test_density_load_cell_and_satellite_utilisation_agree_when_every_cell_is_occupied():
    """With every cell occupied and the share binding, cell utilisation equals satellite
    utilisation: density A d / (C n / (F occ / A)) = density F d / (n C)."""
    from starmesh.service.throughput import density_load

    ld = density_load(
        subscribers_per_m2=0.2475e-6,
        demand_bps=3.366e6,
        altitude_m=np.array([[485e3, 550e3]]),
        min_elevation_rad=np.radians(25.0),
        cell_area_m2=np.array([[253e6, 253e6]]),
        n_visible=np.array([[60, 40]]),
        beam_capacity=np.array([[1.38e9, 1.38e9]]),
        beams_per_cell=1.0,
        sat_capacity_bps=58e9,
    )
    rho_cell = ld.cell_offered_bps / ld.cell_capacity_bps
    rho_sat = ld.sat_offered_bps / 58e9
    np.testing.assert_allclose(rho_cell, rho_sat, rtol=1e-9)
    assert (ld.cell_capacity_bps < 1.38e9).all()


def test_density_load_capacity_partition_against_a_hand_computation():
    """A mixed fleet: 4 satellites in view, two v1.5 (20 Gbit/s) and two v2 mini (96 Gbit/s),
    capacity in view 232 Gbit/s. Cells handed out in proportion to capacity: a v1.5 serves
    20/232 of the footprint's cells and carries 20/232 of its subscribers, so every satellite
    in view is utilised alike, rho = density F d / 232 Gbit/s, and its cells get
    20 Gbit/s / cells = A x 232 Gbit/s / (F occ), the same under either generation. Split by
    count instead (1/4 each), the v1.5 carries as much as a v2 mini: rho 4.8x higher."""
    from starmesh.constants import EARTH_MEAN_RADIUS_M as R
    from starmesh.service.throughput import density_load

    dens, d, a_cell, h, eps = 0.2475e-6, 3.366e6, 253e6, 485e3, np.radians(25.0)
    lam = np.arccos(R * np.cos(eps) / (R + h)) - eps
    foot = 2 * np.pi * R**2 * (1 - np.cos(lam))
    occ = 1 - np.exp(-dens * a_cell)
    common = dict(
        subscribers_per_m2=dens,
        demand_bps=d,
        altitude_m=h,
        min_elevation_rad=eps,
        cell_area_m2=a_cell,
        n_visible=4,
        beam_capacity=1.38e9,
        beams_per_cell=1.0,
    )
    caps = np.array([20e9, 96e9])
    ld = density_load(**common, sat_capacity_bps=caps, capacity_in_view_bps=232e9)
    rho_hand = dens * foot * d / 232e9
    np.testing.assert_allclose(ld.sat_offered_bps / caps, [rho_hand, rho_hand], rtol=1e-12)
    cell_hand = a_cell * 232e9 / (foot * occ)
    np.testing.assert_allclose(ld.cell_capacity_bps, [cell_hand, cell_hand], rtol=1e-12)
    np.testing.assert_allclose(ld.cells_served, foot / a_cell * occ * caps / 232e9, rtol=1e-12)
    by_count = density_load(**common, sat_capacity_bps=caps)
    np.testing.assert_allclose(by_count.sat_offered_bps, dens * foot * d / 4, rtol=1e-12)
    np.testing.assert_allclose(
        by_count.sat_offered_bps[0] / 20e9 / rho_hand, 232 / 4 / 20, rtol=1e-12
    )
    # One capacity for all: the two partitions agree.
    same = density_load(**common, sat_capacity_bps=58e9, capacity_in_view_bps=4 * 58e9)
    plain = density_load(**common, sat_capacity_bps=58e9)
    np.testing.assert_allclose(same.cell_capacity_bps, plain.cell_capacity_bps, rtol=1e-12)
    np.testing.assert_allclose(same.sat_offered_bps, plain.sat_offered_bps, rtol=1e-12)
    # Only the populated part of the footprint loads the satellite.
    half = density_load(
        **common, sat_capacity_bps=caps, capacity_in_view_bps=232e9, populated_m2=foot / 2
    )
    np.testing.assert_allclose(half.sat_offered_bps, ld.sat_offered_bps / 2, rtol=1e-12)
    np.testing.assert_allclose(half.cell_capacity_bps, 2 * cell_hand, rtol=1e-12)


def test_footprint_area_in_a_country_against_shapely_monte_carlo():
    """The area of a footprint inside the United States (H3 res-4 cell centres within the
    footprint's half-angle) against points drawn uniformly on the spherical cap and tested
    with shapely against Natural Earth's outline: Kansas (all inside), Washington state
    (about half: Canada and the Pacific), the mid-Atlantic (none)."""
    from shapely import contains_xy

    from starmesh.regions import country_shape
    from starmesh.service.throughput import (
        footprint_area_in_region_m2,
        footprint_area_m2,
        footprint_half_angle_rad,
        region_cells_of,
    )

    region = region_cells_of(["United States of America"])
    us = country_shape("United States of America")
    h, eps = 485e3, np.radians(25.0)
    lam = float(footprint_half_angle_rad(h, eps))
    rng = np.random.default_rng(2)
    n = 40_000
    cz = rng.uniform(np.cos(lam), 1.0, n)
    th = rng.uniform(0.0, 2 * np.pi, n)
    local = np.stack([np.sqrt(1 - cz**2) * np.cos(th), np.sqrt(1 - cz**2) * np.sin(th), cz], 1)
    sites = [(39.5, -98.5), (47.0, -120.5), (35.0, -40.0)]
    got = footprint_area_in_region_m2(
        np.radians([s[0] for s in sites]),
        np.radians([s[1] for s in sites]),
        np.full(len(sites), lam),
        region,
    )
    foot = float(footprint_area_m2(h, eps))
    for (la, lo), area in zip(sites, got, strict=True):
        phi, lmb = np.radians(la), np.radians(lo)
        east = np.array([-np.sin(lmb), np.cos(lmb), 0.0])
        up = np.array([np.cos(phi) * np.cos(lmb), np.cos(phi) * np.sin(lmb), np.sin(phi)])
        north = np.cross(up, east)
        p = local[:, :1] * east + local[:, 1:2] * north + local[:, 2:] * up
        inside = contains_xy(
            us, np.degrees(np.arctan2(p[:, 1], p[:, 0])), np.degrees(np.arcsin(p[:, 2]))
        )
        want = float(np.mean(inside)) * foot
        # Cell-centre counting misplaces up to half a rim of ~45 km cells: 5 % of the cap.
        assert abs(area - want) <= 0.05 * foot, (la, lo, area / foot, want / foot)
    assert got[0] / foot > 0.95 and 0.3 < got[1] / foot < 0.6 and got[2] == 0.0


def test_sixteen_beams_reproduce_the_published_v15_capacity():
    """Pekhterev's 16 Ku beams per v1.5 satellite, each at the link budget's DVB-S2X capacity
    in a 240 MHz channel, against the published ~20 Gbit/s per v1.5 satellite (+-50 %)."""
    from starmesh.service import params as P
    from starmesh.service.throughput import beam_capacity_bps

    h = 550e3
    el = np.radians([40.0, 60.0, 90.0])
    from starmesh.constants import EARTH_MEAN_RADIUS_M as R

    # Slant range at elevation el (closed form on the sphere).
    d = np.sqrt((R + h) ** 2 - (R * np.cos(el)) ** 2) - R * np.sin(el)
    total = P.USER_BEAMS_V1_5 * beam_capacity_bps(d, el)
    assert np.all(np.abs(total / P.V1_5.capacity_bps - 1.0) <= 0.5), total / 1e9
    # The uplink likewise: 16 receive beams x the uplink budget's one-channel capacity against
    # a quarter of the downlink capacity (500 MHz of uplink band over 2 GHz of downlink), within
    # the ratio's factor-2 uncertainty; one uplink channel is well below a downlink beam.
    up = beam_capacity_bps(d, el, direction="up")
    total_up = P.USER_BEAMS_V1_5 * up
    ratio = total_up / (P.UPLINK_CAPACITY_RATIO * P.V1_5.capacity_bps)
    assert np.all((ratio >= 0.5) & (ratio <= 2.0)), total_up / 1e9
    assert np.all(up < 0.5 * beam_capacity_bps(d, el))
    with pytest.raises(ValueError, match="direction"):
        beam_capacity_bps(d, el, direction="sideways")  # type: ignore[arg-type]


def test_h3_cells():
    cells = cells_of([50.67, 40.0], [4.61, -100.0], 5)
    a = cell_area_m2(cells)
    assert np.all((a > 150e6) & (a < 350e6))  # H3 res-5 hexagons: mean 252.9 km^2


@pytest.mark.parametrize("split", [5, 13, 31])
def test_chunked_schedule_equals_one_run(split):
    # The engine runs chunk by chunk: carrying (slot, serving) across a chunk boundary must give
    # the same assignments and handovers as one run ("highest": no look-ahead).
    vis, el, _ = _sky(50, 4, 9, 11)
    t = np.arange(50.0)
    one = schedule(t, vis, el, policy="highest")
    a = schedule(t[:split], vis[:split], el[:split], policy="highest")
    b = schedule(t[split:], vis[split:], el[split:], policy="highest", previous=a.carry)
    assert np.array_equal(np.vstack([a.serving, b.serving]), one.serving)
    assert np.array_equal(a.handovers + b.handovers, one.handovers)


def test_rain_fade_feeds_dvbs2x_capacity():
    pytest.importorskip("itur")
    from starmesh.linkbudget import capacity_bps, starlink_ku_user
    from starmesh.service.throughput import beam_capacity_bps, rain_fade_db

    a01 = float(rain_fade_db(50.67, 4.61, 40.0, frequency_hz=11.7e9, exceedance_percent=0.1))
    a1 = float(rain_fade_db(50.67, 4.61, 40.0, frequency_hz=11.7e9, exceedance_percent=1.0))
    assert 0.0 < a1 < a01 < 20.0  # rarer events fade deeper; Ku in Belgium stays below 20 dB
    lb = starlink_ku_user().downlink
    d, el = np.array([800e3]), np.radians([40.0])
    q = lb.evaluate(d, el)
    want = capacity_bps(
        q.sinr_db - a01,
        lb.bandwidth_hz,
        table=lb.modcods,
        implementation_margin_db=lb.implementation_margin_db,
    )
    got = beam_capacity_bps(d, el, rain_db=a01)
    np.testing.assert_allclose(got, want)
    assert got[0] < beam_capacity_bps(d, el)[0]


_Q1 = "TLE 2026-05-12, launched before 2025-04-01 (5,435 sats)"
_MAY_2026 = "TLE 2026-05-12, operational (8,596 sats)"


@pytest.fixture(scope="module")
def study() -> dict:
    # scripts/validate_service.py at its full 300 steps (the 60-s windows of one run spread
    # over 118-172 Mbit/s, so a shorter study samples a different figure).
    from starmesh.service.validate import run_validation

    return run_validation(n_steps=300)


@pytest.mark.slow
def test_validation_study_figures(study):
    # Tolerances: median RTT +-25 %, download +-35 %.
    be = study["belgium"]["rtt_ms"]
    assert abs(be["min"] / 20.0 - 1) < 0.15  # the calibration target
    # The 2022 distribution with the pre-2024 excess over the 12-city anchor set: 22.0 / 41.0 /
    # 51.2 / 66.8 ms against Michel et al.'s 20 / 40 / 50 / 60 (minimum, p25, median, p75).
    for key, measured in (("p25", 40.0), ("median", 50.0), ("p75", 60.0)):
        assert abs(be[key] / measured - 1) < 0.25, key
    for key in (_Q1, _MAY_2026):
        assert abs(study["us"][key]["ratio_median_rtt"] - 1) < 0.25
    assert abs(study["us"][_Q1]["ratio_download"] - 1) <= 0.35


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known gap (README 'Validation against measurements'): US download ratio 2.10 with "
    "the May-2026 fleet, which over-states Q1 2025's by 3,161 satellites (the Q1 fleet is the "
    "row's)",
)
def test_validation_known_gap_may_2026_download(study):
    assert abs(study["us"][_MAY_2026]["ratio_download"] - 1) < 0.35


def test_sparse_scheduler_on_gsl_candidates_matches_dense():
    # The engine's GslCandidates (sorted by t, site, sat) go straight into schedule_sparse.
    from starmesh.service.scheduler import schedule_sparse

    vis, el, _ = _sky(40, 5, 11, 3)
    t = np.arange(40.0)
    ti, gi, si = np.nonzero(vis)
    for policy in ("hold", "highest"):
        dense = schedule(t, vis, el, policy=policy)
        sparse = schedule_sparse(t, 5, ti, gi, si, el[ti, gi, si], policy=policy)
        assert np.array_equal(dense.serving, sparse.serving)
        assert np.array_equal(dense.handovers, sparse.handovers)
    with pytest.raises(ScenarioError, match="sorted by t_idx"):
        schedule_sparse(t, 5, ti[::-1], gi[::-1], si[::-1], el[ti, gi, si][::-1])


def test_hold_prefers_satellite_visible_whole_slot_over_higher_start():
    t = np.arange(12.0, 27.0)
    el = np.full((t.size, 1, 2), 0.7)
    el[:, 0, 0] = np.r_[1.4, np.full(t.size - 1, 1.3)]
    el[-1, 0, 0] = 0.1  # sets on the slot's last step
    vis = el >= 0.5
    assert np.all(schedule(t, vis, el, policy="hold").serving[:, 0] == 1)
    assert schedule(t, vis, el, policy="highest").serving[0, 0] == 0


def test_serving_gsl_mask_and_delay():
    from starmesh.service.chunk import serving_gsl_mask, serving_link_delay_s

    # Sites 0, 1 terminals; site 2 a gateway. Two steps, satellites 0..2.
    t = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    g = np.array([0, 0, 1, 2, 2, 0, 1, 1, 2])
    s = np.array([0, 1, 2, 0, 1, 1, 0, 2, 2])
    length = np.arange(9) * 1e5 + 6e5
    serving = np.array([[1, 2], [1, -1]], dtype=np.int32)
    keep = serving_gsl_mask(t, g, s, serving, [0, 1])
    assert keep.tolist() == [False, True, True, True, True, True, False, False, True]
    d = serving_link_delay_s(t, g, s, length, serving, [0, 1])
    np.testing.assert_allclose(d[0], [length[1] / C_M_S, length[2] / C_M_S])
    assert d[1, 0] == pytest.approx(length[5] / C_M_S) and np.isnan(d[1, 1])


def test_rtt_quantiles_fast_path_matches_sampling_and_irwin_hall():
    p = ServiceParams(utilisation=0.0)
    prop = np.array([[8e-3, 20e-3], [np.inf, 9e-3]])
    up = np.full((2, 2), 2.5e-3)
    q, _ = L.rtt_quantiles_s(prop, up, np.zeros((2, 2)), params=p, q=(0.5,))
    # Zero load: random part = frame x Irwin-Hall(4), whose median is exactly 2.
    det = (
        prop
        + 2 * up
        + (p.grant_frames + 2) * FRAME_S
        + 2 * FRAME_S
        + 2 * (p.sat_processing_s + p.ground_processing_s)
    )
    fin = np.isfinite(prop)
    np.testing.assert_allclose(q[0][fin], (det + 2 * FRAME_S)[fin], rtol=0, atol=0.02 * FRAME_S)
    assert np.isinf(q[0][1, 0])
    # Loaded: agrees with brute-force sampling of rtt_breakdown.
    p2 = ServiceParams()
    rho_u = np.array([[0.3, 0.8], [0.6, 0.9]])
    rho_f = np.array([[0.2, 0.5], [0.7, 0.1]])
    prop2 = np.full((2, 2), 10e-3)
    qs, _ = L.rtt_quantiles_s(
        prop2, up, np.ones((2, 2)), params=p2, rho_user=rho_u, rho_feeder=rho_f, q=(0.5, 0.95)
    )
    b = L.rtt_breakdown(
        prop2,
        up,
        np.ones((2, 2)),
        params=p2,
        rng=np.random.default_rng(9),
        n_samples=40_000,
        rho_user=rho_u,
        rho_feeder=rho_f,
    )
    np.testing.assert_allclose(qs, b.quantiles_s((0.5, 0.95)), rtol=0.02)
    # Deterministic: same inputs, same bytes.
    again, _ = L.rtt_quantiles_s(
        prop2, up, np.ones((2, 2)), params=p2, rho_user=rho_u, rho_feeder=rho_f, q=(0.5, 0.95)
    )
    assert again.tobytes() == qs.tobytes()


def test_pre2024_excess_is_the_exponential_with_the_stated_median():
    # Against scipy's exponential law (scale = mean = median / ln 2): median 15.5 ms, mean
    # 22.36 ms, p99 103 ms (SpaceX: a p99 drop of more than 85 ms).
    from scipy import stats

    from starmesh.service.params import PRE2024_EXCESS_MEDIAN_S as m

    u = np.array([0.0, 0.25, 0.5, 0.75, 0.99])
    law = stats.expon(scale=m / np.log(2.0))
    np.testing.assert_allclose(L.pre2024_excess_s(u, median_s=m), law.ppf(u), rtol=1e-12)
    assert L.pre2024_excess_s(0.5, median_s=m) == pytest.approx(15.5e-3, rel=1e-12)
    assert law.mean() == pytest.approx(22.36e-3, rel=1e-3)
    assert 85e-3 < law.ppf(0.99) < 110e-3


def test_pre2024_excess_adds_to_the_same_draws_in_both_rtt_paths():
    # rtt_breakdown: the excess is drawn after the eight other variates, so the other parts keep
    # their bytes and the difference is exactly the excess of the next draws.
    p0 = ServiceParams()
    p1 = ServiceParams(pre2024_excess_median_s=15.5e-3)
    prop = np.full((3, 2), 10e-3)
    up = np.full((3, 2), 2.5e-3)
    b0 = L.rtt_breakdown(prop, up, np.zeros((3, 2)), params=p0, rng=np.random.default_rng(4))
    rng = np.random.default_rng(4)
    b1 = L.rtt_breakdown(prop, up, np.zeros((3, 2)), params=p1, rng=rng)
    ref = np.random.default_rng(4)
    ref.random((8, 3, 2, 200))
    extra = L.pre2024_excess_s(ref.random((3, 2, 200)), median_s=15.5e-3)
    np.testing.assert_allclose(b1.samples_s - b0.samples_s, extra, rtol=0, atol=1e-15)
    i = L.COMPONENTS.index("pre2024_excess")
    np.testing.assert_allclose(b1.mean_s[..., i], 15.5e-3 / np.log(2.0))
    np.testing.assert_array_equal(np.delete(b1.mean_s, i, -1), np.delete(b0.mean_s, i, -1))
    # The run's fast path (cached quantile tables) agrees with brute-force sampling.
    qs, _ = L.rtt_quantiles_s(prop, up, np.zeros((3, 2)), params=p1, q=(0.25, 0.5, 0.75))
    big = L.rtt_breakdown(
        prop, up, np.zeros((3, 2)), params=p1, rng=np.random.default_rng(2), n_samples=40_000
    )
    np.testing.assert_allclose(qs, big.quantiles_s((0.25, 0.5, 0.75)), rtol=0.02)


def test_random_policy_with_seed_is_independent_of_chunking():
    from starmesh.service.scheduler import schedule_sparse

    vis, el, _ = _sky(45, 4, 9, 21)
    vis[:] = True  # every satellite eligible: the random draw alone decides
    t = np.arange(45.0)
    ti, gi, si = np.nonzero(vis)
    e = el[ti, gi, si]
    one = schedule_sparse(t, 4, ti, gi, si, e, policy="random", seed=5)
    cut = np.searchsorted(ti, 27)
    a = schedule_sparse(t[:27], 4, ti[:cut], gi[:cut], si[:cut], e[:cut], policy="random", seed=5)
    b = schedule_sparse(
        t[27:], 4, ti[cut:] - 27, gi[cut:], si[cut:], e[cut:], policy="random", seed=5
    )
    assert np.array_equal(np.vstack([a.serving, b.serving]), one.serving)
    assert len({tuple(one.serving[k]) for k in (0, 15, 30)}) > 1  # it does change per slot
