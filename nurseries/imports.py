"""Imports of the CSV sheets cooperatives keep: lots, dispatches, graftings.

The same contract as plot imports (plots.imports): each row is reported as created /
updated / unchanged / refused with its reason; the import is one transaction and,
unless ``partial``, any refused row means nothing is written; ``dry_run`` runs
everything and rolls back. Rows are upserted by their code, so re-running a sheet
reports every row unchanged. Every write goes through nurseries.services, so the
rules (conservation, acyclic lineage, dates, grafting inside the plot) are the same.

Column names are matched without case, in English or in the Spanish the sheets use
(codigo, tipo, clon, cantidad, fecha, vivero, parcela …). Dates are YYYY-MM-DD or
DD/MM/YYYY. A lot's parents are written ``LOT-A:300;LOT-B:60`` (lot code : units).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.db import IntegrityError, OperationalError, transaction

from nurseries import services
from nurseries.models import Clone, Dispatch, Grafting, MaterialLot
from plots import geometry, roles
from plots.errors import DomainError, Forbidden, ValidationFailed
from plots.imports import (RACE_REASON, code_in_use, file_digest, import_guard, public_reason, timed_out,
                           timeout_reason)

SHEETS = ("lots", "dispatches", "graftings")
MAX_ROWS = 200_000

COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "codigo", "código", "codigo_lote", "guia", "guía", "registro"),
    "kind": ("kind", "tipo"),
    "species": ("species", "especie"),
    "clone": ("clone", "clon"),
    "quantity": ("quantity", "cantidad", "plantas"),
    "produced_on": ("produced_on", "fecha_produccion", "fecha"),
    "nursery": ("nursery", "vivero"),
    "source_plot": ("source_plot", "parcela_madre"),
    "parents": ("parents", "lotes_padre", "padres"),
    "notes": ("notes", "notas", "observaciones"),
    "lot": ("lot", "lote"),
    "dispatched_on": ("dispatched_on", "fecha_envio", "fecha"),
    "to_plot": ("to_plot", "parcela", "parcela_destino"),
    "to_nursery": ("to_nursery", "vivero_destino"),
    "plot": ("plot", "parcela"),
    "grafted_on": ("grafted_on", "fecha_injerto", "fecha"),
    "budwood_lot": ("budwood_lot", "lote_vareta", "lote_varetas"),
    "grafts": ("grafts", "injertos"),
    "grafted_ha": ("grafted_ha", "ha_injertadas", "hectareas"),
    "area": ("area", "area_wkt", "poligono"),
    "survivors": ("survivors", "prendidos", "sobrevivientes"),
    "survivors_counted_on": ("survivors_counted_on", "fecha_conteo"),
}

KIND_WORDS = {
    "semilla": "seed", "patron": "rootstock_seedling", "patrón": "rootstock_seedling", "plantones": "rootstock_seedling",
    "vareta": "budwood", "varetas": "budwood", "injertado": "grafted_plant", "plantas_injertadas": "grafted_plant",
    "sombra": "shade_tree_seedling", "hijuelo": "plantain_sucker", "hijuelos": "plantain_sucker",
}


@dataclass
class RowResult:
    number: int  # the line in the file (the header is line 1)
    status: str  # created | updated | unchanged | refused
    code: str | None = None
    reason: str | None = None


@dataclass
class SheetReport:
    file: str
    sheet: str
    dry_run: bool
    partial: bool
    rows: list[RowResult] = field(default_factory=list)
    written: bool = False
    error: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        out = {"created": 0, "updated": 0, "unchanged": 0, "refused": 0}
        for row in self.rows:
            out[row.status] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sheet": self.sheet, "dry_run": self.dry_run, "partial": self.partial,
                "written": self.written, "error": self.error, "counts": self.counts,
                "rows": [asdict(r) for r in self.rows]}


class SheetRefused(DomainError):
    """Nothing was written; carries the report."""

    status = 400
    code = "import_refused"

    def __init__(self, message: str, report: SheetReport) -> None:
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------- cell parsing


class Row:
    """One CSV row, read by canonical column name."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = {str(k).strip().lower(): (v or "").strip() for k, v in values.items() if k is not None}

    def text(self, name: str, *, required: bool = False) -> str:
        for key in COLUMNS[name]:
            if self.values.get(key):
                return self.values[key]
        if required:
            raise ValidationFailed(f"has no {name} (a column among: {', '.join(COLUMNS[name])})")
        return ""

    def integer(self, name: str, *, required: bool = True) -> int | None:
        value = self.text(name, required=required)
        if not value:
            return None
        try:
            number = int(value.replace(",", "").replace(" ", ""))
        except ValueError:
            raise ValidationFailed(f"{name} must be a whole number (got {value!r})") from None
        if number < 0:
            raise ValidationFailed(f"{name} cannot be negative (got {number})")
        return number

    def day(self, name: str, *, required: bool = True) -> date | None:
        value = self.text(name, required=required)
        if not value:
            return None
        for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                return datetime.strptime(value, fmt).date()
            except ValueError:
                continue
        raise ValidationFailed(f"{name} must be a date written YYYY-MM-DD or DD/MM/YYYY (got {value!r})")

    def hectares(self, name: str) -> Decimal | None:
        value = self.text(name).replace(",", ".")
        if not value:
            return None
        try:
            return Decimal(value)
        except InvalidOperation:
            raise ValidationFailed(f"{name} must be a number of hectares (got {value!r})") from None


