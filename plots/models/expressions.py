"""Database expressions shared by the models (computed in PostGIS, not Python)."""

from django.contrib.gis.db.models.functions import GeoFunc
from django.db import models


class GeodesicAreaHa(models.Func):
    """ST_Area on the WGS 84 spheroid, in hectares.

    PostGIS computes geography areas with GeographicLib's algorithm, the same one
    pyproj's Geod uses, so the stored value agrees with plots.geometry to ~1e-12.
    Immutable, so it can back a generated column that no write path can forget.
    """

    template = "(ST_Area((%(expressions)s)::geography, true) / 10000.0)"
    output_field = models.FloatField()


class ForcePolygonCCW(GeoFunc):
    """Exterior rings counter-clockwise, as RFC 7946 asks of GeoJSON output."""

    function = "ST_ForcePolygonCCW"
