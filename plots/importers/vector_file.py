"""A vector file checked like an upload, for readers outside the plot importers.

``plots.reference`` loads INEI, SERNANP and WDPA layers from files an operator
names on the command line; they are opened under the same rules as uploads (see
``gdal_policy``): the format comes from the name, the content must match it, and
GDAL gets a plain local path opened by that format's driver only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyogrio

from plots.importers import gdal_policy, sniff
from plots.importers.base import ImportFileError, Limits
from plots.importers.formats._common import gdal_errors
from plots.importers.formats.geojson import check_crs_members
from plots.importers.formats.shapefile import extract_shapefile
from plots.importers.safety import check_file_size, check_gpkg

KINDS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage", ".shp": "Shapefile",
         ".zip": "Shapefile"}
# Official layers are larger than plot files (a country's districts, WDPA extracts).
REFERENCE_LIMITS = Limits(max_file_bytes=2 * 1024 ** 3, max_entry_bytes=2 * 1024 ** 3,
                          max_uncompressed_bytes=4 * 1024 ** 3)


@contextmanager
def checked_source(path: Path, limits: Limits = REFERENCE_LIMITS) -> Iterator[str]:
    """What to hand pyogrio for ``path`` once its content matches its name; a zipped
    shapefile is extracted for the duration of the block."""
    path = Path(path)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise ImportFileError(path, "reference layers are read from GeoJSON, GeoPackage or shapefiles "
                                    "(.shp, or zipped)")
    check_file_size(path, limits)
    if path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="chacra-ref-") as folder:
            shp, _has_prj = extract_shapefile(path, limits, None, Path(folder))
            yield _opened(path, kind, shp)
        return
    if kind == "GeoJSON":
        sniff.expect(path, "json", kind)
        check_crs_members(path)
    elif kind == "GeoPackage":
        check_gpkg(path, limits)
    else:
        sniff.expect(path, "shp", "a shapefile")
    yield _opened(path, kind, path)


def _opened(path: Path, kind: str, opened: Path) -> str:
    source = gdal_policy.source(path, kind, opened)
    with gdal_errors(path):
        gdal_policy.check_driver(path, kind, pyogrio.read_info(source).get("driver"))
    return source
