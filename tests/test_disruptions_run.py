"""Disruptions in whole runs: failures, jamming, geofencing and variants, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from shapely.geometry import Point, Polygon
from typer.testing import CliRunner

from starmesh.cli import app
from starmesh.ground import resolve_city
from starmesh.plan import build_plan
from starmesh.runner import run_plan
from starmesh.scenario import parse_scenario

runner = CliRunner()

BASE = {
    "name": "dis",
    "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 40.0, "step_s": 2.0},
    "service": {"model": "geometric"},
    "constellation": {"preset": "starlink-550"},
    "ground": {
        "terminals": ["Kyiv", "Kharkiv", "Odesa", "Mariupol", "Kherson"],
        "gateways": ["Wola-Krobowska", "Kaunas"],
        "pops": ["Warsaw"],
    },
    "links": {"gateway_pop": "all"},
    "routing": {"modes": ["isl", "bent-pipe"]},
}


def _kherson_jammer(name: str, eirp_dbw: float) -> dict:
    """A jammer 30 m up at the Kherson terminal (46.60 N, 32.66 E)."""
    return {"name": name, "lat_deg": 46.60, "lon_deg": 32.66, "alt_m": 30.0, "eirp_dbw": eirp_dbw}


def _run(tmp: Path, data: dict, name: str) -> object:
    run_plan(build_plan(parse_scenario(data)), tmp / name)
    return pq.read_table(tmp / name / "rtt.parquet").to_pandas()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dis")
    return _run(tmp, BASE, "base")


def test_jammer_out_of_sight_changes_nothing(baseline, tmp_path):
    far = {
        **BASE,
        "disruptions": {
            "jammers": [
                {"name": "far", "lat_deg": -33.9, "lon_deg": 151.2, "eirp_dbw": 80.0},
            ]
        },
    }
    assert _run(tmp_path, far, "far").equals(baseline)


def test_jammer_next_to_a_terminal_takes_it_down(baseline, tmp_path):
    near = {
        **BASE,
        "disruptions": {
            "jammers": [
                _kherson_jammer("near", 50.0),
            ]
        },
    }
    df = _run(tmp_path, near, "near")
    kherson = df[df["src"] == "Kherson"]
    assert kherson["rtt_ms"].isna().all()
    others = df[df["src"] != "Kherson"].reset_index(drop=True)
    # (Columns with nulls elsewhere come back as floats: compare values.)
    pd.testing.assert_frame_equal(
        others, baseline[baseline["src"] != "Kherson"].reset_index(drop=True), check_dtype=False
    )
    # Weaker jamming degrades less: at 0 dBW the terminal keeps its link.
    weak = {
        **BASE,
        "disruptions": {
            "jammers": [
                _kherson_jammer("weak", 0.0),
            ]
        },
    }
    assert _run(tmp_path, weak, "weak")["rtt_ms"].notna().all()


def test_service_model_schedules_only_links_that_work(tmp_path):
    """Under the service model a jammed or geofenced terminal is not scheduled at all (no
    serving satellite, speed tests 0) where routing finds no link, and every terminal that is
    scheduled is routed: the scheduler picks among the links chunk_links keeps. Before, the
    scheduler saw only geometry and reported 220 Mbit/s for a terminal with no route."""
    ring = [[36.0, 46.5], [38.5, 46.5], [38.5, 48.0], [36.0, 48.0], [36.0, 46.5]]
    data = {
        **BASE,
        "service": {"model": "service"},
        "routing": {"modes": ["isl"]},
        "disruptions": {
            "jammers": [_kherson_jammer("near", 50.0)],
            "denied_areas": [
                {"name": "south-east", "geojson": {"type": "Polygon", "coordinates": [ring]}}
            ],
        },
    }
    run_plan(build_plan(parse_scenario(data)), tmp_path / "svc")
    term = pq.read_table(tmp_path / "svc" / "terminals.parquet").to_pandas()
    rtt = pq.read_table(tmp_path / "svc" / "rtt.parquet").to_pandas()
    routed = rtt.set_index(["t_s", "src"])["rtt_ms"].notna()
    served = term.set_index(["t_s", "terminal"])["serving_sat"].notna()
    served.index.names = routed.index.names
    joined = pd.concat([served.rename("served"), routed.rename("routed")], axis=1, join="inner")
    assert len(joined) == len(term)
    np.testing.assert_array_equal(joined["served"], joined["routed"])
    for city in ("Kherson", "Mariupol"):
        rows = term[term["terminal"] == city]
        assert rows["serving_sat"].isna().all(), city
        assert (rows["download_mbps"] == 0).all() and (rows["upload_mbps"] == 0).all(), city
    others = term[~term["terminal"].isin(["Kherson", "Mariupol"])]
    assert others["serving_sat"].notna().all() and (others["download_mbps"] > 0).all()


def test_service_speed_test_keeps_what_jamming_leaves_of_the_link():
    """A 30 dBW jammer next to Kherson degrades its link without closing it: the terminal is
    served at every step, its speed tests fall below the unjammed 220 Mbit/s (the beam keeps
    the link budget's share with the jammer), and no other terminal changes."""
    from starmesh.engine import compute_chunk

    base = {**BASE, "service": {"model": "service"}, "routing": {"modes": ["isl"]}}
    jam = {
        **base,
        "disruptions": {"jammers": [_kherson_jammer("j", 30.0)]},
    }
    p0, p1 = build_plan(parse_scenario(base)), build_plan(parse_scenario(jam))
    r0, r1 = compute_chunk(p0, 0, p0.grid.n_steps), compute_chunk(p1, 0, p1.grid.n_steps)
    assert r0.service is not None and r1.service is not None
    g = list(p0.service.terminals).index(list(p0.sites.names).index("Kherson"))
    assert (r1.service.serving[:, g] >= 0).all()
    assert (r0.service.download_bps[:, g] == 220e6).all()
    assert (r1.service.download_bps[:, g] < 200e6).all() and (
        r1.service.download_bps[:, g] > 0
    ).all()
    assert (r1.service.upload_bps[:, g] <= r0.service.upload_bps[:, g]).all()
    rest = np.arange(r0.service.serving.shape[1]) != g
    np.testing.assert_array_equal(
        r1.service.download_bps[:, rest], r0.service.download_bps[:, rest]
    )


def test_failed_satellites_never_forward(tmp_path):
    failed = [10, 11, 12, 500, 1000, 1500]
    data = {
        **BASE,
        "routing": {"modes": ["isl"], "pairs": "all-terminal-pairs", "forwarding_state": True},
        "disruptions": {"failures": [{"satellites": failed, "satellite_fraction": 0.1}]},
    }
    plan = build_plan(parse_scenario(data))
    run_plan(plan, tmp_path / "r")
    fs = pq.read_table(tmp_path / "r" / "fstate.parquet").to_pandas()
    down = np.flatnonzero(plan.failures.sat_failed(np.array([0.0]))[0])
    assert set(failed) <= set(down.tolist()) and down.size >= 158
    assert not fs["next_hop"].isin(down).any()
    assert (fs[fs["node"].isin(down)]["next_hop"] == -1).all()
    rtt = pq.read_table(tmp_path / "r" / "rtt.parquet").to_pandas()
    assert not rtt["src_sat"].isin(down).any() and not rtt["dst_sat"].isin(down).any()


def test_geofenced_terminals_never_get_a_route(tmp_path):
    ring = [[36.0, 46.5], [38.5, 46.5], [38.5, 48.0], [36.0, 48.0], [36.0, 46.5]]
    data = {
        **BASE,
        "disruptions": {
            "denied_areas": [
                {"name": "south-east", "geojson": {"type": "Polygon", "coordinates": [ring]}},
            ]
        },
    }
    df = _run(tmp_path, data, "geo")
    poly = Polygon(ring)
    inside = {
        c
        for c in BASE["ground"]["terminals"]
        if poly.contains(Point(resolve_city(c).lon_deg, resolve_city(c).lat_deg))
    }
    assert inside == {"Mariupol"}
    for city in BASE["ground"]["terminals"]:
        served = df[df["src"] == city]["rtt_ms"].notna()
        assert (not served.any()) if city in inside else served.all(), city


def test_gateway_down_reroutes_and_slows(baseline, tmp_path):
    data = {**BASE, "disruptions": {"failures": [{"gateways": ["Wola-Krobowska"]}]}}
    df = _run(tmp_path, data, "gw")
    assert df["rtt_ms"].notna().all()
    assert (df["rtt_ms"].to_numpy() >= baseline["rtt_ms"].to_numpy() - 1e-9).all()
    assert df["rtt_ms"].mean() > baseline["rtt_ms"].mean() + 1.0


def test_failure_window_only_acts_inside(baseline, tmp_path):
    data = {
        **BASE,
        "disruptions": {
            "failures": [
                {
                    "gateways": ["Wola-Krobowska", "Kaunas"],
                    "pops": [],
                    "start_s": 10.0,
                    "end_s": 20.0,
                },
            ]
        },
    }
    df = _run(tmp_path, data, "win")
    outside = (df["t_s"] < 10.0) | (df["t_s"] >= 20.0)
    cols = [c for c in df.columns if c != "path_changed"]
    pd.testing.assert_frame_equal(
        df[outside][cols].reset_index(drop=True),
        baseline[outside][cols].reset_index(drop=True),
        check_dtype=False,
    )
    # Routes go at the window's start and come back at its end: both are path changes.
    assert df[df["t_s"] == 10.0]["path_changed"].all()
    assert df[df["t_s"] == 20.0]["path_changed"].all()
    assert df[~outside]["rtt_ms"].isna().all()  # no gateway left near enough, nor a PoP link


BAD = [
    (
        {"jammers": [{"name": "j", "lat_deg": 48.0, "lon_deg": 37.0, "eirp_w": -5.0}]},
        "disruptions.jammers[0].eirp_w",
        "must be > 0",
    ),
    (
        {
            "denied_areas": [
                {
                    "name": "open",
                    "geojson": {
                        "type": "Polygon",
                        "coordinates": [[[30.0, 50.0], [31.0, 50.0], [31.0, 51.0], [30.0, 51.0]]],
                    },
                }
            ]
        },
        "disruptions",
        "not closed",
    ),
    (
        {"failures": [{"gateways": ["Atlantis"]}]},
        "disruptions.failures[0].gateways[0]",
        "no gateway 'Atlantis'",
    ),
]


@pytest.mark.parametrize(("disruptions", "field", "fix"), BAD)
def test_bad_disruptions_one_line_nothing_written(tmp_path, disruptions, field, fix):
    import tomli_w

    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps({**BASE, "disruptions": disruptions}))
    res = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1, res.output
    assert res.output.count("\n") == 1, res.output
    assert field in res.output and fix in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_variants_run_and_compare(tmp_path):
    import tomli_w

    data = {
        **BASE,
        "variants": [
            {"name": "no-isl", "set": {"routing.modes": ["bent-pipe"]}},
            {
                "name": "pl-lt-down",
                "set": {"disruptions.failures": [{"gateways": ["Wola-Krobowska", "Kaunas"]}]},
            },
        ],
    }
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(data))
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "variants compared" in res.output
    assert (out / "rtt.parquet").is_dir() and (out / "summary.json").is_file()
    assert sorted(p.name for p in (out / "variants").iterdir()) == ["no-isl", "pl-lt-down"]
    rows = json.loads((out / "comparison.json").read_text())["variants"]
    assert [(r["variant"], r["mode"]) for r in rows] == [
        ("baseline", "isl"),
        ("baseline", "bent-pipe"),
        ("no-isl", "bent-pipe"),
        ("pl-lt-down", "isl"),
        ("pl-lt-down", "bent-pipe"),
    ]
    by = {(r["variant"], r["mode"]): r for r in rows}
    # The laser mesh carries traffic to gateways out of bent-pipe reach.
    assert (
        by[("pl-lt-down", "isl")]["availability_pct"]
        >= by[("pl-lt-down", "bent-pipe")]["availability_pct"]
    )
    bad = {**BASE, "variants": [{"name": "x", "set": {"links.isll": "none"}}]}
    path.write_text(tomli_w.dumps(bad))
    res = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 1 and "variants[0].set['links.isll']" in res.output
    assert not (tmp_path / "o2").exists()


