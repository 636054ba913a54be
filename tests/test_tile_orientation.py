"""Vector tiles read from their raw bytes, not through GDAL or MapLibre (both repair
ring winding silently; QGIS drops what breaks it).

The Mapbox Vector Tile spec 2.1, section 4.3.4.4: a polygon feature's geometry is a
sequence of rings, each MoveTo(1) LineTo(n >= 2) ClosePath, coordinates as zigzag
deltas from a cursor kept across the whole feature; a ring of POSITIVE area by the
surveyor's formula in tile coordinates (x right, y down) is an exterior ring and
opens a polygon, a ring of negative area is a hole of the polygon opened last. So
the first ring of every polygon feature must have positive area. The decoder below
is written from the spec over the protobuf field reader of test_layer_registry; it
keeps the rings as the tile writes them (a decoder library may re-orient them).

Checked on the real SERNANP protected areas and INEI districts of ../shared/data
(the tiles a QGIS user reported: 6/18/33 and 8/73/133, and others around
Cordillera Azul at other zooms), on hand-made polygons with holes in every polygon
layer, and on the concentration grid; the size of a decoded ring is checked
independently against the source polygon projected by pyproj.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shapely
from django.conf import settings
from django.contrib.gis.geos import MultiPolygon, Polygon
from pyproj import Transformer

from api import layers, tiles
from plots.models import AdminArea, ProtectedArea
from tests.test_layer_registry import _fields

pytestmark = pytest.mark.django_db
SHARED = Path(settings.CHACRA_SHARED_DATA)
needs_shared = pytest.mark.skipif(not (SHARED / "protected_areas").exists(),
                                  reason=f"{SHARED}/protected_areas (public test data) is not present")

MOVE_TO, LINE_TO, CLOSE_PATH = 1, 2, 7
POINT, LINESTRING, POLYGON = 1, 2, 3
WORLD = 2 * math.pi * 6378137  # the Web Mercator square's side, m
TO_3857 = Transformer.from_crs(4326, 3857, always_xy=True)


# --------------------------------------------------------------------------- the decoder

@dataclass
class Feature:
    type: int  # 1 point, 2 line, 3 polygon (Feature.type, GeomType)
    geometry: list[int]  # the raw command stream
    properties: dict


def _varints(buf: bytes) -> list[int]:
    out, shift, value = [], 0, 0
    for byte in buf:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            out.append(value)
            shift = value = 0
    assert shift == 0, "a packed field ends inside a varint"
    return out


def _repeated(wire: int, value) -> list[int]:
    """A repeated uint32 field, packed (wire type 2, as ST_AsMVT writes) or not."""
    return _varints(value) if wire == 2 else [value]


def _value(buf: bytes):
    """An MVT Value message: string 1, float 2, double 3, int64 4, uint64 5, sint64 6, bool 7."""
    for number, _, raw in _fields(buf):
        if number == 1:
            return raw.decode()
        if number == 2:
            return struct.unpack("<f", raw)[0]
        if number == 3:
            return struct.unpack("<d", raw)[0]
        if number == 4:
            return raw - (1 << 64) if raw >= 1 << 63 else raw
        if number == 5:
            return raw
        if number == 6:
            return zigzag(raw)
        if number == 7:
            return bool(raw)
    return None


def decode(tile: bytes) -> dict[str, list[Feature]]:
    """Layer name -> its features (Tile.layers 3; Layer.name 1, features 2, keys 3,
    values 4, extent 5; Feature.tags 2, type 3, geometry 4)."""
    out = {}
    for number, _, layer in _fields(tile):
        if number != 3:
            continue
        parts = list(_fields(layer))
        name = next(v for n, _, v in parts if n == 1).decode()
        keys = [v.decode() for n, _, v in parts if n == 3]
        values = [_value(v) for n, _, v in parts if n == 4]
        assert next((v for n, _, v in parts if n == 5), 4096) == tiles.EXTENT
        features = []
        for n, _, raw in parts:
            if n != 2:
                continue
            kind, tags, geometry = 0, [], []
            for fn, wire, value in _fields(raw):
                if fn == 2:
                    tags += _repeated(wire, value)
                elif fn == 3:
                    kind = value
                elif fn == 4:
                    geometry += _repeated(wire, value)
            features.append(Feature(kind, geometry, {keys[k]: values[v] for k, v in zip(tags[::2], tags[1::2])}))
        out[name] = features
    return out


def zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def rings(geometry: list[int]) -> list[list[tuple[int, int]]]:
    """A polygon's command stream as its rings, in tile coordinates (the closing
    vertex not repeated). Each ring must be MoveTo(1) LineTo(n >= 2) ClosePath(1)."""
    out, x, y, i = [], 0, 0, 0
    while i < len(geometry):
        assert geometry[i] == (1 << 3) | MOVE_TO, f"command {i}: a ring starts with MoveTo(1), not {geometry[i]:#x}"
        x, y = x + zigzag(geometry[i + 1]), y + zigzag(geometry[i + 2])
        ring = [(x, y)]
        command, count = geometry[i + 3] & 7, geometry[i + 3] >> 3
        assert command == LINE_TO and count >= 2, f"command {i + 3}: LineTo(n >= 2) expected"
        i += 4
        for _ in range(count):
            x, y = x + zigzag(geometry[i]), y + zigzag(geometry[i + 1])
            ring.append((x, y))
            i += 2
        assert geometry[i] == (1 << 3) | CLOSE_PATH, f"command {i}: ClosePath(1) expected"
        i += 1
        out.append(ring)
    return out


def points(geometry: list[int]) -> list[tuple[int, int]]:
    """A point feature's command stream: one MoveTo(n), nothing else."""
    command, count = geometry[0] & 7, geometry[0] >> 3
    assert command == MOVE_TO and len(geometry) == 1 + 2 * count
    out, x, y = [], 0, 0
    for dx, dy in zip(geometry[1::2], geometry[2::2]):
        x, y = x + zigzag(dx), y + zigzag(dy)
        out.append((x, y))
    return out


