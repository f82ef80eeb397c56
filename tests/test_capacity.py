"""Tests of starmesh.capacity: resources, paths -> resources, max-min fair allocation.

Three independent checks of the allocation: hand-solved textbook networks, the defining
properties of max-min fairness on random instances (hypothesis), and a lexicographic linear
program (scipy's HiGHS) on small random instances.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from starmesh.capacity import (
    DEMAND_LIMITED,
    LASER_TERMINALS,
    RESOURCE_KINDS,
    UNROUTABLE,
    Allocation,
    LinkCapacities,
    Resources,
    build_resources,
    flow_incidence,
    jain_index,
    max_min_fair,
    max_min_fair_lp,
    node_paths_from_predecessors,
    pack_paths,
    path_resources,
    reverse_paths,
)
from starmesh.errors import ScenarioError
from starmesh.routing import RoutingProblem, snapshot_graph

#: Relative tolerance of rates computed by the same float64 operations in a different order.
REL_TOL = 1e-12
#: Relative tolerance of the allocation's own saturation test (its ``rtol``) plus rounding.
SAT_TOL = 1e-8
#: Agreement with the linear-programming reference (HiGHS works to about 1e-9).
LP_TOL = 1e-6


def check_max_min(
    a: NDArray[np.float64], cap: NDArray[np.float64], dem: NDArray[np.float64], out: Allocation
) -> None:
    """Assert the defining properties of a max-min fair allocation.

    Feasible (no resource over capacity, no flow over demand); and every flow either gets its
    demand or crosses a saturated resource on which no flow has a larger rate (Bertsekas and
    Gallager, Data Networks, sec. 6.5.2: the bottleneck characterisation).
    """
    rate = out.rate_bps
    routed = (a > 0).any(axis=1)
    assert np.all(rate >= 0)
    assert np.all(rate[~routed] == 0) and np.all(out.bottleneck[~routed] == UNROUTABLE)
    load = a.T @ rate
    np.testing.assert_allclose(out.load_bps, load, rtol=REL_TOL, atol=1e-12)
    scale = max(float(cap.max(initial=0.0)), 1.0)
    assert np.all(load <= cap + SAT_TOL * scale)
    assert np.all(rate <= dem * (1 + SAT_TOL) + 1e-300)
    saturated = load >= cap - SAT_TOL * scale
    # Each filling round freezes at least one flow.
    assert out.n_rounds <= int(routed.sum())
    for i in np.flatnonzero(routed):
        if rate[i] >= dem[i] * (1 - SAT_TOL):
            continue
        on = np.flatnonzero(a[i] > 0)
        ok = [
            r
            for r in on
            if saturated[r] and rate[i] >= rate[a[:, r] > 0].max() * (1 - SAT_TOL) - 1e-300
        ]
        assert ok, f"flow {i} (rate {rate[i]}, demand {dem[i]}) has no bottleneck"
        assert out.bottleneck[i] in ok, (i, out.bottleneck[i], ok)


# --- Hand-solved networks ----------------------------------------------------------------------


def test_single_bottleneck_shares_equally() -> None:
    out = max_min_fair(np.ones((4, 1)), [12.0], [np.inf] * 4)
    assert out.rate_bps.tolist() == [3.0, 3.0, 3.0, 3.0]
    assert out.bottleneck.tolist() == [0, 0, 0, 0]
    assert out.utilisation.tolist() == [1.0]
    assert out.n_rounds == 1


def test_parking_lot() -> None:
    # Links of 6, 10, 20 bit/s in a row; flow 0 crosses all three, flow k + 1 only link k.
    # Link 0 is the tightest: flows 0 and 1 get 3 each; then link 1 leaves 10 - 3 = 7 for
    # flow 2 and link 2 leaves 20 - 3 = 17 for flow 3.
    a = np.array([[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    out = max_min_fair(a, [6.0, 10.0, 20.0], [np.inf] * 4)
    assert out.rate_bps.tolist() == [3.0, 3.0, 7.0, 17.0]
    assert out.bottleneck.tolist() == [0, 0, 1, 2]
    assert out.utilisation.tolist() == [1.0, 1.0, 1.0]
    # Equal links: the long flow gets half of a link, as do the short ones.
    k = 5
    a = np.vstack([np.ones((1, k)), np.eye(k)])
    out = max_min_fair(a, [10.0] * k, [np.inf] * (k + 1))
    assert out.rate_bps.tolist() == [5.0] * (k + 1)


def test_demand_limited_flows_leave_the_rest_to_others() -> None:
    out = max_min_fair(np.ones((4, 1)), [10.0], [1.0, 2.0, np.inf, 20.0])
    assert out.rate_bps.tolist() == [1.0, 2.0, 3.5, 3.5]
    assert out.bottleneck.tolist() == [DEMAND_LIMITED, DEMAND_LIMITED, 0, 0]
    # Everyone satisfied: the link is not saturated.
    out = max_min_fair(np.ones((2, 1)), [10.0], [1.0, 2.0])
    assert out.rate_bps.tolist() == [1.0, 2.0]
    assert out.bottleneck.tolist() == [DEMAND_LIMITED, DEMAND_LIMITED]
    assert out.utilisation.tolist() == [0.3]


def test_zero_capacity_blocks_only_its_flows() -> None:
    a = np.array([[1, 1], [0, 1], [1, 0]], dtype=float)
    out = max_min_fair(a, [0.0, 8.0], [np.inf] * 3)
    assert out.rate_bps.tolist() == [0.0, 8.0, 0.0]
    assert out.bottleneck.tolist() == [0, 1, 0]
    assert out.utilisation.tolist() == [0.0, 1.0]


def test_unroutable_zero_demand_and_infinite_capacity() -> None:
    a = csr_array(np.array([[0, 0], [1, 0], [0, 1], [1, 0]], dtype=float))
    out = max_min_fair(a, [4.0, np.inf], [5.0, 0.0, 7.0, np.inf])
    # Flow 0: no path. Flow 1: nothing wanted. Flow 2: only an unlimited resource. Flow 3: all
    # of resource 0, which flow 1 leaves alone.
    assert out.rate_bps.tolist() == [0.0, 0.0, 7.0, 4.0]
    assert out.bottleneck.tolist() == [UNROUTABLE, DEMAND_LIMITED, DEMAND_LIMITED, 0]
    assert out.utilisation.tolist() == [1.0, 0.0]


def test_a_flow_crossing_a_resource_twice_counts_twice() -> None:
    # 2 x + y = 9 with x = y.
    out = max_min_fair(np.array([[2.0], [1.0]]), [9.0], [np.inf, np.inf])
    assert out.rate_bps.tolist() == [3.0, 3.0]


def test_multiplicity_is_charged_when_a_flow_freezes() -> None:
    # Hand-solved: x crosses r0 and r1 twice each (weight 2), y only r0, z only r1.
    # r1 (capacity 3): 2 x + z = 3 with x = z, so x = z = 1 freeze in round one; r0 (capacity
    # 10) then has 10 - 2 * 1 = 8 left for y. Charging x once would give y 9 and overload r0.
    a = np.array([[2.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    out = max_min_fair(csr_array(a), [10.0, 3.0], [np.inf, np.inf, np.inf])
    np.testing.assert_allclose(out.rate_bps, [1.0, 8.0, 1.0], rtol=REL_TOL)
    np.testing.assert_allclose(out.load_bps, [10.0, 3.0], rtol=REL_TOL)
    assert out.n_rounds == 2


def test_one_flow_freezes_per_round_on_a_demand_staircase() -> None:
    # Hand-solved: one 5 bit/s link, demands 1, 1.9 and unlimited. Round 1: share 5/3 holds
    # flow 0 at its demand 1; round 2: share (5 - 1) / 2 = 2 holds flow 1 at 1.9, and flow 2
    # (held at 2 only by the link while flow 1 sits lower) keeps growing; round 3: flow 2
    # takes the 5 - 1 - 1.9 = 2.1 left. Three rounds for three flows: the most there can be.
    # A bottleneck test that never finds the link saturated (``1 - rtol`` -> ``1 + rtol``)
    # would grow flow 2 for ever: the round bound turns that into a RuntimeError.
    out = max_min_fair(np.ones((3, 1)), [5.0], [1.0, 1.9, np.inf])
    np.testing.assert_allclose(out.rate_bps, [1.0, 1.9, 2.1], rtol=REL_TOL)
    assert out.bottleneck.tolist() == [DEMAND_LIMITED, DEMAND_LIMITED, 0]
    assert out.n_rounds == 3


def test_rtol_must_be_a_fraction() -> None:
    for bad in (-1e-9, 1.0, math.nan):
        with pytest.raises(ScenarioError, match=rf"^rtol: must be in \[0, 1\), got {bad!r}; the"):
            max_min_fair(np.ones((2, 1)), [1.0], [np.inf, np.inf], rtol=bad)
    # rtol = 0 is allowed: exact ties only.
    out = max_min_fair(np.ones((2, 1)), [1.0], [np.inf, np.inf], rtol=0.0)
    assert out.rate_bps.tolist() == [0.5, 0.5]


def test_empty_problem() -> None:
    out = max_min_fair(csr_array((0, 3)), [1.0, 2.0, 3.0], np.zeros(0))
    assert out.rate_bps.size == 0 and out.n_rounds == 0
    assert out.utilisation.tolist() == [0.0, 0.0, 0.0]


# --- Properties on random instances ------------------------------------------------------------


@st.composite
def instances(
    draw: st.DrawFn, max_flows: int = 12, max_res: int = 8, weighted: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    n_f = draw(st.integers(1, max_flows))
    n_r = draw(st.integers(1, max_res))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = (rng.random((n_f, n_r)) < draw(st.floats(0.2, 0.8))).astype(float)
    if weighted:
        # Multiplicities 1-3: a path that crosses a resource more than once.
        a *= rng.integers(1, 4, a.shape)
    # Capacities: some zero, some equal (ties), most random.
    cap = rng.choice([0.0, 5.0, 10.0], n_r) if draw(st.booleans()) else rng.uniform(0, 10, n_r)
    cap[rng.random(n_r) < 0.1] = 0.0
    dem = np.where(rng.random(n_f) < 0.4, rng.uniform(0, 6, n_f), np.inf)
    dem[rng.random(n_f) < 0.1] = 0.0
    return a, cap, dem


@given(instances())
@settings(max_examples=200, deadline=None)
def test_max_min_properties(inst: tuple[NDArray[np.float64], ...]) -> None:
    a, cap, dem = inst
    out = max_min_fair(csr_array(a), cap, dem)
    check_max_min(a, cap, dem, out)
    # Each round freezes at least one flow.
    assert out.n_rounds <= a.shape[0]


@given(instances())
@settings(max_examples=100, deadline=None)
def test_doubling_capacities_and_demands_doubles_rates(
    inst: tuple[NDArray[np.float64], ...],
) -> None:
    a, cap, dem = inst
    one = max_min_fair(a, cap, dem)
    two = max_min_fair(a, 2 * cap, 2 * dem)
    np.testing.assert_allclose(two.rate_bps, 2 * one.rate_bps, rtol=REL_TOL)
    np.testing.assert_allclose(two.utilisation, one.utilisation, rtol=REL_TOL, atol=1e-15)


@given(instances())
@settings(max_examples=100, deadline=None)
def test_zero_demand_gives_zero_utilisation(inst: tuple[NDArray[np.float64], ...]) -> None:
    a, cap, dem = inst
    out = max_min_fair(a, cap, np.zeros_like(dem))
    assert np.all(out.rate_bps == 0.0)
    assert np.all(out.utilisation == 0.0)
    assert np.all(out.load_bps == 0.0)


@given(instances(), st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_permutation_invariance(inst: tuple[NDArray[np.float64], ...], seed: int) -> None:
    a, cap, dem = inst
    rng = np.random.default_rng(seed)
    pf, pr = rng.permutation(a.shape[0]), rng.permutation(a.shape[1])
    base = max_min_fair(a, cap, dem)
    perm = max_min_fair(a[pf][:, pr], cap[pr], dem[pf])
    np.testing.assert_allclose(perm.rate_bps, base.rate_bps[pf], rtol=REL_TOL, atol=1e-15)
    np.testing.assert_allclose(perm.utilisation, base.utilisation[pr], rtol=REL_TOL, atol=1e-15)


@given(instances(max_flows=6, max_res=5))
@settings(max_examples=40, deadline=None)
def test_agrees_with_lexicographic_lp(inst: tuple[NDArray[np.float64], ...]) -> None:
    a, cap, dem = inst
    got = max_min_fair(a, cap, dem).rate_bps
    want = max_min_fair_lp(a, cap, dem)
    np.testing.assert_allclose(got, want, rtol=LP_TOL, atol=LP_TOL * max(cap.max(), 1.0))


@given(instances(max_flows=6, max_res=5, weighted=True))
@settings(max_examples=60, deadline=None)
def test_weighted_incidence_agrees_with_lexicographic_lp(
    inst: tuple[NDArray[np.float64], ...],
) -> None:
    # Multiplicities > 1 against HiGHS: A x <= c with the weights in A.
    a, cap, dem = inst
    out = max_min_fair(csr_array(a), cap, dem)
    check_max_min(a, cap, dem, out)
    want = max_min_fair_lp(a, cap, dem)
    np.testing.assert_allclose(out.rate_bps, want, rtol=LP_TOL, atol=LP_TOL * max(cap.max(), 1.0))


def test_lp_reference_on_the_parking_lot() -> None:
    a = np.array([[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    got = max_min_fair_lp(a, [6.0, 10.0, 20.0], [np.inf, np.inf, 2.0, np.inf])
    np.testing.assert_allclose(got, [3.0, 3.0, 2.0, 17.0], rtol=LP_TOL)


def test_gigabit_scale_instance() -> None:
    # Realistic magnitudes (1e7..1e11 bit/s) on many flows: still exactly feasible and fair.
    rng = np.random.default_rng(7)
    n_f, n_r = 300, 120
    a = (rng.random((n_f, n_r)) < 0.05).astype(float)
    cap = rng.choice([25e6, 220e6, 20e9, 100e9], n_r)
    dem = np.where(rng.random(n_f) < 0.5, rng.uniform(1e6, 1e9, n_f), np.inf)
    out = max_min_fair(a, cap, dem)
    check_max_min(a, cap, dem, out)


def test_speed_on_a_constellation_sized_instance() -> None:
    # 10,000 flows over 40,000 resources, 10-25 resources each (the size of one Starlink Gen1
    # step with 10,000 flows); benchmarks/bench_capacity_kernel.py measures the real thing.
    rng = np.random.default_rng(11)
    n_f, n_r = 10_000, 40_000
    lengths = rng.integers(10, 26, n_f)
    # Popular resources (gateways, feeder links) are shared by many flows.
    hot = rng.integers(0, 2_000, lengths.sum())
    cold = rng.integers(0, n_r, lengths.sum())
    cols = np.where(rng.random(lengths.sum()) < 0.3, hot, cold)
    rows = np.repeat(np.arange(n_f), lengths)
    a = csr_array((np.ones(rows.size), (rows, cols)), shape=(n_f, n_r))
    a.data[:] = 1.0  # repeated (row, col) pairs summed to 2; count each once
    cap = rng.choice([5e9, 20e9, 100e9], n_r)
    dem = rng.uniform(1e8, 5e9, n_f)
    max_min_fair(a, cap, dem)
    t0 = time.perf_counter()
    out = max_min_fair(a, cap, dem)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0  # a generous bound for a loaded CI machine; typically 70-100 ms
    load = a.T @ out.rate_bps
    assert np.all(load <= cap * (1 + SAT_TOL))


# --- Bad input ---------------------------------------------------------------------------------


def test_bad_allocation_inputs() -> None:
    with pytest.raises(ScenarioError, match=r"capacity_bps: must be >= 0 bit/s, got -1.0"):
        max_min_fair(np.ones((1, 1)), [-1.0], [1.0])
    with pytest.raises(ScenarioError, match=r"demand_bps: must be >= 0 .* got nan for flow 1"):
        max_min_fair(np.ones((2, 1)), [1.0], [1.0, math.nan])
    with pytest.raises(ScenarioError, match=r"conflicting sizes: 2 resources .* shape \(3,\)"):
        max_min_fair(np.ones((1, 2)), [1.0, 2.0, 3.0], [1.0])
    with pytest.raises(ScenarioError, match=r"conflicting sizes: 1 flows .* shape \(2,\)"):
        max_min_fair(np.ones((1, 2)), [1.0, 2.0], [1.0, 1.0])
    with pytest.raises(ScenarioError, match=r"incidence: entries must be finite and >= 0"):
        max_min_fair(np.array([[-1.0]]), [1.0], [1.0])


def test_bad_capacities() -> None:
    with pytest.raises(ScenarioError, match=r"capacity.sat_user_down_bps: must be >= 0"):
        LinkCapacities(sat_user_down_bps=-5.0)
    with pytest.raises(ScenarioError, match=r"capacity.fibre_bps: must be >= 0 bit/s, got nan"):
        LinkCapacities(fibre_bps=math.nan)
    with pytest.raises(ScenarioError, match=r"capacity.isl_bps: must be a number, got '1'"):
        LinkCapacities(isl_bps="1")  # type: ignore[arg-type]


def test_jain_index() -> None:
    assert jain_index([2.0, 2.0, 2.0]) == 1.0
    assert jain_index([1.0, 0.0]) == 0.5
    assert jain_index([1.0, 3.0]) == pytest.approx(16 / 20)
    assert math.isnan(jain_index([])) and math.isnan(jain_index([0.0, 0.0]))
    # One value is perfectly fair; any shape is flattened.
    assert jain_index([5.0]) == 1.0
    assert jain_index([[1.0, 3.0]]) == pytest.approx(16 / 20)
    assert jain_index(np.ones((2, 2))) == 1.0
    # Integer rates are summed and squared in float64, not in their own (overflowing) type:
    # (2^32 + 3 * 2^32)^2 / (2 * (2^64 + 9 * 2^64)) = 16 / 20.
    assert jain_index(np.array([2**32, 3 * 2**32], np.int64)) == pytest.approx(16 / 20)
    assert jain_index(np.array([200, 200], np.uint8)) == 1.0


# --- Resources and paths in the routing graph ---------------------------------------------------

KINDS = ("terminal", "gateway", "pop", "terminal")


def small_network() -> tuple[RoutingProblem, csr_array]:
    """Three satellites in a line (ISLs 0-1, 1-2); terminal T (site 0) under satellite 0,
    gateway GW (1) under satellite 2 with fibre to PoP P (2), terminal U (3) under satellite 1.
    """
    problem = RoutingProblem(
        n_sats=3,
        n_sites=4,
        gsl_site=np.array([True, True, False, True]),
        isl_edges=np.array([[0, 1], [1, 2]], np.int32),
        fibre_gw=np.array([1]),
        fibre_pop=np.array([2]),
        fibre_delay_s=np.array([1e-3]),
        pair_src=np.array([0, 2]),
        pair_dst=np.array([2, 0]),
    )
    graph = snapshot_graph(
        problem,
        isl_delay_s=np.array([3e-3, 3e-3]),
        gsl_site=np.array([0, 1, 3], np.int32),
        gsl_sat=np.array([0, 2, 1], np.int32),
        gsl_delay_s=np.array([2e-3, 2e-3, 2e-3]),
    )
    return problem, graph


def routed_paths(
    problem: RoutingProblem, graph: csr_array, src: list[int], dst: list[int]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    origins = problem.out_node(np.array(src))
    _, pred = dijkstra(graph, indices=origins, return_predecessors=True)
    return node_paths_from_predecessors(pred, np.arange(len(src)), problem.in_node(np.array(dst)))


def test_path_resources_both_directions_in_the_routing_layout() -> None:
    problem, graph = small_network()
    res = build_resources(3, KINDS, problem.isl_edges, problem.fibre_gw, problem.fibre_pop)
    ptr, nodes = routed_paths(problem, graph, [0, 2], [2, 0])
    t_out, t_in = 3 + 0, 3 + 4 + 0
    gw_out, gw_in = 3 + 1, 3 + 4 + 1
    p_out, p_in = 3 + 2, 3 + 4 + 2
    up = nodes[ptr[0] : ptr[1]].tolist()
    down = nodes[ptr[1] : ptr[2]].tolist()
    assert up == [t_out, 0, 1, 2, gw_in, p_in]
    assert down == [p_out, gw_out, 2, 1, 0, t_in]
    names = res.labels(["T", "GW", "P", "U"])
    assert [names[r] for r in path_resources(res, up, 3, 4)] == [
        "terminal T up",
        "sat 0 user_up",
        "isl 0->1",
        "isl 1->2",
        "sat 2 feeder_down",
        "gateway GW down",
        "fibre GW->P",
    ]
    assert [names[r] for r in path_resources(res, down)] == [
        "fibre P->GW",
        "gateway GW up",
        "sat 2 feeder_up",
        "isl 2->1",
        "isl 1->0",
        "sat 0 user_down",
        "terminal T down",
    ]
    # The index helpers agree with the labels.
    assert names[int(res.sat("feeder_up", 2))] == "sat 2 feeder_up"
    assert names[int(res.isl(1, reverse=True))] == "isl 2->1"
    assert names[int(res.site_up[0])] == "terminal T up"
    assert names[int(res.site_down[1])] == "gateway GW down"
    assert res.site_down[2] == -1


def test_reverse_paths_mirror_resources() -> None:
    problem, graph = small_network()
    res = build_resources(3, KINDS, problem.isl_edges, problem.fibre_gw, problem.fibre_pop)
    ptr, nodes = routed_paths(problem, graph, [0, 2, 3], [2, 0, 0])
    ptr = np.insert(ptr, 2, ptr[2])  # an unrouted flow stays empty
    rptr, rnodes = reverse_paths(ptr, nodes, 3, 4)
    assert rptr.tolist() == ptr.tolist()
    # Terminal -> PoP reversed is the routed PoP -> terminal path, and back.
    assert rnodes[rptr[0] : rptr[1]].tolist() == nodes[ptr[1] : ptr[2]].tolist()
    assert rnodes[rptr[1] : rptr[2]].tolist() == nodes[ptr[0] : ptr[1]].tolist()
    back = reverse_paths(rptr, rnodes, 3, 4)[1]
    assert back.tolist() == nodes.tolist()
    # Every resource of a reversed path is the other direction of one on the path.
    names = res.labels(["T", "GW", "P", "U"])
    fwd = [names[r] for r in path_resources(res, nodes[ptr[3] : ptr[4]])]
    rev = [names[r] for r in path_resources(res, rnodes[rptr[3] : rptr[4]])]
    assert fwd == ["terminal U up", "sat 1 user_up", "isl 1->0", "sat 0 user_down",
                   "terminal T down"]  # fmt: skip
    assert rev == ["terminal T up", "sat 0 user_up", "isl 0->1", "sat 1 user_down",
                   "terminal U down"]  # fmt: skip


def test_terminal_to_terminal_path_and_incidence() -> None:
    problem, graph = small_network()
    res = build_resources(3, KINDS, problem.isl_edges, problem.fibre_gw, problem.fibre_pop)
    ptr, nodes = routed_paths(problem, graph, [0, 3], [3, 0])
    names = res.labels(["T", "GW", "P", "U"])
    assert [names[r] for r in path_resources(res, nodes[ptr[0] : ptr[1]])] == [
        "terminal T up",
        "sat 0 user_up",
        "isl 0->1",
        "sat 1 user_down",
        "terminal U down",
    ]
    # With an unrouted flow (an empty path) in the middle.
    ptr = np.insert(ptr, 1, ptr[1])
    a = flow_incidence(res, ptr, nodes)
    assert a.shape == (3, res.n_resources)
    assert a.indptr[2] == a.indptr[1]
    for i in range(3):
        want = sorted(path_resources(res, nodes[ptr[i] : ptr[i + 1]]))
        assert a.indices[a.indptr[i] : a.indptr[i + 1]].tolist() == want
    assert np.all(a.data == 1.0)


def test_predecessor_paths_follow_graph_edges() -> None:
    rng = np.random.default_rng(3)
    n = 60
    dense = np.where(rng.random((n, n)) < 0.08, rng.uniform(1, 5, (n, n)), 0.0)
    graph = csr_array(dense)
    roots = np.array([0, 7, 19])
    dist, pred = dijkstra(graph, indices=roots, return_predecessors=True)
    row = rng.integers(0, 3, 200)
    target = rng.integers(0, n, 200)
    ptr, nodes = node_paths_from_predecessors(pred, row, target)
    for i in range(200):
        path = nodes[ptr[i] : ptr[i + 1]]
        d = dist[row[i], target[i]]
        if not np.isfinite(d) or target[i] == roots[row[i]]:
            assert path.size == 0
            continue
        assert path[0] == roots[row[i]] and path[-1] == target[i]
        length = sum(dense[u, v] for u, v in itertools.pairwise(path))
        assert length == pytest.approx(d, rel=REL_TOL)


def test_resource_layout_and_capacities() -> None:
    caps = LinkCapacities(terminal_down_bps=100e6, terminal_up_bps=10e6)
    res = build_resources(
        4,
        ["terminal", "gateway", "pop", "terminal"],
        [[0, 1], [2, 3], [1, 2]],
        [1],
        [2],
        caps,
        n_terminals_per_site=[50, 0, 0, 2],
    )
    counts = np.bincount(res.kind, minlength=len(RESOURCE_KINDS))
    assert dict(zip(RESOURCE_KINDS, counts.tolist(), strict=True)) == {
        "sat_user_down": 4,
        "sat_user_up": 4,
        "sat_feeder_down": 4,
        "sat_feeder_up": 4,
        "isl": 6,
        "gateway_down": 1,
        "gateway_up": 1,
        "terminal_down": 2,
        "terminal_up": 2,
        "fibre": 2,
    }
    assert res.capacity_bps[res.site_down[0]] == 50 * 100e6
    assert res.capacity_bps[res.site_up[3]] == 2 * 10e6
    assert res.capacity_bps[res.isl(2)] == caps.isl_bps
    assert res.capacity_bps[res.sat("user_up", 3)] == caps.sat_user_up_bps
    assert not res.capacity_bps.flags.writeable


def test_bad_resources_and_paths() -> None:
    problem, _ = small_network()
    res = build_resources(3, KINDS, problem.isl_edges, problem.fibre_gw, problem.fibre_pop)
    with pytest.raises(ScenarioError, match=r"site_kinds: kind must be one of .* got 'city'"):
        build_resources(3, ["city"], [], [], [])
    with pytest.raises(ScenarioError, match=r"fibre_pop: site 0 is a terminal, not a pop"):
        build_resources(3, KINDS, [], [1], [0])
    with pytest.raises(ScenarioError, match=r"isl_edges: satellite index out of range \[0, 3\)"):
        build_resources(3, KINDS, [[0, 3]], [], [])
    with pytest.raises(ScenarioError, match=r"n_terminals_per_site: must be integers >= 0"):
        build_resources(3, KINDS, [], [], [], n_terminals_per_site=-1)
    with pytest.raises(ScenarioError, match=r"n_terminals_per_site: conflicting sizes: 2 counts"):
        build_resources(3, KINDS, [], [], [], n_terminals_per_site=[1, 2])
    # No ISL between satellites 0 and 2.
    with pytest.raises(
        ScenarioError, match=r"flow 0: edge 0 -> 2 \(satellite 0 -> satellite 2\) is no link"
    ):
        path_resources(res, [3, 0, 2, 8])
    # A PoP has no ground-satellite link.
    with pytest.raises(ScenarioError, match=r"\(pop 2 \(out node\) -> satellite 0\)"):
        path_resources(res, [5, 0])
    with pytest.raises(ScenarioError, match=r"node 99 \(out of range \[0, 11\)\)"):
        path_resources(res, [3, 99])
    with pytest.raises(ScenarioError, match=r"n_sites: conflicting sizes: 5 given, 4 in the"):
        path_resources(res, [3, 0], 3, 5)
    with pytest.raises(ScenarioError, match=r"path_ptr: must rise from 0"):
        flow_incidence(res, [0, 5], [3, 0])


def test_pack_paths_round_trip() -> None:
    paths = [[3, 0, 1, 2, 8, 9], [], [5, 4, 2, 1, 0, 7]]
    ptr, nodes = pack_paths(paths)
    assert [nodes[ptr[i] : ptr[i + 1]].tolist() for i in range(3)] == paths


def test_site_resources_point_at_their_kind_and_zero_terminals_have_no_capacity() -> None:
    # Unlimited terminals (inf bit/s each) at a site with none of them: inf * 0 must be 0, not
    # NaN; each site's down/up resource indices must name resources of its own kind and element.
    caps = LinkCapacities(terminal_down_bps=np.inf, terminal_up_bps=np.inf)
    kinds = ["terminal", "gateway", "pop", "terminal", "gateway"]
    res = build_resources(
        4, kinds, [[0, 1], [2, 3]], [1, 4], [2, 2], caps, n_terminals_per_site=[0, 0, 0, 3, 0]
    )
    assert res.capacity_bps[res.site_down[0]] == 0.0 and res.capacity_bps[res.site_up[0]] == 0.0
    assert np.isinf(res.capacity_bps[res.site_down[3]])
    names = list(RESOURCE_KINDS)
    for g, k in enumerate(kinds):
        if k == "pop":
            assert res.site_down[g] == -1 and res.site_up[g] == -1
            continue
        down, up = int(res.site_down[g]), int(res.site_up[g])
        assert names[res.kind[down]] == f"{k}_down" and names[res.kind[up]] == f"{k}_up"
        assert up == down + 1


def test_index_helpers_labels_and_dtypes() -> None:
    problem, _ = small_network()
    res = build_resources(3, KINDS, problem.isl_edges, problem.fibre_gw, problem.fibre_pop)
    names = res.labels(["T", "GW", "P", "U"])
    assert names[int(res.isl(0))] == "isl 0->1"
    assert names[int(res.isl(0, reverse=True))] == "isl 1->0"
    # Without names, sites are labelled by index.
    assert res.labels()[-6:] == [
        "terminal 0 down",
        "terminal 0 up",
        "terminal 3 down",
        "terminal 3 up",
        "fibre 1->2",
        "fibre 2->1",
    ]
    with pytest.raises(ScenarioError, match=r"^site_names: conflicting sizes: 1 names, 4 sites"):
        res.labels(["T"])
    with pytest.raises(ScenarioError, match=r"^resource: satellite resource kind must be one"):
        res.sat("isl", 0)
    # Indices come back as int64 whatever integer type they are given in.
    i32 = np.array([0, 1], np.int32)
    assert res.isl(i32).dtype == np.int64 and res.sat("user_up", i32).dtype == np.int64
    assert res.sat("user_up", i32).tolist() == [3, 4]
    ptr, nodes = reverse_paths(np.array([0, 3], np.int32), np.array([3, 0, 7], np.int32), 3, 4)
    assert ptr.dtype == np.int64 and nodes.dtype == np.int64
    assert nodes.tolist() == [3, 0, 7]


def test_edges_at_the_ends_of_each_node_block() -> None:
    # The gateway is site 0 and the PoP site 1, so the fibre's endpoints are the first out and
    # in nodes: S = 2 satellites (nodes 0, 1), out nodes 2-4, in nodes 5-7.
    res = build_resources(2, ["gateway", "pop", "terminal"], [[0, 1]], [0], [1])
    names = res.labels(["GW", "P", "T"])
    assert [names[r] for r in path_resources(res, [4, 0, 1, 5, 6])] == [
        "terminal T up",
        "sat 0 user_up",
        "isl 0->1",
        "sat 1 feeder_down",
        "gateway GW down",
        "fibre GW->P",
    ]
    assert [names[r] for r in path_resources(res, [3, 2, 1, 0, 7])] == [
        "fibre P->GW",
        "gateway GW up",
        "sat 1 feeder_up",
        "isl 1->0",
        "sat 0 user_down",
        "terminal T down",
    ]
    # Errors name both ends of the bad edge, at the first and last node of each block.
    for path, where in (
        ([2, 3], r"gateway 0 \(out node\) -> pop 1 \(out node\)"),
        ([5, 0], r"gateway 0 \(in node\) -> satellite 0"),
        ([1, 2], r"satellite 1 -> gateway 0 \(out node\)"),
        ([7, 1], r"terminal 2 \(in node\) -> satellite 1"),
        ([0, 8], r"satellite 0 -> node 8 \(out of range \[0, 8\)\)"),
        ([6, 4], r"pop 1 \(in node\) -> terminal 2 \(out node\)"),
    ):
        with pytest.raises(ScenarioError, match=where):
            path_resources(res, path)


def laser_network() -> tuple[Resources, LinkCapacities]:
    """13 satellites in 4 planes (next plane: 0 -> 1 -> 2 -> 3 -> 0) and 2 without a plane,
    arguments of latitude given out of order; a terminal (site 0) and a gateway (site 1)."""
    plane = np.array([0, 1, 1, 0, 1, 0, 1, 0, -1, 2, 2, -1, 3])
    u_deg = np.array([180, 0, 270, 0, 90, 270, 180, 90, 10, 40, 220, 20, 5], dtype=float)
    nxt = np.array([1, 2, 3, 0])
    caps = LinkCapacities(isl_bps=7e9)
    res = build_resources(
        13, ["terminal", "gateway"], [], [], [], caps, isl_terminals=(plane, nxt, np.radians(u_deg))
    )
    return res, caps


def test_re_paired_isls_use_the_laser_terminal_towards_the_neighbour() -> None:
    res, caps = laser_network()
    n_s = 13
    names = res.labels(["T", "GW"])
    # Every laser resource: satellite a's terminal k at 4 S + 5 a + k, of capacity isl_bps.
    for a in range(n_s):
        for k, term in enumerate(LASER_TERMINALS):
            r = 4 * n_s + 5 * a + k
            assert names[r] == f"sat {a} laser {term}"
            assert res.capacity_bps[r] == caps.isl_bps and res.element[r] == a
    assert res.n_resources == 9 * n_s + 4
    # Hand-solved hops. Plane 0 in argument-of-latitude order: 3 (0 deg), 7 (90), 0 (180),
    # 5 (270); fore = the neighbour is at most half the plane ahead (a tie counts as fore).
    want = {
        (3, 7): "fore",
        (7, 3): "aft",
        (3, 0): "fore",  # two of four ahead: half a turn
        (0, 3): "fore",
        (5, 3): "fore",  # across 360 deg
        (3, 5): "aft",
        (9, 10): "fore",  # a plane of two: each is half a turn ahead of the other
        (10, 9): "fore",
        (0, 1): "right",  # plane 0 -> its next plane 1
        (1, 0): "left",
        (12, 0): "right",  # plane 3 -> 0 (the next plane of 3 is 0)
        (0, 12): "left",
        (0, 9): "cross",  # planes 0 and 2 are not neighbours
        (8, 0): "cross",  # no plane
        (0, 8): "cross",
        (8, 11): "cross",  # both without a plane
    }
    for (a, b), term in want.items():
        # terminal out node (13), a, b, gateway in node (13 + 2 + 1): uplink, laser, downlink.
        got = [names[r] for r in path_resources(res, [13, a, b, 16])]
        assert got == [
            "terminal T up",
            f"sat {a} user_up",
            f"sat {a} laser {term}",
            f"sat {b} feeder_down",
            "gateway GW down",
        ], (a, b)
    # Two flows leaving satellite 3 forward share its fore terminal; the aft one is free.
    ptr, nodes = pack_paths([[13, 3, 7, 16], [13, 3, 0, 16], [13, 3, 5, 16]])
    a = flow_incidence(res, ptr, nodes)
    fore = 4 * n_s + 5 * 3 + 0
    assert a[:, [fore]].toarray().ravel().tolist() == [1.0, 1.0, 0.0]
    # A satellite -> out-node edge is no link, even between laser terminals.
    with pytest.raises(ScenarioError, match="is no link"):
        path_resources(res, [0, 13])
    with pytest.raises(ScenarioError, match="either fixed isl_edges or isl_terminals"):
        build_resources(2, [], [[0, 1]], [], [], isl_terminals=([0, 0], [0], [0.0, 1.0]))
    with pytest.raises(ScenarioError, match="isl_terminals: conflicting sizes: 1 planes"):
        build_resources(2, [], [], [], [], isl_terminals=([0], [0], [0.0, 1.0]))


def test_build_resources_input_errors_name_the_field() -> None:
    kinds = ["terminal", "gateway", "pop"]
    cases: list[tuple[dict[str, object], str]] = [
        ({"n_sats": -1}, r"^n_sats: must be an integer >= 0, got -1$"),
        ({"n_sats": 2.0}, r"^n_sats: must be an integer >= 0, got 2.0$"),
        ({"n_sats": True}, r"^n_sats: must be an integer >= 0, got True$"),
        ({"isl_edges": [[0.0, 1.0]]}, r"^isl_edges: must hold integer indices, got dtype float64$"),
        ({"isl_edges": [[0, 1, 2]]}, r"^isl_edges: must have shape \(n, 2\), got \(1, 3\)$"),
        ({"isl_edges": [0, 1]}, r"^isl_edges: must have shape \(n, 2\), got \(2,\)$"),
        ({"fibre_gw": [[1]]}, r"^fibre_gw: must have shape \(n,\), got \(1, 1\)$"),
        ({"fibre_pop": [2.0]}, r"^fibre_pop: must hold integer indices"),
        ({"fibre_gw": [1, 1]}, r"^fibre_gw: conflicting sizes: 2 in fibre_gw, 1 in fibre_pop$"),
        ({"fibre_gw": [3]}, r"^fibre_gw: site index out of range \[0, 3\): got 3\.\.3$"),
        ({"fibre_gw": [-1]}, r"^fibre_gw: site index out of range \[0, 3\): got -1\.\.-1$"),
        (
            {"fibre_gw": [2]},
            r"^fibre_gw: site 2 is a pop, not a gateway: fibre links join a "
            r"gateway to a PoP$",
        ),
        (
            {"n_terminals_per_site": [[1, 1, 1]]},
            r"^n_terminals_per_site: conflicting sizes: 3 "
            r"counts, 3 sites; give one count or one per site$",
        ),
    ]
    base: dict[str, object] = {
        "n_sats": 2,
        "site_kinds": kinds,
        "isl_edges": [[0, 1]],
        "fibre_gw": [1],
        "fibre_pop": [2],
    }
    for change, pattern in cases:
        with pytest.raises(ScenarioError, match=pattern):
            build_resources(**{**base, **change})  # type: ignore[arg-type]
    with pytest.raises(ScenarioError, match=r"^isl_edges: give either fixed isl_edges or "):
        build_resources(2, [], [[0, 1]], [], [], isl_terminals=([0, 0], [0], [0.0, 1.0]))
    with pytest.raises(ScenarioError, match=r"^isl_terminals: conflicting sizes: 2 planes, 1 "):
        build_resources(2, [], [], [], [], isl_terminals=([0, 0], [0], [0.0]))
    # No satellites is a valid (ground-only) network: the first gateway's resources are 0, 1.
    res = build_resources(0, ["gateway", "pop"], [], [0], [1])
    assert res.site_down.tolist() == [0, -1] and res.site_up.tolist() == [1, -1]
    assert res.labels(["GW", "P"]) == ["gateway GW down", "gateway GW up", "fibre GW->P",
                                       "fibre P->GW"]  # fmt: skip
    # One terminal per site unless told otherwise.
    res = build_resources(1, ["terminal"], [], [], [])
    assert res.capacity_bps[res.site_down[0]] == LinkCapacities().terminal_down_bps
    # Zero capacities are allowed (a link that is down), fractions of a bit/s too.
    assert LinkCapacities(isl_bps=0.0, fibre_bps=0.5).fibre_bps == 0.5


def test_second_fibre_and_path_input_errors() -> None:
    # Two gateways each with its own fibre to one PoP: S = 2, G = 4 (GW0, GW1, P, T); out
    # nodes 2-5, in nodes 6-9.
    res = build_resources(2, ["gateway", "gateway", "pop", "terminal"], [[0, 1]], [0, 1], [2, 2])
    names = res.labels(["GW0", "GW1", "P", "T"])
    assert [names[r] for r in path_resources(res, [5, 0, 1, 7, 8])][-1] == "fibre GW1->P"
    assert names[path_resources(res, [4, 3, 1, 0, 9])[0]] == "fibre P->GW1"
    assert [names[r] for r in path_resources(res, [4, 2, 0, 9])][:2] == [
        "fibre P->GW0",
        "gateway GW0 up",
    ]
    # A path given as a (1, n) array is the same path.
    assert path_resources(res, np.array([[5, 0, 1, 7, 8]])) == path_resources(res, [5, 0, 1, 7, 8])
    # No flows at all.
    assert flow_incidence(res, [0], np.zeros(0, np.int64)).shape == (0, res.n_resources)
    for ptr, nodes, want in (
        ([1, 3], [5, 0, 1], r"^path_ptr: must rise from 0 to len\(path_nodes\) = 3, got \[1, 3\]"),
        ([0, 3, 2, 3, 3], [5, 0, 1], r"got \[0, 3, 2\] \.\. \[2, 3, 3\]$"),
        ([0, 2], [5, 0, 1], r"^path_ptr: must rise"),
    ):
        with pytest.raises(ScenarioError, match=want):
            flow_incidence(res, ptr, nodes)
    with pytest.raises(ScenarioError, match=r"^path: flow 1: edge 0 -> 8 \(satellite 0 -> pop 2 "
                       r"\(in node\)\) is no link of the network; paths must follow the routing "
                       r"graph's edges$"):  # fmt: skip
        flow_incidence(res, [0, 2, 4], [5, 0, 0, 8])
    with pytest.raises(ScenarioError, match=r"^n_sats: conflicting sizes: 3 given, 2 in the"):
        path_resources(res, [5, 0], 3, 4)


def test_allocation_input_errors_and_fractional_and_integer_inputs() -> None:
    for kwargs, want in (
        ({"capacity_bps": [1.0, 2.0]}, r"^capacity_bps: conflicting sizes: 1 resources in the "),
        ({"demand_bps": [1.0]}, r"^demand_bps: conflicting sizes: 2 flows in the incidence "),
        ({"capacity_bps": [-1.0]}, r"^capacity_bps: must be >= 0 bit/s, got -1.0 at resource 0$"),
        (
            {"demand_bps": [1.0, math.nan]},
            r"^demand_bps: must be >= 0 bit/s .* got nan for flow 1$",
        ),
        ({"incidence": [[1.0], [-1.0]]}, r"^incidence: entries must be finite and >= 0"),
        ({"incidence": [[1.0], [math.inf]]}, r"^incidence: entries must be finite and >= 0"),
    ):
        args: dict[str, object] = {
            "incidence": [[1.0], [1.0]],
            "capacity_bps": [1.0],
            "demand_bps": [1.0, 1.0],
            **kwargs,
        }
        with pytest.raises(ScenarioError, match=want):
            max_min_fair(**args)  # type: ignore[arg-type]
    # A stored zero is no crossing; a fractional entry charges that fraction of the rate.
    # Hand-solved: 0.5 x + y = 3 with x = y gives 2 each; flow 2's stored zero changes nothing.
    rows, cols = np.array([0, 1, 2, 2]), np.array([0, 0, 0, 1])
    a = csr_array((np.array([0.5, 1.0, 0.0, 1.0]), (rows, cols)), shape=(3, 2))
    out = max_min_fair(a, [3.0, 10.0], [np.inf, np.inf, np.inf])
    np.testing.assert_allclose(out.rate_bps, [2.0, 2.0, 10.0], rtol=REL_TOL)
    np.testing.assert_allclose(
        out.rate_bps, max_min_fair_lp(a, [3.0, 10.0], [1e3] * 3), rtol=LP_TOL
    )
    # Integer capacities, demands and incidence are rates like any other.
    out = max_min_fair(np.array([[1, 0], [2, 1]]), np.array([9, 4]), np.array([10, 10]))
    np.testing.assert_allclose(out.rate_bps, [3.0, 3.0], rtol=REL_TOL)
    out = max_min_fair(csr_array(np.array([[1, 0], [2, 1]])), [9, 4], [10, 10])
    np.testing.assert_allclose(out.rate_bps, [3.0, 3.0], rtol=REL_TOL)


def test_demand_equal_to_the_fair_share_is_demand_limited() -> None:
    # Hand-solved: 10 bit/s shared by two; flow 0 wants exactly its share, 5. It gets its
    # demand, so it is demand-limited (the documented label), and flow 1 is held by the link.
    out = max_min_fair(np.ones((2, 1)), [10.0], [5.0, np.inf])
    assert out.rate_bps.tolist() == [5.0, 5.0]
    assert out.bottleneck.tolist() == [DEMAND_LIMITED, 0]


def test_unlimited_flow_on_a_shared_unlimited_resource() -> None:
    # Resources: r0 unlimited, r1 2 bit/s, r2 10 bit/s. Flow A crosses only r0 and wants
    # everything: rate inf, not counted in r0's load. Flow B crosses r0 and r2, flow C r1 and
    # r2. Hand-solved: C is held at 2 by r1 in round one, B takes the 10 - 2 = 8 left of r2 in
    # round two; A's infinite rate must not leak into r0's arithmetic (inf - inf = NaN).
    a = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    out = max_min_fair(a, [np.inf, 2.0, 10.0], [np.inf, np.inf, np.inf])
    assert out.rate_bps.tolist() == [np.inf, 8.0, 2.0]
    assert out.bottleneck.tolist() == [DEMAND_LIMITED, 2, 1]
    assert out.load_bps.tolist() == [8.0, 2.0, 10.0]
    assert out.utilisation.tolist() == [0.0, 1.0, 1.0]
    assert out.n_rounds == 2
    with pytest.raises(ScenarioError, match=r"^capacity_bps: max_min_fair_lp needs finite capa"):
        max_min_fair_lp(a, [np.inf, 2.0, 10.0], [1.0, 1.0, 1.0])


def layout_oracle(
    n_s: int, kinds: list[str], isl: list[tuple[int, int]], fibres: list[tuple[int, int]]
) -> dict[tuple[int, int], list[int]]:
    """Resources of every directed edge, written out from the documented layout (the
    :class:`Resources` docstring and the module's table), one dictionary entry per edge."""
    n_g = len(kinds)
    gws = [g for g, k in enumerate(kinds) if k == "gateway"]
    terms = [g for g, k in enumerate(kinds) if k == "terminal"]
    base_gw = 4 * n_s + 2 * len(isl)
    base_term = base_gw + 2 * len(gws)
    base_fibre = base_term + 2 * len(terms)
    down = {g: base_gw + 2 * j for j, g in enumerate(gws)}
    down.update({g: base_term + 2 * j for j, g in enumerate(terms)})
    out: dict[tuple[int, int], list[int]] = {}
    for e, (a, b) in enumerate(isl):
        out[(a, b)] = [4 * n_s + 2 * e]
        out[(b, a)] = [4 * n_s + 2 * e + 1]
    for g in down:
        up_sat, down_sat = (n_s, 0) if kinds[g] == "terminal" else (3 * n_s, 2 * n_s)
        for s in range(n_s):
            out[(n_s + g, s)] = [down[g] + 1, up_sat + s]
            out[(s, n_s + n_g + g)] = [down_sat + s, down[g]]
    for k, (gw, pop) in enumerate(fibres):
        out[(n_s + n_g + gw, n_s + n_g + pop)] = [base_fibre + 2 * k]
        out[(n_s + pop, n_s + gw)] = [base_fibre + 2 * k + 1]
    return out


def test_every_edge_of_random_networks_matches_the_documented_layout() -> None:
    rng = np.random.default_rng(2026)
    for _ in range(25):
        n_s = int(rng.integers(1, 6))
        n_g = int(rng.integers(2, 6))
        kinds = [str(k) for k in rng.choice(["terminal", "gateway", "pop"], n_g)]
        kinds[int(rng.integers(n_g))] = "gateway"
        pairs = [(a, b) for a in range(n_s) for b in range(a + 1, n_s)]
        isl = [pairs[i] for i in np.flatnonzero(rng.random(len(pairs)) < 0.5)]
        gws = [g for g, k in enumerate(kinds) if k == "gateway"]
        pops = [g for g, k in enumerate(kinds) if k == "pop"]
        fibres = [(gw, pop) for gw in gws for pop in pops if rng.random() < 0.7]
        res = build_resources(
            n_s,
            kinds,
            np.array(isl, np.int64).reshape(-1, 2),
            [f[0] for f in fibres],
            [f[1] for f in fibres],
        )
        want = layout_oracle(n_s, kinds, isl, fibres)
        assert res.n_resources == 4 * n_s + 2 * len(isl) + 2 * sum(
            k != "pop" for k in kinds
        ) + 2 * len(fibres)
        n_nodes = n_s + 2 * n_g
        for u in range(-1, n_nodes + 1):
            for v in range(-1, n_nodes + 1):
                if (u, v) in want:
                    assert path_resources(res, [u, v]) == want[(u, v)], (u, v)
                else:
                    with pytest.raises(ScenarioError, match="is no link"):
                        path_resources(res, [u, v])
