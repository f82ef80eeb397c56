"""Benchmark: flow-level traffic on Starlink Gen1, one JSON line.

Workload (issue floor: <= 10 min, <= 4 GB peak RSS): Starlink Gen1 (4,408 satellites, +Grid),
the 101 most populous GeoNames cities, a gravity traffic matrix between them (10,100 ordered
city pairs = 10,100 flows, 5 Tbit/s in total, each city standing for 100,000 terminals), routed
through the laser mesh, max-min fair rates under the sourced link capacities at every step,
3,600 steps at 1 s.

Usage::

    python benchmarks/bench_traffic.py [--hours H] [--workers N]

Prints ``{"bench": "traffic", "flows": ..., "steps": ..., "wall_s": ...,
"flow_steps_per_s": ..., "peak_rss_mb": ..., ...}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_run import machine

from starmesh.engine import set_workers
from starmesh.plan import build_plan
from starmesh.runner import run_plan
from starmesh.scenario import parse_scenario


def scenario(hours: float, workers: int | None) -> dict[str, Any]:
    """The traffic workload, cut to ``hours``."""
    return {
        "name": "traffic-gen1-gravity",
        "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": hours * 3600.0, "step_s": 1.0},
        "constellation": {"preset": "starlink-gen1"},
        "ground": {"terminal_dataset": "top-cities:101"},
        "routing": {"modes": ["isl"], "pairs": "all-terminal-pairs", "series_pairs": 100},
        "traffic": {
            "model": "gravity",
            "total_gbps": 5000.0,
            "alpha": 1.0,
            "terminals_per_site": 100_000,
        },
        "run": {"workers": workers} if workers else {},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    plan = build_plan(parse_scenario(scenario(args.hours, args.workers)))
    assert plan.traffic is not None
    with tempfile.TemporaryDirectory() as tmp:
        summary = run_plan(plan, Path(tmp) / "run", report=False).to_dict()
        out_mb = sum(p.stat().st_size for p in (Path(tmp) / "run").rglob("*") if p.is_file())
    wall = time.perf_counter() - t0
    n_f, steps = int(plan.traffic.flow_pair.size), plan.grid.n_steps
    t = summary["traffic"]["modes"]["isl"]
    print(
        json.dumps(
            {
                "bench": "traffic",
                "workload": "starlink-gen1, 101 cities, gravity flows, max-min fair, 1 s steps",
                "flows": n_f,
                "steps": steps,
                "workers": set_workers(args.workers),
                "wall_s": round(wall, 1),
                "flow_steps_per_s": round(n_f * steps / wall),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "output_mb": round(out_mb / 2**20, 1),
                "unmet_fraction": round(t["unmet_fraction"], 4),
                "jain_index_mean": round(t["jain_index_mean"], 4),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
