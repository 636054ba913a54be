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

from plots import concentration, h3cells, sites
from plots.errors import ValidationFailed
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
    """A: 6 producers (3 women), 7 plots; B: 2 producers; C: 3 producers; D: 1 producer."""
    from nurseries.models import Clone
    from nurseries.services import grafting_create

    fine = Clone.objects.create(code="ICS-95-T", fine_flavour=True)
    bulk = Clone.objects.create(code="CCN-51-T", fine_flavour=False)
    made = {}
    for cell, producers in (("A", 6), ("B", 2), ("C", 3), ("D", 1)):
        lat, lon = h3.cell_to_latlng(cells[cell])
        made[cell] = []
        for i in range(producers):
            person = make_producer(organization=org_a, gender="female" if (cell == "A" and i < 3) else "male")
            geom = square_at(lat, lon, i)
            made[cell].append((make_plot(producer=person, geometry_value=geom, planting_year=2015), geom))
        if cell == "A":  # a second plot for the first producer of A
            geom = square_at(lat, lon, 7)
            made[cell].append((make_plot(producer=made[cell][0][0].producer, geometry_value=geom,
                                         planting_year=date.today().year - 3), geom))
    a_plots = [p for p, _ in made["A"]]
    grafting_create(code="g-1", plot=a_plots[0], grafted_on=date.today(), clone=fine, grafts=300,
                    grafted_ha=Decimal("0.5"))
    grafting_create(code="g-2", plot=a_plots[1], grafted_on=date.today(), clone=bulk, grafts=300,
                    grafted_ha=Decimal("0.4"))
    grafting_create(code="g-3", plot=a_plots[2], grafted_on=date.today(), clone=fine, grafts=900,
                    grafted_ha=Decimal("1.0"))
    CheckResult.objects.create(plot=a_plots[3], kind="protected_area_overlap", outcome="fail", figures={},
                               datasets={}, method_version="test")
    return made


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


def shapely_point_inside(geom: dict) -> tuple[float, float]:
    from shapely.geometry import shape

    point = shape(geom).point_on_surface()
    return point.x, point.y


def test_aggregates_equal_independent_sums(farmed, cells):
    result = concentration.concentration(metric="hectares", grid="h3:7")
    a = by_id(result)[cells["A"]]
    plots_a = farmed["A"]
    assert a.values["plots"] == 7 and a.values["producers"] == 6
    assert a.values["hectares"] == pytest.approx(sum(geod_ha(g) for _, g in plots_a), rel=1e-9)
    assert a.values["women_share"] == pytest.approx(3 / 6)
    areas = [geod_ha(g) for _, g in plots_a]
    assert a.values["grafted_ha"] == pytest.approx(0.5 + 0.4 + 1.0, rel=1e-9)
    assert a.values["fine_flavour_ha"] == pytest.approx(0.5 + 1.0, rel=1e-9)
    assert a.values["flagged_plots"] == 1
    # Yield by age (defaults 0:0, 3:150, 4:350, 5:518): six mature plots, one in its third year.
    assert a.values["production_kg"] == pytest.approx(sum(areas[:6]) * 518 + areas[6] * 150, rel=1e-9)


def test_small_cells_are_merged_into_their_parent_or_suppressed(farmed, cells):
    result = concentration.concentration(metric="producers", grid="h3:7")
    shown = by_id(result)
    assert set(shown) == {cells["A"], cells["parent"]}
    merged = shown[cells["parent"]]
    assert merged.level == "h3:6" and merged.members == sorted([cells["B"], cells["C"]])
    assert merged.values["producers"] == 5 and merged.values["plots"] == 5
    assert result.suppressed == [cells["D"]]  # alone up to resolution 5
    assert all(area.values["producers"] >= 5 for area in result.areas)
    doc = concentration.to_geojson(result)
    assert doc["privacy"]["suppressed"] == [cells["D"]]
    assert doc["privacy"]["merged"] == [{"id": cells["parent"], "level": "h3:6", "members": merged.members}]
    # The merged region is the union of B and C, not the whole parent (which holds A).
    from shapely.geometry import shape

    region = shape(next(f for f in doc["features"] if f["id"] == cells["parent"])["geometry"])
    union = shape(h3.h3shape_to_geo(h3.cells_to_h3shape([cells["B"], cells["C"]])))
    assert region.symmetric_difference(union).area < 1e-12
    assert len(doc["classes"]["breaks"]) >= 1 and all(f["properties"]["class"] is not None for f in doc["features"])
    # A larger k merges more; a smaller one than configured is refused.
    assert {a.key for a in concentration.concentration(metric="producers", grid="h3:7", k=6).areas} == {cells["A"]}
    with pytest.raises(ValidationFailed):
        concentration.concentration(k=2)


def test_admin_grid_merges_districts_into_provinces(farmed, cells):
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
    result = concentration.concentration(metric="hectares", grid="district")
    assert [a.key for a in result.areas] == ["221001"] and result.suppressed == ["221002"]
    doc = concentration.to_geojson(result)
    assert doc["features"][0]["properties"]["name"] == "TOCACHE"
    assert doc["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_filters(farmed, cells, org_b, make_producer, make_plot):
    assert concentration.concentration(metric="plots", grid="h3:7", clone="ICS-95-T").areas == []  # 2 producers
    everyone = concentration.concentration(metric="plots", grid="h3:7", planting_year="2000..2030")
    assert sum(a.values["plots"] for a in everyone.areas) == 12
    only_young = concentration.concentration(metric="plots", grid="h3:7", planting_year=str(date.today().year - 3))
    assert only_young.areas == [] and only_young.suppressed == [cells["A"]]
    with pytest.raises(ValidationFailed):
        concentration.concentration(planting_year="recent")
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
    assert investor.client.get("/api/v1/concentration?k=1").status_code == 400
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
    aggregates = {"concentration", "concentration-png", "site-suggestions", "stats-grafting", "admin-area-list",
                  "protected-area-list"}
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
        for i in range(4 if n == 0 else 1):
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
