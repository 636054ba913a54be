"""/api/v1/nurseries, material-lots (with lineage), plots/{code}/genetics, stats/grafting, nursery-imports.

Views parse the query, call one selector and render. Nurseries are GeoJSON built by
PostGIS; lots, lineage and genetics are plain JSON, with the plots involved as a
GeoJSON FeatureCollection of the plots' stored Feature text. Plots the user may not
see (plots API rule) appear only as counts, never by code.
"""

from __future__ import annotations

import dataclasses
import json

from django.conf import settings
from django.db.models import F
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from api import layers
from api.geojson import FeatureText, JSONBuildObject, feature_collection, geojson_response, geometry_json
from api.params import Pagination, parse_choice, reject_unknown
from api.views.uploads import UploadView, display_name, saved, upload_request
from core import policy
from core.imports import ImportReport
from insights import grafting
from nurseries import selectors
from nurseries.imports import SHEETS, import_sheet
from nurseries.models import MaterialLot, Nursery
from plots import roles
from plots.errors import ValidationFailed
from plots.models import Plot


def nursery_features(qs):
    """``qs`` annotated with ``feature``: each nursery as GeoJSON Feature text (a point)."""
    props = JSONBuildObject(**layers.NURSERIES.feature_fields())
    return qs.annotate(feature=FeatureText(F("code"), geometry_json("location", polygon=False), props))


