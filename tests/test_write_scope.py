"""Writes obey the scope of reads: a cooperative refers only to the records it can
read (its own, or those explicitly shared with it), staff to anything; a reference
to another organization's record is refused in exactly the words of a code that
does not exist, and nothing of it is written.

coop-a's user (``owner``) tries every write path on coop-b's records; each refusal
is compared, word for word, with the refusal of a code nobody registered.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.contrib.gis.geos import Point
from django.core.files.uploadedfile import SimpleUploadedFile

from nurseries import services as nursery_services
from nurseries.models import Dispatch, Grafting, LotParent, MaterialLot
from plots.errors import ValidationFailed
from plots.imports import ImportRefused, import_plots
from plots.models import Plot
from tests.conftest import square
from traceability import services as trace_services
from traceability.models import LotInput

MISSING = "never-registered"


@pytest.fixture
def world(org_a, org_b, make_producer, make_plot):
    """coop-a and coop-b, each with a producer, a plot, a nursery, seed, budwood and lots."""
    nursery_services.clones_load()
    records = {}
    for org, x in ((org_a, -76.40), (org_b, -76.30)):
        p = org.code[-1]
        producer = make_producer(organization=org, code=f"{p}-prod")
        plot = make_plot(producer=producer, code=f"{p}-plot", geometry_value=square(x, -8.10, 0.002),
                         valid_from=date(2020, 1, 1))
        nursery = nursery_services.nursery_create(
            code=f"{p}-viv", name="Vivero", kind="cacao_seedling", location=Point(x, -8.1, srid=4326),
            established_on=date(2023, 1, 1), operator_organization=org)
        seed = nursery_services.lot_create(code=f"{p}-seed", kind="seed", quantity=7911,
                                           produced_on=date(2024, 1, 1), nursery=nursery)
        budwood = nursery_services.lot_create(code=f"{p}-var", kind="budwood", quantity=500, clone=_clone(),
                                              produced_on=date(2024, 1, 1), source_plot=plot)
        plants = nursery_services.lot_create(code=f"{p}-inj", kind="grafted_plant", quantity=300, clone=_clone(),
                                             produced_on=date(2024, 1, 1), nursery=nursery)
        wet = trace_services.lot_upsert(code=f"{p}-wet", organization=org, form="wet_beans", kg=300,
                                        date=date(2025, 5, 2))[0]
        records[p] = {"producer": producer, "plot": plot, "seed": seed, "budwood": budwood, "plants": plants,
                      "wet": wet}
    return records


def _clone():
    from nurseries.models import Clone

    return Clone.objects.get(code="ICS-95")


def _sheet(persona, sheet: str, text: str):
    return persona.client.post("/api/v1/nursery-imports", {"file": SimpleUploadedFile("hoja.csv", text.encode()),
                                                           "sheet": sheet}, format="multipart")


def _refusal(response) -> tuple[int, str, str]:
    """(status, error code, the one row's reason) of a refused import."""
    body = response.json()["error"]
    rows = body["report"].get("rows") or body["report"].get("features")
    assert len(rows) == 1 and rows[0]["status"] == "refused", body
    return response.status_code, body["code"], rows[0]["reason"]


def _same_refusal(send, foreign: str):
    """``send(code)`` refused for ``foreign`` exactly as for a code nobody registered."""
    status, code, reason = _refusal(send(foreign))
    assert (status, code, reason.replace(foreign, MISSING)) == _refusal(send(MISSING))
    return reason


# --------------------------------------------------------------------------- nursery sheets

LOT_ROW = "code,kind,quantity,produced_on,nursery,parents\na-new,rootstock_seedling,100,2024-02-01,a-viv,{}:100\n"
DISPATCH_ROW = "code,lot,quantity,dispatched_on,to_plot\nd-1,{lot},50,2024-03-01,{plot}\n"
GRAFTING_ROW = "code,plot,grafted_on,clone,grafts,grafted_ha,budwood_lot\ng-1,a-plot,2024-06-01,ICS-95,100,0.1,{}\n"


def test_a_cooperative_cannot_draw_down_another_organizations_lot(world, owner):
    reason = _same_refusal(lambda code: _sheet(owner, "lots", LOT_ROW.format(code)), "b-seed")
    assert reason == "parent lot 'b-seed' is not registered"
    assert nursery_services.lot_outflow(world["b"]["seed"]) == 0 and not MaterialLot.objects.filter(code="a-new")
    assert _sheet(owner, "lots", LOT_ROW.format("a-seed")).status_code == 201  # its own lot: drawn down
    assert LotParent.objects.get(child__code="a-new").parent.code == "a-seed"


def test_a_cooperative_cannot_dispatch_onto_another_organizations_plot(world, owner, technician):
    genetics = "/api/v1/plots/b-plot/genetics"
    before = technician.client.get(genetics).json()
    reason = _same_refusal(lambda code: _sheet(owner, "dispatches", DISPATCH_ROW.format(lot="a-inj", plot=code)),
                           "b-plot")
    assert reason == "plot 'b-plot' is not registered"
    assert technician.client.get(genetics).json() == before and not Dispatch.objects.exists()
    assert _sheet(owner, "dispatches", DISPATCH_ROW.format(lot="a-inj", plot="a-plot")).status_code == 201


def test_a_cooperative_cannot_dispatch_another_organizations_lot(world, owner):
    reason = _same_refusal(lambda code: _sheet(owner, "dispatches", DISPATCH_ROW.format(lot=code, plot="a-plot")),
                           "b-inj")
    assert reason == "lot 'b-inj' is not registered"
    assert nursery_services.lot_outflow(world["b"]["plants"]) == 0


def test_a_cooperative_cannot_graft_with_another_organizations_budwood(world, owner):
    reason = _same_refusal(lambda code: _sheet(owner, "graftings", GRAFTING_ROW.format(code)), "b-var")
    assert reason == "lot 'b-var' is not registered"
    assert not Grafting.objects.exists()
    assert _sheet(owner, "graftings", GRAFTING_ROW.format("a-var")).status_code == 201


def test_another_organizations_code_is_taken_without_saying_whose(world, owner):
    row = "code,kind,quantity,produced_on,nursery\nb-seed,seed,1,2024-02-01,a-viv\n"
    status, _, reason = _refusal(_sheet(owner, "lots", row))
    assert status == 400 and reason == "lot code 'b-seed' is already in use; choose another code"
    assert MaterialLot.objects.get(code="b-seed").quantity == 7911


def test_staff_refer_to_any_organizations_records(world, technician):
    assert _sheet(technician, "dispatches", DISPATCH_ROW.format(lot="b-inj", plot="a-plot")).status_code == 201
    assert _sheet(technician, "graftings", GRAFTING_ROW.format("b-var")).status_code == 201


def test_the_nursery_services_refuse_the_same_references(world, owner):
    """Whoever calls the services (not only the sheet importer) meets the same scope."""
    a, b = world["a"], world["b"]
    with pytest.raises(ValidationFailed, match="^plot 'b-plot' is not registered$"):
        nursery_services.dispatch_create(code="d-x", lot=a["plants"], quantity=1, dispatched_on=date(2024, 3, 1),
                                         to_plot=b["plot"], actor=owner.user)
    with pytest.raises(ValidationFailed, match="^lot 'b-var' is not registered$"):
        nursery_services.grafting_create(code="g-x", plot=a["plot"], grafted_on=date(2024, 6, 1), clone=_clone(),
                                         grafts=1, grafted_ha=0.1, budwood_lot=b["budwood"], actor=owner.user)
    with pytest.raises(ValidationFailed, match="^lot 'b-seed' is not registered$"):
        nursery_services.lot_create(code="l-x", kind="rootstock_seedling", quantity=1, produced_on=date(2024, 2, 1),
                                    nursery=a["seed"].nursery, parents=[(b["seed"], 1)], actor=owner.user)
    assert not Dispatch.objects.exists() and not Grafting.objects.exists()
    assert nursery_services.lot_outflow(b["seed"]) == 0


# --------------------------------------------------------------------------- traceability imports


def _deliver(persona, plot: str, lot: str):
    return persona.client.post("/api/v1/traceability/imports/deliveries",
                               [{"plot": plot, "lot": lot, "kg": 10, "date": "2025-05-01"}], format="json")


def test_a_cooperative_cannot_deliver_from_another_organizations_plot(world, owner, org_a, org_b):
    reason = _same_refusal(lambda code: _deliver(owner, code, "a-wet"), "b-plot")
    assert reason == "plot 'b-plot' does not exist" and not LotInput.objects.exists()
    assert _deliver(owner, "a-plot", "a-wet").status_code == 201
    # A supplier's plots are shared explicitly: their deliveries are accepted.
    trace_services.supplier_add(organization=org_a, supplier=org_b)
    assert _deliver(owner, "b-plot", "a-wet").status_code == 201


def test_a_cooperative_cannot_deliver_into_another_organizations_lot(world, owner):
    reason = _same_refusal(lambda code: _deliver(owner, "a-plot", code), "b-wet")
    assert reason == "lot 'b-wet' does not exist (import lots first)"
    assert not LotInput.objects.exists() and world["b"]["wet"].inputs.count() == 0


def test_a_cooperative_cannot_draw_from_another_organizations_product_lot(world, owner):
    def transfer(code):
        return owner.client.post("/api/v1/traceability/imports/transfers", [
            {"source": code, "target": "a-wet", "kg": 1, "kind": "merge", "date": "2025-05-02"}], format="json")

    assert _same_refusal(transfer, "b-wet") == "lot 'b-wet' does not exist (import lots first)"
    assert not LotInput.objects.exists()


def test_a_cooperative_cannot_name_another_organization_or_its_lot_code(world, owner):
    def lot(organization, code="a-new"):
        return owner.client.post("/api/v1/traceability/imports/lots", [
            {"code": code, "organization": organization, "form": "wet_beans", "kg": 5, "date": "2025-05-02"}],
            format="json")

    assert _same_refusal(lot, "coop-b") == "organization 'coop-b' does not exist"
    status, _, reason = _refusal(lot("coop-a", code="b-wet"))
    assert status == 400 and reason == "lot code 'b-wet' is already in use; choose another code"
    assert world["b"]["wet"].organization.code == "coop-b"


# --------------------------------------------------------------------------- plot imports and the plots API


def _plot_file(tmp_path, code: str, producer: str):
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": square(-76.2, -8.1, 0.002),
                                                       "properties": {"code": code, "producer": producer}}]}
    path = tmp_path / f"{code}-{producer}.geojson"
    path.write_text(json.dumps(doc))
    return path


