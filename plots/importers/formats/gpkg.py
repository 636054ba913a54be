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
    Layer, LayerRow, layer_names, pick_layer, read_layer, resolve_srid, vector_records,
)
from plots.importers.safety import check_gpkg


class GeoPackageImporter:
    name = "gpkg"
    extensions = (".gpkg",)
    description = "GeoPackage: the first layer with geometries, or the one named"

    def read(self, path: Path, *, srid: int | None = None, limits: Limits = Limits(),
             layer: str | None = None) -> Iterator[SourceRecord]:
        data, srid = self.layer(path, srid=srid, limits=limits, layer=layer)
        return self.records(path, data.rows, srid, limits)

    def layer(self, path: Path, *, srid: int | None = None, limits: Limits = Limits(),
              layer: str | None = None) -> tuple[Layer, int]:
        """The raw layer and the SRID of its coordinates (for the bulk loader)."""
        path = Path(path)
        check_gpkg(path, limits)
        name = pick_layer(path, layer_names(path, "GeoPackage"), layer)
        data = read_layer(path, limits, kind="GeoPackage", layer=name)
        return data, resolve_srid(path, data.crs, srid, what=f"the layer {name!r}")

    def records(self, path: Path, rows: list[LayerRow], srid: int, limits: Limits) -> Iterator[SourceRecord]:
        return vector_records(rows, srid, limits)


registry.register(GeoPackageImporter())
