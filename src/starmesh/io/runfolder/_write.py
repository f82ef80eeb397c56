"""Writing a run folder: table schemas, the folder's fixed files, and one chunk at a time."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ...engine import ChunkResult, reconcile_fstate, visibility_terminals
from ...errors import RunFolderError
from ...results import KeptChunk
from ._files import ChunkStore, Manifest, atomic_write_bytes, atomic_write_table
from ._names import (
    COMPARISON,
    COVERAGE_GEOJSON,
    COVERAGE_SUMMARY,
    COVERAGE_TABLE,
    FLOW_INFO,
    FLOWS,
    FSTATE,
    ISL_SPANS,
    ISLS,
    LINKS,
    LOCK,
    MANIFEST,
    PACKETS_SUMMARY,
    PACKETS_TABLES,
    PARTIAL,
    REPORT,
    RESOURCES,
    RTT,
    SCENARIO,
    SERVICE,
    SITES,
    SUMMARY,
    SWEEP_SPEC,
    SWEEP_SUMMARY,
    SWEEP_TABLE,
    TERMINALS,
    VARIANTS_DIR,
    VARIANTS_SPEC,
    VISIBILITY,
    chunk_name,
)

if TYPE_CHECKING:
    from ...plan import RunPlan

RTT_SCHEMA = pa.schema(
    [
        ("t_s", pa.float64()),
        ("mode", pa.string()),
        ("src", pa.string()),
        ("dst", pa.string()),
        ("rtt_ms", pa.float64()),
        ("hops", pa.int16()),
        ("src_sat", pa.int32()),
        ("dst_sat", pa.int32()),
        ("path_changed", pa.bool_()),
    ]
)


def _series_rows(
    plan: RunPlan, t_s: NDArray[np.float64]
) -> tuple[dict[str, Any], Callable[[NDArray[Any]], NDArray[Any]]]:
    """The layout of a chunk's per-pair tables (``rtt.parquet``, ``service.parquet``): the
    series pairs' rows ordered by time, then mode, then pair.

    Returns the key columns (``t_s``, ``mode``, ``src``, ``dst``) and the function that lays an
    array of shape ``(M, T, Ps)`` (the series pairs, as :class:`~starmesh.results.KeptChunk`
    holds them) out as those rows.
    """
    n_m, n_t = len(plan.modes), t_s.size
    names = plan.sites.names
    sel = plan.series_idx
    n_p = sel.size
    pair = np.tile(np.arange(n_p), n_t * n_m)
    mode_idx = np.tile(np.repeat(np.arange(n_m), n_p), n_t)

    def rows(x: NDArray[Any]) -> NDArray[Any]:
        return np.transpose(x, (1, 0, 2)).reshape(-1)

    keys = {
        "t_s": np.repeat(t_s, n_m * n_p),
        "mode": pa.array(list(plan.modes)).take(mode_idx),
        "src": pa.array([names[i] for i in plan.problem.pair_src[sel]]).take(pair),
        "dst": pa.array([names[i] for i in plan.problem.pair_dst[sel]]).take(pair),
    }
    return keys, rows


def chunk_table(plan: RunPlan, kept: KeptChunk) -> pa.Table:
    """Rows of one chunk, ordered by time, then mode, then pair; nulls where unreachable."""
    res = kept.res
    keys, rows = _series_rows(plan, res.t_s)
    rtt = rows(res.rtt_s) * 1e3
    unreachable = ~np.isfinite(rtt)
    return pa.table(
        {
            **keys,
            "rtt_ms": pa.array(rtt, mask=unreachable),
            "hops": pa.array(rows(res.hops), mask=unreachable),
            "src_sat": pa.array(rows(res.src_sat), mask=unreachable),
            "dst_sat": pa.array(rows(res.dst_sat), mask=unreachable),
            "path_changed": pa.array(rows(res.changed)),
        },
        schema=RTT_SCHEMA,
    )


def service_schema(quantiles: tuple[float, ...]) -> pa.Schema:
    """Columns of ``service.parquet``: time, mode, pair, one column per RTT quantile [ms] and
    per component's mean contribution [ms], and the access queues' utilisations."""
    from ...results import quantile_name
    from ...service.latency import COMPONENTS

    return pa.schema(
        [("t_s", pa.float64()), ("mode", pa.string()), ("src", pa.string()), ("dst", pa.string())]
        + [(quantile_name(q), pa.float64()) for q in quantiles]
        + [(f"{c}_ms", pa.float64()) for c in COMPONENTS]
        + [("rho_user", pa.float32()), ("rho_feeder", pa.float32())]
    )


def service_table(plan: RunPlan, kept: KeptChunk) -> pa.Table:
    """Service-model rows of one chunk (series pairs), ordered as ``rtt.parquet``; nulls where
    unreachable."""
    from ...results import quantile_name
    from ...service.latency import COMPONENTS

    res = kept.res
    sv, svp = res.service, plan.service
    assert sv is not None and svp is not None
    keys, rows = _series_rows(plan, res.t_s)
    cols: dict[str, Any] = dict(keys)
    for j, q in enumerate(svp.quantiles):
        x = rows(sv.rtt_q_s[:, j]) * 1e3
        cols[quantile_name(q)] = pa.array(x, mask=~np.isfinite(x))
    for c, comp in enumerate(COMPONENTS):
        x = rows(sv.mean_s[..., c]) * 1e3
        cols[f"{comp}_ms"] = pa.array(x, mask=~np.isfinite(x))
    cols["rho_user"] = rows(sv.rho_user).astype(np.float32)
    cols["rho_feeder"] = rows(sv.rho_feeder).astype(np.float32)
    return pa.table(cols, schema=service_schema(svp.quantiles))


TERMINALS_SCHEMA = pa.schema(
    [
        ("t_s", pa.float64()),
        ("terminal", pa.string()),
        ("serving_sat", pa.int32()),
        ("handover", pa.bool_()),
        ("download_mbps", pa.float64()),
        ("upload_mbps", pa.float64()),
    ]
)


def terminal_table(plan: RunPlan, res: ChunkResult) -> pa.Table:
    """Each terminal's scheduled satellite (null: none), handover flag and speed tests (download
    and upload) per step."""
    sv, svp = res.service, plan.service
    assert sv is not None and svp is not None
    n_t, n_g = sv.serving.shape
    names = pa.array([plan.sites.names[int(i)] for i in svp.terminals])
    serving = sv.serving.reshape(-1)
    return pa.table(
        {
            "t_s": np.repeat(res.t_s, n_g),
            "terminal": names.take(np.tile(np.arange(n_g), n_t)),
            "serving_sat": pa.array(serving, mask=serving < 0),
            "handover": sv.handover.reshape(-1),
            "download_mbps": sv.download_bps.reshape(-1) / 1e6,
            "upload_mbps": sv.upload_bps.reshape(-1) / 1e6,
        },
        schema=TERMINALS_SCHEMA,
    )


FSTATE_SCHEMA = pa.schema(
    [
        ("t_s", pa.float64()),
        ("mode", pa.string()),
        ("node", pa.int32()),
        ("dst", pa.int32()),
        ("next_hop", pa.int32()),
    ]
)


VISIBILITY_SCHEMA = pa.schema(
    [
        ("t_s", pa.float64()),
        ("terminal", pa.string()),
        ("n_in_view", pa.int32()),
        ("serving_sat", pa.int32()),
        ("serving_elevation_deg", pa.float64()),
        ("handover", pa.bool_()),
    ]
)


def visibility_table(plan: RunPlan, res: ChunkResult) -> pa.Table:
    """One row per step and terminal (:data:`VISIBILITY_SCHEMA`): satellites in view, the
    serving satellite (-1: none), its elevation [deg] (null: none) and whether the step is a
    handover (the serving satellite changed from one satellite to another)."""
    v = res.visibility
    assert v is not None
    terms = visibility_terminals(plan)
    n_t, n_g = v.n_in_view.shape
    names = pa.array([plan.sites.names[g] for g in terms])
    el = np.degrees(v.serving_elevation_rad).reshape(-1)
    return pa.Table.from_arrays(
        [
            pa.array(np.repeat(res.t_s, n_g)),
            names.take(np.tile(np.arange(n_g), n_t)),
            pa.array(v.n_in_view.reshape(-1)),
            pa.array(v.serving.reshape(-1)),
            pa.array(el, mask=np.isnan(el)),
            pa.array(v.handover.reshape(-1)),
        ],
        schema=VISIBILITY_SCHEMA,
    )


def fstate_table(plan: RunPlan, rows_by_mode: dict[str, tuple[NDArray[Any], ...]]) -> pa.Table:
    """Forwarding-state entries of one chunk (all at the run's first step, then changes)."""
    parts = []
    for mode, (t_s, node, dst, nh) in rows_by_mode.items():
        parts.append(
            pa.table(
                {
                    "t_s": t_s,
                    "mode": pa.array([mode]).take(np.zeros(t_s.size, np.int64)),
                    "node": node,
                    "dst": dst,
                    "next_hop": nh,
                },
                schema=FSTATE_SCHEMA,
            )
        )
    return pa.concat_tables(parts)


#: What starmesh writes into a run, variants or sweep folder (anything else is someone's file).
RUN_ENTRIES = frozenset(
    {
        SCENARIO,
        VARIANTS_SPEC,
        SUMMARY,
        MANIFEST,
        PARTIAL,
        SITES,
        ISLS,
        ISL_SPANS,
        RTT,
        FSTATE,
        FLOWS,
        LINKS,
        FLOW_INFO,
        RESOURCES,
        COMPARISON,
        VARIANTS_DIR,
        SWEEP_SPEC,
        SWEEP_TABLE,
        SWEEP_SUMMARY,
        REPORT,
        SERVICE,
        TERMINALS,
        LOCK,
        LOCK + ".pid",
        PACKETS_SUMMARY,
        *PACKETS_TABLES,
        VISIBILITY,
        COVERAGE_TABLE,
        COVERAGE_GEOJSON,
        COVERAGE_SUMMARY,
    }
)
#: Files whose presence marks a folder as starmesh's.
RUN_MARKERS = (MANIFEST, SCENARIO, SWEEP_SPEC, VARIANTS_SPEC, COVERAGE_SUMMARY)


def _ours(name: str) -> bool:
    # ".<name>.tmp": a file being written when a run was killed.
    return name in RUN_ENTRIES or (name.startswith(".") and name.endswith(".tmp"))


def check_run_dir(out: Path, *, force: bool) -> None:
    """Refuse an output folder that cannot be used, before anything is written.

    A non-empty folder needs ``force``, and ``force`` replaces only a folder that starmesh wrote
    (it holds a manifest, ``scenario.toml``, ``sweep.toml`` or ``variants.toml`` and nothing
    else), never a symlink, the working directory or a folder above it.

    Raises
    ------
    RunFolderError
    """
    if out.is_symlink():
        raise RunFolderError(
            f"output {str(out)!r} is a symlink: give the real folder, or another --out"
        )
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"output {str(out)!r} is a file: choose another --out")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise RunFolderError(f"output {str(out)!r} is below a file: choose another --out")
    if not out.is_dir():
        return
    present = [p.name for p in out.iterdir() if p.name not in (LOCK, LOCK + ".pid")]
    if not present:
        return
    if not force:
        raise RunFolderError(
            f"output folder {str(out)!r} is not empty: choose another --out, "
            "or pass --force to replace the starmesh run in it"
        )
    here = Path.cwd().resolve()
    real = out.resolve()
    if real == here or real in here.parents:
        raise RunFolderError(
            f"--force would delete {str(out)!r}, which holds the working directory: "
            "choose another --out"
        )
    if not any((out / m).is_file() for m in RUN_MARKERS):
        raise RunFolderError(
            f"--force replaces only starmesh run folders, and {str(out)!r} is not one "
            "(no manifest.json or scenario.toml): choose another --out"
        )
    foreign = sorted(n for n in present if not _ours(n))
    if foreign:
        raise RunFolderError(
            f"--force would delete files starmesh did not write in {str(out)!r} "
            f"(e.g. {foreign[0]!r}): move them, or choose another --out"
        )


