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
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import tomli_w
from numpy.typing import NDArray
from scipy.sparse import vstack as sparse_vstack

from . import __version__
from ._sssp import sssp_full, sssp_update, walk_paths
from .capacity import (
    LinkCapacities,
    Resources,
    build_resources,
    flow_incidence,
    jain_index,
    max_min_fair,
    node_paths_from_predecessors,
    reverse_paths,
)
from .constants import LIBASTRO_EARTH_RADIUS_KM, LIBASTRO_FLATTENING, SGP4_WGS72_RADIUS_KM
from .constellation import Constellation, WalkerShell, preset_shells
from .disruptions import (
    Circle,
    FailurePlan,
    Geofence,
    Jammer,
    Outage,
    gsl_quality,
    isl_outage_by_endpoints,
    outage_of,
    plane_outage,
    random_outage,
    shell_plane_of_sats,
)
from .elements import ElementSet, load_elements
from .errors import RunFolderError, ScenarioError, StarmeshError
from .executors import Executor, make_executor
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
from .io.runfolder import (
    MANIFEST,
    ChunkStore,
    Manifest,
    atomic_write_bytes,
    atomic_write_table,
)
from .linkbudget import LinkProfile, starlink_ka_feeder, starlink_ku_user
from .propagation import Propagator
from .routing import (
    ChunkGraph,
    RoutingProblem,
    build_chunk_graph,
    fibre_delay_s,
    space_delay_s,
)
from .scenario import Scenario, SiteEntry, expand_sweep, expand_variants
from .timegrid import TimeGrid, parse_utc
from .topology import (
    GslCandidates,
    GslRule,
    fibre_links,
    find_gsls,
    isl_lengths_m,
    max_isl_range_m,
    nearest_k_edges,
    plus_grid_edges,
)
from .traffic import Flows, access_flows, explicit_flows, gravity_flows

#: Positions held per chunk are kept near this size [bytes] when chunk_steps is not given.
_CHUNK_POSITION_BYTES = 32 * 2**20


@dataclass(frozen=True)
class TrafficPlan:
    """Flows of a run and the capacity-limited resources they share.

    Attributes
    ----------
    flows : Flows
        ``F`` flows.
    resources : Resources
        ``R`` resources with their capacities.
    flow_pair : ndarray of int64, shape (F,)
        Routed pair each flow follows.
    flow_reverse : ndarray of bool, shape (F,)
        The flow runs from the pair's destination to its source.
    terminals_per_site : ndarray of int64, shape (G,)
        Terminals each site stands for (throughput per terminal = site rate / this).
    """

    flows: Flows
    resources: Resources
    flow_pair: NDArray[np.int64]
    flow_reverse: NDArray[np.bool_]
    terminals_per_site: NDArray[np.int64]


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
    failures: FailurePlan | None = None
    jammers: tuple[Jammer, ...] = ()
    denied: NDArray[np.bool_] | None = None
    profiles: tuple[LinkProfile, ...] | None = None
    traffic: TrafficPlan | None = None

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
                entry.name,
                site.kind,
                site.lat_deg,
                site.lon_deg,
                site.alt_m,
                site.approximate,
                site.population,
            )
    except ScenarioError as exc:
        raise ScenarioError(where, exc.message) from None
    return Site(
        site.name, kind, site.lat_deg, site.lon_deg, site.alt_m, site.approximate, site.population
    )


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


_CAPACITY_UNITS = {"_gbps": 1e9, "_mbps": 1e6}


def _traffic_flows(
    scenario: Scenario, sites: Sites, grid: TimeGrid
) -> tuple[Flows | None, LinkCapacities | None, NDArray[np.int64] | None]:
    """The scenario's flows, link capacities and terminals per site (None without traffic)."""
    t = scenario.traffic
    if t is None:
        return None, None, None
    over = {}
    for name, value in t.capacity.model_dump(exclude_none=True).items():
        unit = next(u for u in _CAPACITY_UNITS if name.endswith(u))
        over[name.removesuffix(unit) + "_bps"] = value * _CAPACITY_UNITS[unit]
    caps = LinkCapacities(**over)
    terminals = sites.of_kind("terminal")
    per_site = np.ones(len(sites), np.int64)
    # Every terminal site stands for terminals_per_site terminals, whatever the demand model.
    per_site[terminals] = t.terminals_per_site
    if t.model == "access":
        if sites.of_kind("pop").size == 0:
            raise ScenarioError(
                "traffic.model", "'access' traffic needs PoPs: add ground.pops = [\"Warsaw\"]"
            )
        flows = access_flows(
            sites,
            [int(i) for i in terminals],
            None,
            down_bps=t.down_mbps * 1e6,
            up_bps=t.up_mbps * 1e6,
            n_terminals=t.terminals_per_site,
            aggregate=t.aggregate,
            max_down_bps=caps.terminal_down_bps,
            max_up_bps=caps.terminal_up_bps,
            diurnal=t.diurnal,
            epoch=grid.epoch,
        )
    elif t.model == "gravity":
        pops = []
        for i in terminals:
            people = sites.population[i] if sites.population else None
            if people is None:
                raise ScenarioError(
                    "traffic.model",
                    f"'gravity' needs populations: terminal {sites.names[i]!r} is not a GeoNames "
                    "city; name terminals by city or use model = 'flows'",
                )
            pops.append(people)
        flows = gravity_flows(
            sites,
            [int(i) for i in terminals],
            np.array(pops, float),
            total_bps=t.total_gbps * 1e9,
            alpha=t.alpha,
            diurnal=t.diurnal,
            epoch=grid.epoch,
        )
    else:
        flows = explicit_flows(sites, [(a, b, mbps * 1e6) for a, b, mbps in t.flows])
    return flows, caps, per_site


