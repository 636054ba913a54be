from django.contrib.gis.db import models


class AdminArea(models.Model):
    """A department, province or district of one boundary edition (INEI 2007, 2023 …)."""

    class Level(models.TextChoices):
        DEPARTMENT = "department", "Department (region)"
        PROVINCE = "province", "Province"
        DISTRICT = "district", "District"

    ubigeo = models.CharField(max_length=6, help_text="INEI UBIGEO: 2 digits department, 4 province, 6 district.")
    name = models.CharField(max_length=120)
    level = models.CharField(max_length=10, choices=Level.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    edition = models.PositiveSmallIntegerField(help_text="Year of the boundary edition, e.g. 2007 or 2023.")
    source = models.CharField(max_length=200, blank=True)
    synthetic = models.BooleanField(default=False, help_text="A generated stand-in, not an official boundary.")
    geom = models.MultiPolygonField(srid=4326, null=True, blank=True)

    class Meta:
        ordering = ["edition", "ubigeo"]
        constraints = [
            models.UniqueConstraint(fields=["ubigeo", "edition"], name="adminarea_unique_ubigeo_edition"),
            models.CheckConstraint(
                condition=models.Q(level="department", ubigeo__regex=r"^\d{2}$")
                | models.Q(level="province", ubigeo__regex=r"^\d{4}$")
                | models.Q(level="district", ubigeo__regex=r"^\d{6}$"),
                name="adminarea_ubigeo_matches_level",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.ubigeo}, {self.edition})"


class ProtectedArea(models.Model):
    class Category(models.TextChoices):
        NATIONAL_PARK = "national_park", "National park"
        NATIONAL_RESERVE = "national_reserve", "National reserve"
        PROTECTION_FOREST = "protection_forest", "Protection forest"
        COMMUNAL_RESERVE = "communal_reserve", "Communal reserve"
        REGIONAL = "regional", "Regional conservation area"
        PRIVATE = "private", "Private conservation area"
        RESERVED_ZONE = "reserved_zone", "Reserved zone"
        BUFFER_ZONE = "buffer_zone", "Buffer zone"
        OTHER = "other", "Other"

    name = models.CharField(max_length=250)
    category = models.CharField(max_length=20, choices=Category.choices)
    official_code = models.CharField(max_length=60, help_text="SERNANP or WDPA code.")
    source = models.CharField(max_length=200)
    edition = models.CharField(max_length=40, help_text="Version or date of the source layer.")
    synthetic = models.BooleanField(default=False)
    geom = models.MultiPolygonField(srid=4326)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["official_code", "edition"], name="protectedarea_unique_code_edition"),
            models.CheckConstraint(condition=models.Q(geom__isvalid=True), name="protectedarea_geom_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class ProtectedAreaPiece(models.Model):
    """ST_Subdivide'd pieces of a protected area, for fast overlap joins.

    Cordillera Azul alone has ~4,000 vertices; joining a plot against its pieces
    (≤ 256 vertices each, GiST-indexed) touches one or two small polygons instead.
    A database trigger keeps this table in step with ProtectedArea.geom, so bulk
    loads through COPY or raw SQL cannot leave it stale.
    """

    area = models.ForeignKey(ProtectedArea, on_delete=models.CASCADE, related_name="pieces")
    geom = models.PolygonField(srid=4326)

    class Meta:
        indexes = [models.Index(fields=["area"])]
