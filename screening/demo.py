"""A synthetic Hansen-style loss raster for the demo, with loss after 2020 under known plots.

    generate(*, seed, folder) -> DemoLossReport
    reset() -> int

The tiles imitate Hansen GFC ``lossyear`` (uint8, 0 = no loss, 1–23 = 2001–2023,
255 nodata, 0.00025° cells in EPSG:4326) over the demo plots, and are registered
as product ``hansen-lossyear`` version ``demo-synthetic``:

- loss after the cut-off (years 2021–2023) in the cells whose centres lie inside a
  few chosen plots, chosen among plots with no other plot within ISOLATION_M, so
  that no neighbour gets any post-2020 loss;
- loss before the cut-off (2001–2020) in scattered 3×3-cell patches everywhere,
  under plots too: those plots must still pass.

``chacra screen`` then fails exactly the chosen plots.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from django.db import connection
from rasterio.features import rasterize

from screening.models import RasterTile
from screening.catalog import raster_load

VERSION = "demo-synthetic"
RES = 0.00025  # degrees, as Hansen GFC
MARGIN = 0.005  # degrees of raster around the plots
ISOLATION_M = 300.0
SHARE_FLAGGED = 0.02
PRE_2020_PATCHES_PER_KM2 = 0.5


@dataclass
class DemoLossReport:
    tiles: list[Path]
    flagged: list[str]  # plot codes placed over post-2020 loss

    def line(self) -> str:
        return (f"demo loss raster: {len(self.tiles)} tile(s) of {RasterTile.Product.HANSEN_LOSSYEAR} {VERSION} "
                f"in {self.tiles[0].parent if self.tiles else '-'}; plots placed over loss after 2020: "
                f"{', '.join(self.flagged) or 'none'}")


def _plots(prefix: str) -> list[tuple[str, shapely.Geometry, bool]]:
    """(code, geometry, isolated) of the active demo plots; isolated = no other plot within ISOLATION_M."""
    # Raw SQL: one geography distance test per nearby pair. The bounding-box test on
    # the indexed columns (GiST) finds the neighbours first: 0.004° is more than 300 m
    # of longitude anywhere below 40° of latitude (Peru reaches 18.4° S).
    sql = """
        SELECT p.code, ST_AsBinary(g.geom), p.boundary IS NOT NULL,
               NOT EXISTS (SELECT 1 FROM plots_plot o
                           WHERE o.id <> p.id AND o.status = 'active'
                             AND (o.boundary && ST_Expand(g.geom, 0.004) OR o.location && ST_Expand(g.geom, 0.004))
                             AND ST_DWithin(COALESCE(o.boundary::geometry, o.location::geometry)::geography,
                                            g.geom::geography, %s))
        FROM plots_plot p
        CROSS JOIN LATERAL (SELECT COALESCE(p.boundary::geometry, p.location::geometry) AS geom) g
        WHERE p.status = 'active' AND p.code LIKE %s ORDER BY p.code
    """
    with connection.cursor() as cur:
        cur.execute(sql, [ISOLATION_M, f"{prefix}%"])
        return [(code, shapely.from_wkb(bytes(wkb)), is_polygon and isolated)
                for code, wkb, is_polygon, isolated in cur.fetchall()]


def _extents(geoms: list[shapely.Geometry]) -> list[tuple[float, float, float, float]]:
    """Disjoint rectangles (with MARGIN) covering all plots: clusters on a 0.25° grid, merged while they meet."""
    boxes: dict[tuple[int, int], list[float]] = {}
    for g in geoms:
        x0, y0, x1, y1 = g.bounds
        key = (int(np.floor(x0 / 0.25)), int(np.floor(y0 / 0.25)))
        b = boxes.setdefault(key, [x0, y0, x1, y1])
        boxes[key] = [min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)]
    rects = [shapely.box(*b).buffer(MARGIN + 2 * RES, join_style="mitre") for b in boxes.values()]
    merged = True
    while merged:
        merged = False
        for i in range(len(rects)):
            for j in range(i + 1, len(rects)):
                if rects[i].intersects(rects[j]):
                    rects[i] = shapely.box(*shapely.union(rects[i], rects[j]).bounds)
                    del rects[j]
                    merged = True
                    break
            if merged:
                break
    return [r.bounds for r in rects]


def _tile(bounds, plots, flagged: set[str], rng: np.random.Generator) -> tuple[np.ndarray, rasterio.Affine]:
    x0, y0, x1, y1 = bounds
    x0, y1 = np.floor(x0 / RES) * RES, np.ceil(y1 / RES) * RES
    width, height = int(np.ceil((x1 - x0) / RES)), int(np.ceil((y1 - y0) / RES))
    transform = rasterio.Affine(RES, 0.0, x0, 0.0, -RES, y1)
    data = np.zeros((height, width), dtype=np.uint8)
    patches = int(PRE_2020_PATCHES_PER_KM2 * width * height * 0.0007)  # ~0.0007 km² per cell
    rows, cols = rng.integers(0, height - 3, patches), rng.integers(0, width - 3, patches)
    for r, c, year in zip(rows, cols, rng.integers(1, 21, patches)):
        data[r:r + 3, c:c + 3] = year
    shapes = [(geom, int(rng.integers(21, 24))) for code, geom, _ in plots if code in flagged]
    if shapes:
        burnt = rasterize(shapes, out_shape=data.shape, transform=transform, all_touched=False, dtype=np.uint8)
        data = np.where(burnt > 0, burnt, data)
    return data, transform


def generate(*, seed: int, folder: Path, prefix: str = "demo-") -> DemoLossReport:
    """Write and register the demo loss tiles in ``folder``; see the module docstring."""
    plots = _plots(prefix)
    if not plots:
        return DemoLossReport(tiles=[], flagged=[])
    chooser = random.Random(seed)
    isolated = [code for code, _, ok in plots if ok]
    flagged = set(chooser.sample(isolated, max(1, round(SHARE_FLAGGED * len(plots))))) if isolated else set()
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, bounds in enumerate(_extents([g for _, g, _ in plots])):
        data, transform = _tile(bounds, plots, flagged, rng)
        path = folder / f"demo_lossyear_{i:02d}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                           dtype="uint8", nodata=255, crs="EPSG:4326", transform=transform, tiled=True,
                           blockxsize=256, blockysize=256, compress="deflate") as out:
            out.write(data, 1)
        paths.append(path)
    raster_load(paths=paths, product=RasterTile.Product.HANSEN_LOSSYEAR, version=VERSION)
    return DemoLossReport(tiles=paths, flagged=sorted(flagged))


def reset() -> int:
    """Unregister the demo tiles (the files are overwritten by the next generate)."""
    deleted, _ = RasterTile.objects.filter(version=VERSION).delete()
    return deleted
