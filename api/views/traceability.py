"""/api/v1/lots…: harvest lots, their origin as GeoJSON with a verdict, mass balance,
the EUDR geolocation file, and imports of the traceability records.

Buyers see only lots shipped to their organization (producer names only where no
such shipment is confidential); investors are refused; nobody gets national ids
or phones here.
"""

from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from api.geojson import feature_collection, geojson_response
from api.params import parse_choice, parse_int, reject_unknown
from api.views.uploads import UploadView, display_name, upload_request
from core import policy
from core.imports import ImportReport
from plots.errors import ValidationFailed
from traceability import eudr, selectors
from traceability.imports import KINDS, import_rows
from traceability.models import LotForm, ProductLot


def _lot_summary(lot: ProductLot) -> dict:
    return {"code": lot.code, "form": lot.form, "kg": float(lot.kg), "date": lot.date.isoformat(),
            "organization": lot.organization.code, "facility": lot.facility.code if lot.facility else None}


class LotListView(APIView):
    @extend_schema(operation_id="lots_list", summary="Harvest lots you may see",
                   description="Staff: all; a cooperative: its own; a buyer: those shipped to its organization.",
                   parameters=[OpenApiParameter("form", str, enum=LotForm.values),
                               OpenApiParameter("plot", str, description="only lots that received a harvest "
                                                "delivery from this plot (code)")],
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        reject_unknown(request.query_params, {"form", "plot"})
        form = parse_choice(request.query_params.get("form"), "form", LotForm.choices)
        lots = selectors.lot_list(user=request.user, form=form, plot=request.query_params.get("plot"))
        return Response({"lots": [_lot_summary(lot) for lot in lots]})


class LotDetailView(APIView):
    @extend_schema(operation_id="lots_detail", summary="One lot: inputs, outputs, processing, shipments",
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request, code: str):
        reject_unknown(request.query_params, set())
        lot = selectors.lot_get(user=request.user, code=code)
        # Neighbouring lots the user may not see (a buyer's upstream lots) are named
        # only by their kind and mass.
        visible = set(selectors.lot_list(user=request.user).values_list("id", flat=True))
        inputs = [{"kind": e.kind, "from_plot": e.source_plot.code if e.source_plot else None,
                   "from_lot": e.source_lot.code if e.source_lot_id in visible else None,
                   "kg": float(e.kg), "factor": float(e.factor), "date": e.date.isoformat()}
                  for e in lot.inputs.select_related("source_plot", "source_lot")]
        outputs = [{"kind": e.kind, "to_lot": e.target.code if e.target_id in visible else None,
                    "kg": float(e.kg), "date": e.date.isoformat()} for e in lot.outputs.select_related("target")]
        shipments = policy.visible(request.user, "shipment", lot.shipments.select_related("buyer"))
        processing = [{"started": p.started.isoformat(), "ended": p.ended.isoformat() if p.ended else None,
                       "fermentation_days": p.fermentation_days, "drying_days": p.drying_days,
                       "drying_method": p.drying_method,
                       "final_moisture_pct": float(p.final_moisture_pct) if p.final_moisture_pct is not None
                       else None, "cut_test_grade": p.cut_test_grade} for p in lot.processing.all()]
        return Response({**_lot_summary(lot), "inputs": inputs, "outputs": outputs, "processing": processing,
                         "shipments": [{"code": s.code, "buyer": s.buyer.code, "date": s.date.isoformat(),
                                        "container": s.container,
                                        "due_diligence_reference": s.due_diligence_reference,
                                        "geolocation_confidential": s.geolocation_confidential}
                                       for s in shipments]})


class LotOriginView(APIView):
    @extend_schema(
        operation_id="lots_origin", summary="Where the lot was grown: every plot with its share, and a verdict",
        description="A GeoJSON FeatureCollection: one Feature per contributing plot, with the boundary in force "
        "on its last delivery reaching the lot, its mass share of the lot (through merges, splits and "
        "transforms), latest check verdicts and season mass balance. Top-level `verdict` is compliant, "
        "not_compliant or incomplete, with `reasons`.",
        responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def get(self, request, code: str):
        reject_unknown(request.query_params, set())
        origin = selectors.lot_origin(user=request.user, code=code)
        body = feature_collection(origin.features, extra={
            "lot": json.loads(json.dumps(origin.summary(), default=str)), "verdict": origin.verdict,
            "reasons": origin.reasons, "producer_names_shown": origin.names_shown})
        return geojson_response(body)


class LotMassBalanceView(APIView):
    @extend_schema(operation_id="lots_mass_balance",
                   summary="Delivered dry-equivalent kg per plot and season against area × yield ceiling",
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request, code: str):
        reject_unknown(request.query_params, set())
        return Response(selectors.lot_mass_balance(user=request.user, code=code))


class LotEudrView(APIView):
    @extend_schema(
        operation_id="lots_eudr", summary="The EU due-diligence geolocation file of the lot",
        description="`form=geojson` (default): the FeatureCollection per ../shared/EUDR.md; when the lot needs "
        "more than one file (25 MB / 1,000 producers) `part` selects one and the `X-Chacra-Parts` header "
        "says how many. `form=producers`: the API form, one entry per producer with base64 GeoJSON. "
        "409 naming every plot that cannot be exported.",
        parameters=[OpenApiParameter("form", str, enum=["geojson", "producers"]),
                    OpenApiParameter("part", int)],
        responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def get(self, request, code: str):
        params = request.query_params
        reject_unknown(params, {"form", "part"})
        form = parse_choice(params.get("form"), "form", [("geojson", ""), ("producers", "")]) or "geojson"
        lot = selectors.lot_get(user=request.user, code=code)
        names = selectors.names_visible(request.user, lot)
        export = eudr.export_lot(lot, names=names)
        if form == "producers":
            confidential = lot.shipments.filter(geolocation_confidential=True).exists() or not names
            return Response(eudr.producer_payload(export.producers, confidential=confidential))
        part = parse_int(params.get("part"), "part", default=1, minimum=1, maximum=len(export.files))
        response = geojson_response(export.files[part - 1])
        response["X-Chacra-Parts"] = str(len(export.files))
        response["Content-Disposition"] = f'attachment; filename="{lot.code}-eudr-{part}.geojson"'
        return response


class TraceabilityImportView(UploadView):
    parser_classes = [MultiPartParser, JSONParser]
    resource = "product_lot"
    forbidden = "your role cannot import traceability records"
    file_hint = "send a multipart field 'file' (.csv or .json) or a JSON body"
    flags_in_query = True

    @extend_schema(
        operation_id="traceability_import",
        summary="Import facilities, lots, deliveries, transfers, processing events or shipments",
        description="multipart `file` (.csv or .json), or a JSON body (a list of rows). `dry_run` and `partial` "
        "are multipart fields as for every upload; they are also accepted as query parameters, for "
        "compatibility with earlier clients and for a JSON body (which has no fields). Answers with the "
        "per-row report.",
        parameters=[OpenApiParameter("dry_run", bool, description="also a multipart field"),
                    OpenApiParameter("partial", bool, description="also a multipart field")],
        request={**upload_request({}), "application/json": OpenApiTypes.OBJECT},
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT})
    def post(self, request, kind: str):
        return super().post(request, kind=kind)

    def check_path(self, *, kind: str) -> None:
        if kind not in KINDS:
            raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}", field="kind")

    def takes_body(self, request) -> bool:
        return request.content_type.startswith("application/json")

    def run(self, request, upload, *, dry_run: bool, partial: bool, kind: str) -> ImportReport:
        if upload is not None:
            name = display_name(upload)
            fmt, data = ("json" if name.lower().endswith(".json") else "csv"), upload.read()
        else:
            name, fmt, data = "request body", "json", json.dumps(request.data).encode()
        return import_rows(kind=kind, data=data, fmt=fmt, name=name, actor=request.user, dry_run=dry_run,
                           partial=partial)

