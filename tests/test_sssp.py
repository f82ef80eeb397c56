"""The compiled shortest-path kernels against scipy's Dijkstra, step after step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from starmesh.routing.kernels import TreeState, sssp_full, sssp_update, walk_paths


def _random_structure(rng: np.random.Generator, n: int, m: int):
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    keep = src != dst
    pairs = np.unique(np.stack([src[keep], dst[keep]], axis=1), axis=0)
    # Symmetric, as starmesh's graphs are.
    pairs = np.unique(np.concatenate([pairs, pairs[:, ::-1]]), axis=0)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs = pairs[order]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(pairs[:, 0], minlength=n), out=indptr[1:])
    return indptr, pairs[:, 1].astype(np.int32), pairs[:, 0].astype(np.int32)


def _oracle(indptr, indices, w, roots):
    n = indptr.size - 1
    finite = np.isfinite(w)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    g = csr_array((w[finite], (rows[finite], indices[finite])), shape=(n, n))
    return dijkstra(g, directed=True, indices=roots)


def _csr(pairs, n_nodes):
    """CSR arrays ``(indptr, indices, edge_src)`` of a small graph given as (tail, head) pairs
    (sorted here, so each row's heads ascend)."""
    pairs = sorted(pairs)
    src = np.array([p[0] for p in pairs], np.int32)
    indices = np.array([p[1] for p in pairs], np.int32)
    indptr = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
    return indptr, indices, src


def _pnode(edge_src, pedge):
    """Parent node of each node from the tree edges (-1 where none)."""
    return np.where(pedge >= 0, edge_src[np.maximum(pedge, 0)], -1).astype(np.int32)


def _check_tree(indptr, indices, edge_src, w, roots, dist, pedge):
    # Every tree edge is a real edge into its node, and distances add up along it exactly.
    for k, r in enumerate(roots):
        assert dist[k, r] == 0.0 and pedge[k, r] == -1
        reach = np.flatnonzero(np.isfinite(dist[k]))
        for v in reach:
            if v == r:
                continue
            e = pedge[k, v]
            assert e >= 0 and indices[e] == v
            assert dist[k, v] == dist[k, edge_src[e]] + w[e]


def _check_lists(state, edge_src, roots, dist, pedge, parents_first):
    """The lists the next update re-sums along: each tree's list starts at its root and holds
    distinct nodes, every node the tree reaches among them (nodes never reached are skipped by
    the next update, so a missing one would be lost); at each place, the parent's place and the
    tree edge are the node's; the blocks the scan visits hold every listed node. Parents
    come before their children (``parents_first``) after a computation from scratch."""
    n = dist.shape[1]
    for k, r in enumerate(roots):
        listed = state.order[k, : state.n_order[k]]
        assert listed[0] == r
        assert np.unique(listed).size == listed.size
        assert np.isin(np.flatnonzero(np.isfinite(dist[k])), listed).all()
        np.testing.assert_array_equal(state.pos[k, listed], np.arange(listed.size))
        assert state.blocks[k, listed >> 6].all()
        e = pedge[k, listed]
        has = e >= 0
        par = edge_src[np.maximum(e, 0)]
        np.testing.assert_array_equal(state.pnode[k, listed[has]], par[has])
        np.testing.assert_array_equal(
            state.ppos[k, : listed.size], np.where(has, state.pos[k, par], -1)
        )
        np.testing.assert_array_equal(
            state.wpos[k, : listed.size], np.where(has, state.in_pos[np.maximum(e, 0)], -1)
        )
        if parents_first:
            assert (state.ppos[k, : listed.size][has] < np.flatnonzero(has)).all()
        assert listed.size <= n


@pytest.mark.parametrize("state_kind", ["kept", "reused", "none"])
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(5, 300))
def test_full_and_update_equal_dijkstra_over_many_steps(state_kind, seed, n):
    # With the state kept (as runs do), each update re-sums its trees along the lists the
    # last one left; without, it starts from node order and walks up to the root. A reused
    # state holds the arrays of trees over another graph (as the next chunk of a run gets
    # them). Graphs of more than 64 nodes span several of the blocks the update scans.
    rng = np.random.default_rng(seed)
    indptr, indices, edge_src = _random_structure(rng, n, 3 * n)
    m = indices.size
    roots = np.unique(rng.integers(0, n, min(n, 6))).astype(np.int64)
    w = rng.uniform(0.5, 2.0, m)
    dist = np.empty((roots.size, n))
    pedge = np.empty((roots.size, n), np.int64)
    state = None
    if state_kind == "kept":
        state = TreeState.for_graph(indptr, indices, edge_src, roots.size)
    elif state_kind == "reused":
        other = _random_structure(rng, n, 2 * n)
        old = TreeState.for_full(*other, roots.size)
        sssp_full(other[0], other[1], rng.uniform(0.5, 2.0, other[1].size), roots, dist, pedge, old)
        sssp_update(
            other[0],
            other[1],
            other[2],
            rng.uniform(0.5, 2.0, other[1].size),
            roots,
            dist,
            pedge,
            old,
        )
        state = TreeState.for_full(indptr, indices, edge_src, roots.size, reuse=old)
        assert state.pnode is old.pnode
    sssp_full(indptr, indices, w, roots, dist, pedge, state)
    np.testing.assert_array_equal(dist, _oracle(indptr, indices, w, roots))
    _check_tree(indptr, indices, edge_src, w, roots, dist, pedge)
    if state is not None:
        _check_lists(state, edge_src, roots, dist, pedge, parents_first=True)
    for step in range(8):
        if step == 3:
            # No change at all: every tree must report zero changes.
            assert (sssp_update(indptr, indices, edge_src, w, roots, dist, pedge, state) == 0).all()
        # Small drifts (as between time steps), some big jumps, edges vanishing and returning.
        w = w * rng.uniform(0.97, 1.03, m)
        jump = rng.random(m) < 0.05
        w[jump] = rng.uniform(0.5, 2.0, jump.sum())
        w[rng.random(m) < 0.08] = np.inf
        back = ~np.isfinite(w) & (rng.random(m) < 0.5)
        w[back] = rng.uniform(0.5, 2.0, back.sum())
        before = pedge.copy()
        changes = sssp_update(indptr, indices, edge_src, w, roots, dist, pedge, state)
        np.testing.assert_array_equal(dist, _oracle(indptr, indices, w, roots))
        # A tree reported unchanged is edge for edge the tree it was (callers skip its paths).
        same = changes == 0
        np.testing.assert_array_equal(pedge[same], before[same])
        assert (changes[(pedge != before).any(axis=1)] > 0).all()
        _check_tree(indptr, indices, edge_src, w, roots, dist, pedge)
        if state is not None:
            _check_lists(state, edge_src, roots, dist, pedge, parents_first=False)


