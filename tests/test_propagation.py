"""Propagation against Vallado's SGP4 verification vectors (shipped in `sgp4`) and closed forms."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import numpy as np
import pytest
from sgp4.api import WGS72, Satrec, SatrecArray, jday

from starmesh.constants import J2, J2_RADIUS_M, MU_EARTH_M3_S2, WGS84_A_M
from starmesh.constellation import Constellation, KeplerElements, WalkerShell
from starmesh.elements import parse_tle_text
from starmesh.errors import StarmeshError
from starmesh.propagation import (
    EPHEMERIS_MAX_ECC,
    EPHEMERIS_MAX_ERROR_M,
    EPHEMERIS_NODE_S,
    EPHEMERIS_POINTS,
    Propagator,
    j2_rates,
    lagrange_weights,
    propagate_kepler_eci_m,
    propagate_sgp4_teme_m,
    satrecs_from_elements,
)

ONE_MM = 1e-3


def _epoch_remainder_s(rec, sat) -> float:
    """The TLE epoch sgp4 keeps minus the record's epoch (a datetime, microsecond
    resolution) [s]: what SGP4's time since epoch must be shifted by."""
    jd_e, fr_e = jday(
        rec.epoch.year,
        rec.epoch.month,
        rec.epoch.day,
        rec.epoch.hour,
        rec.epoch.minute,
        rec.epoch.second + rec.epoch.microsecond * 1e-6,
    )
    return ((sat.jdsatepoch - jd_e) + (sat.jdsatepochF - fr_e)) * 86400.0


def _vallado_cases() -> tuple[str, dict[int, list[tuple[float, np.ndarray]]]]:
    """SGP4-VER.TLE cut to standard 69-column lines, and tcppver.out's positions by satnum."""
    tle = (files("sgp4") / "SGP4-VER.TLE").read_text(encoding="ascii")
    lines = [ln[:69] for ln in tle.splitlines() if ln[:2] in ("1 ", "2 ")]
    out = (files("sgp4") / "tcppver.out").read_text(encoding="ascii").replace("\r", "")
    ref: dict[int, list[tuple[float, np.ndarray]]] = {}
    current = None
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) == 2 and parts[1] == "xx":
            current = int(parts[0])
            ref[current] = []
        elif parts and current is not None:
            ref[current].append((float(parts[0]), np.array([float(x) for x in parts[1:4]])))
    return "\n".join(lines), ref


def test_sgp4_plumbing_matches_vallado_verification_vectors():
    text, ref = _vallado_cases()
    # Three verification records carry deliberate checksum errors (Vallado's 33333-33335):
    # our reader must catch exactly those, and the others go through our whole pipeline.
    elements = parse_tle_text(text, source="SGP4-VER.TLE", skip_bad=True)
    assert len(elements.skipped) == 3, [str(e) for e in elements.skipped]
    assert all("checksum" in str(e) for e in elements.skipped)
    n_checked = n_points = 0
    for k, rec in enumerate(elements.records):
        rows = ref.get(rec.norad_id)
        assert rows, f"no reference rows for {rec.norad_id}"
        one = satrecs_from_elements(elements.select([k]))
        sat = Satrec.twoline2rv(rec.line1, rec.line2, WGS72)
        # The record's epoch as our datetime (microsecond resolution) plus the exact remainder.
        remainder_s = _epoch_remainder_s(rec, sat)
        assert abs(remainder_s) < 1e-6
        tsince_min = np.array([r[0] for r in rows])
        want_km = np.stack([r[1] for r in rows])
        r_m, err = propagate_sgp4_teme_m(one, rec.epoch, tsince_min * 60.0 + remainder_s)
        assert (err == 0).all(), rec.norad_id
        assert np.abs(r_m[:, 0] - want_km * 1e3).max() < ONE_MM, rec.norad_id
        n_checked += 1
        n_points += len(rows)
    assert n_checked >= 20 and n_points >= 400, (n_checked, n_points)


def test_sgp4_errors_become_nan_with_code():
    # Vallado's 33334-style decayed case: propagate a low, draggy orbit far ahead.
    text, _ = _vallado_cases()
    elements = parse_tle_text(text, source="SGP4-VER.TLE", skip_bad=True)
    ids = list(elements.norad_ids)
    k = ids.index(28872)  # decays: sgp4 error 6 after ~ 50 min in tcppver.out
    one = satrecs_from_elements(elements.select([k]))
    r, err = propagate_sgp4_teme_m(one, elements.records[k].epoch, np.array([0.0, 60 * 1440.0]))
    assert err[0, 0] == 0 and np.isfinite(r[0, 0]).all()
    assert err[1, 0] != 0 and np.isnan(r[1, 0]).all()


