"""Latency components a Starlink user measures on top of propagation, as functions of arrays.

All delays are one-way, in seconds, and broadcast over any array shape (``(T, P)`` in a run:
time first, pairs second). Random components take uniform variates ``u`` in ``[0, 1)`` drawn by
the caller from a seeded :class:`numpy.random.Generator`, so the same seed gives the same bytes.

The model of one round trip terminal -> PoP -> terminal (``P`` pairs, ``N`` samples):

* user uplink access: wait for the next frame, request -> grant (two user-link propagation legs
  plus the scheduler's latency in frames), one frame of transmission;
* user downlink access: wait for the next frame, one frame of transmission;
* feeder access, each direction: wait for the next feeder frame, one frame of transmission (the
  gateway holds a standing grant, so no request/grant);
* processing: once per direction on the access satellite and at the ground (gateway + PoP), and
  once per direction per ISL hop;
* queueing at each of the four access queues (user up/down, feeder up/down), M/D/1 in frames;
* optionally the PoP -> server Internet leg, fibre at c / 1.467 along great circle x route factor;
* for runs before 2024, the pre-2024 network's excess: one exponential delay per round trip
  whose median is what SpaceX's 2024 software work removed (:data:`starmesh.service.params.
  PRE2024_EXCESS_MEDIAN_S`; 0 otherwise).

Queueing model: **M/D/1**. The on-satellite scheduler serves each queue in whole frames of fixed
length (deterministic service); the arrivals are the superposition of many independent users'
packets, which tends to Poisson (Palm-Khintchine theorem). The Pollaczek-Khinchine mean wait of
M/D/1 is ``rho * D / (2 (1 - rho))``; the full waiting-time distribution is Erlang's exact
formula (:func:`md1_wait_cdf`), with its exact exponential asymptote far in the tail, so medians
*and* tails (p99, fraction above a threshold) come from the same model. Closed forms:
:func:`md1_mean_wait_s`, :func:`md1_wait_cdf`, :func:`md1_decay_rate`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from starmesh.constants import C_M_S, EARTH_MEAN_RADIUS_M, FIBRE_GROUP_INDEX
from starmesh.service.params import ServiceParams, exponential_mean_from_median

FloatArray = NDArray[np.float64]

#: Names of the RTT components, in the order of :attr:`RttBreakdown.mean_s`.
COMPONENTS = (
    "propagation",
    "user_access",
    "feeder_access",
    "processing",
    "queueing",
    "internet",
    "pre2024_excess",
)


def _f(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def uplink_access_s(
    user_prop_s: ArrayLike, u: ArrayLike, *, frame_s: float, grant_frames: float
) -> FloatArray:
    """One-way user-uplink access delay [s] (frame wait + request/grant + one frame).

    ``u * frame_s + 2 * user_prop_s + grant_frames * frame_s + frame_s``; the request goes up
    and the grant comes down over the user link (the scheduler is on the satellite: Tanveer et
    al. 2023). Mean ``1.5 frame_s + 2 user_prop_s + grant_frames frame_s``.

    Parameters
    ----------
    user_prop_s : array_like
        One-way terminal-satellite propagation delay [s].
    u : array_like
        Uniform variates in [0, 1), broadcastable with ``user_prop_s``.
    """
    return _f(u) * frame_s + 2.0 * _f(user_prop_s) + (grant_frames + 1.0) * frame_s


def downlink_access_s(u: ArrayLike, *, frame_s: float) -> FloatArray:
    """One-way user-downlink access delay [s]: ``u * frame_s + frame_s`` (mean 1.5 frames)."""
    return _f(u) * frame_s + frame_s


def feeder_access_s(u: ArrayLike, *, frame_s: float) -> FloatArray:
    """One-way feeder-link access delay [s]: ``u * frame_s + frame_s`` (standing grant)."""
    return _f(u) * frame_s + frame_s


def processing_s(n_isl_hops: ArrayLike, params: ServiceParams) -> FloatArray:
    """Round-trip processing delay [s]: satellite, ground and ISL hops, both directions.

    ``2 * (sat_processing_s + ground_processing_s + n_isl_hops * isl_hop_processing_s)``.
    """
    return 2.0 * (
        params.sat_processing_s
        + params.ground_processing_s
        + _f(n_isl_hops) * params.isl_hop_processing_s
    )


def pre2024_excess_s(u: ArrayLike, *, median_s: float) -> FloatArray:
    """The pre-2024 network's extra RTT [s]: exponential with median ``median_s``.

    ``-median_s * log2(1 - u)`` (inverse CDF); mean ``median_s / ln 2``, p99 ``6.64 median_s``.
    """
    return -median_s * np.log2(1.0 - _f(u))


def md1_mean_wait_s(rho: ArrayLike, service_s: ArrayLike) -> FloatArray:
    """Mean M/D/1 waiting time [s] (Pollaczek-Khinchine): ``rho D / (2 (1 - rho))``.

    ``inf`` where ``rho >= 1`` (an overloaded queue has no steady state).
    """
    rho = _f(rho)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = rho * _f(service_s) / (2.0 * (1.0 - rho))
    return np.where(rho >= 1.0, np.inf, np.where(rho <= 0.0, 0.0, w))


def md1_decay_rate(rho: float, service_s: float) -> float:
    """Exact exponential decay rate ``theta`` [1/s] of the M/D/1 waiting-time tail.

    The positive root of ``lambda (exp(theta D) - 1) = theta`` (Cramer-Lundberg), ``lambda = rho
    / D``: ``P(W > x) ~ C exp(-theta x)`` for large ``x``.
    """
    from scipy.optimize import brentq

    lam = rho / service_s
    return float(
        brentq(lambda th: lam * np.expm1(th * service_s) - th, 1e-12 / service_s, 60.0 / service_s)
    )


def md1_wait_cdf(x_s: ArrayLike, rho: float, service_s: float) -> FloatArray:
    """Exact M/D/1 waiting-time distribution ``P(W <= x)`` (Erlang 1909; Crommelin 1932).

    ``(1 - rho) sum_{k=0}^{floor(x/D)} [lambda (k D - x)]^k / k! exp(-lambda (k D - x))``.
    The alternating sum loses precision in float64 as ``lambda x`` grows (checked against 60-digit
    decimal arithmetic: ~2e-8 at ``lambda x = 14``, 1e-3 at 21); beyond ``lambda x = 14`` the
    exact asymptotic tail ``C exp(-theta x)`` of :func:`md1_decay_rate`, matched there, is used.
    """
    x = np.atleast_1d(np.asarray(x_s, dtype=np.float64))
    if rho <= 0.0:
        return np.where(x >= 0.0, 1.0, 0.0)
    lam = rho / service_s
    x_cut = 14.0 / lam

    def erlang(xx: FloatArray) -> FloatArray:
        out = np.zeros_like(xx)
        n = np.floor(xx / service_s + 1e-12).astype(int)
        for k in range(int(n.max(initial=0)) + 1):
            m = n >= k
            y = lam * (k * service_s - xx[m])  # <= 0 for every included k
            sign = -1.0 if k % 2 else 1.0
            # y^k / k! e^-y, evaluated in logs: (-1)^k |y|^k / k! e^{|y|}.
            with np.errstate(divide="ignore"):
                log_t = k * np.log(np.abs(y)) - math.lgamma(k + 1) - y if k else -y
            out[m] += sign * np.exp(log_t)
        return (1.0 - rho) * out

    inner = np.minimum(np.maximum(x, 0.0), x_cut)
    cdf = erlang(inner)
    far = x > x_cut
    if far.any():
        c_cut = float(erlang(np.array([x_cut]))[0])
        th = md1_decay_rate(rho, service_s)
        cdf[far] = 1.0 - (1.0 - c_cut) * np.exp(-th * (x[far] - x_cut))
    return np.where(x < 0.0, 0.0, np.clip(cdf, 0.0, 1.0))


def md1_wait_tail(x_s: ArrayLike, rho: ArrayLike, service_s: float) -> FloatArray:
    """``P(W > x)`` of M/D/1, exact (:func:`md1_wait_cdf`); ``rho`` broadcasts with ``x_s``."""
    x, r = np.broadcast_arrays(np.asarray(x_s, dtype=np.float64), np.asarray(rho, dtype=np.float64))
    out = np.empty(x.shape)
    for rv in np.unique(r):
        m = r == rv
        out[m] = 1.0 if rv >= 1.0 else 1.0 - md1_wait_cdf(x[m], float(rv), service_s)
    return out


#: Resolution of the tabulated M/D/1 quantile functions: utilisation step and u-grid size.
_RHO_STEP = 1e-3
_U_GRID = 4096


@functools.lru_cache(maxsize=1024)
def _md1_quantile_row(rho_milli: int, service_s: float) -> tuple[NDArray[np.float64], float]:
    """Quantile function of the M/D/1 wait on ``u_j = j / _U_GRID`` and the tail rate ``theta``."""
    rho = rho_milli * _RHO_STEP
    lam = rho / service_s
    x_max = 14.0 / lam
    grid = np.linspace(0.0, x_max, 1200)
    cdf = np.maximum.accumulate(md1_wait_cdf(grid, rho, service_s))
    th = md1_decay_rate(rho, service_s)
    u = np.arange(_U_GRID + 1) / _U_GRID
    q = np.interp(u, cdf, grid)
    beyond = u > cdf[-1]
    with np.errstate(divide="ignore"):
        q[beyond] = x_max + np.log((1.0 - cdf[-1]) / (1.0 - u[beyond])) / th
    q[u <= 1.0 - rho] = 0.0
    return q, th


def md1_wait_s(u: ArrayLike, rho: ArrayLike, service_s: float) -> FloatArray:
    """Exact M/D/1 waiting-time samples [s] by inverting :func:`md1_wait_cdf`.

    ``u`` are uniform variates in [0, 1); ``rho`` broadcasts with them and is rounded to 1e-3.
    The quantile function of each utilisation is tabulated once (cached) on 4,096 equal steps
    of ``u`` and interpolated; above the last step the exact exponential tail is inverted
    analytically. 0 with probability ``1 - rho``; ``inf`` for ``rho >= 1``.
    """
    u, r = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(rho, dtype=np.float64))
    ri = np.clip(np.rint(r / _RHO_STEP), 0, 1.0 / _RHO_STEP).astype(np.int64)
    levels = np.unique(ri)
    rows = np.zeros((levels.size, _U_GRID + 1))
    theta = np.ones(levels.size)
    for i, lv in enumerate(levels):
        if 0 < lv < round(1.0 / _RHO_STEP):
            rows[i], theta[i] = _md1_quantile_row(int(lv), float(service_s))
    row = np.searchsorted(levels, ri)
    pos = u * _U_GRID
    j = np.minimum(pos.astype(np.int64), _U_GRID - 1)
    f = pos - j
    out = rows[row, j] * (1.0 - f) + rows[row, j + 1] * f
    top = j == _U_GRID - 1  # the last interval ends at u = 1 (inf): use the analytic tail
    if top.any():
        u0 = (_U_GRID - 1) / _U_GRID
        out[top] = rows[row[top], j[top]] + np.log((1.0 - u0) / (1.0 - u[top])) / theta[row[top]]
    out = np.where(ri <= 0, 0.0, out)
    return np.where(ri >= round(1.0 / _RHO_STEP), np.inf, out)


#: Utilisation at which a queue is saturated: offered load at or above capacity keeps the queue
#: at its AQM bound (elastic senders back off), modelled as this utilisation truncated there.
RHO_SATURATED = 0.999


@functools.lru_cache(maxsize=4096)
def _bounded_mass(rho_milli: int, service_s: float, bound_s: float) -> float:
    """``P(W <= bound)`` of M/D/1 at utilisation ``rho_milli / 1000`` (cached)."""
    return float(md1_wait_cdf(np.array([bound_s]), rho_milli * _RHO_STEP, service_s)[0])


def _rho_milli(rho: ArrayLike) -> NDArray[np.int64]:
    top = round(RHO_SATURATED / _RHO_STEP)
    return np.clip(np.rint(_f(rho) / _RHO_STEP), 0, top).astype(np.int64)


def md1_wait_bounded_s(
    u: ArrayLike, rho: ArrayLike, service_s: float, bound_s: float
) -> FloatArray:
    """M/D/1 waiting-time samples [s] of a queue held below ``bound_s`` (finite buffer / AQM).

    The wait is M/D/1's conditioned on ``W <= bound_s``: ``F^-1(u F(bound))``. For the M/G/1/K
    queue the stationary distribution is the infinite-buffer one truncated and renormalised
    (Keilson 1966; Gross and Harris, *Fundamentals of Queueing Theory*, M/G/1/K), which this
    follows at the level of the wait. ``rho`` is clipped at :data:`RHO_SATURATED`: an
    oversubscribed queue sits near its bound instead of growing without limit (its senders
    share the capacity and slow down: :mod:`starmesh.service.throughput`).
    """
    u, r = np.broadcast_arrays(_f(u), _f(rho))
    ri = _rho_milli(r)
    mass = np.ones(ri.shape)
    for lv in np.unique(ri):
        if lv > 0:
            mass[ri == lv] = _bounded_mass(int(lv), float(service_s), float(bound_s))
    w = md1_wait_s(u * mass, ri * _RHO_STEP, service_s)
    return np.minimum(w, bound_s)


@functools.lru_cache(maxsize=4096)
def _bounded_mean(rho_milli: int, service_s: float, bound_s: float) -> float:
    if rho_milli <= 0:
        return 0.0
    x = np.linspace(0.0, bound_s, 2001)
    cdf = md1_wait_cdf(x, rho_milli * _RHO_STEP, service_s)
    # E[W | W <= B] = integral_0^B (1 - F(x) / F(B)) dx (trapezoid on 2,000 intervals).
    g = 1.0 - cdf / cdf[-1]
    return float(np.sum((g[1:] + g[:-1]) * 0.5 * np.diff(x)))


def md1_bounded_mean_s(rho: ArrayLike, service_s: float, bound_s: float) -> FloatArray:
    """Mean of :func:`md1_wait_bounded_s` [s]: ``int_0^B (1 - F(x) / F(B)) dx``."""
    ri = _rho_milli(rho)
    levels, inv = _levels(ri, round(RHO_SATURATED / _RHO_STEP) + 1)
    means = np.array(
        [_bounded_mean(int(lv), float(service_s), float(bound_s)) for lv in levels], np.float64
    )
    return means[inv].reshape(ri.shape)


def _levels(x: NDArray[np.int64], n: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``np.unique(x, return_inverse=True)`` (flat inverse) for integers in ``0 .. n - 1``.

    A mark per level instead of a sort: the RTT tables run this on every (step, pair) of a
    chunk (W4: 180,000 values of at most 1,000 levels each step)."""
    flat = x.reshape(-1)
    seen = np.zeros(n, bool)
    seen[flat] = True
    levels = np.flatnonzero(seen)
    rank = np.cumsum(seen) - 1
    return levels.astype(np.int64), rank[flat].astype(np.int64)


