"""Run plans: a scenario resolved into everything a run needs, validated, with no pydantic in it.

:func:`build_plan` turns a :class:`~starmesh.scenario.Scenario` into a :class:`RunPlan`: the
time grid, the constellation and its propagator settings, the ground sites, the routing problem
(graph node numbering, pairs, fibre), traffic and disruptions. Every input error is raised here,
before anything is computed or written. A plan is self-contained and picklable: worker processes
and Dask workers get plans, never scenario objects, and :meth:`RunPlan.propagator` is the one
place that makes the plan's propagator.

:func:`resolved_scenario` is the scenario as run (presets expanded into shells, city names into
coordinates, pairs listed), which the run folder records as ``scenario.toml``.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .capacity import LinkCapacities, Resources, build_resources
from .constants import LIBASTRO_EARTH_RADIUS_KM, LIBASTRO_FLATTENING, SGP4_WGS72_RADIUS_KM
from .constellation import (
    REAL_MIN_ELEVATION_DEG,
    Constellation,
    WalkerShell,
    is_real_constellation,
    preset_shells,
)
from .disruptions import (
    Circle,
    FailurePlan,
    Geofence,
    Jammer,
    Outage,
    isl_outage_by_endpoints,
    outage_of,
    plane_outage,
    random_outage,
    shell_plane_of_sats,
)
from .elements import ElementSet, load_elements
from .errors import BudgetError, ScenarioError
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
from .linkbudget import LinkProfile, starlink_ka_feeder, starlink_ku_user
from .propagation import EPHEMERIS_NODE_S, Propagator
from .realset import (
    FilterReport,
    OperationalCriteria,
    PlusGridIsl,
    RealConstellation,
    keep_everything,
    load_real_constellation,
    real_constellation,
)
from .routing import RoutingProblem, fibre_delay_s
from .scenario import Scenario, SiteEntry
from .service.params import (
    TERMINAL_UP_MAX_BPS,
    UPLINK_CAPACITY_RATIO,
    UPSTREAM_RATIO,
    ServiceParams,
    pre2024_excess_median_s,
)
from .service.throughput import RegionCells
from .timegrid import TimeGrid, parse_utc
from .topology import (
    GslRule,
    fibre_links,
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

    name: str
    grid: TimeGrid
    constellation: Constellation
    sites: Sites
    problem: RoutingProblem
    #: The ISLs of the run (fixed +Grid or nearest-k), or with ``isl`` set, those in use at the
    #: run's first step (what ``isls.parquet`` lists and ISL failures are checked against).
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
    #: Earth model of the geometry: ``"wgs84"``, or ``"pyephem"`` (satgenpy's, for Hypatia).
    earth_model: str = "wgs84"
    #: UT1 - UTC [s] applied to Earth rotation.
    dut1_s: float = 0.0
    #: Node spacing of the interpolated SGP4 ephemeris [s], or None for SGP4 at every step
    #: (:func:`ephemeris_node_spacing_s`).
    ephemeris_node_s: float | None = None
    #: Write every node's next hop towards every pair endpoint (``fstate.parquet``).
    forwarding_state: bool = False
    #: Worker processes or routing threads (None: every core); never changes results.
    workers: int | None = None
    #: Seed of the scenario's random choices.
    seed: int = 0
    #: What the user should know about the inputs (records skipped, ...), one line each.
    notes: tuple[str, ...] = ()
    #: Re-paired +Grid ISLs of a real constellation (edges then vary per chunk), else None.
    isl: PlusGridIsl | None = None
    #: What the operational filter of a real constellation dropped, else None.
    constellation_filter: FilterReport | None = None
    #: The service model's settings (None: ``service.model = "geometric"``).
    service: ServicePlan | None = None
    #: The scenario as run (:func:`resolved_scenario`), plain data for ``scenario.toml``.
    resolved: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: Serving-satellite slot of the per-terminal visibility [s] (``[coverage] slot_s``).
    #: 15 s: Starlink's reassignment period, as ``starmesh.coverage.SLOT_S_DEFAULT``.
    visibility_slot_s: float = 15.0

    def propagator(self) -> Propagator:
        """The plan's propagator (Earth model and UT1 applied); the one place that makes it."""
        return make_propagator(
            self.constellation,
            self.grid.epoch,
            self.earth_model,
            self.dut1_s,
            node_spacing_s=self.ephemeris_node_s,
        )

    @property
    def chunks(self) -> list[tuple[int, int]]:
        """Step range ``(start, stop)`` of every time chunk of the run."""
        return list(self.grid.chunks(self.chunk_steps))

    def disk_bytes(self) -> int:
        """Disk a run of this plan needs at its peak, roughly [bytes]: the RTT rows (about 16
        bytes each, compressed), the series store kept until the summary (8 bytes per pair,
        step and mode), and forwarding-state and traffic rows."""
        n_t, n_m = self.grid.n_steps, len(self.modes)
        rows = 16 * self.series_idx.size * n_t * n_m
        store = 8 * self.problem.pair_src.size * n_t * n_m
        flows = 0 if self.traffic is None else 12 * self.traffic.flow_pair.size * n_t * n_m
        return rows + store + flows

    @property
    def n_chunks(self) -> int:
        """Number of time chunks of the run."""
        return len(self.chunks)

    @property
    def pair_names(self) -> tuple[list[str], list[str]]:
        """Source and destination site names of every pair."""
        names = self.sites.names
        return (
            [names[i] for i in self.problem.pair_src],
            [names[i] for i in self.problem.pair_dst],
        )


# --- Building a plan -------------------------------------------------------------------------


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
        if not isinstance(entry, str):
            site = Site(
                entry.name if entry.name is not None else site.name,
                site.kind,
                site.lat_deg,
                site.lon_deg,
                site.alt_m,
                site.approximate or entry.approximate,
                entry.population if entry.population is not None else site.population,
            )
    except ScenarioError as exc:
        raise ScenarioError(where, exc.message) from None
    return Site(
        site.name, kind, site.lat_deg, site.lon_deg, site.alt_m, site.approximate, site.population
    )


