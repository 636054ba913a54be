"""The raster catalog: registering satellite tiles for screening.

    raster_load(*, paths, product, version, acquired=None, bands=None) -> list[RasterTile]

A tile is validated with rasterio before it is registered: it must open, declare a
CRS, have a plausible header (see MAX_CELLS / MAX_SIDE / MAX_BANDS), and hold all
its data (every TIFF block ends within the file: a truncated download is refused
here, not half-way through a country-wide screening). Registering the same file
again for the same product and version updates its entry.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.warp
from django.contrib.gis.geos import Polygon
from django.db import transaction
from rasterio.errors import RasterioError

from plots.errors import ValidationFailed
from screening.models import RasterTile

# Header sanity limits. A whole Hansen 10°×10° tile is 40,000 × 40,000 cells (1.6e9)
# and a Sentinel-2 10 m band 10,980²; a header declaring more than 2^34 cells (~17
# billion) or a side over 1,000,000 cells is a corrupt or hostile file, and opening
# it would make workers try to allocate absurd buffers.
MAX_CELLS = 2 ** 34
MAX_SIDE = 1_000_000
MAX_BANDS = 1_000
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # TIFF and BigTIFF, both byte orders
# Points per footprint edge: a UTM or Mercator tile's straight edges are curves in lon/lat.
FOOTPRINT_EDGE_POINTS = 32

# What each product's bands mean (1-based band numbers); multispectral defaults to
# the R, G, B, NIR order of 4-band scenes and is overridden with --bands red=…,nir=….
PRODUCT_BANDS: dict[str, dict[str, int]] = {
    RasterTile.Product.HANSEN_LOSSYEAR: {"lossyear": 1},
    RasterTile.Product.HANSEN_TREECOVER2000: {"treecover2000": 1},
    RasterTile.Product.JRC_TMF: {"forest": 1},
    RasterTile.Product.MULTISPECTRAL: {"red": 1, "nir": 4},
}


@dataclass(frozen=True)
class RasterInfo:
    """What the catalog records about one readable raster file."""

    path: str
    crs_wkt: str
    srid: int | None
    width: int
    height: int
    band_count: int
    dtype: str
    nodata: float | None
    transform: tuple[float, ...]
    footprint: Polygon  # WGS 84
    file_size: int
    file_mtime: float


def _refuse(path: Path, reason: str) -> ValidationFailed:
    return ValidationFailed(f"{path}: {reason}", field="file", code="invalid_raster")


def _check_tiff(path: Path) -> None:
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic not in TIFF_MAGICS:
        raise _refuse(path, "not a GeoTIFF (its first bytes are not a TIFF header); Chacra registers "
                            "GeoTIFF/COG tiles only")


def _check_header(path: Path, ds) -> None:
    if ds.crs is None or not ds.crs.to_wkt():
        raise _refuse(path, "the raster has no coordinate reference system; add one (e.g. gdal_edit.py -a_srs "
                            "EPSG:4326) before registering it")
    if ds.width > MAX_SIDE or ds.height > MAX_SIDE or ds.width * ds.height > MAX_CELLS or ds.count > MAX_BANDS:
        raise _refuse(path, f"the header declares an absurd size ({ds.width} × {ds.height} cells, {ds.count} "
                            f"bands; limits {MAX_SIDE} per side, {MAX_CELLS} cells, {MAX_BANDS} bands)")
    a = ds.transform
    if not all(math.isfinite(v) for v in (a.a, a.b, a.c, a.d, a.e, a.f)) or a.a == 0 or a.e == 0:
        raise _refuse(path, f"the geotransform is degenerate ({tuple(a)[:6]})")
    if a.b != 0 or a.d != 0:
        raise _refuse(path, "rotated grids are not supported; warp the file to a north-up grid first")


def _check_data(path: Path, ds) -> None:
    """Every block of every band lies within the file, and the last block decodes.

    A truncated GeoTIFF opens (its header is at the start) and fails only when a
    missing block is read; the TIFF block offsets find that without reading the data.
    """
    size = path.stat().st_size
    if ds.driver == "GTiff":
        rows = math.ceil(ds.height / ds.block_shapes[0][0])
        cols = math.ceil(ds.width / ds.block_shapes[0][1])
        for band in range(1, ds.count + 1):
            for r in range(rows):
                for c in range(cols):
                    offset = ds.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=band)
                    length = ds.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=band)
                    if offset and length and int(offset) + int(length) > size:
                        raise _refuse(path, f"the file is truncated: band {band} block ({r}, {c}) ends at byte "
                                            f"{int(offset) + int(length)} of a {size}-byte file")
    try:
        bh, bw = ds.block_shapes[0]
        window = rasterio.windows.Window(ds.width - min(bw, ds.width), ds.height - min(bh, ds.height),
                                         min(bw, ds.width), min(bh, ds.height))
        ds.read(window=window)
    except RasterioError as exc:
        raise _refuse(path, f"its data cannot be read ({exc})") from None


def _footprint(ds) -> Polygon:
    """The raster's bounds as a WGS 84 polygon, each edge densified before reprojection."""
    left, bottom, right, top = ds.bounds
    t = np.linspace(0.0, 1.0, FOOTPRINT_EDGE_POINTS, endpoint=False)
    xs = np.concatenate([left + (right - left) * t, np.full_like(t, right), right - (right - left) * t,
                         np.full_like(t, left)])
    ys = np.concatenate([np.full_like(t, bottom), bottom + (top - bottom) * t, np.full_like(t, top),
                         top - (top - bottom) * t])
    lons, lats = rasterio.warp.transform(ds.crs, "EPSG:4326", xs.tolist(), ys.tolist())
    ring = list(zip(lons, lats))
    ring.append(ring[0])
    polygon = Polygon(ring, srid=4326)
    if not polygon.valid:
        polygon = polygon.buffer(0)
    return polygon