def surveyor(ring: list[tuple[int, int]]) -> float:
    """The ring's signed area by the surveyor's (shoelace) formula, in tile
    coordinates as they stand (y down): positive for an MVT exterior ring."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1])) / 2


def polygons(feature: Feature) -> list[list[list[tuple[int, int]]]]:
    """The feature's polygons as MVT 2.1 reads them: each ring of positive area opens
    one, each ring of negative area is a hole of the last one opened."""
    out = []
    for ring in rings(feature.geometry):
        if surveyor(ring) > 0:
            out.append([ring])
        elif out:
            out[-1].append(ring)
    return out


def winding_problems(feature: Feature, label: str) -> list[str]:
    """What breaks the MVT 2.1 winding rule in one polygon feature (empty: nothing)."""
    problems = []
    found = rings(feature.geometry)
    if not found:
        return [f"{label}: a polygon feature without a ring"]
    areas = [surveyor(r) for r in found]
    if areas[0] <= 0:
        problems.append(f"{label}: the first of {len(found)} rings has area {areas[0]} (a hole, or nothing)")
    problems += [f"{label}: ring {k} has zero area" for k, a in enumerate(areas) if a == 0]
    # Each hole lies inside the exterior it follows (to within a grid unit: quantised
    # rings may touch): a hole that is really an exterior wound backwards would not.
    for polygon in polygons(feature):
        shell = shapely.make_valid(shapely.Polygon(polygon[0])).buffer(1)
        for hole in polygon[1:]:
            if not shell.covers(shapely.MultiPoint(hole)):
                problems.append(f"{label}: a hole of {len(hole)} vertices lies outside the exterior it follows")
    return problems


def layer_problems(data: bytes, layer: str) -> tuple[list[Feature], list[str]]:
    features = decode(data).get(layer, [])
    problems = []
    for k, feature in enumerate(features):
        label = f"{layer} feature {k} {feature.properties.get('name') or feature.properties.get('code') or ''}".strip()
        if feature.type != POLYGON:
            problems.append(f"{label}: geometry type {feature.type}, not a polygon")
            continue
        problems += winding_problems(feature, label)
    return features, problems


# --------------------------------------------------------------------------- the decoder's own checks

def _encode_ring(ring, cursor=(0, 0)) -> list[int]:
    def zz(n):
        return (n << 1) ^ (n >> 31)

    x, y = cursor
    out = [(1 << 3) | MOVE_TO, zz(ring[0][0] - x), zz(ring[0][1] - y), (len(ring) - 1) << 3 | LINE_TO]
    for (x0, y0), (x1, y1) in zip(ring, ring[1:]):
        out += [zz(x1 - x0), zz(y1 - y0)]
    return out + [(1 << 3) | CLOSE_PATH]


def test_the_decoder_reads_the_spec_example_and_tells_a_hole_first():
    # MVT spec 4.3.5.7, "Example Multi Polygon": two polygons, the second with a hole.
    spec = [9, 0, 0, 26, 20, 0, 0, 20, 19, 0, 15, 9, 22, 2, 26, 18, 0, 0, 18, 17, 0, 15, 9, 4, 13, 26, 0, 8, 8, 0,
            0, 7, 15]
    found = rings(spec)
    assert found == [[(0, 0), (10, 0), (10, 10), (0, 10)], [(11, 11), (20, 11), (20, 20), (11, 20)],
                     [(13, 13), (13, 17), (17, 17), (17, 13)]]
    assert [surveyor(r) for r in found] == [100, 81, -16]
    assert [len(p) for p in polygons(Feature(POLYGON, spec, {}))] == [1, 2]
    assert winding_problems(Feature(POLYGON, spec, {}), "spec") == []
    # The same rings wound the other way (y up, as GEOS writes a union): the first is a hole.
    backwards = _encode_ring([(0, 0), (0, 10), (10, 10), (10, 0)])
    assert surveyor(rings(backwards)[0]) == -100
    assert "a hole, or nothing" in winding_problems(Feature(POLYGON, backwards, {}), "b")[0]
    # A ring of negative area that follows an exterior it does not lie in.
    outside = _encode_ring([(0, 0), (10, 0), (10, 10), (0, 10)]) + _encode_ring(
        [(20, 20), (20, 30), (30, 30), (30, 20)], (0, 10))
    assert [surveyor(r) for r in rings(outside)] == [100, -100]
    assert "outside the exterior" in " ".join(winding_problems(Feature(POLYGON, outside, {}), "o"))


# --------------------------------------------------------------------------- helpers

def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def to_tile(geom, z: int, x: int, y: int):
    """A lon/lat shapely geometry in the tile's coordinates (extent 4096, y down), by pyproj."""
    size = WORLD / 2 ** z
    left, top = -WORLD / 2 + x * size, WORLD / 2 - y * size

    def transform(coords):
        mx, my = TO_3857.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([(mx - left) / size * tiles.EXTENT, (top - my) / size * tiles.EXTENT])

    return shapely.transform(geom, transform)


