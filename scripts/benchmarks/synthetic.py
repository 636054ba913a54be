"""Synthetic data shared by the benchmarks: star-shaped plot polygons, COPY helpers, and the
N plots of ``chacra_bench`` (geojson, tiles) and of ``chacra_bench_lineage``."""

from __future__ import annotations

import io
import math

from benchmarks.harness import BenchError, pg_connect, vacuum_analyze

CHUNK = 10_000  # plots generated and COPYed per batch
BENCH_USER = "bench-technician"
ORG_CODE = "bench-coop"
PLOT_COLUMNS = ("code, producer_id, organization_id, boundary, declared_area, declared_area_unit, tenure, "
                "planting_year, agroforestry_system, shade_species, survey_method, survey_date, "
                "gps_accuracy_m, status, retired_reason, created_at, updated_at")
PRODUCER_COLUMNS = "code, name, gender, national_id, phone, organization_id, created_at, updated_at"

_HEX = None


def _hex_rows(records):
    """Each record of a packed numpy structured array as upper-case hex bytes (vectorised)."""
    import numpy as np

    global _HEX
    if _HEX is None:
        _HEX = np.array([f"{i:02X}".encode() for i in range(256)], dtype="S2")
    raw = records.view(np.uint8).reshape(len(records), records.dtype.itemsize)
    return _HEX[raw].view(f"S{2 * records.dtype.itemsize}").ravel()


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


def copy_rows(cur, table: str, columns: str, rows) -> None:
    """COPY ``rows`` (tuples of str, or ready tab-separated lines ending in a newline) into ``table``."""
    text = "".join(row if isinstance(row, str) else "\t".join(map(str, row)) + "\n" for row in rows)
    cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", io.StringIO(text))


def new_organization(cur, code: str, name: str = "Cooperativa Agraria Bench", ruc: str = "") -> int:
    cur.execute("INSERT INTO plots_organization (code, name, kind, ruc, created_at, updated_at) "
                "VALUES (%s, %s, 'cooperative', %s, now(), now()) RETURNING id", [code, name, ruc])
    return cur.fetchone()[0]


def _pick(rng, values, n, p=None):
    import numpy as np

    return np.asarray(values, dtype=object)[rng.choice(len(values), n, p=p)]


def _timestamps(rng, start: str, days: int, n: int):
    import numpy as np

    t = np.datetime64(start, "s") + rng.integers(0, days * 86_400, n).astype("timedelta64[s]")
    return np.char.add(np.datetime_as_string(t, unit="s"), "+00")


def plot_rows(rng, start: int, count: int, organization_id: int, producer_ids) -> bytes:
    """``count`` plots around (-76.0, -8.5) as COPY text lines (see PLOT_COLUMNS)."""
    import numpy as np

    lat = rng.uniform(-8.5 - 2.0, -8.5 + 2.0, count)
    lon = rng.uniform(-76.0 - 2.0, -76.0 + 2.0, count)
    area = np.exp(rng.uniform(math.log(0.3), math.log(12.0), count))
    nverts = rng.integers(8, 17, count)
    geoms = polygons_ewkb_hex(rng, lat, lon, area, nverts)

    from core.units import AREA_UNIT_SQUARE_METRES

    units = np.array(["ha", "m2", "yugada", "topo"], dtype=object)
    unit_m2 = np.array([AREA_UNIT_SQUARE_METRES[u] for u in units])
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


def load_plots(url: str, database: str, n: int, seed: int, force: bool) -> None:
    """N synthetic plots (1 organization, N/1.5 producers) by COPY; skipped when ``database``
    already holds exactly N active plots with a boundary, unless ``force``."""
    import numpy as np
    from tqdm import tqdm

    conn = pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(*) FILTER (WHERE status <> 'active' OR boundary IS NULL) "
                        "FROM plots_plot")
            have, odd = cur.fetchone()
        if have == n and odd == 0 and not force:
            print(f"{database} already holds {n} plots: not reloading (use --reload to force)")
            return
        print(f"loading {n} synthetic plots into {database} (had {have})")
        rng = np.random.default_rng(seed)
        n_producers = max(1, round(n / 1.5))
        with conn.cursor() as cur:
            cur.execute("TRUNCATE plots_plot, plots_producer, plots_organization RESTART IDENTITY CASCADE")
            org_id = new_organization(cur, ORG_CODE, ruc="20123456789")
            genders = _pick(rng, ["female", "male", "unknown"], n_producers, p=[0.35, 0.6, 0.05])
            copy_rows(cur, "plots_producer", PRODUCER_COLUMNS,
                      ((f"bench-p{i + 1:07d}", f"Productor Bench {i + 1}", genders[i], 40000000 + i, "", org_id,
                        "2024-01-01 00:00:00+00", "2024-01-01 00:00:00+00") for i in range(n_producers)))
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
        print("  VACUUM ANALYZE")
        vacuum_analyze(url, "plots_organization", "plots_producer", "plots_plot")
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), min(area_ha), max(area_ha) FROM plots_plot")
            count, amin, amax = cur.fetchone()
        print(f"  loaded {count} plots, area {amin:.2f}–{amax:.2f} ha")
        if count != n:
            raise BenchError(f"expected {n} plots after loading, found {count}")
    finally:
        conn.close()


def bench_user_token() -> str:
    """The key of a technician's token (the user is made when missing)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from plots.models import UserProfile

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USER, defaults={"is_active": True})
    UserProfile.objects.update_or_create(user=user, defaults={"role": UserProfile.Role.TECHNICIAN,
                                                               "organization": None})
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
