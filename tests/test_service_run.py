"""The service model inside runs: scheduler slots, chunk independence, outputs, validation.

The latency components themselves are tested against closed forms in ``test_service.py``;
here: the wiring (plan -> engine -> run folder -> results) and the validation scenarios.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from starmesh.engine import compute_chunk
from starmesh.errors import ScenarioError
from starmesh.plan import build_plan
from starmesh.runner import run_plan_in_memory
from starmesh.scenario import Scenario, load_scenario
from starmesh.service.latency import (
    COMPONENTS,
    md1_bounded_mean_s,
    md1_mean_wait_s,
    md1_wait_bounded_s,
    md1_wait_cdf,
)
from starmesh.service.scheduler import slot_index

VALIDATION = Path(__file__).parents[1] / "src" / "starmesh" / "scenarios" / "validation"


def _belgium(duration_s: float = 40.0, **service: object) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "svc",
            "time": {"start_utc": "2022-03-01T12:00:00Z", "duration_s": duration_s},
            "constellation": {"preset": "starlink-550"},
            "ground": {
                "terminals": [
                    {"name": "Louvain", "lat_deg": 50.67, "lon_deg": 4.61},
                    {"name": "Paris-terminal", "lat_deg": 48.86, "lon_deg": 2.35},
                ],
                "gateways": ["Aerzen", "Usingen", "Villenave-d'Ornon"],
                "pops": ["Paris", "Frankfurt am Main"],
            },
            # Gateways backhaul to every PoP (Starlink's terrestrial backbone), so that a home
            # PoP is reachable from any gateway.
            "links": {"isl": "none", "gateway_pop": "all"},
            "routing": {"modes": ["bent-pipe"]},
            "service": service,
        }
    )


# --- AQM-bounded queues: closed forms --------------------------------------------------------


def test_bounded_wait_is_md1_conditioned_on_the_bound() -> None:
    d, rho, b = 1e-3, 0.8, 3e-3
    u = (np.arange(20_000) + 0.5) / 20_000
    w = md1_wait_bounded_s(u, rho, d, b)
    assert w.max() <= b
    # Empirical CDF of the samples against F(x) / F(B) (Erlang's exact M/D/1 CDF).
    x = np.linspace(0.2e-3, b, 12)
    want = md1_wait_cdf(x, rho, d) / md1_wait_cdf(np.array([b]), rho, d)[0]
    got = np.array([np.mean(w <= xi) for xi in x])
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_bounded_mean_tends_to_pollaczek_khinchine() -> None:
    d = 1e-3
    for rho in (0.3, 0.7):
        # A bound far in the tail changes nothing: the P-K mean rho D / (2 (1 - rho)).
        np.testing.assert_allclose(
            md1_bounded_mean_s(rho, d, 0.5), md1_mean_wait_s(rho, d), rtol=2e-3
        )
    # Saturated (offered >= capacity): finite, below the bound, above a lighter load's mean;
    # near rho = 1 the M/D/1 tail is flat, so the wait conditioned on [0, B] is near uniform
    # (mean ~ B / 2 less the frame-scale structure near 0).
    m = float(md1_bounded_mean_s(1.5, d, 5e-3))
    assert float(md1_bounded_mean_s(0.5, d, 5e-3)) < m < 5e-3
    assert abs(m - 2.5e-3) < 0.5e-3


# --- Scenario and plan ----------------------------------------------------------------------


def test_service_is_the_default_and_geometric_writes_no_service() -> None:
    plan = build_plan(_belgium())
    assert plan.service is not None
    geo = build_plan(_belgium(model="geometric"))
    assert geo.service is None
    res = run_plan_in_memory(geo, executor="serial")
    assert "service" not in res.summary.extra
    assert "rtt_service" not in res.dataset


def test_home_pop_from_the_region_table_or_nearest() -> None:
    home = build_plan(_belgium())
    # The region table (clarkzjw/starlink-geoip-data) homes Belgium on Frankfurt (the
    # scenario's Frankfurt PoP stands for it) although Paris is nearer to Louvain-la-Neuve.
    assert home.pair_names[1][0] == "Frankfurt am Main"
    near = build_plan(_belgium(pop_policy="nearest"))
    assert near.pair_names[1] == ["Paris", "Paris"]


def test_bad_service_fields_name_the_field() -> None:
    with pytest.raises(ValueError, match="rtt_quantiles"):
        _belgium(rtt_quantiles=[0.95, 0.5])
    with pytest.raises(ValueError, match="utilisation"):
        _belgium(utilisation=1.0)
    with pytest.raises((ValueError, ScenarioError), match="scheduler_policy"):
        _belgium(scheduler_policy="fastest")


def test_pre2024_excess_follows_the_start_date_and_can_be_set() -> None:
    """The 2022 network carries SpaceX's early-2024 before/after (15.5 ms median); a run from
    2024-01-01 on does not; ``pre2024_excess_median_ms`` overrides the date; bad values name
    the field."""

    def excess(start: str, **service: object) -> float:
        sc = _belgium(**service)
        sc = sc.model_copy(update={"time": sc.time.model_copy(update={"start_utc": start})})
        plan = build_plan(sc)
        assert plan.service is not None
        return plan.service.params.pre2024_excess_median_s

    assert excess("2022-03-01T12:00:00Z") == pytest.approx(15.5e-3)
    assert excess("2023-12-31T23:59:00Z") == pytest.approx(15.5e-3)
    assert excess("2024-01-01T00:00:00Z") == 0.0
    assert excess("2025-06-15T00:00:00Z") == 0.0
    assert excess("2022-03-01T12:00:00Z", pre2024_excess_median_ms=0.0) == 0.0
    assert excess("2025-06-15T00:00:00Z", pre2024_excess_median_ms=8.0) == pytest.approx(8e-3)
    with pytest.raises(ValueError, match="pre2024_excess_median_ms"):
        _belgium(pre2024_excess_median_ms=-1.0)


def test_pre2024_excess_shifts_the_median_and_nothing_else() -> None:
    # Same run with and without the excess: propagation, schedule and speed tests identical,
    # the median RTT higher by about the excess's median (the other parts vary little).
    on = compute_chunk(build_plan(_belgium()), 0, 40)
    off = compute_chunk(build_plan(_belgium(pre2024_excess_median_ms=0.0)), 0, 40)
    assert on.service is not None and off.service is not None
    np.testing.assert_array_equal(on.rtt_s, off.rtt_s)
    np.testing.assert_array_equal(on.service.serving, off.service.serving)
    np.testing.assert_array_equal(on.service.download_bps, off.service.download_bps)
    shift = np.median(on.service.rtt_q_s[0, 0] - off.service.rtt_q_s[0, 0])
    assert 12e-3 < shift < 19e-3
    i = list(COMPONENTS).index("pre2024_excess")
    np.testing.assert_allclose(on.service.mean_s[..., i], 15.5e-3 / math.log(2.0))
    assert (off.service.mean_s[..., i] == 0.0).all()


# --- Engine: slots and chunk independence ----------------------------------------------------


@pytest.mark.parametrize("policy", ["hold", "random"])
def test_schedule_is_independent_of_chunking(policy: str) -> None:
    plan = build_plan(_belgium(duration_s=50.0, scheduler_policy=policy))
    whole = compute_chunk(plan, 0, 50)
    parts = [compute_chunk(plan, a, min(a + 7, 50)) for a in range(0, 50, 7)]
    assert whole.service is not None
    for name in ("serving", "handover", "download_bps", "upload_bps"):
        cat = np.concatenate([getattr(p.service, name) for p in parts])
        assert np.array_equal(getattr(whole.service, name), cat), name
    cat_q = np.concatenate([p.service.rtt_q_s for p in parts if p.service], axis=2)
    assert np.array_equal(whole.service.rtt_q_s, cat_q)
    assert np.array_equal(whole.rtt_s, np.concatenate([p.rtt_s for p in parts], axis=1))


def test_serving_satellite_changes_only_at_slot_boundaries() -> None:
    plan = build_plan(_belgium(duration_s=120.0))
    res = compute_chunk(plan, 0, 120)
    assert res.service is not None
    sv = plan.service
    assert sv is not None
    slot = slot_index(
        res.t_s,
        slot_s=sv.slot_s,
        offset_s=sv.slot_offset_s,
        epoch_second_of_minute=sv.epoch_second_of_minute,
    )
    s = res.service.serving
    moved = (s[1:] != s[:-1]) & (s[1:] >= 0) & (s[:-1] >= 0)
    boundary = slot[1:] != slot[:-1]
    assert moved.any()  # 2 minutes of LEO: there are handovers
    assert not (moved & ~boundary[:, None]).any()
    # The routed path uses the scheduled satellite (terminal GSLs are restricted to it).
    assert np.isfinite(res.rtt_s).all()
    assert np.array_equal(res.src_sat[0], s)


def test_service_rtt_adds_components_to_the_scheduled_propagation() -> None:
    plan = build_plan(_belgium())
    res = compute_chunk(plan, 0, 40)
    sv = res.service
    assert sv is not None
    mean = sv.mean_s[0]
    # Component 0 is the geometric RTT of the scheduled path, exactly.
    np.testing.assert_array_equal(mean[..., 0], res.rtt_s[0])
    # The median lies above propagation + the deterministic access and processing delays.
    assert (sv.rtt_q_s[0, 0] > res.rtt_s[0] + 3e-3).all()
    assert (np.diff(sv.rtt_q_s[0], axis=0) >= 0).all()  # quantiles increase


def test_run_folder_service_files_and_chunking_bytes(tmp_path: Path) -> None:
    from starmesh.runner import run_scenario

    a, b = tmp_path / "a", tmp_path / "b"
    sc = _belgium(duration_s=30.0)
    data = sc.model_dump(mode="json", exclude_none=True)
    data["run"] = {"chunk_steps": 7}
    run_scenario(sc, a)
    run_scenario(Scenario.model_validate(data), b)
    for folder in ("service.parquet", "terminals.parquet", "rtt.parquet"):
        ta = pq.read_table(a / folder)
        tb = pq.read_table(b / folder)
        assert ta.equals(tb), folder
    import json

    sa = json.loads((a / "summary.json").read_text())["service"]
    sb = json.loads((b / "summary.json").read_text())["service"]
    assert sa == sb
    assert abs(sum(sa["modes"]["bent-pipe"]["share"].values()) - 1.0) < 1e-9
    from starmesh.api import open_run

    ds = open_run(a).dataset
    mem = run_plan_in_memory(build_plan(sc), executor="serial").dataset
    np.testing.assert_array_equal(ds["rtt_service"].values, mem["rtt_service"].values)
    np.testing.assert_array_equal(ds["serving_sat"].values, mem["serving_sat"].values)
    # The upload speed test is a column next to the download's, read back as ``upload``.
    names = pq.read_table(a / "terminals.parquet").column_names
    assert names[names.index("download_mbps") + 1] == "upload_mbps"
    np.testing.assert_array_equal(ds["upload"].values, mem["upload"].values)
    assert all("upload_mbps_median" in t for t in sa["terminals"])


def test_speed_test_medians_stream_by_blocks_of_terminals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary reads each terminal's speed tests back a block of terminals at a time (a
    day of W4 would need 1.5 GB at once): blocks of one terminal give the same summary, and
    the medians are those of terminals.parquet's served rows."""
    import json

    import starmesh.results as R
    from starmesh.runner import run_scenario

    # US terminals under the density load model: their speed tests differ from each other.
    sc = load_scenario(VALIDATION / "us-2025q1.toml")
    sc = sc.model_copy(update={"time": sc.time.model_copy(update={"duration_s": 30.0})})
    run_scenario(sc, tmp_path / "whole")
    monkeypatch.setattr(R, "_SUMMARY_BLOCK_BYTES", 8 * 2 * 30 * 3)  # 3 terminals a block (2 keys)
    run_scenario(sc, tmp_path / "blocks")
    a = json.loads((tmp_path / "whole" / "summary.json").read_text())["service"]
    b = json.loads((tmp_path / "blocks" / "summary.json").read_text())["service"]
    assert a == b
    assert len({x["download_mbps_median"] for x in a["terminals"]}) > 3
    t = pq.read_table(tmp_path / "whole" / "terminals.parquet").to_pandas()
    for entry in a["terminals"]:
        rows = t[(t["terminal"] == entry["site"]) & (t["download_mbps"] > 0)]
        assert entry["download_mbps_median"] == pytest.approx(rows["download_mbps"].median())
        assert entry["upload_mbps_median"] == pytest.approx(rows["upload_mbps"].median())


