"""The one module that handles GEOS, GDAL and pyproj directly.

Everything that turns user input into a stored geometry passes through here:
parsing (GeoJSON, WKT/EWKT, (E)WKB), reprojection to WGS 84, coordinate range and
validity checks with reasons in the user's terms, the named repair rules, the
Polygon→MultiPolygon promotion, RFC 7946 ring orientation, coordinate precision and
geodesic area.

Areas are geodesic on the WGS 84 ellipsoid (pyproj ``Geod``, which is
GeographicLib): never planar degrees and never Web Mercator, whose scale error at
-9° latitude is already 2.5 %.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import shapely
from django.contrib.gis.gdal import CoordTransform, SpatialReference
from django.contrib.gis.gdal.error import GDALException, SRSException
from django.contrib.gis.geos import GEOSException, GEOSGeometry, MultiPolygon, Point, Polygon
from pyproj import Geod
from shapely.geometry import shape as shapely_shape

WGS84 = 4326
SQUARE_METRES_PER_HECTARE = 10_000.0
_GEOD = Geod(ellps="WGS84")

PLOT_GEOMETRY_TYPES = ("Polygon", "MultiPolygon", "Point")
_GEOJSON_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")


class GeometryError(ValueError):
    """Input geometry that cannot be accepted; ``reason`` is for the user."""

    def __init__(self, reason: str, *, code: str = "invalid_geometry") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


# --------------------------------------------------------------------------- parsing


def _check_position(pos: Any, where: str) -> None:
    if not isinstance(pos, (list, tuple)) or not 2 <= len(pos) <= 4:
        raise GeometryError(f"{where}: a position must be [longitude, latitude] (got {pos!r:.60})")
    for value in pos:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise GeometryError(f"{where}: coordinates must be finite numbers (got {value!r:.40})")


def _check_ring(ring: Any, where: str) -> None:
    if not isinstance(ring, (list, tuple)):
        raise GeometryError(f"{where}: a ring must be a list of positions")
    for i, pos in enumerate(ring):
        _check_position(pos, f"{where}, position {i + 1}")
    if len(ring) < 4:
        raise GeometryError(f"{where} has {len(ring)} positions; a closed ring needs at least 4")
    if list(ring[0][:2]) != list(ring[-1][:2]):
        raise GeometryError(f"{where} is not closed: its first and last positions differ",
                            code="open_ring")


def _check_geojson_structure(obj: Any) -> None:
    """Structural checks GDAL/shapely would either crash on or silently fix."""
    if not isinstance(obj, dict):
        raise GeometryError("a geometry must be a GeoJSON object")
    gtype = obj.get("type")
    if gtype not in _GEOJSON_TYPES:
        raise GeometryError(f"unsupported geometry type {gtype!r}; expected one of {', '.join(_GEOJSON_TYPES)}")
    coords = obj.get("coordinates")
    if coords is None:
        raise GeometryError(f"the {gtype} has no coordinates")
    if gtype == "Point":
        _check_position(coords, "Point")
    elif gtype in ("MultiPoint", "LineString"):
        if not isinstance(coords, list):
            raise GeometryError(f"{gtype} coordinates must be a list of positions")
        for i, pos in enumerate(coords):
            _check_position(pos, f"{gtype}, position {i + 1}")
    elif gtype == "Polygon":
        if not isinstance(coords, list) or not coords:
            raise GeometryError("Polygon coordinates must be a non-empty list of rings")
        for r, ring in enumerate(coords):
            _check_ring(ring, "exterior ring" if r == 0 else f"hole {r}")
    elif gtype == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise GeometryError("MultiPolygon coordinates must be a non-empty list of polygons")
        for p, poly in enumerate(coords):
            if not isinstance(poly, list) or not poly:
                raise GeometryError(f"polygon {p + 1}: must be a non-empty list of rings")
            for r, ring in enumerate(poly):
                _check_ring(ring, f"polygon {p + 1}, " + ("exterior ring" if r == 0 else f"hole {r}"))
    elif gtype == "MultiLineString":
        if not isinstance(coords, list):
            raise GeometryError("MultiLineString coordinates must be a list of lines")
        for l_, line in enumerate(coords):
            if not isinstance(line, list):
                raise GeometryError(f"line {l_ + 1}: must be a list of positions")
            for i, pos in enumerate(line):
                _check_position(pos, f"line {l_ + 1}, position {i + 1}")


def srid_from_crs_member(obj: dict) -> int | None:
    """The EPSG code of a legacy GeoJSON ``crs`` member (pre-RFC 7946 files)."""
    crs = obj.get("crs")
    if crs is None:
        return None
    try:
        name = crs["properties"]["name"]
    except (KeyError, TypeError):
        raise GeometryError("the 'crs' member is not of the form {\"type\": \"name\", \"properties\": {\"name\": \"EPSG:…\"}}") from None
    text = str(name).upper()
    if text.endswith("CRS84"):
        return WGS84
    digits = text.rsplit(":", 1)[-1]
    if not digits.isdigit():
        raise GeometryError(f"cannot read the coordinate reference system {name!r}; give an EPSG code")
    return int(digits)


def parse_geojson(value: str | dict, *, srid: int | None = None) -> GEOSGeometry:
    """A GeoJSON geometry (dict or text) as a 2D GEOS geometry in WGS 84.

    ``srid`` names the CRS of the coordinates when it is not WGS 84; a legacy
    ``crs`` member is honoured too. The result is reprojected to 4326.
    """
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GeometryError(f"not valid JSON: {exc}") from None
    _check_geojson_structure(value)
    srid = srid_from_crs_member(value) or srid or WGS84
    geom = GEOSGeometry(memoryview(shapely.to_wkb(shapely.force_2d(shapely_shape(value)))), srid=srid)
    return reproject_to_wgs84(geom)


def parse_wkt(text: str, *, srid: int | None = None) -> GEOSGeometry:
    """WKT or EWKT (``SRID=32718;POLYGON(…)``), reprojected to WGS 84."""
    try:
        geom = GEOSGeometry(text.strip())
    except (GEOSException, ValueError, GDALException) as exc:
        raise GeometryError(f"not valid WKT: {exc}") from None
    if geom.srid is None:
        geom.srid = srid or WGS84
    return reproject_to_wgs84(_force_2d(geom))


def parse_wkb(data: bytes | str, *, srid: int | None = None) -> GEOSGeometry:
    """WKB or EWKB, as bytes or hex text, reprojected to WGS 84."""
    try:
        raw = bytes.fromhex(data) if isinstance(data, str) else bytes(data)
        geom = GEOSGeometry(memoryview(raw))
    except (GEOSException, ValueError, GDALException) as exc:
        raise GeometryError(f"not valid (E)WKB: {exc}") from None
    if geom.srid is None:
        geom.srid = srid or WGS84
    return reproject_to_wgs84(_force_2d(geom))


def parse_geometry(value: Any, *, srid: int | None = None) -> GEOSGeometry:
    """Any of GeoJSON (dict or text), WKT/EWKT or hex (E)WKB."""
    if isinstance(value, dict):
        return parse_geojson(value, srid=srid)
    if isinstance(value, (bytes, memoryview)):
        return parse_wkb(bytes(value), srid=srid)
    if not isinstance(value, str) or not value.strip():
        raise GeometryError("a geometry is required (GeoJSON, WKT or WKB)")
    text = value.strip()
    if text.startswith("{"):
        return parse_geojson(text, srid=srid)
    if all(c in "0123456789abcdefABCDEF" for c in text):
        return parse_wkb(text, srid=srid)
    return parse_wkt(text, srid=srid)


def _force_2d(geom: GEOSGeometry) -> GEOSGeometry:
    if not geom.hasz:
        return geom
    flat = shapely.force_2d(shapely.from_wkb(bytes(geom.wkb)))
    return GEOSGeometry(memoryview(shapely.to_wkb(flat)), srid=geom.srid)


# ----------------------------------------------------------------------- reprojection


def reproject_to_wgs84(geom: GEOSGeometry) -> GEOSGeometry:
    """``geom`` (carrying its SRID) in WGS 84, lon/lat order."""
    srid = geom.srid or WGS84
    if srid == WGS84:
        geom.srid = WGS84
        return geom
    try:
        source = SpatialReference(srid)
    except (SRSException, GDALException):
        raise GeometryError(f"EPSG:{srid} is not a coordinate reference system GDAL knows",
                            code="unknown_crs") from None
    if not (source.geographic or source.projected):
        raise GeometryError(f"EPSG:{srid} is neither a geographic nor a projected coordinate reference system",
                            code="unknown_crs")
    # GDAL 3 honours the authority's axis order (lat/lon for 4326); GeoJSON and
    # PostGIS want lon/lat, so ask for the traditional GIS order on both sides.
    from django.contrib.gis.gdal import AxisOrder

    source = SpatialReference(source.wkt, axis_order=AxisOrder.TRADITIONAL)
    target = SpatialReference(WGS84, axis_order=AxisOrder.TRADITIONAL)
    try:
        out = geom.transform(CoordTransform(source, target), clone=True)
    except (GDALException, GEOSException) as exc:
        raise GeometryError(f"could not reproject from EPSG:{srid}: {exc}", code="unknown_crs") from None
    out.srid = WGS84
    return out


# ---------------------------------------------------------------------------- checks


def check_coordinate_range(geom: GEOSGeometry) -> None:
    """Refuse longitudes outside ±180 or latitudes outside ±90."""
    xmin, ymin, xmax, ymax = geom.extent
    if xmin < -180 or xmax > 180 or ymin < -90 or ymax > 90:
        hint = ""
        if -90 <= xmin and xmax <= 90 and (ymin < -90 or ymax > 90):
            hint = " (latitude and longitude look swapped: GeoJSON is [longitude, latitude])"
        raise GeometryError(
            f"coordinates out of range: longitude must lie within ±180 and latitude within ±90, "
            f"got longitudes {xmin:g}…{xmax:g} and latitudes {ymin:g}…{ymax:g}{hint}",
            code="out_of_range",
        )


def validity_reason(geom: GEOSGeometry) -> str | None:
    """None when valid; otherwise GEOS's reason, reworded for people."""
    if geom.empty:
        return "the geometry is empty"
    if geom.valid:
        return None
    reason = geom.valid_reason  # e.g. "Self-intersection[-76.5 -8.2]"
    kind, _, where = reason.partition("[")
    where = where.rstrip("]")
    words = {
        "Self-intersection": "the boundary crosses itself",
        "Ring Self-intersection": "a ring touches itself",
        "Too few points": "a ring has too few distinct points",
        "Interior is disconnected": "a hole splits the polygon in two",
        "Hole lies outside shell": "a hole lies outside its polygon",
        "Nested shells": "one polygon lies inside another",
        "Nested holes": "one hole lies inside another",
        "Invalid Coordinate": "a coordinate is not a number",
    }.get(kind.strip(), kind.strip().lower())
    if where:
        x, _, y = where.partition(" ")
        return f"{words} near longitude {x}, latitude {y}"
    return words


