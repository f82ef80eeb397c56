"""Tests of starmesh.elements: reading and validating TLE/3LE/2LE and OMM element sets."""

from __future__ import annotations

import ast
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starmesh import elements
from starmesh.elements import (
    OMM_REQUIRED_FIELDS,
    ElementRecord,
    ElementSet,
    load_elements,
    load_starlink_snapshot,
    parse_omm_text,
    parse_tle_text,
    tle_checksum,
)
from starmesh.errors import StarmeshError, TLEFormatError

ONE_US = timedelta(microseconds=1)

# ISS (ZARYA), epoch 2008-09-20: the worked example of the TLE format on Wikipedia ("Two-line
# element set"), from NORAD/CelesTrak. Both checksums are 7 (checked in test_iss_checksums).
ISS_NAME = "ISS (ZARYA)"
ISS_L1 = "1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927"
ISS_L2 = "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537"
ISS_3LE = f"{ISS_NAME}\n{ISS_L1}\n{ISS_L2}\n"

# Published shell sizes of the snapshot (shared/data/PROVENANCE.md): inclination -> satellites.
PUBLISHED_SHELLS = {43.0: 3641, 53.0: 4929, 70.0: 578, 97.6: 1079}
PUBLISHED_OTHERS = 134
PUBLISHED_TOTAL = 10_361
A_FEW_PERCENT = 0.03


def fix_checksum(line: str) -> str:
    """Recompute column 69 so that a deliberately edited line gets past the checksum."""
    return line[:68] + str(tle_checksum(line))


def edit(line: str, col: int, new: str) -> str:
    """Replace text at 1-based column ``col`` and fix the checksum."""
    return fix_checksum(line[: col - 1] + new + line[col - 1 + len(new) :])


# ------------------------------------------------------------------------------------------
# The packaged Starlink snapshot


def test_snapshot_loads_every_record() -> None:
    snap = load_starlink_snapshot()
    assert len(snap) == PUBLISHED_TOTAL
    assert snap.skipped == ()
    assert snap.source.endswith("starlink-2026-05-12.tle")
    assert len(set(snap.norad_ids.tolist())) == len(snap)
    assert all(name.startswith("STARLINK-") for name in snap.names)
    # Epochs 2026 day 132-133 (PROVENANCE.md).
    assert min(snap.epochs) >= datetime(2026, 5, 12, tzinfo=UTC)
    assert max(snap.epochs) < datetime(2026, 5, 14, tzinfo=UTC)
    assert all(r.line1 is not None and len(r.line1) == 69 for r in snap)
    assert snap.norad_ids.dtype == np.int64 and snap.norad_ids.shape == (len(snap),)
    assert snap.inclination_deg.shape == snap.mean_motion_rev_day.shape == (len(snap),)


def test_snapshot_shells_by_inclination() -> None:
    inc_deg = load_starlink_snapshot().inclination_deg
    window = {c: int(np.count_nonzero(np.abs(inc_deg - c) < 1.0)) for c in PUBLISHED_SHELLS}
    for centre in (43.0, 53.0, 97.6):
        want = PUBLISHED_SHELLS[centre]
        assert abs(window[centre] - want) <= A_FEW_PERCENT * want, (centre, window[centre], want)
    # The published 70-deg count takes only inclinations >= 70 deg; the 134 "others" of
    # PROVENANCE.md sit just below, at 69.97-70.00 deg, and fall inside the +-1 deg window.
    at_or_above_70 = int(np.count_nonzero((inc_deg >= 70.0) & (inc_deg < 71.0)))
    assert abs(at_or_above_70 - 578) <= A_FEW_PERCENT * 578
    want_70 = PUBLISHED_SHELLS[70.0] + PUBLISHED_OTHERS
    assert abs(window[70.0] - want_70) <= A_FEW_PERCENT * want_70
    assert sum(window.values()) == len(inc_deg)


