"""KoboToolbox / ODK CSV exports with a geoshape or geotrace column.

ODK writes a shape as ``"lat lon alt accuracy;lat lon alt accuracy;…"`` — latitude
first, unlike GeoJSON — and a geoshape repeats its first point at the end.

* Column: the first whose name says it holds a shape ("geoshape", "geotrace",
  "shape", "trace", "boundary", "limite"; group prefixes such as
  "grupo_parcela/limite_parcela" are fine) and one of whose first 50 values parses
  (so a calculated "shape_area" is passed over); otherwise the first column all
  of whose first 50 non-empty values parse as such strings.
* Kind: a column named like a trace gives LineStrings, one named like a shape gives
  Polygons (closed if the export did not repeat the first point); otherwise a
  closed value is a shape and an open one a trace.
* Traces also come as ``segments`` with the accuracy of each point (ODK writes 0
  for points placed by hand on the map: that is "unknown", so None).
* Rows without a shape get an ``error``; ODK is WGS 84, so ``srid`` is ignored.

The csv importer hands a file over to this reader when a column's values look like
ODK shapes (see ``csv_points``).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from django.contrib.gis.geos import LineString, Polygon

from plots.geometry import WGS84
from plots.importers import registry
from plots.importers.base import ImportFileError, Limits, SourceRecord, TrackPoint
from plots.importers.formats._common import range_reason, vertices_reason
from plots.importers.formats._table import Table, open_table, parse_number

SAMPLE_ROWS = 50
_NAME_HINTS = ("geoshape", "geotrace", "shape", "trace", "boundary", "limite")
_TRACE_HINTS = ("trace",)
_SHAPE_HINTS = ("shape", "boundary", "limite")
_ORDER = "ODK writes 'latitude longitude altitude accuracy', latitude first"

OdkPoint = tuple[float, float, float | None]  # (lat, lon, accuracy in m or None)


class OdkImporter:
    name = "odk"
    extensions: tuple[str, ...] = ()  # .csv belongs to the csv importer; choose this one by name
    description = "KoboToolbox/ODK CSV export with a geoshape or geotrace column (a .csv; give the format)"

    def read(self, path: Path, *, srid: int | None = None, limits: Limits = Limits()) -> Iterator[SourceRecord]:
        table = open_table(Path(path), limits, label="ODK CSV")
        column = find_shape_column(table, require_values=False)
        if column is None:
            raise ImportFileError(path, "no geoshape or geotrace column: expected a column named like "
                                        f"{', '.join(_NAME_HINTS)}, or one holding 'lat lon alt accuracy;…' values "
                                        f"(columns: {', '.join(table.header)})")
        return odk_records(table, column, limits)


def parse_odk_points(text: str) -> list[OdkPoint]:
    """The points of an ODK geoshape/geotrace/geopoint value; ValueError says what is wrong."""
    points: list[OdkPoint] = []
    for i, part in enumerate(p for p in text.split(";") if p.strip()):
        numbers = part.split()
        if not 2 <= len(numbers) <= 4:
            raise ValueError(f"point {i + 1} ({part.strip()[:40]!r}) is not 'latitude longitude altitude accuracy'")
        try:
            values = [parse_number(n) for n in numbers]
        except ValueError:
            raise ValueError(f"point {i + 1} ({part.strip()[:40]!r}) holds something that is not a number") from None
        accuracy = values[3] if len(values) == 4 and values[3] > 0 else None
        points.append((values[0], values[1], accuracy))
    if not points:
        raise ValueError("it holds no points")
    return points


def looks_like_shape(value: str | None) -> bool:
    """Two or more ODK points: a geoshape or geotrace (a single one is a geopoint)."""
    if not value or ";" not in value:
        return False
    try:
        return len(parse_odk_points(value)) >= 2
    except ValueError:
        return False


def find_shape_column(table: Table, *, require_values: bool) -> str | None:
    """The shape column (see the module docstring), judged on the first rows."""
    sample = [row for _n, row in islice(table.rows(), SAMPLE_ROWS)]

    def values(column: str) -> list[str]:
        return [row[column] for row in sample if row.get(column)]

    def named_fits(column: str) -> bool:
        # A named column qualifies if one sampled value parses (one broken row must
        # not hide it; its row gets an error), or if it is still empty in the sample.
        found = values(column)
        return any(looks_like_shape(v) for v in found) or (not found and not require_values)

    named = [c for c in table.header if any(h in c.lower() for h in _NAME_HINTS)]
    named.sort(key=lambda c: 0 if ("geoshape" in c.lower() or "geotrace" in c.lower()) else 1)
    for column in named:
        if named_fits(column):
            return column
    for column in table.header:
        found = values(column)
        if found and all(looks_like_shape(v) for v in found):
            return column
    return None


def odk_records(table: Table, column: str, limits: Limits) -> Iterator[SourceRecord]:
    lowered = column.lower()
    kind = "trace" if any(h in lowered for h in _TRACE_HINTS) else \
        "shape" if any(h in lowered for h in _SHAPE_HINTS) else None
    for number, row in table.rows():
        label = f"row {number}"
        properties = {k: v for k, v in row.items() if k != column}
        record = SourceRecord(number=number, label=label, geometry=None, properties=properties)
        value = row.get(column)
        if not value:
            record.error = f"{label}: no shape in column '{column}'"
        else:
            try:
                _fill(record, parse_odk_points(value), kind, limits)
            except ValueError as exc:
                record.geometry, record.segments = None, None
                record.error = f"{label}: column '{column}': {exc}"
        yield record


def _fill(record: SourceRecord, points: list[OdkPoint], kind: str | None, limits: Limits) -> None:
    """Set the record's geometry (and segments for a trace); ValueError when it cannot be built."""
    reason = vertices_reason(len(points), limits)
    if reason:
        raise ValueError(reason)
    coords = [(lon, lat) for lat, lon, _acc in points]
    closed = len(coords) >= 4 and coords[0] == coords[-1]
    if (kind or ("shape" if closed else "trace")) == "shape":
        if coords[0] != coords[-1]:
            coords.append(coords[0])
        if len(set(coords)) < 3:
            raise ValueError(f"a shape needs at least 3 distinct points, it has {len(set(coords))}")
        geom = Polygon(coords, srid=WGS84)
    else:
        if len(coords) < 2:
            raise ValueError("a trace needs at least 2 points")
        geom = LineString(coords, srid=WGS84)
        record.segments = [[TrackPoint(lon=lon, lat=lat, accuracy_m=acc) for lat, lon, acc in points]]
    reason = range_reason(geom, order=_ORDER)
    if reason:
        raise ValueError(reason)
    record.geometry = geom


registry.register(OdkImporter())
