"""starmesh: a fast, validated simulator of Starlink-class LEO satellite networks.

>>> import starmesh
>>> from starmesh import Constellation, TimeGrid
>>> shell = Constellation.walker_delta(planes=72, sats_per_plane=22, phasing=39,
...                                    altitude_m=550e3, inclination_deg=53.0)
>>> grid = TimeGrid.from_utc("2025-03-01T00:00:00Z", duration_s=60, step_s=15)
>>> grid.n_steps, shell.n_sats
(4, 1584)

The front door is :mod:`starmesh.api`: :func:`run`, :func:`open_run`, :func:`open_sweep` and
:func:`load_scenario`. Names are imported when first used, so ``import starmesh`` stays light
(no numba, xarray, plotly or Dask until a run or a reader needs them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS = {
    "run": "api",
    "open_run": "api",
    "open_sweep": "api",
    "run_coverage": "api",
    "load_scenario": "scenario",
    "Scenario": "scenario",
    "Results": "results",
    "Summary": "results",
    "RunPlan": "plan",
    "build_plan": "plan",
    "Constellation": "constellation",
    "WalkerShell": "constellation",
    "TimeGrid": "timegrid",
    "NoRouteError": "errors",
    "RunFolderError": "errors",
    "ScenarioError": "errors",
    "StarmeshError": "errors",
    "TLEFormatError": "errors",
    "UnknownSiteError": "errors",
}

__all__ = [
    "Constellation",
    "NoRouteError",
    "Results",
    "RunFolderError",
    "RunPlan",
    "Scenario",
    "ScenarioError",
    "StarmeshError",
    "Summary",
    "TLEFormatError",
    "TimeGrid",
    "UnknownSiteError",
    "WalkerShell",
    "__version__",
    "build_plan",
    "load_scenario",
    "open_run",
    "open_sweep",
    "run",
    "run_coverage",
]

if TYPE_CHECKING:
    from .api import open_run, open_sweep, run, run_coverage
    from .constellation import Constellation, WalkerShell
    from .errors import (
        NoRouteError,
        RunFolderError,
        ScenarioError,
        StarmeshError,
        TLEFormatError,
        UnknownSiteError,
    )
    from .plan import RunPlan, build_plan
    from .results import Results, Summary
    from .scenario import Scenario, load_scenario
    from .timegrid import TimeGrid


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'starmesh' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
