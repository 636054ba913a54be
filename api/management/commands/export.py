"""chacra export: a layer to a file through GDAL (api.exports).

In api, beside the exports it drives: a domain app may not import api."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from api import exports
from api.params import parse_bbox
from plots.errors import DomainError


class Command(BaseCommand):
    help = ("Write a layer (plots, protected-areas, districts) as GeoJSON, GeoPackage, zipped Shapefile, KML or "
            "CSV, through GDAL. Plots surveyed as points go to a second layer (plot_points) where the format holds "
            "one geometry type per layer. Shapefile field names are shortened to 10 characters "
            "(declared_area_unit -> decl_unit …; see the README).")

    def add_arguments(self, parser):
        parser.add_argument("layer", choices=list(exports.LAYERS))
        parser.add_argument("--format", required=True, choices=list(exports.FORMATS))
        parser.add_argument("--out", type=Path, required=True, help="the file to write (replaced if it exists)")
        parser.add_argument("--bbox", help="only features meeting minlon,minlat,maxlon,maxlat (WGS 84)")

    def handle(self, *args, layer, format, out, bbox, **options):
        from django.contrib.auth.models import AnonymousUser

        class Operator(AnonymousUser):
            """The command line runs with the operator's rights: every plot."""

            is_authenticated = True
            is_superuser = True

        if out.exists():
            out.unlink()
        try:
            n = exports.write(layer, format, Operator(), out, bbox=parse_bbox(bbox))
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{out}: {n} {layer} ({format})")
