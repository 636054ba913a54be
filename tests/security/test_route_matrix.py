"""The role × route matrix: every URL pattern, requested by every role.

Each route (and each variant of its path parameters, see tests/security/routes.py)
is requested with GET by six personas, and every write method a view implements
is sent with an empty JSON body (each write in a savepoint rolled back at once).
The answers must be in the expectation tables below; a route with no expectation
fails, so a route added later without one fails CI. Every answer is also searched
for what its role must not see: national ids and phone numbers (all but staff,
and a cooperative for its own members), producer names and plot codes (buyers:
only in the origin of a lot shipped to them; investors and anonymous callers:
never), and plot coordinates (investors and anonymous callers: never).

Columns of the tables: anonymous, admin, technician, cooperative (of coop A;
variants ``own`` name coop A's record, ``other`` coop B's), buyer (the exporter
both of coop A's shipped lots went to), investor. A cell is a status or a tuple
of the statuses allowed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.db import transaction

from api import exports, ogc, tiles
from tests.security.conftest import (CORNER_A, CORNER_B, PRODUCER_A, PRODUCER_B, ROLES, STAFF, World)
from tests.security.routes import Request, Route, alias_of, all_routes, requests_for
from traceability.imports import KINDS

# --------------------------------------------------------------------------- GET
A, S, C, D = 401, 200, 403, 404  # anonymous refused, seen, closed to the role, not found for the role
# Reads of the shared reference and aggregates: every signed-in role.
EVERYONE = (A, S, S, S, S, S)
# Public documents: the OpenAPI schema and its UI, OGC landing/conformance/definition, TileJSON.
PUBLIC = (S, S, S, S, S, S)

#                                   anonymous admin tech  coop  buyer investor
GET: dict[str, tuple] = {
    "schema":                        PUBLIC,
    "docs":                          PUBLIC,
    # Plots: staff everything, a cooperative its own; buyers and investors none (an
    # empty list; a detail is 404 so that codes are not confirmed).
    "plot-list":                     EVERYONE,
    "plot-detail[own]":              (A, S, S, S, D, D),
    "plot-detail[other]":            (A, S, S, D, D, D),
    "plot-boundaries[own]":          (A, S, S, S, D, D),
    "plot-boundaries[other]":        (A, S, S, D, D, D),
    "plot-checks[own]":              (A, S, S, S, D, D),
    "plot-checks[other]":            (A, S, S, D, D, D),
    "plot-genetics[own]":            (A, S, S, S, D, C),
    "plot-genetics[other]":          (A, S, S, D, D, C),
    "producer-list":                 EVERYONE,
    "producer-detail[own]":          (A, S, S, S, D, D),
    "producer-detail[other]":        (A, S, S, D, D, D),
    "organization-list":             EVERYONE,
    "organization-detail[own]":      (A, S, S, S, D, D),
    "organization-detail[other]":    (A, S, S, D, D, D),
    "admin-area-list":               EVERYONE,
    "protected-area-list":           EVERYONE,
    "raster-list":                   EVERYONE,
    "imports":                       (A, 405, 405, 405, 405, 405),
    "exports[plots]":                (A, S, S, S, C, C),
    "exports[plot-points]":          (A, S, S, S, C, C),
    "exports[protected-areas]":      EVERYONE,
    "exports[districts]":            EVERYONE,
    "concentration":                 EVERYONE,
    "concentration-png":             EVERYONE,
    "qgis-project":                  EVERYONE,  # a .qgz of the layers the role may read
    # The fixture world has no production to serve, so the p-median answers 400 to
    # every role that passes the gate; the gate is what this row pins.
    "site-suggestions":              (A, 400, 400, 400, 400, 400),
    # Nurseries and plant material: buyers see them all (genetic origin), a
    # cooperative its own, investors only the aggregates.
    "nursery-list":                  (A, S, S, S, S, C),
    "nursery-detail[own]":           (A, S, S, S, S, C),
    "nursery-detail[other]":         (A, S, S, D, S, C),
    "material-lot-list":             (A, S, S, S, S, C),
    "material-lot-detail[own]":      (A, S, S, S, S, C),
    "material-lot-detail[other]":    (A, S, S, D, S, C),
    "material-lot-lineage[own]":     (A, S, S, S, S, C),
    "material-lot-lineage[other]":   (A, S, S, D, S, C),
    "stats-grafting":                EVERYONE,
    "nursery-imports":               (A, 405, 405, 405, 405, 405),
    # Harvest lots: a buyer the lots shipped to it; investors never.
    "lot-list":                      (A, S, S, S, S, C),
    "traceability-import[deliveries]": (A, 405, 405, 405, 405, 405),
    # OGC API Features: the landing, conformance and definition are public; data needs
    # a login; plot items are scoped like the REST list; nurseries are closed to investors.
    "ogc":                           PUBLIC,
    "ogc-landing":                   PUBLIC,
    "ogc-conformance":               PUBLIC,
    "ogc-api":                       PUBLIC,
    "ogc-collections":               EVERYONE,
    "ogc-item[concentration:none]":  (A, D, D, D, D, D),
    "ogc-item[districts:one]":       EVERYONE,
    "ogc-item[protected-areas:one]": EVERYONE,
    "ogc-item[plots:own]":           (A, S, S, S, D, D),
    "ogc-item[plots:other]":         (A, S, S, D, D, D),
    "ogc-item[plot-points:own]":     (A, S, S, S, D, D),
    "ogc-item[nurseries:own]":       (A, S, S, S, S, C),
    "ogc-item[nurseries:other]":     (A, S, S, D, S, C),
    "ogc-items[nurseries]":          (A, S, S, S, S, C),
    # The web map and the session pages (a signed-in role sees the map; what it
    # shows comes from the tiles and the API, each gated).
    "map":                           (302, S, S, S, S, S),
    "login":                         PUBLIC,
    "logout":                        (405,) * 6,  # POST only
    "password_change":               (302, S, S, S, S, S),
    "password_change_done":          (302, S, S, S, S, S),
    "password_reset":                PUBLIC,
    "password_reset_done":           PUBLIC,
    "password_reset_confirm":        PUBLIC,  # an invalid link: the page says so
    "password_reset_complete":       PUBLIC,
    # Vector tiles: the plots layer is closed to roles that see no plot geometry.
    "tile[plots]":                   (A, S, S, S, C, C),
    "tile[plot-points]":             (A, S, S, S, C, C),
    "tile[protected-areas]":         EVERYONE,
    "tile[districts]":               EVERYONE,
    "tile[concentration]":           EVERYONE,
}
for _variant in ("own", "confidential", "other"):
    _cooperative_and_buyer = D if _variant == "other" else S
    for _route in ("lot-detail", "lot-origin", "lot-mass-balance", "lot-eudr"):
        GET[f"{_route}[{_variant}]"] = (A, S, S, _cooperative_and_buyer, _cooperative_and_buyer, C)
for _collection in ("concentration", "districts", "nurseries", "plots", "plot-points", "protected-areas"):
    GET[f"ogc-collection[{_collection}]"] = EVERYONE
    # What a layer may be filtered on: a schema, no data.
    GET[f"ogc-queryables[{_collection}]"] = EVERYONE
    # Plot items for a buyer or an investor: an empty page (scoped like the REST list).
    GET.setdefault(f"ogc-items[{_collection}]", EVERYONE)
for _layer in ("concentration", "districts", "plot-points", "plots", "protected-areas"):
    GET[f"tilejson[{_layer}]"] = PUBLIC

# Write methods of the API, with an empty JSON body: anonymous 401; roles that write
# nothing 403 before any lookup or validation; writers 400 (the body is empty) or 404
# (a record of another cooperative). DELETE needs no body: a writer's succeeds (and
# is rolled back at once).
WRITES: dict[tuple[str, str], tuple] = {
    ("plot-list", "POST"):                         (A, 400, 400, 400, C, C),
    ("plot-detail[own]", "PATCH"):                 (A, 400, 400, 400, D, D),
    ("plot-detail[own]", "PUT"):                   (A, 400, 400, 400, D, D),
    ("plot-detail[own]", "DELETE"):                (A, S, S, S, D, D),
    ("plot-detail[other]", "PATCH"):               (A, 400, 400, D, D, D),
    ("plot-detail[other]", "PUT"):                 (A, 400, 400, D, D, D),
    ("plot-detail[other]", "DELETE"):              (A, S, S, D, D, D),
    # FINDING (api/views/people.py, not this suite's file): the body is validated
    # before the role is checked, so a buyer or an investor gets 400 for a bad body;
    # a valid one is refused 403 (tests/security/test_hostile_requests.py).
    ("producer-list", "POST"):                     (A, 400, 400, 400, (400, C), (400, C)),
    ("imports", "POST"):                           (A, 415, 415, 415, C, C),  # multipart only
    ("nursery-imports", "POST"):                   (A, 415, 415, 415, C, C),
    ("traceability-import[deliveries]", "POST"):   (A, 400, 400, 400, C, C),
}

# The Django admin site is one gate (is_staff), which no API role passes: every page
# behind it redirects to its login page, whatever model a later release registers.
ADMIN_SITE = (302, 302, 302, 302, 302, 302)
ADMIN_SITE_OWN = {"admin:login": (200, 200, 200, 200, 200, 200)}


@dataclass
class Answer:
    role: str
    route: Route
    request: Request
    method: str
    status: int
    body: str
    location: str


def expected(key: str, variant: str | None, method: str = "GET") -> tuple | None:
    name = f"{key}[{variant}]" if variant else key
    if method != "GET":
        return WRITES.get((name, method))
    if key in ADMIN_SITE_OWN:
        return ADMIN_SITE_OWN[key]
    if key.startswith("admin:") or key.startswith("admin/"):
        return ADMIN_SITE
    return GET.get(name)


def allowed(cell, status: int) -> bool:
    return status in (cell if isinstance(cell, tuple) else (cell,))


# ------------------------------------------------------------------- leak checks

def _coordinates(corner) -> list[str]:
    lon, lat = corner
    return [f"{lon:.7f}", f"{lat:.7f}", f"{lon:.6f}", f"{lat:.6f}"]


SECRETS_A = [PRODUCER_A["national_id"], PRODUCER_A["phone"]]
SECRETS_B = [PRODUCER_B["national_id"], PRODUCER_B["phone"]]
# Routes where a buyer sees the producers and plots of a lot shipped to it (EUDR due
# diligence); names only when the shipment is not confidential.
BUYER_PLOTS_SEEN = {"lot-detail", "lot-origin", "lot-mass-balance", "lot-eudr"}
BUYER_NAMES_SEEN = {"lot-origin", "lot-eudr"}


def forbidden_text(answer: Answer, codes: dict[str, str], canonical: str) -> list[str]:
    """What must not appear in this answer, given its role and route."""
    role, variant = answer.role, answer.request.variant
    if role in STAFF:
        return []
    never = list(SECRETS_A if role != "cooperative" else []) + SECRETS_B
    plot_a, plot_b = codes["plot:own"], codes["plot:other"]
    if role == "cooperative":
        return never + [PRODUCER_B["name"], plot_b, *_coordinates(CORNER_B)]
    if role == "buyer":
        lot_of_theirs = canonical in BUYER_PLOTS_SEEN and variant in ("own", "confidential")
        names_shown = canonical in BUYER_NAMES_SEEN and variant == "own"
        return never + [PRODUCER_B["name"], plot_b, *_coordinates(CORNER_B)] + (
            [] if names_shown else [PRODUCER_A["name"]]) + ([] if lot_of_theirs else [plot_a, *_coordinates(CORNER_A)])
    # investor, anonymous: aggregates only
    return never + [PRODUCER_A["name"], PRODUCER_B["name"], plot_a, plot_b,
                    *_coordinates(CORNER_A), *_coordinates(CORNER_B)]


def leaks(answer: Answer, codes: dict[str, str], canonical: str) -> list[str]:
    # A code the caller put in the path may come back in the error message ("no plot
    # sec-plot-b that you may see"): that tells nothing new.
    return [text for text in forbidden_text(answer, codes, canonical)
            if text in answer.body and text not in answer.request.path]


def open_redirect(answer: Answer) -> bool:
    loc = answer.location
    return bool(loc) and not (loc.startswith("/") and not loc.startswith("//")) \
        and not loc.startswith("http://testserver/")


# ------------------------------------------------------------------------- running

def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("latin-1")
    return response.content.decode("latin-1")


def _answer(world: World, role: str, route: Route, req: Request, method: str) -> Answer:
    client = world.clients[role]
    if method == "GET":
        response = client.get(req.path)
    else:
        with transaction.atomic():
            response = getattr(client, method.lower())(req.path, data="{}", content_type="application/json")
            transaction.set_rollback(True)
    return Answer(role, route, req, method, response.status_code, _body(response),
                  response.headers.get("Location", ""))


def run_matrix(world: World) -> tuple[list[Answer], list[str]]:
    routes = all_routes()
    named = {r.pattern: r for r in routes if r.name}
    answers, problems = [], []
    fills = dict(tile_layers=sorted(tiles.LAYERS), ogc_collections=sorted(ogc.COLLECTIONS),
                 export_layers=sorted(exports.LAYERS), import_kinds=sorted(KINDS)[:1])
    for route in routes:
        canonical = alias_of(route, named) or route
        for req in requests_for(route, world.codes, **fills):
            for method in ["GET", *sorted(route.methods)]:
                cell = expected(canonical.key, req.variant, method)
                row = [_answer(world, role, route, req, method) for role in ROLES]
                answers += row
                label = f"{method} {req.path} ({canonical.key}{f'[{req.variant}]' if req.variant else ''})"
                if cell is None:
                    problems.append(f"no expectation for {label}: observed {tuple(a.status for a in row)}")
                    continue
                for answer, statuses in zip(row, cell):
                    if not allowed(statuses, answer.status):
                        problems.append(f"{label} as {answer.role}: {answer.status}, expected {statuses}: "
                                        f"{answer.body[:160]!r}")
                for answer in row:
                    if answer.status >= 500:
                        problems.append(f"{label} as {answer.role}: {answer.status}")
                    for text in leaks(answer, world.codes, canonical.key):
                        problems.append(f"{label} as {answer.role} leaks {text!r}")
                    if open_redirect(answer):
                        problems.append(f"{label} as {answer.role} redirects off-site to {answer.location}")
    return answers, problems


def test_every_route_answers_every_role_as_expected_and_leaks_nothing(world):
    answers, problems = run_matrix(world)
    cells = {(a.route.pattern, a.request.variant, a.method) for a in answers}
    reads = sum(1 for a in answers if a.method == "GET")
    print(f"\nsecurity matrix: {len(answers)} requests = {len(cells)} (route, parameters, method) cells × "
          f"{len(ROLES)} roles; {reads} reads over {len(all_routes())} URL patterns, {len(answers) - reads} writes")
    assert len(answers) == len(cells) * len(ROLES)
    if os.environ.get("CHACRA_MATRIX_PRINT"):
        seen = {}
        for a in answers:
            canonical = a.route.key
            seen.setdefault((canonical, a.request.variant, a.method), []).append(a.status)
        for (key, variant, method), statuses in sorted(seen.items(), key=lambda kv: str(kv[0])):
            print(f"{method} {key}[{variant}]: {tuple(statuses)}")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


# ------------------------------------------------------- the matrix's own checks fail

def test_a_route_without_an_expectation_fails_the_matrix():
    assert expected("plot-list", None) is not None
    assert expected("a-route-added-later", None) is None
    assert expected("tile", "a-layer-registered-later") is None
    # the admin site is one gate: a model registered later is covered by it
    assert expected("admin:nurseries_nursery_changelist", None) == ADMIN_SITE


def _fake(role: str, body: str, path: str = "/api/v1/concentration", variant=None) -> Answer:
    return Answer(role, Route(path.lstrip("/"), "concentration"), Request(variant, path), "GET", 200, body, "")


CODES = {"plot:own": "sec-plot-a", "plot:other": "sec-plot-b"}


def test_the_leak_checks_find_what_each_role_must_not_see():
    nid, phone_b = PRODUCER_A["national_id"], PRODUCER_B["phone"]
    assert leaks(_fake("investor", f'{{"id": "{nid}"}}'), CODES, "concentration") == [nid]
    assert leaks(_fake("investor", '{"plot": "sec-plot-a"}'), CODES, "concentration") == ["sec-plot-a"]
    assert leaks(_fake("investor", '[-76.4123457,-8.2123457]'), CODES, "concentration") == [
        "-76.4123457", "-8.2123457"]
    assert leaks(_fake("investor", '[-76.412346,-8.212346]'), CODES, "concentration") == [
        "-76.412346", "-8.212346"]
    assert leaks(_fake("cooperative", f'"{phone_b}" "{nid}"'), CODES, "concentration") == [phone_b]
    assert leaks(_fake("buyer", PRODUCER_A["name"]), CODES, "concentration") == [PRODUCER_A["name"]]
    # …but a buyer sees the producers of a lot shipped to it, unless it is confidential
    origin = "/api/v1/lots/sec-lot-a/origin"
    assert leaks(_fake("buyer", PRODUCER_A["name"] + " sec-plot-a", origin, "own"), CODES, "lot-origin") == []
    assert leaks(_fake("buyer", PRODUCER_A["name"], origin, "confidential"), CODES, "lot-origin") == [
        PRODUCER_A["name"]]
    assert leaks(_fake("technician", nid + phone_b), CODES, "concentration") == []
    # a code the caller sent comes back in an error message: not a leak
    assert leaks(_fake("investor", "no plot sec-plot-b", "/api/v1/plots/sec-plot-b"), CODES, "plot-detail") == []


def test_an_off_site_redirect_is_caught():
    answer = _fake("anonymous", "")
    for location, bad in (("/accounts/login/?next=/map/", False), ("http://testserver/map/", False),
                          ("https://evil.example/", True), ("//evil.example/", True)):
        answer.location = location
        assert open_redirect(answer) is bad, location
