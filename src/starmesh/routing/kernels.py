"""Compiled single-source shortest paths for many roots at once, and their step-to-step update.

scipy's ``csgraph.dijkstra`` is the reference (and the test oracle), but it cannot reuse work
between time steps, and it holds the GIL. Network state at consecutive steps differs by a few
metres per link, so almost every shortest-path tree of one step is still optimal, or nearly, at
the next. These kernels (numba, compiled once and cached) therefore

* run Dijkstra from every root in parallel threads (``prange``; the GIL is released), and
* update a step's trees to the next step exactly: recompute each node's distance along its old
  tree with the new weights (removed edges cut their subtrees off), seed a heap with every node
  that has an edge violating the shortest-path condition ``d[u] + w(u, v) >= d[v]``, and run the
  label-correcting relaxation from those seeds only. The re-summing walks a list of each
  tree's nodes in the order they were first settled (parents first, but for nodes a later
  relaxation gave a parent listed after them: it walks up to those), reading the parent's
  place and the tree edge of each place in sequence and keeping the distances in list order
  (:class:`TreeState`). Labels are always lengths of real paths and
  end with no violating edge anywhere, so they are the exact shortest distances; a node's parent
  changes only when a strictly shorter path appears, so exact ties keep the previous route.

No such update exists in a maintained library (networkx and scipy recompute from scratch), which
is why this module is written here. Graphs are CSR arrays whose structure is fixed for a chunk of
steps; absent edges carry an infinite weight. Distances are float64 sums taken in the same order
as Dijkstra's, so both give identical values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    pos: NDArray[np.int32],
    ppos: NDArray[np.int32],
    wpos: NDArray[np.int32],
    blocks: NDArray[np.uint8],
) -> tuple[int, int]:
    # Returns how many times a node's parent edge was replaced, and the new length of the
    # tree's node list ``od``. A node settled for the first time is appended to the list (the
    # root and the seeds are listed already), so that the list holds every node the tree
    # reaches with parents first, and its block of 2**_BLOCK_SHIFT nodes is flagged in
    # ``blocks``. A listed node given a new parent keeps its place: its parent's place and
    # tree edge are updated there (the parent may be listed after it; the next update walks
    # up to it).
    changes = 0
    while n > 0:
        key = hk[0]
        u = hv[0]
        n = _pop(hk, hv, n)
        if key > dist[u]:
            continue  # stale entry
        i = pos[u]
        if i < 0 or i >= cnt or od[i] != u:
            od[cnt] = u
            pos[u] = cnt
            par = pnode[u]
            ppos[cnt] = pos[par] if par >= 0 else -1
            wpos[cnt] = pin[u]
            cnt += 1
            blocks[u >> _BLOCK_SHIFT] = 1
        for e in range(indptr[u], indptr[u + 1]):
            nd = key + w[e]
            v = indices[e]
            if nd < dist[v]:
                dist[v] = nd
                if pedge[v] != e:
                    changes += 1
                    pedge[v] = e
                    pnode[v] = u
                    j = in_pos[e]
                    pin[v] = j
                    i = pos[v]
                    if i >= 0 and i < cnt and od[i] == v:
                        ppos[i] = pos[u]
                        wpos[i] = j
                n = _push(hk, hv, n, nd, v)
    return changes, cnt


@nb.njit(cache=True, nogil=True, inline="always")
def _next_mark(marks: NDArray[np.int32], n_nodes: int) -> int:
    # A per-thread pass counter in the marks' last slot: an entry (a place in a tree's list) is
    # marked in this pass when it equals the counter, so the marks never need clearing (until
    # the counter would overflow).
    if marks[n_nodes] >= 2_000_000_000:
        marks[:] = 0
    marks[n_nodes] += 1
    return marks[n_nodes]


@dataclass
class TreeState:
    """What the compiled kernels keep between steps besides distances and tree edges.

    Per tree: a list of the nodes it reaches, in the order they were first settled (so a
    parent comes before its children, but for a node that a later relaxation gave a parent
    listed after it: the re-sum walks up to that parent), and, at each place of that list, the
    place of the node's parent and the position of its tree edge among the graph's edges
    sorted by head (``in_order``). Re-summing a tree walks that list front to back: it reads
    the list's arrays in sequence and keeps the distances in list order, in a small array that
    stays in cache, instead of chasing parents through arrays of every node (a tree's arrays
    do not stay in cache from one step to the next: a W4 step updates 118 trees of 11,232
    nodes). The list holds only the nodes the tree has reached since it was computed from
    scratch: the trees of a real constellation each span one shell's laser mesh, about a
    third of the nodes. Per node, the parent node and tree edge are kept as well, for the
    path walks. Plus per-thread scratch (heaps, marks, stacks), allocated once instead of at
    every tree and step.

    Attributes
    ----------
    in_order : ndarray of int64, shape (M,)
        CSR positions sorted by (head, tail).
    in_pos : ndarray of int32, shape (M,)
        Inverse of ``in_order``.
    pnode, pin : ndarray of int32, shape (K, N)
        Per tree and node: the parent node and ``in_pos`` of the tree edge (-1: none).
    order, ppos, wpos : ndarray of int32, shape (K, N)
        ``order[k, :n_order[k]]``: the nodes tree ``k`` lists; at each place ``i`` of the list,
        ``ppos[k, i]`` is the parent's place (-1: none) and ``wpos[k, i]`` the tree edge's
        ``in_pos`` (beyond ``n_order[k]``: scratch).
    pos : ndarray of int32, shape (K, N)
        Place of each listed node in its tree's list (other entries are stale).
    n_order : ndarray of int64, shape (K,)
        Length of each tree's list.
    blocks : ndarray of uint8, shape (K, ceil(N / 64))
        1 where a block of 64 consecutive nodes holds a node the tree lists. The search for
        violating edges scans only those blocks: a tree spans one shell, whose satellites the
        routing graph numbers consecutively, so it skips the other shells' nodes whole.
    heap_keys, heap_nodes : ndarray, shape (H, M + N + 1)
        Per thread (``H`` = numba's thread count): the relaxation's binary heap.
    marks : ndarray of int32, shape (H, N + 1)
        Per thread: pass marks of the places of the list being re-summed, and the pass counter.
    stack : ndarray of int32, shape (H, N)
        Per thread: the places of a walk up to a re-summed ancestor.
    list_dist : ndarray of float64, shape (H, N)
        Per thread: the distances of the tree being updated, in list order [s].
    """

    in_order: NDArray[np.int64]
    in_pos: NDArray[np.int32]
    pnode: NDArray[np.int32]
    pin: NDArray[np.int32]
    order: NDArray[np.int32]
    ppos: NDArray[np.int32]
    wpos: NDArray[np.int32]
    pos: NDArray[np.int32]
    n_order: NDArray[np.int64]
    blocks: NDArray[np.uint8]
    heap_keys: NDArray[np.float64]
    heap_nodes: NDArray[np.int64]
    marks: NDArray[np.int32]
    stack: NDArray[np.int32]
    list_dist: NDArray[np.float64]

    @classmethod
    def for_full(
        cls,
        indptr: NDArray[np.int64],
        indices: NDArray[np.int32],
        edge_src: NDArray[np.int32],
        n_roots: int,
        reuse: TreeState | None = None,
    ) -> TreeState:
        """State to give :func:`sssp_full` first, which sets every per-tree entry it reads:
        the per-tree arrays are left uninitialised, or taken from ``reuse`` (the state of an
        earlier graph with as many roots and nodes, no longer needed), which spares a chunk
        of a run allocating and filling some 40 MB for W4's 118 trees."""
        n_nodes, m = indptr.size - 1, indices.size
        in_order = np.lexsort((edge_src, indices)).astype(np.int64)
        in_pos = np.empty(m, np.int32)
        in_pos[in_order] = np.arange(m, dtype=np.int32)
        n_thr = int(nb.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
        shape = (n_roots, n_nodes)
        if reuse is not None and (reuse.pnode.shape != shape or reuse.marks.shape[0] != n_thr):
            reuse = None

        heap = m + n_nodes + 1
        heap_fits = reuse is not None and reuse.heap_keys.shape[1] >= heap

        def array(name: str, size: tuple[int, int], dtype: type, fits: bool = True) -> NDArray[Any]:
            # The reused state's array, or a new one (only the marks must start at zero).
            if reuse is not None and fits:
                return getattr(reuse, name)
            return (np.zeros if name == "marks" else np.empty)(size, dtype)

        names = ("pnode", "pin", "order", "ppos", "wpos", "pos")
        per_tree = {n: array(n, shape, np.int32) for n in names}
        n_blocks = ((n_nodes - 1) >> _BLOCK_SHIFT) + 1
        return cls(
            in_order=in_order,
            in_pos=in_pos,
            **per_tree,
            n_order=np.zeros(n_roots, np.int64),
            blocks=array("blocks", (n_roots, n_blocks), np.uint8),
            heap_keys=array("heap_keys", (n_thr, heap), np.float64, heap_fits),
            heap_nodes=array("heap_nodes", (n_thr, heap), np.int64, heap_fits),
            # The marks' pass counter carries on: entries never exceed it.
            marks=array("marks", (n_thr, n_nodes + 1), np.int32),
            stack=array("stack", (n_thr, n_nodes), np.int32),
            list_dist=array("list_dist", (n_thr, n_nodes), np.float64),
        )

    @classmethod
    def for_graph(
        cls,
        indptr: NDArray[np.int64],
        indices: NDArray[np.int32],
        edge_src: NDArray[np.int32],
        n_roots: int,
    ) -> TreeState:
        """State for ``n_roots`` trees over a CSR graph (``edge_src``: tail of each edge),
        listing every node in node order, none with a parent: give it to :func:`sssp_full`
        first (:func:`sssp_update` refuses lists that do not start at their root)."""
        st = cls.for_full(indptr, indices, edge_src, n_roots)
        n_nodes = indptr.size - 1
        for a in (st.pnode, st.pin, st.ppos, st.wpos):
            a.fill(-1)
        st.order[:] = np.arange(n_nodes, dtype=np.int32)
        st.pos[:] = st.order
        st.n_order.fill(n_nodes)
        st.blocks.fill(1)
        return st

    @classmethod
    def from_trees(
        cls,
        indptr: NDArray[np.int64],
        indices: NDArray[np.int32],
        edge_src: NDArray[np.int32],
        roots: NDArray[np.int64],
        pedge: NDArray[np.int64],
    ) -> TreeState:
        """State of existing trees (``pedge``, shape (K, N)), for a caller that kept none: each
        list is the root, then every other node in node order (the updates walk up to parents
        listed after their children)."""
        st = cls.for_graph(indptr, indices, edge_src, pedge.shape[0])
        has = pedge >= 0
        st.pnode[has] = edge_src[pedge[has]]
        st.pin[has] = st.in_pos[pedge[has]]
        n_nodes = indptr.size - 1
        for k, r in enumerate(roots):
            od = np.concatenate([[r], np.delete(np.arange(n_nodes), r)]).astype(np.int32)
            st.order[k] = od
            st.pos[k, od] = np.arange(n_nodes, dtype=np.int32)
            par = st.pnode[k, od]
            st.ppos[k] = np.where(par >= 0, st.pos[k, np.maximum(par, 0)], -1)
            st.wpos[k] = st.pin[k, od]
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
    ppos: NDArray[np.int32],
    wpos: NDArray[np.int32],
    pos: NDArray[np.int32],
    n_order: NDArray[np.int64],
    blocks: NDArray[np.uint8],
    heap_keys: NDArray[np.float64],
    heap_nodes: NDArray[np.int64],
) -> None:
    for k in nb.prange(roots.size):
        tid = nb.get_thread_id()
        hk = heap_keys[tid]
        hv = heap_nodes[tid]
        d = dist[k]
        d[:] = _INF
        pedge[k, :] = -1
        pnode[k, :] = -1
        pin[k, :] = -1
        r = roots[k]
        d[r] = 0.0
        order[k, 0] = r
        ppos[k, 0] = -1
        wpos[k, 0] = -1
        pos[k, r] = 0
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
            pos[k],
            ppos[k],
            wpos[k],
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
        state.ppos,
        state.wpos,
        state.pos,
        state.n_order,
        state.blocks,
        state.heap_keys,
        state.heap_nodes,
    )


