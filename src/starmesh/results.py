"""Results of a run: statistics, a typed summary, and labelled arrays (xarray).

A run's per-step results come out of :func:`starmesh.engine.compute_chunk` one chunk at a time.
This module turns them into

- per-chunk counters (:func:`chunk_counters`) and, at the end, the :class:`Summary` (per pair and
  mode: min/median/p95/max RTT, availability, path changes; traffic: throughput per terminal,
  unmet demand, Jain's index), computed from a :class:`SeriesStore` of the RTT series without
  holding the whole run in memory;
- :class:`Results`: the same run as labelled xarray objects, whether it ran in memory or is read
  from a run folder (:func:`starmesh.open_run`).

xarray and pandas are imported only when labelled results are asked for.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from . import __version__
from .capacity import jain_index
from .propagation import ephemeris_summary

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from .engine import ChunkResult
    from .plan import RunPlan


# --- Typed summary ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PairStats:
    """Statistics of one (mode, pair) over the run; RTT fields None when never reachable."""

    mode: str
    src: str
    dst: str
    rtt_min_ms: float | None
    rtt_median_ms: float | None
    rtt_p95_ms: float | None
    rtt_max_ms: float | None
    availability: float
    path_changes: int


@dataclass(frozen=True)
class ModeTraffic:
    """Traffic of one routing mode, averaged over the run's steps."""

    demand_gbps_mean: float
    allocated_gbps_mean: float
    unmet_fraction: float
    jain_index_mean: float


@dataclass(frozen=True)
class SiteThroughput:
    """Mean throughput per terminal of one site in one mode."""

    site: str
    mode: str
    terminals: int
    down_mbps_per_terminal: float
    up_mbps_per_terminal: float
    down_demand_mbps_per_terminal: float


@dataclass(frozen=True)
class TrafficSummary:
    """Traffic per mode and per site."""

    modes: dict[str, ModeTraffic]
    sites: list[SiteThroughput]


@dataclass(frozen=True)
class Summary:
    """What ``summary.json`` holds, typed.

    Build it from a run with :func:`summarize`, or from the file with :meth:`from_dict`;
    :meth:`to_dict` gives the file's layout and :meth:`to_dataframe` one row per (mode, pair).
    """

    scenario: str
    start_utc: str
    n_steps: int
    step_s: float
    n_sats: int
    n_sites: int
    n_isl: int
    modes: list[str]
    pairs: list[PairStats]
    traffic: TrafficSummary | None = None
    starmesh_version: str = __version__
    scenario_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout of ``summary.json``."""
        out: dict[str, Any] = {}
        if self.traffic is not None:
            out["traffic"] = {
                "modes": {m: asdict(t) for m, t in self.traffic.modes.items()},
                "sites": [asdict(s) for s in self.traffic.sites],
            }
        out.update(
            {
                "starmesh_version": self.starmesh_version,
                "scenario": self.scenario,
                "start_utc": self.start_utc,
                "n_steps": self.n_steps,
                "step_s": self.step_s,
                "n_sats": self.n_sats,
                "n_sites": self.n_sites,
                "n_isl": self.n_isl,
                "modes": list(self.modes),
                "pairs": [asdict(p) for p in self.pairs],
            }
        )
        out.update(self.extra)
        if self.scenario_sha256 is not None:
            out["scenario_sha256"] = self.scenario_sha256
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        """Read the layout of ``summary.json`` (unknown keys are kept in :attr:`extra`)."""
        known = {
            "traffic",
            "starmesh_version",
            "scenario",
            "start_utc",
            "n_steps",
            "step_s",
            "n_sats",
            "n_sites",
            "n_isl",
            "modes",
            "pairs",
            "scenario_sha256",
        }
        t = data.get("traffic")
        traffic = None
        if isinstance(t, dict):
            traffic = TrafficSummary(
                modes={m: ModeTraffic(**v) for m, v in t["modes"].items()},
                sites=[SiteThroughput(**s) for s in t["sites"]],
            )
        return cls(
            scenario=data["scenario"],
            start_utc=data["start_utc"],
            n_steps=int(data["n_steps"]),
            step_s=float(data["step_s"]),
            n_sats=int(data.get("n_sats", 0)),
            n_sites=int(data.get("n_sites", 0)),
            n_isl=int(data.get("n_isl", 0)),
            modes=list(data["modes"]),
            pairs=[PairStats(**p) for p in data["pairs"]],
            traffic=traffic,
            starmesh_version=str(data.get("starmesh_version", "")),
            scenario_sha256=data.get("scenario_sha256"),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def pairs_of(self, mode: str) -> list[PairStats]:
        """The pair statistics of one mode."""
        return [p for p in self.pairs if p.mode == mode]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per (mode, pair): the statistics of :class:`PairStats`."""
        import pandas as pd

        return pd.DataFrame([asdict(p) for p in self.pairs])


# --- Per chunk counters and the summary ------------------------------------------------------


