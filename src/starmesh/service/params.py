"""Sourced parameters of the service model (SI units), each with its source and uncertainty.

Nothing here is tuned to the validation cases except the fields marked CALIBRATED, which say
against what they were calibrated. See ``src/starmesh/data/PROVENANCE.md`` for the full citations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from starmesh.errors import ScenarioError

#: Starlink physical-layer frame length [s]: 1/750 s. Humphreys, Iannucci, Komodromos, Graff,
#: "Signal Structure of the Starlink Ku-Band Downlink", IEEE TAES 2023 (arXiv:2210.11578) measure
#: a frame period of 1/750 s = 1.333 ms on the Ku downlink. Uncertainty: exact for the downlink;
#: the uplink frame is assumed equal (unpublished).
FRAME_S = 1.0 / 750.0

#: Global reconfiguration (scheduler) interval [s]: 15 s, globally synchronised at seconds
#: 12, 27, 42 and 57 past the minute. Tanveer et al., "Making Sense of Constellations:
#: Methodologies for Understanding Starlink's Scheduling Algorithms", CoNEXT-SW 2023
#: (arXiv:2307.00402); Mohan et al., "A Multifaceted Look at Starlink Performance", WWW 2024
#: (arXiv:2310.09242), Sec. 6. Exact (observed at the second level).
SLOT_S = 15.0
#: Offset of the slot boundaries within the minute [s] (Mohan et al. 2024: boundaries at
#: 12/27/42/57 s past the minute). Uncertainty +-1 s (clock alignment of the probes).
SLOT_OFFSET_S = 12.0

#: Median extra round-trip time of Starlink's network before its 2024 latency work [s]: 15.5 ms.
#: SpaceX, "Improving Starlink's latency" (2024-03-08): "in the United States ... we reduced
#: median latency by more than 30 %, from 48.5 ms to 33 ms during hours of peak usage" and the
#: worst case (p99) "from over 150 ms to less than 65 ms", in about two months of software
#: (193 satellite, 75 gateway and 222 terminal builds: queue management, buffers, scheduling),
#: with the fleet and gateways essentially unchanged. The excess is modelled as an exponential
#: delay, one per round trip, with that median: its p99 is then log2(100) = 6.6 x the median =
#: 103 ms, consistent with the p99 drop of more than 85 ms, and it vanishes at the minimum RTT
#: (idle moments) as the measured minima show. Ookla's US medians were flat from Q4 2021 to Q3
#: 2022 (40-44 ms, "latency remaining relatively flat", Ookla Q2 2022 report), so the excess is
#: applied to every run that starts before :data:`PRE2024_END`. Uncertainty: 15.5 ms is the
#: two-month software part only; the whole 2024-2025 drop to 25.7 ms (June 2025) bounds it at
#: 22.8 ms; outside the US SpaceX reports "up to 25 %" lower medians (about 12 ms of ~48 ms).
PRE2024_EXCESS_MEDIAN_S = 15.5e-3
#: Runs starting before this instant get the pre-2024 excess by default ("since the beginning of
#: the year", SpaceX 2024-03-08).
PRE2024_END = datetime(2024, 1, 1, tzinfo=UTC)


def pre2024_excess_median_s(start_utc: datetime) -> float:
    """The default median pre-2024 excess [s] for a run starting at ``start_utc`` (UTC):
    :data:`PRE2024_EXCESS_MEDIAN_S` before :data:`PRE2024_END`, else 0."""
    if start_utc.tzinfo is None:
        start_utc = start_utc.replace(tzinfo=UTC)
    return PRE2024_EXCESS_MEDIAN_S if start_utc < PRE2024_END else 0.0


def exponential_mean_from_median(median: float) -> float:
    """Mean of an exponential law with the given median: ``median / ln 2``."""
    return median / math.log(2.0)


@dataclass(frozen=True)
class ServiceParams:
    """All non-geometric parameters of the service model.

    Attributes (SI units; source and uncertainty in the module constants and PROVENANCE.md)
    ----------
    frame_s : float
        Access frame length [s] (Humphreys et al. 2023: 1/750 s).
    grant_frames : float
        CALIBRATED. Uplink request -> grant scheduling latency in frames, on top of the two user-
        link propagation legs of the request/grant exchange. Calibrated once against Michel et
        al.'s 20 ms minimum RTT for Louvain-la-Neuve (not a validation target: the medians are):
        even 0 extra frames gives a model minimum of ~21 ms, so the calibrated value is 0 (the
        request/grant exchange costs its two propagation legs and frame alignment only).
        Plausible range 0-6 frames.
    feeder_frame_s : float
        Feeder-link (Ka/E-band) frame length [s]; assumed equal to the user frame (unpublished),
        uncertainty x0.5-x1.
    sat_processing_s : float
        On-board processing (demodulation, switching, re-modulation) per satellite traversal [s].
        0.5 ms ASSUMED (no public Starlink figure; a regenerative payload decodes at least one
        frame-sized block); uncertainty 0.1-1 ms.
    ground_processing_s : float
        Gateway baseband + PoP routing per traversal [s]: 1.0 ms ASSUMED (no public figure);
        uncertainty 0.3-3 ms.
    isl_hop_processing_s : float
        Per ISL hop optical-terminal + switch processing [s]: 0.1 ms assumed (store-and-forward of
        a 1500 B packet at 10 Gbit/s is 1.2 us; switching dominates); uncertainty 0.01-0.5 ms.
    fibre_route_factor : float
        Fibre path length over great-circle distance for terrestrial legs: 1.5 (Bozkurt et al.,
        "Why is the Internet so slow?!", PAM 2017: median fibre path inflation ~1.5-2 for
        intra-continental paths); uncertainty 1.2-2.0.
    queue_delay_max_s : float
        Largest wait of one access queue [s]: the AQM target / buffer a queue is held to. 5 ms
        ASSUMED from CoDel's default target (RFC 8289, Nichols et al. 2018); Starlink says it
        deployed bufferbloat (AQM) fixes in 2023-2024 (Starlink network updates) without a
        figure. An oversubscribed satellite shares its capacity (throughput falls) rather than
        growing its queues without bound. Uncertainty 1-20 ms.
    utilisation : float
        Busy-hour utilisation of each access link when the traffic model gives none; 0.5 assumed
        (no public Starlink figure), uncertainty 0.2-0.85.
    pre2024_excess_median_s : float
        Median of the pre-2024 network's extra RTT [s] (exponential, once per round trip):
        :data:`PRE2024_EXCESS_MEDIAN_S` for runs before 2024, 0 after
        (:func:`pre2024_excess_median_s`).
    """

    frame_s: float = FRAME_S
    grant_frames: float = 0.0
    feeder_frame_s: float = FRAME_S
    sat_processing_s: float = 0.5e-3
    ground_processing_s: float = 1.0e-3
    isl_hop_processing_s: float = 0.1e-3
    fibre_route_factor: float = 1.5
    utilisation: float = 0.5
    queue_delay_max_s: float = 5e-3
    pre2024_excess_median_s: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = float(getattr(self, f.name))
            if not v >= 0.0 or v == float("inf"):
                raise ScenarioError(f"service.{f.name}", f"must be finite and >= 0, got {v!r}")
        if self.utilisation >= 1.0:
            raise ScenarioError(
                "service.utilisation", f"must be in [0, 1), got {self.utilisation!r}"
            )
        if self.queue_delay_max_s <= 0.0:
            raise ScenarioError(
                "service.queue_delay_max_ms", f"must be > 0, got {self.queue_delay_max_s!r}"
            )
        if self.fibre_route_factor < 1.0:
            raise ScenarioError(
                "service.fibre_route_factor", f"must be >= 1, got {self.fibre_route_factor!r}"
            )


@dataclass(frozen=True)
class SatelliteGeneration:
    """Per-satellite downlink capacity of one Starlink generation.

    Attributes
    ----------
    name : str
    capacity_bps : float
        Total user-downlink capacity of one satellite [bit/s].
    """

    name: str
    capacity_bps: float


#: Starlink v1.0 (launched 2019-2021, no laser links): the same Ku user payload as v1.5, 2 GHz of
#: Ku downlink in two polarisations at 64QAM 8/9 (5.11 bit/s/Hz): 2000 MHz x 2 x 5.11 = 20.2
#: Gbit/s (Pekhterev, "The Bandwidth of the StarLink Constellation", SatMagazine, Nov 2021,
#: "fully consistent with" SpaceX's 2016 FCC application). Uncertainty +-50 %.
V1_0 = SatelliteGeneration("v1.0", 20e9)
#: Starlink v1.5: ~20 Gbit/s per satellite (SpaceX has said a V2 mini has "about four times" the
#: usable capacity of earlier satellites, quoted by Ars Technica, Feb 2023; V2 mini ~96 Gbit/s
#: gives ~24 Gbit/s for v1.5; 20 Gbit/s is the commonly cited v1 figure). Uncertainty +-50 %.
V1_5 = SatelliteGeneration("v1.5", 20e9)
#: Starlink v2 mini: ~96 Gbit/s (about 4x v1.5; SpaceX via Ars Technica 2023). Uncertainty +-40 %.
V2_MINI = SatelliteGeneration("v2-mini", 96e9)
GENERATIONS = {g.name: g for g in (V1_0, V1_5, V2_MINI)}

#: Average downstream demand per US broadband subscriber [bit/s]: OpenVault Broadband Insights
#: Q4 2024: 698.2 GB/month total, of which ~92 % downstream (upstream ~8 %: OVBI 4Q24), i.e.
#: ~642 GB/month = 1.98 Mbit/s averaged over 30 days. Uncertainty +-20 % (Starlink users may
#: differ from the cable/fibre base OpenVault measures).
MEAN_DOWNLOAD_DEMAND_BPS = 642e9 * 8.0 / (30 * 86_400.0)
#: Busy-hour over daily-average traffic ratio: 1.7 assumed (typical diurnal residential peak);
#: uncertainty 1.4-2.2.
BUSY_HOUR_FACTOR = 1.7
#: Per-terminal ceiling of one speed test [bit/s]: the top of the residential download range
#: SpaceX advertised (25-220 Mbit/s, starlink.com/specifications; quoted as "typical download
#: speeds ranging between 25 and 220 Mbps" by secondary sources in 2025, the primary page not
#: re-read here). Starlink's VP of engineering (Oct 2025, via Telecompetitor) put "typical"
#: downloads above 200 Mbit/s. Uncertainty: 220-400 Mbit/s (Michel et al. 2022 saw > 300
#: Mbit/s in Belgium).
TERMINAL_MAX_BPS = 220e6
#: Starlink subscribers in the contiguous US (assumed 2.0 million in Q1 2025: Starlink passed
#: 6 million customers globally in 2025 (CNET, quoting Ookla, 2025) with the US the largest
#: market); uncertainty +-40 %.
US_SUBSCRIBERS = 2.0e6
#: Land area of the contiguous US [m^2] (US Census Bureau: 8,080,464 km^2).
CONUS_AREA_M2 = 8.080464e12
#: H3 resolution of a service cell: resolution 5 (mean area 252.9 km^2, edge ~8.5 km), the
#: hexagon size of Starlink's availability map as read by the community; uncertainty: res 4-6.
CELL_H3_RES = 5
#: Beams a single satellite points at one cell at a time (assumed 1; FCC filings give the number
#: of beams per satellite, not per cell); uncertainty 1-2.
BEAMS_PER_CELL = 1
#: Ku user beams of one v1.5 satellite: 16, each in one 240 MHz channel (Pekhterev, "The
#: bandwidth of the StarLink constellation", SatMagazine Nov 2021: 8 beams in one polarisation
#: of the 2 GHz Ku downlink; revised to 16, both polarisations, from Starlink's India planning
#: guidance, Feb 2022 (advanced-television.com, 2022-02-08)); the channel plan agrees with
#: Humphreys et al. 2023 (eight 250 MHz channels in 10.7-12.7 GHz). Uncertainty 8-16. Not an
#: input of the load model (which shares a satellite's total capacity, ``V1_5.capacity_bps``,
#: over the cells it serves); 16 beams x the link budget's beam capacity reproduces that
#: capacity (tests/test_service.py).
USER_BEAMS_V1_5 = 16

# --- Upload speed test -------------------------------------------------------------------------

#: Upstream over downstream traffic of a US broadband subscriber: OpenVault Broadband Insights
#: Q4 2024 (698.2 GB/month, ~92 % downstream, ~8 % upstream), so upstream = 8/92 = 0.087 of
#: downstream. The busy-hour upstream demand is ``busy_hour_demand x UPSTREAM_RATIO`` = 0.29
#: Mbit/s at the default 3.37 Mbit/s. Uncertainty: 0.07-0.12 (upstream has grown about twice
#: as fast as downstream since 2020, OVBI 3Q24: +13.9 % vs +6.8 % a year; Starlink users may
#: differ from the cable/fibre base OpenVault measures).
UPSTREAM_RATIO = 0.08 / 0.92
#: User-uplink over user-downlink capacity of one satellite: the Ku user uplink band
#: (14.0-14.5 GHz, 500 MHz) over the Ku user downlink band (10.7-12.7 GHz, 2 GHz) of SpaceX's
#: application (FCC SAT-LOA-20161115-00118; the blanket terminal licence, FCC public notice
#: SES-02250 of March 2020: terminals "transmit in the 14.0-14.5 GHz band and receive in the
#: 10.7-12.7 GHz band"), at equal spectral efficiency: 0.25 (the same derivation as
#: ``capacity.LinkCapacities.sat_user_up_bps``, 5 of 20 Gbit/s). A satellite's user-uplink
#: capacity is its generation's downlink capacity x this ratio (v1.x 5, v2 mini 24 Gbit/s).
#: Cross-check: 16 receive beams (as ``USER_BEAMS_V1_5``) x one 60 MHz uplink channel of the
#: link budget at 5.9 bit/s/Hz (354 Mbit/s) = 5.7 Gbit/s. Uncertainty: a factor of 2 (the
#: terminal's transmit power, not the band, may set uplink efficiency; Gen2 adds Ka/E-band
#: spectrum whose split between user and feeder links is not published).
UPLINK_CAPACITY_RATIO = 500e6 / 2000e6
#: Per-terminal ceiling of one upload speed test [bit/s]: the top of the residential upload
#: range, "upload speeds typically between 5 and 20 Mbps" (Starlink's EU contract summary,
#: starlink.com/legal DOC-1075-86535-76, with downloads 25-220 Mbit/s, whose top is
#: ``TERMINAL_MAX_BPS``; the same 5-20 Mbit/s in 2024 press summaries of Starlink's service).
#: Priority plans: 8-25 Mbit/s. Uncertainty: 20-25 Mbit/s (the terminal's link budget, 354
#: Mbit/s in one 60 MHz channel at 42.1 dBW EIRP, is far above it: the ceiling is a service
#: limit, not a radio one).
TERMINAL_UP_MAX_BPS = 20e6
