"""/api/v1/qgis-project: Chacra as a QGIS project (api.qgis_project)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from api import qgis_project
from api.params import reject_unknown
from core import policy
from plots.errors import Forbidden


class QgisProjectView(APIView):
    @extend_schema(
        summary="A QGIS project (.qgz) with the layers your role may read, styled like the web map",
        description=(
            "The vector tile layers (plots coloured by their latest verdicts, protected areas hatched, districts "
            "outlined) and every OGC API Features collection your role may read, each on this server. Every layer "
            f"signs in with the QGIS authentication configuration whose Id is `{qgis_project.AUTHCFG}`: create it "
            "once in QGIS (Settings > Options > Authentication: method Basic authentication, your user name, your "
            f"API token as the password; unlock the Id with the padlock and type `{qgis_project.AUTHCFG}`). The "
            "file holds no credential."),
        responses={(200, qgis_project.CONTENT_TYPE): OpenApiTypes.BINARY})
    def get(self, request):
        reject_unknown(request.query_params, set())
        if not policy.has_role(request.user):
            raise Forbidden("your account has no Chacra role: ask an administrator for one")
        body = qgis_project.project_qgz(request.user, request.build_absolute_uri("/"))
        response = HttpResponse(body, content_type=qgis_project.CONTENT_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{qgis_project.FILENAME}"'
        # The layer list depends on the role (and the sources on the host asked).
        response["Cache-Control"] = "private, no-store"
        return response
