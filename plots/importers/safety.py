"""Checks that run before any parser or GDAL driver sees an uploaded file.

Uploaded files come from anyone, so three attacks are refused up front:

* oversized files (``check_file_size``), before a byte is parsed;
* XML with a DTD (``check_xml``): entity expansion ("billion laughs") turns a
  1 kB file into gigabytes in memory, and external entities read local files.
  GPX and KML never need a DTD, so any ``<!DOCTYPE`` is refused, not just the
  dangerous ones;
* hostile zip archives (``check_zip``): too many entries, zip bombs (by total
  declared size and by compression ratio), entry names that escape the folder
  they are extracted into (``../x``, ``/etc/x``, ``C:\\x``), symlinks and
  encrypted entries. Only the central directory is read: nothing is inflated.

``extract_members`` then inflates only the entries a reader needs, streaming, and
counts the bytes it really writes: it stops as soon as an entry passes its limit
(``max_entry_bytes``, or ``max_kml_bytes`` for a KML) or the archive passes
``max_uncompressed_bytes``, whatever the headers declared.

``check_gpkg`` reads a GeoPackage's SQLite header and schema (with Python's
sqlite3, read-only) before GDAL opens it: a database larger than its file, a view
or a virtual table other than the R-tree spatial index (SQL that GDAL would run:
an endless recursive query, or VirtualOGR reading another file) are refused.
"""

from __future__ import annotations

import re
import sqlite3
import stat
import zipfile
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import quote
from zlib import error as zlib_error

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import ParseError, iterparse

from plots.importers import sniff
from plots.importers.base import ImportFileError, Limits

# A small entry cannot be a bomb, and text-heavy files (a DBF of blank padding, a
# KML of repeated styles) legitimately compress far beyond 200:1.
RATIO_CHECK_MIN_BYTES = 1024 * 1024


def check_file_size(path: Path, limits: Limits) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFileError(path, f"cannot open the file: {exc.strerror or exc}") from None
    if size > limits.max_file_bytes:
        raise ImportFileError(
            path, f"the file is {_mb(size)}, more than the {_mb(limits.max_file_bytes)} allowed")


# ------------------------------------------------------------------------------ XML


def check_xml(source: Path | BinaryIO, *, name: Path | str, kind: str, root: str | None = None) -> None:
    """Refuse XML with a DTD, entities or external references, or that is not well formed,
    or whose root element is not ``root`` (e.g. "kml"; the namespace is not compared).

    ``source`` is streamed (``iterparse``) and each element is dropped once seen, so
    the check needs little memory whatever the file size; a wrong root is refused at
    the first element. ``name`` is what the error names; ``kind`` ("GPX", "KML") is
    used in the reason.
    """
    try:
        for event, element in iterparse(source, events=("start", "end"), forbid_dtd=True,
                                        forbid_entities=True, forbid_external=True):
            if event == "start":
                if root is not None:
                    _check_root(name, kind, element.tag, root)
                    root = None
                continue
            element.clear()
    except (DTDForbidden, EntitiesForbidden) as exc:
        raise ImportFileError(name, (
            f"refused: the file declares a DTD ({_dtd_detail(exc)}); {kind} never needs one, and "
            "entity declarations in a DTD are how an entity-expansion (\"billion laughs\") attack "
            "makes a small file fill the server's memory")) from None
    except ExternalReferenceForbidden:
        raise ImportFileError(name, "refused: the file refers to an external entity, "
                                    "which could make the server read other files") from None
    except DefusedXmlException as exc:
        raise ImportFileError(name, f"refused: unsafe XML ({exc})") from None
    except ParseError as exc:
        raise ImportFileError(name, f"not a well-formed {kind} (XML) file: {exc}") from None


def _check_root(name: Path | str, kind: str, tag: str, root: str) -> None:
    local = tag.rsplit("}", 1)[-1]
    if local != root:
        found = sniff.XML_ROOTS.get(local, f"XML whose root element is <{local[:40]}>, not <{root}>")
        raise ImportFileError(name, sniff.mismatch(Path(name), kind, found))


def _dtd_detail(exc: DefusedXmlException) -> str:
    if isinstance(exc, EntitiesForbidden):
        return f"with the entity {exc.name!r}"
    return f"<!DOCTYPE {exc.name}>" if getattr(exc, "name", None) else "<!DOCTYPE …>"


# ------------------------------------------------------------------------------ zip


def check_zip(path: Path, limits: Limits) -> list[zipfile.ZipInfo]:
    """The archive's file entries (directories left out) once every check has passed."""
    data = sniff.head(path)
    if not data.startswith(sniff.ZIP_MAGICS):
        raise ImportFileError(path, f"not a readable zip archive: it holds {sniff.describe(data)}")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise ImportFileError(path, f"not a readable zip archive: {exc}") from None
    if len(infos) > limits.max_zip_entries:
        raise ImportFileError(
            path, f"the archive holds {len(infos)} entries, more than the {limits.max_zip_entries} allowed")
    for info in infos:
        _check_entry(path, info)
        limit = entry_limit(info, limits)
        if info.file_size > limit:
            raise ImportFileError(path, f"the entry {info.filename!r} would expand to {_mb(info.file_size)}, more "
                                        f"than the {_mb(limit)} allowed for it")
    total = sum(info.file_size for info in infos)
    if total > limits.max_uncompressed_bytes:
        raise ImportFileError(path, f"the archive would expand to {_mb(total)}, more than the "
                                    f"{_mb(limits.max_uncompressed_bytes)} allowed (a zip bomb?)")
    for info in infos:
        if info.file_size > RATIO_CHECK_MIN_BYTES and \
                info.file_size / max(info.compress_size, 1) > limits.max_compression_ratio:
            raise ImportFileError(path, _ratio_reason(f"the entry {info.filename!r}", info.file_size,
                                                      info.compress_size, limits))
    compressed = sum(info.compress_size for info in infos)
    if total > RATIO_CHECK_MIN_BYTES and total / max(compressed, 1) > limits.max_compression_ratio:
        raise ImportFileError(path, _ratio_reason("the archive", total, compressed, limits))
    return [info for info in infos if not info.is_dir()]


