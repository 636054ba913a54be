"""The exports as a GIS user opens them (issue 14): every file is read back by GDAL —
pyogrio's GDAL and the system's ``ogrinfo``, never by api.exports — and compared
with what the REST API serves for the same plots.

- the fields are the API Feature's property names, in order (a Shapefile's through
  api.exports.SHAPEFILE_FIELDS; KML adds the placemark's ``Name``);
- dates are typed: Date and DateTime in a GeoPackage, Date in a Shapefile, Date and
  DateTime by the .csvt of the zipped CSV, whose .prj says EPSG:4326;
- one geometry type per layer: plots are MultiPolygons, plot-points Points, areas
  and districts MultiPolygons — parts that would not be are dropped and counted
  (X-Chacra-Dropped-Parts), on a synthetic sliver and on SERNANP's real layer;
- KML placemarks are named by plot code (areas and districts by name);
- one plot's values equal the API's properties.
"""

from __future__ import annotations

import io
import json
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pyogrio
import pytest
import shapely
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.core.management import call_command
from django.db import connection

from api import exports, layers
from plots import reference
from plots.models import AdminArea, Plot, ProtectedArea
from tests.conftest import SharedDir, square

pytestmark = pytest.mark.django_db
FORMATS = ["geojson", "gpkg", "shp", "kml", "csv"]
SHARED = SharedDir(settings.CHACRA_SHARED_DATA)
PARK = (-76.50, -8.20, -76.48, -8.18)
# A reserve whose second polygon is a sliver 3e-8 degree (3 mm) high: valid as
# stored, a line once on the 1e-7 degree grid of RFC 7946 GeoJSON.
SLIVER = Polygon(((-76.470, -8.190), (-76.469, -8.190), (-76.4695, -8.19 + 3e-8), (-76.470, -8.190)))
KML = "{http://www.opengis.net/kml/2.2}"


@pytest.fixture
def world(make_plot, make_producer, org_a):
    """Three polygon plots and two point plots of coop-a, every attribute filled on
    the first; a district around them; a protected area and a reserve with a sliver."""
    geom = MultiPolygon(Polygon.from_bbox(PARK), srid=4326)
    ProtectedArea.objects.create(name="Bosque de Prueba", category="national_park", official_code="PRUEBA",
                                 source="test", edition="2026-01", geom=geom)
    ProtectedArea.objects.create(name="Zona Reservada Astilla", category="reserved_zone", official_code="ZR-ASTILLA",
                                 source="test", edition="2026-01",
                                 geom=MultiPolygon(Polygon.from_bbox((-76.475, -8.2, -76.471, -8.196)), SLIVER,
                                                   srid=4326))
    province = AdminArea.objects.create(ubigeo="2210", name="TOCACHE", level="province", edition=2007)
    district = AdminArea.objects.create(ubigeo="221001", name="TOCACHE", level="district", edition=2007,
                                        parent=province, source="test",
                                        geom=MultiPolygon(Polygon.from_bbox((-76.6, -8.3, -76.3, -8.0)), srid=4326))
    ana = make_producer(organization=org_a)
    plots = [make_plot(producer=ana, code="gis-full", geometry_value=square(-76.495, -8.195, 0.002),
                       declared_area=2.5, declared_area_unit="yugada", tenure="titled", planting_year=2015,
                       agroforestry_system="permanent_shade", shade_species=["Bolaina", "Capirona"],
                       survey_method="gps_walked", survey_date=date(2025, 3, 14), gps_accuracy_m=3.5)]
    plots += [make_plot(producer=ana, code=f"gis-{i}", geometry_value=square(-76.47 + i * 0.004, -8.19, 0.002))
              for i in range(2)]
    plots += [make_plot(producer=ana, code=f"gis-point-{i}", survey_method="gps_point",
                        geometry_value={"type": "Point", "coordinates": [-76.44 + i * 0.01, -8.17]})
              for i in range(2)]
    Plot.objects.filter(code__startswith="gis-").update(district=district)
    return plots


def download(persona, tmp_path: Path, layer: str, fmt: str, query: str = ""):
    response = persona.client.get(f"/api/v1/exports/{layer}?format={fmt}{query}")
    assert response.status_code == 200, response.content[:300]
    path = tmp_path / f"{layer}{exports.FORMATS[fmt].suffix}"
    path.write_bytes(b"".join(response.streaming_content))
    return response, path


