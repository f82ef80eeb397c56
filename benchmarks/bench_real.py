"""Benchmark: the real constellation (filter, shell inference, +Grid re-pairing), one JSON line.

Workload: the shipped Starlink snapshot (10,361 TLEs): the operational filter, shell/plane/slot
inference at the newest element epoch, then ``--hours`` of SGP4 propagation and per-step +Grid
ISL re-pairing (``PlusGridIsl.links``) at ``--step`` seconds, in chunks of ``--chunk`` steps
as the engine would call it. Also reports what the links do: the median in-use ISL length over
the run relative to t = 0, the longest in-use link against the range, and links flipped per step.

With ``--w4`` it runs the issue's W4 workload end to end (``starmesh run`` through the run
folder): the built-in ``starlink-2026`` (filtered snapshot, re-paired +Grid ISLs), the 1,000
most populous world cities as terminals each to its nearest of 20 PoPs (through Starlink's
gateways and fibre), plus all 4,950 pairs of Hypatia's 100 cities, at 1 s steps, for ``--hours``
(default 1 h; the target is 24 h in <= 15 min and <= 4 GB of all processes together), once per
worker count of ``--workers`` (default ``1,2``), and reports the speedup.

Usage::

    python benchmarks/bench_real.py [--hours H] [--step S] [--chunk C]
    python benchmarks/bench_real.py --w4 [--hours H] [--workers 1,2]

Prints ``{"bench": "real", "n_sats": ..., "filter_s": ..., "infer_s": ..., "propagate_s": ...,
"isl_s": ..., "isl_steps_per_s": ..., "peak_rss_mb": ..., ...}``, or with ``--w4``
``{"bench": "real-w4", "wall_s_1_worker": ..., "wall_s_2_workers": ..., "speedup_2_vs_1": ...,
"peak_rss_all_mb_...": ..., "projected_day_wall_s_...": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from typing import Any

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


#: PoPs of W4: 20 of the 2025 list, spread over the continents (codes of starlink-pops-2025.csv
#: are not needed: the sites are given by coordinates).
N_POPS = 20


def w4_scenario(
    hours: float,
    step_s: float,
    workers: int | None,
    chunk_steps: int | None = None,
    model: str = "service",
) -> dict[str, Any]:
    """The W4 scenario, cut to ``hours``: sites by coordinates, pairs listed; ``model`` is
    the latency model (``"service"``, every scenario's default, or ``"geometric"``: network
    state and propagation RTT only, as Hypatia computes)."""
    import csv
    from importlib.resources import files

    from starmesh.ground import hypatia_cities, starlink_gateways, top_cities

    with (files("starmesh") / "data" / "starlink-pops-2025.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # Every other PoP of the file (sorted by code), up to 20: a spread, deterministically.
    pops = [
        {"name": f"PoP-{r['city']}", "lat_deg": float(r["lat_deg"]), "lon_deg": float(r["lon_deg"])}
        for r in rows[:: max(1, len(rows) // N_POPS)][:N_POPS]
    ]
    cities = top_cities(1000)
    hyp = hypatia_cities()
    terminals = [
        {"name": f"T-{c.name}", "lat_deg": c.lat_deg, "lon_deg": c.lon_deg} for c in cities
    ] + [{"name": f"H-{c.name}", "lat_deg": c.lat_deg, "lon_deg": c.lon_deg} for c in hyp]
    gateways = [
        {"name": f"G-{g.name}", "lat_deg": g.lat_deg, "lon_deg": g.lon_deg}
        for g in starlink_gateways()
    ]

    # Nearest PoP of every city by great-circle angle.
    def unit(lat: Any, lon: Any) -> Any:
        la, lo = np.radians(lat), np.radians(lon)
        return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], -1)

    u_c = unit(np.array([c.lat_deg for c in cities]), np.array([c.lon_deg for c in cities]))
    u_p = unit(np.array([p["lat_deg"] for p in pops]), np.array([p["lon_deg"] for p in pops]))
    near = np.argmax(u_c @ u_p.T, axis=1)
    pairs = [[terminals[i]["name"], pops[j]["name"]] for i, j in enumerate(near)]
    h = [t["name"] for t in terminals[len(cities) :]]
    pairs += [[h[i], h[j]] for i in range(len(h)) for j in range(i + 1, len(h))]
    return {
        "name": "w4-starlink-2026",
        "seed": 0,
        "time": {
            "start_utc": "2026-05-13T00:00:00Z",
            "duration_s": hours * 3600.0,
            "step_s": step_s,
        },
        "constellation": {"preset": "starlink-2026"},
        "ground": {"terminals": terminals, "gateways": gateways, "pops": pops},
        "links": {"isl": "plus-grid"},
        "routing": {"modes": ["isl"], "pairs": pairs, "series_pairs": 100},
        "service": {"model": model},
        # Chunks: the plan's own sizing (29 steps here, bounded by GSL candidates), or given.
        "run": {
            **({"chunk_steps": chunk_steps} if chunk_steps else {}),
            **({"workers": workers} if workers else {}),
        },
    }


def _cpu_s(sampler: Any) -> float:
    """CPU time [s] of this process and its finished children (workers are joined by then)."""
    import resource as res

    me, kids = res.getrusage(res.RUSAGE_SELF), res.getrusage(res.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class _RssSampler:
    """Peak of the summed RSS of this process and all its children, sampled every 0.2 s."""

    def __init__(self) -> None:
        import threading

        import psutil

        self.peak = 0
        self._me = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for p in [self._me, *self._me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def w4(hours: float, step_s: float, workers_list: list[int], model: str = "service") -> None:
    """Run W4 once per worker count and print one JSON line."""
    import tempfile
    from pathlib import Path

    from starmesh.plan import build_plan
    from starmesh.runner import run_plan
    from starmesh.scenario import parse_scenario

    out: dict[str, Any] = {
        "bench": "real-w4",
        "workload": f"W4 starlink-2026 (re-paired +Grid), 1,000 cities -> nearest of {N_POPS} "
        f"PoPs + 4,950 Hypatia city pairs, {step_s:g} s steps",
        "hours": hours,
        "model": model,
        "load_avg_1min_at_start": round(os.getloadavg()[0], 2),
    }
    walls = {}
    for n in workers_list:
        t0 = time.perf_counter()
        sampler = _RssSampler()
        cpu0 = _cpu_s(sampler)
        plan = build_plan(parse_scenario(w4_scenario(hours, step_s, n, model=model)))
        t_plan = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            run_plan(plan, Path(tmp) / "run", report=False)
        wall = time.perf_counter() - t0
        cpu = _cpu_s(sampler) - cpu0
        peak = sampler.stop()
        walls[n] = wall
        out.update(
            {
                "n_sats": plan.constellation.n_sats,
                "n_sites": len(plan.sites),
                "pairs": int(plan.problem.pair_src.size),
                "steps": plan.grid.n_steps,
                "chunk_steps": plan.chunk_steps,
                f"plan_s_{n}_workers": round(t_plan - t0, 1),
                f"wall_s_{n}_workers": round(wall, 1),
                f"steps_per_s_{n}_workers": round(plan.grid.n_steps / (wall - (t_plan - t0)), 1),
                f"projected_day_wall_s_{n}_workers": round(
                    (t_plan - t0) + (wall - (t_plan - t0)) * 86400 / (plan.grid.n_steps * step_s),
                    0,
                ),
                f"peak_rss_all_mb_{n}_workers": round(peak, 1),
                f"cpu_s_{n}_workers": round(cpu, 1),
            }
        )
    if 1 in walls and 2 in walls:
        out["speedup_2_vs_1"] = round(walls[1] / walls[2], 2)
    out["load_avg_1min"] = round(os.getloadavg()[0], 2)
    out["machine"] = machine()
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--step", type=float, default=1.0)
    ap.add_argument("--chunk", type=int, default=300)
    ap.add_argument("--w4", action="store_true", help="the whole W4 run (routing included)")
    ap.add_argument("--workers", default="1,2", help="W4: worker counts to compare")
    ap.add_argument("--model", default="service", choices=["service", "geometric"])
    args = ap.parse_args()
    if args.w4:
        w4(args.hours, args.step, [int(x) for x in args.workers.split(",")], args.model)
        return
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
