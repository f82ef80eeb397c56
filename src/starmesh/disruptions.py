"""Disruptions: failed satellites, ISLs and ground sites; jamming; geofenced service areas.

Three independent parts, each a pure function of its inputs, called by the orchestrator once per
time chunk:

- **Failures** (:class:`Outage`, :class:`FailurePlan`): sets of satellites, ISLs or sites that are
  down during a time window ``[start_s, end_s)``, chosen explicitly, by shell and plane, by ISL
  endpoints, or as a seeded random fraction. They become per-step masks ``sat_failed (T, S)``,
  ``isl_failed (T, E)``, ``site_failed (T, G)``.
- **Jamming** (:class:`Jammer`, :func:`gsl_quality`): ground (or airborne) transmitters that add
  interference to ground-satellite links. Each GSL candidate of a chunk gets its downlink and
  uplink C/N, C/(N+I) and DVB-S2X capacity from :mod:`starmesh.linkbudget`; a link whose capacity
  is 0 is down.
- **Geofencing** (:class:`Geofence`): service-denied areas, GeoJSON polygons and circles, turned
  into a mask of the ground sites inside them.

Randomness comes only from a ``numpy.random.Generator`` made from a seed: the same seed gives the
same masks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import Polygon

from .constants import EARTH_MEAN_RADIUS_M
from .constellation import Constellation
from .errors import ScenarioError
from .frames import ecef_to_geodetic, geodetic_to_ecef, up_vectors
from .linkbudget import LinkBudget, LinkProfile, LinkQuality, angle_between_rad, fspl_db

Band = Literal["downlink", "uplink"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_FAILURES = "disruptions.failures"


# --------------------------------------------------------------------------------------------
# Time windows
# --------------------------------------------------------------------------------------------


def _check_window(start_s: float, end_s: float, where: str) -> tuple[float, float]:
    """``[start_s, end_s)`` as floats; raises unless ``start_s < end_s``."""
    try:
        start, end = float(start_s), float(end_s)
    except (TypeError, ValueError):
        raise ScenarioError(
            where, f"start_s and end_s must be numbers, got {start_s!r} and {end_s!r}"
        ) from None
    if math.isnan(start) or math.isnan(end) or not start < end:
        raise ScenarioError(
            where,
            f"time window [start_s, end_s) = [{start_s!r}, {end_s!r}) is empty: give start_s < "
            "end_s in seconds from the scenario epoch, or omit them for the whole run",
        )
    return start, end


def _window_active(t_s: ArrayLike, start_s: float, end_s: float) -> BoolArray:
    t = np.asarray(t_s, dtype=np.float64)
    return np.asarray((t >= start_s) & (t < end_s), dtype=np.bool_)


# --------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Outage:
    """A set of elements (satellites, ISLs or ground sites) down during ``[start_s, end_s)``.

    Build one with :func:`outage_of`, :func:`plane_outage`, :func:`random_outage` or
    :func:`isl_outage_by_endpoints`, which check the indices against the number of elements.

    Parameters
    ----------
    idx : array_like of int, shape (K,)
        Indices of the failed elements (duplicates are dropped).
    start_s, end_s : float
        Window [s from the scenario epoch]; the whole run by default.
    label : str
        Shown in messages and summaries.
    """

    idx: NDArray[np.int64]
    start_s: float = -math.inf
    end_s: float = math.inf
    label: str = ""

    def __post_init__(self) -> None:
        where = f"{_FAILURES}[{self.label!r}]" if self.label else _FAILURES
        start, end = _check_window(self.start_s, self.end_s, where)
        idx = np.unique(np.asarray(self.idx, dtype=np.int64).reshape(-1))
        idx.setflags(write=False)
        object.__setattr__(self, "idx", idx)
        object.__setattr__(self, "start_s", start)
        object.__setattr__(self, "end_s", end)

    def active(self, t_s: ArrayLike) -> BoolArray:
        """Steps at which the outage holds.

        Parameters
        ----------
        t_s : array_like, shape (T,)
            Step times [s from the epoch].

        Returns
        -------
        ndarray of bool, shape (T,)
        """
        return _window_active(t_s, self.start_s, self.end_s)


def _check_indices(idx: ArrayLike, n: int, what: str, where: str) -> NDArray[np.int64]:
    arr = np.asarray(idx)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ScenarioError(where, f"{what} indices must be integers, got {arr.reshape(-1)[:3]!r}")
    arr = arr.astype(np.int64).reshape(-1)
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ScenarioError(
            where, f"{what} index {int(bad[0])} out of range: there are {n} {what}s (0 .. {n - 1})"
        )
    return arr


def outage_of(
    idx: ArrayLike,
    n: int,
    *,
    what: str = "satellite",
    start_s: float = -math.inf,
    end_s: float = math.inf,
    label: str = "",
    where: str = _FAILURES,
) -> Outage:
    """Named elements down during a window.

    Parameters
    ----------
    idx : array_like of int
        Element indices.
    n : int
        Number of elements (satellites ``S``, ISLs ``E`` or sites ``G``).
    what : str
        Element kind, for messages.
    start_s, end_s : float
        Window [s].
    label : str
        Outage label.
    where : str
        Scenario field named in errors.

    Raises
    ------
    ScenarioError
        If an index is out of range or the window is empty.

    Examples
    --------
    >>> outage_of([3, 1, 3], 10, start_s=60.0).idx
    array([1, 3])
    """
    return Outage(_check_indices(idx, n, what, where), start_s, end_s, label)


def shell_plane_of_sats(
    constellation: Constellation,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Shell and plane index of every satellite, for :func:`plane_outage`.

    Returns
    -------
    shell_idx, plane_idx : ndarray of int64, shape (S,)
        ``-1`` for satellites without a plane layout (TLE sets).
    """
    shell_idx = np.full(constellation.n_sats, -1, dtype=np.int64)
    plane_idx = np.full(constellation.n_sats, -1, dtype=np.int64)
    for k, lay in enumerate(constellation.shells):
        plane, _slot = lay.shell.plane_slot()
        sl = slice(lay.offset, lay.offset + lay.shell.n_sats)
        shell_idx[sl] = k
        plane_idx[sl] = plane
    return shell_idx, plane_idx


