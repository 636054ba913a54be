"""Hostile requests that are not uploads (those are tests/test_upload_safety.py):
SQL injection in every query parameter of the OpenAPI document and in path codes,
path traversal, deeply nested JSON, NUL bytes, oversized bodies, open redirects
through ``next=``, CSRF on session-authenticated writes, and writes by roles that
may not write. Each is answered 4xx with the one JSON error shape (or, for a
filter given a string that matches nothing, an answer no bigger than a harmless
string that matches nothing gets), never 5xx, and nothing is written.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode, urlsplit

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from plots.models import Plot, Producer
from tests.security.conftest import PRODUCER_A
from traceability.models import ProductLot

SQL_INJECTIONS = [
    "' OR '1'='1",
    "1' OR 1=1 --",
    "'; DROP TABLE plots_plot; --",
    "1; SELECT pg_sleep(5)",
    "\" OR \"\"=\"",
    "1) UNION SELECT national_id, phone FROM plots_producer --",
    "%' OR code LIKE '%",
]
# A value of the same kind that matches nothing: the yardstick for how much an injected filter may return.
HARMLESS = "zzz-matches-nothing"
TRAVERSALS = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
              "....//....//etc/passwd", "..\\..\\windows\\win.ini"]
OFF_SITE = ["https://evil.example/", "//evil.example/", "/\\evil.example/", "https:evil.example", "\\\\evil.example",
            "http://testserver@evil.example/"]


def assert_error_shape(response, *, status: int | None = None) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error = json.loads(response.content)["error"]
    assert error["status"] == response.status_code
    assert isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str)
    assert isinstance(error["details"], list)
    return error


def counts() -> dict[str, int]:
    return {"plots": Plot.objects.count(), "producers": Producer.objects.count(),
            "lots": ProductLot.objects.count(), "users": User.objects.count()}


def size(response) -> int | None:
    """How many records a 200 answer carries (features, lots, items …), None for other shapes."""
    try:
        doc = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(doc, dict):
        for key in ("features", "results", "lots", "plots", "nurseries", "lots", "collections"):
            if isinstance(doc.get(key), list):
                return len(doc[key])
    return None


def _query_parameters() -> list[tuple[str, str]]:
    """(path with the world's codes, parameter) for every query parameter of every GET in the OpenAPI document."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    out = []
    for path, item in schema["paths"].items():
        op = item.get("get")
        if not op:
            continue
        for param in op.get("parameters", []):
            if param.get("in") == "query":
                out.append((path, param["name"]))
    return sorted(out)


FILL = {"{code}": None, "{layer}": "plots", "{kind}": "lots", "{collection_id}": "plots", "{feature_id}": None}


def _concrete(path: str, world) -> str:
    codes = world.codes
    if "/lots/{code}" in path:
        path = path.replace("{code}", codes["lot:own"])
    elif "/nurseries/{code}" in path:
        path = path.replace("{code}", codes["nursery:own"])
    elif "/material-lots/{code}" in path:
        path = path.replace("{code}", codes["material-lot:own"])
    elif "/producers/{code}" in path:
        path = path.replace("{code}", codes["producer:own"])
    elif "/organizations/{code}" in path:
        path = path.replace("{code}", codes["organization:own"])
    path = path.replace("{code}", codes["plot:own"]).replace("{feature_id}", codes["plot:own"])
    for key, value in FILL.items():
        if value:
            path = path.replace(key, value)
    return path


def test_sql_injection_in_every_query_parameter_is_inert(world):
    technician = world.clients["technician"]
    before = counts()
    params = _query_parameters()
    assert len(params) >= 30, params  # the document lists the API's query parameters
    extra = {"/api/v1/exports/{layer}": {"format": "geojson"}}
    tried = 0
    for path, name in params:
        concrete = _concrete(path, world)
        base = dict(extra.get(path, {}))
        control = technician.get(concrete + "?" + urlencode({**base, name: HARMLESS}))
        for payload in SQL_INJECTIONS:
            response = technician.get(concrete + "?" + urlencode({**base, name: payload}))
            tried += 1
            assert response.status_code < 500, (path, name, payload, response.content[:300])
            if response.status_code >= 400:
                if response["Content-Type"].startswith("application/json"):
                    assert_error_shape(response)
                continue
            # An injected filter returns no more than a harmless value that matches nothing.
            if size(response) is not None and size(control) is not None:
                assert size(response) <= size(control), (path, name, payload)
            body = response.content.decode("latin-1")
            assert PRODUCER_A["national_id"] not in body or "national_id" in name, (path, name, payload)
    assert counts() == before
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('plots_plot') IS NOT NULL")
        assert cur.fetchone()[0]
    print(f"\nhostile: {tried} injected query parameters over {len(params)} parameters")


CODE_PATHS = [
    "/api/v1/plots/{}", "/api/v1/plots/{}/boundaries", "/api/v1/producers/{}", "/api/v1/organizations/{}",
    "/api/v1/lots/{}/origin", "/api/v1/lots/{}/eudr.geojson", "/api/v1/nurseries/{}",
    "/api/v1/material-lots/{}/lineage", "/api/v1/exports/{}?format=geojson", "/ogc/collections/{}/items",
    "/ogc/collections/plots/items/{}", "/ogc/collections/districts/items/{}", "/tiles/{}.json",
    "/tiles/{}/10/294/535.mvt", "/api/v1/traceability/imports/{}",
]


def test_hostile_codes_in_paths_are_404_or_400(world):
    technician = world.clients["technician"]
    before = counts()
    tried = 0
    for template in CODE_PATHS:
        for payload in SQL_INJECTIONS + TRAVERSALS + ["a\x00b", "x" * 5000, "%00", "1 OR 1=1"]:
            path = template.format(quote(payload, safe="%") if "%" not in payload else payload)
            response = technician.get(path)
            tried += 1
            if response.status_code == 405:  # imports answer GET with 405 whatever the kind
                continue
            error = assert_error_shape(response)
            assert error["code"] in ("not_found", "invalid", "parse_error", "bad_request", "unknown_parameter"), \
                (path, error)
            assert b"root:x:0" not in response.content and b"[fonts]" not in response.content
    assert counts() == before
    assert tried == len(CODE_PATHS) * (len(SQL_INJECTIONS) + len(TRAVERSALS) + 4)


@pytest.mark.parametrize("path", ["/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
                                  "/static/..%2f..%2f..%2fetc%2fpasswd", "/map/../../etc/passwd"])
def test_path_traversal_reaches_no_file(db, path):
    response = Client().get(path)
    assert response.status_code in (301, 302, 400, 404), response.status_code
    assert b"root:x:0" not in (response.content if not getattr(response, "streaming", False)
                               else b"".join(response.streaming_content))


def test_deeply_nested_json_is_a_400(world):
    before = counts()
    for path in ("/api/v1/plots", "/api/v1/producers"):
        for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
            response = world.clients["technician"].post(path, data=body, content_type="application/json")
            assert_error_shape(response, status=400)
    assert counts() == before


def test_nul_bytes_are_refused_in_bodies_and_queries(world):
    technician = world.clients["technician"]
    before = counts()
    response = technician.post("/api/v1/producers", data={
        "code": "nul-prod", "name": "Ana\x00Maria", "organization": world.codes["organization:own"]}, format="json")
    assert_error_shape(response, status=400)
    for query in ("organization=sec-coop-a%00", "district=22%0010", "region=San%00Martin", "updated_since=2026%00"):
        response = technician.get(f"/api/v1/plots?{query}")
        assert response.status_code in (200, 400), (query, response.status_code)
        if response.status_code == 400:
            assert_error_shape(response)
        else:
            assert json.loads(response.content)["features"] == []
    assert counts() == before


def test_an_oversized_body_is_a_413_and_writes_nothing(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
    before = counts()
    body = json.dumps({"type": "Feature", "properties": {"code": "big", "notes": "x" * (300 * 1024)},
                       "geometry": None})
    for path in ("/api/v1/plots", "/api/v1/producers"):
        response = world.clients["technician"].post(path, data=body, content_type="application/json")
        assert_error_shape(response, status=413)
    assert counts() == before


# ------------------------------------------------------------------ open redirects

def _redirect_stays_here(response) -> str:
    assert response.status_code in (302, 303), (response.status_code, response.content[:200])
    location = response["Location"]
    parts = urlsplit(location)
    assert parts.netloc in ("", "testserver"), location
    assert not location.startswith(("//", "/\\", "\\")), location
    return location


@pytest.mark.parametrize("target", OFF_SITE)
@pytest.mark.parametrize("login", ["/accounts/login/", "/admin/login/"])
def test_login_next_never_sends_the_browser_off_site(db, login, target):
    User.objects.create_user("walker", password="a-long-pass-phrase-42", is_staff=True)
    client = Client()
    page = client.get(f"{login}?{urlencode({'next': target})}")
    assert page.status_code == 200
    assert "evil.example" not in page.content.decode() or 'value="' + target not in page.content.decode()
    response = client.post(f"{login}?{urlencode({'next': target})}",
                           {"username": "walker", "password": "a-long-pass-phrase-42", "next": target})
    assert "evil.example" not in _redirect_stays_here(response)


def test_login_next_to_a_page_of_ours_is_followed(db):
    """The check above can fail: a local next= is honoured."""
    User.objects.create_user("walker", password="a-long-pass-phrase-42")
    response = Client().post("/accounts/login/?next=/ogc/", {"username": "walker", "password": "a-long-pass-phrase-42",
                                                            "next": "/ogc/"})
    assert _redirect_stays_here(response) == "/ogc/"


@pytest.mark.parametrize("target", OFF_SITE[:3])
def test_logout_next_never_sends_the_browser_off_site(db, target):
    client = Client()
    client.force_login(User.objects.create_user("walker"))
    response = client.post(f"/accounts/logout/?{urlencode({'next': target})}")
    if response.status_code in (302, 303):
        assert "evil.example" not in _redirect_stays_here(response)
    else:
        assert response.status_code == 200


# ------------------------------------------------------------------ CSRF

def _plot_feature(code: str) -> dict:
    return {"type": "Feature", "properties": {"code": code, "producer": PRODUCER_A["code"]},
            "geometry": {"type": "Polygon", "coordinates": [[[-76.47, -8.23], [-76.468, -8.23], [-76.468, -8.228],
                                                             [-76.47, -8.228], [-76.47, -8.23]]]}}


def test_a_session_write_without_the_csrf_token_is_refused(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["technician"])
    before = counts()
    for path, body in (("/api/v1/plots", _plot_feature("csrf-plot")),
                       ("/api/v1/producers", {"code": "csrf-prod", "name": "X",
                                              "organization": world.codes["organization:own"]})):
        response = client.post(path, data=json.dumps(body), content_type="application/json")
        error = assert_error_shape(response, status=403)
        assert "csrf" in error["message"].lower(), error
    response = client.patch(f"/api/v1/plots/{world.codes['plot:own']}", data='{"tenure": "titled"}',
                            content_type="application/json")
    assert_error_shape(response, status=403)
    response = client.delete(f"/api/v1/plots/{world.codes['plot:own']}")
    assert_error_shape(response, status=403)
    assert counts() == before
    assert Plot.objects.get(code=world.codes["plot:own"]).status == "active"


def test_a_session_write_with_the_csrf_token_goes_through(world):
    """The CSRF check above can fail: the same write with the token is accepted."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["technician"])
    client.get("/accounts/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post("/api/v1/plots", data=json.dumps(_plot_feature("csrf-plot")),
                           content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content[:300]


def test_the_login_form_needs_its_csrf_token(db):
    User.objects.create_user("walker", password="a-long-pass-phrase-42")
    response = Client(enforce_csrf_checks=True).post(
        "/accounts/login/", {"username": "walker", "password": "a-long-pass-phrase-42"})
    assert response.status_code == 403


# ------------------------------------------------------------------ roles that may not write

def test_valid_writes_by_roles_that_may_not_write_are_refused(world):
    before = counts()
    for role in ("buyer", "investor", "anonymous"):
        client = world.clients[role]
        attempts = [
            client.post("/api/v1/plots", data=_plot_feature("intruder-plot"), format="json"),
            client.post("/api/v1/producers", data={"code": "intruder", "name": "Intruder",
                                                   "organization": world.codes["organization:own"]}, format="json"),
            client.patch(f"/api/v1/plots/{world.codes['plot:own']}", data={"properties": {"tenure": "titled"}},
                         format="json"),
            client.delete(f"/api/v1/plots/{world.codes['plot:own']}"),
        ]
        for response in attempts:
            assert_error_shape(response)
            assert response.status_code in (401, 403, 404), (role, response.status_code)
    assert counts() == before
    assert Plot.objects.get(code=world.codes["plot:own"]).status == "active"


def test_a_cooperative_cannot_write_another_cooperatives_records(world):
    client = world.clients["cooperative"]
    other = world.codes["plot:other"]
    for response in (client.patch(f"/api/v1/plots/{other}", data={"properties": {"tenure": "titled"}}, format="json"),
                     client.delete(f"/api/v1/plots/{other}")):
        assert_error_shape(response)
        assert response.status_code in (403, 404)
    assert Plot.objects.get(code=other).status == "active"
