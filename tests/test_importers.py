"""The format readers (plots.importers.formats) on small hand-made files and on the
real public files of ../shared/data.

The readers must not touch the database: no test here asks for it, so pytest-django
would fail any that did. Expected coordinates are written by hand or computed with
pyproj's Transformer, independently of the GDAL/GEOS path the readers use.
"""

from __future__ import annotations

import json
import stat
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import pytest

from tests.conftest import SharedDir
import shapely
from django.conf import settings
from pyproj import Transformer
from shapely.geometry import Point as SPoint, Polygon as SPolygon

from plots.importers import registry, safety
from plots.importers.base import ImportFileError, Limits, SourceRecord
from plots.importers.formats.odk import parse_odk_points

DATA = Path(settings.CHACRA_SHARED_DATA)
GPX_DIR = SharedDir(DATA / "gpx_tracks_gpxpy")
WHISP = SharedDir(DATA / "whisp_example_plots")
GUADELOUPE = SharedDir(DATA / "forest_cover_tmf_guadeloupe_forestatrisk")


def read(path: Path, fmt: str | None = None, **kwargs) -> list[SourceRecord]:
    return list(registry.for_path(path, fmt).read(path, **kwargs))


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def assert_json_safe(record: SourceRecord) -> None:
    json.dumps(record.properties, allow_nan=False)


BILLION_LAUGHS_DTD = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name,fmt", [
    ("a.gpx", "gpx"), ("a.kml", "kml"), ("a.kmz", "kmz"), ("a.geojson", "geojson"), ("a.json", "geojson"),
    ("a.gpkg", "gpkg"), ("a.zip", "shapefile"), ("a.shp.zip", "shapefile"), ("A.CSV", "csv"),
])
def test_it_picks_the_reader_by_extension(name, fmt):
    assert registry.for_path(Path(name)).name == fmt


def test_it_reads_odk_only_when_named():
    assert registry.names() == ["csv", "geojson", "gpkg", "gpx", "kml", "kmz", "odk", "shapefile"]
    assert registry.for_path(Path("kobo.csv"), "odk").name == "odk"


# -------------------------------------------------------------------------------- GPX

GPX_TWO_TRACKS = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"
     xmlns:x="https://example.org/acc">
  <wpt lat="-8.0" lon="-76.0"><name>ignored</name></wpt>
  <trk><name>Chacra Ramírez</name><desc>perímetro</desc>
    <trkseg>
      <trkpt lat="-8.1900" lon="-76.5100"><time>2024-05-01T14:00:00Z</time>
        <extensions><x:hAcc>3.5</x:hAcc></extensions></trkpt>
      <trkpt lat="-8.1900" lon="-76.5091"><time>2024-05-01T14:01:00Z</time><hdop>2</hdop></trkpt>
    </trkseg>
    <trkseg></trkseg>
    <trkseg>
      <trkpt lat="-8.1891" lon="-76.5091"><time>2024-05-01T09:02:00-05:00</time></trkpt>
      <trkpt lat="-8.1891" lon="-76.5100"></trkpt>
    </trkseg>
  </trk>
  <trk><name>Segunda</name><trkseg>
      <trkpt lat="-8.2" lon="-76.6"/><trkpt lat="-8.21" lon="-76.61"/></trkseg></trk>
