"""Hostile uploads (security review, findings 1, 4 and part of 9): a file opens only as
what it claims to be, GDAL never reaches the network or other files, archives are
bounded by what they really inflate to, and bad coordinates or encodings are named.

Every disguise goes through POST /api/v1/imports as a cooperative user, the way
the reviewer sent it: each must be a 400 naming the user's file, with no trace of
the secret, nothing written, and no request reaching the local HTTP server.
"""

from __future__ import annotations

import http.server
import io
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from pyogrio import raw as ogr_raw

from plots.errors import ValidationFailed
from plots.importers import gdal_policy, registry, safety
from plots.importers.base import ImportFileError, Limits
from plots.imports import ImportRefused, import_plots
from plots.models import Plot, ProtectedArea

pytestmark = pytest.mark.django_db
SECRET = "tok-5f3a9c-never-show-me"


# ------------------------------------------------------------------------ fixtures


@pytest.fixture
def secret_csv(tmp_path):
    """A server file a cooperative must never read: columns named like plot fields."""
    path = tmp_path / "tokens" / ".demo-tokens.csv"
    path.parent.mkdir()
    path.write_text(f"code,producer\n{SECRET},{SECRET}\n")
    return path


@pytest.fixture
def web():
    """A local HTTP server that records every request it gets (it must get none)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            hits.append(self.path)
            body = f"code,producer\n{SECRET},{SECRET}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def vrt(source: str) -> bytes:
    """An OGR VRT mapping another data source's columns to code/producer, as in the finding."""
    return textwrap.dedent(f"""\
        <OGRVRTDataSource>
          <OGRVRTLayer name="plots">
            <SrcDataSource>{source}</SrcDataSource>
            <SrcSQL>SELECT code, producer FROM "{Path(source).stem}"</SrcSQL>
          </OGRVRTLayer>
        </OGRVRTDataSource>
        """).encode()


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def disguises(document: bytes) -> list[tuple[str, bytes, str | None]]:
    """(upload name, bytes, format field) for the document under every accepted format."""
    return [("plots.geojson", document, None), ("plots.json", document, None), ("plots.kml", document, None),
            ("track.gpx", document, None), ("points.csv", document, None), ("kobo.csv", document, "odk"),
            ("plots.gpkg", document, None), ("plots.kmz", zipped({"doc.kml": document}), None),
            ("plots.zip", zipped({"plots.shp": document, "plots.shx": b"", "plots.dbf": b""}), None)]


def point(x: float, y: float) -> dict:
    return {"type": "Feature", "properties": {"code": "c-1"}, "geometry": {"type": "Point", "coordinates": [x, y]}}


def upload(persona, name: str, data: bytes, fmt: str | None = None, dry_run: bool = True):
    fields = {"file": SimpleUploadedFile(name, data), "dry_run": "true" if dry_run else "false"}
    if fmt:
        fields["format"] = fmt
    return persona.client.post("/api/v1/imports", fields, format="multipart")


