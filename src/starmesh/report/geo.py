"""The map and the globe: ground sites on a 2-D map, and satellites, links and paths on an
animated globe, over Natural Earth coastlines and borders shipped with starmesh (no tiles, no
topojson fetched: plotly's own base layers are switched off, so nothing is requested).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from datetime import timedelta
from importlib.resources import files
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..frames import ecef_to_geodetic
from ..io.runfolder import RunData, Series, Shape, read_geometry
from .charts import FONT, PALETTE, pair_label

#: Globe animation frames at most; fewer when the constellation is large (see
#: :data:`FRAME_BUDGET_BYTES`).
MAX_FRAMES = 60
#: Approximate size of all frames' satellite and link data in the page [bytes].
FRAME_BUDGET_BYTES = 5_000_000
#: ISLs drawn per frame at most: those nearest the sites.
MAX_GLOBE_ISLS = 800
#: Pairs drawn on the map as lines at most.
MAX_MAP_PAIRS = 200
#: Bytes per float32 in a base64 typed array.
_B64_F4 = 16 / 3

_SITE_STYLE = {
    "terminal": ("terminals", "circle", "#1f77b4", 7),
    "gateway": ("gateways", "triangle-up", "#ff7f0e", 10),
    "pop": ("PoPs", "square", "#2ca02c", 10),
}
_NO_BASE_LAYERS = {
    # Each of plotly's base layers needs a topojson file it would fetch from the network.
    "showcoastlines": False,
    "showland": False,
    "showocean": False,
    "showlakes": False,
    "showrivers": False,
    "showcountries": False,
    "showsubunits": False,
}


@functools.cache
def world_lines() -> dict[str, tuple[NDArray[np.float32], NDArray[np.float32]]]:
    """Natural Earth 1:110m coastlines and land borders shipped with starmesh.

    Returns
    -------
    dict
        ``{"coastlines": (lon_deg, lat_deg), "borders": (lon_deg, lat_deg)}``: float32 arrays
        of all polylines, each followed by a NaN (a gap), at 0.01 deg resolution.
    """
    raw = json.loads(
        (files("starmesh") / "data" / "naturalearth-110m-lines.json").read_text(encoding="utf-8")
    )
    scale = float(raw["scale"])
    out = {}
    for key in ("coastlines", "borders"):
        parts = []
        for line in raw[key]:
            xy = np.asarray(line, np.float32).reshape(-1, 2) / np.float32(scale)
            parts.append(np.vstack([xy, [np.nan, np.nan]]))
        xy = np.vstack(parts).astype(np.float32)
        out[key] = (xy[:, 0].copy(), xy[:, 1].copy())
    return out


def _base_traces() -> list[dict[str, Any]]:
    lines = world_lines()
    out = []
    for key, colour, width in (("coastlines", "#6b7b8c", 0.9), ("borders", "#b4bcc6", 0.7)):
        lon, lat = lines[key]
        out.append(
            {
                "type": "scattergeo",
                "mode": "lines",
                "name": key,
                "lon": lon,
                "lat": lat,
                "line": {"color": colour, "width": width},
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
    return out


def _site_traces(run: RunData, *, labels: tuple[str, ...]) -> list[dict[str, Any]]:
    """Terminals, gateways and PoPs; sites of the kinds in ``labels`` carry their names."""
    s = run.sites
    out = []
    for kind, (name, symbol, colour, size) in _SITE_STYLE.items():
        idx = [i for i, k in enumerate(s.kinds) if k == kind]
        if not idx:
            continue
        names = [s.names[i] for i in idx]
        out.append(
            {
                "type": "scattergeo",
                "mode": "markers+text" if kind in labels else "markers",
                "name": name,
                "lon": s.lon_deg[idx],
                "lat": s.lat_deg[idx],
                "text": names,
                "textposition": "top center",
                "textfont": {"size": 10, "color": "#333"},
                "marker": {
                    "symbol": symbol,
                    "size": size,
                    "color": colour,
                    "line": {"color": "white", "width": 1},
                },
                "hovertemplate": f"%{{text}} ({kind})<br>%{{lat:.3f}}°, %{{lon:.3f}}°"
                "<extra></extra>",
            }
        )
    return out


def _nan_join(
    segments: list[tuple[NDArray[np.float64], NDArray[np.float64]]],
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Polylines ``(lon, lat)`` as one line trace's arrays, NaN between them."""
    if not segments:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    lon = np.concatenate([np.append(x, np.nan) for x, _ in segments])
    lat = np.concatenate([np.append(y, np.nan) for _, y in segments])
    return lon.astype(np.float32), lat.astype(np.float32)


