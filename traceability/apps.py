from django.apps import AppConfig


class TraceabilityConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "traceability"
    verbose_name = "Harvest lots and traceability"

    def ready(self) -> None:
        # The access policy's filters for this app's rows (core.policy): before any request.
        from traceability import access

        access.register()
