"""``starmesh coverage`` and ``starmesh.run_coverage``: files, disruptions, bad input, and a
terminal's availability in a run against its cell's coverage."""

from __future__ import annotations

import json
from pathlib import Path

import h3
import numpy as np
import pyarrow.parquet as pq
import pytest
from pyproj import Geod
from typer.testing import CliRunner

from starmesh import run_coverage
from starmesh.cli import app
from starmesh.coverage import STATISTICS, coverage, slot_shift_s
from starmesh.plan import build_plan
from starmesh.regions import CellGrid
from starmesh.runner import run_plan
from starmesh.scenario import parse_scenario

runner = CliRunner()

SMALL = """
name = "cov"
[time]
start_utc = "2026-05-13T00:00:00Z"
duration_s = 900.0
step_s = 30.0
[constellation]
preset = "starlink-550"
[ground]
terminals = ["Kyiv"]
gateways = ["Wola-Krobowska"]
pops = ["Warsaw"]
"""

BBOX = "22,44,41,53"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text, encoding="utf-8")
    return p


def _invoke(tmp_path, text, *args):
    return runner.invoke(app, ["coverage", str(_write(tmp_path, text)), *args])


def test_cli_writes_the_files_and_agrees_with_the_library(tmp_path):
    out = tmp_path / "cov"
    res = _invoke(tmp_path, SMALL, "--region", BBOX, "--res", "3", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "frac_ge1_mean" in res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "coverage.geojson",
        "coverage.parquet",
        "coverage_summary.json",
        "report.html",
    ]
    table = pq.read_table(out / "coverage.parquet").to_pandas()
    geo = json.loads((out / "coverage.geojson").read_text())
    summary = json.loads((out / "coverage_summary.json").read_text())
    n_cells = len(geo["features"])
    assert len(table) == n_cells * len(STATISTICS)
    assert summary["h3_res"] == 3 and summary["step_s"] == 30.0 and summary["n_steps"] == 30
    # The library on the scenario's constellation and grid gives the same numbers.
    plan = build_plan(parse_scenario(_toml(SMALL)))
    direct = coverage(
        plan.constellation,
        plan.grid,
        region=[22, 44, 41, 53],
        res=3,
        min_elevation_deg=25.0,
        slot_shift_s=slot_shift_s(plan.grid.epoch),
    )
    frac = table[table.statistic == "frac_ge1"].value.to_numpy()
    np.testing.assert_array_equal(frac, direct.statistics()["frac_ge1"])
    assert summary["coverage"] == pytest.approx(direct.summary())
    html = (out / "report.html").read_text()
    assert '"type":"choropleth"' in html and "PlotlyGeoAssets" in html
    # Same inputs, same bytes.
    out2 = tmp_path / "cov2"
    res = _invoke(tmp_path, SMALL, "--region", BBOX, "--res", "3", "--out", str(out2), "-q")
    assert res.exit_code == 0, res.output
    for name in ("coverage.parquet", "coverage.geojson", "coverage_summary.json"):
        assert (out / name).read_bytes() == (out2 / name).read_bytes()