def fetch(client, layer: str, z: int, x: int, y: int, query: str = "") -> bytes:
    response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt{query}")
    assert response.status_code == 200, (layer, z, x, y, response.status_code, response.content[:300])
    assert response["Content-Type"] == tiles.MVT
    return response.content


# --------------------------------------------------------------------------- real SERNANP areas and INEI districts

def _cordillera_azul():
    doc = json.loads((SHARED / "protected_areas" / "cordillera_azul_4326.geojson").read_text())
    return shapely.geometry.shape(doc["features"][0]["geometry"])


@pytest.fixture
def real_layers(db):
    from plots import reference

    reference.load_shared_layers(SHARED)
    return ProtectedArea.objects.get(official_code="PNCAZ", edition="2022-08")


def _real_tiles() -> list[tuple[int, int, int]]:
    """The two tiles of the report and tiles around Cordillera Azul from z5 to z13:
    over the whole park, across its edge (clipped, and where ST_Subdivide cut it into
    pieces) and inside it (the area covers the whole tile)."""
    park = _cordillera_azul()
    edge = shapely.get_coordinates(park)[0]  # a vertex of the boundary
    east = max(shapely.get_coordinates(park), key=lambda c: c[0])
    inside = park.representative_point()
    out = [(6, 18, 33), (8, 73, 133), (5, *tile_of(-76, -7.6, 5)), (7, *tile_of(-76, -7.6, 7))]
    out += [(z, *tile_of(*edge, z)) for z in (9, 11, 13)] + [(z, *tile_of(*east, z)) for z in (10, 12)]
    out += [(12, *tile_of(inside.x, inside.y, 12))]
    return out


