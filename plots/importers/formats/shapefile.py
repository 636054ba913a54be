"""A zipped shapefile, the way agencies (SERNANP, INEI, WDPA) ship their layers.

The archive is checked by ``safety.check_zip`` before anything is inflated; then
only the one shapefile's parts (.shp, .shx, .dbf, and .prj/.cpg when present) are
extracted into a temporary folder for GDAL and the folder is removed once the
features are in memory. GDAL corrects rings wound the wrong way (logged as a
warning); validity is judged later, by the import pipeline.

A shapefile without a .prj has coordinates in an unknown CRS: it is refused unless
``srid`` names it, never assumed to be WGS 84.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from plots.importers import registry
from plots.importers.base import ImportFileError, Limits, SourceRecord
from plots.importers.formats._common import CRS_EXAMPLE, Layer, LayerRow, read_layer, resolve_srid, vector_records
from plots.importers.safety import check_file_size, check_zip, extract_members

_REQUIRED = (".shx", ".dbf")
_OPTIONAL = (".prj", ".cpg")


class ShapefileImporter:
    name = "shapefile"
    extensions = (".shp.zip", ".zip")
    description = "a zipped shapefile (.shp with its .shx, .dbf and .prj)"

    def read(self, path: Path, *, srid: int | None = None, limits: Limits = Limits(),
             layer: str | None = None) -> Iterator[SourceRecord]:
        data, srid = self.layer(path, srid=srid, limits=limits, layer=layer)
        return self.records(path, data.rows, srid, limits)

    def records(self, path: Path, rows: list[LayerRow], srid: int, limits: Limits) -> Iterator[SourceRecord]:
        return vector_records(rows, srid, limits)

    def layer(self, path: Path, *, srid: int | None = None, limits: Limits = Limits(),
              layer: str | None = None) -> tuple[Layer, int]:
        """The raw layer and the SRID of its coordinates (for the bulk loader)."""
        path = Path(path)
        check_file_size(path, limits)
        members = _shapefile_members(path, check_zip(path, limits), layer)
        shp = members[".shp"]
        if ".prj" not in members and srid is None:
            raise ImportFileError(path, f"{PurePosixPath(shp.filename).name} has no .prj: name its CRS, {CRS_EXAMPLE}")
        with tempfile.TemporaryDirectory(prefix="chacra-shp-") as folder:
            files = extract_members(path, members.values(), Path(folder))
            data = read_layer(path, limits, source=files[shp.filename])
        declared = data.crs if ".prj" in members else None
        return data, resolve_srid(path, declared, srid, what=PurePosixPath(shp.filename).name)


def _shapefile_members(path: Path, infos: list[zipfile.ZipInfo], layer: str | None) -> dict[str, zipfile.ZipInfo]:
    """The entries of the archive's one shapefile by lower-case suffix (".shp", ".dbf" …)."""
    shps = [i for i in infos if i.filename.lower().endswith(".shp")
            and not PurePosixPath(i.filename).name.startswith(".")]  # macOS "._x.shp" resource forks
    if layer is not None:
        shps = [i for i in shps if PurePosixPath(i.filename).stem == layer]
    if len(shps) != 1:
        found = ", ".join(PurePosixPath(i.filename).name for i in shps)
        what = f"{len(shps)} .shp files ({found})" if shps else "no .shp file"
        raise ImportFileError(path, f"the archive must hold exactly one shapefile, but it holds {what}"
                              + ("; name the one to read as the layer" if len(shps) > 1 else ""))
    stem = shps[0].filename[:-4]
    by_suffix = {i.filename[len(stem):].lower(): i for i in infos
                 if i.filename[:len(stem)] == stem and i.filename[len(stem):].lower() in (".shp",) + _REQUIRED + _OPTIONAL}
    missing = [s for s in _REQUIRED if s not in by_suffix]
    if missing:
        raise ImportFileError(path, f"{PurePosixPath(shps[0].filename).name} comes without its "
                                    f"{' and '.join(missing)}: zip all the files of the shapefile together")
    return by_suffix


registry.register(ShapefileImporter())
