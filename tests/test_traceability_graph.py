"""The lot graph: a hand-worked merge/split graph with exact shares, the rules
(conservation, cycles, dates, who may deliver), mass balance and verdicts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from django.db import IntegrityError, transaction
from pyproj import Geod

from plots.errors import ValidationFailed
from plots.models import CheckResult
from plots.services import plot_retire
from tests.conftest import square
from traceability import selectors, services
from traceability.models import LotInput

D = date(2025, 3, 10)


@pytest.fixture
def chain(make_org, make_producer, make_plot):
    """Plots A, B, C of one cooperative and a hand-worked graph:

        A 100 + B 200 kg wet → W1 (300)        C 100 kg wet → W2 (100)      B 50 kg wet → W3 (50)
        W1 ×0.4 → D1 (120 dry)                 W2 ×0.4 → D2 (40 dry)        W3 ×0.4 → D3 (20 dry)
        D1 120 + D2 40 → M (160)               M split: 40 → S1, 120 → S2
        S1 40 + D3 20 → X (60)

    Shares of X: S1 brings 2/3 = M's mix (A 1/4, B 1/2, C 1/4) and D3 1/3 (all B):
    A 1/6, B 1/2·2/3 + 1/3 = 2/3, C 1/6.
    """
    org = make_org()
    producer = make_producer(organization=org)
    plots = {n: make_plot(producer=producer, code=f"plot-{n.lower()}", valid_from=date(2020, 1, 1),
                          geometry_value=square(-76.51 + i * 0.01, -8.19)) for i, n in enumerate("ABC")}
    lots = {}

    def lot(code, form, kg, day):
        lots[code], _ = services.lot_upsert(code=code, organization=org, form=form, kg=kg, date=day)
        return lots[code]

    lot("w1", "wet_beans", 300, D), lot("w2", "wet_beans", 100, D), lot("w3", "wet_beans", 50, D)
    services.delivery_record(plot=plots["A"], lot=lots["w1"], kg=100, date=D)
    services.delivery_record(plot=plots["B"], lot=lots["w1"], kg=200, date=D)
    services.delivery_record(plot=plots["C"], lot=lots["w2"], kg=100, date=D)
    services.delivery_record(plot=plots["B"], lot=lots["w3"], kg=50, date=D)
    day2, day3 = date(2025, 3, 20), date(2025, 4, 1)
    for wet, dry, kg in (("w1", "d1", 300), ("w2", "d2", 100), ("w3", "d3", 50)):
        lot(dry, "dry_beans", kg * Decimal("0.4"), day2)
        services.transfer_record(source=lots[wet], target=lots[dry], kg=kg, factor="0.4", kind="transform",
                                 date=day2)
    lot("m", "dry_beans", 160, day3)
    services.transfer_record(source=lots["d1"], target=lots["m"], kg=120, kind="merge", date=day3)
    services.transfer_record(source=lots["d2"], target=lots["m"], kg=40, kind="merge", date=day3)
    lot("s1", "dry_beans", 40, day3), lot("s2", "dry_beans", 120, day3)
    services.transfer_record(source=lots["m"], target=lots["s1"], kg=40, kind="split", date=day3)
    services.transfer_record(source=lots["m"], target=lots["s2"], kg=120, kind="split", date=day3)
    lot("x", "dry_beans", 60, day3)
    services.transfer_record(source=lots["s1"], target=lots["x"], kg=40, kind="merge", date=day3)
    services.transfer_record(source=lots["d3"], target=lots["x"], kg=20, kind="merge", date=day3)
    return {"org": org, "producer": producer, "plots": plots, "lots": lots}


def _exact(value: Decimal, fraction: Fraction) -> bool:
    return abs(Fraction(value) - fraction) < Fraction(1, 10**15)


def test_it_gives_exact_shares_through_merges_and_splits(chain):
    origin = selectors.origin_of(chain["lots"]["x"])
    shares = origin.plot_shares
    assert set(shares) == {"plot-a", "plot-b", "plot-c"}
    assert _exact(shares["plot-a"], Fraction(1, 6))
    assert _exact(shares["plot-b"], Fraction(2, 3))
    assert _exact(shares["plot-c"], Fraction(1, 6))
    assert _exact(origin.share_total, Fraction(1))


def test_it_gives_the_merge_shares_to_both_halves_of_a_split(chain):
    for code in ("m", "s1", "s2"):
        shares = selectors.origin_of(chain["lots"][code]).plot_shares
        assert _exact(shares["plot-a"], Fraction(1, 4)) and _exact(shares["plot-b"], Fraction(1, 2))
        assert _exact(shares["plot-c"], Fraction(1, 4))


def test_it_refuses_to_pass_on_more_than_a_lot_received(chain):
    lots = chain["lots"]
    extra, _ = services.lot_upsert(code="s3", organization=chain["org"], form="dry_beans", kg=10,
                                   date=date(2025, 4, 1))
    with pytest.raises(ValidationFailed, match="lot m would pass on 170.000 kg"):
        services.transfer_record(source=lots["m"], target=extra, kg=10, kind="split", date=date(2025, 4, 1))
    assert not LotInput.objects.filter(target=extra).exists()


def test_it_allows_the_stated_tolerance_after_conversion(chain):
    lots = chain["lots"]
    # d3 received 50 × 0.4 = 20 kg and passed 20 on; 1 % more (0.2 kg) is within tolerance, 0.3 is not.
    services.transfer_record(source=lots["d3"], target=lots["x"], kg="20.2", kind="merge", date=date(2025, 4, 1))
    with pytest.raises(ValidationFailed, match="mass is conserved"):
        services.transfer_record(source=lots["d3"], target=lots["x"], kg="20.3", kind="merge",
                                 date=date(2025, 4, 1))


def test_it_refuses_a_cycle(chain):
    lots = chain["lots"]
    with pytest.raises(ValidationFailed, match="cycle") as info:
        services.transfer_record(source=lots["x"], target=lots["m"], kg=1, kind="merge", date=date(2025, 4, 1))
    assert info.value.code == "cycle"


def test_the_database_refuses_a_cycle_and_excess_mass_on_its_own(chain):
    lots = chain["lots"]
    with pytest.raises(IntegrityError, match="would make a cycle"), transaction.atomic():
        LotInput.objects.create(source_lot=lots["x"], target=lots["m"], kg=1, kind="merge", date=date(2025, 4, 1))
    with pytest.raises(IntegrityError, match="lot s2 passes on"), transaction.atomic():
        LotInput.objects.create(source_lot=lots["s2"], target=lots["x"], kg=500, kind="merge",
                                date=date(2025, 4, 1))


def test_the_database_refuses_a_delivery_from_a_stranger_plot_on_its_own(chain, make_plot):
    stranger = make_plot(valid_from=date(2020, 1, 1))
    with pytest.raises(IntegrityError, match="neither the lot's nor one of its suppliers"), transaction.atomic():
        LotInput.objects.create(kind="delivery", source_plot=stranger, target=chain["lots"]["w1"], kg=1, date=D)


def test_shrinking_a_lot_below_what_it_passed_on_is_refused_naming_it(chain):
    with pytest.raises(ValidationFailed, match="lot m: lot m passes on 160.000 kg but weighs 100.000 kg"):
        services.lot_upsert(code="m", organization=chain["org"], form="dry_beans", kg=100, date=date(2025, 4, 1))
    assert chain["lots"]["m"].kg == 160


def test_it_refuses_dates_running_backwards(chain):
    lots = chain["lots"]
    with pytest.raises(ValidationFailed, match="dates run forward"):
        services.transfer_record(source=lots["s2"], target=lots["d1"], kg=1, kind="merge", date=date(2025, 4, 1))
    with pytest.raises(ValidationFailed, match="later than the lot"):
        services.delivery_record(plot=chain["plots"]["A"], lot=lots["w1"], kg=1, date=date(2025, 3, 11))


def test_it_refuses_deliveries_from_other_organizations_unless_suppliers(chain, make_org, make_producer,
                                                                         make_plot):
    other = make_org()
    plot = make_plot(producer=make_producer(organization=other), valid_from=date(2020, 1, 1))
    lot = chain["lots"]["w1"]
    with pytest.raises(ValidationFailed, match="neither .* nor one of its suppliers"):
        services.delivery_record(plot=plot, lot=lot, kg=10, date=D)
    services.supplier_add(organization=chain["org"], supplier=other)
    _, status = services.delivery_record(plot=plot, lot=lot, kg=10, date=D)
    assert status == "created"


def test_it_refuses_deliveries_from_retired_plots(chain):
    plot = plot_retire(plot=chain["plots"]["C"], reason="sold", when=date(2025, 3, 1))
    with pytest.raises(ValidationFailed, match="retired"):
        services.delivery_record(plot=plot, lot=chain["lots"]["w2"], kg=1, date=D)


def test_recording_the_same_delivery_twice_is_unchanged(chain):
    _, status = services.delivery_record(plot=chain["plots"]["A"], lot=chain["lots"]["w1"], kg=100, date=D)
    assert status == "unchanged"


def test_a_lot_without_checks_is_incomplete_with_reasons(chain):
    origin = selectors.origin_of(chain["lots"]["x"])
    assert origin.verdict == selectors.INCOMPLETE
    reasons = {r["reason"] for r in origin.reasons}
    assert {"protected-area check not yet run", "deforestation screening not yet run"} <= reasons


def _check(plot, kind, outcome, **figures):
    CheckResult.objects.create(plot=plot, kind=kind, outcome=outcome, figures=figures, method_version="test")


def test_a_protected_area_overlap_makes_the_lot_not_compliant(chain):
    plots = chain["plots"]
    for plot in plots.values():
        _check(plot, "deforestation", "pass")
        _check(plot, "protected_area_overlap", "pass")
    assert selectors.origin_of(chain["lots"]["x"]).verdict == selectors.COMPLIANT
    _check(plots["C"], "protected_area_overlap", "fail", areas=[{"name": "Bosque de Protección Alto Mayo"}])
    origin = selectors.origin_of(chain["lots"]["x"])
    assert origin.verdict == selectors.NOT_COMPLIANT
    assert origin.reasons == [{"plot": "plot-c", "verdict": "not_compliant",
                               "reason": "overlaps a protected area (Bosque de Protección Alto Mayo)"}]
    # s2 descends from m, which holds plot C's beans too; d3 does not.
    assert selectors.origin_of(chain["lots"]["s2"]).verdict == selectors.NOT_COMPLIANT
    assert selectors.origin_of(chain["lots"]["d3"]).verdict == selectors.COMPLIANT


def test_forest_loss_after_the_cutoff_makes_the_lot_not_compliant(chain):
    _check(chain["plots"]["A"], "deforestation", "fail")
    origin = selectors.origin_of(chain["lots"]["x"])
    assert origin.verdict == selectors.NOT_COMPLIANT
    assert {"plot": "plot-a", "verdict": "not_compliant",
            "reason": "forest loss after the cut-off (31 December 2020)"} in origin.reasons


def test_mass_with_no_recorded_origin_makes_the_lot_incomplete(chain, make_plot):
    lot, _ = services.lot_upsert(code="x", organization=chain["org"], form="dry_beans", kg=90, date=date(2025, 4, 1))
    for plot in chain["plots"].values():
        _check(plot, "deforestation", "pass")
        _check(plot, "protected_area_overlap", "pass")
    origin = selectors.origin_of(lot)
    assert origin.verdict == selectors.INCOMPLETE
    assert origin.reasons[-1]["reason"] == "30.000 kg of the lot's 90.000 kg have no recorded origin"


def test_the_plot_area_agrees_with_pyproj(chain):
    """The origin's area is the geodesic area of the square, as pyproj's Geod measures it."""
    import json

    features = [json.loads(f) for f in selectors.origin_of(chain["lots"]["x"]).features]
    a = next(f for f in features if f["id"] == "plot-a")
    lons, lats = zip(*a["geometry"]["coordinates"][0][0])
    area_m2, _ = Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)
    assert a["properties"]["area_ha"] == pytest.approx(abs(area_m2) / 10_000, abs=1e-4)
    assert a["properties"]["share"] == pytest.approx(1 / 6, abs=1e-12)
    assert a["properties"]["kg"] == pytest.approx(10.0)


def test_mass_balance_flags_a_plot_over_the_ceiling_and_every_lot_it_reaches(chain, technician, settings):
    settings.CHACRA_YIELD_CEILING_KG_HA = 2300.0
    plots, lots = chain["plots"], chain["lots"]
    balance = selectors.lot_mass_balance(user=technician.user, code="x")
    assert not balance["flagged"]
    # Plot A (~1.22 ha, ceiling ~2,800 kg dry) delivers another 8,000 kg wet = 3,040 kg dry in 2025.
    big, _ = services.lot_upsert(code="w9", organization=chain["org"], form="wet_beans", kg=8000, date=D)
    services.delivery_record(plot=plots["A"], lot=big, kg=8000, date=D)
    balance = selectors.lot_mass_balance(user=technician.user, code="x")
    assert balance["flagged"]
    row = next(r for r in balance["plots"] if r["plot"] == "plot-a")
    assert row["dry_kg"] == pytest.approx((8000 + 100) * 0.38)
    assert row["over_ceiling"] and row["area_source"] == "boundary"
    assert row["reaches"] == ["d1", "m", "s1", "s2", "w1", "w9", "x"]
    other = next(r for r in balance["plots"] if r["plot"] == "plot-c")
    assert other["over_ceiling"] is False
    origin = selectors.origin_of(lots["s2"])
    assert origin.verdict == selectors.NOT_COMPLIANT
    assert any(r["plot"] == "plot-a" and "over the ceiling" in r["reason"] for r in origin.reasons)


def test_a_plot_without_a_boundary_on_its_delivery_day_has_no_geometry(chain, make_plot):
    from traceability import eudr

    late = make_plot(producer=chain["producer"], code="plot-late", valid_from=date(2025, 6, 1))
    lot, _ = services.lot_upsert(code="w-late", organization=chain["org"], form="wet_beans", kg=10, date=D)
    services.delivery_record(plot=late, lot=lot, kg=10, date=D)
    origin = selectors.origin_of(lot)
    assert origin.verdict == selectors.INCOMPLETE
    assert {"plot": "plot-late", "verdict": "incomplete",
            "reason": "no geometry: no boundary or point was in force on 2025-03-10"} in origin.reasons
    with pytest.raises(eudr.ExportRefused, match="plot plot-late: no geometry"):
        eudr.export_lot(lot)
