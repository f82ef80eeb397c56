"""Packet level on ns-3: delays, path changes, link outages, TCP goodput and fairness.

The references are computed here from the positions alone (distances over c, serialisation of
the packet's bytes at each hop's rate), hop by hop with the next hop each node holds when the
packet reaches it; ns-3 measures every packet. The ns-3 tests skip only when ``ns3`` is not
importable and ``CI`` is unset (CI installs the extra, so there they fail instead).
"""

from __future__ import annotations

import importlib.util
import itertools
import os

import numpy as np
import pytest

from starmesh.constants import C_M_S
from starmesh.errors import StarmeshError
from starmesh.packets import (
    Flow,
    build_network,
    estimate_cost,
    flow_summary,
    forwarding_state_from_rows,
    jain_index,
    run_packets,
)
from starmesh.packets.flows import UDP_OVERHEAD_BYTES, refuse_if_too_large

HAVE_NS3 = importlib.util.find_spec("ns3") is not None
needs_ns3 = pytest.mark.skipif(
    not HAVE_NS3 and not os.environ.get("CI"), reason='needs pip install "starmesh[ns3]"'
)

ONE_US = 1e-6
ONE_NS = 1e-9
KM = 1e3

# --- A small network: sites A, B; satellites 0..3 -----------------------------------------
# Path 1 (steps < 10): A-0-1-2-B, 6,000 km via the detour satellite 1.
# Path 2 (steps >= 10): A-0-3-2-B, about 4,010 km: shorter, so packets reorder at the change.
# Satellite 1 drifts 10 km per step, so path 1's delay changes at every step; ISL 1-2 is down
# during step 5, which drops the probes that reach satellite 2 over it then.
T, STEP_S, S = 20, 1.0, 4
A, B = S, S + 1
CHANGE = 10
DOWN_STEP = 5
ISLS = np.array([[0, 1], [1, 2], [0, 3], [2, 3]])
RATE_BPS = 10e6


def _positions() -> tuple[np.ndarray, np.ndarray]:
    r = np.zeros((T, S, 3))
    r[:, 0] = [0, 0, 500 * KM]
    r[:, 1] = [1500 * KM, 2000 * KM, 500 * KM]
    r[:, 2] = [3000 * KM, 0, 500 * KM]
    r[:, 3] = [1500 * KM, 0, 600 * KM]
    r[:, 1, 1] += np.arange(T) * 10 * KM
    sites = np.array([[0.0, 0, 0], [3000 * KM, 0, 0]])
    return r, sites


def _routes() -> dict[tuple[int, int], list[tuple[int, int]]]:
    """{(node, dst): [(from_step, next_hop), ...]} of the probe network."""
    fwd = {B: [A, 0, 1, 2, B], A: [B, 2, 1, 0, A]}
    table: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for d, seq in fwd.items():
        for u, v in itertools.pairwise(seq):
            table[(u, d)] = [(0, v)]
        table[(3, d)] = [(0, 2 if d == B else 0)]
    table[(0, B)].append((CHANGE, 3))
    table[(2, A)].append((CHANGE, 3))
    return table


def _probe_network():
    r, sites = _positions()
    rows = [(k * STEP_S, n, d, h) for (n, d), ch in _routes().items() for k, h in ch]
    t, n, d, h = (np.array(c) for c in zip(*rows, strict=True))
    fs = forwarding_state_from_rows(t, n, d, h, step_s=STEP_S, n_steps=T, n_nodes=S + 2)
    isl_up = np.ones((T, len(ISLS)), bool)
    isl_up[DOWN_STEP, 1] = False
    net = build_network(
        fs,
        r,
        sites,
        ["A", "B"],
        [("A", "B")],
        step_s=STEP_S,
        isl_rate_bps=RATE_BPS,
        gsl_rate_bps=RATE_BPS,
        isl_edges=ISLS,
        isl_up=isl_up,
    )
    return net, r, sites


