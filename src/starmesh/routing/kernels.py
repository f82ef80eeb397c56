"""Compiled single-source shortest paths for many roots at once, and their step-to-step update.

scipy's ``csgraph.dijkstra`` is the reference (and the test oracle), but it cannot reuse work
between time steps, and it holds the GIL. Network state at consecutive steps differs by a few
metres per link, so almost every shortest-path tree of one step is still optimal, or nearly, at
the next. These kernels (numba, compiled once and cached) therefore

* run Dijkstra from every root in parallel threads (``prange``; the GIL is released), and
* update a step's trees to the next step exactly: recompute each node's distance along its old
  tree with the new weights (removed edges cut their subtrees off), seed a heap with every node
  that has an edge violating the shortest-path condition ``d[u] + w(u, v) >= d[v]``, and run the
  label-correcting relaxation from those seeds only. Labels are always lengths of real paths and
  end with no violating edge anywhere, so they are the exact shortest distances; a node's parent
  changes only when a strictly shorter path appears, so exact ties keep the previous route.

No such update exists in a maintained library (networkx and scipy recompute from scratch), which
is why this module is written here. Graphs are CSR arrays whose structure is fixed for a chunk of
steps; absent edges carry an infinite weight. Distances are float64 sums taken in the same order
as Dijkstra's, so both give identical values.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

_INF = np.inf


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
    w: NDArray[np.float64],
    dist: NDArray[np.float64],
    pedge: NDArray[np.int64],
    hk: NDArray[np.float64],
    hv: NDArray[np.int64],
    n: int,
) -> int:
    # Returns how many times a node's parent edge was replaced.
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
                n = _push(hk, hv, n, nd, v)
    return changes


@nb.njit(cache=True, nogil=True, parallel=True)
def sssp_full(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    w: NDArray[np.float64],
    roots: NDArray[np.int64],
    dist: NDArray[np.float64],
    pedge: NDArray[np.int64],
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
    """
    n_nodes = indptr.size - 1
    m = indices.size
    for k in nb.prange(roots.size):
        d = dist[k]
        p = pedge[k]
        d[:] = _INF
        p[:] = -1
        hk = np.empty(m + n_nodes + 1)
        hv = np.empty(m + n_nodes + 1, np.int64)
        r = roots[k]
        d[r] = 0.0
        n = _push(hk, hv, 0, 0.0, r)
        _relax_from_heap(indptr, indices, w, d, p, hk, hv, n)


@nb.njit(cache=True, nogil=True, parallel=True)
def sssp_update(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    edge_src: NDArray[np.int32],
    w: NDArray[np.float64],
    roots: NDArray[np.int64],
    dist: NDArray[np.float64],
    pedge: NDArray[np.int64],
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

    Returns
    -------
    ndarray of int64, shape (K,)
        Per root, how many tree edges changed (nodes cut off or given a new parent); 0 means
        the tree, and so every path in it, is the same as before.
    """
    n_nodes = indptr.size - 1
    m = indices.size
    work = np.zeros(roots.size, np.int64)
    for k in nb.prange(roots.size):
        d = dist[k]
        p = pedge[k]
        r = roots[k]
        # 1. Distances along the old tree under the new weights (memoised walk to the root).
        done = np.zeros(n_nodes, np.bool_)
        stack = np.empty(n_nodes, np.int64)
        done[r] = True
        d[r] = 0.0
        for v0 in range(n_nodes):
            if done[v0]:
                continue
            top = 0
            v = v0
            while not done[v]:
                stack[top] = v
                top += 1
                e = p[v]
                if e < 0:
                    break
                v = edge_src[e]
            base = _INF
            if done[v]:
                base = d[v]
            while top > 0:
                top -= 1
                u = stack[top]
                e = p[u]
                if e < 0 or base == _INF or w[e] == _INF:
                    base = _INF
                    if e >= 0:
                        work[k] += 1
                    p[u] = -1
                else:
                    base = base + w[e]
                d[u] = base
                done[u] = True
        # 2. Seed every node with an edge that violates optimality.
        hk = np.empty(m + n_nodes + 1)
        hv = np.empty(m + n_nodes + 1, np.int64)
        n = 0
        for u in range(n_nodes):
            du = d[u]
            if du == _INF:
                continue
            for e in range(indptr[u], indptr[u + 1]):
                if du + w[e] < d[indices[e]]:
                    n = _push(hk, hv, n, du, u)
                    break
        # 3. Relax from the seeds only.
        work[k] += _relax_from_heap(indptr, indices, w, d, p, hk, hv, n)
    return work


@nb.njit(cache=True, nogil=True, parallel=True)
def walk_paths(
    edge_src: NDArray[np.int32],
    pedge: NDArray[np.int64],
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
    edge_src : ndarray of int32, shape (M,)
    pedge, dist : ndarray, shape (K, N)
        Trees from :func:`sssp_full` / :func:`sssp_update`.
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
        e = pedge[k, v]
        while e >= 0:
            v = edge_src[e]
            count += 1
            h = h * mul + np.uint64(v)
            if v < n_sats:
                if first < 0:
                    first = v
                last = v
            e = pedge[k, v]
        hops[i] = count
        near_target[i] = first
        near_root[i] = last
        path_hash[i] = h
