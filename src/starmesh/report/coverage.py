"""The coverage report: H3 cells on the offline map, coloured by a coverage statistic.

The cells are a plotly ``choropleth`` over an inline GeoJSON of the cells (nothing fetched:
plotly's base layers are off and the coastlines and borders are starmesh's own, as on the run
report's map); a menu switches the colour between the fraction of time with at least one and
at least ``k`` satellites, the mean number in view and handovers per hour.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import numpy as np
from h3.api import basic_int as h3i

from .. import __version__
from ..coverage import CoverageResult
from .charts import FONT
from .geo import _NO_BASE_LAYERS, _base_traces
from .page import _CSS, _PROBE_JS, _RENDER_JS, _Page, _plotly_js

#: Statistics the map can show, with their labels.
MAP_STATISTICS = {
    "frac_ge1": "time with >= 1 satellite",
    "frac_ge_k": "time with >= k satellites",
    "n_view_mean": "mean satellites in view",
    "handovers_per_hour": "handovers per hour",
}


# A choropleth makes plotly.js load its world topojson even when every base layer is off;
# giving it an empty one in ``window.PlotlyGeoAssets`` (plotly.js's hook for offline assets)
# keeps the page from fetching anything. The coastlines and borders are starmesh's own.
_EMPTY_TOPOJSON = {
    "type": "Topology",
    "arcs": [],
    "objects": {
        name: {"type": "GeometryCollection", "geometries": []}
        for name in ("land", "ocean", "lakes", "rivers", "countries", "subunits", "coastlines")
    },
}
_OFFLINE_GEO_JS = (
    "window.PlotlyGeoAssets = {topojson: {"
    + ", ".join(
        f"{name}: {json.dumps(_EMPTY_TOPOJSON)}"
        for name in ("world_110m", "world_50m", "usa_110m", "usa_50m")
    )
    + "}};"
)


def _cell_ring(cell: int) -> list[list[float]]:
    # Clockwise (d3-geo fills the inside of a clockwise ring; GeoJSON's are counter-clockwise),
    # longitudes continued past +-180 deg for a cell across the antimeridian.
    pts = [(lng, lat) for lat, lng in h3i.cell_to_boundary(cell)]
    lons = [p[0] for p in pts]
    if max(lons) - min(lons) > 180.0:
        pts = [(lon + 360.0 if lon < 0 else lon, lat) for lon, lat in pts]
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    if area > 0:
        pts = pts[::-1]
    ring = [[round(lon, 4), round(lat, 4)] for lon, lat in pts]
    return [*ring, ring[0]]


def coverage_map_figure(result: CoverageResult) -> dict[str, Any]:
    """A plotly figure (plain data) of the cells coloured by :data:`MAP_STATISTICS`."""
    st = result.statistics()
    features = [
        {
            "type": "Feature",
            "id": str(i),
            "geometry": {"type": "Polygon", "coordinates": [_cell_ring(int(c))]},
        }
        for i, c in enumerate(result.grid.cells)
    ]
    ids = [str(i) for i in range(result.grid.n_cells)]
    hover = [h3i.int_to_str(int(c)) for c in result.grid.cells]

    def values(name: str) -> list[float | None]:
        return [None if not math.isfinite(v) else round(float(v), 4) for v in st[name]]

    def style(name: str) -> dict[str, Any]:
        v = st[name][np.isfinite(st[name])]
        lo, hi = (0.0, 1.0) if name.startswith("frac") else (0.0, float(v.max()) if v.size else 1.0)
        label = MAP_STATISTICS[name].replace(">= k", f">= {result.k}")
        return {"zmin": lo, "zmax": max(hi, lo + 1e-9), "colorbar": {"title": {"text": label}}}

    first = "frac_ge1"
    cells = {
        "type": "choropleth",
        "geojson": {"type": "FeatureCollection", "features": features},
        "featureidkey": "id",
        "locationmode": "geojson-id",
        "locations": ids,
        "z": values(first),
        "text": hover,
        "hovertemplate": "%{text}<br>%{z}<extra></extra>",
        "colorscale": "Viridis",
        "marker": {"line": {"width": 0}},
        **style(first),
    }
    buttons = [
        {
            "label": MAP_STATISTICS[name].replace(">= k", f">= {result.k}"),
            "method": "restyle",
            "args": [
                {
                    "z": [values(name)],
                    "zmin": style(name)["zmin"],
                    "zmax": style(name)["zmax"],
                    "colorbar.title.text": style(name)["colorbar"]["title"]["text"],
                },
                [0],
            ],
        }
        for name in MAP_STATISTICS
    ]
    lat, lon = result.grid.lat_deg, result.grid.lon_deg
    geo: dict[str, Any] = {
        **_NO_BASE_LAYERS,
        "projection": {"type": "natural earth"},
        "showframe": True,
        "bgcolor": "#f4f8fb",
    }
    if result.grid.name != "earth" and lat.size:
        pad = 2.0
        geo["lataxis"] = {"range": [float(lat.min()) - pad, float(lat.max()) + pad]}
        geo["lonaxis"] = {"range": [float(lon.min()) - pad, float(lon.max()) + pad]}
        geo["projection"] = {"type": "mercator"}
    return {
        "data": [cells, *_base_traces()],
        "layout": {
            "font": FONT,
            "height": 600,
            "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
            "paper_bgcolor": "white",
            "geo": geo,
            "updatemenus": [{"buttons": buttons, "x": 0.0, "y": 1.08, "xanchor": "left"}],
        },
    }


def render_coverage_report(result: CoverageResult, notes: tuple[str, ...] = ()) -> str:
    """The offline ``report.html`` of a coverage run: its settings, the region-wide figures
    and the map."""
    page = _Page()
    meta = result.meta_dict()
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in sorted(meta.items())
    )
    summ = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v:.6g}</td></tr>" for k, v in result.summary().items()
    )
    note_html = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    page.section("settings", "Settings", f"{note_html}<table>{rows}</table>")
    page.section("summary", "Region-wide (area-weighted)", f"<table>{summ}</table>")
    page.section(
        "map",
        "Coverage map",
        '<p class="caption">H3 cells coloured by the statistic chosen above the map.</p>'
        + page.figure(coverage_map_figure(result)),
    )
    title = f"starmesh coverage: {meta.get('constellation', '')} over {result.grid.name}"
    nav = " ".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in page.nav)
    body = "\n".join(page.sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="starmesh {html.escape(__version__)}">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body data-plots-expected="{page.n_figs}" data-plots-rendered="0" data-errors="0">
<script>{_PROBE_JS}</script>
<header><h1>{html.escape(title)}</h1></header>
<nav>{nav}</nav>
<main>
{body}
</main>
<script>{_OFFLINE_GEO_JS}</script>
<script>{_plotly_js()}</script>
<script>{_RENDER_JS}</script>
</body>
</html>
"""