def _build_sites(scenario: Scenario) -> tuple[Sites, list[Site]]:
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
    return _sites_of(scenario, sites), sites


def build_sites(scenario: Scenario) -> Sites:
    """The scenario's ground sites alone, on its Earth model (readers of a run folder use it to
    place the sites exactly as the run did)."""
    return _build_sites(scenario)[0]


def _sites_of(scenario: Scenario, sites: list[Site]) -> Sites:
    if scenario.earth_model == "pyephem":
        return Sites.from_sites(
            sites,
            a_m=LIBASTRO_EARTH_RADIUS_KM * 1e3,
            f=LIBASTRO_FLATTENING,
            earth_model="pyephem",
        )
    return Sites.from_sites(sites)


def make_propagator(
    constellation: Constellation,
    epoch: datetime,
    earth_model: str,
    dut1_s: float,
    *,
    node_spacing_s: float | None = None,
) -> Propagator:
    """A propagator with an Earth model and UT1 applied.

    ``earth_model = "pyephem"`` scales SGP4's WGS72 positions to pyephem's 6378.16 km Earth, as
    satgenpy measures with it (:mod:`starmesh.io.hypatia`). ``node_spacing_s`` (from
    :func:`ephemeris_node_spacing_s`) interpolates SGP4 between nodes that far apart.
    """
    scale = 1.0
    if earth_model == "pyephem":
        scale = LIBASTRO_EARTH_RADIUS_KM / SGP4_WGS72_RADIUS_KM
    return Propagator(
        constellation,
        epoch,
        dut1_s=dut1_s,
        scale=scale,
        earth_model="pyephem" if earth_model == "pyephem" else "wgs84",
        node_spacing_s=node_spacing_s,
    )


def ephemeris_node_spacing_s(
    ephemeris: str, earth_model: str, constellation: Constellation, step_s: float
) -> float | None:
    """Node spacing of the interpolated SGP4 ephemeris a run uses [s], or None for SGP4 at
    every step.

    ``constellation.ephemeris = "auto"`` interpolates (:class:`~starmesh.propagation.Propagator`,
    nodes every :data:`~starmesh.propagation.EPHEMERIS_NODE_S`) SGP4 element sets (real
    constellations, TLE/OMM files, ``layout = "hypatia"`` shells) on the WGS84 Earth model when
    the step is shorter than the node spacing. It stays off for ``earth_model = "pyephem"``
    (satgenpy's results, kept byte for byte), for Walker shells (closed form, already cheap) and
    for ``ephemeris = "exact"``.
    """
    if ephemeris == "exact" or earth_model == "pyephem" or constellation.kepler is not None:
        return None
    if constellation.elements is None or not step_s < EPHEMERIS_NODE_S:
        return None
    return EPHEMERIS_NODE_S


def scenario_propagator(scenario: Scenario, constellation: Constellation) -> Propagator:
    """The propagator of a scenario's run (its Earth model, UT1 and ephemeris mode): what the
    run and the readers of its folder (from the saved ``scenario.toml``) both use."""
    return make_propagator(
        constellation,
        parse_utc(scenario.time.start_utc),
        scenario.earth_model,
        scenario.run.dut1_s,
        node_spacing_s=ephemeris_node_spacing_s(
            scenario.constellation.ephemeris,
            scenario.earth_model,
            constellation,
            scenario.time.step_s,
        ),
    )


def build_constellation(scenario: Scenario) -> Constellation:
    """The scenario's constellation alone (no ground segment, traffic or disruptions).

    Readers of a run folder use it (with :func:`make_propagator`) to recompute satellite
    positions from the run's ``scenario.toml``; for a real set it is the filtered one.
    """
    return _build_constellation(scenario)[0]


def _laser_terminals(
    rc: RealConstellation, grid: TimeGrid
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float64]]:
    """Planes, next planes and arguments of latitude at the run's start [rad] of a real
    constellation: what tells a satellite's laser terminals apart (capacity.build_resources)."""
    inf = rc.inference
    dt = (grid.epoch - inf.epoch).total_seconds()
    return inf.plane_id, inf.plane_next, np.mod(inf.u_rad + inf.u_dot_rad_s * dt, 2.0 * np.pi)


def _min_elevation_deg(scenario: Scenario) -> float:
    """The GSL elevation mask [deg]: the scenario's, or a real preset's own default when the
    scenario does not set it."""
    preset = scenario.constellation.preset
    if (
        preset is not None
        and preset in REAL_MIN_ELEVATION_DEG
        and "min_elevation_deg" not in scenario.links.model_fields_set
    ):
        return REAL_MIN_ELEVATION_DEG[preset]
    return scenario.links.min_elevation_deg


def _criteria(scenario: Scenario) -> OperationalCriteria:
    """The scenario's operational filter thresholds."""
    return OperationalCriteria(**scenario.constellation.filter.model_dump())


def _real(name: str, build: Any, where: str) -> RealConstellation:
    """A real constellation, with a filter that keeps nothing refused in one line."""
    rc: RealConstellation = build()
    if rc.report.n_kept == 0:
        raise ScenarioError(
            where,
            f"the operational filter keeps none of the {rc.report.n_input:,} objects of {name} "
            f"({rc.report.summary()}): relax [constellation.filter] or set "
            "constellation.operational_filter = false",
        )
    if not rc.inference.shells:
        raise ScenarioError(
            where,
            f"no shell could be inferred from the {rc.report.n_kept:,} satellites kept of {name}: "
            "+Grid ISLs need planes; use links.isl = 'nearest-k' with "
            "constellation.operational_filter = false",
        )
    return rc