def _expected_delay(send_s: float, wire_bytes: int, r: np.ndarray, sites: np.ndarray) -> float:
    """One-way delay of a packet sent at ``send_s`` from A to B, hop by hop (inf: dropped)."""
    xyz = lambda node, k: r[k, node] if node < S else sites[node - S]  # noqa: E731
    routes = _routes()
    t, node = send_s, A
    while node != B:
        k = int(np.floor(t / STEP_S + 1e-12))
        hop = [h for k0, h in routes[(node, B)] if k0 <= k][-1]
        t_tx = t + wire_bytes * 8 / RATE_BPS
        arrive = t_tx + np.linalg.norm(xyz(node, k) - xyz(hop, k)) / C_M_S
        k_rx = int(np.floor(arrive / STEP_S + 1e-12))
        if {node, hop} == {1, 2} and k_rx == DOWN_STEP:
            return float("inf")
        t, node = arrive, hop
    return t - send_s


@needs_ns3
def test_udp_probe_delay_path_change_outage_and_reordering():
    net, r, sites = _probe_network()
    # Stops 0.1 s before the end, so every packet sent arrives before ns-3 stops.
    probe = Flow.probe("probe", "A", "B", interval_s=0.002, packet_bytes=64, stop_s=T - 0.099)
    res = run_packets(net, [probe], queue_packets=50, bin_s=STEP_S)
    udp = res.udp.to_pandas()
    wire = probe.packet_bytes + UDP_OVERHEAD_BYTES
    # Every packet sent: one per interval from the first interval on (ns-3's OnOff sends its
    # first packet one interval after the start).
    sent = np.arange(1, round((T - 0.1) / probe.interval_s()) + 1) * probe.interval_s()
    want = np.array([_expected_delay(s, wire, r, sites) for s in sent])
    lost = ~np.isfinite(want)
    assert 100 < lost.sum() < 1000
    got = dict(zip(np.round(udp["sent_s"] / 1e-9).astype(np.int64), udp["delay_s"], strict=True))
    keys = np.round(sent / 1e-9).astype(np.int64)
    assert set(got) == set(keys[~lost].tolist())
    err = np.array([got[k] - w for k, w in zip(keys[~lost], want[~lost], strict=True)])
    assert np.abs(err).max() < ONE_US

    # Across the path change the delay steps to path 2's value within one step.
    d = np.array([got.get(k, np.nan) for k in keys])

    def path(seq: list[int], k: int) -> float:
        xyz = [r[k, u] if u < S else sites[u - S] for u in seq]
        length_m = sum(np.linalg.norm(p - q) for p, q in itertools.pairwise(xyz))
        return length_m / C_M_S + (len(seq) - 1) * wire * 8 / RATE_BPS

    before = (sent >= (CHANGE - 1) * STEP_S) & (sent < CHANGE * STEP_S - 0.05)
    after = (sent >= CHANGE * STEP_S) & (sent < (CHANGE + 1) * STEP_S)
    assert np.abs(d[before] - path([A, 0, 1, 2, B], CHANGE - 1)).max() < ONE_US
    assert np.abs(d[after] - path([A, 0, 3, 2, B], CHANGE)).max() < ONE_US

    # Losses: exactly the probes that reached satellite 2 over the down ISL.
    bins = res.bins.to_pandas()
    assert int(bins["losses"].sum()) == int(lost.sum())
    assert int(bins["losses"].to_numpy()[DOWN_STEP]) > 0

    # Reordering at the change to the shorter path: packets sent on path 1 that arrive after a
    # packet sent on path 2. Counted by ns-3's IP identification at the receiver, checked
    # against the sequence numbers and against the send/arrival times of the reference.
    arrive = sent + want
    ok = np.isfinite(arrive)
    # A packet is reordered when a later-sent packet arrived before it.
    first_later = np.minimum.accumulate(np.where(ok, arrive, np.inf)[::-1])[::-1]
    want_reordered = int((ok[:-1] & (arrive[:-1] > first_later[1:])).sum())
    seq = udp.sort_values("received_s")["seq"].to_numpy()
    by_seq = int((seq < np.maximum.accumulate(seq)).sum())
    assert want_reordered > 0
    assert int(bins["reordered"].sum()) == by_seq == want_reordered


