#!/usr/bin/env python
"""Record the responses of a fixed list of demo URLs, and compare two recordings.

    scripts/snapshot record NAME      # into .snapshots/NAME/
    scripts/snapshot compare A B      # exit 1 and list what differs

For a refactor that must not change behaviour: record before, change the code,
record after, compare. Both recordings read the same database (``chacra_snapshot``
in the private cluster, or DATABASE_URL's server), which is loaded with the demo
on first use and never regenerated, so timestamps in answers are the same on both
sides. Requests go through Django's test client in-process, as the role that uses
each route (the demo's users). Bytes are compared as served, except GeoPackage and
zipped Shapefile exports, whose files carry their creation time: those are read
back with GDAL and compared as their features.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / ".snapshots"
DATABASE = "chacra_snapshot"

# (role, path) — {plot}, {lot}, {point_plot} … are filled from the demo.
URLS = [
    ("technician", "/api/v1/plots?limit=50"),
    ("technician", "/api/v1/plots?bbox=-76.6,-8.3,-76.4,-8.1&limit=20"),
    ("technician", "/api/v1/plots/{plot}"),
    ("technician", "/api/v1/plots/{plot}/boundaries"),
    ("technician", "/api/v1/plots/{plot}/checks"),
    ("technician", "/api/v1/plots/{plot}/genetics"),
    ("cooperative", "/api/v1/plots?limit=20"),
    ("buyer", "/api/v1/plots?limit=20"),
    ("technician", "/api/v1/producers?limit=20"),
    ("cooperative", "/api/v1/producers?limit=20"),
    ("technician", "/api/v1/organizations"),
    ("technician", "/api/v1/admin-areas?level=department"),
    ("technician", "/api/v1/protected-areas"),
    ("technician", "/api/v1/rasters"),
    ("technician", "/api/v1/nurseries"),
    ("technician", "/api/v1/material-lots?limit=20"),
    ("technician", "/api/v1/material-lots/{material_lot}/lineage"),
    ("technician", "/api/v1/stats/grafting?by=region"),
    ("technician", "/api/v1/stats/grafting?by=district"),
    ("technician", "/api/v1/stats/grafting?by=clone"),
    ("investor", "/api/v1/stats/grafting?by=district"),
    ("technician", "/api/v1/lots"),
    ("buyer", "/api/v1/lots"),
    ("technician", "/api/v1/lots/{lot}"),
    ("technician", "/api/v1/lots/{lot}/origin"),
    ("buyer", "/api/v1/lots/{shipped_lot}/origin"),
    ("technician", "/api/v1/lots/{lot}/mass-balance"),
    ("technician", "/api/v1/lots/{lot}/eudr.geojson"),
    ("investor", "/api/v1/concentration"),
    ("investor", "/api/v1/concentration?grid=h3:6&metric=hectares"),
    ("investor", "/api/v1/concentration?grid=district&metric=producers"),
    ("investor", "/api/v1/concentration?grid=province&region=22"),
    ("technician", "/api/v1/concentration?grid=h3:7&metric=flagged_plots"),
    ("investor", "/api/v1/site-suggestions?n=2"),
    ("technician", "/ogc/collections"),
    ("investor", "/ogc/collections"),
    ("technician", "/ogc/collections/plots/items?limit=20"),
    ("technician", "/ogc/collections/plots/items/{plot}"),
    ("technician", "/ogc/collections/plot-points/items?limit=20"),
    ("technician", "/ogc/collections/plots/queryables"),
    ("technician", "/ogc/collections/plots/items?protected=fail&limit=20"),
    ("technician", "/ogc/collections/districts/items?limit=10"),
    ("technician", "/ogc/collections/protected-areas/items?limit=5"),
    ("technician", "/ogc/collections/nurseries/items?limit=10"),
    ("investor", "/ogc/collections/concentration/items"),
    ("technician", "/tiles/plots.json"),
    ("technician", "/tiles/plots/10/293/535.mvt"),
    ("technician", "/tiles/plots/8/73/133.mvt"),
    ("technician", "/tiles/plot-points/8/73/133.mvt"),
    ("technician", "/tiles/protected-areas/8/73/133.mvt"),
    ("technician", "/tiles/districts/8/73/133.mvt"),
    ("investor", "/tiles/concentration/8/73/133.mvt"),
    ("technician", "/api/v1/exports/plots?format=geojson"),
    ("technician", "/api/v1/exports/plots?format=csv"),
    ("technician", "/api/v1/exports/plots?format=kml"),
    ("technician", "/api/v1/exports/plots?format=gpkg"),
    ("technician", "/api/v1/exports/plot-points?format=geojson"),
    ("technician", "/api/v1/exports/protected-areas?format=geojson"),
]
FILE_FORMATS = ("format=gpkg", "format=shp", "format=csv")  # files carrying their creation time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/snapshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    record = sub.add_parser("record", help="record every URL's response into .snapshots/NAME")
    record.add_argument("name")
    compare = sub.add_parser("compare", help="compare two recordings; exit 1 if any response differs")
    compare.add_argument("before")
    compare.add_argument("after")
    args = parser.parse_args(argv)
    if args.command == "compare":
        return compare_recordings(SNAPSHOTS / args.before, SNAPSHOTS / args.after)
    return record_responses(SNAPSHOTS / args.name)


def setup() -> dict[str, str]:
    """Django on the snapshot database (loaded with the demo once); the fill-ins."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "scripts"))
    from benchmarks.harness import configured_url, ensure_bench_database

    url = ensure_bench_database(configured_url(), DATABASE)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chacra.settings")
    os.environ.setdefault("CHACRA_DEMO_DATA_DIR", str(ROOT / ".snapshots" / "demo-data"))
    import django

    django.setup()
    from django.core.management import call_command

    from plots.models import Organization

    call_command("migrate", verbosity=0)
    if not Organization.objects.filter(code__startswith="demo-").exists():
        print(f"loading the demo into {DATABASE} (once)")
        call_command("demo_data")
        call_command("check", "--all")
        call_command("screen")
    return fill_ins()


