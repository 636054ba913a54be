"""OGC API – Features, Part 1: Core, at /ogc/ — what QGIS and GDAL's OAPIF driver read.

    /ogc/                                   landing page
    /ogc/conformance                        conformance classes
    /ogc/api                                the API definition (OpenAPI 3)
    /ogc/collections                        the layers
    /ogc/collections/{id}                   one layer: extent, CRS, links
    /ogc/collections/{id}/items             features: bbox, datetime, limit (≤ 10,000), offset
    /ogc/collections/{id}/items/{featureId} one feature
    /ogc/collections/{id}/queryables        the properties items may be filtered on (Part 3)

Every resource answers JSON (GeoJSON for features) and HTML (``?f=html``, or a
browser's Accept header). Coordinates are CRS84 (longitude, latitude). The layers
are role-scoped exactly as the REST API: a cooperative user sees its own plots,
buyers and investors none, and /collections lists only the layers the caller's
role may read. The landing page, conformance and API definition are public;
everything with data needs a sign-in: HTTP Basic (user name and API token, what
QGIS and GDAL send), ``Authorization: Bearer …`` or ``Token …``, or a session.
Errors are the API's one JSON error shape.

One geometry type per collection, so QGIS and GDAL type each layer: ``plots``
(MultiPolygon: plots with a boundary) and ``plot-points`` (Point: small plots
surveyed as a point) carry the same properties.

Filtering: each collection's queryables (OGC API – Features Part 3, the basic
form: ``?organization=COOP-A&protected=fail``) are declared with it below; an
unknown parameter is refused, never ignored.

Paging: ``limit`` (default 1000, at most 10,000) and ``offset``; a ``next`` link
while features remain, which GDAL and QGIS follow. ``numberMatched`` is exact.
The API definition declares the limit's default and maximum: GDAL (3.8+) and QGIS
take their page size from it, so a client reads 3,000 plots in three requests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.contrib.gis.db.models import Extent
from django.db.models import Exists, F, OuterRef, QuerySet
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from api import layers
from api.views import areas
from api.params import parse_bbox, parse_int, parse_limit, parse_moment, reject_unknown, safe_id
from plots.errors import Forbidden, NotFound, ValidationFailed
from plots.models import CheckResult, LatestCheck, ProtectedArea
from plots.models.plots import SurveyMethod

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
]
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
JSON, GEOJSON, HTML = "application/json", "application/geo+json", "text/html"
SCHEMA_JSON = "application/schema+json"
# crs and bbox-crs (Part 2, which GDAL 3.8+ sends once a collection lists its
# CRSs): CRS84 is the only one served, so either may name it and nothing else.
STANDARD_PARAMS = {"f", "bbox", "datetime", "limit", "offset", "crs", "bbox-crs"}


@dataclass(frozen=True)
class Queryable:
    """A property items may be filtered on: ``?name=value`` keeps the rows ``where``
    selects (value as given; an integer queryable's value is checked first)."""

    name: str
    type: str  # JSON Schema type: string or integer
    title: str
    where: Callable[[QuerySet, object], QuerySet]
    enum: tuple[str, ...] = ()

    def schema(self) -> dict:
        doc = {"title": self.title, "type": self.type}
        if self.enum:
            doc["enum"] = list(self.enum)
        return doc

    def apply(self, rows: QuerySet, value: str) -> QuerySet:
        if self.enum and value not in self.enum:
            raise ValidationFailed(f"{self.name} must be one of {', '.join(self.enum)} (got {value!r})",
                                   field=self.name)
        if self.type == "integer":
            value = parse_int(value, self.name, minimum=-(2**31), maximum=2**31 - 1)
        return self.where(rows, value)


def _equals(path: str) -> Callable[[QuerySet, object], QuerySet]:
    return lambda rows, value: rows.filter(**{path: value})


NOT_CHECKED = "not_checked"
VERDICTS = (*CheckResult.Outcome.values, NOT_CHECKED)


def _verdict(kind: str) -> Callable[[QuerySet, object], QuerySet]:
    """Plots whose result in force for ``kind`` (the view plots_latest_check) is the
    value; ``not_checked``: plots with no result of that kind."""
    def where(rows: QuerySet, value) -> QuerySet:
        latest = LatestCheck.objects.filter(plot=OuterRef("pk"), kind=kind)
        if value == NOT_CHECKED:
            return rows.filter(~Exists(latest))
        return rows.filter(Exists(latest.filter(outcome=value)))
    return where


PLOT_QUERYABLES = (
    Queryable("organization", "string", "organization code", _equals("organization__code")),
    Queryable("producer", "string", "producer code", _equals("producer__code")),
    Queryable("district", "string", "district UBIGEO", _equals("district__ubigeo")),
    Queryable("planting_year", "integer", "year the cacao was planted", _equals("planting_year")),
    Queryable("survey_method", "string", "how the plot was surveyed", _equals("survey_method"),
              enum=tuple(SurveyMethod.values)),
    Queryable("protected", "string", "latest protected-area verdict",
              _verdict(CheckResult.Kind.PROTECTED_AREA), enum=VERDICTS),
    Queryable("deforestation", "string", "latest deforestation verdict",
              _verdict(CheckResult.Kind.DEFORESTATION), enum=VERDICTS),
    Queryable("double_claim", "string", "latest double-claim (plot overlap) verdict",
              _verdict(CheckResult.Kind.PLOT_OVERLAP), enum=VERDICTS),
)


@dataclass(frozen=True)
class Collection:
    """One layer: where its rows come from (already scoped to the user), how a row
    becomes a Feature, and how bbox, datetime and feature ids apply to it."""

    id: str
    title: str
    description: str
    rows: Callable[[object], QuerySet]  # user -> visible rows
    features: Callable[[QuerySet], QuerySet]  # rows -> rows annotated with "feature" text
    fid: Callable[[QuerySet, str], QuerySet]  # rows, feature id -> that row
    bbox: Callable[[QuerySet, object], QuerySet]  # rows, Polygon -> rows intersecting it
    extent_field: str
    updated_field: str | None = None  # the temporal property ``datetime`` filters on
    # A layer computed in Python (the concentration grid): (request) -> GeoJSON
    # features; rows/features/fid/bbox are then unused.
    static: Callable[[object], list[dict]] | None = None
    queryables: tuple[Queryable, ...] = ()
    # Whether a user may read the layer; /collections lists only those.
    may_read: Callable[[object], bool] = lambda user: True

    @classmethod
    def declared(cls, layer: layers.Layer, description: str, **mechanics) -> Collection:
        """The collection of a declared layer: its id, title and role-scoped rows
        (``rows`` in ``mechanics`` when a selector narrows or refuses on its own)."""
        mechanics.setdefault("rows", layer.visible)
        mechanics.setdefault("may_read", layer.may_read)
        return cls(id=layer.id, title=layer.title, description=description, **mechanics)

    def queryable(self, name: str) -> Queryable | None:
        return next((q for q in self.queryables if q.name == name), None)


def _plot_features(qs: QuerySet) -> QuerySet:
    return qs.annotate(feature=F("feature_geojson"))


def _district_fid(qs: QuerySet, fid: str) -> QuerySet:
    ubigeo, _, edition = fid.partition("-")
    year = safe_id(edition)
    # edition is an integer column: a year past its range matches nothing (not a 500).
    if year is None or year > 2**31 - 1:
        return qs.none()
    return qs.filter(ubigeo=ubigeo, edition=year)


def _plot_collection(layer: layers.Layer, geometry_field: str, description: str) -> Collection:
    """A plot layer (plots, plot-points): the same Features, filters and ids; its own
    geometry column for bbox and extent."""
    return Collection.declared(
        layer, description=description, features=_plot_features, fid=lambda qs, fid: qs.filter(code=fid),
        bbox=lambda qs, box: qs.filter(**{f"{geometry_field}__intersects": box}),
        extent_field=geometry_field, updated_field="updated_at", queryables=PLOT_QUERYABLES)


COLLECTIONS: dict[str, Collection] = {c.id: c for c in (
    _plot_collection(
        layers.PLOTS, "boundary",
        "Cacao plots with a surveyed boundary (MultiPolygon): geodesic area, declared area, producer and district. "
        "Plots surveyed as a single point are the collection plot-points. Scoped to your role."),
    _plot_collection(
        layers.PLOT_POINTS, "location",
        "Small cacao plots surveyed as a single GPS point (Point), with the same properties as plots. "
        "Scoped to your role."),
    Collection.declared(
        layers.PROTECTED_AREAS,
        description="Protected areas and buffer zones (SERNANP, WDPA …), by edition.",
        features=areas.protected_area_features,
        fid=lambda qs, fid: qs.filter(id=safe_id(fid)) if safe_id(fid) is not None else qs.none(),
        bbox=lambda qs, box: qs.filter(geom__intersects=box), extent_field="geom",
        queryables=(
            Queryable("category", "string", "category", _equals("category"),
                      enum=tuple(ProtectedArea.Category.values)),
            Queryable("official_code", "string", "official code", _equals("official_code")),
            Queryable("edition", "string", "version or date of the source layer", _equals("edition")),
        )),
    Collection.declared(
        layers.DISTRICTS,
        description="INEI districts (UBIGEO) of every loaded edition; feature id UBIGEO-edition.",
        features=areas.admin_area_features, fid=_district_fid,
        bbox=lambda qs, box: qs.filter(geom__intersects=box), extent_field="geom",
        queryables=(
            Queryable("ubigeo", "string", "INEI UBIGEO", _equals("ubigeo")),
            Queryable("parent", "string", "UBIGEO of the province", _equals("parent__ubigeo")),
            Queryable("edition", "integer", "boundary edition (year)", _equals("edition")),
        )),
)}


def register(collection: Collection) -> None:
    """Add a layer (other apps register theirs: nurseries, the concentration grid)."""
    COLLECTIONS[collection.id] = collection


# ------------------------------------------------------------------------------ rendering

def _format(request, allowed=(JSON, HTML)) -> str:
    f = request.GET.get("f")
    if f:
        wanted = {"json": JSON, "geojson": JSON, "html": HTML}.get(f)
        if wanted is None or wanted not in allowed:
            raise ValidationFailed(f"f must be json or html (got {f!r})", field="f")
        return wanted
    accept = request.META.get("HTTP_ACCEPT", "")
    return HTML if "text/html" in accept and HTML in allowed else JSON


def _respond(request, fmt: str, doc: dict | str, *, title: str, content_type: str = JSON,
             template: str = "ogc/page.html", context: dict | None = None) -> HttpResponse:
    if fmt == HTML:
        body = render_to_string(template, {"title": title, "doc": doc if isinstance(doc, dict) else json.loads(doc),
                                           **(context or {})}, request=request)
        return HttpResponse(body, content_type="text/html; charset=utf-8")
    text = doc if isinstance(doc, str) else json.dumps(doc, separators=(",", ":"))
    return HttpResponse(text, content_type=content_type)


def _url(request, path: str, **query) -> str:
    q = urlencode({k: v for k, v in query.items() if v is not None}, safe=",:/.")
    return request.build_absolute_uri(f"/ogc{path}") + (f"?{q}" if q else "")


def _links(request, path: str, *, rel_json="self", json_type=JSON, extra: list | None = None, **query) -> list:
    fmt = _format(request)
    links = [
        {"href": _url(request, path, f="json", **query), "rel": rel_json if fmt == JSON else "alternate",
         "type": json_type, "title": "this document as JSON"},
        {"href": _url(request, path, f="html", **query), "rel": "self" if fmt == HTML else "alternate",
         "type": HTML, "title": "this document as HTML"},
    ]
    return links + (extra or [])


class OgcView(APIView):
    """The REST API's authentication and error handling; data needs a login."""


class PublicOgcView(OgcView):
    permission_classes = [AllowAny]


class LandingView(PublicOgcView):
    def get(self, request):
        reject_unknown(request.GET, {"f"})
        doc = {
            "title": "Chacra — OGC API Features",
            "description": "Cacao plots, protected areas and districts of the Chacra traceability database.",
            "links": _links(request, "/") + [
                {"href": _url(request, "/api"), "rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
                 "title": "the API definition"},
                {"href": _url(request, "/api", f="html"), "rel": "service-doc", "type": HTML,
                 "title": "the API documentation"},
                {"href": _url(request, "/conformance"), "rel": "conformance", "type": JSON,
                 "title": "conformance classes"},
                {"href": _url(request, "/collections"), "rel": "data", "type": JSON, "title": "the layers"},
            ],
        }
        return _respond(request, _format(request), doc, title=doc["title"])


class ConformanceView(PublicOgcView):
    def get(self, request):
        reject_unknown(request.GET, {"f"})
        return _respond(request, _format(request), {"conformsTo": CONFORMANCE}, title="Conformance")


class ApiDefinitionView(PublicOgcView):
    def get(self, request):
        reject_unknown(request.GET, {"f"})
        return _respond(request, _format(request), openapi(request), title="API definition",
                        content_type="application/vnd.oai.openapi+json;version=3.0")


def _extent(collection: Collection, rows: QuerySet) -> list[float] | None:
    box = rows.aggregate(e=Extent(collection.extent_field))["e"]
    return [round(v, 7) for v in box] if box else None


def _static_extent(features: list[dict]) -> list[float] | None:
    from shapely.geometry import shape

    boxes = [shape(f["geometry"]).bounds for f in features if f.get("geometry")]
    if not boxes:
        return None
    return [round(min(b[0] for b in boxes), 7), round(min(b[1] for b in boxes), 7),
            round(max(b[2] for b in boxes), 7), round(max(b[3] for b in boxes), 7)]


def _collection_doc(request, collection: Collection, user) -> dict:
    try:
        extent = (_static_extent(collection.static(request)) if collection.static
                  else _extent(collection, collection.rows(user)))
    except Forbidden:  # listed, but its items answer 403 for this role
        extent = None
    doc = {
        "id": collection.id, "title": collection.title, "description": collection.description,
        "itemType": "feature", "crs": [CRS84], "storageCrs": CRS84,
        "extent": {"spatial": {"bbox": [extent or [-180, -90, 180, 90]], "crs": CRS84}},
        "links": _links(request, f"/collections/{collection.id}") + [
            {"href": _url(request, f"/collections/{collection.id}/items", f="json"), "rel": "items",
             "type": GEOJSON, "title": f"{collection.title} as GeoJSON"},
            {"href": _url(request, f"/collections/{collection.id}/items", f="html"), "rel": "items",
             "type": HTML, "title": f"{collection.title} as HTML"},
            {"href": _url(request, f"/collections/{collection.id}/queryables"), "rel": QUERYABLES_REL,
             "type": SCHEMA_JSON, "title": f"what {collection.title} may be filtered on"},
        ],
    }
    if collection.updated_field:
        doc["extent"]["temporal"] = {"interval": [[None, None]], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return doc


def _collection(collection_id: str) -> Collection:
    collection = COLLECTIONS.get(collection_id)
    if collection is None:
        raise NotFound(f"no collection {collection_id!r}; the collections are: {', '.join(COLLECTIONS)}")
    return collection


def readable(user) -> list[Collection]:
    """The collections ``user`` may read, in registry order."""
    return [c for c in COLLECTIONS.values() if c.may_read(user)]


class CollectionsView(OgcView):
    def get(self, request):
        reject_unknown(request.GET, {"f"})
        doc = {"links": _links(request, "/collections"),
               "collections": [_collection_doc(request, c, request.user) for c in readable(request.user)]}
        return _respond(request, _format(request), doc, title="Collections", template="ogc/collections.html")


class CollectionView(OgcView):
    def get(self, request, collection_id: str):
        collection = _collection(collection_id)
        # GDAL sends the query of an ``OAPIF:…/collections/plots?protected=fail``
        # dataset with every request, this one included: the collection's own
        # filters are accepted here (the document describes the whole layer).
        reject_unknown(request.GET, {"f"} | {q.name for q in collection.queryables})
        doc = _collection_doc(request, collection, request.user)
        return _respond(request, _format(request), doc, title=collection.title, template="ogc/collection.html")


class QueryablesView(OgcView):
    """OGC API – Features Part 3, queryables: a JSON Schema of the properties the
    collection's items may be filtered on (as query parameters)."""

    def get(self, request, collection_id: str):
        reject_unknown(request.GET, {"f"})
        collection = _collection(collection_id)
        doc = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": _url(request, f"/collections/{collection.id}/queryables"),
            "type": "object", "title": collection.title,
            "description": "Filter items with ?name=value; several filters all apply.",
            "properties": {q.name: q.schema() for q in collection.queryables},
            "additionalProperties": False,
        }
        return _respond(request, _format(request), doc, title=f"{collection.title}: queryables",
                        content_type=SCHEMA_JSON)


def parse_datetime_interval(value: str | None) -> tuple[datetime | None, datetime | None] | None:
    """``datetime``: an instant, or an interval ``start/end`` with ``..`` (or nothing) for open ends."""
    if not value:
        return None
    if "/" not in value:
        moment = parse_moment(value, "datetime")
        return moment, moment
    start, _, end = value.partition("/")
    lo = None if start in ("", "..") else parse_moment(start, "datetime")
    hi = None if end in ("", "..") else parse_moment(end, "datetime")
    if lo is None and hi is None:
        raise ValidationFailed("datetime: an interval needs at least one end (e.g. 2026-01-01T00:00:00Z/..)",
                               field="datetime")
    if lo and hi and lo > hi:
        raise ValidationFailed("datetime: the interval's start is after its end", field="datetime")
    return lo, hi


class ItemsView(OgcView):
    def get(self, request, collection_id: str):
        collection = _collection(collection_id)
        p = request.GET
        reject_unknown(p, STANDARD_PARAMS | {q.name for q in collection.queryables})
        fmt = _format(request)
        limit = parse_limit(p.get("limit"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
        offset = parse_int(p.get("offset"), "offset", default=0)
        box = parse_bbox(p.get("bbox"))
        interval = parse_datetime_interval(p.get("datetime"))
        for name in ("crs", "bbox-crs"):
            if p.get(name) not in (None, "", CRS84):
                raise ValidationFailed(f"{name} must be {CRS84} (longitude, latitude): the one CRS served "
                                       f"(got {p.get(name)!r})", field=name)
        if collection.static is not None:
            matched, page = _static_page(collection.static(request), box, offset, limit)
        else:
            rows = collection.rows(request.user)
            if box is not None:
                box.srid = 4326
                rows = collection.bbox(rows, box)
            if interval and collection.updated_field:
                lo, hi = interval
                if lo:
                    rows = rows.filter(**{f"{collection.updated_field}__gte": lo})
                if hi:
                    rows = rows.filter(**{f"{collection.updated_field}__lte": hi})
            for q in collection.queryables:
                if p.get(q.name) not in (None, ""):
                    rows = q.apply(rows, p[q.name])
            matched = rows.count()
            page = list(collection.features(rows).order_by("id").values_list("feature", flat=True)
                        [offset:offset + limit])
        query = {k: p.get(k) for k in ("bbox", "datetime", *(q.name for q in collection.queryables)) if p.get(k)}
        path = f"/collections/{collection.id}/items"
        links = _links(request, path, json_type=GEOJSON, limit=limit, offset=offset, **query) + [
            {"href": _url(request, f"/collections/{collection.id}"), "rel": "collection", "type": JSON,
             "title": collection.title}]
        f = "html" if fmt == HTML else "json"
        if offset + len(page) < matched:
            links.append({"href": _url(request, path, f=f, limit=limit, offset=offset + limit, **query),
                          "rel": "next", "type": HTML if fmt == HTML else GEOJSON, "title": "next page"})
        if offset > 0:
            links.append({"href": _url(request, path, f=f, limit=limit, offset=max(0, offset - limit), **query),
                          "rel": "prev", "type": HTML if fmt == HTML else GEOJSON, "title": "previous page"})
        head = {"type": "FeatureCollection", "numberMatched": matched, "numberReturned": len(page),
                "timeStamp": timezone.now().isoformat(timespec="seconds"), "links": links}
        body = json.dumps(head, separators=(",", ":"))[:-1] + ',"features":[' + ",".join(page) + "]}"
        response = _respond(request, fmt, body, title=f"{collection.title}: features", content_type=GEOJSON,
                            template="ogc/items.html", context={"collection": collection})
        response["Content-Crs"] = f"<{CRS84}>"
        return response


def _static_page(features: list[dict], box, offset: int, limit: int) -> tuple[int, list[str]]:
    if box is not None:
        from shapely.geometry import box as make_box
        from shapely.geometry import shape

        area = make_box(*box.extent)
        features = [f for f in features if f.get("geometry") and shape(f["geometry"]).intersects(area)]
    return len(features), [json.dumps(f, separators=(",", ":")) for f in features[offset:offset + limit]]


class ItemView(OgcView):
    def get(self, request, collection_id: str, feature_id: str):
        collection = _collection(collection_id)
        reject_unknown(request.GET, {"f", "crs"})
        if request.GET.get("crs") not in (None, "", CRS84):
            raise ValidationFailed(f"crs must be {CRS84} (got {request.GET.get('crs')!r})", field="crs")
        if collection.static is not None:
            found = [f for f in collection.static(request) if str(f.get("id")) == feature_id]
            feature = json.dumps(found[0]) if found else None
        else:
            rows = collection.fid(collection.rows(request.user), feature_id)
            feature = collection.features(rows).values_list("feature", flat=True).first()
        if feature is None:
            raise NotFound(f"no feature {feature_id!r} in {collection.id} (or not one your role may see)")
        doc = json.loads(feature)
        doc["links"] = _links(request, f"/collections/{collection.id}/items/{feature_id}", json_type=GEOJSON) + [
            {"href": _url(request, f"/collections/{collection.id}"), "rel": "collection", "type": JSON,
             "title": collection.title}]
        return _respond(request, _format(request), doc, title=f"{collection.title}: {feature_id}",
                        content_type=GEOJSON, template="ogc/item.html", context={"collection": collection})


def openapi(request) -> dict:
    """A compact OpenAPI 3.0 definition of the OGC endpoints."""
    param = {
        "f": {"name": "f", "in": "query", "schema": {"type": "string", "enum": ["json", "html"]}},
        "bbox": {"name": "bbox", "in": "query", "style": "form", "explode": False,
                 "schema": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}}},
        "datetime": {"name": "datetime", "in": "query", "schema": {"type": "string"}},
        # GDAL (3.8+) and QGIS take their page size from this default and maximum.
        "limit": {"name": "limit", "in": "query", "required": False, "style": "form", "explode": False,
                  "description": f"features per page (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})",
                  "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
        "offset": {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
        "crs": {"name": "crs", "in": "query", "schema": {"type": "string", "enum": [CRS84], "default": CRS84}},
        "bbox-crs": {"name": "bbox-crs", "in": "query",
                     "schema": {"type": "string", "enum": [CRS84], "default": CRS84}},
        "collectionId": {"name": "collectionId", "in": "path", "required": True,
                         "schema": {"type": "string", "enum": list(COLLECTIONS)}},
        "featureId": {"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"}},
    }
    ok = {"200": {"description": "OK"}}
    ref = lambda *names: [param[n] for n in names]  # noqa: E731
    return {
        "openapi": "3.0.3",
        "info": {"title": "Chacra — OGC API Features", "version": "1.0"},
        "servers": [{"url": request.build_absolute_uri("/ogc")}],
        "components": {"securitySchemes": {
            "basic": {"type": "http", "scheme": "basic",
                      "description": "user name and API token (or password): what QGIS and GDAL send"},
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API token>"},
            "token": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Token <API token>"},
        }},
        "security": [{"basic": []}, {"bearer": []}, {"token": []}],
        "paths": {
            "/": {"get": {"summary": "Landing page", "parameters": ref("f"), "responses": ok}},
            "/conformance": {"get": {"summary": "Conformance classes", "parameters": ref("f"), "responses": ok}},
            "/collections": {"get": {"summary": "The layers", "parameters": ref("f"), "responses": ok}},
            "/collections/{collectionId}": {"get": {"summary": "One layer", "parameters": ref("collectionId", "f"),
                                                    "responses": ok}},
            "/collections/{collectionId}/items": {"get": {
                "summary": "Features", "parameters": ref("collectionId", "f", "bbox", "bbox-crs", "datetime", "limit", "offset",
                                                  "crs"),
                "responses": ok}},
            "/collections/{collectionId}/items/{featureId}": {"get": {
                "summary": "One feature", "parameters": ref("collectionId", "featureId", "f"), "responses": ok}},
            "/collections/{collectionId}/queryables": {"get": {
                "summary": "What a layer's features may be filtered on (JSON Schema)",
                "parameters": ref("collectionId", "f"), "responses": ok}},
            # Each layer's items with its own filters (clients read a layer's
            # queryable parameters from its path).
            **{f"/collections/{c.id}/items": {"get": {
                "summary": f"{c.title}: features",
                "parameters": ref("f", "bbox", "bbox-crs", "datetime", "limit", "offset", "crs") + [
                    {"name": q.name, "in": "query", "required": False, "description": q.title,
                     "schema": q.schema()} for q in c.queryables],
                "responses": ok}} for c in COLLECTIONS.values()},
        },
    }


def _nursery_rows(user) -> QuerySet:
    from nurseries import selectors as nursery_selectors

    return nursery_selectors.nursery_list(user=user)


def _nursery_features(qs: QuerySet) -> QuerySet:
    from api.views.nurseries import nursery_features

    return nursery_features(qs)


register(Collection.declared(
    layers.NURSERIES,
    # nursery_list refuses (403) a role that may not read nurseries, as the REST list does.
    description="Cacao seedling nurseries, clonal (budwood) gardens, shade-tree and plantain nurseries (points).",
    rows=_nursery_rows, features=_nursery_features, fid=lambda qs, fid: qs.filter(code=fid),
    bbox=lambda qs, box: qs.filter(location__intersects=box), extent_field="location"))


def _concentration_grid(request) -> list[dict]:
    """The concentration grid with its defaults (fine-flavour hectares by H3 resolution 7)."""
    return [{"type": "Feature", "id": f["id"], "geometry": f["geometry"], "properties": f["properties"]}
            for f in layers.CONCENTRATION.computed(request.user, {})]


register(Collection(
    id=layers.CONCENTRATION.id, title=layers.CONCENTRATION.title,
    description="Fine-flavour hectares, producers, hectares, grafted hectares, estimated production, share of "
    "women-led households (and flagged plots, for technicians and admins) per H3 cell (resolution 7). Every "
    "area is a sum over privacy units of at least k producers; no plot or producer appears. Other metrics and "
    "grids: "
    "/api/v1/concentration.",
    rows=None, features=None, fid=None, bbox=None, extent_field="", static=_concentration_grid,
    may_read=layers.CONCENTRATION.may_read))
