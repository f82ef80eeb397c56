"""Tests of starmesh.realset: the operational filter, shell/plane/slot inference and the +Grid
ISLs of real constellations.

References used here, none of them computed by the code under test:
- Walker shells written out as TLEs with python-sgp4's own initialiser and exporter (half of the
  planes a day later, carried there by SGP4's own secular rates): inference must recover the
  shells' P, N and F exactly, and the lattice +Grid must equal ``plus_grid_edges`` of the
  Walker description; the nearest +Grid must equal the closed-form first-order pairing.
- The snapshot's TLE text read column by column (names, mean motion, ndot) with Kepler's third
  law, for the filter's counts.
- SpaceX's shells as filed with and authorised by the FCC and as announced for 2026, for the
  inferred shells (sources in starmesh/data/PROVENANCE.md).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sgp4 import exporter
from sgp4.api import WGS72, Satrec

from starmesh.constellation import Constellation, WalkerShell, preset_shells
from starmesh.elements import load_starlink_snapshot, parse_tle_text
from starmesh.errors import ScenarioError
from starmesh.propagation import Propagator
from starmesh.realset import (
    SHELL_TABLE_COLUMNS,
    OperationalCriteria,
    PlusGridIsl,
    _argsort_with_hint,
    filter_operational,
    infer_shells,
    starlink_2026,
)
from starmesh.topology import isl_lengths_m, plus_grid_edges

E0 = datetime(2026, 5, 12, 12, 0, tzinfo=UTC)
MU_WGS72_KM3_S2 = 398600.8


def _sgp4_epoch(t: datetime) -> float:
    """Days since 1949-12-31 00:00 UTC, sgp4init's epoch."""
    return (t - datetime(1949, 12, 31, tzinfo=UTC)).total_seconds() / 86400.0


def walker_tles(shells: list[WalkerShell], *, late_odd_planes: bool = True) -> str:
    """3LE text of Walker shells; odd planes get epoch E0 + 1 day, carried by SGP4's rates."""
    lines = []
    num = 0
    for shell in shells:
        raan, u = shell.angles_rad()
        plane, slot = shell.plane_slot()
        a_km = shell.semi_major_axis_m / 1e3
        n_rad_min = math.sqrt(MU_WGS72_KM3_S2 / a_km**3) * 60.0
        inc = math.radians(shell.inclination_deg)
        for k in range(shell.n_sats):
            num += 1
            sat = Satrec()
            args = (0.0, 0.0, 0.0, 1e-7)
            sat.sgp4init(
                WGS72, "i", num, _sgp4_epoch(E0), *args, 0.0, inc, u[k], n_rad_min, raan[k]
            )
            if late_odd_planes and plane[k] % 2 == 1:
                d = 1440.0  # minutes in a day
                argp = (sat.argpdot * d) % (2 * math.pi)
                mo = (u[k] + sat.mdot * d) % (2 * math.pi)
                node = (raan[k] + sat.nodedot * d) % (2 * math.pi)
                e1 = _sgp4_epoch(E0 + timedelta(days=1))
                sat = Satrec()
                sat.sgp4init(WGS72, "i", num, e1, *args, argp, inc, mo, n_rad_min, node)
            l1, l2 = exporter.export_tle(sat)
            lines += [f"{shell.name} P{plane[k]} S{slot[k]}", l1, l2]
    return "\n".join(lines) + "\n"


GEN1 = {s.name: s for s in preset_shells("starlink-gen1")}
WALKER_SHELLS = [GEN1["540km-53.2deg"], GEN1["550km-53deg"], GEN1["570km-70deg"]]


@pytest.fixture(scope="module")
def walker_set():
    return parse_tle_text(walker_tles(WALKER_SHELLS), source="<walker>")


@pytest.fixture(scope="module")
def walker_inference(walker_set):
    return infer_shells(walker_set)