# --------------------------------------------------------------------------- repairs


@dataclass
class Repair:
    rule: str
    note: str


def _repair_make_valid(geom: GEOSGeometry) -> GEOSGeometry:
    fixed = geom.make_valid()
    polys = [g for g in _iter_parts(fixed) if g.geom_type == "Polygon" and not g.empty]
    if not polys:
        raise GeometryError("the geometry has no area left after repair")
    return MultiPolygon(polys, srid=geom.srid)


def _repair_remove_duplicates(geom: GEOSGeometry) -> GEOSGeometry:
    cleaned = shapely.remove_repeated_points(shapely.from_wkb(bytes(geom.wkb)), tolerance=0.0)
    return GEOSGeometry(memoryview(shapely.to_wkb(cleaned)), srid=geom.srid)


REPAIR_RULES: dict[str, tuple[str, Callable[[GEOSGeometry], GEOSGeometry]]] = {
    "remove_duplicate_vertices": ("consecutive duplicate vertices removed", _repair_remove_duplicates),
    "make_valid": ("self-crossing boundary split into valid pieces (ST_MakeValid)", _repair_make_valid),
}


def repair(geom: GEOSGeometry, rules: list[str]) -> tuple[GEOSGeometry, list[Repair]]:
    """Apply the named rules in order while the geometry is invalid; report each one used."""
    done: list[Repair] = []
    for rule in rules:
        if rule not in REPAIR_RULES:
            raise GeometryError(f"unknown repair rule {rule!r}; known: {', '.join(REPAIR_RULES)}")
        if validity_reason(geom) is None:
            break
        note, fn = REPAIR_RULES[rule]
        fixed = fn(geom)
        # Only rules that changed something are reported.
        if not (fixed.geom_type == geom.geom_type and fixed.equals_exact(geom, 0)):
            done.append(Repair(rule, note))
        geom = fixed
    return geom, done


