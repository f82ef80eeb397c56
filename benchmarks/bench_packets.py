"""Packet level on ns-3: 10 TCP NewReno flows over 200 s of ``hypatia-starlink-550``.

Needs a run folder with forwarding state (``hypatia-starlink-550`` has
``[routing] forwarding_state = true``)::

    PYTHONPATH=$PWD/src python -m starmesh.cli run hypatia-starlink-550 --out /tmp/h550
    PYTHONPATH=$PWD/src python benchmarks/bench_packets.py /tmp/h550 [--seconds 200] [--flows 10]

Satellite positions are recomputed from the resolved scenario (the run folder does not store
them). Link rates are Hypatia's paper values, 10 Mbit/s for ISLs and GSLs, queues of 100 packets.
Prints one JSON line: wall seconds of ns-3 import, network build and simulation, ns-3 events,
events per second, peak RSS, nodes and links kept, per-flow goodput.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from starmesh.packets import Flow, flow_summary, load_ns3
from starmesh.packets.network import PacketNetwork
from starmesh.packets.rundir import network_from_run_dir

#: Ten city pairs of Hypatia's 100 cities, far apart (multi-hop paths over the ISL mesh).
PAIRS = [
    ("Tokyo", "São-Paulo"),
    ("Delhi", "London"),
    ("Shanghai", "New-York-Newark"),
    ("Mumbai-(Bombay)", "Los-Angeles-Long-Beach-Santa-Ana"),
    ("Beijing", "Paris"),
    ("Al-Qahirah-(Cairo)", "Moskva-(Moscow)"),
    ("Dhaka", "Istanbul"),
    ("Kinki-M.M.A.-(Osaka)", "Lagos"),
    ("Karachi", "Madrid"),
    ("Manila", "Dalian"),
]


def network_from_run(run_dir: Path, seconds: float, pairs: list[tuple[str, str]]) -> PacketNetwork:
    return network_from_run_dir(run_dir, pairs, duration_s=seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--seconds", type=float, default=200.0)
    ap.add_argument("--flows", type=int, default=10)
    args = ap.parse_args()
    pairs = PAIRS[: args.flows]

    t0 = time.perf_counter()
    load_ns3()
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    net = network_from_run(args.run_dir, args.seconds, pairs)
    t_build = time.perf_counter() - t0
    flows = [Flow(f"{a}->{b}", a, b, "tcp") for a, b in pairs]

    from starmesh.packets import run_packets

    cpu0 = time.process_time()
    res = run_packets(net, flows, queue_packets=100, bin_s=1.0, max_wall_s=7200)
    cpu = time.process_time() - cpu0
    summ = flow_summary(res).to_pandas()
    print(
        json.dumps(
            {
                "bench": "packets",
                "workload": f"hypatia-starlink-550, {len(flows)} TCP NewReno flows, "
                f"{args.seconds:g} s, 10 Mbit/s links, 100-packet queues",
                "ns3_import_s": round(t_import, 2),
                "network_build_s": round(t_build, 2),
                "ns3_wall_s": round(res.wall_s, 2),
                "events": res.events,
                "events_per_s": round(res.events / res.wall_s),
                # CPU time: the wall time is inflated when other processes share the cores.
                "ns3_cpu_s": round(cpu, 2),
                "events_per_cpu_s": round(res.events / cpu),
                "steps": net.n_steps,
                "nodes": int(net.nodes.size),
                "links": int(net.links.shape[0]),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "goodput_mbps": {r.flow: round(r.goodput_mbps, 3) for r in summ.itertuples()},
                "rtt_median_ms": {r.flow: round(r.rtt_median_ms, 2) for r in summ.itertuples()},
                "retransmissions": int(summ["retransmissions"].sum()),
                "reordered": int(summ["reordered"].sum()),
            }
        )
    )


if __name__ == "__main__":
    main()
