"""A lineage graph worked by hand, and the rules that refuse bad writes.

    seed S (1000, N1) ──800──▶ rootstock R (750, N1) ──600──▶ grafted G  (600, N1, ICS-95) ─▶ P1 400, P2 150
                                                   └──100──▶ grafted G2 (100, N1, ICS-95) ─▶ P2 80
    budwood B (100 sticks, ICS-95, cut on mother plot M) ──60──▶ G, ──10──▶ G2;  B ─▶ P3 20 sticks,
    grafted on P3 (0.5 ha) with B.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry, Point
from pyproj import Geod

from nurseries import lineage, selectors, services, stats
from nurseries.models import Clone, Dispatch, Grafting, LotParent, MaterialLot
from plots.errors import ValidationFailed
from plots.models import AdminArea
from tests.conftest import square

D = date


@pytest.fixture
def areas(db):
    """A department/province/district around the test plots (lon -76.6..-76.3, lat -8.3..-8.0)."""
    dept = AdminArea.objects.create(ubigeo="22", name="SAN MARTIN", level="department", edition=2007)
    prov = AdminArea.objects.create(ubigeo="2210", name="TOCACHE", level="province", edition=2007, parent=dept)
    box = GEOSGeometry("MULTIPOLYGON(((-76.6 -8.3,-76.3 -8.3,-76.3 -8.0,-76.6 -8.0,-76.6 -8.3)))", srid=4326)
    return AdminArea.objects.create(ubigeo="221001", name="TOCACHE", level="district", edition=2007, parent=prov,
                                    geom=box)


@pytest.fixture
def graph(areas, make_org, make_producer, make_plot):
    services.clones_load()
    ics95, ccn51 = Clone.objects.get(code="ICS-95"), Clone.objects.get(code="CCN-51")
    org = make_org(code="coop-lineage")
    producer = make_producer(organization=org)
    plot = {name: make_plot(producer=producer, code=name, geometry_value=square(-76.50 + i * 0.01, -8.19, 0.002),
                            valid_from=D(2020, 1, 1))
            for i, name in enumerate(["m", "p1", "p2", "p3"])}
    n1 = services.nursery_create(code="n1", name="Vivero 1", kind="cacao_seedling", location=Point(-76.45, -8.15,
                                 srid=4326), established_on=D(2023, 1, 1), operator_organization=org)
    s = services.lot_create(code="s", kind="seed", quantity=1000, produced_on=D(2024, 1, 10), nursery=n1)
    r = services.lot_create(code="r", kind="rootstock_seedling", quantity=750, produced_on=D(2024, 3, 1), nursery=n1,
                            parents=[(s, 800)])
    b = services.lot_create(code="b", kind="budwood", quantity=100, produced_on=D(2024, 5, 1), clone=ics95,
                            source_plot=plot["m"])
    g = services.lot_create(code="g", kind="grafted_plant", quantity=600, produced_on=D(2024, 6, 1), nursery=n1,
                            clone=ics95, parents=[(r, 600), (b, 60)])
    g2 = services.lot_create(code="g2", kind="grafted_plant", quantity=100, produced_on=D(2024, 6, 15), nursery=n1,
                             clone=ics95, parents=[(r, 100), (b, 10)])
    services.dispatch_create(code="d1", lot=g, quantity=400, dispatched_on=D(2024, 9, 1), to_plot=plot["p1"])
    services.dispatch_create(code="d2", lot=g, quantity=150, dispatched_on=D(2024, 9, 2), to_plot=plot["p2"])
    services.dispatch_create(code="d3", lot=g2, quantity=80, dispatched_on=D(2024, 9, 3), to_plot=plot["p2"])
    services.dispatch_create(code="d4", lot=b, quantity=20, dispatched_on=D(2024, 5, 5), to_plot=plot["p3"])
    services.grafting_create(code="gr1", plot=plot["p3"], grafted_on=D(2024, 5, 10), clone=ics95, grafts=60,
                             grafted_ha=Decimal("0.5"), budwood_lot=b, survivors=51,
                             survivors_counted_on=D(2024, 11, 1))
    lots = {lot.code: lot for lot in MaterialLot.objects.all()}
    return {"plot": plot, "lot": lots, "n1": n1, "ics95": ics95, "ccn51": ccn51, "org": org}


def _codes(ids):
    return sorted(MaterialLot.objects.filter(id__in=ids).values_list("code", flat=True))


def test_it_walks_ancestors_and_descendants(graph):
    lot = graph["lot"]
    assert _codes(lineage.ancestor_ids(lot["g"].id)) == ["b", "r", "s"]
    assert _codes(lineage.ancestor_ids(lot["s"].id)) == []
    assert _codes(lineage.descendant_ids(lot["s"].id)) == ["g", "g2", "r"]
    assert _codes(lineage.descendant_ids(lot["b"].id)) == ["g", "g2"]
    nodes, edges = lineage.closure(lot["g"].id, "up")
    assert [n.code for n in nodes] == ["s", "r", "b", "g"]  # in production order
    assert sorted((e.parent_id, e.child_id, e.quantity) for e in edges) == sorted([
        (lot["r"].id, lot["g"].id, 600), (lot["b"].id, lot["g"].id, 60), (lot["s"].id, lot["r"].id, 800)])
    nodes, edges = lineage.closure(lot["b"].id, "down")
    assert [n.code for n in nodes] == ["b", "g", "g2"] and len(edges) == 2


def test_it_finds_every_plot_reached(graph):
    plot, lot = graph["plot"], graph["lot"]
    by_seed = {r.plot_id: r for r in lineage.plots_reached(lot["s"].id)}
    assert set(by_seed) == {plot["p1"].id, plot["p2"].id}
    assert (by_seed[plot["p1"].id].dispatched, by_seed[plot["p1"].id].dispatches) == (400, 1)
    assert (by_seed[plot["p2"].id].dispatched, by_seed[plot["p2"].id].dispatches) == (150 + 80, 2)
    assert by_seed[plot["p2"].id].lot_ids == sorted([lot["g"].id, lot["g2"].id])
    by_budwood = {r.plot_id: r for r in lineage.plots_reached(lot["b"].id)}
    assert set(by_budwood) == {plot["p1"].id, plot["p2"].id, plot["p3"].id}
    p3 = by_budwood[plot["p3"].id]
    assert (p3.dispatched, p3.dispatches, p3.grafts, p3.graftings) == (20, 1, 60, 1)
    assert (p3.first, p3.last) == ("2024-05-05", "2024-05-10")


def test_it_traces_the_genetic_origin_of_a_plot(graph, technician):
    genetics = selectors.plot_genetics(user=technician.user, code="p2")
    rows = {row.lot_code: row for row in genetics.origin}
    assert sorted(rows) == ["b", "g", "g2", "r", "s"]
    assert {code for code, row in rows.items() if row.direct} == {"g", "g2"}
    assert {row.clone for row in rows.values() if row.clone} == {"ICS-95"}
    assert {row.nursery for row in rows.values() if row.nursery} == {"n1"}
    assert [p.code for p in genetics.mother_plots.values()] == ["m"]
    code = {lot.id: lot.code for lot in MaterialLot.objects.all()}
    assert sorted((code[e.parent_id], code[e.child_id], e.quantity) for e in genetics.edges) == [
        ("b", "g", 60), ("b", "g2", 10), ("r", "g", 600), ("r", "g2", 100), ("s", "r", 800)]
    assert sum(d.quantity for d in genetics.dispatches) == 230


def test_it_counts_the_clone_mix_and_grafted_hectares(graph):
    # A second grafting of CCN-51 on P1 as a sub-polygon: its hectares are its geodesic area.
    p1 = graph["plot"]["p1"]
    west_half = GEOSGeometry("POLYGON((-76.49 -8.19,-76.489 -8.19,-76.489 -8.188,-76.49 -8.188,-76.49 -8.19))",
                             srid=4326)
    g = services.grafting_create(code="gr2", plot=p1, grafted_on=D(2025, 2, 1), clone=graph["ccn51"], grafts=300,
                                 area=west_half)
    area_m2, _ = Geod(ellps="WGS84").geometry_area_perimeter(shapely.from_wkt(west_half.wkt))
    expected = Decimal(abs(area_m2) / 10_000).quantize(Decimal("0.0001"))
    g.refresh_from_db()
    assert g.grafted_ha == expected  # the trigger's PostGIS area equals pyproj's to the 4th decimal
    by_clone = {row.key: row for row in stats.grafting_stats(by="clone")}
    assert by_clone["ICS-95"].grafted_ha == Decimal("0.5000") and by_clone["ICS-95"].grafts == 60
    assert by_clone["ICS-95"].survivors == 51
    assert by_clone["CCN-51"].grafted_ha == expected
    (region,) = stats.grafting_stats(by="region")
    assert region.key == "22" and region.name == "SAN MARTIN"
    assert region.grafted_ha == Decimal("0.5000") + expected
    # Planted: P1 and P2 received grafted plants; P3 only budwood (not planting material).
    areas_ha = [graph["plot"][c].area_ha for c in ("p1", "p2")]
    assert region.planted_ha == sum(Decimal(repr(a)).quantize(Decimal("0.0001")) for a in areas_ha)
    assert region.plots_planted == 2 and region.plots_grafted == 2
    assert region.clones == {"ICS-95": Decimal("0.5000"), "CCN-51": expected}
    by_plot = {row.key: row for row in stats.grafting_stats(by="plot")}
    assert by_plot["p1"].clones == {"CCN-51": expected} and by_plot["p3"].clones == {"ICS-95": Decimal("0.5000")}
    assert by_plot["p2"].grafted_ha == 0 and by_plot["p2"].plots_planted == 1


def test_it_refuses_a_cycle_and_writes_nothing(graph):
    lot = graph["lot"]
    before = LotParent.objects.count()
    with pytest.raises(ValidationFailed, match="lot s cannot be made from lot g"):
        services.lot_update(lot=lot["s"], parents=[(lot["g"], 1)])
    assert LotParent.objects.count() == before


def test_the_database_refuses_a_cycle_too(graph):
    lot = graph["lot"]
    with pytest.raises(ValidationFailed, match="would loop"), services.database_rules():
        LotParent.objects.create(parent=lot["g2"], child=lot["r"], quantity=1)


def test_it_refuses_an_over_dispatch_and_writes_nothing(graph):
    lot, plot = graph["lot"], graph["plot"]
    before = Dispatch.objects.count()
    with pytest.raises(ValidationFailed, match="lot b, which has only 10 left"):
        services.dispatch_create(code="d9", lot=lot["b"], quantity=11, dispatched_on=D(2024, 9, 1), to_plot=plot["p1"])
    with pytest.raises(ValidationFailed, match="lot b holds 100 units, but 101 would leave it"), \
            services.database_rules():
        Dispatch.objects.create(code="d9", lot=lot["b"], quantity=11, dispatched_on=D(2024, 9, 1), to_plot=plot["p1"])
    assert Dispatch.objects.count() == before
    services.dispatch_create(code="d9", lot=lot["b"], quantity=10, dispatched_on=D(2024, 9, 1), to_plot=plot["p1"])


def test_it_refuses_a_lot_that_draws_more_than_its_parent_holds(graph):
    lot = graph["lot"]
    with pytest.raises(ValidationFailed, match="lot r, which has only 50 left"):
        services.lot_create(code="g3", kind="grafted_plant", quantity=60, produced_on=D(2024, 7, 1),
                            nursery=graph["n1"], clone=graph["ics95"], parents=[(lot["r"], 60)])
    assert not MaterialLot.objects.filter(code="g3").exists()


def test_it_refuses_dates_that_run_backwards(graph):
    lot, plot = graph["lot"], graph["plot"]
    with pytest.raises(ValidationFailed, match="before the lot was produced"):
        services.dispatch_create(code="d8", lot=lot["g"], quantity=1, dispatched_on=D(2024, 5, 1), to_plot=plot["p1"])
    with pytest.raises(ValidationFailed, match="produced later"):
        services.lot_create(code="g4", kind="grafted_plant", quantity=5, produced_on=D(2024, 2, 1),
                            nursery=graph["n1"], clone=graph["ics95"], parents=[(lot["r"], 5)])
    assert not MaterialLot.objects.filter(code="g4").exists()


def test_redating_a_lot_cannot_make_the_lineage_run_backwards(graph):
    with pytest.raises(ValidationFailed, match="lot s cannot be dated 2024-12-01"):
        services.lot_update(lot=graph["lot"]["s"], produced_on=D(2024, 12, 1))
    assert MaterialLot.objects.get(code="s").produced_on == D(2024, 1, 10)
    with pytest.raises(ValidationFailed, match="cannot hold only 500 units: 800 have already"):
        services.lot_update(lot=graph["lot"]["s"], quantity=500)


def test_it_refuses_a_graft_outside_the_plot(graph):
    p1 = graph["plot"]["p1"]  # the square -76.49..-76.488, -8.19..-8.188
    across = GEOSGeometry("POLYGON((-76.4885 -8.19,-76.4875 -8.19,-76.4875 -8.189,-76.4885 -8.189,-76.4885 -8.19))",
                          srid=4326)
    assert not shapely.from_wkt(p1.boundary.wkt).covers(shapely.from_wkt(across.wkt))  # independent check
    with pytest.raises(ValidationFailed, match="outside plot p1"):
        services.grafting_create(code="gx", plot=p1, grafted_on=D(2025, 1, 1), clone=graph["ics95"], grafts=10,
                                 area=across)
    with pytest.raises(ValidationFailed, match="lies partly outside plot p1"), services.database_rules():
        Grafting.objects.create(code="gx", plot=p1, grafted_on=D(2025, 1, 1), clone=graph["ics95"], grafts=10,
                                grafted_ha=Decimal("0.1"), area=GEOSGeometry(f"MULTIPOLYGON((({across.wkt[10:-2]})))",
                                                                             srid=4326))
    assert not Grafting.objects.filter(code="gx").exists()


def test_it_checks_the_boundary_in_force_on_the_grafting_date(graph):
    from plots import services as plot_services

    p1 = graph["plot"]["p1"]
    plot_services.plot_update_boundary(plot=p1, geometry_value=square(-76.49, -8.19, 0.001), valid_from=D(2025, 1, 1))
    corner = GEOSGeometry("POLYGON((-76.4885 -8.1885,-76.4882 -8.1885,-76.4882 -8.1882,-76.4885 -8.1882,"
                          "-76.4885 -8.1885))", srid=4326)  # inside the 2020 boundary, outside the 2025 one
    services.grafting_create(code="old", plot=p1, grafted_on=D(2024, 12, 1), clone=graph["ics95"], grafts=5,
                             area=corner)
    with pytest.raises(ValidationFailed, match="outside plot p1"):
        services.grafting_create(code="new", plot=p1, grafted_on=D(2025, 2, 1), clone=graph["ics95"], grafts=5,
                                 area=corner)


def test_it_refuses_grafted_hectares_beyond_the_plot_area(graph):
    p3 = graph["plot"]["p3"]
    with pytest.raises(ValidationFailed, match="more than the plot's"):
        services.grafting_create(code="big", plot=p3, grafted_on=D(2024, 6, 1), clone=graph["ics95"], grafts=10,
                                 grafted_ha=Decimal(repr(p3.area_ha)))  # 0.5 ha are already grafted
    with pytest.raises(ValidationFailed, match="more than its"), services.database_rules():
        Grafting.objects.create(code="big", plot=p3, grafted_on=D(2024, 6, 1), clone=graph["ics95"], grafts=10,
                                grafted_ha=Decimal(repr(p3.area_ha)))
    assert not Grafting.objects.filter(code="big").exists()
    services.grafting_create(code="fits", plot=p3, grafted_on=D(2024, 6, 1), clone=graph["ics95"], grafts=10,
                             grafted_ha=Decimal(repr(p3.area_ha - 0.5)).quantize(Decimal("0.0001")))


def test_it_reports_what_each_nursery_produced_and_dispatched(graph):
    output = stats.nursery_output([graph["n1"].id])[graph["n1"].id]
    assert output.lots == 4 and output.produced == 1000 + 750 + 600 + 100
    assert output.passed_on == 800 + 600 + 100
    assert output.dispatched_to_plots == 400 + 150 + 80 and output.dispatched_to_nurseries == 0


def test_a_plot_surveyed_as_a_point_grafts_within_its_declared_area(graph, make_plot):
    point = make_plot(producer=graph["plot"]["m"].producer, code="pt", valid_from=D(2020, 1, 1),
                      geometry_value={"type": "Point", "coordinates": [-76.45, -8.2]}, declared_area=2,
                      declared_area_unit="ha")
    corner = GEOSGeometry("POLYGON((-76.45 -8.2,-76.449 -8.2,-76.449 -8.199,-76.45 -8.2))", srid=4326)
    with pytest.raises(ValidationFailed, match="surveyed as a point"):
        services.grafting_create(code="pa", plot=point, grafted_on=D(2024, 6, 1), clone=graph["ics95"], grafts=5,
                                 area=corner)
    with pytest.raises(ValidationFailed, match="more than the plot's 2.0000 ha"):
        services.grafting_create(code="pb", plot=point, grafted_on=D(2024, 6, 1), clone=graph["ics95"], grafts=5,
                                 grafted_ha=Decimal("2.5"))
    services.grafting_create(code="pc", plot=point, grafted_on=D(2024, 6, 1), clone=graph["ics95"], grafts=5,
                             grafted_ha=Decimal("2"))


def test_a_grafting_before_the_plot_had_a_boundary_is_refused(graph):
    with pytest.raises(ValidationFailed, match="had no boundary in force on 2019-06-01"):
        services.grafting_create(code="early", plot=graph["plot"]["p1"], grafted_on=D(2019, 6, 1),
                                 clone=graph["ics95"], grafts=5, grafted_ha=Decimal("0.1"))


def test_budwood_of_another_clone_is_refused(graph):
    with pytest.raises(ValidationFailed, match="budwood lot b is ICS-95, not CCN-51"):
        services.grafting_create(code="mix", plot=graph["plot"]["p1"], grafted_on=D(2024, 6, 1),
                                 clone=graph["ccn51"], grafts=5, grafted_ha=Decimal("0.1"),
                                 budwood_lot=graph["lot"]["b"])
