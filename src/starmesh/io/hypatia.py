"""Export a run folder as Hypatia's satellite network state, in satgenpy's file formats.

Hypatia (Kassing et al., "Exploring the 'Internet from space' with Hypatia", IMC 2020) splits a
study in two: satgenpy writes a folder that describes the network and its forwarding state over
time, and Hypatia's ns-3 simulator replays that folder at packet level. :func:`export_hypatia`
writes a starmesh run in the same formats, so ns-3 can replay the routes starmesh computed.

The formats follow satgenpy 0.4.0 (https://github.com/snkas/hypatia, ``satgenpy/satgen/``) and
the ns-3 readers in ``ns3-sat-sim/simulator/contrib/satellite-network/``:

=============================================  ==============================================
file                                           line format (satgenpy writer)
=============================================  ==============================================
``tles.txt``                                   ``<n_orbits> <n_sats_per_orbit>``, then per
                                               satellite ``<name> <id>`` and the two TLE lines
                                               (``tles/generate_tles_from_scratch.py``)
``isls.txt``                                   ``<a> <b>``, ``a < b``
                                               (``isls/generate_plus_grid_isls.py``)
``ground_stations.txt``                        ``%d,%s,%f,%f,%f,%f,%f,%f``: id, name, latitude,
                                               longitude [deg], elevation, x, y, z [m] on WGS72
                                               (``ground_stations/extend_ground_stations.py``,
                                               ``distance_tools.geodetic2cartesian``)
``gsl_interfaces_info.txt``                    ``%d,%d,%f``: node, GSL interfaces (1),
                                               aggregate bandwidth (1.0)
                                               (``interfaces/generate_simple_gsl_interfaces_info.py``)
``description.txt``                            ``max_gsl_length_m=%.10f`` and
                                               ``max_isl_length_m=%.10f``
                                               (``description/generate_description.py``)
``dynamic_state_*/fstate_<t>.txt``             ``%d,%d,%d,%d,%d``: node, destination station,
                                               next hop, own interface, next hop's interface;
                                               ``-1,-1,-1`` for a drop
                                               (``dynamic_state/fstate_calculation.py``)
``dynamic_state_*/gsl_if_bandwidth_<t>.txt``   ``%d,%d,%f``: node, its GSL interface, bandwidth
                                               fraction; only at ``t = 0``, empty files after
                                               (``algorithm_free_one_only_over_isls.py``)
=============================================  ==============================================

``<t>`` is the time since the TLE epoch in ns. The first ``fstate`` file holds every entry
(every satellite to every station, every station to every other station, in that order, sorted
by node then destination); later files hold only the entries whose next hop changed; ns-3 reads
a file at every step and applies it on top of the state it holds. Interfaces are numbered as
ns-3 creates them: a satellite's ISL interfaces in ``isls.txt`` order (interface ``k`` is its
``k``-th ISL in the file), then its one GSL interface; a station has one interface, ``0``
(satgenpy's ``algorithm_free_one_only_over_isls``, the algorithm of starmesh's ``"isl"`` mode).

References
----------
.. [1] S. Kassing, D. Bhattacherjee, A. B. Aguas, J. E. Saethre, A. Singla, "Exploring the
   'Internet from space' with Hypatia", ACM IMC 2020.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq
from numpy.typing import NDArray

from ..constellation import Constellation, WalkerShell
from ..elements import ElementSet, load_elements, tle_checksum
from ..errors import RunFolderError, StarmeshError
from ..frames import slant_range_m
from ..timegrid import parse_utc
from ..topology import max_isl_range_m
from .runfolder import ISL_SPANS, verify_run

#: WGS72 semi-major axis [m]: satgenpy's Earth radius, and the ellipsoid of the ground
#: stations' x, y, z (``distance_tools.geodetic2cartesian``).
WGS72_A_M = 6_378_135.0
#: WGS72 flattening, as satgenpy writes it (``1 / 298.26``).
WGS72_F = 1.0 / 298.26
#: WGS72 gravitational parameter [m^3/s^2] (the one SGP4 uses), for orbit radii from mean motion.
WGS72_MU_M3_S2 = 398_600.8e9

#: Largest gap between a TLE epoch and the run's start that still counts as equal [s]; a TLE
#: epoch has 1e-8 day (0.86 ms) resolution.
_EPOCH_TOL_S = 1e-3
#: Largest distance of a ``t_s`` in ``fstate.parquet`` from its grid step [s].
_T_TOL_S = 1e-6
#: What a ground station's interface gets in ``gsl_interfaces_info.txt`` and
#: ``gsl_if_bandwidth_0.txt``: Hypatia's scripts give every node one GSL interface with the
#: whole bandwidth, 1.0 (ns-3 multiplies it with ``gsl_data_rate_megabit_per_s``).
_GSL_BANDWIDTH = 1.0

_FSTATE_COLUMNS = ("t_s", "mode", "node", "dst", "next_hop")


# --- Run folder ------------------------------------------------------------------------------


def _need(data: dict[str, Any], key: str, path: Path, *, at: str = "") -> Any:
    """``data[k1][k2]...`` for ``key = "k1.k2..."``; ``at`` prefixes the key in the message."""
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise StarmeshError(
                f"{str(path)!r} has no {at}{key}: it is not a resolved scenario written by "
                "`starmesh run`; run the scenario again"
            )
        node = node[part]
    return node


def _check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise StarmeshError(
            f"run folder {str(run_dir)!r} not found: pass the folder `starmesh run` wrote "
            "(it holds scenario.toml and sites.parquet)"
        )
    for name in ("scenario.toml", "sites.parquet", "isls.parquet"):
        if not (run_dir / name).exists():
            raise StarmeshError(
                f"run folder {str(run_dir)!r} has no {name}: pass the folder `starmesh run` "
                "wrote, or run the scenario again with this version of starmesh"
            )
    if (run_dir / ISL_SPANS).is_dir():
        raise StarmeshError(
            f"run folder {str(run_dir)!r} has ISLs re-paired during the run (a real "
            "constellation); Hypatia's isls.txt is fixed for a run: run it with "
            'links.isl = "nearest-k" or a Walker preset to export it'
        )
    if not (run_dir / "fstate.parquet").is_dir():
        raise StarmeshError(
            f"run folder {str(run_dir)!r} has no forwarding state (fstate.parquet): run the "
            "scenario with [routing] forwarding_state = true"
        )
    verify_run(run_dir)


def _read_scenario(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise StarmeshError(
            f"{str(path)!r} is not valid TOML ({exc}): run the scenario again"
        ) from None


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise RunFolderError(f"output {str(out_dir)!r} is a file: choose another folder")
        if any(out_dir.iterdir()):
            raise RunFolderError(
                f"output folder {str(out_dir)!r} is not empty: choose a new or empty folder"
            )


# --- Time ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Timing:
    start: datetime
    step_ms: int
    n_steps: int
    duration_ms: int

    @property
    def step_ns(self) -> int:
        return self.step_ms * 1_000_000

    @property
    def step_s(self) -> float:
        return self.step_ms / 1e3

    @property
    def dir_name(self) -> str:
        """satgenpy's ``dynamic_state_<step_ms>ms_for_<duration_s>s`` (``help_dynamic_state``)."""
        d_ms = self.duration_ms
        duration = str(d_ms // 1000) if d_ms % 1000 == 0 else str(d_ms / 1e3)
        return f"dynamic_state_{self.step_ms}ms_for_{duration}s"


def _whole(x: float) -> int | None:
    """``x`` as an int if it is one to within float noise, else None."""
    n = round(x)
    return n if abs(x - n) <= 1e-6 * max(1.0, abs(x)) else None


def _timing(scenario: dict[str, Any], path: Path) -> _Timing:
    start = parse_utc(str(_need(scenario, "time.start_utc", path)))
    step_s = float(_need(scenario, "time.step_s", path))
    duration_s = float(_need(scenario, "time.duration_s", path))
    step_ms = _whole(step_s * 1e3)
    if step_ms is None or step_ms < 1:
        raise StarmeshError(
            f"time.step_s = {step_s:g} s is not a whole number of milliseconds: Hypatia names "
            "its state folder and update interval by ms; run with a step such as 0.1 or 1"
        )
    duration_ms = _whole(duration_s * 1e3)
    if duration_ms is None or duration_ms % step_ms:
        raise StarmeshError(
            f"time.duration_s = {duration_s:g} s is not a whole number of {step_s:g} s steps: "
            "Hypatia writes one file per step up to the duration; run with a multiple of step_s"
        )
    return _Timing(start, step_ms, duration_ms // step_ms, duration_ms)


# --- Satellites ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Satellites:
    tles_text: str
    n_sats: int
    orbit_radius_m: NDArray[np.float64]
    #: satgenpy's +Grid ISLs of the shells, in ``generate_plus_grid_isls``'s order, or None.
    satgen_plus_grid: NDArray[np.int64] | None


def _name_token(name: str) -> str:
    # satgenpy's read_tles takes the second word of the name line as the satellite id, so the
    # name itself must be one word.
    return re.sub(r"\s+", "_", name.strip()) or "sat"


def _shells(scenario: dict[str, Any], path: Path) -> list[WalkerShell]:
    cons = scenario["constellation"]
    if cons.get("layout", "walker") != "hypatia":
        raise StarmeshError(
            "constellation.layout is 'walker': those shells propagate analytically and have no "
            "TLEs, while Hypatia propagates TLEs; run with layout = 'hypatia' (with "
            "mean_motion_rev_day on every shell) or with a tle_file"
        )
    shells = []
    for i, s in enumerate(cons["shells"]):
        at = f"constellation.shells[{i}]."
        shells.append(
            WalkerShell(
                name=str(s.get("name") or f"shell{i}"),
                n_planes=int(_need(s, "planes", path, at=at)),
                sats_per_plane=int(_need(s, "sats_per_plane", path, at=at)),
                phasing=int(s.get("phasing", 0)),
                altitude_m=float(_need(s, "altitude_km", path, at=at)) * 1e3,
                inclination_deg=float(_need(s, "inclination_deg", path, at=at)),
                pattern=s.get("pattern", "delta"),
                layout="hypatia",
                mean_motion_rev_day=s.get("mean_motion_rev_day"),
            )
        )
    return shells


def _satgen_plus_grid(cons: Constellation) -> NDArray[np.int64] | None:
    """The +Grid ISLs satgenpy's ``generate_plus_grid_isls`` writes (``isl_shift = 0``), shell by
    shell with ``idx_offset``; None if a shell has fewer than 3 planes or 3 satellites per plane
    (satgenpy refuses those)."""
    parts = []
    for lay in cons.shells:
        n_p, n_s = lay.shell.n_planes, lay.shell.sats_per_plane
        if n_p < 3 or n_s < 3:
            return None
        plane, slot = np.divmod(np.arange(n_p * n_s, dtype=np.int64), n_s)
        sat = plane * n_s + slot
        same_plane = plane * n_s + (slot + 1) % n_s
        next_plane = ((plane + 1) % n_p) * n_s + slot
        # Per satellite: its in-plane link, then its link to the next plane.
        pairs = np.stack([np.stack([sat, same_plane], 1), np.stack([sat, next_plane], 1)], 1)
        parts.append(np.sort(pairs.reshape(-1, 2), axis=1) + lay.offset)
    return np.concatenate(parts) if parts else None


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _check_epochs(elements: ElementSet, start: datetime) -> None:
    epochs = elements.epochs
    off = [i for i, e in enumerate(epochs) if abs((e - start).total_seconds()) > _EPOCH_TOL_S]
    if not off:
        return
    distinct = sorted(set(epochs))
    start_iso = _iso(start)
    if len(distinct) == 1:
        epoch_iso = _iso(distinct[0])
        raise StarmeshError(
            f"the run starts at {start_iso} but its TLEs have epoch {epoch_iso}; Hypatia's ns-3 "
            "starts every satellite at its TLE epoch, so the forwarding state would belong to "
            f"another time: run with time.start_utc = {epoch_iso!r}"
        )
    raise StarmeshError(
        f"the run's {len(epochs)} TLEs have {len(distinct)} different epochs ({_iso(distinct[0])} "
        f"to {_iso(distinct[-1])}); Hypatia's ns-3 starts every satellite at its own TLE epoch and "
        "satgenpy needs one epoch for all: export a run whose TLEs share one epoch equal to "
        "time.start_utc, such as a layout = 'hypatia' constellation"
    )


def _tle_lines(elements: ElementSet) -> Iterator[tuple[str, str]]:
    for i, rec in enumerate(elements.records):
        if rec.line1 is None or rec.line2 is None:
            raise StarmeshError(
                f"satellite {i} ({rec.name!r}) comes from an OMM record, which has no TLE lines "
                "for Hypatia to read: run with the same satellites as a TLE file"
            )
        # Hypatia's readers expect 69 columns; some sources leave the checksum out.
        l1 = rec.line1 if len(rec.line1) >= 69 else rec.line1 + str(tle_checksum(rec.line1))
        l2 = rec.line2 if len(rec.line2) >= 69 else rec.line2 + str(tle_checksum(rec.line2))
        yield l1, l2


def _satellites(scenario: dict[str, Any], timing: _Timing, path: Path) -> _Satellites:
    cons = _need(scenario, "constellation", path)
    if "tle_file" in cons:
        elements = load_elements(cons["tle_file"], skip_bad=bool(cons.get("skip_bad_tle")))
        names = [_name_token(r.name) for r in elements.records]
        header = f"1 {len(elements)}"
        plus_grid = None
    elif "shells" in cons:
        shells = _shells(scenario, path)
        c = Constellation.from_shells(str(scenario.get("name", "run")), shells, epoch=timing.start)
        assert c.elements is not None
        elements = c.elements
        names = [_name_token(lay.shell.name) for lay in c.shells for _ in range(lay.shell.n_sats)]
        per = {s.sats_per_plane for s in shells}
        # ns-3 only checks n_orbits * n_sats_per_orbit == number of satellites; shells of
        # different plane sizes have no common orbit count, so they are written as one orbit.
        if len(per) == 1:
            header = f"{sum(s.n_planes for s in shells)} {per.pop()}"
        else:
            header = f"1 {len(elements)}"
        plus_grid = _satgen_plus_grid(c)
    else:
        raise StarmeshError(
            f"{str(path)!r} has neither constellation.shells nor constellation.tle_file: "
            "it is not a resolved scenario written by `starmesh run`; run the scenario again"
        )
    _check_epochs(elements, timing.start)
    lines = [header]
    for i, (name, (l1, l2)) in enumerate(zip(names, _tle_lines(elements), strict=True)):
        lines += [f"{name} {i}", l1, l2]
    n_rad_s = elements.mean_motion_rev_day * (2.0 * math.pi / 86_400.0)
    return _Satellites(
        tles_text="\n".join(lines) + "\n",
        n_sats=len(elements),
        orbit_radius_m=np.cbrt(WGS72_MU_M3_S2 / n_rad_s**2),
        satgen_plus_grid=plus_grid,
    )


# --- Static files ----------------------------------------------------------------------------


def _wgs72_cartesian_m(lat_deg: float, lon_deg: float, h_m: float) -> tuple[float, float, float]:
    """Geodetic to Earth-fixed x, y, z [m] on satgenpy's WGS72 ellipsoid.

    Scalar ``math`` in satgenpy's order of operations, so the written ``%f`` digits are the same.
    """
    e = math.sqrt(2.0 * WGS72_F - WGS72_F * WGS72_F)
    lat = lat_deg * (math.pi / 180.0)
    lon = lon_deg * (math.pi / 180.0)
    # Radius of curvature in the prime vertical.
    n_m = WGS72_A_M / math.sqrt(1.0 - e * e * math.sin(lat) * math.sin(lat))
    return (
        (n_m + h_m) * math.cos(lat) * math.cos(lon),
        (n_m + h_m) * math.cos(lat) * math.sin(lon),
        (n_m * (1.0 - e * e) + h_m) * math.sin(lat),
    )


def _station_name(name: str) -> str:
    # Hypatia splits the line on commas; a comma in a name would shift every column.
    return re.sub(r"\s*,\s*", " ", " ".join(name.splitlines())).strip() or "station"


def ground_stations_text(
    names: list[str],
    lat_deg: NDArray[np.float64],
    lon_deg: NDArray[np.float64],
    alt_m: NDArray[np.float64],
) -> str:
    """``ground_stations.txt`` in satgenpy's extended format.

    Parameters
    ----------
    names : list of str, length G
        Station names; commas and line breaks are replaced by spaces.
    lat_deg, lon_deg, alt_m : ndarray, shape (G,)
        Geodetic latitude and longitude [deg] and height [m].

    Returns
    -------
    str
        One line ``id,name,lat,lon,elevation,x,y,z`` per station, x, y, z [m] on WGS72.

    Examples
    --------
    >>> ground_stations_text(["Manila"], np.array([14.6042]), np.array([120.9822]), np.zeros(1))
    '0,Manila,14.604200,120.982200,0.000000,-3177879.424386,5292603.275242,1597759.166873\\n'
    """
    out = []
    for gid, (name, lat, lon, h) in enumerate(zip(names, lat_deg, lon_deg, alt_m, strict=True)):
        lat, lon, h = float(lat), float(lon), float(h)
        x, y, z = _wgs72_cartesian_m(lat, lon, h)
        out.append(f"{gid},{_station_name(name)},{lat:f},{lon:f},{h:f},{x:f},{y:f},{z:f}\n")
    return "".join(out)


def _isls_text(edges: NDArray[np.int64]) -> str:
    return "".join(f"{a} {b}\n" for a, b in edges.tolist())


def _gsl_interfaces_info_text(n_nodes: int) -> str:
    return "".join(f"{i},1,{_GSL_BANDWIDTH:f}\n" for i in range(n_nodes))


def _gsl_if_bandwidth_text(n_isls: NDArray[np.int64], n_stations: int) -> str:
    # A satellite's GSL interface comes after its ISL interfaces; a station's is interface 0.
    sats = [f"{i},{k},{_GSL_BANDWIDTH:f}\n" for i, k in enumerate(n_isls.tolist())]
    n_sats = n_isls.size
    gs = [f"{n_sats + g},0,{_GSL_BANDWIDTH:f}\n" for g in range(n_stations)]
    return "".join(sats + gs)


def _description_text(max_gsl_length_m: float, max_isl_length_m: float) -> str:
    return f"max_gsl_length_m={max_gsl_length_m:.10f}\nmax_isl_length_m={max_isl_length_m:.10f}\n"


def _link_lengths_m(scenario: dict[str, Any], sats: _Satellites, path: Path) -> tuple[float, float]:
    """``max_gsl_length_m`` and ``max_isl_length_m`` for ``description.txt``.

    satgenpy's post-analysis tools rebuild GSLs from the first; ns-3 reads neither. For an
    elevation rule it is the slant range at that elevation to the highest satellite (spherical
    Earth of radius ``WGS72_A_M``), so every GSL the run could use is within it.
    """
    links = _need(scenario, "links", path)
    if links.get("gsl_rule", "elevation") == "max-range":
        gsl_m = float(_need(links, "gsl_max_range_km", path, at="links.")) * 1e3
    else:
        e_rad = math.radians(float(links.get("min_elevation_deg", 25.0)))
        r_max = float(sats.orbit_radius_m.max()) if sats.n_sats else WGS72_A_M
        gsl_m = float(slant_range_m(e_rad, r_max, WGS72_A_M))
    if "isl_max_range_km" in links:
        isl_m = float(links["isl_max_range_km"]) * 1e3
    else:
        # Written only when the run has ISLs; otherwise any value would do.
        r_min = float(sats.orbit_radius_m.min()) if sats.n_sats else WGS72_A_M + 500e3
        isl_m = max_isl_range_m(r_min - WGS72_A_M)
    return gsl_m, isl_m


# --- ISLs and interfaces ---------------------------------------------------------------------


def _read_isls(path: Path, n_sats: int) -> NDArray[np.int64]:
    table = pq.read_table(path, columns=["a", "b"])
    edges = np.stack(
        [table["a"].to_numpy().astype(np.int64), table["b"].to_numpy().astype(np.int64)], axis=1
    )
    bad = (edges[:, 0] < 0) | (edges[:, 0] >= edges[:, 1]) | (edges[:, 1] >= n_sats)
    if bad.any():
        a, b = edges[np.flatnonzero(bad)[0]].tolist()
        raise StarmeshError(
            f"isls.parquet holds ISL ({a}, {b}); Hypatia needs 0 <= a < b < {n_sats} (the "
            "number of satellites): the run folder does not match its scenario.toml"
        )
    key = edges[:, 0] * n_sats + edges[:, 1]
    if np.unique(key).size != key.size:
        raise StarmeshError("isls.parquet lists an ISL twice; Hypatia's isls.txt must not")
    return edges


def _same_edges(x: NDArray[np.int64], y: NDArray[np.int64], n_sats: int) -> bool:
    return x.shape == y.shape and bool(
        np.array_equal(np.sort(x[:, 0] * n_sats + x[:, 1]), np.sort(y[:, 0] * n_sats + y[:, 1]))
    )


class _Interfaces:
    """ns-3's interface numbers: satellite ``u``'s ISL to ``v`` is interface ``k`` when it is
    ``u``'s ``k``-th ISL in ``isls.txt`` order; its GSL interface comes after its ISLs."""

    def __init__(self, edges: NDArray[np.int64], n_sats: int) -> None:
        ends = edges.reshape(-1)  # a0, b0, a1, b1, ...: each satellite's ISLs in file order
        order = np.argsort(ends, kind="stable")
        first = np.searchsorted(ends[order], ends[order], side="left")
        rank = np.empty_like(ends)
        rank[order] = np.arange(ends.size) - first
        u = np.concatenate([edges[:, 0], edges[:, 1]])
        v = np.concatenate([edges[:, 1], edges[:, 0]])
        key = u * n_sats + v
        by_key = np.argsort(key)
        self.n_sats = n_sats
        self.keys = key[by_key]
        self.if_of = np.concatenate([rank[0::2], rank[1::2]])[by_key]
        self.n_isls = np.bincount(ends, minlength=n_sats).astype(np.int64)

    def isl(self, u: NDArray[np.int64], v: NDArray[np.int64]) -> NDArray[np.int64]:
        """Interface of ``u`` toward ``v``, ``-1`` where they share no ISL."""
        key = u * self.n_sats + v
        if self.keys.size == 0:
            return np.full(key.shape, -1, np.int64)
        i = np.minimum(np.searchsorted(self.keys, key), self.keys.size - 1)
        return np.where(self.keys[i] == key, self.if_of[i], -1)


# --- Forwarding state ------------------------------------------------------------------------


class _FstateWriter:
    """Turns starmesh's forwarding-state rows into satgenpy's ``fstate_<t_ns>.txt`` files."""

    def __init__(
        self, out: Path, timing: _Timing, n_sats: int, n_stations: int, ifs: _Interfaces
    ) -> None:
        self.out = out
        self.timing = timing
        self.n_sats = n_sats
        self.n_gs = n_stations
        self.ifs = ifs
        # Next hop of every (node, destination station); -2 = not set (as ns-3 starts).
        self.state = np.full((n_sats + n_stations, n_stations), -2, np.int64)
        self.next_step = 0
        self.n_lines = 0
        #: Stations that are no destination in the run's forwarding state.
        self.unrouted = np.zeros(0, np.int64)

    def _fail(self, k: int, what: str) -> StarmeshError:
        return StarmeshError(
            f"fstate.parquet at t = {k * self.timing.step_s:g} s: {what}; the run folder is "
            "inconsistent: run the scenario again"
        )

    def _complete_first_step(
        self, node: NDArray[np.int64], dst: NDArray[np.int64], hop: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Check that every destination of the first step has an entry from every other node;
        add drops (-1) towards the stations the run holds no state for."""
        s, g = self.n_sats, self.n_gs
        if g and not node.size:
            raise self._fail(0, "there are no entries; the first step must hold the full state")
        routed = np.zeros(g, bool)
        routed[dst - s] = True
        have = np.count_nonzero(self.state != -2, axis=0)
        short = np.flatnonzero(routed & (have != s + g - 1))
        if short.size:
            d = int(short[0])
            raise self._fail(
                0,
                f"the first step holds {have[d]} entries towards station {s + d}, but Hypatia's "
                f"first state needs one from every satellite and every other station "
                f"({s + g - 1})",
            )
        self.unrouted = np.flatnonzero(~routed)
        if self.unrouted.size:
            fill_node = np.repeat(np.arange(s + g), self.unrouted.size)
            fill_gid = np.tile(self.unrouted, s + g)
            keep = fill_node != s + fill_gid
            fill_node, fill_gid = fill_node[keep], fill_gid[keep]
            self.state[fill_node, fill_gid] = -1
            node = np.concatenate([node, fill_node])
            dst = np.concatenate([dst, s + fill_gid])
            hop = np.concatenate([hop, np.full(fill_node.size, -1, np.int64)])
        return node, dst, hop

    def write_step(
        self, k: int, node: NDArray[np.int64], dst: NDArray[np.int64], hop: NDArray[np.int64]
    ) -> None:
        s, g, n = self.n_sats, self.n_gs, self.n_sats + self.n_gs
        bad = (node < 0) | (node >= n) | (dst < s) | (dst >= n) | (node == dst)
        bad |= (hop < -1) | (hop >= n)
        if bad.any():
            i = np.flatnonzero(bad)[0]
            raise self._fail(
                k,
                f"entry node {node[i]} -> destination {dst[i]} via {hop[i]} is outside the "
                f"network of {s} satellites and {g} stations",
            )
        dst_gid = dst - s
        key = node * g + dst_gid
        if np.unique(key).size != key.size:
            raise self._fail(k, "an entry (node, destination) appears twice")
        if k > 0:
            late = np.isin(dst_gid, self.unrouted)
            if late.any():
                raise self._fail(
                    k,
                    f"station {dst[late][0]} becomes a destination after the first step, which "
                    "held no state towards it",
                )
            # satgenpy writes only the entries whose decision changed.
            changed = self.state[node, dst_gid] != hop
            node, dst, dst_gid, hop = node[changed], dst[changed], dst_gid[changed], hop[changed]
        self.state[node, dst_gid] = hop
        if k == 0:
            node, dst, hop = self._complete_first_step(node, dst, hop)
        my_if = np.full(node.shape, -1, np.int64)
        hop_if = np.full(node.shape, -1, np.int64)
        from_sat = node < s
        to_sat = (hop >= 0) & (hop < s)
        to_gs = hop >= s
        m = from_sat & to_sat
        my_if[m] = self.ifs.isl(node[m], hop[m])
        hop_if[m] = self.ifs.isl(hop[m], node[m])
        if (my_if[m] < 0).any():
            i = np.flatnonzero(m & (my_if < 0))[0]
            raise self._fail(
                k,
                f"satellite {node[i]} forwards to satellite {hop[i]} (destination {dst[i]}) but "
                "isls.parquet has no ISL between them",
            )
        m = from_sat & to_gs
        my_if[m] = self.ifs.n_isls[node[m]]
        hop_if[m] = 0
        m = ~from_sat & to_sat
        my_if[m] = 0
        hop_if[m] = self.ifs.n_isls[hop[m]]
        m = ~from_sat & to_gs
        if m.any():
            i = np.flatnonzero(m)[0]
            raise self._fail(
                k,
                f"station {node[i]} forwards to station {hop[i]}; Hypatia has no "
                "station-to-station links",
            )
        order = np.lexsort((dst, node))
        table = pa.table(
            {
                "node": node[order],
                "dst": dst[order],
                "next_hop": hop[order],
                "my_if": my_if[order],
                "next_hop_if": hop_if[order],
            }
        )
        t_ns = k * self.timing.step_ns
        pa_csv.write_csv(
            table,
            str(self.out / f"fstate_{t_ns}.txt"),
            write_options=pa_csv.WriteOptions(include_header=False),
        )
        if k > 0:
            (self.out / f"gsl_if_bandwidth_{t_ns}.txt").write_bytes(b"")
        self.n_lines += table.num_rows
        self.next_step = k + 1

    def flush(self, rows: dict[str, NDArray[np.int64]], upto: int) -> dict[str, NDArray[np.int64]]:
        """Write steps ``next_step .. upto - 1`` from ``rows`` (steps without rows give empty
        delta files); return the rows of later steps."""
        k = rows["k"]
        if k.size and k.min() < self.next_step:
            raise self._fail(
                int(k.min()),
                "rows of this step come after later steps were read (the Parquet files are not "
                "in time order)",
            )
        order = np.argsort(k, kind="stable")
        k_sorted = k[order]
        for step in range(self.next_step, upto):
            lo, hi = np.searchsorted(k_sorted, [step, step + 1])
            sel = order[lo:hi]
            self.write_step(step, rows["node"][sel], rows["dst"][sel], rows["hop"][sel])
        keep = k >= upto
        return {name: v[keep] for name, v in rows.items()}


def _fstate_dataset(path: Path) -> pa_ds.Dataset:
    dataset = pa_ds.dataset(str(path), format="parquet")
    missing = [c for c in _FSTATE_COLUMNS if c not in dataset.schema.names]
    if missing:
        raise StarmeshError(
            f"{str(path)!r} has no column {missing[0]!r} (columns: "
            f"{', '.join(dataset.schema.names)}): run the scenario again with this version"
        )
    if dataset.count_rows(filter=pa_ds.field("mode") == "isl") == 0:
        raise StarmeshError(
            f"{str(path)!r} holds no forwarding state of mode 'isl', the only one Hypatia's "
            'ns-3 replays: run with [routing] modes including "isl"'
        )
    return dataset


def _write_fstate(
    fstate_dir: Path,
    out: Path,
    timing: _Timing,
    n_sats: int,
    n_stations: int,
    ifs: _Interfaces,
) -> _FstateWriter:
    """Stream ``fstate.parquet`` (mode ``"isl"``) file by file into ``out``."""
    dataset = _fstate_dataset(fstate_dir)
    writer = _FstateWriter(out, timing, n_sats, n_stations, ifs)
    empty = np.zeros(0, np.int64)
    pending = {"k": empty, "node": empty, "dst": empty, "hop": empty}
    for frag in sorted(dataset.get_fragments(), key=lambda f: f.path):
        t = frag.to_table(
            columns=["t_s", "node", "dst", "next_hop"], filter=pa_ds.field("mode") == "isl"
        )
        if t.num_rows == 0:
            continue
        t_s = t["t_s"].to_numpy()
        k = np.rint(t_s / timing.step_s).astype(np.int64)
        off = (np.abs(k * timing.step_s - t_s) > _T_TOL_S) | (k < 0) | (k >= timing.n_steps)
        if off.any():
            raise StarmeshError(
                f"fstate.parquet has a row at t = {t_s[off][0]!r} s, not a step of the run "
                f"({timing.n_steps} steps of {timing.step_s:g} s): the run folder is "
                "inconsistent: run the scenario again"
            )
        rows = {
            "k": k,
            "node": t["node"].to_numpy().astype(np.int64),
            "dst": t["dst"].to_numpy().astype(np.int64),
            "hop": t["next_hop"].to_numpy().astype(np.int64),
        }
        pending = {name: np.concatenate([pending[name], rows[name]]) for name in pending}
        # Files are chunks in time order: steps before this file's last step are complete.
        pending = writer.flush(pending, int(k.max()))
    writer.flush(pending, timing.n_steps)
    return writer


# --- Export ----------------------------------------------------------------------------------


def export_hypatia(run_dir: Path | str, out_dir: Path | str) -> dict[str, Any]:
    """Write a run folder as Hypatia's satellite network state (satgenpy's files).

    ``out_dir`` receives ``tles.txt``, ``isls.txt``, ``ground_stations.txt``,
    ``gsl_interfaces_info.txt``, ``description.txt`` and
    ``dynamic_state_<step_ms>ms_for_<duration_s>s/`` with one ``fstate_<t_ns>.txt`` and one
    ``gsl_if_bandwidth_<t_ns>.txt`` per step (see the module docstring for the formats). Point
    ns-3's ``satellite_network_dir`` at ``out_dir`` and ``satellite_network_routes_dir`` at the
    ``dynamic_state_...`` folder, with ``dynamic_state_update_interval_ns`` and at most
    ``simulation_end_time_ns`` as returned.

    The forwarding state is the run's ``"isl"`` mode (satgenpy's
    ``algorithm_free_one_only_over_isls``): ground stations are the run's terminals and
    gateways, in site order, numbered after the satellites. The run holds state only towards
    the stations that end a pair; every entry towards any other station is written as a drop
    (``-1``), and those stations are listed in ``unrouted_stations``.

    When the run's ISLs are exactly satgenpy's +Grid of its shells, ``isls.txt`` lists them in
    ``generate_plus_grid_isls``'s order, so interface numbers, and hence ``fstate`` lines, are
    the ones satgenpy writes for the same routes; otherwise in the run's order.

    Everything is written into a temporary sibling folder that is renamed to ``out_dir`` at the
    end, so a failed export leaves nothing behind.

    Parameters
    ----------
    run_dir : Path
        A run folder written with ``[routing] forwarding_state = true``; its constellation must
        be TLE-based (``layout = "hypatia"`` shells, or a TLE file) with every TLE epoch equal
        to ``time.start_utc``, since Hypatia's time 0 is the TLE epoch.
    out_dir : Path
        Absent or empty folder.

    Returns
    -------
    dict
        ``out_dir``, ``dynamic_state_dir`` (folder name), ``n_sats``, ``n_ground_stations``,
        ``n_isls``, ``n_steps``, ``step_ms``, ``dynamic_state_update_interval_ns``,
        ``simulation_end_time_ns``, ``fstate_lines``, ``unrouted_stations`` (names),
        ``max_gsl_length_m``, ``max_isl_length_m``, ``isl_order`` (``"satgenpy-plus-grid"`` or
        ``"run"``).

    Raises
    ------
    StarmeshError
        Missing run folder or forwarding state, PoPs in the run, a step that is not a whole
        number of ms, TLE epochs other than the start, inconsistent run files.
    RunFolderError
        ``out_dir`` is a file or not empty.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    _check_run_dir(run_dir)
    _check_out_dir(out_dir)
    scenario_path = run_dir / "scenario.toml"
    scenario = _read_scenario(scenario_path)
    timing = _timing(scenario, scenario_path)

    sites = pq.read_table(run_dir / "sites.parquet").to_pydict()
    kinds = [str(k) for k in sites["kind"]]
    pops = [str(n) for n, k in zip(sites["name"], kinds, strict=True) if k == "pop"]
    if pops:
        raise StarmeshError(
            f"the run has {len(pops)} PoP site(s) ({', '.join(pops[:3])}"
            f"{', ...' if len(pops) > 3 else ''}): Hypatia has no fibre or PoP model; export a "
            'run without ground.pops (routing.pairs = "all-terminal-pairs" or terminal pairs)'
        )
    if list(sites["site_idx"]) != list(range(len(kinds))):
        raise StarmeshError(
            "sites.parquet is not numbered 0, 1, 2, ... in order: run the scenario again"
        )

    sats = _satellites(scenario, timing, scenario_path)
    run_edges = _read_isls(run_dir / "isls.parquet", sats.n_sats)
    grid = sats.satgen_plus_grid
    if grid is not None and _same_edges(grid, run_edges, sats.n_sats):
        edges, isl_order = grid, "satgenpy-plus-grid"
    else:
        edges, isl_order = run_edges, "run"
    ifs = _Interfaces(edges, sats.n_sats)
    n_gs = len(kinds)
    gsl_m, isl_m = _link_lengths_m(scenario, sats, scenario_path)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        (tmp / "tles.txt").write_text(sats.tles_text, encoding="utf-8")
        (tmp / "isls.txt").write_text(_isls_text(edges), encoding="utf-8")
        (tmp / "ground_stations.txt").write_text(
            ground_stations_text(
                [str(n) for n in sites["name"]],
                np.asarray(sites["lat_deg"], np.float64),
                np.asarray(sites["lon_deg"], np.float64),
                np.asarray(sites["alt_m"], np.float64),
            ),
            encoding="utf-8",
        )
        (tmp / "gsl_interfaces_info.txt").write_text(
            _gsl_interfaces_info_text(sats.n_sats + n_gs), encoding="utf-8"
        )
        (tmp / "description.txt").write_text(_description_text(gsl_m, isl_m), encoding="utf-8")
        dyn = tmp / timing.dir_name
        dyn.mkdir()
        (dyn / "gsl_if_bandwidth_0.txt").write_text(
            _gsl_if_bandwidth_text(ifs.n_isls, n_gs), encoding="utf-8"
        )
        fstate = _write_fstate(run_dir / "fstate.parquet", dyn, timing, sats.n_sats, n_gs, ifs)
        _check_out_dir(out_dir)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "out_dir": str(out_dir),
        "dynamic_state_dir": timing.dir_name,
        "n_sats": sats.n_sats,
        "n_ground_stations": n_gs,
        "n_isls": int(edges.shape[0]),
        "n_steps": timing.n_steps,
        "step_ms": timing.step_ms,
        "dynamic_state_update_interval_ns": timing.step_ns,
        "simulation_end_time_ns": timing.duration_ms * 1_000_000,
        "fstate_lines": fstate.n_lines,
        "unrouted_stations": [str(sites["name"][g]) for g in fstate.unrouted.tolist()],
        "max_gsl_length_m": gsl_m,
        "max_isl_length_m": isl_m,
        "isl_order": isl_order,
    }


__all__ = ["export_hypatia", "ground_stations_text"]
