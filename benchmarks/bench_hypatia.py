"""Benchmark: starmesh against Hypatia's satgenpy on Hypatia's paper workload, one JSON line.

Workload W1 (Kassing et al., IMC 2020): Starlink's 550 km shell in satgenpy's layout (72 x 22,
53 deg, 15.19 rev/day, eccentricity 1e-7, PHASE_DIFF, TLE epoch 2000-01-01), the 100 most
populous cities, +Grid ISLs, algorithm ``free_one_only_over_isls``, 200 s at 100 ms (2,000
steps). starmesh's built-in scenario ``hypatia-starlink-550`` is this workload.

Usage::

    python benchmarks/bench_hypatia.py [--satgenpy-steps K] [--skip-satgenpy]

satgenpy (``pip install -e ".[bench]"``) generates its inputs with its own functions in a
temporary folder, then computes the forwarding state of K steps spread evenly over the 200 s
(``--satgenpy-steps 3``: steps 0, 1000 and 1999) by calling ``generate_dynamic_state_at``, the
function ``generate_dynamic_state`` calls for every step, with the arguments
``help_dynamic_state`` gives it. Its per-step time covers that call only (pyephem link lengths,
networkx graph, Floyd-Warshall, forwarding state, writing ``fstate_<t>.txt``); the one-off input
generation is not counted. Steps are independent in satgenpy: the previous step's output only
decides which lines go into the file (those that changed; here, since the previous compared
step), so a spread-out sample times the same work as consecutive steps and compares the two
simulators over the whole run. One thread: ``help_dynamic_state`` splits the steps over
threads, which share one interpreter lock.

starmesh runs all 2,000 steps of ``hypatia-starlink-550`` with ``[routing] forwarding_state =
true`` in this process (``full_wall_s``: plan, propagate, route, write the run folder). At each
satgenpy step the two are compared:

- next hops, for every (node, destination ground station) of satgenpy's forwarding state. A
  difference is a *tie* when both next hops give the same path length to within 1e-6 m in
  satgenpy's own distances (its ISL lengths, Floyd-Warshall matrix and GSL lengths);
- RTT between every pair of ground stations, within 1 us.

Next-hop differences that are not ties are sorted into categories. *gsl_threshold*: the two
see a different set of satellites in range of a ground station involved (a satellite near the
1,089.7 km limit), and satgenpy's own distances, given starmesh's set, pick what starmesh
picked. *missing*: starmesh has no entry. *invalid*: starmesh's next hop is no link of
satgenpy's graph. *route_choice*: the rest, with the largest gap in satgenpy's path length
reported (``max_route_choice_gap_m``; two routes whose lengths differ by less than the two
geometries do). RTT differences over 1 us are *same_path* (both take the same nodes there and
back: only the link lengths differ), *gsl_threshold* (as above) or *route_choice*.
``mismatches`` is the sum of both kinds over the compared steps. ``gsl_set_differences``
counts (step, ground station) whose satellites in range differ, and
``max_gsl_threshold_margin_m`` is how far from the limit, in satgenpy's lengths, the
satellites in range in only one of the two are (0 if none).

The geometries differ because satgenpy measures with pyephem (libastro: Newcomb sidereal time
0.076 s behind GMST82, satellites scaled by its 6378.16 km Earth radius, about 3.9 ppm higher)
and starmesh with python-sgp4 and WGS84; on satgenpy's own Kuiper-630 fixtures that is up to
0.52 us of RTT (``tests/test_hypatia_fixtures.py``). ``median_rtt_diff_ppm`` is the median of
(starmesh - satgenpy) / satgenpy RTT; the 3.9 ppm scale alone is 0.8 us on a 215 ms path.

RTT is satgenpy's definition: ``post_analysis/print_routes_and_rtt.py`` follows the forwarding
state there and back (``graph_tools.get_path``), sums the hops' lengths
(``compute_path_length_without_graph``) and divides by 299,792,458 m/s. The path there is the
forwarding state's shortest path: ``fstate_calculation.calculate_fstate_shortest_path_without_
gs_relaying`` picks the source satellite i in range of a and the destination satellite j in range
of b minimising ``d_gsl(a, i) + D[i, j] + d_gsl(b, j)`` with D from its Floyd-Warshall, so
``RTT(a, b) = 2 * min_ij (d_gsl(a, i) + D[i, j] + d_gsl(b, j)) / c``, computed here from the
captured distances; at the first compared step it is checked against satgenpy's own path-following
code for a sample of pairs (``rtt_definition_check_ns``: largest difference).

Prints ``{"bench": "hypatia", "workload": ..., "steps": 2000, "satgenpy_steps": K,
"satgenpy_s_per_step": ..., "starmesh_s_per_step": ..., "ratio": ..., "full_wall_s": ...,
"peak_rss_mb": ..., "mismatches": ..., "ties": ..., "max_rtt_diff_us": ..., "machine": ...}``
plus the comparison's details. ``peak_rss_mb`` is the process's peak after the starmesh run
(before satgenpy is imported); ``peak_rss_mb_end`` includes satgenpy.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench_run import machine
from numpy.typing import NDArray

SCENARIO = "hypatia-starlink-550"
WORKLOAD = f"W1 {SCENARIO}"
N_STEPS = 2000
STEP_NS = 100_000_000

# satgenpy's Starlink-550 settings (snkas/hypatia paper/satellite_networks_state/
# main_starlink_550.py and main_helper.py).
NAME = "starlink_550_isls_plus_grid_ground_stations_top_100_algorithm_free_one_only_over_isls"
NICE_NAME = "Starlink-550"
EARTH_RADIUS_M = 6378135.0  # WGS72
ALTITUDE_M = 550000
N_ORBS = 72
N_SATS_PER_ORB = 22
INCLINATION_DEG = 53
ECCENTRICITY = 0.0000001
ARG_OF_PERIGEE_DEG = 0.0
PHASE_DIFF = True
MEAN_MOTION_REV_PER_DAY = 15.19
SATELLITE_CONE_RADIUS_M = 940700
MAX_GSL_LENGTH_M = math.sqrt(SATELLITE_CONE_RADIUS_M**2 + ALTITUDE_M**2)
MAX_ISL_LENGTH_M = 2 * math.sqrt((EARTH_RADIUS_M + ALTITUDE_M) ** 2 - (EARTH_RADIUS_M + 80000) ** 2)
ALGORITHM = "algorithm_free_one_only_over_isls"
N_SATS = N_ORBS * N_SATS_PER_ORB

#: satgenpy's speed of light (post_analysis/print_routes_and_rtt.py) [m/s].
C_M_S = 299792458.0
#: Two next hops whose path lengths differ by at most this are a tie [m].
TIE_M = 1e-6
#: RTTs agree when they differ by at most this [ns].
RTT_TOL_NS = 1000.0
#: Pairs checked against satgenpy's own path-following RTT code at the first step.
N_RTT_CHECK_PAIRS = 200

INSTALL_HINT = 'satgenpy is not installed: pip install -e ".[bench]"'


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far [MB]."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def spread_steps(k: int, n_steps: int = N_STEPS) -> list[int]:
    """``k`` steps spread evenly over ``0 .. n_steps - 1``, first and last included.

    >>> spread_steps(3), spread_steps(1), spread_steps(5)
    ([0, 1000, 1999], [0], [0, 500, 1000, 1499, 1999])
    """
    if k < 1:
        raise ValueError("need at least one step")
    if k == 1:
        return [0]
    return sorted({round(i * (n_steps - 1) / (k - 1)) for i in range(k)})


def cities_file() -> Path:
    """starmesh's copy of Hypatia's 100 cities (satgenpy's ``basic`` ground station format)."""
    import starmesh

    return Path(starmesh.__file__).parent / "data" / "hypatia-cities-top100.txt"


# --- satgenpy --------------------------------------------------------------------------------


@dataclass
class SatgenpyNetwork:
    """satgenpy's inputs as ``help_dynamic_state`` reads them back from its files."""

    folder: Path
    satellites: list[Any]
    ground_stations: list[dict[str, Any]]
    list_isls: list[tuple[int, int]]
    list_gsl_interfaces_info: list[dict[str, Any]]
    epoch: Any


@dataclass
class SatgenpyStep:
    """What satgenpy computed at one step, kept for the comparison.

    ``fstate`` maps (current node, destination node) to the next hop (-1: unreachable);
    ``dist_m`` is its Floyd-Warshall matrix over satellites, ``isl_m`` its ISL lengths,
    ``in_range[g]`` the (length, satellite) of every satellite in GSL range of ground station g,
    ``rtt_ns`` the RTT of every pair of ground stations (inf: unreachable, nan on the diagonal).
    """

    step: int
    seconds: float
    fstate: dict[tuple[int, int], int]
    dist_m: NDArray[np.float64]
    isl_m: dict[tuple[int, int], float]
    in_range: list[list[tuple[float, int]]]
    rtt_ns: NDArray[np.float64]


def satgenpy_network(folder: Path) -> SatgenpyNetwork:
    """Generate satgenpy's inputs in ``folder`` with its own functions, as its paper scripts do."""
    import satgen

    d = folder / NAME
    d.mkdir(parents=True, exist_ok=True)
    satgen.extend_ground_stations(str(cities_file()), str(d / "ground_stations.txt"))
    satgen.generate_tles_from_scratch_manual(
        str(d / "tles.txt"),
        NICE_NAME,
        N_ORBS,
        N_SATS_PER_ORB,
        PHASE_DIFF,
        INCLINATION_DEG,
        ECCENTRICITY,
        ARG_OF_PERIGEE_DEG,
        MEAN_MOTION_REV_PER_DAY,
    )
    satgen.generate_plus_grid_isls(
        str(d / "isls.txt"), N_ORBS, N_SATS_PER_ORB, isl_shift=0, idx_offset=0
    )
    satgen.generate_description(str(d / "description.txt"), MAX_GSL_LENGTH_M, MAX_ISL_LENGTH_M)
    n_gs = len(satgen.read_ground_stations_extended(str(d / "ground_stations.txt")))
    satgen.generate_simple_gsl_interfaces_info(
        str(d / "gsl_interfaces_info.txt"), N_SATS, n_gs, 1, 1, 1, 1
    )
    # Read back exactly as help_dynamic_state does.
    ground_stations = satgen.read_ground_stations_extended(str(d / "ground_stations.txt"))
    tles = satgen.read_tles(str(d / "tles.txt"))
    satellites = tles["satellites"]
    list_isls = satgen.read_isls(str(d / "isls.txt"), len(satellites))
    gsl_info = satgen.read_gsl_interfaces_info(
        str(d / "gsl_interfaces_info.txt"), len(satellites), len(ground_stations)
    )
    return SatgenpyNetwork(d, satellites, ground_stations, list_isls, gsl_info, tles["epoch"])


class _NetworkxSpy:
    """Stands in for ``networkx`` inside satgenpy's ``fstate_calculation`` module and keeps the
    Floyd-Warshall matrix it computes (everything else is passed through)."""

    def __init__(self, nx: Any, box: dict[str, Any]) -> None:
        self._nx = nx
        self._box = box

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nx, name)

    def floyd_warshall_numpy(self, *args: Any, **kwargs: Any) -> Any:
        dist = self._nx.floyd_warshall_numpy(*args, **kwargs)
        self._box["dist_m"] = dist
        return dist