def test_kepler_radius_and_period_closed_form():
    a = WGS84_A_M + 550e3
    kep = KeplerElements(
        datetime(2026, 1, 1, tzinfo=UTC),
        np.array([a]),
        np.array([0.9]),
        np.array([0.3]),
        np.array([0.1]),
    )
    raan_dot, u_dot = j2_rates(kep.a_m, kep.inc_rad)
    period = 2 * math.pi / u_dot[0]
    r = propagate_kepler_eci_m(kep, np.array([0.0, period / 4, period]))
    np.testing.assert_allclose(np.linalg.norm(r, axis=-1), a, rtol=1e-14)
    # After one draconitic period the satellite is back at the same argument of latitude; only
    # the node has moved, by raan_dot * period.
    kep_moved = KeplerElements(
        kep.epoch, kep.a_m, kep.inc_rad, kep.raan_rad + raan_dot * period, kep.u_rad
    )
    np.testing.assert_allclose(
        r[2, 0], propagate_kepler_eci_m(kep_moved, np.array([0.0]))[0, 0], atol=ONE_MM
    )
    # Without J2 the rate is the Keplerian mean motion: period 2 pi sqrt(a^3 / mu).
    shell = WalkerShell("s", 1, 1, 0, 550e3, 53.0)
    assert shell.period_s == pytest.approx(2 * math.pi * math.sqrt(a**3 / MU_EARTH_M3_S2))
    assert shell.period_s / 60 == pytest.approx(95.65, abs=0.01)  # Starlink's ~95.6 min orbit


def test_j2_node_drift_gives_sun_synchronous_orbit():
    # Independent physical check: a 560 km orbit at ~97.6 deg is sun-synchronous (its node turns
    # eastward 360 deg per tropical year). Published SSO inclination at 560 km: 97.64 deg.
    raan_dot, _ = j2_rates(np.array([WGS84_A_M + 560e3]), np.radians([97.64]))
    sun_rate = 2 * math.pi / (365.2422 * 86400.0)
    assert raan_dot[0] == pytest.approx(sun_rate, rel=0.01)


def test_kepler_agrees_with_sgp4_on_the_same_circular_orbit():
    # The analytic model keeps J2's secular drift but not its short-period terms, which SGP4
    # includes; their amplitude is of order J2 (Re/a)^2 a (about 6.3 km at 550 km). Over one
    # orbit the two must agree within three times that scale, and SGP4's radius must oscillate
    # around ours by less than that scale.
    epoch = datetime(2026, 5, 13, tzinfo=UTC)
    a = WGS84_A_M + 550e3
    inc, raan, u0 = math.radians(53.0), math.radians(40.0), math.radians(10.0)
    kep = KeplerElements(epoch, np.array([a]), np.array([inc]), np.array([raan]), np.array([u0]))
    jd, fr = jday(2026, 5, 13, 0, 0, 0)
    sat = Satrec()
    n_rad_min = math.sqrt(MU_EARTH_M3_S2 / a**3) * 60.0
    sat.sgp4init(
        WGS72, "i", 1, jd + fr - 2433281.5, 0.0, 0.0, 0.0, 1e-7, 0.0, inc, u0, n_rad_min, raan
    )
    scale_m = J2 * (J2_RADIUS_M / a) ** 2 * a
    t = np.arange(0.0, 5740.0, 10.0)
    r_kep = propagate_kepler_eci_m(kep, t)[:, 0]
    r_sgp4, err = propagate_sgp4_teme_m(SatrecArray([sat]), epoch, t)
    assert (err == 0).all()
    diff = np.linalg.norm(r_kep - r_sgp4[:, 0], axis=1)
    assert diff.max() < 3 * scale_m, (diff.max(), scale_m)
    radius = np.linalg.norm(r_sgp4[:, 0], axis=1)
    assert abs(radius.mean() - a) < scale_m


def test_propagator_shapes_and_earth_rotation():
    shell = Constellation.walker_delta(
        planes=4,
        sats_per_plane=5,
        phasing=1,
        altitude_m=550e3,
        inclination_deg=53.0,
        epoch="2026-05-13T00:00:00Z",
    )
    prop = Propagator(shell, datetime(2026, 5, 13, tzinfo=UTC))
    r, ok = prop.positions_ecef_m(np.array([0.0, 60.0, 120.0]))
    assert r.shape == (3, 20, 3) and ok.shape == (3, 20) and ok.all()
    np.testing.assert_allclose(np.linalg.norm(r, axis=-1), WGS84_A_M + 550e3, rtol=1e-12)
    # A ground-fixed point's ECEF position is constant, so ECEF = R(gmst) ECI must rotate by
    # Earth's rate: check through the GMST difference over 1 h (sidereal rate 7.2921159e-5).
    g = prop.gmst_rad(np.array([0.0, 3600.0]))
    assert (g[1] - g[0]) % (2 * math.pi) == pytest.approx(7.2921159e-5 * 3600, rel=1e-7)