def test_snapshot_select() -> None:
    snap = load_starlink_snapshot()
    polar = snap.select(np.abs(snap.inclination_deg - 97.6) < 1.0)
    assert isinstance(polar, ElementSet)
    assert np.all(np.abs(polar.inclination_deg - 97.6) < 1.0)
    first_two = snap.select([1, 0])
    assert first_two.names == [snap[1].name, snap[0].name]
    with pytest.raises(ValueError, match="one boolean per record"):
        snap.select(np.ones(3, dtype=bool))
    assert "10361 records" in repr(snap)


# ------------------------------------------------------------------------------------------
# Valid TLE text


def test_iss_checksums() -> None:
    assert len(ISS_L1) == len(ISS_L2) == 69
    assert tle_checksum(ISS_L1) == int(ISS_L1[68]) == 7
    assert tle_checksum(ISS_L2) == int(ISS_L2[68]) == 7


def test_iss_tle_fields() -> None:
    es = parse_tle_text(ISS_3LE)
    assert len(es) == 1 and es.skipped == () and es.source == "<string>"
    rec = es[0]
    assert rec.name == ISS_NAME
    assert rec.norad_id == 25544
    assert rec.line_no == 2
    assert (rec.line1, rec.line2, rec.omm) == (ISS_L1, ISS_L2, None)
    assert rec.is_tle
    assert rec.inclination_deg == 51.6416
    assert rec.mean_motion_rev_day == 15.72125391
    # 2008 day 264.51782528: 20 Sep 2008 (a leap year) at 0.51782528 d = 44740.104192 s.
    want = datetime(2008, 9, 20, 12, 25, 40, 104192, tzinfo=UTC)
    assert abs(rec.epoch - want) <= ONE_US
    assert rec.epoch.tzinfo is not None and rec.epoch.utcoffset() == timedelta(0)


def test_two_digit_years_split_at_1957() -> None:
    l1_1957 = edit(ISS_L1, 19, "57")
    l1_2056 = edit(ISS_L1, 19, "56")
    e57 = parse_tle_text(f"{l1_1957}\n{ISS_L2}").records[0].epoch
    e56 = parse_tle_text(f"{l1_2056}\n{ISS_L2}").records[0].epoch
    assert e57.year == 1957 and e56.year == 2056


def test_crlf_trailing_blanks_blank_lines_and_0_prefix() -> None:
    text = (
        "\r\n"
        f"0 {ISS_NAME}   \r\n"
        f"{ISS_L1}   \r\n"
        f"{ISS_L2}\t\r\n"
        "\r\n\r\n"
        f"0 SECOND\r\n{ISS_L1}\r\n{ISS_L2}\r\n"
    )
    es = parse_tle_text(text)
    assert es.names == [ISS_NAME, "SECOND"]
    assert [r.line_no for r in es] == [3, 8]
    assert es[0].line1 == ISS_L1 and es[0].line2 == ISS_L2


def test_two_line_sets_without_names() -> None:
    other_l1 = edit(ISS_L1, 3, "00005")
    other_l2 = edit(ISS_L2, 3, "00005")
    es = parse_tle_text(f"{ISS_L1}\n{ISS_L2}\n{other_l1}\n{other_l2}\n")
    assert es.names == ["NORAD 25544", "NORAD 5"]
    assert es.norad_ids.tolist() == [25544, 5]
    assert es.line_nos.tolist() == [1, 3]


def test_mixed_2le_and_3le() -> None:
    es = parse_tle_text(f"{ISS_L1}\n{ISS_L2}\n{ISS_3LE}")
    assert es.names == ["NORAD 25544", ISS_NAME]


def test_alpha5_catalog_numbers() -> None:
    l1 = edit(ISS_L1, 3, "A0001")
    l2 = edit(ISS_L2, 3, "A0001")
    assert parse_tle_text(f"{l1}\n{l2}").records[0].norad_id == 100001
    l1 = edit(ISS_L1, 3, "Z9999")
    l2 = edit(ISS_L2, 3, "Z9999")
    assert parse_tle_text(f"{l1}\n{l2}").records[0].norad_id == 339999


