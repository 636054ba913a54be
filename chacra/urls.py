from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api import tiles
from api.ogc import LandingView
from chacra import webmap

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file (no inline script
    # under the Content-Security-Policy); our template has no inline style either.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="chacra/swagger_ui.html"),
         name="docs"),
    path("api/v1/", include("api.urls")),
    path("ogc", LandingView.as_view()),
    path("ogc/", include("api.ogc_urls")),
    path("map/", webmap.map_page, name="map"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("tiles/<str:layer>.json", tiles.TileJSONView.as_view(), name="tilejson"),
    # z/x/y as text: tiles.parse_zxy answers a 400 naming the bad one (a negative or
    # fractional number would otherwise be a bare 404).
    path("tiles/<str:layer>/<str:z>/<str:x>/<str:y>.mvt", tiles.TileView.as_view(), name="tile"),
]

handler400 = "api.errors.handler400"
handler403 = "api.errors.handler403"
handler404 = "api.errors.handler404"
handler500 = "api.errors.handler500"
