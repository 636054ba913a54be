"""One screening task: the plots over one raster tile, measured with exactextract.

This module runs inside worker processes (local or Dask) and so imports nothing
from Django: a task carries everything it needs (the tile's file, grid and band
meanings; the plots as WKB in WGS 84) and returns plain sums per plot.

Method, per plot and tile:

1. The plot is reprojected to the tile's CRS. Edges are first cut into pieces of
   at most SEGMENT_DEG degrees, because an edge straight in lon/lat is a curve in
   UTM or Mercator.
2. exactextract gives, for every cell the plot touches, the cell's value and the
   exact fraction of the cell the polygon covers (``coverage``), and the cell
   centre; nodata cells and cells beyond the tile are not returned.
3. Each cell's ground area comes from screening.cells (geodesic); a cell
   contributes ``coverage × area`` square metres.
4. Sums per plot: the area on valid cells (``covered_m2``), and per product the
   area of loss after / up to the cut-off year, the tree-cover-weighted area, the
   forest area, or the NDVI-weighted area.

Tiles are read raster-sequentially: exactextract walks the tile in chunks and
finds the plots over each, so each part of the file is read once per task.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.errors import RasterioError
import shapely
from exactextract import exact_extract
from exactextract.feature import GeoPandasFeatureSource
from exactextract.raster import RasterioRasterSource
from pyproj import CRS, Transformer

from screening.cells import cell_areas_m2

# 0.0001° ≈ 11 m: finer than any satellite product's cell, so reprojected plot
# edges follow the true curve within millimetres.
SEGMENT_DEG = 0.0001
CUTOFF_YEAR = 2020  # EUDR: deforestation after 31 December 2020
# Hansen lossyear codes are years since 2000: 1..20 = 2001..2020, 21.. = 2021..
CUTOFF_CODE = CUTOFF_YEAR - 2000


@dataclass(frozen=True)
class TileSpec:
    """The parts of a catalogued tile a worker needs (plain values, picklable)."""

    id: int
    product: str
    version: str
    path: str
    crs_wkt: str
    res_x: float
    res_y: float
    bands: dict[str, int]
    file_size: int  # bytes when registered: a different size means the file was replaced


class TileUnreadable(RuntimeError):
    """A catalogued tile a worker cannot read as it was registered; the message names the file."""


@dataclass(frozen=True)
class Task:
    tile: TileSpec
    plot_ids: list[int]
    wkb: list[bytes]  # plot geometries in WGS 84, same order as plot_ids


@dataclass
class TaskResult:
    tile_id: int
    product: str
    version: str
    plots: int  # plots in the task (measured or not)
    sums: dict[int, dict[str, float]] = field(default_factory=dict)  # plot id -> {quantity: m² or weighted m²}


def _features(task: Task, crs: CRS):
    """The task's plots as a GeoDataFrame in the tile's CRS (edges densified first when it is not WGS 84)."""
    import geopandas as gpd

    geoms = shapely.from_wkb(task.wkb)
    if not crs.equals(CRS.from_epsg(4326)):
        geoms = shapely.segmentize(geoms, SEGMENT_DEG)
        to_tile = Transformer.from_crs(4326, crs, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(to_tile.transform(xy[:, 0], xy[:, 1])))
    return gpd.GeoDataFrame({"plot_id": np.asarray(task.plot_ids, dtype=np.int64)}, geometry=geoms, crs=crs)


def _extract(task: Task, ds, crs: CRS):
    """exactextract per cell: (feature index per cell, values, weights or None, coverage, cx, cy)."""
    bands = task.tile.bands
    two_bands = "red" in bands and "nir" in bands
    rast = RasterioRasterSource(ds, band_idx=bands["red"] if two_bands else next(iter(bands.values())))
    weights = RasterioRasterSource(ds, band_idx=bands["nir"]) if two_bands else None
    ops = ["values", "coverage", "center_x", "center_y"] + (["weights"] if two_bands else [])
    frame = exact_extract(rast, GeoPandasFeatureSource(_features(task, crs)), ops, weights=weights,
                          include_cols=["plot_id"], strategy="raster-sequential", output="pandas")
    counts = np.fromiter((len(v) for v in frame["values"]), dtype=np.int64, count=len(frame))
    index = np.repeat(np.arange(len(frame)), counts)

    def cat(column: str) -> np.ndarray:
        return np.concatenate(list(frame[column])) if counts.sum() else np.zeros(0)

    return (frame["plot_id"].to_numpy(), index, cat("values").astype(float),
            cat("weights").astype(float) if two_bands else None, cat("coverage"), cat("center_x"), cat("center_y"))


def _valid(product: str, values: np.ndarray) -> np.ndarray:
    """Cells holding a value the product defines. Nodata cells never reach here (exactextract skips
    them), but published tiles often declare no nodata: Hansen lossyear is 0–99 (years since 2000),
    treecover2000 0–100 %, the TMF forest mask 0 or 1; anything else is not data."""
    if product == "hansen-lossyear":
        return (values >= 0) & (values <= 99)
    if product == "hansen-treecover2000":
        return (values >= 0) & (values <= 100)
    if product == "jrc-tmf":
        return (values == 0) | (values == 1)
    return np.ones(values.shape, dtype=bool)


def _quantities(product: str, values: np.ndarray, weights: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per-cell multipliers of the covered area, by quantity name, for ``product`` (valid cells only)."""
    if product == "hansen-lossyear":
        return {"loss_after_m2": (values > CUTOFF_CODE).astype(float),
                "loss_before_m2": ((values >= 1) & (values <= CUTOFF_CODE)).astype(float)}
    if product == "hansen-treecover2000":
        return {"treecover_m2": values / 100.0}
    if product == "jrc-tmf":
        return {"forest_m2": (values == 1).astype(float)}
    # multispectral: NDVI = (NIR − red) / (NIR + red) where the sum is positive.
    total = values + weights
    valid = total > 0
    ndvi = np.divide(weights - values, total, out=np.zeros_like(total), where=valid)
    return {"ndvi_m2": ndvi * valid, "ndvi_valid_m2": valid.astype(float)}


