"""The offline HTML report of a run folder, with a map and an animated globe.

:func:`write_report` writes ``report.html`` into a run folder: one self-contained file (plotly.js,
the data of every figure and Natural Earth coastlines and borders inside it) that opens in any
browser without a network. ``starmesh report RUN_DIR`` calls it.

- :mod:`starmesh.report.rundata`: reads the run folder (optional files are optional).
- :mod:`starmesh.report.charts`: RTT, distributions, availability, throughput.
- :mod:`starmesh.report.geo`: the map and the globe.
- :mod:`starmesh.report.page`: the HTML page.
"""

from __future__ import annotations

from .page import REPORT_NAME, render_report, write_report

__all__ = ["REPORT_NAME", "render_report", "write_report"]