def test_walker_shells_recovered_exactly(walker_set, walker_inference):
    inf = walker_inference
    assert inf.epoch == E0 + timedelta(days=1)
    assert inf.n_unassigned == 0
    got = sorted((s.n_sats, s.lattice_planes, s.sats_per_plane, s.phasing) for s in inf.shells)
    want = sorted((s.n_sats, s.n_planes, s.sats_per_plane, s.phasing) for s in WALKER_SHELLS)
    assert got == want
    for s in inf.shells:
        assert s.n_planes == s.lattice_planes
        assert s.fill == 1.0
        assert s.phasing_agreement == 1.0
    # Planes: the true (shell, plane) partition, whatever the numbering.
    offset = 0
    true_plane = []
    for shell in WALKER_SHELLS:
        true_plane.append(offset + shell.plane_slot()[0])
        offset += shell.n_planes
    tp = np.concatenate(true_plane)
    pairs = set(zip(tp.tolist(), inf.plane_id.tolist(), strict=True))
    assert len(pairs) == len(set(tp.tolist())) == len(set(inf.plane_id.tolist()))
    # Slots: a bijection onto each shell's P x N lattice.
    for k, s in enumerate(inf.shells):
        m = inf.shell_idx == k
        cells = set(zip(inf.plane_idx[m].tolist(), inf.slot_idx[m].tolist(), strict=True))
        assert len(cells) == s.lattice_planes * s.sats_per_plane


def test_lattice_plus_grid_equals_walker_plus_grid(walker_set, walker_inference):
    walker = Constellation.from_shells("w", WALKER_SHELLS, epoch=E0)
    want = plus_grid_edges(walker)
    rc = Constellation.from_elements("w", walker_set)
    prop = Propagator(rc, E0)
    t = np.array([0.0, 1800.0, 3600.0])
    r, ok = prop.positions_ecef_m(t)
    isl = PlusGridIsl(walker_inference, 6000e3, cross_plane="lattice")
    edges, up = isl.links(r, ok, t, epoch=E0)
    assert up.all()
    np.testing.assert_array_equal(edges, want)


def _nearest_reference(shells: list[WalkerShell]) -> np.ndarray:
    """First-order nearest +Grid: satellite (p, j) pairs with (p + 1, j + k), where k minimises
    the along-track offset ``|F s / P + k s + dRAAN cos i|`` (s: slot angle); the seam (last
    plane to plane 0) adds Walker's F-slot shift. In-plane links as in Walker +Grid."""
    out = []
    off = 0
    for sh in shells:
        p_n, n = sh.n_planes, sh.sats_per_plane
        s = 2 * math.pi / n
        d_raan = 2 * math.pi / p_n
        base = sh.phasing * s / p_n + d_raan * math.cos(math.radians(sh.inclination_deg))
        ks = np.arange(-n, n + 1)
        k = int(ks[np.argmin(np.abs(base + ks * s))])
        p, j = np.divmod(np.arange(sh.n_sats), n)
        me = off + p * n + j
        out.append(np.stack([me, off + p * n + (j + 1) % n], 1))
        inner = p < p_n - 1
        out.append(np.stack([me[inner], off + (p[inner] + 1) * n + (j[inner] + k) % n], 1))
        last = p == p_n - 1
        out.append(np.stack([me[last], off + (j[last] + k + sh.phasing) % n], 1))
        off += sh.n_sats
    e = np.sort(np.concatenate(out), axis=1)
    return np.unique(e, axis=0).astype(np.int32)


def test_nearest_plus_grid_equals_first_order_pairing(walker_set, walker_inference):
    rc = Constellation.from_elements("w", walker_set)
    t = np.arange(0.0, 3601.0, 600.0)
    r, ok = Propagator(rc, E0).positions_ecef_m(t)
    edges, up = PlusGridIsl(walker_inference, 6000e3).links(r, ok, t, epoch=E0)
    assert up.all()
    np.testing.assert_array_equal(edges, _nearest_reference(WALKER_SHELLS))
    # For the 53 deg shells the nearest partner is not Walker's same slot: the two differ.
    walker = plus_grid_edges(Constellation.from_shells("w", WALKER_SHELLS, epoch=E0))
    assert not np.array_equal(edges, walker)


