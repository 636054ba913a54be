"""A small world for the security suite: two cooperatives, a buyer, personas for
every role, and one record of each kind a URL can name, with personal data whose
exact text the tests then look for in every response.

Coordinates are distinctive (seven decimals that appear nowhere else) so that a
plot's geometry in a response can be found as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import GEOSGeometry, Point
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from nurseries import services as nursery_services
from nurseries.models import Clone
from plots import services
from plots.models import AdminArea, CheckResult, ProtectedArea, UserProfile
from traceability import services as lot_services

DAY = date(2025, 5, 2)

# Personal data and names the tests look for in responses (unique strings).
PRODUCER_A = {"code": "sec-prod-a", "name": "Zenobia Alfaqui Ccori", "national_id": "47110001", "phone": "955510001"}
PRODUCER_B = {"code": "sec-prod-b", "name": "Wenceslao Betancur Yupa", "national_id": "47110002", "phone": "955510002"}
# Lower-left corners of the two plots: seven-decimal numbers that only these plots have.
CORNER_A = (-76.4123457, -8.2123457)
CORNER_B = (-76.3876543, -8.1876543)
PLOT_SIZE = 0.002

ROLES = ("anonymous", "admin", "technician", "cooperative", "buyer", "investor")
STAFF = ("admin", "technician")


def _square(lon: float, lat: float) -> dict:
    s = PLOT_SIZE
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + s, lat], [lon + s, lat + s], [lon, lat + s],
                                                [lon, lat]]]}


@dataclass
class World:
    """The records behind every path parameter, and a client per role."""

    clients: dict[str, APIClient]
    users: dict[str, User]
    codes: dict[str, str] = field(default_factory=dict)  # name → code or id (as text) used in paths


def _client(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        token = Token.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        # A session too, so that /map/ and /accounts/ (session pages) answer as the role would see them.
        client.force_login(user)
    return client


def _user(role: str, organization=None) -> User:
    user = User.objects.create_user(f"sec-{role}", password="not-used-here-9")
    UserProfile.objects.create(user=user, role=role, organization=organization)
    return user


def _reference_areas():
    dept = AdminArea.objects.create(ubigeo="22", name="SAN MARTIN", level="department", edition=2007)
    prov = AdminArea.objects.create(ubigeo="2210", name="TOCACHE", level="province", edition=2007, parent=dept)
    box = GEOSGeometry("MULTIPOLYGON(((-76.6 -8.3,-76.3 -8.3,-76.3 -8.0,-76.6 -8.0,-76.6 -8.3)))", srid=4326)
    district = AdminArea.objects.create(ubigeo="221001", name="TOCACHE", level="district", edition=2007,
                                        parent=prov, geom=box)
    area = ProtectedArea.objects.create(
        name="Bosque de Prueba", category="protection_forest", official_code="BP-01", source="test",
        edition="t1", geom=GEOSGeometry("MULTIPOLYGON(((-76.58 -8.28,-76.55 -8.28,-76.55 -8.25,-76.58 -8.25,"
                                        "-76.58 -8.28)))", srid=4326))
    return district, area


def _plot(code, producer, corner):
    plot = services.plot_create(code=code, producer=producer, geometry_value=_square(*corner),
                                valid_from=date(2020, 1, 1))
    for kind in ("protected_area_overlap", "deforestation", "plot_overlap"):
        CheckResult.objects.create(plot=plot, kind=kind, outcome="pass", method_version="test")
    return plot


def build_world() -> World:
    district, area = _reference_areas()
    org_a = services.organization_create(code="sec-coop-a", name="Cooperativa Alfa", kind="cooperative")
    org_b = services.organization_create(code="sec-coop-b", name="Cooperativa Beta", kind="cooperative")
    exporter = services.organization_create(code="sec-exporter", name="Exportadora Sigma", kind="exporter")
    prod_a = services.producer_create(organization=org_a, gender="female", **PRODUCER_A)
    prod_b = services.producer_create(organization=org_b, gender="male", **PRODUCER_B)
    plot_a = _plot("sec-plot-a", prod_a, CORNER_A)
    plot_b = _plot("sec-plot-b", prod_b, CORNER_B)
    # A small plot surveyed as a point: the plot-points layers.
    point_a = services.plot_create(code="sec-point-a", producer=prod_a,
                                   geometry_value={"type": "Point", "coordinates": [-76.43, -8.16]})

    nursery_services.clones_load()
    ics95 = Clone.objects.get(code="ICS-95")
    nurseries = {}
    for key, org, lon in (("a", org_a, -76.45), ("b", org_b, -76.44)):
        nurseries[key] = nursery_services.nursery_create(
            code=f"sec-nursery-{key}", name=f"Vivero {key}", kind="cacao_seedling", location=Point(lon, -8.15, srid=4326),
            established_on=date(2023, 1, 1), operator_organization=org)
    material = {}
    for key, plot in (("a", plot_a), ("b", plot_b)):
        material[key] = nursery_services.lot_create(code=f"sec-mlot-{key}", kind="grafted_plant", quantity=100,
                                                    produced_on=date(2024, 6, 1), nursery=nurseries[key], clone=ics95)
        nursery_services.dispatch_create(code=f"sec-disp-{key}", lot=material[key], quantity=40,
                                         dispatched_on=date(2024, 9, 1), to_plot=plot)

    lots = {}
    for key, org, plot in (("a", org_a, plot_a), ("conf", org_a, plot_a), ("b", org_b, plot_b)):
        lots[key], _ = lot_services.lot_upsert(code=f"sec-lot-{key}", organization=org, form="wet_beans", kg=100,
                                               date=DAY)
        lot_services.delivery_record(plot=plot, lot=lots[key], kg=100, date=DAY)
    for key, confidential in (("a", False), ("conf", True)):
        lot_services.shipment_upsert(code=f"sec-ship-{key}", seller=org_a, buyer=exporter, lots=[lots[key]],
                                     date=DAY, geolocation_confidential=confidential)

    users = {"admin": _user("admin"), "technician": _user("technician"),
             "cooperative": _user("cooperative", org_a), "buyer": _user("buyer", exporter),
             "investor": _user("investor")}
    clients = {"anonymous": _client(None), **{role: _client(user) for role, user in users.items()}}
    codes = {
        "plot:own": plot_a.code, "plot:other": plot_b.code, "plot-point:own": point_a.code,
        "producer:own": prod_a.code, "producer:other": prod_b.code,
        "organization:own": org_a.code, "organization:other": org_b.code,
        "nursery:own": nurseries["a"].code, "nursery:other": nurseries["b"].code,
        "material-lot:own": material["a"].code, "material-lot:other": material["b"].code,
        "lot:own": lots["a"].code, "lot:confidential": lots["conf"].code, "lot:other": lots["b"].code,
        "district": district.ubigeo, "protected-area": str(area.id),
        "user:id": str(users["admin"].id),
    }
    return World(clients=clients, users=users, codes=codes)


@pytest.fixture
def world(db) -> World:
    return build_world()
