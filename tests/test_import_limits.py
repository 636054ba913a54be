"""Limits every import keeps: body size (413 before the body is read), rows (counted
before a row is imported), time per statement, the user's file name in messages,
and two imports of one file at once."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from rest_framework.parsers import JSONParser, MultiPartParser

from nurseries import imports as nursery_imports
from plots import imports as plot_imports
from plots.imports import ImportRefused, import_plots
from plots.models import Plot
from tests.conftest import square
from traceability import imports as trace_imports
from traceability.models import ProductLot

LOT_HEADER = "code,organization,form,kg,date\n"


def _lots_csv(n: int) -> str:
    return LOT_HEADER + "".join(f"l-{i},coop-a,wet_beans,5,2025-05-02\n" for i in range(n))


class Spy:
    """A row handler that counts its calls (and imports nothing)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, row, actor):
        self.calls += 1
        return "row", "created"


# --------------------------------------------------------------------------- rows


def test_a_traceability_file_over_the_row_limit_is_refused_before_any_row(org_a, owner, monkeypatch):
    monkeypatch.setattr(trace_imports, "MAX_ROWS", 3)
    spy = Spy()
    monkeypatch.setitem(trace_imports.KINDS, "lots", spy)
    response = owner.client.post("/api/v1/traceability/imports/lots",
                                 {"file": SimpleUploadedFile("lotes.csv", _lots_csv(4).encode())}, format="multipart")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["message"] == ("lotes.csv: the file holds more than 3 rows; at most 3 are "
                                                   "imported at once: split it")
    assert spy.calls == 0 and not ProductLot.objects.exists()
    monkeypatch.setitem(trace_imports.KINDS, "lots", trace_imports._lot_row)
    at_limit = owner.client.post("/api/v1/traceability/imports/lots",
                                 {"file": SimpleUploadedFile("lotes.csv", _lots_csv(3).encode())}, format="multipart")
    assert at_limit.status_code == 201 and ProductLot.objects.count() == 3


def test_a_nursery_sheet_over_the_row_limit_is_refused_before_any_row(db, tmp_path, monkeypatch):
    monkeypatch.setattr(nursery_imports, "MAX_ROWS", 3)
    spy = Spy()
    monkeypatch.setitem(nursery_imports.HANDLERS, "lots", spy)
    path = tmp_path / "hoja.csv"
    path.write_text("code,kind\n" + "".join(f"s-{i},seed\n" for i in range(4)))
    with pytest.raises(nursery_imports.SheetRefused, match="more than 3 rows; at most 3 are imported at once"):
        nursery_imports.import_sheet(sheet="lots", path=path)
    assert spy.calls == 0
    path.write_text("code,kind\n" + "".join(f"s-{i},seed\n" for i in range(3)))
    assert nursery_imports.import_sheet(sheet="lots", path=path, dry_run=True).counts["created"] == 3


# --------------------------------------------------------------------------- size


@pytest.fixture
def small_limit(settings):
    settings.CHACRA_MAX_IMPORT_BYTES = 2048
    return settings


@pytest.fixture
def no_parsing(monkeypatch):
    """Fail the test if the body is parsed: the 413 must come from its declared length."""
    def refuse(*args, **kwargs):
        raise AssertionError("the body was parsed")
    monkeypatch.setattr(MultiPartParser, "parse", refuse)
    monkeypatch.setattr(JSONParser, "parse", refuse)


def test_an_oversized_traceability_upload_is_413_before_the_body_is_read(org_a, owner, small_limit, no_parsing):
    big = _lots_csv(3000).encode()  # ~ 110 kB, over 2 kB + the multipart allowance
    response = owner.client.post("/api/v1/traceability/imports/lots", {"file": SimpleUploadedFile("big.csv", big)},
                                 format="multipart")
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    rows = [{"code": f"l-{i}", "organization": "coop-a", "form": "wet_beans", "kg": 5, "date": "2025-05-02"}
            for i in range(3000)]
    as_json = owner.client.post("/api/v1/traceability/imports/lots", rows, format="json")
    assert as_json.status_code == 413 and not ProductLot.objects.exists()


def test_a_file_just_over_the_limit_is_413_by_its_own_size(org_a, owner, small_limit):
    response = owner.client.post("/api/v1/traceability/imports/lots",
                                 {"file": SimpleUploadedFile("lotes.csv", b"x" * 2049)}, format="multipart")
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "lotes.csv is 2,049 bytes; the limit is 2,048 bytes"


@pytest.mark.parametrize("url,fields", [("/api/v1/imports", {}), ("/api/v1/nursery-imports", {"sheet": "lots"})])
def test_every_other_oversized_upload_is_413_before_the_body_is_read(owner, small_limit, no_parsing, url, fields):
    response = owner.client.post(url, {"file": SimpleUploadedFile("p.csv", b" " * 200_000), **fields},
                                 format="multipart")
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


# --------------------------------------------------------------------------- time


def test_a_statement_running_past_the_timeout_stops_the_import(org_a, monkeypatch, settings):
    settings.CHACRA_IMPORT_STATEMENT_TIMEOUT_S = 0.5
    seen = {}

    def slow(row, actor):
        with connection.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            seen["timeout"] = cur.fetchone()[0]
            cur.execute("SELECT pg_sleep(2)")
        return "never", "created"

    monkeypatch.setitem(trace_imports.KINDS, "lots", slow)
    started = time.monotonic()
    with pytest.raises(ImportRefused) as caught:
        trace_imports.import_rows(kind="lots", data=_lots_csv(1).encode(), fmt="csv", name="lotes.csv")
    assert time.monotonic() - started < 1.9 and seen["timeout"] == "500ms"
    assert caught.value.message == ("lotes.csv: a step of the import ran longer than 0.5 s and was stopped; nothing "
                                    "was written (split the file into smaller ones)")
    assert caught.value.report.features == [] and not caught.value.report.written


