"""The harness every benchmark runs in: database lifecycle, best-of timing, the ratio table.

A benchmark is one module of this package ending in ``BENCHMARK = Benchmark(...)``. It holds
only what is its own: its options, and four parts called in this order —

  load(run)    the data, untimed (skipped when the bench database already holds it)
  floor(run)   the bare statement or tool the Chacra path is measured against
  path(run)    the Chacra path itself
  peer(run)    a third-party or naive alternative, for reference (None: there is none)

then ``rows(run)`` prints the measurement table, ``ratios(run)`` returns the lines of the
ratio table, and ``after(run)`` prints what follows it. ``run(benchmark, argv)`` parses the
options, creates the bench database next to the configured one (never touching the
configured one), points Django at it and migrates, calls the parts, prints, and drops the
database (--drop) or keeps it.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class BenchError(Exception):
    """A failure told in words; exits non-zero."""


# --------------------------------------------------------------------------- database

def configured_url() -> str:
    """The URL the project would use: DATABASE_URL, else the private cluster."""
    from chacra import pgcluster

    return os.environ.get("DATABASE_URL") or pgcluster.cluster().database_url


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def connect_params(url: str) -> dict:
    import dj_database_url

    cfg = dj_database_url.parse(url)
    params = {"dbname": cfg["NAME"]}
    for key, name in (("USER", "user"), ("PASSWORD", "password"), ("HOST", "host"), ("PORT", "port")):
        if cfg.get(key):
            params[name] = cfg[key]
    params.update(cfg.get("OPTIONS") or {})
    return params


def pg_connect(url: str, *, dbname: str | None = None, autocommit: bool = False):
    import psycopg2

    params = connect_params(url)
    if dbname:
        params["dbname"] = dbname
    conn = psycopg2.connect(**params)
    conn.autocommit = autocommit
    return conn


def _admin(base_url: str):
    try:
        return pg_connect(base_url, dbname="postgres", autocommit=True)
    except Exception:
        return pg_connect(base_url, autocommit=True)  # no 'postgres' database: go through the configured one


def ensure_bench_database(base_url: str, name: str) -> str:
    """Create the database ``name`` (with PostGIS) next to the configured one when missing; its URL."""
    from psycopg2 import sql

    if connect_params(base_url)["dbname"] == name:
        raise BenchError(f"the configured database is already named {name!r}; refusing to use it as the "
                         "bench database (point DATABASE_URL at the real database instead)")
    admin = _admin(base_url)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is None:
                print(f"creating database {name}")
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        admin.close()
    url = with_database(base_url, name)
    execute(url, "CREATE EXTENSION IF NOT EXISTS postgis")
    return url


def drop_bench_database(base_url: str, name: str) -> None:
    from psycopg2 import sql

    if "django" in sys.modules:
        from django.db import connections

        connections.close_all()
    admin = _admin(base_url)
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        admin.close()
    print(f"dropped database {name}")


def setup_django(url: str, name: str) -> None:
    """Django on the bench database, DEBUG off, migrated."""
    os.environ["DATABASE_URL"] = url
    os.environ["DEBUG"] = "0"
    os.environ["DJANGO_SETTINGS_MODULE"] = "chacra.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.DEBUG:
        raise BenchError("DEBUG is on after setup; the benchmark must run with DEBUG off")
    if settings.DATABASES["default"]["NAME"] != name:
        raise BenchError(f"Django is not pointed at {name} (got {settings.DATABASES['default']['NAME']!r})")
    if "testserver" not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS.append("testserver")
    call_command("migrate", verbosity=0, interactive=False)


def fetch(url: str, sql: str, params=None) -> list[tuple]:
    """The rows of one statement, on a connection of its own."""
    conn = pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def execute(url: str, *statements: str) -> None:
    """Statements outside a transaction (VACUUM, CREATE EXTENSION), on a connection of their own."""
    conn = pg_connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def vacuum_analyze(url: str, *tables: str) -> None:
    execute(url, *(f"VACUUM ANALYZE {table}" for table in tables))


def import_first(*names: str):
    """The first of ``names`` that imports, for project modules that are moving: a module
    missing under its new name falls back to the old one, but an error inside a module that
    exists is raised."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name) or name == names[-1]:
                raise
    raise ModuleNotFoundError(names[-1])


# --------------------------------------------------------------------------- timing

def best_of(repeat: int, fn: Callable[[], tuple[float, Any]], label: str):
    """Run ``fn`` ``repeat`` times; it returns (seconds, result), timing only what is measured.
    Returns (best seconds, result of the best run, all times) and prints each run."""
    best, result, times = math.inf, None, []
    for i in range(repeat):
        t, r = fn()
        times.append(t)
        print(f"  {label} run {i + 1}/{repeat}: {t:.3f} s")
        if t < best:
            best, result = t, r
    return best, result, times


