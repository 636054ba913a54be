"""The domain errors, from the shared core (core.errors); kept here so existing imports read on."""

from core.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed, from_django_validation

__all__ = ["Conflict", "DomainError", "Forbidden", "NotFound", "ValidationFailed", "from_django_validation"]