# --------------------------------------------------------------------------- the user's file name


@pytest.mark.parametrize("url,name,fields", [
    ("/api/v1/imports", "mis parcelas.geojson", {}),
    ("/api/v1/imports", "mis parcelas.gpkg", {}),
    ("/api/v1/imports", "mis parcelas.csv", {}),
    ("/api/v1/nursery-imports", "mi hoja.csv", {"sheet": "lots"}),
    ("/api/v1/traceability/imports/lots", "mis lotes.csv", {}),
])
def test_an_empty_upload_is_refused_by_the_users_file_name(owner, url, name, fields):
    response = owner.client.post(url, {"file": SimpleUploadedFile(name, b""), **fields}, format="multipart")
    assert response.status_code == 400
    text = json.dumps(response.json())
    assert response.json()["error"]["message"].startswith(f"{name}: ")
    assert "/tmp" not in text and "chacra-" not in text and "upload." not in text


def test_the_servers_path_is_replaced_by_the_users_name(tmp_path):
    path = tmp_path / "upload.gpkg"
    reason = f"GDAL cannot read it: '{path}' not recognized; also {path.parent}/upload.gpkg.aux"
    assert plot_imports.public_reason(reason, path, "fincas.gpkg") == (
        "GDAL cannot read it: 'fincas.gpkg' not recognized; also fincas.gpkg.aux")


# --------------------------------------------------------------------------- two imports at once


def _polygons(tmp_path, name: str, codes: list[str], producer: str = "p-conc"):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": square(-76.5 + i * 0.01, -8.1, 0.002),
         "properties": {"code": code, "producer": producer}} for i, code in enumerate(codes)]}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


class Holder:
    """An import in its own thread (so its own connection) that stops, holding its
    transaction open, once its rows are written, until released."""

    def __init__(self, monkeypatch, **options) -> None:
        self.holding, self.release = threading.Event(), threading.Event()
        self.outcome: object = None
        self.options = options
        real = plot_imports._run_checks

        def hold(plot_ids):
            if threading.current_thread() is self.thread:
                self.holding.set()
                assert self.release.wait(30)
            return real(plot_ids)

        monkeypatch.setattr(plot_imports, "_run_checks", hold)
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            self.outcome = import_plots(**self.options)
        except Exception as exc:  # handed to the test
            self.outcome = exc
        finally:
            connections.close_all()

    def __enter__(self):
        self.thread.start()
        assert self.holding.wait(30)
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.thread.join(30)


@pytest.fixture
def concurrent(transactional_db, make_producer, tmp_path):
    make_producer(code="p-conc")
    return tmp_path


@pytest.mark.parametrize("bulk", [False, True], ids=["per-feature", "bulk"])
def test_the_second_of_two_imports_of_one_file_is_told_so(concurrent, monkeypatch, capsys, bulk):
    path = _polygons(concurrent, "fincas.geojson", ["c-1", "c-2"])
    with Holder(monkeypatch, path=path, bulk=bulk) as first:
        with pytest.raises(CommandError, match=r"^fincas.geojson: this file is already being imported \(started "
                                               r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"):
            call_command("import_plots", str(path), "--no-checks", "--bulk" if bulk else "--per-feature")
    assert first.outcome.counts["created"] == 2 and Plot.objects.count() == 2
    capsys.readouterr()
    call_command("import_plots", str(path), "--no-checks")
    assert "nothing to do: every plot already exists unchanged" in capsys.readouterr().out


def test_the_api_answers_409_while_the_same_file_is_imported(concurrent, monkeypatch, persona):
    technician = persona("technician")
    path = _polygons(concurrent, "fincas.geojson", ["c-1"])
    with Holder(monkeypatch, path=path, display_name="fincas.geojson"):
        response = technician.client.post("/api/v1/imports", {"file": SimpleUploadedFile(
            "mis fincas.geojson", path.read_bytes())}, format="multipart")
    assert response.status_code == 409 and response.json()["error"]["code"] == "import_in_progress"
    assert response.json()["error"]["message"].startswith("mis fincas.geojson: this file is already being imported")
    assert Plot.objects.count() == 1  # the first import's, once it committed


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")
        return cur.fetchone()[0] > 0


def test_two_files_racing_for_one_plot_code_end_in_a_refusal_not_a_traceback(concurrent, monkeypatch):
    """Different files (so no shared advisory lock) writing one code: the second waits on
    the first one's row, then meets the unique index; it reports, it does not crash."""
    first_file = _polygons(concurrent, "a.geojson", ["same-1"])
    second_file = _polygons(concurrent, "b.geojson", ["same-1", "other-1"])
    outcome = {}

    def second():
        try:
            outcome["report"] = import_plots(path=second_file, bulk=False, run_checks=False)
        except Exception as exc:  # handed to the test
            outcome["error"] = exc
        finally:
            connections.close_all()

    with Holder(monkeypatch, path=first_file, bulk=False) as first:
        racer = threading.Thread(target=second)
        racer.start()
        deadline = time.monotonic() + 20
        while not _waiting_on_a_lock():
            assert time.monotonic() < deadline, "the second import never waited on the first"
            time.sleep(0.05)
    racer.join(30)
    assert first.outcome.counts["created"] == 1
    refused = outcome["error"]
    assert isinstance(refused, ImportRefused), refused
    reasons = {f.code: f.reason for f in refused.report.features}
    assert reasons["same-1"] == plot_imports.RACE_REASON and reasons["other-1"] is None
    assert sorted(Plot.objects.values_list("code", flat=True)) == ["same-1"]