def _check_entry(path: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    reason = unsafe_member_name(name)
    if reason:
        raise ImportFileError(path, f"refused: the entry {name!r} {reason}")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ImportFileError(path, f"refused: the entry {name!r} is a symbolic link")
    if info.flag_bits & 0x1:
        raise ImportFileError(path, f"the entry {name!r} is password-protected; send it unencrypted")


def unsafe_member_name(name: str) -> str | None:
    """Why an entry name could write outside the extraction folder, or None."""
    if "\x00" in name:
        return "has a NUL character in its name"
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        return "has an absolute path"
    if ".." in PurePosixPath(normalised).parts:
        return "has a path that climbs out of the archive's folder ('..')"
    return None


def _ratio_reason(what: str, size: int, compressed: int, limits: Limits) -> str:
    return (f"refused: {what} expands {size / max(compressed, 1):,.0f} times ({_mb(compressed)} to "
            f"{_mb(size)}), beyond the {limits.max_compression_ratio:g}:1 allowed (a zip bomb?)")


def entry_limit(info: zipfile.ZipInfo, limits: Limits) -> int:
    """The most one entry may inflate to: KML is parsed whole in memory, so it has its own cap."""
    if info.filename.lower().endswith(".kml"):
        return min(limits.max_kml_bytes, limits.max_entry_bytes)
    return limits.max_entry_bytes


def extract_members(path: Path, infos: Iterable[zipfile.ZipInfo], folder: Path,
                    limits: Limits = Limits()) -> dict[str, Path]:
    """Inflate the (already checked) entries flat into ``folder``; entry name → file.

    Entries are written under their base name only, so nothing lands outside
    ``folder`` even if a caller forgot to check the names. The bytes really
    inflated are counted as they are written (see the module docstring).
    """
    out: dict[str, Path] = {}
    budget = limits.max_uncompressed_bytes
    try:
        with zipfile.ZipFile(path) as archive:
            for info in infos:
                target = folder / PurePosixPath(info.filename.replace("\\", "/")).name
                with archive.open(info) as src, open(target, "wb") as dst:
                    budget -= _copy_bounded(path, info, src, dst, min(entry_limit(info, limits), budget))
                out[info.filename] = target
    except (zipfile.BadZipFile, OSError, EOFError, zlib_error) as exc:
        raise ImportFileError(path, f"the archive is damaged: {exc}") from None
    return out


def _copy_bounded(path: Path, info: zipfile.ZipInfo, src: BinaryIO, dst: BinaryIO, limit: int) -> int:
    written = 0
    while chunk := src.read(1024 * 1024):
        written += len(chunk)
        if written > limit:
            raise ImportFileError(path, f"refused: the entry {info.filename!r} inflates beyond the {_mb(limit)} "
                                        "allowed (a zip bomb?)")
        dst.write(chunk)
    return written


# ------------------------------------------------------------------------ GeoPackage

_VIRTUAL = re.compile(r"\s*CREATE\s+VIRTUAL\s+TABLE\s.*?\bUSING\s+(\w+)", re.I | re.S)


def check_gpkg(path: Path, limits: Limits) -> None:
    """Refuse a GeoPackage whose header, size or schema is not what a plain one has."""
    check_file_size(path, limits)
    header = sniff.head(path, 100)
    sniff.expect(path, "gpkg", "GeoPackage", header)
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    size = path.stat().st_size
    if page_size * pages > size:
        raise ImportFileError(path, f"refused: its SQLite header declares {pages:,} pages of {page_size:,} bytes, "
                                    f"more than the {_mb(size)} file holds (a damaged or forged GeoPackage)")
    for kind, name, sql in _schema(path):
        reason = _schema_reason(kind, name, sql or "")
        if reason:
            raise ImportFileError(path, f"refused: {reason}; Chacra reads only plain GeoPackage tables")


def _schema(path: Path) -> list[tuple[str, str, str | None]]:
    # immutable=1: no journal, no locks, nothing written next to the user's file.
    uri = f"file:{quote(str(path.absolute()))}?mode=ro&immutable=1"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as db:
            return db.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        raise ImportFileError(path, f"not a readable GeoPackage: {exc}") from None


def _schema_reason(kind: str, name: str, sql: str) -> str | None:
    if kind == "view":
        return f"it holds the SQL view {name[:60]!r}"
    match = _VIRTUAL.match(sql)
    if kind == "table" and match and match.group(1).lower() != "rtree":  # rtree: the spatial index
        return f"it holds the virtual table {name[:60]!r} (module {match.group(1)[:30]})"
    return None


def _mb(size: float) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:,.1f} kB"
    return f"{size / (1024 * 1024):,.1f} MB"
