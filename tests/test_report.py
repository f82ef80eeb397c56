"""The offline report, the globe's data and the CZML export, on a small run made by the real
simulator (Starlink's 550 km shell, three Ukrainian terminals, a gateway and a PoP, 20 steps,
both routing modes, with forwarding state)."""

from __future__ import annotations

import base64
import json
import re
import shutil
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from starmesh.cli import app
from starmesh.errors import StarmeshError
from starmesh.io.runfolder import (
    RunData,
    SiteTable,
    read_availability,
    read_disruptions,
    read_paths,
    read_run,
    read_series,
    read_service,
)
from starmesh.plan import build_plan
from starmesh.report import write_report
from starmesh.report.charts import decimate
from starmesh.report.encoding import typed_array
from starmesh.report.geo import MAX_FRAMES, _clockwise, world_lines
from starmesh.report.page import MAX_PLOT_PAIRS, plotted_pairs
from starmesh.runner import run_plan
from starmesh.scenario import parse_scenario

runner = CliRunner()

N_STEPS = 20
STEP_S = 30.0
N_SATS = 1584  # starlink-550: 72 x 22
#: A report of a small run: plotly.js (about 4.8 MB) and little else.
MAX_SMALL_REPORT_BYTES = 8_000_000

SCENARIO: dict[str, Any] = {
    "name": "report-test",
    "description": "small run for the report tests",
    "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": N_STEPS * STEP_S, "step_s": STEP_S},
    "service": {"model": "geometric"},
    "constellation": {"preset": "starlink-550"},
    "ground": {
        "terminals": ["Kyiv", "Lviv", "Odesa"],
        "gateways": ["Wola-Krobowska"],
        "pops": ["Warsaw"],
    },
    "routing": {"modes": ["isl", "bent-pipe"], "forwarding_state": True},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "small"
    run_plan(build_plan(parse_scenario(SCENARIO)), out)
    return out


@pytest.fixture
def fresh_run(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the run folder that a test may change."""
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    (out / "report.html").unlink(missing_ok=True)
    return out


class _Tags(HTMLParser):
    """Every tag's attributes (script bodies are not parsed as markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(text)
    return p.tags


def _figures(text: str) -> list[dict[str, Any]]:
    """The figures' JSON blocks of a report, in page order."""
    out = []
    for block in text.split('<script type="application/json" class="starmesh-figure"')[1:]:
        body = block.split(">", 1)[1].split("</script>", 1)[0]
        out.append(json.loads(body))
    return out


def _decode(spec: Any) -> np.ndarray:
    """A plotly typed-array spec (or a plain list) as a numpy array."""
    if isinstance(spec, dict):
        dtype = {"f8": "<f8", "f4": "<f4", "i4": "<i4", "i2": "<i2", "u1": "u1"}[spec["dtype"]]
        return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtype)
    return np.asarray(spec, dtype=float)


# --- The page -------------------------------------------------------------------------------


def test_report_is_self_contained_and_offline(run_dir: Path):
    path = write_report(run_dir)
    assert path == run_dir / "report.html" and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert 1_000_000 < path.stat().st_size < MAX_SMALL_REPORT_BYTES
    tags = _tags(text)
    # Nothing is loaded from anywhere: every script is inline, no stylesheet, image or frame
    # points outside the page.
    for tag, attrs in tags:
        for key in ("src", "href", "data", "action", "srcset", "poster"):
            value = (attrs.get(key) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "ftp:")), (tag, key, value)
        if tag == "script":
            assert "src" not in attrs, attrs
        if tag == "link":
            assert attrs.get("rel") not in ("stylesheet", "preload", "import"), attrs
    # The spellings a plain grep would look for occur only inside plotly.js's code.
    for needle in ('src="http', "src='http", 'href="http', "href='http", "url(http"):
        assert _only_in_scripts(text, needle), needle
    style = text.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "url(" not in style and "@import" not in style
    # plotly.js is inside, and the probe a browser test reads is on <body>.
    assert "plotly.js v" in text
    body = next(a for t, a in tags if t == "body")
    assert int(body["data-plots-expected"] or 0) >= 5


def _only_in_scripts(text: str, needle: str) -> bool:
    """True if every occurrence of ``needle`` is inside a <script> element (plotly's code holds
    URLs in strings; they are not resource loads)."""
    outside = []
    rest = text
    while "<script" in rest:
        before, rest = rest.split("<script", 1)
        outside.append(before)
        rest = rest.split("</script>", 1)[1] if "</script>" in rest else ""
    outside.append(rest)
    return all(needle not in part for part in outside)


