"""Imports of the CSV sheets cooperatives keep: lots, dispatches, graftings.

The same machinery as every import (core.imports): each row is reported as created /
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
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.imports import (ImportLock, ImportRefused, ImportReport, RowResult, code_in_use, file_digest, import_row,
                          parse_date, parse_decimal, parse_int, public_reason, refuse_file, run_import)
from nurseries import services
from nurseries.models import Clone, Dispatch, Grafting, MaterialLot
from plots import geometry, roles
from plots.errors import Forbidden, ValidationFailed

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


# The refusal's name here before the machinery was shared (callers catch it by it).
SheetRefused = ImportRefused


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

    # The cells by the shared parsers (core.imports): the same forms as in every import.
    def integer(self, name: str, *, required: bool = True) -> int | None:
        return parse_int(self.text(name, required=required), name, negative=False)

    def day(self, name: str, *, required: bool = True) -> date | None:
        return parse_date(self.text(name, required=required), name)

    def hectares(self, name: str) -> Decimal | None:
        return parse_decimal(self.text(name), name, what="a number of hectares")


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


def _import_rows(records: list[dict[str, str]], handler, actor, report: ImportReport) -> None:
    """Every row in its savepoint (core.imports.import_row); run_import keeps, or rolls
    back, the whole."""
    for number, values in enumerate(records, start=2):
        report.rows.append(import_row(RowResult(number=number), lambda: handler(Row(values), actor)))


def import_sheet(*, sheet: str, path: Path, actor=None, dry_run: bool = False, partial: bool = False,
                 display_name: str | None = None) -> ImportReport:
    """Import one sheet (``lots``, ``dispatches`` or ``graftings``). Raises ImportRefused
    (with the report) when nothing was written because of the file or a refused row."""
    if sheet not in HANDLERS:
        raise ValidationFailed(f"sheet must be one of {', '.join(SHEETS)} (got {sheet!r})")
    if actor is not None and not roles.can_write_at_all(actor):
        raise Forbidden("your role cannot import nursery sheets")
    name = display_name or Path(path).name
    report = ImportReport(file=name, sheet=sheet, layout="rows", dry_run=dry_run, partial=partial)
    try:
        records = _read(path)
        digest = file_digest(Path(path))
    except (OSError, ValidationFailed, csv.Error) as exc:
        refuse_file(report, public_reason(getattr(exc, "message", None) or getattr(exc, "strerror", None)
                                          or str(exc), Path(path), name))
    lock = ImportLock(what=f"nursery-{sheet}", digest=digest, organization_id=_org_id(actor), name=name)
    return run_import(report=report, lock=lock, empty="the sheet holds no rows",
                      write=lambda report: _import_rows(records, HANDLERS[sheet], actor, report))
