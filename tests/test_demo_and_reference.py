"""The demo generator and the loaders of the real reference layers in ../shared/data."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.db import connection
from pyproj import Geod

from plots import demo, reference
from plots.models import AdminArea, Organization, Plot, PlotBoundary, Producer, ProtectedArea

pytestmark = pytest.mark.django_db
SHARED = Path(settings.CHACRA_SHARED_DATA)
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} (public test data) is not present")


def test_synthetic_demo_is_deterministic_and_plausible():
    summary = demo.generate(seed=7, shared=None, scale=0.1)
    assert summary.plots == sum(max(1, round(t.plots * 0.1)) for t in demo.read_towns())
    first = sorted(Plot.objects.values_list("code", "area_ha", "declared_area"))
    assert all(a is None or 0.3 - 1e-6 <= a <= 12 + 1e-6 for _, a, _ in first)
    assert Producer.objects.count() == summary.producers and Organization.objects.count() == 12
    assert all(AdminArea.objects.filter(synthetic=True).values_list("synthetic", flat=True))
    assert Plot.objects.filter(district__isnull=True).count() == 0  # all inside the synthetic districts
    genders = set(Producer.objects.values_list("gender", flat=True))
    assert genders == {"female", "male"}
    demo.reset()
    demo.generate(seed=7, shared=None, scale=0.1)
    assert sorted(Plot.objects.values_list("code", "area_ha", "declared_area")) == first


def test_demo_polygons_have_the_area_they_were_built_for():
    import random

    rng = random.Random(1)
    poly = demo.irregular_polygon(rng, -76.5, -8.2, 3.0)
    lons, lats = zip(*poly.coords[0])
    area = abs(Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)[0]) / 10_000
    assert poly.valid and area == pytest.approx(3.0, rel=2e-3)


def test_demo_overlaps_are_only_the_deliberate_ones():
    summary = demo.generate(seed=3, shared=None, scale=0.2)
    with connection.cursor() as cur:
        cur.execute("""SELECT a.code, b.code FROM plots_plot a JOIN plots_plot b
                       ON a.id < b.id AND ST_Intersects(a.boundary, b.boundary)""")
        pairs = cur.fetchall()
    # Plots 2–4 of each town are placed over their predecessor, and nothing else overlaps.
    deliberate = {f"-{k:04d}" for k in (1, 2, 3, 4)}
    accidental = [(a, b) for a, b in pairs if not (a[-5:] in deliberate and b[-5:] in deliberate)]
    assert pairs and not accidental
    assert summary.overlapping_pairs == 27
    crossing = Plot.objects.filter(boundary__intersects=ProtectedArea.objects.get(
        official_code="SYN-221001").geom).count()
    assert crossing >= 2


def test_history_plots_have_an_earlier_boundary():
    demo.generate(seed=11, shared=None, scale=0.3)
    with_history = [p for p in Plot.objects.all() if p.boundaries.count() == 2]
    assert with_history
    for plot in with_history[:5]:
        old, new = plot.boundaries.order_by("valid_from")
        assert old.valid_to == new.valid_from == plot.survey_date and new.valid_to is None


def test_the_command_creates_one_user_per_role_and_is_rerunnable(tmp_path):
    tokens = tmp_path / "tokens"
    call_command("demo_data", "--no-shared", "--scale", "0.05", "--tokens-file", str(tokens))
    call_command("demo_data", "--no-shared", "--scale", "0.05", "--tokens-file", str(tokens))
    roles = [line.split()[0] for line in tokens.read_text().splitlines()]
    assert roles == ["admin", "technician", "cooperative", "buyer", "investor"]
    assert Plot.objects.count() == sum(max(1, round(t.plots * 0.05)) for t in demo.read_towns())


def load_inei_2007():
    folder = SHARED / "peru_admin_boundaries_inei2007"
    return [reference.load_admin_areas(folder / f"peru_{name}_simple.geojson", level=level, edition=2007)
            for name, level in [("departamental", "department"), ("provincial", "province"),
                                ("distrital", "district")]]


@needs_shared
def test_inei_2007_loads_every_district_and_is_idempotent():
    reports = load_inei_2007()
    assert [r.loaded for r in reports] == [25, 195, 1834]
    assert any("2001: 2 features merged" in note for note in reports[1].repaired)
    ids = sorted(AdminArea.objects.values_list("id", flat=True))
    reports = load_inei_2007()
    assert sorted(AdminArea.objects.values_list("id", flat=True)) == ids  # upserted in place
    assert sum(r.removed for r in reports) == 0
    assert AdminArea.objects.filter(edition=2007).count() == 25 + 195 + 1834
    tocache = AdminArea.objects.get(level="district", geom__covers=Point(-76.5108, -8.1889, srid=4326))
    assert (tocache.ubigeo, tocache.parent.ubigeo, tocache.parent.parent.name) == ("221001", "2210", "SAN MARTIN")
    assert AdminArea.objects.filter(ubigeo="210103", geom__isnull=True).exists()  # AMANTANI: null in the source


@needs_shared
def test_protected_areas_load_with_subdivided_pieces():
    reference.load_shared_layers(SHARED)
    pncaz = ProtectedArea.objects.get(official_code="PNCAZ")
    assert pncaz.name == "Parque Nacional Cordillera Azul" and pncaz.category == "national_park"
    assert ProtectedArea.objects.filter(category="regional").count() == 48
    # PostGIS's geodesic area of the 3,978-vertex polygon against pyproj's. (The file's
    # HA attribute says 1,353,190.85 ha, the legal area; this polygon measures
    # ~1.17 M ha, so the attribute is not used for anything.)
    with connection.cursor() as cur:
        cur.execute("SELECT ST_Area(geom::geography) / 10000 FROM plots_protectedarea WHERE id = %s", [pncaz.id])
        area = cur.fetchone()[0]
    import shapely

    expected = abs(Geod(ellps="WGS84").geometry_area_perimeter(shapely.from_wkb(bytes(pncaz.geom.wkb)))[0]) / 1e4
    assert area == pytest.approx(expected, rel=1e-9)
    assert pncaz.pieces.count() > 15 and all(p.geom.num_coords <= 256 for p in pncaz.pieces.all())
    with connection.cursor() as cur:
        cur.execute("SELECT ST_Area(ST_Union(geom)::geography) / 10000 FROM plots_protectedareapiece WHERE area_id = %s",
                    [pncaz.id])
        assert cur.fetchone()[0] == pytest.approx(area, rel=1e-6)


@needs_shared
def test_the_real_demo_places_plots_in_the_programme_districts():
    summary = demo.generate(seed=2026, shared=SHARED, scale=0.1)
    districts = set(Plot.objects.values_list("district__ubigeo", flat=True))
    assert {"221001", "220601", "220904"} <= districts  # Tocache, Juanjuí, Chazuta (San Martín)
    assert Plot.objects.filter(district__isnull=True).count() == 0
    on_edge = Plot.objects.filter(boundary__intersects=ProtectedArea.objects.get(official_code="PNCAZ").geom)
    assert on_edge.exists() and summary.across_protected_edge >= 2