def test_tle_snapshot_propagates_without_errors():
    from starmesh.elements import load_starlink_snapshot

    es = load_starlink_snapshot()
    prop = Propagator(
        Constellation.from_elements("starlink", es), datetime(2026, 5, 13, tzinfo=UTC)
    )
    r, ok = prop.positions_ecef_m(np.array([0.0, 600.0]))
    assert r.shape == (2, len(es), 3)
    alt_km = (np.linalg.norm(r[ok], axis=-1) - WGS84_A_M) / 1e3
    assert ok.mean() > 0.99
    assert 150 < alt_km.min() and alt_km.max() < 700


# --- Independent references: SGP4's secular rates, astropy's sidereal time, skyfield's ITRS ----

#: How far our first-order J2 secular rates may sit from SGP4's, as a fraction of the J2 rate
#: scale k = 3/4 n J2 (Re/a)^2. Model error: SGP4 adds J2^2 and J4 secular terms and works with
#: Brouwer mean elements; measured at most 0.034 k (equatorial, 550 km). A dropped or mis-signed
#: term is an error of at least |3 cos^2 i - 1| k or |5 cos^2 i - 1| k (>= 0.8 k somewhere below).
J2_RATE_TOL_OF_K = 0.05
#: GMST agreement with ERFA's gmst82 through astropy (numerical error only: both evaluate the
#: same IAU 1982 polynomial; float64 day fractions give ~1e-11 rad). 1e-9 rad is 6 mm at the
#: equator, while 0.1 s of UT1 is 7.3e-6 rad.
GMST_TOL_RAD = 1e-9
#: SGP4 -> ECEF against skyfield's TEME -> ITRS (numerical error plus frame-chain differences:
#: skyfield goes through GCRS with IAU 2000A nutation, we rotate by GMST82; neither applies polar
#: motion). Measured up to 1.1 cm; 1 ms of UT1 error would be 0.46 m.
TEN_CM = 0.1
#: OMM vs TLE of the same record (numerical: microsecond epoch rounding, see the test).
OMM_EPOCH_ROUNDING_M = 0.01


@pytest.mark.parametrize("alt_km", [340.0, 550.0, 1200.0])
@pytest.mark.parametrize("inc_deg", [0.0, 30.0, 53.0, 70.0, 90.0, 97.6])
def test_j2_secular_rates_match_sgp4(alt_km: float, inc_deg: float) -> None:
    # sgp4init computes SGP4's secular rates of node, perigee and mean anomaly (Vallado's
    # sgp4init: nodedot, argpdot, mdot) from the Brouwer mean motion no_unkozai; a circular
    # orbit's argument of latitude drifts at mdot + argpdot.
    a0 = WGS84_A_M + alt_km * 1e3
    inc = math.radians(inc_deg)
    sat = Satrec()
    n_rad_min = math.sqrt(MU_EARTH_M3_S2 / a0**3) * 60.0
    sat.sgp4init(WGS72, "i", 1, 20000.0, 0.0, 0.0, 0.0, 1e-7, 0.0, inc, 0.1, n_rad_min, 0.2)
    n_brouwer = sat.xke * sat.a**-1.5 / 60.0  # rad/s; sat.a is in Earth radii
    a = sat.a * sat.radiusearthkm * 1e3
    raan_dot, u_dot = j2_rates(np.array([a]), np.array([inc]))
    n = math.sqrt(MU_EARTH_M3_S2 / a**3)
    k = 0.75 * n * J2 * (J2_RADIUS_M / a) ** 2
    sgp4_u_drift = (sat.mdot + sat.argpdot) / 60.0 - n_brouwer
    assert abs((u_dot[0] - n) - sgp4_u_drift) < J2_RATE_TOL_OF_K * k
    assert abs(raan_dot[0] - sat.nodedot / 60.0) < J2_RATE_TOL_OF_K * k


def _walker(epoch: str = "2026-05-13T00:00:00Z") -> Constellation:
    return Constellation.walker_delta(
        planes=3,
        sats_per_plane=4,
        phasing=1,
        altitude_m=550e3,
        inclination_deg=53.0,
        epoch=epoch,
    )


