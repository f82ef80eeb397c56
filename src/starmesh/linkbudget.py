"""Radio link budgets: path loss, noise, antenna patterns, C/N, C/(N+I) and DVB-S2X capacity.

Everything here is a closed form that runs on whole arrays (one element per link). Levels in dB
carry a suffix naming their reference: ``_dbw`` (dB re 1 W), ``_dbi`` (dB re isotropic),
``_db_k`` (G/T, dB re 1/K), ``_dbhz`` (C/N0). Linear powers are in W (``_w``).

A link budget, for a transmitter of peak EIRP ``EIRP`` and a receiver of peak gain ``G`` and system
noise temperature ``T`` (so ``G/T`` at boresight)::

    C    = EIRP + ΔG_tx - FSPL(d, f) - L_atm(elevation) - L_rain - L_other + G + ΔG_rx   [dBW]
    N    = k T B                                                                         [W]
    SINR = C / (N + I)

where ``ΔG_tx``, ``ΔG_rx`` <= 0 are the antennas' gains towards each other relative to their peak
(the scan loss of a phased array; zero for a dish pointed at its peer) and ``I`` is the power of
interferers received through the receiver's pattern. The capacity is the bandwidth times the
spectral efficiency of the best DVB-S2/S2X MODCOD whose ideal Es/N0 threshold the SINR (less an
implementation margin) reaches; below the most robust MODCOD the link is down (0 bit/s).

References
----------
- ITU-R P.525-4, "Calculation of free-space attenuation".
- 3GPP TR 38.811 V15.4.0, "Study on NR to support non-terrestrial networks", §6.4.1 (satellite
  antenna pattern), §6.6.2 (path loss; atmospheric loss ``A_zenith / sin(elevation)``).
- 3GPP TR 38.821 (Release 16), "Solutions for NR to support non-terrestrial networks", §6.1.3 (link
  budget), Tables 6.1.1.1-1/-3 (satellite and terminal parameters), Table 6.1.3.3-1 (results).
- ITU-R S.465-6, "Reference radiation pattern of earth station antennas in the fixed-satellite
  service for use in coordination and interference assessment (2 to 31 GHz)".
- ITU-R S.1528-0, "Satellite antenna radiation patterns for non-geostationary orbit satellite
  antennas operating in the fixed-satellite service below 30 GHz", recommends 1.2.
- ETSI EN 302 307-1 V1.4.1, Table 13 (DVB-S2), and ETSI EN 302 307-2 V1.1.1, Table 20a (DVB-S2X):
  ideal Es/N0 and spectral efficiency of the normal-FECFRAME MODCODs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import j1

from .constants import C_M_S

#: Boltzmann constant [J/K] (exact, SI 2019 definition).
BOLTZMANN_J_K = 1.380649e-23
#: Boltzmann constant in dB(W/K/Hz): -228.5992 (link budgets often round it to -228.6).
BOLTZMANN_DBW_K_HZ = 10.0 * math.log10(BOLTZMANN_J_K)
#: Reference temperature of noise figures [K] (IEEE / ITU-R convention).
T0_K = 290.0

FloatArray = NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# dB arithmetic, path loss, noise
# --------------------------------------------------------------------------------------------


def db_to_linear(x_db: ArrayLike) -> FloatArray:
    """``10^(x/10)``, elementwise."""
    return np.power(10.0, np.asarray(x_db, dtype=np.float64) / 10.0)


def linear_to_db(x: ArrayLike) -> FloatArray:
    """``10 log10(x)``, elementwise; ``-inf`` for 0, NaN for negative or NaN input."""
    a = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(a)


def fspl_db(distance_m: ArrayLike, frequency_hz: ArrayLike) -> FloatArray:
    """Free-space path loss ``20 log10(4 pi d f / c)``.

    Parameters
    ----------
    distance_m : array_like
        Path length [m], > 0.
    frequency_hz : array_like
        Carrier frequency [Hz]; broadcast against ``distance_m``.

    Returns
    -------
    ndarray
        Loss [dB]; ``92.45 + 20 log10(d / km) + 20 log10(f / GHz)``.

    References
    ----------
    ITU-R P.525-4, eq. (4).

    Examples
    --------
    >>> round(float(fspl_db(1e3, 1e9)), 3)
    92.448
    """
    d = np.asarray(distance_m, dtype=np.float64)
    f = np.asarray(frequency_hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 20.0 * np.log10(4.0 * np.pi * d * f / C_M_S)


def thermal_noise_dbw(temperature_k: ArrayLike, bandwidth_hz: ArrayLike) -> FloatArray:
    """Thermal noise power ``k T B`` [dBW].

    Examples
    --------
    >>> round(float(thermal_noise_dbw(290.0, 1.0)), 2)  # -174 dBm/Hz
    -203.98
    """
    t = np.asarray(temperature_k, dtype=np.float64)
    b = np.asarray(bandwidth_hz, dtype=np.float64)
    return linear_to_db(BOLTZMANN_J_K * t * b)


def system_noise_temperature_k(
    antenna_temperature_k: ArrayLike, noise_figure_db: ArrayLike
) -> FloatArray:
    """System noise temperature ``T_a + T0 (10^(NF/10) - 1)`` at the antenna port [K].

    3GPP TR 38.821 §6.1.3.1 writes the equivalent ``G/T = G - NF - 10 log10(T0 + (T_a - T0)
    10^(-NF/10))``.
    """
    ta = np.asarray(antenna_temperature_k, dtype=np.float64)
    nf = np.asarray(noise_figure_db, dtype=np.float64)
    return ta + T0_K * (db_to_linear(nf) - 1.0)


def g_over_t_db_k(gain_dbi: ArrayLike, system_temperature_k: ArrayLike) -> FloatArray:
    """Receiver figure of merit ``G/T = G - 10 log10(T)`` [dB/K]."""
    return np.asarray(gain_dbi, dtype=np.float64) - linear_to_db(system_temperature_k)


def eirp_dbw(
    tx_power_dbw: ArrayLike, gain_dbi: ArrayLike, losses_db: ArrayLike = 0.0
) -> FloatArray:
    """``EIRP = P_tx + G_tx - L_feed`` [dBW]."""
    return (
        np.asarray(tx_power_dbw, dtype=np.float64)
        + np.asarray(gain_dbi, dtype=np.float64)
        - np.asarray(losses_db, dtype=np.float64)
    )


def cn0_dbhz(
    eirp_dbw: ArrayLike,
    g_over_t_db_k: ArrayLike,
    path_loss_db: ArrayLike,
    losses_db: ArrayLike = 0.0,
) -> FloatArray:
    """Carrier to noise density ``C/N0 = EIRP + G/T - L_path - L - k`` [dBHz]."""
    return (
        np.asarray(eirp_dbw, dtype=np.float64)
        + np.asarray(g_over_t_db_k, dtype=np.float64)
        - np.asarray(path_loss_db, dtype=np.float64)
        - np.asarray(losses_db, dtype=np.float64)
        - BOLTZMANN_DBW_K_HZ
    )


def cnr_db(
    eirp_dbw: ArrayLike,
    g_over_t_db_k: ArrayLike,
    path_loss_db: ArrayLike,
    bandwidth_hz: ArrayLike,
    losses_db: ArrayLike = 0.0,
) -> FloatArray:
    """Carrier to noise ratio in a bandwidth: ``C/N = C/N0 - 10 log10(B)`` [dB].

    This is 3GPP TR 38.821 eq. (6.1.3.1-1): ``CNR = EIRP + G/T - k - PL_FS - PL_A - PL_SM - PL_SL -
    PL_AD - 10 log10(B)``; pass the sum of the extra losses as ``losses_db``.

    Examples
    --------
    TR 38.821 Table 6.1.3.3-1, case SC6 downlink (LEO-600 at 30 deg elevation, 20 GHz):

    >>> round(float(cnr_db(4.0 + 10 * np.log10(400), 15.86, 179.1, 400e6, 0.5 + 0.3)), 1)
    8.6
    """
    return cn0_dbhz(eirp_dbw, g_over_t_db_k, path_loss_db, losses_db) - linear_to_db(bandwidth_hz)


def sinr_db(
    carrier_w: ArrayLike, noise_w: ArrayLike, interference_w: ArrayLike = 0.0
) -> FloatArray:
    """``C / (N + I)`` [dB] from linear powers [W]."""
    c = np.asarray(carrier_w, dtype=np.float64)
    n = np.asarray(noise_w, dtype=np.float64)
    i = np.asarray(interference_w, dtype=np.float64)
    return linear_to_db(c / (n + i))


def received_power_dbw(
    eirp_dbw: ArrayLike, rx_gain_dbi: ArrayLike, distance_m: ArrayLike, frequency_hz: ArrayLike
) -> FloatArray:
    """Power at a receiver's port in free space, ``EIRP + G_rx - FSPL`` [dBW]."""
    return (
        np.asarray(eirp_dbw, dtype=np.float64)
        + np.asarray(rx_gain_dbi, dtype=np.float64)
        - fspl_db(distance_m, frequency_hz)
    )