def _toml(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def test_failed_satellites_and_denied_areas_are_applied(tmp_path):
    base = run_coverage(_toml(SMALL), region=[22, 44, 41, 53], res=3)
    assert base.statistics()["frac_ge1"].min() == 1.0
    dead = _toml(SMALL + "[[disruptions.failures]]\nsatellite_fraction = 1.0\n")
    none = run_coverage(dead, region=[22, 44, 41, 53], res=3)
    assert none.statistics()["frac_ge1"].max() == 0.0
    fenced = _toml(
        SMALL
        + "[[disruptions.denied_areas]]\nname = 'east'\n"
        + "circle = {lat_deg = 48.0, lon_deg = 36.0, radius_km = 300.0}\n"
    )
    res = run_coverage(fenced, region=[22, 44, 41, 53], res=3)
    # Distances of the cell centres from the circle's centre on the WGS84 ellipsoid (pyproj).
    _az, _baz, d_m = Geod(ellps="WGS84").inv(
        np.full(res.grid.n_cells, 36.0), np.full(res.grid.n_cells, 48.0),
        res.grid.lon_deg, res.grid.lat_deg,
    )  # fmt: skip
    f = res.statistics()["frac_ge1"]
    inside, outside = d_m < 295e3, d_m > 305e3
    assert inside.sum() >= 5 and outside.sum() >= 5
    assert (f[inside] == 0).all()
    np.testing.assert_array_equal(f[outside], base.statistics()["frac_ge1"][outside])


def test_jammers_take_service_from_the_cells_they_reach(tmp_path):
    """A Ku downlink jammer on a 30 m mast (as in the ukraine scenario) silences terminals at
    cell centres within its radio horizon (a run's terminal 5 km away gets no service either),
    and leaves cells beyond its horizon exactly as they were."""
    region = [32.2, 46.3, 33.2, 47.0]
    base = run_coverage(_toml(SMALL), region=region, res=6)
    jam = _toml(
        SMALL
        + "[[disruptions.jammers]]\nname = 'j'\nlat_deg = 46.60\nlon_deg = 32.66\n"
        + "alt_m = 30.0\neirp_dbw = 50.0\n"
    )
    res = run_coverage(jam, region=region, res=6)
    _az, _baz, d_m = Geod(ellps="WGS84").inv(
        np.full(res.grid.n_cells, 32.66), np.full(res.grid.n_cells, 46.60),
        res.grid.lon_deg, res.grid.lat_deg,
    )  # fmt: skip
    f0, f1 = base.statistics()["frac_ge1"], res.statistics()["frac_ge1"]
    near, far = d_m < 8e3, d_m > 40e3
    assert near.sum() >= 3 and far.sum() >= 10
    assert f0[near].min() == 1.0
    assert f1[near].max() == 0.0
    np.testing.assert_array_equal(f1[far], f0[far])


BAD = {
    "empty region": (["--region", "10,10,10.01,10.01", "--res", "2"], "coverage.region", "no H3"),
    "unknown country": (["--region", "Atlantis"], "coverage.region", "Atlantis"),
    "resolution too fine": (["--res", "9"], "coverage.res", "use res <="),
    "bad resolution": (["--res", "16"], "coverage.res", "15"),
    "bad k": (["--k", "0"], "coverage.k", "1"),
    "missing geojson": (["--region", "nowhere.geojson"], "coverage.region", "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_line_nothing_written(tmp_path, monkeypatch, case):
    args, field, fix = BAD[case]
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    res = _invoke(tmp_path, SMALL, *args, "--out", str(out))
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: ") and field in lines[0] and fix in lines[0], lines[0]
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_force_rules_of_run_folders(tmp_path):
    out = tmp_path / "cov"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    res = _invoke(tmp_path, SMALL, "--region", BBOX, "--res", "2", "--out", str(out), "-q")
    assert res.exit_code == 1 and "not empty" in res.output
    res = _invoke(tmp_path, SMALL, "--region", BBOX, "--res", "2", "--out", str(out), "--force")
    assert res.exit_code == 1 and "not one" in res.output
    assert (out / "mine.txt").read_text() == "keep"
    good = tmp_path / "good"
    for _ in range(2):
        res = _invoke(
            tmp_path, SMALL, "--region", BBOX, "--res", "2", "--out", str(good), "-q", "--force"
        )
        assert res.exit_code == 0, res.output
    assert len(list(good.iterdir())) == 4


def test_terminal_availability_equals_its_cells_coverage(tmp_path):
    # A terminal at the centre of an H3 cell near the poleward edge of a 53 deg shell's
    # coverage, routed over +Grid ISLs to a gateway that always sees satellites: its RTT
    # availability must be its cell's fraction of time with a satellite above the mask.
    cell = "8308aafffffffff"  # centre 61.64 N 18.25 E: covered about 40 % of the hour
    lat, lon = h3.cell_to_latlng(cell)
    data = _toml(SMALL)
    data["time"]["duration_s"] = 3600.0
    data["ground"]["terminals"] = [{"name": "edge", "lat_deg": lat, "lon_deg": lon}]
    data["routing"] = {"modes": ["isl"]}
    plan = build_plan(parse_scenario(data))
    summary = run_plan(plan, tmp_path / "r").to_dict()
    avail = next(p["availability"] for p in summary["pairs"] if p["src"] == "edge")
    cov = coverage(
        plan.constellation,
        plan.grid,
        region=CellGrid.from_cells([cell]),
        min_elevation_deg=25.0,
        propagator=plan.propagator(),
    )
    frac = float(cov.statistics()["frac_ge1"][0])
    assert 0.05 < frac < 0.95  # the check means something: coverage there is partial
    assert avail == frac
    vis = summary["visibility"]["terminals"][0]
    assert vis["served_fraction"] == frac


def test_scenario_coverage_table_gives_the_defaults(tmp_path):
    text = SMALL + "[coverage]\nregion = [22.0, 44.0, 41.0, 53.0]\nres = 2\nk = 3\n"
    out = tmp_path / "cov"
    res = _invoke(tmp_path, text, "--out", str(out), "-q")
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "coverage_summary.json").read_text())
    assert (summary["region"], summary["h3_res"], summary["k"]) == ("bbox", 2, 3)
    # Flags override the table.
    res = _invoke(tmp_path, text, "--res", "1", "--out", str(tmp_path / "c1"), "-q")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "c1" / "coverage_summary.json").read_text())["h3_res"] == 1