@pytest.mark.parametrize("dut1_s", [0.0, 0.45, -0.7])
def test_gmst_with_dut1_matches_astropy(dut1_s: float) -> None:
    from astropy.time import Time, TimeDelta
    from astropy.utils import iers

    epoch = datetime(2026, 5, 13, 7, 30, tzinfo=UTC)
    t_s = np.array([0.0, 1234.5, 86400.0 * 3.3, 86400.0 * 40.0])
    ours = Propagator(_walker(), epoch, dut1_s=dut1_s).gmst_rad(t_s)
    # UT1 - UTC is given, so no IERS table is needed (and none is downloaded).
    with iers.conf.set_temp("auto_download", False):
        at = Time(epoch, scale="utc") + TimeDelta(t_s, format="sec")
        at.delta_ut1_utc = dut1_s
        want = at.sidereal_time("mean", "greenwich", model="IAU1982").rad
    diff = np.angle(np.exp(1j * (ours - want)))
    assert np.abs(diff).max() < GMST_TOL_RAD, diff


def test_sgp4_ecef_matches_skyfield_itrs() -> None:
    # Ten Starlink TLEs of the shipped snapshot, 10 times over 100 min, UT1 - UTC from
    # skyfield's built-in IERS table: our TEME -> ECEF against skyfield's TEME -> GCRS -> ITRS.
    from skyfield.api import EarthSatellite, load
    from skyfield.framelib import itrs

    from starmesh.elements import load_starlink_snapshot

    es = load_starlink_snapshot().select(list(range(0, 3000, 300)))
    ts = load.timescale(builtin=True)
    t_s = np.arange(0.0, 6000.0, 600.0)
    t_sky = ts.utc(2026, 5, 13, 0, 0, t_s)
    dut1_s = float(np.mean(t_sky.dut1))
    assert abs(dut1_s) > 0.01  # the check is blind to the sign of dut1 if it is ~0
    prop = Propagator(
        Constellation.from_elements("starlink", es),
        datetime(2026, 5, 13, tzinfo=UTC),
        dut1_s=dut1_s,
    )
    r, ok = prop.positions_ecef_m(t_s)
    assert ok.all()
    for k, rec in enumerate(es.records):
        assert rec.line1 is not None and rec.line2 is not None
        want = EarthSatellite(rec.line1, rec.line2, ts=ts).at(t_sky).frame_xyz(itrs).m.T
        err = np.linalg.norm(want - r[:, k], axis=-1)
        assert err.max() < TEN_CM, (rec.norad_id, err.max())


def test_propagator_epoch_offset_scale_and_types() -> None:
    # Consistency checks (not validation): starting the run 600 s after the elements' epoch is
    # the same as asking for t = 600 s; ``scale`` multiplies every position; default dUT1 is 0.
    const = _walker()
    t0 = datetime(2026, 5, 13, tzinfo=UTC)
    base = Propagator(const, t0)
    assert base.dut1_s == 0.0
    r600, ok = base.positions_ecef_m(np.array([600.0]))
    later = Propagator(const, datetime(2026, 5, 13, 0, 10, tzinfo=UTC))
    np.testing.assert_allclose(later.positions_ecef_m(np.array([0.0]))[0], r600, atol=ONE_MM)
    assert ok.dtype == np.bool_
    scaled, _ = Propagator(const, t0, scale=1.25).positions_ecef_m(np.array([600.0]))
    np.testing.assert_allclose(scaled, 1.25 * r600, rtol=1e-15)
    # Zero dUT1 reproduces UTC-based GMST exactly; a positive dUT1 is a later UT1.
    g0 = base.gmst_rad(np.array([0.0]))[0]
    g1 = Propagator(const, t0, dut1_s=0.5).gmst_rad(np.array([0.0]))[0]
    assert g1 - g0 == pytest.approx(0.5 * 7.2921159e-5, rel=1e-6)


def test_sgp4_error_codes_are_uint8_and_missing_elements_are_named() -> None:
    text, _ = _vallado_cases()
    elements = parse_tle_text(text, source="SGP4-VER.TLE", skip_bad=True)
    one = satrecs_from_elements(elements.select([0]))
    _, err = propagate_sgp4_teme_m(one, elements.records[0].epoch, np.array([0.0]))
    assert err.dtype == np.uint8
    empty = Constellation("ghost", ("a",))
    with pytest.raises(StarmeshError, match="ghost"):
        Propagator(empty, datetime(2026, 5, 13, tzinfo=UTC))


