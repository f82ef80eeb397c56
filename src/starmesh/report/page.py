"""The report page: one self-contained HTML file with plotly.js, every figure's data and the
map geometry inside it, so it opens offline and requests nothing from the network.

A small script at the top of the page counts errors (``window.onerror``, unhandled promise
rejections, ``console.error``) and rendered plots into attributes of ``<body>``:
``data-plots-expected``, ``data-plots-rendered``, ``data-errors``, ``data-error-messages``,
``data-network-requests``, ``data-render-ms`` and ``data-page-height``, and each plot's place on
the page into its ``data-box`` (``x,y,width,height`` in CSS pixels), so a headless browser's DOM
dump and screenshot show whether the page works.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import StarmeshError
from ..io.runfolder import (
    Note,
    RunData,
    Series,
    Throughput,
    read_availability,
    read_disruptions,
    read_json,
    read_packets,
    read_paths,
    read_run,
    read_series,
    read_service,
    read_throughput,
)
from .charts import (
    availability_figure,
    comparison_figure,
    distribution_figure,
    medians_figure,
    packets_figure,
    rtt_figure,
    speed_tests_figure,
    throughput_figure,
)
from .encoding import figure_json
from .geo import MAX_MAP_PAIRS, globe_figure, map_figure, n_frames, sample_satellites

#: Pairs drawn over time (RTT lines, boxes, globe paths) at most; tables cover every pair.
MAX_PLOT_PAIRS = 20
#: Rows of the per-pair table at most (a page with more rows gets slow to open).
MAX_TABLE_PAIRS = 5000
#: Terminals drawn in the throughput plot at most (those with the highest mean rate).
MAX_PLOT_TERMINALS = 12

REPORT_NAME = "report.html"

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0;
       color: #222; background: #fafbfc; }
header { background: #14213d; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; font-weight: 600; }
header p { margin: 0; color: #c9d3e3; font-size: 13px; max-width: 1100px; }
nav { padding: 8px 32px; background: #e9eef5; font-size: 13px; position: sticky; top: 0;
      z-index: 10; }
nav a { margin-right: 16px; color: #14213d; text-decoration: none; }
main { padding: 8px 32px 40px 32px; max-width: 1400px; }
section { background: white; border: 1px solid #e1e6ec; border-radius: 6px; padding: 12px 18px;
          margin: 16px 0; scroll-margin-top: 40px; }
h2 { font-size: 17px; margin: 4px 0 8px 0; font-weight: 600; }
p.caption, p.note { font-size: 13px; color: #555; margin: 4px 0 8px 0; }
p.note { color: #8a5a00; }
table { border-collapse: collapse; font-size: 12px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eceff3; text-align: right; }
th { background: #f3f5f8; position: sticky; top: 0; }
td.l, th.l { text-align: left; }
td.l { white-space: nowrap; }
td.wrap { white-space: normal; min-width: 240px; max-width: 480px; }
table.facts td { text-align: left; }
.scroll { max-height: 600px; overflow: auto; }
.starmesh-plot { width: 100%; }
"""

# Runs before plotly.js: counts what goes wrong, so a headless browser can read it in the DOM.
_PROBE_JS = """
(function () {
  var b = document.body, errors = [];
  window.__starmeshT0 = (window.performance && performance.now()) || 0;
  function fail(msg) {
    errors.push(String(msg).slice(0, 300));
    b.setAttribute('data-errors', String(errors.length));
    b.setAttribute('data-error-messages', errors.join(' | '));
  }
  window.__starmeshFail = fail;
  window.addEventListener('error', function (e) {
    var t = e.target;
    fail(e.message || ('failed to load ' + ((t && (t.src || t.href)) || 'a resource')));
  }, true);
  window.addEventListener('unhandledrejection', function (e) { fail(e.reason); });
  var ce = console.error;
  console.error = function () {
    fail(Array.prototype.join.call(arguments, ' '));
    return ce.apply(console, arguments);
  };
})();
"""

