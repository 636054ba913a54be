from django.contrib.gis.db import models


class GpsTrack(models.Model):
    """The raw walked track a boundary was derived from, kept as recorded.

    ``vertices`` holds every recorded point in order as [lon, lat, time or null,
    accuracy in metres or null] (segments are separate lists), so the survey can
    be re-derived or audited later; ``geom`` is the same track for spatial use.
    """

    plot = models.ForeignKey("plots.Plot", null=True, blank=True, on_delete=models.PROTECT, related_name="tracks")
    boundary = models.OneToOneField("plots.PlotBoundary", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="track")
    source = models.CharField(max_length=300, help_text="File name and track/feature within it.")
    geom = models.MultiLineStringField(srid=4326)
    vertices = models.JSONField(help_text="Segments of [lon, lat, time|null, accuracy_m|null].")
    recorded_from = models.DateTimeField(null=True, blank=True)
    recorded_to = models.DateTimeField(null=True, blank=True)
    quality = models.JSONField(default=dict, blank=True,
                               help_text="Points, closure gap, vertices removed, accuracy, implausible timestamps.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.source
