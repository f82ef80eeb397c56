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
    vis = np.asarray(visible, dtype=bool)
    n_g = vis.shape[1]
    t_idx, site_idx, sat_idx = np.nonzero(vis)  # C order: sorted by (t, site, sat)
    north = None
    if policy == "north":
        if azimuth_rad is None or site_lat_deg is None:
            raise ScenarioError(
                "service.scheduler_policy", "policy 'north' needs azimuth_rad and site_lat_deg"
            )
        north = north_of_site(
            np.asarray(azimuth_rad, dtype=np.float64)[t_idx, site_idx, sat_idx],
            np.asarray(site_lat_deg, dtype=np.float64)[site_idx],
        )
    return schedule_sparse(
        t_s,
        n_g,
        t_idx,
        site_idx,
        sat_idx,
        np.asarray(elevation_rad, dtype=np.float64)[t_idx, site_idx, sat_idx],
        policy=policy,
        rng=rng,
        north=north,
        slot_s=slot_s,
        offset_s=offset_s,
        epoch_second_of_minute=epoch_second_of_minute,
        previous=previous,
    )


def north_of_site(azimuth_rad: ArrayLike, site_lat_deg: ArrayLike) -> NDArray[np.bool_]:
    """True where a satellite is poleward of its terminal: northern half of the sky for a
    northern-hemisphere terminal, southern half for a southern one (``cos(az)`` sign)."""
    az = np.asarray(azimuth_rad, dtype=np.float64)
    hemi = np.where(np.asarray(site_lat_deg, dtype=np.float64) >= 0.0, 1.0, -1.0)
    return np.asarray(np.cos(az) * hemi > 0.0)


def schedule_sparse(
    t_s: ArrayLike,
    n_sites: int,
    t_idx: ArrayLike,
    site_idx: ArrayLike,
    sat_idx: ArrayLike,
    elevation_rad: ArrayLike,
    *,
    policy: Policy = "hold",
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    north: ArrayLike | None = None,
    slot_s: float = SLOT_S,
    offset_s: float = SLOT_OFFSET_S,
    epoch_second_of_minute: float = 0.0,
    previous: tuple[int, NDArray[np.int32]] | None = None,
) -> Schedule:
    """:func:`schedule` on sparse candidate links (the engine's GSL candidates).

    Parameters
    ----------
    t_s : array_like, shape (T,)
    n_sites : int
        ``G``; sites (terminals) are ``0 .. G-1``.
    t_idx, site_idx, sat_idx : array_like of int, shape (L,)
        Visible terminal-satellite links, sorted by ``t_idx`` (e.g. ``GslCandidates`` restricted
        to terminals).
    elevation_rad : array_like, shape (L,)
    seed : int, optional
        For ``"random"``: a Generator seeded with ``(seed, slot)`` per slot, so the choice is
        independent of chunking (preferred over ``rng`` in runs).
    north : array_like of bool, shape (L,), optional
        Satellite poleward of the terminal (:func:`north_of_site`); required for ``"north"``.
    policy, rng, slot_s, offset_s, epoch_second_of_minute, previous
        As for :func:`schedule`.
    """
    from starmesh.topology import in_link_order

    if policy not in POLICIES:
        raise ScenarioError(
            "service.scheduler_policy",
            f"unknown policy {policy!r}: use one of {', '.join(POLICIES)}",
        )
    if policy == "random" and rng is None and seed is None:
        raise ScenarioError(
            "service.seed", "policy 'random' needs a seed (or a seeded numpy Generator)"
        )
    if policy == "north" and north is None:
        raise ScenarioError("service.scheduler_policy", "policy 'north' needs north flags")
    # Integer arrays are used as they come (the engine's are int32): the compiled passes are
    # specialised to their type, so no int64 copy of every link is made.
    ti, gi, si = (_int_array(x) for x in (t_idx, site_idx, sat_idx))
    el = np.asarray(elevation_rad, dtype=np.float64)
    nb = np.zeros(0, dtype=bool) if north is None else np.asarray(north, dtype=bool)
    # The compiled pass indexes by these without bounds checks: check them here.
    if not (ti.shape == gi.shape == si.shape == el.shape and ti.ndim == 1):
        raise ScenarioError(
            "service.gsl",
            f"t_idx {ti.shape}, site_idx {gi.shape}, sat_idx {si.shape} and elevation_rad "
            f"{el.shape} must be 1-D of one length",
        )
    if policy == "north" and nb.shape != ti.shape:
        raise ScenarioError(
            "service.gsl", f"north has shape {nb.shape}, the links {ti.shape}: one flag per link"
        )
    if ti.size and (gi.min() < 0 or gi.max() >= n_sites or si.min() < 0):
        raise ScenarioError(
            "service.gsl",
            f"site_idx must be in [0, {n_sites}) and sat_idx >= 0, got site_idx in "
            f"[{gi.min()}, {gi.max()}] and sat_idx from {si.min()}",
        )
    if not in_link_order(ti, gi, si):
        if ti.size and np.any(np.diff(ti) < 0):
            raise ScenarioError("service.gsl", "candidate links must be sorted by t_idx")
        # Within a step, by site then satellite (the order GslCandidates have).
        order = np.lexsort((si, gi, ti))
        ti, gi, si, el = ti[order], gi[order], si[order], el[order]
        if nb.size:
            nb = nb[order]
    slot = slot_index(
        t_s, slot_s=slot_s, offset_s=offset_s, epoch_second_of_minute=epoch_second_of_minute
    )
    bounds = np.searchsorted(ti, np.arange(slot.size + 1, dtype=ti.dtype)).astype(np.int64)
    serving, pick, _, _ = schedule_bounds(
        slot,
        n_sites,
        bounds,
        gi,
        si,
        el,
        policy=policy,
        rng=rng,
        seed=seed,
        north=nb,
        previous=previous,
    )
    n_t = slot.size
    carry = (int(slot[-1]) if n_t else -(2**62), pick.astype(np.int32))
    return Schedule(
        serving=serving, handovers=count_handovers(serving, previous), slot=slot, carry=carry
    )


