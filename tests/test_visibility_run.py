"""Per-terminal visibility in runs: chunking, an independent elevation count, the summary."""

from __future__ import annotations

import math

import numpy as np
import pymap3d
import pytest

from starmesh.coverage import SLOT_S_DEFAULT, slot_shift_s
from starmesh.io.runfolder import read_visibility
from starmesh.plan import build_plan
from starmesh.runner import run_plan
from starmesh.scenario import parse_scenario

BASE = {
    "name": "vis",
    "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 120.0, "step_s": 2.0},
    "constellation": {"preset": "starlink-gen1"},
    "ground": {
        "terminals": ["Kyiv", "Lviv", "Sydney"],
        "gateways": ["Wola-Krobowska"],
        "pops": ["Warsaw"],
    },
    "routing": {"modes": ["bent-pipe"]},
}


def _run(tmp, data, name="r"):
    plan = build_plan(parse_scenario(data))
    summary = run_plan(plan, tmp / name).to_dict()
    return plan, summary, read_visibility(tmp / name)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("vis"), BASE)


@pytest.mark.parametrize("chunk", [1, 4, 7])
def test_chunked_visibility_equals_unchunked(base, tmp_path, chunk):
    # 2 s steps in 15 s slots: a chunk boundary falls inside a slot, where the held satellite
    # depends on the steps before the chunk.
    _plan, summary, table = base
    _p, summary_c, table_c = _run(tmp_path, {**BASE, "run": {"chunk_steps": chunk}})
    assert table_c.equals(table)
    assert summary_c["visibility"] == summary["visibility"]
    assert table.column("handover").to_numpy().sum() > 0


def test_satellites_in_view_match_pymap3d(base):
    plan, _summary, table = base
    df = table.to_pandas()
    prop = plan.propagator()
    mask = plan.gsl_rule.min_elevation_rad
    terms = ["Kyiv", "Lviv", "Sydney"]
    idx = [plan.sites.names.index(n) for n in terms]
    for k in (0, 6, 17, 21, 59):
        t_s = plan.grid.t_s(k, k + 1)
        r, ok = prop.positions_ecef_m(t_s)
        for name, g in zip(terms, idx, strict=True):
            lat, lon = math.degrees(plan.sites.lat_rad[g]), math.degrees(plan.sites.lon_rad[g])
            _az, el, _rng = pymap3d.ecef2aer(
                r[0, :, 0], r[0, :, 1], r[0, :, 2], lat, lon, float(plan.sites.alt_m[g])
            )
            vis = ok[0] & (np.radians(el) >= mask)
            row = df[(df.t_s == t_s[0]) & (df.terminal == name)].iloc[0]
            assert row.n_in_view == vis.sum()
            if vis.any():
                # The serving satellite is visible and, at a slot start, the highest.
                assert vis[row.serving_sat]
                assert row.serving_elevation_deg == pytest.approx(el[row.serving_sat], abs=1e-6)
                # Starlink's slots start 12, 27, 42 and 57 s past the UTC minute.
                shift = slot_shift_s(plan.grid.epoch)
                t_k = k * plan.grid.step_s + shift
                if np.floor(t_k / SLOT_S_DEFAULT) != np.floor(
                    (t_k - plan.grid.step_s) / SLOT_S_DEFAULT
                ):
                    assert row.serving_sat == int(np.argmax(np.where(vis, el, -np.inf)))


def test_summary_handover_statistics_match_the_table(base):
    plan, summary, table = base
    df = table.to_pandas()
    hours = plan.grid.n_steps * plan.grid.step_s / 3600.0
    for row in summary["visibility"]["terminals"]:
        d = df[df.terminal == row["terminal"]]
        t_ho = d.t_s[d.handover].to_numpy()
        assert row["handovers"] == t_ho.size
        assert row["handovers_per_hour"] == pytest.approx(t_ho.size / hours)
        if t_ho.size > 1:
            assert row["handover_interval_mean_s"] == pytest.approx(np.diff(t_ho).mean())
            assert row["handover_interval_max_s"] == pytest.approx(np.diff(t_ho).max())
        assert row["n_in_view_mean"] == pytest.approx(d.n_in_view.mean())
        assert row["served_fraction"] == pytest.approx((d.serving_sat >= 0).mean())
        # Away from slot starts a handover means the serving satellite set (it is not in view
        # any more at the next step, so the previous one could not be held).
        shift = slot_shift_s(plan.grid.epoch)
        t_s = d.t_s.to_numpy()
        # First step of each slot: the slot number changes from the step before.
        starts = np.floor((t_s + shift) / SLOT_S_DEFAULT) != np.floor(
            (t_s - plan.grid.step_s + shift) / SLOT_S_DEFAULT
        )
        mid = np.flatnonzero(d.handover.to_numpy() & ~starts)
        g = plan.sites.names.index(row["terminal"])
        lat, lon = math.degrees(plan.sites.lat_rad[g]), math.degrees(plan.sites.lon_rad[g])
        for i in mid:
            t, before = d.t_s.iloc[i], d.serving_sat.iloc[i - 1]
            r, _ok = plan.propagator().positions_ecef_m(np.array([t]))
            _az, el, _rng = pymap3d.ecef2aer(*r[0, before], lat, lon, float(plan.sites.alt_m[g]))
            assert math.radians(el) < plan.gsl_rule.min_elevation_rad


