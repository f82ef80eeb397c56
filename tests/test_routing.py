"""Tests of starmesh.routing: shortest-delay routes on one snapshot.

Three independent checks: networkx on random networks built from the raw inputs, a hand-solved
network, and the geometry of a propagated Walker shell.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import networkx as nx
import numpy as np
import pymap3d
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.sparse import csr_array

from starmesh.constants import C_M_S, FIBRE_GROUP_INDEX
from starmesh.constellation import Constellation
from starmesh.frames import geodetic_to_ecef, great_circle_m, up_vectors
from starmesh.propagation import Propagator
from starmesh.routing import (
    Routes,
    RoutingProblem,
    fibre_delay_s,
    shortest_routes,
    snapshot_graph,
    space_delay_s,
)
from starmesh.topology import GslRule, find_gsls, isl_lengths_m, max_isl_range_m, plus_grid_edges

#: Relative agreement of two sums of the same few dozen float64 delays.
REL_TOL = 1e-12
#: One picosecond: tolerance of hand-summed delays of a few milliseconds.
ONE_PS = 1e-12
ONE_MM = 1e-3
#: Elevation agreement of two float64 implementations of the same geometry (numerical error).
EL_TOL_DEG = 1e-7
MS = 1e-3

Node = int | tuple[str, int]


# --- Random networks and the networkx oracle ---------------------------------------------------


@dataclass(frozen=True)
class Network:
    """Raw inputs of one snapshot: what both starmesh and the oracle are built from."""

    kinds: tuple[str, ...]
    n_sats: int
    isl_edges: NDArray[np.int32]
    isl_delay: NDArray[np.float64]
    gsl_site: NDArray[np.int32]
    gsl_sat: NDArray[np.int32]
    gsl_delay: NDArray[np.float64]
    fibre_gw: NDArray[np.int64]
    fibre_pop: NDArray[np.int64]
    fibre_delay: NDArray[np.float64]

    def problem(self, src: NDArray[np.int64], dst: NDArray[np.int64]) -> RoutingProblem:
        return RoutingProblem(
            n_sats=self.n_sats,
            n_sites=len(self.kinds),
            gsl_site=np.array([k != "pop" for k in self.kinds]),
            isl_edges=self.isl_edges,
            fibre_gw=self.fibre_gw,
            fibre_pop=self.fibre_pop,
            fibre_delay_s=self.fibre_delay,
            pair_src=np.asarray(src, dtype=np.int64),
            pair_dst=np.asarray(dst, dtype=np.int64),
        )

    def graph(self, problem: RoutingProblem, *, bent_pipe: bool) -> csr_array:
        return snapshot_graph(
            problem,
            isl_delay_s=None if bent_pipe else self.isl_delay,
            gsl_site=self.gsl_site,
            gsl_sat=self.gsl_sat,
            gsl_delay_s=self.gsl_delay,
        )


def random_network(rng: np.random.Generator, n_sats: int, p_down: float) -> Network:
    """A few dozen satellites with random ISLs (some down), sites of all three kinds."""
    n_term, n_gw, n_pop = (int(x) for x in rng.integers([2, 1, 1], [7, 4, 4]))
    kinds = ["terminal"] * n_term + ["gateway"] * n_gw + ["pop"] * n_pop
    rng.shuffle(kinds)
    kinds_t = tuple(kinds)
    # ISLs: distinct unordered pairs, stored in random orientation.
    isl: set[tuple[int, int]] = set()
    for a, b in rng.integers(0, n_sats, size=(2 * n_sats, 2)):
        if a != b:
            isl.add((int(min(a, b)), int(max(a, b))))
    edges = np.array(sorted(isl), dtype=np.int32).reshape(-1, 2)
    flip = rng.random(len(edges)) < 0.5
    edges[flip] = edges[flip][:, ::-1]
    isl_delay = rng.uniform(1 * MS, 15 * MS, size=len(edges))
    down = rng.random(len(edges)) < p_down
    isl_delay[down] = np.where(rng.random(int(down.sum())) < 0.5, np.inf, np.nan)
    # GSLs: each site sees 0-3 satellites; PoPs get some too, which must be ignored.
    g_site: list[int] = []
    g_sat: list[int] = []
    for g in range(len(kinds_t)):
        sats = rng.choice(n_sats, size=int(rng.integers(0, 4)), replace=False)
        g_site += [g] * sats.size
        g_sat += [int(s) for s in sats]
    gsl_delay = rng.uniform(1.5 * MS, 4 * MS, size=len(g_site))
    # Fibre: each gateway to a random non-empty set of PoPs.
    gws = [g for g, k in enumerate(kinds_t) if k == "gateway"]
    pops = np.array([g for g, k in enumerate(kinds_t) if k == "pop"])
    f_gw: list[int] = []
    f_pop: list[int] = []
    for g in gws:
        chosen = rng.choice(pops, size=int(rng.integers(1, pops.size + 1)), replace=False)
        f_gw += [g] * chosen.size
        f_pop += [int(p) for p in chosen]
    return Network(
        kinds=kinds_t,
        n_sats=n_sats,
        isl_edges=edges,
        isl_delay=isl_delay,
        gsl_site=np.array(g_site, dtype=np.int32),
        gsl_sat=np.array(g_sat, dtype=np.int32),
        gsl_delay=gsl_delay,
        fibre_gw=np.array(f_gw, dtype=np.int64),
        fibre_pop=np.array(f_pop, dtype=np.int64),
        fibre_delay=rng.uniform(0.1 * MS, 5 * MS, size=len(f_gw)),
    )


def oracle(net: Network, *, bent_pipe: bool) -> nx.DiGraph:
    """The same network in networkx, from the raw inputs.

    Satellites are nodes ``0 .. S-1``; site ``g`` is ``("out", g)`` (paths leave) and
    ``("in", g)`` (paths arrive), so no site ever relays.
    """
    graph = nx.DiGraph()
    graph.add_nodes_from(range(net.n_sats))
    for g in range(len(net.kinds)):
        graph.add_nodes_from([("out", g), ("in", g)])
    if not bent_pipe:
        for (a, b), d in zip(net.isl_edges.tolist(), net.isl_delay.tolist(), strict=True):
            if math.isfinite(d):
                graph.add_edge(a, b, weight=d)
                graph.add_edge(b, a, weight=d)
    for g, s, d in zip(
        net.gsl_site.tolist(), net.gsl_sat.tolist(), net.gsl_delay.tolist(), strict=True
    ):
        if net.kinds[g] != "pop":
            graph.add_edge(("out", g), s, weight=d)
            graph.add_edge(s, ("in", g), weight=d)
    for gw, pop, d in zip(
        net.fibre_gw.tolist(), net.fibre_pop.tolist(), net.fibre_delay.tolist(), strict=True
    ):
        graph.add_edge(("in", gw), ("in", pop), weight=d)
        graph.add_edge(("out", pop), ("out", gw), weight=d)
    return graph


def unique_shortest_path(graph: nx.DiGraph, src: int, dst: int) -> list[Node] | None:
    """The shortest path from site ``src`` to site ``dst`` if it is unique, else None."""
    paths = list(
        itertools.islice(nx.all_shortest_paths(graph, ("out", src), ("in", dst), "weight"), 2)
    )
    return paths[0] if len(paths) == 1 else None


def expected_hash(path: list[Node], n_sats: int, n_sites: int) -> int:
    """The documented path hash: starting from the target's node number, ``h = h * 1_000_003 +
    node`` for each node back to the origin, modulo 2^64 (nodes numbered satellites, then site
    out-nodes, then site in-nodes)."""

    def number(node: Node) -> int:
        if isinstance(node, int):
            return node
        return n_sats + node[1] + (n_sites if node[0] == "in" else 0)

    nums = [number(n) for n in reversed(path)]
    h = nums[0]
    for v in nums[1:]:
        h = (h * 1_000_003 + v) % 2**64
    return h


def satellites_on(path: list[Node]) -> list[int]:
    return [n for n in path if isinstance(n, int)]


def check_against_oracle(
    graph: nx.DiGraph, src: NDArray[np.int64], dst: NDArray[np.int64], routes: Routes
) -> int:
    """Compare every pair with networkx; returns how many pairs had a unique shortest path."""
    assert routes.hops.dtype == np.int16 and routes.path_hash.dtype == np.uint64
    assert routes.src_sat.dtype == routes.dst_sat.dtype == np.int32
    n_sats = sum(1 for n in graph.nodes if isinstance(n, int))
    n_sites = (graph.number_of_nodes() - n_sats) // 2
    n_unique = 0
    for p, (s, d) in enumerate(zip(src.tolist(), dst.tolist(), strict=True)):
        try:
            want = nx.dijkstra_path_length(graph, ("out", s), ("in", d), weight="weight")
        except nx.NetworkXNoPath:
            assert routes.delay_s[p] == np.inf, (s, d)
            assert routes.hops[p] == -1
            assert routes.src_sat[p] == -1
            assert routes.dst_sat[p] == -1
            assert routes.path_hash[p] == 0
            continue
        assert abs(routes.delay_s[p] - want) <= REL_TOL * want, (s, d, routes.delay_s[p], want)
        assert routes.path_hash[p] != 0
        path = unique_shortest_path(graph, s, d)
        if path is None:
            continue
        n_unique += 1
        sats = satellites_on(path)
        assert routes.hops[p] == len(path) - 1, (s, d, path)
        # Dijkstra may have run from the destination's side, which hashes the mirrored path.
        mirrored: list[Node] = [
            n if isinstance(n, int) else ("in" if n[0] == "out" else "out", n[1])
            for n in reversed(path)
        ]
        assert routes.path_hash[p] in {
            expected_hash(path, n_sats, n_sites),
            expected_hash(mirrored, n_sats, n_sites),
        }, (s, d, path)
        assert routes.src_sat[p] == sats[0], (s, d, path)
        assert routes.dst_sat[p] == sats[-1], (s, d, path)
    return n_unique


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_sats=st.integers(8, 48),
    p_down=st.floats(0.0, 0.5),
    bent_pipe=st.booleans(),
)
def test_routes_match_networkx(seed: int, n_sats: int, p_down: float, bent_pipe: bool) -> None:
    rng = np.random.default_rng(seed)
    net = random_network(rng, n_sats, p_down)
    graph = oracle(net, bent_pipe=bent_pipe)
    n_sites = len(net.kinds)
    # Random pairs, and one site to every other (so Dijkstra runs from each side of the pairs).
    src = rng.integers(0, n_sites, size=15)
    dst = (src + rng.integers(1, n_sites, size=15)) % n_sites
    fan_dst = np.array([g for g in range(n_sites) if g != src[0]], dtype=np.int64)
    fan_src = np.full(fan_dst.size, src[0], dtype=np.int64)
    for a, b in [(src, dst), (fan_src, fan_dst)]:
        problem = net.problem(a, b)
        routes = shortest_routes(problem, net.graph(problem, bent_pipe=bent_pipe))
        check_against_oracle(graph, a, b, routes)
        # The reversed pairs: same delays, hops, and the serving satellites swapped.
        rev_problem = net.problem(b, a)
        rev = shortest_routes(rev_problem, net.graph(rev_problem, bent_pipe=bent_pipe))
        check_against_oracle(graph, b, a, rev)
        reachable = np.isfinite(routes.delay_s)
        np.testing.assert_array_equal(np.isfinite(rev.delay_s), reachable)
        got, want = rev.delay_s[reachable], routes.delay_s[reachable]
        assert np.all(np.abs(got - want) <= REL_TOL * want)
        for p in np.flatnonzero(reachable):
            if unique_shortest_path(graph, int(a[p]), int(b[p])) is not None:
                assert rev.hops[p] == routes.hops[p]
                assert rev.src_sat[p] == routes.dst_sat[p]
                assert rev.dst_sat[p] == routes.src_sat[p]


def test_random_networks_exercise_every_case() -> None:
    """The random networks above hold reachable and unreachable pairs, unique paths, and paths
    that end in fibre, so the comparison is not vacuous."""
    n_reach = n_unreach = n_unique = n_fibre = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        net = random_network(rng, 30, 0.2)
        graph = oracle(net, bent_pipe=False)
        n_sites = len(net.kinds)
        src, dst = (
            np.array(x, dtype=np.int64)
            for x in zip(*itertools.permutations(range(n_sites), 2), strict=True)
        )
        problem = net.problem(src, dst)
        routes = shortest_routes(problem, net.graph(problem, bent_pipe=False))
        n_unique += check_against_oracle(graph, src, dst, routes)
        reach = np.isfinite(routes.delay_s)
        n_reach += int(reach.sum())
        n_unreach += int((~reach).sum())
        n_fibre += sum(net.kinds[d] == "pop" for d in dst[reach].tolist())
    assert min(n_reach, n_unreach, n_fibre) > 50
    assert n_unique > 0.9 * n_reach


# --- A hand-solved network ------------------------------------------------------------------

# Satellites 0 - 1 - 2 in a line, 10 ms per ISL.
# Sites: T (terminal, sees sat 0 at 3 ms), T2 (terminal, sees sats 0 and 2 at 1 ms each),
# GW (gateway, sees sat 2 at 4 ms), GW2 (gateway, sees sat 0 at 30 ms), POP (PoP; a GSL
# to sat 1 at 1 ms is listed and must be ignored), GW3 (gateway, sees sats 0 and 2 at 1 ms
# each, no fibre). Fibre: GW - POP 1 ms, GW2 - POP 1 ms.
T, T2, GW, GW2, POP, GW3 = range(6)
HAND_KINDS = ("terminal", "terminal", "gateway", "gateway", "pop", "gateway")
HAND_ISL = np.array([[0, 1], [2, 1]], dtype=np.int32)
HAND_ISL_DELAY = np.array([10.0, 10.0]) * MS
HAND_GSL = [
    (T, 0, 3.0),
    (T2, 0, 1.0),
    (T2, 2, 1.0),
    (GW, 2, 4.0),
    (GW2, 0, 30.0),
    (POP, 1, 1.0),
    (GW3, 0, 1.0),
    (GW3, 2, 1.0),
]


def hand_routes(src: list[int], dst: list[int], *, bent_pipe: bool) -> Routes:
    problem = RoutingProblem(
        n_sats=3,
        n_sites=len(HAND_KINDS),
        gsl_site=np.array([k != "pop" for k in HAND_KINDS]),
        isl_edges=HAND_ISL,
        fibre_gw=np.array([GW, GW2], dtype=np.int64),
        fibre_pop=np.array([POP, POP], dtype=np.int64),
        fibre_delay_s=np.array([1.0, 1.0]) * MS,
        pair_src=np.array(src, dtype=np.int64),
        pair_dst=np.array(dst, dtype=np.int64),
    )
    graph = snapshot_graph(
        problem,
        isl_delay_s=None if bent_pipe else HAND_ISL_DELAY,
        gsl_site=np.array([g for g, _, _ in HAND_GSL], dtype=np.int32),
        gsl_sat=np.array([s for _, s, _ in HAND_GSL], dtype=np.int32),
        gsl_delay_s=np.array([d for _, _, d in HAND_GSL]) * MS,
    )
    return shortest_routes(problem, graph)


#: (src, dst): (delay [ms], hops, src_sat, dst_sat) with ISLs, then bent-pipe (None: no route).
HAND_SOLUTION = {
    # T -> sat0 -> sat1 -> sat2 -> GW -> POP: 3 + 10 + 10 + 4 + 1. Relaying through T2 or GW3
    # (sat0 -> site -> sat2, 2 ms) would give 10 ms, through the PoP's ignored GSL 14 ms.
    (T, POP): ((28.0, 5, 0, 2), (34.0, 3, 0, 0)),  # bent pipe: T -> sat0 -> GW2 -> POP
    (T, GW): ((27.0, 4, 0, 2), None),
    (T, T2): ((4.0, 2, 0, 0), (4.0, 2, 0, 0)),
    (T2, POP): ((6.0, 3, 2, 2), (6.0, 3, 2, 2)),
    (T2, GW): ((5.0, 2, 2, 2), (5.0, 2, 2, 2)),
    (GW, GW2): ((54.0, 4, 2, 0), None),  # never over fibre through the PoP (1 + 1 ms)
    (POP, T): ((28.0, 5, 2, 0), (34.0, 3, 0, 0)),
    (POP, GW3): ((6.0, 3, 2, 2), (6.0, 3, 2, 2)),  # POP -> GW -> sat2 -> GW3
    (T, GW3): ((4.0, 2, 0, 0), (4.0, 2, 0, 0)),
}


@pytest.mark.parametrize("bent_pipe", [False, True], ids=["isl", "bent-pipe"])
def test_hand_solved_network(bent_pipe: bool) -> None:
    pairs = list(HAND_SOLUTION)
    src, dst = [a for a, _ in pairs], [b for _, b in pairs]
    routes = hand_routes(src, dst, bent_pipe=bent_pipe)
    for p, pair in enumerate(pairs):
        want = HAND_SOLUTION[pair][1 if bent_pipe else 0]
        got = (routes.delay_s[p], routes.hops[p], routes.src_sat[p], routes.dst_sat[p])
        if want is None:
            assert got == (np.inf, -1, -1, -1), pair
            assert routes.path_hash[p] == 0
            continue
        delay_ms, hops, s_sat, d_sat = want
        assert abs(got[0] - delay_ms * MS) < ONE_PS, (pair, got)
        assert got[1:] == (hops, s_sat, d_sat), (pair, got)
        assert routes.path_hash[p] != 0


@pytest.mark.parametrize("bent_pipe", [False, True], ids=["isl", "bent-pipe"])
def test_hand_solved_each_pair_alone(bent_pipe: bool) -> None:
    """Routing a pair alone, or reversed, gives the same answer as routing it with the others
    (Dijkstra runs from the sources or from the destinations depending on the pair set)."""
    pairs = list(HAND_SOLUTION)
    together = hand_routes([a for a, _ in pairs], [b for _, b in pairs], bent_pipe=bent_pipe)
    for p, (a, b) in enumerate(pairs):
        alone = hand_routes([a], [b], bent_pipe=bent_pipe)
        rev = hand_routes([b], [a], bent_pipe=bent_pipe)
        assert alone.delay_s[0] == together.delay_s[p]
        assert alone.hops[0] == together.hops[p] == rev.hops[0]
        assert (alone.src_sat[0], alone.dst_sat[0]) == (together.src_sat[p], together.dst_sat[p])
        assert (rev.src_sat[0], rev.dst_sat[0]) == (alone.dst_sat[0], alone.src_sat[0])
        if np.isfinite(alone.delay_s[0]):
            assert abs(rev.delay_s[0] - alone.delay_s[0]) < ONE_PS
        else:
            assert rev.delay_s[0] == np.inf


def test_hand_solved_down_links() -> None:
    """An ISL that is down (inf or NaN) is not used: T reaches the PoP through GW2 only."""
    problem = RoutingProblem(
        n_sats=3,
        n_sites=len(HAND_KINDS),
        gsl_site=np.array([k != "pop" for k in HAND_KINDS]),
        isl_edges=HAND_ISL,
        fibre_gw=np.array([GW, GW2]),
        fibre_pop=np.array([POP, POP]),
        fibre_delay_s=np.array([1.0, 1.0]) * MS,
        pair_src=np.array([T]),
        pair_dst=np.array([POP]),
    )
    gsl: dict[str, NDArray[Any]] = dict(
        gsl_site=np.array([g for g, _, _ in HAND_GSL], dtype=np.int32),
        gsl_sat=np.array([s for _, s, _ in HAND_GSL], dtype=np.int32),
        gsl_delay_s=np.array([d for _, _, d in HAND_GSL]) * MS,
    )
    for down in [np.inf, np.nan]:
        graph = snapshot_graph(problem, isl_delay_s=np.array([10.0 * MS, down]), **gsl)
        routes = shortest_routes(problem, graph)
        assert abs(routes.delay_s[0] - 34.0 * MS) < ONE_PS
        assert (routes.hops[0], routes.src_sat[0], routes.dst_sat[0]) == (3, 0, 0)


def test_delay_helpers() -> None:
    """Free space at c, fibre at c / 1.467; scalar and array inputs."""
    assert space_delay_s(C_M_S) == 1.0
    np.testing.assert_array_equal(space_delay_s(np.array([0.0, C_M_S])), [0.0, 1.0])
    assert abs(fibre_delay_s(1000e3) - 1000e3 * 1.467 / 299_792_458.0) < ONE_PS
    np.testing.assert_allclose(
        fibre_delay_s(np.array([1.0, 2.0]) * C_M_S),
        [FIBRE_GROUP_INDEX, 2 * FIBRE_GROUP_INDEX],
        rtol=1e-15,
    )


# --- Invariants on a propagated Walker shell ------------------------------------------------

CITIES_DEG = {
    "London": (51.51, -0.13),
    "New York": (40.71, -74.01),
    "Los Angeles": (34.05, -118.24),
    "Sao Paulo": (-23.55, -46.63),
    "Johannesburg": (-26.20, 28.05),
    "Nairobi": (-1.29, 36.82),
    "Warsaw": (52.23, 21.01),
    "Kyiv": (50.45, 30.52),
    "Singapore": (1.35, 103.82),
    "Tokyo": (35.68, 139.69),
    "Sydney": (-33.87, 151.21),
    "Reykjavik": (64.15, -21.94),
}


def test_walker_shell_routes_obey_geometry() -> None:
    """On a propagated 24 x 16 shell: every route is at least the great circle (and the chord)
    over c, equals the summed length of its links over c, never relays through a site, and ISL
    routing is never slower than bent-pipe."""
    constellation = Constellation.walker_delta(
        planes=24, sats_per_plane=16, phasing=1, altitude_m=550e3, inclination_deg=53.0
    )
    epoch = datetime(2025, 3, 1, tzinfo=UTC)
    t_s = np.array([0.0, 700.0, 2400.0])
    r, ok = Propagator(constellation, epoch).positions_ecef_m(t_s)
    edges = plus_grid_edges(constellation)
    length = isl_lengths_m(r, edges)
    isl_range = max_isl_range_m(550e3)
    isl_delay = np.where(length <= isl_range, length / C_M_S, np.inf)
    lat, lon = np.radians(np.array(list(CITIES_DEG.values()))).T
    site_r = geodetic_to_ecef(lat, lon)
    gsl = find_gsls(
        r, ok, site_r, up_vectors(lat, lon), GslRule(min_elevation_rad=math.radians(25))
    )
    n_sites = lat.size
    src, dst = (
        np.array(x, dtype=np.int64)
        for x in zip(*itertools.combinations(range(n_sites), 2), strict=True)
    )
    problem = RoutingProblem(
        n_sats=constellation.n_sats,
        n_sites=n_sites,
        gsl_site=np.ones(n_sites, dtype=bool),
        isl_edges=edges,
        fibre_gw=np.zeros(0, np.int64),
        fibre_pop=np.zeros(0, np.int64),
        fibre_delay_s=np.zeros(0),
        pair_src=src,
        pair_dst=dst,
    )
    gc_m = great_circle_m(lat[src], lon[src], lat[dst], lon[dst])
    chord_m = np.linalg.norm(site_r[src] - site_r[dst], axis=1)
    site_pm = np.stack(pymap3d.geodetic2ecef(lat, lon, 0.0, deg=False), axis=-1)
    n_checked = 0
    for k in range(t_s.size):
        now = gsl.t_idx == k
        links = dict(
            gsl_site=gsl.site_idx[now],
            gsl_sat=gsl.sat_idx[now],
            gsl_delay_s=gsl.length_m[now] / C_M_S,
        )
        routes = shortest_routes(
            problem, snapshot_graph(problem, isl_delay_s=isl_delay[k], **links)
        )
        bent = shortest_routes(problem, snapshot_graph(problem, isl_delay_s=None, **links))
        assert np.all(routes.delay_s <= bent.delay_s)
        reach = np.isfinite(routes.delay_s)
        assert reach.sum() > src.size // 2
        rtt = 2.0 * routes.delay_s[reach]
        assert np.all(rtt >= 2.0 * gc_m[reach] / C_M_S * (1.0 - 1e-9))
        assert np.all(routes.delay_s[reach] >= chord_m[reach] / C_M_S)
        # The oracle graph, built without our frames, find_gsls or snapshot_graph: sites by
        # pymap3d's geodetic2ecef, ground links wherever pymap3d's elevation of the satellite
        # is >= 25 deg, every link weighted by its straight-line length; networkx's Dijkstra.
        # (Satellite positions are the propagator's, validated in test_propagation.)
        x, y, z = (r[k][None, :, j] for j in range(3))
        _az, el_deg, _rng = pymap3d.ecef2aer(
            x, y, z, np.degrees(lat)[:, None], np.degrees(lon)[:, None], 0.0, deg=True
        )
        el_deg = np.asarray(el_deg)
        assert np.abs(el_deg - 25.0).min() > EL_TOL_DEG  # no link on the mask within rounding
        graph = nx.DiGraph()
        for a, b in edges.tolist():
            d = float(np.linalg.norm(r[k, a] - r[k, b]))
            if d <= isl_range:
                graph.add_edge(a, b, weight=d)
                graph.add_edge(b, a, weight=d)
        for g, s in np.argwhere(el_deg >= 25.0).tolist():
            d = float(np.linalg.norm(r[k, s] - site_pm[g]))
            graph.add_edge(("out", g), s, weight=d)
            graph.add_edge(s, ("in", g), weight=d)

        def where(node: Node, k: int = k) -> NDArray[np.float64]:
            return r[k, node] if isinstance(node, int) else site_pm[node[1]]

        for p in np.flatnonzero(reach):
            path = nx.dijkstra_path(graph, ("out", int(src[p])), ("in", int(dst[p])))
            assert all(isinstance(n, int) for n in path[1:-1]), path
            path_m = sum(
                float(np.linalg.norm(where(u) - where(v))) for u, v in itertools.pairwise(path)
            )
            assert abs(routes.delay_s[p] * C_M_S - path_m) < ONE_MM, (p, path)
            assert routes.hops[p] == len(path) - 1
            assert (routes.src_sat[p], routes.dst_sat[p]) == (path[1], path[-2])
            n_checked += 1
    assert n_checked > 100


def test_routing_problem_nodes() -> None:
    """Out nodes follow the satellites, in nodes follow the out nodes; scalar and array."""
    problem = RoutingProblem(
        n_sats=5,
        n_sites=3,
        gsl_site=np.ones(3, bool),
        isl_edges=np.zeros((0, 2), np.int32),
        fibre_gw=np.zeros(0, np.int64),
        fibre_pop=np.zeros(0, np.int64),
        fibre_delay_s=np.zeros(0),
        pair_src=np.zeros(0, np.int64),
        pair_dst=np.zeros(0, np.int64),
    )
    assert problem.n_nodes == 11
    assert problem.out_node(np.int64(0)) == 5
    assert problem.in_node(np.int64(2)) == 10
    np.testing.assert_array_equal(problem.out_node(np.arange(3)), [5, 6, 7])
    np.testing.assert_array_equal(problem.in_node(np.arange(3)), [8, 9, 10])
    routes = shortest_routes(
        problem,
        snapshot_graph(
            problem,
            isl_delay_s=None,
            gsl_site=np.zeros(0, np.int32),
            gsl_sat=np.zeros(0, np.int32),
            gsl_delay_s=np.zeros(0),
        ),
    )
    assert routes.delay_s.shape == routes.hops.shape == routes.path_hash.shape == (0,)
