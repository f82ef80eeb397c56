"""Tests of starmesh.traffic: demand models, the diurnal curve and validation; and one flow set
carried end to end through routing and max-min fair allocation."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import dijkstra

from starmesh.capacity import (
    DEMAND_LIMITED,
    LinkCapacities,
    build_resources,
    flow_incidence,
    max_min_fair,
    node_paths_from_predecessors,
)
from starmesh.errors import ScenarioError
from starmesh.frames import great_circle_m
from starmesh.ground import Site, Sites
from starmesh.routing import RoutingProblem, snapshot_graph
from starmesh.traffic import (
    DiurnalProfile,
    Flows,
    access_flows,
    explicit_flows,
    gravity_flows,
    local_solar_offset_h,
)

REL_TOL = 1e-12
HOUR_S = 3600.0


def ukraine_sites() -> Sites:
    return Sites.from_sites(
        [
            Site("Kyiv", "terminal", 50.45, 30.52),
            Site("Kharkiv", "terminal", 49.98, 36.25),
            Site("Lviv", "terminal", 49.84, 24.03),
            Site("Wola-Krobowska", "gateway", 52.0, 20.0),
            Site("Warsaw", "pop", 52.23, 21.01),
            Site("Frankfurt", "pop", 50.11, 8.68),
        ]
    )


# --- Diurnal profile ---------------------------------------------------------------------------


def test_profile_extremes_and_period() -> None:
    p = DiurnalProfile()
    assert p.factor(21.0) == 1.0
    assert p.factor(4.0) == pytest.approx(0.4, rel=REL_TOL)
    h = np.linspace(-48, 48, 2001)
    f = p.factor(h)
    np.testing.assert_allclose(f, p.factor(h + 24.0), rtol=1e-12)
    assert f.min() >= 0.4 - 1e-12 and f.max() <= 1.0
    # Rises from the trough to the peak, falls after.
    rise = p.factor(np.linspace(4, 21, 200))
    fall = p.factor(np.linspace(21, 28, 200))
    assert np.all(np.diff(rise) > 0) and np.all(np.diff(fall) < 0)


def test_profile_is_smooth_at_the_joints() -> None:
    p = DiurnalProfile(peak_hour=20.0, trough_hour=5.0, trough_fraction=0.25)
    eps = 1e-4
    for hour in (20.0, 5.0):
        left, mid, right = p.factor([hour - eps, hour, hour + eps])
        # Slope continuous (zero) at the extremes: the difference is second order.
        assert abs(left - mid) < 1e-6 and abs(right - mid) < 1e-6
        assert abs((right - mid) - (mid - left)) < 1e-6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"peak_hour": 24.0}, r"traffic.diurnal.peak_hour: must be in \[0, 24\), got 24.0"),
        ({"trough_hour": 21.0}, r"trough_hour: must differ from peak_hour, both are 21.0"),
        ({"trough_fraction": 1.5}, r"trough_fraction: must be in \[0, 1\], got 1.5"),
    ],
)
def test_bad_profile(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ScenarioError, match=match):
        DiurnalProfile(**kwargs)


def test_local_solar_offset() -> None:
    np.testing.assert_allclose(
        local_solar_offset_h(np.radians([0.0, 30.0, -90.0, 180.0])), [0.0, 2.0, -6.0, 12.0]
    )


# --- Access flows ------------------------------------------------------------------------------


def test_access_flows_aggregated_and_individual() -> None:
    sites = ukraine_sites()
    agg = access_flows(
        sites,
        ["Kyiv", "Lviv"],
        "Warsaw",
        down_bps=300e6,
        up_bps=10e6,
        n_terminals=[100, 3],
        max_down_bps=220e6,
    )
    assert agg.names == ("Warsaw->Kyiv", "Kyiv->Warsaw", "Warsaw->Lviv", "Lviv->Warsaw")
    # Each terminal's demand is capped at its rate, then multiplied by the terminals.
    assert agg.demand_bps.tolist() == [100 * 220e6, 100 * 10e6, 3 * 220e6, 3 * 10e6]
    assert agg.src_site.tolist() == [4, 0, 4, 2]
    one = access_flows(
        sites, ["Lviv"], ["Warsaw"], down_bps=300e6, n_terminals=3, aggregate=False,
        max_down_bps=220e6,
    )  # fmt: skip
    # No upload demand: no upload flows.
    assert one.names == ("Warsaw->Lviv#0", "Warsaw->Lviv#1", "Warsaw->Lviv#2")
    assert one.demand_bps.tolist() == [220e6] * 3
    none = access_flows(sites, ["Kyiv"], down_bps=1e6, n_terminals=0)
    assert len(none) == 0


def test_access_flows_nearest_pop() -> None:
    sites = ukraine_sites()
    f = access_flows(sites, ["Kyiv", "Kharkiv", "Lviv"], down_bps=1e6)
    pops = sites.of_kind("pop")
    d = great_circle_m(
        sites.lat_rad[[0, 1, 2]][:, None], sites.lon_rad[[0, 1, 2]][:, None],
        sites.lat_rad[pops][None, :], sites.lon_rad[pops][None, :],
    )  # fmt: skip
    assert f.src_site.tolist() == pops[np.argmin(d, axis=1)].tolist() == [4, 4, 4]
    # A gateway may stand in for a PoP.
    g = access_flows(sites, [1], [3], down_bps=1e6)
    assert g.names == ("Wola-Krobowska->Kharkiv",)


def test_access_flows_diurnal_follow_local_time() -> None:
    sites = ukraine_sites()
    epoch = "2025-03-01T00:00:00Z"
    f = access_flows(sites, ["Kyiv"], down_bps=100e6, diurnal=True, epoch=epoch)
    lon_h = 30.52 / 15.0
    # At 21:00 local solar time in Kyiv the demand is the peak; at 04:00 the trough.
    t_peak = (21.0 - lon_h) * HOUR_S
    t_trough = (4.0 - lon_h) * HOUR_S + 24 * HOUR_S
    assert f.demand_at(t_peak)[0] == pytest.approx(100e6, rel=REL_TOL)
    assert f.demand_at(t_trough)[0] == pytest.approx(40e6, rel=REL_TOL)
    series = f.demand_at(np.arange(0, 48 * HOUR_S, 600.0))
    assert series.shape == (288, 1)
    np.testing.assert_allclose(series[:144], series[144:], rtol=1e-12)
    # The epoch's time of day shifts the curve.
    later = access_flows(sites, ["Kyiv"], down_bps=100e6, diurnal=True, epoch="2025-03-01T06:00Z")
    assert later.demand_at(t_peak - 6 * HOUR_S)[0] == pytest.approx(100e6, rel=REL_TOL)
    # Minutes and seconds of the epoch count too: 06:45:36 UTC is 6.76 h.
    odd = access_flows(sites, ["Kyiv"], down_bps=100e6, diurnal=True, epoch="2025-03-01T06:45:36Z")
    assert odd.demand_at(t_peak - 6.76 * HOUR_S)[0] == pytest.approx(100e6, rel=REL_TOL)
    assert odd.demand_at(t_trough - 6.76 * HOUR_S)[0] == pytest.approx(40e6, rel=REL_TOL)


def test_access_flow_errors() -> None:
    sites = ukraine_sites()
    with pytest.raises(
        ScenarioError, match=r"traffic.access.terminals: unknown site 'Kiev' .* did you mean"
    ):
        access_flows(sites, ["Kiev"], down_bps=1e6)
    with pytest.raises(
        ScenarioError, match=r"terminals: site 'Warsaw' is a pop, expected a terminal"
    ):
        access_flows(sites, ["Warsaw"], down_bps=1e6)
    with pytest.raises(
        ScenarioError, match=r"pops: site 'Lviv' is a terminal, expected a pop or a gateway"
    ):
        access_flows(sites, ["Kyiv"], ["Lviv"], down_bps=1e6)
    with pytest.raises(ScenarioError, match=r"pops: conflicting sizes: 3 terminals, 2 PoPs"):
        access_flows(sites, [0, 1, 2], [4, 5], down_bps=1e6)
    with pytest.raises(ScenarioError, match=r"site index 9 out of range \[0, 6\)"):
        access_flows(sites, [9], down_bps=1e6)
    with pytest.raises(ScenarioError, match=r"down_bps: must be finite and >= 0 bit/s, got -1"):
        access_flows(sites, ["Kyiv"], down_bps=-1.0)
    with pytest.raises(ScenarioError, match=r"n_terminals: must be integers >= 0, got \[-2\]"):
        access_flows(sites, ["Kyiv"], down_bps=1.0, n_terminals=[-2])
    with pytest.raises(ScenarioError, match=r"traffic.epoch: diurnal demand needs the UTC time"):
        access_flows(sites, ["Kyiv"], down_bps=1.0, diurnal=True)
    with pytest.raises(ScenarioError, match=r"traffic.epoch: time .* has no timezone"):
        access_flows(sites, ["Kyiv"], down_bps=1.0, diurnal=True, epoch=datetime(2025, 3, 1))
    no_pop = Sites.from_sites([Site("Kyiv", "terminal", 50.45, 30.52)])
    with pytest.raises(ScenarioError, match=r"pops: no PoP among the sites"):
        access_flows(no_pop, ["Kyiv"], down_bps=1.0)


# --- Gravity model -----------------------------------------------------------------------------


def test_gravity_by_hand() -> None:
    # Three cities on the equator, 10 deg apart, populations 1, 2, 4; alpha = 2.
    sites = Sites.from_sites(
        [Site(n, "terminal", 0.0, lon) for n, lon in (("A", 0.0), ("B", 10.0), ("C", 20.0))]
    )
    f = gravity_flows(sites, ["A", "B", "C"], [1.0, 2.0, 4.0], total_bps=1e9, alpha=2.0)
    # Weights with D = 10 deg of arc: AB = 2 / D^2, BC = 8 / D^2, AC = 4 / (2D)^2 = 1 / D^2;
    # each in both directions, total 2 (2 + 8 + 1) = 22.
    want = {"A->B": 2, "A->C": 1, "B->A": 2, "B->C": 8, "C->A": 1, "C->B": 8}
    got = dict(zip(f.names, f.demand_bps.tolist(), strict=True))
    assert got.keys() == want.keys()
    for k, w in want.items():
        assert got[k] == pytest.approx(1e9 * w / 22, rel=1e-9)
    assert f.demand_bps.sum() == pytest.approx(1e9, rel=REL_TOL)


@given(
    st.lists(st.one_of(st.just(0.0), st.floats(1.0, 1e7)), min_size=2, max_size=8),
    st.floats(0.0, 3.0),
    st.floats(0.0, 1e12),
)
@settings(max_examples=50, deadline=None)
def test_gravity_properties(pop: list[float], alpha: float, total: float) -> None:
    sites = Sites.from_sites(
        [Site(f"c{i}", "terminal", 10.0 * (i % 3), 17.0 * i - 60.0) for i in range(len(pop))]
    )
    if sum(1 for p in pop if p > 0) < 2:
        with pytest.raises(ScenarioError, match=r"at least two endpoints with population > 0"):
            gravity_flows(sites, list(range(len(pop))), pop, total_bps=total, alpha=alpha)
        return
    f = gravity_flows(sites, list(range(len(pop))), pop, total_bps=total, alpha=alpha)
    assert f.demand_bps.sum() == pytest.approx(total, rel=1e-9, abs=1e-6)
    # Symmetric: i -> j wants what j -> i wants.
    pairs = zip(f.src_site.tolist(), f.dst_site.tolist(), strict=True)
    fwd = dict(zip(pairs, f.demand_bps.tolist(), strict=True))
    for (i, j), d in fwd.items():
        assert fwd[(j, i)] == pytest.approx(d, rel=1e-12)
    # Endpoints of zero population get no flows.
    zero = {i for i, p in enumerate(pop) if p == 0}
    assert not zero & set(f.src_site.tolist()) and not zero & set(f.dst_site.tolist())


def test_gravity_min_distance_floor() -> None:
    sites = Sites.from_sites(
        [Site("A", "terminal", 0.0, 0.0), Site("A2", "terminal", 0.0, 0.01),
         Site("B", "terminal", 0.0, 10.0)]
    )  # fmt: skip
    f = gravity_flows(sites, [0, 1, 2], [1.0, 1.0, 1.0], total_bps=1.0, min_distance_m=2e6)
    # Every pair is closer than 2,000 km, so all demands are equal.
    np.testing.assert_allclose(f.demand_bps, 1 / 6, rtol=1e-12)


def test_gravity_errors() -> None:
    sites = ukraine_sites()
    with pytest.raises(ScenarioError, match=r"site 'Kyiv' is listed more than once"):
        gravity_flows(sites, ["Kyiv", "Lviv", 0], [1, 2, 3], total_bps=1.0)
    with pytest.raises(ScenarioError, match=r"needs at least two endpoints, got 1"):
        gravity_flows(sites, ["Kyiv"], [1], total_bps=1.0)
    with pytest.raises(ScenarioError, match=r"population: must be finite and >= 0, got -3.0 for"):
        gravity_flows(sites, ["Kyiv", "Lviv"], [1, -3], total_bps=1.0)
    with pytest.raises(ScenarioError, match=r"population: conflicting sizes: 2 endpoints, 3"):
        gravity_flows(sites, ["Kyiv", "Lviv"], [1, 2, 3], total_bps=1.0)
    with pytest.raises(ScenarioError, match=r"alpha: must be finite and >= 0, got -1.0"):
        gravity_flows(sites, ["Kyiv", "Lviv"], [1, 2], total_bps=1.0, alpha=-1.0)
    with pytest.raises(ScenarioError, match=r"total_bps: must be finite and >= 0 bit/s, got inf"):
        gravity_flows(sites, ["Kyiv", "Lviv"], [1, 2], total_bps=math.inf)


# --- Explicit flows and the Flows container -----------------------------------------------------


def test_explicit_flows() -> None:
    sites = ukraine_sites()
    f = explicit_flows(sites, [("Kyiv", "Frankfurt", 5e6), (2, "Kharkiv", math.inf)])
    assert f.names == ("Kyiv->Frankfurt", "Lviv->Kharkiv")
    assert f.demand_bps.tolist() == [5e6, math.inf]
    assert f.demand_at(123.0).tolist() == [5e6, math.inf]
    with pytest.raises(ScenarioError, match=r"traffic.flows.dst: unknown site 'Berlin'"):
        explicit_flows(sites, [("Kyiv", "Berlin", 1.0)])
    with pytest.raises(ScenarioError, match=r"flow 0 goes from site 0 to itself"):
        explicit_flows(sites, [("Kyiv", "Kyiv", 1.0)])
    with pytest.raises(ScenarioError, match=r"demand_bps: must be >= 0 bit/s, got -2.0"):
        explicit_flows(sites, [("Kyiv", "Lviv", -2.0)])
    with pytest.raises(ScenarioError, match=r"flow 0 must be \(src, dst, demand_bps\)"):
        explicit_flows(sites, [("Kyiv", "Lviv")])  # type: ignore[list-item]


def test_flows_container() -> None:
    with pytest.raises(ScenarioError, match=r"conflicting sizes: 2 sources, 1 destinations"):
        Flows(np.array([0, 1]), np.array([1]), np.array([1.0, 2.0]))
    with pytest.raises(ScenarioError, match=r"got nan for flow 1"):
        Flows(np.array([0, 1]), np.array([1, 0]), np.array([1.0, math.nan]))
    with pytest.raises(ScenarioError, match=r"names: conflicting sizes: 1 names, 2 flows"):
        Flows(np.array([0, 1]), np.array([1, 0]), np.array([1.0, 2.0]), names=("a",))
    f = Flows(np.array([2, 0, 2, 1]), np.array([0, 1, 0, 2]), np.array([1.0, 2.0, 3.0, 4.0]))
    ps, pd, fp = f.unique_pairs()
    assert list(zip(ps.tolist(), pd.tolist(), strict=True)) == [(0, 1), (1, 2), (2, 0)]
    assert fp.tolist() == [2, 0, 2, 1]
    assert not f.src_site.flags.writeable


def test_concat() -> None:
    sites = ukraine_sites()
    a = access_flows(sites, ["Kyiv"], down_bps=10e6, diurnal=True, epoch="2025-03-01T12:00Z")
    b = explicit_flows(sites, [("Lviv", "Kharkiv", 1e6)])
    both = Flows.concat([a, b])
    assert both.names == ("Warsaw->Kyiv", "Lviv->Kharkiv")
    assert both.diurnal.tolist() == [True, False]
    np.testing.assert_array_equal(both.demand_at(3600.0), [a.demand_at(3600.0)[0], 1e6])
    c = access_flows(sites, ["Lviv"], down_bps=10e6, diurnal=True, epoch="2025-03-01T13:00Z")
    with pytest.raises(ScenarioError, match=r"different epochs or diurnal profiles"):
        Flows.concat([a, c])
    assert len(Flows.concat([])) == 0


# --- End to end: flows -> routes -> resources -> rates -----------------------------------------


def test_access_flows_through_a_network() -> None:
    # Satellite 0 serves Kyiv (site 0) and the gateway (site 1), which is on fibre to the PoP.
    sites = Sites.from_sites(
        [
            Site("Kyiv", "terminal", 50.45, 30.52),
            Site("Wola-Krobowska", "gateway", 52.0, 20.0),
            Site("Warsaw", "pop", 52.23, 21.01),
        ]
    )
    flows = access_flows(
        sites, ["Kyiv"], down_bps=300e6, up_bps=20e6, n_terminals=10, max_down_bps=220e6
    )
    problem = RoutingProblem(
        n_sats=1,
        n_sites=3,
        gsl_site=np.array([True, True, False]),
        isl_edges=np.zeros((0, 2), np.int32),
        fibre_gw=np.array([1]),
        fibre_pop=np.array([2]),
        fibre_delay_s=np.array([1e-3]),
        pair_src=flows.src_site,
        pair_dst=flows.dst_site,
    )
    graph = snapshot_graph(
        problem,
        isl_delay_s=None,
        gsl_site=np.array([0, 1], np.int32),
        gsl_sat=np.array([0, 0], np.int32),
        gsl_delay_s=np.array([2e-3, 2e-3]),
    )
    _, pred = dijkstra(graph, indices=problem.out_node(flows.src_site), return_predecessors=True)
    ptr, nodes = node_paths_from_predecessors(
        pred, np.arange(len(flows)), problem.in_node(flows.dst_site)
    )
    caps = LinkCapacities(sat_user_down_bps=1e9)
    res = build_resources(
        1, sites.kinds, problem.isl_edges, problem.fibre_gw, problem.fibre_pop, caps,
        n_terminals_per_site=10,
    )  # fmt: skip
    out = max_min_fair(flow_incidence(res, ptr, nodes), res.capacity_bps, flows.demand_at(0.0))
    # Down: 10 x 220 Mbit/s wanted, the satellite's 1 Gbit/s user downlink limits it.
    # Up: 10 x 20 Mbit/s, under every capacity.
    assert out.rate_bps.tolist() == [1e9, 200e6]
    assert out.bottleneck.tolist() == [int(res.sat("user_down", 0)), DEMAND_LIMITED]
    assert out.utilisation[res.site_down[0]] == pytest.approx(1e9 / 2.2e9, rel=REL_TOL)
