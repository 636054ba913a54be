"""Each served layer is declared once (api.layers): what every output really serves
is pinned here to that declaration — the Feature properties (for plots, the Feature
the database trigger stores, plots migration 0003), the OGC and REST features, the
export columns and the vector-tile attributes, in order."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon

from api import layers
from core.units import AREA_UNIT_SQUARE_METRES, HECTARE_M2
from plots.models import AdminArea, AreaUnit, Plot, ProtectedArea
from tests.conftest import square

pytestmark = pytest.mark.django_db
BOX = (-76.50, -8.20, -76.48, -8.18)
DECLARED = [layers.PLOTS, layers.PLOT_POINTS, layers.PROTECTED_AREAS, layers.DISTRICTS]  # served by every output
POINT = {"type": "Point", "coordinates": [-76.485, -8.185]}  # the plot surveyed as a point


@pytest.fixture
def world(make_plot, make_producer, org_a):
    """A plot, a protected area and a district around it, every attribute filled."""
    geom = MultiPolygon(Polygon.from_bbox(BOX), srid=4326)
    ProtectedArea.objects.create(name="Bosque de Prueba", category="national_park", official_code="PRUEBA",
                                 source="test", edition="2026-01", geom=geom)
    province = AdminArea.objects.create(ubigeo="2210", name="TOCACHE", level="province", edition=2007)
    district = AdminArea.objects.create(ubigeo="221001", name="TOCACHE", level="district", edition=2007,
                                        parent=province, source="test", geom=geom)
    plot = make_plot(producer=make_producer(organization=org_a), code="reg-1",
                     geometry_value=square(-76.495, -8.195, 0.002), declared_area=2.5, declared_area_unit="yugada")
    point = make_plot(producer=plot.producer, code="reg-pt", geometry_value=POINT, declared_area=0.5)
    Plot.objects.filter(pk__in=[plot.pk, point.pk]).update(district=district)
    return plot


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message: enough of the format
    to read an MVT's layers and their keys without a decoder library."""
    i = 0

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            byte = buf[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value
    while i < len(buf):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire == 2:
            size = varint()
            yield number, wire, buf[i:i + size]
            i += size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            yield number, wire, buf[i:i + size]
            i += size
        else:
            raise ValueError(f"wire type {wire}")


def tile_keys(tile: bytes) -> dict[str, list[str]]:
    """Layer name -> its attribute keys, in the order the tile lists them (MVT spec:
    Layer.name = 1, Layer.keys = 3, Tile.layers = 3)."""
    out = {}
    for number, _, layer in _fields(tile):
        if number == 3:
            parts = list(_fields(layer))
            name = next(v for n, _, v in parts if n == 1).decode()
            out[name] = [v.decode() for n, _, v in parts if n == 3]
    return out


@pytest.mark.parametrize("layer", DECLARED, ids=lambda layer: layer.id)
def test_it_serves_the_declared_properties_in_ogc(world, technician, layer):
    body = technician.client.get(f"/ogc/collections/{layer.id}/items").json()
    assert body["numberReturned"] == 1
    assert list(body["features"][0]["properties"]) == layer.property_names


def test_it_stores_the_declared_plot_properties_by_trigger(world):
    text = Plot.objects.values_list("feature_geojson", flat=True).get(pk=world.pk)
    assert list(json.loads(text)["properties"]) == layers.PLOTS.property_names


def test_it_serves_the_declared_properties_in_rest_lists(world, technician):
    plots = technician.client.get("/api/v1/plots").json()["features"]
    areas = technician.client.get("/api/v1/protected-areas").json()["features"]
    districts = technician.client.get("/api/v1/admin-areas?level=district").json()["features"]
    assert list(plots[0]["properties"]) == layers.PLOTS.property_names
    assert list(areas[0]["properties"]) == layers.PROTECTED_AREAS.property_names
    assert list(districts[0]["properties"]) == layers.DISTRICTS.property_names


@pytest.mark.parametrize("layer", DECLARED, ids=lambda layer: layer.id)
def test_it_exports_the_declared_columns(world, technician, layer):
    import zipfile

    response = technician.client.get(f"/api/v1/exports/{layer.id}?format=csv")
    assert response.status_code == 200
    # A zip: the .csv with its .csvt (GDAL's column types) and .prj (EPSG:4326).
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    name = layer.id.replace("-", "_")
    assert sorted(archive.namelist()) == [f"{name}.csv", f"{name}.csvt", f"{name}.prj"]
    header, row = list(csv.reader(io.StringIO(archive.read(f"{name}.csv").decode())))[:2]
    assert header == ["WKT"] + [c.name for c in layer.export]  # GDAL's CSV writes the geometry first
    assert row[0].startswith("POINT" if layer is layers.PLOT_POINTS else "MULTIPOLYGON")
    # The API Feature's properties, in order (an area's id first, as its Feature carries it).
    exported = [c.name for c in layer.export]
    assert exported == (["id"] if layer is layers.PROTECTED_AREAS else []) + layer.property_names


@pytest.mark.parametrize("layer", DECLARED, ids=lambda layer: layer.id)
def test_it_tiles_the_declared_attributes(world, technician, layer):
    z = 10
    x, y = tile_of(-76.49, -8.19, z)
    response = technician.client.get(f"/tiles/{layer.id}/{z}/{x}/{y}.mvt")
    assert response.status_code == 200
    assert tile_keys(response.content) == {layer.id: [c.name for c in layer.tile]}
    fields = technician.client.get(f"/tiles/{layer.id}.json").json()["vector_layers"][0]["fields"]
    assert list(fields) == [c.name for c in layer.tile]


def test_the_declarations_name_each_thing_once():
    for layer in DECLARED:
        for names in (layer.property_names, [c.name for c in layer.tile], [c.name for c in layer.export]):
            assert len(names) == len(set(names)), layer.id
    assert list(layers.REGISTRY) == ["plots", "plot-points", "protected-areas", "districts", "nurseries", "concentration"]


@pytest.mark.parametrize("unit", [u.value for u in AreaUnit])
def test_the_trigger_converts_declared_areas_with_the_one_unit_table(make_plot, unit):
    assert set(AREA_UNIT_SQUARE_METRES) == {u.value for u in AreaUnit}
    plot = make_plot(declared_area=7.5, declared_area_unit=unit)
    props = json.loads(Plot.objects.values_list("feature_geojson", flat=True).get(pk=plot.pk))["properties"]
    expected = 7.5 * AREA_UNIT_SQUARE_METRES[unit] / HECTARE_M2
    assert props["declared_area_ha"] == pytest.approx(expected, rel=1e-12)
    plot.refresh_from_db()
    assert plot.declared_area_ha == pytest.approx(expected, rel=1e-12)


def test_the_plot_input_takes_the_declared_writable_properties():
    from api.serializers import PlotPropertiesSerializer

    inputs = [name for name in PlotPropertiesSerializer().fields if name not in ("valid_from", "repair")]
    assert inputs == layers.PLOTS.writable_names


def test_it_serves_the_declared_nursery_properties(world, org_a, technician):
    from datetime import date

    from django.contrib.gis.geos import Point

    from nurseries import services as nursery_services

    nursery_services.nursery_create(code="viv-reg", name="Vivero", kind="cacao_seedling",
                                    location=Point(-76.49, -8.19, srid=4326), established_on=date(2024, 1, 1),
                                    operator_organization=org_a, capacity_plants=5000)
    ogc = technician.client.get("/ogc/collections/nurseries/items").json()["features"]
    rest = technician.client.get("/api/v1/nurseries").json()["features"]
    assert list(ogc[0]["properties"]) == list(rest[0]["properties"]) == layers.NURSERIES.property_names
