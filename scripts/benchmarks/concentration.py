"""Benchmark the investors' concentration grid against its bare aggregate SQL.

Run through the dispatcher: ``scripts/bench concentration [options]``.

What is measured (best of --repeat), on N synthetic plots (default 1,000,000):

  floor          the bare aggregate the path needs: one GROUP BY producer over the
                 active plots with the same per-plot figures (hectares, grafted and
                 fine-flavour hectares, production by plant age, women, flagged plots,
                 graftings, planting), rows fetched — and nothing else.
  concentration  plots.concentration.concentration(metric, grid="h3:R"): the same
                 aggregate, then the privacy units (plots.privacy: producers grouped
                 bottom-up on the H3 tree until each group has k of every contributor
                 class) and the sums per cell of the grid.
  GeoJSON        the above plus to_geojson: hexagon outlines (h3), class breaks.

Plots are star-shaped 0.3–12 ha polygons over a 4° × 4° box of San Martín, Huánuco
and Ucayali, ~1.5 plots per producer (35 % women), planting years 1990–2024, 3 % with
a failed protected-area check; their H3 cell is written with them. The plot trigger
that keeps each plot's GeoJSON text is switched off while loading (the bench does not
read that column). Data lives in ``chacra_bench_conc``; the main database is never
touched.
"""

from __future__ import annotations

import math
import time

from benchmarks import synthetic
from benchmarks.harness import Benchmark, Ratio, best_of, fetch, import_first, pg_connect, vacuum_analyze

BENCH_DB = "chacra_bench_conc"
CHUNK = 50_000


def options(p) -> None:
    p.add_argument("--n", type=int, default=1_000_000, help="synthetic plots (default: %(default)s)")
    p.add_argument("--res", type=int, default=7, choices=range(5, 10), help="H3 resolution (default: %(default)s)")
    p.add_argument("--metric", default="fine_flavour_ha", help="metric for the GeoJSON (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default: %(default)s)")
    p.add_argument("--seed", type=int, default=20260303)
    p.add_argument("--reload", action="store_true", help="reload the plots even when N are there")
    p.add_argument("--drop", action="store_true", help=f"drop {BENCH_DB} at the end")


def check(p, args) -> None:
    if args.n < 1 or args.repeat < 1:
        p.error("--n and --repeat must be at least 1")


def concentration_module():
    # plots/concentration.py is moving to insights/concentration.py in the same change:
    # the new home first, the old one while the move lands.
    return import_first("insights.concentration", "plots.concentration")


def load(run) -> None:
    import h3
    import numpy as np
    from tqdm import tqdm

    url, n = run.url, run.args.n
    [(have, with_cell)] = fetch(url, "SELECT count(*), count(h3_cell) FROM plots_plot")
    if have == n == with_cell and not run.args.reload:
        print(f"{BENCH_DB} already holds {n} plots: not reloading (use --reload to force)")
        return
    print(f"loading {n} synthetic plots into {BENCH_DB}")
    rng = np.random.default_rng(run.args.seed)
    n_producers = max(1, round(n / 1.5))
    conn = pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("TRUNCATE plots_plot, plots_producer, plots_organization RESTART IDENTITY CASCADE")
            org = synthetic.new_organization(cur, "bench-conc", "Cooperativa Bench")
            gender = np.where(rng.random(n_producers) < 0.35, "female", "male")
            synthetic.copy_rows(cur, "plots_producer", synthetic.PRODUCER_COLUMNS,
                                ((f"bc-p{i + 1:07d}", f"Productor {i + 1}", gender[i], "", "", org, "now", "now")
                                 for i in range(n_producers)))
            cur.execute("SELECT min(id) FROM plots_producer")
            first_producer = cur.fetchone()[0]
            cur.execute("ALTER TABLE plots_plot DISABLE TRIGGER plots_plot_feature")
            with tqdm(total=n, unit="plot", unit_scale=True, desc="  generate+COPY") as bar:
                for start in range(0, n, CHUNK):
                    count = min(CHUNK, n - start)
                    lat = rng.uniform(-10.5, -6.5, count)
                    lon = rng.uniform(-78.0, -74.0, count)
                    area = np.exp(rng.uniform(math.log(0.3), math.log(12.0), count))
                    geoms = synthetic.polygons_ewkb_hex(rng, lat, lon, area, rng.integers(8, 17, count))
                    cells = [h3.str_to_int(h3.latlng_to_cell(y, x, 9)) for y, x in zip(lat, lon)]
                    producer = first_producer + rng.integers(0, n_producers, count)
                    planting = rng.integers(1990, 2025, count)
                    synthetic.copy_rows(
                        cur, "plots_plot", "code, producer_id, organization_id, boundary, h3_cell, planting_year, "
                        "status, declared_area_unit, tenure, agroforestry_system, shade_species, survey_method, "
                        "retired_reason, created_at, updated_at",
                        ((f"bc-{start + i + 1:07d}", producer[i], org, geoms[i].decode(), cells[i], planting[i],
                          "active", "ha", "unknown", "unknown", "{}", "unknown", "", "now", "now")
                         for i in range(count)))
                    bar.update(count)
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred key checks, before the ALTER
            cur.execute("ALTER TABLE plots_plot ENABLE TRIGGER plots_plot_feature")
            cur.execute("""INSERT INTO plots_checkresult (plot_id, kind, outcome, figures, datasets, method_version,
                                                          checked_at)
                           SELECT id, 'protected_area_overlap', CASE WHEN id % 33 = 0 THEN 'fail' ELSE 'pass' END,
                                  '{}', '{}', 'bench', now() FROM plots_plot""")
        conn.commit()
    finally:
        conn.close()
    vacuum_analyze(url, "plots_producer", "plots_plot", "plots_checkresult")


