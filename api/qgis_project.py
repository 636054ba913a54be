"""Chacra as a QGIS project: a ``.qgz`` holding the layers a role may read.

    GET /api/v1/qgis-project                      (api.views.qgis)
    chacra qgis-project --out chacra.qgz [--base-url https://chacra.example.org] [--user NAME]

The project holds two groups:

- **Chacra map (vector tiles)**, shown: the tile layers styled as the web map
  (chacra/static/chacra/map.js) — plots filled by their latest protected-area
  verdict and outlined by the deforestation one (the tiles carry the verdicts),
  plots surveyed as points as circles of the same colours, protected areas
  hatched, districts outlined, the concentration grid by class (shown only to
  roles that see no plot, as on the web map);
- **Chacra data (OGC API Features)**, hidden until ticked: every OGC collection
  the role may read (plots, plot-points, protected-areas, districts, nurseries,
  concentration), for the attribute table, selections and processing.

Every layer names the QGIS authentication configuration ``chacra1`` (AUTHCFG): the
user creates it once in *Settings ▸ Options ▸ Authentication* (method Basic,
their user name, their API token as the password) and, after clicking the
padlock beside its Id, types ``chacra1`` as the Id. No credential is in the file.

No QGIS on the server: the ``.qgs`` is written here from the elements QGIS 3.22
writes itself (tests/test_qgis.py opens the result with PyQGIS against a live
server, and renders it). QGIS reads projects of older versions, so 3.28 and
later open it too.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement, tostring

from django.contrib.gis.db.models import Extent

from api import layers, ogc, tiles
from core import policy

AUTHCFG = "chacra1"  # the authentication configuration id every layer names (7 letters or digits)
QGIS_VERSION = "3.22.0-Białowieża"  # the oldest release the project is written for
FILENAME = "chacra.qgz"
CONTENT_TYPE = "application/zip"
MAP_GROUP = "Chacra map (vector tiles)"
DATA_GROUP = "Chacra data (OGC API Features)"
# Where the view starts when the role sees no plot and no grid cell: Peru.
PERU = (-81.4, -18.4, -68.6, -0.0)

# The web map's colours (chacra/static/chacra/map.js), as QGIS writes colours.
BACKGROUND = (238, 242, 232)  # #eef2e8
VERDICT = {"fail": "179,38,30", "buffer_zone": "242,153,0", "pass": "46,125,50"}  # #b3261e #f29900 #2e7d32
UNKNOWN = "158,158,158"  # #9e9e9e: not checked, insufficient data …
PLOT_OPACITY = 191  # fill-opacity 0.75
# Protected areas and grid cells are filled opaque and the whole layer made
# translucent (the web map's fill-opacity 0.7 and 0.75): the hatching fades with
# the fill, and where areas overlap (a regional area over a national park) the
# colour does not darken.
LAYER_OPACITY = {"protected-areas": 0.7, "concentration": 0.75}
DEFORESTATION_FAIL, PLOT_LINE = "106,27,154", "29,43,31"  # #6a1b9a, #1d2b1f
PROTECTED_FILL, BUFFER_FILL, PROTECTED_LINE, BUFFER_LINE = "200,230,201", "255,243,196", "46,125,50", "242,153,0"
DISTRICT_LINE = "85,85,85"  # #555
CLASS_COLOURS = ("247,252,185", "173,221,142", "120,198,121", "49,163,84", "0,104,55")  # classes 0–4
NO_CLASS = "221,221,221"
NURSERY = "141,110,99"

# Each CRS as QGIS 3.22 writes it. QGIS reads the authority id when ``srsid`` names
# one of its own CRSs, the WKT otherwise: both are given.
_WGS84_ENSEMBLE = ('ENSEMBLE["World Geodetic System 1984 ensemble",MEMBER["World Geodetic System 1984 (T'
                   'ransit)"],MEMBER["World Geodetic System 1984 (G730)"],MEMBER["World Geodetic System '
                   '1984 (G873)"],MEMBER["World Geodetic System 1984 (G1150)"],MEMBER["World Geodetic Sy'
                   'stem 1984 (G1674)"],MEMBER["World Geodetic System 1984 (G1762)"],MEMBER["World Geode'
                   'tic System 1984 (G2139)"],ELLIPSOID["WGS 84",6378137,298.257223563,LENGTHUNIT["metre'
                   '",1]],ENSEMBLEACCURACY[2.0]]')
CRS = {
    "EPSG:4326": {
        "wkt": ('GEOGCRS["WGS 84",'
                + _WGS84_ENSEMBLE
                + ',PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.0174532925199433]],CS[ellipsoidal,2],AXIS'
                  '["geodetic latitude (Lat)",north,ORDER[1],ANGLEUNIT["degree",0.0174532925199433]],AX'
                  'IS["geodetic longitude (Lon)",east,ORDER[2],ANGLEUNIT["degree",0.0174532925199433]],'
                  'USAGE[SCOPE["Horizontal component of 3D system."],AREA["World."],BBOX[-90,-180,90,18'
                  '0]],ID["EPSG",4326]]'),
        "proj4": "+proj=longlat +datum=WGS84 +no_defs",
        "srsid": "3452",
        "srid": "4326",
        "authid": "EPSG:4326",
        "description": "WGS 84",
        "projectionacronym": "longlat",
        "ellipsoidacronym": "EPSG:7030",
        "geographicflag": "true",
    },
    "EPSG:3857": {
        "wkt": ('PROJCRS["WGS 84 / Pseudo-Mercator",BASEGEOGCRS["WGS 84",'
                + _WGS84_ENSEMBLE
                + ',PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.0174532925199433]],ID["EPSG",4326]],CONVE'
                  'RSION["Popular Visualisation Pseudo-Mercator",METHOD["Popular Visualisation Pseudo M'
                  'ercator",ID["EPSG",1024]],PARAMETER["Latitude of natural origin",0,ANGLEUNIT["degree'
                  '",0.0174532925199433],ID["EPSG",8801]],PARAMETER["Longitude of natural origin",0,ANG'
                  'LEUNIT["degree",0.0174532925199433],ID["EPSG",8802]],PARAMETER["False easting",0,LEN'
                  'GTHUNIT["metre",1],ID["EPSG",8806]],PARAMETER["False northing",0,LENGTHUNIT["metre",'
                  '1],ID["EPSG",8807]]],CS[Cartesian,2],AXIS["easting (X)",east,ORDER[1],LENGTHUNIT["me'
                  'tre",1]],AXIS["northing (Y)",north,ORDER[2],LENGTHUNIT["metre",1]],USAGE[SCOPE["Web '
                  'mapping and visualisation."],AREA["World between 85.06°S and 85.06°N."],BBOX[-85.06,'
                  '-180,85.06,180]],ID["EPSG",3857]]'),
        "proj4": "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m "
                 "+nadgrids=@null +wktext +no_defs",
        "srsid": "3857",
        "srid": "3857",
        "authid": "EPSG:3857",
        "description": "WGS 84 / Pseudo-Mercator",
        "projectionacronym": "merc",
        "ellipsoidacronym": "EPSG:7030",
        "geographicflag": "false",
    },
}

# What each OGC collection holds, for the style and for QGIS's "bad layer" handling
# (a layer whose server is out of reach keeps its type and style).
WKB_TYPES = {"plots": "MultiPolygon", "plot-points": "Point", "protected-areas": "MultiPolygon",
             "districts": "MultiPolygon", "nurseries": "Point", "concentration": "Polygon"}
# Top to bottom in each group (the web map draws in the reverse order).
ORDER = ("plot-points", "plots", "nurseries", "districts", "concentration", "protected-areas")


# --------------------------------------------------------------------------- symbols

def _option_map(parent: Element, props: dict[str, str]) -> None:
    """A symbol layer's properties, in both forms QGIS 3.22 writes (the ``Option``
    map that 3.22 and later read, and the ``prop`` list older readers take)."""
    options = SubElement(parent, "Option", type="Map")
    for key, value in props.items():
        SubElement(options, "Option", type="QString", name=key, value=value)
    for key, value in props.items():
        SubElement(parent, "prop", k=key, v=value)


def _symbol_layer(cls: str, props: dict[str, str], sub: Element | None = None) -> Element:
    layer = Element("layer", {"class": cls, "enabled": "1", "locked": "0", "pass": "0"})
    _option_map(layer, props)
    if sub is not None:
        layer.append(sub)
    return layer


def _symbol(kind: str, *symbol_layers: Element, name: str = "0") -> Element:
    symbol = Element("symbol", type=kind, name=name, alpha="1", clip_to_extent="1", force_rhr="0")
    symbol.extend(symbol_layers)
    return symbol


def _fill(colour: str | None, outline: str | None = None, width: float = 0.26, dash: bool = False) -> Element:
    """A simple fill: ``colour`` "r,g,b,a" (None: no fill), ``outline`` "r,g,b" (None: no outline)."""
    return _symbol_layer("SimpleFill", {
        "color": colour or "0,0,0,0", "style": "solid" if colour else "no",
        "outline_color": f"{outline},255" if outline else "0,0,0,0",
        "outline_style": ("dash" if dash else "solid") if outline else "no",
        "outline_width": f"{width:g}", "outline_width_unit": "MM", "joinstyle": "bevel"})


def _hatch(colour: str, angle: int) -> Element:
    line = _symbol("line", _symbol_layer("SimpleLine", {
        "line_color": f"{colour},255", "line_style": "solid", "line_width": "0.3", "line_width_unit": "MM",
        "capstyle": "square", "joinstyle": "bevel"}), name="@0@1")
    return _symbol_layer("LinePatternFill", {
        "angle": str(angle), "distance": "2", "distance_unit": "MM", "color": f"{colour},255",
        "line_width": "0.3", "line_width_unit": "MM"}, sub=line)


def _marker(colour: str, shape: str = "circle", size: float = 2.1) -> Element:
    # circle-radius 4 px on the web map: 8 px across, 2.1 mm at 96 dpi.
    return _symbol_layer("SimpleMarker", {
        "name": shape, "color": f"{colour},255", "size": f"{size:g}", "size_unit": "MM",
        "outline_color": "35,35,35,255", "outline_style": "solid", "outline_width": "0.26", "outline_width_unit": "MM"})


def plot_fill(verdict: str | None) -> str:
    """The fill colour of a plot with this protected-area verdict, "r,g,b,a"."""
    return f"{VERDICT.get(verdict or '', UNKNOWN)},{PLOT_OPACITY}"


def _protected_symbol(buffer_zone: bool = False) -> Element:
    if buffer_zone:
        return _symbol("fill", _fill(f"{BUFFER_FILL},255", BUFFER_LINE), _hatch(BUFFER_LINE, -45))
    return _symbol("fill", _fill(f"{PROTECTED_FILL},255", PROTECTED_LINE), _hatch(PROTECTED_LINE, 45))


def _district_symbol() -> Element:
    return _symbol("fill", _fill(None, DISTRICT_LINE, width=0.3, dash=True))


def _class_symbol(index: int | None, name: str = "0") -> Element:
    colour = CLASS_COLOURS[index] if index is not None else NO_CLASS
    return _symbol("fill", _fill(f"{colour},255", DISTRICT_LINE, width=0.1), name=name)


# --------------------------------------------------------------------------- vector-tile styles

POLYGON, POINT = "2", "0"  # QgsWkbTypes::GeometryType, as the vector-tile renderer writes it
OTHER_VERDICT = "coalesce(\"protected\", '') NOT IN ('fail', 'buffer_zone', 'pass')"


def _verdict_filters():
    """(verdict or None, label, filter expression) for each fill colour of a plot."""
    for verdict in VERDICT:
        yield verdict, verdict, f"\"protected\" = '{verdict}'"
    yield None, "not checked", OTHER_VERDICT


@dataclass(frozen=True)
class TileStyle:
    name: str
    geometry: str
    expression: str
    symbol: Element


def _plot_tile_styles() -> list[TileStyle]:
    """Plots as the web map draws them: filled by the protected-area verdict, outlined
    by the deforestation one (purple and thick when it failed); points as circles."""
    styles = [TileStyle(f"plot {label}", POLYGON, expression, _symbol("fill", _fill(plot_fill(verdict))))
              for verdict, label, expression in _verdict_filters()]
    styles += [
        TileStyle("deforestation fail", POLYGON, "\"deforestation\" = 'fail'",
                  _symbol("fill", _fill(None, DEFORESTATION_FAIL, width=0.8))),
        TileStyle("outline", POLYGON, "coalesce(\"deforestation\", '') <> 'fail'",
                  _symbol("fill", _fill(None, PLOT_LINE, width=0.16))),
    ]
    # QGIS 3.22 draws a marker style at the centroid of polygons too: points only, by filter.
    styles += [TileStyle(f"point {label}", POINT, f"geometry_type($geometry) = 'Point' AND ({expression})",
                         _symbol("marker", _marker(VERDICT.get(verdict, UNKNOWN))))
               for verdict, label, expression in _verdict_filters()]
    return styles


def _tile_styles(layer_id: str) -> list[TileStyle]:
    if layer_id in ("plots", "plot-points"):
        return _plot_tile_styles()
    if layer_id == "protected-areas":
        return [TileStyle("protected area", POLYGON, "coalesce(\"category\", '') <> 'buffer_zone'",
                          _protected_symbol()),
                TileStyle("buffer zone", POLYGON, "\"category\" = 'buffer_zone'", _protected_symbol(True))]
    if layer_id == "districts":
        return [TileStyle("district", POLYGON, "", _district_symbol())]
    if layer_id == "concentration":
        return [TileStyle(f"class {i}", POLYGON, f"\"class\" = {i}", _class_symbol(i)) for i in range(5)]
    return []


def _tile_renderer(layer_id: str) -> Element:
    renderer = Element("renderer", type="basic")
    styles = SubElement(renderer, "styles")
    for style in _tile_styles(layer_id):
        node = SubElement(styles, "style", {"name": style.name, "layer": layer_id, "geometry": style.geometry,
                                            "enabled": "1", "expression": style.expression,
                                            "min-zoom": "-1", "max-zoom": "-1"})
        SubElement(node, "symbols").append(style.symbol)
    return renderer


# --------------------------------------------------------------------------- feature-layer styles

def _single(symbol: Element) -> Element:
    renderer = Element("renderer-v2", type="singleSymbol", symbollevels="0", forceraster="0", enableorderby="0")
    SubElement(renderer, "symbols").append(symbol)
    SubElement(renderer, "rotation")
    SubElement(renderer, "sizescale")
    return renderer


def _feature_renderer(collection_id: str) -> Element | None:
    if collection_id == "plots":
        # OGC features carry no verdict (the tiles do): one colour, the outline of the map.
        return _single(_symbol("fill", _fill(f"{UNKNOWN},140", PLOT_LINE, width=0.2)))
    if collection_id == "plot-points":
        return _single(_symbol("marker", _marker(UNKNOWN)))
    if collection_id == "nurseries":
        return _single(_symbol("marker", _marker(NURSERY, shape="square", size=2.6)))
    if collection_id == "protected-areas":
        return _single(_protected_symbol())
    if collection_id == "districts":
        return _single(_district_symbol())
    if collection_id == "concentration":
        renderer = Element("renderer-v2", type="categorizedSymbol", attr="class", symbollevels="0",
                           forceraster="0", enableorderby="0")
        categories, symbols = SubElement(renderer, "categories"), SubElement(renderer, "symbols")
        for i in range(5):
            SubElement(categories, "category", value=str(i), symbol=str(i), label=f"class {i}", render="true")
            symbols.append(_class_symbol(i, name=str(i)))
        SubElement(categories, "category", value="", symbol="5", label="no class", render="true")
        symbols.append(_class_symbol(None, name="5"))
        SubElement(renderer, "rotation")
        SubElement(renderer, "sizescale")
        return renderer
    return None


# --------------------------------------------------------------------------- the layers

@dataclass(frozen=True)
class ProjectLayer:
    id: str  # the QGIS layer id
    name: str
    kind: str  # "vector-tile" or "vector"
    provider: str  # "vectortile" or "OAPIF"
    source: str
    crs: str
    visible: bool
    renderer: Element | None
    wkb_type: str | None = None
    abstract: str = ""
    opacity: float = 1.0


def _readable(user, layer_id: str) -> bool:
    """Whether the role reads the layer: rows for a row layer, the protected form
    (aggregates) too for a computed one (the concentration grid)."""
    declared = layers.REGISTRY.get(layer_id)
    if declared is None:
        return False
    if declared.computed is not None:
        return policy.scope(user, declared.resource) != policy.NONE
    return policy.may_read(user, declared.resource)


def _ordered(ids) -> list[str]:
    return sorted(ids, key=lambda i: (ORDER.index(i) if i in ORDER else len(ORDER), i))


def _sees_plots(user) -> bool:
    return policy.may_read(user, layers.PLOTS.resource)


def project_layers(user, base_url: str) -> tuple[list[ProjectLayer], list[ProjectLayer]]:
    """(map layers, data layers) for ``user``, top to bottom, every source on ``base_url``."""
    base = base_url.rstrip("/")
    map_layers = []
    for layer_id in _ordered(tiles.LAYERS):
        spec = tiles.LAYERS[layer_id]
        if not _readable(user, layer_id):
            continue
        source = (f"type=xyz&url={base}/tiles/{layer_id}/{{z}}/{{x}}/{{y}}.mvt"
                  f"&zmin={spec.minzoom}&zmax={spec.maxzoom}&authcfg={AUTHCFG}")
        title = layers.REGISTRY[layer_id].title
        # The web map shows the grid only to roles that see no plot.
        visible = layer_id != "concentration" or not _sees_plots(user)
        map_layers.append(ProjectLayer(f"chacra_tiles_{layer_id.replace('-', '_')}", f"{title} (map)",
                                       "vector-tile", "vectortile", source, "EPSG:3857", visible,
                                       _tile_renderer(layer_id), abstract=spec.description,
                                       opacity=LAYER_OPACITY.get(layer_id, 1.0)))
    data_layers = []
    for collection_id in _ordered(ogc.COLLECTIONS):
        if not _readable(user, collection_id):
            continue
        collection = ogc.COLLECTIONS[collection_id]
        source = f"url='{base}/ogc' typename='{collection_id}' authcfg={AUTHCFG}"
        data_layers.append(ProjectLayer(f"chacra_ogc_{collection_id.replace('-', '_')}", collection.title,
                                        "vector", "OAPIF", source, "EPSG:4326", True,
                                        _feature_renderer(collection_id), WKB_TYPES.get(collection_id),
                                        collection.description, LAYER_OPACITY.get(collection_id, 1.0)))
    return map_layers, data_layers


def start_extent(user) -> tuple[float, float, float, float]:
    """Where the project opens (lon/lat): the plots the role sees, else the grid it
    sees, else Peru. Read from the role's own rows only."""
    boxes = []
    if _sees_plots(user):
        for collection_id in ("plots", "plot-points"):
            collection = ogc.COLLECTIONS.get(collection_id)
            if collection is not None and collection.extent_field:
                box = collection.rows(user).aggregate(e=Extent(collection.extent_field))["e"]
                if box:
                    boxes.append(box)
    elif _readable(user, layers.CONCENTRATION.id):
        from shapely.geometry import shape

        boxes = [shape(f["geometry"]).bounds for f in layers.CONCENTRATION.computed(user, {}) if f.get("geometry")]
    if not boxes:
        return PERU
    west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
    east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    pad = max(east - west, north - south, 0.02) * 0.05
    return west - pad, south - pad, east + pad, north + pad


