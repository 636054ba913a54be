from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Case, F, Q, Value, When

from core.units import AREA_UNIT_SQUARE_METRES, HECTARE_M2
from plots.models.expressions import GeodesicAreaHa
from plots.querysets import PlotQuerySet


class AreaUnit(models.TextChoices):
    """Units farmers declare areas in, with their size in square metres."""

    HECTARE = "ha", "hectare"
    SQUARE_METRE = "m2", "square metre"
    YUGADA = "yugada", f"yugada ({AREA_UNIT_SQUARE_METRES['yugada']:,.0f} m²)"
    TOPO = "topo", f"topo ({AREA_UNIT_SQUARE_METRES['topo']:,.0f} m²)"

    @property
    def square_metres(self) -> float:
        return UNIT_SQUARE_METRES[self]


UNIT_SQUARE_METRES = {unit: AREA_UNIT_SQUARE_METRES[unit.value] for unit in AreaUnit}


def declared_area_ha_expression():
    # Built from UNIT_SQUARE_METRES so the database and Python share one table.
    return Case(
        *[When(declared_area_unit=unit.value, then=F("declared_area") * Value(m2 / HECTARE_M2))
          for unit, m2 in UNIT_SQUARE_METRES.items()],
        default=None,
        output_field=models.FloatField(),
    )


class SurveyMethod(models.TextChoices):
    GPS_WALKED = "gps_walked", "GPS track walked along the perimeter"
    GPS_POINT = "gps_point", "GPS point (small plot)"
    IMAGERY = "imagery", "Drawn on satellite imagery"
    TOTAL_STATION = "total_station", "Total station / cadastral survey"
    MOBILE_APP = "mobile_app", "Mobile form geoshape (ODK/Kobo)"
    UNKNOWN = "unknown", "Unknown"


