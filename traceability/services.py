"""Writes for the lot graph. Keyword-only, atomic, validated; domain errors on bad input.

Each rule is checked here first so the error names the lot and says what to fix;
the database triggers (migrations/0002) enforce the same rules for every other
write path, and an IntegrityError they raise is turned into a ValidationFailed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Sum

from core import policy
from plots.errors import ValidationFailed, from_django_validation
from plots.imports import code_in_use
from plots.models import Organization, Plot
from traceability.models import (MASS_TOLERANCE, Facility, LotForm, LotInput, OrganizationSupplier,
                                 ProcessingEvent, ProductLot, Shipment)

T = TypeVar("T")


@contextmanager
def _database_rules(label: str) -> Iterator[None]:
    """Turn a rule the database refused (trigger or constraint) into a ValidationFailed."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        message = str(exc).splitlines()[0]
        raise ValidationFailed(f"{label}: {message}", code="rule_violated") from None


def _save(obj: T) -> T:
    # validate_constraints=False: the CHECK constraints and triggers run in PostgreSQL
    # anyway, and the services test the same rules first with readable messages.
    try:
        obj.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise from_django_validation(exc) from None
    obj.save()
    return obj


def _require_write(actor, organization_id: int) -> None:
    if actor is not None:  # no actor: the command line, the operator's rights
        policy.require_write(actor, "product_lot", organization_id,
                             "you may only record lots, deliveries and shipments of your own organization")


def _require_own_code(actor, organization_id: int, what: str, code: str) -> None:
    """A code held by another organization's record: refused without saying whose
    (the user cannot read it; codes are unique, so that it is taken cannot be hidden)."""
    if actor is not None:
        policy.require_write(actor, "product_lot", organization_id, error=code_in_use(what, code))


