"""``earth_model = "pyephem"`` against pyephem itself (the library satgenpy measures with).

pyephem (libastro) gives the slant range from an observer to a TLE satellite, rounded to float32.
starmesh's pyephem Earth model (libastro's sidereal angle, observer latitude, float32 elements,
unclamped eccentricity, 6378.16 km radius) must give the same range to within that rounding; the
default WGS84 model must stay what it was (GMST82, WGS84 sites, plain SGP4).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from starmesh.constants import LIBASTRO_EARTH_RADIUS_KM, LIBASTRO_FLATTENING
from starmesh.constellation import Constellation
from starmesh.elements import parse_tle_text, tle_checksum
from starmesh.frames import geodetic_to_ecef, gmst82_rad
from starmesh.ground import Site, Sites
from starmesh.propagation import PYEPHEM_SCALE, Propagator
from starmesh.topology import isl_lengths_m, libastro_gsl_lengths_m, libastro_isl_lengths_m

ephem = pytest.importorskip("ephem", reason="pyephem is missing: pip install -e '.[test]'")

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

#: satgenpy's TLE layout (generate_tles_from_scratch_manual): angles with 4 decimals, e = 1e-7,
#: epoch 2000-01-01. Angles chosen to cover float32 rounding of large values (RAAN 355.1234).
TLES = [
    ("S0", "53.0000", "355.1234", "237.2727"),
    ("S1", "53.0000", "5.0000", "8.1818"),
    ("S2", "97.6000", "180.0000", "123.4567"),
    ("S3", "51.9000", "271.7647", "312.3529"),
]
#: (name, lat_deg, lon_deg): Hypatia cities, north and south, east and west.
SITES = [
    ("Manila", 14.6042, 120.9822),
    ("Dalian", 38.913811, 121.602322),
    ("St Petersburg", 59.929858, 30.326228),
    ("Sao Paulo", -23.55, -46.633333),
]


def tle_text() -> str:
    out = []
    for i, (name, inc, raan, ma) in enumerate(TLES):
        n = i + 1
        l1 = f"1 {n:05d}U 00000ABC 00001.00000000  .00000000  00000-0  00000+0 0    0"
        l2 = f"2 {n:05d} {inc:>8} {raan:>8} 0000001 {'0.0000':>8} {ma:>8} {'15.19000000':>11}    0"
        out += [name, l1 + str(tle_checksum(l1)), l2 + str(tle_checksum(l2))]
    return "\n".join(out) + "\n"


def pyephem_ranges_m(t_s: float) -> np.ndarray:
    """pyephem's range from every site to every satellite, shape (G, S) [m]."""
    lines = tle_text().splitlines()
    sats = [ephem.readtle(*lines[i : i + 3]) for i in range(0, len(lines), 3)]
    out = np.empty((len(SITES), len(sats)))
    date = ephem.Date(ephem.Date("2000/1/1 00:00:00") + t_s / 86400.0)
    for g, (_n, lat, lon) in enumerate(SITES):
        obs = ephem.Observer()
        obs.epoch = "2000/1/1"
        obs.date = date
        obs.lat, obs.lon, obs.elevation = str(lat), str(lon), 0.0
        for s, sat in enumerate(sats):
            sat.compute(obs)
            out[g, s] = sat.range
    return out


def starmesh_ranges_m(t_s: float, earth_model: str) -> np.ndarray:
    cons = Constellation.from_elements("test", parse_tle_text(tle_text(), source="test"))
    sites = [Site(name=n, kind="terminal", lat_deg=la, lon_deg=lo) for n, la, lo in SITES]
    if earth_model == "pyephem":
        prop = Propagator(cons, EPOCH, scale=PYEPHEM_SCALE)
        ground = Sites.from_sites(sites, a_m=LIBASTRO_EARTH_RADIUS_KM * 1e3, f=LIBASTRO_FLATTENING)
    else:
        prop = Propagator(cons, EPOCH)
        ground = Sites.from_sites(sites)
    r, ok = prop.positions_ecef_m(np.array([t_s]))
    assert ok.all()
    return np.linalg.norm(r[0][None, :, :] - ground.r_ecef_m[:, None, :], axis=2)


