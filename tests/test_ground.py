"""Tests of the ground segment: sites, city lookup, packaged data sets, nearest site."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starmesh.constants import WGS84_A_M, WGS84_B_M
from starmesh.errors import ScenarioError, UnknownSiteError
from starmesh.frames import great_circle_m
from starmesh.ground import (
    Site,
    Sites,
    find_cities,
    gateway_by_name,
    hypatia_cities,
    lookup_city,
    nearest,
    read_site_file,
    resolve_city,
    starlink_gateways,
    top_cities,
)

ONE_MM = 1e-3
THIRTY_KM = 30e3


def distance_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    return float(great_circle_m(*np.radians([lat1_deg, lon1_deg, lat2_deg, lon2_deg])))


# City centres from common reference (rounded to 0.01 deg, about 1 km).
UKRAINE_CITIES = {
    "Kyiv": (50.45, 30.52),
    "Kharkiv": (49.99, 36.23),
    "Odesa": (46.48, 30.72),
    "Dnipro": (48.46, 35.04),
    "Lviv": (49.84, 24.03),
    "Zaporizhzhia": (47.84, 35.14),
    "Mykolaiv": (46.97, 32.00),
    "Kherson": (46.64, 32.61),
    "Chernihiv": (51.49, 31.29),
    "Sumy": (50.91, 34.80),
    "Kramatorsk": (48.72, 37.56),
    "Mariupol": (47.10, 37.55),
}

OTHER_CITIES = {
    "Warsaw": ("PL", 52.23, 21.01),
    "Frankfurt am Main": ("DE", 50.11, 8.68),
    "Frankfurt": ("DE", 50.11, 8.68),
    "Manila": ("PH", 14.60, 120.98),
    "Dalian": ("CN", 38.91, 121.60),
    "Paris": ("FR", 48.86, 2.35),
    "Moscow": ("RU", 55.76, 37.62),
    "Saint Petersburg": ("RU", 59.94, 30.31),
}


# --- city lookup ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", sorted(UKRAINE_CITIES))
def test_ukrainian_cities_resolve_near_their_known_centres(query: str) -> None:
    want_lat, want_lon = UKRAINE_CITIES[query]
    site = resolve_city(query)
    assert site.name == query
    assert site.kind == "terminal"
    assert distance_m(site.lat_deg, site.lon_deg, want_lat, want_lon) < THIRTY_KM
    assert lookup_city(query).country_code == "UA"


@pytest.mark.parametrize("query", sorted(OTHER_CITIES))
def test_other_cities_resolve(query: str) -> None:
    country, want_lat, want_lon = OTHER_CITIES[query]
    city = lookup_city(query)
    assert city.country_code == country
    assert distance_m(city.lat_deg, city.lon_deg, want_lat, want_lon) < THIRTY_KM


def test_alternate_names_find_cities_spelled_differently_in_geonames() -> None:
    # GeoNames spells these "Zaporizhzhya" and "Mykolayiv"; the usual spellings are alternates.
    assert lookup_city("Zaporizhzhia").name == "Zaporizhzhya"
    assert lookup_city("Mykolaiv").name == "Mykolayiv"
    assert lookup_city("Kiev").name == "Kyiv"
    assert lookup_city("Київ").name == "Kyiv"
    assert lookup_city("Frankfurt").name == "Frankfurt am Main"


def test_lookup_ignores_case_accents_and_hyphens() -> None:
    want = lookup_city("São Paulo")
    assert want.country_code == "BR"
    for query in ("sao paulo", "SAO-PAULO", "São-Paulo", "  sao_paulo "):
        assert lookup_city(query) == want


def test_country_code_disambiguates() -> None:
    fr, us = resolve_city("Paris, FR"), resolve_city("Paris, US")
    assert (fr.name, us.name) == ("Paris, FR", "Paris, US")
    assert distance_m(fr.lat_deg, fr.lon_deg, us.lat_deg, us.lon_deg) > 5000e3
    assert resolve_city("Paris").lat_deg == fr.lat_deg  # the most populous Paris
    assert lookup_city("paris, us").country_code == "US"
    # Both can sit in one scenario: the names differ.
    assert len(Sites.from_sites([fr, us])) == 2


def test_most_populous_match_wins_and_country_code_narrows() -> None:
    # "Odessa" is the GeoNames name of a Texan city but only an alternate name of Odesa, UA,
    # which is ten times larger: users mean Odesa.
    assert [c.country_code for c in find_cities("Odessa")][:2] == ["UA", "US"]
    assert lookup_city("Odessa").name == "Odesa"
    assert lookup_city("Odessa, US").country_code == "US"
    assert lookup_city("St. Petersburg").country_code == "RU"
    assert lookup_city("St. Petersburg, US").country_code == "US"


def test_resolve_city_options() -> None:
    site = resolve_city("Warsaw", kind="pop", name="WAW")
    assert (site.name, site.kind, site.alt_m, site.approximate) == ("WAW", "pop", 0.0, False)


def test_unknown_city_suggests_close_names() -> None:
    with pytest.raises(UnknownSiteError, match=r"did you mean 'Kyiv'") as info:
        resolve_city("Kyyv")
    assert isinstance(info.value, ScenarioError)
    assert isinstance(info.value, ValueError)
    assert info.value.field == "ground"
    assert str(info.value).startswith("ground: unknown city 'Kyyv': did you mean 'Kyiv'")
    assert "lat_deg/lon_deg" in str(info.value)


def test_unknown_city_error_names_the_field_and_other_countries() -> None:
    with pytest.raises(UnknownSiteError) as info:
        resolve_city("Paris, DE", field="ground.terminals[2]")
    assert info.value.field == "ground.terminals[2]"
    assert "in country 'DE'" in str(info.value)
    assert "FR" in str(info.value)


def test_unknown_country_code() -> None:
    with pytest.raises(UnknownSiteError, match=r"unknown country code 'XX'.*ISO 3166-1"):
        resolve_city("Paris, XX")


def test_top_cities_are_unique_sorted_and_resolve_back() -> None:
    cities = top_cities(1000)
    assert len(cities) == 1000
    assert len({c.name for c in cities}) == 1000
    assert len(Sites.from_sites(cities)) == 1000
    populations = [lookup_city(c.name).population for c in cities[:50]]
    assert populations == sorted(populations, reverse=True)
    for site in cities:
        if "#" in site.name:  # same name twice in one country: cannot round-trip
            continue
        back = resolve_city(site.name)
        assert (back.lat_deg, back.lon_deg) == (site.lat_deg, site.lon_deg), site.name
    assert top_cities(0) == []


@pytest.mark.parametrize("n", [-1, 10**6, 2.5, True])
def test_top_cities_rejects_bad_n(n: object) -> None:
    with pytest.raises(ScenarioError, match=r"top_cities: n must be an integer"):
        top_cities(n)  # type: ignore[arg-type]


# --- packaged data sets -----------------------------------------------------------------------


def test_hypatia_cities() -> None:
    cities = hypatia_cities()
    assert len(cities) == 100
    assert cities[0] == Site("Tokyo", "terminal", 35.6895, 139.69171)
    assert cities[3].name == "São-Paulo"
    assert "Mumbai-(Bombay)" in {c.name for c in cities}
    assert all(c.kind == "terminal" and not c.approximate for c in cities)
    assert {c.kind for c in hypatia_cities(kind="pop")} == {"pop"}
    cities.clear()  # callers get a fresh list each time
    assert len(hypatia_cities()) == 100


def test_starlink_gateways() -> None:
    gateways = starlink_gateways()
    assert len(gateways) == 198
    assert len({g.name for g in gateways}) == 198
    assert all(g.kind == "gateway" and g.approximate for g in gateways)
    wola = next(g for g in gateways if g.name == "Wola-Krobowska")
    assert (wola.lat_deg, wola.lon_deg) == (52.0, 20.0)
    for name in ("Kaunas", "Aerzen", "Usingen", "Foggia", "Milano"):
        assert name in {g.name for g in gateways}


def test_gateway_by_name() -> None:
    wola = gateway_by_name("Wola-Krobowska")
    assert wola.approximate and wola.kind == "gateway"
    assert gateway_by_name("wola krobowska") == wola
    assert gateway_by_name("WOLA_KROBOWSKA") == wola
    assert gateway_by_name("aerzen").name == "Aerzen"
    with pytest.raises(UnknownSiteError, match=r"did you mean 'Usingen'"):
        gateway_by_name("Usingn")


def test_read_site_file(tmp_path) -> None:
    path = tmp_path / "ground_stations.basic.txt"
    path.write_text("# id,name,lat,lon,elev\n0,Kyiv,50.45,30.52,179\n\n1,Lviv,49.84,24.03,0\n")
    sites = read_site_file(path, kind="gateway")
    assert [s.name for s in sites] == ["Kyiv", "Lviv"]
    assert sites[0] == Site("Kyiv", "gateway", 50.45, 30.52, 179.0)
    path.write_text("0,Kyiv,50.45,30.52\n")
    with pytest.raises(ScenarioError, match=r"basic.txt:1: expected 5 comma-separated fields"):
        read_site_file(path)


# --- Site and Sites ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat_deg", "lon_deg", "match"),
    [
        (95.0, 0.0, r"lat_deg must be in \[-90, 90\], got 95.0"),
        (-90.5, 0.0, r"lat_deg must be in \[-90, 90\], got -90.5"),
        (0.0, 250.0, r"lon_deg must be in \[-180, 180\], got 250.0"),
        (float("nan"), 0.0, r"lat_deg must be finite"),
        (0.0, "east", r"lon_deg must be a number"),
    ],
)
def test_site_rejects_bad_coordinates(lat_deg: float, lon_deg: float, match: str) -> None:
    with pytest.raises(ScenarioError, match=match) as info:
        Site("x", "terminal", lat_deg, lon_deg)
    assert info.value.field == "ground"


def test_site_accepts_the_edges_and_rejects_unknown_kinds() -> None:
    Site("pole", "terminal", 90, -180)
    Site("pole", "terminal", -90.0, 180.0)
    with pytest.raises(ScenarioError, match=r"kind must be one of 'terminal', 'gateway' or 'pop'"):
        Site("x", "satellite", 0.0, 0.0)  # type: ignore[arg-type]


def geocentric_radius_m(lat_rad: np.ndarray) -> np.ndarray:
    """Geocentric radius of the WGS84 ellipsoid at a geodetic latitude (closed form)."""
    a, b = WGS84_A_M, WGS84_B_M
    c, s = np.cos(lat_rad), np.sin(lat_rad)
    return np.sqrt(((a * a * c) ** 2 + (b * b * s) ** 2) / ((a * c) ** 2 + (b * s) ** 2))


def test_sites_arrays() -> None:
    cities = hypatia_cities()
    sites = Sites.from_sites(cities)
    n_sites = len(cities)
    assert len(sites) == n_sites
    assert sites.names == tuple(c.name for c in cities)
    assert sites.lat_rad.shape == sites.lon_rad.shape == sites.alt_m.shape == (n_sites,)
    assert sites.r_ecef_m.shape == sites.up.shape == (n_sites, 3)
    assert np.allclose(np.degrees(sites.lat_rad), [c.lat_deg for c in cities], rtol=0, atol=1e-12)
    # All Hypatia cities sit on the ellipsoid (elevation 0).
    got = np.linalg.norm(sites.r_ecef_m, axis=1)
    assert np.abs(got - geocentric_radius_m(sites.lat_rad)).max() < ONE_MM
    assert np.abs(np.linalg.norm(sites.up, axis=1) - 1.0).max() < 1e-15
    with pytest.raises(ValueError, match="read-only"):
        sites.lat_rad[0] = 0.0


def test_sites_height_and_poles() -> None:
    sites = Sites.from_sites(
        [
            Site("north", "terminal", 90.0, 0.0),
            Site("equator", "gateway", 0.0, 90.0, alt_m=1000.0),
        ]
    )
    assert np.abs(sites.r_ecef_m[0] - [0.0, 0.0, WGS84_B_M]).max() < ONE_MM
    assert np.abs(sites.r_ecef_m[1] - [0.0, WGS84_A_M + 1000.0, 0.0]).max() < ONE_MM
    assert np.abs(sites.up[1] - [0.0, 1.0, 0.0]).max() < 1e-15


def test_sites_index_and_kinds() -> None:
    sites = Sites.from_sites(
        [
            resolve_city("Kharkiv"),
            gateway_by_name("Wola-Krobowska"),
            resolve_city("Warsaw", kind="pop"),
            gateway_by_name("Aerzen"),
        ]
    )
    assert sites.index("Aerzen") == 3
    assert sites.of_kind("gateway").tolist() == [1, 3]
    assert sites.of_kind("gateway").dtype == np.int64
    assert sites.of_kind("pop").tolist() == [2]
    assert sites.of_kind("terminal").tolist() == [0]
    with pytest.raises(UnknownSiteError, match=r"unknown site 'Kharkov'.*did you mean 'Kharkiv'"):
        sites.index("Kharkov")
    with pytest.raises(UnknownSiteError, match=r"did you mean 'Aerzen'"):
        sites.index("aerzen")
    with pytest.raises(ScenarioError, match=r"kind must be one of"):
        sites.of_kind("satellite")  # type: ignore[arg-type]
    assert [s.name for s in sites.to_sites()] == list(sites.names)


def test_sites_rejects_duplicate_names() -> None:
    kyiv = resolve_city("Kyiv")
    with pytest.raises(ScenarioError) as info:
        Sites.from_sites([kyiv, resolve_city("Lviv"), kyiv])
    assert str(info.value) == (
        "ground.sites: duplicate site name 'Kyiv': give each site a unique name"
    )


def test_sites_rejects_mismatched_arrays() -> None:
    good = Sites.from_sites([resolve_city("Kyiv"), resolve_city("Lviv")])
    with pytest.raises(ScenarioError, match=r"2 names, but up has shape \(1, 3\)"):
        Sites(
            good.names,
            good.kinds,
            good.lat_rad,
            good.lon_rad,
            good.alt_m,
            good.r_ecef_m,
            good.up[:1],
        )


def test_empty_sites() -> None:
    sites = Sites.from_sites([])
    assert len(sites) == 0
    assert sites.r_ecef_m.shape == (0, 3)
    assert sites.of_kind("terminal").shape == (0,)


# --- nearest ----------------------------------------------------------------------------------


def brute_force_nearest(sites_from: Sites, idx_from, sites_to: Sites, idx_to) -> list[float]:
    """Distance from each from-site to its nearest to-site, one pair at a time."""
    out = []
    for i in idx_from:
        out.append(
            min(
                float(
                    great_circle_m(
                        sites_from.lat_rad[i],
                        sites_from.lon_rad[i],
                        sites_to.lat_rad[j],
                        sites_to.lon_rad[j],
                    )
                )
                for j in idx_to
            )
        )
    return out


def chosen_distances_m(sites_from: Sites, idx_from, sites_to: Sites, chosen) -> np.ndarray:
    return great_circle_m(
        sites_from.lat_rad[idx_from],
        sites_from.lon_rad[idx_from],
        sites_to.lat_rad[chosen],
        sites_to.lon_rad[chosen],
    )


def test_nearest_gateway_to_each_hypatia_city_matches_brute_force() -> None:
    cities = Sites.from_sites(hypatia_cities())
    gateways = Sites.from_sites(starlink_gateways())
    idx_from = np.arange(0, 100, 3)
    idx_to = np.arange(0, 198, 2)
    got = nearest(cities, idx_from, gateways, idx_to)
    assert got.shape == idx_from.shape and got.dtype == np.int64
    assert set(got.tolist()) <= set(idx_to.tolist())
    want = brute_force_nearest(cities, idx_from, gateways, idx_to)
    assert np.abs(chosen_distances_m(cities, idx_from, gateways, got) - want).max() < ONE_MM
    # None means every site.
    assert np.array_equal(
        nearest(cities, None, gateways, None),
        nearest(cities, np.arange(100), gateways, np.arange(198)),
    )


def test_nearest_gateway_to_ukrainian_cities() -> None:
    # Kaunas (54.9 N 23.9 E) is about 665 km from Kyiv, Wola-Krobowska (52 N 20 E) about 750 km.
    terminals = Sites.from_sites([resolve_city("Kyiv"), resolve_city("Lviv")])
    gateways = Sites.from_sites(starlink_gateways())
    got = nearest(terminals, [0, 1], gateways, gateways.of_kind("gateway"))
    assert [gateways.names[i] for i in got] == ["Kaunas", "Wola-Krobowska"]


def test_nearest_edge_cases() -> None:
    sites = Sites.from_sites([resolve_city("Kyiv"), resolve_city("Lviv")])
    assert nearest(sites, [], sites, [0]).shape == (0,)
    assert nearest(sites, [0, 1], sites, [1, 0]).tolist() == [0, 1]  # itself, at 0 m
    with pytest.raises(ScenarioError, match=r"no candidate sites"):
        nearest(sites, [0], sites, [])
    with pytest.raises(ScenarioError, match=r"idx_to holds indices in \[0, 5\]"):
        nearest(sites, [0], sites, [0, 5])


lat_deg = st.floats(-90.0, 90.0, allow_nan=False)
lon_deg = st.floats(-180.0, 180.0, allow_nan=False)
points = st.lists(st.tuples(lat_deg, lon_deg), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(points_from=points, points_to=points, data=st.data())
def test_nearest_property(points_from, points_to, data) -> None:
    sites_from = Sites.from_sites(
        [Site(f"f{i}", "terminal", la, lo) for i, (la, lo) in enumerate(points_from)]
    )
    sites_to = Sites.from_sites(
        [Site(f"t{i}", "gateway", la, lo) for i, (la, lo) in enumerate(points_to)]
    )
    idx_to = data.draw(
        st.lists(st.integers(0, len(points_to) - 1), min_size=1, unique=True), label="idx_to"
    )
    idx_from = np.arange(len(points_from))
    got = nearest(sites_from, idx_from, sites_to, idx_to)
    assert all(int(g) in idx_to for g in got)
    want = brute_force_nearest(sites_from, idx_from, sites_to, idx_to)
    assert np.abs(chosen_distances_m(sites_from, idx_from, sites_to, got) - want).max() < ONE_MM
    assert all(math.isfinite(w) for w in want)
