"""The API's ways to sign in (chacra.signin): Token, Bearer and Basic — a user name
with an API token or the account password, which every QGIS LTR and GDAL can send
from their own settings — on every kind of route, and the lockouts of each."""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess

import pytest
from axes.models import AccessAttempt
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import TOCACHE_SQUARE

PASSWORD = "a-long-and-right-password"
LIMIT = 5  # AXES_FAILURE_LIMIT's default (CHACRA_SIGNIN_FAILURE_LIMIT)

# One route of each kind: REST, OGC API – Features, vector tiles, exports.
DATA_ROUTES = ["/api/v1/plots", "/ogc/collections/plots/items", "/tiles/plots/10/300/530.mvt",
               "/api/v1/exports/plots?format=geojson"]


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


def get(path: str, authorization: str | None = None, address: str = "10.1.0.1", **headers):
    client = Client(REMOTE_ADDR=address)
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    return client.get(path, **headers)


def key_of(persona) -> str:
    return persona.client._credentials["HTTP_AUTHORIZATION"].split()[1]


def assert_refused(response, status=401, code="authentication_failed"):
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["status"] == status and error["code"] == code, error
    if status == 401:
        assert response["WWW-Authenticate"].startswith('Basic realm="Chacra"'), response["WWW-Authenticate"]
    if status == 429:
        assert int(response["Retry-After"]) > 0
    return error


@pytest.fixture
def member(technician, make_plot):
    """A technician with a password and a plot to see."""
    technician.user.set_password(PASSWORD)
    technician.user.save()
    make_plot(code="auth-plot", geometry_value=TOCACHE_SQUARE)
    return technician


# ------------------------------------------------------------------ what works

@pytest.mark.parametrize("path", DATA_ROUTES)
def test_basic_with_the_token_opens_every_kind_of_route(member, path):
    assert_refused(get(path), code="not_authenticated")
    response = get(path, basic(member.user.username, key_of(member)))
    assert response.status_code == 200, (path, response.content[:300])
    assert get(path, f"Token {key_of(member)}").status_code == 200


def test_basic_with_the_token_costs_what_the_token_costs(member):
    """One query finds the token, its user, profile and organization, as for Token."""
    counts = []
    for authorization in (f"Token {key_of(member)}", basic(member.user.username, key_of(member))):
        with CaptureQueriesContext(connection) as queries:
            assert get("/api/v1/plots", authorization).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_basic_with_the_password_works(member):
    for _ in range(2):
        response = get("/api/v1/plots", basic(member.user.username, PASSWORD))
        assert response.status_code == 200
        assert [f["properties"]["code"] for f in response.json()["features"]] == ["auth-plot"]
    assert get("/ogc/collections/plots/items", basic(member.user.username, PASSWORD)).status_code == 200


def test_bearer_is_the_token_under_another_name(member):
    for path in DATA_ROUTES:
        assert get(path, f"Bearer {key_of(member)}").status_code == 200, path
    assert_refused(get("/api/v1/plots", "Bearer " + "0" * 40))


def test_the_token_carries_its_users_role(member, buyer):
    """A buyer's token opens what a buyer may see, whichever way it is sent."""
    assert get("/api/v1/plots", basic(buyer.user.username, key_of(buyer))).json()["features"] == []
    assert get("/api/v1/plots", f"Bearer {key_of(buyer)}").json()["features"] == []


# ------------------------------------------------------------------ what is refused

def test_another_users_token_is_no_password(member, admin):
    assert_refused(get("/api/v1/plots", basic(member.user.username, key_of(admin))))
    assert_refused(get("/api/v1/plots", basic(admin.user.username, key_of(member))))
    assert_refused(get("/api/v1/plots", basic("nobody-at-all", key_of(member))))


def test_wrong_basic_credentials_are_challenged_with_basic(member):
    for path in DATA_ROUTES:
        error = assert_refused(get(path, basic(member.user.username, "wrong-password")))
        assert error["message"] and PASSWORD not in error["message"]


def test_anonymous_requests_are_challenged_with_basic_and_token(member):
    for path in DATA_ROUTES:
        response = get(path)
        assert_refused(response, code="not_authenticated")
        assert 'Token realm="Chacra"' in response["WWW-Authenticate"]


def test_a_pages_own_scripts_get_no_basic_challenge(member):
    """The web map's requests (fetch, tiles) after its session ended: a Basic challenge
    would make the browser pop up its own password dialog over the map."""
    response = get("/ogc/collections/plots/items", HTTP_SEC_FETCH_MODE="cors", HTTP_SEC_FETCH_SITE="same-origin")
    assert response.status_code == 401 and response["WWW-Authenticate"] == 'Token realm="Chacra"'
    typed_in = get("/api/v1/plots", HTTP_SEC_FETCH_MODE="navigate", HTTP_SEC_FETCH_SITE="none")
    assert typed_in["WWW-Authenticate"].startswith("Basic ")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


