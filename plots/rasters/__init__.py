"""The raster catalog: registering satellite tiles for screening.

    raster_load(*, paths, product, version, acquired=None, bands=None) -> list[RasterTile]

A tile is validated with rasterio before it is registered: it must open, declare a
CRS, have a plausible header (see MAX_CELLS / MAX_SIDE / MAX_BANDS), and hold all
its data (every TIFF block ends within the file: a truncated download is refused
here, not half-way through a country-wide screening). Registering the same file
again for the same product and version updates its entry.
"""

from __future__ import annotations

from plots.rasters.catalog import (MAX_BANDS, MAX_CELLS, MAX_SIDE, PRODUCT_BANDS, RasterInfo, inspect_raster,
                                   raster_load)

__all__ = ["MAX_BANDS", "MAX_CELLS", "MAX_SIDE", "PRODUCT_BANDS", "RasterInfo", "inspect_raster", "raster_load"]
