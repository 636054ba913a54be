"""Reads. Each selector takes the acting user and returns only what that user may see."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime

from django.contrib.gis.geos import Polygon
from django.db.models import Q, QuerySet

from plots import roles
from plots.errors import NotFound, ValidationFailed
from plots.models import AdminArea, Organization, Plot, PlotBoundary, Producer, ProtectedArea


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
              updated_since: datetime | None = None, status: str | None = "active") -> QuerySet[Plot]:
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
    return qs


def plot_get(*, user, code: str) -> Plot:
    plot = Plot.objects.visible_to(user).select_related("producer", "organization", "district").filter(code=code).first()
    if plot is None:
        raise NotFound(f"no plot with code {code!r} that you can see")
    return plot


def plot_boundary_as_of(*, plot: Plot, day: date) -> PlotBoundary:
    found = (plot.boundaries.filter(valid_from__lte=day)
             .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=day)).order_by("-valid_from", "-id").first())
    if found is None:
        raise NotFound(f"plot {plot.code} had no boundary on {day.isoformat()}")
    return found


def plot_boundaries(*, plot: Plot) -> QuerySet[PlotBoundary]:
    return plot.boundaries.order_by("valid_from", "id")


def producer_list(*, user, organization: str | None = None, gender: str | None = None) -> QuerySet[Producer]:
    role = roles.role_of(user)
    qs = Producer.objects.select_related("organization")
    if role in roles.STAFF_ROLES:
        pass
    elif role == roles.Role.COOPERATIVE:
        qs = qs.filter(organization=roles.organization_of(user))
    else:
        return qs.none()
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
    role = roles.role_of(user)
    if role in roles.STAFF_ROLES:
        return Organization.objects.order_by("code")
    if role == roles.Role.COOPERATIVE:
        return Organization.objects.filter(pk=roles.organization_of(user).pk)
    return Organization.objects.none()


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
