"""Propagation against Vallado's SGP4 verification vectors (shipped in `sgp4`) and closed forms."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from importlib.resources import files

import numpy as np
import pytest
from sgp4.api import WGS72, Satrec, SatrecArray, jday

from starmesh.constants import J2, J2_RADIUS_M, MU_EARTH_M3_S2, WGS84_A_M
from starmesh.constellation import Constellation, KeplerElements, WalkerShell
from starmesh.elements import parse_tle_text
from starmesh.errors import StarmeshError
from starmesh.propagation import (
    Propagator,
    j2_rates,
    propagate_kepler_eci_m,
    propagate_sgp4_teme_m,
    satrecs_from_elements,
)

ONE_MM = 1e-3


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
        jd_e, fr_e = jday(
            rec.epoch.year,
            rec.epoch.month,
            rec.epoch.day,
            rec.epoch.hour,
            rec.epoch.minute,
            rec.epoch.second + rec.epoch.microsecond * 1e-6,
        )
        remainder_s = ((sat.jdsatepoch - jd_e) + (sat.jdsatepochF - fr_e)) * 86400.0
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
