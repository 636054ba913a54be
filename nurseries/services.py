"""Writes for nurseries, lots, dispatches and grafting.

Keyword-only, atomic, validated with full_clean(); every rule is checked here first
and explained in the user's terms (naming the lot, dispatch or grafting). The same
rules are database triggers (migrations/0002); should a write race past the check
here, the trigger's message (written for people too) comes back as ValidationFailed.
"""

from __future__ import annotations

import contextlib
import csv
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from django.contrib.gis.geos import GEOSGeometry, Point
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum

from nurseries import lineage, selectors
from nurseries.models import Clone, Dispatch, Grafting, LotParent, MaterialLot, Nursery
from core import policy
from plots import geometry
from plots.errors import NotFound, ValidationFailed, from_django_validation
from plots.models import Organization, Plot, PlotBoundary, Producer
from plots.selectors import plot_boundary_as_of
from plots.services import district_for

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HA_QUANTUM = Decimal("0.0001")  # grafted_ha is stored to 1 m²


def _save(obj) -> None:
    # Geometry validity is checked by plots.geometry and the database; the CHECK
    # constraints run in PostgreSQL (as in plots.services._save).
    try:
        obj.full_clean(exclude=["location", "area"], validate_constraints=False)
    except ValidationError as exc:
        raise from_django_validation(exc) from None
    obj.save()


@contextlib.contextmanager
def database_rules():
    """Turn a trigger's refusal (SQLSTATE 23514, an IntegrityError) into ValidationFailed.
    The savepoint leaves the caller's transaction usable."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        raise ValidationFailed(str(exc).splitlines()[0], code="rule_violated") from None


def _require_write(actor, organization_id: int | None, what: str) -> None:
    if actor is not None:  # no actor: the command line, the operator's rights
        policy.require_write(actor, "material_lot", organization_id,
                             f"you may only record {what} of your own organization")


def unknown_code(what: str, code: str) -> ValidationFailed:
    """The refusal of a code that does not exist, or that names a record the actor
    cannot read: the same words, so that the answer tells nothing about another
    organization's records (the sheet importer uses it for both)."""
    return ValidationFailed(f"{what} {code!r} is not registered")


# The policy's resource behind each kind of record a write may refer to.
RESOURCES = {"plot": "plot", "lot": "material_lot", "nursery": "nursery"}


def readable(actor, what: str):
    """The records of ``what`` (plot, lot, nursery) the actor reads, to which alone its
    writes may refer; every record when there is no actor (the command line)."""
    if actor is None:
        return {"plot": Plot.objects, "lot": MaterialLot.objects, "nursery": Nursery.objects}[what].all()
    if what == "plot":
        return Plot.objects.visible_to(actor)
    return selectors.lot_list(user=actor) if what == "lot" else selectors.nursery_list(user=actor)


def _require_readable(actor, obj, what: str) -> None:
    """Refuse a reference to a record the actor cannot read (as plots the API shows it,
    and nurseries.selectors). Staff read everything: no query for them."""
    if obj is None or actor is None or policy.sees_all(actor, RESOURCES[what]):
        return
    if not readable(actor, what).filter(pk=obj.pk).exists():
        raise unknown_code(what, obj.code)


def nursery_organization_id(nursery: Nursery) -> int | None:
    if nursery.operator_organization_id:
        return nursery.operator_organization_id
    return nursery.operator_producer.organization_id if nursery.operator_producer_id else None


def lot_organization_id(lot: MaterialLot) -> int | None:
    """The organization answerable for a lot: its nursery's operator, else its mother plot's."""
    if lot.nursery_id:
        return nursery_organization_id(lot.nursery)
    return lot.source_plot.organization_id if lot.source_plot_id else None


# --------------------------------------------------------------------------- clones


