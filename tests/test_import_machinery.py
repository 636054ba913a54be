"""The import machinery every importer shares (core.imports, api/views/uploads.py):
one set of cell parsers, one routine for atomic / dry-run / partial writing, one
refusal with one error body, one set of upload fields — pinned once here, and through
each of the plot, nursery-sheet and traceability importers."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.gis.geos import Point
from django.core.files.uploadedfile import SimpleUploadedFile

from core.errors import ValidationFailed
from core.imports import (ImportRefused, ImportReport, RowResult, import_row, parse_bool, parse_date, parse_decimal,
                          parse_int, run_import)
from nurseries import services as nursery_services
from nurseries.imports import import_sheet
from nurseries.models import MaterialLot
from plots import services as plot_services
from plots.imports import import_plots
from plots.models import Organization, Plot
from tests.conftest import square
from traceability.imports import import_rows
from traceability.models import ProductLot

# --------------------------------------------------------------------------- cell parsers


@pytest.mark.parametrize("text,day", [
    ("2024-03-05", date(2024, 3, 5)), ("05/03/2024", date(2024, 3, 5)), ("5/3/2024", date(2024, 3, 5)),
    ("2024-3-5", date(2024, 3, 5)), ("2024-03-05T10:30:00Z", date(2024, 3, 5)), ("", None), (None, None)])
def test_a_date_is_read_as_iso_or_day_first(text, day):
    assert parse_date(text, "fecha") == day


def test_a_date_in_another_form_is_refused_naming_both_forms():
    for text in ("03/31/2024", "31/31/2024", "marzo 2024"):
        with pytest.raises(ValidationFailed) as caught:
            parse_date(text, "fecha")
        assert caught.value.message == f"fecha must be a date written YYYY-MM-DD or DD/MM/YYYY (got {text!r})"


def test_numbers_take_a_decimal_point_or_comma_and_grouped_thousands():
    assert parse_decimal("0,25", "ha") == Decimal("0.25") and parse_decimal("0.25", "ha") == Decimal("0.25")
    assert parse_decimal("7.25", "pct", places=1) == Decimal("7.2")  # half to even, as Decimal rounds
    assert parse_int("1,000", "n") == 1000 and parse_int("12 500", "n") == 12500 and parse_int("-3", "n") == -3
    for bad in ("1,5", "ten"):  # "1,5" is no thousands group: a decimal comma, refused, not read as 15
        with pytest.raises(ValidationFailed) as caught:
            parse_int(bad, "n")
        assert caught.value.message == f"n must be a whole number (got {bad!r})"
    with pytest.raises(ValidationFailed, match=r"^n cannot be negative \(got -3\)$"):
        parse_int("-3", "n", negative=False)
    for bad in ("abc", "NaN", "inf", "1.000,5"):
        with pytest.raises(ValidationFailed, match="ha must be a number of hectares"):
            parse_decimal(bad, "ha", what="a number of hectares")


def test_booleans_are_true_false_one_zero_yes_no():
    assert [parse_bool(v, "f") for v in ("true", "TRUE", "1", "yes", True)] == [True] * 5
    assert [parse_bool(v, "f") for v in ("false", "0", "no", "", None, False)] == [False] * 6
    with pytest.raises(ValidationFailed, match=r"^f must be true or false \(got 'maybe'\)$"):
        parse_bool("maybe", "f")


# --------------------------------------------------------------------------- run_import


def _orgs(report: ImportReport, codes: list[str]) -> None:
    """A write step: one organization per code; "bad…" codes are refused."""
    for number, code in enumerate(codes, start=1):
        def step(code=code):
            if code.startswith("bad"):
                raise ValidationFailed(f"{code} is refused")
            plot_services.organization_create(code=code, name=code, kind="cooperative")
            return code, "created"
        report.rows.append(import_row(RowResult(number=number), step))


def test_a_dry_run_reports_every_row_and_writes_nothing(db):
    report = run_import(report=ImportReport(file="f.csv", dry_run=True), write=lambda r: _orgs(r, ["m-1", "m-2"]))
    assert report.counts["created"] == 2 and not report.written and not Organization.objects.exists()


def test_a_refused_row_writes_nothing_unless_partial(db):
    with pytest.raises(ImportRefused) as caught:
        run_import(report=ImportReport(file="f.csv"), write=lambda r: _orgs(r, ["m-1", "bad-1"]))
    assert caught.value.message == ("f.csv: 1 of 2 rows refused; nothing was written (fix them, or import the "
                                    "others with --partial)")
    assert caught.value.report.rows[1].reason == "bad-1 is refused" and not Organization.objects.exists()
    report = run_import(report=ImportReport(file="f.csv", partial=True), write=lambda r: _orgs(r, ["m-1", "bad-1"]))
    assert report.written and list(Organization.objects.values_list("code", flat=True)) == ["m-1"]


def test_an_empty_file_is_refused_in_the_importers_words(db):
    with pytest.raises(ImportRefused, match="^f.csv: the sheet holds no rows$"):
        run_import(report=ImportReport(file="f.csv"), write=lambda r: None, empty="the sheet holds no rows")


# --------------------------------------------------------------------------- the importers


@pytest.fixture
def world(org_a, make_producer):
    """A producer and a nursery of coop-a (plots, nursery sheets); coop-a owns lots."""
    make_producer(organization=org_a, code="p-m")
    nursery_services.nursery_create(code="viv-m", name="Vivero", kind="cacao_seedling",
                                    location=Point(-76.4, -8.1, srid=4326), established_on=date(2023, 1, 1),
                                    operator_organization=org_a)
    return org_a


def test_nursery_sheets_take_iso_and_day_first_dates(world, tmp_path):
    path = tmp_path / "hoja.csv"
    path.write_text("code,kind,quantity,produced_on,nursery\ns-iso,seed,10,2024-03-05,viv-m\n"
                    "s-dmy,seed,10,05/03/2024,viv-m\n")
    assert import_sheet(sheet="lots", path=path).counts["created"] == 2
    assert set(MaterialLot.objects.values_list("produced_on", flat=True)) == {date(2024, 3, 5)}


def test_traceability_sheets_take_iso_and_day_first_dates(world):
    data = b"code,organization,form,kg,date\nl-iso,coop-a,wet_beans,5,2025-05-02\nl-dmy,coop-a,wet_beans,5,02/05/2025\n"
    assert import_rows(kind="lots", fmt="csv", data=data).counts["created"] == 2
    assert set(ProductLot.objects.values_list("date", flat=True)) == {date(2025, 5, 2)}


@pytest.mark.parametrize("bulk", [False, True], ids=["per-feature", "bulk"])
def test_plot_files_take_iso_and_day_first_survey_dates(world, tmp_path, bulk):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": square(-76.5 + i * 0.01, -8.19, 0.002),
         "properties": {"code": code, "producer": "p-m", "survey_date": day}}
        for i, (code, day) in enumerate([("d-iso", "2024-03-05"), ("d-dmy", "05/03/2024")])]}
    path = tmp_path / "fincas.geojson"
    path.write_text(json.dumps(doc))
    assert import_plots(path=path, bulk=bulk, run_checks=False).counts["created"] == 2
    assert set(Plot.objects.values_list("survey_date", flat=True)) == {date(2024, 3, 5)}


# --------------------------------------------------------------------------- the three uploads

def _feature(code: str, producer: str, lon: float) -> dict:
    return {"type": "Feature", "geometry": square(lon, -8.19, 0.002),
            "properties": {"code": code, "producer": producer}}


# Each endpoint with a file of one good row and one refused row, and how to count its records.
UPLOADS = {
    "plots": ("/api/v1/imports", "fincas.geojson", {}, lambda: Plot.objects.count(), json.dumps({
        "type": "FeatureCollection", "features": [_feature("u-1", "p-m", -76.5), _feature("u-2", "ghost", -76.4)]})),
    "nursery sheet": ("/api/v1/nursery-imports", "hoja.csv", {"sheet": "lots"}, lambda: MaterialLot.objects.count(),
                      "code,kind,quantity,produced_on,nursery\n"
                      "s-1,seed,10,05/03/2024,viv-m\ns-2,tree,10,2024-03-05,viv-m\n"),
    "traceability": ("/api/v1/traceability/imports/lots", "lotes.csv", {}, lambda: ProductLot.objects.count(),
                     "code,organization,form,kg,date\n"
                     "l-1,coop-a,wet_beans,5,02/05/2025\nl-2,coop-a,gold,5,2025-05-02\n"),
}


def _post(persona, which: str, **fields):
    url, name, own, _, text = UPLOADS[which]
    return persona.client.post(url, {"file": SimpleUploadedFile(name, text.encode()), **own, **fields},
                               format="multipart")


@pytest.mark.parametrize("which", UPLOADS)
def test_every_upload_takes_dry_run_and_partial_as_fields(world, technician, which):
    count = UPLOADS[which][3]
    dry = _post(technician, which, dry_run="true", partial="true")
    assert dry.status_code == 200 and dry.json()["counts"]["created"] == 1 and not dry.json()["written"]
    assert count() == 0
    done = _post(technician, which, partial="true")
    assert done.status_code == 201 and done.json()["written"] and done.json()["counts"]["refused"] == 1
    assert count() == 1


@pytest.mark.parametrize("which", UPLOADS)
def test_every_upload_refuses_in_one_body_shape(world, technician, which):
    url, name, *_ = UPLOADS[which]
    response = _post(technician, which)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"status", "code", "message", "details", "report"}
    assert (error["status"], error["code"], error["details"]) == (400, "import_refused", [])
    assert error["message"].startswith(f"{name}: 1 of 2 ") and "refused; nothing was written" in error["message"]
    report = error["report"]
    assert {"file", "dry_run", "partial", "written", "error", "counts"} <= set(report)
    assert (report["file"], report["written"], report["counts"]["refused"]) == (name, False, 1)
    rows = report.get("rows") or report["features"]
    assert [(r["number"] > 0, r["status"]) for r in rows] == [(True, "created"), (True, "refused")]
    assert rows[1]["reason"] and rows[0]["reason"] is None
    assert UPLOADS[which][3]() == 0


@pytest.mark.parametrize("which", UPLOADS)
def test_every_upload_refuses_unknown_fields_and_bad_flags(world, technician, which):
    unknown = _post(technician, which, dryrun="true")
    assert unknown.status_code == 400 and unknown.json()["error"]["message"].startswith("unknown field(s): dryrun;")
    bad = _post(technician, which, dry_run="maybe")
    assert bad.status_code == 400
    assert bad.json()["error"]["details"] == [{"field": "dry_run",
                                               "message": "dry_run must be true or false (got 'maybe')"}]


def test_the_traceability_upload_still_takes_its_flags_as_query_parameters(world, technician):
    url, name, _, count, text = UPLOADS["traceability"]

    def post(query: str, **fields):
        return technician.client.post(f"{url}{query}", {"file": SimpleUploadedFile(name, text.encode()), **fields},
                                      format="multipart")

    assert post("?dry_run=true&partial=true").status_code == 200 and count() == 0
    conflict = post("?dry_run=true", dry_run="false")
    assert conflict.status_code == 400 and conflict.json()["error"]["details"][0]["field"] == "dry_run"
    assert post("?partial=true").status_code == 201 and count() == 1


@pytest.mark.parametrize("which", UPLOADS)
def test_every_upload_still_answers_options(world, technician, which):
    """The upload base adds hooks, none named like a method DRF dispatches (OPTIONS)."""
    assert technician.client.options(UPLOADS[which][0]).status_code == 200