def test_report_has_every_section_and_plot(run_dir: Path):
    text = write_report(run_dir).read_text(encoding="utf-8")
    for anchor in ("overview", "variants", "map", "rtt", "distributions", "availability",
                   "visibility", "throughput", "globe", "pairs"):  # fmt: skip
        assert f'<section id="{anchor}">' in text, anchor
    assert "could not draw" not in text
    assert "No traffic in this run (no flows.parquet)" in text
    assert '<section id="speed-tests">' not in text  # geometric: no speed tests
    figs = _figures(text)
    assert len(figs) == 6  # map, RTT, distributions, availability, visibility, globe
    body = next(a for t, a in _tags(text) if t == "body")
    assert body["data-plots-expected"] == str(len(figs))
    ids = [a["id"] for t, a in _tags(text) if t == "div" and "starmesh-plot" in (a["class"] or "")]
    assert ids == [f"plot-{k + 1}" for k in range(len(figs))]
    map_fig, rtt_fig, dist_fig, avail_fig, _visibility, globe = figs
    # Coastlines, borders, pairs, terminals, gateways, PoPs.
    names = [t["name"] for t in map_fig["data"]]
    assert names[:2] == ["coastlines", "borders"] and {"terminals", "gateways", "PoPs"} <= set(
        names
    )
    # RTT: one line per (mode, pair), N_STEPS points each, as the run wrote them.
    assert len(rtt_fig["data"]) == 2 * 3
    want = pa_ds.dataset(run_dir / "rtt.parquet").to_table().to_pandas()
    for tr in rtt_fig["data"]:
        y = _decode(tr["y"])
        assert y.size == N_STEPS
        label, mode = tr["name"], tr["hovertemplate"].split("(")[1].split(")")[0]
        src, dst = label.split(" → ")
        rows = want[(want["src"] == src) & (want["dst"] == dst) & (want["mode"] == mode)]
        np.testing.assert_allclose(y, rows.sort_values("t_s")["rtt_ms"].to_numpy(), rtol=1e-6)
        assert tr["dx"] == STEP_S * 1e3
    assert [t["type"] for t in dist_fig["data"]].count("box") == 2
    assert len(avail_fig["data"]) == 2
    # The globe: all satellites in every frame, a slider step per frame.
    frames = globe["frames"]
    assert 2 <= len(frames) <= min(MAX_FRAMES, N_STEPS)
    assert len(globe["layout"]["sliders"][0]["steps"]) == len(frames)
    sat_trace = next(i for i, t in enumerate(globe["data"]) if t["name"].startswith("satellites"))
    for fr in frames:
        k = fr["traces"].index(sat_trace)
        lat = _decode(fr["data"][k]["lat"])
        assert lat.size == N_SATS and np.all(np.abs(lat) <= 53.5)  # a 53 deg shell


def test_globe_draws_full_paths_from_forwarding_state(run_dir: Path):
    """Paths replayed from fstate.parquet start at the terminal, end at the PoP, have as many
    links as the run's hop count and pass the serving satellites it recorded."""
    run = read_run(run_dir)
    rtt = pa_ds.dataset(run_dir / "rtt.parquet").to_table().to_pandas()
    t_s = np.sort(rtt["t_s"].unique())
    paths = read_paths(run, N_SATS, run.series_pairs, t_s)
    assert paths is not None
    n_checked = 0
    for (mode, a, b), per_t in paths.items():
        for t, path in zip(t_s, per_t, strict=True):
            row = rtt[(rtt.t_s == t) & (rtt["mode"] == mode) & (rtt.src == a) & (rtt.dst == b)]
            assert len(row) == 1
            row = row.iloc[0]
            if np.isnan(row.rtt_ms):
                assert path == []
                continue
            assert path[0] == N_SATS + run.sites.index(a)
            assert path[-1] == N_SATS + run.sites.index(b)
            assert len(path) - 1 == row.hops
            assert path[1] == row.src_sat and row.dst_sat in path
            sats = [n for n in path if n < N_SATS]
            assert path[len(sats)] == row.dst_sat  # then ground: a gateway, the PoP
            if mode == "bent-pipe":
                assert len(sats) == 1  # terminal, satellite, gateway, PoP
            n_checked += 1
    assert n_checked > 0


