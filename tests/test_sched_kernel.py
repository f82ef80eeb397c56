"""The service model's compiled passes against the numpy formulations they replaced.

:mod:`starmesh.service.sched_kernel` must make exactly the choices (and sums) the numpy code
made, since runs are byte-identical across the change. The numpy code is kept here as the
reference (``_ref_*``: the scheduler as a sort per slot and a binary search per step, the
"hold" policy's slot statistics by ``np.unique``, the engine's selections through site tables,
``np.bincount`` sums), and both are run on random links with exact ties and on real chunks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starmesh import engine as E
from starmesh.plan import build_plan
from starmesh.scenario import parse_scenario
from starmesh.service import sched_kernel as K
from starmesh.service.chunk import serving_gsl_mask
from starmesh.service.scheduler import (
    count_handovers,
    north_of_site,
    schedule_bounds,
    schedule_sparse,
    slot_index,
)
from starmesh.topology import in_link_order

# --- references: the numpy formulations ------------------------------------------------------


def _ref_seen_over_slot(
    key: np.ndarray, el: np.ndarray, bounds: np.ndarray, a: int, b: int
) -> tuple[np.ndarray, np.ndarray]:
    # Steps of the slot at which each first-step link is a link, and its lowest elevation.
    # A NaN elevation is never lower than another (a comparison), so a NaN at the first step
    # stays the minimum and later NaNs are skipped: fmin, then the first step's NaNs.
    k0 = key[bounds[a] : bounds[a + 1]]
    ks, inv = np.unique(key[bounds[a] : bounds[b]], return_inverse=True)
    low = np.full(ks.size, np.inf)
    np.fmin.at(low, inv, el[bounds[a] : bounds[b]])
    pos = np.searchsorted(ks, k0)
    e0 = el[bounds[a] : bounds[a + 1]]
    return np.bincount(inv, minlength=ks.size)[pos], np.where(np.isnan(e0), e0, low[pos])


def _ref_schedule_sparse(
    t_s: np.ndarray,
    n_sites: int,
    t_idx: np.ndarray,
    site_idx: np.ndarray,
    sat_idx: np.ndarray,
    elevation_rad: np.ndarray,
    *,
    policy: str = "hold",
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    north: np.ndarray | None = None,
    offset_s: float = 12.0,
    slot_s: float = 15.0,
    epoch_s: float = 0.0,
    previous: tuple[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple[int, np.ndarray]]:
    # schedule_sparse before the compiled pass: a lexsort per slot, a search per step.
    ti = np.asarray(t_idx, dtype=np.int64)
    gi = np.asarray(site_idx, dtype=np.int64)
    si = np.asarray(sat_idx, dtype=np.int64)
    el = np.asarray(elevation_rad, dtype=np.float64)
    nb = np.zeros(ti.shape, dtype=bool) if north is None else np.asarray(north, dtype=bool)
    order = np.lexsort((si, gi, ti))
    ti, gi, si, el, nb = ti[order], gi[order], si[order], el[order], nb[order]
    slot = slot_index(t_s, slot_s=slot_s, offset_s=offset_s, epoch_second_of_minute=epoch_s)
    n_t = slot.size
    n_key = int(si.max(initial=-1)) + 1
    key = gi * n_key + si
    bounds = np.searchsorted(ti, np.arange(n_t + 1))
    serving = np.full((n_t, n_sites), -1, dtype=np.int32)
    starts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]]) if n_t else np.zeros(0, int)
    ends = np.r_[starts[1:], n_t]
    pick = np.full(n_sites, -1, dtype=np.int64)
    for a, b in zip(starts, ends, strict=True):
        if a == 0 and previous is not None and previous[0] == slot[0]:
            pick = np.asarray(previous[1], dtype=np.int64).copy()
        else:
            c0 = slice(bounds[a], bounds[a + 1])
            k0, e0, g0, s0 = key[c0], el[c0], gi[c0], si[c0]
            if policy == "hold":
                count, emin = _ref_seen_over_slot(key, el, bounds, int(a), int(b))
                score = np.where(count == (b - a), 10.0 + emin, e0)
            elif policy == "highest":
                score = e0
            elif policy == "north":
                score = np.where(nb[c0], 10.0 + e0, e0)
            else:
                g_rng = (
                    np.random.default_rng([seed, int(slot[a]) % 2**63]) if seed is not None else rng
                )
                assert g_rng is not None
                score = g_rng.random(k0.size)
            pick = np.full(n_sites, -1, dtype=np.int64)
            if k0.size:
                o = np.lexsort((-score, g0))
                first = np.r_[True, g0[o][1:] != g0[o][:-1]]
                pick[g0[o][first]] = s0[o][first]
        ok = pick >= 0
        want = np.flatnonzero(ok) * n_key + pick[ok]
        for k in range(a, b):
            kk = key[bounds[k] : bounds[k + 1]]
            pos = np.minimum(np.searchsorted(kk, want), max(kk.size - 1, 0))
            here = (kk[pos] == want) if kk.size else np.zeros(want.size, bool)
            serving[k, np.flatnonzero(ok)[here]] = pick[ok][here]
    return serving, (int(slot[-1]) if n_t else -(2**62), pick.astype(np.int32))


def _ref_service_schedule(
    plan: Any, window: E.ChunkWindow, lo: int, stop: int, via_gateway: bool
) -> E.Scheduled:
    # engine.service_schedule before the compiled passes (ChunkWindow.gsl, np.bincount).
    sv = plan.service
    a, b = E._slot_window(plan, lo, stop)
    rw = window.r[window.steps(a, b)]
    tw = window.t_s[window.steps(a, b)]
    term = np.asarray(sv.terminals, dtype=np.int64)
    gsl = window.gsl(a, b, term)
    if via_gateway:
        gw = plan.sites.of_kind("gateway")
        if plan.failures is not None:
            gw_up = ~plan.failures.site_failed(tw)[:, gw]
        else:
            gw_up = np.ones((tw.size, gw.size), bool)
        ggsl = window.gsl(a, b, gw)
        seen = np.zeros((tw.size, rw.shape[1]), bool)
        live = gw_up[ggsl.t_idx, ggsl.site_idx]
        seen[ggsl.t_idx[live], ggsl.sat_idx[live]] = True
        gsl = gsl.select(seen[gsl.t_idx, gsl.sat_idx])
    ti, gi, si = (x.astype(np.int64) for x in (gsl.t_idx, gsl.site_idx, gsl.sat_idx))
    north = None
    if sv.policy == "north":
        d = rw[ti, si] - plan.sites.r_ecef_m[term][gi]
        lat = plan.sites.lat_rad[term][gi]
        lon = plan.sites.lon_rad[term][gi]
        north_vec = np.stack(
            [-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)], axis=-1
        )
        cos_az = np.einsum("ij,ij->i", d, north_vec)
        north = north_of_site(np.where(cos_az >= 0.0, 0.0, np.pi), np.degrees(lat))
    full, _ = _ref_schedule_sparse(
        tw, term.size, ti, gi, si, gsl.elevation_rad, policy=sv.policy, seed=plan.seed,
        north=north, offset_s=sv.slot_offset_s, slot_s=sv.slot_s,
        epoch_s=sv.epoch_second_of_minute,
    )  # fmt: skip
    serving = full[lo - a : stop - a]
    handover = np.zeros(serving.shape, bool)
    handover[1:] = (serving[1:] != serving[:-1]) & (serving[1:] >= 0) & (serving[:-1] >= 0)
    in_chunk = (ti >= lo - a) & (ti < stop - a)
    flat = (ti[in_chunk] - (lo - a)) * serving.shape[1] + gi[in_chunk]
    n_vis = np.bincount(flat, minlength=serving.size).reshape(serving.shape).astype(np.int64)
    cap = np.asarray(
        np.bincount(flat, weights=sv.sat_capacity_bps[si[in_chunk]], minlength=serving.size),
        dtype=np.float64,
    )
    return E.Scheduled(serving, handover, n_vis, cap.reshape(serving.shape))


def _ref_restrict(plan: Any, links: E.ChunkLinks, serving: np.ndarray) -> tuple:
    # engine.restrict_to_schedule before: serving_gsl_mask, boolean selections, a running count
    # over the chunk's distinct links; with the distinct links, their numbering and delays.
    gsl = links.gsl
    keep = serving_gsl_mask(
        gsl.t_idx, links.gsl_sites[gsl.site_idx], gsl.sat_idx, serving, plan.service.terminals
    )
    if keep.all():
        return links, links.links, links.link_of, links.gsl_delay_s
    kept = gsl.select(keep)
    kept_of = links.link_of[keep]
    mark = np.zeros(links.links.size, bool)
    mark[kept_of] = True
    cut = E.ChunkLinks(
        isl_edges=links.isl_edges,
        isl_delay_s=links.isl_delay_s,
        gsl=kept,
        gsl_cap_down=links.gsl_cap_down[keep],
        gsl_cap_up=links.gsl_cap_up[keep],
        gsl_sites=links.gsl_sites,
        bounds=np.searchsorted(kept.t_idx, np.arange(links.bounds.size)),
        site_failed=links.site_failed,
        n_sats=links.n_sats,
        libastro_lengths=links.libastro_lengths,
    )
    return (
        cut,
        links.links[np.flatnonzero(mark)],
        (np.cumsum(mark) - 1)[kept_of].astype(np.int64),
        links.gsl_delay_s[keep],
    )


def _ref_terminal_links(plan: Any, links: E.ChunkLinks, terminals: np.ndarray) -> tuple:
    site = links.gsl_sites[links.gsl.site_idx]
    term_of = np.full(len(plan.sites), -1, np.int64)
    term_of[terminals] = np.arange(terminals.size)
    g = term_of[site]
    keep = g >= 0
    t = links.gsl.t_idx[keep].astype(np.int64)
    s = links.gsl.sat_idx[keep].astype(np.int64)
    return t, g[keep], s, links.gsl.elevation_rad[keep]


def _ref_chunk_visibility(plan: Any, start: int, links: E.ChunkLinks, window: E.ChunkWindow) -> Any:
    # engine.chunk_visibility before: the earlier steps through chunk_links, int64 copies and
    # concatenation, the links shuffled into terminal_visibility_links' sorting path.
    from starmesh.coverage import slot_shift_s, terminal_visibility_links

    terminals = E.visibility_terminals(plan)
    step_s, slot_s = plan.grid.step_s, plan.visibility_slot_s
    shift = slot_shift_s(plan.grid.epoch)
    lo = max(start - 1, 0)
    s0 = E._visibility_start(plan, lo)
    t, g, s, el = _ref_terminal_links(plan, links, terminals)
    if s0 < lo:
        rows = window.steps(s0, lo)
        links_h = E.chunk_links(
            plan,
            window.t_s[rows],
            window.r[rows],
            window.ok[rows],
            gsl=window.gsl(s0, lo, np.flatnonzero(plan.problem.gsl_site)),
            with_isl=False,
        )
        th, gh, sh, eh = _ref_terminal_links(plan, links_h, terminals)
        t, g, s, el = (
            np.concatenate([th, t + (lo - s0)]),
            np.concatenate([gh, g]),
            np.concatenate([sh, s]),
            np.concatenate([eh, el]),
        )
    rev = np.arange(t.size)[::-1]  # out of order: the lexsort path, independent of the new pass
    vis = terminal_visibility_links(
        t[rev],
        g[rev],
        s[rev],
        el[rev],
        n_steps=links.bounds.size - 1 + (lo - s0),
        n_sites=terminals.size,
        step_s=step_s,
        slot_s=slot_s,
        t0_s=s0 * step_s + shift,
    )
    drop = start - s0
    return (vis.n_in_view[drop:], vis.serving[drop:], vis.serving_elevation_rad[drop:],
            vis.handover[drop:])  # fmt: skip


def _same(a: Any, b: Any, what: str) -> None:
    """Equal bytes, dtypes and shapes, field by field."""
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, (what, a.dtype, b.dtype)
        assert a.tobytes() == b.tobytes(), what
    elif hasattr(a, "__dataclass_fields__"):
        for name in a.__dataclass_fields__:
            _same(getattr(a, name), getattr(b, name), f"{what}.{name}")
    elif isinstance(a, (tuple, list)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{what}[{i}]")
    else:
        assert a == b, what


# --- the scheduler on random links -----------------------------------------------------------


def _links(seed: int, n_t: int, n_g: int, n_s: int, levels: int) -> tuple:
    """Random visible links, elevations on ``levels`` values (exact ties) or continuous (0)."""
    rng = np.random.default_rng(seed)
    el = rng.uniform(0.0, 1.5, (n_t, n_g, n_s))
    if levels:
        el = np.round(el * levels) / levels
    # Satellites drift in and out of view, some of them for a single step.
    vis = (el >= 0.3) | (rng.random(el.shape) < 0.05)
    vis &= rng.random(el.shape) > 0.08
    ti, gi, si = np.nonzero(vis)
    return ti, gi, si, el[ti, gi, si], rng


@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    policy=st.sampled_from(["hold", "highest", "north", "random"]),
    n_t=st.integers(1, 50),
    n_g=st.integers(1, 6),
    n_s=st.integers(1, 10),
    levels=st.sampled_from([0, 2, 5]),
    step_s=st.sampled_from([1.0, 2.0, 3.5, 15.0]),
    offset_s=st.floats(0.0, 59.0),
    carry=st.booleans(),
    int32=st.booleans(),
)
def test_schedule_sparse_equals_the_numpy_scheduler(
    seed: int,
    policy: str,
    n_t: int,
    n_g: int,
    n_s: int,
    levels: int,
    step_s: float,
    offset_s: float,
    carry: bool,
    int32: bool,
) -> None:
    ti, gi, si, el, rng = _links(seed, n_t, n_g, n_s, levels)
    t_s = 100.0 + np.arange(n_t) * step_s
    north = rng.random(ti.size) < 0.5
    previous = None
    if carry and n_t:
        previous = (
            int(slot_index(t_s[:1], offset_s=offset_s)[0]) - int(rng.integers(0, 2)),
            rng.integers(-1, n_s, n_g).astype(np.int32),
        )
    if int32:
        ti, gi, si = (x.astype(np.int32) for x in (ti, gi, si))
    kw: dict[str, Any] = {"policy": policy, "north": north, "offset_s": offset_s}
    kw |= {"previous": previous}
    if policy == "random":
        kw["seed"] = seed % 1000
    got = schedule_sparse(t_s, n_g, ti, gi, si, el, **kw)  # type: ignore[arg-type]
    want, carry_want = _ref_schedule_sparse(t_s, n_g, ti, gi, si, el, **kw)
    _same(got.serving, want, "serving")
    _same(got.carry, carry_want, "carry")
    _same(got.handovers, count_handovers(want, previous), "handovers")


def test_no_steps_no_assignment() -> None:
    # (The numpy scheduler failed on an empty grid; there is nothing to assign.)
    sch = schedule_sparse(np.zeros(0), 3, [], [], [], [])
    assert sch.serving.shape == (0, 3) and sch.handovers.tolist() == [0, 0, 0]
    assert sch.carry[1].tolist() == [-1, -1, -1]


def test_random_policy_with_a_generator_draws_in_slot_order() -> None:
    ti, gi, si, el, _ = _links(3, 47, 4, 8, 0)
    t_s = np.arange(47.0)
    for previous in (None, (int(slot_index(t_s[:1])[0]), np.array([1, -1, 2, 0], np.int32))):
        got = schedule_sparse(
            t_s, 4, ti, gi, si, el, policy="random", rng=np.random.default_rng(4), previous=previous
        )
        want, _ = _ref_schedule_sparse(
            t_s, 4, ti, gi, si, el, policy="random", rng=np.random.default_rng(4), previous=previous
        )
        _same(got.serving, want, "serving")


def test_schedule_sparse_sorts_links_out_of_order() -> None:
    ti, gi, si, el, rng = _links(8, 40, 5, 9, 3)
    # Sorted by step but not within a step: sorted first, then scheduled the same.
    perm = np.lexsort((rng.random(ti.size), ti))
    for policy in ("hold", "highest"):
        got = schedule_sparse(np.arange(40.0), 5, ti[perm], gi[perm], si[perm], el[perm],
                              policy=policy)  # type: ignore[arg-type]  # fmt: skip
        want, _ = _ref_schedule_sparse(np.arange(40.0), 5, ti, gi, si, el, policy=policy)
        _same(got.serving, want, "serving")


def test_nan_scores_lose_to_any_number_as_in_the_sort() -> None:
    # Elevations NaN at the slot's first step: lexsort puts NaN last, so a NaN link is chosen
    # only when all of the terminal's links are NaN (then the first, the lowest satellite).
    ti = np.array([0, 0, 0, 0, 0, 1, 1])
    gi = np.array([0, 0, 0, 1, 1, 0, 1])
    si = np.array([2, 4, 6, 1, 3, 4, 3])
    el = np.array([np.nan, 0.5, 0.5, np.nan, np.nan, 0.6, 0.7])
    t_s = np.array([12.0, 13.0])
    for policy in ("highest", "hold"):
        got = schedule_sparse(t_s, 2, ti, gi, si, el, policy=policy)  # type: ignore[arg-type]
        want, _ = _ref_schedule_sparse(t_s, 2, ti, gi, si, el, policy=policy)
        _same(got.serving, want, "serving")
        assert got.serving[0].tolist() == [4, 1]


def test_in_view_counts_and_capacity_sums_equal_bincount() -> None:
    ti, gi, si, el, rng = _links(21, 45, 6, 12, 0)
    cap = rng.uniform(1e9, 1e11, 12)
    slot = slot_index(np.arange(45.0))
    bounds = np.searchsorted(ti, np.arange(46))
    for k0, k1 in ((0, 45), (7, 31), (12, 12), (44, 45)):
        _, _, n_vis, cap_sum = schedule_bounds(
            slot, 6, bounds, gi, si, el, count_steps=(k0, k1), sat_capacity_bps=cap, n_sats=12
        )
        inside = (ti >= k0) & (ti < k1)
        flat = (ti[inside] - k0) * 6 + gi[inside]
        size = (k1 - k0) * 6
        want_n = np.bincount(flat, minlength=size).reshape(k1 - k0, 6).astype(np.int64)
        want_c = np.asarray(
            np.bincount(flat, weights=cap[si[inside]], minlength=size), dtype=np.float64
        ).reshape(k1 - k0, 6)
        _same(n_vis, want_n, "n_visible")
        _same(cap_sum, want_c, "capacity")


# --- selections ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_sites=st.integers(1, 12), n_sub=st.integers(0, 12))
def test_take_links_equals_a_table_selection(seed: int, n_sites: int, n_sub: int) -> None:
    rng = np.random.default_rng(seed)
    ti, gi, si, el, _ = _links(seed, 20, n_sites, 7, 0)
    ti, gi, si = (x.astype(np.int32) for x in (ti, gi, si))
    sites = np.arange(n_sites, dtype=np.int64) * 3 + 1
    subset = np.sort(rng.choice(sites, min(n_sub, n_sites), replace=False))
    column = E._site_column(sites, subset)
    i0, i1 = (int(x) for x in np.searchsorted(ti, [4, 15]))
    eligible = rng.random((11, 7)) < 0.7
    for elig in (np.zeros((0, 0), bool), eligible):
        out = [np.zeros(i1 - i0 + 3, np.int32) for _ in range(3)] + [np.zeros(i1 - i0 + 3)]
        out[2][:3] = [0, 1, 2]  # rows written before: links (0, 0, 0), (0, 0, 1), (0, 0, 2)
        n, ordered = K.take_links(ti, gi, si, el, i0, i1, 4, column, elig, *out, 3)
        # numpy: the steps by slice, the sites through the position table, the satellites
        # through the eligibility mask.
        sl = slice(i0, i1)
        new = column[gi[sl]]
        keep = new >= 0
        if elig.size:
            keep &= elig[ti[sl] - 4, si[sl]]
        want = ((ti[sl] - 4)[keep], new[keep], si[sl][keep], el[sl][keep])
        for got_x, want_x in zip(out, want, strict=True):
            np.testing.assert_array_equal(got_x[3:n], want_x)
        assert ordered == in_link_order(out[0][:n], out[1][:n], out[2][:n])
        # Reversed input: out of order as soon as two links are kept.
        rev = [x[sl][::-1].copy() for x in (ti, gi, si, el)]
        n_r, ordered_r = K.take_links(*rev, 0, i1 - i0, 4, column, elig, *out, 0)
        assert n_r == n - 3 and ordered_r == (n_r < 2)
        # The positions match ChunkWindow.gsl's (searchsorted over the window's sites).
        hit = np.isin(sites, subset)
        np.testing.assert_array_equal(column >= 0, hit)
        np.testing.assert_array_equal(subset[column[hit]], sites[hit])


def test_scheduled_links_equal_numpy() -> None:
    rng = np.random.default_rng(2)
    for _ in range(30):
        n_t, n_sites, n_s = int(rng.integers(1, 9)), int(rng.integers(1, 8)), 9
        ti, gi, si, _, _ = _links(int(rng.integers(1e6)), n_t, n_sites, n_s, 0)
        terminals = np.sort(rng.choice(n_sites, int(rng.integers(0, n_sites + 1)), replace=False))
        serving = rng.integers(-1, n_s, (n_t, terminals.size)).astype(np.int32)
        col = np.full(n_sites, -1, np.int64)
        col[terminals] = np.arange(terminals.size)
        keep = K.scheduled_links(ti, gi, si, col, serving)
        want = serving_gsl_mask(ti, gi, si, serving, terminals)
        np.testing.assert_array_equal(keep, np.flatnonzero(want))


# --- the engine's passes on real chunks ------------------------------------------------------

TERMINALS = ["Kyiv", "Lviv", "Odesa", "Sydney", "Nairobi", "Santiago", "Anchorage", "Quito"]


def _plan(policy: str, **extra: Any) -> Any:
    data = {
        "name": "sched",
        "seed": 3,
        "time": {"start_utc": "2026-05-13T00:00:05Z", "duration_s": 70.0, "step_s": 1.0},
        "constellation": {"preset": "starlink-gen1"},
        "ground": {
            "terminals": TERMINALS,
            "gateways": ["Wola-Krobowska", "Kaunas", "Aerzen"],
            "pops": ["Warsaw", "Frankfurt am Main"],
        },
        "links": {"isl": "plus-grid", "min_elevation_deg": 25.0},
        "routing": {"modes": ["isl", "bent-pipe"], "pairs": "terminal-to-nearest-pop"},
        "service": {"scheduler_policy": policy},
    } | extra
    return build_plan(parse_scenario(data))


CASES = [
    ("hold", {}),
    ("highest", {}),
    ("north", {}),
    ("random", {}),
    ("hold", {"disruptions": {"failures": [{"gateways": ["Wola-Krobowska"]},
                                           {"satellite_fraction": 0.1}]}}),
    # 3-s steps: a satellite moves further in a step, so a chunk that begins one step into a
    # slot (its visibility reads one earlier step) shows whether that step was read.
    ("random", {"time": {"start_utc": "2026-05-13T00:00:05Z", "duration_s": 150.0,
                         "step_s": 3.0}}),
]  # fmt: skip


@pytest.mark.parametrize(("policy", "extra"), CASES)
def test_engine_passes_equal_the_numpy_engine(policy: str, extra: dict) -> None:
    plan = _plan(policy, **extra)
    prop = plan.propagator()
    checked = 0
    # Chunks starting inside a slot and on its boundary (slots at 12, 27, 42, 57 s past the
    # minute; the epoch is 5 s past it), the first chunk too.
    if plan.grid.step_s == 1.0:
        chunks = [(0, 9), (9, 31), (22, 23), (37, 70)]
    else:
        chunks = [(a, a + 2) for a in range(0, plan.grid.n_steps - 2)]
    for start, stop in chunks:
        lo = max(start - 1, 0)
        win = E.chunk_window(plan, prop, lo, stop)
        own = win.steps(lo, stop)
        links = E.chunk_links(
            plan, win.t_s[own], win.r[own], win.ok[own],
            gsl=win.gsl(lo, stop, np.flatnonzero(plan.problem.gsl_site)),
        )  # fmt: skip
        for gw in (False, True):
            got = E.service_schedule(plan, win, lo, stop, via_gateway=gw)
            want = _ref_service_schedule(plan, win, lo, stop, gw)
            _same(got, want, f"schedule {start} {gw}")
            cut = E.restrict_to_schedule(plan, links, got.serving)
            ref, ref_links, ref_of, ref_delay = _ref_restrict(plan, links, got.serving)
            _same(cut, ref, f"restrict {start} {gw}")
            _same(cut.links, ref_links, f"restrict {start} {gw} links")
            _same(cut.link_of, ref_of, f"restrict {start} {gw} link_of")
            _same(cut.gsl_delay_s, ref_delay, f"restrict {start} {gw} delays")
            checked += int((got.serving >= 0).sum())
        vis = E.chunk_visibility(plan, start, links, win)
        assert vis is not None
        want_v = _ref_chunk_visibility(plan, start, links, win)
        got_v = (vis.n_in_view, vis.serving, vis.serving_elevation_rad, vis.handover)
        _same(got_v, want_v, f"visibility {start}")
    assert checked > 100  # terminals were served: the comparison was not of empty arrays


def test_links_out_of_range_are_refused_in_one_line() -> None:
    # The compiled pass reads without bounds checks: schedule_sparse checks first.
    from starmesh.errors import ScenarioError

    t_s = np.array([12.0, 13.0])
    msg = r"site_idx must be in \[0, 2\) and sat_idx >= 0, got site_idx in \[0, 2\]"
    with pytest.raises(ScenarioError, match=msg):
        schedule_sparse(t_s, 2, [0, 1], [0, 2], [3, 3], [0.5, 0.6])
    with pytest.raises(ScenarioError, match="sat_idx >= 0"):
        schedule_sparse(t_s, 2, [0, 1], [0, 1], [3, -1], [0.5, 0.6])
    with pytest.raises(ScenarioError, match="one flag per link"):
        schedule_sparse(t_s, 2, [0, 1], [0, 1], [3, 3], [0.5, 0.6], policy="north", north=[True])
    with pytest.raises(ScenarioError, match="1-D of one length"):
        schedule_sparse(t_s, 2, [0, 1], [0, 1], [3, 3], [0.5])
