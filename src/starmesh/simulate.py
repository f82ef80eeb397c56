"""The one orchestrator: scenario -> plan -> chunks of steps -> run folder.

Everything that can fail on bad input happens in :func:`build_plan`, before any file is written.
The run is then a loop over time chunks; each chunk is propagated, routed and written (atomically:
temporary name, then rename) before the next, so memory stays flat and an interrupted run leaves
only complete chunks.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tomli_w
from numpy.typing import NDArray

from . import __version__
from ._sssp import sssp_full, sssp_update, walk_paths
from .constants import LIBASTRO_EARTH_RADIUS_KM, LIBASTRO_FLATTENING, SGP4_WGS72_RADIUS_KM
from .constellation import Constellation, WalkerShell, preset_shells
from .elements import ElementSet, load_elements
from .errors import RunFolderError, ScenarioError
from .ground import (
    Site,
    SiteKind,
    Sites,
    gateway_by_name,
    hypatia_cities,
    nearest,
    resolve_city,
    top_cities,
)
from .propagation import Propagator
from .routing import (
    ChunkGraph,
    RoutingProblem,
    build_chunk_graph,
    fibre_delay_s,
    space_delay_s,
)
from .scenario import Scenario, SiteEntry
from .timegrid import TimeGrid, parse_utc
from .topology import (
    GslRule,
    fibre_links,
    find_gsls,
    isl_lengths_m,
    max_isl_range_m,
    nearest_k_edges,
    plus_grid_edges,
)

#: Positions held per chunk are kept near this size [bytes] when chunk_steps is not given.
_CHUNK_POSITION_BYTES = 32 * 2**20
#: Series of RTTs larger than this go to a scratch file on disk instead of memory [bytes].
_SERIES_IN_MEMORY_BYTES = 512 * 2**20


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs, resolved and validated."""

    scenario: Scenario
    grid: TimeGrid
    constellation: Constellation
    sites: Sites
    problem: RoutingProblem
    isl_edges: NDArray[np.int32]
    isl_max_range_m: float
    gsl_rule: GslRule
    modes: tuple[str, ...]
    chunk_steps: int
    series_idx: NDArray[np.int64]

    @property
    def pair_names(self) -> tuple[list[str], list[str]]:
        """Source and destination site names of every pair."""
        names = self.sites.names
        return (
            [names[i] for i in self.problem.pair_src],
            [names[i] for i in self.problem.pair_dst],
        )


# --- Plan ------------------------------------------------------------------------------------


def _resolve_site(entry: SiteEntry, kind: SiteKind, where: str) -> Site:
    try:
        if isinstance(entry, str):
            if kind == "gateway":
                return gateway_by_name(entry)
            site = resolve_city(entry)
        elif entry.city is not None:
            site = resolve_city(entry.city)
        elif entry.gateway is not None:
            site = gateway_by_name(entry.gateway)
        else:
            assert entry.lat_deg is not None and entry.lon_deg is not None
            assert entry.name is not None
            site = Site(entry.name, "terminal", entry.lat_deg, entry.lon_deg, entry.alt_m)
        if not isinstance(entry, str) and entry.name is not None:
            site = Site(
                entry.name, site.kind, site.lat_deg, site.lon_deg, site.alt_m, site.approximate
            )
    except ScenarioError as exc:
        raise ScenarioError(where, exc.message) from None
    return Site(site.name, kind, site.lat_deg, site.lon_deg, site.alt_m, site.approximate)


def _build_sites(scenario: Scenario) -> Sites:
    g = scenario.ground
    sites: list[Site] = []
    for i, e in enumerate(g.terminals):
        sites.append(_resolve_site(e, "terminal", f"ground.terminals[{i}]"))
    if g.terminal_dataset == "hypatia-top100":
        sites.extend(hypatia_cities())
    elif g.terminal_dataset is not None:
        sites.extend(top_cities(int(g.terminal_dataset.removeprefix("top-cities:"))))
    for i, e in enumerate(g.gateways):
        sites.append(_resolve_site(e, "gateway", f"ground.gateways[{i}]"))
    for i, e in enumerate(g.pops):
        sites.append(_resolve_site(e, "pop", f"ground.pops[{i}]"))
    if scenario.earth_model == "pyephem":
        return Sites.from_sites(sites, a_m=LIBASTRO_EARTH_RADIUS_KM * 1e3, f=LIBASTRO_FLATTENING)
    return Sites.from_sites(sites)


