"""GeoJSON built by PostGIS and passed through as text.

Lists leave the database as ready-made Feature strings (ST_AsGeoJSON for the
geometry, json_build_object for the properties, glued with ``||``); Python only
joins them, and never builds a dict per feature. Plots go one step further: their
Feature text is kept in a column by a trigger (plots/migrations/0003), which is
what keeps /api/v1/plots within 1.5× of a bare COPY (scripts/bench geojson).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.contrib.gis.db.models.functions import AsGeoJSON
from django.db.models import Expression, F, Func, TextField
from django.db.models.functions import JSONObject
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


# Decimal digits of output coordinates: 7 is ~1 cm, below any GPS accuracy, and
# never merges the vertices of a walked boundary. The plot trigger uses the same.
PRECISION = 7


class JSONBuildObject(JSONObject):
    """json_build_object, not Django's jsonb_build_object: jsonb turns every float
    into numeric and back, which costs 60 % more on feature properties."""

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="JSON_BUILD_OBJECT", **extra_context)


def geometry_json(field: str, *, polygon: bool = True) -> Expression:
    """ST_AsGeoJSON of a column, exterior rings forced counter-clockwise (RFC 7946)."""
    expr = ForcePolygonCCW(field) if polygon else F(field)
    return AsGeoJSON(expr, precision=PRECISION)


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


__all__ = ["PRECISION", "FeatureText", "JSONBuildObject", "feature_collection", "geojson_response", "geometry_json"]