def test_omm_records_propagate_like_their_tles() -> None:
    # sgp4's own exporter (sgp4.exporter.export_omm) writes the OMM fields of five TLEs of the
    # snapshot; read back through our OMM reader they must propagate exactly as the TLEs do.
    import json

    from sgp4.exporter import export_omm

    from starmesh.elements import load_starlink_snapshot, parse_omm_text

    tles = load_starlink_snapshot().select([0, 1000, 2000, 3000, 4000])
    rows = []
    for rec in tles.records:
        assert rec.line1 is not None and rec.line2 is not None
        rows.append(export_omm(Satrec.twoline2rv(rec.line1, rec.line2, WGS72), rec.name or "X"))
    omms = parse_omm_text(json.dumps(rows), fmt="json", source="export_omm")
    assert all(r.omm is not None and r.line1 is None for r in omms.records)
    t0 = datetime(2026, 5, 13, tzinfo=UTC)
    t_s = np.array([0.0, 3000.0, 86400.0])
    r_tle, err_tle = propagate_sgp4_teme_m(satrecs_from_elements(tles), t0, t_s)
    r_omm, err_omm = propagate_sgp4_teme_m(satrecs_from_elements(omms), t0, t_s)
    assert (err_tle == 0).all() and (err_omm == 0).all()
    # Numerical: OMM writes the epoch to the microsecond, the TLE's epoch has 1e-8 day (864 us)
    # steps, so the two differ by up to 0.5 us, 3.8 mm of flight at 7.6 km/s.
    assert np.abs(r_omm - r_tle).max() < OMM_EPOCH_ROUNDING_M


# --- Interpolated SGP4 ephemeris: SGP4 at nodes k h, Lagrange between them ------------------

EPOCH_2026 = datetime(2026, 5, 13, tzinfo=UTC)
#: A step at 7 s visits every 1-s phase of a 60-s node interval (7 and 60 are coprime).
PHASE_STEP_S = 7.0


def _snapshot_every(stride: int, extra_norad: tuple[int, ...] = ()) -> Constellation:
    """Every ``stride``-th object of the shipped snapshot (all kinds: direct-to-cell, low,
    decaying, manoeuvring) plus the objects named."""
    from starmesh.elements import load_starlink_snapshot

    es = load_starlink_snapshot()
    ids = es.norad_ids.tolist()
    sel = sorted(set(range(0, len(ids), stride)) | {ids.index(n) for n in extra_norad})
    return Constellation.from_elements("sample", es.select(sel))


def _interp_vs_exact(
    cons: Constellation, t_s: np.ndarray, epoch: datetime = EPOCH_2026, block: int = 2000
) -> tuple[float, int]:
    """Largest ECEF distance between the interpolated and the exact propagator over ``t_s``
    (in blocks), after checking that ``ok`` and NaN are exactly SGP4's; and the number of
    (step, satellite) positions compared."""
    exact = Propagator(cons, epoch)
    interp = Propagator(cons, epoch, node_spacing_s=EPHEMERIS_NODE_S)
    worst, n = 0.0, 0
    for a in range(0, t_s.size, block):
        t = t_s[a : a + block]
        r_e, ok_e = exact.positions_ecef_m(t)
        r_i, ok_i = interp.positions_ecef_m(t)
        np.testing.assert_array_equal(ok_i, ok_e)
        np.testing.assert_array_equal(np.isnan(r_i), np.isnan(r_e))
        d = np.linalg.norm(r_i - r_e, axis=-1)[ok_e]
        worst = max(worst, float(d.max()) if d.size else 0.0)
        n += d.size
    return worst, n


def test_interpolated_ephemeris_matches_sgp4_on_a_snapshot_sample_over_a_day() -> None:
    # 1 object in 40 of the snapshot plus the study's worst (STARLINK-3096 and -1790) and
    # three just-launched objects whose drag-decayed eccentricity meets SGP4's floor of 1e-6
    # during the day (STARLINK-37637, -37635, -37611: interpolated through the floor they would
    # be off by 2 m), 24 h at 7-s steps (every phase of a node interval), against SGP4.
    cons = _snapshot_every(40, extra_norad=(49131, 46691, 69026, 69029, 69034))
    worst, n = _interp_vs_exact(cons, np.arange(0.0, 86_400.0, PHASE_STEP_S))
    assert n > 250 * 12_000
    assert worst < EPHEMERIS_MAX_ERROR_M, worst
    # Interpolated, not silently exact: the error is there, at the level of the study.
    assert worst > EPHEMERIS_MAX_ERROR_M / 100, worst


@pytest.mark.slow
def test_interpolated_ephemeris_matches_sgp4_on_the_whole_snapshot_every_second() -> None:
    # All 10,361 objects, every 1-s step of 24 h (the study of the docstring, ~10 min).
    cons = _snapshot_every(1)
    worst, _n = _interp_vs_exact(cons, np.arange(0.0, 86_400.0), block=3600)
    assert worst < EPHEMERIS_MAX_ERROR_M, worst


