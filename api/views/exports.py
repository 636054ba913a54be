"""/api/v1/exports/{layer}: a layer as a file (api.exports).

Besides the file, the answer says what the file leaves out (api.exports):

    X-Chacra-Features               features written (every layer of the file)
    X-Chacra-Dropped-Parts          line/point parts dropped so that areas are written as polygons only (0: none)
    X-Chacra-Dropped-Parts-Detail   which features, what parts (ASCII: accents dropped)
    X-Chacra-Point-Plots            plots export only: the plots in the plot-points export
    X-Chacra-Note                   a sentence for the user (point plots not in a single-layer file)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.http import FileResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from api import exports
from api.params import parse_bbox, reject_unknown
from plots.errors import ValidationFailed

RESPONSE_HEADERS = [
    OpenApiParameter("X-Chacra-Features", int, OpenApiParameter.HEADER, response=[200],
                     description="features written, in every layer of the file"),
    OpenApiParameter("X-Chacra-Dropped-Parts", int, OpenApiParameter.HEADER, response=[200],
                     description="line or point parts dropped so that every area is written as a (multi)polygon "
                                 f"on the {exports.GRID:g}-degree grid (0: none)"),
    OpenApiParameter("X-Chacra-Dropped-Parts-Detail", str, OpenApiParameter.HEADER, response=[200],
                     description="the features whose parts were dropped, and what parts (only when some were)"),
    OpenApiParameter("X-Chacra-Point-Plots", int, OpenApiParameter.HEADER, response=[200],
                     description="plots export only: how many plots are surveyed as a point (the plot-points "
                                 "export; in gpkg and shp also the file's plot_points layer)"),
    OpenApiParameter("X-Chacra-Note", str, OpenApiParameter.HEADER, response=[200],
                     description="what the file leaves out, in a sentence (only when it does)"),
]


class ExportView(APIView):
    @extend_schema(
        summary="A layer as GeoJSON, GeoPackage, zipped Shapefile, KML or zipped CSV (written by GDAL)",
        description="Layers: plots (polygons), plot-points (plots surveyed as a point), protected-areas, "
                    "districts. One geometry type per layer; a gpkg or shp plots export also holds the "
                    "plot_points layer. format=csv answers a zip: the .csv (WKT geometry), its .csvt (column "
                    "types) and .prj (EPSG:4326).",
        parameters=[OpenApiParameter("format", str, enum=list(exports.FORMATS), required=True),
                    OpenApiParameter("bbox", str, description="minlon,minlat,maxlon,maxlat (WGS 84)"),
                    *RESPONSE_HEADERS],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, layer: str):
        p = request.query_params
        reject_unknown(p, {"format", "bbox"})
        fmt = p.get("format")
        if not fmt:
            raise ValidationFailed(f"format is required: one of {', '.join(exports.FORMATS)}", field="format")
        if fmt not in exports.FORMATS:
            raise ValidationFailed(f"format must be one of {', '.join(exports.FORMATS)} (got {fmt!r})", field="format")
        bbox = parse_bbox(p.get("bbox"))
        spec = exports.FORMATS[fmt]
        folder = tempfile.TemporaryDirectory(prefix="chacra-export-")
        try:
            out = Path(folder.name) / f"{layer}{spec.suffix}"
            exported = exports.write(layer, fmt, request.user, out, bbox=bbox)
            handle = open(out, "rb")  # noqa: SIM115 - FileResponse closes it
            response = TemporaryFileResponse(
                handle, folder=folder, content_type=spec.content_type, as_attachment=True,
                filename=f"chacra-{layer}-{timezone.localdate().isoformat()}{spec.suffix}")
            for name, value in headers(exported).items():
                response[name] = value
            return response
        except BaseException:
            folder.cleanup()
            raise


def headers(exported: exports.Exported) -> dict[str, str]:
    out = {"X-Chacra-Features": str(exported.features), "X-Chacra-Dropped-Parts": str(exported.dropped_parts)}
    if exported.dropped:
        out["X-Chacra-Dropped-Parts-Detail"] = exports.ascii_header(exported.dropped_sentence(limit=10))
    if exported.point_plots is not None:
        out["X-Chacra-Point-Plots"] = str(exported.point_plots)
    if exported.notes:
        out["X-Chacra-Note"] = exports.ascii_header(" ".join(exported.notes))
    return out


class TemporaryFileResponse(FileResponse):
    """A file response that removes its temporary folder when the response ends.

    The WSGI server calls close() once the last byte is sent or the client went
    away; the folder goes then, not whenever the response object happens to be
    garbage-collected (50 exports used to leave 12 folders, 49 MB, behind)."""

    def __init__(self, *args, folder: tempfile.TemporaryDirectory, **kwargs):
        super().__init__(*args, **kwargs)
        self._folder = folder

    def close(self):
        try:
            super().close()
        finally:
            self._folder.cleanup()
