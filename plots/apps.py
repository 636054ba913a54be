from django.apps import AppConfig


class PlotsConfig(AppConfig):
    name = "plots"
    verbose_name = "Plots and producers"
    default_auto_field = "django.db.models.BigAutoField"
