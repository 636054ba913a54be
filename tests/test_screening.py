"""Deforestation screening on the Hansen GFC crops of Sierra de Neiba (Dominican Republic).

Hansen/UMD/Google/USGS/NASA Global Forest Change v1.11 (CC BY 4.0), crops from
mapme.biodiversity. Plots are placed over cells whose loss year is known, and
the loss hectares are checked against tests/screening_helpers (supersampled
points in WGS 84 and pyproj.Geod cell areas), which shares no code with the
screening.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import shapely
from django.core.management import call_command

import screening
from plots.models import CheckResult
from screening.catalog import raster_load
from tests.conftest import SharedDir
from tests.screening_helpers import independent_sums

HANSEN = SharedDir(__import__("django.conf", fromlist=["settings"]).settings.CHACRA_SHARED_DATA
                   / "hansen_gfc_crops_mapme_sierra_de_neiba")
LOSS = "Hansen_GFC-2023-v1.11_lossyear_20N_080W.tif"
COVER = "Hansen_GFC-2023-v1.11_treecover2000_20N_080W.tif"
# Grid of the crops: 0.00025° cells from (-71.73775, 18.687).
X0, Y0, RES = -71.73775, 18.687, 0.00025


def cell_polygon(row: float, col: float, rows: float, cols: float, tilt: float = 0.15) -> shapely.Polygon:
    """A quadrilateral over cells [row, row+rows) × [col, col+cols), corners nudged off the grid."""
    x0, y0 = X0 + col * RES, Y0 - row * RES
    w, h = cols * RES, rows * RES
    d = tilt * RES
    return shapely.Polygon([(x0 + d, y0 - h + d / 2), (x0 + w - d / 3, y0 - h), (x0 + w, y0 - d),
                            (x0 + d / 2, y0 - d / 4), (x0 + d, y0 - h + d / 2)])


def as_geojson(polygon: shapely.Polygon) -> dict:
    return json.loads(shapely.to_geojson(shapely.geometry.polygon.orient(polygon)))


@pytest.fixture
def hansen(db):
    loss = raster_load(paths=[HANSEN / LOSS], product="hansen-lossyear", version="v1.11")
    cover = raster_load(paths=[HANSEN / COVER], product="hansen-treecover2000", version="v1.11")
    return loss + cover


def latest(plot) -> CheckResult:
    return CheckResult.objects.filter(plot=plot, kind="deforestation").order_by("-checked_at", "-id").first()


# Cells (row, col) of the lossyear crop: a 4×4 block all lost 2021–2023, a 4×4 block lost
# 2001–2020, and a 12×12 block without loss (found by scanning the crop).
POST_2020 = (167, 145)
PRE_2020 = (101, 92)
NO_LOSS = (0, 0)


def test_it_flags_a_plot_over_post_2020_loss_with_independently_checked_hectares(hansen, make_plot):
    polygon = cell_polygon(POST_2020[0] - 1.3, POST_2020[1] - 1.6, 6.2, 6.7)
    plot = make_plot(geometry_value=as_geojson(polygon))
    summary = screening.run_screening([plot.id], workers=1)
    assert summary.outcomes == {"fail": 1}
    result = latest(plot)
    assert result.outcome == "fail" and result.method_version == screening.METHOD_VERSION
    values, area = independent_sums(HANSEN / LOSS, polygon)
    expected_after = area[values > 20].sum() / 10_000
    expected_before = area[(values >= 1) & (values <= 20)].sum() / 10_000
    f = result.figures
    assert f["loss_ha_after_cutoff"] == pytest.approx(expected_after, rel=5e-3)
    assert f["loss_ha_before_cutoff"] == pytest.approx(expected_before, rel=2e-2, abs=2e-3)
    assert f["covered_share"] == pytest.approx(1.0, abs=1e-6)
    assert f["loss_share_after_cutoff"] == pytest.approx(expected_after / f["area_ha"], rel=5e-3)
    assert f["area_ha"] == pytest.approx(area.sum() / 10_000, rel=2e-3)
    assert 0 <= f["tree_cover_2020_pct"] <= f["tree_cover_2000_pct"] <= 100
    assert f["products"] == {"hansen-lossyear": "v1.11", "hansen-treecover2000": "v1.11"}
    assert result.datasets == {"hansen-lossyear": "v1.11", "hansen-treecover2000": "v1.11"}


def test_it_passes_a_plot_with_loss_only_before_the_cutoff(hansen, make_plot):
    polygon = cell_polygon(PRE_2020[0] + 0.2, PRE_2020[1] + 0.3, 3.5, 3.4)
    plot = make_plot(geometry_value=as_geojson(polygon))
    screening.run_screening([plot.id], workers=1)
    result = latest(plot)
    values, area = independent_sums(HANSEN / LOSS, polygon)
    assert result.outcome == "pass"
    assert result.figures["loss_ha_after_cutoff"] == 0
    assert result.figures["loss_ha_before_cutoff"] == pytest.approx(area[(values >= 1) & (values <= 20)].sum()
                                                                    / 10_000, rel=5e-3)


def test_it_passes_a_plot_without_loss_and_reruns_write_nothing(hansen, make_plot):
    plot = make_plot(geometry_value=as_geojson(cell_polygon(NO_LOSS[0] + 2, NO_LOSS[1] + 2, 8, 8)))
    first = screening.run_screening([plot.id], workers=1)
    again = screening.run_screening([plot.id], workers=1)
    assert first.written == 1 and again.written == 0
    assert CheckResult.objects.filter(plot=plot, kind="deforestation").count() == 1
    assert latest(plot).figures["loss_ha_before_cutoff"] == 0


def test_a_plot_partly_outside_the_tiles_is_insufficient_data_never_clean(hansen, make_plot):
    # Half of the plot lies west of the crop, over cells without loss.
    polygon = cell_polygon(4, -4, 6, 8)
    plot = make_plot(geometry_value=as_geojson(polygon))
    screening.run_screening([plot.id], workers=1)
    result = latest(plot)
    assert result.outcome == "insufficient_data"
    assert 0.3 < result.figures["covered_share"] < 0.7
    assert "valid cells" in result.figures["reason"]


def test_without_a_loss_product_every_plot_is_insufficient_data(db, make_plot):
    plot = make_plot()
    screening.run_screening([plot.id], workers=1)
    assert latest(plot).outcome == "insufficient_data"
    assert "no hansen-lossyear" in latest(plot).figures["reason"]


def test_a_plot_across_two_tiles_is_measured_whole(db, make_plot, tmp_path):
    # The crop cut into two tiles at column 146, inside the post-2020 block.
    with rasterio.open(HANSEN / LOSS) as ds:
        profile = ds.profile
        for name, window in (("west", rasterio.windows.Window(0, 0, 146, ds.height)),
                             ("east", rasterio.windows.Window(146, 0, ds.width - 146, ds.height))):
            origin = X0 + window.col_off * RES
            p = dict(profile, width=window.width, height=window.height,
                     transform=rasterio.Affine(RES, 0, origin, 0, -RES, Y0))
            with rasterio.open(tmp_path / f"{name}.tif", "w", **p) as out:
                out.write(ds.read(window=window))
    polygon = cell_polygon(POST_2020[0] - 1.3, POST_2020[1] - 1.6, 6.2, 6.7)
    whole = make_plot(geometry_value=as_geojson(polygon))
    raster_load(paths=[tmp_path / "west.tif", tmp_path / "east.tif"], product="hansen-lossyear", version="split")
    screening.run_screening([whole.id], workers=1)
    split = latest(whole).figures
    raster_load(paths=[HANSEN / LOSS], product="hansen-lossyear", version="whole")
    screening.run_screening([whole.id], products=["hansen-lossyear:whole"], workers=1)
    single = latest(whole).figures
    assert split["covered_share"] == pytest.approx(1.0, abs=1e-6)
    assert split["loss_ha_after_cutoff"] == pytest.approx(single["loss_ha_after_cutoff"], abs=2e-6)
    assert split["loss_ha_before_cutoff"] == pytest.approx(single["loss_ha_before_cutoff"], abs=2e-6)


def test_thresholds_decide_and_are_recorded(hansen, make_plot):
    polygon = cell_polygon(POST_2020[0] - 1.3, POST_2020[1] - 1.6, 6.2, 6.7)
    plot = make_plot(geometry_value=as_geojson(polygon))
    screening.run_screening([plot.id], workers=1, thresholds=screening.Thresholds(min_loss_ha=100, min_loss_share=1))
    assert latest(plot).outcome == "pass"
    assert latest(plot).figures["thresholds"]["min_loss_ha"] == 100
    screening.run_screening([plot.id], workers=1)
    assert latest(plot).outcome == "fail"


def test_local_processes_and_a_dask_cluster_give_the_same_results(hansen, make_plot):
    plots = [make_plot(geometry_value=as_geojson(cell_polygon(r, c, 5, 5)))
             for r, c in ((165, 143), (100, 90), (3, 3), (60, 60), (200, 170))]
    ids = [p.id for p in plots]
    screening.run_screening(ids, workers=1)
    before = {p.id: latest(p).figures for p in plots}
    local = screening.run_screening(ids, workers=2, chunk_plots=2)
    assert local.tasks == 6 and local.written == 0  # 3 chunks × 2 products; same figures as in-process
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        remote = screening.run_screening(ids, dask=cluster.scheduler_address, chunk_plots=2)
    assert remote.written == 0 and remote.outcomes == local.outcomes
    assert {p.id: latest(p).figures for p in plots} == before


def test_a_point_plot_is_screened_as_the_circle_of_its_declared_area(hansen, make_plot):
    lon, lat = X0 + (POST_2020[1] + 2) * RES, Y0 - (POST_2020[0] + 2) * RES
    plot = make_plot(geometry_value={"type": "Point", "coordinates": [lon, lat]}, declared_area=0.5)
    screening.run_screening([plot.id], workers=1)
    f = latest(plot).figures
    assert f["area_ha"] == pytest.approx(0.5, rel=2e-3)  # a 256-gon buffered through a local projection
    assert latest(plot).outcome == "fail"


def test_the_command_screens_and_prints_a_summary(hansen, make_plot, capsys):
    make_plot(geometry_value=as_geojson(cell_polygon(POST_2020[0], POST_2020[1], 4, 4)))
    make_plot(geometry_value=as_geojson(cell_polygon(NO_LOSS[0] + 2, NO_LOSS[1] + 2, 4, 4)))
    call_command("screen", "--workers", "1")
    out = capsys.readouterr().out
    assert "screened 2 plots over 2 tiles" in out
    assert "fail" in out and "2 results written" in out
    call_command("screen", "--workers", "1")
    assert "0 results written, 2 unchanged" in capsys.readouterr().out


def test_the_command_refuses_a_bad_product_and_scheduler(hansen):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="needs hansen-lossyear"):
        call_command("screen", "--product", "jrc-tmf")
    with pytest.raises(CommandError, match="scheduler address"):
        call_command("screen", "--dask", "localhost:8786")


def test_independent_helper_matches_geodesic_plot_area():
    polygon = cell_polygon(10, 10, 7, 9)
    _, area = independent_sums(HANSEN / LOSS, polygon)
    from pyproj import Geod

    assert area.sum() == pytest.approx(abs(Geod(ellps="WGS84").geometry_area_perimeter(polygon)[0]), rel=2e-3)
    assert np.isfinite(area).all()


def test_cells_outside_the_products_value_range_count_as_no_data(db, make_plot, tmp_path):
    # A lossyear tile that declares no nodata (as published tiles often do) with 255 in its west half.
    with rasterio.open(HANSEN / LOSS) as ds:
        data = ds.read(1)
        profile = dict(ds.profile, nodata=None)
    data[:, :96] = 255
    with rasterio.open(tmp_path / "no_nodata.tif", "w", **profile) as out:
        out.write(data, 1)
    raster_load(paths=[tmp_path / "no_nodata.tif"], product="hansen-lossyear", version="no-nodata")
    plot = make_plot(geometry_value=as_geojson(cell_polygon(20, 90, 6, 12)))  # half on the 255 cells
    screening.run_screening([plot.id], workers=1)
    result = latest(plot)
    assert result.outcome == "insufficient_data"
    assert 0.3 < result.figures["covered_share"] < 0.7 and result.figures["loss_ha_after_cutoff"] == 0
