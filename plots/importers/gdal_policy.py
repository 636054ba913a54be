"""What GDAL may do with a user's file: the one place every vector reader opens it through.

GDAL picks a driver from a file's *content*, not its name, and some drivers read
other files or URLs named inside the file: an OGR VRT saved as ``plots.geojson``
opened ``CSV:/srv/.demo-tokens`` or ``/vsicurl/http://…`` for a cooperative user
(security review, finding 1). pyogrio (0.13) cannot pass GDAL the list of allowed
drivers, and ``GDAL_SKIP`` only acts when drivers are registered, which pyogrio has
done by the time Chacra runs. So three layers, each enough against that attack:

1. the readers check the content matches the format first (``sniff``), so GDAL
   never sees a VRT, a zip or an SQLite file where GeoJSON was sent;
2. ``harden()`` removes, from the GDAL library pyogrio uses, the drivers that open
   other datasets, reach the network or run programs (``REFUSED_DRIVERS``), the
   network file systems (/vsicurl/ …), and answers every HTTP request GDAL would
   make (a GeoJSON ``crs`` link, say) with a refusal. Chacra never reads from the
   network; the exports, the only other pyogrio user, write local files only;
3. ``source()`` hands GDAL only a plain local file path (never /vsi…, a URL or a
   ``DRIVER:`` prefix), forcing the GeoJSON driver where GDAL allows it, and
   ``check_driver`` refuses a file GDAL opened with another driver than expected.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import threading
from pathlib import Path

import pyogrio
from pyogrio.util import vsi_path

from plots.importers.base import ImportFileError

logger = logging.getLogger(__name__)

# Drivers that open datasets, files or URLs named inside the file (VRT and its
# relatives), fetch from the network, or run programs (GPSBabel, ADBC's drivers).
REFUSED_DRIVERS = (
    "OGR_VRT", "VRT", "GTI", "GDALG", "DERIVED", "STACIT", "STACTA", "KMLSUPEROVERLAY", "RPFTOC", "ECRGTOC",
    "GNMFile", "GNMDatabase", "PDF", "MBTiles", "WMS", "WMTS", "WCS", "PLMOSAIC", "EEDA", "EEDAI", "DAAS", "OGCAPI",
    "WFS", "OAPIF", "CSW", "HTTP", "Elasticsearch", "Carto", "AmigoCloud", "PLSCENES", "NGW", "GPSBabel", "ADBC",
)
NETWORK_FILE_SYSTEMS = (
    "/vsicurl/", "/vsicurl_streaming/", "/vsis3/", "/vsis3_streaming/", "/vsigs/", "/vsigs_streaming/", "/vsiaz/",
    "/vsiaz_streaming/", "/vsiadls/", "/vsioss/", "/vsioss_streaming/", "/vsiswift/", "/vsiswift_streaming/",
    "/vsiwebhdfs/", "/vsihdfs/",
)
# Belt and braces should a network file system survive (an older GDAL without
# VSIRemovePluginHandler): /vsicurl/ then opens only this file, which cannot exist.
NETWORK_CONFIG = {"CPL_VSIL_CURL_ALLOWED_FILENAME": "/chacra/network-access-is-disabled",
                  "GDAL_HTTP_MAX_RETRY": "0", "GDAL_HTTP_TIMEOUT": "2"}

_lock = threading.Lock()
_hardened = False
_lib: ctypes.CDLL | None = None
# (url, options, progress, progress arg, write func, write arg, user data) -> CPLHTTPResult*
_HTTP_CALLBACK_TYPE = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                                       ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
CURLE_COULDNT_CONNECT = 7


class _HTTPResult(ctypes.Structure):
    """GDAL's CPLHTTPResult (cpl_http.h); freed by GDAL with CPLHTTPDestroyResult."""

    _fields_ = [("nStatus", ctypes.c_int), ("pszContentType", ctypes.c_void_p), ("pszErrBuf", ctypes.c_void_p),
                ("nDataLen", ctypes.c_int), ("nDataAlloc", ctypes.c_int), ("pabyData", ctypes.c_void_p),
                ("papszHeaders", ctypes.c_void_p), ("nMimePartCount", ctypes.c_int),
                ("pasMimePart", ctypes.c_void_p)]


@_HTTP_CALLBACK_TYPE
def _refuse_http(url, *_args):
    """Answer an HTTP request GDAL would make with a failed result. (A NULL answer would
    mean "not handled" and GDAL would go ahead with the request.) Allocated with GDAL's
    allocator because GDAL frees it."""
    logger.warning("GDAL tried to fetch %s while reading a file; refused (network access is off)",
                   (url or b"").decode("utf-8", "replace")[:200])
    address = _lib.CPLCalloc(1, ctypes.sizeof(_HTTPResult))
    result = _HTTPResult.from_address(address)
    result.nStatus = CURLE_COULDNT_CONNECT
    result.pszErrBuf = _lib.CPLStrdup(b"network access is disabled in Chacra")
    return address


