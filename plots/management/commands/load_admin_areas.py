"""chacra load-admin-areas: INEI departments, provinces or districts of one edition."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from plots.errors import DomainError
from plots.reference import load_admin_areas


class Command(BaseCommand):
    help = ("Load one level of an administrative boundary edition (INEI UBIGEO codes) from any file GDAL reads "
            "(GeoJSON, GeoPackage, Shapefile or zipped Shapefile …), in any CRS. Parents come from the UBIGEO "
            "prefix. Reloading an edition replaces it in one transaction; plots are then re-assigned to districts.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--level", required=True, choices=["department", "province", "district"])
        parser.add_argument("--edition", required=True, type=int, help="year of the edition, e.g. 2007 or 2023")
        parser.add_argument("--code-field", help="field holding the UBIGEO (detected for INEI files)")
        parser.add_argument("--name-field", help="field holding the name (detected for INEI files)")
        parser.add_argument("--crs", type=int, metavar="EPSG", help="CRS of a file that does not say")
        parser.add_argument("--source", help="attribution stored with the areas (default: the file name)")

    def handle(self, *args, **o):
        if not 1900 <= o["edition"] <= 2100:
            raise CommandError("--edition must be a year such as 2007")
        try:
            report = load_admin_areas(o["file"], level=o["level"], edition=o["edition"], code_field=o["code_field"],
                                      name_field=o["name_field"], srid=o["crs"], source=o["source"])
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(report.summary())