def _route_flows(
    flows: Flows, src: NDArray[np.int64], dst: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """Give every flow a routed pair (in either direction), adding the pairs that are missing."""
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(src, dst, strict=True))}
    src_l, dst_l = list(src), list(dst)
    pair = np.empty(len(flows.src_site), np.int64)
    reverse = np.zeros(len(flows.src_site), bool)
    for f, (a, b) in enumerate(zip(flows.src_site, flows.dst_site, strict=True)):
        a, b = int(a), int(b)
        if (a, b) in index:
            pair[f] = index[(a, b)]
        elif (b, a) in index:
            pair[f], reverse[f] = index[(b, a)], True
        else:
            index[(a, b)] = pair[f] = len(src_l)
            src_l.append(a)
            dst_l.append(b)
    return np.array(src_l, np.int64), np.array(dst_l, np.int64), pair, reverse


def _window(start_s: float | None, end_s: float | None) -> tuple[float, float]:
    return (-math.inf if start_s is None else start_s, math.inf if end_s is None else end_s)


def _site_indices(sites: Sites, names: list[str], kind: SiteKind, where: str) -> list[int]:
    out = []
    of_kind = [sites.names[i] for i in sites.of_kind(kind)]
    for j, name in enumerate(names):
        if name not in of_kind:
            raise ScenarioError(
                f"{where}[{j}]",
                f"no {kind} {name!r} in this scenario: use one of {', '.join(of_kind) or 'none'}",
            )
        out.append(sites.index(name))
    return out