@pytest.mark.parametrize("t_s", [0.0, 1.2, 137.3, 3600.0])
def test_pyephem_model_gives_pyephems_ranges(t_s: float) -> None:
    """Every site-satellite range within pyephem's float32 rounding (half an ulp: 0.5 m at
    8,000-16,000 km) plus 1 cm; the default model is tens of metres off."""
    ref = pyephem_ranges_m(t_s)
    ulp = np.spacing(ref.astype(np.float32)).astype(np.float64)
    ours = starmesh_ranges_m(t_s, "pyephem")
    assert np.all(np.abs(ours - ref) <= 0.5 * ulp + 0.01), np.abs(ours - ref).max()
    # The pyephem model is what makes the difference (guards against a vacuous comparison).
    assert np.abs(starmesh_ranges_m(t_s, "wgs84") - ref).max() > 10.0


def test_default_model_is_unchanged() -> None:
    """WGS84: GMST82 rotation, WGS84 sites, plain SGP4 (python-sgp4's TEME, rotated)."""
    from sgp4.api import WGS72, Satrec

    cons = Constellation.from_elements("test", parse_tle_text(tle_text(), source="test"))
    prop = Propagator(cons, EPOCH)
    assert prop.earth_model == "wgs84"
    t = np.array([0.0, 100.0])
    assert np.array_equal(prop.gmst_rad(t), gmst82_rad((t - 43200.0) / 86400.0))
    lines = tle_text().splitlines()
    sat = Satrec.twoline2rv(lines[1], lines[2], WGS72)
    _e, r_km, _v = sat.sgp4(2451544.5, 100.0 / 86400.0)
    g = gmst82_rad(np.array([(100.0 - 43200.0) / 86400.0]))[0]
    c, s = np.cos(g), np.sin(g)
    want = np.array([c * r_km[0] + s * r_km[1], -s * r_km[0] + c * r_km[1], r_km[2]]) * 1e3
    r, _ok = prop.positions_ecef_m(np.array([100.0]))
    assert np.allclose(r[0, 0], want, atol=1e-6)
    site = Sites.from_sites([Site(name="Manila", kind="terminal", lat_deg=14.6, lon_deg=121.0)])
    assert np.array_equal(
        site.r_ecef_m[0], geodetic_to_ecef(np.radians(14.6), np.radians(121.0), 0.0)
    )


@pytest.mark.parametrize("t_s", [0.0, 1.2, 137.3])
def test_libastro_link_lengths_are_satgenpys(t_s: float) -> None:
    """ISL lengths through pyephem's float32 ranges and azimuths (satgenpy's own
    ``distance_m_between_satellites``) to 1 cm, where plain 3-D distances are up to metres off;
    GSL lengths rounded to float32 equal pyephem's ranges to one float32 ulp."""
    satgen_dt = pytest.importorskip("satgen.distance_tools")
    lines = tle_text().splitlines()
    sats = [ephem.readtle(*lines[i : i + 3]) for i in range(0, len(lines), 3)]
    cons = Constellation.from_elements("test", parse_tle_text(tle_text(), source="test"))
    r, _ok = Propagator(cons, EPOCH, scale=PYEPHEM_SCALE).positions_ecef_m(np.array([t_s]))
    edges = np.array([(a, b) for a in range(len(sats)) for b in range(a + 1, len(sats))], np.int32)
    date = ephem.Date(ephem.Date("2000/1/1 00:00:00") + t_s / 86400.0)
    ref = np.array(
        [
            satgen_dt.distance_m_between_satellites(sats[a], sats[b], "2000/1/1", date)
            for a, b in edges
        ]
    )
    ours = libastro_isl_lengths_m(r, edges)[0]
    assert np.abs(ours - ref).max() <= 0.01
    plain = isl_lengths_m(r, edges)[0]
    assert np.abs(plain - ref).max() > 10 * np.abs(ours - ref).max()
    ref_gsl = pyephem_ranges_m(t_s)
    ours_gsl = libastro_gsl_lengths_m(starmesh_ranges_m(t_s, "pyephem"))
    ulp = np.spacing(ref_gsl.astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(ours_gsl - ref_gsl) <= ulp)
