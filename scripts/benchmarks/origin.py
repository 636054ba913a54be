"""Benchmark the origin of a lot (traceability.selectors.origin_of) against the bare recursive SQL.

Run through the dispatcher: ``scripts/bench origin [options]``.

The graph: N plots (default 10,000) deliver wet beans into collection lots of five
plots each; each collection lot is fermented into a dry lot (factor 0.38); dry lots
are blended five at a time, then again and again, into one lot, which is split in
two. The origin asked for is one half of that split: 8 levels deep, reaching all N
plots, each with a boundary and a protected-area check result.

What is measured (best of --repeat, all in the same run):

  floor     the bare WITH RECURSIVE walk: per plot its share of the lot (numeric),
            nothing else, rows fetched through the same Django connection.
  selector  origin_of(lot): the same walk plus, per plot, the boundary in force on
            its delivery day, the latest protected-area and deforestation results,
            the season mass balance, the verdict reasons, and the Feature text.
  export    traceability.eudr.export_lot(lot): origin plus the EUDR geometry rules
            (truncation, hole splitting, validation) and file writing, in Python.

Data lives in a separate database, ``chacra_bench_origin``, on the server that
DATABASES points at; the main database is never touched.
"""

from __future__ import annotations

from benchmarks.harness import BenchError, Benchmark, best_of, clock

BENCH_DB = "chacra_bench_origin"
PREFIX = "bo-"
# The selector adds four index probes per plot (boundary on the delivery day, two
# latest checks, season sums) and a GeoJSON Feature per plot to a walk that returns
# two numbers per plot: ten times that walk is its budget.
SELECTOR_TARGET = 10.0

FLOOR_SQL = """
WITH RECURSIVE up(lot_id, share) AS (
    SELECT %s::bigint, 1::numeric
  UNION ALL
    SELECT e.source_lot_id, up.share * e.kg * e.factor / (SELECT SUM(i.kg * i.factor) FROM traceability_lotinput i
                                                          WHERE i.target_id = up.lot_id)
    FROM up JOIN traceability_lotinput e ON e.target_id = up.lot_id AND e.source_lot_id IS NOT NULL
)
SELECT d.source_plot_id, SUM(up.share * d.kg * d.factor / (SELECT SUM(i.kg * i.factor) FROM traceability_lotinput i
                                                           WHERE i.target_id = up.lot_id))
FROM up JOIN traceability_lotinput d ON d.target_id = up.lot_id AND d.source_plot_id IS NOT NULL
GROUP BY 1
"""


def options(p) -> None:
    p.add_argument("--n", type=int, default=10_000, help="plots (a multiple of 5; default %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported (default 3)")
    p.add_argument("--reload", action="store_true", help="reload even when the graph is already there")
    p.add_argument("--skip-export", action="store_true", help="do not time the EUDR export")
    p.add_argument("--drop", action="store_true", help="drop chacra_bench_origin at the end")


def check(p, args) -> None:
    if args.n < 625 or args.n % 5:
        p.error("--n must be a multiple of 5 and at least 625 (so the blends reach 8 levels)")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")