def test_missing_checksum_column_is_accepted() -> None:
    # 68 characters: a source that left out column 69 (nothing to check there).
    rec = parse_tle_text(f"{ISS_L1[:68]}\n{ISS_L2[:68]}").records[0]
    assert rec.line1 == ISS_L1[:68]
    assert rec.norad_id == 25544


# ------------------------------------------------------------------------------------------
# Malformed TLE text: each problem, with its line number

_BAD_L1 = {
    "epoch year": (edit(ISS_L1, 19, "x8"), "epoch year"),
    "epoch day": (edit(ISS_L1, 21, "400"), "epoch day of year"),
    "epoch day not a number": (edit(ISS_L1, 21, "2x4"), "epoch day of year"),
    "ndot": (edit(ISS_L1, 36, "0x"), "first derivative"),
    "nddot": (edit(ISS_L1, 45, " 00000x0"), "second derivative"),
    "bstar": (edit(ISS_L1, 54, "-11606x4"), "BSTAR"),
    "catalog": (edit(ISS_L1, 3, "I0001"), "catalog number"),
    "shifted": (fix_checksum(ISS_L1[:17] + ISS_L1[18:68] + " 0"), "column"),
}
_BAD_L2 = {
    "inclination range": (edit(ISS_L2, 9, "190.0000"), "inclination"),
    "inclination inf": (edit(ISS_L2, 9, "inf.0000"), "inclination"),
    "raan": (edit(ISS_L2, 18, "24x.4627"), "right ascension"),
    "raan range": (edit(ISS_L2, 18, "361.0000"), "right ascension"),
    "eccentricity": (edit(ISS_L2, 27, "-006703"), "eccentricity"),
    "arg of perigee": (edit(ISS_L2, 35, "13o.5360"), "argument of perigee"),
    "mean anomaly": (edit(ISS_L2, 44, "3.5.0288"), "mean anomaly"),
    "mean motion zero": (edit(ISS_L2, 53, "00.00000000"), "mean motion"),
    "mean motion text": (edit(ISS_L2, 53, "15.7212539x"), "mean motion"),
    "catalogs differ": (edit(ISS_L2, 3, "25545"), "differs from 25544"),
}


@pytest.mark.parametrize("key", sorted(_BAD_L1))
def test_bad_line1_field(key: str) -> None:
    line, words = _BAD_L1[key]
    with pytest.raises(TLEFormatError, match=words) as info:
        parse_tle_text(f"GOOD\n{ISS_L1}\n{ISS_L2}\n\nBAD\n{line}\n{ISS_L2}\n", source="x.tle")
    assert (info.value.path, info.value.line) == ("x.tle", 6)
    assert str(info.value).startswith("x.tle:6: ")


@pytest.mark.parametrize("key", sorted(_BAD_L2))
def test_bad_line2_field(key: str) -> None:
    line, words = _BAD_L2[key]
    with pytest.raises(TLEFormatError, match=words) as info:
        parse_tle_text(f"GOOD\n{ISS_L1}\n{ISS_L2}\nBAD\n{ISS_L1}\n{line}\n")
    assert info.value.line == 6


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        # line 1 must start with '1 ', line 2 with '2 '
        (f"{ISS_NAME}\n3{ISS_L1[1:]}\n{ISS_L2}\n", 2, "must start with '1 '"),
        (f"{ISS_NAME}\n{ISS_L1}\n3{ISS_L2[1:]}\n", 3, "must start with '2 '"),
        (f"{ISS_NAME}\n{ISS_L1}\n{ISS_L2[0]}{ISS_L2[2:]}\n", 3, "must start with '2 '"),
        # truncated file: a line 1 and no line 2, or a name and nothing after it
        (f"{ISS_3LE}{ISS_NAME}\n{ISS_L1}\n", 5, "line 2 is missing"),
        (f"{ISS_3LE}\n{ISS_NAME}\n", 5, "missing"),
        (f"{ISS_L1}\n{ISS_3LE}", 1, "not followed by a line 2"),
        (f"{ISS_3LE}{ISS_L2}\n", 4, "no line 1"),
        # length: too short, too long
        (f"{ISS_NAME}\n{ISS_L1}\n{ISS_L2[:60]}\n", 3, "too short: 60 characters"),
        (f"{ISS_NAME}\n{ISS_L1[:67]}\n{ISS_L2}\n", 2, "too short: 67 characters"),
        (f"{ISS_NAME}\n{ISS_L1}7\n{ISS_L2}\n", 2, "too long: 70 characters"),
        # checksum, shown both ways
        (f"{ISS_NAME}\n{ISS_L1[:68]}8\n{ISS_L2}\n", 2, "expected 7, found 8"),
        (f"{ISS_NAME}\n{ISS_L1}\n{ISS_L2[:68]}x\n", 3, "must be a digit"),
        # other text between records
        (f"{ISS_3LE}# a comment\n{ISS_3LE}", 4, "unexpected text '# a comment'"),
    ],
)
def test_malformed_structure(text: str, line: int, words: str) -> None:
    with pytest.raises(TLEFormatError, match=words) as info:
        parse_tle_text(text)
    assert info.value.line == line