def chunk_counters(
    res: ChunkResult, series_idx: NDArray[np.int64] | None = None
) -> dict[str, NDArray[Any]]:
    """Counters of one chunk that the summary adds up (path changes, RTT extremes, traffic,
    service model; ``series_idx``: the pairs whose service quantile series are kept)."""
    finite = np.isfinite(res.rtt_s)
    out: dict[str, NDArray[Any]] = {
        "changes": res.changed.sum(axis=1),
        "rtt_min": np.where(finite, res.rtt_s, np.inf).min(axis=1),
        "rtt_max": np.where(finite, res.rtt_s, -np.inf).max(axis=1),
    }
    if res.rate_bps is not None:
        assert res.demand_bps is not None
        n_m, n_t, _ = res.rate_bps.shape
        pos = res.demand_bps > 0
        out["rate_sum"] = res.rate_bps.sum(axis=1)
        out["demand_sum"] = res.demand_bps.sum(axis=0)
        out["jain_sum"] = np.array(
            [
                sum(
                    # Nothing demanded, or nothing allocated to anyone: an equal share (1).
                    jain_index(res.rate_bps[m, k][pos[k]])
                    if pos[k].any() and res.rate_bps[m, k][pos[k]].any()
                    else 1.0
                    for k in range(n_t)
                )
                for m in range(n_m)
            ]
        )
    if res.service is not None:
        sv = res.service
        # Quantile series of the series pairs only (as service.parquet): a day of every pair
        # would not fit in memory.
        sel = series_idx if series_idx is not None else np.arange(sv.rtt_q_s.shape[-1])
        out["svc_q"] = np.ascontiguousarray(np.transpose(sv.rtt_q_s[..., sel], (0, 1, 3, 2)))
        # Component sums of every pair in integer picoseconds: integer sums are exact, so the
        # summary does not depend on how the run was cut into chunks.
        from ._counters import component_sums_ps

        mean_ps, n_fin = component_sums_ps(np.ascontiguousarray(sv.mean_s))
        out["svc_mean_ps"] = mean_ps  # (M, P, C)
        out["svc_n"] = n_fin  # (M, P)
        out["svc_handovers"] = sv.handover.sum(axis=0)
        out["svc_served"] = (sv.serving >= 0).sum(axis=0)
        out["svc_dl"] = np.ascontiguousarray(sv.download_bps.T)
        out["svc_ul"] = np.ascontiguousarray(sv.upload_bps.T)
    out.update(visibility_counters(res))
    return out


@dataclass(frozen=True)
class KeptChunk:
    """What a run keeps of one chunk of :func:`starmesh.engine.compute_chunk`: what its run
    folder, its summary and the in-memory results read, and no more.

    A chunk's result holds every pair's arrays, but only the series pairs
    (``routing.series_pairs``) are written row by row; of the other pairs the summary needs the
    RTT series and per-pair sums. A W4 chunk (5,950 pairs, 29 steps, service model) pickles to
    21.5 MB, 17 MB of it service-model arrays of every pair; kept, 4.5 MB. Every executor
    keeps its chunks where it computes them (:func:`keep_chunk`), so worker processes send
    this, and the one writer reads it.

    Attributes
    ----------
    res : ChunkResult
        The chunk, with every per-pair array cut to the series pairs (``plan.series_idx``, in
        that order, ``Ps`` of them): ``rtt_s``, ``hops``, ``src_sat``, ``dst_sat``, ``changed``
        ``(M, T, Ps)``; the service model's ``rtt_q_s`` ``(M, Q, T, Ps)``, ``mean_s``
        ``(M, T, Ps, C)``, ``rho_user`` and ``rho_feeder`` ``(M, T, Ps)``. Everything else as
        computed.
    series_s : ndarray of float64, shape (M, P, T)
        RTT of every pair [s] (inf: unreachable): the summary's per-pair statistics.
    counters : dict of str to ndarray
        :func:`chunk_counters` of the whole chunk.
    """

    res: ChunkResult
    series_s: NDArray[np.float64]
    counters: dict[str, NDArray[Any]]


def keep_chunk(plan: RunPlan, res: ChunkResult) -> KeptChunk:
    """The part of a chunk's result that a run keeps (:class:`KeptChunk`)."""
    from dataclasses import replace

    sel = plan.series_idx
    counters = chunk_counters(res, sel)
    # float64: the summary's statistics are those of the exact values, not of a rounding.
    series = np.ascontiguousarray(np.transpose(res.rtt_s, (0, 2, 1)), dtype=np.float64)
    sv = res.service
    cut = replace(
        res,
        rtt_s=res.rtt_s[:, :, sel],
        hops=res.hops[:, :, sel],
        src_sat=res.src_sat[:, :, sel],
        dst_sat=res.dst_sat[:, :, sel],
        changed=res.changed[:, :, sel],
        service=None
        if sv is None
        else replace(
            sv,
            rtt_q_s=sv.rtt_q_s[..., sel],
            mean_s=sv.mean_s[:, :, sel],
            rho_user=sv.rho_user[:, :, sel],
            rho_feeder=sv.rho_feeder[:, :, sel],
        ),
    )
    return KeptChunk(cut, series, counters)


def quantile_name(q: float) -> str:
    """Column name of an RTT quantile: 0.5 -> ``"rtt_p50_ms"``, 0.999 -> ``"rtt_p99.9_ms"``."""
    return f"rtt_p{round(q * 100, 6):g}_ms"