def atmospheric_loss_db(zenith_loss_db: float, elevation_rad: ArrayLike) -> FloatArray:
    """Gaseous loss on a slant path, ``A_zenith / sin(elevation)`` (3GPP TR 38.811 eq. 6.6-8).

    The cosecant law is stated for elevations of at least 10 deg; lower elevations are taken
    at 10 deg, so the loss stays finite at the horizon.
    """
    el = np.maximum(np.asarray(elevation_rad, dtype=np.float64), math.radians(10.0))
    return zenith_loss_db / np.sin(el)


def aperture_gain_dbi(diameter_m: float, frequency_hz: float, efficiency: float = 0.65) -> float:
    """Peak gain of a circular aperture, ``10 log10(eta (pi D f / c)^2)`` [dBi].

    Examples
    --------
    >>> round(aperture_gain_dbi(0.5, 20e9, 0.65), 1)  # TR 38.821: 0.5 m at Ka, 38.5 dBi
    38.5
    """
    return 10.0 * math.log10(efficiency * (math.pi * diameter_m * frequency_hz / C_M_S) ** 2)


def angle_between_rad(u: ArrayLike, v: ArrayLike) -> FloatArray:
    """Angle between vectors along the last axis, ``atan2(|u x v|, u . v)`` (accurate near 0
    and pi) [rad]; 0 where either vector is zero.

    Parameters
    ----------
    u, v : array_like, shape (..., 3)
        Broadcast against each other.

    Returns
    -------
    ndarray, shape (...)
    """
    a = np.asarray(u, dtype=np.float64)
    b = np.asarray(v, dtype=np.float64)
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = np.einsum("...i,...i->...", a, b)
    return np.arctan2(cross, dot)


# --------------------------------------------------------------------------------------------
# Antenna patterns
# --------------------------------------------------------------------------------------------


class AntennaPattern(Protocol):
    """An antenna's gain towards a direction, given its angle from the beam axis and, for
    electronically steered arrays, its angle from the panel normal."""

    @property
    def peak_gain_dbi(self) -> float: ...

    def gain_dbi(self, off_axis_rad: ArrayLike, normal_rad: ArrayLike | None = None) -> FloatArray:
        """Gain [dBi] towards directions ``off_axis_rad`` from the beam axis."""
        ...


def _as_off_axis_deg(off_axis_rad: ArrayLike) -> FloatArray:
    """|angle| folded into [0, 180] deg."""
    phi = np.abs(np.asarray(off_axis_rad, dtype=np.float64))
    return np.degrees(np.minimum(phi, np.pi))


@dataclass(frozen=True)
class S465Pattern:
    """Earth-station dish, ITU-R S.465-6 reference pattern.

    Side lobes (recommends 2)::

        G(phi) = 32 - 25 log10(phi)   dBi   for phi_min <= phi < 48 deg
               = -10                  dBi   for 48 deg <= phi <= 180 deg

    with ``phi_min = max(1 deg, 100 lambda/D)`` for ``D/lambda >= 50`` and ``max(2 deg, 114
    (D/lambda)^-1.09)`` otherwise. S.465 leaves the main lobe (``phi < phi_min``) undefined; here
    it is the Radio Regulations Appendix 8 main lobe ``G_max - 2.5e-3 (D phi / lambda)^2``, not
    below the side-lobe envelope's value at ``phi_min`` (so the pattern never rises again past the
    main lobe).

    Parameters
    ----------
    peak_gain_dbi : float
        On-axis gain [dBi].
    diameter_m : float
        Dish diameter [m].
    frequency_hz : float
        Frequency [Hz].
    """

    peak_gain_dbi: float
    diameter_m: float
    frequency_hz: float

    @property
    def d_over_lambda(self) -> float:
        """Diameter in wavelengths."""
        return self.diameter_m * self.frequency_hz / C_M_S

    @property
    def phi_min_deg(self) -> float:
        """Where the side-lobe envelope starts [deg]."""
        dl = self.d_over_lambda
        if dl >= 50.0:
            return max(1.0, 100.0 / dl)
        return max(2.0, 114.0 * dl**-1.09)

    def gain_dbi(self, off_axis_rad: ArrayLike, normal_rad: ArrayLike | None = None) -> FloatArray:
        """Gain [dBi] at off-axis angles (``normal_rad`` is ignored: a dish points mechanically).

        Examples
        --------
        >>> dish = S465Pattern(peak_gain_dbi=47.0, diameter_m=1.5, frequency_hz=18.5e9)
        >>> [round(float(g), 2) for g in dish.gain_dbi(np.radians([10.0, 30.0, 60.0]))]
        [7.0, -4.93, -10.0]
        """
        phi = _as_off_axis_deg(off_axis_rad)
        phi_min = self.phi_min_deg
        with np.errstate(divide="ignore"):
            side = np.where(phi < 48.0, 32.0 - 25.0 * np.log10(np.maximum(phi, phi_min)), -10.0)
        plateau = 32.0 - 25.0 * math.log10(phi_min)
        main = self.peak_gain_dbi - 2.5e-3 * (self.d_over_lambda * phi) ** 2
        main = np.minimum(self.peak_gain_dbi, np.maximum(main, plateau))
        return np.asarray(np.where(phi < phi_min, main, side), dtype=np.float64)