def _upload_plots(persona, tmp_path, code: str, producer: str):
    path = _plot_file(tmp_path, code, producer)
    return persona.client.post("/api/v1/imports", {"file": SimpleUploadedFile("parcelas.geojson", path.read_bytes())},
                               format="multipart")


def test_a_plot_upload_naming_another_organizations_producer(world, owner, tmp_path):
    reason = _same_refusal(lambda code: _upload_plots(owner, tmp_path, "a-new", code), "b-prod")
    assert reason == "producer 'b-prod' is not registered in coop-a" and not Plot.objects.filter(code="a-new")


@pytest.mark.parametrize("bulk", [False, True], ids=["per-feature", "bulk"])
def test_a_plot_import_naming_another_organizations_producer(world, owner, tmp_path, bulk):
    """The service called without an organization (as a script would): the actor's scope still holds."""
    def run(code):
        with pytest.raises(ImportRefused) as caught:
            import_plots(path=_plot_file(tmp_path, "a-new", code), actor=owner.user, bulk=bulk, run_checks=False)
        return caught.value.report.features[0].reason

    assert run("b-prod") == run(MISSING).replace(MISSING, "b-prod") == "producer 'b-prod' is not registered"


@pytest.mark.parametrize("bulk", [False, True], ids=["per-feature", "bulk"])
def test_a_plot_import_naming_another_organizations_plot_code(world, owner, tmp_path, bulk):
    """Plot codes are unique across Chacra: that one is taken cannot be hidden, whose it is can."""
    before = list(world["b"]["plot"].boundaries.values_list("id", "valid_to"))
    with pytest.raises(ImportRefused) as caught:
        import_plots(path=_plot_file(tmp_path, "b-plot", "a-prod"), actor=owner.user, bulk=bulk, run_checks=False)
    assert caught.value.report.features[0].reason == "plot code 'b-plot' is already in use; choose another code"
    plot = Plot.objects.get(code="b-plot")
    assert plot.producer.code == "b-prod" and list(plot.boundaries.values_list("id", "valid_to")) == before


def test_creating_a_plot_for_another_organizations_producer_is_unknown_producer(world, owner):
    def post(producer):
        return owner.client.post("/api/v1/plots", {"type": "Feature", "geometry": square(-76.2, -8.1),
                                                   "properties": {"code": "a-new", "producer": producer}},
                                 format="json")

    foreign, missing = post("b-prod"), post(MISSING)
    assert foreign.status_code == missing.status_code == 400
    assert foreign.json() == missing.json() and not Plot.objects.filter(code="a-new").exists()
