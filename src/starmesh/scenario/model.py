"""The scenario model: pydantic models of a TOML scenario file.

No physics here. Field names carry their units; ranges are enforced; unknown keys are errors
that list the valid keys, so typos never pass silently.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from ..constellation import constellation_names, is_real_constellation
from ..errors import ScenarioError, StarmeshError
from ..timegrid import parse_utc
from .base import StrictModel
from .coverage import CoverageSpec
from .packets import PacketsSpec


class _Model(StrictModel, BaseModel):
    """A table of the scenario (:class:`~starmesh.scenario.base.StrictModel`)."""


class TimeSpec(_Model):
    """When and how finely to simulate."""

    start_utc: str = Field("2026-05-13T00:00:00Z", description="ISO 8601 UTC start time")
    duration_s: float = Field(3600.0, gt=0, le=31 * 86400.0, description="simulated span [s]")
    step_s: float = Field(1.0, gt=0, le=86400.0, description="time step [s]")

    @model_validator(mode="after")
    def _check(self) -> TimeSpec:
        try:
            parse_utc(self.start_utc)
        except StarmeshError as exc:
            raise ValueError(f"start_utc: {exc}") from None
        if self.step_s > self.duration_s:
            raise ValueError(
                f"step_s ({self.step_s:g}) is larger than duration_s ({self.duration_s:g}): "
                "make the step at most the duration"
            )
        return self


class ShellSpec(_Model):
    """One Walker shell."""

    name: str | None = None
    planes: int = Field(ge=1, le=1000)
    sats_per_plane: int = Field(ge=1, le=1000)
    phasing: int = Field(0, ge=0)
    altitude_km: float = Field(ge=160.0, le=50000.0)
    inclination_deg: float = Field(ge=0.0, le=180.0)
    pattern: Literal["delta", "star"] = "delta"
    mean_motion_rev_day: float | None = Field(None, gt=0.0, le=20.0)

    @model_validator(mode="after")
    def _check(self) -> ShellSpec:
        if self.phasing >= self.planes:
            raise ValueError(
                f"phasing must be in [0, planes - 1] = [0, {self.planes - 1}], got {self.phasing}"
            )
        return self


class FilterSpec(_Model):
    """The operational filter of a real constellation.

    Mirrors :class:`starmesh.realset.OperationalCriteria`, whose docstring and
    ``data/PROVENANCE.md`` give the sources of the defaults.

    ``max_epoch_age_days`` here (default 3 days) drops element sets older than that at the run's
    start as *stale* (no longer tracked well); it is not ``constellation.max_epoch_age_days``
    (default 30 days), which refuses the whole run because SGP4 is meaningless that far from an
    epoch.
    """

    min_altitude_km: float = Field(400.0, ge=100.0, le=2000.0)
    max_eccentricity: float = Field(0.005, gt=0.0, lt=1.0)
    max_altitude_rate_km_day: float = Field(1.0, gt=0.0, le=1000.0)
    max_abs_bstar_per_er: float = Field(0.01, gt=0.0, le=10.0)
    max_epoch_age_days: float = Field(3.0, gt=0.0, le=36_500.0)
    min_shell_neighbours: int = Field(150, ge=0, le=100_000)
    keep_direct_to_cell: bool = False
    keep_stale: bool = False
    keep_eccentric: bool = False
    keep_low: bool = False
    keep_manoeuvring: bool = False
    keep_off_shell: bool = False
    #: Keep only satellites launched before this day (international designators; only days
    #: with a sourced launch number: :data:`starmesh.service.fleet.LAUNCH_DATE_BOUNDARIES` or
    #: 1 January), e.g. ``2025-04-01`` for the Q1 2025 fleet still in a 2026 element set.
    launched_before: date | None = None

    @field_validator("launched_before")
    @classmethod
    def _sourced_day(cls, v: date | None) -> date | None:
        if v is not None:
            from ..service.fleet import first_launch_on_or_after

            try:
                first_launch_on_or_after(v)
            except ScenarioError as e:
                raise ValueError(e.message) from None
        return v


class ConstellationSpec(_Model):
    """Exactly one of ``preset``, ``shells`` or ``tle_file``.

    ``preset`` is a Walker preset (``starlink-gen1``, ...) or a built-in real constellation
    (``starlink-2026``). Real sets (a real preset, ``tle_file``) go through the operational
    filter (``operational_filter``, thresholds in ``[constellation.filter]``) and get inferred
    shells and re-paired +Grid ISLs; without the filter a ``tle_file`` runs every object with
    nearest-k ISLs, as before.
    """

    preset: str | None = None
    shells: list[ShellSpec] | None = None
    tle_file: str | None = None
    skip_bad_tle: bool = False
    #: SHA-256 of the TLE/OMM file's bytes, recorded by a run; a resume refuses a changed file.
    tle_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    #: Element sets whose epoch is further than this from any step are refused [days]: SGP4
    #: far from its epoch is meaningless (errors grow by km per day in LEO).
    max_epoch_age_days: float = Field(30.0, gt=0.0, le=36_500.0)
    layout: Literal["walker", "hypatia"] = "walker"
    #: Drop what is not an operational relay (real presets and element files).
    operational_filter: bool = True
    filter: FilterSpec = Field(default_factory=FilterSpec)
    #: SGP4 element sets: "auto" evaluates SGP4 on a 60-s node grid and interpolates between
    #: nodes (within 0.03 mm of SGP4, see starmesh.propagation) when earth_model = "wgs84" and
    #: the step is shorter than the nodes; "exact" evaluates SGP4 at every step.
    ephemeris: Literal["auto", "exact"] = Field(
        "auto",
        description="'auto' (SGP4 sets on WGS84: SGP4 every 60 s, interpolated between) or "
        "'exact' (SGP4 at every step)",
    )

    @model_validator(mode="after")
    def _check(self) -> ConstellationSpec:
        given = [k for k in ("preset", "shells", "tle_file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of preset, shells or tle_file"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.preset is not None and self.preset not in constellation_names():
            raise ValueError(
                f"unknown preset {self.preset!r}: use one of {', '.join(constellation_names())}"
            )
        if self.filter.launched_before is not None:
            real = self.tle_file is not None or (
                self.preset is not None and is_real_constellation(self.preset)
            )
            if not real:
                raise ValueError(
                    f"filter.launched_before = {self.filter.launched_before} needs a real "
                    "constellation (tle_file or a real preset such as starlink-2026): Walker "
                    "shells have no launches"
                )
            if self.tle_file is not None and not self.operational_filter:
                raise ValueError(
                    "filter.launched_before applies through the operational filter: set "
                    "operational_filter = true (with keep_* = true to keep what it drops)"
                )
        if self.layout == "hypatia":
            if self.shells is None:
                raise ValueError("layout='hypatia' needs explicit shells with mean_motion_rev_day")
            for s in self.shells:
                if s.mean_motion_rev_day is None:
                    raise ValueError(
                        "layout='hypatia' needs mean_motion_rev_day on every shell "
                        "(Hypatia's Starlink 550 km shell uses 15.19)"
                    )
                if s.phasing != 0:
                    # satgenpy advances odd planes by half a slot instead of Walker phasing;
                    # the orbit comes from mean_motion_rev_day (altitude_km only sets the
                    # default ISL range).
                    raise ValueError(
                        f"layout='hypatia' has no Walker phasing (odd planes are advanced half "
                        f"a slot): set phasing = 0, got {s.phasing}"
                    )
        return self


class SiteSpec(_Model):
    """A ground site: a city name, a Starlink gateway name, or explicit coordinates."""

    name: str | None = None
    city: str | None = None
    gateway: str | None = None
    lat_deg: float | None = Field(None, ge=-90.0, le=90.0)
    lon_deg: float | None = Field(None, ge=-180.0, le=180.0)
    alt_m: float = Field(0.0, ge=-500.0, le=9000.0)
    #: People the site stands for (gravity traffic); a city's GeoNames population by default.
    population: int | None = Field(None, ge=0)
    #: Coordinates rounded in their source (gateway filings): shown as approximate.
    approximate: bool = False

    @model_validator(mode="after")
    def _check(self) -> SiteSpec:
        has_pos = self.lat_deg is not None or self.lon_deg is not None
        given = sum([self.city is not None, self.gateway is not None, has_pos])
        if given != 1:
            raise ValueError("give exactly one of city, gateway, or lat_deg and lon_deg")
        if has_pos and (self.lat_deg is None or self.lon_deg is None or self.name is None):
            raise ValueError("a site by coordinates needs name, lat_deg and lon_deg")
        return self


def _str_or_table(value: Any) -> str:
    return "name" if isinstance(value, str) else "table"


#: A site entry: a plain name, or a table (one branch is chosen up front so that errors are
#: reported for that branch only).
SiteEntry = Annotated[
    Annotated[str, Tag("name")] | Annotated[SiteSpec, Tag("table")],
    Discriminator(_str_or_table),
]


class GroundSpec(_Model):
    """The ground segment. Plain strings are city names (gateways: Starlink gateway names)."""

    terminals: list[SiteEntry] = []
    terminal_dataset: str | None = Field(
        None,
        description="'hypatia-top100' (Hypatia's 100 cities) or 'top-cities:N' (the N most "
        "populous GeoNames cities)",
    )
    gateways: list[SiteEntry] = []
    pops: list[SiteEntry] = []

    @model_validator(mode="after")
    def _check(self) -> GroundSpec:
        ds = self.terminal_dataset
        if ds is not None and ds != "hypatia-top100":
            n = ds.removeprefix("top-cities:")
            if not (ds.startswith("top-cities:") and n.isdigit() and 1 <= int(n) <= 5000):
                raise ValueError(
                    f"terminal_dataset must be 'hypatia-top100' or 'top-cities:N' with N in "
                    f"[1, 5000], got {ds!r}"
                )
        if not self.terminals and self.terminal_dataset is None:
            raise ValueError('no terminals: add terminals = ["Kyiv", ...] or terminal_dataset')
        return self


class LinksSpec(_Model):
    """Which links exist."""

    isl: Literal["plus-grid", "nearest-k", "none"] = "plus-grid"
    isl_k: int = Field(4, ge=1, le=16)
    isl_max_range_km: float | None = Field(None, gt=0.0, le=100000.0)
    #: Re-paired +Grid of a real constellation: the adjacent-plane partner is the nearest
    #: satellite ("nearest") or the same Walker slot ("lattice").
    isl_cross_plane: Literal["nearest", "lattice"] = "nearest"
    #: Also link a real constellation's shells (mutual nearest of another shell).
    isl_cross_shell: bool = False
    gsl_rule: Literal["elevation", "max-range"] = "elevation"
    #: Default 25 deg (Gen1's FCC minimum); a real preset's own default when not given
    #: (:data:`starmesh.constellation.REAL_MIN_ELEVATION_DEG`).
    min_elevation_deg: float = Field(25.0, ge=0.0, lt=90.0)
    gsl_max_range_km: float | None = Field(None, gt=0.0, le=100000.0)
    fibre_route_factor: float = Field(1.5, ge=1.0, le=10.0)
    gateway_pop: Literal["nearest", "all"] = "nearest"

    @model_validator(mode="after")
    def _check(self) -> LinksSpec:
        if self.gsl_rule == "max-range" and self.gsl_max_range_km is None:
            raise ValueError("gsl_rule='max-range' needs gsl_max_range_km (Hypatia: 1089.686)")
        return self


def _all_count_or_list(value: Any) -> str:
    if isinstance(value, str):
        return "name"
    return "count" if isinstance(value, int) else "table"


PairRule = Literal["terminal-to-nearest-pop", "all-terminal-pairs"]
Mode = Literal["isl", "bent-pipe"]


def _default_modes() -> list[Mode]:
    return ["isl"]


class RoutingSpec(_Model):
    """What to route, and how."""

    modes: list[Mode] = Field(default_factory=_default_modes, min_length=1)
    series_pairs: Annotated[
        Annotated[Literal["all"], Tag("name")]
        | Annotated[int, Tag("count")]
        | Annotated[list[tuple[str, str]], Tag("table")],
        Discriminator(_all_count_or_list),
    ] = Field(
        "all",
        description="pairs whose full RTT series go to rtt.parquet: 'all', N (a seeded random "
        "choice of N pairs), or a list of [src, dst]; summary.json covers every pair",
    )
    forwarding_state: bool = Field(
        False,
        description="write every node's next hop towards every pair endpoint (fstate.parquet, "
        "as deltas) for export to Hypatia's ns-3 simulator",
    )
    pairs: Annotated[
        Annotated[PairRule, Tag("name")] | Annotated[list[tuple[str, str]], Tag("table")],
        Discriminator(_str_or_table),
    ] = "terminal-to-nearest-pop"

    @model_validator(mode="after")
    def _check(self) -> RoutingSpec:
        if isinstance(self.series_pairs, int) and self.series_pairs < 0:
            raise ValueError(f"series_pairs must be >= 0, got {self.series_pairs}")
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes has duplicates: {self.modes}")
        if isinstance(self.pairs, list) and not self.pairs:
            raise ValueError("pairs is empty: list [src, dst] site names or use a rule")
        return self


class RunSpec(_Model):
    """Execution settings (they never change results)."""

    chunk_steps: int | None = Field(None, ge=1, le=100000)
    workers: int | None = Field(
        None, ge=1, le=256, description="threads for routing (default: all cores)"
    )
    dut1_s: float = Field(0.0, ge=-0.9, le=0.9)
    #: Refuse runs of more steps than this (a typo in step_s should not start a month-long run);
    #: raise it for a run you mean.
    max_steps: int = Field(10_000_000, ge=1)
    #: Refuse runs whose working memory per chunk would exceed this share of the machine's RAM.
    max_memory_fraction: float = Field(0.6, gt=0.0, le=1.0)


class PlaneSpec(_Model):
    """Every satellite of one orbital plane (or of a whole shell, without ``plane``)."""

    shell: int = Field(ge=0)
    plane: int | None = Field(None, ge=0)


class FailureSpec(_Model):
    """Elements that fail, all in one optional time window ``[start_s, end_s)``."""

    satellites: list[int] = []
    satellite_fraction: float = Field(0.0, ge=0.0, le=1.0)
    planes: list[PlaneSpec] = []
    isl_fraction: float = Field(0.0, ge=0.0, le=1.0)
    isls: list[tuple[int, int]] = []
    gateways: list[str] = []
    pops: list[str] = []
    start_s: float | None = None
    end_s: float | None = None

    @model_validator(mode="after")
    def _check(self) -> FailureSpec:
        if self.start_s is not None and self.end_s is not None and not self.start_s < self.end_s:
            raise ValueError(
                f"start_s ({self.start_s}) must be before end_s ({self.end_s}): widen the window"
            )
        return self


class JammerSpec(_Model):
    """A ground (or airborne) jammer; give its power as ``eirp_w`` [W] or ``eirp_dbw``."""

    name: str
    lat_deg: float = Field(ge=-90.0, le=90.0)
    lon_deg: float = Field(ge=-180.0, le=180.0)
    alt_m: float = Field(10.0, ge=-500.0, le=30000.0)
    eirp_w: float | None = Field(None, gt=0.0)
    eirp_dbw: float | None = Field(None, ge=-100.0, le=150.0)
    band: Literal["downlink", "uplink"] = "downlink"
    bandwidth_mhz: float = Field(250.0, gt=0.0, le=10000.0)
    center_freq_ghz: float = Field(11.7, gt=0.0, le=100.0)
    start_s: float | None = None
    end_s: float | None = None

    @model_validator(mode="after")
    def _check(self) -> JammerSpec:
        if (self.eirp_w is None) == (self.eirp_dbw is None):
            raise ValueError("give the jammer's power as exactly one of eirp_w or eirp_dbw")
        return self


class CircleSpec(_Model):
    lat_deg: float = Field(ge=-90.0, le=90.0)
    lon_deg: float = Field(ge=-180.0, le=180.0)
    radius_km: float = Field(gt=0.0, le=20000.0)


class DeniedAreaSpec(_Model):
    """A service-denied area: inline GeoJSON (or a .geojson file path), or a circle."""

    name: str
    geojson: dict[str, Any] | str | None = None
    circle: CircleSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> DeniedAreaSpec:
        if (self.geojson is None) == (self.circle is None):
            raise ValueError("give a denied area as exactly one of geojson or circle")
        return self


class DisruptionsSpec(_Model):
    """What goes wrong: failures, jammers, service-denied areas."""

    failures: list[FailureSpec] = []
    jammers: list[JammerSpec] = []
    denied_areas: list[DeniedAreaSpec] = []
    link_budget: bool = Field(
        False,
        description="close every GSL's link budget (Ku user / Ka feeder, DVB-S2X); links that "
        "do not close are down; always on when there are jammers",
    )


class CapacitySpec(_Model):
    """Overrides of the sourced default link capacities (starmesh.capacity.LinkCapacities)."""

    sat_user_down_gbps: float | None = Field(None, gt=0.0)
    sat_user_up_gbps: float | None = Field(None, gt=0.0)
    sat_feeder_down_gbps: float | None = Field(None, gt=0.0)
    sat_feeder_up_gbps: float | None = Field(None, gt=0.0)
    gateway_down_gbps: float | None = Field(None, gt=0.0)
    gateway_up_gbps: float | None = Field(None, gt=0.0)
    isl_gbps: float | None = Field(None, gt=0.0)
    terminal_down_mbps: float | None = Field(None, gt=0.0)
    terminal_up_mbps: float | None = Field(None, gt=0.0)
    fibre_gbps: float | None = Field(None, gt=0.0)


class TrafficSpec(_Model):
    """Flow-level traffic: who sends how much, and the capacities it shares.

    Every terminal site stands for ``terminals_per_site`` terminals (its user-link capacity
    scales with them). ``model = "access"``: each terminal wants ``down_mbps`` from and
    ``up_mbps`` to its nearest PoP. ``"gravity"``: city-to-city
    flows totalling ``total_gbps`` with demand ~ pop_i pop_j / d^alpha (GeoNames populations).
    ``"flows"``: the listed ``flows`` ([src, dst, demand_mbps]).
    """

    model: Literal["access", "gravity", "flows"] = "access"
    terminals_per_site: int = Field(1, ge=1, le=10_000_000)
    down_mbps: float = Field(50.0, ge=0.0)
    up_mbps: float = Field(5.0, ge=0.0)
    aggregate: bool = Field(
        True, description="one flow per site and direction (N x demand), or one per terminal"
    )
    diurnal: bool = False
    total_gbps: float = Field(100.0, ge=0.0)
    alpha: float = Field(1.0, ge=0.0, le=4.0)
    flows: list[tuple[str, str, float]] = []
    capacity: CapacitySpec = Field(default_factory=CapacitySpec)

    @model_validator(mode="after")
    def _check(self) -> TrafficSpec:
        for i, (a, b, mbps) in enumerate(self.flows):
            if not mbps >= 0:
                raise ValueError(f"flows[{i}] ({a} -> {b}): demand must be >= 0, got {mbps}")
        if self.model == "flows" and not self.flows:
            raise ValueError("model = 'flows' needs flows = [[src, dst, demand_mbps], ...]")
        return self


class ServiceSpec(_Model):
    """What users measure on top of propagation (:mod:`starmesh.service`).

    ``model = "service"`` (the default): terminals are assigned to satellites by the global
    15-s scheduler (their GSLs restricted to the scheduled satellite), and every routed pair
    gets an RTT distribution per step (access frames, request/grant, processing, AQM-bounded
    queueing, optionally an Internet leg) written to ``service.parquet``. ``"geometric"``: the
    pure-propagation model, byte-identical to runs without a ``[service]`` table before it
    existed (Hypatia compatibility). Defaults are the sourced values of
    :mod:`starmesh.service.params` (``data/PROVENANCE.md``).
    """

    model: Literal["service", "geometric"] = "service"
    scheduler_policy: Literal["hold", "highest", "north", "random"] = "hold"
    slot_s: float = Field(15.0, gt=0.0, le=3600.0)
    slot_offset_s: float = Field(12.0, ge=0.0, le=3600.0)
    frame_ms: float = Field(1000.0 / 750.0, gt=0.0, le=100.0)
    feeder_frame_ms: float = Field(1000.0 / 750.0, gt=0.0, le=100.0)
    grant_frames: float = Field(0.0, ge=0.0, le=100.0)
    sat_processing_ms: float = Field(0.5, ge=0.0, le=100.0)
    ground_processing_ms: float = Field(1.0, ge=0.0, le=100.0)
    isl_hop_processing_ms: float = Field(0.1, ge=0.0, le=100.0)
    queue_delay_max_ms: float = Field(5.0, gt=0.0, le=10_000.0)
    utilisation: float = Field(0.5, ge=0.0, lt=1.0)
    #: Median of the pre-2024 network's extra RTT [ms] (an exponential delay per round trip:
    #: what SpaceX's early-2024 software work removed, :mod:`starmesh.service.params`). Default:
    #: 15.5 ms when the run starts before 2024-01-01, else 0; 0 turns it off.
    pre2024_excess_median_ms: float | None = Field(None, ge=0.0, le=1_000.0)
    rtt_quantiles: list[float] = Field(default_factory=lambda: [0.5, 0.95, 0.99], min_length=1)
    pop_policy: Literal["table", "nearest"] = "table"
    internet_server: SiteSpec | None = None
    internet_route_factor: float = Field(1.5, ge=1.0, le=10.0)
    subscribers_per_km2: float | None = Field(None, ge=0.0, le=10_000.0)
    #: Countries (Natural Earth names or ISO alpha-3 codes) where the subscribers of
    #: ``subscribers_per_km2`` live: a satellite's load counts only the part of its footprint
    #: inside them (none at sea or abroad). Default: the whole footprint.
    subscriber_region: list[str] | None = Field(None, min_length=1)
    busy_hour_demand_mbps: float = Field(1.98 * 1.7, ge=0.0, le=10_000.0)
    #: Satellite generation, which sets each satellite's user-downlink capacity
    #: (:mod:`starmesh.service.fleet`): ``"auto"`` infers it per satellite from a real set's
    #: international designators (Walker shells: ``"mix"``); ``"mix"`` is the mean of v1.5 and
    #: v2 mini (a fleet ASSUMED half and half); a generation name applies to every satellite.
    sat_generation: Literal["auto", "mix", "v1.0", "v1.5", "v2-mini"] = "auto"
    #: One capacity for every satellite [Gbit/s], overriding ``sat_generation``.
    sat_capacity_gbps: float | None = Field(None, gt=0.0, le=10_000.0)
    #: How the global scheduler shares a footprint's cells among the satellites in view:
    #: ``"capacity"`` in proportion to their capacities (load balanced: every satellite in view
    #: equally utilised), ``"count"`` evenly by number (a 20 Gbit/s v1.5 then carries as many
    #: cells as a 96 Gbit/s v2 mini). Identical for a fleet of one capacity.
    cell_partition: Literal["capacity", "count"] = "capacity"
    beams_per_cell: float = Field(1.0, gt=0.0, le=64.0)
    cell_h3_res: int = Field(5, ge=0, le=15)
    terminal_max_mbps: float = Field(220.0, gt=0.0, le=100_000.0)
    #: Upload speed test (``service.params``; None: the sourced default). The terminal's upload
    #: ceiling [Mbit/s] (default 20: the top of Starlink's residential 5-20 Mbit/s range).
    terminal_up_max_mbps: float | None = Field(None, gt=0.0, le=100_000.0)
    #: Busy-hour upstream demand per subscriber [Mbit/s] (default: ``busy_hour_demand_mbps`` x
    #: 8/92, OpenVault's upstream share).
    busy_hour_up_demand_mbps: float | None = Field(None, ge=0.0, le=10_000.0)
    #: A satellite's user-uplink capacity over its user-downlink capacity (default 0.25: the
    #: 500 MHz Ku uplink band over the 2 GHz downlink band of SpaceX's filing).
    uplink_capacity_ratio: float | None = Field(None, gt=0.0, le=10.0)
    rain_exceedance_percent: float | None = Field(None, ge=0.001, le=5.0)

    @model_validator(mode="after")
    def _check(self) -> ServiceSpec:
        if self.subscriber_region is not None and self.subscribers_per_km2 is None:
            raise ValueError(
                "subscriber_region needs subscribers_per_km2 (the density of the subscribers "
                "living there)"
            )
        q = self.rtt_quantiles
        if any(not 0.0 <= x <= 1.0 for x in q) or sorted(set(q)) != list(q):
            raise ValueError(f"rtt_quantiles must be distinct, increasing and in [0, 1], got {q}")
        return self


class VariantSpec(_Model):
    """A named change of the scenario: dotted fields and their new values."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=60)
    description: str = ""
    set: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> VariantSpec:
        if self.name == "baseline":
            raise ValueError("'baseline' is the scenario itself: name the variant otherwise")
        return self