def prepare_run_dir(out: Path, *, force: bool, keep: tuple[str, ...] = ()) -> None:
    """Create ``out``, or empty it (``force``, checked by :func:`check_run_dir`) but for the
    entries named in ``keep`` and the folder's lock."""
    keep = (*keep, LOCK, LOCK + ".pid")
    if out.exists():
        present = [p for p in out.iterdir() if p.name not in keep]
        if present:
            check_run_dir(out, force=force)
            for p in present:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def write_chunk(
    plan: RunPlan,
    out: Path,
    index: int,
    kept: KeptChunk,
    store: ChunkStore,
    manifest: Manifest,
    prev_last: dict[str, NDArray[np.int32]] | None,
) -> None:
    """Write one chunk's files atomically, then record the chunk in the manifest."""
    name = chunk_name(index)
    files = []
    res = kept.res
    extra: dict[str, Any] = dict(kept.counters)
    if res.fstate is not None:
        assert res.fstate_last is not None
        rows = dict(res.fstate)
        if res.start > 0:
            if prev_last is None:
                raise RunFolderError(f"chunk {index} has no predecessor state to follow")
            rows = {m: reconcile_fstate(plan, res, m, prev_last[m]) for m in res.fstate}
        path = out / FSTATE / name
        atomic_write_table(path, fstate_table(plan, rows))
        files.append(path)
        for mode, last in res.fstate_last.items():
            extra[f"fstate_last:{mode}"] = last
    path = out / RTT / name
    atomic_write_table(path, chunk_table(plan, kept))
    files.append(path)
    if res.isl_spans is not None:
        path = out / ISL_SPANS / name
        span = res.isl_spans
        atomic_write_table(
            path,
            pa.table(
                {
                    "a": span[0].astype(np.int32),
                    "b": span[1].astype(np.int32),
                    "first_step": span[2],
                    "last_step": span[3],
                }
            ),
        )
        files.append(path)
    if res.visibility is not None:
        path = out / VISIBILITY / name
        atomic_write_table(path, visibility_table(plan, res))
        files.append(path)
    if res.rate_bps is not None:
        assert res.bottleneck is not None and res.demand_bps is not None and res.load is not None
        n_m, n_t, n_f = res.rate_bps.shape
        modes = pa.array(list(plan.modes))
        path = out / FLOWS / name
        atomic_write_table(
            path,
            pa.table(
                {
                    "t_s": np.repeat(res.t_s, n_m * n_f),
                    "mode": modes.take(np.tile(np.repeat(np.arange(n_m), n_f), n_t)),
                    "flow": np.tile(np.arange(n_f, dtype=np.int32), n_t * n_m),
                    "demand_mbps": np.repeat(res.demand_bps[:, None, :], n_m, axis=1)
                    .reshape(-1)
                    .astype(np.float32)
                    / np.float32(1e6),
                    "rate_mbps": (np.transpose(res.rate_bps, (1, 0, 2)).reshape(-1) / 1e6).astype(
                        np.float32
                    ),
                    "bottleneck": np.transpose(res.bottleneck, (1, 0, 2)).reshape(-1),
                }
            ),
        )
        files.append(path)
        t_s, m_idx, r_idx, util = res.load
        path = out / LINKS / name
        atomic_write_table(
            path,
            pa.table(
                {
                    "t_s": t_s,
                    "mode": modes.take(m_idx.astype(np.int64)),
                    "resource": r_idx,
                    "utilisation": util,
                }
            ),
        )
        files.append(path)
    if res.service is not None:
        for folder, table in (
            (SERVICE, service_table(plan, kept)),
            (TERMINALS, terminal_table(plan, res)),
        ):
            path = out / folder / name
            atomic_write_table(path, table)
            files.append(path)
    files += store.write(index, kept.series_s, extra)
    manifest.record(index, files)


