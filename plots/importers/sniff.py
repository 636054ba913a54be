"""What a file really holds, from its first bytes, checked against what it was sent as.

GDAL chooses a driver from the content, so a file's name proves nothing (see
``gdal_policy``). Each reader calls ``expect`` before any parser sees the file:
GeoJSON must start with ``{``, KML and GPX are XML (their root element is checked
while ``safety.check_xml`` streams them), GeoPackage has the SQLite header and a
GeoPackage application_id, KMZ and zipped shapefiles start as zip archives, a
shapefile's .shp/.shx start with the shapefile code 9994, and CSV is text.
"""

from __future__ import annotations

import re
from pathlib import Path

from plots.importers.base import ImportFileError

HEAD_BYTES = 4096
SQLITE_MAGIC = b"SQLite format 3\x00"
GPKG_APPLICATION_IDS = (b"GPKG", b"GP10", b"GP11")  # 1.2+, 1.0, 1.1
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # an archive, an empty archive
SHAPEFILE_CODE = b"\x00\x00\x27\x0a"  # 9994, big-endian: the first word of every .shp and .shx
_BOMS = {b"\xef\xbb\xbf": "UTF-8", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}
_XML_ROOT = re.compile(rb"<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")
_XML_SKIP = re.compile(rb"\s*(<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(\[.*?\])?\s*>)", re.S)

# What a VRT-like root element means to the person who sent it.
XML_ROOTS = {"OGRVRTDataSource": "an OGR VRT document (XML that makes GDAL read other files or URLs)",
             "VRTDataset": "a GDAL raster VRT document (XML that makes GDAL read other files or URLs)",
             "kml": "KML", "gpx": "GPX"}


def head(path: Path, size: int = HEAD_BYTES) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise ImportFileError(path, f"cannot open the file: {exc.strerror or exc}") from None


def describe(data: bytes) -> str:
    """What the bytes look like, in words a person understands."""
    if not data.strip():
        return "nothing (the file is empty)"
    if data.startswith(ZIP_MAGICS):
        return "a zip archive"
    if data.startswith(SQLITE_MAGIC):
        return "a GeoPackage" if data[68:72] in GPKG_APPLICATION_IDS else "an SQLite database (not a GeoPackage)"
    if data.startswith(SHAPEFILE_CODE):
        return "a shapefile's geometry (.shp) part"
    if data.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "a TIFF image"
    if data.startswith(b"%PDF"):
        return "a PDF document"
    if data.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    text = _text(data)
    if text is None:
        return "UTF-16 text without a byte-order mark" if looks_utf16(data) else "binary data"
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return "JSON"
    root = xml_root(data)
    if root is not None:
        return XML_ROOTS.get(root, f"XML whose root element is <{root[:40]}>")
    return "XML" if stripped.startswith("<") else "text"


def expect(path: Path, kind: str, label: str, data: bytes | None = None) -> None:
    """Refuse ``path`` unless its first bytes are ``kind`` ("json", "xml", "zip", "gpkg",
    "shp", "text"); ``label`` names the format as the user chose it ("GeoJSON")."""
    data = head(path) if data is None else data
    if not _is(kind, data):
        raise ImportFileError(path, mismatch(path, label, describe(data)))


def mismatch(path: Path, label: str, found: str) -> str:
    suffix = f" ({Path(path).suffix.lower()})" if Path(path).suffix else ""
    return f"refused: it was sent as {label}{suffix} but holds {found}; Chacra reads {label} only as {label}"


def _is(kind: str, data: bytes) -> bool:
    if kind == "zip":
        return data.startswith(ZIP_MAGICS)
    if kind == "gpkg":
        return data.startswith(SQLITE_MAGIC) and data[68:72] in GPKG_APPLICATION_IDS
    if kind == "shp":
        return data.startswith(SHAPEFILE_CODE)
    text = _text(data)
    if kind == "json":
        return text is not None and text.lstrip().startswith("{")
    if kind == "xml":  # the root element itself is checked by safety.check_xml's parser
        return text is not None and text.lstrip().startswith("<")
    if kind == "text":
        return text is not None and not text.lstrip().startswith(("{", "<"))
    raise ValueError(kind)


def bom_encoding(data: bytes) -> str | None:
    """The encoding a byte-order mark declares, or None."""
    for bom, name in _BOMS.items():
        if data.startswith(bom):
            return name
    return None


def looks_utf16(data: bytes) -> bool:
    """Mostly-ASCII text in UTF-16 without a BOM: every other byte is NUL."""
    sample = data[:1024]
    return len(sample) >= 8 and (sample[0::2].count(0) > len(sample) * 0.4 or sample[1::2].count(0) > len(sample) * 0.4)


def _text(data: bytes) -> str | None:
    """The head as text (UTF-8, UTF-16 with a BOM, else Windows-1252), or None when binary."""
    encoding = bom_encoding(data)
    if encoding == "UTF-16":
        return data.decode("utf-16", errors="ignore")
    if b"\x00" in data:
        return None
    return data.decode("utf-8-sig" if encoding else "cp1252", errors="replace")


def xml_root(data: bytes) -> str | None:
    """The local name of the first element, if ``data`` starts as XML."""
    if bom_encoding(data) == "UTF-16":
        data = data.decode("utf-16", errors="ignore").encode("utf-8")
    data = data.removeprefix(b"\xef\xbb\xbf")
    pos = 0
    while match := _XML_SKIP.match(data, pos):
        pos = match.end()
    data = data[pos:].lstrip()
    match = _XML_ROOT.match(data)
    return match.group(2).decode("ascii", "replace") if match else None