def assert_refused_cleanly(response, name: str, *fragments: str) -> str:
    """A 400 naming the file and the reason, no secret, no server path; the message."""
    assert response.status_code == 400, response.content[:300]
    body = response.content.decode()
    message = response.json()["error"]["message"]
    assert message.startswith(f"{name}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert SECRET not in body and "/tmp/" not in body and "chacra-upload" not in body, body[:500]
    assert not Plot.objects.exists()
    return message


# ---------------------------------------------------------- VRT under every disguise


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_vrt_reading_a_server_file_is_refused_under_every_name(owner, secret_csv, dry_run):
    for name, data, fmt in disguises(vrt(f"CSV:{secret_csv}")):
        message = assert_refused_cleanly(upload(owner, name, data, fmt, dry_run), name, "refused")
        assert "VRT" in message or "not a shapefile" in message or "not a readable" in message, message


def test_each_disguise_says_what_the_file_really_holds(owner, secret_csv):
    said = {name: upload(owner, name, data, fmt).json()["error"]["message"]
            for name, data, fmt in disguises(vrt(f"CSV:{secret_csv}"))}
    vrt_words = "an OGR VRT document (XML that makes GDAL read other files or URLs)"
    assert said["plots.geojson"] == (f"plots.geojson: refused: it was sent as GeoJSON (.geojson) but holds "
                                     f"{vrt_words}; Chacra reads GeoJSON only as GeoJSON")
    assert said["plots.kml"] == (f"plots.kml: refused: it was sent as KML (.kml) but holds {vrt_words}; "
                                 "Chacra reads KML only as KML")
    assert f"it was sent as GPX (.gpx) but holds {vrt_words}" in said["track.gpx"]
    assert "it was sent as CSV (.csv) but holds" in said["points.csv"]
    assert "it was sent as ODK CSV (.csv) but holds" in said["kobo.csv"]
    assert f"it was sent as GeoPackage (.gpkg) but holds {vrt_words}" in said["plots.gpkg"]
    assert f"it was sent as KML (.kmz) but holds {vrt_words}" in said["plots.kmz"]
    assert f"its 'plots.shp' holds {vrt_words}, not a shapefile's .shp part" in said["plots.zip"]


def test_a_vrt_pointing_at_a_url_makes_no_request(owner, web):
    base, hits = web
    for source in (f"/vsicurl/{base}/tokens.csv", f"CSV:/vsicurl/{base}/tokens.csv", f"{base}/tokens.geojson"):
        for name, data, fmt in disguises(vrt(source)):
            assert_refused_cleanly(upload(owner, name, data, fmt), name, "refused")
    assert hits == []


def test_a_vrt_without_geometry_is_a_400_not_a_500(owner, secret_csv):
    document = vrt(f"CSV:{secret_csv}").replace(b"<SrcSQL", b"<GeometryType>wkbNone</GeometryType><SrcSQL")
    assert_refused_cleanly(upload(owner, "plots.geojson", document), "plots.geojson", "OGR VRT")


# ------------------------------------------------ the GDAL policy, layer by layer


def test_even_without_the_content_checks_gdal_cannot_open_a_vrt_or_reach_the_network(tmp_path, secret_csv, web):
    """The second layer alone: pyogrio's GDAL has no VRT driver and no network after harden()."""
    base, hits = web
    assert gdal_policy.harden()
    assert not {"OGR_VRT", "GDALG", "WFS", "OAPIF", "HTTP", "GPSBabel"} & set(pyogrio.list_drivers())
    disguised = tmp_path / "x.geojson"
    disguised.write_bytes(vrt(f"CSV:{secret_csv}"))
    with pytest.raises(pyogrio.errors.DataSourceError):
        ogr_raw.read(str(disguised))
    linked = tmp_path / "linked.geojson"  # a GeoJSON crs link makes GDAL issue an HTTP request
    linked.write_text(json.dumps({"type": "FeatureCollection", "features": [point(1, 2)], "crs": {
        "type": "link", "properties": {"href": f"{base}/crs", "type": "proj4"}}}))
    ogr_raw.read(str(linked))
    with pytest.raises(pyogrio.errors.DataSourceError):
        ogr_raw.read(f"/vsicurl/{base}/tokens.csv")
    assert hits == []


@pytest.mark.parametrize("given", ["/vsizip/{zip}/doc.kml", "/vsicurl/{url}/x.geojson", "{url}/x.geojson",
                                   "GeoJSON:{url}/x.geojson", "{zip}!doc.kml", "CSV:{secret}"])
def test_only_a_plain_local_path_reaches_gdal(tmp_path, secret_csv, web, given):
    archive = tmp_path / "a.zip"
    archive.write_bytes(zipped({"doc.kml": b"<kml/>"}))
    text = given.format(zip=archive, url=web[0], secret=secret_csv)
    with pytest.raises(ImportFileError) as caught:
        gdal_policy.source(Path("plots.geojson"), "GeoJSON", text)
    assert caught.value.reason.startswith(("refused: GDAL reads only a plain local file", "cannot open the file"))
    assert web[1] == []


@pytest.mark.parametrize("given", ["/vsizip/{zip}/doc.kml", "/vsicurl/{url}/x.geojson", "{url}/x.geojson"])
def test_the_command_refuses_vsi_and_url_paths(tmp_path, web, given):
    archive = tmp_path / "a.zip"
    archive.write_bytes(zipped({"doc.kml": b"<kml/>"}))
    with pytest.raises(ImportRefused, match="cannot open the file|refused"):
        import_plots(path=Path(given.format(zip=archive, url=web[0])), fmt="geojson", dry_run=True)
    assert web[1] == [] and not Plot.objects.exists()


@pytest.mark.parametrize("crs", [{"type": "link", "properties": {"href": "{url}/crs", "type": "proj4"}},
                                 {"type": "URL", "properties": {"url": "{url}/crs"}},
                                 {"type": "name", "properties": {"name": "{url}/crs"}},
                                 {"type": "name", "properties": {"name": "{secret}"}}])
def test_a_geojson_crs_that_is_not_a_name_is_refused_before_gdal(owner, web, secret_csv, crs):
    base, hits = web
    member = json.loads(json.dumps(crs).replace("{url}", base).replace("{secret}", str(secret_csv)))
    doc = {"type": "FeatureCollection", "crs": member, "features": [point(-76.5, -8.2)]}
    assert_refused_cleanly(upload(owner, "crs.geojson", json.dumps(doc).encode()), "crs.geojson", "crs member")
    assert hits == []


def test_a_crs_link_far_into_a_large_geojson_is_found(tmp_path, web):
    padding = [{"type": "Feature", "properties": {"note": "x" * 1000}, "geometry": None} for _ in range(5000)]
    path = tmp_path / "late.geojson"  # ~5 MB of features before the crs member
    path.write_text(json.dumps({"type": "FeatureCollection", "features": padding,
                                "crs": {"type": "link", "properties": {"href": f"{web[0]}/crs"}}}))
    with pytest.raises(ImportFileError, match="crs member is of type 'link'"):
        registry.get("geojson").read(path)
    assert web[1] == []


def test_a_named_crs_still_reads(tmp_path):
    path = tmp_path / "utm.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [point(500000, 9100000)], "crs": {
        "type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32718"}}}))
    (record,) = registry.get("geojson").read(path)
    assert record.error is None and record.geometry.srid == 4326