def _rehash(run: Path) -> None:
    """Record doctored chunk files in the manifest, as if the run had written them."""
    from starmesh.io.runfolder import Manifest, file_sha256

    m = Manifest.load(run)
    for files in m.done.values():
        for rel in files:
            if (run / rel).is_file():
                files[rel] = file_sha256(run / rel)
    m.save()


def test_availability_and_gaps_follow_unreachable_steps(fresh_run: Path):
    """Steps where a pair has no route lower the availability line and leave gaps in RTT."""
    parts = sorted((fresh_run / "rtt.parquet").glob("part-*.parquet"))
    for part in parts:
        t = pq.read_table(part)
        cut = pc.and_(
            pc.and_(pc.equal(t["src"], "Kyiv"), pc.equal(t["mode"], "isl")),
            pc.less(t["t_s"], 5 * STEP_S),
        )
        rtt = pc.if_else(cut, pa.scalar(None, pa.float64()), t["rtt_ms"])
        pq.write_table(t.set_column(t.schema.get_field_index("rtt_ms"), "rtt_ms", rtt), part)
    _rehash(fresh_run)
    run = read_run(fresh_run)
    av = read_availability(run)
    assert av is not None
    t_s, available, n = av
    assert n == 3 and t_s.size == N_STEPS
    np.testing.assert_allclose(available[0, :5], 2 / 3)
    np.testing.assert_allclose(available[0, 5:], 1.0)
    np.testing.assert_allclose(available[1], 1.0)
    rtt_fig = _figures(write_report(fresh_run).read_text(encoding="utf-8"))[1]
    kyiv_isl = next(
        tr
        for tr in rtt_fig["data"]
        if tr["name"].startswith("Kyiv") and "(isl)" in tr["hovertemplate"]
    )
    y = _decode(kyiv_isl["y"])
    assert np.isnan(y[:5]).all() and np.isfinite(y[5:]).all()


def test_report_reads_later_files(fresh_run: Path):
    """flows.parquet, comparison.json and disruptions.json, when a run has them."""
    run = read_run(fresh_run)
    t = np.repeat(np.arange(N_STEPS) * STEP_S, 3)
    pq.write_table(
        pa.table(
            {
                "t_s": t,
                "mode": ["isl"] * t.size,
                "src": ["Kyiv", "Lviv", "Kyiv"] * N_STEPS,
                "dst": ["Warsaw"] * t.size,
                "rate_bps": np.full(t.size, 50e6),
            }
        ),
        fresh_run / "flows.parquet",
    )
    (fresh_run / "comparison.json").write_text(
        json.dumps(
            {
                "variants": [
                    {"variant": "baseline", "changes": {}, "rtt_median_ms": 10.2},
                    {
                        "variant": "no gateways in Poland",
                        "changes": {"ground.gateways": ["Kaunas"]},
                        "rtt_median_ms": 25.0,
                    },
                ]
            }
        )
    )
    square = [[30.0, 49.0], [31.0, 49.0], [31.0, 50.0], [30.0, 50.0], [30.0, 49.0]]
    (fresh_run / "disruptions.json").write_text(
        json.dumps(
            {
                "jammers": [{"name": "j1", "lat_deg": 48.0, "lon_deg": 37.5, "radius_km": 40}],
                "denied_areas": [{"type": "Polygon", "coordinates": [square]}],
            }
        )
    )
    text = write_report(fresh_run).read_text(encoding="utf-8")
    assert "could not draw" not in text
    figs = _figures(text)
    assert len(figs) == 8  # + variants' bars, + throughput
    bars = figs[0]
    assert [tr["x"] for tr in bars["data"]] == [["baseline", "no gateways in Poland"]]
    assert bars["data"][0]["y"] == [10.2, 25.0]
    thr = figs[6]
    kyiv = next(tr for tr in thr["data"] if tr["name"] == "Kyiv")
    np.testing.assert_allclose(_decode(kyiv["y"]), 100.0)  # two 50 Mbit/s flows
    assert "no gateways in Poland" in text
    assert "ground.gateways = [&quot;Kaunas&quot;]" in text
    map_names = [tr["name"] for tr in figs[1]["data"]]
    assert {"jammers", "jammers (area)", "denied_areas (area)"} <= set(map_names)
    assert run.modes == ["isl", "bent-pipe"]


