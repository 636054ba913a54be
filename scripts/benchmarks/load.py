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

import math
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import synthetic
from benchmarks.harness import BenchError, Benchmark, Ratio, best_of, connect_params, pg_connect

BENCH_DB = "chacra_bench_load"
TARGET = 2.5  # the importer may take at most 2.5x ogr2ogr
ORG_CODE = "bench-load-coop"
DEPARTMENTS = ("22", "10", "25")  # UBIGEO prefixes: San Martín, Huánuco, Ucayali
EPILOG = (
    f"Database: {BENCH_DB} on the server of the configured database (private cluster or\n"
    "DATABASE_URL), created and migrated when missing; the shared INEI districts are loaded\n"
    "into it once. The GeoPackage is written to a temporary folder and removed at the end.\n\n"
    f"Target: importer/ogr2ogr <= {TARGET}x, marked PASS or MISS. Exit status 0 whatever the\n"
    "target says; non-zero on errors.\n\n"
    "Examples:\n"
    "  scripts/bench load --n 20000 --repeat 1\n"
    "  scripts/bench load --sample 0          # skip the per-feature reference\n"
)


def options(p) -> None:
    p.add_argument("--n", type=int, default=100_000, help="plots in the GeoPackage (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the best is reported "
                   "(default: %(default)s)")
    p.add_argument("--sample", type=int, default=1_000,
                   help="features for the per-feature reference, 0 to skip (default: %(default)s)")
    p.add_argument("--seed", type=int, default=20260202, help="random seed (default: %(default)s)")
    p.add_argument("--drop", action="store_true", help=f"drop {BENCH_DB} at the end (kept by default)")


def check(p, args) -> None:
    if args.n < 1 or args.repeat < 1 or args.sample < 0:
        p.error("--n and --repeat must be at least 1, --sample at least 0")


# --------------------------------------------------------------------------- load

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
    from django.db import connection

    from plots.models import Organization, Producer

    org, _ = Organization.objects.get_or_create(code=ORG_CODE, defaults={"name": "Cooperativa Bench Load",
                                                                          "kind": "cooperative"})
    if Producer.objects.filter(organization=org).count() != n_producers:
        clear_plots()  # plots of an earlier run hold on to their producers
        Producer.objects.filter(organization=org).delete()
        with connection.cursor() as cur:
            synthetic.copy_rows(cur, "plots_producer", synthetic.PRODUCER_COLUMNS,
                                ((f"bl-p{i + 1:07d}", f"Productor {i + 1}", "unknown", "", "", org.id, "now", "now")
                                 for i in range(n_producers)))
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
    hexes = synthetic.polygons_ewkb_hex(rng, lat, lon, area, rng.integers(8, 17, n))
    geoms = shapely.from_wkb(np.array([bytes.fromhex(h.decode()) for h in hexes], dtype=object))
    frame = gpd.GeoDataFrame({
        "code": [f"bl-{i + 1:07d}" for i in range(n)],
        "producer": [f"bl-p{k + 1:07d}" for k in rng.integers(0, n_producers, n)],
        "declared_area": np.round(area * rng.uniform(0.7, 1.3, n), 2),
        "declared_area_unit": "ha",
    }, geometry=shapely.get_parts(geoms), crs="EPSG:4326")
    frame.to_file(path, driver="GPKG", layer="parcelas", engine="pyogrio")


def clear_plots() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("TRUNCATE plots_plot RESTART IDENTITY CASCADE")
        cur.execute("VACUUM ANALYZE plots_plot")
        cur.execute("VACUUM ANALYZE plots_plotboundary")


def load(run) -> None:
    run.districts = ensure_districts()
    n_producers = max(1, round(run.args.n / 1.5))
    run.org_id = ensure_producers(n_producers)
    run.folder = Path(run.stack.enter_context(tempfile.TemporaryDirectory(prefix="chacra-bench-load-")))
    run.stack.callback(clear_plots)
    run.gpkg = run.folder / "plots.gpkg"
    t0 = time.perf_counter()
    write_geopackage(run.gpkg, run.args.n, run.args.seed, n_producers)
    print(f"wrote {run.args.n} plots to a GeoPackage ({run.gpkg.stat().st_size / 1e6:.1f} MB) in "
          f"{time.perf_counter() - t0:.1f} s")


