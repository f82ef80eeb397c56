"""Benchmark: what per-terminal visibility adds to a run's chunks, one JSON line.

Usage::

    python benchmarks/bench_visibility.py [SCENARIO] [--duration-s S] [--terminals N]

Computes every chunk of the scenario with :func:`starmesh.engine.compute_chunk` (which calls
``chunk_visibility``) and times ``chunk_visibility`` alone on the same chunks (links and
positions given), so the share of the run it takes is measured in one process. Prints
``{"bench": "visibility", "steps": ..., "terminals": ..., "chunk_s": ..., "visibility_s": ...,
"share": ..., "loadavg_1min_at_start": ...}``. CPU times (``process_time``), since the
machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from starmesh.engine import (
    chunk_links,
    chunk_visibility,
    chunk_window,
    compute_chunk,
    visibility_terminals,
)
from starmesh.plan import build_plan
from starmesh.scenario import load_scenario, parse_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default="ukraine")
    ap.add_argument("--duration-s", type=float, default=600.0)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    data = load_scenario(args.scenario).model_dump(mode="json", exclude_none=True)
    data["time"]["duration_s"] = args.duration_s
    plan = build_plan(parse_scenario(data))
    prop = plan.propagator()
    chunks = list(plan.grid.chunks(plan.chunk_steps))
    t0 = time.process_time()
    for a, b in chunks:
        compute_chunk(plan, a, b, prop)
    chunk_s = time.process_time() - t0
    vis_s = 0.0
    for a, b in chunks:
        lo = max(a - 1, 0)
        win = chunk_window(plan, prop, lo, b)
        rows = win.steps(lo, b)
        links = chunk_links(plan, win.t_s[rows], win.r[rows], win.ok[rows])
        t1 = time.process_time()
        chunk_visibility(plan, a, links, win)
        vis_s += time.process_time() - t1
    print(
        json.dumps(
            {
                "bench": "visibility",
                "scenario": plan.name,
                "steps": plan.grid.n_steps,
                "step_s": plan.grid.step_s,
                "chunk_steps": plan.chunk_steps,
                "terminals": int(visibility_terminals(plan).size),
                "sats": plan.constellation.n_sats,
                "chunk_cpu_s": round(chunk_s, 3),
                "visibility_cpu_s": round(vis_s, 3),
                "share": round(vis_s / chunk_s, 4),
                "loadavg_1min_at_start": round(load, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
