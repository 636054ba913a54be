from django.db import models


class CheckResult(models.Model):
    """One verdict about one plot, with the inputs it was computed from."""

    class Kind(models.TextChoices):
        PROTECTED_AREA = "protected_area_overlap", "Protected-area overlap"
        PLOT_OVERLAP = "plot_overlap", "Plot–plot overlap"
        GEOMETRY_QUALITY = "geometry_quality", "Geometry quality"
        AREA_DISCREPANCY = "area_discrepancy", "Declared vs measured area"
        DISTRICT = "district_assignment", "District assignment"
        DEFORESTATION = "deforestation", "Deforestation after cut-off"

    class Outcome(models.TextChoices):
        PASS = "pass", "Pass"
        WARNING = "warning", "Warning"
        BUFFER_ZONE = "buffer_zone", "Inside a buffer zone only"
        FAIL = "fail", "Fail"
        INSUFFICIENT_DATA = "insufficient_data", "Insufficient data"

    # No index of its own: the (plot, kind, -checked_at) index below leads with plot.
    plot = models.ForeignKey("plots.Plot", on_delete=models.CASCADE, related_name="checks", db_index=False)
    boundary = models.ForeignKey("plots.PlotBoundary", null=True, blank=True, on_delete=models.SET_NULL,
                                 help_text="The boundary version that was checked.")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    figures = models.JSONField(default=dict, blank=True, help_text="Measured values, e.g. overlap hectares.")
    datasets = models.JSONField(default=dict, blank=True, help_text="Dataset editions used, by name.")
    method_version = models.CharField(max_length=40)
    checked_at = models.DateTimeField(auto_now_add=True)
    # The newest result per (plot, kind) is the one in force; older ones are history.

    class Meta:
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["plot", "kind", "-checked_at"])]

    def __str__(self) -> str:
        return f"{self.plot_id} {self.kind}: {self.outcome}"


class LatestCheck(models.Model):
    """The result in force per plot and kind (the view plots_latest_check, migration
    0013: newest checked_at, then highest id). Read-only; for one plot from SQL, the
    function chacra_latest_check(plot, kind) gives the same row by an index probe."""

    plot = models.ForeignKey("plots.Plot", on_delete=models.DO_NOTHING, related_name="+")
    boundary = models.ForeignKey("plots.PlotBoundary", null=True, on_delete=models.DO_NOTHING, related_name="+")
    kind = models.CharField(max_length=30, choices=CheckResult.Kind.choices)
    outcome = models.CharField(max_length=20, choices=CheckResult.Outcome.choices)
    figures = models.JSONField(default=dict)
    datasets = models.JSONField(default=dict)
    method_version = models.CharField(max_length=40)
    checked_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "plots_latest_check"