def test_interpolated_positions_do_not_depend_on_the_window() -> None:
    cons = _snapshot_every(500)
    t_all = np.arange(0.0, 400.0)
    ref_r, ref_ok = Propagator(cons, EPOCH_2026, node_spacing_s=60.0).positions_ecef_m(t_all)
    assert ref_ok.all()
    reused = Propagator(cons, EPOCH_2026, node_spacing_s=60.0)
    windows = [np.array([k]) for k in (0, 59, 60, 61, 119, 120, 121, 299, 399)] + [
        np.arange(a, b) for a, b in ((55, 125), (0, 45), (30, 75), (170, 400), (1, 2))
    ]
    windows += [np.array([300, 7, 61, 60, 250]), np.arange(399, 100, -13)]
    for idx in windows:
        for prop in (reused, Propagator(cons, EPOCH_2026, node_spacing_s=60.0)):
            r, ok = prop.positions_ecef_m(t_all[idx])
            np.testing.assert_array_equal(r, ref_r[idx])
            np.testing.assert_array_equal(ok, ref_ok[idx])
            r_teme, _ = prop.positions_teme_m(t_all[idx])
            np.testing.assert_array_equal(
                r_teme,
                Propagator(cons, EPOCH_2026, node_spacing_s=60.0).positions_teme_m(t_all[idx])[0],
            )
    # Steps on a node are SGP4 itself, bit for bit (node k is at k h after the epoch).
    exact_r, _ = Propagator(cons, EPOCH_2026).positions_teme_m(t_all[::60])
    interp_r, _ = Propagator(cons, EPOCH_2026, node_spacing_s=60.0).positions_teme_m(t_all)
    np.testing.assert_array_equal(interp_r[::60], exact_r)
    assert not np.array_equal(
        interp_r[30::60], Propagator(cons, EPOCH_2026).positions_teme_m(t_all[30::60])[0]
    )


def test_eccentricity_model_is_sgp4s_own() -> None:
    # The mean eccentricity that decides where SGP4's floor acts, against the compiled SGP4's
    # own (Satrec.em after a call, which holds it after the floor): equal to 1e-12 where above
    # the floor, at or below the floor where SGP4 clamps. Objects: the three that meet the floor
    # on 2026-05-13 and 1 in 500 of the snapshot.
    from starmesh.propagation import SGP4_ECC_FLOOR, _EccentricityModel

    cons = _snapshot_every(500, extra_norad=(69026, 69029, 69034))
    assert cons.elements is not None
    sats = [Satrec.twoline2rv(r.line1, r.line2, WGS72) for r in cons.elements.records]
    model = _EccentricityModel(sats)
    t_s = np.arange(0.0, 86_400.0, 97.0)
    jd0, fr0 = jday(2026, 5, 13, 0, 0, 0.0)
    jd, fr = np.full(t_s.size, jd0), fr0 + t_s / 86_400.0
    ours = model.ecc(jd, fr)
    theirs = np.empty_like(ours)
    for j, sat in enumerate(sats):
        for i in range(t_s.size):
            sat.sgp4(jd[i], fr[i])
            theirs[i, j] = sat.em
    clamped = theirs == SGP4_ECC_FLOOR
    assert clamped.any() and (~clamped).any()
    assert np.abs(ours - theirs)[~clamped].max() < 1e-12
    assert (ours[clamped] < SGP4_ECC_FLOOR + 1e-12).all()


