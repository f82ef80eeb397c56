"""Benchmark: starmesh against Hypatia's satgenpy on Hypatia's paper workload, one JSON line.

Workload W1 (Kassing et al., IMC 2020): Starlink's 550 km shell in satgenpy's layout (72 x 22,
53 deg, 15.19 rev/day, eccentricity 1e-7, PHASE_DIFF, TLE epoch 2000-01-01), the 100 most
populous cities, +Grid ISLs, algorithm ``free_one_only_over_isls``, 200 s at 100 ms (2,000
steps). starmesh's built-in scenario ``hypatia-starlink-550`` is this workload
(``earth_model = "pyephem"``).

Usage::

    python benchmarks/bench_hypatia.py [--window-s W] [--skip-satgenpy]

starmesh runs all 2,000 steps with ``[routing] forwarding_state = true`` in this process
(``full_wall_s``: plan, propagate, route, write the run folder), then ``export_hypatia`` writes
the run in Hypatia's format. satgenpy (``pip install -e ".[bench]"``) runs the same workload, its
own way (``satgenpy_window.py``: its input generators, ``help_dynamic_state`` with both of its
threads, then ``print_routes_and_rtt`` for 8 pairs) on the consecutive window of the first
``W`` seconds (default 3 s = 30 steps). ``satgenpy_s_per_step`` is the wall time of
``help_dynamic_state`` over the window's steps (its two threads share one interpreter lock);
``ratio`` is that over starmesh's wall time per step of the full run.

Compared, from the files each tool wrote:

- every ``fstate_<t>.txt`` of the window, byte for byte (``fstate_files_identical``). Lines in
  one file only are sorted into categories: *shifted* (a next-hop change that satgenpy makes at
  the step before or after), *next_hop* (other next-hop differences), *interface* (same next
  hop, other interface numbers), *missing* / *extra* (an entry satgenpy has and starmesh lacks,
  or the reverse). ``mismatches`` is their sum.
- the static files (``tles.txt``, ``isls.txt``, ``ground_stations.txt``, ``description.txt``),
  byte for byte (``static_files_identical``).
- the paths of satgenpy's ``networkx_path_<a>_to_<b>.txt`` (each path at each change), against
  the paths followed through starmesh's exported forwarding state (``path_mismatches``).
- the RTTs of satgenpy's ``networkx_rtt_<a>_to_<b>.txt`` against starmesh's ``rtt.parquet``
  (``max_rtt_diff_ns``, and ``max_rtt_diff_ns_per_hop`` over the hops of the path there: the
  residual is libastro's float32 ranges, zero-mean noise that grows with the hops).

Floors (``floors`` in the JSON, and the exit status is 1 when one is missed): ``full_wall_s <=
30``, ``ratio >= 1000``, ``mismatches == 0``, ``path_mismatches == 0``, static files identical,
``max_rtt_diff_ns_per_hop <= 1`` (the tolerance of ``tests/test_hypatia_window.py``).
``peak_rss_mb`` is the process's peak after the starmesh run (before
satgenpy is imported); ``peak_rss_mb_end`` includes satgenpy.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import satgenpy_window as sgw
from bench_run import machine

SCENARIO = "hypatia-starlink-550"
WORKLOAD = f"W1 {SCENARIO}"
N_STEPS = 2000
STEP_NS = 100_000_000
N_SATS = sgw.N_SATS
STATIC_FILES = ["tles.txt", "isls.txt", "ground_stations.txt", "description.txt"]
INSTALL_HINT = 'satgenpy is not installed: pip install -e ".[bench]"'

FLOORS = {
    "full_wall_s_max": 30.0,
    "ratio_min": 1000.0,
    "mismatches_max": 0,
    "path_mismatches_max": 0,
    "max_rtt_diff_ns_per_hop_max": 1.0,
}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far [MB]."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_starmesh(out: Path) -> tuple[Any, float]:
    """Run all steps of W1 with forwarding state into ``out``; returns the plan and wall time."""
    from starmesh.plan import build_plan
    from starmesh.runner import run_plan
    from starmesh.scenario import load_scenario, parse_scenario

    t0 = time.perf_counter()
    data = load_scenario(SCENARIO).model_dump(mode="json", exclude_none=True)
    data["routing"]["forwarding_state"] = True
    plan = build_plan(parse_scenario(data))
    run_plan(plan, out, report=False)
    return plan, time.perf_counter() - t0


# --- Reading both tools' files ---------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _entries(lines: list[str]) -> dict[tuple[int, int], tuple[int, int, int]]:
    """``(node, dst) -> (next_hop, out interface, in interface)`` of an fstate file."""
    out = {}
    for line in lines:
        a, b, c, d, e = (int(x) for x in line.split(","))
        out[(a, b)] = (c, d, e)
    return out


def replay(dyn: Path, n_steps: int) -> list[dict[tuple[int, int], tuple[int, int, int]]]:
    """The full forwarding state at each step, from a folder of delta fstate files."""
    state: dict[tuple[int, int], tuple[int, int, int]] = {}
    out = []
    for k in range(n_steps):
        state.update(_entries(_lines(dyn / f"fstate_{k * STEP_NS}.txt")))
        out.append(dict(state))
    return out


def compare_fstate(sg_dyn: Path, sm_dyn: Path, n_steps: int) -> dict[str, Any]:
    """Byte comparison of every fstate file, with the differing entries in categories."""
    cats = {"shifted": 0, "next_hop": 0, "interface": 0, "missing": 0, "extra": 0}
    identical = 0
    entries = 0
    sg_states = replay(sg_dyn, n_steps)
    sm_states = replay(sm_dyn, n_steps)
    first_bad: list[str] = []  # the first few differing lines, for the record
    for k in range(n_steps):
        name = f"fstate_{k * STEP_NS}.txt"
        sg_b, sm_b = (sg_dyn / name).read_bytes(), (sm_dyn / name).read_bytes()
        entries += sg_b.count(b"\n")
        if sg_b == sm_b:
            identical += 1
            continue
        sg_e = _entries(sg_b.decode().splitlines())
        sm_e = _entries(sm_b.decode().splitlines())
        for key in sg_e.keys() | sm_e.keys():
            if sm_e.get(key) == sg_e.get(key):
                continue
            if len(first_bad) < 5:
                first_bad.append(
                    f"step {k} {key}: starmesh {sm_e.get(key)}, satgenpy {sg_e.get(key)}"
                )
            x, y = sm_states[k].get(key), sg_states[k].get(key)
            if x is None:
                cats["missing"] += 1
            elif y is None:
                cats["extra"] += 1
            elif x[0] != y[0]:
                near = {
                    sg_states[j].get(key, (None,))[0] for j in (k - 1, k + 1) if 0 <= j < n_steps
                }
                cats["shifted" if x[0] in near else "next_hop"] += 1
            elif x != y:
                cats["interface"] += 1
            else:
                # Same state, but the line is written at this step in one file only: the other
                # side of a change made one step earlier or later.
                cats["shifted"] += 1
    return {
        "fstate_files": n_steps,
        "fstate_files_identical": identical,
        "fstate_entries": entries,
        "categories": cats,
        "mismatches": sum(cats.values()),
        "first_mismatches": first_bad,
    }


def _path(state: dict[tuple[int, int], tuple[int, int, int]], a: int, b: int) -> str:
    path = [a]
    while path[-1] != b:
        nh = state.get((path[-1], b), (-1,))[0]
        if nh < 0 or len(path) > N_SATS:
            return "Unreachable"
        path.append(nh)
    return "-".join(map(str, path))


def compare_paths_rtts(
    sg_data: Path, sm_dyn: Path, run_dir: Path, names: tuple[str, ...], n_steps: int
) -> dict[str, Any]:
    """satgenpy's path and RTT files against starmesh's exported state and rtt.parquet."""
    import pyarrow.parquet as pq

    states = replay(sm_dyn, n_steps)
    tab = pq.read_table(
        run_dir / "rtt.parquet", columns=["t_s", "mode", "src", "dst", "rtt_ms", "hops"]
    )
    step = np.rint(tab["t_s"].to_numpy() * 1e9 / STEP_NS).astype(int)
    keep = step < n_steps
    src = np.array(tab["src"].to_pylist(), dtype=object)[keep]
    dst = np.array(tab["dst"].to_pylist(), dtype=object)[keep]
    rtt = tab["rtt_ms"].to_numpy(zero_copy_only=False)[keep]
    hops = tab["hops"].to_numpy(zero_copy_only=False)[keep]
    index = {
        (s, d, int(k)): (float(x), float(h))
        for s, d, k, x, h in zip(src, dst, step[keep], rtt, hops, strict=True)
    }
    path_bad = 0
    changes = 0
    worst = worst_per_hop = 0.0
    n_rtt = 0
    pairs = []
    for f in sorted(sg_data.glob("networkx_rtt_*.txt")):
        a, b = (int(x) for x in f.stem.removeprefix("networkx_rtt_").split("_to_"))
        pairs.append([a, b])
        theirs = [ln.split(",") for ln in _lines(sg_data / f"networkx_path_{a}_to_{b}.txt")]
        ours, current = [], None
        for k in range(n_steps):
            p = _path(states[k], a, b)
            if p != current:
                ours.append([str(k * STEP_NS), p])
                current = p
        changes += len(theirs)
        path_bad += len({tuple(x) for x in ours} ^ {tuple(x) for x in theirs})
        na, nb = names[a - N_SATS], names[b - N_SATS]
        for k, (_t, v) in enumerate(ln.split(",") for ln in _lines(f)):
            ours_ms, n_hops = index.get((na, nb, k), index.get((nb, na, k), (np.nan, np.nan)))
            diff = abs(ours_ms * 1e6 - float(v))
            worst = max(worst, diff)
            worst_per_hop = max(worst_per_hop, diff / n_hops)
            n_rtt += 1
    return {
        "rtt_pairs": pairs,
        "path_changes": changes,
        "path_mismatches": path_bad,
        "rtt_values": n_rtt,
        "max_rtt_diff_ns": round(worst, 3),
        "max_rtt_diff_ns_per_hop": round(worst_per_hop, 3),
    }


# --- Main ------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--window-s",
        type=int,
        default=3,
        metavar="W",
        help="satgenpy runs the first W seconds (10 steps each; default 3)",
    )
    ap.add_argument(
        "--skip-satgenpy", action="store_true", help="run starmesh only (ratio is null)"
    )
    args = ap.parse_args()
    if args.window_s < 3:
        ap.error("--window-s must be at least 3 (30 steps)")
    if not args.skip_satgenpy and importlib.util.find_spec("satgen") is None:
        print(INSTALL_HINT, file=sys.stderr)
        sys.exit(2)
    n_win = args.window_s * 1000 // sgw.STEP_MS
    result: dict[str, Any] = {"bench": "hypatia", "workload": WORKLOAD, "steps": N_STEPS}
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-hypatia-") as tmp:
        from starmesh.io.hypatia import export_hypatia

        run_dir = Path(tmp) / "starmesh-run"
        plan, full_wall = run_starmesh(run_dir)
        if plan.grid.n_steps != N_STEPS or plan.constellation.n_sats != N_SATS:
            raise SystemExit(f"{SCENARIO} is not W1")
        rss_starmesh = peak_rss_mb()
        sm_per_step = full_wall / N_STEPS
        result.update(
            {
                "starmesh_s_per_step": round(sm_per_step, 5),
                "full_wall_s": round(full_wall, 2),
                "peak_rss_mb": rss_starmesh,
            }
        )
        checks: dict[str, bool] = {"full_wall_s": full_wall <= FLOORS["full_wall_s_max"]}
        if not args.skip_satgenpy:
            export = Path(tmp) / "starmesh-export"
            export_hypatia(run_dir, export)
            sg_base = Path(tmp) / "satgenpy"
            times = sgw.run_window(sg_base, args.window_s, threads=2)
            sg_per_step = times["dynamic_state_s"] / n_win
            sg_net = sg_base / sgw.NAME
            fst = compare_fstate(
                sgw.dynamic_state_dir(sg_net, args.window_s),
                export / "dynamic_state_100ms_for_200s",
                n_win,
            )
            static = {
                n: (export / n).read_bytes() == (sg_net / n).read_bytes() for n in STATIC_FILES
            }
            pr = compare_paths_rtts(
                sg_base / "rtt" / "data",
                export / "dynamic_state_100ms_for_200s",
                run_dir,
                plan.sites.names,
                n_win,
            )
            ratio = sg_per_step / sm_per_step
            result.update(
                {
                    "satgenpy_window_steps": n_win,
                    "satgenpy_threads": 2,
                    "satgenpy_s_per_step": round(sg_per_step, 3),
                    "satgenpy_rtt_s": round(times["rtt_s"], 1),
                    "ratio": round(ratio, 1),
                    **fst,
                    "static_files_identical": static,
                    **pr,
                    "peak_rss_mb_end": peak_rss_mb(),
                }
            )
            checks.update(
                {
                    "ratio": ratio >= FLOORS["ratio_min"],
                    "mismatches": fst["mismatches"] <= FLOORS["mismatches_max"],
                    "path_mismatches": pr["path_mismatches"] <= FLOORS["path_mismatches_max"],
                    "static_files": all(static.values()),
                    "max_rtt_diff_ns_per_hop": pr["max_rtt_diff_ns_per_hop"]
                    <= FLOORS["max_rtt_diff_ns_per_hop_max"],
                }
            )
        else:
            result.update({"ratio": None, "mismatches": None})
    result["floors"] = FLOORS
    result["floors_met"] = checks
    ok = all(checks.values())
    result["machine"] = machine()
    print(json.dumps(result))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
