"""Plotly figures of a run's results over time: RTT, RTT distributions, availability and
throughput. Figures are plain dicts (``data``, ``layout``) with numpy arrays where plotly.js
takes data arrays; :mod:`starmesh.report.encoding` writes them.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..io.runfolder import Series, Throughput

#: At most this many points per line; longer series are cut into buckets, each drawn by its
#: minimum and maximum, so spikes and outages stay visible.
MAX_LINE_POINTS = 4000
#: Colours of pairs (one per pair, the same in every plot): Tableau 10, then ten darker or
#: more saturated ones from plotly's Dark24.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#2e91e5", "#e15f99", "#1ca71c", "#fb0d0d", "#da16ff",
    "#222a2a", "#b68100", "#750d86", "#eb663b", "#511cfb",
)  # fmt: skip
#: Line style per routing mode, in run order.
DASHES = ("solid", "dot", "dash", "longdash", "dashdot")
#: Colour per routing mode, where modes are the series (availability, distributions).
MODE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b")

FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}


def pair_label(src: str, dst: str) -> str:
    """``"src → dst"``."""
    return f"{src} → {dst}"


def base_layout(**kw: Any) -> dict[str, Any]:
    """Layout keys every figure shares."""
    layout: dict[str, Any] = {
        "font": FONT,
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "hovermode": "closest",
        "legend": {"orientation": "v"},
    }
    layout.update(kw)
    return layout


def _axis(**kw: Any) -> dict[str, Any]:
    axis = {"gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#999", "showline": True}
    axis.update({k: v for k, v in kw.items() if v is not None})
    return axis


def time_axis(epoch: datetime, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
    """Times as milliseconds since 1970 (UTC), what a plotly date axis takes."""
    return epoch.timestamp() * 1e3 + np.asarray(t_s, np.float64) * 1e3


def decimate(
    t: NDArray[np.float64], y: NDArray[np.float64], max_points: int = MAX_LINE_POINTS
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """At most ``max_points`` points of the line ``(t, y)``: per bucket its min and max.

    Parameters
    ----------
    t, y : ndarray, shape (N,)
    max_points : int

    Returns
    -------
    t, y : ndarray
        Unchanged when ``N <= max_points``; otherwise, for each of ``max_points // 2``
        buckets, the points of its minimum and maximum in time order (an all-NaN bucket keeps
        one NaN, a gap).

    Examples
    --------
    >>> t = np.arange(10.0); y = np.array([0, 5, 1, 1, 9, 2, 3, 3, 3, 7.0])
    >>> decimate(t, y, 4)[1]
    array([0., 9., 2., 7.])
    """
    n = t.size
    if n <= max_points:
        return t, y
    n_b = max(1, max_points // 2)
    edges = np.linspace(0, n, n_b + 1).astype(np.int64)
    out_t: list[float] = []
    out_y: list[float] = []
    for a, b in itertools.pairwise(edges):
        yb = y[a:b]
        finite = np.isfinite(yb)
        if not finite.any():
            out_t.append(float(t[a]))
            out_y.append(np.nan)
            continue
        yb = np.where(finite, yb, np.nan)
        keep = {int(np.nanargmin(yb)), int(np.nanargmax(yb))}
        if not finite.all():
            # An outage inside the bucket stays visible: one NaN (a gap) where it starts.
            keep.add(int(np.flatnonzero(~finite)[0]))
        for k in sorted(keep):
            out_t.append(float(t[a + k]))
            out_y.append(float(yb[k]))
    return np.array(out_t), np.array(out_y)


def _line_xy(epoch: datetime, t_s: NDArray[np.float64], y: NDArray[np.float64]) -> dict[str, Any]:
    """``x``/``y`` of a line trace; uniform series use ``x0``/``dx`` (no x array at all)."""
    if t_s.size <= MAX_LINE_POINTS and t_s.size > 1 and np.allclose(np.diff(t_s), t_s[1] - t_s[0]):
        x0 = time_axis(epoch, t_s[:1])[0]
        return {"x0": float(x0), "dx": float((t_s[1] - t_s[0]) * 1e3), "y": y.astype(np.float32)}
    td, yd = decimate(t_s, y)
    return {"x": time_axis(epoch, td), "y": yd.astype(np.float32)}


def _stacked_axes(n_rows: int, titles: list[str], y_title: str) -> tuple[dict[str, Any], float]:
    """Layout of ``n_rows`` plots stacked over one shared time axis."""
    gap = 0.08
    h = (1.0 - gap * (n_rows - 1)) / n_rows
    layout: dict[str, Any] = {"annotations": []}
    for r in range(n_rows):
        top = 1.0 - r * (h + gap)
        key = "yaxis" if r == 0 else f"yaxis{r + 1}"
        layout[key] = _axis(domain=[top - h, top], title={"text": y_title})
        layout["annotations"].append(
            {
                "text": f"<b>{titles[r]}</b>",
                "xref": "paper",
                "yref": "paper",
                "x": 0.0,
                "y": top,
                "xanchor": "left",
                "yanchor": "bottom",
                "showarrow": False,
            }
        )
    xkey = "xaxis" if n_rows == 1 else f"xaxis{n_rows}"
    for r in range(n_rows):
        key = "xaxis" if r == 0 else f"xaxis{r + 1}"
        layout[key] = _axis(
            type="date",
            anchor="y" if r == 0 else f"y{r + 1}",
            matches=None if r == n_rows - 1 else f"x{n_rows}",
            showticklabels=key == xkey,
            title={"text": "time (UTC)"} if key == xkey else None,
        )
    return layout, h


def rtt_figure(series: Series, epoch: datetime) -> dict[str, Any]:
    """RTT over time: one plot per routing mode, one line per pair (same colour everywhere).

    Parameters
    ----------
    series : Series
        RTT [ms] of the pairs to draw, shape (M, P, T).
    epoch : datetime
        UTC time of ``t_s == 0``.
    """
    n_m = len(series.modes)
    layout, _h = _stacked_axes(n_m, [f"mode {m}" for m in series.modes], "RTT [ms]")
    data: list[dict[str, Any]] = []
    for m, mode in enumerate(series.modes):
        for p, (a, b) in enumerate(series.pairs):
            label = pair_label(a, b)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": label,
                    "legendgroup": label,
                    "showlegend": m == 0,
                    "xaxis": "x" if m == 0 else f"x{m + 1}",
                    "yaxis": "y" if m == 0 else f"y{m + 1}",
                    "line": {"color": PALETTE[p % len(PALETTE)], "width": 1.3},
                    "hovertemplate": f"{label} ({mode})<br>%{{x}}<br>%{{y:.2f}} ms<extra></extra>",
                    **_line_xy(epoch, series.t_s, series.rtt_ms[m, p]),
                }
            )
    return {
        "data": data,
        "layout": base_layout(height=140 + 260 * n_m, **layout),
    }


def _padded(lo: float, hi: float) -> list[float]:
    pad = max(0.05 * (hi - lo), 0.05)
    return [lo - pad, hi + pad]


def _box_stats(x: NDArray[np.float64]) -> dict[str, float] | None:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    q = np.percentile(x, [0, 5, 25, 50, 75, 95, 100])
    return {
        "min": q[0], "p5": q[1], "q1": q[2], "median": q[3], "q3": q[4], "p95": q[5], "max": q[6],
        "mean": float(x.mean()),
    }  # fmt: skip


def distribution_figure(series: Series) -> dict[str, Any]:
    """RTT distribution of each pair over the run: boxes (quartiles, whiskers at 5 and 95 %,
    min and max as points) grouped by routing mode."""
    data: list[dict[str, Any]] = []
    labels = [pair_label(a, b) for a, b in series.pairs]
    finite = series.rtt_ms[np.isfinite(series.rtt_ms)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    for m, mode in enumerate(series.modes):
        cols: dict[str, list[float]] = {
            k: [] for k in ("x", "q1", "median", "q3", "p5", "p95", "mean", "min", "max")
        }
        xs: list[str] = []
        for p in range(len(series.pairs)):
            st = _box_stats(series.rtt_ms[m, p])
            if st is None:
                continue
            xs.append(labels[p])
            for k in ("q1", "median", "q3", "p5", "p95", "mean", "min", "max"):
                cols[k].append(float(st[k]))
        colour = MODE_COLOURS[m % len(MODE_COLOURS)]
        data.append(
            {
                "type": "box",
                "name": mode,
                "legendgroup": mode,
                "x": xs,
                "q1": cols["q1"],
                "median": cols["median"],
                "q3": cols["q3"],
                "lowerfence": cols["p5"],
                "upperfence": cols["p95"],
                "mean": cols["mean"],
                "offsetgroup": mode,
                "marker": {"color": colour},
                "line": {"width": 1.2},
                "hoverinfo": "x+y",
            }
        )
        # Extremes as markers (a precomputed box has no outlier points).
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{mode} min/max",
                "legendgroup": mode,
                "showlegend": False,
                "x": xs + xs,
                "y": cols["min"] + cols["max"],
                "marker": {"color": colour, "symbol": "line-ew-open", "size": 10},
                "hovertemplate": f"%{{x}} ({mode})<br>%{{y:.2f}} ms<extra>min/max</extra>",
                "offsetgroup": mode,
            }
        )
    return {
        "data": data,
        "layout": base_layout(
            height=420,
            boxmode="group",
            scattermode="group",
            xaxis=_axis(tickangle=-30, automargin=True),
            yaxis=_axis(title={"text": "RTT [ms]"}, range=_padded(lo, hi)),
            margin={"l": 60, "r": 20, "t": 30, "b": 90},
        ),
    }


def medians_figure(summary: dict[str, Any]) -> dict[str, Any]:
    """Histogram of the median RTT of every pair in ``summary.json``, per routing mode."""
    modes = [str(m) for m in summary["modes"]]
    by_mode: dict[str, list[float]] = {m: [] for m in modes}
    for row in summary["pairs"]:
        if row.get("rtt_median_ms") is not None and row["mode"] in by_mode:
            by_mode[row["mode"]].append(float(row["rtt_median_ms"]))
    every = np.array([v for vs in by_mode.values() for v in vs])
    edges = np.histogram_bin_edges(every if every.size else np.zeros(1), bins=40)
    data = []
    for m, mode in enumerate(modes):
        counts, _ = np.histogram(np.array(by_mode[mode]), bins=edges)
        data.append(
            {
                "type": "bar",
                "name": mode,
                "x": (0.5 * (edges[:-1] + edges[1:])).astype(np.float32),
                "y": counts.astype(np.int32),
                "width": float(edges[1] - edges[0]),
                "marker": {"color": MODE_COLOURS[m % len(MODE_COLOURS)], "opacity": 0.6},
                "hovertemplate": f"{mode}: %{{y}} pairs near %{{x:.1f}} ms<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": base_layout(
            height=320,
            barmode="overlay",
            xaxis=_axis(title={"text": "median RTT of a pair [ms]"}),
            yaxis=_axis(title={"text": "pairs"}),
        ),
    }


def speed_tests_figure(terminals: list[dict[str, Any]]) -> dict[str, Any]:
    """Median speed-test download and upload [Mbit/s] of each terminal (service model), as
    grouped bars; ``terminals`` are ``summary.json``'s ``service.terminals`` rows."""
    names = [str(t["site"]) for t in terminals]

    def values(key: str) -> NDArray[np.float32]:
        return np.array(
            [np.nan if t.get(key) is None else float(t[key]) for t in terminals], np.float32
        )

    served = [100.0 * float(t.get("served_fraction") or 0.0) for t in terminals]
    hand = [int(t.get("handovers") or 0) for t in terminals]
    extra = [f"served {s:.0f} % of steps, {h} handovers" for s, h in zip(served, hand, strict=True)]
    data = [
        {
            "type": "bar",
            "name": name,
            "x": names,
            "y": values(key),
            "customdata": extra,
            "marker": {"color": MODE_COLOURS[k % len(MODE_COLOURS)]},
            "hovertemplate": f"%{{x}}: {name} %{{y:.1f}} Mbit/s (median)<br>%{{customdata}}"
            "<extra></extra>",
        }
        for k, (name, key) in enumerate(
            [("download", "download_mbps_median"), ("upload", "upload_mbps_median")]
        )
        if any(t.get(key) is not None for t in terminals)
    ]
    return {
        "data": data,
        "layout": base_layout(
            height=340,
            barmode="group",
            xaxis=_axis(title={"text": "terminal"}),
            yaxis=_axis(title={"text": "median speed test [Mbit/s]"}),
        ),
    }


