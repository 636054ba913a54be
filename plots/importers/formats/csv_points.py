"""CSV of points: one plot surveyed as a point per row, from longitude/latitude columns.

Coordinate columns (case-insensitive): lon/lat, longitude/latitude, lng/lat,
longitud/latitud (Spanish) or x/y. Coordinates are WGS 84 unless ``srid`` names
another CRS (x/y in UTM metres, say). Decimal commas ("-76,51", as Excel writes them
in Spanish locales) are accepted. Every other column becomes a property (text).

Auto-detection of ODK exports: before looking for coordinate columns, the first
rows are checked for a column whose values parse as ODK geoshapes/geotraces
("lat lon alt acc;lat lon alt acc;…", two points or more). If there is one, the
file is read as an ODK export (``odk``), even when it also has latitude/longitude
columns: a Kobo export's point columns are where the form was filled in, the shape
is the plot. Detection is by values only; columns merely *named* like a shape need
the explicit "odk" format.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from django.contrib.gis.geos import Point

from plots.geometry import WGS84
from plots.importers import registry
from plots.importers.base import ImportFileError, Limits, SourceRecord
from plots.importers.formats._common import finish_geometry
from plots.importers.formats._table import Table, open_table, parse_number
from plots.importers.formats.odk import find_shape_column, odk_records

COORDINATE_PAIRS = (("lon", "lat"), ("longitude", "latitude"), ("lng", "lat"), ("lng", "latitude"),
                    ("longitud", "latitud"), ("x", "y"))


class CsvImporter:
    name = "csv"
    extensions = (".csv",)
    description = "CSV with longitude/latitude (or x/y) columns, one point per row; ODK exports detected"

    def read(self, path: Path, *, srid: int | None = None, limits: Limits = Limits()) -> Iterator[SourceRecord]:
        table = open_table(Path(path), limits)
        shape_column = find_shape_column(table, require_values=True)
        if shape_column is not None:
            return odk_records(table, shape_column, limits)
        lon, lat = coordinate_columns(table)
        return _records(table, lon, lat, srid or WGS84)


def coordinate_columns(table: Table) -> tuple[str, str]:
    by_lower = {name.lower(): name for name in table.header}
    for lon, lat in COORDINATE_PAIRS:
        if lon in by_lower and lat in by_lower:
            return by_lower[lon], by_lower[lat]
    pairs = ", ".join(f"{a}/{b}" for a, b in COORDINATE_PAIRS)
    raise ImportFileError(table.path, f"no coordinate columns: expected one of {pairs} "
                                      f"(the file has: {', '.join(table.header)})")


def _records(table: Table, lon: str, lat: str, srid: int) -> Iterator[SourceRecord]:
    order = f"column '{lon}' must hold the longitude and '{lat}' the latitude"
    for number, row in table.rows():
        label = f"row {number}"
        properties = {k: v for k, v in row.items() if k not in (lon, lat)}
        record = SourceRecord(number=number, label=label, geometry=None, properties=properties)
        try:
            x, y = _number(row, lon), _number(row, lat)
        except ValueError as exc:
            record.error = f"{label}: {exc}"
            yield record
            continue
        geom, reason = finish_geometry(Point(x, y, srid=srid), order=order)
        record.geometry = geom
        record.error = f"{label}: {reason}" if reason else None
        yield record


def _number(row: dict[str, str | None], column: str) -> float:
    value = row.get(column)
    if value is None:
        raise ValueError(f"column '{column}' is empty")
    try:
        return parse_number(value)
    except ValueError:
        raise ValueError(f"column '{column}' is not a number ({value[:40]!r})") from None


registry.register(CsvImporter())
