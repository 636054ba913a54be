"""CSV sheets of lots, dispatches and graftings: report, atomicity, idempotency; the commands."""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.contrib.gis.geos import Point

from nurseries import services
from nurseries.imports import SheetRefused, import_sheet
from nurseries.models import Clone, Dispatch, Grafting, LotParent, MaterialLot
from tests.conftest import square

LOTS = """codigo;tipo;clon;cantidad;fecha_produccion;vivero;parcela_madre;lotes_padre
sem-1;semilla;;1000;10/01/2024;viv-1;;
pat-1;patrón;;700;2024-03-01;viv-1;;sem-1:800
var-1;vareta;ICS-95;100;2024-05-01;;madre;
inj-1;injertado;ICS-95;500;2024-06-01;viv-1;;"pat-1:500;var-1:50"
"""


@pytest.fixture
def setting(db, make_org, make_producer, make_plot, tmp_path):
    services.clones_load()
    org = make_org(code="coop-sheet")
    producer = make_producer(organization=org)
    for i, code in enumerate(["madre", "chacra-1", "chacra-2"]):
        make_plot(producer=producer, code=code, geometry_value=square(-76.40 + i * 0.01, -8.10, 0.002),
                  valid_from=date(2020, 1, 1))
    services.nursery_create(code="viv-1", name="Vivero", kind="cacao_seedling", location=Point(-76.4, -8.1, srid=4326),
                            established_on=date(2023, 1, 1), operator_organization=org)

    def write(name: str, text: str):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


def test_it_imports_a_lot_sheet_and_a_rerun_changes_nothing(setting):
    path = setting("lots.csv", LOTS)
    report = import_sheet(sheet="lots", path=path)
    assert report.counts == {"created": 4, "updated": 0, "unchanged": 0, "refused": 0} and report.written
    assert sorted(LotParent.objects.values_list("parent__code", "child__code", "quantity")) == [
        ("pat-1", "inj-1", 500), ("sem-1", "pat-1", 800), ("var-1", "inj-1", 50)]
    assert MaterialLot.objects.get(code="sem-1").produced_on == date(2024, 1, 10)
    again = import_sheet(sheet="lots", path=path)
    assert again.counts == {"created": 0, "updated": 0, "unchanged": 4, "refused": 0}
    changed = setting("lots2.csv", LOTS.replace("inj-1;injertado;ICS-95;500", "inj-1;injertado;ICS-95;480"))
    assert import_sheet(sheet="lots", path=changed).counts["updated"] == 1
    assert MaterialLot.objects.get(code="inj-1").quantity == 480


def test_a_refused_row_means_nothing_is_written(setting):
    bad = LOTS + "inj-2;injertado;ICS-95;300;2024-06-02;viv-1;;pat-1:300\n"  # pat-1 has 200 left
    with pytest.raises(SheetRefused, match="1 of 5 rows refused; nothing was written") as caught:
        import_sheet(sheet="lots", path=setting("bad.csv", bad))
    rows = caught.value.report.rows
    assert [r.status for r in rows] == ["created"] * 4 + ["refused"]
    assert rows[-1].number == 6 and "lot pat-1, which has only 200 left" in rows[-1].reason
    assert not MaterialLot.objects.exists()
    partial = import_sheet(sheet="lots", path=setting("bad.csv", bad), partial=True)
    assert partial.written and partial.counts == {"created": 4, "updated": 0, "unchanged": 0, "refused": 1}
    assert MaterialLot.objects.count() == 4


def test_a_dry_run_reports_and_writes_nothing(setting):
    report = import_sheet(sheet="lots", path=setting("lots.csv", LOTS), dry_run=True)
    assert report.counts["created"] == 4 and not report.written
    assert not MaterialLot.objects.exists()


def test_it_imports_dispatches_and_graftings(setting):
    import_sheet(sheet="lots", path=setting("lots.csv", LOTS))
    dispatches = setting("d.csv", "guia,lote,cantidad,fecha,parcela,vivero_destino\n"
                                  "g-001,inj-1,300,2024-09-01,chacra-1,\n"
                                  "g-002,var-1,20,2024-05-03,chacra-2,\n")
    assert import_sheet(sheet="dispatches", path=dispatches).counts["created"] == 2
    assert import_sheet(sheet="dispatches", path=dispatches).counts["unchanged"] == 2
    inside = "POLYGON((-76.3795 -8.0995,-76.3785 -8.0995,-76.3785 -8.0985,-76.3795 -8.0985,-76.3795 -8.0995))"
    graftings = setting("g.csv", "codigo,parcela,fecha,clon,lote_vareta,injertos,ha_injertadas,area,prendidos\n"
                                 f"inj-a,chacra-2,2024-05-10,ICS-95,var-1,80,,\"{inside}\",70\n"
                                 "inj-b,chacra-2,2024-05-11,ICS-95,var-1,40,\"0,25\",,\n")
    assert import_sheet(sheet="graftings", path=graftings).counts["created"] == 2
    assert import_sheet(sheet="graftings", path=graftings).counts["unchanged"] == 2
    assert Grafting.objects.get(code="inj-b").grafted_ha == pytest.approx(0.25)
    assert Grafting.objects.get(code="inj-a").area is not None
    outside = setting("o.csv", "codigo,parcela,fecha,clon,injertos,area\n"
                               "inj-c,chacra-1,2024-05-10,CCN-51,10,\"POLYGON((-76.1 -8.1,-76.09 -8.1,-76.09 -8.09,"
                               "-76.1 -8.1))\"\n")
    with pytest.raises(SheetRefused) as caught:
        import_sheet(sheet="graftings", path=outside)
    assert "outside plot chacra-1" in caught.value.report.rows[0].reason
    assert Dispatch.objects.count() == 2 and Grafting.objects.count() == 2


def test_unreadable_cells_are_refused_with_their_reason(setting):
    sheet = setting("x.csv", "code,kind,quantity,produced_on,nursery\nl1,tree,10,2024-01-01,viv-1\n"
                             "l2,seed,ten,2024-01-01,viv-1\nl3,seed,10,31/31/2024,viv-1\nl4,seed,10,2024-01-01,nope\n")
    report = import_sheet(sheet="lots", path=sheet, partial=True)
    reasons = [r.reason for r in report.rows]
    assert "kind 'tree' is not one of" in reasons[0]
    assert "quantity must be a whole number" in reasons[1]
    assert "produced_on must be a date" in reasons[2]
    assert "nursery 'nope' is not registered" in reasons[3]


def test_the_commands(setting):
    out = StringIO()
    call_command("load_clones", stdout=out)
    assert "0 created" in out.getvalue() and Clone.objects.filter(code="TSH-565", fine_flavour=True).exists()
    out = StringIO()
    call_command("import_nursery_sheet", "lots", str(setting("lots.csv", LOTS)), "--dry-run", stdout=out)
    assert "would write 4 created" in out.getvalue()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("import_nursery_sheet", "lots", str(setting("b.csv", LOTS.replace("1000", "10"))),
                     stdout=StringIO())
