"""Headless QGIS for the scripts beside this file (run by /usr/bin/python3, never the
venv's interpreter: PyQGIS is Debian's python3-qgis, built for the system Python).

What a user does once in Settings ▸ Options ▸ Authentication, done here in a
throw-away authentication database: a master password, then a configuration of
method Basic with a fixed Id, the user name, and the API token as the password.
Every layer then names that Id (``authcfg=chacra1``) and QGIS signs its requests
with ``Authorization: Basic …``.

A script reads its job (JSON) from argv[1] and writes its results (JSON) to
argv[2]; QGIS's own chatter goes to stdout/stderr, which the test shows when a
script fails.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_APP = None


def start(job: dict):
    """QgsApplication with a fresh authentication database in job["auth_dir"] and the
    Basic configuration job["authcfg"] for job["username"] / job["token"]."""
    auth_dir = job.get("auth_dir") or tempfile.mkdtemp(prefix="qgis-auth-")
    os.makedirs(auth_dir, exist_ok=True)
    # Before QgsApplication exists: QGIS opens qgis-auth.db there instead of the profile's.
    os.environ["QGIS_AUTH_DB_DIR_PATH"] = auth_dir
    from qgis.core import QgsApplication, QgsAuthMethodConfig

    global _APP
    app = QgsApplication.instance()
    if app is None:
        app = QgsApplication([], False)
        app.initQgis()
    _APP = app  # held for the process's life: a collected QgsApplication takes QGIS down with it
    manager = QgsApplication.authManager()
    if not manager.masterPasswordIsSet():
        # True: store it as the database's master password (a new database takes the first one given).
        if not manager.setMasterPassword("chacra-throwaway-master", True):
            raise RuntimeError(f"could not set the master password of the auth database in {auth_dir}")
    config = QgsAuthMethodConfig("Basic")
    config.setId(job["authcfg"])
    config.setName("Chacra")
    config.setUri(job["base"])
    config.setConfig("username", job["username"])
    config.setConfig("password", job["token"])
    if job["authcfg"] in manager.configIds():
        manager.removeAuthenticationConfig(job["authcfg"])
    stored = manager.storeAuthenticationConfig(config)
    stored = stored[0] if isinstance(stored, tuple) else stored
    if not stored or job["authcfg"] not in manager.configIds():
        raise RuntimeError(f"could not store the Basic authentication configuration {job['authcfg']}")
    return app


def version() -> str:
    from qgis.core import Qgis

    return Qgis.QGIS_VERSION


def mercator_extent(lonlat_box):
    """A lon/lat box [w, s, e, n] as a QgsRectangle in EPSG:3857."""
    from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProject, QgsRectangle)

    transform = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                                       QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance())
    return transform.transformBoundingBox(QgsRectangle(*lonlat_box))


def render(layers, lonlat_box, size, png: str, background=(238, 242, 232)):
    """Render ``layers`` (top first) over ``lonlat_box`` into ``png``; returns
    (QImage, QgsMapSettings, seconds)."""
    from qgis.core import (QgsCoordinateReferenceSystem, QgsMapRendererSequentialJob, QgsMapSettings)
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    settings.setOutputSize(QSize(*size))
    settings.setBackgroundColor(QColor(*background))
    settings.setExtent(mercator_extent(lonlat_box))
    began = time.monotonic()
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    image.save(png, "PNG")
    errors = [f"{e.layerID}: {e.message}" for e in job.errors()]
    return image, settings, time.monotonic() - began, errors


def sample(image, settings, points):
    """The colour of ``image`` at each lon/lat point: [{lonlat, pixel, rgb}] (pixel None outside)."""
    from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject)

    transform = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                                       QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance())
    out = []
    for lon, lat in points:
        pixel = settings.mapToPixel().transform(transform.transform(QgsPointXY(lon, lat)))
        x, y = int(pixel.x()), int(pixel.y())
        if 0 <= x < image.width() and 0 <= y < image.height():
            colour = image.pixelColor(x, y)
            out.append({"lonlat": [lon, lat], "pixel": [x, y], "rgb": [colour.red(), colour.green(), colour.blue()]})
        else:
            out.append({"lonlat": [lon, lat], "pixel": None, "rgb": None})
    return out


def painted(image, background=(238, 242, 232)) -> int:
    """Pixels that are not the background colour."""
    from qgis.PyQt.QtGui import QColor

    bg = QColor(*background).rgb()
    step = 2  # every other pixel each way: enough to tell "drawn" from "empty", four times cheaper
    return sum(1 for y in range(0, image.height(), step) for x in range(0, image.width(), step)
               if image.pixel(x, y) != bg) * step * step


def run(main) -> None:
    """Run ``main(job) -> results`` and write the results (or the error) as JSON."""
    with open(sys.argv[1], encoding="utf-8") as handle:
        job = json.load(handle)
    try:
        results = main(job)
    except Exception:  # reported to the test, which shows it
        results = {"fatal": traceback.format_exc()}
    with open(sys.argv[2], "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    # QgsApplication.exitQgis() can crash on exit in 3.22 with network layers still
    # referenced; the results are written, so leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