def test_chunk_visibility_does_not_depend_on_chunk_starts():
    # The engine function alone, on many terminals and 1 s steps, so that the highest
    # satellite changes inside slots often: a chunk that forgot the steps of its slot before
    # it would pick a different serving satellite there.
    from starmesh.engine import chunk_links, chunk_visibility, chunk_window

    cities = ["Kyiv", "Lviv", "Sydney", "Tokyo", "Lima", "Nairobi", "Oslo", "Denver"]
    data = {
        **BASE,
        "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 240.0, "step_s": 1.0},
        "ground": {**BASE["ground"], "terminals": cities},
    }
    plan = build_plan(parse_scenario(data))
    prop = plan.propagator()

    def chunk(start, stop):
        # The chunk's links searched on their own (not from the window), the history from
        # the window: both paths must agree with one whole-run chunk.
        lo = max(start - 1, 0)
        t_all = plan.grid.t_s(lo, stop)
        r, ok = prop.positions_ecef_m(t_all)
        win = chunk_window(plan, prop, lo, stop)
        return chunk_visibility(plan, start, chunk_links(plan, t_all, r, ok), win)

    whole = chunk(0, plan.grid.n_steps)
    parts = [chunk(a, min(a + 13, plan.grid.n_steps)) for a in range(0, plan.grid.n_steps, 13)]
    for name in ("n_in_view", "serving", "serving_elevation_rad", "handover"):
        joined = np.concatenate([getattr(p, name) for p in parts])
        np.testing.assert_array_equal(joined, getattr(whole, name))
    # Some serving satellite is held while another is higher: the holding is exercised.
    assert whole.handover.sum() > 0


def test_report_has_the_visibility_section(tmp_path):
    from starmesh.report import write_report
    from starmesh.report.visibility import visibility_parts

    data = {**BASE, "time": {**BASE["time"], "duration_s": 30.0}}
    plan = build_plan(parse_scenario(data))
    run_plan(plan, tmp_path / "r")
    html = write_report(tmp_path / "r").read_text()
    assert 'id="visibility"' in html and "Satellites in view and handovers" in html
    from starmesh.io.runfolder import read_run

    fig, rows, _caption = visibility_parts(read_run(tmp_path / "r"))
    assert fig is not None and [r[0] for r in rows] == ["Kyiv", "Lviv", "Sydney"]
    # Two line traces per terminal (in view, elevation), plus handover markers where any.
    assert sum(t["mode"] == "lines" for t in fig["data"]) == 6


def test_chunk_window_links_equal_a_search_of_those_steps_and_sites():
    """The window's links, read for any steps and sites, are those a search of just those
    steps and sites finds (same arrays, same order)."""
    from starmesh.engine import chunk_window
    from starmesh.topology import find_gsls

    data = {
        **BASE,
        "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 120.0, "step_s": 1.0},
        "ground": {**BASE["ground"], "terminals": ["Kyiv", "Lviv", "Oslo", "Denver", "Lima"]},
    }
    plan = build_plan(parse_scenario(data))
    prop = plan.propagator()
    win = chunk_window(plan, prop, 40, 70)
    assert win.w0 <= 40 and win.w0 + win.t_s.size >= 70
    kinds = np.asarray(plan.sites.kinds)
    for a, b in [(40, 70), (win.w0, 40), (55, 56)]:
        for sites in (win.sites, win.sites[kinds[win.sites] == "terminal"], win.sites[::2]):
            got = win.gsl(a, b, sites)
            r, ok = prop.positions_ecef_m(plan.grid.t_s(a, b))
            want = find_gsls(r, ok, plan.sites.r_ecef_m[sites], plan.sites.up[sites], plan.gsl_rule)
            for name in ("t_idx", "site_idx", "sat_idx", "length_m", "elevation_rad"):
                np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
            assert b - a == 1 or got.t_idx.size > 0