@given(
    sat_idx=st.integers(0, 40),
    which=st.sampled_from([0, 1]),
    data=st.data(),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_changed_digit_is_caught(sat_idx: int, which: int, data: st.DataObject) -> None:
    rec = load_starlink_snapshot()[sat_idx * 250]
    lines = [rec.line1, rec.line2]
    line = lines[which]
    assert line is not None
    # Any digit after the line number, checksum column included.
    col = data.draw(st.sampled_from([i for i in range(2, 69) if line[i].isdigit()]))
    new = data.draw(st.sampled_from([d for d in "0123456789" if d != line[col]]))
    lines[which] = line[:col] + new + line[col + 1 :]
    with pytest.raises(TLEFormatError, match="checksum") as info:
        parse_tle_text(f"{rec.name}\n{lines[0]}\n{lines[1]}\n")
    assert info.value.line == 2 + which


# ------------------------------------------------------------------------------------------
# skip_bad, empty input, files


def test_skip_bad_counts_every_skipped_record() -> None:
    bad_checksum = f"{ISS_L1[:68]}0"
    text = (
        f"{ISS_3LE}"  # lines 1-3
        f"BAD ONE\n{bad_checksum}\n{ISS_L2}\n"  # lines 4-6
        f"{ISS_3LE}"  # lines 7-9
        "stray text\n"  # line 10
        f"{ISS_3LE}"  # lines 11-13
        f"{ISS_L2}\n"  # line 14: orphan line 2
    )
    with pytest.raises(TLEFormatError) as info:
        parse_tle_text(text)
    assert info.value.line == 5
    es = parse_tle_text(text, skip_bad=True)
    assert len(es) == 3
    assert es.line_nos.tolist() == [2, 8, 12]
    assert [e.line for e in es.skipped] == [5, 10, 14]
    assert "checksum" in es.skipped[0].reason


def test_skip_bad_with_nothing_valid_still_raises() -> None:
    text = f"A\n{ISS_L1[:68]}0\n{ISS_L2}\nB\n{ISS_L1}\n{ISS_L2[:50]}\n"
    with pytest.raises(TLEFormatError, match="all 2 record") as info:
        parse_tle_text(text, skip_bad=True)
    assert info.value.line == 2


@pytest.mark.parametrize("text", ["", "\n\n  \n", "\ufeff"])
def test_empty_text_is_an_error(text: str) -> None:
    with pytest.raises(TLEFormatError, match="no element set found"):
        parse_tle_text(text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StarmeshError, match=r"TLE file '.*nope\.tle' not found: check the path"):
        load_elements(tmp_path / "nope.tle")
    with pytest.raises(StarmeshError, match="is a directory"):
        load_elements(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.tle"
    path.write_text("")
    with pytest.raises(TLEFormatError, match="empty") as info:
        load_elements(path)
    assert info.value.path == str(path)


def test_load_tle_file(tmp_path: Path) -> None:
    path = tmp_path / "iss.txt"
    path.write_bytes(("\ufeff" + ISS_3LE.replace("\n", "\r\n")).encode())
    es = load_elements(str(path))
    assert es.source == str(path) and es.names == [ISS_NAME]


def test_load_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.tle"
    path.write_text(f"{ISS_3LE}{ISS_NAME}\n{ISS_L1}\n")
    with pytest.raises(TLEFormatError) as info:
        load_elements(path)
    assert str(info.value).startswith(f"{path}:5: ")
    assert len(load_elements(path, skip_bad=True).skipped) == 1


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.tle"
    path.write_bytes(ISS_3LE.encode() + b"\xff\xfe\n")
    with pytest.raises(TLEFormatError, match="not UTF-8") as info:
        load_elements(path)
    assert info.value.line == 4


def test_module_does_not_import_sgp4() -> None:
    tree = ast.parse(Path(elements.__file__).read_text())
    imported = {
        alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names
    }
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(name.split(".")[0] == "sgp4" for name in imported)


# ------------------------------------------------------------------------------------------
# OMM: a small writer of CelesTrak-style OMM from TLE lines, then read back


def _exp_field(field: str) -> float:
    return float(field[0].strip() + "0." + field[1:6]) * 10.0 ** int(field[6:8])


def omm_from_tle(name: str, l1: str, l2: str) -> dict[str, str | int | float]:
    """The OMM fields CelesTrak publishes for a TLE, read straight from the TLE columns."""
    yy, day = int(l1[18:20]), float(l1[20:32])
    year = 1900 + yy if yy >= 57 else 2000 + yy
    epoch = datetime(year, 1, 1) + timedelta(days=day - 1.0)
    launch_yy = int(l1[9:11])
    launch_year = 1900 + launch_yy if launch_yy >= 57 else 2000 + launch_yy
    return {
        "OBJECT_NAME": name,
        "OBJECT_ID": f"{launch_year}-{l1[11:17].strip()}",
        "EPOCH": epoch.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "MEAN_MOTION": float(l2[52:63]),
        "ECCENTRICITY": float("0." + l2[26:33]),
        "INCLINATION": float(l2[8:16]),
        "RA_OF_ASC_NODE": float(l2[17:25]),
        "ARG_OF_PERICENTER": float(l2[34:42]),
        "MEAN_ANOMALY": float(l2[43:51]),
        "EPHEMERIS_TYPE": int(l1[62]),
        "CLASSIFICATION_TYPE": l1[7],
        "NORAD_CAT_ID": int(l1[2:7]),
        "ELEMENT_SET_NO": int(l1[64:68]),
        "REV_AT_EPOCH": int(l2[63:68]),
        "BSTAR": _exp_field(l1[53:61]),
        "MEAN_MOTION_DOT": float(l1[33:43]),
        "MEAN_MOTION_DDOT": _exp_field(l1[44:52]),
    }


_META = ("OBJECT_NAME", "OBJECT_ID")
_MEAN = (
    "EPOCH",
    "MEAN_MOTION",
    "ECCENTRICITY",
    "INCLINATION",
    "RA_OF_ASC_NODE",
    "ARG_OF_PERICENTER",
    "MEAN_ANOMALY",
)
_TLE_PARAMS = (
    "EPHEMERIS_TYPE",
    "CLASSIFICATION_TYPE",
    "NORAD_CAT_ID",
    "ELEMENT_SET_NO",
    "REV_AT_EPOCH",
    "BSTAR",
    "MEAN_MOTION_DOT",
    "MEAN_MOTION_DDOT",
)


def write_omm(rows: list[dict[str, str | int | float]], fmt: str, *, xmlns: str = "") -> str:
    if fmt == "json":
        return json.dumps(rows, indent=1)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(_META + _MEAN + _TLE_PARAMS))
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()

    def block(tag: str, row: dict[str, str | int | float], keys: tuple[str, ...]) -> str:
        inner = "".join(f"<{k}>{escape(str(row[k]))}</{k}>" for k in keys)
        return f"<{tag}>{inner}</{tag}>"

    omms = "".join(
        '<omm id="CCSDS_OMM_VERS" version="2.0"><header><CREATION_DATE/><ORIGINATOR/></header>'
        "<body><segment>"
        + block("metadata", row, _META).replace(
            "</metadata>",
            "<CENTER_NAME>EARTH</CENTER_NAME><REF_FRAME>TEME</REF_FRAME>"
            "<TIME_SYSTEM>UTC</TIME_SYSTEM><MEAN_ELEMENT_THEORY>SGP4</MEAN_ELEMENT_THEORY>"
            "</metadata>",
        )
        + "<data>"
        + block("meanElements", row, _MEAN)
        + block("tleParameters", row, _TLE_PARAMS)
        + "</data></segment></body></omm>\n"
        for row in rows
    )
    ns = f' xmlns="{xmlns}"' if xmlns else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ndm{ns} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n{omms}</ndm>\n'
    )


