"""Chainable, read-only spatial and domain filters for plots."""

from __future__ import annotations

from datetime import datetime

from django.contrib.gis.db import models
from django.contrib.gis.geos import GEOSGeometry, Polygon
from django.db.models import Q

from core import policy


class PlotQuerySet(models.QuerySet):
    def visible_to(self, user) -> "PlotQuerySet":
        """The plots ``user`` may see (core.policy: staff all, a cooperative its own,
        buyers and investors none)."""
        return policy.visible(user, "plot", self)

    def active(self) -> "PlotQuerySet":
        return self.filter(status="active")

    def in_district(self, ubigeo: str) -> "PlotQuerySet":
        return self.filter(district__ubigeo=ubigeo)

    def in_region(self, ubigeo_prefix: str) -> "PlotQuerySet":
        """Plots in a department (2 digits) or province (4 digits) by UBIGEO prefix."""
        return self.filter(district__ubigeo__startswith=ubigeo_prefix)

    def in_viewport(self, bbox: Polygon) -> "PlotQuerySet":
        # A map viewport: the index-only bounding-box test is the right answer here
        # (DESIGN.md: bbox lookups only for viewports, exact predicates for land use).
        return self.filter(Q(boundary__bboverlaps=bbox) | Q(location__bboverlaps=bbox))

    def overlapping(self, geom: GEOSGeometry) -> "PlotQuerySet":
        """Plots whose boundary or point truly intersects ``geom`` (exact predicate)."""
        return self.filter(Q(boundary__intersects=geom) | Q(location__intersects=geom))

    def updated_since(self, moment: datetime) -> "PlotQuerySet":
        return self.filter(updated_at__gte=moment)