def test_run_folder_without_upload_column_still_opens(tmp_path: Path) -> None:
    """A run folder written before the upload test (no ``upload_mbps`` column) opens: its
    dataset has the download and no upload variable."""
    from starmesh.runner import run_scenario

    run_scenario(_belgium(duration_s=10.0), tmp_path)
    for part in sorted((tmp_path / "terminals.parquet").glob("*.parquet")):
        t = pq.read_table(part)
        pq.write_table(t.drop_columns(["upload_mbps"]), part)
    from starmesh.io.runfolder import read_run, read_series, read_service
    from starmesh.results import ServiceSeries

    # The report's reader (open_run would refuse the rewritten files: their hashes changed).
    run = read_run(tmp_path, verify=False)
    pairs = sorted({(p["src"], p["dst"]) for p in run.summary["service"]["pairs"]})
    series = read_series(run, pairs)
    assert series is not None
    svc = read_service(run, series)
    assert isinstance(svc, ServiceSeries)
    assert svc.upload_mbps is None and svc.download_mbps.shape == (10, 2)


# --- Validation against measurements (README table) -------------------------------------------


def _validation(name: str, duration_s: float) -> tuple[dict, object]:
    sc = load_scenario(VALIDATION / f"{name}.toml")
    sc = sc.model_copy(update={"time": sc.time.model_copy(update={"duration_s": duration_s})})
    res = run_plan_in_memory(build_plan(sc), executor="serial")
    return res.summary.extra["service"], res.dataset


