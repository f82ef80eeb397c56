"""starmesh: a fast, validated simulator of Starlink-class LEO satellite networks.

>>> from starmesh import Constellation, TimeGrid
>>> shell = Constellation.walker_delta(planes=72, sats_per_plane=22, phasing=39,
...                                    altitude_m=550e3, inclination_deg=53.0)
>>> grid = TimeGrid.from_utc("2025-03-01T00:00:00Z", duration_s=60, step_s=15)
>>> grid.n_steps, shell.n_sats
(4, 1584)
"""

from __future__ import annotations

__version__ = "0.1.0"

from .constellation import Constellation, WalkerShell
from .errors import (
    NoRouteError,
    RunFolderError,
    ScenarioError,
    StarmeshError,
    TLEFormatError,
    UnknownSiteError,
)
from .scenario import Scenario, load_scenario
from .simulate import build_plan, run_plan, simulate
from .timegrid import TimeGrid

__all__ = [
    "Constellation",
    "NoRouteError",
    "RunFolderError",
    "Scenario",
    "ScenarioError",
    "StarmeshError",
    "TLEFormatError",
    "TimeGrid",
    "UnknownSiteError",
    "WalkerShell",
    "__version__",
    "build_plan",
    "load_scenario",
    "run_plan",
    "simulate",
]