#: ITU-R S.1528 recommends 1.2, Table 1: ``a = 2.58 sqrt(1 - c log10 z)`` for each near-in
#: side-lobe level ``L_N`` [dB].
_S1528_A_COEFF = {-15.0: 1.4, -20.0: 1.0, -25.0: 0.6, -30.0: 0.4}


@dataclass(frozen=True)
class S1528Pattern:
    """Non-GSO satellite antenna, ITU-R S.1528-0 recommends 1.2 reference pattern.

    With ``psi`` the off-axis angle and ``psi_b`` the half 3 dB beamwidth, both in degrees::

        G = G_m - 3 (psi/psi_b)^alpha        for psi <= a psi_b
          = G_m + L_N + 20 log10(z)          for a psi_b < psi <= 0.5 b psi_b
          = G_m + L_N                        for 0.5 b psi_b < psi <= b psi_b
          = X - 25 log10(psi)                for b psi_b < psi <= Y
          = L_F                              for Y < psi <= 90
          = L_B                              for 90 < psi <= 180

    with ``b = 6.32``, ``alpha = 1.5``, ``a`` from Table 1, ``X = G_m + L_N + 25 log10(b psi_b)``,
    ``Y = b psi_b 10^(0.04 (G_m + L_N - L_F))`` and ``L_B = max(0, 15 + L_N + 0.25 G_m + 5 log10
    z)`` dBi.

    Parameters
    ----------
    peak_gain_dbi : float
        ``G_m`` [dBi].
    half_beamwidth_rad : float
        ``psi_b``, one half of the 3 dB beamwidth [rad].
    near_sidelobe_db : {-15, -20, -25, -30}
        ``L_N``, near-in side-lobe level relative to the peak [dB].
    far_sidelobe_dbi : float
        ``L_F`` [dBi] (0 dBi in the Recommendation).
    z : float
        Major/minor axis ratio of the beam (1 for a circular beam).
    """

    peak_gain_dbi: float
    half_beamwidth_rad: float
    near_sidelobe_db: float = -20.0
    far_sidelobe_dbi: float = 0.0
    z: float = 1.0

    def __post_init__(self) -> None:
        if float(self.near_sidelobe_db) not in _S1528_A_COEFF:
            raise ValueError(
                "near_sidelobe_db must be one of -15, -20, -25, -30 (ITU-R S.1528 Table 1), got "
                f"{self.near_sidelobe_db!r}"
            )

    @classmethod
    def from_aperture(
        cls,
        diameter_m: float,
        frequency_hz: float,
        *,
        efficiency: float = 0.65,
        near_sidelobe_db: float = -20.0,
    ) -> S1528Pattern:
        """Pattern of a circular aperture: ``psi_b = sqrt(1200) / (D/lambda)`` deg (S.1528 note
        to recommends 1.2) and the gain of :func:`aperture_gain_dbi`."""
        psi_b_deg = math.sqrt(1200.0) / (diameter_m * frequency_hz / C_M_S)
        return cls(
            peak_gain_dbi=aperture_gain_dbi(diameter_m, frequency_hz, efficiency),
            half_beamwidth_rad=math.radians(psi_b_deg),
            near_sidelobe_db=near_sidelobe_db,
        )

    def gain_dbi(self, off_axis_rad: ArrayLike, normal_rad: ArrayLike | None = None) -> FloatArray:
        """Gain [dBi] at off-axis angles (``normal_rad`` is ignored: the pattern is specified
        about the beam axis).

        Examples
        --------
        >>> sat = S1528Pattern(peak_gain_dbi=35.0, half_beamwidth_rad=np.radians(2.0))
        >>> [round(float(g), 2) for g in sat.gain_dbi(np.radians([0.0, 2.0, 10.0, 80.0]))]
        [35.0, 32.0, 15.0, 0.0]
        """
        psi = _as_off_axis_deg(off_axis_rad)
        gm, ln, lf, z = (
            self.peak_gain_dbi,
            float(self.near_sidelobe_db),
            self.far_sidelobe_dbi,
            self.z,
        )
        psi_b = math.degrees(self.half_beamwidth_rad)
        a = 2.58 * math.sqrt(1.0 - _S1528_A_COEFF[ln] * math.log10(z))
        b, alpha = 6.32, 1.5
        x = gm + ln + 25.0 * math.log10(b * psi_b)
        y = b * psi_b * 10.0 ** (0.04 * (gm + ln - lf))
        lb = max(0.0, 15.0 + ln + 0.25 * gm + 5.0 * math.log10(z))
        with np.errstate(divide="ignore"):
            far = x - 25.0 * np.log10(np.maximum(psi, 1e-300))
        return np.asarray(
            np.select(
                [psi <= a * psi_b, psi <= 0.5 * b * psi_b, psi <= b * psi_b, psi <= y, psi <= 90.0],
                [
                    gm - 3.0 * (psi / psi_b) ** alpha,
                    gm + ln + 20.0 * math.log10(z),
                    gm + ln,
                    far,
                    lf,
                ],
                default=lb,
            ),
            dtype=np.float64,
        )


def _airy(x: FloatArray) -> FloatArray:
    """Normalised power pattern of a uniformly lit circular aperture, ``(2 J1(x) / x)^2``."""
    safe = np.where(x == 0.0, 1.0, x)
    return np.where(x == 0.0, 1.0, (2.0 * j1(safe) / safe) ** 2)


#: Where the Airy pattern meets its side-lobe envelope ``8 / (pi x^3)`` (from ``J1(x)^2 <=
#: 2 / (pi x)``) after the main lobe's half-power point; -7.59 dB below the peak.
AIRY_ENVELOPE_X = 2.444457583997394