def _lookup(kind: str, code: str, what: str, actor):
    """The record of ``kind`` (plot, lot, nursery, clone) with ``code`` among those the
    actor reads: another organization's record is refused in the words of a missing one."""
    if not code:
        return None
    records = Clone.objects.all() if kind == "clone" else services.readable(actor, kind)
    found = records.filter(code=code).first()
    if found is None:
        raise services.unknown_code(what, code)
    return found


def _existing(model, code: str, what: str, actor, readable: dict):
    """The record a row upserts: one the actor reads, or None for a new code. A code
    held by a record the actor cannot read is refused without saying whose it is."""
    if actor is None or roles.is_staff_role(actor):  # they read every record
        return model.objects.filter(code=code).first()
    found = model.objects.filter(code=code, **readable).first()
    if found is None and model.objects.filter(code=code).exists():
        raise code_in_use(what, code)
    return found


def _kind(value: str) -> str:
    kind = KIND_WORDS.get(value.lower().replace(" ", "_"), value.lower())
    if kind not in MaterialLot.Kind.values:
        raise ValidationFailed(f"kind {value!r} is not one of {', '.join(MaterialLot.Kind.values)} "
                               f"(or {', '.join(KIND_WORDS)})")
    return kind


def _parents(value: str, actor) -> list[tuple[MaterialLot, int]]:
    out = []
    for part in filter(None, (p.strip() for p in value.split(";"))):
        code, _, units = part.rpartition(":")
        if not code or not units.strip().isdigit():
            raise ValidationFailed(f"parents must be written LOT:units;LOT:units (got {part!r})")
        out.append((_lookup("lot", code.strip(), "parent lot", actor), int(units)))
    return out


# --------------------------------------------------------------------------- one row per sheet


def _differs(obj, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if getattr(obj, k) != v}


def _lot_row(row: Row, actor) -> tuple[str, str]:
    code = row.text("code", required=True)
    values = {
        "kind": _kind(row.text("kind", required=True)), "species": row.text("species") or "Theobroma cacao",
        "clone": _lookup("clone", row.text("clone"), "clone", actor), "quantity": row.integer("quantity"),
        "produced_on": row.day("produced_on"), "nursery": _lookup("nursery", row.text("nursery"), "nursery", actor),
        "source_plot": _lookup("plot", row.text("source_plot"), "plot", actor), "notes": row.text("notes"),
    }
    parents = _parents(row.text("parents"), actor)
    lot = _existing(MaterialLot, code, "lot", actor, {"pk__in": services.readable(actor, "lot").values("pk")})
    if lot is None:
        services.lot_create(code=code, parents=parents, actor=actor, **values)
        return code, "created"
    changes = _differs(lot, values)
    same_parents = sorted((p.pk, q) for p, q in parents) == sorted(lot.parent_edges.values_list("parent_id", "quantity"))
    if not changes and same_parents:
        return code, "unchanged"
    services.lot_update(lot=lot, parents=None if same_parents else parents, actor=actor, **changes)
    return code, "updated"


def _dispatch_row(row: Row, actor) -> tuple[str, str]:
    code = row.text("code", required=True)
    values = {
        "lot": _lookup("lot", row.text("lot", required=True), "lot", actor), "quantity": row.integer("quantity"),
        "dispatched_on": row.day("dispatched_on"), "to_plot": _lookup("plot", row.text("to_plot"), "plot", actor),
        "to_nursery": _lookup("nursery", row.text("to_nursery"), "nursery", actor),
    }
    dispatch = _existing(Dispatch, code, "dispatch", actor,
                         {"lot__in": services.readable(actor, "lot").values("pk")})
    if dispatch is None:
        services.dispatch_create(code=code, actor=actor, **values)
        return code, "created"
    changes = _differs(dispatch, values)
    if not changes:
        return code, "unchanged"
    services.dispatch_update(dispatch=dispatch, actor=actor, **changes)
    return code, "updated"


def _area(text: str):
    if not text:
        return None
    try:
        return geometry.to_multipolygon(geometry.parse_geometry(text, srid=4326))
    except geometry.GeometryError as exc:
        raise ValidationFailed(f"area: {exc.reason}") from None