def great_circle_m(
    lat1_deg: ArrayLike, lon1_deg: ArrayLike, lat2_deg: ArrayLike, lon2_deg: ArrayLike
) -> FloatArray:
    """Great-circle distance on the mean sphere [m] (haversine)."""
    p1, p2 = np.radians(_f(lat1_deg)), np.radians(_f(lat2_deg))
    dl = np.radians(_f(lon2_deg) - _f(lon1_deg))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2.0 * EARTH_MEAN_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def fibre_delay_s(distance_m: ArrayLike, *, route_factor: float) -> FloatArray:
    """One-way terrestrial fibre delay [s]: ``distance * route_factor * 1.467 / c``."""
    return _f(distance_m) * route_factor * FIBRE_GROUP_INDEX / C_M_S


@dataclass(frozen=True)
class RttBreakdown:
    """Round-trip times of ``P`` pairs over ``T`` steps.

    Attributes
    ----------
    samples_s : ndarray, shape (T, P, N)
        Monte-Carlo RTT samples [s] (propagation + every component); ``inf`` where unreachable.
    mean_s : ndarray, shape (T, P, len(COMPONENTS))
        Expected contribution of each component to the RTT [s], in :data:`COMPONENTS` order.
    """

    samples_s: FloatArray
    mean_s: FloatArray

    def quantiles_s(self, q: ArrayLike = (0.5, 0.95, 0.99)) -> FloatArray:
        """RTT quantiles per step and pair, shape ``(len(q), T, P)`` [s]."""
        return np.quantile(self.samples_s, _f(q), axis=-1)

    def share(self) -> FloatArray:
        """Fraction of the mean RTT each component contributes, shape ``(len(COMPONENTS),)``,
        averaged over every finite step and pair."""
        m = self.mean_s[np.isfinite(self.mean_s).all(axis=-1)]
        tot = m.sum()
        return m.sum(axis=0) / tot if tot > 0 else np.zeros(len(COMPONENTS))