def test_update_keeps_the_route_on_exact_ties():
    # Square 0-1-3 and 0-2-3 with equal lengths: the update must not switch routes.
    edges = [(0, 1), (0, 2), (1, 3), (2, 3)]
    pairs = sorted(edges + [(b, a) for a, b in edges])
    indptr, indices, src = _csr(pairs, 4)
    w = np.ones(len(pairs))
    roots = np.array([0])
    dist = np.empty((1, 4))
    pedge = np.empty((1, 4), np.int64)
    sssp_full(indptr, indices, w, roots, dist, pedge)
    before = src[pedge[0, 3]]
    sssp_update(indptr, indices, src.astype(np.int32), w.copy(), roots, dist, pedge)
    assert src[pedge[0, 3]] == before and dist[0, 3] == 2.0


def test_walk_paths_counts_hops_and_satellites():
    # Path 4 -> 0 -> 1 -> 5 where nodes 0..3 are satellites and 4, 5 are sites.
    pairs = sorted([(4, 0), (0, 4), (0, 1), (1, 0), (1, 5), (5, 1)])
    indptr, indices, src = _csr(pairs, 6)
    w = np.ones(len(pairs))
    roots = np.array([4])
    dist = np.empty((1, 6))
    pedge = np.empty((1, 6), np.int64)
    sssp_full(indptr, indices, w, roots, dist, pedge)
    hops = np.empty(2, np.int16)
    near_t = np.empty(2, np.int32)
    near_r = np.empty(2, np.int32)
    h = np.empty(2, np.uint64)
    todo = np.ones(2, bool)
    walk_paths(
        _pnode(src, pedge),
        dist,
        np.array([0, 0]),
        np.array([5, 3]),
        4,
        hops,
        near_t,
        near_r,
        h,
        todo,
    )
    assert hops.tolist() == [3, -1]
    assert near_t.tolist() == [1, -1] and near_r.tolist() == [0, -1]
    assert h[0] != 0 and h[1] == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 1e3), min_size=1, max_size=200))