@contextmanager
def _capture_satgenpy(box: dict[str, Any]) -> Iterator[None]:
    """Keep references to satgenpy's intermediate results while its code runs unchanged: the
    ISL graph and GSL candidates handed to its forwarding-state function, and the Floyd-Warshall
    matrix."""
    fc: Any = importlib.import_module("satgen.dynamic_state.fstate_calculation")
    alg: Any = importlib.import_module("satgen.dynamic_state.algorithm_free_one_only_over_isls")
    fstate_fn = alg.calculate_fstate_shortest_path_without_gs_relaying
    nx = fc.nx

    def keep(*args: Any, **kwargs: Any) -> Any:
        box["graph"] = args[4]
        box["in_range"] = args[7]
        return fstate_fn(*args, **kwargs)

    alg.calculate_fstate_shortest_path_without_gs_relaying = keep
    fc.nx = _NetworkxSpy(nx, box)
    try:
        yield
    finally:
        alg.calculate_fstate_shortest_path_without_gs_relaying = fstate_fn
        fc.nx = nx


def dist_sat_to_gs(
    dist_m: NDArray[np.float64], in_range: Sequence[Sequence[tuple[float, int]]]
) -> NDArray[np.float64]:
    """satgenpy's ``dist_satellite_to_ground_station``: shortest length from every satellite to
    every ground station over ISLs and a last GSL, shape (S, G) [m]."""
    out = np.full((dist_m.shape[0], len(in_range)), np.inf)
    for g, cand in enumerate(in_range):
        if cand:
            d = np.array([c[0] for c in cand])
            j = np.array([c[1] for c in cand])
            out[:, g] = np.min(dist_m[:, j] + d, axis=1)
    return out


