"""Investor aggregates: the concentration grid, its privacy rule, maps, site suggestions,
and that an investor reaches nothing else. Expected figures are summed independently
here (pyproj's Geod for areas, the h3 library for cells), never read back from the
code under test."""

from __future__ import annotations

import itertools
import json
from datetime import date
from decimal import Decimal

import h3
import numpy as np
import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.db import connection
from pyproj import Geod

from insights import concentration, privacy, sites
from plots import h3cells
from plots.errors import Forbidden, ValidationFailed
from plots.models import AdminArea, CheckResult, Plot, ProtectedArea

pytestmark = pytest.mark.django_db
GEOD = Geod(ellps="WGS84")
SIZE = 0.001  # plot squares of ~1.2 ha


def square_at(lat: float, lon: float, k: int = 0) -> dict:
    x, y = lon + (k % 3) * 0.0015 - 0.0015, lat + (k // 3) * 0.0015 - 0.0015
    return {"type": "Polygon", "coordinates": [[[x, y], [x + SIZE, y], [x + SIZE, y + SIZE], [x, y + SIZE], [x, y]]]}


def geod_ha(geometry: dict) -> float:
    lons, lats = zip(*geometry["coordinates"][0])
    return abs(GEOD.polygon_area_perimeter(lons, lats)[0]) / 10_000


@pytest.fixture
def cells():
    """Res-7 cells A, B, C (children of one res-6 cell) and a far cell D."""
    parent = h3.latlng_to_cell(-8.20, -76.50, 6)
    a, b, c = sorted(h3.cell_to_children(parent, 7))[:3]
    d = h3.latlng_to_cell(-9.30, -75.00, 7)
    return {"parent": parent, "A": a, "B": b, "C": c, "D": d}


@pytest.fixture
def farmed(cells, make_producer, make_plot, org_a):
    """A: 10 producers (5 women), 11 plots, 5 fine-flavour and 5 bulk grafters, one
    flagged plot: a privacy unit alone. B: 2 producers and C: 3 (gender not recorded):
    a unit together, at their res-6 parent. D: 1 producer, far: withheld."""
    from nurseries.models import Clone
    from nurseries.services import grafting_create

    fine = Clone.objects.create(code="ICS-95-T", fine_flavour=True)
    bulk = Clone.objects.create(code="CCN-51-T", fine_flavour=False)
    made = {}
    for cell, producers in (("A", 10), ("B", 2), ("C", 3), ("D", 1)):
        lat, lon = h3.cell_to_latlng(cells[cell])
        made[cell] = []
        for i in range(producers):
            gender = ("female" if i < 5 else "male") if cell == "A" else "unknown"
            person = make_producer(organization=org_a, gender=gender)
            geom = square_at(lat, lon, i)
            made[cell].append((make_plot(producer=person, geometry_value=geom, planting_year=2015), geom))
        if cell == "A":  # a second, young plot for the first producer of A
            geom = square_at(lat, lon, 10)
            made[cell].append((make_plot(producer=made[cell][0][0].producer, geometry_value=geom,
                                         planting_year=date.today().year - 3), geom))
    a_plots = [p for p, _ in made["A"]]
    for i, ha in enumerate(FINE_HA):
        grafting_create(code=f"g-f{i}", plot=a_plots[i], grafted_on=date.today(), clone=fine, grafts=300,
                        grafted_ha=Decimal(ha))
    for i in range(5, 10):
        grafting_create(code=f"g-b{i}", plot=a_plots[i], grafted_on=date.today(), clone=bulk, grafts=100,
                        grafted_ha=Decimal(BULK_HA))
    CheckResult.objects.create(plot=a_plots[3], kind="protected_area_overlap", outcome="fail", figures={},
                               datasets={}, method_version="test")
    return made


FINE_HA = ("0.5", "0.4", "1.0", "0.3", "0.2")
BULK_HA = "0.1"


def by_id(result) -> dict:
    return {area.key: area for area in result.areas}


def test_h3_cells_and_their_parents_match_the_h3_library(farmed, cells):
    plot, geom = farmed["A"][0]
    plot.refresh_from_db()
    assert h3.int_to_str(plot.h3_cell) == h3.latlng_to_cell(*reversed(shapely_point_inside(geom)), 9)
    with connection.cursor() as cur:
        for res in range(5, 10):
            cur.execute("SELECT chacra_h3_parent(%s, %s)", [plot.h3_cell, res])
            assert h3.int_to_str(cur.fetchone()[0]) == h3.cell_to_parent(h3.int_to_str(plot.h3_cell), res)
        # A geometry changed behind the services' back loses its cell; refresh() restores it.
        cur.execute("UPDATE plots_plot SET boundary = ST_Translate(boundary, 0.05, 0) WHERE id = %s", [plot.id])
    plot.refresh_from_db()
    assert plot.h3_cell is None
    assert h3cells.refresh([plot.id]) == 1
    plot.refresh_from_db()
    centre = plot.boundary.point_on_surface
    assert h3.int_to_str(plot.h3_cell) == h3.latlng_to_cell(centre.y, centre.x, 9)


def test_a_concentration_read_writes_nothing_and_chacra_check_fills_cells(farmed, investor):
    """Reads never write: a cell cleared by a raw geometry write stays empty through an
    investor's GET, which issues no UPDATE, INSERT or DELETE; ``chacra check`` (a
    write path) fills it."""
    from io import StringIO

    from django.core.management import call_command
    from django.test.utils import CaptureQueriesContext

    plot, _ = farmed["A"][0]
    with connection.cursor() as cur:
        cur.execute("UPDATE plots_plot SET boundary = ST_Translate(boundary, 0.0001, 0) WHERE id = %s", [plot.id])
    with CaptureQueriesContext(connection) as captured:
        assert investor.client.get("/api/v1/concentration?metric=hectares&grid=h3:7").status_code == 200
    statements = [q["sql"].lstrip().upper() for q in captured.captured_queries]
    assert statements and not [s for s in statements if s.startswith(("UPDATE", "INSERT", "DELETE"))]
    plot.refresh_from_db()
    assert plot.h3_cell is None
    call_command("check", "--plot", plot.code, "--kind", "area_discrepancy", stdout=StringIO())
    plot.refresh_from_db()
    centre = plot.boundary.point_on_surface
    assert h3.int_to_str(plot.h3_cell) == h3.latlng_to_cell(centre.y, centre.x, 9)


def shapely_point_inside(geom: dict) -> tuple[float, float]:
    from shapely.geometry import shape

    point = shape(geom).point_on_surface()
    return point.x, point.y


def test_aggregates_equal_independent_sums(farmed, cells):
    result = concentration.concentration(metric="hectares", grid="h3:7", protected=False)
    a = by_id(result)[cells["A"]]
    plots_a = farmed["A"]
    assert a.values["plots"] == 11 and a.values["producers"] == 10
    assert a.values["hectares"] == pytest.approx(sum(geod_ha(g) for _, g in plots_a), rel=1e-9)
    assert a.values["women_share"] == pytest.approx(5 / 10)
    areas = [geod_ha(g) for _, g in plots_a]
    fine = sum(float(h) for h in FINE_HA)
    assert a.values["grafted_ha"] == pytest.approx(fine + 5 * float(BULK_HA), rel=1e-9)
    assert a.values["fine_flavour_ha"] == pytest.approx(fine, rel=1e-9)
    assert a.values["flagged_plots"] == 1
    # Yield by age (defaults 0:0, 3:150, 4:350, 5:518): ten mature plots, one in its third year.
    assert a.values["production_kg"] == pytest.approx(sum(areas[:10]) * 518 + areas[10] * 150, rel=1e-9)


def test_every_area_is_a_sum_over_whole_units_and_no_member_cell_is_shown(farmed, cells):
    result = concentration.concentration(metric="producers", grid="h3:7")
    shown = by_id(result)
    assert set(shown) == {cells["A"], cells["parent"]}  # D (one producer, far away) is withheld
    together = shown[cells["parent"]]
    assert together.level == "h3:6" and together.values["producers"] == 5 and together.values["plots"] == 5
    assert "flagged_plots" not in together.values  # not for roles without plot access
    doc = concentration.to_geojson(result)
    text = json.dumps(doc)
    assert cells["B"] not in text and cells["C"] not in text and cells["D"] not in text
    # B and C are drawn as their whole parent cell, not as the union of the two small cells.
    from shapely.geometry import shape

    region = shape(next(f for f in doc["features"] if f["id"] == cells["parent"])["geometry"])
    parent = shape(h3.cells_to_geo([cells["parent"]]))
    assert region.symmetric_difference(parent).area < 1e-12
    assert [f["id"] for f in doc["features"]][0] == cells["parent"]  # coarser first: finer cells drawn on top
    assert len(doc["classes"]["breaks"]) >= 1 and all(f["properties"]["class"] is not None for f in doc["features"])
    # Every grid from the same units: h3:9 shows A's and the pair's cells, h3:5 one cell with all 15.
    fine = concentration.concentration(metric="producers", grid="h3:9")
    assert sorted(a.values["producers"] for a in fine.areas) == [5, 10]
    (coarse,) = concentration.concentration(metric="producers", grid="h3:5").areas
    assert coarse.values["producers"] == 15 and coarse.key == h3.cell_to_parent(cells["A"], 5)
    # Technicians may ask for a larger k; nobody for a smaller one; other roles get k fixed.
    assert all(a.values["producers"] >= 6 for a in concentration.concentration(grid="h3:7", k=6,
                                                                                protected=False).areas)
    with pytest.raises(ValidationFailed):
        concentration.concentration(k=2, protected=False)
    with pytest.raises(Forbidden):
        concentration.concentration(k=6)


def test_a_unit_keeps_every_class_absent_or_at_least_k(farmed, cells):
    """Four women and six men in one cell: 1 … k−1 women would be published, so the
    cell cannot be a unit alone (the women's share minus another map would single
    them out); with everyone else it makes one unit, or none."""
    from plots.models import Producer

    first = farmed["A"][0][0].producer
    Producer.objects.filter(id=first.id).update(gender="male")
    part = concentration.partition()
    assert all(privacy.is_safe(len(u.members), _counts(u), 5) for u in part.units)
    cell_a = [u for u in part.units if u.res == 7 and h3.int_to_str(u.cell) == cells["A"]]
    assert cell_a == []


def _counts(unit) -> dict[str, int]:
    return {name: sum(name in p.classes for p in unit.members) for name in privacy.CLASSES}


def test_admin_grid_places_each_unit_in_its_main_district(farmed, cells):
    dept = AdminArea.objects.create(ubigeo="22", name="SAN MARTIN", level="department", edition=2007)
    prov = AdminArea.objects.create(ubigeo="2210", name="TOCACHE", level="province", edition=2007, parent=dept)
    lat, lon = h3.cell_to_latlng(cells["A"])
    big = AdminArea.objects.create(ubigeo="221001", name="TOCACHE", level="district", edition=2007, parent=prov,
                                   geom=MultiPolygon(Polygon.from_bbox((lon - 0.02, lat - 0.02, lon + 0.02,
                                                                        lat + 0.02)), srid=4326))
    small = AdminArea.objects.create(ubigeo="221002", name="NUEVO PROGRESO", level="district", edition=2007,
                                     parent=prov, geom=MultiPolygon(Polygon.from_bbox((-75.1, -9.4, -74.9, -9.2)),
                                                                    srid=4326))
    Plot.objects.filter(id__in=[p.id for p, _ in farmed["A"]]).update(district=big)
    Plot.objects.filter(id__in=[p.id for p, _ in farmed["D"]]).update(district=small)
    # One of A's plots in the small district: the unit still counts wholly in Tocache, its main district.
    Plot.objects.filter(id=farmed["A"][1][0].id).update(district=small)
    result = concentration.concentration(metric="hectares", grid="district")
    assert [a.key for a in result.areas] == ["221001"]
    assert result.areas[0].values["plots"] == 11
    doc = concentration.to_geojson(result)
    assert doc["features"][0]["properties"]["name"] == "TOCACHE"
    assert doc["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert [a.key for a in concentration.concentration(grid="province").areas] == ["2210"]
    assert concentration.concentration(grid="h3:7", region="22").areas[0].key == cells["A"]


def test_filters_are_for_roles_that_see_plots(farmed, cells, org_b, make_producer, make_plot):
    fine = concentration.concentration(metric="plots", grid="h3:7", clone="ICS-95-T", protected=False)
    assert sum(a.values["plots"] for a in fine.areas) == 5 and fine.filters == {"clone": "ICS-95-T"}
    everyone = concentration.concentration(metric="plots", grid="h3:7", planting_year="2000..2030", protected=False)
    assert sum(a.values["plots"] for a in everyone.areas) == 16  # D's one plot withheld
    only_young = concentration.concentration(metric="plots", grid="h3:7", planting_year=str(date.today().year - 3),
                                             protected=False)
    assert only_young.areas == []
    for cut in ({"clone": "ICS-95-T"}, {"organization": "coop-a"}, {"planting_year": "2015"}):
        with pytest.raises(Forbidden):
            concentration.concentration(**cut)
    with pytest.raises(Forbidden):
        concentration.concentration(metric="flagged_plots")
    with pytest.raises(ValidationFailed):
        concentration.concentration(planting_year="recent", protected=False)
    with pytest.raises(ValidationFailed):
        concentration.concentration(grid="h3:12")


def test_concentration_api_png_and_command(farmed, cells, investor, tmp_path):
    from django.core.management import call_command

    body = investor.client.get("/api/v1/concentration?metric=hectares&grid=h3:7")
    assert body.status_code == 200 and body["Content-Type"] == "application/geo+json"
    doc = body.json()
    assert {f["id"] for f in doc["features"]} == {cells["A"], cells["parent"]}
    text = json.dumps(doc)
    assert not any(p.code in text for group in farmed.values() for p, _ in group)  # no plot code
    assert not any(p.producer.name in text for group in farmed.values() for p, _ in group)  # no producer
    png = investor.client.get("/api/v1/concentration.png?metric=fine_flavour_ha")
    assert png["Content-Type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n" and len(png.content) > 20_000
    assert investor.client.get("/api/v1/concentration?metric=nope").status_code == 400
    assert investor.client.get("/api/v1/concentration?k=1").status_code == 400  # below any k
    assert investor.client.get("/api/v1/concentration?k=6").status_code == 403  # fixed for investors
    assert investor.client.get("/api/v1/concentration?organization=coop-a").status_code == 403
    call_command("concentration", "--metric", "fine_flavour_ha", "--grid", "h3:7", "--png", str(tmp_path / "c.png"),
                 "--geojson", str(tmp_path / "c.geojson"))
    assert json.loads((tmp_path / "c.geojson").read_text())["metric"] == "fine_flavour_ha"
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- investors see nothing else

def test_an_investor_reaches_no_plot_producer_or_lot(farmed, investor):
    """Every API route: aggregates and public reference layers answer; everything else
    answers 403, 404 or nothing at all."""
    from django.urls import URLPattern, get_resolver

    plot = farmed["A"][0][0]
    codes = {"code": plot.code, "layer": "plots", "kind": "lots"}
    # The QGIS project holds layer references, no data: an investor's names the
    # reference layers and the concentration grid only (tests/test_qgis.py).
    aggregates = {"concentration", "concentration-png", "site-suggestions", "stats-grafting", "admin-area-list",
                  "protected-area-list", "qgis-project"}
    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/")
    checked = 0
    for pattern in api.url_patterns:
        if not isinstance(pattern, URLPattern) or pattern.name is None or pattern.name in aggregates:
            continue
        route = str(pattern.pattern)
        url = "/api/v1/" + route
        for name, value in codes.items():
            url = url.replace(f"<slug:{name}>", value).replace(f"<str:{name}>", value)
        response = investor.client.get(url + ("?format=geojson" if "exports" in url else ""))
        checked += 1
        if response.status_code in (403, 404, 405):
            continue
        assert response.status_code == 200, (url, response.status_code)
        body = response.json()
        items = body.get("features", body.get("results", body.get("items")))
        assert items == [] or body.get("count") == 0, (url, str(body)[:200])
    assert checked >= 8
    # OGC, tiles and exports: plots are nothing, tiles and files forbidden.
    assert investor.client.get("/ogc/collections/plots/items").json()["numberMatched"] == 0
    assert investor.client.get("/tiles/plots/10/300/530.mvt").status_code == 403
    assert investor.client.get("/api/v1/exports/plots?format=csv").status_code == 403


# --------------------------------------------------------------------------- site suggestions

def test_site_suggestions_find_the_known_optimum_and_beat_the_existing_layout(org_a, make_producer, make_plot):
    """Two clusters of production 110 km apart and one existing centre far from both:
    two new sites belong one in each cluster. The optimum is checked by trying every
    pair of candidate cells, with distances from pyproj."""
    from traceability.models import Facility
    from django.contrib.gis.geos import Point

    clusters = {"west": (-8.20, -76.50), "east": (-8.20, -75.50)}
    for name, (lat, lon) in clusters.items():
        centre = h3.latlng_to_cell(lat, lon, 7)
        ring = [centre] + [c for c in h3.grid_ring(centre, 1)][:2]
        for n, cell in enumerate(ring):
            clat, clon = h3.cell_to_latlng(cell)
            for i in range(3 if n == 0 else 2):  # more production in the centre cell
                person = make_producer(organization=org_a)
                make_plot(producer=person, geometry_value=square_at(clat, clon, i))
    Facility.objects.create(code="old-centre", name="Centro antiguo", kind="collection_centre", organization=org_a,
                            location=Point(-76.0, -9.5, srid=4326))
    s = sites.suggest_sites(n=2, keep_existing=True, resolution=7)
    new = [site for site in s.sites if not site["existing"]]
    assert len(new) == 2 and sum(site["existing"] for site in s.sites) == 1
    assert s.after_km < s.before_km
    # Brute force over every pair of candidate cells, independently.
    demand = sites._demand(7, None)
    lon = np.array([d[1] for d in demand])
    lat = np.array([d[2] for d in demand])
    w = np.array([d[3] for d in demand])

    def cost(points):
        best = None
        for px, py in points:
            _, _, m = GEOD.inv(lon, lat, np.full_like(lon, px), np.full_like(lat, py))
            best = m if best is None else np.minimum(best, m)
        return float((best / 1000 * w).sum() / w.sum())

    old = (-76.0, -9.5)
    optimum = min(cost([old, (lon[i], lat[i]), (lon[j], lat[j])]) for i, j in itertools.combinations(range(len(demand)), 2))
    assert s.after_km == pytest.approx(optimum, rel=1e-9)
    assert s.before_km == pytest.approx(cost([old]), rel=1e-9)
    chosen = sorted(site["lon"] for site in new)
    assert chosen[0] < -76.3 and chosen[1] > -75.7  # one per cluster


def test_site_suggestions_avoid_protected_areas_and_answer_as_png(org_a, make_producer, make_plot, investor):
    lat, lon = -8.20, -76.50
    centre = h3.latlng_to_cell(lat, lon, 7)
    for n, cell in enumerate([centre] + list(h3.grid_ring(centre, 1))):
        clat, clon = h3.cell_to_latlng(cell)
        for i in range(8 if n == 0 else 5):  # each cell a privacy unit of its own; most in the centre
            make_plot(producer=make_producer(organization=org_a), geometry_value=square_at(clat, clon, i))
    clat, clon = h3.cell_to_latlng(centre)
    ProtectedArea.objects.create(name="Reserva", category="national_park", official_code="RES", source="test",
                                 edition="t", geom=MultiPolygon(Polygon.from_bbox((clon - 0.002, clat - 0.002,
                                                                                   clon + 0.002, clat + 0.002)),
                                                                srid=4326))
    s = sites.suggest_sites(n=1, keep_existing=False)
    assert s.sites[0]["cell"] != centre  # the best cell lies in the reserve
    response = investor.client.get("/api/v1/site-suggestions?n=1&keep_existing=false&format=png")
    assert response.status_code == 200 and response.content[:4] == b"\x89PNG"
    doc = investor.client.get("/api/v1/site-suggestions?n=1&keep_existing=false").json()
    assert doc["summary"]["new_sites"] == 1 and doc["summary"]["mean_distance_km_after"] > 0
    assert investor.client.get("/api/v1/site-suggestions?n=0").status_code == 400