@pytest.fixture(scope="module")
def belgium() -> tuple[dict, object]:
    return _validation("belgium-2022", 60.0)


@pytest.fixture(scope="module")
def us() -> tuple[dict, object]:
    return _validation("us-2025", 20.0)


def test_validation_belgium_2022_median_rtt(belgium: tuple[dict, object]) -> None:
    """Michel et al.'s 50 ms median (IMC 2022) against the 2022 network: 47.0 ms at 300 s
    (ratio 0.94), of which the pre-2024 excess (SpaceX's US before/after of early 2024, not
    fitted here) is 15.5 ms at the median; without it the model gives 31.2 ms (0.62), the miss
    the README traces. Within its stated range (10-22.8 ms) the row spans 0.83-1.09."""
    sv, _ = belgium
    mode = sv["modes"]["bent-pipe"]
    assert abs(mode["rtt_p50_ms_pooled"] / 50.0 - 1.0) <= 0.25
    # The pre-2024 tail (SpaceX: p99 above 150 ms before, below 65 ms after, in the US).
    assert mode["rtt_p99_ms_pooled"] > 65.0


def test_validation_belgium_2022_breakdown(belgium: tuple[dict, object]) -> None:
    """The parts of the Belgium figure the README's gap analysis rests on: the PoP -> Amsterdam
    anchor leg is the closed form ``2 d x 1.5 x 1.467 / c`` with ``d`` the geodesic Frankfurt PoP
    (frntdeu1, data/starlink-pops-2025.csv) -> Amsterdam from pyproj (WGS84; the model's sphere
    differs by < 0.5 %), and the fleet is the 2019-2021 v1.0 shell only."""
    import pyproj

    from starmesh.constants import C_M_S, FIBRE_GROUP_INDEX

    sv, ds = belgium
    _, _, d_m = pyproj.Geod(ellps="WGS84").inv(8.73463, 50.11967, 4.90, 52.37)
    want_ms = 2.0 * d_m * 1.5 * FIBRE_GROUP_INDEX / C_M_S * 1e3
    got = ds["rtt_component"].sel(component="internet").values  # type: ignore[attr-defined]
    np.testing.assert_allclose(got, want_ms, rtol=5e-3)
    assert 5.2 < want_ms < 5.5  # 366 km: the near end of a European anchor set
    assert sv["fleet"] == {"v1.0": 1584}
    # The post-2024 access part (everything but the Internet leg and the pre-2024 excess): the
    # README quotes it (25.8 ms at 300 s). The excess's mean is the exponential's, median / ln 2.
    mean = sv["modes"]["bent-pipe"]["mean_ms"]
    access = sum(v for k, v in mean.items() if k not in ("internet", "pre2024_excess"))
    assert 24.0 < access < 28.0
    assert mean["pre2024_excess"] == pytest.approx(15.5 / math.log(2.0), rel=1e-9)


