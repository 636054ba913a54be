"""Benchmark the GeoJSON plot list (/api/v1/plots) against a bare PostGIS COPY and DRF-GIS.

Run through the dispatcher: ``scripts/bench geojson [options]``.

What is measured (best of --repeat unless said otherwise):

  floor       COPY (SELECT ST_AsGeoJSON(t.*) FROM (SELECT <every plots_plot column but the
              endpoint's precomputed feature_geojson> FROM plots_plot) t) TO STDOUT, read fully
              through psycopg2 copy_expert into a byte-counting sink: what PostGIS alone
              needs to turn every row into GeoJSON text and ship it.
  endpoint    GET /api/v1/plots?limit=<page-size>, following every ``next`` link until
              the last page, in-process through django.test.Client with a technician's
              token. Only the small FeatureCollection head is parsed inside the timed
              loop (to find ``next``); every body is fully parsed with json.loads *after*
              timing and checked (features == N); that parse is reported separately.
  serializer  rest_framework_gis GeoFeatureModelSerializer + JSONRenderer over the same
              rows (select_related producer/organization). Run once; with --serializer-n
              on a subset and extrapolated linearly to N.

Data lives in a separate database, ``chacra_bench``, on the server that DATABASES
points at (the private cluster, or DATABASE_URL); the main database is never touched.
"""

from __future__ import annotations

import gc
import json
import time

from benchmarks import synthetic
from benchmarks.harness import BenchError, Benchmark, Ratio, best_of, pg_connect

BENCH_DB = "chacra_bench"
ENDPOINT_TARGET = 1.5  # endpoint may take at most 1.5x the floor
SERIALIZER_TARGET = 20.0  # the generic serializer should be at least 20x slower than the endpoint
# The plot's own columns: feature_geojson is the endpoint's precomputed output, so
# feeding it to the floor as well would inflate the floor and flatter the ratio.
FLOOR_SQL = "COPY (SELECT ST_AsGeoJSON(t.*) FROM (SELECT {cols} FROM plots_plot) t) TO STDOUT"
EPILOG = (
    "Database: a separate database named chacra_bench on the same PostgreSQL server as the\n"
    "configured one (private cluster in .pgrun/, or DATABASE_URL). It is created when missing\n"
    "(CREATE DATABASE + CREATE EXTENSION postgis), migrated, and loaded with N synthetic plots\n"
    "by COPY. Loading is skipped when it already holds exactly N plots, so reruns are fast.\n"
    "The main database is never read or written.\n\n"
    "Clean-up: by default the bench database is KEPT (it is separate, and keeping it makes\n"
    "reruns fast); --keep says so explicitly. --drop drops chacra_bench at the end.\n\n"
    "Targets: endpoint/floor <= 1.5x and serializer/endpoint >= 20x, each marked PASS or MISS.\n"
    "The exit status is 0 whatever the targets say (this is a report); non-zero on errors.\n\n"
    "Examples:\n"
    "  scripts/bench geojson --n 5000\n"
    "  scripts/bench geojson --page-size 10000 1000 --serializer-n 20000\n"
)


def options(p) -> None:
    p.add_argument("--n", type=int, default=100_000, metavar="N",
                   help="number of synthetic plots (default: %(default)s)")
    p.add_argument("--page-size", type=int, nargs="+", default=[10_000], metavar="SIZE",
                   help="endpoint page size(s) (?limit=); default 10000, the API maximum. Give several "
                   "to measure each, e.g. --page-size 10000 1000")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of the floor and of the endpoint; the best is reported (default: %(default)s)")
    p.add_argument("--serializer-n", type=int, default=None, metavar="M",
                   help="run the DRF-GIS serializer on the first M plots only and extrapolate linearly "
                   "to N (default: all N). The serializer is run once, not repeated")
    p.add_argument("--serializer-repeat", type=int, default=1, metavar="R",
                   help="runs of the serializer (default: %(default)s; it is slow)")
    p.add_argument("--skip-serializer", action="store_true", help="do not run the serializer at all")
    p.add_argument("--reload", action="store_true",
                   help="reload the synthetic data even when the bench database already holds N plots")
    p.add_argument("--seed", type=int, default=20240917, help="random seed for the synthetic plots")
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--keep", action="store_true", default=True,
                      help="keep the chacra_bench database and its data at the end (the default)")
    keep.add_argument("--drop", action="store_true", help="drop the chacra_bench database at the end")


