#!/usr/bin/env python
"""Benchmark the map endpoints against their SQL floors: vector tiles and OGC items.

Run through the dispatcher: ``scripts/bench tiles [options]``.

What is measured (best of --repeat), on the N plots of the bench database:

  tiles z8, z10, z12   GET /tiles/plots/{z}/{x}/{y}.mvt through Django (token auth, role
                       scope, ETag) for a block of --tiles × --tiles tiles around the densest
                       spot, against the floor: the same ST_AsMVT statement PREPAREd once and
                       EXECUTEd for each tile on a plain psycopg2 connection.
  OGC items            GET /ogc/collections/plots/items?limit=1000&offset=… for --pages pages,
                       against the floor: the two bare statements the page needs (count of the
                       matching plots, and the page of Feature texts by id), prepared, and the
                       texts joined into a FeatureCollection.

Plots are the synthetic ones of scripts/bench geojson (star-shaped 0.3–12 ha polygons
across San Martín, Huánuco and Ucayali), loaded into ``chacra_bench`` when it does not
already hold N plots. The main database is never touched.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "scripts")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import bench_geojson as common  # noqa: E402

TILE_TARGET = 1.3
ZOOMS = (8, 10, 12)


class BenchError(common.BenchError):
    """A failure told in words; exits non-zero."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench tiles", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n", 2)[2].split("Plots are")[0].rstrip(),
        epilog=(f"Target: each zoom's tiles/floor <= {TILE_TARGET}x (PASS or MISS); the OGC ratio is reported.\n"
                "Exit status 0 whatever the targets say; non-zero on errors.\n\n"
                "Examples:\n  scripts/bench tiles --n 20000 --repeat 1\n  scripts/bench tiles --tiles 3 --pages 5\n"))
    p.add_argument("--n", type=int, default=100_000, help="plots in chacra_bench (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default: %(default)s)")
    p.add_argument("--tiles", type=int, default=5, help="tiles per side of the block at each zoom (default: %(default)s)")
    p.add_argument("--pages", type=int, default=20, help="OGC pages of 1,000 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=20260101, help="random seed when the plots are loaded")
    p.add_argument("--reload", action="store_true", help="reload the plots even when N are there")
    args = p.parse_args(argv)
    if min(args.n, args.repeat, args.tiles, args.pages) < 1:
        p.error("--n, --repeat, --tiles and --pages must be at least 1")
    return args


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def densest_spot(url: str) -> tuple[float, float]:
    """The centre of the most crowded 0.1° cell: where a map user looks."""
    conn = common.pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT floor(ST_X(c) * 10) / 10 + 0.05, floor(ST_Y(c) * 10) / 10 + 0.05 FROM "
                        "(SELECT ST_Centroid(boundary) AS c FROM plots_plot WHERE boundary IS NOT NULL) s "
                        "GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1")
            row = cur.fetchone()
    finally:
        conn.close()
    if row is None:
        raise BenchError("the bench database holds no plot boundaries")
    return float(row[0]), float(row[1])


def block(lon: float, lat: float, z: int, side: int) -> list[tuple[int, int, int]]:
    cx, cy = tile_of(lon, lat, z)
    half = side // 2
    return [(z, cx + dx, cy + dy) for dx in range(-half, side - half) for dy in range(-half, side - half)]


def time_tile_floor(url: str, tiles: list[tuple[int, int, int]], repeat: int) -> tuple[float, int]:
    from api import tiles as tile_module

    sql, _ = tile_module.tile_sql(tile_module.LAYERS["plots"], _Staff())
    prepared = sql.replace("%(z)s", "$1").replace("%(x)s", "$2").replace("%(y)s", "$3")
    conn = common.pg_connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("DEALLOCATE ALL")
            cur.execute(f"PREPARE chacra_tile(int, int, int) AS {prepared}")

            def once():
                total = 0
                t0 = time.perf_counter()
                for z, x, y in tiles:
                    cur.execute("EXECUTE chacra_tile(%s, %s, %s)", (z, x, y))
                    data = cur.fetchone()[0]
                    total += len(bytes(data)) if data is not None else 0
                return time.perf_counter() - t0, total

            best, size, _ = common.best_of(repeat, once, f"floor z{tiles[0][0]}")
    finally:
        conn.close()
    return best, size


class _Staff:
    """Stands for a technician when building the floor's SQL (no role filter)."""

    is_authenticated = True
    is_superuser = True


