"""The run's network over time as arrays for ns-3: kept nodes, point-to-point links, per-step
delays, data rates, up/down state and next hops.

Nodes use Hypatia's numbering (satgenpy, ``dynamic_state/fstate_calculation.py``): satellites
``0 .. S-1``, ground site ``g`` is ``S + g``. The forwarding state is given as deltas, as the run
folder's ``fstate.parquet`` holds it: rows ``(step, node, dst, next_hop)`` whose next hop changed
at that step (every row at step 0), ``next_hop = -1`` for a drop.

Only the nodes that can hold a flow's packet become ns-3 nodes: the flows' sites, and every node
reached from them by following next hops towards a flow endpoint at any step (the closure is
taken step by step, so a packet in flight at a node that left the path is still forwarded).
For ten flows between far-apart cities over 200 s of the 1,584-satellite Starlink shell
(``benchmarks/bench_packets.py``) this keeps 219 satellites and 402 links.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..constants import C_M_S
from ..errors import StarmeshError


@dataclass(frozen=True)
class ForwardingState:
    """Next hops over time as deltas.

    Attributes
    ----------
    n_steps : int
        Number of steps T.
    n_nodes : int
        Number of nodes N (satellites, then ground sites).
    step, node, dst, next_hop : ndarray of int64, shape (R,)
        Row ``i`` says: from step ``step[i]`` on, ``node[i]`` forwards packets for ``dst[i]`` to
        ``next_hop[i]`` (``-1``: drop). Sorted by step.
    """

    n_steps: int
    n_nodes: int
    step: NDArray[np.int64]
    node: NDArray[np.int64]
    dst: NDArray[np.int64]
    next_hop: NDArray[np.int64]


def forwarding_state_from_rows(
    t_s: ArrayLike,
    node: ArrayLike,
    dst: ArrayLike,
    next_hop: ArrayLike,
    *,
    step_s: float,
    n_steps: int,
    n_nodes: int,
) -> ForwardingState:
    """Build a :class:`ForwardingState` from the columns of ``fstate.parquet`` (one mode).

    Parameters
    ----------
    t_s : array_like, shape (R,)
        Time of each row since the run's start [s]; must be a step, ``k * step_s``.
    node, dst, next_hop : array_like of int, shape (R,)
        Hypatia-numbered node, destination and next hop (``-1``: drop).
    step_s : float
        The run's step [s].
    n_steps : int
        Number of steps of the run.
    n_nodes : int
        Satellites plus ground sites.

    Raises
    ------
    StarmeshError
        If a time is not a step of the run or a node is outside ``0 .. n_nodes - 1``.
    """
    t = np.asarray(t_s, np.float64)
    k = np.rint(t / step_s).astype(np.int64)
    off = (np.abs(k * step_s - t) > 1e-6) | (k < 0) | (k >= n_steps)
    if off.any():
        raise StarmeshError(
            f"forwarding state row at t = {t[off][0]!r} s is not one of the {n_steps} steps of "
            f"{step_s:g} s: pass the run's step_s and its forwarding state"
        )
    cols = [np.asarray(x, np.int64) for x in (node, dst, next_hop)]
    bad = (cols[0] < 0) | (cols[0] >= n_nodes) | (cols[1] < 0) | (cols[1] >= n_nodes)
    bad |= (cols[2] < -1) | (cols[2] >= n_nodes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StarmeshError(
            f"forwarding state row {cols[0][i]} -> {cols[1][i]} via {cols[2][i]} is outside the "
            f"network of {n_nodes} nodes: pass n_nodes = satellites + ground sites"
        )
    order = np.argsort(k, kind="stable")
    return ForwardingState(n_steps, n_nodes, k[order], *(c[order] for c in cols))


def read_forwarding_state(
    fstate_dir: str, *, step_s: float, n_steps: int, n_nodes: int, mode: str = "isl"
) -> ForwardingState:
    """Read a run folder's ``fstate.parquet`` (one routing mode) into a :class:`ForwardingState`.

    A thin reader kept apart from the array adapter, so that the run-folder module can take it
    over; ``[routing] forwarding_state = true`` writes the folder.
    """
    import pyarrow.dataset as pa_ds

    table = pa_ds.dataset(fstate_dir, format="parquet").to_table(
        columns=["t_s", "node", "dst", "next_hop"], filter=pa_ds.field("mode") == mode
    )
    if table.num_rows == 0:
        raise StarmeshError(
            f"{fstate_dir!r} holds no forwarding state of mode {mode!r}: run the scenario with "
            f'[routing] forwarding_state = true and modes including "{mode}"'
        )
    return forwarding_state_from_rows(
        table["t_s"].to_numpy(),
        table["node"].to_numpy(),
        table["dst"].to_numpy(),
        table["next_hop"].to_numpy(),
        step_s=step_s,
        n_steps=n_steps,
        n_nodes=n_nodes,
    )


@dataclass(frozen=True)
class PacketNetwork:
    """The part of the run's network that ns-3 simulates.

    Attributes
    ----------
    step_s : float
        Step of the run [s]; step ``k`` holds on ``[k * step_s, (k + 1) * step_s)``.
    n_sats : int
        Satellites in the run (S).
    site_names : tuple of str, length G
        Ground sites, Hypatia node ``S + g``.
    nodes : ndarray of int64, shape (M,)
        Hypatia ids of the nodes kept, ascending.
    links : ndarray of int64, shape (L, 2)
        Point-to-point links as Hypatia node pairs, ``a < b``.
    delay_s : ndarray of float64, shape (T, L)
        Propagation delay of each link at each step [s].
    up : ndarray of bool, shape (T, L)
        Whether the link carries packets at each step (a down link drops them).
    rate_bps : ndarray of float64, shape (T, L)
        Data rate of each link at each step [bit/s].
    dsts : ndarray of int64, shape (D,)
        Hypatia ids of the destinations routed (the flows' endpoints).
    route_step, route_node, route_dst, route_link : ndarray of int64, shape (R,)
        Route deltas: from step ``route_step`` on, node ``route_node`` sends packets for
        ``route_dst`` over link ``route_link`` (index into ``links``; ``-1``: drop).
    """

    step_s: float
    n_sats: int
    site_names: tuple[str, ...]
    nodes: NDArray[np.int64]
    links: NDArray[np.int64]
    delay_s: NDArray[np.float64]
    up: NDArray[np.bool_]
    rate_bps: NDArray[np.float64]
    dsts: NDArray[np.int64]
    route_step: NDArray[np.int64]
    route_node: NDArray[np.int64]
    route_dst: NDArray[np.int64]
    route_link: NDArray[np.int64]

    @property
    def n_steps(self) -> int:
        return int(self.delay_s.shape[0])

    def site_node(self, name: str) -> int:
        """Hypatia node id of the ground site ``name``."""
        try:
            return self.n_sats + self.site_names.index(name)
        except ValueError:
            raise StarmeshError(
                f"site {name!r} is not a ground site of the run (sites: "
                f"{', '.join(self.site_names[:8])}{', ...' if len(self.site_names) > 8 else ''})"
            ) from None

    def next_hops(self, step: int) -> dict[tuple[int, int], int]:
        """Next-hop link of every (node, destination) at ``step``: ``{(node, dst): link}``."""
        upto = np.searchsorted(self.route_step, step, side="right")
        table: dict[tuple[int, int], int] = {}
        for n, d, link in zip(
            self.route_node[:upto].tolist(),
            self.route_dst[:upto].tolist(),
            self.route_link[:upto].tolist(),
            strict=True,
        ):
            table[(n, d)] = link
        return table

    def path(self, src: int, dst: int, step: int) -> list[int]:
        """Links of the path from node ``src`` to ``dst`` at ``step`` (empty if there is none).

        A reference for tests and estimates: it walks the same next hops ns-3 is given.
        """
        table = self.next_hops(step)
        out: list[int] = []
        node = src
        while node != dst:
            link = table.get((node, dst), -1)
            if link < 0 or len(out) > self.nodes.size:
                return []
            out.append(link)
            a, b = self.links[link]
            node = int(b if a == node else a)
        return out

    def path_delay_s(self, src: int, dst: int, step: int) -> float:
        """Propagation delay of the path from ``src`` to ``dst`` at ``step`` [s]; inf if none."""
        links = self.path(src, dst, step)
        if not links:
            return float("inf")
        return float(self.delay_s[step, links].sum())


def _as_rate(
    x: float | NDArray[np.float64], n_steps: int, n: int, what: str
) -> NDArray[np.float64]:
    arr = np.broadcast_to(np.asarray(x, np.float64), (n_steps, n)).copy()
    if not np.all(arr > 0):
        raise StarmeshError(f"{what} must be > 0 bit/s, got {arr.min():g}: pass a positive rate")
    return arr


def build_network(
    fstate: ForwardingState,
    r_ecef_m: NDArray[np.float64],
    site_ecef_m: NDArray[np.float64],
    site_names: list[str] | tuple[str, ...],
    flow_pairs: list[tuple[str, str]],
    *,
    step_s: float,
    isl_rate_bps: float | NDArray[np.float64] = 10e6,
    gsl_rate_bps: float | NDArray[np.float64] = 10e6,
    isl_edges: NDArray[np.int64] | None = None,
    isl_up: NDArray[np.bool_] | None = None,
    isl_max_range_m: float = float("inf"),
    gsl_max_range_m: float = float("inf"),
    earth_model: str = "wgs84",
) -> PacketNetwork:
    """Select the nodes and links the flows need and compute their delays at every step.

    Parameters
    ----------
    fstate : ForwardingState
        Next hops of the run, Hypatia numbering.
    r_ecef_m : ndarray, shape (T, S, 3)
        Satellite positions at every step [m, ECEF].
    site_ecef_m : ndarray, shape (G, 3)
        Ground-site positions [m, ECEF].
    site_names : sequence of str, length G
        Names of the ground sites.
    flow_pairs : list of (str, str)
        Sites that exchange packets (each pair in both directions: data and ACKs); their
        sites are the destinations routed.
    step_s : float
        Step of the run [s].
    isl_rate_bps, gsl_rate_bps : float or ndarray, shape (T, L_kind)
        Data rates of ISLs and GSLs [bit/s]; scalars for all. Hypatia's paper experiments use
        10 Mbit/s for both (Kassing et al., IMC 2020, Sec. 5), the default here.
    isl_edges : ndarray of int, shape (E, 2), optional
        The run's ISLs; with ``isl_up`` (T, E) it says when each ISL is up. Without it, an ISL
        is up when it is within ``isl_max_range_m``.
    isl_up : ndarray of bool, shape (T, E), optional
        ISL state per step (failures, range).
    isl_max_range_m, gsl_max_range_m : float
        A link longer than this at a step is down at that step [m].
    earth_model : {"wgs84", "pyephem"}
        The run's Earth model; "pyephem" measures links with libastro's float32 ranges, as
        such runs do (Hypatia compatibility).

    Returns
    -------
    PacketNetwork
    """
    r = np.asarray(r_ecef_m, np.float64)
    n_steps, n_sats = r.shape[0], r.shape[1]
    if n_steps != fstate.n_steps:
        raise StarmeshError(
            f"conflicting number of steps: {n_steps} in r_ecef_m, {fstate.n_steps} in the "
            "forwarding state; pass positions of the run's steps"
        )
    site_xyz = np.asarray(site_ecef_m, np.float64)
    n_sites = site_xyz.shape[0]
    if n_sats + n_sites != fstate.n_nodes:
        raise StarmeshError(
            f"conflicting network sizes: {n_sats} satellites + {n_sites} sites in the "
            f"positions, {fstate.n_nodes} nodes in the forwarding state"
        )
    names = tuple(site_names)
    endpoints = [e for p in flow_pairs for e in p]
    missing = [e for e in endpoints if e not in names]
    if missing:
        raise StarmeshError(
            f"flow endpoint {missing[0]!r} is not a ground site of the run: use one of "
            f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
        )
    dsts = np.array(sorted({n_sats + names.index(e) for e in endpoints}), np.int64)
    pairs = [(n_sats + names.index(a), n_sats + names.index(b)) for a, b in flow_pairs]
    n_nodes = fstate.n_nodes
    col = np.full(n_nodes, -1, np.int64)
    col[dsts] = np.arange(dsts.size)
    keep_row = col[fstate.dst] >= 0
    r_step = fstate.step[keep_row]
    r_node = fstate.node[keep_row]
    r_dst = fstate.dst[keep_row]
    r_hop = fstate.next_hop[keep_row]

    # Step-by-step closure, per destination, of the nodes that can hold a packet for it
    # (module docstring): the flows' sources towards it, and their next hops, transitively.
    state = np.full((n_nodes, dsts.size), -1, np.int64)
    holds = np.zeros((n_nodes, dsts.size), bool)
    for a, b in pairs:
        holds[a, col[b]] = True
        holds[b, col[a]] = True
    bounds = np.searchsorted(r_step, np.arange(n_steps + 1))
    used: set[tuple[int, int]] = set()
    for k in range(n_steps):
        lo, hi = bounds[k], bounds[k + 1]
        state[r_node[lo:hi], col[r_dst[lo:hi]]] = r_hop[lo:hi]
        while True:
            n_idx, d_idx = np.nonzero(holds)
            hop = state[n_idx, d_idx]
            fwd = hop >= 0
            new = ~holds[hop[fwd], d_idx[fwd]]
            if not new.any():
                break
            holds[hop[fwd][new], d_idx[fwd][new]] = True
        u, v = n_idx[fwd], hop[fwd]
        used.update(zip(np.minimum(u, v).tolist(), np.maximum(u, v).tolist(), strict=True))
    kept = holds.any(axis=1)
    sats_sites = np.array(sorted(used), np.int64).reshape(-1, 2)
    if np.any((sats_sites[:, 0] >= n_sats) & (sats_sites[:, 1] >= n_sats)):
        raise StarmeshError("the forwarding state sends a ground site straight to another site")
    links = sats_sites
    n_links = links.shape[0]
    is_gsl = links[:, 1] >= n_sats

    # Positions of both ends of every link at every step: (T, L, 3).
    def ends(ids: NDArray[np.int64]) -> NDArray[np.float64]:
        out = np.empty((n_steps, ids.size, 3))
        sat = ids < n_sats
        out[:, sat] = r[:, ids[sat]]
        out[:, ~sat] = site_xyz[ids[~sat] - n_sats][None]
        return out

    length_m = np.linalg.norm(ends(links[:, 0]) - ends(links[:, 1]), axis=-1)
    if earth_model == "pyephem":
        # The run measured links as satgenpy does (libastro's float32 ranges and angles):
        # the packet level takes the same delays.
        from ..topology import libastro_gsl_lengths_m, libastro_isl_lengths_m

        isl = ~is_gsl
        if isl.any():
            length_m[:, isl] = libastro_isl_lengths_m(r, links[isl].astype(np.int32))
        length_m[:, is_gsl] = libastro_gsl_lengths_m(length_m[:, is_gsl])
    delay_s = length_m / C_M_S
    up = np.where(is_gsl[None], length_m <= gsl_max_range_m, length_m <= isl_max_range_m)
    if isl_edges is not None and isl_up is not None:
        e = np.asarray(isl_edges, np.int64)
        key = np.minimum(e[:, 0], e[:, 1]) * n_nodes + np.maximum(e[:, 0], e[:, 1])
        order = np.argsort(key)
        isl_idx = np.flatnonzero(~is_gsl)
        lk = links[isl_idx, 0] * n_nodes + links[isl_idx, 1]
        pos = np.minimum(np.searchsorted(key[order], lk), key.size - 1)
        found = key[order][pos] == lk
        if not found.all():
            a, b = links[isl_idx[~found][0]]
            raise StarmeshError(f"the forwarding state uses ISL {a}-{b}, which isl_edges lacks")
        up[:, isl_idx] &= np.asarray(isl_up, bool)[:, order[pos]]
    rate = np.empty((n_steps, n_links))
    rate[:, ~is_gsl] = _as_rate(isl_rate_bps, n_steps, int((~is_gsl).sum()), "isl_rate_bps")
    rate[:, is_gsl] = _as_rate(gsl_rate_bps, n_steps, int(is_gsl.sum()), "gsl_rate_bps")

    # Route deltas of the (node, destination) entries that ever hold a packet, as link
    # indices. An entry whose link is not among the used ones dates from before its node held
    # packets for that destination, so it is never looked up: it becomes a drop.
    lk_key = links[:, 0] * n_nodes + links[:, 1]
    at_kept = holds[r_node, col[r_dst]]
    rs, rn, rd, rh = r_step[at_kept], r_node[at_kept], r_dst[at_kept], r_hop[at_kept]
    hk = np.minimum(rn, rh) * n_nodes + np.maximum(rn, rh)
    li = np.minimum(np.searchsorted(lk_key, hk), max(n_links - 1, 0))
    li = np.where((rh >= 0) & (lk_key[li] == hk), li, -1) if n_links else np.full(rh.size, -1)
    return PacketNetwork(
        step_s=float(step_s),
        n_sats=n_sats,
        site_names=names,
        nodes=np.flatnonzero(kept).astype(np.int64),
        links=links,
        delay_s=delay_s,
        up=up,
        rate_bps=rate,
        dsts=dsts,
        route_step=rs,
        route_node=rn,
        route_dst=rd,
        route_link=li.astype(np.int64),
    )
