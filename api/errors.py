"""One JSON error shape for every error response, in one place.

    {"error": {"status": 400, "code": "invalid_geometry",
               "message": "invalid polygon: the boundary crosses itself near …",
               "details": [{"field": "geometry", "message": "…"}]}}

Domain errors carry their status; an import that wrote nothing (core.imports.
ImportRefused) answers 400 with its report under "report"; DRF and Django errors are
mapped here; a lost database answers 503 with Retry-After; anything unexpected is
logged with its traceback and answered with a plain 500 that reveals nothing.
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf

from core.imports import ImportRefused
from plots.errors import DomainError, from_django_validation

log = logging.getLogger("chacra.api")


def error_body(status: int, code: str, message: str, details: list[dict] | None = None) -> dict:
    return {"error": {"status": status, "code": code, "message": message, "details": details or []}}


def error_response(status: int, code: str, message: str, details: list[dict] | None = None,
                   headers: dict | None = None) -> JsonResponse:
    response = JsonResponse(error_body(status, code, message, details), status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _flatten_drf_detail(detail, field: str | None = None) -> list[dict]:
    if isinstance(detail, dict):
        out: list[dict] = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else None
            out.extend(_flatten_drf_detail(value, f"{field}.{name}" if field and name else name or field))
        return out
    if isinstance(detail, list):
        out = []
        for item in detail:
            out.extend(_flatten_drf_detail(item, field))
        return out
    return [{"field": field, "message": str(detail)}]


def client_input_error(exc) -> JsonResponse | None:
    """Errors raised deep in parsing or the driver that are the client's input, not our bug."""
    if isinstance(exc, RequestDataTooBig):
        return error_response(413, "too_large", f"the request body is larger than the "
                              f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)} MB limit")
    if isinstance(exc, RecursionError):
        return error_response(400, "parse_error", "the JSON is nested too deeply")
    if isinstance(exc, IntegrityError):
        # A database rule the services did not foresee: still the client's data.
        log.warning("integrity error reached the API: %s", exc)
        return error_response(409, "conflict", "the change conflicts with a rule of the database: "
                              + str(exc).splitlines()[0][:300])
    if isinstance(exc, ValueError) and "NUL (0x00)" in str(exc):
        # psycopg2 refuses NUL characters in text parameters.
        return error_response(400, "invalid", "text may not contain NUL (0x00) characters")
    return None


def database_unavailable(exc) -> JsonResponse | None:
    """503 with Retry-After when the database cannot be reached or dropped the
    connection (OperationalError: refused, restarting, terminated; InterfaceError:
    the connection is already closed). Deadlocks and serialization failures are
    OperationalErrors too, and "try again shortly" is the right answer to them."""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return None
    log.error("database unavailable: %s", (str(exc).strip().splitlines() or [type(exc).__name__])[0])
    return error_response(503, "database_unavailable", "the database is unavailable; try again shortly",
                          headers={"Retry-After": str(settings.CHACRA_RETRY_AFTER_SECONDS)})


def import_refused(exc: ImportRefused) -> JsonResponse:
    """An import that wrote nothing (core.imports): the one error shape, with the
    import's report inside it, so the client sees which rows to fix."""
    body = error_body(exc.status, exc.code, exc.message, exc.details)
    body["error"]["report"] = exc.report.as_dict()
    return JsonResponse(body, status=exc.status)


def _roll_back() -> None:
    """Roll the request's transaction (ATOMIC_REQUESTS) back, as DRF's own handler
    does: an error answered after a write leaves nothing behind."""
    # Imported here: rest_framework.views imports the authentication classes, and
    # chacra.signin imports this module.
    from rest_framework.views import set_rollback

    set_rollback()


# Offered to a client that sent no usable credentials (chacra.signin's authenticators
# send it): Basic first, as Qt (QGIS) only looks at the start of the header and
# libcurl (GDAL, curl) reads every scheme listed. Not "Bearer": curl prefers it over
# Basic and would answer the challenge without the password it was given.
REALM = "Chacra"
CHALLENGE = f'Basic realm="{REALM}", Token realm="{REALM}"'


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER."""
    # A refused sign-in keeps its transaction: django-axes' failure records would
    # go with a rollback (authentication runs before any view code wrote anything).
    if not getattr(exc, "keeps_sign_in_records", False):
        _roll_back()
    known = client_input_error(exc) or database_unavailable(exc)
    if known is not None:
        return known
    if isinstance(exc, ImportRefused):
        return import_refused(exc)
    if isinstance(exc, DomainError):
        return error_response(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, DjangoValidationError):
        err = from_django_validation(exc)
        return error_response(400, err.code, err.message, err.details)
    if isinstance(exc, Http404):
        return error_response(404, "not_found", str(exc) or "not found")
    if isinstance(exc, DjangoPermissionDenied):
        return error_response(403, "forbidden", str(exc) or "you may not do this")
    if isinstance(exc, drf.APIException):
        headers = {}
        if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
            # The view's authenticators' challenge (DRF sets it on each 401): Basic
            # first, so GDAL, QGIS and curl offer the credentials they were given.
            headers["WWW-Authenticate"] = getattr(exc, "auth_header", None) or CHALLENGE
            status = 401
        else:
            status = exc.status_code
        if isinstance(exc, drf.Throttled) and exc.wait:
            headers["Retry-After"] = str(int(exc.wait))
        details = _flatten_drf_detail(exc.detail) if isinstance(exc.detail, (dict, list)) else []
        message = "; ".join(f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in details) \
            if details else str(exc.detail)
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        return error_response(status, code, message, details, headers)
    log.exception("unhandled error in %s", context.get("view"))
    return error_response(500, "internal_error", "an internal error occurred; it has been logged")


def handler400(request, exception=None):
    return error_response(400, "bad_request", "bad request")


def handler403(request, exception=None):
    return error_response(403, "forbidden", "you may not do this")


def handler404(request, exception=None):
    return error_response(404, "not_found", f"nothing at {request.path}")


def handler500(request):
    # Called inside Django's except block: a database lost while a middleware used
    # it (the session, the sign-in lockout) still answers 503, not 500.
    lost = database_unavailable(sys.exc_info()[1])
    if lost is not None:
        return lost
    return error_response(500, "internal_error", "an internal error occurred; it has been logged")
