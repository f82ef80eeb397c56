"""Compiled exact test of ground-satellite link candidates over a block of steps.

:func:`starmesh.topology.find_gsls` finds, once per block of consecutive steps, the
site-satellite pairs that can link at any step of the block (a KD-tree query with a radius
widened by how far each satellite moves in the block); this kernel then applies the exact rule
to every pair at every step in one pass, without the ``(pairs x steps, 3)`` temporaries that the
same test costs in numpy. No library offers a fused "distance and elevation over a candidate
list" loop, which is why it is written here (numba, compiled once and cached).

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
def gsl_block(
    r: NDArray[np.float64],
    ok: NDArray[np.bool_],
    t0: int,
    t1: int,
    pair_site: NDArray[np.int64],
    pair_sat: NDArray[np.int64],
    site_r: NDArray[np.float64],
    site_up: NDArray[np.float64],
    radius_m: float,
    use_elevation: bool,
    min_elevation_rad: float,
    max_range_m: float,
) -> tuple[
    NDArray[np.int32],
    NDArray[np.int32],
    NDArray[np.int32],
    NDArray[np.float64],
    NDArray[np.float64],
]:
    """Links of steps ``t0 .. t1 - 1`` among the candidate pairs, in (step, pair) order.

    Parameters
    ----------
    r : ndarray, shape (T, S, 3)
        Satellite ECEF positions [m].
    ok : ndarray of bool, shape (T, S)
    t0, t1 : int
        Steps of the block.
    pair_site, pair_sat : ndarray of int64, shape (P,)
        Candidate pairs, sorted by (site, satellite).
    site_r, site_up : ndarray, shape (G, 3)
        Site positions [m] and unit geodetic verticals.
    radius_m : float
        Search radius: no link is longer [m].
    use_elevation : bool
        Elevation rule (else the slant-range rule).
    min_elevation_rad, max_range_m : float
        The rule's bound.

    Returns
    -------
    t_idx, site_idx, sat_idx : ndarray of int32, shape (L,)
    length_m : ndarray of float64, shape (L,)
    sine : ndarray of float64, shape (L,)
        ``d . up / |d|``, unclipped.
    """
    n_p = pair_site.size
    cap = n_p * (t1 - t0)
    ot = np.empty(cap, np.int32)
    og = np.empty(cap, np.int32)
    os_ = np.empty(cap, np.int32)
    ol = np.empty(cap, np.float64)
    ox = np.empty(cap, np.float64)
    # A prefilter only: 1e-9 below the mask's sine is far outside rounding, and the exact test
    # (numpy's arcsin against the mask) follows.
    sin_min = math.sin(min_elevation_rad) - 1e-9
    # Branch-free compaction: every pair is written at the next free row and the row is kept
    # only if the pair passes (about half do, so a branch per test would mispredict half the
    # time). A satellite without a position has NaN coordinates and fails every test.
    bound = max_range_m if not use_elevation else radius_m
    n = 0
    for t in range(t0, t1):
        for p in range(n_p):
            s = pair_sat[p]
            g = pair_site[p]
            dx = r[t, s, 0] - site_r[g, 0]
            dy = r[t, s, 1] - site_r[g, 1]
            dz = r[t, s, 2] - site_r[g, 2]
            dist = math.sqrt(dx * dx + dy * dy + dz * dz)
            x = (dx * site_up[g, 0] + dy * site_up[g, 1] + dz * site_up[g, 2]) / dist
            ot[n] = t
            og[n] = g
            os_[n] = s
            ol[n] = dist
            ox[n] = x
            keep = ok[t, s] & (dist <= radius_m) & (dist <= bound)
            if use_elevation:
                keep = keep & (x >= sin_min)
            n += keep
    return ot[:n].copy(), og[:n].copy(), os_[:n].copy(), ol[:n].copy(), ox[:n].copy()


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
