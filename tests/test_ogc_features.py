"""OGC API – Features as QGIS and GDAL read it: one geometry type per collection,
the collections a role may read and no others, queryables (Part 3) and the
filters they name, and the page size clients take from the API definition.

Filters are checked against an independent computation: the latest verdict per
plot worked out in Python from the check results (newest checked_at, then
highest id), not through the view the server filters on."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.utils import timezone

from api import ogc
from plots.models import CheckResult, Plot, ProtectedArea
from tests.conftest import square

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_plot, make_producer, org_a, org_b):
    """Coop-a: three polygon plots (planted 2015, 2015, 2019) and one point plot;
    coop-b: one polygon plot. Verdicts written by hand, two at one timestamp."""
    ana, beto = make_producer(organization=org_a), make_producer(organization=org_b)
    plots = {
        "a-1": make_plot(producer=ana, code="a-1", geometry_value=square(-76.47, -8.19, 0.002), planting_year=2015),
        "a-2": make_plot(producer=ana, code="a-2", geometry_value=square(-76.46, -8.19, 0.002), planting_year=2015),
        "a-3": make_plot(producer=ana, code="a-3", geometry_value=square(-76.45, -8.19, 0.002), planting_year=2019),
        "a-pt": make_plot(producer=ana, code="a-pt", geometry_value={"type": "Point", "coordinates": [-76.44, -8.17]},
                          planting_year=2015),
        "b-1": make_plot(producer=beto, code="b-1", geometry_value=square(-76.40, -8.15, 0.002)),
    }
    now = timezone.now()
    kind = CheckResult.Kind.PROTECTED_AREA

    def verdict(code, outcome, at):
        CheckResult.objects.create(plot=plots[code], kind=kind, outcome=outcome, checked_at=at,
                                   method_version="test")

    verdict("a-1", "fail", now - timedelta(days=2))
    verdict("a-1", "pass", now - timedelta(days=1))  # newer: a-1 passes
    verdict("a-2", "pass", now)
    verdict("a-2", "fail", now)  # same moment, higher id: a-2 fails
    verdict("a-pt", "fail", now)
    # a-3 and b-1: no protected-area verdict at all
    ProtectedArea.objects.create(name="Bosque", category="national_park", official_code="B1", source="test",
                                 edition="2026-01",
                                 geom=MultiPolygon(Polygon.from_bbox((-76.5, -8.2, -76.48, -8.18)), srid=4326))
    return plots


def latest_outcomes(kind: str) -> dict[str, str]:
    """Plot code -> its latest outcome of ``kind``, worked out here in Python."""
    best: dict[str, CheckResult] = {}
    for r in CheckResult.objects.filter(kind=kind).select_related("plot"):
        held = best.get(r.plot.code)
        if held is None or (r.checked_at, r.id) > (held.checked_at, held.id):
            best[r.plot.code] = r
    return {code: r.outcome for code, r in best.items()}


def codes(client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return sorted(f["id"] for f in response.json()["features"])


def test_plots_and_point_plots_are_two_collections_of_one_geometry_type(world, technician):
    client = technician.client
    polygons = client.get("/ogc/collections/plots/items").json()["features"]
    points = client.get("/ogc/collections/plot-points/items").json()["features"]
    assert {f["geometry"]["type"] for f in polygons} == {"MultiPolygon"}
    assert {f["geometry"]["type"] for f in points} == {"Point"}
    assert sorted(f["id"] for f in polygons) == ["a-1", "a-2", "a-3", "b-1"]
    assert [f["id"] for f in points] == ["a-pt"]
    # Together they are the REST list, which stays mixed.
    rest = client.get("/api/v1/plots").json()["features"]
    assert sorted(f["id"] for f in rest) == sorted(f["id"] for f in polygons + points)
    # Same properties, in the same order.
    assert list(polygons[0]["properties"]) == list(points[0]["properties"])
    assert client.get("/ogc/collections/plot-points/items/a-pt").json()["geometry"]["coordinates"] == [-76.44, -8.17]
    assert client.get("/ogc/collections/plots/items/a-pt").status_code == 404
    # bbox on the point collection uses the point.
    assert codes(client, "/ogc/collections/plot-points/items?bbox=-76.45,-8.18,-76.43,-8.16") == ["a-pt"]
    assert codes(client, "/ogc/collections/plot-points/items?bbox=-76.48,-8.20,-76.46,-8.18") == []


# Which collections each role is shown: plots only to roles that read plot rows,
# nurseries to those who read nurseries, the concentration grid (aggregates) to all.
LISTED = {
    "admin": ["plots", "plot-points", "protected-areas", "districts", "nurseries", "concentration"],
    "technician": ["plots", "plot-points", "protected-areas", "districts", "nurseries", "concentration"],
    "cooperative": ["plots", "plot-points", "protected-areas", "districts", "nurseries", "concentration"],
    "buyer": ["protected-areas", "districts", "nurseries", "concentration"],
    "investor": ["protected-areas", "districts", "concentration"],
}


@pytest.mark.parametrize("role", list(LISTED))
def test_a_role_is_listed_only_the_collections_it_may_read(role, persona, org_a, world):
    client = persona(role, org_a if role == "cooperative" else None).client
    listed = [c["id"] for c in client.get("/ogc/collections").json()["collections"]]
    assert listed == LISTED[role]
    # Every listed collection's items answer (QGIS opens each as a valid layer).
    for collection in listed:
        assert client.get(f"/ogc/collections/{collection}/items?limit=1").status_code == 200, collection


def test_the_nurseries_collection_is_not_offered_to_an_investor(world, investor):
    assert investor.client.get("/ogc/collections/nurseries/items").status_code == 403


def test_queryables_are_a_json_schema_per_collection(world, technician):
    client = technician.client
    for collection_id, collection in ogc.COLLECTIONS.items():
        response = client.get(f"/ogc/collections/{collection_id}/queryables")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/schema+json"
        doc = response.json()
        assert doc["type"] == "object" and doc["$schema"].startswith("https://json-schema.org/")
        assert doc["$id"].endswith(f"/ogc/collections/{collection_id}/queryables")
        assert list(doc["properties"]) == [q.name for q in collection.queryables]
        # The collection links to it with the OGC relation type.
        links = client.get(f"/ogc/collections/{collection_id}").json()["links"]
        assert any(link["rel"] == ogc.QUERYABLES_REL and link["href"] == doc["$id"] for link in links)
    plots = client.get("/ogc/collections/plots/queryables").json()["properties"]
    assert {"organization", "district", "protected", "deforestation", "double_claim"} <= set(plots)
    assert plots["protected"]["enum"] == ["pass", "warning", "buffer_zone", "fail", "insufficient_data",
                                          "not_checked"]
    assert plots["planting_year"]["type"] == "integer"
    conformance = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters" in conformance


def test_items_filter_by_organization_year_and_latest_verdict(world, technician):
    client = technician.client
    assert codes(client, "/ogc/collections/plots/items?organization=coop-a") == ["a-1", "a-2", "a-3"]
    assert codes(client, "/ogc/collections/plots/items?organization=coop-a&planting_year=2015") == ["a-1", "a-2"]
    assert codes(client, "/ogc/collections/plot-points/items?planting_year=2015") == ["a-pt"]
    outcomes = latest_outcomes(CheckResult.Kind.PROTECTED_AREA)
    polygon_codes = ["a-1", "a-2", "a-3", "b-1"]
    for value in ("pass", "fail", "warning"):
        expected = sorted(c for c in polygon_codes if outcomes.get(c) == value)
        assert codes(client, f"/ogc/collections/plots/items?protected={value}") == expected, value
    assert codes(client, "/ogc/collections/plots/items?protected=not_checked") == sorted(
        c for c in polygon_codes if c not in outcomes)
    # The hand-worked answer, so the Python reference is itself pinned.
    assert outcomes == {"a-1": "pass", "a-2": "fail", "a-pt": "fail"}
    # Filters and paging travel together in the next link.
    page = client.get("/ogc/collections/plots/items?organization=coop-a&limit=2").json()
    assert page["numberMatched"] == 3
    next_link = next(link["href"] for link in page["links"] if link["rel"] == "next")
    assert "organization=coop-a" in next_link and "offset=2" in next_link


def test_a_cooperative_filter_never_widens_its_scope(world, owner):
    assert codes(owner.client, "/ogc/collections/plots/items?organization=coop-b") == []
    assert codes(owner.client, "/ogc/collections/plots/items?organization=coop-a") == ["a-1", "a-2", "a-3"]


def test_reference_layers_filter_on_their_queryables(world, technician):
    client = technician.client
    assert codes(client, "/ogc/collections/protected-areas/items?category=national_park") != []
    assert codes(client, "/ogc/collections/protected-areas/items?official_code=NOPE") == []


@pytest.mark.parametrize("query", [
    "protected=bogus", "planting_year=abc", "planting_year=99999999999", "survey_method=drone",
    "colour=red", "category=national_park",  # a queryable of another collection
])
def test_a_bad_filter_is_a_clear_400(world, technician, query):
    response = technician.client.get(f"/ogc/collections/plots/items?{query}")
    assert response.status_code == 400
    name = query.split("=")[0]
    assert name in response.json()["error"]["message"]


def test_filter_values_are_encoded_in_links(world, technician):
    page = technician.client.get("/ogc/collections/plots/items?organization=a%26b%3Dc&limit=1").json()
    self_link = next(link["href"] for link in page["links"] if link["rel"] == "self")
    assert "organization=a%26b%3Dc" in self_link


def test_the_api_definition_gives_clients_their_page_size_and_filters(world, anonymous):
    doc = json.loads(anonymous.get("/ogc/api").content)
    items = doc["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
    limit = next(p for p in items if p["name"] == "limit")["schema"]
    assert limit["default"] == ogc.DEFAULT_LIMIT == 1000 and limit["maximum"] == ogc.MAX_LIMIT
    plots = [p["name"] for p in doc["paths"]["/collections/plots/items"]["get"]["parameters"]]
    assert {"limit", "bbox", "organization", "protected"} <= set(plots)
    assert {"basic", "bearer", "token"} == set(doc["components"]["securitySchemes"])
    assert doc["components"]["securitySchemes"]["basic"] == {
        "type": "http", "scheme": "basic", "description": doc["components"]["securitySchemes"]["basic"]["description"]}


def test_a_default_page_holds_a_thousand_features(world, technician, make_producer, org_a):
    producer = make_producer(organization=org_a)
    # Rows straight in (the database trigger still builds each Feature).
    Plot.objects.bulk_create([
        Plot(code=f"bulk-{i}", producer=producer, organization=org_a,
             boundary=MultiPolygon(Polygon.from_bbox((-76.3 + (i % 40) * 0.003, -8.1 + (i // 40) * 0.003,
                                                      -76.299 + (i % 40) * 0.003, -8.099 + (i // 40) * 0.003)),
                                   srid=4326))
        for i in range(1001)])
    page = technician.client.get("/ogc/collections/plots/items").json()
    assert page["numberMatched"] == 1005 and page["numberReturned"] == 1000
    assert any(link["rel"] == "next" for link in page["links"])


READER = """
import json, sys
import pyogrio
url, user, token = sys.argv[1:4]
pyogrio.set_gdal_config_options({"GDAL_HTTP_USERPWD": f"{user}:{token}", "GDAL_HTTP_AUTH": "BASIC"})
plots = pyogrio.read_dataframe(url, layer="plots")
points = pyogrio.read_dataframe(url, layer="plot-points")
print(json.dumps({"plots": sorted(plots["code"]), "plot_types": sorted(set(plots.geometry.geom_type)),
                  "points": list(points["code"]),
                  "point_type": pyogrio.read_info(url, layer="plot-points")["geometry_type"]}))
