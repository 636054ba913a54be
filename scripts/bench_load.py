#!/usr/bin/env python
"""Benchmark loading plots from a GeoPackage: the importer against ogr2ogr.

Run through the dispatcher: ``scripts/bench load [options]``.

What is measured (best of --repeat), on one generated GeoPackage of N polygons:

  ogr2ogr        ``ogr2ogr -f PostgreSQL`` loading the file into a new table (GDAL's COPY
                 path, a GiST index on the geometry): the floor — reading the same file and
                 writing the same geometries, with no validation and nothing derived.
  importer       plots.imports.import_plots on the same file (chacra import-plots), which
                 takes the set-based path (plots.bulk) for a layer this size: every geometry
                 checked (type, vertices, range, validity, country), producers resolved,
                 the district of every plot by the district check's rule, geodesic area,
                 the first boundary version, the plot's precomputed GeoJSON feature, all
                 database constraints and indexes; one transaction. Plot checks are not run
                 (--no-checks), as a bulk load would be followed by ``chacra check --all``.
                 The plots are deleted (untimed) before each run, so each run creates N.
  per-feature    (reference) the per-feature path on the first --sample features, to show
                 what the set-based path saves; scaled to N in the table.

Plots are synthetic star-shaped polygons of 0.3–12 ha (8–16 vertices, half wound
clockwise) in the districts of San Martín, Huánuco and Ucayali, over the real INEI
districts of ../shared/data, with code, producer, declared area and unit properties.
Data lives in a separate database, ``chacra_bench_load``; the main one is never touched.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "scripts")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import bench_geojson as common  # noqa: E402  (database set-up and the polygon generator are shared)

BENCH_DB = "chacra_bench_load"
TARGET = 2.5  # the importer may take at most 2.5x ogr2ogr
ORG_CODE = "bench-load-coop"
DEPARTMENTS = ("22", "10", "25")  # UBIGEO prefixes: San Martín, Huánuco, Ucayali


class BenchError(common.BenchError):
    """A failure told in words; exits non-zero."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench load",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n", 2)[2].split("Data lives")[0].rstrip(),
        epilog=(
            f"Database: {BENCH_DB} on the server of the configured database (private cluster or\n"
            "DATABASE_URL), created and migrated when missing; the shared INEI districts are loaded\n"
            "into it once. The GeoPackage is written to a temporary folder and removed at the end.\n\n"
            f"Target: importer/ogr2ogr <= {TARGET}x, marked PASS or MISS. Exit status 0 whatever the\n"
            "target says; non-zero on errors.\n\n"
            "Examples:\n"
            "  scripts/bench load --n 20000 --repeat 1\n"
            "  scripts/bench load --sample 0          # skip the per-feature reference\n"
        ),
    )
    p.add_argument("--n", type=int, default=100_000, help="plots in the GeoPackage (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the best is reported "
                   "(default: %(default)s)")
    p.add_argument("--sample", type=int, default=1_000,
                   help="features for the per-feature reference, 0 to skip (default: %(default)s)")
    p.add_argument("--seed", type=int, default=20260202, help="random seed (default: %(default)s)")
    p.add_argument("--drop", action="store_true", help=f"drop {BENCH_DB} at the end (kept by default)")
    args = p.parse_args(argv)
    if args.n < 1 or args.repeat < 1 or args.sample < 0:
        p.error("--n and --repeat must be at least 1, --sample at least 0")
    return args


# --------------------------------------------------------------------------- data

def ensure_districts() -> int:
    from django.conf import settings

    from plots import reference
    from plots.models import AdminArea

    if not AdminArea.objects.filter(level="district", ubigeo__regex=rf"^({'|'.join(DEPARTMENTS)})").exists():
        shared = Path(settings.CHACRA_SHARED_DATA)
        if not (shared / "peru_admin_boundaries_inei2007").exists():
            raise BenchError(f"{shared / 'peru_admin_boundaries_inei2007'} not found: the bench needs the real INEI "
                             "districts (set CHACRA_SHARED_DATA)")
        print(f"loading the reference layers from {shared}")
        for report in reference.load_shared_layers(shared):
            print(f"  {report.summary()}")
    return AdminArea.objects.filter(level="district").count()


