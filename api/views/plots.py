"""/api/v1/plots: GeoJSON lists rendered by PostGIS, detail, history, create, update, retire."""

from __future__ import annotations

import json

from django.conf import settings
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Coalesce
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from api.geojson import feature_collection, geojson_response, geometry_json
from api.params import (decode_cursor, encode_cursor, parse_bbox, parse_choice, parse_day, parse_limit,
                        parse_moment, reject_unknown)
from api.serializers import BoundaryVersionSerializer, PlotPropertiesSerializer
from core import policy
from plots import selectors, services
from plots.errors import Forbidden, ValidationFailed
from plots.models import CheckResult, Plot, PlotBoundary

LIST_PARAMS = {"bbox", "district", "region", "organization", "producer", "updated_since", "status", "limit",
               "cursor", "protected_overlap", "double_claim", "check_outcome", "deforestation"}
# deforestation=<value>: the outcome of the latest deforestation screening (chacra screen).
DEFORESTATION = {"flagged": CheckResult.Outcome.FAIL, "clean": CheckResult.Outcome.PASS,
                 "no_data": CheckResult.Outcome.INSUFFICIENT_DATA}


def _check_outcomes(values: list[str]) -> list[tuple[str, str]]:
    """``check_outcome=<kind>:<outcome>`` values (repeatable; all must hold)."""
    kinds, outcomes = [k for k, _ in CheckResult.Kind.choices], [o for o, _ in CheckResult.Outcome.choices]
    parsed = []
    for value in values:
        kind, _, outcome = value.partition(":")
        if kind not in kinds or outcome not in outcomes:
            raise ValidationFailed(f"check_outcome must be <kind>:<outcome> with kind one of {', '.join(kinds)} "
                                   f"and outcome one of {', '.join(outcomes)} (got {value!r})", field="check_outcome")
        parsed.append((kind, outcome))
    return parsed


def _deforestation(params) -> list[tuple[str, str]]:
    """``deforestation=flagged|clean|no_data`` as a (kind, outcome) condition."""
    value = parse_choice(params.get("deforestation"), "deforestation", [(k, "") for k in DEFORESTATION])
    return [(CheckResult.Kind.DEFORESTATION, DEFORESTATION[value])] if value else []


def _page_url(request, cursor: str) -> str:
    query = request.GET.copy()
    query["cursor"] = cursor
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


LIST_DOC = extend_schema(
    operation_id="plots_list",
    summary="Plots as a GeoJSON FeatureCollection",
    description="Paged by `limit` (default 1000) with a `next` link. Geometry is the current boundary "
    "(MultiPolygon) or, for plots surveyed as a point, a Point.",
    parameters=[
        OpenApiParameter("bbox", str, description="minlon,minlat,maxlon,maxlat (WGS 84)"),
        OpenApiParameter("district", str, description="district UBIGEO, 6 digits"),
        OpenApiParameter("region", str, description="department UBIGEO (2 digits) or name"),
        OpenApiParameter("organization", str), OpenApiParameter("producer", str),
        OpenApiParameter("updated_since", OpenApiTypes.DATETIME),
        OpenApiParameter("status", str, enum=["active", "retired", "all"]),
        OpenApiParameter("protected_overlap", str, enum=["true", "false", "buffer"],
                         description="by the latest protected-area check: true = overlaps a protected area "
                         "(fail), buffer = overlaps buffer zones only, false = outside all (pass)"),
        OpenApiParameter("double_claim", str, enum=["true", "false"],
                         description="by the latest plot-overlap check: true = shares more than 0.01 ha with "
                         "another producer's plot (fail); false = pass or warning"),
        OpenApiParameter("deforestation", str, enum=list(DEFORESTATION),
                         description="by the latest deforestation screening: flagged = forest loss after "
                         "31 Dec 2020 (fail), clean = deforestation-free (pass), no_data = not fully covered by "
                         "the loss product or none registered (insufficient_data)"),
        OpenApiParameter("check_outcome", str, many=True,
                         description="<kind>:<outcome> of the latest result of that kind, e.g. "
                         "area_discrepancy:warning; repeat to require several"),
        OpenApiParameter("limit", int), OpenApiParameter("cursor", str),
    ],
    responses={(200, "application/geo+json"): OpenApiTypes.OBJECT},
)


