"""Traffic in whole runs: flows on their paths, max-min fair rates under link capacities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from starmesh.cli import app
from starmesh.plan import build_plan
from starmesh.runner import run_plan
from starmesh.scenario import parse_scenario

runner = CliRunner()

BASE = {
    "name": "traffic",
    "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 30.0, "step_s": 3.0},
    "constellation": {"preset": "starlink-550"},
    "ground": {
        "terminals": ["Kyiv", "Kharkiv", "Odesa", "Lviv"],
        "gateways": ["Wola-Krobowska", "Kaunas"],
        "pops": ["Warsaw"],
    },
    "links": {"gateway_pop": "all"},
    "routing": {"modes": ["isl", "bent-pipe"]},
    "traffic": {"model": "access", "terminals_per_site": 2000, "down_mbps": 25.0, "up_mbps": 3.0},
}


def _run(tmp: Path, data: dict, name: str = "r") -> tuple[dict, object, object, object]:
    run_plan(build_plan(parse_scenario(data)), tmp / name)
    out = tmp / name
    return (
        json.loads((out / "summary.json").read_text()),
        pq.read_table(out / "flows.parquet").to_pandas(),
        pq.read_table(out / "links.parquet").to_pandas(),
        pq.read_table(out / "resources.parquet").to_pandas(),
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("traffic"), BASE)


def test_rates_respect_demand_and_capacity(base):
    summary, flows, links, _res = base
    n_steps, n_modes = 10, 2
    assert len(flows) == n_steps * n_modes * 8  # 4 sites x (down, up)
    assert (flows["rate_mbps"] <= flows["demand_mbps"] * (1 + 1e-6) + 1e-6).all()
    assert (links["utilisation"] <= 1 + 1e-6).all()
    # Demand exceeds the shared links here: some flows are cut, and say by what.
    assert (flows["bottleneck"] >= 0).any()
    t = summary["traffic"]
    assert 0 < t["modes"]["isl"]["unmet_fraction"] < 1
    assert 0 < t["modes"]["isl"]["jain_index_mean"] <= 1
    assert {r["site"] for r in t["sites"]} == {"Kyiv", "Kharkiv", "Odesa", "Lviv"}
    for r in t["sites"]:
        assert r["down_mbps_per_terminal"] <= r["down_demand_mbps_per_terminal"] + 1e-9


def test_bottlenecks_are_saturated(base):
    _summary, flows, links, _res = base
    sat = links[links["utilisation"] > 1 - 1e-6]
    keys = set(zip(sat["t_s"], sat["mode"], sat["resource"], strict=True))
    cut = flows[flows["bottleneck"] >= 0]
    for t_s, mode, r in zip(cut["t_s"], cut["mode"], cut["bottleneck"], strict=True):
        assert (t_s, mode, r) in keys


def test_doubling_capacities_and_demands_doubles_rates(base, tmp_path):
    _summary, flows, _links, _res = base
    from starmesh.capacity import LinkCapacities

    c = LinkCapacities()
    double = {
        **BASE,
        "traffic": {
            **BASE["traffic"],
            "down_mbps": 50.0,
            "up_mbps": 6.0,
            "capacity": {
                "sat_user_down_gbps": 2 * c.sat_user_down_bps / 1e9,
                "sat_user_up_gbps": 2 * c.sat_user_up_bps / 1e9,
                "sat_feeder_down_gbps": 2 * c.sat_feeder_down_bps / 1e9,
                "sat_feeder_up_gbps": 2 * c.sat_feeder_up_bps / 1e9,
                "gateway_down_gbps": 2 * c.gateway_down_bps / 1e9,
                "gateway_up_gbps": 2 * c.gateway_up_bps / 1e9,
                "isl_gbps": 2 * c.isl_bps / 1e9,
                "terminal_down_mbps": 2 * c.terminal_down_bps / 1e6,
                "terminal_up_mbps": 2 * c.terminal_up_bps / 1e6,
                "fibre_gbps": 2 * c.fibre_bps / 1e9,
            },
        },
    }
    _s2, flows2, _l2, _r2 = _run(tmp_path, double)
    np.testing.assert_allclose(flows2["rate_mbps"], 2 * flows["rate_mbps"], rtol=1e-5)


def test_zero_demand_zero_load(tmp_path):
    data = {**BASE, "traffic": {**BASE["traffic"], "down_mbps": 0.0, "up_mbps": 0.0}}
    summary, flows, links, _res = _run(tmp_path, data)
    assert (flows["rate_mbps"] == 0).all() and len(links) == 0
    assert summary["traffic"]["modes"]["isl"]["unmet_fraction"] == 0.0


def test_explicit_flows_are_routed(tmp_path):
    data = {
        **BASE,
        "traffic": {"model": "flows", "flows": [["Kyiv", "Lviv", 100.0], ["Lviv", "Kyiv", 50.0]]},
        # Geometric: with the scheduler, a bent-pipe path between two terminals exists only
        # while both are scheduled on the same satellite (ground sites never relay).
        "service": {"model": "geometric"},
    }
    summary, flows, _links, _res = _run(tmp_path, data)
    assert (flows["rate_mbps"] > 0).all()
    assert {(p["src"], p["dst"]) for p in summary["pairs"]} >= {("Kyiv", "Lviv")}


@pytest.mark.parametrize(
    ("traffic", "field", "fix"),
    [
        ({"model": "access", "down_mbps": -1.0}, "traffic.down_mbps", "must be >= 0"),
        ({"model": "flows", "flows": [["Kyiv", "Atlantis", 10.0]]}, "traffic", "Atlantis"),
        (
            {"model": "access", "capacity": {"isl_gbps": -5.0}},
            "traffic.capacity.isl_gbps",
            "must be > 0",
        ),
    ],
)
def test_bad_traffic_one_line_nothing_written(tmp_path, traffic, field, fix):
    import tomli_w

    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps({**BASE, "traffic": traffic}))
    res = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1, res.output
    assert res.output.count("\n") == 1, res.output
    assert field in res.output and fix in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_gravity_traffic_survives_resolution():
    """Populations are part of the resolved scenario, so a plan rebuilt from a run folder's
    scenario.toml (as --resume does) still has its gravity demands."""
    data = dict(BASE)
    data["ground"] = {"terminal_dataset": "top-cities:5"}
    data["routing"] = {"modes": ["isl"], "pairs": "all-terminal-pairs"}
    data["traffic"] = {"model": "gravity", "total_gbps": 10.0}
    plan = build_plan(parse_scenario(data))
    pops = [t.get("population") for t in plan.resolved["ground"]["terminals"]]
    assert all(isinstance(p, int) and p > 1_000_000 for p in pops)
    again = build_plan(parse_scenario(plan.resolved))
    assert again.resolved == plan.resolved
    assert again.traffic is not None and plan.traffic is not None
    np.testing.assert_array_equal(again.traffic.flows.demand_bps, plan.traffic.flows.demand_bps)
