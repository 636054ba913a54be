"""chacra export: a layer to a file through GDAL (api.exports).

In api, beside the exports it drives: a domain app may not import api."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from api import exports
from api.params import parse_bbox
from plots.errors import DomainError


class Command(BaseCommand):
    help = ("Write a layer (plots, plot-points, protected-areas, districts) as GeoJSON, GeoPackage, zipped "
            "Shapefile, KML or zipped CSV (.csv, .csvt, .prj), through GDAL. One geometry type per layer: plots are "
            "the polygons, plot-points the plots surveyed as a point (a gpkg or shp plots export holds both, as "
            "layers plots and plot_points). Areas are written as polygons only; parts dropped for that are "
            "reported. Shapefile field names are shortened to 10 characters (declared_area_unit -> decl_unit …; "
            "see the README).")

    def add_arguments(self, parser):
        parser.add_argument("layer", choices=list(exports.LAYERS))
        parser.add_argument("--format", required=True, choices=list(exports.FORMATS))
        parser.add_argument("--out", type=Path, required=True,
                            help="the file to write (replaced if it exists); with --format csv, a name ending in "
                                 ".csv gets its .csvt and .prj beside it, any other name is a zip of the three")
        parser.add_argument("--bbox", help="only features meeting minlon,minlat,maxlon,maxlat (WGS 84)")

    def handle(self, *args, layer, format, out, bbox, **options):
        from django.contrib.auth.models import AnonymousUser

        class Operator(AnonymousUser):
            """The command line runs with the operator's rights: every plot."""

            is_authenticated = True
            is_superuser = True

        # GDAL does not write over a file; a .csv's .csvt and .prj are written beside it.
        sidecars = (".csvt", ".prj") if format == "csv" and out.suffix.lower() == ".csv" else ()
        for path in (out, *(out.with_suffix(s) for s in sidecars)):
            if path.exists():
                path.unlink()
        try:
            exported = exports.write(layer, format, Operator(), out, bbox=parse_bbox(bbox))
        except DomainError as exc:
            raise CommandError(exc.message) from None
        held = ", ".join(f"{n} {name}" for name, n in exported.layers.items())
        self.stdout.write(f"{out}: {held} ({format})")
        if exported.dropped:
            self.stdout.write(exported.dropped_sentence())
        for note in exported.notes:
            self.stdout.write(note)