def test_jamming_scales_site_capacity_by_what_it_leaves_of_the_link():
    from starmesh.engine import _site_capacity

    data = {
        **BASE,
        "traffic": {"model": "access", "terminals_per_site": 10},
        "disruptions": {
            "jammers": [{"name": "j", "lat_deg": 46.6, "lon_deg": 32.66, "eirp_dbw": 30.0}]
        },
    }
    plan = build_plan(parse_scenario(data))
    tp = plan.traffic
    kyiv, kherson = plan.sites.index("Kyiv"), plan.sites.index("Kherson")
    # Kherson's links keep 50 % and 20 % of their capacity: its best link decides (50 %).
    cap = _site_capacity(
        plan,
        np.array([kherson, kherson, kyiv]),
        np.array([0.5, 0.2, 1.0]),
        np.array([0.25, 0.1, 1.0]),
    )
    base = tp.resources.capacity_bps
    rd, ru = tp.resources.site_down, tp.resources.site_up
    assert cap[rd[kherson]] == pytest.approx(0.5 * base[rd[kherson]])
    assert cap[ru[kherson]] == pytest.approx(0.25 * base[ru[kherson]])
    assert cap[rd[kyiv]] == base[rd[kyiv]]
    others = np.ones(cap.size, bool)
    others[[rd[kherson], ru[kherson]]] = False
    np.testing.assert_array_equal(cap[others], base[others])
    # Without jammers nothing is scaled.
    calm = build_plan(parse_scenario({**data, "disruptions": {"link_budget": True}}))
    np.testing.assert_array_equal(
        _site_capacity(calm, np.array([kherson]), np.array([0.1]), np.array([0.1])),
        calm.traffic.resources.capacity_bps,
    )