# --------------------------------------------------------------------------- measurements

def floor(run) -> tuple[float, int]:
    """ogr2ogr -f PostgreSQL into a new table."""
    params = connect_params(run.url)
    pg = " ".join(f"{k}='{v}'" for k, v in (("dbname", params["dbname"]), ("host", params.get("host")),
                                           ("port", params.get("port")), ("user", params.get("user")),
                                           ("password", params.get("password"))) if v)
    conn = pg_connect(run.url, autocommit=True)

    def once():
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS bench_ogr2ogr")
        t0 = time.perf_counter()
        done = subprocess.run(["ogr2ogr", "-f", "PostgreSQL", f"PG:{pg}", str(run.gpkg), "parcelas",
                               "-nln", "bench_ogr2ogr", "-lco", "GEOMETRY_NAME=geom"],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise BenchError(f"ogr2ogr failed: {done.stderr.strip()[:500]}")
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM bench_ogr2ogr")
            return seconds, cur.fetchone()[0]

    try:
        best, rows, _ = best_of(run.args.repeat, once, "ogr2ogr")
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS bench_ogr2ogr")
    finally:
        conn.close()
    return best, rows


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

    best, counts, _ = best_of(repeat, once, label)
    return best, counts


def path(run) -> tuple[float, dict]:
    seconds, counts = time_importer(run.gpkg, run.org_id, run.args.repeat)
    if counts["created"] != run.args.n:
        raise BenchError(f"the importer created {counts['created']} plots, not {run.args.n}")
    return seconds, counts


def peer(run) -> tuple[int, float, dict] | None:
    """The per-feature path on the first --sample features."""
    import pyogrio

    if not run.args.sample:
        return None
    k = min(run.args.sample, run.args.n)
    small = run.folder / "sample.gpkg"
    pyogrio.read_dataframe(run.gpkg, layer="parcelas", max_features=k).to_file(
        small, driver="GPKG", layer="parcelas", engine="pyogrio")
    per_feature, counts = time_importer(small, run.org_id, 1, bulk=False, label=f"per-feature ({k})")
    return k, per_feature, counts


def rows(run) -> None:
    n, (floor_seconds, floor_rows), (seconds, counts) = run.args.n, run.floor, run.path
    print(f"plot load benchmark: {n} polygons from a GeoPackage, {run.districts} districts loaded, "
          f"best of {run.args.repeat}")
    print(f"{'measurement':<44} {'seconds':>9} {'plots/s':>10}  result")
    print("-" * 88)
    print(f"{'ogr2ogr -f PostgreSQL (floor)':<44} {floor_seconds:>9.3f} {n / floor_seconds:>10,.0f}  {floor_rows} rows")
    print(f"{'importer (' + counts['mode'] + ' path)':<44} {seconds:>9.3f} {n / seconds:>10,.0f}  "
          f"{counts['created']} created, {counts['refused']} refused, {counts['with_district']} with a district")
    if run.peer:
        k, per_feature, sample_counts = run.peer
        print(f"{'per-feature path, scaled from ' + str(k):<44} {per_feature * n / k:>9.1f} {k / per_feature:>10,.0f}  "
              f"{sample_counts['created']} of {k} created in {per_feature:.2f} s")


def ratios(run) -> list[Ratio]:
    seconds = run.path[0]
    out = [Ratio("importer / ogr2ogr", seconds / run.floor[0], TARGET, fmt="7.2f")]
    if run.peer:
        k, per_feature, _ = run.peer
        out.append(Ratio("per-feature / importer", per_feature * run.args.n / k / seconds, fmt="7.1f",
                         note="(reference: what the set-based path saves)"))
    return out


BENCHMARK = Benchmark(name="load", database=BENCH_DB, doc=__doc__, options=options, check=check, epilog=EPILOG,
                      load=load, floor=floor, path=path, peer=peer, rows=rows, ratios=ratios)
