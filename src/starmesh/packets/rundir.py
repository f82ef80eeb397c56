"""A run folder's network for the packet level: the one place that reads a run for ns-3.

The run folder holds the forwarding state (``fstate.parquet``) and the sites, not the satellite
positions, so they are propagated again from the resolved scenario. After the run-folder
restructure this module's body becomes: read sites/fstate through ``io/runfolder.py``, take the
propagator from the plan, and call :func:`~starmesh.packets.network.build_network`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from ..errors import StarmeshError
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
    # Imported here: the scenario/plan modules are being restructured, and this is the only
    # place the packet level touches them.
    from ..scenario import load_scenario
    from ..simulate import build_plan, make_propagator

    run = Path(run_dir)
    for name in ("scenario.toml", "sites.parquet"):
        if not (run / name).exists():
            raise StarmeshError(
                f"run folder {str(run)!r} has no {name}: pass a folder `starmesh run` wrote"
            )
    if not (run / "fstate.parquet").is_dir():
        raise StarmeshError(
            f"run folder {str(run)!r} has no forwarding state (fstate.parquet): run the "
            "scenario with [routing] forwarding_state = true"
        )
    scenario = load_scenario(run / "scenario.toml")
    plan = build_plan(scenario)
    grid = plan.grid
    n_steps = grid.n_steps
    if duration_s is not None:
        n_steps = max(1, min(n_steps, round(duration_s / grid.step_s)))
    names = [str(n) for n in pq.read_table(run / "sites.parquet")["name"].to_pylist()]
    n_sats = plan.constellation.n_sats
    fs = read_forwarding_state(
        str(run / "fstate.parquet"),
        step_s=grid.step_s,
        n_steps=grid.n_steps,
        n_nodes=n_sats + len(names),
        mode=mode,
    )
    keep = fs.step < n_steps
    fs = type(fs)(n_steps, fs.n_nodes, *(x[keep] for x in (fs.step, fs.node, fs.dst, fs.next_hop)))
    prop = make_propagator(scenario, plan.constellation, grid.epoch)
    r_ecef_m, _ = prop.positions_ecef_m(grid.t_s(0, n_steps))
    return build_network(
        fs,
        r_ecef_m,
        plan.sites.r_ecef_m,
        names,
        flow_pairs,
        step_s=grid.step_s,
        isl_rate_bps=isl_rate_bps,
        gsl_rate_bps=gsl_rate_bps,
        isl_max_range_m=plan.isl_max_range_m,
        # A GSL is down beyond Hypatia's slant-range rule; under an elevation mask a GSL the
        # forwarding state uses is taken as up for the whole step (not modelled: in-step
        # loss of sight).
        gsl_max_range_m=plan.gsl_rule.max_range_m or float("inf"),
    )
