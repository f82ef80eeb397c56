"""Export a run folder as CZML, for CesiumJS and the tools that read it.

CZML (https://github.com/AnalyticalGraphicsInc/czml-writer/wiki/CZML-Guide) is a JSON list of
packets: a document packet with the clock, then one packet per object. :func:`export_czml`
writes, with the ``czml3`` library,

- ``document``: the run's name and a clock over the run's time span;
- ``sat-<i>`` for every satellite ``i`` (starmesh's numbering): its ECEF positions over the run,
  sampled every ``sample_step_s`` seconds, in Cesium's ``FIXED`` (Earth-fixed) frame, to be
  interpolated with a degree-5 Lagrange polynomial;
- ``site-<g>`` for every ground site ``g``: a point and a label at its coordinates (WGS84).

Positions are recomputed from the run's resolved ``scenario.toml`` with the same propagator the
run used, so they are the run's, not an approximation.
"""

from __future__ import annotations

import json
import math
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import StarmeshError
from .runfolder import SCENARIO, SITES, read_geometry, verify_run

#: Most satellite positions one CZML file holds (each about 60 bytes of JSON: 3 GB).
MAX_CZML_POSITIONS = 50_000_000

#: Sampling of satellite positions [s] unless told otherwise: a degree-5 Lagrange fit through
#: 60 s samples of a LEO orbit is within metres.
DEFAULT_SAMPLE_STEP_S = 60.0

_SITE_RGBA = {
    "terminal": [31, 119, 180, 255],
    "gateway": [255, 127, 14, 255],
    "pop": [44, 160, 44, 255],
}
_SAT_RGBA = [58, 95, 205, 255]


def _check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise StarmeshError(
            f"run folder {str(run_dir)!r} not found: pass a folder written by `starmesh run`"
        )
    for name in (SCENARIO, SITES):
        if not (run_dir / name).is_file():
            raise StarmeshError(
                f"run folder {str(run_dir)!r} has no {name}: pass a folder written by "
                "`starmesh run`"
            )