def test_validation_us_2025_median_rtt_and_tail(us: tuple[dict, object]) -> None:
    sv, _ = us
    mode = sv["modes"]["bent-pipe"]
    assert abs(mode["rtt_p50_ms_pooled"] / 25.7 - 1.0) <= 0.25
    # < 1 % of measurements above 55 ms: the pooled 99th percentile is at most 55 ms.
    assert mode["rtt_p99_ms_pooled"] <= 55.0


@pytest.fixture(scope="module")
def us_q1() -> tuple[dict, object]:
    # The whole shipped duration (300 s, 20 scheduler slots): ~8 s; 20 s would hold 2 slots.
    return _validation("us-2025q1", 300.0)


def test_validation_us_2025q1_median_download(us_q1: tuple[dict, object]) -> None:
    """Ookla's Q1 2025 US median download, 104.7 Mbit/s, against the Q1 2025 fleet still in
    the May-2026 set (us-2025q1.toml): 141.0 Mbit/s, ratio 1.347, at the edge of the +-35 %
    tolerance. Not a strong agreement: the scenario holds ~88 % of Q1 2025's operational
    satellites (a complete fleet would give ~1.5-1.65), and within the stated uncertainty of the
    subscriber count (+-40 %) the model's median spans 52-220 Mbit/s (README, Validation against
    measurements)."""
    _, ds = us_q1
    dl = ds["download"].values  # type: ignore[attr-defined]
    served = ds["serving_sat"].values >= 0  # type: ignore[attr-defined]
    # Over served terminal-steps: an overloaded cell's 0 Mbit/s counts (excluding it would
    # bias the median up).
    assert abs(np.median(dl[served]) / 104.7 - 1.0) <= 0.35