</gpx>
"""


def test_it_reads_gpx_tracks_with_segments_times_and_accuracy(tmp_path):
    records = read(write(tmp_path, "walk.gpx", GPX_TWO_TRACKS))
    assert [r.label for r in records] == ["track 'Chacra Ramírez' (1)", "track 'Segunda' (2)"]
    first = records[0]
    assert first.number == 1 and first.error is None
    assert first.properties == {"name": "Chacra Ramírez", "description": "perímetro", "points": 4}
    assert first.geometry.geom_type == "MultiLineString" and first.geometry.srid == 4326
    assert first.geometry.coords == (((-76.51, -8.19), (-76.5091, -8.19)), ((-76.5091, -8.1891), (-76.51, -8.1891)))
    assert len(first.segments) == 2  # the empty <trkseg> is ignored
    p1, p2 = first.segments[0]
    p3, p4 = first.segments[1]
    assert p1.accuracy_m == 3.5  # the horizontal accuracy from the extension
    assert p2.accuracy_m == 10.0  # HDOP 2 × 5 m
    assert p3.accuracy_m is None and p4.time is None
    assert p1.time == datetime(2024, 5, 1, 14, 0, tzinfo=timezone.utc)
    assert p3.time == datetime(2024, 5, 1, 14, 2, tzinfo=timezone.utc)  # -05:00 in UTC
    assert records[1].geometry.geom_type == "LineString"
    assert all(isinstance(r.geometry.coords, tuple) for r in records)
    assert_json_safe(first)


def test_it_reads_a_gpx_with_a_utf8_bom(tmp_path):
    path = tmp_path / "bom.gpx"
    path.write_bytes(b"\xef\xbb\xbf" + GPX_TWO_TRACKS.encode("utf-8"))
    assert read(path)[0].properties["name"] == "Chacra Ramírez"


def test_it_refuses_gpx_entity_expansion(tmp_path):
    path = write(tmp_path, "laughs.gpx", BILLION_LAUGHS_DTD + '<gpx version="1.1"><trk><name>&lol9;</name>'
                 '<trkseg><trkpt lat="1" lon="1"/><trkpt lat="2" lon="2"/></trkseg></trk></gpx>')
    with pytest.raises(ImportFileError) as caught:
        read(path)
    assert "laughs.gpx" in str(caught.value)
    assert "DTD" in caught.value.reason and "entity-expansion" in caught.value.reason


def test_it_refuses_a_gpx_that_is_not_xml(tmp_path):
    with pytest.raises(ImportFileError, match="not a well-formed GPX"):
        read(write(tmp_path, "broken.gpx", "<gpx><trk>"))


def test_it_flags_gpx_points_off_the_globe(tmp_path):
    path = write(tmp_path, "off.gpx", '<gpx version="1.1"><trk><trkseg><trkpt lat="95" lon="10"/>'
                 '<trkpt lat="96" lon="10"/></trkseg></trk></gpx>')
    (record,) = read(path)
    assert record.geometry is None
    assert record.error.startswith("track 1: coordinates out of range")


def test_it_limits_gpx_tracks_and_points(tmp_path):
    path = write(tmp_path, "walk.gpx", GPX_TWO_TRACKS)
    with pytest.raises(ImportFileError, match="2 tracks; at most 1 are allowed"):
        read(path, limits=Limits(max_features=1))
    records = read(path, limits=Limits(max_vertices_per_feature=3))
    assert "4 vertices, more than the 3 allowed" in records[0].error and records[0].geometry is None
    assert records[1].error is None


def test_it_refuses_a_file_over_the_size_limit(tmp_path):
    path = write(tmp_path, "walk.gpx", GPX_TWO_TRACKS)
    with pytest.raises(ImportFileError, match=r"more than the 0\.1 kB allowed"):
        read(path, limits=Limits(max_file_bytes=100))


# Real tracks from gpxpy's test files (Apache-2.0, tkrajina/gpxpy).

def test_it_refuses_the_route_file_with_its_reason():
    with pytest.raises(ImportFileError) as caught:
        read(GPX_DIR / "route.gpx")
    assert "route.gpx" in str(caught.value)
    assert "planned route (1 <rte>, 55 points), not a walked track" in caught.value.reason


@pytest.mark.parametrize("name", ["unicode_with_bom.gpx", "gpx_with_garmin_extension.gpx"])
def test_it_refuses_waypoint_only_files_as_holding_no_track(name):
    # unicode_with_bom.gpx holds one waypoint and no track: the BOM itself must not
    # be what fails, so the reason is the missing track, not a parse error.
    with pytest.raises(ImportFileError, match=r"only 1 waypoint\(s\) and no track"):
        read(GPX_DIR / name)


def test_it_ignores_the_empty_segment_of_a_real_track():
    (record,) = read(GPX_DIR / "track-with-empty-segment.gpx")
    assert len(record.segments) == 1 and len(record.segments[0]) == 9
    assert record.geometry.geom_type == "LineString" and record.geometry.num_points == 9
    assert record.segments[0][0].time == datetime(2013, 7, 6, 17, 26, 26, tzinfo=timezone.utc)


def test_it_reads_a_real_multi_track_file_without_times():
    records = read(GPX_DIR / "cerknicko-without-times.gpx")
    # 8 <trk>; the first ("ACTIVE LOG") has no points and is skipped, the others keep their numbers.
    assert [r.number for r in records] == [2, 3, 4, 5, 6, 7, 8]
    assert all(r.error is None for r in records)
    points = [p for r in records for seg in r.segments for p in seg]
    assert len(points) == 296
    assert sum(p.time is None for p in points) == 291  # 5 of 296 points are timed


def test_it_reads_the_1901_clock_with_its_times():
    (record,) = read(GPX_DIR / "Mojstrovka.gpx")
    times = [p.time for p in record.segments[0]]
    assert len(times) == 184 and {t.year for t in times} == {1901}
    assert record.label == "track 1"


def test_it_takes_accuracy_from_hdop_in_a_real_file():
    (record,) = read(GPX_DIR / "track_with_dilution_errors.gpx")
    assert record.segments[0][0].accuracy_m == pytest.approx(300.1 * 5)
    assert record.error == "track 1: it has 1 point(s); a track needs at least 2"


@pytest.mark.parametrize("path", sorted(GPX_DIR.glob("*.gpx")), ids=lambda p: p.name)
def test_it_reads_or_refuses_every_real_gpx_with_a_reason(path):
    refused = {"route.gpx", "unicode_with_bom.gpx", "gpx_with_garmin_extension.gpx"}
    if path.name in refused:
        with pytest.raises(ImportFileError):
            read(path)
        return
    records = read(path)
    assert records
    for record in records:
        assert record.error is None or record.error.startswith(record.label)
        if record.geometry is not None:
            assert record.geometry.srid == 4326 and not record.geometry.hasz
            assert record.geometry.geom_type in ("LineString", "MultiLineString")
        assert_json_safe(record)


# -------------------------------------------------------------------------------- KML

KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>doc</name>
<Folder><name>Parcelas</name>
<Placemark><name>Chacra Ramírez</name><description>cacao CCN-51</description>
<ExtendedData><Data name="codigo"><value>P-001</value></Data></ExtendedData>
<Polygon><outerBoundaryIs><LinearRing><coordinates>-76.51,-8.19,0 -76.509,-8.19,0 -76.509,-8.189,0
-76.51,-8.189,0 -76.51,-8.19,0</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>
<Placemark><name>Pozo</name><Point><coordinates>-76.5,-8.18</coordinates></Point></Placemark>
</Folder>
<Folder><name>Recorridos</name>
<Placemark><name>Recorrido</name><LineString><coordinates>-76.51,-8.19 -76.509,-8.19 -76.509,-8.189</coordinates>
</LineString></Placemark>
<Placemark><name>Lejos</name><Point><coordinates>10,120</coordinates></Point></Placemark>
</Folder></Document></kml>
"""


