"""chacra load-admin-areas / load-protected-areas on real and hand-made files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from django.conf import settings
from django.core.management import CommandError, call_command
from pyproj import Transformer

from plots.models import AdminArea, Plot, ProtectedArea, ProtectedAreaPiece
from tests.conftest import square

pytestmark = pytest.mark.django_db
SHARED = Path(settings.CHACRA_SHARED_DATA)
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} (public test data) is not present")


def write(tmp_path, name, rows, crs="EPSG:4326", driver=None):
    df = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    path = tmp_path / name
    df.to_file(path, driver=driver, engine="pyogrio")
    return path


@needs_shared
def test_the_guadeloupe_shapefile_in_epsg_3395_is_reprojected_and_repaired(tmp_path):
    folder = SHARED / "forest_cover_tmf_guadeloupe_forestatrisk"
    archive = tmp_path / "pa.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for ext in ("shp", "shx", "dbf", "prj", "cpg"):
            z.write(folder / f"pa_PROJ.{ext}", f"pa_PROJ.{ext}")
    src = gpd.read_file(folder / "pa_PROJ.shp", engine="pyogrio")
    code_field = "wdpa_id"  # WDPA's field names, recognised without being named
    from plots.reference import load_protected_areas

    report = load_protected_areas(archive, edition="2019", category="national_park")
    assert report.loaded + len(report.skipped) == len(src) == 26
    assert all("no area left after repair" in s for s in report.skipped)  # degenerate rings, reported
    assert ProtectedArea.objects.filter(edition="2019").count() == report.loaded > 20
    # One vertex checked against pyproj directly from the EPSG:3395 source.
    first = src.iloc[0]
    x, y = shapely.get_coordinates(first.geometry)[0]
    lon, lat = Transformer.from_crs(src.crs, 4326, always_xy=True).transform(x, y)
    stored = ProtectedArea.objects.get(official_code=str(first[code_field]), edition="2019").geom
    assert min(abs(px - lon) + abs(py - lat) for px, py in stored.coords[0][0]) < 1e-9
    assert all(g.valid for g in ProtectedArea.objects.values_list("geom", flat=True))
    assert ProtectedAreaPiece.objects.filter(area__edition="2019").exists()


def test_wdpa_designations_become_categories_and_a_reload_replaces_the_edition(tmp_path):
    rows = [{"WDPAID": 1, "NAME": "Alto Mayo", "DESIG_ENG": "Protection Forest", "geometry": shapely.box(-77.5, -6, -77, -5.5)},
            {"WDPAID": 2, "NAME": "Tingo María", "DESIG_ENG": "National Park", "geometry": shapely.box(-76.1, -9.4, -76, -9.3)},
            {"WDPAID": 3, "NAME": "ZA Tingo María", "DESIG_ENG": "Buffer Zone", "geometry": shapely.box(-76.2, -9.5, -75.9, -9.2)}]
    path = write(tmp_path, "wdpa.gpkg", rows)
    call_command("load_protected_areas", str(path), "--edition", "wdpa-2026-11")
    got = dict(ProtectedArea.objects.values_list("name", "category"))
    assert got == {"Alto Mayo": "protection_forest", "Tingo María": "national_park", "ZA Tingo María": "buffer_zone"}
    write(tmp_path, "wdpa.gpkg", rows[:2])
    call_command("load_protected_areas", str(path), "--edition", "wdpa-2026-11")
    assert set(ProtectedArea.objects.values_list("name", flat=True)) == {"Alto Mayo", "Tingo María"}


def test_an_unknown_designation_names_the_feature(tmp_path):
    path = write(tmp_path, "x.geojson", [{"WDPAID": 9, "NAME": "Somewhere", "DESIG_ENG": "Hunting Ground",
                                          "geometry": shapely.box(0, 0, 1, 1)}])
    with pytest.raises(CommandError, match="x.geojson feature 1 \\(Somewhere\\): cannot tell its category"):
        call_command("load_protected_areas", str(path), "--edition", "1")
    assert not ProtectedArea.objects.exists()


def test_districts_derive_parents_and_reassign_plots(tmp_path, make_plot):
    write(tmp_path, "dep.geojson", [{"CCDD": 22, "NOMBRE": "San Martín", "geometry": shapely.box(-77, -9, -76, -8)}])
    write(tmp_path, "prov.geojson", [{"IDPROV": "2210", "NOMBPROV": "TOCACHE", "geometry": shapely.box(-77, -9, -76, -8)}])
    # A district file in UTM 18S without a .prj-like CRS field: given with --crs.
    to_utm = Transformer.from_crs(4326, 32718, always_xy=True)
    box = shapely.transform(shapely.box(-76.7, -8.3, -76.3, -8.0), lambda x, y: to_utm.transform(x, y),
                            interleaved=False)
    path = write(tmp_path, "dist.shp", [{"IDDIST": 221001, "NOMBDIST": "TOCACHE", "geometry": box}], crs=None)
    plot = make_plot(geometry_value=square(-76.51, -8.19, 0.002))
    call_command("load_admin_areas", str(tmp_path / "dep.geojson"), "--level", "department", "--edition", "2007")
    call_command("load_admin_areas", str(tmp_path / "prov.geojson"), "--level", "province", "--edition", "2007")
    with pytest.raises(CommandError, match="does not say its coordinate reference system"):
        call_command("load_admin_areas", str(path), "--level", "district", "--edition", "2007")
    call_command("load_admin_areas", str(path), "--level", "district", "--edition", "2007", "--crs", "32718")
    district = AdminArea.objects.get(ubigeo="221001")  # the integer 221001 read as a 6-digit UBIGEO
    assert district.parent.ubigeo == "2210" and district.parent.parent.ubigeo == "22"
    assert Plot.objects.get(pk=plot.pk).district == district
    assert district.geom.extent == pytest.approx((-76.7, -8.3, -76.3, -8.0), abs=1e-6)


def test_a_bad_ubigeo_is_refused_naming_the_feature(tmp_path):
    path = write(tmp_path, "bad.geojson", [{"IDDIST": "22100", "NOMBDIST": "X", "geometry": shapely.box(0, 0, 1, 1)},
                                            {"IDDIST": "ABC", "NOMBDIST": "Y", "geometry": shapely.box(1, 1, 2, 2)}])
    with pytest.raises(CommandError, match="bad.geojson feature 2: UBIGEO 'ABC' is not 6 digits"):
        call_command("load_admin_areas", str(path), "--level", "district", "--edition", "2007")
    assert not AdminArea.objects.exists()
