"""The global scheduler: terminal -> satellite assignments that change only at slot boundaries.

Starlink's global controller reassigns terminals to satellites every 15 s, at boundaries
synchronised worldwide (12, 27, 42, 57 s past the minute: Tanveer et al. 2023, Mohan et al.
2024). Within a slot the assignment holds. Policies (``policy=``):

``"hold"``
    best-at-slot-start-and-hold: among satellites visible at every step of the slot (the
    controller plans with ephemerides), the one with the highest *minimum* elevation over the
    slot; if none stays visible, the highest elevation at the slot's start.
``"highest"``
    the highest elevation at the slot's start.
``"north"``
    the highest elevation at the slot's start among satellites north of a northern-hemisphere
    terminal (south of a southern one), falling back to all visible ones. Tanveer et al. 2023
    find the scheduler favours north-facing satellites in the northern hemisphere (GSO-arc
    avoidance keeps terminals from pointing towards the equator).
``"random"``
    a uniformly random satellite visible at the slot's start (seeded Generator).

A satellite that sets before the end of its slot leaves the terminal unserved (``-1``) until the
next boundary: the scheduler does not react within a slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from starmesh.errors import ScenarioError
from starmesh.service.params import SLOT_OFFSET_S, SLOT_S

Policy = Literal["hold", "highest", "north", "random"]
POLICIES: tuple[str, ...] = ("hold", "highest", "north", "random")


def slot_index(
    t_s: ArrayLike,
    *,
    slot_s: float = SLOT_S,
    offset_s: float = SLOT_OFFSET_S,
    epoch_second_of_minute: float = 0.0,
) -> NDArray[np.int64]:
    """Global slot number of each time ``t_s`` [s since the run epoch], shape ``(T,)``.

    ``floor((t_s + epoch_second_of_minute - offset_s) / slot_s)``, where
    ``epoch_second_of_minute`` is the epoch's seconds past the UTC minute.
    """
    t = np.asarray(t_s, dtype=np.float64) + epoch_second_of_minute - offset_s
    # A tiny guard so that 15.000000000001 / 15 rounding does not move a boundary step.
    return np.floor(t / slot_s + 1e-9).astype(np.int64)


@dataclass(frozen=True)
class Schedule:
    """Result of :func:`schedule`.

    Attributes
    ----------
    serving : ndarray of int32, shape (T, G)
        Serving satellite per step and terminal; -1 when none.
    handovers : ndarray of int64, shape (G,)
        Changes of serving satellite between consecutive served slots (including from the
        ``previous`` carry-in).
    slot : ndarray of int64, shape (T,)
        Slot number of each step.
    carry : (int, ndarray of int32, shape (G,))
        Last slot number and the satellite assigned in it (even if it set before the chunk's
        last step): pass it as ``previous=`` to the next chunk.
    """

    serving: NDArray[np.int32]
    handovers: NDArray[np.int64]
    slot: NDArray[np.int64]
    carry: tuple[int, NDArray[np.int32]]


def schedule(
    t_s: ArrayLike,
    visible: NDArray[np.bool_],
    elevation_rad: NDArray[np.float64],
    *,
    policy: Policy = "hold",
    rng: np.random.Generator | None = None,
    azimuth_rad: NDArray[np.float64] | None = None,
    site_lat_deg: ArrayLike | None = None,
    slot_s: float = SLOT_S,
    offset_s: float = SLOT_OFFSET_S,
    epoch_second_of_minute: float = 0.0,
    previous: tuple[int, NDArray[np.int32]] | None = None,
) -> Schedule:
    """Assign each terminal one satellite per slot.

    Parameters
    ----------
    t_s : array_like, shape (T,)
        Step times [s since the epoch], increasing.
    visible : ndarray of bool, shape (T, G, S)
        Satellite above the terminal's elevation mask.
    elevation_rad : ndarray, shape (T, G, S)
    policy : {"hold", "highest", "north", "random"}
    rng : numpy.random.Generator
        Required for ``"random"``.
    azimuth_rad : ndarray, shape (T, G, S)
        Azimuth from north, clockwise; required for ``"north"``.
    site_lat_deg : array_like, shape (G,)
        Terminal latitudes; required for ``"north"``.
    slot_s, offset_s, epoch_second_of_minute : float
        Slot length, boundary offset within the minute and the epoch's seconds past the minute.
    previous : (slot, serving (G,)), optional
        The slot number and assignment of the step before ``t_s[0]`` (from the previous chunk):
        a slot that spans chunks keeps its assignment.

    Returns
    -------
    Schedule
    """
    if policy not in POLICIES:
        raise ScenarioError(
            "service.scheduler_policy",
            f"unknown policy {policy!r}: use one of {', '.join(POLICIES)}",
        )
    vis = np.asarray(visible, dtype=bool)
    el = np.where(vis, np.asarray(elevation_rad, dtype=np.float64), -np.inf)
    n_t, n_g, n_s = vis.shape
    if policy == "random" and rng is None:
        raise ScenarioError("service.seed", "policy 'random' needs a seeded numpy Generator")
    if policy == "north":
        if azimuth_rad is None or site_lat_deg is None:
            raise ScenarioError(
                "service.scheduler_policy", "policy 'north' needs azimuth_rad and site_lat_deg"
            )
        lat = np.asarray(site_lat_deg, dtype=np.float64)
        # cos(az) > 0: satellite in the northern half of the sky.
        northish = (
            np.cos(np.asarray(azimuth_rad, dtype=np.float64))
            * np.where(lat >= 0.0, 1.0, -1.0)[None, :, None]
            > 0.0
        )
    slot = slot_index(
        t_s, slot_s=slot_s, offset_s=offset_s, epoch_second_of_minute=epoch_second_of_minute
    )
    serving = np.full((n_t, n_g), -1, dtype=np.int32)
    g_idx = np.arange(n_g)
    starts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]])
    ends = np.r_[starts[1:], n_t]
    pick = np.full(n_g, -1, dtype=np.int64)
    for a, b in zip(starts, ends, strict=True):
        if a == 0 and previous is not None and previous[0] == slot[0]:
            pick = np.asarray(previous[1], dtype=np.int64)
        else:
            e0 = el[a]
            any_vis = np.isfinite(e0).any(axis=1)
            if policy == "hold":
                emin = el[a:b].min(axis=0)
                whole = np.isfinite(emin).any(axis=1)
                pick = np.where(whole, np.argmax(emin, axis=1), np.argmax(e0, axis=1))
            elif policy == "highest":
                pick = np.argmax(e0, axis=1)
            elif policy == "north":
                en = np.where(northish[a], e0, -np.inf)
                pick = np.where(
                    np.isfinite(en).any(axis=1), np.argmax(en, axis=1), np.argmax(e0, axis=1)
                )
            else:
                assert rng is not None
                # Gumbel-free uniform choice among eligible: random keys, argmax over eligible.
                keys = np.where(np.isfinite(e0), rng.random((n_g, n_s)), -1.0)
                pick = np.argmax(keys, axis=1)
            pick = np.where(any_vis, pick, -1)
        ok = pick >= 0
        still = np.zeros((b - a, n_g), dtype=bool)
        still[:, ok] = vis[a:b, g_idx[ok], pick[ok]]
        serving[a:b] = np.where(still, pick[None, :], -1).astype(np.int32)
    carry = (int(slot[-1]) if n_t else -(2**62), pick.astype(np.int32))
    return Schedule(
        serving=serving, handovers=count_handovers(serving, previous), slot=slot, carry=carry
    )


def count_handovers(
    serving: NDArray[np.int32], previous: tuple[int, NDArray[np.int32]] | None = None
) -> NDArray[np.int64]:
    """Changes of serving satellite per terminal, ignoring unserved (-1) steps, shape ``(G,)``."""
    s = np.asarray(serving)
    if previous is not None:
        s = np.vstack([np.asarray(previous[1], dtype=s.dtype)[None, :], s])
    out = np.zeros(s.shape[1], dtype=np.int64)
    for g in range(s.shape[1]):
        col = s[:, g]
        col = col[col >= 0]
        out[g] = int(np.count_nonzero(col[1:] != col[:-1]))
    return out
