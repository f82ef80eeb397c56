"""Disruptions: failed satellites, ISLs and ground sites; jamming; geofenced service areas.

Three independent parts, each a pure function of its inputs, called by the orchestrator once per
time chunk:

- **Failures** (:class:`Outage`, :class:`FailurePlan`): sets of satellites, ISLs or sites that are
  down during a time window ``[start_s, end_s)``, chosen explicitly, by shell and plane, by ISL
  endpoints, or as a seeded random fraction. They become per-step masks ``sat_failed (T, S)``,
  ``isl_failed (T, E)``, ``site_failed (T, G)``.
- **Jamming** (:class:`Jammer`, :func:`gsl_quality`): ground (or airborne) transmitters that add
  interference to ground-satellite links. Each GSL candidate of a chunk gets its downlink and
  uplink C/N, C/(N+I) and DVB-S2X capacity from :mod:`starmesh.linkbudget`; a link whose capacity
  is 0 is down.
- **Geofencing** (:class:`Geofence`): service-denied areas, GeoJSON polygons and circles, turned
  into a mask of the ground sites inside them.

Randomness comes only from a ``numpy.random.Generator`` made from a seed: the same seed gives the
same masks.

Parts: :mod:`.failures`, :mod:`.jamming`, :mod:`.geofence` (time windows shared in
:mod:`._common`).
"""

from __future__ import annotations

from .failures import (
    FailurePlan,
    Outage,
    gsl_failed,
    isl_outage_by_endpoints,
    outage_of,
    plane_outage,
    random_outage,
    shell_plane_of_sats,
)
from .geofence import Circle, Geofence
from .jamming import (
    K_FACTOR,
    TERRESTRIAL_MAX_HEIGHT_M,
    GslQuality,
    Jammer,
    gsl_quality,
    line_of_sight,
)

__all__ = [
    "K_FACTOR",
    "TERRESTRIAL_MAX_HEIGHT_M",
    "Circle",
    "FailurePlan",
    "Geofence",
    "GslQuality",
    "Jammer",
    "Outage",
    "gsl_failed",
    "gsl_quality",
    "isl_outage_by_endpoints",
    "line_of_sight",
    "outage_of",
    "plane_outage",
    "random_outage",
    "shell_plane_of_sats",
]