def source(path: Path, fmt: str, name: str) -> str:
    """What GDAL opens: the file, or the file inside the zip (GDAL 3.6 opens a zipped CSV that way only)."""
    if fmt == "shp":
        return f"/vsizip/{path}/{name}.shp"
    if fmt == "csv":
        return f"/vsizip/{path}/{name}.csv"
    return str(path)


def ogrinfo(*args) -> str:
    """The system's GDAL (not the one pyogrio brings, that wrote the file)."""
    out = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr
    return out.stdout


def api_features(persona) -> dict[str, dict]:
    features = persona.client.get("/api/v1/plots?limit=1000").json()["features"]
    return {f["properties"]["code"]: f for f in features}


def file_fields(info: dict, fmt: str) -> list[str]:
    fields = list(info["fields"])
    if fmt == "csv":
        assert fields[0] == "WKT"  # GDAL keeps the WKT text as a field too
        fields = fields[1:]
    return fields


def expected_fields(names: list[str], fmt: str) -> list[str]:
    if fmt == "shp":
        return [exports.SHAPEFILE_FIELDS.get(n, n) for n in names]
    return names


# ------------------------------------------------------------------ fields, types, geometry types

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("layer", ["plots", "plot-points"])
def test_every_format_opens_with_the_api_properties(world, technician, tmp_path, fmt, layer):
    api = api_features(technician)
    names = list(next(iter(api.values()))["properties"])  # the API Feature's property names, in order
    assert names == layers.PLOTS.property_names and len(names) == 19
    response, path = download(technician, tmp_path, layer, fmt)
    name = layer.replace("-", "_")
    info = pyogrio.read_info(source(path, fmt, name), layer=None if fmt in ("shp", "csv") else name)
    assert info["crs"] == "EPSG:4326"
    kind = "Point" if layer == "plot-points" else "MultiPolygon"
    codes = sorted(c for c, f in api.items() if (f["geometry"]["type"] == "Point") == (kind == "Point"))
    frame = pyogrio.read_dataframe(source(path, fmt, name), layer=None if fmt in ("shp", "csv") else name)
    assert len(frame) == len(codes) == info["features"]
    if fmt == "kml":
        # GDAL reads the placemark's <name> as the field Name; the schema's fields follow.
        assert list(frame.columns).index("Name") < list(frame.columns).index("code")
        assert [c for c in frame.columns if c in names] == names
        assert sorted(frame["Name"]) == sorted(frame["code"]) == codes
    else:
        assert file_fields(info, fmt) == expected_fields(names, fmt)
        assert sorted(frame["code"]) == codes
    # One geometry type per layer (a Shapefile types a MultiPolygon layer "Polygon").
    types = set(frame.geometry.geom_type)
    assert types == ({"Point"} if kind == "Point" else {"MultiPolygon"}) or (
        fmt in ("shp", "kml") and kind == "MultiPolygon" and types <= {"Polygon", "MultiPolygon"}), types
    if fmt in ("gpkg", "geojson"):
        assert info["geometry_type"] == kind
    assert response["X-Chacra-Features"] == str(len(frame) + (2 if layer == "plots" and fmt in ("gpkg", "shp") else 0))
    assert response["X-Chacra-Dropped-Parts"] == "0"


def test_the_gpkg_and_shp_plots_exports_hold_both_typed_layers(world, technician, tmp_path):
    _, gpkg = download(technician, tmp_path, "plots", "gpkg")
    assert [list(x) for x in pyogrio.list_layers(gpkg)] == [["plots", "MultiPolygon"], ["plot_points", "Point"]]
    assert len(pyogrio.read_dataframe(gpkg, layer="plot_points")) == 2
    response, shp = download(technician, tmp_path, "plots", "shp")
    assert {"plots.shp", "plots.dbf", "plots.prj", "plots.cpg", "plot_points.shp", "plot_points.prj"} <= set(
        zipfile.ZipFile(shp).namelist())
    assert response["X-Chacra-Point-Plots"] == "2" and "X-Chacra-Note" not in response
    out = ogrinfo("-so", "-al", f"/vsizip/{shp}")
    assert "Layer name: plot_points" in out and "Geometry: Point" in out and "Geometry: Polygon" in out