def time_tile_endpoint(token: str, tiles: list[tuple[int, int, int]], repeat: int) -> tuple[float, int]:
    from django.test import Client

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}

    def once():
        total = 0
        t0 = time.perf_counter()
        for z, x, y in tiles:
            response = client.get(f"/tiles/plots/{z}/{x}/{y}.mvt", **auth)
            if response.status_code != 200:
                raise BenchError(f"tile {z}/{x}/{y} answered {response.status_code}: {response.content[:300]!r}")
            total += len(response.content)
        return time.perf_counter() - t0, total

    best, size, _ = common.best_of(repeat, once, f"endpoint z{tiles[0][0]}")
    return best, size


OGC_COUNT = "SELECT count(*) FROM plots_plot WHERE status = 'active'"
OGC_PAGE = "SELECT feature_geojson FROM plots_plot WHERE status = 'active' ORDER BY id LIMIT 1000 OFFSET $1"


def time_ogc_floor(url: str, pages: int, repeat: int) -> tuple[float, int]:
    conn = common.pg_connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("PREPARE chacra_ogc_count AS " + OGC_COUNT)
            cur.execute("PREPARE chacra_ogc_page(int) AS " + OGC_PAGE)

            def once():
                total = 0
                t0 = time.perf_counter()
                for k in range(pages):
                    cur.execute("EXECUTE chacra_ogc_count")
                    matched = cur.fetchone()[0]
                    cur.execute("EXECUTE chacra_ogc_page(%s)", (k * 1000,))
                    body = ('{"type":"FeatureCollection","numberMatched":' + str(matched) + ',"features":['
                            + ",".join(r[0] for r in cur.fetchall()) + "]}")
                    total += len(body)
                return time.perf_counter() - t0, total

            best, size, _ = common.best_of(repeat, once, "OGC floor")
    finally:
        conn.close()
    return best, size


def time_ogc_endpoint(token: str, pages: int, repeat: int) -> tuple[float, int]:
    from django.test import Client

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}

    def once():
        total = 0
        t0 = time.perf_counter()
        for k in range(pages):
            response = client.get(f"/ogc/collections/plots/items?limit=1000&offset={k * 1000}", **auth)
            if response.status_code != 200:
                raise BenchError(f"OGC page {k} answered {response.status_code}: {response.content[:300]!r}")
            total += len(response.content)
        return time.perf_counter() - t0, total

    best, size, _ = common.best_of(repeat, once, "OGC endpoint")
    return best, size


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base_url = common.configured_url()
    url = common.ensure_bench_database(base_url)
    print(f"bench database: {common.BENCH_DB}")
    common.setup_django(url)
    conn = common.pg_connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM plots_plot")
        have = cur.fetchone()[0]
    conn.close()
    if have != args.n or args.reload:
        common.load_data(url, args.n, args.seed, force=True)
    token = common.bench_user_token()
    lon, lat = densest_spot(url)
    print(f"densest spot: {lon:.2f}, {lat:.2f}")
    results = {}
    for z in ZOOMS:
        tiles = block(lon, lat, z, args.tiles)
        floor, floor_bytes = time_tile_floor(url, tiles, args.repeat)
        endpoint, endpoint_bytes = time_tile_endpoint(token, tiles, args.repeat)
        # Same tiles, same content; the byte count may differ by a few bytes when the two
        # plans emit the features in another order (the MVT key/value tables follow it).
        if abs(floor_bytes - endpoint_bytes) > 0.001 * floor_bytes:
            raise BenchError(f"z{z}: the endpoint sent {endpoint_bytes} bytes, the floor made {floor_bytes}")
        results[z] = (floor, endpoint, len(tiles), floor_bytes)
    pages = min(args.pages, max(1, args.n // 1000))
    ogc_floor, _ = time_ogc_floor(url, pages, args.repeat)
    ogc_endpoint, _ = time_ogc_endpoint(token, pages, args.repeat)

    print()
    print(f"map endpoints benchmark: {args.n} plots, best of {args.repeat}")
    print(f"{'measurement':<34} {'floor s':>9} {'endpoint s':>11} {'ms/tile':>8} {'bytes':>11}  ratio")
    print("-" * 92)
    for z, (floor, endpoint, count, size) in results.items():
        ratio = endpoint / floor
        print(f"{f'tiles z{z} ({count} tiles)':<34} {floor:>9.3f} {endpoint:>11.3f} {1000 * endpoint / count:>8.2f} "
              f"{size:>11,}  {ratio:5.2f}x  target <= {TILE_TARGET}x  {'PASS' if ratio <= TILE_TARGET else 'MISS'}")
    print(f"{f'OGC items, {pages} pages of 1,000':<34} {ogc_floor:>9.3f} {ogc_endpoint:>11.3f} {'':>8} {'':>11}  "
          f"{ogc_endpoint / ogc_floor:5.2f}x")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except common.BenchError as exc:
        print(f"bench tiles: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
