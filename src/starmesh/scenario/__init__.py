"""Scenarios: the pydantic model of a TOML scenario file, loading and built-ins, and variants.

No physics here: this package only validates and resolves names (presets, built-in scenarios).

- :mod:`.model`: the models (:class:`Scenario` and its tables) and one-line error messages;
- :mod:`.load`: TOML files, built-in scenarios, mappings;
- :mod:`.variants`: ``[[variants]]`` and ``[sweep]`` expanded into scenarios.
"""

from __future__ import annotations

from .load import (
    BUILTIN_SCENARIOS,
    DEFAULT_SCENARIO,
    builtin_description,
    builtin_text,
    load_scenario,
    parse_scenario,
)
from .model import (
    CapacitySpec,
    CircleSpec,
    ConstellationSpec,
    DeniedAreaSpec,
    DisruptionsSpec,
    FailureSpec,
    GroundSpec,
    JammerSpec,
    LinksSpec,
    PlaneSpec,
    RoutingSpec,
    RunSpec,
    Scenario,
    ServiceSpec,
    ShellSpec,
    SiteEntry,
    SiteSpec,
    SweepSpec,
    TimeSpec,
    TrafficSpec,
    VariantSpec,
    format_validation_error,
)
from .variants import expand_sweep, expand_variants

__all__ = [
    "BUILTIN_SCENARIOS",
    "DEFAULT_SCENARIO",
    "CapacitySpec",
    "CircleSpec",
    "ConstellationSpec",
    "DeniedAreaSpec",
    "DisruptionsSpec",
    "FailureSpec",
    "GroundSpec",
    "JammerSpec",
    "LinksSpec",
    "PlaneSpec",
    "RoutingSpec",
    "RunSpec",
    "Scenario",
    "ServiceSpec",
    "ShellSpec",
    "SiteEntry",
    "SiteSpec",
    "SweepSpec",
    "TimeSpec",
    "TrafficSpec",
    "VariantSpec",
    "builtin_description",
    "builtin_text",
    "expand_sweep",
    "expand_variants",
    "format_validation_error",
    "load_scenario",
    "parse_scenario",
]
