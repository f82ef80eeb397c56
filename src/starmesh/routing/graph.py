"""Routing graphs: node numbering, one-step and per-chunk graphs, link delays, and the
reference shortest paths (scipy).

Graph layout (``N = S + 2 G`` nodes): satellites ``0 .. S-1``; then every ground site twice, as
an *out* node ``S + g`` (where paths leave the site: edges only towards satellites or, for a PoP,
over fibre to its gateways) and an *in* node ``S + G + g`` (where paths arrive). A path therefore
never transits a ground site: terminals never relay, a gateway only hands traffic between its
satellites and its fibre to a PoP, and the graph stays symmetric, so the reverse of a shortest
path is a shortest path and RTT is twice the one-way delay.

Weights are one-way propagation delays [s]. :func:`shortest_routes` uses
``scipy.sparse.csgraph.dijkstra`` (tested against networkx): the reference method. Runs use the
compiled kernels of :mod:`starmesh.routing.kernels` on :func:`build_chunk_graph`'s graphs,
tested against this one. No route is ``inf`` delay and ``-1`` for the satellite indices; array
APIs never raise over one element.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from ..constants import C_M_S, FIBRE_GROUP_INDEX

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


@dataclass(frozen=True)
class ChunkGraph:
    """The directed graph of a chunk of steps: fixed CSR structure, weights set per step.

    Every edge that exists at any step of the chunk has a CSR position; at a step where it is
    absent its weight is ``inf``. Keeping the structure fixed lets the shortest-path trees of one
    step be updated to the next (:func:`starmesh.routing.kernels.sssp_update`).

    Attributes
    ----------
    indptr : ndarray of int64, shape (N + 1,)
    indices, edge_src : ndarray of int32, shape (M,)
        Head and tail node of each CSR position.
    pos_isl : ndarray of int64, shape (E, 2)
        Positions of ``a -> b`` and ``b -> a`` for each ISL (empty without ISLs).
    pos_gsl : ndarray of int64, shape (L, 2)
        Positions of ``site out -> sat`` and ``sat -> site in`` for each GSL of ``gsl_keys``.
    base_w : ndarray of float64, shape (M,)
        Weights that do not change (fibre), ``inf`` elsewhere.
    sat_of_node : ndarray of int64, shape (S,), or None
        The satellite at each satellite node when the graph numbers them in another order
        than the problem (``sat_order`` of :func:`build_chunk_graph`); None: the same order.
        Node ids the kernels return are the graph's; :meth:`to_problem` maps them back.
    node_of_sat : ndarray of int64, shape (S,), or None
        The inverse: the node of each satellite (:meth:`from_problem`).
    """

    indptr: NDArray[np.int64]
    indices: NDArray[np.int32]
    edge_src: NDArray[np.int32]
    pos_isl: NDArray[np.int64]
    pos_gsl: NDArray[np.int64]
    pos_fibre: NDArray[np.int64]
    base_w: NDArray[np.float64]
    sat_of_node: NDArray[np.int64] | None = None
    node_of_sat: NDArray[np.int64] | None = None

    def to_problem(self, nodes: NDArray[np.integer]) -> NDArray[np.int64]:
        """Graph node ids -> the problem's (satellites renumbered back; sites and -1 as
        they are). Any shape."""
        return _renumber_sats(nodes, self.sat_of_node)

    def from_problem(self, nodes: NDArray[np.integer]) -> NDArray[np.int64]:
        """The problem's node ids -> the graph's (inverse of :meth:`to_problem`)."""
        return _renumber_sats(nodes, self.node_of_sat)

    def weights(
        self,
        isl_delay_s: NDArray[np.float64] | None,
        gsl_delay_s: NDArray[np.float64],
        fibre_up: NDArray[np.bool_] | None = None,
    ) -> NDArray[np.float64]:
        """Edge weights of one step.

        Parameters
        ----------
        isl_delay_s : ndarray, shape (E,) or None
            One-way ISL delays (``inf`` or NaN when down).
        gsl_delay_s : ndarray, shape (L,)
            One-way delay of every GSL of the chunk at this step (``inf`` when absent).
        fibre_up : ndarray of bool, shape (F,), optional
            Fibre links in service (a failed gateway or PoP takes its fibre down).
        """
        w = self.base_w.copy()
        if isl_delay_s is not None and self.pos_isl.size:
            d = np.where(np.isfinite(isl_delay_s), np.maximum(isl_delay_s, _MIN_DELAY_S), np.inf)
            w[self.pos_isl[:, 0]] = d
            w[self.pos_isl[:, 1]] = d
        g = np.where(np.isfinite(gsl_delay_s), np.maximum(gsl_delay_s, _MIN_DELAY_S), np.inf)
        w[self.pos_gsl[:, 0]] = g
        w[self.pos_gsl[:, 1]] = g
        if fibre_up is not None and self.pos_fibre.size:
            down = ~fibre_up
            w[self.pos_fibre[down, 0]] = np.inf
            w[self.pos_fibre[down, 1]] = np.inf
        return w


def build_chunk_graph(
    problem: RoutingProblem,
    gsl_site: NDArray[np.int64],
    gsl_sat: NDArray[np.int64],
    *,
    with_isl: bool,
    isl_edges: NDArray[np.int32] | None = None,
    sat_order: NDArray[np.int64] | None = None,
) -> ChunkGraph:
    """CSR structure for every link that exists at some step of a chunk.

    Parameters
    ----------
    problem : RoutingProblem
    gsl_site, gsl_sat : ndarray of int64, shape (L,)
        The distinct ground-satellite links of the chunk (sites with ``problem.gsl_site``).
    with_isl : bool
        Include the ISLs (``isl`` mode) or not (``bent-pipe``).
    isl_edges : ndarray of int32, shape (E, 2), optional
        The chunk's ISLs when they vary between chunks (re-paired +Grid); default
        ``problem.isl_edges``.
    sat_order : ndarray of int64, shape (S,), optional
        Number the satellite nodes in this order (node ``i`` is satellite ``sat_order[i]``),
        e.g. by shell and plane, so that a tree confined to one shell's mesh touches one block
        of nodes; kept as :attr:`ChunkGraph.sat_of_node` (and its inverse,
        :attr:`ChunkGraph.node_of_sat`). Default: the problem's order.
    """
    parts_src: list[NDArray[np.int64]] = []
    parts_dst: list[NDArray[np.int64]] = []
    edges = problem.isl_edges if isl_edges is None else isl_edges
    e = edges.shape[0] if with_isl else 0
    node_of_sat = None
    if sat_order is not None:
        node_of_sat = np.empty(problem.n_sats, np.int64)
        node_of_sat[sat_order] = np.arange(problem.n_sats)
    if e:
        a = edges[:, 0].astype(np.int64)
        b = edges[:, 1].astype(np.int64)
        if node_of_sat is not None:
            a, b = node_of_sat[a], node_of_sat[b]
        parts_src += [a, b]
        parts_dst += [b, a]
    n_l = gsl_site.size
    sat = gsl_sat.astype(np.int64) if node_of_sat is None else node_of_sat[gsl_sat]
    parts_src += [problem.out_node(gsl_site), sat]
    parts_dst += [sat, problem.in_node(gsl_site)]
    n_f = problem.fibre_gw.size
    if n_f:
        parts_src += [problem.in_node(problem.fibre_gw), problem.out_node(problem.fibre_pop)]
        parts_dst += [problem.in_node(problem.fibre_pop), problem.out_node(problem.fibre_gw)]
    src = np.concatenate(parts_src)
    dst = np.concatenate(parts_dst)
    order = np.lexsort((dst, src))
    pos = np.empty_like(order)
    pos[order] = np.arange(order.size)
    n = problem.n_nodes
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    base_w = np.full(order.size, np.inf)
    off = 2 * e + 2 * n_l
    if n_f:
        fw = np.maximum(problem.fibre_delay_s, _MIN_DELAY_S)
        base_w[pos[off : off + n_f]] = fw
        base_w[pos[off + n_f : off + 2 * n_f]] = fw
    return ChunkGraph(
        indptr=indptr,
        indices=dst[order].astype(np.int32),
        edge_src=src[order].astype(np.int32),
        pos_isl=np.stack([pos[:e], pos[e : 2 * e]], axis=1),
        pos_gsl=np.stack([pos[2 * e : 2 * e + n_l], pos[2 * e + n_l : off]], axis=1),
        pos_fibre=np.stack([pos[off : off + n_f], pos[off + n_f : off + 2 * n_f]], axis=1),
        base_w=base_w,
        sat_of_node=None if sat_order is None else np.asarray(sat_order, dtype=np.int64),
        node_of_sat=node_of_sat,
    )


def _renumber_sats(
    nodes: NDArray[np.integer], table: NDArray[np.int64] | None
) -> NDArray[np.int64]:
    """Node ids with the satellites' (ids below ``table.size``) mapped through ``table``;
    sites and -1 as they are, ``nodes`` itself without a table."""
    out = np.asarray(nodes, dtype=np.int64)
    if table is None:
        return out
    sat = (out >= 0) & (out < table.size)
    out = out.copy()
    out[sat] = table[out[sat]]
    return out
