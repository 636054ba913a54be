from django.apps import AppConfig


class NurseriesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "nurseries"
    verbose_name = "Nurseries, grafting and plant-material lineage"

    def ready(self) -> None:
        # The access policy's filters for this app's rows (core.policy): before any request.
        from nurseries import access

        access.register()