def test_missing_slots_bridged_and_no_cross_shell_links(walker_set):
    rng = np.random.default_rng(12)
    keep = np.sort(rng.choice(len(walker_set), size=int(0.9 * len(walker_set)), replace=False))
    sub = walker_set.select(keep)
    inf = infer_shells(sub)
    got = sorted((s.lattice_planes, s.sats_per_plane, s.phasing) for s in inf.shells)
    assert got == sorted((s.n_planes, s.sats_per_plane, s.phasing) for s in WALKER_SHELLS)
    rc = Constellation.from_elements("w", sub)
    t = np.array([0.0, 900.0])
    r, ok = Propagator(rc, E0).positions_ecef_m(t)
    edges, up = PlusGridIsl(inf, 6000e3, cross_plane="lattice").links(r, ok, t, epoch=E0)
    # Never across shells; at most 4 links per satellite at any step.
    assert (inf.shell_idx[edges[:, 0]] == inf.shell_idx[edges[:, 1]]).all()
    for k in range(t.size):
        assert np.bincount(edges[up[k]].ravel()).max() <= 4
    # Every surviving satellite has its two in-plane links (gaps are bridged).
    same_plane = inf.plane_id[edges[:, 0]] == inf.plane_id[edges[:, 1]]
    deg_in_plane = np.bincount(edges[same_plane].ravel(), minlength=len(sub))
    assert (deg_in_plane == 2).all()
    # ... and a bridge is out of use exactly when it is longer than the range.
    length = isl_lengths_m(r, edges)
    np.testing.assert_array_equal(up, length <= 6000e3)
    # The lengths measured with the pairing are the links' lengths.
    e2, up2, length2 = PlusGridIsl(inf, 6000e3, cross_plane="lattice").links_and_lengths(
        r, ok, t, epoch=E0
    )
    np.testing.assert_array_equal(e2, edges)
    np.testing.assert_array_equal(up2, up)
    np.testing.assert_allclose(
        length2, np.linalg.norm(r[:, edges[:, 0]] - r[:, edges[:, 1]], axis=-1), rtol=1e-14
    )
    np.testing.assert_array_equal(length2, length)  # the very values of isl_lengths_m
    assert (~up[0] & same_plane).sum() > 0  # this draw has gaps of 3+ slots (> 6,000 km)
    # Walker links between surviving satellites are all kept.
    walker = plus_grid_edges(Constellation.from_shells("w", WALKER_SHELLS, epoch=E0))
    new_of_old = np.full(len(walker_set), -1)
    new_of_old[keep] = np.arange(keep.size)
    w = new_of_old[walker]
    w = np.sort(w[(w >= 0).all(1)], axis=1)
    have = {tuple(x) for x in edges[up[0]].tolist()}
    assert all(tuple(x) in have for x in w.tolist())


def test_nearest_plus_grid_matches_brute_force_mutual_nearest():
    """Across planes, the links are the mutual nearest pairs of adjacent planes, found here by
    a dense distance matrix per plane pair at each step; includes a 6-plane polar shell where
    the node offset is larger than a slot."""
    shells = [GEN1["550km-53deg"], GEN1["560km-97.6deg-a"]]
    ws = parse_tle_text(walker_tles(shells), source="<walker>")
    inf = infer_shells(ws)
    t = np.arange(0.0, 5401.0, 900.0)
    r, ok = Propagator(Constellation.from_elements("w", ws), E0).positions_ecef_m(t)
    edges, up = PlusGridIsl(inf, 1e8).links(r, ok, t, epoch=E0)
    cross = inf.plane_id[edges[:, 0]] != inf.plane_id[edges[:, 1]]
    n_pl = inf.plane_next.size
    for k in range(t.size):
        want = set()
        for p in range(n_pl):
            q = int(inf.plane_next[p])
            if q < 0:
                continue
            a = np.flatnonzero(inf.plane_id == p)
            b = np.flatnonzero(inf.plane_id == q)
            d = np.linalg.norm(r[k][a][:, None, :] - r[k][b][None, :, :], axis=2)
            row, col = d.argmin(axis=1), d.argmin(axis=0)
            for i, j in enumerate(row):
                if col[j] == i:
                    want.add((min(a[i], b[j]), max(a[i], b[j])))
        got = {tuple(x) for x in edges[up[k] & cross].tolist()}
        assert got == want, k


