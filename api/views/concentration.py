"""Aggregates for investors: /api/v1/concentration, its PNG, and /api/v1/site-suggestions.

Every role may call these (they show no plot, producer or lot; see
insights.privacy for the disclosure control). Roles that may not see plots get the
protected form: region as the only filter, k fixed, no flagged-plot counts.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from api.geojson import geojson_response
from api.params import parse_int, reject_unknown
from core import policy
from insights import cache, concentration, maps, sites
from plots.errors import ValidationFailed

PARAMS = {"metric", "grid", "k", "organization", "clone", "planting_year", "region"}
DOC_PARAMS = [
    OpenApiParameter("metric", str, enum=list(concentration.METRICS), description="default fine_flavour_ha"),
    OpenApiParameter("grid", str, description="h3:5 … h3:9 (default h3:7), district, province or department"),
    OpenApiParameter("k", int, description="fewest producers an area may show (at least CHACRA_PRIVACY_K, "
                     "default 5; technicians and admins only)"),
    OpenApiParameter("organization", str, description="technicians and admins only"),
    OpenApiParameter("clone", str, description="clone code, e.g. ICS-95 (technicians and admins only)"),
    OpenApiParameter("planting_year", str, description="a year (2016) or a range (2014..2018); technicians and "
                     "admins only"),
    OpenApiParameter("region", str, description="department UBIGEO or name"),
]


def protected(user) -> bool:
    """Whether ``user`` gets the protected aggregates (insights.privacy): every role
    that may not see every plot."""
    return not policy.sees_all(user, "aggregate")


def cached_result(params, user) -> dict:
    """The concentration GeoJSON for a query string (insights.cache keeps it; the
    tiles and the OGC collection read it through here too)."""
    reject_unknown(params, PARAMS)
    return cache.concentration_geojson(
        protected=protected(user), metric=params.get("metric") or "fine_flavour_ha", grid=params.get("grid") or "h3:7",
        k=parse_int(params.get("k"), "k", minimum=2, maximum=1_000_000), organization=params.get("organization"),
        clone=params.get("clone"), planting_year=params.get("planting_year"), region=params.get("region"))


class ConcentrationView(APIView):
    @extend_schema(summary="Concentration of producers, hectares, fine-flavour hectares … by H3 cell or admin area "
                   "(GeoJSON for a choropleth, with class breaks; every area a sum over privacy units of at least k "
                   "producers)",
                   parameters=DOC_PARAMS, responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def get(self, request):
        import json

        return geojson_response(json.dumps(cached_result(request.query_params, request.user), separators=(",", ":")))


class ConcentrationPngView(APIView):
    @extend_schema(summary="The concentration map as a PNG (legend, title, scale bar, north arrow, districts)",
                   parameters=DOC_PARAMS, responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request):
        return HttpResponse(maps.choropleth_png(cached_result(request.query_params, request.user)), content_type="image/png")


SITE_PARAMS = {"n", "keep_existing", "organization", "resolution", "format"}


def _sites(params, user) -> dict:
    reject_unknown(params, SITE_PARAMS)
    keep = params.get("keep_existing", "true")
    if keep not in ("true", "false"):
        raise ValidationFailed("keep_existing must be true or false", field="keep_existing")
    suggestion = sites.suggest_sites(n=parse_int(params.get("n"), "n", default=3, minimum=1, maximum=20), keep_existing=keep == "true",
                                     organization=params.get("organization"),
                                     resolution=parse_int(params.get("resolution"), "resolution", default=7, minimum=5, maximum=8),
                                     protected=protected(user))
    return sites.to_geojson(suggestion)


class SiteSuggestionsView(APIView):
    @extend_schema(summary="Where N new collection / post-harvest centres would shorten the production-weighted "
                   "geodesic distance most (p-median; protected areas excluded; existing centres kept)",
                   parameters=[OpenApiParameter("n", int, description="new sites, 1–20 (default 3)"),
                               OpenApiParameter("keep_existing", str, enum=["true", "false"]),
                               OpenApiParameter("organization", str),
                               OpenApiParameter("resolution", int, description="H3 resolution of demand, 5–8"),
                               OpenApiParameter("format", str, enum=["geojson", "png"])],
                   responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def get(self, request):
        import json

        fmt = request.query_params.get("format") or "geojson"
        if fmt not in ("geojson", "png"):
            raise ValidationFailed("format must be geojson or png", field="format")
        doc = _sites(request.query_params, request.user)
        if fmt == "png":
            return HttpResponse(maps.sites_png(doc), content_type="image/png")
        return geojson_response(json.dumps(doc, separators=(",", ":")))
