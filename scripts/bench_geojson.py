#!/usr/bin/env python
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

import argparse
import gc
import io
import json
import math
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH_DB = "chacra_bench"
ENDPOINT_TARGET = 1.5  # endpoint may take at most 1.5x the floor
SERIALIZER_TARGET = 20.0  # the generic serializer should be at least 20x slower than the endpoint
CHUNK = 10_000  # plots generated and COPYed per batch
BENCH_USER = "bench-technician"
ORG_CODE = "bench-coop"


class BenchError(Exception):
    """A failure told in words; exits non-zero."""


# --------------------------------------------------------------------------- arguments

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench geojson",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n", 2)[2].split("Data lives")[0].rstrip(),
        epilog=(
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
        ),
    )
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
    args = p.parse_args(argv)
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
    return args


# --------------------------------------------------------------------------- database

def configured_url() -> str:
    """The URL the project would use: DATABASE_URL, else the private cluster."""
    from chacra import pgcluster

    return os.environ.get("DATABASE_URL") or pgcluster.cluster().database_url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


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


def ensure_bench_database(base_url: str, name: str = BENCH_DB) -> str:
    """Create the bench database ``name`` next to the configured one when missing; return its URL."""
    from psycopg2 import sql

    base_name = connect_params(base_url)["dbname"]
    if base_name == name:
        raise BenchError(f"the configured database is already named {name!r}; refusing to use it as the "
                         "bench database (point DATABASE_URL at the real database instead)")
    url = with_database(base_url, name)
    try:
        admin = pg_connect(base_url, dbname="postgres", autocommit=True)
    except Exception:
        admin = pg_connect(base_url, autocommit=True)  # no 'postgres' db: go through the configured one
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is None:
                print(f"creating database {name}")
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        admin.close()
    conn = pg_connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        conn.close()
    return url


