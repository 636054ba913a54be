"""chacra suggest-sites: where N new collection or post-harvest centres should go."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from insights import maps, sites
from plots.errors import DomainError


class Command(BaseCommand):
    help = ("Place N new collection or post-harvest centres so that estimated production travels least: a "
            "production-weighted p-median over geodesic distances, solved exactly (spopt + CBC), candidates "
            "outside protected areas, existing collection centres and fermentaries kept fixed. Prints the sites, "
            "the production each serves and the mean weighted distance before and after.")

    def add_arguments(self, parser):
        parser.add_argument("--n", type=int, default=3, help="new sites (1–20, default 3)")
        parser.add_argument("--no-existing", action="store_true", help="ignore the existing facilities")
        parser.add_argument("--organization", help="only this organization's plots and facilities")
        parser.add_argument("--resolution", type=int, default=7, help="H3 resolution of the demand cells (5–8)")
        parser.add_argument("--geojson", type=Path, help="write the GeoJSON here")
        parser.add_argument("--png", type=Path, help="write the PNG map here")

    def handle(self, *args, **o):
        try:
            suggestion = sites.suggest_sites(n=o["n"], keep_existing=not o["no_existing"],
                                             organization=o["organization"], resolution=o["resolution"],
                                             protected=not o["organization"])
        except DomainError as exc:
            raise CommandError(exc.message) from None
        doc = sites.to_geojson(suggestion)
        for site in suggestion.sites:
            kind = f"existing {site['code']}" if site["existing"] else "new"
            served = "fewer than k producers" if site["production_kg"] is None else \
                f"{site['production_kg'] / 1000:,.1f} t from {site['producers']} producers"
            self.stdout.write(f"  {kind:<24} {site['lat']:.5f}, {site['lon']:.5f}  serves {served}")
        before = "no facility" if suggestion.before_km is None else f"{suggestion.before_km:.1f} km"
        self.stdout.write(f"production-weighted mean distance: {before} -> {suggestion.after_km:.1f} km")
        if o["geojson"]:
            o["geojson"].write_text(json.dumps(doc, ensure_ascii=False))
            self.stdout.write(f"wrote {o['geojson']}")
        if o["png"]:
            o["png"].write_bytes(maps.sites_png(doc))
            self.stdout.write(f"wrote {o['png']}")
