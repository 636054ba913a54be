"""A zipped shapefile, the way agencies (SERNANP, INEI, WDPA) ship their layers.

The archive is checked by ``safety.check_zip`` before anything is inflated; then
only the one shapefile's parts (.shp, .shx, .dbf, and .prj/.cpg when present) are
extracted into a temporary folder, their content checked (a .shp and .shx start
with the shapefile code, a .dbf with a dBASE version byte, .prj and .cpg are short
text: GDAL would open a VRT named .shp as a VRT), read by GDAL's shapefile driver
only, and the folder is removed once the features are in memory. GDAL corrects rings wound the wrong way (logged as a
warning); validity is judged later, by the import pipeline.

A shapefile without a .prj has coordinates in an unknown CRS: it is refused unless
``srid`` names it, never assumed to be WGS 84.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from plots.importers import registry, sniff
from plots.importers.base import ImportFileError, Limits, SourceRecord
from plots.importers.formats._common import CRS_EXAMPLE, Layer, LayerRow, read_layer, resolve_srid, vector_records
from plots.importers.safety import check_file_size, check_zip, extract_members

_REQUIRED = (".shx", ".dbf")
# dBASE III/IV/5/7 and Visual FoxPro version bytes, with and without memo flags.
_DBF_VERSIONS = {0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x32, 0x43, 0x63, 0x83, 0x8B, 0x8E, 0xCB, 0xF5, 0xFB}
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
        with tempfile.TemporaryDirectory(prefix="chacra-shp-") as folder:
            shp, has_prj = extract_shapefile(path, limits, layer, Path(folder), need_prj=srid is None)
            data = read_layer(path, limits, kind="Shapefile", source=shp)
        declared = data.crs if has_prj else None
        return data, resolve_srid(path, declared, srid, what=shp.name)


def extract_shapefile(path: Path, limits: Limits, layer: str | None, folder: Path,
                      need_prj: bool = False) -> tuple[Path, bool]:
    """The archive's one shapefile, checked and extracted into ``folder``: (.shp file, has a .prj)."""
    members = _shapefile_members(path, check_zip(path, limits), layer)
    shp = members[".shp"]
    files = extract_members(path, members.values(), folder, limits)
    for suffix, info in members.items():
        _check_part(path, info.filename, files[info.filename], suffix)
    if ".prj" not in members and need_prj:
        raise ImportFileError(path, f"{PurePosixPath(shp.filename).name} has no .prj: name its CRS, {CRS_EXAMPLE}")
    return files[shp.filename], ".prj" in members


def _check_part(path: Path, name: str, file: Path, suffix: str) -> None:
    data = sniff.head(file, 8192)
    if suffix in (".shp", ".shx"):
        ok = data.startswith(sniff.SHAPEFILE_CODE)
    elif suffix == ".dbf":
        ok = bool(data) and data[0] in _DBF_VERSIONS
    else:  # .prj, .cpg: a line of text
        ok = len(data) < 8192 and b"\x00" not in data and not data.lstrip().startswith((b"<", b"{"))
    if not ok:
        raise ImportFileError(path, f"refused: its {PurePosixPath(name).name!r} holds {sniff.describe(data)}, "
                                    f"not a shapefile's {suffix} part")


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
