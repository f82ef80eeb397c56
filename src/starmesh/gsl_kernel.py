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
    n = 0
    for t in range(t0, t1):
        for p in range(n_p):
            s = pair_sat[p]
            if not ok[t, s]:
                continue
            g = pair_site[p]
            dx = r[t, s, 0] - site_r[g, 0]
            dy = r[t, s, 1] - site_r[g, 1]
            dz = r[t, s, 2] - site_r[g, 2]
            dist = math.sqrt(dx * dx + dy * dy + dz * dz)
            if not dist <= radius_m:
                continue
            x = (dx * site_up[g, 0] + dy * site_up[g, 1] + dz * site_up[g, 2]) / dist
            if use_elevation:
                if not x >= sin_min:
                    continue
            elif not dist <= max_range_m:
                continue
            ot[n] = t
            og[n] = g
            os_[n] = s
            ol[n] = dist
            ox[n] = x
            n += 1
    return ot[:n].copy(), og[:n].copy(), os_[:n].copy(), ol[:n].copy(), ox[:n].copy()