def _inputs(
    prop_rtt_s: ArrayLike,
    user_prop_s: ArrayLike,
    n_isl_hops: ArrayLike,
    params: ServiceParams,
    rho_user: ArrayLike | None,
    rho_feeder: ArrayLike | None,
    internet_s: ArrayLike,
) -> tuple[NDArray[np.float64], ...]:
    """The RTT inputs broadcast to the propagation RTT's shape ``(T, P)``: propagation, user
    link delay, ISL hops, user and feeder utilisation (the fallback when None), Internet leg."""
    prop = _f(prop_rtt_s)
    shape = prop.shape
    return (
        prop,
        np.broadcast_to(_f(user_prop_s), shape),
        np.broadcast_to(_f(n_isl_hops), shape),
        np.broadcast_to(_f(params.utilisation if rho_user is None else rho_user), shape),
        np.broadcast_to(_f(params.utilisation if rho_feeder is None else rho_feeder), shape),
        np.broadcast_to(_f(internet_s), shape),
    )


def _component_means(
    prop: NDArray[np.float64],
    up: NDArray[np.float64],
    proc: NDArray[np.float64],
    ru: NDArray[np.float64],
    rf: NDArray[np.float64],
    net: NDArray[np.float64],
    params: ServiceParams,
) -> NDArray[np.float64]:
    """Expected contribution of each of :data:`COMPONENTS`, shape ``(T, P, len(COMPONENTS))``."""
    uf, ff = params.frame_s, params.feeder_frame_s
    return np.stack(
        [
            prop,
            2.0 * up + (params.grant_frames + 3.0) * uf,
            3.0 * ff * np.ones(prop.shape),
            proc,
            2.0 * md1_bounded_mean_s(ru, uf, params.queue_delay_max_s)
            + 2.0 * md1_bounded_mean_s(rf, ff, params.queue_delay_max_s),
            2.0 * net,
            np.full(prop.shape, exponential_mean_from_median(params.pre2024_excess_median_s)),
        ],
        axis=-1,
    )