def drop_bench_database(base_url: str, name: str = BENCH_DB) -> None:
    from django.db import connections
    from psycopg2 import sql

    connections.close_all()
    try:
        admin = pg_connect(base_url, dbname="postgres", autocommit=True)
    except Exception:
        admin = pg_connect(base_url, autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        admin.close()
    print(f"dropped database {name}")


def setup_django(bench_url: str, name: str = BENCH_DB) -> None:
    os.environ["DATABASE_URL"] = bench_url
    os.environ["DEBUG"] = "0"
    os.environ["DJANGO_SETTINGS_MODULE"] = "chacra.settings"
    import django

    django.setup()
    from django.conf import settings

    if settings.DEBUG:
        raise BenchError("DEBUG is on after setup; the benchmark must run with DEBUG off")
    if settings.DATABASES["default"]["NAME"] != name:
        raise BenchError(f"Django is not pointed at {name} (got {settings.DATABASES['default']['NAME']!r})")
    if "testserver" not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS.append("testserver")
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# --------------------------------------------------------------------------- synthetic data

HEX = None


def _hex_rows(records):
    """Each record of a packed numpy structured array as upper-case hex bytes (vectorised)."""
    import numpy as np

    global HEX
    if HEX is None:
        HEX = np.array([f"{i:02X}".encode() for i in range(256)], dtype="S2")
    raw = records.view(np.uint8).reshape(len(records), records.dtype.itemsize)
    return HEX[raw].view(f"S{2 * records.dtype.itemsize}").ravel()


def polygons_ewkb_hex(rng, lat, lon, area_ha, nverts):
    """Hex EWKB MultiPolygon(SRID 4326) of irregular star-shaped polygons, one per plot.

    Angles are evenly spaced plus a jitter below half a step, so they strictly increase
    and the ring (radius varies per vertex) never crosses itself: always valid. Half the
    rings are written clockwise so ST_ForcePolygonCCW has real work to do.
    """
    import numpy as np

    out = np.empty(len(lat), dtype=object)
    for k in np.unique(nverts):
        idx = np.nonzero(nverts == k)[0]
        m = len(idx)
        step = 2 * np.pi / k
        theta = (rng.uniform(0, 2 * np.pi, (m, 1)) + step * np.arange(k)
                 + rng.uniform(-0.4, 0.4, (m, k)) * step)
        r = rng.uniform(0.55, 1.0, (m, k))
        dtheta = np.roll(theta, -1, axis=1) - theta
        dtheta[:, -1] += 2 * np.pi
        unit_area = 0.5 * np.sum(r * np.roll(r, -1, axis=1) * np.sin(dtheta), axis=1)
        scale = np.sqrt(area_ha[idx] * 10_000.0 / unit_area)[:, None]  # metres
        clat = lat[idx][:, None]
        x = lon[idx][:, None] + scale * r * np.cos(theta) / (111_320.0 * np.cos(np.radians(clat)))
        y = clat + scale * r * np.sin(theta) / 110_574.0
        flip = rng.random(m) < 0.5
        x[flip] = x[flip, ::-1]
        y[flip] = y[flip, ::-1]
        ring = np.empty((m, k + 1, 2))
        ring[:, :k, 0], ring[:, :k, 1] = x, y
        ring[:, k] = ring[:, 0]
        dt = np.dtype([("bo", "u1"), ("type", "<u4"), ("srid", "<u4"), ("npoly", "<u4"), ("pbo", "u1"),
                       ("ptype", "<u4"), ("nring", "<u4"), ("npts", "<u4"), ("xy", "<f8", (k + 1, 2))])
        rec = np.zeros(m, dtype=dt)
        rec["bo"], rec["type"], rec["srid"], rec["npoly"] = 1, 0x20000006, 4326, 1
        rec["pbo"], rec["ptype"], rec["nring"], rec["npts"] = 1, 3, 1, k + 1
        rec["xy"] = ring
        out[idx] = _hex_rows(rec)
    return out


def _pick(rng, values, n, p=None):
    import numpy as np

    return np.asarray(values, dtype=object)[rng.choice(len(values), n, p=p)]


def _timestamps(rng, start: str, days: int, n: int):
    import numpy as np

    t = np.datetime64(start, "s") + rng.integers(0, days * 86_400, n).astype("timedelta64[s]")
    return np.char.add(np.datetime_as_string(t, unit="s"), "+00")


def plot_rows(rng, start: int, count: int, organization_id: int, producer_ids) -> bytes:
    """``count`` plots as COPY text lines (see PLOT_COLUMNS)."""
    import numpy as np

    lat = rng.uniform(-8.5 - 2.0, -8.5 + 2.0, count)
    lon = rng.uniform(-76.0 - 2.0, -76.0 + 2.0, count)
    area = np.exp(rng.uniform(math.log(0.3), math.log(12.0), count))
    nverts = rng.integers(8, 17, count)
    geoms = polygons_ewkb_hex(rng, lat, lon, area, nverts)

    units = np.array(["ha", "m2", "yugada", "topo"], dtype=object)
    unit_m2 = np.array([10_000.0, 1.0, 2_700.0, 3_493.0])
    u = rng.choice(4, count, p=[0.7, 0.05, 0.15, 0.10])
    declared = np.round(area * rng.uniform(0.7, 1.3, count) * 10_000.0 / unit_m2[u], 2)
    tenure = _pick(rng, ["titled", "possession", "communal", "rented", "informal", "unknown"], count)
    agro = _pick(rng, ["full_sun", "temporary_shade", "permanent_shade", "multistrata", "unknown"], count)
    shade = _pick(rng, ["{}", "{Bolaina}", "{Bolaina,Capirona}", "{Guaba,Pashaco}"], count)
    survey = _pick(rng, ["gps_walked", "imagery", "mobile_app", "total_station"], count)
    planting = rng.integers(1990, 2025, count)
    survey_date = np.datetime_as_string(np.datetime64("2019-01-01") + rng.integers(0, 2000, count)
                                        .astype("timedelta64[D]"), unit="D")
    accuracy = np.round(rng.uniform(2.0, 15.0, count), 1)
    created = _timestamps(rng, "2024-01-01T00:00:00", 365, count)
    updated = _timestamps(rng, "2025-01-01T00:00:00", 300, count)
    producer = producer_ids[rng.integers(0, len(producer_ids), count)]
    org = str(organization_id)

    lines = []
    for i in range(count):
        lines.append("\t".join((
            f"bench-{start + i + 1:07d}", str(producer[i]), org, geoms[i].decode(), repr(float(declared[i])),
            units[u[i]], tenure[i], str(planting[i]), agro[i], shade[i], survey[i], survey_date[i],
            repr(float(accuracy[i])), "active", "", created[i], updated[i],
        )))
    lines.append("")
    return "\n".join(lines).encode()


PLOT_COLUMNS = ("code, producer_id, organization_id, boundary, declared_area, declared_area_unit, tenure, "
                "planting_year, agroforestry_system, shade_species, survey_method, survey_date, "
                "gps_accuracy_m, status, retired_reason, created_at, updated_at")


def load_data(bench_url: str, n: int, seed: int, force: bool) -> None:
    import numpy as np
    from tqdm import tqdm

    conn = pg_connect(bench_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM plots_plot")
            have = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM plots_plot WHERE status <> 'active' OR boundary IS NULL")
            odd = cur.fetchone()[0]
        if have == n and odd == 0 and not force:
            print(f"{BENCH_DB} already holds {n} plots: not reloading (use --reload to force)")
            return
        print(f"loading {n} synthetic plots into {BENCH_DB} (had {have})")
        rng = np.random.default_rng(seed)
        n_producers = max(1, round(n / 1.5))
        with conn.cursor() as cur:
            cur.execute("TRUNCATE plots_plot, plots_producer, plots_organization RESTART IDENTITY CASCADE")
            cur.execute("INSERT INTO plots_organization (code, name, kind, ruc, created_at, updated_at) "
                        "VALUES (%s, 'Cooperativa Agraria Bench', 'cooperative', '20123456789', now(), now()) "
                        "RETURNING id", [ORG_CODE])
            org_id = cur.fetchone()[0]
            genders = _pick(rng, ["female", "male", "unknown"], n_producers, p=[0.35, 0.6, 0.05])
            buf = io.StringIO()
            for i in range(n_producers):
                buf.write(f"bench-p{i + 1:07d}\tProductor Bench {i + 1}\t{genders[i]}\t{40000000 + i}\t\t"
                          f"{org_id}\t2024-01-01 00:00:00+00\t2024-01-01 00:00:00+00\n")
            buf.seek(0)
            cur.copy_expert("COPY plots_producer (code, name, gender, national_id, phone, organization_id, "
                            "created_at, updated_at) FROM STDIN", buf)
            cur.execute("SELECT id FROM plots_producer ORDER BY id")
            producer_ids = np.array([r[0] for r in cur.fetchall()], dtype=np.int64)
            print(f"  1 organization, {n_producers} producers")
            with tqdm(total=n, unit="plot", desc="  generate+COPY plots", unit_scale=True) as bar:
                for start in range(0, n, CHUNK):
                    count = min(CHUNK, n - start)
                    data = plot_rows(rng, start, count, org_id, producer_ids)
                    cur.copy_expert(f"COPY plots_plot ({PLOT_COLUMNS}) FROM STDIN", io.BytesIO(data))
                    bar.update(count)
        conn.commit()
    finally:
        conn.close()
    conn = pg_connect(bench_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            print("  VACUUM ANALYZE")
            for table in ("plots_organization", "plots_producer", "plots_plot"):
                cur.execute(f"VACUUM ANALYZE {table}")
            cur.execute("SELECT count(*), min(area_ha), max(area_ha) FROM plots_plot")
            count, amin, amax = cur.fetchone()
        print(f"  loaded {count} plots, area {amin:.2f}–{amax:.2f} ha")
        if count != n:
            raise BenchError(f"expected {n} plots after loading, found {count}")
    finally:
        conn.close()


def bench_user_token() -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from plots.models import UserProfile

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USER, defaults={"is_active": True})
    UserProfile.objects.update_or_create(user=user, defaults={"role": UserProfile.Role.TECHNICIAN,
                                                               "organization": None})
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


# --------------------------------------------------------------------------- measurements

class CountingSink:
    """A write-only file that counts bytes and lines (one line per COPY row)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    def write(self, data) -> int:
        self.bytes += len(data)
        self.lines += data.count(b"\n") if isinstance(data, bytes) else data.count("\n")
        return len(data)


def best_of(repeat: int, fn, label: str):
    """(best seconds, result of the best run, all times)."""
    best, result, times = math.inf, None, []
    for i in range(repeat):
        t, r = fn()
        times.append(t)
        print(f"  {label} run {i + 1}/{repeat}: {t:.3f} s")
        if t < best:
            best, result = t, r
    return best, result, times


# The plot's own columns: feature_geojson is the endpoint's precomputed output, so
# feeding it to the floor as well would inflate the floor and flatter the ratio.
FLOOR_SQL = ("COPY (SELECT ST_AsGeoJSON(t.*) FROM (SELECT {cols} FROM plots_plot) t) TO STDOUT")


def floor_sql(conn) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
                    "WHERE attrelid = 'plots_plot'::regclass AND attnum > 0 AND NOT attisdropped "
                    "AND attname <> 'feature_geojson'")
        cols = cur.fetchone()[0]
    conn.rollback()
    return FLOOR_SQL.format(cols=cols)


def run_floor(bench_url: str, n: int, repeat: int, *, serial: bool = False):
    """The COPY floor. serial=True forbids parallel workers (SET LOCAL, untimed), for reference:
    the plain floor may use a parallel seq scan, which a keyset-paged endpoint never gets."""
    conn = pg_connect(bench_url)
    sql = floor_sql(conn)
    try:
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


def run_endpoint(token: str, n: int, page_size: int, repeat: int):
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


def run_serializer(n: int, subset: int, repeat: int):
    from rest_framework.renderers import JSONRenderer

    from plots.models import Plot

    cls = serializer_class()
    renderer = JSONRenderer()

    def once():
        qs = Plot.objects.select_related("producer", "organization").order_by("id")[:subset]
        t0 = time.perf_counter()
        body = renderer.render(cls(qs, many=True).data)
        return time.perf_counter() - t0, body

    best, body, times = best_of(repeat, once, f"serializer ({subset} plots)")
    doc = json.loads(body)
    if len(doc["features"]) != subset:
        raise BenchError(f"serializer produced {len(doc['features'])} features, expected {subset}")
    factor = n / subset
    return {"seconds": best * factor, "bytes": int(len(body) * factor), "features": n, "times": times,
            "measured_seconds": best, "measured_n": subset, "extrapolated": subset != n}


# --------------------------------------------------------------------------- report

def report(n: int, floor: dict, floor_serial: dict, endpoints: dict, serializer: dict | None, repeat: int) -> None:
    print()
    print(f"GeoJSON benchmark: {n} plots in {BENCH_DB}")
    header = f"{'measurement':<34} {'seconds':>9} {'MB':>9} {'features/s':>12}  note"
    print(header)
    print("-" * (len(header) + 30))

    def row(name, r, note):
        mb = r["bytes"] / 1e6
        print(f"{name:<34} {r['seconds']:>9.3f} {mb:>9.1f} {r['features'] / r['seconds']:>12,.0f}  {note}")

    row("floor: COPY ST_AsGeoJSON(t.*)", floor, f"best of {repeat}; the planner may use parallel workers")
    row("  same, serial (reference only)", floor_serial, f"best of {repeat}; max_parallel_workers_per_gather=0")
    for size, r in endpoints.items():
        row(f"endpoint /api/v1/plots limit={size}", r,
            f"best of {repeat}, {r['pages']} pages; json.loads after timing: {r['parse_seconds']:.3f} s")
    if serializer:
        note = "1 run" if len(serializer["times"]) == 1 else f"best of {len(serializer['times'])}"
        if serializer["extrapolated"]:
            note += (f"; EXTRAPOLATED linearly from {serializer['measured_n']} plots "
                     f"({serializer['measured_seconds']:.3f} s)")
        row("serializer: DRF-GIS GeoFeatureModel", serializer, note)
    print()
    print("ratios")
    for size, r in endpoints.items():
        ratio = r["seconds"] / floor["seconds"]
        verdict = "PASS" if ratio <= ENDPOINT_TARGET else "MISS"
        label = f"endpoint(limit={size}) / floor"
        print(f"  {label:<36} = {ratio:6.2f}x   target <= {ENDPOINT_TARGET}x   {verdict}")
    for size, r in endpoints.items():
        label = f"endpoint(limit={size}) / serial floor"
        print(f"  {label:<36} = {r['seconds'] / floor_serial['seconds']:6.2f}x   (reference, no target)")
    if serializer:
        for size, r in endpoints.items():
            ratio = serializer["seconds"] / r["seconds"]
            verdict = "PASS" if ratio >= SERIALIZER_TARGET else "MISS"
            extra = " (serializer extrapolated)" if serializer["extrapolated"] else ""
            label = f"serializer / endpoint(limit={size})"
            print(f"  {label:<36} = {ratio:6.2f}x   target >= {SERIALIZER_TARGET:g}x"
                  f"   {verdict}{extra}")
    print()
    print("notes: the floor emits every column of the row as properties with 9-digit coordinates; the "
          "endpoint emits its property set with 7 digits and CCW rings, precomputed by a trigger; the "
          "serializer emits full-precision coordinates. MB differ accordingly.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base_url = configured_url()
    bench_url = ensure_bench_database(base_url)
    print(f"bench database: {BENCH_DB} (server of the configured database {connect_params(base_url)['dbname']!r})")
    setup_django(bench_url)
    load_data(bench_url, args.n, args.seed, args.reload)
    token = bench_user_token()

    print("timing")
    floor = run_floor(bench_url, args.n, args.repeat)
    floor_serial = run_floor(bench_url, args.n, args.repeat, serial=True)
    endpoints = {}
    for size in args.page_size:
        endpoints[size] = run_endpoint(token, args.n, size, args.repeat)
    serializer = None
    if not args.skip_serializer:
        serializer = run_serializer(args.n, args.serializer_n or args.n, args.serializer_repeat)
    report(args.n, floor, floor_serial, endpoints, serializer, args.repeat)

    if args.drop:
        drop_bench_database(base_url)
    else:
        print(f"kept database {BENCH_DB} (--drop to remove it)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench geojson: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
