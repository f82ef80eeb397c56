"""The base of every scenario table: unknown keys, NaN and infinity are errors."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class StrictModel(BaseModel):
    """A scenario table: frozen, no unknown keys (named back to the user), no NaN or inf."""

    # NaN and infinity are never a valid setting: say so rather than compare them to bounds.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        # A clearer message than pydantic's "Extra inputs are not permitted": name the valid keys.
        if isinstance(data, dict):
            unknown = [k for k in data if k not in cls.model_fields]
            if unknown:
                valid = ", ".join(cls.model_fields)
                raise ValueError(f"unknown key {unknown[0]!r}; valid keys here: {valid}")
        return data