def _mercator(lon: float, lat: float) -> tuple[float, float]:
    import math

    lat = max(min(lat, 85.0511), -85.0511)
    r = 6378137.0
    return math.radians(lon) * r, math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * r


# --------------------------------------------------------------------------- the document

def _srs(parent: Element, authid: str) -> None:
    """A CRS as QGIS writes it (CRS)."""
    node = SubElement(parent, "spatialrefsys")
    for tag, value in CRS[authid].items():
        _text(node, tag, value)


def _text(parent: Element, tag: str, text: str) -> Element:
    node = SubElement(parent, tag)
    node.text = text
    return node


def _tree_group(parent: Element, name: str, entries: list[ProjectLayer], checked: bool) -> None:
    group = SubElement(parent, "layer-tree-group", name=name, checked="Qt::Checked" if checked else "Qt::Unchecked",
                       expanded="1")
    SubElement(group, "customproperties")
    for entry in entries:
        node = SubElement(group, "layer-tree-layer", id=entry.id, name=entry.name, source=entry.source,
                          providerKey=entry.provider, checked="Qt::Checked" if entry.visible else "Qt::Unchecked",
                          expanded="0")
        SubElement(node, "customproperties")


def _map_layer(parent: Element, entry: ProjectLayer) -> None:
    attrs = {"type": entry.kind, "hasScaleBasedVisibilityFlag": "0", "minScale": "1e+08", "maxScale": "0",
             "autoRefreshEnabled": "0", "autoRefreshTime": "0"}
    if entry.wkb_type:
        attrs.update(geometry="Point" if entry.wkb_type.endswith("Point") else "Polygon", wkbType=entry.wkb_type,
                     readOnly="1", labelsEnabled="0")
    layer = SubElement(parent, "maplayer", attrs)
    _text(layer, "id", entry.id)
    _text(layer, "datasource", entry.source)
    _text(layer, "layername", entry.name)
    _srs(SubElement(layer, "srs"), entry.crs)
    metadata = SubElement(layer, "resourceMetadata")
    _text(metadata, "title", entry.name)
    _text(metadata, "abstract", entry.abstract)
    provider = _text(layer, "provider", entry.provider)
    if entry.kind == "vector":
        provider.set("encoding", "")
    if entry.renderer is not None:
        layer.append(entry.renderer)
    _text(layer, "blendMode", "0")
    _text(layer, "layerOpacity", f"{entry.opacity:g}")


