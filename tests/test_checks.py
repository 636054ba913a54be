"""The plot checks (plots.checks), the `chacra check` command, /plots/{code}/checks and the
check filters of the plot list. Spatial expectations are hand-placed and recomputed
independently with shapely (planar intersection of the same vertices) and pyproj's
Geod (GeographicLib), never with the code under test."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.core.management import call_command
from django.core.management.base import CommandError
from pyproj import Geod
from shapely.geometry import shape
from shapely.geometry.polygon import orient

from plots import checks, demo, services
from plots.checks.overlap import DOUBLE_CLAIM_HA
from plots.errors import ValidationFailed
from plots.models import AdminArea, CheckResult, Plot, ProtectedArea, ProtectedAreaPiece
from tests.conftest import square

pytestmark = pytest.mark.django_db
GEOD = Geod(ellps="WGS84")
URL = "/api/v1/plots"
# A protected square of 0.02° (~2.2 km) near Tocache; its east edge is the meridian -76.48.
PARK = (-76.50, -8.20, -76.48, -8.18)


def box(xmin, ymin, xmax, ymax) -> dict:
    return {"type": "Polygon", "coordinates": [[[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax], [xmin, ymin]]]}


def geod_ha(geom) -> float:
    """Geodesic area in hectares of a shapely (Multi)Polygon or a GeoJSON dict, by pyproj alone."""
    geom = shape(geom) if isinstance(geom, dict) else geom
    parts = geom.geoms if hasattr(geom, "geoms") else [geom]
    return sum(GEOD.geometry_area_perimeter(orient(p, 1.0))[0] for p in parts if p.area > 0) / 10_000


def protected_area(bounds=PARK, *, name="Bosque de Prueba", category="national_park", code="PRUEBA",
                   edition="2026-01", geom=None) -> ProtectedArea:
    geom = geom or MultiPolygon(Polygon.from_bbox(bounds), srid=4326)
    geom.srid = 4326
    return ProtectedArea.objects.create(name=name, category=category, official_code=code, source="test",
                                        edition=edition, geom=geom)


def latest(plot, kind) -> CheckResult:
    return CheckResult.objects.filter(plot=plot, kind=kind).order_by("-checked_at", "-id").first()


# --------------------------------------------------------------------------- protected areas

def test_overlap_hectares_and_share_are_geodesic_and_exact(make_plot):
    protected_area()
    plot_geom = box(-76.4810, -8.1950, -76.4790, -8.1930)  # straddles the park's east edge
    plot = make_plot(geometry_value=plot_geom)
    checks.run_checks([plot.id], kinds={"protected_area_overlap"})
    result = latest(plot, "protected_area_overlap")
    inside = shape(plot_geom).intersection(shapely.box(*PARK))
    expected_ha, plot_ha = geod_ha(inside), geod_ha(plot_geom)
    assert result.outcome == "fail"
    (area,) = result.figures["areas"]
    assert area["name"] == "Bosque de Prueba" and area["category"] == "national_park"
    assert area["official_code"] == "PRUEBA" and area["edition"] == "2026-01"
    assert area["overlap_ha"] == pytest.approx(expected_ha, rel=1e-6)
    assert area["share"] == pytest.approx(expected_ha / plot_ha, rel=1e-6)
    assert result.figures["overlap_ha"] == pytest.approx(expected_ha, rel=1e-6)
    assert 0.45 < area["share"] < 0.55  # half of the plot, give or take the scale of a degree
    assert result.datasets == {"protected_areas": ["2026-01"]}
    assert result.method_version == checks.METHOD_VERSION
    assert result.boundary == plot.boundaries.get(valid_to__isnull=True)


def test_an_area_split_into_pieces_is_measured_as_one(make_plot):
    # A long strip with 600 vertices per long side: ST_Subdivide (256 vertices) cuts it
    # across, and a plot over a cut meets two pieces of the same area.
    xs = [-76.60 + 0.2 * i / 600 for i in range(601)]
    ring = [(x, -8.30) for x in xs] + [(x, -8.29) for x in reversed(xs)] + [(-76.60, -8.30)]
    strip = Polygon(ring, srid=4326)
    area = protected_area(geom=MultiPolygon(strip, srid=4326), code="STRIP")
    pieces = list(ProtectedAreaPiece.objects.filter(area=area))
    assert len(pieces) > 1
    cut = sorted({round(p.geom.extent[2], 9) for p in pieces})[0]  # an inner cut line
    assert -76.60 < cut < -76.40
    plot_geom = box(cut - 0.0007, -8.3006, cut + 0.0009, -8.2992)  # across the cut and the south edge
    plot = make_plot(geometry_value=plot_geom)
    assert sum(1 for p in pieces if p.geom.intersects(GEOSGeometry(json.dumps(plot_geom)))) == 2
    checks.run_checks([plot.id], kinds={"protected_area_overlap"})
    figures = latest(plot, "protected_area_overlap").figures
    expected = geod_ha(shape(plot_geom).intersection(shapely.from_wkt(strip.wkt)))
    assert len(figures["areas"]) == 1
    assert figures["areas"][0]["overlap_ha"] == pytest.approx(expected, rel=1e-6)
    # Wholly inside a piece: the plot's own area, without an intersection.
    middle = (-76.60 + cut) / 2
    inner = make_plot(geometry_value=box(middle - 0.0005, -8.298, middle + 0.0005, -8.297))
    checks.run_checks([inner.id], kinds={"protected_area_overlap"})
    inner.refresh_from_db()
    assert latest(inner, "protected_area_overlap").figures["share"] == 1
    assert latest(inner, "protected_area_overlap").figures["overlap_ha"] == inner.area_ha


def test_the_nearest_area_due_east_is_at_the_geodesic_distance(make_plot):
    protected_area()
    point = make_plot(geometry_value={"type": "Point", "coordinates": [-76.47, -8.19]})
    polygon = make_plot(geometry_value=box(-76.4700, -8.1910, -76.4680, -8.1890))
    checks.run_checks([point.id, polygon.id], kinds={"protected_area_overlap"})
    # Hand-worked: the nearest point of the park's east edge (meridian -76.48) to a point
    # due east of it lies at the same latitude, to within ~1 cm for a 1 km offset (the
    # foot of the perpendicular is a hair poleward), which changes the distance by ~1e-7 m;
    # Geod.inv gives the geodesic distance to it.
    # For the polygon, whose west edge spans -8.191…-8.189, the two meridians are closest
    # where they are farthest from the equator: at -8.191.
    expected = {point: GEOD.inv(-76.47, -8.19, -76.48, -8.19)[2], polygon: GEOD.inv(-76.47, -8.191, -76.48, -8.191)[2]}
    for plot in (point, polygon):
        result = latest(plot, "protected_area_overlap")
        assert result.outcome == "pass"
        assert result.figures["nearest_m"] == pytest.approx(expected[plot], abs=1e-6)
        assert result.figures["nearest"]["name"] == "Bosque de Prueba"
        assert result.figures["areas"] == []
    assert latest(point, "protected_area_overlap").figures["overlap_ha"] is None
    assert latest(polygon, "protected_area_overlap").figures["overlap_ha"] == 0


def test_the_nearest_area_is_the_geodesic_nearest_not_the_nearest_in_degrees(make_plot):
    # At 8°S a degree of longitude is ~110.2 km and one of latitude ~110.6 km. Area A
    # lies 0.01000° east (1,102 m), area B 0.00999° north (1,105 m): B is nearer in
    # degrees, which is all the KNN index knows; A is nearer on the ellipsoid.
    lon, lat = -76.30, -8.10
    protected_area((lon + 0.0100, lat - 0.01, lon + 0.03, lat + 0.01), name="A", code="A")
    protected_area((lon - 0.01, lat + 0.00999, lon + 0.0099, lat + 0.03), name="B", code="B")
    plot = make_plot(geometry_value={"type": "Point", "coordinates": [lon, lat]})
    checks.run_checks([plot.id], kinds={"protected_area_overlap"})
    figures = latest(plot, "protected_area_overlap").figures
    to_a, to_b = GEOD.inv(lon, lat, lon + 0.01, lat)[2], GEOD.inv(lon, lat, lon, lat + 0.00999)[2]
    assert to_a < to_b
    assert figures["nearest"]["name"] == "A"
    assert figures["nearest_m"] == pytest.approx(to_a, abs=1e-6)


def test_the_nearest_distance_to_a_slanted_edge_matches_an_equidistant_projection(make_plot):
    # A triangle whose long edge runs south-west to north-east, and a small plot
    # ~740 m off that edge: the closest points are mid-edge, not at a vertex.
    # Independently: both shapes densified every ~5 m along their lon/lat edges
    # (the edges as drawn), projected to an azimuthal equidistant projection
    # centred between them (distances from the centre are exact there, and the
    # pair lies within ~1 km of it), and measured by shapely.
    import numpy as np
    import pyproj

    triangle = Polygon(((-76.52, -8.24), (-76.44, -8.16), (-76.52, -8.16), (-76.52, -8.24)), srid=4326)
    protected_area(geom=MultiPolygon(triangle, srid=4326), code="TRI")
    plot_geom = box(-76.4700, -8.2010, -76.4685, -8.1995)
    plot = make_plot(geometry_value=plot_geom)
    checks.run_checks([plot.id], kinds={"protected_area_overlap"})
    figures = latest(plot, "protected_area_overlap").figures

    park, mine = shapely.from_wkt(triangle.wkt), shape(plot_geom)
    a, b = shapely.ops.nearest_points(park, mine)
    centre = ((a.x + b.x) / 2, (a.y + b.y) / 2)
    aeqd = pyproj.Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={centre[1]} +lon_0={centre[0]} +ellps=WGS84", always_xy=True)
    dense = [shapely.transform(shapely.segmentize(g, 0.00005), lambda xy: np.column_stack(aeqd.transform(*xy.T)))
             for g in (park, mine)]
    expected = dense[0].distance(dense[1])
    assert 500 < expected < 1000
    assert figures["nearest_m"] == pytest.approx(expected, rel=1e-6)


def test_buffer_zones_alone_are_their_own_outcome(make_plot):
    protected_area(name="Zona de amortiguamiento", category="buffer_zone", code="ZA-1",
                   bounds=(-76.50, -8.20, -76.40, -8.10))
    protected_area(bounds=(-76.45, -8.15, -76.44, -8.14), code="CORE")
    in_buffer = make_plot(geometry_value=square(-76.49, -8.19, 0.002))
    in_both = make_plot(geometry_value=square(-76.4455, -8.1455, 0.002))  # buffer and core area
    point_in_core = make_plot(geometry_value={"type": "Point", "coordinates": [-76.445, -8.145]})
    outside = make_plot(geometry_value=square(-76.30, -8.19, 0.002))
    checks.run_checks(kinds={"protected_area_overlap"})
    assert latest(in_buffer, "protected_area_overlap").outcome == "buffer_zone"
    both = latest(in_both, "protected_area_overlap")
    assert both.outcome == "fail" and {a["official_code"] for a in both.figures["areas"]} == {"ZA-1", "CORE"}
    # Areas overlapping each other: the plot's protected part is their union, not the sum.
    assert both.figures["overlap_ha"] == pytest.approx(geod_ha(square(-76.4455, -8.1455, 0.002)), rel=1e-6)
    point = latest(point_in_core, "protected_area_overlap")
    assert point.outcome == "fail" and point.figures["overlap_ha"] is None
    assert {a["official_code"] for a in point.figures["areas"]} == {"ZA-1", "CORE"}
    assert latest(outside, "protected_area_overlap").outcome == "pass"


def test_without_a_protected_area_layer_the_data_is_insufficient(make_plot):
    plot = make_plot(geometry_value=square(-76.3, -8.1))
    checks.run_checks([plot.id], kinds={"protected_area_overlap"})
    assert latest(plot, "protected_area_overlap").outcome == "insufficient_data"


# --------------------------------------------------------------------------- double claims

def test_double_claims_are_between_different_producers(make_plot, make_producer):
    ana, beto = make_producer(), make_producer()
    a = make_plot(producer=ana, code="a-1", geometry_value=box(-76.300, -8.100, -76.298, -8.098))
    b = make_plot(producer=beto, code="b-1", geometry_value=box(-76.2995, -8.0995, -76.2975, -8.0975))
    a2 = make_plot(producer=ana, code="a-2", geometry_value=box(-76.2995, -8.1015, -76.2985, -8.0997))
    touching = make_plot(producer=beto, code="b-2", geometry_value=box(-76.302, -8.100, -76.300, -8.098))
    far = make_plot(producer=beto, code="b-3", geometry_value=square(-76.2, -8.1))
    checks.run_checks(kinds={"plot_overlap"})
    shared = geod_ha(shapely.box(-76.2995, -8.0995, -76.298, -8.098))
    res_a, res_b = latest(a, "plot_overlap"), latest(b, "plot_overlap")
    assert res_a.outcome == res_b.outcome == "fail"
    assert res_a.figures["double_claim_ha"] == pytest.approx(shared, rel=1e-6)
    assert [c["plot"] for c in res_a.figures["double_claims"]] == ["b-1"]
    assert [c["plot"] for c in res_b.figures["double_claims"]] == ["a-1"]
    # a-2 overlaps a-1, its own producer's plot: a warning with its own figure, no double claim.
    own = latest(a2, "plot_overlap")
    assert own.outcome == "warning" and own.figures["double_claims"] == []
    assert [c["plot"] for c in own.figures["same_producer"]] == ["a-1"]
    assert own.figures["same_producer_ha"] == pytest.approx(geod_ha(shapely.box(-76.2995, -8.100, -76.2985, -8.0997)),
                                                            rel=1e-6)
    assert [c["plot"] for c in res_a.figures["same_producer"]] == ["a-2"]
    # Sharing an edge is not an overlap.
    assert latest(touching, "plot_overlap").outcome == "pass"
    assert latest(far, "plot_overlap").outcome == "pass"


def test_checking_one_plot_renews_the_other_side_of_its_claims(make_plot):
    first = make_plot(geometry_value=box(-76.300, -8.100, -76.298, -8.098))
    checks.run_checks([first.id])
    assert latest(first, "plot_overlap").outcome == "pass"
    # An import brings a plot over the first one and checks only what it changed.
    second = make_plot(geometry_value=box(-76.2995, -8.0995, -76.2975, -8.0975))
    summary = checks.run_checks([second.id])
    assert summary.neighbours == 1
    assert latest(first, "plot_overlap").outcome == latest(second, "plot_overlap").outcome == "fail"
    assert CheckResult.objects.filter(plot=first).count() == len(checks.CHECKS) + 1  # only plot_overlap renewed
    # It moves away: the first plot's last claim names it, so it is renewed again.
    services.plot_update_boundary(plot=second, geometry_value=square(-76.2, -8.1, 0.002))
    assert checks.run_checks([second.id]).neighbours == 1
    assert latest(first, "plot_overlap").outcome == "pass"


def test_a_gps_sliver_is_a_warning_not_a_double_claim(make_plot, make_producer):
    # Neighbours whose walked borders overlap by 0.5 m along 100 m: 50 m² < 0.01 ha.
    west = make_plot(geometry_value=box(-76.3000, -8.1000, -76.2990, -8.0991))
    east = make_plot(geometry_value=box(-76.2990 - 0.0000045, -8.1000, -76.2980, -8.0991))
    checks.run_checks([west.id, east.id], kinds={"plot_overlap"})
    sliver = geod_ha(shapely.box(-76.2990 - 0.0000045, -8.1000, -76.2990, -8.0991))
    assert 0 < sliver < DOUBLE_CLAIM_HA
    for plot in (west, east):
        result = latest(plot, "plot_overlap")
        assert result.outcome == "warning"
        assert result.figures["double_claim_ha"] == pytest.approx(sliver, rel=1e-6)


def test_demo_double_claims_are_exactly_the_plots_placed_over_another_producers_plot():
    demo.generate(seed=3, shared=None, scale=0.2)
    summary = checks.run_checks()
    assert summary.plots == Plot.objects.count()
    # Independently: every pair of plots whose interiors overlap, with shapely.
    plots = list(Plot.objects.filter(boundary__isnull=False).values_list("code", "producer_id", "boundary"))
    shapes = {code: shapely.from_wkb(bytes(g.wkb)) for code, _, g in plots}
    producer = {code: p for code, p, _ in plots}
    claims, own = {}, set()
    for (c1, g1), (c2, g2) in itertools.combinations(shapes.items(), 2):
        part = g1.intersection(g2)
        if part.area == 0:
            continue
        if producer[c1] == producer[c2]:
            own |= {c1, c2}
        else:
            claims.setdefault(c1, []).append(part)
            claims.setdefault(c2, []).append(part)
    expected_fail = {c for c, parts in claims.items() if geod_ha(shapely.union_all(parts)) > DOUBLE_CLAIM_HA}
    # The demo places plots 2–4 of each town over their predecessor; the producer is
    # drawn from the town's last three households, so some of those pairs share a
    # producer (warnings) and the others are double claims.
    assert expected_fail and own - set(claims)
    assert all(code[-5:] in {"-0001", "-0002", "-0003", "-0004"} for code in expected_fail | own)
    by_outcome = {}
    for code, outcome in CheckResult.objects.filter(kind="plot_overlap").values_list("plot__code", "outcome"):
        by_outcome.setdefault(outcome, set()).add(code)
    assert by_outcome["fail"] == expected_fail
    assert by_outcome.get("warning", set()) == (own | set(claims)) - expected_fail
    assert summary.kinds["plot_overlap"].outcomes["fail"] == len(expected_fail)


# --------------------------------------------------------------------------- districts

@pytest.fixture
def two_districts():
    def district(ubigeo, name, bounds, edition=2007):
        geom = MultiPolygon(Polygon.from_bbox(bounds), srid=4326)
        geom.srid = 4326
        return AdminArea.objects.create(ubigeo=ubigeo, name=name, level="district", edition=edition, geom=geom)
    west = district("221001", "TOCACHE", (-76.6, -8.3, -76.5, -8.1))
    east = district("221002", "NUEVO PROGRESO", (-76.5, -8.3, -76.4, -8.1))
    return district, west, east


def test_the_district_holding_the_largest_share_is_assigned(make_plot, two_districts):
    district, west, east = two_districts
    across = box(-76.5006, -8.2, -76.4986, -8.198)  # 30 % west of -76.5, 70 % east
    plot = make_plot(geometry_value=across)
    Plot.objects.filter(pk=plot.pk).update(district=west)
    inside = make_plot(geometry_value=square(-76.55, -8.2))
    point = make_plot(geometry_value={"type": "Point", "coordinates": [-76.45, -8.2]})
    checks.run_checks(kinds={"district_assignment"})
    plot.refresh_from_db()
    assert plot.district == east  # the check moves the plot to the largest share
    result = latest(plot, "district_assignment")
    assert result.outcome == "warning" and result.figures["district"] == "221002"
    shares = {d["ubigeo"]: d["share"] for d in result.figures["districts"]}
    total = geod_ha(across)
    assert shares["221002"] == pytest.approx(geod_ha(shapely.box(-76.5, -8.2, -76.4986, -8.198)) / total, rel=1e-6)
    assert shares["221001"] == pytest.approx(geod_ha(shapely.box(-76.5006, -8.2, -76.5, -8.198)) / total, rel=1e-6)
    assert result.datasets == {"admin_areas": [2007]}
    assert latest(inside, "district_assignment").outcome == "pass"
    assert Plot.objects.get(pk=inside.pk).district == west
    assert latest(point, "district_assignment").outcome == "pass"
    assert Plot.objects.get(pk=point.pk).district == east
    # A newer edition wins where it covers most of the plot, not where it only grazes it.
    newer = district("221099", "NUEVO DISTRITO", (-76.5003, -8.3, -76.45, -8.1), edition=2023)
    grazed = district("221098", "ORILLA", (-76.56, -8.2005, -76.54, -8.1998), edition=2023)  # 20 % of `inside`
    checks.run_checks(kinds={"district_assignment"})
    assert Plot.objects.get(pk=plot.pk).district == newer
    assert latest(plot, "district_assignment").datasets == {"admin_areas": [2007, 2023]}
    assert Plot.objects.get(pk=inside.pk).district == west and grazed.plots.count() == 0
    # A new plot gets the same answer from the service as from the check.
    assert services.district_for(GEOSGeometry(json.dumps(across), srid=4326)) == newer


# --------------------------------------------------------------------------- declared area

@pytest.mark.parametrize("unit,m2", [("yugada", 2_700.0), ("topo", 3_493.0)])
def test_declared_area_in_local_units_is_compared_with_the_measured_area(make_plot, unit, m2):
    geom = square(-76.3, -8.1, 0.001)
    measured = geod_ha(geom)
    close = make_plot(geometry_value=geom, declared_area=measured * 1.1 * 10_000 / m2, declared_area_unit=unit)
    far = make_plot(geometry_value=square(-76.2, -8.1, 0.001), declared_area=measured * 1.3 * 10_000 / m2,
                    declared_area_unit=unit)
    undeclared = make_plot(geometry_value=square(-76.1, -8.1, 0.001))
    point = make_plot(geometry_value={"type": "Point", "coordinates": [-76.0, -8.1]}, declared_area=1,
                      declared_area_unit=unit)
    checks.run_checks(kinds={"area_discrepancy"})
    ok = latest(close, "area_discrepancy")
    assert ok.outcome == "pass" and ok.figures["unit"] == unit
    assert ok.figures["relative"] == pytest.approx(0.1, rel=1e-6)
    assert ok.figures["declared_ha"] == pytest.approx(measured * 1.1, rel=1e-9)
    assert latest(far, "area_discrepancy").outcome == "warning"
    assert latest(far, "area_discrepancy").figures["relative"] == pytest.approx(0.3, rel=1e-6)
    assert latest(undeclared, "area_discrepancy").outcome == "insufficient_data"
    assert latest(point, "area_discrepancy").outcome == "insufficient_data"


def test_the_area_tolerance_is_a_setting(make_plot, settings):
    geom = square(-76.3, -8.1, 0.001)
    plot = make_plot(geometry_value=geom, declared_area=geod_ha(geom) * 1.1)
    settings.CHACRA_AREA_TOLERANCE = 0.05
    checks.run_checks([plot.id], kinds={"area_discrepancy"})
    result = latest(plot, "area_discrepancy")
    assert result.outcome == "warning" and result.figures["tolerance"] == 0.05


# --------------------------------------------------------------------------- runs

def test_a_rerun_with_nothing_changed_writes_nothing(make_plot, make_producer):
    protected_area()
    a = make_plot(geometry_value=box(-76.4810, -8.1950, -76.4790, -8.1930), declared_area=1)
    b = make_plot(producer=make_producer(), geometry_value=box(-76.4795, -8.1945, -76.4775, -8.1925))
    first = checks.run_checks()
    assert first.written == 2 * len(checks.CHECKS) and CheckResult.objects.count() == first.written
    again = checks.run_checks()
    assert again.written == 0 and CheckResult.objects.count() == first.written
    assert again.kinds["protected_area_overlap"].outcomes == first.kinds["protected_area_overlap"].outcomes
    # A new boundary for b: every result of b names the new boundary, so all are new;
    # of a's, only the double claim changed.
    services.plot_update_boundary(plot=b, geometry_value=box(-76.4700, -8.1945, -76.4680, -8.1925))
    third = checks.run_checks()
    assert CheckResult.objects.filter(plot=b).count() == 2 * len(checks.CHECKS)
    assert CheckResult.objects.filter(plot=a).count() == len(checks.CHECKS) + 1
    assert latest(a, "plot_overlap").outcome == "pass"
    assert third.written == len(checks.CHECKS) + 1


def test_a_rerun_in_other_batches_writes_nothing(make_plot):
    # Plots around one area: measured together PostGIS reuses the area's geography tree
    # and the unions see other row orders than one by one; the stored figures must not
    # differ in a single bit, or every re-run would write new rows.
    circle = [(-76.45 + 0.02 * math.cos(2 * math.pi * k / 200), -8.15 + 0.02 * math.sin(2 * math.pi * k / 200))
              for k in range(200)]
    protected_area(geom=MultiPolygon(Polygon(circle + circle[:1], srid=4326), srid=4326))
    for i in range(12):
        angle = 2 * math.pi * i / 12
        make_plot(geometry_value=square(-76.45 + 0.025 * math.cos(angle), -8.15 + 0.025 * math.sin(angle), 0.002))
    first = checks.run_checks()
    assert first.kinds["protected_area_overlap"].outcomes == {"pass": 12}
    assert checks.run_checks(batch_size=1).written == 0
    assert checks.run_checks(list(Plot.objects.order_by("-id").values_list("id", flat=True)[:3])).written == 0


def test_retired_and_unknown_plots_are_skipped(make_plot):
    plot = make_plot()
    services.plot_retire(plot=plot, reason="abandoned")
    summary = checks.run_checks([plot.id, 10**9])
    assert summary.plots == 0 and summary.skipped == 2 and not CheckResult.objects.exists()
    with pytest.raises(ValidationFailed, match="unknown check kind"):
        checks.run_checks(kinds={"deforestation-ish"})


def test_progress_is_reported_per_batch(make_plot):
    plots = [make_plot(geometry_value=square(-76.3 + i * 0.01, -8.1)) for i in range(5)]
    seen = []
    checks.run_checks([p.id for p in plots], kinds={"area_discrepancy"}, progress=seen.append, batch_size=2)
    assert seen == [2, 4, 5]


def test_the_command_runs_the_checks_and_prints_a_summary(make_plot, org_a, make_producer, capsys):
    plot = make_plot(producer=make_producer(organization=org_a), geometry_value=square(-76.3, -8.1))
    call_command("check", "--organization", "coop-a", "--kind", "area_discrepancy")
    out = capsys.readouterr().out
    assert "checked 1 plots" in out and "area_discrepancy" in out and "1 results written" in out
    call_command("check", "--plot", plot.code)
    assert "3 results written, 1 unchanged" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no plot with code"):
        call_command("check", "--plot", "nope")
    with pytest.raises(CommandError, match="organization 'nope' does not exist"):
        call_command("check", "--organization", "nope")
    with pytest.raises(CommandError, match="say which plots"):
        call_command("check")


# --------------------------------------------------------------------------- API

@pytest.fixture
def claimed(make_plot, make_producer, org_a, org_b):
    """A plot of coop-a across the park's edge, claimed in part by a plot of coop-b just
    outside the park, and a clean plot of coop-a; all checked."""
    protected_area()
    mine = make_plot(code="mine-1", producer=make_producer(organization=org_a),
                     geometry_value=box(-76.4810, -8.1950, -76.4790, -8.1930), declared_area=9)
    theirs = make_plot(code="theirs-1", producer=make_producer(organization=org_b),
                       geometry_value=box(-76.4795, -8.1945, -76.4775, -8.1925))
    clean = make_plot(code="clean-1", producer=make_producer(organization=org_a),
                      geometry_value=square(-76.30, -8.10, 0.002))
    checks.run_checks()
    return mine, theirs, clean


def test_the_checks_endpoint_follows_the_plots_visibility(claimed, owner, other_coop, technician, buyer):
    r = owner.client.get(f"{URL}/mine-1/checks")
    assert r.status_code == 200
    body = r.json()
    assert body["plot"] == "mine-1" and body["method_version"] == checks.METHOD_VERSION
    assert [x["kind"] for x in body["results"]] == sorted(checks.CHECKS)
    by_kind = {x["kind"]: x for x in body["results"]}
    assert by_kind["protected_area_overlap"]["outcome"] == "fail"
    assert by_kind["protected_area_overlap"]["boundary"]["current"] is True
    # The cooperative learns that another organization claims part of its plot, not which plot.
    (claim,) = by_kind["plot_overlap"]["figures"]["double_claims"]
    assert claim["organization"] == "coop-b" and claim["plot"] is None and claim["overlap_ha"] > 0
    staff = {x["kind"]: x for x in technician.client.get(f"{URL}/mine-1/checks/").json()["results"]}  # slash too
    assert staff["plot_overlap"]["figures"]["double_claims"][0]["plot"] == "theirs-1"
    assert other_coop.client.get(f"{URL}/mine-1/checks").status_code == 404
    assert buyer.client.get(f"{URL}/mine-1/checks").status_code == 404
    assert owner.client.get(f"{URL}/nope/checks").status_code == 404


def test_the_checks_endpoint_history_and_bad_parameters(claimed, technician):
    mine = claimed[0]
    services.plot_update(plot=mine, declared_area=mine.area_ha)
    checks.run_checks([mine.id])
    latest_only = technician.client.get(f"{URL}/mine-1/checks").json()["results"]
    history = technician.client.get(f"{URL}/mine-1/checks", {"history": "true"}).json()["results"]
    assert len(latest_only) == len(checks.CHECKS) and len(history) == len(checks.CHECKS) + 1
    assert [x["outcome"] for x in history if x["kind"] == "area_discrepancy"] == ["pass", "warning"]
    only = technician.client.get(f"{URL}/mine-1/checks", {"kind": "area_discrepancy", "history": "true"}).json()
    assert len(only["results"]) == 2
    for query, field in [({"history": "yes"}, "history"), ({"kind": "x"}, "kind"), ({"limit": "1"}, "limit")]:
        r = technician.client.get(f"{URL}/mine-1/checks", query)
        assert r.status_code == 400 and field in [d["field"] for d in r.json()["error"]["details"]]


def test_the_plot_list_filters_on_the_latest_check_results(claimed, technician, owner, make_plot):
    def codes(query):
        r = technician.client.get(URL, query)
        assert r.status_code == 200, r.content
        return sorted(f["properties"]["code"] for f in r.json()["features"])

    unchecked = make_plot(code="unchecked-1", geometry_value=square(-76.0, -8.0))
    assert unchecked.code not in codes({"protected_overlap": "false"})
    assert codes({"protected_overlap": "true"}) == ["mine-1"]
    assert codes({"protected_overlap": "false"}) == ["clean-1", "theirs-1"]
    assert codes({"protected_overlap": "buffer"}) == []
    assert codes({"double_claim": "true"}) == ["mine-1", "theirs-1"]
    assert codes({"double_claim": "false"}) == ["clean-1"]
    assert codes({"check_outcome": "area_discrepancy:warning"}) == ["mine-1"]
    assert codes({"check_outcome": ["area_discrepancy:warning", "plot_overlap:pass"]}) == []
    assert codes({"double_claim": "true", "organization": "coop-a"}) == ["mine-1"]
    owned = owner.client.get(URL, {"double_claim": "true"}).json()
    assert [f["properties"]["code"] for f in owned["features"]] == ["mine-1"]
    # The latest result counts: once the plot moves off the park it no longer matches.
    services.plot_update_boundary(plot=claimed[0], geometry_value=square(-76.2, -8.1, 0.002))
    checks.run_checks([claimed[0].id, claimed[1].id])
    assert codes({"protected_overlap": "true"}) == []
    assert codes({"double_claim": "true"}) == []
    for query, field in [({"protected_overlap": "maybe"}, "protected_overlap"),
                         ({"double_claim": "1"}, "double_claim"),
                         ({"check_outcome": "plot_overlap"}, "check_outcome"),
                         ({"check_outcome": "nothing:fail"}, "check_outcome")]:
        r = technician.client.get(URL, query)
        assert r.status_code == 400 and field in [d["field"] for d in r.json()["error"]["details"]]


def test_the_list_filter_costs_one_query(claimed, technician):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        r = technician.client.get(URL, {"double_claim": "true", "protected_overlap": "true"})
    assert r.status_code == 200 and len(r.json()["features"]) == 1
    assert len(queries) <= 6, [q["sql"][:80] for q in queries]


def test_the_command_has_useful_help():
    import subprocess
    from pathlib import Path

    chacra = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "chacra"
    out = subprocess.run([str(chacra), "check", "--help"], capture_output=True, text=True, timeout=120)
    text = " ".join(out.stdout.split())
    assert out.returncode == 0 and "--organization CODE" in text and "largest share" in text and "--system" in text