#: Largest element file read [bytes]: CelesTrak's whole active catalogue is about 5 MB as TLE and
#: 25 MB as OMM XML, so anything near this is not an element file.
MAX_ELEMENT_FILE_BYTES = 256 * 2**20
#: Element sets whose epoch is further than this from a step get a note [days]. SGP4 from a
#: fresh TLE is good to about 1 km over a day or two for LEO (Vallado et al., AIAA 2006-6753;
#: CelesTrak's guidance that TLEs go stale within days); the refusal limit is the scenario's
#: ``constellation.max_epoch_age_days`` (default 30).
WARN_EPOCH_AGE_DAYS = 3.0


def _element_file_sha256(path: str) -> str:
    """SHA-256 of an element file, refusing what is not a regular file of sane size."""
    p = Path(path)
    where = "constellation.tle_file"
    if p.exists() and not p.is_file():
        raise ScenarioError(where, f"{path!r} is not a regular file: give a TLE or OMM file")
    if p.is_file() and p.stat().st_size > MAX_ELEMENT_FILE_BYTES:
        raise ScenarioError(
            where,
            f"{path!r} has {p.stat().st_size / 2**20:.0f} MiB, more than any element file "
            f"({MAX_ELEMENT_FILE_BYTES // 2**20} MiB): is this the right file?",
        )
    try:
        return hashlib.sha256(p.read_bytes()).hexdigest()
    except OSError:
        return ""  # load_elements says what is wrong with it


def _check_elements(
    elements: ElementSet, grid: TimeGrid, max_age_days: float, notes: list[str]
) -> None:
    """Refuse element sets that cannot describe the run: duplicate or damaged records, epochs
    far from the run."""
    where = "constellation.tle_file"
    ids = np.array([r.norad_id for r in elements.records], np.int64)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = int(uniq[counts > 1][0])
        raise ScenarioError(
            where,
            f"NORAD id {dup} appears {int(counts[counts > 1][0])} times in {elements.source}: "
            "keep one element set per satellite (the newest)",
        )
    for r in elements.records:
        if "\x00" in r.name:
            raise ScenarioError(
                where, f"record at line {r.line_no} of {elements.source} has a NUL byte in its name"
            )
    start = grid.epoch
    stop = start + timedelta(seconds=float(grid.n_steps * grid.step_s))
    ages = (
        np.array(
            [
                max(abs((r.epoch - start).total_seconds()), abs((r.epoch - stop).total_seconds()))
                for r in elements.records
            ]
        )
        / 86400.0
    )
    worst = int(np.argmax(ages)) if ages.size else 0
    if ages.size and ages[worst] > max_age_days:
        r = elements.records[worst]
        raise ScenarioError(
            where,
            f"{int((ages > max_age_days).sum())} element set(s) have epochs more than "
            f"{max_age_days:g} days from the run (e.g. {r.name or r.norad_id} at "
            f"{r.epoch.isoformat()}, {ages[worst]:.0f} days): SGP4 is meaningless that far "
            "from its epoch; get fresh elements, move time.start_utc near their epochs, or raise "
            "constellation.max_epoch_age_days",
        )
    stale = int((ages > WARN_EPOCH_AGE_DAYS).sum())
    if stale:
        notes.append(
            f"{stale} element set(s) are more than {WARN_EPOCH_AGE_DAYS:g} days from the run: "
            "positions drift by kilometres per day away from a TLE's epoch"
        )


def _build_constellation(
    scenario: Scenario, notes: list[str] | None = None, grid: TimeGrid | None = None
) -> tuple[Constellation, str | None, RealConstellation | None]:
    """The scenario's constellation, for an element file its SHA-256, and for a filtered real
    set (real preset, or element file with the operational filter) its filter report and
    inferred shells."""
    c = scenario.constellation
    if c.tle_file is not None:
        digest = _element_file_sha256(c.tle_file)
        if c.tle_sha256 is not None and digest != c.tle_sha256:
            raise ScenarioError(
                "constellation.tle_file",
                f"{c.tle_file!r} changed since this run started (SHA-256 {digest[:12]}..., the run "
                f"recorded {c.tle_sha256[:12]}...): restore the file, or start the run again "
                "with --force",
            )
        try:
            elements = load_elements(c.tle_file, skip_bad=c.skip_bad_tle)
        except RecursionError:
            raise ScenarioError(
                "constellation.tle_file",
                f"{c.tle_file!r} nests arrays or objects too deeply to be an element file",
            ) from None
        if elements.skipped and notes is not None:
            notes.append(
                f"skipped {len(elements.skipped)} malformed TLE record(s) of {c.tle_file}; "
                f"first: {elements.skipped[0]}"
            )
        if grid is not None and notes is not None:
            _check_elements(elements, grid, c.max_epoch_age_days, notes)
        name = Path(c.tle_file).stem
        if c.operational_filter:
            epoch = grid.epoch if grid is not None else parse_utc(scenario.time.start_utc)
            rc = _real(
                name,
                lambda: real_constellation(
                    name, elements, epoch=epoch, criteria=_criteria(scenario)
                ),
                "constellation.filter",
            )
            return rc.constellation, digest, rc
        return Constellation.from_elements(name, elements), digest, None
    if c.preset is not None and is_real_constellation(c.preset):
        preset = c.preset
        crit = _criteria(scenario)
        if not c.operational_filter:
            # Every object is kept, and still shells are inferred for the +Grid.
            crit = keep_everything(crit)
        rc = _real(
            preset,
            lambda: load_real_constellation(preset, criteria=crit),
            "constellation.filter",
        )
        return rc.constellation, None, rc
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
    return Constellation.from_shells(name, shells, epoch=scenario.time.start_utc), None, None


#: Flows a run may hold (each is a row of the flow x resource incidence at every step).
MAX_FLOWS = 2_000_000