class Plot(models.Model):
    class Tenure(models.TextChoices):
        TITLED = "titled", "Registered title"
        POSSESSION = "possession", "Certificate of possession"
        COMMUNAL = "communal", "Communal land"
        RENTED = "rented", "Rented"
        INFORMAL = "informal", "Informal / none"
        UNKNOWN = "unknown", "Unknown"

    class Agroforestry(models.TextChoices):
        FULL_SUN = "full_sun", "Full sun (no shade)"
        TEMPORARY_SHADE = "temporary_shade", "Temporary shade (plantain)"
        PERMANENT_SHADE = "permanent_shade", "Permanent shade trees (Bolaina, Capirona …)"
        MULTISTRATA = "multistrata", "Multistrata agroforest"
        UNKNOWN = "unknown", "Unknown"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    code = models.SlugField(max_length=60, unique=True)
    producer = models.ForeignKey("plots.Producer", on_delete=models.PROTECT, related_name="plots")
    # Denormalised from the producer: every per-cooperative query filters on it,
    # and it is the distribution key when plots are sharded (DESIGN.md, Scale-out).
    organization = models.ForeignKey("plots.Organization", on_delete=models.PROTECT, related_name="plots")
    boundary = models.MultiPolygonField(srid=4326, null=True, blank=True)
    location = models.PointField(srid=4326, null=True, blank=True,
                                 help_text="For a small plot surveyed as a single point.")
    area_ha = models.GeneratedField(expression=GeodesicAreaHa("boundary"), output_field=models.FloatField(),
                                    db_persist=True, verbose_name="geodesic area (ha)")
    declared_area = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    declared_area_unit = models.CharField(max_length=8, choices=AreaUnit.choices, default=AreaUnit.HECTARE)
    declared_area_ha = models.GeneratedField(expression=declared_area_ha_expression(),
                                             output_field=models.FloatField(), db_persist=True)
    tenure = models.CharField(max_length=12, choices=Tenure.choices, default=Tenure.UNKNOWN)
    planting_year = models.PositiveSmallIntegerField(null=True, blank=True,
                                                     validators=[MinValueValidator(1900), MaxValueValidator(2100)])
    agroforestry_system = models.CharField(max_length=20, choices=Agroforestry.choices, default=Agroforestry.UNKNOWN)
    shade_species = ArrayField(models.CharField(max_length=60), default=list, blank=True)
    survey_method = models.CharField(max_length=16, choices=SurveyMethod.choices, default=SurveyMethod.UNKNOWN)
    survey_date = models.DateField(null=True, blank=True)
    gps_accuracy_m = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    district = models.ForeignKey("plots.AdminArea", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="plots", limit_choices_to={"level": "district"})
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    # The plot as a ready-made RFC 7946 GeoJSON Feature, written by a database
    # trigger on every change (plots/migrations/0003). Lists stream this text as it
    # is: building it per request costs PostgreSQL 3× a plain COPY of the table.
    feature_geojson = models.TextField(null=True, editable=False)
    # The H3 cell (resolution 9, as its 64-bit integer) holding the plot's point on
    # surface, for the investors' concentration grid; coarser cells are bit
    # arithmetic on it (chacra_h3_parent). Set by every write path (plots.h3cells);
    # a trigger clears it when the geometry changes without it, and ``chacra check``
    # (plots.h3cells.refresh) fills cleared cells; reads never write it.
    h3_cell = models.BigIntegerField(null=True, blank=True, editable=False, db_index=True)

    objects = PlotQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["organization", "id"]), models.Index(fields=["producer"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(boundary__isnull=False) | Q(location__isnull=False),
                name="plot_has_boundary_or_location",
            ),
            models.CheckConstraint(condition=Q(boundary__isnull=True) | Q(boundary__isvalid=True),
                                   name="plot_boundary_valid"),
            models.CheckConstraint(condition=Q(declared_area__isnull=True) | Q(declared_area__gte=0),
                                   name="plot_declared_area_non_negative"),
            models.CheckConstraint(condition=Q(gps_accuracy_m__isnull=True) | Q(gps_accuracy_m__gte=0),
                                   name="plot_gps_accuracy_non_negative"),
            models.CheckConstraint(
                condition=Q(planting_year__isnull=True) | Q(planting_year__gte=1900, planting_year__lte=2100),
                name="plot_planting_year_plausible"),
            models.CheckConstraint(condition=Q(status="active", retired_at__isnull=True)
                                   | Q(status="retired", retired_at__isnull=False),
                                   name="plot_retired_has_date"),
        ]

    def __str__(self) -> str:
        return self.code



class PlotBoundary(models.Model):
    """Every boundary a plot ever had. A new survey supersedes; nothing is overwritten.

    The version in force on day D has ``valid_from <= D`` and ``valid_to`` null or
    after D. A version superseded on the day it started has valid_from == valid_to
    and is never in force, but stays in the history.
    """

    plot = models.ForeignKey(Plot, on_delete=models.PROTECT, related_name="boundaries")
    geom = models.MultiPolygonField(srid=4326, null=True, blank=True)
    location = models.PointField(srid=4326, null=True, blank=True)
    area_ha = models.GeneratedField(expression=GeodesicAreaHa("geom"), output_field=models.FloatField(),
                                    db_persist=True)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    source = models.CharField(max_length=200, help_text="Where it came from: API, file name, demo …")
    survey_method = models.CharField(max_length=16, choices=SurveyMethod.choices, default=SurveyMethod.UNKNOWN)
    survey_date = models.DateField(null=True, blank=True)
    gps_accuracy_m = models.FloatField(null=True, blank=True)
    repairs = models.JSONField(default=list, blank=True, help_text="Named repair rules applied on import.")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plot", "valid_from", "id"]
        constraints = [
            models.UniqueConstraint(fields=["plot"], condition=Q(valid_to__isnull=True),
                                    name="plotboundary_one_current_per_plot"),
            models.CheckConstraint(condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")),
                                   name="plotboundary_valid_to_after_from"),
            models.CheckConstraint(condition=Q(geom__isnull=False) | Q(location__isnull=False),
                                   name="plotboundary_has_geometry"),
            models.CheckConstraint(condition=Q(geom__isnull=True) | Q(geom__isvalid=True),
                                   name="plotboundary_geom_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.plot_id} from {self.valid_from}"
