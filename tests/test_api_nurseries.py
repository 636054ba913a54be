"""/api/v1/nurseries, material-lots, lineage, plots/{code}/genetics, stats/grafting: shapes and roles."""

from __future__ import annotations

import json

import pytest

from tests.conftest import assert_rfc7946, geojson
from tests.test_nurseries_lineage import areas, graph  # noqa: F401  (fixtures)

URL = "/api/v1"


@pytest.fixture
def coop_user(persona, graph):
    """A cooperative user of the organization that owns the graph's nursery and plots."""
    return persona("cooperative", graph["org"])


def test_it_lists_nurseries_as_geojson(graph, technician):
    doc = geojson(technician.client.get(f"{URL}/nurseries"))
    (feature,) = doc["features"]
    assert feature["id"] == "n1" and feature["geometry"] == {"type": "Point", "coordinates": [-76.45, -8.15]}
    assert feature["properties"]["operator_organization"] == "coop-lineage"
    assert feature["properties"]["district"] == "221001"


def test_it_shows_a_nursery_with_its_output(graph, technician):
    doc = geojson(technician.client.get(f"{URL}/nurseries/n1"))
    assert doc["properties"]["output"]["dispatched_to_plots"] == 630


def test_it_follows_a_clone_from_the_mother_plot_down_to_every_plot(graph, technician):
    body = technician.client.get(f"{URL}/material-lots/b/lineage?direction=down").json()
    assert sorted(n["code"] for n in body["nodes"]) == ["b", "g", "g2"]
    assert {n["source_plot"] for n in body["nodes"]} == {"m", None}
    assert sorted((e["parent"], e["child"], e["quantity"]) for e in body["edges"]) == [("b", "g", 60), ("b", "g2", 10)]
    assert [r["plot"] for r in body["reached"]] == ["p1", "p2", "p3"]
    assert body["reached"][2] == {"plot": "p3", "dispatched": 20, "dispatches": 1, "grafts": 60, "graftings": 1,
                                  "lots": ["b"], "first": "2024-05-05", "last": "2024-05-10"}
    assert body["plots_involved"] == 4 and body["plots_not_shown"] == 0  # p1-p3 and the mother plot m
    assert sorted(f["properties"]["code"] for f in body["plots"]["features"]) == ["m", "p1", "p2", "p3"]
    assert_rfc7946(body["plots"])


def test_it_walks_up_the_lineage(graph, technician):
    body = technician.client.get(f"{URL}/material-lots/g/lineage?direction=up").json()
    assert sorted(n["code"] for n in body["nodes"]) == ["b", "g", "r", "s"]
    assert body["reached"] == []


def test_it_answers_the_genetics_of_a_plot(graph, technician):
    body = technician.client.get(f"{URL}/plots/p3/genetics").json()
    assert body["clones"] == [{"clone": "ICS-95", "fine_flavour": True, "grafted_ha": 0.5, "grafts": 60,
                               "survivors": 51, "plants_received": 0}]
    assert body["mother_plots"] == [{"code": "m", "organization": "coop-lineage"}]
    body = technician.client.get(f"{URL}/plots/p2/genetics").json()
    assert body["clones"][0]["plants_received"] == 230 and body["nurseries"] == ["n1"]


def test_it_gives_grafting_stats_by_region_district_and_clone(graph, technician):
    body = technician.client.get(f"{URL}/stats/grafting?by=region").json()
    (row,) = body["rows"]
    assert row["key"] == "22" and row["grafted_ha"] == 0.5 and row["plots_planted"] == 2
    assert (row["graftings"], row["grafts"], row["survivors"]) == (1, 60, 51)
    assert all(isinstance(row[k], int) for k in ("graftings", "grafts", "survivors"))
    assert technician.client.get(f"{URL}/stats/grafting?by=district").json()["rows"][0]["key"] == "221001"
    assert technician.client.get(f"{URL}/stats/grafting?by=clone").json()["rows"][0]["key"] == "ICS-95"


def test_investors_get_aggregates_only(graph, investor):
    assert investor.client.get(f"{URL}/stats/grafting?by=region").status_code == 200
    for path in ("nurseries", "nurseries/n1", "material-lots", "material-lots/g", "material-lots/g/lineage",
                 "plots/p1/genetics", "stats/grafting?by=plot"):
        response = investor.client.get(f"{URL}/{path}")
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden"