@needs_ns3
def test_tcp_goodput_at_the_bottleneck():
    # A-0-1-B fixed; the ISL (5 Mbit/s) is the bottleneck, the GSLs run at 20 Mbit/s. One
    # NewReno flow for 20 s.
    n_steps = 20
    r = np.zeros((n_steps, 2, 3))
    r[:, 0] = [0, 0, 550 * KM]
    r[:, 1] = [1000 * KM, 0, 550 * KM]
    sites = np.array([[0.0, 0, 0], [1000 * KM, 0, 0]])
    a, b = 2, 3
    rows = [
        (0.0, a, b, 0),
        (0.0, 0, b, 1),
        (0.0, 1, b, b),
        (0.0, b, a, 1),
        (0.0, 1, a, 0),
        (0.0, 0, a, a),
    ]
    t, n, d, h = (np.array(c) for c in zip(*rows, strict=True))
    fs = forwarding_state_from_rows(t, n, d, h, step_s=1.0, n_steps=n_steps, n_nodes=4)
    bottleneck = 5e6
    net = build_network(
        fs,
        r,
        sites,
        ["A", "B"],
        [("A", "B")],
        step_s=1.0,
        isl_rate_bps=bottleneck,
        gsl_rate_bps=20e6,
    )
    flows = [Flow("solo", "A", "B", "tcp")]
    res = run_packets(net, flows, queue_packets=100, bin_s=1.0)
    bins = res.bins.to_pandas()
    # Goodput is payload: the bottleneck carries 1448 B of payload per 1490 B on the wire.
    payload_bps = bottleneck * 1448 / (1448 + 42)
    solo = bins[bins["flow"] == "solo"]["rx_bytes"].sum() * 8 / 20.0
    assert 0.9 * bottleneck < solo <= payload_bps * 1.001
    summary = flow_summary(res).to_pandas().set_index("flow")
    assert summary.loc["solo", "rtt_min_ms"] > 2 * (550 + 1000 + 550) * KM / C_M_S * 1e3
    assert summary.loc["solo", "losses"] >= summary.loc["solo", "retransmissions"] > 0


@needs_ns3
def test_two_tcp_flows_share_the_bottleneck_fairly():
    n_steps = 20
    r = np.zeros((n_steps, 2, 3))
    r[:, 0] = [0, 0, 550 * KM]
    r[:, 1] = [1000 * KM, 0, 550 * KM]
    sites = np.array([[0.0, 0, 0], [1000 * KM, 0, 0], [0.0, 100 * KM, 0]])
    a, b, c = 2, 3, 4
    rows = [(0.0, a, b, 0), (0.0, c, b, 0), (0.0, 0, b, 1), (0.0, 1, b, b)]
    for src in (a, c):
        rows += [(0.0, b, src, 1), (0.0, 1, src, 0), (0.0, 0, src, src)]
    rows += [(0.0, a, c, 0), (0.0, c, a, 0), (0.0, 0, c, c), (0.0, 0, a, a)]
    rows = list({(t, n, d): (t, n, d, h) for t, n, d, h in rows}.values())
    t, n, d, h = (np.array(x) for x in zip(*rows, strict=True))
    fs = forwarding_state_from_rows(t, n, d, h, step_s=1.0, n_steps=n_steps, n_nodes=5)
    bottleneck = 5e6
    net = build_network(
        fs,
        r,
        sites,
        ["A", "B", "C"],
        [("A", "B"), ("C", "B")],
        step_s=1.0,
        isl_rate_bps=bottleneck,
        gsl_rate_bps=20e6,
    )
    flows = [Flow("a", "A", "B", "tcp"), Flow("c", "C", "B", "tcp", start_s=0.5)]
    res = run_packets(net, flows, queue_packets=100, bin_s=1.0)
    bins = res.bins.to_pandas()
    late = bins[bins["t_s"] >= 5.0]
    rates = late.groupby("flow")["rx_bytes"].sum().to_numpy() * 8 / (n_steps - 5.0)
    assert rates.size == 2
    assert jain_index(rates) > 0.9
    assert rates.sum() <= bottleneck * 1448 / 1490 * 1.001
    assert rates.sum() > 0.9 * bottleneck