ABSTRACT = (
    "Chacra's layers for {role}, served by {base}. Every layer signs in with the QGIS authentication "
    "configuration whose Id is " + AUTHCFG + ": in Settings > Options > Authentication add a configuration, "
    "method Basic authentication, your Chacra user name, your API token as the password; click the padlock "
    "beside Id and type " + AUTHCFG + ". The map group shows the vector tiles styled like the web map; tick "
    "layers in the data group (OGC API Features) for attribute tables and analysis.")


def project_xml(user, base_url: str, title: str = "Chacra") -> str:
    """The ``.qgs`` document for ``user``, every source on ``base_url``."""
    base = base_url.rstrip("/")
    map_layers, data_layers = project_layers(user, base)
    root = Element("qgis", projectname=title, version=QGIS_VERSION)
    SubElement(root, "homePath", path="")
    _text(root, "title", title)
    _srs(SubElement(root, "projectCrs"), "EPSG:3857")

    tree = SubElement(root, "layer-tree-group")
    SubElement(tree, "customproperties")
    _tree_group(tree, MAP_GROUP, map_layers, checked=True)
    _tree_group(tree, DATA_GROUP, data_layers, checked=False)
    SubElement(tree, "custom-order", enabled="0")

    west, south, east, north = start_extent(user)
    (xmin, ymin), (xmax, ymax) = _mercator(west, south), _mercator(east, north)
    canvas = SubElement(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    _text(canvas, "units", "meters")
    extent = SubElement(canvas, "extent")
    for tag, value in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
        _text(extent, tag, f"{value:.2f}")
    _text(canvas, "rotation", "0")
    _srs(SubElement(canvas, "destinationsrs"), "EPSG:3857")

    project_layers_node = SubElement(root, "projectlayers")
    for entry in map_layers + data_layers:
        _map_layer(project_layers_node, entry)
    order = SubElement(root, "layerorder")
    for entry in map_layers + data_layers:
        SubElement(order, "layer", id=entry.id)

    properties = SubElement(root, "properties")
    gui = SubElement(properties, "Gui")
    for part, value in zip(("Red", "Green", "Blue"), BACKGROUND, strict=True):
        _text(gui, f"CanvasColor{part}Part", str(value)).set("type", "int")
    _text(SubElement(properties, "Paths"), "Absolute", "false").set("type", "bool")
    # Without it QGIS 3.22 ignores projectCrs.
    _text(SubElement(properties, "SpatialRefSys"), "ProjectionsEnabled", "1").set("type", "int")
    metadata = SubElement(root, "projectMetadata")
    _text(metadata, "title", title)
    _text(metadata, "abstract", ABSTRACT.format(role=policy.role_of(user), base=base))
    view = SubElement(root, "ProjectViewSettings", UseProjectScales="0", rotation="0")
    SubElement(view, "Scales")
    default = SubElement(view, "DefaultViewExtent", xmin=f"{xmin:.2f}", ymin=f"{ymin:.2f}", xmax=f"{xmax:.2f}",
                         ymax=f"{ymax:.2f}")
    _srs(default, "EPSG:3857")
    body = tostring(root, encoding="unicode")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n"


def project_qgz(user, base_url: str, title: str = "Chacra") -> bytes:
    """The ``.qgz``: a zip holding ``chacra.qgs`` (QGIS makes the auxiliary storage itself)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("chacra.qgs", project_xml(user, base_url, title).encode("utf-8"))
    return out.getvalue()
