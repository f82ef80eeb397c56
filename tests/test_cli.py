"""The command line: happy paths, and every bad input of the contract (one line, exit != 0,
no run folder)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from starmesh.cli import app
from starmesh.scenario import builtin_text

runner = CliRunner()

SMALL = """
name = "small"
[time]
start_utc = "2026-05-13T00:00:00Z"
duration_s = 20.0
step_s = 1.0
[constellation]
preset = "starlink-550"
[ground]
terminals = ["Kyiv", "Lviv"]
gateways = ["Wola-Krobowska"]
pops = ["Warsaw"]
[routing]
modes = ["isl", "bent-pipe"]
[service]
model = "geometric"
"""
_PRESET = 'preset = "starlink-550"\n'
_NO_FILTER = "operational_filter = false\n"


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_scenarios_lists_builtins():
    res = runner.invoke(app, ["scenarios"])
    assert res.exit_code == 0, res.output
    assert "ukraine" in res.output and "default" in res.output
    assert "hypatia-starlink-550" in res.output


def test_show_prints_loadable_toml():
    res = runner.invoke(app, ["show", "ukraine"])
    assert res.exit_code == 0, res.output
    assert tomllib.loads(res.output)["name"] == "ukraine"


@pytest.mark.parametrize("name", ["ukraine", "hypatia-starlink-550"])
def test_validate_builtins(name):
    res = runner.invoke(app, ["validate", name])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("ok:")


def test_run_writes_the_run_folder_contract(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(_write(tmp_path, SMALL)), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "isls.parquet",
        "manifest.json",
        "report.html",
        "rtt.parquet",
        "scenario.toml",
        "sites.parquet",
        "summary.json",
        "visibility.parquet",
    ]
    table = pq.read_table(out / "rtt.parquet")
    schema = {f.name: str(f.type) for f in table.schema}
    assert schema["t_s"] == "double" and schema["rtt_ms"] == "double"
    assert schema["src"] == "string" and schema["dst"] == "string"
    assert schema["hops"].startswith("int")
    assert table.num_rows == 20 * 2 * 2  # steps x modes x pairs
    summary = json.loads((out / "summary.json").read_text())
    assert {(p["mode"], p["src"], p["dst"]) for p in summary["pairs"]} == {
        (m, s, "Warsaw") for m in ("isl", "bent-pipe") for s in ("Kyiv", "Lviv")
    }
    for p in summary["pairs"]:
        assert set(p) >= {"rtt_min_ms", "rtt_median_ms", "rtt_p95_ms", "rtt_max_ms", "availability"}
    # No temporary file is left under any name.
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_run_prints_summary_table(tmp_path):
    res = runner.invoke(
        app,
        ["run", str(_write(tmp_path, SMALL)), "--out", str(tmp_path / "r"), "--duration-s", "5"],
    )
    assert res.exit_code == 0, res.output
    assert "Kyiv" in res.output and "bent-pipe" in res.output and "median" in res.output


def test_run_refuses_non_empty_folder_without_force(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    res = runner.invoke(app, ["run", str(_write(tmp_path, SMALL)), "--out", str(out), "-q"])
    assert res.exit_code == 1
    assert "--force" in res.output
    assert (out / "keep.txt").read_text() == "precious"
    res = runner.invoke(
        app,
        [
            "run",
            str(_write(tmp_path, SMALL)),
            "--out",
            str(out),
            "-q",
            "--force",
            "--duration-s",
            "3",
        ],
    )
    # --force replaces only a starmesh run: a folder with someone's files is never deleted.
    assert res.exit_code == 1, res.output
    assert "did not write" in res.output or "not one" in res.output
    assert (out / "keep.txt").read_text() == "precious"
    run = tmp_path / "run"
    args = ["run", str(_write(tmp_path, SMALL)), "--out", str(run), "-q", "--duration-s", "3"]
    assert runner.invoke(app, args).exit_code == 0
    res = runner.invoke(app, [*args, "--force"])
    assert res.exit_code == 0, res.output
    (run / "notes.txt").write_text("mine")
    res = runner.invoke(app, [*args, "--force"])
    assert res.exit_code == 1 and "notes.txt" in res.output
    assert (run / "notes.txt").read_text() == "mine"


def test_force_never_deletes_the_working_directory(tmp_path, monkeypatch):
    run = tmp_path / "run"
    args = ["run", str(_write(tmp_path, SMALL)), "-q", "--duration-s", "3"]
    assert runner.invoke(app, [*args, "--out", str(run)]).exit_code == 0
    monkeypatch.chdir(run)
    res = runner.invoke(app, [*args, "--out", ".", "--force"])
    assert res.exit_code == 1 and "working directory" in res.output
    assert (run / "summary.json").is_file()
    monkeypatch.chdir(run / "rtt.parquet")
    res = runner.invoke(app, [*args, "--out", str(run), "--force"])
    assert res.exit_code == 1 and "working directory" in res.output


def test_run_with_tle_swaps_the_constellation(tmp_path):
    from starmesh.elements import load_starlink_snapshot

    es = load_starlink_snapshot()
    lines = []
    for rec in es.records[:300]:
        lines += [rec.name, rec.line1, rec.line2]
    tle = _write(tmp_path, "\n".join(lines) + "\n", "sats.tle")
    out = tmp_path / "r"
    res = runner.invoke(
        app,
        [
            "run",
            # 300 raw objects, many not operational: run them all, with nearest-k ISLs.
            str(_write(tmp_path, SMALL.replace(_PRESET, _PRESET + _NO_FILTER))),
            "--tle",
            str(tle),
            "--out",
            str(out),
            "-q",
            "--duration-s",
            "5",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_sats"] == 300
    resolved = tomllib.loads((out / "scenario.toml").read_text())
    assert resolved["constellation"]["tle_file"].endswith("sats.tle")
    assert resolved["links"]["isl"] == "nearest-k"
    # The resolved scenario runs again, alone, to the same routes.
    again = tmp_path / "again"
    res = runner.invoke(app, ["run", str(out / "scenario.toml"), "--out", str(again), "-q"])
    assert res.exit_code == 0, res.output
    assert pq.read_table(again / "rtt.parquet").equals(pq.read_table(out / "rtt.parquet"))


BAD = {
    "unknown key": (
        SMALL.replace('preset = "starlink-550"', 'presett = "starlink-550"'),
        "constellation",
        "presett",
    ),
    "negative altitude": (
        SMALL.replace(
            'preset = "starlink-550"',
            "shells = [{planes = 2, sats_per_plane = 3, altitude_km = -550, inclination_deg = 53}]",
        ),
        "constellation.shells[0].altitude_km",
        ">=",
    ),
    "elevation >= 90": (
        SMALL + "[links]\nmin_elevation_deg = 95.0\n",
        "links.min_elevation_deg",
        "< 90",
    ),
    "unknown preset": (
        SMALL.replace('"starlink-550"', '"starlink-9000"'),
        "constellation",
        "starlink-gen1",
    ),
    "unknown city": (SMALL.replace('"Lviv"', '"Lvivv"'), "ground.terminals[1]", "did you mean"),
    "step larger than duration": (
        SMALL.replace("step_s = 1.0", "step_s = 50.0"),
        "time",
        "duration",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_one_line_error_no_folder(tmp_path, monkeypatch, case):
    text, field, fix = BAD[case]
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", str(_write(tmp_path, text)), "--out", str(out)])
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: ") and field in lines[0] and fix in lines[0], lines[0]
    assert "Traceback" not in res.output
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_missing_scenario_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["run", "nope.toml"])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and "not found" in res.output and "nope.toml" in res.output
    assert not (tmp_path / "runs").exists()


def test_missing_tle_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["run", str(_write(tmp_path, SMALL)), "--tle", "gone.tle"])
    assert res.exit_code == 1
    assert "gone.tle" in res.output and "not found" in res.output
    assert not (tmp_path / "runs").exists()


def test_malformed_tle_names_the_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from starmesh.elements import load_starlink_snapshot

    rec = load_starlink_snapshot().records[0]
    bad_line2 = rec.line2[:20] + ("9" if rec.line2[20] != "9" else "8") + rec.line2[21:]
    text = f"{rec.name}\n{rec.line1}\n{bad_line2}\n"
    tle = _write(tmp_path, text, "bad.tle")
    res = runner.invoke(app, ["run", str(_write(tmp_path, SMALL)), "--tle", str(tle)])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1, res.output
    assert "bad.tle:3" in res.output and "checksum" in res.output
    assert not (tmp_path / "runs").exists()


def test_malformed_tle_can_be_skipped_and_counted(tmp_path):
    from starmesh.elements import load_starlink_snapshot

    recs = load_starlink_snapshot().records[:50]
    lines = []
    for i, r in enumerate(recs):
        l2 = r.line2 if i != 7 else r.line2[:30] + "X" + r.line2[31:]
        lines += [r.name, r.line1, l2]
    tle = _write(tmp_path, "\n".join(lines) + "\n", "some-bad.tle")
    res = runner.invoke(
        app,
        [
            "run",
            str(_write(tmp_path, SMALL.replace(_PRESET, _PRESET + _NO_FILTER))),
            "--tle",
            str(tle),
            "--skip-bad-tle",
            "--out",
            str(tmp_path / "r"),
            "--duration-s",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "skipped 1 malformed" in res.output
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["n_sats"] == 49


def test_override_step_larger_than_duration_on_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["run", "ukraine", "--duration-s", "10", "--step-s", "20"])
    assert res.exit_code == 1
    assert "step_s" in res.output and "duration" in res.output
    assert not (tmp_path / "runs").exists()


def test_unknown_builtin_lists_the_known_ones():
    res = runner.invoke(app, ["show", "ukrain"])
    assert res.exit_code == 1
    assert "ukraine" in res.output and "hypatia-starlink-550" in res.output


def test_top_cities_dataset(tmp_path):
    text = SMALL.replace('terminals = ["Kyiv", "Lviv"]', 'terminal_dataset = "top-cities:12"')
    res = runner.invoke(app, ["validate", str(_write(tmp_path, text))])
    assert res.exit_code == 0, res.output
    assert "14 sites, 12 pairs" in res.output
    bad = SMALL.replace('terminals = ["Kyiv", "Lviv"]', 'terminal_dataset = "top-cities:x"')
    res = runner.invoke(app, ["validate", str(_write(tmp_path, bad, "bad.toml"))])
    assert res.exit_code == 1 and "ground: terminal_dataset must be" in res.output


def test_builtin_text_is_the_shipped_file():
    assert 'name = "ukraine"' in builtin_text("ukraine")


def test_hypatia_layout_rejects_walker_phasing(tmp_path):
    text = builtin_text("hypatia-starlink-550").replace("phasing = 0", "phasing = 39")
    res = runner.invoke(app, ["validate", str(_write(tmp_path, text))])
    assert res.exit_code == 1
    assert "constellation: layout='hypatia' has no Walker phasing" in res.output
    assert "got 39" in res.output


def test_export_hypatia_end_to_end(tmp_path):
    satgen = pytest.importorskip("satgen")
    text = builtin_text("hypatia-starlink-550").replace("duration_s = 200.0", "duration_s = 1.0")
    run = tmp_path / "run"
    res = runner.invoke(app, ["run", str(_write(tmp_path, text)), "--out", str(run), "-q"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "hyp"
    res = runner.invoke(app, ["export", "hypatia", str(run), str(out)])
    assert res.exit_code == 0, res.output
    assert "dynamic_state_update_interval_ns=100000000" in res.output
    tles = satgen.read_tles(str(out / "tles.txt"))
    assert tles["n_orbits"] == 72 and tles["n_sats_per_orbit"] == 22
    assert len(satgen.read_ground_stations_extended(str(out / "ground_stations.txt"))) == 100
    fstates = sorted((out / "dynamic_state_100ms_for_1s").glob("fstate_*.txt"))
    assert len(fstates) == 10
    first = fstates[0].read_text().splitlines()
    assert len(first) == 1584 * 100 + 100 * 99


def test_export_hypatia_refuses_a_run_without_forwarding_state(tmp_path):
    run = tmp_path / "run"
    res = runner.invoke(
        app, ["run", str(_write(tmp_path, SMALL)), "--out", str(run), "-q", "--duration-s", "2"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["export", "hypatia", str(run), str(tmp_path / "x")])
    assert res.exit_code == 1
    assert "forwarding_state = true" in res.output
    assert not (tmp_path / "x").exists()
