"""Tests of starmesh.linkbudget: closed forms, 3GPP TR 38.821's published link budgets, ITU-R
reference antenna patterns at tabulated angles, and the DVB-S2/S2X MODCOD table."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import j1 as scipy_j1

from starmesh import linkbudget
from starmesh.frames import slant_range_m
from starmesh.linkbudget import (
    AIRY_ENVELOPE_X,
    BOLTZMANN_DBW_K_HZ,
    DVB_S2X,
    KU_DOWNLINK_BANDWIDTH_HZ,
    KU_PFD_LIMIT_DBW_M2_MHZ,
    KU_SAT_EIRP_DBW,
    BesselPattern,
    LinkBudget,
    ModcodTable,
    PhasedArrayPattern,
    S465Pattern,
    S1528Pattern,
    aperture_gain_dbi,
    atmospheric_loss_db,
    capacity_bps,
    cnr_db,
    db_to_linear,
    fspl_db,
    g_over_t_db_k,
    gain_dbi,
    linear_to_db,
    sinr_db,
    starlink_ka_feeder,
    starlink_ku_user,
    system_noise_temperature_k,
    thermal_noise_dbw,
)

#: Tolerances named as physical quantities.
ONE_MILLI_DB = 1e-3
TENTH_DB = 0.1
C = 299_792_458.0


# --------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------


def test_fspl_closed_form_scalar_and_array() -> None:
    # 20 log10(4 pi d f / c): 92.448 dB at 1 km and 1 GHz (ITU-R P.525: 92.45 + 20 log d_km +
    # 20 log f_GHz); +6.0206 dB per doubling of either.
    assert abs(float(fspl_db(1e3, 1e9)) - 92.4478) < ONE_MILLI_DB
    d = np.array([1e3, 2e3, 550e3, 1_123e3])
    got = fspl_db(d, 11.7e9)
    want = 20.0 * np.log10(4.0 * np.pi * d * 11.7e9 / C)
    assert np.abs(got - want).max() < 1e-12
    assert abs(got[1] - got[0] - 20.0 * math.log10(2.0)) < 1e-12
    # Broadcasting: distances (3, 1) against frequencies (2,).
    grid = fspl_db(d[:3, None], np.array([1e9, 2e9]))
    assert grid.shape == (3, 2)
    assert np.abs(grid[:, 1] - grid[:, 0] - 20.0 * math.log10(2.0)).max() < 1e-12


def test_noise_and_g_over_t_closed_forms() -> None:
    assert abs(BOLTZMANN_DBW_K_HZ - (-228.5992)) < 1e-4
    # kTB at 290 K in 1 Hz: -203.98 dBW (-173.98 dBm/Hz); +10 dB per decade of bandwidth.
    assert abs(float(thermal_noise_dbw(290.0, 1.0)) + 203.9752) < ONE_MILLI_DB
    n = thermal_noise_dbw(290.0, np.array([1.0, 10.0, 1e6]))
    assert np.abs(np.diff(n) - np.array([10.0, 50.0])).max() < 1e-9
    # A noiseless receiver adds nothing; NF = 3.0103 dB adds T0.
    assert float(system_noise_temperature_k(150.0, 0.0)) == 150.0
    assert abs(float(system_noise_temperature_k(0.0, 10 * math.log10(2.0))) - 290.0) < 1e-9
    assert abs(float(g_over_t_db_k(30.0, 1000.0)) - 0.0) < 1e-12
    assert abs(float(db_to_linear(linear_to_db(123.0))) - 123.0) < 1e-9


def test_cnr_equals_carrier_over_noise_power() -> None:
    # C/N from the dB budget equals received power over k T B computed linearly.
    eirp, gain, temp, bw, d, f = 30.0, 35.0, 250.0, 240e6, 800e3, 11.7e9
    c_w = 10 ** ((eirp + gain - float(fspl_db(d, f))) / 10)
    n_w = 1.380649e-23 * temp * bw
    want = 10 * math.log10(c_w / n_w)
    got = float(cnr_db(eirp, gain - 10 * math.log10(temp), fspl_db(d, f), bw))
    assert abs(got - want) < 1e-9
    # SINR: C/(N+I) with I = N is 3.0103 dB below C/N.
    assert abs(float(sinr_db(c_w, n_w, n_w)) - (want - 10 * math.log10(2))) < 1e-9


def test_atmospheric_loss_cosecant_law() -> None:
    # TR 38.811 eq. (6.6-8): A_zenith / sin(elevation); TR 38.821 SC6: 0.5 dB at 30 deg.
    got = atmospheric_loss_db(0.25, np.radians([90.0, 30.0, 10.0, 2.0]))
    assert (
        np.abs(got - np.array([0.25, 0.5, 0.25 / math.sin(math.radians(10)), got[2]])).max() < 1e-12
    )


# --------------------------------------------------------------------------------------------
# 3GPP TR 38.821 Table 6.1.3.3-1
# --------------------------------------------------------------------------------------------

#: 3GPP TR 38.821 (Release 16), Table 6.1.3.3-1 "Link budgets results", LEO-600 rows, with the
#: inputs of Table 6.1.1.1-1 (satellite) and Table 6.1.1.1-3 (terminal). Elevation 30 deg, Earth
#: radius 6,371 km (TR 38.811 §6.6.2), k = -228.6 dBW/K/Hz. Losses [dB]: atmospheric (atm),
#: scintillation (sci), shadowing margin (sha).
#:
#: | case  | GHz | EIRP           | G/T dB/K                | MHz | FSPL  | atm | sci | sha | CNR  |
#: |-------|-----|----------------|-------------------------|-----|-------|-----|-----|-----|------|
#: | SC6DL | 20  | 4 dBW/MHz      | VSAT 39.7 dBi 150 K 1.2 | 400 | 179.1 | 0.5 | 0.3 | 0   | 8.5  |
#: | SC6UL | 30  | 2 W + 43.2 dBi | satellite 13            | 400 | 182.6 | 0.5 | 0.3 | 0   | 18.4 |
#: | SC9DL | 2   | 34 dBW/MHz     | handheld 0 dBi 290 K 7  | 30  | 159.1 | 0.1 | 2.2 | 3.0 | 6.6  |
#:
#: (Terminal G/T from antenna gain, antenna temperature and noise figure [dB].)
TR38821_ROWS = [
    # (case, f_hz, eirp_dbw, g/t dB/K, bandwidth_hz, losses_db, fspl_db, cnr_db)
    (
        "SC6-DL",
        20e9,
        4.0 + 10 * math.log10(400.0),
        39.7 - 10 * math.log10(float(system_noise_temperature_k(150.0, 1.2))),
        400e6,
        0.5 + 0.3,
        179.1,
        8.5,
    ),
    ("SC6-UL", 30e9, 10 * math.log10(2.0) + 43.2, 13.0, 400e6, 0.5 + 0.3, 182.6, 18.4),
    (
        "SC9-DL",
        2e9,
        34.0 + 10 * math.log10(30.0),
        0.0 - 10 * math.log10(float(system_noise_temperature_k(290.0, 7.0))),
        30e6,
        0.1 + 2.2 + 3.0,
        159.1,
        6.6,
    ),
]


@pytest.mark.parametrize("row", TR38821_ROWS, ids=[r[0] for r in TR38821_ROWS])
def test_tr38821_link_budget_rows(
    row: tuple[str, float, float, float, float, float, float, float],
) -> None:
    _case, f, eirp, gt, bw, losses, fspl_want, cnr_want = row
    # Slant range at 30 deg from 600 km over a 6,371 km sphere: 1,075.1 km (TR 38.811 6.6-3).
    d = float(slant_range_m(math.radians(30.0), 6_371e3 + 600e3, 6_371e3))
    assert abs(d - 1_075_088.0) < 1.0
    fspl = float(fspl_db(d, f))
    assert abs(fspl - fspl_want) < TENTH_DB
    assert abs(float(cnr_db(eirp, gt, fspl, bw, losses)) - cnr_want) < TENTH_DB


def test_tr38821_terminal_g_over_t() -> None:
    # Table 6.1.3.3-1 lists G/T = 15.9 dB/K for the VSAT and -31.6 dB/K for the handheld.
    vsat = float(g_over_t_db_k(39.7, system_noise_temperature_k(150.0, 1.2)))
    handheld = float(g_over_t_db_k(0.0, system_noise_temperature_k(290.0, 7.0)))
    assert abs(vsat - 15.9) < 0.05
    assert abs(handheld - (-31.6)) < 0.05
    # Table 6.1.1.1-1: a 0.5 m Ka aperture has a 38.5 dBi peak gain (65 % efficiency).
    assert abs(aperture_gain_dbi(0.5, 20e9) - 38.5) < 0.05


# --------------------------------------------------------------------------------------------
# Antenna patterns at tabulated angles
# --------------------------------------------------------------------------------------------

#: ITU-R S.465-6, D/lambda >= 50 (phi_min = 1 deg): G = 32 - 25 log10(phi) for 1 <= phi < 48 deg,
#: -10 dBi beyond.
S465_TABLE = [
    (1.0, 32.0),
    (2.0, 24.4743),
    (5.0, 14.5257),
    (10.0, 7.0),
    (20.0, -0.5257),
    (36.0, -6.9076),
    (47.9, -10.0084),
    (48.0, -10.0),
    (100.0, -10.0),
    (180.0, -10.0),
]


def test_s465_at_tabulated_angles() -> None:
    dish = S465Pattern(peak_gain_dbi=50.0, diameter_m=2.4, frequency_hz=14e9)  # D/lambda = 112
    assert dish.phi_min_deg == 1.0
    phi, want = np.array(S465_TABLE).T
    got = gain_dbi(dish, np.radians(phi))
    assert np.abs(got - want).max() < ONE_MILLI_DB
    # Scalar input, scalar output; the main lobe is the peak on axis and never below the
    # envelope's value at phi_min.
    assert float(gain_dbi(dish, 0.0)) == 50.0
    main = gain_dbi(dish, np.radians(np.linspace(0.0, 0.999, 50)))
    assert np.all(np.diff(main) <= 0.0) and main.min() >= 32.0


def test_s465_small_dish_phi_min() -> None:
    # D/lambda < 50: phi_min = max(2 deg, 114 (D/lambda)^-1.09). A 0.6 m dish at 12 GHz has
    # D/lambda = 24.02 and phi_min = 3.566 deg, where the envelope gives 18.20 dBi.
    dish = S465Pattern(peak_gain_dbi=35.0, diameter_m=0.6, frequency_hz=12e9)
    assert abs(dish.d_over_lambda - 24.0166) < 1e-3
    assert abs(dish.phi_min_deg - 3.5657) < 1e-3
    assert abs(float(gain_dbi(dish, math.radians(3.5657))) - 18.1963) < 1e-3
    assert abs(float(gain_dbi(dish, math.radians(10.0))) - 7.0) < 1e-9


#: ITU-R S.1528-0 recommends 1.2 with G_m = 35 dBi, psi_b = 2 deg, L_N = -20 dB, z = 1,
#: L_F = 0 dBi: a = 2.58, b = 6.32, alpha = 1.5, X = 15 + 25 log10(12.64) = 42.5437,
#: Y = 12.64 x 10^0.6 = 50.3207 deg, L_B = max(0, 15 - 20 + 8.75) = 3.75 dBi.
S1528_TABLE = [
    (0.0, 35.0),  # G_m
    (2.0, 32.0),  # G_m - 3
    (4.0, 35.0 - 3.0 * 2.0**1.5),  # 26.5147
    (5.16, 35.0 - 3.0 * 2.58**1.5),  # a psi_b: 22.5678
    (6.0, 15.0),  # G_m + L_N
    (12.0, 15.0),
    (20.0, 42.5437 - 25.0 * math.log10(20.0)),  # X - 25 log psi: 10.0179
    (50.0, 42.5437 - 25.0 * math.log10(50.0)),  # 0.0694
    (60.0, 0.0),  # L_F
    (120.0, 3.75),  # L_B
]


def test_s1528_at_tabulated_angles() -> None:
    sat = S1528Pattern(peak_gain_dbi=35.0, half_beamwidth_rad=math.radians(2.0))
    psi, want = np.array(S1528_TABLE).T
    got = gain_dbi(sat, np.radians(psi))
    assert np.abs(got - want).max() < 1e-3
    with pytest.raises(ValueError, match="near_sidelobe_db"):
        S1528Pattern(peak_gain_dbi=35.0, half_beamwidth_rad=0.03, near_sidelobe_db=-17.0)
    # The aperture form: psi_b = sqrt(1200) / (D/lambda) deg.
    ap = S1528Pattern.from_aperture(0.5, 20e9)
    assert abs(math.degrees(ap.half_beamwidth_rad) - math.sqrt(1200.0) * C / (0.5 * 20e9)) < 1e-9


#: The uniformly lit circular aperture (2 J1(x)/x)^2 of TR 38.811 §6.4.1: half power at
#: x = 1.6163, first null at x = 3.8317 (first zero of J1), first side lobe -17.57 dB at 5.1356.
AIRY_TABLE = [(1.6163399, -3.0103), (5.1356223, -17.5711)]


def test_bessel_pattern_at_tabulated_angles() -> None:
    peak, d, f = 38.5, 0.5, 20e9
    sat = BesselPattern(peak, d, f, floor_dbi=-300.0)
    ka = math.pi * d * f / C
    for x, rel_db in AIRY_TABLE:
        assert abs(float(sat.gain_dbi(math.asin(x / ka))) - (peak + rel_db)) < ONE_MILLI_DB
    null = float(sat.gain_dbi(math.asin(3.831705970 / ka)))
    assert null < peak - 80.0
    # TR 38.821 Table 6.1.1.1-1 lists a 1.7647 deg 3 dB beamwidth for 0.5 m at 20 GHz; the
    # half-power points of the pattern are 1.7676 deg apart (0.2 % wider).
    assert abs(2 * math.degrees(math.asin(1.6163399 / ka)) - 1.7647) < 0.005
    # Behind the aperture and in the nulls: the floor.
    assert float(BesselPattern(peak, d, f).gain_dbi(math.radians(120.0))) == -10.0


def test_phased_array_scan_loss_and_envelope() -> None:
    ut = PhasedArrayPattern(peak_gain_dbi=34.0, diameter_m=0.5, frequency_hz=11.7e9)
    # cos^1.2 scan loss at the beam peak.
    scan = np.radians([0.0, 30.0, 60.0])
    want = 34.0 + 12.0 * np.log10(np.cos(scan))
    assert np.abs(ut.gain_dbi(0.0, scan) - want).max() < 1e-12
    # Main lobe, then envelope: continuous where they meet and never rising with the off-axis
    # angle.
    ka = math.pi * 0.5 * 11.7e9 / C
    x_c = math.asin(AIRY_ENVELOPE_X / ka)
    below, above = ut.gain_dbi(np.array([x_c * (1 - 1e-9), x_c * (1 + 1e-9)]))
    assert abs(below - above) < 1e-6
    assert abs(below - (34.0 - 7.5861)) < 1e-3
    sweep = ut.gain_dbi(np.linspace(0.0, np.pi, 4001))
    assert np.all(np.diff(sweep) <= 1e-12)
    # A direction in the panel's plane is at the floor whatever its off-axis angle.
    assert float(ut.gain_dbi(0.0, math.radians(90.0))) == -10.0


# --------------------------------------------------------------------------------------------
# MODCODs and capacity
# --------------------------------------------------------------------------------------------

#: DVB-S2 K_bch of the normal FECFRAME (EN 302 307-1 Table 5a). The ideal spectral efficiency of
#: Table 13 is (K_bch - 80) / (64,800 / bits per symbol + 90): 80 BBHEADER bits, a 90-symbol
#: PLHEADER, no pilots.
KBCH = {
    "1/4": 16008,
    "1/3": 21408,
    "2/5": 25728,
    "1/2": 32208,
    "3/5": 38688,
    "2/3": 43040,
    "3/4": 48408,
    "4/5": 51648,
    "5/6": 53840,
    "8/9": 57472,
    "9/10": 58192,
}
BITS = {"QPSK": 2, "8PSK": 3, "16APSK": 4, "32APSK": 5}


def test_modcod_table_rows() -> None:
    assert len(DVB_S2X.names) == 66 and len(set(DVB_S2X.names)) == 66
    assert DVB_S2X.names[0] == "QPSK 1/4" and DVB_S2X.names[-1] == "256APSK 3/4"
    i = DVB_S2X.names.index("QPSK 1/4")
    assert (DVB_S2X.esn0_db[i], DVB_S2X.efficiency[i]) == (-2.35, 0.490243)
    j = DVB_S2X.names.index("256APSK 3/4")
    assert (DVB_S2X.esn0_db[j], DVB_S2X.efficiency[j]) == (19.57, 5.900855)
    # Every DVB-S2 row's efficiency follows from its frame: a check on the transcription.
    for k in range(28):
        mod, rate = DVB_S2X.names[k].split()
        want = (KBCH[rate] - 80) / (64_800 / BITS[mod] + 90)
        assert abs(DVB_S2X.efficiency[k] - want) < 1e-6, DVB_S2X.names[k]


def test_modcod_selection() -> None:
    idx, eff = DVB_S2X.select(np.array([-10.0, -2.35, -2.3500001, 9.0, 19.57, 40.0, np.nan]))
    names = [DVB_S2X.names[i] if i >= 0 else None for i in idx]
    # At 9.0 dB the best of the MODCODs at or below it is DVB-S2's 16APSK 2/3 (8.97 dB),
    # not the last one passed.
    assert names == [None, "QPSK 1/4", None, "16APSK 2/3", "256APSK 3/4", "256APSK 3/4", None]
    assert eff[0] == 0.0 and eff[-1] == 0.0
    # Margin shifts the lookup.
    assert DVB_S2X.select(9.97, margin_db=1.0)[0] == idx[3]
    cap = capacity_bps(np.array([-3.0, 9.0]), 240e6)
    assert cap[0] == 0.0 and cap[1] == 240e6 * 2.637201
    with pytest.raises(ValueError, match="conflicting sizes"):
        ModcodTable(("a",), np.array([1.0, 2.0]), np.array([1.0]))


@settings(max_examples=200, deadline=None)
@given(a=st.floats(-20.0, 40.0), b=st.floats(-20.0, 40.0))
def test_capacity_monotone_in_sinr(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    c = capacity_bps(np.array([lo, hi]), 1e6)
    assert c[0] <= c[1]


# --------------------------------------------------------------------------------------------
# Budgets and defaults
# --------------------------------------------------------------------------------------------


def test_budget_evaluate_matches_closed_form() -> None:
    down = starlink_ku_user().downlink
    d = np.array([550e3, 800e3, 1_100e3])
    el = np.radians([90.0, 45.0, 26.0])
    q = down.evaluate(d, el)
    # Broadside antennas: C/N = EIRP + G/T - FSPL - losses - k - 10 log B.
    losses = atmospheric_loss_db(down.atmospheric_zenith_db, el) + down.other_losses_db
    want = cnr_db(
        down.eirp_dbw, down.g_over_t_db_k, fspl_db(d, down.frequency_hz), down.bandwidth_hz, losses
    )
    assert np.abs(q.cnr_db - want).max() < 1e-9
    assert np.array_equal(q.cnr_db, q.sinr_db)
    # Interference equal to the noise costs 3.01 dB of SINR and never adds capacity.
    qi = down.evaluate(d, el, interference_w=down.noise_w)
    assert np.abs(qi.sinr_db - (q.sinr_db - 10 * math.log10(2))).max() < 1e-9
    assert np.all(qi.capacity_bps <= q.capacity_bps)
    want_cap = capacity_bps(q.sinr_db, down.bandwidth_hz, implementation_margin_db=1.0)
    assert np.array_equal(q.capacity_bps, want_cap)


def test_default_ku_eirp_meets_pfd_limit_at_nadir() -> None:
    pfd = (
        KU_SAT_EIRP_DBW
        - 10 * math.log10(4 * math.pi * 550e3**2)
        - 10 * math.log10(KU_DOWNLINK_BANDWIDTH_HZ / 1e6)
    )
    assert abs(pfd - KU_PFD_LIMIT_DBW_M2_MHZ) < 1e-9


def test_default_profiles_close_at_coverage_edge() -> None:
    # At the 25 deg elevation mask of Starlink Gen1 (550 km) every default link still closes.
    el = math.radians(25.0)
    d = float(slant_range_m(el, 6_371e3 + 550e3, 6_371e3))
    for prof in (starlink_ku_user(), starlink_ka_feeder()):
        for budget in (prof.downlink, prof.uplink):
            assert isinstance(budget, LinkBudget)
            q = budget.evaluate(d, el)
            assert float(q.capacity_bps) > 0.0, budget.name


def test_scanned_budget_against_a_hand_computation() -> None:
    # Ku user downlink and Ka feeder uplink with non-zero scan angles, computed here line by line
    # from the ITU formulas, not from our fspl_db/cnr_db:
    #   free space (ITU-R P.525-4 eq. 6): 92.45 + 20 log10(f / GHz) + 20 log10(d / km);
    #   gaseous loss: zenith loss / sin(elevation) (the cosecant law of ITU-R P.618 sec. 2.2);
    #   aperture gain: 10 log10(eta (pi D f / c)^2);
    #   scan loss of a phased array panel: 10 n log10(cos(scan)) (projected aperture, n = 1.2);
    #   noise: k = 1.380649e-23 J/K (SI), T from G - G/T, N = k T B.
    # Tolerance: P.525's 92.45 is 92.4478 rounded (numerical: 2.2 milli-dB); a scan loss missed
    # at 40 deg would be 1.39 dB, a factor-2 error in the exponent 0.93 dB.
    k_boltzmann = 1.380649e-23
    c = 299_792_458.0
    prof = starlink_ku_user()
    down = prof.downlink
    d_km = np.array([600.0, 900.0, 1200.0])
    el_deg = np.array([70.0, 45.0, 30.0])
    tx_scan_deg = np.array([15.0, 40.0, 50.0])  # satellite panel, facing nadir
    rx_scan_deg = np.array([20.0, 45.0, 60.0])  # terminal panel, facing zenith
    f_ghz = 11.7
    fspl = 92.45 + 20 * np.log10(f_ghz) + 20 * np.log10(d_km)
    atm = 0.05 / np.sin(np.radians(el_deg))
    g_rx_peak = 10 * math.log10(0.65 * (math.pi * 0.5 * 11.7e9 / c) ** 2)
    scan_tx = 12.0 * np.log10(np.cos(np.radians(tx_scan_deg)))
    scan_rx = 12.0 * np.log10(np.cos(np.radians(rx_scan_deg)))
    carrier = down.eirp_dbw + scan_tx + g_rx_peak + scan_rx - fspl - atm - 0.3
    t_sys = 10 ** ((g_rx_peak - down.g_over_t_db_k) / 10)
    noise = 10 * math.log10(k_boltzmann * t_sys * 240e6)
    got_c = down.carrier_dbw(
        d_km * 1e3,
        np.radians(el_deg),
        tx_normal_rad=np.radians(tx_scan_deg),
        rx_normal_rad=np.radians(rx_scan_deg),
    )
    assert np.abs(got_c - carrier).max() < 3 * ONE_MILLI_DB
    q = down.evaluate(
        d_km * 1e3,
        np.radians(el_deg),
        tx_normal_rad=np.radians(tx_scan_deg),
        rx_normal_rad=np.radians(rx_scan_deg),
    )
    assert np.abs(q.cnr_db - (carrier - noise)).max() < 3 * ONE_MILLI_DB
    # Feeder uplink: an S.465 dish transmits on its axis (off-axis 0, so no scan loss) into a
    # scanned satellite array at 28.5 GHz; EIRP = 10 dBW into the dish + its gain.
    up = starlink_ka_feeder().uplink
    g_dish = 10 * math.log10(0.65 * (math.pi * 1.5 * 28.5e9 / c) ** 2)
    g_sat = 10 * math.log10(0.65 * (math.pi * 0.5 * 28.5e9 / c) ** 2)
    fspl_ka = 92.45 + 20 * np.log10(28.5) + 20 * np.log10(d_km)
    want_up = (
        10.0
        + g_dish
        + g_sat
        + 12.0 * np.log10(np.cos(np.radians(rx_scan_deg)))
        - fspl_ka
        - 0.20 / np.sin(np.radians(el_deg))
        - 0.3
    )
    got_up = up.carrier_dbw(d_km * 1e3, np.radians(el_deg), rx_normal_rad=np.radians(rx_scan_deg))
    assert np.abs(got_up - want_up).max() < 3 * ONE_MILLI_DB
    n_up = 10 * math.log10(k_boltzmann * 10 ** ((g_sat - 13.0) / 10) * 250e6)
    q_up = up.evaluate(d_km * 1e3, np.radians(el_deg), rx_normal_rad=np.radians(rx_scan_deg))
    assert np.abs(q_up.cnr_db - (want_up - n_up)).max() < 3 * ONE_MILLI_DB
    # A rain fade allowance is a loss: 2.5 dB of margin is 2.5 dB less carrier.
    rainy = dataclasses.replace(down, rain_margin_db=2.5)
    got_rain = rainy.carrier_dbw(
        d_km * 1e3,
        np.radians(el_deg),
        tx_normal_rad=np.radians(tx_scan_deg),
        rx_normal_rad=np.radians(rx_scan_deg),
    )
    assert np.abs(got_rain - (carrier - 2.5)).max() < 3 * ONE_MILLI_DB


def _best_by_brute_force(
    thr: list[float], eff: list[float], s_db: float
) -> tuple[float, float] | None:
    """(threshold, efficiency) of the most efficient row whose threshold is <= s_db."""
    ok = [(e, t) for t, e in zip(thr, eff, strict=True) if t <= s_db]
    if not ok:
        return None
    e, t = max(ok, key=lambda et: (et[0], -et[1]))
    return t, e


def test_a_new_modcod_table_selects_like_brute_force() -> None:
    # Rows written out here (a slice of ETSI EN 302 307-1 Table 13 and -2 Table 20a, with the
    # equal-efficiency pair 16APSK 3/5 and 3/5-L and thresholds out of efficiency order), in a
    # shuffled order: the lookup must pick the most efficient MODCOD at or below the SINR and,
    # of two equally efficient ones, the more robust.
    rows = (
        ("QPSK 1/4", -2.35, 0.490243),
        ("QPSK 1/2", 1.00, 0.988858),
        ("8PSK 3/5", 5.50, 1.779991),
        ("QPSK 9/10", 6.42, 1.788612),
        ("16APSK 1/2-L", 5.97, 1.972253),
        ("8PSK 23/36", 6.12, 1.896173),
        ("16APSK 3/5", 7.80, 2.370043),
        ("16APSK 3/5-L", 7.41, 2.370043),
        ("32APSK 9/10", 16.05, 4.453027),
    )
    rng = np.random.default_rng(17)
    for _ in range(3):
        shuffled = tuple(rows[i] for i in rng.permutation(len(rows)))
        table = ModcodTable.from_rows(shuffled)
        assert table.names == tuple(r[0] for r in shuffled)
        assert table.esn0_db.tolist() == [r[1] for r in shuffled]
        assert table.efficiency.tolist() == [r[2] for r in shuffled]
        assert not table.esn0_db.flags.writeable and not table.efficiency.flags.writeable
        thr, eff = [r[1] for r in shuffled], [r[2] for r in shuffled]
        sinr = np.concatenate([rng.uniform(-4.0, 18.0, 200), np.array(thr), [-np.inf, np.inf]])
        for margin in (0.0, 1.0):
            idx, got_eff = table.select(sinr, margin_db=margin)
            for s, i, e in zip(sinr, idx, got_eff, strict=True):
                want = _best_by_brute_force(thr, eff, s - margin)
                if want is None:
                    assert i == -1 and e == 0.0, s
                else:
                    assert (thr[i], e) == want and table.efficiency[i] == e, s
        # At 8 dB the more robust of the two 2.370043 bit/symbol MODCODs is chosen.
        assert table.names[int(table.select(8.0)[0])] == "16APSK 3/5-L"
    # A hand-made table where the higher threshold is less efficient.
    hand = ModcodTable(("a", "b", "c"), np.array([5.0, 1.0, 3.0]), np.array([2.0, 1.0, 0.5]))
    assert hand.select([0.0, 1.0, 3.0, 4.9, 5.0])[0].tolist() == [-1, 1, 1, 1, 0]
    assert ModcodTable(("x",), np.array([0.0]), np.array([1.5])).select(0.0)[1].tolist() == 1.5
    for names, t, e in ((("a",), [1.0, 2.0], [1.0]), ((), [], [])):
        with pytest.raises(ValueError, match=r"^conflicting sizes: .* \(need the same number, at "):
            ModcodTable(names, np.array(t), np.array(e))


def test_small_closed_forms() -> None:
    # EIRP = P + G - L; received power = EIRP + G_rx - FSPL with FSPL of P.525 eq. (4) written
    # out here; C/N0 = EIRP + G/T - L_path - L - 10 log10(k).
    assert float(linkbudget.eirp_dbw(10.0, 30.0, 2.0)) == 38.0
    assert float(linkbudget.eirp_dbw(10.0, 30.0)) == 40.0
    d, f = 1_000e3, 12e9
    fspl = 20.0 * math.log10(4.0 * math.pi * d * f / C)
    got = linkbudget.received_power_dbw(40.0, 30.0, d, f)
    assert float(got) == pytest.approx(70.0 - fspl, abs=1e-12)
    minus_k_db = -10.0 * math.log10(1.380649e-23)  # 228.599 dB(K Hz / W), SI 2019
    cn0 = linkbudget.cn0_dbhz(40.0, 10.0, 180.0, 3.0)
    assert float(cn0) == pytest.approx(40.0 + 10.0 - 180.0 - 3.0 + minus_k_db, abs=1e-9)
    cn0 = linkbudget.cn0_dbhz(40.0, 10.0, 180.0)
    assert float(cn0) == pytest.approx(-130.0 + minus_k_db, abs=1e-9)
    # Angles between vectors against arccos of the normalised dot product.
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    want = np.arccos(
        np.einsum("ij,ij->i", u, v) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    )
    np.testing.assert_allclose(linkbudget.angle_between_rad(u, v), want, rtol=0, atol=1e-12)
    assert float(linkbudget.angle_between_rad([1.0, 0.0, 0.0], [-1.0, 0.0, 0.0])) == math.pi
    assert float(linkbudget.angle_between_rad([0.0, 0.0, 0.0], [1.0, 0.0, 0.0])) == 0.0


# itur warns that its P.676 approximation is meant for elevations below 90 deg; at zenith it is
# the same formula (the cosecant of 90 deg is 1).
@pytest.mark.filterwarnings("ignore:The approximated method to compute the gaseous")
def test_zenith_gaseous_loss_against_itu_r_p676() -> None:
    # The default zenith losses against ITU-R P.676 (the itur package, Annex 2 approximation
    # and the exact line-by-line model) for the standard atmosphere they are stated for: 7.5
    # g/m^3 water vapour, 1013.25 hPa, 15 deg C; within the +-50 % they claim.
    from itur.models import itu676

    for f_hz, loss_db in linkbudget.ZENITH_LOSS_DB.items():
        for mode in ("approx", "exact"):
            ref = itu676.gaseous_attenuation_slant_path(
                f_hz / 1e9, 90.0, 7.5, 1013.25, 288.15, mode=mode
            )
            ref_db = float(np.asarray(ref.value))
            assert abs(loss_db - ref_db) <= 0.5 * ref_db, (f_hz, mode, loss_db, ref_db)
    # Each default budget uses the zenith loss of its own frequency and the stated margins.
    for prof in (starlink_ku_user(), starlink_ka_feeder()):
        for b in (prof.downlink, prof.uplink):
            assert b.atmospheric_zenith_db == linkbudget.ZENITH_LOSS_DB[b.frequency_hz], b.name
            assert b.other_losses_db == 0.3 and b.implementation_margin_db == 1.0, b.name
    names = [
        (p.name, p.downlink.name, p.uplink.name) for p in (starlink_ku_user(), starlink_ka_feeder())
    ]
    assert names == [
        ("starlink-ku-user", "ku-user-downlink", "ku-user-uplink"),
        ("starlink-ka-feeder", "ka-feeder-downlink", "ka-feeder-uplink"),
    ]


def test_ka_feeder_defaults_by_hand() -> None:
    # Satellite EIRP: 4 dBW/MHz over 250 MHz; gateway G/T: a 1.5 m, 65 % dish at 18.5 GHz over
    # 150 K + 290 K (10^0.12 - 1) (TR 38.821 VSAT noise); uplink EIRP: 10 dBW into the 28.5 GHz
    # dish gain.
    ka = starlink_ka_feeder()
    assert ka.downlink.eirp_dbw == pytest.approx(4.0 + 10.0 * math.log10(250.0), abs=1e-12)
    g_rx = 10.0 * math.log10(0.65 * (math.pi * 1.5 * 18.5e9 / C) ** 2)
    t_sys = 150.0 + 290.0 * (10.0**0.12 - 1.0)
    assert ka.downlink.g_over_t_db_k == pytest.approx(g_rx - 10.0 * math.log10(t_sys), abs=1e-9)
    g_tx = 10.0 * math.log10(0.65 * (math.pi * 1.5 * 28.5e9 / C) ** 2)
    assert ka.uplink.eirp_dbw == pytest.approx(10.0 + g_tx, abs=1e-9)
    assert ka.uplink.g_over_t_db_k == 13.0 and ka.downlink.bandwidth_hz == 250e6


def test_s1528_elliptical_beam_and_far_lobes_by_hand() -> None:
    # ITU-R S.1528-0 recommends 1.2 written out for G_m = 35 dBi, psi_b = 3 deg, L_N = -25 dB,
    # z = 2 (elliptical beam), L_F = 2 dBi: a = 2.58 sqrt(1 - 0.6 log10 2), b = 6.32,
    # X = G_m + L_N + 25 log10(b psi_b), Y = b psi_b 10^(0.04 (G_m + L_N - L_F)) = 39.6 deg,
    # L_B = max(0, 15 + L_N + 0.25 G_m + 5 log10 z) = -1.25 + 1.505 = 0.255 dBi.
    gm, psi_b, ln, lf, z = 35.0, 3.0, -25.0, 2.0, 2.0
    a = 2.58 * math.sqrt(1.0 - 0.6 * math.log10(z))
    b = 6.32
    x = gm + ln + 25.0 * math.log10(b * psi_b)
    y = b * psi_b * 10.0 ** (0.04 * (gm + ln - lf))
    lb = max(0.0, 15.0 + ln + 0.25 * gm + 5.0 * math.log10(z))
    sat = S1528Pattern(gm, math.radians(psi_b), near_sidelobe_db=ln, far_sidelobe_dbi=lf, z=z)
    cases = [
        (0.5 * a * psi_b, gm - 3.0 * (0.5 * a) ** 1.5),
        (a * psi_b, gm - 3.0 * a**1.5),
        (0.5 * (a * psi_b + 0.5 * b * psi_b), gm + ln + 20.0 * math.log10(z)),
        (0.5 * b * psi_b, gm + ln + 20.0 * math.log10(z)),
        (0.75 * b * psi_b, gm + ln),
        (b * psi_b, gm + ln),
        (0.5 * (b * psi_b + y), x - 25.0 * math.log10(0.5 * (b * psi_b + y))),
        (y, x - 25.0 * math.log10(y)),
        (1.01 * y, lf),
        (1.1 * y, lf),
        (0.5 * (y + 90.0), lf),
        (90.0, lf),
        (135.0, lb),
    ]
    assert b * psi_b < y < 90.0
    for psi, want in cases:
        assert float(sat.gain_dbi(math.radians(psi))) == pytest.approx(want, abs=1e-9), psi
    # L_B when 15 + L_N + G_m / 4 is just above 0: 15 - 20 + 5.5 = 0.5 dBi.
    low = S1528Pattern(22.0, math.radians(3.0))
    assert float(low.gain_dbi(math.radians(150.0))) == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(ValueError, match=r"^near_sidelobe_db must be one of -15, -20, -25, -30 "
                       r"\(ITU-R S\.1528 Table 1\), got -17\.0$"):  # fmt: skip
        S1528Pattern(peak_gain_dbi=35.0, half_beamwidth_rad=0.03, near_sidelobe_db=-17.0)
    ap = S1528Pattern.from_aperture(0.7, 14.25e9)
    want_g = 10.0 * math.log10(0.65 * (math.pi * 0.7 * 14.25e9 / C) ** 2)
    assert ap.peak_gain_dbi == pytest.approx(want_g, abs=1e-12)
    ap = S1528Pattern.from_aperture(0.7, 14.25e9, efficiency=0.5, near_sidelobe_db=-15.0)
    assert ap.peak_gain_dbi == pytest.approx(want_g + 10 * math.log10(0.5 / 0.65), abs=1e-12)
    assert ap.near_sidelobe_db == -15.0


def test_dish_main_lobe_and_small_aperture_patterns_by_hand() -> None:
    # S.465 main lobe (RR Appendix 8): G_max - 2.5e-3 (D phi / lambda)^2 above the envelope's
    # value at phi_min; from 48 deg on, -10 dBi.
    dish = S465Pattern(peak_gain_dbi=50.0, diameter_m=2.4, frequency_hz=14e9)
    dl = 2.4 * 14e9 / C
    for phi in (0.2, 0.5):
        want = 50.0 - 2.5e-3 * (dl * phi) ** 2
        assert float(dish.gain_dbi(math.radians(phi))) == pytest.approx(want, abs=1e-9)
    assert float(dish.gain_dbi(math.radians(48.0))) == -10.0
    # A half-wavelength aperture (ka = pi / 2): its Airy pattern is wide, so the gain off the
    # side and at 90 deg is the pattern's, and only behind the aperture the floor.
    f = 10e9
    small = BesselPattern(5.0, 0.5 * C / f, f, floor_dbi=-10.0)
    ka = math.pi / 2.0
    for theta_deg in (70.0, 90.0):
        xx = ka * math.sin(math.radians(theta_deg))
        want = 5.0 + 10.0 * math.log10((2.0 * scipy_j1(xx) / xx) ** 2)
        assert float(small.gain_dbi(math.radians(theta_deg))) == pytest.approx(want, abs=1e-9)
    assert float(small.gain_dbi(math.radians(100.0))) == -10.0
    # Phased array: cos^n scan loss at 75 deg (beyond 60) and the gain_dbi() wrapper passes the
    # scan angle on; from_aperture keeps its exponent and floor.
    ut = PhasedArrayPattern(peak_gain_dbi=34.0, diameter_m=0.5, frequency_hz=11.7e9)
    want = 34.0 + 12.0 * math.log10(math.cos(math.radians(75.0)))
    assert float(ut.gain_dbi(0.0, math.radians(75.0))) == pytest.approx(want, abs=1e-9)
    assert float(gain_dbi(ut, 0.0, normal_rad=math.radians(75.0))) == pytest.approx(want, abs=1e-9)
    pa = PhasedArrayPattern.from_aperture(0.5, 11.7e9, scan_exponent=1.5, floor_dbi=-5.0)
    assert (pa.scan_exponent, pa.floor_dbi) == (1.5, -5.0)
    assert float(pa.gain_dbi(math.pi / 2.0)) == -5.0
    want_g = 10.0 * math.log10(0.65 * (math.pi * 0.5 * 11.7e9 / C) ** 2)
    assert pa.peak_gain_dbi == pytest.approx(want_g, abs=1e-12)


def test_budget_defaults_errors_and_degenerate_inputs() -> None:
    down = starlink_ku_user().downlink
    d, el = np.array([600e3, 900e3]), np.radians([80.0, 40.0])
    # Broadside unless told otherwise; evaluate reports the MODCOD that select() picks.
    zeros = np.zeros(2)
    assert np.array_equal(
        down.carrier_dbw(d, el), down.carrier_dbw(d, el, tx_normal_rad=zeros, rx_normal_rad=zeros)
    )
    q = down.evaluate(d, el)
    want_idx, _ = down.modcods.select(q.sinr_db, margin_db=down.implementation_margin_db)
    assert np.array_equal(q.modcod_idx, want_idx) and q.modcod_idx.dtype == np.int64
    assert np.array_equal(q.sinr_db, q.cnr_db)  # no interference
    # C/(N+I) without I is C/N.
    assert float(sinr_db(2.0, 1.0)) == pytest.approx(10.0 * math.log10(2.0), abs=1e-12)
    # Zero and negative powers and distances give -inf and NaN, without warnings.
    assert linear_to_db([0.0]).tolist() == [-np.inf] and np.isnan(linear_to_db(-1.0))
    assert float(fspl_db(0.0, 1e9)) == -np.inf and np.isnan(fspl_db(-1.0, 1e9))
    for change, pattern in (
        (
            {"frequency_hz": 0.0},
            r"^LinkBudget 'ku-user-downlink': frequency_hz must be > 0, "
            r"got 0\.0$",
        ),
        ({"bandwidth_hz": math.inf}, r"bandwidth_hz must be > 0, got inf$"),
        (
            {"eirp_dbw": math.nan},
            r"^LinkBudget 'ku-user-downlink': eirp_dbw must be finite, got "
            r"nan$",
        ),
    ):
        with pytest.raises(ValueError, match=pattern):
            dataclasses.replace(down, **change)
    # A sub-hertz bandwidth is odd but valid.
    assert dataclasses.replace(down, bandwidth_hz=0.5).bandwidth_hz == 0.5
