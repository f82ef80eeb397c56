"""Run Hypatia's satgenpy on a consecutive window of the Starlink-550 workload, its own way.

This reproduces what satgenpy's paper script ``paper/satellite_networks_state/
main_starlink_550.py`` (snkas/hypatia, commit 0ac531c) does for the shell
``starlink_550_isls_plus_grid_ground_stations_top_100_algorithm_free_one_only_over_isls``, with a
shorter duration: ``main_helper.MainHelper.calculate`` generates the inputs with satgenpy's own
functions (``extend_ground_stations``, ``generate_tles_from_scratch_manual``,
``generate_plus_grid_isls``, ``generate_description``, ``generate_simple_gsl_interfaces_info``)
and calls ``help_dynamic_state`` with its threads. The RTTs and paths of a few pairs then come
from satgenpy's own post-analysis, ``print_routes_and_rtt`` (``networkx_rtt_<a>_to_<b>.txt``,
``networkx_path_<a>_to_<b>.txt``).

Used by ``bench_hypatia.py`` and, once, to make ``tests/data/hypatia/satgenpy-starlink550-3s.
tar.xz`` (``python benchmarks/satgenpy_window.py --out DIR --duration-s 3 --tar FILE``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import tarfile
import time
from pathlib import Path

NAME = "starlink_550_isls_plus_grid_ground_stations_top_100_algorithm_free_one_only_over_isls"
NICE_NAME = "Starlink-550"
EARTH_RADIUS_M = 6378135.0  # WGS72, as in satgenpy's main_helper.py
ALTITUDE_M = 550000
N_ORBS = 72
N_SATS_PER_ORB = 22
N_SATS = N_ORBS * N_SATS_PER_ORB
INCLINATION_DEG = 53
ECCENTRICITY = 0.0000001
ARG_OF_PERIGEE_DEG = 0.0
PHASE_DIFF = True
MEAN_MOTION_REV_PER_DAY = 15.19
SATELLITE_CONE_RADIUS_M = 940700
MAX_GSL_LENGTH_M = math.sqrt(SATELLITE_CONE_RADIUS_M**2 + ALTITUDE_M**2)
MAX_ISL_LENGTH_M = 2 * math.sqrt((EARTH_RADIUS_M + ALTITUDE_M) ** 2 - (EARTH_RADIUS_M + 80000) ** 2)
ALGORITHM = "algorithm_free_one_only_over_isls"
STEP_MS = 100

#: Ground-station pairs (indices into the 100 cities) whose RTT and path satgenpy's
#: ``print_routes_and_rtt`` writes: long and short, east-west and north-south, including the
#: paper's Manila - Dalian style pairs.
RTT_PAIRS: tuple[tuple[int, int], ...] = (
    (0, 1),
    (0, 99),
    (3, 62),
    (10, 45),
    (17, 84),
    (25, 71),
    (32, 56),
    (40, 93),
)


def cities_file() -> Path:
    """starmesh's copy of Hypatia's 100 cities (satgenpy's ``basic`` ground station format)."""
    import starmesh

    return Path(starmesh.__file__).parent / "data" / "hypatia-cities-top100.txt"


def make_inputs(base: Path) -> Path:
    """satgenpy's input files of the shell in ``base / NAME`` (as main_helper.calculate)."""
    import satgen

    d = base / NAME
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
    return d


def dynamic_state_dir(network_dir: Path, duration_s: int) -> Path:
    """satgenpy's output folder of ``help_dynamic_state``."""
    return network_dir / f"dynamic_state_{STEP_MS}ms_for_{duration_s}s"


def run_window(
    base: Path, duration_s: int, threads: int = 2, pairs: tuple[tuple[int, int], ...] = RTT_PAIRS
) -> dict[str, float]:
    """Run satgenpy for ``duration_s`` seconds at 100 ms into ``base``.

    Returns wall times [s]: ``dynamic_state_s`` (``help_dynamic_state`` with ``threads``
    threads) and ``rtt_s`` (``print_routes_and_rtt`` for ``pairs``). Output: ``base / NAME``
    (inputs and ``dynamic_state_100ms_for_<d>s/fstate_<t>.txt``) and ``base / "rtt" / "data"``.
    """
    import satgen
    from satgen.post_analysis import print_routes_and_rtt

    d = make_inputs(base)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        satgen.help_dynamic_state(
            str(base),
            threads,
            NAME,
            STEP_MS,
            duration_s,
            MAX_GSL_LENGTH_M,
            MAX_ISL_LENGTH_M,
            ALGORITHM,
            False,
        )
    t1 = time.perf_counter()
    for a, b in pairs:
        # print_routes_and_rtt writes its data files, then plots them with gnuplot; the plot is
        # not needed (and gnuplot may be missing), so its failure after the data is ignored.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
            print_routes_and_rtt(
                str(base / "rtt"), str(d), STEP_MS, duration_s, N_SATS + a, N_SATS + b, ""
            )
        if not (base / "rtt" / "data" / f"networkx_rtt_{N_SATS + a}_to_{N_SATS + b}.txt").exists():
            raise RuntimeError(f"satgenpy wrote no RTT file for pair {a}-{b}")
    t2 = time.perf_counter()
    return {"dynamic_state_s": t1 - t0, "rtt_s": t2 - t1}


def pack(base: Path, duration_s: int, tar_path: Path) -> None:
    """Store satgenpy's fstate files and RTT/path files of a window as tar.xz (sorted, no
    timestamps, so the archive is reproducible)."""
    d = base / NAME
    ds = dynamic_state_dir(d, duration_s)
    files = sorted(ds.glob("fstate_*.txt"), key=lambda p: int(p.stem.split("_")[1]))
    files += sorted((base / "rtt" / "data").glob("networkx_*.txt"))
    files += [d / n for n in ("tles.txt", "isls.txt", "ground_stations.txt", "description.txt")]
    with tarfile.open(tar_path, "w:xz") as tar:
        for f in files:
            info = tar.gettarinfo(str(f), arcname=str(f.relative_to(base)))
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with f.open("rb") as fh:
                tar.addfile(info, fh)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for satgenpy's files")
    ap.add_argument("--duration-s", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tar", type=Path, help="also pack the window into this .tar.xz")
    args = ap.parse_args()
    times = run_window(args.out, args.duration_s, args.threads)
    print(times)
    if args.tar:
        pack(args.out, args.duration_s, args.tar)


if __name__ == "__main__":
    main()
