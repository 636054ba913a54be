"""plots.geometry.tracks: walked GPS tracks turned into plot boundaries.

Expectations are worked by hand or computed independently: distances, azimuths and
areas with pyproj's Geod (GeographicLib), validity and orientation with shapely.
The tracks are built in degrees around Tocache (lon -76.51, lat -8.2) so every
vertex is known exactly; the real files are GPX recordings from gpxpy's test suite.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import SharedDir
import shapely
from django.conf import settings
from pyproj import Geod

from plots.geometry import GeometryError
from plots.geometry.tracks import TrackBoundary, TrackError, track_to_boundary
from plots.importers.base import TrackPoint

GEOD = Geod(ellps="WGS84")
LON0, LAT0 = -76.51, -8.2
SIDE = 0.0009  # degrees: ≈ 99.0 m east-west and ≈ 99.5 m north-south at -8.2°
STEP = SIDE / 10  # 10 fixes per side: one every ≈ 10 m
NOW = datetime(2024, 5, 1, 15, 0, tzinfo=timezone.utc)
GPX_DIR = SharedDir(Path(settings.CHACRA_SHARED_DATA) / "gpx_tracks_gpxpy")


def pyproj_area_m2(coords) -> float:
    lons, lats = zip(*coords)
    area, _ = GEOD.polygon_area_perimeter(lons, lats)
    return abs(area)


def square_walk(close: bool = True) -> list[TrackPoint]:
    """40 fixes round the square, counter-clockwise from the south-west corner, 10 per
    side (corner included, next corner excluded); ``close`` adds the return to the start."""
    corners = [(LON0, LAT0), (LON0 + SIDE, LAT0), (LON0 + SIDE, LAT0 + SIDE), (LON0, LAT0 + SIDE)]
    points = []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
        points += [TrackPoint(x0 + (x1 - x0) * k / 10, y0 + (y1 - y0) * k / 10) for k in range(10)]
    return points + [TrackPoint(LON0, LAT0)] if close else points


IDEAL_SQUARE_M2 = pyproj_area_m2([(LON0, LAT0), (LON0 + SIDE, LAT0), (LON0 + SIDE, LAT0 + SIDE),
                                  (LON0, LAT0 + SIDE)])


def shapely_of(boundary: TrackBoundary):
    return shapely.from_wkb(bytes(boundary.geom.wkb))


def test_it_turns_a_clean_square_walk_into_its_square():
    b = track_to_boundary([square_walk()], now=NOW)
    assert 9_500 < IDEAL_SQUARE_M2 < 10_000  # hand check: 99.0 m × 99.5 m ≈ 9 850 m²
    assert b.area_ha * 10_000 == pytest.approx(IDEAL_SQUARE_M2, rel=0.01)
    g = shapely_of(b)
    assert b.geom.srid == 4326 and b.geom.geom_type == "MultiPolygon" and g.is_valid
    assert g.geoms[0].exterior.is_ccw
    assert b.repairs == []
    q = b.quality
    assert (q["points"], q["points_used"], q["segments"]) == (41, 40, 1)
    assert (q["duplicates_removed"], q["spikes_removed"], q["slivers_dropped"]) == (0, 0, 0)
    assert q["closure_gap_m"] == 0.0 and q["closed_automatically"] is False
    assert q["self_crossings_repaired"] is False
    assert q["area_ha"] == pytest.approx(b.area_ha, abs=1e-6)
    # Perimeter: 2 × (east-west side + north-south side), each measured with Geod.inv.
    ew = GEOD.inv(LON0, LAT0, LON0 + SIDE, LAT0)[2]
    ns = GEOD.inv(LON0, LAT0, LON0, LAT0 + SIDE)[2]
    assert q["perimeter_m"] == pytest.approx(2 * (ew + ns), abs=0.01)
    json.dumps(q)  # stored as JSON in the import report


def test_it_drops_duplicate_fixes_and_counts_them():
    clean = track_to_boundary([square_walk()], now=NOW)
    walk = square_walk()
    # The walker stood still three times: two exact repeats and one fix 0.2 m off.
    lon_02m, lat_02m, _ = GEOD.fwd(walk[25].lon, walk[25].lat, 90, 0.2)
    walk.insert(26, TrackPoint(lon_02m, lat_02m))
    walk.insert(15, TrackPoint(walk[15].lon, walk[15].lat))
    walk.insert(5, TrackPoint(walk[5].lon, walk[5].lat))
    b = track_to_boundary([walk], now=NOW)
    assert b.quality["points"] == 44 and b.quality["duplicates_removed"] == 3
    assert b.quality["points_used"] == 40
    assert b.area_ha == pytest.approx(clean.area_ha, rel=1e-9)


def spiked_walk() -> list[TrackPoint]:
    """The square with one out-and-back excursion: from fix 5 on the south side the
    walker goes 30 m south (out of the plot) and comes back to fix 6."""
    walk = square_walk()
    p5 = walk[5]
    lon, lat, _ = GEOD.fwd(p5.lon, p5.lat, 180, 30.0)
    walk.insert(6, TrackPoint(lon, lat))
    return walk


def test_it_removes_an_out_and_back_spike():
    # Hand-worked angle at the tip S: S→fix 5 points due north; S→fix 6 points
    # atan(9.9 m east / 30 m north) = 18.3° east of north; 18.3° < 20° → a spike.
    walk = spiked_walk()
    s, p5, p6 = walk[6], walk[5], walk[7]
    az_a = GEOD.inv(s.lon, s.lat, p5.lon, p5.lat)[0]
    az_b = GEOD.inv(s.lon, s.lat, p6.lon, p6.lat)[0]
    assert abs(az_a) < 1e-6 and az_b == pytest.approx(math.degrees(math.atan2(9.9, 30.0)), abs=0.1)
    clean = track_to_boundary([square_walk()], now=NOW)
    b = track_to_boundary([walk], now=NOW)
    assert b.quality["spikes_removed"] == 1 and b.quality["points_used"] == 40
    assert b.area_ha == pytest.approx(clean.area_ha, rel=1e-12)


def test_a_narrower_spike_angle_keeps_the_excursion_as_part_of_the_plot():
    # With a 15° threshold the 18.3° tip is a corner: the triangle fix 5, S, fix 6 is added.
    walk = spiked_walk()
    triangle = pyproj_area_m2([(p.lon, p.lat) for p in walk[5:8]])
    assert triangle == pytest.approx(0.5 * 9.9 * 30, rel=0.01)  # ≈ 148.5 m² by hand
    clean = track_to_boundary([square_walk()], now=NOW)
    b = track_to_boundary([walk], spike_angle_deg=15, now=NOW)
    assert b.quality["spikes_removed"] == 0
    assert (b.area_ha - clean.area_ha) * 10_000 == pytest.approx(triangle, rel=1e-6)


def test_it_closes_a_10_m_gap():
    walk = square_walk(close=False)  # ends at fix 39, one step north of the start
    gap = GEOD.inv(walk[-1].lon, walk[-1].lat, LON0, LAT0)[2]
    assert 9.5 < gap < 10.5
    b = track_to_boundary([walk], now=NOW)
    assert b.quality["closure_gap_m"] == pytest.approx(gap, abs=0.01)
    assert b.quality["closed_automatically"] is True
    assert b.area_ha * 10_000 == pytest.approx(IDEAL_SQUARE_M2, rel=1e-9)


def test_it_refuses_a_60_m_gap_with_the_measured_gap():
    walk = square_walk(close=False)[:35]  # stops at fix 34, six steps (≈ 60 m) short
    gap = GEOD.inv(walk[-1].lon, walk[-1].lat, LON0, LAT0)[2]
    assert 59 < gap < 61
    with pytest.raises(TrackError) as err:
        track_to_boundary([walk], now=NOW)
    assert err.value.code == "track_not_closed"
    assert (f"the track does not come back to its start: the gap is {gap:.0f} m (tolerance 25 m); "
            "walk the rest of the perimeter or raise the tolerance") == err.value.reason
    assert isinstance(err.value, GeometryError)
    assert err.value.quality["closure_gap_m"] == pytest.approx(gap, abs=0.01)
    # A wider tolerance accepts the same walk.
    assert track_to_boundary([walk], closure_tolerance_m=65, now=NOW).quality["closed_automatically"]


def bow_tie_walk() -> tuple[list[TrackPoint], list, list]:
    """A figure-eight: SW → NE (diagonal) → SE → NW (diagonal) → back to SW, 7 legs per
    side. The diagonals cross at the centre of the square (symmetry, in the lon/lat
    plane GEOS works in), leaving an east and a west triangle."""
    sw, ne, se, nw = (LON0, LAT0), (LON0 + SIDE, LAT0 + SIDE), (LON0 + SIDE, LAT0), (LON0, LAT0 + SIDE)
    walk = []
    for (x0, y0), (x1, y1) in [(sw, ne), (ne, se), (se, nw), (nw, sw)]:
        walk += [TrackPoint(x0 + (x1 - x0) * k / 7, y0 + (y1 - y0) * k / 7) for k in range(7)]
    centre = (LON0 + SIDE / 2, LAT0 + SIDE / 2)
    return walk + [TrackPoint(*sw)], [centre, ne, se], [centre, nw, sw]


def test_it_repairs_a_figure_eight_into_its_two_lobes():
    walk, east, west = bow_tie_walk()
    b = track_to_boundary([walk], now=NOW)
    g = shapely_of(b)
    assert g.is_valid and len(g.geoms) == 2
    assert all(part.exterior.is_ccw for part in g.geoms)
    assert [r.rule for r in b.repairs] == ["make_valid"]
    assert b.quality["self_crossings_repaired"] is True and b.quality["slivers_dropped"] == 0
    lobes = pyproj_area_m2(east) + pyproj_area_m2(west)
    assert lobes == pytest.approx(IDEAL_SQUARE_M2 / 2, rel=1e-3)  # two quarters of the square
    assert b.area_ha * 10_000 == pytest.approx(lobes, rel=1e-6)


def test_it_refuses_too_few_points():
    triangle = [TrackPoint(LON0, LAT0), TrackPoint(LON0 + SIDE, LAT0), TrackPoint(LON0, LAT0 + SIDE),
                TrackPoint(LON0, LAT0 + SIDE), TrackPoint(LON0, LAT0)]
    with pytest.raises(TrackError) as err:
        track_to_boundary([triangle], now=NOW)
    assert err.value.code == "track_too_few_points"
    assert "3 distinct points" in err.value.reason and "at least 4" in err.value.reason
    # The same triangle is enough when the caller asks for three.
    assert track_to_boundary([triangle], min_points=3, now=NOW).quality["points_used"] == 3


def test_it_refuses_an_empty_track():
    with pytest.raises(TrackError) as err:
        track_to_boundary([[], []], now=NOW)
    assert err.value.code == "track_empty"


@pytest.mark.parametrize("offset_m", [0.0, 1.5])
def test_it_refuses_a_straight_out_and_back_walk(offset_m):
    # 100 m east along the parallel and back, the return path offset_m north of the way out.
    out = [TrackPoint(LON0 + STEP * k, LAT0) for k in range(11)]
    back_lat = GEOD.fwd(LON0, LAT0, 0, offset_m)[1] if offset_m else LAT0
    back = [TrackPoint(LON0 + STEP * k, back_lat) for k in range(10, -1, -1)]
    with pytest.raises(TrackError) as err:
        track_to_boundary([out + back], now=NOW)
    assert err.value.code == "track_is_line"
    assert err.value.reason == "the track runs along a line, it does not enclose an area"


def test_it_refuses_a_long_thin_strip_by_its_isoperimetric_ratio():
    # 2 km out and back 3.5 m apart: wider than the 3 m line test, but
    # 4πA/P² = 4π·7 000 / 4 007² ≈ 0.0055 < 0.01.
    far_lon, _, _ = GEOD.fwd(LON0, LAT0, 90, 2000.0)
    north_lat = GEOD.fwd(LON0, LAT0, 0, 3.5)[1]
    n = 40
    out = [TrackPoint(LON0 + (far_lon - LON0) * k / n, LAT0) for k in range(n + 1)]
    back = [TrackPoint(LON0 + (far_lon - LON0) * k / n, north_lat) for k in range(n, -1, -1)]
    with pytest.raises(TrackError) as err:
        track_to_boundary([out + back], now=NOW)
    assert err.value.code == "track_is_line"


def test_it_joins_segments_after_a_pause_and_ignores_empty_ones():
    walk = square_walk()
    clean = track_to_boundary([walk], now=NOW)
    b = track_to_boundary([walk[:17], [], walk[17:]], now=NOW)
    assert b.quality["segments"] == 2 and b.quality["empty_segments_ignored"] == 1
    assert b.quality["points"] == 41 and b.quality["points_used"] == 40
    assert b.geom.equals_exact(clean.geom, 1e-12)


def test_it_orients_a_clockwise_walk_counter_clockwise():
    walk = square_walk()[::-1]
    b = track_to_boundary([walk], now=NOW)
    assert shapely_of(b).geoms[0].exterior.is_ccw
    assert b.area_ha * 10_000 == pytest.approx(IDEAL_SQUARE_M2, rel=1e-9)


# ------------------------------------------------------------------------ timestamps


def timed_walk() -> list[TrackPoint]:
    start = datetime(2024, 5, 1, 14, 0, tzinfo=timezone.utc)
    return [TrackPoint(p.lon, p.lat, start + timedelta(seconds=10 * i)) for i, p in enumerate(square_walk())]


def test_plausible_timestamps_give_the_survey_start_and_end():
    q = track_to_boundary([timed_walk()], now=NOW).quality
    assert q["timestamps"] == {"present": 41, "implausible": 0, "reasons": []}
    assert q["started_at"] == "2024-05-01T14:00:00+00:00"
    assert q["ended_at"] == "2024-05-01T14:06:40+00:00"  # 40 × 10 s later


def test_a_clock_stuck_in_1901_is_flagged():
    walk = timed_walk()
    for p in walk[:3]:
        p.time = datetime(1901, 12, 13, 20, 45, 52, tzinfo=timezone.utc)
    q = track_to_boundary([walk], now=NOW).quality
    assert q["timestamps"]["present"] == 41 and q["timestamps"]["implausible"] == 3
    assert q["timestamps"]["reasons"] == [
        "3 before 2000-01-01 (e.g. 1901-12-13 20:45:52): the device clock was not set"]
    assert q["started_at"] == "2024-05-01T14:00:30+00:00"  # the first plausible fix


def test_a_time_in_the_future_is_flagged():
    walk = timed_walk()
    walk[-1].time = datetime(2030, 1, 1, tzinfo=timezone.utc)
    q = track_to_boundary([walk], now=NOW).quality
    assert q["timestamps"]["implausible"] == 1
    assert q["timestamps"]["reasons"][0].startswith("1 in the future (e.g. 2030-01-01 00:00:00")
    assert q["ended_at"] == "2024-05-01T14:06:30+00:00"


def test_times_going_backwards_are_flagged():
    walk = timed_walk()
    walk[20].time = walk[19].time - timedelta(seconds=60)
    q = track_to_boundary([walk], now=NOW).quality
    assert q["timestamps"]["implausible"] == 1
    assert "the clock went backwards" in q["timestamps"]["reasons"][0]


def test_naive_times_are_read_as_utc():
    walk = [TrackPoint(p.lon, p.lat, p.time.replace(tzinfo=None)) for p in timed_walk()]
    q = track_to_boundary([walk], now=NOW).quality
    assert q["timestamps"]["implausible"] == 0 and q["started_at"] == "2024-05-01T14:00:00+00:00"


def test_a_track_without_times():
    q = track_to_boundary([square_walk()], now=NOW).quality
    assert q["timestamps"] == {"present": 0, "implausible": 0, "reasons": []}
    assert q["started_at"] is None and q["ended_at"] is None


def test_accuracy_figures():
    walk = square_walk()
    assert track_to_boundary([walk], now=NOW).quality["accuracy_max_m"] is None
    for i, p in enumerate(walk[:4]):
        p.accuracy_m = [3.0, 5.0, 4.0, 12.0][i]
    q = track_to_boundary([walk], now=NOW).quality
    assert q["accuracy_mean_m"] == 6.0 and q["accuracy_max_m"] == 12.0  # (3+5+4+12)/4


# -------------------------------------------------------------------- real GPX files


def gpx_segments(name: str) -> list[list[TrackPoint]]:
    gpxpy = pytest.importorskip("gpxpy")
    gpx = gpxpy.parse((GPX_DIR / name).read_text(encoding="utf-8-sig"))
    return [[TrackPoint(p.longitude, p.latitude, p.time) for p in segment.points]
            for track in gpx.tracks for segment in track.segments]


def test_the_real_self_crossing_loop_becomes_a_valid_boundary():
    # SOURCES.txt: an eTrex 20x loop round Višnjan, 104 fixes, start-end 26 m, its
    # ring crosses itself.
    segments = gpx_segments("around-visnjan-with-car.gpx")
    raw = [(p.lon, p.lat) for p in segments[0]]
    assert not shapely.Polygon(raw).is_valid
    with pytest.raises(TrackError) as err:  # 26 m is over the default 25 m tolerance
        track_to_boundary(segments)
    assert "the gap is 26 m" in err.value.reason
    b = track_to_boundary(segments, closure_tolerance_m=30)
    g = shapely_of(b)
    assert g.is_valid and len(g.geoms) == 1
    assert [r.rule for r in b.repairs] == ["make_valid"] and b.quality["self_crossings_repaired"]
    # Independently: shapely's make_valid of the raw ring leaves one 31.25 ha piece
    # and four crumbs of under 100 m², which are the slivers dropped.
    pieces = sorted(pyproj_area_m2(p.exterior.coords) for p in shapely.make_valid(shapely.Polygon(raw)).geoms)
    assert len(pieces) == 5 and pieces[-2] < 100
    assert b.quality["slivers_dropped"] == 4
    assert b.area_ha * 10_000 == pytest.approx(pieces[-1], rel=1e-3)
    assert b.quality["timestamps"]["implausible"] == 0
    assert b.quality["started_at"] == "2020-12-18T06:15:50+00:00"


def test_the_real_1901_clock_is_flagged():
    # SOURCES.txt: Mojstrovka.gpx, 184 fixes all dated 1901-12-13 (bogus device clock).
    segments = gpx_segments("Mojstrovka.gpx")
    with pytest.raises(TrackError) as err:  # an out-and-back hike ending 28 m from its start
        track_to_boundary(segments)
    ts = err.value.quality["timestamps"]
    assert ts["present"] == 184 and ts["implausible"] == 184
    assert ts["reasons"][0].startswith("184 before 2000-01-01 (e.g. 1901-12-13")
    assert err.value.quality["started_at"] is None
