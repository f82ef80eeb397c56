"""Loading scenarios: TOML files, built-in scenarios, mappings."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..errors import ScenarioError
from .model import Scenario

#: Built-in scenarios, in the order ``starmesh scenarios`` lists them; the first is the default.
BUILTIN_SCENARIOS = ("ukraine", "hypatia-starlink-550")
DEFAULT_SCENARIO = BUILTIN_SCENARIOS[0]


def builtin_text(name: str) -> str:
    """TOML text of a built-in scenario."""
    if name not in BUILTIN_SCENARIOS:
        raise ScenarioError(
            "scenario",
            f"no built-in scenario {name!r}: use one of {', '.join(BUILTIN_SCENARIOS)} "
            "(starmesh scenarios lists them)",
        )
    return (files("starmesh") / "scenarios" / f"{name}.toml").read_text(encoding="utf-8")


def builtin_description(name: str) -> str:
    """First description line of a built-in scenario."""
    data = tomllib.loads(builtin_text(name))
    return str(data.get("description", "")).strip().splitlines()[0]


def parse_scenario(data: dict[str, Any], *, base_dir: Path | None = None) -> Scenario:
    """Validate a scenario mapping.

    Relative ``tle_file`` paths are resolved against ``base_dir``.

    Raises
    ------
    pydantic.ValidationError
        On any invalid field (see :func:`format_validation_error`).
    """
    scenario = Scenario.model_validate(data)
    tle = scenario.constellation.tle_file
    if tle is not None and base_dir is not None and not Path(tle).is_absolute():
        cons = scenario.constellation.model_copy(update={"tle_file": str(base_dir / tle)})
        scenario = scenario.model_copy(update={"constellation": cons})
    return scenario


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a scenario from a TOML file or by built-in name.

    Raises
    ------
    ScenarioError
        Missing file, unreadable TOML.
    pydantic.ValidationError
        Invalid content.
    """
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError(
                "scenario",
                f"file {str(path)!r} not found: check the path, or name a built-in "
                f"({', '.join(BUILTIN_SCENARIOS)})",
            )
        text = path.read_text(encoding="utf-8")
        base = path.resolve().parent
        where = str(path)
    else:
        text = builtin_text(str(name_or_path))
        base = None
        where = f"built-in {name_or_path}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError("scenario", f"{where} is not valid TOML: {exc}") from None
    return parse_scenario(data, base_dir=base)
