"""chacra load-protected-areas: SERNANP or WDPA protected areas and buffer zones."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from plots.errors import DomainError
from plots.models import ProtectedArea
from plots.reference import load_protected_areas


class Command(BaseCommand):
    help = ("Load protected areas from any file GDAL reads, in any CRS. SERNANP (anp_codi, anp_nomb, anp_cate …) "
            "and WDPA (WDPAID, NAME, DESIG_ENG) fields are recognised; the category comes from the designation "
            "unless --category is given (use buffer_zone for zonas de amortiguamiento). Reloading an edition "
            "replaces it in one transaction; the subdivided overlap table follows automatically.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--edition", required=True, help="version or date of the layer, e.g. sernanp-2026-07")
        parser.add_argument("--category", choices=[c for c, _ in ProtectedArea.Category.choices])
        parser.add_argument("--code-field")
        parser.add_argument("--name-field")
        parser.add_argument("--crs", type=int, metavar="EPSG", help="CRS of a file that does not say")
        parser.add_argument("--source", help="attribution stored with the areas (default: the file name)")

    def handle(self, *args, **o):
        try:
            report = load_protected_areas(o["file"], edition=o["edition"], category=o["category"],
                                          code_field=o["code_field"], name_field=o["name_field"], srid=o["crs"],
                                          source=o["source"])
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(report.summary())
