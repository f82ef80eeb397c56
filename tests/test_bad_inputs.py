"""The bad-input corpus: every case gets exit code 1, one line on stderr, no traceback, and
writes nothing.

Each case is a command line and the files it needs, built in an empty folder that is also the
working directory. The corpus covers the defects a hostile review found (absurd steps, NaN,
binary or deeply nested files, element sets decades from the run, duplicate satellites, a
device as a TLE file, ``--force`` on the wrong folder, arguments that contradict ``--resume``)
and the usual ones (unknown keys, out-of-range values, missing files). gpconf's corrupt
TLE/OMM cases are not copied here; the TLE cases are built from the shipped snapshot.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from starmesh.cli import app
from starmesh.elements import load_starlink_snapshot, tle_checksum

SMALL = """
name = "small"
[time]
start_utc = "2026-05-13T00:00:00Z"
duration_s = 4.0
step_s = 1.0
[constellation]
preset = "starlink-550"
[ground]
terminals = ["Kyiv", "Lviv"]
gateways = ["Wola-Krobowska"]
pops = ["Warsaw"]
[routing]
modes = ["isl", "bent-pipe"]
"""


def _tle(n: int = 20, *, epoch: str | None = None, dup: bool = False, nul: bool = False) -> str:
    """A 3LE text of the snapshot's first ``n`` satellites, optionally damaged."""
    lines = []
    for i, r in enumerate(load_starlink_snapshot().records[:n]):
        assert r.line1 is not None and r.line2 is not None
        l1, l2, name = r.line1, r.line2, r.name
        if epoch is not None:
            l1 = l1[:18] + epoch + l1[32:]
            l1 = l1[:68] + str(tle_checksum(l1))
        if dup and i == 1:
            prev = load_starlink_snapshot().records[0]
            assert prev.line1 is not None and prev.line2 is not None
            l1, l2 = prev.line1, prev.line2
        if nul and i == 2:
            name = name + "\x00x"
        lines += [name, l1, l2]
    return "\n".join(lines) + "\n"


def _scenario_with(tle_name: str) -> str:
    return SMALL.replace('preset = "starlink-550"', f'tle_file = "{tle_name}"')


def _omm_nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _omm_epoch(year: int) -> str:
    rec = {
        "OBJECT_NAME": "TEST",
        "OBJECT_ID": "2020-001A",
        "EPOCH": f"{year:04d}-05-12T00:00:00.000000",
        "MEAN_MOTION": 15.05,
        "ECCENTRICITY": 0.0001,
        "INCLINATION": 53.0,
        "RA_OF_ASC_NODE": 10.0,
        "ARG_OF_PERICENTER": 90.0,
        "MEAN_ANOMALY": 270.0,
        "EPHEMERIS_TYPE": 0,
        "CLASSIFICATION_TYPE": "U",
        "NORAD_CAT_ID": 44000,
        "ELEMENT_SET_NO": 999,
        "REV_AT_EPOCH": 100,
        "BSTAR": 0.0001,
        "MEAN_MOTION_DOT": 0.0,
        "MEAN_MOTION_DDOT": 0.0,
    }
    return json.dumps([rec])


