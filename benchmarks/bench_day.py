"""Benchmark W2: a day of Starlink Gen1 between Hypatia's 100 cities, one JSON line.

Workload: 4,408 satellites in five Walker shells (+Grid ISLs per shell), the 100 cities of the
Hypatia paper as terminals, a 25 deg elevation mask, every one of the 4,950 city pairs routed
through the laser mesh at every second for 24 h (86,400 steps). summary.json gets per-pair
statistics of all pairs (min/median/p95/max RTT, availability, path changes); rtt.parquet gets
the full series of 100 pairs chosen with the scenario's seed. Everything streams chunk by chunk.

Usage::

    python benchmarks/bench_day.py [--hours H] [--workers N] [--out DIR] [--model service]

Prints ``{"bench": "day", "hours": ..., "steps": ..., "wall_s": ..., "steps_per_s": ...,
"peak_rss_mb": ..., "projected_day_wall_s": ..., ...}``. Without ``--out`` the run folder is a
temporary directory, removed at the end.
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


def scenario(hours: float, workers: int | None, model: str = "geometric") -> dict[str, Any]:
    """The W2 scenario, cut to ``hours``, with the geometric or the service model."""
    return {
        "name": "w2-starlink-gen1-day",
        "service": {"model": model},
        "seed": 0,
        "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": hours * 3600.0, "step_s": 1.0},
        "constellation": {"preset": "starlink-gen1"},
        "ground": {"terminal_dataset": "hypatia-top100"},
        "links": {"isl": "plus-grid", "min_elevation_deg": 25.0},
        "routing": {"modes": ["isl"], "pairs": "all-terminal-pairs", "series_pairs": 100},
        "run": {"workers": workers} if workers else {},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--model",
        choices=["geometric", "service"],
        default="geometric",
        help="geometric (W2 as it always was) or the service model (scheduler, RTT quantiles)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    plan = build_plan(parse_scenario(scenario(args.hours, args.workers, args.model)))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "run"
        run_plan(plan, out, force=args.out is not None, report=False)
        out_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    wall = time.perf_counter() - t0
    steps = plan.grid.n_steps
    print(
        json.dumps(
            {
                "bench": "day",
                "workload": "W2 starlink-gen1, 100 cities, 4950 pairs, 1 s steps",
                "model": args.model,
                "hours": args.hours,
                "steps": steps,
                "pairs": int(plan.problem.pair_src.size),
                "series_pairs": int(plan.series_idx.size),
                "workers": set_workers(args.workers),
                "wall_s": round(wall, 1),
                "steps_per_s": round(steps / wall, 1),
                "projected_day_wall_s": round(wall * 86400 / steps, 0),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "output_mb": round(out_mb, 1),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