def ensure_producers(n_producers: int) -> int:
    """The organization and its producers (codes bl-p0000001 …); returns the organization id."""
    import io

    from django.db import connection

    from plots.models import Organization, Producer

    org, _ = Organization.objects.get_or_create(code=ORG_CODE, defaults={"name": "Cooperativa Bench Load",
                                                                          "kind": "cooperative"})
    have = Producer.objects.filter(organization=org).count()
    if have != n_producers:
        clear_plots()  # plots of an earlier run hold on to their producers
        Producer.objects.filter(organization=org).delete()
        rows = "".join(f"bl-p{i + 1:07d}\tProductor {i + 1}\tunknown\t\t\t{org.id}\tnow\tnow\n"
                       for i in range(n_producers))
        with connection.cursor() as cur:
            cur.copy_expert("COPY plots_producer (code, name, gender, national_id, phone, organization_id, "
                            "created_at, updated_at) FROM STDIN", io.StringIO(rows))
        print(f"  {n_producers} producers")
    return org.id


def write_geopackage(path: Path, n: int, seed: int, n_producers: int) -> None:
    import geopandas as gpd
    import numpy as np
    import shapely

    from plots.models import AdminArea

    rng = np.random.default_rng(seed)
    districts = [shapely.from_wkb(bytes(g.wkb)) for g in AdminArea.objects.filter(
        level="district", ubigeo__regex=rf"^({'|'.join(DEPARTMENTS)})").values_list("geom", flat=True)]
    region = shapely.union_all(districts)
    shapely.prepare(region)
    xmin, ymin, xmax, ymax = region.bounds
    lon, lat = [], []
    while sum(map(len, lon)) < n:
        x, y = rng.uniform(xmin, xmax, 4 * n), rng.uniform(ymin, ymax, 4 * n)
        inside = shapely.contains_xy(region, x, y)
        lon.append(x[inside]), lat.append(y[inside])
    lon, lat = np.concatenate(lon)[:n], np.concatenate(lat)[:n]
    area = np.exp(rng.uniform(math.log(0.3), math.log(12.0), n))
    hexes = common.polygons_ewkb_hex(rng, lat, lon, area, rng.integers(8, 17, n))
    geoms = shapely.from_wkb(np.array([bytes.fromhex(h.decode()) for h in hexes], dtype=object))
    frame = gpd.GeoDataFrame({
        "code": [f"bl-{i + 1:07d}" for i in range(n)],
        "producer": [f"bl-p{k + 1:07d}" for k in rng.integers(0, n_producers, n)],
        "declared_area": np.round(area * rng.uniform(0.7, 1.3, n), 2),
        "declared_area_unit": "ha",
    }, geometry=shapely.get_parts(geoms), crs="EPSG:4326")
    frame.to_file(path, driver="GPKG", layer="parcelas", engine="pyogrio")


# --------------------------------------------------------------------------- measurements

