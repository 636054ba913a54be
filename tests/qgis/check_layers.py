"""QGIS reads Chacra the way a user adds its layers by hand (tests/test_qgis.py runs
this with /usr/bin/python3; see qgis_session.py for the authentication set-up).

    python3 check_layers.py job.json results.json

(a) every OGC collection as an OAPIF layer: validity, feature count, CRS, seconds;
(b) every vector tile layer (xyz, authcfg): validity, and pixels drawn over an
    extent where the layer has features;
(c) every downloaded export file opened with the OGR provider, each sublayer
    (GeoPackage layers, the members of a zip through /vsizip/): count and CRS;
(d) PNGs over San Martín with the plots and protected areas (from the tiles, and
    from OAPIF), sampled at points inside the target protected area, and a close-up
    of plots from the tiles.
"""

from __future__ import annotations

import os
import sys
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qgis_session  # noqa: E402


def oapif_uri(job, collection):
    return f"url='{job['base']}/ogc' typename='{collection}' authcfg={job['authcfg']}"


def tile_uri(job, layer):
    return (f"type=xyz&url={job['base']}/tiles/{layer['id']}/{{z}}/{{x}}/{{y}}.mvt"
            f"&zmin={layer['minzoom']}&zmax={layer['maxzoom']}&authcfg={job['authcfg']}")


def read_collections(job):
    from qgis.core import QgsVectorLayer

    out = {}
    for collection in job["collections"]:
        began = time.monotonic()
        layer = QgsVectorLayer(oapif_uri(job, collection), collection, "OAPIF")
        valid = layer.isValid()
        count = layer.featureCount() if valid else None
        opened = time.monotonic() - began
        # Every feature through the provider (all pages), as the attribute table does.
        iterated = sum(1 for _ in layer.getFeatures()) if valid else None
        out[collection] = {
            "valid": valid, "count": count, "iterated": iterated, "crs": layer.crs().authid(),
            "geometry": layer.wkbType(), "fields": [f.name() for f in layer.fields()],
            "seconds_open_and_count": round(opened, 3), "seconds": round(time.monotonic() - began, 3),
            "error": None if valid else layer.dataProvider().error().message() if layer.dataProvider() else
            "no provider"}
    return out


def simple_tile_renderer():
    """One style per geometry type for every source layer (layer name ""): plain, opaque."""
    from qgis.core import (QgsFillSymbol, QgsLineSymbol, QgsMarkerSymbol, QgsVectorTileBasicRenderer,
                           QgsVectorTileBasicRendererStyle, QgsWkbTypes)

    styles = []
    for name, kind, symbol in (
            ("polygons", QgsWkbTypes.PolygonGeometry, QgsFillSymbol.createSimple(
                {"color": "60,60,200,255", "outline_style": "no"})),
            ("lines", QgsWkbTypes.LineGeometry, QgsLineSymbol.createSimple({"line_color": "60,60,200,255"})),
            ("points", QgsWkbTypes.PointGeometry, QgsMarkerSymbol.createSimple(
                {"color": "60,60,200,255", "size": "3", "outline_style": "no"}))):
        style = QgsVectorTileBasicRendererStyle(name, "", kind)
        style.setSymbol(symbol)
        styles.append(style)
    renderer = QgsVectorTileBasicRenderer()
    renderer.setStyles(styles)
    return renderer


def read_tiles(job):
    from qgis.core import QgsVectorTileLayer

    out = {}
    for spec in job["tiles"]:
        layer = QgsVectorTileLayer(tile_uri(job, spec), spec["id"])
        entry = {"valid": layer.isValid(), "source_min_zoom": layer.sourceMinZoom(),
                 "source_max_zoom": layer.sourceMaxZoom()}
        if layer.isValid():
            layer.setRenderer(simple_tile_renderer())
            png = os.path.join(job["out_dir"], f"tiles-{spec['id']}.png")
            image, _settings, seconds, errors = qgis_session.render([layer], spec["lonlat_box"], (600, 450), png)
            entry.update(painted_pixels=qgis_session.painted(image), seconds=round(seconds, 3), png=png,
                         render_errors=errors)
        out[spec["id"]] = entry
    return out


def sublayer_sources(path):
    """The OGR sources in a downloaded file: a zip's members through /vsizip/, a
    GeoPackage's (or KML's) layers by name, else the file itself."""
    from qgis.core import QgsDataProvider, QgsVectorLayer

    if zipfile.is_zipfile(path):
        members = [n for n in zipfile.ZipFile(path).namelist() if n.lower().endswith((".shp", ".csv", ".kml",
                                                                                          ".geojson", ".gpkg"))]
        return [(os.path.splitext(n)[0], f"/vsizip/{path}/{n}") for n in members]
    layer = QgsVectorLayer(path, "probe", "ogr")
    subs = layer.dataProvider().subLayers() if layer.isValid() else []
    if len(subs) > 1:
        # "index!!::!!name!!::!!count!!::!!geometry type!!::!!geometry column"
        names = [s.split(QgsDataProvider.sublayerSeparator())[1] for s in subs]
        return [(name, f"{path}|layername={name}") for name in names]
    return [(os.path.splitext(os.path.basename(path))[0], path)]