def rtt_matrix_ns(
    dist_m: NDArray[np.float64], in_range: Sequence[Sequence[tuple[float, int]]]
) -> NDArray[np.float64]:
    """RTT between every pair of ground stations [ns] from satgenpy's distances:
    ``2 * min_ij (d_gsl(a, i) + D[i, j] + d_gsl(b, j)) / c``; inf if unreachable."""
    to_gs = dist_sat_to_gs(dist_m, in_range)
    n = len(in_range)
    one_way = np.full((n, n), np.inf)
    for a, cand in enumerate(in_range):
        if cand:
            d = np.array([c[0] for c in cand])
            i = np.array([c[1] for c in cand])
            one_way[a] = np.min(d[:, None] + to_gs[i], axis=0)
    rtt = 2.0 * one_way * 1e9 / C_M_S
    np.fill_diagonal(rtt, np.nan)
    return rtt


def satgenpy_path_rtt_ns(net: SatgenpyNetwork, step: int, fstate: dict, a: int, b: int) -> float:
    """RTT of ground stations a -> b with satgenpy's own post-analysis code (print_routes_and_rtt:
    get_path there and back, compute_path_length_without_graph, over 299,792,458 m/s) [ns]."""
    from satgen.post_analysis.graph_tools import compute_path_length_without_graph, get_path

    src, dst = N_SATS + a, N_SATS + b
    there, back = get_path(src, dst, fstate), get_path(dst, src, fstate)
    if there is None or back is None:
        return math.inf
    t_ns = step * STEP_NS
    args = (net.epoch, t_ns, net.satellites, net.ground_stations, net.list_isls)
    length = compute_path_length_without_graph(
        there, *args, MAX_GSL_LENGTH_M, MAX_ISL_LENGTH_M
    ) + compute_path_length_without_graph(back, *args, MAX_GSL_LENGTH_M, MAX_ISL_LENGTH_M)
    return length * 1000000000.0 / 299792458.0