def test_disruptions_from_the_resolved_scenario(tmp_path: Path):
    """Without disruptions.json, the [disruptions] table of scenario.toml is drawn: jammers as
    points, denied areas (GeoJSON, circles) as outlines, failed gateways where they stand."""
    square = [[30.0, 49.0], [31.0, 49.0], [31.0, 50.0], [30.0, 50.0], [30.0, 49.0]]
    run = RunData(
        run_dir=tmp_path,
        summary={"modes": ["isl"], "pairs": []},
        scenario={
            "disruptions": {
                "failures": [{"gateways": ["Wola-Krobowska"]}, {"satellite_fraction": 0.1}],
                "jammers": [{"name": "j", "lat_deg": 48.6, "lon_deg": 38.0, "eirp_dbw": 50.0}],
                "denied_areas": [
                    {"name": "a", "geojson": {"type": "Polygon", "coordinates": [square]}},
                    {"name": "c", "lat_deg": 47.0, "lon_deg": 35.0, "radius_km": 50.0},
                ],
            }
        },
        sites=SiteTable(
            ["Kyiv", "Wola-Krobowska"],
            ["terminal", "gateway"],
            np.array([50.45, 52.0]),
            np.array([30.52, 20.0]),
        ),
        epoch=datetime(2026, 1, 1, tzinfo=UTC),
    )
    shapes = read_disruptions(run)
    assert isinstance(shapes, list)
    got = {(sh.kind, sh.name, sh.lat_deg.size > 1) for sh in shapes}
    assert got == {
        ("failed sites", "Wola-Krobowska", False),
        ("jammers", "j", False),
        ("denied_areas", "a", True),
        ("denied_areas", "c", False),
        ("denied_areas", "c", True),
    }
    circle = next(sh for sh in shapes if sh.name == "c" and sh.lat_deg.size > 1)
    # 50 km around (47 N, 35 E): 0.45 deg of latitude.
    assert abs(circle.lat_deg.max() - 47.0 - 50.0 / 111.2) < 0.01


def test_report_survives_unreadable_optional_files(fresh_run: Path):
    """Files outside the manifest (comparison, disruptions) may be unreadable: a note, not a
    failure."""
    (fresh_run / "comparison.json").write_text("{broken")
    (fresh_run / "disruptions.json").write_text(json.dumps({"jammers": [{"name": "x"}]}))
    text = write_report(fresh_run).read_text(encoding="utf-8")
    assert "comparison.json cannot be read" in text


@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda d: shutil.rmtree(d / "fstate.parquet"), "fstate.parquet/part-000000.parquet"),
        (lambda d: shutil.rmtree(d / "rtt.parquet"), "rtt.parquet/part-000000.parquet"),
        (
            lambda d: (d / "rtt.parquet" / "part-000000.parquet").write_bytes(b"PAR1 damaged"),
            "rtt.parquet/part-000000.parquet (chunk 0) differs",
        ),
    ],
)
def test_report_refuses_a_damaged_run_and_names_the_chunk(fresh_run: Path, damage, named):
    """A report never claims there is no data when a chunk is missing or corrupt: it names it."""
    from starmesh.errors import RunFolderError

    damage(fresh_run)
    with pytest.raises(RunFolderError, match=re.escape(named)):
        write_report(fresh_run)
    res = CliRunner().invoke(app, ["report", str(fresh_run)])
    assert res.exit_code == 1
    assert len([ln for ln in res.output.splitlines() if ln.strip()]) == 1
    assert "--resume" in res.output


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: shutil.rmtree(d), "not found"),
        (lambda d: (d / "summary.json").unlink(), "has no summary.json"),
        (lambda d: (d / "summary.json").write_text("{"), "summary.json cannot be read"),
        (lambda d: (d / "sites.parquet").unlink(), "has no sites.parquet"),
    ],
)
def test_report_rejects_bad_folders(fresh_run: Path, setup: Any, message: str):
    setup(fresh_run)
    with pytest.raises(StarmeshError, match=message):
        write_report(fresh_run)
    assert not (fresh_run / "report.html").exists()


# --- Choosing, thinning, encoding -----------------------------------------------------------


