"""Kill a run at seeded moments (SIGKILL), resume it, and get the bytes of an uninterrupted run.

The kill is triggered from the run's own progress: the test watches the manifests of the
baseline and variant folders and kills the process group when a seeded number of chunks is
complete (or, for some seeds, once every chunk is complete but before the comparison and the
reports are written). Each case asserts that the kill landed inside the run (0 < chunks done <
total, or in the closing phase), that no process of the run is left alive afterwards (worker
processes are found by a token in their environment), and that ``starmesh run --resume``
gives every file byte for byte as an uninterrupted run wrote it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import tomli_w

SCENARIO = {
    "name": "faults",
    "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 120.0, "step_s": 1.0},
    "constellation": {"preset": "starlink-gen1"},
    "ground": {
        "terminals": ["Kyiv", "Kharkiv", "Lviv", "Odesa", "Dnipro"],
        "gateways": ["Wola-Krobowska", "Kaunas"],
        "pops": ["Warsaw"],
    },
    "links": {"gateway_pop": "all"},
    "routing": {"modes": ["isl", "bent-pipe"], "forwarding_state": True},
    "run": {"chunk_steps": 6},
    "traffic": {"model": "access", "terminals_per_site": 100, "down_mbps": 25.0, "up_mbps": 3.0},
    "variants": [
        {"name": "no-kaunas", "set": {"disruptions.failures": [{"gateways": ["Kaunas"]}]}},
        {"name": "mask-40", "set": {"links.min_elevation_deg": 40.0}},
    ],
}
N_FOLDERS = 3
N_CHUNKS = N_FOLDERS * 20  # 120 steps in chunks of 6, baseline and two variants


def _starmesh(*args: str, token: str | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if token is not None:
        env["STARMESH_FAULT_TOKEN"] = token
    return subprocess.Popen(
        [sys.executable, "-m", "starmesh.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _chunks_done(out: Path) -> int:
    done = 0
    for m in [out / "manifest.json", *out.glob("variants/*/manifest.json")]:
        try:
            done += len(json.loads(m.read_text())["done"])
        except (OSError, ValueError, KeyError):
            pass
    return done


def _alive(token: str) -> list[int]:
    """Pids of processes started by the run (their environment carries the token)."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if token.encode() in (p / "environ").read_bytes():
                pids.append(int(p.name))
        except OSError:
            continue
    return pids


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "report.html"
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("faults")
    scenario = root / "faults.toml"
    scenario.write_text(tomli_w.dumps(SCENARIO))
    proc = _starmesh("run", str(scenario), "--out", str(root / "ref"), "-q", "--workers", "2")
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    return scenario, root / "ref"


def _kill_and_resume(reference: tuple[Path, Path], tmp_path: Path, seed: int) -> None:
    scenario, ref = reference
    rng = np.random.default_rng(seed)
    # Most seeds kill between chunks; one in four kills in the closing phase (all chunks done,
    # comparison and reports not yet written).
    closing = rng.random() < 0.25
    target = N_CHUNKS if closing else int(rng.integers(1, N_CHUNKS))
    out = tmp_path / "run"
    token = uuid.uuid4().hex
    proc = _starmesh("run", str(scenario), "--out", str(out), "-q", "--workers", "2", token=token)
    deadline = time.monotonic() + 300
    while _chunks_done(out) < target:
        if proc.poll() is not None:
            proc.communicate()
            pytest.fail(f"the run ended before {target} chunks were done")
        assert time.monotonic() < deadline
        time.sleep(0.005)
    if closing and (out / "comparison.json").exists():
        pytest.skip("the run finished its closing phase before the kill")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    done = _chunks_done(out)
    if closing:
        assert done == N_CHUNKS
    else:
        assert 0 < done < N_CHUNKS, done
    # Nothing of the killed run survives it (its worker processes exit with their parent).
    for _ in range(100):
        if not _alive(token):
            break
        time.sleep(0.05)
    assert _alive(token) == []
    again = _starmesh("run", "--resume", str(out), "-q")
    _o, err = again.communicate(timeout=600)
    assert again.returncode == 0, err.decode()
    got, want = _files(out), _files(ref)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], name
    assert (out / "report.html").is_file()


@pytest.mark.parametrize("seed", [0, 3])
def test_kill_at_a_seeded_moment_then_resume_gives_the_same_bytes(reference, tmp_path, seed):
    _kill_and_resume(reference, tmp_path, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, *range(4, 22)])
def test_kill_at_twenty_more_moments(reference, tmp_path, seed):
    _kill_and_resume(reference, tmp_path, seed)


def test_a_second_writer_gets_one_line_naming_the_first(reference, tmp_path):
    """Two processes on one run folder: the second (a resume, or --force over the live run)
    is refused in one line that names the holder's pid, and the first finishes untouched."""
    scenario, ref = reference
    out = tmp_path / "run"
    first = _starmesh("run", str(scenario), "--out", str(out), "-q", "--workers", "2")
    deadline = time.monotonic() + 300
    while _chunks_done(out) < 2:
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    for args in (
        ["run", "--resume", str(out), "-q"],
        ["run", str(scenario), "--out", str(out), "--force", "-q"],
    ):
        second = _starmesh(*args)
        _o, err = second.communicate(timeout=120)
        lines = [ln for ln in err.decode().splitlines() if ln.strip()]
        assert second.returncode == 1, err.decode()
        assert len(lines) == 1 and f"pid {first.pid}" in lines[0], lines
    _o, err = first.communicate(timeout=600)
    assert first.returncode == 0, err.decode()
    got, want = _files(out), _files(ref)
    assert got == want


def test_a_changed_tle_file_refuses_the_resume(tmp_path):
    from starmesh.elements import load_starlink_snapshot

    recs = load_starlink_snapshot().records[:40]
    tle = tmp_path / "sats.tle"
    tle.write_text("".join(f"{r.name}\n{r.line1}\n{r.line2}\n" for r in recs))
    sc = dict(
        SCENARIO,
        constellation={"tle_file": str(tle), "operational_filter": False},
        variants=[],
        traffic=None,
    )
    sc = {k: v for k, v in sc.items() if v not in ([], None)}
    sc["time"] = {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 30.0, "step_s": 1.0}
    sc["links"] = {"isl": "nearest-k", "gateway_pop": "all"}
    file = tmp_path / "s.toml"
    file.write_text(tomli_w.dumps(sc))
    out = tmp_path / "run"
    proc = _starmesh("run", str(file), "--out", str(out), "-q")
    _o, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert "tle_sha256" in (out / "scenario.toml").read_text()
    # Damage a chunk so that a resume has work to do, then change the TLE file.
    (out / "rtt.parquet" / "part-000000.parquet").write_bytes(b"x")
    tle.write_text("".join(f"{r.name}\n{r.line1}\n{r.line2}\n" for r in recs[:39]))
    proc = _starmesh("run", "--resume", str(out), "-q")
    _o, err = proc.communicate(timeout=300)
    lines = [ln for ln in err.decode().splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1, lines
    assert "changed since this run started" in lines[0]
