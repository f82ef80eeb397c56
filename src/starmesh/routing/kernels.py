"""Compiled single-source shortest paths for many roots at once, and their step-to-step update.

scipy's ``csgraph.dijkstra`` is the reference (and the test oracle), but it cannot reuse work
between time steps, and it holds the GIL. Network state at consecutive steps differs by a few
metres per link, so almost every shortest-path tree of one step is still optimal, or nearly, at
the next. These kernels (numba, compiled once and cached) therefore

* run Dijkstra from every root in parallel threads (``prange``; the GIL is released), and
* update a step's trees to the next step exactly: recompute each node's distance along its old
  tree with the new weights (removed edges cut their subtrees off), seed a heap with every node
  that has an edge violating the shortest-path condition ``d[u] + w(u, v) >= d[v]``, and run the
  label-correcting relaxation from those seeds only. The re-summing visits nodes in the order
  the last update settled them, with each node's parent and tree-edge weight kept in arrays
  read in that order (:class:`TreeState`). Labels are always lengths of real paths and
  end with no violating edge anywhere, so they are the exact shortest distances; a node's parent
  changes only when a strictly shorter path appears, so exact ties keep the previous route.

No such update exists in a maintained library (networkx and scipy recompute from scratch), which
is why this module is written here. Graphs are CSR arrays whose structure is fixed for a chunk of
steps; absent edges carry an infinite weight. Distances are float64 sums taken in the same order
as Dijkstra's, so both give identical values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import NDArray

_INF = np.inf
#: Nodes per block of a tree's block flags (:attr:`TreeState.blocks`): 2**6.
_BLOCK_SHIFT = 6


@nb.njit(cache=True, nogil=True, inline="always")
def _push(hk: NDArray[np.float64], hv: NDArray[np.int64], n: int, key: float, val: int) -> int:
    # Binary min-heap sift-up; returns the new size.
    i = n
    hk[i] = key
    hv[i] = val
    while i > 0:
        parent = (i - 1) >> 1
        if hk[parent] <= hk[i]:
            break
        hk[parent], hk[i] = hk[i], hk[parent]
        hv[parent], hv[i] = hv[i], hv[parent]
        i = parent
    return n + 1


@nb.njit(cache=True, nogil=True, inline="always")
def _pop(hk: NDArray[np.float64], hv: NDArray[np.int64], n: int) -> int:
    # Moves the last element to the root and sifts down; the caller read hk[0], hv[0] before.
    n -= 1
    hk[0] = hk[n]
    hv[0] = hv[n]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= n:
            break
        small = left
        right = left + 1
        if right < n and hk[right] < hk[left]:
            small = right
        if hk[i] <= hk[small]:
            break
        hk[i], hk[small] = hk[small], hk[i]
        hv[i], hv[small] = hv[small], hv[i]
        i = small
    return n


@nb.njit(cache=True, nogil=True)
def _relax_from_heap(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    in_pos: NDArray[np.int32],
    w: NDArray[np.float64],
    dist: NDArray[np.float64],
    pedge: NDArray[np.int64],
    pnode: NDArray[np.int32],
    pin: NDArray[np.int32],
    hk: NDArray[np.float64],
    hv: NDArray[np.int64],
    n: int,
    od: NDArray[np.int32],
    cnt: int,
    listed: NDArray[np.int32],
    mark: int,
    blocks: NDArray[np.uint8],
) -> tuple[int, int]:
    # Returns how many times a node's parent edge was replaced, and the new length of the
    # tree's node list ``od``: a node reached for the first time (``listed[v] != mark``) is
    # appended to it, so the list holds every node the tree reaches, and its block of
    # ``_BLOCK`` nodes is flagged in ``blocks``.
    changes = 0
    while n > 0:
        key = hk[0]
        u = hv[0]
        n = _pop(hk, hv, n)
        if key > dist[u]:
            continue  # stale entry
        for e in range(indptr[u], indptr[u + 1]):
            nd = key + w[e]
            v = indices[e]
            if nd < dist[v]:
                dist[v] = nd
                if pedge[v] != e:
                    changes += 1
                    pedge[v] = e
                    pnode[v] = u
                    pin[v] = in_pos[e]
                if listed[v] != mark:
                    listed[v] = mark
                    od[cnt] = v
                    cnt += 1
                    blocks[v >> _BLOCK_SHIFT] = 1
                n = _push(hk, hv, n, nd, v)
    return changes, cnt


@nb.njit(cache=True, nogil=True, inline="always")
def _next_mark(marks: NDArray[np.int32], n_nodes: int) -> int:
    # A per-thread pass counter in the marks' last slot: a node is marked in this pass when its
    # mark equals the counter, so the marks never need clearing (until it would overflow).
    if marks[n_nodes] >= 2_000_000_000:
        marks[:] = 0
    marks[n_nodes] += 1
    return marks[n_nodes]


@dataclass
class TreeState:
    """What the compiled kernels keep between steps besides distances and tree edges.

    Per tree and node: the parent node and the tree edge's position in the graph's edges
    sorted by head (``in_order``), and a list of the nodes the tree reaches with every parent
    before its children (the order in which the last update settled them). Re-summing a tree
    along that list reads the new weights nearly in sequence (``w[in_order]``); following tree
    edges through the CSR arrays reads them at random. The list holds only the nodes the tree
    has reached since it was computed from scratch: the trees of a real constellation each
    span one shell's laser mesh, about a third of the nodes. Plus per-thread scratch (heaps,
    marks, stacks), allocated once instead of at every tree and step.

    Attributes
    ----------
    in_order : ndarray of int64, shape (M,)
        CSR positions sorted by (head, tail).
    in_pos : ndarray of int32, shape (M,)
        Inverse of ``in_order``.
    pnode, pin, order : ndarray of int32, shape (K, N)
        ``order[k, :n_order[k]]``: the nodes tree ``k`` lists (the rest is scratch).
    n_order : ndarray of int64, shape (K,)
    blocks : ndarray of uint8, shape (K, ceil(N / 64))
        1 where a block of 64 consecutive nodes holds a node the tree lists. The search for
        violating edges scans only those blocks: a tree spans one shell, whose satellites the
        routing graph numbers consecutively, so it skips the other shells' nodes whole.
    """

    in_order: NDArray[np.int64]
    in_pos: NDArray[np.int32]
    pnode: NDArray[np.int32]
    pin: NDArray[np.int32]
    order: NDArray[np.int32]
    n_order: NDArray[np.int64]
    blocks: NDArray[np.uint8]
    heap_keys: NDArray[np.float64]
    heap_nodes: NDArray[np.int64]
    marks: NDArray[np.int32]
    stack: NDArray[np.int32]
    settled: NDArray[np.int32]

    @classmethod
    def for_graph(
        cls,
        indptr: NDArray[np.int64],
        indices: NDArray[np.int32],
        edge_src: NDArray[np.int32],
        n_roots: int,
    ) -> TreeState:
        """State for ``n_roots`` trees over a CSR graph (``edge_src``: tail of each edge)."""
        n_nodes, m = indptr.size - 1, indices.size
        in_order = np.lexsort((edge_src, indices)).astype(np.int64)
        in_pos = np.empty(m, np.int32)
        in_pos[in_order] = np.arange(m, dtype=np.int32)
        n_thr = int(nb.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
        return cls(
            in_order=in_order,
            in_pos=in_pos,
            pnode=np.full((n_roots, n_nodes), -1, np.int32),
            pin=np.full((n_roots, n_nodes), -1, np.int32),
            order=np.tile(np.arange(n_nodes, dtype=np.int32), (n_roots, 1)),
            n_order=np.full(n_roots, n_nodes, np.int64),
            blocks=np.ones((n_roots, ((n_nodes - 1) >> _BLOCK_SHIFT) + 1), np.uint8),
            heap_keys=np.empty((n_thr, m + n_nodes + 1)),
            heap_nodes=np.empty((n_thr, m + n_nodes + 1), np.int64),
            marks=np.zeros((n_thr, n_nodes + 1), np.int32),
            stack=np.empty((n_thr, n_nodes), np.int32),
            settled=np.empty((n_thr, n_nodes), np.int32),
        )

    @classmethod
    def from_trees(
        cls,
        indptr: NDArray[np.int64],
        indices: NDArray[np.int32],
        edge_src: NDArray[np.int32],
        pedge: NDArray[np.int64],
    ) -> TreeState:
        """State of existing trees (``pedge``, shape (K, N)), for a caller that kept none."""
        st = cls.for_graph(indptr, indices, edge_src, pedge.shape[0])
        has = pedge >= 0
        st.pnode[has] = edge_src[pedge[has]]
        st.pin[has] = st.in_pos[pedge[has]]
        return st


@nb.njit(cache=True, nogil=True, parallel=True)
def _full_trees(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    w: NDArray[np.float64],
    roots: NDArray[np.int64],
    dist: NDArray[np.float64],
    pedge: NDArray[np.int64],
    in_pos: NDArray[np.int32],
    pnode: NDArray[np.int32],
    pin: NDArray[np.int32],
    order: NDArray[np.int32],
    n_order: NDArray[np.int64],
    blocks: NDArray[np.uint8],
    heap_keys: NDArray[np.float64],
    heap_nodes: NDArray[np.int64],
    marks: NDArray[np.int32],
) -> None:
    n_nodes = indptr.size - 1
    for k in nb.prange(roots.size):
        tid = nb.get_thread_id()
        hk = heap_keys[tid]
        hv = heap_nodes[tid]
        listed = marks[tid]
        mark = _next_mark(listed, n_nodes)
        d = dist[k]
        d[:] = _INF
        pedge[k, :] = -1
        pnode[k, :] = -1
        pin[k, :] = -1
        r = roots[k]
        d[r] = 0.0
        order[k, 0] = r
        listed[r] = mark
        blocks[k, :] = 0
        blocks[k, r >> _BLOCK_SHIFT] = 1
        n = _push(hk, hv, 0, 0.0, r)
        _, n_order[k] = _relax_from_heap(
            indptr,
            indices,
            in_pos,
            w,
            d,
            pedge[k],
            pnode[k],
            pin[k],
            hk,
            hv,
            n,
            order[k],
            1,
            listed,
            mark,
            blocks[k],
        )


def sssp_full(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    w: NDArray[np.float64],
    roots: NDArray[np.int64],
    dist: NDArray[np.float64],
    pedge: NDArray[np.int64],
    state: TreeState | None = None,
) -> None:
    """Dijkstra from every root.

    Parameters
    ----------
    indptr : ndarray of int64, shape (N + 1,)
    indices : ndarray of int32, shape (M,)
        CSR structure of a directed graph.
    w : ndarray of float64, shape (M,)
        Edge weights, > 0; ``inf`` for absent edges.
    roots : ndarray of int64, shape (K,)
    dist : ndarray of float64, shape (K, N)
        Output: distance from each root (``inf`` if unreachable).
    pedge : ndarray of int64, shape (K, N)
        Output: CSR position of the tree edge into each node (-1 for the root and unreachable).
    state : TreeState, optional
        Kept for :func:`sssp_update` (give the same one there); None for a throwaway one.
    """
    if state is None:
        src = np.repeat(np.arange(indptr.size - 1, dtype=np.int32), np.diff(indptr))
        state = TreeState.for_graph(indptr, indices, src, roots.size)
    _full_trees(
        indptr,
        indices,
        w,
        roots,
        dist,
        pedge,
        state.in_pos,
        state.pnode,
        state.pin,
        state.order,
        state.n_order,
        state.blocks,
        state.heap_keys,
        state.heap_nodes,
        state.marks,
    )


@nb.njit(cache=True, nogil=True, parallel=True)
def _update_trees(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    w: NDArray[np.float64],
    w_in: NDArray[np.float64],
    roots: NDArray[np.int64],
    dist: NDArray[np.float64],
    pedge: NDArray[np.int64],
    in_pos: NDArray[np.int32],
    pnode: NDArray[np.int32],
    pin: NDArray[np.int32],
    order: NDArray[np.int32],
    n_order: NDArray[np.int64],
    blocks: NDArray[np.uint8],
    heap_keys: NDArray[np.float64],
    heap_nodes: NDArray[np.int64],
    marks: NDArray[np.int32],
    stacks: NDArray[np.int32],
    settled: NDArray[np.int32],
) -> NDArray[np.int64]:
    n_nodes = indptr.size - 1
    work = np.zeros(roots.size, np.int64)
    for k in nb.prange(roots.size):
        tid = nb.get_thread_id()
        hk = heap_keys[tid]
        hv = heap_nodes[tid]
        done = marks[tid]
        stack = stacks[tid]
        seq = settled[tid]
        # A node is settled in this pass when its mark is this pass's (_next_mark); the nodes
        # the tree has never reached are not listed, keep their inf distance and are skipped.
        mark = _next_mark(done, n_nodes)
        d = dist[k]
        p = pedge[k]
        q = pnode[k]
        pi = pin[k]
        od = order[k]
        r = roots[k]
        # 1. Distances along the old tree under the new weights, parents first: in the order
        # the last pass settled nodes, each parent is settled already unless the relaxation
        # that followed gave the node a new one; then walk up to a settled ancestor.
        done[r] = mark
        d[r] = 0.0
        seq[0] = r
        cnt = 1
        for i in range(n_order[k]):
            v0 = od[i]
            if done[v0] == mark:
                continue
            par = q[v0]
            if par >= 0 and done[par] == mark:
                base = d[par]
                wj = w_in[pi[v0]]
                if base == _INF or wj == _INF:
                    work[k] += 1
                    p[v0] = -1
                    q[v0] = -1
                    pi[v0] = -1
                    d[v0] = _INF
                else:
                    d[v0] = base + wj
                done[v0] = mark
                seq[cnt] = v0
                cnt += 1
                continue
            top = 0
            v = v0
            while done[v] != mark:
                stack[top] = v
                top += 1
                v = q[v]
                if v < 0:
                    break
            base = _INF
            if v >= 0:
                base = d[v]
            while top > 0:
                top -= 1
                u = stack[top]
                j = pi[u]
                if j < 0 or base == _INF or w_in[j] == _INF:
                    base = _INF
                    if j >= 0:
                        work[k] += 1
                    p[u] = -1
                    q[u] = -1
                    pi[u] = -1
                else:
                    base = base + w_in[j]
                d[u] = base
                done[u] = mark
                seq[cnt] = u
                cnt += 1
        od[:cnt] = seq[:cnt]
        # 2. Seed every node with an edge that violates optimality, in node order, in the
        # blocks that hold listed nodes (the others are all unreached: inf).
        n = 0
        bk = blocks[k]
        for b in range(bk.size):
            if bk[b] == 0:
                continue
            for u in range(b << _BLOCK_SHIFT, min((b + 1) << _BLOCK_SHIFT, n_nodes)):
                du = d[u]
                if du == _INF:
                    continue
                for e in range(indptr[u], indptr[u + 1]):
                    if du + w[e] < d[indices[e]]:
                        n = _push(hk, hv, n, du, u)
                        break
        # 3. Relax from the seeds only; nodes reached for the first time join the list.
        changed, n_order[k] = _relax_from_heap(
            indptr, indices, in_pos, w, d, p, q, pi, hk, hv, n, od, cnt, done, mark, bk
        )
        work[k] += changed
    return work


def sssp_update(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    edge_src: NDArray[np.int32],
    w: NDArray[np.float64],
    roots: NDArray[np.int64],
    dist: NDArray[np.float64],
    pedge: NDArray[np.int64],
    state: TreeState | None = None,
) -> NDArray[np.int64]:
    """Update shortest-path trees, in place, to new weights on the same structure.

    Parameters
    ----------
    indptr, indices : CSR structure, as for :func:`sssp_full` (unchanged since the trees were
        computed).
    edge_src : ndarray of int32, shape (M,)
        Tail node of each CSR position.
    w : ndarray of float64, shape (M,)
        The new weights.
    roots : ndarray of int64, shape (K,)
    dist, pedge : ndarray, shape (K, N)
        Trees of the previous weights on entry; exact trees of ``w`` on return.
    state : TreeState, optional
        The state the trees were computed with (:func:`sssp_full` or the last update), which
        makes the re-summing pass read in sequence; None rebuilds one from ``pedge``.

    Returns
    -------
    ndarray of int64, shape (K,)
        Per root, how many tree edges changed (nodes cut off or given a new parent); 0 means
        the tree, and so every path in it, is the same as before.
    """
    if state is None:
        state = TreeState.from_trees(indptr, indices, edge_src, pedge)
    return _update_trees(
        indptr,
        indices,
        w,
        w[state.in_order],
        roots,
        dist,
        pedge,
        state.in_pos,
        state.pnode,
        state.pin,
        state.order,
        state.n_order,
        state.blocks,
        state.heap_keys,
        state.heap_nodes,
        state.marks,
        state.stack,
        state.settled,
    )


@nb.njit(cache=True, nogil=True, parallel=True)
def walk_paths(
    pnode: NDArray[np.int32],
    dist: NDArray[np.float64],
    row: NDArray[np.int64],
    target: NDArray[np.int64],
    n_sats: int,
    hops: NDArray[np.int16],
    near_target: NDArray[np.int32],
    near_root: NDArray[np.int32],
    path_hash: NDArray[np.uint64],
    todo: NDArray[np.bool_],
) -> None:
    """Walk each pair's path from its target back to its tree's root.

    Parameters
    ----------
    pnode, dist : ndarray, shape (K, N)
        Parent node of each node (-1 at the root and where unreachable) and distances: the
        trees of :func:`sssp_full` / :func:`sssp_update` (:attr:`TreeState.pnode`). A parent
        node is one dependent read per hop where a tree edge is two (edge, then its tail).
    row, target : ndarray of int64, shape (P,)
        Tree (root) and target node of each pair.
    n_sats : int
        Nodes below this index are satellites.
    hops, near_target, near_root, path_hash : ndarray, shape (P,)
        Outputs: links on the path; the satellites nearest the target and the root (-1 if
        none); a hash of the node sequence (0 if unreachable, hops -1).
    todo : ndarray of bool, shape (P,)
        Pairs to walk; the outputs of the others are left as they are (pairs whose tree did
        not change keep their path).
    """
    mul = np.uint64(1_000_003)
    for i in nb.prange(target.size):
        if not todo[i]:
            continue
        k = row[i]
        v = target[i]
        if dist[k, v] == _INF:
            hops[i] = -1
            near_target[i] = -1
            near_root[i] = -1
            path_hash[i] = np.uint64(0)
            continue
        h = np.uint64(v)
        count = 0
        first = -1
        last = -1
        v = pnode[k, v]
        while v >= 0:
            count += 1
            h = h * mul + np.uint64(v)
            if v < n_sats:
                if first < 0:
                    first = v
                last = v
            v = pnode[k, v]
        hops[i] = count
        near_target[i] = first
        near_root[i] = last
        path_hash[i] = h