def test_validation_us_2025q1_median_upload(us_q1: tuple[dict, object]) -> None:
    """Ookla's Q1 2025 US median upload, 14.84 Mbit/s (telecompetitor.com / rcrwireless.com,
    2025), against the same run: 20.0 Mbit/s, ratio 1.348 against the published 14.84 (1.351
    against the rounded 14.8), at the edge of the +-35 % tolerance. Not a discriminating
    agreement: every served test sits at the terminal's 20 Mbit/s upload ceiling (the top of
    Starlink's residential 5-20 Mbit/s range, an input), the uplink cell and satellite shares
    never bind (upstream is 8/92 of downstream on a quarter of the capacity); the second
    assertion pins that, so a load model that starts to bind sends the README row back for
    review."""
    _, ds = us_q1
    ul = ds["upload"].values  # type: ignore[attr-defined]
    served = ul[ds["serving_sat"].values >= 0]  # type: ignore[attr-defined]
    assert abs(np.median(served) / 14.84 - 1.0) <= 0.35
    assert np.all(served == 20.0)


def test_validation_us_2025q1_median_rtt(us_q1: tuple[dict, object]) -> None:
    sv, _ = us_q1
    mode = sv["modes"]["bent-pipe"]
    assert abs(mode["rtt_p50_ms_pooled"] / 25.7 - 1.0) <= 0.25
    assert mode["rtt_p99_ms_pooled"] <= 55.0
    assert sv["fleet"] == {"v1.0": 391, "v1.5": 2473, "v2-mini": 2571}


def test_validation_us_download_is_a_distribution_not_the_ceiling(
    us_q1: tuple[dict, object],
) -> None:
    """With beam time-sharing a cell gets a share of its satellite, not a whole beam: the speed
    tests over terminals x steps spread below the 220 Mbit/s ceiling instead of sitting on it
    (planting the old whole-beam cell capacity puts every test on the ceiling)."""
    _, ds = us_q1
    dl = ds["download"].values  # type: ignore[attr-defined]
    served = dl[ds["serving_sat"].values >= 0]  # type: ignore[attr-defined]
    assert np.mean(served >= 220.0 - 1e-6) < 0.5
    assert np.median(served) < 200.0
    assert np.quantile(served, 0.1) < 0.5 * np.median(served)


# --- Loads: traffic model and subscriber density ---------------------------------------------


def test_queueing_follows_the_traffic_model_utilisation() -> None:
    def queueing_ms(terminals: int) -> float:
        data = _belgium(duration_s=6.0).model_dump(mode="json", exclude_none=True)
        data["time"]["step_s"] = 2.0
        data["traffic"] = {"model": "access", "terminals_per_site": terminals, "down_mbps": 25.0}
        plan = build_plan(Scenario.model_validate(data))
        res = compute_chunk(plan, 0, plan.grid.n_steps)
        assert res.service is not None
        assert res.service.rho_user.max() <= 1.0
        return float(np.mean(res.service.mean_s[..., 4]) * 1e3)

    light, heavy = queueing_ms(1), queueing_ms(100_000)
    # One terminal's 25 Mbit/s barely loads a satellite; 100,000 terminals saturate their
    # access links: the two user queues sit near their 5 ms AQM bound (mean ~2.3 ms each, M/D/1
    # conditioned on the bound), bounded, never infinite.
    assert light < 1.0
    assert 4.0 < heavy < 4 * 5.0


