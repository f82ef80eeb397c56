"""Plotly figures as compact JSON: numpy arrays become plotly.js typed arrays.

plotly.js (2.28 and later) reads a data array given as ``{"dtype": "f4", "bdata": <base64>}``
as the typed array of those bytes. That is 5.3 characters per float32 instead of 8 to 20 for a
decimal number, and no float-to-text conversion on either side. NaN in a float array is a gap.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

#: numpy dtypes plotly.js reads as typed arrays, by their plotly.js code.
_DTYPES = {
    np.dtype("float64"): "f8",
    np.dtype("float32"): "f4",
    np.dtype("int32"): "i4",
    np.dtype("uint32"): "u4",
    np.dtype("int16"): "i2",
    np.dtype("uint16"): "u2",
    np.dtype("int8"): "i1",
    np.dtype("uint8"): "u1",
}


def typed_array(x: Any) -> dict[str, str]:
    """A 1-D numpy array as a plotly.js typed-array spec (little-endian bytes).

    Arrays of a dtype plotly.js does not know (int64, bool) are sent as float64.

    Examples
    --------
    >>> typed_array(np.array([1.0, 2.0], np.float32))
    {'dtype': 'f4', 'bdata': 'AACAPwAAAEA='}
    """
    a = np.asarray(x)
    if a.dtype not in _DTYPES:
        a = a.astype(np.float64)
    a = np.ascontiguousarray(a.reshape(-1), dtype=a.dtype.newbyteorder("<"))
    return {
        "dtype": _DTYPES[a.dtype.newbyteorder("=")],
        "bdata": base64.b64encode(a.tobytes()).decode(),
    }


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return typed_array(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} into a figure")


def figure_json(fig: dict[str, Any]) -> str:
    """JSON text of a figure, safe to place inside an HTML ``<script>`` element.

    Floats that are not finite (outside numpy arrays) become ``null``, which plotly reads as
    a gap.
    """
    text = json.dumps(_finite(fig), default=_default, separators=(",", ":"), allow_nan=False)
    # "</script>" or "<!--" inside a string would end or confuse the script element.
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
