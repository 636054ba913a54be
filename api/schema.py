"""drf-spectacular hooks, and the API's authentication schemes (chacra.signin)."""

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter

from api.params import Pagination


def drop_trailing_slash_duplicates(endpoints, **kwargs):
    """Hide the trailing-slash aliases of api/urls.py from the OpenAPI document."""
    return [e for e in endpoints if not (e[0].startswith("/api/v1/") and e[0].endswith("/"))]


class AutoSchema(openapi.AutoSchema):
    """Describes a paged list as the envelope it answers, {count, next, previous, results}.

    A view declares its paginator with ``pagination_class`` (spectacular reads it). A
    plain APIView that pages by hand and only lists ``limit`` and ``offset`` among its
    parameters pages with DRF's limit/offset paginator too: every such view here
    does, and without this its list would be documented as a bare array.
    """

    def _get_paginator(self):
        declared = super()._get_paginator()
        if declared is not None or self.method != "GET":
            return declared
        names = {p.name for p in self.get_override_parameters() if isinstance(p, OpenApiParameter)}
        return Pagination() if {"limit", "offset"} <= names else None


# The security schemes of chacra.signin's classes, one per way of sending a
# credential (spectacular lists them as alternatives on every operation). They
# register by being defined; this module is the DEFAULT_SCHEMA_CLASS's, so it is
# imported before any operation is described. Targets are named, not imported:
# api does not reach into chacra.

class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "chacra.signin.LockoutTokenAuthentication"
    name = "tokenAuth"
    priority = 1  # over spectacular's own TokenAuthentication scheme

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "An API token: `Authorization: Token <key>`."}


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "chacra.signin.LockoutBearerAuthentication"
    name = "bearerAuth"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "The same API token: `Authorization: Bearer <key>`."}


class BasicScheme(OpenApiAuthenticationExtension):
    target_class = "chacra.signin.LockoutBasicAuthentication"
    name = "basicAuth"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic",
                "description": "User name and, as the password, the API token (recommended) or the "
                               "account password: what QGIS and GDAL send from their own settings."}