def make_propagator(
    scenario: Scenario, constellation: Constellation, epoch: datetime
) -> Propagator:
    """The scenario's propagator (Earth model and UT1 applied)."""
    scale = 1.0
    if scenario.earth_model == "pyephem":
        scale = LIBASTRO_EARTH_RADIUS_KM / SGP4_WGS72_RADIUS_KM
    return Propagator(constellation, epoch, dut1_s=scenario.run.dut1_s, scale=scale)


def _build_constellation(scenario: Scenario, tle: ElementSet | None) -> Constellation:
    c = scenario.constellation
    if tle is not None:
        return Constellation.from_elements(Path(tle.source).stem, tle)
    if c.tle_file is not None:
        elements = load_elements(c.tle_file, skip_bad=c.skip_bad_tle)
        return Constellation.from_elements(Path(c.tle_file).stem, elements)
    if c.preset is not None:
        shells = preset_shells(c.preset)
        name = c.preset
    else:
        assert c.shells is not None
        shells = [
            WalkerShell(
                name=s.name or f"shell{i}",
                n_planes=s.planes,
                sats_per_plane=s.sats_per_plane,
                phasing=s.phasing,
                altitude_m=s.altitude_km * 1e3,
                inclination_deg=s.inclination_deg,
                pattern=s.pattern,
                layout=c.layout,
                mean_motion_rev_day=s.mean_motion_rev_day,
            )
            for i, s in enumerate(c.shells)
        ]
        name = scenario.name
    return Constellation.from_shells(name, shells, epoch=scenario.time.start_utc)


def _pairs(scenario: Scenario, sites: Sites) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    rule = scenario.routing.pairs
    terminals = sites.of_kind("terminal")
    if isinstance(rule, list):
        src, dst = [], []
        for i, (a, b) in enumerate(rule):
            try:
                src.append(sites.index(a))
                dst.append(sites.index(b))
            except ScenarioError as exc:
                raise ScenarioError(f"routing.pairs[{i}]", exc.message) from None
            if a == b:
                raise ScenarioError(f"routing.pairs[{i}]", f"pair ({a!r}, {b!r}) has one site")
        return np.array(src, np.int64), np.array(dst, np.int64)
    if rule == "terminal-to-nearest-pop":
        pops = sites.of_kind("pop")
        if pops.size == 0:
            raise ScenarioError(
                "routing.pairs",
                "'terminal-to-nearest-pop' needs at least one PoP: add ground.pops = [\"Warsaw\"]",
            )
        j = nearest(sites, terminals, sites, pops)
        return terminals.astype(np.int64), j.astype(np.int64)
    iu, ju = np.triu_indices(terminals.size, k=1)
    if iu.size == 0:
        raise ScenarioError("routing.pairs", "'all-terminal-pairs' needs at least 2 terminals")
    return terminals[iu].astype(np.int64), terminals[ju].astype(np.int64)


