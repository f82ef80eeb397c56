"""Orbital element sets as text: TLE/3LE and CCSDS OMM (JSON, CSV, XML), read and validated.

This module turns text into :class:`ElementRecord` objects and checks every field a propagator
needs, so that a damaged file fails here with a line number and a reason, not later inside SGP4
with a bare ``ValueError`` or, worse, with silently wrong positions. It does not propagate:
:mod:`starmesh.propagation` builds SGP4 satellites from the records (``line1``/``line2`` for TLEs,
the ``omm`` field dictionary for OMM) and is the only module that imports ``sgp4``.

Formats read:

- TLE with names (3LE, as CelesTrak serves it; name lines may carry Space-Track's ``"0 "``
  prefix) and without names (2LE). Catalog numbers may use the Alpha-5 scheme (``A0001`` is
  100001).
- OMM as CelesTrak serves it with ``FORMAT=json`` (a list of objects), ``FORMAT=csv`` (a header
  row, then one row per satellite) and ``FORMAT=xml`` (a CCSDS NDM/XML document with one
  ``<segment>`` per satellite; namespaces are ignored).

References
----------
- TLE columns: CelesTrak, "NORAD Two-Line Element Set Format",
  https://celestrak.org/NORAD/documentation/tle-fmt.php; Hoots & Roehrich, Spacetrack Report #3
  (1980).
- Alpha-5 catalog numbers: U.S. Space Force, Space-Track "Alpha-5" documentation.
- OMM: CCSDS 502.0-B-3, "Orbit Data Messages" (2023); T.S. Kelso, "A New Way to Obtain GP Data",
  https://celestrak.org/NORAD/documentation/gp-data-formats.php.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import StarmeshError, TLEFormatError

__all__ = [
    "OMM_REQUIRED_FIELDS",
    "SNAPSHOT_FILENAME",
    "ElementRecord",
    "ElementSet",
    "load_elements",
    "load_starlink_snapshot",
    "parse_omm_text",
    "parse_tle_text",
    "tle_checksum",
]

#: The Starlink snapshot shipped in ``starmesh/data`` (see the PROVENANCE.md there).
SNAPSHOT_FILENAME = "starlink-2026-05-12.tle"

#: OMM fields every record must carry: the ones ``sgp4.omm.initialize`` reads.
#: ``OBJECT_NAME`` is optional (a missing name becomes ``"NORAD <id>"``).
OMM_REQUIRED_FIELDS: tuple[str, ...] = (
    "OBJECT_ID",
    "EPOCH",
    "MEAN_MOTION",
    "ECCENTRICITY",
    "INCLINATION",
    "RA_OF_ASC_NODE",
    "ARG_OF_PERICENTER",
    "MEAN_ANOMALY",
    "EPHEMERIS_TYPE",
    "CLASSIFICATION_TYPE",
    "NORAD_CAT_ID",
    "ELEMENT_SET_NO",
    "REV_AT_EPOCH",
    "BSTAR",
    "MEAN_MOTION_DOT",
    "MEAN_MOTION_DDOT",
)

_TLE_LINE_LEN = 69
_SNIPPET_LEN = 40

# Alpha-5 catalog numbers: a leading letter stands for 10..33, skipping I and O (which read
# like 1 and 0), so 'A0001' is 100001 and 'Z9999' is 339999.
_ALPHA5 = {c: v for v, c in enumerate("ABCDEFGHJKLMNPQRSTUVWXYZ", start=10)}

_DECIMAL_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT_RE = re.compile(r"[+-]?\d+")
# TLE "assumed decimal point" fields, e.g. '-11606-4' = -0.11606e-4; always 8 columns.
_EXP_FIELD_RE = re.compile(r"([ +-])(\d{5})([+-]\d)")
_ISO_EPOCH_RE = re.compile(
    r"(\d{4})-(?:(\d{2})-(\d{2})|(\d{3}))[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)
# The EPOCH spelling that sgp4.omm.initialize accepts ('%Y-%m-%dT%H:%M:%S.%f'), as CelesTrak
# writes it; other spellings are rewritten to it.
_SGP4_EPOCH_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,6}")

# Columns (0-based) that hold a fixed blank or decimal point. A character out of place means the
# fields have shifted; these are the columns python-sgp4's reader checks too.
_LAYOUT = {
    "1": ((8, " "), (23, "."), (32, " "), (34, "."), (43, " "), (52, " "), (61, " "), (63, " ")),
    "2": (
        (7, " "),
        (11, "."),
        (16, " "),
        (20, "."),
        (25, " "),
        (33, " "),
        (37, "."),
        (42, " "),
        (46, "."),
        (51, " "),
    ),
}


@dataclass(frozen=True)
class ElementRecord:
    """One satellite's mean elements, as read from a TLE or an OMM record.

    Parameters
    ----------
    name : str
        Satellite name: the 3LE name line (without a ``"0 "`` prefix), the OMM ``OBJECT_NAME``,
        or ``"NORAD <id>"`` when the source has none.
    norad_id : int
        NORAD catalog number (Alpha-5 numbers decoded: ``A0001`` is 100001).
    line_no : int
        Where the record starts in its source, for messages: the 1-based line number of TLE
        line 1, or the 1-based record number of an OMM record.
    line1, line2 : str or None
        The TLE lines, stripped of trailing whitespace (69 characters; 68 if the source left
        out the checksum column). ``None`` for OMM records.
    omm : dict of str to str, or None
        OMM fields keyed like CelesTrak's (``OBJECT_NAME``, ``EPOCH``, ``MEAN_MOTION``, ...),
        every value a string stripped of surrounding whitespace, ready for
        ``sgp4.omm.initialize``. ``EPOCH`` is kept as written when it has CelesTrak's form
        ``2026-05-12T22:48:42.999936`` and rewritten to that form (in UTC) otherwise.
        ``None`` for TLE records.
    inclination_deg : float
        Mean inclination [deg], in ``[0, 180]``.
    mean_motion_rev_day : float
        Kozai mean motion [rev/day], > 0.
    epoch : datetime
        Epoch of the elements, timezone-aware UTC.
    """

    name: str
    norad_id: int
    line_no: int
    line1: str | None
    line2: str | None
    omm: dict[str, str] | None
    inclination_deg: float
    mean_motion_rev_day: float
    epoch: datetime

    @property
    def is_tle(self) -> bool:
        """True for a TLE record (``line1``/``line2`` set), False for an OMM record."""
        return self.line1 is not None

    @property
    def intl_designator(self) -> str:
        """International (COSPAR) designator as written in the source, stripped: TLE line 1
        columns 10-17 (``"19074B"``: launch year, launch number of the year, piece) or the OMM
        ``OBJECT_ID`` (``"2019-074B"``). Read with
        :func:`starmesh.service.fleet.parse_designator`."""
        if self.line1 is not None:
            return self.line1[9:17].strip()
        return (self.omm or {}).get("OBJECT_ID", "").strip()


@dataclass(frozen=True, repr=False)
class ElementSet:
    """The element sets read from one source, in source order.

    Parameters
    ----------
    records : tuple of ElementRecord, length S
        The valid records, in the order of the source.
    source : str
        The path read, or ``"<string>"``.
    skipped : tuple of TLEFormatError
        Problems of the records left out when reading with ``skip_bad=True`` (one each, with
        line number and reason); empty otherwise.

    Notes
    -----
    The array properties are built on each access; keep the result when calling in a loop.
    """

    records: tuple[ElementRecord, ...]
    source: str
    skipped: tuple[TLEFormatError, ...] = ()

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ElementRecord]:
        return iter(self.records)

    def __getitem__(self, sat_idx: int) -> ElementRecord:
        return self.records[sat_idx]

    def __repr__(self) -> str:
        return (
            f"ElementSet({len(self.records)} records from {self.source!r}, "
            f"{len(self.skipped)} skipped)"
        )

    @property
    def names(self) -> list[str]:
        """Satellite names, length S."""
        return [r.name for r in self.records]

    @property
    def norad_ids(self) -> NDArray[np.int64]:
        """NORAD catalog numbers, shape (S,)."""
        return np.array([r.norad_id for r in self.records], dtype=np.int64)

    @property
    def inclination_deg(self) -> NDArray[np.float64]:
        """Mean inclinations [deg], shape (S,)."""
        return np.array([r.inclination_deg for r in self.records], dtype=np.float64)

    @property
    def mean_motion_rev_day(self) -> NDArray[np.float64]:
        """Kozai mean motions [rev/day], shape (S,)."""
        return np.array([r.mean_motion_rev_day for r in self.records], dtype=np.float64)

    @property
    def epochs(self) -> list[datetime]:
        """Element epochs, timezone-aware UTC, length S."""
        return [r.epoch for r in self.records]

    @property
    def intl_designators(self) -> list[str]:
        """International designators (:attr:`ElementRecord.intl_designator`), length S."""
        return [r.intl_designator for r in self.records]

    @property
    def line_nos(self) -> NDArray[np.int64]:
        """Source line (TLE) or record (OMM) numbers, shape (S,)."""
        return np.array([r.line_no for r in self.records], dtype=np.int64)

    def select(self, sat_idx: ArrayLike) -> ElementSet:
        """A new set holding some of the records.

        Parameters
        ----------
        sat_idx : array_like of int, shape (K,), or of bool, shape (S,)
            Indices of the records to keep (in that order), or a mask over all records.

        Returns
        -------
        ElementSet
            Same ``source`` and ``skipped``, with the chosen records.

        Examples
        --------
        >>> snap = load_starlink_snapshot()
        >>> polar = snap.select(np.abs(snap.inclination_deg - 97.6) < 1.0)
        >>> bool(np.all(polar.inclination_deg > 96.0))
        True
        """
        idx = np.asarray(sat_idx)
        if idx.dtype == np.bool_:
            if idx.shape != (len(self.records),):
                raise ValueError(
                    f"mask has shape {idx.shape} but the set holds {len(self.records)} "
                    "records: pass one boolean per record"
                )
            idx = np.flatnonzero(idx)
        chosen = tuple(self.records[int(i)] for i in np.atleast_1d(idx).astype(np.int64))
        return ElementSet(records=chosen, source=self.source, skipped=self.skipped)


def tle_checksum(line: str) -> int:
    """Checksum of a TLE line: the sum of its digits, with each ``-`` counting 1, modulo 10.

    Only the first 68 columns count; column 69 holds the checksum itself.

    Examples
    --------
    >>> tle_checksum("1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927")
    7
    """
    return sum(int(c) if c.isdigit() else (c == "-") for c in line[:68]) % 10


# --------------------------------------------------------------------------------------------
# TLE


class _RawTLE(NamedTuple):
    name: str
    line_no1: int
    line1: str
    line_no2: int
    line2: str


def parse_tle_text(text: str, *, source: str = "<string>", skip_bad: bool = False) -> ElementSet:
    """Read TLE text: three-line (with names) or two-line element sets, or a mix.

    Blank lines are ignored; trailing whitespace and CR line ends are tolerated. Name lines may
    carry Space-Track's ``"0 "`` prefix, which is removed.

    Parameters
    ----------
    text : str
        The whole text.
    source : str
        Name of the source (a path), used in messages.
    skip_bad : bool
        If False, the first malformed record raises. If True, malformed records are left out
        and their problems collected in :attr:`ElementSet.skipped`.

    Returns
    -------
    ElementSet
        The valid records, in source order.

    Raises
    ------
    TLEFormatError
        On the first malformed record (``skip_bad=False``), with its line number and the reason;
        or if the text holds no valid record at all (also with ``skip_bad=True``).

    Notes
    -----
    A record is rejected when: line 1 does not start with ``"1 "`` or line 2 with ``"2 "``; a
    line 1 has no line 2 after it, or a line 2 no line 1 before it; a line is not 69 characters
    long (68 is accepted as a line whose checksum column was left out; it then cannot be
    checked); a checksum does not match; a blank or decimal point is out of its fixed column;
    a numeric field does not parse or is out of range (epoch day, inclination in [0, 180] deg,
    angles in [0, 360] deg, eccentricity in [0, 1), mean motion > 0); the catalog numbers of the
    two lines differ. Any other text between records is rejected too.

    Examples
    --------
    >>> iss = '''ISS (ZARYA)
    ... 1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927
    ... 2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537'''
    >>> rec = parse_tle_text(iss)[0]
    >>> rec.name, rec.norad_id, rec.inclination_deg
    ('ISS (ZARYA)', 25544, 51.6416)
    >>> rec.epoch.isoformat()
    '2008-09-20T12:25:40.104192+00:00'
    """
    records: list[ElementRecord] = []
    skipped: list[TLEFormatError] = []
    for item in _scan_tle(text, source):
        if isinstance(item, TLEFormatError):
            problem = item
        else:
            try:
                records.append(_record_from_tle(item, source))
                continue
            except TLEFormatError as exc:
                problem = exc
        if not skip_bad:
            raise problem
        skipped.append(problem)
    return _finish(records, skipped, source, what="TLE")


def _snip(s: str) -> str:
    return s if len(s) <= _SNIPPET_LEN else s[: _SNIPPET_LEN - 3] + "..."


def _line_kind(s: str) -> str:
    """'1', '2', 'bad' (a TLE-length line of digits with a damaged prefix) or 'text'."""
    if s.startswith("1 "):
        return "1"
    if s.startswith("2 "):
        return "2"
    if len(s) >= 60 and s[0].isdigit():
        return "bad"
    return "text"


def _clean_name(s: str) -> str:
    name = s.strip()
    # Space-Track's 3LE writes name lines as '0 NAME', so that every line starts with its number.
    if name == "0" or name.startswith("0 "):
        name = name[1:].strip()
    return name


def _split_lines(text: str) -> list[str]:
    if text.startswith("\ufeff"):
        text = text[1:]
    # Split on line ends only: str.splitlines would also split on form feeds and the like and
    # shift every line number after them.
    return re.split(r"\r\n|\r|\n", text)


def _scan_tle(text: str, source: str) -> Iterator[_RawTLE | TLEFormatError]:
    """Group lines into (name, line 1, line 2) records; yield structural problems in between."""
    entries = [(no, s.rstrip()) for no, s in enumerate(_split_lines(text), start=1)]
    entries = [(no, s) for no, s in entries if s]
    kinds = [_line_kind(s) for _, s in entries]
    n = len(entries)
    name = ""
    i = 0
    while i < n:
        no, s = entries[i]
        kind = kinds[i]
        nxt = kinds[i + 1] if i + 1 < n else None
        if kind == "text":
            if nxt is None:
                yield TLEFormatError(
                    source,
                    no,
                    f"satellite name {_snip(s)!r} is the last line: its TLE lines 1 and 2 are "
                    "missing (is the file truncated?)",
                )
            elif nxt == "text":
                yield TLEFormatError(
                    source,
                    no,
                    f"unexpected text {_snip(s)!r}: expected a satellite name followed by TLE "
                    "line 1, or a TLE line; remove the line or fix the record",
                )
            else:
                name = _clean_name(s)
            i += 1
            continue
        if kind == "2":
            yield TLEFormatError(
                source,
                no,
                "TLE line 2 has no line 1 before it: line 1 is missing or damaged; "
                "restore it or remove the record",
            )
        elif kind == "bad":
            which = "1" if nxt == "2" else "1 or 2"
            yield TLEFormatError(
                source,
                no,
                f"TLE line {which} must start with '1 ' or '2 ' (the line number and a blank), "
                f"found {s[:2]!r}",
            )
            if nxt == "2":
                i += 1  # the line 2 belongs to this damaged record
        elif nxt == "2":
            yield _RawTLE(name, no, s, entries[i + 1][0], entries[i + 1][1])
            i += 1
        elif nxt == "bad":
            no2, s2 = entries[i + 1]
            yield TLEFormatError(
                source,
                no2,
                f"TLE line 2 must start with '2 ' (the line number and a blank), found "
                f"{s2[:2]!r} (its line 1 is line {no})",
            )
            i += 1
        elif nxt is None:
            yield TLEFormatError(
                source,
                no,
                "TLE line 1 is the last line: its line 2 is missing (is the file truncated?)",
            )
        else:
            no2, s2 = entries[i + 1]
            yield TLEFormatError(
                source,
                no,
                f"TLE line 1 is not followed by a line 2: line {no2} holds {_snip(s2)!r}; "
                "restore the missing line 2 or remove the line 1",
            )
        name = ""
        i += 1


def _fail(source: str, line_no: int, reason: str) -> TLEFormatError:
    return TLEFormatError(source, line_no, reason)


def _check_tle_line(line: str, which: str, line_no: int, source: str) -> None:
    """Length, checksum and fixed columns of one TLE line."""
    n = len(line)
    if n not in (_TLE_LINE_LEN - 1, _TLE_LINE_LEN):
        short_long = "short" if n < _TLE_LINE_LEN else "long"
        raise _fail(
            source,
            line_no,
            f"TLE line {which} is too {short_long}: {n} characters, expected 69; TLE fields sit "
            "at fixed columns, so a line that lost or gained characters cannot be read: take "
            "the element set again from its source",
        )
    if n == _TLE_LINE_LEN:
        found = line[68]
        expected = tle_checksum(line)
        if not found.isdigit():
            raise _fail(
                source,
                line_no,
                f"TLE line {which} checksum (column 69) must be a digit, found {found!r} "
                f"(expected {expected})",
            )
        if int(found) != expected:
            raise _fail(
                source,
                line_no,
                f"TLE line {which} checksum mismatch: expected {expected}, found {found}; "
                "the line was corrupted (a character changed): take the element set again "
                "from its source",
            )
    for col, char in _LAYOUT[which]:
        if line[col] != char:
            raise _fail(
                source,
                line_no,
                f"TLE line {which} column {col + 1} must be {char!r}, found {line[col]!r}: the "
                "fields are shifted out of their fixed columns; take the element set again "
                "from its source",
            )


def _field_error(
    source: str, line_no: int, which: str, label: str, cols: tuple[int, int], raw: str, want: str
) -> TLEFormatError:
    return _fail(
        source,
        line_no,
        f"{label} (TLE line {which}, columns {cols[0]}-{cols[1]}) must be {want}, "
        f"found {raw.strip()!r}",
    )


def _tle_float(
    line: str,
    which: str,
    line_no: int,
    source: str,
    label: str,
    cols: tuple[int, int],
    lo: float = -math.inf,
    hi: float = math.inf,
    want: str = "a decimal number",
) -> float:
    """A plain decimal field at 1-based columns ``cols`` (inclusive), checked against [lo, hi]."""
    raw = line[cols[0] - 1 : cols[1]]
    text = raw.strip()
    if _DECIMAL_RE.fullmatch(text):
        value = float(text)
        if lo <= value <= hi:
            return value
    raise _field_error(source, line_no, which, label, cols, raw, want)


def _tle_exp_field(
    line: str, which: str, line_no: int, source: str, label: str, cols: tuple[int, int]
) -> float:
    """An 'assumed decimal point' field such as ``-11606-4`` (= -0.11606e-4)."""
    raw = line[cols[0] - 1 : cols[1]]
    m = _EXP_FIELD_RE.fullmatch(raw)
    if m is None:
        raise _field_error(
            source,
            line_no,
            which,
            label,
            cols,
            raw,
            "a sign, 5 digits and a signed exponent digit, like '-11606-4' or ' 00000+0'",
        )
    sign = -1.0 if m.group(1) == "-" else 1.0
    return sign * int(m.group(2)) * 1e-5 * 10.0 ** int(m.group(3))


def _tle_catalog(line: str, which: str, line_no: int, source: str) -> int:
    raw = line[2:7]
    text = raw.strip()
    if len(text) == 5 and text[0] in _ALPHA5 and text[1:].isdigit():
        return _ALPHA5[text[0]] * 10_000 + int(text[1:])
    if text.isdigit() and text.isascii():
        return int(text)
    raise _field_error(
        source,
        line_no,
        which,
        "catalog number",
        (3, 7),
        raw,
        "5 digits, or an Alpha-5 letter (not I or O) and 4 digits",
    )


def _tle_epoch(line: str, line_no: int, source: str) -> datetime:
    year_raw, day_raw = line[18:20], line[20:32]
    if not (year_raw.isdigit() and year_raw.isascii()):
        raise _field_error(source, line_no, "1", "epoch year", (19, 20), year_raw, "two digits")
    yy = int(year_raw)
    # The TLE convention (Spacetrack Report #3): years 57-99 are 1957-1999, 00-56 are 2000-2056.
    year = 1900 + yy if yy >= 57 else 2000 + yy
    n_days = 366 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 365
    day = _tle_float(
        line,
        "1",
        line_no,
        source,
        "epoch day of year",
        (21, 32),
        want=f"a day of year in [1, {n_days + 1}) for {year}",
    )
    if not (1.0 <= day < n_days + 1.0):
        raise _field_error(
            source,
            line_no,
            "1",
            "epoch day of year",
            (21, 32),
            day_raw,
            f"a day of year in [1, {n_days + 1}) for {year}",
        )
    return datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=day - 1.0)


def _tle_optional_int(
    line: str, which: str, line_no: int, source: str, label: str, cols: tuple[int, int]
) -> None:
    raw = line[cols[0] - 1 : cols[1]]
    if raw.strip() and not (raw.strip().isdigit() and raw.isascii()):
        raise _field_error(source, line_no, which, label, cols, raw, "digits (or blank)")


def _record_from_tle(raw: _RawTLE, source: str) -> ElementRecord:
    l1, l2, no1, no2 = raw.line1, raw.line2, raw.line_no1, raw.line_no2
    _check_tle_line(l1, "1", no1, source)
    sat1 = _tle_catalog(l1, "1", no1, source)
    epoch = _tle_epoch(l1, no1, source)
    _tle_float(l1, "1", no1, source, "first derivative of mean motion", (34, 43))
    _tle_exp_field(l1, "1", no1, source, "second derivative of mean motion", (45, 52))
    _tle_exp_field(l1, "1", no1, source, "BSTAR drag term", (54, 61))
    _tle_optional_int(l1, "1", no1, source, "ephemeris type", (63, 63))
    _tle_optional_int(l1, "1", no1, source, "element set number", (65, 68))

    _check_tle_line(l2, "2", no2, source)
    sat2 = _tle_catalog(l2, "2", no2, source)
    angle = "a number in [0, 360] deg"
    inc = _tle_float(
        l2, "2", no2, source, "inclination", (9, 16), 0.0, 180.0, "a number in [0, 180] deg"
    )
    _tle_float(l2, "2", no2, source, "right ascension of the node", (18, 25), 0.0, 360.0, angle)
    ecc_raw = l2[26:33]
    # python-sgp4 reads blanks in the eccentricity as zeros; so do we.
    ecc_digits = ecc_raw.replace(" ", "0")
    if not (ecc_digits.isdigit() and ecc_digits.isascii()):
        raise _field_error(
            source,
            no2,
            "2",
            "eccentricity",
            (27, 33),
            ecc_raw,
            "7 digits with an implied leading decimal point (0001912 is 0.0001912)",
        )
    _tle_float(l2, "2", no2, source, "argument of perigee", (35, 42), 0.0, 360.0, angle)
    _tle_float(l2, "2", no2, source, "mean anomaly", (44, 51), 0.0, 360.0, angle)
    n_rev_day = _tle_float(
        l2, "2", no2, source, "mean motion", (53, 63), want="a number > 0 rev/day"
    )
    if not n_rev_day > 0.0:
        raise _field_error(
            source, no2, "2", "mean motion", (53, 63), l2[52:63], "a number > 0 rev/day"
        )
    _tle_optional_int(l2, "2", no2, source, "revolution number", (64, 68))

    if sat1 != sat2:
        raise _fail(
            source,
            no2,
            f"catalog number {sat2} on TLE line 2 differs from {sat1} on its line 1 (line "
            f"{no1}): the two lines belong to different satellites; keep each line 1 with its "
            "own line 2",
        )
    return ElementRecord(
        name=raw.name or f"NORAD {sat1}",
        norad_id=sat1,
        line_no=no1,
        line1=l1,
        line2=l2,
        omm=None,
        inclination_deg=inc,
        mean_motion_rev_day=n_rev_day,
        epoch=epoch,
    )


# --------------------------------------------------------------------------------------------
# OMM

_OMM_ANGLES = ("RA_OF_ASC_NODE", "ARG_OF_PERICENTER", "MEAN_ANOMALY")
_OMM_FLOATS = ("BSTAR", "MEAN_MOTION_DOT", "MEAN_MOTION_DDOT")
_OMM_INTS = ("EPHEMERIS_TYPE", "ELEMENT_SET_NO", "REV_AT_EPOCH")


def parse_omm_text(
    text: str,
    *,
    fmt: Literal["json", "csv", "xml"],
    source: str = "<string>",
    skip_bad: bool = False,
) -> ElementSet:
    """Read CCSDS OMM records as CelesTrak serves them (``FORMAT=json``, ``csv`` or ``xml``).

    Parameters
    ----------
    text : str
        The whole text.
    fmt : {"json", "csv", "xml"}
        Its format. JSON: a list of objects (one object alone is accepted too). CSV: a header
        row naming the fields, then one row per satellite. XML: an NDM/XML document with one
        ``<segment>`` per satellite; element names are matched without their namespace.
    source : str
        Name of the source (a path), used in messages.
    skip_bad : bool
        If False, the first malformed record raises. If True, malformed records are left out
        and their problems collected in :attr:`ElementSet.skipped`. Text that does not parse
        as JSON/CSV/XML at all always raises.

    Returns
    -------
    ElementSet
        The valid records, in source order; ``line_no`` is the 1-based record number.

    Raises
    ------
    TLEFormatError
        On a malformed record (``line`` is its record number), on text that is not valid
        JSON/XML (``line`` is the text line), or if no valid record remains.

    Notes
    -----
    Every field in :data:`OMM_REQUIRED_FIELDS` must be present and non-empty. Numbers must
    parse; INCLINATION must be in [0, 180] deg, the other angles in [0, 360] deg, ECCENTRICITY
    in [0, 1), MEAN_MOTION > 0, NORAD_CAT_ID a non-negative integer. EPOCH is ISO 8601
    (calendar or day-of-year date); without a zone it is UTC, as CelesTrak writes it.
    """
    if fmt not in ("json", "csv", "xml"):
        raise ValueError(f"fmt must be 'json', 'csv' or 'xml', got {fmt!r}")
    readers = {"json": _omm_json_rows, "csv": _omm_csv_rows, "xml": _omm_xml_rows}
    records: list[ElementRecord] = []
    skipped: list[TLEFormatError] = []
    for rec_no, row in enumerate(readers[fmt](text, source), start=1):
        try:
            records.append(_record_from_omm(row, rec_no, source))
        except TLEFormatError as exc:
            if not skip_bad:
                raise
            skipped.append(exc)
    return _finish(records, skipped, source, what=f"OMM {fmt.upper()}")


def _omm_json_rows(text: str, source: str) -> Iterator[Mapping[Any, Any]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            source, exc.lineno, f"not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise _fail(
            source,
            1,
            f"OMM JSON must be a list of objects (CelesTrak's FORMAT=json), found a "
            f"{type(doc).__name__}",
        )
    for item in doc:
        # A non-object item is reported by _record_from_omm with its record number.
        yield item if isinstance(item, dict) else {"": item}


def _omm_csv_rows(text: str, source: str) -> Iterator[Mapping[Any, Any]]:
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [f for f in OMM_REQUIRED_FIELDS if f not in {h.strip() for h in header}]
    if header and missing:
        raise _fail(
            source,
            1,
            f"OMM CSV header lacks the column(s) {', '.join(missing)}: the first row must name "
            "the fields, as CelesTrak's FORMAT=csv does",
        )
    for row in reader:
        yield {(k.strip() if isinstance(k, str) else k): v for k, v in row.items()}


def _local(tag: object) -> str:
    # '{http://...}EPOCH' -> 'EPOCH'; comments and processing instructions have non-str tags.
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _omm_xml_rows(text: str, source: str) -> Iterator[Mapping[Any, Any]]:
    try:
        root = ET.fromstring(text.lstrip("\ufeff"))
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else 1
        raise _fail(source, line, f"not well-formed XML ({exc})") from None
    segments = [el for el in root.iter() if _local(el.tag) == "segment"]
    if not segments:
        raise _fail(
            source,
            1,
            "no <segment> element found: expected a CCSDS OMM in NDM/XML, as CelesTrak's "
            "FORMAT=xml serves it",
        )
    for seg in segments:
        fields: dict[str, str] = {}
        for el in seg.iter():
            tag = _local(el.tag)
            # Leaf elements hold the values; COMMENT and USER_DEFINED are not elements.
            if len(el) == 0 and el is not seg and tag not in ("COMMENT", "USER_DEFINED", ""):
                fields[tag] = el.text or ""
        yield fields


def _omm_describe(fields: Mapping[str, str], rec_no: int) -> str:
    who = fields.get("OBJECT_NAME") or (
        f"NORAD {fields['NORAD_CAT_ID']}" if fields.get("NORAD_CAT_ID") else ""
    )
    return f"OMM record {rec_no}" + (f" ({who})" if who else "")


def _record_from_omm(row: Mapping[Any, Any], rec_no: int, source: str) -> ElementRecord:
    if set(row) == {""}:
        raise _fail(
            source,
            rec_no,
            f"OMM record {rec_no} is a {type(row['']).__name__}, not an object of OMM fields",
        )
    extra = row.get(None)
    fields = {
        str(k).strip(): str(v).strip()
        for k, v in row.items()
        if k is not None and v is not None and not isinstance(v, dict | list)
    }
    what = _omm_describe(fields, rec_no)
    if extra:
        raise _fail(
            source,
            rec_no,
            f"{what} has {len(extra)} more value(s) than the CSV header has columns: "
            "a value holds an unquoted comma",
        )
    missing = [f for f in OMM_REQUIRED_FIELDS if not fields.get(f)]
    if missing:
        raise _fail(
            source,
            rec_no,
            f"{what} lacks the required field(s) {', '.join(missing)}: SGP4 needs every one "
            "of them; take the record again from its source",
        )

    def number(
        key: str, lo: float = -math.inf, hi: float = math.inf, want: str = "a number"
    ) -> float:
        text = fields[key]
        if _FLOAT_RE.fullmatch(text):
            value = float(text)
            if math.isfinite(value) and lo <= value <= hi:
                return value
        raise _fail(source, rec_no, f"{what}: {key} must be {want}, found {text!r}")

    inc = number("INCLINATION", 0.0, 180.0, "a number in [0, 180] deg")
    for key in _OMM_ANGLES:
        number(key, 0.0, 360.0, "a number in [0, 360] deg")
    ecc = number("ECCENTRICITY", 0.0, 1.0, "a number in [0, 1)")
    if ecc >= 1.0:
        raise _fail(
            source, rec_no, f"{what}: ECCENTRICITY must be a number in [0, 1), found {ecc!r}"
        )
    n_rev_day = number("MEAN_MOTION", 0.0, math.inf, "a number > 0 rev/day")
    if not n_rev_day > 0.0:
        raise _fail(
            source,
            rec_no,
            f"{what}: MEAN_MOTION must be a number > 0 rev/day, found {fields['MEAN_MOTION']!r}",
        )
    for key in _OMM_FLOATS:
        number(key)
    for key in _OMM_INTS:
        if not _INT_RE.fullmatch(fields[key]):
            raise _fail(source, rec_no, f"{what}: {key} must be an integer, found {fields[key]!r}")
    norad_text = fields["NORAD_CAT_ID"]
    if not (norad_text.isdigit() and norad_text.isascii()):
        raise _fail(
            source,
            rec_no,
            f"{what}: NORAD_CAT_ID must be a non-negative integer, found {norad_text!r}",
        )
    norad_id = int(norad_text)

    epoch, epoch_text = _omm_epoch(fields["EPOCH"], what, rec_no, source)
    fields["EPOCH"] = epoch_text
    return ElementRecord(
        name=fields.get("OBJECT_NAME") or f"NORAD {norad_id}",
        norad_id=norad_id,
        line_no=rec_no,
        line1=None,
        line2=None,
        omm=fields,
        inclination_deg=inc,
        mean_motion_rev_day=n_rev_day,
        epoch=epoch,
    )


def _omm_epoch(text: str, what: str, rec_no: int, source: str) -> tuple[datetime, str]:
    """Parse an OMM EPOCH; return it as aware UTC and in the spelling sgp4 accepts."""
    m = _ISO_EPOCH_RE.fullmatch(text)
    epoch: datetime | None = None
    if m is not None:
        year, month, mday, yday, hh, mm, ss, frac, zone = m.groups()
        try:
            if yday is not None:
                date = datetime(int(year), 1, 1, tzinfo=UTC) + timedelta(days=int(yday) - 1)
                if date.year != int(year) or int(yday) < 1:
                    raise ValueError("day of year out of range")
            else:
                date = datetime(int(year), int(month), int(mday), tzinfo=UTC)
            if int(hh) > 23 or int(mm) > 59 or int(ss) > 60:
                raise ValueError("time of day out of range")
            micro = round(float("0." + frac) * 1e6) if frac else 0
            epoch = date + timedelta(
                hours=int(hh), minutes=int(mm), seconds=int(ss), microseconds=micro
            )
            if zone and zone.upper() != "Z":
                sign = -1 if zone[0] == "-" else 1
                digits = zone[1:].replace(":", "")
                epoch -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        except ValueError:
            epoch = None
    if epoch is None:
        raise _fail(
            source,
            rec_no,
            f"{what}: EPOCH must be an ISO 8601 UTC time like '2026-05-12T22:48:42.999936', "
            f"found {text!r}",
        )
    if _SGP4_EPOCH_RE.fullmatch(text):
        return epoch, text
    return epoch, epoch.strftime("%Y-%m-%dT%H:%M:%S.%f")


# --------------------------------------------------------------------------------------------
# Files


def _finish(
    records: list[ElementRecord], skipped: list[TLEFormatError], source: str, *, what: str
) -> ElementSet:
    if not records:
        if skipped:
            first = skipped[0]
            raise _fail(
                source,
                first.line,
                f"no valid element set: all {len(skipped)} record(s) are malformed; the first "
                f"(line/record {first.line}): {first.reason}",
            )
        raise _fail(
            source,
            1,
            f"no element set found: the {what} text is empty or holds only blank lines",
        )
    return ElementSet(records=tuple(records), source=source, skipped=tuple(skipped))


def _detect_format(text: str) -> Literal["tle", "json", "csv", "xml"]:
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith(("[", "{")):
        return "json"
    if head.startswith("<"):
        return "xml"
    first = head.split("\n", 1)[0].upper()
    if "," in first and ("NORAD_CAT_ID" in first or "OBJECT_NAME" in first):
        return "csv"
    return "tle"


def load_elements(path: str | os.PathLike[str], *, skip_bad: bool = False) -> ElementSet:
    """Read an element file: TLE/3LE/2LE, or OMM as JSON, CSV or XML.

    The format is told from the content, not the file name: text starting with ``[`` or ``{``
    is OMM JSON, with ``<`` OMM XML, a first line of comma-separated field names
    (``OBJECT_NAME``, ``NORAD_CAT_ID``, ...) OMM CSV; anything else is read as TLE.

    Parameters
    ----------
    path : str or os.PathLike
        The file (UTF-8 or ASCII text).
    skip_bad : bool
        See :func:`parse_tle_text`.

    Returns
    -------
    ElementSet
        The valid records, ``source`` set to ``path``.

    Raises
    ------
    StarmeshError
        If the file does not exist or cannot be read.
    TLEFormatError
        If it holds a malformed record (see :func:`parse_tle_text`, :func:`parse_omm_text`),
        no record at all, or bytes that are not UTF-8.
    """
    source = os.fspath(path)
    p = Path(source)
    kind = "OMM file" if p.suffix.lower() in (".json", ".csv", ".xml") else "TLE file"
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise StarmeshError(f"{kind} '{source}' not found: check the path") from None
    except IsADirectoryError:
        raise StarmeshError(f"{kind} '{source}' is a directory: give the path of a file") from None
    except OSError as exc:
        raise StarmeshError(f"cannot read {kind} '{source}': {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _fail(
            source,
            line,
            f"byte 0x{data[exc.start]:02x} is not UTF-8 text: element files are ASCII; "
            "is this the right file?",
        ) from None
    fmt = _detect_format(text)
    if fmt == "tle":
        return parse_tle_text(text, source=source, skip_bad=skip_bad)
    return parse_omm_text(text, fmt=fmt, source=source, skip_bad=skip_bad)


@lru_cache(maxsize=1)
def load_starlink_snapshot() -> ElementSet:
    """The Starlink element sets shipped with starmesh (CelesTrak, epochs 12-13 May 2026).

    10,361 satellites in 3LE form, taken byte for byte from a public mirror of CelesTrak's
    ``starlink`` group (see ``starmesh/data/PROVENANCE.md``). The shells show up by inclination:
    about 43 deg, 53 deg, 70 deg and 97.6 deg. Real data is messy: some satellites are raising
    or lowering their orbits, some decaying. The result is cached; it is immutable.

    Returns
    -------
    ElementSet
        With ``source`` ``"starmesh/data/starlink-2026-05-12.tle"``.

    Examples
    --------
    >>> snap = load_starlink_snapshot()
    >>> len(snap), len(snap.skipped)
    (10361, 0)
    """
    resource = files("starmesh") / "data" / SNAPSHOT_FILENAME
    text = resource.read_text(encoding="utf-8")
    return parse_tle_text(text, source=f"starmesh/data/{SNAPSHOT_FILENAME}")