def _check_traffic_size(scenario: Scenario) -> None:
    """Refuse traffic that would expand into more flows than a run can hold, before building."""
    t = scenario.traffic
    if t is None or t.model != "access" or t.aggregate:
        return
    n_sites = len(scenario.ground.terminals)
    ds = scenario.ground.terminal_dataset
    if ds == "hypatia-top100":
        n_sites += 100
    elif ds is not None:
        n_sites += int(ds.removeprefix("top-cities:"))
    n_flows = 2 * n_sites * t.terminals_per_site
    if n_flows > MAX_FLOWS:
        raise BudgetError(
            f"traffic.terminals_per_site: {t.terminals_per_site:,} terminals per site with "
            f"aggregate = false is {n_flows:,} flows, more than a run holds ({MAX_FLOWS:,}): "
            "set traffic.aggregate = true (one flow per site and direction)"
        )


def machine_memory_bytes() -> int:
    """Physical memory of this machine [bytes] (8 GiB if it cannot be told)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def chunk_memory_bytes(n_sats: int, n_sites: int, n_pairs: int, n_modes: int, steps: int) -> int:
    """Working memory of one chunk of ``steps`` steps, roughly [bytes].

    Positions ``(T, S, 3)`` float64 and their GSL candidates; per mode the shortest-path trees
    (distance and edge, 16 bytes per root and node; at most every site is a root) and per-pair
    results (RTT, hops, serving satellites, path hash: 26 bytes per pair and step), and the
    chunk's series in the run's store (8 bytes per pair, step and mode).
    """
    n_nodes = n_sats + 2 * n_sites
    positions = 24 * n_sats * (steps + 1) * 3  # positions, ECEF copies and link geometry
    trees = 16 * n_sites * n_nodes * n_modes
    pairs = 34 * n_pairs * (steps + 1) * n_modes
    return positions + trees + pairs


#: GSL candidates held per chunk are kept near this size [bytes] when chunk_steps is not given.
_CHUNK_GSL_BYTES = 512 * 2**20


def _gsl_bytes_per_step(n_sats: int, n_sites: int) -> int:
    """Working memory of one step's GSL candidates, roughly [bytes]: about 0.8 % of the
    satellites are within a site's search radius (a 25 deg mask at 480-570 km), at about 200
    bytes each through the search, elevation and link arrays (measured on W4: 13 kB per site
    and step with 8,596 satellites)."""
    return max(1, int(200 * n_sites * max(1.0, 0.008 * n_sats)))


def _chunk_steps(scenario: Scenario, n_sats: int, n_sites: int, n_pairs: int, n_modes: int) -> int:
    """Steps per chunk: the scenario's, or as many as keep positions near 32 MB and the chunk
    within the memory budget; refuse a run whose single step does not fit."""
    budget = scenario.run.max_memory_fraction * machine_memory_bytes()
    if chunk_memory_bytes(n_sats, n_sites, n_pairs, n_modes, 1) > budget:
        need = chunk_memory_bytes(n_sats, n_sites, n_pairs, n_modes, 1)
        raise BudgetError(
            f"one step of this run needs about {need / 2**30:.1f} GiB ({n_pairs:,} pairs, "
            f"{n_sites:,} sites, {n_sats:,} satellites), more than "
            f"{scenario.run.max_memory_fraction:.0%} of this machine's "
            f"{machine_memory_bytes() / 2**30:.0f} GiB: route fewer pairs (routing.pairs, "
            "terminal_dataset) or raise run.max_memory_fraction"
        )
    if scenario.run.chunk_steps is not None:
        need = chunk_memory_bytes(n_sats, n_sites, n_pairs, n_modes, scenario.run.chunk_steps)
        if need > budget:
            raise BudgetError(
                f"run.chunk_steps: {scenario.run.chunk_steps} steps per chunk need about "
                f"{need / 2**30:.1f} GiB, more than {scenario.run.max_memory_fraction:.0%} of "
                "this machine's memory: lower run.chunk_steps (or leave it out)"
            )
        return scenario.run.chunk_steps
    steps = max(1, min(600, _CHUNK_POSITION_BYTES // (24 * max(n_sats, 1))))
    # GSL candidates grow with sites x satellites in view: keep them near their own target
    # (W4, 1,318 sites over 8,596 satellites: a 162-step chunk peaked at 3.5 GB).
    steps = max(1, min(steps, _CHUNK_GSL_BYTES // _gsl_bytes_per_step(n_sats, n_sites)))
    while steps > 1 and chunk_memory_bytes(n_sats, n_sites, n_pairs, n_modes, steps) > budget / 4:
        steps //= 2
    return steps


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


def denied_fence(scenario: Scenario) -> Geofence | None:
    """The union of the scenario's ``[[disruptions.denied_areas]]`` (None without any)."""
    d = scenario.disruptions
    if not d.denied_areas:
        return None
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
    return fence


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
    fence = denied_fence(scenario)
    if fence is not None:
        terminals = np.array([k == "terminal" for k in sites.kinds])
        denied = fence.denied_sites(np.degrees(sites.lat_rad), np.degrees(sites.lon_rad))
        denied = denied & terminals
    profiles = None
    if d.link_budget or jammers:
        ku, ka = starlink_ku_user(), starlink_ka_feeder()
        profiles = tuple(ka if k == "gateway" else ku for k in sites.kinds)
    return failures, jammers, denied, profiles


#: Resolving a resolved scenario gives it back after at most this many rounds (float round
#: trips of unit conversions settle after one).
_MAX_RESOLVE_ROUNDS = 4


def build_plan(scenario: Scenario) -> RunPlan:
    """Resolve a scenario into a :class:`RunPlan`; every input error is raised here.

    The plan is built from the *resolved* scenario (:func:`resolved_scenario`), the one its run
    folder records, so that running a run folder's own ``scenario.toml`` (``--resume``) builds
    the same plan, bit for bit, as the original scenario did.

    Parameters
    ----------
    scenario : Scenario

    Returns
    -------
    RunPlan

    Raises
    ------
    ScenarioError, TLEFormatError, StarmeshError
    """
    given = scenario.model_dump(mode="json", exclude_none=True)
    plan, resolved = _build(scenario)
    rounds = 1
    while resolved != given and rounds < _MAX_RESOLVE_ROUNDS:
        given = resolved
        plan, resolved = _build(Scenario.model_validate(resolved))
        rounds += 1
    if resolved != given:  # pragma: no cover - a resolution that does not settle is a bug
        raise ScenarioError("scenario", "resolving the scenario does not settle: please report it")
    # The resolved scenario leaves out run.workers (it changes no result): keep the caller's.
    return replace(plan, workers=scenario.run.workers)