def _grafting_row(row: Row, actor) -> tuple[str, str]:
    code = row.text("code", required=True)
    area = _area(row.text("area"))
    values = {
        "plot": _lookup("plot", row.text("plot", required=True), "plot", actor), "grafted_on": row.day("grafted_on"),
        "clone": _lookup("clone", row.text("clone", required=True), "clone", actor), "grafts": row.integer("grafts"),
        "budwood_lot": _lookup("lot", row.text("budwood_lot"), "lot", actor),
        "survivors": row.integer("survivors", required=False),
        "survivors_counted_on": row.day("survivors_counted_on", required=False),
    }
    hectares = row.hectares("grafted_ha")
    if area is None and hectares is None:
        raise ValidationFailed("gives neither grafted_ha nor the grafted area")
    grafting = _existing(Grafting, code, "grafting", actor,
                         {"plot__in": services.readable(actor, "plot").values("pk")})
    if grafting is None:
        services.grafting_create(code=code, area=area, grafted_ha=hectares, actor=actor, **values)
        return code, "created"
    changes = _differs(grafting, values)
    if area is not None and (grafting.area is None or not grafting.area.equals_exact(area, tolerance=1e-10)):
        changes["area"] = area
    elif area is None and (grafting.area is not None or grafting.grafted_ha != hectares.quantize(services.HA_QUANTUM)):
        changes.update(area=None, grafted_ha=hectares)
    if not changes:
        return code, "unchanged"
    services.grafting_update(grafting=grafting, actor=actor, **changes)
    return code, "updated"


HANDLERS: dict[str, Callable[[Row, Any], tuple[str, str]]] = {
    "lots": _lot_row, "dispatches": _dispatch_row, "graftings": _grafting_row,
}


# --------------------------------------------------------------------------- the sheet


def _read(path: Path) -> list[dict[str, str]]:
    """The sheet's rows, refused before any is imported when there are more than
    MAX_ROWS (reading stops at the first row over)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("the file is not UTF-8 text; save the sheet as CSV UTF-8") from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(itertools.islice(csv.DictReader(io.StringIO(text, newline=""), dialect=dialect), MAX_ROWS + 1))
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(f"the sheet has more than {MAX_ROWS:,} rows; at most {MAX_ROWS:,} are imported at "
                               "once: split it")
    return rows


def _org_id(actor) -> int | None:
    org = roles.organization_of(actor) if actor is not None else None
    return org.id if org else None


def _import_rows(records: list[dict[str, str]], handler, actor, report: SheetReport) -> None:
    """Every row in its savepoint; then keep, or roll back, the whole (see import_sheet)."""
    for number, values in enumerate(records, start=2):
        result = RowResult(number=number, status="refused")
        try:
            with transaction.atomic():  # a savepoint: a refused row leaves nothing behind
                result.code, result.status = handler(Row(values), actor)
        except DomainError as exc:
            result.reason = exc.message
        except IntegrityError:  # another import wrote this code meanwhile
            result.reason = RACE_REASON
        report.rows.append(result)
    if not report.rows:
        report.error = "the sheet holds no rows"
    if report.dry_run or report.error or (report.counts["refused"] and not report.partial):
        transaction.set_rollback(True)
    else:
        report.written = True


def import_sheet(*, sheet: str, path: Path, actor=None, dry_run: bool = False, partial: bool = False,
                 display_name: str | None = None) -> SheetReport:
    """Import one sheet (``lots``, ``dispatches`` or ``graftings``). Raises SheetRefused
    (with the report) when nothing was written because of the file or a refused row."""
    if sheet not in HANDLERS:
        raise ValidationFailed(f"sheet must be one of {', '.join(SHEETS)} (got {sheet!r})")
    if actor is not None and not roles.can_write_at_all(actor):
        raise Forbidden("your role cannot import nursery sheets")
    name = display_name or Path(path).name
    report = SheetReport(file=name, sheet=sheet, dry_run=dry_run, partial=partial)
    try:
        records = _read(path)
        digest = file_digest(Path(path))
    except (OSError, ValidationFailed, csv.Error) as exc:
        report.error = public_reason(getattr(exc, "message", None) or getattr(exc, "strerror", None) or str(exc),
                                     Path(path), name)
        raise SheetRefused(f"{name}: {report.error}", report) from None
    try:
        with transaction.atomic():
            import_guard(what=f"nursery-{sheet}", digest=digest, organization_id=_org_id(actor), name=name)
            _import_rows(records, HANDLERS[sheet], actor, report)
    except OperationalError as exc:
        if not timed_out(exc):
            raise
        report.error, report.rows, report.written = timeout_reason(), [], False
        raise SheetRefused(f"{name}: {report.error}", report) from None
    refused = report.counts["refused"]
    if report.error:
        raise SheetRefused(f"{name}: {report.error}", report)
    if refused and not partial and not dry_run:
        raise SheetRefused(f"{name}: {refused} of {len(report.rows)} rows refused; nothing was written "
                           "(fix them, or import the others with --partial)", report)
    return report
