"""Compiled exact test of ground-satellite link candidates over blocks of steps.

:func:`starmesh.topology.find_gsls` finds, once per block of consecutive steps, the
site-satellite pairs that can link at any step of the block (a KD-tree query with a radius
widened by how far each satellite moves in the block); :func:`gsl_blocks` then drops, every
few steps, the pairs that cannot pass there and applies the exact rule to the others at each
step in one pass, without the ``(pairs x steps, 3)`` temporaries that the same test costs in
numpy. No library offers a fused "distance and elevation over a candidate list" loop, which is
why it is written here (numba, compiled once and cached).

The kernel keeps the pairs within the search radius (and the maximum range) and, for the
elevation rule, those whose elevation sine ``d . up / |d|`` is not clearly below the mask's;
it returns each pair's range and sine, summed in the order of
:func:`starmesh.topology.link_geometry`, so that the elevation and the mask test itself are then
taken in numpy exactly as the other search methods take them.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numpy.typing import NDArray


@nb.njit(cache=True, nogil=True)
def block_reference(
    r: NDArray[np.float64], ok: NDArray[np.bool_], t0: int, t1: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], float]:
    """The satellites of steps ``t0 .. t1 - 1``, each one's reference step and the largest
    squared distance any of them moves from its reference position within the steps.

    One pass over the block, where numpy gathers and subtracts a ``(steps, S, 3)`` copy.

    Parameters
    ----------
    r : ndarray, shape (T, S, 3)
        Satellite ECEF positions [m].
    ok : ndarray of bool, shape (T, S)
    t0, t1 : int
        Steps of the block.

    Returns
    -------
    sats : ndarray of int64, shape (K,)
        Satellites with a position at some step of the block, increasing.
    ref_t : ndarray of int64, shape (K,)
        Reference step of each: the middle step ``(t0 + t1 - 1) // 2`` where the satellite has
        a position there, else its first step with one.
    drift2_m2 : float
        Largest ``|r[t, s] - r[ref_t, s]|^2`` over the block's steps with a position [m^2].
    """
    n_s = ok.shape[1]
    mid = (t0 + t1 - 1) // 2
    sats = np.empty(n_s, np.int64)
    ref_t = np.empty(n_s, np.int64)
    k = 0
    drift2 = 0.0
    for s in range(n_s):
        rt = -1
        if ok[mid, s]:
            rt = mid
        else:
            for t in range(t0, t1):
                if ok[t, s]:
                    rt = t
                    break
        if rt < 0:
            continue
        sats[k] = s
        ref_t[k] = rt
        k += 1
        x0, y0, z0 = r[rt, s, 0], r[rt, s, 1], r[rt, s, 2]
        for t in range(t0, t1):
            if ok[t, s]:
                dx = r[t, s, 0] - x0
                dy = r[t, s, 1] - y0
                dz = r[t, s, 2] - z0
                d2 = dx * dx + dy * dy + dz * dz
                if d2 > drift2:
                    drift2 = d2
    return sats[:k].copy(), ref_t[:k].copy(), drift2


@nb.njit(cache=True, nogil=True)
def gsl_blocks(
    r: NDArray[np.float64],
    ok: NDArray[np.bool_],
    block_steps: NDArray[np.int64],
    block_p: NDArray[np.int64],
    pair_site: NDArray[np.int64],
    pair_sat: NDArray[np.int64],
    site_r: NDArray[np.float64],
    site_up: NDArray[np.float64],
    radius_m: float,
    use_elevation: bool,
    min_elevation_rad: float,
    max_range_m: float,
    sub_steps: int,
    t_idx: NDArray[np.int32],
    site_idx: NDArray[np.int32],
    sat_idx: NDArray[np.int32],
    length_m: NDArray[np.float64],
    sine: NDArray[np.float64],
) -> int:
    """Links of every block of steps among its candidate pairs, in (step, pair) order.

    Block ``k`` covers steps ``block_steps[k, 0] .. block_steps[k, 1] - 1`` with the candidate
    pairs ``block_p[k] .. block_p[k + 1] - 1``; blocks are disjoint and increasing. Every
    ``sub_steps`` steps of a block, the pairs that cannot pass at any of those steps are dropped
    (triangle inequality on the satellites' largest move from the sub-block's middle step, with
    1 m for rounding): on a 45-step W4 block (1,298 sites, 8,596 satellites), 2.7 M links come
    from 5.8 M candidate pair-steps, of which 3.1 M remain with 6-step sub-blocks. Those get
    the exact test at each step, with the range and sine summed as
    :func:`starmesh.topology.link_geometry` sums them, so the kept values do not depend on the
    dropping.

    Parameters
    ----------
    r : ndarray, shape (T, S, 3)
        Satellite ECEF positions [m].
    ok : ndarray of bool, shape (T, S)
    block_steps : ndarray of int64, shape (B, 2)
        First and past-the-last step of each block.
    block_p : ndarray of int64, shape (B + 1,)
        Pair bounds of the blocks.
    pair_site, pair_sat : ndarray of int64, shape (P,)
        Candidate pairs, sorted by (site, satellite) within each block.
    site_r, site_up : ndarray, shape (G, 3)
        Site positions [m] and unit geodetic verticals.
    radius_m : float
        Search radius: no link is longer [m].
    use_elevation : bool
        Elevation rule (else the slant-range rule).
    min_elevation_rad, max_range_m : float
        The rule's bound.
    sub_steps : int
        Steps per sub-block (>= 1).
    t_idx, site_idx, sat_idx : ndarray of int32, shape (C,)
    length_m, sine : ndarray of float64, shape (C,)
        Output, ``C`` at least the blocks' pairs times steps; rows ``0 .. L - 1`` are
        written: each link's step, site, satellite, slant range [m] and ``d . up / |d|``
        clipped to [-1, 1] as ``np.clip`` clips it. The elevation rule keeps sines down to
        1e-9 below the mask's; the caller takes the elevation and the mask test itself in
        numpy, exactly as the other search methods take them.

    Returns
    -------
    int
        ``L``, the number of links.
    """
    n_b = block_steps.shape[0]
    n_s = ok.shape[1]
    widest = 0
    for k in range(n_b):
        widest = max(widest, block_p[k + 1] - block_p[k])
    sub_sat = np.empty(widest, np.int64)
    sub_site = np.empty(widest, np.int64)
    sub_r = np.empty((widest, 3))
    sub_up = np.empty((widest, 3))
    sub_dist = np.empty(widest)
    sub_x = np.empty(widest)
    # 1e-9 below the mask's sine is far outside rounding; the mask test follows in numpy.
    sin_min = math.sin(min_elevation_rad) - 1e-9
    bound = max_range_m if not use_elevation else radius_m
    lim = min(radius_m, bound)
    # A pair passes at a step of a sub-block only if, with v its displacement at the middle
    # step and D the largest move of a satellite from there: |v| - D <= bound and, for the
    # elevation rule, v . up + D (1 + |sin|) >= sin |v| (|d . up - v . up| <= D, |up| = 1).
    sin_abs1 = 1.0 + abs(sin_min)
    n = 0
    for k in range(n_b):
        p0, p1 = block_p[k], block_p[k + 1]
        for u in range(block_steps[k, 0], block_steps[k, 1], sub_steps):
            v = min(u + sub_steps, block_steps[k, 1])
            mid = (u + v - 1) // 2
            drift2 = 0.0
            for s in range(n_s):
                if ok[mid, s]:
                    for t in range(u, v):
                        if ok[t, s]:
                            dx = r[t, s, 0] - r[mid, s, 0]
                            dy = r[t, s, 1] - r[mid, s, 1]
                            dz = r[t, s, 2] - r[mid, s, 2]
                            drift2 = max(drift2, dx * dx + dy * dy + dz * dz)
            drift = math.sqrt(drift2) + 1.0
            # The pairs kept, with their site's position and vertical side by side: the steps'
            # loop then reads them in order.
            n_sub = 0
            for p in range(p0, p1):
                s = pair_sat[p]
                g = pair_site[p]
                dx = r[mid, s, 0] - site_r[g, 0]
                dy = r[mid, s, 1] - site_r[g, 1]
                dz = r[mid, s, 2] - site_r[g, 2]
                dist = math.sqrt(dx * dx + dy * dy + dz * dz)
                dot = dx * site_up[g, 0] + dy * site_up[g, 1] + dz * site_up[g, 2]
                keep = dist - drift <= lim
                if use_elevation:
                    keep = keep & (dot + drift * sin_abs1 >= sin_min * dist)
                sub_sat[n_sub] = s
                sub_site[n_sub] = g
                for j in range(3):
                    sub_r[n_sub, j] = site_r[g, j]
                    sub_up[n_sub, j] = site_up[g, j]
                # Without a position at the middle step (NaN or not), a pair is never dropped.
                n_sub += keep | (not ok[mid, s])
            for t in range(u, v):
                rt = r[t]
                okt = ok[t]
                # Range and sine of every kept pair, then the test and a branch-free
                # compaction: every pair is written at the next free row and the row is kept
                # only if the pair passes (the test is too close to call for a branch).
                for q in range(n_sub):
                    s = sub_sat[q]
                    dx = rt[s, 0] - sub_r[q, 0]
                    dy = rt[s, 1] - sub_r[q, 1]
                    dz = rt[s, 2] - sub_r[q, 2]
                    dist = math.sqrt(dx * dx + dy * dy + dz * dz)
                    sub_dist[q] = dist
                    sub_x[q] = (dx * sub_up[q, 0] + dy * sub_up[q, 1] + dz * sub_up[q, 2]) / dist
                for q in range(n_sub):
                    s = sub_sat[q]
                    dist = sub_dist[q]
                    x = sub_x[q]
                    t_idx[n] = t
                    site_idx[n] = sub_site[q]
                    sat_idx[n] = s
                    length_m[n] = dist
                    sine[n] = 1.0 if x > 1.0 else (-1.0 if x < -1.0 else x)
                    # A satellite without a position has NaN coordinates and fails every test.
                    keep = okt[s] & (dist <= radius_m) & (dist <= bound)
                    if use_elevation:
                        keep = keep & (x >= sin_min)
                    n += keep
    return n


@nb.njit(cache=True, nogil=True)
def distinct_links(
    site: NDArray[np.integer], sat: NDArray[np.integer], bounds: NDArray[np.int64], n_sats: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], bool]:
    """The distinct (site, satellite) links of a chunk, and each link's index among them.

    Step ``k``'s links are ``bounds[k] .. bounds[k + 1] - 1``, ordered by site, then satellite
    (:class:`starmesh.topology.GslCandidates` order). Each site's satellites are gathered over
    the steps with a mark per satellite, so the cost is linear in the links; ``np.unique`` on
    the keys ``site x n_sats + sat`` sorts all of them (87 ms on a 30-step W4 chunk of 4 M
    links, where consecutive steps share almost every link).

    Returns
    -------
    keys : ndarray of int64, shape (U,)
        Sorted distinct keys ``site x n_sats + sat`` (``np.unique``'s).
    index : ndarray of int64, shape (L,)
        Position of each link's key in ``keys``.
    ok : bool
        False (and the other outputs empty) when the links are not in that order; the caller
        then falls back to ``np.unique``.
    """
    n_t = bounds.size - 1
    n = site.size
    for k in range(n_t):
        for i in range(bounds[k] + 1, bounds[k + 1]):
            if site[i] < site[i - 1] or (site[i] == site[i - 1] and sat[i] <= sat[i - 1]):
                return np.empty(0, np.int64), np.empty(0, np.int64), False
    pos = bounds[:-1].copy()  # each step's cursor, moving through its sites in order
    slot = np.full(n_sats, -1, np.int64)  # a satellite's rank among the current site's
    sats = np.empty(n_sats, np.int64)
    keys = np.empty(n, np.int64)
    index = np.empty(n, np.int64)
    n_keys = 0
    while True:
        g = -1  # the smallest site not yet done at any step
        for k in range(n_t):
            if pos[k] < bounds[k + 1] and (g < 0 or site[pos[k]] < g):
                g = site[pos[k]]
        if g < 0:
            break
        m = 0
        for k in range(n_t):
            i = pos[k]
            while i < bounds[k + 1] and site[i] == g:
                if slot[sat[i]] < 0:
                    slot[sat[i]] = 0
                    sats[m] = sat[i]
                    m += 1
                i += 1
        ranked = np.sort(sats[:m])
        for j in range(m):
            slot[ranked[j]] = n_keys + j
            keys[n_keys + j] = g * n_sats + ranked[j]
        for k in range(n_t):
            i = pos[k]
            while i < bounds[k + 1] and site[i] == g:
                index[i] = slot[sat[i]]
                i += 1
            pos[k] = i
        for j in range(m):
            slot[ranked[j]] = -1
        n_keys += m
    return keys[:n_keys].copy(), index, True


@nb.njit(cache=True, nogil=True)
def links_in_order(t: NDArray[np.integer], g: NDArray[np.integer], s: NDArray[np.integer]) -> bool:
    """Whether links are strictly increasing by (step, site, satellite): one pass, where the
    same test in numpy makes three differences and their comparisons over every link."""
    for i in range(1, t.size):
        if t[i] != t[i - 1]:
            if t[i] < t[i - 1]:
                return False
        elif g[i] != g[i - 1]:
            if g[i] < g[i - 1]:
                return False
        elif s[i] <= s[i - 1]:
            return False
    return True
