"""chacra concentration: the investors' concentration map as GeoJSON and/or PNG."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from insights import concentration, maps
from plots.errors import DomainError


class Command(BaseCommand):
    help = ("Aggregate the active plots by H3 cell (h3:5 … h3:9) or by district / province / department over "
            "privacy units of at least k producers (what investors get; --organization, --clone, --planting-year "
            "and --k give the technicians' view, which is not for investors), "
            "and write a GeoJSON ready for a choropleth (class breaks included) and/or a PNG map with legend, "
            "scale bar, north arrow and district outlines. Metrics: " + ", ".join(concentration.METRICS) + ".")

    def add_arguments(self, parser):
        parser.add_argument("--metric", default="fine_flavour_ha", choices=list(concentration.METRICS))
        parser.add_argument("--grid", default="h3:7", help="h3:5 … h3:9, district, province or department (h3:7)")
        parser.add_argument("--k", type=int, help="fewest producers per area shown (default CHACRA_PRIVACY_K)")
        parser.add_argument("--organization", help="organization code")
        parser.add_argument("--clone", help="only plots carrying this clone (e.g. ICS-95)")
        parser.add_argument("--planting-year", help="a year (2016) or a range (2014..2018)")
        parser.add_argument("--region", help="department UBIGEO or name")
        parser.add_argument("--geojson", type=Path, help="write the GeoJSON here")
        parser.add_argument("--png", type=Path, help="write the PNG map here")
        parser.add_argument("--title", help="title of the PNG map")

    def handle(self, *args, **o):
        if not o["geojson"] and not o["png"]:
            raise CommandError("say where to write: --geojson FILE and/or --png FILE")
        try:
            result = concentration.concentration(
                metric=o["metric"], grid=o["grid"], k=o["k"], organization=o["organization"], clone=o["clone"],
                planting_year=o["planting_year"], region=o["region"],
                protected=not any(o[n] for n in ("k", "organization", "clone", "planting_year")))
            doc = concentration.to_geojson(result)
            if o["geojson"]:
                o["geojson"].write_text(json.dumps(doc, ensure_ascii=False))
            if o["png"]:
                o["png"].write_bytes(maps.choropleth_png(doc, title=o["title"]))
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{len(doc['features'])} areas over {result.units} privacy units of at least "
                          f"{result.k} producers; {o['metric']} class breaks {doc['classes']['breaks']}")
        for path in (o["geojson"], o["png"]):
            if path:
                self.stdout.write(f"wrote {path}")
