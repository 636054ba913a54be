"""plots.geometry pinned against independent computations: pyproj's Geod and
Transformer, shapely, and the closed-form area of an ellipsoidal quadrangle."""

from __future__ import annotations

import math

import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from pyproj import Geod, Transformer

from plots import geometry
from plots.geometry import GeometryError

A = 6378137.0
F = 1 / 298.257223563
B = A * (1 - F)
E2 = F * (2 - F)
E = math.sqrt(E2)


def quadrangle_area_m2(lon1, lat1, lon2, lat2):
    """Exact area between two meridians and two parallels on the WGS 84 ellipsoid
    (authalic-latitude formula, e.g. Snyder 1987 eq. 3-12)."""
    def g(phi):
        s = math.sin(math.radians(phi))
        return s / (1 - E2 * s * s) + math.log((1 + E * s) / (1 - E * s)) / (2 * E)
    return abs(B * B / 2 * math.radians(lon2 - lon1) * (g(lat2) - g(lat1)))


def square(lon, lat, size):
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + size, lat], [lon + size, lat + size],
                                                [lon, lat + size], [lon, lat]]]}


def pyproj_area_ha(ring):
    lons, lats = zip(*ring)
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)
    return abs(area) / 10_000


@pytest.mark.parametrize("lon,lat", [(-76.0, 0.0), (-76.0, -9.0), (-74.96, -8.637)])
@pytest.mark.parametrize("size", [0.001, 0.01, 0.1])
def test_it_matches_geographiclib_within_1e9(lon, lat, size):
    g = square(lon, lat, size)
    ours = geometry.geodesic_area_ha(geometry.parse_geojson(g))
    theirs = pyproj_area_ha(g["coordinates"][0])
    assert abs(ours - theirs) / theirs < 1e-9


@pytest.mark.parametrize("lat", [0.0, -9.0])
def test_it_matches_the_closed_form_quadrangle(lat):
    # 0.001° ≈ 111 m: geodesic edges bow from the parallels by micrometres, so the
    # geodesic polygon and the quadrangle agree to better than 1e-6.
    size = 0.001
    ours = geometry.geodesic_area_ha(geometry.parse_geojson(square(-76.0, lat, size)))
    exact = quadrangle_area_m2(-76.0, lat, -76.0 + size, lat + size) / 10_000
    assert abs(ours - exact) / exact < 1e-6
    # Hand check of the order of magnitude: 111.32 m × 110.57 m at the equator ≈ 1.2309 ha.
    if lat == 0.0:
        assert ours == pytest.approx(1.2309, abs=0.0005)


def test_web_mercator_would_be_wrong_at_minus_9():
    g = square(-76.0, -9.0, 0.01)
    ours = geometry.geodesic_area_ha(geometry.parse_geojson(g))
    to_mercator = Transformer.from_crs(4326, 3857, always_xy=True)
    mercator = shapely.transform(shapely.geometry.shape(g), lambda x, y: to_mercator.transform(x, y),
                                 interleaved=False).area / 10_000
    assert mercator / ours > 1.02  # why areas are never computed in EPSG:3857


def test_it_sums_multipolygon_parts_and_subtracts_holes():
    outer = [[-76.0, -9.0], [-75.99, -9.0], [-75.99, -8.99], [-76.0, -8.99], [-76.0, -9.0]]
    hole = [[-75.998, -8.998], [-75.998, -8.992], [-75.992, -8.992], [-75.992, -8.998], [-75.998, -8.998]]
    g = geometry.parse_geojson({"type": "MultiPolygon", "coordinates": [[outer, hole], [[
        [-75.98, -9.0], [-75.97, -9.0], [-75.97, -8.99], [-75.98, -8.99], [-75.98, -9.0]]]]})
    expected = 2 * pyproj_area_ha(outer) - pyproj_area_ha(hole)
    assert geometry.geodesic_area_ha(g) == pytest.approx(expected, rel=1e-9)


def test_it_reprojects_utm_with_the_same_answer_as_pyproj():
    # UTM 18S (EPSG:32718): the zone of Tingo María; false northing 10,000 km.
    wkt = "SRID=32718;POLYGON((390000 8970000, 390100 8970000, 390100 8970100, 390000 8970100, 390000 8970000))"
    g = geometry.parse_wkt(wkt)
    t = Transformer.from_crs(32718, 4326, always_xy=True)
    for (x, y), (lon, lat) in zip([(390000, 8970000), (390100, 8970000)], list(g.coords[0])[:2]):
        elon, elat = t.transform(x, y)
        assert lon == pytest.approx(elon, abs=1e-9) and lat == pytest.approx(elat, abs=1e-9)
    assert g.srid == 4326 and -77 < g.centroid.x < -75 and -10 < g.centroid.y < -9
    # A 100 m × 100 m UTM square is ~1 ha (UTM scale factor ≈ 0.9997 near the zone edge).
    assert geometry.geodesic_area_ha(g) == pytest.approx(1.0, rel=0.002)


