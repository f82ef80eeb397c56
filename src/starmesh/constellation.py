"""Constellations: Walker shells, public presets, and sets of real satellites from TLE/OMM files.

A :class:`Constellation` is the fixed description of ``S`` satellites: how to propagate them
(analytic Kepler + J2 elements, or SGP4 element records) and, for shells, their plane/slot layout,
which the ISL builders need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .constants import MU_EARTH_M3_S2, WGS84_A_M
from .elements import ElementSet, tle_checksum
from .errors import ScenarioError
from .timegrid import parse_utc

Pattern = Literal["delta", "star"]
Layout = Literal["walker", "hypatia"]


@dataclass(frozen=True)
class WalkerShell:
    """One Walker shell: ``n_planes`` circular orbital planes of ``sats_per_plane`` satellites.

    Parameters
    ----------
    name : str
        Label, e.g. ``"550km-53deg"``.
    n_planes, sats_per_plane : int
        Plane count ``P`` and satellites per plane; ``T = P * sats_per_plane``.
    phasing : int
        Walker phasing factor ``F`` in ``0 .. P - 1``: the satellite in plane ``p`` is advanced
        by ``2 pi F p / T`` in argument of latitude.
    altitude_m : float
        Altitude above the WGS84 equatorial radius [m].
    inclination_deg : float
        Inclination [deg].
    pattern : {"delta", "star"}
        Ascending nodes spread over 360 deg (Walker delta) or 180 deg (Walker star, polar shells
        such as OneWeb's).
    layout : {"walker", "hypatia"}
        ``"hypatia"`` reproduces satgenpy's layout instead of the Walker phasing: odd planes are
        advanced by half a slot, the elements are written as TLEs with epoch 2000-01-01 and
        propagated by SGP4, exactly as Hypatia does.
    mean_motion_rev_day : float or None
        Hypatia layout only: the TLE mean motion (Hypatia's Starlink shell uses 15.19).
    """

    name: str
    n_planes: int
    sats_per_plane: int
    phasing: int
    altitude_m: float
    inclination_deg: float
    pattern: Pattern = "delta"
    layout: Layout = "walker"
    mean_motion_rev_day: float | None = None

    def __post_init__(self) -> None:
        where = f"constellation.shells[{self.name!r}]"
        if self.n_planes < 1 or self.sats_per_plane < 1:
            raise ScenarioError(
                where,
                f"planes and sats_per_plane must be >= 1, got {self.n_planes} x "
                f"{self.sats_per_plane}",
            )
        if not 0 <= self.phasing < max(self.n_planes, 1):
            raise ScenarioError(
                where, f"phasing must be in [0, {self.n_planes - 1}], got {self.phasing}"
            )
        if not 100e3 <= self.altitude_m <= 50_000e3:
            raise ScenarioError(
                where, f"altitude must be in [100, 50000] km, got {self.altitude_m / 1e3:g} km"
            )
        if not 0.0 <= self.inclination_deg <= 180.0:
            raise ScenarioError(
                where, f"inclination_deg must be in [0, 180], got {self.inclination_deg}"
            )

    @property
    def n_sats(self) -> int:
        """Number of satellites in the shell."""
        return self.n_planes * self.sats_per_plane

    @property
    def semi_major_axis_m(self) -> float:
        """Orbit radius ``WGS84_A + altitude`` [m]."""
        return WGS84_A_M + self.altitude_m

    @property
    def period_s(self) -> float:
        """Keplerian period ``2 pi sqrt(a^3 / mu)`` [s]."""
        return 2.0 * math.pi * math.sqrt(self.semi_major_axis_m**3 / MU_EARTH_M3_S2)

    def plane_slot(self) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Plane and slot index of every satellite, satellites numbered plane by plane.

        Returns
        -------
        plane, slot : ndarray, shape (S,)
        """
        idx = np.arange(self.n_sats, dtype=np.int32)
        return idx // self.sats_per_plane, idx % self.sats_per_plane

    def angles_rad(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """RAAN and argument of latitude at epoch of every satellite.

        Returns
        -------
        raan_rad, u_rad : ndarray, shape (S,)
        """
        plane, slot = self.plane_slot()
        spread = 2.0 * math.pi if self.pattern == "delta" else math.pi
        raan = plane * (spread / self.n_planes)
        u = slot * (2.0 * math.pi / self.sats_per_plane)
        if self.layout == "hypatia":
            u = u + np.where(plane % 2 == 1, math.pi / self.sats_per_plane, 0.0)
        else:
            u = u + plane * (2.0 * math.pi * self.phasing / self.n_sats)
        return raan.astype(np.float64), np.mod(u, 2.0 * math.pi).astype(np.float64)

    def seam_shift(self) -> int | None:
        """Slot offset of the +Grid link between the last and the first plane.

        Plane ``P`` would coincide with plane 0 advanced by ``F`` slots, so satellite ``j`` of
        the last plane links to slot ``j + F`` of plane 0. Walker star shells have no seam links
        (the planes on both sides of the seam counter-rotate); Hypatia uses no shift.
        """
        if self.pattern == "star":
            return None
        if self.layout == "hypatia":
            return 0
        return self.phasing


@dataclass(frozen=True)
class KeplerElements:
    """Circular orbits for analytic propagation, one entry per satellite.

    Parameters
    ----------
    epoch : datetime
        UTC time at which the angles hold.
    a_m, inc_rad, raan_rad, u_rad : ndarray, shape (S,)
        Orbit radius [m], inclination, RAAN and argument of latitude at epoch [rad].
    """

    epoch: datetime
    a_m: NDArray[np.float64]
    inc_rad: NDArray[np.float64]
    raan_rad: NDArray[np.float64]
    u_rad: NDArray[np.float64]


@dataclass(frozen=True)
class ShellLayout:
    """Where a shell's satellites sit in the constellation's numbering."""

    shell: WalkerShell
    offset: int


@dataclass(frozen=True)
class Constellation:
    """A fixed set of ``S`` satellites, numbered ``0 .. S-1``.

    Build one with :meth:`from_shells` (analytic or Hypatia-compatible Walker shells) or
    :meth:`from_elements` (TLE/OMM records, SGP4).
    """

    name: str
    sat_names: tuple[str, ...]
    shells: tuple[ShellLayout, ...] = ()
    kepler: KeplerElements | None = None
    elements: ElementSet | None = None
    source: str = ""
    _cache: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_sats(self) -> int:
        """Number of satellites ``S``."""
        return len(self.sat_names)

    @classmethod
    def walker_delta(
        cls,
        *,
        planes: int,
        sats_per_plane: int,
        phasing: int,
        altitude_m: float,
        inclination_deg: float,
        epoch: str | datetime = "2000-01-01T00:00:00Z",
    ) -> Constellation:
        """One Walker-delta shell with analytic propagation.

        Examples
        --------
        >>> shell = Constellation.walker_delta(planes=72, sats_per_plane=22, phasing=39,
        ...                                    altitude_m=550e3, inclination_deg=53.0)
        >>> shell.n_sats
        1584
        """
        shell = WalkerShell(
            name=f"{altitude_m / 1e3:g}km-{inclination_deg:g}deg",
            n_planes=planes,
            sats_per_plane=sats_per_plane,
            phasing=phasing,
            altitude_m=altitude_m,
            inclination_deg=inclination_deg,
        )
        return cls.from_shells("walker-delta", [shell], epoch=epoch)

    @classmethod
    def from_shells(
        cls, name: str, shells: list[WalkerShell], *, epoch: str | datetime
    ) -> Constellation:
        """Constellation of Walker shells, satellites numbered shell by shell, plane by plane.

        Shells with ``layout="walker"`` propagate analytically (Kepler + J2 secular drift) from
        ``epoch``. Shells with ``layout="hypatia"`` are turned into satgenpy's TLEs (epoch
        2000-01-01 00:00 UTC) and propagate by SGP4; a constellation cannot mix the two.
        """
        if not shells:
            raise ScenarioError("constellation.shells", "at least one shell is required")
        layouts = {s.layout for s in shells}
        if len(layouts) > 1:
            raise ScenarioError(
                "constellation.shells",
                "cannot mix layout='hypatia' and layout='walker' shells: pick one",
            )
        layouts_out: list[ShellLayout] = []
        names: list[str] = []
        offset = 0
        for shell in shells:
            layouts_out.append(ShellLayout(shell=shell, offset=offset))
            plane, slot = shell.plane_slot()
            names.extend(f"{shell.name}-p{p}-s{s}" for p, s in zip(plane, slot, strict=True))
            offset += shell.n_sats
        if layouts == {"hypatia"}:
            from .elements import parse_tle_text

            text = "\n".join(_hypatia_tle_lines(layouts_out))
            elements = parse_tle_text(text, source=f"<{name} hypatia TLEs>")
            return cls(
                name=name,
                sat_names=tuple(names),
                shells=tuple(layouts_out),
                elements=elements,
                source="hypatia-layout",
            )
        raan, u, a, inc = [], [], [], []
        for shell in shells:
            r, uu = shell.angles_rad()
            raan.append(r)
            u.append(uu)
            a.append(np.full(shell.n_sats, shell.semi_major_axis_m))
            inc.append(np.full(shell.n_sats, math.radians(shell.inclination_deg)))
        kepler = KeplerElements(
            epoch=parse_utc(epoch),
            a_m=np.concatenate(a),
            inc_rad=np.concatenate(inc),
            raan_rad=np.concatenate(raan),
            u_rad=np.concatenate(u),
        )
        return cls(
            name=name,
            sat_names=tuple(names),
            shells=tuple(layouts_out),
            kepler=kepler,
            source="walker",
        )

    @classmethod
    def from_elements(cls, name: str, elements: ElementSet) -> Constellation:
        """Constellation of real satellites from TLE/OMM records (propagated by SGP4)."""
        return cls(
            name=name,
            sat_names=tuple(r.name for r in elements.records),
            elements=elements,
            source=elements.source,
        )


def _hypatia_tle_lines(layouts: list[ShellLayout]) -> list[str]:
    """satgenpy's ``generate_tles_from_scratch_manual`` layout, as 3LE lines.

    Same field formatting (4 decimals for angles, 8 for mean motion, eccentricity 1e-7 because
    pyephem rejects 0), so that SGP4 sees the same elements satgenpy's users see.
    """
    lines: list[str] = []
    number = 0
    for lay in layouts:
        shell = lay.shell
        if shell.mean_motion_rev_day is None:
            raise ScenarioError(
                f"constellation.shells[{shell.name!r}]",
                "layout='hypatia' needs mean_motion_rev_day (Hypatia's Starlink 550 km shell "
                "uses 15.19)",
            )
        for orbit in range(shell.n_planes):
            raan_deg = orbit * 360.0 / shell.n_planes
            shift = 360.0 / (shell.sats_per_plane * 2.0) if orbit % 2 == 1 else 0.0
            for n_sat in range(shell.sats_per_plane):
                ma_deg = shift + n_sat * 360 / shell.sats_per_plane
                number += 1
                l1 = f"1 {number:05d}U 00000ABC 00001.00000000  .00000000  00000-0  00000+0 0    0"
                l2 = "2 {:05d} {} {} {} {} {} {}    0".format(
                    number,
                    f"{shell.inclination_deg:3.4f}".rjust(8),
                    f"{raan_deg:3.4f}".rjust(8),
                    f"{1e-7:0.7f}"[2:],
                    f"{0.0:3.4f}".rjust(8),
                    f"{ma_deg:3.4f}".rjust(8),
                    f"{shell.mean_motion_rev_day:2.8f}".rjust(11),
                )
                lines.append(f"{shell.name} {number - 1}")
                lines.append(l1 + str(tle_checksum(l1)))
                lines.append(l2 + str(tle_checksum(l2)))
    return lines


# --- Presets --------------------------------------------------------------------------------
# Public parameters. Walker phasing factors are not published by the operators; the values
# below are assumptions (F = 39 for Starlink's 53-degree shells follows common use in the
# literature; F = 1 elsewhere) and only matter for the slot alignment of the +Grid seam.


def _shell(
    name: str, planes: int, per: int, f: int, alt_km: float, inc: float, pattern: Pattern = "delta"
) -> WalkerShell:
    return WalkerShell(name, planes, per, f, alt_km * 1e3, inc, pattern)


PRESETS: dict[str, tuple[str, list[WalkerShell]]] = {
    "starlink-gen1": (
        "Starlink Gen1, five shells per the FCC 2021 modification (SAT-MOD-20200417-00037), "
        "4,408 satellites",
        [
            _shell("540km-53.2deg", 72, 22, 39, 540.0, 53.2),
            _shell("550km-53deg", 72, 22, 39, 550.0, 53.0),
            _shell("570km-70deg", 36, 20, 1, 570.0, 70.0),
            _shell("560km-97.6deg-a", 6, 58, 1, 560.0, 97.6),
            _shell("560km-97.6deg-b", 4, 43, 1, 560.0, 97.6),
        ],
    ),
    "starlink-550": (
        "Starlink shell 1: 72 x 22 at 550 km, 53 deg (1,584 satellites)",
        [_shell("550km-53deg", 72, 22, 39, 550.0, 53.0)],
    ),
    "kuiper": (
        "Amazon Kuiper, three shells (FCC 2020 authorisation), 3,236 satellites",
        [
            _shell("630km-51.9deg", 34, 34, 1, 630.0, 51.9),
            _shell("610km-42deg", 36, 36, 1, 610.0, 42.0),
            _shell("590km-33deg", 28, 28, 1, 590.0, 33.0),
        ],
    ),
    "oneweb": (
        "OneWeb phase 1: 18 polar planes x 36 at 1,200 km, 87.9 deg, Walker star (648 satellites)",
        [_shell("1200km-87.9deg", 18, 36, 1, 1200.0, 87.9, "star")],
    ),
    "telesat": (
        "Telesat polar shell as in Hypatia: 27 x 13 at 1,015 km, 98.98 deg (351 satellites)",
        [_shell("1015km-98.98deg", 27, 13, 1, 1015.0, 98.98)],
    ),
}

#: Minimum elevation [deg] that each preset's operator filed; a scenario default, not a rule.
PRESET_MIN_ELEVATION_DEG = {
    "starlink-gen1": 25.0,
    "starlink-550": 25.0,
    "kuiper": 30.0,
    "oneweb": 10.0,
    "telesat": 10.0,
}


def preset_shells(name: str) -> list[WalkerShell]:
    """The shells of a named preset.

    Raises
    ------
    ScenarioError
        For an unknown name, listing the known ones.
    """
    try:
        return list(PRESETS[name][1])
    except KeyError:
        raise ScenarioError(
            "constellation.preset",
            f"unknown preset {name!r}: use one of {', '.join(sorted(PRESETS))}",
        ) from None


# --- Built-in real constellations -----------------------------------------------------------
# Named like presets, but made of real element sets: filtered to the operational relays and
# with shells, planes and slots inferred (starmesh.realset). They propagate by SGP4.

#: Name -> description of the built-in real constellations.
REAL_CONSTELLATIONS: dict[str, str] = {
    "starlink-2026": (
        "Starlink as of 12-13 May 2026: the shipped CelesTrak snapshot (10,361 objects) filtered "
        "to its operational relays (about 8,600) with inferred shells, planes and +Grid ISLs"
    ),
}

#: Minimum elevation [deg] for the real constellations (Starlink: 25 deg, FCC 2021 modification).
REAL_MIN_ELEVATION_DEG = {"starlink-2026": 25.0}


def constellation_names() -> list[str]:
    """Every name a scenario may give as ``constellation.preset``: presets and real sets."""
    return sorted([*PRESETS, *REAL_CONSTELLATIONS])


def is_real_constellation(name: str) -> bool:
    """True for a built-in real constellation (see :data:`REAL_CONSTELLATIONS`)."""
    return name in REAL_CONSTELLATIONS
