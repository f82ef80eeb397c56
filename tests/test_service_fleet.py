"""Satellite generations from international designators (``starmesh.service.fleet``).

References nobody here wrote: sgp4's own TLE reader (the designator columns), CelesTrak's SATCAT
(launch numbers and dates), Starlink's satellite numbering (v2 mini from STARLINK-30000 on),
the shells the generations were launched to, and published constellation counts (der-orion.com
quoting satellite trackers, February 2025; SpaceX's semi-annual FCC reports and J. McDowell's
counts as quoted by PCMag). Sources and their uncertainty: ``data/PROVENANCE.md``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from starmesh.elements import load_starlink_snapshot
from starmesh.errors import ScenarioError
from starmesh.service.fleet import (
    DIRECT_TO_CELL,
    UNKNOWN,
    first_launch_on_or_after,
    fleet_mix,
    generation_capacity_bps,
    launch_key,
    launched_before,
    load_generation_table,
    parse_designator,
    satellite_generations,
)


@pytest.fixture(scope="module")
def snap():
    return load_starlink_snapshot()


@pytest.fixture(scope="module")
def gens(snap):
    return satellite_generations(snap.names, snap.intl_designators)


def _keys(snap) -> np.ndarray:
    out = []
    for d in snap.intl_designators:
        p = parse_designator(d)
        assert p is not None
        out.append(launch_key(p[0], p[1]))
    return np.array(out)


def test_designator_is_sgp4s_intldesg(snap) -> None:
    """The designator kept in the parsed elements is what sgp4's own TLE reader reads from
    columns 10-17 of line 1, for every record of the snapshot."""
    from sgp4.api import Satrec

    for r in snap.records[::7]:
        assert r.line1 is not None and r.line2 is not None
        assert r.intl_designator == Satrec.twoline2rv(r.line1, r.line2).intldesg


def test_parse_designator_forms() -> None:
    # CelesTrak SATCAT / TLE examples: Starlink-1's piece B, the last Q1 2025 Starlink launch.
    assert parse_designator("19074B") == (2019, 74, "B")
    assert parse_designator("2019-074B") == (2019, 74, "B")
    assert parse_designator("25065AD") == parse_designator("2025-065AD") == (2025, 65, "AD")
    # Two-digit years 57-99 are the 1900s (Sputnik 1 is 1957-001B).
    assert parse_designator("57001B") == (1957, 1, "B")
    assert parse_designator("56001A") == (2056, 1, "A")
    # Hypatia's synthetic TLEs and garbage give no launch.
    for bad in ("00000ABC", "", "2019-74B", "1907B", "ABCDEFG"):
        assert parse_designator(bad) is None


def test_table_is_disjoint_and_complete_for_the_snapshot(snap, gens) -> None:
    rules = load_generation_table()
    assert all(a.last < b.first for a, b in itertools.pairwise(rules))
    # Every broadband Starlink of the snapshot has a generation; only the [DTC] are apart.
    mix = fleet_mix(gens)
    assert UNKNOWN not in mix
    assert mix[DIRECT_TO_CELL] == sum("[DTC]" in n for n in snap.names) == 644
    assert sum(mix.values()) == len(snap) == 10_361


def _numbering_agrees(snap, gens) -> bool:
    num = np.array([int(re.match(r"STARLINK-(\d+)", n).group(1)) for n in snap.names])
    bb = gens != DIRECT_TO_CELL
    return bool(np.array_equal(gens[bb] == "v2-mini", num[bb] >= 30_000))


def _group_2_in_snapshot(snap, gens) -> int:
    return int(np.sum((gens == "v1.5") & (np.abs(snap.inclination_deg - 70.0) < 0.5)))


def _group_2_agrees(n: int) -> bool:
    return 0.85 * 396 <= n <= 396


def test_v2_mini_is_exactly_starlinks_30000_numbering(snap, gens) -> None:
    """SpaceX numbers v2 mini satellites from STARLINK-30000 on (the first v2 mini launch,
    2023-026, carried STARLINK-30037 to 30065: CelesTrak SATCAT; McDowell quoted on
    STARLINK-30062 of that launch, 2023-04): the launch table, built from launch history,
    agrees with the numbering for every broadband satellite of the snapshot."""
    assert _numbering_agrees(snap, gens)


def test_v1_0_satellites_are_in_the_first_53_deg_shell(snap, gens) -> None:
    """v1.0 (2019-2021) filled Gen1's first shell, 72 x 22 at 53.0 deg (FCC 21-48); v1.5 went
    to 53.2, 70 and 97.6 deg (and 43 deg in 2023): no v1.0 satellite is off 53.0 +- 0.2 deg,
    and v1.5 fills the 70 and 97.6 deg shells alone."""
    inc = snap.inclination_deg
    assert np.all(np.abs(inc[gens == "v1.0"] - 53.05) < 0.2)
    for shell in (70.0, 97.6):
        near = np.abs(inc - shell) < 0.5
        assert set(gens[near]) <= {"v1.5", "v2-mini"}
        assert np.sum(gens[near] == "v1.5") > 150


def test_v1_5_count_of_group_2_against_the_published_count(snap, gens) -> None:
    """Group 2 (70 deg, v1.5, launched September 2021 - May 2023): 408 launched, 12 no longer
    in orbit on 2025-02-23 (der-orion.com, 2025-02-23), i.e. 396 in orbit then. The snapshot
    (May 2026) can hold at most those, and at least 85 % of them: the re-entries after February
    2025 were mostly of the older v1.0 (SpaceX's FCC reports: 430 of 472 deorbits Dec 2024 -
    May 2025 and 167 of 218 Jun - Nov 2025 were first-generation satellites, v1.0 and v1.5
    together), and this group lost 12 in its first 1.5-3.5 years."""
    assert _group_2_agrees(_group_2_in_snapshot(snap, gens))


def test_planted_generation_swap_is_caught(snap) -> None:
    """Calling one block of 2023 v1.5 launches (2023-068 to 078, with 2023-078's 45 satellites
    at 70 deg) v2 mini breaks both the numbering check and the Group 2 count."""
    rules = list(load_generation_table())
    i = next(k for k, r in enumerate(rules) if r.first == launch_key(2023, 68))
    assert rules[i].generation == "v1.5"
    rules[i] = replace(rules[i], generation="v2-mini")
    bad = satellite_generations(snap.names, snap.intl_designators, rules)
    assert not _numbering_agrees(snap, bad)
    assert not _group_2_agrees(_group_2_in_snapshot(snap, bad))


def test_launches_before_a_date_against_the_published_count_in_orbit(snap) -> None:
    """On 2025-02-23, after Group 15-1 (2025-037, 22 satellites at 70 deg: the snapshot's
    2025-037 is that launch), 7,078 Starlinks were in orbit (der-orion.com, 2025-02-23). The
    snapshot holds those still in orbit in May 2026; the difference is the re-entries of the
    443 days between: at SpaceX's reported rates (472 deorbits Dec 2024 - May 2025, 2.6 a day;
    218 Jun - Nov 2025, 1.2 a day, continued to May 2026) about 665, and 574 between McDowell's
    counts of January 2025 and January 2026 (817 and 1,391 re-entered). Tolerance +-30 %: the
    rates are six-month averages and the last five months are extrapolated."""
    keys = _keys(snap)
    assert np.sum(keys == launch_key(2025, 37)) == 22
    assert np.allclose(snap.inclination_deg[keys == launch_key(2025, 37)], 70.0, atol=0.1)
    in_snapshot = int(np.sum(keys <= launch_key(2025, 37)))
    reentered = 7_078 - in_snapshot
    assert 0.7 * 665 <= reentered <= 1.3 * 665


def test_launched_before_a_sourced_date(snap) -> None:
    """2025-065 launched on 2025-03-31 and 2025-066 on 2025-04-01 (CelesTrak SATCAT): the Q1
    2025 satellites are those of launches up to 2025-065."""
    keys = _keys(snap)
    q1 = launched_before(snap.intl_designators, date(2025, 4, 1))
    assert np.array_equal(q1, keys <= launch_key(2025, 65))
    assert np.sum(keys == launch_key(2025, 65)) == 28  # Group 6-80's 28 v2 mini (der-orion)
    assert np.array_equal(
        launched_before(snap.intl_designators, date(2025, 1, 1)), keys < launch_key(2025, 1)
    )
    assert first_launch_on_or_after(date(2024, 1, 1)) == launch_key(2024, 1)
    with pytest.raises(ScenarioError, match=r"launched_before.*2025-03-15.*1 January"):
        first_launch_on_or_after(date(2025, 3, 15))
    with pytest.raises(ScenarioError, match="00000ABC"):
        launched_before(["19074B", "00000ABC"], date(2025, 4, 1))


def test_generation_of_names_that_are_not_starlink() -> None:
    names = ["ONEWEB-0012", "NORAD 44714", "STARLINK-1008", "STARLINK-11072 [DTC]", "STARLINK-9"]
    desig = ["19010A", "19074B", "19074B", "24002A", "00000ABC"]
    g = satellite_generations(names, desig)
    assert g.tolist() == [UNKNOWN, "v1.0", "v1.0", DIRECT_TO_CELL, UNKNOWN]
    cap = generation_capacity_bps(g, 58e9)
    assert cap.tolist() == [58e9, 20e9, 20e9, 0.0, 58e9]
    assert fleet_mix(g) == {"v1.0": 2, DIRECT_TO_CELL: 1, UNKNOWN: 2}


# --- Scenario settings: generations, single capacities, the Q1-2025 fleet, bad input ---------


def _walker(**service: object) -> dict:
    return {
        "name": "w",
        "time": {"start_utc": "2026-05-13T01:00:00Z", "duration_s": 2.0},
        "constellation": {"preset": "starlink-550"},
        "ground": {
            "terminals": [{"name": "KS", "lat_deg": 39.5, "lon_deg": -98.5}],
            "pops": ["Dallas"],
        },
        "routing": {"modes": ["isl"]},
        "service": {"pop_policy": "nearest", **service},
    }


def test_scenario_level_capacity_for_walker_shells_and_overrides() -> None:
    import starmesh
    from starmesh.plan import build_plan
    from starmesh.scenario import Scenario

    def plan(**service: object):
        return build_plan(Scenario.model_validate(_walker(**service))).service

    mix = plan()  # Walker shells have no designators: the v1.5 / v2-mini mean, as before
    assert np.all(mix.sat_capacity_bps == 58e9) and mix.fleet == {"mix (v1.5/v2-mini mean)": 1584}
    v2 = plan(sat_generation="v2-mini")
    assert np.all(v2.sat_capacity_bps == 96e9) and v2.fleet == {"v2-mini": 1584}
    one = plan(sat_generation="v1.0", sat_capacity_gbps=30.0)  # one capacity wins
    assert np.all(one.sat_capacity_bps == 30e9)
    res = starmesh.run(_walker(sat_generation="v1.5"))
    sv = res.summary.extra["service"]
    assert sv["fleet"] == {"v1.5": 1584} and "v1.5" in sv["satellite_capacity"]
    assert sv["cell_partition"] == "capacity"


def test_q1_2025_fleet_of_the_real_preset() -> None:
    """launched_before through the operational filter: the snapshot's 3,782 objects of launches
    from 2025-066 on are dropped first (reported), the rest filtered as usual."""
    from starmesh.plan import build_plan
    from starmesh.scenario import Scenario

    data = _walker(subscribers_per_km2=0.2475, subscriber_region=["USA"])
    data["constellation"] = {"preset": "starlink-2026", "filter": {"launched_before": "2025-04-01"}}
    p = build_plan(Scenario.model_validate(data))
    rep = p.constellation_filter
    assert rep is not None and rep.counts["launched_after"] == 10_361 - 6_579
    assert p.constellation.n_sats == 5_435
    assert p.service is not None
    assert p.service.fleet == {"v1.0": 391, "v1.5": 2473, "v2-mini": 2571}
    assert p.service.subscriber_cells is not None
    assert any("satellite generations" in n for n in p.notes)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {
                "constellation": {
                    "preset": "starlink-550",
                    "filter": {"launched_before": "2025-04-01"},
                }
            },
            "launched_before.*real constellation",
        ),
        (
            {
                "constellation": {
                    "preset": "starlink-2026",
                    "filter": {"launched_before": "2025-03-02"},
                }
            },
            "no sourced launch number for 2025-03-02",
        ),
        ({"service": {"subscriber_region": ["USA"]}}, "subscriber_region needs subscribers"),
        ({"service": {"sat_generation": "v3"}}, "sat_generation"),
        ({"service": {"cell_partition": "even"}}, "cell_partition"),
    ],
)
def test_bad_fleet_settings_name_the_field(change: dict, match: str) -> None:
    from pydantic import ValidationError

    from starmesh.scenario import Scenario

    data = _walker()
    data.update(change)
    with pytest.raises((ValidationError, ScenarioError), match=match):
        Scenario.model_validate(data)


def test_unknown_subscriber_country_names_the_field() -> None:
    from starmesh.plan import build_plan
    from starmesh.scenario import Scenario

    sc = Scenario.model_validate(
        _walker(subscribers_per_km2=0.25, subscriber_region=["United States of Amerika"])
    )
    with pytest.raises(ScenarioError, match=r"service\.subscriber_region.*did you mean"):
        build_plan(sc)