MALFORMED = {
    "no credentials": "Basic",
    "not base64": "Basic !!!not-base64!!!",
    "bad padding": "Basic YWJj=",
    "two words": "Basic " + _b64(b"a:b") + " " + _b64(b"c:d"),
    "no colon": "Basic " + _b64(b"no-colon-here"),
    "not UTF-8": "Basic " + _b64(b"\xff\xfeuser:\xe9secret"),
    "empty": "Basic " + _b64(b""),
    "only a colon": "Basic " + _b64(b":"),
    "no user name": "Basic " + _b64(b":secret"),
    "no secret": "Basic " + _b64(b"user:"),
    "NUL in user name": "Basic " + _b64(b"us\x00er:secret"),
    "newline in secret": "Basic " + _b64(b"user:sec\nret"),
    "user name too long": "Basic " + _b64(b"u" * 300 + b":secret"),
    "not Latin-1": "Basic \u0131\u0131\u0131",
}


@pytest.mark.parametrize("authorization", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_basic_headers_are_401_never_500(member, authorization):
    error = assert_refused(get("/api/v1/plots", authorization))
    assert "malformed Basic credentials" in error["message"]


def test_an_inactive_user_is_refused_both_ways(member):
    member.user.is_active = False
    member.user.save()
    assert_refused(get("/api/v1/plots", basic(member.user.username, key_of(member))))
    assert_refused(get("/api/v1/plots", basic(member.user.username, PASSWORD)))
    assert_refused(get("/api/v1/plots", f"Bearer {key_of(member)}"))


def test_a_browser_may_not_send_basic_credentials_from_another_site(member):
    """A browser that once answered the Basic dialog attaches the password to any
    site's form posts; API clients send neither Sec-Fetch-Site nor Origin."""
    client = Client(REMOTE_ADDR="10.1.0.9", HTTP_AUTHORIZATION=basic(member.user.username, key_of(member)))
    for headers in ({"HTTP_SEC_FETCH_SITE": "cross-site"}, {"HTTP_ORIGIN": "https://elsewhere.example"}):
        response = client.post("/api/v1/plots", {}, content_type="application/json", **headers)
        assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    # The same request from a script (or from the site itself) reaches the view: 400, an empty plot.
    assert client.post("/api/v1/plots", {}, content_type="application/json").status_code == 400
    assert client.post("/api/v1/plots", {}, content_type="application/json", HTTP_SEC_FETCH_SITE="same-origin",
                       HTTP_ORIGIN="http://testserver").status_code == 400


# ------------------------------------------------------------------ lockouts

def test_wrong_basic_passwords_lock_out_even_the_right_one(member):
    username = member.user.username
    statuses = [get("/api/v1/plots", basic(username, f"wrong-{n}")).status_code for n in range(LIMIT)]
    assert statuses == [401] * (LIMIT - 1) + [429]
    # django-axes kept its count, although each refused request was rolled back.
    assert sum(a.failures_since_start for a in AccessAttempt.objects.filter(username=username)) == LIMIT
    assert_refused(get("/api/v1/plots", basic(username, PASSWORD)), status=429, code="locked_out")
    assert_refused(get("/ogc/collections/plots/items", basic(username, PASSWORD)), status=429, code="locked_out")
    # The lock is this user name at this address: elsewhere the password works, and
    # here the user's token still does (tokens have their own count).
    assert get("/api/v1/plots", basic(username, PASSWORD), address="10.1.0.2").status_code == 200
    assert get("/api/v1/plots", f"Token {key_of(member)}").status_code == 200
    assert get("/api/v1/plots", basic(username, key_of(member))).status_code == 200


def test_a_right_password_resets_the_count(member):
    username = member.user.username
    for n in range(LIMIT - 1):
        assert get("/api/v1/plots", basic(username, f"wrong-{n}")).status_code == 401
    assert get("/api/v1/plots", basic(username, PASSWORD)).status_code == 200
    assert get("/api/v1/plots", basic(username, "wrong-again")).status_code == 401


def test_wrong_tokens_as_passwords_lock_out_every_token_from_the_address(member):
    username = member.user.username
    guesses = [f"{n:040x}" for n in range(LIMIT)]
    statuses = [get("/api/v1/plots", basic(username, guess)).status_code for guess in guesses]
    assert 429 not in statuses[:-1] and statuses[-1] == 429
    assert_refused(get("/api/v1/plots", basic(username, key_of(member))), status=429, code="locked_out")
    assert_refused(get("/api/v1/plots", f"Token {key_of(member)}"), status=429, code="locked_out")
    assert_refused(get("/api/v1/plots", f"Bearer {key_of(member)}"), status=429, code="locked_out")
    assert get("/api/v1/plots", basic(username, key_of(member)), address="10.1.0.3").status_code == 200


def test_wrong_bearer_tokens_lock_out_the_address(member):
    statuses = [get("/api/v1/plots", f"Bearer {n:040x}").status_code for n in range(LIMIT + 2)]
    assert statuses == [401] * LIMIT + [429] * 2
    assert_refused(get("/api/v1/plots", basic(member.user.username, key_of(member))), status=429,
                   code="locked_out")
    assert get("/api/v1/plots", f"Bearer {key_of(member)}", address="10.1.0.4").status_code == 200


def test_a_mistyped_password_does_not_count_against_the_address_tokens(member, admin):
    for n in range(LIMIT + 1):
        get("/api/v1/plots", basic(member.user.username, f"wrong-{n}"))
    assert get("/api/v1/plots", f"Token {key_of(admin)}").status_code == 200


# ------------------------------------------------------------------ logging

def test_a_refusal_is_logged_with_the_user_name_and_never_the_secret(member, caplog):
    username = member.user.username
    secrets = ["not-the-password-xyzzy", "f" * 40]
    with caplog.at_level(logging.WARNING, logger="chacra.signin"):
        for secret in secrets:
            assert get("/api/v1/plots", basic(username, secret), address="10.1.0.5").status_code == 401
        assert get("/api/v1/plots", "Bearer " + "e" * 40, address="10.1.0.5").status_code == 401
    records = [r for r in caplog.records if r.name == "chacra.signin"]
    assert len(records) == 3
    assert all(username in r.getMessage() and "10.1.0.5" in r.getMessage() for r in records[:2])
    everything = caplog.text + " ".join(r.getMessage() for r in caplog.records)
    for secret in [*secrets, "e" * 40, PASSWORD]:
        assert secret not in everything
        assert base64.b64encode(f"{username}:{secret}".encode()).decode() not in everything


# ------------------------------------------------------------------ the web map's sign-in, the schema

def test_the_web_maps_sign_in_is_unchanged(member):
    client = Client(REMOTE_ADDR="10.1.0.6")
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert 'name="username"' in page.content.decode() and "WWW-Authenticate" not in page
    # Basic credentials do not open the web map: it signs in with the form.
    assert Client(HTTP_AUTHORIZATION=basic(member.user.username, PASSWORD)).get("/map/").status_code == 302
    response = client.post("/accounts/login/", {"username": member.user.username, "password": PASSWORD,
                                                "next": "/map/"})
    assert response.status_code == 302 and response["Location"] == "/map/"
    assert client.get("/map/").status_code == 200
    assert client.get("/api/v1/plots").status_code == 200  # the map's own API calls: the session


def test_the_schema_documents_token_bearer_and_basic(db, anonymous):
    doc = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["tokenAuth"]["type"] == "apiKey" and schemes["tokenAuth"]["name"] == "Authorization"
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["basicAuth"] == {**schemes["basicAuth"], "type": "http", "scheme": "basic"}
    security = doc["paths"]["/api/v1/plots"]["get"]["security"]
    assert {"tokenAuth": []} in security and {"bearerAuth": []} in security and {"basicAuth": []} in security


# ------------------------------------------------------------------ real clients, challenged first

@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not shutil.which("ogrinfo") or not shutil.which("curl"), reason="needs GDAL's ogrinfo and curl")
def test_gdal_and_curl_answer_the_challenge_with_basic(live_server, technician, make_plot):
    """GDAL_HTTP_AUTH=ANY and curl --anyauth send no credentials until a 401 names a
    scheme they know: the challenge must say Basic."""
    make_plot(code="auth-plot", geometry_value=TOCACHE_SQUARE)
    userpwd = f"{technician.user.username}:{key_of(technician)}"
    ogrinfo = subprocess.run(
        ["ogrinfo", "-ro", "-so", f"OAPIF:{live_server.url}/ogc", "plots", "--config", "GDAL_HTTP_USERPWD", userpwd,
         "--config", "GDAL_HTTP_AUTH", "ANY"], capture_output=True, text=True, timeout=120)
    assert ogrinfo.returncode == 0, ogrinfo.stderr
    assert "Feature Count: 1" in ogrinfo.stdout, ogrinfo.stdout
    curl = subprocess.run(["curl", "-sS", "--anyauth", "-u", userpwd, "-o", "/dev/null", "-w", "%{http_code}",
                           f"{live_server.url}/api/v1/plots"], capture_output=True, text=True, timeout=60)
    assert curl.stdout == "200", curl.stderr
