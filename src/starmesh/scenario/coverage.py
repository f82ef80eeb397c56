"""The ``[coverage]`` table: the region, H3 resolution and policy of ``starmesh coverage``, and
the serving-satellite slot of every run's per-terminal visibility."""

from __future__ import annotations

from pydantic import Field, field_validator

from .base import StrictModel


class CoverageSpec(StrictModel):
    """Coverage over H3 cells (:func:`starmesh.coverage`) and the handover policy of runs.

    ``region``: ``"earth"``, a country name or ISO alpha-3 code, the path of a ``.geojson``
    file, or a bounding box ``[lon_min_deg, lat_min_deg, lon_max_deg, lat_max_deg]``.
    ``slot_s``: the serving satellite is chosen (highest elevation) at the start of each slot
    and held within it (Starlink: 15 s, Tanveer et al., IMC 2023; boundaries 12 s past the
    UTC minute and every ``slot_s`` from there); the same policy gives
    the handovers of ``visibility.parquet`` in runs. The elevation mask is ``[links]``'s
    ``min_elevation_deg`` unless ``min_elevation_deg`` is given here.
    """

    region: str | list[float] = "earth"
    res: int = Field(3, ge=0, le=15)
    k: int = Field(2, ge=1, le=255)
    slot_s: float = Field(15.0, gt=0.0, le=86_400.0)
    min_elevation_deg: float | None = Field(None, ge=0.0, lt=90.0)

    @field_validator("region")
    @classmethod
    def _region(cls, v: str | list[float]) -> str | list[float]:
        if isinstance(v, list) and len(v) != 4:
            raise ValueError(
                f"a bounding box has 4 numbers [lon_min, lat_min, lon_max, lat_max], got {len(v)}"
            )
        if isinstance(v, str) and not v.strip():
            raise ValueError("is empty: give 'earth', a country, a .geojson path or a bbox")
        return v