# ------------------------------------------------------------------- transformations


def _iter_parts(geom: GEOSGeometry):
    if geom.geom_type in ("MultiPolygon", "GeometryCollection", "MultiPoint", "MultiLineString"):
        for part in geom:
            yield from _iter_parts(part)
    else:
        yield geom


def to_multipolygon(geom: GEOSGeometry) -> MultiPolygon:
    if geom.geom_type == "MultiPolygon":
        return geom
    if geom.geom_type == "Polygon":
        return MultiPolygon(geom, srid=geom.srid)
    raise GeometryError(f"expected a Polygon or MultiPolygon, got a {geom.geom_type}", code="wrong_type")


def orient_rfc7946(geom: GEOSGeometry) -> GEOSGeometry:
    """Exterior rings counter-clockwise, holes clockwise (RFC 7946 §3.1.6)."""
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        return geom
    oriented = shapely.orient_polygons(shapely.from_wkb(bytes(geom.wkb)), exterior_cw=False) \
        if hasattr(shapely, "orient_polygons") else _orient_fallback(shapely.from_wkb(bytes(geom.wkb)))
    return GEOSGeometry(memoryview(shapely.to_wkb(oriented)), srid=geom.srid)


def _orient_fallback(geom):
    from shapely.geometry import MultiPolygon as SMulti
    from shapely.geometry.polygon import orient

    if geom.geom_type == "Polygon":
        return orient(geom, 1.0)
    return SMulti([orient(p, 1.0) for p in geom.geoms])