def _series(
    scenario: Scenario, sites: Sites, src: NDArray[np.int64], dst: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Indices of the pairs whose full RTT series are written."""
    want = scenario.routing.series_pairs
    n_p = src.size
    if want == "all":
        return np.arange(n_p, dtype=np.int64)
    if isinstance(want, int):
        if want > n_p:
            raise ScenarioError(
                "routing.series_pairs", f"asks for {want} pairs but the run has {n_p}: lower it"
            )
        rng = np.random.default_rng(scenario.seed)
        return np.sort(rng.choice(n_p, size=want, replace=False)).astype(np.int64)
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(src, dst, strict=True))}
    out = []
    for i, (a, b) in enumerate(want):
        try:
            key = (sites.index(a), sites.index(b))
        except ScenarioError as exc:
            raise ScenarioError(f"routing.series_pairs[{i}]", exc.message) from None
        j = index.get(key, index.get(key[::-1]))
        if j is None:
            raise ScenarioError(
                f"routing.series_pairs[{i}]", f"({a!r}, {b!r}) is not one of the routed pairs"
            )
        out.append(j)
    return np.unique(np.array(out, np.int64))


def build_plan(scenario: Scenario, *, tle: ElementSet | None = None) -> RunPlan:
    """Resolve a scenario into a :class:`RunPlan`; every input error is raised here.

    Parameters
    ----------
    scenario : Scenario
    tle : ElementSet, optional
        Replaces the scenario's constellation (``starmesh run --tle``); +Grid ISLs then become
        nearest-4 ISLs, since real satellites carry no plane/slot numbering.

    Raises
    ------
    ScenarioError, TLEFormatError, StarmeshError
    """
    grid = TimeGrid.from_utc(
        parse_utc(scenario.time.start_utc),
        duration_s=scenario.time.duration_s,
        step_s=scenario.time.step_s,
    )
    constellation = _build_constellation(scenario, tle)
    sites = _build_sites(scenario)
    links = scenario.links
    propagator = make_propagator(scenario, constellation, grid.epoch)
    if links.isl_max_range_km is not None:
        isl_range = links.isl_max_range_km * 1e3
    elif constellation.shells:
        isl_range = max_isl_range_m(min(s.shell.altitude_m for s in constellation.shells))
    else:
        isl_range = max_isl_range_m(500e3)
    if links.isl == "none":
        isl_edges = np.zeros((0, 2), np.int32)
    elif links.isl == "plus-grid" and constellation.shells:
        isl_edges = plus_grid_edges(constellation)
    else:
        # nearest-k, or +Grid asked of satellites without a plane/slot layout (TLE sets).
        r0, ok0 = propagator.positions_ecef_m(grid.t_s(0, 1))
        isl_edges = nearest_k_edges(r0[0], ok0[0], k=links.isl_k, max_range_m=isl_range)
    if links.gsl_rule == "max-range":
        assert links.gsl_max_range_km is not None
        rule = GslRule(max_range_m=links.gsl_max_range_km * 1e3)
    else:
        rule = GslRule(min_elevation_rad=math.radians(links.min_elevation_deg))
    gw = sites.of_kind("gateway")
    pop = sites.of_kind("pop")
    f_gw, f_pop, f_len = fibre_links(
        sites.lat_rad,
        sites.lon_rad,
        gw,
        pop,
        route_factor=links.fibre_route_factor,
        policy=links.gateway_pop,
    )
    src, dst = _pairs(scenario, sites)
    modes = tuple(scenario.routing.modes)
    if "bent-pipe" in modes and gw.size == 0 and pop.size and np.isin(dst, pop).any():
        raise ScenarioError(
            "routing.modes",
            "'bent-pipe' to a PoP needs gateways: add ground.gateways = [\"Wola-Krobowska\"]",
        )
    problem = RoutingProblem(
        n_sats=constellation.n_sats,
        n_sites=len(sites),
        gsl_site=np.array([k != "pop" for k in sites.kinds], dtype=bool),
        isl_edges=isl_edges,
        fibre_gw=f_gw,
        fibre_pop=f_pop,
        fibre_delay_s=fibre_delay_s(f_len),
        pair_src=src,
        pair_dst=dst,
    )
    chunk = scenario.run.chunk_steps or max(
        1, min(600, _CHUNK_POSITION_BYTES // (24 * max(constellation.n_sats, 1)))
    )
    series_idx = _series(scenario, sites, src, dst)
    return RunPlan(
        series_idx=series_idx,
        scenario=scenario,
        grid=grid,
        constellation=constellation,
        sites=sites,
        problem=problem,
        isl_edges=isl_edges,
        isl_max_range_m=isl_range,
        gsl_rule=rule,
        modes=modes,
        chunk_steps=chunk,
    )


# --- Chunks ----------------------------------------------------------------------------------


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
    fstate_last: dict[str, NDArray[np.int32]] | None = None


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
    if plan.scenario.routing.forwarding_state:
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
    graph_node = np.where(nodes < s, nodes, nodes + g)
    e = pedge[rows][:, graph_node]
    nh = np.where(e >= 0, graph.edge_src[np.maximum(e, 0)], -1).astype(np.int64)
    nh = np.where(nh >= s + g, nh - g, nh)  # an in-node (gateway via fibre) -> its site id
    return nh.astype(np.int32)


def compute_chunk(
    plan: RunPlan,
    start: int,
    stop: int,
    propagator: Propagator | None = None,
    fstate_prev: dict[str, NDArray[np.int32]] | None = None,
) -> ChunkResult:
    """Propagate, build links and route steps ``start .. stop - 1``.

    The step before ``start`` is routed as well (and dropped) so that path and forwarding
    changes at the chunk's first step are detected; chunks are therefore independent of each
    other. Within the chunk the graph structure is fixed and each step's shortest-path trees are
    updated from the previous step's (:mod:`starmesh._sssp`).

    Forwarding-state deltas at ``start`` are taken against ``fstate_prev`` (the previous chunk's
    last state, :attr:`ChunkResult.fstate_last`) when given: where two next hops tie exactly,
    the recomputed step ``start - 1`` may pick the other one, and the delta must describe the
    change from the state a reader of the earlier chunks holds.
    """
    prop = propagator or make_propagator(plan.scenario, plan.constellation, plan.grid.epoch)
    lo = max(start - 1, 0)
    t_all = plan.grid.t_s(lo, stop)
    r, ok = prop.positions_ecef_m(t_all)
    n_t = t_all.size
    problem = plan.problem
    if plan.isl_edges.size:
        length = isl_lengths_m(r, plan.isl_edges)
        both = ok[:, plan.isl_edges[:, 0]] & ok[:, plan.isl_edges[:, 1]]
        isl_delay = np.where(both & (length <= plan.isl_max_range_m), space_delay_s(length), np.inf)
    else:
        isl_delay = np.full((n_t, 0), np.inf)
    gsl_sites = np.flatnonzero(problem.gsl_site)
    gsl = find_gsls(r, ok, plan.sites.r_ecef_m[gsl_sites], plan.sites.up[gsl_sites], plan.gsl_rule)
    bounds = np.searchsorted(gsl.t_idx, np.arange(n_t + 1))
    key = gsl_sites[gsl.site_idx].astype(np.int64) * problem.n_sats + gsl.sat_idx
    links, link_of = np.unique(key, return_inverse=True)
    gsl_delay = space_delay_s(gsl.length_m)
    orient = _orientation(plan)
    roots = problem.out_node(orient.roots)
    n_m, n_p, n_k = len(plan.modes), problem.pair_src.size, roots.size
    shape = (n_m, n_t, n_p)
    rtt = np.empty(shape)
    hops = np.empty(shape, np.int16)
    near_target = np.empty(shape, np.int32)
    near_root = np.empty(shape, np.int32)
    phash = np.empty(shape, np.uint64)
    want_fstate = plan.scenario.routing.forwarding_state
    fstate: dict[str, tuple[NDArray[Any], ...]] = {}
    fstate_last: dict[str, NDArray[np.int32]] = {}
    for m, mode in enumerate(plan.modes):
        graph = build_chunk_graph(
            problem, links // problem.n_sats, links % problem.n_sats, with_isl=mode == "isl"
        )
        dist = np.empty((n_k, problem.n_nodes))
        pedge = np.empty((n_k, problem.n_nodes), np.int64)
        prev_nh: NDArray[np.int32] | None = None
        rows: list[tuple[NDArray[Any], ...]] = []
        for k in range(n_t):
            a, b = bounds[k], bounds[k + 1]
            gsl_w = np.full(links.size, np.inf)
            gsl_w[link_of[a:b]] = gsl_delay[a:b]
            w = graph.weights(isl_delay[k] if mode == "isl" else None, gsl_w)
            if k == 0:
                sssp_full(graph.indptr, graph.indices, w, roots, dist, pedge)
                todo = np.ones(n_p, bool)
            else:
                changes = sssp_update(
                    graph.indptr, graph.indices, graph.edge_src, w, roots, dist, pedge
                )
                # Pairs in unchanged trees keep last step's path: copy instead of walking.
                todo = changes[orient.row] > 0
                for arr in (hops, near_target, near_root, phash):
                    arr[m, k] = arr[m, k - 1]
            rtt[m, k] = 2.0 * dist[orient.row, orient.target]
            walk_paths(
                graph.edge_src,
                pedge,
                dist,
                orient.row,
                orient.target,
                problem.n_sats,
                hops[m, k],
                near_target[m, k],
                near_root[m, k],
                phash[m, k],
                todo,
            )
            if want_fstate:
                # Next hops change only in trees that changed.
                if prev_nh is None:
                    redo = np.arange(n_k)
                    nh = _next_hops(plan, pedge, graph, redo)
                else:
                    redo = np.flatnonzero(changes > 0)
                    nh = prev_nh.copy()
                    nh[redo] = _next_hops(plan, pedge, graph, redo)
                if k >= start - lo:
                    base = prev_nh
                    if k == start - lo and start > 0 and fstate_prev is not None:
                        base, redo = fstate_prev[mode], np.arange(n_k)
                    first = start == 0 and k == 0
                    rows.append(
                        _fstate_rows(plan, orient, t_all[k], nh, None if first else base, redo)
                    )
                prev_nh = nh
        if want_fstate:
            fstate[mode] = tuple(np.concatenate(col) for col in zip(*rows, strict=True))
            assert prev_nh is not None
            fstate_last[mode] = prev_nh
    changed = np.zeros(shape, dtype=bool)
    changed[:, 1:] = phash[:, 1:] != phash[:, :-1]
    if orient.reverse:
        src_sat, dst_sat = near_target, near_root
    else:
        src_sat, dst_sat = near_root, near_target
    drop = start - lo
    return ChunkResult(
        start=start,
        stop=stop,
        t_s=t_all[drop:],
        rtt_s=rtt[:, drop:],
        hops=hops[:, drop:],
        src_sat=src_sat[:, drop:],
        dst_sat=dst_sat[:, drop:],
        changed=changed[:, drop:],
        fstate=fstate if want_fstate else None,
        fstate_last=fstate_last if want_fstate else None,
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


# --- Writing ---------------------------------------------------------------------------------

RTT_SCHEMA = pa.schema(
    [
        ("t_s", pa.float64()),
        ("mode", pa.string()),
        ("src", pa.string()),
        ("dst", pa.string()),
        ("rtt_ms", pa.float64()),
        ("hops", pa.int16()),
        ("src_sat", pa.int32()),
        ("dst_sat", pa.int32()),
        ("path_changed", pa.bool_()),
    ]
)


def chunk_table(plan: RunPlan, res: ChunkResult) -> pa.Table:
    """Rows of one chunk, ordered by time, then mode, then pair; nulls where unreachable."""
    n_m, n_t, _n_p = res.rtt_s.shape
    src_names, dst_names = plan.pair_names
    sel = plan.series_idx
    n_p = sel.size
    pair = np.tile(sel, n_t * n_m)
    mode_idx = np.tile(np.repeat(np.arange(n_m), n_p), n_t)

    def rows(x: NDArray[Any]) -> NDArray[Any]:
        return np.ascontiguousarray(np.transpose(x[:, :, sel], (1, 0, 2))).reshape(-1)

    rtt = rows(res.rtt_s) * 1e3
    unreachable = ~np.isfinite(rtt)
    return pa.table(
        {
            "t_s": np.repeat(res.t_s, n_m * n_p),
            "mode": pa.array(list(plan.modes)).take(mode_idx),
            "src": pa.array(src_names).take(pair),
            "dst": pa.array(dst_names).take(pair),
            "rtt_ms": pa.array(rtt, mask=unreachable),
            "hops": pa.array(rows(res.hops), mask=unreachable),
            "src_sat": pa.array(rows(res.src_sat), mask=unreachable),
            "dst_sat": pa.array(rows(res.dst_sat), mask=unreachable),
            "path_changed": pa.array(rows(res.changed)),
        },
        schema=RTT_SCHEMA,
    )


FSTATE_SCHEMA = pa.schema(
    [
        ("t_s", pa.float64()),
        ("mode", pa.string()),
        ("node", pa.int32()),
        ("dst", pa.int32()),
        ("next_hop", pa.int32()),
    ]
)


def fstate_table(plan: RunPlan, res: ChunkResult) -> pa.Table:
    """Forwarding-state entries of one chunk (all at the run's first step, then changes)."""
    assert res.fstate is not None
    parts = []
    for mode, (t_s, node, dst, nh) in res.fstate.items():
        parts.append(
            pa.table(
                {
                    "t_s": t_s,
                    "mode": pa.array([mode]).take(np.zeros(t_s.size, np.int64)),
                    "node": node,
                    "dst": dst,
                    "next_hop": nh,
                },
                schema=FSTATE_SCHEMA,
            )
        )
    return pa.concat_tables(parts)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_write_table(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


class SeriesStore:
    """RTT series of every (mode, pair), ``(M, P, T)`` float32 [s], for exact statistics.

    Held in memory when small. Otherwise each chunk is appended to an unnamed scratch file (it
    vanishes with the process, however that ends) and read back a block of pairs at a time, so a
    day-long run's memory does not grow with its duration.
    """

    def __init__(self, n_m: int, n_p: int, n_t: int, scratch_dir: Path) -> None:
        self.shape = (n_m, n_p, n_t)
        self._mem: NDArray[np.float32] | None = None
        self._file: Any = None
        self._chunks: list[tuple[int, int, int]] = []
        if 4 * n_m * n_p * n_t > _SERIES_IN_MEMORY_BYTES:
            self._file = tempfile.TemporaryFile(dir=scratch_dir)
        else:
            self._mem = np.empty(self.shape, np.float32)
        self.changes = np.zeros((n_m, n_p), np.int64)
        self.rtt_min = np.full((n_m, n_p), np.inf)
        self.rtt_max = np.full((n_m, n_p), -np.inf)

    def add(self, res: ChunkResult) -> None:
        """Record one chunk."""
        block = np.ascontiguousarray(np.transpose(res.rtt_s, (0, 2, 1)), dtype=np.float32)
        if self._mem is not None:
            self._mem[:, :, res.start : res.stop] = block
        else:
            offset = self._file.seek(0, os.SEEK_END)
            self._file.write(block.tobytes())
            self._chunks.append((res.start, res.stop, offset))
        self.changes += res.changed.sum(axis=1)
        with np.errstate(invalid="ignore"):
            reach = np.isfinite(res.rtt_s)
            self.rtt_min = np.minimum(self.rtt_min, np.where(reach, res.rtt_s, np.inf).min(axis=1))
            self.rtt_max = np.maximum(self.rtt_max, np.where(reach, res.rtt_s, -np.inf).max(axis=1))

    def rows(self, m: int, p0: int, p1: int) -> NDArray[np.float64]:
        """Series of pairs ``p0 .. p1 - 1`` of mode ``m``, shape ``(p1 - p0, T)`` [s]."""
        _n_m, n_p, n_t = self.shape
        if self._mem is not None:
            return self._mem[m, p0:p1].astype(np.float64)
        out = np.empty((p1 - p0, n_t))
        for a, b, offset in self._chunks:
            tc = b - a
            self._file.seek(offset + 4 * tc * (m * n_p + p0))
            raw = self._file.read(4 * tc * (p1 - p0))
            out[:, a:b] = np.frombuffer(raw, np.float32).reshape(p1 - p0, tc)
        return out

    def close(self) -> None:
        """Drop the scratch file."""
        if self._file is not None:
            self._file.close()


def summarize(plan: RunPlan, store: SeriesStore) -> dict[str, Any]:
    """Per (mode, pair) statistics: min/median/p95/max RTT [ms], availability, path changes."""
    src_names, dst_names = plan.pair_names
    _n_m, n_p, n_t = store.shape
    out: list[dict[str, Any]] = []
    block = max(1, (64 * 2**20) // (8 * max(n_t, 1)))
    for m, mode in enumerate(plan.modes):
        for b0 in range(0, n_p, block):
            x = store.rows(m, b0, min(b0 + block, n_p))
            finite = np.isfinite(x)
            avail = finite.sum(axis=1) / n_t
            x[~finite] = np.nan
            with warnings.catch_warnings():
                # All-unreachable pairs: nan statistics, reported as null below.
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(x, axis=1)
                p95 = np.nanpercentile(x, 95, axis=1)
            for j in range(x.shape[0]):
                p = b0 + j
                reach = avail[j] > 0
                out.append(
                    {
                        "mode": mode,
                        "src": src_names[p],
                        "dst": dst_names[p],
                        "rtt_min_ms": float(store.rtt_min[m, p] * 1e3) if reach else None,
                        "rtt_median_ms": float(med[j] * 1e3) if reach else None,
                        "rtt_p95_ms": float(p95[j] * 1e3) if reach else None,
                        "rtt_max_ms": float(store.rtt_max[m, p] * 1e3) if reach else None,
                        "availability": float(avail[j]),
                        "path_changes": int(store.changes[m, p]),
                    }
                )
    return {
        "starmesh_version": __version__,
        "scenario": plan.scenario.name,
        "start_utc": plan.grid.epoch.isoformat().replace("+00:00", "Z"),
        "n_steps": plan.grid.n_steps,
        "step_s": plan.grid.step_s,
        "n_sats": plan.constellation.n_sats,
        "n_sites": len(plan.sites),
        "n_isl": int(plan.isl_edges.shape[0]),
        "modes": list(plan.modes),
        "pairs": out,
    }


# --- Resolved scenario -----------------------------------------------------------------------


def resolved_scenario(plan: RunPlan) -> dict[str, Any]:
    """The scenario as run: presets expanded to shells, names to coordinates, pairs listed."""
    sc = plan.scenario
    data = sc.model_dump(mode="json", exclude_none=True)
    cons = plan.constellation
    c: dict[str, Any] = {}
    if cons.shells:
        c["layout"] = cons.shells[0].shell.layout
        c["shells"] = [
            {
                k: v
                for k, v in {
                    "name": s.shell.name,
                    "planes": s.shell.n_planes,
                    "sats_per_plane": s.shell.sats_per_plane,
                    "phasing": s.shell.phasing,
                    "altitude_km": s.shell.altitude_m / 1e3,
                    "inclination_deg": s.shell.inclination_deg,
                    "pattern": s.shell.pattern,
                    "mean_motion_rev_day": s.shell.mean_motion_rev_day,
                }.items()
                if v is not None
            }
            for s in cons.shells
        ]
    else:
        c["tle_file"] = str(Path(cons.source).resolve())
        c["skip_bad_tle"] = sc.constellation.skip_bad_tle
    data["constellation"] = c
    ground: dict[str, list[dict[str, Any]]] = {"terminals": [], "gateways": [], "pops": []}
    key = {"terminal": "terminals", "gateway": "gateways", "pop": "pops"}
    s = plan.sites
    for i, name in enumerate(s.names):
        ground[key[s.kinds[i]]].append(
            {
                "name": name,
                "lat_deg": float(np.degrees(s.lat_rad[i])),
                "lon_deg": float(np.degrees(s.lon_rad[i])),
                "alt_m": float(s.alt_m[i]),
            }
        )
    data["ground"] = ground
    if not cons.shells and sc.links.isl == "plus-grid":
        data["links"]["isl"] = "nearest-k"
    if plan.isl_edges.size:
        data["links"]["isl_max_range_km"] = plan.isl_max_range_m / 1e3
    src, dst = plan.pair_names
    data["routing"]["pairs"] = [[a, b] for a, b in zip(src, dst, strict=True)]
    data["run"]["chunk_steps"] = plan.chunk_steps
    return data


# --- Run -------------------------------------------------------------------------------------


def set_workers(workers: int | None) -> int:
    """Threads the routing kernels use (None: every core numba sees); returns the number set."""
    import numba

    most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    n = max(1, min(most if workers is None else workers, most))
    numba.set_num_threads(n)
    return n


def prepare_run_dir(out: Path, *, force: bool) -> None:
    """Create ``out``; refuse a non-empty folder unless ``force`` (then empty it)."""
    if out.exists():
        if not out.is_dir():
            raise RunFolderError(f"output {str(out)!r} is a file: choose another --out")
        if any(out.iterdir()):
            if not force:
                raise RunFolderError(
                    f"output folder {str(out)!r} is not empty: choose another --out, "
                    "or pass --force to overwrite it"
                )
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def run_plan(
    plan: RunPlan,
    out: Path,
    *,
    force: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run a plan into the folder ``out``.

    Writes ``scenario.toml`` (resolved), ``sites.parquet``, ``isls.parquet``,
    ``rtt.parquet/part-*.parquet`` (one file per chunk, written atomically), with
    ``forwarding_state`` also ``fstate.parquet/part-*.parquet``, and ``summary.json``.

    Parameters
    ----------
    plan : RunPlan
    out : Path
        Run folder; must be absent or empty unless ``force``.
    on_progress : callable, optional
        Called with the number of steps just finished.

    Returns
    -------
    dict
        The summary (as written to ``summary.json``).
    """
    set_workers(plan.scenario.run.workers)
    prepare_run_dir(out, force=force)
    resolved = tomli_w.dumps(resolved_scenario(plan)).encode()
    _atomic_write_bytes(out / "scenario.toml", resolved)
    s = plan.sites
    _atomic_write_table(
        out / "sites.parquet",
        pa.table(
            {
                "site_idx": np.arange(len(s), dtype=np.int32),
                "name": list(s.names),
                "kind": list(s.kinds),
                "lat_deg": np.degrees(s.lat_rad),
                "lon_deg": np.degrees(s.lon_rad),
                "alt_m": s.alt_m,
            }
        ),
    )
    _atomic_write_table(
        out / "isls.parquet",
        pa.table({"a": plan.isl_edges[:, 0], "b": plan.isl_edges[:, 1]}),
    )
    rtt_dir = out / "rtt.parquet"
    rtt_dir.mkdir()
    fstate_dir = out / "fstate.parquet"
    if plan.scenario.routing.forwarding_state:
        fstate_dir.mkdir()
    prop = make_propagator(plan.scenario, plan.constellation, plan.grid.epoch)
    store = SeriesStore(len(plan.modes), plan.problem.pair_src.size, plan.grid.n_steps, out)
    try:
        last: dict[str, NDArray[np.int32]] | None = None
        for i, (a, b) in enumerate(plan.grid.chunks(plan.chunk_steps)):
            res = compute_chunk(plan, a, b, prop, fstate_prev=last)
            last = res.fstate_last
            name = f"part-{i:06d}.parquet"
            if res.fstate is not None:
                _atomic_write_table(fstate_dir / name, fstate_table(plan, res))
            _atomic_write_table(rtt_dir / name, chunk_table(plan, res))
            store.add(res)
            if on_progress is not None:
                on_progress(b - a)
        summary = summarize(plan, store)
    finally:
        store.close()
    summary["scenario_sha256"] = hashlib.sha256(resolved).hexdigest()
    _atomic_write_bytes(
        out / "summary.json", (json.dumps(summary, indent=1, allow_nan=False) + "\n").encode()
    )
    return summary


def simulate(
    scenario: Scenario, out: Path | str, *, force: bool = False, tle: ElementSet | None = None
) -> dict[str, Any]:
    """Build the plan of ``scenario`` and run it into ``out``; returns the summary."""
    return run_plan(build_plan(scenario, tle=tle), Path(out), force=force)


def default_out_dir(name: str, now: datetime) -> Path:
    """``runs/<scenario>-<UTC time>``, never an existing folder."""
    base = Path("runs") / f"{name}-{now.strftime('%Y%m%dT%H%M%SZ')}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


__all__ = [
    "ChunkResult",
    "RunPlan",
    "build_plan",
    "compute_chunk",
    "run_plan",
    "simulate",
]
