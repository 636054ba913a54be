"""Routes of OGC API – Features (api.ogc), mounted at /ogc/. Paths answer with and
without a trailing slash: GDAL, QGIS and OWSLib each build URLs their own way."""

from django.urls import path

from api import ogc

_routes = [
    ("", ogc.LandingView, "ogc-landing"),
    ("conformance", ogc.ConformanceView, "ogc-conformance"),
    ("api", ogc.ApiDefinitionView, "ogc-api"),
    ("collections", ogc.CollectionsView, "ogc-collections"),
    ("collections/<str:collection_id>", ogc.CollectionView, "ogc-collection"),
    ("collections/<str:collection_id>/items", ogc.ItemsView, "ogc-items"),
    ("collections/<str:collection_id>/items/<str:feature_id>", ogc.ItemView, "ogc-item"),
    ("collections/<str:collection_id>/queryables", ogc.QueryablesView, "ogc-queryables"),
]

urlpatterns = [path(route, view.as_view(), name=name) for route, view, name in _routes]
urlpatterns += [path(f"{route}/", view.as_view()) for route, view, _ in _routes if route]
