"""Real clients against a real server: GDAL's OGR GeoJSON driver reads the plots
layer over HTTP with the token header (what QGIS does underneath), and headless
Chromium renders the interactive API docs with no internet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from tests.conftest import square

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def served_plots(live_server, technician, make_plot, make_producer, org_a):
    producer = make_producer(organization=org_a)
    for i in range(5):
        make_plot(producer=producer, code=f"ogr-{i}", geometry_value=square(-76.5 + i * 0.01, -8.2, 0.002),
                  declared_area=2, declared_area_unit="yugada")
    make_plot(producer=producer, code="ogr-point", geometry_value={"type": "Point", "coordinates": [-76.45, -8.25]})
    token = technician.client._credentials["HTTP_AUTHORIZATION"]
    return live_server.url, token


def test_ogr_reads_the_plots_layer_with_the_token_header(served_plots):
    base, token = served_plots
    env = {**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: {token}"}
    url = f"{base}/api/v1/plots?limit=100"
    out = subprocess.run(["ogrinfo", "-ro", "-al", "-so", url], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Feature Count: 6" in out.stdout
    assert "declared_area_ha: Real" in out.stdout
    assert 'ID["EPSG",4326]' in out.stdout or "WGS 84" in out.stdout
    # ogr2ogr to a GeoPackage and read back one plot's area: the same number as the API.
    with tempfile.TemporaryDirectory() as tmp:
        gpkg = os.path.join(tmp, "plots.gpkg")
        conv = subprocess.run(["ogr2ogr", "-f", "GPKG", gpkg, url, "-nln", "plots"], capture_output=True, text=True,
                              env=env, timeout=60)
        assert conv.returncode == 0, conv.stderr
        sql = subprocess.run(["ogrinfo", "-ro", gpkg, "-sql", "SELECT code, area_ha FROM plots WHERE code = 'ogr-0'"],
                             capture_output=True, text=True, timeout=60)
        from plots.models import Plot

        assert f"area_ha (Real) = {Plot.objects.get(code='ogr-0').area_ha:.12g}"[:24] in sql.stdout


def test_ogr_is_refused_without_a_token(served_plots):
    base, _ = served_plots
    out = subprocess.run(["ogrinfo", "-ro", "-so", f"{base}/api/v1/plots"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "401" in (out.stderr + out.stdout)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_api_docs_render_in_headless_chromium(live_server, tmp_path):
    assert CHROMIUM, "chromium is missing: scripts/test installs it (apt-get install chromium)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", f"{live_server.url}/api/docs/"], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Swagger UI (served from the installed sidecar package, not a CDN) has rendered the schema.
    assert "Chacra API" in dom.stdout and "/api/v1/plots" in dom.stdout and "swagger-ui" in dom.stdout
    os.makedirs("artifacts", exist_ok=True)
    shot = os.path.abspath("artifacts/api-docs.png")
    subprocess.run([CHROMIUM, *flags, "--window-size=1280,1600", f"--screenshot={shot}", f"{live_server.url}/api/docs/"],
                   capture_output=True, text=True, timeout=120)
    assert os.path.getsize(shot) > 20_000
