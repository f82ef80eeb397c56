"""Physical constants, SI units, each with its source."""

from __future__ import annotations

#: Speed of light in vacuum [m/s] (exact, SI definition). Used for ISLs and GSLs.
C_M_S = 299_792_458.0

#: Group index of standard single-mode fibre; light travels at c / 1.467 in fibre
#: (ITU-T G.652 fibre at 1550 nm; the value Hypatia and most LEO latency studies use).
FIBRE_GROUP_INDEX = 1.467

#: WGS84 semi-major axis [m] (NIMA TR8350.2, 3rd ed., Table 3.1).
WGS84_A_M = 6_378_137.0
#: WGS84 flattening (NIMA TR8350.2, Table 3.1).
WGS84_F = 1.0 / 298.257223563
#: WGS84 first eccentricity squared.
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
#: WGS84 semi-minor axis [m].
WGS84_B_M = WGS84_A_M * (1.0 - WGS84_F)
#: Mean Earth radius [m] (IUGG mean radius R1 = (2a + b) / 3), for great-circle distances.
EARTH_MEAN_RADIUS_M = 6_371_008.8

#: Earth's gravitational parameter [m^3/s^2] (EGM96 / WGS84 G873, NIMA TR8350.2 Table 3.1).
MU_EARTH_M3_S2 = 3.986004418e14
#: Second zonal harmonic J2 (EGM96, unnormalised: -sqrt(5) * C20 = 1.08262668e-3).
J2 = 1.08262668e-3
#: Reference radius for J2 [m] (EGM96 uses the WGS84 equatorial radius).
J2_RADIUS_M = WGS84_A_M

#: Earth rotation rate [rad/s] (WGS84, NIMA TR8350.2 Table 3.1).
OMEGA_EARTH_RAD_S = 7.292115e-5

#: Seconds per day.
DAY_S = 86_400.0

#: SGP4's Earth radius [km] (WGS72, the constants TLEs are fitted with).
SGP4_WGS72_RADIUS_KM = 6378.135
#: libastro's (pyephem's) Earth radius [km] and flattening: pyephem scales SGP4's output, which
#: is in Earth radii, by this radius, and puts observers on this ellipsoid (libastro astro.h,
#: earthsat.c). Only starmesh's ``earth_model = "pyephem"`` uses them, to reproduce satgenpy.
LIBASTRO_EARTH_RADIUS_KM = 6378.16
LIBASTRO_FLATTENING = 1.0 / 298.25