def availability_figure(
    epoch: datetime, t_s: NDArray[np.float64], available: NDArray[np.float64], modes: list[str]
) -> dict[str, Any]:
    """Share of pairs with a route [%] over time, one line per routing mode."""
    data = []
    for m, mode in enumerate(modes):
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": mode,
                "line": {"color": MODE_COLOURS[m % len(MODE_COLOURS)], "width": 1.5, "shape": "hv"},
                "hovertemplate": f"{mode}<br>%{{x}}<br>%{{y:.1f}} %<extra></extra>",
                **_line_xy(epoch, t_s, 100.0 * available[m]),
            }
        )
    return {
        "data": data,
        "layout": base_layout(
            height=300,
            xaxis=_axis(type="date", title={"text": "time (UTC)"}),
            yaxis=_axis(title={"text": "pairs with a route [%]"}, range=[-2, 102]),
        ),
    }


def throughput_figure(thr: Throughput, epoch: datetime) -> dict[str, Any]:
    """Rate per terminal [Mbit/s] over time; one plot per routing mode."""
    n_m = len(thr.modes)
    titles = [f"mode {m}" if m else "all flows" for m in thr.modes]
    layout, _h = _stacked_axes(n_m, titles, "rate [Mbit/s]")
    data: list[dict[str, Any]] = []
    for m, mode in enumerate(thr.modes):
        for k, name in enumerate(thr.terminals):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": name,
                    "legendgroup": name,
                    "showlegend": m == 0,
                    "xaxis": "x" if m == 0 else f"x{m + 1}",
                    "yaxis": "y" if m == 0 else f"y{m + 1}",
                    "line": {"color": PALETTE[k % len(PALETTE)], "width": 1.3},
                    "hovertemplate": f"{name} {mode}<br>%{{x}}<br>%{{y:.2f}} Mbit/s<extra></extra>",
                    **_line_xy(epoch, thr.t_s, thr.rate_bps[m, k] / 1e6),
                }
            )
    return {"data": data, "layout": base_layout(height=140 + 240 * n_m, **layout)}