def _some_tles() -> list[tuple[str, str, str]]:
    snap = load_starlink_snapshot()
    picks = [snap[0], snap[4000], snap[9000], snap[len(snap) - 1]]
    out = [(ISS_NAME, ISS_L1, ISS_L2)]
    for r in picks:
        assert r.line1 is not None and r.line2 is not None
        out.append((r.name, r.line1, r.line2))
    return out


@pytest.mark.parametrize(
    ("fmt", "xmlns"), [("json", ""), ("csv", ""), ("xml", ""), ("xml", "urn:ccsds:schema:ndmxml")]
)
def test_omm_round_trip(fmt: str, xmlns: str, tmp_path: Path) -> None:
    tles = _some_tles()
    from_tle = parse_tle_text("".join(f"{n}\n{a}\n{b}\n" for n, a, b in tles))
    rows = [omm_from_tle(*t) for t in tles]
    text = write_omm(rows, fmt, xmlns=xmlns)
    from_omm = parse_omm_text(text, fmt=fmt)  # type: ignore[arg-type]
    path = tmp_path / "elements.dat"  # the format is told from the content, not the name
    path.write_text(text)
    from_file = load_elements(path)
    assert from_file.records == from_omm.records
    assert len(from_omm) == len(tles) and from_omm.skipped == ()
    for rec_no, (tle, omm, row) in enumerate(zip(from_tle, from_omm, rows, strict=True), 1):
        assert omm.line1 is None and omm.line2 is None and not omm.is_tle
        assert omm.omm is not None
        assert omm.line_no == rec_no
        assert omm.name == tle.name
        assert omm.norad_id == tle.norad_id
        assert omm.inclination_deg == tle.inclination_deg
        assert omm.mean_motion_rev_day == tle.mean_motion_rev_day
        assert abs(omm.epoch - tle.epoch) <= ONE_US
        assert set(OMM_REQUIRED_FIELDS) <= set(omm.omm)
        assert all(isinstance(v, str) for v in omm.omm.values())
        assert omm.omm["EPOCH"] == row["EPOCH"]  # kept as written, for sgp4.omm.initialize
        for key in ("ECCENTRICITY", "BSTAR", "MEAN_MOTION_DOT", "RA_OF_ASC_NODE"):
            assert float(omm.omm[key]) == row[key]
        assert omm.omm["CLASSIFICATION_TYPE"] == row["CLASSIFICATION_TYPE"]