def rtt_breakdown(
    prop_rtt_s: ArrayLike,
    user_prop_s: ArrayLike,
    n_isl_hops: ArrayLike,
    *,
    params: ServiceParams,
    rng: np.random.Generator,
    n_samples: int = 200,
    rho_user: ArrayLike | None = None,
    rho_feeder: ArrayLike | None = None,
    internet_s: ArrayLike = 0.0,
) -> RttBreakdown:
    """RTT distribution and its breakdown for ``P`` terminal -> PoP pairs over ``T`` steps.

    Parameters
    ----------
    prop_rtt_s : array_like, shape (T, P)
        Geometric (propagation-only) RTT [s] of the routed path; ``inf`` when unreachable.
    user_prop_s : array_like, shape (T, P)
        One-way terminal -> serving-satellite propagation delay [s].
    n_isl_hops : array_like, shape (T, P)
        ISL hops on the path (0 for bent pipe).
    params : ServiceParams
    rng : numpy.random.Generator
        Source of every random draw (seeded by the caller).
    n_samples : int
        Monte-Carlo samples ``N`` per step and pair.
    rho_user, rho_feeder : array_like, shape (T, P), optional
        Utilisation of the user link and the feeder link on the path (from the traffic model);
        ``params.utilisation`` where not given. Values >= 1 saturate the queue at its AQM bound
        (:func:`md1_wait_bounded_s`).
    internet_s : array_like, shape (T, P) or scalar
        One-way PoP -> destination server delay [s] (:func:`fibre_delay_s`), 0 to stop at the PoP.

    Returns
    -------
    RttBreakdown
    """
    prop, up, hops, ru, rf, net = _inputs(
        prop_rtt_s, user_prop_s, n_isl_hops, params, rho_user, rho_feeder, internet_s
    )
    shape = prop.shape
    ff, uf = params.feeder_frame_s, params.frame_s
    u = rng.random((8, *shape, n_samples))
    e = (..., None)
    user = uplink_access_s(up[e], u[0], frame_s=uf, grant_frames=params.grant_frames)
    user = user + downlink_access_s(u[1], frame_s=uf)
    feeder = feeder_access_s(u[2], frame_s=ff) + feeder_access_s(u[3], frame_s=ff)
    qb = params.queue_delay_max_s
    queue = (
        md1_wait_bounded_s(u[4], ru[e], uf, qb)
        + md1_wait_bounded_s(u[5], ru[e], uf, qb)
        + md1_wait_bounded_s(u[6], rf[e], ff, qb)
        + md1_wait_bounded_s(u[7], rf[e], ff, qb)
    )
    proc = processing_s(hops, params)
    samples = prop[e] + user + feeder + proc[e] + queue + 2.0 * net[e]
    if params.pre2024_excess_median_s > 0.0:
        # Drawn after the others, and only when present, so later runs keep their bytes.
        u9 = rng.random((*shape, n_samples))
        samples = samples + pre2024_excess_s(u9, median_s=params.pre2024_excess_median_s)
    samples = np.where(np.isfinite(prop)[e], samples, np.inf)
    mean = _component_means(prop, up, proc, ru, rf, net, params)
    return RttBreakdown(samples_s=samples, mean_s=mean)


