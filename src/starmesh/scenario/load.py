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
#: A scenario file larger than this is not one [bytes] (the largest built-in is 5 kB; a scenario
#: with inline GeoJSON areas may reach a few MB).
MAX_SCENARIO_BYTES = 64 * 2**20


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
    try:
        scenario = Scenario.model_validate(data)
    except RecursionError:
        raise ScenarioError("scenario", "values nest too deeply to be a scenario") from None
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
        if path.is_dir():
            raise ScenarioError("scenario", f"{str(path)!r} is a folder: give a scenario TOML file")
        if not path.is_file():
            raise ScenarioError(
                "scenario",
                f"file {str(path)!r} not found: check the path, or name a built-in "
                f"({', '.join(BUILTIN_SCENARIOS)})",
            )
        if path.stat().st_size > MAX_SCENARIO_BYTES:
            raise ScenarioError(
                "scenario",
                f"{str(path)!r} has {path.stat().st_size} bytes, far more than a scenario: "
                "is this the right file?",
            )
        try:
            # utf-8-sig: a byte-order mark, as some editors write, is not an error.
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ScenarioError(
                "scenario",
                f"{str(path)!r} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}): give a scenario TOML file",
            ) from None
        except OSError as exc:
            raise ScenarioError(
                "scenario", f"cannot read {str(path)!r}: {exc.strerror or exc}"
            ) from None
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
    except RecursionError:
        raise ScenarioError(
            "scenario", f"{where} nests tables or arrays too deeply to be a scenario"
        ) from None
    return parse_scenario(data, base_dir=base)
