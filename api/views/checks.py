"""/api/v1/plots/{code}/checks: the plot's check results, latest per kind or the whole history."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from api.params import parse_choice, reject_unknown
from plots import selectors
from plots.checks import METHOD_VERSION
from plots.models import CheckResult


class CheckResultSerializer(serializers.Serializer):
    kind = serializers.CharField()
    outcome = serializers.CharField()
    figures = serializers.JSONField()
    datasets = serializers.JSONField()
    method_version = serializers.CharField()
    checked_at = serializers.DateTimeField()
    boundary = serializers.SerializerMethodField()

    def get_boundary(self, result) -> dict | None:
        """The boundary version that was judged, and whether it is still the plot's current one."""
        boundary = result.boundary
        if boundary is None:
            return None
        return {"valid_from": boundary.valid_from.isoformat(),
                "valid_to": boundary.valid_to.isoformat() if boundary.valid_to else None,
                "current": boundary.valid_to is None}


BOOL = [("true", ""), ("false", "")]


class PlotChecksView(APIView):
    @extend_schema(
        operation_id="plots_checks",
        summary="The plot's check results",
        description="By default the latest result of each kind (protected_area_overlap, plot_overlap, "
        "district_assignment, area_discrepancy …), ordered by kind; with `history=true` every stored result, "
        "newest first (a result is stored only when it changed). Visible to whoever may see the plot.",
        parameters=[OpenApiParameter("history", bool, description="every result, not just the latest per kind"),
                    OpenApiParameter("kind", str, enum=[k for k, _ in CheckResult.Kind.choices])],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, code: str):
        params = request.query_params
        reject_unknown(params, {"history", "kind"})
        history = parse_choice(params.get("history"), "history", BOOL) == "true"
        kind = parse_choice(params.get("kind"), "kind", CheckResult.Kind.choices)
        plot, results = selectors.plot_check_results(user=request.user, code=code, history=history, kind=kind)
        return Response({
            "plot": plot.code, "history": history, "method_version": METHOD_VERSION,
            "results": CheckResultSerializer(results, many=True).data,
        })