def test_plotted_pairs_spread_over_rtt_and_keep_the_chosen_one():
    n = 500
    pairs = [(f"T{i}", f"P{i % 3}") for i in range(n)]
    rng = np.random.default_rng(1)
    med = rng.uniform(20.0, 120.0, n)
    summary = {
        "modes": ["isl"],
        "pairs": [
            {"mode": "isl", "src": a, "dst": b, "rtt_median_ms": float(m)}
            for (a, b), m in zip(pairs, med, strict=True)
        ],
    }
    run = RunData(
        run_dir=Path("."),
        summary=summary,
        scenario={},
        sites=SiteTable([], [], np.zeros(0), np.zeros(0)),
        epoch=datetime(2026, 1, 1, tzinfo=UTC),
        series_pairs=pairs,
    )
    got = plotted_pairs(run)
    assert len(got) == MAX_PLOT_PAIRS
    assert pairs[int(med.argmin())] in got and pairs[int(med.argmax())] in got
    assert got == [p for p in pairs if p in got]  # summary order
    chosen = pairs[7]
    assert chosen in plotted_pairs(run, pair=chosen)
    with pytest.raises(StarmeshError, match="has no RTT series"):
        plotted_pairs(run, pair=("T1", "nowhere"))


def test_decimate_keeps_extremes_and_gaps():
    t = np.arange(100_000, dtype=float)
    y = np.sin(t / 500.0)
    y[40_000] = 9.0  # a spike
    y[70_000:70_050] = np.nan  # an outage
    td, yd = decimate(t, y, 2000)
    assert td.size <= 2100 and np.all(np.diff(td) > 0)
    assert np.nanmax(yd) == 9.0 and np.nanmin(yd) == y[np.isfinite(y)].min()
    assert np.isnan(yd).any()
    t2, y2 = decimate(t[:10], y[:10], 2000)
    assert t2 is not None and np.array_equal(y2, y[:10])


def test_filled_areas_wind_clockwise():
    """d3-geo (plotly's map renderer) fills a counter-clockwise ring as the rest of the world;
    GeoJSON rings are counter-clockwise, so they are turned round before drawing."""
    ccw = (np.array([30.0, 31.0, 31.0, 30.0, 30.0]), np.array([49.0, 49.0, 50.0, 50.0, 49.0]))
    lon, lat = _clockwise(*ccw)
    np.testing.assert_array_equal(lon, ccw[0][::-1])
    np.testing.assert_array_equal(lat, ccw[1][::-1])
    assert _clockwise(lon, lat)[0] is lon  # already clockwise: unchanged
    # Across the antimeridian too.
    lon2, _ = _clockwise(np.array([179.0, -179.0, -179.0, 179.0, 179.0]), ccw[1])
    assert lon2[1] == 179.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.int16, np.uint8])
def test_typed_array_round_trip(dtype):
    x = (np.arange(7) * 3).astype(dtype)
    spec = typed_array(x)
    np.testing.assert_array_equal(_decode(spec), x)


def test_world_lines_shipped_small_and_valid():
    from importlib.resources import files

    shipped = files("starmesh") / "data" / "naturalearth-110m-lines.json"
    assert len(shipped.read_bytes()) < 1_000_000
    for key, (lon, lat) in world_lines().items():
        finite = np.isfinite(lon)
        assert finite.sum() > 1000, key
        assert np.array_equal(finite, np.isfinite(lat))
        assert np.all(np.abs(lon[finite]) <= 180.0) and np.all(np.abs(lat[finite]) <= 90.0)
    # Kyiv lies inside Ukraine's outline: a border passes within 200 km west and east of it.
    lon, lat = world_lines()["borders"]
    band = np.abs(lat - 50.45) < 1.0
    assert np.any(band & (lon > 22.0) & (lon < 30.5)) and np.any(band & (lon > 30.5) & (lon < 41.0))


# --- CLI ------------------------------------------------------------------------------------


