"""Writes. Keyword-only, atomic, validated with full_clean(); domain errors on bad input."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import policy
from plots import geometry
from plots.errors import Conflict, ValidationFailed, from_django_validation
from plots.models import AdminArea, Organization, Plot, PlotBoundary, Producer

PLOT_ATTRIBUTES = (
    "declared_area", "declared_area_unit", "tenure", "planting_year", "agroforestry_system",
    "shade_species", "survey_method", "survey_date", "gps_accuracy_m",
)


# Geometry fields are validated by plots.geometry (with reasons people can read)
# and by the database's ST_IsValid constraints; Django cannot evaluate those
# constraints in Python, so they are left out of full_clean().
_GEOMETRY_FIELDS = ["boundary", "location", "geom"]


def _save(obj) -> None:
    # validate_constraints=False: Django would run each CHECK constraint as its own
    # SELECT (10 queries per plot); PostgreSQL enforces them anyway, and the field
    # validators and services check the same rules first with readable messages.
    try:
        obj.full_clean(exclude=[f.name for f in obj._meta.fields if f.name in _GEOMETRY_FIELDS],
                       validate_constraints=False)
    except ValidationError as exc:
        raise from_django_validation(exc) from None
    obj.save()


def _require_write(actor, organization_id: int) -> None:
    if actor is not None:  # no actor: the command line, the operator's rights
        policy.require_write(actor, "plot", organization_id,
                             "you may only change producers and plots of your own organization")


@transaction.atomic
def organization_create(*, code: str, name: str, kind: str, ruc: str = "") -> Organization:
    org = Organization(code=code, name=name, kind=kind, ruc=ruc)
    _save(org)
    return org


@transaction.atomic
def producer_create(*, code: str, name: str, organization: Organization, gender: str = "unknown",
                    national_id: str = "", phone: str = "", actor=None) -> Producer:
    _require_write(actor, organization.id)
    producer = Producer(code=code, name=name, organization=organization, gender=gender,
                        national_id=national_id, phone=phone)
    _save(producer)
    return producer


def district_for(geom) -> AdminArea | None:
    """The district holding the largest share of the plot (newest edition covering most of
    it); the covering district for a point. The same rule as the district check
    (plots.checks.district), so a new plot and a checked plot agree."""
    from plots.checks.district import district_id_for

    found = district_id_for(geom)
    return AdminArea.objects.get(pk=found) if found is not None else None


def _clean(value: Any, srid: int | None, repair_rules: tuple[str, ...]) -> geometry.CleanGeometry:
    if isinstance(value, geometry.CleanGeometry):
        return value
    try:
        return geometry.clean_plot_geometry(value, srid=srid, repair_rules=repair_rules)
    except geometry.GeometryError as exc:
        raise ValidationFailed(exc.reason, field="geometry", code=exc.code) from None


def _apply_geometry(plot: Plot, clean: geometry.CleanGeometry) -> None:
    from plots import h3cells

    plot.boundary = None if clean.is_point else clean.geom
    plot.location = clean.geom if clean.is_point else None
    plot.district = district_for(clean.geom)
    inside = clean.geom if clean.is_point else clean.geom.point_on_surface
    plot.h3_cell = h3cells.cell_for(inside.x, inside.y)


@transaction.atomic
def plot_create(*, code: str, producer: Producer, geometry_value: Any, srid: int | None = None,
                repair_rules: tuple[str, ...] = (), source: str = "api", actor=None,
                valid_from: date | None = None, **attributes: Any) -> Plot:
    """Register a plot with its first boundary (or point)."""
    _require_write(actor, producer.organization_id)
    unknown = set(attributes) - set(PLOT_ATTRIBUTES)
    if unknown:
        raise ValidationFailed(f"unknown plot attribute(s): {', '.join(sorted(unknown))}")
    clean = _clean(geometry_value, srid, repair_rules)
    plot = Plot(code=code, producer=producer, organization_id=producer.organization_id, **attributes)
    _apply_geometry(plot, clean)
    _save(plot)
    _record_boundary(plot, clean, valid_from=valid_from or plot.survey_date or timezone.localdate(),
                     source=source, actor=actor)
    return plot


def _record_boundary(plot: Plot, clean: geometry.CleanGeometry, *, valid_from: date, source: str, actor) -> PlotBoundary:
    boundary = PlotBoundary(
        plot=plot, geom=plot.boundary, location=plot.location, valid_from=valid_from, source=source,
        survey_method=plot.survey_method, gps_accuracy_m=plot.gps_accuracy_m,
        repairs=[{"rule": r.rule, "note": r.note} for r in clean.repairs],
        recorded_by=actor if getattr(actor, "pk", None) else None, survey_date=plot.survey_date,
    )
    _save(boundary)
    return boundary


def _same_geometry(plot: Plot, clean: geometry.CleanGeometry) -> bool:
    current = plot.location if clean.is_point else plot.boundary
    if current is None or current.geom_type != clean.geom.geom_type:
        return False
    # Exact vertex equality after orientation: a re-import of the same survey
    # is "unchanged", a survey that moved a vertex by a millimetre is a new version.
    return current.equals_exact(clean.geom, tolerance=1e-10)


@transaction.atomic
def plot_update_boundary(*, plot: Plot, geometry_value: Any, srid: int | None = None,
                         repair_rules: tuple[str, ...] = (), valid_from: date | None = None,
                         source: str = "api", actor=None, survey_method: str | None = None,
                         survey_date: date | None = None, gps_accuracy_m: float | None = None
                         ) -> tuple[Plot, bool]:
    """Supersede the current boundary with a new survey. Returns (plot, changed)."""
    _require_write(actor, plot.organization_id)
    clean = _clean(geometry_value, srid, repair_rules)
    plot = Plot.objects.select_for_update().get(pk=plot.pk)
    if plot.status == Plot.Status.RETIRED:
        raise Conflict(f"plot {plot.code} is retired; its boundary can no longer change")
    if _same_geometry(plot, clean):
        return plot, False
    start = valid_from or survey_date or timezone.localdate()
    current = plot.boundaries.filter(valid_to__isnull=True).first()
    if current is not None and start < current.valid_from:
        raise ValidationFailed(
            f"the new boundary starts on {start}, before the current one (from {current.valid_from}); "
            "history is only appended", field="valid_from")
    _apply_geometry(plot, clean)
    if survey_method:
        plot.survey_method = survey_method
    if survey_date:
        plot.survey_date = survey_date
    if gps_accuracy_m is not None:
        plot.gps_accuracy_m = gps_accuracy_m
    _save(plot)
    _supersede(current, start)
    _record_boundary(plot, clean, valid_from=start, source=source, actor=actor)
    return plot, True


def _supersede(current: PlotBoundary | None, start: date) -> None:
    """Close the version in force before a new one starting on ``start``.

    A version that started the same day was never in force (it would end the day
    it began, valid_from = valid_to): a same-day re-survey replaces it rather than
    leave it in the history. It is deleted, not edited, so the check results and
    GPS track that referred to it lose the link (SET_NULL) instead of appearing
    to judge the new geometry. The caller holds the plot's row lock (SELECT … FOR
    UPDATE), so two concurrent re-surveys of one plot take turns here.
    """
    if current is None:
        return
    if current.valid_from == start:
        current.delete()
    else:
        current.valid_to = start
        current.save(update_fields=["valid_to"])


@transaction.atomic
def plot_update(*, plot: Plot, actor=None, **attributes: Any) -> Plot:
    """Change descriptive attributes (not the boundary: that is plot_update_boundary)."""
    _require_write(actor, plot.organization_id)
    if plot.status == Plot.Status.RETIRED:
        raise Conflict(f"plot {plot.code} is retired; it can no longer change")
    unknown = set(attributes) - set(PLOT_ATTRIBUTES)
    if unknown:
        raise ValidationFailed(f"unknown plot attribute(s): {', '.join(sorted(unknown))}")
    for name, value in attributes.items():
        setattr(plot, name, value)
    _save(plot)
    return plot


@transaction.atomic
def plot_retire(*, plot: Plot, reason: str, actor=None, when: date | None = None) -> Plot:
    """Take a plot out of production. Its history stays; its current boundary is closed."""
    _require_write(actor, plot.organization_id)
    plot = Plot.objects.select_for_update().get(pk=plot.pk)
    if plot.status == Plot.Status.RETIRED:
        raise Conflict(f"plot {plot.code} is already retired")
    day = when or timezone.localdate()
    plot.boundaries.filter(valid_to__isnull=True).update(valid_to=day)
    plot.status = Plot.Status.RETIRED
    plot.retired_at = timezone.now()
    plot.retired_reason = reason
    _save(plot)
    return plot


def plots_assign_districts(plot_ids: list[int] | None = None) -> int:
    """Set-based district assignment after bulk loads, by the district check's rule
    (largest share), without writing check results. Returns the number of plots changed."""
    from plots.checks.district import assign_districts

    ids = list(plot_ids) if plot_ids is not None else list(Plot.objects.order_by("id").values_list("id", flat=True))
    # Batches keep each statement's intersections and its row locks bounded.
    return sum(assign_districts(ids[i:i + 5000]) for i in range(0, len(ids), 5000))
