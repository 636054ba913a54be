"""GeoJSON through GDAL (pyogrio), with the malformations GDAL hides explained.

GDAL is lenient where a plot register must not be: a feature whose geometry it
cannot read comes back with *no* geometry and only a warning. GDAL 3.12 does that
to a "Polygon" whose coordinates are nested one level deeper, like a
MultiPolygon's (the Cameroon CICC export does this to every feature). So whenever
GDAL returns a feature without geometry, the file is read once more with the json
module and that feature's geometry explained: the nesting, or the reason
``plots.geometry.parse_geojson`` gives. Well-formed files are parsed once.

CRS: RFC 7946 GeoJSON is WGS 84; a legacy ``crs`` member is honoured (GDAL reads
it). Without a ``crs`` member, ``srid`` may name the CRS of an old non-RFC file
(QGIS used to write UTM GeoJSON without one). Only a *named* CRS (EPSG:32718,
urn:ogc:def:crs:EPSG::32718 …) is accepted: GDAL fetches a "link" or "URL" crs
from wherever it points, so those are refused before GDAL opens the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plots.geometry import WGS84, GeometryError, parse_geojson
from plots.importers import registry, sniff
from plots.importers.base import ImportFileError, Limits, SourceRecord
from plots.importers.formats._common import Layer, LayerRow, read_layer, resolve_srid, vector_record
from plots.importers.safety import check_file_size

_CRS_MEMBER = re.compile(rb'"crs"\s*:\s*\{')
_HEAD_BYTES = 1024 * 1024  # writers put "crs" before "features"; no need to scan further
_SHOWABLE = re.compile(r"[\w:. -]{1,60}")
_CHUNK = 4 * 1024 * 1024
_CRS_WINDOW = 64 * 1024  # a crs member is a few hundred bytes
# CRS names GDAL resolves from its own database, never by reading a file or a URL.
_NAMED_CRS = re.compile(r"(urn:ogc:def:crs:[A-Za-z0-9.]+:[0-9.]*:[A-Za-z0-9.]+|EPSG:\d+|OGC:CRS84|"
                        r"https?://www\.opengis\.net/def/crs/[A-Za-z]+/[0-9.]+/[A-Za-z0-9.]+)", re.I)


class GeoJsonImporter:
    name = "geojson"
    extensions = (".geojson", ".json")
    description = "GeoJSON features (RFC 7946, or older files with a crs member)"

    def read(self, path: Path, *, srid: int | None = None, limits: Limits = Limits(),
             layer: str | None = None) -> Iterator[SourceRecord]:
        data, srid = self.layer(path, srid=srid, limits=limits, layer=layer)
        return self.records(path, data.rows, srid, limits)

    def layer(self, path: Path, *, srid: int | None = None, limits: Limits = Limits(),
              layer: str | None = None) -> tuple[Layer, int]:
        """The raw layer and the SRID of its coordinates (for the bulk loader)."""
        path = Path(path)
        check_file_size(path, limits)
        sniff.expect(path, "json", "GeoJSON")
        check_crs_members(path)
        data = read_layer(path, limits, kind="GeoJSON", layer=layer)
        declared = data.crs if _has_crs_member(path) else None
        return data, resolve_srid(path, declared, srid) if declared else (srid or WGS84)

    def records(self, path: Path, rows: list[LayerRow], srid: int, limits: Limits) -> Iterator[SourceRecord]:
        return _records(path, rows, srid, limits)


def _records(path: Path, rows: list[LayerRow], srid: int, limits: Limits) -> Iterator[SourceRecord]:
    raw_features: list[Any] | None = None
    for row in rows:
        record = vector_record(row, srid, limits)
        if row.wkb is None:
            if raw_features is None:
                raw_features = _raw_features(path)
            record.error = f"{record.label}: {_explain_missing(raw_features, row.index)}"
        yield record


def _has_crs_member(path: Path) -> bool:
    with open(path, "rb") as handle:
        return bool(_CRS_MEMBER.search(handle.read(_HEAD_BYTES)))


def check_crs_members(path: Path) -> None:
    """Refuse a ``crs`` member anywhere in the file that is not a named CRS (see the
    module docstring). Streamed in chunks, so a large file costs little memory."""
    with open(path, "rb") as handle:
        offset, carry = 0, b""
        while chunk := handle.read(_CHUNK):
            data = carry + chunk
            for match in _CRS_MEMBER.finditer(data):
                window = data[match.end() - 1:match.end() - 1 + _CRS_WINDOW]
                if len(window) < _CRS_WINDOW and len(chunk) == _CHUNK:
                    window += handle.read(_CRS_WINDOW)
                    handle.seek(offset + len(chunk))
                reason = _crs_reason(window)
                if reason:
                    raise ImportFileError(path, f"refused: {reason}")
            carry = data[-64:]  # a member split across two chunks is still found
            offset += len(chunk)


def _crs_reason(window: bytes) -> str | None:
    try:
        member, _end = json.JSONDecoder().raw_decode(window.decode("utf-8", "replace"))
    except ValueError:
        return None  # cut off or not JSON here: GDAL reports malformed files itself
    if not isinstance(member, dict):
        return None
    kind = str(member.get("type", "")).lower()
    props = member.get("properties") if isinstance(member.get("properties"), dict) else {}
    name = str(props.get("name", "")) if kind == "name" else ""
    if kind == "name" and _NAMED_CRS.fullmatch(name.strip()):
        return None
    if kind == "name":
        shown = f" {name!r}" if _SHOWABLE.fullmatch(name) else ""  # never echo a path or a URL
        return (f"its crs member names a CRS{shown} Chacra does not resolve; give an EPSG code (e.g. "
                "\"EPSG:32718\"): GDAL would read other names as file paths or URLs")
    return (f"its crs member is of type {kind[:20]!r}; only a named CRS (e.g. \"EPSG:32718\") is read, because "
            "GDAL would fetch a linked CRS from the network")


def _raw_features(path: Path) -> list[Any]:
    try:
        with open(path, "rb") as handle:
            document = json.load(handle)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return []
    if not isinstance(document, dict):
        return []
    if document.get("type") == "FeatureCollection":
        features = document.get("features")
        return features if isinstance(features, list) else []
    if document.get("type") == "Feature":
        return [document]
    return [{"type": "Feature", "geometry": document}]


def _explain_missing(raw_features: list[Any], index: int) -> str:
    """Why GDAL gave feature ``index`` no geometry, from the feature as written."""
    if index >= len(raw_features) or not isinstance(raw_features[index], dict):
        return "it has no geometry GDAL can read"
    geometry = raw_features[index].get("geometry")
    if geometry is None:
        return "it has no geometry"
    nested = _polygon_nested_like_multipolygon(geometry)
    if nested:
        return nested
    try:
        parse_geojson(geometry)
    except GeometryError as exc:
        return f"its geometry is malformed: {exc.reason}"
    except (ValueError, TypeError) as exc:
        return f"its geometry is malformed: {exc}"
    return "it has no geometry GDAL can read"


def _polygon_nested_like_multipolygon(geometry: Any) -> str | None:
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        return None
    coords = geometry.get("coordinates")
    try:
        too_deep = isinstance(coords[0][0][0], list)
    except (TypeError, IndexError, KeyError):
        return None
    if not too_deep:
        return None
    positions = sum(len(ring) for poly in coords if isinstance(poly, list)
                    for ring in poly if isinstance(ring, list))
    return ("its Polygon coordinates are nested like a MultiPolygon's: [[[[lon, lat], …]]] where a "
            f"Polygon has [[[lon, lat], …]] ({len(coords)} polygon(s), {positions} positions). "
            "GDAL would drop such a geometry; export it again as a MultiPolygon, or remove one "
            "level of brackets")


registry.register(GeoJsonImporter())
