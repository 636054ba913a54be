"""/api/v1/rasters: the satellite tile catalog as GeoJSON, one footprint per tile."""

from __future__ import annotations

from django.db.models import F, Value
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from api.geojson import JSONBuildObject
from api.params import parse_bbox, parse_choice, reject_unknown
from api.views.areas import paged_collection, with_features
from core import policy
from screening.models import RasterTile


class RasterListView(APIView):
    @extend_schema(
        operation_id="rasters_list",
        summary="Registered satellite tiles (footprints in WGS 84) as GeoJSON",
        description="Every tile registered with `chacra load-raster`: product, version, acquisition date, CRS, "
        "grid size and resolution (in the CRS's units), band meanings. The file location is shown to staff "
        "(admin, technician) only. Visible to every authenticated role: the products are public data.",
        parameters=[OpenApiParameter("product", str, enum=RasterTile.Product.values),
                    OpenApiParameter("version", str), OpenApiParameter("bbox", str,
                                                                       description="minlon,minlat,maxlon,maxlat"),
                    OpenApiParameter("limit", int), OpenApiParameter("cursor", str)],
        responses={(200, "application/geo+json"): OpenApiTypes.OBJECT},
    )
    def get(self, request):
        p = request.query_params
        reject_unknown(p, {"product", "version", "bbox", "limit", "cursor"})
        qs = RasterTile.objects.all()
        product = parse_choice(p.get("product"), "product", RasterTile.Product.choices)
        if product:
            qs = qs.filter(product=product)
        if p.get("version"):
            qs = qs.filter(version=p["version"])
        bbox = parse_bbox(p.get("bbox"))
        if bbox is not None:
            qs = qs.filter(footprint__intersects=bbox)
        props = dict(product=F("product"), version=F("version"), acquired=F("acquired"), srid=F("srid"),
                     width=F("width"), height=F("height"), band_count=F("band_count"), dtype=F("dtype"),
                     nodata=F("nodata"), resolution_x=F("resolution_x"), resolution_y=F("resolution_y"),
                     bands=F("bands"), loaded_at=F("loaded_at"))
        # Where the files live on the servers is operational detail, not for every client.
        props["path"] = F("path") if policy.may_read(request.user, "raster_path") else Value(None)
        # The shared GeoJSON pager renders the column named ``geom``: the footprint here.
        return paged_collection(request, with_features(qs, "id", JSONBuildObject(**props), geom="footprint"))
