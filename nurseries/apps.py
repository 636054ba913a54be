from django.apps import AppConfig


class NurseriesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "nurseries"
    verbose_name = "Nurseries, grafting and plant-material lineage"
