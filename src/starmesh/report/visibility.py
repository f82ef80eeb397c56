"""The run report's per-terminal section: satellites in view, the serving satellite's elevation
and handovers over time (``visibility.parquet``), and each terminal's handover statistics
(``summary.json``)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np

from ..io.runfolder import RunData, read_visibility
from .charts import PALETTE, _line_xy, _stacked_axes, base_layout, time_axis

#: Terminals drawn at most (the table lists them all).
MAX_VISIBILITY_TERMINALS = 12


def visibility_figure(table: Any, epoch: datetime, names: list[str]) -> dict[str, Any]:
    """Satellites in view (top) and serving elevation with handovers marked (bottom)."""
    t_all = table.column("t_s").to_numpy()
    term = np.asarray(table.column("terminal").to_pylist(), dtype=object)
    n_view = table.column("n_in_view").to_numpy()
    el = table.column("serving_elevation_deg").to_numpy(zero_copy_only=False)
    ho = table.column("handover").to_numpy(zero_copy_only=False)
    data = []
    for i, name in enumerate(names):
        sel = term == name
        t = t_all[sel]
        colour = PALETTE[i % len(PALETTE)]
        common = {"legendgroup": name, "line": {"color": colour, "width": 1.2, "shape": "hv"}}
        data.append(
            {"type": "scatter", "mode": "lines", "name": name, "xaxis": "x", "yaxis": "y",
             **common, **_line_xy(epoch, t, n_view[sel].astype(np.float64))}
        )  # fmt: skip
        data.append(
            {"type": "scatter", "mode": "lines", "name": name, "xaxis": "x2", "yaxis": "y2",
             "showlegend": False, **common,
             **_line_xy(epoch, t, np.asarray(el[sel], dtype=np.float64))}
        )  # fmt: skip
        h = ho[sel]
        if h.any():
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": f"{name} handovers",
                    "legendgroup": name,
                    "showlegend": False,
                    "xaxis": "x2",
                    "yaxis": "y2",
                    "marker": {"color": colour, "size": 5, "symbol": "line-ns-open"},
                    "x": time_axis(epoch, t[h]),
                    "y": np.asarray(el[sel][h], dtype=np.float32),
                    "hovertemplate": f"{name} handover<br>%{{x}}<extra></extra>",
                }
            )
    axes, _h = _stacked_axes(
        2, ["satellites in view", "serving satellite elevation; ticks: handovers"], ""
    )
    axes["yaxis"]["title"] = {"text": "satellites"}
    axes["yaxis2"]["title"] = {"text": "elevation [deg]"}
    return {"data": data, "layout": base_layout(height=520, **axes)}


def visibility_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Table rows of ``summary.json``'s per-terminal handover statistics."""

    def f(x: float | None, spec: str) -> str:
        return "—" if x is None or not math.isfinite(x) else format(x, spec)

    rows = []
    for r in summary.get("visibility", {}).get("terminals", []):
        rows.append(
            [
                str(r["terminal"]),
                str(r["handovers"]),
                f(r["handovers_per_hour"], ".1f"),
                f(r["handover_interval_mean_s"], ".1f"),
                f(r["handover_interval_max_s"], ".1f"),
                f(100.0 * r["served_fraction"], ".1f"),
                f(r["n_in_view_mean"], ".1f"),
                f(r["serving_elevation_mean_deg"], ".1f"),
            ]
        )
    return rows


VISIBILITY_HEAD = [
    "terminal",
    "handovers",
    "per hour",
    "mean interval [s]",
    "longest interval [s]",
    "served [%]",
    "in view (mean)",
    "serving elevation [deg]",
]


def visibility_parts(run: RunData) -> tuple[dict[str, Any] | None, list[list[str]], str]:
    """The figure (None without ``visibility.parquet``), the table rows and a caption."""
    rows = visibility_rows(run.summary)
    table = read_visibility(run.run_dir)
    if table is None:
        return None, rows, "This run folder has no visibility.parquet (no terminals)."
    names = list(dict.fromkeys(table.column("terminal").to_pylist()))
    shown = names[:MAX_VISIBILITY_TERMINALS]
    slot = run.summary.get("visibility", {}).get("slot_s", 15.0)
    caption = (
        "Per terminal: usable satellites (above the mask, not failed or denied, link closing) "
        f"and the serving satellite, the highest at each {slot:g}-s slot start and held while "
        "in view; a handover is a change of serving satellite."
        + (f" {len(shown)} of {len(names)} terminals drawn." if len(shown) < len(names) else "")
    )
    return visibility_figure(table, run.epoch, shown), rows, caption
