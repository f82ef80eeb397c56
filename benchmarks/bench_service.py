"""Benchmark: cost of the service model per step, one JSON line.

Usage::

    python benchmarks/bench_service.py [--pairs P] [--samples N] [--terminals G] [--repeat K]

Times, per step: ``rtt_breakdown`` for ``P`` pairs with ``N`` Monte-Carlo samples (queueing at a
spread of utilisations, so several inverse-CDF tables), and ``schedule_sparse`` for ``G``
terminals over a 15-s slot with ~40 candidate satellites each. Compare with the geometric engine's
per-step time from ``bench_day.py`` to see the overhead (target: at most 2x).

Prints ``{"bench": "service", "pairs": ..., "samples": ..., "rtt_ms_per_step": ...,
"terminals": ..., "schedule_ms_per_step": ..., "peak_rss_mb": ..., "machine": ...}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
from bench_run import machine

from starmesh.service.latency import rtt_breakdown, rtt_quantiles_s
from starmesh.service.params import ServiceParams
from starmesh.service.scheduler import schedule_sparse


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=4950)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--terminals", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    n_t = 15
    prop = rng.uniform(8e-3, 80e-3, (n_t, a.pairs))
    user = rng.uniform(1.8e-3, 3.5e-3, (n_t, a.pairs))
    hops = rng.integers(0, 12, (n_t, a.pairs))
    rho = np.round(rng.uniform(0.1, 0.9, (n_t, a.pairs)), 2)
    p = ServiceParams()
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        rtt_breakdown(
            prop, user, hops, params=p, rng=rng, n_samples=a.samples, rho_user=rho, rho_feeder=rho
        )
        times.append((time.perf_counter() - t0) / n_t)
    fast = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        rtt_quantiles_s(prop, user, hops, params=p, rho_user=rho, rho_feeder=rho)
        fast.append((time.perf_counter() - t0) / n_t)
    # Sparse candidates: ~40 per terminal per step, sorted by (t, site, sat).
    k = 40
    ti = np.repeat(np.arange(n_t), a.terminals * k)
    gi = np.tile(np.repeat(np.arange(a.terminals), k), n_t)
    si = rng.integers(0, 4408, ti.size)
    el = rng.uniform(0.44, 1.57, ti.size)
    st = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        schedule_sparse(np.arange(n_t) + 12.0, a.terminals, ti, gi, si, el, policy="hold")
        st.append((time.perf_counter() - t0) / n_t)
    print(
        json.dumps(
            {
                "bench": "service",
                "pairs": a.pairs,
                "samples": a.samples,
                "rtt_ms_per_step": round(1e3 * float(np.median(times)), 2),
                "rtt_quantiles_ms_per_step": round(1e3 * float(np.median(fast)), 2),
                "terminals": a.terminals,
                "schedule_ms_per_step": round(1e3 * float(np.median(st)), 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
