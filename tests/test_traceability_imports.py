"""Imports of traceability records: the plot importer's report, atomicity, dry run,
partial, idempotency; the same scenarios through the function and the command."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.core.management import CommandError, call_command

from plots.imports import ImportRefused
from traceability.imports import import_file, import_rows
from traceability.models import Facility, LotInput, ProductLot, Shipment

LOTS = ("code,organization,form,kg,date,facility\n"
        "w-1,coop-a,wet_beans,300,2025-05-02,cc-1\n"
        "d-1,coop-a,dry_beans,114,2025-05-12,\n")


@pytest.fixture
def ready(org_a, make_org, make_producer, make_plot):
    producer = make_producer(organization=org_a)
    make_plot(producer=producer, code="pl-1", valid_from=date(2020, 1, 1))
    make_org(code="exporter-y", kind="exporter")
    import_rows(kind="facilities", fmt="json", data=json.dumps([
        {"code": "cc-1", "name": "Centro de acopio Ñaupa", "kind": "collection_centre", "organization": "coop-a",
         "lon": -76.5, "lat": -8.2}]).encode())
    return org_a


def test_a_season_imports_file_by_file_and_reimports_unchanged(ready, tmp_path):
    files = {
        "lots": ("lots.csv", LOTS),
        "deliveries": ("deliveries.json", json.dumps({"rows": [{"plot": "pl-1", "lot": "w-1", "kg": 300,
                                                                 "date": "2025-05-02"}]})),
        "transfers": ("transfers.csv", "source,target,kg,kind,date,factor\nw-1,d-1,300,transform,2025-05-12,0.38\n"),
        "processing": ("processing.csv", "lot,started,ended,fermentation_days,drying_days,final_moisture_pct,"
                                         "cut_test_grade\nd-1,2025-05-02,2025-05-12,6,4,7.2,I\n"),
        "shipments": ("shipments.json", json.dumps([{"code": "sh-1", "seller": "coop-a", "buyer": "exporter-y",
                                                     "lots": ["d-1"], "date": "2025-06-01",
                                                     "geolocation_confidential": "true"}])),
    }
    for kind, (name, text) in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        first = import_file(kind=kind, path=path)
        assert first.written and first.counts["refused"] == 0 and first.counts["created"] >= 1, kind
        again = import_file(kind=kind, path=path)
        assert again.counts["unchanged"] == len(again.features), kind
    assert Shipment.objects.get(code="sh-1").geolocation_confidential
    assert ProductLot.objects.get(code="w-1").facility == Facility.objects.get(code="cc-1")


def test_one_refused_row_writes_nothing_unless_partial(ready):
    bad = LOTS + "w-2,coop-a,gold,5,2025-05-02,\n"
    with pytest.raises(ImportRefused) as info:
        import_rows(kind="lots", fmt="csv", data=bad.encode(), name="lots.csv")
    report = info.value.report
    assert report.counts == {"created": 2, "updated": 0, "unchanged": 0, "refused": 1}
    assert report.features[2].label == "row 4" and "form must be one of" in report.features[2].reason
    assert not ProductLot.objects.exists()
    report = import_rows(kind="lots", fmt="csv", data=bad.encode(), partial=True)
    assert report.written and ProductLot.objects.count() == 2


def test_a_dry_run_reports_and_writes_nothing(ready):
    report = import_rows(kind="lots", fmt="csv", data=LOTS.encode(), dry_run=True)
    assert report.counts["created"] == 2 and not report.written
    assert not ProductLot.objects.exists()


def test_a_rule_of_the_graph_refuses_the_row_naming_the_lot(ready):
    import_rows(kind="lots", fmt="csv", data=LOTS.encode())
    import_rows(kind="deliveries", fmt="json",
                data=b'[{"plot": "pl-1", "lot": "w-1", "kg": 100, "date": "2025-05-02"}]')
    with pytest.raises(ImportRefused) as info:
        import_rows(kind="transfers", fmt="csv",
                    data=b"source,target,kg,kind,date,factor\nw-1,d-1,300,transform,2025-05-12,0.38\n")
    assert "lot w-1 would pass on 300.000 kg but weighs 300.000 kg and received 100.000 kg" \
        in info.value.report.features[0].reason
    assert not LotInput.objects.filter(kind="transform").exists()


def test_the_command_runs_the_same_import(ready, tmp_path, capsys):
    path = tmp_path / "lots.csv"
    path.write_text(LOTS + "w-3,coop-a,wet_beans,-4,2025-05-02,\n", encoding="utf-8")
    with pytest.raises(CommandError, match="1 of 3 rows refused"):
        call_command("import_traceability", "lots", str(path))
    assert "row 4: refused — kg must be a positive number" in capsys.readouterr().out
    call_command("import_traceability", "lots", str(path), "--partial")
    assert ProductLot.objects.count() == 2


def test_a_broken_file_is_refused_as_a_whole(ready):
    with pytest.raises(ImportRefused, match="not valid JSON"):
        import_rows(kind="lots", fmt="json", data=b"[{")
