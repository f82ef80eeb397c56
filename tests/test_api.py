"""The library API: in-memory runs, run folders read back, the CLI and the library alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import tomli_w
from typer.testing import CliRunner

import starmesh
from starmesh.cli import app
from starmesh.errors import ScenarioError

SMALL = {
    "name": "api-small",
    "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 20.0, "step_s": 2.0},
    "service": {"model": "geometric"},
    "constellation": {"preset": "starlink-550"},
    "ground": {
        "terminals": ["Kyiv", "Kharkiv", "Lviv"],
        "gateways": ["Wola-Krobowska", "Kaunas"],
        "pops": ["Warsaw"],
    },
    "links": {"gateway_pop": "all"},
    "routing": {"modes": ["isl", "bent-pipe"]},
    "run": {"chunk_steps": 4},
    "traffic": {"model": "access", "terminals_per_site": 200, "down_mbps": 25.0, "up_mbps": 3.0},
    "variants": [
        {"name": "no-kaunas", "set": {"disruptions.failures": [{"gateways": ["Kaunas"]}]}}
    ],
}


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory) -> tuple[Path, starmesh.Results]:
    out = tmp_path_factory.mktemp("api") / "run"
    res = starmesh.run(SMALL, out=out, report=False)
    return out, res


@pytest.fixture(scope="module")
def in_memory() -> starmesh.Results:
    return starmesh.run(SMALL)


def test_in_memory_results_equal_the_run_folders(on_disk, in_memory):
    _out, disk = on_disk
    for name in ("rtt", "hops", "src_sat", "dst_sat", "path_changed", "rate", "demand"):
        a, b = in_memory.dataset[name], disk.dataset[name]
        assert a.dims == b.dims
        np.testing.assert_array_equal(a.values, b.values, err_msg=name)
    assert in_memory.summary == disk.summary.__class__(
        **{**disk.summary.__dict__, "scenario_sha256": None}
    )
    assert list(in_memory.variants) == list(disk.variants) == ["no-kaunas"]
    np.testing.assert_array_equal(
        in_memory.variants["no-kaunas"].rtt.values, disk.variants["no-kaunas"].rtt.values
    )
    assert in_memory.comparison == disk.comparison


def test_labelled_results_have_the_documented_dims_and_units(in_memory):
    rtt = in_memory.rtt
    assert rtt.dims == ("mode", "time", "pair")
    assert rtt.attrs["units"] == "ms"
    assert list(rtt["mode"].values) == ["isl", "bent-pipe"]
    assert rtt["time"].dtype == np.dtype("datetime64[ns]")
    assert str(rtt["time"].values[0]) == "2026-05-13T00:00:00.000000000"
    np.testing.assert_allclose(rtt["t_s"].values, np.arange(0.0, 20.0, 2.0))
    assert set(rtt["dst"].values) == {"Warsaw"}
    # Every pair is served in this small scenario; RTT is at least the great-circle bound.
    assert np.isfinite(rtt.values).all()
    assert float(rtt.min()) > 2.0
    df = in_memory.summary.to_dataframe()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 2 * 3
    assert in_memory.rate.attrs["units"] == "Mbit/s"


def test_open_run_reads_arrays_only_when_asked(on_disk, tmp_path):
    out, _res = on_disk
    lazy = starmesh.open_run(out)
    assert lazy._dataset is None
    assert lazy.summary.scenario == "api-small"
    _ = lazy.rtt
    assert lazy._dataset is not None
    assert "(in memory)" not in repr(lazy)


def test_cli_and_library_write_the_same_files(on_disk, tmp_path):
    out, _res = on_disk
    scenario = tmp_path / "small.toml"
    scenario.write_text(tomli_w.dumps(SMALL))
    cli_out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["run", str(scenario), "--out", str(cli_out), "--quiet"])
    assert res.exit_code == 0, res.output
    lib = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    cli = sorted(p.relative_to(cli_out) for p in cli_out.rglob("*") if p.is_file())
    lib = [p for p in lib if p.name != "report.html"]
    cli = [p for p in cli if p.name != "report.html"]
    assert lib == cli
    for rel in lib:
        assert (out / rel).read_bytes() == (cli_out / rel).read_bytes(), rel


def test_running_a_run_folders_own_scenario_gives_the_same_bytes(on_disk, tmp_path):
    out, _res = on_disk
    again = tmp_path / "again"
    starmesh.run(out / "scenario.toml", out=again, report=False)
    for p in sorted((out / "rtt.parquet").iterdir()):
        assert p.read_bytes() == (again / "rtt.parquet" / p.name).read_bytes(), p.name
    for name in ("scenario.toml", "sites.parquet", "isls.parquet"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_a_variants_run_records_its_variants(on_disk):
    out, res = on_disk
    assert (out / "variants.toml").is_file()
    assert (out / "variants" / "no-kaunas" / "summary.json").is_file()
    assert {r["variant"] for r in res.comparison} == {"baseline", "no-kaunas"}


def test_open_sweep_gives_every_variant(tmp_path):
    data = {k: v for k, v in SMALL.items() if k not in ("variants", "traffic")}
    data["sweep"] = {"grid": {"links.min_elevation_deg": [25.0, 40.0]}}
    from starmesh.runner import run_sweep
    from starmesh.scenario import parse_scenario

    run_sweep(parse_scenario(data), tmp_path / "sw")
    runs = starmesh.open_sweep(tmp_path / "sw")
    assert list(runs) == ["v000", "v001"]
    # A higher elevation mask never shortens the best path.
    a, b = runs["v000"].rtt, runs["v001"].rtt
    assert float((b.fillna(np.inf) >= a - 1e-9).mean()) == 1.0
    table = pq.read_table(tmp_path / "sw" / "sweep.parquet").to_pandas()
    assert set(table["links.min_elevation_deg"]) == {25.0, 40.0}


def test_overrides_and_bad_overrides():
    res = starmesh.run("hypatia-starlink-550", duration_s=0.2)
    assert res.rtt.sizes["time"] == 2
    with pytest.raises(ScenarioError, match="not an override"):
        starmesh.run("hypatia-starlink-550", duration=1.0)


def test_import_starmesh_is_light():
    code = (
        "import sys, starmesh; "
        "heavy = [m for m in ('numba', 'xarray', 'plotly', 'dask', 'pandas', "
        "'starmesh.io.hypatia', 'pydantic') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