def round_coordinates(geom: GEOSGeometry, digits: int) -> GEOSGeometry:
    """Coordinates rounded to ``digits`` decimals, duplicates that creates removed.

    EUDR's Information System truncates to 6 decimals; rounding can merge vertices
    or make a ring invalid, so callers re-check validity afterwards.
    """
    rounded = shapely.set_precision(shapely.from_wkb(bytes(geom.wkb)), 10.0 ** -digits, mode="pointwise")
    rounded = shapely.remove_repeated_points(rounded)
    return GEOSGeometry(memoryview(shapely.to_wkb(rounded)), srid=geom.srid)


# -------------------------------------------------------------------------- measures


def geodesic_area_ha(geom: GEOSGeometry) -> float:
    """Area on the WGS 84 ellipsoid in hectares (GeographicLib through pyproj)."""
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        return 0.0
    area, _perimeter = _GEOD.geometry_area_perimeter(shapely.from_wkb(bytes(geom.wkb)))
    return abs(area) / SQUARE_METRES_PER_HECTARE


def geodesic_distance_m(a: Point, b: Point) -> float:
    _az, _baz, dist = _GEOD.inv(a.x, a.y, b.x, b.y)
    return dist


# ------------------------------------------------------------------ plot pipeline


@dataclass
class CleanGeometry:
    """A plot geometry ready to store, with what was done to it."""

    geom: GEOSGeometry  # MultiPolygon or Point, SRID 4326
    area_ha: float
    repairs: list[Repair] = field(default_factory=list)

    @property
    def is_point(self) -> bool:
        return self.geom.geom_type == "Point"


def clean_plot_geometry(value: Any, *, srid: int | None = None, repair_rules: tuple[str, ...] = ()) -> CleanGeometry:
    """Parse, reproject, range-check, validate (or repair by named rules) and orient.

    A plot is a Polygon/MultiPolygon, or a Point for a small plot surveyed as a point.
    Invalid polygons are refused with the reason unless the caller names repair rules,
    in which case each rule applied is returned for the import report.
    """
    geom = value if isinstance(value, GEOSGeometry) else parse_geometry(value, srid=srid)
    if isinstance(value, GEOSGeometry):
        geom = reproject_to_wgs84(_force_2d(geom))
    if geom.empty:
        raise GeometryError("the geometry is empty", code="empty")
    if geom.geom_type not in PLOT_GEOMETRY_TYPES:
        raise GeometryError(
            f"a plot must be a Polygon, MultiPolygon or Point, not a {geom.geom_type}"
            + (" (a walked track must be closed into a polygon first)" if "LineString" in geom.geom_type else ""),
            code="wrong_type",
        )
    check_coordinate_range(geom)
    if geom.geom_type == "Point":
        return CleanGeometry(geom=Point(geom.x, geom.y, srid=WGS84), area_ha=0.0)
    repairs: list[Repair] = []
    reason = validity_reason(geom)
    if reason and repair_rules:
        geom, repairs = repair(geom, list(repair_rules))
        reason = validity_reason(geom)
    if reason:
        raise GeometryError(f"invalid polygon: {reason}")
    geom = orient_rfc7946(to_multipolygon(geom))
    area = geodesic_area_ha(geom)
    if area <= 0:
        raise GeometryError("the polygon has no area (all its points lie on a line)", code="no_area")
    return CleanGeometry(geom=geom, area_ha=area, repairs=repairs)