def run_satgenpy(
    steps: Sequence[int], folder: Path, *, check_pairs: int = N_RTT_CHECK_PAIRS
) -> tuple[SatgenpyNetwork, dict[int, SatgenpyStep], float]:
    """Generate satgenpy's inputs in ``folder``, then compute and time each step in ``steps``.

    Returns the network, the steps' results and the largest difference between the RTT matrix
    and satgenpy's path-following RTT over ``check_pairs`` pairs at the first step [ns].
    """
    gds = importlib.import_module("satgen.dynamic_state.generate_dynamic_state")
    net = satgenpy_network(folder)
    state_dir = net.folder / f"dynamic_state_{STEP_NS // 1_000_000}ms_for_{N_STEPS // 10}s"
    state_dir.mkdir(exist_ok=True)
    out: dict[int, SatgenpyStep] = {}
    prev_output = None
    for step in steps:
        box: dict[str, Any] = {}
        with _capture_satgenpy(box):
            t0 = time.perf_counter()
            prev_output = gds.generate_dynamic_state_at(
                str(state_dir),
                net.epoch,
                step * STEP_NS,
                net.satellites,
                net.ground_stations,
                net.list_isls,
                net.list_gsl_interfaces_info,
                MAX_GSL_LENGTH_M,
                MAX_ISL_LENGTH_M,
                ALGORITHM,
                prev_output,
                False,
            )
            seconds = time.perf_counter() - t0
        graph = box["graph"]
        in_range = [list(c) for c in box["in_range"]]
        dist_m = np.asarray(box["dist_m"], dtype=np.float64)
        isl_m: dict[tuple[int, int], float] = {}
        for u, v, w in graph.edges(data="weight"):
            isl_m[(u, v)] = isl_m[(v, u)] = float(w)
        out[step] = SatgenpyStep(
            step=step,
            seconds=seconds,
            fstate={k: int(v[0]) for k, v in prev_output["fstate"].items()},
            dist_m=dist_m,
            isl_m=isl_m,
            in_range=in_range,
            rtt_ns=rtt_matrix_ns(dist_m, in_range),
        )
    check = 0.0
    if steps and check_pairs > 0:
        first = out[steps[0]]
        n_gs = len(net.ground_stations)
        iu, ju = np.triu_indices(n_gs, k=1)
        pick = np.random.default_rng(0).choice(iu.size, min(check_pairs, iu.size), replace=False)
        for p in pick:
            a, b = int(iu[p]), int(ju[p])
            ref = satgenpy_path_rtt_ns(net, first.step, first.fstate, a, b)
            mine = first.rtt_ns[a, b]
            if math.isinf(ref) or math.isinf(mine):
                diff = 0.0 if math.isinf(ref) and math.isinf(mine) else math.inf
            else:
                diff = abs(ref - mine)
            check = max(check, diff)
    return net, out, check


