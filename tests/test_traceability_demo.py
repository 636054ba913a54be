"""The demo season end to end, as the issue's "done when": a buyer's token lists its
lots, opens each origin with a verdict, downloads EUDR files the separate validator
accepts, and the two planted problem lots are not compliant for the right reasons."""

from __future__ import annotations

import json

import pytest

from plots import demo as plot_demo
from plots.models import Organization
from tests import eudr_validator
from traceability import demo
from traceability.models import LotInput, ProductLot, Shipment


@pytest.fixture
def season(db):
    plot_demo.generate(seed=7, shared=None, scale=0.1)
    return demo.generate(seed=7)


def test_the_buyer_sees_verdicts_and_valid_eudr_files(season, persona):
    assert season.protected_plot and season.yield_plot
    buyer = persona("buyer", Organization.objects.get(code=demo.BUYER_CODE))
    codes = [lot["code"] for lot in buyer.client.get("/api/v1/lots").json()["lots"]]
    assert demo.PROTECTED_LOT in codes and demo.YIELD_LOT in codes
    shipped = Shipment.objects.filter(buyer__code=demo.BUYER_CODE).values_list("lots__code", flat=True)
    assert set(codes) == set(shipped)
    verdicts = {}
    for code in codes:
        origin = json.loads(buyer.client.get(f"/api/v1/lots/{code}/origin").content)
        failures = {r["reason"] for r in origin["reasons"] if r["verdict"] == "not_compliant"}
        verdicts[code] = (origin["verdict"], failures)
        assert origin["features"] and origin["lot"]["share_total"] == pytest.approx(1)
        response = buyer.client.get(f"/api/v1/lots/{code}/eudr.geojson")
        assert response.status_code == 200, response.content
        assert eudr_validator.problems(response.content) == []
    verdict, reasons = verdicts[demo.PROTECTED_LOT]
    assert verdict == "not_compliant" and all(r.startswith("overlaps a protected area") for r in reasons)
    verdict, reasons = verdicts[demo.YIELD_LOT]
    assert verdict == "not_compliant" and len(reasons) == 1 and "over the ceiling" in next(iter(reasons))
    # Every other lot still waits for the deforestation screening (issue 6) at least.
    assert all(v == "incomplete" for c, (v, r) in verdicts.items() if not r)


def test_reset_removes_the_season(season):
    assert demo.reset() == season.lots
    assert not ProductLot.objects.exists() and not LotInput.objects.exists() and not Shipment.objects.exists()
    assert not Organization.objects.filter(code=demo.BUYER_CODE).exists()