def test_it_reads_kml_placemarks_across_folders(tmp_path):
    records = read(write(tmp_path, "plots.kml", KML))
    assert [r.number for r in records] == [1, 2, 3, 4]
    polygon, point, line, far = records
    assert polygon.label == "placemark 1 (name 'Chacra Ramírez')"
    assert polygon.properties == {"name": "Chacra Ramírez", "description": "cacao CCN-51",
                                  "folder": "Parcelas", "codigo": "P-001"}
    assert polygon.geometry.geom_type == "Polygon" and not polygon.geometry.hasz
    assert polygon.geometry.coords[0][1] == (-76.509, -8.19)
    assert polygon.segments is None
    assert point.geometry.coords == (-76.5, -8.18)
    assert line.geometry.geom_type == "LineString"
    assert [(p.lon, p.lat, p.time) for p in line.segments[0]] == [
        (-76.51, -8.19, None), (-76.509, -8.19, None), (-76.509, -8.189, None)]
    assert far.geometry is None and "latitude and longitude look swapped" in far.error
    for record in records:
        assert_json_safe(record)


def test_it_reads_one_kml_folder_when_named(tmp_path):
    path = write(tmp_path, "plots.kml", KML)
    assert [r.properties["name"] for r in read(path, layer="Recorridos")] == ["Recorrido", "Lejos"]
    with pytest.raises(ImportFileError, match="no folder 'Nada'"):
        read(path, layer="Nada")


