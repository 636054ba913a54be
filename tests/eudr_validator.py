"""An independent check of EUDR geolocation files, written from ../shared/EUDR.md
alone. It shares no code with traceability.eudr: the point is to catch the
exporter and this reading of the rules disagreeing.

``problems(text)`` returns every rule the file breaks (an empty list: accepted).
"""

from __future__ import annotations

import json
import re
from typing import Any

from shapely.geometry import LinearRing
from shapely.geometry import Polygon as ShapelyPolygon

MAX_FILE_BYTES = 25_000_000
MAX_PRODUCERS_PER_COMMODITY = 1_000
ALLOWED_PROPERTIES = {"ProducerName", "ProducerCountry", "ProductionPlace", "Area"}
PER_PRODUCER_TYPES = {"Point", "Polygon"}
PER_COMMODITY_TYPES = {"Point", "MultiPoint", "Polygon", "MultiPolygon"}
# A JSON number with more than six digits after the decimal point (the system
# truncates to six; a file should already be truncated).
TOO_PRECISE = re.compile(r"-?\d+\.\d{7,}(?:[eE][-+]?\d+)?")
EXPONENT = re.compile(r"(?<![\w\"])-?\d+(?:\.\d+)?[eE][-+]?\d+")


def _ring_problems(ring: Any, where: str) -> list[str]:
    out = []
    if not isinstance(ring, list) or len(ring) < 4:
        return [f"{where}: a ring needs at least four positions"]
    if ring[0] != ring[-1]:
        out.append(f"{where}: ring is open")
    for a, b in zip(ring, ring[1:]):
        if a == b:
            out.append(f"{where}: duplicate consecutive vertex {a}")
    try:
        shape = LinearRing([tuple(p[:2]) for p in ring])
    except Exception as exc:  # noqa: BLE001 - any construction failure is a broken ring
        return out + [f"{where}: not a ring ({exc})"]
    if ShapelyPolygon(shape).area == 0:
        out.append(f"{where}: coordinates all on a line")
    elif not shape.is_simple:
        out.append(f"{where}: self-crossing ring")
    return out


def _position_problems(p: Any, where: str) -> list[str]:
    if not (isinstance(p, list) and len(p) >= 2 and all(isinstance(v, (int, float)) for v in p[:2])):
        return [f"{where}: position {p!r} is not [lon, lat]"]
    lon, lat = p[0], p[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return [f"{where}: position {p} outside ±180/±90"]
    return []


def _positions(coords: Any):
    if isinstance(coords, list) and coords and isinstance(coords[0], (int, float)):
        yield coords
    elif isinstance(coords, list):
        for c in coords:
            yield from _positions(c)


def _geometry_problems(geometry: Any, where: str, allowed: set[str]) -> list[str]:
    if not isinstance(geometry, dict):
        return [f"{where}: no geometry"]
    kind = geometry.get("type")
    if kind not in allowed:
        return [f"{where}: geometry type {kind} is not accepted here"]
    coords = geometry.get("coordinates")
    out = [p for pos in _positions(coords) for p in _position_problems(pos, where)]
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    for i, polygon in enumerate(polygons):
        if not isinstance(polygon, list) or not polygon:
            out.append(f"{where}: empty polygon")
            continue
        if len(polygon) > 1:
            out.append(f"{where}: polygon {i} has a hole")
        for ring in polygon:
            out += _ring_problems(ring, f"{where} polygon {i}")
    if kind == "MultiPolygon" and len(polygons) > 1 and not out:
        shapes = [ShapelyPolygon([tuple(p[:2]) for p in poly[0]]) for poly in polygons]
        for a in range(len(shapes)):
            for b in range(a + 1, len(shapes)):
                if shapes[a].intersection(shapes[b]).area > 0:
                    out.append(f"{where}: pieces {a} and {b} overlap")
    return out


def _property_problems(props: Any, kind: str | None, where: str) -> list[str]:
    if not isinstance(props, dict):
        return [f"{where}: no properties"]
    out = [f"{where}: property {k!r} is not one of the four" for k in props if k not in ALLOWED_PROPERTIES]
    country = props.get("ProducerCountry")
    if not (isinstance(country, str) and re.fullmatch(r"[A-Z]{2}", country)):
        out.append(f"{where}: ProducerCountry {country!r} is not ISO 3166-1 alpha-2")
    area = props.get("Area")
    if "Area" in props and (isinstance(area, bool) or not isinstance(area, (int, float))):
        out.append(f"{where}: Area {area!r} is not a JSON number")
    if kind == "Point":
        if not isinstance(area, (int, float)) or isinstance(area, bool):
            out.append(f"{where}: a Point needs a numeric Area")
        elif not 0.0001 <= area <= 4:
            out.append(f"{where}: a Point's Area {area} is outside 0.0001–4 ha")
    name = props.get("ProducerName")
    if name is not None and (not isinstance(name, str) or len(name) > 500):
        out.append(f"{where}: ProducerName is not text of at most 500 characters")
    return out


def problems(text: bytes | str, *, per_producer: bool = False, max_bytes: int = MAX_FILE_BYTES,
             max_producers: int = MAX_PRODUCERS_PER_COMMODITY) -> list[str]:
    """Every EUDR rule the file breaks."""
    raw = text.encode() if isinstance(text, str) else text
    out = []
    if len(raw) > max_bytes:
        out.append(f"file is {len(raw)} bytes, over {max_bytes}")
    decoded = raw.decode("utf-8")
    out += [f"coordinate {m.group(0)} has more than six decimals" for m in TOO_PRECISE.finditer(decoded)][:5]
    out += [f"number {m.group(0)} in exponent form" for m in EXPONENT.finditer(decoded)][:5]
    doc = json.loads(decoded)
    if doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        return out + ["not a FeatureCollection"]
    if "crs" in doc:
        out.append("a crs member (the file must be WGS 84 lon/lat with none)")
    allowed = PER_PRODUCER_TYPES if per_producer else PER_COMMODITY_TYPES
    producers = set()
    for i, feature in enumerate(doc["features"]):
        where = f"feature {i}"
        if feature.get("type") != "Feature":
            out.append(f"{where}: not a Feature")
            continue
        geometry = feature.get("geometry")
        out += _geometry_problems(geometry, where, allowed)
        props = feature.get("properties")
        out += _property_problems(props, geometry.get("type") if isinstance(geometry, dict) else None, where)
        if isinstance(props, dict):
            producers.add(props.get("ProducerName") or props.get("ProductionPlace"))
    if not per_producer and len(producers) > max_producers:
        out.append(f"{len(producers)} producers, over {max_producers}")
    return out
