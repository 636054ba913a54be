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

import math

from benchmarks import synthetic
from benchmarks.harness import BenchError, Benchmark, Ratio, best_of, clock, pg_connect, vacuum_analyze

BENCH_DB = "chacra_bench_lineage"
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


def options(p) -> None:
    p.add_argument("--lots", type=int, default=10_000, help="material lots (default: %(default)s)")
    p.add_argument("--dispatches", type=int, default=100_000, help="dispatches to plots (default: %(default)s)")
    p.add_argument("--plots", type=int, default=20_000, help="synthetic plots (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=5, help="runs of each measurement; best reported (default 5)")
    p.add_argument("--reload", action="store_true", help="reload even when the database already holds the data")
    p.add_argument("--seed", type=int, default=20251123)
    p.add_argument("--drop", action="store_true", help="drop chacra_bench_lineage at the end")


def check(p, args) -> None:
    if args.lots <= ROOTS or args.dispatches < 1 or args.plots < 1 or args.repeat < 1:
        p.error(f"--lots must exceed {ROOTS}; --dispatches, --plots and --repeat must be at least 1")


def load_lineage(url: str, args) -> None:
    import numpy as np

    conn = pg_connect(url)
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
            synthetic.copy_rows(cur, "nurseries_nursery", "code, name, kind, operator_organization_id, location, "
                                "established_on", ((f"bench-n{i}", f"Vivero {i}", "cacao_seedling", org,
                                                    f"SRID=4326;POINT({-76 + i * 0.01} -8.5)", "2019-01-01")
                                                   for i in range(50)))
            # Lot i is produced on day i/10 after 2020-01-01, so parents (earlier lots) are always older.
            per_lot_out = np.zeros(args.lots, dtype=np.int64)
            edges = []
            for child in range(ROOTS, args.lots):
                for parent in set(rng.integers(max(0, child - WINDOW), child, rng.integers(1, 4)).tolist()):
                    edges.append((parent + 1, child + 1, UNITS))
                    per_lot_out[parent] += UNITS
            lot_of = rng.integers(0, args.lots, args.dispatches)
            np.add.at(per_lot_out, lot_of, UNITS)
            plot_of = rng.integers(1, args.plots + 1, args.dispatches)
            cur.execute("SELECT min(id) FROM plots_plot")
            first_plot = cur.fetchone()[0]
            synthetic.copy_rows(cur, "nurseries_materiallot", "code, kind, species, quantity, produced_on, nursery_id, "
                                "notes", ((f"bench-l{i + 1:06d}", "seed" if i < ROOTS else "grafted_plant",
                                          "Theobroma cacao", per_lot_out[i] + 100,
                                          np.datetime64("2020-01-01") + i // 10, i % 50 + 1, "")
                                         for i in range(args.lots)))
            cur.execute("ALTER TABLE nurseries_lotparent DISABLE TRIGGER USER")
            cur.execute("ALTER TABLE nurseries_dispatch DISABLE TRIGGER USER")
            synthetic.copy_rows(cur, "nurseries_lotparent", "parent_id, child_id, quantity", edges)
            synthetic.copy_rows(cur, "nurseries_dispatch", "code, lot_id, to_plot_id, quantity, dispatched_on",
                                ((f"bench-d{k + 1:07d}", lot_of[k] + 1, first_plot + plot_of[k] - 1, UNITS,
                                  np.datetime64("2020-01-01") + int(lot_of[k]) // 10 + 30)
                                 for k in range(args.dispatches)))
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
    vacuum_analyze(url, "nurseries_materiallot", "nurseries_lotparent", "nurseries_dispatch")


def load(run) -> None:
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from nurseries.models import Dispatch, MaterialLot
    from plots.models import UserProfile

    synthetic.load_plots(run.url, BENCH_DB, run.args.plots, run.args.seed, run.args.reload)
    load_lineage(run.url, run.args)
    run.user, _ = get_user_model().objects.get_or_create(username="bench-technician")
    UserProfile.objects.update_or_create(user=run.user, defaults={"role": "technician", "organization": None})
    # The root: the seed lot (no parents) with the most children, so the walk down has work to do.
    run.root = MaterialLot.objects.filter(kind="seed").annotate(n=Count("child_edges")).order_by("-n", "id").first()
    deep = Dispatch.objects.filter(lot__code=f"bench-l{run.args.lots:06d}").select_related("to_plot").first() or \
        Dispatch.objects.order_by("-lot_id").select_related("to_plot").first()
    run.plot = deep.to_plot
    run.direct = list(Dispatch.objects.filter(to_plot=run.plot).values_list("lot_id", flat=True))


def floor(run) -> dict:
    conn = pg_connect(run.url)

    def bare(sql: str, params: dict):
        def fetch():
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        return clock(fetch)

    try:
        return {"down": best_of(run.args.repeat, bare(DOWN_SQL, {"lot": run.root.id}), "down floor")[:2],
                "up": best_of(run.args.repeat, bare(UP_SQL, {"plot": run.plot.id}), "up floor")[:2]}
    finally:
        conn.close()


def path(run) -> dict:
    from nurseries import selectors

    down = best_of(run.args.repeat, clock(lambda: selectors.lot_lineage(user=run.user, code=run.root.code,
                                                                          direction="down")), "down selector")[:2]
    up = best_of(run.args.repeat, clock(lambda: selectors.plot_genetics(user=run.user, code=run.plot.code)),
                 "up selector")[:2]
    return {"down": down, "up": up}


def python_walk(start_ids: list[int], column_from: str, column_to: str) -> set[int]:
    """Breadth-first, one query per generation: the loop the recursive SQL replaces."""
    from nurseries.models import LotParent

    seen, frontier = set(start_ids), set(start_ids)
    while frontier:
        step = set(LotParent.objects.filter(**{f"{column_from}__in": frontier}).values_list(column_to, flat=True))
        frontier = step - seen
        seen |= frontier
    return seen


def peer(run) -> dict:
    down = best_of(run.args.repeat, clock(lambda: python_walk([run.root.id], "parent_id", "child_id")),
                   "down python")[:2]
    up = best_of(run.args.repeat, clock(lambda: python_walk(run.direct, "child_id", "parent_id")), "up python")[:2]
    return {"down": down, "up": up}


def rows(run) -> None:
    lineage = run.path["down"][1]
    down_lots = {row[0] for row in run.floor["down"][1]}
    if len(lineage.lots) != len(down_lots) or len(run.peer["down"][1]) != len(down_lots):
        raise BenchError("selector, floor and Python walk disagree on the descendants")
    up_lots = {row[0] for row in run.floor["up"][1]}
    if len(run.path["up"][1].origin) != len(up_lots) or len(run.peer["up"][1]) != len(up_lots):
        raise BenchError("selector, floor and Python walk disagree on the genetic origin")
    args = run.args
    print(f"lineage benchmark: {args.lots} lots, {args.dispatches} dispatches, {args.plots} plots in {BENCH_DB}")
    print(f"  descendants of {run.root.code}: {len(down_lots) - 1} lots, {len(lineage.plot_ids)} plots reached")
    print(f"  genetic origin of {run.plot.code}: {len(up_lots)} lots")
    print(f"{'measurement':<44} {'ms':>9}")
    for what in ("down", "up"):
        for part, results in (("floor", run.floor), ("selector", run.path), ("python", run.peer)):
            print(f"{what + ' ' + part:<44} {results[what][0] * 1000:>9.2f}")
    if not all(math.isfinite(r[what][0]) for r in (run.floor, run.path, run.peer) for what in ("down", "up")):
        run.status = 1


def ratios(run) -> list[Ratio]:
    out = []
    for what in ("down", "up"):
        floor = run.floor[what][0]
        out += [Ratio(f"{what:<5} selector / bare recursive SQL", run.path[what][0] / floor),
                Ratio(f"{what:<5} Python walk / bare recursive SQL", run.peer[what][0] / floor)]
    return out


BENCHMARK = Benchmark(
    name="lineage", database=BENCH_DB, doc=__doc__, options=options, check=check,
    epilog=("Database: chacra_bench_lineage next to the configured database, created when missing and\n"
            "migrated; loaded with --plots synthetic plots, --lots lots (a DAG: each lot has 1-3 parents\n"
            "among the lots produced just before it) and --dispatches dispatches. Loading is skipped\n"
            "when it already holds exactly that. The triggers are disabled during the bulk load (the\n"
            "data is consistent by construction) and conservation is then checked in one query.\n"
            "--drop removes the database at the end. Exit status 0 whatever the ratios (a report).\n\n"
            "Example:\n  scripts/bench lineage --lots 10000 --dispatches 100000 --repeat 5\n"),
    load=load, floor=floor, path=path, peer=peer, rows=rows, ratios=ratios, ratio_width=0,
    ratio_title="ratios (best of {args.repeat})")
