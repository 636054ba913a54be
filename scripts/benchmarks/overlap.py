"""Benchmark the protected-area overlap check against its bare SQL floor.

Run through the dispatcher: ``scripts/bench overlap [options]``.

What is measured (best of --repeat):

  check          plots.checks.run_checks(kinds={"protected_area_overlap"}) over all N plots:
                 batches of 2,000, per-area geodesic overlap hectares and shares, the exact
                 nearest area for the plots outside (KNN shortlist + chacra_map_distance_m),
                 one CheckResult row per plot. The result table is emptied (untimed) before
                 every run, so each run does the full work.
  floor          the bare SQL computing the same answers, into a temp table: the overlap join on
                 the subdivided pieces with each intersection's geodesic area (plot, area, m²);
                 for every plot meeting no piece, the planar-nearest piece (KNN) and its
                 distance in metres by the function the check uses (chacra_map_distance_m),
                 plus the distance to each piece that could be nearer in metres (the same
                 ST_DWithin bound), one row each. No JSON, no union of a plot's parts, no
                 minimum taken, no comparison with stored results, no history rows. Timed with
                 the planner's plan (parallel workers allowed) and serially; the faster is
                 the floor.
  join only      (reference) the overlap join and intersection areas alone, on the pieces …
  unsubdivided   … and on the whole ProtectedArea geometries (no pieces).

Plots are synthetic star-shaped polygons of 0.3–12 ha placed around the real protected
areas of ../shared/data (Cordillera Azul, SERNANP ACR/ACP/ZR, loaded through
plots.reference): --inside of the plot centres fall inside an area, the rest within
about 15 km outside one, so a few % of the plots overlap.

Data lives in a separate database, ``chacra_bench`` (shared with scripts/bench geojson, which
it reloads only when the plots there are not its own); the main database is never touched.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from benchmarks import synthetic
from benchmarks.harness import BenchError, Benchmark, Ratio, best_of, fetch, pg_connect, vacuum_analyze

BENCH_DB = "chacra_bench"
CODE_PREFIX = "ovl-"
CHECK_TARGET = 1.3  # the check may take at most 1.3x the floor
CHUNK = 10_000
EPILOG = (
    "Database: chacra_bench on the server of the configured database (private cluster or\n"
    "DATABASE_URL), created and migrated when missing. The shared reference layers are loaded\n"
    "into it once; the plots are reloaded when it does not hold exactly N plots of this bench\n"
    "(codes ovl-…) or with --reload. Kept by default (--drop removes it).\n\n"
    f"Target: check/floor <= {CHECK_TARGET}x, marked PASS or MISS; unsubdivided/subdivided is\n"
    "reported without a target. Exit status 0 whatever the target says; non-zero on errors.\n\n"
    "Examples:\n"
    "  scripts/bench overlap --n 20000 --repeat 1\n"
    "  scripts/bench overlap --inside 0.05 --reload\n"
)


def options(p) -> None:
    p.add_argument("--n", type=int, default=100_000, metavar="N", help="synthetic plots (default: %(default)s)")
    p.add_argument("--inside", type=float, default=0.03, metavar="FRACTION",
                   help="fraction of plot centres placed inside a protected area (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is reported "
                   "(default: %(default)s)")
    p.add_argument("--skip-unsubdivided", action="store_true",
                   help="do not time the query on the whole areas (it is the slow one)")
    p.add_argument("--reload", action="store_true", help="reload the plots even when they are already there")
    p.add_argument("--seed", type=int, default=20260101, help="random seed for the synthetic plots")
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--keep", action="store_true", default=True, help="keep chacra_bench at the end (default)")
    keep.add_argument("--drop", action="store_true", help="drop chacra_bench at the end")


def check(p, args) -> None:
    if args.n < 1:
        p.error("--n must be at least 1")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if not 0 <= args.inside <= 1:
        p.error("--inside must be a fraction between 0 and 1")


# --------------------------------------------------------------------------- load

def ensure_protected_areas() -> int:
    from django.conf import settings

    from plots import reference
    from plots.models import ProtectedArea

    if not ProtectedArea.objects.filter(synthetic=False).exists():
        shared = Path(settings.CHACRA_SHARED_DATA)
        if not (shared / "protected_areas").exists():
            raise BenchError(f"{shared / 'protected_areas'} not found: the bench needs the real protected areas "
                             "(set CHACRA_SHARED_DATA)")
        print(f"loading the reference layers from {shared}")
        for report in reference.load_shared_layers(shared):
            print(f"  {report.summary()}")
    return ProtectedArea.objects.count()


def plot_centres(rng, n: int, inside: float):
    """(lon, lat) arrays: ``inside`` of them in a protected area, the others within ~15 km outside one."""
    import numpy as np
    import shapely

    from plots.models import ProtectedArea

    areas = [shapely.from_wkb(bytes(g.wkb)) for g in ProtectedArea.objects.values_list("geom", flat=True)]
    union = shapely.union_all(areas)
    shapely.prepare(union)
    boxes = np.array([a.bounds for a in areas])
    margin = 0.14  # degrees, ~15 km
    want_in = round(n * inside)
    lon_in, lat_in, lon_out, lat_out = [], [], [], []
    have_in = have_out = 0
    while have_in < want_in or have_out < n - want_in:
        # Areas drawn with equal weight, a point uniform in the area's box widened by the margin.
        pick = rng.integers(0, len(areas), 200_000)
        xmin, ymin, xmax, ymax = boxes[pick].T
        lon = rng.uniform(xmin - margin, xmax + margin)
        lat = rng.uniform(ymin - margin, ymax + margin)
        hit = shapely.contains_xy(union, lon, lat)
        lon_in.append(lon[hit]), lat_in.append(lat[hit])
        lon_out.append(lon[~hit]), lat_out.append(lat[~hit])
        have_in += int(hit.sum())
        have_out += int((~hit).sum())
    lon = np.concatenate([np.concatenate(lon_in)[:want_in], np.concatenate(lon_out)[:n - want_in]])
    lat = np.concatenate([np.concatenate(lat_in)[:want_in], np.concatenate(lat_out)[:n - want_in]])
    order = rng.permutation(n)  # inside and outside plots interleaved, as an import would bring them
    return lon[order], lat[order]


def plot_rows(rng, start: int, lon, lat, organization_id: int, producer_ids):
    import numpy as np

    count = len(lon)
    area = np.exp(rng.uniform(math.log(0.3), math.log(12.0), count))
    geoms = synthetic.polygons_ewkb_hex(rng, lat, lon, area, rng.integers(8, 17, count))
    declared = np.round(area * rng.uniform(0.7, 1.3, count), 2)
    producer = producer_ids[rng.integers(0, len(producer_ids), count)]
    return [(f"{CODE_PREFIX}{start + i + 1:07d}", producer[i], organization_id, geoms[i].decode(),
             repr(float(declared[i])), "ha", "unknown", "\\N", "unknown", "{}", "gps_walked", "2024-05-01", "5.0",
             "active", "", "2025-01-01 00:00:00+00", "2025-01-01 00:00:00+00") for i in range(count)]


def load(run) -> None:
    import numpy as np
    from tqdm import tqdm

    url, n, args = run.url, run.args.n, run.args
    run.areas = ensure_protected_areas()
    [(total, ours)] = fetch(url, "SELECT count(*), count(*) FILTER (WHERE code LIKE %s) FROM plots_plot",
                            [CODE_PREFIX + "%"])
    if total == ours == n and not args.reload:
        print(f"{BENCH_DB} already holds {n} plots of this bench: not reloading (use --reload to force)")
    else:
        print(f"loading {n} synthetic plots around the protected areas into {BENCH_DB} (had {total})")
        rng = np.random.default_rng(args.seed)
        lon, lat = plot_centres(rng, n, args.inside)
        conn = pg_connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("TRUNCATE plots_plot, plots_producer, plots_organization RESTART IDENTITY CASCADE")
                org_id = synthetic.new_organization(cur, synthetic.ORG_CODE)
                synthetic.copy_rows(cur, "plots_producer", synthetic.PRODUCER_COLUMNS,
                                    ((f"{CODE_PREFIX}p{i + 1:07d}", f"Productor {i + 1}", "unknown", "", "", org_id,
                                      "2024-01-01 00:00:00+00", "2024-01-01 00:00:00+00")
                                     for i in range(max(1, round(n / 1.5)))))
                cur.execute("SELECT id FROM plots_producer ORDER BY id")
                producer_ids = np.array([r[0] for r in cur.fetchall()], dtype=np.int64)
                with tqdm(total=n, unit="plot", desc="  generate+COPY plots", unit_scale=True) as bar:
                    for start in range(0, n, CHUNK):
                        stop = min(n, start + CHUNK)
                        synthetic.copy_rows(cur, "plots_plot", synthetic.PLOT_COLUMNS, plot_rows(
                            rng, start, lon[start:stop], lat[start:stop], org_id, producer_ids))
                        bar.update(stop - start)
                # Every plot has its current boundary version, as the import path leaves it.
                cur.execute("INSERT INTO plots_plotboundary (plot_id, geom, valid_from, source, survey_method, "
                            "repairs, created_at) SELECT id, boundary, '2024-05-01', 'bench', 'gps_walked', '[]', "
                            "now() FROM plots_plot")
            conn.commit()
        finally:
            conn.close()
        vacuum_analyze(url, "plots_producer", "plots_plot", "plots_plotboundary", "plots_protectedarea",
                       "plots_protectedareapiece")
    [(run.overlapping,)] = fetch(url, "SELECT count(DISTINCT p.id) FROM plots_plot p JOIN plots_protectedareapiece "
                                 "pc ON ST_Intersects(pc.geom, p.boundary)")


# --------------------------------------------------------------------------- measurements

JOIN_SQL = """
CREATE TEMP TABLE bench_floor AS
SELECT p.id AS plot_id, a.area_id, ST_Area(ST_Intersection(a.geom, p.boundary)::geography, true) AS overlap_m2
FROM plots_plot p
JOIN {table} a ON ST_Intersects(a.geom, p.boundary)
"""
PIECES = "plots_protectedareapiece"
WHOLE = "(SELECT id AS area_id, geom FROM plots_protectedarea)"
FLOOR_SQL = """
CREATE TEMP TABLE bench_floor AS
WITH hits AS MATERIALIZED (
    SELECT p.id AS plot_id, a.area_id, ST_Area(ST_Intersection(a.geom, p.boundary)::geography, true) AS value
    FROM plots_plot p
    JOIN plots_protectedareapiece a ON ST_Intersects(a.geom, p.boundary)
),
first AS MATERIALIZED (
    SELECT p.id AS plot_id, p.boundary AS g, k.id AS piece_id, k.area_id, chacra_map_distance_m(k.geom, p.boundary) AS d
    FROM plots_plot p
    CROSS JOIN LATERAL (
        SELECT pc.id, pc.area_id, pc.geom FROM plots_protectedareapiece pc ORDER BY pc.geom <-> p.boundary LIMIT 1
    ) k
    WHERE NOT EXISTS (SELECT 1 FROM hits h WHERE h.plot_id = p.id)
)
SELECT plot_id, area_id, value FROM hits
UNION ALL
SELECT f.plot_id, f.area_id, f.d FROM first f
UNION ALL
-- The pieces that could be nearer in metres than the planar-nearest one (see plots.checks.protected).
SELECT f.plot_id, pc.area_id, chacra_map_distance_m(pc.geom, f.g)
FROM first f
JOIN plots_protectedareapiece pc
  ON pc.id <> f.piece_id
 AND ST_DWithin(pc.geom, f.g, f.d / least(110000.0, 111000.0 * cos(radians(least(89.0,
         greatest(abs(ST_YMin(f.g)), abs(ST_YMax(f.g))) + f.d / 110000.0)))))