class SweepSpec(_Model):
    """A grid over scenario fields (dotted names, e.g. ``links.min_elevation_deg``) and seeds."""

    grid: dict[str, list[Any]] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> SweepSpec:
        if not self.grid and not self.seeds:
            raise ValueError(
                'the sweep grid is empty: add e.g. grid = {"links.min_elevation_deg" = '
                "[10.0, 25.0, 40.0]} or seeds = [0, 1, 2]"
            )
        for name, values in self.grid.items():
            if not values:
                raise ValueError(f"grid[{name!r}] has no values: list at least one")
        if any(x < 0 for x in self.seeds):
            raise ValueError(f"seeds must be >= 0, got {self.seeds}")
        return self


class Scenario(_Model):
    """A complete scenario."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=80)
    description: str = ""
    seed: int = Field(0, ge=0)
    earth_model: Literal["wgs84", "pyephem"] = Field(
        "wgs84",
        description="'wgs84', or 'pyephem' to reproduce satgenpy (pyephem's 6378.16 km Earth: "
        "satellites scaled by 6378.16/6378.135, sites on its 1/298.25 ellipsoid)",
    )
    time: TimeSpec = Field(default_factory=TimeSpec)
    constellation: ConstellationSpec
    ground: GroundSpec
    links: LinksSpec = Field(default_factory=LinksSpec)
    routing: RoutingSpec = Field(default_factory=RoutingSpec)
    run: RunSpec = Field(default_factory=RunSpec)
    disruptions: DisruptionsSpec = Field(default_factory=DisruptionsSpec)
    traffic: TrafficSpec | None = None
    service: ServiceSpec = Field(default_factory=ServiceSpec)
    variants: list[VariantSpec] = []
    sweep: SweepSpec | None = None
    packets: PacketsSpec | None = None
    coverage: CoverageSpec | None = None

    @model_validator(mode="after")
    def _check_variants(self) -> Scenario:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variants: names must be unique, got {names}")
        return self


# --- Error messages ---------------------------------------------------------------------------


_RANGE_WORDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def format_validation_error(exc: ValidationError) -> list[str]:
    """One ``field: message`` line per validation error, with the bad value and the fix."""
    lines = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            if isinstance(part, int):
                loc += f"[{part}]"
            elif part in ("name", "table", "count"):
                continue
            else:
                loc += ("." if loc else "") + str(part)
        loc = loc or "scenario"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        ctx = err.get("ctx") or {}
        bound = next(((k, v) for k, v in ctx.items() if k in _RANGE_WORDS), None)
        if bound is not None:
            msg = f"must be {_RANGE_WORDS[bound[0]]} {bound[1]}"
        if err["type"] == "missing":
            msg = "required key is missing: add it"
        if err["type"] == "finite_number":
            msg = "NaN and infinity are not allowed: give a finite number"
        value = err.get("input")
        show = not isinstance(value, dict | list) and err["type"] != "missing"
        if show and not (isinstance(value, float) and math.isnan(value)) and "got" not in msg:
            msg += f", got {value!r}"
        lines.append(f"{loc}: {msg}")
    # pydantic reports every branch of a union; keep the distinct lines only.
    return list(dict.fromkeys(lines))
