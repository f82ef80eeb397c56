"""Real constellations from TLE/OMM sets: the operational filter, shell/plane/slot inference,
and +Grid laser links that such a set could hold.

A public element set of a mega-constellation is not a constellation: it holds satellites raising
or lowering their orbits, decaying, direct-to-cell satellites with other payloads, stale element
sets. And it has no plane/slot table, which the +Grid ISL pattern needs. This module supplies
both, from the elements alone:

- :func:`filter_operational` drops what is not an operational broadband relay, with a
  :class:`FilterReport` of what was dropped and why.
- :func:`infer_shells` clusters satellites into shells (inclination, mean-motion altitude),
  planes (RAAN at a common epoch, so that element sets with different epochs cluster right) and
  slots (argument of latitude), and estimates Walker parameters per shell.
- :class:`PlusGridIsl` builds, for each chunk of steps, the +Grid links (fore/aft in plane,
  left/right to the adjacent planes), re-paired at every step, as ``isl_edges (E, 2)`` plus
  ``isl_up (T, E)``.

Thresholds and their sources are listed in ``starmesh/data/PROVENANCE.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .constants import MU_EARTH_M3_S2, WGS84_A_M
from .constellation import REAL_CONSTELLATIONS, Constellation
from .elements import ElementSet, load_starlink_snapshot
from .errors import ScenarioError
from .propagation import j2_rates, mean_elements_arrays, sgp4_state_teme_m
from .timegrid import parse_utc
from .topology import max_isl_range_m

__all__ = [
    "FILTER_REASONS",
    "FilterReport",
    "InferredShell",
    "OperationalCriteria",
    "PlusGridIsl",
    "RealConstellation",
    "ShellInference",
    "filter_operational",
    "infer_shells",
    "keep_everything",
    "load_real_constellation",
    "real_constellation",
    "starlink_2026",
]

_TWO_PI = 2.0 * math.pi
_JD_UNIX = 2440587.5

#: Reasons an object is dropped, in the order they are tested (an object gets the first).
FILTER_REASONS: tuple[str, ...] = (
    "launched_after",
    "direct_to_cell",
    "stale_epoch",
    "eccentric",
    "low_altitude",
    "manoeuvring",
    "off_shell",
)


def _jd_to_datetime(jd: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=jd - _JD_UNIX)


def _datetime_to_jd(t: datetime) -> float:
    return _JD_UNIX + (t - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86_400.0


# --------------------------------------------------------------------------------------------
# Operational filter


@dataclass(frozen=True)
class OperationalCriteria:
    """What counts as an operational broadband relay. Sources: ``data/PROVENANCE.md``.

    Parameters
    ----------
    min_altitude_km : float
        Mean-motion altitude ``(mu / n^2)^(1/3) - 6378.137 km`` below which an object is taken
        as raising its orbit or decaying (default 400 km: every broadband shell filed and
        operated sits at 475-570 km; the direct-to-cell shell at ~360 km is tagged separately).
    max_eccentricity : float
        Above this the orbit is not a station-kept circular shell orbit (default 0.005, a
        69 km apogee-perigee span at 6,900 km; no snapshot object comes near it, max 0.0029).
    max_altitude_rate_km_day : float
        ``|da/dt|`` from the TLE's mean-motion derivative above which the object is manoeuvring
        (raising, lowering, deorbiting). Default 1 km/day; drag at 480 km is ~0.05 km/day.
    max_abs_bstar_per_er : float
        ``|B*|`` [1/Earth radii] above which the fit absorbed thrust or fast decay (default 0.01,
        about 5x the on-station spread of the snapshot's shells).
    max_epoch_age_days : float
        ``|reference epoch - element epoch|`` above which the set is stale (default 3 days:
        SGP4 along-track error grows ~1-2 km/day, and CelesTrak refreshes Starlink several
        times a day, so a set older than that belongs to an object no longer tracked well).
    shell_halfwidth_inc_deg, shell_halfwidth_alt_km : float
        The window (+-) in which an on-station object has at least ``min_shell_neighbours``
        others: objects in transit between shells are spread out in altitude and have few.
    min_shell_neighbours : int
    keep_direct_to_cell, keep_stale, keep_eccentric, keep_low, keep_manoeuvring, keep_off_shell
        Keep the objects that fail that test.
    launched_before : date, optional
        Keep only satellites launched before this day (from their international designators:
        :func:`starmesh.service.fleet.launched_before`), e.g. the fleet of an earlier date
        still in orbit in the element set. Not a health test: reported as ``launched_after``.
    """

    min_altitude_km: float = 400.0
    max_eccentricity: float = 0.005
    max_altitude_rate_km_day: float = 1.0
    max_abs_bstar_per_er: float = 0.01
    max_epoch_age_days: float = 3.0
    shell_halfwidth_inc_deg: float = 0.5
    shell_halfwidth_alt_km: float = 2.5
    min_shell_neighbours: int = 150
    keep_direct_to_cell: bool = False
    keep_stale: bool = False
    keep_eccentric: bool = False
    keep_low: bool = False
    keep_manoeuvring: bool = False
    keep_off_shell: bool = False
    launched_before: date | None = None

    def keeps(self, reason: str) -> bool:
        """True if objects failing ``reason`` are kept."""
        return bool(
            {
                "launched_after": False,
                "direct_to_cell": self.keep_direct_to_cell,
                "stale_epoch": self.keep_stale,
                "eccentric": self.keep_eccentric,
                "low_altitude": self.keep_low,
                "manoeuvring": self.keep_manoeuvring,
                "off_shell": self.keep_off_shell,
            }[reason]
        )


def keep_everything(criteria: OperationalCriteria | None = None) -> OperationalCriteria:
    """``criteria`` (default :class:`OperationalCriteria`) with every ``keep_*`` set: the
    filter then drops nothing but still reports what fails each test."""
    return replace(
        criteria or OperationalCriteria(),
        keep_direct_to_cell=True,
        keep_stale=True,
        keep_eccentric=True,
        keep_low=True,
        keep_manoeuvring=True,
        keep_off_shell=True,
    )


@dataclass(frozen=True)
class FilterReport:
    """What :func:`filter_operational` dropped and why.

    Attributes
    ----------
    n_input, n_kept : int
    kept_idx : ndarray of int64, shape (K,)
        Indices of the kept records in the input set.
    dropped : dict of str to ndarray of int64
        For each reason of :data:`FILTER_REASONS`, the NORAD ids dropped for it (an object is
        counted under the first reason it fails).
    failing : dict of str to int
        How many input objects fail each test at all (kept or not, overlaps counted).
    reference_epoch : datetime
        The epoch element ages are measured from.
    criteria : OperationalCriteria
    """

    n_input: int
    n_kept: int
    kept_idx: NDArray[np.int64]
    dropped: dict[str, NDArray[np.int64]]
    failing: dict[str, int]
    reference_epoch: datetime
    criteria: OperationalCriteria

    @property
    def counts(self) -> dict[str, int]:
        """Number dropped per reason."""
        return {k: int(v.size) for k, v in self.dropped.items()}

    def summary(self) -> str:
        """One line for a run summary, e.g. ``"8,912 of 10,361 kept; dropped: ..."``."""
        parts = [f"{k.replace('_', ' ')} {n:,}" for k, n in self.counts.items() if n]
        return f"{self.n_kept:,} of {self.n_input:,} kept; dropped: " + (
            ", ".join(parts) if parts else "none"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``summary.json``)."""
        return {
            "n_input": self.n_input,
            "n_kept": self.n_kept,
            "reference_epoch_utc": self.reference_epoch.isoformat(),
            "dropped_counts": self.counts,
            "dropped_norad_ids": {k: v.tolist() for k, v in self.dropped.items()},
            "criteria": {
                k: (v.isoformat() if isinstance(v, date) else v)
                for k, v in (
                    (k, getattr(self.criteria, k)) for k in self.criteria.__dataclass_fields__
                )
            },
        }


def mean_motion_altitude_m(n_rad_s: NDArray[np.float64]) -> NDArray[np.float64]:
    """Altitude ``(mu / n^2)^(1/3) - a_WGS84`` [m] of a circular orbit of mean motion ``n``."""
    return np.cbrt(MU_EARTH_M3_S2 / n_rad_s**2) - WGS84_A_M


def filter_operational(
    elements: ElementSet,
    *,
    epoch: str | datetime | None = None,
    criteria: OperationalCriteria | None = None,
) -> tuple[ElementSet, FilterReport]:
    """Keep the operational relays of a TLE/OMM set.

    Parameters
    ----------
    elements : ElementSet
        ``S`` records.
    epoch : str or datetime, optional
        Reference for element age: the run's start. Default: the newest element epoch.
    criteria : OperationalCriteria, optional

    Returns
    -------
    kept : ElementSet
        The records that pass, in input order.
    report : FilterReport

    Raises
    ------
    ScenarioError
        If nothing is left, naming the reason that removed most.

    Examples
    --------
    >>> kept, rep = filter_operational(load_starlink_snapshot())
    >>> rep.counts["direct_to_cell"]
    644
    """
    crit = criteria or OperationalCriteria()
    m = mean_elements_arrays(elements)
    n_s = len(elements)
    ref = parse_utc(epoch) if epoch is not None else _jd_to_datetime(float(m["epoch_jd"].max()))
    age_d = _datetime_to_jd(ref) - m["epoch_jd"]
    alt_m = mean_motion_altitude_m(m["n_kozai_rad_s"])
    a_km = (alt_m + WGS84_A_M) / 1e3
    n_rev_day = m["n_kozai_rad_s"] * 86_400.0 / _TWO_PI
    # a = (mu / n^2)^(1/3)  =>  da/dt = -(2/3) (a / n) dn/dt, with dn/dt = 2 x the TLE field.
    adot_km_day = -(2.0 / 3.0) * a_km / n_rev_day * (2.0 * m["ndot_rev_day2"])
    if crit.launched_before is not None:
        from .service.fleet import launched_before

        after = ~launched_before(elements.intl_designators, crit.launched_before)
    else:
        after = np.zeros(n_s, dtype=bool)
    tests = {
        "launched_after": after,
        "direct_to_cell": np.array(["[DTC]" in r.name.upper() for r in elements.records], bool),
        "stale_epoch": np.abs(age_d) > crit.max_epoch_age_days,
        "eccentric": m["ecc"] > crit.max_eccentricity,
        "low_altitude": alt_m < crit.min_altitude_km * 1e3,
        "manoeuvring": (np.abs(adot_km_day) > crit.max_altitude_rate_km_day)
        | (np.abs(m["bstar_per_er"]) > crit.max_abs_bstar_per_er),
    }
    reason = np.full(n_s, -1, dtype=np.int64)
    for k, name in enumerate(FILTER_REASONS[:-1]):
        hit = tests[name] & (reason < 0) & (not crit.keeps(name))
        reason[hit] = k
    # Off-shell: among the objects still in, count others within the window in (inc, alt).
    alive = np.flatnonzero(reason < 0)
    off = np.zeros(n_s, dtype=bool)
    if alive.size:
        pts = np.stack(
            [
                np.degrees(m["inc_rad"][alive]) / crit.shell_halfwidth_inc_deg,
                alt_m[alive] / (crit.shell_halfwidth_alt_km * 1e3),
            ],
            axis=1,
        )
        count = cKDTree(pts).query_ball_point(pts, r=1.0, p=np.inf, return_length=True)
        off[alive] = (np.asarray(count) - 1) < crit.min_shell_neighbours
    tests["off_shell"] = off
    if not crit.keep_off_shell:
        reason[off & (reason < 0)] = len(FILTER_REASONS) - 1
    ids = elements.norad_ids
    dropped = {name: ids[reason == k] for k, name in enumerate(FILTER_REASONS)}
    kept_idx = np.flatnonzero(reason < 0).astype(np.int64)
    report = FilterReport(
        n_input=n_s,
        n_kept=int(kept_idx.size),
        kept_idx=kept_idx,
        dropped=dropped,
        failing={k: int(v.sum()) for k, v in tests.items()},
        reference_epoch=ref,
        criteria=crit,
    )
    if kept_idx.size == 0:
        worst = max(report.counts, key=lambda k: report.counts[k])
        if worst == "launched_after":
            raise ScenarioError(
                "constellation.filter.launched_before",
                f"no satellite of the {n_s:,} objects was launched before "
                f"{crit.launched_before}: use a later date",
            )
        keep = {
            "direct_to_cell": "keep_direct_to_cell",
            "stale_epoch": "keep_stale",
            "eccentric": "keep_eccentric",
            "low_altitude": "keep_low",
            "manoeuvring": "keep_manoeuvring",
            "off_shell": "keep_off_shell",
        }[worst]
        raise ScenarioError(
            "constellation.filter",
            f"the operational filter keeps none of the {n_s:,} objects (most dropped for "
            f"{worst}); check the run's start_utc against the element epochs (reference "
            f"{ref:%Y-%m-%d}), keep them with constellation.filter.{keep} = true, or set "
            "constellation.operational_filter = false",
        )
    return elements.select(kept_idx), report


# --------------------------------------------------------------------------------------------
# Shell, plane and slot inference


@dataclass(frozen=True)
class InferredShell:
    """Walker-like parameters of one inferred shell.

    Attributes
    ----------
    name : str
        ``"<alt>km-<inc>deg"``.
    n_sats : int
    inclination_deg, altitude_km : float
        Medians of the members' mean inclination and mean-motion altitude.
    n_planes : int
        Occupied planes (RAAN clusters).
    lattice_planes : int
        ``P``: planes of the full pattern, ``round(360 deg / median gap between plane RAANs)``.
    sats_per_plane : int
        ``N``: ``round(360 deg / median in-plane spacing)``, at least the largest plane.
    fill : float
        ``n_sats / (P N)``.
    phasing : int
        Walker ``F`` estimate in ``0 .. P-1``: the most common inter-plane phase step.
    phasing_agreement : float
        Fraction of adjacent plane pairs whose phase step gives that ``F`` (1 for a Walker
        shell; low values mean the phasing is not Walker-like).
    raan_spread_deg : float
        Median absolute deviation of members' RAAN from their plane's centre.
    """

    name: str
    n_sats: int
    inclination_deg: float
    altitude_km: float
    n_planes: int
    lattice_planes: int
    sats_per_plane: int
    fill: float
    phasing: int
    phasing_agreement: float
    raan_spread_deg: float


#: Columns of :meth:`ShellInference.to_table`, in order.
SHELL_TABLE_COLUMNS: tuple[str, ...] = (
    "shell",
    "n_sats",
    "inclination_deg",
    "altitude_km",
    "n_planes",
    "lattice_planes",
    "sats_per_plane",
    "fill",
    "phasing",
    "phasing_agreement",
    "raan_spread_deg",
)


@dataclass(frozen=True)
class ShellInference:
    """Shells, planes and slots of ``S`` satellites at a common epoch.

    Attributes
    ----------
    epoch : datetime
        The common epoch the angles hold at.
    shells : tuple of InferredShell
        Sorted by inclination, then altitude.
    shell_idx : ndarray of int32, shape (S,)
        Index into ``shells``; -1 for satellites in no shell (too few like them).
    plane_id : ndarray of int32, shape (S,)
        Global plane number (planes numbered shell by shell in RAAN order); -1 if none.
    plane_idx, slot_idx : ndarray of int32, shape (S,)
        Lattice plane ``0 .. P-1`` and slot ``0 .. N-1`` within the shell; -1 if none.
    plane_shell : ndarray of int32, shape (n_planes_total,)
        Shell of each global plane.
    plane_next : ndarray of int32, shape (n_planes_total,)
        The plane after each (next RAAN) in its shell, -1 where the ring is open (gap).
    plane_step : ndarray of int32, shape (n_planes_total,)
        Lattice planes between a plane and its next one (1 unless planes are missing).
    inc_rad, altitude_m : ndarray, shape (S,)
        Mean inclination and mean-motion altitude.
    raan_rad, u_rad : ndarray, shape (S,)
        RAAN and argument of latitude at ``epoch`` (from SGP4's state there).
    raan_dot_rad_s, u_dot_rad_s : ndarray, shape (S,)
        Secular J2 rates, for carrying the angles to other times.
    """

    epoch: datetime
    shells: tuple[InferredShell, ...]
    shell_idx: NDArray[np.int32]
    plane_id: NDArray[np.int32]
    plane_idx: NDArray[np.int32]
    slot_idx: NDArray[np.int32]
    plane_shell: NDArray[np.int32]
    plane_next: NDArray[np.int32]
    plane_step: NDArray[np.int32]
    inc_rad: NDArray[np.float64]
    altitude_m: NDArray[np.float64]
    raan_rad: NDArray[np.float64]
    u_rad: NDArray[np.float64]
    raan_dot_rad_s: NDArray[np.float64]
    u_dot_rad_s: NDArray[np.float64]

    @property
    def n_unassigned(self) -> int:
        """Satellites in no shell."""
        return int((self.shell_idx < 0).sum())

    def to_table(self) -> list[dict[str, Any]]:
        """One row per shell, keys :data:`SHELL_TABLE_COLUMNS`."""
        return [
            {
                "shell": s.name,
                "n_sats": s.n_sats,
                "inclination_deg": round(s.inclination_deg, 2),
                "altitude_km": round(s.altitude_km, 1),
                "n_planes": s.n_planes,
                "lattice_planes": s.lattice_planes,
                "sats_per_plane": s.sats_per_plane,
                "fill": round(s.fill, 3),
                "phasing": s.phasing,
                "phasing_agreement": round(s.phasing_agreement, 3),
                "raan_spread_deg": round(s.raan_spread_deg, 3),
            }
            for s in self.shells
        ]

    def to_dataframe(self) -> Any:
        """:meth:`to_table` as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.to_table(), columns=list(SHELL_TABLE_COLUMNS))


def _circular_groups(angle_rad: NDArray[np.float64], gap_rad: float) -> NDArray[np.int64]:
    """Label angles into groups separated by gaps larger than ``gap_rad`` (on the circle).

    Groups are numbered in increasing angle starting after the largest gap.
    """
    n = angle_rad.size
    order = np.argsort(angle_rad, kind="stable")
    a = angle_rad[order]
    gaps = np.diff(np.concatenate([a, a[:1] + _TWO_PI]))
    start = (int(np.argmax(gaps)) + 1) % n
    roll = np.roll(np.arange(n), -start)
    g = np.zeros(n, dtype=np.int64)
    gg = gaps[roll][:-1] > gap_rad
    g[1:] = np.cumsum(gg)
    labels = np.empty(n, dtype=np.int64)
    labels[order[roll]] = g
    return labels


def _circ_mean(angle_rad: NDArray[np.float64]) -> float:
    return float(np.mod(np.angle(np.exp(1j * angle_rad).mean()), _TWO_PI))


def _sats_per_plane(
    u_rad: NDArray[np.float64], plane: NDArray[np.int64], sizes: NDArray[np.int64]
) -> int:
    """Slots per plane ``N`` of one shell.

    The smallest ``N`` from the median plane size up whose slot lattice the arguments of
    latitude fit (mean over planes of ``|mean exp(i N u)|`` at least 0.9: 1 for a Walker plane
    with any slots missing, near 0 for a wrong ``N``), up to 1.5 x the largest plane. Real
    planes hold spares and uneven gaps and may fit no lattice; then the upper-quartile plane
    size (a well-filled plane).
    """
    lo = max(1, int(np.floor(np.median(sizes))))
    # Planes at least two-thirds full: a lattice finer than that fits noise, not slots.
    hi = max(lo, int(1.5 * int(sizes.max())))
    cand = np.arange(lo, hi + 1)
    z = np.exp(1j * cand[:, None] * u_rad[None, :])  # (C, S_shell): a few hundred x a few k
    n_pl = sizes.size
    per_plane = np.zeros((cand.size, n_pl), complex)
    for c in range(cand.size):  # a loop over candidate N, not satellites
        per_plane[c] = np.bincount(plane, weights=z[c].real, minlength=n_pl) + 1j * np.bincount(
            plane, weights=z[c].imag, minlength=n_pl
        )
    coherence = (np.abs(per_plane) / np.maximum(sizes, 1)).mean(axis=1)
    fit = np.flatnonzero(coherence >= 0.9)
    if fit.size:
        return int(cand[fit[0]])
    return max(1, round(float(np.percentile(sizes, 75))))


def infer_shells(
    elements: ElementSet,
    *,
    epoch: str | datetime | None = None,
    inc_link_deg: float = 0.1,
    alt_link_km: float = 3.0,
    min_shell_sats: int = 20,
    plane_gap_deg: float = 1.0,
) -> ShellInference:
    """Cluster satellites into shells, planes and slots, and estimate Walker parameters.

    Shells are the connected groups of satellites within ``inc_link_deg`` of mean inclination
    and ``alt_link_km`` of mean-motion altitude of one another (single linkage); groups smaller
    than ``min_shell_sats`` are left unassigned. Every satellite is propagated by SGP4 to the
    common ``epoch`` and its RAAN and argument of latitude are taken from its state there, so
    that element sets with epochs a day apart (over which J2 turns a 53 deg plane by ~4.5 deg)
    cluster right. Planes are RAAN groups separated by more than ``plane_gap_deg``.

    Parameters
    ----------
    elements : ElementSet
        ``S`` records (filter them first: see :func:`filter_operational`).
    epoch : str or datetime, optional
        Common epoch. Default: the newest element epoch.

    Returns
    -------
    ShellInference

    Notes
    -----
    ``P`` is ``round(360 / median gap between adjacent plane RAANs)``, ``N`` is
    ``round(360 / median gap between adjacent arguments of latitude in a plane)``. The phasing
    ``F`` follows from the slot-lattice phase of each plane: in a Walker delta shell plane
    ``p + 1`` is ``F / P`` of a slot ahead of plane ``p``. Missing planes and slots are
    tolerated as long as fewer than half are missing.
    """
    m = mean_elements_arrays(elements)
    ref = parse_utc(epoch) if epoch is not None else _jd_to_datetime(float(m["epoch_jd"].max()))
    n_s = len(elements)
    inc = m["inc_rad"]
    alt = mean_motion_altitude_m(m["n_kozai_rad_s"])
    r, v, ok = sgp4_state_teme_m(elements, ref)
    h = np.cross(r, v)
    raan = np.mod(np.arctan2(h[:, 0], -h[:, 1]), _TWO_PI)
    node = np.stack([np.cos(raan), np.sin(raan), np.zeros(n_s)], axis=1)
    hn = h / np.linalg.norm(h, axis=1, keepdims=True)
    u = np.mod(
        np.arctan2(np.einsum("ij,ij->i", r, np.cross(hn, node)), np.einsum("ij,ij->i", r, node)),
        _TWO_PI,
    )
    raan_dot, u_dot = j2_rates(alt + WGS84_A_M, inc)

    # Shells: single linkage in (inc, alt), scaled so that the link distance is 1 (Chebyshev).
    good = np.flatnonzero(ok)
    pts = np.stack([np.degrees(inc[good]) / inc_link_deg, alt[good] / (alt_link_km * 1e3)], 1)
    pairs = cKDTree(pts).query_pairs(1.0, p=np.inf, output_type="ndarray")
    graph = coo_array(
        (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(good.size, good.size)
    )
    _n, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    big = [c for c in range(sizes.size) if sizes[c] >= min_shell_sats]
    big.sort(
        key=lambda c: (
            float(np.median(inc[good][comp == c])),
            float(np.median(alt[good][comp == c])),
        )
    )

    shell_idx = np.full(n_s, -1, np.int32)
    plane_id = np.full(n_s, -1, np.int32)
    plane_idx = np.full(n_s, -1, np.int32)
    slot_idx = np.full(n_s, -1, np.int32)
    plane_shell: list[int] = []
    plane_next: list[int] = []
    plane_step: list[int] = []
    shells: list[InferredShell] = []
    # A loop over shells (a handful), not satellites.
    for k, c in enumerate(big):
        members = good[comp == c]
        shell_idx[members] = k
        lab = _circular_groups(raan[members], math.radians(plane_gap_deg))
        n_pl = int(lab.max()) + 1
        centres = np.array([_circ_mean(raan[members][lab == p]) for p in range(n_pl)])
        gaps = np.mod(np.diff(np.concatenate([centres, centres[:1]])), _TWO_PI)
        if n_pl == 1:
            gaps = np.array([_TWO_PI])
        lattice_p = max(n_pl, round(_TWO_PI / float(np.median(gaps))))
        dp = np.maximum(1, np.rint(gaps / (_TWO_PI / lattice_p)).astype(np.int64))
        pidx = np.concatenate([[0], np.cumsum(dp[:-1])]) % lattice_p
        sizes_p = np.bincount(lab, minlength=n_pl)
        n_per = _sats_per_plane(u[members], lab, sizes_p)
        slot_rad = _TWO_PI / n_per
        # Lattice phase of each plane in [0, slot) and the phase step between adjacent planes.
        phase = np.array([_circ_mean(n_per * u[members][lab == p]) / n_per for p in range(n_pl)])
        step = np.mod(np.roll(phase, -1) - phase, slot_rad)
        f_cand = np.mod(np.rint(step / dp * lattice_p / slot_rad), lattice_p).astype(np.int64)
        if n_pl > 1:
            use = f_cand if n_pl > 2 else f_cand[:1]
            counts = np.bincount(use, minlength=lattice_p)
            f_est = int(np.argmax(counts))
            agree = float(counts[f_est] / use.size)
        else:
            f_est, agree = 0, 1.0
        # Slots: u relative to the shell's lattice.
        p_of = pidx[lab]
        shifted = u[members] - p_of * f_est * slot_rad / lattice_p
        ref_phase = _circ_mean(n_per * shifted) / n_per
        slot_idx[members] = np.mod(np.rint((shifted - ref_phase) / slot_rad), n_per).astype(
            np.int32
        )
        plane_idx[members] = p_of.astype(np.int32)
        base = len(plane_shell)
        plane_id[members] = (base + lab).astype(np.int32)
        # Ring of planes: open it across gaps of more than 3 median plane gaps.
        open_gap = gaps > 3.0 * float(np.median(gaps))
        for p in range(n_pl):
            plane_shell.append(k)
            nxt = (
                -1 if (n_pl < 2 or open_gap[p] or (n_pl == 2 and p == 1)) else base + (p + 1) % n_pl
            )
            plane_next.append(nxt)
            plane_step.append(int(dp[p]))
        dev = np.angle(np.exp(1j * (raan[members] - centres[lab])))
        alt_km = float(np.median(alt[members]) / 1e3)
        inc_deg = float(np.degrees(np.median(inc[members])))
        shells.append(
            InferredShell(
                name=f"{alt_km:.0f}km-{inc_deg:.1f}deg",
                n_sats=int(members.size),
                inclination_deg=inc_deg,
                altitude_km=alt_km,
                n_planes=n_pl,
                lattice_planes=int(lattice_p),
                sats_per_plane=int(n_per),
                fill=float(members.size / (lattice_p * n_per)),
                phasing=f_est,
                phasing_agreement=agree,
                raan_spread_deg=float(np.degrees(np.median(np.abs(dev)))),
            )
        )
    return ShellInference(
        epoch=ref,
        shells=tuple(shells),
        shell_idx=shell_idx,
        plane_id=plane_id,
        plane_idx=plane_idx,
        slot_idx=slot_idx,
        plane_shell=np.asarray(plane_shell, np.int32),
        plane_next=np.asarray(plane_next, np.int32),
        plane_step=np.asarray(plane_step, np.int32),
        inc_rad=inc,
        altitude_m=alt,
        raan_rad=raan,
        u_rad=u,
        raan_dot_rad_s=raan_dot,
        u_dot_rad_s=u_dot,
    )


# --------------------------------------------------------------------------------------------
# +Grid ISLs for inferred shells


CrossPlane = Literal["nearest", "lattice"]


@dataclass
class PlusGridIsl:
    """+Grid laser links of inferred shells, re-paired at every step.

    Fore/aft: each satellite links to its neighbours in argument of latitude within its plane
    (so a missing slot makes the link span the gap). Left/right: to a satellite of the next and
    previous plane of its shell, kept only if the choice is mutual (so no satellite has more
    than four links). Links cross shells only with ``cross_shell=True``. A link is in use at a
    step if both satellites
    propagate, the pairing holds at that step and its length is within ``max_range_m``.

    Parameters
    ----------
    inference : ShellInference
    max_range_m : float
        Longest usable ISL [m].
    cross_plane : {"nearest", "lattice"}
        ``"nearest"``: the partner in the adjacent plane is the nearest satellite (candidates
        from the first-order along-track offset ``u + RAAN cos i``, chosen by 3-D distance).
        ``"lattice"``: the satellite nearest in argument of latitude to ``u + dp F / P`` slots,
        i.e. the same Walker slot (this reproduces :func:`starmesh.topology.plus_grid_edges`
        for Walker shells, seam included).
    cross_shell : bool
        Also link each satellite to its nearest satellite of another shell when the choice is
        mutual (a fifth link; off by default: a terminal pointing across shells has to track a
        partner with a different orbital period).

    Notes
    -----
    Each step is a pure function of the step's positions and time, so chunks can run in any
    order or in parallel. The per-step work is a few sorts and searches over ``S``.
    """

    inference: ShellInference
    max_range_m: float
    cross_plane: CrossPlane = "nearest"
    cross_shell: bool = False
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cross_plane not in ("nearest", "lattice"):
            raise ValueError(
                f"cross_plane must be 'nearest' or 'lattice', got {self.cross_plane!r}"
            )
        if not self.max_range_m > 0:
            raise ValueError(f"max_range_m must be > 0, got {self.max_range_m!r}")
        inf = self.inference
        assigned = inf.plane_id >= 0
        self._sat = np.flatnonzero(assigned)
        pid = inf.plane_id[self._sat].astype(np.int64)
        self._pid = pid
        self._u0 = inf.u_rad[self._sat]
        self._udot = inf.u_dot_rad_s[self._sat]
        self._raan0 = inf.raan_rad[self._sat]
        self._raandot = inf.raan_dot_rad_s[self._sat]
        self._cos_i = np.cos(inf.inc_rad[self._sat])
        n_planes = inf.plane_next.size
        # Walker offset of the next plane, per plane [rad]: dp F / P slots.
        off = np.zeros(n_planes)
        for k, s in enumerate(inf.shells):
            sel = inf.plane_shell == k
            off[sel] = (
                inf.plane_step[sel] * s.phasing * (_TWO_PI / s.sats_per_plane) / s.lattice_planes
            )
        self._next_off = off
        prev = np.full(n_planes, -1, np.int64)
        has = inf.plane_next >= 0
        prev[inf.plane_next[has]] = np.flatnonzero(has)
        self._prev = prev
        self._n_planes = n_planes
        # Plane centres (circular mean RAAN at the inference epoch) and their drift rates.
        z = np.zeros(n_planes, complex)
        np.add.at(z, pid, np.exp(1j * inf.raan_rad[self._sat]))
        self._plane_raan = np.angle(z)
        cnt = np.maximum(np.bincount(pid, minlength=n_planes), 1)
        self._plane_raan_dot = (
            np.bincount(pid, weights=inf.raan_dot_rad_s[self._sat], minlength=n_planes) / cnt
        )

    def shell_order(self) -> NDArray[np.int64]:
        """Satellites sorted by shell, plane and argument of latitude at the inference epoch
        (satellites in no plane last), shape (S,).

        A real set lists satellites by catalogue number, shells interleaved (the shell changes
        601 times along W4's 8,596); a shortest-path tree stays in one shell's laser mesh, so
        in that order its nodes spread over every cache line of the per-tree arrays. The
        routing graphs number satellites in this order instead (sssp_update on a captured W4
        chunk: 20 % faster).
        """
        if "shell_order" not in self._cache:
            inf = self.inference
            shell = np.where(inf.shell_idx >= 0, inf.shell_idx, np.iinfo(np.int64).max)
            self._cache["shell_order"] = np.lexsort((inf.u_rad, inf.plane_id, shell)).astype(
                np.int64
            )
        order: NDArray[np.int64] = self._cache["shell_order"]
        return order

    def _pair_step(
        self,
        r: NDArray[np.float64],
        ok: NDArray[np.bool_],
        tau_s: float,
        hint: NDArray[np.int64] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64] | None]:
        """Edge keys ``a * S + b`` (a < b) of the pairing at one step, and the order of the
        satellites by plane and argument of latitude (give it as ``hint`` at the next step:
        it nearly sorts them again)."""
        inf = self.inference
        n_s = inf.shell_idx.size
        okm = ok[self._sat]
        if okm.all():
            sat, pid, u0, udot = self._sat, self._pid, self._u0, self._udot
            raan0, raandot, cos_i = self._raan0, self._raandot, self._cos_i
        else:
            sat, pid, u0, udot = self._sat[okm], self._pid[okm], self._u0[okm], self._udot[okm]
            raan0, raandot, cos_i = self._raan0[okm], self._raandot[okm], self._cos_i[okm]
        if sat.size < 2:
            return np.zeros(0, np.int64), None
        u: NDArray[np.float64] = np.mod(u0 + udot * tau_s, _TWO_PI)
        flat = pid * 8.0 + u  # planes 8 rad apart: keys never interleave
        order = _argsort_with_hint(flat, hint)
        if self.cross_plane == "nearest":
            parts = [
                self._nearest_pairing(r, sat, pid, u, flat, order, raan0, raandot, cos_i, tau_s)
            ]
            if self.cross_shell:
                a_x, b_x = _mutual_nearest_across_groups(r[sat], inf.shell_idx[sat])
                a_x, b_x = sat[a_x], sat[b_x]
                parts.append(np.minimum(a_x, b_x) * n_s + np.maximum(a_x, b_x))
            return _distinct_keys(np.concatenate(parts), n_s), order
        # Lattice partners: Walker's same slot, dp F / P of a slot ahead in the next plane.
        hint_out = order
        sat, pid, u, flat = sat[order], pid[order], u[order], flat[order]
        counts = np.bincount(pid, minlength=self._n_planes)
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        end = start + counts
        n = sat.size
        idx = np.arange(n)
        # Fore/aft: next in the plane's u order, cyclic; planes of two give one link.
        nxt_in = np.where(idx + 1 < end[pid], idx + 1, start[pid])
        fa = (counts[pid] >= 3) | ((counts[pid] == 2) & (idx == start[pid]))
        a_list = [sat[fa]]
        b_list = [sat[nxt_in[fa]]]

        def partner(
            target_plane: NDArray[np.int64], target_u: NDArray[np.float64]
        ) -> NDArray[np.int64]:
            res = np.full(target_plane.size, -1, np.int64)
            valid = target_plane >= 0
            valid[valid] = counts[target_plane[valid]] > 0
            tp = target_plane[valid]
            tu = np.mod(target_u[valid], _TWO_PI)
            pos = np.searchsorted(flat, tp * 8.0 + tu)
            hi = np.where(pos < end[tp], pos, start[tp])
            lo = np.where(pos - 1 >= start[tp], pos - 1, end[tp] - 1)
            e_hi = np.abs(np.angle(np.exp(1j * (u[hi] - tu))))
            e_lo = np.abs(np.angle(np.exp(1j * (u[lo] - tu))))
            res[valid] = np.where(e_lo < e_hi, lo, hi)
            return res

        nxt_plane = inf.plane_next.astype(np.int64)[pid]
        prv_plane = self._prev[pid]
        off_r = np.where(nxt_plane >= 0, self._next_off[pid], 0.0)
        off_l = -np.where(prv_plane >= 0, self._next_off[np.maximum(prv_plane, 0)], 0.0)
        right = partner(nxt_plane, u + off_r)
        left = partner(prv_plane, u + off_l)
        has = right >= 0
        mutual = np.zeros(n, bool)
        mutual[has] = left[right[has]] == idx[has]
        a_list.append(sat[mutual])
        b_list.append(sat[right[mutual]])
        if self.cross_shell:
            a_x, b_x = _mutual_nearest_across_groups(r[sat], inf.shell_idx[sat])
            a_list.append(sat[a_x])
            b_list.append(sat[b_x])
        a = np.concatenate(a_list).astype(np.int64)
        b = np.concatenate(b_list).astype(np.int64)
        return _distinct_keys(np.minimum(a, b) * n_s + np.maximum(a, b), n_s), hint_out

    def _nearest_pairing(
        self,
        r: NDArray[np.float64],
        sat: NDArray[np.int64],
        pid: NDArray[np.int64],
        u: NDArray[np.float64],
        flat: NDArray[np.float64],
        order: NDArray[np.int64],
        raan0: NDArray[np.float64],
        raandot: NDArray[np.float64],
        cos_i: NDArray[np.float64],
        tau_s: float,
    ) -> NDArray[np.int64]:
        """The within-shell links of :meth:`_pair_step` with nearest partners, as unsorted
        keys ``a * S + b`` (repeats and self-links possible): the projected slots
        (:func:`starmesh.grid_kernel.slot_keys`), then the searches and choices in one
        compiled pass (:func:`starmesh.grid_kernel.nearest_pairing`)."""
        from .grid_kernel import nearest_pairing, slot_keys

        inf = self.inference
        nxt_plane = inf.plane_next.astype(np.int64)[pid]
        prv_plane = self._prev[pid]
        raan = raan0 + raandot * tau_s
        centre = self._plane_raan + self._plane_raan_dot * tau_s
        return nearest_pairing(
            r,
            order,
            sat,
            pid,
            flat,
            nxt_plane,
            slot_keys(nxt_plane, centre, raan, u, cos_i),
            prv_plane,
            slot_keys(prv_plane, centre, raan, u, cos_i),
            self._n_planes,
            inf.shell_idx.size,
        )

    def links(
        self,
        r_ecef_m: NDArray[np.float64],
        ok: NDArray[np.bool_],
        t_s: NDArray[np.float64],
        *,
        epoch: datetime,
    ) -> tuple[NDArray[np.int32], NDArray[np.bool_]]:
        """The +Grid links of one chunk of steps.

        Parameters
        ----------
        r_ecef_m : ndarray, shape (T, S, 3)
            Positions [m] (NaN where propagation failed).
        ok : ndarray of bool, shape (T, S)
        t_s : ndarray, shape (T,)
            Offsets [s] from ``epoch``.
        epoch : datetime
            UTC time of ``t_s == 0`` (the run's start).

        Returns
        -------
        isl_edges : ndarray of int32, shape (E, 2)
            Every link used at some step of the chunk, ``a < b``, sorted.
        isl_up : ndarray of bool, shape (T, E)
            Which links are in use at each step (paired, both ends valid, within range).
        """
        edges, up, _ = self.links_and_lengths(r_ecef_m, ok, t_s, epoch=epoch)
        return edges, up

    def links_and_lengths(
        self,
        r_ecef_m: NDArray[np.float64],
        ok: NDArray[np.bool_],
        t_s: NDArray[np.float64],
        *,
        epoch: datetime,
    ) -> tuple[NDArray[np.int32], NDArray[np.bool_], NDArray[np.float64]]:
        """:meth:`links`, and the length [m] of every link at every step, shape (T, E) (NaN
        where an end has no position), as :func:`starmesh.topology.isl_lengths_m` gives them:
        the range test measures them anyway."""
        n_t, n_s, _ = r_ecef_m.shape
        shift = (parse_utc(epoch) - self.inference.epoch).total_seconds()
        # The pairing changes rarely (a few links an hour): keep each distinct pairing once.
        distinct: list[NDArray[np.int64]] = []
        which = np.zeros(n_t, np.int64)
        hint = None
        for t in range(n_t):
            k, hint = self._pair_step(r_ecef_m[t], ok[t], float(t_s[t]) + shift, hint)
            if not distinct or not np.array_equal(k, distinct[-1]):
                distinct.append(k)
            which[t] = len(distinct) - 1
        if len(distinct) == 1:
            allk = distinct[0]  # sorted and distinct already
        else:
            allk = np.unique(np.concatenate(distinct)) if distinct else np.zeros(0, np.int64)
        edges = np.stack([allk // n_s, allk % n_s], axis=1).astype(np.int32)
        up_distinct = np.zeros((len(distinct), allk.size), dtype=bool)
        for i, k in enumerate(distinct):
            up_distinct[i, np.searchsorted(allk, k)] = True
        up = up_distinct[which]
        length = np.empty((n_t, allk.size))
        if allk.size:
            e0, e1 = edges[:, 0], edges[:, 1]
            for t in range(n_t):  # per step: the gathers stay in cache
                d = r_ecef_m[t, e0] - r_ecef_m[t, e1]
                np.sqrt(np.einsum("ei,ei->e", d, d), out=length[t])
            with np.errstate(invalid="ignore"):
                up &= length <= self.max_range_m
        return edges, up, length


def _argsort_with_hint(x: NDArray[np.float64], hint: NDArray[np.int64] | None) -> NDArray[np.int64]:
    """``np.argsort(x, kind="stable")``, from a permutation ``hint`` that nearly sorts ``x``
    (the last step's order: satellites move little in a step). numpy's stable sort is a
    timsort, linear on nearly sorted input: 22 us instead of 570 us for 8,600 keys. Equal
    keys must stay in index order, as argsort leaves them: if there are any, sort plainly."""
    if hint is None or hint.size != x.size:
        return np.argsort(x, kind="stable")
    order = hint[np.argsort(x[hint], kind="stable")]
    xs = x[order]
    if (xs[1:] == xs[:-1]).any():
        return np.argsort(x, kind="stable")
    return order


def _distinct_keys(keys: NDArray[np.int64], n_s: int) -> NDArray[np.int64]:
    """Edge keys ``a * n_s + b`` sorted, without repeats and self-links (``a == b``); a sort
    and a neighbour comparison, as np.unique hashes, which is slower here."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]] & (keys % n_s != keys // n_s)]


def _mutual_nearest_across_groups(
    r_m: NDArray[np.float64], group: NDArray[np.int32]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Pairs ``(i, j)`` where ``j`` is ``i``'s nearest point of another group and vice versa.

    One KD-tree per group (a handful of shells), not per point.
    """
    n = group.size
    best_d = np.full(n, np.inf)
    best_j = np.full(n, -1, np.int64)
    for g in np.unique(group):
        members = np.flatnonzero(group == g)
        others = np.flatnonzero(group != g)
        if members.size == 0 or others.size == 0:
            continue
        d, j = cKDTree(r_m[members]).query(r_m[others], k=1)
        better = d < best_d[others]
        best_d[others[better]] = d[better]
        best_j[others[better]] = members[j[better]]
    i = np.flatnonzero(best_j >= 0)
    mutual = best_j[best_j[i]] == i
    i = i[mutual & (i < best_j[i])]
    return i, best_j[i]


# --------------------------------------------------------------------------------------------
# Built-in real constellation


@dataclass(frozen=True)
class RealConstellation:
    """A filtered, inferred real constellation: what a scenario naming it runs on.

    Attributes
    ----------
    constellation : Constellation
        The kept satellites (SGP4), numbered as in ``inference``.
    report : FilterReport
    inference : ShellInference
    """

    constellation: Constellation
    report: FilterReport
    inference: ShellInference

    def default_isl_range_m(self) -> float:
        """Hypatia's line-of-sight ISL range (80 km grazing height) at the lowest shell [m]."""
        lowest = min((s.altitude_km for s in self.inference.shells), default=500.0)
        return max_isl_range_m(lowest * 1e3)

    def plus_grid(
        self,
        max_range_m: float | None = None,
        *,
        cross_plane: CrossPlane = "nearest",
        cross_shell: bool = False,
    ) -> PlusGridIsl:
        """The +Grid ISL builder (range default: :meth:`default_isl_range_m`)."""
        rng = self.default_isl_range_m() if max_range_m is None else max_range_m
        return PlusGridIsl(self.inference, rng, cross_plane, cross_shell)


def real_constellation(
    name: str,
    elements: ElementSet,
    *,
    epoch: str | datetime | None = None,
    criteria: OperationalCriteria | None = None,
) -> RealConstellation:
    """Filter and infer a TLE/OMM set (what ``tle_file`` runs should use).

    Parameters
    ----------
    name : str
    elements : ElementSet
    epoch : str or datetime, optional
        Reference for stale elements and the inference epoch: the run's start. Default: the
        newest element epoch.
    criteria : OperationalCriteria, optional
    """
    kept, report = filter_operational(elements, epoch=epoch, criteria=criteria)
    inference = infer_shells(kept, epoch=report.reference_epoch)
    return RealConstellation(Constellation.from_elements(name, kept), report, inference)


def load_real_constellation(
    name: str, *, criteria: OperationalCriteria | None = None
) -> RealConstellation:
    """A built-in real constellation by name (:data:`constellation.REAL_CONSTELLATIONS`).

    Raises
    ------
    ScenarioError
        For an unknown name, listing the known ones.
    """
    if name == "starlink-2026":
        return starlink_2026(criteria)
    raise ScenarioError(
        "constellation.preset",
        f"unknown real constellation {name!r}: use one of {', '.join(sorted(REAL_CONSTELLATIONS))}",
    )


def starlink_2026(criteria: OperationalCriteria | None = None) -> RealConstellation:
    """The built-in ``starlink-2026`` constellation: the shipped May-2026 snapshot, filtered
    with ``criteria`` (default :class:`OperationalCriteria`) and inferred at its newest epoch.

    Cached (the criteria are hashable).

    Examples
    --------
    >>> rc = starlink_2026()
    >>> rc.constellation.name, rc.report.n_input
    ('starlink-2026', 10361)
    """
    return _starlink_2026(criteria or OperationalCriteria())


@lru_cache(maxsize=4)
def _starlink_2026(criteria: OperationalCriteria) -> RealConstellation:
    return real_constellation("starlink-2026", load_starlink_snapshot(), criteria=criteria)