def test_lagrange_weights_reproduce_polynomials_of_the_stencil_degree() -> None:
    # Lagrange interpolation on p nodes is exact for polynomials of degree < p (closed form):
    # the weights of the nodes j = -(p/2 - 1) .. p/2 reproduce s^d for d < p, and not s^p.
    s = np.linspace(0.0, 0.999, 37)
    for p in (2, 4, 8):
        w = lagrange_weights(s, p)
        j = np.arange(p) - (p // 2 - 1)
        for d in range(p):
            np.testing.assert_allclose(w @ j.astype(float) ** d, s**d, atol=1e-9 * 4.0**d)
        assert np.abs(w @ j.astype(float) ** p - s**p).max() > 1e-3
    with pytest.raises(StarmeshError, match="n_points"):
        lagrange_weights(s, 5)


def test_interpolated_ephemeris_falls_back_to_sgp4_where_a_node_fails() -> None:
    # Vallado's 29141 decays (SGP4 error 6) just after 420 min (tcppver.out ends there); with
    # two healthy near-Earth records, 1-s steps from 400 to 440 min: ok and NaN exactly SGP4's,
    # the steps whose stencil holds a failed node are SGP4 itself, the others within the bound.
    text, _ = _vallado_cases()
    elements = parse_tle_text(text, source="SGP4-VER.TLE", skip_bad=True)
    ids = list(elements.norad_ids)
    es = elements.select([ids.index(29141), ids.index(6251), ids.index(28057)])
    cons = Constellation.from_elements("decay", es)
    epoch = es.records[0].epoch
    t = np.arange(400 * 60.0, 440 * 60.0)
    exact = Propagator(cons, epoch)
    interp = Propagator(cons, epoch, node_spacing_s=EPHEMERIS_NODE_S)
    r_e, ok_e = exact.positions_teme_m(t)
    r_i, ok_i = interp.positions_teme_m(t)
    assert ok_e[:, 0].any() and not ok_e[:, 0].all() and ok_e[:, 1:].all()
    np.testing.assert_array_equal(ok_i, ok_e)
    np.testing.assert_array_equal(np.isnan(r_i), np.isnan(r_e))
    # Steps of the decaying satellite whose stencil (nodes floor(t / h) - (p/2 - 1) ..
    # floor(t / h) + p/2) reaches its first failed node.
    h, half = EPHEMERIS_NODE_S, EPHEMERIS_POINTS // 2
    k = np.arange(t[0] // h - half, t[-1] // h + half + 1)
    k_fail = k[~exact.positions_teme_m(k * h)[1][:, 0]][0]
    near = ok_e[:, 0] & (t // h + half >= k_fail)
    assert near.sum() > 60
    np.testing.assert_array_equal(r_i[near, 0], r_e[near, 0])
    far = ok_e[:, 0] & ~near
    assert far.sum() > 60
    assert np.linalg.norm(r_i[far, 0] - r_e[far, 0], axis=-1).max() < EPHEMERIS_MAX_ERROR_M
    assert np.linalg.norm(r_i[:, 1:] - r_e[:, 1:], axis=-1).max() < EPHEMERIS_MAX_ERROR_M


def test_interpolated_ephemeris_passes_vallado_near_earth_vectors() -> None:
    # tcppver.out's near-Earth records the interpolation applies to (period < 225 min,
    # e <= EPHEMERIS_MAX_ECC), through the interpolated path with the epoch moved 29.5 s so
    # that the reference times sit mid-interval, within 1 mm as the exact path.
    text, ref = _vallado_cases()
    elements = parse_tle_text(text, source="SGP4-VER.TLE", skip_bad=True)
    n_checked = 0
    for k, rec in enumerate(elements.records):
        assert rec.line1 is not None and rec.line2 is not None
        sat = Satrec.twoline2rv(rec.line1, rec.line2, WGS72)
        if sat.method != "n" or sat.ecco > EPHEMERIS_MAX_ECC:
            continue
        remainder_s = _epoch_remainder_s(rec, sat)
        shift = timedelta(seconds=29.5)
        prop = Propagator(
            Constellation.from_elements("v", elements.select([k])),
            rec.epoch - shift,
            node_spacing_s=EPHEMERIS_NODE_S,
        )
        tsince_min = np.array([r[0] for r in ref[rec.norad_id]])
        want_km = np.stack([r[1] for r in ref[rec.norad_id]])
        r_m, ok = prop.positions_teme_m(tsince_min * 60.0 + remainder_s + 29.5)
        assert ok.all(), rec.norad_id
        assert np.abs(r_m[:, 0] - want_km * 1e3).max() < ONE_MM, rec.norad_id
        n_checked += 1
    assert n_checked == 5


def test_interpolation_is_refused_where_it_does_not_apply() -> None:
    with pytest.raises(StarmeshError, match="node_spacing_s"):
        Propagator(_walker(), EPOCH_2026, node_spacing_s=60.0)
    cons = _snapshot_every(5000)
    with pytest.raises(StarmeshError, match="node_spacing_s"):
        Propagator(cons, EPOCH_2026, earth_model="pyephem", node_spacing_s=60.0)
    with pytest.raises(StarmeshError, match="node_spacing_s must be > 0"):
        Propagator(cons, EPOCH_2026, node_spacing_s=0.0)


def test_ephemeris_policy_of_a_scenario() -> None:
    from starmesh.plan import ephemeris_node_spacing_s

    real = _snapshot_every(5000)
    assert ephemeris_node_spacing_s("auto", "wgs84", real, 1.0) == EPHEMERIS_NODE_S
    assert ephemeris_node_spacing_s("auto", "wgs84", real, 59.0) == EPHEMERIS_NODE_S
    assert ephemeris_node_spacing_s("auto", "wgs84", real, 60.0) is None
    assert ephemeris_node_spacing_s("exact", "wgs84", real, 1.0) is None
    assert ephemeris_node_spacing_s("auto", "pyephem", real, 1.0) is None
    assert ephemeris_node_spacing_s("auto", "wgs84", _walker(), 1.0) is None


def test_bad_ephemeris_value_is_one_line() -> None:
    from pydantic import ValidationError

    from starmesh.scenario import Scenario
    from starmesh.scenario.model import format_validation_error

    with pytest.raises(ValidationError) as exc:
        Scenario.model_validate(
            {
                "name": "x",
                "constellation": {"preset": "starlink-2026", "ephemeris": "fast"},
                "ground": {"terminals": ["Kyiv"]},
            }
        )
    (line,) = format_validation_error(exc.value)
    assert line.startswith("constellation.ephemeris:") and "'fast'" in line and "'exact'" in line


def test_a_run_states_its_ephemeris_and_its_readers_use_it(tmp_path) -> None:
    # A real-constellation run interpolates (1-s steps), says so in summary.json, and a reader
    # of its folder (read_geometry, from scenario.toml) gets the run's positions bit for bit;
    # "exact" is kept in the resolved scenario and gives SGP4 at every step.
    import json

    import starmesh
    from starmesh.io.runfolder import read_geometry
    from starmesh.plan import build_plan
    from starmesh.scenario import Scenario, load_scenario

    data = {
        "name": "eph",
        "time": {"start_utc": "2026-05-13T00:00:30Z", "duration_s": 3.0, "step_s": 1.0},
        "constellation": {"preset": "starlink-2026"},
        "ground": {"terminals": ["Kyiv", "Frankfurt"]},
        "routing": {"pairs": [["Kyiv", "Frankfurt"]]},
        "service": {"model": "geometric"},
    }
    out = tmp_path / "run"
    run = starmesh.run(Scenario.model_validate(data), out=out, report=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ephemeris"]["mode"] == "sgp4-interpolated"
    assert summary["ephemeris"]["node_s"] == EPHEMERIS_NODE_S
    geo = read_geometry(out)
    assert geo.propagator.node_spacing_s == EPHEMERIS_NODE_S
    plan = build_plan(load_scenario(out / "scenario.toml"))
    assert plan.ephemeris_node_s == EPHEMERIS_NODE_S
    t = plan.grid.t_s()
    np.testing.assert_array_equal(
        geo.propagator.positions_ecef_m(t)[0], plan.propagator().positions_ecef_m(t)[0]
    )
    assert run is not None
    data["constellation"] = {"preset": "starlink-2026", "ephemeris": "exact"}
    sc = Scenario.model_validate(data)
    exact_plan = build_plan(sc)
    assert exact_plan.ephemeris_node_s is None
    assert exact_plan.resolved["constellation"]["ephemeris"] == "exact"
    r_x, _ = exact_plan.propagator().positions_ecef_m(t)
    r_e, _ = Propagator(exact_plan.constellation, exact_plan.grid.epoch).positions_ecef_m(t)
    np.testing.assert_array_equal(r_x, r_e)


def test_tle_override_keeps_the_ephemeris_setting() -> None:
    from starmesh.api import to_scenario
    from starmesh.scenario import Scenario

    sc = Scenario.model_validate(
        {
            "name": "x",
            "constellation": {"preset": "starlink-2026", "ephemeris": "exact"},
            "ground": {"terminals": ["Kyiv"]},
        }
    )
    snapshot = str(files("starmesh") / "data" / "starlink-2026-05-12.tle")
    assert to_scenario(sc, tle=snapshot).constellation.ephemeris == "exact"


def test_interpolated_runs_do_not_depend_on_chunks_or_executor() -> None:
    # A real-constellation run with the service model (its 15-s slots widen every chunk's
    # window), 150 steps across node boundaries: one chunk in this process, and 7-step chunks
    # in two worker processes, give the same RTTs and summary.
    import dataclasses

    from starmesh.plan import build_plan
    from starmesh.runner import run_plan_in_memory
    from starmesh.scenario import Scenario

    sc = Scenario.model_validate(
        {
            "name": "eph-chunks",
            "time": {"start_utc": "2026-05-13T00:00:50Z", "duration_s": 150.0, "step_s": 1.0},
            "constellation": {"preset": "starlink-2026"},
            "ground": {"terminals": ["Kyiv", "Lviv"], "pops": ["Warsaw"]},
            "routing": {"modes": ["isl"]},
        }
    )
    plan = build_plan(sc)
    assert plan.ephemeris_node_s == EPHEMERIS_NODE_S
    whole = run_plan_in_memory(dataclasses.replace(plan, chunk_steps=150), executor="serial")
    parts = run_plan_in_memory(
        dataclasses.replace(plan, chunk_steps=7, workers=2), executor="processes"
    )
    assert whole.summary.to_dict() == parts.summary.to_dict()
    np.testing.assert_array_equal(whole.rtt.values, parts.rtt.values)