#: name -> (files to create {name: text or bytes}, command line, phrase the line must hold)
CASES: dict[str, tuple[dict[str, str | bytes], list[str], str]] = {
    "step not a number": ({}, ["run", "--step-s", "abc"], "--step-s"),
    "zero workers": ({}, ["run", "--workers", "0"], "--workers"),
    "unknown option": ({}, ["run", "--duration", "5"], "No such option"),
    "nan duration": (
        {"s.toml": SMALL.replace("duration_s = 4.0", "duration_s = nan")},
        ["run", "s.toml"],
        "NaN",
    ),
    "absurd step": ({"s.toml": SMALL}, ["run", "s.toml", "--step-s", "1e-9"], "run.max_steps"),
    "binary toml": ({"s.toml": bytes(range(256))}, ["validate", "s.toml"], "not UTF-8"),
    "deep toml": (
        {"s.toml": "a = " + "[" * 5000 + "]" * 5000 + "\n"},
        ["validate", "s.toml"],
        "too deeply",
    ),
    "unknown key": (
        {"s.toml": SMALL.replace("[routing]", "[routing]\nmodez = []")},
        ["validate", "s.toml"],
        "modez",
    ),
    "zero fibre capacity": (
        {"s.toml": SMALL + '[traffic]\nmodel = "access"\n[traffic.capacity]\nfibre_gbps = 0.0\n'},
        ["validate", "s.toml"],
        "fibre_gbps",
    ),
    "ten million terminals per flow": (
        {
            "s.toml": SMALL
            + '[traffic]\nmodel = "access"\nterminals_per_site = 10000000\naggregate = false\n'
        },
        ["validate", "s.toml"],
        "aggregate = true",
    ),
    "huge sweep": (
        {"s.toml": SMALL + "[sweep]\nseeds = [" + ", ".join(str(i) for i in range(10_000)) + "]\n"},
        ["sweep", "s.toml", "--out", "sw"],
        "variants",
    ),
    "missing scenario": ({}, ["run", "nope.toml"], "not found"),
    "scenario is a folder": ({"d/x.txt": "x"}, ["validate", "d"], "folder"),
    "tle epoch 1957": (
        {"old.tle": _tle(epoch="57275.00000000"), "s.toml": _scenario_with("old.tle")},
        ["run", "s.toml"],
        "max_epoch_age_days",
    ),
    "tle epoch 2056": (
        {"new.tle": _tle(epoch="56132.00000000"), "s.toml": _scenario_with("new.tle")},
        ["run", "s.toml"],
        "max_epoch_age_days",
    ),
    "duplicate norad ids": (
        {"d.tle": _tle(dup=True), "s.toml": _scenario_with("d.tle")},
        ["run", "s.toml"],
        "NORAD id",
    ),
    "nul in a name": (
        {"n.tle": _tle(nul=True), "s.toml": _scenario_with("n.tle")},
        ["run", "s.toml"],
        "NUL",
    ),
    "device as tle": ({"s.toml": SMALL}, ["run", "s.toml", "--tle", "/dev/zero"], "regular"),
    "omm nested deep": (
        {"deep.json": _omm_nested(5000), "s.toml": _scenario_with("deep.json")},
        ["run", "s.toml"],
        "",
    ),
    "omm epoch year 1": (
        {"y1.json": _omm_epoch(1), "s.toml": _scenario_with("y1.json")},
        ["run", "s.toml"],
        "",
    ),
    "omm epoch year 9999": (
        {"y9.json": _omm_epoch(9999), "s.toml": _scenario_with("y9.json")},
        ["run", "s.toml"],
        "",
    ),
    "report of a scenario file": ({"s.toml": SMALL}, ["report", "s.toml"], "not a run folder"),
    "resume with a scenario": ({"s.toml": SMALL}, ["run", "s.toml", "--resume", "r"], "--resume"),
    "resume of nothing": ({}, ["run", "--resume", "r"], "no run folder"),
    "out below a file": ({"f": "x", "s.toml": SMALL}, ["run", "s.toml", "--out", "f/run"], "file"),
    "force on a foreign folder": (
        {"mine/notes.txt": "keep me", "s.toml": SMALL},
        ["run", "s.toml", "--out", "mine", "--force"],
        "not one",
    ),
    "force on the working directory": (
        {"scenario.toml": "x", "s.toml": SMALL},
        ["run", "s.toml", "--out", ".", "--force"],
        "working directory",
    ),
    "launch date without a source": (
        {
            "s.toml": SMALL.replace(
                'preset = "starlink-550"',
                'preset = "starlink-2026"\n[constellation.filter]\nlaunched_before = 2024-06-01',
            )
        },
        ["validate", "s.toml"],
        "error: constellation.filter.launched_before: no sourced launch number for 2024-06-01",
    ),
    "export czml of nothing": ({}, ["export", "czml", "nope", "x.czml"], "not found"),
    "export hypatia of nothing": ({}, ["export", "hypatia", "nope", "out"], "not found"),
    "top cities colliding with a pop": (
        {
            "s.toml": SMALL.replace(
                'terminals = ["Kyiv", "Lviv"]', 'terminal_dataset = "top-cities:5000"'
            ).replace('pops = ["Warsaw"]', 'pops = ["Warsaw"]')
        },
        ["validate", "s.toml"],
        "Warsaw",
    ),
}