def read_exports(job):
    from qgis.core import QgsVectorLayer

    out = {}
    for export in job["exports"]:
        key = f"{export['layer']}.{export['format']}"
        entry = {"path": export["path"], "sublayers": {}}
        try:
            for name, source in sublayer_sources(export["path"]):
                layer = QgsVectorLayer(source, name, "ogr")
                entry["sublayers"][name] = {
                    "source": source, "valid": layer.isValid(),
                    "count": layer.featureCount() if layer.isValid() else None,
                    "crs": layer.crs().authid(), "geometry": layer.wkbType()}
        except Exception as exc:  # reported per file
            entry["error"] = repr(exc)
        out[key] = entry
    return out


def _fill(rgb, alpha=255):
    from qgis.core import QgsFillSymbol

    return QgsFillSymbol.createSimple({"color": f"{rgb[0]},{rgb[1]},{rgb[2]},{alpha}", "outline_style": "no"})


def overview(job):
    """San Martín with plots and protected areas, from the tiles and from OAPIF."""
    from qgis.core import (QgsMarkerSymbol, QgsSingleSymbolRenderer, QgsVectorLayer, QgsVectorTileBasicRenderer,
                           QgsVectorTileBasicRendererStyle, QgsVectorTileLayer, QgsWkbTypes)

    spec = job["overview"]
    area_rgb = spec["area_fill"]
    plot_rgb = spec["plot_fill"]
    tiles = {t["id"]: t for t in job["tiles"]}
    out = {}

    # From the vector tiles.
    areas = QgsVectorTileLayer(tile_uri(job, tiles["protected-areas"]), "protected-areas")
    style = QgsVectorTileBasicRendererStyle("areas", "protected-areas", QgsWkbTypes.PolygonGeometry)
    style.setSymbol(_fill(area_rgb))
    renderer = QgsVectorTileBasicRenderer()
    renderer.setStyles([style])
    areas.setRenderer(renderer)
    layers = []
    for plot_layer in ("plot-points", "plots"):
        if plot_layer in tiles:
            plots = QgsVectorTileLayer(tile_uri(job, tiles[plot_layer]), plot_layer)
            styles = []
            for kind in (QgsWkbTypes.PolygonGeometry, QgsWkbTypes.PointGeometry):
                s = QgsVectorTileBasicRendererStyle(f"{plot_layer}-{kind}", plot_layer, kind)
                s.setSymbol(_fill(plot_rgb) if kind == QgsWkbTypes.PolygonGeometry else QgsMarkerSymbol.createSimple(
                    {"color": ",".join(map(str, plot_rgb)), "size": "1.5", "outline_style": "no"}))
                styles.append(s)
            r = QgsVectorTileBasicRenderer()
            r.setStyles(styles)
            plots.setRenderer(r)
            layers.append(plots)
    png = os.path.join(job["out_dir"], "san-martin-tiles.png")
    image, settings, seconds, errors = qgis_session.render(layers + [areas], spec["lonlat_box"], spec["size"], png)
    out["tiles"] = {"png": png, "seconds": round(seconds, 3), "render_errors": errors,
                    "samples": qgis_session.sample(image, settings, spec["area_points"])}

    # From OGC API Features.
    oapif_layers = []
    for collection in ("plot-points", "plots", "protected-areas"):
        if collection not in job["collections"]:
            continue
        layer = QgsVectorLayer(oapif_uri(job, collection), collection, "OAPIF")
        if not layer.isValid():
            continue
        if collection == "protected-areas":
            layer.setRenderer(QgsSingleSymbolRenderer(_fill(area_rgb)))
        elif collection == "plots":
            layer.setRenderer(QgsSingleSymbolRenderer(_fill(plot_rgb)))
        oapif_layers.append(layer)
    png = os.path.join(job["out_dir"], "san-martin-oapif.png")
    image, settings, seconds, errors = qgis_session.render(oapif_layers, spec["lonlat_box"], spec["size"], png)
    out["oapif"] = {"png": png, "seconds": round(seconds, 3), "render_errors": errors,
                    "layers": [lyr.name() for lyr in oapif_layers],
                    "samples": qgis_session.sample(image, settings, spec["area_points"])}

    # A close-up of plots from the tiles, as the tile layer comes (plots only).
    close = job["closeup"]
    plots = QgsVectorTileLayer(tile_uri(job, tiles["plots"]), "plots")
    style = QgsVectorTileBasicRendererStyle("plots", "plots", QgsWkbTypes.PolygonGeometry)
    style.setSymbol(_fill(plot_rgb))
    r = QgsVectorTileBasicRenderer()
    r.setStyles([style])
    plots.setRenderer(r)
    png = os.path.join(job["out_dir"], "plots-closeup-tiles.png")
    image, settings, seconds, errors = qgis_session.render([plots], close["lonlat_box"], close["size"], png)
    out["closeup"] = {"png": png, "seconds": round(seconds, 3), "render_errors": errors,
                      "samples": qgis_session.sample(image, settings, close["plot_points"])}
    return out


def main(job):
    qgis_session.start(job)
    results = {"qgis_version": qgis_session.version()}
    results["oapif"] = read_collections(job)
    results["tiles"] = read_tiles(job)
    results["exports"] = read_exports(job)
    results["renders"] = overview(job)
    return results


if __name__ == "__main__":
    qgis_session.run(main)
