"""Batch screening: tiles and plots from the database, tasks out to workers, verdicts back in.

See screening for the method."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context

from django.db import connection, transaction

from plots.checks.base import id_array
from plots.errors import ValidationFailed
from plots.models import CheckResult, Plot
from screening.models import RasterTile
from screening.verdicts import LOSS_PRODUCT, METHOD_VERSION, Thresholds, verdict
from screening.zonal import Task, TaskResult, TileSpec, TileUnreadable, run_task
from screening.writer import write_verdicts

CHUNK_PLOTS = 2_000  # plots per task at most: bounds a worker's memory and evens out the load

# A point plot is screened as a circle of its declared area around the point (4 ha
# when none is declared: the EUDR's default for a point without an area), drawn
# as a 256-gon by ST_Buffer(geography) (area within 0.2 % of the declared one).
# Raw SQL: one pass that joins plots to tile footprints (GiST on both) and sends
# each plot's geometry once, as WKB, with its geodesic area.
PLOTS_SQL = """
WITH p AS (
    SELECT pl.id, CASE WHEN pl.boundary IS NOT NULL THEN pl.boundary::geometry
                       ELSE ST_Buffer(pl.location::geography,
                                      sqrt(COALESCE(NULLIF(pl.declared_area_ha, 0), 4.0) * 10000.0 / pi()),
                                      'quad_segs=64')::geometry END AS g
    FROM plots_plot pl
    WHERE pl.status = 'active' AND pl.id = ANY(%(ids)s::bigint[])
)
SELECT p.id, ST_AsBinary(p.g), ST_Area(p.g::geography, true),
       COALESCE(array_agg(t.id ORDER BY t.id) FILTER (WHERE t.id IS NOT NULL), '{}'), ST_YMax(p.g), ST_XMin(p.g)