def write_traffic_tables(plan: RunPlan, out: Path) -> None:
    """``flow_info.parquet`` (what each flow index is) and ``resources.parquet``."""
    tp = plan.traffic
    assert tp is not None
    names = plan.sites.names
    f = tp.flows
    atomic_write_table(
        out / FLOW_INFO,
        pa.table(
            {
                "flow": np.arange(f.src_site.size, dtype=np.int32),
                "name": list(f.names),
                "src": [names[i] for i in f.src_site],
                "dst": [names[i] for i in f.dst_site],
                "peak_demand_mbps": f.demand_bps / 1e6,
            }
        ),
    )
    r = tp.resources
    atomic_write_table(
        out / RESOURCES,
        pa.table(
            {
                "resource": np.arange(r.capacity_bps.size, dtype=np.int32),
                "label": r.labels(list(names)),
                "capacity_mbps": r.capacity_bps / 1e6,
            }
        ),
    )


def fstate_last(plan: RunPlan, store: ChunkStore, index: int) -> dict[str, NDArray[np.int32]]:
    """Last forwarding state of chunk ``index`` per mode (what the next chunk's first step is
    taken against)."""
    extra = store.extra(index)
    return {m: extra[f"fstate_last:{m}"] for m in plan.modes if f"fstate_last:{m}" in extra}