def _make(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, case):
    files, args, phrase = CASES[case]
    _make(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, (res.exit_code, res.output, res.exception)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in res.output
    assert phrase in lines[0], lines[0]
    assert _snapshot(tmp_path) == before


def test_a_bom_is_not_an_error(tmp_path):
    (tmp_path / "s.toml").write_bytes(b"\xef\xbb\xbf" + SMALL.encode())
    res = CliRunner().invoke(app, ["validate", str(tmp_path / "s.toml")])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("exc", ["ScenarioError", "TLEFormatError", "every other class"])
def test_every_error_survives_pickling(exc):
    """Errors cross process boundaries (local workers, Dask): each class must pickle."""
    import pickle

    import starmesh.errors as errors

    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.StarmeshError)
    ]
    args: dict[type, tuple[object, ...]] = {
        errors.ScenarioError: ("time.step_s", "must be > 0"),
        errors.UnknownSiteError: ("ground.terminals[0]", "unknown city 'X'"),
        errors.TLEFormatError: ("f.tle", 3, "bad checksum"),
    }
    if exc == "ScenarioError":
        classes = [errors.ScenarioError, errors.UnknownSiteError]
    elif exc == "TLEFormatError":
        classes = [errors.TLEFormatError]
    for cls in classes:
        e = cls(*args.get(cls, ("something went wrong",)))
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is cls and str(back) == str(e)
        assert back.__dict__ == e.__dict__


def _mount_tmpfs(path: Path, options: str) -> Callable[[], None] | None:
    """Mount a small tmpfs (root only); None where the machine does not allow it."""
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    ok = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if ok.returncode != 0:
        return None
    return lambda: subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def test_a_run_that_cannot_fit_on_the_disk_is_refused_up_front(tmp_path):
    disk = tmp_path / "disk"
    undo = _mount_tmpfs(disk, "size=48k")
    if undo is None:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        (tmp_path / "s.toml").write_text(SMALL.replace("duration_s = 4.0", "duration_s = 3600.0"))
        res = CliRunner().invoke(
            app, ["run", str(tmp_path / "s.toml"), "--out", str(disk / "run"), "-q"]
        )
        assert res.exit_code == 1, res.output
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "of disk" in lines[0], res.stderr
        assert not list(disk.iterdir())
    finally:
        undo()


def test_a_full_disk_costs_the_report_not_the_data(tmp_path):
    """The run's data fits but plotly's 5 MB do not: the run keeps its data and says, in one
    line, that report.html was not written; `starmesh report` then fails in one line; no
    temporary file is left."""
    disk = tmp_path / "disk"
    undo = _mount_tmpfs(disk, "size=1m")
    if undo is None:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        (tmp_path / "s.toml").write_text(SMALL)
        out = disk / "run"
        with pytest.warns(RuntimeWarning, match="report.html not written") as record:
            res = CliRunner().invoke(
                app, ["run", str(tmp_path / "s.toml"), "--out", str(out), "-q"]
            )
        assert res.exit_code == 0, res.output
        assert not res.stderr.strip()
        # The command line shows a warning as one line.
        from starmesh.cli import _one_line_warning

        shown = _one_line_warning(record[0].message, RuntimeWarning)
        assert shown.startswith("warning: report.html not written") and shown.count("\n") == 1
        assert (out / "summary.json").is_file() and not (out / "report.html").exists()
        res = CliRunner().invoke(app, ["report", str(out)])
        assert res.exit_code == 1
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "No space left" in lines[0], res.stderr
        assert not [p for p in disk.rglob("*") if p.name.endswith(".tmp")]
    finally:
        undo()


def test_read_only_out_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    undo = _mount_tmpfs(ro, "size=1m,ro")
    if undo is None:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        (tmp_path / "s.toml").write_text(SMALL)
        res = CliRunner().invoke(
            app, ["run", str(tmp_path / "s.toml"), "--out", str(ro / "run"), "-q"]
        )
        assert res.exit_code == 1, res.output
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Read-only" in lines[0], res.stderr
    finally:
        undo()


def test_dangling_symlink_out_is_refused(tmp_path):
    (tmp_path / "s.toml").write_text(SMALL)
    link = tmp_path / "link"
    os.symlink(tmp_path / "gone", link)
    res = CliRunner().invoke(app, ["run", str(tmp_path / "s.toml"), "--out", str(link)])
    assert res.exit_code == 1
    assert "symlink" in res.stderr
    assert not (tmp_path / "gone").exists()