class NurseryListView(APIView):
    @extend_schema(operation_id="nurseries_list", summary="Nurseries as a GeoJSON FeatureCollection (points)",
                   parameters=[OpenApiParameter("kind", str, enum=[k for k, _ in Nursery.Kind.choices]),
                               OpenApiParameter("district", str), OpenApiParameter("region", str)],
                   responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def get(self, request):
        params = request.query_params
        reject_unknown(params, {"kind", "district", "region"})
        qs = selectors.nursery_list(user=request.user, kind=parse_choice(params.get("kind"), "kind",
                                                                            Nursery.Kind.choices),
                                    district=params.get("district"), region=params.get("region"))
        features = list(nursery_features(qs).values_list("feature", flat=True))
        return geojson_response(feature_collection(features, extra={"numberReturned": len(features)}))


class NurseryDetailView(APIView):
    @extend_schema(operation_id="nurseries_detail", summary="One nursery as a GeoJSON Feature, with its output",
                   responses={(200, "application/geo+json"): OpenApiTypes.OBJECT})
    def get(self, request, code: str):
        reject_unknown(request.query_params, set())
        nursery = selectors.nursery_get(user=request.user, code=code)
        feature = json.loads(nursery_features(Nursery.objects.filter(pk=nursery.pk)).values_list("feature", flat=True).get())
        output = selectors.nursery_output([nursery])[nursery.id]
        feature["properties"]["output"] = dataclasses.asdict(output)
        return geojson_response(json.dumps(feature, separators=(",", ":")))


class LotSerializer(serializers.Serializer):
    code = serializers.CharField()
    kind = serializers.CharField()
    species = serializers.CharField()
    clone = serializers.CharField(source="clone.code", default=None, allow_null=True)
    fine_flavour = serializers.BooleanField(source="clone.fine_flavour", default=None, allow_null=True)
    quantity = serializers.IntegerField()
    produced_on = serializers.DateField()
    nursery = serializers.CharField(source="nursery.code", default=None, allow_null=True)
    source_plot = serializers.SerializerMethodField()

    def get_source_plot(self, lot: MaterialLot) -> str | None:
        """The mother plot's code, when the user may see that plot."""
        visible = self.context.get("visible_plot_ids", set())
        return lot.source_plot.code if lot.source_plot_id and lot.source_plot_id in visible else None


def _visible(request, lots) -> set[int]:
    return selectors.visible_plot_ids(request.user, {lot.source_plot_id for lot in lots if lot.source_plot_id})


class MaterialLotListView(APIView):
    @extend_schema(operation_id="material_lots_list", summary="Plant-material lots you can see",
                   parameters=[OpenApiParameter("nursery", str), OpenApiParameter("clone", str),
                               OpenApiParameter("kind", str, enum=[k for k, _ in MaterialLot.Kind.choices]),
                               OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
                   responses=LotSerializer(many=True))
    def get(self, request):
        params = request.query_params
        reject_unknown(params, {"nursery", "kind", "clone", "limit", "offset"})
        qs = selectors.lot_list(user=request.user, nursery=params.get("nursery"), clone=params.get("clone"),
                                kind=parse_choice(params.get("kind"), "kind", MaterialLot.Kind.choices))
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(
            LotSerializer(page, many=True, context={"visible_plot_ids": _visible(request, page)}).data)


class MaterialLotDetailView(APIView):
    @extend_schema(operation_id="material_lots_detail", summary="One lot with its parents, children and dispatches",
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request, code: str):
        reject_unknown(request.query_params, set())
        lot = selectors.lot_get(user=request.user, code=code)
        dispatches = list(lot.dispatches.select_related("to_plot", "to_nursery").order_by("dispatched_on", "code"))
        visible = selectors.visible_plot_ids(request.user, {d.to_plot_id for d in dispatches if d.to_plot_id}
                                             | ({lot.source_plot_id} if lot.source_plot_id else set()))
        body = dict(LotSerializer(lot, context={"visible_plot_ids": visible}).data)
        body["parents"] = [{"lot": e.parent.code, "quantity": e.quantity}
                           for e in lot.parent_edges.select_related("parent").order_by("parent__code")]
        body["children"] = [{"lot": e.child.code, "quantity": e.quantity}
                            for e in lot.child_edges.select_related("child").order_by("child__code")]
        body["dispatches"] = [{
            "code": d.code, "quantity": d.quantity, "dispatched_on": d.dispatched_on.isoformat(),
            "to_plot": d.to_plot.code if d.to_plot_id in visible else None,
            "to_nursery": d.to_nursery.code if d.to_nursery_id else None} for d in dispatches]
        used = sum(e["quantity"] for e in body["children"]) + sum(d.quantity for d in dispatches)
        body["remaining"] = lot.quantity - used
        return Response(body)


def _with_plots(body: dict, plot_ids: set[int]) -> HttpResponse:
    """``body`` as JSON with a "plots" member: the plots' stored Feature text, spliced in
    unparsed (no dict per feature; a lineage can reach thousands of plots)."""
    texts = Plot.objects.filter(id__in=plot_ids).order_by("id").values_list("feature_geojson", flat=True)
    plots = feature_collection(texts, extra={"numberReturned": len(plot_ids)})
    head = json.dumps(body, separators=(",", ":"))[:-1].encode()
    return HttpResponse(head + b',"plots":' + plots + b"}", content_type="application/json")


def _node(node, plot_code: dict[int, str]) -> dict:
    return {"code": node.code, "kind": node.kind, "species": node.species, "clone": node.clone,
            "fine_flavour": node.fine_flavour, "quantity": node.quantity, "produced_on": node.produced_on,
            "nursery": node.nursery, "source_plot": plot_code.get(node.source_plot_id)}


class MaterialLotLineageView(APIView):
    @extend_schema(
        operation_id="material_lots_lineage",
        summary="The lineage of a lot: ancestors (up) or descendants and the plots they reached (down)",
        description="nodes: the lots (the lot itself included), in production order; edges: parent → child with "
        "the units drawn; reached (down only): one entry per plot with the units dispatched and grafts made from "
        "the lineage; plots: the plots involved (reached, and mother plots of budwood) that you may see, as GeoJSON.",
        parameters=[OpenApiParameter("direction", str, enum=["up", "down"], description="default down")],
        responses={200: OpenApiTypes.OBJECT})
    def get(self, request, code: str):
        reject_unknown(request.query_params, {"direction"})
        direction = parse_choice(request.query_params.get("direction"), "direction",
                                 [("up", ""), ("down", "")]) or "down"
        found = selectors.lot_lineage(user=request.user, code=code, direction=direction)
        code_of = {lot.id: lot.code for lot in found.lots}
        plot_code = dict(Plot.objects.filter(id__in=found.visible_plot_ids).values_list("id", "code"))
        return _with_plots({
            "lot": found.root.code, "direction": direction,
            "nodes": [_node(node, plot_code) for node in found.lots],
            "edges": [{"parent": code_of[e.parent_id], "child": code_of[e.child_id], "quantity": e.quantity}
                      for e in found.edges],
            "reached": [{"plot": plot_code.get(r.plot_id), "dispatched": r.dispatched, "dispatches": r.dispatches,
                         "grafts": r.grafts, "graftings": r.graftings, "lots": [code_of[i] for i in r.lot_ids],
                         "first": r.first, "last": r.last} for r in found.reached],
            "plots_involved": len(found.plot_ids),
            "plots_not_shown": len(found.plot_ids - found.visible_plot_ids),
        }, found.visible_plot_ids)


class PlotGeneticsView(APIView):
    @extend_schema(operation_id="plots_genetics",
                   summary="The genetic origin of a plot: clones, lots, nurseries and mother plots",
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request, code: str):
        reject_unknown(request.query_params, set())
        found = selectors.plot_genetics(user=request.user, code=code)
        code_of = {row.lot_id: row.lot_code for row in found.origin}
        clones: dict[str, dict] = {}

        def clone_entry(code: str, fine: bool) -> dict:
            return clones.setdefault(code, {"clone": code, "fine_flavour": fine, "grafted_ha": 0.0, "grafts": 0,
                                            "survivors": 0, "plants_received": 0})

        for g in found.graftings:
            entry = clone_entry(g.clone.code, g.clone.fine_flavour)
            entry["grafted_ha"] = round(entry["grafted_ha"] + float(g.grafted_ha), 4)
            entry["grafts"] += g.grafts
            entry["survivors"] += g.survivors or 0
        for d in found.dispatches:
            if d.lot.clone_id and d.lot.kind == MaterialLot.Kind.GRAFTED_PLANT:
                clone_entry(d.lot.clone.code, d.lot.clone.fine_flavour)["plants_received"] += d.quantity
        return Response({
            "plot": found.plot.code,
            "clones": sorted(clones.values(), key=lambda c: c["clone"]),
            "lots": [{"code": r.lot_code, "kind": r.kind, "species": r.species, "clone": r.clone,
                      "fine_flavour": r.fine_flavour, "nursery": r.nursery, "direct": r.direct,
                      "source_plot": found.mother_plots[r.source_plot_id].code
                      if r.source_plot_id in found.visible_plot_ids else None} for r in found.origin],
            "edges": [{"parent": code_of[e.parent_id], "child": code_of[e.child_id], "quantity": e.quantity}
                      for e in found.edges],
            "nurseries": sorted({r.nursery for r in found.origin if r.nursery}),
            "mother_plots": [{"code": p.code if p.id in found.visible_plot_ids else None,
                              "organization": p.organization.code} for p in found.mother_plots.values()],
            "graftings": [{"code": g.code, "grafted_on": g.grafted_on.isoformat(), "clone": g.clone.code,
                           "budwood_lot": g.budwood_lot.code if g.budwood_lot_id else None, "grafts": g.grafts,
                           "grafted_ha": float(g.grafted_ha), "survivors": g.survivors} for g in found.graftings],
            "dispatches": [{"code": d.code, "lot": d.lot.code, "quantity": d.quantity,
                            "dispatched_on": d.dispatched_on.isoformat(),
                            "nursery": d.lot.nursery.code if d.lot.nursery_id else None} for d in found.dispatches],
        })


BY = [("region", ""), ("district", ""), ("clone", ""), ("plot", "")]


class GraftingStatsView(APIView):
    @extend_schema(
        operation_id="stats_grafting",
        summary="Grafted and planted hectares by region, district, clone or plot",
        description="grafted_ha sums the graftings (4 decimals, exact); planted_ha sums the area of every plot "
        "that received rootstock seedlings or grafted plants; grafted_share = grafted_ha / planted_ha; clones: "
        "the clone mix, grafted ha by clone (not with by=clone). "
        "Cooperative users see their organization's plots; by=plot is not offered to buyers and investors, who "
        "get rows by region or district only, each a sum over privacy units of at least k producers (see "
        "/api/v1/concentration), without the clone mix.",
        parameters=[OpenApiParameter("by", str, enum=[b for b, _ in BY], description="default region")],
        responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        reject_unknown(request.query_params, {"by"})
        by = parse_choice(request.query_params.get("by"), "by", BY) or "region"
        rows = grafting.grafting_stats(user=request.user, by=by)
        kind = policy.scope(request.user, "grafting")
        protected = kind == policy.AGGREGATES  # buyers, investors: sums over privacy units
        body_rows = [{
            "key": r.key, "name": r.name, "grafted_ha": float(r.grafted_ha),
            "planted_ha": float(r.planted_ha) if r.planted_ha is not None else None,
            "grafted_share": round(r.grafted_share, 6) if r.grafted_share is not None else None,
            "graftings": r.graftings, "grafts": r.grafts, "survivors": r.survivors, "plots_grafted": r.plots_grafted,
            "plots_planted": r.plots_planted,
            "clones": {code: float(ha) for code, ha in r.clones.items()} if by != "clone" and not protected else None}
            for r in rows]
        grafted = sum((r.grafted_ha for r in rows), start=0)
        planted = sum((r.planted_ha or 0 for r in rows), start=0)
        scope = roles.organization_of(request.user).code if kind == policy.OWN else "all"
        privacy = {"k": settings.CHACRA_PRIVACY_K, "rule": "every row is a sum over privacy units of at least k "
                   "producers placed at the unit's district; no clone mix, no rows by clone"} if protected else None
        return Response({"by": by, "scope": scope, "rows": body_rows, "privacy": privacy,
                         "totals": {"grafted_ha": float(grafted), "planted_ha": float(planted) if by != "clone" else None,
                                    "graftings": sum(r.graftings for r in rows)}})


class NurserySheetImportView(UploadView):
    resource = "material_lot"
    forbidden = "your role cannot import nursery sheets"
    fields = frozenset({"sheet"})
    file_hint = "send the CSV as multipart field 'file'"
    created_only_when_changed = True

    @extend_schema(
        operation_id="nursery_imports",
        summary="Import a CSV sheet of nursery lots, dispatches or graftings",
        description="The same service as `chacra import-nursery-sheet`: one transaction, a report per row "
        "(created / updated / unchanged / refused with its reason); unless partial=true a refused row means "
        "nothing is written (400 with the report). 201 when something was written, 200 otherwise.",
        request=upload_request({"sheet": {"type": "string", "enum": list(SHEETS)}}, required=("file", "sheet")),
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT})
    def post(self, request):
        return super().post(request)

    def parse_fields(self, request, form) -> dict:
        sheet = parse_choice(form.get("sheet"), "sheet", [(s, "") for s in SHEETS])
        if sheet is None:
            raise ValidationFailed(f"sheet is required: one of {', '.join(SHEETS)}", field="sheet")
        return {"sheet": sheet}

    def run(self, request, upload, *, dry_run: bool, partial: bool, sheet: str) -> ImportReport:
        with saved(upload) as path:
            return import_sheet(sheet=sheet, path=path, actor=request.user, dry_run=dry_run, partial=partial,
                                display_name=display_name(upload))
