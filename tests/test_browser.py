"""The report in a real browser: headless Chromium opens report.html from disk with the network
cut off, and every plot must render, with no error, no request and pixels on screen.

The page's own probe (:mod:`starmesh.report.page`) writes what happened into ``<body>``
attributes and each plot's ``data-box``; ``--dump-dom`` reads them back and ``--screenshot``
shows the pixels. Skipped when no Chromium is installed (``apt-get install chromium``) and the
environment variable ``CI`` is unset; with ``CI`` set a missing Chromium fails the module.
``STARMESH_CHROMIUM`` names the browser binary.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from starmesh.plan import build_plan
from starmesh.report import write_report
from starmesh.report.page import _PROBE_JS
from starmesh.runner import run_plan
from starmesh.scenario import parse_scenario

pytestmark = pytest.mark.browser


def _chromium() -> str | None:
    env = os.environ.get("STARMESH_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _chromium()
if CHROMIUM is None:
    if os.environ.get("CI"):
        # CI installs Chromium: a missing browser there is a broken job, not a reason to skip.
        pytest.fail(
            "CI is set but no Chromium was found: install chromium or set STARMESH_CHROMIUM",
            pytrace=False,
        )
    pytest.skip(
        "no Chromium to run browser tests: apt-get install chromium", allow_module_level=True
    )

#: Wall-clock limit for Chromium to load, render and dump a report [s].
LOAD_LIMIT_S = 60.0
#: Browser window; tall enough to hold the small report's whole page in one screenshot.
WIDTH, HEIGHT = 1400, 6000


def _open(page: Path, tmp_path: Path, *, screenshot: Path | None = None) -> tuple[str, float]:
    """Load ``page`` in headless Chromium without a network; its DOM after rendering, and the
    seconds it took."""
    args = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        # No name resolves and every connection goes to a closed port: nothing leaves.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=127.0.0.1:9",
        "--virtual-time-budget=30000",
        f"--window-size={WIDTH},{HEIGHT}",
        "--dump-dom",
    ]
    if screenshot is not None:
        args.append(f"--screenshot={screenshot}")
    args.append(page.resolve().as_uri())
    t0 = time.monotonic()
    res = subprocess.run(
        args, capture_output=True, text=True, timeout=3 * LOAD_LIMIT_S, check=False
    )
    wall = time.monotonic() - t0
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout, wall


def _attrs(tag_text: str) -> dict[str, str]:
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag_text))


def _body_attrs(dom: str) -> dict[str, str]:
    m = re.search(r"<body([^>]*)>", dom)
    assert m, dom[:500]
    return _attrs(m.group(1))


def _box(attrs: dict[str, str]) -> tuple[int, int, int, int]:
    """A plot's place on the page, ``x, y, width, height`` [CSS px = screenshot px]."""
    x, y, w, h = (int(v) for v in attrs["data-box"].split(","))
    return x, y, w, h


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "run"
    sc = parse_scenario(
        {
            "name": "browser-test",
            "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 600.0, "step_s": 30.0},
            "service": {"model": "geometric"},
            "constellation": {"preset": "starlink-550"},
            "ground": {
                "terminals": ["Kyiv", "Lviv", "Odesa"],
                "gateways": ["Wola-Krobowska"],
                "pops": ["Warsaw"],
            },
            "routing": {"modes": ["isl", "bent-pipe"]},
        }
    )
    run_plan(build_plan(sc), out)
    return write_report(out)


def test_report_renders_offline_without_errors(report: Path, tmp_path: Path):
    image = pytest.importorskip("PIL.Image", reason="pillow reads the screenshot")

    shot = tmp_path / "report.png"
    dom, wall = _open(report, tmp_path, screenshot=shot)
    assert wall < LOAD_LIMIT_S
    body = _body_attrs(dom)
    assert body.get("data-errors") == "0", body.get("data-error-messages")
    assert body.get("data-network-requests") == "0"
    n = int(body["data-plots-expected"])
    assert n >= 5 and body.get("data-plots-rendered") == str(n), body
    assert int(body["data-page-height"]) <= HEIGHT
    plots = re.findall(r'<div id="(plot-\d+)" class="starmesh-plot[^"]*"([^>]*)>', dom)
    assert len(plots) == n
    img = np.asarray(image.open(shot).convert("RGB"))
    assert img.shape[:2] == (HEIGHT, WIDTH)
    for plot_id, tag in plots:
        a = _attrs(tag)
        assert a.get("data-rendered") == "1", plot_id
        assert int(a["data-traces"]) > 0, plot_id
        x, y, w, h = _box(a)
        assert w > 300 and h > 200, (plot_id, a["data-box"])
        crop = img[y : y + h, x : x + w].reshape(-1, 3)
        colours = np.unique(crop, axis=0).shape[0]
        # Not a blank rectangle: lines, markers, text and anti-aliasing give many colours.
        assert colours > 20, (plot_id, colours)
        # And not a wash of one colour either.
        background = (crop == crop[0]).all(axis=1).mean()
        assert background < 0.995, (plot_id, background)
    # The globe (the last plot) has its satellites drawn: many blue marker pixels.
    x, y, w, h = _box(_attrs(plots[-1][1]))
    globe = img[y : y + h, x : x + w].astype(int)
    blue = (globe[..., 2] > 150) & (globe[..., 0] < 120) & (globe[..., 1] < 160)
    assert blue.sum() > 500, int(blue.sum())


