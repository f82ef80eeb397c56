"""Export of a run folder to Hypatia's satellite network state, checked against satgenpy itself.

satgenpy (Hypatia's network generator, ``pip install satgenpy``) writes the reference: the same
4 x 5 shell, three ground stations, +Grid ISLs and its forwarding state for 5 steps of 60 s. A
fake run folder is built from it (the routes are satgenpy's; the ISL list is starmesh's own +Grid,
in starmesh's order), exported, and every file is

- read back with satgenpy's own readers,
- compared byte for byte with the file satgenpy wrote, forwarding state included,
- and the forwarding-state deltas are replayed as ns-3 does and compared with the run's state.

This checks the file format and numbering on routes that are satgenpy's by construction. The
export of a real starmesh run (``hypatia-starlink-550``, 30 steps) is compared byte for byte with
satgenpy's own files in ``tests/test_hypatia_window.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tomli_w

from starmesh.constellation import Constellation, WalkerShell
from starmesh.errors import RunFolderError, StarmeshError
from starmesh.io.hypatia import _Interfaces, export_hypatia
from starmesh.topology import plus_grid_edges

satgen = pytest.importorskip(
    "satgen", reason="satgenpy (Hypatia's generator) is not installed: pip install satgenpy"
)
exputil = pytest.importorskip("exputil", reason="exputil (a satgenpy dependency) is missing")

N_ORBITS, N_PER_ORBIT = 4, 5
N_SATS = N_ORBITS * N_PER_ORBIT
SHELL_NAME = "Test-shell"
MEAN_MOTION_REV_DAY = 15.19
INCLINATION_DEG = 53.0
# Ranges in whole km, so that km * 1e3 is the same float as satgenpy's metres.
GSL_KM, ISL_KM = 4000.0, 15000.0
STEP_MS, DURATION_S = 60_000, 300
STEP_NS = STEP_MS * 1_000_000
N_STEPS = DURATION_S * 1000 // STEP_MS
DYN = f"dynamic_state_{STEP_MS}ms_for_{DURATION_S}s"
#: (name, kind, lat_deg, lon_deg, alt_m); every field nonzero somewhere.
STATIONS = [
    ("Manila", "terminal", 14.6042, 120.9822, 0.0),
    ("Dalian", "terminal", 38.913811, 121.602322, 0.0),
    ("Gw-1", "gateway", 35.0, 139.0, 42.5),
]
N_GS = len(STATIONS)
STATIC_FILES = [
    "tles.txt",
    "isls.txt",
    "ground_stations.txt",
    "gsl_interfaces_info.txt",
    "description.txt",
]

State = dict[tuple[int, int], tuple[int, int, int]]


def scenario(**patch: dict[str, Any]) -> dict[str, Any]:
    """A resolved scenario as `starmesh run` writes it; ``patch`` updates its tables."""
    sc: dict[str, Any] = {
        "name": "hypatia-export-test",
        "time": {
            "start_utc": "2000-01-01T00:00:00Z",
            "duration_s": float(DURATION_S),
            "step_s": STEP_MS / 1e3,
        },
        "constellation": {
            "layout": "hypatia",
            "shells": [
                {
                    "name": SHELL_NAME,
                    "planes": N_ORBITS,
                    "sats_per_plane": N_PER_ORBIT,
                    "phasing": 0,
                    "altitude_km": 550.0,
                    "inclination_deg": INCLINATION_DEG,
                    "pattern": "delta",
                    "mean_motion_rev_day": MEAN_MOTION_REV_DAY,
                }
            ],
        },
        "ground": {
            "terminals": [
                {"name": n, "lat_deg": la, "lon_deg": lo, "alt_m": h}
                for n, k, la, lo, h in STATIONS
                if k == "terminal"
            ],
            "gateways": [
                {"name": n, "lat_deg": la, "lon_deg": lo, "alt_m": h}
                for n, k, la, lo, h in STATIONS
                if k == "gateway"
            ],
            "pops": [],
        },
        "links": {
            "isl": "plus-grid",
            "isl_max_range_km": ISL_KM,
            "gsl_rule": "max-range",
            "gsl_max_range_km": GSL_KM,
            "min_elevation_deg": 25.0,
        },
        "routing": {"modes": ["isl", "bent-pipe"], "pairs": "all-terminal-pairs"},
    }
    for table, values in patch.items():
        sc[table] = {**sc[table], **values}
    return sc


def read_fstate_dir(d: Path) -> list[State]:
    """The full state after each step, applying every file on top of the last (as ns-3 does)."""
    state: State = {}
    out = []
    for k in range(N_STEPS):
        for line in (d / f"fstate_{k * STEP_NS}.txt").read_text().splitlines():
            node, dst, hop, my_if, hop_if = (int(x) for x in line.split(","))
            state[(node, dst)] = (hop, my_if, hop_if)
        out.append(dict(state))
    return out


@pytest.fixture(scope="module")
def satgen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """satgenpy's own network folder and forwarding state for the test network."""
    root = tmp_path_factory.mktemp("satgen")
    net = root / "net"
    net.mkdir()
    basic = root / "ground_stations.basic.txt"
    basic.write_text(
        "".join(f"{i},{n},{la!r},{lo!r},{h!r}\n" for i, (n, _, la, lo, h) in enumerate(STATIONS))
    )
    satgen.extend_ground_stations(str(basic), str(net / "ground_stations.txt"))
    satgen.generate_tles_from_scratch_manual(
        str(net / "tles.txt"),
        SHELL_NAME,
        N_ORBITS,
        N_PER_ORBIT,
        True,
        INCLINATION_DEG,
        0.0000001,
        0.0,
        MEAN_MOTION_REV_DAY,
    )
    satgen.generate_plus_grid_isls(
        str(net / "isls.txt"), N_ORBITS, N_PER_ORBIT, isl_shift=0, idx_offset=0
    )
    satgen.generate_description(str(net / "description.txt"), GSL_KM * 1e3, ISL_KM * 1e3)
    satgen.generate_simple_gsl_interfaces_info(
        str(net / "gsl_interfaces_info.txt"), N_SATS, N_GS, 1, 1, 1, 1
    )
    # Verbose logs on: with fewer than 10 steps satgenpy's progress print divides by zero.
    satgen.help_dynamic_state(
        str(root),
        1,
        "net",
        STEP_MS,
        DURATION_S,
        GSL_KM * 1e3,
        ISL_KM * 1e3,
        "algorithm_free_one_only_over_isls",
        True,
    )
    return net


