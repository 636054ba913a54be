"""The nursery demo: realistic proportions, and the stats endpoint reproduces its totals exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nurseries import demo as nursery_demo
from nurseries import lineage, stats
from nurseries.models import Dispatch, Grafting, LotParent, MaterialLot, Nursery
from plots import demo as plot_demo


@pytest.fixture
def loaded(db):
    plot_demo.generate(seed=7, shared=None, scale=0.1)
    return nursery_demo.generate(seed=7, scale=0.1)


def test_it_generates_lots_dispatches_and_graftings_in_the_three_regions(loaded):
    assert loaded.nurseries == 18 and set(loaded.regions) == {"10", "22", "25"}
    assert 20 <= sum(loaded.lots.values()) <= 60  # ~250 at scale 1
    assert set(loaded.lots) == {"seed", "rootstock_seedling", "budwood", "grafted_plant", "shade_tree_seedling",
                                "plantain_sucker"}
    assert MaterialLot.objects.count() == sum(loaded.lots.values())
    assert Dispatch.objects.count() == loaded.dispatches and Grafting.objects.count() == loaded.graftings
    assert Grafting.objects.filter(area__isnull=False).exists()


def test_grafted_over_planted_follows_the_programme(loaded):
    for region, (grafted, planted) in nursery_demo.PROGRAMME.items():
        assert loaded.regions[region].ratio == pytest.approx(grafted / planted, abs=0.02)
    # The planted hectares stand in the programme's proportions (to the size of a plot or two).
    sm, hu = loaded.regions["22"].planted_ha, loaded.regions["10"].planted_ha
    assert float(sm / hu) == pytest.approx(9_895 / 8_572, rel=0.1)


def test_the_stats_reproduce_the_generated_totals_exactly(loaded, technician):
    body = technician.client.get("/api/v1/stats/grafting?by=region").json()
    rows = {row["key"]: row for row in body["rows"]}
    for region, totals in loaded.regions.items():
        assert Decimal(str(rows[region]["grafted_ha"])) == totals.grafted_ha
        assert Decimal(str(rows[region]["planted_ha"])) == totals.planted_ha
        assert rows[region]["plots_planted"] == totals.plots_planted
        assert rows[region]["plots_grafted"] == totals.plots_grafted
        assert sum(Decimal(str(v)) for v in rows[region]["clones"].values()) == totals.grafted_ha
    # And independently of the generator: plain Python sums over the rows.
    assert sum(Decimal(str(r["grafted_ha"])) for r in body["rows"]) == sum(
        (g.grafted_ha for g in Grafting.objects.all()), Decimal(0))
    by_clone = stats.grafting_stats(by="clone")
    assert sum(r.grafted_ha for r in by_clone) == sum(t.grafted_ha for t in loaded.regions.values())


def test_a_fine_flavour_clone_is_followed_from_its_mother_plot_to_the_plots(loaded, technician):
    budwood = MaterialLot.objects.filter(kind="budwood", child_edges__isnull=False).order_by("code").first()
    body = technician.client.get(f"/api/v1/material-lots/{budwood.code}/lineage?direction=down").json()
    assert body["nodes"][0]["source_plot"] == budwood.source_plot.code and body["nodes"][0]["fine_flavour"]
    reached = {r["plot"] for r in body["reached"]}
    assert None not in reached and body["plots_not_shown"] == 0  # a technician sees every plot
    assert len(reached) == len({r.plot_id for r in lineage.plots_reached(budwood.id)})
    grafted_lot = LotParent.objects.filter(parent=budwood).first().child
    planted_plot = Dispatch.objects.filter(lot=grafted_lot, to_plot__isnull=False).first().to_plot
    genetics = technician.client.get(f"/api/v1/plots/{planted_plot.code}/genetics").json()
    assert budwood.code in {lot["code"] for lot in genetics["lots"]}
    assert {"code": budwood.source_plot.code, "organization": budwood.source_plot.organization.code} in \
        genetics["mother_plots"]
    assert grafted_lot.nursery.code in genetics["nurseries"]


def test_reset_removes_the_nursery_demo(loaded):
    assert nursery_demo.reset() == sum(loaded.lots.values())
    assert not (Nursery.objects.exists() or MaterialLot.objects.exists() or Dispatch.objects.exists())
    plot_demo.reset()