"""
FLOOR = "floor: overlap join + nearest (bare SQL)"
FLOOR_SERIAL = "  same, serial"
JOIN_LABEL = "join only: intersection areas on pieces"
WHOLE_LABEL = "join only on whole areas (unsubdivided)"
CHECK = "check (run_checks)"


def time_sql(url: str, sql: str, repeat: int, label: str, *, serial: bool = False) -> tuple[float, int]:
    """Best time of ``sql`` (a CREATE TEMP TABLE bench_floor AS …) and the rows it made.
    serial=True forbids parallel workers (untimed SET LOCAL): the check runs its batches
    one after the other, while the plain floor may use a parallel scan."""
    conn = pg_connect(url)
    try:
        def once():
            with conn.cursor() as cur:
                if serial:
                    cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                t0 = time.perf_counter()
                cur.execute(sql)
                seconds = time.perf_counter() - t0
                cur.execute("SELECT count(*) FROM bench_floor")
                rows = cur.fetchone()[0]
            conn.rollback()  # drops the temp table
            return seconds, rows

        best, rows, _ = best_of(repeat, once, label)
    finally:
        conn.close()
    return best, rows


def floor(run) -> dict:
    url, repeat = run.url, run.args.repeat
    return {FLOOR: time_sql(url, FLOOR_SQL, repeat, "floor"),
            FLOOR_SERIAL: time_sql(url, FLOOR_SQL, repeat, "floor (serial)", serial=True),
            JOIN_LABEL: time_sql(url, JOIN_SQL.format(table=PIECES), repeat, "join only")}


def path(run) -> tuple[float, dict]:
    from django.db import connection

    from plots.checks import run_checks

    def once():
        with connection.cursor() as cur:
            cur.execute("TRUNCATE plots_checkresult")
        t0 = time.perf_counter()
        summary = run_checks(kinds={"protected_area_overlap"})
        return time.perf_counter() - t0, summary

    best, summary, _ = best_of(run.args.repeat, once, "check")
    return best, summary.kinds["protected_area_overlap"].outcomes


def peer(run) -> tuple[float, int] | None:
    if run.args.skip_unsubdivided:
        return None
    return time_sql(run.url, JOIN_SQL.format(table=WHOLE), run.args.repeat, "unsubdivided")


def rows(run) -> None:
    n, overlapping, (check_seconds, outcomes) = run.args.n, run.overlapping, run.path
    results = dict(run.floor, **({WHOLE_LABEL: run.peer} if run.peer else {}))
    results[CHECK] = (check_seconds, sum(outcomes.values()))
    print(f"protected-area overlap benchmark: {n} plots, {run.areas} protected areas, "
          f"{overlapping} plots ({overlapping / n:.1%}) meeting one, best of {run.args.repeat}")
    print(f"{'measurement':<44} {'seconds':>9} {'plots/s':>10}  rows")
    print("-" * 80)
    for name, (seconds, count) in results.items():
        print(f"{name:<44} {seconds:>9.3f} {n / seconds:>10,.0f}  {count}")
    print(f"check outcomes: {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}")


def ratios(run) -> list[Ratio]:
    # The floor is the faster of the planner's own plan (parallel workers allowed) and a
    # serial one: on a small machine the parallel plan can be the slower.
    floor_seconds = min(run.floor[FLOOR][0], run.floor[FLOOR_SERIAL][0])
    out = [Ratio("check / floor", run.path[0] / floor_seconds, CHECK_TARGET, fmt="7.2f")]
    if run.peer:
        out.append(Ratio("unsubdivided / subdivided", run.peer[0] / run.floor[JOIN_LABEL][0], fmt="7.2f",
                         note="(reference, no target; the join alone, same planner settings)"))
    return out


BENCHMARK = Benchmark(name="overlap", database=BENCH_DB, doc=__doc__, options=options, check=check, epilog=EPILOG,
                      load=load, floor=floor, path=path, peer=peer, rows=rows, ratios=ratios)
