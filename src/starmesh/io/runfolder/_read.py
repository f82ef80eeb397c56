"""Read what the report shows from a run folder.

Only ``summary.json`` and ``sites.parquet`` are required. Everything else (``rtt.parquet``,
``scenario.toml``, ``isls.parquet``, ``fstate.parquet``, and files that later versions may
write: ``flows.parquet``, ``comparison.json``, ``disruptions.json``) is read when present; a
missing or unreadable optional file gives ``None`` (or a :class:`Note` saying why), never an
exception, so a report can always be written for a finished run.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq
from numpy.typing import NDArray

from ...errors import StarmeshError
from ...plan import build_constellation, build_sites, scenario_propagator
from ...propagation import Propagator
from ...results import RunSeries, ServiceSeries, Summary, TrafficSeries, quantile_name
from ...scenario import load_scenario
from ...timegrid import TimeGrid, parse_utc
from ._files import verify_run
from ._names import (
    FLOW_INFO,
    FLOWS,
    FSTATE,
    ISL_SPANS,
    ISLS,
    PACKETS_TABLES,
    RTT,
    SCENARIO,
    SERVICE,
    SITES,
    SUMMARY,
    TERMINALS,
    VISIBILITY,
)

#: Columns of ``flows.parquet`` that may hold a terminal's rate, with their factor to bit/s.
_RATE_COLUMNS = (
    ("rate_bps", 1.0),
    ("throughput_bps", 1.0),
    ("allocated_bps", 1.0),
    ("rate_mbps", 1e6),
    ("throughput_mbps", 1e6),
)
#: Columns of ``flows.parquet`` that may name the terminal a flow belongs to.
_TERMINAL_COLUMNS = ("terminal", "src")


class Note(str):
    """A sentence the report shows instead of a plot or table that cannot be drawn."""


@dataclass(frozen=True)
class SiteTable:
    """The run's ground sites, from ``sites.parquet``.

    Attributes
    ----------
    names, kinds : list of str, length G
        Site names and kinds (``"terminal"``, ``"gateway"``, ``"pop"``).
    lat_deg, lon_deg : ndarray, shape (G,)
        Geodetic latitude and longitude [deg].
    """

    names: list[str]
    kinds: list[str]
    lat_deg: NDArray[np.float64]
    lon_deg: NDArray[np.float64]

    def index(self, name: str) -> int:
        """Index of the site called ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise StarmeshError(
                f"no site {name!r} in this run: use one of {', '.join(self.names[:20])}"
            ) from None


