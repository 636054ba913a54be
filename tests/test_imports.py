"""The import service end to end: the command and the upload API share it.

Scenarios run through both entry points (as mapit runs its import skeletons
through the function and the command)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from pyproj import Geod

from plots.imports import ImportRefused, import_plots
from plots.models import CheckResult, GpsTrack, Plot, PlotBoundary
from tests.conftest import square

pytestmark = pytest.mark.django_db
SHARED = Path(settings.CHACRA_SHARED_DATA)
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} (public test data) is not present")


def fc(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def feat(code, producer, geometry, **props):
    return {"type": "Feature", "geometry": geometry, "properties": {"code": code, "producer": producer, **props}}


@pytest.fixture(autouse=True, params=["per-feature", "bulk"])
def import_path(request, monkeypatch):
    """Every scenario here runs through both paths of the import: the per-feature one
    and the set-based one (plots.bulk) that large GDAL layers take — same results,
    same report. (Formats the bulk path does not read run the per-feature path twice.)"""
    from plots import bulk

    monkeypatch.setattr(bulk, "BULK_MIN_FEATURES", 1 if request.param == "bulk" else 10**9)
    return request.param


@pytest.fixture
def producer(make_producer, org_a):
    return make_producer(organization=org_a, code="p-ana")


def write_json(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def walked_square_gpx(tmp_path, name="walk.gpx", *, code="gpx-1", lon=-76.51, lat=-8.19, size=0.001, gap=0.0,
                      year=2025):
    pts = []
    n = 10
    corners = [(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size)]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
        for k in range(n):
            pts.append((x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n))
    pts.append((lon, lat + gap))
    body = "".join(f'<trkpt lat="{y:.7f}" lon="{x:.7f}"><time>{year}-03-01T10:{i // 60:02d}:{i % 60:02d}Z</time>'
                   f"<hdop>1.2</hdop></trkpt>" for i, (x, y) in enumerate(pts))
    path = tmp_path / name
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?><gpx version="1.1" creator="test" '
                    f'xmlns="http://www.topografix.com/GPX/1/1"><trk><name>{code}</name><trkseg>{body}</trkseg>'
                    f"</trk></gpx>")
    return path


def test_geojson_creates_then_is_unchanged_then_updates(tmp_path, producer):
    doc = fc(feat("f-1", "p-ana", square(-76.51, -8.19, 0.002), declared_area=4, declared_area_unit="yugada"),
             feat("f-2", "p-ana", square(-76.50, -8.19, 0.002)))
    path = write_json(tmp_path, "plots.geojson", doc)
    report = import_plots(path=path, run_checks=False)
    assert report.counts == {"created": 2, "updated": 0, "unchanged": 0, "refused": 0} and report.written
    plot = Plot.objects.get(code="f-1")
    lons, lats = zip(*square(-76.51, -8.19, 0.002)["coordinates"][0])
    assert plot.area_ha == pytest.approx(abs(Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)[0]) / 1e4, rel=1e-9)
    assert plot.declared_area_ha == pytest.approx(1.08)
    again = import_plots(path=path, run_checks=False)
    assert again.counts["unchanged"] == 2 and PlotBoundary.objects.count() == 2
    doc["features"][0]["geometry"] = square(-76.51, -8.19, 0.003)
    write_json(tmp_path, "plots.geojson", doc)
    third = import_plots(path=path, run_checks=False)
    assert [f.status for f in third.features] == ["updated", "unchanged"]
    # Re-surveyed the day it was first imported: the new boundary replaces that day's
    # version (one never in force); see tests/test_boundary_versions.py.
    boundary = Plot.objects.get(code="f-1").boundaries.get()
    assert boundary.valid_to is None and boundary.geom.extent[2] == pytest.approx(-76.51 + 0.003)


def test_one_refused_feature_writes_nothing_unless_partial(tmp_path, producer):
    bowtie = {"type": "Polygon", "coordinates": [[[-76, -8], [-75.99, -7.99], [-75.99, -8], [-76, -7.99], [-76, -8]]]}
    path = write_json(tmp_path, "mixed.geojson", fc(
        feat("ok-1", "p-ana", square(-76.51, -8.19, 0.002)),
        feat("bad-1", "nobody", square(-76.50, -8.19, 0.002)),
        feat("swap-1", "p-ana", {"type": "Point", "coordinates": [-8.19, -76.51]}),
        feat("bow-1", "p-ana", bowtie)))
    with pytest.raises(ImportRefused) as err:
        import_plots(path=path, run_checks=False)
    report = err.value.report
    assert "2 of 4 features refused; nothing was written" in err.value.message
    by_code = {f.code: f for f in report.features}
    assert by_code["bad-1"].reason == "producer 'nobody' is not registered"
    assert "latitude and longitude look swapped" in by_code["swap-1"].reason
    assert by_code["bow-1"].status == "created" and "ST_MakeValid" in by_code["bow-1"].repairs[0]
    assert not Plot.objects.exists() and not PlotBoundary.objects.exists()
    partial = import_plots(path=path, partial=True, run_checks=False)
    assert partial.written and set(Plot.objects.values_list("code", flat=True)) == {"ok-1", "bow-1"}


def test_dry_run_reports_exactly_and_writes_nothing(tmp_path, producer):
    path = write_json(tmp_path, "p.geojson", fc(feat("d-1", "p-ana", square(-76.51, -8.19, 0.002))))
    report = import_plots(path=path, dry_run=True)
    assert report.counts["created"] == 1 and not report.written and not Plot.objects.exists()


def test_no_repair_refuses_invalid_polygons(tmp_path, producer):
    bowtie = {"type": "Polygon", "coordinates": [[[-76, -8], [-75.99, -7.99], [-75.99, -8], [-76, -7.99], [-76, -8]]]}
    path = write_json(tmp_path, "b.geojson", fc(feat("b-1", "p-ana", bowtie)))
    with pytest.raises(ImportRefused) as err:
        import_plots(path=path, repair_rules=(), run_checks=False)
    assert "crosses itself" in err.value.report.features[0].reason


def test_a_walked_gpx_track_becomes_a_boundary_with_its_track_and_quality(tmp_path, producer):
    path = walked_square_gpx(tmp_path, gap=0.00005)  # ~5.5 m short of the start: closed automatically
    report = import_plots(path=path, default_producer=producer, run_checks=False)
    assert report.counts["created"] == 1, report.as_dict()
    plot = Plot.objects.get(code="gpx-1")
    assert plot.survey_method == "gps_walked" and plot.area_ha == pytest.approx(1.2, rel=0.05)
    track = GpsTrack.objects.get(plot=plot)
    assert track.boundary == plot.boundaries.get() and len(track.vertices[0]) == 41
    assert track.quality["closure_gap_m"] == pytest.approx(5.5, abs=0.3)
    quality = CheckResult.objects.get(plot=plot, kind="geometry_quality")
    assert quality.figures["points"] == 41 and quality.outcome == "pass"


def test_a_track_that_does_not_close_is_refused_with_the_gap(tmp_path, producer):
    path = walked_square_gpx(tmp_path, gap=0.0009)  # ~100 m short
    with pytest.raises(ImportRefused) as err:
        import_plots(path=path, default_producer=producer, run_checks=False)
    reason = err.value.report.features[0].reason
    assert "gap" in reason and "25 m" in reason


def test_plots_outside_the_country_are_refused_and_the_check_can_be_lifted(tmp_path, producer):
    path = write_json(tmp_path, "gh.geojson", fc(feat("gh-1", "p-ana", square(-1.5, 6.5, 0.002))))
    with pytest.raises(ImportRefused):
        import_plots(path=path, run_checks=False)
    assert import_plots(path=path, country=None, run_checks=False).counts["created"] == 1


def test_the_command_prints_the_report_and_fails_in_words(tmp_path, producer, capsys):
    path = write_json(tmp_path, "c.geojson", fc(feat("c-1", "p-ana", square(-76.51, -8.19, 0.002)),
                                                 feat("c-2", "ghost", square(-76.50, -8.19, 0.002))))
    with pytest.raises(CommandError, match="1 of 2 features refused; nothing was written"):
        call_command("import_plots", str(path), "--no-checks")
    out = capsys.readouterr().out
    assert "feature 2" in out and "producer 'ghost' is not registered" in out
    call_command("import_plots", str(path), "--partial", "--no-checks")
    assert "1 created" in capsys.readouterr().out


def test_the_upload_api_imports_for_the_own_cooperative_only(tmp_path, producer, owner, other_coop, buyer):
    doc = json.dumps(fc(feat("u-1", "p-ana", square(-76.51, -8.19, 0.002)))).encode()

    def upload(persona, **extra):
        return persona.client.post("/api/v1/imports", {"file": SimpleUploadedFile("plots.geojson", doc), **extra},
                                   format="multipart")

    assert upload(buyer).status_code == 403
    refused = upload(other_coop)
    assert refused.status_code == 400 and "is not registered in coop-b" in json.dumps(refused.json())
    dry = upload(owner, dry_run="true")
    assert dry.status_code == 200 and dry.json()["counts"]["created"] == 1 and not Plot.objects.exists()
    done = upload(owner)
    assert done.status_code == 201 and done.json()["written"] and Plot.objects.filter(code="u-1").exists()
    bad = owner.client.post("/api/v1/imports", {"file": SimpleUploadedFile("x.txt", b"hello")}, format="multipart")
    assert bad.status_code == 400 and "cannot tell the format" in bad.json()["error"]["message"]
    assert owner.client.post("/api/v1/imports", {}, format="multipart").status_code == 400


def test_a_zip_bomb_upload_is_refused_without_writing(tmp_path, technician, producer):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("plots.shp", "w") as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(300):
                member.write(chunk)
        z.writestr("plots.shx", b"")
        z.writestr("plots.dbf", b"")
    r = technician.client.post("/api/v1/imports", {"file": SimpleUploadedFile("bomb.zip", bomb.read_bytes())},
                               format="multipart")
    assert r.status_code == 400 and not Plot.objects.exists()
    assert "bomb.zip" in r.json()["error"]["message"]