@dataclass(frozen=True)
class BesselPattern:
    """Satellite antenna of 3GPP TR 38.811 §6.4.1: a uniformly lit circular aperture of radius
    ``a``::

        G(theta) = G_max 4 |J1(k a sin theta) / (k a sin theta)|^2    for 0 < theta <= 90 deg

    and ``G_max`` on axis. Behind the aperture (``theta > 90 deg``) and in the pattern's nulls the
    gain is ``floor_dbi``.

    Parameters
    ----------
    peak_gain_dbi : float
        ``G_max`` [dBi].
    diameter_m : float
        Aperture diameter ``2 a`` [m].
    frequency_hz : float
        Frequency [Hz].
    floor_dbi : float
        Lowest gain returned [dBi].
    """

    peak_gain_dbi: float
    diameter_m: float
    frequency_hz: float
    floor_dbi: float = -10.0

    def gain_dbi(self, off_axis_rad: ArrayLike, normal_rad: ArrayLike | None = None) -> FloatArray:
        """Gain [dBi] at off-axis angles (``normal_rad`` is ignored)."""
        theta = np.radians(_as_off_axis_deg(off_axis_rad))
        ka = math.pi * self.diameter_m * self.frequency_hz / C_M_S
        lin = _airy(ka * np.sin(theta))
        g = self.peak_gain_dbi + linear_to_db(np.maximum(lin, 1e-300))
        g = np.where(theta > np.pi / 2.0, self.floor_dbi, g)
        return np.asarray(np.maximum(g, self.floor_dbi), dtype=np.float64)


@dataclass(frozen=True)
class PhasedArrayPattern:
    """Parametric electronically steered flat panel (user terminal or satellite array).

    The gain towards a direction at ``off_axis`` from the steered beam and ``normal`` from the
    panel's normal is the product of an element factor and an array factor::

        G = max(G_floor, G_peak + 10 n log10(cos normal) + AF(k a sin off_axis))   [dBi]

    - the element factor ``cos^n`` is the scan loss (``n = 1`` is the projected-aperture limit;
      practical arrays lose more, ``n`` of about 1.2 to 1.5), and it sends the gain to the floor
      for directions in or behind the panel's plane (a ground jammer near the horizon of an
      up-facing terminal);
    - the array factor is the main lobe of a uniformly lit circular aperture ``(2 J1(x)/x)^2``
      down to where it meets the envelope of its side lobes, ``8 / (pi x^3)``, which is used
      beyond (an envelope, not the nulls, as reference patterns for interference do);
    - ``G_floor`` stands for the far side lobes and back lobe (-10 dBi as in ITU-R S.465).

    Beam broadening with scan (the array factor is a function of direction cosines in the panel
    plane) is not modelled: the main lobe keeps its broadside width at every scan angle.

    Parameters
    ----------
    peak_gain_dbi : float
        Broadside gain [dBi].
    diameter_m : float
        Diameter of the circular aperture of equal area [m].
    frequency_hz : float
        Frequency [Hz].
    scan_exponent : float
        ``n`` of the ``cos^n`` element factor.
    floor_dbi : float
        Lowest gain [dBi].
    """

    peak_gain_dbi: float
    diameter_m: float
    frequency_hz: float
    scan_exponent: float = 1.2
    floor_dbi: float = -10.0

    @classmethod
    def from_aperture(
        cls,
        diameter_m: float,
        frequency_hz: float,
        *,
        efficiency: float = 0.65,
        scan_exponent: float = 1.2,
        floor_dbi: float = -10.0,
    ) -> PhasedArrayPattern:
        """Array whose broadside gain is that of :func:`aperture_gain_dbi`."""
        return cls(
            peak_gain_dbi=aperture_gain_dbi(diameter_m, frequency_hz, efficiency),
            diameter_m=diameter_m,
            frequency_hz=frequency_hz,
            scan_exponent=scan_exponent,
            floor_dbi=floor_dbi,
        )

    def gain_dbi(self, off_axis_rad: ArrayLike, normal_rad: ArrayLike | None = None) -> FloatArray:
        """Gain [dBi].

        Parameters
        ----------
        off_axis_rad : array_like
            Angle from the steered beam direction [rad].
        normal_rad : array_like, optional
            Angle of the same direction from the panel normal [rad]; broadside (0) if omitted.

        Examples
        --------
        >>> ut = PhasedArrayPattern(peak_gain_dbi=34.0, diameter_m=0.5, frequency_hz=11.7e9)
        >>> round(float(ut.gain_dbi(0.0, np.radians(60.0))), 2)  # scanned 60 deg: 1.2 x 3.01 dB
        30.39
        >>> float(ut.gain_dbi(np.radians(50.0), np.radians(89.0)))  # a jammer on the horizon
        -10.0
        """
        off = np.minimum(np.abs(np.asarray(off_axis_rad, dtype=np.float64)), np.pi / 2.0)
        normal = (
            np.zeros(np.shape(off))
            if normal_rad is None
            else np.abs(np.asarray(normal_rad, dtype=np.float64))
        )
        ka = math.pi * self.diameter_m * self.frequency_hz / C_M_S
        x = ka * np.sin(off)
        with np.errstate(divide="ignore"):
            af = np.where(
                x <= AIRY_ENVELOPE_X, _airy(x), 8.0 / (np.pi * np.maximum(x, AIRY_ENVELOPE_X) ** 3)
            )
        cos_n = np.cos(np.minimum(normal, np.pi / 2.0))
        element = np.where(normal < np.pi / 2.0, np.maximum(cos_n, 0.0) ** self.scan_exponent, 0.0)
        lin = element * af
        g = self.peak_gain_dbi + linear_to_db(np.maximum(lin, 1e-300))
        return np.asarray(np.maximum(g, self.floor_dbi), dtype=np.float64)


Pattern = S465Pattern | S1528Pattern | BesselPattern | PhasedArrayPattern


def gain_dbi(
    pattern: AntennaPattern, off_axis_rad: ArrayLike, *, normal_rad: ArrayLike | None = None
) -> FloatArray:
    """Gain of ``pattern`` [dBi] towards directions at ``off_axis_rad`` from its beam axis and,
    for electronically steered arrays, ``normal_rad`` from its panel normal.

    Parameters
    ----------
    pattern : S465Pattern, S1528Pattern, BesselPattern or PhasedArrayPattern
    off_axis_rad : array_like
        Off-axis angle [rad].
    normal_rad : array_like, optional
        Angle from the panel normal [rad] (phased arrays only).

    Returns
    -------
    ndarray
        Broadcast shape of the angles.

    Examples
    --------
    >>> dish = S465Pattern(peak_gain_dbi=50.0, diameter_m=2.4, frequency_hz=14e9)
    >>> round(float(gain_dbi(dish, np.radians(20.0))), 2)
    -0.53
    """
    return pattern.gain_dbi(off_axis_rad, normal_rad)