def write_run_header(plan: RunPlan, out: Path, resolved: bytes) -> None:
    """The files of a run that do not depend on time: ``scenario.toml`` (resolved),
    ``sites.parquet``, ``isls.parquet`` and, with traffic, ``flow_info.parquet`` and
    ``resources.parquet``; and the chunk folders."""
    atomic_write_bytes(out / SCENARIO, resolved)
    s = plan.sites
    atomic_write_table(
        out / SITES,
        pa.table(
            {
                "site_idx": np.arange(len(s), dtype=np.int32),
                "name": list(s.names),
                "kind": list(s.kinds),
                "lat_deg": np.degrees(s.lat_rad),
                "lon_deg": np.degrees(s.lon_rad),
                "alt_m": s.alt_m,
            }
        ),
    )
    atomic_write_table(out / ISLS, pa.table({"a": plan.isl_edges[:, 0], "b": plan.isl_edges[:, 1]}))
    if plan.traffic is not None:
        write_traffic_tables(plan, out)
    make_chunk_dirs(plan, out)


def make_chunk_dirs(plan: RunPlan, out: Path) -> None:
    """The folders that hold one Parquet file per chunk."""
    (out / RTT).mkdir(exist_ok=True)
    if plan.isl is not None:
        (out / ISL_SPANS).mkdir(exist_ok=True)
    if visibility_terminals(plan).size:
        (out / VISIBILITY).mkdir(exist_ok=True)
    if plan.traffic is not None:
        (out / FLOWS).mkdir(exist_ok=True)
        (out / LINKS).mkdir(exist_ok=True)
    if plan.forwarding_state:
        (out / FSTATE).mkdir(exist_ok=True)
    if plan.service is not None:
        (out / SERVICE).mkdir(exist_ok=True)
        (out / TERMINALS).mkdir(exist_ok=True)


def write_coverage_folder(result: Any, out: Path, report_html: str | None = None) -> list[Path]:
    """Write ``starmesh coverage``'s files atomically: ``coverage.parquet`` (one row per cell
    and statistic), ``coverage.geojson``, ``coverage_summary.json`` and, when given,
    ``report.html``. ``out`` must have been checked (:func:`check_run_dir`) and locked."""
    import json

    from ...coverage import coverage_geojson, coverage_table

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_table(out / COVERAGE_TABLE, coverage_table(result))
    text = json.dumps(coverage_geojson(result), separators=(",", ":"), sort_keys=True,
                      allow_nan=False)  # fmt: skip
    atomic_write_bytes(out / COVERAGE_GEOJSON, (text + "\n").encode())
    summary = {"coverage": result.summary(), **result.meta_dict()}
    atomic_write_bytes(
        out / COVERAGE_SUMMARY,
        (json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n").encode(),
    )
    written = [out / COVERAGE_TABLE, out / COVERAGE_GEOJSON, out / COVERAGE_SUMMARY]
    if report_html is not None:
        atomic_write_bytes(out / REPORT, report_html.encode())
        written.append(out / REPORT)
    return written