def satgenpy_steps(
    steps: Sequence[int],
) -> tuple[float, dict[int, tuple[dict[tuple[int, int], int], NDArray[np.float64]]]]:
    """satgenpy's forwarding state and RTT matrix at ``steps`` of W1, timed.

    Returns
    -------
    seconds_per_step : float
        Mean wall time of satgenpy's per-step computation.
    results : dict
        ``{step: (fstate, rtt_ns)}``: ``fstate[(node, dst_node)]`` is the next hop (-1 when
        unreachable; nodes numbered satellites first, then ground stations), ``rtt_ns[a, b]`` the
        RTT between ground stations a and b [ns] (inf when unreachable, nan when a == b).
    """
    with tempfile.TemporaryDirectory(prefix="bench-hypatia-") as tmp:
        _net, res, _check = run_satgenpy(steps, Path(tmp), check_pairs=0)
    per_step = sum(r.seconds for r in res.values()) / max(len(res), 1)
    return per_step, {k: (r.fstate, r.rtt_ns) for k, r in res.items()}


# --- starmesh --------------------------------------------------------------------------------


def run_starmesh(out: Path) -> tuple[Any, float]:
    """Run all steps of W1 with forwarding state into ``out``; returns the plan and wall time."""
    from starmesh.scenario import load_scenario, parse_scenario
    from starmesh.plan import build_plan
from starmesh.runner import run_plan

    t0 = time.perf_counter()
    data = load_scenario(SCENARIO).model_dump(mode="json", exclude_none=True)
    data["routing"]["forwarding_state"] = True
    plan = build_plan(parse_scenario(data))
    run_plan(plan, out, report=False)
    return plan, time.perf_counter() - t0


def _step_of(t_s: NDArray[np.float64]) -> NDArray[np.int64]:
    return np.rint(np.asarray(t_s) * 1e9 / STEP_NS).astype(np.int64)


def starmesh_next_hops(
    run_dir: Path, steps: Sequence[int], n_sats: int, n_gs: int, mode: str = "isl"
) -> dict[int, NDArray[np.int32]]:
    """Forwarding state of ``steps`` rebuilt from the run's deltas: ``nh[node, g]`` is the next
    hop of node towards ground station g (node ``n_sats + g``); -1 unreachable, -2 no entry."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tab = pq.read_table(
        run_dir / "fstate.parquet", columns=["t_s", "mode", "node", "dst", "next_hop"]
    )
    tab = tab.filter(pc.equal(tab["mode"], mode))
    step = _step_of(tab["t_s"].to_numpy())
    node = tab["node"].to_numpy().astype(np.int64)
    dst = tab["dst"].to_numpy().astype(np.int64) - n_sats
    nh = tab["next_hop"].to_numpy().astype(np.int32)
    if dst.size and (dst.min() < 0 or dst.max() >= n_gs):
        raise ValueError("fstate.parquet has destinations that are not ground stations")
    key = node * n_gs + dst
    order = np.lexsort((step, key))
    key, step, nh = key[order], step[order], nh[order]
    out: dict[int, NDArray[np.int32]] = {}
    for k in steps:
        sel = step <= k
        kk, vv = key[sel], nh[sel]
        last = np.ones(kk.size, bool)
        last[:-1] = kk[1:] != kk[:-1]
        state = np.full((n_sats + n_gs) * n_gs, -2, np.int32)
        state[kk[last]] = vv[last]
        out[k] = state.reshape(n_sats + n_gs, n_gs)
    return out


def starmesh_rtt_ns(
    run_dir: Path, steps: Sequence[int], names: Sequence[str], mode: str = "isl"
) -> dict[int, NDArray[np.float64]]:
    """RTT matrix [ns] of ``steps`` from the run's ``rtt.parquet`` (inf: unreachable, nan: no
    row), symmetrised."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tab = pq.read_table(run_dir / "rtt.parquet", columns=["t_s", "mode", "src", "dst", "rtt_ms"])
    step = _step_of(tab["t_s"].to_numpy())
    keep = np.isin(step, np.asarray(steps)) & pc.equal(tab["mode"], mode).to_numpy(
        zero_copy_only=False
    )
    tab = tab.filter(keep)
    step = step[keep]
    idx = {n: i for i, n in enumerate(names)}
    a = np.array([idx[n] for n in tab["src"].to_pylist()], np.int64)
    b = np.array([idx[n] for n in tab["dst"].to_pylist()], np.int64)
    rtt = tab["rtt_ms"].to_numpy(zero_copy_only=False).astype(np.float64) * 1e6
    rtt = np.where(np.isnan(rtt), np.inf, rtt)
    out: dict[int, NDArray[np.float64]] = {}
    n = len(names)
    for k in steps:
        m = np.full((n, n), np.nan)
        s = step == k
        m[a[s], b[s]] = rtt[s]
        m[b[s], a[s]] = rtt[s]
        out[k] = m
    return out


