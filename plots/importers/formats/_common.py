"""What the format readers share: CRS resolution, the per-feature geometry checks,
JSON-safe properties and reading a vector layer through pyogrio (GDAL).

The CRS rule for every reader: the file's own CRS is used; ``srid`` (the CLI's
``--crs``) names it when the file has none; a ``srid`` that contradicts the file is
refused rather than guessed between, because a wrong CRS can still give plausible
coordinates (UTM metres read as degrees land near the equator, not off the map).
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
from django.contrib.gis.gdal import GDALException, OGRGeometry
from django.contrib.gis.geos import GEOSException, GEOSGeometry, LineString, MultiLineString
from pyogrio import raw as ogr_raw
from pyogrio.errors import DataLayerError, DataSourceError, FeatureError, FieldError, GeometryError as OgrGeometryError
from shapely.errors import GEOSException as ShapelyGEOSException

from plots.geometry import WGS84, GeometryError, reproject_to_wgs84
from plots.importers import gdal_policy
from plots.importers.base import ImportFileError, Limits, SourceRecord, TrackPoint

logger = logging.getLogger(__name__)

CRS_EXAMPLE = "e.g. --crs 32718 for UTM zone 18 S"


# ------------------------------------------------------------------------------ CRS


def epsg_of(crs: str | None) -> int | None:
    """The EPSG code of a CRS as pyogrio reports it ("EPSG:3395", "OGC:CRS84" or WKT)."""
    if not crs:
        return None
    text = crs.strip()
    upper = text.upper()
    if upper.startswith("EPSG:") and upper[5:].isdigit():
        return int(upper[5:])
    if upper.endswith("CRS84"):
        return WGS84
    # GDAL could not name it (often an ESRI .prj); pyproj matches WKT against the EPSG
    # database more leniently. 70 % is pyproj's own default confidence for to_epsg.
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(text).to_epsg(min_confidence=70)
    except CRSError:
        return None


def resolve_srid(path: Path, declared: str | None, srid: int | None, *, what: str = "the file") -> int:
    """The SRID to read ``path``'s coordinates in (see the module docstring)."""
    if not declared:
        if srid is None:
            raise ImportFileError(path, f"{what} has no coordinate reference system: name its CRS, {CRS_EXAMPLE}")
        return srid
    code = epsg_of(declared)
    if code is None:
        if srid is not None:
            return srid
        raise ImportFileError(path, f"{what}'s coordinate reference system has no EPSG code GDAL or PROJ "
                                    f"recognise: name its CRS, {CRS_EXAMPLE}")
    if srid is not None and srid != code:
        raise ImportFileError(path, f"{what} declares EPSG:{code} but EPSG:{srid} was given: "
                                    "leave the CRS out, or correct the file")
    return code


# ------------------------------------------------------------------------ geometry


def count_check(path: Path, count: int, limits: Limits, noun: str = "features") -> None:
    if count > limits.max_features:
        raise ImportFileError(path, f"the file holds {count:,} {noun}; at most {limits.max_features:,} are allowed "
                                    "per import: split it")


def range_reason(geom: GEOSGeometry, *, order: str = "positions are [longitude, latitude]") -> str | None:
    """Why ``geom`` (in 4326) lies off the globe, or None. ``order`` says how the format
    writes a position, for the hint when latitude and longitude look swapped."""
    xmin, ymin, xmax, ymax = geom.extent
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        return "a coordinate is not a number (NaN) or is infinite"
    if -180 <= xmin and xmax <= 180 and -90 <= ymin and ymax <= 90:
        return None
    hint = ""
    # Swapped axes show up only when the longitude is beyond ±90 (e.g. Asia, the
    # Pacific); for Peru (lon -76, lat -8) both orders are on the globe.
    if -90 <= xmin and xmax <= 90 and -180 <= ymin and ymax <= 180:
        hint = f"; latitude and longitude look swapped ({order})"
    return (f"coordinates out of range: longitude must lie within ±180 and latitude within ±90, "
            f"got longitudes {xmin:g} … {xmax:g} and latitudes {ymin:g} … {ymax:g}{hint}")


def vertices_reason(n: int, limits: Limits) -> str | None:
    if n > limits.max_vertices_per_feature:
        return f"it has {n:,} vertices, more than the {limits.max_vertices_per_feature:,} allowed per feature"
    return None


def finite_reason(coords: np.ndarray) -> str | None:
    """Why coordinates are unusable, checked before GEOS sees them: a NaN ring's first and
    last positions never compare equal, so GEOS would call it "not closed"."""
    if np.isnan(coords).any():
        return "a coordinate is not a number (NaN)"
    if not np.isfinite(coords).all():
        return "a coordinate is infinite"
    return None