# Runs after plotly.js: draws every figure from its JSON block.
_RENDER_JS = """
(function () {
  var b = document.body, fail = window.__starmeshFail;
  var blocks = document.querySelectorAll('script.starmesh-figure');
  var done = 0;
  b.setAttribute('data-plots-expected', String(blocks.length));
  var config = {responsive: true, displaylogo: false, scrollZoom: false,
                modeBarButtonsToRemove: ['sendDataToCloud', 'select2d', 'lasso2d']};
  blocks.forEach(function (el) {
    var div = document.getElementById(el.getAttribute('data-target'));
    try {
      var fig = JSON.parse(el.textContent);
      Plotly.newPlot(div, fig.data, fig.layout, config).then(function (gd) {
        return fig.frames ? Plotly.addFrames(gd, fig.frames) : gd;
      }).then(function () {
        done += 1;
        div.setAttribute('data-rendered', '1');
        div.setAttribute('data-traces', String(div.querySelectorAll('.trace').length));
        var r = div.getBoundingClientRect();
        div.setAttribute('data-box', [r.left + window.scrollX, r.top + window.scrollY, r.width,
                                      r.height].map(Math.round).join(','));
        b.setAttribute('data-plots-rendered', String(done));
        if (done === blocks.length) {
          var now = (window.performance && performance.now()) || 0;
          b.setAttribute('data-render-ms', String(Math.round(now - window.__starmeshT0)));
          b.setAttribute('data-page-height', String(document.documentElement.scrollHeight));
          window.__starmeshCountRequests();
          // The plots changed the page's height: go to the #section asked for again.
          var target = location.hash && document.getElementById(location.hash.slice(1));
          if (target) { target.scrollIntoView(); }
        }
      }).catch(fail);
    } catch (e) { fail(e); }
  });
  function countRequests() {
    var all = performance.getEntriesByType ? performance.getEntriesByType('resource') : [];
    var out = all.filter(function (r) { return !/^(data|blob|file):/.test(r.name); });
    b.setAttribute('data-network-requests', String(out.length));
  }
  countRequests();
  window.__starmeshCountRequests = countRequests;
})();
"""


def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:  # pragma: no cover - plotly is a dependency
        raise StarmeshError(
            "the report needs the plotly package (for plotly.js): pip install plotly"
        ) from None
    return str(get_plotlyjs())


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _ms(x: float | None, spec: str = ".1f") -> str:
    return "—" if x is None or not math.isfinite(x) else format(x, spec)


class _Page:
    """Sections and figures of one report, in order."""

    def __init__(self) -> None:
        self.sections: list[str] = []
        self.nav: list[tuple[str, str]] = []
        self.n_figs = 0

    def figure(self, fig: dict[str, Any]) -> str:
        self.n_figs += 1
        div_id = f"plot-{self.n_figs}"
        return (
            f'<div id="{div_id}" class="starmesh-plot"></div>\n'
            f'<script type="application/json" class="starmesh-figure" '
            f'data-target="{div_id}">{figure_json(fig)}</script>'
        )

    def section(self, anchor: str, title: str, body: str) -> None:
        self.nav.append((anchor, title))
        self.sections.append(f'<section id="{anchor}">\n<h2>{_e(title)}</h2>\n{body}\n</section>')


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _caption(text: str) -> str:
    return f'<p class="caption">{text}</p>'


def _table(
    head: list[str], rows: list[list[str]], *, left: int = 1, text: set[int] | None = None
) -> str:
    """An HTML table; cells are escaped here. The first ``left`` columns and the columns in
    ``text`` align left (text), the others right (numbers)."""
    lefts = set(range(left)) | (text or set())

    def cell(tag: str, i: int, c: str) -> str:
        cls = ("l " if i in lefts else "") + ("wrap" if len(c) > 40 else "")
        return f'<{tag} class="{cls.strip()}">{_e(c)}</{tag}>' if cls else f"<{tag}>{_e(c)}</{tag}>"

    th = "".join(cell("th", i, h) for i, h in enumerate(head))
    body = "\n".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in rows
    )
    return f'<div class="scroll"><table>\n<tr>{th}</tr>\n{body}\n</table></div>'