def plane_outage(
    shell_idx: ArrayLike,
    plane_idx: ArrayLike,
    *,
    shell: int,
    planes: Sequence[int] | None = None,
    start_s: float = -math.inf,
    end_s: float = math.inf,
    label: str = "",
    where: str = _FAILURES,
) -> Outage:
    """Every satellite of whole orbital planes (or of a whole shell) down.

    Parameters
    ----------
    shell_idx, plane_idx : array_like of int, shape (S,)
        Shell and plane of each satellite (:func:`shell_plane_of_sats`).
    shell : int
        Shell index.
    planes : sequence of int, optional
        Planes of that shell; all of them if omitted.

    Raises
    ------
    ScenarioError
        If no satellite is in that shell or one of the planes.

    Examples
    --------
    >>> plane_outage([0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 0, 0], shell=0, planes=[1]).idx
    array([2, 3])
    """
    sh = np.asarray(shell_idx, dtype=np.int64).reshape(-1)
    pl = np.asarray(plane_idx, dtype=np.int64).reshape(-1)
    if sh.shape != pl.shape:
        raise ScenarioError(
            where, f"conflicting sizes: {sh.size} shell indices, {pl.size} plane indices"
        )
    in_shell = sh == shell
    if not in_shell.any():
        shells = sorted(set(int(s) for s in sh[sh >= 0]))
        raise ScenarioError(where, f"no satellite in shell {shell}: shells are {shells}")
    mask = in_shell
    if planes is not None:
        wanted = np.asarray(list(planes), dtype=np.int64)
        present = np.unique(pl[in_shell])
        missing = np.setdiff1d(wanted, present)
        if missing.size:
            raise ScenarioError(
                where,
                f"shell {shell} has no plane {int(missing[0])}: its planes are "
                f"{int(present.min())} .. {int(present.max())}",
            )
        mask = in_shell & np.isin(pl, wanted)
    return Outage(np.flatnonzero(mask), start_s, end_s, label)


def random_outage(
    n: int,
    fraction: float,
    *,
    seed: int | np.random.Generator,
    what: str = "satellite",
    start_s: float = -math.inf,
    end_s: float = math.inf,
    label: str = "",
    where: str = _FAILURES,
) -> Outage:
    """A random ``fraction`` of ``n`` elements down, drawn without replacement.

    Exactly ``floor(fraction * n + 0.5)`` elements fail (the fraction rounded half up).

    Parameters
    ----------
    n : int
        Number of elements.
    fraction : float
        In ``[0, 1]``.
    seed : int or numpy.random.Generator
        The same seed always picks the same elements.

    Raises
    ------
    ScenarioError
        If the fraction is outside ``[0, 1]``.

    Examples
    --------
    >>> a = random_outage(1584, 0.1, seed=7)
    >>> a.idx.size, bool(np.array_equal(a.idx, random_outage(1584, 0.1, seed=7).idx))
    (158, True)
    """
    f = float(fraction)
    if not 0.0 <= f <= 1.0:
        raise ScenarioError(
            where, f"fraction of {what}s must be in [0, 1], got {fraction!r} (10 % is 0.1)"
        )
    rng = np.random.default_rng(seed)
    count = min(n, math.floor(f * n + 0.5))
    idx = rng.choice(n, size=count, replace=False) if count else np.zeros(0, np.int64)
    return Outage(np.asarray(idx, dtype=np.int64), start_s, end_s, label)


def isl_outage_by_endpoints(
    isl_edges: ArrayLike,
    pairs: ArrayLike,
    *,
    start_s: float = -math.inf,
    end_s: float = math.inf,
    label: str = "",
    where: str = _FAILURES,
) -> Outage:
    """ISLs named by their two satellites, in either order.

    Parameters
    ----------
    isl_edges : array_like of int, shape (E, 2)
        The run's ISLs.
    pairs : array_like of int, shape (K, 2)
        Satellite index pairs.

    Raises
    ------
    ScenarioError
        If a pair is not an ISL of the run.

    Examples
    --------
    >>> edges = np.array([[0, 1], [1, 2], [2, 3]])
    >>> isl_outage_by_endpoints(edges, [[2, 1], [3, 2]]).idx
    array([1, 2])
    """
    e = np.sort(np.asarray(isl_edges, dtype=np.int64).reshape(-1, 2), axis=1)
    p = np.sort(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), axis=1)
    lookup = {(int(a), int(b)): i for i, (a, b) in enumerate(e)}
    idx = []
    for a, b in p:
        key = (int(a), int(b))
        if key not in lookup:
            raise ScenarioError(
                where,
                f"no ISL between satellites {key[0]} and {key[1]}: list pairs from the run's "
                "isls.parquet (+Grid links join in-plane and adjacent-plane neighbours only)",
            )
        idx.append(lookup[key])
    return Outage(np.asarray(idx, dtype=np.int64), start_s, end_s, label)


def _mask(n: int, outages: Sequence[Outage], t_s: ArrayLike) -> BoolArray:
    t = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
    out = np.zeros((t.size, n), dtype=np.bool_)
    for o in outages:
        if o.idx.size:
            out[:, o.idx] |= o.active(t)[:, None]
    return out


