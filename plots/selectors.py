"""Reads. Each selector takes the acting user and returns only what that user may see."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime

from django.contrib.gis.geos import Polygon
from django.db.models import OuterRef, Q, QuerySet, Subquery

from core import policy
from plots.errors import NotFound, ValidationFailed
from plots.models import AdminArea, CheckResult, LatestCheck, Organization, Plot, PlotBoundary, Producer, ProtectedArea

Kind, Outcome = CheckResult.Kind, CheckResult.Outcome

# The list filters on check results, as sets of outcomes of the LATEST result per
# plot and kind. Plots never checked (or with insufficient data) match none.
PROTECTED_OVERLAP = {"true": {Outcome.FAIL}, "buffer": {Outcome.BUFFER_ZONE}, "false": {Outcome.PASS}}
# A double claim is a fail of plot_overlap (more than 0.01 ha shared with another
# producer); slivers and a producer's own overlapping plots are warnings, not claims.
DOUBLE_CLAIM = {"true": {Outcome.FAIL}, "false": {Outcome.PASS, Outcome.WARNING}}


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).upper().strip()


def region_prefix(region: str) -> str:
    """A department given by UBIGEO (2 digits) or by name, accents and case ignored."""
    if region.isdigit() and len(region) in (2, 4):
        return region
    wanted = _fold(region)
    for ubigeo, name in AdminArea.objects.filter(level=AdminArea.Level.DEPARTMENT).values_list("ubigeo", "name"):
        if _fold(name) == wanted:
            return ubigeo
    raise ValidationFailed(f"unknown region {region!r}: give a department UBIGEO (e.g. 22) or its name",
                           field="region")


def plot_list(*, user, bbox: Polygon | None = None, district: str | None = None, region: str | None = None,
              organization: str | None = None, producer: str | None = None,
              updated_since: datetime | None = None, status: str | None = "active",
              protected_overlap: str | None = None, double_claim: str | None = None,
              check_outcomes: list[tuple[str, str]] = ()) -> QuerySet[Plot]:
    qs = Plot.objects.visible_to(user)
    if status and status != "all":
        qs = qs.filter(status=status)
    if bbox is not None:
        qs = qs.in_viewport(bbox)
    if district:
        qs = qs.in_district(district)
    if region:
        qs = qs.in_region(region_prefix(region))
    if organization:
        qs = qs.filter(organization__code=organization)
    if producer:
        qs = qs.filter(producer__code=producer)
    if updated_since:
        qs = qs.updated_since(updated_since)
    wanted = [(kind, {outcome}) for kind, outcome in check_outcomes]
    if protected_overlap:
        wanted.append((Kind.PROTECTED_AREA, PROTECTED_OVERLAP[protected_overlap]))
    if double_claim:
        wanted.append((Kind.PLOT_OVERLAP, DOUBLE_CLAIM[double_claim]))
    for i, (kind, outcomes) in enumerate(wanted):
        qs = _latest_check_in(qs, f"_latest_check_{i}", kind, outcomes)
    return qs


def _latest_check_in(qs: QuerySet[Plot], alias: str, kind: str, outcomes: set[str]) -> QuerySet[Plot]:
    """Plots whose result of ``kind`` in force (plots_latest_check) has one of ``outcomes``
    (a correlated probe per plot on (plot, kind, -checked_at))."""
    latest = LatestCheck.objects.filter(plot=OuterRef("pk"), kind=kind).values("outcome")[:1]
    return qs.alias(**{alias: Subquery(latest)}).filter(**{f"{alias}__in": sorted(outcomes)})


def plot_get(*, user, code: str) -> Plot:
    plot = Plot.objects.visible_to(user).select_related("producer", "organization", "district").filter(code=code).first()
    if plot is None:
        raise NotFound(f"no plot with code {code!r} that you can see")
    return plot


def plot_check_results(*, user, code: str, history: bool = False, kind: str | None = None) -> tuple[Plot, list]:
    """The plot and its check results: the latest per kind, or with ``history`` every one,
    newest first. Visibility is the plot's (plot_get). Other organizations' plot codes
    in double-claim figures are hidden from cooperative users: they learn that, and
    how much, another organization claims, not which plot."""
    plot = plot_get(user=user, code=code)
    qs = CheckResult.objects.filter(plot=plot).select_related("boundary")
    if kind:
        qs = qs.filter(kind=kind)
    if history:
        results = list(qs.order_by("-checked_at", "-id"))
    else:
        in_force = LatestCheck.objects.filter(plot=plot).values("id")
        results = sorted(qs.filter(id__in=in_force), key=lambda r: r.kind)
    if not policy.sees_all(user, "plot"):  # who sees every plot may see every claimant
        own = plot.organization.code
        for result in results:
            for claim in result.figures.get("double_claims", []) if result.kind == Kind.PLOT_OVERLAP else []:
                if claim.get("organization") != own:
                    claim["plot"] = None
    return plot, results


def plot_boundary_as_of(*, plot: Plot, day: date) -> PlotBoundary:
    found = (plot.boundaries.filter(valid_from__lte=day)
             .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=day)).order_by("-valid_from", "-id").first())
    if found is None:
        raise NotFound(f"plot {plot.code} had no boundary on {day.isoformat()}")
    return found


def plot_boundaries(*, plot: Plot) -> QuerySet[PlotBoundary]:
    return plot.boundaries.order_by("valid_from", "id")


def producer_list(*, user, organization: str | None = None, gender: str | None = None) -> QuerySet[Producer]:
    qs = policy.visible(user, "producer", Producer.objects.select_related("organization"))
    if organization:
        qs = qs.filter(organization__code=organization)
    if gender:
        qs = qs.filter(gender=gender)
    return qs.order_by("code")


def producer_get(*, user, code: str) -> Producer:
    producer = producer_list(user=user).filter(code=code).first()
    if producer is None:
        raise NotFound(f"no producer with code {code!r} that you can see")
    return producer


def organization_list(*, user) -> QuerySet[Organization]:
    return policy.visible(user, "organization", Organization.objects.order_by("code"))


def organization_get(*, user, code: str) -> Organization:
    org = organization_list(user=user).filter(code=code).first()
    if org is None:
        raise NotFound(f"no organization with code {code!r} that you can see")
    return org


def admin_area_list(*, level: str | None = None, edition: int | None = None, parent: str | None = None,
                    bbox: Polygon | None = None) -> QuerySet[AdminArea]:
    """Public reference layer: visible to every authenticated user."""
    qs = AdminArea.objects.all()
    if level:
        qs = qs.filter(level=level)
    if edition:
        qs = qs.filter(edition=edition)
    if parent:
        qs = qs.filter(ubigeo__startswith=parent).exclude(ubigeo=parent)
    if bbox is not None:
        qs = qs.filter(geom__bboverlaps=bbox)
    return qs.order_by("edition", "ubigeo")


def protected_area_list(*, category: str | None = None, bbox: Polygon | None = None) -> QuerySet[ProtectedArea]:
    """Public reference layer: visible to every authenticated user."""
    qs = ProtectedArea.objects.all()
    if category:
        qs = qs.filter(category=category)
    if bbox is not None:
        qs = qs.filter(geom__bboverlaps=bbox)
    return qs.order_by("id")