# --- Choosing what to draw ------------------------------------------------------------------


def plotted_pairs(
    run: RunData, *, max_pairs: int = MAX_PLOT_PAIRS, pair: tuple[str, str] | None = None
) -> list[tuple[str, str]]:
    """The pairs drawn over time: every series pair if few, else ``max_pairs`` of them spread
    evenly over the range of median RTT (first mode), always with ``pair`` if given."""
    sp = list(run.series_pairs)
    if pair is not None and pair not in sp:
        raise StarmeshError(
            f"pair {pair[0]!r} -> {pair[1]!r} has no RTT series in this run: choose one of "
            + ", ".join(f"{a} -> {b}" for a, b in sp[:10])
            + (" ..." if len(sp) > 10 else "")
        )
    if len(sp) <= max_pairs:
        return sp
    first = run.modes[0] if run.modes else None
    med = {
        (r["src"], r["dst"]): r.get("rtt_median_ms")
        for r in run.summary["pairs"]
        if r.get("mode") == first
    }
    order = sorted(sp, key=lambda p: (med.get(p) is None, med.get(p) or 0.0))
    idx = np.unique(np.linspace(0, len(order) - 1, max_pairs).round().astype(np.int64))
    chosen = {order[i] for i in idx}
    if pair is not None and pair not in chosen:
        chosen.discard(order[int(idx[len(idx) // 2])])
        chosen.add(pair)
    return [p for p in sp if p in chosen]


# --- Sections -------------------------------------------------------------------------------


def _facts(run: RunData) -> str:
    s = run.summary
    kinds = run.sites.kinds
    n_steps, step_s = int(s["n_steps"]), float(s["step_s"])
    rows = [
        ("scenario", s.get("scenario", "")),
        ("start (UTC)", s["start_utc"]),
        ("duration", f"{n_steps * step_s:g} s ({n_steps} steps of {step_s:g} s)"),
        ("satellites", f"{s.get('n_sats', '?')} ({s.get('n_isl', '?')} ISLs)"),
        (
            "ground sites",
            f"{kinds.count('terminal')} terminals, {kinds.count('gateway')} gateways, "
            f"{kinds.count('pop')} PoPs",
        ),
        ("pairs", f"{len(run.pairs)} ({len(run.series_pairs)} with RTT series)"),
        ("routing modes", ", ".join(run.modes)),
        ("starmesh", s.get("starmesh_version", "")),
    ]
    cells = "\n".join(f"<tr><th class='l'>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="facts">\n{cells}\n</table>'


def _modes_table(run: RunData) -> str:
    """One row per routing mode: the variants of this run side by side."""
    hours = int(run.summary["n_steps"]) * float(run.summary["step_s"]) / 3600.0
    rows = []
    for mode in run.modes:
        r = [x for x in run.summary["pairs"] if x["mode"] == mode]
        med = [x["rtt_median_ms"] for x in r if x.get("rtt_median_ms") is not None]
        p95 = [x["rtt_p95_ms"] for x in r if x.get("rtt_p95_ms") is not None]
        avail = [float(x["availability"]) for x in r]
        chg = [int(x.get("path_changes", 0)) for x in r]
        rows.append(
            [
                mode,
                str(len(r)),
                str(sum(a > 0 for a in avail)),
                str(sum(a >= 1.0 for a in avail)),
                _ms(float(np.median(med)) if med else None),
                _ms(float(np.mean(p95)) if p95 else None),
                _ms(100.0 * float(np.mean(avail)) if avail else None, ".2f"),
                _ms(float(np.mean(chg)) / hours if chg and hours > 0 else None),
            ]
        )
    return _table(
        [
            "mode",
            "pairs",
            "reachable",
            "always reachable",
            "median of medians [ms]",
            "mean p95 [ms]",
            "mean availability [%]",
            "path changes per pair-hour",
        ],
        rows,
    )


def comparison_rows(data: Any) -> list[dict[str, Any]] | None:
    """The rows of ``comparison.json``: a list of objects, an object holding such a list
    (``{"variants": [...]}``), or an object of objects (one per variant)."""
    if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        return data
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list) and v]
        if lists and all(isinstance(x, dict) for x in lists[0]):
            return list(lists[0])
        if data and all(isinstance(v, dict) for v in data.values()):
            return [{"variant": k, **v} for k, v in data.items()]
    return None


def _generic_table(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return _ms(v, ".4g")
        if isinstance(v, dict):
            text = "; ".join(f"{k} = {json.dumps(x)}" for k, x in v.items()) or "—"
        elif isinstance(v, list):
            text = ", ".join(str(x) for x in v)
        else:
            text = "—" if v is None else str(v)
        # Long values (a GeoJSON area) are in the variant's own scenario.toml.
        return text if len(text) <= 200 else text[:199] + "…"

    numeric = {
        i for i, c in enumerate(cols) if all(isinstance(r.get(c), int | float | None) for r in rows)
    }
    text = set(range(len(cols))) - numeric
    return _table(cols, [[cell(r.get(c)) for c in cols] for r in rows], left=0, text=text)


def _pairs_table(run: RunData) -> str:
    """Every pair (up to :data:`MAX_TABLE_PAIRS`), each mode's statistics side by side."""
    by_pair: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in run.summary["pairs"]:
        by_pair.setdefault((r["src"], r["dst"]), {})[r["mode"]] = r
    head = ["src", "dst"]
    for mode in run.modes:
        head += [f"{mode} min", "median", "p95", "max", "avail [%]", "path chg"]
    rows = []
    for (a, b), per_mode in list(by_pair.items())[:MAX_TABLE_PAIRS]:
        row = [a, b]
        for mode in run.modes:
            r = per_mode.get(mode, {})
            row += [
                _ms(r.get("rtt_min_ms")),
                _ms(r.get("rtt_median_ms")),
                _ms(r.get("rtt_p95_ms")),
                _ms(r.get("rtt_max_ms")),
                _ms(100.0 * r["availability"], ".2f") if "availability" in r else "—",
                str(r.get("path_changes", "—")),
            ]
        rows.append(row)
    more = len(by_pair) - len(rows)
    tail = _note(f"{more} more pairs in summary.json.") if more > 0 else ""
    return (
        _caption("RTT [ms] per pair and routing mode over the whole run.")
        + _table(head, rows, left=2)
        + tail
    )


def _guard(what: str, build: Callable[[], str]) -> str:
    """A section body, or a note saying why it could not be drawn (the rest of the report
    is still written)."""
    try:
        return build()
    except Exception as exc:  # one broken figure must not lose the report
        return _note(f"could not draw {what}: {type(exc).__name__}: {exc}")


def _visibility_body(page: _Page, run: RunData) -> str:
    from .visibility import VISIBILITY_HEAD, visibility_parts

    fig, rows, caption = visibility_parts(run)
    body = _caption(caption) if fig is not None else _note(caption)
    if fig is not None:
        body += page.figure(fig)
    if rows:
        body += _table(VISIBILITY_HEAD, rows)
    return body


def _throughput_body(page: _Page, run: RunData) -> str:
    thr = read_throughput(run)
    if thr is None:
        return _note("No traffic in this run (no flows.parquet).")
    if isinstance(thr, Note):
        return _note(str(thr))
    assert isinstance(thr, Throughput)
    caption = "Sum of each terminal's flow rates [Mbit/s]."
    if len(thr.terminals) > MAX_PLOT_TERMINALS:
        mean = np.nanmean(np.where(np.isfinite(thr.rate_bps), thr.rate_bps, 0.0), axis=(0, 2))
        keep = np.sort(np.argsort(-mean, kind="stable")[:MAX_PLOT_TERMINALS])
        thr = Throughput(
            t_s=thr.t_s,
            modes=thr.modes,
            terminals=[thr.terminals[i] for i in keep],
            rate_bps=thr.rate_bps[:, keep],
        )
        caption += f" The {MAX_PLOT_TERMINALS} terminals with the highest mean rate."
    return _caption(caption) + page.figure(throughput_figure(thr, run.epoch))


def _speed_tests_body(page: _Page, rows: list[dict[str, Any]]) -> str:
    caption = (
        "What a speed test at each terminal gets (service model): the median over the run's "
        "served steps of the download and upload rates, each the terminal's share of its "
        "cell and satellite under processor sharing, capped by the terminal "
        "(terminals.parquet holds every step)."
    )
    if len(rows) > MAX_PLOT_TERMINALS:
        dl = np.array(
            [
                np.inf
                if r.get("download_mbps_median") is None
                else float(r["download_mbps_median"])
                for r in rows
            ]
        )
        keep = np.sort(np.argsort(dl, kind="stable")[:MAX_PLOT_TERMINALS])
        rows = [rows[i] for i in keep]
        caption += f" The {MAX_PLOT_TERMINALS} terminals with the lowest median download."
    return _caption(caption) + page.figure(speed_tests_figure(rows))


def _packets_body(page: _Page, run: RunData) -> str:
    got = read_packets(run)
    if got is None:
        return _note(
            "No packet-level replay in this run (add a [packets] table, or run "
            "starmesh packets RUN_DIR FILE)."
        )
    if isinstance(got, Note):
        return _note(str(got))
    flows, t_s, values = got
    return _caption(
        "ns-3 replay of the run's routes: goodput, congestion window and RTT samples per flow "
        "and time bin."
    ) + page.figure(packets_figure(run.epoch, flows, t_s, values))


def _globe_body(
    page: _Page, run: RunData, series: Series | None, shown: tuple[str, str] | None
) -> str:
    n_sats = int(run.summary.get("n_sats", 0))
    if series is not None and series.t_s.size:
        k = n_frames(max(n_sats, 1), series.t_s.size)
        idx = np.unique(np.linspace(0, series.t_s.size - 1, k).round().astype(np.int64))
        t_s = series.t_s[idx]
    else:
        n_steps, step_s = int(run.summary["n_steps"]), float(run.summary["step_s"])
        k = n_frames(max(n_sats, 1), n_steps)
        t_s = np.unique(np.linspace(0, n_steps - 1, k).round()) * step_s
    sats = sample_satellites(run, t_s)
    pairs = series.pairs if series is not None else []
    paths = read_paths(run, sats.n_sats, pairs, t_s) if pairs else None
    fig = globe_figure(run, sats, series, shown=shown, paths=paths)
    how = (
        "full paths from the run's forwarding state"
        if paths is not None
        else "the link from the terminal to its serving satellite (solid); the run does not "
        "store the rest of the path (ISL route, gateway), drawn dotted from the serving "
        "satellite to the one at the far end (run with <code>[routing] forwarding_state = "
        "true</code> for full paths)"
    )
    return _caption(
        f"{len(t_s)} moments of the run; drag to turn the globe, ▶ to play. Satellites at "
        f"their sub-satellite points, ISLs that are up within reach of the sites, and the "
        f"path of a pair: {how}."
        + (" Choose the pair in the menu at the top left." if len(pairs) > 1 else "")
    ) + page.figure(fig)


def render_report(run_dir: Path | str, *, pair: tuple[str, str] | None = None) -> str:
    """The report of a run folder as HTML text (see :func:`write_report`)."""
    run = read_run(run_dir)
    pairs = plotted_pairs(run, pair=pair)
    series = read_series(run, pairs)
    page = _Page()
    subset = (
        f" {len(pairs)} of the {len(run.series_pairs)} pairs with series, spread over the range "
        "of median RTT; the tables cover every pair."
        if len(pairs) < len(run.series_pairs)
        else ""
    )

    page.section("overview", "Run", _facts(run))

    def comparison() -> str:
        body = _caption(
            "The run's variants side by side: each routing mode over every pair."
        ) + _modes_table(run)
        for name in ("comparison.json", "sweep_summary.json"):
            comp = read_json(run.run_dir / name)
            if isinstance(comp, Note):
                body += _note(str(comp))
                continue
            if comp is None:
                continue
            rows = comparison_rows(comp)
            if rows is None:
                body += _note(f"{name} holds no table this report knows.")
                continue
            body += _caption(f"Variants compared ({name}).") + _generic_table(rows)
            links = [
                f'<a href="variants/{_e(v)}/{REPORT_NAME}">{_e(v)}</a>'
                for v in dict.fromkeys(str(r.get("variant", "")) for r in rows)
                if v and (run.run_dir / "variants" / v / REPORT_NAME).is_file()
            ]
            if links:
                body += _caption("Reports of the variants: " + ", ".join(links) + ".")
            fig = comparison_figure(rows)
            if fig is not None:
                body += page.figure(fig)
        return body

    page.section("variants", "Comparison of variants", _guard("the comparison", comparison))

    def map_body() -> str:
        shapes = read_disruptions(run)
        note = _note(str(shapes)) if isinstance(shapes, Note) else ""
        shapes = shapes if isinstance(shapes, list) else []
        few = len(run.pairs) <= MAX_MAP_PAIRS
        return (
            _caption(
                "Terminals, gateways and PoPs; lines join the routed pairs"
                + ("" if few else f" ({len(pairs)} of {len(run.pairs)}, as in the plots below)")
                + ("; red: jammers and denied areas." if shapes else ".")
                + " Natural Earth 1:110m coastlines and borders."
            )
            + note
            + page.figure(map_figure(run, run.pairs if few else pairs, shapes))
        )

    page.section("map", "Map", _guard("the map", map_body))

    if series is None:
        no_series = _note("This run folder has no RTT series (rtt.parquet).")
        page.section("rtt", "RTT over time", no_series)
        page.section("distributions", "RTT distributions", no_series)
    else:
        s = series

        def rtt_body() -> str:
            return _caption(
                "Round-trip time per pair at every step, one plot per routing mode; gaps: no "
                "route. Click a pair in the legend to hide it." + subset
            ) + page.figure(rtt_figure(s, run.epoch))

        page.section("rtt", "RTT over time", _guard("the RTT plot", rtt_body))

        svc = read_service(run, s)
        if svc is not None:

            def service_body() -> str:
                if isinstance(svc, Note):
                    return _note(str(svc))
                j = int(np.argmin(np.abs(np.asarray(svc.quantiles) - 0.5)))
                p50 = Series(
                    t_s=s.t_s,
                    modes=s.modes,
                    pairs=s.pairs,
                    rtt_ms=np.transpose(svc.rtt_q_ms[:, j], (0, 2, 1)),
                    src_sat=s.src_sat,
                    dst_sat=s.dst_sat,
                )
                share = run.summary.get("service", {}).get("modes", {})
                parts = []
                for mode, info in share.items():
                    sh = info.get("share", {}) if isinstance(info, dict) else {}
                    if sh:
                        top = ", ".join(f"{k} {100 * v:.0f} %" for k, v in sh.items() if v > 0)
                        parts.append(f"{mode}: {top}")
                return _caption(
                    "The RTT a user measures (service model): the median of each step's RTT "
                    "distribution per pair (propagation along the scheduled path, access, "
                    "processing and queueing; service.parquet also holds the tail quantiles). "
                    + ("Share of the mean RTT: " + "; ".join(parts) + "." if parts else "")
                    + subset
                ) + page.figure(rtt_figure(p50, run.epoch))

            page.section(
                "rtt-service",
                "RTT as users measure it",
                _guard("the service RTT plot", service_body),
            )

        def dist_body() -> str:
            body = _caption(
                "RTT of each pair over the run: box from the 25th to the 75th percentile, line "
                "at the median, whiskers at the 5th and 95th, dashes at the minimum and "
                "maximum." + subset
            ) + page.figure(distribution_figure(s))
            if len(pairs) < len(run.pairs):
                body += _caption(
                    f"Median RTT of all {len(run.pairs)} pairs (summary.json)."
                ) + page.figure(medians_figure(run.summary))
            return body

        page.section("distributions", "RTT distributions", _guard("the distributions", dist_body))

    speed_rows = run.summary.get("service", {}).get("terminals") or []
    if any(r.get("download_mbps_median") is not None for r in speed_rows):
        page.section(
            "speed-tests",
            "Speed tests per terminal",
            _guard("the speed tests", lambda: _speed_tests_body(page, speed_rows)),
        )

    def avail_body() -> str:
        av = read_availability(run)
        if av is None:
            return _note("This run folder has no RTT series (rtt.parquet).")
        t_s, available, n = av
        return _caption(
            f"Share of the {n} pairs with RTT series that have a route, at every step."
        ) + page.figure(availability_figure(run.epoch, t_s, available, run.modes))

    page.section("availability", "Availability over time", _guard("availability", avail_body))
    page.section(
        "visibility",
        "Satellites in view and handovers",
        _guard("the visibility", lambda: _visibility_body(page, run)),
    )
    page.section(
        "throughput",
        "Throughput per terminal",
        _guard("throughput", lambda: _throughput_body(page, run)),
    )
    page.section(
        "packets",
        "Packet level (ns-3)",
        _guard("the packet level", lambda: _packets_body(page, run)),
    )
    page.section(
        "globe",
        "Globe",
        _guard(
            "the globe",
            lambda: _globe_body(page, run, series, pair or (pairs[0] if pairs else None)),
        ),
    )
    page.section("pairs", "Every pair", _guard("the pair table", lambda: _pairs_table(run)))

    title = f"starmesh report: {run.summary.get('scenario', run.run_dir.name)}"
    desc = str(run.scenario.get("description", ""))
    nav = " ".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in page.nav)
    body = "\n".join(page.sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="starmesh {_e(__version__)}">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body data-plots-expected="{page.n_figs}" data-plots-rendered="0" data-errors="0">
<script>{_PROBE_JS}</script>
<header><h1>{_e(title)}</h1><p>{_e(desc)}</p></header>
<nav>{nav}</nav>
<main>
{body}
</main>
<script>{_plotly_js()}</script>
<script>{_RENDER_JS}</script>
</body>
</html>
"""


def write_report(run_dir: Path | str, *, pair: tuple[str, str] | None = None) -> Path:
    """Write ``report.html`` into a run folder: a self-contained, offline page.

    The page holds plotly.js and all its data (nothing is fetched): the run's facts, the
    routing modes side by side, a map of the ground segment, RTT over time and its
    distribution per pair (all series pairs, or :data:`MAX_PLOT_PAIRS` of them spread over the
    range of RTT), availability over time, throughput per terminal (when the run has
    ``flows.parquet``), an animated globe of satellites, links and paths, and the statistics of
    every pair. A part that cannot be drawn is replaced by a note saying why.

    Parameters
    ----------
    run_dir : Path or str
        A folder written by ``starmesh run``.
    pair : (str, str), optional
        The pair whose path the globe shows first (default: the first pair with a series).

    Returns
    -------
    Path
        ``run_dir / "report.html"``, written atomically (temporary name, then rename).

    Raises
    ------
    StarmeshError
        If ``run_dir`` is not a finished run folder, or ``pair`` has no series in it.
    """
    run_dir = Path(run_dir)
    text = render_report(run_dir, pair=pair)
    out = run_dir / REPORT_NAME
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StarmeshError(f"cannot write {str(out)!r}: {exc}") from None
    return out
