"""Regions on the H3 grid: the whole Earth, a bounding box, a GeoJSON polygon or a country.

A region becomes a :class:`CellGrid`: the H3 cells (Uber's hexagonal hierarchical index, the
``h3`` package) whose centres lie inside it at one resolution, sorted by cell index, with their
centres. Country outlines are Natural Earth's 1:110m Admin 0 polygons shipped in
``starmesh/data/naturalearth-110m-countries.json`` (see ``data/PROVENANCE.md``); at that scale
small islands and exclaves are simplified, so a country's cells are a map-scale answer.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import h3
import numpy as np
import shapely
from h3.api import basic_int as h3i
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from .errors import ScenarioError

COUNTRIES_FILENAME = "naturalearth-110m-countries.json"

#: Default cap on the number of cells of one region. The coverage kernel keeps about 1 kB of
#: state per cell (histogram of satellites in view plus gap and handover counters), so this
#: bounds its memory near 300 MB; the whole Earth at H3 resolution 4 (288,122 cells) fits.
MAX_CELLS_DEFAULT = 300_000

#: Mean Earth radius used by H3 for areas [km] (h3 ``EARTH_RADIUS_KM``, authalic radius).
_H3_EARTH_RADIUS_KM = 6371.007180918475

Region = str | Sequence[float] | Mapping[str, Any] | None


@dataclass(frozen=True)
class CellGrid:
    """H3 cells of a region at one resolution.

    Parameters
    ----------
    name : str
        Label of the region (``"earth"``, a country name, ``"bbox"`` or ``"geojson"``).
    res : int
        H3 resolution (0 .. 15).
    cells : ndarray of uint64, shape (C,)
        H3 cell indices, ascending.
    lat_deg, lon_deg : ndarray, shape (C,)
        Cell centres (H3's spherical coordinates) [deg].
    """

    name: str
    res: int
    cells: NDArray[np.uint64]
    lat_deg: NDArray[np.float64]
    lon_deg: NDArray[np.float64]

    @property
    def n_cells(self) -> int:
        """Number of cells ``C``."""
        return int(self.cells.shape[0])

    @property
    def cell_ids(self) -> list[str]:
        """Cells as H3's 15-character hexadecimal strings, shape (C,)."""
        return [h3.int_to_str(int(c)) for c in self.cells]

    def unit_vectors(self) -> NDArray[np.float64]:
        """Cell centres as unit vectors in the Earth-fixed frame, shape (C, 3)."""
        lat = np.radians(self.lat_deg)
        lon = np.radians(self.lon_deg)
        cl = np.cos(lat)
        return np.stack([cl * np.cos(lon), cl * np.sin(lon), np.sin(lat)], axis=-1)

    def area_km2(self) -> NDArray[np.float64]:
        """Cell areas on H3's sphere [km^2], shape (C,) (they differ by up to a factor 2)."""
        return np.array([h3i.cell_area(int(c), unit="km^2") for c in self.cells])

    @classmethod
    def from_cells(cls, cells: Sequence[str | int], *, name: str = "cells") -> CellGrid:
        """Grid of given cells (strings or integers), all at one resolution.

        Raises
        ------
        ScenarioError
            On an invalid cell, mixed resolutions or no cells.
        """
        ints = sorted({h3.str_to_int(c) if isinstance(c, str) else int(c) for c in cells})
        if not ints:
            raise ScenarioError("coverage.region", "no cells given: pass at least one H3 cell")
        for c in ints:
            if not h3i.is_valid_cell(c):
                raise ScenarioError("coverage.region", f"{c:x} is not a valid H3 cell")
        res = {h3i.get_resolution(c) for c in ints}
        if len(res) > 1:
            raise ScenarioError(
                "coverage.region", f"cells mix H3 resolutions {sorted(res)}: use one resolution"
            )
        return _grid(name, res.pop(), ints)


def _grid(name: str, res: int, ints: Sequence[int]) -> CellGrid:
    cells = np.array(sorted(ints), dtype=np.uint64)
    ll = np.array([h3i.cell_to_latlng(int(c)) for c in cells], dtype=np.float64).reshape(-1, 2)
    return CellGrid(name, res, cells, ll[:, 0].copy(), ll[:, 1].copy())


def _check_res(res: int) -> int:
    if isinstance(res, bool) or not isinstance(res, int | np.integer) or not 0 <= res <= 15:
        raise ScenarioError(
            "coverage.res", f"H3 resolution must be an integer in 0 .. 15, got {res!r}"
        )
    return int(res)


# --- countries -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _countries() -> dict[str, dict[str, Any]]:
    text = (files("starmesh") / "data" / COUNTRIES_FILENAME).read_text(encoding="utf-8")
    data = json.loads(text)
    return {c["name"]: {**c, "scale": data["scale"]} for c in data["countries"]}


def country_names() -> list[str]:
    """Names of the countries :func:`country_shape` knows (Natural Earth 1:110m), sorted."""
    return sorted(_countries())


def country_shape(name: str) -> MultiPolygon:
    """Outline of a country (Natural Earth 1:110m Admin 0), in ``(lon_deg, lat_deg)``.

    Parameters
    ----------
    name : str
        Country name as Natural Earth spells it (``"Ukraine"``, ``"United States of America"``)
        or its ISO 3166-1 alpha-3 code (``"UKR"``); case does not matter.

    Raises
    ------
    ScenarioError
        For an unknown name, suggesting the closest known ones.
    """
    table = _countries()
    key = name.strip().casefold()
    for cname, rec in table.items():
        if key in (cname.casefold(), str(rec["iso_a3"]).casefold()):
            scale = float(rec["scale"])
            polys = []
            for rings in rec["polygons"]:
                rr = [np.asarray(r, dtype=np.float64).reshape(-1, 2) / scale for r in rings]
                polys.append(Polygon(rr[0], rr[1:]))
            return MultiPolygon(polys)
    close = get_close_matches(name.strip(), list(table), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ScenarioError(
        "coverage.region",
        f"unknown country {name!r}: {hint}use a Natural Earth name or ISO alpha-3 code "
        "(starmesh.regions.country_names() lists them), a bounding box or a GeoJSON polygon",
    )


# --- region -> cells ------------------------------------------------------------------------


def _bbox_shape(bbox: Sequence[float]) -> Polygon | MultiPolygon:
    if len(bbox) != 4:
        raise ScenarioError(
            "coverage.region",
            f"a bounding box is [lon_min_deg, lat_min_deg, lon_max_deg, lat_max_deg] (GeoJSON "
            f"order), got {list(bbox)!r}",
        )
    w, s, e, n = (float(x) for x in bbox)
    if not (-180.0 <= w < e <= 180.0 and -90.0 <= s < n <= 90.0):
        raise ScenarioError(
            "coverage.region",
            f"bounding box {[w, s, e, n]} is not [lon_min, lat_min, lon_max, lat_max] with "
            "lon_min < lon_max in [-180, 180] and lat_min < lat_max in [-90, 90]; boxes across "
            "the antimeridian must be split into two",
        )
    # H3 reads a polygon edge spanning more than 180 deg of longitude as crossing the
    # antimeridian (and fails on a ring around the whole Earth): cut wide boxes into pieces at
    # most 180 deg wide, with edges of at most 90 deg.
    n_piece = max(1, math.ceil((e - w) / 180.0 - 1e-12))
    edges = np.linspace(w, e, n_piece + 1)
    pieces = []
    for a, b in itertools.pairwise(edges):
        lons = np.linspace(a, b, max(1, math.ceil((b - a) / 90.0 - 1e-12)) + 1).tolist()
        pieces.append(Polygon([(x, s) for x in lons] + [(x, n) for x in reversed(lons)]))
    return pieces[0] if n_piece == 1 else MultiPolygon(pieces)


def _geojson_shape(obj: Any) -> Any:
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as exc:
            raise ScenarioError("coverage.region", f"not valid GeoJSON text: {exc}") from None
    if not isinstance(obj, Mapping) or "type" not in obj:
        raise ScenarioError(
            "coverage.region", f"expected a GeoJSON object with a 'type', got {obj!r:.80}"
        )
    kind = obj["type"]
    if kind == "FeatureCollection":
        return shapely.union_all([_geojson_shape(f) for f in obj.get("features", [])])
    if kind == "Feature":
        return _geojson_shape(obj.get("geometry"))
    if kind not in ("Polygon", "MultiPolygon"):
        raise ScenarioError(
            "coverage.region",
            f"unsupported GeoJSON type {kind!r}: a coverage region is a Polygon or MultiPolygon "
            "(or a Feature/FeatureCollection of them)",
        )
    try:
        geom = shape(obj)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ScenarioError("coverage.region", f"cannot read the GeoJSON {kind}: {exc}") from None
    if not geom.is_valid:
        raise ScenarioError(
            "coverage.region",
            f"GeoJSON polygon is not valid ({shapely.is_valid_reason(geom)}): fix its rings",
        )
    return geom


def _spherical_area_km2(geom: Any) -> float:
    """Area of a lon/lat polygon on H3's sphere [km^2] (only to estimate a cell count)."""
    from pyproj import Geod

    geod = Geod(a=_H3_EARTH_RADIUS_KM * 1e3, b=_H3_EARTH_RADIUS_KM * 1e3)
    area_m2, _ = geod.geometry_area_perimeter(geom)
    return abs(area_m2) / 1e6


def region_shape(region: Region) -> tuple[str, Any]:
    """Name and shapely geometry (``lon_deg, lat_deg``) of a region; ``None`` for the Earth.

    Parameters
    ----------
    region : None, str, sequence of 4 floats or mapping
        ``None``, ``"earth"`` or ``"world"``: the whole Earth. Four numbers: a bounding box
        ``[lon_min_deg, lat_min_deg, lon_max_deg, lat_max_deg]`` (GeoJSON bbox order). A mapping,
        JSON text or the path of a ``.geojson``/``.json`` file: a GeoJSON Polygon,
        MultiPolygon, Feature or FeatureCollection. Any other string: a country name or ISO
        alpha-3 code.
    """
    if region is None:
        return "earth", None
    if isinstance(region, str):
        text = region.strip()
        if text.casefold() in ("earth", "world", "globe"):
            return "earth", None
        if text.startswith("{"):
            return "geojson", _geojson_shape(text)
        if text.lower().endswith((".geojson", ".json")):
            path = Path(text)
            if not path.is_file():
                raise ScenarioError(
                    "coverage.region", f"GeoJSON file {text!r} does not exist: check the path"
                )
            return path.stem, _geojson_shape(path.read_text(encoding="utf-8"))
        shp = country_shape(text)
        return text, shp
    if isinstance(region, Mapping):
        return "geojson", _geojson_shape(region)
    return "bbox", _bbox_shape(list(region))


def region_cells(region: Region, res: int, *, max_cells: int = MAX_CELLS_DEFAULT) -> CellGrid:
    """The H3 cells of a region whose centres lie inside it.

    Parameters
    ----------
    region : see :func:`region_shape`
    res : int
        H3 resolution 0 .. 15 (res 3: 41,162 cells over the Earth, mean area 12,393 km^2;
        each finer level has 7 times as many).
    max_cells : int
        Budget: refuse (before enumerating) a region estimated to hold more cells.

    Returns
    -------
    CellGrid

    Raises
    ------
    ScenarioError
        If the region is malformed, unknown, holds no cell centre at this resolution, or
        exceeds ``max_cells``.

    Examples
    --------
    >>> region_cells(None, 3).n_cells
    41162
    """
    res = _check_res(res)
    name, geom = region_shape(region)
    if geom is None:
        n_est = float(h3.get_num_cells(res))
    else:
        n_est = _spherical_area_km2(geom) / h3.average_hexagon_area(res, unit="km^2")
    if n_est > max_cells:
        coarser = res - math.ceil(math.log(n_est / max_cells, 7))
        raise ScenarioError(
            "coverage.res",
            f"region {name!r} at H3 resolution {res} holds about {n_est:,.0f} cells, over the "
            f"budget of {max_cells:,}: use res <= {max(coarser, 0)} or a smaller region "
            "(or raise max_cells)",
        )
    if geom is None:
        ints = [
            h3.str_to_int(c) for r0 in h3.get_res0_cells() for c in h3.cell_to_children(r0, res)
        ]
    else:
        ints = [h3.str_to_int(c) for c in h3.geo_to_cells(mapping(geom), res)]
    if not ints:
        raise ScenarioError(
            "coverage.region",
            f"region {name!r} contains no H3 cell centre at resolution {res} (cells there are "
            f"about {h3.average_hexagon_edge_length(res, unit='km'):.0f} km across): use a "
            "finer resolution or a larger region",
        )
    return _grid(name, res, ints)