def _build(scenario: Scenario) -> tuple[RunPlan, dict[str, Any]]:
    """One plan of a scenario as given, and the scenario it resolves to."""
    grid = TimeGrid.from_utc(
        parse_utc(scenario.time.start_utc),
        duration_s=scenario.time.duration_s,
        step_s=scenario.time.step_s,
    )
    if grid.n_steps > scenario.run.max_steps:
        raise BudgetError(
            f"time: {scenario.time.duration_s:g} s at step_s = {scenario.time.step_s:g} s is "
            f"{grid.n_steps:,} steps, more than run.max_steps = {scenario.run.max_steps:,}: use "
            "a longer step or a shorter duration, or raise run.max_steps if you mean it"
        )
    _check_traffic_size(scenario)
    notes: list[str] = []
    constellation, tle_sha256, rc = _build_constellation(scenario, notes, grid)
    sites, site_list = _build_sites(scenario)
    home_pairs = None
    if _wants_home_pops(scenario):
        site_list, home_pairs = _home_pops(site_list, notes)
        sites = _sites_of(scenario, site_list)
    links = scenario.links
    propagator = scenario_propagator(scenario, constellation)
    if not constellation.shells:
        # An element set none of whose satellites SGP4 can propagate at the start (decayed,
        # corrupt mean elements) gives a run with no network at all: refuse it in one line.
        _r0, ok0 = propagator.positions_ecef_m(grid.t_s(0, 1))
        if not ok0.any():
            raise ScenarioError(
                "constellation.tle_file",
                f"none of the {constellation.n_sats} satellites can be propagated at "
                f"{scenario.time.start_utc} (SGP4 fails for every element set: decayed or "
                "damaged elements): use a current element set",
            )
    isl_plus: PlusGridIsl | None = None
    if rc is not None:
        notes.append(f"operational filter of {constellation.name}: {rc.report.summary()}")
    if links.isl_max_range_km is not None:
        isl_range = links.isl_max_range_km * 1e3
    elif rc is not None:
        isl_range = rc.default_isl_range_m()
    elif constellation.shells:
        isl_range = max_isl_range_m(min(s.shell.altitude_m for s in constellation.shells))
    else:
        isl_range = max_isl_range_m(500e3)
    if links.isl == "none":
        isl_edges = np.zeros((0, 2), np.int32)
    elif links.isl == "plus-grid" and constellation.shells:
        isl_edges = plus_grid_edges(constellation)
    elif links.isl == "plus-grid" and rc is not None:
        # Re-paired at every step of every chunk (engine); the first step's links are the
        # run's record in isls.parquet and what ISL failures name.
        isl_plus = rc.plus_grid(
            isl_range, cross_plane=links.isl_cross_plane, cross_shell=links.isl_cross_shell
        )
        t0 = grid.t_s(0, 1)
        r0, ok0 = propagator.positions_ecef_m(t0)
        e0, up0 = isl_plus.links(r0, ok0, t0, epoch=grid.epoch)
        isl_edges = e0[up0[0]]
    else:
        # nearest-k, or +Grid asked of satellites without a plane/slot layout (TLE sets).
        r0, ok0 = propagator.positions_ecef_m(grid.t_s(0, 1))
        isl_edges = nearest_k_edges(r0[0], ok0[0], k=links.isl_k, max_range_m=isl_range)
    min_elevation_deg = _min_elevation_deg(scenario)
    if links.gsl_rule == "max-range":
        assert links.gsl_max_range_km is not None
        rule = GslRule(max_range_m=links.gsl_max_range_km * 1e3)
    else:
        rule = GslRule(min_elevation_rad=math.radians(min_elevation_deg))
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
    src, dst = _pairs(scenario, sites) if home_pairs is None else home_pairs
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
    chunk = _chunk_steps(scenario, constellation.n_sats, len(sites), src.size, len(modes))
    series_idx = _series(scenario, sites, src, dst)
    traffic = None
    if traffic_flows is not None:
        assert flow_pair is not None and flow_reverse is not None and per_site is not None
        resources = build_resources(
            constellation.n_sats,
            list(sites.kinds),
            isl_edges if isl_plus is None else np.zeros((0, 2), np.int64),
            f_gw,
            f_pop,
            caps,
            n_terminals_per_site=per_site,
            # Re-paired ISLs: capacity per laser terminal, not per (varying) link.
            isl_terminals=None if isl_plus is None or rc is None else _laser_terminals(rc, grid),
        )
        traffic = TrafficPlan(traffic_flows, resources, flow_pair, flow_reverse, per_site)
    failures, jammers, denied, profiles = _disruptions(scenario, constellation, sites, isl_edges)
    plan = RunPlan(
        name=scenario.name,
        earth_model=scenario.earth_model,
        dut1_s=scenario.run.dut1_s,
        ephemeris_node_s=propagator.node_spacing_s,
        forwarding_state=scenario.routing.forwarding_state,
        workers=scenario.run.workers,
        seed=scenario.seed,
        service=_service_plan(scenario, sites, src, dst, grid, constellation, notes),
        notes=tuple(notes),
        failures=failures,
        jammers=jammers,
        denied=denied,
        profiles=profiles,
        series_idx=series_idx,
        traffic=traffic,
        grid=grid,
        constellation=constellation,
        sites=sites,
        problem=problem,
        isl_edges=isl_edges,
        isl_max_range_m=isl_range,
        isl=isl_plus,
        constellation_filter=rc.report if rc is not None else None,
        gsl_rule=rule,
        modes=modes,
        chunk_steps=chunk,
        visibility_slot_s=scenario.coverage.slot_s if scenario.coverage is not None else 15.0,
    )
    resolved = resolved_scenario(scenario, plan, site_list, tle_sha256)
    object.__setattr__(plan, "resolved", resolved)
    return plan, resolved


