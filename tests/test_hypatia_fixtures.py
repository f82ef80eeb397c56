"""Step-by-step reproduction of Hypatia's own reference results (satgenpy's Kuiper 630 km test).

satgenpy's ``test_end_to_end_kuiper_triangle.py`` checks the paths and RTTs between Manila,
Dalian and St Petersburg on the Kuiper 630 km shell, every 100 ms for 200 s. Its expected
outputs are copied byte for byte in ``tests/data/hypatia/`` (see ``tests/data/PROVENANCE.md``).
Here starmesh runs the same setting and is compared with them at every one of the 2,000 steps:
reachability, hop count, first and last satellite, path-change times and RTT.

Where the two differ, and why
-----------------------------
satgenpy measures every link with pyephem (libastro); starmesh propagates the same TLEs with
python-sgp4 and turns TEME into ECEF with GMST82, sites on WGS84. Reconstructing pyephem 4.2.1's
positions at t = 100 s (from ``sublat``, ``sublong`` and ``elevation``; its ranges then fit them
to 0.2 m) shows three modelling differences in libastro, none a starmesh error:

1. Earth rotation: libastro's satellite code takes sidereal time from Newcomb's formula, which
   at this epoch is 0.076 s of time (5.5 urad) behind GMST82, so relative to the satellites
   starmesh's sites sit about 35 m x cos(latitude) further east.
2. Satellite radius: libastro converts SGP4's output from Earth radii with its own 6378.16 km
   instead of WGS72's 6378.135 km, so its satellites are 27.5 m higher (positions scaled by
   1 + 3.9e-6; in-plane ISLs about 5 m longer).
3. Sites: libastro puts them on a 6378.16 km, 1/298.25 ellipsoid, about 23 m higher and 17-35 m
   further north than on WGS84.

Once the first two are removed the satellite positions agree to about 15 m (libastro's older
SGP4 and its single-precision elements). Per link, GSL lengths differ by up to 51 m and ISL
lengths by up to 10 m. Measured over the 200 s, starmesh minus satgenpy RTT lies in -0.52 to
+0.05 us (median |difference| 0.24-0.37 us per pair; starmesh is mostly shorter). The same metres
decide when a satellite crosses the 1,260 km GSL range limit: twice per St Petersburg pair a
satellite is within 35 m of the limit at a step and starmesh switches one step (100 ms) before
Hypatia (steps 32 and 1651). Those steps are checked to be such threshold events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from numpy.typing import NDArray

from starmesh.plan import RunPlan, build_plan
from starmesh.propagation import Propagator
from starmesh.runner import run_plan
from starmesh.scenario import Scenario, parse_scenario

DATA = Path(__file__).parent / "data" / "hypatia"

STEP_NS = 100_000_000
STEP_S = STEP_NS * 1e-9
N_STEPS = 2000
N_SATS = 34 * 34

# satgenpy's constants for this test (WGS72 radius, 630 km, 30 deg elevation, 80 km grazing).
EARTH_RADIUS_M = 6_378_135.0
ALTITUDE_M = 630_000.0
MAX_GSL_LENGTH_M = math.sqrt((ALTITUDE_M / math.tan(math.radians(30.0))) ** 2 + ALTITUDE_M**2)
MAX_ISL_LENGTH_M = 2.0 * math.sqrt(
    (EARTH_RADIUS_M + ALTITUDE_M) ** 2 - (EARTH_RADIUS_M + 80_000.0) ** 2
)

#: Largest |starmesh - satgenpy| RTT at steps where both take the same path, per Earth model:
#: WGS84 0.6 us, about 180 m of round-trip path (measured maximum 0.52 us; see the module
#: docstring); with ``earth_model = "pyephem"`` (pyephem's radius and ellipsoid) the median
#: bias falls from -0.24..-0.37 us to -0.05..-0.06 us and the maximum to 0.311 us, so 0.35 us;
#: what remains is the sidereal-time offset and libastro's older SGP4.
TOL_RTT_S = {"wgs84": 0.6e-6, "pyephem": 0.35e-6}
#: Largest difference of one link's length between the two geometries (measured: 51 m for a
#: GSL), so a satellite this close to the range limit may be in range in one and not the other.
LINK_TOL_M = 60.0
#: Steps at which starmesh crosses a GSL range threshold one step before or after Hypatia
#: (measured: 0 for Manila -> Dalian, 2 for each St Petersburg pair).
MAX_SHIFTED_STEPS = 2

#: Hypatia's node ids of the ground stations (1156 satellites + index in its top-100 cities).
NODE = {"Manila": 1173, "Dalian": 1241, "St Petersburg": 1229}

#: (source, destination, Hypatia path file, Hypatia RTT file). RTT does not depend on the
#: direction; satgenpy's data has no RTT file for St Petersburg -> Manila.
PAIRS = [
    ("Manila", "Dalian", "networkx_path_1173_to_1241.txt", "networkx_rtt_1173_to_1241.txt"),
    ("St Petersburg", "Dalian", "networkx_path_1229_to_1241.txt", "networkx_rtt_1229_to_1241.txt"),
    ("St Petersburg", "Manila", "networkx_path_1229_to_1173.txt", "networkx_rtt_1173_to_1229.txt"),
    ("Manila", "St Petersburg", "networkx_path_1173_to_1229.txt", "networkx_rtt_1173_to_1229.txt"),
]


def kuiper_scenario(earth_model: str = "wgs84") -> Scenario:
    """satgenpy's Kuiper 630 km triangle as a starmesh scenario."""
    return parse_scenario(
        {
            "name": "kuiper-630-hypatia",
            "earth_model": earth_model,
            # Hypatia computes propagation delays only.
            "service": {"model": "geometric"},
            "time": {"start_utc": "2000-01-01T00:00:00Z", "duration_s": 200.0, "step_s": 0.1},
            "constellation": {
                "layout": "hypatia",
                "shells": [
                    {
                        "name": "Kuiper-630",
                        "planes": 34,
                        "sats_per_plane": 34,
                        "phasing": 0,
                        "altitude_km": 630.0,
                        "inclination_deg": 51.9,
                        "mean_motion_rev_day": 14.80,
                    }
                ],
            },
            "ground": {
                "terminals": [
                    {"name": "Manila", "lat_deg": 14.6042, "lon_deg": 120.9822},
                    {"name": "Dalian", "lat_deg": 38.913811, "lon_deg": 121.602322},
                    {"name": "St Petersburg", "lat_deg": 59.929858, "lon_deg": 30.326228},
                ]
            },
            "links": {
                "isl": "plus-grid",
                "isl_max_range_km": MAX_ISL_LENGTH_M / 1e3,
                "gsl_rule": "max-range",
                "gsl_max_range_km": MAX_GSL_LENGTH_M / 1e3,
            },
            "routing": {"modes": ["isl"], "pairs": [[s, d] for s, d, _, _ in PAIRS]},
        }
    )


