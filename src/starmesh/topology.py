"""Link builders: +Grid ISLs, GSLs by true elevation (or Hypatia's slant-range rule), fibre.

Fixed structure (``isl_edges (E, 2)``) is kept apart from per-step state (``isl_up (T, E)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from .constants import WGS84_A_M, WGS84_B_M
from .constellation import Constellation
from .frames import great_circle_m, slant_range_m


def plus_grid_edges(constellation: Constellation) -> NDArray[np.int32]:
    """+Grid ISLs of every Walker shell: each satellite links to its in-plane neighbours and to
    the same slot in the adjacent planes.

    Links never cross shells. Across the seam (last plane -> plane 0) satellite ``j`` links to
    slot ``j + shift`` of plane 0, with the shift from :meth:`WalkerShell.seam_shift`; Walker star
    shells have no seam links. A shell of ``S`` satellites with ``P >= 3`` planes and ``>= 3``
    satellites per plane has exactly ``2 S`` links (degree 4) unless it is a star shell.

    Returns
    -------
    ndarray of int32, shape (E, 2)
        Satellite index pairs, ``a < b``, sorted, no duplicates.
    """
    pairs: list[NDArray[np.int64]] = []
    for lay in constellation.shells:
        shell = lay.shell
        n_p, n_s = shell.n_planes, shell.sats_per_plane
        plane, slot = (x.astype(np.int64) for x in shell.plane_slot())
        idx = lay.offset + plane * n_s + slot
        if n_s > 1:
            pairs.append(np.stack([idx, lay.offset + plane * n_s + (slot + 1) % n_s], axis=1))
        if n_p > 1:
            inner = plane < n_p - 1
            pairs.append(np.stack([idx[inner], idx[inner] + n_s], axis=1))
            shift = shell.seam_shift()
            if shift is not None:
                last = plane == n_p - 1
                pairs.append(np.stack([idx[last], lay.offset + (slot[last] + shift) % n_s], axis=1))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int32)
    e = np.concatenate(pairs)
    e = np.sort(e, axis=1)
    e = e[e[:, 0] != e[:, 1]]
    e = np.unique(e, axis=0)
    return e.astype(np.int32)


def isl_lengths_m(r_ecef_m: NDArray[np.float64], edges: NDArray[np.int32]) -> NDArray[np.float64]:
    """Length of every ISL at every step.

    Parameters
    ----------
    r_ecef_m : ndarray, shape (T, S, 3)
    edges : ndarray, shape (E, 2)

    Returns
    -------
    ndarray, shape (T, E)
        Lengths [m]; NaN where an endpoint has no position.
    """
    d = r_ecef_m[:, edges[:, 0], :] - r_ecef_m[:, edges[:, 1], :]
    return np.sqrt(np.einsum("tei,tei->te", d, d))


def libastro_isl_lengths_m(
    r_ecef_m: NDArray[np.float64], edges: NDArray[np.int32]
) -> NDArray[np.float64]:
    """ISL lengths as satgenpy measures them with pyephem (``earth_model = "pyephem"``).

    satgenpy's ``distance_m_between_satellites`` puts an observer at 0 N 0 E, has pyephem
    compute each satellite's range and topocentric (hour angle, declination), and applies the law
    of cosines to the two ranges and their angular separation. libastro rounds the range and the
    azimuth to float32 on the way (``ess_range``, ``co_az`` in ``astro.h``; ``earthsat.c``
    ``obj_earthsat``, ``aa_hadec.c``, ``misc.c`` ``solve_sphere``, pyephem's ``separation``),
    which moves a length by up to a few metres for satellites far from the observer. This
    repeats those steps in float64 with the same two roundings. Written out here because no
    library other than pyephem (one satellite pair per call) does this.

    Parameters
    ----------
    r_ecef_m : ndarray, shape (T, S, 3)
        Positions [m] in the pyephem Earth model's Earth-fixed frame.
    edges : ndarray, shape (E, 2)

    Returns
    -------
    ndarray, shape (T, E)
        Lengths [m]; NaN where an endpoint has no position.
    """
    from .constants import LIBASTRO_EARTH_RADIUS_KM

    # Topocentric frame of an observer at 0 N 0 E on libastro's Earth: south, east, up.
    d = r_ecef_m.copy()
    d[..., 0] -= LIBASTRO_EARTH_RADIUS_KM * 1e3
    x, y, z = -d[..., 2], d[..., 1], d[..., 0]
    rng = np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2).astype(np.float32)
    alt = np.arctan(z / np.sqrt(x * x + y * y))
    az = (np.pi - np.arctan2(y, x)).astype(np.float32).astype(np.float64)
    # aa_hadec at latitude 0: solve_sphere(-az, pi/2 - alt, sin 0, cos 0).
    b = np.pi / 2 - alt
    cb, sb = np.cos(b), np.sin(b)
    ca = np.clip(sb * np.cos(-az), -1.0, 1.0)
    dec = np.pi / 2 - np.arccos(ca)
    ha = np.arctan2(np.sin(-az) * sb, cb)
    r1, r2 = rng[:, edges[:, 0]].astype(np.float64), rng[:, edges[:, 1]].astype(np.float64)
    # The angular separation's cosine, sin d1 sin d2 + cos d1 cos d2 cos(ha1 - ha2), as the dot
    # product of per-satellite unit vectors (trigonometry once per satellite, not per link);
    # the law of cosines then needs cos(sep) = min(cosine, 1) itself, not sep (the same value
    # to within rounding, 1e-8 m in length).
    cd = np.cos(dec)
    unit = np.stack([cd * np.cos(ha), cd * np.sin(ha), np.sin(dec)], axis=-1)
    cosine = np.einsum("tek,tek->te", unit[:, edges[:, 0]], unit[:, edges[:, 1]])
    cos_sep = np.clip(cosine, -1.0, 1.0)
    return np.sqrt(np.maximum(r1**2 + r2**2 - 2.0 * r1 * r2 * cos_sep, 0.0))


def libastro_gsl_lengths_m(length_m: NDArray[np.float64]) -> NDArray[np.float64]:
    """GSL lengths as pyephem reports them: rounded to float32 (``ess_range``), shape kept."""
    return np.asarray(length_m, dtype=np.float64).astype(np.float32).astype(np.float64)


def max_isl_range_m(
    altitude_m: float, grazing_altitude_m: float = 80e3, earth_radius_m: float = 6_378_135.0
) -> float:
    """Longest line of sight between two satellites at ``altitude_m`` that stays above
    ``grazing_altitude_m`` (Hypatia's rule: ISLs do not dip below 80 km).

    ``2 sqrt((R + h)^2 - (R + h_g)^2)``; Hypatia uses the WGS72 radius 6,378,135 m.
    """
    return 2.0 * float(
        np.sqrt((earth_radius_m + altitude_m) ** 2 - (earth_radius_m + grazing_altitude_m) ** 2)
    )


@dataclass(frozen=True)
class GslRule:
    """Which satellites a ground site may link to.

    Parameters
    ----------
    min_elevation_rad : float or None
        True elevation mask above the site's geodetic horizon.
    max_range_m : float or None
        Maximum slant range (Hypatia's rule: Starlink 1,089,686 m). Exactly one of the two.
    """

    min_elevation_rad: float | None = None
    max_range_m: float | None = None

    def __post_init__(self) -> None:
        if (self.min_elevation_rad is None) == (self.max_range_m is None):
            raise ValueError(
                "GslRule needs exactly one of min_elevation_rad and max_range_m, got "
                f"{self.min_elevation_rad!r} and {self.max_range_m!r}"
            )

    def search_radius_m(self, r_sat_max_m: float) -> float:
        """A slant range that no admissible link exceeds (the KD-tree query radius)."""
        if self.max_range_m is not None:
            return self.max_range_m
        assert self.min_elevation_rad is not None
        # The geodetic vertical differs from the geocentric one by < 0.2 deg; take a 0.5 deg
        # looser elevation and the smallest Earth radius so the bound is safe for every site.
        # The loosened angle may be negative (a 0 deg mask): the formula holds there too, and
        # clamping it at 0 would drop the margin and miss satellites on the poleward horizon.
        e = self.min_elevation_rad - np.radians(0.5)
        return float(slant_range_m(e, r_sat_max_m, WGS84_B_M - 500.0)) + 1.0


@dataclass(frozen=True)
class GslCandidates:
    """Ground-satellite links in one chunk, as flat arrays of length ``L``.

    Attributes
    ----------
    t_idx : ndarray of int32, shape (L,)
        Step within the chunk.
    site_idx, sat_idx : ndarray of int32, shape (L,)
    length_m : ndarray of float64, shape (L,)
        Slant range [m].
    elevation_rad : ndarray of float64, shape (L,)
        Elevation above the site's geodetic horizon [rad] (:func:`link_geometry`).
    """

    t_idx: NDArray[np.int32]
    site_idx: NDArray[np.int32]
    sat_idx: NDArray[np.int32]
    length_m: NDArray[np.float64]
    elevation_rad: NDArray[np.float64]

    def select(self, keep: NDArray[Any] | slice) -> GslCandidates:
        """The links that ``keep`` (a boolean mask, indices or a slice) selects."""
        return GslCandidates(
            self.t_idx[keep],
            self.site_idx[keep],
            self.sat_idx[keep],
            self.length_m[keep],
            self.elevation_rad[keep],
        )

    @classmethod
    def empty(cls) -> GslCandidates:
        z = np.zeros(0, np.int32)
        return cls(z, z.copy(), z.copy(), np.zeros(0), np.zeros(0))


def in_link_order(t_idx: ArrayLike, site_idx: ArrayLike, sat_idx: ArrayLike) -> bool:
    """Whether links are in :class:`GslCandidates` order: by step, then site, then satellite,
    each (step, site, satellite) once."""
    from .gsl_kernel import links_in_order

    t, g, s = (np.ascontiguousarray(x) for x in (t_idx, site_idx, sat_idx))
    if not t.size == g.size == s.size:
        raise ValueError(f"t_idx, site_idx, sat_idx sizes differ: {t.size}, {g.size}, {s.size}")
    if t.size < 2:
        return True
    # Any numeric dtype: the compiled check is specialised to the arrays it is given (int32
    # from GslCandidates, int64 from callers that converted), so no copy is made.
    return bool(links_in_order(t, g, s))


def link_geometry(
    d: NDArray[np.float64], up: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Slant range [m] and elevation [rad] of site-to-satellite vectors, shape (L,) each.

    ``|d|`` and ``d . up / |d|`` are summed in a fixed order (x, y, then z), as the compiled
    window search (:mod:`starmesh.gsl_kernel`) sums them, so that every search method gives
    the same values bit for bit (numpy's einsum and norm pick their order by SIMD loop). The
    elevation is :func:`starmesh.frames.elevation_rad`'s to within rounding.

    Parameters
    ----------
    d : ndarray, shape (L, 3)
        Satellite minus site position [m].
    up : ndarray, shape (L, 3)
        Unit geodetic vertical at each site.
    """
    dist = np.sqrt((d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]) + d[:, 2] * d[:, 2])
    with np.errstate(invalid="ignore", divide="ignore"):
        x = ((d[:, 0] * up[:, 0] + d[:, 1] * up[:, 1]) + d[:, 2] * up[:, 2]) / dist
    return dist, np.arcsin(np.clip(x, -1.0, 1.0))


#: Above this many site-satellite pairs per step, candidates come from a KD-tree rather than
#: from a dense product (which is then the bottleneck).
DENSE_GSL_MAX_PAIRS = 2_000_000

#: The ``"window"`` search takes a block of consecutive steps at once while no satellite moves
#: further than this fraction of the search radius from its reference position in the block (the
#: candidate radius is widened by that distance, so the fraction bounds the extra candidates).
WINDOW_MAX_DRIFT = 0.15

#: Within a block, the compiled test drops, every this many steps, the candidate pairs that
#: cannot pass at any of them (a bound on the satellites' moves around the middle step).
WINDOW_SUB_STEPS = 6


def find_gsls(
    r_ecef_m: NDArray[np.float64],
    ok: NDArray[np.bool_],
    site_r_m: NDArray[np.float64],
    site_up: NDArray[np.float64],
    rule: GslRule,
    *,
    method: Literal["auto", "window", "kdtree", "dense"] = "auto",
) -> GslCandidates:
    """All admissible ground-satellite links of a chunk.

    Candidates are the satellites within a safe slant-range bound of a site
    (:meth:`GslRule.search_radius_m`); only they get the exact elevation (or range) test. With
    many sites and satellites the candidates come from one KD-tree over the chunk's ``T * S``
    satellite positions, queried with the sites' fixed positions, so that ``G * S * T``
    pairs are never formed. With few (``G * S`` up to :data:`DENSE_GSL_MAX_PAIRS`, e.g. 100 cities
    and Starlink Gen1) one BLAS product of positions per block of steps is faster than building
    the tree. The ``"window"`` method (the default for many sites) uses the steps' coherence:
    one KD-tree of the satellites per block of consecutive steps, queried with the radius widened
    by how far any satellite moves in the block, then, in one compiled pass
    (:mod:`starmesh.gsl_kernel`), the exact rule at each step for the candidate pairs that can
    pass within a few steps of it (:data:`WINDOW_SUB_STEPS`). All give the same links.

    Parameters
    ----------
    r_ecef_m : ndarray, shape (T, S, 3)
    ok : ndarray of bool, shape (T, S)
        Satellites with a valid position.
    site_r_m, site_up : ndarray, shape (G, 3)
        Site positions [m] and unit geodetic verticals.
    rule : GslRule
    method : {"auto", "window", "kdtree", "dense"}
        How candidates are found.

    Returns
    -------
    GslCandidates
        Sorted by ``(t_idx, site_idx, sat_idx)``.
    """
    n_t, n_s, _ = r_ecef_m.shape
    n_g = site_r_m.shape[0]
    flat = r_ecef_m.reshape(-1, 3)
    valid = ok.reshape(-1)
    if not valid.any() or n_g == 0:
        return GslCandidates.empty()
    r2 = np.einsum("ij,ij->i", flat, flat)
    r_max = float(np.sqrt(r2[valid].max()))
    radius = rule.search_radius_m(max(r_max, WGS84_A_M))
    if method == "auto":
        method = "dense" if n_g * n_s <= DENSE_GSL_MAX_PAIRS else "window"
    if method == "window":
        return _find_gsls_window(r_ecef_m, ok, site_r_m, site_up, rule, radius)
    if method == "kdtree":
        pts_idx = np.flatnonzero(valid)
        coo = cKDTree(site_r_m).sparse_distance_matrix(
            cKDTree(flat[pts_idx]), radius, output_type="ndarray"
        )
        g = coo["i"].astype(np.int64)
        flat_idx = pts_idx[coo["j"]]
    else:
        # |r - s|^2 = |r|^2 + |s|^2 - 2 r.s, over blocks of steps of about 4 M pairs.
        g2 = np.einsum("ij,ij->i", site_r_m, site_r_m)
        # A 1 m slack for the rounding of the expansion; the exact test follows.
        bound = (radius + 1.0) ** 2
        step_block = max(1, 4_000_000 // max(n_s * n_g, 1))
        gs, fs = [], []
        for t0 in range(0, n_t, step_block):
            a, b = t0 * n_s, min(t0 + step_block, n_t) * n_s
            d2 = r2[a:b, None] + g2[None, :] - 2.0 * (flat[a:b] @ site_r_m.T)
            f, gg = np.nonzero((d2 <= bound) & valid[a:b, None])
            gs.append(gg)
            fs.append(f + a)
        g = np.concatenate(gs).astype(np.int64)
        flat_idx = np.concatenate(fs).astype(np.int64)
    dist, el = link_geometry(flat[flat_idx] - site_r_m[g], site_up[g])
    keep = dist <= radius
    if rule.max_range_m is not None:
        keep &= dist <= rule.max_range_m
    else:
        assert rule.min_elevation_rad is not None
        keep &= el >= rule.min_elevation_rad
    g, flat_idx, dist, el = g[keep], flat_idx[keep], dist[keep], el[keep]
    t_idx, sat_idx = np.divmod(flat_idx, n_s)
    order = np.lexsort((sat_idx, g, t_idx))
    return GslCandidates(
        t_idx=t_idx[order].astype(np.int32),
        site_idx=g[order].astype(np.int32),
        sat_idx=sat_idx[order].astype(np.int32),
        length_m=dist[order],
        elevation_rad=el[order],
    )


def _window_blocks(
    r_ecef_m: NDArray[np.float64], ok: NDArray[np.bool_], radius_m: float
) -> list[tuple[int, int, NDArray[np.int64], NDArray[np.float64], float]]:
    """Blocks ``[a, b)`` of steps, each with its satellites, their reference positions and the
    largest distance [m] any of them moves from its reference within the block."""
    from .gsl_kernel import block_reference

    r = np.ascontiguousarray(r_ecef_m, dtype=np.float64)
    okc = np.ascontiguousarray(ok, dtype=np.bool_)
    out = []
    todo = [(0, r.shape[0])]
    while todo:
        a, b = todo.pop()
        # Reference: the middle step where the satellite has a position, else its first one.
        sats, ref_t, drift2 = block_reference(r, okc, a, b)
        if sats.size == 0:
            continue
        drift = math.sqrt(drift2)
        if drift > WINDOW_MAX_DRIFT * radius_m and b - a > 1:
            c = (a + b) // 2
            todo += [(c, b), (a, c)]
            continue
        out.append((a, b, sats, r[ref_t, sats], drift))
    out.sort(key=lambda x: x[0])
    return out


def _find_gsls_window(
    r_ecef_m: NDArray[np.float64],
    ok: NDArray[np.bool_],
    site_r_m: NDArray[np.float64],
    site_up: NDArray[np.float64],
    rule: GslRule,
    radius_m: float,
) -> GslCandidates:
    """:func:`find_gsls` by blocks of coherent steps (see its ``"window"`` method)."""
    from .gsl_kernel import gsl_blocks

    r = np.ascontiguousarray(r_ecef_m, dtype=np.float64)
    okc = np.ascontiguousarray(ok, dtype=np.bool_)
    site_r = np.ascontiguousarray(site_r_m, dtype=np.float64)
    up = np.ascontiguousarray(site_up, dtype=np.float64)
    n_s = r.shape[1]
    use_el = rule.min_elevation_rad is not None
    site_tree = cKDTree(site_r)
    steps, keys = [], []
    for a, b, sats, ref, drift in _window_blocks(r, okc, radius_m):
        # Triangle inequality: |r_t - site| <= radius implies |ref - site| <= radius + drift;
        # 1 m of slack covers the rounding of both distances. The exact test follows.
        coo = site_tree.sparse_distance_matrix(
            cKDTree(ref), radius_m + drift + 1.0, output_type="ndarray"
        )
        # (site, satellite) order by one sort of the keys site x S + satellite, an order of
        # magnitude faster than a lexsort of the two columns.
        key = coo["i"].astype(np.int64) * n_s + sats[coo["j"]]
        key.sort()
        steps.append((a, b))
        keys.append(key)
    if not keys:
        return GslCandidates.empty()
    block_p = np.zeros(len(keys) + 1, np.int64)
    block_p[1:] = np.cumsum([k.size for k in keys])
    pair_site, pair_sat = np.divmod(np.concatenate(keys), n_s)
    # Room for every pair at every step; numpy's large allocations are mapped lazily (in huge
    # pages where the system allows), so only the rows written are ever touched.
    cap = sum(k.size * (b - a) for k, (a, b) in zip(keys, steps, strict=True))
    t, g32, s32 = (np.empty(cap, np.int32) for _ in range(3))
    length, sine = np.empty(cap), np.empty(cap)
    n = gsl_blocks(
        r,
        okc,
        np.array(steps, np.int64).reshape(-1, 2),
        block_p,
        pair_site,
        pair_sat,
        site_r,
        up,
        radius_m,
        use_el,
        rule.min_elevation_rad or 0.0,
        rule.max_range_m or 0.0,
        WINDOW_SUB_STEPS,
        t,
        g32,
        s32,
        length,
        sine,
    )
    t, g32, s32, length, sine = t[:n], g32[:n], s32[:n], length[:n], sine[:n]
    # The elevation and its test in numpy, exactly as the other methods take them (the kernel
    # clipped the sine as np.clip does), in place of the kernel's sine.
    el = np.arcsin(sine, out=sine)
    if use_el:
        keep = el >= rule.min_elevation_rad
        if not keep.all():
            t, g32, s32, length, el = t[keep], g32[keep], s32[keep], length[keep], el[keep]
    return GslCandidates(t_idx=t, site_idx=g32, sat_idx=s32, length_m=length, elevation_rad=el)


def fibre_links(
    lat_rad: NDArray[np.float64],
    lon_rad: NDArray[np.float64],
    gateway_idx: NDArray[np.int64],
    pop_idx: NDArray[np.int64],
    *,
    route_factor: float,
    policy: str = "nearest",
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Terrestrial fibre from gateways to PoPs.

    Parameters
    ----------
    lat_rad, lon_rad : ndarray, shape (G,)
        Site coordinates.
    gateway_idx, pop_idx : ndarray of int
        Site indices of gateways and PoPs.
    route_factor : float
        Fibre route length over great-circle distance (>= 1).
    policy : {"nearest", "all"}
        Each gateway backhauls to its nearest PoP, or to every PoP.

    Returns
    -------
    gw, pop : ndarray of int64, shape (F,)
        Site indices of each link's ends.
    length_m : ndarray, shape (F,)
        Fibre route length [m] (great circle x route factor).
    """
    if gateway_idx.size == 0 or pop_idx.size == 0:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0)
    gc = great_circle_m(
        lat_rad[gateway_idx][:, None],
        lon_rad[gateway_idx][:, None],
        lat_rad[pop_idx][None, :],
        lon_rad[pop_idx][None, :],
    )
    if policy == "nearest":
        j = np.argmin(gc, axis=1)
        gw = gateway_idx
        pop = pop_idx[j]
        length = gc[np.arange(gateway_idx.size), j]
    else:
        gw = np.repeat(gateway_idx, pop_idx.size)
        pop = np.tile(pop_idx, gateway_idx.size)
        length = gc.reshape(-1)
    return gw, pop, length * route_factor


def nearest_k_edges(
    r_ecef_m: NDArray[np.float64], ok: NDArray[np.bool_], *, k: int, max_range_m: float
) -> NDArray[np.int32]:
    """ISLs for satellites without a plane/slot layout (TLE sets): each satellite links to its
    ``k`` nearest neighbours within ``max_range_m`` at one instant.

    The union of the neighbour relations is taken, so a satellite has at least ``min(k,
    neighbours in range)`` links and sometimes a few more. The structure is then fixed for the run
    and each link is up while its length stays within range.

    Parameters
    ----------
    r_ecef_m : ndarray, shape (S, 3)
        Positions at the instant that fixes the structure [m].
    ok : ndarray of bool, shape (S,)
        Satellites with a valid position.

    Returns
    -------
    ndarray of int32, shape (E, 2)
        Sorted pairs ``a < b``.
    """
    idx = np.flatnonzero(ok)
    if idx.size < 2 or k < 1:
        return np.zeros((0, 2), dtype=np.int32)
    tree = cKDTree(r_ecef_m[idx])
    kk = min(k + 1, idx.size)
    _d, j = tree.query(r_ecef_m[idx], k=kk, distance_upper_bound=max_range_m)
    a = np.repeat(np.arange(idx.size), kk - 1)
    b = j[:, 1:].reshape(-1)
    good = b < idx.size
    e = np.stack([idx[a[good]], idx[b[good]]], axis=1)
    e = np.unique(np.sort(e, axis=1), axis=0)
    return e[e[:, 0] != e[:, 1]].astype(np.int32)
