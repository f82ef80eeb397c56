#!/usr/bin/env python
"""Mutation testing of starmesh's physics, routing, capacity and traffic modules with mutmut.

Not run in CI (a module takes minutes to an hour). For each module named on the command line
(default: all of ``MODULES``) this copies ``src``, ``tests`` and ``pyproject.toml`` into a
scratch folder, writes a ``setup.cfg`` telling mutmut to mutate only that module and to run only
the fast tests that exercise it, runs ``mutmut run`` there with one worker, and prints one JSON
line per module: mutants killed, survived, timed out, with no covering test, and the score
``killed / (total - no tests)``. Surviving mutants are listed with ``mutmut show NAME`` run in
the scratch folder, which is kept (``--keep``) for that.

Usage::

    nice -n 19 python scripts/mutation.py frames propagation --out mutation.jsonl
    nice -n 19 python scripts/mutation.py --list            # modules and their tests
    # after adding tests: run only the survivors (and changed functions) again
    nice -n 19 python scripts/mutation.py frames --keep /tmp/mut --rerun-survivors

Install with ``pip install -e '.[mutation]'`` (mutmut 3).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Module -> the fast tests that validate it (kept small: mutmut runs them once per mutant).
MODULES: dict[str, list[str]] = {
    "frames": ["tests/test_frames.py"],
    "propagation": ["tests/test_propagation.py"],
    "topology": ["tests/test_topology.py", "tests/test_pyephem_compat.py"],
    "routing/graph": ["tests/test_routing.py"],
    "routing/kernels": ["tests/test_sssp.py"],
    "gsl_kernel": ["tests/test_topology.py"],
    "grid_kernel": [
        "tests/test_realset.py::test_nearest_in_plane_is_the_nearest_of_its_four_candidates"
    ],
    "capacity": ["tests/test_capacity.py"],
    "linkbudget": ["tests/test_linkbudget.py"],
    "traffic": ["tests/test_traffic.py"],
    "disruptions/failures": ["tests/test_disruptions.py"],
    "disruptions/jamming": ["tests/test_disruptions.py"],
    "disruptions/geofence": ["tests/test_disruptions.py"],
}


#: Modules compiled by numba: mutmut skips decorated functions, so the scratch copy has its
#: ``@nb.njit(...)`` lines removed and runs with ``NUMBA_DISABLE_JIT=1`` (plain Python, same
#: results; ``nb.prange`` is ``range`` then). The repository's source is not touched.
NUMBA_MODULES = {"routing/kernels", "gsl_kernel", "grid_kernel"}
_NJIT_LINE = re.compile(r"^@nb\.njit\(.*\)\n", re.M)


def _setup_cfg(module: str, tests: list[str]) -> str:
    selection = "\n    ".join(tests)
    return (
        "[mutmut]\n"
        "source_paths = src\n"
        f"only_mutate = src/starmesh/{module}.py\n"
        f"pytest_add_cli_args_test_selection =\n    {selection}\n"
        "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -x\n    -q\n"
    )


def _counts(workdir: Path) -> dict[str, int]:
    """Statuses from ``mutmut results --all true`` (one ``name: status`` line per mutant)."""
    out = subprocess.run(
        ["mutmut", "results", "--all", "true"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    counts: dict[str, int] = {}
    for line in out.splitlines():
        if ":" not in line:
            continue
        status = line.rsplit(":", 1)[1].strip()
        counts[status] = counts.get(status, 0) + 1
    return counts


def _survivors(workdir: Path, statuses: tuple[str, ...] = ("survived",)) -> list[str]:
    """Mutants of the given statuses (``mutmut results --all true``)."""
    out = subprocess.run(
        ["mutmut", "results", "--all", "true"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [
        ln.rsplit(":", 1)[0].strip()
        for ln in out.splitlines()
        if ":" in ln and ln.rsplit(":", 1)[1].strip() in statuses
    ]


def _mutmut_run(
    work: Path, env: dict[str, str], names: list[str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mutmut", "run", "--max-children", "1", *names],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def run_module(module: str, keep: Path | None, rerun_survivors: bool = False) -> dict[str, object]:
    tests = MODULES[module]
    work = Path(tempfile.mkdtemp(prefix=f"mutmut-{module.replace('/', '-')}-"))
    if keep is not None:
        work = keep / module
    survivors: list[str] = []
    if rerun_survivors:
        # Reuse the kept folder: mutants whose function is unchanged keep their verdict,
        # except the survivors, which are run again against the committed tests.
        if not (work / "mutants").is_dir():
            raise SystemExit(f"--rerun-survivors: no earlier run in {work}; run without it first")
        # Mutants without a covering test are run again too: new tests may reach them.
        survivors = _survivors(work, ("survived", "no tests"))
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    # The committed tree (git archive HEAD), not the work tree: the run measures what is
    # committed, and edits made while it runs cannot leak into it.
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD", "src", "tests", "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    # mutmut re-mutates a file only if it is newer than its mutated copy; git archive stamps
    # files with the commit time, so mark the module as changed (per-function hashes then
    # decide which earlier verdicts stand).
    src_file = work / "src" / "starmesh" / f"{module}.py"
    if module in NUMBA_MODULES:
        src_file.write_text(_NJIT_LINE.sub("", src_file.read_text()))
    src_file.touch()
    # mutmut reads [tool.mutmut] from pyproject.toml before setup.cfg; ours has none, so the
    # per-module setup.cfg below is what it uses.
    (work / "setup.cfg").write_text(_setup_cfg(module, tests))
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # mutmut puts its mutated copy of src first on the path
    if module in NUMBA_MODULES:
        env["NUMBA_DISABLE_JIT"] = "1"
    proc = _mutmut_run(work, env, [])
    log = proc.stdout + proc.stderr
    if survivors:
        # Named mutants are run again even when they have a verdict.
        proc = _mutmut_run(work, env, survivors)
        log += proc.stdout + proc.stderr
    (work / "mutmut-run.log").write_text(log)
    counts = _counts(work)
    total = sum(counts.values())
    killed = counts.get("killed", 0) + counts.get("caught by type check", 0)
    no_tests = counts.get("no tests", 0)
    tested = total - no_tests
    result: dict[str, object] = {
        "module": module,
        "tests": tests,
        "total": total,
        "killed": killed,
        "survived": counts.get("survived", 0),
        "timeout": counts.get("timeout", 0),
        "no_tests": no_tests,
        "other": {
            k: v
            for k, v in counts.items()
            if k not in {"killed", "survived", "timeout", "no tests"}
        },
        "score": round(killed / tested, 4) if tested else None,
        "survivors": _survivors(work),
        "workdir": str(work),
        "returncode": proc.returncode,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"default: {' '.join(MODULES)}")
    parser.add_argument("--out", type=Path, help="append one JSON line per module here")
    parser.add_argument(
        "--keep", type=Path, help="scratch folder to keep (one subfolder per module)"
    )
    parser.add_argument("--list", action="store_true", help="print modules and tests, run nothing")
    parser.add_argument(
        "--rerun-survivors",
        action="store_true",
        help="reuse the --keep folder of an earlier run: test new or changed mutants and run "
        "the survivors again against the committed tests",
    )
    args = parser.parse_args(argv)
    if args.rerun_survivors and args.keep is None:
        parser.error("--rerun-survivors needs --keep (the folder of the earlier run)")
    if args.list:
        for m, t in MODULES.items():
            print(m, " ".join(t))
        return 0
    modules = args.modules or list(MODULES)
    bad = [m for m in modules if m not in MODULES]
    if bad:
        parser.error(f"unknown module {bad[0]!r}; choose from {', '.join(MODULES)}")
    for m in modules:
        res = run_module(m, args.keep, args.rerun_survivors)
        line = json.dumps(res)
        print(line, flush=True)
        if args.out:
            with args.out.open("a") as fh:
                fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
