"""Variants of a scenario: named ``[[variants]]`` and the grid of a ``[sweep]``."""

from __future__ import annotations

import itertools
import json
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import ScenarioError
from .model import Scenario, format_validation_error


def _check_parameter(name: str) -> None:
    """Raise a ScenarioError unless ``name`` is a dotted path to a scenario field."""
    model: Any = Scenario
    parts = name.split(".")
    for i, part in enumerate(parts):
        fields = model.model_fields
        if part not in fields or part in ("sweep", "variants"):
            where = ".".join(parts[:i]) or "the top level"
            valid = ", ".join(f for f in fields if f not in ("sweep", "variants"))
            raise ScenarioError(
                f"sweep.grid[{name!r}]",
                f"unknown parameter: no field {part!r} at {where} (fields there: {valid})",
            )
        ann = fields[part].annotation
        sub = next(
            (
                a
                for a in (ann, *getattr(ann, "__args__", ()))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        if i < len(parts) - 1:
            if sub is None:
                raise ScenarioError(
                    f"sweep.grid[{name!r}]", f"{'.'.join(parts[: i + 1])} has no sub-fields"
                )
            model = sub


def expand_sweep(scenario: Scenario) -> list[tuple[str, dict[str, Any], Scenario]]:
    """The variants of a scenario's sweep: ``(id, parameters, scenario)`` for every point of the
    grid times every seed, in a fixed order.

    Raises
    ------
    ScenarioError
        No sweep, an empty grid, an unknown parameter, or a value a variant cannot take.
    """
    sweep = scenario.sweep
    if sweep is None:
        raise ScenarioError("sweep", "the scenario has no [sweep] table: add one to sweep it")
    for name in sweep.grid:
        _check_parameter(name)
    names = list(sweep.grid)
    seeds = sweep.seeds or [scenario.seed]
    base = scenario.model_dump(mode="json", exclude_none=True)
    base.pop("sweep")
    variants = []
    for k, (values, seed) in enumerate(
        itertools.product(itertools.product(*(sweep.grid[n] for n in names)), seeds)
    ):
        data = json.loads(json.dumps(base))
        params: dict[str, Any] = dict(zip(names, values, strict=True))
        params["seed"] = seed
        _apply(data, params)
        vid = f"v{k:03d}"
        data["name"] = f"{scenario.name}-{vid}"
        try:
            variant = Scenario.model_validate(data)
        except ValidationError as exc:
            first = format_validation_error(exc)[0]
            raise ScenarioError(f"sweep ({vid}: {params})", first) from None
        variants.append((vid, params, variant))
    return variants


def _apply(data: dict[str, Any], params: dict[str, Any]) -> None:
    """Set dotted fields of a scenario mapping in place."""
    for name, value in params.items():
        node = data
        *head, leaf = name.split(".")
        for part in head:
            node = node.setdefault(part, {})
        node[leaf] = value


def expand_variants(scenario: Scenario) -> list[tuple[str, dict[str, Any], Scenario]]:
    """``baseline`` (the scenario without its variants) and each named variant, as
    ``(name, changes, scenario)``.

    Raises
    ------
    ScenarioError
        An unknown field, or a value a variant cannot take.
    """
    base = scenario.model_dump(mode="json", exclude_none=True)
    base.pop("variants", None)
    base.pop("sweep", None)
    out: list[tuple[str, dict[str, Any], Scenario]] = [
        ("baseline", {}, Scenario.model_validate(base))
    ]
    for i, v in enumerate(scenario.variants):
        for name in v.set:
            try:
                _check_parameter(name)
            except ScenarioError as exc:
                raise ScenarioError(f"variants[{i}].set[{name!r}]", exc.message) from None
        data = json.loads(json.dumps(base))
        _apply(data, v.set)
        data["name"] = f"{scenario.name}-{v.name}"
        try:
            variant = Scenario.model_validate(data)
        except ValidationError as exc:
            raise ScenarioError(
                f"variants[{i}] ({v.name})", format_validation_error(exc)[0]
            ) from None
        out.append((v.name, dict(v.set), variant))
    return out