@pytest.mark.parametrize("fmt", ["geojson", "kml", "csv"])
def test_a_single_layer_plots_export_says_where_the_point_plots_are(world, technician, tmp_path, fmt):
    response, path = download(technician, tmp_path, "plots", fmt)
    assert response["X-Chacra-Point-Plots"] == "2"
    assert "2 plot(s) surveyed as a point are not in this file" in response["X-Chacra-Note"]
    assert "plot-points" in response["X-Chacra-Note"]
    frame = pyogrio.read_dataframe(source(path, fmt, "plots"))
    assert not frame["code"].str.startswith("gis-point").any()


def test_dates_are_typed_in_gpkg_and_shp(world, technician, tmp_path):
    _, gpkg = download(technician, tmp_path, "plots", "gpkg")
    info = pyogrio.read_info(gpkg, layer="plots")
    types = dict(zip(info["fields"], info["ogr_types"]))
    assert types["survey_date"] == "OFTDate" and types["updated_at"] == "OFTDateTime"
    assert types["area_ha"] == "OFTReal" and types["planting_year"] == "OFTInteger"
    assert types["shade_species"] == "OFTString"
    out = ogrinfo("-so", str(gpkg), "plots")
    assert "survey_date: Date" in out and "updated_at: DateTime" in out
    frame = pyogrio.read_dataframe(gpkg, layer="plots").set_index("code")
    assert str(frame.loc["gis-full", "survey_date"])[:10] == "2025-03-14"
    assert frame.loc["gis-0", "survey_date"] is None or str(frame.loc["gis-0", "survey_date"]) == "NaT"  # null
    _, shp = download(technician, tmp_path, "plots", "shp")
    out = ogrinfo("-so", "-al", f"/vsizip/{shp}/plots.shp")
    # dBASE has no date-time: updated_at is the (UTC) day.
    assert "survey_dt: Date" in out and "updated_at: Date" in out and "shade_spp: String" in out
    assert "prod_name: String" in out and "gps_acc_m: Real" in out


def test_the_geojson_dates_read_back_as_dates(world, technician, tmp_path):
    _, path = download(technician, tmp_path, "plots", "geojson")
    info = pyogrio.read_info(path)
    types = dict(zip(info["fields"], info["ogr_types"]))
    assert types["survey_date"] == "OFTDate" and types["updated_at"] == "OFTDateTime"
    out = ogrinfo("-so", str(path), "plots")
    assert "survey_date: Date" in out and "updated_at: DateTime" in out


def test_the_csv_is_a_zip_with_its_types_and_crs(world, technician, tmp_path):
    response, path = download(technician, tmp_path, "plots", "csv")
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].endswith('.csv.zip"')
    archive = zipfile.ZipFile(path)
    assert sorted(archive.namelist()) == ["plots.csv", "plots.csvt", "plots.prj"]
    csvt = archive.read("plots.csvt").decode().strip().split(",")
    assert csvt[0] == "WKT" and len(csvt) == 20
    # As GDAL's CSV driver reads it (the system's GDAL): EPSG:4326, dates typed.
    out = ogrinfo("-so", "-al", f"/vsizip/{path}/plots.csv")
    assert 'ID["EPSG",4326]' in out
    assert "survey_date: Date" in out and "updated_at: DateTime" in out and "planting_year: Integer" in out
    assert pyogrio.read_info(f"/vsizip/{path}/plots.csv")["crs"] == "EPSG:4326"
    # The text itself: ISO 8601 dates, WKT first.
    text = archive.read("plots.csv").decode()
    assert text.splitlines()[0].startswith("WKT,code,producer,producer_name,")
    assert "2025-03-14" in text and "Bolaina; Capirona" in text


@pytest.mark.parametrize("layer", ["plots", "plot-points", "protected-areas", "districts"])
def test_kml_placemarks_are_named(world, technician, tmp_path, layer):
    _, path = download(technician, tmp_path, layer, "kml")
    placemarks = ET.parse(path).getroot().iter(f"{KML}Placemark")
    names = sorted(p.findtext(f"{KML}name") for p in placemarks)
    if layer == "plots":
        assert names == ["gis-0", "gis-1", "gis-full"]
    elif layer == "plot-points":
        assert names == ["gis-point-0", "gis-point-1"]
    elif layer == "protected-areas":
        assert names == ["Bosque de Prueba", "Zona Reservada Astilla"]
    else:
        assert names == ["TOCACHE"]


# ------------------------------------------------------------------ values against the API

