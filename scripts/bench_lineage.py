#!/usr/bin/env python
"""Benchmark the lineage selectors against the bare recursive SQL they are built on.

Run through the dispatcher: ``scripts/bench lineage [options]``.

What is measured (best of --repeat; floor and peers in the same run, same data):

  descendants  floor: the bare ``WITH RECURSIVE`` walk down from a root lot plus the plots
               its lots reached (dispatches), through psycopg2, rows fetched.
               selector: nurseries.selectors.lot_lineage(direction="down") as a technician:
               the lots with clone and nursery, the edges, the plots reached aggregated
               per plot (three recursive statements), and plot visibility.
               peer: a Python breadth-first walk, one query per generation (what the
               recursive SQL replaces).
  origin       floor: the bare ``WITH RECURSIVE`` walk up from every lot dispatched to a plot.
               selector: nurseries.selectors.plot_genetics (origin rows with clone, nursery
               and mother plot, the edges, the plot's dispatches and graftings).
               peer: the Python breadth-first walk upwards.

Data lives in a separate database, ``chacra_bench_lineage``, on the server that DATABASES
points at; the main database is never touched.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_geojson as common  # noqa: E402  (database set-up and synthetic plots are shared)

BENCH_DB = "chacra_bench_lineage"
common.BENCH_DB = BENCH_DB  # the shared helpers read the name at call time
ROOTS = 500  # seed lots with no parents
WINDOW = 200  # a lot's parents are among the WINDOW lots produced before it: ~50 generations in 10,000
UNITS = 10  # units per edge and per dispatch; every lot holds enough for all of them

DOWN_SQL = """WITH RECURSIVE down(id) AS (
        SELECT %(lot)s::bigint UNION SELECT e.child_id FROM nurseries_lotparent e JOIN down ON e.parent_id = down.id)
    SELECT down.id, d.to_plot_id FROM down LEFT JOIN nurseries_dispatch d ON d.lot_id = down.id"""
UP_SQL = """WITH RECURSIVE up(id) AS (
        SELECT lot_id FROM nurseries_dispatch WHERE to_plot_id = %(plot)s
        UNION SELECT e.parent_id FROM nurseries_lotparent e JOIN up ON e.child_id = up.id)
    SELECT id FROM up"""


class BenchError(Exception):
    """A failure told in words; exits non-zero."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench lineage", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n", 2)[2].split("Data lives")[0].rstrip(),
        epilog=("Database: chacra_bench_lineage next to the configured database, created when missing and\n"
                "migrated; loaded with --plots synthetic plots, --lots lots (a DAG: each lot has 1-3 parents\n"
                "among the lots produced just before it) and --dispatches dispatches. Loading is skipped\n"
                "when it already holds exactly that. The triggers are disabled during the bulk load (the\n"
                "data is consistent by construction) and conservation is then checked in one query.\n"
                "--drop removes the database at the end. Exit status 0 whatever the ratios (a report).\n\n"
                "Example:\n  scripts/bench lineage --lots 10000 --dispatches 100000 --repeat 5\n"))
    p.add_argument("--lots", type=int, default=10_000, help="material lots (default: %(default)s)")
    p.add_argument("--dispatches", type=int, default=100_000, help="dispatches to plots (default: %(default)s)")
    p.add_argument("--plots", type=int, default=20_000, help="synthetic plots (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=5, help="runs of each measurement; best reported (default 5)")
    p.add_argument("--reload", action="store_true", help="reload even when the database already holds the data")
    p.add_argument("--seed", type=int, default=20251123)
    p.add_argument("--drop", action="store_true", help="drop chacra_bench_lineage at the end")
    args = p.parse_args(argv)
    if args.lots <= ROOTS or args.dispatches < 1 or args.plots < 1 or args.repeat < 1:
        p.error(f"--lots must exceed {ROOTS}; --dispatches, --plots and --repeat must be at least 1")
    return args


def _copy(cur, table: str, columns: str, lines: list[str]) -> None:
    cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", io.StringIO("".join(lines)))


def load_lineage(bench_url: str, args: argparse.Namespace) -> None:
    import numpy as np

    conn = common.pg_connect(bench_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM nurseries_materiallot), (SELECT count(*) FROM nurseries_dispatch)")
            if cur.fetchone() == (args.lots, args.dispatches) and not args.reload:
                print(f"{BENCH_DB} already holds {args.lots} lots and {args.dispatches} dispatches: not reloading")
                return
            print(f"loading {args.lots} lots and {args.dispatches} dispatches")
            rng = np.random.default_rng(args.seed)
            cur.execute("TRUNCATE nurseries_grafting, nurseries_dispatch, nurseries_lotparent, nurseries_materiallot,"
                        " nurseries_nursery RESTART IDENTITY CASCADE")
            cur.execute("SELECT id FROM plots_organization ORDER BY id LIMIT 1")
            org = cur.fetchone()[0]
            _copy(cur, "nurseries_nursery", "code, name, kind, operator_organization_id, location, established_on",
                  [f"bench-n{i}\tVivero {i}\tcacao_seedling\t{org}\tSRID=4326;POINT({-76 + i * 0.01} -8.5)\t"
                   "2019-01-01\n" for i in range(50)])
            # Lot i is produced on day i/10 after 2020-01-01, so parents (earlier lots) are always older.
            per_lot_out = np.zeros(args.lots, dtype=np.int64)
            edges = []
            for child in range(ROOTS, args.lots):
                for parent in set(rng.integers(max(0, child - WINDOW), child, rng.integers(1, 4)).tolist()):
                    edges.append(f"{parent + 1}\t{child + 1}\t{UNITS}\n")
                    per_lot_out[parent] += UNITS
            lot_of = rng.integers(0, args.lots, args.dispatches)
            np.add.at(per_lot_out, lot_of, UNITS)
            plot_of = rng.integers(1, args.plots + 1, args.dispatches)
            cur.execute("SELECT min(id) FROM plots_plot")
            first_plot = cur.fetchone()[0]
            kinds = ["seed" if i < ROOTS else "grafted_plant" for i in range(args.lots)]
            _copy(cur, "nurseries_materiallot", "code, kind, species, quantity, produced_on, nursery_id, notes",
                  [f"bench-l{i + 1:06d}\t{kinds[i]}\tTheobroma cacao\t{per_lot_out[i] + 100}\t"
                   f"{np.datetime64('2020-01-01') + i // 10}\t{i % 50 + 1}\t\n" for i in range(args.lots)])
            cur.execute("ALTER TABLE nurseries_lotparent DISABLE TRIGGER USER")
            cur.execute("ALTER TABLE nurseries_dispatch DISABLE TRIGGER USER")
            _copy(cur, "nurseries_lotparent", "parent_id, child_id, quantity", edges)
            _copy(cur, "nurseries_dispatch", "code, lot_id, to_plot_id, quantity, dispatched_on",
                  [f"bench-d{k + 1:07d}\t{lot_of[k] + 1}\t{first_plot + plot_of[k] - 1}\t{UNITS}\t"
                   f"{np.datetime64('2020-01-01') + int(lot_of[k]) // 10 + 30}\n" for k in range(args.dispatches)])
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # run the deferred foreign-key checks now
            cur.execute("ALTER TABLE nurseries_lotparent ENABLE TRIGGER USER")
            cur.execute("ALTER TABLE nurseries_dispatch ENABLE TRIGGER USER")
            cur.execute("""SELECT count(*) FROM nurseries_materiallot l
                            WHERE l.quantity < (SELECT COALESCE(sum(quantity), 0) FROM nurseries_lotparent WHERE parent_id = l.id)
                                             + (SELECT COALESCE(sum(quantity), 0) FROM nurseries_dispatch WHERE lot_id = l.id)""")
            if cur.fetchone()[0]:
                raise BenchError("the synthetic lots break conservation; this is a bug in the generator")
            print(f"  {len(edges)} lineage edges")
        conn.commit()
    finally:
        conn.close()
    conn = common.pg_connect(bench_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            for table in ("nurseries_materiallot", "nurseries_lotparent", "nurseries_dispatch"):
                cur.execute(f"VACUUM ANALYZE {table}")
    finally:
        conn.close()


def best(repeat: int, fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def bare(bench_url: str, sql: str, params: dict):
    conn = common.pg_connect(bench_url)

    def run():
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    return conn, run


def python_walk(start_ids: list[int], column_from: str, column_to: str) -> set[int]:
    """Breadth-first, one query per generation: the loop the recursive SQL replaces."""
    from nurseries.models import LotParent

    seen, frontier = set(start_ids), set(start_ids)
    while frontier:
        step = set(LotParent.objects.filter(**{f"{column_from}__in": frontier}).values_list(column_to, flat=True))
        frontier = step - seen
        seen |= frontier
    return seen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base_url = common.configured_url()
    bench_url = common.ensure_bench_database(base_url)
    common.setup_django(bench_url)
    common.load_data(bench_url, args.plots, args.seed, args.reload)
    load_lineage(bench_url, args)
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from nurseries import selectors
    from nurseries.models import Dispatch, MaterialLot
    from plots.models import UserProfile

    user, _ = get_user_model().objects.get_or_create(username="bench-technician")
    UserProfile.objects.update_or_create(user=user, defaults={"role": "technician", "organization": None})
    # The root: the seed lot (no parents) with the most children, so the walk down has work to do.
    root = (MaterialLot.objects.filter(kind="seed").annotate(n=Count("child_edges")).order_by("-n", "id").first())
    deep = Dispatch.objects.filter(lot__code=f"bench-l{args.lots:06d}").select_related("to_plot").first() or \
        Dispatch.objects.order_by("-lot_id").select_related("to_plot").first()
    plot = deep.to_plot

    print("timing")
    results = {}
    conn, floor_down = bare(bench_url, DOWN_SQL, {"lot": root.id})
    results["down floor"] = best(args.repeat, floor_down)
    results["down selector"] = best(args.repeat, lambda: selectors.lot_lineage(user=user, code=root.code,
                                                                                direction="down"))
    results["down python"] = best(args.repeat, lambda: python_walk([root.id], "parent_id", "child_id"))
    _, floor_up = bare(bench_url, UP_SQL, {"plot": plot.id})
    results["up floor"] = best(args.repeat, floor_up)
    results["up selector"] = best(args.repeat, lambda: selectors.plot_genetics(user=user, code=plot.code))
    direct = list(Dispatch.objects.filter(to_plot=plot).values_list("lot_id", flat=True))
    results["up python"] = best(args.repeat, lambda: python_walk(direct, "child_id", "parent_id"))
    conn.close()

    lineage = results["down selector"][1]
    down_lots = {row[0] for row in results["down floor"][1]}
    if len(lineage.lots) != len(down_lots) or len(results["down python"][1]) != len(down_lots):
        raise BenchError("selector, floor and Python walk disagree on the descendants")
    up_lots = {row[0] for row in results["up floor"][1]}
    if len(results["up selector"][1].origin) != len(up_lots) or len(results["up python"][1]) != len(up_lots):
        raise BenchError("selector, floor and Python walk disagree on the genetic origin")

    print()
    print(f"lineage benchmark: {args.lots} lots, {args.dispatches} dispatches, {args.plots} plots in {BENCH_DB}")
    print(f"  descendants of {root.code}: {len(down_lots) - 1} lots, {len(lineage.plot_ids)} plots reached")
    print(f"  genetic origin of {plot.code}: {len(up_lots)} lots")
    print(f"{'measurement':<44} {'ms':>9}")
    for name, (seconds, _) in results.items():
        print(f"{name:<44} {seconds * 1000:>9.2f}")
    print("ratios (best of %d)" % args.repeat)
    for what in ("down", "up"):
        floor = results[f"{what} floor"][0]
        print(f"  {what:<5} selector / bare recursive SQL = {results[f'{what} selector'][0] / floor:6.2f}x")
        print(f"  {what:<5} Python walk / bare recursive SQL = {results[f'{what} python'][0] / floor:6.2f}x")
    if args.drop:
        common.drop_bench_database(base_url)
    else:
        print(f"kept database {BENCH_DB} (--drop to remove it)")
    return 0 if all(math.isfinite(s) for s, _ in results.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, common.BenchError) as exc:
        print(f"bench lineage: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
