"""chacra load-clones: load or refresh the reference list of cacao clones."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from nurseries.services import FIXTURES, clones_load
from plots.errors import DomainError


class Command(BaseCommand):
    help = ("Upsert cacao clones (code, name, fine_flavour, origin, notes) from a CSV; by default the reference "
            "list in fixtures/clones.csv (ICS-95, CCN-51, TSH-565 …).")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, nargs="?", default=FIXTURES / "clones.csv")

    def handle(self, *args, file: Path, **options):
        if not file.exists():
            raise CommandError(f"{file}: file not found")
        try:
            counts = clones_load(path=file)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"clones: {counts.created} created, {counts.updated} updated, {counts.unchanged} unchanged")
