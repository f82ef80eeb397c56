"""Readers and writers of other tools' file formats.

- :mod:`starmesh.io.hypatia`: a run folder as Hypatia's satellite network state (satgenpy's
  files), ready for Hypatia's ns-3 simulator.
"""

from __future__ import annotations

from .hypatia import export_hypatia

__all__ = ["export_hypatia"]