def check(p, args) -> None:
    if args.n < 1:
        p.error("--n must be at least 1")
    if args.repeat < 1 or args.serializer_repeat < 1:
        p.error("--repeat and --serializer-repeat must be at least 1")
    if any(s < 1 for s in args.page_size):
        p.error("--page-size must be at least 1")
    if args.serializer_n is not None and not 1 <= args.serializer_n:
        p.error("--serializer-n must be at least 1")
    if args.serializer_n is not None and args.serializer_n > args.n:
        args.serializer_n = args.n


def load(run) -> None:
    synthetic.load_plots(run.url, BENCH_DB, run.args.n, run.args.seed, run.args.reload)
    run.token = synthetic.bench_user_token()


# --------------------------------------------------------------------------- floor

class CountingSink:
    """A write-only file that counts bytes and lines (one line per COPY row)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    def write(self, data) -> int:
        self.bytes += len(data)
        self.lines += data.count(b"\n") if isinstance(data, bytes) else data.count("\n")
        return len(data)


def copy_floor(url: str, n: int, repeat: int, *, serial: bool = False) -> dict:
    """The COPY floor. serial=True forbids parallel workers (SET LOCAL, untimed), for reference:
    the plain floor may use a parallel seq scan, which a keyset-paged endpoint never gets."""
    conn = pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
                        "WHERE attrelid = 'plots_plot'::regclass AND attnum > 0 AND NOT attisdropped "
                        "AND attname <> 'feature_geojson'")
            sql = FLOOR_SQL.format(cols=cur.fetchone()[0])
        conn.rollback()

        def once():
            sink = CountingSink()
            with conn.cursor() as cur:
                if serial:
                    cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                t0 = time.perf_counter()
                cur.copy_expert(sql, sink)
                t = time.perf_counter() - t0
            conn.rollback()
            return t, sink

        best, sink, times = best_of(repeat, once, "floor (serial)" if serial else "floor")
    finally:
        conn.close()
    if sink.lines != n:
        raise BenchError(f"floor COPY returned {sink.lines} rows, expected {n}")
    return {"seconds": best, "bytes": sink.bytes, "features": sink.lines, "times": times}


def floor(run) -> dict:
    return {"plain": copy_floor(run.url, run.args.n, run.args.repeat),
            "serial": copy_floor(run.url, run.args.n, run.args.repeat, serial=True)}


# --------------------------------------------------------------------------- path: the endpoint

def _next_link(body: bytes) -> str | None:
    """The ``next`` URL from the FeatureCollection head, without parsing the features."""
    cut = body.find(b',"features":')
    if cut > 0:
        head = json.loads(body[:cut] + b"}")
    else:  # layout changed: fall back to a full parse (slower, but still correct)
        head = json.loads(body)
    if "next" in head:
        return head["next"]
    return next((link["href"] for link in head.get("links", []) if link.get("rel") == "next"), None)


def endpoint(token: str, n: int, page_size: int, repeat: int) -> dict:
    from django.test import Client

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}

    def once():
        bodies = []
        url = f"/api/v1/plots?limit={page_size}"
        t0 = time.perf_counter()
        while url:
            response = client.get(url, **auth)
            if response.status_code != 200:
                raise BenchError(f"GET {url} answered {response.status_code}: {response.content[:500]!r}")
            body = response.content
            bodies.append(body)
            url = _next_link(body)
        return time.perf_counter() - t0, bodies

    best, bodies, times = best_of(repeat, once, f"endpoint limit={page_size}")
    # Verification, outside the timed region: every body is JSON and the features add up to N.
    gc.disable()  # json.loads of ~100 MB builds millions of objects; the cyclic GC only slows it
    try:
        t0 = time.perf_counter()
        parsed = [json.loads(b) for b in bodies]
        parse_seconds = time.perf_counter() - t0
    finally:
        gc.enable()
    features = sum(len(doc["features"]) for doc in parsed)
    codes = {f["id"] for doc in parsed for f in doc["features"]}
    if features != n or len(codes) != n:
        raise BenchError(f"endpoint limit={page_size} returned {features} features ({len(codes)} distinct), "
                         f"expected {n}")
    if any(doc.get("type") != "FeatureCollection" for doc in parsed):
        raise BenchError("endpoint returned a body that is not a FeatureCollection")
    return {"seconds": best, "bytes": sum(len(b) for b in bodies), "features": features, "times": times,
            "pages": len(bodies), "parse_seconds": parse_seconds}


def path(run) -> dict:
    return {size: endpoint(run.token, run.args.n, size, run.args.repeat) for size in run.args.page_size}


# --------------------------------------------------------------------------- peer: DRF-GIS

def serializer_class():
    from rest_framework import serializers
    from rest_framework_gis.serializers import GeoFeatureModelSerializer

    from plots.models import Plot

    class PlotFeatureSerializer(GeoFeatureModelSerializer):
        producer = serializers.CharField(source="producer.code", read_only=True)
        organization = serializers.CharField(source="organization.code", read_only=True)
        area_ha = serializers.FloatField(read_only=True)

        class Meta:
            model = Plot
            geo_field = "boundary"
            id_field = "code"
            fields = ["code", "producer", "organization", "status", "area_ha", "declared_area",
                      "declared_area_unit", "tenure", "planting_year", "survey_method", "updated_at"]

    return PlotFeatureSerializer


def peer(run) -> dict | None:
    from rest_framework.renderers import JSONRenderer

    from plots.models import Plot

    if run.args.skip_serializer:
        return None
    n, subset = run.args.n, run.args.serializer_n or run.args.n
    cls, renderer = serializer_class(), JSONRenderer()

    def once():
        qs = Plot.objects.select_related("producer", "organization").order_by("id")[:subset]
        t0 = time.perf_counter()
        body = renderer.render(cls(qs, many=True).data)
        return time.perf_counter() - t0, body

    best, body, times = best_of(run.args.serializer_repeat, once, f"serializer ({subset} plots)")
    doc = json.loads(body)
    if len(doc["features"]) != subset:
        raise BenchError(f"serializer produced {len(doc['features'])} features, expected {subset}")
    factor = n / subset
    return {"seconds": best * factor, "bytes": int(len(body) * factor), "features": n, "times": times,
            "measured_seconds": best, "measured_n": subset, "extrapolated": subset != n}


# --------------------------------------------------------------------------- report

def rows(run) -> None:
    repeat, serializer = run.args.repeat, run.peer
    print(f"GeoJSON benchmark: {run.args.n} plots in {BENCH_DB}")
    header = f"{'measurement':<34} {'seconds':>9} {'MB':>9} {'features/s':>12}  note"
    print(header)
    print("-" * (len(header) + 30))

    def row(name, r, note):
        mb = r["bytes"] / 1e6
        print(f"{name:<34} {r['seconds']:>9.3f} {mb:>9.1f} {r['features'] / r['seconds']:>12,.0f}  {note}")

    row("floor: COPY ST_AsGeoJSON(t.*)", run.floor["plain"], f"best of {repeat}; the planner may use parallel workers")
    row("  same, serial (reference only)", run.floor["serial"], f"best of {repeat}; max_parallel_workers_per_gather=0")
    for size, r in run.path.items():
        row(f"endpoint /api/v1/plots limit={size}", r,
            f"best of {repeat}, {r['pages']} pages; json.loads after timing: {r['parse_seconds']:.3f} s")
    if serializer:
        note = "1 run" if len(serializer["times"]) == 1 else f"best of {len(serializer['times'])}"
        if serializer["extrapolated"]:
            note += (f"; EXTRAPOLATED linearly from {serializer['measured_n']} plots "
                     f"({serializer['measured_seconds']:.3f} s)")
        row("serializer: DRF-GIS GeoFeatureModel", serializer, note)


def ratios(run) -> list[Ratio]:
    plain, serial, serializer = run.floor["plain"]["seconds"], run.floor["serial"]["seconds"], run.peer
    out = [Ratio(f"endpoint(limit={size}) / floor", r["seconds"] / plain, ENDPOINT_TARGET)
           for size, r in run.path.items()]
    out += [Ratio(f"endpoint(limit={size}) / serial floor", r["seconds"] / serial, note="(reference, no target)")
            for size, r in run.path.items()]
    if serializer:
        out += [Ratio(f"serializer / endpoint(limit={size})", serializer["seconds"] / r["seconds"], SERIALIZER_TARGET,
                      at_least=True, suffix=" (serializer extrapolated)" if serializer["extrapolated"] else "")
                for size, r in run.path.items()]
    return out


def notes(run) -> None:
    print()
    print("notes: the floor emits every column of the row as properties with 9-digit coordinates; the "
          "endpoint emits its property set with 7 digits and CCW rings, precomputed by a trigger; the "
          "serializer emits full-precision coordinates. MB differ accordingly.")


BENCHMARK = Benchmark(
    name="geojson", database=BENCH_DB, doc=__doc__, options=options, check=check, epilog=EPILOG,
    load=load, floor=floor, path=path, peer=peer, rows=rows, ratios=ratios, ratio_width=36,
    after=notes,
)
