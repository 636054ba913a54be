from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api import tiles
from api.ogc import LandingView
from chacra import webmap

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include("api.urls")),
    path("ogc", LandingView.as_view()),
    path("ogc/", include("api.ogc_urls")),
    path("map/", webmap.map_page, name="map"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("tiles/<str:layer>.json", tiles.TileJSONView.as_view(), name="tilejson"),
    path("tiles/<str:layer>/<int:z>/<int:x>/<int:y>.mvt", tiles.TileView.as_view(), name="tile"),
]

handler400 = "api.errors.handler400"
handler403 = "api.errors.handler403"
handler404 = "api.errors.handler404"
handler500 = "api.errors.handler500"