def _iss_omm() -> dict[str, str | int | float]:
    return omm_from_tle(ISS_NAME, ISS_L1, ISS_L2)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"EPOCH": None}, "lacks the required field"),
        ({"MEAN_MOTION": ""}, "MEAN_MOTION"),
        ({"MEAN_MOTION": 0}, "MEAN_MOTION must be a number > 0"),
        ({"ECCENTRICITY": 1.0}, r"ECCENTRICITY must be a number in \[0, 1\)"),
        ({"INCLINATION": "fifty"}, "INCLINATION"),
        ({"INCLINATION": 181}, "INCLINATION"),
        ({"BSTAR": "1e-4x"}, "BSTAR"),
        ({"NORAD_CAT_ID": "-5"}, "NORAD_CAT_ID"),
        ({"REV_AT_EPOCH": 1.5}, "REV_AT_EPOCH must be an integer"),
        ({"EPOCH": "2008-13-20T12:25:40.104192"}, "EPOCH must be"),
        ({"EPOCH": "yesterday"}, "EPOCH must be"),
    ],
)
def test_omm_bad_record(change: dict[str, object], words: str) -> None:
    bad = _iss_omm()
    for key, value in change.items():
        if value is None:
            del bad[key]
        else:
            bad[key] = value  # type: ignore[assignment]
    text = json.dumps([_iss_omm(), bad, _iss_omm()])
    with pytest.raises(TLEFormatError, match=words) as info:
        parse_omm_text(text, fmt="json", source="gp.json")
    assert info.value.line == 2
    assert "OMM record 2 (ISS (ZARYA))" in info.value.reason
    es = parse_omm_text(text, fmt="json", skip_bad=True)
    assert es.line_nos.tolist() == [1, 3]
    assert [e.line for e in es.skipped] == [2]