def test_probe_sees_errors_and_blocked_requests(tmp_path: Path):
    """The probe is not blind: a script error and a request to the network (blocked, so it
    fails) both show up in data-errors; the page's 'no error' above is meaningful."""
    page = tmp_path / "probe.html"
    page.write_text(
        '<!DOCTYPE html><html><body data-errors="0">'
        f"<script>{_PROBE_JS}</script>"
        '<img src="http://example.invalid/x.png">'
        "<script>throw new Error('boom');</script>"
        "</body></html>",
        encoding="utf-8",
    )
    dom, _wall = _open(page, tmp_path)
    body = _body_attrs(dom)
    assert int(body["data-errors"]) >= 2, body
    assert "boom" in body["data-error-messages"]


# Run in the page after the report's own scripts: plays the globe to its last frame with the
# slider's own arguments, then picks the last pair in the path menu with that button's own
# arguments, and writes what it saw into <body data-globe>.
_GLOBE_CHECK_JS = """
(function () {
  var b = document.body;
  function lon0(gd, k) { return Number((gd._fullData[k] || {}).lon[0]); }
  // Animation frames come from requestAnimationFrame, which headless Chromium drives in real
  // time, outside the virtual time that --virtual-time-budget counts: a page waiting only for
  // a frame looks idle, its budget runs out and the DOM is dumped before the animation ends
  // (now and then in CI). Frames from timers run in virtual time, so the check always ends.
  window.requestAnimationFrame = function (cb) {
    return setTimeout(function () { cb(performance.now()); }, 16);
  };
  window.cancelAnimationFrame = function (id) { clearTimeout(id); };
  function check() {
    if (b.getAttribute('data-plots-rendered') !== b.getAttribute('data-plots-expected')) {
      setTimeout(check, 50);
      return;
    }
    var plots = document.querySelectorAll('.starmesh-plot');
    var gd = plots[plots.length - 1];
    var k = gd.data.findIndex(function (t) { return /^satellites/.test(t.name); });
    var steps = gd.layout.sliders[0].steps;
    var before = lon0(gd, k);
    var last = steps[steps.length - 1];
    Plotly.animate(gd, last.args[0], last.args[1]).then(function () {
      var after = lon0(gd, k);
      var menu = gd.layout.updatemenus.filter(function (m) { return m.type === 'dropdown'; })[0];
      var button = menu.buttons[menu.buttons.length - 1];
      return Plotly.restyle(gd, button.args[0], button.args[1]).then(function () {
        var shown = gd.data.filter(function (t) {
          return t.visible === true && /^path/.test(t.name);
        }).length;
        b.setAttribute('data-globe', JSON.stringify({
          before: before, after: after, frames: steps.length,
          active: gd._fullLayout.sliders[0].active, paths_shown: shown,
          label: button.label}));
      });
    }).catch(function (e) { window.__starmeshFail(e); });
  }
  check();
})();
"""


def test_globe_plays_and_switches_pairs(report: Path, tmp_path: Path):
    page = tmp_path / "globe-check.html"
    text = report.read_text(encoding="utf-8")
    page.write_text(text.replace("</body>", f"<script>{_GLOBE_CHECK_JS}</script></body>"))
    dom, _wall = _open(page, tmp_path)
    body = _body_attrs(dom)
    assert body.get("data-errors") == "0", body.get("data-error-messages")
    assert "data-globe" in body, body
    seen = json.loads(html.unescape(body["data-globe"]))
    assert seen["frames"] == 20 and seen["active"] == 19
    # Satellites moved: a LEO satellite covers some 35 deg of longitude in 10 minutes.
    assert abs(seen["after"] - seen["before"]) > 1.0, seen
    assert seen["paths_shown"] == 2 and seen["label"] == "path of Odesa → Warsaw", seen


def test_coverage_report_renders_offline(tmp_path: Path):
    """The coverage map: a choropleth of H3 cells drawn with no request (plotly.js would fetch
    its world topojson for a choropleth unless given one), coloured, no error."""
    from starmesh.coverage_run import run_coverage, write_coverage_run

    sc = parse_scenario(
        {
            "name": "coverage-browser",
            "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 600.0, "step_s": 30.0},
            "constellation": {"preset": "starlink-550"},
            "ground": {"terminals": ["Kyiv"], "gateways": ["Wola-Krobowska"], "pops": ["Warsaw"]},
        }
    )
    out = tmp_path / "cov"
    write_coverage_run(run_coverage(sc, region="earth", res=1), out)
    dom, wall = _open(out / "report.html", tmp_path)
    assert wall < LOAD_LIMIT_S
    body = _body_attrs(dom)
    assert body.get("data-errors") == "0", body.get("data-error-messages")
    assert body.get("data-network-requests") == "0"
    assert body.get("data-plots-rendered") == body.get("data-plots-expected") == "1"
    # One path per cell is drawn (choropleth paths carry the class "choroplethlocation").
    assert dom.count("choroplethlocation") >= 800


def test_service_model_report_renders_its_rtt_section(tmp_path: Path):
    """A run under the service model gets an 'RTT as users measure it' section, drawn offline
    like every other plot."""
    out = tmp_path / "svc"
    sc = parse_scenario(
        {
            "name": "browser-service",
            "time": {"start_utc": "2026-05-13T00:00:00Z", "duration_s": 120.0, "step_s": 5.0},
            "constellation": {"preset": "starlink-550"},
            "ground": {
                "terminals": ["Kyiv", "Lviv"],
                "gateways": ["Wola-Krobowska"],
                "pops": ["Warsaw"],
            },
            "routing": {"modes": ["isl", "bent-pipe"]},
        }
    )
    run_plan(build_plan(sc), out)
    page = out / "report.html"
    assert 'id="rtt-service"' in page.read_text(encoding="utf-8")
    dom, _wall = _open(page, tmp_path)
    body = _body_attrs(dom)
    assert body.get("data-errors") == "0", body.get("data-error-messages")
    assert body.get("data-network-requests") == "0"
    assert body.get("data-plots-rendered") == body["data-plots-expected"], body
