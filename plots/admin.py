from django.contrib.gis import admin

from plots.models import AdminArea, CheckResult, Organization, Plot, PlotBoundary, Producer, ProtectedArea, UserProfile


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind"]
    search_fields = ["code", "name"]


@admin.register(Producer)
class ProducerAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "gender", "organization"]
    list_filter = ["gender", "organization"]
    search_fields = ["code", "name"]


class PlotBoundaryInline(admin.TabularInline):
    model = PlotBoundary
    fields = ["valid_from", "valid_to", "area_ha", "source", "survey_method"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Plot)
class PlotAdmin(admin.GISModelAdmin):
    list_display = ["code", "producer", "organization", "area_ha", "declared_area_ha", "district", "status"]
    list_filter = ["status", "organization", "survey_method"]
    search_fields = ["code", "producer__name"]
    readonly_fields = ["area_ha", "declared_area_ha", "boundary", "location"]
    raw_id_fields = ["producer", "district"]
    inlines = [PlotBoundaryInline]


@admin.register(AdminArea)
class AdminAreaAdmin(admin.GISModelAdmin):
    list_display = ["ubigeo", "name", "level", "edition", "synthetic"]
    list_filter = ["level", "edition"]
    search_fields = ["ubigeo", "name"]


@admin.register(ProtectedArea)
class ProtectedAreaAdmin(admin.GISModelAdmin):
    list_display = ["name", "category", "official_code", "edition", "synthetic"]
    list_filter = ["category"]
    search_fields = ["name", "official_code"]


admin.site.register(CheckResult)
admin.site.register(UserProfile)
