"""The geolocation file of an EU due-diligence statement (../shared/EUDR.md).

For every plot reaching a lot, one Feature:

- a Point with a numeric ``Area`` (its declared hectares) for a plot of 4 ha or less
  surveyed as a point; a Polygon, or a MultiPolygon of its pieces, otherwise;
- rings with holes are split into hole-free pieces (the Information System refuses
  holes): a vertical cut through each hole, on the 6-decimal grid so the cut edge
  survives truncation unchanged;
- coordinates truncated (toward zero, on their decimal text) to 6 decimals — what
  the Information System does on receipt — then consecutive duplicate vertices
  removed and every ring re-validated (closed, ≥ 4 positions, not on a line,
  not self-crossing, within ±180/±90);
- only the properties ProducerName (when names may be shown), ProducerCountry,
  ProductionPlace and Area.

A plot that cannot be exported is refused by name with the reason; the export as
a whole is then refused (a DDS with a plot silently missing would be false).
Output is split into files of at most 25 MB and 1,000 producers (a producer's
plots stay together), and the API offers the per-producer form
``{position, country, name, geometryGeojson (base64)}``.

This module works on GeoJSON text with shapely because these rules are the EU
system's, applied to the exported coordinates, not to the stored geometry that
plots.geometry owns.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

import shapely
from shapely.geometry import Polygon, mapping, shape
from shapely.geometry.polygon import orient

from plots.errors import DomainError
from traceability.models import ProductLot
from traceability.selectors import ExportRecord, export_records

COUNTRY = "PE"  # ISO 3166-1 alpha-2 of every Chacra plot (the programme is Peruvian)
MAX_BYTES = 25_000_000  # 25 MB per DDS geolocation, counted in decimal megabytes to stay safe
MAX_PRODUCERS = 1_000  # producers per commodity in one DDS
POINT_MAX_HA, POINT_MIN_HA = 4.0, 0.0001
NAME_MAX = 500  # characters of a producer name in the API form
_GRID = Decimal("0.000001")


class ExportRefused(DomainError):
    """Some plots cannot go into an EUDR file; ``details`` name each with its reason."""

    status = 409
    code = "not_exportable"


def truncate(value: float) -> float:
    """``value`` truncated toward zero to 6 decimals, on its shortest decimal text
    (so 0.3 stays 0.3 rather than becoming 0.299999 through binary rounding)."""
    return float(Decimal(repr(value)).quantize(_GRID, rounding=ROUND_DOWN))


def split_holes(polygon: Polygon) -> list[Polygon]:
    """Hole-free pieces covering ``polygon``: each hole is cut through by a vertical
    line at a 6-decimal longitude inside it, recursively, until no piece has a hole."""
    if not polygon.interiors:
        return [polygon]
    hole = Polygon(polygon.interiors[0])
    hx_min, _, hx_max, _ = hole.bounds
    cut = truncate(hole.centroid.x)
    if not hx_min < cut < hx_max:  # a hole narrower than the grid: cut at its centre
        cut = hole.centroid.x
    x_min, y_min, x_max, y_max = polygon.bounds
    pieces: list[Polygon] = []
    for box in ((x_min - 1, y_min - 1, cut, y_max + 1), (cut, y_min - 1, x_max + 1, y_max + 1)):
        part = shapely.clip_by_rect(polygon, *box)
        for piece in getattr(part, "geoms", [part]):
            if isinstance(piece, Polygon) and not piece.is_empty and piece.area > 0:
                pieces.extend(split_holes(piece))
    return pieces


def _clean_ring(coords: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Truncated positions without consecutive duplicates, closed."""
    out: list[tuple[float, float]] = []
    for x, y in coords:
        position = (truncate(x), truncate(y))
        if not out or out[-1] != position:
            out.append(position)
    if out and out[0] != out[-1]:
        out.append(out[0])
    return out


def _exportable_piece(piece: Polygon, n: int) -> Polygon:
    ring = _clean_ring(list(piece.exterior.coords))
    where = f"piece {n}" if n else "the boundary"
    if len(ring) < 4:
        raise ValueError(f"{where} collapses to {len(set(ring))} distinct position(s) after truncation to "
                         "6 decimals")
    result = Polygon(ring)
    if result.area == 0:
        raise ValueError(f"{where} has all its coordinates on a line after truncation to 6 decimals")
    if not result.is_valid:
        raise ValueError(f"{where} crosses itself after truncation to 6 decimals "
                         f"({shapely.is_valid_reason(result)})")
    if any(abs(x) > 180 or abs(y) > 90 for x, y in ring):
        raise ValueError(f"{where} has coordinates outside ±180/±90")
    return orient(result, 1.0)  # exterior counter-clockwise, as RFC 7946 asks