def test_jain_index_reference_values():
    # Jain, Chiu, Hawe (1984): 1 for equal shares, 1/n when one of n gets everything.
    assert jain_index(np.array([3.0, 3.0, 3.0])) == pytest.approx(1.0)
    assert jain_index(np.array([5.0, 0.0, 0.0, 0.0])) == pytest.approx(0.25)
    assert jain_index(np.array([1.0, 2.0])) == pytest.approx(9 / 10)


def test_network_keeps_only_nodes_and_links_the_flows_use():
    net, r, _ = _probe_network()
    assert net.nodes.tolist() == [0, 1, 2, 3, A, B]
    assert sorted(map(tuple, net.links.tolist())) == [
        (0, 1),
        (0, 3),
        (0, A),
        (1, 2),
        (2, 3),
        (2, B),
    ]
    # The delay of a link is its length over c at every step.
    i = next(i for i, (p, q) in enumerate(net.links.tolist()) if (p, q) == (1, 2))
    want = np.linalg.norm(r[:, 1] - r[:, 2], axis=-1) / C_M_S
    assert np.abs(net.delay_s[:, i] - want).max() < 1e-12
    assert not net.up[DOWN_STEP, i] and net.up[DOWN_STEP + 1, i]
    assert net.path(A, B, CHANGE - 1) != net.path(A, B, CHANGE)


def test_too_large_request_is_refused_with_an_estimate():
    net = _probe_network()[0]
    flows = [Flow("big", "A", "B", "udp", rate_bps=9e6, packet_bytes=1000)]
    est = estimate_cost(flows, net)
    # 9 Mbit/s for 20 s in 1,000 B packets: 22,500 packets over 4 hops.
    assert est.packets == pytest.approx(22_500)
    assert est.events >= 22_500 * 5 * 3
    with pytest.raises(StarmeshError, match=r"too large.*events"):
        refuse_if_too_large(est, max_wall_s=0.01, max_memory_bytes=1e12)


def test_bad_flows_are_named():
    net = _probe_network()[0]
    with pytest.raises(StarmeshError, match="not a ground site"):
        run_packets(net, [Flow("f", "A", "Nowhere", "tcp")])
    with pytest.raises(StarmeshError, match="rate_bps"):
        run_packets(net, [Flow("f", "A", "B", "udp")])


