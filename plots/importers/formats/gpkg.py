"""GeoPackage through GDAL (pyogrio): one layer, reprojected from its CRS.

The first layer with geometry is read unless ``layer`` names one (attribute-only
tables are skipped: they hold no plots). A layer without a CRS needs ``srid``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from plots.importers import registry
from plots.importers.base import Limits, SourceRecord
from plots.importers.formats._common import (
    layer_names, pick_layer, read_layer, resolve_srid, vector_records,
)
from plots.importers.safety import check_file_size


class GeoPackageImporter:
    name = "gpkg"
    extensions = (".gpkg",)
    description = "GeoPackage: the first layer with geometries, or the one named"

    def read(self, path: Path, *, srid: int | None = None, limits: Limits = Limits(),
             layer: str | None = None) -> Iterator[SourceRecord]:
        path = Path(path)
        check_file_size(path, limits)
        name = pick_layer(path, layer_names(path), layer)
        data = read_layer(path, limits, layer=name)
        srid = resolve_srid(path, data.crs, srid, what=f"the layer {name!r}")
        return vector_records(data.rows, srid, limits)


registry.register(GeoPackageImporter())