@needs_shared
def test_real_protected_areas_and_districts_obey_the_winding_rule(real_layers, technician):
    """The reported tiles (6/18/33: 43 of 77 areas began with a hole; 8/73/133: 3 of 4,
    Cordillera Azul among them) and tiles over Cordillera Azul from z5 to z13."""
    problems, seen = [], {}
    for z, x, y in _real_tiles():
        for layer in ("protected-areas", "districts"):
            features, found = layer_problems(fetch(technician.client, layer, z, x, y), layer)
            problems += [f"{z}/{x}/{y} {p}" for p in found]
            seen[(layer, z, x, y)] = features
    assert not problems, f"{len(problems)} polygon(s) break the MVT 2.1 winding rule:\n" + "\n".join(problems[:20])
    assert len(seen[("protected-areas", 6, 18, 33)]) > 60 and len(seen[("districts", 6, 18, 33)]) > 500
    assert len(seen[("protected-areas", 8, 73, 133)]) >= 4
    for z, x, y in _real_tiles():
        park = [f for f in seen[("protected-areas", z, x, y)] if f.properties["name"] == real_layers.name]
        assert len(park) == 1, (z, x, y)  # one feature per area: its pieces united
        # The park has no hole: a negative ring would be a seam between two pieces.
        assert all(surveyor(r) > 0 for r in rings(park[0].geometry)), (z, x, y)
    # A tile inside the park: one ring, the tile with its buffer, whatever pieces meet there.
    z, x, y = _real_tiles()[-1]
    (park,) = [f for f in seen[("protected-areas", z, x, y)] if f.properties["name"] == real_layers.name]
    side = tiles.EXTENT + 2 * tiles.BUFFER
    assert [surveyor(r) for r in rings(park.geometry)] == [side * side]


@needs_shared
def test_a_decoded_ring_measures_the_source_polygon_projected_by_pyproj(real_layers, technician):
    """Cordillera Azul in 6/18/33 (the whole park in one tile): the area of its decoded
    rings in tile units against the polygon of the source file, projected to the tile
    grid by pyproj and measured by shapely, to within the quantisation (every vertex
    moves by up to half a unit on each axis when it is snapped to the grid, and
    ST_AsMVTGeom drops vertices within a unit of a straight line)."""
    z, x, y = 6, 18, 33
    source = to_tile(_cordillera_azul(), z, x, y)
    assert shapely.box(0, 0, tiles.EXTENT, tiles.EXTENT).contains(source)  # no clipping
    features = decode(fetch(technician.client, "protected-areas", z, x, y))["protected-areas"]
    (park,) = [f for f in features if f.properties["name"] == real_layers.name]
    decoded = sum(surveyor(r) for r in rings(park.geometry))
    tolerance = 1.0 * source.length  # a unit of shift along the whole perimeter, at most
    assert decoded == pytest.approx(source.area, abs=tolerance)  # 514,618.5 against 514,603.6 on the 2022-08 file
    # The largest exterior is the source's exterior, not its mirror image or a neighbour.
    largest = max((r for r in rings(park.geometry)), key=surveyor)
    outline = shapely.Polygon(largest)
    assert outline.symmetric_difference(shapely.Polygon(source.geoms[0].exterior)).area < tolerance


