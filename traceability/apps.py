from django.apps import AppConfig


class TraceabilityConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "traceability"
    verbose_name = "Harvest lots and traceability"