@pytest.fixture(scope="module")
def satgen_states(satgen_dir: Path) -> list[State]:
    states = read_fstate_dir(satgen_dir / DYN)
    # The reference must exercise what the export has to get right.
    assert any(hop == -1 for hop, _, _ in states[0].values()), "no unreachable entry"
    deltas = [len((satgen_dir / DYN / f"fstate_{k * STEP_NS}.txt").read_text()) for k in range(5)]
    assert all(deltas[1:4]), "steps 1-3 should change some routes"
    assert deltas[4] == 0, "the last step should change nothing (an empty delta file)"
    return states


def fstate_rows(states: list[State]) -> list[tuple[float, str, int, int, int]]:
    """Rows of fstate.parquet: the first step in full, later steps only changed entries."""
    rows = []
    for k, state in enumerate(states):
        for (node, dst), (hop, _, _) in state.items():
            if k == 0 or states[k - 1][(node, dst)][0] != hop:
                rows.append((k * STEP_MS / 1e3, "isl", node, dst, hop))
            # Another mode's rows, which the export must ignore.
            if (node + k) % 7 == 0:
                rows.append((k * STEP_MS / 1e3, "bent-pipe", node, dst, N_SATS + N_GS - 1))
    return rows


def write_run(
    path: Path,
    *,
    sc: dict[str, Any],
    rows: list[tuple[float, str, int, int, int]] | None,
    isl_edges: np.ndarray | None = None,
    kinds: list[str] | None = None,
) -> Path:
    """A run folder with the files `starmesh run` writes for forwarding_state = true."""
    path.mkdir(parents=True)
    (path / "scenario.toml").write_bytes(tomli_w.dumps(sc).encode())
    pq.write_table(
        pa.table(
            {
                "site_idx": np.arange(N_GS, dtype=np.int32),
                "name": [s[0] for s in STATIONS],
                "kind": kinds or [s[1] for s in STATIONS],
                "lat_deg": [s[2] for s in STATIONS],
                "lon_deg": [s[3] for s in STATIONS],
                "alt_m": [s[4] for s in STATIONS],
            }
        ),
        path / "sites.parquet",
    )
    if isl_edges is None:
        shell = WalkerShell(
            SHELL_NAME,
            N_ORBITS,
            N_PER_ORBIT,
            0,
            550e3,
            INCLINATION_DEG,
            layout="hypatia",
            mean_motion_rev_day=MEAN_MOTION_REV_DAY,
        )
        cons = Constellation.from_shells("t", [shell], epoch="2000-01-01T00:00:00Z")
        isl_edges = plus_grid_edges(cons)  # starmesh's order: sorted, not satgenpy's
    pq.write_table(
        pa.table({"a": isl_edges[:, 0].astype(np.int32), "b": isl_edges[:, 1].astype(np.int32)}),
        path / "isls.parquet",
    )
    if rows is not None:
        (path / "fstate.parquet").mkdir()
        # Two chunk files, the way the run writes them; the first ends mid-run.
        cut = next(i for i, r in enumerate(rows) if r[0] >= 3 * STEP_MS / 1e3)
        for i, part in enumerate([rows[:cut], rows[cut:]]):
            pq.write_table(
                pa.table(
                    {
                        "t_s": pa.array([r[0] for r in part], pa.float64()),
                        "mode": pa.array([r[1] for r in part], pa.string()),
                        "node": pa.array([r[2] for r in part], pa.int32()),
                        "dst": pa.array([r[3] for r in part], pa.int32()),
                        "next_hop": pa.array([r[4] for r in part], pa.int32()),
                    }
                ),
                path / "fstate.parquet" / f"part-{i:06d}.parquet",
            )
    # The manifest the run would write: two complete chunks (their files hashed), as exporters
    # verify a run folder before reading it.
    from starmesh.io.runfolder import Manifest

    m = Manifest(path, "0" * 64, [(0, 3), (3, 10**9)])
    for i in range(2):
        part = path / "fstate.parquet" / f"part-{i:06d}.parquet"
        m.record(i, [part] if part.is_file() else [path / "sites.parquet"])
    return path


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, satgen_states: list[State]
) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("export")
    run = write_run(root / "run", sc=scenario(), rows=fstate_rows(satgen_states))
    out = root / "hypatia"
    return out, export_hypatia(run, out)


