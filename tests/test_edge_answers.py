"""Answers at the edges: every integer, date and bbox parameter out of range is a 400
that names it (never a 500); a lost database is a 503 with Retry-After; an export
leaves no temporary folder behind once its response has ended."""

from __future__ import annotations

import base64
import socket
import sys
import tempfile

import pytest
from django.contrib.gis.geos import GEOSGeometry
from django.db import OperationalError, connection
from django.test import Client, RequestFactory

from api import errors
from plots.models import AdminArea, ProtectedArea
from tests.conftest import square

HUGE = "9223372036854775808"  # bigint max + 1: what made /ogc/…/items?offset= answer 500
BAD_INTEGERS = [HUGE, "99999999999999999999999999", "-1", "-9223372036854775809", "abc", "1.5", "1e3",
                " ", "0x10", "٣", "²", "NaN"]


@pytest.fixture
def world(make_plot, technician):
    dept = AdminArea.objects.create(ubigeo="10", name="HUANUCO", level="department", edition=2007)
    AdminArea.objects.create(
        ubigeo="100601", name="RUPA-RUPA", level="district", edition=2007, parent=dept,
        geom=GEOSGeometry("SRID=4326;MULTIPOLYGON(((-76.1 -9.4,-75.9 -9.4,-75.9 -9.2,-76.1 -9.2,-76.1 -9.4)))"))
    ProtectedArea.objects.create(
        name="PN Tingo María", category="national_park", official_code="PNTM", source="test", edition="1",
        geom=GEOSGeometry("SRID=4326;MULTIPOLYGON(((-76.0 -9.4,-76.0 -9.3,-75.95 -9.3,-75.95 -9.4,-76.0 -9.4)))"))
    return make_plot(code="edge-1", geometry_value=square(-76.0, -9.35))


def assert_names(response, name: str) -> None:
    """A 400 in the one error shape whose details name the parameter."""
    assert response.status_code == 400, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert error["status"] == 400
    assert name in {d["field"] for d in error["details"]}, error


# (path, parameter, a value that must be accepted)
INTEGER_QUERY_PARAMETERS = [
    ("/api/v1/plots", "limit", "5"),
    ("/api/v1/producers", "limit", "5"),
    ("/api/v1/producers", "offset", "0"),
    ("/api/v1/organizations", "limit", "5"),
    ("/api/v1/organizations", "offset", "1"),
    ("/api/v1/admin-areas", "limit", "5"),
    ("/api/v1/protected-areas", "limit", "5"),
    ("/api/v1/material-lots", "limit", "5"),
    ("/api/v1/material-lots", "offset", "0"),
    ("/ogc/collections/plots/items", "limit", "5"),
    ("/ogc/collections/plots/items", "offset", "0"),
    ("/ogc/collections/districts/items", "limit", "5"),
    ("/ogc/collections/districts/items", "offset", "3"),
    ("/ogc/collections/protected-areas/items", "offset", "0"),
]


@pytest.mark.parametrize(("path", "name", "good"), INTEGER_QUERY_PARAMETERS)
def test_it_range_checks_every_integer_query_parameter(world, technician, path, name, good):
    assert technician.client.get(path, {name: good}).status_code == 200
    for value in BAD_INTEGERS:
        assert_names(technician.client.get(path, {name: value}), name)


@pytest.mark.parametrize(("path", "name"), [
    ("/api/v1/concentration", "k"),
    ("/tiles/concentration/3/2/4.mvt", "k"),
    ("/api/v1/site-suggestions", "n"),
    ("/api/v1/site-suggestions", "resolution"),
])
def test_it_range_checks_the_concentration_integers(world, technician, path, name):
    for value in BAD_INTEGERS:
        assert_names(technician.client.get(path, {name: value}), name)


def test_it_answers_an_empty_page_at_the_largest_offset(world, technician):
    largest = str(2**63 - 1)
    for path in ["/api/v1/producers", "/api/v1/organizations", "/ogc/collections/plots/items",
                 "/ogc/collections/districts/items"]:
        response = technician.client.get(path, {"offset": largest})
        assert response.status_code == 200, (path, response.content[:200])
        body = response.json()
        assert body.get("results", body.get("features")) == []


def test_it_range_checks_the_admin_area_edition(world, technician):
    assert len(technician.client.get("/api/v1/admin-areas", {"edition": "2007"}).json()["features"]) == 2
    for value in BAD_INTEGERS:
        assert_names(technician.client.get("/api/v1/admin-areas", {"edition": value}), "edition")


@pytest.mark.parametrize("name", ["z", "x", "y"])
def test_it_range_checks_tile_addresses(world, technician, name):
    good = {"z": "3", "x": "2", "y": "4"}
    assert technician.client.get("/tiles/districts/{z}/{x}/{y}.mvt".format(**good)).status_code == 200
    for value in [*BAD_INTEGERS, "23", "8"]:  # 23: past the deepest zoom; 8: past the z3 grid
        if name == "z" and value == "8":
            continue  # z=8 is a zoom that exists; x=2, y=4 are in its grid
        address = {**good, name: value.strip() or "%20"}
        assert_names(technician.client.get("/tiles/districts/{z}/{x}/{y}.mvt".format(**address)), name)