def test_speed_test_falls_with_subscriber_density() -> None:
    def median_mbps(density: float) -> float:
        plan = build_plan(_belgium(duration_s=10.0, subscribers_per_km2=density))
        res = compute_chunk(plan, 0, 10)
        assert res.service is not None
        served = res.service.serving >= 0
        return float(np.median(res.service.download_bps[served]) / 1e6)

    sparse, mid, dense = median_mbps(0.001), median_mbps(0.01), median_mbps(300.0)
    # 0.25 subscribers per res-5 cell: ~22 % of cells occupied, few enough per satellite that
    # each cell's share of beam time exceeds the terminal's own ceiling.
    assert sparse == pytest.approx(220.0)
    # Ten times denser: most cells occupied, the beams hop over ~1,000 cells per satellite of
    # the 2022 shell and the cell's share binds below the ceiling.
    assert 0.0 < mid < 0.8 * sparse
    assert dense < 0.5 * mid


def _footprint_m2(alt_m: float, eps_rad: float) -> float:
    """Closed form of a satellite's footprint on the mean sphere [m^2]: the spherical cap
    where it is above ``eps_rad``, of Earth-central half-angle
    ``arccos(R cos eps / (R + h)) - eps``."""
    from starmesh.constants import EARTH_MEAN_RADIUS_M as R

    lam = np.arccos(R * np.cos(eps_rad) / (R + alt_m)) - eps_rad
    return float(2 * np.pi * R**2 * (1 - np.cos(lam)))


@pytest.mark.parametrize("partition", ["capacity", "count"])
def test_mixed_fleet_speed_test_against_a_hand_computation(partition: str) -> None:
    """The real May-2026 set with per-satellite generations: the speed tests of three US
    terminals at each step recomputed by hand from the geometry (satellites above 25 deg, from
    frames.elevation_rad), capacities from Starlink's numbering (v2 mini from STARLINK-30000:
    96 Gbit/s, earlier 20 Gbit/s; independent of the launch table) and the closed forms of the
    load model (footprint cap; cells handed out by capacity or by count; processor sharing).
    By capacity the serving satellite's own capacity cancels out of its cells' share; by count
    it does not (planting the fleet mean for it fails the count case)."""
    import re

    from starmesh.constants import EARTH_MEAN_RADIUS_M as R
    from starmesh.frames import elevation_rad
    from starmesh.plan import make_propagator
    from starmesh.service.throughput import beam_capacity_bps

    dens_km2, demand_mbps = 0.5, 3.366
    sc = Scenario.model_validate(
        {
            "name": "mixed",
            "time": {"start_utc": "2026-05-13T01:00:00Z", "duration_s": 3.0},
            "constellation": {"preset": "starlink-2026"},
            "ground": {
                "terminals": [
                    {"name": "KS", "lat_deg": 39.5, "lon_deg": -98.5},
                    {"name": "WA", "lat_deg": 47.0, "lon_deg": -120.5},
                    {"name": "MS", "lat_deg": 33.0, "lon_deg": -89.5},
                ],
                "pops": ["Dallas"],
            },
            "routing": {"modes": ["isl"]},
            "service": {
                "subscribers_per_km2": dens_km2,
                "busy_hour_demand_mbps": demand_mbps,
                "pop_policy": "nearest",
                "cell_partition": partition,
            },
        }
    )
    plan = build_plan(sc)
    sv = plan.service
    assert sv is not None
    names = plan.constellation.sat_names
    cap = np.array(
        [96e9 if int(re.match(r"STARLINK-(\d+)", n).group(1)) >= 30_000 else 20e9 for n in names]
    )
    np.testing.assert_array_equal(sv.sat_capacity_bps, cap)
    assert sv.fleet == {"v1.0": 397, "v1.5": 2475, "v2-mini": 5724}
    res = compute_chunk(plan, 0, plan.grid.n_steps)
    assert res.service is not None
    prop = make_propagator(plan.constellation, plan.grid.epoch, plan.earth_model, plan.dut1_s)
    r, _ = prop.positions_ecef_m(plan.grid.t_s(0, plan.grid.n_steps))
    dens, d = dens_km2 * 1e-6, demand_mbps * 1e6
    eps = np.radians(25.0)
    served_caps, rates = set(), []
    for j, g in enumerate(sv.terminals):
        site_r, up = plan.sites.r_ecef_m[g], plan.sites.up[g]
        a_cell = float(sv.cell_area_m2[j])
        occ = 1.0 - np.exp(-dens * a_cell)
        for k in range(plan.grid.n_steps):
            el = elevation_rad(site_r[None, :], up[None, :], r[k])
            s = int(res.service.serving[k, j])
            # Capacity in view, or the serving satellite's capacity x satellites in view.
            c_view = cap[el >= eps].sum() if partition == "capacity" else cap[s] * (el >= eps).sum()
            assert el[s] >= eps
            foot = _footprint_m2(np.linalg.norm(r[k, s]) - R, eps)
            beam = float(beam_capacity_bps(np.linalg.norm(r[k, s] - site_r), el[s])[0])
            cells = foot / a_cell * occ * cap[s] / c_view
            cell_cap = min(beam, cap[s] / cells)
            rho_cell = dens * a_cell * d / cell_cap
            rho_sat = dens * foot * d / c_view
            want = min(
                cell_cap * (1 - rho_cell) if rho_cell < 1 else 0.0,
                cap[s] * (1 - rho_sat) if rho_sat < 1 else 0.0,
                220e6,
            )
            assert res.service.download_bps[k, j] == pytest.approx(want, rel=1e-9)
            served_caps.add(cap[s])
            rates.append(want)
    # Both generations serve, and the cell's share binds below the terminal's ceiling.
    assert served_caps == {20e9, 96e9}
    if partition == "capacity":
        assert sum(0.0 < x < 220e6 for x in rates) >= 3
    else:
        # By count the v1.5 cells are overloaded (0) while v2 mini cells reach the ceiling.
        assert {0.0, 220e6} <= set(rates)