# --- Reading satgenpy's files ------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """Per-step route state of one pair; unreachable steps have ``hops = first = last = -1``."""

    reachable: NDArray[np.bool_]
    hops: NDArray[np.int64]
    first: NDArray[np.int64]
    last: NDArray[np.int64]

    def state(self, k: int) -> tuple[bool, int, int, int]:
        return (bool(self.reachable[k]), int(self.hops[k]), int(self.first[k]), int(self.last[k]))


def hypatia_rtt_s(name: str) -> NDArray[np.float64]:
    """RTT of every step [s], NaN where unreachable (satgenpy writes 0)."""
    rows = [line.split(",") for line in (DATA / name).read_text().splitlines()]
    assert [int(t) for t, _ in rows] == [k * STEP_NS for k in range(N_STEPS)]
    rtt = np.array([float(v) for _, v in rows]) * 1e-9
    return np.where(rtt > 0.0, rtt, np.nan)


def hypatia_paths(name: str, src: str, dst: str) -> tuple[Series, list[int]]:
    """The path file expanded to every step, and the steps at which the path changes."""
    rows = [line.split(",") for line in (DATA / name).read_text().splitlines()]
    starts = [int(t) // STEP_NS for t, _ in rows]
    assert starts[0] == 0 and all(int(t) % STEP_NS == 0 for t, _ in rows)
    reach = np.zeros(N_STEPS, bool)
    hops, first, last = (np.full(N_STEPS, -1, np.int64) for _ in range(3))
    for i, (_, path) in enumerate(rows):
        steps = slice(starts[i], starts[i + 1] if i + 1 < len(rows) else N_STEPS)
        if path == "Unreachable":
            continue
        nodes = [int(x) for x in path.split("-")]
        assert (nodes[0], nodes[-1]) == (NODE[src], NODE[dst])
        assert all(0 <= n < N_SATS for n in nodes[1:-1])
        reach[steps] = True
        hops[steps] = len(nodes) - 1
        first[steps] = nodes[1]
        last[steps] = nodes[-2]
    return Series(reach, hops, first, last), starts[1:]


# --- The starmesh run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    plan: RunPlan
    summary: dict[str, Any]
    columns: dict[str, NDArray[Any]]

    def pair(self, src: str, dst: str) -> dict[str, NDArray[Any]]:
        """Columns of one pair, one entry per step in time order."""
        c = self.columns
        rows = np.flatnonzero((c["src"] == src) & (c["dst"] == dst))
        rows = rows[np.argsort(c["t_s"][rows], kind="stable")]
        out = {k: v[rows] for k, v in c.items()}
        assert np.array_equal(np.rint(out["t_s"] / STEP_S), np.arange(N_STEPS))
        return out

    def series(self, src: str, dst: str) -> Series:
        p = self.pair(src, dst)
        reach = np.isfinite(p["rtt_ms"])

        def col(name: str) -> NDArray[np.int64]:
            return np.where(reach, np.nan_to_num(p[name], nan=-1.0), -1.0).astype(np.int64)

        return Series(reach, col("hops"), col("src_sat"), col("dst_sat"))

    def gsl_length_m(self, site: str, sat: int, step: int) -> float:
        """starmesh's length of the link between ``site`` and satellite ``sat`` at ``step``."""
        prop = Propagator(self.plan.constellation, self.plan.grid.epoch)
        r, ok = prop.positions_ecef_m(np.array([step * STEP_S]))
        assert ok[0, sat]
        g = self.plan.sites.index(site)
        return float(np.linalg.norm(r[0, sat] - self.plan.sites.r_ecef_m[g]))


@pytest.fixture(scope="module", params=["wgs84", "pyephem"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    scenario = kuiper_scenario(request.param)
    out = tmp_path_factory.mktemp("kuiper630") / "run"
    summary = run_plan(build_plan(scenario), out).to_dict()  # about 5 s on a 2-core machine
    table = pq.read_table(out / "rtt.parquet")
    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if name in ("mode", "src", "dst"):
            columns[name] = np.array(col.to_pylist(), dtype=object)
        else:
            columns[name] = col.to_numpy(zero_copy_only=False).astype(np.float64)
    return Run(build_plan(scenario), summary, columns)


# --- Tests -------------------------------------------------------------------------------------


def test_scenario_is_satgenpys_setting(run: Run):
    plan = run.plan
    assert plan.constellation.n_sats == N_SATS
    assert plan.grid.n_steps == N_STEPS
    assert plan.isl_edges.shape == (2 * N_SATS, 2)  # +Grid: four ISLs per satellite
    assert MAX_GSL_LENGTH_M == pytest.approx(1_260_000.0)
    # satgenpy refuses ISLs that exceed their range, so none may go down in its setting.
    assert run.summary["n_isl"] == 2 * N_SATS


def test_fixture_files_are_consistent():
    """The RTT files say unreachable exactly where the path files do (guards the copies)."""
    for src, dst, path_file, rtt_file in PAIRS:
        hyp, _ = hypatia_paths(path_file, src, dst)
        rtt = hypatia_rtt_s(rtt_file)
        assert np.array_equal(np.isfinite(rtt), hyp.reachable), (src, dst)
    # Hypatia's notes: about 98 of the 2,000 steps are unreachable for St Petersburg.
    hyp, _ = hypatia_paths("networkx_path_1173_to_1229.txt", "Manila", "St Petersburg")
    assert int((~hyp.reachable).sum()) == 98


@pytest.mark.parametrize(("src", "dst", "path_file", "rtt_file"), PAIRS)
def test_routes_match_hypatia_at_every_step(run: Run, src, dst, path_file, rtt_file):
    """Reachability, hops and first/last satellite agree at every step, except where a satellite
    crosses the GSL range limit within the two geometries' difference: there starmesh switches
    one step before or after Hypatia, to the state Hypatia has on the other side of the step."""
    hyp, _ = hypatia_paths(path_file, src, dst)
    sm = run.series(src, dst)
    differ = [k for k in range(N_STEPS) if sm.state(k) != hyp.state(k)]
    assert len(differ) <= MAX_SHIFTED_STEPS, differ
    for k in differ:
        neighbours = [j for j in (k - 1, k + 1) if 0 <= j < N_STEPS]
        assert any(
            hyp.state(j) != hyp.state(k) and sm.state(k) == hyp.state(j) for j in neighbours
        ), f"step {k}: starmesh {sm.state(k)}, Hypatia {hyp.state(k)}"
        # The GSLs used by one side only; one of them must be at the range limit.
        links_sm = {(src, sm.first[k]), (dst, sm.last[k])} if sm.reachable[k] else set()
        links_hyp = {(src, hyp.first[k]), (dst, hyp.last[k])} if hyp.reachable[k] else set()
        margins = [
            abs(run.gsl_length_m(site, int(sat), k) - MAX_GSL_LENGTH_M)
            for site, sat in links_sm ^ links_hyp
        ]
        assert margins and min(margins) <= LINK_TOL_M, (k, margins)


@pytest.mark.parametrize(("src", "dst", "path_file", "rtt_file"), PAIRS)
def test_path_changes_match_hypatia(run: Run, src, dst, path_file, rtt_file):
    """Every path change (including changes of ISL route at equal hops, and to and from
    unreachable) happens at Hypatia's step, or one step off at a GSL range threshold."""
    hyp, hyp_changes = hypatia_paths(path_file, src, dst)
    sm = run.series(src, dst)
    differ = {k for k in range(N_STEPS) if sm.state(k) != hyp.state(k)}
    sm_changes = np.flatnonzero(run.pair(src, dst)["path_changed"] > 0).tolist()
    assert len(sm_changes) == len(hyp_changes), (sm_changes, hyp_changes)
    for a, b in zip(sm_changes, hyp_changes, strict=True):
        assert a == b or (abs(a - b) == 1 and min(a, b) in differ), (sm_changes, hyp_changes)


@pytest.mark.parametrize(("src", "dst", "path_file", "rtt_file"), PAIRS)
def test_rtt_matches_hypatia(run: Run, src, dst, path_file, rtt_file):
    """On the same route, starmesh's RTT is within TOL_RTT_S of satgenpy's at every step."""
    hyp, _ = hypatia_paths(path_file, src, dst)
    sm = run.series(src, dst)
    same = np.array([sm.state(k) == hyp.state(k) for k in range(N_STEPS)]) & hyp.reachable
    assert same.sum() >= N_STEPS - 98 - MAX_SHIFTED_STEPS
    rtt_sm = run.pair(src, dst)["rtt_ms"] * 1e-3
    diff = (rtt_sm - hypatia_rtt_s(rtt_file))[same]
    assert np.isfinite(diff).all()
    worst = int(np.flatnonzero(same)[np.argmax(np.abs(diff))])
    tol = TOL_RTT_S[run.plan.earth_model]
    assert np.abs(diff).max() <= tol, f"{np.abs(diff).max() * 1e6:.3f} us at step {worst}"


def test_manila_dalian_rtt_range_matches_hypatia(run: Run):
    """Hypatia's published Manila -> Dalian extremes (25.23 and 48.17 ms) over the 200 s."""
    rtt = hypatia_rtt_s("networkx_rtt_1173_to_1241.txt")
    assert round(float(rtt.min()) * 1e3, 2) == 25.23
    assert round(float(rtt.max()) * 1e3, 2) == 48.17
    (row,) = [p for p in run.summary["pairs"] if (p["src"], p["dst"]) == ("Manila", "Dalian")]
    assert row["availability"] == 1.0
    tol = TOL_RTT_S[run.plan.earth_model]
    assert row["rtt_min_ms"] * 1e-3 == pytest.approx(float(rtt.min()), abs=tol)
    assert row["rtt_max_ms"] * 1e-3 == pytest.approx(float(rtt.max()), abs=tol)