def plot_geometry(record: ExportRecord) -> tuple[dict[str, Any], float]:
    """The EUDR geometry of one plot and its Area (ha); ValueError with the reason."""
    if record.polygon_geojson:
        polygons = list(getattr(shape(json.loads(record.polygon_geojson)), "geoms", []))
        pieces = [p for polygon in polygons for p in split_holes(polygon)]
        numbered = len(pieces) > 1
        clean = [_exportable_piece(p, i + 1 if numbered else 0) for i, p in enumerate(pieces)]
        # The pieces of a split hole share their cut edges, which OGC validity of a
        # MultiPolygon forbids; what must not happen is two pieces claiming the same land.
        for i, a in enumerate(clean):
            if any(a.intersection(b).area > 0 for b in clean[i + 1:]):
                raise ValueError("its pieces overlap after truncation to 6 decimals")
        geometry = mapping(clean[0]) if len(clean) == 1 else mapping(shapely.MultiPolygon(clean))
        return _lists(geometry), round(record.area_ha, 4)
    if record.point_geojson:
        area = record.declared_area_ha
        if area is None:
            raise ValueError("surveyed as a point with no declared area (a point needs its Area, at most 4 ha)")
        if area > POINT_MAX_HA:
            raise ValueError(f"more than 4 ha ({area:.2f} ha declared) without a polygon")
        if area < POINT_MIN_HA:
            raise ValueError(f"declared area {area} ha is below the 0.0001 ha a point may carry")
        point = shape(json.loads(record.point_geojson))
        x, y = truncate(point.x), truncate(point.y)
        if abs(x) > 180 or abs(y) > 90:
            raise ValueError("the point lies outside ±180/±90")
        return {"type": "Point", "coordinates": [x, y]}, round(area, 4)
    raise ValueError("no geometry: no boundary or point was in force on its delivery date")


def _lists(geometry: dict[str, Any]) -> dict[str, Any]:
    """shapely's mapping() nests tuples; a JSON round trip gives plain lists."""
    return json.loads(json.dumps(geometry))


@dataclass
class ProducerFeatures:
    """One producer's Features, kept together when files are split."""

    code: str
    name: str | None
    features: list[dict[str, Any]] = field(default_factory=list)


def build(records: list[ExportRecord], *, names: bool) -> list[ProducerFeatures]:
    """Features per producer; ExportRefused naming every plot that cannot be exported."""
    producers: dict[str, ProducerFeatures] = {}
    refused: list[dict[str, str]] = []
    for record in records:
        try:
            geometry, area = plot_geometry(record)
        except ValueError as exc:
            refused.append({"field": record.plot, "message": str(exc)})
            continue
        properties: dict[str, Any] = {}
        if names:
            properties["ProducerName"] = record.producer_name
        properties["ProducerCountry"] = COUNTRY
        properties["ProductionPlace"] = f"{record.plot}, {record.district}" if record.district else record.plot
        properties["Area"] = area
        group = producers.setdefault(record.producer_code, ProducerFeatures(
            record.producer_code, record.producer_name if names else None))
        group.features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    if refused:
        listing = "; ".join(f"plot {r['field']}: {r['message']}" for r in refused)
        raise ExportRefused(f"{len(refused)} plot(s) cannot be exported: {listing}", details=refused)
    return list(producers.values())


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def split_files(producers: list[ProducerFeatures], *, max_bytes: int = MAX_BYTES,
                max_producers: int = MAX_PRODUCERS) -> list[bytes]:
    """FeatureCollections of at most ``max_bytes`` bytes and ``max_producers`` producers,
    filled in order; a producer's plots are never split across files."""
    head, tail = b'{"type":"FeatureCollection","features":[', b"]}"
    files: list[bytes] = []
    current: list[bytes] = []
    size, count = len(head) + len(tail), 0
    for producer in producers:
        chunk = b",".join(_dumps(f) for f in producer.features)
        if len(head) + len(chunk) + len(tail) > max_bytes:
            raise ExportRefused(f"producer {producer.code}'s plots alone exceed {max_bytes} bytes",
                                details=[{"field": producer.code, "message": "too large for one file"}])
        if current and (size + len(chunk) + 1 > max_bytes or count == max_producers):
            files.append(head + b",".join(current) + tail)
            current, size, count = [], len(head) + len(tail), 0
        size += len(chunk) + (1 if current else 0)
        current.append(chunk)
        count += 1
    if current or not files:
        files.append(head + b",".join(current) + tail)
    return files


def _single_geometry_features(feature: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-producer uploads take Point/Polygon only: a MultiPolygon becomes one
    Polygon Feature per piece, with the same properties."""
    geometry = feature["geometry"]
    if geometry["type"] != "MultiPolygon":
        return [feature]
    return [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": rings},
             "properties": feature["properties"]} for rings in geometry["coordinates"]]


def producer_payload(producers: list[ProducerFeatures], *, confidential: bool) -> dict[str, Any]:
    """The API form: one entry per producer with its own base64 GeoJSON."""
    entries = []
    for position, producer in enumerate(producers, start=1):
        features = [f for feature in producer.features for f in _single_geometry_features(feature)]
        text = _dumps({"type": "FeatureCollection", "features": features})
        entries.append({"position": position, "country": COUNTRY,
                        "name": (producer.name or f"producer {position}")[:NAME_MAX],
                        "geometryGeojson": base64.b64encode(text).decode("ascii")})
    return {"geoLocationConfidential": confidential, "producers": entries}


@dataclass
class LotExport:
    lot: ProductLot
    producers: list[ProducerFeatures]
    files: list[bytes]

    @property
    def plots(self) -> int:
        return sum(len(p.features) for p in self.producers)


def export_lot(lot: ProductLot, *, names: bool = True, max_bytes: int = MAX_BYTES,
               max_producers: int = MAX_PRODUCERS) -> LotExport:
    """The EUDR files of ``lot``; ExportRefused when a plot cannot be exported or no plot reaches it."""
    records = export_records(lot)
    if not records:
        raise ExportRefused(f"lot {lot.code}: no delivery from any plot reaches it; there is nothing to declare")
    try:
        producers = build(records, names=names)
    except ExportRefused as exc:
        exc.message = f"lot {lot.code}: {exc.message}"
        exc.args = (exc.message,)
        raise
    return LotExport(lot, producers, split_files(producers, max_bytes=max_bytes, max_producers=max_producers))
