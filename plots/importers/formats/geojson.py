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
(QGIS used to write UTM GeoJSON without one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plots.geometry import WGS84, GeometryError, parse_geojson
from plots.importers import registry
from plots.importers.base import Limits, SourceRecord
from plots.importers.formats._common import Layer, LayerRow, read_layer, resolve_srid, vector_record
from plots.importers.safety import check_file_size

_CRS_MEMBER = re.compile(rb'"crs"\s*:\s*\{')
_HEAD_BYTES = 1024 * 1024  # writers put "crs" before "features"; no need to scan further


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
        data = read_layer(path, limits, layer=layer)
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
