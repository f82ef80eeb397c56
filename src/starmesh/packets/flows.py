"""Flows for the packet level, and the up-front estimate of what ns-3 will cost.

A flow runs between two named ground sites: TCP (ns-3's ``BulkSendApplication`` with NewReno,
Cubic or BBR, as ns-3 3.44 offers them) or UDP (ns-3's ``OnOffApplication`` always on: constant
bit rate; at a low rate it is a ping-like probe whose every packet carries its send time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import StarmeshError
from .network import PacketNetwork

Protocol = Literal["tcp", "udp"]
TcpVariant = Literal["newreno", "cubic", "bbr"]

#: ns-3 TypeId of each TCP congestion control (ns-3 3.44 ``src/internet/model``).
TCP_TYPE_IDS: dict[str, str] = {
    "newreno": "ns3::TcpNewReno",
    "cubic": "ns3::TcpCubic",
    "bbr": "ns3::TcpBbr",
}

#: Bytes on the wire around a TCP segment's payload (IPv4 20 + TCP 20 + PPP 2); the runs turn
#: the timestamp option off (``ns3sim.run_packets``).
TCP_OVERHEAD_BYTES = 20 + 20 + 2
#: Bytes around a UDP payload: IPv4 20 + UDP 8 + PPP 2.
UDP_OVERHEAD_BYTES = 20 + 8 + 2


@dataclass(frozen=True)
class Flow:
    """One flow between two ground sites.

    Parameters
    ----------
    name : str
        Unique label of the flow in the outputs.
    src, dst : str
        Names of the sending and receiving ground sites.
    protocol : {"tcp", "udp"}
    start_s : float
        Start time since the run's start [s].
    stop_s : float or None
        Stop time [s]; None: the end of the run.
    tcp_variant : {"newreno", "cubic", "bbr"}
        TCP congestion control (TCP only).
    size_bytes : int or None
        TCP: bytes to send, None for a long (unbounded) flow.
    rate_bps : float or None
        UDP: constant bit rate of the payload [bit/s] (required for UDP).
    packet_bytes : int
        UDP payload / TCP segment size [B]; a UDP payload includes the 12-byte sequence and
        timestamp header the receiver reads the one-way delay from (ns-3 ``SeqTsSizeHeader``
        takes 20 B: seq 4, ts 8, size 8).
    """

    name: str
    src: str
    dst: str
    protocol: Protocol
    start_s: float = 0.0
    stop_s: float | None = None
    tcp_variant: TcpVariant = "newreno"
    size_bytes: int | None = None
    rate_bps: float | None = None
    packet_bytes: int = 1448

    @classmethod
    def probe(
        cls,
        name: str,
        src: str,
        dst: str,
        *,
        interval_s: float = 0.01,
        packet_bytes: int = 64,
        start_s: float = 0.0,
        stop_s: float | None = None,
    ) -> Flow:
        """A ping-like UDP probe: one ``packet_bytes`` packet every ``interval_s`` seconds."""
        return cls(
            name,
            src,
            dst,
            "udp",
            start_s=start_s,
            stop_s=stop_s,
            rate_bps=packet_bytes * 8 / interval_s,
            packet_bytes=packet_bytes,
        )

    def interval_s(self) -> float:
        """UDP: time between packets [s]."""
        assert self.rate_bps is not None
        return self.packet_bytes * 8 / self.rate_bps


def check_flows(flows: list[Flow], net: PacketNetwork) -> None:
    """Validate flows against the network; raise one line naming the field and the fix."""
    names = set()
    duration = net.n_steps * net.step_s
    starts: dict[tuple[str, float], str] = {}
    for i, f in enumerate(flows):
        at = f"flows[{i}]"
        if f.name in names:
            raise StarmeshError(f"{at}.name: {f.name!r} appears twice; give each flow its own name")
        names.add(f.name)
        net.site_node(f.src)
        net.site_node(f.dst)
        if f.src == f.dst:
            raise StarmeshError(f"{at}: src and dst are both {f.src!r}; pick two sites")
        if f.protocol not in ("tcp", "udp"):
            raise StarmeshError(f"{at}.protocol must be 'tcp' or 'udp', got {f.protocol!r}")
        stop = duration if f.stop_s is None else f.stop_s
        if not 0 <= f.start_s < stop <= duration:
            raise StarmeshError(
                f"{at}: start_s = {f.start_s:g}, stop_s = {stop:g} must satisfy "
                f"0 <= start_s < stop_s <= {duration:g} s (the run's duration)"
            )
        if not 20 <= f.packet_bytes <= 65000:
            raise StarmeshError(f"{at}.packet_bytes must be in [20, 65000], got {f.packet_bytes}")
        if f.protocol == "udp":
            if f.rate_bps is None or not f.rate_bps > 0:
                raise StarmeshError(f"{at}.rate_bps must be > 0 for UDP, got {f.rate_bps}")
        else:
            if f.tcp_variant not in TCP_TYPE_IDS:
                raise StarmeshError(
                    f"{at}.tcp_variant must be one of {', '.join(TCP_TYPE_IDS)}, got "
                    f"{f.tcp_variant!r}"
                )
            # ns-3 picks a TCP socket's congestion control from its node's TcpL4Protocol
            # when the application starts; two flows starting together at one site share it.
            key = (f.src, f.start_s)
            if key in starts and starts[key] != f.tcp_variant:
                raise StarmeshError(
                    f"{at}: two TCP flows leave {f.src!r} at {f.start_s:g} s with different "
                    "variants; start one of them a little later"
                )
            starts[key] = f.tcp_variant


@dataclass(frozen=True)
class CostEstimate:
    """What a packet-level run is expected to cost.

    Attributes
    ----------
    packets : float
        Data and acknowledgement packets sent.
    events : float
        ns-3 events, about ``packets x (hops + 1) x 3`` (enqueue, end of transmission,
        reception at every hop) plus the per-step link and route updates.
    wall_s : float
        Expected wall time at ``events_per_s``.
    memory_bytes : float
        Expected peak memory: the ns-3 library and cppyy (about 1 GB resident after import),
        nodes, devices and full queues.
    """

    packets: float
    events: float
    wall_s: float
    memory_bytes: float


#: ns-3 3.44 events per CPU second (one core of the 2-core AMD EPYC development machine):
#: benchmarks/bench_packets.py ran 58.8 M events in about 140 CPU s (10 TCP flows, 200 s of
#: hypatia-starlink-550), 420,000 events/s; taken a little lower so estimates err long.
EVENTS_PER_S = 4.0e5
#: Resident memory of ``from ns import ns`` plus the cppyy-compiled bridge [B]: 0.99 GB
#: measured (``getrusage``) on the development machine.
NS3_BASE_BYTES = 1.0e9


def estimate_cost(
    flows: list[Flow],
    net: PacketNetwork,
    *,
    queue_packets: int = 100,
    events_per_s: float = EVENTS_PER_S,
) -> CostEstimate:
    """Estimate events, wall time and memory of simulating ``flows`` on ``net``.

    Path lengths and bottlenecks are taken at each flow's start step; a TCP flow is assumed to
    run at its bottleneck rate (an upper bound for the event count), one ACK per two segments.
    """
    packets = 0.0
    events = 0.0
    duration = net.n_steps * net.step_s
    for f in flows:
        src, dst = net.site_node(f.src), net.site_node(f.dst)
        k = min(int(f.start_s / net.step_s), net.n_steps - 1)
        path = net.path(src, dst, k)
        hops = max(len(path), 1)
        stop = duration if f.stop_s is None else f.stop_s
        span = stop - f.start_s
        if f.protocol == "udp":
            assert f.rate_bps is not None
            n = f.rate_bps * span / (8 * f.packet_bytes)
            acks = 0.0
        else:
            bottleneck = float(net.rate_bps[k, path].min()) if path else 0.0
            n = bottleneck * span / (8 * (f.packet_bytes + TCP_OVERHEAD_BYTES))
            if f.size_bytes is not None:
                n = min(n, math.ceil(f.size_bytes / f.packet_bytes))
            acks = n / 2
        packets += n + acks
        events += (n + acks) * (hops + 1) * 3
    events += net.n_steps * (net.links.shape[0] * 2 + 1) + net.route_step.size
    memory = (
        NS3_BASE_BYTES
        + net.nodes.size * 50e3
        + net.links.shape[0] * 2 * (20e3 + queue_packets * 1600)
    )
    return CostEstimate(packets, events, events / events_per_s, memory)


def refuse_if_too_large(est: CostEstimate, *, max_wall_s: float, max_memory_bytes: float) -> None:
    """Raise before ns-3 starts if the estimate exceeds the budget, showing the estimate."""
    if est.wall_s > max_wall_s or est.memory_bytes > max_memory_bytes:
        raise StarmeshError(
            f"packet-level run too large: about {est.packets:.3g} packets, {est.events:.3g} "
            f"ns-3 events (~{est.wall_s:.0f} s at {EVENTS_PER_S:.0e} events/s) and "
            f"{est.memory_bytes / 1e9:.1f} GB, over the budget of {max_wall_s:.0f} s and "
            f"{max_memory_bytes / 1e9:.1f} GB: shorten the flows, lower rates or raise the budget"
        )


def jain_index(x: np.ndarray) -> float:
    """Jain's fairness index ``(sum x)^2 / (n sum x^2)`` (Jain, Chiu, Hawe, DEC-TR-301, 1984)."""
    x = np.asarray(x, np.float64)
    return float(x.sum() ** 2 / (x.size * (x**2).sum())) if x.size and (x**2).sum() > 0 else 0.0