def starmesh_gsl_sets(plan: Any, steps: Sequence[int]) -> dict[int, list[set[int]]]:
    """Satellites in starmesh's GSL range of each ground station at ``steps`` (its own
    propagation and GSL rule, as in a run)."""
    from starmesh.propagation import Propagator
    from starmesh.topology import find_gsls

    prop = Propagator(plan.constellation, plan.grid.epoch, dut1_s=plan.dut1_s)
    sites = np.flatnonzero(plan.problem.gsl_site)
    out: dict[int, list[set[int]]] = {}
    for k in steps:
        r, ok = prop.positions_ecef_m(plan.grid.t_s(k, k + 1))
        gsl = find_gsls(r, ok, plan.sites.r_ecef_m[sites], plan.sites.up[sites], plan.gsl_rule)
        vis: list[set[int]] = [set() for _ in range(len(plan.sites))]
        for g, s in zip(sites[gsl.site_idx], gsl.sat_idx, strict=True):
            vis[int(g)].add(int(s))
        out[k] = vis
    return out


# --- Comparison ------------------------------------------------------------------------------


class _Lengths:
    """Path lengths in satgenpy's distances (Floyd-Warshall matrix, ISL lengths) with a given
    GSL range table ``gsl[g] = {satellite: length}``."""

    def __init__(self, sg: SatgenpyStep, gsl: list[dict[int, float]]) -> None:
        self.sg = sg
        self.gsl = gsl
        self.in_range = [[(d, s) for s, d in sorted(t.items())] for t in gsl]
        self.to_gs = dist_sat_to_gs(sg.dist_m, self.in_range)

    def via(self, node: int, g: int, nh: int) -> float:
        """Length from ``node`` to ground station g when forwarding to ``nh`` first [m]."""
        if nh < 0:
            return math.inf
        if node < N_SATS:
            if nh == N_SATS + g:
                return self.gsl[g].get(node, math.inf)
            w = self.sg.isl_m.get((node, nh))
            return math.inf if w is None else w + float(self.to_gs[nh, g])
        d = self.gsl[node - N_SATS].get(nh) if nh < N_SATS else None
        return math.inf if d is None else d + float(self.to_gs[nh, g])

    def best(self, node: int, g: int) -> float:
        """Shortest length from ``node`` to ground station g [m]."""
        if node < N_SATS:
            return float(self.to_gs[node, g])
        cand = self.gsl[node - N_SATS]
        return min((d + float(self.to_gs[s, g]) for s, d in cand.items()), default=math.inf)


@dataclass
class StepComparison:
    """Counts of one compared step."""

    step: int
    next_hops: int = 0
    next_hop_ties: int = 0
    next_hop_gsl_threshold: int = 0
    next_hop_route_choice: int = 0
    next_hop_missing: int = 0
    next_hop_invalid: int = 0
    max_route_choice_gap_m: float = 0.0
    rtt_pairs: int = 0
    rtt_same_path: int = 0
    rtt_gsl_threshold: int = 0
    rtt_route_choice: int = 0
    max_rtt_diff_us: float = 0.0
    max_rtt_same_path_diff_us: float = 0.0
    rtt_rel_diff: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    gs_with_other_gsl_set: int = 0
    max_gsl_threshold_margin_m: float = 0.0