def _int_array(x: ArrayLike) -> NDArray[np.integer]:
    a = np.asarray(x)
    return a if a.dtype.kind in "iu" else a.astype(np.int64)


def schedule_bounds(
    slot: NDArray[np.int64],
    n_sites: int,
    bounds: NDArray[np.int64],
    site_idx: NDArray[np.integer],
    sat_idx: NDArray[np.integer],
    elevation_rad: NDArray[np.float64],
    *,
    policy: Policy = "hold",
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    north: NDArray[np.bool_] | None = None,
    previous: tuple[int, NDArray[np.int32]] | None = None,
    n_sats: int | None = None,
    count_steps: tuple[int, int] = (0, 0),
    sat_capacity_bps: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """:func:`schedule_sparse`'s assignments from links grouped by step (no checks), and the
    satellites in view of each terminal at some of the steps.

    Parameters
    ----------
    slot : ndarray of int64, shape (T,)
        Slot number of each step (:func:`slot_index`), non-decreasing.
    n_sites : int
        ``G``.
    bounds : ndarray of int64, shape (T + 1,)
        Links of step ``k`` are ``bounds[k] .. bounds[k + 1] - 1``.
    site_idx, sat_idx : ndarray of int, shape (L,)
        Within each step ascending by site, then satellite, each pair once; sites in
        ``0 .. n_sites - 1`` and satellites in ``0 .. n_sats - 1`` (not checked).
    elevation_rad : ndarray of float64, shape (L,)
    policy, rng, seed, previous
        As for :func:`schedule_sparse` (``policy`` already checked).
    north : ndarray of bool, shape (L,), optional
        Required for ``"north"``.
    n_sats : int, optional
        More than the largest satellite index (default: found from ``sat_idx``).
    count_steps : (int, int)
        Steps ``k0 .. k1 - 1`` at which to count each terminal's links.
    sat_capacity_bps : ndarray of float64, shape (S,), optional
        Each satellite's capacity [bit/s], summed over those links (zeros if not given).

    Returns
    -------
    serving : ndarray of int32, shape (T, G)
    pick : ndarray of int64, shape (G,)
        The last slot's assignment.
    n_visible : ndarray of int64, shape (k1 - k0, G)
        Links of each terminal at the counted steps.
    capacity_bps : ndarray of float64, shape (k1 - k0, G)
        Sum of their satellites' ``sat_capacity_bps``, added in link order.
    """
    from starmesh.service import sched_kernel as K

    n_t = slot.size
    starts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]]) if n_t else np.zeros(0, int)
    ends = np.r_[starts[1:], n_t].astype(np.int64)
    starts = starts.astype(np.int64)
    carried = previous is not None and n_t > 0 and previous[0] == slot[0]
    draw_off = np.zeros(starts.size + 1, np.int64)
    draws = np.zeros(0)
    if policy == "random":
        parts = []
        for j, a in enumerate(starts):
            if j == 0 and carried:
                parts.append(np.zeros(0))
                continue
            # With ``seed``, one Generator per global slot: the draw does not depend on how
            # the run is cut into chunks (parallel chunks give the same bytes).
            g_rng = np.random.default_rng([seed, int(slot[a]) % 2**63]) if seed is not None else rng
            assert g_rng is not None
            parts.append(g_rng.random(int(bounds[a + 1] - bounds[a])))
        draw_off[1:] = np.cumsum([p.size for p in parts])
        draws = np.concatenate(parts) if parts else draws
    carry = (
        np.asarray(previous[1], dtype=np.int64)
        if carried and previous is not None
        else np.full(n_sites, -1, np.int64)
    )
    code = {"hold": K.HOLD, "highest": K.HIGHEST, "north": K.NORTH, "random": K.RANDOM}[policy]
    if n_sats is None:
        n_sats = int(np.max(sat_idx, initial=-1)) + 1
    if policy == "north" and (north is None or north.size != sat_idx.size):
        raise ScenarioError("service.scheduler_policy", "policy 'north' needs a flag per link")
    if sat_capacity_bps is None:
        sat_capacity_bps = np.zeros(n_sats)
    return K.schedule_slots(
        bounds,
        np.ascontiguousarray(site_idx),
        np.ascontiguousarray(sat_idx),
        np.ascontiguousarray(elevation_rad, dtype=np.float64),
        np.zeros(0, bool) if north is None else np.ascontiguousarray(north, dtype=bool),
        starts,
        ends,
        code,
        draws,
        draw_off,
        n_sites,
        n_sats,
        carry,
        carried,
        count_steps[0],
        count_steps[1],
        np.ascontiguousarray(sat_capacity_bps, dtype=np.float64),
    )


def count_handovers(
    serving: NDArray[np.int32], previous: tuple[int, NDArray[np.int32]] | None = None
) -> NDArray[np.int64]:
    """Changes of serving satellite per terminal, ignoring unserved (-1) steps, shape ``(G,)``."""
    s = np.asarray(serving)
    if previous is not None:
        s = np.vstack([np.asarray(previous[1], dtype=s.dtype)[None, :], s])
    if s.shape[0] == 0:
        return np.zeros(s.shape[1], dtype=np.int64)
    # Each served step against the last served step before it (unserved steps skipped).
    valid = s >= 0
    last = np.maximum.accumulate(np.where(valid, np.arange(s.shape[0])[:, None], -1), axis=0)
    prev = np.vstack([np.full((1, s.shape[1]), -1), last[:-1]])
    cols = np.arange(s.shape[1])[None, :]
    change = valid & (prev >= 0) & (s != s[np.maximum(prev, 0), cols])
    return change.sum(axis=0).astype(np.int64)
