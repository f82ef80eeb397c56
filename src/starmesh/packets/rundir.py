"""A run folder's network for the packet level: the one place that reads a run for ns-3.

The run folder holds the forwarding state (``fstate.parquet``) and the sites, not the satellite
positions, so they are propagated again with the run's own propagator
(:func:`starmesh.io.runfolder.read_geometry`); everything is read through
:mod:`starmesh.io.runfolder`, which verifies the folder against its manifest first.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import StarmeshError
from ..io.runfolder import FSTATE, read_geometry, read_run
from .network import PacketNetwork, build_network, read_forwarding_state


def network_from_run_dir(
    run_dir: Path | str,
    flow_pairs: list[tuple[str, str]],
    *,
    duration_s: float | None = None,
    isl_rate_bps: float = 10e6,
    gsl_rate_bps: float = 10e6,
    mode: str = "isl",
) -> PacketNetwork:
    """Build the :class:`PacketNetwork` of a run folder for the given site pairs.

    Parameters
    ----------
    run_dir : path
        Folder written by ``starmesh run`` with ``[routing] forwarding_state = true``.
    flow_pairs : list of (str, str)
        Site names exchanging packets.
    duration_s : float, optional
        Use only the first ``duration_s`` seconds of the run.
    isl_rate_bps, gsl_rate_bps : float
        Link data rates [bit/s] (default: Hypatia's 10 Mbit/s, see data/PROVENANCE.md).
    mode : str
        Routing mode whose forwarding state to follow.
    """
    run = Path(run_dir)
    if not (run / FSTATE).is_dir():
        raise StarmeshError(
            f"run folder {str(run)!r} has no forwarding state ({FSTATE}): run the "
            "scenario with [routing] forwarding_state = true"
        )
    data = read_run(run)  # verified against its manifest
    geo = read_geometry(run)
    grid = geo.grid
    n_steps = grid.n_steps
    if duration_s is not None:
        n_steps = max(1, min(n_steps, round(duration_s / grid.step_s)))
    names = list(data.sites.names)
    n_sats = len(geo.sat_names)
    fs = read_forwarding_state(
        str(run / FSTATE),
        step_s=grid.step_s,
        n_steps=grid.n_steps,
        n_nodes=n_sats + len(names),
        mode=mode,
    )
    keep = fs.step < n_steps
    fs = type(fs)(n_steps, fs.n_nodes, *(x[keep] for x in (fs.step, fs.node, fs.dst, fs.next_hop)))
    r_ecef_m, _ = geo.propagator.positions_ecef_m(grid.t_s(0, n_steps))
    assert geo.site_r_ecef_m is not None  # read_geometry always places the sites
    links = data.scenario.get("links", {})
    gsl_max_km = links.get("gsl_max_range_km") if links.get("gsl_rule") == "max-range" else None
    return build_network(
        fs,
        r_ecef_m,
        geo.site_r_ecef_m,
        names,
        flow_pairs,
        step_s=grid.step_s,
        isl_rate_bps=isl_rate_bps,
        gsl_rate_bps=gsl_rate_bps,
        isl_max_range_m=geo.isl_max_range_m,
        # A GSL is down beyond Hypatia's slant-range rule; under an elevation mask a GSL the
        # forwarding state uses is taken as up for the whole step (not modelled: in-step
        # loss of sight).
        gsl_max_range_m=float(gsl_max_km) * 1e3 if gsl_max_km else float("inf"),
        earth_model=str(data.scenario.get("earth_model", "wgs84")),
    )
