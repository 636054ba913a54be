"""Imports of facilities, lots, deliveries, transfers, processing events and shipments
from CSV or JSON, on the machinery every import shares (core.imports).

Every row is created / updated / unchanged / refused with its reason, through the
same services as the API, each in a savepoint. The file is one transaction: by
default any refused row means nothing is written; ``partial=True`` writes the
good rows; ``dry_run=True`` runs everything and rolls back. Dates are YYYY-MM-DD or
DD/MM/YYYY; decimals take a point or a comma, as in every import. Rows are keyed by their
natural keys (codes; plot + lot + date for deliveries; source + target for
transfers; lot + start for processing), so re-running a file is "unchanged".
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from django.db.models import Q

from core.imports import (ImportLock, ImportReport, RowResult, import_row, parse_bool, parse_date, parse_decimal,
                          parse_int, refuse_file, run_import)
from plots import roles
from plots.errors import Forbidden, ValidationFailed
from plots.models import Organization, Plot
from plots.selectors import organization_list
from traceability import services
from traceability.models import Facility, OrganizationSupplier, ProductLot

MAX_ROWS = 200_000


def _text(row: dict, name: str, *, required: bool = True) -> str:
    value = row.get(name)
    value = "" if value is None else str(value).strip()
    if required and not value:
        raise ValidationFailed(f"{name} is required")
    return value


# The cells by the shared parsers (core.imports): the same forms as in every import.
def _day(row: dict, name: str, *, required: bool = True) -> date | None:
    return parse_date(_text(row, name, required=required), name)


def _number(row: dict, name: str, *, required: bool = False, whole: bool = False) -> Any:
    value = _text(row, name, required=required)
    if whole:
        return parse_int(value, name)
    number = parse_decimal(value, name)
    return None if number is None else float(number)


def _flag(row: dict, name: str) -> bool:
    return parse_bool(_text(row, name, required=False), name)


# References resolve among the records the actor reads (plots.selectors,
# ProductLot.objects.visible_to): another organization's is refused in the words
# of a code that does not exist. The command line (no actor) reads everything.

def _org(code: str, actor, *, anyone: bool = False) -> Organization:
    """``anyone``: a shipment's buyer, which is another organization by nature."""
    orgs = Organization.objects.all() if actor is None or anyone else organization_list(user=actor)
    org = orgs.filter(code=code).first()
    if org is None:
        raise ValidationFailed(f"organization {code!r} does not exist")
    return org


def _lot(code: str, actor) -> ProductLot:
    lots = ProductLot.objects.visible_to(actor) if actor is not None else ProductLot.objects.all()
    lot = lots.filter(code=code).first()
    if lot is None:
        raise ValidationFailed(f"lot {code!r} does not exist (import lots first)")
    return lot


def _facility(code: str, actor) -> Facility | None:
    if not code:
        return None
    facilities = Facility.objects.all()
    if actor is not None:
        facilities = facilities.filter(organization__in=organization_list(user=actor))
    facility = facilities.filter(code=code).first()
    if facility is None:
        raise ValidationFailed(f"facility {code!r} does not exist")
    return facility


def _delivering_plot(code: str, actor) -> Plot:
    """A plot the actor reads, or one of an organization that supplies the actor's
    (traceability.models.OrganizationSupplier: the explicit share deliveries need)."""
    plots = Plot.objects.select_related("organization")
    if actor is not None and not roles.is_staff_role(actor):
        suppliers = OrganizationSupplier.objects.filter(organization=roles.organization_of(actor))
        plots = plots.filter(Q(pk__in=Plot.objects.visible_to(actor).values("pk"))
                             | Q(organization__in=suppliers.values("supplier")))
    plot = plots.filter(code=code).first()
    if plot is None:
        raise ValidationFailed(f"plot {code!r} does not exist")
    return plot


def _facility_row(row: dict, actor) -> tuple[str, str]:
    code = _text(row, "code")
    lon, lat = _number(row, "lon"), _number(row, "lat")
    _, status = services.facility_upsert(code=code, name=_text(row, "name"), kind=_text(row, "kind"),
                                         organization=_org(_text(row, "organization"), actor), lon=lon, lat=lat,
                                         actor=actor)
    return code, status


def _lot_row(row: dict, actor) -> tuple[str, str]:
    code = _text(row, "code")
    facility = _facility(_text(row, "facility", required=False), actor)
    _, status = services.lot_upsert(code=code, organization=_org(_text(row, "organization"), actor),
                                    form=_text(row, "form"), kg=_text(row, "kg"), date=_day(row, "date"),
                                    facility=facility, notes=_text(row, "notes", required=False), actor=actor)
    return code, status


def _delivery_row(row: dict, actor) -> tuple[str, str]:
    plot_code, lot = _text(row, "plot"), _lot(_text(row, "lot"), actor)
    plot = _delivering_plot(plot_code, actor)
    day = _day(row, "date")
    _, status = services.delivery_record(plot=plot, lot=lot, kg=_text(row, "kg"), date=day, actor=actor)
    return f"{plot_code}→{lot.code}@{day}", status


def _transfer_row(row: dict, actor) -> tuple[str, str]:
    source, target = _lot(_text(row, "source"), actor), _lot(_text(row, "target"), actor)
    _, status = services.transfer_record(source=source, target=target, kg=_text(row, "kg"),
                                         kind=_text(row, "kind"), date=_day(row, "date"),
                                         factor=_text(row, "factor", required=False) or 1, actor=actor)
    return f"{source.code}→{target.code}", status