def test_heap_pops_in_sorted_order(keys):
    # The binary heap under Dijkstra: a misordered heap still gives correct distances (the
    # stale-entry check turns it into label correcting) but not Dijkstra's cost, so it is
    # checked directly against Python's sorted().
    from starmesh.routing.kernels import _pop, _push

    hk = np.empty(len(keys) + 1)
    hv = np.empty(len(keys) + 1, np.int64)
    n = 0
    for i, key in enumerate(keys):
        n = _push(hk, hv, n, key, i)
    out = []
    while n > 0:
        out.append((hk[0], hv[0]))
        n = _pop(hk, hv, n)
    assert [k for k, _ in out] == sorted(keys)
    assert sorted(v for _, v in out) == list(range(len(keys)))
    assert all(keys[v] == k for k, v in out)


def test_update_cuts_off_a_node_whose_tree_edge_went_down():
    # Path 0-1-2: when link 1-2 goes down, node 2 is unreachable, its tree edge is removed
    # and the update reports the change (work > 0).
    pairs = [(0, 1), (1, 0), (1, 2), (2, 1)]
    indptr, indices, src = _csr(pairs, 3)
    w = np.ones(len(pairs))
    roots = np.array([0])
    dist = np.empty((1, 3))
    pedge = np.empty((1, 3), np.int64)
    sssp_full(indptr, indices, w, roots, dist, pedge)
    assert pedge[0, 2] >= 0
    w[[2, 3]] = np.inf
    work = sssp_update(indptr, indices, src.astype(np.int32), w, roots, dist, pedge)
    assert dist[0].tolist() == [0.0, 1.0, np.inf]
    assert pedge[0, 2] == -1 and work[0] == 1
    # Unchanged weights: nothing changes and the update says so.
    assert sssp_update(indptr, indices, src.astype(np.int32), w, roots, dist, pedge)[0] == 0


def test_walk_paths_hash_sentinels_and_skipped_pairs():
    # Nodes 0..3 are satellites, 4..6 sites: path 4 -> 0 -> 1 -> 5, and 4 -> 6 on the ground.
    pairs = sorted([(4, 0), (0, 4), (0, 1), (1, 0), (1, 5), (5, 1), (4, 6), (6, 4)])
    indptr, indices, src = _csr(pairs, 7)
    w = np.ones(len(pairs))
    roots = np.array([4])
    dist = np.empty((1, 7))
    pedge = np.empty((1, 7), np.int64)
    sssp_full(indptr, indices, w, roots, dist, pedge)
    n = 4
    hops = np.full(n, 7, np.int16)
    near_t = np.full(n, 7, np.int32)
    near_r = np.full(n, 7, np.int32)
    h = np.full(n, 7, np.uint64)
    todo = np.array([False, True, True, True])  # the first pair is left as it is
    target = np.array([5, 3, 5, 6])  # 3 is unreachable
    walk_paths(
        _pnode(src, pedge), dist, np.zeros(n, np.int64), target, 4, hops, near_t, near_r, h, todo
    )
    assert hops.tolist() == [7, -1, 3, 1]
    assert near_t.tolist() == [7, -1, 1, -1] and near_r.tolist() == [7, -1, 0, -1]

    # The hash of the node sequence from the target back to the root, h = h * 1000003 + v
    # modulo 2^64, written out: 5, 1, 0, 4 and 6, 4.
    def seq_hash(nodes):
        x = nodes[0]
        for v in nodes[1:]:
            x = (x * 1_000_003 + v) % 2**64
        return x

    assert h.tolist() == [7, 0, seq_hash([5, 1, 0, 4]), seq_hash([6, 4])]