#: Samples behind each cached quantile table of :func:`rtt_quantiles_s`.
_TABLE_SAMPLES = 20_000
#: Utilisation resolution of those tables.
_RHO_TABLE_STEP = 0.01


@functools.lru_cache(maxsize=4096)
def _random_part_quantiles(
    rho_u_i: int,
    rho_f_i: int,
    frame_s: float,
    feeder_frame_s: float,
    bound_s: float,
    q: tuple[float, ...],
    seed: int,
    excess_median_s: float = 0.0,
) -> NDArray[np.float64]:
    """Quantiles of the random part of the RTT for one pair of utilisations (cached)."""
    rng = np.random.default_rng([seed, rho_u_i, rho_f_i])
    n = _TABLE_SAMPLES
    u = rng.random((8, n))
    ru, rf = rho_u_i * _RHO_TABLE_STEP, rho_f_i * _RHO_TABLE_STEP
    r = (u[0] + u[1]) * frame_s + (u[2] + u[3]) * feeder_frame_s
    b = bound_s
    r = r + md1_wait_bounded_s(u[4], ru, frame_s, b) + md1_wait_bounded_s(u[5], ru, frame_s, b)
    r = r + md1_wait_bounded_s(u[6], rf, feeder_frame_s, b)
    r = r + md1_wait_bounded_s(u[7], rf, feeder_frame_s, b)
    if excess_median_s > 0.0:
        r = r + pre2024_excess_s(rng.random(n), median_s=excess_median_s)
    return np.quantile(r, np.asarray(q))


