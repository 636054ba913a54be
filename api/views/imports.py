"""POST /api/v1/imports: a plot file uploaded and imported by the same service as
`chacra import-plots`, answered with the per-feature report."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import error_body
from api.params import parse_int
from plots import roles
from plots.errors import Forbidden, ValidationFailed
from plots.importers import registry
from plots.imports import COUNTRY_BOUNDS, DEFAULT_REPAIRS, ImportRefused, import_plots
from plots.models import Organization

FIELDS = {"file", "format", "crs", "organization", "dry_run", "partial", "country", "repair"}


def _flag(data, name: str) -> bool:
    value = str(data.get(name, "false")).strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", ""):
        raise ValidationFailed(f"{name} must be true or false", field=name)
    return value in ("true", "1", "yes")


# What a multipart body adds around the file (boundaries, part headers, the form's
# small fields): a body larger than the limit by more than this cannot hold a file
# within it.
MULTIPART_OVERHEAD = 64 * 1024


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def _too_large(what: str, size: int) -> Response:
    message = f"{what} is {_size(size)}; the limit is {_size(settings.CHACRA_MAX_IMPORT_BYTES)}"
    return Response(error_body(413, "too_large", message), status=413)


def refuse_large_body(request) -> Response | None:
    """413 judged from Content-Length alone, before the body is read, parsed or
    spooled to disk (the request's transaction is then still empty)."""
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0
    if size > settings.CHACRA_MAX_IMPORT_BYTES + MULTIPART_OVERHEAD:
        return _too_large("the upload", size)
    return None


def refuse_large_file(upload) -> Response | None:
    """413 for a file over the limit, by its size as received (the body check allows
    for the multipart overhead)."""
    if upload.size > settings.CHACRA_MAX_IMPORT_BYTES:
        return _too_large(Path(upload.name).name, upload.size)
    return None


class ImportView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Import plots from an uploaded file (GPX, KML/KMZ, GeoJSON, GeoPackage, zipped Shapefile, CSV, ODK)",
        request={"multipart/form-data": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"},
            "format": {"type": "string", "description": "gpx, kml, kmz, geojson, gpkg, shapefile, csv, odk"},
            "crs": {"type": "integer"}, "organization": {"type": "string"},
            "dry_run": {"type": "boolean"}, "partial": {"type": "boolean"}, "country": {"type": "string"},
            "repair": {"type": "boolean", "default": True}}, "required": ["file"]}},
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        if not roles.can_write_at_all(request.user):
            raise Forbidden("your role cannot import plots")
        refused = refuse_large_body(request)
        if refused is not None:
            return refused
        data = request.data
        unknown = sorted(set(data) - FIELDS)
        if unknown:
            raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}; send: {', '.join(sorted(FIELDS))}")
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed("send the file as multipart field 'file'", field="file")
        refused = refuse_large_file(upload)
        if refused is not None:
            return refused
        fmt = data.get("format") or None
        if fmt and fmt not in registry.names():
            raise ValidationFailed(f"format must be one of {', '.join(registry.names())}", field="format")
        crs = parse_int(data.get("crs") or None, "crs", minimum=1024, maximum=999_999)  # EPSG codes, e.g. 32718
        country = (data.get("country") or "PE").upper()
        if country != "NONE" and country not in COUNTRY_BOUNDS:
            raise ValidationFailed(f"country must be one of {', '.join(COUNTRY_BOUNDS)} or none", field="country")
        organization = self._organization(request, data.get("organization"))
        name = Path(upload.name).name
        suffix = "".join(Path(name).suffixes[-2:])[-20:]
        with tempfile.TemporaryDirectory(prefix="chacra-upload-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            with path.open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            try:
                report = import_plots(
                    path=path, fmt=fmt, srid=crs, organization=organization,
                    actor=request.user, dry_run=_flag(data, "dry_run"), partial=_flag(data, "partial"),
                    country=None if country == "NONE" else country, display_name=name,
                    repair_rules=DEFAULT_REPAIRS if _flag({"r": data.get("repair", "true")}, "r") else ())
            except ImportRefused as exc:
                body = error_body(400, exc.code, exc.message)
                body["error"]["report"] = exc.report.as_dict()
                return Response(body, status=400)
        return Response(report.as_dict(), status=201 if report.written else 200)

    def _organization(self, request, code: str | None):
        if roles.role_of(request.user) == roles.Role.COOPERATIVE:
            own = roles.organization_of(request.user)
            if code and code != own.code:
                raise Forbidden("a cooperative user imports only for its own organization")
            return own
        if not code:
            return None
        org = Organization.objects.filter(code=code).first()
        if org is None:
            raise ValidationFailed(f"organization {code!r} does not exist", field="organization")
        return org