# --------------------------------------------------------------------------------------------
# DVB-S2 / S2X MODCODs
# --------------------------------------------------------------------------------------------

# (name, ideal Es/N0 [dB] in AWGN, spectral efficiency [bit/symbol]) of the normal-FECFRAME
# (64,800 bit) MODCODs without pilots.
# DVB-S2: ETSI EN 302 307-1 V1.4.1, Table 13 (packet error rate 1e-7).
_DVB_S2 = (
    ("QPSK 1/4", -2.35, 0.490243),
    ("QPSK 1/3", -1.24, 0.656448),
    ("QPSK 2/5", -0.30, 0.789412),
    ("QPSK 1/2", 1.00, 0.988858),
    ("QPSK 3/5", 2.23, 1.188304),
    ("QPSK 2/3", 3.10, 1.322253),
    ("QPSK 3/4", 4.03, 1.487473),
    ("QPSK 4/5", 4.68, 1.587196),
    ("QPSK 5/6", 5.18, 1.654663),
    ("QPSK 8/9", 6.20, 1.766451),
    ("QPSK 9/10", 6.42, 1.788612),
    ("8PSK 3/5", 5.50, 1.779991),
    ("8PSK 2/3", 6.62, 1.980636),
    ("8PSK 3/4", 7.91, 2.228124),
    ("8PSK 5/6", 9.35, 2.478562),
    ("8PSK 8/9", 10.69, 2.646012),
    ("8PSK 9/10", 10.98, 2.679207),
    ("16APSK 2/3", 8.97, 2.637201),
    ("16APSK 3/4", 10.21, 2.966728),
    ("16APSK 4/5", 11.03, 3.165623),
    ("16APSK 5/6", 11.61, 3.300184),
    ("16APSK 8/9", 12.89, 3.523143),
    ("16APSK 9/10", 13.13, 3.567342),
    ("32APSK 3/4", 12.73, 3.703295),
    ("32APSK 4/5", 13.64, 3.951571),
    ("32APSK 5/6", 14.28, 4.119540),
    ("32APSK 8/9", 15.69, 4.397854),
    ("32APSK 9/10", 16.05, 4.453027),
)
# DVB-S2X: ETSI EN 302 307-2 V1.1.1, Table 20a (packet error rate 1e-5), without the VL-SNR
# set (BPSK, QPSK 2/9). Efficiencies as given in the table: recomputing 64APSK 5/6 and 128APSK
# from the frame lengths gives values 0.06 to 0.14 % higher, immaterial here.
_DVB_S2X = (
    ("QPSK 13/45", -2.03, 0.567805),
    ("QPSK 9/20", 0.22, 0.889135),
    ("QPSK 11/20", 1.45, 1.088581),
    ("8APSK 5/9-L", 4.73, 1.647211),
    ("8APSK 26/45-L", 5.13, 1.713601),
    ("8PSK 23/36", 6.12, 1.896173),
    ("8PSK 25/36", 7.02, 2.062148),
    ("8PSK 13/18", 7.49, 2.145136),
    ("16APSK 1/2-L", 5.97, 1.972253),
    ("16APSK 8/15-L", 6.55, 2.104850),
    ("16APSK 5/9-L", 6.84, 2.193247),
    ("16APSK 26/45", 7.51, 2.281645),
    ("16APSK 3/5", 7.80, 2.370043),
    ("16APSK 3/5-L", 7.41, 2.370043),
    ("16APSK 28/45", 8.10, 2.458441),
    ("16APSK 23/36", 8.38, 2.524739),
    ("16APSK 2/3-L", 8.43, 2.635236),
    ("16APSK 25/36", 9.27, 2.745734),
    ("16APSK 13/18", 9.71, 2.856231),
    ("16APSK 7/9", 10.65, 3.077225),
    ("16APSK 77/90", 11.99, 3.386618),
    ("32APSK 2/3-L", 11.10, 3.289502),
    ("32APSK 32/45", 11.75, 3.510192),
    ("32APSK 11/15", 12.17, 3.620536),
    ("32APSK 7/9", 13.05, 3.841226),
    ("64APSK 32/45-L", 13.98, 4.206428),
    ("64APSK 11/15", 14.81, 4.338659),
    ("64APSK 7/9", 15.47, 4.603122),
    ("64APSK 4/5", 15.87, 4.735354),
    ("64APSK 5/6", 16.55, 4.933701),
    ("128APSK 3/4", 17.73, 5.163248),
    ("128APSK 7/9", 18.53, 5.355556),
    ("256APSK 29/45-L", 16.98, 5.065690),
    ("256APSK 2/3-L", 17.24, 5.241514),
    ("256APSK 31/45-L", 18.10, 5.417338),
    ("256APSK 32/45", 18.59, 5.593162),
    ("256APSK 11/15-L", 18.84, 5.768987),
    ("256APSK 3/4", 19.57, 5.900855),
)


@dataclass(frozen=True, eq=False)
class ModcodTable:
    """A set of MODCODs for adaptive coding and modulation.

    Parameters
    ----------
    names : tuple of str, length M
    esn0_db : ndarray, shape (M,)
        Threshold Es/N0 [dB] of each MODCOD.
    efficiency : ndarray, shape (M,)
        Spectral efficiency [bit/s/Hz] (information bits per symbol).
    """

    names: tuple[str, ...]
    esn0_db: FloatArray
    efficiency: FloatArray
    _thresholds: FloatArray = field(init=False, repr=False)
    _best: NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        thr = np.array(self.esn0_db, dtype=np.float64)
        eff = np.array(self.efficiency, dtype=np.float64)
        if not (len(self.names) == thr.size == eff.size) or thr.size == 0:
            raise ValueError(
                f"conflicting sizes: {len(self.names)} names, {thr.size} thresholds, "
                f"{eff.size} efficiencies (need the same number, at least 1)"
            )
        order = np.argsort(thr, kind="stable")
        # best[k]: among the k + 1 lowest thresholds, the MODCOD of highest efficiency (a higher
        # threshold does not always buy efficiency: 16APSK 1/2-L needs less than 8PSK 23/36).
        best = np.empty(thr.size, dtype=np.int64)
        current = int(order[0])
        for k, m in enumerate(order):
            if eff[m] > eff[current]:
                current = int(m)
            best[k] = current
        for name, arr in (("esn0_db", thr), ("efficiency", eff)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "_thresholds", thr[order])
        object.__setattr__(self, "_best", best)

    @classmethod
    def from_rows(cls, rows: tuple[tuple[str, float, float], ...]) -> ModcodTable:
        """From ``(name, esn0_db, efficiency)`` rows."""
        return cls(
            names=tuple(r[0] for r in rows),
            esn0_db=np.array([r[1] for r in rows]),
            efficiency=np.array([r[2] for r in rows]),
        )

    def select(
        self, sinr_db: ArrayLike, *, margin_db: float = 0.0
    ) -> tuple[NDArray[np.int64], FloatArray]:
        """Best MODCOD whose threshold is at most ``sinr_db - margin_db``.

        Parameters
        ----------
        sinr_db : array_like
            Es/N0 or SINR [dB]; NaN means no link.
        margin_db : float
            Implementation margin [dB] taken off the SINR before the lookup.

        Returns
        -------
        modcod_idx : ndarray of int64
            Row of the chosen MODCOD; -1 below the most robust one (the link is down).
        efficiency : ndarray
            Its spectral efficiency [bit/s/Hz]; 0 where the link is down.
        """
        s = np.asarray(sinr_db, dtype=np.float64) - margin_db
        pos = np.searchsorted(self._thresholds, np.where(np.isnan(s), -np.inf, s), side="right") - 1
        ok = pos >= 0
        idx = np.where(ok, self._best[np.maximum(pos, 0)], -1).astype(np.int64)
        eff = np.where(ok, self.efficiency[np.maximum(idx, 0)], 0.0)
        return idx, np.asarray(eff, dtype=np.float64)