class PlotListView(APIView):
    @LIST_DOC
    def get(self, request):
        params = request.query_params
        reject_unknown(params, LIST_PARAMS)
        limit = parse_limit(params.get("limit"), default=min(settings.CHACRA_PAGE_SIZE, settings.CHACRA_MAX_PAGE_SIZE),
                            maximum=settings.CHACRA_MAX_PAGE_SIZE)
        after = decode_cursor(params.get("cursor"))
        qs = selectors.plot_list(
            user=request.user, bbox=parse_bbox(params.get("bbox")), district=params.get("district"),
            region=params.get("region"), organization=params.get("organization"),
            producer=params.get("producer"), updated_since=parse_moment(params.get("updated_since"), "updated_since"),
            status=parse_choice(params.get("status"), "status", [("active", ""), ("retired", ""), ("all", "")])
            or "active",
            protected_overlap=parse_choice(params.get("protected_overlap"), "protected_overlap",
                                           [("true", ""), ("false", ""), ("buffer", "")]),
            double_claim=parse_choice(params.get("double_claim"), "double_claim", [("true", ""), ("false", "")]),
            check_outcomes=_check_outcomes(params.getlist("check_outcome")) + _deforestation(params),
        )
        # Keyset paging on the primary key: page 100 costs what page 1 costs.
        # The Feature text is kept by a trigger (plots/migrations/0003): this is an
        # index range scan that hands PostgreSQL's text straight to the response.
        rows = list(qs.filter(id__gt=after).order_by("id").values_list("id", "feature_geojson")[: limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        links = [{"rel": "self", "type": "application/geo+json", "href": request.build_absolute_uri()}]
        next_url = None
        if more:
            next_url = _page_url(request, encode_cursor(rows[-1][0]))
            links.append({"rel": "next", "type": "application/geo+json", "href": next_url})
        body = feature_collection((f for _, f in rows), links=links,
                                  extra={"numberReturned": len(rows), "next": next_url})
        return geojson_response(body)

    @extend_schema(summary="Register a plot", request=OpenApiTypes.OBJECT,
                   responses={(201, "application/geo+json"): OpenApiTypes.OBJECT})
    def post(self, request):
        if not policy.may_write(request.user, "plot"):
            raise Forbidden("your role cannot register plots")
        geometry_value, props = _read_feature(request.data, geometry_required=True)
        for name in ("code", "producer"):
            if not props.get(name):
                raise ValidationFailed(f"properties.{name} is required", field=f"properties.{name}")
        # Among the producers the user reads: another organization's is refused in the
        # words of one that does not exist (a 403 would confirm that it does).
        producer = selectors.producer_list(user=request.user).filter(code=props.pop("producer")).first()
        if producer is None:
            raise ValidationFailed("properties.producer names no known producer", field="properties.producer")
        if Plot.objects.filter(code=props["code"]).exists():
            raise ValidationFailed(f"a plot with code {props['code']!r} already exists; use PATCH to change it",
                                   field="properties.code", code="duplicate")
        repair = tuple(props.pop("repair", ()))
        valid_from = props.pop("valid_from", None)
        plot = services.plot_create(code=props.pop("code"), producer=producer, geometry_value=geometry_value,
                                    repair_rules=repair, valid_from=valid_from, source="api",
                                    actor=request.user, **props)
        response = geojson_response(_detail_feature(request.user, plot.code), status=201)
        response["Location"] = request.build_absolute_uri(f"{request.path.rstrip('/')}/{plot.code}")
        return response


def _read_feature(data, *, geometry_required: bool):
    """(geometry value or None, validated properties) from a GeoJSON Feature body."""
    if not isinstance(data, dict) or data.get("type") != "Feature":
        raise ValidationFailed('the body must be a GeoJSON Feature: {"type": "Feature", "geometry": …, '
                               '"properties": {…}}', field="type")
    geometry_value = data.get("geometry")
    if geometry_value is None and geometry_required:
        raise ValidationFailed("geometry is required: a Polygon, MultiPolygon or (small plot) Point",
                               field="geometry")
    if isinstance(geometry_value, dict) and "crs" in data and "crs" not in geometry_value:
        geometry_value = {**geometry_value, "crs": data["crs"]}
    serializer = PlotPropertiesSerializer(data=data.get("properties") or {})
    serializer.is_valid(raise_exception=True)
    return geometry_value, dict(serializer.validated_data)


def _detail_feature(user, code: str, as_of=None) -> str:
    plot = selectors.plot_get(user=user, code=code)
    boundary = selectors.plot_boundary_as_of(plot=plot, day=as_of) if as_of else plot.boundaries.filter(
        valid_to__isnull=True).first()
    feature = json.loads(Plot.objects.values_list("feature_geojson", flat=True).get(pk=plot.pk))
    if as_of:
        text = PlotBoundary.objects.filter(pk=boundary.pk).annotate(g=Coalesce(
            geometry_json("geom"), geometry_json("location", polygon=False), output_field=TextField())
        ).values_list("g", flat=True).get()
        feature["geometry"] = json.loads(text)
    if boundary is not None:
        feature["properties"]["boundary"] = {
            "valid_from": boundary.valid_from.isoformat(),
            "valid_to": boundary.valid_to.isoformat() if boundary.valid_to else None,
            "area_ha": boundary.area_ha, "source": boundary.source, "repairs": boundary.repairs,
        }
        if as_of:
            # Everything that describes the survey comes from the version in force then.
            feature["properties"].update(as_of=as_of.isoformat(), area_ha=boundary.area_ha,
                                         survey_method=boundary.survey_method,
                                         survey_date=boundary.survey_date.isoformat() if boundary.survey_date else None,
                                         gps_accuracy_m=boundary.gps_accuracy_m)
    if plot.status == Plot.Status.RETIRED:
        feature["properties"]["retired_at"] = plot.retired_at.isoformat()
        feature["properties"]["retired_reason"] = plot.retired_reason
    return json.dumps(feature, separators=(",", ":"))


class PlotDetailView(APIView):
    @extend_schema(operation_id="plots_detail", summary="One plot as a GeoJSON Feature",
                   parameters=[OpenApiParameter("as_of", OpenApiTypes.DATE,
                                                description="the boundary in force on this day")],
                   responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def get(self, request, code: str):
        reject_unknown(request.query_params, {"as_of"})
        return geojson_response(_detail_feature(request.user, code, parse_day(request.query_params.get("as_of"), "as_of")))

    @extend_schema(summary="Change a plot: a new geometry supersedes the current boundary",
                   request=OpenApiTypes.OBJECT, responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def patch(self, request, code: str):
        plot = selectors.plot_get(user=request.user, code=code)
        geometry_value, props = _read_feature(request.data, geometry_required=False)
        if props.pop("code", plot.code) != plot.code:
            raise ValidationFailed("a plot's code cannot change", field="properties.code")
        if "producer" in props and props.pop("producer") != plot.producer.code:
            raise ValidationFailed("a plot cannot move to another producer through an update; retire it and "
                                   "register it again", field="properties.producer")
        repair = tuple(props.pop("repair", ()))
        valid_from = props.pop("valid_from", None)
        with transaction.atomic():
            if geometry_value is not None:
                # The survey fields describe the new boundary; they also go through
                # plot_update below, so they apply even when the boundary is unchanged.
                plot, _changed = services.plot_update_boundary(
                    plot=plot, geometry_value=geometry_value, repair_rules=repair, valid_from=valid_from,
                    source="api", actor=request.user, survey_method=props.get("survey_method"),
                    survey_date=props.get("survey_date"), gps_accuracy_m=props.get("gps_accuracy_m"))
            if props:
                services.plot_update(plot=plot, actor=request.user, **props)
        return geojson_response(_detail_feature(request.user, code))

    put = patch

    @extend_schema(summary="Retire a plot (its history stays)",
                   parameters=[OpenApiParameter("reason", str)],
                   responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def delete(self, request, code: str):
        reject_unknown(request.query_params, {"reason"})
        plot = selectors.plot_get(user=request.user, code=code)
        services.plot_retire(plot=plot, reason=request.query_params.get("reason", "retired through the API"),
                             actor=request.user)
        return geojson_response(_detail_feature(request.user, code))


class PlotBoundariesView(APIView):
    @extend_schema(summary="Every boundary the plot had, oldest first, as GeoJSON",
                   responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def get(self, request, code: str):
        reject_unknown(request.query_params, set())
        plot = selectors.plot_get(user=request.user, code=code)
        versions = selectors.plot_boundaries(plot=plot).annotate(
            g=Coalesce(geometry_json("geom"), geometry_json("location", polygon=False), output_field=TextField()))
        features = []
        for version in versions:  # one plot's history: a handful of rows
            props = dict(BoundaryVersionSerializer(version).data)
            props["current"] = version.valid_to is None and plot.status == Plot.Status.ACTIVE
            features.append(json.dumps({"type": "Feature", "id": version.pk,
                                        "geometry": json.loads(version.g) if version.g else None,
                                        "properties": props}, separators=(",", ":")))
        return geojson_response(feature_collection(features, extra={"plot": plot.code,
                                                                    "numberReturned": len(features)}))
