"""Resumes of damaged or foreign folders, and runs on other executors, give identical results.

Kills at moments taken from the run's own progress are in ``test_faults.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from starmesh.cli import app
from starmesh.plan import build_plan
from starmesh.runner import run_plan
from starmesh.scenario import parse_scenario

runner = CliRunner()

SCENARIO = """
name = "resume"
[time]
start_utc = "2026-05-13T00:00:00Z"
duration_s = 240.0
step_s = 1.0
[constellation]
preset = "starlink-gen1"
[ground]
terminals = ["Kyiv", "Kharkiv", "Lviv", "Odesa"]
gateways = ["Wola-Krobowska", "Kaunas"]
pops = ["Warsaw"]
[routing]
modes = ["isl", "bent-pipe"]
[run]
chunk_steps = 12
workers = 1
"""


def _contents(out: Path) -> tuple[object, object, list]:
    rtt = pq.read_table(out / "rtt.parquet").to_pandas()
    summary = json.loads((out / "summary.json").read_text())
    return rtt, summary["pairs"], sorted(p.name for p in (out / "rtt.parquet").iterdir())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    scenario = tmp / "s.toml"
    scenario.write_text(SCENARIO)
    res = runner.invoke(app, ["run", str(scenario), "--out", str(tmp / "run"), "-q"])
    assert res.exit_code == 0, res.output
    return scenario, _contents(tmp / "run")


def test_resume_recomputes_a_damaged_chunk(reference, tmp_path):
    scenario, (rtt, pairs, _parts) = reference
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(scenario), "--out", str(out), "-q"])
    assert res.exit_code == 0
    # A finished run has no per-chunk data left; damage a part and drop the summary to
    # mimic an interrupted run with a corrupted file.
    victim = out / "rtt.parquet" / "part-000003.parquet"
    victim.write_bytes(victim.read_bytes()[:100])
    (out / "summary.json").unlink()
    res = runner.invoke(app, ["run", "--resume", str(out), "-q"])
    # The statistics of the intact chunks are gone with .partial/: resume must say so and
    # recompute, never report a partial summary.
    assert res.exit_code == 0, res.output
    got_rtt, got_pairs, _ = _contents(out)
    assert got_rtt.equals(rtt) and got_pairs == pairs


def test_rerun_into_a_non_empty_folder_refuses(reference, tmp_path):
    scenario, _ = reference
    out = tmp_path / "run"
    out.mkdir()
    (out / "x").write_text("keep")
    res = runner.invoke(app, ["run", str(scenario), "--out", str(out), "-q"])
    assert res.exit_code == 1
    assert "--force" in res.output and (out / "x").read_text() == "keep"


def test_resume_of_another_scenario_refuses(reference, tmp_path):
    scenario, _ = reference
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(scenario), "--out", str(out), "-q"]).exit_code == 0
    toml = (out / "scenario.toml").read_text().replace("chunk_steps = 12", "chunk_steps = 13")
    (out / "scenario.toml").write_text(toml)
    res = runner.invoke(app, ["run", "--resume", str(out), "-q"])
    assert res.exit_code == 1 and "cannot resume" in res.output


def test_resume_of_a_folder_that_is_no_run(tmp_path):
    res = runner.invoke(app, ["run", "--resume", str(tmp_path / "nothing"), "-q"])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and "no run folder there" in res.output


def test_dask_local_cluster_equals_local_run(reference, tmp_path):
    pytest.importorskip("dask.distributed")
    scenario, (rtt, pairs, parts) = reference
    out = tmp_path / "run"
    res = runner.invoke(
        app, ["run", str(scenario), "--out", str(out), "-q", "--dask", "local", "--workers", "2"]
    )
    assert res.exit_code == 0, res.output
    got_rtt, got_pairs, got_parts = _contents(out)
    assert got_parts == parts and got_pairs == pairs and got_rtt.equals(rtt)
    # Byte for byte, file by file.
    ref_dir = Path(str(reference[0]).replace("s.toml", "run"))
    for name in parts:
        assert (out / "rtt.parquet" / name).read_bytes() == (
            ref_dir / "rtt.parquet" / name
        ).read_bytes()


def test_unreachable_scheduler_is_one_line_and_writes_nothing(reference, tmp_path):
    pytest.importorskip("dask.distributed")
    scenario, _ = reference
    out = tmp_path / "run"
    res = runner.invoke(
        app, ["run", str(scenario), "--out", str(out), "-q", "--dask", "tcp://127.0.0.1:9"]
    )
    assert res.exit_code == 1
    assert "cannot reach the Dask scheduler" in res.output and res.output.count("\n") == 1
    assert not out.exists()


def test_bad_dask_value(reference, tmp_path):
    scenario, _ = reference
    res = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "r"), "--dask", "x"])
    assert res.exit_code == 1 and "--dask must be" in res.output


def test_processes_executor_equals_serial(reference, tmp_path):
    _scenario, (rtt, pairs, _parts) = reference
    import tomllib

    data = tomllib.loads(SCENARIO)
    data["run"]["workers"] = 2
    plan = build_plan(parse_scenario(data))
    summary = run_plan(plan, tmp_path / "run", executor="processes").to_dict()
    assert summary["pairs"] == pairs
    assert pq.read_table(tmp_path / "run" / "rtt.parquet").to_pandas().equals(rtt)


def test_no_stray_processes_env():
    # The subprocess tests rely on `python -m starmesh.cli`.
    assert os.path.exists(Path(sys.executable))


def test_script_without_main_guard_fails_instead_of_hanging(tmp_path):
    """Spawned workers re-import the calling script; without an ``if __name__ ==
    "__main__":`` guard each worker dies starting. The run must end with one clear error (the
    parent once blocked forever writing megabytes of plans into a dead worker's pipe)."""
    script = tmp_path / "script.py"
    script.write_text(
        "import tomllib, starmesh\n"
        f"data = tomllib.loads({SCENARIO!r})\n"
        "data['run']['workers'] = 2\n"
        f"starmesh.run(data, out={str(tmp_path / 'run')!r}, executor='processes',"
        " report=False)\n"
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode != 0
    assert 'if __name__ == "__main__":' in proc.stderr
    assert "a worker process died" in proc.stderr
    assert time.perf_counter() - t0 < 300


def test_run_workers_reach_the_plan():
    """run.workers survives the plan's resolution (which drops it from the record), so a
    plan run through run_plan uses that many processes."""
    import tomllib

    from starmesh.executors import ProcessExecutor, SerialExecutor, make_executor

    data = tomllib.loads(SCENARIO)
    for n, kind in ((1, SerialExecutor), (2, ProcessExecutor)):
        data["run"]["workers"] = n
        plan = build_plan(parse_scenario(data))
        assert plan.workers == n
        assert "workers" not in plan.resolved["run"]
        ex = make_executor("auto", plan.workers, n_units=plan.n_chunks)
        assert isinstance(ex, kind)
        ex.close()


def test_plan_files_of_killed_runs_are_removed(tmp_path, monkeypatch):
    """A run killed with SIGKILL cannot delete its workers' plan file; the next process run
    removes the folders of processes that are gone, and only those."""
    import tempfile

    from starmesh.executors import _PLANS_PREFIX, _remove_orphaned_plan_files

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = tmp_path / f"{_PLANS_PREFIX}{dead.pid}-abc"
    alive = tmp_path / f"{_PLANS_PREFIX}{os.getppid()}-def"
    other = tmp_path / "starmesh-plansXYZ"
    for d in (gone, alive, other):
        d.mkdir()
        (d / "plans.pickle").write_bytes(b"x")
    _remove_orphaned_plan_files()
    assert not gone.exists() and alive.exists() and other.exists()