# --------------------------------------------------------------------------- hand-made polygons with holes

def _ring(cx: float, cy: float, r: float, n: int, clockwise: bool = False) -> list[tuple[float, float]]:
    step = -1 if clockwise else 1
    pts = [(cx + r * math.cos(step * 2 * math.pi * k / n), cy + r * math.sin(step * 2 * math.pi * k / n))
           for k in range(n)]
    return pts + pts[:1]


def _square(cx, cy, half, clockwise=False):
    ring = [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    ring = ring[::-1] if clockwise else ring
    return ring + ring[:1]


@pytest.fixture
def holed(make_plot, make_producer, org_a):
    """In the middle of one z12 tile near Tocache: a protected area of 700 vertices
    with a hole (ST_Subdivide cuts it into pieces), a district with a hole, a plot
    with a hole and a plot surveyed as a point."""
    z = 12
    x, y = tile_of(-76.49, -8.19, z)
    west, south, east, north = tiles.tile_bounds_lonlat(z, x, y)
    cx, cy = (west + east) / 2, (south + north) / 2
    area = ProtectedArea.objects.create(
        name="Bosque con Claro", category="national_park", official_code="CLARO", source="test", edition="t",
        geom=MultiPolygon(Polygon(_ring(cx - 0.02, cy, 0.012, 400), _ring(cx - 0.02, cy, 0.005, 300, True)),
                          srid=4326))
    AdminArea.objects.create(ubigeo="999901", name="DISTRITO CON HUECO", level="district", edition=2007,
                             source="test", geom=MultiPolygon(Polygon(_square(cx + 0.015, cy, 0.02),
                                                                      _square(cx + 0.015, cy, 0.004, True)),
                                                              srid=4326))
    plot = make_plot(producer=make_producer(organization=org_a), code="holed-plot", geometry_value={
        "type": "Polygon", "coordinates": [_square(cx + 0.03, cy + 0.01, 0.003),
                                           _square(cx + 0.03, cy + 0.01, 0.001, True)]})
    point = make_plot(producer=make_producer(organization=org_a), code="point-plot",
                      geometry_value={"type": "Point", "coordinates": [cx + 0.03, cy - 0.01]})
    assert area.pieces.count() > 1
    return {"tile": (z, x, y), "centre": (cx, cy), "area": area, "plot": plot, "point": point}


def _one(client, layer, z, x, y) -> Feature:
    features, problems = layer_problems(fetch(client, layer, z, x, y), layer)
    assert not problems, problems
    assert len(features) == 1, (layer, [f.properties for f in features])
    return features[0]


def test_polygons_with_holes_keep_their_holes_wound_as_holes_in_every_layer(holed, technician):
    z, x, y = holed["tile"]
    for layer in ("protected-areas", "districts", "plots"):
        feature = _one(technician.client, layer, z, x, y)
        found = polygons(feature)
        # One exterior and its hole: the protected area's pieces united without a seam.
        assert [len(p) for p in found] == [2], (layer, [[surveyor(r) for r in p] for p in found])
        shell, hole = found[0]
        assert surveyor(shell) > 0 > surveyor(hole), layer
        assert shapely.Polygon(shell).contains(shapely.Polygon(hole)), layer
    # The protected area's rings measure the source rings projected by pyproj (the
    # tolerance as for Cordillera Azul: a unit along each ring).
    source = to_tile(shapely.from_wkb(bytes(holed["area"].geom.wkb)).geoms[0], z, x, y)
    (shell, hole), = polygons(_one(technician.client, "protected-areas", z, x, y))
    exterior, interior = shapely.Polygon(source.exterior), shapely.Polygon(source.interiors[0])
    assert surveyor(shell) == pytest.approx(exterior.area, abs=exterior.length)
    assert -surveyor(hole) == pytest.approx(interior.area, abs=interior.length)
    # Tiles that cut through the shapes, at higher zooms: the pieces left obey the rule too.
    cx, cy = holed["centre"]
    for lon, lat in [(cx - 0.02 + 0.012, cy), (cx - 0.02 + 0.005, cy), (cx + 0.015 + 0.004, cy), (cx + 0.035, cy)]:
        for zoom in (14, 16):
            tx, ty = tile_of(lon, lat, zoom)
            for layer in ("protected-areas", "districts"):
                _, problems = layer_problems(fetch(technician.client, layer, zoom, tx, ty), layer)
                assert not problems, (zoom, tx, ty, problems)


def test_plot_tiles_carry_polygons_and_plot_point_tiles_points_only(holed, technician, owner):
    z, x, y = holed["tile"]
    for client in (technician.client, owner.client):
        boundaries = decode(fetch(client, "plots", z, x, y))
        singles = decode(fetch(client, "plot-points", z, x, y))
        assert list(boundaries) == ["plots"] and list(singles) == ["plot-points"]
        assert [(f.type, f.properties["code"]) for f in boundaries["plots"]] == [(POLYGON, "holed-plot")]
        assert [(f.type, f.properties["code"]) for f in singles["plot-points"]] == [(POINT, "point-plot")]
    # The point where pyproj puts it, to within a grid unit, with the plots' attributes.
    (feature,) = decode(fetch(technician.client, "plot-points", z, x, y))["plot-points"]
    ((px, py),) = points(feature.geometry)
    cx, cy = holed["centre"]
    expected = to_tile(shapely.Point(cx + 0.03, cy - 0.01), z, x, y)
    assert (px, py) == pytest.approx((expected.x, expected.y), abs=1)
    # The plots' attributes, from the one declaration (area_ha is null for a point, and
    # ST_AsMVT leaves null attributes out).
    declared = [c.name for c in layers.PLOT_POINTS.tile]
    assert declared == [c.name for c in layers.PLOTS.tile]
    assert list(feature.properties) == [name for name in declared if name != "area_ha"]


# --------------------------------------------------------------------------- the concentration grid

def test_concentration_tiles_obey_the_winding_rule(holed, make_plot, make_producer, org_a, technician, investor):
    """Computed features (GeoJSON from the concentration grid) go through ST_AsMVTGeom
    in FEATURES_SQL: H3 hexagons, and a district with a hole as the grid."""
    cx, cy = holed["centre"]
    for i in range(6):  # enough producers for a privacy unit, all in the holed district
        make_plot(producer=make_producer(organization=org_a), code=f"conc-{i}",
                  geometry_value={"type": "Polygon", "coordinates": [_square(cx + 0.003 + 0.004 * (i % 2),
                                                                             cy - 0.012 + 0.004 * (i // 2), 0.001)]})
    z, x, y = holed["tile"]
    seen = {}
    for client, query in [(investor.client, "?grid=h3:7"), (technician.client, "?grid=h3:8"),
                          (technician.client, "?grid=district")]:
        for zoom, tx, ty in [(z, x, y), (z - 4, x >> 4, y >> 4), (z + 2, *tile_of(cx + 0.003, cy - 0.012, z + 2))]:
            features, problems = layer_problems(fetch(client, "concentration", zoom, tx, ty, query), "concentration")
            assert not problems, (query, zoom, problems)
            seen[(query, zoom)] = features
    assert seen[("?grid=h3:7", z)] and seen[("?grid=h3:8", z)]
    (district,) = seen[("?grid=district", z)]
    assert district.properties["level"] == "district"
    assert [len(p) for p in polygons(district)] == [2]  # the district's hole, wound as a hole