def harden() -> bool:
    """Apply the policy to pyogrio's GDAL once per process; True when it is in force."""
    global _hardened
    with _lock:
        if _hardened:
            return True
        pyogrio.set_gdal_config_options(NETWORK_CONFIG)
        lib = _pyogrio_gdal()
        if lib is None:
            logger.error("cannot find the GDAL library pyogrio uses; only content checks guard the readers")
            return False
        _remove_drivers(lib)
        _remove_network(lib)
        _hardened = True
        return True


def _pyogrio_gdal() -> ctypes.CDLL | None:
    """The libgdal pyogrio linked (a wheel bundles its own): the mapped one in pyogrio's
    folder, else the mapped one whose version is pyogrio's."""
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return None
    paths = sorted({line.split(None, 5)[-1] for line in maps if "libgdal" in line and "/" in line})
    home = str(Path(pyogrio.__file__).parent)
    ordered = [p for p in paths if p.startswith(home)] + [p for p in paths if not p.startswith(home)]
    for path in ordered:
        lib = ctypes.CDLL(path)  # already loaded: dlopen returns the same handle
        lib.GDALVersionInfo.restype = ctypes.c_char_p
        lib.GDALVersionInfo.argtypes = [ctypes.c_char_p]
        if lib.GDALVersionInfo(b"RELEASE_NAME").decode() == pyogrio.__gdal_version_string__:
            return lib
    return None


def _remove_drivers(lib: ctypes.CDLL) -> None:
    lib.GDALGetDriverByName.restype = ctypes.c_void_p
    lib.GDALGetDriverByName.argtypes = [ctypes.c_char_p]
    lib.GDALDeregisterDriver.argtypes = [ctypes.c_void_p]
    for name in REFUSED_DRIVERS:
        driver = lib.GDALGetDriverByName(name.encode())
        if driver:
            lib.GDALDeregisterDriver(driver)


def _remove_network(lib: ctypes.CDLL) -> None:
    global _lib
    _lib = lib
    lib.CPLCalloc.restype = ctypes.c_void_p
    lib.CPLCalloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
    lib.CPLStrdup.restype = ctypes.c_void_p
    lib.CPLStrdup.argtypes = [ctypes.c_char_p]
    if hasattr(lib, "VSIRemovePluginHandler"):  # GDAL >= 3.9
        lib.VSIRemovePluginHandler.argtypes = [ctypes.c_char_p]
        for prefix in NETWORK_FILE_SYSTEMS:
            lib.VSIRemovePluginHandler(prefix.encode())
    lib.CPLHTTPSetFetchCallback.argtypes = [_HTTP_CALLBACK_TYPE, ctypes.c_void_p]
    lib.CPLHTTPSetFetchCallback(_refuse_http, None)


# ------------------------------------------------------------------------ sources

# "GeoJSON:", "CSV:", "GPKG:" … : a driver prefix, or a URL scheme.
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9 _+.-]*:")
# The drivers allowed to open each kind of file (KML has two in GDAL).
DRIVERS = {"GeoJSON": ("GeoJSON",), "KML": ("LIBKML", "KML"), "GeoPackage": ("GPKG",),
           "Shapefile": ("ESRI Shapefile",)}
# Where GDAL accepts "<driver>:<path>", the prefix makes that driver the only one tried.
_FORCING_PREFIX = {"GeoJSON": "GeoJSON:"}


def source(path: Path, kind: str, opened: str | Path | None = None) -> str:
    """What pyogrio is given to open ``opened`` (default ``path``, the user's file, which
    errors name) as ``kind`` (a key of DRIVERS): a local file path, nothing else."""
    harden()
    raw = str(opened or path)
    # Made absolute, "GeoJSON:x" or "http://h/x" become harmless local names; a path
    # given as /vsi… stays one and is refused.
    text = os.path.abspath(raw)
    plain = (not _PREFIX.match(raw) or Path(raw).exists()) and not text.startswith("/vsi") \
        and "!" not in text and vsi_path(text) == text
    if not plain:
        raise ImportFileError(path, "refused: GDAL reads only a plain local file here, not a /vsi… path, "
                                    "a URL or a DRIVER: prefix")
    if not Path(text).is_file():
        raise ImportFileError(path, "cannot open the file: it is not a regular file")
    return _FORCING_PREFIX.get(kind, "") + text


def check_driver(path: Path, kind: str, driver: str | None) -> None:
    """Refuse a file GDAL opened with another driver than ``kind``'s."""
    if driver not in DRIVERS[kind]:
        raise ImportFileError(path, f"refused: GDAL recognised it as {driver or 'an unknown format'}, not "
                                    f"{kind}; Chacra reads {kind} only as {kind}")
