"""Benchmark: whole-Earth coverage on H3 cells, one JSON line.

Workload (issue floor: <= 2 min on 2 cores, bounded memory): the whole Earth at H3 resolution 3
(41,162 cells), 24 h at 30 s (2,880 steps), 25 deg elevation mask, k = 4, 15-s highest-elevation
selection; constellation Starlink Gen1 (4,408 satellites, analytic Kepler + J2) or the shipped
real snapshot (10,361 satellites, SGP4).

Usage::

    python benchmarks/bench_coverage.py [--constellation gen1|snapshot] [--hours H]
        [--step-s S] [--res R] [--out DIR]

Prints ``{"bench": "coverage", "constellation": ..., "cells": ..., "steps": ..., "wall_s": ...,
"cpu_s": ..., "steps_per_s": ..., "cell_steps_per_s": ..., "peak_rss_mb": ..., ...}``.
``cpu_s`` is the process CPU time (both threads): on a shared machine it is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

from starmesh.constellation import Constellation, preset_shells
from starmesh.coverage import coverage, write_coverage_geojson, write_coverage_parquet
from starmesh.elements import load_starlink_snapshot
from starmesh.timegrid import TimeGrid

EPOCH = "2026-05-12T12:00:00Z"


def machine() -> str:
    """CPU model and core count, for the record."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--constellation", choices=["gen1", "snapshot"], default="gen1")
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--step-s", type=float, default=30.0)
    ap.add_argument("--res", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="also write Parquet and GeoJSON here")
    args = ap.parse_args()
    if args.constellation == "gen1":
        cons = Constellation.from_shells(
            "starlink-gen1", preset_shells("starlink-gen1"), epoch=EPOCH
        )
    else:
        cons = Constellation.from_elements("starlink-2026-05-12", load_starlink_snapshot())
    tg = TimeGrid.from_utc(EPOCH, duration_s=args.hours * 3600.0, step_s=args.step_s)
    # Compile the kernels outside the timing (numba caches them on disk after the first run).
    coverage(
        cons, TimeGrid.from_utc(EPOCH, duration_s=60.0, step_s=30.0), region=[0, 0, 10, 10], res=2
    )
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    res = coverage(cons, tg, res=args.res, min_elevation_deg=25.0, k=4)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out_mb = None
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        p = write_coverage_parquet(res, args.out / "coverage.parquet")
        g = write_coverage_geojson(res, args.out / "coverage.geojson")
        out_mb = round((p.stat().st_size + g.stat().st_size) / 1e6, 1)
    summ = res.summary()
    cell_steps = res.grid.n_cells * tg.n_steps
    print(
        json.dumps(
            {
                "bench": "coverage",
                "constellation": cons.name,
                "sats": cons.n_sats,
                "h3_res": args.res,
                "cells": res.grid.n_cells,
                "steps": tg.n_steps,
                "step_s": args.step_s,
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "steps_per_s": round(tg.n_steps / wall, 1),
                "cell_steps_per_s": round(cell_steps / wall),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "loadavg_1min_at_start": round(load, 2),
                "frac_ge1_mean": round(summ["frac_ge1_mean"], 5),
                "frac_ge4_mean": round(summ["frac_ge_k_mean"], 5),
                "n_view_mean": round(summ["n_view_mean"], 3),
                "gap_max_s": summ["gap_max_s"],
                "handovers_per_hour_mean": round(summ["handovers_per_hour_mean"], 2),
                "output_mb": out_mb,
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
