"""The demo loss raster: `chacra screen` flags exactly the demo plots placed over post-2020 loss."""

from __future__ import annotations

import rasterio

import screening
from plots import demo
from plots.models import CheckResult
from screening import demo as raster_demo
from screening.models import RasterTile


def test_screening_the_demo_flags_exactly_the_plots_placed_over_loss(db, tmp_path):
    demo.generate(seed=7, shared=None, scale=0.05)
    report = raster_demo.generate(seed=7, folder=tmp_path)
    assert report.flagged and report.tiles
    assert RasterTile.objects.filter(version=raster_demo.VERSION).count() == len(report.tiles)
    with rasterio.open(report.tiles[0]) as ds:
        years = set(ds.read(1).ravel().tolist())
    assert any(1 <= y <= 20 for y in years)  # loss before the cut-off exists too
    summary = screening.run_screening(workers=1)
    failed = set(CheckResult.objects.filter(kind="deforestation", outcome="fail").values_list("plot__code", flat=True))
    assert failed == set(report.flagged)
    assert summary.outcomes.get("insufficient_data", 0) == 0
    passing = CheckResult.objects.filter(kind="deforestation", outcome="pass")
    assert passing.filter(figures__loss_ha_before_cutoff__gt=0).exists()  # pre-2020 loss does not fail a plot
    assert report.flagged[0] in report.line()
    assert raster_demo.reset() == len(report.tiles)
