"""Imports of facilities, lots, deliveries, transfers, processing events and shipments
from CSV or JSON, with the plot importer's report (plots.imports.ImportReport).

Every row is created / updated / unchanged / refused with its reason, through the
same services as the API, each in a savepoint. The file is one transaction: by
default any refused row means nothing is written; ``partial=True`` writes the
good rows; ``dry_run=True`` runs everything and rolls back. Rows are keyed by their
natural keys (codes; plot + lot + date for deliveries; source + target for
transfers; lot + start for processing), so re-running a file is "unchanged".
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.db import transaction

from plots import roles
from plots.errors import DomainError, Forbidden, ValidationFailed
from plots.imports import FeatureResult, ImportRefused, ImportReport
from plots.models import Organization, Plot
from traceability import services
from traceability.models import Facility, ProductLot

MAX_ROWS = 200_000


def _text(row: dict, name: str, *, required: bool = True) -> str:
    value = row.get(name)
    value = "" if value is None else str(value).strip()
    if required and not value:
        raise ValidationFailed(f"{name} is required")
    return value


def _day(row: dict, name: str, *, required: bool = True) -> date | None:
    value = _text(row, name, required=required)
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ValidationFailed(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None


def _number(row: dict, name: str, *, required: bool = False, whole: bool = False) -> Any:
    value = _text(row, name, required=required)
    if not value:
        return None
    try:
        return int(value) if whole else float(value)
    except ValueError:
        raise ValidationFailed(f"{name} {value!r} is not a {'whole ' if whole else ''}number") from None


def _flag(row: dict, name: str) -> bool:
    value = _text(row, name, required=False).lower()
    if value not in ("", "true", "false", "1", "0", "yes", "no"):
        raise ValidationFailed(f"{name} must be true or false (got {value!r})")
    return value in ("true", "1", "yes")


def _org(code: str) -> Organization:
    org = Organization.objects.filter(code=code).first()
    if org is None:
        raise ValidationFailed(f"organization {code!r} does not exist")
    return org


def _lot(code: str) -> ProductLot:
    lot = ProductLot.objects.filter(code=code).first()
    if lot is None:
        raise ValidationFailed(f"lot {code!r} does not exist (import lots first)")
    return lot


def _facility_row(row: dict, actor) -> tuple[str, str]:
    code = _text(row, "code")
    lon, lat = _number(row, "lon"), _number(row, "lat")
    _, status = services.facility_upsert(code=code, name=_text(row, "name"), kind=_text(row, "kind"),
                                         organization=_org(_text(row, "organization")), lon=lon, lat=lat,
                                         actor=actor)
    return code, status


def _lot_row(row: dict, actor) -> tuple[str, str]:
    code = _text(row, "code")
    facility_code = _text(row, "facility", required=False)
    facility = Facility.objects.filter(code=facility_code).first() if facility_code else None
    if facility_code and facility is None:
        raise ValidationFailed(f"facility {facility_code!r} does not exist")
    _, status = services.lot_upsert(code=code, organization=_org(_text(row, "organization")),
                                    form=_text(row, "form"), kg=_text(row, "kg"), date=_day(row, "date"),
                                    facility=facility, notes=_text(row, "notes", required=False), actor=actor)
    return code, status


def _delivery_row(row: dict, actor) -> tuple[str, str]:
    plot_code, lot = _text(row, "plot"), _lot(_text(row, "lot"))
    plot = Plot.objects.select_related("organization").filter(code=plot_code).first()
    if plot is None:
        raise ValidationFailed(f"plot {plot_code!r} does not exist")
    day = _day(row, "date")
    _, status = services.delivery_record(plot=plot, lot=lot, kg=_text(row, "kg"), date=day, actor=actor)
    return f"{plot_code}→{lot.code}@{day}", status


def _transfer_row(row: dict, actor) -> tuple[str, str]:
    source, target = _lot(_text(row, "source")), _lot(_text(row, "target"))
    _, status = services.transfer_record(source=source, target=target, kg=_text(row, "kg"),
                                         kind=_text(row, "kind"), date=_day(row, "date"),
                                         factor=_text(row, "factor", required=False) or 1, actor=actor)
    return f"{source.code}→{target.code}", status


def _processing_row(row: dict, actor) -> tuple[str, str]:
    lot = _lot(_text(row, "lot"))
    started = _day(row, "started")
    figures: dict[str, Any] = {"ended": _day(row, "ended", required=False),
                               "fermentation_days": _number(row, "fermentation_days", whole=True),
                               "drying_days": _number(row, "drying_days", whole=True),
                               "drying_method": _text(row, "drying_method", required=False),
                               "cut_test_grade": _text(row, "cut_test_grade", required=False)}
    moisture = _text(row, "final_moisture_pct", required=False)
    if moisture:
        try:
            figures["final_moisture_pct"] = Decimal(moisture).quantize(Decimal("0.1"))
        except InvalidOperation:
            raise ValidationFailed(f"final_moisture_pct {moisture!r} is not a number") from None
    _, status = services.processing_record(lot=lot, started=started, actor=actor, **figures)
    return f"{lot.code}@{started}", status


def _shipment_row(row: dict, actor) -> tuple[str, str]:
    code = _text(row, "code")
    raw = row.get("lots")
    codes = raw if isinstance(raw, list) else [c.strip() for c in _text(row, "lots").split(";") if c.strip()]
    _, status = services.shipment_upsert(
        code=code, seller=_org(_text(row, "seller")), buyer=_org(_text(row, "buyer")),
        lots=[_lot(str(c)) for c in codes], date=_day(row, "date"),
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


def _one(number: int, row: dict, handler, actor) -> FeatureResult:
    result = FeatureResult(number=number, label=f"row {number}", status="refused")
    try:
        if "__error__" in row:
            raise ValidationFailed(row["__error__"])
        with transaction.atomic():  # a savepoint: a refused row leaves nothing behind
            result.code, result.status = handler(row, actor)
    except DomainError as exc:
        result.reason = exc.message
    return result


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
    with transaction.atomic():
        try:
            for number, row in read_rows(data, fmt, kind):
                if len(report.features) >= MAX_ROWS:
                    raise ValidationFailed(f"more than {MAX_ROWS} rows; split the file")
                report.features.append(_one(number, row, KINDS[kind], actor))
        except ValidationFailed as exc:
            report.error = exc.message
        except csv.Error as exc:
            report.error = f"the CSV cannot be read: {exc}"
        refused = report.counts["refused"]
        if not report.features and not report.error:
            report.error = "the file holds no rows"
        if dry_run or report.error or (refused and not partial):
            transaction.set_rollback(True)
        else:
            report.written = True
    if report.error:
        raise ImportRefused(f"{name}: {report.error}", report)
    if refused and not partial and not dry_run:
        raise ImportRefused(f"{name}: {refused} of {len(report.features)} rows refused; nothing was written "
                            "(fix them, or import the others with partial)", report)
    return report


def import_file(*, kind: str, path: Path, fmt: str | None = None, **options: Any) -> ImportReport:
    """import_rows on a file; the format from its suffix unless given."""
    fmt = fmt or path.suffix.lower().lstrip(".")
    return import_rows(kind=kind, data=path.read_bytes(), fmt=fmt, name=path.name, **options)
