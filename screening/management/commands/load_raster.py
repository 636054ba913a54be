"""chacra load-raster: register satellite tiles (GeoTIFF/COG) in the raster catalog."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from plots.errors import DomainError
from screening.catalog import PRODUCT_BANDS, raster_load
from screening.models import RasterTile


def _bands(text: str) -> dict[str, int]:
    try:
        pairs = [item.split("=", 1) for item in text.split(",") if item]
        return {name.strip(): int(number) for name, number in pairs}
    except ValueError:
        raise CommandError(f"--bands must look like red=3,nir=4 (got {text!r})") from None


class Command(BaseCommand):
    help = (
        "Register GeoTIFF/COG tiles of a satellite product for deforestation screening: CRS, grid, bands, "
        "footprint in WGS 84 and file location (the file is not copied; screening workers read it where it is). "
        "Files that GDAL cannot read, that are truncated, lack a CRS or declare absurd sizes are refused, and "
        "then nothing is registered. Registering a file again for the same product and version updates it. "
        "Products: " + "; ".join(f"{value} = {label}" for value, label in RasterTile.Product.choices) + "."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names the product edition here; Django's own --version (its
        # release) gives way to it.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE", help="GeoTIFF or COG files, any CRS")
        parser.add_argument("--product", required=True, choices=RasterTile.Product.values)
        parser.add_argument("--version", dest="product_version", required=True, metavar="VERSION",
                            help="product edition, e.g. v1.11 (Hansen GFC-2023)")
        parser.add_argument("--acquired", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                            help="acquisition or reference date (scenes; the TMF forest year)")
        parser.add_argument("--bands", type=_bands, metavar="NAME=N,…",
                            help="band meanings, 1-based; multispectral default "
                            f"{','.join(f'{k}={v}' for k, v in PRODUCT_BANDS['multispectral'].items())}")

    def handle(self, *args, files, product, product_version, acquired, bands, **options):
        try:
            tiles = raster_load(paths=files, product=product, version=product_version, acquired=acquired,
                                bands=bands)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        for tile in tiles:
            self.stdout.write(f"  {tile.path}: EPSG:{tile.srid or '?'} {tile.width}×{tile.height} cells of "
                              f"{tile.resolution_x:g}×{tile.resolution_y:g}, {tile.band_count} band(s) "
                              f"{tile.bands}")
        self.stdout.write(self.style.SUCCESS(f"{len(tiles)} {product} {product_version} tile(s) registered"))