def compare_step(
    net: SatgenpyNetwork,
    sg: SatgenpyStep,
    sm_next: NDArray[np.int32],
    sm_rtt_ns: NDArray[np.float64],
    sm_vis: list[set[int]],
) -> StepComparison:
    """Compare one step of starmesh with satgenpy (see the module docstring for the rules)."""
    from astropy import units as u
    from satgen.distance_tools import distance_m_ground_station_to_satellite

    n_gs = len(net.ground_stations)
    res = StepComparison(step=sg.step)
    gsl_sg = [{s: d for d, s in cand} for cand in sg.in_range]
    time_str = str(net.epoch + (sg.step * STEP_NS) * u.ns)
    epoch_str = str(net.epoch)
    gsl_cf: list[dict[int, float]] = []
    differs = np.zeros(n_gs, bool)
    for g in range(n_gs):
        mine, theirs = sm_vis[g], set(gsl_sg[g])
        table = {}
        for s in mine | theirs:
            d = gsl_sg[g].get(s)
            if d is None:
                d = distance_m_ground_station_to_satellite(
                    net.ground_stations[g], net.satellites[s], epoch_str, time_str
                )
            if s not in theirs or s not in mine:
                res.max_gsl_threshold_margin_m = max(
                    res.max_gsl_threshold_margin_m, abs(d - MAX_GSL_LENGTH_M)
                )
            if s in mine:
                table[s] = d
        gsl_cf.append(table)
        differs[g] = mine != theirs
    res.gs_with_other_gsl_set = int(differs.sum())
    ref = _Lengths(sg, gsl_sg)
    cf = _Lengths(sg, gsl_cf) if differs.any() else ref

    # Next hops.
    sg_next = np.full(sm_next.shape, -2, np.int32)
    for (node, dst), nh in sg.fstate.items():
        sg_next[node, dst - N_SATS] = nh
    has = sg_next != -2
    res.next_hops = int(has.sum())
    for node, g in zip(*np.nonzero(has & (sm_next != sg_next)), strict=True):
        node, g = int(node), int(g)
        x, y = int(sm_next[node, g]), int(sg_next[node, g])
        if x == -2:
            res.next_hop_missing += 1
            continue
        lx, ly = ref.via(node, g, x), ref.via(node, g, y)
        if math.isfinite(lx) and math.isfinite(ly) and abs(lx - ly) <= TIE_M:
            res.next_hop_ties += 1
            continue
        involved = differs[g] or (node >= N_SATS and differs[node - N_SATS])
        cx, cbest = cf.via(node, g, x), cf.best(node, g)
        explained = (math.isinf(cx) and math.isinf(cbest)) or cx <= cbest + TIE_M
        if involved and explained:
            res.next_hop_gsl_threshold += 1
        elif math.isinf(cx):
            res.next_hop_invalid += 1
        else:
            res.next_hop_route_choice += 1
            res.max_route_choice_gap_m = max(res.max_route_choice_gap_m, cx - cbest)

    # RTTs.
    rtt_cf = rtt_matrix_ns(sg.dist_m, cf.in_range) if cf is not ref else sg.rtt_ns
    iu, ju = np.triu_indices(n_gs, k=1)
    sm, sg_rtt, cf_rtt = sm_rtt_ns[iu, ju], sg.rtt_ns[iu, ju], rtt_cf[iu, ju]
    if np.isnan(sm).any():
        raise ValueError(f"rtt.parquet lacks {int(np.isnan(sm).sum())} pairs at step {sg.step}")
    res.rtt_pairs = int(iu.size)
    both = np.isfinite(sm) & np.isfinite(sg_rtt)
    diff = np.where(both, sm - sg_rtt, 0.0)
    res.max_rtt_diff_us = float(np.abs(diff).max(initial=0.0)) / 1e3
    res.rtt_rel_diff = diff[both] / sg_rtt[both]
    bad = ~((both & (np.abs(diff) <= RTT_TOL_NS)) | (np.isinf(sm) & np.isinf(sg_rtt)))
    cf_ok = (np.isinf(sm) & np.isinf(cf_rtt)) | (
        np.isfinite(sm) & np.isfinite(cf_rtt) & (np.abs(sm - cf_rtt) <= RTT_TOL_NS)
    )
    for p in np.flatnonzero(bad):
        a, b = int(iu[p]), int(ju[p])
        paths = [(_path(sm_next, u, v), _path(sg_next, u, v)) for u, v in ((a, b), (b, a))]
        same = all(x is not None and x == y for x, y in paths)
        if same:
            res.rtt_same_path += 1
            res.max_rtt_same_path_diff_us = max(
                res.max_rtt_same_path_diff_us, abs(float(diff[p])) / 1e3
            )
        elif (differs[a] or differs[b]) and cf_ok[p]:
            res.rtt_gsl_threshold += 1
        else:
            res.rtt_route_choice += 1
    return res


def _path(nh: NDArray[np.int32], a: int, b: int) -> list[int] | None:
    """Nodes from ground station a to ground station b along a forwarding state (None: none)."""
    node, dst, path = N_SATS + a, N_SATS + b, [N_SATS + a]
    while node != dst:
        node = int(nh[node, b])
        if node < 0 or len(path) > nh.shape[0]:
            return None
        path.append(node)
    return path


# --- Main ------------------------------------------------------------------------------------


