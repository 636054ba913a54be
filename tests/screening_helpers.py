"""Independent zonal computations for the raster and screening tests.

Nothing here uses exactextract or screening: coverage comes from a
supersampled grid of points tested against the plot in WGS 84 (shapely), and
each cell's ground area from pyproj.Geod on the cell's corners, edges densified,
transformed to lon/lat. This checks both the coverage and the reprojection of
the code under test.
"""

from __future__ import annotations

import numpy as np
import rasterio
import shapely
from pyproj import Geod, Transformer
from rasterio.windows import Window, from_bounds

GEOD = Geod(ellps="WGS84")
SUPERSAMPLE = 32  # points per cell side: coverage good to ~1/32 of a cell along the edges


def _cell_area_m2(to_lonlat: Transformer, x0: float, y0: float, dx: float, dy: float) -> float:
    t = np.linspace(0, 1, 9)
    xs = np.concatenate([x0 + dx * t, np.full(9, x0 + dx), x0 + dx * t[::-1], np.full(9, x0)])
    ys = np.concatenate([np.full(9, y0), y0 + dy * t, np.full(9, y0 + dy), y0 + dy * t[::-1]])
    lon, lat = to_lonlat.transform(xs, ys)
    return abs(GEOD.polygon_area_perimeter(lon, lat)[0])


def independent_sums(path, polygon_4326, band: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(value, coverage × geodesic area m²) of every cell of ``path`` that the polygon touches."""
    with rasterio.open(path) as ds:
        to_tile = Transformer.from_crs(4326, ds.crs, always_xy=True)
        to_lonlat = Transformer.from_crs(ds.crs, 4326, always_xy=True)
        dense = shapely.segmentize(polygon_4326, 0.00005)
        xs, ys = to_tile.transform(*np.asarray(dense.exterior.coords).T)
        win = from_bounds(min(xs), min(ys), max(xs), max(ys), ds.transform)
        r0, c0 = int(np.floor(win.row_off)) - 1, int(np.floor(win.col_off)) - 1
        r0, c0 = max(r0, 0), max(c0, 0)
        r1 = min(ds.height, int(np.ceil(win.row_off + win.height)) + 1)
        c1 = min(ds.width, int(np.ceil(win.col_off + win.width)) + 1)
        values = ds.read(band, window=Window(c0, r0, c1 - c0, r1 - r0)).astype(float)
        nodata = ds.nodata
        a = ds.transform
    shapely.prepare(polygon_4326)
    s = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    out_values, out_area = [], []
    for r in range(r0, r1):
        for c in range(c0, c1):
            value = values[r - r0, c - c0]
            if nodata is not None and value == nodata:
                continue
            fx, fy = np.meshgrid(c + s, r + s)
            x = a.c + a.a * fx
            y = a.f + a.e * fy
            lon, lat = to_lonlat.transform(x.ravel(), y.ravel())
            cover = shapely.contains_xy(polygon_4326, lon, lat).mean()
            if cover > 0:
                x0, y0 = a.c + a.a * c, a.f + a.e * r
                out_values.append(value)
                out_area.append(cover * _cell_area_m2(to_lonlat, x0, y0, a.a, a.e))
    return np.array(out_values), np.array(out_area)