def test_it_refuses_cursors_past_the_id_range(world, technician):
    for text in [f"id:{HUGE}", "id:-5", "id:1.5", "id:²"]:
        cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        assert_names(technician.client.get("/api/v1/plots", {"cursor": cursor}), "cursor")
        assert_names(technician.client.get("/api/v1/admin-areas", {"cursor": cursor}), "cursor")


BAD_DAYS = ["99999-01-01", "2026-02-30", "0000-01-01", "yesterday", "2026-1-1x"]
BAD_MOMENTS = [*BAD_DAYS, "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-01-01T25:00:00"]


def test_it_refuses_dates_off_the_calendar(world, technician):
    assert technician.client.get("/api/v1/plots/edge-1", {"as_of": "2026-01-01"}).status_code in (200, 404)
    for value in BAD_DAYS:
        assert_names(technician.client.get("/api/v1/plots/edge-1", {"as_of": value}), "as_of")
    for value in BAD_MOMENTS:
        assert_names(technician.client.get("/api/v1/plots", {"updated_since": value}), "updated_since")
        assert_names(technician.client.get("/ogc/collections/plots/items", {"datetime": value}), "datetime")
        assert_names(technician.client.get("/ogc/collections/plots/items", {"datetime": f"{value}/.."}),
                     "datetime")


BBOX_PATHS = ["/api/v1/plots", "/api/v1/admin-areas", "/api/v1/protected-areas", "/ogc/collections/plots/items",
              "/ogc/collections/districts/items", "/api/v1/rasters"]


@pytest.mark.parametrize("path", BBOX_PATHS)
def test_it_range_checks_bbox_numbers(world, technician, path):
    assert technician.client.get(path, {"bbox": "-77,-10,-75,-8"}).status_code == 200
    for value in ["1e400,0,1,1", "nan,0,1,1", "-200,0,1,1", "0,-91,1,1", "0,0,1", "a,b,c,d", "1,1,0,0",
                  f"{HUGE},0,1,1", "0,0,1,1,1"]:
        assert_names(technician.client.get(path, {"bbox": value}), "bbox")


def test_it_finds_no_feature_for_ids_past_the_integer_range(world, technician):
    for path in [f"/ogc/collections/districts/items/100601-{HUGE}", "/ogc/collections/districts/items/100601-3000000000",
                 f"/ogc/collections/protected-areas/items/{HUGE}", "/ogc/collections/protected-areas/items/²"]:
        response = technician.client.get(path)
        assert response.status_code == 404, (path, response.content[:200])
    assert technician.client.get("/ogc/collections/districts/items/100601-2007").status_code == 200


# ------------------------------------------------------------------ a lost database

def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def database_down(transactional_db):
    """The default connection pointed at a closed port: every query fails to connect,
    as during a restart of PostgreSQL. Restored afterwards."""
    saved = {k: connection.settings_dict.get(k) for k in ("HOST", "PORT")}
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))

    def restore():
        connection.close()
        connection.settings_dict.update(saved)

    yield restore
    restore()


@pytest.fixture
def token_client(technician):
    client = Client(raise_request_exception=False)
    client.defaults["HTTP_AUTHORIZATION"] = technician.client._credentials["HTTP_AUTHORIZATION"]
    return client


def test_it_answers_503_with_retry_after_while_the_database_is_down(token_client, database_down):
    for path in ["/api/v1/plots", "/api/v1/producers?limit=5", "/ogc/collections/plots/items", "/ogc/collections",
                 "/tiles/districts/3/2/4.mvt", "/map/", "/accounts/login/"]:
        response = token_client.get(path)
        assert response.status_code == 503, (path, response.status_code, response.content[:300])
        assert response["Retry-After"] == "5"
        assert response.json()["error"]["code"] == "database_unavailable"
    response = token_client.post("/accounts/login/", {"username": "someone", "password": "secret"})
    assert response.status_code == 503


def test_it_answers_503_for_a_database_lost_inside_a_middleware():
    request = RequestFactory().get("/map/")
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        assert sys.exc_info()[0] is OperationalError
        response = errors.handler500(request)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert errors.handler500(request).status_code == 500  # outside an OperationalError: a plain 500


def test_it_answers_again_once_the_database_is_back(token_client, database_down):
    assert token_client.get("/api/v1/plots").status_code == 503
    database_down()  # the database is back: the next request reconnects
    assert token_client.get("/api/v1/plots").status_code == 200


# ------------------------------------------------------------------ export temporary files

@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "kml", "csv"])
def test_it_removes_the_export_folder_when_the_response_ends(world, technician, tmp_path, monkeypatch, fmt):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # other test sessions share /tmp
    responses = [technician.client.get(f"/api/v1/exports/plots?format={fmt}") for _ in range(5)]
    assert len(list(tmp_path.glob("chacra-export-*"))) == 5  # kept while the bodies are being sent
    for response in responses:
        assert response.status_code == 200
        assert b"".join(response.streaming_content)  # the test client closes the response after the last byte
    assert list(tmp_path.iterdir()) == []


def test_it_removes_the_export_folder_when_writing_fails(world, technician, tmp_path, monkeypatch):
    from api import exports

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(exports, "write", broken)
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=technician.client._credentials["HTTP_AUTHORIZATION"])
    assert client.get("/api/v1/exports/plots?format=gpkg").status_code == 500
    assert list(tmp_path.iterdir()) == []
