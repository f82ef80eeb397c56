"""Benchmark: the real constellation (filter, shell inference, +Grid re-pairing), one JSON line.

Workload: the shipped Starlink snapshot (10,361 TLEs): the operational filter, shell/plane/slot
inference at the newest element epoch, then ``--hours`` of SGP4 propagation and per-step +Grid
ISL re-pairing (``PlusGridIsl.links``) at ``--step`` seconds, in chunks of ``--chunk`` steps
as the engine would call it. Also reports what the links do: the median in-use ISL length over
the run relative to t = 0, the longest in-use link against the range, and links flipped per step.

This is the first slice of the issue's W4 workload (filtered snapshot + 1,000 cities + 20 PoPs +
Hypatia's 100 cities, 24 h at 1 s); the routing half needs the engine wiring.

Usage::

    python benchmarks/bench_real.py [--hours H] [--step S] [--chunk C]

Prints ``{"bench": "real", "n_sats": ..., "filter_s": ..., "infer_s": ..., "propagate_s": ...,
"isl_s": ..., "isl_steps_per_s": ..., "peak_rss_mb": ..., ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import numpy as np

from starmesh.elements import load_starlink_snapshot
from starmesh.propagation import Propagator
from starmesh.realset import PlusGridIsl, filter_operational, infer_shells
from starmesh.topology import isl_lengths_m, max_isl_range_m


def machine() -> str:
    """CPU model and core count, for the record."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--step", type=float, default=1.0)
    ap.add_argument("--chunk", type=int, default=300)
    args = ap.parse_args()
    t0 = time.perf_counter()
    snap = load_starlink_snapshot()
    t_load = time.perf_counter()
    kept, report = filter_operational(snap)
    t_filter = time.perf_counter()
    inf = infer_shells(kept, epoch=report.reference_epoch)
    t_infer = time.perf_counter()
    from starmesh.constellation import Constellation

    const = Constellation.from_elements("starlink-2026", kept)
    rng = max_isl_range_m(min(s.altitude_km for s in inf.shells) * 1e3)
    isl = PlusGridIsl(inf, rng)
    prop = Propagator(const, inf.epoch)
    t_all = np.arange(0.0, args.hours * 3600.0 + 0.5 * args.step, args.step)
    prop_s = isl_s = 0.0
    medians: list[float] = []
    longest = 0.0
    flips = 0
    prev: set[int] | None = None
    n_edges_max = 0
    for c in range(0, t_all.size, args.chunk):
        t = t_all[c : c + args.chunk]
        a = time.perf_counter()
        r, ok = prop.positions_ecef_m(t)
        b = time.perf_counter()
        edges, up = isl.links(r, ok, t, epoch=inf.epoch)
        isl_s += time.perf_counter() - b
        prop_s += b - a
        n_edges_max = max(n_edges_max, edges.shape[0])
        length = isl_lengths_m(r, edges)
        longest = max(longest, float(np.max(np.where(up, length, 0.0))))
        keys = edges[:, 0].astype(np.int64) * const.n_sats + edges[:, 1]
        for k in range(t.size):
            medians.append(float(np.median(length[k, up[k]])))
            now = set(keys[up[k]].tolist())
            if prev is not None:
                flips += len(now ^ prev)
            prev = now
    wall = time.perf_counter() - t0
    m = np.array(medians)
    print(
        json.dumps(
            {
                "bench": "real",
                "workload": f"starlink snapshot filtered+inferred, +Grid re-paired every "
                f"{args.step:g} s for {args.hours:g} h",
                "n_input": report.n_input,
                "n_sats": const.n_sats,
                "n_shells": len(inf.shells),
                "steps": int(t_all.size),
                "load_s": round(t_load - t0, 2),
                "filter_s": round(t_filter - t_load, 2),
                "infer_s": round(t_infer - t_filter, 2),
                "propagate_s": round(prop_s, 1),
                "isl_s": round(isl_s, 1),
                "isl_steps_per_s": round(t_all.size / isl_s, 1),
                "wall_s": round(wall, 1),
                "isl_edges_per_chunk_max": n_edges_max,
                "median_isl_km_t0": round(m[0] / 1e3, 1),
                "median_isl_ratio_min_max": [round(m.min() / m[0], 4), round(m.max() / m[0], 4)],
                "longest_in_use_km": round(longest / 1e3, 1),
                "max_range_km": round(rng / 1e3, 1),
                "link_flips_per_step": round(flips / max(t_all.size - 1, 1), 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