def test_it_reads_geojson_wkt_and_ewkb_alike():
    g = square(-76.5, -8.2, 0.001)
    a = geometry.parse_geometry(g)
    b = geometry.parse_geometry(a.wkt)
    c = geometry.parse_geometry(a.ewkb.hex())
    d = geometry.parse_geometry('{"type": "Polygon", "coordinates": %s}' % g["coordinates"])
    assert a.equals_exact(b, 1e-12) and a.equals_exact(c, 1e-12) and a.equals_exact(d, 1e-12)


def test_it_honours_a_legacy_crs_member():
    g = {"type": "Point", "coordinates": [500000, 9000000],
         "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32718"}}}
    p = geometry.parse_geojson(g)
    elon, elat = Transformer.from_crs(32718, 4326, always_xy=True).transform(500000, 9000000)
    assert (p.x, p.y) == pytest.approx((elon, elat), abs=1e-9)
    assert p.x == pytest.approx(-75.0)  # central meridian of zone 18


def test_it_drops_z():
    g = geometry.parse_geojson({"type": "Point", "coordinates": [-76.5, -8.2, 540.0]})
    assert not g.hasz


@pytest.mark.parametrize("value,words", [
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "not closed"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "at least 4"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, "crosses itself"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}, "invalid polygon"),
    ({"type": "Polygon", "coordinates": [[[-6.2, 106.8], [-6.1, 106.8], [-6.1, 106.9], [-6.2, 106.8]]]}, "swapped"),
    ({"type": "Polygon", "coordinates": [[[200, 0], [201, 0], [201, 1], [200, 0]]]}, "out of range"),
    ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "walked track"),
    ({"type": "Polygon", "coordinates": [[[0, 0], ["a", 0], [1, 1], [0, 0]]]}, "finite numbers"),
    ({"type": "Circle", "coordinates": [0, 0]}, "unsupported geometry type"),
    ("SRID=999999;POINT(0 0)", "EPSG:999999"),
    ("POLYGON((0 0, 1", "not valid WKT"),
    ("", "required"),
])
def test_it_refuses_bad_plot_geometry_with_a_reason(value, words):
    with pytest.raises(GeometryError) as err:
        geometry.clean_plot_geometry(value)
    assert words in err.value.reason


def test_it_repairs_a_bowtie_only_when_asked_and_reports_the_rule():
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [0.002, 0.002], [0.002, 0], [0, 0.002], [0, 0]]]}
    with pytest.raises(GeometryError):
        geometry.clean_plot_geometry(bowtie)
    clean = geometry.clean_plot_geometry(bowtie, repair_rules=("make_valid",))
    assert [r.rule for r in clean.repairs] == ["make_valid"]
    assert clean.geom.geom_type == "MultiPolygon" and len(clean.geom) == 2
    # Two triangles of a quarter of the 0.002° square each.
    triangle = pyproj_area_ha([[0, 0], [0.001, 0.001], [0.002, 0], [0, 0]])
    assert clean.area_ha == pytest.approx(2 * triangle, rel=1e-6)


def test_it_orients_exteriors_counter_clockwise_and_holes_clockwise():
    cw_outer = [[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]
    ccw_hole = [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8], [0.2, 0.2]]
    g = geometry.orient_rfc7946(Polygon(cw_outer, ccw_hole, srid=4326))
    ext, hole = g.coords
    assert shapely.LinearRing(ext).is_ccw and not shapely.LinearRing(hole).is_ccw


def test_it_promotes_polygons_and_keeps_multipolygons():
    p = Polygon(((0, 0), (1, 0), (1, 1), (0, 0)), srid=4326)
    assert geometry.to_multipolygon(p).geom_type == "MultiPolygon"
    m = MultiPolygon(p, srid=4326)
    assert geometry.to_multipolygon(m) is m
    with pytest.raises(GeometryError):
        geometry.to_multipolygon(GEOSGeometry("POINT(0 0)", srid=4326))


def test_it_rounds_coordinates_and_drops_the_duplicates_that_creates():
    g = GEOSGeometry("POLYGON((0 0, 0.0000001 0, 1 0, 1 1, 0 0))", srid=4326)
    r = geometry.round_coordinates(g, 6)
    assert list(r.coords[0]) == [(0, 0), (1, 0), (1, 1), (0, 0)]


def test_a_point_plot_has_no_polygon_area():
    clean = geometry.clean_plot_geometry({"type": "Point", "coordinates": [-76.5, -8.2]})
    assert clean.is_point and clean.area_ha == 0.0
