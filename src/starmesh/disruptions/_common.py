"""What the parts of :mod:`starmesh.disruptions` share: array types and time windows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import ScenarioError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_FAILURES = "disruptions.failures"


def _check_window(start_s: float, end_s: float, where: str) -> tuple[float, float]:
    """``[start_s, end_s)`` as floats; raises unless ``start_s < end_s``."""
    try:
        start, end = float(start_s), float(end_s)
    except (TypeError, ValueError):
        raise ScenarioError(
            where, f"start_s and end_s must be numbers, got {start_s!r} and {end_s!r}"
        ) from None
    if math.isnan(start) or math.isnan(end) or not start < end:
        raise ScenarioError(
            where,
            f"time window [start_s, end_s) = [{start_s!r}, {end_s!r}) is empty: give start_s < "
            "end_s in seconds from the scenario epoch, or omit them for the whole run",
        )
    return start, end


def _window_active(t_s: ArrayLike, start_s: float, end_s: float) -> BoolArray:
    t = np.asarray(t_s, dtype=np.float64)
    return np.asarray((t >= start_s) & (t < end_s), dtype=np.bool_)


def _check_lat_lon(lat_deg: Any, lon_deg: Any, where: str) -> tuple[float, float]:
    try:
        lat, lon = float(lat_deg), float(lon_deg)
    except (TypeError, ValueError):
        raise ScenarioError(
            where, f"lat_deg and lon_deg must be numbers, got {lat_deg!r} and {lon_deg!r}"
        ) from None
    if not -90.0 <= lat <= 90.0:
        raise ScenarioError(
            where,
            f"lat_deg must be in [-90, 90], got {lat_deg!r}: give degrees north (south is "
            "negative); are latitude and longitude swapped?",
        )
    if not -180.0 <= lon <= 180.0:
        raise ScenarioError(
            where,
            f"lon_deg must be in [-180, 180], got {lon_deg!r}: give degrees east (west is "
            "negative), e.g. 250 -> -110",
        )
    return lat, lon
