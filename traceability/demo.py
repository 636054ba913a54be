"""A deterministic demo season of harvest lots on top of the plots demo (plots.demo).

For each demo cooperative: a collection centre and a fermentary; two harvest
rounds (April and June 2025) in which up to 24 of its plots deliver wet beans into
a collection lot, each fermented and dried into a dry lot (factor 0.38), the dry
lots blended into one export lot per cooperative and shipped to one of two buyers
(the second buyer's shipments confidential). Two planted problem lots, each shipped
to a buyer:

- ``demo-lot-protected-2025``: beans from a plot that overlaps a protected area
  (plots.demo lays plots across protected-area edges; the protected-area check,
  run here on every delivering plot, marks them);
- ``demo-lot-yield-2025``: beans from a plot that delivered 1.6 × what its
  geodesic area can yield at CHACRA_YIELD_CEILING_KG_HA.

Everything is made through traceability.services, so the demo obeys the same
rules as real data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction

from plots.checks import run_checks
from plots.demo import DEMO_PREFIX
from plots.models import CheckResult, Organization, Plot, UserProfile
from plots.services import organization_create
from traceability import services
from traceability.models import Facility, LotInput, ProcessingEvent, ProductLot, Shipment

BUYERS = [(f"{DEMO_PREFIX}buyer-cacao-fino-export", "Cacao Fino Export SAC"),
          (f"{DEMO_PREFIX}buyer-chocolaterie-europe", "Chocolaterie Amazonía Europe BV")]
BUYER_CODE = BUYERS[0][0]  # the organization of the demo-buyer user
SEASON = 2025
ROUNDS = (date(SEASON, 4, 14), date(SEASON, 6, 16))
WET_TO_DRY = Decimal("0.38")
PLOTS_PER_COOP = 24
PROTECTED_LOT, YIELD_LOT = f"{DEMO_PREFIX}lot-protected-{SEASON}", f"{DEMO_PREFIX}lot-yield-{SEASON}"


@dataclass
class TraceabilityDemoSummary:
    lots: int
    deliveries: int
    shipments: int
    protected_plot: str | None
    yield_plot: str | None

    def line(self) -> str:
        return (f"harvest lots: {self.lots} lots, {self.deliveries} deliveries, {self.shipments} shipments to 2 "
                f"buyers; planted problems: {PROTECTED_LOT} (plot {self.protected_plot} in a protected area), "
                f"{YIELD_LOT} (plot {self.yield_plot} over the yield ceiling)")


def _buyers() -> list[Organization]:
    return [Organization.objects.filter(code=code).first()
            or organization_create(code=code, name=name, kind=Organization.Kind.EXPORTER) for code, name in BUYERS]


def _facilities(coop: Organization, rng: random.Random) -> tuple[Facility, Facility]:
    plot = Plot.objects.filter(organization=coop).exclude(boundary=None).order_by("id").first()
    lon, lat = (plot.boundary.centroid.x, plot.boundary.centroid.y) if plot else (None, None)
    slug = coop.code.removeprefix(DEMO_PREFIX)
    collection, _ = services.facility_upsert(code=f"{DEMO_PREFIX}cc-{slug}", name=f"Centro de acopio {coop.name}",
                                             kind=Facility.Kind.COLLECTION, organization=coop, lon=lon, lat=lat)
    fermentary, _ = services.facility_upsert(code=f"{DEMO_PREFIX}fer-{slug}", name=f"Módulo de fermentación "
                                             f"{coop.name}", kind=Facility.Kind.FERMENTARY, organization=coop,
                                             lon=lon, lat=lat)
    return collection, fermentary


def _wet_kg(rng: random.Random, area_ha: float) -> Decimal:
    """One round's wet delivery: half a season's dry yield of 300–700 kg/ha, as wet beans."""
    dry = area_ha * rng.uniform(300, 700) / 2
    return (Decimal(dry) / WET_TO_DRY).quantize(Decimal("0.1"))


def _round(coop: Organization, plots: list[Plot], day: date, n: int, facilities: tuple[Facility, Facility],
           rng: random.Random) -> ProductLot:
    """Deliveries of one harvest round into a wet lot, fermented into a dry lot."""
    slug = coop.code.removeprefix(DEMO_PREFIX)
    amounts = [(plot, _wet_kg(rng, plot.area_ha or plot.declared_area_ha or 1.0)) for plot in plots]
    wet_kg = sum(kg for _, kg in amounts)
    wet, _ = services.lot_upsert(code=f"{DEMO_PREFIX}{slug}-w{n}", organization=coop, form="wet_beans", kg=wet_kg,
                                 date=day, facility=facilities[0])
    for plot, kg in amounts:
        services.delivery_record(plot=plot, lot=wet, kg=kg, date=day)
    dry_day = day + timedelta(days=9)
    dry, _ = services.lot_upsert(code=f"{DEMO_PREFIX}{slug}-d{n}", organization=coop, form="dry_beans",
                                 kg=(wet_kg * WET_TO_DRY).quantize(Decimal("0.1")), date=dry_day,
                                 facility=facilities[1])
    services.transfer_record(source=wet, target=dry, kg=wet_kg, factor=WET_TO_DRY, kind="transform", date=dry_day)
    services.processing_record(lot=dry, started=day, ended=dry_day, fermentation_days=6, drying_days=3,
                               drying_method="solar dryer", final_moisture_pct=Decimal("7.0"),
                               cut_test_grade=rng.choice(["I", "I", "II"]), facility=facilities[1])
    return dry


def _single_plot_lot(code: str, plot: Plot, wet_kg: Decimal, buyer: Organization, confidential: bool) -> None:
    day = ROUNDS[1]
    wet, _ = services.lot_upsert(code=f"{code}-wet", organization=plot.organization, form="wet_beans", kg=wet_kg,
                                 date=day)
    services.delivery_record(plot=plot, lot=wet, kg=wet_kg, date=day)
    dry_day = date(SEASON, 7, 1)
    dry, _ = services.lot_upsert(code=code, organization=plot.organization, form="dry_beans",
                                 kg=(wet_kg * WET_TO_DRY).quantize(Decimal("0.1")), date=dry_day)
    services.transfer_record(source=wet, target=dry, kg=wet_kg, factor=WET_TO_DRY, kind="transform", date=dry_day)
    services.shipment_upsert(code=f"{code}-shipment", seller=plot.organization, buyer=buyer, lots=[dry],
                             date=date(SEASON, 8, 1), container="MSKU7001234", due_diligence_reference="",
                             geolocation_confidential=confidential)


def _protected_fail_ids(plot_ids: list[int]) -> set[int]:
    latest = {}
    for plot_id, outcome in (CheckResult.objects.filter(plot_id__in=plot_ids, kind=CheckResult.Kind.PROTECTED_AREA)
                             .order_by("plot_id", "checked_at", "id").values_list("plot_id", "outcome")):
        latest[plot_id] = outcome
    return {pid for pid, outcome in latest.items() if outcome == CheckResult.Outcome.FAIL}


@transaction.atomic
def generate(*, seed: int = 2026) -> TraceabilityDemoSummary:
    """Create the demo season (the plots demo must be loaded)."""
    rng = random.Random(seed)
    buyers = _buyers()
    coops = list(Organization.objects.filter(code__startswith=DEMO_PREFIX, plots__isnull=False).distinct()
                 .order_by("code"))
    candidates = {c.id: list(Plot.objects.filter(organization=c, status="active").exclude(boundary=None)
                             .order_by("id")[:PLOTS_PER_COOP]) for c in coops}
    # The two plots per town laid across protected-area edges, and every delivering plot, get checked.
    edge_plots = list(Plot.objects.filter(code__startswith=DEMO_PREFIX, code__regex=r"-000[56]$", status="active")
                      .exclude(boundary=None).values_list("id", flat=True))
    ids = sorted({p.id for plots in candidates.values() for p in plots} | set(edge_plots))
    run_checks(ids, kinds={CheckResult.Kind.PROTECTED_AREA})
    failing = _protected_fail_ids(ids)
    for i, coop in enumerate(coops):
        plots = [p for p in candidates[coop.id] if p.id not in failing]
        if len(plots) < 2:
            continue
        facilities = _facilities(coop, rng)
        dry_lots = []
        for n, day in enumerate(ROUNDS, start=1):
            dry_lots.append(_round(coop, plots, day, n, facilities, rng))
        slug = coop.code.removeprefix(DEMO_PREFIX)
        export, _ = services.lot_upsert(code=f"{DEMO_PREFIX}{slug}-export-{SEASON}", organization=coop,
                                        form="dry_beans", kg=sum(d.kg for d in dry_lots), date=date(SEASON, 7, 10),
                                        facility=facilities[1])
        for dry in dry_lots:
            services.transfer_record(source=dry, target=export, kg=dry.kg, kind="merge", date=date(SEASON, 7, 10))
        buyer = buyers[i % 2]
        services.shipment_upsert(code=f"{DEMO_PREFIX}{slug}-shipment-{SEASON}", seller=coop, buyer=buyer,
                                 lots=[export], date=date(SEASON, 8, 15), container=f"TCLU{4000000 + i * 7919}",
                                 due_diligence_reference=f"25PEDEMO{i:06d}", geolocation_confidential=i % 2 == 1)
    protected = Plot.objects.filter(id__in=failing).order_by("code").first()
    if protected is not None:
        _single_plot_lot(PROTECTED_LOT, protected, Decimal("450.0"), buyers[0], confidential=False)
    heavy = next(p for plots in candidates.values() for p in plots if p.id not in failing)
    ceiling_dry = Decimal(heavy.area_ha * settings.CHACRA_YIELD_CEILING_KG_HA)
    _single_plot_lot(YIELD_LOT, heavy, (ceiling_dry * Decimal("1.6") / WET_TO_DRY).quantize(Decimal("0.1")),
                     buyers[0], confidential=False)
    demo_lots = ProductLot.objects.filter(code__startswith=DEMO_PREFIX)
    return TraceabilityDemoSummary(
        lots=demo_lots.count(), deliveries=LotInput.objects.filter(target__in=demo_lots, kind="delivery").count(),
        shipments=Shipment.objects.filter(code__startswith=DEMO_PREFIX).count(),
        protected_plot=protected.code if protected else None, yield_plot=heavy.code)


@transaction.atomic
def reset() -> int:
    """Remove the demo lots, shipments, facilities and buyers. Returns the number of lots removed."""
    lots = ProductLot.objects.filter(code__startswith=DEMO_PREFIX)
    count = lots.count()
    Shipment.objects.filter(code__startswith=DEMO_PREFIX).delete()
    ProcessingEvent.objects.filter(lot__in=lots).delete()
    # One statement for every edge, so the mass-conservation trigger sees the graph
    # emptied at once rather than a lot losing its inputs while it still has outputs.
    with connection.cursor() as cur:
        cur.execute("DELETE FROM traceability_lotinput WHERE target_id IN "
                    "(SELECT id FROM traceability_productlot WHERE code LIKE %s)", [DEMO_PREFIX + "%"])
    lots.delete()
    Facility.objects.filter(code__startswith=DEMO_PREFIX).delete()
    buyers = Organization.objects.filter(code__in=[code for code, _ in BUYERS])
    # The demo buyer user belongs to a demo buyer; plots.demo.reset removes the user.
    UserProfile.objects.filter(organization__in=buyers).update(organization=None)
    buyers.delete()
    return count