@pytest.mark.parametrize(
    ("dens_km2", "beams", "binds"),
    [(1e-5, 1.0, "beam"), (0.1, 1.0, "share"), (None, 1.0, "beam"), (None, 64.0, "satellite")],
)
def test_upload_speed_test_against_a_hand_computation(
    dens_km2: float | None, beams: float, binds: str
) -> None:
    """The upload test of two US terminals recomputed by hand: the uplink budget's capacity of
    the terminal -> serving satellite link (``LinkBudget.evaluate`` of the Ku uplink at the
    slant range and elevation from ``frames.elevation_rad``), the satellite's uplink capacity a
    quarter of its downlink (Walker shell: the 58 Gbit/s "mix"), the cells it serves (footprint
    cap x occupancy / satellites in view) and the upstream demand 8/92 of the downstream, under
    processor sharing; the ceiling is lifted so that the shares show. Sparse: the cell gets the
    whole uplink beam (354 Mbit/s, below the downlink beam's ~1 Gbit/s); dense: the satellite's
    uplink share binds and loads the cell; without a density (the fallback utilisation 0.5 on
    every access link) the beam binds with one beam per cell, the satellite's own uplink
    capacity (0.5 x 14.5 Gbit/s) with 64. Planting the downlink beam, the downlink satellite
    capacity, the downstream demand or the download ceiling in the upload path fails at least
    one case."""
    from starmesh.constants import EARTH_MEAN_RADIUS_M as R
    from starmesh.frames import elevation_rad
    from starmesh.linkbudget import starlink_ku_user
    from starmesh.plan import make_propagator

    demand_mbps = 3.366
    sc = Scenario.model_validate(
        {
            "name": "upload",
            "time": {"start_utc": "2026-05-13T01:00:00Z", "duration_s": 3.0},
            "constellation": {"preset": "starlink-550"},
            "ground": {
                "terminals": [
                    {"name": "KS", "lat_deg": 39.5, "lon_deg": -98.5},
                    {"name": "MS", "lat_deg": 33.0, "lon_deg": -89.5},
                ],
                "pops": ["Dallas"],
            },
            "routing": {"modes": ["isl"]},
            "service": {
                "subscribers_per_km2": dens_km2,
                "busy_hour_demand_mbps": demand_mbps,
                "pop_policy": "nearest",
                "terminal_up_max_mbps": 100_000.0,
                "beams_per_cell": beams,
            },
        }
    )
    plan = build_plan(sc)
    sv = plan.service
    assert sv is not None
    assert sv.up_demand_bps == pytest.approx(demand_mbps * 1e6 * 8 / 92, rel=1e-12)
    cap_dn = 58e9
    np.testing.assert_array_equal(sv.sat_capacity_bps, cap_dn)
    cap = 0.25 * cap_dn
    res = compute_chunk(plan, 0, plan.grid.n_steps)
    assert res.service is not None
    prop = make_propagator(plan.constellation, plan.grid.epoch, plan.earth_model, plan.dut1_s)
    r, _ = prop.positions_ecef_m(plan.grid.t_s(0, plan.grid.n_steps))
    dens, d = (dens_km2 or 0.0) * 1e-6, demand_mbps * 1e6 * 8 / 92
    eps = np.radians(25.0)
    up_budget = starlink_ku_user().uplink
    n_checked = 0
    for j, g in enumerate(sv.terminals):
        site_r, up = plan.sites.r_ecef_m[g], plan.sites.up[g]
        a_cell = float(sv.cell_area_m2[j])
        occ = 1.0 - np.exp(-dens * a_cell)
        for k in range(plan.grid.n_steps):
            s = int(res.service.serving[k, j])
            if s < 0:
                continue
            el = elevation_rad(site_r[None, :], up[None, :], r[k])
            n_vis = int((el >= eps).sum())
            foot = _footprint_m2(np.linalg.norm(r[k, s]) - R, eps)
            q = up_budget.evaluate(np.array([np.linalg.norm(r[k, s] - site_r)]), el[s : s + 1])
            beam = float(q.capacity_bps[0])
            if dens_km2 is None:
                cell_cap, rho_cell, rho_sat = beams * beam, 0.5, 0.5
            else:
                cells = foot / a_cell * occ / n_vis
                cell_cap = min(beam, cap / cells)
                rho_cell = dens * a_cell * d / cell_cap
                rho_sat = dens * foot * d / (cap * n_vis)
            want = min(
                cell_cap * (1 - rho_cell) if rho_cell < 1 else 0.0,
                cap * (1 - rho_sat) if rho_sat < 1 else 0.0,
            )
            assert res.service.upload_bps[k, j] == pytest.approx(want, rel=1e-9)
            if binds == "beam":
                assert cell_cap == beam and 300e6 < beam < 400e6 and want < cap * (1 - rho_sat)
            elif binds == "satellite":
                assert want == 0.5 * cap < 0.5 * cell_cap
            else:
                assert cell_cap < beam and 0.0 < want < 0.9 * cell_cap
            n_checked += 1
    assert n_checked >= 4