def time_ogr2ogr(url: str, gpkg: Path, repeat: int) -> tuple[float, int]:
    params = common.connect_params(url)
    pg = " ".join(f"{k}='{v}'" for k, v in (("dbname", params["dbname"]), ("host", params.get("host")),
                                           ("port", params.get("port")), ("user", params.get("user")),
                                           ("password", params.get("password"))) if v)
    conn = common.pg_connect(url, autocommit=True)

    def once():
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS bench_ogr2ogr")
        t0 = time.perf_counter()
        done = subprocess.run(["ogr2ogr", "-f", "PostgreSQL", f"PG:{pg}", str(gpkg), "parcelas",
                               "-nln", "bench_ogr2ogr", "-lco", "GEOMETRY_NAME=geom"],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise BenchError(f"ogr2ogr failed: {done.stderr.strip()[:500]}")
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM bench_ogr2ogr")
            return seconds, cur.fetchone()[0]

    try:
        best, rows, _ = common.best_of(repeat, once, "ogr2ogr")
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS bench_ogr2ogr")
    finally:
        conn.close()
    return best, rows


def clear_plots() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("TRUNCATE plots_plot RESTART IDENTITY CASCADE")
        cur.execute("VACUUM ANALYZE plots_plot")
        cur.execute("VACUUM ANALYZE plots_plotboundary")


def time_importer(gpkg: Path, organization_id: int, repeat: int, *, bulk: bool | None = None,
                  label: str = "importer") -> tuple[float, dict]:
    from plots.imports import import_plots
    from plots.models import Organization, Plot

    organization = Organization.objects.get(pk=organization_id)

    def once():
        clear_plots()
        t0 = time.perf_counter()
        report = import_plots(path=gpkg, organization=organization, run_checks=False, bulk=bulk)
        seconds = time.perf_counter() - t0
        counts = dict(report.counts, mode=report.mode,
                      with_district=Plot.objects.filter(district__isnull=False).count())
        return seconds, counts

    best, counts, _ = common.best_of(repeat, once, label)
    return best, counts


def write_sample(source: Path, target: Path, k: int) -> None:
    import pyogrio

    frame = pyogrio.read_dataframe(source, layer="parcelas", max_features=k)
    frame.to_file(target, driver="GPKG", layer="parcelas", engine="pyogrio")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base_url = common.configured_url()
    url = common.ensure_bench_database(base_url, BENCH_DB)
    print(f"bench database: {BENCH_DB}")
    common.setup_django(url, BENCH_DB)
    districts = ensure_districts()
    n_producers = max(1, round(args.n / 1.5))
    org_id = ensure_producers(n_producers)
    with tempfile.TemporaryDirectory(prefix="chacra-bench-load-") as folder:
        gpkg = Path(folder) / "plots.gpkg"
        t0 = time.perf_counter()
        write_geopackage(gpkg, args.n, args.seed, n_producers)
        print(f"wrote {args.n} plots to a GeoPackage ({gpkg.stat().st_size / 1e6:.1f} MB) in "
              f"{time.perf_counter() - t0:.1f} s")
        print("timing")
        floor, floor_rows = time_ogr2ogr(url, gpkg, args.repeat)
        seconds, counts = time_importer(gpkg, org_id, args.repeat)
        sample = None
        if args.sample:
            k = min(args.sample, args.n)
            small = Path(folder) / "sample.gpkg"
            write_sample(gpkg, small, k)
            per_feature, sample_counts = time_importer(small, org_id, 1, bulk=False, label=f"per-feature ({k})")
            sample = (k, per_feature, sample_counts)
    clear_plots()

    n = args.n
    print()
    print(f"plot load benchmark: {n} polygons from a GeoPackage, {districts} districts loaded, best of {args.repeat}")
    print(f"{'measurement':<44} {'seconds':>9} {'plots/s':>10}  result")
    print("-" * 88)
    print(f"{'ogr2ogr -f PostgreSQL (floor)':<44} {floor:>9.3f} {n / floor:>10,.0f}  {floor_rows} rows")
    print(f"{'importer (' + counts['mode'] + ' path)':<44} {seconds:>9.3f} {n / seconds:>10,.0f}  "
          f"{counts['created']} created, {counts['refused']} refused, {counts['with_district']} with a district")
    if sample:
        k, per_feature, sample_counts = sample
        scaled = per_feature * n / k
        print(f"{'per-feature path, scaled from ' + str(k):<44} {scaled:>9.1f} {k / per_feature:>10,.0f}  "
              f"{sample_counts['created']} of {k} created in {per_feature:.2f} s")
    print()
    ratio = seconds / floor
    print("ratios")
    print(f"  {'importer / ogr2ogr':<40} = {ratio:7.2f}x   target <= {TARGET}x   {'PASS' if ratio <= TARGET else 'MISS'}")
    if sample:
        print(f"  {'per-feature / importer':<40} = {scaled / seconds:7.1f}x   (reference: what the set-based path saves)")
    if counts["created"] != n:
        raise BenchError(f"the importer created {counts['created']} plots, not {n}")
    if args.drop:
        common.drop_bench_database(base_url, BENCH_DB)
    else:
        print(f"kept database {BENCH_DB} (--drop to remove it)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except common.BenchError as exc:
        print(f"bench load: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
