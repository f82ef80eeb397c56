"""Compiled merge of sorted per-step link keys for the scheduler's "hold" policy.

A slot's candidates at its first step are followed through the slot's other steps. Both are
sorted key lists (links come sorted by site, then satellite), so a two-pointer merge per step
replaces sorting the whole slot; no library offers this merge over a CSR-like list of steps,
which is why it is written here (numba, compiled once and cached).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray


@nb.njit(cache=True, nogil=True)
def seen_over_slot(
    key: NDArray[np.int64],
    el: NDArray[np.float64],
    bounds: NDArray[np.int64],
    a: int,
    b: int,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Steps of ``a .. b - 1`` at which each link of step ``a`` is a link, and its lowest
    elevation over them.

    Parameters
    ----------
    key : ndarray of int64, shape (L,)
        Link keys, ascending within each step.
    el : ndarray of float64, shape (L,)
        Elevation of each link [rad].
    bounds : ndarray of int64, shape (T + 1,)
        Links of step ``t`` are ``bounds[t]:bounds[t + 1]``.
    a, b : int
        The slot's steps.

    Returns
    -------
    count : ndarray of int64, shape (K,)
        For each of step ``a``'s ``K`` links, in their order.
    emin : ndarray of float64, shape (K,)
        Their lowest elevation over the steps where they are links [rad].
    """
    i0 = bounds[a]
    n = bounds[a + 1] - i0
    count = np.ones(n, np.int64)
    emin = el[i0 : i0 + n].copy()
    for t in range(a + 1, b):
        j = bounds[t]
        j1 = bounds[t + 1]
        for i in range(n):
            k = key[i0 + i]
            while j < j1 and key[j] < k:
                j += 1
            if j == j1:
                break
            if key[j] == k:
                count[i] += 1
                if el[j] < emin[i]:
                    emin[i] = el[j]
    return count, emin
