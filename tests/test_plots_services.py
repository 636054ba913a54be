"""Services, selectors and database rules for plots, on the real PostGIS."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.gis.geos import GEOSGeometry
from django.db import IntegrityError, connection, transaction
from pyproj import Geod

from plots import selectors, services
from plots.errors import Conflict, Forbidden, ValidationFailed
from plots.models import AdminArea, Plot, PlotBoundary, ProtectedArea, ProtectedAreaPiece
from tests.conftest import square

pytestmark = pytest.mark.django_db


def geod_ha(g):
    lons, lats = zip(*g["coordinates"][0])
    return abs(Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)[0]) / 10_000


@pytest.mark.parametrize("lat", [0.0, -9.0])
def test_it_stores_the_geodesic_area_computed_by_postgis(make_plot, lat):
    g = square(-76.0, lat, 0.003)
    plot = make_plot(geometry_value=g)
    plot.refresh_from_db()
    assert abs(plot.area_ha - geod_ha(g)) / geod_ha(g) < 1e-9


@pytest.mark.parametrize("unit,value,hectares", [("ha", 2.5, 2.5), ("m2", 5000, 0.5), ("yugada", 4, 1.08),
                                                  ("topo", 3, 1.0479)])
def test_it_normalises_declared_area_units(make_plot, unit, value, hectares):
    plot = make_plot(declared_area=value, declared_area_unit=unit)
    plot.refresh_from_db()
    assert plot.declared_area_ha == pytest.approx(hectares, abs=1e-9)


def test_a_new_survey_supersedes_and_history_is_kept(make_plot):
    plot = make_plot(geometry_value=square(-76.5, -8.2, 0.001), valid_from=date(2021, 3, 1))
    first_area = Plot.objects.get(pk=plot.pk).area_ha
    plot, changed = services.plot_update_boundary(plot=plot, geometry_value=square(-76.5, -8.2, 0.002),
                                                  valid_from=date(2024, 6, 1))
    assert changed
    plot.refresh_from_db()
    assert plot.area_ha == pytest.approx(first_area * 4, rel=1e-3)
    old, new = selectors.plot_boundaries(plot=plot)
    assert (old.valid_from, old.valid_to) == (date(2021, 3, 1), date(2024, 6, 1))
    assert (new.valid_from, new.valid_to) == (date(2024, 6, 1), None)
    assert selectors.plot_boundary_as_of(plot=plot, day=date(2022, 1, 1)) == old
    assert selectors.plot_boundary_as_of(plot=plot, day=date(2024, 6, 1)) == new
    with pytest.raises(Exception, match="no boundary on 2020-12-31"):
        selectors.plot_boundary_as_of(plot=plot, day=date(2020, 12, 31))


def test_an_unchanged_boundary_makes_no_new_version(make_plot):
    g = square(-76.5, -8.2, 0.001)
    plot = make_plot(geometry_value=g)
    _, changed = services.plot_update_boundary(plot=plot, geometry_value=g)
    assert not changed and plot.boundaries.count() == 1


def test_history_only_appends(make_plot):
    plot = make_plot(valid_from=date(2024, 1, 1))
    with pytest.raises(ValidationFailed, match="before the current one"):
        services.plot_update_boundary(plot=plot, geometry_value=square(-70, -8, 0.001), valid_from=date(2023, 1, 1))
    assert plot.boundaries.count() == 1


def test_an_invalid_boundary_writes_nothing(make_plot):
    plot = make_plot()
    before = (Plot.objects.get(pk=plot.pk).boundary.wkt, plot.boundaries.count())
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    with pytest.raises(ValidationFailed, match="crosses itself"):
        services.plot_update_boundary(plot=plot, geometry_value=bowtie)
    assert (Plot.objects.get(pk=plot.pk).boundary.wkt, plot.boundaries.count()) == before


def test_retiring_closes_the_current_boundary(make_plot):
    plot = make_plot(valid_from=date(2022, 1, 1))
    services.plot_retire(plot=plot, reason="sold", when=date(2025, 1, 1))
    plot.refresh_from_db()
    assert plot.status == "retired" and plot.boundaries.get().valid_to == date(2025, 1, 1)
    with pytest.raises(Conflict):
        services.plot_retire(plot=plot, reason="again")
    with pytest.raises(Conflict):
        services.plot_update_boundary(plot=plot, geometry_value=square(-70, -8, 0.002))


def test_a_cooperative_cannot_write_another_organizations_plots(make_plot, owner, other_coop, org_a, make_producer):
    plot = make_plot(producer=make_producer(organization=org_a))
    with pytest.raises(Forbidden):
        services.plot_update(plot=plot, actor=other_coop.user, tenure="titled")
    services.plot_update(plot=plot, actor=owner.user, tenure="titled")
    with pytest.raises(Forbidden):
        services.producer_create(code="x1", name="X", organization=org_a, actor=other_coop.user)


def test_a_point_plot_keeps_its_location(make_plot):
    plot = make_plot(geometry_value={"type": "Point", "coordinates": [-76.5, -8.2]}, survey_method="gps_point")
    plot.refresh_from_db()
    assert plot.boundary is None and plot.area_ha is None and (plot.location.x, plot.location.y) == (-76.5, -8.2)


def test_the_district_is_the_newest_edition_covering_the_plot(make_plot):
    def area(ubigeo, edition, box):
        g = GEOSGeometry(f"SRID=4326;MULTIPOLYGON((({box[0]} {box[1]},{box[2]} {box[1]},{box[2]} {box[3]},"
                         f"{box[0]} {box[3]},{box[0]} {box[1]})))")
        return AdminArea.objects.create(ubigeo=ubigeo, name=ubigeo, level="district", edition=edition, geom=g)
    old = area("250302", 2007, (-75.2, -8.8, -74.8, -8.4))
    new = area("250304", 2023, (-75.0, -8.8, -74.8, -8.6))
    inside_new = make_plot(geometry_value=square(-74.9, -8.7, 0.001))
    inside_old_only = make_plot(geometry_value=square(-75.1, -8.5, 0.001))
    assert inside_new.district == new and inside_old_only.district == old
    Plot.objects.filter(pk__in=[inside_new.pk, inside_old_only.pk]).update(district=None)
    assert services.plots_assign_districts([inside_new.pk, inside_old_only.pk]) == 2
    assert {p.district_id for p in Plot.objects.filter(pk__in=[inside_new.pk, inside_old_only.pk])} == {old.id, new.id}


def test_the_database_refuses_what_services_would_refuse(make_plot):
    plot = make_plot()
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cur:  # a self-crossing boundary written behind the services' back
            cur.execute("UPDATE plots_plot SET boundary = ST_GeomFromText("
                        "'MULTIPOLYGON(((0 0,1 1,1 0,0 1,0 0)))', 4326) WHERE id = %s", [plot.id])
    with pytest.raises(IntegrityError), transaction.atomic():
        PlotBoundary.objects.create(plot=plot, geom=plot.boundary, valid_from=date(2030, 1, 1), source="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        Plot.objects.filter(pk=plot.pk).update(declared_area=-1)


def test_protected_area_pieces_follow_the_area(db):
    ring = ", ".join(f"{-76 + 0.5 * __import__('math').cos(t / 100)} {-8 + 0.5 * __import__('math').sin(t / 100)}"
                     for t in range(0, 628))
    g = GEOSGeometry(f"SRID=4326;MULTIPOLYGON((({ring}, -75.5 -8)))")
    pa = ProtectedArea.objects.create(name="Test", category="national_park", official_code="T1", source="test",
                                      edition="1", geom=g)
    pieces = ProtectedAreaPiece.objects.filter(area=pa)
    assert pieces.count() >= 3  # 629 vertices → pieces of ≤ 256
    assert all(p.geom.num_coords <= 256 for p in pieces)
    union_area = sum(p.geom.area for p in pieces)
    assert union_area == pytest.approx(g.area, rel=1e-9)
    ProtectedArea.objects.filter(pk=pa.pk).update(geom=GEOSGeometry(
        "SRID=4326;MULTIPOLYGON(((0 0,1 0,1 1,0 0)))"))
    assert ProtectedAreaPiece.objects.filter(area=pa).count() == 1


def test_selectors_scope_by_role(make_plot, make_producer, org_a, org_b, owner, technician, buyer, investor):
    mine = make_plot(producer=make_producer(organization=org_a))
    theirs = make_plot(producer=make_producer(organization=org_b))
    assert set(selectors.plot_list(user=technician.user)) == {mine, theirs}
    assert set(selectors.plot_list(user=owner.user)) == {mine}
    assert not selectors.plot_list(user=buyer.user).exists()
    assert not selectors.plot_list(user=investor.user).exists()
