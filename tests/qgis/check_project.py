"""QGIS opens the project Chacra generates (GET /api/v1/qgis-project) the way a user
does: the authentication configuration chacra1 exists, the .qgz is opened, the
layers come from the live server. tests/test_qgis.py runs this with /usr/bin/python3.

    python3 check_project.py job.json results.json

Reports every layer (validity, provider, source, renderer, OAPIF feature count),
the layer tree, the project's start extent, and renders the shown layers at the
project's start extent and at a close-up of plots, sampled at plot interiors.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qgis_session  # noqa: E402


def _lonlat(rect, crs):
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProject

    transform = QgsCoordinateTransform(crs, QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    box = transform.transformBoundingBox(rect)
    return [box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()]


def main(job):
    from qgis.core import QgsMapLayerType, QgsProject

    qgis_session.start(job)
    project = QgsProject.instance()
    began = time.monotonic()
    read = project.read(job["project"])
    results = {"qgis_version": qgis_session.version(), "read": read, "error": project.error(),
               "title": project.title(), "crs": project.crs().authid(),
               "seconds_to_open": round(time.monotonic() - began, 3)}
    layers = {}
    for layer in project.mapLayers().values():
        entry = {"name": layer.name(), "valid": layer.isValid(), "provider": layer.providerType(),
                 "source": layer.source(), "crs": layer.crs().authid()}
        if layer.type() == QgsMapLayerType.VectorLayer:
            started = time.monotonic()
            entry.update(kind="vector", renderer=layer.renderer().type() if layer.renderer() else None,
                         count=layer.featureCount() if layer.isValid() else None,
                         seconds=round(time.monotonic() - started, 3))
        elif layer.type() == QgsMapLayerType.VectorTileLayer:
            renderer = layer.renderer()
            entry.update(kind="vector-tile", renderer=renderer.type() if renderer else None,
                         styles=[s.styleName() for s in renderer.styles()] if renderer else [])
        else:
            entry["kind"] = str(layer.type())
        layers[layer.id()] = entry
    results["layers"] = layers
    root = project.layerTreeRoot()
    results["tree"] = [{"group": group.name(), "checked": group.isVisible(),
                        "layers": [{"id": node.layerId(), "visible": node.isVisible()} for node in group.findLayers()]}
                       for group in root.findGroups()]
    shown = [node.layer() for node in root.findLayers() if node.isVisible() and node.layer() is not None]
    results["shown"] = [layer.id() for layer in shown]

    colour = project.backgroundColor()
    background = (colour.red(), colour.green(), colour.blue())
    results["background"] = list(background)
    view = project.viewSettings().defaultViewExtent()
    results["start_extent"] = _lonlat(view, view.crs()) if not view.isEmpty() else None
    renders = {}
    if results["start_extent"]:
        png = os.path.join(job["out_dir"], "project.png")
        image, _settings, seconds, errors = qgis_session.render(shown, results["start_extent"], (1200, 900), png,
                                                                background=background)
        renders["start"] = {"png": png, "seconds": round(seconds, 3), "render_errors": errors,
                            "painted_pixels": qgis_session.painted(image, background)}
    close = job["closeup"]
    png = os.path.join(job["out_dir"], "project-closeup.png")
    image, settings, seconds, errors = qgis_session.render(shown, close["lonlat_box"], close["size"], png,
                                                           background=background)
    renders["closeup"] = {"png": png, "seconds": round(seconds, 3), "render_errors": errors,
                          "samples": qgis_session.sample(image, settings, close["plot_points"])}
    # The same without the plot layers: what each plot's fill is drawn over.
    beneath = [layer for layer in shown if layer.id() not in ("chacra_tiles_plots", "chacra_tiles_plot_points")]
    png = os.path.join(job["out_dir"], "project-closeup-beneath-plots.png")
    image, settings, _seconds, _errors = qgis_session.render(beneath, close["lonlat_box"], close["size"], png,
                                                             background=background)
    renders["closeup"].update(under_png=png, under=qgis_session.sample(image, settings, close["plot_points"]))
    results["renders"] = renders

    # Without the configuration the file names, the data layers cannot sign in: the
    # .qgz carries no credential of its own.
    from qgis.core import QgsApplication

    QgsApplication.authManager().removeAuthenticationConfig(job["authcfg"])
    project.clear()
    project.read(job["project"])
    results["without_authcfg"] = {layer.id(): layer.isValid() for layer in project.mapLayers().values()
                                  if layer.providerType() == "OAPIF"}
    return results


if __name__ == "__main__":
    qgis_session.run(main)
