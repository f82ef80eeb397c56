"""Shortest-delay routing on one network snapshot.

Graph layout (``N = S + 2 G`` nodes): satellites ``0 .. S-1``; then every ground site twice, as
an *out* node ``S + g`` (where paths leave the site: edges only towards satellites or, for a PoP,
over fibre to its gateways) and an *in* node ``S + G + g`` (where paths arrive). A path therefore
never transits a ground site: terminals never relay, a gateway only hands traffic between its
satellites and its fibre to a PoP, and the graph stays symmetric, so the reverse of a shortest
path is a shortest path and RTT is twice the one-way delay.

Weights are one-way propagation delays [s]. Shortest paths come from
``scipy.sparse.csgraph.dijkstra`` (tested against networkx). No route is ``inf`` delay and
``-1`` for the satellite indices; array APIs never raise over one element.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from .constants import C_M_S, FIBRE_GROUP_INDEX

#: Smallest edge weight [s]; scipy's sparse graphs must not hold zero-weight edges.
_MIN_DELAY_S = 1e-12
_HASH_MUL = np.uint64(1_000_003)


@dataclass(frozen=True)
class RoutingProblem:
    """Fixed structure of the network: who may link to whom, and which pairs to route.

    Parameters
    ----------
    n_sats, n_sites : int
        ``S`` satellites and ``G`` ground sites.
    gsl_site : ndarray of bool, shape (G,)
        Sites that link to satellites (terminals and gateways; PoPs do not).
    isl_edges : ndarray of int32, shape (E, 2)
    fibre_gw, fibre_pop : ndarray of int64, shape (F,)
        Site indices of gateway <-> PoP fibre links.
    fibre_delay_s : ndarray, shape (F,)
        One-way fibre delay [s].
    pair_src, pair_dst : ndarray of int64, shape (P,)
        Site indices of the endpoint pairs to route.
    """

    n_sats: int
    n_sites: int
    gsl_site: NDArray[np.bool_]
    isl_edges: NDArray[np.int32]
    fibre_gw: NDArray[np.int64]
    fibre_pop: NDArray[np.int64]
    fibre_delay_s: NDArray[np.float64]
    pair_src: NDArray[np.int64]
    pair_dst: NDArray[np.int64]

    @property
    def n_nodes(self) -> int:
        """``S + 2 G``."""
        return self.n_sats + 2 * self.n_sites

    def out_node(self, site: NDArray[np.int64]) -> NDArray[np.int64]:
        """Graph node where paths leave ``site``."""
        return self.n_sats + np.asarray(site, dtype=np.int64)

    def in_node(self, site: NDArray[np.int64]) -> NDArray[np.int64]:
        """Graph node where paths arrive at ``site``."""
        return self.n_sats + self.n_sites + np.asarray(site, dtype=np.int64)


@dataclass(frozen=True)
class Routes:
    """Routes of ``P`` pairs at one step.

    Attributes
    ----------
    delay_s : ndarray, shape (P,)
        One-way propagation delay [s]; ``inf`` if unreachable.
    hops : ndarray of int16, shape (P,)
        Links on the path (GSLs, ISLs and fibre); -1 if unreachable.
    src_sat, dst_sat : ndarray of int32, shape (P,)
        First and last satellite on the path (the source's and the destination's serving
        satellites); -1 if unreachable or no satellite on the path.
    path_hash : ndarray of uint64, shape (P,)
        Hash of the node sequence, to detect path changes between steps; 0 if unreachable.
    """

    delay_s: NDArray[np.float64]
    hops: NDArray[np.int16]
    src_sat: NDArray[np.int32]
    dst_sat: NDArray[np.int32]
    path_hash: NDArray[np.uint64]


def snapshot_graph(
    problem: RoutingProblem,
    *,
    isl_delay_s: NDArray[np.float64] | None,
    gsl_site: NDArray[np.int32],
    gsl_sat: NDArray[np.int32],
    gsl_delay_s: NDArray[np.float64],
) -> csr_array:
    """Directed graph of one step.

    Parameters
    ----------
    problem : RoutingProblem
    isl_delay_s : ndarray, shape (E,) or None
        One-way delay of each ISL [s]; ``inf``/NaN for links that are down; None for no ISLs
        (bent-pipe).
    gsl_site, gsl_sat : ndarray of int32, shape (L,)
        Ground-satellite links of this step.
    gsl_delay_s : ndarray, shape (L,)

    Returns
    -------
    csr_array, shape (N, N)
    """
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    w: list[NDArray[np.float64]] = []
    if isl_delay_s is not None and problem.isl_edges.size:
        up = np.isfinite(isl_delay_s)
        a = problem.isl_edges[up, 0].astype(np.int64)
        b = problem.isl_edges[up, 1].astype(np.int64)
        d = isl_delay_s[up]
        rows += [a, b]
        cols += [b, a]
        w += [d, d]
    keep = problem.gsl_site[gsl_site]
    g = gsl_site[keep].astype(np.int64)
    s = gsl_sat[keep].astype(np.int64)
    d = gsl_delay_s[keep]
    rows += [problem.out_node(g), s]
    cols += [s, problem.in_node(g)]
    w += [d, d]
    if problem.fibre_gw.size:
        rows += [problem.in_node(problem.fibre_gw), problem.out_node(problem.fibre_pop)]
        cols += [problem.in_node(problem.fibre_pop), problem.out_node(problem.fibre_gw)]
        w += [problem.fibre_delay_s, problem.fibre_delay_s]
    n = problem.n_nodes
    weights = np.maximum(np.concatenate(w), _MIN_DELAY_S)
    return csr_array((weights, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def shortest_routes(problem: RoutingProblem, graph: csr_array) -> Routes:
    """Shortest-delay route of every pair on one snapshot.

    Dijkstra runs from whichever side of the pairs has fewer distinct sites (the graph is
    symmetric), then each path is walked back through the predecessor arrays for all pairs at
    once.

    Parameters
    ----------
    problem : RoutingProblem
    graph : csr_array, shape (N, N)
        From :func:`snapshot_graph`.

    Returns
    -------
    Routes
    """
    src_sites, dst_sites = problem.pair_src, problem.pair_dst
    reverse = np.unique(dst_sites).size < np.unique(src_sites).size
    if reverse:
        src_sites, dst_sites = dst_sites, src_sites
    uniq, row = np.unique(src_sites, return_inverse=True)
    origins = problem.out_node(uniq)
    dist, pred = dijkstra(graph, directed=True, indices=origins, return_predecessors=True)
    target = problem.in_node(dst_sites)
    delay = dist[row, target]
    n_p = target.size
    hops = np.zeros(n_p, dtype=np.int16)
    near_target = np.full(n_p, -1, dtype=np.int32)
    near_origin = np.full(n_p, -1, dtype=np.int32)
    h = np.zeros(n_p, dtype=np.uint64)
    cur = target.copy()
    active = np.flatnonzero(np.isfinite(delay))
    h[active] = cur[active].astype(np.uint64)
    n_sats = problem.n_sats
    origin = origins[row]
    while active.size:
        prev = pred[row[active], cur[active]].astype(np.int64)
        hops[active] += 1
        h[active] = h[active] * _HASH_MUL + prev.astype(np.uint64)
        is_sat = (prev >= 0) & (prev < n_sats)
        first = is_sat & (near_target[active] < 0)
        near_target[active[first]] = prev[first]
        near_origin[active[is_sat]] = prev[is_sat]
        cur[active] = prev
        active = active[(prev != origin[active]) & (prev >= 0)]
    unreachable = ~np.isfinite(delay)
    hops[unreachable] = -1
    h[unreachable] = 0
    if reverse:
        src_sat, dst_sat = near_target, near_origin
    else:
        src_sat, dst_sat = near_origin, near_target
    return Routes(delay_s=delay, hops=hops, src_sat=src_sat, dst_sat=dst_sat, path_hash=h)


def space_delay_s(length_m: NDArray[np.float64]) -> NDArray[np.float64]:
    """One-way delay of a free-space link (ISL, GSL) of the given length [s]."""
    return np.asarray(length_m, dtype=np.float64) / C_M_S


def fibre_delay_s(length_m: NDArray[np.float64]) -> NDArray[np.float64]:
    """One-way delay over fibre of the given route length, at ``c / 1.467`` [s]."""
    return np.asarray(length_m, dtype=np.float64) * FIBRE_GROUP_INDEX / C_M_S
