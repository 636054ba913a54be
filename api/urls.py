from django.urls import path

from api.views import areas, people, plots

urlpatterns = [
    path("plots", plots.PlotListView.as_view(), name="plot-list"),
    path("plots/<slug:code>", plots.PlotDetailView.as_view(), name="plot-detail"),
    path("plots/<slug:code>/boundaries", plots.PlotBoundariesView.as_view(), name="plot-boundaries"),
    path("producers", people.ProducerListView.as_view(), name="producer-list"),
    path("producers/<slug:code>", people.ProducerDetailView.as_view(), name="producer-detail"),
    path("organizations", people.OrganizationListView.as_view(), name="organization-list"),
    path("organizations/<slug:code>", people.OrganizationDetailView.as_view(), name="organization-detail"),
    path("admin-areas", areas.AdminAreaListView.as_view(), name="admin-area-list"),
    path("protected-areas", areas.ProtectedAreaListView.as_view(), name="protected-area-list"),
]
