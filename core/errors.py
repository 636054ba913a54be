"""Domain errors. Each carries the HTTP status the API layer answers with, so the
mapping lives in one place (api/errors.py) and no domain code imports HTTP."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, details: list[dict] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or ([{"field": field, "message": message}] if field else [])
        if code:
            self.code = code


class ValidationFailed(DomainError):
    status = 400
    code = "validation_failed"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


def from_django_validation(exc) -> ValidationFailed:
    """A Django ValidationError (from full_clean) as one domain error with field details."""
    details = []
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            for message in errors:
                details.append({"field": None if field == "__all__" else field, "message": message})
    else:
        details = [{"field": None, "message": m} for m in exc.messages]
    summary = "; ".join(f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in details)
    return ValidationFailed(summary or "invalid data", details=details)
