"""GPX: one record per walked track (``<trk>``), read with gpxpy.

The XML is first streamed through defusedxml (no DTD, no entities), because gpxpy
parses with the standard library's XML parser, which expands internal entities.

* A track's segments with points become ``segments``; empty segments are ignored.
  A track with no points at all (Garmin devices leave an empty "ACTIVE LOG") is
  skipped, but keeps its number so "track (2)" still means the second ``<trk>``.
* Geometry: a LineString, or a MultiLineString when several segments have two or
  more points. A track with fewer than two points gets an ``error``.
* Accuracy: a horizontal accuracy in the point's extensions (``hAcc``,
  ``accuracy`` … as Android loggers write it) in metres, else HDOP × 5 m, else None.
* Times without a zone are taken as UTC (GPX times are UTC by definition). They
  are passed on as they are, even implausible ones: judging them is the track
  clean-up's job, not the reader's.
* Waypoints and routes are not walked boundaries and are ignored; a file with only
  routes is refused with that reason. GPX is WGS 84 by definition: ``srid`` is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import gpxpy
import gpxpy.gpx

from plots.importers import registry, sniff
from plots.importers.base import ImportFileError, Limits, SourceRecord, TrackPoint
from plots.importers.formats._common import count_check, line_geometry, range_reason, vertices_reason
from plots.importers.safety import check_file_size, check_xml

HDOP_METRES = 5.0  # a common rule of thumb: horizontal error ≈ HDOP × 5 m for consumer receivers
_ACCURACY_TAGS = {"hacc", "accuracy", "horizontalaccuracy", "horizontal_accuracy", "hor_acc", "haccuracy"}


class GpxImporter:
    name = "gpx"
    extensions = (".gpx",)
    description = "GPS tracks (GPX): one record per <trk>, with the recorded points by segment"

    def read(self, path: Path, *, srid: int | None = None, limits: Limits = Limits()) -> Iterator[SourceRecord]:
        path = Path(path)
        check_file_size(path, limits)
        sniff.expect(path, "xml", "GPX")
        check_xml(path, name=path, kind="GPX", root="gpx")
        gpx = _parse(path)
        if not gpx.tracks:
            raise ImportFileError(path, _no_track_reason(gpx))
        count_check(path, len(gpx.tracks), limits, noun="tracks")
        if not any(seg.points for track in gpx.tracks for seg in track.segments):
            raise ImportFileError(path, f"its {len(gpx.tracks)} track(s) hold no points")
        return _records(gpx, limits)


def _records(gpx: gpxpy.gpx.GPX, limits: Limits) -> Iterator[SourceRecord]:
    for number, track in enumerate(gpx.tracks, start=1):
        segments = [[_track_point(p) for p in seg.points] for seg in track.segments if seg.points]
        if segments:
            yield _record(number, track, segments, limits)


def _parse(path: Path) -> gpxpy.gpx.GPX:
    try:
        with open(path, "rb") as handle:
            # gpxpy decodes bytes itself, honouring the XML declaration and a UTF-8 BOM.
            return gpxpy.parse(handle)
    except (gpxpy.gpx.GPXException, ValueError, UnicodeDecodeError) as exc:
        raise ImportFileError(path, f"not a readable GPX file: {exc}") from None


def _no_track_reason(gpx: gpxpy.gpx.GPX) -> str:
    if gpx.routes:
        points = sum(len(r.points) for r in gpx.routes)
        return (f"it holds a planned route ({len(gpx.routes)} <rte>, {points} points), not a walked track: "
                "export the recorded track (<trk>) from the GPS instead")
    if gpx.waypoints:
        return f"it holds only {len(gpx.waypoints)} waypoint(s) and no track (<trk>)"
    return "it holds no track (<trk>)"


def _record(number: int, track: gpxpy.gpx.GPXTrack, segments: list[list[TrackPoint]],
            limits: Limits) -> SourceRecord:
    label = f"track '{track.name}' ({number})" if track.name else f"track {number}"
    n_points = sum(len(seg) for seg in segments)
    properties = {"name": track.name, "description": track.description, "points": n_points}
    record = SourceRecord(number=number, label=label, geometry=None, properties=properties, segments=segments)
    reason = vertices_reason(n_points, limits)
    if reason:
        record.segments = None
        record.error = f"{label}: {reason}"
        return record
    geom = line_geometry(segments)
    if geom is None:
        record.error = f"{label}: it has {n_points} point(s); a track needs at least 2"
        return record
    reason = range_reason(geom, order="check which of the lat= and lon= attributes holds which")
    if reason:
        record.error = f"{label}: {reason}"
        return record
    record.geometry = geom
    return record


def _track_point(point: gpxpy.gpx.GPXTrackPoint) -> TrackPoint:
    return TrackPoint(lon=float(point.longitude), lat=float(point.latitude),
                      time=_utc(point.time), accuracy_m=_accuracy(point))


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _accuracy(point: gpxpy.gpx.GPXTrackPoint) -> float | None:
    for extension in point.extensions or ():
        for element in extension.iter():
            tag = element.tag.rsplit("}", 1)[-1].lower()
            if tag in _ACCURACY_TAGS and element.text:
                try:
                    value = float(element.text)
                except ValueError:
                    continue
                if value >= 0:
                    return value
    if point.horizontal_dilution is not None:
        return float(point.horizontal_dilution) * HDOP_METRES
    return None


registry.register(GpxImporter())
