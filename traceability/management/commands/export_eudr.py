"""chacra export-eudr LOT… [--out DIR]: the EUDR geolocation GeoJSON of each lot."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from plots.errors import DomainError
from traceability import eudr
from traceability.models import ProductLot


class Command(BaseCommand):
    help = ("Write the EU due-diligence geolocation file(s) of each lot (../shared/EUDR.md): one Feature per "
            "plot reaching the lot, split into files of at most 25 MB and 1,000 producers. A plot that cannot "
            "be exported is named with the reason and nothing is written for that lot.")

    def add_arguments(self, parser):
        parser.add_argument("lots", nargs="+", metavar="LOT", help="lot codes")
        parser.add_argument("--out", type=Path, default=Path("."), help="directory (default: current)")
        parser.add_argument("--hide-names", action="store_true", help="leave ProducerName out")
        parser.add_argument("--max-bytes", type=int, default=eudr.MAX_BYTES, help="per file (default 25 MB)")
        parser.add_argument("--max-producers", type=int, default=eudr.MAX_PRODUCERS,
                            help="per file (default 1000)")

    def handle(self, *args, lots, out, hide_names, max_bytes, max_producers, **options):
        if max_bytes < 1000 or max_producers < 1:
            raise CommandError("--max-bytes must be at least 1000 and --max-producers at least 1")
        found = {lot.code: lot for lot in ProductLot.objects.filter(code__in=lots)}
        missing = [code for code in lots if code not in found]
        if missing:
            raise CommandError(f"no such lot: {', '.join(missing)}")
        out.mkdir(parents=True, exist_ok=True)
        failures = []
        for code in lots:
            try:
                export = eudr.export_lot(found[code], names=not hide_names, max_bytes=max_bytes,
                                         max_producers=max_producers)
            except DomainError as exc:
                failures.append(exc.message)
                self.stderr.write(exc.message)
                continue
            paths = self._write(out, code, export.files)
            self.stdout.write(f"{code}: {export.plots} plots of {len(export.producers)} producers → "
                              + ", ".join(str(p) for p in paths))
        if failures:
            raise CommandError(f"{len(failures)} of {len(lots)} lots could not be exported")

    @staticmethod
    def _write(out: Path, code: str, files: list[bytes]) -> list[Path]:
        paths = []
        for i, body in enumerate(files, start=1):
            name = f"{code}.geojson" if len(files) == 1 else f"{code}-part{i}of{len(files)}.geojson"
            path = out / name
            path.write_bytes(body)
            paths.append(path)
        return paths
