#!/usr/bin/env python
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

import argparse
import io
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "scripts")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import bench_geojson as common  # noqa: E402

BENCH_DB = "chacra_bench_conc"
CHUNK = 50_000


class BenchError(common.BenchError):
    """A failure told in words; exits non-zero."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench concentration", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n", 2)[2].split("Plots are")[0].rstrip(),
        epilog="Examples:\n  scripts/bench concentration --n 100000 --repeat 1\n  scripts/bench concentration --res 8\n")
    p.add_argument("--n", type=int, default=1_000_000, help="synthetic plots (default: %(default)s)")
    p.add_argument("--res", type=int, default=7, choices=range(5, 10), help="H3 resolution (default: %(default)s)")
    p.add_argument("--metric", default="fine_flavour_ha", help="metric for the GeoJSON (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default: %(default)s)")
    p.add_argument("--seed", type=int, default=20260303)
    p.add_argument("--reload", action="store_true", help="reload the plots even when N are there")
    p.add_argument("--drop", action="store_true", help=f"drop {BENCH_DB} at the end")
    args = p.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        p.error("--n and --repeat must be at least 1")
    return args


def load(url: str, n: int, seed: int, force: bool) -> None:
    import h3
    import numpy as np
    from tqdm import tqdm

    conn = common.pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(h3_cell) FROM plots_plot")
            have, with_cell = cur.fetchone()
        if have == n == with_cell and not force:
            print(f"{BENCH_DB} already holds {n} plots: not reloading (use --reload to force)")
            return
        print(f"loading {n} synthetic plots into {BENCH_DB}")
        rng = np.random.default_rng(seed)
        n_producers = max(1, round(n / 1.5))
        with conn.cursor() as cur:
            cur.execute("TRUNCATE plots_plot, plots_producer, plots_organization RESTART IDENTITY CASCADE")
            cur.execute("INSERT INTO plots_organization (code, name, kind, ruc, created_at, updated_at) VALUES "
                        "('bench-conc', 'Cooperativa Bench', 'cooperative', '', now(), now()) RETURNING id")
            org = cur.fetchone()[0]
            gender = np.where(rng.random(n_producers) < 0.35, "female", "male")
            buf = io.StringIO("".join(f"bc-p{i + 1:07d}\tProductor {i + 1}\t{gender[i]}\t\t\t{org}\tnow\tnow\n"
                                      for i in range(n_producers)))
            cur.copy_expert("COPY plots_producer (code, name, gender, national_id, phone, organization_id, "
                            "created_at, updated_at) FROM STDIN", buf)
            cur.execute("SELECT min(id) FROM plots_producer")
            first_producer = cur.fetchone()[0]
            cur.execute("ALTER TABLE plots_plot DISABLE TRIGGER plots_plot_feature")
            with tqdm(total=n, unit="plot", unit_scale=True, desc="  generate+COPY") as bar:
                for start in range(0, n, CHUNK):
                    count = min(CHUNK, n - start)
                    lat = rng.uniform(-10.5, -6.5, count)
                    lon = rng.uniform(-78.0, -74.0, count)
                    area = np.exp(rng.uniform(math.log(0.3), math.log(12.0), count))
                    geoms = common.polygons_ewkb_hex(rng, lat, lon, area, rng.integers(8, 17, count))
                    cells = [h3.str_to_int(h3.latlng_to_cell(y, x, 9)) for y, x in zip(lat, lon)]
                    producer = first_producer + rng.integers(0, n_producers, count)
                    planting = rng.integers(1990, 2025, count)
                    rows = "".join(f"bc-{start + i + 1:07d}\t{producer[i]}\t{org}\t{geoms[i].decode()}\t{cells[i]}\t"
                                   f"{planting[i]}\tactive\tha\tunknown\tunknown\t{{}}\tunknown\t\tnow\tnow\n"
                                   for i in range(count))
                    cur.copy_expert("COPY plots_plot (code, producer_id, organization_id, boundary, h3_cell, "
                                    "planting_year, status, declared_area_unit, tenure, agroforestry_system, "
                                    "shade_species, survey_method, retired_reason, created_at, updated_at) FROM STDIN",
                                    io.StringIO(rows))
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
    conn = common.pg_connect(url, autocommit=True)
    with conn.cursor() as cur:
        for table in ("plots_producer", "plots_plot", "plots_checkresult"):
            cur.execute(f"VACUUM ANALYZE {table}")
    conn.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base_url = common.configured_url()
    url = common.ensure_bench_database(base_url, BENCH_DB)
    print(f"bench database: {BENCH_DB}")
    common.setup_django(url, BENCH_DB)
    load(url, args.n, args.seed, args.reload)

    from django.db import connection, transaction

    from plots import concentration

    floor_sql = concentration.BASE.format(production=concentration.production_sql(), where="") \
        + concentration.PER_PRODUCER

    def floor():
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL jit = off")
            t0 = time.perf_counter()
            cur.execute(floor_sql)
            rows = cur.fetchall()
            return time.perf_counter() - t0, len(rows)

    def aggregate():
        with transaction.atomic():
            t0 = time.perf_counter()
            result = concentration.concentration(metric=args.metric, grid=f"h3:{args.res}")
            return time.perf_counter() - t0, result

    def geojson():
        with transaction.atomic():
            t0 = time.perf_counter()
            doc = concentration.to_geojson(concentration.concentration(metric=args.metric, grid=f"h3:{args.res}"))
            return time.perf_counter() - t0, doc

    print("timing")
    floor_s, cells, _ = common.best_of(args.repeat, floor, "floor")
    agg_s, result, _ = common.best_of(args.repeat, aggregate, "concentration")
    geo_s, doc, _ = common.best_of(args.repeat, geojson, "GeoJSON")
    print()
    print(f"concentration benchmark: {args.n} plots, H3 resolution {args.res}, best of {args.repeat}")
    print(f"{'measurement':<40} {'seconds':>9}  result")
    print("-" * 88)
    print(f"{'floor: bare GROUP BY producer':<40} {floor_s:>9.3f}  {cells} producers")
    print(f"{'concentration() with the privacy units':<40} {agg_s:>9.3f}  {len(result.areas)} areas over "
          f"{result.units} units")
    print(f"{'  + to_geojson (outlines, class breaks)':<40} {geo_s:>9.3f}  {len(doc['features'])} features")
    print()
    print("ratios")
    print(f"  {'concentration / floor':<40} = {agg_s / floor_s:6.2f}x")
    print(f"  {'GeoJSON / floor':<40} = {geo_s / floor_s:6.2f}x")
    if args.drop:
        common.drop_bench_database(base_url, BENCH_DB)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except common.BenchError as exc:
        print(f"bench concentration: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
