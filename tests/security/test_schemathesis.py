"""Schemathesis over the OpenAPI document, in process, for every role.

The document is the one /api/schema/ serves (drf-spectacular), loaded as a dict;
requests go to the WSGI application in this process, so they read and write the
pytest-django test database, filled once per module with the security world
(tests/security/conftest.py) in a transaction rolled back at the end.

Every GET operation is generated for every role; POST, PUT, PATCH and DELETE
for the staff roles only, each call in a savepoint rolled back at once. Path
codes are set to records of the world (the hostile corpus fuzzes paths); query
strings and bodies are generated. Checks: no 5xx (schemathesis'
not_a_server_error); a 2xx or 3xx status is one the document lists for the
operation; a 4xx answer is the one JSON error shape of api/errors.py.

Examples per operation and role: CHACRA_FUZZ_EXAMPLES (default 4), so that the
file stays within a few minutes on the 2-core machine; the number of cases run
is printed at the end of the session (``-s`` or ``-rA`` shows it).
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error

from tests.security.conftest import ROLES, STAFF, build_world

EXAMPLES = int(os.environ.get("CHACRA_FUZZ_EXAMPLES", "4"))
CASES: dict[str, int] = {}


def _document() -> dict:
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


schema = schemathesis.openapi.from_dict(_document())
schema.app = get_wsgi_application()
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzz_world(django_db_setup, django_db_blocker):
    """The security world, built once for the module, rolled back after it; with each role's token.

    Django's WSGI handler closes a connection it finds inside a transaction at the
    start and end of every request (close_old_connections); the test client turns
    that off, and so does this fixture, for the same reason."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            world = build_world()
            tokens = {role: Token.objects.get(user=user).key for role, user in world.users.items()}
            yield world, tokens
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


@pytest.fixture(scope="module", autouse=True)
def _report_cases():
    yield
    total = sum(CASES.values())
    print(f"\nschemathesis: {total} cases over {len(CASES)} operation × role pairs")


def _count(case, role: str) -> None:
    key = f"{case.operation.label} as {role}"
    CASES[key] = CASES.get(key, 0) + 1


def _real_codes(case, world) -> None:
    """Point path parameters at records of the world (own cooperative's), keeping generated query and body."""
    codes = world.codes
    path = case.path
    params = dict(case.path_parameters or {})
    if "code" in params:
        kind = {"lots": "lot", "nurseries": "nursery", "material-lots": "material-lot", "producers": "producer",
                "organizations": "organization", "plots": "plot"}[path.split("/")[3]]
        params["code"] = codes[f"{kind}:own"]
    if "layer" in params:
        params["layer"] = "districts" if path.startswith("/api/v1/exports") else "protected-areas"
    if "kind" in params:
        params["kind"] = "lots"
    if "collection_id" in params:
        params["collection_id"] = "plots"
    if "feature_id" in params:
        params["feature_id"] = codes["plot:own"]
    if {"z", "x", "y"} <= set(params):
        params.update(z=10, x=294, y=535)
    case.path_parameters = params


def _documented(case) -> set[int]:
    return {int(code) for code in case.operation.definition.raw.get("responses", {}) if code.isdigit()}


def _check(case, response) -> None:
    case.validate_response(response, checks=[not_a_server_error])
    status = response.status_code
    if case.method.upper() != case.operation.method.upper():
        # schemathesis' coverage phase also probes methods the operation does not have
        # (OPTIONS answers 200 with the allowed ones, the rest 405).
        assert status == 200 or status >= 400, f"{case.method} {case.formatted_path}: {status}"
    elif status < 400:
        assert status in _documented(case) or status == 304, \
            f"{case.method} {case.formatted_path}: {status} is not documented ({sorted(_documented(case))})"
    if status >= 400 and case.method.upper() not in ("HEAD",):
        body = response.json()
        error = body["error"]
        assert error["status"] == status and error["code"] and isinstance(error["details"], list), body


def _call(case, role: str, tokens: dict[str, str], django_db_blocker):
    headers = {"Authorization": f"Token {tokens[role]}"} if role != "anonymous" else {}
    with django_db_blocker.unblock(), transaction.atomic():
        response = case.call(headers=headers)
        transaction.set_rollback(True)
    return response


@pytest.mark.parametrize("role", ROLES)
@schema.include(method="GET").parametrize()
@FUZZ_SETTINGS
def test_get_operations_as_every_role(case, role, fuzz_world, django_db_blocker):
    world, tokens = fuzz_world
    _real_codes(case, world)
    response = _call(case, role, tokens, django_db_blocker)
    _count(case, role)
    _check(case, response)


@pytest.mark.parametrize("role", STAFF)
@schema.exclude(method="GET").parametrize()
@FUZZ_SETTINGS
def test_writes_as_staff(case, role, fuzz_world, django_db_blocker):
    world, tokens = fuzz_world
    _real_codes(case, world)
    response = _call(case, role, tokens, django_db_blocker)
    _count(case, role)
    _check(case, response)
