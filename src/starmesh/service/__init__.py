"""What users measure on top of the geometric model: access and queueing delays, the 15-s global
scheduler, Starlink-like PoP assignment and load spread over satellites and beams.

Pure numpy/scipy (plus ``h3`` and, optionally, ``itur``); no scenario or CLI imports. Every
parameter that is not geometry lives in :mod:`starmesh.service.params` with its source and
uncertainty (see also ``data/PROVENANCE.md``).

Modules: ``params`` (sourced constants, :class:`~starmesh.service.params.ServiceParams`),
``latency`` (delay components, M/D/1, :func:`~starmesh.service.latency.rtt_breakdown`,
:func:`~starmesh.service.latency.rtt_quantiles_s`), ``scheduler`` (15-s slots and policies),
``pops`` (region -> PoP table, backhaul), ``throughput`` (H3 cells, load spread, beam capacity
with rain fade, processor-sharing speed tests), ``chunk`` (glue for the run engine) and
``validate`` (the standalone validation study).
"""
