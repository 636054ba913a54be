"""Facilities, product lots as a directed acyclic graph, processing and shipments.

A lot's mass arrives through LotInput edges: a harvest delivery from a plot, or a
merge, split or transform from another lot. ``kg`` on an edge is the mass taken
from the source (in the source's form); ``factor`` converts it into the target's
form (wet "baba" → dry fermented beans ≈ 0.38), so the target receives
``kg × factor``. The rules (acyclic, mass conserved, dates forward) are enforced by
traceability.services with readable messages and again by database triggers
(migrations/0002) so that no write path can skip them.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.gis.db import models
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import F, Q

from core import policy

# Weighing tolerance of the mass-conservation rule: a lot may pass on at most
# (1 + MASS_TOLERANCE) × what it received after conversion. 1 % covers the scales
# of collection centres; the database trigger (migrations/0002) uses the same value.
MASS_TOLERANCE = Decimal("0.01")


class LotForm(models.TextChoices):
    """The physical form of a lot, with its dry-equivalent factor (DRY_EQUIVALENT)."""

    WET_BEANS = "wet_beans", "Wet beans (baba)"
    DRY_BEANS = "dry_beans", "Dry fermented beans"
    NIBS = "nibs", "Nibs"
    LIQUOR = "liquor", "Cocoa liquor / mass"
    BUTTER = "butter", "Cocoa butter"
    POWDER = "powder", "Cocoa powder"


# kg of dry fermented beans per kg of the form, for the mass balance. Wet to dry:
# 0.38 (ICCO, fermentation and sun drying to 7 % moisture lose ~62 % of the wet
# mass). Nibs are ~80 % of a dry bean by mass (shell removed), so one kg of nibs
# stands for 1.25 kg of beans; liquor likewise; butter and powder are each
# roughly half of the liquor.
DRY_EQUIVALENT: dict[str, float] = {
    LotForm.WET_BEANS: 0.38, LotForm.DRY_BEANS: 1.0, LotForm.NIBS: 1.25, LotForm.LIQUOR: 1.25,
    LotForm.BUTTER: 2.5, LotForm.POWDER: 2.5,
}


class OrganizationSupplier(models.Model):
    """``supplier``'s producers may deliver into ``organization``'s lots (an exporter
    buying from a cooperative, a second-tier cooperative from its members)."""

    organization = models.ForeignKey("plots.Organization", on_delete=models.CASCADE, related_name="suppliers")
    supplier = models.ForeignKey("plots.Organization", on_delete=models.CASCADE, related_name="supplies_to")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "supplier"], name="orgsupplier_unique"),
            models.CheckConstraint(condition=~Q(organization=F("supplier")), name="orgsupplier_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.supplier_id} supplies {self.organization_id}"


class Facility(models.Model):
    class Kind(models.TextChoices):
        COLLECTION = "collection_centre", "Collection centre"
        FERMENTARY = "fermentary", "Fermentary / post-harvest centre"
        WAREHOUSE = "warehouse", "Warehouse"
        PLANT = "processing_plant", "Processing plant"

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    organization = models.ForeignKey("plots.Organization", on_delete=models.PROTECT, related_name="facilities")
    location = models.PointField(srid=4326, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "facilities"

    def __str__(self) -> str:
        return self.code


class ProductLotQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ProductLotQuerySet":
        """The lots ``user`` may see (core.policy: staff every lot, a cooperative its
        organization's, a buyer those shipped to its organization, others none)."""
        return policy.visible(user, "product_lot", self)


class ProductLot(models.Model):
    code = models.SlugField(max_length=60, unique=True)
    organization = models.ForeignKey("plots.Organization", on_delete=models.PROTECT, related_name="product_lots")
    facility = models.ForeignKey(Facility, null=True, blank=True, on_delete=models.PROTECT, related_name="lots")
    form = models.CharField(max_length=12, choices=LotForm.choices)
    kg = models.DecimalField(max_digits=14, decimal_places=3, validators=[MinValueValidator(Decimal("0.001"))],
                             help_text="Weighed mass of the lot, kg, in its form.")
    date = models.DateField(help_text="The day the lot was formed (closed at the facility).")
    notes = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProductLotQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        indexes = [models.Index(fields=["organization", "date"])]
        constraints = [models.CheckConstraint(condition=Q(kg__gt=0), name="productlot_kg_positive")]

    def __str__(self) -> str:
        return self.code


class LotInput(models.Model):
    """One edge of the lot graph: a delivery (plot → lot) or a transfer (lot → lot)."""

    class Kind(models.TextChoices):
        DELIVERY = "delivery", "Harvest delivery from a plot"
        MERGE = "merge", "Merge (blend) of a lot into another"
        SPLIT = "split", "Part of a lot split off into another"
        TRANSFORM = "transform", "Transformation (fermentation and drying, roasting …)"

    target = models.ForeignKey(ProductLot, on_delete=models.CASCADE, related_name="inputs")
    source_plot = models.ForeignKey("plots.Plot", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="deliveries")
    source_lot = models.ForeignKey(ProductLot, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="outputs")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    kg = models.DecimalField(max_digits=14, decimal_places=3, help_text="kg taken from the source, in its form.")
    factor = models.DecimalField(max_digits=8, decimal_places=6, default=Decimal(1),
                                 validators=[MinValueValidator(Decimal("0.000001")), MaxValueValidator(Decimal(10))],
                                 help_text="kg of the target's form per kg of the source's form.")
    date = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["target", "id"]
        indexes = [models.Index(fields=["target"]), models.Index(fields=["source_lot"]),
                   models.Index(fields=["source_plot", "date"])]
        constraints = [
            models.CheckConstraint(condition=Q(kg__gt=0), name="lotinput_kg_positive"),
            models.CheckConstraint(condition=Q(factor__gt=0), name="lotinput_factor_positive"),
            models.CheckConstraint(
                condition=(Q(kind="delivery", source_plot__isnull=False, source_lot__isnull=True)
                           | (~Q(kind="delivery") & Q(source_plot__isnull=True, source_lot__isnull=False))),
                name="lotinput_one_source_by_kind"),
            models.CheckConstraint(condition=~Q(source_lot=F("target")), name="lotinput_not_self"),
            # One delivery per plot, lot and day; one transfer per pair of lots: the
            # natural keys that make imports idempotent.
            models.UniqueConstraint(fields=["source_plot", "target", "date"], condition=Q(kind="delivery"),
                                    name="lotinput_delivery_unique"),
            models.UniqueConstraint(fields=["source_lot", "target"], condition=~Q(kind="delivery"),
                                    name="lotinput_transfer_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.source_plot_id or self.source_lot_id} → {self.target_id} ({self.kg} kg)"


class ProcessingEvent(models.Model):
    """Fermentation and drying of a lot, with its quality figures."""

    lot = models.ForeignKey(ProductLot, on_delete=models.CASCADE, related_name="processing")
    started = models.DateField()
    ended = models.DateField(null=True, blank=True)
    fermentation_days = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(30)])
    drying_days = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(60)])
    drying_method = models.CharField(max_length=40, blank=True, help_text="sun, solar dryer, mechanical …")
    final_moisture_pct = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True,
                                             validators=[MinValueValidator(0), MaxValueValidator(100)])
    cut_test_grade = models.CharField(max_length=20, blank=True, help_text="e.g. grade I (≥ 75 % well fermented)")
    facility = models.ForeignKey(Facility, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["lot", "started"]
        constraints = [
            models.UniqueConstraint(fields=["lot", "started"], name="processing_one_per_lot_and_start"),
            models.CheckConstraint(condition=Q(ended__isnull=True) | Q(ended__gte=F("started")),
                                   name="processing_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.lot_id} from {self.started}"


class Shipment(models.Model):
    code = models.SlugField(max_length=60, unique=True)
    seller = models.ForeignKey("plots.Organization", on_delete=models.PROTECT, related_name="shipments_sent")
    buyer = models.ForeignKey("plots.Organization", on_delete=models.PROTECT, related_name="shipments_received")
    lots = models.ManyToManyField(ProductLot, related_name="shipments")
    date = models.DateField()
    container = models.CharField(max_length=20, blank=True)
    due_diligence_reference = models.CharField(max_length=60, blank=True,
                                               help_text="The DDS reference number of the EU Information System.")
    geolocation_confidential = models.BooleanField(
        default=False, help_text="EUDR geoLocationConfidential: producers' names are not disclosed downstream.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "code"]
        constraints = [models.CheckConstraint(condition=~Q(seller=F("buyer")), name="shipment_seller_not_buyer")]

    def __str__(self) -> str:
        return self.code