#: DVB-S2 and DVB-S2X normal-frame MODCODs, QPSK 1/4 to 256APSK 3/4 (66 rows).
DVB_S2X = ModcodTable.from_rows(_DVB_S2 + _DVB_S2X)


def capacity_bps(
    sinr_db: ArrayLike,
    bandwidth_hz: ArrayLike,
    *,
    table: ModcodTable = DVB_S2X,
    implementation_margin_db: float = 0.0,
) -> FloatArray:
    """Link capacity ``B x efficiency`` of the best MODCOD the SINR supports [bit/s].

    The SINR is taken as the Es/N0 of a carrier filling the bandwidth at one symbol per hertz
    (zero roll-off); below the table's lowest threshold the capacity is 0.

    Examples
    --------
    >>> capacity_bps([-5.0, 10.0, 30.0], 240e6, implementation_margin_db=1.0) / 1e6
    array([   0.     ,  632.92824, 1416.2052 ])
    """
    _, eff = table.select(sinr_db, margin_db=implementation_margin_db)
    return eff * np.asarray(bandwidth_hz, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Link budgets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkBudget:
    """The fixed parameters of one link direction.

    Parameters
    ----------
    name : str
        Label, e.g. ``"ku-user-downlink"``.
    frequency_hz : float
        Centre frequency of the channel [Hz].
    bandwidth_hz : float
        Channel bandwidth [Hz].
    eirp_dbw : float
        Transmitter EIRP in the channel at its boresight (broadside) [dBW].
    tx_antenna, rx_antenna : AntennaPattern
        Patterns; the gains towards each other relative to their peaks enter the budget (the
        scan loss of a phased array).
    g_over_t_db_k : float
        Receiver G/T at boresight [dB/K]; with ``rx_antenna.peak_gain_dbi`` it fixes the system
        noise temperature.
    atmospheric_zenith_db : float
        Clear-air gaseous loss at zenith [dB], scaled by ``1/sin(elevation)``.
    rain_margin_db : float
        Rain fade allowance [dB] (0: clear sky).
    other_losses_db : float
        Scintillation, polarisation, pointing [dB].
    implementation_margin_db : float
        Margin between the modem's ideal MODCOD thresholds and the SINR [dB].
    modcods : ModcodTable
        Adaptive coding and modulation table.
    """

    name: str
    frequency_hz: float
    bandwidth_hz: float
    eirp_dbw: float
    tx_antenna: Pattern
    rx_antenna: Pattern
    g_over_t_db_k: float
    atmospheric_zenith_db: float = 0.0
    rain_margin_db: float = 0.0
    other_losses_db: float = 0.0
    implementation_margin_db: float = 1.0
    modcods: ModcodTable = DVB_S2X

    def __post_init__(self) -> None:
        for attr in ("frequency_hz", "bandwidth_hz"):
            v = getattr(self, attr)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"LinkBudget {self.name!r}: {attr} must be > 0, got {v!r}")
        for attr in ("eirp_dbw", "g_over_t_db_k", "rain_margin_db", "other_losses_db"):
            v = getattr(self, attr)
            if not math.isfinite(v):
                raise ValueError(f"LinkBudget {self.name!r}: {attr} must be finite, got {v!r}")

    @property
    def noise_temperature_k(self) -> float:
        """System noise temperature ``10^((G_peak - G/T)/10)`` [K]."""
        return 10.0 ** ((self.rx_antenna.peak_gain_dbi - self.g_over_t_db_k) / 10.0)

    @property
    def noise_w(self) -> float:
        """Thermal noise in the channel, ``k T B`` [W]."""
        return BOLTZMANN_J_K * self.noise_temperature_k * self.bandwidth_hz

    def carrier_dbw(
        self,
        distance_m: ArrayLike,
        elevation_rad: ArrayLike,
        *,
        tx_normal_rad: ArrayLike = 0.0,
        rx_normal_rad: ArrayLike = 0.0,
    ) -> FloatArray:
        """Wanted carrier power at the receiver's port [dBW].

        Parameters
        ----------
        distance_m : array_like, shape (L,)
            Slant range [m].
        elevation_rad : array_like, shape (L,)
            Elevation of the satellite at the ground end [rad] (for the atmospheric loss).
        tx_normal_rad, rx_normal_rad : array_like, shape (L,)
            Angle of the link from each antenna's normal (the scan angle) [rad].
        """
        tx = self.tx_antenna
        rx = self.rx_antenna
        return (
            self.eirp_dbw
            + (tx.gain_dbi(0.0, tx_normal_rad) - tx.peak_gain_dbi)
            + rx.gain_dbi(0.0, rx_normal_rad)
            - fspl_db(distance_m, self.frequency_hz)
            - atmospheric_loss_db(self.atmospheric_zenith_db, elevation_rad)
            - self.rain_margin_db
            - self.other_losses_db
        )

    def evaluate(
        self,
        distance_m: ArrayLike,
        elevation_rad: ArrayLike,
        *,
        tx_normal_rad: ArrayLike = 0.0,
        rx_normal_rad: ArrayLike = 0.0,
        interference_w: ArrayLike = 0.0,
    ) -> LinkQuality:
        """C/N, C/(N+I) and capacity of links.

        Parameters
        ----------
        distance_m, elevation_rad, tx_normal_rad, rx_normal_rad : array_like, shape (L,)
            As for :meth:`carrier_dbw`.
        interference_w : array_like, shape (L,)
            Interference at the receiver's port in the channel [W].

        Returns
        -------
        LinkQuality
        """
        c_w = db_to_linear(
            self.carrier_dbw(
                distance_m, elevation_rad, tx_normal_rad=tx_normal_rad, rx_normal_rad=rx_normal_rad
            )
        )
        n_w = self.noise_w
        cnr = linear_to_db(c_w / n_w)
        sinr = sinr_db(c_w, n_w, interference_w)
        idx, eff = self.modcods.select(sinr, margin_db=self.implementation_margin_db)
        return LinkQuality(
            cnr_db=np.asarray(cnr, dtype=np.float64),
            sinr_db=np.asarray(sinr, dtype=np.float64),
            modcod_idx=idx,
            capacity_bps=eff * self.bandwidth_hz,
        )