def clock(fn: Callable[[], Any]) -> Callable[[], tuple[float, Any]]:
    """``fn`` timed whole, for best_of."""
    def timed():
        t0 = time.perf_counter()
        result = fn()
        return time.perf_counter() - t0, result
    return timed


# --------------------------------------------------------------------------- ratio table

@dataclass
class Ratio:
    """One line of the ratio table: ``label = value x``, against a target (PASS or MISS) or with a note."""

    label: str
    value: float
    target: float | None = None
    at_least: bool = False  # the target is a minimum (>=), not a maximum (<=)
    note: str = ""  # after the value when there is no target, e.g. "(reference, no target)"
    suffix: str = ""  # after PASS/MISS
    fmt: str = "6.2f"

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.at_least else self.value <= self.target

    def line(self, width: int) -> str:
        text = f"  {self.label:<{width}} = {self.value:{self.fmt}}x"
        if self.target is not None:
            text += (f"   target {'>=' if self.at_least else '<='} {self.target:g}x   "
                     f"{'PASS' if self.passed else 'MISS'}{self.suffix}")
        elif self.note:
            text += f"   {self.note}"
        return text


def print_ratios(ratios: list[Ratio], *, width: int = 40, title: str = "ratios") -> None:
    print(title)
    for ratio in ratios:
        print(ratio.line(width))


# --------------------------------------------------------------------------- benchmark

class Run:
    """One run of a benchmark: its options, databases, the results of its parts, and whatever
    else its parts hand one another (set as attributes). ``stack`` closes what load opened
    (temporary folders, connections) once the tables are printed."""

    def __init__(self, args: argparse.Namespace, database: str) -> None:
        self.args, self.database = args, database
        self.base_url = self.url = ""
        self.floor = self.path = self.peer = None
        self.status = 0
        self.stack = ExitStack()


@dataclass(frozen=True)
class Benchmark:
    name: str  # scripts/bench NAME
    database: str  # the bench database, next to the configured one
    doc: str  # the module docstring: its third line on, up to ``cut``, is the --help description
    options: Callable[[argparse.ArgumentParser], None]  # add_argument calls
    load: Callable[[Run], Any]
    floor: Callable[[Run], Any] | None
    path: Callable[[Run], Any]
    peer: Callable[[Run], Any] | None
    rows: Callable[[Run], None]  # print the measurement table
    ratios: Callable[[Run], list[Ratio]] | None = None
    check: Callable[[argparse.ArgumentParser, argparse.Namespace], None] | None = None  # p.error on bad options
    epilog: str = ""
    cut: str = "Data lives"
    ratio_width: int = 40
    ratio_title: str = "ratios"  # formatted with args=
    after: Callable[[Run], None] | None = None  # prints what follows the ratio table
    django: bool = True  # False: no Django in this process (the benchmark starts its own servers)

    def parser(self) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog=f"scripts/bench {self.name}", epilog=self.epilog or None,
                                    formatter_class=argparse.RawDescriptionHelpFormatter,
                                    description=self.doc.split("\n", 2)[2].split(self.cut)[0].rstrip())
        self.options(p)
        return p

    def parse_args(self, argv: list[str] | None = None) -> argparse.Namespace:
        p = self.parser()
        args = p.parse_args(argv)
        if self.check:
            self.check(p, args)
        return args


def run(bench: Benchmark, argv: list[str] | None = None) -> int:
    """The whole lifecycle of one benchmark; the exit status."""
    r = Run(bench.parse_args(argv), bench.database)
    try:
        r.base_url = configured_url()
        r.url = ensure_bench_database(r.base_url, bench.database)
        print(f"bench database: {bench.database}")
        if bench.django:
            setup_django(r.url, bench.database)
        with r.stack:
            bench.load(r)
            print("timing")
            r.floor = bench.floor(r) if bench.floor else None
            r.path = bench.path(r)
            r.peer = bench.peer(r) if bench.peer else None
            print()
            bench.rows(r)
            ratios = bench.ratios(r) if bench.ratios else []
            if ratios:
                print()
                print_ratios(ratios, width=bench.ratio_width, title=bench.ratio_title.format(args=r.args))
            if bench.after:
                bench.after(r)
        if getattr(r.args, "drop", False):
            drop_bench_database(r.base_url, bench.database)
        elif hasattr(r.args, "drop"):
            print(f"kept database {bench.database} (--drop to remove it)")
        return r.status
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"bench {bench.name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