def _processing_row(row: dict, actor) -> tuple[str, str]:
    lot = _lot(_text(row, "lot"), actor)
    started = _day(row, "started")
    figures: dict[str, Any] = {"ended": _day(row, "ended", required=False),
                               "fermentation_days": _number(row, "fermentation_days", whole=True),
                               "drying_days": _number(row, "drying_days", whole=True),
                               "drying_method": _text(row, "drying_method", required=False),
                               "cut_test_grade": _text(row, "cut_test_grade", required=False)}
    moisture = parse_decimal(_text(row, "final_moisture_pct", required=False), "final_moisture_pct", places=1)
    if moisture is not None:
        figures["final_moisture_pct"] = moisture
    _, status = services.processing_record(lot=lot, started=started, actor=actor, **figures)
    return f"{lot.code}@{started}", status


def _shipment_row(row: dict, actor) -> tuple[str, str]:
    code = _text(row, "code")
    raw = row.get("lots")
    codes = raw if isinstance(raw, list) else [c.strip() for c in _text(row, "lots").split(";") if c.strip()]
    _, status = services.shipment_upsert(
        code=code, seller=_org(_text(row, "seller"), actor), buyer=_org(_text(row, "buyer"), actor, anyone=True),
        lots=[_lot(str(c), actor) for c in codes], date=_day(row, "date"),
        container=_text(row, "container", required=False),
        due_diligence_reference=_text(row, "due_diligence_reference", required=False),
        geolocation_confidential=_flag(row, "geolocation_confidential"), actor=actor)
    return code, status


# One handler per kind, each returning (label, created|updated|unchanged).
KINDS: dict[str, Callable[[dict, Any], tuple[str, str]]] = {
    "facilities": _facility_row, "lots": _lot_row, "deliveries": _delivery_row, "transfers": _transfer_row,
    "processing": _processing_row, "shipments": _shipment_row,
}


def read_rows(data: bytes, fmt: str, kind: str) -> Iterator[tuple[int, dict]]:
    """(row number, row) pairs: CSV rows numbered from 2 (the header is line 1);
    JSON a list of objects, or an object holding it under "rows" or the kind's name."""
    if fmt == "csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed("the CSV file is not UTF-8") from None
        reader = csv.DictReader(io.StringIO(text))
        for number, row in enumerate(reader, start=2):
            yield number, {str(k).strip().lower(): v for k, v in row.items() if k is not None}
        return
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise ValidationFailed("the file is not valid JSON") from None
    rows = doc.get("rows", doc.get(kind)) if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise ValidationFailed(f'JSON must be a list of objects, or {{"rows": [...]}} / {{"{kind}": [...]}}')
    for number, row in enumerate(rows, start=1):
        yield number, row if isinstance(row, dict) else {"__error__": "is not a JSON object"}


def _row(row: dict, handler, actor) -> tuple[str, str]:
    if "__error__" in row:
        raise ValidationFailed(row["__error__"])
    return handler(row, actor)


def _all_rows(data: bytes, fmt: str, kind: str) -> list[tuple[int, dict]]:
    """Every row, read before anything is written: a file over MAX_ROWS is refused
    at the first row over, without a row imported or a transaction opened."""
    try:
        rows = list(itertools.islice(read_rows(data, fmt, kind), MAX_ROWS + 1))
    except csv.Error as exc:
        raise ValidationFailed(f"the CSV cannot be read: {exc}") from None
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(f"the file holds more than {MAX_ROWS:,} rows; at most {MAX_ROWS:,} are imported at "
                               "once: split it")
    if not rows:
        raise ValidationFailed("the file holds no rows")
    return rows


def _write(rows: list[tuple[int, dict]], handler, actor, report: ImportReport) -> None:
    """Every row in its savepoint (core.imports.import_row); run_import keeps, or rolls
    back, the whole."""
    for number, row in rows:
        report.rows.append(import_row(RowResult(number=number, label=f"row {number}"),
                                      lambda: _row(row, handler, actor)))


def import_rows(*, kind: str, data: bytes, fmt: str, name: str = "upload", actor=None, dry_run: bool = False,
                partial: bool = False) -> ImportReport:
    """Import one file of ``kind``. Raises ImportRefused (with the report) when
    nothing was written because of a whole-file problem or, unless ``partial``, a refused row."""
    if kind not in KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(KINDS)} (got {kind!r})", field="kind")
    if fmt not in ("csv", "json"):
        raise ValidationFailed(f"format must be csv or json (got {fmt!r})", field="format")
    if actor is not None and not roles.can_write_at_all(actor):
        raise Forbidden(f"your role cannot import {kind}")
    report = ImportReport(file=name, format=fmt, dry_run=dry_run, partial=partial)
    try:
        rows = _all_rows(data, fmt, kind)
    except ValidationFailed as exc:
        refuse_file(report, exc.message)
    org = roles.organization_of(actor) if actor is not None else None
    lock = ImportLock(what="traceability", digest=f"{kind}:{hashlib.sha256(data).hexdigest()}",
                      organization_id=org.id if org else None, name=name)
    # "partial" without dashes: the upload's field (the API's words since before the shared machinery).
    return run_import(report=report, lock=lock, partial_option="partial",
                      write=lambda report: _write(rows, KINDS[kind], actor, report))


def import_file(*, kind: str, path: Path, fmt: str | None = None, **options: Any) -> ImportReport:
    """import_rows on a file; the format from its suffix unless given."""
    fmt = fmt or path.suffix.lower().lstrip(".")
    return import_rows(kind=kind, data=path.read_bytes(), fmt=fmt, name=path.name, **options)
