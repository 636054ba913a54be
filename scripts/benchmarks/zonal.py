"""Benchmark deforestation screening against exactextract called directly and against rasterstats.

Run through the dispatcher: ``scripts/bench zonal [options]``.

Data: a synthetic Hansen-style lossyear mosaic of --pixels cells (default 64 million:
8,000 × 8,000 cells of 0.00025°, ~2° × 2° in the Peruvian Amazon), written as 2 × 2
tile files (GeoTIFF, internally tiled 512 × 512, deflate) in a temporary folder, with
patches of loss in every year 2001–2023; and --plots synthetic one-hectare plots
(star-shaped, 8–16 vertices) spread over it, some across tile edges.

What is measured (best of --repeat, one process unless said):

  exactextract direct   the floor: for each tile, exact_extract(tile, the plots over it,
                        ["values", "coverage", "center_x", "center_y"], raster-sequential,
                        pandas output) — the per-cell extraction screening starts from,
                        geometries already in memory, no areas, no sums, no verdicts.
  exactextract count    (reference) the same call with the one op "count".
  screening step        plots.screening's tasks (raster-sequential chunks), zonal sums
                        (exact coverage × geodesic cell area, per product and tile) and the
                        verdicts, on the plots' WKB as read from the database — everything
                        `chacra screen` does between reading the plots and writing results.
  screening, N procs    the same step in N local worker processes (--workers).
  chacra screen         (reference) run_screening end to end: read plots, screen, write N
                        CheckResults (the results are emptied before each run).
  rasterstats           zonal_stats per plot and tile (cells whose centre is inside, no
                        coverage fractions), loss cells × the geodesic cell area at the plot.

Then the per-plot difference of post-2020 loss hectares between rasterstats and the
screening (exact coverage), and how many verdicts would differ.

Data lives in a separate database, ``chacra_bench_zonal``; the main database is never touched.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from benchmarks import synthetic
from benchmarks.harness import Benchmark, Ratio, best_of, clock, import_first, pg_connect

BENCH_DB = "chacra_bench_zonal"
TARGET = 1.5  # the screening step may take at most 1.5x exactextract called directly
RES = 0.00025
WEST, NORTH = -77.0, -7.5
ORG_CODE = "bench-zonal"
DIRECT, COUNT, STEP = "exactextract direct", "exactextract count (reference)", "screening step (1 process)"


def options(p) -> None:
    p.add_argument("--plots", type=int, default=16_000, help="one-hectare plots (default: %(default)s)")
    p.add_argument("--pixels", type=int, default=64_000_000, help="raster cells in all (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement, best reported (default: 3)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes for the parallel measurements (default: %(default)s)")
    p.add_argument("--skip-rasterstats", action="store_true", help="do not run rasterstats (the slow one)")
    p.add_argument("--seed", type=int, default=20260601)
    p.add_argument("--drop", action="store_true", help=f"drop {BENCH_DB} at the end")


def check(p, args) -> None:
    if args.plots < 1 or args.pixels < 4 or args.repeat < 1 or args.workers < 1:
        p.error("--plots, --repeat and --workers must be at least 1, --pixels at least 4")


def screening(name: str = ""):
    """A module of the screening package. plots/screening and plots/rasters are moving to
    screening/ in the same change: the new home first, the old one while the move lands."""
    if name == "rasters":
        return import_first("screening.catalog", "plots.rasters")
    return import_first(*(f"{package}.{name}" if name else package for package in ("screening", "plots.screening")))


# --------------------------------------------------------------------------- data

def mosaic_side(pixels: int) -> int:
    """Cells per side of the square mosaic: a multiple of 32, so tiles and loss patches align."""
    return int(math.sqrt(pixels)) // 32 * 32


def write_mosaic(folder: Path, pixels: int, seed: int) -> list[Path]:
    """2 × 2 tiles of a lossyear-like raster: loss patches of 4–64 cells, years 1–23, ~8 % of cells."""
    import numpy as np
    import rasterio

    side = mosaic_side(pixels)
    half = side // 2
    rng = np.random.default_rng(seed)
    coarse = rng.integers(1, 24, (side // 8, side // 8)).astype(np.uint8)
    coarse[rng.random(coarse.shape) > 0.08] = 0
    paths = []
    for i in range(2):
        for j in range(2):
            block = coarse[i * half // 8:(i + 1) * half // 8, j * half // 8:(j + 1) * half // 8]
            data = np.repeat(np.repeat(block, 8, axis=0), 8, axis=1)
            path = folder / f"lossyear_{i}{j}.tif"
            transform = rasterio.Affine(RES, 0, WEST + j * half * RES, 0, -RES, NORTH - i * half * RES)
            with rasterio.open(path, "w", driver="GTiff", width=half, height=half, count=1, dtype="uint8",
                               nodata=255, crs="EPSG:4326", tiled=True, blockxsize=512, blockysize=512,
                               compress="deflate", transform=transform) as out:
                out.write(data, 1)
            paths.append(path)
    print(f"wrote {len(paths)} tiles of {half} × {half} cells ({side * side / 1e6:.0f} Mpx) in {folder}")
    return paths


def load_plots(url: str, n: int, extent_deg: float, seed: int) -> None:
    """``n`` one-hectare plots over the mosaic, COPYed into plots_plot."""
    import numpy as np

    rng = np.random.default_rng(seed)
    margin = 0.002
    lat = rng.uniform(NORTH - extent_deg + margin, NORTH - margin, n)
    lon = rng.uniform(WEST + margin, WEST + extent_deg - margin, n)
    geoms = synthetic.polygons_ewkb_hex(rng, lat, lon, np.ones(n), rng.integers(8, 17, n))
    conn = pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("TRUNCATE plots_plot, plots_producer, plots_organization, plots_rastertile "
                        "RESTART IDENTITY CASCADE")
            org = synthetic.new_organization(cur, ORG_CODE, "Bench zonal", "20123456789")
            cur.execute("INSERT INTO plots_producer (code, name, gender, national_id, phone, organization_id, "
                        "created_at, updated_at) VALUES ('bench-zonal-p', 'Bench', 'unknown', '40000000', '', %s, "
                        "now(), now()) RETURNING id", [org])
            producer = cur.fetchone()[0]
            synthetic.copy_rows(cur, "plots_plot", synthetic.PLOT_COLUMNS,
                                ((f"zonal-{i:06d}", producer, org, geoms[i].decode(), "1.0", "ha", "unknown", "\\N",
                                  "unknown", "{}", "unknown", "\\N", "\\N", "active", "", "2025-01-01 00:00:00+00",
                                  "2025-01-01 00:00:00+00") for i in range(n)))
        conn.commit()
    finally:
        conn.close()
    print(f"loaded {n} one-hectare plots into {BENCH_DB}")


def direct_inputs(rows, tiles):
    """Per tile: its path and a GeoDataFrame of the plots over it (prepared untimed)."""
    import geopandas as gpd
    import shapely

    inputs = []
    for tile in tiles:
        ids = [r[0] for r in rows if tile.id in r[3]]
        wkb = [r[1] for r in rows if tile.id in r[3]]
        inputs.append((tile.path, gpd.GeoDataFrame({"plot_id": ids}, geometry=shapely.from_wkb(wkb), crs=4326)))
    return inputs


def load(run) -> None:
    batch = screening("batch")
    folder = Path(run.stack.enter_context(tempfile.TemporaryDirectory(prefix="chacra-bench-zonal-")))
    paths = write_mosaic(folder, run.args.pixels, run.args.seed)
    load_plots(run.url, run.args.plots, mosaic_side(run.args.pixels) * RES, run.args.seed)
    run.tiles = screening("rasters").raster_load(paths=paths, product="hansen-lossyear", version="bench")
    run.rows = batch._plots(list(range(1, run.args.plots + 1)), run.tiles)
    run.inputs = direct_inputs(run.rows, run.tiles)


# --------------------------------------------------------------------------- measurements

def exactextract_direct(inputs, ops):
    from exactextract import exact_extract

    return [exact_extract(path, gdf, ops, include_cols=["plot_id"], strategy="raster-sequential", output="pandas")
            for path, gdf in inputs]


def floor(run) -> dict:
    repeat, inputs = run.args.repeat, run.inputs
    return {DIRECT: best_of(repeat, clock(lambda: exactextract_direct(
                inputs, ["values", "coverage", "center_x", "center_y"])), "exactextract direct")[0],
            COUNT: best_of(repeat, clock(lambda: exactextract_direct(inputs, ["count"])), "exactextract count")[0]}


def screening_step(rows, tiles, workers: int):
    batch, verdicts = screening("batch"), screening("verdicts")
    tasks = batch._tasks(rows, tiles, batch.CHUNK_PLOTS)
    measured: dict = {}
    for result in batch._execute(tasks, workers, None):
        for plot_id, sums in result.sums.items():
            measured.setdefault(plot_id, {})[result.tile_id] = sums
    specs = {t.id: batch._spec(t) for t in tiles}
    versions = {t.product: t.version for t in tiles}
    return {pid: verdicts.verdict(area_m2=area, per_tile=measured.get(pid, {}), tiles=specs, versions=versions,
                                  thresholds=verdicts.Thresholds()) for pid, _w, area, _t, _y, _x in rows}


def end_to_end(workers: int):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("DELETE FROM plots_checkresult WHERE kind = 'deforestation'")
    return screening().run_screening(workers=workers)


def path(run) -> dict:
    repeat, workers, rows, tiles = run.args.repeat, run.args.workers, run.rows, run.tiles
    out = {}
    out[STEP], run.verdicts, _ = best_of(repeat, clock(lambda: screening_step(rows, tiles, 1)), "screening step")
    out[f"screening step ({workers} processes)"] = best_of(
        repeat, clock(lambda: screening_step(rows, tiles, workers)), f"screening, {workers} procs")[0]
    out[f"chacra screen end to end ({workers} procs)"] = best_of(
        repeat, clock(lambda: end_to_end(workers)), "chacra screen (e2e)")[0]
    return out


def rasterstats_loss(inputs):
    """Post-2020 loss ha per plot by rasterstats: loss cells (centre inside) × geodesic cell area."""
    import numpy as np
    import shapely
    from pyproj import CRS
    from rasterstats import zonal_stats

    cells = screening("cells")
    wgs84 = CRS.from_epsg(4326)
    loss: dict[int, float] = {}
    for path, gdf in inputs:
        stats = zonal_stats(list(gdf.geometry), str(path), nodata=255,
                            add_stats={"after": lambda a: int(np.count_nonzero(a.compressed() > 20))})
        lat = shapely.get_y(shapely.centroid(gdf.geometry.values))  # the plot's latitude, for its cell area
        cell = cells.geographic_cell_areas_m2(wgs84, lat, RES, RES)
        for pid, s, a in zip(gdf["plot_id"], stats, cell):
            loss[int(pid)] = loss.get(int(pid), 0.0) + s["after"] * a / 10_000.0
    return loss


def peer(run) -> tuple[float, dict] | None:
    if run.args.skip_rasterstats:
        return None
    return best_of(1, clock(lambda: rasterstats_loss(run.inputs)), "rasterstats (1 run)")[:2]


def rows(run) -> None:
    args, verdicts = run.args, run.verdicts
    times = {DIRECT: run.floor[DIRECT], COUNT: run.floor[COUNT], **run.path}
    if run.peer:
        times["rasterstats"] = run.peer[0]
    print(f"zonal benchmark: {args.plots} one-hectare plots, {args.pixels / 1e6:.0f} Mpx in 4 tiles, "
          f"best of {args.repeat}")
    for name, seconds in times.items():
        print(f"  {name:<34} {seconds:8.3f} s  {args.plots / seconds:>10,.0f} plots/s")
    outcomes = {}
    for outcome, _ in verdicts.values():
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(f"verdicts: {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}")


def differences(run) -> None:
    """After the ratios: post-2020 loss per plot, rasterstats against the screening."""
    import numpy as np

    if not run.peer:
        return
    verdicts, rs_loss = run.verdicts, run.peer[1]
    ids = sorted(rs_loss)
    ours = np.array([verdicts[i][1]["loss_ha_after_cutoff"] for i in ids])
    theirs = np.array([rs_loss[i] for i in ids])
    diff = np.abs(theirs - ours)
    flagged_rs = theirs >= 0.1
    flagged_ours = np.array([verdicts[i][0] == "fail" for i in ids])
    print("per-plot difference, post-2020 loss ha (rasterstats cell centres vs exact coverage)")
    print(f"  mean |diff| {diff.mean():.4f} ha, median {np.median(diff):.4f}, p95 {np.percentile(diff, 95):.4f}, "
          f"max {diff.max():.4f}; relative to the screening's loss (plots with loss): "
          f"{np.median(diff[ours > 0] / ours[ours > 0]) if (ours > 0).any() else 0:.1%} median")
    print(f"  verdicts that would differ at 0.1 ha: {int((flagged_rs != flagged_ours).sum())} of {len(ids)}")


def ratios(run) -> list[Ratio]:
    step = run.path[STEP]
    out = [Ratio("screening step / exactextract direct", step / run.floor[DIRECT], TARGET),
           Ratio("screening step / exactextract count", step / run.floor[COUNT], note="(reference)")]
    if run.peer:
        out.append(Ratio("rasterstats / screening step", run.peer[0] / step, note="(speed-up of the screening)"))
    return out


BENCHMARK = Benchmark(
    name="zonal", database=BENCH_DB, doc=__doc__, options=options, check=check,
    epilog=(f"Database: {BENCH_DB} on the server of the configured database (private cluster or DATABASE_URL),\n"
            "created and migrated when missing; its plots are replaced on every run. Kept by default\n"
            "(--drop removes it). The raster is written to a temporary folder and removed at the end.\n\n"
            f"Target: screening step / exactextract direct <= {TARGET}x, marked PASS or MISS. Exit status 0\n"
            "whatever the target says; non-zero on errors.\n\n"
            "Examples:\n  scripts/bench zonal\n  scripts/bench zonal --plots 4000 --pixels 16000000 --repeat 1\n"),
    load=load, floor=floor, path=path, peer=peer, rows=rows, ratios=ratios, ratio_width=37, after=differences)
