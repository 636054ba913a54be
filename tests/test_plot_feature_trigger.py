"""The Feature text kept by the database trigger (plots/migrations/0003) stays in
step with every write path: services, raw SQL updates, and renames elsewhere."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from pyproj import Geod

from plots import services
from plots.models import AdminArea, Organization, Plot, Producer
from tests.conftest import assert_rfc7946, square

pytestmark = pytest.mark.django_db


def feature(plot) -> dict:
    doc = json.loads(Plot.objects.values_list("feature_geojson", flat=True).get(pk=plot.pk))
    assert_rfc7946(doc)
    return doc


@pytest.mark.parametrize("unit", ["ha", "m2", "yugada", "topo"])
def test_the_feature_agrees_with_the_generated_columns(make_plot, unit):
    g = square(-76.2, -9.1, 0.004)
    plot = make_plot(geometry_value=g, declared_area=7.5, declared_area_unit=unit)
    plot.refresh_from_db()
    props = feature(plot)["properties"]
    assert props["declared_area_ha"] == pytest.approx(plot.declared_area_ha, rel=1e-12)
    assert props["area_ha"] == pytest.approx(plot.area_ha, rel=1e-12)
    lons, lats = zip(*g["coordinates"][0])
    assert props["area_ha"] == pytest.approx(abs(Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)[0]) / 1e4,
                                             rel=1e-9)


def test_a_raw_sql_update_refreshes_the_feature(make_plot):
    plot = make_plot()
    with connection.cursor() as cur:
        cur.execute("UPDATE plots_plot SET tenure = 'titled', boundary = ST_Multi(ST_GeomFromText("
                    "'POLYGON((-76 -8, -76 -7.99, -75.99 -7.99, -75.99 -8, -76 -8))', 4326)) WHERE id = %s", [plot.pk])
    doc = feature(plot)  # the clockwise ring written above comes out counter-clockwise
    assert doc["properties"]["tenure"] == "titled" and doc["geometry"]["coordinates"][0][0][0] == [-76, -8]


def test_renames_elsewhere_reach_the_feature(make_plot):
    plot = make_plot()
    Producer.objects.filter(pk=plot.producer_id).update(name="Rosa Panaifo")
    Organization.objects.filter(pk=plot.organization_id).update(code="coop-renamed")
    area = AdminArea.objects.create(ubigeo="221001", name="TOCACHE", level="district", edition=2007)
    Plot.objects.filter(pk=plot.pk).update(district=area)
    AdminArea.objects.filter(pk=area.pk).update(name="TOCACHE NUEVO")
    props = feature(plot)["properties"]
    assert (props["producer_name"], props["organization"], props["district_name"]) == (
        "Rosa Panaifo", "coop-renamed", "TOCACHE NUEVO")


def test_a_new_boundary_reaches_the_feature(make_plot):
    plot = make_plot(geometry_value=square(-76.5, -8.2, 0.001))
    services.plot_update_boundary(plot=plot, geometry_value=square(-76.5, -8.2, 0.003))
    assert feature(plot)["geometry"]["coordinates"][0][0][2] == [-76.497, -8.197]