# --------------------------------------------------------------- GeoPackage as SQL


def gpkg(tmp_path: Path, name: str = "plots.gpkg") -> Path:
    path = tmp_path / name
    gpd.GeoDataFrame({"code": ["g-1"]}, geometry=[shapely.box(-76.51, -8.19, -76.5, -8.18)], crs=4326).to_file(
        path, driver="GPKG", layer="parcelas", engine="pyogrio")
    return path


def register_view(path: Path, name: str, select: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE VIEW {name} AS {select}")
        db.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
                   "VALUES (?, 'features', ?, 4326)", (name, name))
        db.execute("INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', 'POLYGON', 4326, 0, 0)", (name,))


def test_a_gpkg_view_that_never_ends_is_refused_at_once(tmp_path, owner):
    path = gpkg(tmp_path)
    register_view(path, "endless", "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                                   "SELECT i AS fid, (SELECT geom FROM parcelas) AS geom FROM n")
    started = time.monotonic()
    assert_refused_cleanly(upload(owner, "plots.gpkg", path.read_bytes()), "plots.gpkg",
                           "refused: it holds the SQL view 'endless'; Chacra reads only plain GeoPackage tables")
    assert time.monotonic() - started < 5


def test_a_gpkg_virtual_table_reading_another_file_is_refused(tmp_path, owner, secret_csv):
    path = gpkg(tmp_path)
    with sqlite3.connect(path) as db:  # what VirtualOGR over the secret would look like in the schema
        db.execute("PRAGMA writable_schema = ON")
        db.execute("INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES "
                   "('table', 'leak', 'leak', 0, ?)", (f"CREATE VIRTUAL TABLE leak USING VirtualOGR('{secret_csv}')",))
    assert_refused_cleanly(upload(owner, "plots.gpkg", path.read_bytes()), "plots.gpkg",
                           "it holds the virtual table 'leak' (module VirtualOGR)")


def test_a_plain_gpkg_still_reads_with_its_spatial_index(tmp_path):
    (record,) = registry.get("gpkg").read(gpkg(tmp_path))
    assert record.error is None and record.properties["code"] == "g-1"


def test_an_sqlite_file_or_a_forged_page_count_is_not_a_geopackage(tmp_path):
    plain = tmp_path / "plain.gpkg"
    with sqlite3.connect(plain) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(ImportFileError, match=r"sent as GeoPackage \(.gpkg\) but holds an SQLite database "
                                              r"\(not a GeoPackage\)"):
        registry.get("gpkg").read(plain)
    forged = gpkg(tmp_path, "forged.gpkg")
    data = bytearray(forged.read_bytes())
    data[28:32] = (10 ** 6).to_bytes(4, "big")
    forged.write_bytes(bytes(data))
    with pytest.raises(ImportFileError, match="declares 1,000,000 pages of 4,096 bytes, more than the"):
        registry.get("gpkg").read(forged)


# ------------------------------------------------------- other readers of user files


def test_reference_layers_are_opened_under_the_same_rules(tmp_path, secret_csv):
    from plots.reference import load_protected_areas

    disguised = tmp_path / "wdpa.geojson"
    disguised.write_bytes(vrt(f"CSV:{secret_csv}"))
    with pytest.raises(ValidationFailed) as caught:
        load_protected_areas(disguised, edition="x", category="national_park")
    assert "wdpa.geojson: refused: it was sent as GeoJSON (.geojson) but holds an OGR VRT" in str(caught.value)
    archive = tmp_path / "pa.zip"
    archive.write_bytes(zipped({"pa.shp": vrt(f"CSV:{secret_csv}"), "pa.shx": b"", "pa.dbf": b""}))
    with pytest.raises(ValidationFailed, match="its 'pa.shp' holds an OGR VRT"):
        load_protected_areas(archive, edition="x", category="national_park")
    with pytest.raises(ValidationFailed, match="file not found"):
        load_protected_areas(Path(f"/vsizip/{archive}/pa.shp"), edition="x", category="national_park")
    assert SECRET not in str(caught.value) and not ProtectedArea.objects.exists()


def test_load_raster_opens_geotiff_only(tmp_path, secret_csv, monkeypatch):
    from screening import catalog
    from screening.catalog import raster_load

    fake = tmp_path / "tile.tif"
    fake.write_text('<VRTDataset rasterXSize="4" rasterYSize="4"><SRS>EPSG:4326</SRS>'
                    "<GeoTransform>-80, 1, 0, 10, 0, -1</GeoTransform><VRTRasterBand dataType=\"Byte\" band=\"1\">"
                    f"<SimpleSource><SourceFilename>{secret_csv}</SourceFilename></SimpleSource>"
                    "</VRTRasterBand></VRTDataset>")
    with pytest.raises(ValidationFailed, match=r"tile\.tif: not a GeoTIFF"):
        raster_load(paths=[fake], product="hansen-lossyear", version="v1")
    monkeypatch.setattr(catalog, "_check_tiff", lambda path: None)  # the driver restriction alone
    with pytest.raises(ValidationFailed, match=r"tile\.tif: GDAL cannot read it as a raster"):
        raster_load(paths=[fake], product="hansen-lossyear", version="v1")


# ------------------------------------------------------------------ bounded zips


def test_a_kmz_whose_kml_passes_the_limit_is_refused_before_inflating(tmp_path, monkeypatch):
    path = tmp_path / "big.kmz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("doc.kml", b"<kml>" + b" " * (2 * 1024 * 1024) + b"</kml>")
    monkeypatch.setattr(safety, "extract_members", lambda *a, **k: pytest.fail("the KML was inflated"))
    with pytest.raises(ImportFileError, match=r"the entry 'doc.kml' would expand to 2.0 MB, more than the "
                                              r"1.0 MB allowed for it"):
        registry.get("kmz").read(path, limits=Limits(max_kml_bytes=1024 * 1024))


def test_extraction_counts_the_bytes_really_inflated(tmp_path):
    """Headers can lie: the copy stops at the limit whatever the entry declared."""
    path = tmp_path / "liar.kmz"
    path.write_bytes(zipped({"doc.kml": b"<kml>" + b"x" * 200_000 + b"</kml>"}))
    (info,) = safety.check_zip(path, Limits())
    with pytest.raises(ImportFileError, match="inflates beyond the 97.7 kB allowed"):
        safety.extract_members(path, [info], tmp_path, Limits(max_kml_bytes=100_000))
    assert (tmp_path / "doc.kml").stat().st_size <= 100_000
    info.file_size = 1_000  # declared smaller than it is: zipfile stops there and the CRC fails
    with pytest.raises(ImportFileError, match="the archive is damaged"):
        safety.extract_members(path, [info], tmp_path, Limits())


CHILD = """
import os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chacra.settings")
import django
django.setup()
from pathlib import Path
from plots.importers import ImportFileError, registry
started = time.monotonic()
try:
    list(registry.get("kmz").read(Path(sys.argv[1])))
    outcome = "read"
except ImportFileError as exc:
    outcome = str(exc)
print(outcome)
print(time.monotonic() - started)
# VmHWM: this process's own peak. (ru_maxrss would carry over pytest's own size from
# before the exec, RUSAGE_CHILDREN every earlier child's.)
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))  # kB
"""
PEAK_RSS_BOUND_MB = 300  # Django with GDAL loaded is ~210 MB; reading that KML took 6.4 GB


def write_big_kmz(path: Path, megabytes: int) -> int:
    """A KMZ whose doc.kml is ``megabytes`` of placemarks, streamed into the archive."""
    block = "".join(
        f"<Placemark><name>plot-{i:06d}</name><Polygon><outerBoundaryIs><LinearRing><coordinates>"
        f"-76.5{i % 97:02d},-8.1{i % 89:02d} -76.5{i % 83:02d},-8.1{i % 79:02d} -76.5{i % 97:02d},-8.1{i % 89:02d}"
        "</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>\n" for i in range(4000)).encode()
    written = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("doc.kml", "w", force_zip64=True) as kml:
            kml.write(b'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>\n')
            while written < megabytes * 1024 * 1024:
                kml.write(block)
                written += len(block)
            kml.write(b"</Document></kml>\n")
    return written


def test_a_kmz_holding_a_1000_mb_kml_is_refused_in_seconds_and_little_memory(tmp_path):
    path = tmp_path / "huge.kmz"
    inflated = write_big_kmz(path, 1000)
    assert inflated >= 1000 * 1024 * 1024 and path.stat().st_size < Limits().max_file_bytes
    started = time.monotonic()
    child = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=120,
                           cwd=settings.BASE_DIR)
    elapsed = time.monotonic() - started
    kmz_mb = path.stat().st_size / 2**20
    path.unlink()  # ~80 MB: not left behind in pytest's kept temporary folders
    assert child.returncode == 0, child.stderr[-2000:]
    outcome, read_seconds, peak_kb = child.stdout.strip().splitlines()[-3:]
    assert outcome.startswith("huge.kmz: the entry 'doc.kml' would expand to 1,000.") and "allowed for it" in outcome
    assert float(read_seconds) < 2 and elapsed < 30
    assert int(peak_kb) / 1024 < PEAK_RSS_BOUND_MB, f"peak RSS {int(peak_kb) / 1024:.0f} MB"
    print(f"\n1,000 MB KML in a {kmz_mb:.0f} MB KMZ: refused in {float(read_seconds):.3f} s "
          f"(child {elapsed:.1f} s with start-up), peak RSS {int(peak_kb) / 1024:.0f} MB")