def _service_summary(plan: RunPlan, store: SeriesStore) -> dict[str, Any]:
    """The ``service`` section of ``summary.json``.

    Per mode: the share of the mean RTT each component contributes (averaged over every
    reachable step and pair) and its mean [ms], and the pooled quantiles of the series pairs;
    per series pair (``routing.series_pairs``): the median over steps of each RTT quantile; per
    terminal: handovers, the share of steps served and the median speed test; the fleet mix
    (satellites per generation) and where the satellite capacities come from.
    """
    from .service.latency import COMPONENTS

    sv = plan.service
    assert sv is not None
    n_t = plan.grid.n_steps
    # One chunk's counters at a time: a day of W4 holds 2,980 chunks, whose per-pair component
    # sums alone are 1 GB together. Integer sums in any order are the same sums.
    q: NDArray[np.float64] | None = None  # (M, Q, P, T), the series pairs
    mean_ps: NDArray[np.int64] | None = None  # (M, P, C)
    n: Any = 0
    hand: Any = 0
    served: Any = 0
    for i, (a, b) in enumerate(store.chunks):
        e = store.extra(i, ("svc_q", "svc_mean_ps", "svc_n", "svc_handovers", "svc_served"))
        if q is None:
            q = np.empty((*e["svc_q"].shape[:-1], n_t))
            mean_ps = np.zeros_like(e["svc_mean_ps"])
        assert mean_ps is not None
        q[..., a:b] = e["svc_q"]
        mean_ps += e["svc_mean_ps"]
        n = n + e["svc_n"]
        hand = hand + e["svc_handovers"]
        served = served + e["svc_served"]
    assert q is not None and mean_ps is not None
    mean_sum = mean_ps.astype(np.float64) * 1e-12
    speed = _terminal_medians(store, ("svc_dl", "svc_ul"), len(sv.terminals), n_t)
    dl_median, ul_median = speed["svc_dl"], speed["svc_ul"]
    src, dst = plan.pair_names
    names = plan.sites.names
    modes: dict[str, Any] = {}
    pairs: list[dict[str, Any]] = []
    qn = [quantile_name(x) for x in sv.quantiles]
    for m, mode in enumerate(plan.modes):
        tot = mean_sum[m].sum(axis=0)  # (C,)
        cnt = max(int(n[m].sum()), 1)
        whole = float(tot.sum())
        x = q[m]
        x[~np.isfinite(x)] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(x, axis=-1)  # (Q, P)
            # The pooled one last, in place (numpy's in-place nanmedian overwrites the NaNs
            # with other values, so nothing may read x after it).
            pooled = np.nanmedian(x.reshape(x.shape[0], -1), axis=-1, overwrite_input=True)
        modes[mode] = {
            "share": {
                c: (float(tot[i] / whole) if whole > 0 else 0.0) for i, c in enumerate(COMPONENTS)
            },
            "mean_ms": {c: float(tot[i] / cnt * 1e3) for i, c in enumerate(COMPONENTS)},
            **{f"{name}_pooled": _finite_ms(pooled[j]) for j, name in enumerate(qn)},
        }
        for j_p, p in enumerate(plan.series_idx):
            pairs.append(
                {"mode": mode, "src": src[p], "dst": dst[p]}
                | {name: _finite_ms(med[j, j_p]) for j, name in enumerate(qn)}
            )
    terminals = []
    for g, site in enumerate(sv.terminals):
        entry: dict[str, Any] = {
            "site": names[int(site)],
            "handovers": int(hand[g]),
            "served_fraction": float(served[g] / n_t),
            "download_mbps_median": None if dl_median is None else dl_median[g],
        }
        if ul_median is not None:
            entry["upload_mbps_median"] = ul_median[g]
        terminals.append(entry)
    return {
        "model": "service",
        "scheduler_policy": sv.policy,
        "slot_s": sv.slot_s,
        "quantiles": list(sv.quantiles),
        "fleet": dict(sv.fleet),
        "satellite_capacity": sv.capacity_basis,
        "cell_partition": sv.cell_partition,
        "components": list(COMPONENTS),
        "modes": modes,
        "pairs": pairs,
        "terminals": terminals,
    }


#: Memory for one block of per-step series while the summary reads them back [bytes].
_SUMMARY_BLOCK_BYTES = 64 * 2**20