def test_cli_report_writes_and_says_so(fresh_run: Path):
    res = runner.invoke(app, ["report", str(fresh_run)])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("wrote ") and "report.html" in lines[0]
    assert (fresh_run / "report.html").is_file()
    res = runner.invoke(app, ["report", str(fresh_run), "--pair", "Lviv", "Warsaw"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("case", ["missing", "empty", "bad-summary", "bad-pair"])
def test_cli_report_one_line_errors(fresh_run: Path, tmp_path: Path, case: str):
    args = ["report"]
    if case == "missing":
        args.append(str(tmp_path / "nowhere"))
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        args.append(str(tmp_path / "empty"))
    elif case == "bad-summary":
        (fresh_run / "summary.json").write_text('{"pairs": 3}')
        args.append(str(fresh_run))
    else:
        args += [str(fresh_run), "--pair", "Lviv", "Kyiv"]
    res = runner.invoke(app, args)
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output


# --- CZML -----------------------------------------------------------------------------------


def test_cli_export_czml(run_dir: Path, tmp_path: Path):
    out = tmp_path / "run.czml"
    res = runner.invoke(app, ["export", "czml", str(run_dir), str(out)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"wrote {out}")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(doc, list)
    assert doc[0]["id"] == "document" and doc[0]["version"] == "1.0"
    assert doc[0]["clock"]["interval"] == "2026-05-13T00:00:00.000000Z/2026-05-13T00:09:30.000000Z"
    sats = [p for p in doc if p["id"].startswith("sat-")]
    sites = [p for p in doc if p["id"].startswith("site-")]
    assert len(sats) == N_SATS and len(sites) == 5
    assert len(doc) == 1 + N_SATS + len(sites)
    assert [p["id"] for p in sats] == [f"sat-{i}" for i in range(N_SATS)]
    for p in sats[:: N_SATS // 10]:
        pos = p["position"]
        assert pos["referenceFrame"] == "FIXED" and pos["interpolationAlgorithm"] == "LAGRANGE"
        s = np.asarray(pos["cartesian"]).reshape(-1, 4)
        # Samples every 60 s and at the last step (570 s); a 550 km orbit.
        np.testing.assert_allclose(s[:, 0], [*np.arange(0.0, 570.0, 60.0), 570.0])
        r_km = np.linalg.norm(s[:, 1:], axis=1) / 1e3
        assert np.all((r_km > 6_378.0 + 500.0) & (r_km < 6_357.0 + 600.0))
    kyiv = next(p for p in sites if p["name"] == "Kyiv")
    lon, lat, _alt = kyiv["position"]["cartographicDegrees"]
    assert abs(lat - 50.45) < 0.01 and abs(lon - 30.52) < 0.01
    # czml3 reads its own output back.
    from czml3 import Document

    assert len(Document.model_validate(doc).packets) == len(doc)


def test_cli_export_czml_one_line_errors(tmp_path: Path, run_dir: Path):
    res = runner.invoke(app, ["export", "czml", str(tmp_path / "nowhere"), str(tmp_path / "x")])
    assert res.exit_code == 1
    assert next(ln for ln in res.output.splitlines() if ln.strip()).startswith("error: ")
    res = runner.invoke(
        app, ["export", "czml", str(run_dir), str(tmp_path / "x"), "--sample-step-s", "0"]
    )
    assert res.exit_code == 1 and "sample_step_s must be > 0" in res.output


def test_speed_tests_section_shows_each_terminals_medians(tmp_path: Path):
    # A service-model run: one bar per terminal and direction, the medians of summary.json;
    # the geometric run above has no such section.
    scenario = {**SCENARIO, "service": {"model": "service"}, "name": "report-speed"}
    out = tmp_path / "svc"
    run_plan(build_plan(parse_scenario(scenario)), out, report=False)
    # The service rows of some of the series pairs (a report draws at most MAX_PLOT_PAIRS of
    # them) are those pairs' rows of all of them.
    run = read_run(out)
    every = read_service(run, read_series(run, run.series_pairs))
    some = read_service(run, read_series(run, run.series_pairs[1:]))
    assert len(run.series_pairs) > 1
    np.testing.assert_array_equal(some.rtt_q_ms, every.rtt_q_ms[..., 1:])
    np.testing.assert_array_equal(some.mean_ms, every.mean_ms[:, :, 1:])
    text = write_report(out).read_text(encoding="utf-8")
    assert '<section id="speed-tests">' in text and "could not draw" not in text
    rows = json.loads((out / "summary.json").read_text())["service"]["terminals"]
    fig = next(f for f in _figures(text) if f["layout"].get("barmode") == "group")
    assert [t["name"] for t in fig["data"]] == ["download", "upload"]
    for tr, key in zip(fig["data"], ["download_mbps_median", "upload_mbps_median"], strict=True):
        assert tr["x"] == [r["site"] for r in rows]
        np.testing.assert_allclose(_decode(tr["y"]), [r[key] for r in rows], rtol=1e-6)
