"""Link capacities and max-min fair sharing of them among flows (flow-level traffic model).

A *resource* is anything whose capacity [bit/s] the flows crossing it share: a satellite's user
downlink, a laser ISL in one direction, a gateway's antennas, one terminal's modem, a fibre. The
network's resources form one flat index space (:func:`build_resources`); a routed flow uses a
set of them (:func:`path_resources`, :func:`flow_incidence`), and the rates of all flows follow
from max-min fair sharing (:func:`max_min_fair`): no flow can get more without taking from a
flow that has less or the same.

Path to resources
-----------------
Paths are node sequences in the graph layout of :mod:`starmesh.routing` (``S`` satellites, then
each of the ``G`` sites twice: out node ``S + g``, in node ``S + G + g``). Each directed edge
uses the resources below; the direction of the edge picks the direction of the resource, so a
PoP -> terminal flow loads user *downlinks* and a terminal -> PoP flow user *uplinks*.

=====================================  ==========================================================
edge                                   resources
=====================================  ==========================================================
terminal out ``S+g`` -> satellite s    terminal g uplink; satellite s user uplink (Ku)
satellite s -> terminal in ``S+G+g``   satellite s user downlink (Ku); terminal g downlink
gateway out ``S+g`` -> satellite s     gateway g uplink; satellite s feeder uplink (Ka)
satellite s -> gateway in ``S+G+g``    satellite s feeder downlink (Ka); gateway g downlink
satellite a -> satellite b             ISL (a, b) in the direction a -> b
gateway in -> PoP in                   fibre (gateway, PoP) in the direction gateway -> PoP
PoP out -> gateway out                 fibre (gateway, PoP) in the direction PoP -> gateway
=====================================  ==========================================================

So a terminal -> PoP path ``[S+t, s1, .., sk, S+G+gw, S+G+pop]`` uses the terminal's uplink,
``s1``'s user uplink, the ISLs ``s1 -> .. -> sk``, ``sk``'s feeder downlink, the gateway's
downlink and the fibre towards the PoP; the reverse path uses the mirror image of each.

Max-min fairness
----------------
:func:`max_min_fair` is progressive filling (Bertsekas and Gallager, *Data Networks*, 2nd ed.,
1992, sec. 6.5.2) run on all bottlenecks at once. In each round every resource's fair share is
its residual capacity over the (weighted) number of flows still growing on it. A resource whose
share is the smallest share seen by every growing flow crossing it (and below their demands) is
a bottleneck: all its flows freeze at that share. A flow whose demand is at most every share on
its path freezes at its demand. Freezing a flow at or below a share never lowers any share, so
these rates are final; each round freezes at least one flow, and in practice all flows freeze in
a few tens of rounds. :func:`max_min_fair_lp` is the slow reference (one linear program per
flow and level, HiGHS), for tests.

References
----------
D. Bertsekas, R. Gallager, *Data Networks*, 2nd ed., Prentice Hall, 1992, sec. 6.5.2
(max-min flow control).
R. Jain, D. Chiu, W. Hawe, "A quantitative measure of fairness and discrimination for resource
allocation in shared computer systems", DEC-TR-301, 1984 (:func:`jain_index`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import csr_array, issparse

from .errors import ScenarioError, StarmeshError

__all__ = [
    "DEMAND_LIMITED",
    "RESOURCE_KINDS",
    "UNROUTABLE",
    "Allocation",
    "LinkCapacities",
    "Resources",
    "build_resources",
    "flow_incidence",
    "jain_index",
    "max_min_fair",
    "max_min_fair_lp",
    "node_paths_from_predecessors",
    "pack_paths",
    "path_resources",
    "reverse_paths",
]

#: Bottleneck sentinel of a flow that gets its whole demand.
DEMAND_LIMITED = -1
#: Bottleneck sentinel of a flow without a path (or without any resource on it): rate 0.
UNROUTABLE = -2

#: Kinds of resources, in the order of their blocks in the index space (see :class:`Resources`).
RESOURCE_KINDS: tuple[str, ...] = (
    "sat_user_down",
    "sat_user_up",
    "sat_feeder_down",
    "sat_feeder_up",
    "isl",
    "gateway_down",
    "gateway_up",
    "terminal_down",
    "terminal_up",
    "fibre",
)
_K = {name: i for i, name in enumerate(RESOURCE_KINDS)}

#: Laser terminals of a satellite with re-paired +Grid ISLs, in resource order: in plane ahead
#: and behind, to the next and the previous plane, and across shells.
LASER_TERMINALS: tuple[str, ...] = ("fore", "aft", "right", "left", "cross")

#: Relative tolerance of share comparisons in :func:`max_min_fair`.
_RTOL = 1e-9


# --------------------------------------------------------------------------------------------
# Capacities
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkCapacities:
    """Capacities of a Starlink-class network's links [bit/s], one value per kind of link.

    The defaults describe a Gen1 system of V1.5 satellites (the satellites of 2022-2023, the
    period of the Ukraine scenario). Public figures are few and coarse; each default says where
    it comes from and how far off it may be. ``inf`` means "never limits".

    Parameters
    ----------
    sat_user_down_bps : float
        Ku-band user downlink of one satellite, shared by all terminals it serves. 20 Gbit/s:
        SpaceX's technical attachment to its 2016 application (FCC SAT-LOA-20161115-00118)
        gives "aggregate downlink capacity to users ranging from 17 to 23 Gbps" per satellite,
        "an average of 20 Gbps"; del Portillo, Cameron and Crawley (IAC 2018; Acta
        Astronautica 159, 2019) estimate about 21 Gbit/s at most. Uncertain by about +-20 % for
        V1.x satellites; V2 Mini satellites (2023-) carry about 4x (SpaceX to Ars Technica, Feb
        2023), i.e. 80-100 Gbit/s.
    sat_user_up_bps : float
        Ku-band user uplink of one satellite. 5 Gbit/s, derived, not published: the uplink band
        (14.0-14.5 GHz, 500 MHz) is a quarter of the downlink band (10.7-12.7 GHz, 2 GHz) in the
        same filing, scaled at equal spectral efficiency. Uncertain by a factor of 2 (terminal
        transmit power limits uplink efficiency; measured user uplink rates are about a tenth of
        downlink rates).
    sat_feeder_down_bps, sat_feeder_up_bps : float
        Ka-band feeder link between one satellite and gateways, space -> ground and ground ->
        space. 20 Gbit/s each, an assumption: a bent-pipe satellite must carry its user traffic
        to the ground, so the filing sizes feeder and user capacity alike (Ka bands 17.8-19.3
        GHz down, 27.5-30.0 GHz up). Uncertain by about +-50 %; V2 Mini satellites add E-band
        backhaul.
    gateway_down_bps, gateway_up_bps : float
        All antennas of one gateway together. 160 Gbit/s each, derived: SpaceX's 2023 blanket
        gateway earth-station application describes sites of up to 40 antennas of 1.85 m
        tracking up to 8 Gen1 satellites at once (as reported by PCMag, 2023); 8 x 20 Gbit/s.
        Many gateways were filed with fewer antennas, so a real gateway may carry half of this
        or less.
    isl_bps : float
        One laser ISL, per direction. 100 Gbit/s: SpaceX engineer T. Brashears, SPIE Photonics
        West, 30 Jan 2024 (reported by PCMag): each laser link "can sustain a 100 Gbps
        connection", some reach 200 Gbit/s. Whether the figure is per direction is not stated;
        optical terminals are full duplex, so it is taken per direction. Uncertain by a factor
        of 2; V1.0 satellites (the 550 km shell's first launches) have no lasers at all.
    terminal_down_bps, terminal_up_bps : float
        One user terminal's largest rate. 220 Mbit/s down and 25 Mbit/s up: the upper ends of
        the ranges in Starlink's EU contract summary (starlink.com/legal, DOC-1075-86535-76:
        users "typically experience download speeds between 25 and 220 Mbps ... upload
        speeds typically between 5 and 20 Mbps"; Priority plans 40-220 down, 8-25 Mbit/s up).
        Ookla's median in Q1 2025 was 104.7 Mbit/s down and 14.8 Mbit/s up, i.e. with sharing.
        Plans and dishes differ (a Performance kit is sold for 400+ Mbit/s): uncertain by a
        factor of 2.
    fibre_bps : float
        Terrestrial fibre between a gateway and a PoP, per direction. 100 Gbit/s, an assumption
        (one 100 Gbit/s Ethernet wavelength, IEEE 802.3ba); no public figure. Uncertain by a
        factor of 10: real backhaul is leased capacity of several 10-100 Gbit/s circuits.

    Raises
    ------
    ScenarioError
        If a capacity is negative or NaN.

    Examples
    --------
    >>> caps = LinkCapacities()
    >>> caps.sat_user_down_bps / 1e9, caps.isl_bps / 1e9
    (20.0, 100.0)
    >>> LinkCapacities(isl_bps=-1.0)
    Traceback (most recent call last):
    ...
    starmesh.errors.ScenarioError: capacity.isl_bps: must be >= 0 bit/s, got -1.0
    """

    sat_user_down_bps: float = 20e9
    sat_user_up_bps: float = 5e9
    sat_feeder_down_bps: float = 20e9
    sat_feeder_up_bps: float = 20e9
    gateway_down_bps: float = 160e9
    gateway_up_bps: float = 160e9
    isl_bps: float = 100e9
    terminal_down_bps: float = 220e6
    terminal_up_bps: float = 25e6
    fibre_bps: float = 100e9

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int | float | np.floating | np.integer) or isinstance(v, bool):
                raise ScenarioError(f"capacity.{f.name}", f"must be a number, got {v!r}")
            if math.isnan(v) or v < 0:
                raise ScenarioError(f"capacity.{f.name}", f"must be >= 0 bit/s, got {v!r}")
            object.__setattr__(self, f.name, float(v))


# --------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    """The capacity-limited resources of a network, as one flat index space of size ``R``.

    Blocks, in order: per satellite (``S`` each) user downlink, user uplink, feeder downlink,
    feeder uplink; per ISL ``e`` two resources, ``a -> b`` then ``b -> a`` (``a, b =
    isl_edges[e]``); per gateway site its downlink then uplink; per terminal site its downlink
    then uplink; per fibre link ``k`` gateway -> PoP then PoP -> gateway. PoPs have no resource
    of their own.

    Build it with :func:`build_resources`. Disruptions change capacities, not the structure:
    copy :attr:`capacity_bps` and set entries (e.g. a failed satellite's four resources to 0).

    Attributes
    ----------
    n_sats, n_sites : int
        ``S`` and ``G``.
    site_kinds : tuple of str, length G
    isl_edges : ndarray of int64, shape (E, 2)
    fibre_gw, fibre_pop : ndarray of int64, shape (K,)
    capacity_bps : ndarray, shape (R,)
        Capacity of each resource [bit/s].
    kind : ndarray of int8, shape (R,)
        Index into :data:`RESOURCE_KINDS`.
    element : ndarray of int64, shape (R,)
        Satellite, ISL, site or fibre index the resource belongs to.
    reverse : ndarray of bool, shape (R,)
        ISLs: ``b -> a``; fibres: PoP -> gateway.
    site_down, site_up : ndarray of int64, shape (G,)
        Resource index of each site's downlink and uplink (terminal or gateway); -1 for PoPs.
    """

    n_sats: int
    n_sites: int
    site_kinds: tuple[str, ...]
    isl_edges: NDArray[np.int64]
    fibre_gw: NDArray[np.int64]
    fibre_pop: NDArray[np.int64]
    capacity_bps: NDArray[np.float64]
    kind: NDArray[np.int8]
    element: NDArray[np.int64]
    reverse: NDArray[np.bool_]
    site_down: NDArray[np.int64]
    site_up: NDArray[np.int64]
    _isl_key: NDArray[np.int64]
    _isl_res: NDArray[np.int64]
    _fibre_key: NDArray[np.int64]
    _fibre_res: NDArray[np.int64]
    #: Laser terminals of re-paired ISLs (see :func:`build_resources`' ``isl_terminals``):
    #: plane of each satellite (S,), next plane of each plane (P,), argument of latitude (S,).
    _term_plane: NDArray[np.int64] | None = None
    _term_next: NDArray[np.int64] | None = None
    _term_rank: NDArray[np.int64] | None = None
    _term_size: NDArray[np.int64] | None = None

    @property
    def n_resources(self) -> int:
        """``R``."""
        return int(self.capacity_bps.size)

    def sat(self, kind: str, sat_idx: ArrayLike) -> NDArray[np.int64]:
        """Resource indices of satellites' ``"user_down"``, ``"user_up"``, ``"feeder_down"`` or
        ``"feeder_up"``, shaped like ``sat_idx``."""
        key = f"sat_{kind}"
        if key not in _K or _K[key] > 3:
            raise ScenarioError(
                "resource",
                f"satellite resource kind must be one of 'user_down', 'user_up', "
                f"'feeder_down', 'feeder_up', got {kind!r}",
            )
        return _K[key] * self.n_sats + np.asarray(sat_idx, dtype=np.int64)

    def isl(self, edge_idx: ArrayLike, *, reverse: bool = False) -> NDArray[np.int64]:
        """Resource indices of ISLs ``a -> b`` (or ``b -> a`` with ``reverse``)."""
        return 4 * self.n_sats + 2 * np.asarray(edge_idx, dtype=np.int64) + int(reverse)

    def labels(self, site_names: Sequence[str] | None = None) -> list[str]:
        """One readable name per resource, e.g. ``"sat 12 user_down"``, ``"isl 3->7"``,
        ``"terminal Kyiv down"``, ``"fibre Aerzen->Frankfurt"``."""
        names = (
            list(site_names) if site_names is not None else [str(g) for g in range(self.n_sites)]
        )
        if len(names) != self.n_sites:
            raise ScenarioError(
                "site_names", f"conflicting sizes: {len(names)} names, {self.n_sites} sites"
            )
        out: list[str] = []
        for i, (k, el, rev) in enumerate(
            zip(self.kind.tolist(), self.element.tolist(), self.reverse.tolist(), strict=True)
        ):
            kind = RESOURCE_KINDS[k]
            if k <= 3:
                out.append(f"sat {el} {kind[4:]}")
            elif kind == "isl" and self._term_plane is not None:
                out.append(f"sat {el} laser {LASER_TERMINALS[(i - 4 * self.n_sats) % 5]}")
            elif kind == "isl":
                a, b = self.isl_edges[el].tolist()
                out.append(f"isl {b}->{a}" if rev else f"isl {a}->{b}")
            elif kind == "fibre":
                gw, pop = names[int(self.fibre_gw[el])], names[int(self.fibre_pop[el])]
                out.append(f"fibre {pop}->{gw}" if rev else f"fibre {gw}->{pop}")
            else:
                who, way = kind.split("_")
                out.append(f"{who} {names[el]} {way}")
        return out


def _as_index_array(x: ArrayLike, what: str, shape_tail: tuple[int, ...] = ()) -> NDArray[Any]:
    arr = np.asarray(x)
    if arr.size == 0:
        return np.zeros((0, *shape_tail), dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ScenarioError(what, f"must hold integer indices, got dtype {arr.dtype}")
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        want = f"(n, {shape_tail[0]})" if shape_tail else "(n,)"
        raise ScenarioError(what, f"must have shape {want}, got {arr.shape}")
    return arr.astype(np.int64)


def build_resources(
    n_sats: int,
    site_kinds: Sequence[str],
    isl_edges: ArrayLike,
    fibre_gw: ArrayLike,
    fibre_pop: ArrayLike,
    caps: LinkCapacities | None = None,
    *,
    n_terminals_per_site: ArrayLike = 1,
    isl_terminals: tuple[ArrayLike, ArrayLike, ArrayLike] | None = None,
) -> Resources:
    """The resource index space of a network, with capacities.

    Parameters
    ----------
    n_sats : int
        ``S``.
    site_kinds : sequence of {"terminal", "gateway", "pop"}, length G
        Kind of each site, in the order of the routing graph's ground nodes.
    isl_edges : array of int, shape (E, 2)
        ISLs, as in :class:`starmesh.routing.RoutingProblem`.
    fibre_gw, fibre_pop : array of int, shape (K,)
        Site indices of the gateway <-> PoP fibre links.
    caps : LinkCapacities, optional
        Defaults to :class:`LinkCapacities` ``()``.
    n_terminals_per_site : int or array of int, shape (G,)
        How many terminals each terminal site stands for; its downlink and uplink resources get
        that many times the terminal capacity (the site's terminals together). Where each of a
        site's terminals is its own flow, :func:`starmesh.traffic.access_flows` also caps each
        flow's demand at one terminal's rate.
    isl_terminals : (plane (S,), plane_next (P,), u_rad (S,)), optional
        For ISLs re-paired during a run (a real constellation, :mod:`starmesh.realset`):
        ``isl_edges`` must then be empty, and each satellite gets one transmit resource per
        laser terminal (:data:`LASER_TERMINALS`, ``isl_bps`` each). A hop ``u -> v`` uses
        ``u``'s terminal towards ``v``: fore/aft within its plane (``v`` less / more than half
        a turn ahead in argument of latitude), right/left to the next/previous plane, cross
        otherwise. Each terminal holds one link at a time, so this is the per-link,
        per-direction capacity of the fixed-ISL case with an index that does not depend on
        the pairing. Planes are inference's (-1: none).

    Returns
    -------
    Resources

    Raises
    ------
    ScenarioError
        On an unknown site kind, indices out of range, a fibre between sites that are not a
        gateway and a PoP, or a negative terminal count.

    Examples
    --------
    >>> res = build_resources(3, ["terminal", "gateway", "pop"], [[0, 1], [1, 2]], [1], [2])
    >>> res.n_resources  # 4 x 3 satellites + 2 x 2 ISLs + 2 gateway + 2 terminal + 2 fibre
    22
    >>> res.labels(["Kyiv", "Aerzen", "Frankfurt"])[16:]
    ['gateway Aerzen down', 'gateway Aerzen up', 'terminal Kyiv down', 'terminal Kyiv up', \
'fibre Aerzen->Frankfurt', 'fibre Frankfurt->Aerzen']
    """
    caps = LinkCapacities() if caps is None else caps
    if isinstance(n_sats, bool) or not isinstance(n_sats, int | np.integer) or n_sats < 0:
        raise ScenarioError("n_sats", f"must be an integer >= 0, got {n_sats!r}")
    n_sats = int(n_sats)
    kinds = tuple(str(k) for k in site_kinds)
    bad = [k for k in kinds if k not in ("terminal", "gateway", "pop")]
    if bad:
        raise ScenarioError(
            "site_kinds", f"kind must be one of 'terminal', 'gateway', 'pop', got {bad[0]!r}"
        )
    n_sites = len(kinds)
    edges = _as_index_array(isl_edges, "isl_edges", (2,))
    if edges.size and (edges.min() < 0 or edges.max() >= n_sats):
        raise ScenarioError(
            "isl_edges",
            f"satellite index out of range [0, {n_sats}): got {int(edges.min())}"
            f"..{int(edges.max())}",
        )
    f_gw = _as_index_array(fibre_gw, "fibre_gw")
    f_pop = _as_index_array(fibre_pop, "fibre_pop")
    if f_gw.shape != f_pop.shape:
        raise ScenarioError(
            "fibre_gw", f"conflicting sizes: {f_gw.size} in fibre_gw, {f_pop.size} in fibre_pop"
        )
    karr = np.array([_K.get(f"{k}_down", -1) for k in kinds], dtype=np.int64)
    for name, idx, want in (("fibre_gw", f_gw, "gateway"), ("fibre_pop", f_pop, "pop")):
        if idx.size and (idx.min() < 0 or idx.max() >= n_sites):
            raise ScenarioError(
                name,
                f"site index out of range [0, {n_sites}): got {int(idx.min())}..{int(idx.max())}",
            )
        wrong = [int(g) for g in idx if kinds[g] != want]
        if wrong:
            raise ScenarioError(
                name,
                f"site {wrong[0]} is a {kinds[wrong[0]]}, not a {want}: fibre links "
                "join a gateway to a PoP",
            )
    n_term_in = np.asarray(n_terminals_per_site)
    if n_term_in.ndim > 1 or (n_term_in.ndim == 1 and n_term_in.size != n_sites):
        raise ScenarioError(
            "n_terminals_per_site",
            f"conflicting sizes: {n_term_in.size} counts, {n_sites} sites; give one count or one "
            "per site",
        )
    n_term = np.broadcast_to(n_term_in, (n_sites,))
    if n_term.size and (not np.issubdtype(n_term.dtype, np.integer) or int(n_term.min()) < 0):
        raise ScenarioError(
            "n_terminals_per_site", f"must be integers >= 0, got {n_term_in.tolist()!r}"
        )
    n_e, n_f = edges.shape[0], f_gw.size
    n_term_res = 0
    if isl_terminals is not None:
        if n_e:
            raise ScenarioError(
                "isl_edges", "give either fixed isl_edges or isl_terminals, not both"
            )
        t_plane = np.asarray(isl_terminals[0], np.int64).reshape(-1)
        t_next = np.asarray(isl_terminals[1], np.int64).reshape(-1)
        t_u = np.asarray(isl_terminals[2], np.float64).reshape(-1)
        if t_plane.size != n_sats or t_u.size != n_sats:
            raise ScenarioError(
                "isl_terminals",
                f"conflicting sizes: {t_plane.size} planes, {t_u.size} angles, {n_sats} satellites",
            )
        n_term_res = len(LASER_TERMINALS) * n_sats
    gw_sites = np.flatnonzero(karr == _K["gateway_down"])
    term_sites = np.flatnonzero(karr == _K["terminal_down"])
    s = np.arange(n_sats, dtype=np.int64)
    kind_parts = [np.full(n_sats, k, np.int8) for k in range(4)]
    elem_parts = [s, s, s, s]
    rev_parts = [np.zeros(4 * n_sats, bool)]
    cap_parts = [
        np.full(n_sats, caps.sat_user_down_bps),
        np.full(n_sats, caps.sat_user_up_bps),
        np.full(n_sats, caps.sat_feeder_down_bps),
        np.full(n_sats, caps.sat_feeder_up_bps),
    ]
    if n_term_res:
        kind_parts.append(np.full(n_term_res, _K["isl"], np.int8))
        elem_parts.append(np.repeat(s, len(LASER_TERMINALS)))
        rev_parts.append(np.zeros(n_term_res, bool))
        cap_parts.append(np.full(n_term_res, caps.isl_bps))
    # Pairs of (forward, reverse) or (down, up) resources, interleaved.
    for k_down, k_up, elems, c_down, c_up in (
        (_K["isl"], _K["isl"], np.arange(n_e, dtype=np.int64), caps.isl_bps, caps.isl_bps),
        (
            _K["gateway_down"],
            _K["gateway_up"],
            gw_sites,
            caps.gateway_down_bps,
            caps.gateway_up_bps,
        ),
        (
            _K["terminal_down"],
            _K["terminal_up"],
            term_sites,
            caps.terminal_down_bps,
            caps.terminal_up_bps,
        ),
        (_K["fibre"], _K["fibre"], np.arange(n_f, dtype=np.int64), caps.fibre_bps, caps.fibre_bps),
    ):
        m = elems.size
        kind_parts.append(np.repeat(np.array([[k_down, k_up]], np.int8), m, axis=0).reshape(-1))
        elem_parts.append(np.repeat(elems, 2))
        rev_parts.append(np.tile([False, k_down == k_up], m).astype(bool))
        cd = np.full(m, c_down)
        cu = np.full(m, c_up)
        if k_down == _K["terminal_down"]:
            # inf bit/s per terminal x 0 terminals is NaN (set to 0 below), not a warning.
            with np.errstate(invalid="ignore"):
                cd = cd * n_term[term_sites]
                cu = cu * n_term[term_sites]
        cap_parts.append(np.stack([cd, cu], axis=1).reshape(-1))
    kind = np.concatenate(kind_parts)
    element = np.concatenate(elem_parts)
    reverse = np.concatenate(rev_parts)
    capacity = np.concatenate(cap_parts).astype(np.float64)
    # inf * 0 terminals would be NaN: no terminal, no capacity.
    capacity[np.isnan(capacity)] = 0.0
    base_isl = 4 * n_sats
    base_gw = base_isl + 2 * n_e + n_term_res
    base_term = base_gw + 2 * gw_sites.size
    base_fibre = base_term + 2 * term_sites.size
    site_down = np.full(n_sites, -1, np.int64)
    site_down[gw_sites] = base_gw + 2 * np.arange(gw_sites.size)
    site_down[term_sites] = base_term + 2 * np.arange(term_sites.size)
    site_up = np.where(site_down >= 0, site_down + 1, -1)
    a, b = edges[:, 0], edges[:, 1]
    isl_key = np.concatenate([a * n_sats + b, b * n_sats + a])
    isl_res = base_isl + np.concatenate([2 * np.arange(n_e), 2 * np.arange(n_e) + 1])
    order = np.argsort(isl_key, kind="stable")
    # Fibre keys: gateway -> PoP is an edge between in nodes, PoP -> gateway between out nodes;
    # the key carries the direction as its high part.
    g2 = max(n_sites, 1) ** 2
    fibre_key = np.concatenate([f_gw * n_sites + f_pop, g2 + f_pop * n_sites + f_gw])
    fibre_res = base_fibre + np.concatenate([2 * np.arange(n_f), 2 * np.arange(n_f) + 1])
    f_order = np.argsort(fibre_key, kind="stable")
    out = Resources(
        n_sats=n_sats,
        n_sites=n_sites,
        site_kinds=kinds,
        isl_edges=edges,
        fibre_gw=f_gw,
        fibre_pop=f_pop,
        capacity_bps=capacity,
        kind=kind,
        element=element,
        reverse=reverse,
        site_down=site_down,
        site_up=site_up,
        _isl_key=isl_key[order],
        _isl_res=isl_res[order],
        _fibre_key=fibre_key[f_order],
        _fibre_res=fibre_res[f_order],
    )
    if n_term_res:
        object.__setattr__(out, "_term_plane", t_plane)
        object.__setattr__(out, "_term_next", t_next)
        # Rank of each satellite in its plane's argument-of-latitude order, and plane sizes.
        n_p = max(t_next.size, int(t_plane.max(initial=-1)) + 1)
        order = np.lexsort((t_u, t_plane))  # by plane, then angle; no plane (-1) first
        ps = t_plane[order]
        valid = ps >= 0
        sizes = np.bincount(ps[valid], minlength=n_p)
        start = np.searchsorted(ps, np.arange(n_p))
        rank = np.zeros(n_sats, np.int64)
        rank[order[valid]] = np.flatnonzero(valid) - start[ps[valid]]
        object.__setattr__(out, "_term_rank", rank)
        object.__setattr__(
            out, "_term_size", np.where(t_plane >= 0, sizes[np.maximum(t_plane, 0)], 0)
        )
    for arr in (out.capacity_bps, out.kind, out.element, out.reverse, out.site_down, out.site_up):
        arr.setflags(write=False)
    return out


# --------------------------------------------------------------------------------------------
# Paths -> resources
# --------------------------------------------------------------------------------------------


def pack_paths(paths: Sequence[Sequence[int]]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Pack node paths into CSR form.

    Parameters
    ----------
    paths : sequence of sequence of int, length F
        Node paths, source first; an empty path means no route.

    Returns
    -------
    path_ptr : ndarray of int64, shape (F + 1,)
        Path ``i`` is ``path_nodes[path_ptr[i]:path_ptr[i + 1]]``.
    path_nodes : ndarray of int64, shape (M,)

    Examples
    --------
    >>> pack_paths([[5, 0, 1, 8], [], [6, 1, 7]])
    (array([0, 4, 4, 7]), array([5, 0, 1, 8, 6, 1, 7]))
    """
    lengths = np.fromiter((len(p) for p in paths), dtype=np.int64, count=len(paths))
    ptr = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=ptr[1:])
    nodes = np.fromiter((int(v) for p in paths for v in p), dtype=np.int64, count=int(ptr[-1]))
    return ptr, nodes


def node_paths_from_predecessors(
    pred: NDArray[np.integer[Any]], row: ArrayLike, target: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Node paths of many pairs from shortest-path trees, source first, in CSR form.

    Parameters
    ----------
    pred : ndarray of int, shape (K, N)
        Predecessor of each node in each of ``K`` trees (scipy's ``dijkstra(...,
        return_predecessors=True)``; a negative value, e.g. scipy's -9999, at the root and at
        unreachable nodes). From starmesh's compiled trees (``pedge``, ``edge_src``) use
        ``np.where(pedge >= 0, edge_src[pedge], -1)``.
    row : array of int, shape (P,)
        Tree of each pair.
    target : array of int, shape (P,)
        Target node of each pair.

    Returns
    -------
    path_ptr : ndarray of int64, shape (P + 1,)
    path_nodes : ndarray of int64, shape (M,)
        Each path runs from its tree's root to its target; empty where the target is
        unreachable or is the root itself.

    Notes
    -----
    All paths are walked back at once, one hop per iteration (as
    :func:`starmesh.routing.shortest_routes` does).
    """
    row = np.asarray(row, dtype=np.int64)
    target = np.asarray(target, dtype=np.int64)
    n_p = target.size
    # The walk stops at a node without predecessor. After at least one hop that node is the
    # root; at the target itself it is either unreachable or the root (no path either way).
    hops: list[NDArray[np.int64]] = [target.copy()]
    who: list[NDArray[np.int64]] = [np.arange(n_p, dtype=np.int64)]
    active = np.arange(n_p, dtype=np.int64)
    cur = target.copy()
    length = np.ones(n_p, np.int64)
    reached = np.zeros(n_p, bool)
    n_nodes = pred.shape[1]
    for _ in range(n_nodes):
        prev = pred[row[active], cur[active]].astype(np.int64)
        ok = prev >= 0
        reached[active[~ok & (length[active] > 1)]] = True
        active, prev = active[ok], prev[ok]
        if not active.size:
            break
        cur[active] = prev
        length[active] += 1
        hops.append(prev)
        who.append(active)
    # Single-node "paths" are unreachable targets (or a root routed to itself).
    keep = reached
    flat_who = np.concatenate(who)
    flat_node = np.concatenate(hops)
    depth = np.concatenate([np.full(w.size, i, np.int64) for i, w in enumerate(who)])
    sel = keep[flat_who]
    flat_who, flat_node, depth = flat_who[sel], flat_node[sel], depth[sel]
    # Order by pair, then from the root (deepest) to the target.
    order = np.lexsort((-depth, flat_who))
    lengths = np.where(keep, length, 0)
    ptr = np.zeros(n_p + 1, np.int64)
    np.cumsum(lengths, out=ptr[1:])
    return ptr, flat_node[order]


def reverse_paths(
    path_ptr: ArrayLike, path_nodes: ArrayLike, n_sats: int, n_sites: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The same routes in the other direction: each path reversed, site out and in nodes
    swapped.

    The routing graph is symmetric, so the reverse of a shortest path is a shortest path;
    trees grown from the destinations (as :func:`starmesh.routing.shortest_routes` does when
    they are fewer) give paths that this turns into source-first paths.

    Parameters
    ----------
    path_ptr : array of int, shape (F + 1,)
    path_nodes : array of int, shape (M,)
    n_sats, n_sites : int
        ``S`` and ``G`` of the graph layout.

    Returns
    -------
    path_ptr : ndarray of int64, shape (F + 1,)
    path_nodes : ndarray of int64, shape (M,)

    Examples
    --------
    >>> reverse_paths([0, 5], [2, 0, 1, 6, 7], 2, 3)[1]   # terminal -> PoP to PoP -> terminal
    array([4, 3, 1, 0, 5])
    """
    ptr = np.asarray(path_ptr, dtype=np.int64)
    nodes = np.asarray(path_nodes, dtype=np.int64)
    lengths = np.diff(ptr)
    flow = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    pos = np.arange(nodes.size, dtype=np.int64)
    out = nodes[ptr[flow] + ptr[flow + 1] - 1 - pos]
    ground = out >= n_sats
    g = (out[ground] - n_sats) % n_sites
    out[ground] = np.where(out[ground] >= n_sats + n_sites, n_sats + g, n_sats + n_sites + g)
    return ptr.copy(), out


def _edge_resources(
    res: Resources, u: NDArray[np.int64], v: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """First and second resource (-1: none) of each directed edge ``u -> v``, and validity."""
    n_s, n_g = res.n_sats, res.n_sites
    r1 = np.full(u.size, -1, np.int64)
    r2 = np.full(u.size, -1, np.int64)
    ok = np.zeros(u.size, bool)
    kind_of_site = np.array([_K.get(f"{k}_down", -1) for k in res.site_kinds] + [-1], np.int64)
    u_sat, v_sat = (u >= 0) & (u < n_s), (v >= 0) & (v < n_s)
    u_out, v_out = (u >= n_s) & (u < n_s + n_g), (v >= n_s) & (v < n_s + n_g)
    u_in, v_in = (u >= n_s + n_g) & (u < n_s + 2 * n_g), (v >= n_s + n_g) & (v < n_s + 2 * n_g)
    # ISLs.
    m = u_sat & v_sat
    if m.any() and res._term_plane is not None:
        assert res._term_next is not None
        assert res._term_rank is not None and res._term_size is not None
        idx = np.flatnonzero(m)
        a, b = u[m], v[m]
        pa, pb = res._term_plane[a], res._term_plane[b]
        nxt = np.where(pa >= 0, res._term_next[np.maximum(pa, 0)], -1)
        nxt_b = np.where(pb >= 0, res._term_next[np.maximum(pb, 0)], -1)
        # Ahead by at most half the plane's satellites in its argument-of-latitude order
        # (ranks, not angles: a plane's satellites may fill less than half a turn).
        n_in = np.maximum(res._term_size[a], 1)
        ahead = np.mod(res._term_rank[b] - res._term_rank[a], n_in) <= n_in // 2
        slot = np.full(a.size, 4, np.int64)  # across shells
        slot[(pb == nxt) & (pb >= 0)] = 2
        slot[(pa == nxt_b) & (pa >= 0)] = 3
        same = (pa == pb) & (pa >= 0)
        slot[same] = np.where(ahead[same], 0, 1)
        r1[idx] = 4 * n_s + len(LASER_TERMINALS) * a + slot
        ok[idx] = True
    elif m.any() and res._isl_key.size:
        key = u[m] * n_s + v[m]
        pos = np.minimum(np.searchsorted(res._isl_key, key), res._isl_key.size - 1)
        hit = res._isl_key[pos] == key
        idx = np.flatnonzero(m)
        r1[idx[hit]] = res._isl_res[pos[hit]]
        ok[idx[hit]] = True
    # Site out -> satellite (uplink).
    m = u_out & v_sat
    if m.any():
        idx = np.flatnonzero(m)
        g = u[m] - n_s
        k = kind_of_site[g]
        for site_kind, sat_kind in ((_K["terminal_down"], 1), (_K["gateway_down"], 3)):
            sel = k == site_kind
            r1[idx[sel]] = res.site_up[g[sel]]
            r2[idx[sel]] = sat_kind * n_s + v[idx[sel]]
            ok[idx[sel]] = True
    # Satellite -> site in (downlink).
    m = u_sat & v_in
    if m.any():
        idx = np.flatnonzero(m)
        g = v[m] - n_s - n_g
        k = kind_of_site[g]
        for site_kind, sat_kind in ((_K["terminal_down"], 0), (_K["gateway_down"], 2)):
            sel = k == site_kind
            r1[idx[sel]] = sat_kind * n_s + u[idx[sel]]
            r2[idx[sel]] = res.site_down[g[sel]]
            ok[idx[sel]] = True
    # Fibre: gateway in -> PoP in, PoP out -> gateway out.
    g2 = max(n_g, 1) ** 2
    for m, key_of in (
        (u_in & v_in, lambda a, b: (a - n_s - n_g) * n_g + (b - n_s - n_g)),
        (u_out & v_out, lambda a, b: g2 + (a - n_s) * n_g + (b - n_s)),
    ):
        if m.any() and res._fibre_key.size:
            key = key_of(u[m], v[m])
            pos = np.minimum(np.searchsorted(res._fibre_key, key), res._fibre_key.size - 1)
            hit = res._fibre_key[pos] == key
            idx = np.flatnonzero(m)
            r1[idx[hit]] = res._fibre_res[pos[hit]]
            ok[idx[hit]] = True
    return r1, r2, ok


def _describe_node(res: Resources, node: int) -> str:
    n_s, n_g = res.n_sats, res.n_sites
    if 0 <= node < n_s:
        return f"satellite {node}"
    if n_s <= node < n_s + n_g:
        return f"{res.site_kinds[node - n_s]} {node - n_s} (out node)"
    if n_s + n_g <= node < n_s + 2 * n_g:
        return f"{res.site_kinds[node - n_s - n_g]} {node - n_s - n_g} (in node)"
    return f"node {node} (out of range [0, {n_s + 2 * n_g}))"


def _path_edges(
    resources: Resources, path_ptr: ArrayLike, path_nodes: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], int]:
    """Flow, first and second resource (-1: none) of every edge of every path, validated."""
    ptr = np.asarray(path_ptr, dtype=np.int64)
    nodes = np.asarray(path_nodes, dtype=np.int64)
    n_f = ptr.size - 1
    if n_f < 0 or ptr[0] != 0 or ptr[-1] != nodes.size or np.any(np.diff(ptr) < 0):
        raise ScenarioError(
            "path_ptr",
            f"must rise from 0 to len(path_nodes) = {nodes.size}, got {ptr[:3].tolist()} .. "
            f"{ptr[-3:].tolist()}",
        )
    n_edges = np.maximum(np.diff(ptr) - 1, 0)
    flow = np.repeat(np.arange(n_f, dtype=np.int64), n_edges)
    # Position of each edge's first node: its path's start plus the edge's rank in the path.
    rank = np.arange(flow.size, dtype=np.int64) - np.repeat(np.cumsum(n_edges) - n_edges, n_edges)
    pos = np.repeat(ptr[:-1], n_edges) + rank
    u, v = nodes[pos], nodes[pos + 1]
    r1, r2, ok = _edge_resources(resources, u, v)
    if not ok.all():
        j = int(np.flatnonzero(~ok)[0])
        a, b = int(u[j]), int(v[j])
        raise ScenarioError(
            "path",
            f"flow {int(flow[j])}: edge {a} -> {b} ({_describe_node(resources, a)} -> "
            f"{_describe_node(resources, b)}) is no link of the network; paths must follow the "
            "routing graph's edges",
        )
    return flow, r1, r2, n_f


def flow_incidence(resources: Resources, path_ptr: ArrayLike, path_nodes: ArrayLike) -> csr_array:
    """Flow x resource incidence matrix of many node paths.

    Parameters
    ----------
    resources : Resources
    path_ptr : array of int, shape (F + 1,)
    path_nodes : array of int, shape (M,)
        Node paths in CSR form (:func:`pack_paths`, :func:`node_paths_from_predecessors`), in
        the graph layout of :mod:`starmesh.routing`. Empty (or one-node) paths are flows
        without a route: their rows are empty.

    Returns
    -------
    csr_array of float64, shape (F, R)
        1 where flow ``i`` uses resource ``r`` (2 if its path used it twice), sorted indices.

    Raises
    ------
    ScenarioError
        If a path holds an edge that is no link of the network (e.g. a PoP linked to a
        satellite, a satellite pair with no ISL); the message names the flow and the edge.

    Examples
    --------
    >>> res = build_resources(2, ["terminal", "gateway", "pop"], [[0, 1]], [1], [2])
    >>> ptr, nodes = pack_paths([[2, 0, 1, 6, 7], [], [4, 3, 1, 0, 5]])
    >>> a = flow_incidence(res, ptr, nodes)
    >>> a.shape, np.diff(a.indptr).tolist()
    ((3, 16), [6, 0, 6])
    """
    flow, r1, r2, n_f = _path_edges(resources, path_ptr, path_nodes)
    has2 = r2 >= 0
    rows = np.concatenate([flow, flow[has2]])
    cols = np.concatenate([r1, r2[has2]])
    a = csr_array((np.ones(rows.size), (rows, cols)), shape=(n_f, resources.n_resources))
    a.sum_duplicates()
    a.sort_indices()
    return a


def path_resources(
    resources: Resources,
    node_path: Sequence[int] | NDArray[np.integer[Any]],
    n_sats: int | None = None,
    n_sites: int | None = None,
) -> list[int]:
    """Resources that one directed node path uses, in path order.

    Parameters
    ----------
    resources : Resources
    node_path : sequence or array of int
        Nodes in the graph layout of :mod:`starmesh.routing`, source first.
    n_sats, n_sites : int, optional
        If given, checked against ``resources`` (a path from another network is an error).

    Returns
    -------
    list of int
        Resource indices, in the order the path meets them (see the module's table); empty for
        an empty or one-node path.

    Raises
    ------
    ScenarioError
        On an edge that is no link of the network or a size mismatch.

    Examples
    --------
    Two satellites with one ISL, a terminal (site 0), a gateway (1) and a PoP (2): ``S = 2``,
    ``G = 3``, out nodes 2-4, in nodes 5-7.

    >>> res = build_resources(2, ["terminal", "gateway", "pop"], [[0, 1]], [1], [2])
    >>> names = res.labels(["T", "GW", "P"])
    >>> [names[r] for r in path_resources(res, [2, 0, 1, 6, 7])]      # terminal -> PoP
    ['terminal T up', 'sat 0 user_up', 'isl 0->1', 'sat 1 feeder_down', 'gateway GW down', \
'fibre GW->P']
    >>> [names[r] for r in path_resources(res, [4, 3, 1, 0, 5])]      # PoP -> terminal
    ['fibre P->GW', 'gateway GW up', 'sat 1 feeder_up', 'isl 1->0', 'sat 0 user_down', \
'terminal T down']
    """
    for name, given, have in (
        ("n_sats", n_sats, resources.n_sats),
        ("n_sites", n_sites, resources.n_sites),
    ):
        if given is not None and given != have:
            raise ScenarioError(name, f"conflicting sizes: {given} given, {have} in the resources")
    nodes = np.asarray(node_path, dtype=np.int64).reshape(-1)
    _, r1, r2, _ = _path_edges(resources, np.array([0, nodes.size]), nodes)
    both = np.stack([r1, r2], axis=1).reshape(-1)
    return [int(r) for r in both if r >= 0]


# --------------------------------------------------------------------------------------------
# Max-min fair allocation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """Max-min fair rates of ``F`` flows over ``R`` resources.

    Attributes
    ----------
    rate_bps : ndarray, shape (F,)
        Rate of each flow [bit/s].
    bottleneck : ndarray of int64, shape (F,)
        A saturated resource that limits the flow (one of them if several),
        :data:`DEMAND_LIMITED` (-1) if the flow gets its demand, :data:`UNROUTABLE` (-2) if it
        has no path (rate 0).
    load_bps : ndarray, shape (R,)
        Traffic on each resource [bit/s] (a flow of infinite rate, possible only on resources of
        infinite capacity, is not counted).
    utilisation : ndarray, shape (R,)
        ``load_bps / capacity``; 0 where the capacity is 0 or infinite.
    n_rounds : int
        Filling rounds used.
    """

    rate_bps: NDArray[np.float64]
    bottleneck: NDArray[np.int64]
    load_bps: NDArray[np.float64]
    utilisation: NDArray[np.float64]
    n_rounds: int


def _check_problem(
    incidence: Any, capacity_bps: ArrayLike, demand_bps: ArrayLike
) -> tuple[csr_array, NDArray[np.float64], NDArray[np.float64]]:
    if not issparse(incidence):
        incidence = csr_array(np.atleast_2d(np.asarray(incidence, dtype=np.float64)))
    a = csr_array(incidence, dtype=np.float64)
    a.sum_duplicates()
    a.sort_indices()
    n_f, n_r = a.shape
    cap = np.asarray(capacity_bps, dtype=np.float64)
    dem = np.asarray(demand_bps, dtype=np.float64)
    if cap.shape != (n_r,):
        raise ScenarioError(
            "capacity_bps",
            f"conflicting sizes: {n_r} resources in the incidence matrix, "
            f"capacity has shape {cap.shape}",
        )
    if dem.shape != (n_f,):
        raise ScenarioError(
            "demand_bps",
            f"conflicting sizes: {n_f} flows in the incidence matrix, demand has shape {dem.shape}",
        )
    bad = np.flatnonzero(np.isnan(cap) | (cap < 0))
    if bad.size:
        raise ScenarioError(
            "capacity_bps",
            f"must be >= 0 bit/s, got {float(cap[bad[0]])!r} at resource {int(bad[0])}",
        )
    bad = np.flatnonzero(np.isnan(dem) | (dem < 0))
    if bad.size:
        raise ScenarioError(
            "demand_bps",
            f"must be >= 0 bit/s (inf: as much as it can get), got "
            f"{float(dem[bad[0]])!r} for flow {int(bad[0])}",
        )
    if a.nnz and not (np.all(np.isfinite(a.data)) and np.all(a.data >= 0)):
        raise ScenarioError(
            "incidence", "entries must be finite and >= 0 (times a flow crosses a resource)"
        )
    a.eliminate_zeros()
    return a, cap, dem


def max_min_fair(
    incidence: Any,
    capacity_bps: ArrayLike,
    demand_bps: ArrayLike,
    *,
    rtol: float = _RTOL,
) -> Allocation:
    """Max-min fair rates of flows over shared resources, by progressive filling.

    Parameters
    ----------
    incidence : sparse matrix or array, shape (F, R)
        ``incidence[i, r]`` is how many times flow ``i`` crosses resource ``r`` (usually 0 or
        1; :func:`flow_incidence`). A flow with an empty row has no route.
    capacity_bps : array, shape (R,)
        Capacities [bit/s], >= 0; 0 blocks every flow through the resource, ``inf`` never
        limits.
    demand_bps : array, shape (F,)
        Demands [bit/s], >= 0; ``inf`` takes whatever its fair share is.
    rtol : float
        Relative tolerance under which two shares count as equal, in [0, 1).

    Returns
    -------
    Allocation
        Flows without a route get rate 0 and bottleneck :data:`UNROUTABLE`. A routed flow
        whose resources all have infinite capacity gets its demand.

    Raises
    ------
    ScenarioError
        On negative or NaN capacities or demands, sizes that disagree, or ``rtol`` outside
        [0, 1).
    RuntimeError
        If filling takes more rounds than flows + resources (a round froze no flow: a bug).

    Examples
    --------
    Three flows on one 10 bit/s link, one of them wanting only 1 bit/s:

    >>> a = max_min_fair([[1], [1], [1]], [10.0], [1.0, 20.0, 20.0])
    >>> a.rate_bps.tolist(), a.bottleneck.tolist()
    ([1.0, 4.5, 4.5], [-1, 0, 0])
    """
    if not 0.0 <= rtol < 1.0:
        raise ScenarioError("rtol", f"must be in [0, 1), got {rtol!r}; the default is {_RTOL}")
    a, cap, dem = _check_problem(incidence, capacity_bps, demand_bps)
    n_f, n_r = a.shape
    row_len = np.diff(a.indptr)
    rate = np.zeros(n_f)
    bottleneck = np.full(n_f, UNROUTABLE, np.int64)
    routable = row_len > 0
    bottleneck[routable] = DEMAND_LIMITED
    e_flow = np.repeat(np.arange(n_f, dtype=np.int64), row_len)
    e_res = a.indices.astype(np.int64)
    e_w = a.data.copy()
    finite = np.isfinite(cap)
    if not finite.all():
        keep = finite[e_res]
        e_flow, e_res, e_w = e_flow[keep], e_res[keep], e_w[keep]
    # Routed flows on resources of infinite capacity only: their demand.
    constrained = np.zeros(n_f, bool)
    constrained[e_flow] = True
    free = routable & ~constrained
    rate[free] = dem[free]
    # Work in a compact index space of the resources that some flow uses.
    mark = np.zeros(n_r, bool)
    mark[e_res] = True
    used_res = np.flatnonzero(mark)
    n_u = used_res.size
    e_res = (np.cumsum(mark) - 1)[e_res]
    c_res = cap[used_res].copy()
    unit = bool(np.all(e_w == 1.0))
    # Per growing flow: id, demand and number of entries (entries are sorted by flow).
    flows = np.flatnonzero(np.bincount(e_flow, minlength=n_f))
    counts = np.bincount(e_flow, minlength=n_f)[flows]
    d = dem[flows]
    n_rounds = 0
    # Each round freezes at least one flow (every flow on the resource of smallest share is
    # either held there or by its demand), so at most F rounds are needed; F + R is a hard
    # bound. More rounds mean the bottleneck test froze nothing: fail instead of looping.
    max_rounds = flows.size + n_u
    while flows.size:
        n_rounds += 1
        if n_rounds > max_rounds:
            raise RuntimeError(
                f"max_min_fair: {flows.size} flows still growing after {max_rounds} rounds "
                "(flows + resources); a round froze no flow"
            )
        w_sum = (
            np.bincount(e_res, minlength=n_u) if unit else np.bincount(e_res, e_w, minlength=n_u)
        ).astype(np.float64)
        share = np.divide(np.maximum(c_res, 0.0), w_sum, out=np.full(n_u, np.inf), where=w_sum > 0)
        s_e = share[e_res]
        starts = np.zeros(flows.size, np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        g_res = np.minimum.reduceat(s_e, starts)
        level = np.minimum(g_res, d)
        level_e = np.repeat(level, counts)
        # A resource is a bottleneck if no growing flow on it is held lower elsewhere.
        below = level_e < s_e * (1.0 - rtol)
        is_bottleneck = np.bincount(e_res, weights=below, minlength=n_u) == 0
        hit = is_bottleneck[e_res]
        by_demand = d <= g_res
        freeze = (np.maximum.reduceat(hit.view(np.uint8), starts) > 0) | by_demand
        rate[flows[freeze]] = level[freeze]
        # One bottleneck per flow: the last of its bottleneck entries.
        hit_flow = np.repeat(flows, counts)[hit]
        bottleneck[hit_flow] = used_res[e_res[hit]]
        bottleneck[flows[by_demand]] = DEMAND_LIMITED
        frozen_e = np.repeat(freeze, counts)
        w_frozen = level_e[frozen_e] if unit else level_e[frozen_e] * e_w[frozen_e]
        c_res -= np.bincount(e_res[frozen_e], weights=w_frozen, minlength=n_u)
        live = ~frozen_e
        e_res = e_res[live]
        if not unit:
            e_w = e_w[live]
        keep_f = ~freeze
        flows, counts, d = flows[keep_f], counts[keep_f], d[keep_f]
    load = a.T @ np.where(np.isfinite(rate), rate, 0.0)
    util = np.zeros(n_r)
    pos = finite & (cap > 0)
    util[pos] = load[pos] / cap[pos]
    return Allocation(
        rate_bps=rate,
        bottleneck=bottleneck,
        load_bps=np.asarray(load, dtype=np.float64),
        utilisation=util,
        n_rounds=n_rounds,
    )


def max_min_fair_lp(
    incidence: Any, capacity_bps: ArrayLike, demand_bps: ArrayLike, *, tol: float = 1e-9
) -> NDArray[np.float64]:
    """Max-min fair rates by lexicographic linear programming: the slow reference.

    Each level: maximise ``t`` subject to ``A x <= c``, ``0 <= x <= demand``, the flows fixed
    so far at their rates and ``x_i >= t`` for the others (HiGHS via
    :func:`scipy.optimize.linprog`). Then, per unfixed flow, maximise ``x_i`` with every other
    unfixed flow kept ``>= t``; a flow that cannot exceed ``t`` is fixed at ``t``. Repeat until
    all flows are fixed. That is up to ``F`` linear programs per level: for tests of
    :func:`max_min_fair` on small instances only.

    Parameters
    ----------
    incidence : sparse matrix or array, shape (F, R)
    capacity_bps : array, shape (R,)
        Finite capacities [bit/s].
    demand_bps : array, shape (F,)
    tol : float
        Relative tolerance of "cannot exceed ``t``" (scaled by the largest capacity).

    Returns
    -------
    ndarray, shape (F,)
        Rates [bit/s]; 0 for flows with empty rows (no route), as :func:`max_min_fair`.
    """
    from scipy.optimize import linprog

    a, cap, dem = _check_problem(incidence, capacity_bps, demand_bps)
    n_f, _ = a.shape
    rate = np.zeros(n_f)
    if not np.all(np.isfinite(cap)):
        raise ScenarioError("capacity_bps", "max_min_fair_lp needs finite capacities")
    scale = float(cap.max()) if cap.size and cap.max() > 0 else 1.0
    c = cap / scale
    d = np.minimum(dem / scale, 1e12)
    dense = a.toarray()
    todo = np.diff(a.indptr) > 0
    fixed = np.zeros(n_f, bool)
    fixed[~todo] = True
    x_fixed = np.zeros(n_f)

    def solve(
        objective: NDArray[np.float64], free: NDArray[np.bool_], t_min: float | None
    ) -> tuple[float, NDArray[np.float64]]:
        # Variables: x (F) then t.
        n = n_f + 1
        a_ub = [np.hstack([dense.T, np.zeros((dense.shape[1], 1))])]
        b_ub = [c]
        idx = np.flatnonzero(free)
        if t_min is None:
            # t - x_i <= 0 for free flows
            rows = np.zeros((idx.size, n))
            rows[np.arange(idx.size), idx] = -1.0
            rows[:, -1] = 1.0
            a_ub.append(rows)
            b_ub.append(np.zeros(idx.size))
        bounds = []
        for i in range(n_f):
            if fixed[i]:
                bounds.append((x_fixed[i], x_fixed[i]))
            elif t_min is not None:
                bounds.append((min(t_min, d[i]), d[i]))
            else:
                bounds.append((0.0, d[i]))
        bounds.append((0.0, None) if t_min is None else (0.0, 0.0))
        res = linprog(
            objective,
            A_ub=np.vstack(a_ub),
            b_ub=np.concatenate(b_ub),
            bounds=bounds,
            method="highs",
        )
        if res.status != 0:  # pragma: no cover - the problems are feasible and bounded
            raise StarmeshError(f"linprog failed: {res.message}")
        return -float(res.fun), np.asarray(res.x)

    while not fixed.all():
        free = ~fixed
        obj = np.zeros(n_f + 1)
        obj[-1] = -1.0
        t, _ = solve(obj, free, None)
        newly = []
        for i in np.flatnonzero(free):
            if d[i] <= t * (1 + tol) + tol:
                newly.append(i)
                continue
            obj = np.zeros(n_f + 1)
            obj[i] = -1.0
            best, _ = solve(obj, free, t)
            if best <= t + tol * max(1.0, t):
                newly.append(i)
        if not newly:  # pragma: no cover - theory says at least one flow is fixed
            raise StarmeshError("max_min_fair_lp made no progress")
        for i in newly:
            fixed[i] = True
            x_fixed[i] = min(t, d[i])
    rate[todo] = x_fixed[todo] * scale
    return rate


def jain_index(x: ArrayLike) -> float:
    """Jain's fairness index ``(sum x)^2 / (n sum x^2)`` of non-negative values.

    1 when all values are equal, ``1/n`` when one value takes everything; NaN for no values or
    all zeros (undefined).

    Examples
    --------
    >>> jain_index([1.0, 1.0, 1.0, 1.0]), jain_index([1.0, 0.0, 0.0, 0.0])
    (1.0, 0.25)
    """
    v = np.asarray(x, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return math.nan
    sq = float(np.dot(v, v))
    if sq == 0.0:
        return math.nan
    return float(v.sum() ** 2 / (v.size * sq))
