"""/api/v1/admin-areas and /api/v1/protected-areas: public reference layers as GeoJSON."""

from __future__ import annotations

from django.conf import settings
from django.db.models import CharField, F, Value
from django.db.models.functions import Cast, Concat
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from api import layers
from api.geojson import FeatureText, JSONBuildObject, feature_collection, geojson_response, geometry_json
from api.params import decode_cursor, encode_cursor, parse_bbox, parse_choice, parse_int, parse_limit, reject_unknown
from plots import selectors
from plots.models import AdminArea, ProtectedArea


def with_features(qs, feature_id, properties: JSONBuildObject, geom: str = "geom"):
    """``qs`` annotated with ``feature``: each row as GeoJSON Feature text (api.geojson)."""
    return qs.annotate(feature=FeatureText(F(feature_id) if isinstance(feature_id, str) else feature_id,
                                           geometry_json(geom), properties))


def protected_area_features(qs):
    return with_features(qs, "id", JSONBuildObject(**layers.PROTECTED_AREAS.feature_fields()))


def admin_area_features(qs):
    # The feature id joins UBIGEO and edition: a district keeps its UBIGEO across
    # editions, and ids must be unique in a collection.
    return with_features(qs, Concat("ubigeo", Value("-"), Cast("edition", CharField())),
                         JSONBuildObject(**layers.DISTRICTS.feature_fields()))


def paged_collection(request, qs):
    """A keyset-paged FeatureCollection of ``qs`` (annotated by with_features)."""
    limit = parse_limit(request.query_params.get("limit"),
                        default=min(settings.CHACRA_PAGE_SIZE, settings.CHACRA_MAX_PAGE_SIZE),
                        maximum=settings.CHACRA_MAX_PAGE_SIZE)
    after = decode_cursor(request.query_params.get("cursor"))
    qs = qs.filter(id__gt=after)
    rows = list(qs.order_by("id").values_list("id", "feature")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_url = None
    links = [{"rel": "self", "type": "application/geo+json", "href": request.build_absolute_uri()}]
    if more:
        query = request.GET.copy()
        query["cursor"] = encode_cursor(rows[-1][0])
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        links.append({"rel": "next", "type": "application/geo+json", "href": next_url})
    return geojson_response(feature_collection((f for _, f in rows), links=links,
                                               extra={"numberReturned": len(rows), "next": next_url}))


class AdminAreaListView(APIView):
    @extend_schema(summary="Departments, provinces and districts as GeoJSON",
                   parameters=[OpenApiParameter("level", str, enum=[c for c, _ in AdminArea.Level.choices]),
                               OpenApiParameter("edition", int), OpenApiParameter("parent", str),
                               OpenApiParameter("bbox", str), OpenApiParameter("limit", int),
                               OpenApiParameter("cursor", str)],
                   responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def get(self, request):
        p = request.query_params
        reject_unknown(p, {"level", "edition", "parent", "bbox", "limit", "cursor"})
        edition = parse_int(p.get("edition"), "edition", minimum=1, maximum=9999)  # a year such as 2007
        qs = selectors.admin_area_list(level=parse_choice(p.get("level"), "level", AdminArea.Level.choices),
                                       edition=edition, parent=p.get("parent"),
                                       bbox=parse_bbox(p.get("bbox")))
        return paged_collection(request, admin_area_features(qs))


class ProtectedAreaListView(APIView):
    @extend_schema(summary="Protected areas (SERNANP, WDPA …) as GeoJSON",
                   parameters=[OpenApiParameter("category", str,
                                                enum=[c for c, _ in ProtectedArea.Category.choices]),
                               OpenApiParameter("bbox", str), OpenApiParameter("limit", int),
                               OpenApiParameter("cursor", str)],
                   responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def get(self, request):
        p = request.query_params
        reject_unknown(p, {"category", "bbox", "limit", "cursor"})
        qs = selectors.protected_area_list(
            category=parse_choice(p.get("category"), "category", ProtectedArea.Category.choices),
            bbox=parse_bbox(p.get("bbox")))
        return paged_collection(request, protected_area_features(qs))
