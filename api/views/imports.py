"""POST /api/v1/imports: a plot file uploaded and imported by the same service as
`chacra import-plots`, answered with the per-feature report (the upload itself:
api/views/uploads.py)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema

from api.params import parse_int
from api.views.uploads import UploadView, display_name, saved, upload_request
from core import policy
from core.imports import ImportReport, parse_bool
from plots.errors import Forbidden, ValidationFailed
from plots.import_rules import COUNTRY_BOUNDS, DEFAULT_REPAIRS
from plots.importers import registry
from plots.imports import import_plots
from plots.models import Organization


class ImportView(UploadView):
    resource = "plot"
    forbidden = "your role cannot import plots"
    fields = frozenset({"format", "crs", "organization", "country", "repair"})

    @extend_schema(
        summary="Import plots from an uploaded file (GPX, KML/KMZ, GeoJSON, GeoPackage, zipped Shapefile, CSV, ODK)",
        request=upload_request({
            "format": {"type": "string", "description": "gpx, kml, kmz, geojson, gpkg, shapefile, csv, odk"},
            "crs": {"type": "integer"}, "organization": {"type": "string"}, "country": {"type": "string"},
            "repair": {"type": "boolean", "default": True}}),
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        return super().post(request)

    def parse_fields(self, request, form) -> dict:
        fmt = form.get("format") or None
        if fmt and fmt not in registry.names():
            raise ValidationFailed(f"format must be one of {', '.join(registry.names())}", field="format")
        crs = parse_int(form.get("crs") or None, "crs", minimum=1024, maximum=999_999)  # EPSG codes, e.g. 32718
        country = (form.get("country") or "PE").upper()
        if country != "NONE" and country not in COUNTRY_BOUNDS:
            raise ValidationFailed(f"country must be one of {', '.join(COUNTRY_BOUNDS)} or none", field="country")
        organization = self._organization(request, form.get("organization"))
        repair = parse_bool(form.get("repair", "true"), "repair")
        return {"fmt": fmt, "srid": crs, "organization": organization,
                "country": None if country == "NONE" else country, "repair_rules": DEFAULT_REPAIRS if repair else ()}

    def run(self, request, upload, *, dry_run: bool, partial: bool, **options) -> ImportReport:
        with saved(upload) as path:
            return import_plots(path=path, actor=request.user, dry_run=dry_run, partial=partial,
                                display_name=display_name(upload), **options)

    def _organization(self, request, code: str | None):
        if policy.write_scope(request.user, "plot") == policy.OWN:  # it writes for its organization only
            own = Organization.objects.get(pk=policy.organization_id_of(request.user))
            if code and code != own.code:
                raise Forbidden("a cooperative user imports only for its own organization")
            return own
        if not code:
            return None
        org = Organization.objects.filter(code=code).first()
        if org is None:
            raise ValidationFailed(f"organization {code!r} does not exist", field="organization")
        return org