def test_buyers_read_lots_but_no_plots(graph, buyer):
    assert buyer.client.get(f"{URL}/material-lots").json()["count"] == 5
    body = buyer.client.get(f"{URL}/material-lots/b/lineage").json()
    assert body["plots"]["features"] == [] and body["plots_not_shown"] == 4
    assert {r["plot"] for r in body["reached"]} == {None}
    assert buyer.client.get(f"{URL}/plots/p1/genetics").status_code == 404
    assert buyer.client.post(f"{URL}/material-lots", {}, format="json").status_code == 405


def test_cooperatives_see_their_own_organization(graph, coop_user, other_coop):
    assert coop_user.client.get(f"{URL}/material-lots").json()["count"] == 5
    assert coop_user.client.get(f"{URL}/plots/p2/genetics").status_code == 200
    assert other_coop.client.get(f"{URL}/material-lots").json()["count"] == 0
    assert geojson(other_coop.client.get(f"{URL}/nurseries"))["features"] == []
    assert other_coop.client.get(f"{URL}/nurseries/n1").status_code == 404
    assert other_coop.client.get(f"{URL}/material-lots/b/lineage").status_code == 404
    rows = other_coop.client.get(f"{URL}/stats/grafting?by=region").json()["rows"]
    assert rows == []


def test_anonymous_users_are_asked_to_log_in(graph, anonymous):
    assert anonymous.get(f"{URL}/material-lots").status_code == 401


@pytest.mark.parametrize("path, field", [
    ("material-lots/b/lineage?direction=sideways", "direction"),
    ("stats/grafting?by=galaxy", "by"),
    ("material-lots?kind=tree", "kind"),
    ("nurseries?colour=red", "colour"),
    ("material-lots?limit=abc", "limit"),
    ("material-lots?offset=-1", "offset"),
])
def test_bad_input_is_a_clear_400(graph, technician, path, field):
    response = technician.client.get(f"{URL}/{path}")
    assert response.status_code == 400, response.content
    error = json.loads(response.content)["error"]
    assert error["message"] and "Traceback" not in error["message"]
    if field:
        assert field in error["message"]


def test_unknown_codes_are_404(graph, technician):
    for path in ("nurseries/nope", "material-lots/nope", "material-lots/nope/lineage", "plots/nope/genetics"):
        assert technician.client.get(f"{URL}/{path}").status_code == 404, path


def test_the_lot_list_takes_a_fixed_number_of_queries(graph, technician, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):  # auth, profile, count, page, visible mother plots
        assert technician.client.get(f"{URL}/material-lots?limit=100").json()["count"] == 5


SHEET = "code,kind,clone,quantity,produced_on,nursery,parents\ng5,grafted_plant,ICS-95,40,2024-07-01,n1,r:40\n"


def _upload(persona, text: str, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return persona.client.post(f"{URL}/nursery-imports", {"file": SimpleUploadedFile("lotes.csv", text.encode()),
                                                           **fields}, format="multipart")


def test_a_cooperative_imports_a_sheet_for_its_own_nursery(graph, coop_user):
    assert _upload(coop_user, SHEET, sheet="lots").status_code == 201


def test_it_imports_an_uploaded_sheet_idempotently(graph, technician):
    response = _upload(technician, SHEET, sheet="lots")
    assert response.status_code == 201 and response.json()["counts"]["created"] == 1
    again = _upload(technician, SHEET, sheet="lots")
    assert again.status_code == 200 and again.json()["counts"] == {"created": 0, "updated": 0, "unchanged": 1,
                                                                    "refused": 0}


def test_an_uploaded_sheet_with_a_refused_row_writes_nothing(graph, technician, other_coop, buyer):
    over = SHEET + "g6,grafted_plant,ICS-95,40,2024-07-01,n1,r:40\n"  # r has 50 left: 40 + 40 is too much
    response = _upload(technician, over, sheet="lots")
    assert response.status_code == 400
    rows = response.json()["error"]["report"]["rows"]
    assert [r["status"] for r in rows] == ["created", "refused"] and "lot r, which has only 10 left" in rows[1]["reason"]
    assert technician.client.get(f"{URL}/material-lots/g5").status_code == 404
    refused = _upload(other_coop, SHEET, sheet="lots").json()["error"]["report"]["rows"][0]
    assert refused["reason"] == "nursery 'n1' is not registered"  # as for a missing one (tests/test_write_scope.py)
    assert _upload(buyer, SHEET, sheet="lots").status_code == 403
    assert _upload(technician, SHEET, sheet="trees").status_code == 400
