"""Time grids: a timezone-aware UTC epoch plus float64 offsets in seconds."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from .errors import StarmeshError

#: J2000.0 epoch as UTC calendar time (2000-01-01 12:00 UTC; TT/UTC offset ignored, as SGP4 does).
J2000_UTC = datetime(2000, 1, 1, 12, 0, 0, tzinfo=UTC)


def parse_utc(value: str | datetime) -> datetime:
    """Parse an ISO 8601 UTC time; reject naive datetimes.

    Parameters
    ----------
    value : str or datetime
        ``"2025-03-01T00:00:00Z"`` or an aware ``datetime``.

    Returns
    -------
    datetime
        Timezone-aware, converted to UTC.

    Raises
    ------
    StarmeshError
        If the value cannot be parsed or carries no timezone.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise StarmeshError(
                f"cannot read time {value!r}: use ISO 8601 UTC such as '2025-03-01T00:00:00Z'"
            ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise StarmeshError(
            f"time {value.isoformat()!r} has no timezone: starmesh works in UTC; write it as "
            f"'{value.isoformat()}Z' or pass datetime(..., tzinfo=datetime.timezone.utc)"
        )
    return value.astimezone(UTC)


@dataclass(frozen=True)
class TimeGrid:
    """Evenly spaced simulation times.

    Parameters
    ----------
    epoch : datetime
        Timezone-aware UTC time of ``t_s == 0``.
    step_s : float
        Spacing of the steps [s].
    n_steps : int
        Number of steps; the times are ``epoch + k * step_s`` for ``k = 0 .. n_steps - 1``
        (the end of the duration is excluded, as Hypatia does: 200 s at 100 ms is 2,000 steps).
    """

    epoch: datetime
    step_s: float
    n_steps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "epoch", parse_utc(self.epoch))
        if not (self.step_s > 0 and math.isfinite(self.step_s)):
            raise StarmeshError(f"step_s must be > 0, got {self.step_s}")
        if self.n_steps < 1:
            raise StarmeshError(f"n_steps must be >= 1, got {self.n_steps}")

    @classmethod
    def from_utc(cls, epoch: str | datetime, *, duration_s: float, step_s: float) -> TimeGrid:
        """Grid covering ``[epoch, epoch + duration_s)`` at ``step_s``.

        Examples
        --------
        >>> g = TimeGrid.from_utc("2025-03-01T00:00:00Z", duration_s=200, step_s=0.1)
        >>> g.n_steps
        2000
        """
        if not (step_s > 0):
            raise StarmeshError(f"step_s must be > 0, got {step_s}")
        if step_s > duration_s:
            raise StarmeshError(
                f"step_s ({step_s}) is larger than duration_s ({duration_s}): "
                "make the step at most the duration"
            )
        # Round, then guard against 200 / 0.1 = 1999.9999999999998.
        n = math.floor(duration_s / step_s + 1e-9)
        return cls(epoch=parse_utc(epoch), step_s=float(step_s), n_steps=max(n, 1))

    @property
    def duration_s(self) -> float:
        """Span covered by the grid, ``n_steps * step_s`` [s]."""
        return self.n_steps * self.step_s

    def t_s(self, start: int = 0, stop: int | None = None) -> NDArray[np.float64]:
        """Offsets from the epoch [s] of steps ``start .. stop - 1``, shape ``(T,)``."""
        stop = self.n_steps if stop is None else min(stop, self.n_steps)
        return np.arange(start, stop, dtype=np.float64) * self.step_s

    def chunks(self, size: int) -> Iterator[tuple[int, int]]:
        """Yield ``(start, stop)`` step ranges of at most ``size`` steps."""
        for start in range(0, self.n_steps, size):
            yield start, min(start + size, self.n_steps)
