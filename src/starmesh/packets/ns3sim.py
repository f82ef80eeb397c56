"""Run flows over a :class:`~starmesh.packets.network.PacketNetwork` in ns-3 and collect traces.

ns-3 (https://www.nsnam.org, release 3.44 from PyPI's ``ns3`` wheel, Python bindings through
cppyy) simulates every packet. Its network is built from the arrays: one node per kept
satellite and ground site, one point-to-point link (``PointToPointNetDevice`` pair on a
``PointToPointChannel``, a ``DropTailQueue`` of ``queue_packets`` packets per device, no queue
disc) per link the forwarding state uses. At every step an ns-3 event sets each channel's delay
and each device's data rate to the run's values, turns a ``RateErrorModel`` dropping every
packet on or off on links that go down or up, and applies the step's next-hop changes to the
nodes' ``Ipv4StaticRouting`` host routes, so packets take the flow-level run's paths.

A packet enters a link with the delay the link has at that moment, so a packet's one-way delay is
the sum over its hops of (serialisation at the hop's rate + propagation delay of the hop at the
time it is sent on it).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ..errors import StarmeshError
from ._bridge import BRIDGE_CPP, SERIES
from .flows import TCP_TYPE_IDS, Flow, check_flows, estimate_cost, refuse_if_too_large
from .network import PacketNetwork

INSTALL_HINT = 'ns-3 is not installed: pip install "starmesh[ns3]"'

_NS: Any = None


def load_ns3() -> Any:
    """Import ns-3 (about 7-18 s and 670 MB resident, once per process) and compile the bridge.

    Raises
    ------
    StarmeshError
        One line saying how to install the extra, when the ``ns3`` package is missing.
    """
    global _NS
    if _NS is not None:
        return _NS
    if importlib.util.find_spec("ns3") is None:
        raise StarmeshError(INSTALL_HINT)
    from ns import ns  # the ns3 wheel's module; it exits the process if its libraries are gone

    ns.cppyy.cppdef(BRIDGE_CPP)
    _NS = ns
    return ns


@dataclass(frozen=True)
class PacketResult:
    """Traces of one packet-level run.

    Attributes
    ----------
    flows : list of Flow
    bins : pyarrow.Table
        Per flow and time bin: ``flow``, ``t_s`` (bin start), ``goodput_bps``, ``rx_bytes``,
        ``cwnd_bytes`` (last value in the bin, TCP), ``rtt_s`` (mean of the RTT samples in the
        bin, TCP), ``rtt_samples``, ``retransmissions``, ``losses`` (data packets dropped on the
        path: full queue, down link, no route), ``reordered`` (data packets delivered after a
        later-sent one).
    rtt : pyarrow.Table
        Every TCP RTT sample: ``flow``, ``t_s``, ``rtt_s``.
    cwnd : pyarrow.Table
        Every congestion-window change: ``flow``, ``t_s``, ``cwnd_bytes``.
    udp : pyarrow.Table
        Every UDP packet received: ``flow``, ``seq``, ``sent_s``, ``received_s``,
        ``delay_s``.
    duration_s : float
        Simulated time [s].
    events : int
        ns-3 events executed.
    wall_s : float
        Wall time of building and running the ns-3 simulation [s].
    """

    flows: list[Flow]
    bins: pa.Table
    rtt: pa.Table
    cwnd: pa.Table
    udp: pa.Table
    duration_s: float
    events: int
    wall_s: float

    def tables(self) -> dict[str, pa.Table]:
        """The tables to write into a run folder, by file name (:data:`TABLE_FILES`)."""
        return {TABLE_FILES[k]: getattr(self, k) for k in TABLE_FILES}


#: File names of :meth:`PacketResult.tables` in a run folder.
TABLE_FILES = {
    "bins": "packets_bins.parquet",
    "rtt": "packets_rtt.parquet",
    "cwnd": "packets_cwnd.parquet",
    "udp": "packets_udp.parquet",
}


def _vec(v: Any) -> NDArray[np.float64]:
    n = int(v.size())
    if n == 0:
        return np.zeros(0)
    return np.frombuffer(v.data(), dtype=np.float64, count=n).copy()


def _i32(x: NDArray[Any]) -> NDArray[np.int32]:
    return np.ascontiguousarray(x, np.int32)


def run_packets(
    net: PacketNetwork,
    flows: list[Flow],
    *,
    queue_packets: int = 100,
    bin_s: float = 0.1,
    tcp_buffer_bytes: int = 8 << 20,
    seed: int = 0,
    max_wall_s: float = 1800.0,
    max_memory_bytes: float = 8e9,
) -> PacketResult:
    """Simulate ``flows`` on ``net`` in ns-3.

    Parameters
    ----------
    net : PacketNetwork
        The network over time (:func:`~starmesh.packets.network.build_network`).
    flows : list of Flow
        The flows; names unique, endpoints sites of ``net``.
    queue_packets : int
        Drop-tail queue of every device [packets] (Hypatia uses 100).
    bin_s : float
        Width of the output time bins [s].
    tcp_buffer_bytes : int
        TCP send and receive buffers [B]; large enough not to limit a long flow.
    seed : int
        ns-3's run number (``RngSeedManager::SetRun``).
    max_wall_s, max_memory_bytes : float
        Budget: a run estimated above it is refused before ns-3 starts.

    Returns
    -------
    PacketResult
    """
    check_flows(flows, net)
    if not 1 <= queue_packets <= 100_000:
        raise StarmeshError(f"queue_packets must be in [1, 100000], got {queue_packets}")
    if not bin_s > 0:
        raise StarmeshError(f"bin_s must be > 0 s, got {bin_s}")
    refuse_if_too_large(
        estimate_cost(flows, net, queue_packets=queue_packets),
        max_wall_s=max_wall_s,
        max_memory_bytes=max_memory_bytes,
    )
    ns = load_ns3()
    t0 = time.perf_counter()
    duration = net.n_steps * net.step_s

    ns.RngSeedManager.SetSeed(1)
    ns.RngSeedManager.SetRun(seed + 1)
    for key, value in (
        ("ns3::TcpSocket::SndBufSize", ns.UintegerValue(tcp_buffer_bytes)),
        ("ns3::TcpSocket::RcvBufSize", ns.UintegerValue(tcp_buffer_bytes)),
        # One ACK per two segments, ns-3's default delayed ACK, stated for the estimate.
        ("ns3::TcpSocket::DelAckCount", ns.UintegerValue(2)),
        # RTT samples from the segments' send times at ns resolution, not from the timestamp
        # option, whose clock ticks in ms (ns-3 TcpSocketBase::Timestamp).
        ("ns3::TcpSocketBase::Timestamp", ns.BooleanValue(False)),
    ):
        ns.Config.SetDefault(key, value)

    local = np.full(net.n_sats + len(net.site_names), -1, np.int64)
    local[net.nodes] = np.arange(net.nodes.size)
    site_of = np.where(net.nodes >= net.n_sats, net.nodes - net.n_sats, -1)
    b = ns.cppyy.gbl.starmesh_ns3.Bridge()
    b.Init(net.nodes.size, _i32(site_of), net.n_steps, net.step_s)
    b.AddLinks(
        net.links.shape[0],
        _i32(local[net.links[:, 0]]),
        _i32(local[net.links[:, 1]]),
        np.ascontiguousarray(net.delay_s, np.float64),
        np.ascontiguousarray(net.rate_bps, np.float64),
        np.ascontiguousarray(net.up, np.uint8),
        queue_packets,
    )
    dcol = np.full(local.size, -1, np.int64)
    dcol[net.dsts] = np.arange(net.dsts.size)
    off = np.searchsorted(net.route_step, np.arange(net.n_steps + 1))
    b.SetRoutes(
        net.dsts.size,
        _i32(net.dsts - net.n_sats),
        net.route_step.size,
        _i32(off),
        _i32(local[net.route_node]),
        _i32(dcol[net.route_dst]),
        _i32(net.route_link),
    )
    for i, f in enumerate(flows):
        src, dst = local[net.site_node(f.src)], local[net.site_node(f.dst)]
        stop = duration if f.stop_s is None else f.stop_s
        port = 10_000 + i
        g = net.site_node(f.dst) - net.n_sats
        if f.protocol == "tcp":
            b.AddTcpFlow(
                int(src),
                int(dst),
                int(g),
                port,
                TCP_TYPE_IDS[f.tcp_variant],
                f.packet_bytes,
                int(f.size_bytes or 0),
                f.start_s,
                stop,
            )
        else:
            assert f.rate_bps is not None
            b.AddUdpFlow(
                int(src),
                int(dst),
                int(g),
                port,
                f.packet_bytes,
                float(f.rate_bps),
                f.start_s,
                stop,
            )
    ns.Simulator.Stop(ns.Seconds(duration))
    ns.Simulator.Run()
    events = int(ns.Simulator.GetEventCount())
    series = [
        {name: _vec(b.Series(i, j)) for j, name in enumerate(SERIES)} for i in range(len(flows))
    ]
    ns.Simulator.Destroy()
    wall = time.perf_counter() - t0
    return _tables(flows, series, duration, bin_s, events, wall)


def _tables(
    flows: list[Flow],
    series: list[dict[str, NDArray[np.float64]]],
    duration: float,
    bin_s: float,
    events: int,
    wall: float,
) -> PacketResult:
    n_bins = int(np.ceil(duration / bin_s - 1e-9))
    edges = np.arange(n_bins + 1) * bin_s
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "flow",
            "t_s",
            "goodput_bps",
            "rx_bytes",
            "cwnd_bytes",
            "rtt_s",
            "rtt_samples",
            "retransmissions",
            "losses",
            "reordered",
        )
    }

    def count(t: NDArray[np.float64], w: NDArray[np.float64] | None = None) -> NDArray[Any]:
        return np.histogram(t, bins=edges, weights=w)[0]

    for f, s in zip(flows, series, strict=True):
        rx = count(s["rx_t"], s["rx_bytes"])
        n_rtt = count(s["rtt_t"])
        rtt_sum = count(s["rtt_t"], s["rtt"])
        with np.errstate(invalid="ignore", divide="ignore"):
            rtt = np.where(n_rtt > 0, rtt_sum / np.maximum(n_rtt, 1), np.nan)
        # cwnd at the end of each bin: the last change at or before it.
        if s["cwnd_t"].size:
            j = np.searchsorted(s["cwnd_t"], edges[1:], side="right") - 1
            cwnd = np.where(j >= 0, s["cwnd"][np.maximum(j, 0)], np.nan)
        else:
            cwnd = np.full(n_bins, np.nan)
        cols["flow"].append(np.full(n_bins, f.name, object))
        cols["t_s"].append(edges[:-1])
        cols["goodput_bps"].append(rx * 8 / bin_s)
        cols["rx_bytes"].append(rx.astype(np.int64))
        cols["cwnd_bytes"].append(cwnd)
        cols["rtt_s"].append(rtt)
        cols["rtt_samples"].append(n_rtt.astype(np.int64))
        cols["retransmissions"].append(count(s["retx_t"]).astype(np.int64))
        cols["losses"].append(count(s["drop_t"]).astype(np.int64))
        cols["reordered"].append(count(s["reorder_t"]).astype(np.int64))
    bins = pa.table(
        {k: pa.array(np.concatenate(v)) if v else pa.array([]) for k, v in cols.items()}
    )

    def long(keys: tuple[str, ...], names: tuple[str, ...]) -> pa.Table:
        out: dict[str, Any] = {
            "flow": pa.array(
                np.concatenate(
                    [
                        np.full(s[keys[0]].size, f.name, object)
                        for f, s in zip(flows, series, strict=True)
                    ]
                )
                if flows
                else np.zeros(0, object),
                pa.string(),
            )
        }
        for k, n in zip(keys, names, strict=True):
            out[n] = pa.array(np.concatenate([s[k] for s in series]) if series else np.zeros(0))
        return pa.table(out)

    rtt_t = long(("rtt_t", "rtt"), ("t_s", "rtt_s"))
    cwnd_t = long(("cwnd_t", "cwnd"), ("t_s", "cwnd_bytes"))
    udp = long(("seq", "sent_t", "recv_t"), ("seq", "sent_s", "received_s"))
    udp = udp.set_column(1, "seq", pa.array(udp["seq"].to_numpy().astype(np.int64)))
    udp = udp.append_column(
        "delay_s", pa.array(udp["received_s"].to_numpy() - udp["sent_s"].to_numpy())
    )
    return PacketResult(flows, bins, rtt_t, cwnd_t, udp, duration, events, wall)


def flow_summary(result: PacketResult) -> pa.Table:
    """One row per flow, for a CLI table.

    Columns: ``flow``, ``protocol`` (``tcp/newreno``, ``tcp/cubic``, ``tcp/bbr``, ``udp``),
    ``src``, ``dst``, ``goodput_mbps`` (payload received over the flow's start-stop span),
    ``rtt_min_ms``, ``rtt_median_ms``, ``rtt_p99_ms`` (TCP RTT samples; NaN for UDP),
    ``owd_median_ms`` (UDP one-way delay; NaN for TCP), ``retransmissions``, ``losses``,
    ``reordered``.
    """
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "flow",
            "protocol",
            "src",
            "dst",
            "goodput_mbps",
            "rtt_min_ms",
            "rtt_median_ms",
            "rtt_p99_ms",
            "owd_median_ms",
            "retransmissions",
            "losses",
            "reordered",
        )
    }
    bins = result.bins
    names = np.asarray(bins["flow"].to_pylist(), object)
    rtt_names = np.asarray(result.rtt["flow"].to_pylist(), object)
    udp_names = np.asarray(result.udp["flow"].to_pylist(), object)
    duration = result.duration_s
    for f in result.flows:
        m = names == f.name
        stop = duration if f.stop_s is None else f.stop_s
        rx = bins["rx_bytes"].to_numpy()[m].sum()
        rtt = result.rtt["rtt_s"].to_numpy()[rtt_names == f.name]
        owd = result.udp["delay_s"].to_numpy()[udp_names == f.name]
        rows["flow"].append(f.name)
        rows["protocol"].append(f"tcp/{f.tcp_variant}" if f.protocol == "tcp" else "udp")
        rows["src"].append(f.src)
        rows["dst"].append(f.dst)
        rows["goodput_mbps"].append(rx * 8 / max(stop - f.start_s, 1e-9) / 1e6)
        q = np.quantile(rtt, [0.0, 0.5, 0.99]) * 1e3 if rtt.size else np.full(3, np.nan)
        rows["rtt_min_ms"].append(float(q[0]))
        rows["rtt_median_ms"].append(float(q[1]))
        rows["rtt_p99_ms"].append(float(q[2]))
        rows["owd_median_ms"].append(float(np.median(owd) * 1e3) if owd.size else float("nan"))
        for k in ("retransmissions", "losses", "reordered"):
            rows[k].append(int(bins[k].to_numpy()[m].sum()))
    return pa.table(rows)
