"""Routing: the graph of a network step, and shortest-delay paths through it.

- :mod:`.graph`: :class:`RoutingProblem` (node numbering: satellites ``0 .. S-1``, then every
  ground site as an *out* node ``S + g`` and an *in* node ``S + G + g``, so that ground sites
  never relay), one-step graphs (:func:`snapshot_graph`) and per-chunk graphs with a fixed
  structure (:func:`build_chunk_graph`), link delays;
- :mod:`.kernels`: the compiled shortest-path kernels runs use (numba): Dijkstra from every
  root in parallel threads, and the exact update of each step's trees from the previous
  step's (:func:`sssp_full`, :func:`sssp_update`, :func:`walk_paths`);
- :func:`shortest_routes`: the reference method, scipy's ``csgraph.dijkstra`` on one snapshot.
  Runs do not use it (it cannot reuse work between steps); the tests check the kernels against
  it and both against networkx.
"""

from __future__ import annotations

from .graph import (
    ChunkGraph,
    Routes,
    RoutingProblem,
    build_chunk_graph,
    fibre_delay_s,
    shortest_routes,
    snapshot_graph,
    space_delay_s,
)
from .kernels import TreeState, sssp_full, sssp_update, walk_paths

__all__ = [
    "ChunkGraph",
    "Routes",
    "RoutingProblem",
    "TreeState",
    "build_chunk_graph",
    "fibre_delay_s",
    "shortest_routes",
    "snapshot_graph",
    "space_delay_s",
    "sssp_full",
    "sssp_update",
    "walk_paths",
]