def load_graph(n: int) -> None:
    """The synthetic graph described in the module docstring, through bulk inserts
    (the database triggers still check every edge)."""
    from datetime import date
    from decimal import Decimal

    from django.contrib.gis.geos import MultiPolygon, Polygon
    from django.db import transaction

    from plots.models import CheckResult, Organization, Plot, PlotBoundary, Producer
    from traceability.models import LotInput, ProductLot

    with transaction.atomic():
        org = Organization.objects.create(code=f"{PREFIX}coop", name="Bench cooperative", kind="cooperative")
        producers = Producer.objects.bulk_create([Producer(code=f"{PREFIX}p{i}", name=f"Productor {i}",
                                                           organization=org) for i in range((n + 1) // 2)])
        plots = []
        for i in range(n):
            x, y = -76.9 + (i % 100) * 0.004, -8.6 + (i // 100) * 0.004
            square = Polygon(((x, y), (x + 0.002, y), (x + 0.002, y + 0.002), (x, y + 0.002), (x, y)), srid=4326)
            plots.append(Plot(code=f"{PREFIX}{i:06d}", producer=producers[i // 2], organization=org,
                              boundary=MultiPolygon(square, srid=4326), survey_date=date(2022, 1, 1)))
        plots = Plot.objects.bulk_create(plots, batch_size=2000)
        PlotBoundary.objects.bulk_create([PlotBoundary(plot=p, geom=p.boundary, valid_from=date(2022, 1, 1),
                                                       source="bench") for p in plots], batch_size=2000)
        CheckResult.objects.bulk_create([CheckResult(plot=p, kind="protected_area_overlap", outcome="pass",
                                                     method_version="bench") for p in plots], batch_size=5000)

        def lots(level: str, count: int, form: str, kg: Decimal, day: date) -> list[ProductLot]:
            return ProductLot.objects.bulk_create(
                [ProductLot(code=f"{PREFIX}{level}-{i}", organization=org, form=form, kg=kg, date=day)
                 for i in range(count)], batch_size=5000)

        wet_kg, dry_kg = Decimal(500), Decimal(190)  # five plots × 100 kg wet; × 0.38
        wet = lots("w", n // 5, "wet_beans", wet_kg, date(2025, 4, 1))
        LotInput.objects.bulk_create([LotInput(kind="delivery", source_plot=p, target=wet[i // 5], kg=100,
                                               date=date(2025, 4, 1)) for i, p in enumerate(plots)], batch_size=5000)
        dry = lots("d", len(wet), "dry_beans", dry_kg, date(2025, 4, 10))
        LotInput.objects.bulk_create([LotInput(kind="transform", source_lot=w, target=d, kg=wet_kg,
                                               factor=Decimal("0.38"), date=date(2025, 4, 10))
                                      for w, d in zip(wet, dry)], batch_size=5000)
        level, depth = dry, 0
        while len(level) > 1:  # blend five at a time (the last blend takes what is left)
            depth += 1
            groups = [level[i:i + 5] for i in range(0, len(level), 5)]
            blended = ProductLot.objects.bulk_create([
                ProductLot(code=f"{PREFIX}m{depth}-{j}", organization=org, form="dry_beans", kg=sum(s.kg for s in g),
                           date=date(2025, 5, depth)) for j, g in enumerate(groups)])
            LotInput.objects.bulk_create([LotInput(kind="merge", source_lot=src, target=blended[j], kg=src.kg,
                                                   date=date(2025, 5, depth))
                                          for j, g in enumerate(groups) for src in g], batch_size=5000)
            level = blended
        top = level[0]
        half = (top.kg / 2).quantize(Decimal("0.001"))
        a, b = lots("split", 2, "dry_beans", half, date(2025, 6, 1))
        LotInput.objects.bulk_create([LotInput(kind="split", source_lot=top, target=t, kg=half,
                                               date=date(2025, 6, 1)) for t in (a, b)])
    print(f"loaded {n} plots, {ProductLot.objects.filter(code__startswith=PREFIX).count()} lots, "
          f"{LotInput.objects.filter(target__code__startswith=PREFIX).count()} edges; blends {depth} levels deep")


def load(run) -> None:
    from django.db import connection

    from plots.models import Organization
    from traceability.models import ProductLot

    loaded = ProductLot.objects.filter(code=f"{PREFIX}split-0").exists() and \
        Organization.objects.get(code=f"{PREFIX}coop").plots.count() == run.args.n
    if run.args.reload or not loaded:
        with connection.cursor() as cur:  # plots cascade to boundaries, checks and deliveries
            cur.execute("TRUNCATE traceability_lotinput, traceability_productlot, plots_checkresult, "
                        "plots_plotboundary, plots_plot, plots_producer, plots_organization CASCADE")
        load_graph(run.args.n)
    with connection.cursor() as cur:  # fresh statistics, so neither query is planned on guesses
        cur.execute("ANALYZE")
    run.lot = ProductLot.objects.select_related("organization").get(code=f"{PREFIX}split-0")


def floor(run) -> tuple[float, list]:
    from django.db import connection

    def walk():
        with connection.cursor() as cur:
            cur.execute(FLOOR_SQL, [run.lot.id])
            return cur.fetchall()

    return best_of(run.args.repeat, clock(walk), "floor")[:2]


def path(run):
    from traceability import selectors

    seconds, origin = best_of(run.args.repeat, clock(lambda: selectors.origin_of(run.lot)), "selector")[:2]
    if len(run.floor[1]) != run.args.n or len(origin.features) != run.args.n:
        raise BenchError(f"expected {run.args.n} plots; the floor found {len(run.floor[1])}, "
                         f"the selector {len(origin.features)}")
    if abs(origin.share_total - 1) > 1e-12:
        raise BenchError(f"shares sum to {origin.share_total}, not 1")
    return seconds, origin


def peer(run):
    """The EUDR export: origin plus the geometry rules and the file, in Python."""
    from traceability import eudr

    if run.args.skip_export:
        return None
    return best_of(run.args.repeat, clock(lambda: eudr.export_lot(run.lot)), "export")[:2]


def rows(run) -> None:
    t_floor, (t_sel, origin) = run.floor[0], run.path
    print(f"lot {run.lot.code}: {run.args.n} plots, 8 levels, verdict {origin.verdict}")
    print(f"  floor     bare WITH RECURSIVE shares      {t_floor * 1000:9.1f} ms")
    ratio = t_sel / t_floor
    mark = "PASS" if ratio <= SELECTOR_TARGET else "MISS"
    print(f"  selector  origin_of (features, verdict)   {t_sel * 1000:9.1f} ms   {ratio:5.2f}x floor "
          f"(target <= {SELECTOR_TARGET:.0f}x: {mark})")
    if run.peer:
        t_exp, export = run.peer
        print(f"  export    EUDR file ({len(export.files)} file(s), {sum(map(len, export.files)) / 1e6:.1f} MB)"
              f"  {t_exp * 1000:9.1f} ms   {t_exp / t_floor:5.2f}x floor")


BENCHMARK = Benchmark(
    name="origin", database=BENCH_DB, doc=__doc__, options=options, check=check,
    epilog=("Database: chacra_bench_origin on the same server as the configured one, created when missing\n"
            "(CREATE DATABASE + postgis), migrated, and loaded; loading is skipped when it already holds\n"
            "the graph for N plots. --drop removes it at the end (default: kept, for fast reruns).\n"
            "The exit status is 0 whatever the target says (a report); non-zero on errors.\n\n"
            "Example:\n  scripts/bench origin --n 10000 --repeat 5\n"),
    load=load, floor=floor, path=path, peer=peer, rows=rows)
