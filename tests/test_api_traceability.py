"""/api/v1/lots…: roles, origin GeoJSON, mass balance, EUDR download, imports."""

from __future__ import annotations

import base64
import json
from datetime import date

import pytest

from plots.models import CheckResult
from plots.services import producer_create
from tests import eudr_validator
from tests.conftest import geojson, square
from traceability import services

D = date(2025, 5, 2)


@pytest.fixture
def shipped(org_a, make_org, make_plot):
    """Lot 'exp-1' of coop-a shipped to buyer org 'exporter-x'; lot 'kept' not shipped;
    lot 'conf-1' shipped to exporter-x with the geolocation confidential."""
    buyer_org = make_org(code="exporter-x", kind="exporter")
    producer = producer_create(code="maria", name="María Ñahui", organization=org_a, national_id="40001234",
                               phone="987654321")
    plots = [make_plot(producer=producer, valid_from=date(2020, 1, 1), geometry_value=square(-76.5 + i * 0.01, -8.2))
             for i in range(2)]
    for plot in plots:
        for kind in ("protected_area_overlap", "deforestation"):
            CheckResult.objects.create(plot=plot, kind=kind, outcome="pass", method_version="test")
    for code, confidential, ship in (("exp-1", False, True), ("kept", False, False), ("conf-1", True, True)):
        lot, _ = services.lot_upsert(code=code, organization=org_a, form="wet_beans", kg=300, date=D)
        services.delivery_record(plot=plots[0], lot=lot, kg=100, date=D)
        services.delivery_record(plot=plots[1], lot=lot, kg=200, date=D)
        if ship:
            services.shipment_upsert(code=f"ship-{code}", seller=org_a, buyer=buyer_org, lots=[lot], date=D,
                                     geolocation_confidential=confidential)
    return {"buyer_org": buyer_org, "plots": plots}


@pytest.fixture
def buyer_x(persona, shipped):
    return persona("buyer", shipped["buyer_org"])


def test_it_lists_only_shipped_lots_to_a_buyer(buyer_x, owner, technician):
    assert [lot["code"] for lot in buyer_x.client.get("/api/v1/lots").json()["lots"]] == ["conf-1", "exp-1"]
    assert len(owner.client.get("/api/v1/lots").json()["lots"]) == 3
    assert len(technician.client.get("/api/v1/lots").json()["lots"]) == 3


def test_lots_filter_by_the_plot_that_delivered(buyer_x, owner, shipped, make_plot, org_a):
    first = shipped["plots"][0].code
    assert [lot["code"] for lot in owner.client.get(f"/api/v1/lots?plot={first}").json()["lots"]] == [
        "conf-1", "exp-1", "kept"]
    # Still within what the role may see; a plot that delivered nothing gives nothing.
    assert [lot["code"] for lot in buyer_x.client.get(f"/api/v1/lots?plot={first}").json()["lots"]] == [
        "conf-1", "exp-1"]
    idle = make_plot(producer=shipped["plots"][0].producer, geometry_value=square(-76.3, -8.2))
    assert owner.client.get(f"/api/v1/lots?plot={idle.code}").json()["lots"] == []


def test_it_refuses_investors_everywhere(investor, shipped):
    for path in ("/api/v1/lots", "/api/v1/lots/exp-1", "/api/v1/lots/exp-1/origin",
                 "/api/v1/lots/exp-1/mass-balance", "/api/v1/lots/exp-1/eudr.geojson"):
        response = investor.client.get(path)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden"


def test_it_hides_lots_not_shipped_to_the_buyer(buyer_x, persona, make_org):
    assert buyer_x.client.get("/api/v1/lots/kept/origin").status_code == 404
    stranger = persona("buyer", make_org(kind="exporter"))
    assert stranger.client.get("/api/v1/lots/exp-1/eudr.geojson").status_code == 404
    assert stranger.client.get("/api/v1/lots").json()["lots"] == []


def test_origin_is_geojson_with_shares_verdict_and_names(buyer_x):
    doc = geojson(buyer_x.client.get("/api/v1/lots/exp-1/origin"))
    assert doc["verdict"] == "compliant" and doc["reasons"] == []
    assert doc["producer_names_shown"] is True
    shares = sorted(f["properties"]["share"] for f in doc["features"])
    assert shares == pytest.approx([1 / 3, 2 / 3])
    props = doc["features"][0]["properties"]
    assert props["producer"] == "María Ñahui"
    assert props["checks"]["protected_area_overlap"]["outcome"] == "pass"
    text = json.dumps(doc)
    assert "40001234" not in text and "987654321" not in text


def test_confidential_shipments_hide_producer_names(buyer_x, owner):
    doc = geojson(buyer_x.client.get("/api/v1/lots/conf-1/origin"))
    assert doc["producer_names_shown"] is False
    assert all(f["properties"]["producer"] is None for f in doc["features"])
    eudr_doc = json.loads(buyer_x.client.get("/api/v1/lots/conf-1/eudr.geojson").content)
    assert all("ProducerName" not in f["properties"] for f in eudr_doc["features"])
    # The cooperative that owns the lot still sees its producers.
    doc = geojson(owner.client.get("/api/v1/lots/conf-1/origin"))
    assert {f["properties"]["producer"] for f in doc["features"]} == {"María Ñahui"}


