"""Which Starlink generation each satellite is, from its international designator.

A TLE carries the satellite's international (COSPAR) designator in line 1, columns 10-17
(``19074B``: launched in 2019, the 74th orbital launch of that year, piece B); an OMM record
carries it as ``OBJECT_ID`` (``2019-074B``). Starlink launched one hardware generation per
launch, so the launch decides the generation through a small shipped table of launch ranges
(``data/starlink-launch-generations.csv``; sources in ``data/PROVENANCE.md``):

* v1.0: every Starlink launch from Starlink-1 (2019-074, 2019-11-11) to v1.0 L28 (2021-044);
  no laser links.
* v1.5: Transporter-2's polar test satellites (2021-059) and every launch from Group 2-1
  (2021-082) on, overlapping with v2 mini through July 2023 (the last v1.5 launch is 2023-099).
* v2 mini: from Group 6-1 (2023-026, 27 February 2023) on; during 2023 the two were launched
  alternately, so the table lists the 2023 launches between 2023-026 and 2023-099 one by one.

Direct-to-cell satellites (CelesTrak tags them ``[DTC]`` in the name) fly on the same launches
as v2 mini broadband satellites and are told apart by that tag only; they carry no Ku broadband
user payload here (capacity 0). Objects named but not Starlink, designators that cannot be read
(Hypatia's synthetic ``00000ABC``), and launches the table does not list are ``"unknown"``.

The COSPAR launch number counts every successful orbital launch of the year in order, so "was
launched before a date" is "has a smaller launch number than the first launch on or after that
date" (:func:`first_launch_on_or_after`); the boundaries known here are listed, with their
source, in :data:`LAUNCH_DATE_BOUNDARIES`.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources

import numpy as np
from numpy.typing import NDArray

from starmesh.errors import ScenarioError, StarmeshError
from starmesh.service.params import GENERATIONS

#: The shipped launch -> generation table (``starmesh/data``).
GENERATION_TABLE_FILE = "starlink-launch-generations.csv"
#: Generation of a satellite the table cannot place.
UNKNOWN = "unknown"
#: Direct-to-cell satellites (``[DTC]`` in CelesTrak's name): no broadband user capacity.
DIRECT_TO_CELL = "direct-to-cell"
#: Order of generations in reports.
REPORT_ORDER: tuple[str, ...] = ("v1.0", "v1.5", "v2-mini", DIRECT_TO_CELL, UNKNOWN)

#: First launch (year, launch number) on or after each date, for ``launched_before``. Source:
#: CelesTrak's SATCAT (satcat.csv, as mirrored in the public repository
#: awatchar/satfinder-beam-tracker-lab, commit 5fceed2): 2025-065 (Starlink, 28 v2 mini, the
#: 43 deg shell) launched on 2025-03-31 and 2025-066 (Fram2) on 2025-04-01. The first day of a
#: year needs no entry (launch 1 of that year).
LAUNCH_DATE_BOUNDARIES: dict[date, tuple[int, int]] = {date(2025, 4, 1): (2025, 66)}

_TLE_DESIG = re.compile(r"^(\d{2})(\d{3})([A-Z]{0,3})$")
_OMM_DESIG = re.compile(r"^(\d{4})-(\d{3})([A-Z]{0,3})$")


def parse_designator(text: str) -> tuple[int, int, str] | None:
    """Launch year, launch number and piece of an international designator.

    Parameters
    ----------
    text : str
        TLE form ``"19074B"`` (two-digit year: 57-99 is 1957-1999, 00-56 is 2000-2056, the TLE
        epoch-year rule of CelesTrak's format notes) or OMM form ``"2019-074B"``.

    Returns
    -------
    (year, launch, piece) or None
        None for text that is neither form, or launch number 0 (Hypatia's synthetic TLEs write
        ``00000ABC``).

    Examples
    --------
    >>> parse_designator("19074B")
    (2019, 74, 'B')
    >>> parse_designator("2025-065AD")
    (2025, 65, 'AD')
    >>> parse_designator("00000ABC") is None
    True
    """
    t = text.strip().upper()
    m = _TLE_DESIG.match(t)
    if m:
        yy = int(m.group(1))
        year = 1900 + yy if yy >= 57 else 2000 + yy
    else:
        m = _OMM_DESIG.match(t)
        if not m:
            return None
        year = int(m.group(1))
    launch = int(m.group(2))
    if launch == 0:
        return None
    return year, launch, m.group(3)


def launch_key(year: int, launch: int) -> int:
    """One sortable integer per launch: ``year x 1000 + launch number``."""
    return year * 1000 + launch


@dataclass(frozen=True)
class LaunchRule:
    """Launches ``first .. last`` (inclusive, :func:`launch_key`) carried ``generation``."""

    first: int
    last: int
    generation: str
    evidence: str


def _key_of(text: str, where: str) -> int:
    p = parse_designator(text)
    if p is None or p[2]:
        raise StarmeshError(f"{where}: {text!r} is not a launch 'YYYY-NNN'")
    return launch_key(p[0], p[1])


@lru_cache(maxsize=2)
def load_generation_table(text: str | None = None) -> tuple[LaunchRule, ...]:
    """The launch -> generation table, sorted and checked (ranges disjoint, generations known).

    Parameters
    ----------
    text : str, optional
        CSV text (``first_launch,last_launch,generation,evidence``); default the shipped file.
    """
    if text is None:
        text = (resources.files("starmesh.data") / GENERATION_TABLE_FILE).read_text("utf-8")
    rules = []
    for i, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        where = f"{GENERATION_TABLE_FILE} line {i}"
        first = _key_of(row["first_launch"], where)
        last = _key_of(row["last_launch"], where)
        gen = row["generation"].strip()
        if gen not in GENERATIONS or first > last:
            raise StarmeshError(f"{where}: bad rule {row}")
        rules.append(LaunchRule(first, last, gen, row["evidence"].strip()))
    rules.sort(key=lambda r: r.first)
    for a, b in itertools.pairwise(rules):
        if b.first <= a.last:
            raise StarmeshError(f"{GENERATION_TABLE_FILE}: ranges overlap at launch {b.first}")
    return tuple(rules)


def generation_of_launch(key: int, table: Sequence[LaunchRule] | None = None) -> str:
    """Generation of launch ``key`` (:func:`launch_key`), or :data:`UNKNOWN`."""
    rules = load_generation_table() if table is None else table
    i = bisect.bisect_right([r.first for r in rules], key) - 1
    if i >= 0 and rules[i].first <= key <= rules[i].last:
        return rules[i].generation
    return UNKNOWN


def satellite_generations(
    names: Sequence[str],
    designators: Sequence[str],
    table: Sequence[LaunchRule] | None = None,
) -> NDArray[np.str_]:
    """Generation of each satellite, shape (S,).

    Parameters
    ----------
    names : sequence of str, length S
        Satellite names (``"NORAD <id>"`` when the source has none, as for 2LE files).
    designators : sequence of str, length S
        International designators (:attr:`starmesh.elements.ElementRecord.intl_designator`).
    table : sequence of LaunchRule, optional
        Default: the shipped table.

    Returns
    -------
    ndarray of str, shape (S,)
        ``"v1.0"``, ``"v1.5"``, ``"v2-mini"``, :data:`DIRECT_TO_CELL` or :data:`UNKNOWN`
        (a named object that is not a Starlink, an unreadable designator, a launch not listed).
    """
    rules = load_generation_table() if table is None else table
    firsts = [r.first for r in rules]
    out = np.empty(len(names), dtype=object)
    for i, (name, desig) in enumerate(zip(names, designators, strict=True)):
        up = name.upper()
        if "[DTC]" in up:
            out[i] = DIRECT_TO_CELL
            continue
        if not (up.startswith("STARLINK") or up.startswith("NORAD ")):
            out[i] = UNKNOWN
            continue
        p = parse_designator(desig)
        if p is None:
            out[i] = UNKNOWN
            continue
        key = launch_key(p[0], p[1])
        j = bisect.bisect_right(firsts, key) - 1
        ok = j >= 0 and rules[j].first <= key <= rules[j].last
        out[i] = rules[j].generation if ok else UNKNOWN
    return out.astype(str)


def generation_capacity_bps(generations: Sequence[str] | NDArray[np.str_], unknown_bps: float):
    """User-downlink capacity of each satellite [bit/s], shape (S,): its generation's
    (:data:`starmesh.service.params.GENERATIONS`), 0 for direct-to-cell satellites and
    ``unknown_bps`` for :data:`UNKNOWN`."""
    cap = {name: g.capacity_bps for name, g in GENERATIONS.items()}
    cap[DIRECT_TO_CELL] = 0.0
    cap[UNKNOWN] = float(unknown_bps)
    return np.array([cap[str(g)] for g in generations], dtype=np.float64)


def fleet_mix(generations: Sequence[str] | NDArray[np.str_]) -> dict[str, int]:
    """Satellites per generation, in :data:`REPORT_ORDER` (generations with none left out)."""
    names, counts = np.unique(np.asarray(generations, dtype=str), return_counts=True)
    got = dict(zip(names.tolist(), counts.tolist(), strict=True))
    return {g: int(got[g]) for g in REPORT_ORDER if got.get(g)}


def first_launch_on_or_after(day: date) -> int:
    """:func:`launch_key` of the first launch on or after ``day``.

    Known for 1 January of any year (launch 1 of that year) and for the dates of
    :data:`LAUNCH_DATE_BOUNDARIES`.

    Raises
    ------
    ScenarioError
        For another date, naming the dates that can be used.
    """
    if (day.month, day.day) == (1, 1):
        return launch_key(day.year, 1)
    if day in LAUNCH_DATE_BOUNDARIES:
        return launch_key(*LAUNCH_DATE_BOUNDARIES[day])
    known = ", ".join(d.isoformat() for d in sorted(LAUNCH_DATE_BOUNDARIES))
    raise ScenarioError(
        "constellation.filter.launched_before",
        f"no sourced launch number for {day.isoformat()}: use 1 January of a year or one of "
        f"{known} (starmesh.service.fleet.LAUNCH_DATE_BOUNDARIES)",
    )


def launched_before(designators: Sequence[str], day: date) -> NDArray[np.bool_]:
    """Which satellites were launched before ``day``, shape (S,).

    Raises
    ------
    ScenarioError
        If ``day`` is not a known boundary (:func:`first_launch_on_or_after`) or a designator
        cannot be read (its launch is then unknown).
    """
    bound = first_launch_on_or_after(day)
    out = np.zeros(len(designators), dtype=bool)
    for i, d in enumerate(designators):
        p = parse_designator(d)
        if p is None:
            raise ScenarioError(
                "constellation.filter.launched_before",
                f"element set {i} has international designator {d!r}, which gives no launch: "
                "launched_before needs real TLE/OMM designators",
            )
        out[i] = launch_key(p[0], p[1]) < bound
    return out
