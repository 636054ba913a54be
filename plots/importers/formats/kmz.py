"""KMZ: a zip holding a KML (``doc.kml`` by convention) and perhaps its icons.

The archive is checked by ``safety.check_zip`` before anything is inflated (a KML
declared larger than ``Limits.max_kml_bytes`` is refused there, in milliseconds);
then only the KML is extracted into a temporary folder, counting the bytes really
inflated, checked like a plain KML (content, defusedxml) and read by GDAL. The
folder is removed once the features are read.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from plots.importers import registry, sniff
from plots.importers.base import ImportFileError, Limits, SourceRecord
from plots.importers.formats.kml import kml_records
from plots.importers.safety import check_file_size, check_xml, check_zip, extract_members


class KmzImporter:
    name = "kmz"
    extensions = (".kmz",)
    description = "KMZ (zipped KML) placemarks, every folder or the one named"

    def read(self, path: Path, *, srid: int | None = None, limits: Limits = Limits(),
             layer: str | None = None) -> Iterator[SourceRecord]:
        path = Path(path)
        check_file_size(path, limits)
        entry = _main_kml(path, check_zip(path, limits))
        with tempfile.TemporaryDirectory(prefix="chacra-kmz-") as folder:
            kml = extract_members(path, [entry], Path(folder), limits)[entry.filename]
            if not sniff.xml_root(sniff.head(kml)):
                raise ImportFileError(path, f"refused: its {entry.filename!r} holds "
                                            f"{sniff.describe(sniff.head(kml))}, not KML")
            check_xml(kml, name=path, kind="KML", root="kml")
            records = list(kml_records(path, limits, layer=layer, source=kml))
        return iter(records)


def _main_kml(path: Path, infos: list[zipfile.ZipInfo]) -> zipfile.ZipInfo:
    """The KML Google Earth would open: doc.kml, else the first .kml at the top level."""
    kmls = [i for i in infos if i.filename.lower().endswith(".kml")]
    if not kmls:
        raise ImportFileError(path, "the KMZ holds no .kml file")
    for info in kmls:
        if info.filename.lower() == "doc.kml":
            return info
    top = [i for i in kmls if len(PurePosixPath(i.filename).parts) == 1]
    return (top or kmls)[0]


registry.register(KmzImporter())
