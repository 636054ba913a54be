"""/api/v1/producers, /organizations, /admin-areas, /protected-areas."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import GEOSGeometry

from plots.models import AdminArea, ProtectedArea
from tests.conftest import geojson

pytestmark = pytest.mark.django_db


@pytest.fixture
def households(make_producer, org_a, org_b):
    return (make_producer(organization=org_a, code="ana", gender="female"),
            make_producer(organization=org_b, code="beto", gender="male"))


def by_code(response):
    assert response.status_code == 200, response.content
    return {p["code"]: p for p in response.json()["results"]}


def test_personal_data_only_for_staff_and_the_own_cooperative(households, technician, admin, owner, other_coop):
    for staff in (technician, admin):
        seen = by_code(staff.client.get("/api/v1/producers"))
        assert set(seen) == {"ana", "beto"} and seen["ana"]["national_id"] and seen["beto"]["phone"]
    mine = by_code(owner.client.get("/api/v1/producers"))
    assert set(mine) == {"ana"} and mine["ana"]["national_id"] and mine["ana"]["phone"]
    assert set(by_code(other_coop.client.get("/api/v1/producers"))) == {"beto"}
    assert other_coop.client.get("/api/v1/producers/ana").status_code == 404


def test_buyers_and_investors_see_no_producers_or_organizations(households, buyer, investor):
    for persona in (buyer, investor):
        assert by_code(persona.client.get("/api/v1/producers")) == {}
        assert persona.client.get("/api/v1/organizations").json()["results"] == []
        assert persona.client.get("/api/v1/producers/ana").status_code == 404


def test_producer_filters_and_counts(households, technician, make_plot):
    make_plot(producer=households[0])
    seen = by_code(technician.client.get("/api/v1/producers", {"gender": "female"}))
    assert set(seen) == {"ana"} and seen["ana"]["plots"] == 1
    assert set(by_code(technician.client.get("/api/v1/producers", {"organization": "coop-b"}))) == {"beto"}
    assert technician.client.get("/api/v1/producers", {"gender": "x"}).status_code == 400


def test_create_producer(technician, owner, org_a, org_b):
    body = {"code": "carla", "name": "Carla Tuanama", "gender": "female", "organization": "coop-a",
            "national_id": "45678912", "phone": "987654321"}
    r = owner.client.post("/api/v1/producers", body, format="json")
    assert r.status_code == 201 and r.json()["national_id"] == "45678912"
    r = owner.client.post("/api/v1/producers", {**body, "code": "dora", "organization": "coop-b"}, format="json")
    assert r.status_code == 403
    r = technician.client.post("/api/v1/producers", {**body, "code": "ed", "organization": "nope"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "organization"
    r = technician.client.post("/api/v1/producers", {**body}, format="json")  # duplicate code
    assert r.status_code == 400 and "code" in [d["field"] for d in r.json()["error"]["details"]]


def test_organizations_with_counts(households, technician, owner):
    orgs = {o["code"]: o for o in technician.client.get("/api/v1/organizations").json()["results"]}
    assert orgs["coop-a"]["producers"] == 1 and orgs["coop-b"]["plots"] == 0
    assert [o["code"] for o in owner.client.get("/api/v1/organizations").json()["results"]] == ["coop-a"]
    assert technician.client.get("/api/v1/organizations/coop-a").json()["producers"] == 1


@pytest.fixture
def areas(db):
    dept = AdminArea.objects.create(ubigeo="10", name="HUANUCO", level="department", edition=2007)
    AdminArea.objects.create(
        ubigeo="100601", name="RUPA-RUPA", level="district", edition=2007, parent=dept,
        geom=GEOSGeometry("SRID=4326;MULTIPOLYGON(((-76.1 -9.4,-75.9 -9.4,-75.9 -9.2,-76.1 -9.2,-76.1 -9.4)))"))
    # Clockwise on purpose: output must still be counter-clockwise.
    ProtectedArea.objects.create(
        name="PN Tingo María", category="national_park", official_code="PNTM", source="test", edition="1",
        geom=GEOSGeometry("SRID=4326;MULTIPOLYGON(((-76.0 -9.4,-76.0 -9.3,-75.95 -9.3,-75.95 -9.4,-76.0 -9.4)))"))


def test_reference_layers_are_geojson_for_every_signed_in_role(areas, buyer, investor, technician):
    for persona in (buyer, investor, technician):
        districts = geojson(persona.client.get("/api/v1/admin-areas", {"level": "district"}))
        assert [f["id"] for f in districts["features"]] == ["100601-2007"]
        assert districts["features"][0]["properties"]["parent"] == "10"
        pas = geojson(persona.client.get("/api/v1/protected-areas"))
        assert pas["features"][0]["properties"]["category"] == "national_park"
    assert geojson(technician.client.get("/api/v1/protected-areas", {"bbox": "-70,-5,-69,-4"}))["features"] == []
    assert technician.client.get("/api/v1/admin-areas", {"level": "county"}).status_code == 400
    assert technician.client.get("/api/v1/admin-areas", {"edition": "old"}).status_code == 400


def test_the_openapi_schema_lists_the_endpoints(anonymous):
    r = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = r.json()["paths"]
    for path in ("/api/v1/plots", "/api/v1/plots/{code}", "/api/v1/plots/{code}/boundaries", "/api/v1/producers",
                 "/api/v1/organizations", "/api/v1/admin-areas", "/api/v1/protected-areas"):
        assert path in paths, path
    assert "bbox" in {p["name"] for p in paths["/api/v1/plots"]["get"]["parameters"]}
