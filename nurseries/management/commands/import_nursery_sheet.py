"""chacra import-nursery-sheet: load a cooperative's CSV sheet of lots, dispatches or graftings."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from core.imports import ImportRefused, ImportReport
from nurseries.imports import SHEETS, import_sheet


class Command(BaseCommand):
    help = ("Import a CSV sheet of nursery lots, dispatches or graftings (English or Spanish column names; "
            "dates YYYY-MM-DD or DD/MM/YYYY). Upserts by code, so a re-run reports every row unchanged. One "
            "transaction: by default a single refused row means nothing is written.")

    def add_arguments(self, parser):
        parser.add_argument("sheet", choices=SHEETS, help="what the sheet holds")
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="report what would happen; write nothing")
        parser.add_argument("--partial", action="store_true", help="write the rows that pass, report the others")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, sheet, file, dry_run, partial, json: bool, **options):
        if not file.exists():
            raise CommandError(f"{file}: file not found")
        try:
            report = import_sheet(sheet=sheet, path=file, dry_run=dry_run, partial=partial)
        except ImportRefused as exc:
            self._print(exc.report, json)
            raise CommandError(exc.message) from None
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self._print(report, json)

    def _print(self, report: ImportReport, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        for row in report.rows:
            line = f"  line {row.number:<6} {row.status:<9} {row.code or '-':<24}"
            self.stdout.write(line + (f"  {row.reason}" if row.reason else ""))
        counts = report.counts
        verb = "would write" if report.dry_run else ("wrote" if report.written else "wrote nothing:")
        self.stdout.write(f"{report.file}: {verb} {counts['created']} created, {counts['updated']} updated, "
                          f"{counts['unchanged']} unchanged, {counts['refused']} refused")
