"""Benchmark: a sweep of 8 variants of a 1-hour Starlink Gen1 run, on three executors.

Workload: the `ukraine` ground segment (14 terminals, 6 gateways, 2 PoPs) over Starlink Gen1,
1 h at 1 s in both routing modes, swept over 4 elevation masks x 2 ISL settings = 8 variants
(8 x 3,600 steps). The sweep runs three times: 1 local worker process, 2 local worker processes,
and a 2-worker Dask LocalCluster on loopback. Prints one JSON line with the wall times, the
speedup of 2 workers over 1, and the overhead of Dask against local processes.

Usage::

    python benchmarks/bench_sweep.py [--hours H]
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

from starmesh.runner import run_sweep
from starmesh.scenario import load_scenario, parse_scenario


def sweep_scenario(hours: float, workers: int) -> Any:
    """ukraine without its variants and traffic, with an 8-point sweep."""
    data = load_scenario("ukraine").model_dump(mode="json", exclude_none=True)
    data.pop("variants", None)
    data.pop("traffic", None)
    data["time"]["duration_s"] = hours * 3600.0
    data["run"]["workers"] = workers
    data["sweep"] = {
        "grid": {
            "links.min_elevation_deg": [25.0, 30.0, 35.0, 40.0],
            "links.isl": ["plus-grid", "none"],
        }
    }
    return parse_scenario(data)


def timed(hours: float, workers: int, executor: str) -> float:
    sc = sweep_scenario(hours, workers)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_sweep(sc, Path(tmp) / "sweep", executor=executor)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    args = ap.parse_args()
    one = timed(args.hours, 1, "processes")
    two = timed(args.hours, 2, "processes")
    dask = timed(args.hours, 2, "dask:local")
    print(
        json.dumps(
            {
                "bench": "sweep",
                "workload": f"8 variants x {args.hours:g} h of Gen1 at 1 s, ukraine ground",
                "steps": int(8 * args.hours * 3600),
                "wall_s_1_worker": round(one, 1),
                "wall_s_2_workers": round(two, 1),
                "wall_s_dask_local_2": round(dask, 1),
                "speedup_2_vs_1": round(one / two, 2),
                "dask_overhead_vs_processes": round(dask / two - 1.0, 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
