"""One time chunk of a run: links, routing per mode, traffic and forwarding state.

:func:`compute_chunk` is the whole computation of steps ``start .. stop - 1`` of a
:class:`~starmesh.plan.RunPlan`; it reads nothing but the plan and writes nothing. Its parts,
each its own function:

1. :func:`chunk_links`: positions -> ISL delays, usable GSLs (failures, denied areas, link
   budgets and jamming applied) and their delays, per step;
2. :func:`route_mode`: for one routing mode, each step's shortest-path trees, updated from the
   previous step's (:mod:`starmesh.routing.kernels`), read into RTT, hops and serving
   satellites per pair, with the traffic step (:func:`traffic_step`) and forwarding state of
   every step.

Chunks are independent of each other (each recomputes the step before it), so executors may run
them in any order and in any process (:mod:`starmesh.executors`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import vstack as sparse_vstack

from .capacity import (
    flow_incidence,
    max_min_fair,
    node_paths_from_predecessors,
    reverse_paths,
)
from .coverage import TerminalVisibility, slot_shift_s, terminal_visibility_links
from .disruptions import gsl_quality
from .gsl_kernel import distinct_links
from .plan import RunPlan
from .propagation import Propagator
from .routing import (
    ChunkGraph,
    TreeState,
    build_chunk_graph,
    space_delay_s,
    sssp_full,
    sssp_update,
    walk_paths,
)
from .topology import (
    GslCandidates,
    find_gsls,
    isl_lengths_m,
    libastro_gsl_lengths_m,
    libastro_isl_lengths_m,
)


def set_workers(workers: int | None) -> int:
    """Threads the routing kernels use (None: every core numba sees); returns the number set."""
    import numba

    most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    n = max(1, min(most if workers is None else workers, most))
    numba.set_num_threads(n)
    return n


@dataclass(frozen=True)
class ChunkResult:
    """Routes of steps ``start .. stop - 1`` for every mode; arrays shaped ``(M, T, P)``.

    ``fstate`` holds, per mode, the forwarding-state entries that changed at each step (all of
    them at the run's first step) as ``(t_s, node, dst, next_hop)`` arrays, when the scenario asks
    for forwarding state.
    """

    start: int
    stop: int
    t_s: NDArray[np.float64]
    rtt_s: NDArray[np.float64]
    hops: NDArray[np.int16]
    src_sat: NDArray[np.int32]
    dst_sat: NDArray[np.int32]
    changed: NDArray[np.bool_]
    fstate: dict[str, tuple[NDArray[Any], ...]] | None = None
    fstate_base: dict[str, NDArray[np.int32]] | None = None
    fstate_last: dict[str, NDArray[np.int32]] | None = None
    rate_bps: NDArray[np.float64] | None = None  # (M, T, F)
    bottleneck: NDArray[np.int32] | None = None  # (M, T, F)
    demand_bps: NDArray[np.float64] | None = None  # (T, F)
    load: tuple[NDArray[Any], ...] | None = None  # (mode, step, resource, utilisation) rows
    #: Re-paired ISLs (a real constellation): ``(a, b, first_step, last_step)`` columns, one row
    #: per interval of steps (inclusive, run step indices) during which link ``a < b`` is up.
    isl_spans: tuple[NDArray[np.int64], ...] | None = None
    service: ServiceChunk | None = None
    #: Satellites in view, serving satellite and handovers of every terminal (terminals in
    #: site order, :func:`visibility_terminals`), steps ``start .. stop - 1``.
    visibility: TerminalVisibility | None = None


@dataclass(frozen=True)
class _Orientation:
    """Which sites root the shortest-path trees, and how each pair is read from them."""

    roots: NDArray[np.int64]  # site indices, (K,)
    row: NDArray[np.int64]  # tree of each pair, (P,)
    target: NDArray[np.int64]  # node whose path is walked, (P,)
    reverse: bool  # trees are rooted at the pairs' destinations


def _orientation(plan: RunPlan) -> _Orientation:
    p = plan.problem
    src, dst = p.pair_src, p.pair_dst
    if plan.forwarding_state:
        # Forwarding state needs a tree rooted at every destination: every pair endpoint.
        roots = np.unique(np.concatenate([src, dst]))
        reverse = True
    else:
        reverse = np.unique(dst).size < np.unique(src).size
        roots = np.unique(dst if reverse else src)
    root_side, far_side = (dst, src) if reverse else (src, dst)
    return _Orientation(
        roots=roots,
        row=np.searchsorted(roots, root_side).astype(np.int64),
        target=p.in_node(far_side),
        reverse=reverse,
    )


def _sat_order(plan: RunPlan) -> NDArray[np.int64] | None:
    """The routing graphs' satellite numbering: a real constellation's by shell, plane and
    argument of latitude (:meth:`starmesh.realset.PlusGridIsl.shell_order`), else None (the
    problem's: Walker shells are generated in that order already)."""
    return None if plan.isl is None else plan.isl.shell_order()


def fstate_nodes(plan: RunPlan) -> NDArray[np.int64]:
    """Node ids that carry forwarding state: every satellite, then every site with GSLs.

    Ids follow Hypatia's numbering: satellites ``0 .. S-1``, ground site ``g`` is ``S + g``.
    """
    p = plan.problem
    return np.concatenate([np.arange(p.n_sats), p.n_sats + np.flatnonzero(p.gsl_site)])


def _next_hops(
    plan: RunPlan, pedge: NDArray[np.int64], graph: ChunkGraph, rows: NDArray[np.int64]
) -> NDArray[np.int32]:
    """Next hop of every forwarding node towards the roots ``rows``, shape ``(len(rows), Nf)``,
    -1 if none."""
    p = plan.problem
    s, g = p.n_sats, p.n_sites
    nodes = fstate_nodes(plan)
    # A site forwards from its in-node (where paths towards it arrive when read from the root).
    graph_node = graph.from_problem(np.where(nodes < s, nodes, nodes + g))
    e = pedge[rows][:, graph_node]
    nh = graph.to_problem(np.where(e >= 0, graph.edge_src[np.maximum(e, 0)], -1))
    nh = np.where(nh >= s + g, nh - g, nh)  # an in-node (gateway via fibre) -> its site id
    return nh.astype(np.int32)


def _flow_incidence(
    plan: RunPlan, orient: _Orientation, graph: ChunkGraph, pedge: NDArray[np.int64]
) -> Any:
    """Flow x resource incidence of every flow on its pair's current path, in its direction."""
    tp = plan.traffic
    assert tp is not None
    p = plan.problem
    pred = np.where(pedge >= 0, graph.edge_src[np.maximum(pedge, 0)], -1)
    ptr, nodes = node_paths_from_predecessors(pred, orient.row, orient.target)
    nodes = graph.to_problem(nodes).astype(nodes.dtype, copy=False)
    ptr_r, nodes_r = reverse_paths(ptr, nodes, p.n_sats, p.n_sites)
    tree = flow_incidence(tp.resources, ptr, nodes)
    other = flow_incidence(tp.resources, ptr_r, nodes_r)
    # Trees rooted at destinations give destination -> source paths.
    fwd, bwd = (other, tree) if orient.reverse else (tree, other)
    both = sparse_vstack([fwd, bwd], format="csr")
    return both[tp.flow_pair + p.pair_src.size * tp.flow_reverse]


def _kept_load(
    rows: Sequence[tuple[NDArray[Any], ...]], drop: int, t_all: NDArray[np.float64]
) -> tuple[NDArray[Any], ...]:
    """Loaded resources per (mode, step) of the kept steps, as flat columns with times."""
    if not rows:
        z = np.zeros(0)
        return (z, z.astype(np.int8), z.astype(np.int32), z.astype(np.float32))
    m, k, r, u = (np.concatenate(c) for c in zip(*rows, strict=True))
    keep = k >= drop
    return (t_all[k[keep]], m[keep], r[keep], u[keep])


def _usable_gsls(
    plan: RunPlan,
    gsl: GslCandidates,
    gsl_sites: NDArray[np.int64],
    r: NDArray[np.float64],
    t_s: NDArray[np.float64],
    site_failed: NDArray[np.bool_] | None,
) -> tuple[GslCandidates, NDArray[np.float64], NDArray[np.float64]]:
    """Drop GSLs of denied or failed sites and, with a link budget, those that do not close.

    Returns the usable links and, per link, the share of its downlink and uplink capacity
    that jamming leaves (link-budget capacity with the jammers over that without them; 1
    without jammers).
    """
    keep, down, up = _link_usability(
        plan, gsl.t_idx, gsl_sites[gsl.site_idx], gsl.sat_idx, r, t_s, site_failed
    )
    if keep.all():
        return gsl, down, up
    return gsl.select(keep), down[keep], up[keep]


def _link_usability(
    plan: RunPlan,
    t_idx: NDArray[np.integer],
    site: NDArray[np.int64],
    sat: NDArray[np.integer],
    r: NDArray[np.float64],
    t_s: NDArray[np.float64],
    site_failed: NDArray[np.bool_] | None,
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    """Which ground-satellite links are usable (site not denied or failed, link budget closes
    with the jammers), and the share of each link's down- and uplink capacity that jamming
    leaves, each shape (L,).

    Parameters
    ----------
    t_idx, site, sat : ndarray, shape (L,)
        Step (row of ``r`` and ``t_s``), site index and satellite of each link.
    r : ndarray, shape (T, S, 3)
    t_s : ndarray, shape (T,)
    site_failed : ndarray of bool, shape (T, G), or None
    """
    keep = np.ones(site.size, bool)
    if plan.denied is not None:
        keep &= ~plan.denied[site]
    if site_failed is not None:
        keep &= ~site_failed[t_idx, site]
    down = np.ones(site.size)
    up = np.ones(site.size)
    if plan.profiles is not None and keep.any():
        idx = np.flatnonzero(keep)
        q = gsl_quality(
            t_idx[idx],
            site[idx],
            sat[idx],
            r,
            plan.sites.r_ecef_m,
            plan.sites.up,
            list(plan.profiles),
            jammers=plan.jammers,
            t_s=t_s,
        )
        keep[idx[~q.up]] = False
        if plan.jammers:
            clear = gsl_quality(
                t_idx[idx],
                site[idx],
                sat[idx],
                r,
                plan.sites.r_ecef_m,
                plan.sites.up,
                list(plan.profiles),
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                down[idx] = np.nan_to_num(q.downlink.capacity_bps / clear.downlink.capacity_bps)
                up[idx] = np.nan_to_num(q.uplink.capacity_bps / clear.uplink.capacity_bps)
    return keep, down, up


def _site_capacity(
    plan: RunPlan, site: NDArray[np.int64], down: NDArray[np.float64], up: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Resource capacities of one step, each site's scaled by what jamming leaves of its best
    link.

    A site's terminals are served by many beams and channels, so one link's budget is not the
    site's capacity; but the share of capacity that jamming takes from the link (SINR ->
    DVB-S2X, degrading gradually before the link fails) is taken from the site too.
    """
    tp = plan.traffic
    assert tp is not None
    cap = tp.resources.capacity_bps.copy()
    if not plan.jammers:
        return cap
    n_g = len(plan.sites)
    # A site's best link decides; a site with no link this step is unroutable anyway and its
    # capacity stays as it is.
    best_down = np.full(n_g, -1.0)
    best_up = np.full(n_g, -1.0)
    np.maximum.at(best_down, site, down)
    np.maximum.at(best_up, site, up)
    best_down[best_down < 0] = 1.0
    best_up[best_up < 0] = 1.0
    for res_idx, best in ((tp.resources.site_down, best_down), (tp.resources.site_up, best_up)):
        has = res_idx >= 0
        cap[res_idx[has]] = cap[res_idx[has]] * np.minimum(best[has], 1.0)
    return cap


@dataclass(frozen=True)
class ChunkLinks:
    """The links of every step of a chunk, ready for routing.

    Attributes
    ----------
    isl_edges : ndarray of int32, shape (E, 2)
        The ISLs of the chunk: the plan's, or for re-paired ISLs every link in use at some step
        of the chunk.
    isl_delay_s : ndarray, shape (T, E)
        One-way delay of each ISL [s]; inf where it is down or out of range.
    gsl : GslCandidates
        Usable ground-satellite links of every step, sorted by step.
    gsl_cap_down, gsl_cap_up : ndarray, shape (L,)
        Share of each GSL's capacity that jamming leaves (1 without jammers).
    gsl_sites : ndarray of int64, shape (Gs,)
        Site index of every site that has GSLs (``gsl.site_idx`` indexes this).
    bounds : ndarray of int64, shape (T + 1,)
        GSLs of step ``k`` are ``bounds[k]:bounds[k + 1]``.
    site_failed : ndarray of bool, shape (T, G), or None
        Sites down at each step (None without failures).
    n_sats : int
        Satellites of the constellation (the GSL keys' base).
    libastro_lengths : bool
        GSL delays from satgenpy's pyephem lengths (``earth_model = "pyephem"``).

    The GSLs' distinct links and delays (:attr:`links`, :attr:`link_of`, :attr:`gsl_delay_s`)
    are computed when first read: with the service model only the scheduled links are routed
    (:func:`restrict_to_schedule`), a few percent of those in view.
    """

    isl_delay_s: NDArray[np.float64]
    gsl: GslCandidates
    gsl_cap_down: NDArray[np.float64]
    gsl_cap_up: NDArray[np.float64]
    gsl_sites: NDArray[np.int64]
    bounds: NDArray[np.int64]
    site_failed: NDArray[np.bool_] | None
    isl_edges: NDArray[np.int32]
    n_sats: int
    libastro_lengths: bool

    def _distinct(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        # Kept in the instance's __dict__ by hand: functools.cached_property (Python 3.11)
        # holds one lock for every instance while it computes, which would serialise the
        # chunks that Dask's threads number at once.
        got = self.__dict__.get("_distinct_links")
        if got is None:
            site = self.gsl_sites[self.gsl.site_idx]  # int64, as np.flatnonzero gives them
            sat = self.gsl.sat_idx
            links, link_of, ordered = distinct_links(site, sat, self.bounds, self.n_sats)
            if not ordered:
                links, link_of = np.unique(site * self.n_sats + sat, return_inverse=True)
            got = self.__dict__["_distinct_links"] = (links, link_of)
        return got

    @property
    def links(self) -> NDArray[np.int64]:
        """Distinct (site, satellite) GSLs of the chunk as ``site * S + sat``, sorted: the
        fixed structure; shape (U,)."""
        return self._distinct()[0]

    @property
    def link_of(self) -> NDArray[np.int64]:
        """Index into :attr:`links` of every GSL; shape (L,)."""
        return self._distinct()[1]

    @property
    def gsl_delay_s(self) -> NDArray[np.float64]:
        """One-way delay of every GSL [s]; shape (L,)."""
        got = self.__dict__.get("_gsl_delay_s")
        if got is None:
            length = self.gsl.length_m
            lengths = libastro_gsl_lengths_m(length) if self.libastro_lengths else length
            got = self.__dict__["_gsl_delay_s"] = space_delay_s(lengths)
        return got


@dataclass(frozen=True)
class ChunkWindow:
    """Positions and ground-satellite links of every step a chunk needs, found once.

    A chunk routes steps ``lo .. stop - 1``; the scheduler also needs the whole slots that
    straddle the chunk's edges and terminal visibility the steps since the slot of ``lo``
    began. Those steps are propagated and searched for links once, here, and each part reads
    its steps and sites (:meth:`gsl`).

    Attributes
    ----------
    w0 : int
        First step of the window (run step index).
    t_s : ndarray, shape (W,)
        Step times [s].
    r : ndarray, shape (W, S, 3)
        Satellite ECEF positions [m].
    ok : ndarray of bool, shape (W, S)
        Satellites whose propagation succeeded.
    sites : ndarray of int64, shape (G,)
        Sites searched, ascending.
    links : GslCandidates
        Links of ``sites`` (``site_idx`` indexes ``sites``) at every step of the window.
    """

    w0: int
    t_s: NDArray[np.float64]
    r: NDArray[np.float64]
    ok: NDArray[np.bool_]
    sites: NDArray[np.int64]
    links: GslCandidates

    def steps(self, a: int, b: int) -> slice:
        """Rows of run steps ``a .. b - 1``."""
        return slice(a - self.w0, b - self.w0)

    def gsl(self, a: int, b: int, sites: NDArray[np.int64]) -> GslCandidates:
        """Links of run steps ``a .. b - 1`` to ``sites`` (ascending, a subset of
        :attr:`sites`), with ``t_idx`` from ``a`` and ``site_idx`` indexing ``sites``; in
        (step, site, satellite) order, as :func:`~starmesh.topology.find_gsls` gives them."""
        lk = self.links
        i0, i1 = np.searchsorted(lk.t_idx, [a - self.w0, b - self.w0])
        sub = lk.select(slice(int(i0), int(i1)))
        site_idx = sub.site_idx
        if not (sites.size == self.sites.size and np.array_equal(sites, self.sites)):
            # A subset: keep its sites' links and number them in it (a table over the
            # window's sites, so each link costs one lookup).
            table = np.full(self.sites.size, -1, np.int32)
            if sites.size:
                pos = np.minimum(np.searchsorted(sites, self.sites), sites.size - 1)
                hit = sites[pos] == self.sites
                table[hit] = pos[hit]
            new_idx = table[sub.site_idx]
            keep = new_idx >= 0
            sub = sub.select(keep)
            site_idx = new_idx[keep]
        return GslCandidates(
            (sub.t_idx - (a - self.w0)).astype(np.int32),
            site_idx,
            sub.sat_idx,
            sub.length_m,
            sub.elevation_rad,
        )


def _visibility_start(plan: RunPlan, lo: int) -> int:
    """First step of the visibility slot that holds step ``lo``."""
    step_s, slot_s = plan.grid.step_s, plan.visibility_slot_s
    shift = slot_shift_s(plan.grid.epoch)
    # Slots are at most a day, so this looks back over a bounded number of steps.
    slot_lo = _slot_of(np.array([lo]), step_s, slot_s, shift)[0]
    back = np.arange(max(lo - math.ceil(slot_s / step_s) - 1, 0), lo + 1)
    return int(back[np.argmax(_slot_of(back, step_s, slot_s, shift) == slot_lo)])


def chunk_window(plan: RunPlan, prop: Propagator, lo: int, stop: int) -> ChunkWindow:
    """Propagate and search the links of every step that steps ``lo .. stop - 1`` need."""
    w0, w1 = lo, stop
    sites = [np.flatnonzero(plan.problem.gsl_site)]
    if plan.service is not None:
        a, b = _slot_window(plan, lo, stop)
        w0, w1 = min(w0, a), max(w1, b)
        sites.append(np.asarray(plan.service.terminals, dtype=np.int64))
        if "bent-pipe" in plan.modes:
            sites.append(plan.sites.of_kind("gateway"))
    if visibility_terminals(plan).size:
        w0 = min(w0, _visibility_start(plan, lo))
    t_s = plan.grid.t_s(w0, w1)
    r, ok = prop.positions_ecef_m(t_s)
    up = ok if plan.failures is None else ok & ~plan.failures.sat_failed(t_s)
    site = np.unique(np.concatenate(sites)).astype(np.int64)
    links = find_gsls(r, up, plan.sites.r_ecef_m[site], plan.sites.up[site], plan.gsl_rule)
    return ChunkWindow(w0=w0, t_s=t_s, r=r, ok=ok, sites=site, links=links)


def _isl_failed_by_key(
    plan: RunPlan, t_s: NDArray[np.float64], edges: NDArray[np.int32]
) -> NDArray[np.bool_]:
    """ISL outages of the plan (named by its first step's links) on other links, matched by
    endpoints ``a * S + b``; links the plan does not name never fail by themselves (their
    satellites' failures remove them from the pairing already)."""
    assert plan.failures is not None
    out = np.zeros((t_s.size, edges.shape[0]), bool)
    if not plan.failures.isls or not edges.size or not plan.isl_edges.size:
        return out
    n_s = plan.constellation.n_sats
    key0 = plan.isl_edges[:, 0].astype(np.int64) * n_s + plan.isl_edges[:, 1]
    order = np.argsort(key0)
    key0 = key0[order]
    failed0 = plan.failures.isl_failed(t_s, sat_failed=np.zeros((t_s.size, n_s), bool))
    key = edges[:, 0].astype(np.int64) * n_s + edges[:, 1]
    pos = np.minimum(np.searchsorted(key0, key), key0.size - 1)
    hit = key0[pos] == key
    out[:, hit] = failed0[:, order[pos[hit]]]
    return out


def isl_spans(
    edges: NDArray[np.int32], up: NDArray[np.bool_], first_step: int
) -> tuple[NDArray[np.int64], ...]:
    """Intervals of steps during which each link is up.

    Parameters
    ----------
    edges : ndarray of int32, shape (E, 2)
    up : ndarray of bool, shape (T, E)
    first_step : int
        Run step index of ``up[0]``.

    Returns
    -------
    tuple of ndarray of int64
        ``(a, b, first_step, last_step)``, one row per maximal run of ``True`` (inclusive),
        ordered by link, then time.
    """
    n_t, n_e = up.shape
    pad = np.zeros((n_e, n_t + 2), np.int8)
    pad[:, 1:-1] = up.T
    d = np.diff(pad, axis=1)
    e_on, t_on = np.nonzero(d == 1)
    _, t_off = np.nonzero(d == -1)
    return (
        edges[e_on, 0].astype(np.int64),
        edges[e_on, 1].astype(np.int64),
        (first_step + t_on).astype(np.int64),
        (first_step + t_off - 1).astype(np.int64),
    )


def chunk_links(
    plan: RunPlan,
    t_s: NDArray[np.float64],
    r: NDArray[np.float64],
    ok: NDArray[np.bool_],
    *,
    gsl: GslCandidates | None = None,
    with_isl: bool = True,
) -> ChunkLinks:
    """ISLs and usable GSLs of every step, with failures, denied areas and jamming applied.

    Parameters
    ----------
    plan : RunPlan
    t_s : ndarray, shape (T,)
        Step times [s since the plan's epoch].
    r : ndarray, shape (T, S, 3)
        Satellite ECEF positions [m].
    ok : ndarray of bool, shape (T, S)
        Satellites whose propagation succeeded.
    gsl : GslCandidates, optional
        The GSLs of these steps to the plan's GSL sites (:meth:`ChunkWindow.gsl`), if already
        found; searched here otherwise.
    with_isl : bool
        Build the ISLs too (False: GSLs only, ``isl_delay_s`` has no columns).
    """
    n_t = t_s.size
    problem = plan.problem
    site_failed = None
    sat_failed = None
    if plan.failures is not None:
        # A failed satellite has no links at all: treat it as absent.
        sat_failed = plan.failures.sat_failed(t_s)
        ok = ok & ~sat_failed
        site_failed = plan.failures.site_failed(t_s)
    isl_edges = plan.isl_edges
    if not with_isl:
        isl_edges = np.zeros((0, 2), np.int32)
        isl_delay = np.full((n_t, 0), np.inf)
    elif plan.isl is not None:
        # Re-paired +Grid: this chunk's links, paired at every step among the satellites up.
        isl_edges, isl_up, length = plan.isl.links_and_lengths(r, ok, t_s, epoch=plan.grid.epoch)
        if plan.failures is not None:
            isl_up &= ~_isl_failed_by_key(plan, t_s, isl_edges)
        isl_delay = np.where(isl_up, space_delay_s(length), np.inf)
    elif plan.isl_edges.size:
        if plan.earth_model == "pyephem":
            # satgenpy's lengths: pyephem's float32 ranges and angles (Hypatia compatibility).
            length = libastro_isl_lengths_m(r, plan.isl_edges)
        else:
            length = isl_lengths_m(r, plan.isl_edges)
        both = ok[:, plan.isl_edges[:, 0]] & ok[:, plan.isl_edges[:, 1]]
        if plan.failures is not None:
            both &= ~plan.failures.isl_failed(t_s, sat_failed=sat_failed)
        isl_delay = np.where(both & (length <= plan.isl_max_range_m), space_delay_s(length), np.inf)
    else:
        isl_delay = np.full((n_t, 0), np.inf)
    gsl_sites = np.flatnonzero(problem.gsl_site)
    if gsl is None:
        gsl = find_gsls(
            r, ok, plan.sites.r_ecef_m[gsl_sites], plan.sites.up[gsl_sites], plan.gsl_rule
        )
    gsl, cap_down, cap_up = _usable_gsls(plan, gsl, gsl_sites, r, t_s, site_failed)
    return ChunkLinks(
        isl_delay_s=isl_delay,
        gsl=gsl,
        gsl_cap_down=cap_down,
        gsl_cap_up=cap_up,
        gsl_sites=gsl_sites,
        bounds=np.searchsorted(gsl.t_idx, np.arange(n_t + 1)).astype(np.int64),
        site_failed=site_failed,
        isl_edges=isl_edges,
        n_sats=problem.n_sats,
        libastro_lengths=plan.earth_model == "pyephem",
    )


@dataclass
class ModeRoutes:
    """What routing one mode over a chunk gives (arrays over steps ``lo .. stop - 1``)."""

    rtt_s: NDArray[np.float64]  # (T, P)
    hops: NDArray[np.int16]  # (T, P)
    near_target: NDArray[np.int32]  # (T, P)
    near_root: NDArray[np.int32]  # (T, P)
    phash: NDArray[np.uint64]  # (T, P)
    rate_bps: NDArray[np.float64] | None = None  # (T, F)
    bottleneck: NDArray[np.int32] | None = None  # (T, F)
    load_rows: list[tuple[NDArray[Any], ...]] | None = None
    fstate_rows: list[tuple[NDArray[Any], ...]] | None = None
    fstate_base: NDArray[np.int32] | None = None
    fstate_last: NDArray[np.int32] | None = None


def traffic_step(
    plan: RunPlan,
    links: ChunkLinks,
    k: int,
    inc: Any,
    demand_bps: NDArray[np.float64],
) -> Any:
    """Max-min fair rates of one step's flows on their current paths (:mod:`starmesh.capacity`).

    Parameters
    ----------
    plan : RunPlan
    links : ChunkLinks
    k : int
        Step within the chunk.
    inc : sparse array, shape (F, R)
        Flow x resource incidence of the flows' current paths (:func:`_flow_incidence`).
    demand_bps : ndarray, shape (F,)
        Demand of every flow at this step [bit/s].
    """
    a, b = links.bounds[k], links.bounds[k + 1]
    cap = _site_capacity(
        plan,
        links.gsl_sites[links.gsl.site_idx[a:b]],
        links.gsl_cap_down[a:b],
        links.gsl_cap_up[a:b],
    )
    return max_min_fair(inc, cap, demand_bps)


#: Per thread: the trees of the last chunk routed, whose arrays the next chunk reuses.
_LAST_TREES = threading.local()


def _tree_arrays(
    graph: ChunkGraph, n_k: int
) -> tuple[TreeState, NDArray[np.float64], NDArray[np.int64]]:
    """Tree state, distances and tree edges, shape (K, N), for ``n_k`` trees over a chunk's
    graph, taken from the last chunk this thread routed when they have the same shape (about
    60 MB for W4: allocating and filling them again at every chunk cost 0.4 ms per step). No
    result of :func:`route_mode` refers to them."""
    n_nodes = graph.indptr.size - 1
    last = getattr(_LAST_TREES, "arrays", None)
    if last is None or last[1].shape != (n_k, n_nodes):
        last = (None, np.empty((n_k, n_nodes)), np.empty((n_k, n_nodes), np.int64))
    trees = TreeState.for_full(graph.indptr, graph.indices, graph.edge_src, n_k, reuse=last[0])
    _LAST_TREES.arrays = (trees, last[1], last[2])
    return trees, last[1], last[2]


def release_tree_arrays() -> None:
    """Let go of this thread's tree arrays (:func:`route_mode` keeps them for the next chunk;
    the serial executor calls this when a run ends; a Dask worker's threads keep theirs while
    the worker lives)."""
    _LAST_TREES.__dict__.pop("arrays", None)


def route_mode(
    plan: RunPlan,
    mode: str,
    links: ChunkLinks,
    t_s: NDArray[np.float64],
    first_kept: int,
    run_start: bool,
    demand_bps: NDArray[np.float64] | None,
) -> ModeRoutes:
    """Route every step of a chunk in one mode, updating each step's trees from the last.

    Parameters
    ----------
    plan : RunPlan
    mode : {"isl", "bent-pipe"}
    links : ChunkLinks
    t_s : ndarray, shape (T,)
        Step times [s] (the step before the chunk first, unless the chunk starts the run).
    first_kept : int
        Index of the chunk's first step in ``t_s`` (0 or 1).
    run_start : bool
        The chunk starts the run (forwarding state is then written in full at its first step).
    demand_bps : ndarray, shape (T, F), or None
        Flow demands, when the plan has traffic.
    """
    problem = plan.problem
    orient = _orientation(plan)
    roots = problem.out_node(orient.roots)
    n_t, n_p, n_k = t_s.size, problem.pair_src.size, roots.size
    out = ModeRoutes(
        rtt_s=np.empty((n_t, n_p)),
        hops=np.empty((n_t, n_p), np.int16),
        near_target=np.empty((n_t, n_p), np.int32),
        near_root=np.empty((n_t, n_p), np.int32),
        phash=np.empty((n_t, n_p), np.uint64),
    )
    tp = plan.traffic
    if tp is not None:
        n_f = tp.flow_pair.size
        out.rate_bps = np.zeros((n_t, n_f))
        out.bottleneck = np.zeros((n_t, n_f), np.int32)
        out.load_rows = []
        inc: Any = None
    if plan.forwarding_state:
        out.fstate_rows = []
    graph = build_chunk_graph(
        problem,
        links.links // problem.n_sats,
        links.links % problem.n_sats,
        with_isl=mode == "isl",
        isl_edges=links.isl_edges,
        sat_order=_sat_order(plan),
    )
    trees, dist, pedge = _tree_arrays(graph, n_k)
    prev_nh: NDArray[np.int32] | None = None
    for k in range(n_t):
        a, b = links.bounds[k], links.bounds[k + 1]
        gsl_w = np.full(links.links.size, np.inf)
        gsl_w[links.link_of[a:b]] = links.gsl_delay_s[a:b]
        fibre_up = None
        if links.site_failed is not None and problem.fibre_gw.size:
            sf = links.site_failed[k]
            fibre_up = ~(sf[problem.fibre_gw] | sf[problem.fibre_pop])
        w = graph.weights(links.isl_delay_s[k] if mode == "isl" else None, gsl_w, fibre_up)
        if k == 0:
            sssp_full(graph.indptr, graph.indices, w, roots, dist, pedge, trees)
            todo = np.ones(n_p, bool)
            changes = np.ones(n_k, np.int64)
        else:
            changes = sssp_update(
                graph.indptr, graph.indices, graph.edge_src, w, roots, dist, pedge, trees
            )
            # Pairs in unchanged trees keep last step's path: copy instead of walking.
            todo = changes[orient.row] > 0
            for arr in (out.hops, out.near_target, out.near_root, out.phash):
                arr[k] = arr[k - 1]
        out.rtt_s[k] = 2.0 * dist[orient.row, orient.target]
        walk_paths(
            trees.pnode,
            dist,
            orient.row,
            orient.target,
            problem.n_sats,
            out.hops[k],
            out.near_target[k],
            out.near_root[k],
            out.phash[k],
            todo,
        )
        if graph.sat_of_node is not None:
            for arr in (out.near_target[k], out.near_root[k]):
                arr[todo] = graph.to_problem(arr[todo])
        if tp is not None:
            assert demand_bps is not None and out.rate_bps is not None
            assert out.bottleneck is not None and out.load_rows is not None
            if k == 0 or todo.any():
                inc = _flow_incidence(plan, orient, graph, pedge)
            alloc = traffic_step(plan, links, k, inc, demand_bps[k])
            out.rate_bps[k] = alloc.rate_bps
            out.bottleneck[k] = alloc.bottleneck
            busy = np.flatnonzero(alloc.load_bps > 0)
            out.load_rows.append(
                (
                    np.full(busy.size, k, np.int32),
                    busy.astype(np.int32),
                    alloc.utilisation[busy].astype(np.float32),
                )
            )
        if out.fstate_rows is not None:
            # Next hops change only in trees that changed.
            if prev_nh is None:
                redo = np.arange(n_k)
                nh = _next_hops(plan, pedge, graph, redo)
            else:
                redo = np.flatnonzero(changes > 0)
                nh = prev_nh.copy()
                nh[redo] = _next_hops(plan, pedge, graph, redo)
            if k == first_kept - 1:
                out.fstate_base = nh
            if k >= first_kept:
                first = run_start and k == 0
                out.fstate_rows.append(
                    _fstate_rows(plan, orient, t_s[k], nh, None if first else prev_nh, redo)
                )
            prev_nh = nh
    out.fstate_last = prev_nh
    return out


def compute_chunk(
    plan: RunPlan,
    start: int,
    stop: int,
    propagator: Propagator | None = None,
) -> ChunkResult:
    """Propagate, build links and route steps ``start .. stop - 1``.

    The step before ``start`` is routed as well (and dropped) so that path and forwarding
    changes at the chunk's first step are detected; chunks are therefore independent of each
    other. Within the chunk the graph structure is fixed and each step's shortest-path trees are
    updated from the previous step's (:mod:`starmesh.routing.kernels`).

    Forwarding-state deltas at ``start`` are taken against the recomputed step ``start - 1``,
    returned as :attr:`ChunkResult.fstate_base`; where two next hops tie exactly it may differ
    from the previous chunk's last state, so the writer restates the first delta against that
    (:func:`reconcile_fstate`).
    """
    prop = propagator or plan.propagator()
    lo = max(start - 1, 0)
    drop = start - lo
    win = chunk_window(plan, prop, lo, stop)
    own = win.steps(lo, stop)
    t_all = win.t_s[own]
    r, ok = win.r[own], win.ok[own]
    gsl_sites = np.flatnonzero(plan.problem.gsl_site)
    links = chunk_links(plan, t_all, r, ok, gsl=win.gsl(lo, stop, gsl_sites))
    # Satellites in view are every usable link, before the scheduler picks one per terminal.
    in_view = links
    sched = None
    by_mode = {mode: links for mode in plan.modes}
    if plan.service is not None:
        # The laser mesh reaches the ground from any satellite; without it (bent-pipe) the
        # scheduler can only assign satellites that see a gateway.
        scheds: dict[bool, Scheduled] = {}
        for mode in plan.modes:
            gw_only = mode == "bent-pipe"
            if gw_only not in scheds:
                scheds[gw_only] = service_schedule(plan, win, lo, stop, via_gateway=gw_only)
            by_mode[mode] = restrict_to_schedule(plan, links, scheds[gw_only].serving)
        # Per-terminal outputs (serving satellite, handovers, speed tests) follow the first
        # mode's scheduler.
        sched = scheds[plan.modes[0] == "bent-pipe"]
        links = by_mode[plan.modes[0]]
    tp = plan.traffic
    demand = None
    if tp is not None:
        demand = tp.flows.demand_at(t_all).reshape(t_all.size, tp.flow_pair.size)
    routes = [
        route_mode(plan, mode, by_mode[mode], t_all, drop, start == 0, demand)
        for mode in plan.modes
    ]

    def stack(name: str) -> NDArray[Any]:
        return np.stack([getattr(x, name) for x in routes])

    phash = stack("phash")
    changed = np.zeros(phash.shape, dtype=bool)
    changed[:, 1:] = phash[:, 1:] != phash[:, :-1]
    near_target, near_root = stack("near_target"), stack("near_root")
    if _orientation(plan).reverse:
        src_sat, dst_sat = near_target, near_root
    else:
        src_sat, dst_sat = near_root, near_target
    fs = plan.forwarding_state
    fstate = fstate_base = fstate_last = None
    if fs:
        fstate = {
            mode: tuple(np.concatenate(col) for col in zip(*x.fstate_rows or [], strict=True))
            for mode, x in zip(plan.modes, routes, strict=True)
        }
        fstate_last = {
            mode: x.fstate_last
            for mode, x in zip(plan.modes, routes, strict=True)
            if x.fstate_last is not None
        }
        if start > 0:
            fstate_base = {
                mode: x.fstate_base
                for mode, x in zip(plan.modes, routes, strict=True)
                if x.fstate_base is not None
            }
    load = None
    if tp is not None:
        rows = [
            (np.full(k.size, m, np.int8), k, res, u)
            for m, x in enumerate(routes)
            for k, res, u in (x.load_rows or [])
        ]
        load = _kept_load(rows, drop, t_all)
    spans = None
    if plan.isl is not None:
        up = np.isfinite(links.isl_delay_s[drop:])
        spans = isl_spans(links.isl_edges, up, start)
    visibility = chunk_visibility(plan, start, in_view, win)
    return ChunkResult(
        visibility=visibility,
        isl_spans=spans,
        start=start,
        stop=stop,
        t_s=t_all[drop:],
        rtt_s=stack("rtt_s")[:, drop:],
        hops=stack("hops")[:, drop:],
        src_sat=src_sat[:, drop:],
        dst_sat=dst_sat[:, drop:],
        changed=changed[:, drop:],
        fstate=fstate,
        fstate_base=fstate_base,
        rate_bps=stack("rate_bps")[:, drop:] if tp is not None else None,
        bottleneck=stack("bottleneck")[:, drop:] if tp is not None else None,
        demand_bps=demand[drop:] if demand is not None else None,
        load=load,
        fstate_last=fstate_last,
        service=(
            None
            if sched is None
            else service_step(
                plan,
                sched,
                r,
                hops=stack("hops"),
                prop_rtt_s=stack("rtt_s"),
                src_sat=src_sat,
                dst_sat=dst_sat,
                routes=routes,
                drop=drop,
            )
        ),
    )


def _fstate_rows(
    plan: RunPlan,
    orient: _Orientation,
    t_s: float,
    nh: NDArray[np.int32],
    prev: NDArray[np.int32] | None,
    rows: NDArray[np.int64],
) -> tuple[NDArray[Any], ...]:
    """Entries ``(t_s, node, dst, next_hop)`` of one step: all of them (``prev`` None), or those
    that changed, which can only be in the trees ``rows``."""
    nodes = fstate_nodes(plan).astype(np.int32)
    dst_nodes = (plan.problem.n_sats + orient.roots[rows]).astype(np.int32)
    sub = nh[rows]
    mask = sub != prev[rows] if prev is not None else np.ones(sub.shape, bool)
    # A site has no forwarding entry towards itself.
    mask &= nodes[None, :] != dst_nodes[:, None]
    k_idx, n_idx = np.nonzero(mask)
    return (np.full(k_idx.size, t_s), nodes[n_idx], dst_nodes[k_idx], sub[k_idx, n_idx])


def reconcile_fstate(
    plan: RunPlan, res: ChunkResult, mode: str, prev_last: NDArray[np.int32]
) -> tuple[NDArray[Any], ...]:
    """Forwarding-state rows of a chunk with its first step restated against ``prev_last``.

    ``compute_chunk`` takes the first step's changes against its own recomputation of the step
    before; a reader of the earlier chunks holds ``prev_last``, the previous chunk's last state.
    The two differ only where next hops tie exactly, but the file must describe the changes the
    reader sees.
    """
    assert res.fstate is not None and res.fstate_base is not None
    t_s, node, dst, nh = res.fstate[mode]
    first = t_s == res.t_s[0]
    orient = _orientation(plan)
    nodes = fstate_nodes(plan)
    state = res.fstate_base[mode].copy()
    rows = np.searchsorted(plan.problem.n_sats + orient.roots, dst[first])
    cols = np.searchsorted(nodes, node[first])
    state[rows, cols] = nh[first]
    every = np.arange(orient.roots.size)
    again = _fstate_rows(plan, orient, float(res.t_s[0]), state, prev_last, every)
    rest = tuple(col[~first] for col in (t_s, node, dst, nh))
    return tuple(np.concatenate([x, y]) for x, y in zip(again, rest, strict=True))


# --- The service model: scheduler, RTT distribution, speed tests (starmesh.service) -----------


@dataclass(frozen=True)
class Scheduled:
    """The global scheduler's choice over a chunk's steps (``lo .. stop - 1``).

    Attributes
    ----------
    serving : ndarray of int32, shape (T, Gt)
        Serving satellite of each terminal (``plan.service.terminals`` order); -1 if none.
    handover : ndarray of bool, shape (T, Gt)
        The serving satellite differs from the previous step's (both served).
    n_visible : ndarray of int64, shape (T, Gt)
        Satellites above the terminal's elevation mask (eligible ones: in bent-pipe mode, those
        that see a gateway).
    capacity_in_view_bps : ndarray, shape (T, Gt)
        Sum of those satellites' user-downlink capacities [bit/s] (``plan.service``).
    down_share, up_share : ndarray, shape (T, Gt), or None
        Share of the serving link's down- and uplink capacity that jamming leaves (None: no
        jammer, every share is 1).
    """

    serving: NDArray[np.int32]
    handover: NDArray[np.bool_]
    n_visible: NDArray[np.int64]
    capacity_in_view_bps: NDArray[np.float64]
    down_share: NDArray[np.float64] | None = None
    up_share: NDArray[np.float64] | None = None


@dataclass(frozen=True)
class ServiceChunk:
    """What the service model adds to a chunk (kept steps only).

    Attributes
    ----------
    rtt_q_s : ndarray, shape (M, Q, T, P)
        RTT quantiles (``plan.service.quantiles``) per mode, step and pair [s]; inf if
        unreachable.
    mean_s : ndarray, shape (M, T, P, C)
        Expected contribution of each component (:data:`starmesh.service.latency.COMPONENTS`).
    serving : ndarray of int32, shape (T, Gt)
    handover : ndarray of bool, shape (T, Gt)
    download_bps : ndarray, shape (T, Gt)
        Speed-test download rate of each terminal [bit/s] (0 when unserved).
    upload_bps : ndarray, shape (T, Gt)
        Speed-test upload rate of each terminal [bit/s] (0 when unserved).
    rho_user, rho_feeder : ndarray, shape (M, T, P)
        Utilisation of the pair's user and feeder access queues.
    """

    rtt_q_s: NDArray[np.float64]
    mean_s: NDArray[np.float64]
    serving: NDArray[np.int32]
    handover: NDArray[np.bool_]
    download_bps: NDArray[np.float64]
    rho_user: NDArray[np.float64]
    rho_feeder: NDArray[np.float64]
    upload_bps: NDArray[np.float64]


def _slot_window(plan: RunPlan, lo: int, stop: int) -> tuple[int, int]:
    """Steps ``[a, b)`` of the whole scheduler slots that cover steps ``lo .. stop - 1``."""
    from .service.scheduler import slot_index

    sv = plan.service
    assert sv is not None
    n = plan.grid.n_steps
    margin = math.ceil(sv.slot_s / plan.grid.step_s) + 1
    a0, b0 = max(0, lo - margin), min(n, stop + margin)
    slot = slot_index(
        plan.grid.t_s(a0, b0),
        slot_s=sv.slot_s,
        offset_s=sv.slot_offset_s,
        epoch_second_of_minute=sv.epoch_second_of_minute,
    )
    first, last = slot[lo - a0], slot[stop - 1 - a0]
    a = a0 + int(np.searchsorted(slot, first, side="left"))
    b = a0 + int(np.searchsorted(slot, last, side="right"))
    return a, b


def service_schedule(
    plan: RunPlan,
    window: ChunkWindow,
    lo: int,
    stop: int,
    *,
    via_gateway: bool = False,
) -> Scheduled:
    """Schedule every terminal over steps ``lo .. stop - 1`` (:mod:`starmesh.service.scheduler`).

    With ``via_gateway`` (bent-pipe: no laser links) only satellites that see a gateway at a
    step are eligible then, as a bent-pipe scheduler can only assign those.

    Each slot is decided from the geometry of that whole slot only (never from a previous
    chunk's state), so the schedule does not depend on how the run is cut into chunks: the
    window (:func:`chunk_window`) holds the steps of the slots that straddle the chunk's edges.

    Parameters
    ----------
    plan : RunPlan
    window : ChunkWindow
        Positions and links of the chunk's window.
    lo, stop : int
        Steps of the chunk (``lo`` is the recomputed step before it, if any).
    """
    from .service import sched_kernel as K
    from .service.scheduler import north_of_site, schedule_bounds, slot_index

    sv = plan.service
    assert sv is not None
    a, b = _slot_window(plan, lo, stop)
    rw = window.r[window.steps(a, b)]
    tw = window.t_s[window.steps(a, b)]
    term = np.asarray(sv.terminals, dtype=np.int64)
    site_r = plan.sites.r_ecef_m[term]
    lk = window.links
    # The window's links of steps a .. b - 1 (its t_idx is sorted), terminals only, numbered
    # as in ``term``: one compiled pass, where ChunkWindow.gsl and int64 copies made a dozen.
    i0, i1 = (int(x) for x in np.searchsorted(lk.t_idx, [a - window.w0, b - window.w0]))
    eligible = np.zeros((0, 0), bool)
    if via_gateway:
        gw = plan.sites.of_kind("gateway")
        if plan.failures is not None:
            gw_up = ~plan.failures.site_failed(tw)[:, gw]
        else:
            gw_up = np.ones((tw.size, gw.size), bool)
        # Satellites that see a live gateway at each step.
        eligible = K.seen_by_sites(
            lk.t_idx,
            lk.site_idx,
            lk.sat_idx,
            i0,
            i1,
            a - window.w0,
            _site_column(window.sites, gw),
            gw_up,
            rw.shape[1],
        )
    n_max = i1 - i0
    ti = np.empty(n_max, np.int32)
    gi = np.empty(n_max, np.int32)
    si = np.empty(n_max, np.int32)
    el = np.empty(n_max, np.float64)
    n, ordered = K.take_links(
        lk.t_idx,
        lk.site_idx,
        lk.sat_idx,
        lk.elevation_rad,
        i0,
        i1,
        a - window.w0,
        _site_column(window.sites, term),
        eligible,
        ti,
        gi,
        si,
        el,
        0,
    )
    ti, gi, si, el = ti[:n], gi[:n], si[:n], el[:n]
    slot = slot_index(
        tw,
        slot_s=sv.slot_s,
        offset_s=sv.slot_offset_s,
        epoch_second_of_minute=sv.epoch_second_of_minute,
    )
    if not ordered:
        # find_gsls gives links by (step, site, satellite), which the scheduler's runs per
        # terminal and tie-breaks rely on; anything else is put in that order first.
        order = np.lexsort((si, gi, ti))
        ti, gi, si, el = ti[order], gi[order], si[order], el[order]
    # Only links that work can be scheduled (chunk_links drops the others from routing): a
    # denied or failed terminal gets none, and a satellite whose link a jammer or the link
    # budget closes is passed over for one that works, if any; else the terminal would hold a
    # dead link for the whole slot. ASSUMED: Starlink's controller does not publish this.
    shares = None
    if plan.denied is not None or plan.failures is not None or plan.profiles is not None:
        failed = None if plan.failures is None else plan.failures.site_failed(tw)
        usable, down, up = _link_usability(plan, ti, term[gi], si, rw, tw, failed)
        if plan.jammers:
            shares = (down[usable], up[usable])
        if not usable.all():
            ti, gi, si, el = ti[usable], gi[usable], si[usable], el[usable]
    bounds = np.searchsorted(ti, np.arange(tw.size + 1, dtype=ti.dtype)).astype(np.int64)
    north = None
    if sv.policy == "north":
        ti64, gi64, si64 = (x.astype(np.int64) for x in (ti, gi, si))
        d = rw[ti64, si64] - site_r[gi64]
        lat = plan.sites.lat_rad[term][gi64]
        lon = plan.sites.lon_rad[term][gi64]
        north_vec = np.stack(
            [-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)], axis=-1
        )
        cos_az = np.einsum("ij,ij->i", d, north_vec)
        north = north_of_site(np.where(cos_az >= 0.0, 0.0, np.pi), np.degrees(lat))
    # The slots' choices, and the satellites in view of each terminal at the chunk's steps
    # with their summed capacity (added in link order, as np.bincount with weights did).
    sch_serving, _, n_vis, cap_view = schedule_bounds(
        slot,
        term.size,
        bounds,
        gi,
        si,
        el,
        policy=sv.policy,  # type: ignore[arg-type]
        seed=plan.seed,
        north=north,
        n_sats=rw.shape[1],
        count_steps=(lo - a, stop - a),
        sat_capacity_bps=sv.sat_capacity_bps,
    )
    serving = sch_serving[lo - a : stop - a]
    handover = np.zeros(serving.shape, bool)
    handover[1:] = (serving[1:] != serving[:-1]) & (serving[1:] >= 0) & (serving[:-1] >= 0)
    down_share = up_share = None
    if shares is not None:
        # Each serving link's shares, looked up by (step, terminal, satellite): the links are
        # in that order, so their keys are sorted.
        n_s = rw.shape[1]
        key = (ti.astype(np.int64) * term.size + gi) * n_s + si
        t, g = np.nonzero(serving >= 0)
        want = ((t + (lo - a)) * term.size + g) * n_s + serving[t, g]
        pos = np.minimum(np.searchsorted(key, want), max(key.size - 1, 0))
        down_share = np.ones(serving.shape)
        up_share = np.ones(serving.shape)
        down_share[t, g] = shares[0][pos]
        up_share[t, g] = shares[1][pos]
    return Scheduled(
        serving=serving,
        handover=handover,
        n_visible=n_vis,
        capacity_in_view_bps=cap_view,
        down_share=down_share,
        up_share=up_share,
    )


def _site_column(sites: NDArray[np.int64], subset: NDArray[np.int64]) -> NDArray[np.int32]:
    """Position in ``subset`` (ascending) of each of ``sites`` (ascending), -1 where absent,
    shape ``(len(sites),)``: the table :meth:`ChunkWindow.gsl` builds."""
    table = np.full(sites.size, -1, np.int32)
    if subset.size:
        pos = np.minimum(np.searchsorted(subset, sites), subset.size - 1)
        hit = subset[pos] == sites
        table[hit] = pos[hit]
    return table


def restrict_to_schedule(
    plan: RunPlan, links: ChunkLinks, serving: NDArray[np.int32]
) -> ChunkLinks:
    """The chunk's links with each terminal's GSLs cut to its scheduled satellite."""
    from .service.sched_kernel import scheduled_links

    sv = plan.service
    assert sv is not None
    gsl = links.gsl
    # Terminal column (of ``serving``) of each GSL site, -1 for gateways and PoPs; one compiled
    # pass then finds the links to keep (serving_gsl_mask's rule, without its int64 copies and
    # gathers).
    term = np.asarray(sv.terminals, dtype=np.int64)
    col = np.full(int(max(links.gsl_sites.max(initial=-1), term.max(initial=-1))) + 1, -1, np.int64)
    col[term] = np.arange(term.size)
    keep = scheduled_links(gsl.t_idx, gsl.site_idx, gsl.sat_idx, col[links.gsl_sites], serving)
    if keep.size == gsl.t_idx.size:
        return links
    kept = gsl.select(keep)
    # The chunk graph holds only the links used at some step: a terminal's other satellites in
    # view (tens each) would be edges that every tree checks at every step, always infinite.
    return ChunkLinks(
        isl_edges=links.isl_edges,
        isl_delay_s=links.isl_delay_s,
        gsl=kept,
        gsl_cap_down=links.gsl_cap_down[keep],
        gsl_cap_up=links.gsl_cap_up[keep],
        gsl_sites=links.gsl_sites,
        bounds=np.searchsorted(kept.t_idx, np.arange(links.bounds.size, dtype=kept.t_idx.dtype)),
        site_failed=links.site_failed,
        n_sats=links.n_sats,
        libastro_lengths=links.libastro_lengths,
    )


def _traffic_rho(
    plan: RunPlan,
    routes: list[ModeRoutes],
    src_sat: NDArray[np.int32],
    dst_sat: NDArray[np.int32],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Utilisation of each pair's user access (terminal link and serving satellite's user
    downlink, the larger) and feeder access (the far satellite's feeder downlink), from the
    traffic model's max-min fair allocation, shape ``(M, T, P)`` each."""
    tp = plan.traffic
    sv = plan.service
    assert tp is not None and sv is not None
    n_t = src_sat.shape[1]
    s_n = plan.problem.n_sats
    site_res = tp.resources.site_down[plan.problem.pair_src]
    rho_u = np.zeros(src_sat.shape)
    rho_f = np.zeros(src_sat.shape)
    n_r = tp.resources.capacity_bps.size
    for m, x in enumerate(routes):
        util = np.zeros((n_t, n_r))
        for k, res, u in x.load_rows or []:
            util[k, res] = u
        ok_u, ok_f = src_sat[m] >= 0, dst_sat[m] >= 0
        tt = np.arange(n_t)[:, None]
        user = np.where(ok_u, util[tt, np.maximum(src_sat[m], 0)], 0.0)
        site = np.where(site_res[None, :] >= 0, util[:, np.maximum(site_res, 0)], 0.0)
        rho_u[m] = np.maximum(user, site)
        rho_f[m] = np.where(ok_f, util[tt, 2 * s_n + np.maximum(dst_sat[m], 0)], 0.0)
    return rho_u, rho_f


def service_step(
    plan: RunPlan,
    sched: Scheduled,
    r: NDArray[np.float64],
    *,
    hops: NDArray[np.int16],
    prop_rtt_s: NDArray[np.float64],
    src_sat: NDArray[np.int32],
    dst_sat: NDArray[np.int32],
    routes: list[ModeRoutes],
    drop: int,
) -> ServiceChunk:
    """RTT distribution, component means and speed tests (down and up) of a chunk's steps.

    Utilisations: from the traffic model when the scenario has ``[traffic]``; else from the
    load model when ``service.subscribers_per_km2`` is given (each satellite carries the
    busy-hour demand of ``density x footprint / satellites in view`` subscribers; the terminal's
    cell, served whole by one satellite, gets that satellite's capacity shared over the occupied
    cells it serves: :func:`starmesh.service.throughput.density_load`); else the sourced
    fallback ``service.utilisation``.

    Parameters
    ----------
    plan : RunPlan
    sched : Scheduled
    r : ndarray, shape (T, S, 3)
        Satellite positions of the chunk's steps (with the dropped first step).
    hops, prop_rtt_s, src_sat, dst_sat : ndarray, shape (M, T, P)
        Routing results (propagation RTT [s] along the scheduled path).
    routes : list of ModeRoutes
    drop : int
        Leading steps to drop (the recomputed step before the chunk).
    """
    from .constants import C_M_S, EARTH_MEAN_RADIUS_M
    from .service.latency import COMPONENTS, rtt_quantiles_s
    from .service.throughput import (
        DensityLoad,
        beam_capacity_bps,
        density_load,
        footprint_area_in_region_m2,
        footprint_half_angle_rad,
        speed_test_bps,
    )

    sv = plan.service
    assert sv is not None
    n_m, n_t, n_p = prop_rtt_s.shape
    term = sv.terminals
    serving = sched.serving
    tt, gg = np.nonzero(serving >= 0)
    ss = serving[tt, gg].astype(np.int64)
    d = r[tt, ss] - plan.sites.r_ecef_m[term][gg]
    dist = np.linalg.norm(d, axis=-1)
    up_s = np.full(serving.shape, np.nan)
    up_s[tt, gg] = dist / C_M_S
    elev = np.full(serving.shape, np.nan)
    elev[tt, gg] = np.arcsin(
        np.clip(np.einsum("ij,ij->i", d, plan.sites.up[term][gg]) / dist, -1.0, 1.0)
    )
    # Load model: utilisation of the serving satellite and of the terminal's cell beam.
    beam = np.zeros(serving.shape)
    beam_up = np.zeros(serving.shape)
    if tt.size:
        beam[tt, gg] = beam_capacity_bps(dist, elev[tt, gg], rain_db=sv.rain_db[gg])
        beam_up[tt, gg] = beam_capacity_bps(
            dist, elev[tt, gg], rain_db=sv.rain_up_db[gg], direction="up"
        )
        if sched.down_share is not None and sched.up_share is not None:
            # A jammed link keeps only part of its capacity (link budget with the jammers
            # over that without them, as routing's GSL capacities).
            beam[tt, gg] *= sched.down_share[tt, gg]
            beam_up[tt, gg] *= sched.up_share[tt, gg]
    # The serving satellite's own capacity (its generation's); unserved steps keep the fleet
    # mean only so that the arrays stay finite (their download is 0).
    sat_cap = np.full(serving.shape, float(np.mean(sv.sat_capacity_bps)))
    sat_cap[tt, gg] = sv.sat_capacity_bps[ss]
    # User uplink: the generation's downlink capacity x the uplink/downlink band ratio.
    sat_cap_up = sat_cap * sv.uplink_capacity_ratio
    if sv.subscribers_per_m2 is not None:
        alt = np.full(serving.shape, 550e3)
        r_sat = r[tt, ss]
        alt[tt, gg] = np.linalg.norm(r_sat, axis=-1) - EARTH_MEAN_RADIUS_M
        populated = None
        if sv.subscriber_cells is not None:
            # The part of the serving satellite's footprint where the subscribers live.
            populated = np.zeros(serving.shape)
            populated[tt, gg] = footprint_area_in_region_m2(
                np.arcsin(r_sat[:, 2] / np.linalg.norm(r_sat, axis=-1)),
                np.arctan2(r_sat[:, 1], r_sat[:, 0]),
                footprint_half_angle_rad(alt[tt, gg], sv.min_elevation_rad),
                sv.subscriber_cells,
            )
        dens = sv.subscribers_per_m2

        def _load(
            demand: float, beam_: NDArray[np.float64], cap: NDArray[np.float64], k: float
        ) -> DensityLoad:
            # One direction of the load model: the same footprint, cells served and partition
            # (the uplink scales every satellite's capacity by one ratio, so the shares of the
            # capacity in view are unchanged).
            return density_load(
                subscribers_per_m2=dens,
                demand_bps=demand,
                altitude_m=alt,
                min_elevation_rad=sv.min_elevation_rad,
                cell_area_m2=sv.cell_area_m2[None, :],
                n_visible=sched.n_visible,
                beam_capacity=beam_,
                beams_per_cell=sv.beams_per_cell,
                sat_capacity_bps=cap,
                capacity_in_view_bps=(
                    sched.capacity_in_view_bps * k if sv.cell_partition == "capacity" else None
                ),
                populated_m2=populated,
            )

        load = _load(sv.demand_bps, beam, sat_cap, 1.0)
        cell_cap, cell_offered = load.cell_capacity_bps, load.cell_offered_bps
        sat_offered = load.sat_offered_bps
        with np.errstate(divide="ignore", invalid="ignore"):
            rho_sat = np.where(sat_cap > 0, sat_offered / sat_cap, np.inf)
            rho_cell = np.where(cell_cap > 0, cell_offered / cell_cap, 1.0)
        load_up = _load(sv.up_demand_bps, beam_up, sat_cap_up, sv.uplink_capacity_ratio)
        cell_cap_up, cell_offered_up = load_up.cell_capacity_bps, load_up.cell_offered_bps
        sat_offered_up = load_up.sat_offered_bps
    else:
        rho_sat = np.full(serving.shape, sv.params.utilisation)
        rho_cell = rho_sat
        cell_cap = beam * sv.beams_per_cell
        sat_offered = rho_sat * sat_cap
        cell_offered = rho_cell * cell_cap
        # The fallback utilisation holds for every access link, the uplinks too.
        cell_cap_up = beam_up * sv.beams_per_cell
        sat_offered_up = rho_sat * sat_cap_up
        cell_offered_up = rho_cell * cell_cap_up
    download = speed_test_bps(
        cell_capacity=cell_cap,
        cell_offered_bps=cell_offered,
        sat_capacity_bps=sat_cap,
        sat_offered_bps=sat_offered,
        terminal_max_bps=sv.terminal_max_bps,
    )
    download = np.where(serving >= 0, download, 0.0)
    upload = speed_test_bps(
        cell_capacity=cell_cap_up,
        cell_offered_bps=cell_offered_up,
        sat_capacity_bps=sat_cap_up,
        sat_offered_bps=sat_offered_up,
        terminal_max_bps=sv.terminal_up_max_bps,
    )
    upload = np.where(serving >= 0, upload, 0.0)
    # Per pair: the source terminal's access link and load; the far terminal's mean access.
    pt, pf = sv.pair_terminal, sv.pair_far_terminal
    has_t, has_f = pt >= 0, pf >= 0
    user_prop = np.where(has_t[None, :], up_s[:, np.maximum(pt, 0)], 0.0)
    far_prop = np.where(has_f[None, :], up_s[:, np.maximum(pf, 0)], 0.0)
    if plan.traffic is not None:
        rho_u, rho_f = _traffic_rho(plan, routes, src_sat, dst_sat)
    else:
        ru = np.where(has_t[None, :], np.maximum(rho_cell, rho_sat)[:, np.maximum(pt, 0)], 0.0)
        rf = np.where(has_t[None, :], rho_sat[:, np.maximum(pt, 0)], sv.params.utilisation)
        rho_u = np.broadcast_to(ru, (n_m, n_t, n_p)).copy()
        rho_f = np.broadcast_to(rf, (n_m, n_t, n_p)).copy()
    # Links on the path that are not ISLs: two GSLs, and the fibre to a PoP.
    to_pop = np.asarray(plan.sites.kinds)[plan.problem.pair_dst] == "pop"
    n_isl = np.maximum(hops.astype(np.float64) - 2.0 - to_pop[None, None, :], 0.0)
    p = sv.params
    far_access = np.where(has_f[None, :], 2.0 * far_prop + (p.grant_frames + 3.0) * p.frame_s, 0.0)
    q_out = np.empty((n_m, len(sv.quantiles), n_t, n_p))
    mean_out = np.empty((n_m, n_t, n_p, len(COMPONENTS)))
    for m in range(n_m):
        q, mean = rtt_quantiles_s(
            prop_rtt_s[m],
            np.nan_to_num(user_prop, nan=0.0),
            n_isl[m],
            params=p,
            q=sv.quantiles,
            rho_user=np.clip(rho_u[m], 0.0, 1.0),
            rho_feeder=np.clip(rho_f[m], 0.0, 1.0),
            internet_s=sv.internet_s[None, :],
            seed=plan.seed,
        )
        q_out[m] = q + np.nan_to_num(far_access, nan=0.0)[None]
        mean[..., 1] += np.nan_to_num(far_access, nan=0.0)
        mean_out[m] = mean
    k = slice(drop, None)
    return ServiceChunk(
        rtt_q_s=q_out[:, :, k],
        mean_s=mean_out[:, k],
        serving=serving[k],
        handover=sched.handover[k],
        download_bps=download[k],
        rho_user=rho_u[:, k],
        rho_feeder=rho_f[:, k],
        upload_bps=upload[k],
    )


# --- per-terminal visibility ------------------------------------------------------------------


def visibility_terminals(plan: RunPlan) -> NDArray[np.int64]:
    """Site indices of the terminals whose visibility a run records, shape (G,)."""
    kinds = np.asarray(plan.sites.kinds)
    return np.flatnonzero((kinds == "terminal") & plan.problem.gsl_site)


def _slot_of(
    steps: NDArray[np.int64], step_s: float, slot_s: float, shift_s: float
) -> NDArray[np.int64]:
    # Slots are on Starlink's UTC boundaries (coverage.slot_shift_s) and read from absolute
    # step indices, so a step's slot never depends on where a chunk starts.
    return np.floor((steps * step_s + shift_s) / slot_s + 1e-9).astype(np.int64)


def chunk_visibility(
    plan: RunPlan, start: int, links: ChunkLinks, window: ChunkWindow
) -> TerminalVisibility | None:
    """Satellites in view, serving satellite and handovers of every terminal over a chunk.

    In view means a usable GSL candidate of the chunk (mask or range rule, failures, denied
    areas and link budgets applied, as routing sees them). The serving satellite follows
    :func:`starmesh.coverage.terminal_visibility_links` (highest elevation at each
    ``plan.visibility_slot_s`` slot, held within the slot). The serving satellite at a step
    depends on the steps since its slot began, so the steps from the start of the slot of
    ``start - 1`` (in the window, :func:`chunk_window`) are read as well when they precede the
    chunk: the result does not depend on how the run is chunked.

    Parameters
    ----------
    plan : RunPlan
    start : int
        First step of the chunk; its steps begin at ``lo = max(start - 1, 0)``.
    links : ChunkLinks
        The chunk's links (:func:`chunk_links` on steps ``lo ..``).
    window : ChunkWindow

    Returns
    -------
    TerminalVisibility or None
        The chunk's steps from ``start`` (from 0 when ``start == 0``); None when the run has
        no terminal.
    """
    from .service.sched_kernel import take_links

    terminals = visibility_terminals(plan)
    if terminals.size == 0:
        return None
    step_s, slot_s = plan.grid.step_s, plan.visibility_slot_s
    shift = slot_shift_s(plan.grid.epoch)
    lo = max(start - 1, 0)
    s0 = _visibility_start(plan, lo)
    # The usable terminal GSLs of steps s0 .. stop - 1 (those before lo found here, with the
    # rules chunk_links applies to GSLs), terminals numbered 0 .. G - 1, written by one compiled
    # pass per part into one set of arrays (no int64 copies, no concatenation).
    gsl_sites = links.gsl_sites
    col = np.full(len(plan.sites), -1, np.int32)
    col[terminals] = np.arange(terminals.size, dtype=np.int32)
    column = col[gsl_sites]
    parts = []
    if s0 < lo:
        rows = window.steps(s0, lo)
        t_h = window.t_s[rows]
        site_failed = plan.failures.site_failed(t_h) if plan.failures is not None else None
        gsl_h, _, _ = _usable_gsls(
            plan, window.gsl(s0, lo, gsl_sites), gsl_sites, window.r[rows], t_h, site_failed
        )
        parts.append((gsl_h, 0))
    parts.append((links.gsl, lo - s0))
    n_max = sum(x.t_idx.size for x, _ in parts)
    t = np.empty(n_max, np.int32)
    g = np.empty(n_max, np.int32)
    s = np.empty(n_max, np.int32)
    el = np.empty(n_max, np.float64)
    n = 0
    for part, t_off in parts:
        n, _ = take_links(
            part.t_idx,
            part.site_idx,
            part.sat_idx,
            part.elevation_rad,
            0,
            part.t_idx.size,
            -t_off,
            column,
            np.zeros((0, 0), bool),
            t,
            g,
            s,
            el,
            n,
        )
    t, g, s, el = t[:n], g[:n], s[:n], el[:n]
    n_steps_chunk = links.bounds.size - 1
    n_t = n_steps_chunk + (lo - s0)
    vis = terminal_visibility_links(
        t,
        g,
        s,
        el,
        n_steps=n_t,
        n_sites=terminals.size,
        step_s=step_s,
        slot_s=slot_s,
        t0_s=s0 * step_s + shift,
    )
    drop = start - s0
    return TerminalVisibility(
        vis.n_in_view[drop:],
        vis.serving[drop:],
        vis.serving_elevation_rad[drop:],
        vis.handover[drop:],
        vis.step_s,
    )
