"""What a run keeps of each chunk (``results.keep_chunk``) and how the writer uses it.

Workers send a chunk cut to the series pairs, with every pair's RTT and the summary's counters
made where the chunk was computed; these tests hold that cut form to the full result of
``compute_chunk`` (the arrays, the counters, and the rows of the files written from it), and
the compiled or vectorised counters and the manifest's text to the numpy and ``json``
formulations they replace.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest

from starmesh._counters import component_sums_ps
from starmesh.engine import compute_chunk
from starmesh.io.runfolder import Manifest
from starmesh.plan import build_plan
from starmesh.results import chunk_counters, keep_chunk, quantile_name, visibility_counters
from starmesh.runner import run_plan, run_plan_in_memory
from starmesh.scenario import parse_scenario
from starmesh.service.latency import COMPONENTS

SCENARIO = {
    "name": "kept",
    "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 24.0, "step_s": 2.0},
    "constellation": {"preset": "starlink-gen1"},
    "ground": {
        "terminals": ["Kyiv", "Kharkiv", "Odesa", "Lviv", "Dnipro", "Berlin", "Madrid"],
        "gateways": ["Wola-Krobowska", "Kaunas"],
        "pops": ["Warsaw", "Frankfurt am Main"],
    },
    # Three of seven pairs written as series (seeded: pairs 3, 4 and 6, to two PoPs, one of
    # them never reachable).
    "routing": {"modes": ["isl", "bent-pipe"], "series_pairs": 3},
    # Loads, so that the access queues' utilisations differ from pair to pair.
    "traffic": {"model": "access", "terminals_per_site": 3000, "down_mbps": 25.0},
    "run": {"chunk_steps": 5},
}


@pytest.fixture(scope="module")
def plan():
    p = build_plan(parse_scenario(SCENARIO))
    assert p.service is not None and 0 < p.series_idx.size < p.problem.pair_src.size
    assert len({p.pair_names[1][i] for i in p.series_idx}) == 2
    return p


@pytest.fixture(scope="module")
def full(plan):
    """Every chunk of the run as compute_chunk returns it (all pairs)."""
    return [compute_chunk(plan, a, b) for a, b in plan.chunks]


def test_kept_chunk_is_the_series_cut_of_the_full_result(plan, full):
    sel = plan.series_idx
    for res in full:
        kept = keep_chunk(plan, res)
        for name in ("rtt_s", "hops", "src_sat", "dst_sat", "changed"):
            assert np.array_equal(getattr(kept.res, name), getattr(res, name)[:, :, sel])
        sv, ks = res.service, kept.res.service
        assert sv is not None and ks is not None
        assert np.array_equal(ks.rtt_q_s, sv.rtt_q_s[..., sel])
        assert np.array_equal(ks.mean_s, sv.mean_s[:, :, sel])
        assert np.array_equal(ks.rho_user, sv.rho_user[:, :, sel])
        assert np.array_equal(ks.rho_feeder, sv.rho_feeder[:, :, sel])
        assert len(np.unique(ks.rho_user)) > 1
        assert ks.serving is sv.serving and kept.res.visibility is res.visibility
        assert kept.res.rate_bps is res.rate_bps
        assert kept.series_s.dtype == np.float64 and kept.series_s.flags.c_contiguous
        assert np.array_equal(kept.series_s, np.transpose(res.rtt_s, (0, 2, 1)))
        want = chunk_counters(res, sel)
        assert list(kept.counters) == list(want)
        for k, v in want.items():
            assert np.array_equal(kept.counters[k], v), k


def test_files_written_from_kept_chunks_hold_the_full_results_rows(plan, full, tmp_path):
    """rtt.parquet and service.parquet, written from the cut chunks, against the series
    pairs' values of compute_chunk's full result."""
    run_plan(plan, tmp_path / "r", executor="serial", report=False)
    sel = plan.series_idx
    src, dst = plan.pair_names
    n_m, n_p = len(plan.modes), sel.size
    rtt = pq.read_table(tmp_path / "r" / "rtt.parquet").to_pandas()
    svc = pq.read_table(tmp_path / "r" / "service.parquet").to_pandas()
    assert len(rtt) == len(svc) == plan.grid.n_steps * n_m * n_p
    row = 0
    for res in full:
        sv = res.service
        assert sv is not None
        for k in range(res.t_s.size):
            for m, mode in enumerate(plan.modes):
                for p in sel:
                    r, s = rtt.iloc[row], svc.iloc[row]
                    assert (r.t_s, r["mode"], r.src, r.dst) == (res.t_s[k], mode, src[p], dst[p])
                    assert (s.t_s, s["mode"], s.src, s.dst) == (res.t_s[k], mode, src[p], dst[p])
                    if np.isfinite(res.rtt_s[m, k, p]):
                        assert r.rtt_ms == res.rtt_s[m, k, p] * 1e3
                        assert r.hops == res.hops[m, k, p]
                        assert r.src_sat == res.src_sat[m, k, p]
                        assert r.dst_sat == res.dst_sat[m, k, p]
                    else:
                        assert np.isnan(r.rtt_ms)
                    assert r.path_changed == res.changed[m, k, p]
                    want = {
                        quantile_name(q): sv.rtt_q_s[m, j, k, p] * 1e3
                        for j, q in enumerate(plan.service.quantiles)
                    } | {f"{c}_ms": sv.mean_s[m, k, p, i] * 1e3 for i, c in enumerate(COMPONENTS)}
                    for col, x in want.items():
                        assert s[col] == x if np.isfinite(x) else np.isnan(s[col])
                    assert s.rho_user == np.float32(sv.rho_user[m, k, p])
                    assert s.rho_feeder == np.float32(sv.rho_feeder[m, k, p])
                    row += 1


def test_in_memory_series_are_the_full_results_series_pairs(plan, full):
    results = run_plan_in_memory(plan, executor="serial")
    got = results._load_series()
    sel = plan.series_idx
    rtt = np.concatenate([r.rtt_s[:, :, sel] for r in full], axis=1) * 1e3
    rtt[~np.isfinite(rtt)] = np.nan
    np.testing.assert_array_equal(got.rtt_ms, rtt)
    assert got.service is not None
    q = np.concatenate([r.service.rtt_q_s[..., sel] for r in full], axis=2) * 1e3
    q[~np.isfinite(q)] = np.nan
    np.testing.assert_array_equal(got.service.rtt_q_ms, q)
    mean = np.concatenate([r.service.mean_s[:, :, sel] for r in full], axis=1) * 1e3
    np.testing.assert_array_equal(got.service.mean_ms, mean)
    traffic = results._load_traffic()
    rate = np.concatenate([r.rate_bps for r in full], axis=1) / 1e6
    np.testing.assert_array_equal(traffic.rate_mbps, rate.astype(np.float32))


def _sums_numpy(mean_s):
    """The formulation component_sums_ps replaces."""
    fin = np.isfinite(mean_s).all(axis=-1)
    ps = np.rint(np.where(fin[..., None], mean_s, 0.0) * 1e12).astype(np.int64)
    return ps.sum(axis=1), fin.sum(axis=1).astype(np.int64)


def test_component_sums_are_the_numpy_integer_sums():
    rng = np.random.default_rng(3)
    x = rng.exponential(5e-3, (2, 31, 40, 7))
    # Exact half picoseconds (rounded to even) and values across magnitudes.
    half = (np.arange(31) + 0.5) * 1e-12
    x[0, :, 0, 0] = half
    assert ((half * 1e12) % 1 == 0.5).sum() > 10
    x[1, :, 1] *= 1e3
    # Unreachable steps and components: inf, nan, and one infinite component of seven.
    x[0, 3, :10] = np.inf
    x[1, 5, 7] = np.nan
    x[0, 7, 20, 4] = -np.inf
    ps, n = component_sums_ps(x)
    want_ps, want_n = _sums_numpy(x)
    assert n[0, 20] == 30 and n[0, 5] == 30 and n[1, 7] == 30
    np.testing.assert_array_equal(ps, want_ps)
    np.testing.assert_array_equal(n, want_n)


def test_handover_gaps_are_the_per_terminal_loop():
    rng = np.random.default_rng(5)
    n_t, n_g = 40, 300
    ho = rng.random((n_t, n_g)) < rng.uniform(0, 0.3, n_g)
    ho[:, :6] = False
    ho[[0, n_t - 1], 5] = True  # the widest gap, across the whole chunk
    vis = SimpleNamespace(
        handover=ho,
        serving=np.zeros((n_t, n_g), np.int32),
        n_in_view=np.ones((n_t, n_g), np.int32),
        serving_elevation_rad=np.full((n_t, n_g), 0.5),
    )
    got = visibility_counters(SimpleNamespace(visibility=vis, start=100))["vis_gap_max"]
    want = np.zeros(n_g, np.int64)
    for g in range(n_g):
        steps = np.flatnonzero(ho[:, g])
        if steps.size > 1:
            want[g] = np.diff(steps).max()
    assert want[5] == n_t - 1
    np.testing.assert_array_equal(got, want)


def test_manifest_text_is_json_dumps_of_the_manifest(tmp_path: Path):
    chunks = [(0, 5), (5, 10), (10, 12)]
    m = Manifest(tmp_path, "ab" * 32, chunks)

    def want() -> bytes:
        data = {
            "scenario_sha256": m.scenario_sha256,
            "chunks": [list(c) for c in m.chunks],
            "done": {str(k): v for k, v in sorted(m.done.items())},
        }
        return (json.dumps(data, indent=1) + "\n").encode()

    m.save()
    assert (tmp_path / "manifest.json").read_bytes() == want()
    files = []
    for i, name in enumerate(["a.parquet", "b\u00e9.npy", 'c"d.npz']):
        files.append(tmp_path / name)
        files[-1].write_bytes(bytes([i]) * 10)
    m.record(2, files[:2])
    assert (tmp_path / "manifest.json").read_bytes() == want()
    m.record(0, files)
    assert (tmp_path / "manifest.json").read_bytes() == want()
    # A chunk recorded again with other files, and a record changed in place.
    files[0].write_bytes(b"other")
    m.record(2, files[:1])
    m.done[0]["extra"] = "0" * 64
    m.save()
    assert (tmp_path / "manifest.json").read_bytes() == want()
    loaded = Manifest.load(tmp_path)
    loaded.record(1, files[1:])
    m.done[1] = loaded.done[1]
    assert (tmp_path / "manifest.json").read_bytes() == want()
    # A record dropped, another recorded after an edit in place, the chunks changed.
    del m.done[2]
    m.done[0]["extra"] = "1" * 64
    m.record(2, files[2:])
    assert (tmp_path / "manifest.json").read_bytes() == want()
    m.chunks = [(0, 6), (6, 12)]
    m.save()
    assert (tmp_path / "manifest.json").read_bytes() == want()
    del m.done[1]
    m.save()
    assert (tmp_path / "manifest.json").read_bytes() == want()