# --- The shipped snapshot -------------------------------------------------------------------


def _snapshot_columns() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Names, mean-motion altitude [km], ndot field [rev/day^2] and inclination, from the text."""
    text = (files("starmesh") / "data" / "starlink-2026-05-12.tle").read_text()
    rows = [s for s in text.splitlines() if s.strip()]
    names = rows[0::3]
    n_rev_day = np.array([float(s[52:63]) for s in rows[2::3]])
    ndot = np.array([float(s[33:43]) for s in rows[1::3]])
    inc = np.array([float(s[8:16]) for s in rows[2::3]])
    n = n_rev_day * 2 * math.pi / 86400.0
    alt_km = (3.986004418e14 / n**2) ** (1 / 3) / 1e3 - 6378.137
    return names, alt_km, ndot, inc


@pytest.fixture(scope="module")
def snap_filter():
    return filter_operational(load_starlink_snapshot())


def test_filter_counts_match_the_text(snap_filter):
    _kept, rep = snap_filter
    names, alt_km, ndot, _inc = _snapshot_columns()
    n_rev_day = 86400.0 / (2 * math.pi) * np.sqrt(3.986004418e14 / ((alt_km + 6378.137) * 1e3) ** 3)
    adot = (2 / 3) * (alt_km + 6378.137) / n_rev_day * 2 * np.abs(ndot)
    assert rep.n_input == len(names) == 10361
    assert rep.failing["direct_to_cell"] == sum("[DTC]" in s for s in names) == 644
    assert rep.failing["low_altitude"] == int((alt_km < 400.0).sum())
    assert rep.failing["manoeuvring"] >= int((adot > 1.0).sum())
    assert rep.failing["stale_epoch"] == 0
    assert sum(rep.counts.values()) + rep.n_kept == rep.n_input
    dtc_ids = set(rep.dropped["direct_to_cell"].tolist())
    assert len(dtc_ids) == 644
    assert rep.to_dict()["dropped_counts"] == rep.counts
    assert rep.summary().startswith(f"{rep.n_kept:,} of 10,361 kept")


def test_filter_keep_options_and_stale(snap_filter):
    snap = load_starlink_snapshot()
    _kept, rep = snap_filter
    kept2, rep2 = filter_operational(
        snap, criteria=OperationalCriteria(keep_direct_to_cell=True, keep_low=True)
    )
    assert rep2.counts["direct_to_cell"] == 0
    assert rep2.n_kept >= rep.n_kept + 644
    dtc = set(rep.dropped["direct_to_cell"].tolist())
    other = set(np.concatenate(list(rep2.dropped.values())).tolist()) & dtc
    assert sum("[DTC]" in n for n in kept2.names) == 644 - len(other) > 600
    late = rep.reference_epoch + timedelta(days=10)
    with pytest.raises(ScenarioError, match="stale_epoch"):
        filter_operational(snap, epoch=late)
    _k3, rep3 = filter_operational(snap, epoch=late, criteria=OperationalCriteria(keep_stale=True))
    assert rep3.counts["stale_epoch"] == 0 and rep3.failing["stale_epoch"] == 10361


def _shell_near(inf, inc_deg, alt_km, alt_tol_km):
    hits = [
        s
        for s in inf.shells
        if abs(s.inclination_deg - inc_deg) < 0.4 and abs(s.altitude_km - alt_km) < alt_tol_km
    ]
    assert len(hits) == 1, (inc_deg, alt_km, [s.name for s in inf.shells])
    return hits[0]


def test_inferred_shells_against_spacex_filings():
    rc = starlink_2026()
    inf = rc.inference
    table = inf.to_table()
    assert list(table[0]) == list(SHELL_TABLE_COLUMNS)
    # Gen2 43 deg shell (FCC-22-91: 530 km, 28 x 120 = 3,360), lowered to ~480 km in 2026.
    s43 = _shell_near(inf, 43.0, 480.0, 10.0)
    assert 0.9 * 3360 <= s43.n_sats <= 3360
    # Gen1 53.2 deg shell (FCC-21-48: 540 km, 72 planes x 22 = 1,584).
    s53 = _shell_near(inf, 53.2, 540.0, 5.0)
    assert s53.lattice_planes == 72 and s53.n_planes == 72
    assert 0.75 * 1584 <= s53.n_sats <= 1584
    # Gen1 70 deg shell (FCC-21-48: 570 km, 36 planes x 20 = 720).
    s70 = _shell_near(inf, 70.0, 570.0, 5.0)
    assert s70.lattice_planes == 36
    assert 0.9 * 720 <= s70.n_sats <= 720
    # Gen1 97.6 deg shells (FCC-21-48: 560 km, 6 x 58 + 4 x 43 = 520).
    s97 = _shell_near(inf, 97.6, 560.0, 15.0)
    assert 0.8 * 520 <= s97.n_sats <= 520
    # 53 deg at ~475 km: Gen1 550 km shell (1,584) and Gen2 53 deg (3,360) lowered to ~480 km.
    low53 = [s for s in inf.shells if abs(s.inclination_deg - 53.1) < 0.3 and s.altitude_km < 500]
    assert 2000 <= sum(s.n_sats for s in low53) <= 1584 + 3360
    assert inf.n_unassigned < 0.01 * rc.report.n_kept


@pytest.mark.slow
def test_snapshot_isl_lengths_hold_over_an_hour():
    rc = starlink_2026()
    isl = rc.plus_grid()
    epoch = rc.inference.epoch
    prop = Propagator(rc.constellation, epoch)
    medians = []
    for t0 in range(0, 3601, 600):
        t = np.arange(t0, min(t0 + 600, 3601), 30.0)
        r, ok = prop.positions_ecef_m(t)
        edges, up = isl.links(r, ok, t, epoch=epoch)
        length = isl_lengths_m(r, edges)
        assert (length[up] <= isl.max_range_m).all()
        assert up.sum(axis=1).min() > 1.4 * rc.constellation.n_sats
        medians += [np.median(length[k, up[k]]) for k in range(t.size)]
    m = np.array(medians)
    assert np.abs(m / m[0] - 1.0).max() < 0.10


def test_builtin_real_constellation_by_name():
    from starmesh.constellation import constellation_names, is_real_constellation
    from starmesh.realset import load_real_constellation

    assert "starlink-2026" in constellation_names() and "starlink-gen1" in constellation_names()
    assert is_real_constellation("starlink-2026") and not is_real_constellation("starlink-gen1")
    rc = load_real_constellation("starlink-2026")
    assert rc is starlink_2026()
    assert rc.constellation.n_sats == rc.report.n_kept == rc.inference.shell_idx.size
    with pytest.raises(ScenarioError, match="starlink-2026"):
        load_real_constellation("starlink-2019")


def _one_tle(num: int, *, ecc: float = 1e-7, ndot_rev_day2: float = 0.0, alt_km: float = 550.0):
    """One satellite's 3LE from sgp4's initialiser and exporter."""
    sat = Satrec()
    a_km = 6378.137 + alt_km
    n_rad_min = math.sqrt(3.986004418e5 / a_km**3) * 60.0
    ndot_rad_min2 = ndot_rev_day2 * 2 * math.pi / 1440.0**2
    sat.sgp4init(
        WGS72,
        "i",
        num,
        _sgp4_epoch(E0),
        0.0,
        ndot_rad_min2,
        0.0,
        ecc,
        0.0,
        0.9,
        0.0,
        n_rad_min,
        0.0,
    )
    l1, l2 = exporter.export_tle(sat)
    return f"SAT {num}\n{l1}\n{l2}\n"


def test_filter_eccentric_manoeuvring_and_low_from_synthetic_tles():
    # Altitude rate from ndot: da/dt = -(2/3) (a/n) 2 ndot/2. At 550 km (n = 15.05 rev/day),
    # ndot/2 = 2e-3 rev/day^2 is 1.23 km/day (lowering), 2e-4 is 0.123 km/day.
    text = (
        _one_tle(1)
        + _one_tle(2, ecc=0.01)
        + _one_tle(3, ndot_rev_day2=2e-3)
        + _one_tle(4, ndot_rev_day2=2e-4)
        + _one_tle(5, alt_km=390.0)
        + _one_tle(6, alt_km=410.0)
    )
    es = parse_tle_text(text)
    crit = OperationalCriteria(min_shell_neighbours=0)
    kept, rep = filter_operational(es, criteria=crit)
    assert rep.dropped["eccentric"].tolist() == [2]
    assert rep.dropped["manoeuvring"].tolist() == [3]
    assert rep.dropped["low_altitude"].tolist() == [5]
    assert kept.norad_ids.tolist() == [1, 4, 6]
    # A tighter rate threshold catches the slow one too (0.123 km/day > 0.1).
    _k, rep2 = filter_operational(
        es, criteria=OperationalCriteria(min_shell_neighbours=0, max_altitude_rate_km_day=0.1)
    )
    assert rep2.dropped["manoeuvring"].tolist() == [3, 4]
    _k, rep3 = filter_operational(
        es, criteria=OperationalCriteria(min_shell_neighbours=0, max_altitude_rate_km_day=0.13)
    )
    assert rep3.dropped["manoeuvring"].tolist() == [3]
    # Six lone satellites are no shell: with the default neighbour count all are off-shell.
    with pytest.raises(ScenarioError, match="off_shell"):
        filter_operational(es.select([0, 3, 5]))


def test_cross_shell_links_only_when_asked(walker_set, walker_inference):
    rc = Constellation.from_elements("w", walker_set)
    t = np.array([0.0, 600.0])
    r, ok = Propagator(rc, E0).positions_ecef_m(t)
    base, up0 = PlusGridIsl(walker_inference, 1e8).links(r, ok, t, epoch=E0)
    edges, up = PlusGridIsl(walker_inference, 1e8, cross_shell=True).links(r, ok, t, epoch=E0)
    shell = walker_inference.shell_idx
    across = shell[edges[:, 0]] != shell[edges[:, 1]]
    assert not (shell[base[:, 0]] != shell[base[:, 1]]).any()
    assert across.any()
    for k in range(t.size):
        # Reference: mutual nearest satellite of another shell, by a dense distance matrix.
        d = np.linalg.norm(r[k][:, None, :] - r[k][None, :, :], axis=2)
        d[shell[:, None] == shell[None, :]] = np.inf
        nn = d.argmin(axis=1)
        i = np.arange(nn.size)
        want = {
            (a, b) for a, b in zip(i.tolist(), nn.tolist(), strict=True) if nn[b] == a and a < b
        }
        assert {tuple(x) for x in edges[up[k] & across].tolist()} == want
        same = {tuple(x) for x in edges[up[k] & ~across].tolist()}
        assert same == {tuple(x) for x in base[up0[k]].tolist()}
        assert np.bincount(edges[up[k]].ravel()).max() <= 5


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_nearest_in_plane_is_the_nearest_of_its_four_candidates(size: int, seed: int) -> None:
    # Oracle: scipy's distance over the slot bracket (lo, hi) and one more satellite each side.
    from scipy.spatial.distance import cdist

    from starmesh.grid_kernel import nearest_in_plane

    rng = np.random.default_rng(seed)
    n_before = int(rng.integers(0, 4))  # rows of other planes before the target plane
    rs = rng.normal(size=(n_before + size + 3, 3)) * 7e6
    q = 40
    src = rng.integers(0, rs.shape[0], q)
    pos = n_before + rng.integers(0, size + 1, q)  # insertion row, end of plane included
    got = nearest_in_plane(rs, src, np.full(q, n_before), np.full(q, size), pos)
    for k in range(q):
        hi = pos[k] if pos[k] < n_before + size else n_before
        lo = pos[k] - 1 if pos[k] - 1 >= n_before else n_before + size - 1
        cand = [n_before + (c - n_before) % size for c in (lo - 1, lo, hi, hi + 1)]
        d = cdist(rs[[src[k]]], rs[cand])[0]
        assert got[k] == cand[int(np.argmin(d))]
    assert got.dtype == np.int64


def test_nearest_in_plane_breaks_ties_towards_the_first_candidate() -> None:
    # A plane of four satellites at the corners of a square around the querying one (row 4):
    # all four candidates are equally near, and the first in (p - 2, p - 1, p, p + 1) order,
    # wrapped around the plane, wins (np.argmin's rule, as the numpy version had).
    from starmesh.grid_kernel import nearest_in_plane

    rs = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1.0, 0, 0], [0, -1.0, 0], [0, 0, 0]]) * 7e6
    for p in range(5):
        got = nearest_in_plane(rs, np.array([4]), np.array([0]), np.array([4]), np.array([p]))
        assert got[0] == (p - 2) % 4


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 400), st.sampled_from(["near", "random", "none"]))
def test_argsort_with_hint_is_numpy_stable_argsort(seed, n, hint_kind):
    # Keys with repeats (ties must stay in index order) and a hint from the keys before a small
    # move, a random permutation, or none.
    rng = np.random.default_rng(seed)
    x = np.round(rng.random(n) * rng.choice([5.0, 1e6]), 1)
    hint = {
        "near": np.argsort(x - rng.normal(0, 0.05, n), kind="stable"),
        "random": rng.permutation(n),
        "none": None,
    }[hint_kind]
    np.testing.assert_array_equal(_argsort_with_hint(x, hint), np.argsort(x, kind="stable"))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_slot_keys_follow_the_first_order_along_track_offset(seed):
    # Oracle: the projected slot u - dO cos i with the node difference wrapped by a complex
    # angle (numpy's angle of exp(i dO)), and the plane's base 8 rad per plane.
    from starmesh.grid_kernel import slot_keys

    rng = np.random.default_rng(seed)
    n, n_pl = 50, 7
    target = rng.integers(-1, n_pl, n)
    plane_raan = rng.uniform(-10, 10, n_pl)
    raan = rng.uniform(-10, 10, n)
    u = rng.uniform(0, 2 * np.pi, n)
    cos_i = np.cos(rng.uniform(0, np.pi, n))
    d_node = np.where(target >= 0, np.angle(np.exp(1j * (plane_raan[target] - raan))), 0.0)
    want_u = np.mod(u - d_node * cos_i, 2 * np.pi)
    got = slot_keys(target, plane_raan, raan, u, cos_i)
    base = np.maximum(target, 0) * 8.0
    assert (got >= base).all() and (got < base + 2 * np.pi).all()
    du = np.angle(np.exp(1j * (got - base - want_u)))  # the same angle, up to wrapping
    np.testing.assert_allclose(du, 0.0, atol=1e-12)
    # ... and bit for bit numpy's remainder form, which the +Grid pairing used before.
    d = plane_raan[np.maximum(target, 0)] - raan
    wrapped = np.where(target >= 0, np.remainder(d + np.pi, 2 * np.pi) - np.pi, 0.0)
    np.testing.assert_array_equal(got, base + np.mod(u + (-wrapped * cos_i), 2 * np.pi))
