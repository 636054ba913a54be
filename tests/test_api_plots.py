"""/api/v1/plots per persona: owner cooperative, other cooperative, technician,
buyer/investor, anonymous; RFC 7946 output; bad payloads get a 400 and write nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pyproj import Geod

from plots import services
from plots.models import Plot, PlotBoundary
from tests.conftest import geojson, square

pytestmark = pytest.mark.django_db
URL = "/api/v1/plots"


@pytest.fixture
def two_plots(make_plot, make_producer, org_a, org_b):
    mine = make_plot(code="mine-1", producer=make_producer(organization=org_a),
                     geometry_value=square(-76.51, -8.19, 0.002))
    theirs = make_plot(code="theirs-1", producer=make_producer(organization=org_b),
                       geometry_value=square(-75.99, -9.30, 0.002))
    return mine, theirs


def codes(doc):
    return sorted(f["properties"]["code"] for f in doc["features"])


def test_it_lists_plots_as_geojson_per_role(two_plots, technician, admin, owner, other_coop, buyer, investor):
    assert codes(geojson(technician.client.get(URL))) == ["mine-1", "theirs-1"]
    assert codes(geojson(admin.client.get(URL))) == ["mine-1", "theirs-1"]
    assert codes(geojson(owner.client.get(URL))) == ["mine-1"]
    assert codes(geojson(other_coop.client.get(URL))) == ["theirs-1"]
    assert codes(geojson(buyer.client.get(URL))) == []
    assert codes(geojson(investor.client.get(URL))) == []


def test_anonymous_gets_401_but_the_docs_are_open(anonymous, two_plots):
    r = anonymous.get(URL)
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    assert "Token" in r["WWW-Authenticate"]
    assert anonymous.get("/api/schema/").status_code == 200
    assert anonymous.get("/api/docs/").status_code == 200
    for path in ("/api/v1/producers", "/api/v1/organizations", "/api/v1/admin-areas", "/api/v1/protected-areas",
                 "/api/v1/plots/mine-1", "/api/v1/plots/mine-1/boundaries"):
        assert anonymous.get(path).status_code == 401, path


def test_the_feature_carries_the_geometry_and_geodesic_area(two_plots, technician):
    doc = geojson(technician.client.get(f"{URL}/mine-1"))
    ring = doc["geometry"]["coordinates"][0][0]
    assert doc["geometry"]["type"] == "MultiPolygon" and ring[0] == [-76.51, -8.19]  # lon, lat order
    lons, lats = zip(*ring)
    expected = abs(Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)[0]) / 10_000
    assert doc["properties"]["area_ha"] == pytest.approx(expected, rel=1e-9)
    assert doc["id"] == "mine-1" and doc["properties"]["organization"] == "coop-a"


def test_a_clockwise_input_comes_out_counter_clockwise(technician, make_producer):
    producer = make_producer()
    cw = {"type": "Polygon", "coordinates": [[[-76.5, -8.2], [-76.5, -8.199], [-76.499, -8.199], [-76.499, -8.2],
                                              [-76.5, -8.2]]]}
    r = technician.client.post(URL, {"type": "Feature", "geometry": cw, "properties": {
        "code": "cw-1", "producer": producer.code}}, format="json")
    assert r.status_code == 201
    geojson(r)  # asserts CCW exterior
    geojson(technician.client.get(URL))


def test_bbox_district_region_organization_producer_filters(two_plots, technician):
    mine, theirs = two_plots
    get = lambda q: codes(geojson(technician.client.get(URL, q)))  # noqa: E731
    assert get({"bbox": "-76.6,-8.3,-76.4,-8.1"}) == ["mine-1"]
    assert get({"bbox": "-76.0,-9.31,-75.98,-9.29"}) == ["theirs-1"]
    assert get({"bbox": "-70,-5,-69,-4"}) == []
    assert get({"organization": "coop-b"}) == ["theirs-1"]
    assert get({"producer": mine.producer.code}) == ["mine-1"]
    from plots.models import AdminArea
    from django.contrib.gis.geos import GEOSGeometry
    dept = AdminArea.objects.create(ubigeo="22", name="SAN MARTIN", level="department", edition=2007)
    prov = AdminArea.objects.create(ubigeo="2210", name="TOCACHE", level="province", edition=2007, parent=dept)
    district = AdminArea.objects.create(
        ubigeo="221001", name="TOCACHE", level="district", edition=2007, parent=prov,
        geom=GEOSGeometry("SRID=4326;MULTIPOLYGON(((-76.7 -8.3,-76.3 -8.3,-76.3 -8.0,-76.7 -8.0,-76.7 -8.3)))"))
    services.plots_assign_districts()
    assert get({"district": "221001"}) == ["mine-1"]
    assert get({"region": "22"}) == ["mine-1"]
    assert get({"region": "San Martín"}) == ["mine-1"]
    assert get({"district": "100601"}) == []
    doc = geojson(technician.client.get(f"{URL}/mine-1"))
    assert doc["properties"]["district"] == district.ubigeo


def test_updated_since_and_status(two_plots, technician):
    mine, theirs = two_plots
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert codes(geojson(technician.client.get(URL, {"updated_since": future}))) == []
    assert codes(geojson(technician.client.get(URL, {"updated_since": "2020-01-01"}))) == ["mine-1", "theirs-1"]
    services.plot_retire(plot=theirs, reason="abandoned")
    assert codes(geojson(technician.client.get(URL))) == ["mine-1"]
    assert codes(geojson(technician.client.get(URL, {"status": "retired"}))) == ["theirs-1"]
    assert codes(geojson(technician.client.get(URL, {"status": "all"}))) == ["mine-1", "theirs-1"]


def test_paging_follows_next_links_with_a_fixed_number_of_queries(technician, make_plot, make_producer):
    producer = make_producer()
    for i in range(7):
        make_plot(producer=producer, code=f"page-{i}", geometry_value=square(-76 + i * 0.01, -8, 0.001))
    seen, url, pages = [], f"{URL}?limit=3", 0
    while url:
        with CaptureQueriesContext(connection) as queries:
            doc = geojson(technician.client.get(url))
        assert len(queries) <= 6, [q["sql"][:80] for q in queries]  # auth + token + one feature query
        seen += codes(doc)
        assert doc["numberReturned"] == len(doc["features"]) <= 3
        url, pages = doc["next"], pages + 1
    assert sorted(seen) == [f"page-{i}" for i in range(7)] and pages == 3


@pytest.mark.parametrize("query,field", [
    ({"bbox": "1,2,3"}, "bbox"), ({"bbox": "-76,-8,-77,-7"}, "bbox"), ({"bbox": "a,b,c,d"}, "bbox"),
    ({"bbox": "0,0,1,95"}, "bbox"), ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"),
    ({"limit": "100000000"}, "limit"), ({"cursor": "%%%"}, "cursor"), ({"updated_since": "yesterday"}, "updated_since"),
    ({"status": "gone"}, "status"), ({"region": "Atlantis"}, "region"), ({"distrct": "221001"}, "distrct"),
])
def test_bad_query_strings_are_a_400_naming_the_parameter(technician, query, field):
    r = technician.client.get(URL, query)
    assert r.status_code == 400
    body = r.json()["error"]
    assert body["status"] == 400 and body["message"] and field in [d["field"] for d in body["details"]]


def test_detail_as_of_and_boundary_history(technician, make_plot):
    plot = make_plot(code="hist-1", geometry_value=square(-76.5, -8.2, 0.001), valid_from=date(2020, 5, 1))
    services.plot_update_boundary(plot=plot, geometry_value=square(-76.5, -8.2, 0.002), valid_from=date(2023, 5, 1))
    now = geojson(technician.client.get(f"{URL}/hist-1"))
    then = geojson(technician.client.get(f"{URL}/hist-1", {"as_of": "2021-01-01"}))
    assert then["properties"]["as_of"] == "2021-01-01"
    assert then["properties"]["boundary"]["valid_to"] == "2023-05-01"
    assert now["properties"]["area_ha"] == pytest.approx(4 * then["properties"]["area_ha"], rel=1e-3)
    assert then["geometry"]["coordinates"][0][0][2] == [-76.499, -8.199]
    r = technician.client.get(f"{URL}/hist-1", {"as_of": "2019-01-01"})
    assert r.status_code == 404 and "no boundary on 2019-01-01" in r.json()["error"]["message"]
    assert technician.client.get(f"{URL}/hist-1", {"as_of": "01/02/2021"}).status_code == 400
    history = geojson(technician.client.get(f"{URL}/hist-1/boundaries"))
    assert [f["properties"]["valid_from"] for f in history["features"]] == ["2020-05-01", "2023-05-01"]
    assert [f["properties"]["current"] for f in history["features"]] == [False, True]


def feature(code, producer, geometry, **props):
    return {"type": "Feature", "geometry": geometry, "properties": {"code": code, "producer": producer, **props}}


def test_create_returns_201_with_location(technician, make_producer):
    p = make_producer()
    r = technician.client.post(URL, feature("new-1", p.code, square(-76.5, -8.2, 0.002), declared_area=2,
                                            declared_area_unit="yugada", planting_year=2019,
                                            shade_species=["Bolaina"]), format="json")
    assert r.status_code == 201, r.content
    assert r["Location"].endswith("/api/v1/plots/new-1")
    doc = geojson(r)
    assert doc["properties"]["declared_area_ha"] == pytest.approx(0.54)
    assert Plot.objects.get(code="new-1").boundaries.count() == 1


def test_a_cooperative_creates_only_for_its_own_producers(owner, org_a, org_b, make_producer):
    mine, theirs = make_producer(organization=org_a), make_producer(organization=org_b)
    assert owner.client.post(URL, feature("c-1", mine.code, square(-76, -8)), format="json").status_code == 201
    r = owner.client.post(URL, feature("c-2", theirs.code, square(-76, -8)), format="json")
    # The answer for a producer that does not exist (a 403 would confirm it does).
    assert r.status_code == 400 and not Plot.objects.filter(code="c-2").exists()
    assert r.json()["error"]["message"] == "properties.producer names no known producer"


@pytest.mark.parametrize("persona_name", ["buyer", "investor"])
def test_buyers_and_investors_cannot_write(request, persona_name, make_producer):
    client = request.getfixturevalue(persona_name).client
    r = client.post(URL, feature("b-1", make_producer().code, square(-76, -8)), format="json")
    assert r.status_code == 403 and not Plot.objects.exists()


BAD_BODIES = [
    ("not json", "{bad", "parse_error"),
    ("not a feature", {"type": "Polygon"}, "validation_failed"),
    ("self-crossing", feature("bad-1", "PRODUCER", {"type": "Polygon", "coordinates": [
        [[-76, -8], [-75.99, -7.99], [-75.99, -8], [-76, -7.99], [-76, -8]]]}), "invalid_geometry"),
    ("unknown SRID", feature("bad-2", "PRODUCER", "SRID=123456;POLYGON((0 0,1 0,1 1,0 0))"), "unknown_crs"),
    ("out of range", feature("bad-3", "PRODUCER", square(-76, 95)), "out_of_range"),
    ("open ring", feature("bad-4", "PRODUCER", {"type": "Polygon", "coordinates": [
        [[-76, -8], [-75.99, -8], [-75.99, -7.99], [-76, -7.99]]]}), "open_ring"),
    ("line", feature("bad-5", "PRODUCER", {"type": "LineString", "coordinates": [[-76, -8], [-75.9, -8]]}),
     "wrong_type"),
    ("no geometry", feature("bad-6", "PRODUCER", None), "validation_failed"),
    ("unknown property", feature("bad-7", "PRODUCER", square(-76, -8), colour="red"), "invalid"),
    ("bad unit", feature("bad-8", "PRODUCER", square(-76, -8), declared_area_unit="acre"), "invalid"),
    ("negative area", feature("bad-9", "PRODUCER", square(-76, -8), declared_area=-1), "invalid"),
    ("unknown producer", feature("bad-10", "nobody", square(-76, -8)), "validation_failed"),
    ("array body", [1, 2], "validation_failed"),
    ("deep nesting", "[" * 100_000 + "]" * 100_000, "parse_error"),
    ("empty geometry", feature("bad-12", "PRODUCER", "POLYGON EMPTY"), "empty"),
    ("geocentric CRS", feature("bad-13", "PRODUCER", "SRID=4978;POINT(1 2)"), "unknown_crs"),
    ("NUL in a code", feature("bad\u0000", "PRODUCER", square(-76, -8)), "invalid"),
    ("infinite number", feature("bad-11", "PRODUCER", {"type": "Point", "coordinates": [1e400, 0]}), "parse_error"),
]


@pytest.mark.parametrize("label,body,code", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_payloads_get_a_400_with_a_reason_and_write_nothing(technician, make_producer, label, body, code):
    producer = make_producer(code="PRODUCER".lower())
    if isinstance(body, dict) and body.get("properties", {}).get("producer") == "PRODUCER":
        body["properties"]["producer"] = producer.code
    payload = body if isinstance(body, str) else json.dumps(body)
    r = technician.client.post(URL, payload, content_type="application/json")
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] == code and error["message"]
    assert not Plot.objects.exists() and not PlotBoundary.objects.exists()


def test_nul_characters_in_query_strings_are_a_400(technician):
    r = technician.client.get(URL, {"district": "\x00"})
    assert r.status_code == 400 and "NUL" in r.json()["error"]["message"]


def test_an_oversized_body_is_a_413(technician, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    r = technician.client.post(URL, json.dumps(feature("big", "x", square(-76, -8), shade_species=["x" * 50] * 30)),
                               content_type="application/json")
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_a_duplicate_code_is_refused(technician, make_plot):
    plot = make_plot(code="dup-1")
    r = technician.client.post(URL, feature("dup-1", plot.producer.code, square(-70, -8)), format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "duplicate"


def test_update_supersedes_the_boundary_and_changes_attributes(owner, org_a, make_plot, make_producer):
    plot = make_plot(code="u-1", producer=make_producer(organization=org_a), valid_from=date(2022, 1, 1))
    r = owner.client.patch(f"{URL}/u-1", {"type": "Feature", "geometry": square(-76.3, -8.3, 0.003),
                                          "properties": {"tenure": "titled", "valid_from": "2025-02-01"}},
                           format="json")
    assert r.status_code == 200, r.content
    doc = geojson(r)
    assert doc["properties"]["tenure"] == "titled" and doc["properties"]["boundary"]["valid_from"] == "2025-02-01"
    assert plot.boundaries.count() == 2
    r = owner.client.patch(f"{URL}/u-1", {"type": "Feature", "geometry": None,
                                          "properties": {"planting_year": 2018}}, format="json")
    assert r.status_code == 200 and plot.boundaries.count() == 2


def test_other_cooperative_cannot_see_or_change_the_plot(other_coop, buyer, org_a, make_plot, make_producer):
    make_plot(code="o-1", producer=make_producer(organization=org_a))
    for client in (other_coop.client, buyer.client):
        assert client.get(f"{URL}/o-1").status_code == 404
        r = client.patch(f"{URL}/o-1", {"type": "Feature", "properties": {"tenure": "titled"}}, format="json")
        assert r.status_code == 404
        assert client.delete(f"{URL}/o-1").status_code == 404
    assert Plot.objects.get(code="o-1").tenure == "unknown"


def test_a_failed_update_writes_nothing(technician, make_plot):
    plot = make_plot(code="f-1")
    before = Plot.objects.get(pk=plot.pk).boundary.wkt
    bowtie = {"type": "Polygon", "coordinates": [[[-76, -8], [-75.99, -7.99], [-75.99, -8], [-76, -7.99], [-76, -8]]]}
    r = technician.client.patch(f"{URL}/f-1", {"type": "Feature", "geometry": bowtie,
                                               "properties": {"tenure": "titled"}}, format="json")
    assert r.status_code == 400 and "crosses itself" in r.json()["error"]["message"]
    plot.refresh_from_db()
    assert plot.boundary.wkt == before and plot.tenure == "unknown" and plot.boundaries.count() == 1


def test_delete_retires_and_keeps_history(technician, make_plot):
    make_plot(code="d-1")
    r = technician.client.delete(f"{URL}/d-1?reason=merged+with+d-2")
    assert r.status_code == 200 and geojson(r)["properties"]["status"] == "retired"
    assert Plot.objects.get(code="d-1").retired_reason == "merged with d-2"
    assert technician.client.delete(f"{URL}/d-1").status_code == 409


def test_unknown_urls_and_methods_get_the_json_error_shape(technician):
    r = technician.client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = technician.client.put(URL, {}, format="json")
    assert r.status_code == 405 and r.json()["error"]["status"] == 405
    r = technician.client.post(URL, "<xml/>", content_type="application/xml")
    assert r.status_code == 415 and r.json()["error"]["message"]


def test_a_trailing_slash_reaches_the_same_view(two_plots, technician):
    assert codes(geojson(technician.client.get(URL + "/"))) == ["mine-1", "theirs-1"]
    assert geojson(technician.client.get(f"{URL}/mine-1/"))["id"] == "mine-1"


def test_survey_fields_apply_even_when_the_boundary_is_unchanged(technician, make_plot):
    g = square(-76.2, -8.4, 0.001)
    plot = make_plot(code="s-1", geometry_value=g)
    r = technician.client.patch(f"{URL}/s-1", {"type": "Feature", "geometry": g, "properties": {
        "survey_method": "gps_walked", "survey_date": "2025-03-04", "gps_accuracy_m": 3.5}}, format="json")
    assert r.status_code == 200
    props = geojson(r)["properties"]
    assert (props["survey_method"], props["survey_date"], props["gps_accuracy_m"]) == ("gps_walked", "2025-03-04", 3.5)
    assert plot.boundaries.count() == 1


def test_as_of_describes_the_survey_in_force_then(technician, make_plot):
    plot = make_plot(code="a-1", geometry_value=square(-76.2, -8.4, 0.001), survey_method="mobile_app",
                     survey_date=date(2020, 2, 2), gps_accuracy_m=9.0)
    services.plot_update_boundary(plot=plot, geometry_value=square(-76.2, -8.4, 0.002), survey_method="gps_walked",
                                  survey_date=date(2024, 4, 4), gps_accuracy_m=2.0)
    then = geojson(technician.client.get(f"{URL}/a-1", {"as_of": "2021-01-01"}))["properties"]
    assert (then["survey_method"], then["survey_date"], then["gps_accuracy_m"]) == ("mobile_app", "2020-02-02", 9.0)
    now = geojson(technician.client.get(f"{URL}/a-1"))["properties"]
    assert (now["survey_method"], now["survey_date"], now["gps_accuracy_m"]) == ("gps_walked", "2024-04-04", 2.0)


def test_a_retired_plot_shows_why_and_refuses_changes(technician, make_plot):
    make_plot(code="r-1")
    technician.client.delete(f"{URL}/r-1?reason=sold")
    props = geojson(technician.client.get(f"{URL}/r-1"))["properties"]
    assert props["retired_reason"] == "sold" and props["retired_at"]
    r = technician.client.patch(f"{URL}/r-1", {"type": "Feature", "properties": {"tenure": "titled"}}, format="json")
    assert r.status_code == 409 and "retired" in r.json()["error"]["message"]


def test_roles_without_write_access_learn_nothing_about_codes(buyer, make_plot):
    plot = make_plot(code="known-1")
    r = buyer.client.post(URL, feature("known-1", plot.producer.code, square(-76, -8)), format="json")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_the_default_page_never_exceeds_the_maximum(technician, make_plot, settings):
    settings.CHACRA_PAGE_SIZE, settings.CHACRA_MAX_PAGE_SIZE = 50, 2
    for i in range(3):
        make_plot(code=f"m-{i}")
    doc = geojson(technician.client.get(URL))
    assert doc["numberReturned"] == 2 and doc["next"]