@dataclass
class LoadCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@transaction.atomic
def clones_load(*, path: Path = FIXTURES / "clones.csv") -> LoadCounts:
    """Upsert the reference list of clones (code, name, fine_flavour, origin, notes)."""
    counts = LoadCounts()
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for number, row in enumerate(csv.DictReader(fh), start=2):
            flag = (row.get("fine_flavour") or "").strip().lower()
            if flag not in ("true", "false", "1", "0", "yes", "no", "si", "sí"):
                raise ValidationFailed(f"{path.name} line {number}: fine_flavour must be true or false (got {flag!r})")
            values = {"name": row.get("name", "").strip(), "fine_flavour": flag in ("true", "1", "yes", "si", "sí"),
                      "origin": row.get("origin", "").strip(), "notes": row.get("notes", "").strip()}
            clone = Clone.objects.filter(code=row["code"].strip()).first()
            if clone is None:
                _save(Clone(code=row["code"].strip(), **values))
                counts.created += 1
            elif any(getattr(clone, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(clone, k, v)
                _save(clone)
                counts.updated += 1
            else:
                counts.unchanged += 1
    return counts


# --------------------------------------------------------------------------- nurseries


@transaction.atomic
def nursery_create(*, code: str, name: str, kind: str, location: Point, established_on: date,
                   operator_organization: Organization | None = None, operator_producer: Producer | None = None,
                   capacity_plants: int | None = None, closed_on: date | None = None, actor=None) -> Nursery:
    """Register a nursery at a point (WGS 84); its district is the one covering the point."""
    if operator_organization is None and operator_producer is None:
        raise ValidationFailed(f"nursery {code}: name its operator (an organization or a producer)",
                               field="operator")
    nursery = Nursery(code=code, name=name, kind=kind, location=location, established_on=established_on,
                      operator_organization=operator_organization, operator_producer=operator_producer,
                      capacity_plants=capacity_plants, closed_on=closed_on)
    _require_write(actor, nursery_organization_id(nursery), "nurseries")
    nursery.district = district_for(location)
    _save(nursery)
    return nursery


# --------------------------------------------------------------------------- lots


def lot_outflow(lot: MaterialLot, *, exclude_edge: int | None = None, exclude_dispatch: int | None = None) -> int:
    """Units already passed on to child lots or dispatched."""
    drawn = LotParent.objects.filter(parent=lot).exclude(pk=exclude_edge).aggregate(s=Sum("quantity"))["s"] or 0
    sent = Dispatch.objects.filter(lot=lot).exclude(pk=exclude_dispatch).aggregate(s=Sum("quantity"))["s"] or 0
    return drawn + sent


def _check_draw(lot: MaterialLot, quantity: int, *, what: str, exclude_edge: int | None = None,
                exclude_dispatch: int | None = None) -> None:
    used = lot_outflow(lot, exclude_edge=exclude_edge, exclude_dispatch=exclude_dispatch)
    if used + quantity > lot.quantity:
        raise ValidationFailed(
            f"{what} takes {quantity} units of lot {lot.code}, which has only {lot.quantity - used} left "
            f"(it held {lot.quantity}; {used} already passed on or dispatched)", code="over_draw")


def _check_lot_fields(*, code: str, kind: str, clone: Clone | None, nursery: Nursery | None,
                      source_plot: Plot | None) -> None:
    if kind == MaterialLot.Kind.BUDWOOD and source_plot is None and (
            nursery is None or nursery.kind != Nursery.Kind.CLONAL_GARDEN):
        raise ValidationFailed(f"budwood lot {code}: name the mother plot it was cut from (or a clonal garden)",
                               field="source_plot")
    if source_plot is not None and kind != MaterialLot.Kind.BUDWOOD:
        raise ValidationFailed(f"lot {code}: only budwood has a source plot", field="source_plot")
    if nursery is None and source_plot is None:
        raise ValidationFailed(f"lot {code}: name the nursery that produced it", field="nursery")
    if kind in (MaterialLot.Kind.BUDWOOD, MaterialLot.Kind.GRAFTED_PLANT) and clone is None:
        raise ValidationFailed(f"lot {code}: {kind.replace('_', ' ')} must name its clone", field="clone")


def _set_parents(child: MaterialLot, parents: list[tuple[MaterialLot, int]], actor=None) -> None:
    """Replace the child's parent edges, checking acyclicity, dates and each parent's stock."""
    seen: set[int] = set()
    existing = {e.parent_id: e for e in child.parent_edges.all()} if child.pk else {}
    below = set(lineage.descendant_ids(child.pk)) | {child.pk} if child.pk else set()
    for parent, quantity in parents:
        _require_readable(actor, parent, "lot")
        if parent.pk in seen:
            raise ValidationFailed(f"lot {child.code} names lot {parent.code} as a parent twice")
        seen.add(parent.pk)
        if parent.pk in below:
            raise ValidationFailed(f"lot {child.code} cannot be made from lot {parent.code}: {parent.code} already "
                                   f"descends from {child.code}, so the lineage would loop", code="cycle")
        if parent.produced_on > child.produced_on:
            raise ValidationFailed(f"lot {child.code} (produced {child.produced_on}) cannot come from lot "
                                   f"{parent.code}, produced later ({parent.produced_on})", code="dates_backwards")
        if quantity <= 0:
            raise ValidationFailed(f"lot {child.code}: the quantity drawn from {parent.code} must be positive")
        edge = existing.get(parent.pk)
        _check_draw(parent, quantity, what=f"lot {child.code}", exclude_edge=edge.pk if edge else None)
    with database_rules():
        child.parent_edges.exclude(parent_id__in=seen).delete()
        for parent, quantity in parents:
            LotParent.objects.update_or_create(child=child, parent=parent, defaults={"quantity": quantity})


@transaction.atomic
def lot_create(*, code: str, kind: str, quantity: int, produced_on: date, nursery: Nursery | None = None,
               clone: Clone | None = None, species: str = "Theobroma cacao", source_plot: Plot | None = None,
               parents: list[tuple[MaterialLot, int]] = (), notes: str = "", actor=None) -> MaterialLot:
    """Register a lot made from ``parents`` (lot, units drawn from it)."""
    _check_lot_fields(code=code, kind=kind, clone=clone, nursery=nursery, source_plot=source_plot)
    lot = MaterialLot(code=code, kind=kind, quantity=quantity, produced_on=produced_on, nursery=nursery,
                      clone=clone, species=species, source_plot=source_plot, notes=notes)
    _require_readable(actor, nursery, "nursery")  # first: a foreign one is unknown, not forbidden
    _require_readable(actor, source_plot, "plot")
    _require_write(actor, lot_organization_id(lot), "lots")
    _save(lot)
    if parents:
        _set_parents(lot, list(parents), actor)
    return lot


LOT_FIELDS = ("kind", "species", "clone", "quantity", "produced_on", "nursery", "source_plot", "notes")


@transaction.atomic
def lot_update(*, lot: MaterialLot, parents: list[tuple[MaterialLot, int]] | None = None, actor=None,
               **changes) -> MaterialLot:
    """Change a lot's attributes and, when given, replace its parents."""
    unknown = set(changes) - set(LOT_FIELDS)
    if unknown:
        raise ValidationFailed(f"unknown lot attribute(s): {', '.join(sorted(unknown))}")
    lot = MaterialLot.objects.select_for_update().get(pk=lot.pk)
    _require_write(actor, lot_organization_id(lot), "lots")
    _require_readable(actor, changes.get("nursery"), "nursery")
    _require_readable(actor, changes.get("source_plot"), "plot")
    for name, value in changes.items():
        setattr(lot, name, value)
    _require_write(actor, lot_organization_id(lot), "lots")  # also where the lot now belongs
    _check_lot_fields(code=lot.code, kind=lot.kind, clone=lot.clone, nursery=lot.nursery, source_plot=lot.source_plot)
    used = lot_outflow(lot)
    if used > lot.quantity:
        raise ValidationFailed(f"lot {lot.code} cannot hold only {lot.quantity} units: {used} have already been "
                               "passed on or dispatched", code="over_draw")
    with database_rules():
        _save(lot)
    if parents is not None:
        _set_parents(lot, parents, actor)
    return lot


# --------------------------------------------------------------------------- dispatches


def _check_dispatch(dispatch: Dispatch) -> None:
    lot = dispatch.lot
    if (dispatch.to_plot is None) == (dispatch.to_nursery is None):
        raise ValidationFailed(f"dispatch {dispatch.code}: send it to a plot or to a nursery (one of them)",
                               field="destination")
    if dispatch.dispatched_on < lot.produced_on:
        raise ValidationFailed(f"dispatch {dispatch.code} of lot {lot.code} is dated {dispatch.dispatched_on}, "
                               f"before the lot was produced ({lot.produced_on})", code="dates_backwards")
    if dispatch.to_nursery_id and dispatch.to_nursery_id == lot.nursery_id:
        raise ValidationFailed(f"dispatch {dispatch.code}: lot {lot.code} is already at {lot.nursery.code}")
    _check_draw(lot, dispatch.quantity, what=f"dispatch {dispatch.code}", exclude_dispatch=dispatch.pk)


def _require_destination(actor, dispatch: Dispatch) -> None:
    _require_readable(actor, dispatch.lot, "lot")
    _require_readable(actor, dispatch.to_plot, "plot")
    _require_readable(actor, dispatch.to_nursery, "nursery")


@transaction.atomic
def dispatch_create(*, code: str, lot: MaterialLot, quantity: int, dispatched_on: date, to_plot: Plot | None = None,
                    to_nursery: Nursery | None = None, actor=None) -> Dispatch:
    """Send units of a lot to a plot or to another nursery. The units leave the lot."""
    lot = MaterialLot.objects.select_for_update(of=("self",)).select_related("nursery").get(pk=lot.pk)
    dispatch = Dispatch(code=code, lot=lot, quantity=quantity, dispatched_on=dispatched_on, to_plot=to_plot,
                        to_nursery=to_nursery)
    _require_destination(actor, dispatch)  # first: a foreign lot is unknown, not forbidden
    _require_write(actor, lot_organization_id(lot), "dispatches")
    _check_dispatch(dispatch)
    with database_rules():
        _save(dispatch)
    return dispatch


DISPATCH_FIELDS = ("lot", "quantity", "dispatched_on", "to_plot", "to_nursery")


@transaction.atomic
def dispatch_update(*, dispatch: Dispatch, actor=None, **changes) -> Dispatch:
    unknown = set(changes) - set(DISPATCH_FIELDS)
    if unknown:
        raise ValidationFailed(f"unknown dispatch attribute(s): {', '.join(sorted(unknown))}")
    _require_write(actor, lot_organization_id(dispatch.lot), "dispatches")
    for name, value in changes.items():
        setattr(dispatch, name, value)
    _require_destination(actor, dispatch)
    _require_write(actor, lot_organization_id(dispatch.lot), "dispatches")
    _check_dispatch(dispatch)
    with database_rules():
        _save(dispatch)
    return dispatch


# --------------------------------------------------------------------------- grafting


def _boundary_on(plot: Plot, day: date, code: str) -> PlotBoundary:
    try:
        return plot_boundary_as_of(plot=plot, day=day)
    except NotFound:
        raise ValidationFailed(f"grafting {code}: plot {plot.code} had no boundary in force on {day}",
                               code="no_boundary") from None


def grafted_hectares(area: GEOSGeometry) -> Decimal:
    """Geodesic area of a grafted sub-polygon in hectares, to 4 decimals (1 m²)."""
    return Decimal(repr(geometry.geodesic_area_ha(area))).quantize(HA_QUANTUM, rounding=ROUND_HALF_UP)


def _check_grafting(g: Grafting) -> None:
    boundary = _boundary_on(g.plot, g.grafted_on, g.code)
    if g.area is not None:
        if boundary.geom is None:
            raise ValidationFailed(f"grafting {g.code}: plot {g.plot.code} was surveyed as a point, so a grafted "
                                   "sub-polygon cannot be placed in it", field="area")
        # ST_Covers, exact (DESIGN.md: land-use answers use exact predicates).
        if not PlotBoundary.objects.filter(pk=boundary.pk, geom__covers=g.area).exists():
            raise ValidationFailed(f"grafting {g.code}: the grafted area lies partly outside plot {g.plot.code} "
                                   f"(boundary in force on {g.grafted_on})", field="area", code="outside_plot")
        g.grafted_ha = grafted_hectares(g.area)
    if g.grafted_ha is None or Decimal(g.grafted_ha) <= 0:
        raise ValidationFailed(f"grafting {g.code}: give the grafted hectares or the grafted area", field="grafted_ha")
    g.grafted_ha = Decimal(g.grafted_ha).quantize(HA_QUANTUM, rounding=ROUND_HALF_UP)
    if g.budwood_lot is not None:
        lot = g.budwood_lot
        if lot.kind != MaterialLot.Kind.BUDWOOD:
            raise ValidationFailed(f"grafting {g.code}: lot {lot.code} is {lot.get_kind_display().lower()}, "
                                   "not budwood", field="budwood_lot")
        if lot.clone_id and lot.clone_id != g.clone_id:
            raise ValidationFailed(f"grafting {g.code}: budwood lot {lot.code} is {lot.clone.code}, not "
                                   f"{g.clone.code}", field="clone")
        if g.grafted_on < lot.produced_on:
            raise ValidationFailed(f"grafting {g.code} on {g.grafted_on} uses budwood lot {lot.code}, cut later "
                                   f"({lot.produced_on})", code="dates_backwards")
    limit = boundary.area_ha if boundary.geom is not None else g.plot.declared_area_ha
    if limit is None:
        raise ValidationFailed(f"grafting {g.code}: plot {g.plot.code} has no measured or declared area to graft "
                               "within")
    others = Grafting.objects.filter(plot=g.plot).exclude(pk=g.pk).aggregate(s=Sum("grafted_ha"))["s"] or Decimal(0)
    if float(others + g.grafted_ha) > limit + 0.00005:
        raise ValidationFailed(
            f"grafting {g.code}: {g.grafted_ha} ha on plot {g.plot.code} would make {others + g.grafted_ha} ha "
            f"grafted in all, more than the plot's {limit:.4f} ha", code="grafted_area_exceeds_plot")


@transaction.atomic
def grafting_create(*, code: str, plot: Plot, grafted_on: date, clone: Clone, grafts: int,
                    grafted_ha: Decimal | float | None = None, area: GEOSGeometry | None = None,
                    budwood_lot: MaterialLot | None = None, survivors: int | None = None,
                    survivors_counted_on: date | None = None, actor=None) -> Grafting:
    """Record a field grafting: either ``grafted_ha`` or ``area`` (a sub-polygon of the
    plot's boundary in force on ``grafted_on``; its geodesic area is then the hectares)."""
    _require_readable(actor, plot, "plot")  # first: a foreign plot is unknown, not forbidden
    _require_readable(actor, budwood_lot, "lot")
    _require_write(actor, plot.organization_id, "graftings")
    if area is not None:
        area = geometry.to_multipolygon(area)
    g = Grafting(code=code, plot=plot, grafted_on=grafted_on, clone=clone, grafts=grafts, area=area,
                 grafted_ha=grafted_ha, budwood_lot=budwood_lot, survivors=survivors,
                 survivors_counted_on=survivors_counted_on)
    _check_grafting(g)
    with database_rules():
        _save(g)
    return g


GRAFTING_FIELDS = ("plot", "grafted_on", "clone", "grafts", "grafted_ha", "area", "budwood_lot", "survivors",
                   "survivors_counted_on")


@transaction.atomic
def grafting_update(*, grafting: Grafting, actor=None, **changes) -> Grafting:
    unknown = set(changes) - set(GRAFTING_FIELDS)
    if unknown:
        raise ValidationFailed(f"unknown grafting attribute(s): {', '.join(sorted(unknown))}")
    _require_write(actor, grafting.plot.organization_id, "graftings")
    for name, value in changes.items():
        setattr(grafting, name, value)
    _require_readable(actor, changes.get("plot"), "plot")
    _require_readable(actor, changes.get("budwood_lot"), "lot")
    _require_write(actor, grafting.plot.organization_id, "graftings")
    _check_grafting(grafting)
    with database_rules():
        _save(grafting)
    return grafting