@pytest.mark.parametrize("fmt", FORMATS)
def test_one_plots_values_equal_the_api_properties(world, technician, tmp_path, fmt):
    expected = api_features(technician)["gis-full"]["properties"]
    _, path = download(technician, tmp_path, "plots", fmt)
    frame = pyogrio.read_dataframe(source(path, fmt, "plots"), layer=None if fmt in ("shp", "csv") else "plots")
    if fmt == "shp":
        frame = frame.rename(columns={v: k for k, v in exports.SHAPEFILE_FIELDS.items()})
    row = frame[frame["code"] == "gis-full"].iloc[0]
    for name, value in expected.items():
        got = row[name]
        if name == "area_ha":
            assert abs(got - value) < 1e-9, (name, got, value)
        elif name == "shade_species":
            assert got == "; ".join(value) == "Bolaina; Capirona"
        elif name == "survey_date":
            assert str(got)[:10] == value == "2025-03-14", (name, got)
        elif name == "updated_at":
            api_moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if fmt == "shp":
                assert str(got)[:10] == api_moment.date().isoformat()
            else:
                moment = got.to_pydatetime() if hasattr(got, "to_pydatetime") else datetime.fromisoformat(got)
                assert abs(moment - api_moment) < timedelta(milliseconds=1), (got, value)
        elif isinstance(value, float):
            assert got == pytest.approx(value, rel=1e-12), name
        else:
            assert got == value, (name, got, value)


# ------------------------------------------------------------------ polygons only, dropped parts counted

def test_a_sliver_that_collapses_on_the_grid_is_dropped_and_counted(world, technician, tmp_path):
    response, path = download(technician, tmp_path, "protected-areas", "geojson")
    assert response["X-Chacra-Dropped-Parts"] == "1"
    assert "Zona Reservada Astilla (ZR-ASTILLA): 1 line part" in response["X-Chacra-Dropped-Parts-Detail"]
    doc = json.loads(path.read_text())
    assert {f["geometry"]["type"] for f in doc["features"]} == {"MultiPolygon"}
    astilla = next(f for f in doc["features"] if f["properties"]["name"] == "Zona Reservada Astilla")
    assert len(astilla["geometry"]["coordinates"]) == 1  # the reserve's square, without the sliver
    for fmt in ("gpkg", "shp", "kml", "csv"):
        response, path = download(technician, tmp_path, "protected-areas", fmt)
        assert response["X-Chacra-Dropped-Parts"] == "1", fmt
        frame = pyogrio.read_dataframe(source(path, fmt, "protected_areas"))
        assert set(frame.geometry.geom_type) <= {"MultiPolygon", "Polygon"} and len(frame) == 2, fmt
        assert shapely.is_valid(frame.geometry).all(), fmt


def test_a_geometry_collection_is_written_as_its_polygons(db):
    """The SQL itself, on what the MultiPolygon columns cannot hold: a polygon plus a line."""
    joins, select = exports._polygonal("a.g")
    collection = ("GEOMETRYCOLLECTION(POLYGON((-76.5 -8.2,-76.49 -8.2,-76.49 -8.19,-76.5 -8.2)),"
                  "LINESTRING(-76.48 -8.2,-76.47 -8.19),POINT(-76.46 -8.18))")
    with connection.cursor() as cur:
        cur.execute(f"SELECT {select} FROM (SELECT ST_GeomFromText(%s, 4326) AS g) a{joins}", [collection])
        geom, lines, points, polygons = cur.fetchone()
    written = shapely.from_wkb(bytes(geom))
    assert written.geom_type == "MultiPolygon" and len(written.geoms) == 1
    assert (lines, points, polygons) == (1, 1, 0)


def test_the_command_prints_the_dropped_parts_and_writes_a_csv_beside_its_sidecars(world, tmp_path):
    out = io.StringIO()
    call_command("export", "protected-areas", "--format", "geojson", "--out", str(tmp_path / "areas.geojson"),
                 stdout=out)
    text = out.getvalue()
    assert "2 protected_areas (geojson)" in text
    assert "1 part(s) dropped" in text and "Zona Reservada Astilla (ZR-ASTILLA): 1 line part" in text
    out = io.StringIO()
    call_command("export", "plots", "--format", "csv", "--out", str(tmp_path / "plots.csv"), stdout=out)
    assert "2 plot(s) surveyed as a point are not in this file" in out.getvalue()
    assert sorted(p.name for p in tmp_path.glob("plots.*")) == ["plots.csv", "plots.csvt", "plots.prj"]
    info = pyogrio.read_info(tmp_path / "plots.csv")
    assert info["crs"] == "EPSG:4326" and info["features"] == 3
    # Again over the same name: replaced, not refused.
    call_command("export", "plots", "--format", "csv", "--out", str(tmp_path / "plots.csv"), stdout=io.StringIO())


