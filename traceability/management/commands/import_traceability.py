"""chacra import-traceability KIND FILE: facilities, lots, deliveries, transfers,
processing events or shipments from CSV or JSON, with a per-row report."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from core.imports import ImportRefused, ImportReport
from traceability.imports import KINDS, import_file


class Command(BaseCommand):
    help = ("Import facilities, lots, deliveries (plot → lot), transfers (lot → lot merge/split/transform), "
            "processing events or shipments from a CSV or JSON file. One transaction: a refused row means "
            "nothing is written unless --partial; --dry-run reports and writes nothing; re-running is safe.")

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=list(KINDS))
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=["csv", "json"], help="default: from the file suffix")
        parser.add_argument("--dry-run", action="store_true", help="report what would happen; write nothing")
        parser.add_argument("--partial", action="store_true", help="write the rows that pass; report the others")

    def handle(self, *args, kind, file, format, dry_run, partial, **options):
        if not file.is_file():
            raise CommandError(f"{file}: file not found")
        try:
            report = import_file(kind=kind, path=file, fmt=format, dry_run=dry_run, partial=partial)
        except ImportRefused as exc:
            self._print(exc.report)
            raise CommandError(exc.message) from None
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self._print(report)

    def _print(self, report: ImportReport) -> None:
        for row in report.features:
            if row.status == "refused":
                self.stdout.write(f"  {row.label}: refused — {row.reason}")
        counts = ", ".join(f"{n} {k}" for k, n in report.counts.items())
        state = "dry run, nothing written" if report.dry_run else ("written" if report.written else "nothing written")
        self.stdout.write(f"{report.file} ({report.format}): {counts} — {state}")