def fill_ins() -> dict[str, str]:
    from nurseries.models import MaterialLot
    from plots.models import Plot
    from traceability.models import ProductLot, Shipment

    plot = Plot.objects.filter(status="active", boundary__isnull=False).order_by("code").first()
    shipped = Shipment.objects.order_by("id").first()
    return {
        "plot": plot.code,
        "material_lot": MaterialLot.objects.order_by("code").first().code,
        "lot": ProductLot.objects.order_by("code").first().code,
        "shipped_lot": shipped.lots.order_by("code").first().code if shipped else "",
    }


def clients() -> dict:
    from django.contrib.auth.models import User
    from django.test import Client

    out = {}
    for role in ("technician", "cooperative", "buyer", "investor"):
        client = Client()
        client.force_login(User.objects.get(username="demo-coop" if role == "cooperative" else f"demo-{role}"))
        out[role] = client
    return out


def record_responses(folder: Path) -> int:
    fills = setup()
    by_role = clients()
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for n, (role, template) in enumerate(URLS, start=1):
        path = template.format(**fills)
        response = by_role[role].get(path, HTTP_HOST="localhost")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        if any(f in path for f in FILE_FORMATS) and response.status_code == 200:
            body = features_of(body, path)
        elif path.startswith("/ogc/") and response.status_code == 200:
            body = without_timestamp(body)
        name = f"{n:02d}.bin"
        (folder / name).write_bytes(body)
        manifest.append({"n": n, "role": role, "path": path, "status": response.status_code,
                         "content_type": response.get("Content-Type"), "sha256": hashlib.sha256(body).hexdigest(),
                         "bytes": len(body), "file": name})
        print(f"{response.status_code} {len(body):>9,} B  {role:<11} {path}")
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"recorded {len(manifest)} responses in {folder}")
    return 0


def features_of(body: bytes, path: str) -> bytes:
    """A GeoPackage's or a zipped Shapefile's layers and features as JSON (their files
    carry their creation time)."""
    import pyogrio

    suffix = ".gpkg" if "gpkg" in path else ".zip"
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"export{suffix}"
        target.write_bytes(body)
        for name, _ in pyogrio.list_layers(target):
            out[str(name)] = json.loads(pyogrio.read_dataframe(target, layer=name).to_json(sort_keys=True))
    return json.dumps(out, sort_keys=True).encode()


def without_timestamp(body: bytes) -> bytes:
    """An OGC API response without its ``timeStamp`` (the time of the request)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if isinstance(doc, dict) and "timeStamp" in doc:
        doc["timeStamp"] = "(removed)"
        return json.dumps(doc, sort_keys=True).encode()
    return body


def compare_recordings(before: Path, after: Path) -> int:
    a = json.loads((before / "manifest.json").read_text())
    b = json.loads((after / "manifest.json").read_text())
    differ = 0
    for x, y in zip(a, b):
        same = (x["path"], x["role"], x["status"], x["content_type"], x["sha256"]) == \
               (y["path"], y["role"], y["status"], y["content_type"], y["sha256"])
        if not same:
            differ += 1
            print(f"DIFFERS  {x['role']:<11} {x['path']}  ({x['status']} {x['bytes']:,} B → "
                  f"{y['status']} {y['bytes']:,} B)")
    if len(a) != len(b):
        differ += 1
        print(f"DIFFERS  the recordings hold {len(a)} and {len(b)} responses")
    print(f"{len(a) - differ} of {len(a)} responses byte-identical" if differ else
          f"all {len(a)} responses byte-identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
