"""Packet-level replay of a finished run folder: the ``[packets]`` table in, Parquet out.

:func:`replay_run` is what ``starmesh packets RUN_DIR [FILE]`` and a run whose scenario has a
``[packets]`` table call: it builds the run's network for the flows' sites
(:func:`~starmesh.packets.rundir.network_from_run_dir`), runs it in ns-3
(:func:`~starmesh.packets.ns3sim.run_packets`) and writes the traces into the run folder.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

from ..errors import StarmeshError
from ..io.runfolder import PACKETS_SUMMARY, atomic_write_bytes, atomic_write_table
from ..scenario.packets import PacketFlowSpec, PacketsSpec
from .flows import Flow
from .ns3sim import INSTALL_HINT, PacketResult, flow_summary, run_packets
from .rundir import network_from_run_dir


def require_ns3() -> None:
    """Refuse up front, in one line, when ns-3's Python package is not installed."""
    if importlib.util.find_spec("ns") is None:
        raise StarmeshError(INSTALL_HINT)


def to_flow(spec: PacketFlowSpec) -> Flow:
    """A :class:`Flow` from its scenario entry (Mbit/s, MB and ms at the edge; SI inside)."""
    if spec.protocol == "udp" and spec.probe_interval_ms is not None:
        return Flow.probe(
            spec.name,
            spec.src,
            spec.dst,
            interval_s=spec.probe_interval_ms / 1e3,
            packet_bytes=spec.packet_bytes or 64,
            start_s=spec.start_s,
            stop_s=spec.stop_s,
        )
    return Flow(
        spec.name,
        spec.src,
        spec.dst,
        spec.protocol,
        start_s=spec.start_s,
        stop_s=spec.stop_s,
        tcp_variant=spec.tcp_variant,
        size_bytes=None if spec.size_mb is None else int(spec.size_mb * 1e6),
        rate_bps=None if spec.rate_mbps is None else spec.rate_mbps * 1e6,
        packet_bytes=spec.packet_bytes or 1448,
    )


def replay_run(run_dir: Path | str, spec: PacketsSpec, *, seed: int = 0) -> PacketResult:
    """Replay a finished run's flows at packet level and write the traces into its folder.

    Writes ``packets_bins.parquet`` (per flow and time bin: goodput, cwnd, RTT, retransmissions,
    losses, reordering), ``packets_rtt.parquet``, ``packets_cwnd.parquet``,
    ``packets_udp.parquet`` and ``packets_summary.json`` (one row per flow).

    Raises
    ------
    StarmeshError
        ns-3 not installed, a run without forwarding state, unknown sites, or a replay too large
        for the time or memory budget (refused before ns-3 starts, with the estimate).
    """
    require_ns3()
    run = Path(run_dir)
    flows = [to_flow(f) for f in spec.flows]
    net = network_from_run_dir(
        run,
        [(f.src, f.dst) for f in flows],
        duration_s=spec.duration_s,
        isl_rate_bps=spec.isl_rate_mbps * 1e6,
        gsl_rate_bps=spec.gsl_rate_mbps * 1e6,
        mode=spec.mode,
    )
    res = run_packets(
        net,
        flows,
        queue_packets=spec.queue_packets,
        bin_s=spec.bin_s,
        tcp_buffer_bytes=spec.tcp_buffer_kib * 1024,
        seed=seed,
        max_wall_s=spec.max_wall_s,
        max_memory_bytes=spec.max_memory_gb * 1e9,
    )
    for name, table in res.tables().items():
        atomic_write_table(run / name, table)
    rows = [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in flow_summary(res).to_pylist()
    ]
    atomic_write_bytes(
        run / PACKETS_SUMMARY,
        (
            json.dumps({"flows": rows, "events": res.events}, indent=1, allow_nan=False) + "\n"
        ).encode(),
    )
    return res
