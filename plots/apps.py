from django.apps import AppConfig


class PlotsConfig(AppConfig):
    name = "plots"
    verbose_name = "Plots and producers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The access policy's filters for this app's rows (core.policy): before any request.
        from plots import access

        access.register()
