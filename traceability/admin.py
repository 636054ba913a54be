"""Read-only admin views of the lot graph. Writes go through traceability.services
(imports, API), which check the graph rules with readable messages; an admin form
would meet the database triggers' refusals as bare errors."""

from django.contrib.gis import admin

from traceability.models import Facility, LotInput, ProcessingEvent, ProductLot, Shipment


class ReadOnlyAdmin(admin.GISModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class LotInputInline(admin.TabularInline):
    model = LotInput
    fk_name = "target"
    fields = ["kind", "source_plot", "source_lot", "kg", "factor", "date"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Facility)
class FacilityAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "kind", "organization"]
    list_filter = ["kind", "organization"]
    search_fields = ["code", "name"]


@admin.register(ProductLot)
class ProductLotAdmin(ReadOnlyAdmin):
    list_display = ["code", "form", "kg", "date", "organization", "facility"]
    list_filter = ["form", "organization"]
    search_fields = ["code"]
    inlines = [LotInputInline]


@admin.register(ProcessingEvent)
class ProcessingEventAdmin(ReadOnlyAdmin):
    list_display = ["lot", "started", "ended", "fermentation_days", "final_moisture_pct", "cut_test_grade"]


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    list_display = ["code", "seller", "buyer", "date", "container", "due_diligence_reference",
                    "geolocation_confidential"]
    list_filter = ["buyer", "geolocation_confidential"]
