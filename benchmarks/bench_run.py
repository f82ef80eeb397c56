"""Benchmark: one built-in scenario end to end (plan, propagate, route, write), one JSON line.

Usage::

    python benchmarks/bench_run.py [SCENARIO] [--duration-s S]

Prints ``{"bench": "run", "scenario": ..., "steps": ..., "pairs": ..., "modes": ...,
"wall_s": ..., "steps_per_s": ..., "routes_per_s": ..., "peak_rss_mb": ..., "machine": ...}``.
Peak RSS is the whole process's (imports included). The peer comparison (satgenpy on Hypatia's
workload) lives in ``bench_hypatia.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from starmesh.plan import build_plan
from starmesh.runner import run_plan
from starmesh.scenario import load_scenario, parse_scenario


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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default="ukraine")
    ap.add_argument("--duration-s", type=float, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    sc = load_scenario(args.scenario)
    if args.duration_s is not None:
        data = sc.model_dump(mode="json", exclude_none=True)
        data["time"]["duration_s"] = args.duration_s
        sc = parse_scenario(data)
    plan = build_plan(sc)
    with tempfile.TemporaryDirectory() as tmp:
        run_plan(plan, Path(tmp) / "run", report=False)
    wall = time.perf_counter() - t0
    steps = plan.grid.n_steps
    pairs = int(plan.problem.pair_src.size)
    print(
        json.dumps(
            {
                "bench": "run",
                "scenario": sc.name,
                "sats": plan.constellation.n_sats,
                "steps": steps,
                "pairs": pairs,
                "modes": len(plan.modes),
                "wall_s": round(wall, 2),
                "steps_per_s": round(steps / wall, 1),
                "routes_per_s": round(steps * pairs * len(plan.modes) / wall),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