def floor(run) -> tuple[float, int]:
    """The bare GROUP BY producer, rows fetched."""
    from django.db import connection, transaction

    concentration = concentration_module()
    sql = concentration.BASE.format(production=concentration.production_sql(), where="") + concentration.PER_PRODUCER

    def once():
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL jit = off")
            t0 = time.perf_counter()
            cur.execute(sql)
            return time.perf_counter() - t0, len(cur.fetchall())

    seconds, producers, _ = best_of(run.args.repeat, once, "floor")
    return seconds, producers


def path(run) -> dict:
    """concentration() with the privacy units, then the same plus to_geojson."""
    from django.db import transaction

    concentration = concentration_module()
    grid = f"h3:{run.args.res}"

    def once(geojson: bool):
        with transaction.atomic():
            t0 = time.perf_counter()
            result = concentration.concentration(metric=run.args.metric, grid=grid)
            if geojson:
                result = concentration.to_geojson(result)
            return time.perf_counter() - t0, result

    out = {}
    out["aggregate"] = best_of(run.args.repeat, lambda: once(False), "concentration")[:2]
    out["geojson"] = best_of(run.args.repeat, lambda: once(True), "GeoJSON")[:2]
    return out


def rows(run) -> None:
    (floor_s, producers), (agg_s, result), (geo_s, doc) = run.floor, run.path["aggregate"], run.path["geojson"]
    print(f"concentration benchmark: {run.args.n} plots, H3 resolution {run.args.res}, best of {run.args.repeat}")
    print(f"{'measurement':<40} {'seconds':>9}  result")
    print("-" * 88)
    print(f"{'floor: bare GROUP BY producer':<40} {floor_s:>9.3f}  {producers} producers")
    print(f"{'concentration() with the privacy units':<40} {agg_s:>9.3f}  {len(result.areas)} areas over "
          f"{result.units} units")
    print(f"{'  + to_geojson (outlines, class breaks)':<40} {geo_s:>9.3f}  {len(doc['features'])} features")


def ratios(run) -> list[Ratio]:
    floor_s = run.floor[0]
    return [Ratio("concentration / floor", run.path["aggregate"][0] / floor_s),
            Ratio("GeoJSON / floor", run.path["geojson"][0] / floor_s)]


BENCHMARK = Benchmark(
    name="concentration", database=BENCH_DB, doc=__doc__, options=options, check=check, cut="Plots are",
    epilog="Examples:\n  scripts/bench concentration --n 100000 --repeat 1\n  scripts/bench concentration --res 8\n",
    load=load, floor=floor, path=path, peer=None, rows=rows, ratios=ratios)
