"""Files: starmesh's own run folders, and other tools' formats.

- :mod:`starmesh.io.runfolder`: the run-folder format (names, schemas, writers, readers);
- :mod:`starmesh.io.hypatia`: a run folder as Hypatia's satellite network state (satgenpy's
  files), ready for Hypatia's ns-3 simulator;
- :mod:`starmesh.io.czml`: a run folder as CZML for CesiumJS.

The exporters are imported when used (``from starmesh.io.hypatia import export_hypatia``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_hypatia"]


def __getattr__(name: str) -> Any:
    if name == "export_hypatia":
        from .hypatia import export_hypatia

        return export_hypatia
    raise AttributeError(f"module 'starmesh.io' has no attribute {name!r}")