def test_shapefile_names_fit_dbase(world):
    for layer in exports.LAYERS.values():
        names = [exports.SHAPEFILE_FIELDS.get(c.name, c.name) for c in layer.declared.export]
        assert all(len(n) <= 10 for n in names), layer.id
        assert len({n.lower() for n in names}) == len(names), layer.id


# ------------------------------------------------------------------ the real SERNANP and INEI layers

def test_the_real_sernanp_layer_is_written_as_polygons_only(technician, tmp_path):
    folder = SHARED / "protected_areas"
    for filename, category in [("cordillera_azul_4326.geojson", "national_park"), ("acr.geojson", "regional"),
                               ("acp.geojson", "private"), ("zona_reservada.geojson", "reserved_zone")]:
        extra = {"code_field": "NOMBRE", "name_field": "NOMBRE"} if filename.startswith("cordillera") else {}
        reference.load_protected_areas(folder / filename, category=category, edition="sernanp-test",
                                       source=filename, **extra)
    loaded = ProtectedArea.objects.count()
    assert loaded == 288
    assert ProtectedArea.objects.filter(name="Santiago Comaina").exists()
    response, path = download(technician, tmp_path, "protected-areas", "geojson")
    doc = json.loads(path.read_text())
    assert len(doc["features"]) == loaded
    assert {f["geometry"]["type"] for f in doc["features"]} == {"MultiPolygon"}  # 288 polygons, no collection
    assert response["X-Chacra-Dropped-Parts"] == "1"
    assert response["X-Chacra-Dropped-Parts-Detail"].startswith("1 part(s) dropped")
    assert "Santiago Comaina (ZR03): 1 line part" in response["X-Chacra-Dropped-Parts-Detail"]
    # As written, every area is valid and within the grid's rounding of the stored one.
    written = {f["properties"]["id"]: shapely.geometry.shape(f["geometry"]) for f in doc["features"]}
    assert all(g.is_valid for g in written.values())
    comaina = ProtectedArea.objects.get(name="Santiago Comaina")
    stored = shapely.from_wkb(bytes(comaina.geom.wkb))
    # (Its 4 cm sliver, a line on the grid, is gone: a vertex of it is 4e-7 degree away.)
    assert shapely.hausdorff_distance(written[comaina.id], stored) < 1e-6
    assert abs(written[comaina.id].area - stored.area) < 1e-6 * stored.area
    _, gpkg = download(technician, tmp_path, "protected-areas", "gpkg")
    assert [list(x) for x in pyogrio.list_layers(gpkg)] == [["protected_areas", "MultiPolygon"]]


def test_the_real_inei_districts_are_written_as_polygons_only(technician, tmp_path):
    path = SHARED / "peru_admin_boundaries_inei2007" / "peru_distrital_simple.geojson"
    reference.load_admin_areas(path, level="district", edition=2007, source="INEI 2007")
    districts = AdminArea.objects.filter(level="district").count()
    response, path = download(technician, tmp_path, "districts", "geojson")
    doc = json.loads(path.read_text())
    assert len(doc["features"]) == districts > 1800
    assert {f["geometry"]["type"] for f in doc["features"] if f["geometry"]} == {"MultiPolygon"}
    assert int(response["X-Chacra-Dropped-Parts"]) >= 0
    # The three districts without a geometry in INEI's file stay, without one.
    assert sum(f["geometry"] is None for f in doc["features"]) == AdminArea.objects.filter(
        level="district", geom__isnull=True).count()


def test_the_export_geometry_is_the_stored_one_on_the_grid(world, technician, tmp_path):
    _, path = download(technician, tmp_path, "plots", "gpkg")
    frame = pyogrio.read_dataframe(path, layer="plots")
    plot = Plot.objects.get(code="gis-full")
    stored = shapely.from_wkb(bytes(GEOSGeometry(plot.boundary).wkb))
    written = frame[frame["code"] == "gis-full"].geometry.iloc[0]
    expected = shapely.set_precision(stored, exports.GRID)
    assert shapely.equals_exact(shapely.normalize(written), shapely.normalize(expected), tolerance=1e-12)
    assert shapely.LinearRing(written.geoms[0].exterior.coords).is_ccw  # RFC 7946's winding, in every format
