"""Nurseries, clones, plant-material lots and their lineage, dispatches and grafting.

Quantities are counts of units of the lot's kind: seeds, plants (seedlings,
grafted plants, suckers) or budwood sticks ("varetas"). Hectares are geodesic
(plots.geometry / PostGIS geography). Rules that a single row can state are CHECK
constraints here; rules that span rows (conservation, acyclic lineage, dates
forward, a grafting inside its plot and within its area) are database triggers
(nurseries/migrations/0002), so a COPY or a raw INSERT cannot break them either.
"""

from __future__ import annotations

from django.contrib.gis.db import models
from django.db.models import F, Q


class Nursery(models.Model):
    class Kind(models.TextChoices):
        CACAO_SEEDLING = "cacao_seedling", "Cacao seedling nursery"
        CLONAL_GARDEN = "clonal_garden", "Clonal / budwood garden"
        SHADE_TREE = "shade_tree", "Shade-tree nursery"
        PLANTAIN = "plantain", "Plantain sucker nursery"

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    operator_organization = models.ForeignKey("plots.Organization", null=True, blank=True, on_delete=models.PROTECT,
                                              related_name="nurseries")
    operator_producer = models.ForeignKey("plots.Producer", null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="nurseries",
                                          help_text="A household that runs the nursery on its farm.")
    location = models.PointField(srid=4326)
    district = models.ForeignKey("plots.AdminArea", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="nurseries", limit_choices_to={"level": "district"})
    capacity_plants = models.PositiveIntegerField(null=True, blank=True, help_text="Plants it can hold at once.")
    established_on = models.DateField()
    closed_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(operator_organization__isnull=False) | Q(operator_producer__isnull=False),
                                   name="nursery_has_operator"),
            models.CheckConstraint(condition=Q(closed_on__isnull=True) | Q(closed_on__gte=F("established_on")),
                                   name="nursery_closed_after_established"),
        ]

    def __str__(self) -> str:
        return self.code


class Clone(models.Model):
    """A cacao clone (ICS-95, CCN-51 …). Reference data, loaded from fixtures/clones.csv."""

    code = models.CharField(max_length=30, unique=True)
    name = models.CharField(max_length=120, blank=True)
    fine_flavour = models.BooleanField(help_text="Fine-flavour (fino de aroma) material.")
    origin = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class MaterialLot(models.Model):
    class Kind(models.TextChoices):
        SEED = "seed", "Seed"
        ROOTSTOCK = "rootstock_seedling", "Rootstock seedlings"
        BUDWOOD = "budwood", "Budwood sticks (varetas)"
        GRAFTED_PLANT = "grafted_plant", "Grafted plants"
        SHADE_SEEDLING = "shade_tree_seedling", "Shade-tree seedlings"
        PLANTAIN_SUCKER = "plantain_sucker", "Plantain suckers"

    code = models.SlugField(max_length=60, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    species = models.CharField(max_length=80, default="Theobroma cacao")
    clone = models.ForeignKey(Clone, null=True, blank=True, on_delete=models.PROTECT, related_name="lots")
    quantity = models.PositiveIntegerField(help_text="Seeds, plants or sticks the lot held when produced.")
    produced_on = models.DateField()
    nursery = models.ForeignKey(Nursery, null=True, blank=True, on_delete=models.PROTECT, related_name="lots")
    source_plot = models.ForeignKey("plots.Plot", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="budwood_lots",
                                    help_text="For budwood: the mother plot the sticks were cut from.")
    notes = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["code"]
        # Foreign keys are indexed by Django already; the recursive lineage queries
        # walk LotParent by child (the unique index leads with it) and by parent.
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="materiallot_quantity_positive"),
            models.CheckConstraint(condition=Q(source_plot__isnull=True) | Q(kind="budwood"),
                                   name="materiallot_source_plot_only_budwood"),
            models.CheckConstraint(condition=Q(nursery__isnull=False) | Q(source_plot__isnull=False),
                                   name="materiallot_has_origin"),
        ]

    def __str__(self) -> str:
        return self.code


class LotParent(models.Model):
    """An edge of the lineage: ``quantity`` units of ``parent`` went into ``child``."""

    parent = models.ForeignKey(MaterialLot, on_delete=models.PROTECT, related_name="child_edges")
    child = models.ForeignKey(MaterialLot, on_delete=models.CASCADE, related_name="parent_edges")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["child", "parent"]
        constraints = [
            models.UniqueConstraint(fields=["child", "parent"], name="lotparent_unique_edge"),
            models.CheckConstraint(condition=~Q(parent=F("child")), name="lotparent_not_self"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="lotparent_quantity_positive"),
        ]


class Dispatch(models.Model):
    """Units of a lot sent to a plot (planting, field grafting) or to another nursery."""

    code = models.SlugField(max_length=60, unique=True, help_text="Delivery note (guía) number.")
    lot = models.ForeignKey(MaterialLot, on_delete=models.PROTECT, related_name="dispatches")
    to_plot = models.ForeignKey("plots.Plot", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="material_dispatches")
    to_nursery = models.ForeignKey(Nursery, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="received_dispatches")
    quantity = models.PositiveIntegerField()
    dispatched_on = models.DateField()

    class Meta:
        ordering = ["dispatched_on", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(to_plot__isnull=False, to_nursery__isnull=True)
                                   | Q(to_plot__isnull=True, to_nursery__isnull=False),
                                   name="dispatch_one_destination"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="dispatch_quantity_positive"),
        ]


class Grafting(models.Model):
    """Budwood of a clone grafted onto cacao already growing on a plot.

    ``grafted_ha`` is stored with 4 decimals (1 m²) as numeric, so sums by region
    are exact; when ``area`` (a sub-polygon of the plot) is given, grafted_ha is its
    geodesic area rounded to 4 decimals.
    """

    code = models.SlugField(max_length=60, unique=True)
    plot = models.ForeignKey("plots.Plot", on_delete=models.PROTECT, related_name="graftings")
    grafted_on = models.DateField()
    clone = models.ForeignKey(Clone, on_delete=models.PROTECT, related_name="graftings")
    budwood_lot = models.ForeignKey(MaterialLot, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="graftings")
    grafts = models.PositiveIntegerField(help_text="Number of grafts made.")
    grafted_ha = models.DecimalField(max_digits=10, decimal_places=4)
    area = models.MultiPolygonField(srid=4326, null=True, blank=True,
                                    help_text="The grafted part of the plot, when it was mapped.")
    survivors = models.PositiveIntegerField(null=True, blank=True, help_text="Grafts alive at follow-up.")
    survivors_counted_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["grafted_on", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(grafts__gt=0), name="grafting_grafts_positive"),
            models.CheckConstraint(condition=Q(grafted_ha__gt=0), name="grafting_ha_positive"),
            models.CheckConstraint(condition=Q(survivors__isnull=True) | Q(survivors__lte=F("grafts")),
                                   name="grafting_survivors_within_grafts"),
            models.CheckConstraint(condition=Q(survivors_counted_on__isnull=True)
                                   | Q(survivors_counted_on__gte=F("grafted_on")),
                                   name="grafting_followup_after_grafting"),
            models.CheckConstraint(condition=Q(area__isnull=True) | Q(area__isvalid=True), name="grafting_area_valid"),
        ]
