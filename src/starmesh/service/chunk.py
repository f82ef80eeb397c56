"""Glue for the run engine: the service model's calls inside one chunk, on the engine's arrays.

Order inside a chunk (after propagation and GSL candidates, before routing):

1. ``sched = schedule_sparse(t_s, n_terminals, *terminal candidates*)`` (carry ``sched.carry``
   to the next chunk);
2. ``keep = serving_gsl_mask(...)``: drop every terminal GSL but the scheduled one, so routing
   (and the traffic model) see one user link per terminal and step, chosen by the scheduler;
3. routing and traffic as today, giving the geometric RTT, hop counts and link utilisations;
4. ``user_s = serving_link_delay_s(...)``, then
   ``latency.rtt_breakdown(prop_rtt_s, user_s, hops, rho_user=..., rho_feeder=...)``;
5. ``rtt_summary(breakdown)`` for the per-step table and ``summary.json``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from starmesh.constants import C_M_S
from starmesh.service.latency import COMPONENTS, RttBreakdown


def serving_gsl_mask(
    t_idx: ArrayLike,
    site_idx: ArrayLike,
    sat_idx: ArrayLike,
    serving: NDArray[np.int32],
    terminal_sites: ArrayLike,
) -> NDArray[np.bool_]:
    """Which GSL candidates to keep once the scheduler has chosen.

    Parameters
    ----------
    t_idx, site_idx, sat_idx : array_like of int, shape (L,)
        GSL candidates of the chunk (``topology.GslCandidates``).
    serving : ndarray of int32, shape (T, G)
        Scheduled satellite of each terminal (-1: none), terminals in ``terminal_sites`` order.
    terminal_sites : array_like of int, shape (G,)
        Site index of each terminal. Other sites (gateways, PoPs) keep all their candidates.

    Returns
    -------
    ndarray of bool, shape (L,)
    """
    ti = np.asarray(t_idx, dtype=np.int64)
    gi = np.asarray(site_idx, dtype=np.int64)
    si = np.asarray(sat_idx, dtype=np.int64)
    term = np.asarray(terminal_sites, dtype=np.int64)
    col = np.full(int(max(gi.max(initial=-1), term.max(initial=-1))) + 1, -1, dtype=np.int64)
    col[term] = np.arange(term.size)
    c = col[gi]
    is_term = c >= 0
    keep = ~is_term
    keep[is_term] = serving[ti[is_term], c[is_term]] == si[is_term]
    return keep


def serving_link_delay_s(
    t_idx: ArrayLike,
    site_idx: ArrayLike,
    sat_idx: ArrayLike,
    length_m: ArrayLike,
    serving: NDArray[np.int32],
    terminal_sites: ArrayLike,
) -> NDArray[np.float64]:
    """One-way propagation delay [s] of each terminal's scheduled link, shape ``(T, G)``;
    NaN where the terminal is unserved."""
    keep = serving_gsl_mask(t_idx, site_idx, sat_idx, serving, terminal_sites)
    term = np.asarray(terminal_sites, dtype=np.int64)
    gi = np.asarray(site_idx, dtype=np.int64)[keep]
    col = np.full(int(max(gi.max(initial=-1), term.max(initial=-1))) + 1, -1, dtype=np.int64)
    col[term] = np.arange(term.size)
    c = col[gi]
    m = c >= 0
    out = np.full(serving.shape, np.nan)
    out[np.asarray(t_idx, dtype=np.int64)[keep][m], c[m]] = (
        np.asarray(length_m, dtype=np.float64)[keep][m] / C_M_S
    )
    return out


def rtt_summary(b: RttBreakdown, q: tuple[float, ...] = (0.5, 0.95, 0.99)) -> dict[str, object]:
    """Per-step quantiles (ms) and the share of each component, for tables and summary.json.

    Returns
    -------
    dict
        ``{"q": q, "rtt_ms": ndarray (len(q), T, P), "mean_ms": ndarray (T, P, C),
        "components": COMPONENTS, "share": {component: fraction of the mean RTT}}``.
    """
    return {
        "q": q,
        "rtt_ms": b.quantiles_s(q) * 1e3,
        "mean_ms": b.mean_s * 1e3,
        "components": COMPONENTS,
        "share": dict(zip(COMPONENTS, (float(x) for x in b.share()), strict=True)),
    }