def _unbuildable_finite_reason(wkb: bytes) -> str | None:
    """``finite_reason`` for WKB GEOS refused to build: OGR reads the coordinates of an
    unclosed (NaN) ring that GEOS will not."""
    try:
        coords = OGRGeometry(memoryview(wkb)).coords
    except (GDALException, ValueError, TypeError):
        return None
    flat = np.array(list(_flatten(coords)), dtype=float)
    return finite_reason(flat) if flat.size else None


def _flatten(value: Any) -> Iterator[float]:
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def finish_geometry(geom: GEOSGeometry, *, order: str = "positions are [longitude, latitude]") -> tuple[GEOSGeometry | None, str | None]:
    """``geom`` (carrying its SRID) reprojected to 4326 and range-checked."""
    try:
        out = reproject_to_wgs84(geom)
    except GeometryError as exc:
        return None, exc.reason
    reason = range_reason(out, order=order) if not out.empty else None
    return (None, reason) if reason else (out, None)


def geometry_from_wkb(wkb: bytes | None, srid: int, limits: Limits) -> tuple[GEOSGeometry | None, str | None]:
    """A feature's WKB as GEOS in 4326 (2D), or None and why not."""
    if wkb is None:
        return None, "it has no geometry"
    try:
        shape = shapely.from_wkb(wkb)
        if shape.is_empty:
            return None, "its geometry is empty"
        reason = finite_reason(shapely.get_coordinates(shape))
        if reason:
            return None, reason
        reason = vertices_reason(shapely.get_num_coordinates(shape), limits)
        if reason:
            return None, reason
        geom = GEOSGeometry(memoryview(shapely.to_wkb(shapely.force_2d(shape))), srid=srid)
    except (ShapelyGEOSException, GEOSException, ValueError) as exc:
        reason = _unbuildable_finite_reason(wkb)
        if reason:
            return None, reason
        # GDAL passes unclosed rings through (GeoJSON, KML); GEOS refuses to build them.
        if "closed linestring" in str(exc):
            return None, "a ring is not closed: its first and last positions differ"
        return None, f"its geometry cannot be built: {exc}"
    return finish_geometry(geom)


def line_geometry(segments: list[list[TrackPoint]]) -> GEOSGeometry | None:
    """The segments with two or more points as a LineString or MultiLineString in 4326."""
    lines = [LineString([(p.lon, p.lat) for p in seg], srid=WGS84) for seg in segments if len(seg) >= 2]
    if not lines:
        return None
    return lines[0] if len(lines) == 1 else MultiLineString(lines, srid=WGS84)


def segments_of_lines(geom: GEOSGeometry) -> list[list[TrackPoint]] | None:
    """A (Multi)LineString's parts as track segments without times (KML, GeoJSON tracks)."""
    if geom.geom_type == "LineString":
        parts = [geom]
    elif geom.geom_type == "MultiLineString":
        parts = list(geom)
    else:
        return None
    return [[TrackPoint(lon=x, lat=y) for x, y, *_ in part.coords] for part in parts]


# ---------------------------------------------------------------------- properties