def test_it_refuses_kml_entity_expansion(tmp_path):
    path = write(tmp_path, "laughs.kml", BILLION_LAUGHS_DTD + '<kml xmlns="http://www.opengis.net/kml/2.2">'
                 "<Placemark><name>&lol9;</name><Point><coordinates>1,1</coordinates></Point></Placemark></kml>")
    with pytest.raises(ImportFileError, match=r"laughs\.kml: refused: the file declares a DTD"):
        read(path)


def make_zip(path: Path, entries: dict[str, bytes | Path]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            if isinstance(content, Path):
                archive.write(content, name)
            else:
                archive.writestr(name, content)
    return path


def test_it_reads_a_kmz(tmp_path):
    path = make_zip(tmp_path / "plots.kmz", {"doc.kml": KML.encode(), "files/icon.png": b"\x89PNG"})
    records = read(path)
    assert [r.properties["name"] for r in records] == ["Chacra Ramírez", "Pozo", "Recorrido", "Lejos"]
    assert list(tmp_path.iterdir()) == [path]  # nothing left behind


def test_it_refuses_a_kmz_with_entity_expansion_inside(tmp_path):
    laughs = BILLION_LAUGHS_DTD + "<kml><Placemark><name>&lol9;</name></Placemark></kml>"
    path = make_zip(tmp_path / "laughs.kmz", {"doc.kml": laughs.encode()})
    with pytest.raises(ImportFileError, match=r"laughs\.kmz: refused: the file declares a DTD"):
        read(path)


def test_it_refuses_a_kmz_whose_entry_climbs_out(tmp_path):
    path = make_zip(tmp_path / "evil.kmz", {"doc.kml": KML.encode(), "../../etc/evil.kml": b"<kml/>"})
    with pytest.raises(ImportFileError, match=r"the entry '../../etc/evil.kml' has a path that climbs out"):
        read(path)


# ---------------------------------------------------------------------------- GeoJSON


def feature(geometry, **properties):
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def square(lon, lat, size=0.001):
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


def collection(*features, **extra):
    return json.dumps({"type": "FeatureCollection", **extra, "features": list(features)})


def test_it_reads_geojson_and_explains_a_polygon_nested_like_a_multipolygon(tmp_path):
    path = write(tmp_path, "plots.geojson", collection(
        feature({"type": "Polygon", "coordinates": [square(-76.51, -8.19)]}, name="buena", fecha="2024-01-02"),
        feature({"type": "Polygon", "coordinates": [[square(-76.52, -8.19)]]}, name="anidada"),
        feature(None, name="sin geometría"),
        feature({"type": "Point", "coordinates": [500, 10]}, name="lejos"),
        feature({"type": "Polygon", "coordinates": [square(-76.53, -8.19)[:-1]]}, name="abierta"),
    ))
    good, nested, empty, far, unclosed = read(path)
    assert good.error is None and good.geometry.geom_type == "Polygon"
    assert good.geometry.coords[0][0] == (-76.51, -8.19)
    assert good.properties == {"name": "buena", "fecha": "2024-01-02"}
    assert nested.geometry is None
    assert nested.error.startswith("feature 2 (name 'anidada'): its Polygon coordinates are nested like a MultiPolygon's: ")
    assert empty.error == "feature 3 (name 'sin geometría'): it has no geometry"
    assert "longitudes 500 … 500" in far.error and "swapped" not in far.error
    assert unclosed.error == "feature 5 (name 'abierta'): a ring is not closed: its first and last positions differ"


def test_it_honours_a_legacy_geojson_crs_member(tmp_path):
    utm = (383_000.0, 9_094_000.0)  # UTM 18 S, near Tocache
    path = write(tmp_path, "utm.geojson", collection(
        feature({"type": "Point", "coordinates": list(utm)}, code="P-1"),
        crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32718"}}))
    (record,) = read(path)
    lon, lat = Transformer.from_crs(32718, 4326, always_xy=True).transform(*utm)
    assert record.geometry.x == pytest.approx(lon, abs=1e-9) and record.geometry.y == pytest.approx(lat, abs=1e-9)
    assert record.label == "feature 1 (code 'P-1')"
    with pytest.raises(ImportFileError, match="declares EPSG:32718 but EPSG:32717 was given"):
        read(path, srid=32717)


def test_it_takes_the_crs_of_a_geojson_without_crs_member_from_srid(tmp_path):
    path = write(tmp_path, "utm.geojson", collection(feature({"type": "Point", "coordinates": [383000, 9094000]})))
    assert "coordinates out of range" in read(path)[0].error  # RFC 7946: WGS 84 unless told
    (record,) = read(path, srid=32718)
    assert record.error is None and record.geometry.y == pytest.approx(-8.19, abs=0.01)


def test_it_limits_geojson_features(tmp_path):
    path = write(tmp_path, "three.geojson", collection(*[
        feature({"type": "Point", "coordinates": [-76.5, -8.1 - i / 100]}) for i in range(3)]))
    with pytest.raises(ImportFileError, match="holds 3 features; at most 2 are allowed"):
        read(path, limits=Limits(max_features=2))
    with pytest.raises(ImportFileError, match="more than the"):
        read(path, limits=Limits(max_file_bytes=10))


def test_it_refuses_a_geojson_gdal_cannot_open(tmp_path):
    with pytest.raises(ImportFileError, match=r"bad\.geojson: GDAL cannot read it"):
        read(write(tmp_path, "bad.geojson", "{not json"))


def test_it_names_every_malformed_cameroon_plot():
    # CICC_plots_subset_simple.geojson (forestdatapartnership/whisp-app, MIT): 18 "Polygon"
    # features nested like MultiPolygons. GDAL 3.12 returns them without geometry.
    records = read(WHISP / "CICC_plots_subset_simple.geojson")
    assert len(records) == 18
    assert all(r.geometry is None for r in records)
    assert records[0].error.startswith(
        "feature 1 (UID 108): its Polygon coordinates are nested like a MultiPolygon's: ")
    assert records[17].error.startswith("feature 18 (UID 996): its Polygon coordinates are nested")
    assert records[0].properties == {"Date_debut": "2022-11-22", "Date_fin": "2023-03-04", "SUP": 4043,
                                     "UID": 108, "Area_ha": pytest.approx(0.40434835504)}


def test_it_reads_the_ghana_and_whisp_plots():
    ghana = read(WHISP / "feature_collection_gha.geojson")
    assert [r.geometry.geom_type for r in ghana] == ["Polygon", "Polygon"]
    assert all(r.error is None and r.properties == {} for r in ghana)
    whisp = read(WHISP / "whisp_example_polys.geojson")
    assert len(whisp) == 50 and all(r.error is None for r in whisp)
    assert {r.geometry.geom_type for r in whisp} == {"MultiPolygon"}
    assert [r.properties["user_id"] for r in whisp] == list(range(1, 51))
    peru = whisp[13]  # user_id 14, near Tocache: centroid -76.5202, -8.3203 per SOURCES.txt
    assert peru.geometry.centroid.x == pytest.approx(-76.5202, abs=1e-3)
    assert peru.geometry.centroid.y == pytest.approx(-8.3203, abs=1e-3)


# ------------------------------------------------------------------------- GeoPackage


@pytest.fixture
def gpkg(tmp_path):
    path = tmp_path / "plots.gpkg"
    parcels = gpd.GeoDataFrame(
        {"codigo": ["P-1", "P-2"], "area": [1.5, None],
         "fecha": [datetime(2024, 3, 1).date(), datetime(2024, 3, 2).date()]},
        geometry=[SPolygon([(383000, 9094000), (383100, 9094000), (383100, 9094100), (383000, 9094000)]),
                  SPoint(383500, 9094500)],
        crs="EPSG:32718")
    parcels.to_file(path, layer="parcelas", driver="GPKG")
    wells = gpd.GeoDataFrame({"nombre": ["Pozo"]}, geometry=[SPoint(-76.5, -8.18)], crs="EPSG:4326")
    wells.to_file(path, layer="pozos", driver="GPKG")
    bare = gpd.GeoDataFrame({"n": [1]}, geometry=[SPoint(383000, 9094000)], crs=None)
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        bare.to_file(path, layer="sin_crs", driver="GPKG")
    return path


def test_it_reads_the_first_gpkg_layer_reprojected(gpkg):
    first, second = read(gpkg)
    to_wgs84 = Transformer.from_crs(32718, 4326, always_xy=True)
    lon, lat = to_wgs84.transform(383100, 9094000)
    assert first.geometry.geom_type == "Polygon" and first.geometry.srid == 4326
    assert first.geometry.coords[0][1] == (pytest.approx(lon, abs=1e-9), pytest.approx(lat, abs=1e-9))
    assert first.properties == {"codigo": "P-1", "area": 1.5, "fecha": "2024-03-01"}
    assert second.properties["area"] is None and second.geometry.geom_type == "Point"
    assert first.label == "feature 1 (codigo 'P-1')"


def test_it_reads_a_named_gpkg_layer(gpkg):
    (well,) = read(gpkg, layer="pozos")
    assert well.geometry.coords == (-76.5, -8.18)
    with pytest.raises(ImportFileError, match="no layer 'nada'; the file has: 'parcelas', 'pozos', 'sin_crs'"):
        read(gpkg, layer="nada")


def test_it_refuses_a_gpkg_layer_without_crs_unless_named(gpkg):
    with pytest.raises(ImportFileError, match="the layer 'sin_crs' has no coordinate reference system: name its CRS"):
        read(gpkg, layer="sin_crs")
    (record,) = read(gpkg, layer="sin_crs", srid=32718)
    assert record.geometry.y == pytest.approx(-8.19, abs=0.01)


# -------------------------------------------------------------------------- shapefile


def zip_guadeloupe(path: Path, suffixes=("shp", "shx", "dbf", "prj", "cpg"), prefix="pa/") -> Path:
    return make_zip(path, {f"{prefix}pa_PROJ.{s}": GUADELOUPE / f"pa_PROJ.{s}" for s in suffixes})


def test_it_reads_the_guadeloupe_shapefile_reprojected(tmp_path):
    # forestatrisk test data (GPL-3; WDPA polygons): EPSG:3395, rings wound the wrong way.
    records = read(zip_guadeloupe(tmp_path / "pa.zip"))
    assert len(records) == 26 and all(r.error is None for r in records)
    first = records[0]
    assert first.properties["pa_name"] == "Grand Cul-de-Sac Marin de la Guadeloupe"
    assert first.properties["wdpa_id"] == 103548
    # One vertex, reprojected independently with pyproj from the coordinate in the .shp.
    x, y = -6848709.032074571, 1839380.322967659
    lon, lat = Transformer.from_crs(3395, 4326, always_xy=True).transform(x, y)
    vertices = shapely.get_coordinates(shapely.from_wkt(first.geometry.wkt))
    assert min(abs(vx - lon) + abs(vy - lat) for vx, vy in vertices) < 1e-9
    assert -61.86 < lon < -60.95 and 15.78 < lat < 16.56


def test_it_refuses_a_shapefile_without_prj_unless_named(tmp_path):
    path = zip_guadeloupe(tmp_path / "noprj.zip", ("shp", "shx", "dbf"))
    with pytest.raises(ImportFileError, match=r"pa_PROJ\.shp has no \.prj: name its CRS, e\.g\. --crs 32718"):
        read(path)
    assert len(read(path, srid=3395)) == 26


def test_it_wants_exactly_one_complete_shapefile(tmp_path):
    with pytest.raises(ImportFileError, match=r"comes without its \.dbf"):
        read(zip_guadeloupe(tmp_path / "nodbf.zip", ("shp", "shx", "prj")))
    with pytest.raises(ImportFileError, match="no .shp file"):
        read(make_zip(tmp_path / "empty.zip", {"readme.txt": b"hola"}))
    two = make_zip(tmp_path / "two.zip", {f"{d}/pa_PROJ.{s}": GUADELOUPE / f"pa_PROJ.{s}"
                                          for d in ("a", "b") for s in ("shp", "shx", "dbf")})
    with pytest.raises(ImportFileError, match=r"holds 2 \.shp files"):
        read(two)


def test_it_refuses_a_zip_entry_named_to_escape(tmp_path):
    path = make_zip(tmp_path / "evil.zip", {"../evil.shp": b"x", "../evil.shx": b"x", "../evil.dbf": b"x"})
    with pytest.raises(ImportFileError, match=r"refused: the entry '\.\./evil\.shp' has a path that climbs out"):
        read(path)
    assert not (tmp_path.parent / "evil.shp").exists()


def test_it_refuses_a_zip_bomb_without_inflating_it(tmp_path, monkeypatch):
    path = tmp_path / "bomb.zip"
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("bomb.shp", "w", force_zip64=True) as entry:  # streamed: 200 MB never in memory
            for _ in range(200):
                entry.write(zeros)
    assert path.stat().st_size < 1024 * 1024
    monkeypatch.setattr(safety, "extract_members", lambda *a, **k: pytest.fail("the bomb was inflated"))
    with pytest.raises(ImportFileError, match=r"bomb\.zip: refused: the entry 'bomb\.shp' expands [\d,]+ times"):
        read(path)
    with pytest.raises(ImportFileError, match=r"would expand to 200\.0 MB, more than the 100\.0 MB allowed"):
        read(path, limits=Limits(max_uncompressed_bytes=100 * 1024 * 1024))


def test_it_refuses_symlinks_and_too_many_entries(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("pa.shp")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(ImportFileError, match="'pa.shp' is a symbolic link"):
        read(path)
    many = make_zip(tmp_path / "many.zip", {f"f{i}.txt": b"" for i in range(5)})
    with pytest.raises(ImportFileError, match="holds 5 entries, more than the 4 allowed"):
        read(many, limits=Limits(max_zip_entries=4))
    with pytest.raises(ImportFileError, match="not a readable zip archive"):
        read(write(tmp_path, "fake.zip", "not a zip"))


@pytest.mark.parametrize("name,unsafe", [
    ("a/b.shp", False), ("b..shp", False), ("../b.shp", True), ("a/../../b", True), ("/etc/passwd", True),
    ("C:\\x\\b.shp", True), ("a\\..\\..\\b", True),
])
def test_it_knows_which_entry_names_escape(name, unsafe):
    assert (safety.unsafe_member_name(name) is not None) is unsafe


# -------------------------------------------------------------------------------- CSV


def test_it_reads_csv_points(tmp_path):
    path = write(tmp_path, "points.csv", "codigo,lon,lat,productor\nP-1,-76.51,-8.19,Ramírez\n"
                                         "P-2,abc,-8.19,Soto\nP-3,-76.52,,Quispe\n\nP-4,10,120,Lejos\n")
    good, text, missing, far = read(path)
    assert (good.number, good.label) == (2, "row 2")  # the header is row 1, as in a spreadsheet
    assert good.geometry.coords == (-76.51, -8.19) and good.geometry.srid == 4326
    assert good.properties == {"codigo": "P-1", "productor": "Ramírez"}
    assert text.error == "row 3: column 'lon' is not a number ('abc')" and text.geometry is None
    assert missing.error == "row 4: column 'lat' is empty"
    assert far.label == "row 6" and "latitude and longitude look swapped" in far.error


@pytest.mark.parametrize("encoding,bom", [("utf-8", "\ufeff"), ("cp1252", "")])
def test_it_reads_spanish_excel_csv(tmp_path, encoding, bom):
    # Excel in a Spanish locale: ";" delimiters, decimal commas, UTF-8 with a BOM or Windows-1252.
    path = write(tmp_path, "puntos.csv", f"{bom}Código;Longitud;Latitud\nP-1;-76,51;-8,19\nP-2;-76,52;-8,20\n", encoding)
    records = read(path)
    assert [r.geometry.coords for r in records] == [(-76.51, -8.19), (-76.52, -8.2)]
    assert records[0].properties == {"Código": "P-1"}


@pytest.mark.parametrize("header", ["LNG,Lat", "longitude,latitude", "X,Y"])
def test_it_accepts_the_usual_coordinate_column_names(tmp_path, header):
    (record,) = read(write(tmp_path, "p.csv", f"{header}\n-76.5,-8.1\n"))
    assert record.geometry.coords == (-76.5, -8.1)


def test_it_reads_csv_xy_in_a_named_crs(tmp_path):
    (record,) = read(write(tmp_path, "utm.csv", "x,y\n383000,9094000\n"), srid=32718)
    lon, lat = Transformer.from_crs(32718, 4326, always_xy=True).transform(383000, 9094000)
    assert record.geometry.coords == (pytest.approx(lon, abs=1e-9), pytest.approx(lat, abs=1e-9))


def test_it_refuses_a_csv_without_coordinates(tmp_path):
    with pytest.raises(ImportFileError, match=r"no coordinate columns: .*\(the file has: a, b\)"):
        read(write(tmp_path, "none.csv", "a,b\n1,2\n"))
    with pytest.raises(ImportFileError, match="more than 1 rows"):
        read(write(tmp_path, "two.csv", "lon,lat\n1,2\n3,4\n"), limits=Limits(max_features=1))


# -------------------------------------------------------------------------------- ODK

# Kobo puts latitude first; a geoshape repeats its first point at the end.
SHAPE = "-8.19 -76.51 150 4.5;-8.19 -76.509 150 4.5;-8.189 -76.509 150 4.5;-8.19 -76.51 150 4.5"
TRACE = "-8.19 -76.51 150 3;-8.19 -76.509 150 0;-8.189 -76.509 150 5"


def test_it_reads_odk_geoshapes_with_latitude_first(tmp_path):
    path = write(tmp_path, "kobo.csv", "start,grupo_parcela/limite_parcela,productor,_uuid\n"
                                       f'2024-05-01,"{SHAPE}",Ramírez,u1\n2024-05-02,,Soto,u2\n'
                                       '2024-05-03,"-8.19 -76.51 0 0;oops",Quispe,u3\n')
    shape, empty, broken = read(path, "odk")
    assert shape.geometry.geom_type == "Polygon"
    assert shape.geometry.coords[0] == ((-76.51, -8.19), (-76.509, -8.19), (-76.509, -8.189), (-76.51, -8.19))
    assert shape.properties == {"start": "2024-05-01", "productor": "Ramírez", "_uuid": "u1"}
    assert shape.segments is None
    assert empty.error == "row 3: no shape in column 'grupo_parcela/limite_parcela'"
    assert broken.error.startswith("row 4: column 'grupo_parcela/limite_parcela': point 2 ('oops')")


def test_it_reads_odk_geotraces_as_tracks(tmp_path):
    path = write(tmp_path, "kobo.csv", f'recorrido_geotrace;n\n"{TRACE}";1\n')
    (record,) = read(path, "odk")
    assert record.geometry.geom_type == "LineString"
    assert [(p.lon, p.lat, p.time, p.accuracy_m) for p in record.segments[0]] == [
        (-76.51, -8.19, None, 3.0), (-76.509, -8.19, None, None), (-76.509, -8.189, None, 5.0)]


def test_it_closes_an_open_geoshape(tmp_path):
    open_shape = SHAPE.rsplit(";", 1)[0]
    (record,) = read(write(tmp_path, "k.csv", f'plot_shape\n"{open_shape}"\n'), "odk")
    assert record.geometry.geom_type == "Polygon" and record.geometry.num_points == 4


def test_the_csv_reader_hands_odk_exports_over_by_their_values(tmp_path):
    # Named like nothing in particular, but the values are ODK shapes: read as ODK,
    # even though the export also has the point where the form was filled in.
    path = write(tmp_path, "export.csv", f'poligono,latitude,longitude\n"{SHAPE}",-8.0,-76.0\n')
    (record,) = read(path)
    assert record.geometry.geom_type == "Polygon"
    assert record.properties == {"latitude": "-8.0", "longitude": "-76.0"}


def test_it_refuses_an_odk_export_without_shapes(tmp_path):
    with pytest.raises(ImportFileError, match="no geoshape or geotrace column"):
        read(write(tmp_path, "k.csv", "a,b\n1,2\n"), "odk")


def test_odk_points_parse():
    assert parse_odk_points("-8.19 -76.51; -8.2 -76.5 10 0;") == [(-8.19, -76.51, None), (-8.2, -76.5, None)]
    with pytest.raises(ValueError, match="not 'latitude longitude altitude accuracy'"):
        parse_odk_points("1 2 3 4 5")