def inspect_raster(path: str | os.PathLike) -> RasterInfo:
    """Open ``path`` with rasterio and validate it; raise ValidationFailed naming the file and the reason."""
    path = Path(path).resolve()
    if not path.is_file():
        raise _refuse(path, "file not found")
    _check_tiff(path)
    try:
        # Only the GTiff driver may open it: GDAL picks drivers by content, and a VRT
        # (or GTI, WMS …) named .tif would make it read other files or URLs.
        with rasterio.open(path, driver="GTiff") as ds:
            _check_header(path, ds)
            _check_data(path, ds)
            footprint = _footprint(ds)
            stat = path.stat()
            return RasterInfo(path=str(path), crs_wkt=ds.crs.to_wkt(), srid=ds.crs.to_epsg(), width=ds.width,
                              height=ds.height, band_count=ds.count, dtype=ds.dtypes[0], nodata=ds.nodata,
                              transform=tuple(ds.transform)[:6], footprint=footprint, file_size=stat.st_size,
                              file_mtime=stat.st_mtime)
    except RasterioError as exc:
        raise _refuse(path, f"GDAL cannot read it as a raster ({exc})") from None


def _bands(product: str, bands: dict[str, int] | None, band_count: int, path: Path) -> dict[str, int]:
    meaning = dict(PRODUCT_BANDS[product])
    if bands:
        meaning.update(bands)
    for name, number in meaning.items():
        if not 1 <= number <= band_count:
            raise _refuse(path, f"band {name}={number} does not exist (the file has {band_count} band(s))")
    return meaning


@transaction.atomic
def raster_load(*, paths: list[str | os.PathLike], product: str, version: str, acquired: dt.date | None = None,
                bands: dict[str, int] | None = None) -> list[RasterTile]:
    """Validate every file, then register them all (or none) as tiles of ``product`` ``version``."""
    if product not in RasterTile.Product.values:
        raise ValidationFailed(f"unknown product {product!r}; one of {', '.join(RasterTile.Product.values)}",
                               field="product")
    if not version or not version.strip():
        raise ValidationFailed("a product version is required (e.g. v1.11)", field="version")
    infos = [inspect_raster(p) for p in paths]  # all validated before anything is written
    tiles = []
    for info in infos:
        a, b, c, d, e, f = info.transform
        fields = dict(acquired=acquired, crs_wkt=info.crs_wkt, srid=info.srid, width=info.width,
                      height=info.height, band_count=info.band_count, dtype=info.dtype, nodata=info.nodata,
                      transform=[a, b, c, d, e, f], resolution_x=abs(a), resolution_y=abs(e),
                      bands=_bands(product, bands, info.band_count, Path(info.path)), footprint=info.footprint,
                      file_size=info.file_size, file_mtime=info.file_mtime)
        tile = RasterTile.objects.filter(product=product, version=version.strip(), path=info.path).first()
        tile = tile or RasterTile(product=product, version=version.strip(), path=info.path)
        for name, value in fields.items():
            setattr(tile, name, value)
        tile.full_clean()
        tile.save()
        tiles.append(tile)
    return tiles
