"""chacra import-plots: load plots and walked GPS tracks from a file."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from core.imports import ImportRefused
from plots.import_rules import COUNTRY_BOUNDS, DEFAULT_REPAIRS
from plots.importers import registry
from plots.imports import import_plots
from plots.models import Organization, Producer


class Command(BaseCommand):
    help = ("Import plots from GPX tracks, KML/KMZ, GeoJSON, GeoPackage, a zipped Shapefile, a CSV of points or an "
            "ODK/KoboToolbox CSV export. Each feature needs a plot code and a producer code property (or "
            "--producer). Upserts by plot code: an unchanged boundary makes no new version. One transaction: by "
            "default a single refused feature means nothing is written.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=registry.names(), help="the format, when the file name does not tell")
        parser.add_argument("--crs", type=int, metavar="EPSG",
                            help="EPSG code of the coordinates, for files that do not say (a .shp without .prj)")
        parser.add_argument("--organization", metavar="CODE", help="producers must belong to this organization")
        parser.add_argument("--producer", metavar="CODE", help="producer for features that name none")
        parser.add_argument("--code", help="the plot code, for a file holding one plot (e.g. one walked track)")
        parser.add_argument("--code-field", help="the property holding plot codes, when it is not one of the usual")
        parser.add_argument("--dry-run", action="store_true", help="report what would happen; write nothing")
        parser.add_argument("--partial", action="store_true",
                            help="write the features that pass and report the refused ones")
        parser.add_argument("--country", default="PE",
                            help=f"refuse plots outside this country ({', '.join(COUNTRY_BOUNDS)}; 'none' to "
                            "disable); default PE")
        parser.add_argument("--no-repair", action="store_true",
                            help=f"refuse invalid polygons instead of applying the named rules {DEFAULT_REPAIRS}")
        parser.add_argument("--closure-tolerance", type=float, default=25.0, metavar="M",
                            help="largest start–end gap (metres) closed automatically for walked tracks (25)")
        parser.add_argument("--no-checks", action="store_true", help="do not run the plot checks afterwards")
        path = parser.add_mutually_exclusive_group()
        path.add_argument("--bulk", dest="bulk", action="store_true", default=None,
                          help="take the set-based path for a GeoPackage, Shapefile or GeoJSON layer however small "
                          "(chosen by itself from 1,000 features; same rules and report)")
        path.add_argument("--per-feature", dest="bulk", action="store_false",
                          help="take the per-feature path even for a large layer")

    def handle(self, *args, **o):
        org = None
        if o["organization"]:
            org = Organization.objects.filter(code=o["organization"]).first()
            if org is None:
                raise CommandError(f"organization {o['organization']!r} does not exist")
        producer = None
        if o["producer"]:
            producer = Producer.objects.filter(code=o["producer"]).first()
            if producer is None:
                raise CommandError(f"producer {o['producer']!r} does not exist")
        if not o["file"].exists():
            raise CommandError(f"{o['file']}: file not found")
        try:
            report = import_plots(
                path=o["file"], fmt=o["format"], srid=o["crs"], organization=org, default_producer=producer,
                dry_run=o["dry_run"], partial=o["partial"],
                country=None if o["country"].lower() == "none" else o["country"].upper(),
                repair_rules=() if o["no_repair"] else DEFAULT_REPAIRS,
                closure_tolerance_m=o["closure_tolerance"], run_checks=not o["no_checks"], code=o["code"],
                code_field=o["code_field"], bulk=o["bulk"])
        except ImportRefused as exc:
            self._print(exc.report)
            raise CommandError(exc.message) from None
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self._print(report, o["verbosity"])

    # A layer this long is summarised: its created/unchanged lines are left out.
    SHOW_ALL_UP_TO = 200

    def _print(self, report, verbosity: int = 1) -> None:
        if report.error and not report.features:
            return  # the CommandError says it all
        every = verbosity >= 2 or len(report.features) <= self.SHOW_ALL_UP_TO
        hidden = 0
        for f in report.features:
            if not every and f.status in ("created", "unchanged") and not f.repairs:
                hidden += 1
                continue
            line = f"  {f.label:<28} {f.status:<9} {f.code or '-':<24}"
            if f.area_ha is not None:
                line += f" {f.area_ha:9.4f} ha"
            if f.reason:
                line += f"  {f.reason}"
            if f.repairs:
                line += f"  [repaired: {'; '.join(f.repairs)}]"
            q = f.quality or {}
            if q:
                line += (f"  [track: {q.get('points')} points, gap {q.get('closure_gap_m', 0):.1f} m, "
                         f"{q.get('duplicates_removed', 0)} duplicates, {q.get('spikes_removed', 0)} spikes removed"
                         + (f", {q['timestamps']['implausible']} implausible times" if q.get("timestamps", {}).get(
                             "implausible") else "") + "]")
            self.stdout.write(line)
        if hidden:
            self.stdout.write(f"  … {hidden} created or unchanged features not listed (-v 2 lists every feature)")
        counts = ", ".join(f"{n} {k}" for k, n in report.counts.items())
        state = "dry run, nothing written" if report.dry_run else ("written" if report.written else "nothing written")
        if report.features and report.counts["unchanged"] == len(report.features):
            # e.g. the second of two runs of one file: say so, rather than "written".
            state = "nothing to do: every plot already exists unchanged"
        self.stdout.write(f"{report.file} ({report.format}, {report.mode} path): {counts} — {state}")
        if report.checks:
            self.stdout.write(f"checks: {report.checks}")
