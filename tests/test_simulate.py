"""End-to-end invariants of a run: chunking, reproducibility, summary, physics bounds."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from starmesh.constants import C_M_S
from starmesh.errors import ScenarioError
from starmesh.frames import great_circle_m
from starmesh.plan import build_plan
from starmesh.runner import run_plan
from starmesh.scenario import parse_scenario

BASE = {
    "name": "e2e",
    "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 40.0, "step_s": 2.0},
    "service": {"model": "geometric"},
    "constellation": {"preset": "starlink-gen1"},
    "ground": {
        "terminals": ["Kyiv", "Kharkiv", "Odesa", "Lviv", "Sydney"],
        "gateways": ["Wola-Krobowska", "Kaunas"],
        "pops": ["Warsaw", "Frankfurt am Main"],
    },
    "routing": {"modes": ["isl", "bent-pipe"]},
}


def _run(tmp: Path, data: dict, name: str = "r") -> tuple[dict, object]:
    plan = build_plan(parse_scenario(data))
    summary = run_plan(plan, tmp / name).to_dict()
    return summary, pq.read_table(tmp / name / "rtt.parquet").to_pandas()


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("base")
    summary, df = _run(tmp, BASE)
    return tmp, summary, df


def test_chunking_does_not_change_results(base_run, tmp_path):
    _tmp, _summary, df = base_run
    data = {**BASE, "run": {"chunk_steps": 3}}
    _s, df3 = _run(tmp_path, data)
    assert df3.equals(df)


def test_resolved_scenario_reproduces_the_run(base_run, tmp_path):
    tmp, summary, df = base_run
    resolved = tomllib.loads((tmp / "r" / "scenario.toml").read_text())
    assert "preset" not in resolved["constellation"]
    assert len(resolved["constellation"]["shells"]) == 5
    assert all("lat_deg" in s for s in resolved["ground"]["terminals"])
    summary2, df2 = _run(tmp_path, resolved)
    assert df2.equals(df)
    assert summary2["pairs"] == summary["pairs"]


def test_summary_matches_the_series(base_run):
    _tmp, summary, df = base_run
    for row in summary["pairs"]:
        sel = df[
            (df["mode"] == row["mode"]) & (df["src"] == row["src"]) & (df["dst"] == row["dst"])
        ]
        rtt = sel["rtt_ms"].to_numpy(dtype=float)
        ok = np.isfinite(rtt)
        assert row["availability"] == pytest.approx(ok.mean())
        assert row["path_changes"] == int(sel["path_changed"].sum())
        if ok.any():
            assert row["rtt_min_ms"] == pytest.approx(rtt[ok].min(), rel=1e-12)
            assert row["rtt_max_ms"] == pytest.approx(rtt[ok].max(), rel=1e-12)
            # float32 series store: 1e-6 relative is ~30 ns on 30 ms.
            assert row["rtt_median_ms"] == pytest.approx(np.median(rtt[ok]), rel=1e-6)
            assert row["rtt_p95_ms"] == pytest.approx(np.percentile(rtt[ok], 95), rel=1e-6)
        else:
            assert row["rtt_median_ms"] is None


def test_physics_bounds(base_run):
    tmp, _summary, df = base_run
    sites = pq.read_table(tmp / "r" / "sites.parquet").to_pandas().set_index("name")
    for (src, dst), g in df.groupby(["src", "dst"]):
        a, b = sites.loc[src], sites.loc[dst]
        gc = float(great_circle_m(*np.radians([a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg])))
        rtt = g["rtt_ms"].dropna().to_numpy() / 1e3
        assert (rtt >= 2 * gc / C_M_S).all(), (src, dst)
    isl = df[df["mode"] == "isl"].reset_index(drop=True)
    bent = df[df["mode"] == "bent-pipe"].reset_index(drop=True)
    # The ISL graph contains the bent-pipe graph: never slower, reachable whenever bent-pipe is.
    both = bent["rtt_ms"].notna()
    assert (isl["rtt_ms"][both] <= bent["rtt_ms"][both] + 1e-9).all()
    assert isl["rtt_ms"][both].notna().all()
    # Bent-pipe to a PoP is terminal -> satellite -> gateway -> PoP: 3 links, one satellite.
    reach = bent[bent["rtt_ms"].notna()]
    assert (reach["hops"] == 3).all()
    assert (reach["src_sat"] == reach["dst_sat"]).all()


def test_unreachable_is_null_not_a_crash(base_run):
    # Sydney sees no satellite that also sees a European gateway: bent-pipe has no route.
    _tmp, summary, df = base_run
    syd = df[(df["src"] == "Sydney") & (df["mode"] == "bent-pipe")]
    assert syd["rtt_ms"].isna().all() and syd["hops"].isna().all()
    row = next(p for p in summary["pairs"] if p["src"] == "Sydney" and p["mode"] == "bent-pipe")
    assert row["availability"] == 0.0 and row["rtt_median_ms"] is None
    # Through the laser mesh Sydney reaches Europe, with many hops.
    syd_isl = df[(df["src"] == "Sydney") & (df["mode"] == "isl")]
    assert syd_isl["rtt_ms"].notna().mean() > 0.9
    assert syd_isl["hops"].min() > 10
    json.dumps(summary, allow_nan=False)


def test_pairs_go_to_the_nearest_pop(base_run):
    _tmp, _summary, df = base_run
    dst = df.groupby("src")["dst"].first().to_dict()
    assert dst["Kyiv"] == "Warsaw" and dst["Lviv"] == "Warsaw"


def test_series_pairs_subset_keeps_full_summary(base_run, tmp_path):
    _tmp, summary, df = base_run
    data = {**BASE, "routing": {**BASE["routing"], "series_pairs": 2}}
    summary2, df2 = _run(tmp_path, data)
    assert summary2["pairs"] == summary["pairs"]
    kept = df2.groupby(["src", "dst"]).size()
    assert len(kept) == 2
    # Same rows as the full run for the kept pairs; the choice is seeded, so it repeats.
    merged = df.merge(df2[["t_s", "mode", "src", "dst"]], on=["t_s", "mode", "src", "dst"])
    assert merged.reset_index(drop=True).equals(df2.reset_index(drop=True))
    _s3, df3 = _run(tmp_path, data, "again")
    assert df3.equals(df2)


def test_series_pairs_by_name_and_bad_names():
    data = {**BASE, "routing": {**BASE["routing"], "series_pairs": [["Warsaw", "Kyiv"]]}}
    plan = build_plan(parse_scenario(data))
    src, dst = plan.pair_names
    assert [(src[i], dst[i]) for i in plan.series_idx] == [("Kyiv", "Warsaw")]
    bad = {**BASE, "routing": {**BASE["routing"], "series_pairs": [["Kyiv", "Sydney"]]}}
    with pytest.raises(ScenarioError, match=r"routing.series_pairs\[0\].*not one of the routed"):
        build_plan(parse_scenario(bad))


def test_workers_do_not_change_results(base_run, tmp_path):
    _tmp, _summary, df = base_run
    _s, df1 = _run(tmp_path, {**BASE, "run": {"workers": 1}})
    assert df1.equals(df)


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_statistics_do_not_depend_on_chunks_or_executor(base_run, tmp_path, executor):
    _tmp, summary, df = base_run
    plan = build_plan(parse_scenario({**BASE, "run": {"chunk_steps": 7}}))
    summary2 = run_plan(plan, tmp_path / "r", executor=executor).to_dict()
    assert summary2["pairs"] == summary["pairs"]
    assert pq.read_table(tmp_path / "r" / "rtt.parquet").to_pandas().equals(df)
    # The per-chunk data behind the statistics is gone once summary.json is written.
    assert not (tmp_path / "r" / ".partial").exists()
    assert not [p for p in (tmp_path / "r").rglob("*") if p.name.startswith(".")]


def test_forwarding_state_deltas_replay_to_shortest_paths(tmp_path):
    """Consistency check, not validation: the deltas of fstate.parquet, replayed, are the next
    hops of scipy's Dijkstra on a graph built with starmesh's own propagator, GSL search and
    snapshot graph (the independent check of forwarding state is satgenpy's own fstate files,
    tests/test_hypatia_window.py)."""
    from scipy.sparse.csgraph import dijkstra

    from starmesh.engine import fstate_nodes
    from starmesh.propagation import Propagator
    from starmesh.routing import snapshot_graph, space_delay_s
    from starmesh.topology import find_gsls, isl_lengths_m

    data = {
        "name": "fstate",
        "service": {"model": "geometric"},
        "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 600.0, "step_s": 50.0},
        "constellation": {
            "shells": [
                {
                    "planes": 10,
                    "sats_per_plane": 10,
                    "phasing": 1,
                    "altitude_km": 1100.0,
                    "inclination_deg": 60.0,
                }
            ]
        },
        "ground": {"terminals": ["Kyiv", "Madrid", "Cairo", "Moscow", "Oslo"]},
        "links": {"min_elevation_deg": 10.0},
        "routing": {"pairs": "all-terminal-pairs", "forwarding_state": True},
        "run": {"chunk_steps": 5},
    }
    plan = build_plan(parse_scenario(data))
    run_plan(plan, tmp_path / "r")
    fs = pq.read_table(tmp_path / "r" / "fstate.parquet").to_pandas()
    p = plan.problem
    s_, g_ = p.n_sats, p.n_sites
    nodes = fstate_nodes(plan)
    state: dict[tuple[int, int], int] = {}
    prop = Propagator(plan.constellation, plan.grid.epoch)
    t_all = plan.grid.t_s()
    r, ok = prop.positions_ecef_m(t_all)
    length = isl_lengths_m(r, plan.isl_edges)
    gsl = find_gsls(r, ok, plan.sites.r_ecef_m, plan.sites.up, plan.gsl_rule)
    checked = reachable = 0
    for k, t in enumerate(t_all):
        for row in fs[fs["t_s"] == t].itertuples():
            state[(row.node, row.dst)] = row.next_hop
        assert len(state) == nodes.size * g_ - g_  # every node towards every other site
        isl_d = np.where(length[k] <= plan.isl_max_range_m, space_delay_s(length[k]), np.inf)
        sel = gsl.t_idx == k
        graph = snapshot_graph(
            p,
            isl_delay_s=isl_d,
            gsl_site=gsl.site_idx[sel],
            gsl_sat=gsl.sat_idx[sel],
            gsl_delay_s=space_delay_s(gsl.length_m[sel]),
        )
        # Distance from every node to each destination site = from the site's out-node (the
        # graph is symmetric), read at satellites and at other sites' in-nodes.
        dist = dijkstra(graph, directed=True, indices=p.out_node(np.arange(g_)))
        w = graph.toarray()

        def gnode(n: int, *, arriving: bool) -> int:
            return n if n < s_ else n + (g_ if arriving else 0)

        for (node, dst), nh in state.items():
            d = dst - s_
            here = dist[d, gnode(node, arriving=True)]
            checked += 1
            if not np.isfinite(here):
                assert nh == -1
                continue
            reachable += 1
            assert nh >= 0
            # The hop goes towards the destination by one link and lands on a shortest path.
            # (A satellite's last hop arrives at the destination's in-node, S + G + d.)
            hop_w = w[gnode(node, arriving=False), gnode(nh, arriving=True)]
            there = 0.0 if nh - s_ == d else dist[d, gnode(nh, arriving=True)]
            assert hop_w > 0
            assert here == pytest.approx(hop_w + there, rel=1e-12)
    assert reachable > 0.5 * checked


def test_resolving_a_resolved_scenario_is_idempotent(base_run):
    import tomli_w

    tmp, _summary, _df = base_run
    text = (tmp / "r" / "scenario.toml").read_text()
    again = build_plan(parse_scenario(tomllib.loads(text))).resolved
    assert tomli_w.dumps(again) == text