def rtt_quantiles_s(
    prop_rtt_s: ArrayLike,
    user_prop_s: ArrayLike,
    n_isl_hops: ArrayLike,
    *,
    params: ServiceParams,
    q: tuple[float, ...] = (0.5, 0.95, 0.99),
    rho_user: ArrayLike | None = None,
    rho_feeder: ArrayLike | None = None,
    internet_s: ArrayLike = 0.0,
    seed: int = 0,
) -> tuple[FloatArray, FloatArray]:
    """RTT quantiles and component means per step and pair, fast enough for every run step.

    The RTT is a deterministic part (propagation, request/grant legs, fixed frames, processing,
    Internet leg) plus a random part (four uniform frame waits, four M/D/1 waits and, before
    2024, the exponential excess) whose law
    depends only on the two utilisations. A quantile of a shifted variable is the shift plus the
    quantile, so each quantile is the deterministic part plus a cached table lookup: the random
    part's quantiles are computed once per pair of utilisations (rounded to 0.01) from 20,000
    samples of a Generator seeded with ``(seed, rho_user, rho_feeder)``: same inputs, same bytes.

    Parameters
    ----------
    prop_rtt_s, user_prop_s, n_isl_hops, params, rho_user, rho_feeder, internet_s
        As for :func:`rtt_breakdown`, shapes ``(T, P)``.
    q : tuple of float
        Quantile levels.
    seed : int
        Seed of the tables' Generators (the scenario's seed).

    Returns
    -------
    quantiles_s : ndarray, shape (len(q), T, P)
        ``inf`` where unreachable (queues are bounded: saturated ones sit at their bound).
    mean_s : ndarray, shape (T, P, len(COMPONENTS))
        Expected contribution of each component, as in :class:`RttBreakdown`.
    """
    prop, up, hops, ru, rf, net = _inputs(
        prop_rtt_s, user_prop_s, n_isl_hops, params, rho_user, rho_feeder, internet_s
    )
    shape = prop.shape
    uf, ff = params.frame_s, params.feeder_frame_s
    proc = processing_s(hops, params)
    det = prop + 2.0 * up + (params.grant_frames + 2.0) * uf + 2.0 * ff + proc + 2.0 * net
    top = round(1.0 / _RHO_TABLE_STEP)
    iu = np.clip(np.rint(ru / _RHO_TABLE_STEP), 0, top).astype(np.int64)
    jf = np.clip(np.rint(rf / _RHO_TABLE_STEP), 0, top).astype(np.int64)
    pair = iu * (top + 1) + jf
    keys, inv = _levels(pair, (top + 1) ** 2)
    table = np.full((keys.size, len(q)), np.inf)
    for k, key in enumerate(keys):
        a, b = divmod(int(key), top + 1)
        table[k] = _random_part_quantiles(
            a, b, uf, ff, params.queue_delay_max_s, tuple(q), seed, params.pre2024_excess_median_s
        )
    # The table gathered quantile-major (contiguous rows, not a strided moveaxis view), and
    # the unreachable steps set in place.
    quant = det[None] + table.T[:, inv].reshape((len(q), *shape))
    quant[:, ~np.isfinite(prop)] = np.inf
    mean = _component_means(prop, up, proc, ru, rf, net, params)
    return quant, mean