def test_missing_ns3_is_one_line(monkeypatch):
    import starmesh.packets.ns3sim as sim

    monkeypatch.setattr(sim, "_NS", None)
    monkeypatch.setattr(sim.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(StarmeshError) as info:
        sim.load_ns3()
    assert str(info.value) == 'ns-3 is not installed: pip install "starmesh[ns3]"'


def test_run_folder_network_reproduces_the_runs_rtt(tmp_path):
    # A 1-s slice of hypatia-starlink-550 run by the flow-level engine: the packet network's
    # paths (its next hops) and link delays (from re-propagated positions) give back the RTT
    # the run wrote for every pair of the flows' sites, at every step.
    import tomllib

    import pyarrow.parquet as pq

    from starmesh.packets.rundir import network_from_run_dir
    from starmesh.plan import build_plan
    from starmesh.runner import run_plan
    from starmesh.scenario import builtin_text, parse_scenario

    data = tomllib.loads(builtin_text("hypatia-starlink-550"))
    data["time"] = {**data["time"], "duration_s": 1.0}
    run_plan(build_plan(parse_scenario(data)), tmp_path / "r")
    pairs = [("Manila", "Dalian"), ("Paris", "Moskva-(Moscow)")]
    net = network_from_run_dir(tmp_path / "r", pairs)
    assert net.n_steps == 10 and net.nodes.size < 100
    rtt = pq.read_table(tmp_path / "r" / "rtt.parquet").to_pandas()
    for a, b in pairs:
        row = rtt[((rtt["src"] == a) & (rtt["dst"] == b)) | ((rtt["src"] == b) & (rtt["dst"] == a))]
        want_s = row.sort_values("t_s")["rtt_ms"].to_numpy() / 1e3
        src, dst = net.site_node(a), net.site_node(b)
        got_s = [net.path_delay_s(src, dst, k) + net.path_delay_s(dst, src, k) for k in range(10)]
        # Same positions, same next hops: agreement to float rounding (1 ns is 0.3 m).
        assert np.abs(np.array(got_s) - want_s).max() < ONE_NS


@needs_ns3
def test_tcp_variants_are_ns3s_own():
    # The same bottleneck for each variant. All fill the 5 Mbit/s link; loss-based NewReno and
    # Cubic fill the 100-packet queue (RTT up to 14 ms + 100 x 2.4 ms), while BBR keeps the
    # queue near its estimated BDP (Cardwell et al., ACM Queue 2016), so its median RTT is
    # far lower: the congestion control really is the one asked for.
    n_steps = 10
    r = np.zeros((n_steps, 2, 3))
    r[:, 0] = [0, 0, 550 * KM]
    r[:, 1] = [1000 * KM, 0, 550 * KM]
    sites = np.array([[0.0, 0, 0], [1000 * KM, 0, 0]])
    a, b = 2, 3
    rows = [(0.0, a, b, 0), (0.0, 0, b, 1), (0.0, 1, b, b)]
    rows += [(0.0, b, a, 1), (0.0, 1, a, 0), (0.0, 0, a, a)]
    t, n, d, h = (np.array(c) for c in zip(*rows, strict=True))
    fs = forwarding_state_from_rows(t, n, d, h, step_s=1.0, n_steps=n_steps, n_nodes=4)
    net = build_network(
        fs, r, sites, ["A", "B"], [("A", "B")], step_s=1.0, isl_rate_bps=5e6, gsl_rate_bps=20e6
    )
    median_rtt = {}
    for v in ("newreno", "cubic", "bbr"):
        res = run_packets(net, [Flow(v, "A", "B", "tcp", tcp_variant=v)], bin_s=1.0)
        row = flow_summary(res).to_pandas().iloc[0]
        assert row["protocol"] == f"tcp/{v}"
        assert row["goodput_mbps"] > 0.9 * 5.0
        median_rtt[v] = row["rtt_median_ms"]
    assert median_rtt["bbr"] < 0.5 * min(median_rtt["newreno"], median_rtt["cubic"])


@needs_ns3
def test_packets_command_replays_a_run_and_the_report_draws_it(tmp_path):
    """`starmesh packets RUN FILE`: traces in the run folder, a table, a report section."""
    import json

    import tomli_w
    from typer.testing import CliRunner

    from starmesh.cli import app

    scenario = {
        "name": "packets-cli",
        "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 4.0, "step_s": 1.0},
        "constellation": {"preset": "starlink-550"},
        "ground": {"terminals": ["Paris", "Berlin"]},
        "routing": {"modes": ["isl"], "forwarding_state": True, "pairs": [["Paris", "Berlin"]]},
        "packets": {
            "isl_rate_mbps": 5.0,
            "gsl_rate_mbps": 5.0,
            "flows": [
                {"name": "bulk", "src": "Paris", "dst": "Berlin", "protocol": "tcp"},
                {
                    "name": "ping",
                    "src": "Berlin",
                    "dst": "Paris",
                    "protocol": "udp",
                    "probe_interval_ms": 100.0,
                },
            ],
        },
    }
    file = tmp_path / "p.toml"
    file.write_text(tomli_w.dumps(scenario))
    run = tmp_path / "run"
    cli = CliRunner()
    res = cli.invoke(app, ["run", str(file), "--out", str(run), "-q"])
    assert res.exit_code == 0, res.output
    summary = json.loads((run / "packets_summary.json").read_text())
    rows = {r["flow"]: r for r in summary["flows"]}
    assert set(rows) == {"bulk", "ping"}
    # TCP fills most of the 5 Mbit/s bottleneck over 4 s (slow start included), never more.
    assert 1.0 < rows["bulk"]["goodput_mbps"] <= 5.0
    assert rows["ping"]["owd_median_ms"] > 0
    assert 'id="packets"' in (run / "report.html").read_text()
    # Replaying again from the command line gives the same traces, byte for byte.
    before = (run / "packets_bins.parquet").read_bytes()
    res = cli.invoke(app, ["packets", str(run), str(file)])
    assert res.exit_code == 0, res.output
    assert "bulk" in res.output
    assert (run / "packets_bins.parquet").read_bytes() == before