@dataclass(frozen=True, eq=False)
class FailurePlan:
    """Every failure of a run, turned into per-step masks chunk by chunk.

    Parameters
    ----------
    n_sats : int
        ``S``.
    isl_edges : ndarray of int, shape (E, 2)
        The run's ISLs.
    n_sites : int
        ``G``.
    sats, isls, sites : sequence of Outage
        Outages of satellites, ISLs and ground sites (gateways, PoPs, terminals).

    Raises
    ------
    ScenarioError
        If an outage names an element that does not exist.

    Examples
    --------
    >>> plan = FailurePlan(4, np.array([[0, 1], [1, 2], [2, 3]]), 2,
    ...                    sats=[outage_of([2], 4, start_s=10.0, end_s=20.0)])
    >>> plan.sat_failed([0.0, 10.0, 20.0]).astype(int)
    array([[0, 0, 0, 0],
           [0, 0, 1, 0],
           [0, 0, 0, 0]])
    >>> plan.isl_failed([10.0]).astype(int)  # both ISLs of satellite 2
    array([[0, 1, 1]])
    """

    n_sats: int
    isl_edges: NDArray[np.int64]
    n_sites: int
    sats: tuple[Outage, ...] = ()
    isls: tuple[Outage, ...] = ()
    sites: tuple[Outage, ...] = ()

    def __post_init__(self) -> None:
        edges = np.asarray(self.isl_edges, dtype=np.int64).reshape(-1, 2)
        edges.setflags(write=False)
        object.__setattr__(self, "isl_edges", edges)
        for name, n, what in (
            ("sats", self.n_sats, "satellite"),
            ("isls", edges.shape[0], "ISL"),
            ("sites", self.n_sites, "site"),
        ):
            outages = tuple(getattr(self, name))
            object.__setattr__(self, name, outages)
            for o in outages:
                where = f"{_FAILURES}.{name}[{o.label!r}]" if o.label else f"{_FAILURES}.{name}"
                _check_indices(o.idx, n, what, where)

    def sat_failed(self, t_s: ArrayLike) -> BoolArray:
        """Failed satellites, ndarray of bool, shape ``(T, S)``, for step times ``t_s (T,)``."""
        return _mask(self.n_sats, self.sats, t_s)

    def isl_failed(self, t_s: ArrayLike, *, sat_failed: BoolArray | None = None) -> BoolArray:
        """Failed ISLs, ndarray of bool, shape ``(T, E)``: the ISL's own outages, or either of its
        satellites failed (``sat_failed (T, S)``, computed if not given)."""
        out = _mask(self.isl_edges.shape[0], self.isls, t_s)
        sf = self.sat_failed(t_s) if sat_failed is None else sat_failed
        if self.isl_edges.size:
            out |= sf[:, self.isl_edges[:, 0]] | sf[:, self.isl_edges[:, 1]]
        return out

    def site_failed(self, t_s: ArrayLike) -> BoolArray:
        """Failed ground sites, ndarray of bool, shape ``(T, G)``."""
        return _mask(self.n_sites, self.sites, t_s)


def gsl_failed(
    t_idx: ArrayLike,
    site_idx: ArrayLike,
    sat_idx: ArrayLike,
    *,
    sat_failed: BoolArray,
    site_failed: BoolArray,
    site_denied: BoolArray | None = None,
) -> BoolArray:
    """GSL candidates that a failure (or a geofence) takes down.

    Parameters
    ----------
    t_idx, site_idx, sat_idx : array_like of int, shape (L,)
        The chunk's GSL candidates (:class:`starmesh.topology.GslCandidates`).
    sat_failed : ndarray of bool, shape (T, S)
    site_failed : ndarray of bool, shape (T, G)
    site_denied : ndarray of bool, shape (G,), optional
        Sites in a service-denied area (:meth:`Geofence.denied_sites`).

    Returns
    -------
    ndarray of bool, shape (L,)
    """
    t = np.asarray(t_idx, dtype=np.int64)
    g = np.asarray(site_idx, dtype=np.int64)
    s = np.asarray(sat_idx, dtype=np.int64)
    out = sat_failed[t, s] | site_failed[t, g]
    if site_denied is not None:
        out = out | np.asarray(site_denied, dtype=np.bool_)[g]
    return np.asarray(out, dtype=np.bool_)


# --------------------------------------------------------------------------------------------
# Jamming
# --------------------------------------------------------------------------------------------


def _check_lat_lon(lat_deg: Any, lon_deg: Any, where: str) -> tuple[float, float]:
    try:
        lat, lon = float(lat_deg), float(lon_deg)
    except (TypeError, ValueError):
        raise ScenarioError(
            where, f"lat_deg and lon_deg must be numbers, got {lat_deg!r} and {lon_deg!r}"
        ) from None
    if not -90.0 <= lat <= 90.0:
        raise ScenarioError(
            where,
            f"lat_deg must be in [-90, 90], got {lat_deg!r}: give degrees north (south is "
            "negative); are latitude and longitude swapped?",
        )
    if not -180.0 <= lon <= 180.0:
        raise ScenarioError(
            where,
            f"lon_deg must be in [-180, 180], got {lon_deg!r}: give degrees east (west is "
            "negative), e.g. 250 -> -110",
        )
    return lat, lon