def resolved_scenario(
    sc: Scenario, plan: RunPlan, site_list: list[Site], tle_sha256: str | None = None
) -> dict[str, Any]:
    """The scenario as run: presets expanded to shells, names to coordinates, pairs listed.

    Running the result again gives the same plan (and so the same bytes): a resumed run
    rebuilds its plan from this.
    """
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
    elif sc.constellation.preset is not None:
        # A real preset stays a name (with its filter): the set is built in, and its filter
        # and inference are deterministic.
        c["preset"] = sc.constellation.preset
    else:
        c["tle_file"] = str(Path(cons.source).resolve())
        c["skip_bad_tle"] = sc.constellation.skip_bad_tle
        c["tle_sha256"] = tle_sha256
        c["max_epoch_age_days"] = sc.constellation.max_epoch_age_days
    if sc.constellation.ephemeris != "auto":
        c["ephemeris"] = sc.constellation.ephemeris
    if not cons.shells:
        c["operational_filter"] = sc.constellation.operational_filter
        c["filter"] = sc.constellation.filter.model_dump(mode="json")
    data["constellation"] = c
    if plan.constellation_filter is not None or plan.isl is not None:
        data["links"]["min_elevation_deg"] = _min_elevation_deg(sc)
    ground: dict[str, list[dict[str, Any]]] = {"terminals": [], "gateways": [], "pops": []}
    key = {"terminal": "terminals", "gateway": "gateways", "pop": "pops"}
    # The sites' coordinates as given (not recomputed from radians), so that resolving again
    # gives the same numbers.
    for site, kind in zip(site_list, plan.sites.kinds, strict=True):
        entry: dict[str, Any] = {
            "name": site.name,
            "lat_deg": float(site.lat_deg),
            "lon_deg": float(site.lon_deg),
            "alt_m": float(site.alt_m),
        }
        if site.population is not None:
            entry["population"] = int(site.population)
        if site.approximate:
            entry["approximate"] = True
        ground[key[kind]].append(entry)
    data["ground"] = ground
    if not cons.shells and sc.links.isl == "plus-grid" and plan.isl is None:
        data["links"]["isl"] = "nearest-k"
    if plan.isl_edges.size or plan.isl is not None:
        data["links"]["isl_max_range_km"] = plan.isl_max_range_m / 1e3
    src, dst = plan.pair_names
    data["routing"]["pairs"] = [[a, b] for a, b in zip(src, dst, strict=True)]
    data["run"]["chunk_steps"] = plan.chunk_steps
    # How many workers computed it changes nothing in the results: not part of the record.
    data["run"].pop("workers", None)
    # Canonical form (the model's field order), so that resolving a resolved scenario gives the
    # same bytes: a resumed run recognises its folder by this hash.
    return Scenario.model_validate(data).model_dump(mode="json", exclude_none=True)


# --- The service model (starmesh.service) -----------------------------------------------------


@dataclass(frozen=True)
class ServicePlan:
    """The service model's resolved settings (SI units; see :class:`~starmesh.scenario.
    ServiceSpec` and :mod:`starmesh.service`).

    Attributes
    ----------
    params : ServiceParams
        Frames, processing, queue bound, fallback utilisation.
    policy : str
        Scheduler policy (``"hold"``, ``"highest"``, ``"north"``, ``"random"``).
    slot_s, slot_offset_s, epoch_second_of_minute : float
        Slot length, boundary offset in the minute and the run epoch's seconds past the minute.
    quantiles : tuple of float
        RTT quantile levels written per step.
    terminals : ndarray of int64, shape (Gt,)
        Site indices of the scheduled terminals (every terminal site).
    pair_terminal : ndarray of int64, shape (P,)
        Column in ``terminals`` of each pair's source terminal (-1: the source is no terminal).
    pair_far_terminal : ndarray of int64, shape (P,)
        Column of each pair's destination terminal (-1: none).
    internet_s : ndarray, shape (P,)
        One-way delay PoP -> Internet server [s] of each pair (0 without a server).
    subscribers_per_m2 : float or None
        Subscriber density for the load model (None: the fallback utilisation).
    demand_bps, beams_per_cell, terminal_max_bps : float
    sat_capacity_bps : ndarray, shape (S,)
        User-downlink capacity of each satellite [bit/s] (its generation's, or the scenario's
        single value).
    fleet : dict of str to int
        Satellites per generation (:func:`starmesh.service.fleet.fleet_mix`), or, for a single
        scenario-level capacity, ``{label: S}``.
    capacity_basis : str
        Where the capacities come from, one line for the run summary.
    cell_partition : str
        ``"capacity"`` or ``"count"`` (``service.cell_partition``).
    subscriber_cells : RegionCells or None
        Where the subscribers live (``service.subscriber_region``); None: everywhere.
    cell_area_m2 : ndarray, shape (Gt,)
        Area of each terminal's H3 cell [m^2].
    rain_db : ndarray, shape (Gt,)
        Rain fade of each terminal's downlink [dB] (0 without ``rain_exceedance_percent``).
    min_elevation_rad : float
        Edge of a satellite's coverage for the footprint of the load model.
    up_demand_bps : float
        Busy-hour upstream demand per subscriber [bit/s] (``service.busy_hour_up_demand_mbps``;
        default ``demand_bps x params.UPSTREAM_RATIO``).
    uplink_capacity_ratio : float
        A satellite's user-uplink over its user-downlink capacity
        (``params.UPLINK_CAPACITY_RATIO``).
    terminal_up_max_bps : float
        Upload ceiling of one terminal [bit/s] (``params.TERMINAL_UP_MAX_BPS``).
    rain_up_db : ndarray, shape (Gt,)
        Rain fade of each terminal's uplink at 14.25 GHz [dB].
    """

    params: ServiceParams
    policy: str
    slot_s: float
    slot_offset_s: float
    epoch_second_of_minute: float
    quantiles: tuple[float, ...]
    terminals: NDArray[np.int64]
    pair_terminal: NDArray[np.int64]
    pair_far_terminal: NDArray[np.int64]
    internet_s: NDArray[np.float64]
    subscribers_per_m2: float | None
    demand_bps: float
    sat_capacity_bps: NDArray[np.float64]
    fleet: dict[str, int]
    capacity_basis: str
    cell_partition: str
    subscriber_cells: RegionCells | None
    beams_per_cell: float
    cell_area_m2: NDArray[np.float64]
    terminal_max_bps: float
    rain_db: NDArray[np.float64]
    min_elevation_rad: float
    up_demand_bps: float
    uplink_capacity_ratio: float
    terminal_up_max_bps: float
    rain_up_db: NDArray[np.float64]


