"""The set-based import path (plots.bulk) against the per-feature one.

One GeoPackage holding good plots and one of every kind of problem is imported
both ways; the reports and what lands in the database must be identical. Areas are
checked against pyproj's Geod and districts against shapely, never against the
code under test."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.db import transaction
from pyproj import Geod
from shapely.geometry import box, shape

from plots import bulk
from plots.imports import ImportRefused, import_plots
from plots.models import AdminArea, Plot, PlotBoundary

pytestmark = pytest.mark.django_db
GEOD = Geod(ellps="WGS84")
# Two districts side by side, split at the meridian -76.45.
WEST, EAST = (-76.60, -8.30, -76.45, -8.10), (-76.45, -8.30, -76.30, -8.10)


@pytest.fixture
def districts():
    dept = AdminArea.objects.create(ubigeo="22", name="SAN MARTIN", level="department", edition=2007)
    prov = AdminArea.objects.create(ubigeo="2210", name="TOCACHE", level="province", edition=2007, parent=dept)
    out = {}
    for ubigeo, name, bounds in (("221001", "TOCACHE", WEST), ("221002", "NUEVO PROGRESO", EAST)):
        out[ubigeo] = AdminArea.objects.create(
            ubigeo=ubigeo, name=name, level="district", edition=2007, parent=prov,
            geom=MultiPolygon(Polygon.from_bbox(bounds), srid=4326))
    return out


@pytest.fixture
def producers(make_producer, org_a):
    return [make_producer(organization=org_a, code=f"bp-{k}") for k in range(3)]


def layer(tmp_path, rows, name="plots.gpkg"):
    frame = gpd.GeoDataFrame([r[1] for r in rows], geometry=[r[0] for r in rows], crs="EPSG:4326")
    path = tmp_path / name
    frame.to_file(path, driver="GPKG", layer="parcelas", engine="pyogrio")
    return path


def good(k: int, lon: float = -76.55):
    # Squares of 0.001° (~1.2 ha), the first one wound clockwise, one across the district border.
    x = lon + (k % 10) * 0.004
    y = -8.25 + (k // 10) * 0.004
    geom = box(x, y, x + 0.001, y + 0.001, ccw=k != 0)
    return geom, {"code": f"bulk-{k:03d}", "producer": f"bp-{k % 3}", "declared_area": 1.0 + k / 10,
                  "declared_area_unit": "ha" if k % 2 else "topo"}


def problems():
    bowtie = shapely.Polygon([(-76.40, -8.20), (-76.39, -8.19), (-76.39, -8.20), (-76.40, -8.19)])
    swapped = box(-8.20, -76.40, -8.19, -76.39)
    return [
        (bowtie, {"code": "bulk-bow", "producer": "bp-0"}),                       # repaired, then created
        (box(-76.40, -8.20, -76.399, -8.199), {"code": "bulk-nobody", "producer": "nobody"}),
        (swapped, {"code": "bulk-swap", "producer": "bp-1"}),
        (box(-76.38, -8.20, -76.379, -8.199), {"code": "bulk-area", "producer": "bp-1", "declared_area": "mucho"}),
        (box(-76.37, -8.20, -76.369, -8.199), {"code": "bulk-unit", "producer": "bp-1", "declared_area": 2,
                                               "declared_area_unit": "acre"}),
        (box(-76.36, -8.20, -76.359, -8.199), {"code": None, "producer": "bp-1"}),
        (box(-76.35, -8.20, -76.349, -8.199), {"code": "bulk-001", "producer": "bp-1"}),   # a second bulk-001
        (box(-76.34, -8.20, -76.339, -8.199), {"code": "bulk con espacio", "producer": "bp-1"}),
        (box(-76.33, -8.20, -76.329, -8.199), {"code": "bulk-year", "producer": "bp-2", "planting_year": 1492}),
    ]


def snapshot():
    plots = {p.code: (p.producer.code, p.district.ubigeo if p.district else None, round(p.area_ha, 9),
                      p.declared_area, p.declared_area_unit, p.planting_year, p.boundary.wkt, p.feature_geojson)
             for p in Plot.objects.select_related("producer", "district")}
    boundaries = sorted((b.plot.code, b.valid_from, str(b.valid_to), b.source, str(b.repairs), b.geom.wkt)
                        for b in PlotBoundary.objects.select_related("plot"))
    return plots, boundaries


def report_lines(report):
    return [(f.number, f.label, f.status, f.code, f.reason, f.area_ha, f.repairs) for f in report.features]


def test_both_paths_give_the_same_report_and_the_same_rows(tmp_path, districts, producers):
    path = layer(tmp_path, [good(k) for k in range(40)] + problems())
    with transaction.atomic():
        slow = import_plots(path=path, partial=True, run_checks=False, bulk=False)
        expected = snapshot()
        transaction.set_rollback(True)
    fast = import_plots(path=path, partial=True, run_checks=False, bulk=True)
    assert slow.mode == "per-feature" and fast.mode == "bulk"
    # feature_geojson carries updated_at, which differs between the two runs.
    strip = lambda state: ({k: v[:-1] for k, v in state[0].items()}, state[1])  # noqa: E731
    got = strip(snapshot()); want = strip(expected)
    for k in sorted(set(got[0]) | set(want[0])):
        assert got[0].get(k) == want[0].get(k), k
    assert got[1] == want[1]
    assert report_lines(fast) == report_lines(slow)
    by_code = {f.label: f for f in fast.features}
    reasons = {f.number: f.reason for f in fast.features if f.status == "refused"}
    assert fast.counts == {"created": 41, "updated": 0, "unchanged": 0, "refused": 8}
    assert reasons[42] == "producer 'nobody' is not registered"
    assert "latitude and longitude look swapped" in reasons[43]
    assert "declared_area" in reasons[44] and "declared_area" in reasons[45] and "acre" in reasons[45]
    assert "names no plot code" in reasons[46]
    assert reasons[47].startswith("plot code bulk-001 appears again")
    assert "slug" in reasons[48].lower() and "1900" in reasons[49]
    assert "ST_MakeValid" in by_code["feature 41 (code 'bulk-bow')"].repairs[0]


def test_areas_districts_and_orientation_are_right(tmp_path, districts, producers):
    rows = [good(k) for k in range(30)]
    across = (box(-76.4505, -8.20, -76.4495, -8.199), {"code": "bulk-border", "producer": "bp-0"})
    path = layer(tmp_path, rows + [across])
    report = import_plots(path=path, run_checks=False, bulk=True)
    assert report.mode == "bulk" and report.counts["created"] == 31
    for geom, props in rows + [across]:
        plot = Plot.objects.get(code=props["code"])
        lons, lats = geom.exterior.coords.xy
        assert plot.area_ha == pytest.approx(abs(GEOD.polygon_area_perimeter(lons, lats)[0]) / 1e4, rel=1e-9)
        # The district that holds the larger part of the plot, by shapely.
        shares = {u: shape(geom).intersection(box(*b)).area for u, b in (("221001", WEST), ("221002", EAST))}
        assert plot.district.ubigeo == max(shares, key=shares.get)
        ring = shapely.from_wkt(plot.boundary.wkt).geoms[0].exterior
        assert ring.is_ccw  # RFC 7946, even for the square written clockwise
        assert plot.boundaries.get().valid_from == plot.created_at.date()


def test_rerun_is_unchanged_and_a_moved_plot_is_a_new_version(tmp_path, districts, producers):
    rows = [(g, dict(props, survey_date="2026-01-15")) for g, props in (good(k) for k in range(20))]
    path = layer(tmp_path, rows)
    import_plots(path=path, run_checks=False, bulk=True)
    assert {b.valid_from.isoformat() for b in PlotBoundary.objects.all()} == {"2026-01-15"}
    again = import_plots(path=path, run_checks=False, bulk=True)
    assert again.counts == {"created": 0, "updated": 0, "unchanged": 20, "refused": 0}
    assert PlotBoundary.objects.count() == 20
    rows[3] = (box(-76.50, -8.28, -76.498, -8.278), dict(rows[3][1], survey_date="2026-10-01"))
    rows[4] = (rows[4][0], dict(rows[4][1], declared_area=9.5))
    third = import_plots(path=layer(tmp_path, rows, "moved.gpkg"), run_checks=False, bulk=True)
    assert [f.status for f in third.features][:6] == ["unchanged"] * 3 + ["updated", "updated", "unchanged"]
    moved = Plot.objects.get(code="bulk-003")
    assert moved.boundaries.count() == 2 and moved.boundaries.get(valid_to__isnull=True).valid_from.isoformat() == \
        "2026-10-01"
    assert GEOSGeometry(moved.boundary.wkt).equals(GEOSGeometry(box(-76.50, -8.28, -76.498, -8.278).wkt))
    assert Plot.objects.get(code="bulk-004").declared_area == 9.5
    assert Plot.objects.get(code="bulk-004").boundaries.count() == 1


def test_a_refused_feature_writes_nothing_and_dry_run_writes_nothing(tmp_path, districts, producers):
    path = layer(tmp_path, [good(k) for k in range(10)] + problems()[1:2])
    with pytest.raises(ImportRefused) as err:
        import_plots(path=path, run_checks=False, bulk=True)
    assert "1 of 11 features refused; nothing was written" in err.value.message
    assert err.value.report.counts["created"] == 10  # what the others would have become
    assert not Plot.objects.exists() and not PlotBoundary.objects.exists()
    dry = import_plots(path=layer(tmp_path, [good(k) for k in range(10)], "ok.gpkg"), dry_run=True, bulk=True)
    assert dry.counts["created"] == 10 and not dry.written and not Plot.objects.exists()


def test_large_layers_take_the_bulk_path_by_themselves(tmp_path, districts, producers, monkeypatch):
    path = layer(tmp_path, [good(k) for k in range(12)])
    monkeypatch.setattr(bulk, "BULK_MIN_FEATURES", 12)
    assert import_plots(path=path, run_checks=False).mode == "bulk"
    monkeypatch.setattr(bulk, "BULK_MIN_FEATURES", 13)
    assert import_plots(path=path, run_checks=False).mode == "per-feature"


def test_the_command_takes_either_path_and_summarises_long_layers(tmp_path, districts, producers, monkeypatch):
    import io

    from django.core.management import call_command

    from plots.management.commands.import_plots import Command

    rows = [good(k) for k in range(12)] + [problems()[0]]
    path = layer(tmp_path, rows)
    monkeypatch.setattr(Command, "SHOW_ALL_UP_TO", 5)
    out = io.StringIO()
    call_command("import_plots", str(path), "--bulk", "--no-checks", stdout=out)
    text = out.getvalue()
    assert "(gpkg, bulk path): 13 created, 0 updated, 0 unchanged, 0 refused — written" in text
    assert "… 12 created or unchanged features not listed" in text
    assert "bulk-bow" in text and "repaired" in text  # a repaired feature is always listed
    out = io.StringIO()
    call_command("import_plots", str(path), "--per-feature", "--no-checks", "-v", "2", stdout=out)
    assert "(gpkg, per-feature path): 0 created, 0 updated, 13 unchanged, 0 refused" in out.getvalue()
    assert out.getvalue().count("unchanged ") == 13