@dataclass(frozen=True)
class RunData:
    """The always-present part of a run folder.

    Attributes
    ----------
    run_dir : Path
    summary : dict
        ``summary.json``.
    scenario : dict
        The resolved ``scenario.toml`` (empty if it cannot be read).
    sites : SiteTable
    epoch : datetime
        UTC time of ``t_s == 0``.
    series_pairs : list of (str, str)
        The pairs whose full RTT series are in ``rtt.parquet``, in summary order.
    """

    run_dir: Path
    summary: dict[str, Any]
    scenario: dict[str, Any]
    sites: SiteTable
    epoch: datetime
    series_pairs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def modes(self) -> list[str]:
        """Routing modes of the run, in run order."""
        return [str(m) for m in self.summary.get("modes", [])]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Every routed pair, in summary order."""
        seen: dict[tuple[str, str], None] = {}
        for row in self.summary["pairs"]:
            seen[(row["src"], row["dst"])] = None
        return list(seen)


@dataclass(frozen=True)
class Series:
    """Per-step results of some pairs, from ``rtt.parquet``.

    Attributes
    ----------
    t_s : ndarray, shape (T,)
        Step times [s since the epoch].
    modes : list of str, length M
    pairs : list of (str, str), length P
    rtt_ms : ndarray, shape (M, P, T)
        Round-trip time [ms]; NaN where unreachable or absent.
    src_sat, dst_sat : ndarray of int32, shape (M, P, T)
        Serving satellites at the two ends; -1 where unreachable or absent.
    """

    t_s: NDArray[np.float64]
    modes: list[str]
    pairs: list[tuple[str, str]]
    rtt_ms: NDArray[np.float64]
    src_sat: NDArray[np.int32]
    dst_sat: NDArray[np.int32]


@dataclass(frozen=True)
class Throughput:
    """Rate per terminal over time, summed over its flows (``flows.parquet``).

    Attributes
    ----------
    t_s : ndarray, shape (T,)
    modes : list of str, length M
        ``[""]`` when the file has no ``mode`` column.
    terminals : list of str, length K
    rate_bps : ndarray, shape (M, K, T)
        Sum of the terminal's flow rates [bit/s]; NaN where the file has no row.
    """

    t_s: NDArray[np.float64]
    modes: list[str]
    terminals: list[str]
    rate_bps: NDArray[np.float64]


# --- Required files -------------------------------------------------------------------------


def _bad_folder(run_dir: Path, what: str) -> StarmeshError:
    return StarmeshError(
        f"{str(run_dir)!r} is not a finished run folder: {what}; pass a folder written by "
        "`starmesh run`"
    )


def read_run(run_dir: Path | str, *, verify: bool = True) -> RunData:
    """Read the summary, sites and resolved scenario of a run folder.

    Parameters
    ----------
    run_dir : Path or str
        A folder written by ``starmesh run``.

    Returns
    -------
    RunData

    Raises
    ------
    StarmeshError
        If the folder does not exist or lacks a readable ``summary.json`` or ``sites.parquet``.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise StarmeshError(
            f"{str(run_dir)!r} is a file, not a run folder: pass the folder written by "
            "`starmesh run`"
        )
    if not run_dir.is_dir():
        raise StarmeshError(
            f"run folder {str(run_dir)!r} not found: pass a folder written by `starmesh run`"
        )
    path = run_dir / SUMMARY
    if not path.is_file():
        raise _bad_folder(run_dir, "it has no summary.json (the run did not finish)")
    if verify:
        verify_run(run_dir)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad_folder(run_dir, f"summary.json cannot be read ({exc})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("pairs"), list):
        raise _bad_folder(run_dir, "summary.json has no list of pairs")
    for key in ("modes", "start_utc", "n_steps", "step_s"):
        if key not in summary:
            raise _bad_folder(run_dir, f"summary.json has no {key!r}")
    try:
        epoch = parse_utc(str(summary["start_utc"]))
    except StarmeshError as exc:
        raise _bad_folder(run_dir, f"summary.json start_utc: {exc}") from None
    sites = _read_sites(run_dir)
    return RunData(
        run_dir=run_dir,
        summary=summary,
        scenario=_read_toml(run_dir / SCENARIO),
        sites=sites,
        epoch=epoch,
        series_pairs=_series_pairs(run_dir, summary),
    )


def _read_sites(run_dir: Path) -> SiteTable:
    path = run_dir / SITES
    if not path.is_file():
        raise _bad_folder(run_dir, "it has no sites.parquet")
    try:
        t = pq.read_table(path, columns=["name", "kind", "lat_deg", "lon_deg"])
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise _bad_folder(run_dir, f"sites.parquet cannot be read ({exc})") from None
    return SiteTable(
        names=[str(x) for x in t["name"].to_pylist()],
        kinds=[str(x) for x in t["kind"].to_pylist()],
        lat_deg=t["lat_deg"].to_numpy().astype(np.float64),
        lon_deg=t["lon_deg"].to_numpy().astype(np.float64),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _rtt_dataset(run_dir: Path) -> pa_ds.Dataset | None:
    path = run_dir / RTT
    if not path.exists():
        return None
    try:
        # Files beginning with "." (a chunk being written) are skipped by default.
        return pa_ds.dataset(path, format="parquet")
    except (OSError, pa.ArrowException):
        return None


def _series_pairs(run_dir: Path, summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The pairs in ``rtt.parquet``: every chunk holds the same ones, so read one file."""
    ds = _rtt_dataset(run_dir)
    if ds is None or not ds.files:
        return []
    try:
        first = sorted(ds.files)[0]
        t = pq.read_table(first, columns=["src", "dst"])
    except (OSError, pa.ArrowException, KeyError):
        return []
    present = set(zip(t["src"].to_pylist(), t["dst"].to_pylist(), strict=True))
    order = [(r["src"], r["dst"]) for r in summary["pairs"]]
    return list(dict.fromkeys(p for p in order if p in present))


# --- RTT series -----------------------------------------------------------------------------


def read_series(run: RunData, pairs: list[tuple[str, str]]) -> Series | None:
    """The per-step RTT and serving satellites of ``pairs`` (in every mode).

    Parameters
    ----------
    run : RunData
    pairs : list of (str, str)
        Pairs to read; pairs without a series are left NaN.

    Returns
    -------
    Series or None
        None if the run has no readable ``rtt.parquet`` or no pair is asked for.
    """
    ds = _rtt_dataset(run.run_dir)
    if ds is None or not pairs:
        return None
    modes = run.modes
    names = sorted({s for p in pairs for s in p})
    cols = ["t_s", "mode", "src", "dst", "rtt_ms", "src_sat", "dst_sat"]
    try:
        t = ds.to_table(
            columns=cols,
            filter=pc.field("src").isin(names) & pc.field("dst").isin(names),
        )
    except (OSError, pa.ArrowException, KeyError):
        return None
    times = np.unique(t["t_s"].to_numpy())
    keys = pc.binary_join_element_wise(t["src"], t["dst"], "\x1f")
    p_idx = pc.index_in(keys, value_set=pa.array([f"{a}\x1f{b}" for a, b in pairs]))
    m_idx = pc.index_in(t["mode"], value_set=pa.array(modes))
    ok = pc.and_(pc.is_valid(p_idx), pc.is_valid(m_idx))
    t = t.filter(ok)
    p = p_idx.filter(ok).to_numpy(zero_copy_only=False).astype(np.int64)
    m = m_idx.filter(ok).to_numpy(zero_copy_only=False).astype(np.int64)
    k = np.searchsorted(times, t["t_s"].to_numpy())
    shape = (len(modes), len(pairs), times.size)
    rtt = np.full(shape, np.nan)
    src_sat = np.full(shape, -1, np.int32)
    dst_sat = np.full(shape, -1, np.int32)
    rtt[m, p, k] = t["rtt_ms"].to_numpy(zero_copy_only=False).astype(np.float64)
    src_sat[m, p, k] = t["src_sat"].fill_null(-1).to_numpy().astype(np.int32)
    dst_sat[m, p, k] = t["dst_sat"].fill_null(-1).to_numpy().astype(np.int32)
    return Series(
        t_s=times, modes=modes, pairs=list(pairs), rtt_ms=rtt, src_sat=src_sat, dst_sat=dst_sat
    )


def read_availability(
    run: RunData,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int] | None:
    """Share of the series pairs with a route, at every step and in every mode.

    Returns
    -------
    t_s : ndarray, shape (T,)
    available : ndarray, shape (M, T)
        Reachable series pairs over series pairs, in [0, 1]; NaN where a mode has no row.
    n_pairs : int
        Number of series pairs the share is taken over.

    None if the run has no readable ``rtt.parquet``.
    """
    ds = _rtt_dataset(run.run_dir)
    if ds is None:
        return None
    # Counted a batch at a time, so memory does not grow with the length of the run.
    parts = []
    try:
        for batch in ds.to_batches(columns=["t_s", "mode", "rtt_ms"]):
            if batch.num_rows:
                ok = pc.cast(pc.is_valid(batch["rtt_ms"]), pa.int64())
                t = pa.table({"t_s": batch["t_s"], "mode": batch["mode"], "ok": ok})
                parts.append(
                    t.group_by(["t_s", "mode"]).aggregate([("ok", "sum"), ("ok", "count")])
                )
    except (OSError, pa.ArrowException, KeyError):
        return None
    if not parts:
        return None
    g = (
        pa.concat_tables(parts)
        .group_by(["t_s", "mode"])
        .aggregate([("ok_sum", "sum"), ("ok_count", "sum")])
    )
    times = np.unique(g["t_s"].to_numpy())
    m = pc.index_in(g["mode"], value_set=pa.array(run.modes))
    ok = pc.is_valid(m)
    g = g.filter(ok)
    mi = m.filter(ok).to_numpy(zero_copy_only=False).astype(np.int64)
    k = np.searchsorted(times, g["t_s"].to_numpy())
    reach = g["ok_sum_sum"].to_numpy().astype(np.float64)
    total = g["ok_count_sum"].to_numpy().astype(np.float64)
    out = np.full((len(run.modes), times.size), np.nan)
    out[mi, k] = reach / np.maximum(total, 1.0)
    return times, out, len(run.series_pairs)


# --- Forwarding state -----------------------------------------------------------------------


def read_visibility(run_dir: Path) -> pa.Table | None:
    """``visibility.parquet``: satellites in view, serving satellite, its elevation and
    handovers per step and terminal, sorted by time then terminal order of the run (None if
    the run has none)."""
    path = Path(run_dir) / VISIBILITY
    if not path.is_dir():
        return None
    files = sorted(path.glob("part-*.parquet"))
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f) for f in files])


def read_paths(
    run: RunData, n_sats: int, pairs: list[tuple[str, str]], t_s: NDArray[np.float64]
) -> dict[tuple[str, str, str], list[list[int]]] | None:
    """Full node paths of ``pairs`` at the times ``t_s``, replayed from ``fstate.parquet``.

    Parameters
    ----------
    run : RunData
    n_sats : int
        ``S``: node ``n < S`` is satellite ``n``, node ``S + g`` is ground site ``g``.
    pairs : list of (str, str)
    t_s : ndarray, shape (F,)
        Times [s since the epoch], each one a step of the run.

    Returns
    -------
    dict or None
        ``{(mode, src, dst): [path at t_s[0], path at t_s[1], ...]}``, each path a list of
        node numbers from ``src`` to ``dst`` (empty where there is no route). None when the run
        has no forwarding state.
    """
    path = run.run_dir / FSTATE
    if not path.is_dir():
        return None
    try:
        ds = pa_ds.dataset(path, format="parquet")
        dst_nodes = sorted({n_sats + run.sites.index(b) for _a, b in pairs})
        t = ds.to_table(
            columns=["t_s", "mode", "node", "dst", "next_hop"],
            filter=pc.field("dst").isin(dst_nodes),
        )
    except (OSError, pa.ArrowException, KeyError, StarmeshError):
        return None
    n_nodes = n_sats + len(run.sites.names)
    mode_col = np.asarray(t["mode"].to_pylist(), dtype=object)
    ts = t["t_s"].to_numpy()
    node = t["node"].to_numpy().astype(np.int64)
    dst = t["dst"].to_numpy().astype(np.int64)
    nh = t["next_hop"].to_numpy().astype(np.int64)
    out: dict[tuple[str, str, str], list[list[int]]] = {}
    for mode in run.modes:
        for a, b in pairs:
            d = n_sats + run.sites.index(b)
            sel = np.flatnonzero((mode_col == mode) & (dst == d))
            # Entries in time order; at each frame the latest entry of a node is in force.
            sel = sel[np.argsort(ts[sel], kind="stable")]
            state = np.full(n_nodes, -1, np.int64)
            j = 0
            paths: list[list[int]] = []
            for t_frame in t_s:
                while j < sel.size and ts[sel[j]] <= t_frame + 1e-9:
                    state[node[sel[j]]] = nh[sel[j]]
                    j += 1
                paths.append(_walk(state, n_sats + run.sites.index(a), d, n_sats))
            out[(mode, a, b)] = paths
    return out


def _walk(next_hop: NDArray[np.int64], src: int, dst: int, n_sats: int) -> list[int]:
    """The path ``src .. dst`` the next hops give; [] for a drop or a loop.

    Ground sites do not relay, so the walk ends at the first ground site after ``src``: that is
    ``dst``, or a gateway whose fibre leads to ``dst`` (a PoP; fibre is not in the forwarding
    state, which is Hypatia's, and the gateway's own entry points back into space).
    """
    nodes = [src]
    seen = {src}
    cur = src
    while cur != dst:
        cur = int(next_hop[cur])
        if cur < 0 or cur in seen:
            return []
        nodes.append(cur)
        seen.add(cur)
        if cur >= n_sats and cur != dst:
            nodes.append(dst)
            break
    return nodes


# --- Files later versions may write ---------------------------------------------------------


def read_throughput(run: RunData) -> Throughput | Note | None:
    """Rate per terminal from ``flows.parquet``; None when the run has no traffic.

    The file is read if it has a ``t_s`` column, a terminal column (``terminal`` or ``src``)
    and a rate column (``rate_bps``, ``throughput_bps``, ``allocated_bps``, ``rate_mbps`` or
    ``throughput_mbps``); a ``mode`` column, if any, splits the rates by routing mode.
    """
    path = run.run_dir / FLOWS
    if not path.exists():
        return None
    try:
        ds = pa_ds.dataset(path, format="parquet")
        names = set(ds.schema.names)
    except (OSError, pa.ArrowException) as exc:
        return Note(f"flows.parquet cannot be read: {exc}")
    info_path = run.run_dir / FLOW_INFO
    if {"t_s", "flow", "rate_mbps"} <= names and info_path.exists():
        # starmesh's own layout: flow indices, described in flow_info.parquet. A flow counts for
        # the terminal that receives it (its destination if that is a terminal, else its
        # source: an uplink counts for the terminal that sends it).
        try:
            info = pq.read_table(info_path)
            kinds = dict(
                zip(
                    pq.read_table(run.run_dir / SITES, columns=["name", "kind"])
                    .column("name")
                    .to_pylist(),
                    pq.read_table(run.run_dir / SITES, columns=["kind"]).column("kind").to_pylist(),
                    strict=True,
                )
            )
            src = info.column("src").to_pylist()
            dst = info.column("dst").to_pylist()
            owner = np.array(
                [d if kinds.get(d) == "terminal" else a for a, d in zip(src, dst, strict=True)],
                dtype=object,
            )
            cols = ["t_s", "flow", "rate_mbps"] + (["mode"] if "mode" in names else [])
            t = ds.to_table(columns=cols)
        except (OSError, pa.ArrowException, KeyError) as exc:
            return Note(f"flows.parquet cannot be read: {exc}")
        t = t.append_column("terminal", pa.array(list(owner[t.column("flow").to_numpy()])))
        term, rate = "terminal", ("rate_mbps", 1e6)
    else:
        found_term = next((c for c in _TERMINAL_COLUMNS if c in names), None)
        found_rate = next(((c, f) for c, f in _RATE_COLUMNS if c in names), None)
        if "t_s" not in names or found_term is None or found_rate is None:
            return Note(
                "flows.parquet has no t_s, terminal and rate columns this report knows "
                f"(it has {', '.join(sorted(names))})"
            )
        term, rate = found_term, found_rate
        cols = ["t_s", term, rate[0]] + (["mode"] if "mode" in names else [])
        try:
            t = ds.to_table(columns=cols)
        except (OSError, pa.ArrowException) as exc:
            return Note(f"flows.parquet cannot be read: {exc}")
    if t.num_rows == 0:
        return Note("flows.parquet has no rows")
    keys = ["t_s", term] + (["mode"] if "mode" in names else [])
    g = t.group_by(keys).aggregate([(rate[0], "sum")])
    times = np.unique(g["t_s"].to_numpy())
    terminals = sorted({str(x) for x in g[term].to_pylist()})
    modes = sorted({str(x) for x in g["mode"].to_pylist()}) if "mode" in names else [""]
    mode_order = [m for m in run.modes if m in modes] + [m for m in modes if m not in run.modes]
    out = np.full((len(mode_order), len(terminals), times.size), np.nan)
    ti = {n: i for i, n in enumerate(terminals)}
    mi = {n: i for i, n in enumerate(mode_order)}
    k = np.searchsorted(times, g["t_s"].to_numpy())
    tcol = [ti[str(x)] for x in g[term].to_pylist()]
    mcol = [mi[str(x)] for x in g["mode"].to_pylist()] if "mode" in names else [0] * g.num_rows
    out[np.array(mcol, np.int64), np.array(tcol, np.int64), k] = (
        g[f"{rate[0]}_sum"].to_numpy(zero_copy_only=False).astype(np.float64) * rate[1]
    )
    return Throughput(t_s=times, modes=mode_order, terminals=terminals, rate_bps=out)


def read_json(path: Path) -> Any | Note | None:
    """A JSON file; None if absent, a :class:`Note` if unreadable."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Note(f"{path.name} cannot be read: {exc}")


@dataclass(frozen=True)
class Shape:
    """A disruption drawn on the map: a point (jammer), a circle or a polygon (denied area).

    Attributes
    ----------
    kind : str
        Its list's key in ``disruptions.json`` (``"jammers"``, ``"denied_areas"``, ...).
    name : str
    lat_deg, lon_deg : ndarray, shape (N,)
        One vertex for a point; a closed outline for a circle or polygon.
    """

    kind: str
    name: str
    lat_deg: NDArray[np.float64]
    lon_deg: NDArray[np.float64]


def _circle(lat_deg: float, lon_deg: float, radius_m: float, n: int = 73) -> Shape:
    """Outline of a spherical cap of ``radius_m`` around a point (small-circle formula)."""
    d = radius_m / 6_371_000.0
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    az = np.linspace(0.0, 2.0 * np.pi, n)
    lat2 = np.arcsin(np.sin(lat) * np.cos(d) + np.cos(lat) * np.sin(d) * np.cos(az))
    lon2 = lon + np.arctan2(
        np.sin(az) * np.sin(d) * np.cos(lat), np.cos(d) - np.sin(lat) * np.sin(lat2)
    )
    lon2 = (np.degrees(lon2) + 180.0) % 360.0 - 180.0
    return Shape("", "", np.degrees(lat2), lon2)


def _geojson(kind: str, name: str, obj: Any) -> list[Shape]:
    """Outlines of a GeoJSON object: Polygon and MultiPolygon rings, and Point features with
    ``properties.radius_km`` as circles (as :mod:`starmesh.disruptions` reads them)."""
    if not isinstance(obj, dict):
        return []
    t = obj.get("type")
    if t == "FeatureCollection":
        return [x for f in obj.get("features", []) for x in _geojson(kind, name, f)]
    if t == "GeometryCollection":
        return [x for g in obj.get("geometries", []) for x in _geojson(kind, name, g)]
    if t == "Feature":
        props = obj.get("properties") or {}
        name = str(props.get("name", name))
        geom = obj.get("geometry") or {}
        if geom.get("type") == "Point" and isinstance(props.get("radius_km"), int | float):
            lon, lat = (float(v) for v in geom["coordinates"][:2])
            c = _circle(lat, lon, 1e3 * float(props["radius_km"]))
            return [Shape(kind, name, c.lat_deg, c.lon_deg)]
        return _geojson(kind, name, geom)
    polygons = []
    if t == "Polygon":
        polygons = [obj["coordinates"]]
    elif t == "MultiPolygon":
        polygons = list(obj["coordinates"])
    out = []
    for poly in polygons:
        for ring in poly:
            xy = np.asarray(ring, float).reshape(-1, 2)  # GeoJSON positions: [lon, lat]
            out.append(Shape(kind, name, xy[:, 1], xy[:, 0]))
    return out


def _shape(kind: str, i: int, item: Any) -> list[Shape]:
    """Shapes in one entry of ``disruptions.json``; [] if it holds none this reader knows."""
    if not isinstance(item, dict):
        return []
    name = str(item.get("name", f"{kind}[{i}]"))
    if "type" in item:
        return _geojson(kind, name, item)
    lat, lon = item.get("lat_deg"), item.get("lon_deg")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        radius_m = item.get("radius_m")
        if radius_m is None and isinstance(item.get("radius_km"), int | float):
            radius_m = 1e3 * item["radius_km"]
        out = [Shape(kind, name, np.array([float(lat)]), np.array([float(lon)]))]
        if isinstance(radius_m, int | float) and radius_m > 0:
            c = _circle(float(lat), float(lon), float(radius_m))
            out.append(Shape(kind, name, c.lat_deg, c.lon_deg))
        return out
    if isinstance(lat, list) and isinstance(lon, list) and len(lat) == len(lon) > 1:
        return [Shape(kind, name, np.asarray(lat, float), np.asarray(lon, float))]
    verts = item.get("polygon")
    if isinstance(verts, list) and verts and all(isinstance(v, dict) for v in verts):
        la = np.array([float(v["lat_deg"]) for v in verts])
        lo = np.array([float(v["lon_deg"]) for v in verts])
        return [Shape(kind, name, np.append(la, la[0]), np.append(lo, lo[0]))]
    for key in ("geometry", "geojson", "area", "polygon"):
        if isinstance(item.get(key), dict):
            return _geojson(kind, name, item[key])
    return []


def read_disruptions(run: RunData) -> list[Shape] | Note | None:
    """Jammers and denied areas listed in ``disruptions.json`` (or, without one, in the
    ``[disruptions]`` table of the run's ``scenario.toml``), as map shapes.

    Every list in the file (at the top level, or the file itself if it is a list) is read, its
    key naming the kind (``"jammers"``, ``"denied_areas"``, ...). An entry is drawn if it has
    ``lat_deg`` and ``lon_deg`` numbers (a point, with a circle if it has ``radius_km`` or
    ``radius_m``), ``lat_deg``/``lon_deg`` lists or a ``polygon`` of ``{lat_deg, lon_deg}``
    vertices (an outline), or if it is GeoJSON (``Polygon``, ``MultiPolygon``, ``Feature``,
    ``FeatureCollection``; ``Point`` features with ``properties.radius_km`` as circles), itself or
    under ``geometry``, ``geojson`` or ``area``. Entries of other shapes are skipped.
    """
    data = read_json(run.run_dir / "disruptions.json")
    if data is None:
        # The resolved scenario's [disruptions] table has the same lists.
        data = run.scenario.get("disruptions")
        if not isinstance(data, dict):
            return None
    if isinstance(data, Note):
        return data
    lists: list[tuple[str, list[Any]]] = []
    if isinstance(data, list):
        lists.append(("disruptions", data))
    elif isinstance(data, dict) and "type" in data:
        lists.append(("denied areas", [data]))
    elif isinstance(data, dict):
        for k, v in data.items():
            if isinstance(v, list):
                lists.append((str(k), v))
            elif isinstance(v, dict) and "type" in v:
                lists.append((str(k), [v]))
    shapes: list[Shape] = []
    names = run.sites.names
    try:
        for kind, items in lists:
            for i, item in enumerate(items):
                shapes.extend(_shape(kind, i, item))
                # Failures name the sites that go down: mark them where they are.
                for key in ("gateways", "sites", "pops", "terminals"):
                    down = item.get(key) if isinstance(item, dict) else None
                    for name in down if isinstance(down, list) else []:
                        if name in names:
                            g = names.index(name)
                            shapes.append(
                                Shape(
                                    "failed sites",
                                    str(name),
                                    run.sites.lat_deg[g : g + 1],
                                    run.sites.lon_deg[g : g + 1],
                                )
                            )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return Note(f"disruptions.json has an entry this report cannot draw: {exc!r}")
    return shapes


# --- Geometry and labelled results ----------------------------------------------------------


@dataclass(frozen=True)
class RunGeometry:
    """What a reader needs to recompute a run's satellites: its time grid and propagator.

    Attributes
    ----------
    name : str
        The scenario's name.
    grid : TimeGrid
    propagator : Propagator
        The run's propagator (its Earth model and UT1 applied).
    isl_edges : ndarray of int64, shape (E, 2)
        The run's ISLs (``isls.parquet``).
    isl_max_range_m : float
        Longest usable ISL [m] (inf without ISLs).
    isl_spans : ndarray of int64, shape (N, 4), or None
        Re-paired ISLs (``isl_spans.parquet``): rows ``(a, b, first_step, last_step)``, the
        steps (inclusive) during which link ``a < b`` is up; ``isl_edges`` then lists every
        link up at some step. None for fixed ISLs.
    """

    name: str
    grid: TimeGrid
    propagator: Propagator
    isl_edges: NDArray[np.int64]
    isl_max_range_m: float
    sat_names: tuple[str, ...] = ()
    isl_spans: NDArray[np.int64] | None = None
    #: ECEF positions of the run's sites [m], shape (G, 3), placed as the run placed them.
    site_r_ecef_m: NDArray[np.float64] | None = None

    def isl_up(self, steps: NDArray[np.int64]) -> NDArray[np.bool_] | None:
        """Which of ``isl_edges`` are up at run steps ``steps (K,)``: shape ``(K, E)``, or None
        for fixed ISLs (every one of them exists; only range limits them)."""
        if self.isl_spans is None:
            return None
        sp = self.isl_spans
        n_s = max(int(self.isl_edges.max(initial=0)) + 1, 1)
        key = self.isl_edges[:, 0] * n_s + self.isl_edges[:, 1]
        col = np.searchsorted(key, sp[:, 0] * n_s + sp[:, 1])
        steps = np.asarray(steps, np.int64).reshape(-1)
        out = np.zeros((steps.size, key.size), bool)
        for k, step in enumerate(steps):
            out[k, col[(sp[:, 2] <= step) & (step <= sp[:, 3])]] = True
        return out


def read_geometry(run_dir: Path | str) -> RunGeometry:
    """The constellation, time grid and ISLs of a run, from its resolved ``scenario.toml``.

    Only the constellation is rebuilt (not the ground segment, traffic or disruptions).

    Raises
    ------
    StarmeshError, pydantic.ValidationError
        If the scenario cannot be loaded (for instance a TLE file that has moved).
    """
    run_dir = Path(run_dir)
    sc = load_scenario(run_dir / SCENARIO)
    grid = TimeGrid.from_utc(
        parse_utc(sc.time.start_utc), duration_s=sc.time.duration_s, step_s=sc.time.step_s
    )
    cons = build_constellation(sc)
    prop = scenario_propagator(sc, cons)
    edges = np.zeros((0, 2), np.int64)
    path = run_dir / ISLS
    if path.is_file():
        t = pq.read_table(path, columns=["a", "b"])
        edges = np.stack([t["a"].to_numpy(), t["b"].to_numpy()], axis=1).astype(np.int64)
    spans = None
    span_dir = run_dir / ISL_SPANS
    if span_dir.is_dir():
        parts = sorted(span_dir.glob("part-*.parquet"))
        cols = ["a", "b", "first_step", "last_step"]
        tables = [pq.read_table(p, columns=cols) for p in parts]
        spans = np.zeros((0, 4), np.int64)
        if tables:
            spans = np.stack(
                [np.concatenate([t[c].to_numpy() for t in tables]) for c in cols], axis=1
            ).astype(np.int64)
        # Every link up at some step, sorted by (a, b).
        edges = np.unique(np.concatenate([edges.reshape(-1, 2), spans[:, :2]]), axis=0)
    rng = sc.links.isl_max_range_km
    return RunGeometry(
        name=sc.name,
        grid=grid,
        propagator=prop,
        isl_edges=edges.reshape(-1, 2),
        isl_max_range_m=float(rng) * 1e3 if rng is not None and edges.size else math.inf,
        sat_names=tuple(cons.sat_names),
        site_r_ecef_m=build_sites(sc).r_ecef_m,
        isl_spans=spans,
    )


def read_summary(run_dir: Path | str) -> Summary:
    """``summary.json`` of a finished run, typed (the folder is verified against its
    manifest)."""
    run = read_run(run_dir)
    try:
        return Summary.from_dict(run.summary)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad_folder(Path(run_dir), f"summary.json has an unexpected layout ({exc})") from None


def read_run_series(run_dir: Path | str) -> RunSeries:
    """Every row of ``rtt.parquet`` as arrays ``(mode, time, pair)``, in the run's order."""
    run_dir = Path(run_dir)
    run = read_run(run_dir, verify=False)
    ds = _rtt_dataset(run_dir)
    if ds is None:
        raise _bad_folder(run_dir, f"it has no readable {RTT}")
    t = ds.to_table()
    pairs = run.series_pairs
    modes = run.modes
    times = np.unique(t["t_s"].to_numpy())
    keys = pc.binary_join_element_wise(t["src"], t["dst"], "\x1f")
    p = pc.index_in(keys, value_set=pa.array([f"{a}\x1f{b}" for a, b in pairs]))
    m = pc.index_in(t["mode"], value_set=pa.array(modes))
    pi = p.to_numpy(zero_copy_only=False).astype(np.int64)
    mi = m.to_numpy(zero_copy_only=False).astype(np.int64)
    k = np.searchsorted(times, t["t_s"].to_numpy())
    shape = (len(modes), times.size, len(pairs))
    rtt = np.full(shape, np.nan)
    hops = np.full(shape, -1, np.int16)
    src_sat = np.full(shape, -1, np.int32)
    dst_sat = np.full(shape, -1, np.int32)
    changed = np.zeros(shape, bool)
    rtt[mi, k, pi] = t["rtt_ms"].to_numpy(zero_copy_only=False).astype(np.float64)
    hops[mi, k, pi] = t["hops"].fill_null(-1).to_numpy().astype(np.int16)
    src_sat[mi, k, pi] = t["src_sat"].fill_null(-1).to_numpy().astype(np.int32)
    dst_sat[mi, k, pi] = t["dst_sat"].fill_null(-1).to_numpy().astype(np.int32)
    changed[mi, k, pi] = t["path_changed"].to_numpy(zero_copy_only=False)
    return RunSeries(
        t_s=times,
        modes=modes,
        src=[a for a, _b in pairs],
        dst=[b for _a, b in pairs],
        rtt_ms=rtt,
        hops=hops,
        src_sat=src_sat,
        dst_sat=dst_sat,
        path_changed=changed,
        service=_read_service(run_dir, run.summary, modes, pairs, times),
    )


def read_service(run: RunData, series: Series) -> ServiceSeries | Note | None:
    """The service model's RTT quantiles and components of a :class:`Series`' pairs and steps
    (``service.parquet``); None for a geometric run, a :class:`Note` if it cannot be read."""
    try:
        return _read_service(run.run_dir, run.summary, series.modes, series.pairs, series.t_s)
    except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
        return Note(f"service.parquet cannot be read: {exc}")


def _read_service(
    run_dir: Path,
    summary: dict[str, Any],
    modes: list[str],
    pairs: list[tuple[str, str]],
    times: NDArray[np.float64],
) -> ServiceSeries | None:
    """``service.parquet`` and ``terminals.parquet`` as arrays (None for a geometric run)."""
    info = summary.get("service")
    if not isinstance(info, dict) or not (run_dir / SERVICE).is_dir():
        return None
    quantiles = [float(x) for x in info["quantiles"]]
    comps = [str(c) for c in info["components"]]
    t = pa_ds.dataset(run_dir / SERVICE, format="parquet").to_table()
    keys = pc.binary_join_element_wise(t["src"], t["dst"], "\x1f")
    pi = pc.index_in(keys, value_set=pa.array([f"{a}\x1f{b}" for a, b in pairs]))
    mi = pc.index_in(t["mode"], value_set=pa.array(modes))
    # Only the rows of the pairs and modes asked for (a report draws some of the series pairs).
    ok = pc.and_(pc.is_valid(pi), pc.is_valid(mi))
    t = t.filter(ok)
    p = pi.filter(ok).to_numpy(zero_copy_only=False).astype(np.int64)
    m = mi.filter(ok).to_numpy(zero_copy_only=False).astype(np.int64)
    k = np.searchsorted(times, t["t_s"].to_numpy())
    q = np.full((len(modes), len(quantiles), times.size, len(pairs)), np.nan)
    for j, x in enumerate(quantiles):
        q[m, j, k, p] = t[quantile_name(x)].to_numpy(zero_copy_only=False).astype(np.float64)
    mean = np.full((len(modes), times.size, len(pairs), len(comps)), np.nan)
    for c, name in enumerate(comps):
        mean[m, k, p, c] = t[f"{name}_ms"].to_numpy(zero_copy_only=False).astype(np.float64)
    tt = pa_ds.dataset(run_dir / TERMINALS, format="parquet").to_table()
    terms = [str(x["site"]) for x in info["terminals"]]
    g = pc.index_in(tt["terminal"], value_set=pa.array(terms)).to_numpy(zero_copy_only=False)
    kt = np.searchsorted(times, tt["t_s"].to_numpy())
    serving = np.full((times.size, len(terms)), -1, np.int32)
    hand = np.zeros((times.size, len(terms)), bool)
    dl = np.zeros((times.size, len(terms)))
    serving[kt, g] = tt["serving_sat"].fill_null(-1).to_numpy().astype(np.int32)
    hand[kt, g] = tt["handover"].to_numpy(zero_copy_only=False)
    dl[kt, g] = tt["download_mbps"].to_numpy(zero_copy_only=False)
    # Run folders written before the upload speed test have no upload column.
    ul = None
    if "upload_mbps" in tt.column_names:
        ul = np.zeros((times.size, len(terms)))
        ul[kt, g] = tt["upload_mbps"].to_numpy(zero_copy_only=False)
    return ServiceSeries(
        quantiles=quantiles,
        rtt_q_ms=q,
        components=comps,
        mean_ms=mean,
        terminals=terms,
        serving_sat=serving,
        handover=hand,
        download_mbps=dl,
        upload_mbps=ul,
    )


def read_traffic_series(run_dir: Path | str) -> TrafficSeries | None:
    """Every row of ``flows.parquet`` as arrays (None when the run has no traffic)."""
    run_dir = Path(run_dir)
    if not (run_dir / FLOWS).is_dir() or not (run_dir / FLOW_INFO).is_file():
        return None
    run = read_run(run_dir, verify=False)
    info = pq.read_table(run_dir / FLOW_INFO)
    t = pa_ds.dataset(run_dir / FLOWS, format="parquet").to_table()
    modes = run.modes
    times = np.unique(t["t_s"].to_numpy())
    n_f = info.num_rows
    mi = pc.index_in(t["mode"], value_set=pa.array(modes)).to_numpy(zero_copy_only=False)
    k = np.searchsorted(times, t["t_s"].to_numpy())
    f = t["flow"].to_numpy().astype(np.int64)
    rate = np.full((len(modes), times.size, n_f), np.nan, np.float32)
    bneck = np.full((len(modes), times.size, n_f), -1, np.int32)
    demand = np.full((times.size, n_f), np.nan, np.float32)
    rate[mi, k, f] = t["rate_mbps"].to_numpy()
    bneck[mi, k, f] = t["bottleneck"].to_numpy()
    demand[k, f] = t["demand_mbps"].to_numpy()
    return TrafficSeries(
        flow_src=[str(x) for x in info["src"].to_pylist()],
        flow_dst=[str(x) for x in info["dst"].to_pylist()],
        flow_name=[str(x) for x in info["name"].to_pylist()],
        rate_mbps=rate,
        demand_mbps=demand,
        bottleneck=bneck,
    )


def read_packets(
    run: RunData,
) -> tuple[list[str], NDArray[np.float64], dict[str, NDArray[np.float64]]] | Note | None:
    """Per flow and time bin packet-level results from ``packets_bins.parquet``.

    Returns
    -------
    (flows, t_s, values) or Note or None
        ``values[column]`` has shape (F, T) for goodput, cwnd and RTT (NaN where absent); None
        when the run was not replayed at packet level.
    """
    path = run.run_dir / PACKETS_TABLES[0]
    if not path.is_file():
        return None
    try:
        t = pq.read_table(path)
        flows = list(dict.fromkeys(str(x) for x in t["flow"].to_pylist()))
        times = np.unique(t["t_s"].to_numpy())
        fi = np.array([flows.index(str(x)) for x in t["flow"].to_pylist()], np.int64)
        k = np.searchsorted(times, t["t_s"].to_numpy())
        values = {}
        for col in ("goodput_bps", "cwnd_bytes", "rtt_s"):
            v = np.full((len(flows), times.size), np.nan)
            v[fi, k] = t[col].to_numpy(zero_copy_only=False).astype(np.float64)
            values[col] = v
    except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
        return Note(f"{PACKETS_TABLES[0]} cannot be read: {exc}")
    return flows, times, values