@dataclass(frozen=True)
class LinkQuality:
    """Per-link results of :meth:`LinkBudget.evaluate`, arrays of shape ``(L,)``.

    Attributes
    ----------
    cnr_db : ndarray
        C/N without interference [dB].
    sinr_db : ndarray
        C/(N+I) [dB].
    modcod_idx : ndarray of int64
        Row of the MODCOD in use; -1 when the link is down.
    capacity_bps : ndarray
        Capacity [bit/s]; 0 when the link is down.
    """

    cnr_db: FloatArray
    sinr_db: FloatArray
    modcod_idx: NDArray[np.int64]
    capacity_bps: FloatArray


@dataclass(frozen=True)
class LinkProfile:
    """The two directions of a ground-satellite link: ``downlink`` (satellite -> ground, the
    ground antenna receives) and ``uplink`` (ground -> satellite)."""

    name: str
    downlink: LinkBudget
    uplink: LinkBudget


# --------------------------------------------------------------------------------------------
# Default parameters: Starlink-class Ku user links and Ka feeder links
# --------------------------------------------------------------------------------------------
#
# SpaceX publishes few of these numbers; each default below says where it comes from and how
# uncertain it is. They are a plausible, regulation-consistent operating point, not Starlink's.

#: Ku user downlink centre [Hz]: the middle of 10.7-12.7 GHz (SpaceX FCC filings). Humphreys et
#: al., "Signal Structure of the Starlink Ku-Band Downlink", IEEE TAES 2023, find eight 250 MHz
#: channels across the band; the centre stands for any of them.
KU_DOWNLINK_HZ = 11.7e9
#: Occupied bandwidth of one Ku downlink channel [Hz] (Humphreys et al. 2023: 240 MHz of each
#: 250 MHz channel).
KU_DOWNLINK_BANDWIDTH_HZ = 240e6
#: Ku user uplink centre [Hz] (14.0-14.5 GHz, SpaceX FCC filings).
KU_UPLINK_HZ = 14.25e9
#: Ku uplink channel bandwidth [Hz]. Not published; assumed (uncertain by a factor of 2).
KU_UPLINK_BANDWIDTH_HZ = 60e6
#: PFD limit for NGSO FSS downlinks at 10.7-11.7 GHz, 25-90 deg arrival [dB(W/m^2) in 1 MHz]
#: (47 CFR 25.208(b)(2); ITU RR Article 21, Table 21-4: -140 dB(W/m^2) in 4 kHz).
KU_PFD_LIMIT_DBW_M2_MHZ = -116.0
#: Satellite Ku user-beam EIRP [dBW]: the EIRP that meets the PFD limit at nadir from 550 km,
#: ``PFD + 10 log10(4 pi d^2) + 10 log10(B / MHz)`` = 9.8 dBW/MHz over 240 MHz. A satellite that
#: raises its EIRP towards the edge of coverage to keep the PFD at the limit would have up to
#: about +6 dB more at 25 deg elevation: uncertainty -0/+6 dB.
KU_SAT_EIRP_DBW = (
    KU_PFD_LIMIT_DBW_M2_MHZ
    + 10.0 * math.log10(4.0 * math.pi * 550e3**2)
    + 10.0 * math.log10(KU_DOWNLINK_BANDWIDTH_HZ / 1e6)
)
#: User terminal EIRP [dBW]: 42.1 dBW maximum EIRP of SpaceX's standard fixed terminal (UT3-V1)
#: as licensed under FCC file SES-LIC-20230228-00228; SpaceX asked to raise it to 43.6 dBW.
#: Uncertainty -3/+1.5 dB (terminals run under uplink power control).
KU_TERMINAL_EIRP_DBW = 42.1
#: Terminal aperture [m]: equal-area diameter of a ~0.5 x 0.5 m flat panel (uncertain +-0.1 m).
KU_TERMINAL_DIAMETER_M = 0.5
#: Terminal receive G/T [dB/K]: a 0.5 m, 65 %-efficient aperture at 11.7 GHz (33.9 dBi) and the
#: system noise temperature of 3GPP TR 38.821 Table 6.1.1.1-3's VSAT (antenna 150 K, noise figure
#: 1.2 dB: 242 K). Gives 10.0 dB/K; uncertainty +-2 dB.
KU_TERMINAL_G_OVER_T_DB_K = float(
    g_over_t_db_k(
        aperture_gain_dbi(KU_TERMINAL_DIAMETER_M, KU_DOWNLINK_HZ),
        system_noise_temperature_k(150.0, 1.2),
    )
)
#: Satellite Ku array aperture [m] (assumed; +-0.2 m): a 0.7 m array has a 2.1 deg beam at 14 GHz.
KU_SAT_DIAMETER_M = 0.7
#: Satellite Ku receive G/T [dB/K]: a 0.7 m array at 14.25 GHz (38.5 dBi) looking at a 290 K Earth
#: through a 2 dB noise-figure receiver (T = 290 + 170 = 460 K). Gives 11.9 dB/K; assumed,
#: uncertainty +-3 dB (3GPP TR 38.821 uses 13 dB/K for a 0.5 m Ka LEO satellite array).
KU_SAT_G_OVER_T_DB_K = float(
    g_over_t_db_k(
        aperture_gain_dbi(KU_SAT_DIAMETER_M, KU_UPLINK_HZ), system_noise_temperature_k(290.0, 2.0)
    )
)
#: Gaseous zenith attenuation [dB] in a standard atmosphere (7.5 g/m^3 water vapour), read from
#: ITU-R P.676 Annex 2: about 0.05 dB at 11.7 GHz, 0.07 dB at 14.25 GHz, 0.16 dB at 18.5 GHz (on
#: the rise to the 22 GHz water line) and 0.20 dB at 28.5 GHz (the ``itur`` package's P.676 gives
#: 0.058, 0.075, 0.156 and 0.234 dB at sea level, 15 deg C). Uncertainty +-50 %.
ZENITH_LOSS_DB = {11.7e9: 0.05, 14.25e9: 0.07, 18.5e9: 0.16, 28.5e9: 0.20}
#: Scintillation and polarisation allowance [dB] (3GPP TR 38.821 Table 6.1.3.3-1 takes 0.3 dB of
#: scintillation for LEO at Ka).
OTHER_LOSSES_DB = 0.3
#: DVB-S2X implementation margin [dB] (modem losses against the ideal thresholds; 0.5-1.5 dB).
IMPLEMENTATION_MARGIN_DB = 1.0