def _terminal_medians(
    store: SeriesStore, keys: tuple[str, ...], n_g: int, n_t: int
) -> dict[str, list[float | None] | None]:
    """Each terminal's median speed test [Mbit/s] over the steps it was served (None if
    never), from the chunks' counters ``keys`` ``(G, Tc)`` [bit/s], read in one pass a block
    of terminals at a time (64 MB of a day's steps), so that memory does not grow with the
    run. A key's list is None when a chunk lacks it (run folders written before the upload
    test)."""
    block = max(1, _SUMMARY_BLOCK_BYTES // (8 * len(keys) * max(n_t, 1)))
    out: dict[str, list[float | None] | None] = {k: [] for k in keys}
    for g0 in range(0, n_g, block):
        g1 = min(g0 + block, n_g)
        x = {k: np.empty((g1 - g0, n_t)) for k in keys}
        for i, (a, b) in enumerate(store.chunks):
            e = store.extra(i, keys)
            for k in keys:
                if k in e:
                    x[k][:, a:b] = e[k][g0:g1]
                else:
                    out[k] = None
        for k in keys:
            medians = out[k]
            if medians is None:
                continue
            for row in x[k]:
                d = row[row > 0]
                medians.append(float(np.median(d) / 1e6) if d.size else None)
    return out


def _finite_ms(x: float) -> float | None:
    return float(x * 1e3) if np.isfinite(x) else None


def visibility_counters(res: ChunkResult) -> dict[str, NDArray[Any]]:
    """Per-terminal counters of one chunk's visibility (empty without terminals).

    ``vis_first``/``vis_last`` are the absolute steps of the chunk's first and last handover
    (-1: none) and ``vis_gap_max`` the longest interval in steps between two of them inside
    the chunk, so that intervals across chunk boundaries can be joined exactly.
    """
    v = res.visibility
    if v is None:
        return {}
    n_t = v.handover.shape[0]
    steps = res.start + np.arange(n_t)
    ho = v.handover
    has = ho.any(axis=0)
    first = np.where(has, steps[np.argmax(ho, axis=0)], -1)
    last = np.where(has, steps[n_t - 1 - np.argmax(ho[::-1], axis=0)], -1)
    # Handovers terminal by terminal, in step order: the gaps between neighbours of the same
    # terminal, the largest kept per terminal (one pass instead of a loop over terminals).
    g_idx, t_idx = np.nonzero(ho.T)
    same = g_idx[1:] == g_idx[:-1]
    gap_max = np.zeros(ho.shape[1], np.int64)
    np.maximum.at(gap_max, g_idx[1:][same], (t_idx[1:] - t_idx[:-1])[same])
    served = v.serving >= 0
    return {
        "vis_handovers": ho.sum(axis=0).astype(np.int64),
        "vis_first": first.astype(np.int64),
        "vis_last": last.astype(np.int64),
        "vis_gap_max": gap_max,
        "vis_served": served.sum(axis=0).astype(np.int64),
        "vis_n_sum": v.n_in_view.sum(axis=0).astype(np.int64),
        # In whole nanoradians: an integer sum does not depend on how steps are chunked.
        "vis_el_sum": np.round(np.where(served, v.serving_elevation_rad, 0.0) * 1e9)
        .astype(np.int64)
        .sum(axis=0),
    }


def visibility_summary(plan: RunPlan, store: SeriesStore) -> dict[str, Any]:
    """Per-terminal handover statistics for ``summary.json`` (``{}`` without terminals).

    Per terminal: ``handovers``, ``handovers_per_hour``, the mean and longest interval between
    consecutive handovers [s] (null with fewer than two), the fraction of steps with a
    serving satellite, the mean number of satellites in view and the serving satellite's
    mean elevation [deg].
    """
    from .engine import visibility_terminals

    terms = visibility_terminals(plan)
    if terms.size == 0 or "vis_handovers" not in store.extra(0):
        return {}
    n_g, n_t, step = terms.size, plan.grid.n_steps, plan.grid.step_s
    ho = np.zeros(n_g, np.int64)
    served = np.zeros(n_g, np.int64)
    n_sum = np.zeros(n_g, np.int64)
    el_sum = np.zeros(n_g, np.int64)
    first = np.full(n_g, -1, np.int64)
    last = np.full(n_g, -1, np.int64)
    gap_max = np.zeros(n_g, np.int64)
    for i in range(len(store.chunks)):
        e = store.extra(i)
        ho += e["vis_handovers"]
        served += e["vis_served"]
        n_sum += e["vis_n_sum"]
        el_sum += e["vis_el_sum"]
        gap_max = np.maximum(gap_max, e["vis_gap_max"])
        here = e["vis_first"] >= 0
        join = here & (last >= 0)
        gap_max[join] = np.maximum(gap_max[join], e["vis_first"][join] - last[join])
        first = np.where((first < 0) & here, e["vis_first"], first)
        last = np.where(here, e["vis_last"], last)
    hours = n_t * step / 3600.0
    rows = []
    for j, g in enumerate(terms):
        two = ho[j] > 1
        rows.append(
            {
                "terminal": plan.sites.names[g],
                "handovers": int(ho[j]),
                "handovers_per_hour": float(ho[j] / hours),
                "handover_interval_mean_s": (
                    float((last[j] - first[j]) * step / (ho[j] - 1)) if two else None
                ),
                "handover_interval_max_s": float(gap_max[j] * step) if two else None,
                "served_fraction": float(served[j] / n_t),
                "n_in_view_mean": float(n_sum[j] / n_t),
                "serving_elevation_mean_deg": (
                    float(np.degrees(el_sum[j] * 1e-9 / served[j])) if served[j] else None
                ),
            }
        )
    return {"visibility": {"slot_s": plan.visibility_slot_s, "terminals": rows}}


class SeriesStore(Protocol):
    """Where a run keeps its chunks' RTT series and counters until the summary is made."""

    chunks: list[tuple[int, int]]

    def extra(self, index: int, keys: Sequence[str] | None = None) -> dict[str, NDArray[Any]]: ...

    def rows(self, m: int, p0: int, p1: int, n_t: int) -> NDArray[np.float64]: ...


class MemoryStore:
    """A :class:`SeriesStore` in memory, for runs without a run folder."""

    def __init__(self, chunks: list[tuple[int, int]]) -> None:
        self.chunks = chunks
        self._series: dict[int, NDArray[np.float64]] = {}
        self._extra: dict[int, dict[str, NDArray[Any]]] = {}

    def write(self, index: int, kept: KeptChunk) -> None:
        """Keep one chunk's series ``(M, P, Tc)`` [s] and counters."""
        self._series[index] = kept.series_s
        self._extra[index] = kept.counters

    def extra(self, index: int, keys: Sequence[str] | None = None) -> dict[str, NDArray[Any]]:
        e = self._extra[index]
        return e if keys is None else {k: e[k] for k in keys if k in e}

    def rows(self, m: int, p0: int, p1: int, n_t: int) -> NDArray[np.float64]:
        out = np.empty((p1 - p0, n_t))
        for i, (a, b) in enumerate(self.chunks):
            out[:, a:b] = self._series[i][m, p0:p1]
        return out


def _traffic_summary(plan: RunPlan, store: SeriesStore) -> TrafficSummary:
    """Mean demand and throughput per mode and per site, unmet demand, Jain's fairness."""
    tp = plan.traffic
    assert tp is not None
    n_t = plan.grid.n_steps
    rate = np.zeros((len(plan.modes), tp.flow_pair.size))
    demand = np.zeros(tp.flow_pair.size)
    jain = np.zeros(len(plan.modes))
    for i in range(len(store.chunks)):
        extra = store.extra(i)
        rate += extra["rate_sum"]
        demand += extra["demand_sum"]
        jain += extra["jain_sum"]
    rate, demand, jain = rate / n_t, demand / n_t, jain / n_t
    f = tp.flows
    names = plan.sites.names
    modes = {}
    sites: list[SiteThroughput] = []
    for m, mode in enumerate(plan.modes):
        total_d = float(demand.sum())
        modes[mode] = ModeTraffic(
            demand_gbps_mean=total_d / 1e9,
            allocated_gbps_mean=float(rate[m].sum()) / 1e9,
            unmet_fraction=float(1.0 - rate[m].sum() / total_d) if total_d > 0 else 0.0,
            jain_index_mean=float(jain[m]),
        )
        for g in np.unique(np.concatenate([f.src_site, f.dst_site])):
            if plan.sites.kinds[g] != "terminal":
                continue
            down = f.dst_site == g
            up = f.src_site == g
            n = int(tp.terminals_per_site[g])
            sites.append(
                SiteThroughput(
                    site=names[g],
                    mode=mode,
                    terminals=n,
                    down_mbps_per_terminal=float(rate[m, down].sum()) / 1e6 / n,
                    up_mbps_per_terminal=float(rate[m, up].sum()) / 1e6 / n,
                    down_demand_mbps_per_terminal=float(demand[down].sum()) / 1e6 / n,
                )
            )
    return TrafficSummary(modes=modes, sites=sites)


def summarize(plan: RunPlan, store: SeriesStore) -> Summary:
    """Per (mode, pair) statistics: min/median/p95/max RTT [ms], availability, path changes.

    Medians and percentiles are exact (of the float64 series), read a block of pairs at a time
    so that memory does not grow with the length of the run.
    """
    src_names, dst_names = plan.pair_names
    n_m, n_p, n_t = len(plan.modes), plan.problem.pair_src.size, plan.grid.n_steps
    changes = np.zeros((n_m, n_p), np.int64)
    rtt_min = np.full((n_m, n_p), np.inf)
    rtt_max = np.full((n_m, n_p), -np.inf)
    for i in range(len(store.chunks)):
        extra = store.extra(i)
        changes += extra["changes"]
        rtt_min = np.minimum(rtt_min, extra["rtt_min"])
        rtt_max = np.maximum(rtt_max, extra["rtt_max"])
    out: list[PairStats] = []
    block = max(1, (64 * 2**20) // (8 * max(n_t, 1)))
    for m, mode in enumerate(plan.modes):
        for b0 in range(0, n_p, block):
            x = store.rows(m, b0, min(b0 + block, n_p), n_t)
            finite = np.isfinite(x)
            avail = finite.sum(axis=1) / n_t
            x[~finite] = np.nan
            with warnings.catch_warnings():
                # All-unreachable pairs: nan statistics, reported as null below.
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(x, axis=1)
                p95 = np.nanpercentile(x, 95, axis=1)
            for j in range(x.shape[0]):
                p = b0 + j
                reach = avail[j] > 0
                out.append(
                    PairStats(
                        mode=mode,
                        src=src_names[p],
                        dst=dst_names[p],
                        rtt_min_ms=float(rtt_min[m, p] * 1e3) if reach else None,
                        rtt_median_ms=float(med[j] * 1e3) if reach else None,
                        rtt_p95_ms=float(p95[j] * 1e3) if reach else None,
                        rtt_max_ms=float(rtt_max[m, p] * 1e3) if reach else None,
                        availability=float(avail[j]),
                        path_changes=int(changes[m, p]),
                    )
                )
    more = _constellation_extra(plan)
    if plan.service is not None:
        more["service"] = _service_summary(plan, store)
    more.update(visibility_summary(plan, store))
    return Summary(
        extra=more,
        traffic=_traffic_summary(plan, store) if plan.traffic is not None else None,
        scenario=plan.name,
        start_utc=plan.grid.epoch.isoformat().replace("+00:00", "Z"),
        n_steps=plan.grid.n_steps,
        step_s=plan.grid.step_s,
        n_sats=plan.constellation.n_sats,
        n_sites=len(plan.sites),
        n_isl=int(plan.isl_edges.shape[0]),
        modes=list(plan.modes),
        pairs=out,
    )


def _constellation_extra(plan: RunPlan) -> dict[str, Any]:
    """Summary keys of a real constellation: what its operational filter dropped and why, that
    its ISLs are re-paired (``n_isl`` then counts the first step's), and its interpolated SGP4
    ephemeris when the run used one."""
    extra: dict[str, Any] = {}
    if plan.constellation_filter is not None:
        extra["constellation_filter"] = plan.constellation_filter.to_dict()
    if plan.isl is not None:
        extra["isl_repaired"] = True
    if plan.ephemeris_node_s is not None:
        extra["ephemeris"] = ephemeris_summary(plan.ephemeris_node_s)
    return extra


# --- Comparing runs --------------------------------------------------------------------------


def _median_or_none(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def compare_rows(name: str, changes: dict[str, Any], summary: Summary) -> list[dict[str, Any]]:
    """One comparison row per mode of a run: availability and RTT over its pairs, throughput."""
    rows = []
    for mode in summary.modes:
        pairs = summary.pairs_of(mode)
        med = [p.rtt_median_ms for p in pairs if p.rtt_median_ms is not None]
        p95 = [p.rtt_p95_ms for p in pairs if p.rtt_p95_ms is not None]
        row: dict[str, Any] = {
            "variant": name,
            "changes": changes,
            "mode": mode,
            "availability_pct": 100.0 * float(np.mean([p.availability for p in pairs])),
            "pairs_never_served": int(sum(p.availability == 0 for p in pairs)),
            "rtt_median_ms": _median_or_none(med),
            "rtt_p95_ms": _median_or_none(p95),
            "path_changes": int(sum(p.path_changes for p in pairs)),
        }
        t = summary.traffic
        if t is not None:
            sites = [s for s in t.sites if s.mode == mode]
            row["down_mbps_per_terminal"] = (
                float(np.mean([s.down_mbps_per_terminal for s in sites])) if sites else None
            )
            row["unmet_fraction"] = t.modes[mode].unmet_fraction
        service = summary.extra.get("service")
        if isinstance(service, dict):
            # What users measure (service model): median over the mode's series pairs of each
            # pair's median p50 and p95 RTT.
            sp = [x for x in service.get("pairs", []) if x.get("mode") == mode]
            for key, out in (
                ("rtt_p50_ms", "service_rtt_p50_ms"),
                ("rtt_p95_ms", "service_rtt_p95_ms"),
            ):
                vals = [x[key] for x in sp if x.get(key) is not None]
                row[out] = _median_or_none(vals)
        rows.append(row)
    return rows


def sweep_row(vid: str, params: dict[str, Any], summary: Summary, mode: str) -> dict[str, Any]:
    """One row of ``sweep_summary.json``: a variant's parameters and its statistics in a mode."""
    pairs = summary.pairs_of(mode)
    med = [p.rtt_median_ms for p in pairs if p.rtt_median_ms is not None]
    p95 = [p.rtt_p95_ms for p in pairs if p.rtt_p95_ms is not None]
    return {
        "variant": vid,
        **{k: table_cell(v) for k, v in params.items()},
        "mode": mode,
        "availability_mean": float(np.mean([p.availability for p in pairs])),
        "rtt_median_ms": _median_or_none(med),
        "rtt_p95_ms": _median_or_none(p95),
        "path_changes": int(sum(p.path_changes for p in pairs)),
    }


def table_cell(x: Any) -> Any:
    """A parameter value as a table cell: scalars as they are, anything else as JSON."""
    import json

    return x if isinstance(x, int | float | str | bool) else json.dumps(x)


# --- Labelled results ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSeries:
    """Per-step results of a run's series pairs, as plain arrays.

    Attributes
    ----------
    t_s : ndarray, shape (T,)
        Step times [s since ``epoch``].
    modes : list of str, length M
    src, dst : list of str, length P
    rtt_ms : ndarray, shape (M, T, P)
        Round-trip time [ms]; NaN where unreachable.
    hops : ndarray of int16, shape (M, T, P)
        Links on the path; -1 where unreachable.
    src_sat, dst_sat : ndarray of int32, shape (M, T, P)
        Serving satellites at the two ends; -1 where unreachable.
    path_changed : ndarray of bool, shape (M, T, P)
    service : ServiceSeries or None
        The service model's per-step results (None for ``model = "geometric"``).
    """

    t_s: NDArray[np.float64]
    modes: list[str]
    src: list[str]
    dst: list[str]
    rtt_ms: NDArray[np.float64]
    hops: NDArray[np.int16]
    src_sat: NDArray[np.int32]
    dst_sat: NDArray[np.int32]
    path_changed: NDArray[np.bool_]
    service: ServiceSeries | None = None


@dataclass(frozen=True)
class ServiceSeries:
    """The service model's per-step results (series pairs and terminals).

    Attributes
    ----------
    quantiles : list of float, length Q
    rtt_q_ms : ndarray, shape (M, Q, T, P)
        RTT quantiles [ms]; NaN where unreachable.
    components : list of str, length C
    mean_ms : ndarray, shape (M, T, P, C)
        Expected contribution of each RTT component [ms].
    terminals : list of str, length Gt
    serving_sat : ndarray of int32, shape (T, Gt)
        Scheduled satellite (-1: none).
    handover : ndarray of bool, shape (T, Gt)
    download_mbps : ndarray, shape (T, Gt)
        Speed-test download rate [Mbit/s].
    upload_mbps : ndarray, shape (T, Gt) or None
        Speed-test upload rate [Mbit/s] (None: a run folder written before the upload test).
    """

    quantiles: list[float]
    rtt_q_ms: NDArray[np.float64]
    components: list[str]
    mean_ms: NDArray[np.float64]
    terminals: list[str]
    serving_sat: NDArray[np.int32]
    handover: NDArray[np.bool_]
    download_mbps: NDArray[np.float64]
    upload_mbps: NDArray[np.float64] | None = None


@dataclass(frozen=True)
class TrafficSeries:
    """Per-step traffic of a run as plain arrays.

    Attributes
    ----------
    flow_src, flow_dst, flow_name : list of str, length F
    rate_mbps : ndarray, shape (M, T, F)
        Allocated rate [Mbit/s].
    demand_mbps : ndarray, shape (T, F)
        Demand [Mbit/s].
    bottleneck : ndarray of int32, shape (M, T, F)
        Resource that limits each flow (-1: its demand).
    """

    flow_src: list[str]
    flow_dst: list[str]
    flow_name: list[str]
    rate_mbps: NDArray[np.float32]
    demand_mbps: NDArray[np.float32]
    bottleneck: NDArray[np.int32]


class Results:
    """A run's results as labelled arrays: what :func:`starmesh.run` returns.

    The arrays are read on first use (from a run folder) or were kept in memory (a run without
    ``out``); either way the same numbers as the run folder's files.

    Attributes
    ----------
    summary : Summary
    variants : dict of str to Results
        The runs of the scenario's ``[[variants]]`` (empty without them).
    comparison : list of dict
        One row per variant and mode (empty without variants).
    path : Path or None
        The run folder (None for a run in memory).
    """

    def __init__(
        self,
        summary: Summary,
        epoch: np.datetime64,
        load_series: Any,
        load_traffic: Any = None,
        *,
        path: Any = None,
        variants: dict[str, Results] | None = None,
        comparison: list[dict[str, Any]] | None = None,
    ) -> None:
        self.summary = summary
        self.path = path
        self.variants: dict[str, Results] = variants or {}
        self.comparison: list[dict[str, Any]] = comparison or []
        self._epoch = epoch
        self._load_series = load_series
        self._load_traffic = load_traffic
        self._dataset: xr.Dataset | None = None

    def __repr__(self) -> str:
        s = self.summary
        where = f" at {self.path}" if self.path is not None else " (in memory)"
        more = f", variants {', '.join(self.variants)}" if self.variants else ""
        return (
            f"<starmesh.Results {s.scenario!r}{where}: {s.n_steps} steps of {s.step_s:g} s, "
            f"{len(s.pairs) // max(len(s.modes), 1)} pairs, modes {', '.join(s.modes)}{more}>"
        )

    @property
    def dataset(self) -> xr.Dataset:
        """Every per-step result as one :class:`xarray.Dataset`.

        Variables ``rtt`` [ms], ``hops``, ``src_sat``, ``dst_sat``, ``path_changed`` over
        ``(mode, time, pair)`` (the run's series pairs), with ``src`` and ``dst`` as coordinates of
        ``pair`` and ``time`` as datetime64 (UTC) with ``t_s`` beside it; with traffic also
        ``rate`` and ``bottleneck`` over ``(mode, time, flow)`` and ``demand`` over
        ``(time, flow)`` [Mbit/s].
        """
        if self._dataset is None:
            self._dataset = self._build()
        return self._dataset

    @property
    def rtt(self) -> xr.DataArray:
        """Round-trip time [ms], dims ``(mode, time, pair)``; NaN where unreachable."""
        return self.dataset["rtt"]

    @property
    def hops(self) -> xr.DataArray:
        """Links on each path, dims ``(mode, time, pair)``; -1 where unreachable."""
        return self.dataset["hops"]

    @property
    def rate(self) -> xr.DataArray:
        """Allocated rate of every flow [Mbit/s], dims ``(mode, time, flow)``."""
        if "rate" not in self.dataset:
            raise KeyError("this run has no traffic: add a [traffic] table to the scenario")
        return self.dataset["rate"]

    def _build(self) -> xr.Dataset:
        import xarray as xr

        s: RunSeries = self._load_series()
        time = self._epoch + np.round(s.t_s * 1e9).astype("timedelta64[ns]")
        coords: dict[str, Any] = {
            "mode": s.modes,
            "time": time,
            "t_s": ("time", s.t_s, {"units": "s", "long_name": "time since the run's start"}),
            "pair": [f"{a} -> {b}" for a, b in zip(s.src, s.dst, strict=True)],
            "src": ("pair", s.src),
            "dst": ("pair", s.dst),
        }
        dims = ("mode", "time", "pair")
        data: dict[str, Any] = {
            "rtt": (dims, s.rtt_ms, {"units": "ms", "long_name": "round-trip time"}),
            "hops": (dims, s.hops, {"long_name": "links on the path (-1: no route)"}),
            "src_sat": (dims, s.src_sat, {"long_name": "satellite serving src (-1: none)"}),
            "dst_sat": (dims, s.dst_sat, {"long_name": "satellite serving dst (-1: none)"}),
            "path_changed": (dims, s.path_changed, {"long_name": "path differs from last step"}),
        }
        if s.service is not None:
            sv = s.service
            coords["quantile"] = sv.quantiles
            coords["component"] = sv.components
            coords["terminal"] = sv.terminals
            data["rtt_service"] = (
                ("mode", "quantile", "time", "pair"),
                sv.rtt_q_ms,
                {"units": "ms", "long_name": "service-model RTT quantiles"},
            )
            data["rtt_component"] = (
                ("mode", "time", "pair", "component"),
                sv.mean_ms,
                {"units": "ms", "long_name": "mean RTT contribution of each component"},
            )
            data["serving_sat"] = (
                ("time", "terminal"),
                sv.serving_sat,
                {"long_name": "satellite the scheduler assigns (-1: none)"},
            )
            data["handover"] = (("time", "terminal"), sv.handover)
            data["download"] = (
                ("time", "terminal"),
                sv.download_mbps,
                {"units": "Mbit/s", "long_name": "speed-test download rate"},
            )
            if sv.upload_mbps is not None:
                data["upload"] = (
                    ("time", "terminal"),
                    sv.upload_mbps,
                    {"units": "Mbit/s", "long_name": "speed-test upload rate"},
                )
        t: TrafficSeries | None = self._load_traffic() if self._load_traffic else None
        if t is not None:
            coords["flow"] = np.arange(len(t.flow_src))
            coords["flow_src"] = ("flow", t.flow_src)
            coords["flow_dst"] = ("flow", t.flow_dst)
            coords["flow_name"] = ("flow", t.flow_name)
            data["rate"] = (
                ("mode", "time", "flow"),
                t.rate_mbps,
                {"units": "Mbit/s", "long_name": "max-min fair rate"},
            )
            data["demand"] = (("time", "flow"), t.demand_mbps, {"units": "Mbit/s"})
            data["bottleneck"] = (
                ("mode", "time", "flow"),
                t.bottleneck,
                {"long_name": "resource limiting the flow (resources.parquet; -1: demand)"},
            )
        return xr.Dataset(
            data, coords=coords, attrs={"scenario": self.summary.scenario, "units_time": "UTC"}
        )


def series_from_chunks(plan: RunPlan, kept: list[KeptChunk]) -> RunSeries:
    """The series pairs' per-step results of a run computed in memory."""
    sel = plan.series_idx
    src, dst = plan.pair_names
    results = [k.res for k in kept]  # cut to the series pairs
    rtt = np.concatenate([r.rtt_s for r in results], axis=1) * 1e3
    unreachable = ~np.isfinite(rtt)
    rtt[unreachable] = np.nan

    def cat(name: str, dtype: Any) -> NDArray[Any]:
        x = np.concatenate([getattr(r, name) for r in results], axis=1).astype(dtype)
        if name != "changed":
            x[unreachable] = -1
        return x

    return RunSeries(
        t_s=np.concatenate([r.t_s for r in results]),
        modes=list(plan.modes),
        src=[src[i] for i in sel],
        dst=[dst[i] for i in sel],
        rtt_ms=rtt,
        hops=cat("hops", np.int16),
        src_sat=cat("src_sat", np.int32),
        dst_sat=cat("dst_sat", np.int32),
        path_changed=cat("changed", bool),
        service=_service_series(plan, results),
    )


def _service_series(plan: RunPlan, results: list[ChunkResult]) -> ServiceSeries | None:
    """The service model's series of a run computed in memory; ``results`` are cut to the
    series pairs (:attr:`KeptChunk.res`)."""
    from .service.latency import COMPONENTS

    sv = plan.service
    if sv is None:
        return None
    parts = [r.service for r in results if r.service is not None]
    q = np.concatenate([x.rtt_q_s for x in parts], axis=2) * 1e3
    q[~np.isfinite(q)] = np.nan
    mean = np.concatenate([x.mean_s for x in parts], axis=1) * 1e3
    return ServiceSeries(
        quantiles=list(sv.quantiles),
        rtt_q_ms=q,
        components=list(COMPONENTS),
        mean_ms=mean,
        terminals=[plan.sites.names[int(i)] for i in sv.terminals],
        serving_sat=np.concatenate([x.serving for x in parts]),
        handover=np.concatenate([x.handover for x in parts]),
        download_mbps=np.concatenate([x.download_bps for x in parts]) / 1e6,
        upload_mbps=np.concatenate([x.upload_bps for x in parts]) / 1e6,
    )


def traffic_from_chunks(plan: RunPlan, kept: list[KeptChunk]) -> TrafficSeries | None:
    """Per-step traffic of a run computed in memory (None without traffic)."""
    tp = plan.traffic
    if tp is None:
        return None
    results = [k.res for k in kept]
    names = plan.sites.names
    f = tp.flows
    return TrafficSeries(
        flow_src=[names[i] for i in f.src_site],
        flow_dst=[names[i] for i in f.dst_site],
        flow_name=list(f.names),
        rate_mbps=(
            np.concatenate([r.rate_bps for r in results if r.rate_bps is not None], axis=1) / 1e6
        ).astype(np.float32),
        # As flows.parquet writes it.
        demand_mbps=np.concatenate(
            [r.demand_bps for r in results if r.demand_bps is not None]
        ).astype(np.float32)
        / np.float32(1e6),
        bottleneck=np.concatenate(
            [r.bottleneck for r in results if r.bottleneck is not None], axis=1
        ),
    )