def _num(x: float | None, digits: int) -> float | str | None:
    """``x`` to ``digits`` significant digits for JSON; "inf" when infinite."""
    if x is None:
        return None
    return float(f"{x:.{digits}g}") if math.isfinite(x) else "inf"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--satgenpy-steps",
        type=int,
        default=3,
        metavar="K",
        help="satgenpy steps to time and compare, spread evenly over the run (default 3)",
    )
    ap.add_argument(
        "--skip-satgenpy", action="store_true", help="run starmesh only (ratio is null)"
    )
    args = ap.parse_args()
    if args.satgenpy_steps < 1:
        ap.error("--satgenpy-steps must be at least 1")
    if not args.skip_satgenpy and importlib.util.find_spec("satgen") is None:
        print(INSTALL_HINT, file=sys.stderr)
        sys.exit(2)
    steps = [] if args.skip_satgenpy else spread_steps(args.satgenpy_steps)
    result: dict[str, Any] = {"bench": "hypatia", "workload": WORKLOAD, "steps": N_STEPS}
    with tempfile.TemporaryDirectory(prefix="bench-hypatia-") as tmp:
        run_dir = Path(tmp) / "starmesh-run"
        plan, full_wall = run_starmesh(run_dir)
        if plan.grid.n_steps != N_STEPS or plan.constellation.n_sats != N_SATS:
            raise SystemExit(
                f"{SCENARIO} is not W1: {plan.grid.n_steps} steps, "
                f"{plan.constellation.n_sats} satellites"
            )
        rss_starmesh = peak_rss_mb()
        sg_per_step = None
        comparisons: list[StepComparison] = []
        check_ns = None
        if steps:
            try:
                importlib.import_module("satgen")
            except ImportError as exc:
                print(f"{INSTALL_HINT} ({exc})", file=sys.stderr)
                sys.exit(2)
            names = plan.sites.names
            n_gs = len(names)
            sm_next = starmesh_next_hops(run_dir, steps, N_SATS, n_gs)
            sm_rtt = starmesh_rtt_ns(run_dir, steps, names)
            sm_vis = starmesh_gsl_sets(plan, steps)
            net, sg, check_ns = run_satgenpy(steps, Path(tmp) / "satgenpy")
            if [g["name"] for g in net.ground_stations] != list(names):
                raise SystemExit("starmesh's and satgenpy's ground stations differ")
            sg_per_step = sum(s.seconds for s in sg.values()) / len(sg)
            for k in steps:
                comparisons.append(compare_step(net, sg[k], sm_next[k], sm_rtt[k], sm_vis[k]))
    sm_per_step = full_wall / N_STEPS
    result.update(
        {
            "satgenpy_steps": len(steps),
            "satgenpy_step_ids": steps or None,
            "satgenpy_s_per_step": round(sg_per_step, 3) if sg_per_step else None,
            "starmesh_s_per_step": round(sm_per_step, 5),
            "ratio": round(sg_per_step / sm_per_step, 1) if sg_per_step else None,
            "full_wall_s": round(full_wall, 2),
            "peak_rss_mb": rss_starmesh,
        }
    )
    if comparisons:
        c = comparisons
        nh_bad = sum(
            x.next_hop_gsl_threshold
            + x.next_hop_route_choice
            + x.next_hop_missing
            + x.next_hop_invalid
            for x in c
        )
        rtt_bad = sum(x.rtt_same_path + x.rtt_gsl_threshold + x.rtt_route_choice for x in c)
        rel = np.concatenate([x.rtt_rel_diff for x in c])
        result.update(
            {
                "mismatches": nh_bad + rtt_bad,
                "ties": sum(x.next_hop_ties for x in c),
                "max_rtt_diff_us": round(max(x.max_rtt_diff_us for x in c), 4),
                "compared": {
                    "next_hops": sum(x.next_hops for x in c),
                    "rtt_pairs": sum(x.rtt_pairs for x in c),
                },
                "mismatch_categories": {
                    "next_hop": {
                        "gsl_threshold": sum(x.next_hop_gsl_threshold for x in c),
                        "route_choice": sum(x.next_hop_route_choice for x in c),
                        "missing": sum(x.next_hop_missing for x in c),
                        "invalid": sum(x.next_hop_invalid for x in c),
                    },
                    "rtt": {
                        "same_path": sum(x.rtt_same_path for x in c),
                        "gsl_threshold": sum(x.rtt_gsl_threshold for x in c),
                        "route_choice": sum(x.rtt_route_choice for x in c),
                    },
                },
                "max_rtt_same_path_diff_us": round(max(x.max_rtt_same_path_diff_us for x in c), 4),
                "median_rtt_diff_ppm": round(float(np.median(rel)) * 1e6, 3) if rel.size else None,
                "max_route_choice_gap_m": round(max(x.max_route_choice_gap_m for x in c), 3),
                "gsl_set_differences": sum(x.gs_with_other_gsl_set for x in c),
                "max_gsl_threshold_margin_m": round(
                    max(x.max_gsl_threshold_margin_m for x in c), 1
                ),
                "rtt_definition_check_ns": _num(check_ns, 3),
                "peak_rss_mb_end": peak_rss_mb(),
            }
        )
    else:
        result.update({"mismatches": None, "ties": None, "max_rtt_diff_us": None})
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
