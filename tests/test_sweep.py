"""Sweeps: variants of a grid of scenario fields x seeds, on local workers or Dask."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from starmesh.cli import app
from starmesh.errors import ScenarioError
from starmesh.scenario import expand_sweep, parse_scenario

runner = CliRunner()

SWEEP = """
name = "sw"
[time]
start_utc = "2026-05-13T00:00:00Z"
duration_s = 30.0
step_s = 1.0
[[constellation.shells]]
planes = 12
sats_per_plane = 12
phasing = 1
altitude_km = 1100.0
inclination_deg = 60.0
[ground]
terminals = ["Kyiv", "Lviv", "Madrid"]
[routing]
pairs = "all-terminal-pairs"
[run]
chunk_steps = 10
[sweep]
seeds = [0, 1]
[sweep.grid]
"links.min_elevation_deg" = [10.0, 30.0]
"links.isl" = ["plus-grid", "none"]
"""


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_expand_is_the_grid_times_seeds():
    import tomllib

    variants = expand_sweep(parse_scenario(tomllib.loads(SWEEP)))
    assert len(variants) == 8
    params = [p for _v, p, _s in variants]
    assert params[0] == {"links.min_elevation_deg": 10.0, "links.isl": "plus-grid", "seed": 0}
    assert {(p["links.min_elevation_deg"], p["links.isl"], p["seed"]) for p in params} == {
        (e, i, s) for e in (10.0, 30.0) for i in ("plus-grid", "none") for s in (0, 1)
    }
    v = variants[5][2]
    assert v.links.isl == params[5]["links.isl"] and v.seed == params[5]["seed"]
    assert v.sweep is None and v.name == "sw-v005"


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    out = tmp / "out"
    res = runner.invoke(app, ["sweep", str(_write(tmp, SWEEP)), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    return tmp, out


def test_sweep_writes_variants_and_one_dataset(local_sweep):
    _tmp, out = local_sweep
    assert sorted(p.name for p in (out / "variants").iterdir()) == [f"v{k:03d}" for k in range(8)]
    table = pq.read_table(out / "sweep.parquet").to_pandas()
    assert {
        "variant",
        "links.min_elevation_deg",
        "links.isl",
        "seed",
        "src",
        "dst",
        "rtt_median_ms",
        "availability",
    } <= set(table.columns)
    assert len(table) == 8 * 3  # variants x pairs
    # The laser mesh contains the bent-pipe graph: availability never lower with ISLs.
    key = ["links.min_elevation_deg", "seed", "src", "dst"]
    isl = table[table["links.isl"] == "plus-grid"].set_index(key)["availability"]
    none = table[table["links.isl"] == "none"].set_index(key)["availability"]
    assert (isl >= none.loc[isl.index]).all()
    assert (isl > 0).all()
    summary = json.loads((out / "sweep_summary.json").read_text())
    assert len(summary["variants"]) == 8
    # A higher mask can only lose links: availability never rises.
    by = {
        (r["links.isl"], r["seed"], r["links.min_elevation_deg"]): r["availability_mean"]
        for r in summary["variants"]
    }
    for (isl, seed, el), avail in by.items():
        if el == 30.0:
            assert avail <= by[(isl, seed, 10.0)] + 1e-12


def test_dask_local_cluster_sweep_is_byte_identical(local_sweep):
    pytest.importorskip("dask.distributed")
    tmp, out = local_sweep
    out2 = tmp / "out-dask"
    res = runner.invoke(
        app,
        [
            "sweep",
            str(tmp / "s.toml"),
            "--out",
            str(out2),
            "-q",
            "--dask",
            "local",
            "--workers",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out2) for p in out2.rglob("*") if p.is_file())
    for rel in files:
        if rel.name == "sweep.toml":
            continue  # same scenario, but the file records no executor either way
        assert (out / rel).read_bytes() == (out2 / rel).read_bytes(), rel


@pytest.mark.parametrize(
    ("edit", "field", "fix"),
    [
        (
            lambda t: t.replace(
                'seeds = [0, 1]\n[sweep.grid]\n"links.min_elevation_deg" = '
                '[10.0, 30.0]\n"links.isl" = ["plus-grid", "none"]\n',
                "",
            ),
            "sweep",
            "grid is empty",
        ),
        (
            lambda t: t.replace('"links.isl"', '"links.isll"'),
            "sweep.grid['links.isll']",
            "unknown parameter",
        ),
        (
            lambda t: t.replace("[10.0, 30.0]", "[10.0, 95.0]"),
            "sweep (v004",
            "min_elevation_deg: must be < 90",
        ),
        (
            lambda t: t.replace('"links.isl" = ["plus-grid", "none"]', '"links.isl" = []'),
            "sweep",
            "has no values",
        ),
    ],
)
def test_bad_sweeps_one_line_nothing_written(tmp_path, edit, field, fix):
    out = tmp_path / "out"
    res = runner.invoke(app, ["sweep", str(_write(tmp_path, edit(SWEEP))), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert res.output.count("\n") == 1, res.output
    assert field in res.output and fix in res.output, res.output
    assert not out.exists()


def test_sweep_needs_a_sweep_table(tmp_path):
    text = SWEEP[: SWEEP.index("[sweep]")]
    res = runner.invoke(app, ["sweep", str(_write(tmp_path, text)), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "no [sweep] table" in res.output


def test_expand_rejects_nested_non_model_path():
    import tomllib

    data = tomllib.loads(SWEEP)
    data["sweep"]["grid"] = {"links.isl.x": [1]}
    with pytest.raises(ScenarioError, match="has no sub-fields"):
        expand_sweep(parse_scenario(data))


def test_sweep_killed_then_resumed_equals_uninterrupted(local_sweep):
    import signal
    import subprocess
    import sys
    import time

    tmp, out = local_sweep
    out2 = tmp / "out-killed"
    cmd = [
        sys.executable,
        "-m",
        "starmesh.cli",
        "sweep",
        str(tmp / "s.toml"),
        "--out",
        str(out2),
        "-q",
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(6.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if (out2 / "sweep.toml").exists():
        res = runner.invoke(app, ["sweep", "--resume", str(out2), "-q"])
    else:  # killed before the sweep folder existed
        res = runner.invoke(
            app, ["sweep", str(tmp / "s.toml"), "--out", str(out2), "-q", "--force"]
        )
    assert res.exit_code == 0, res.output
    want = pq.read_table(out / "sweep.parquet").to_pandas()
    got = pq.read_table(out2 / "sweep.parquet").to_pandas()
    assert got.equals(want)
    for vid in (p.name for p in (out / "variants").iterdir()):
        a = pq.read_table(out / "variants" / vid / "rtt.parquet").to_pandas()
        b = pq.read_table(out2 / "variants" / vid / "rtt.parquet").to_pandas()
        assert a.equals(b), vid