def export_czml(
    run_dir: Path | str,
    out_file: Path | str,
    *,
    sample_step_s: float = DEFAULT_SAMPLE_STEP_S,
) -> dict[str, Any]:
    """Write a run's satellites (sampled positions) and ground sites (points) as CZML.

    Parameters
    ----------
    run_dir : Path or str
        A folder written by ``starmesh run``.
    out_file : Path or str
        The ``.czml`` file to write (replaced atomically if it exists).
    sample_step_s : float
        Time between position samples [s]; the run's last step is always a sample.

    Returns
    -------
    dict
        ``n_sats``, ``n_sites``, ``n_samples`` and ``n_packets`` (satellites + sites + 1).

    Raises
    ------
    StarmeshError
        If ``run_dir`` is not a run folder, its scenario cannot be loaded, or
        ``sample_step_s`` is not positive.

    Examples
    --------
    In CesiumJS: ``viewer.dataSources.add(Cesium.CzmlDataSource.load("run.czml"))``.
    """
    from czml3 import Document, Packet
    from czml3.enums import (
        ClockRanges,
        ClockSteps,
        InterpolationAlgorithms,
        ReferenceFrames,
    )
    from czml3.properties import Clock, Color, Label, Point, Position
    from czml3.types import TimeInterval

    run_dir, out_file = Path(run_dir), Path(out_file)
    if not (math.isfinite(sample_step_s) and sample_step_s > 0):
        raise StarmeshError(f"sample_step_s must be > 0, got {sample_step_s}")
    _check_run_dir(run_dir)
    verify_run(run_dir)
    geo = read_geometry(run_dir)
    grid = geo.grid
    span_s = float(grid.t_s(grid.n_steps - 1, grid.n_steps)[0])
    n_samples = span_s / sample_step_s + 1
    if n_samples * max(len(geo.sat_names), 1) > MAX_CZML_POSITIONS:
        least = span_s * max(len(geo.sat_names), 1) / MAX_CZML_POSITIONS
        raise StarmeshError(
            f"--sample-step-s {sample_step_s:g} gives {n_samples:.3g} samples of "
            f"{len(geo.sat_names)} satellites, too many for a CZML file: use at least {least:.3g} s"
        )
    t_s = np.arange(0.0, span_s, sample_step_s)
    t_s = np.append(t_s, span_s) if t_s.size == 0 or t_s[-1] < span_s else t_s
    if t_s.size == 1:
        # A one-step run: hold the position for a step so that the object has an extent.
        t_s = np.array([0.0, max(float(grid.step_s), 1.0)])
    r_ecef_m, ok = geo.propagator.positions_ecef_m(t_s)

    start = grid.epoch
    stop = start + timedelta(seconds=float(t_s[-1]))
    interval = TimeInterval(start=start, end=stop)
    packets = [
        Packet(
            id="document",
            name=geo.name,
            version="1.0",
            clock=Clock(
                interval=interval,
                currentTime=start,
                multiplier=60,
                range=ClockRanges.LOOP_STOP,
                step=ClockSteps.SYSTEM_CLOCK_MULTIPLIER,
            ),
        )
    ]
    names = geo.sat_names
    # Time-tagged samples [t, x, y, z, t, x, y, z, ...], millimetre resolution.
    samples = np.concatenate(
        [np.broadcast_to(t_s[:, None, None], (t_s.size, len(names), 1)), np.round(r_ecef_m, 3)],
        axis=2,
    )
    for i, name in enumerate(names):
        good = ok[:, i] & np.isfinite(r_ecef_m[:, i]).all(axis=1)
        position = None
        if good.sum() >= 2:
            # model_validate: the interpolation fields come from a mixin that type checkers
            # do not see as constructor arguments.
            position = Position.model_validate(
                {
                    "epoch": start,
                    "referenceFrame": ReferenceFrames.FIXED,
                    "interpolationAlgorithm": InterpolationAlgorithms.LAGRANGE,
                    "interpolationDegree": min(5, int(good.sum()) - 1),
                    "cartesian": samples[good, i].reshape(-1).tolist(),
                }
            )
        packets.append(
            Packet(
                id=f"sat-{i}",
                name=name,
                description=None if position else "propagation failed over the run",
                availability=interval,
                position=position,
                point=Point(pixelSize=4, color=Color(rgba=_SAT_RGBA)),
            )
        )
    try:
        sites = pq.read_table(
            run_dir / SITES, columns=["name", "kind", "lat_deg", "lon_deg", "alt_m"]
        ).to_pylist()
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise StarmeshError(f"cannot read {str(run_dir / SITES)!r}: {exc}") from None
    for g, site in enumerate(sites):
        rgba = _SITE_RGBA.get(str(site["kind"]), [127, 127, 127, 255])
        packets.append(
            Packet(
                id=f"site-{g}",
                name=str(site["name"]),
                description=f"{site['kind']} {site['name']}",
                position=Position(
                    cartographicDegrees=[
                        float(site["lon_deg"]),
                        float(site["lat_deg"]),
                        float(site["alt_m"]),
                    ]
                ),
                point=Point(pixelSize=8, color=Color(rgba=rgba)),
                label=Label(text=str(site["name"]), font="11pt sans-serif"),
            )
        )
    text = Document(packets=packets).dumps()
    # czml3 writes a document as {"packets": [...]} or as the list itself, by version; CZML
    # is the list.
    doc = json.loads(text)
    if isinstance(doc, dict) and "packets" in doc:
        text = json.dumps(doc["packets"], separators=(",", ":"))
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out_file)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StarmeshError(f"cannot write {str(out_file)!r}: {exc}") from None
    return {
        "n_sats": len(names),
        "n_sites": len(sites),
        "n_samples": int(t_s.size),
        "n_packets": len(packets),
    }
