"""Compiled passes of the service model over a chunk's terminal-satellite links.

A W4 chunk holds about 2 M terminal-satellite links (1,100 terminals, ~46 satellites each in
view, 45 steps). The global scheduler, the cut of each terminal's links to its scheduled
satellite and the counts of satellites in view each read every link once or twice; in numpy
every one of those reads was several passes (gathers through site tables, masks, boolean
selections, int64 copies of int32 arrays, a sort per slot and a binary search per step). Here
each is one loop over the links, in the order :class:`starmesh.topology.GslCandidates` keeps
them (by step, then site, then satellite). No library offers these fused selections and the
slot policy over a CSR-like list of steps, which is why they are written here (numba, compiled
once and cached, the GIL released).

The functions are exact: they select the same links and make the same choices as the numpy
formulations they replace (``tests/test_sched_kernel.py`` keeps those as references), so runs
are byte-identical.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numpy.typing import NDArray

#: Policy codes of :func:`schedule_slots` (:data:`starmesh.service.scheduler.POLICIES` order).
HOLD, HIGHEST, NORTH, RANDOM = 0, 1, 2, 3


@nb.njit(cache=True, nogil=True)
def take_links(
    t_idx: NDArray[np.integer],
    site_idx: NDArray[np.integer],
    sat_idx: NDArray[np.integer],
    elevation_rad: NDArray[np.float64],
    i0: int,
    i1: int,
    t_shift: int,
    column: NDArray[np.integer],
    eligible: NDArray[np.bool_],
    out_t: NDArray[np.int32],
    out_g: NDArray[np.int32],
    out_s: NDArray[np.int32],
    out_e: NDArray[np.float64],
    n: int,
) -> tuple[int, bool]:
    """Append the links ``i0 .. i1 - 1`` of the sites that ``column`` names to ``out_*``.

    Parameters
    ----------
    t_idx, site_idx, sat_idx : ndarray of int, shape (L,)
        Links (any integer type).
    elevation_rad : ndarray of float64, shape (L,)
        Elevation of each link [rad].
    i0, i1 : int
        The links to read.
    t_shift : int
        Subtracted from ``t_idx`` in the output.
    column : ndarray of int, shape (N,)
        New site index of each site of ``site_idx``; -1 drops its links. A monotonic
        renumbering keeps links in :class:`~starmesh.topology.GslCandidates` order.
    eligible : ndarray of bool, shape (T, S) or (0, 0)
        Keep only links whose satellite is eligible at the (shifted) step; ``(0, 0)``: all.
    out_t, out_g, out_s : ndarray of int32, shape (>= n + i1 - i0,)
    out_e : ndarray of float64, shape (>= n + i1 - i0,)
        Output buffers; links are written from row ``n``.
    n : int
        First free row.

    Returns
    -------
    n : int
        The next free row.
    ordered : bool
        Whether the links written, after row ``n - 1`` of the output on entry, are strictly
        increasing by (step, site, satellite) (the check ``in_link_order`` makes, in the same
        pass).
    """
    check = eligible.size > 0
    ordered = True
    pt = -1
    pg = -1
    ps = -1
    if n > 0:
        pt = out_t[n - 1]
        pg = out_g[n - 1]
        ps = out_s[n - 1]
    # A branch per link: sites come in long runs of links, so it is predicted (a branch-free
    # compaction, as gsl_kernel.gsl_blocks's, was slower here).
    for i in range(i0, i1):
        c = column[site_idx[i]]
        if c < 0:
            continue
        t = t_idx[i] - t_shift
        s = sat_idx[i]
        if check and not eligible[t, s]:
            continue
        if not (t > pt or (t == pt and (c > pg or (c == pg and s > ps)))):
            ordered = False
        pt = t
        pg = c
        ps = s
        out_t[n] = t
        out_g[n] = c
        out_s[n] = s
        out_e[n] = elevation_rad[i]
        n += 1
    return n, ordered


@nb.njit(cache=True, nogil=True)
def seen_by_sites(
    t_idx: NDArray[np.integer],
    site_idx: NDArray[np.integer],
    sat_idx: NDArray[np.integer],
    i0: int,
    i1: int,
    t_shift: int,
    column: NDArray[np.integer],
    site_up: NDArray[np.bool_],
    n_sats: int,
) -> NDArray[np.bool_]:
    """Satellites that link to an up site of ``column`` at each step, shape ``(T, S)``.

    Parameters
    ----------
    t_idx, site_idx, sat_idx : ndarray of int, shape (L,)
    i0, i1, t_shift : int
        As for :func:`take_links`.
    column : ndarray of int, shape (N,)
        Index of each site of ``site_idx`` among the sites of ``site_up``; -1: not one of them.
    site_up : ndarray of bool, shape (T, K)
        Whether each of the ``K`` sites is up at each step.
    n_sats : int
        ``S``.
    """
    seen = np.zeros((site_up.shape[0], n_sats), np.bool_)
    for i in range(i0, i1):
        c = column[site_idx[i]]
        if c < 0:
            continue
        t = t_idx[i] - t_shift
        if site_up[t, c]:
            seen[t, sat_idx[i]] = True
    return seen


@nb.njit(cache=True, nogil=True)
def schedule_slots(
    bounds: NDArray[np.int64],
    site_idx: NDArray[np.integer],
    sat_idx: NDArray[np.integer],
    elevation_rad: NDArray[np.float64],
    north: NDArray[np.bool_],
    starts: NDArray[np.int64],
    ends: NDArray[np.int64],
    policy: int,
    draws: NDArray[np.float64],
    draw_off: NDArray[np.int64],
    n_sites: int,
    n_sats: int,
    carry: NDArray[np.int64],
    use_carry: bool,
    k0: int,
    k1: int,
    sat_capacity_bps: NDArray[np.float64],
) -> tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """The global scheduler's choice in every slot, where it holds, and what is in view.

    At each slot's first step every terminal takes, among the links it has then, the one of
    highest score (ties: the first in link order, i.e. the lowest satellite; a NaN score
    loses to any number). Scores by policy: ``HOLD`` 10 + the link's lowest elevation over
    the slot if it is a link at every step of the slot, else its elevation at the slot's
    start; ``HIGHEST`` the elevation; ``NORTH`` 10 + the elevation if ``north``, else the
    elevation; ``RANDOM`` the slot's ``draws``. The terminal is then served by that satellite
    at every step of the slot at which the link exists (-1 at the others).

    Within a slot the links are read terminal by terminal (a cursor per step), so that a
    terminal's few dozen links per step come from memory once for the slot's elevations, its
    choice, where the choice holds and what it has in view.

    Parameters
    ----------
    bounds : ndarray of int64, shape (T + 1,)
        Links of step ``k`` are ``bounds[k] .. bounds[k + 1] - 1``.
    site_idx, sat_idx : ndarray of int, shape (L,)
        Terminal (``0 .. n_sites - 1``) and satellite (``0 .. n_sats - 1``) of each link;
        within a step ascending by terminal, then satellite, each pair once.
    elevation_rad : ndarray of float64, shape (L,)
        Elevation of each link [rad].
    north : ndarray of bool, shape (L,) or (0,)
        Poleward flags (``NORTH`` only).
    starts, ends : ndarray of int64, shape (K,)
        First and past-the-last step of each slot, consecutive and covering ``0 .. T``.
    policy : int
        :data:`HOLD`, :data:`HIGHEST`, :data:`NORTH` or :data:`RANDOM`.
    draws : ndarray of float64, shape (D,)
        ``RANDOM``: slot ``j``'s scores are ``draws[draw_off[j]:draw_off[j + 1]]``, one per
        link of its first step.
    draw_off : ndarray of int64, shape (K + 1,)
    n_sites, n_sats : int
        ``G`` and ``S``.
    carry : ndarray of int64, shape (G,)
        With ``use_carry``: the first slot's assignment, carried from the previous chunk
        instead of chosen.
    use_carry : bool
    k0, k1 : int
        Steps whose links are counted (``0 <= k0 <= k1 <= T``).
    sat_capacity_bps : ndarray of float64, shape (S,) or (0,)
        Each satellite's capacity [bit/s] (may be empty when ``k0 == k1``).

    Returns
    -------
    serving : ndarray of int32, shape (T, G)
        Serving satellite per step and terminal; -1 when none.
    pick : ndarray of int64, shape (G,)
        The last slot's assignment (-1: none).
    n_visible : ndarray of int64, shape (k1 - k0, G)
        Links of each terminal at steps ``k0 .. k1 - 1``.
    capacity_bps : ndarray of float64, shape (k1 - k0, G)
        Sum of their satellites' capacities [bit/s], added in link order from 0 (as
        ``np.bincount`` with weights adds).
    """
    n_t = bounds.size - 1
    serving = np.full((n_t, n_sites), -1, np.int32)
    pick = np.full(n_sites, -1, np.int64)
    n_vis = np.zeros((k1 - k0, n_sites), np.int64)
    cap = np.zeros((k1 - k0, n_sites), np.float64)
    rank = np.full(n_sats, -1, np.int64)  # a satellite's position in the first step's run
    max_m = 1
    for j in range(starts.size):
        max_m = max(max_m, ends[j] - starts[j])
    pos = np.empty(max_m, np.int64)  # each step's cursor
    run0 = np.empty(max_m, np.int64)  # the terminal's links at each step of the slot
    run1 = np.empty(max_m, np.int64)
    count = np.empty(64, np.int64)
    emin = np.empty(64, np.float64)
    score = np.empty(64, np.float64)
    for j in range(starts.size):
        a = starts[j]
        b = ends[j]
        m = b - a
        for t in range(m):
            pos[t] = bounds[a + t]
        for g in range(n_sites):
            for t in range(m):
                k = pos[t]
                k_end = bounds[a + t + 1]
                run0[t] = k
                while k < k_end and site_idx[k] == g:
                    k += 1
                run1[t] = k
                pos[t] = k
            f0 = run0[0]
            n = run1[0] - f0
            if j == 0 and use_carry:
                p = carry[g]
            elif n == 0:
                p = -1
            else:
                if score.size < n:
                    count = np.empty(2 * n, np.int64)
                    emin = np.empty(2 * n, np.float64)
                    score = np.empty(2 * n, np.float64)
                for i in range(n):
                    score[i] = elevation_rad[f0 + i]
                if policy == HOLD:
                    # Each first-step link through the slot's other steps, found by its
                    # satellite's rank among the first step's.
                    for i in range(n):
                        rank[sat_idx[f0 + i]] = i
                        count[i] = 1
                        emin[i] = score[i]
                    for t in range(1, m):
                        for k in range(run0[t], run1[t]):
                            i = rank[sat_idx[k]]
                            if i >= 0:
                                count[i] += 1
                                # A select, not a branch: half the satellites in view are
                                # setting, in no order along the run, so a branch on this
                                # comparison mispredicts (the same rule: x < y replaces y).
                                x = elevation_rad[k]
                                y = emin[i]
                                emin[i] = x if x < y else y
                    for i in range(n):
                        rank[sat_idx[f0 + i]] = -1
                        if count[i] == m:
                            # Satellites visible all slot rank first, by their minimum elevation.
                            score[i] = 10.0 + emin[i]
                elif policy == NORTH:
                    for i in range(n):
                        if north[f0 + i]:
                            score[i] = 10.0 + score[i]
                elif policy == RANDOM:
                    d0 = draw_off[j] + (f0 - bounds[a])
                    for i in range(n):
                        score[i] = draws[d0 + i]
                p = sat_idx[f0]
                best = score[0]
                for i in range(1, n):
                    x = score[i]
                    if not math.isnan(x) and (math.isnan(best) or x > best):
                        p = sat_idx[f0 + i]
                        best = x
            pick[g] = p
            if p >= 0:
                for t in range(m):
                    for k in range(run0[t], run1[t]):
                        if sat_idx[k] == p:
                            serving[a + t, g] = p
                            break
            for t in range(max(a, k0), min(b, k1)):
                n_vis[t - k0, g] = run1[t - a] - run0[t - a]
                c = 0.0
                for k in range(run0[t - a], run1[t - a]):
                    c += sat_capacity_bps[sat_idx[k]]
                cap[t - k0, g] = c
    return serving, pick, n_vis, cap


@nb.njit(cache=True, nogil=True)
def scheduled_links(
    t_idx: NDArray[np.integer],
    site_idx: NDArray[np.integer],
    sat_idx: NDArray[np.integer],
    column: NDArray[np.integer],
    serving: NDArray[np.int32],
) -> NDArray[np.int64]:
    """Positions of the links to keep once the scheduler has chosen, ascending.

    A link of a terminal (``column[site] >= 0``) is kept if its satellite is the terminal's
    scheduled one at its step; links of other sites (gateways, PoPs) are all kept.

    Parameters
    ----------
    t_idx, site_idx, sat_idx : ndarray of int, shape (L,)
    column : ndarray of int, shape (N,)
        Terminal column (of ``serving``) of each site of ``site_idx``; -1: not a terminal.
    serving : ndarray of int32, shape (T, G)

    Returns
    -------
    ndarray of int64, shape (K,)
    """
    keep = np.empty(t_idx.size, np.int64)
    n = 0
    for i in range(t_idx.size):
        c = column[site_idx[i]]
        if c < 0 or serving[t_idx[i], c] == sat_idx[i]:
            keep[n] = i
            n += 1
    return keep[:n].copy()