@dataclass(frozen=True)
class Jammer:
    """A transmitter that interferes with the downlink (received by ground terminals and
    gateways) or the uplink (received by satellites) of ground-satellite links.

    ``eirp_dbw`` is the EIRP radiated towards the victims: a directional jammer aimed at them, or
    the EIRP of an omnidirectional one. Its power is spread evenly over ``bandwidth_hz`` around
    ``center_freq_hz``; a victim receives the share that falls into its channel.

    Parameters
    ----------
    lat_deg, lon_deg : float
        WGS84 position [deg].
    alt_m : float
        Height above the WGS84 ellipsoid [m]; over a smooth Earth it sets the jammer's radio
        horizon (a 30 m mast reaches terminals at ground level 22.6 km away).
    eirp_dbw : float
        EIRP [dBW]; any finite value (-10 dBW is 0.1 W).
    band : {"downlink", "uplink"}
        Which receivers it targets.
    bandwidth_hz, center_freq_hz : float
        Emitted band [Hz].
    start_s, end_s : float
        Active window [s from the epoch]; the whole run by default.
    name : str
        Label in messages.

    Raises
    ------
    ScenarioError
        On out-of-range coordinates, a non-finite EIRP, a non-positive bandwidth or frequency, an
        unknown band or an empty window.

    Examples
    --------
    >>> j = Jammer(49.9, 36.3, 30.0, 40.0, "downlink", 250e6, 11.7e9, name="front")
    >>> j.overlap(11.7e9, 240e6)
    0.96
    """

    lat_deg: float
    lon_deg: float
    alt_m: float
    eirp_dbw: float
    band: Band
    bandwidth_hz: float
    center_freq_hz: float
    start_s: float = -math.inf
    end_s: float = math.inf
    name: str = "jammer"

    def __post_init__(self) -> None:
        where = f"disruptions.jammers[{self.name!r}]"
        lat, lon = _check_lat_lon(self.lat_deg, self.lon_deg, where)
        object.__setattr__(self, "lat_deg", lat)
        object.__setattr__(self, "lon_deg", lon)
        for attr in ("alt_m", "eirp_dbw", "bandwidth_hz", "center_freq_hz"):
            value = getattr(self, attr)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ScenarioError(where, f"{attr} must be a number, got {value!r}") from None
            if not math.isfinite(number):
                hint = (
                    " (a power in dBW may be negative: -10 dBW is 0.1 W)"
                    if attr == "eirp_dbw"
                    else ""
                )
                raise ScenarioError(where, f"{attr} must be finite, got {value!r}{hint}")
            object.__setattr__(self, attr, number)
        for attr in ("bandwidth_hz", "center_freq_hz"):
            if getattr(self, attr) <= 0.0:
                raise ScenarioError(where, f"{attr} must be > 0 Hz, got {getattr(self, attr)!r}")
        if self.band not in ("downlink", "uplink"):
            raise ScenarioError(
                where,
                f"band must be 'downlink' (jams terminals/gateways) or 'uplink' (jams "
                f"satellites), got {self.band!r}",
            )
        start, end = _check_window(self.start_s, self.end_s, where)
        object.__setattr__(self, "start_s", start)
        object.__setattr__(self, "end_s", end)

    @classmethod
    def from_power_w(
        cls,
        lat_deg: float,
        lon_deg: float,
        alt_m: float,
        power_w: float,
        antenna_gain_dbi: float,
        band: Band,
        bandwidth_hz: float,
        center_freq_hz: float,
        *,
        start_s: float = -math.inf,
        end_s: float = math.inf,
        name: str = "jammer",
    ) -> Jammer:
        """A jammer given by transmitter power [W] and antenna gain towards the victims [dBi].

        Raises
        ------
        ScenarioError
            If the power is not a positive, finite number of watts.
        """
        p = float(power_w)
        if not (math.isfinite(p) and p > 0.0):
            raise ScenarioError(
                f"disruptions.jammers[{name!r}]",
                f"power_w must be > 0 W, got {power_w!r}: give the transmitter power in watts "
                "(or eirp_dbw in dBW, which may be negative)",
            )
        return cls(
            lat_deg,
            lon_deg,
            alt_m,
            10.0 * math.log10(p) + float(antenna_gain_dbi),
            band,
            bandwidth_hz,
            center_freq_hz,
            start_s,
            end_s,
            name,
        )

    @property
    def r_ecef_m(self) -> FloatArray:
        """ECEF position [m], shape ``(3,)``."""
        return geodetic_to_ecef(math.radians(self.lat_deg), math.radians(self.lon_deg), self.alt_m)

    def active(self, t_s: ArrayLike) -> BoolArray:
        """Steps at which it transmits, shape ``(T,)``."""
        return _window_active(t_s, self.start_s, self.end_s)

    def overlap(self, center_freq_hz: float, bandwidth_hz: float) -> float:
        """Share of the jammer's power inside a victim channel, in ``[0, 1]``."""
        lo = max(self.center_freq_hz - self.bandwidth_hz / 2, center_freq_hz - bandwidth_hz / 2)
        hi = min(self.center_freq_hz + self.bandwidth_hz / 2, center_freq_hz + bandwidth_hz / 2)
        return max(0.0, hi - lo) / self.bandwidth_hz


#: Effective Earth radius factor for radio paths near the ground (standard atmosphere,
#: ITU-R P.452 / P.834: k = 4/3).
K_FACTOR = 4.0 / 3.0
#: Paths with both ends below this height [m] are terrestrial and bend with the atmosphere
#: (``k``); paths to higher points are Earth-space paths over the geometric Earth (refraction
#: lowers their horizon by about half a degree of elevation, which is ignored).
TERRESTRIAL_MAX_HEIGHT_M = 20e3
#: A path may dip below the Earth by this much [m]: the rounding of endpoints at h = 0 (about
#: 1e-8 m). Two stations at h = 0 closer than sqrt(8 k R x 1 mm) = 260 m see each other.
_LOS_TOLERANCE_M = 1e-3


