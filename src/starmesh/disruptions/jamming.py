"""Jamming: jammers seen through the victim's antenna pattern, Earth blockage, SINR and
DVB-S2X capacity of every ground-satellite link."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..constants import EARTH_MEAN_RADIUS_M
from ..errors import ScenarioError
from ..frames import ecef_to_geodetic, geodetic_to_ecef, up_vectors
from ..linkbudget import LinkBudget, LinkProfile, LinkQuality, angle_between_rad, fspl_db
from ._common import BoolArray, FloatArray, _check_lat_lon, _check_window, _window_active

Band = Literal["downlink", "uplink"]


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