#: Ka feeder downlink (17.8-19.3 GHz) and uplink (27.5-30.0 GHz) centres and channel [Hz]
#: (SpaceX gateway filings list these bands; 250 MHz channels assumed).
KA_DOWNLINK_HZ = 18.5e9
KA_UPLINK_HZ = 28.5e9
KA_BANDWIDTH_HZ = 250e6
#: Gateway dish diameter [m] (about 1.5 m radome-covered dishes; uncertain +-0.3 m).
KA_GATEWAY_DIAMETER_M = 1.5
#: Satellite Ka EIRP density [dBW/MHz] of 3GPP TR 38.821 Table 6.1.1.1-1 (LEO-600, Ka): 4 dBW/MHz.
KA_SAT_EIRP_DENSITY_DBW_MHZ = 4.0
#: Satellite Ka antenna: 0.5 m aperture (TR 38.821 Table 6.1.1.1-1) and G/T 13 dB/K (TR 38.821
#: Table 6.1.3.3-1, SC6 uplink).
KA_SAT_DIAMETER_M = 0.5
KA_SAT_G_OVER_T_DB_K = 13.0
#: Gateway transmit power into the dish [dBW] (10 W; assumed, +-6 dB).
KA_GATEWAY_TX_POWER_DBW = 10.0


def starlink_ku_user() -> LinkProfile:
    """Default Starlink-class Ku user link (see the constants above for sources and uncertainty).

    Terminal and satellite antennas are :class:`PhasedArrayPattern` s (terminal panel facing
    zenith, satellite panel facing nadir).
    """
    ut_rx = PhasedArrayPattern.from_aperture(KU_TERMINAL_DIAMETER_M, KU_DOWNLINK_HZ)
    ut_tx = PhasedArrayPattern.from_aperture(KU_TERMINAL_DIAMETER_M, KU_UPLINK_HZ)
    sat_tx = PhasedArrayPattern.from_aperture(KU_SAT_DIAMETER_M, KU_DOWNLINK_HZ)
    sat_rx = PhasedArrayPattern.from_aperture(KU_SAT_DIAMETER_M, KU_UPLINK_HZ)
    down = LinkBudget(
        name="ku-user-downlink",
        frequency_hz=KU_DOWNLINK_HZ,
        bandwidth_hz=KU_DOWNLINK_BANDWIDTH_HZ,
        eirp_dbw=KU_SAT_EIRP_DBW,
        tx_antenna=sat_tx,
        rx_antenna=ut_rx,
        g_over_t_db_k=KU_TERMINAL_G_OVER_T_DB_K,
        atmospheric_zenith_db=ZENITH_LOSS_DB[KU_DOWNLINK_HZ],
        other_losses_db=OTHER_LOSSES_DB,
        implementation_margin_db=IMPLEMENTATION_MARGIN_DB,
    )
    up = LinkBudget(
        name="ku-user-uplink",
        frequency_hz=KU_UPLINK_HZ,
        bandwidth_hz=KU_UPLINK_BANDWIDTH_HZ,
        eirp_dbw=KU_TERMINAL_EIRP_DBW,
        tx_antenna=ut_tx,
        rx_antenna=sat_rx,
        g_over_t_db_k=KU_SAT_G_OVER_T_DB_K,
        atmospheric_zenith_db=ZENITH_LOSS_DB[KU_UPLINK_HZ],
        other_losses_db=OTHER_LOSSES_DB,
        implementation_margin_db=IMPLEMENTATION_MARGIN_DB,
    )
    return LinkProfile("starlink-ku-user", down, up)


def starlink_ka_feeder() -> LinkProfile:
    """Default Starlink-class Ka gateway (feeder) link: ITU-R S.465 dishes on the ground,
    :class:`PhasedArrayPattern` satellite arrays (see the constants above)."""
    gw_rx_gain = aperture_gain_dbi(KA_GATEWAY_DIAMETER_M, KA_DOWNLINK_HZ)
    gw_tx_gain = aperture_gain_dbi(KA_GATEWAY_DIAMETER_M, KA_UPLINK_HZ)
    gw_rx = S465Pattern(gw_rx_gain, KA_GATEWAY_DIAMETER_M, KA_DOWNLINK_HZ)
    gw_tx = S465Pattern(gw_tx_gain, KA_GATEWAY_DIAMETER_M, KA_UPLINK_HZ)
    sat_tx = PhasedArrayPattern.from_aperture(KA_SAT_DIAMETER_M, KA_DOWNLINK_HZ)
    sat_rx = PhasedArrayPattern.from_aperture(KA_SAT_DIAMETER_M, KA_UPLINK_HZ)
    down = LinkBudget(
        name="ka-feeder-downlink",
        frequency_hz=KA_DOWNLINK_HZ,
        bandwidth_hz=KA_BANDWIDTH_HZ,
        eirp_dbw=KA_SAT_EIRP_DENSITY_DBW_MHZ + 10.0 * math.log10(KA_BANDWIDTH_HZ / 1e6),
        tx_antenna=sat_tx,
        rx_antenna=gw_rx,
        # Gateway: TR 38.821's VSAT noise (150 K antenna, 1.2 dB noise figure) behind the dish.
        g_over_t_db_k=float(g_over_t_db_k(gw_rx_gain, system_noise_temperature_k(150.0, 1.2))),
        atmospheric_zenith_db=ZENITH_LOSS_DB[KA_DOWNLINK_HZ],
        other_losses_db=OTHER_LOSSES_DB,
        implementation_margin_db=IMPLEMENTATION_MARGIN_DB,
    )
    up = LinkBudget(
        name="ka-feeder-uplink",
        frequency_hz=KA_UPLINK_HZ,
        bandwidth_hz=KA_BANDWIDTH_HZ,
        eirp_dbw=KA_GATEWAY_TX_POWER_DBW + gw_tx_gain,
        tx_antenna=gw_tx,
        rx_antenna=sat_rx,
        g_over_t_db_k=KA_SAT_G_OVER_T_DB_K,
        atmospheric_zenith_db=ZENITH_LOSS_DB[KA_UPLINK_HZ],
        other_losses_db=OTHER_LOSSES_DB,
        implementation_margin_db=IMPLEMENTATION_MARGIN_DB,
    )
    return LinkProfile("starlink-ka-feeder", down, up)
