"""What every importer yields, the limits they all enforce, and their errors.

One importer per format (see ``registry``). Each reads a file with the library made
for it (GDAL through pyogrio for vector formats, gpxpy for GPX, the csv module for
CSV) and yields ``SourceRecord``s: a geometry already in WGS 84, the properties and
the feature/row number. Validation, repair, track clean-up and the per-feature
report are written once, in ``plots.imports`` — never in an importer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Protocol

from django.contrib.gis.geos import GEOSGeometry


class ImportFileError(Exception):
    """The whole file cannot be read; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{Path(path).name}: {reason}")


def _setting(name: str, default: int) -> int:
    """An optional integer Django setting (so a deployment can move a limit), else ``default``."""
    try:
        from django.conf import settings

        return int(getattr(settings, name, default))
    except Exception:  # settings not configured: a plain script or a subprocess without Django
        return default


_MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Guards against absurd or hostile files. Every breach is an ImportFileError."""

    max_file_bytes: int = 200 * _MB
    max_features: int = 200_000
    max_vertices_per_feature: int = 100_000
    max_zip_entries: int = 1_000
    # Everything inflated from one archive, and any one entry (shapefile parts).
    max_uncompressed_bytes: int = field(default_factory=lambda: _setting("CHACRA_IMPORT_MAX_UNZIPPED_BYTES", 512 * _MB))
    max_entry_bytes: int = field(default_factory=lambda: _setting("CHACRA_IMPORT_MAX_ENTRY_BYTES", 256 * _MB))
    # GDAL's KML driver holds the whole document in memory, 6 to 14 times its size
    # (a 1,000 MB KML took a worker to 6.4 GB), so KML, plain or in a KMZ, is capped
    # well below the other formats. Measured: a 31 MB KML of 34,000 placemarks of 40
    # vertices read in 18 s with a 450 MB peak; larger files belong in a GeoPackage.
    max_kml_bytes: int = field(default_factory=lambda: _setting("CHACRA_IMPORT_MAX_KML_BYTES", 32 * _MB))
    max_compression_ratio: float = 200.0  # a zip bomb expands far beyond this


@dataclass
class TrackPoint:
    lon: float
    lat: float
    time: datetime | None = None
    accuracy_m: float | None = None  # horizontal accuracy, or HDOP × 5 m when only HDOP is known


@dataclass
class SourceRecord:
    """One feature or row of a source file."""

    number: int  # 1-based feature or row number in the source, as a person counts
    label: str  # e.g. "feature 3", "row 12", "track 'Chacra Ramírez' (track 2)"
    geometry: GEOSGeometry | None  # SRID 4326, 2D; None when the row has none
    properties: dict[str, Any] = field(default_factory=dict)
    # For walked GPS tracks (GPX tracks, ODK geotraces): the recorded points by segment.
    # ``geometry`` is then the track as a (Multi)LineString.
    segments: list[list[TrackPoint]] | None = None
    error: str | None = None  # a problem with this feature alone; the others still import


class Importer(Protocol):
    """A format reader. ``read`` raises ImportFileError for whole-file problems and
    sets ``SourceRecord.error`` for a single bad feature."""

    name: str  # short name, e.g. "gpx"
    extensions: tuple[str, ...]  # lower-case, with the dot: (".gpx",)
    description: str

    def read(self, path: Path, *, srid: int | None = None, limits: Limits = Limits()) -> Iterator[SourceRecord]:
        ...