# --- Static files ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", STATIC_FILES)
def test_static_file_is_byte_identical_to_satgenpy(
    exported: tuple[Path, dict[str, Any]], satgen_dir: Path, name: str
) -> None:
    out, _ = exported
    assert (out / name).read_bytes() == (satgen_dir / name).read_bytes()


def test_static_files_read_back_with_satgenpy_readers(
    exported: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = exported
    tles = satgen.read_tles(str(out / "tles.txt"))
    assert (tles["n_orbits"], tles["n_sats_per_orbit"]) == (N_ORBITS, N_PER_ORBIT)
    assert len(tles["satellites"]) == N_SATS
    assert str(tles["epoch"].datetime.date()) == "2000-01-01"

    isls = satgen.read_isls(str(out / "isls.txt"), N_SATS)
    assert len(isls) == 2 * N_SATS  # +Grid: 2 S links

    gs = satgen.read_ground_stations_extended(str(out / "ground_stations.txt"))
    assert [g["name"] for g in gs] == [s[0] for s in STATIONS]
    for g, (_, _, lat, lon, h) in zip(gs, STATIONS, strict=True):
        assert float(g["latitude_degrees_str"]) == pytest.approx(lat, abs=1e-6)
        assert float(g["longitude_degrees_str"]) == pytest.approx(lon, abs=1e-6)
        assert g["elevation_m_float"] == h
        want = satgen.geodetic2cartesian(lat, lon, h)
        got = (g["cartesian_x"], g["cartesian_y"], g["cartesian_z"])
        assert np.abs(np.subtract(got, want)).max() < 1e-6  # %f rounding: 1 um

    info = satgen.read_gsl_interfaces_info(str(out / "gsl_interfaces_info.txt"), N_SATS, N_GS)
    assert all(i == {"number_of_interfaces": 1, "aggregate_max_bandwidth": 1.0} for i in info)

    # satgenpy's post-analysis reads description.txt this way.
    desc = exputil.PropertiesConfig(str(out / "description.txt"))
    assert float(desc.get_property_or_fail("max_gsl_length_m")) == GSL_KM * 1e3
    assert float(desc.get_property_or_fail("max_isl_length_m")) == ISL_KM * 1e3


# --- Forwarding state ------------------------------------------------------------------------


def test_dynamic_state_is_byte_identical_to_satgenpy(
    exported: tuple[Path, dict[str, Any]], satgen_dir: Path
) -> None:
    out, _ = exported
    ours, theirs = out / DYN, satgen_dir / DYN
    names = sorted(os.listdir(theirs))
    assert sorted(os.listdir(ours)) == names
    assert len(names) == 2 * N_STEPS  # fstate_<t>.txt and gsl_if_bandwidth_<t>.txt per step
    for name in names:
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name


def test_fstate_deltas_rebuild_the_run_state(
    exported: tuple[Path, dict[str, Any]], satgen_states: list[State]
) -> None:
    out, _ = exported
    d = out / DYN
    ours = read_fstate_dir(d)
    n_entries = N_SATS * N_GS + N_GS * (N_GS - 1)
    first = (d / "fstate_0.txt").read_text().splitlines()
    assert len(first) == len(ours[0]) == n_entries
    for k in range(N_STEPS):
        hops = {key: v[0] for key, v in ours[k].items()}
        assert hops == {key: v[0] for key, v in satgen_states[k].items()}, k
        lines = (d / f"fstate_{k * STEP_NS}.txt").read_text().splitlines()
        keys = [tuple(int(x) for x in line.split(",")[:2]) for line in lines]
        assert keys == sorted(keys), "satgenpy writes node by node, destination by destination"
        if k:
            changed = {key for key in hops if ours[k - 1][key][0] != hops[key]}
            assert set(keys) == changed and len(keys) == len(changed)


def test_fstate_interfaces_follow_isls_txt_order(exported: tuple[Path, dict[str, Any]]) -> None:
    out, _ = exported
    isls = satgen.read_isls(str(out / "isls.txt"), N_SATS)
    # ns-3 creates each satellite's ISL devices in file order, then its GSL device.
    n_isls = [0] * N_SATS
    neighbour_if = {}
    for a, b in isls:
        neighbour_if[(a, b)], neighbour_if[(b, a)] = n_isls[a], n_isls[b]
        n_isls[a] += 1
        n_isls[b] += 1
    for state in read_fstate_dir(out / DYN):
        for (node, _dst), (hop, my_if, hop_if) in state.items():
            if hop == -1:
                want = (-1, -1)
            elif node < N_SATS and hop < N_SATS:
                want = (neighbour_if[(node, hop)], neighbour_if[(hop, node)])
            elif node < N_SATS:
                want = (n_isls[node], 0)
            else:
                want = (0, n_isls[hop])
            assert (my_if, hop_if) == want
    bandwidth = (out / DYN / "gsl_if_bandwidth_0.txt").read_text().splitlines()
    assert bandwidth[:2] == [f"0,{n_isls[0]},1.000000", f"1,{n_isls[1]},1.000000"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interfaces_match_satgenpy_numbering_in_any_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shell = WalkerShell(
        "s", 5, 4, 0, 550e3, 53.0, layout="hypatia", mean_motion_rev_day=MEAN_MOTION_REV_DAY
    )
    edges = plus_grid_edges(Constellation.from_shells("s", [shell], epoch="2000-01-01T00:00Z"))
    edges = edges[rng.permutation(len(edges))].astype(np.int64)
    ifs = _Interfaces(edges, shell.n_sats)
    count = [0] * shell.n_sats
    for a, b in edges.tolist():
        assert ifs.isl(np.array([a]), np.array([b]))[0] == count[a]
        assert ifs.isl(np.array([b]), np.array([a]))[0] == count[b]
        count[a] += 1
        count[b] += 1
    assert ifs.n_isls.tolist() == count
    linked = {(a, b) for a, b in edges.tolist()} | {(b, a) for a, b in edges.tolist()}
    u, v = next((0, v) for v in range(1, shell.n_sats) if (0, v) not in linked)
    assert ifs.isl(np.array([u]), np.array([v]))[0] == -1


def test_summary(exported: tuple[Path, dict[str, Any]]) -> None:
    out, summary = exported
    assert summary["out_dir"] == str(out)
    assert summary["dynamic_state_dir"] == DYN
    assert (summary["n_sats"], summary["n_ground_stations"], summary["n_isls"]) == (20, 3, 40)
    assert (summary["n_steps"], summary["step_ms"]) == (N_STEPS, STEP_MS)
    assert summary["dynamic_state_update_interval_ns"] == STEP_NS
    assert summary["simulation_end_time_ns"] == DURATION_S * 10**9
    assert summary["isl_order"] == "satgenpy-plus-grid"
    assert summary["unrouted_stations"] == []
    lines = sum(
        len((out / DYN / f"fstate_{k * STEP_NS}.txt").read_text().splitlines())
        for k in range(N_STEPS)
    )
    assert summary["fstate_lines"] == lines


def test_station_that_ends_no_pair_gets_drops(tmp_path: Path, satgen_states: list[State]) -> None:
    # The run routes towards pair endpoints only; here the gateway ends no pair.
    gw = N_SATS + 2
    rows = [r for r in fstate_rows(satgen_states) if r[3] != gw]
    run = write_run(tmp_path / "run", sc=scenario(), rows=rows)
    summary = export_hypatia(run, tmp_path / "out")
    assert summary["unrouted_stations"] == ["Gw-1"]
    ours = read_fstate_dir(tmp_path / "out" / DYN)
    for k, state in enumerate(ours):
        assert len(state) == N_SATS * N_GS + N_GS * (N_GS - 1)
        for key, value in state.items():
            want = (-1, -1, -1) if key[1] == gw else satgen_states[k][key]
            assert value == want, (k, key)
    lines = (tmp_path / "out" / DYN / "fstate_0.txt").read_text().splitlines()
    keys = [tuple(int(x) for x in line.split(",")[:2]) for line in lines]
    assert keys == sorted(keys)


# --- Other constellations --------------------------------------------------------------------


def test_tle_file_constellation(
    tmp_path: Path, satgen_dir: Path, satgen_states: list[State]
) -> None:
    # satgenpy's own TLEs as a 3LE file; their names have a space, which must not reach
    # satgenpy's reader (it takes the second word of a name line as the satellite id).
    tle_file = tmp_path / "shell.tle"
    tle_file.write_text("".join((satgen_dir / "tles.txt").read_text().splitlines(True)[1:]))
    sc = scenario(constellation={"tle_file": str(tle_file), "skip_bad_tle": False})
    del sc["constellation"]["layout"], sc["constellation"]["shells"]
    run = write_run(tmp_path / "run", sc=sc, rows=fstate_rows(satgen_states))
    summary = export_hypatia(run, tmp_path / "out")
    assert summary["isl_order"] == "run"
    text = (tmp_path / "out" / "tles.txt").read_text().splitlines()
    assert text[:2] == [f"1 {N_SATS}", f"{SHELL_NAME}_0 0"]
    assert text[2:4] == (satgen_dir / "tles.txt").read_text().splitlines()[2:4]
    tles = satgen.read_tles(str(tmp_path / "out" / "tles.txt"))
    assert (tles["n_orbits"], tles["n_sats_per_orbit"], len(tles["satellites"])) == (1, 20, 20)
    # Run order of the ISLs: the routes are the same, the interface numbers follow isls.txt.
    ours = read_fstate_dir(tmp_path / "out" / DYN)
    assert [{k: v[0] for k, v in s.items()} for s in ours] == [
        {k: v[0] for k, v in s.items()} for s in satgen_states
    ]


# --- Errors ----------------------------------------------------------------------------------


@pytest.fixture
def rows(satgen_states: list[State]) -> list[tuple[float, str, int, int, int]]:
    return fstate_rows(satgen_states)


def assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_missing_run_folder(tmp_path: Path) -> None:
    with pytest.raises(StarmeshError, match=r"run folder .* not found"):
        export_hypatia(tmp_path / "nope", tmp_path / "out")


def test_run_without_forwarding_state(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", sc=scenario(), rows=None)
    with pytest.raises(StarmeshError, match=r"forwarding_state = true"):
        export_hypatia(run, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_run_with_pops(tmp_path: Path, rows: list[Any]) -> None:
    run = write_run(tmp_path / "run", sc=scenario(), rows=rows, kinds=["terminal", "pop", "pop"])
    with pytest.raises(StarmeshError, match=r"2 PoP site\(s\) \(Dalian, Gw-1\).*no fibre or PoP"):
        export_hypatia(run, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize(
    ("time", "match"),
    [
        ({"step_s": 0.0005, "duration_s": 0.0025}, r"step_s = 0.0005 s is not a whole .* ms"),
        ({"step_s": 60.0, "duration_s": 330.0}, r"duration_s = 330 s is not a whole .* 60 s"),
    ],
)
def test_time_grid_hypatia_cannot_name(
    tmp_path: Path, rows: list[Any], time: dict[str, float], match: str
) -> None:
    run = write_run(tmp_path / "run", sc=scenario(time=time), rows=rows)
    with pytest.raises(StarmeshError, match=match):
        export_hypatia(run, tmp_path / "out")


def test_start_other_than_tle_epoch(tmp_path: Path, rows: list[Any]) -> None:
    run = write_run(
        tmp_path / "run", sc=scenario(time={"start_utc": "2026-05-13T00:00:00Z"}), rows=rows
    )
    with pytest.raises(StarmeshError, match=r"start_utc = '2000-01-01T00:00:00Z'"):
        export_hypatia(run, tmp_path / "out")


def test_walker_layout_has_no_tles(tmp_path: Path, rows: list[Any]) -> None:
    run = write_run(tmp_path / "run", sc=scenario(constellation={"layout": "walker"}), rows=rows)
    with pytest.raises(StarmeshError, match=r"layout = 'hypatia'"):
        export_hypatia(run, tmp_path / "out")


def test_refuses_non_empty_out_dir_and_accepts_empty_one(tmp_path: Path, rows: list[Any]) -> None:
    run = write_run(tmp_path / "run", sc=scenario(), rows=rows)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(RunFolderError, match="not empty"):
        export_hypatia(run, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    export_hypatia(run, out)
    assert (out / "tles.txt").exists()


def test_inconsistent_forwarding_state_leaves_nothing(tmp_path: Path, rows: list[Any]) -> None:
    # Satellite 0 forwarding to satellite 12, with which it shares no ISL, at the last step.
    bad = [*rows, ((N_STEPS - 1) * STEP_MS / 1e3, "isl", 0, N_SATS, 12)]
    run = write_run(tmp_path / "run", sc=scenario(), rows=bad)
    with pytest.raises(StarmeshError, match=r"t = 240 s: satellite 0 forwards to satellite 12"):
        export_hypatia(run, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_incomplete_first_step(tmp_path: Path, rows: list[Any]) -> None:
    run = write_run(tmp_path / "run", sc=scenario(), rows=[r for r in rows if r[2] != 5])
    with pytest.raises(StarmeshError, match=r"first step holds 21 entries towards station 20"):
        export_hypatia(run, tmp_path / "out")
