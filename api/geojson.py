"""GeoJSON built by PostGIS and passed through as text.

A list of 1,000 plots leaves the database as 1,000 ready-made Feature strings
(ST_AsGeoJSON for the geometry, jsonb_build_object for the properties, glued with
``||``); Python only joins them. No per-feature dict is ever built: that is what
keeps the endpoint within 1.5× of a bare COPY (see scripts/bench geojson).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.conf import settings
from django.contrib.gis.db.models.functions import AsGeoJSON
from django.db.models import Expression, F, Func, TextField
from django.db.models.functions import Coalesce, JSONObject
from django.http import HttpResponse

from plots.models.expressions import ForcePolygonCCW

GEOJSON_CONTENT_TYPE = "application/geo+json"


class FeatureText(Func):
    """SQL that yields one GeoJSON Feature as text: (id, geometry text, properties jsonb)."""

    output_field = TextField()

    def __init__(self, feature_id: Expression, geometry: Expression, properties: Expression) -> None:
        super().__init__(feature_id, geometry, properties)

    def as_sql(self, compiler, connection, **extra_context):
        parts, params = [], []
        for expr in self.source_expressions:
            sql, p = compiler.compile(expr)
            parts.append(sql)
            params.extend(p)
        feature_id, geom, props = parts
        sql = (
            "('{\"type\":\"Feature\",\"id\":' || to_json(" + feature_id + ")::text"
            " || ',\"geometry\":' || COALESCE(" + geom + ", 'null')"
            " || ',\"properties\":' || (" + props + ")::text || '}')"
        )
        return sql, params


def geometry_json(field: str, *, polygon: bool = True) -> Expression:
    """ST_AsGeoJSON of a column, exterior rings forced counter-clockwise (RFC 7946)."""
    precision = settings.CHACRA_GEOJSON_PRECISION
    expr = ForcePolygonCCW(field) if polygon else F(field)
    return AsGeoJSON(expr, precision=precision)


def plot_geometry_json(prefix: str = "") -> Expression:
    """The plot's boundary, or its point when it was surveyed as a point."""
    return Coalesce(geometry_json(f"{prefix}boundary"), geometry_json(f"{prefix}location", polygon=False),
                    output_field=TextField())


def feature_collection(features: Iterable[str], *, links: list[dict] | None = None,
                       extra: dict | None = None) -> bytes:
    """A FeatureCollection around ready-made Feature strings."""
    head = {"type": "FeatureCollection"}
    head.update(extra or {})
    head["links"] = links or []
    head_text = json.dumps(head, separators=(",", ":"))[:-1]
    return (head_text + ',"features":[' + ",".join(features) + "]}").encode()


def geojson_response(body: bytes | str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, content_type=GEOJSON_CONTENT_TYPE, status=status)


__all__ = ["FeatureText", "JSONObject", "feature_collection", "geojson_response", "geometry_json",
           "plot_geometry_json"]
