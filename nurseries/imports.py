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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.db import transaction

from nurseries import services
from nurseries.models import Clone, Dispatch, Grafting, MaterialLot, Nursery
from plots import geometry, roles
from plots.errors import DomainError, Forbidden, ValidationFailed
from plots.models import Plot

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


def _lookup(model, code: str, what: str):
    if not code:
        return None
    found = model.objects.filter(code=code).first()
    if found is None:
        raise ValidationFailed(f"{what} {code!r} is not registered")
    return found


def _kind(value: str) -> str:
    kind = KIND_WORDS.get(value.lower().replace(" ", "_"), value.lower())
    if kind not in MaterialLot.Kind.values:
        raise ValidationFailed(f"kind {value!r} is not one of {', '.join(MaterialLot.Kind.values)} "
                               f"(or {', '.join(KIND_WORDS)})")
    return kind


def _parents(value: str) -> list[tuple[MaterialLot, int]]:
    out = []
    for part in filter(None, (p.strip() for p in value.split(";"))):
        code, _, units = part.rpartition(":")
        if not code or not units.strip().isdigit():
            raise ValidationFailed(f"parents must be written LOT:units;LOT:units (got {part!r})")
        out.append((_lookup(MaterialLot, code.strip(), "parent lot"), int(units)))
    return out


# --------------------------------------------------------------------------- one row per sheet


def _differs(obj, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if getattr(obj, k) != v}


def _lot_row(row: Row, actor) -> tuple[str, str]:
    code = row.text("code", required=True)
    values = {
        "kind": _kind(row.text("kind", required=True)), "species": row.text("species") or "Theobroma cacao",
        "clone": _lookup(Clone, row.text("clone"), "clone"), "quantity": row.integer("quantity"),
        "produced_on": row.day("produced_on"), "nursery": _lookup(Nursery, row.text("nursery"), "nursery"),
        "source_plot": _lookup(Plot, row.text("source_plot"), "plot"), "notes": row.text("notes"),
    }
    parents = _parents(row.text("parents"))
    lot = MaterialLot.objects.filter(code=code).first()
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
        "lot": _lookup(MaterialLot, row.text("lot", required=True), "lot"), "quantity": row.integer("quantity"),
        "dispatched_on": row.day("dispatched_on"), "to_plot": _lookup(Plot, row.text("to_plot"), "plot"),
        "to_nursery": _lookup(Nursery, row.text("to_nursery"), "nursery"),
    }
    dispatch = Dispatch.objects.filter(code=code).first()
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
        "plot": _lookup(Plot, row.text("plot", required=True), "plot"), "grafted_on": row.day("grafted_on"),
        "clone": _lookup(Clone, row.text("clone", required=True), "clone"), "grafts": row.integer("grafts"),
        "budwood_lot": _lookup(MaterialLot, row.text("budwood_lot"), "lot"),
        "survivors": row.integer("survivors", required=False),
        "survivors_counted_on": row.day("survivors_counted_on", required=False),
    }
    hectares = row.hectares("grafted_ha")
    if area is None and hectares is None:
        raise ValidationFailed("gives neither grafted_ha nor the grafted area")
    grafting = Grafting.objects.filter(code=code).first()
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
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("the file is not UTF-8 text; save the sheet as CSV UTF-8") from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(f"the sheet has {len(rows)} rows; at most {MAX_ROWS} are imported at once")
    return rows


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
    except (OSError, ValidationFailed) as exc:
        report.error = getattr(exc, "message", None) or str(exc)
        raise SheetRefused(f"{name}: {report.error}", report) from None
    handler = HANDLERS[sheet]
    with transaction.atomic():
        for number, values in enumerate(records, start=2):
            result = RowResult(number=number, status="refused")
            try:
                with transaction.atomic():  # a savepoint: a refused row leaves nothing behind
                    result.code, result.status = handler(Row(values), actor)
            except DomainError as exc:
                result.reason = exc.message
            report.rows.append(result)
        refused = report.counts["refused"]
        if not report.rows:
            report.error = "the sheet holds no rows"
        if dry_run or report.error or (refused and not partial):
            transaction.set_rollback(True)
        else:
            report.written = True
    if report.error:
        raise SheetRefused(f"{name}: {report.error}", report)
    if refused and not partial and not dry_run:
        raise SheetRefused(f"{name}: {refused} of {len(report.rows)} rows refused; nothing was written "
                           "(fix them, or import the others with --partial)", report)
    return report