def _decimal(value: Any, name: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        raise ValidationFailed(f"{name} {value!r} is not a number", field=name) from None
    if not result.is_finite() or result <= 0:
        raise ValidationFailed(f"{name} must be a positive number (got {value})", field=name)
    return result


@transaction.atomic
def supplier_add(*, organization: Organization, supplier: Organization) -> OrganizationSupplier:
    """Let ``supplier``'s producers deliver into ``organization``'s lots."""
    link, _ = OrganizationSupplier.objects.get_or_create(organization=organization, supplier=supplier)
    return link


@transaction.atomic
def facility_upsert(*, code: str, name: str, kind: str, organization: Organization,
                    lon: float | None = None, lat: float | None = None, actor=None) -> tuple[Facility, str]:
    """Create or update a facility by code. Returns (facility, created|updated|unchanged)."""
    _require_write(actor, organization.id)
    if (lon is None) != (lat is None):
        raise ValidationFailed("give both lon and lat, or neither", field="lon")
    if lon is not None and not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValidationFailed(f"lon {lon}, lat {lat} is outside ±180/±90", field="lon")
    location = Point(lon, lat, srid=4326) if lon is not None else None
    facility = Facility.objects.filter(code=code).first()
    values = {"name": name, "kind": kind, "organization": organization, "location": location}
    if facility is None:
        return _save(Facility(code=code, **values)), "created"
    _require_own_code(actor, facility.organization_id, "facility", code)
    changed = {k: v for k, v in values.items()
               if (getattr(facility, k) != v if k != "location" else not _same_point(facility.location, v))}
    if not changed:
        return facility, "unchanged"
    for key, value in changed.items():
        setattr(facility, key, value)
    return _save(facility), "updated"


def _same_point(a: Point | None, b: Point | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.equals_exact(b, tolerance=1e-9)


@transaction.atomic
def lot_upsert(*, code: str, organization: Organization, form: str, kg: Any, date: date,
               facility: Facility | None = None, notes: str = "", actor=None) -> tuple[ProductLot, str]:
    """Create or update a product lot by code. Returns (lot, created|updated|unchanged).

    Changing the mass or date of a lot with inputs or outputs is checked against
    the graph rules (a smaller lot cannot have passed on more than it weighs)."""
    _require_write(actor, organization.id)
    if form not in LotForm.values:
        raise ValidationFailed(f"form must be one of {', '.join(LotForm.values)} (got {form!r})", field="form")
    if facility is not None and facility.organization_id != organization.id:
        raise ValidationFailed(f"facility {facility.code} belongs to another organization", field="facility")
    values = {"organization": organization, "form": form, "kg": _decimal(kg, "kg").quantize(Decimal("0.001")),
              "date": date, "facility": facility, "notes": notes}
    lot = ProductLot.objects.select_for_update().filter(code=code).first()
    if lot is None:
        return _save(ProductLot(code=code, **values)), "created"
    _require_own_code(actor, lot.organization_id, "lot", code)
    changed = {k: v for k, v in values.items() if getattr(lot, k) != v}
    if not changed:
        return lot, "unchanged"
    if "organization" in changed and lot.inputs.exists():
        raise ValidationFailed(f"lot {code} already has inputs; its organization cannot change")
    for key, value in changed.items():
        setattr(lot, key, value)
    with _database_rules(f"lot {code}"):
        _save(lot)
    return lot, "updated"


def _may_deliver(plot: Plot, lot: ProductLot) -> None:
    if plot.status != Plot.Status.ACTIVE:
        raise ValidationFailed(f"lot {lot.code}: plot {plot.code} is retired and cannot deliver", field="plot")
    if plot.organization_id == lot.organization_id:
        return
    if OrganizationSupplier.objects.filter(organization_id=lot.organization_id,
                                           supplier_id=plot.organization_id).exists():
        return
    raise ValidationFailed(f"lot {lot.code}: plot {plot.code} belongs to a producer of {plot.organization.code}, "
                           f"which is neither {lot.organization.code} nor one of its suppliers", field="plot")


@transaction.atomic
def delivery_record(*, plot: Plot, lot: ProductLot, kg: Any, date: date, actor=None) -> tuple[LotInput, str]:
    """A harvest delivery plot → lot of ``kg`` (in the lot's form) on ``date``.

    Idempotent on (plot, lot, date): the same kg is "unchanged", another kg "updated"."""
    _require_write(actor, lot.organization_id)
    _may_deliver(plot, lot)
    amount = _decimal(kg, "kg").quantize(Decimal("0.001"))
    if date > lot.date:
        raise ValidationFailed(f"lot {lot.code}: delivery of {date} is later than the lot ({lot.date})", field="date")
    edge = LotInput.objects.filter(kind=LotInput.Kind.DELIVERY, source_plot=plot, target=lot, date=date).first()
    if edge is not None and edge.kg == amount:
        return edge, "unchanged"
    status = "updated" if edge else "created"
    edge = edge or LotInput(kind=LotInput.Kind.DELIVERY, source_plot=plot, target=lot, date=date)
    edge.kg = amount
    with _database_rules(f"lot {lot.code}"):
        _save(edge)
    return edge, status


def _received(lot: ProductLot) -> Decimal:
    total = lot.inputs.aggregate(t=Sum(F("kg") * F("factor")))["t"]
    return Decimal(total or 0)


def _passed_on(lot: ProductLot, *, excluding: int | None = None) -> Decimal:
    qs = lot.outputs.all() if excluding is None else lot.outputs.exclude(pk=excluding)
    return Decimal(qs.aggregate(t=Sum("kg"))["t"] or 0)


def _descends_from(lot: ProductLot, ancestor: ProductLot) -> bool:
    """Whether ``lot`` is ``ancestor`` or reachable downstream of it (the graph walk
    the cycle rule needs; UNION ends the walk on any graph)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "WITH RECURSIVE down(id) AS (SELECT %s::bigint UNION SELECT e.target_id FROM traceability_lotinput e "
            "JOIN down ON e.source_lot_id = down.id) SELECT EXISTS (SELECT 1 FROM down WHERE id = %s)",
            [ancestor.id, lot.id])
        return cur.fetchone()[0]


@transaction.atomic
def transfer_record(*, source: ProductLot, target: ProductLot, kg: Any, kind: str, date: date,
                    factor: Any = 1, actor=None) -> tuple[LotInput, str]:
    """A merge, split or transform: ``kg`` of ``source`` (in its form) go into ``target``,
    which receives ``kg × factor`` (in its form). Idempotent on (source, target)."""
    _require_write(actor, target.organization_id)
    if kind not in (LotInput.Kind.MERGE, LotInput.Kind.SPLIT, LotInput.Kind.TRANSFORM):
        raise ValidationFailed(f"kind must be merge, split or transform (got {kind!r})", field="kind")
    if source.organization_id != target.organization_id:
        _require_write(actor, source.organization_id)
    amount = _decimal(kg, "kg").quantize(Decimal("0.001"))
    conversion = _decimal(factor, "factor")
    if source.id == target.id:
        raise ValidationFailed(f"lot {target.code} cannot take from itself", field="source")
    if not source.date <= date <= target.date:
        raise ValidationFailed(f"lot {target.code}: a transfer from {source.code} dated {date} must fall between "
                               f"the two lots' dates ({source.date} … {target.date}); dates run forward",
                               field="date")
    if _descends_from(source, target):
        raise ValidationFailed(f"lot {target.code}: taking from lot {source.code} would make a cycle "
                               f"({source.code} already descends from {target.code})", code="cycle")
    source = ProductLot.objects.select_for_update().get(pk=source.pk)
    edge = LotInput.objects.filter(source_lot=source, target=target).exclude(kind=LotInput.Kind.DELIVERY).first()
    if edge is not None and (edge.kg, edge.factor, edge.kind, edge.date) == (amount, conversion, kind, date):
        return edge, "unchanged"
    available = min(source.kg, _received(source))
    passed = _passed_on(source, excluding=edge.pk if edge else None) + amount
    if passed > available * (1 + MASS_TOLERANCE):
        raise ValidationFailed(
            f"lot {source.code} would pass on {passed} kg but weighs {source.kg} kg and received "
            f"{_received(source).quantize(Decimal('0.001'))} kg after conversion (tolerance "
            f"{MASS_TOLERANCE * 100:.0f} %); mass is conserved along the graph", field="kg", code="mass_not_conserved")
    status = "updated" if edge else "created"
    edge = edge or LotInput(source_lot=source, target=target)
    edge.kg, edge.factor, edge.kind, edge.date = amount, conversion, kind, date
    with _database_rules(f"lot {target.code}"):
        _save(edge)
    return edge, status


@transaction.atomic
def processing_record(*, lot: ProductLot, started: date, actor=None, **figures: Any) -> tuple[ProcessingEvent, str]:
    """Fermentation/drying of a lot; idempotent on (lot, started)."""
    _require_write(actor, lot.organization_id)
    allowed = {"ended", "fermentation_days", "drying_days", "drying_method", "final_moisture_pct",
               "cut_test_grade", "facility"}
    unknown = set(figures) - allowed
    if unknown:
        raise ValidationFailed(f"unknown processing field(s): {', '.join(sorted(unknown))}")
    if started > lot.date:
        raise ValidationFailed(f"lot {lot.code}: processing cannot start ({started}) after the lot was formed "
                               f"({lot.date})", field="started")
    event = ProcessingEvent.objects.filter(lot=lot, started=started).first()
    if event is not None and all(getattr(event, k) == v for k, v in figures.items()):
        return event, "unchanged"
    status = "updated" if event else "created"
    event = event or ProcessingEvent(lot=lot, started=started)
    for key, value in figures.items():
        setattr(event, key, value)
    if event.ended is not None and event.ended < event.started:
        raise ValidationFailed(f"lot {lot.code}: processing ends ({event.ended}) before it starts ({started})",
                               field="ended")
    with _database_rules(f"lot {lot.code}"):
        _save(event)
    return event, status


@transaction.atomic
def shipment_upsert(*, code: str, seller: Organization, buyer: Organization, lots: list[ProductLot], date: date,
                    container: str = "", due_diligence_reference: str = "", geolocation_confidential: bool = False,
                    actor=None) -> tuple[Shipment, str]:
    """Ship ``lots`` of ``seller`` to ``buyer`` (the buyer's users then see their origin)."""
    _require_write(actor, seller.id)
    if not lots:
        raise ValidationFailed(f"shipment {code} names no lots", field="lots")
    for lot in lots:
        if lot.organization_id != seller.id:
            raise ValidationFailed(f"shipment {code}: lot {lot.code} does not belong to {seller.code}", field="lots")
        if lot.date > date:
            raise ValidationFailed(f"shipment {code}: lot {lot.code} was formed on {lot.date}, after the shipment "
                                   f"({date})", field="date")
    values = {"seller": seller, "buyer": buyer, "date": date, "container": container,
              "due_diligence_reference": due_diligence_reference, "geolocation_confidential": geolocation_confidential}
    shipment = Shipment.objects.filter(code=code).first()
    wanted = sorted(lot.id for lot in lots)
    if shipment is not None:
        _require_own_code(actor, shipment.seller_id, "shipment", code)
        same = all(getattr(shipment, k) == v for k, v in values.items())
        if same and sorted(shipment.lots.values_list("id", flat=True)) == wanted:
            return shipment, "unchanged"
    status = "updated" if shipment else "created"
    shipment = shipment or Shipment(code=code)
    for key, value in values.items():
        setattr(shipment, key, value)
    with _database_rules(f"shipment {code}"):
        _save(shipment)
        shipment.lots.set(lots)
    return shipment, status


