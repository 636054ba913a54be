"""Map clients against a real server: OGC API Features read by GDAL's OAPIF driver
and OWSLib, vector tiles decoded by GDAL's MVT driver, exports written by GDAL and
read back by GDAL, and the web map driven in headless Chromium.

Spatial answers are checked independently: tile geometries against the plot
transformed to Web Mercator by pyproj, within the tile grid's resolution."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from pyproj import Transformer

from plots import checks
from plots.models import ProtectedArea
from tests.conftest import square

pytestmark = pytest.mark.django_db(transaction=True)
PARK = (-76.50, -8.20, -76.48, -8.18)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture
def world(make_plot, make_producer, org_a, org_b):
    """Seven plots of coop-a (one inside a protected area, one a point) and two of coop-b."""
    ProtectedArea.objects.create(name="Bosque de Prueba", category="national_park", official_code="PRUEBA",
                                 source="test", edition="2026-01",
                                 geom=MultiPolygon(Polygon.from_bbox(PARK), srid=4326))
    ana, beto = make_producer(organization=org_a), make_producer(organization=org_b)
    plots = [make_plot(producer=ana, code=f"map-{i}", geometry_value=square(-76.47 + i * 0.004, -8.19, 0.002))
             for i in range(5)]
    plots.append(make_plot(producer=ana, code="map-inside", geometry_value=square(-76.495, -8.195, 0.002)))
    plots.append(make_plot(producer=ana, code="map-point",
                           geometry_value={"type": "Point", "coordinates": [-76.44, -8.17]}))
    plots += [make_plot(producer=beto, code=f"other-{i}", geometry_value=square(-76.40 + i * 0.004, -8.15, 0.002))
              for i in range(2)]
    checks.run_checks([p.id for p in plots])
    return plots


def token_of(persona) -> str:
    return persona.client._credentials["HTTP_AUTHORIZATION"]


def gdal(*args, token=None, timeout=60):
    env = {**os.environ}
    if token:
        env["GDAL_HTTP_HEADERS"] = f"Authorization: {token}"
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=timeout)


# --------------------------------------------------------------------------- OGC API Features

def test_gdal_oapif_lists_the_collections_and_reads_every_plot(live_server, world, technician, owner):
    url = f"OAPIF:{live_server.url}/ogc"
    out = gdal("ogrinfo", "-ro", url, token=token_of(technician))
    assert out.returncode == 0, out.stderr
    assert "plots (title: Plots)" in out.stdout and "protected-areas" in out.stdout and "districts" in out.stdout
    assert "plot-points (title: Plots surveyed as a point)" in out.stdout

    def codes_of(layer: str) -> list[str]:
        # Pages of 3 through the next links: every feature, once.
        out = gdal("ogrinfo", "-ro", "-al", "-q", "-oo", "PAGE_SIZE=3", url, layer, token=token_of(technician))
        assert out.returncode == 0, out.stderr
        return sorted(line.split("=", 1)[1].strip() for line in out.stdout.splitlines()
                      if line.strip().startswith("code (String)"))

    # One geometry type per layer: the point plot is in plot-points, never in plots.
    assert codes_of("plots") == sorted(p.code for p in world if p.code != "map-point")
    assert codes_of("plot-points") == ["map-point"]
    info = gdal("ogrinfo", "-ro", "-so", url, "plots", "plot-points", token=token_of(technician)).stdout
    assert "Geometry: Multi Polygon" in info and "Geometry: Point" in info
    # A cooperative user sees its own organization's plots only.
    out = gdal("ogrinfo", "-ro", "-al", "-so", url, "plots", token=token_of(owner))
    assert "Feature Count: 6" in out.stdout
    # No token: refused, and GDAL says so.
    out = gdal("ogrinfo", "-ro", "-al", "-so", url, "plots")
    assert out.returncode != 0


def test_owslib_lists_collections_and_pages_items(live_server, world, technician):
    from owslib.ogcapi.features import Features

    api = Features(f"{live_server.url}/ogc", headers={"Authorization": token_of(technician)})
    assert "plots" in [c["id"] for c in api.collections()["collections"]]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    first = api.collection_items("plots", limit=4)
    assert first["numberMatched"] == 8 and first["numberReturned"] == 4
    second = api.collection_items("plots", limit=4, offset=4)
    assert {f["id"] for f in first["features"]}.isdisjoint({f["id"] for f in second["features"]})
    inside = api.collection_items("plots", bbox=list(PARK))
    assert [f["id"] for f in inside["features"]] == ["map-inside"]
    one = api.collection_item("plots", "map-inside")
    assert one["properties"]["code"] == "map-inside" and one["geometry"]["type"] == "MultiPolygon"


def test_ogc_items_paging_datetime_html_and_errors(world, technician, investor):
    client = technician.client
    page = client.get("/ogc/collections/plots/items?limit=5&offset=5").json()
    assert page["numberReturned"] == 3 and not any(link["rel"] == "next" for link in page["links"])
    assert any(link["rel"] == "prev" for link in page["links"])
    assert client.get("/ogc/collections/plots/items?datetime=2001-01-01T00:00:00Z/2002-01-01T00:00:00Z").json()[
        "numberMatched"] == 0
    assert client.get("/ogc/collections/plots/items?datetime=2001-01-01T00:00:00Z/..").json()["numberMatched"] == 8
    html = client.get("/ogc/collections/plots/items?f=html&limit=2")
    assert html["Content-Type"].startswith("text/html") and b"map-" in html.content
    for url, status in [("/ogc/collections/plots/items?limit=10001", 400), ("/ogc/collections/plots/items?offset=-1", 400),
                        ("/ogc/collections/plots/items?bbox=1,2,3", 400), ("/ogc/collections/plots/items?colour=red", 400),
                        ("/ogc/collections/plots/items?datetime=yesterday", 400), ("/ogc/collections/nope/items", 404),
                        ("/ogc/collections/plots/items/nope", 404), ("/ogc/?f=xml", 400)]:
        response = client.get(url)
        assert response.status_code == status, url
        assert response.json()["error"]["message"]
    # Investors see no plot: an empty collection, never a geometry.
    assert investor.client.get("/ogc/collections/plots/items").json()["numberMatched"] == 0
    assert investor.client.get("/ogc/collections/plots/items/map-0").status_code == 404


# --------------------------------------------------------------------------- vector tiles

def test_tiles_decode_in_gdal_at_the_plot_position(live_server, world, technician, tmp_path):
    z = 12  # a tile of ~9.8 km that holds the whole plot (no clipping)
    x, y = tile_of(-76.469, -8.189, z)
    assert tile_of(-76.47, -8.19, z) == tile_of(-76.468, -8.188, z) == (x, y)
    response = technician.client.get(f"/tiles/plots/{z}/{x}/{y}.mvt")
    assert response.status_code == 200 and response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert response["Cache-Control"].startswith("private") and response["ETag"]
    again = technician.client.get(f"/tiles/plots/{z}/{x}/{y}.mvt", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    path = tmp_path / "tile.mvt"
    path.write_bytes(response.content)
    out = gdal("ogrinfo", "-ro", "-al", "-oo", f"Z={z}", "-oo", f"X={x}", "-oo", f"Y={y}", str(path))
    assert out.returncode == 0, out.stderr
    assert "code (String) = map-0" in out.stdout and "protected (String) = pass" in out.stdout
    # The polygon decoded by GDAL (Web Mercator) is the plot transformed by pyproj, to
    # within one unit of the 4096 grid (tile width / 4096).
    block = out.stdout.split("code (String) = map-0")[1]
    wkt = next(line.strip() for line in block.splitlines() if line.strip().startswith(("POLYGON", "MULTIPOLYGON")))
    import shapely

    decoded = shapely.from_wkt(wkt)
    to_3857 = Transformer.from_crs(4326, 3857, always_xy=True)
    xs, ys = to_3857.transform([-76.47, -76.468], [-8.19, -8.188])
    cell = 2 * math.pi * 6378137 / 2 ** z / 4096
    assert decoded.bounds == pytest.approx((xs[0], ys[0], xs[1], ys[1]), abs=1.01 * cell)
    assert "map-point" not in out.stdout and "POINT" not in out.stdout  # polygons only
    # The plot surveyed as a point is in its own layer, a Point where pyproj puts it.
    x, y = tile_of(-76.44, -8.17, z)
    path.write_bytes(technician.client.get(f"/tiles/plot-points/{z}/{x}/{y}.mvt").content)
    out = gdal("ogrinfo", "-ro", "-al", "-oo", f"Z={z}", "-oo", f"X={x}", "-oo", f"Y={y}", str(path))
    assert out.returncode == 0, out.stderr
    assert "Layer name: plot-points" in out.stdout and "code (String) = map-point" in out.stdout
    point = shapely.from_wkt(next(line.strip() for line in out.stdout.splitlines() if line.strip().startswith("POINT")))
    assert (point.x, point.y) == pytest.approx(to_3857.transform(-76.44, -8.17), abs=1.01 * cell)


def test_tiles_are_scoped_and_validated(world, owner, investor, technician, anonymous):
    z = 10  # one tile of ~39 km holds every plot and the park
    x, y = tile_of(-76.45, -8.17, z)
    assert tile_of(-76.50, -8.20, z) == tile_of(-76.39, -8.148, z) == (x, y)
    everything = technician.client.get(f"/tiles/plots/{z}/{x}/{y}.mvt").content
    own = owner.client.get(f"/tiles/plots/{z}/{x}/{y}.mvt").content
    assert b"map-0" in everything and b"other-0" in everything
    assert b"map-0" in own and b"other-0" not in own
    assert b"map-point" not in everything  # the plot surveyed as a point: the layer plot-points
    points = technician.client.get(f"/tiles/plot-points/{z}/{x}/{y}.mvt")
    assert points.status_code == 200 and points["Cache-Control"].startswith("private")
    assert b"map-point" in points.content and b"map-0" not in points.content
    assert b"map-point" in owner.client.get(f"/tiles/plot-points/{z}/{x}/{y}.mvt").content
    for layer in ("plots", "plot-points"):
        assert investor.client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt").status_code == 403
        assert anonymous.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt").status_code == 401
    # The reference layers need a token too (every signed-in role), and say so.
    for layer in ("protected-areas", "districts"):
        assert anonymous.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt").status_code == 401
        assert "Tiles need a token" in anonymous.get(f"/tiles/{layer}.json").json()["description"]
    assert b"Bosque de Prueba" in investor.client.get(f"/tiles/protected-areas/{z}/{x}/{y}.mvt").content
    assert technician.client.get("/tiles/plots/23/0/0.mvt").status_code == 400
    assert technician.client.get("/tiles/plots/3/8/0.mvt").status_code == 400
    assert technician.client.get("/tiles/nope/3/0/0.mvt").status_code == 404
    for layer in ("plots", "plot-points"):
        tilejson = anonymous.get(f"/tiles/{layer}.json").json()
        assert tilejson["tiles"][0].endswith(f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt")
        assert tilejson["vector_layers"][0]["id"] == layer and "protected" in tilejson["vector_layers"][0]["fields"]


# --------------------------------------------------------------------------- exports

@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "kml", "csv"])
def test_exports_open_in_gdal(world, technician, tmp_path, fmt):
    response = technician.client.get(f"/api/v1/exports/plots?format={fmt}")
    assert response.status_code == 200, response.content[:300]
    suffix = {"shp": ".zip", "csv": ".csv.zip"}.get(fmt, f".{fmt}")
    path = tmp_path / f"plots{suffix}"
    path.write_bytes(b"".join(response.streaming_content))
    source = {"shp": f"/vsizip/{path}", "csv": f"/vsizip/{path}/plots.csv"}.get(fmt, str(path))
    out = gdal("ogrinfo", "-ro", "-al", "-so", source)
    assert out.returncode == 0, out.stderr
    counts = [int(line.split(":")[1]) for line in out.stdout.splitlines() if line.startswith("Feature Count")]
    assert response["X-Chacra-Point-Plots"] == "1"
    if fmt in ("gpkg", "shp"):
        assert counts == [8, 1]  # polygons, and the point plot in its own layer
        assert "plot_points" in out.stdout
    else:
        assert counts == [8]  # one geometry type per layer: the point plot is in the plot-points export
        assert "plot-points" in response["X-Chacra-Note"]
    if fmt == "shp":
        names = zipfile.ZipFile(path).namelist()
        assert {"plots.shp", "plots.dbf", "plots.prj", "plot_points.shp"} <= set(names)
        assert "decl_unit: String" in out.stdout and "plant_year" in out.stdout
    if fmt == "csv":
        assert 'ID["EPSG",4326]' in out.stdout  # the .prj beside the .csv in the zip


def test_exports_are_scoped_and_validated(world, owner, investor, technician):
    body = json.loads(b"".join(owner.client.get("/api/v1/exports/plots?format=geojson").streaming_content))
    assert sorted(f["properties"]["code"] for f in body["features"]) == sorted(
        p.code for p in world if p.code.startswith("map-") and p.code != "map-point")
    points = json.loads(b"".join(owner.client.get("/api/v1/exports/plot-points?format=geojson").streaming_content))
    assert [f["properties"]["code"] for f in points["features"]] == ["map-point"]
    assert investor.client.get("/api/v1/exports/plots?format=geojson").status_code == 403
    assert investor.client.get("/api/v1/exports/plot-points?format=geojson").status_code == 403
    assert technician.client.get("/api/v1/exports/plots?format=xls").status_code == 400
    assert technician.client.get("/api/v1/exports/plots").status_code == 400
    assert technician.client.get("/api/v1/exports/nope?format=csv").status_code == 404


# --------------------------------------------------------------------------- the web map

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_web_map_renders_plots_and_a_click_opens_their_details(live_server, world, technician):
    assert CHROMIUM, "chromium is missing: scripts/test installs it (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    technician.user.set_password("map-test-password")
    technician.user.save()
    shot = Path("artifacts/web-map.png").resolve()
    shot.parent.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            failed = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(f"{live_server.url}/map/")
            assert "/accounts/login/" in page.url  # a session login first
            page.fill("input[name=username]", technician.user.username)
            page.fill("input[name=password]", "map-test-password")
            page.click("button[type=submit]")
            page.wait_for_url("**/map/")
            page.wait_for_function("() => window.chacraReady && window.chacraMap.loaded() && "
                                   "window.chacraMap.queryRenderedFeatures({layers: ['plots-fill']}).length >= 8",
                                   timeout=60_000)
            rendered = page.evaluate("() => [...new Set(window.chacraMap.queryRenderedFeatures({layers: ['plots-fill']})"
                                     ".map(f => f.properties.code))].sort()")
            assert rendered == sorted(p.code for p in world if p.code != "map-point")
            # The plot surveyed as a point: a circle from the plot-points tiles.
            page.wait_for_function("() => window.chacraMap.queryRenderedFeatures({layers: ['plots-point']}).length >= 1",
                                   timeout=30_000)
            points = page.evaluate("() => window.chacraMap.queryRenderedFeatures({layers: ['plots-point']})"
                                   ".map(f => [f.properties.code, f.geometry.type, f.sourceLayer])")
            assert points == [["map-point", "Point", "plot-points"]]
            # Centre the map on the plot inside the park and click it.
            page.evaluate("() => new Promise(done => { const m = window.chacraMap; m.once('idle', done); "
                          "m.jumpTo({center: [-76.494, -8.194], zoom: 16}); })")
            x, y = page.evaluate("() => { const p = window.chacraMap.project([-76.494, -8.194]); return [p.x, p.y]; }")
            page.mouse.click(x, y)
            page.wait_for_selector("#details[data-plot='map-inside']", timeout=20_000)
            details = page.inner_text("#details")
            assert "protected_area_overlap" in details and "fail" in details and "Bosque de Prueba" in details
            assert "Genetics" in details and "Harvest lots" in details
            page.screenshot(path=str(shot))
            assert not [u for u in failed if "/static/" in u or "/tiles/" in u]
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