def test_upload_is_capped_by_the_terminal_and_rises_with_fewer_subscribers() -> None:
    """At the sourced defaults the upload test of a lightly loaded terminal is its 20 Mbit/s
    ceiling; at a density where the uplink share binds it falls below the ceiling."""

    def median_up_mbps(density: float) -> float:
        plan = build_plan(_belgium(duration_s=10.0, subscribers_per_km2=density))
        res = compute_chunk(plan, 0, 10)
        assert res.service is not None
        served = res.service.serving >= 0
        return float(np.median(res.service.upload_bps[served]) / 1e6)

    assert median_up_mbps(0.001) == pytest.approx(20.0)
    assert 0.0 < median_up_mbps(0.1) < 20.0


def test_bent_pipe_scheduler_assigns_only_satellites_that_see_a_gateway():
    """Without laser links a terminal is useful only on a satellite that sees a gateway: the
    scheduler's bent-pipe assignment keeps the geometric bent-pipe availability (planting the
    old rule, any satellite in view, drops it to about a third here)."""
    import starmesh

    data = {
        "name": "bp",
        "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 120.0, "step_s": 2.0},
        "constellation": {"preset": "starlink-550"},
        "ground": {
            "terminals": ["Kyiv", "Lviv", "Kharkiv"],
            "gateways": ["Wola-Krobowska"],
            "pops": ["Warsaw"],
        },
        "links": {"gateway_pop": "all"},
        "routing": {"modes": ["isl", "bent-pipe"]},
    }
    geo = starmesh.run({**data, "service": {"model": "geometric"}})
    svc = starmesh.run(data)
    for mode in ("isl", "bent-pipe"):
        a_geo = [p.availability for p in geo.summary.pairs_of(mode)]
        a_svc = [p.availability for p in svc.summary.pairs_of(mode)]
        # The scheduler holds a satellite for a 15-s slot, so it may lose a few steps at the
        # edge of the gateway's reach, never most of them.
        assert min(a_svc) >= min(a_geo) - 0.1, (mode, a_geo, a_svc)