@pytest.mark.parametrize(
    ("epoch", "want_text"),
    [
        ("2008-09-20T12:25:40.104192", "2008-09-20T12:25:40.104192"),
        ("2008-09-20T12:25:40.1", "2008-09-20T12:25:40.1"),
        ("2008-09-20T12:25:40Z", "2008-09-20T12:25:40.000000"),
        ("2008-09-20T14:25:40.104192+02:00", "2008-09-20T12:25:40.104192"),
        ("2008-264T12:25:40.104192Z", "2008-09-20T12:25:40.104192"),
    ],
)
def test_omm_epoch_spellings(epoch: str, want_text: str) -> None:
    row = _iss_omm() | {"EPOCH": epoch}
    rec = parse_omm_text(json.dumps([row]), fmt="json")[0]
    assert rec.omm is not None and rec.omm["EPOCH"] == want_text
    want = datetime.strptime(want_text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    assert rec.epoch == want


def test_omm_without_name_and_single_object() -> None:
    row = _iss_omm()
    del row["OBJECT_NAME"]
    es = parse_omm_text(json.dumps(row), fmt="json")
    assert es.names == ["NORAD 25544"]


@pytest.mark.parametrize(
    ("fmt", "text", "line", "words"),
    [
        ("json", '[{"a": 1},\n  oops]', 2, "not valid JSON"),
        ("json", '"just a string"', 1, "must be a list of objects"),
        ("json", "[]", 1, "no element set found"),
        ("json", "[1]", 1, "not an object"),
        ("csv", "OBJECT_NAME,EPOCH\nX,2008-09-20T12:25:40.1\n", 1, "lacks the column"),
        ("xml", "<ndm><omm>\n<body></omm></ndm>", 2, "not well-formed XML"),
        ("xml", "<ndm/>", 1, "no <segment>"),
    ],
)
def test_omm_bad_text(fmt: str, text: str, line: int, words: str) -> None:
    with pytest.raises(TLEFormatError, match=words) as info:
        parse_omm_text(text, fmt=fmt, skip_bad=True)  # type: ignore[arg-type]
    assert info.value.line == line


def test_omm_csv_row_with_extra_value() -> None:
    text = write_omm([_iss_omm(), _iss_omm()], "csv")
    lines = text.splitlines()
    lines[2] += ",surplus"
    with pytest.raises(TLEFormatError, match="more value") as info:
        parse_omm_text("\n".join(lines), fmt="csv")
    assert info.value.line == 2


def test_omm_unknown_format() -> None:
    with pytest.raises(ValueError, match="fmt must be"):
        parse_omm_text("[]", fmt="kvn")  # type: ignore[arg-type]


def test_records_are_frozen() -> None:
    rec = parse_tle_text(ISS_3LE)[0]
    assert isinstance(rec, ElementRecord)
    with pytest.raises(AttributeError):
        rec.name = "other"  # type: ignore[misc]