def test_the_eudr_download_passes_the_validator_in_both_forms(buyer_x):
    response = buyer_x.client.get("/api/v1/lots/exp-1/eudr.geojson")
    assert response.status_code == 200 and response["X-Chacra-Parts"] == "1"
    assert eudr_validator.problems(response.content) == []
    payload = buyer_x.client.get("/api/v1/lots/exp-1/eudr.geojson?form=producers").json()
    assert payload["geoLocationConfidential"] is False
    assert [p["name"] for p in payload["producers"]] == ["María Ñahui"]
    text = base64.b64decode(payload["producers"][0]["geometryGeojson"])
    assert eudr_validator.problems(text, per_producer=True) == []


def test_an_unexportable_plot_is_refused_by_name(owner, org_a, make_producer, make_plot):
    point = make_plot(producer=make_producer(organization=org_a), code="big-point", valid_from=date(2020, 1, 1),
                      geometry_value={"type": "Point", "coordinates": [-76.4, -8.2]}, declared_area=5.5)
    lot, _ = services.lot_upsert(code="pt-lot", organization=org_a, form="wet_beans", kg=10, date=D)
    services.delivery_record(plot=point, lot=lot, kg=10, date=D)
    response = owner.client.get("/api/v1/lots/pt-lot/eudr.geojson")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "not_exportable"
    assert error["details"] == [{"field": "big-point",
                                 "message": "more than 4 ha (5.50 ha declared) without a polygon"}]
    origin = geojson(owner.client.get("/api/v1/lots/pt-lot/origin"))
    assert origin["verdict"] == "incomplete"
    assert "more than 4 ha (5.50 ha declared) without a polygon" in {r["reason"] for r in origin["reasons"]}


def test_mass_balance_and_detail(buyer_x):
    balance = buyer_x.client.get("/api/v1/lots/exp-1/mass-balance").json()
    assert balance["ceiling_kg_ha"] == 2300.0 and not balance["flagged"]
    # Two deliveries per plot reach three lots in 2025: 3 × 100 kg wet × 0.38 for the first plot.
    assert balance["plots"][0]["dry_kg"] == pytest.approx(3 * 100 * 0.38)
    detail = buyer_x.client.get("/api/v1/lots/exp-1").json()
    assert detail["kg"] == 300 and [s["code"] for s in detail["shipments"]] == ["ship-exp-1"]


def test_bad_parameters_are_400_not_500(buyer_x):
    for path in ("/api/v1/lots?form=gold", "/api/v1/lots/exp-1/eudr.geojson?part=7",
                 "/api/v1/lots/exp-1/eudr.geojson?form=kml", "/api/v1/lots/exp-1/origin?x=1"):
        response = buyer_x.client.get(path)
        assert response.status_code == 400, path
        assert "error" in response.json()


def test_imports_create_then_report_unchanged(owner, org_a, make_producer, make_plot):
    plot = make_plot(producer=make_producer(organization=org_a), code="imp-plot", valid_from=date(2020, 1, 1))
    lots_csv = "code,organization,form,kg,date\nimp-w,coop-a,wet_beans,100,2025-05-02\n"
    deliveries = [{"plot": "imp-plot", "lot": "imp-w", "kg": 100, "date": "2025-05-02"}]
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("lots.csv", lots_csv.encode(), content_type="text/csv")
    response = owner.client.post("/api/v1/traceability/imports/lots", {"file": upload}, format="multipart")
    assert response.status_code == 201 and response.json()["counts"]["created"] == 1
    response = owner.client.post("/api/v1/traceability/imports/deliveries", deliveries, format="json")
    assert response.status_code == 201, response.json()
    again = owner.client.post("/api/v1/traceability/imports/deliveries", deliveries, format="json")
    assert again.status_code == 201 and again.json()["counts"] == {"created": 0, "updated": 0, "unchanged": 1,
                                                                   "refused": 0}
    assert plot.deliveries.count() == 1


def test_imports_refuse_other_organizations_and_roles(other_coop, buyer_x, org_a):
    rows = [{"code": "x-lot", "organization": "coop-a", "form": "wet_beans", "kg": 5, "date": "2025-05-02"}]
    response = other_coop.client.post("/api/v1/traceability/imports/lots", rows, format="json")
    assert response.status_code == 400
    # As for an organization that does not exist (tests/test_write_scope.py).
    assert response.json()["error"]["report"]["features"][0]["reason"] == "organization 'coop-a' does not exist"
    assert buyer_x.client.post("/api/v1/traceability/imports/lots", rows, format="json").status_code == 403


def test_the_lot_list_costs_a_fixed_number_of_queries(buyer_x, django_assert_max_num_queries, org_a):
    for i in range(5):
        services.lot_upsert(code=f"more-{i}", organization=org_a, form="wet_beans", kg=1, date=D)
    # token, profile, the buyer's organization, the lots (joined to organization and
    # facility), and the request's savepoint and its release: whatever the number of lots.
    with django_assert_max_num_queries(6):
        assert buyer_x.client.get("/api/v1/lots").status_code == 200