@nb.njit(cache=True, nogil=True, inline="always")
def _cut(
    y: int,
    od: NDArray[np.int32],
    pp: NDArray[np.int32],
    wp: NDArray[np.int32],
    p: NDArray[np.int64],
    q: NDArray[np.int32],
    pi: NDArray[np.int32],
) -> None:
    # The node at place y loses its parent (its tree edge is gone, or its parent's path).
    v = od[y]
    pp[y] = -1
    wp[y] = -1
    p[v] = -1
    q[v] = -1
    pi[v] = -1


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
    ppos: NDArray[np.int32],
    wpos: NDArray[np.int32],
    pos: NDArray[np.int32],
    n_order: NDArray[np.int64],
    blocks: NDArray[np.uint8],
    heap_keys: NDArray[np.float64],
    heap_nodes: NDArray[np.int64],
    marks: NDArray[np.int32],
    stacks: NDArray[np.int32],
    list_dist: NDArray[np.float64],
) -> NDArray[np.int64]:
    n_nodes = indptr.size - 1
    work = np.zeros(roots.size, np.int64)
    for k in nb.prange(roots.size):
        tid = nb.get_thread_id()
        hk = heap_keys[tid]
        hv = heap_nodes[tid]
        done = marks[tid]
        stack = stacks[tid]
        dl = list_dist[tid]
        d = dist[k]
        p = pedge[k]
        q = pnode[k]
        pi = pin[k]
        od = order[k]
        pp = ppos[k]
        wp = wpos[k]
        ps = pos[k]
        n_list = n_order[k]
        # Marks are per place in the list here: a place is re-summed in this pass when its
        # mark is this pass's (_next_mark).
        mark = _next_mark(done, n_nodes)
        # 1. Distances along the old tree under the new weights, in list order (``dl``): a
        # parent's place comes first unless a relaxation gave the node a parent listed after
        # it; then walk up to a re-summed ancestor. The list keeps its order (such nodes are
        # few: about 5 per tree after 12 steps of W4), and the distances go to their nodes at
        # the end.
        done[0] = mark
        dl[0] = 0.0
        for i in range(1, n_list):
            if done[i] == mark:
                continue
            par = pp[i]
            # Every place before i is re-summed already.
            if par >= 0 and (par < i or done[par] == mark):
                base = dl[par]
                wj = w_in[wp[i]]
                if base == _INF or wj == _INF:
                    work[k] += 1
                    _cut(i, od, pp, wp, p, q, pi)
                    dl[i] = _INF
                else:
                    dl[i] = base + wj
                done[i] = mark
                continue
            top = 0
            x = i
            while done[x] != mark:
                stack[top] = x
                top += 1
                x = pp[x]
                if x < 0:
                    break
            base = _INF
            if x >= 0:
                base = dl[x]
            while top > 0:
                top -= 1
                y = stack[top]
                j = wp[y]
                if j < 0 or base == _INF or w_in[j] == _INF:
                    base = _INF
                    if j >= 0:
                        work[k] += 1
                        _cut(y, od, pp, wp, p, q, pi)
                else:
                    base = base + w_in[j]
                dl[y] = base
                done[y] = mark
        for i in range(n_list):
            d[od[i]] = dl[i]
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
        # 3. Relax from the seeds only; nodes settled for the first time join the list.
        changed, n_order[k] = _relax_from_heap(
            indptr, indices, in_pos, w, d, p, q, pi, hk, hv, n, od, n_list, ps, pp, wp, bk
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
        state = TreeState.from_trees(indptr, indices, edge_src, roots, pedge)
    k = np.arange(roots.size)
    if (state.n_order[k] == 0).any() or (state.order[k, 0] != roots).any():
        raise ValueError(
            "sssp_update: the state does not hold these roots' trees (each tree's list starts "
            "at its root): compute them with sssp_full and this state first, or give state=None"
        )
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
        state.ppos,
        state.wpos,
        state.pos,
        state.n_order,
        state.blocks,
        state.heap_keys,
        state.heap_nodes,
        state.marks,
        state.stack,
        state.list_dist,
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