def json_value(value: Any) -> Any:
    """A property value as str/int/float/bool/None (dates as ISO text)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (np.ndarray, list, tuple)):
        return [json_value(v) for v in list(value)]
    return str(value)


def feature_label(prefix: str, number: int, properties: dict[str, Any]) -> str:
    """ "feature 3", or "feature 3 (UID 108)" when the feature carries an id or a name."""
    lowered = {str(k).lower(): k for k in properties}
    for key in ("name", "nombre", "id", "uid", "plot_id", "code", "codigo", "código"):
        original = lowered.get(key)
        if original is not None and properties[original] not in (None, ""):
            value = properties[original]
            shown = repr(value) if isinstance(value, str) else value
            return f"{prefix} {number} ({original} {shown})"
    return f"{prefix} {number}"


# ---------------------------------------------------------------------- GDAL layers


@dataclass
class LayerRow:
    index: int  # 0-based position in the layer, in file order
    properties: dict[str, Any]
    wkb: bytes | None


@dataclass
class Layer:
    """One layer as GDAL read it: the geometries (WKB) and the attribute columns.
    ``rows`` builds the per-feature view on first use; the bulk loader works on the
    columns and builds rows only for the features it hands to the per-feature path."""

    name: str
    crs: str | None
    wkb: list[bytes | None]
    fields: list[str]
    columns: list[list[Any]]  # one list per field, in ``fields`` order, values as GDAL returned them
    _rows: list[LayerRow] | None = None

    def __len__(self) -> int:
        return len(self.wkb)

    def row(self, i: int) -> LayerRow:
        return LayerRow(index=i, wkb=self.wkb[i],
                        properties={name: json_value(col[i]) for name, col in zip(self.fields, self.columns)})

    @property
    def rows(self) -> list[LayerRow]:
        if self._rows is None:
            self._rows = [self.row(i) for i in range(len(self.wkb))]
        return self._rows


def layer_names(path: Path, kind: str, source: str | Path | None = None) -> list[tuple[str, str | None]]:
    """(name, geometry type or None for attribute-only tables) of each layer of ``source``
    (default ``path``), opened as ``kind`` under ``gdal_policy``."""
    opened = gdal_policy.source(path, kind, source)
    with gdal_errors(path):
        return [(str(n), None if t is None else str(t)) for n, t in pyogrio.list_layers(opened)]


def pick_layer(path: Path, layers: list[tuple[str, str | None]], layer: str | None) -> str:
    """``layer`` if the file has it, else its first layer with geometry."""
    names = [n for n, _ in layers]
    if layer is not None:
        if layer not in names:
            raise ImportFileError(path, f"no layer {layer!r}; the file has: {', '.join(map(repr, names)) or 'none'}")
        return layer
    spatial = [n for n, t in layers if t is not None]
    if not spatial:
        raise ImportFileError(path, "the file has no layer with geometries")
    return spatial[0]


def read_layer(path: Path, limits: Limits, *, kind: str, layer: str | None = None,
               source: str | Path | None = None, already_counted: int = 0) -> Layer:
    """All features of one layer, after checking how many there are.

    ``source`` is what GDAL opens when it differs from the user's file (an extracted
    member); errors always name ``path``. ``kind`` (a ``gdal_policy.DRIVERS`` key) is
    the format the file must be opened as. ``already_counted`` adds the features of
    layers read before this one, so the feature limit is per file.
    """
    source = gdal_policy.source(path, kind, source)
    with gdal_errors(path):
        info = pyogrio.read_info(source, layer=layer)
        gdal_policy.check_driver(path, kind, info.get("driver"))
        if info["features"] < 0:  # a driver without a fast count: let GDAL iterate once
            info = pyogrio.read_info(source, layer=layer, force_feature_count=True)
        count_check(path, already_counted + info["features"], limits)
        # No max_features here: with it pyogrio stops at the first feature GDAL fails
        # on (a malformed GeoJSON Polygon), while without it GDAL yields that feature
        # with no geometry and the reader can say which one it was and why.
        meta, _fids, geoms, fields = ogr_raw.read(source, layer=layer, datetime_as_string=True, return_fids=True)
    count_check(path, already_counted + len(geoms), limits)
    return Layer(name=str(layer or info.get("layer_name", "")), crs=meta.get("crs"), wkb=list(geoms),
                 fields=[str(n) for n in meta["fields"]], columns=[array.tolist() for array in fields])


class gdal_errors:
    """GDAL failures as ImportFileError naming ``path``; GDAL warnings to the log.

    GDAL's warnings (ring winding auto-corrected, extra coordinates ignored) reach
    Python as RuntimeWarnings; the readers report what matters per feature, so
    the warnings are logged rather than printed into a command's output.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._catch = warnings.catch_warnings(record=True)

    def __enter__(self) -> None:
        self._caught = self._catch.__enter__()
        warnings.simplefilter("always", RuntimeWarning)

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._catch.__exit__(None, None, None)
        for warning in self._caught:
            logger.info("%s: GDAL: %s", self.path.name, warning.message)
        if exc_type is not None and issubclass(exc_type, (DataSourceError, DataLayerError, FeatureError,
                                                          FieldError, OgrGeometryError)):
            raise ImportFileError(self.path, f"GDAL cannot read it: {_first_line(exc)}") from None
        return False


# A server path in a GDAL message ("/tmp/chacra-upload-x/upload.geojson", "GeoJSON:/…"):
# the person who sent the file sees its base name only.
_SERVER_PATH = re.compile(r"(?:\b[A-Za-z][\w ]*:)?/(?:[^\s'\"/]+/)+([^\s'\"/]*)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return _SERVER_PATH.sub(r"\1", text[0]) if text else type(exc).__name__


def vector_record(row: LayerRow, srid: int, limits: Limits, *, number: int | None = None,
                  prefix: str = "feature") -> SourceRecord:
    """The record of one feature read through GDAL; ``number`` defaults to its place in the layer."""
    number = row.index + 1 if number is None else number
    label = feature_label(prefix, number, row.properties)
    geom, reason = geometry_from_wkb(row.wkb, srid, limits)
    return SourceRecord(number=number, label=label, geometry=geom, properties=row.properties,
                        error=f"{label}: {reason}" if reason else None)


def vector_records(rows: list[LayerRow], srid: int, limits: Limits) -> Iterator[SourceRecord]:
    for row in rows:
        yield vector_record(row, srid, limits)
