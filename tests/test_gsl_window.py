"""The windowed ground-satellite link search against a brute-force product, on satellites that
cross the elevation mask (or the maximum range) within a block of steps.

:func:`starmesh.topology.find_gsls`'s ``"window"`` method drops, every few steps of a block, the
candidate pairs that cannot pass at any of those steps; a pair dropped wrongly is a link lost at
the edge of a sub-block. The oracle here is every site-satellite pair at every step through
:func:`starmesh.topology.link_geometry` (no search radius, no dropping), which sums in the
same order, so the links must be equal bit for bit.
"""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import starmesh.topology as topology
from starmesh.constants import WGS84_A_M
from starmesh.frames import geodetic_to_ecef, up_vectors
from starmesh.topology import GslCandidates, GslRule, find_gsls, link_geometry

#: Hypatia's GSL limit for its Starlink 550 km shell [m] (satgenpy, as tests/test_topology.py).
HYPATIA_MAX_GSL_M = 1_089_686.4181956202


def brute_force(
    r: NDArray[np.float64],
    ok: NDArray[np.bool_],
    site_r: NDArray[np.float64],
    up: NDArray[np.float64],
    rule: GslRule,
) -> GslCandidates:
    """Every (step, site, satellite) through :func:`link_geometry`, the rule applied after."""
    n_t, n_s, _ = r.shape
    t, g, s = (
        x.ravel() for x in np.meshgrid(*map(np.arange, (n_t, len(site_r), n_s)), indexing="ij")
    )
    dist, el = link_geometry(r[t, s] - site_r[g], up[g])
    with np.errstate(invalid="ignore"):
        if rule.max_range_m is not None:
            keep = ok[t, s] & (dist <= rule.max_range_m)
        else:
            keep = ok[t, s] & (el >= rule.min_elevation_rad)
    i32 = np.int32
    return GslCandidates(
        t[keep].astype(i32), g[keep].astype(i32), s[keep].astype(i32), dist[keep], el[keep]
    )


def crossing_scene(
    seed: int,
    n_t: int,
    step_s: float,
    mask_deg: float,
    spread_deg: float,
    use_range: bool,
    *,
    gaps: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    """Sites and satellites on straight tracks that cross the mask (or the range limit) near
    the middle step; with ``gaps``, satellites without a position at some steps (NaN at some
    of those)."""
    rng = np.random.default_rng(seed)
    n_g, n_s = int(rng.integers(1, 6)), int(rng.integers(1, 40))
    lat = np.radians(rng.uniform(-85.0, 85.0, n_g))
    lon = np.radians(rng.uniform(-180.0, 180.0, n_g))
    site_r, up = geodetic_to_ecef(lat, lon, rng.uniform(0.0, 3e3, n_g)), up_vectors(lat, lon)
    east = np.stack([-np.sin(lon), np.cos(lon), np.zeros(n_g)], axis=-1)
    north = np.cross(up, east)
    g = rng.integers(0, n_g, n_s)
    az = rng.uniform(0.0, 2 * math.pi, n_s)
    horizontal = np.cos(az)[:, None] * north[g] + np.sin(az)[:, None] * east[g]
    alt_m = rng.uniform(300e3, 1200e3, n_s)
    if use_range:
        # A point at a range within a few percent of the limit, at any elevation above 0.
        e = np.radians(rng.uniform(1.0, 89.0, n_s))
        direction = np.cos(e)[:, None] * horizontal + np.sin(e)[:, None] * up[g]
        d = HYPATIA_MAX_GSL_M * (1.0 + np.radians(spread_deg) * rng.uniform(-1.0, 1.0, n_s))
    else:
        e = np.radians(mask_deg + rng.uniform(-spread_deg, spread_deg, n_s))
        direction = np.cos(e)[:, None] * horizontal + np.sin(e)[:, None] * up[g]
        # Distance along the direction to the sphere of radius a + h.
        b = np.einsum("ij,ij->i", site_r[g], direction)
        c = np.einsum("ij,ij->i", site_r[g], site_r[g]) - (WGS84_A_M + alt_m) ** 2
        d = -b + np.sqrt(b * b - c)
    mid_r = site_r[g] + d[:, None] * direction
    # Straight tracks through the middle step's position, all at one speed (the largest move,
    # which bounds the dropping, is then every satellite's): half in any direction, half
    # where the elevation (or the range) changes fastest, up or down the line of sight's
    # vertical plane (or along the line of sight).
    v = rng.normal(size=(n_s, 3))
    los = direction if use_range else up[g] - np.sin(e)[:, None] * direction
    steep = rng.random(n_s) < 0.5
    v[steep] = los[steep] * rng.choice([-1.0, 1.0], (int(steep.sum()), 1))
    v *= rng.uniform(3e3, 8e3) / np.linalg.norm(v, axis=1)[:, None]
    t_s = (np.arange(n_t) - (n_t - 1) / 2) * step_s
    r = mid_r[None] + t_s[:, None, None] * v[None]
    ok = rng.random((n_t, n_s)) > (0.1 if gaps else -1.0)
    r[~ok & (rng.random((n_t, n_s)) < 0.5)] = np.nan
    return r, ok, site_r, up


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_t=st.integers(1, 60),
    step_s=st.sampled_from([0.5, 1.0, 3.0, 15.0]),
    mask_deg=st.sampled_from([0.0, 0.3, 10.0, 25.0, 40.0, 60.0]),
    spread_deg=st.sampled_from([0.05, 0.5, 3.0]),
    use_range=st.booleans(),
    sub_steps=st.sampled_from([1, 2, 3, 6, 1000]),
)
def test_window_equals_brute_force_near_the_mask(
    seed: int,
    n_t: int,
    step_s: float,
    mask_deg: float,
    spread_deg: float,
    use_range: bool,
    sub_steps: int,
) -> None:
    r, ok, site_r, up = crossing_scene(seed, n_t, step_s, mask_deg, spread_deg, use_range)
    rule = (
        GslRule(max_range_m=HYPATIA_MAX_GSL_M)
        if use_range
        else GslRule(min_elevation_rad=math.radians(mask_deg))
    )
    with mock.patch.object(topology, "WINDOW_SUB_STEPS", sub_steps):
        got = find_gsls(r, ok, site_r, up, rule, method="window")
    want = brute_force(r, ok, site_r, up, rule)
    for name in ("t_idx", "site_idx", "sat_idx", "length_m", "elevation_rad"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name


def test_crossing_scene_crosses_within_sub_blocks() -> None:
    """The scenes exercise the dropping, for both rules: pairs that link at some steps of the
    window and not at others (a few percent of a 36-step window: some cross inside a sub-block)."""
    for use_range in (False, True):
        r, ok, site_r, up = crossing_scene(11, 36, 1.0, 25.0, 0.5, use_range, gaps=False)
        assert ok.all()
        rule = (
            GslRule(max_range_m=HYPATIA_MAX_GSL_M)
            if use_range
            else GslRule(min_elevation_rad=math.radians(25.0))
        )
        want = brute_force(r, ok, site_r, up, rule)
        # Pairs linked at some steps but not all: each crosses the mask inside the window.
        key = want.site_idx.astype(np.int64) * r.shape[1] + want.sat_idx
        _keys, n_steps = np.unique(key, return_counts=True)
        assert ((n_steps > 0) & (n_steps < r.shape[0])).sum() >= 3
        got = find_gsls(r, ok, site_r, up, rule, method="window")
        assert got.t_idx.tobytes() == want.t_idx.tobytes()
        assert got.length_m.tobytes() == want.length_m.tobytes()