def _disruptions(
    scenario: Scenario, constellation: Constellation, sites: Sites, isl_edges: NDArray[np.int32]
) -> tuple[
    FailurePlan | None, tuple[Jammer, ...], NDArray[np.bool_] | None, tuple[LinkProfile, ...] | None
]:
    """Failures, jammers, denied sites and GSL link profiles of a scenario (all validated)."""
    d = scenario.disruptions
    n_s, n_g, n_e = constellation.n_sats, len(sites), isl_edges.shape[0]
    # One child generator per random outage, in a fixed order: same seed, same outages.
    rng = np.random.default_rng(scenario.seed)
    sats: list[Outage] = []
    isls: list[Outage] = []
    down: list[Outage] = []
    for i, f in enumerate(d.failures):
        ws, we = _window(f.start_s, f.end_s)
        where = f"disruptions.failures[{i}]"
        if f.satellites:
            sats.append(
                outage_of(f.satellites, n_s, where=f"{where}.satellites", start_s=ws, end_s=we)
            )
        if f.satellite_fraction > 0:
            sats.append(
                random_outage(
                    n_s,
                    f.satellite_fraction,
                    seed=rng.spawn(1)[0],
                    where=f"{where}.satellite_fraction",
                    start_s=ws,
                    end_s=we,
                )
            )
        if f.planes:
            if not constellation.shells:
                raise ScenarioError(
                    f"{where}.planes",
                    "the constellation has no planes (a TLE set): name satellites instead",
                )
            shell_idx, plane_idx = shell_plane_of_sats(constellation)
            for p in f.planes:
                sats.append(
                    plane_outage(
                        shell_idx,
                        plane_idx,
                        shell=p.shell,
                        planes=None if p.plane is None else [p.plane],
                        where=f"{where}.planes",
                        start_s=ws,
                        end_s=we,
                    )
                )
        if f.isl_fraction > 0:
            isls.append(
                random_outage(
                    n_e,
                    f.isl_fraction,
                    seed=rng.spawn(1)[0],
                    what="ISL",
                    where=f"{where}.isl_fraction",
                    start_s=ws,
                    end_s=we,
                )
            )
        if f.isls:
            isls.append(
                isl_outage_by_endpoints(
                    isl_edges, f.isls, where=f"{where}.isls", start_s=ws, end_s=we
                )
            )
        idx = _site_indices(sites, f.gateways, "gateway", f"{where}.gateways")
        idx += _site_indices(sites, f.pops, "pop", f"{where}.pops")
        if idx:
            down.append(outage_of(idx, n_g, what="site", where=where, start_s=ws, end_s=we))
    failures = (
        FailurePlan(
            n_s,
            isl_edges.astype(np.int64),
            n_g,
            sats=tuple(sats),
            isls=tuple(isls),
            sites=tuple(down),
        )
        if sats or isls or down
        else None
    )
    jammers = tuple(
        Jammer(
            j.lat_deg,
            j.lon_deg,
            j.alt_m,
            j.eirp_dbw if j.eirp_dbw is not None else 10.0 * math.log10(j.eirp_w or 1.0),
            j.band,
            j.bandwidth_mhz * 1e6,
            j.center_freq_ghz * 1e9,
            *_window(j.start_s, j.end_s),
            name=j.name,
        )
        for j in d.jammers
    )
    denied = None
    if d.denied_areas:
        fences = []
        for a in d.denied_areas:
            if a.circle is not None:
                c = a.circle
                fences.append(
                    Geofence(
                        circles=(Circle(c.lat_deg, c.lon_deg, c.radius_km, name=a.name),),
                        name=a.name,
                    )
                )
            else:
                geo = a.geojson
                if isinstance(geo, str):
                    try:
                        geo = Path(geo).read_text(encoding="utf-8")
                    except OSError:
                        raise ScenarioError(
                            f"disruptions.denied_areas[{a.name!r}]",
                            f"GeoJSON file {geo!r} not found: check the path, or inline it",
                        ) from None
                assert geo is not None
                fences.append(Geofence.from_geojson(geo, name=a.name))
        fence = fences[0]
        for more in fences[1:]:
            fence = fence | more
        terminals = np.array([k == "terminal" for k in sites.kinds])
        denied = fence.denied_sites(np.degrees(sites.lat_rad), np.degrees(sites.lon_rad))
        denied = denied & terminals
    profiles = None
    if d.link_budget or jammers:
        ku, ka = starlink_ku_user(), starlink_ka_feeder()
        profiles = tuple(ka if k == "gateway" else ku for k in sites.kinds)
    return failures, jammers, denied, profiles


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
    traffic_flows, caps, per_site = _traffic_flows(scenario, sites, grid)
    flow_pair = flow_reverse = None
    if traffic_flows is not None:
        src, dst, flow_pair, flow_reverse = _route_flows(traffic_flows, src, dst)
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
    traffic = None
    if traffic_flows is not None:
        assert flow_pair is not None and flow_reverse is not None and per_site is not None
        resources = build_resources(
            constellation.n_sats,
            list(sites.kinds),
            isl_edges,
            f_gw,
            f_pop,
            caps,
            n_terminals_per_site=per_site,
        )
        traffic = TrafficPlan(traffic_flows, resources, flow_pair, flow_reverse, per_site)
    failures, jammers, denied, profiles = _disruptions(scenario, constellation, sites, isl_edges)
    return RunPlan(
        failures=failures,
        jammers=jammers,
        denied=denied,
        profiles=profiles,
        series_idx=series_idx,
        traffic=traffic,
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
    fstate_base: dict[str, NDArray[np.int32]] | None = None
    fstate_last: dict[str, NDArray[np.int32]] | None = None
    rate_bps: NDArray[np.float64] | None = None  # (M, T, F)
    bottleneck: NDArray[np.int32] | None = None  # (M, T, F)
    demand_bps: NDArray[np.float64] | None = None  # (T, F)
    load: tuple[NDArray[Any], ...] | None = None  # (mode, step, resource, utilisation) rows


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


def _flow_incidence(
    plan: RunPlan, orient: _Orientation, graph: ChunkGraph, pedge: NDArray[np.int64]
) -> Any:
    """Flow x resource incidence of every flow on its pair's current path, in its direction."""
    tp = plan.traffic
    assert tp is not None
    p = plan.problem
    pred = np.where(pedge >= 0, graph.edge_src[np.maximum(pedge, 0)], -1)
    ptr, nodes = node_paths_from_predecessors(pred, orient.row, orient.target)
    ptr_r, nodes_r = reverse_paths(ptr, nodes, p.n_sats, p.n_sites)
    tree = flow_incidence(tp.resources, ptr, nodes)
    other = flow_incidence(tp.resources, ptr_r, nodes_r)
    # Trees rooted at destinations give destination -> source paths.
    fwd, bwd = (other, tree) if orient.reverse else (tree, other)
    both = sparse_vstack([fwd, bwd], format="csr")
    return both[tp.flow_pair + p.pair_src.size * tp.flow_reverse]


def _kept_load(
    rows: list[tuple[NDArray[Any], ...]], drop: int, t_all: NDArray[np.float64]
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
    site = gsl_sites[gsl.site_idx]
    keep = np.ones(site.size, bool)
    if plan.denied is not None:
        keep &= ~plan.denied[site]
    if site_failed is not None:
        keep &= ~site_failed[gsl.t_idx, site]
    down = np.ones(site.size)
    up = np.ones(site.size)
    if plan.profiles is not None and keep.any():
        idx = np.flatnonzero(keep)
        q = gsl_quality(
            gsl.t_idx[idx],
            site[idx],
            gsl.sat_idx[idx],
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
                gsl.t_idx[idx],
                site[idx],
                gsl.sat_idx[idx],
                r,
                plan.sites.r_ecef_m,
                plan.sites.up,
                list(plan.profiles),
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                down[idx] = np.nan_to_num(q.downlink.capacity_bps / clear.downlink.capacity_bps)
                up[idx] = np.nan_to_num(q.uplink.capacity_bps / clear.uplink.capacity_bps)
    if keep.all():
        return gsl, down, up
    kept = GslCandidates(gsl.t_idx[keep], gsl.site_idx[keep], gsl.sat_idx[keep], gsl.length_m[keep])
    return kept, down[keep], up[keep]


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
    updated from the previous step's (:mod:`starmesh._sssp`).

    Forwarding-state deltas at ``start`` are taken against the recomputed step ``start - 1``,
    returned as :attr:`ChunkResult.fstate_base`; where two next hops tie exactly it may differ
    from the previous chunk's last state, so the writer restates the first delta against that
    (:func:`reconcile_fstate`).
    """
    prop = propagator or make_propagator(plan.scenario, plan.constellation, plan.grid.epoch)
    lo = max(start - 1, 0)
    t_all = plan.grid.t_s(lo, stop)
    r, ok = prop.positions_ecef_m(t_all)
    n_t = t_all.size
    problem = plan.problem
    site_failed = None
    if plan.failures is not None:
        # A failed satellite has no links at all: treat it as absent.
        sat_failed = plan.failures.sat_failed(t_all)
        ok = ok & ~sat_failed
        site_failed = plan.failures.site_failed(t_all)
    if plan.isl_edges.size:
        length = isl_lengths_m(r, plan.isl_edges)
        both = ok[:, plan.isl_edges[:, 0]] & ok[:, plan.isl_edges[:, 1]]
        if plan.failures is not None:
            both &= ~plan.failures.isl_failed(t_all, sat_failed=sat_failed)
        isl_delay = np.where(both & (length <= plan.isl_max_range_m), space_delay_s(length), np.inf)
    else:
        isl_delay = np.full((n_t, 0), np.inf)
    gsl_sites = np.flatnonzero(problem.gsl_site)
    gsl = find_gsls(r, ok, plan.sites.r_ecef_m[gsl_sites], plan.sites.up[gsl_sites], plan.gsl_rule)
    gsl, gsl_cap_down, gsl_cap_up = _usable_gsls(plan, gsl, gsl_sites, r, t_all, site_failed)
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
    tp = plan.traffic
    if tp is not None:
        n_f = tp.flow_pair.size
        demand = tp.flows.demand_at(t_all).reshape(n_t, n_f)
        rate = np.zeros((n_m, n_t, n_f))
        bneck = np.zeros((n_m, n_t, n_f), np.int32)
        load_rows: list[tuple[NDArray[Any], ...]] = []
        inc: Any = None
    fstate: dict[str, tuple[NDArray[Any], ...]] = {}
    fstate_last: dict[str, NDArray[np.int32]] = {}
    fstate_base: dict[str, NDArray[np.int32]] = {}
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
            fibre_up = None
            if site_failed is not None and problem.fibre_gw.size:
                fibre_up = ~(site_failed[k, problem.fibre_gw] | site_failed[k, problem.fibre_pop])
            w = graph.weights(isl_delay[k] if mode == "isl" else None, gsl_w, fibre_up)
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
            if tp is not None:
                if k == 0 or todo.any():
                    inc = _flow_incidence(plan, orient, graph, pedge)
                cap = _site_capacity(
                    plan, gsl_sites[gsl.site_idx[a:b]], gsl_cap_down[a:b], gsl_cap_up[a:b]
                )
                a_ = max_min_fair(inc, cap, demand[k])
                rate[m, k] = a_.rate_bps
                bneck[m, k] = a_.bottleneck
                busy = np.flatnonzero(a_.load_bps > 0)
                load_rows.append(
                    (
                        np.full(busy.size, m, np.int8),
                        np.full(busy.size, k, np.int32),
                        busy.astype(np.int32),
                        a_.utilisation[busy].astype(np.float32),
                    )
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
                if k == start - lo - 1:
                    fstate_base[mode] = nh
                if k >= start - lo:
                    first = start == 0 and k == 0
                    rows.append(
                        _fstate_rows(plan, orient, t_all[k], nh, None if first else prev_nh, redo)
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
        fstate_base=fstate_base if want_fstate and start > 0 else None,
        rate_bps=rate[:, drop:] if tp is not None else None,
        bottleneck=bneck[:, drop:] if tp is not None else None,
        demand_bps=demand[drop:] if tp is not None else None,
        load=_kept_load(load_rows, drop, t_all) if tp is not None else None,
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


def fstate_table(plan: RunPlan, rows_by_mode: dict[str, tuple[NDArray[Any], ...]]) -> pa.Table:
    """Forwarding-state entries of one chunk (all at the run's first step, then changes)."""
    parts = []
    for mode, (t_s, node, dst, nh) in rows_by_mode.items():
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


def _traffic_summary(plan: RunPlan, store: ChunkStore) -> dict[str, Any]:
    """Mean demand and throughput per mode and per site, unmet demand, Jain's fairness."""
    tp = plan.traffic
    assert tp is not None
    n_t = plan.grid.n_steps
    rate = np.zeros((len(plan.modes), tp.flow_pair.size))
    demand = np.zeros(tp.flow_pair.size)
    jain = np.zeros(len(plan.modes))
    for i in range(len(store.chunks)):
        extra = store.extra(i)
        rate += extra["rate_sum"]
        demand += extra["demand_sum"]
        jain += extra["jain_sum"]
    rate, demand, jain = rate / n_t, demand / n_t, jain / n_t
    f = tp.flows
    names = plan.sites.names
    modes = {}
    sites: list[dict[str, Any]] = []
    for m, mode in enumerate(plan.modes):
        total_d = float(demand.sum())
        modes[mode] = {
            "demand_gbps_mean": total_d / 1e9,
            "allocated_gbps_mean": float(rate[m].sum()) / 1e9,
            "unmet_fraction": float(1.0 - rate[m].sum() / total_d) if total_d > 0 else 0.0,
            "jain_index_mean": float(jain[m]),
        }
        for g in np.unique(np.concatenate([f.src_site, f.dst_site])):
            if plan.sites.kinds[g] != "terminal":
                continue
            down = f.dst_site == g
            up = f.src_site == g
            n = int(tp.terminals_per_site[g])
            sites.append(
                {
                    "site": names[g],
                    "mode": mode,
                    "terminals": n,
                    "down_mbps_per_terminal": float(rate[m, down].sum()) / 1e6 / n,
                    "up_mbps_per_terminal": float(rate[m, up].sum()) / 1e6 / n,
                    "down_demand_mbps_per_terminal": float(demand[down].sum()) / 1e6 / n,
                }
            )
    return {"modes": modes, "sites": sites}


def summarize(plan: RunPlan, store: ChunkStore) -> dict[str, Any]:
    """Per (mode, pair) statistics: min/median/p95/max RTT [ms], availability, path changes."""
    src_names, dst_names = plan.pair_names
    n_m, n_p, n_t = len(plan.modes), plan.problem.pair_src.size, plan.grid.n_steps
    changes = np.zeros((n_m, n_p), np.int64)
    rtt_min = np.full((n_m, n_p), np.inf)
    rtt_max = np.full((n_m, n_p), -np.inf)
    for i in range(len(store.chunks)):
        extra = store.extra(i)
        changes += extra["changes"]
        rtt_min = np.minimum(rtt_min, extra["rtt_min"])
        rtt_max = np.maximum(rtt_max, extra["rtt_max"])
    out: list[dict[str, Any]] = []
    block = max(1, (64 * 2**20) // (8 * max(n_t, 1)))
    for m, mode in enumerate(plan.modes):
        for b0 in range(0, n_p, block):
            x = store.rows(m, b0, min(b0 + block, n_p), n_t)
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
                        "rtt_min_ms": float(rtt_min[m, p] * 1e3) if reach else None,
                        "rtt_median_ms": float(med[j] * 1e3) if reach else None,
                        "rtt_p95_ms": float(p95[j] * 1e3) if reach else None,
                        "rtt_max_ms": float(rtt_max[m, p] * 1e3) if reach else None,
                        "availability": float(avail[j]),
                        "path_changes": int(changes[m, p]),
                    }
                )
    traffic = _traffic_summary(plan, store) if plan.traffic is not None else None
    return {
        **({"traffic": traffic} if traffic is not None else {}),
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
    # How many workers computed it changes nothing in the results: not part of the record.
    data["run"].pop("workers", None)
    # Canonical form (the model's field order), so that resolving a resolved scenario gives the
    # same bytes: a resumed run recognises its folder by this hash.
    return Scenario.model_validate(data).model_dump(mode="json", exclude_none=True)


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


def _write_chunk(
    plan: RunPlan,
    out: Path,
    index: int,
    res: ChunkResult,
    store: ChunkStore,
    manifest: Manifest,
    prev_last: dict[str, NDArray[np.int32]] | None,
) -> None:
    """Write one chunk's files atomically, then record the chunk in the manifest."""
    name = f"part-{index:06d}.parquet"
    files = []
    extra: dict[str, Any] = {
        "changes": res.changed.sum(axis=1),
        "rtt_min": np.where(np.isfinite(res.rtt_s), res.rtt_s, np.inf).min(axis=1),
        "rtt_max": np.where(np.isfinite(res.rtt_s), res.rtt_s, -np.inf).max(axis=1),
    }
    if res.fstate is not None:
        assert res.fstate_last is not None
        rows = dict(res.fstate)
        if res.start > 0:
            if prev_last is None:
                raise RunFolderError(f"chunk {index} has no predecessor state to follow")
            rows = {m: reconcile_fstate(plan, res, m, prev_last[m]) for m in res.fstate}
        path = out / "fstate.parquet" / name
        atomic_write_table(path, fstate_table(plan, rows))
        files.append(path)
        for mode, last in res.fstate_last.items():
            extra[f"fstate_last:{mode}"] = last
    path = out / "rtt.parquet" / name
    atomic_write_table(path, chunk_table(plan, res))
    files.append(path)
    if res.rate_bps is not None:
        assert res.bottleneck is not None and res.demand_bps is not None and res.load is not None
        n_m, n_t, n_f = res.rate_bps.shape
        modes = pa.array(list(plan.modes))
        path = out / "flows.parquet" / name
        atomic_write_table(
            path,
            pa.table(
                {
                    "t_s": np.repeat(res.t_s, n_m * n_f),
                    "mode": modes.take(np.tile(np.repeat(np.arange(n_m), n_f), n_t)),
                    "flow": np.tile(np.arange(n_f, dtype=np.int32), n_t * n_m),
                    "demand_mbps": np.repeat(res.demand_bps[:, None, :], n_m, axis=1)
                    .reshape(-1)
                    .astype(np.float32)
                    / np.float32(1e6),
                    "rate_mbps": (np.transpose(res.rate_bps, (1, 0, 2)).reshape(-1) / 1e6).astype(
                        np.float32
                    ),
                    "bottleneck": np.transpose(res.bottleneck, (1, 0, 2)).reshape(-1),
                }
            ),
        )
        files.append(path)
        t_s, m_idx, r_idx, util = res.load
        path = out / "links.parquet" / name
        atomic_write_table(
            path,
            pa.table(
                {
                    "t_s": t_s,
                    "mode": modes.take(m_idx.astype(np.int64)),
                    "resource": r_idx,
                    "utilisation": util,
                }
            ),
        )
        files.append(path)
        extra["rate_sum"] = res.rate_bps.sum(axis=1)
        extra["demand_sum"] = res.demand_bps.sum(axis=0)
        pos = res.demand_bps > 0
        extra["jain_sum"] = np.array(
            [
                sum(
                    jain_index(res.rate_bps[m, k][pos[k]]) if pos[k].any() else 1.0
                    for k in range(n_t)
                )
                for m in range(n_m)
            ]
        )
    series = np.ascontiguousarray(np.transpose(res.rtt_s, (0, 2, 1)), dtype=np.float32)
    files += store.write(index, series, extra)
    manifest.record(index, files)


def _write_traffic_tables(plan: RunPlan, out: Path) -> None:
    """``flow_info.parquet`` (what each flow index is) and ``resources.parquet``."""
    tp = plan.traffic
    assert tp is not None
    names = plan.sites.names
    f = tp.flows
    atomic_write_table(
        out / "flow_info.parquet",
        pa.table(
            {
                "flow": np.arange(f.src_site.size, dtype=np.int32),
                "name": list(f.names),
                "src": [names[i] for i in f.src_site],
                "dst": [names[i] for i in f.dst_site],
                "peak_demand_mbps": f.demand_bps / 1e6,
            }
        ),
    )
    r = tp.resources
    atomic_write_table(
        out / "resources.parquet",
        pa.table(
            {
                "resource": np.arange(r.capacity_bps.size, dtype=np.int32),
                "label": r.labels(list(names)),
                "capacity_mbps": r.capacity_bps / 1e6,
            }
        ),
    )


def _fstate_last(plan: RunPlan, store: ChunkStore, index: int) -> dict[str, NDArray[np.int32]]:
    extra = store.extra(index)
    return {m: extra[f"fstate_last:{m}"] for m in plan.modes if f"fstate_last:{m}" in extra}


@dataclass
class _Target:
    """One run folder being written: its plan, manifest, chunk store and chunks to compute."""

    plan: RunPlan
    out: Path
    digest: str
    manifest: Manifest
    store: ChunkStore
    chunks: list[tuple[int, int]]
    todo: list[int]


def _prepare(plan: RunPlan, out: Path, *, force: bool, resume: bool) -> _Target:
    """Create (or reopen, to resume) a run folder and list the chunks still to compute."""
    resolved = tomli_w.dumps(resolved_scenario(plan)).encode()
    digest = hashlib.sha256(resolved).hexdigest()
    chunks = list(plan.grid.chunks(plan.chunk_steps))
    if resume:
        manifest = Manifest.load(out)
        if manifest.scenario_sha256 != digest or manifest.chunks != chunks:
            raise RunFolderError(
                f"cannot resume {str(out)!r}: it holds another scenario or chunking than "
                "its scenario.toml now gives; start it again with --force"
            )
    else:
        prepare_run_dir(out, force=force)
        manifest = Manifest(out, digest, chunks)
        atomic_write_bytes(out / "scenario.toml", resolved)
        s = plan.sites
        atomic_write_table(
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
        atomic_write_table(
            out / "isls.parquet", pa.table({"a": plan.isl_edges[:, 0], "b": plan.isl_edges[:, 1]})
        )
        manifest.save()
    (out / "rtt.parquet").mkdir(exist_ok=True)
    if plan.traffic is not None:
        (out / "flows.parquet").mkdir(exist_ok=True)
        (out / "links.parquet").mkdir(exist_ok=True)
        if not resume:
            _write_traffic_tables(plan, out)
    if plan.scenario.routing.forwarding_state:
        (out / "fstate.parquet").mkdir(exist_ok=True)
    todo = [i for i in range(len(chunks)) if not manifest.is_complete(i)]
    return _Target(plan, out, digest, manifest, ChunkStore(out, chunks), chunks, todo)


def _execute(
    targets: list[_Target], runner: Executor, on_progress: Callable[[int], None] | None
) -> None:
    """Compute every missing chunk of every target through one executor; write them in order."""
    if on_progress is not None:
        on_progress(
            sum(b - a for t in targets for i, (a, b) in enumerate(t.chunks) if i not in t.todo)
        )
    keys = [(v, i) for v, t in enumerate(targets) for i in t.todo]
    units = [(v, *targets[v].chunks[i]) for v, i in keys]
    results = runner.run([t.plan for t in targets], units)
    for (v, i), res in zip(keys, results, strict=True):
        t = targets[v]
        prev = _fstate_last(t.plan, t.store, i - 1) if res.fstate is not None and i > 0 else None
        _write_chunk(t.plan, t.out, i, res, t.store, t.manifest, prev)
        if on_progress is not None:
            on_progress(res.stop - res.start)


def _finish(t: _Target) -> dict[str, Any]:
    """Write ``summary.json`` from the chunk store, then drop the store."""
    summary = summarize(t.plan, t.store)
    summary["scenario_sha256"] = t.digest
    atomic_write_bytes(
        t.out / "summary.json", (json.dumps(summary, indent=1, allow_nan=False) + "\n").encode()
    )
    t.store.remove()
    return summary


def _report(out: Path) -> None:
    """Write ``report.html``; a report that cannot be drawn never costs the run its data."""
    from .report import write_report

    try:
        write_report(out)
    except (StarmeshError, OSError, ValueError) as exc:
        warnings.warn(f"report.html not written for {out}: {exc}", RuntimeWarning, stacklevel=2)


def run_plan(
    plan: RunPlan,
    out: Path,
    *,
    force: bool = False,
    resume: bool = False,
    executor: str = "auto",
    on_progress: Callable[[int], None] | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """Run a plan into the folder ``out``, or finish an interrupted run there.

    Writes ``scenario.toml`` (resolved), ``sites.parquet``, ``isls.parquet``,
    ``rtt.parquet/part-*.parquet`` (one file per chunk), with ``forwarding_state`` also
    ``fstate.parquet/part-*.parquet``, ``manifest.json`` and ``summary.json``. Every file is
    written atomically; the manifest records each complete chunk with its files' hashes.

    Parameters
    ----------
    plan : RunPlan
    out : Path
        Run folder; must be absent or empty unless ``force`` or ``resume``.
    force : bool
        Empty a non-empty ``out`` first.
    resume : bool
        ``out`` holds an interrupted run of the same scenario: keep its complete chunks
        (verified by hash) and compute the rest.
    executor : str
        ``"auto"`` (worker processes when the run has at least 4 chunks per core, else one process
        whose routing uses every core), ``"serial"``, ``"processes"``, or a Dask scheduler:
        ``"dask:local"`` (a LocalCluster) or ``"tcp://HOST:PORT"``.
    on_progress : callable, optional
        Called with the number of steps just finished (or found complete).
    report : bool
        Write ``report.html`` at the end.

    Returns
    -------
    dict
        The summary (as written to ``summary.json``).
    """
    n_chunks = len(list(plan.grid.chunks(plan.chunk_steps)))
    # First, so that an unreachable cluster leaves no run folder behind.
    runner = make_executor(executor, plan.scenario.run.workers, n_units=n_chunks)
    try:
        target = _prepare(plan, out, force=force, resume=resume)
        _execute([target], runner, on_progress)
    finally:
        runner.close()
    summary = _finish(target)
    if report:
        _report(out)
    return summary


def _run_folders(
    scenarios: list[Scenario],
    folders: list[Path],
    *,
    workers: int | None,
    executor: str,
    resume: bool,
    force_for: Callable[[Path], bool],
    on_progress: Callable[[int], None] | None,
    setup: Callable[[], None] | None = None,
) -> tuple[list[dict[str, Any]], list[_Target]]:
    """Run several scenarios into their folders through one executor and one writer.

    Every plan is built (and so every input checked) and the executor made before anything is
    written; ``setup`` then prepares the parent folder. A folder with a manifest is resumed when
    ``resume``; the others start afresh, emptied when ``force_for(folder)``.
    """
    plans = [build_plan(sc) for sc in scenarios]
    n_units = sum(len(list(p.grid.chunks(p.chunk_steps))) for p in plans)
    runner = make_executor(executor, workers, n_units=n_units)
    try:
        if setup is not None:
            setup()
        targets = []
        for plan, folder in zip(plans, folders, strict=True):
            folder.parent.mkdir(parents=True, exist_ok=True)
            again = resume and (folder / MANIFEST).is_file()
            targets.append(
                _prepare(plan, folder, force=force_for(folder) and not again, resume=again)
            )
        _execute(targets, runner, on_progress)
    finally:
        runner.close()
    return [_finish(t) for t in targets], targets


def run_sweep(
    scenario: Scenario,
    out: Path,
    *,
    force: bool = False,
    resume: bool = False,
    executor: str = "auto",
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run every variant of a scenario's ``[sweep]`` into ``out/variants/<id>/``.

    Work units are (variant, time chunk), all through one executor; one writer writes them.
    ``out`` gets ``sweep.toml`` (the scenario as given), one run folder per variant,
    ``sweep.parquet`` (every variant's per-pair statistics, with the variant's parameters as
    columns) and ``sweep_summary.json`` (one row per variant and mode).

    Raises
    ------
    ScenarioError
        No sweep, an empty grid, an unknown parameter, a value a variant cannot take; raised
        before anything is written.
    """
    variants = expand_sweep(scenario)

    def setup() -> None:
        if not resume:
            prepare_run_dir(out, force=force)
            spec = scenario.model_dump(mode="json", exclude_none=True)
            atomic_write_bytes(out / "sweep.toml", tomli_w.dumps(spec).encode())
        elif not (out / "sweep.toml").is_file():
            raise RunFolderError(f"cannot resume {str(out)!r}: no sweep.toml there")

    summaries, _targets = _run_folders(
        [v for _vid, _params, v in variants],
        [out / "variants" / vid for vid, _params, _v in variants],
        workers=scenario.run.workers,
        executor=executor,
        resume=resume,
        force_for=lambda _folder: resume,
        on_progress=on_progress,
        setup=setup,
    )
    return _write_sweep(out, variants, summaries)


def run_variants(
    scenario: Scenario,
    out: Path,
    *,
    force: bool = False,
    resume: bool = False,
    executor: str = "auto",
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run a scenario's baseline into ``out`` and each of its ``[[variants]]`` into
    ``out/variants/<name>/``, through one executor, then compare them in
    ``out/comparison.json``.

    The baseline folder is an ordinary run folder, so everything that reads one works on it.

    Returns
    -------
    dict
        ``{"baseline": summary, "variants": {name: summary}, "comparison": rows}``.
    """
    variants = expand_variants(scenario)
    summaries, targets = _run_folders(
        [v for _name, _changes, v in variants],
        [out if name == "baseline" else out / "variants" / name for name, _c, _v in variants],
        workers=scenario.run.workers,
        executor=executor,
        resume=resume,
        force_for=lambda folder: force if folder == out else (force or resume),
        on_progress=on_progress,
    )
    rows = [
        row
        for (name, changes, _v), summary in zip(variants, summaries, strict=True)
        for row in _compare_rows(name, changes, summary)
    ]
    atomic_write_bytes(
        out / "comparison.json",
        (json.dumps({"variants": rows}, indent=1, allow_nan=False) + "\n").encode(),
    )
    for t in targets:
        _report(t.out)
    return {
        "baseline": summaries[0],
        "variants": {n: sm for (n, _c, _v), sm in zip(variants, summaries, strict=True)},
        "comparison": rows,
    }


def _compare_rows(
    name: str, changes: dict[str, Any], summary: dict[str, Any]
) -> list[dict[str, Any]]:
    """One comparison row per mode of a run: availability and RTT over its pairs."""
    rows = []
    for mode in summary["modes"]:
        pairs = [p for p in summary["pairs"] if p["mode"] == mode]
        med = [p["rtt_median_ms"] for p in pairs if p["rtt_median_ms"] is not None]
        p95 = [p["rtt_p95_ms"] for p in pairs if p["rtt_p95_ms"] is not None]
        rows.append(
            {
                "variant": name,
                "changes": changes,
                "mode": mode,
                "availability_pct": 100.0 * float(np.mean([p["availability"] for p in pairs])),
                "pairs_never_served": int(sum(p["availability"] == 0 for p in pairs)),
                "rtt_median_ms": float(np.median(med)) if med else None,
                "rtt_p95_ms": float(np.median(p95)) if p95 else None,
                "path_changes": int(sum(p["path_changes"] for p in pairs)),
                **_throughput(summary, mode),
            }
        )
    return rows


def _throughput(summary: dict[str, Any], mode: str) -> dict[str, Any]:
    t = summary.get("traffic")
    if t is None:
        return {}
    rows = [r for r in t["sites"] if r["mode"] == mode]
    return {
        "down_mbps_per_terminal": float(np.mean([r["down_mbps_per_terminal"] for r in rows]))
        if rows
        else None,
        "unmet_fraction": t["modes"][mode]["unmet_fraction"],
    }


def _write_sweep(
    out: Path,
    variants: list[tuple[str, dict[str, Any], Scenario]],
    summaries: list[dict[str, Any]],
) -> dict[str, Any]:
    def cell(x: Any) -> Any:
        return x if isinstance(x, int | float | str | bool) else json.dumps(x)

    rows: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    for (vid, params, _v), summary in zip(variants, summaries, strict=True):
        for mode in summary["modes"]:
            pairs = [p for p in summary["pairs"] if p["mode"] == mode]
            med = [p["rtt_median_ms"] for p in pairs if p["rtt_median_ms"] is not None]
            p95 = [p["rtt_p95_ms"] for p in pairs if p["rtt_p95_ms"] is not None]
            table.append(
                {
                    "variant": vid,
                    **{k: cell(v) for k, v in params.items()},
                    "mode": mode,
                    "availability_mean": float(np.mean([p["availability"] for p in pairs])),
                    "rtt_median_ms": float(np.median(med)) if med else None,
                    "rtt_p95_ms": float(np.median(p95)) if p95 else None,
                    "path_changes": int(sum(p["path_changes"] for p in pairs)),
                }
            )
        for p in summary["pairs"]:
            rows.append({"variant": vid, **{k: cell(v) for k, v in params.items()}, **p})
    atomic_write_table(out / "sweep.parquet", pa.Table.from_pylist(rows))
    result = {"variants": table}
    atomic_write_bytes(
        out / "sweep_summary.json", (json.dumps(result, indent=1, allow_nan=False) + "\n").encode()
    )
    return result


def simulate(
    scenario: Scenario,
    out: Path | str,
    *,
    force: bool = False,
    tle: ElementSet | None = None,
    executor: str = "auto",
) -> dict[str, Any]:
    """Build the plan of ``scenario`` and run it into ``out``; returns the summary."""
    return run_plan(build_plan(scenario, tle=tle), Path(out), force=force, executor=executor)


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
