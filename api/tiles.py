"""Mapbox vector tiles built by PostGIS, and a TileJSON per layer.

    /tiles/{layer}.json           TileJSON 3.0: the tile URL template, zooms, bounds, fields
    /tiles/{layer}/{z}/{x}/{y}.mvt

The layers, each one MVT layer of the same name and one geometry type (QGIS and
GDAL type a layer by its first features):

    plots            plots with a boundary (polygons), scoped to the caller's role
    plot-points      plots surveyed as a single point (points), scoped the same way
    protected-areas  protected areas and buffer zones (polygons)
    districts        INEI districts of the most complete loaded edition (polygons)
    concentration    the investors' concentration grid (polygons, computed per request)

Every tile needs a token (HTTP Basic with the user name and API token, or
``Authorization: Token|Bearer <key>``, as chacra.signin accepts it; or the web map's session): anonymous
requests get 401. The reference layers (protected areas, districts)
answer every signed-in role (policy resource ``reference``); the plot layers are
scoped to the caller's role as in the REST API, and roles that may see no plot
geometry (buyers, investors) get 403. The TileJSON documents are public, so a
client can be set up before it signs in.

One SQL statement per tile: the rows whose bounding box meets the tile (GiST
index), clipped and quantised by ST_AsMVTGeom to a 4096 grid with a 64-unit
buffer, packed by ST_AsMVT. Geometries are transformed to Web Mercator after the
index filter, never before. Tiles carry ``Cache-Control`` (private for role-scoped
layers) and an ``ETag``; an unchanged tile answers 304.

Ring winding (MVT 2.1, section 4.3.4.4): an exterior ring has POSITIVE area by the
surveyor's formula in tile coordinates, whose y axis points down; holes negative.
ST_AsMVTGeom writes its output so, and ST_AsMVT encodes the rings as they stand,
so whatever rebuilds a geometry after ST_AsMVTGeom must restore the winding: the
protected areas' ST_Union (GEOS writes exteriors clockwise in the usual y-up
sense, which is negative area in these coordinates) is wrapped in
ST_ForcePolygonCCW, which, applied to tile coordinates as they stand, gives
exteriors positive area. QGIS drops polygons wound the other way (GDAL and
MapLibre repair them silently); tests/test_tile_orientation.py decodes the raw
tiles of every layer to hold the rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django.http import HttpResponse, JsonResponse
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from api import layers
from core import policy
from plots.errors import Forbidden, NotFound
from plots.models import Plot

MVT = "application/vnd.mapbox-vector-tile"
EXTENT, BUFFER = 4096, 64
MAX_ZOOM = 22
TOKEN_NOTE = ("Tiles need a token (your user name and API token as HTTP Basic, as QGIS sends them, or "
              "Authorization: Token <key> / Bearer <key>): {who}; "
              "this TileJSON is public.")

# Each layer's SQL takes %(z)s, %(x)s, %(y)s and its scope parameters; ``{scope}``
# is the role filter (plots only), ``{attributes}`` the layer's tile attributes as
# declared in api.layers, ``{name}`` the layer's id (the MVT layer is named as the
# TileJSON's vector layer). Attributes are what the web map styles and shows on
# hover; details come from the API on click.
_TILE = """
WITH tile AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
                     ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {margin}), 4326) AS box4326)"""

# The two plot layers differ in their geometry and their rows (api.layers.PLOTS,
# PLOT_POINTS): a boundary, or a point where no boundary was surveyed.
_PLOT_JOINS = """
    FROM plots_plot p
    CROSS JOIN tile
    JOIN plots_organization o ON o.id = p.organization_id
    -- The result in force per kind, as everywhere (plots migration 0013).
    LEFT JOIN LATERAL chacra_latest_check(p.id, 'protected_area_overlap') pa ON true
    LEFT JOIN LATERAL chacra_latest_check(p.id, 'deforestation') df ON true
    LEFT JOIN LATERAL chacra_latest_check(p.id, 'plot_overlap') dc ON true"""

# ST_AsMVT leaves out rows whose geometry is NULL (ST_AsMVTGeom's answer for a row
# the index found but that lies outside the tile and its buffer). A filter on it
# would be pushed down into the scan and compute ST_AsMVTGeom twice per row (over a
# quarter of a z8 plots tile's time).
_MVT = """
)
SELECT ST_AsMVT(rows.*, '{name}', {extent}, 'geom') FROM rows
"""

PLOTS_SQL = _TILE + """,
rows AS (
    SELECT ST_AsMVTGeom(ST_Transform(p.boundary, 3857), tile.env, {extent}, {buffer}, true) AS geom,
           {attributes}""" + _PLOT_JOINS + """
    WHERE p.boundary && tile.box4326 AND p.status = 'active' {scope}""" + _MVT

PLOT_POINTS_SQL = _TILE + """,
rows AS (
    SELECT ST_AsMVTGeom(ST_Transform(p.location, 3857), tile.env, {extent}, {buffer}, true) AS geom,
           {attributes}""" + _PLOT_JOINS + """
    WHERE p.location && tile.box4326 AND p.boundary IS NULL AND p.status = 'active' {scope}""" + _MVT

AREAS_SQL = _TILE + """,
rows AS (
    -- The area's pieces in this tile, clipped and quantised, then united: no seams
    -- where ST_Subdivide cut it. The union is written by GEOS with exteriors
    -- clockwise in y-up terms, which in tile coordinates (y down) is a negative
    -- area, a hole to an MVT reader: ST_ForcePolygonCCW on the tile coordinates
    -- as they stand turns every exterior back to positive area, holes negative.
    SELECT ST_ForcePolygonCCW(ST_Union(ST_AsMVTGeom(ST_Transform(pc.geom, 3857), tile.env,
                                                    {extent}, {buffer}, true))) AS geom,
           {attributes}
    FROM plots_protectedareapiece pc
    CROSS JOIN tile
    JOIN plots_protectedarea a ON a.id = pc.area_id
    WHERE pc.geom && tile.box4326
    GROUP BY {attributes}""" + _MVT

DISTRICTS_SQL = _TILE + """,
-- The most complete edition (a newer one may cover a few districts only).
newest AS (SELECT edition FROM plots_adminarea WHERE level = 'district'
           GROUP BY edition ORDER BY count(*) DESC, edition DESC LIMIT 1),
rows AS (
    SELECT ST_AsMVTGeom(ST_Transform(a.geom, 3857), tile.env, {extent}, {buffer}, true) AS geom,
           {attributes}
    FROM plots_adminarea a
    CROSS JOIN tile
    WHERE a.level = 'district' AND a.geom && tile.box4326
      AND a.edition = (SELECT edition FROM newest)""" + _MVT


@dataclass(frozen=True)
class TileLayer:
    id: str
    description: str
    sql: str  # with {scope}, {extent}, {buffer}, {margin}, {attributes} to fill
    fields: dict[str, str]  # attribute -> description, for TileJSON
    minzoom: int = 0
    maxzoom: int = 16
    role_scoped: bool = False
    cache_seconds: int = 300
    extent_of: tuple[str, str] | None = None  # (table, geometry column) whose extent bounds the layer
    # A layer made from GeoJSON features computed in Python (the concentration grid):
    # (request) -> features, instead of ``sql``.
    features: Callable[[object], list[dict]] | None = None
    params: tuple[str, ...] = ()  # query parameters the layer takes
    fields_sql: tuple[tuple[str, str], ...] = ()  # (property, SQL type) copied into the tile
    attributes: str = ""  # the SELECT list of the attributes (api.layers.Layer.tile_select)
    resource: str | None = None  # the core.policy resource a role must read some of (api.layers.Layer.resource)

    @classmethod
    def declared(cls, layer: layers.Layer, description: str, sql: str, **options) -> TileLayer:
        """A tile layer whose attributes and policy resource come from the layer's declaration."""
        return cls(layer.id, description, sql, layer.tile_fields(), attributes=layer.tile_select(),
                   resource=layer.resource, **options)


_PLOT_TOKEN = TOKEN_NOTE.format(who="administrators and technicians see every plot, a cooperative its own; "
                                      "buyers and investors are refused (403)")
_REFERENCE_TOKEN = TOKEN_NOTE.format(who="every signed-in role; anonymous requests are refused (401)")

LAYERS: dict[str, TileLayer] = {layer.id: layer for layer in (
    TileLayer.declared(layers.PLOTS, "Cacao plots with a surveyed boundary (polygons), with their latest "
                       "protected-area, deforestation and double-claim verdicts; plots surveyed as a single point "
                       "are the layer plot-points. " + _PLOT_TOKEN, PLOTS_SQL,
                       minzoom=6, maxzoom=18, role_scoped=True, cache_seconds=60,
                       extent_of=("plots_plot", "boundary")),
    TileLayer.declared(layers.PLOT_POINTS, "Cacao plots surveyed as a single point, no boundary (points), with "
                       "their latest verdicts as in the layer plots. " + _PLOT_TOKEN, PLOT_POINTS_SQL,
                       minzoom=6, maxzoom=18, role_scoped=True, cache_seconds=60,
                       extent_of=("plots_plot", "location")),
    TileLayer.declared(layers.PROTECTED_AREAS, "Protected areas and buffer zones (polygons). " + _REFERENCE_TOKEN,
                       AREAS_SQL, extent_of=("plots_protectedarea", "geom")),
    TileLayer.declared(layers.DISTRICTS, "INEI districts of the most complete loaded edition (polygons). "
                       + _REFERENCE_TOKEN, DISTRICTS_SQL, extent_of=("plots_adminarea", "geom")),
)}


def register(layer: TileLayer) -> None:
    """Add a tile layer (the concentration grid registers its own)."""
    LAYERS[layer.id] = layer


def _layer(layer_id: str) -> TileLayer:
    layer = LAYERS.get(layer_id)
    if layer is None:
        raise NotFound(f"no tile layer {layer_id!r}; the layers are: {', '.join(LAYERS)}")
    return layer


def plot_scope(user) -> tuple[str, dict]:
    """The SQL filter and parameters that limit plots to what ``user`` may see,
    compiled from the policy's queryset (core.policy.sql_filter), not written again:
    staff get no filter at all, a cooperative ``p.organization_id = %(scope_0)s``."""
    resource = layers.PLOTS.resource
    if not policy.may_read(user, resource):
        raise Forbidden("your role cannot see plot geometries")
    if policy.sees_all(user, resource):
        return "", {}
    try:
        where, values = policy.sql_filter(policy.visible(user, resource, Plot.objects.all()), alias="p")
    except policy.EmptyResultSet:  # a scope that holds no plot (a cooperative profile without organization)
        raise Forbidden("your role cannot see plot geometries") from None
    # Named parameters, as the statement is PREPAREd once per connection (_prepared),
    # where each becomes a bigint $n (organization ids).
    if not where:
        return "", {}
    names = [f"scope_{i}" for i in range(len(values))]
    return f"AND {where % tuple(f'%({name})s' for name in names)}", dict(zip(names, values))


def tile_sql(layer: TileLayer, user) -> tuple[str, dict]:
    scope, params = plot_scope(user) if layer.role_scoped else ("", {})
    # The margin widens the index filter by the buffer, so features just outside the
    # tile that ST_AsMVTGeom keeps in the buffer are found.
    sql = layer.sql.format(scope=scope, extent=EXTENT, buffer=BUFFER, margin=BUFFER / EXTENT,
                           attributes=layer.attributes, name=layer.id)
    return sql, params


def render_tile(layer: TileLayer, user, z: int, x: int, y: int) -> bytes:
    sql, params = tile_sql(layer, user)
    with connection.cursor() as cur:
        name = _prepared(cur, sql, sorted(params))
        args = [z, x, y] + [params[k] for k in sorted(params)]
        execute = f"EXECUTE {name}({', '.join(['%s'] * len(args))})"
        if not connection.get_autocommit():
            # One round trip for the settings and the tile (psycopg2 keeps the last statement's rows).
            execute = "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off; " + execute
        cur.execute(execute, args)
        row = cur.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


def _prepared(cur, sql: str, names: list[str]) -> str:
    """The name of ``sql`` PREPAREd on this database connection (once per connection):
    a tile then costs its execution only, not the planning of a CTE with three
    lateral joins (about as long as executing a z12 tile). (render_tile turns
    parallel workers and JIT off for the execution: a tile is one short index-driven
    statement, and starting workers, which the planner picks for a dense low-zoom
    tile, costs more than it saves.)"""
    # Kept on Django's (thread-local) connection wrapper, tied to the psycopg2
    # connection underneath: after a reconnect nothing is prepared any more.
    raw = connection.connection
    held, done = getattr(connection, "_chacra_prepared", (None, None))
    if held is not raw:
        done = {}
        connection._chacra_prepared = (raw, done)
    key = (sql, tuple(names))
    if key not in done:
        name = f"chacra_tile_{len(done)}"
        body = sql.replace("%(z)s", "$1").replace("%(x)s", "$2").replace("%(y)s", "$3")
        types = ["int", "int", "int"]
        for k, param in enumerate(names, start=4):
            body = body.replace(f"%({param})s", f"${k}")
            types.append("bigint")
        cur.execute(f"PREPARE {name}({', '.join(types)}) AS {body}")
        done[key] = name
    return done[key]


def parse_zxy(z: str, x: str, y: str) -> tuple[int, int, int]:
    """The tile address from the path: z within 0..MAX_ZOOM, x and y within the zoom's grid."""
    from api.params import parse_int

    zoom = parse_int(z, "z", minimum=0, maximum=MAX_ZOOM)
    last = (1 << zoom) - 1
    col = parse_int(x, "x", minimum=0, maximum=last)
    row = parse_int(y, "y", minimum=0, maximum=last)
    return zoom, col, row


FEATURES_SQL = """
WITH f AS (SELECT * FROM json_to_recordset(%(features)s::json)
           AS x(id text, geometry json, properties json)),
rows AS (
    SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(f.geometry::text), 4326), 3857),
                        ST_TileEnvelope(%(z)s, %(x)s, %(y)s), {extent}, {buffer}, true) AS geom,
           f.id, p.*
    FROM f CROSS JOIN LATERAL json_to_record(f.properties) AS p({columns})
)
SELECT ST_AsMVT(rows.*, %(name)s, {extent}, 'geom') FROM rows
"""


def tile_bounds_lonlat(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    import math

    n = 2 ** z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def render_features_tile(spec: TileLayer, features: list[dict], z: int, x: int, y: int) -> bytes:
    """ST_AsMVT over the features meeting the tile (their numeric and text properties)."""
    import json

    from shapely.geometry import box, shape

    tile = box(*tile_bounds_lonlat(z, x, y)).buffer(0.01)
    inside = [f for f in features if f.get("geometry") and shape(f["geometry"]).intersects(tile)]
    if not inside:
        return b""
    columns = ", ".join(f"{name} {kind}" for name, kind in spec.fields_sql)
    sql = FEATURES_SQL.format(extent=EXTENT, buffer=BUFFER, columns=columns)
    with connection.cursor() as cur:
        cur.execute(sql, {"features": json.dumps(inside), "z": z, "x": x, "y": y, "name": spec.id})
        row = cur.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


class TileView(APIView):
    def get(self, request, layer: str, z: str, x: str, y: str):
        spec = _layer(layer)
        if spec.resource and not spec.role_scoped and policy.scope(request.user, spec.resource) == policy.NONE:
            # Signed in without a role that reads the layer (anonymous requests are
            # refused before, 401; the plot layers are refused by plot_scope).
            raise Forbidden(f"your role cannot see the {spec.id} layer")
        z, x, y = parse_zxy(z, x, y)
        if spec.features is not None:
            from api.params import reject_unknown

            reject_unknown(request.GET, set(spec.params))
            data = render_features_tile(spec, spec.features(request), z, x, y)
        else:
            data = render_tile(spec, request.user, z, x, y)
        etag = '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'
        scope = "private" if spec.role_scoped else "public"
        headers = {"Cache-Control": f"{scope}, max-age={spec.cache_seconds}", "ETag": etag, "Vary": "Authorization, Cookie"}
        if request.META.get("HTTP_IF_NONE_MATCH") == etag:
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(data, content_type=MVT)
        for key, value in headers.items():
            response[key] = value
        return response


def _bounds(spec: TileLayer) -> list[float]:
    """The layer's extent from the planner's statistics (cheap; the world when unknown)."""
    if spec.extent_of:
        with connection.cursor() as cur:
            try:
                cur.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                            "(SELECT ST_EstimatedExtent(%s, %s)::geometry AS e) s", list(spec.extent_of))
                row = cur.fetchone()
            except Exception:  # no statistics yet (a table never analysed)
                row = None
        if row and row[0] is not None:
            return [round(max(row[0], -180), 5), round(max(row[1], -85), 5), round(min(row[2], 180), 5),
                    round(min(row[3], 85), 5)]
    return [-180, -85.0511, 180, 85.0511]


class TileJSONView(APIView):
    permission_classes = [AllowAny]

    def get(self, request, layer: str):
        spec = _layer(layer)
        template = request.build_absolute_uri(f"/tiles/{spec.id}/") + "{z}/{x}/{y}.mvt"
        return JsonResponse({
            "tilejson": "3.0.0", "name": spec.id, "description": spec.description, "tiles": [template],
            "minzoom": spec.minzoom, "maxzoom": spec.maxzoom, "bounds": _bounds(spec),
            "vector_layers": [{"id": spec.id, "fields": spec.fields, "minzoom": spec.minzoom,
                               "maxzoom": spec.maxzoom}],
        })


def _concentration_features(request) -> list[dict]:
    """The concentration grid for the tile's query parameters (computed once per
    parameter set for a few minutes: api.views.concentration.cached_result), each
    feature carrying the chosen metric's value as ``value``."""
    from api.views.concentration import cached_result

    doc = cached_result(request.GET, request.user)
    metric = doc["metric"]
    names = [c.name for c in layers.CONCENTRATION.tile]
    out = []
    for f in doc["features"]:
        props = dict(f["properties"], metric=metric, value=f["properties"][metric])
        out.append({"id": f["id"], "geometry": f["geometry"], "properties": {k: props[k] for k in names}})
    return out


register(TileLayer(
    layers.CONCENTRATION.id, "The investors' concentration grid (H3 cells, or admin areas), every area a sum over "
    "privacy units of at least k producers; parameters as /api/v1/concentration (metric, grid, region; k, "
    "organization, clone, planting_year for technicians and admins). " + TOKEN_NOTE.format(
        who="every signed-in role, the protected form (k fixed) for roles that see no plot"), "",
    {"id": "area id", **layers.CONCENTRATION.tile_fields()},
    minzoom=4, maxzoom=14, cache_seconds=300, extent_of=("plots_plot", "boundary"),
    resource=layers.CONCENTRATION.resource,
    features=_concentration_features,
    params=("metric", "grid", "k", "organization", "clone", "planting_year", "region"),
    fields_sql=tuple((c.name, c.sql) for c in layers.CONCENTRATION.tile)))
