from django.urls import path

from api.views import areas, checks, concentration, exports, imports, people, plots, qgis
from api.views import nurseries
from api.views import traceability
from api.views import rasters

_routes = [
    ("plots", plots.PlotListView, "plot-list"),
    ("plots/<slug:code>", plots.PlotDetailView, "plot-detail"),
    ("plots/<slug:code>/boundaries", plots.PlotBoundariesView, "plot-boundaries"),
    ("plots/<slug:code>/checks", checks.PlotChecksView, "plot-checks"),
    ("producers", people.ProducerListView, "producer-list"),
    ("producers/<slug:code>", people.ProducerDetailView, "producer-detail"),
    ("organizations", people.OrganizationListView, "organization-list"),
    ("organizations/<slug:code>", people.OrganizationDetailView, "organization-detail"),
    ("admin-areas", areas.AdminAreaListView, "admin-area-list"),
    ("protected-areas", areas.ProtectedAreaListView, "protected-area-list"),
    ("rasters", rasters.RasterListView, "raster-list"),
    ("imports", imports.ImportView, "imports"),
    ("exports/<slug:layer>", exports.ExportView, "exports"),
    ("concentration", concentration.ConcentrationView, "concentration"),
    ("concentration.png", concentration.ConcentrationPngView, "concentration-png"),
    ("site-suggestions", concentration.SiteSuggestionsView, "site-suggestions"),
    ("nurseries", nurseries.NurseryListView, "nursery-list"),
    ("nurseries/<slug:code>", nurseries.NurseryDetailView, "nursery-detail"),
    ("material-lots", nurseries.MaterialLotListView, "material-lot-list"),
    ("material-lots/<slug:code>", nurseries.MaterialLotDetailView, "material-lot-detail"),
    ("material-lots/<slug:code>/lineage", nurseries.MaterialLotLineageView, "material-lot-lineage"),
    ("plots/<slug:code>/genetics", nurseries.PlotGeneticsView, "plot-genetics"),
    ("stats/grafting", nurseries.GraftingStatsView, "stats-grafting"),
    ("nursery-imports", nurseries.NurserySheetImportView, "nursery-imports"),
    ("lots", traceability.LotListView, "lot-list"),
    ("lots/<slug:code>", traceability.LotDetailView, "lot-detail"),
    ("lots/<slug:code>/origin", traceability.LotOriginView, "lot-origin"),
    ("lots/<slug:code>/mass-balance", traceability.LotMassBalanceView, "lot-mass-balance"),
    ("lots/<slug:code>/eudr.geojson", traceability.LotEudrView, "lot-eudr"),
    ("traceability/imports/<slug:kind>", traceability.TraceabilityImportView, "traceability-import"),
    ("qgis-project", qgis.QgisProjectView, "qgis-project"),
]

# Canonical paths have no trailing slash; clients that add one (QGIS users, curl
# habits) get the same view rather than a 404. The schema lists only the canonical
# form (api.schema.drop_trailing_slash_duplicates).
urlpatterns = [path(route, view.as_view(), name=name) for route, view, name in _routes]
urlpatterns += [path(f"{route}/", view.as_view()) for route, view, _ in _routes]
