"""The names of a run folder's files: the only place they are spelled."""

from __future__ import annotations

#: The scenario as run (resolved: presets expanded, names to coordinates, pairs listed).
SCENARIO = "scenario.toml"
#: A run with ``[[variants]]``: the scenario as given, from which a resume expands them again.
VARIANTS_SPEC = "variants.toml"
#: Per pair and mode statistics, and the run's figures (:class:`starmesh.results.Summary`).
SUMMARY = "summary.json"
#: Complete chunks and their files' hashes.
MANIFEST = "manifest.json"
#: Per chunk series and counters while a run is in progress.
PARTIAL = ".partial"
SITES = "sites.parquet"
#: The ISLs: fixed ones, or of re-paired ISLs (a real constellation) those of the first step.
ISLS = "isls.parquet"
#: Re-paired ISLs: per chunk, the intervals of steps ``[first_step, last_step]`` each link is up.
ISL_SPANS = "isl_spans.parquet"
#: Folders of one Parquet file per chunk.
RTT = "rtt.parquet"
FSTATE = "fstate.parquet"
FLOWS = "flows.parquet"
LINKS = "links.parquet"
FLOW_INFO = "flow_info.parquet"
RESOURCES = "resources.parquet"
#: Service model (``[service] model = "service"``): per step RTT quantiles and components of
#: the series pairs, and each terminal's serving satellite, handovers and speed test.
SERVICE = "service.parquet"
TERMINALS = "terminals.parquet"
#: Variants compared (a run with ``[[variants]]``).
COMPARISON = "comparison.json"
#: Folder of the variant run folders (variants and sweeps).
VARIANTS_DIR = "variants"
SWEEP_SPEC = "sweep.toml"
SWEEP_TABLE = "sweep.parquet"
SWEEP_SUMMARY = "sweep_summary.json"
REPORT = "report.html"
#: Per chunk: satellites in view, serving satellite and handovers of every terminal.
VISIBILITY = "visibility.parquet"
#: ``starmesh coverage``: one row per H3 cell and statistic, the cells as GeoJSON polygons,
#: and the region-wide figures.
COVERAGE_TABLE = "coverage.parquet"
COVERAGE_GEOJSON = "coverage.geojson"
COVERAGE_SUMMARY = "coverage_summary.json"
#: Packet-level traces (``[packets]``, ``starmesh packets``) and their per-flow summary.
PACKETS_TABLES = (
    "packets_bins.parquet",
    "packets_rtt.parquet",
    "packets_cwnd.parquet",
    "packets_udp.parquet",
)
PACKETS_SUMMARY = "packets_summary.json"
#: An exclusive lock on a run folder while a process writes it.
LOCK = ".starmesh.lock"


def chunk_name(index: int) -> str:
    """File name of chunk ``index`` in each per-chunk folder."""
    return f"part-{index:06d}.parquet"