"""


@pytest.mark.django_db(transaction=True)
def test_gdal_reads_every_plot_without_options_in_pages_from_the_api_definition(live_server, world, technician,
                                                                               monkeypatch):
    """GDAL 3.8+ (pyogrio's) takes its page size from the API definition's limit:
    with only a user name and token (HTTP Basic), all plots come in one page here,
    each layer typed as QGIS and GDAL need it. (GDAL runs in a child process: it
    holds the interpreter while it reads, and the live server is a thread here.)"""
    import subprocess
    import sys

    from rest_framework.authtoken.models import Token

    pages: list[str] = []
    original = ogc.ItemsView.get

    def counted(self, request, collection_id):
        pages.append(request.GET.urlencode())
        return original(self, request, collection_id)

    monkeypatch.setattr(ogc.ItemsView, "get", counted)
    token = Token.objects.get(user=technician.user).key
    done = subprocess.run([sys.executable, "-c", READER, f"OAPIF:{live_server.url}/ogc", technician.user.username,
                           token], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout)
    assert read["plots"] == ["a-1", "a-2", "a-3", "b-1"] and read["plot_types"] == ["MultiPolygon"]
    assert read["points"] == ["a-pt"] and read["point_type"] == "Point"
    # GDAL sniffs each layer's schema from a first page of 20; every page it reads
    # features from asks for the API definition's page size (and names the one CRS
    # served): here one page per layer.
    reads = [q for q in pages if "limit=20" not in q.split("&")]
    assert len(reads) == 2 and all("limit=1000" in q and "crs=" in q for q in reads), pages


@pytest.mark.django_db(transaction=True)
def test_gdal_filters_a_collection_by_verdict_as_the_readme_says(live_server, world, technician):
    """README: ``ogr2ogr … "OAPIF:$BASE/ogc/collections/plots?protected=fail"`` with
    the user name and token as GDAL's Basic credentials (the system's GDAL)."""
    import subprocess

    from rest_framework.authtoken.models import Token

    token = Token.objects.get(user=technician.user).key
    done = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-q", "--config", "GDAL_HTTP_USERPWD", f"{technician.user.username}:{token}",
         "-oo", "PAGE_SIZE=1000", f"OAPIF:{live_server.url}/ogc/collections/plots?protected=fail"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    read = sorted(line.split("=", 1)[1].strip() for line in done.stdout.splitlines()
                  if line.strip().startswith("code (String)"))
    outcomes = latest_outcomes(CheckResult.Kind.PROTECTED_AREA)
    assert read == sorted(c for c in ("a-1", "a-2", "a-3", "b-1") if outcomes.get(c) == "fail") == ["a-2"]