def test_walk_paths_names_satellite_zero_nearest_the_target():
    # Path 4 -> 1 -> 0 -> 5: satellite 0 is the one nearest the target, satellite 1 the root's.
    pairs = sorted([(4, 1), (1, 4), (1, 0), (0, 1), (0, 5), (5, 0)])
    indptr, indices, src = _csr(pairs, 6)
    dist = np.empty((1, 6))
    pedge = np.empty((1, 6), np.int64)
    sssp_full(indptr, indices, np.ones(len(pairs)), np.array([4]), dist, pedge)
    out = [np.empty(1, np.int16), np.empty(1, np.int32), np.empty(1, np.int32)]
    h = np.empty(1, np.uint64)
    walk_paths(_pnode(src, pedge), dist, np.array([0]), np.array([5]), 4, *out, h, np.ones(1, bool))
    assert out[0][0] == 3 and out[1][0] == 0 and out[2][0] == 1


def test_update_counts_a_cut_off_tree_edge_at_the_first_head_position():
    # Root 2, path 2 -> 1 -> 0; the edge 1 -> 0 is the first edge by head (into node 0). When
    # it goes down, node 0 is cut off and the update must count it.
    pairs = [(0, 1), (1, 0), (1, 2), (2, 1)]
    indptr, indices, src = _csr(pairs, 3)
    w = np.ones(len(pairs))
    dist = np.empty((1, 3))
    pedge = np.empty((1, 3), np.int64)
    sssp_full(indptr, indices, w, np.array([2]), dist, pedge)
    w[[0, 1]] = np.inf
    work = sssp_update(indptr, indices, src.astype(np.int32), w, np.array([2]), dist, pedge)
    assert dist[0].tolist() == [np.inf, 1.0, 0.0] and pedge[0, 0] == -1 and work[0] == 1


def test_update_refuses_a_state_without_these_roots_trees():
    # A fresh state lists nodes in node order: its trees are not those of root 2.
    pairs = [(0, 1), (1, 0), (1, 2), (2, 1)]
    indptr, indices, src = _csr(pairs, 3)
    roots = np.array([2])
    dist = np.zeros((1, 3))
    pedge = np.full((1, 3), -1, np.int64)
    state = TreeState.for_graph(indptr, indices, src, 1)
    with pytest.raises(ValueError, match="sssp_full"):
        sssp_update(indptr, indices, src, np.ones(4), roots, dist, pedge, state)
    sssp_full(indptr, indices, np.ones(4), roots, dist, pedge, state)
    sssp_update(indptr, indices, src, np.ones(4), roots, dist, pedge, state)
    np.testing.assert_array_equal(dist, [[2.0, 1.0, 0.0]])


def test_each_thread_reuses_its_own_tree_arrays():
    # engine.route_mode takes a chunk's tree arrays from the last chunk its thread routed: two
    # threads (Dask's) must never share them, and a new shape must get new ones.
    import threading
    from types import SimpleNamespace

    from starmesh.engine import _tree_arrays, release_tree_arrays

    indptr, indices, src = _csr([(0, 1), (1, 0), (1, 2), (2, 1)], 3)
    graph = SimpleNamespace(indptr=indptr, indices=indices, edge_src=src)
    got: dict[str, tuple] = {}

    def route(name: str) -> None:
        first = _tree_arrays(graph, 2)
        again = _tree_arrays(graph, 2)
        other = _tree_arrays(graph, 3)
        got[name] = (first, again, other)
        release_tree_arrays()

    threads = [threading.Thread(target=route, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a1, a2, a3), (b1, _, _) = got["a"], got["b"]
    assert a2[0].pnode is a1[0].pnode and a2[1] is a1[1] and a2[2] is a1[2]
    assert a3[1].shape == (3, 3) and a3[1] is not a1[1] and a3[0].pnode is not a1[0].pnode
    assert b1[1] is not a1[1] and b1[0].pnode is not a1[0].pnode
