"""Sign-in throttling, browser security headers, a Content-Security-Policy the web map
works under, and an OpenAPI document that tells the truth about the responses."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta

import jsonschema
import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from tests.test_map_clients import world  # noqa: F401  (fixture)
from tests.test_nurseries_lineage import areas, graph  # noqa: F401  (fixtures)

PASSWORD = "the-right-password"


@pytest.fixture
def member(technician):
    technician.user.set_password(PASSWORD)
    technician.user.save()
    return technician.user


def sign_in(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password, "next": "/map/"})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# ------------------------------------------------------------------ sign-in throttling

def test_it_refuses_the_right_password_after_30_wrong_ones(member):
    client = Client()
    for _ in range(30):
        assert sign_in(client, member.username, "wrong").status_code in (200, 429)
    response = sign_in(client, member.username, PASSWORD)
    assert response.status_code == 429 and not signed_in(client)
    assert "Too many failed sign-ins" in response.content.decode()
    assert int(response["Retry-After"]) == 15 * 60
    assert client.get("/map/").status_code == 302  # still sent to the sign-in page


def test_it_lets_the_user_in_again_after_the_cool_off(member, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=2)  # configurable (CHACRA_SIGNIN_COOLOFF_MINUTES)
    client = Client()
    for _ in range(5):
        sign_in(client, member.username, "wrong")
    assert sign_in(client, member.username, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=3))
    assert sign_in(client, member.username, PASSWORD).status_code == 302 and signed_in(client)


def test_it_does_not_lock_out_below_the_limit_nor_other_addresses(member):
    client = Client()
    for _ in range(4):
        sign_in(client, member.username, "wrong")
    assert sign_in(client, member.username, PASSWORD).status_code == 302 and signed_in(client)
    # A success resets the count; a lock-out from one address leaves another free.
    for _ in range(5):
        sign_in(Client(REMOTE_ADDR="10.0.0.9"), member.username, "wrong")
    elsewhere = Client(REMOTE_ADDR="10.0.0.10")
    assert sign_in(elsewhere, member.username, PASSWORD).status_code == 302 and signed_in(elsewhere)


def test_it_counts_the_address_the_trusted_proxy_saw(member, settings):
    settings.CHACRA_TRUSTED_PROXIES = 1
    for n in range(5):  # a guesser varying its own X-Forwarded-For claim is still one address
        Client(HTTP_X_FORWARDED_FOR=f"1.2.3.{n}, 10.0.0.5").post(
            "/accounts/login/", {"username": member.username, "password": "wrong"})
    assert sign_in(Client(HTTP_X_FORWARDED_FOR="10.0.0.5"), member.username, PASSWORD).status_code == 429
    assert sign_in(Client(HTTP_X_FORWARDED_FOR="10.0.0.6"), member.username, PASSWORD).status_code == 302


def test_it_locks_out_token_guessing_from_one_address(technician):
    guesser = Client(REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION="Token " + "0" * 40)
    statuses = [guesser.get("/api/v1/plots").status_code for _ in range(30)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    good_token = technician.client._credentials["HTTP_AUTHORIZATION"]
    response = Client(REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION=good_token).get("/api/v1/plots")
    assert response.status_code == 429 and response.json()["error"]["code"] == "locked_out"
    assert int(response["Retry-After"]) > 0
    assert Client(REMOTE_ADDR="10.0.0.8", HTTP_AUTHORIZATION=good_token).get("/api/v1/plots").status_code == 200


# ------------------------------------------------------------------ headers

HTML_PAGES = ["/map/", "/accounts/login/", "/ogc/?f=html", "/ogc/collections?f=html",
              "/ogc/collections/districts/items?f=html", "/api/docs/"]


def test_every_html_page_carries_the_policy_and_no_inline_code(member):
    client = Client()
    client.force_login(member)
    for path in HTML_PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["Content-Type"].startswith("text/html"), path
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
        assert "worker-src 'self' blob:" in csp and "frame-ancestors 'none'" in csp
        html = response.content.decode()
        # What the policy would block: inline scripts, <style>, style="" and on…="" attributes.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), path


def test_every_response_carries_the_security_headers(member, technician):
    client = Client()
    client.force_login(member)
    for response in [client.get("/map/"), client.get("/accounts/login/"), technician.client.get("/api/v1/plots"),
                     technician.client.get("/ogc/collections"), Client().get("/api/v1/plots")]:
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"
        assert "geolocation=()" in response["Permissions-Policy"]
        assert response["Content-Security-Policy"]
    assert technician.client.get("/api/v1/plots")["Content-Security-Policy"] == \
        "default-src 'none'; frame-ancestors 'none'"


# ------------------------------------------------------------------ the map under the policy, in Chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Recorded in the page before any script runs: every policy violation it reports.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  e => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


def test_the_map_docs_and_ogc_pages_run_with_no_policy_violation(live_server, world, member):  # noqa: F811
    assert CHROMIUM, "chromium is missing: scripts/test installs it (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.add_init_script(RECORD_VIOLATIONS)
            console = []
            page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
            page.goto(f"{live_server.url}/map/")
            page.fill("input[name=username]", member.username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/map/")
            # Predicates as functions: Playwright evaluates a bare expression with eval(),
            # which the policy (rightly) refuses.
            page.wait_for_function("() => window.chacraReady && window.chacraMap.loaded() && "
                                   "window.chacraMap.queryRenderedFeatures({layers: ['plots-fill']}).length >= 8",
                                   timeout=60_000)
            assert page.evaluate("() => window.__violations") == []
            page.goto(f"{live_server.url}/api/docs/")
            page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
            assert page.evaluate("() => window.__violations") == []
            page.goto(f"{live_server.url}/ogc/collections/plots/items?f=html")
            page.wait_for_selector("table")
            assert page.evaluate("() => window.__violations") == []
            page.goto(f"{live_server.url}/map/")
            page.wait_for_function("() => window.chacraReady")
            page.click("#sign-out")  # the sign-out link's handler now lives in map.js
            page.wait_for_url("**/accounts/login/")
            assert page.evaluate("() => window.__violations") == []
            # The recorder works: an inline script added now is refused and reported.
            page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
                          " document.body.appendChild(s); }")
            page.wait_for_function("() => window.__violations.length > 0")
            assert page.evaluate("() => window.ran") is None
            assert page.evaluate("() => window.__violations")[0].startswith("script-src")
            console.clear()  # that refusal was ours
        finally:
            browser.close()
    assert not [m for m in console if "Content Security Policy" in m or "Refused to" in m], console


# ------------------------------------------------------------------ the OpenAPI document tells the truth

def _schema(anonymous) -> dict:
    return anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def _json_schema(node, components: dict):
    """OpenAPI 3.0 schema → JSON Schema: $ref resolved, ``nullable`` as a null type,
    and no property beyond the documented ones (so an undocumented field fails)."""
    if isinstance(node, list):
        return [_json_schema(n, components) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(components[node["$ref"].rsplit("/", 1)[1]], components)
    out = {k: _json_schema(v, components) for k, v in node.items() if k not in ("nullable", "readOnly", "writeOnly")}
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    elif node.get("type") == "object" and "properties" in node:
        out.setdefault("additionalProperties", False)
    return out


def response_schema(doc: dict, path: str, method: str, status: str) -> dict:
    content = doc["paths"][path][method]["responses"][status]["content"]
    return _json_schema(content["application/json"]["schema"], doc["components"]["schemas"])


@pytest.fixture
def lists(graph, make_plot, make_producer, make_org):  # noqa: F811
    for _ in range(3):  # more than a page of two, in every list
        make_plot(producer=make_producer(organization=make_org()))


@pytest.mark.parametrize("path", [
    "/api/v1/producers", "/api/v1/organizations",
    "/api/v1/material-lots",
])
def test_the_paged_lists_match_the_openapi_document(anonymous, lists, technician, path):
    doc = _schema(anonymous)
    schema = response_schema(doc, path, "get", "200")
    body = technician.client.get(path, {"limit": 2}).json()
    assert body["results"] and body["next"]  # a page that has a next one
    assert set(schema["required"]) >= {"count", "results"}
    assert {"limit", "offset"} <= {p["name"] for p in doc["paths"][path]["get"]["parameters"]}
    jsonschema.validate(body, schema)


def test_the_material_lot_page_is_documented_as_its_envelope(anonymous, lists, technician):
    """The envelope itself (what was documented as a bare array), whatever its items."""
    schema = response_schema(_schema(anonymous), "/api/v1/material-lots", "get", "200")
    body = technician.client.get("/api/v1/material-lots", {"limit": 2}).json()
    assert schema["type"] == "object" and set(schema["properties"]) == set(body) == {
        "count", "next", "previous", "results"}
    assert schema["properties"]["results"]["type"] == "array" and len(body["results"]) == 2


def test_the_new_producer_matches_the_openapi_document(anonymous, technician, org_a):
    created = technician.client.post("/api/v1/producers", {"code": "nuevo", "name": "Nueva Familia",
                                                            "organization": org_a.code}, format="json")
    assert created.status_code == 201 and created.json()["plots"] == 0
    schema = response_schema(_schema(anonymous), "/api/v1/producers", "post", "201")
    assert "plots" in schema.get("required", []), "a field always answered is documented as required"
    jsonschema.validate(created.json(), schema)


def test_the_schema_check_catches_an_undocumented_shape(db, anonymous):
    """The comparison above can fail: a bare array is not the documented envelope."""
    schema = response_schema(_schema(anonymous), "/api/v1/producers", "get", "200")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"code": "x"}], schema)
