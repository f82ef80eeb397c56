"""Traffic demand: which flows want how many bit/s between which ground sites, and when.

A :class:`Flows` holds ``F`` flows as arrays: source and destination site, demand [bit/s] and,
for diurnal flows, the local clock that scales the demand over the day
(:class:`DiurnalProfile`). Three builders make them:

* :func:`access_flows`: user terminals to and from their PoP (the Starlink service itself);
* :func:`gravity_flows`: city-to-city demand from a gravity model, ``pop_i pop_j / d_ij^alpha``;
* :func:`explicit_flows`: a list of ``(src, dst, demand_bps)``.

Combine them with :meth:`Flows.concat`. Nothing here is random; a caller that draws demands
draws them with the scenario's seeded ``numpy.random.Generator`` and passes the numbers in.

Terminal multiplicity
---------------------
A terminal site may stand for ``N`` terminals (a city's users). With ``aggregate=True`` (the
default) it gets one flow per direction with ``N`` times one terminal's demand: few flows, and
max-min fairness then treats the site's users as one. With ``aggregate=False`` each terminal is
its own flow (``N`` per direction) with its own demand capped at one terminal's rate: per-user
fairness, at ``N`` times the flows. Either way the site's access resources in
:func:`starmesh.capacity.build_resources` carry ``N`` terminals' capacity
(``n_terminals_per_site``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import ScenarioError, StarmeshError, UnknownSiteError
from .frames import great_circle_m
from .ground import Sites
from .timegrid import parse_utc

__all__ = [
    "DiurnalProfile",
    "Flows",
    "access_flows",
    "explicit_flows",
    "gravity_flows",
    "local_solar_offset_h",
]

Endpoint = int | str


@dataclass(frozen=True)
class DiurnalProfile:
    """A smooth daily demand curve in local time: 1 at the evening peak, ``trough_fraction`` at
    the night-time trough.

    The curve rises as a half cosine from the trough to the peak and falls as a half cosine
    back, so it and its slope are continuous all day.

    The defaults are an assumption shaped by public observations, not a fit: residential
    internet traffic peaks in the evening, typically between 7 and 11 pm local time (Wikipedia,
    "Internet rush hour"); Arbor Networks' ASERT blog post "The Internet After Dark" (C.
    Labovitz) shows North American consumer traffic peaking around 11 pm and at about 50 % of the
    peak at 6 am, and European traffic peaking around 7 pm GMT. The trough at 4 am at 40 % of
    the peak is a middle value; IXP and ISP daily graphs show 25-50 %.

    Parameters
    ----------
    peak_hour : float
        Local hour of the peak, in [0, 24).
    trough_hour : float
        Local hour of the trough, in [0, 24), different from the peak.
    trough_fraction : float
        Demand at the trough over demand at the peak, in [0, 1].

    Examples
    --------
    >>> p = DiurnalProfile()
    >>> p.factor([21.0, 4.0]).tolist()
    [1.0, 0.4]
    """

    peak_hour: float = 21.0
    trough_hour: float = 4.0
    trough_fraction: float = 0.4

    def __post_init__(self) -> None:
        for name in ("peak_hour", "trough_hour"):
            v = getattr(self, name)
            if not (0.0 <= v < 24.0):
                raise ScenarioError(f"traffic.diurnal.{name}", f"must be in [0, 24), got {v!r}")
        if self.peak_hour == self.trough_hour:
            raise ScenarioError(
                "traffic.diurnal.trough_hour",
                f"must differ from peak_hour, both are {self.peak_hour!r}",
            )
        if not (0.0 <= self.trough_fraction <= 1.0):
            raise ScenarioError(
                "traffic.diurnal.trough_fraction",
                f"must be in [0, 1], got {self.trough_fraction!r}",
            )

    def factor(self, local_hour: ArrayLike) -> NDArray[np.float64]:
        """Demand factor at local hours (any real number; taken modulo 24), shaped like the
        input, in ``[trough_fraction, 1]``."""
        h = np.mod(np.asarray(local_hour, dtype=np.float64) - self.trough_hour, 24.0)
        rise = (self.peak_hour - self.trough_hour) % 24.0
        fall = 24.0 - rise
        # 0 at the trough, 1 at the peak.
        up = (1.0 - np.cos(np.pi * np.minimum(h, rise) / rise)) / 2.0
        down = (1.0 + np.cos(np.pi * np.maximum(h - rise, 0.0) / fall)) / 2.0
        shape = np.where(h <= rise, up, down)
        return self.trough_fraction + (1.0 - self.trough_fraction) * shape


def local_solar_offset_h(lon_rad: ArrayLike) -> NDArray[np.float64]:
    """Local mean solar time minus UTC [h] at longitudes ``lon_rad``: ``lon / 15 deg``.

    Used instead of civil time zones, which can differ by an hour or two (and by daylight
    saving time); that is small next to the width of the evening peak.
    """
    return np.degrees(np.asarray(lon_rad, dtype=np.float64)) / 15.0


@dataclass(frozen=True)
class Flows:
    """``F`` flows between ground sites.

    Parameters
    ----------
    src_site, dst_site : array of int, shape (F,)
        Site indices (in the order of the scenario's :class:`starmesh.ground.Sites`).
    demand_bps : array, shape (F,)
        Demand [bit/s], >= 0; ``inf`` for a flow that takes whatever it can get. For a diurnal
        flow, the demand at the daily peak.
    names : tuple of str, length F, optional
        Defaults to ``"src->dst"`` with site indices.
    local_offset_h : array, shape (F,), optional
        Local time minus UTC [h] of the clock that drives each flow's diurnal profile; NaN for
        a flow of constant demand (the default for all).
    epoch_utc_h : float
        UTC hour of day at ``t_s = 0``.
    profile : DiurnalProfile

    Raises
    ------
    ScenarioError
        On sizes that disagree, negative or NaN demands, or a flow from a site to itself.

    Examples
    --------
    >>> f = Flows([0, 1], [1, 0], [10e6, 20e6], local_offset_h=[math.nan, 0.0])
    >>> f.names, f.demand_at(21 * 3600.0).tolist(), f.demand_at(4 * 3600.0).tolist()
    (('0->1', '1->0'), [10000000.0, 20000000.0], [10000000.0, 8000000.0])
    """

    src_site: NDArray[np.int64]
    dst_site: NDArray[np.int64]
    demand_bps: NDArray[np.float64]
    names: tuple[str, ...] = ()
    local_offset_h: NDArray[np.float64] | None = None
    epoch_utc_h: float = 0.0
    profile: DiurnalProfile = field(default_factory=DiurnalProfile)

    def __post_init__(self) -> None:
        src = np.array(self.src_site, dtype=np.int64).reshape(-1)
        dst = np.array(self.dst_site, dtype=np.int64).reshape(-1)
        dem = np.array(self.demand_bps, dtype=np.float64).reshape(-1)
        n = src.size
        if dst.size != n or dem.size != n:
            raise ScenarioError(
                "traffic.flows",
                f"conflicting sizes: {n} sources, {dst.size} destinations, {dem.size} demands",
            )
        bad = np.flatnonzero(np.isnan(dem) | (dem < 0))
        if bad.size:
            raise ScenarioError(
                "traffic.flows.demand_bps",
                "must be >= 0 bit/s (inf: as much as it can get), got "
                f"{float(dem[bad[0]])!r} for flow {int(bad[0])}",
            )
        same = np.flatnonzero(src == dst)
        if same.size:
            raise ScenarioError(
                "traffic.flows",
                f"flow {int(same[0])} goes from site {int(src[same[0]])} to itself: give two "
                "different sites",
            )
        names = tuple(self.names) or tuple(f"{a}->{b}" for a, b in zip(src, dst, strict=True))
        if len(names) != n:
            raise ScenarioError(
                "traffic.flows.names", f"conflicting sizes: {len(names)} names, {n} flows"
            )
        off = (
            np.full(n, np.nan)
            if self.local_offset_h is None
            else np.array(self.local_offset_h, dtype=np.float64).reshape(-1)
        )
        if off.size != n:
            raise ScenarioError(
                "traffic.flows.local_offset_h",
                f"conflicting sizes: {off.size} offsets, {n} flows",
            )
        if not math.isfinite(self.epoch_utc_h):
            raise ScenarioError("traffic.epoch", f"must be finite, got {self.epoch_utc_h!r}")
        for name, arr in (("src_site", src), ("dst_site", dst), ("demand_bps", dem)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        off.setflags(write=False)
        object.__setattr__(self, "local_offset_h", off)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "epoch_utc_h", float(self.epoch_utc_h) % 24.0)

    def __len__(self) -> int:
        return int(self.src_site.size)

    def diurnal_offsets(self) -> NDArray[np.float64]:
        """:attr:`local_offset_h` as an array, shape ``(F,)`` (NaN: constant demand)."""
        assert self.local_offset_h is not None  # set by __post_init__
        return self.local_offset_h

    @property
    def diurnal(self) -> NDArray[np.bool_]:
        """Flows whose demand follows the daily profile, shape ``(F,)``."""
        return ~np.isnan(self.diurnal_offsets())

    def demand_at(self, t_s: ArrayLike) -> NDArray[np.float64]:
        """Demand [bit/s] at offsets ``t_s`` [s] from the epoch.

        Parameters
        ----------
        t_s : float or array, shape (T,)

        Returns
        -------
        ndarray, shape (F,) for a scalar ``t_s``, else (T, F)
        """
        t = np.asarray(t_s, dtype=np.float64)
        diurnal = self.diurnal
        out = np.broadcast_to(self.demand_bps, (*t.shape, len(self))).copy()
        if diurnal.any():
            hour = self.epoch_utc_h + t[..., None] / 3600.0 + self.diurnal_offsets()[diurnal]
            out[..., diurnal] *= self.profile.factor(hour)
        return out

    def unique_pairs(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """The distinct ``(src, dst)`` site pairs, to route each once.

        Returns
        -------
        pair_src, pair_dst : ndarray of int64, shape (P,)
            Sorted by source, then destination.
        flow_pair : ndarray of int64, shape (F,)
            Pair of each flow.
        """
        n = int(max(self.src_site.max(initial=0), self.dst_site.max(initial=0))) + 1
        key = self.src_site * n + self.dst_site
        uniq, inv = np.unique(key, return_inverse=True)
        return uniq // n, uniq % n, inv.astype(np.int64).reshape(-1)

    @classmethod
    def concat(cls, parts: Sequence[Flows]) -> Flows:
        """The flows of several :class:`Flows`, in order.

        Raises
        ------
        ScenarioError
            If parts with diurnal flows disagree on the epoch or the profile.
        """
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        clocks = {(p.epoch_utc_h, p.profile) for p in parts if p.diurnal.any()}
        if len(clocks) > 1:
            raise ScenarioError(
                "traffic",
                f"flows with different epochs or diurnal profiles cannot be combined: "
                f"{sorted((h, str(p)) for h, p in clocks)}; build them with the same epoch and "
                "profile",
            )
        epoch_h, profile = next(iter(clocks)) if clocks else (0.0, DiurnalProfile())
        return cls(
            np.concatenate([p.src_site for p in parts]),
            np.concatenate([p.dst_site for p in parts]),
            np.concatenate([p.demand_bps for p in parts]),
            names=tuple(n for p in parts for n in p.names),
            local_offset_h=np.concatenate([p.diurnal_offsets() for p in parts]),
            epoch_utc_h=epoch_h,
            profile=profile,
        )


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def _resolve(sites: Sites, ends: Sequence[Endpoint], field_name: str) -> NDArray[np.int64]:
    """Site indices of names or indices; one-line errors naming the bad one."""
    out = np.empty(len(ends), np.int64)
    n = len(sites)
    for i, e in enumerate(ends):
        if isinstance(e, str):
            try:
                out[i] = sites.index(e)
            except UnknownSiteError as err:
                raise ScenarioError(field_name, err.message) from None
        elif isinstance(e, int | np.integer) and not isinstance(e, bool):
            if not 0 <= int(e) < n:
                raise ScenarioError(
                    field_name,
                    f"site index {int(e)} out of range [0, {n}): use a site name "
                    "or an index below the number of sites",
                )
            out[i] = int(e)
        else:
            raise ScenarioError(field_name, f"must be a site name or index, got {e!r}")
    return out


def _check_kind(sites: Sites, idx: NDArray[np.int64], kinds: tuple[str, ...], what: str) -> None:
    for g in idx.tolist():
        if sites.kinds[g] not in kinds:
            raise ScenarioError(
                what,
                f"site '{sites.names[g]}' is a {sites.kinds[g]}, expected a {' or a '.join(kinds)}",
            )


def _epoch_hour(epoch: datetime | str | None, needed: bool) -> float:
    if epoch is None:
        if needed:
            raise ScenarioError(
                "traffic.epoch",
                "diurnal demand needs the UTC time of t_s = 0: pass epoch='2025-03-01T00:00:00Z' "
                "(the scenario's start time)",
            )
        return 0.0
    try:
        e = parse_utc(epoch)
    except StarmeshError as err:
        raise ScenarioError("traffic.epoch", str(err)) from None
    return e.hour + e.minute / 60.0 + (e.second + e.microsecond * 1e-6) / 3600.0


def _check_rate(value: float, name: str, *, allow_inf: bool = False) -> float:
    v = float(value)
    if math.isnan(v) or v < 0 or (math.isinf(v) and not allow_inf):
        rng = "finite and >= 0" if not allow_inf else ">= 0"
        raise ScenarioError(name, f"must be {rng} bit/s, got {value!r}")
    return v


def access_flows(
    sites: Sites,
    terminals: Sequence[Endpoint],
    pops: Sequence[Endpoint] | Endpoint | None = None,
    *,
    down_bps: float,
    up_bps: float = 0.0,
    n_terminals: int | Sequence[int] = 1,
    aggregate: bool = True,
    max_down_bps: float = math.inf,
    max_up_bps: float = math.inf,
    diurnal: bool = False,
    epoch: datetime | str | None = None,
    profile: DiurnalProfile | None = None,
) -> Flows:
    """Flows between user terminals and their PoPs: PoP -> terminal (down) and terminal -> PoP
    (up).

    Parameters
    ----------
    sites : Sites
    terminals : sequence of str or int, length K
        Terminal sites (names or indices).
    pops : sequence of str or int (length K), str or int, or None
        Each terminal's PoP; one PoP for all; or None for each terminal's nearest PoP (great
        circle). A gateway may stand in for a PoP (bent-pipe studies without PoPs).
    down_bps, up_bps : float
        Demand of one terminal [bit/s], towards it and from it; at the daily peak if
        ``diurnal``. A direction with zero demand gets no flows.
    n_terminals : int or sequence of int (length K)
        Terminals each site stands for (>= 0).
    aggregate : bool
        One flow per site and direction with ``n`` times the demand (True), or ``n`` flows of
        one terminal each (False); see the module's notes.
    max_down_bps, max_up_bps : float
        One terminal's largest rate; each terminal's demand is capped at it (e.g.
        :attr:`starmesh.capacity.LinkCapacities.terminal_down_bps`).
    diurnal : bool
        Scale demand by ``profile`` in the terminal's local solar time.
    epoch : datetime or str, optional
        UTC time of ``t_s = 0``; needed if ``diurnal``.
    profile : DiurnalProfile, optional

    Returns
    -------
    Flows
        Per site: its down flows, then its up flows; named ``"PoP->terminal"`` (with ``#k``
        for terminal ``k`` when not aggregated).

    Raises
    ------
    ScenarioError
        On unknown sites, a terminal that is not a terminal, a PoP that is neither a PoP nor a
        gateway, sizes that disagree, or negative demands or counts.

    Examples
    --------
    >>> from starmesh.ground import Site
    >>> sites = Sites.from_sites([Site("Kyiv", "terminal", 50.45, 30.52),
    ...                           Site("Warsaw", "pop", 52.23, 21.01)])
    >>> f = access_flows(sites, ["Kyiv"], down_bps=50e6, up_bps=5e6, n_terminals=100)
    >>> f.names, f.demand_bps.tolist()
    (('Warsaw->Kyiv', 'Kyiv->Warsaw'), [5000000000.0, 500000000.0])
    """
    term = _resolve(sites, list(terminals), "traffic.access.terminals")
    _check_kind(sites, term, ("terminal",), "traffic.access.terminals")
    k = term.size
    if pops is None:
        cand = np.flatnonzero(np.array([kk == "pop" for kk in sites.kinds], dtype=bool))
        if k and cand.size == 0:
            raise ScenarioError(
                "traffic.access.pops",
                "no PoP among the sites: add a PoP or name each "
                "terminal's PoP (a gateway may stand in)",
            )
        if k:
            d = great_circle_m(
                sites.lat_rad[term][:, None], sites.lon_rad[term][:, None],
                sites.lat_rad[cand][None, :], sites.lon_rad[cand][None, :],
            )  # fmt: skip
            pop = cand[np.argmin(d, axis=1)]
        else:
            pop = np.zeros(0, np.int64)
    else:
        pop_list = [pops] if isinstance(pops, str | int | np.integer) else list(pops)
        pop = _resolve(sites, pop_list, "traffic.access.pops")
        if pop.size == 1:
            pop = np.repeat(pop, k)
        elif pop.size != k:
            raise ScenarioError(
                "traffic.access.pops",
                f"conflicting sizes: {k} terminals, {pop.size} PoPs; give one PoP per terminal "
                "or one for all",
            )
        _check_kind(sites, pop, ("pop", "gateway"), "traffic.access.pops")
    down = _check_rate(down_bps, "traffic.access.down_bps")
    up = _check_rate(up_bps, "traffic.access.up_bps")
    cap_down = _check_rate(max_down_bps, "traffic.access.max_down_bps", allow_inf=True)
    cap_up = _check_rate(max_up_bps, "traffic.access.max_up_bps", allow_inf=True)
    n_in = np.asarray(n_terminals)
    if n_in.ndim > 1 or (n_in.ndim == 1 and n_in.size != k):
        raise ScenarioError(
            "traffic.access.n_terminals",
            f"conflicting sizes: {n_in.size} counts, {k} terminals; give one count or one per "
            "terminal",
        )
    n_t = np.broadcast_to(n_in, (k,))
    if k and (not np.issubdtype(n_t.dtype, np.integer) or int(n_t.min()) < 0):
        raise ScenarioError(
            "traffic.access.n_terminals", f"must be integers >= 0, got {n_in.tolist()!r}"
        )
    n_t = n_t.astype(np.int64)
    per_down, per_up = min(down, cap_down), min(up, cap_up)
    offset = local_solar_offset_h(sites.lon_rad[term]) if diurnal else np.full(k, np.nan)
    epoch_h = _epoch_hour(epoch, diurnal)
    src: list[NDArray[np.int64]] = []
    dst: list[NDArray[np.int64]] = []
    dem: list[NDArray[np.float64]] = []
    off: list[NDArray[np.float64]] = []
    names: list[str] = []
    names_arr = sites.names
    for i in range(k):
        t, p, n = int(term[i]), int(pop[i]), int(n_t[i])
        if n == 0:
            continue
        reps = 1 if aggregate else n
        mult = n if aggregate else 1
        for a, b, per in ((p, t, per_down), (t, p, per_up)):
            if per == 0.0:
                continue
            src.append(np.full(reps, a, np.int64))
            dst.append(np.full(reps, b, np.int64))
            dem.append(np.full(reps, per * mult))
            off.append(np.full(reps, offset[i]))
            base = f"{names_arr[a]}->{names_arr[b]}"
            names += [base] if aggregate else [f"{base}#{j}" for j in range(n)]
    cat: Any = np.concatenate
    return Flows(
        cat(src) if src else np.zeros(0, np.int64),
        cat(dst) if dst else np.zeros(0, np.int64),
        cat(dem) if dem else np.zeros(0),
        names=tuple(names),
        local_offset_h=cat(off) if off else np.zeros(0),
        epoch_utc_h=epoch_h,
        profile=profile or DiurnalProfile(),
    )


def gravity_flows(
    sites: Sites,
    endpoints: Sequence[Endpoint],
    population: ArrayLike,
    *,
    total_bps: float,
    alpha: float = 1.0,
    min_distance_m: float = 100e3,
    diurnal: bool = False,
    epoch: datetime | str | None = None,
    profile: DiurnalProfile | None = None,
) -> Flows:
    """City-to-city flows from a gravity model: ``demand_ij ~ pop_i pop_j / d_ij^alpha``.

    Every ordered pair of distinct endpoints gets a flow; demands are scaled so that they sum
    to ``total_bps``. ``alpha = 1`` is Zipf's P1 P2 / D hypothesis for intercity movement (Zipf,
    American Sociological Review 11(6), 1946); ``alpha = 2`` is the Newtonian form; ``alpha =
    0`` ignores distance, the plain gravity traffic matrix of Roughan et al. ("Simplifying the
    synthesis of Internet traffic matrices", ACM SIGCOMM CCR, 2005). Which fits
    satellite-relayed traffic is an open question.

    Parameters
    ----------
    sites : Sites
    endpoints : sequence of str or int, length N
        Sites taking part (no repeats).
    population : array, shape (N,)
        Weight of each endpoint (people, subscribers), >= 0; an endpoint of weight 0 gets no
        flows.
    total_bps : float
        Sum of all demands [bit/s] (at the daily peak if ``diurnal``).
    alpha : float
        Distance exponent, >= 0.
    min_distance_m : float
        Distances below this count as this [m], so that neighbouring cities do not dominate.
    diurnal : bool
        Scale each flow by ``profile`` in its *source's* local solar time (an assumption).
    epoch : datetime or str, optional
        UTC time of ``t_s = 0``; needed if ``diurnal``.
    profile : DiurnalProfile, optional

    Returns
    -------
    Flows
        ``N (N - 1)`` flows (fewer if some population is 0), named ``"src->dst"``.

    Raises
    ------
    ScenarioError
        On unknown or repeated endpoints, fewer than two endpoints, negative or NaN population,
        a negative total or exponent.

    Examples
    --------
    >>> from starmesh.ground import Site
    >>> sites = Sites.from_sites([Site("A", "terminal", 0.0, 0.0), Site("B", "terminal", 0.0, 10.0),
    ...                           Site("C", "terminal", 0.0, 20.0)])
    >>> f = gravity_flows(sites, ["A", "B", "C"], [1.0, 1.0, 1.0], total_bps=6e9)
    >>> dict(zip(f.names, (f.demand_bps / 1e9).round(3).tolist()))
    {'A->B': 1.2, 'A->C': 0.6, 'B->A': 1.2, 'B->C': 1.2, 'C->A': 0.6, 'C->B': 1.2}
    """
    idx = _resolve(sites, list(endpoints), "traffic.gravity.endpoints")
    n = idx.size
    if n and int(np.bincount(idx).max()) > 1:
        dup = int(np.flatnonzero(np.bincount(idx) > 1)[0])
        raise ScenarioError(
            "traffic.gravity.endpoints",
            f"site '{sites.names[dup]}' is listed more than once: list each endpoint once",
        )
    if n < 2:
        raise ScenarioError("traffic.gravity.endpoints", f"needs at least two endpoints, got {n}")
    pop = np.asarray(population, dtype=np.float64).reshape(-1)
    if pop.size != n:
        raise ScenarioError(
            "traffic.gravity.population",
            f"conflicting sizes: {n} endpoints, {pop.size} populations",
        )
    bad = np.flatnonzero(~np.isfinite(pop) | (pop < 0))
    if bad.size:
        raise ScenarioError(
            "traffic.gravity.population",
            f"must be finite and >= 0, got {float(pop[bad[0]])!r} for "
            f"'{sites.names[int(idx[bad[0]])]}'",
        )
    total = _check_rate(total_bps, "traffic.gravity.total_bps")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ScenarioError("traffic.gravity.alpha", f"must be finite and >= 0, got {alpha!r}")
    if not (math.isfinite(min_distance_m) and min_distance_m > 0):
        raise ScenarioError(
            "traffic.gravity.min_distance_m", f"must be finite and > 0, got {min_distance_m!r}"
        )
    lat, lon = sites.lat_rad[idx], sites.lon_rad[idx]
    dist = great_circle_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    # Scaled to 1 at the largest population and the floor distance, against under/overflow.
    p = pop / pop.max() if pop.max() > 0 else pop
    w = p[:, None] * p[None, :] / (np.maximum(dist, min_distance_m) / min_distance_m) ** alpha
    np.fill_diagonal(w, 0.0)
    i, j = np.nonzero(w > 0)
    wsum = float(w[i, j].sum())
    if wsum == 0.0:
        raise ScenarioError(
            "traffic.gravity.population", "needs at least two endpoints with population > 0"
        )
    demand = total * w[i, j] / wsum
    offset = local_solar_offset_h(lon[i]) if diurnal else np.full(i.size, np.nan)
    names = sites.names
    return Flows(
        idx[i],
        idx[j],
        demand,
        names=tuple(f"{names[a]}->{names[b]}" for a, b in zip(idx[i], idx[j], strict=True)),
        local_offset_h=offset,
        epoch_utc_h=_epoch_hour(epoch, diurnal),
        profile=profile or DiurnalProfile(),
    )


def explicit_flows(
    sites: Sites,
    flows: Sequence[tuple[Endpoint, Endpoint, float]],
    *,
    names: Sequence[str] | None = None,
) -> Flows:
    """Flows listed one by one, of constant demand.

    Parameters
    ----------
    sites : Sites
    flows : sequence of (src, dst, demand_bps)
        Endpoints as site names or indices; demand in bit/s, >= 0 (``inf``: greedy).
    names : sequence of str, optional
        Defaults to ``"src->dst"`` with site names.

    Returns
    -------
    Flows

    Raises
    ------
    ScenarioError
        On unknown endpoints, a flow from a site to itself or a bad demand.

    Examples
    --------
    >>> from starmesh.ground import Site
    >>> sites = Sites.from_sites([Site("Kyiv", "terminal", 50.45, 30.52),
    ...                           Site("Lviv", "terminal", 49.84, 24.03)])
    >>> explicit_flows(sites, [("Kyiv", "Lviv", 1e6)]).names
    ('Kyiv->Lviv',)
    """
    for k, f in enumerate(flows):
        if len(f) != 3:
            raise ScenarioError(
                "traffic.flows", f"flow {k} must be (src, dst, demand_bps), got {f!r}"
            )
    src = _resolve(sites, [f[0] for f in flows], "traffic.flows.src")
    dst = _resolve(sites, [f[1] for f in flows], "traffic.flows.dst")
    dem = np.array(
        [_check_rate(f[2], "traffic.flows.demand_bps", allow_inf=True) for f in flows],
        dtype=np.float64,
    )
    default = tuple(f"{sites.names[a]}->{sites.names[b]}" for a, b in zip(src, dst, strict=True))
    return Flows(src, dst, dem, names=tuple(names) if names is not None else default)