def _vertical_and_height(r_ecef_m: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Unit geodetic vertical ``(..., 3)`` and height above the ellipsoid ``(...)``, negative
    heights counted as 0."""
    lat, lon, h = ecef_to_geodetic(r_ecef_m)
    return up_vectors(lat, lon), np.maximum(h, 0.0)


def _clear(
    n1: FloatArray, h1: FloatArray, n2: FloatArray, h2: FloatArray, k_factor: float
) -> BoolArray:
    """Line of sight between points given by verticals ``n`` and heights ``h`` (broadcast).

    In the plane of the two verticals the points sit at heights ``h1``, ``h2`` over a circle of
    radius ``k R`` and ``psi / k`` apart (``psi`` the angle between the verticals), so that
    distances along the ground are kept; the chord between them must stay outside the circle.
    """
    psi = angle_between_rad(n1, n2)
    k = np.where(np.maximum(h1, h2) < TERRESTRIAL_MAX_HEIGHT_M, k_factor, 1.0)
    re = k * EARTH_MEAN_RADIUS_M
    phi = psi / k
    a = re + h1
    b = re + h2
    dx = b * np.cos(phi) - a
    dy = b * np.sin(phi)
    dd = dx * dx + dy * dy
    t = np.clip(-(a * dx) / np.where(dd > 0.0, dd, 1.0), 0.0, 1.0)
    return np.asarray(np.hypot(a + t * dx, t * dy) >= re - _LOS_TOLERANCE_M, dtype=np.bool_)


def line_of_sight(
    r1_ecef_m: ArrayLike, r2_ecef_m: ArrayLike, *, k_factor: float = K_FACTOR
) -> BoolArray:
    """Whether the Earth leaves a clear path between two points.

    Each point stands at its geodetic height over a smooth sphere, and the straight path between
    them must not dip into it. Between points below :data:`TERRESTRIAL_MAX_HEIGHT_M` the sphere
    has the effective radius ``k R`` of a standard atmosphere (``R`` the mean Earth radius,
    ``k = 4/3``), which gives the radio-horizon rule ``d <= sqrt(2 k R h1) + sqrt(2 k R h2)`` for
    ground distance ``d``; two stations at height 0 do not see each other (beyond a few hundred
    metres). Paths to satellites use the geometric sphere. Terrain and clutter are ignored.

    Parameters
    ----------
    r1_ecef_m, r2_ecef_m : array_like, shape (..., 3)
        ECEF positions [m], broadcast against each other.
    k_factor : float
        Effective Earth radius factor of terrestrial paths.

    Returns
    -------
    ndarray of bool, shape (...)
        False where a position is NaN.

    Examples
    --------
    >>> from starmesh.frames import geodetic_to_ecef
    >>> mast = geodetic_to_ecef(np.radians(50.0), 0.0, 30.0)  # horizon 22.6 km away
    >>> near, far = (geodetic_to_ecef(np.radians(50.0 + d / 111.2), 0.0, 0.0) for d in (21, 24))
    >>> bool(line_of_sight(mast, near)), bool(line_of_sight(mast, far))
    (True, False)
    """
    n1, h1 = _vertical_and_height(np.asarray(r1_ecef_m, dtype=np.float64))
    n2, h2 = _vertical_and_height(np.asarray(r2_ecef_m, dtype=np.float64))
    return _clear(n1, h1, n2, h2, k_factor)


@dataclass(frozen=True)
class GslQuality:
    """Per-link results of :func:`gsl_quality`, each of shape ``(L,)``.

    Attributes
    ----------
    downlink, uplink : LinkQuality
        C/N, C/(N+I) [dB], MODCOD and capacity [bit/s] of each direction.
    interference_down_w, interference_up_w : ndarray
        Jamming power at the receivers in their channels [W].
    """

    downlink: LinkQuality
    uplink: LinkQuality
    interference_down_w: FloatArray
    interference_up_w: FloatArray

    @property
    def up(self) -> BoolArray:
        """Links with capacity in both directions."""
        return np.asarray(
            (self.downlink.capacity_bps > 0.0) & (self.uplink.capacity_bps > 0.0), dtype=np.bool_
        )


def _empty_quality(n: int) -> LinkQuality:
    return LinkQuality(
        cnr_db=np.full(n, np.nan),
        sinr_db=np.full(n, np.nan),
        modcod_idx=np.full(n, -1, dtype=np.int64),
        capacity_bps=np.zeros(n),
    )


def _fill(dst: LinkQuality, rows: NDArray[np.int64], src: LinkQuality) -> None:
    dst.cnr_db[rows] = src.cnr_db
    dst.sinr_db[rows] = src.sinr_db
    dst.modcod_idx[rows] = src.modcod_idx
    dst.capacity_bps[rows] = src.capacity_bps


def _jammer_power_w(
    eirp_dbw: FloatArray, rx_gain_dbi: FloatArray, distance_m: FloatArray, budget: LinkBudget
) -> FloatArray:
    """Received jamming power [W] (before the band overlap); distances below 1 m count as 1 m."""
    level = eirp_dbw + rx_gain_dbi - fspl_db(np.maximum(distance_m, 1.0), budget.frequency_hz)
    return np.asarray(np.power(10.0, level / 10.0), dtype=np.float64)


def gsl_quality(
    t_idx: ArrayLike,
    site_idx: ArrayLike,
    sat_idx: ArrayLike,
    r_sat_ecef_m: FloatArray,
    site_r_ecef_m: FloatArray,
    site_up: FloatArray,
    profiles: LinkProfile | Sequence[LinkProfile],
    *,
    jammers: Sequence[Jammer] = (),
    t_s: ArrayLike | None = None,
    k_factor: float = K_FACTOR,
) -> GslQuality:
    """Downlink and uplink quality of a chunk's GSL candidates, with jamming.

    Ground antennas face their local vertical, satellite antennas face nadir, and every beam
    points at its peer; the scan angles enter through the antenna patterns of the profile.

    - Downlink: a ``"downlink"`` jammer reaches a ground receiver through the receiver's pattern
      at the off-axis angle between ground -> satellite and ground -> jammer (and the angle of the
      jammer from the panel normal: a jammer near the horizon of an up-facing terminal falls into
      its far side lobes).
    - Uplink: an ``"uplink"`` jammer reaches the satellite through the satellite's pattern at the
      off-axis angle between satellite -> ground station (its beam is taken to point at the
      station) and satellite -> jammer.
    - A jammer contributes nothing outside its window, outside the victim's channel, or when the
      Earth blocks the path (:func:`line_of_sight`). With no contributing jammer the results are
      bit for bit those without jammers.

    Parameters
    ----------
    t_idx, site_idx, sat_idx : array_like of int, shape (L,)
        The candidates (:class:`starmesh.topology.GslCandidates`).
    r_sat_ecef_m : ndarray, shape (T, S, 3)
        Satellite positions of the chunk [m].
    site_r_ecef_m, site_up : ndarray, shape (G, 3)
        Site positions [m] and unit verticals (:class:`starmesh.ground.Sites`).
    profiles : LinkProfile or sequence of LinkProfile (length G)
        Link parameters, one for all sites or one per site (e.g. a Ku user profile for
        terminals and a Ka feeder profile for gateways).
    jammers : sequence of Jammer
        Jammers, any band.
    t_s : array_like, shape (T,), optional
        Step times [s from the epoch]; needed when there are jammers.
    k_factor : float
        Effective Earth radius factor of the line-of-sight test.

    Returns
    -------
    GslQuality
        Arrays of shape ``(L,)``; capacity 0 marks a link that is down (also where a position
        is NaN).

    Raises
    ------
    ValueError
        If ``profiles`` has the wrong length or jammers come without ``t_s``.
    """
    t = np.asarray(t_idx, dtype=np.int64).reshape(-1)
    g = np.asarray(site_idx, dtype=np.int64).reshape(-1)
    s = np.asarray(sat_idx, dtype=np.int64).reshape(-1)
    n_links = t.size
    n_sites = site_r_ecef_m.shape[0]
    if isinstance(profiles, LinkProfile):
        unique: list[LinkProfile] = [profiles]
        prof_of_site = np.zeros(n_sites, dtype=np.int64)
    else:
        if len(profiles) != n_sites:
            raise ValueError(
                f"conflicting sizes: {len(profiles)} link profiles, {n_sites} sites "
                "(give one profile, or one per site)"
            )
        keys: dict[int, int] = {}
        unique = []
        prof_of_site = np.empty(n_sites, dtype=np.int64)
        for i, prof_i in enumerate(profiles):
            if id(prof_i) not in keys:
                keys[id(prof_i)] = len(unique)
                unique.append(prof_i)
            prof_of_site[i] = keys[id(prof_i)]
    jammers = tuple(jammers)
    if jammers and t_s is None:
        raise ValueError("gsl_quality needs t_s, the chunk's step times, when jammers are given")

    down = _empty_quality(n_links)
    upq = _empty_quality(n_links)
    i_down = np.zeros(n_links)
    i_up = np.zeros(n_links)
    if n_links == 0:
        return GslQuality(down, upq, i_down, i_up)

    r_sat = r_sat_ecef_m[t, s]
    r_site = site_r_ecef_m[g]
    up = site_up[g]
    v = r_sat - r_site  # ground -> satellite
    dist = np.linalg.norm(v, axis=-1)
    site_scan = angle_between_rad(up, v)
    elevation = np.pi / 2.0 - site_scan
    nadir = -r_sat
    sat_scan = angle_between_rad(nadir, -v)

    # Jammer geometry shared by all profiles.
    if jammers:
        r_jam = np.stack([j.r_ecef_m for j in jammers])  # (J, 3)
        eirp = np.array([j.eirp_dbw for j in jammers])
        act = np.stack([j.active(np.asarray(t_s)) for j in jammers], axis=1)[t]  # (L, J)
        is_down = np.array([j.band == "downlink" for j in jammers])
        n_jam, h_jam = _vertical_and_height(r_jam)
        n_site, h_site = _vertical_and_height(site_r_ecef_m)
        los_site = _clear(  # (G, J)
            n_site[:, None, :], h_site[:, None], n_jam[None, :, :], h_jam[None, :], k_factor
        )
        w_site = r_jam[None, :, :] - site_r_ecef_m[:, None, :]  # site -> jammer, (G, J, 3)
        d_site = np.linalg.norm(w_site, axis=-1)
        normal_site = angle_between_rad(site_up[:, None, :], w_site)  # (G, J)

    prof_of_link = prof_of_site[g]
    for k, prof in enumerate(unique):
        rows = np.flatnonzero(prof_of_link == k)
        if rows.size == 0:
            continue
        interf_down: FloatArray | float = 0.0
        interf_up: FloatArray | float = 0.0
        if jammers:
            ov_down = np.array(
                [
                    j.overlap(prof.downlink.frequency_hz, prof.downlink.bandwidth_hz) if d else 0.0
                    for j, d in zip(jammers, is_down, strict=True)
                ]
            )
            ov_up = np.array(
                [
                    j.overlap(prof.uplink.frequency_hz, prof.uplink.bandwidth_hz) if not d else 0.0
                    for j, d in zip(jammers, is_down, strict=True)
                ]
            )
            act_rows = act[rows]
            jd = np.flatnonzero((ov_down > 0.0) & act_rows.any(axis=0))
            if jd.size:
                gr = g[rows]
                w = w_site[gr][:, jd]  # (R, J', 3)
                off = angle_between_rad(v[rows][:, None, :], w)
                gain = prof.downlink.rx_antenna.gain_dbi(off, normal_site[gr][:, jd])
                p = _jammer_power_w(eirp[jd], gain, d_site[gr][:, jd], prof.downlink)
                on = act_rows[:, jd] & los_site[gr][:, jd]
                interf_down = np.sum(np.where(on, p * ov_down[jd], 0.0), axis=1)
                i_down[rows] = interf_down
            ju = np.flatnonzero((ov_up > 0.0) & act_rows.any(axis=0))
            if ju.size:
                rs = r_sat[rows]
                w = r_jam[None, ju, :] - rs[:, None, :]  # satellite -> jammer, (R, J', 3)
                off = angle_between_rad(-v[rows][:, None, :], w)
                normal = angle_between_rad(nadir[rows][:, None, :], w)
                gain = prof.uplink.rx_antenna.gain_dbi(off, normal)
                p = _jammer_power_w(eirp[ju], gain, np.linalg.norm(w, axis=-1), prof.uplink)
                n_sat, h_sat = _vertical_and_height(rs)
                los = _clear(
                    n_sat[:, None, :], h_sat[:, None], n_jam[None, ju, :], h_jam[None, ju], k_factor
                )
                on = act_rows[:, ju] & los
                interf_up = np.sum(np.where(on, p * ov_up[ju], 0.0), axis=1)
                i_up[rows] = interf_up
        _fill(
            down,
            rows,
            prof.downlink.evaluate(
                dist[rows],
                elevation[rows],
                tx_normal_rad=sat_scan[rows],
                rx_normal_rad=site_scan[rows],
                interference_w=interf_down,
            ),
        )
        _fill(
            upq,
            rows,
            prof.uplink.evaluate(
                dist[rows],
                elevation[rows],
                tx_normal_rad=site_scan[rows],
                rx_normal_rad=sat_scan[rows],
                interference_w=interf_up,
            ),
        )
    return GslQuality(down, upq, i_down, i_up)


# --------------------------------------------------------------------------------------------
# Geofencing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Circle:
    """A service-denied disc: every point within ``radius_km`` (geodesic distance on the WGS84
    ellipsoid) of a centre.

    Raises
    ------
    ScenarioError
        On out-of-range coordinates or a radius that is not positive.
    """

    lat_deg: float
    lon_deg: float
    radius_km: float
    name: str = "circle"

    def __post_init__(self) -> None:
        where = f"disruptions.geofence[{self.name!r}]"
        lat, lon = _check_lat_lon(self.lat_deg, self.lon_deg, where)
        object.__setattr__(self, "lat_deg", lat)
        object.__setattr__(self, "lon_deg", lon)
        try:
            r = float(self.radius_km)
        except (TypeError, ValueError):
            r = math.nan
        if not (math.isfinite(r) and 0.0 < r <= 20_000.0):
            raise ScenarioError(
                where, f"radius_km must be in (0, 20000] km, got {self.radius_km!r}"
            )
        object.__setattr__(self, "radius_km", r)


def _position(pos: Any, where: str) -> tuple[float, float]:
    if not isinstance(pos, list | tuple) or len(pos) not in (2, 3):
        raise ScenarioError(where, f"a position must be [longitude, latitude], got {pos!r}")
    try:
        lon, lat = float(pos[0]), float(pos[1])
    except (TypeError, ValueError):
        raise ScenarioError(
            where, f"a position must be two numbers [longitude, latitude], got {pos!r}"
        ) from None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ScenarioError(where, f"position {pos!r} is not finite")
    if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
        raise ScenarioError(
            where,
            f"position {pos!r} is out of range: GeoJSON positions are [longitude, latitude] in "
            "degrees, longitude in [-180, 180], latitude in [-90, 90]; are they swapped?",
        )
    return lon, lat


def _ring(coords: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(coords, list | tuple) or len(coords) < 4:
        n = len(coords) if isinstance(coords, list | tuple) else coords
        raise ScenarioError(
            where,
            f"a polygon ring needs at least 4 positions (a triangle plus the closing repeat of "
            f"the first), got {n!r}",
        )
    pts = [_position(p, f"{where}[{i}]") for i, p in enumerate(coords)]
    if pts[0] != pts[-1]:
        raise ScenarioError(
            where,
            f"polygon ring is not closed: first position {list(pts[0])} != last "
            f"{list(pts[-1])}; repeat the first position at the end (GeoJSON, RFC 7946 3.1.6)",
        )
    return pts


def _polygon(coords: Any, where: str) -> Polygon:
    if not isinstance(coords, list | tuple) or not coords:
        raise ScenarioError(where, f"Polygon coordinates must be a list of rings, got {coords!r}")
    rings = [_ring(r, f"{where}.coordinates[{i}]") for i, r in enumerate(coords)]
    poly = Polygon(rings[0], rings[1:])
    if not poly.is_valid:
        raise ScenarioError(
            where,
            f"polygon is not valid ({shapely.is_valid_reason(poly)}): its edges must not cross "
            "and holes must lie inside the outer ring; reorder the vertices (or repair it with "
            "shapely.make_valid)",
        )
    return poly


def _areas(obj: Any, where: str) -> tuple[list[Polygon], list[Circle]]:
    """Polygons and circles of a GeoJSON object."""
    if not isinstance(obj, Mapping) or "type" not in obj:
        raise ScenarioError(where, f"expected a GeoJSON object with a 'type', got {obj!r:.80}")
    kind = obj["type"]
    polys: list[Polygon] = []
    circles: list[Circle] = []
    if kind == "FeatureCollection":
        for i, feat in enumerate(obj.get("features", [])):
            p, c = _areas(feat, f"{where}.features[{i}]")
            polys += p
            circles += c
    elif kind == "GeometryCollection":
        for i, geom in enumerate(obj.get("geometries", [])):
            p, c = _areas(geom, f"{where}.geometries[{i}]")
            polys += p
            circles += c
    elif kind == "Feature":
        geom = obj.get("geometry")
        props = obj.get("properties") or {}
        if isinstance(geom, Mapping) and geom.get("type") == "Point":
            if "radius_km" not in props:
                raise ScenarioError(
                    where,
                    "a Point feature denotes a circle and needs properties.radius_km, e.g. "
                    '{"radius_km": 50}',
                )
            lon, lat = _position(geom.get("coordinates"), f"{where}.geometry.coordinates")
            name = str(props.get("name", f"{where}"))
            circles.append(Circle(lat, lon, props["radius_km"], name=name))
        else:
            p, c = _areas(geom, f"{where}.geometry")
            polys += p
            circles += c
    elif kind == "Polygon":
        polys.append(_polygon(obj.get("coordinates"), where))
    elif kind == "MultiPolygon":
        coords = obj.get("coordinates")
        if not isinstance(coords, list | tuple):
            raise ScenarioError(
                where, f"MultiPolygon coordinates must be a list of polygons, got {coords!r}"
            )
        for i, c in enumerate(coords):
            polys.append(_polygon(c, f"{where}.coordinates[{i}]"))
    elif kind == "Point":
        raise ScenarioError(
            where,
            "a bare Point has no area: wrap it in a Feature with properties.radius_km, or use a "
            "circle with lat_deg, lon_deg and radius_km",
        )
    else:
        raise ScenarioError(
            where,
            f"unsupported GeoJSON type {kind!r}: service-denied areas are Polygon, MultiPolygon "
            "or Point features with properties.radius_km",
        )
    return polys, circles


@dataclass(frozen=True, eq=False)
class Geofence:
    """Service-denied areas: polygons (longitude/latitude, WGS84 degrees) and circles.

    Polygon edges are straight lines in longitude and latitude, as GeoJSON (RFC 7946 3.1.1)
    defines them, not great circles; areas across the antimeridian must be split into two
    polygons there (RFC 7946 3.1.9). A point on an edge counts as inside.

    Parameters
    ----------
    polygons : sequence of shapely.geometry.Polygon
        Valid polygons in ``(lon_deg, lat_deg)`` coordinates.
    circles : sequence of Circle
    name : str
        Label in messages.

    Examples
    --------
    >>> fence = Geofence.from_geojson({"type": "Polygon", "coordinates": [
    ...     [[30.0, 50.0], [31.0, 50.0], [31.0, 51.0], [30.0, 51.0], [30.0, 50.0]]]})
    >>> fence.denied_sites([50.5, 52.0], [30.5, 30.5])
    array([ True, False])
    """

    polygons: tuple[Polygon, ...] = ()
    circles: tuple[Circle, ...] = ()
    name: str = "geofence"
    _union: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        polys = tuple(self.polygons)
        object.__setattr__(self, "polygons", polys)
        object.__setattr__(self, "circles", tuple(self.circles))
        union = shapely.union_all(polys) if polys else None
        if union is not None:
            shapely.prepare(union)
        object.__setattr__(self, "_union", union)

    @classmethod
    def from_geojson(cls, data: str | Mapping[str, Any], *, name: str = "geofence") -> Geofence:
        """Areas from GeoJSON: a Polygon, MultiPolygon, Feature, FeatureCollection or
        GeometryCollection; a Point feature with ``properties.radius_km`` is a circle.

        Parameters
        ----------
        data : str or mapping
            GeoJSON text or the parsed object.
        name : str
            Label in messages.

        Raises
        ------
        ScenarioError
            If the text is not JSON, a ring is not closed or has fewer than 4 positions, a
            position is out of range, or a polygon is self-intersecting.
        """
        where = f"disruptions.geofence[{name!r}]"
        obj: Any = data
        if isinstance(data, str):
            try:
                obj = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ScenarioError(where, f"not valid GeoJSON text: {exc}") from None
        polys, circles = _areas(obj, where)
        return cls(tuple(polys), tuple(circles), name)

    def __or__(self, other: Geofence) -> Geofence:
        return Geofence(
            self.polygons + other.polygons,
            self.circles + other.circles,
            f"{self.name}|{other.name}",
        )

    def denied_sites(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> BoolArray:
        """Which points lie in a denied area.

        Parameters
        ----------
        lat_deg, lon_deg : array_like, shape (G,)
            WGS84 coordinates of the sites [deg].

        Returns
        -------
        ndarray of bool, shape (G,)
            False where a coordinate is NaN.
        """
        lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon_deg, dtype=np.float64))
        out = np.zeros(np.broadcast(lat, lon).shape, dtype=np.bool_)
        if self._union is not None:
            out |= shapely.intersects_xy(self._union, lon, lat)
        if self.circles:
            from pyproj import Geod

            geod = Geod(ellps="WGS84")
            la, lo = np.broadcast_arrays(lat, lon)
            for c in self.circles:
                _az1, _az2, dist = geod.inv(
                    np.full(la.shape, c.lon_deg), np.full(la.shape, c.lat_deg), lo, la
                )
                with np.errstate(invalid="ignore"):
                    out |= np.asarray(dist) <= c.radius_km * 1e3
        return out
