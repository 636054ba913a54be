"""drf-spectacular hooks."""

from drf_spectacular import openapi
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