def run_task(task: Task) -> TaskResult:
    """Measure the task's plots over its tile (see the module docstring)."""
    result = TaskResult(tile_id=task.tile.id, product=task.tile.product, version=task.tile.version,
                        plots=len(task.plot_ids))
    crs = CRS.from_wkt(task.tile.crs_wkt)
    path = task.tile.path
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise TileUnreadable(f"{path}: {exc.strerror} (registered as {task.tile.product} {task.tile.version})") \
            from None
    if size != task.tile.file_size:
        raise TileUnreadable(f"{path}: the file changed since it was registered ({size} bytes, registered with "
                             f"{task.tile.file_size}); register it again with chacra load-raster")
    try:
        # GTiff only, as at registration: a file swapped for a VRT must not make GDAL
        # read other files or URLs (the size check above catches most swaps).
        with rasterio.open(path, driver="GTiff") as ds:
            plot_ids, index, values, weights, coverage, cx, cy = _extract(task, ds, crs)
    except RasterioError as exc:
        raise TileUnreadable(f"{path}: GDAL cannot read it ({exc})") from None
    valid = _valid(task.tile.product, values)
    area = coverage * cell_areas_m2(crs, cx, cy, task.tile.res_x, task.tile.res_y) * valid
    n = len(plot_ids)
    sums = {"covered_m2": np.bincount(index, weights=area, minlength=n)}
    for name, factor in _quantities(task.tile.product, values, weights).items():
        sums[name] = np.bincount(index, weights=area * factor, minlength=n)
    for i, plot_id in enumerate(plot_ids.tolist()):
        if sums["covered_m2"][i] > 0:
            result.sums[plot_id] = {name: float(column[i]) for name, column in sums.items()}
    return result
