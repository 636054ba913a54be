"""A walked GPS track turned into a plot boundary.

Field technicians survey a plot by walking its perimeter with a handheld GPS. The
recording is never a clean ring: the receiver logs the same fix while the walker
stands still, jitters out and back when the signal is poor, stops a few metres
short of where it started, and a walker who cuts a corner makes the ring cross
itself. ``track_to_boundary`` cleans the track in named, counted steps and either
returns a valid MultiPolygon with the figures a reviewer needs to trust it, or
refuses with a reason in the technician's terms (``TrackError``).

All distances and angles are geodesic on WGS 84 (pyproj ``Geod``, GeographicLib),
so the same thresholds hold at -8° in San Martín and at 45° in Istria.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any

import shapely
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.utils import timezone
from pyproj import Geod, Transformer

from plots.importers.base import TrackPoint

from . import (
    SQUARE_METRES_PER_HECTARE,
    WGS84,
    GeometryError,
    Repair,
    geodesic_area_ha,
    orient_rfc7946,
    repair,
    to_multipolygon,
)

_GEOD = Geod(ellps="WGS84")

# Two fixes closer than this are the same place: a handheld receiver's noise is
# metres, so half a metre carries no shape, and zero-length legs have no azimuth.
SAME_PLACE_M = 0.5
# A track whose points all fit in a strip this wide was walked along a line
# (there and back), whatever GPS jitter makes of its "area".
LINE_WIDTH_M = 3.0
# 4πA/P² is 1 for a circle, 0.785 for a square and 0.031 for a 100 m × 1 m strip;
# below 0.01 (a 1:120 sliver) no cacao plot is that shape, a walk along a path is.
MIN_ISOPERIMETRIC_RATIO = 0.01
# Parts left by make_valid smaller than this are noise where the ring crossed itself.
SLIVER_M2 = 1.0
SLIVER_FRACTION = 0.001
# Device clocks with a dead battery restart in 1901 or 1970; nothing was surveyed
# with a handheld GPS before 2000 (selective availability was switched off in May 2000).
EARLIEST_PLAUSIBLE = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)
# A phone clock a few minutes fast is not a forged survey.
FUTURE_SLACK = timedelta(minutes=5)


class TrackError(GeometryError):
    """A track that cannot become a boundary; ``quality`` holds the figures measured
    before the refusal, so the import report can still show them."""

    def __init__(self, reason: str, *, code: str = "invalid_track", quality: dict | None = None) -> None:
        super().__init__(reason, code=code)
        self.quality = quality or {}


@dataclass
class TrackBoundary:
    geom: MultiPolygon  # SRID 4326, valid, exterior rings counter-clockwise
    area_ha: float  # geodesic
    repairs: list[Repair] = field(default_factory=list)
    quality: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable


# ----------------------------------------------------------------- geodesic helpers


def _distance_m(a: TrackPoint, b: TrackPoint) -> float:
    return _GEOD.inv(a.lon, a.lat, b.lon, b.lat)[2]


def _turn_back_angle_deg(prev: TrackPoint, vertex: TrackPoint, nxt: TrackPoint) -> float:
    """The angle at ``vertex`` between its two legs: 180° on a straight line, 0° when
    the track goes back exactly the way it came. Azimuths are geodesic, so a
    north-south leg at 45° latitude is not distorted the way degrees would be."""
    az_back = _GEOD.inv(vertex.lon, vertex.lat, prev.lon, prev.lat)[0]
    az_on = _GEOD.inv(vertex.lon, vertex.lat, nxt.lon, nxt.lat)[0]
    return abs((az_back - az_on + 180.0) % 360.0 - 180.0)


def _length_m(points: list[TrackPoint]) -> float:
    if len(points) < 2:
        return 0.0
    return float(_GEOD.line_length([p.lon for p in points], [p.lat for p in points]))


# ------------------------------------------------------------------- clean-up steps


def _join_segments(segments: list[list[TrackPoint]]) -> tuple[list[TrackPoint], int]:
    """All segments end to end, in recording order: a pause in the recording does not
    move the walker, so the next segment continues the same perimeter."""
    joined: list[TrackPoint] = []
    used = 0
    for segment in segments:
        if segment:
            used += 1
            joined.extend(segment)
    return joined, used


def _check_positions(points: list[TrackPoint], quality: dict) -> None:
    for i, p in enumerate(points):
        ok = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (p.lon, p.lat))
        if not ok or not (-180 <= p.lon <= 180 and -90 <= p.lat <= 90):
            raise TrackError(f"point {i + 1} of the track has no valid position "
                             f"(longitude {p.lon!r}, latitude {p.lat!r})", code="out_of_range", quality=quality)


def _drop_duplicates(points: list[TrackPoint]) -> tuple[list[TrackPoint], int]:
    """Consecutive fixes of the same place (the walker stood still) add no shape and
    would give zero-length legs whose direction is undefined."""
    kept: list[TrackPoint] = []
    for p in points:
        if kept and _distance_m(kept[-1], p) < SAME_PLACE_M:
            continue
        kept.append(p)
    return kept, len(points) - len(kept)


def _drop_spikes(points: list[TrackPoint], spike_angle_deg: float) -> tuple[list[TrackPoint], int, int]:
    """Remove out-and-back excursions (GPS jitter, a step off the boundary and back).

    A stack: before a point is added, the vertex on top is tested against its new
    neighbour and popped while it is a spike, so removals cascade down a longer
    excursion and, at the end, no interior vertex is a spike. When the excursion
    returns to the very place it left, the returning fix is a duplicate of that
    place and is dropped as one. Returns (points, spikes, duplicates)."""
    kept: list[TrackPoint] = []
    spikes = duplicates = 0
    for p in points:
        while len(kept) >= 2 and _turn_back_angle_deg(kept[-2], kept[-1], p) < spike_angle_deg:
            kept.pop()
            spikes += 1
        if kept and _distance_m(kept[-1], p) < SAME_PLACE_M:
            duplicates += 1
            continue
        kept.append(p)
    return kept, spikes, duplicates


def _drop_ring_spikes(ring: list[TrackPoint], spike_angle_deg: float) -> tuple[list[TrackPoint], int]:
    """Once the ring is closed the first and last points are neighbours too; a spike
    where the walk started or ended was invisible to the open-track pass."""
    removed = 0
    while len(ring) >= 3:
        if _turn_back_angle_deg(ring[-2], ring[-1], ring[0]) < spike_angle_deg:
            ring = ring[:-1]
        elif _turn_back_angle_deg(ring[-1], ring[0], ring[1]) < spike_angle_deg:
            ring = ring[1:]
        else:
            break
        removed += 1
    return ring, removed


def _strip_width_m(points: list[TrackPoint]) -> float:
    """Width of the narrowest strip holding every point, in metres, measured in an
    azimuthal equidistant projection centred on the track (distances from the centre
    are exact; across a plot-sized track the distortion is far below GPS noise)."""
    lon0 = sum(p.lon for p in points) / len(points)
    lat0 = sum(p.lat for p in points) / len(points)
    to_local = Transformer.from_crs(WGS84, f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m",
                                    always_xy=True)
    xs, ys = to_local.transform([p.lon for p in points], [p.lat for p in points])
    rect = shapely.minimum_rotated_rectangle(shapely.MultiPoint(list(zip(xs, ys))))
    if rect.geom_type != "Polygon":
        return 0.0  # all points on one line (or one point): the rectangle degenerates
    corners = list(rect.exterior.coords)
    sides = [math.dist(corners[i], corners[i + 1]) for i in range(2)]
    return min(sides)


def _close_ring(points: list[TrackPoint], tolerance_m: float, quality: dict) -> list[TrackPoint]:
    """The walker should end where they started; a gap within tolerance is closed by
    a straight edge, a larger one means part of the perimeter was not walked."""
    gap = _distance_m(points[0], points[-1])
    quality["closure_gap_m"] = round(gap, 2)
    quality["closed_automatically"] = gap > SAME_PLACE_M and gap <= tolerance_m
    if gap > tolerance_m:
        raise TrackError(
            f"the track does not come back to its start: the gap is {gap:.0f} m "
            f"(tolerance {tolerance_m:g} m); walk the rest of the perimeter or raise the tolerance",
            code="track_not_closed", quality=quality)
    if gap <= SAME_PLACE_M:
        return points[:-1]  # the last fix is the start again; the ring closes on points[0]
    return points


# ---------------------------------------------------------------- polygon building


def _too_few(count: int, min_points: int, quality: dict) -> TrackError:
    return TrackError(
        f"the track has {count} distinct point{'s' if count != 1 else ''} after removing duplicates "
        f"and spikes; at least {min_points} are needed to outline a plot",
        code="track_too_few_points", quality=quality)


def _on_a_line(quality: dict) -> TrackError:
    return TrackError("the track runs along a line, it does not enclose an area",
                      code="track_is_line", quality=quality)


def _ring_polygon(ring: list[TrackPoint]) -> Polygon:
    coords = [(p.lon, p.lat) for p in ring]
    return Polygon(coords + [coords[0]], srid=WGS84)


def _repair_crossings(polygon: Polygon, quality: dict) -> tuple[MultiPolygon, list[Repair]]:
    """A ring that crosses itself (a figure-eight, a cut corner) is split by GEOS
    make_valid into the pieces it really encloses; nothing is invented."""
    try:
        fixed, repairs = repair(polygon, ["make_valid"])
    except GeometryError:
        # make_valid left only lines: the ring encloses nothing.
        raise _on_a_line(quality) from None
    quality["self_crossings_repaired"] = bool(repairs)
    return to_multipolygon(fixed), repairs


def _drop_slivers(geom: MultiPolygon) -> tuple[MultiPolygon, int]:
    """Where the walk crossed itself at a shallow angle make_valid leaves crumbs of a
    few square decimetres; they are not plots. The largest part is always kept."""
    parts = sorted(geom, key=geodesic_area_ha, reverse=True)
    total_m2 = geodesic_area_ha(geom) * SQUARE_METRES_PER_HECTARE
    kept = [parts[0]]
    for part in parts[1:]:
        area_m2 = geodesic_area_ha(part) * SQUARE_METRES_PER_HECTARE
        if area_m2 >= SLIVER_M2 and area_m2 >= SLIVER_FRACTION * total_m2:
            kept.append(part)
    return MultiPolygon(kept, srid=WGS84), len(parts) - len(kept)


def _perimeter_m(geom: MultiPolygon) -> float:
    _area, perimeter = _GEOD.geometry_area_perimeter(shapely.from_wkb(bytes(geom.wkb)))
    return float(perimeter)


# -------------------------------------------------------------------- side figures


def _as_utc(moment: datetime) -> datetime:
    # GPX times are UTC by specification; a naive time from a reader is taken as UTC.
    return moment.replace(tzinfo=dt_timezone.utc) if moment.tzinfo is None else moment.astimezone(dt_timezone.utc)


def timestamp_figures(points: list[TrackPoint], *, now: datetime) -> dict[str, Any]:
    """How far the recorded times can be trusted as the date of the survey.

    A time is implausible before 2000 (a reset device clock), after ``now`` (a clock
    set wrong, or an edited file) or earlier than a time already seen (the clock
    jumped back, or segments from different days were pasted together)."""
    now = _as_utc(now)
    times = [_as_utc(p.time) for p in points if p.time is not None]
    counts = {"before 2000": 0, "future": 0, "backwards": 0}
    plausible: list[datetime] = []
    first_bad: dict[str, datetime] = {}
    for t in times:
        kind = ("before 2000" if t < EARLIEST_PLAUSIBLE else "future" if t > now + FUTURE_SLACK
                else "backwards" if plausible and t < plausible[-1] else None)
        if kind is None:
            plausible.append(t)
            continue
        counts[kind] += 1
        first_bad.setdefault(kind, t)
    return {
        "timestamps": {"present": len(times), "implausible": sum(counts.values()),
                       "reasons": _timestamp_reasons(counts, first_bad, now)},
        "started_at": plausible[0].isoformat() if plausible else None,
        "ended_at": plausible[-1].isoformat() if plausible else None,
    }


def _timestamp_reasons(counts: dict[str, int], first_bad: dict[str, datetime], now: datetime) -> list[str]:
    texts = {
        "before 2000": "{n} before 2000-01-01 (e.g. {t}): the device clock was not set",
        "future": "{n} in the future (e.g. {t}, now is " + now.strftime("%Y-%m-%d %H:%M") + " UTC)",
        "backwards": "{n} earlier than the point before (e.g. {t}): the clock went backwards",
    }
    return [texts[kind].format(n=n, t=first_bad[kind].strftime("%Y-%m-%d %H:%M:%S"))
            for kind, n in counts.items() if n]


def accuracy_figures(points: list[TrackPoint]) -> dict[str, float | None]:
    values = [p.accuracy_m for p in points if p.accuracy_m is not None]
    if not values:
        return {"accuracy_mean_m": None, "accuracy_max_m": None}
    return {"accuracy_mean_m": round(sum(values) / len(values), 2), "accuracy_max_m": round(max(values), 2)}


# ------------------------------------------------------------------------ pipeline


def _clean_track(points: list[TrackPoint], quality: dict, *, closure_tolerance_m: float,
                 spike_angle_deg: float, min_points: int) -> list[TrackPoint]:
    """Steps 2–5 on the joined points: the distinct ring vertices, not yet closed."""
    points, duplicates = _drop_duplicates(points)
    quality["duplicates_removed"] = duplicates
    if len(points) < 2:
        raise _too_few(len(points), min_points, quality)
    # Before spike removal: an out-and-back walk would otherwise be eaten away spike
    # by spike and refused for too few points, a reason that misleads the technician.
    if _strip_width_m(points) < LINE_WIDTH_M:
        raise _on_a_line(quality)
    points, spikes, more_duplicates = _drop_spikes(points, spike_angle_deg)
    quality["duplicates_removed"] += more_duplicates
    quality["spikes_removed"] = spikes
    if len(points) < 2:
        raise _too_few(len(points), min_points, quality)
    ring = _close_ring(points, closure_tolerance_m, quality)
    ring, ring_spikes = _drop_ring_spikes(ring, spike_angle_deg)
    quality["spikes_removed"] += ring_spikes
    quality["points_used"] = len(ring)
    if len(ring) < max(min_points, 3):
        raise _too_few(len(ring), min_points, quality)
    return ring


def _boundary(ring: list[TrackPoint], quality: dict) -> tuple[MultiPolygon, list[Repair]]:
    """Step 6 and the area check: the closed ring as a valid, oriented MultiPolygon."""
    geom, repairs = _repair_crossings(_ring_polygon(ring), quality)
    # The walked length, not the repaired outline's: a ring that doubles back on
    # itself loses that part in make_valid and must not look rounder for it.
    walked_m = _length_m(ring + ring[:1])
    area_m2 = geodesic_area_ha(geom) * SQUARE_METRES_PER_HECTARE
    if walked_m == 0 or 4 * math.pi * area_m2 / walked_m**2 < MIN_ISOPERIMETRIC_RATIO:
        raise _on_a_line(quality)
    geom, slivers = _drop_slivers(geom)
    quality["slivers_dropped"] = slivers
    return orient_rfc7946(geom), repairs


def track_to_boundary(segments: list[list[TrackPoint]], *, closure_tolerance_m: float = 25.0,
                      spike_angle_deg: float = 20.0, min_points: int = 4,
                      now: datetime | None = None) -> TrackBoundary:
    """The plot boundary a walked track outlines, with what was done to get it.

    Raises ``TrackError`` (a ``GeometryError``) with the reason for the technician:
    not closed, too few points, or walked along a line. Its ``quality`` holds the
    figures measured up to the refusal (timestamps and accuracy always)."""
    points, used_segments = _join_segments(segments)
    quality: dict[str, Any] = {
        "points": len(points), "points_used": 0, "segments": used_segments,
        "empty_segments_ignored": len(segments) - used_segments,
        "duplicates_removed": 0, "spikes_removed": 0, "closure_gap_m": None,
        "closed_automatically": False, "self_crossings_repaired": False, "slivers_dropped": 0,
        **accuracy_figures(points),
        **timestamp_figures(points, now=now or timezone.now()),
        "perimeter_m": None, "area_ha": None,
    }
    if not points:
        raise TrackError("the track has no points", code="track_empty", quality=quality)
    _check_positions(points, quality)
    ring = _clean_track(points, quality, closure_tolerance_m=closure_tolerance_m,
                        spike_angle_deg=spike_angle_deg, min_points=min_points)
    geom, repairs = _boundary(ring, quality)
    area_ha = geodesic_area_ha(geom)
    quality["perimeter_m"] = round(_perimeter_m(geom), 2)
    quality["area_ha"] = round(area_ha, 6)
    return TrackBoundary(geom=to_multipolygon(geom), area_ha=area_ha, repairs=repairs, quality=quality)