FROM p
LEFT JOIN plots_rastertile t ON t.id = ANY(%(tiles)s::bigint[]) AND ST_Intersects(t.footprint, p.g)
GROUP BY p.id, p.g
ORDER BY p.id
"""


@dataclass
class ScreeningSummary:
    plots: int = 0
    tiles: int = 0
    tasks: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    written: int = 0
    datasets: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    method_version: str = METHOD_VERSION

    @property
    def flagged(self) -> int:
        return self.outcomes.get(CheckResult.Outcome.FAIL, 0)


def select_tiles(products: list[str] | None = None) -> list[RasterTile]:
    """The tiles to read: per product, one version (``product:version`` pins it; otherwise the most
    recently registered version). ``products`` None: every registered product."""
    wanted: dict[str, str | None] = {}
    for item in products or []:
        name, _, version = item.partition(":")
        if name not in RasterTile.Product.values:
            raise ValidationFailed(f"unknown product {name!r}; one of {', '.join(RasterTile.Product.values)}",
                                   field="product")
        wanted[name] = version or None
    if products and LOSS_PRODUCT not in wanted:
        raise ValidationFailed(f"the verdict needs {LOSS_PRODUCT}; name it among the products", field="product")
    tiles = []
    for name in RasterTile.Product.values:
        if products and name not in wanted:
            continue
        qs = RasterTile.objects.filter(product=name)
        version = wanted.get(name) or qs.order_by("-loaded_at", "-id").values_list("version", flat=True).first()
        if version is None:
            continue
        chosen = list(qs.filter(version=version).order_by("id"))
        if not chosen:
            raise ValidationFailed(f"no {name} tiles of version {version!r} are registered", field="product")
        tiles.extend(chosen)
    return tiles


def _spec(tile: RasterTile) -> TileSpec:
    return TileSpec(id=tile.id, product=tile.product, version=tile.version, path=tile.path, crs_wkt=tile.crs_wkt,
                    res_x=tile.resolution_x, res_y=tile.resolution_y, bands=dict(tile.bands),
                    file_size=tile.file_size)


def _plots(ids: list[int], tiles: list[RasterTile]) -> list[tuple]:
    """(id, WKB in 4326, geodesic area m², ids of the tiles it meets, max latitude, min longitude) per active plot."""
    with connection.cursor() as cur:
        cur.execute(PLOTS_SQL, {"ids": id_array(ids), "tiles": id_array([t.id for t in tiles])})
        return [(pid, bytes(wkb), area_m2, list(tile_ids), ymax, xmin)
                for pid, wkb, area_m2, tile_ids, ymax, xmin in cur.fetchall()]


def _tasks(rows: list[tuple], tiles: list[RasterTile], chunk: int) -> list[Task]:
    """One task per (tile, chunk of its plots), plots sorted north to south then west to east."""
    by_tile: dict[int, list[tuple]] = {t.id: [] for t in tiles}
    for row in rows:
        for tile_id in row[3]:
            by_tile[tile_id].append(row)
    tasks = []
    for tile in tiles:
        members = sorted(by_tile[tile.id], key=lambda r: (-r[4], r[5], r[0]))
        for start in range(0, len(members), chunk):
            part = members[start:start + chunk]
            tasks.append(Task(tile=_spec(tile), plot_ids=[r[0] for r in part], wkb=[r[1] for r in part]))
    return tasks


def _execute(tasks: list[Task], workers: int, dask: str | None) -> Iterator[TaskResult]:
    """Run the tasks here, in local processes, or on a Dask cluster; yield results as they finish."""
    if dask:
        from distributed import Client, as_completed

        with Client(dask) as client:
            futures = client.map(run_task, tasks, pure=False)
            for future in as_completed(futures):
                yield future.result()
        return
    if workers <= 1 or len(tasks) <= 1:
        yield from map(run_task, tasks)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=_worker_context()) as pool:
        yield from pool.map(run_task, tasks)


def _worker_context():
    """fork where the platform has it: workers start at once with the libraries loaded (spawn costs
    ~0.6 s per worker in imports, more than a 16,000-plot tile takes). Safe here because a worker
    runs only screening.zonal, never Django: it neither uses nor closes the inherited database
    socket (it leaves through os._exit, which runs no finalizers)."""
    return get_context("fork" if "fork" in get_all_start_methods() else "spawn")


def run_screening(plot_ids: list[int] | None = None, *, products: list[str] | None = None,
                  thresholds: Thresholds | None = None, workers: int | None = None, dask: str | None = None,
                  progress: Callable[[int, int], None] | None = None, chunk_plots: int = CHUNK_PLOTS,
                  batch_size: int = 5_000) -> ScreeningSummary:
    """Screen ``plot_ids`` (None: every active plot); see the module docstring.

    ``progress(done, total)`` is called as tasks finish, with plot × tile
    measurements done and to do.
    """
    started = time.perf_counter()
    thresholds = thresholds or Thresholds.from_environment()
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if chunk_plots < 1 or batch_size < 1:
        raise ValidationFailed("chunk and batch sizes must be at least 1")
    tiles = select_tiles(products)
    if plot_ids is None:
        plot_ids = list(Plot.objects.filter(status=Plot.Status.ACTIVE).order_by("id").values_list("id", flat=True))
    rows = _plots(plot_ids, tiles)
    tasks = _tasks(rows, tiles, chunk_plots)
    summary = ScreeningSummary(plots=len(rows), tiles=len(tiles), tasks=len(tasks))
    # Per plot, per tile: the sums; combined in tile order so that the float sums,
    # and hence the stored figures, do not depend on which worker finished first.
    measured: dict[int, dict[int, dict[str, float]]] = {}
    done, total = 0, sum(len(t.plot_ids) for t in tasks)
    try:
        for result in _execute(tasks, workers, dask):
            for plot_id, sums in result.sums.items():
                measured.setdefault(plot_id, {})[result.tile_id] = sums
            done += result.plots
            if progress:
                progress(done, total)
    except TileUnreadable as exc:
        # Nothing has been written yet: a run is all tiles or no verdicts.
        raise ValidationFailed(str(exc), field="tile", code="tile_unreadable") from None
    specs = {t.id: _spec(t) for t in tiles}
    versions = {t.product: t.version for t in tiles}
    summary.datasets = dict(sorted(versions.items()))
    verdicts = [(pid, *verdict(area_m2=area_m2, per_tile=measured.get(pid, {}), tiles=specs,
                               versions=versions, thresholds=thresholds))
                for pid, _wkb, area_m2, _tiles, _y, _x in rows]
    for start in range(0, len(verdicts), batch_size):
        with transaction.atomic():
            counts = write_verdicts(verdicts[start:start + batch_size], datasets=summary.datasets)
        for outcome, (computed, written) in counts.items():
            summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + computed
            summary.written += written
    summary.seconds = time.perf_counter() - started
    return summary
