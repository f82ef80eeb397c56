"""Geofences: service-denied areas as GeoJSON polygons or circles."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike
from shapely.geometry import Polygon

from ..errors import ScenarioError
from ._common import BoolArray, _check_lat_lon


@dataclass(frozen=True)
class Circle:
    """A service-denied disc: every point within ``radius_km`` (geodesic distance on the WGS84
    ellipsoid) of a centre.

    Raises
    ------
    ScenarioError
        On out-of-range coordinates or a radius that is not positive.
    """

    lat_deg: float
    lon_deg: float
    radius_km: float
    name: str = "circle"

    def __post_init__(self) -> None:
        where = f"disruptions.geofence[{self.name!r}]"
        lat, lon = _check_lat_lon(self.lat_deg, self.lon_deg, where)
        object.__setattr__(self, "lat_deg", lat)
        object.__setattr__(self, "lon_deg", lon)
        try:
            r = float(self.radius_km)
        except (TypeError, ValueError):
            r = math.nan
        if not (math.isfinite(r) and 0.0 < r <= 20_000.0):
            raise ScenarioError(
                where, f"radius_km must be in (0, 20000] km, got {self.radius_km!r}"
            )
        object.__setattr__(self, "radius_km", r)


def _position(pos: Any, where: str) -> tuple[float, float]:
    if not isinstance(pos, list | tuple) or len(pos) not in (2, 3):
        raise ScenarioError(where, f"a position must be [longitude, latitude], got {pos!r}")
    try:
        lon, lat = float(pos[0]), float(pos[1])
    except (TypeError, ValueError):
        raise ScenarioError(
            where, f"a position must be two numbers [longitude, latitude], got {pos!r}"
        ) from None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ScenarioError(where, f"position {pos!r} is not finite")
    if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
        raise ScenarioError(
            where,
            f"position {pos!r} is out of range: GeoJSON positions are [longitude, latitude] in "
            "degrees, longitude in [-180, 180], latitude in [-90, 90]; are they swapped?",
        )
    return lon, lat


def _ring(coords: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(coords, list | tuple) or len(coords) < 4:
        n = len(coords) if isinstance(coords, list | tuple) else coords
        raise ScenarioError(
            where,
            f"a polygon ring needs at least 4 positions (a triangle plus the closing repeat of "
            f"the first), got {n!r}",
        )
    pts = [_position(p, f"{where}[{i}]") for i, p in enumerate(coords)]
    if pts[0] != pts[-1]:
        raise ScenarioError(
            where,
            f"polygon ring is not closed: first position {list(pts[0])} != last "
            f"{list(pts[-1])}; repeat the first position at the end (GeoJSON, RFC 7946 3.1.6)",
        )
    return pts


def _polygon(coords: Any, where: str) -> Polygon:
    if not isinstance(coords, list | tuple) or not coords:
        raise ScenarioError(where, f"Polygon coordinates must be a list of rings, got {coords!r}")
    rings = [_ring(r, f"{where}.coordinates[{i}]") for i, r in enumerate(coords)]
    poly = Polygon(rings[0], rings[1:])
    if not poly.is_valid:
        raise ScenarioError(
            where,
            f"polygon is not valid ({shapely.is_valid_reason(poly)}): its edges must not cross "
            "and holes must lie inside the outer ring; reorder the vertices (or repair it with "
            "shapely.make_valid)",
        )
    return poly


def _areas(obj: Any, where: str) -> tuple[list[Polygon], list[Circle]]:
    """Polygons and circles of a GeoJSON object."""
    if not isinstance(obj, Mapping) or "type" not in obj:
        raise ScenarioError(where, f"expected a GeoJSON object with a 'type', got {obj!r:.80}")
    kind = obj["type"]
    polys: list[Polygon] = []
    circles: list[Circle] = []
    if kind == "FeatureCollection":
        for i, feat in enumerate(obj.get("features", [])):
            p, c = _areas(feat, f"{where}.features[{i}]")
            polys += p
            circles += c
    elif kind == "GeometryCollection":
        for i, geom in enumerate(obj.get("geometries", [])):
            p, c = _areas(geom, f"{where}.geometries[{i}]")
            polys += p
            circles += c
    elif kind == "Feature":
        geom = obj.get("geometry")
        props = obj.get("properties") or {}
        if isinstance(geom, Mapping) and geom.get("type") == "Point":
            if "radius_km" not in props:
                raise ScenarioError(
                    where,
                    "a Point feature denotes a circle and needs properties.radius_km, e.g. "
                    '{"radius_km": 50}',
                )
            lon, lat = _position(geom.get("coordinates"), f"{where}.geometry.coordinates")
            name = str(props.get("name", f"{where}"))
            circles.append(Circle(lat, lon, props["radius_km"], name=name))
        else:
            p, c = _areas(geom, f"{where}.geometry")
            polys += p
            circles += c
    elif kind == "Polygon":
        polys.append(_polygon(obj.get("coordinates"), where))
    elif kind == "MultiPolygon":
        coords = obj.get("coordinates")
        if not isinstance(coords, list | tuple):
            raise ScenarioError(
                where, f"MultiPolygon coordinates must be a list of polygons, got {coords!r}"
            )
        for i, c in enumerate(coords):
            polys.append(_polygon(c, f"{where}.coordinates[{i}]"))
    elif kind == "Point":
        raise ScenarioError(
            where,
            "a bare Point has no area: wrap it in a Feature with properties.radius_km, or use a "
            "circle with lat_deg, lon_deg and radius_km",
        )
    else:
        raise ScenarioError(
            where,
            f"unsupported GeoJSON type {kind!r}: service-denied areas are Polygon, MultiPolygon "
            "or Point features with properties.radius_km",
        )
    return polys, circles


@dataclass(frozen=True, eq=False)
class Geofence:
    """Service-denied areas: polygons (longitude/latitude, WGS84 degrees) and circles.

    Polygon edges are straight lines in longitude and latitude, as GeoJSON (RFC 7946 3.1.1)
    defines them, not great circles; areas across the antimeridian must be split into two
    polygons there (RFC 7946 3.1.9). A point on an edge counts as inside.

    Parameters
    ----------
    polygons : sequence of shapely.geometry.Polygon
        Valid polygons in ``(lon_deg, lat_deg)`` coordinates.
    circles : sequence of Circle
    name : str
        Label in messages.

    Examples
    --------
    >>> fence = Geofence.from_geojson({"type": "Polygon", "coordinates": [
    ...     [[30.0, 50.0], [31.0, 50.0], [31.0, 51.0], [30.0, 51.0], [30.0, 50.0]]]})
    >>> fence.denied_sites([50.5, 52.0], [30.5, 30.5])
    array([ True, False])
    """

    polygons: tuple[Polygon, ...] = ()
    circles: tuple[Circle, ...] = ()
    name: str = "geofence"
    _union: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        polys = tuple(self.polygons)
        object.__setattr__(self, "polygons", polys)
        object.__setattr__(self, "circles", tuple(self.circles))
        union = shapely.union_all(polys) if polys else None
        if union is not None:
            shapely.prepare(union)
        object.__setattr__(self, "_union", union)

    @classmethod
    def from_geojson(cls, data: str | Mapping[str, Any], *, name: str = "geofence") -> Geofence:
        """Areas from GeoJSON: a Polygon, MultiPolygon, Feature, FeatureCollection or
        GeometryCollection; a Point feature with ``properties.radius_km`` is a circle.

        Parameters
        ----------
        data : str or mapping
            GeoJSON text or the parsed object.
        name : str
            Label in messages.

        Raises
        ------
        ScenarioError
            If the text is not JSON, a ring is not closed or has fewer than 4 positions, a
            position is out of range, or a polygon is self-intersecting.
        """
        where = f"disruptions.geofence[{name!r}]"
        obj: Any = data
        if isinstance(data, str):
            try:
                obj = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ScenarioError(where, f"not valid GeoJSON text: {exc}") from None
        polys, circles = _areas(obj, where)
        return cls(tuple(polys), tuple(circles), name)

    def __or__(self, other: Geofence) -> Geofence:
        return Geofence(
            self.polygons + other.polygons,
            self.circles + other.circles,
            f"{self.name}|{other.name}",
        )

    def denied_sites(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> BoolArray:
        """Which points lie in a denied area.

        Parameters
        ----------
        lat_deg, lon_deg : array_like, shape (G,)
            WGS84 coordinates of the sites [deg].

        Returns
        -------
        ndarray of bool, shape (G,)
            False where a coordinate is NaN.
        """
        lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon_deg, dtype=np.float64))
        out = np.zeros(np.broadcast(lat, lon).shape, dtype=np.bool_)
        if self._union is not None:
            out |= shapely.intersects_xy(self._union, lon, lat)
        if self.circles:
            from pyproj import Geod

            geod = Geod(ellps="WGS84")
            la, lo = np.broadcast_arrays(lat, lon)
            for c in self.circles:
                _az1, _az2, dist = geod.inv(
                    np.full(la.shape, c.lon_deg), np.full(la.shape, c.lat_deg), lo, la
                )
                with np.errstate(invalid="ignore"):
                    out |= np.asarray(dist) <= c.radius_km * 1e3
        return out