# ---------------------------------------------------------- coordinates, encodings


def test_a_nan_coordinate_is_named_not_called_an_unclosed_ring(tmp_path):
    geojson = tmp_path / "nan.geojson"
    geojson.write_text('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"n-1"},'
                       '"geometry":{"type":"Polygon","coordinates":[[[NaN,-8.19],[-76.5,-8.19],[-76.5,-8.18],'
                       '[NaN,-8.19]]]}},{"type":"Feature","properties":{"code":"n-2"},"geometry":{"type":"Polygon",'
                       '"coordinates":[[[-76.51,-8.19],[-76.5,-8.19],[-76.5,NaN],[-76.51,-8.19]]]}}]}')
    assert [r.error for r in registry.get("geojson").read(geojson)] == [
        "feature 1 (code 'n-1'): a coordinate is not a number (NaN)",
        "feature 2 (code 'n-2'): a coordinate is not a number (NaN)"]
    kml = tmp_path / "nan.kml"
    kml.write_text('<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark>'
                   "<name>k-1</name><Polygon><outerBoundaryIs><LinearRing><coordinates>nan,-8.19 -76.5,-8.19 "
                   "-76.5,-8.18 nan,-8.19</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
                   "</Document></kml>")
    assert [r.error for r in registry.get("kml").read(kml)] == [
        "placemark 1 (name 'k-1'): a coordinate is not a number (NaN)"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "latin-1", "utf-8-sig"])
def test_a_csv_header_is_decoded_not_garbled(tmp_path, encoding):
    path = tmp_path / "puntos.csv"
    text = "código;lon;lat;señora\nA-1;-76,51;-8,19;Peña\n"
    data = text.encode(encoding)
    path.write_bytes(b"\xfe\xff" + data if encoding == "utf-16-be" else data)  # -be writes no BOM itself
    (record,) = registry.get("csv").read(path)
    assert record.error is None
    assert record.properties == {"código": "A-1", "señora": "Peña"}


def test_a_utf16_csv_without_a_bom_is_refused_with_that_reason(tmp_path):
    path = tmp_path / "puntos.csv"
    path.write_bytes("lon,lat\n-76.5,-8.2\n".encode("utf-16-le"))
    with pytest.raises(ImportFileError, match="the file is UTF-16 encoded .without a byte-order mark.: "
                                              "save it as UTF-8"):
        registry.get("csv").read(path)
