"""Shared fixtures: personas, factories and GeoJSON assertions.

Every test runs on the real PostGIS (the private cluster or DATABASE_URL), with
migrations applied to a fresh test database.
"""

from __future__ import annotations

import itertools
import json

import pytest
import shapely
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from plots import services
from plots.models import UserProfile

_seq = itertools.count(1)

# A 100 m × 100 m-ish square near Tocache (lon -76.51, lat -8.19), counter-clockwise.
TOCACHE_SQUARE = {"type": "Polygon", "coordinates": [[
    [-76.5100, -8.1900], [-76.5091, -8.1900], [-76.5091, -8.1891], [-76.5100, -8.1891], [-76.5100, -8.1900]]]}


def square(lon: float, lat: float, size: float = 0.001) -> dict:
    return {"type": "Polygon", "coordinates": [[
        [lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]]}


@pytest.fixture
def make_org(db):
    def make(code=None, kind="cooperative"):
        n = next(_seq)
        return services.organization_create(code=code or f"org-{n}", name=f"Organization {n}", kind=kind)
    return make


@pytest.fixture
def make_producer(db, make_org):
    def make(organization=None, code=None, **kw):
        n = next(_seq)
        kw.setdefault("national_id", f"{40000000 + n}")
        kw.setdefault("phone", f"9{n:08d}")
        return services.producer_create(code=code or f"prod-{n}", name=f"Producer {n}",
                                        organization=organization or make_org(), **kw)
    return make


@pytest.fixture
def make_plot(db, make_producer):
    def make(producer=None, geometry_value=None, code=None, **kw):
        n = next(_seq)
        return services.plot_create(code=code or f"plot-{n}", producer=producer or make_producer(),
                                    geometry_value=geometry_value or square(-76.51 + n * 0.01, -8.19), **kw)
    return make


class Persona:
    def __init__(self, user, token):
        self.user = user
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")


@pytest.fixture
def org_a(make_org):
    return make_org(code="coop-a")


@pytest.fixture
def org_b(make_org):
    return make_org(code="coop-b")


@pytest.fixture
def persona(db):
    def make(role, organization=None):
        user = User.objects.create_user(f"{role}-{next(_seq)}")
        UserProfile.objects.create(user=user, role=role, organization=organization)
        return Persona(user, Token.objects.create(user=user))
    return make


@pytest.fixture
def technician(persona):
    return persona("technician")


@pytest.fixture
def admin(persona):
    return persona("admin")


@pytest.fixture
def owner(persona, org_a):
    """A cooperative user of org_a."""
    return persona("cooperative", org_a)


@pytest.fixture
def other_coop(persona, org_b):
    """A cooperative user of org_b."""
    return persona("cooperative", org_b)


@pytest.fixture
def buyer(persona):
    return persona("buyer")


@pytest.fixture
def investor(persona):
    return persona("investor")


@pytest.fixture
def anonymous():
    return APIClient()


def _rings(geometry: dict):
    if geometry["type"] == "Polygon":
        yield geometry["coordinates"]
    elif geometry["type"] == "MultiPolygon":
        yield from geometry["coordinates"]


def _positions(coords):
    if coords and isinstance(coords[0], (int, float)):
        yield coords
    else:
        for c in coords:
            yield from _positions(c)


def assert_rfc7946_geometry(geometry: dict | None) -> None:
    if geometry is None:
        return
    assert "crs" not in geometry
    for lon, lat, *_ in _positions(geometry["coordinates"]):
        assert -180 <= lon <= 180 and -90 <= lat <= 90, (lon, lat)
    for polygon in _rings(geometry):
        for i, ring in enumerate(polygon):
            assert ring[0] == ring[-1], "ring not closed"
            assert len(ring) >= 4
            ccw = shapely.LinearRing(ring).is_ccw
            assert ccw if i == 0 else not ccw, "exterior must be CCW, holes CW (RFC 7946 §3.1.6)"


def assert_rfc7946(doc: dict) -> None:
    """The document is RFC 7946 GeoJSON: no crs member, lon/lat, closed CCW exteriors."""
    assert "crs" not in doc
    if doc["type"] == "FeatureCollection":
        for feature in doc["features"]:
            assert_rfc7946(feature)
    elif doc["type"] == "Feature":
        assert "crs" not in doc and "properties" in doc and "geometry" in doc
        assert_rfc7946_geometry(doc["geometry"])
    else:
        assert_rfc7946_geometry(doc)


def geojson(response) -> dict:
    assert response["Content-Type"].startswith("application/geo+json"), response["Content-Type"]
    doc = json.loads(response.content)
    assert_rfc7946(doc)
    return doc


class SharedDir:
    """A folder of ../shared/data (public test data, CHACRA_SHARED_DATA). A test
    that reaches into it is skipped, with that reason, when the folder is absent;
    CI always has it beside the checkout."""

    def __init__(self, path):
        from pathlib import Path

        self.path = Path(path)

    def __truediv__(self, part):
        if not self.path.exists():
            pytest.skip(f"{self.path} (public test data) is not present")
        return self.path / part

    def glob(self, pattern):
        return self.path.glob(pattern) if self.path.exists() else iter(())


@pytest.fixture(autouse=True)
def _demo_files_elsewhere(settings, tmp_path_factory):
    """The demo writes raster tiles; in tests they go to a temporary folder, never to
    the checkout's .demo-data/ that a running demo's catalog points at."""
    settings.CHACRA_DEMO_DATA_DIR = tmp_path_factory.mktemp("demo-data")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Cached aggregates (the concentration grid behind tiles and OGC) never outlive a test."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
