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

import math
import time

from benchmarks import synthetic
from benchmarks.harness import BenchError, Benchmark, best_of, fetch, pg_connect

BENCH_DB = "chacra_bench"
TILE_TARGET = 1.3
ZOOMS = (8, 10, 12)
OGC_COUNT = "SELECT count(*) FROM plots_plot WHERE status = 'active'"
OGC_PAGE = "SELECT feature_geojson FROM plots_plot WHERE status = 'active' ORDER BY id LIMIT 1000 OFFSET $1"


def options(p) -> None:
    p.add_argument("--n", type=int, default=100_000, help="plots in chacra_bench (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default: %(default)s)")
    p.add_argument("--tiles", type=int, default=5, help="tiles per side of the block at each zoom (default: %(default)s)")
    p.add_argument("--pages", type=int, default=20, help="OGC pages of 1,000 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=20260101, help="random seed when the plots are loaded")
    p.add_argument("--reload", action="store_true", help="reload the plots even when N are there")


def check(p, args) -> None:
    if min(args.n, args.repeat, args.tiles, args.pages) < 1:
        p.error("--n, --repeat, --tiles and --pages must be at least 1")


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def block(lon: float, lat: float, z: int, side: int) -> list[tuple[int, int, int]]:
    cx, cy = tile_of(lon, lat, z)
    half = side // 2
    return [(z, cx + dx, cy + dy) for dx in range(-half, side - half) for dy in range(-half, side - half)]


def load(run) -> None:
    args = run.args
    [(have,)] = fetch(run.url, "SELECT count(*) FROM plots_plot")
    if have != args.n or args.reload:
        synthetic.load_plots(run.url, BENCH_DB, args.n, args.seed, force=True)
    run.token = synthetic.bench_user_token()
    # The centre of the most crowded 0.1° cell: where a map user looks.
    spot = fetch(run.url, "SELECT floor(ST_X(c) * 10) / 10 + 0.05, floor(ST_Y(c) * 10) / 10 + 0.05 FROM "
                 "(SELECT ST_Centroid(boundary) AS c FROM plots_plot WHERE boundary IS NOT NULL) s "
                 "GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1")
    if not spot:
        raise BenchError("the bench database holds no plot boundaries")
    lon, lat = map(float, spot[0])
    print(f"densest spot: {lon:.2f}, {lat:.2f}")
    run.blocks = {z: block(lon, lat, z, args.tiles) for z in ZOOMS}
    run.pages = min(args.pages, max(1, args.n // 1000))


class _Staff:
    """Stands for a technician when building the floor's SQL (no role filter)."""

    is_authenticated = True
    is_superuser = True


def prepared(url: str, statements: list[str], label: str, repeat: int, fn) -> tuple[float, int]:
    """Best of ``fn(cursor)`` (seconds, bytes) on a plain connection after the PREPARE ``statements``."""
    conn = pg_connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            best, size, _ = best_of(repeat, lambda: fn(cur), label)
    finally:
        conn.close()
    return best, size


def floor(run) -> dict:
    from api import tiles as tile_module

    sql, _ = tile_module.tile_sql(tile_module.LAYERS["plots"], _Staff())
    tile_sql = sql.replace("%(z)s", "$1").replace("%(x)s", "$2").replace("%(y)s", "$3")

    def tiles(tiles):
        def once(cur):
            total = 0
            t0 = time.perf_counter()
            for z, x, y in tiles:
                cur.execute("EXECUTE chacra_tile(%s, %s, %s)", (z, x, y))
                data = cur.fetchone()[0]
                total += len(bytes(data)) if data is not None else 0
            return time.perf_counter() - t0, total
        return once

    def ogc(cur):
        total = 0
        t0 = time.perf_counter()
        for k in range(run.pages):
            cur.execute("EXECUTE chacra_ogc_count")
            matched = cur.fetchone()[0]
            cur.execute("EXECUTE chacra_ogc_page(%s)", (k * 1000,))
            body = ('{"type":"FeatureCollection","numberMatched":' + str(matched) + ',"features":['
                    + ",".join(r[0] for r in cur.fetchall()) + "]}")
            total += len(body)
        return time.perf_counter() - t0, total

    out = {z: prepared(run.url, ["DEALLOCATE ALL", f"PREPARE chacra_tile(int, int, int) AS {tile_sql}"],
                       f"floor z{z}", run.args.repeat, tiles(zoom_tiles)) for z, zoom_tiles in run.blocks.items()}
    out["ogc"] = prepared(run.url, ["PREPARE chacra_ogc_count AS " + OGC_COUNT,
                                    "PREPARE chacra_ogc_page(int) AS " + OGC_PAGE], "OGC floor", run.args.repeat, ogc)
    return out


def get_all(token: str, urls: list[str], label: str, repeat: int) -> tuple[float, int]:
    """Best time to GET every URL in turn through Django, and the bytes sent."""
    from django.test import Client

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}

    def once():
        total = 0
        t0 = time.perf_counter()
        for url in urls:
            response = client.get(url, **auth)
            if response.status_code != 200:
                raise BenchError(f"{url} answered {response.status_code}: {response.content[:300]!r}")
            total += len(response.content)
        return time.perf_counter() - t0, total

    best, size, _ = best_of(repeat, once, label)
    return best, size


def path(run) -> dict:
    out = {z: get_all(run.token, [f"/tiles/plots/{z}/{x}/{y}.mvt" for z, x, y in zoom_tiles], f"endpoint z{z}",
                      run.args.repeat) for z, zoom_tiles in run.blocks.items()}
    for z in run.blocks:
        # Same tiles, same content; the byte count may differ by a few bytes when the two
        # plans emit the features in another order (the MVT key/value tables follow it).
        floor_bytes, endpoint_bytes = run.floor[z][1], out[z][1]
        if abs(floor_bytes - endpoint_bytes) > 0.001 * floor_bytes:
            raise BenchError(f"z{z}: the endpoint sent {endpoint_bytes} bytes, the floor made {floor_bytes}")
    out["ogc"] = get_all(run.token, [f"/ogc/collections/plots/items?limit=1000&offset={k * 1000}"
                                     for k in range(run.pages)], "OGC endpoint", run.args.repeat)
    return out


def rows(run) -> None:
    print(f"map endpoints benchmark: {run.args.n} plots, best of {run.args.repeat}")
    print(f"{'measurement':<34} {'floor s':>9} {'endpoint s':>11} {'ms/tile':>8} {'bytes':>11}  ratio")
    print("-" * 92)
    for z, zoom_tiles in run.blocks.items():
        (floor, size), (endpoint, _), count = run.floor[z], run.path[z], len(zoom_tiles)
        ratio = endpoint / floor
        print(f"{f'tiles z{z} ({count} tiles)':<34} {floor:>9.3f} {endpoint:>11.3f} {1000 * endpoint / count:>8.2f} "
              f"{size:>11,}  {ratio:5.2f}x  target <= {TILE_TARGET}x  {'PASS' if ratio <= TILE_TARGET else 'MISS'}")
    ogc_floor, ogc_endpoint = run.floor["ogc"][0], run.path["ogc"][0]
    print(f"{f'OGC items, {run.pages} pages of 1,000':<34} {ogc_floor:>9.3f} {ogc_endpoint:>11.3f} {'':>8} {'':>11}  "
          f"{ogc_endpoint / ogc_floor:5.2f}x")


BENCHMARK = Benchmark(
    name="tiles", database=BENCH_DB, doc=__doc__, options=options, check=check, cut="Plots are",
    epilog=(f"Target: each zoom's tiles/floor <= {TILE_TARGET}x (PASS or MISS); the OGC ratio is reported.\n"
            "Exit status 0 whatever the targets say; non-zero on errors.\n\n"
            "Examples:\n  scripts/bench tiles --n 20000 --repeat 1\n  scripts/bench tiles --tiles 3 --pages 5\n"),
    load=load, floor=floor, path=path, peer=None, rows=rows)
