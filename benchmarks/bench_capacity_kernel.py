"""Benchmark: max-min fair allocation on one Starlink Gen1 snapshot, one JSON line.

Usage::

    python benchmarks/bench_capacity_kernel.py [--terminals N] [--gravity-flows M] [--repeat K]

The instance: Starlink Gen1 (4,408 satellites, +Grid ISLs, 25 deg mask) at one instant; the
``N`` most populous cities as terminal sites of 200 terminals each (aggregated flows), the 198
Starlink gateway sites, PoPs in the 30 most populous cities, each gateway on fibre to its
nearest PoP. Flows: every terminal site to and from its nearest PoP (``2 N``, shortest-delay
paths through the laser mesh) plus ``M`` terminal-to-terminal flows drawn from a gravity model.
Default ``N = 2,500`` and ``M = 5,000``: 10,000 flows.

Prints ``{"bench": "capacity_kernel", "flows": ..., "resources": ..., "nnz": ...,
"resources_per_flow": ..., "incidence_ms": ..., "max_min_fair_ms": ..., "rounds": ...,
"bottlenecked": ..., "machine": ...}``; times are medians over ``K`` calls.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from bench_run import machine
from scipy.sparse.csgraph import dijkstra

from starmesh.capacity import (
    build_resources,
    flow_incidence,
    max_min_fair,
    node_paths_from_predecessors,
    reverse_paths,
)
from starmesh.constellation import Constellation, preset_shells
from starmesh.frames import great_circle_m
from starmesh.ground import Site, Sites, starlink_gateways, top_cities
from starmesh.propagation import Propagator
from starmesh.routing import RoutingProblem, fibre_delay_s, snapshot_graph, space_delay_s
from starmesh.timegrid import parse_utc
from starmesh.topology import GslRule, fibre_links, find_gsls, isl_lengths_m, plus_grid_edges

EPOCH = "2025-03-01T00:00:00Z"
TERMINALS_PER_SITE = 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--terminals", type=int, default=2500)
    ap.add_argument("--gravity-flows", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(20260301)

    const = Constellation.from_shells("starlink-gen1", preset_shells("starlink-gen1"), epoch=EPOCH)
    r, ok = Propagator(const, parse_utc(EPOCH)).positions_ecef_m(np.zeros(1))
    cities = top_cities(args.terminals)
    pops = [Site(f"PoP {c.name}", "pop", c.lat_deg, c.lon_deg) for c in top_cities(30)]
    gws = [Site(f"GW {g.name}", "gateway", g.lat_deg, g.lon_deg) for g in starlink_gateways()]
    sites = Sites.from_sites([*cities, *gws, *pops])
    n_s, n_g = const.n_sats, len(sites)
    kinds = sites.kinds
    term = sites.of_kind("terminal")
    gw = sites.of_kind("gateway")
    pop = sites.of_kind("pop")
    f_gw, f_pop, f_len = fibre_links(sites.lat_rad, sites.lon_rad, gw, pop, route_factor=1.5)
    edges = plus_grid_edges(const)
    gsl_site = np.array([k != "pop" for k in kinds])
    gsl_idx = np.flatnonzero(gsl_site)
    gsl = find_gsls(
        r, ok, sites.r_ecef_m[gsl_idx], sites.up[gsl_idx], GslRule(min_elevation_rad=np.radians(25))
    )
    empty = np.zeros(0, np.int64)
    problem = RoutingProblem(n_s, n_g, gsl_site, edges, f_gw, f_pop, fibre_delay_s(f_len),
                             empty, empty)  # fmt: skip
    graph = snapshot_graph(
        problem,
        isl_delay_s=space_delay_s(isl_lengths_m(r, edges)[0]),
        gsl_site=gsl_idx[gsl.site_idx].astype(np.int32),
        gsl_sat=gsl.sat_idx,
        gsl_delay_s=space_delay_s(gsl.length_m),
    )
    # Access: each terminal site's nearest PoP that has a gateway; paths PoP -> terminal,
    # mirrored for the uplink.
    gc = great_circle_m(
        sites.lat_rad[term][:, None], sites.lon_rad[term][:, None],
        sites.lat_rad[pop][None, :], sites.lon_rad[pop][None, :],
    )  # fmt: skip
    # Only PoPs with a gateway on fibre are reachable.
    gc[:, ~np.isin(pop, f_pop)] = np.inf
    near = np.argmin(gc, axis=1)
    _, pred = dijkstra(graph, indices=problem.out_node(pop), return_predecessors=True)
    d_ptr, d_nodes = node_paths_from_predecessors(pred, near, problem.in_node(term))
    _, u_nodes = reverse_paths(d_ptr, d_nodes, n_s, n_g)
    # Gravity: terminal pairs drawn with probability ~ pop_i pop_j / d_ij from 200 sources.
    src_pool = rng.choice(term, size=min(200, term.size), replace=False)
    src = rng.choice(src_pool, size=args.gravity_flows)
    dst = rng.choice(term, size=args.gravity_flows)
    dst = np.where(dst == src, term[(np.searchsorted(term, dst) + 1) % term.size], dst)
    uniq, row = np.unique(src, return_inverse=True)
    _, pred2 = dijkstra(graph, indices=problem.out_node(uniq), return_predecessors=True)
    g_ptr, g_nodes = node_paths_from_predecessors(pred2, row, problem.in_node(dst))
    ptr = np.concatenate([d_ptr, d_ptr[1:] + d_ptr[-1], g_ptr[1:] + 2 * d_ptr[-1]])
    nodes = np.concatenate([d_nodes, u_nodes, g_nodes])
    n_access = term.size
    demand = np.concatenate(
        [
            np.full(n_access, 100e6 * TERMINALS_PER_SITE),
            np.full(n_access, 10e6 * TERMINALS_PER_SITE),
            rng.uniform(0.1e9, 2e9, args.gravity_flows),
        ]
    )

    res = build_resources(n_s, kinds, edges, f_gw, f_pop, n_terminals_per_site=TERMINALS_PER_SITE)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        inc = flow_incidence(res, ptr, nodes)
        times.append(time.perf_counter() - t0)
    t_inc = float(np.median(times))
    max_min_fair(inc, res.capacity_bps, demand)  # warm-up
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        alloc = max_min_fair(inc, res.capacity_bps, demand)
        times.append(time.perf_counter() - t0)
    row_len = np.diff(inc.indptr)
    routed = row_len > 0
    print(
        json.dumps(
            {
                "bench": "capacity_kernel",
                "flows": int(inc.shape[0]),
                "routed": int(routed.sum()),
                "resources": int(inc.shape[1]),
                "nnz": int(inc.nnz),
                "resources_per_flow": round(float(row_len[routed].mean()), 1),
                "resources_per_flow_max": int(row_len.max()),
                "incidence_ms": round(1e3 * t_inc, 2),
                "max_min_fair_ms": round(1e3 * float(np.median(times)), 2),
                "rounds": alloc.n_rounds,
                "demand_limited": int((alloc.bottleneck == -1).sum()),
                "bottlenecked": int((alloc.bottleneck >= 0).sum()),
                "saturated_resources": int((alloc.utilisation > 1 - 1e-6).sum()),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