def _clockwise(
    lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A ring in clockwise order (seen from above, in lon/lat).

    plotly fills a ring with d3-geo, which takes a clockwise ring for the area inside it and a
    counter-clockwise one for the rest of the sphere; GeoJSON rings go counter-clockwise.
    """
    x = (lon - lon[0] + 180.0) % 360.0 - 180.0  # unwrapped around the antimeridian
    signed_area = 0.5 * float(np.sum(x[:-1] * lat[1:] - x[1:] * lat[:-1]))
    return (lon[::-1], lat[::-1]) if signed_area > 0 else (lon, lat)


def _extent(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> dict[str, Any] | None:
    """Map ranges around points, or None when they spread over most of the world."""
    if lon.size == 0:
        return None
    # Longitudes may straddle the antimeridian: measure them around their circular mean.
    c = math.degrees(math.atan2(np.sin(np.radians(lon)).mean(), np.cos(np.radians(lon)).mean()))
    d = (lon - c + 180.0) % 360.0 - 180.0
    lo, hi = float(d.min()), float(d.max())
    la, lb = float(lat.min()), float(lat.max())
    if hi - lo > 200.0 or lb - la > 100.0:
        return None
    pad_x = max(4.0, 0.15 * (hi - lo))
    pad_y = max(3.0, 0.15 * (lb - la))
    return {
        "lonaxis": {"range": [c + lo - pad_x, c + hi + pad_x]},
        "lataxis": {"range": [max(-80.0, la - pad_y), min(84.0, lb + pad_y)]},
    }


def map_figure(run: RunData, pairs: list[tuple[str, str]], shapes: list[Shape]) -> dict[str, Any]:
    """Map of the ground segment: terminals, gateways, PoPs, routed pairs (as lines) and
    disruptions (jammers, denied areas), over coastlines and borders.

    Parameters
    ----------
    run : RunData
    pairs : list of (str, str)
        Pairs to draw as great-circle lines (at most :data:`MAX_MAP_PAIRS`).
    shapes : list of Shape
        Disruptions.
    """
    s = run.sites
    data = _base_traces()
    segs = []
    for a, b in pairs[:MAX_MAP_PAIRS]:
        i, j = s.names.index(a), s.names.index(b)
        segs.append((s.lon_deg[[i, j]], s.lat_deg[[i, j]]))
    lon, lat = _nan_join(segs)
    if lon.size:
        data.append(
            {
                "type": "scattergeo",
                "mode": "lines",
                "name": "routed pairs",
                "lon": lon,
                "lat": lat,
                "line": {"color": "rgba(31,119,180,0.35)", "width": 1},
                "hoverinfo": "skip",
            }
        )
    for kind in dict.fromkeys(sh.kind for sh in shapes):
        points = [sh for sh in shapes if sh.kind == kind and sh.lat_deg.size == 1]
        outlines = [sh for sh in shapes if sh.kind == kind and sh.lat_deg.size > 1]
        if outlines:
            lon, lat = _nan_join([_clockwise(sh.lon_deg, sh.lat_deg) for sh in outlines])
            data.append(
                {
                    "type": "scattergeo",
                    "mode": "lines",
                    "name": f"{kind} (area)",
                    "lon": lon,
                    "lat": lat,
                    "line": {"color": "#d62728", "width": 1.5},
                    "fill": "toself",
                    "fillcolor": "rgba(214,39,40,0.12)",
                    "hoverinfo": "name",
                }
            )
        if points:
            data.append(
                {
                    "type": "scattergeo",
                    "mode": "markers",
                    "name": kind,
                    "lon": np.array([p.lon_deg[0] for p in points]),
                    "lat": np.array([p.lat_deg[0] for p in points]),
                    "text": [p.name for p in points],
                    "marker": {"symbol": "x", "size": 10, "color": "#d62728"},
                    "hovertemplate": f"%{{text}} ({kind})<extra></extra>",
                }
            )
    data.extend(_site_traces(run, labels=tuple(_SITE_STYLE) if len(s.names) <= 40 else ()))
    all_lon = np.concatenate([s.lon_deg, *[sh.lon_deg for sh in shapes]])
    all_lat = np.concatenate([s.lat_deg, *[sh.lat_deg for sh in shapes]])
    ext = _extent(all_lon, all_lat)
    geo: dict[str, Any] = {
        **_NO_BASE_LAYERS,
        "projection": {"type": "mercator" if ext else "natural earth"},
        "showframe": True,
        "framecolor": "#999",
        "bgcolor": "#f4f8fb",
        "lataxis": {"showgrid": True, "gridcolor": "#e3e8ee", "dtick": 10},
        "lonaxis": {"showgrid": True, "gridcolor": "#e3e8ee", "dtick": 10},
    }
    if ext:
        geo["lonaxis"].update(ext["lonaxis"])
        geo["lataxis"].update(ext["lataxis"])
    return {
        "data": data,
        "layout": {
            "font": FONT,
            "height": 560,
            "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
            "paper_bgcolor": "white",
            "geo": geo,
            "legend": {"x": 0.01, "y": 0.99, "bgcolor": "rgba(255,255,255,0.8)"},
        },
    }


# --- Globe ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Satellites:
    """Satellite positions at the globe's frame times.

    Attributes
    ----------
    t_s : ndarray, shape (F,)
        Frame times [s since the epoch].
    r_ecef_m : ndarray, shape (F, S, 3)
        ECEF positions [m]; NaN where propagation failed.
    isl_edges : ndarray of int, shape (E, 2)
        The run's ISLs (``isls.parquet``).
    isl_max_range_m : float
        Longest ISL that is up [m]; inf if unknown.
    isl_up : ndarray of bool, shape (F, E), or None
        Re-paired ISLs: which links are up at each frame (None: fixed ISLs).
    """

    t_s: NDArray[np.float64]
    r_ecef_m: NDArray[np.float64]
    isl_edges: NDArray[np.int64]
    isl_max_range_m: float
    isl_up: NDArray[np.bool_] | None = None

    @property
    def n_sats(self) -> int:
        """Number of satellites ``S``."""
        return int(self.r_ecef_m.shape[1])


def n_frames(n_sats: int, n_steps: int) -> int:
    """Frames of the globe: at most :data:`MAX_FRAMES`, fewer for huge constellations, so the
    satellites' data stays near :data:`FRAME_BUDGET_BYTES`."""
    per_frame = 2 * _B64_F4 * (n_sats + 6 * MAX_GLOBE_ISLS)
    return max(1, min(MAX_FRAMES, n_steps, max(10, int(FRAME_BUDGET_BYTES // per_frame))))


def sample_satellites(run: RunData, t_s: NDArray[np.float64]) -> Satellites:
    """Satellite positions at ``t_s``, recomputed from the run's resolved ``scenario.toml``.

    Raises
    ------
    StarmeshError, pydantic.ValidationError, OSError
        If the scenario cannot be loaded (for instance a TLE file that has moved).
    """
    geo = read_geometry(run.run_dir)
    r, ok = geo.propagator.positions_ecef_m(np.asarray(t_s, np.float64))
    r = np.where(ok[..., None], r, np.nan)
    steps = np.rint(np.asarray(t_s, np.float64) / geo.grid.step_s).astype(np.int64)
    return Satellites(
        t_s=np.asarray(t_s, np.float64),
        r_ecef_m=r,
        isl_edges=geo.isl_edges,
        isl_max_range_m=geo.isl_max_range_m,
        isl_up=geo.isl_up(steps),
    )


def _unit(lat_deg: NDArray[np.float64], lon_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    la, lo = np.radians(lat_deg), np.radians(lon_deg)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _fmt_offset(run: RunData, t: float) -> str:
    return (run.epoch + timedelta(seconds=float(t))).strftime("%H:%M:%S")


def globe_figure(
    run: RunData,
    sats: Satellites,
    series: Series | None,
    *,
    shown: tuple[str, str] | None = None,
    paths: dict[tuple[str, str, str], list[list[int]]] | None = None,
) -> dict[str, Any]:
    """An animated globe (orthographic projection) with a time slider.

    Each frame shows every satellite, the ISLs that are up near the sites (at most
    :data:`MAX_GLOBE_ISLS`), the links from each drawn pair's terminal to its serving
    satellite, and the path of one pair of ``series`` (a menu chooses which): the full path
    where ``paths`` gives it (forwarding state), else its known part (terminal to serving
    satellite) solid and the part the run does not store (ISL route, gateway) dotted.

    Parameters
    ----------
    run : RunData
    sats : Satellites
        Positions at the frame times; every frame time is a step of ``series``.
    series : Series, optional
        Serving satellites of the pairs to draw.
    shown : (str, str), optional
        The pair whose path is shown at first; default: the first pair of ``series``.
    paths : dict, optional
        Full paths from :func:`~starmesh.report.rundata.read_paths`.
    """
    s = run.sites
    lat_r, lon_r, _h = ecef_to_geodetic(sats.r_ecef_m)
    sat_lat = np.degrees(lat_r).astype(np.float32)
    sat_lon = np.degrees(lon_r).astype(np.float32)
    n_f, n_s = sat_lat.shape
    n_sites = len(s.names)
    pairs = series.pairs if series is not None else []
    site_ids = sorted({s.names.index(x) for p in pairs for x in p}) or list(range(n_sites))
    centre = _unit(s.lat_deg[site_ids], s.lon_deg[site_ids]).sum(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    spread = float(
        np.degrees(np.arccos(np.clip(_unit(s.lat_deg, s.lon_deg) @ centre, -1, 1))).max()
    )
    cap_cos = math.cos(math.radians(min(spread + 12.0, 50.0)))
    c_lat = math.degrees(math.asin(float(np.clip(centre[2], -1, 1))))
    c_lon = math.degrees(math.atan2(float(centre[1]), float(centre[0])))

    # Frame k: position of node n (satellite n < S, site n - S) as (lon, lat).
    def node_ll(k: int, nodes: list[int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        lon = np.array([sat_lon[k, n] if n < n_s else s.lon_deg[n - n_s] for n in nodes])
        lat = np.array([sat_lat[k, n] if n < n_s else s.lat_deg[n - n_s] for n in nodes])
        return lon, lat

    step_of = {}
    if series is not None:
        step_of = {round(float(t), 6): i for i, t in enumerate(series.t_s)}
    modes = series.modes if series is not None else []
    shown = shown or (pairs[0] if pairs else None)

    frames: list[dict[str, Any]] = []
    for k in range(n_f):
        u = _unit(sat_lat[k].astype(np.float64), sat_lon[k].astype(np.float64))
        in_cap = (u @ centre) >= cap_cos
        e = sats.isl_edges
        up = in_cap[e[:, 0]] & in_cap[e[:, 1]]
        if sats.isl_up is not None:
            up &= sats.isl_up[k]
        if np.isfinite(sats.isl_max_range_m):
            length = np.linalg.norm(sats.r_ecef_m[k, e[:, 0]] - sats.r_ecef_m[k, e[:, 1]], axis=1)
            up &= length <= sats.isl_max_range_m
        sel = np.flatnonzero(up)
        if sel.size > MAX_GLOBE_ISLS:
            mid = u[e[sel, 0]] + u[e[sel, 1]]
            sel = sel[np.argsort(-(mid @ centre), kind="stable")[:MAX_GLOBE_ISLS]]
        isl_lon = np.full((sel.size, 3), np.nan, np.float32)
        isl_lat = np.full((sel.size, 3), np.nan, np.float32)
        isl_lon[:, :2] = sat_lon[k][e[sel]]
        isl_lat[:, :2] = sat_lat[k][e[sel]]

        step = step_of.get(round(float(sats.t_s[k]), 6))
        gsl: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
        path_data: list[dict[str, Any]] = []
        for m, mode in enumerate(modes):
            for p, (a, b) in enumerate(pairs):
                ia, ib = s.names.index(a), s.names.index(b)
                solid: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
                dotted: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
                ss = (
                    int(series.src_sat[m, p, step])
                    if series is not None and step is not None
                    else -1
                )
                ds = (
                    int(series.dst_sat[m, p, step])
                    if series is not None and step is not None
                    else -1
                )
                full = paths.get((mode, a, b)) if paths is not None else None
                if full is not None and full[k]:
                    solid.append(node_ll(k, full[k]))
                elif ss >= 0 and ds >= 0:
                    solid.append(node_ll(k, [n_s + ia, ss]))
                    dotted.append(node_ll(k, [ss, ds, n_s + ib] if ds != ss else [ss, n_s + ib]))
                if ss >= 0:
                    gsl.append(node_ll(k, [n_s + ia, ss]))
                for part in (solid, dotted):
                    lon, lat = _nan_join(part)
                    path_data.append({"lon": lon, "lat": lat})
        g_lon, g_lat = _nan_join(gsl)
        frames.append(
            {
                "name": f"f{k}",
                "data": [
                    {"lon": isl_lon.reshape(-1), "lat": isl_lat.reshape(-1)},
                    {"lon": sat_lon[k], "lat": sat_lat[k]},
                    {"lon": g_lon, "lat": g_lat},
                    *path_data,
                ],
            }
        )

    data: list[dict[str, Any]] = _base_traces()
    first = len(data)
    data.append(
        {
            "type": "scattergeo",
            "mode": "lines",
            "name": "ISLs (up, near the sites)",
            "line": {"color": "rgba(90,120,200,0.35)", "width": 0.8},
            "hoverinfo": "skip",
        }
    )
    data.append(
        {
            "type": "scattergeo",
            "mode": "markers",
            "name": f"satellites ({n_s})",
            "marker": {"size": 3, "color": "#3a5fcd", "opacity": 0.8},
            "customdata": np.arange(n_s, dtype=np.int32),
            "hovertemplate": "satellite %{customdata}<br>%{lat:.2f}°, %{lon:.2f}°<extra></extra>",
        }
    )
    data.append(
        {
            "type": "scattergeo",
            "mode": "lines",
            "name": "terminal → serving satellite",
            "line": {"color": "rgba(255,127,14,0.7)", "width": 1.2},
            "hoverinfo": "skip",
        }
    )
    path_trace: list[tuple[str, str]] = []  # the pair of each path trace, in order
    for m, mode in enumerate(modes):
        for p, (a, b) in enumerate(pairs):
            colour = PALETTE[p % len(PALETTE)]
            visible = (a, b) == shown
            path_trace += [(a, b), (a, b)]
            data.append(
                {
                    "type": "scattergeo",
                    "mode": "lines+markers",
                    "name": f"path ({mode})",
                    "legendgroup": f"path {mode}",
                    "visible": visible,
                    "line": {
                        "color": colour,
                        "width": 3.0 if m == 0 else 2.0,
                        "dash": "solid" if m == 0 else "dash",
                    },
                    "marker": {"size": 6, "color": colour},
                    "hoverinfo": "name",
                }
            )
            data.append(
                {
                    "type": "scattergeo",
                    "mode": "lines",
                    "name": f"route not stored ({mode})",
                    "legendgroup": f"path {mode}",
                    "showlegend": False,
                    "visible": visible,
                    "line": {"color": colour, "width": 1.5, "dash": "dot"},
                    "hoverinfo": "name",
                }
            )
    n_anim = len(data) - first
    few = n_sites <= 30
    data.extend(_site_traces(run, labels=("gateway", "pop") if few else ()))
    # The first frame's data is the figure's initial state.
    for i, fd in enumerate(frames[0]["data"] if frames else []):
        data[first + i].update(fd)
    for fr in frames:
        fr["traces"] = list(range(first, first + n_anim))

    labels = [_fmt_offset(run, t) for t in sats.t_s]
    slider = {
        "active": 0,
        "x": 0.08,
        "len": 0.9,
        "y": 0.02,
        "pad": {"t": 10},
        "currentvalue": {"prefix": "UTC ", "font": {"size": 13}},
        "steps": [
            {
                "label": labels[k],
                "method": "animate",
                "args": [
                    [f"f{k}"],
                    {
                        "mode": "immediate",
                        "frame": {"duration": 0, "redraw": True},
                        "transition": {"duration": 0},
                    },
                ],
            }
            for k in range(n_f)
        ],
    }
    buttons = {
        "type": "buttons",
        "direction": "left",
        "x": 0.0,
        "y": 0.02,
        "xanchor": "left",
        "yanchor": "top",
        "pad": {"t": 40, "r": 10},
        "showactive": False,
        "buttons": [
            {
                "label": "▶",
                "method": "animate",
                "args": [
                    None,
                    {
                        "frame": {"duration": 400, "redraw": True},
                        "fromcurrent": True,
                        "transition": {"duration": 0},
                    },
                ],
            },
            {
                "label": "❚❚",
                "method": "animate",
                "args": [
                    [None],
                    {
                        "mode": "immediate",
                        "frame": {"duration": 0, "redraw": False},
                        "transition": {"duration": 0},
                    },
                ],
            },
        ],
    }
    menus: list[dict[str, Any]] = [buttons] if n_f > 1 else []
    if len(pairs) > 1:
        idx = list(range(first + 3, first + 3 + len(path_trace)))
        menus.append(
            {
                "type": "dropdown",
                "x": 0.0,
                "y": 1.0,
                "xanchor": "left",
                "yanchor": "top",
                "active": pairs.index(shown) if shown in pairs else 0,
                "buttons": [
                    {
                        "label": f"path of {pair_label(a, b)}",
                        "method": "restyle",
                        "args": [{"visible": [pt == (a, b) for pt in path_trace]}, idx],
                    }
                    for a, b in pairs
                ],
            }
        )
    layout = {
        "font": FONT,
        "height": 760,
        "margin": {"l": 0, "r": 0, "t": 10, "b": 80},
        "paper_bgcolor": "white",
        "showlegend": True,
        "legend": {"x": 0.0, "y": 0.9, "bgcolor": "rgba(255,255,255,0.85)", "font": {"size": 11}},
        "geo": {
            **_NO_BASE_LAYERS,
            "projection": {
                "type": "orthographic",
                "rotation": {"lon": round(c_lon, 2), "lat": round(c_lat, 2)},
            },
            "showframe": True,
            "framecolor": "#8899aa",
            "framewidth": 1,
            "bgcolor": "white",
            "lataxis": {"showgrid": True, "gridcolor": "#e6ebf0", "dtick": 15},
            "lonaxis": {"showgrid": True, "gridcolor": "#e6ebf0", "dtick": 15},
            "domain": {"x": [0.22, 1.0], "y": [0.0, 1.0]},
        },
        "sliders": [slider] if n_f > 1 else [],
        "updatemenus": menus,
    }
    return {"data": data, "layout": layout, "frames": frames}
