"""Compiled pairing of the re-paired +Grid (:class:`starmesh.realset.PlusGridIsl`).

Every step, each satellite looks for its nearest neighbour in the adjacent plane among the four
satellites around its projected slot. In numpy that is a ``(4, S, 3)`` gather and a distance
reduction per step and side (2 ms of W4's 8,596 satellites at every 1-s step); this loop does the
same choice without the temporaries, and :func:`nearest_pairing` the whole step's pairing
(sort, fore/aft, partners, mutual choice) in one pass instead of a dozen numpy passes over the
satellites. No library offers a "nearest of a few candidates per query" loop, which is why it
is written here (numba, compiled once and cached).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray


@nb.njit(cache=True, nogil=True)
def nearest_in_plane(
    rs: NDArray[np.float64],
    src: NDArray[np.int64],
    plane_start: NDArray[np.int64],
    plane_size: NDArray[np.int64],
    pos: NDArray[np.int64],
) -> NDArray[np.int64]:
    """For each query, the nearest of the four satellites around its slot in a target plane.

    The partner rule of :func:`nearest_pairing` (both call :func:`_nearest_one`) for given
    queries: its tests check the rule against scipy's ``cdist`` over the candidates.

    Parameters
    ----------
    rs : ndarray, shape (N, 3)
        Positions [m] of the satellites, sorted by plane, then argument of latitude.
    src : ndarray of int64, shape (Q,)
        Row in ``rs`` of each querying satellite.
    plane_start, plane_size : ndarray of int64, shape (Q,)
        First row and number of satellites of each query's target plane (``plane_size >= 1``).
    pos : ndarray of int64, shape (Q,)
        Insertion row of the query's projected slot in the target plane (``searchsorted``).

    Returns
    -------
    ndarray of int64, shape (Q,)
        Row of the partner: of the bracket ``(lo, hi)`` around ``pos`` and one more satellite
        on each side (cyclic within the plane), the nearest in 3-D; the first of them on a tie.
    """
    out = np.empty(src.size, np.int64)
    for q in range(src.size):
        out[q] = _nearest_one(rs, src[q], plane_start[q], plane_size[q], pos[q])
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def _nearest_one(rs: NDArray[np.float64], src: int, st: int, size: int, p: int) -> int:
    # The bracket (p - 1, p) and one more each side; the remainder wraps them around the
    # plane (p = end is the plane's first satellite, p - 1 < start its last).
    sx, sy, sz = rs[src, 0], rs[src, 1], rs[src, 2]
    best = -1
    best_d2 = np.inf
    for c in (p - 2, p - 1, p, p + 1):
        j = st + (c - st) % size
        dx = rs[j, 0] - sx
        dy = rs[j, 1] - sy
        dz = rs[j, 2] - sz
        d2 = (dx * dx + dy * dy) + dz * dz
        if d2 < best_d2 or best < 0:
            best_d2 = d2
            best = j
    return best


@nb.njit(cache=True, nogil=True)
def _partners(
    rs: NDArray[np.float64],
    flat: NDArray[np.float64],
    plane: NDArray[np.int64],
    key: NDArray[np.float64],
    start: NDArray[np.int64],
    counts: NDArray[np.int64],
) -> NDArray[np.int64]:
    # Row of each satellite's partner in its target plane (-1 without one). The insertion row
    # of each key (np.searchsorted's "left") is found by walking from the previous one: in the
    # satellites' sorted order the keys mostly increase by a slot, so the walk is a step or two
    # where a binary search costs a dozen unpredictable branches.
    out = np.full(plane.size, -1, np.int64)
    n = flat.size
    pos = 0
    for i in range(plane.size):
        tp = plane[i]
        if tp < 0 or counts[tp] == 0:
            continue
        x = key[i]
        while pos < n and flat[pos] < x:
            pos += 1
        while pos > 0 and flat[pos - 1] >= x:
            pos -= 1
        out[i] = _nearest_one(rs, i, start[tp], counts[tp], pos)
    return out


@nb.njit(cache=True, nogil=True)
def slot_keys(
    target: NDArray[np.int64],
    plane_raan: NDArray[np.float64],
    raan: NDArray[np.float64],
    u: NDArray[np.float64],
    cos_i: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Sort key ``plane * 8 + u_target`` of each satellite's projected slot in a target plane.

    To first order in the node difference dO, a satellite at u + du in a plane dO further east
    sits (du + dO cos i) ahead along track (and dO sin i cos u across), so the nearest one has
    du = -dO cos i. The node difference is wrapped to [-pi, pi) by a remainder (a complex
    exponential and its angle agree to an ulp at three transcendental passes' cost), far inside
    the one-slot bracket the partner search looks at. One loop instead of a dozen numpy passes
    over the satellites; float ``%`` is numpy's remainder (the sign of the divisor).

    Parameters
    ----------
    target : ndarray of int64, shape (N,)
        Target plane of each satellite (-1: none; the key is then ``u`` wrapped).
    plane_raan : ndarray of float64, shape (P,)
        Each plane's node at the step [rad].
    raan, u, cos_i : ndarray of float64, shape (N,)
        Each satellite's node and argument of latitude [rad], and its inclination's cosine.

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    two_pi = 2.0 * np.pi
    out = np.empty(target.size)
    for i in range(target.size):
        tp = target[i]
        d_node = 0.0
        if tp >= 0:
            d_node = (plane_raan[tp] - raan[i] + np.pi) % two_pi - np.pi
        else:
            tp = 0
        out[i] = tp * 8.0 + (u[i] + (-d_node * cos_i[i])) % two_pi
    return out


@nb.njit(cache=True, nogil=True)
def nearest_pairing(
    r: NDArray[np.float64],
    order: NDArray[np.int64],
    sat: NDArray[np.int64],
    pid: NDArray[np.int64],
    flat: NDArray[np.float64],
    right_plane: NDArray[np.int64],
    right_key: NDArray[np.float64],
    left_plane: NDArray[np.int64],
    left_key: NDArray[np.float64],
    n_planes: int,
    n_sats: int,
) -> NDArray[np.int64]:
    """The +Grid pairing of one step with nearest cross-plane partners, as edge keys.

    One pass for what :meth:`starmesh.realset.PlusGridIsl` does with searches in numpy: with
    the satellites sorted by plane and argument of latitude, link each to the next in its plane
    (cyclic; a plane of two gives one link), find each one's nearest satellite in the next and
    previous plane around its projected slot (:func:`nearest_in_plane`'s rule) and keep the
    mutual choices. The sorts stay in numpy (its radix and SIMD sorts are ~10x numba's).

    Parameters
    ----------
    r : ndarray, shape (S, 3)
        Positions [m] of all satellites at the step.
    order : ndarray of int64, shape (N,)
        Stable argsort of ``flat``.
    sat, pid : ndarray of int64, shape (N,)
        Satellites taking part (propagated, in a plane) and their plane.
    flat : ndarray of float64, shape (N,)
        Sort key ``plane * 8 + u`` (``u`` the argument of latitude in [0, 2 pi) [rad]).
    right_plane, left_plane : ndarray of int64, shape (N,)
        Next and previous plane of each satellite's plane (-1 where none).
    right_key, left_key : ndarray of float64, shape (N,)
        Sort key of the projected slot in that plane (``plane * 8 + u_target``).
    n_planes, n_sats : int
        Planes, and satellites of the whole set (the key base).

    Returns
    -------
    ndarray of int64
        Keys ``a * n_sats + b`` (``a <= b``) of the links, unsorted, with repeats (a pair of
        two-satellite planes may link twice) and, for a plane of one, self-links.
    """
    n = sat.size
    sat_s = sat[order]
    pid_s = pid[order]
    flat_s = flat[order]
    rs = np.empty((n, 3))
    for i in range(n):
        for c in range(3):
            rs[i, c] = r[sat_s[i], c]
    counts = np.zeros(n_planes, np.int64)
    for i in range(n):
        counts[pid_s[i]] += 1
    start = np.zeros(n_planes, np.int64)
    for k in range(1, n_planes):
        start[k] = start[k - 1] + counts[k - 1]
    right = _partners(rs, flat_s, right_plane[order], right_key[order], start, counts)
    left = _partners(rs, flat_s, left_plane[order], left_key[order], start, counts)
    keys = np.empty(2 * n, np.int64)
    m = 0
    for i in range(n):
        pl = pid_s[i]
        c = counts[pl]
        end = start[pl] + c
        if c >= 3 or (c == 2 and i == start[pl]):
            j = i + 1 if i + 1 < end else start[pl]
            a, b = sat_s[i], sat_s[j]
            keys[m] = min(a, b) * n_sats + max(a, b)
            m += 1
        j = right[i]
        if j >= 0 and left[j] == i:
            a, b = sat_s[i], sat_s[j]
            keys[m] = min(a, b) * n_sats + max(a, b)
            m += 1
    return keys[:m]