def _wants_home_pops(scenario: Scenario) -> bool:
    sv = scenario.service
    return (
        sv.model == "service"
        and sv.pop_policy == "table"
        and scenario.routing.pairs == "terminal-to-nearest-pop"
    )


#: A scenario PoP this close to a terminal's home PoP [m] stands for it (no site is added).
_SAME_POP_M = 100e3


def _home_pops(
    site_list: list[Site], notes: list[str]
) -> tuple[list[Site], tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Route each terminal to its Starlink home PoP (region table), adding the PoPs it needs.

    A scenario PoP within 100 km of the home PoP is used as it is; otherwise the table's PoP is
    added as a site named ``"PoP <code>"``. Terminals whose region is not in the table get the
    scenario's nearest PoP, or the nearest table PoP when the scenario lists none (said in the
    notes).
    """
    from .service.latency import great_circle_m
    from .service.pops import assign_pops, load_pop_table, site_regions

    table = load_pop_table()
    term = [i for i, s in enumerate(site_list) if s.kind == "terminal"]
    lat = np.array([site_list[i].lat_deg for i in term])
    lon = np.array([site_list[i].lon_deg for i in term])
    country, region = site_regions(lat, lon)
    pop_idx, hit = assign_pops(lat, lon, country, region, table=table, policy="table")
    if (~hit).any():
        notes.append(
            f"{int((~hit).sum())} terminal(s) are in regions the PoP table lacks "
            f"({', '.join(sorted({country[g] for g in np.flatnonzero(~hit)}))}): the nearest "
            "PoP of the scenario (or of the table, when the scenario has none) is used"
        )
    out = list(site_list)
    given = [i for i, s in enumerate(site_list) if s.kind == "pop"]
    dst = []
    for g, q in enumerate(pop_idx):
        if not hit[g] and given:
            # A region the table does not know: the scenario's own nearest PoP.
            d = [
                float(great_circle_m(lat[g], lon[g], out[i].lat_deg, out[i].lon_deg)) for i in given
            ]
            dst.append(given[int(np.argmin(d))])
            continue
        plat, plon = float(table.lat_deg[q]), float(table.lon_deg[q])
        pops = [i for i, s in enumerate(out) if s.kind == "pop"]
        d = [float(great_circle_m(plat, plon, out[i].lat_deg, out[i].lon_deg)) for i in pops]
        if d and min(d) <= _SAME_POP_M:
            dst.append(pops[int(np.argmin(d))])
        else:
            out.append(Site(f"PoP {table.code[q]}", "pop", plat, plon))
            dst.append(len(out) - 1)
    return out, (np.array(term, np.int64), np.array(dst, np.int64))


def _satellite_capacities(
    scenario: Scenario, constellation: Constellation, notes: list[str]
) -> tuple[NDArray[np.float64], dict[str, int], str]:
    """Each satellite's user-downlink capacity [bit/s], the fleet mix and its basis.

    ``service.sat_capacity_gbps`` gives every satellite one capacity; ``sat_generation`` one
    generation (``"mix"``: the v1.5 / v2-mini mean); ``"auto"`` reads each satellite's
    generation from its international designator (:mod:`starmesh.service.fleet`) for a real
    set, and is ``"mix"`` for Walker shells (no designators).
    """
    from .service import params as sp
    from .service.fleet import (
        DIRECT_TO_CELL,
        UNKNOWN,
        fleet_mix,
        generation_capacity_bps,
        satellite_generations,
    )

    sv = scenario.service
    n_s = constellation.n_sats
    mix_bps = 0.5 * (sp.V1_5.capacity_bps + sp.V2_MINI.capacity_bps)
    if sv.sat_capacity_gbps is not None:
        label = f"{sv.sat_capacity_gbps:g} Gbit/s (service.sat_capacity_gbps)"
        return np.full(n_s, sv.sat_capacity_gbps * 1e9), {label: n_s}, label
    gen = sv.sat_generation
    real = constellation.elements is not None and not constellation.shells
    if gen == "auto" and not real:
        gen = "mix"
    if gen == "mix":
        label = "mix: mean of v1.5 and v2 mini, 58 Gbit/s (ASSUMED half and half)"
        return np.full(n_s, mix_bps), {"mix (v1.5/v2-mini mean)": n_s}, label
    if gen != "auto":
        cap = sp.GENERATIONS[gen].capacity_bps
        return np.full(n_s, cap), {gen: n_s}, f"every satellite {gen} (service.sat_generation)"
    assert constellation.elements is not None
    els = constellation.elements
    gens = satellite_generations(els.names, els.intl_designators)
    mix = fleet_mix(gens)
    if mix.get(UNKNOWN):
        notes.append(
            f"{mix[UNKNOWN]:,} satellite(s) of {constellation.name} are not in the Starlink "
            "launch -> generation table (not Starlink, unreadable designator or a launch it "
            "does not list): they get the v1.5/v2-mini mean of 58 Gbit/s; set "
            "service.sat_generation or service.sat_capacity_gbps to choose"
        )
    if mix.get(DIRECT_TO_CELL):
        notes.append(
            f"{mix[DIRECT_TO_CELL]:,} direct-to-cell satellite(s) kept: no broadband capacity"
        )
    label = (
        "per satellite from its international designator ("
        + ", ".join(f"{k} {v:,}" for k, v in mix.items())
        + ")"
    )
    notes.append(f"satellite generations: {label}")
    return generation_capacity_bps(gens, mix_bps), mix, label


def _service_plan(
    scenario: Scenario,
    sites: Sites,
    src: NDArray[np.int64],
    dst: NDArray[np.int64],
    grid: TimeGrid,
    constellation: Constellation,
    notes: list[str],
) -> ServicePlan | None:
    """The service model's settings, or None for ``model = "geometric"``."""
    from .service.latency import fibre_delay_s as net_delay_s
    from .service.latency import great_circle_m

    sv = scenario.service
    if sv.model == "geometric":
        return None
    params = ServiceParams(
        frame_s=sv.frame_ms * 1e-3,
        grant_frames=sv.grant_frames,
        feeder_frame_s=sv.feeder_frame_ms * 1e-3,
        sat_processing_s=sv.sat_processing_ms * 1e-3,
        ground_processing_s=sv.ground_processing_ms * 1e-3,
        isl_hop_processing_s=sv.isl_hop_processing_ms * 1e-3,
        fibre_route_factor=sv.internet_route_factor,
        utilisation=sv.utilisation,
        queue_delay_max_s=sv.queue_delay_max_ms * 1e-3,
        pre2024_excess_median_s=(
            pre2024_excess_median_s(grid.epoch)
            if sv.pre2024_excess_median_ms is None
            else sv.pre2024_excess_median_ms * 1e-3
        ),
    )
    if params.pre2024_excess_median_s > 0.0:
        notes.append(
            f"pre-2024 network excess: median {params.pre2024_excess_median_s * 1e3:g} ms per "
            "round trip (service.pre2024_excess_median_ms; SpaceX 2024-03-08)"
        )
    terminals = sites.of_kind("terminal").astype(np.int64)
    col = np.full(len(sites), -1, np.int64)
    col[terminals] = np.arange(terminals.size)
    internet = np.zeros(src.size)
    if sv.internet_server is not None:
        server = _resolve_site(sv.internet_server, "terminal", "service.internet_server")
        is_pop = np.array([sites.kinds[i] == "pop" for i in dst])
        lat, lon = sites.lat_deg[dst], sites.lon_deg[dst]
        d = great_circle_m(lat, lon, server.lat_deg, server.lon_deg)
        internet = np.where(is_pop, net_delay_s(d, route_factor=sv.internet_route_factor), 0.0)
    tlat, tlon = sites.lat_deg[terminals], sites.lon_deg[terminals]
    cell_area = np.zeros(terminals.size)
    if sv.subscribers_per_km2 is not None and terminals.size:
        from .service.throughput import cell_area_m2, cells_of

        cell_area = cell_area_m2(cells_of(tlat, tlon, sv.cell_h3_res))
    rain = np.zeros(terminals.size)
    rain_up = np.zeros(terminals.size)
    if sv.rain_exceedance_percent is not None and terminals.size:
        from .linkbudget import KU_UPLINK_HZ
        from .service.throughput import rain_fade_db

        # At the coverage edge (the lowest elevation served): the worst case of a terminal.
        edge = np.full(terminals.size, max(scenario.links.min_elevation_deg, 5.0))
        rain = rain_fade_db(
            tlat, tlon, edge, frequency_hz=11.7e9, exceedance_percent=sv.rain_exceedance_percent
        )
        rain_up = rain_fade_db(
            tlat,
            tlon,
            edge,
            frequency_hz=KU_UPLINK_HZ,
            exceedance_percent=sv.rain_exceedance_percent,
        )
    epoch = grid.epoch
    sat_cap, fleet, basis = _satellite_capacities(scenario, constellation, notes)
    sub_cells = None
    if sv.subscriber_region is not None:
        from .service.throughput import region_cells_of

        try:
            sub_cells = region_cells_of(sv.subscriber_region)
        except ScenarioError as e:
            raise ScenarioError("service.subscriber_region", e.message) from None
    return ServicePlan(
        params=params,
        policy=sv.scheduler_policy,
        slot_s=sv.slot_s,
        slot_offset_s=sv.slot_offset_s,
        epoch_second_of_minute=epoch.second + epoch.microsecond * 1e-6,
        quantiles=tuple(sv.rtt_quantiles),
        terminals=terminals,
        pair_terminal=col[src],
        pair_far_terminal=col[dst],
        internet_s=internet,
        subscribers_per_m2=(
            None if sv.subscribers_per_km2 is None else sv.subscribers_per_km2 * 1e-6
        ),
        demand_bps=sv.busy_hour_demand_mbps * 1e6,
        sat_capacity_bps=sat_cap,
        fleet=fleet,
        capacity_basis=basis,
        cell_partition=sv.cell_partition,
        subscriber_cells=sub_cells,
        beams_per_cell=sv.beams_per_cell,
        cell_area_m2=cell_area,
        terminal_max_bps=sv.terminal_max_mbps * 1e6,
        rain_db=np.asarray(rain, np.float64),
        min_elevation_rad=math.radians(scenario.links.min_elevation_deg),
        up_demand_bps=(
            sv.busy_hour_demand_mbps * 1e6 * UPSTREAM_RATIO
            if sv.busy_hour_up_demand_mbps is None
            else sv.busy_hour_up_demand_mbps * 1e6
        ),
        uplink_capacity_ratio=(
            UPLINK_CAPACITY_RATIO if sv.uplink_capacity_ratio is None else sv.uplink_capacity_ratio
        ),
        terminal_up_max_bps=(
            TERMINAL_UP_MAX_BPS
            if sv.terminal_up_max_mbps is None
            else sv.terminal_up_max_mbps * 1e6
        ),
        rain_up_db=np.asarray(rain_up, np.float64),
    )