#: Columns of a comparison row drawn as bars, with their axis titles.
COMPARISON_BARS = (
    ("rtt_median_ms", "median RTT [ms]"),
    ("rtt_p95_ms", "p95 RTT [ms]"),
    ("availability_pct", "availability [%]"),
)


def comparison_figure(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Bars per variant (grouped by routing mode) of the comparison rows' median and p95 RTT
    and availability; None when the rows have none of those columns or no ``variant``."""
    cols = [
        (c, t) for c, t in COMPARISON_BARS if any(isinstance(r.get(c), int | float) for r in rows)
    ]
    if not cols or not all("variant" in r for r in rows):
        return None
    variants = list(dict.fromkeys(str(r["variant"]) for r in rows))
    modes = list(dict.fromkeys(str(r.get("mode", "")) for r in rows))
    n = len(cols)
    gap = 0.06
    w = (1.0 - gap * (n - 1)) / n
    layout: dict[str, Any] = {"barmode": "group", "annotations": []}
    data: list[dict[str, Any]] = []
    for j, (col, title) in enumerate(cols):
        x0 = j * (w + gap)
        xa = "x" if j == 0 else f"x{j + 1}"
        ya = "y" if j == 0 else f"y{j + 1}"
        layout["xaxis" if j == 0 else f"xaxis{j + 1}"] = _axis(
            domain=[x0, x0 + w], anchor=ya, tickangle=-35, automargin=True
        )
        layout["yaxis" if j == 0 else f"yaxis{j + 1}"] = _axis(anchor=xa, rangemode="tozero")
        layout["annotations"].append(
            {"text": f"<b>{title}</b>", "xref": "paper", "yref": "paper", "x": x0,
             "y": 1.0, "xanchor": "left", "yanchor": "bottom", "showarrow": False}
        )  # fmt: skip
        for m, mode in enumerate(modes):
            by_variant = {
                str(r["variant"]): r.get(col) for r in rows if str(r.get("mode", "")) == mode
            }
            data.append(
                {
                    "type": "bar",
                    "name": mode or "all",
                    "legendgroup": mode,
                    "showlegend": j == 0,
                    "xaxis": xa,
                    "yaxis": ya,
                    "x": variants,
                    "y": [
                        float(v) if isinstance(v, int | float) else None
                        for v in (by_variant.get(name) for name in variants)
                    ],
                    "marker": {"color": MODE_COLOURS[m % len(MODE_COLOURS)]},
                    "hovertemplate": f"%{{x}} ({mode})<br>%{{y:.4g}}<extra>{title}</extra>",
                }
            )
    return {
        "data": data,
        "layout": base_layout(height=420, margin={"l": 50, "r": 20, "t": 30, "b": 120}, **layout),
    }


#: Rows of the packet-level figure: column of packets_bins.parquet, title, axis, factor.
PACKET_ROWS = (
    ("goodput_bps", "goodput", "goodput [Mbit/s]", 1e-6),
    ("cwnd_bytes", "congestion window (TCP)", "cwnd [kB]", 1e-3),
    ("rtt_s", "RTT samples (TCP, mean per bin)", "RTT [ms]", 1e3),
)


def packets_figure(
    epoch: datetime, flows: list[str], t_s: NDArray[np.float64], values: dict[str, NDArray[Any]]
) -> dict[str, Any]:
    """Goodput, congestion window and RTT per packet-level flow over time.

    ``values[column]`` has shape (F, T): one row per flow of ``flows``, NaN where a bin has no
    value (no RTT sample, a UDP flow's cwnd).
    """
    layout, _h = _stacked_axes(len(PACKET_ROWS), [r[1] for r in PACKET_ROWS], "")
    for r, (_col, _title, axis, _f) in enumerate(PACKET_ROWS):
        key = "yaxis" if r == 0 else f"yaxis{r + 1}"
        layout[key]["title"] = {"text": axis}
    data: list[dict[str, Any]] = []
    for r, (col, _title, axis, factor) in enumerate(PACKET_ROWS):
        for k, name in enumerate(flows):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": name,
                    "legendgroup": name,
                    "showlegend": r == 0,
                    "xaxis": "x" if r == 0 else f"x{r + 1}",
                    "yaxis": "y" if r == 0 else f"y{r + 1}",
                    "line": {"color": PALETTE[k % len(PALETTE)], "width": 1.3},
                    "hovertemplate": f"{name}<br>%{{x}}<br>%{{y:.3g}} {axis}<extra></extra>",
                    **_line_xy(epoch, t_s, values[col][k] * factor),
                }
            )
    return {"data": data, "layout": base_layout(height=140 + 240 * len(PACKET_ROWS), **layout)}
