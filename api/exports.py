"""Layers out as files, written by GDAL (through pyogrio): GeoJSON, GeoPackage,
zipped Shapefile, KML and CSV.

    GET /api/v1/exports/{layer}?format=gpkg[&bbox=…]
    chacra export plots --format shp --out plots.zip

Layers: ``plots`` (plots with a boundary), ``plot-points`` (plots surveyed as a
single point), ``protected-areas`` and ``districts``. Plots are scoped to the
caller's role as in the REST API.

One geometry type per layer, as QGIS and GDAL type a layer by its declaration:
``plots`` holds MultiPolygons only (a single Polygon is promoted), ``plot-points``
Points only, and protected areas and districts MultiPolygons only. In a file the
layer is named with an underscore (``plot_points``, ``protected_areas``).

- GeoPackage and Shapefile can hold several typed layers, so a ``plots`` export
  also carries the point plots as a second layer, ``plot_points`` (a second layer
  of the GeoPackage, a second shapefile in the zip): one download has every plot.
- GeoJSON, KML and CSV hold one layer: a ``plots`` export has the polygons only,
  and says how many point plots the ``plot-points`` export has (header
  ``X-Chacra-Point-Plots``, and a sentence in ``X-Chacra-Note``; the command
  prints it).

Properties: the layer's export columns as api.layers declares them (for plots the
19 properties of the API's Feature, in the same order; shade_species as text
joined by ``layers.LIST_SEPARATOR``, "Bolaina; Capirona"). Dates keep a type
where the format has one:

    format    survey_date   updated_at (UTC)
    gpkg      Date          DateTime
    shp       Date          Date (dBASE has no date-time: the UTC day)
    geojson   ISO 8601 text, as the API writes it ("2026-03-01", "2026-11-23T12:12:01.123456+00:00");
              GDAL and QGIS read them back as Date and DateTime
    csv       ISO 8601 text, typed Date and DateTime by the .csvt beside the .csv
    kml       ISO 8601 text (KML has no date type)

Shapefile field names are at most 10 characters: SHAPEFILE_FIELDS maps the long
names (the README lists it).

CRS: WGS 84 longitude/latitude (EPSG:4326) in every format. The Shapefile zip has
a .prj; ``format=csv`` answers a zip holding the .csv (geometry as WKT, first
column), a .csvt (GDAL's column types: WKT, String, Real, Integer, Date,
DateTime …) and a .prj (EPSG:4326), which GDAL's CSV driver (and so QGIS) reads
beside the .csv (``/vsizip/chacra-plots-….csv.zip/plots.csv``; GDAL 3.12 also
opens the .zip itself, GDAL 3.6 only the path inside it). The command writes
``--out areas.csv`` as the .csv with its .csvt and .prj beside it.

KML placemarks are named (``<name>``, GDAL's field ``Name``): plots by their code
(a ``Name`` column is added, ``code`` stays in the data), areas and districts by
their name.

Polygons are written on a grid of 1e-7 degree (~1 cm: the 7 decimals RFC 7946
GeoJSON is written with, and the API's own features). A part narrower than that
collapses on the grid into a line or a point; GDAL's GeoJSON writer would then
write a GeometryCollection (SERNANP's Santiago Comaina reserved zone: a polygon
plus a 4 cm line), which QGIS leaves out of its polygon sublayer. The polygons are
snapped to the grid here (ST_ReducePrecision where snapping alone leaves an
invalid polygon), only their polygonal parts are kept (ST_CollectionExtract(…, 3),
ST_Multi), and the parts dropped are counted: ``X-Chacra-Dropped-Parts`` (a
number, always sent) and ``X-Chacra-Dropped-Parts-Detail`` (which features, what
parts), the command's output and the log (logger ``api.exports``). Point plots are
snapped to the same grid.
"""

from __future__ import annotations

import logging
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
from django.db import connection, transaction
from pyogrio.raw import write as ogr_write

from api import layers
from core import policy
from plots import selectors
from plots.errors import NotFound, ValidationFailed

log = logging.getLogger(__name__)

CRS = "EPSG:4326"
# Polygons are snapped to this grid, in degrees: RFC 7946 GeoJSON's 7 decimals.
GRID = 1e-7


@dataclass(frozen=True)
class Format:
    driver: str  # GDAL driver
    suffix: str  # of the file answered
    content_type: str
    layer_options: dict = field(default_factory=dict)
    dataset_options: dict = field(default_factory=dict)
    multi_layer: bool = False  # holds several typed layers (plots carry their point layer)
    typed_dates: bool = False  # dates written as GDAL Date/DateTime fields (else ISO 8601 text)


FORMATS = {
    "geojson": Format("GeoJSON", ".geojson", "application/geo+json", {"RFC7946": "YES"}),
    # GeoPackage 1.2: what the GDAL of older QGIS releases reads without a warning.
    "gpkg": Format("GPKG", ".gpkg", "application/geopackage+sqlite3", {}, {"VERSION": "1.2"},
                   multi_layer=True, typed_dates=True),
    "shp": Format("ESRI Shapefile", ".zip", "application/zip", {"ENCODING": "UTF-8"},
                  multi_layer=True, typed_dates=True),
    "kml": Format("KML", ".kml", "application/vnd.google-earth.kml+xml"),
    "csv": Format("CSV", ".csv.zip", "application/zip", {"GEOMETRY": "AS_WKT", "CREATE_CSVT": "YES"}),
}

# Shapefile (dBASE) field names: at most 10 characters, unique within a layer.
SHAPEFILE_FIELDS = {
    "producer_name": "prod_name", "organization": "org", "declared_area": "decl_area",
    "declared_area_unit": "decl_unit", "declared_area_ha": "decl_ha", "planting_year": "plant_year",
    "agroforestry_system": "agroforest", "shade_species": "shade_spp", "survey_method": "survey_mth",
    "survey_date": "survey_dt", "gps_accuracy_m": "gps_acc_m", "district_name": "dist_name",
    "official_code": "off_code",
}


# ------------------------------------------------------------------ the SQL

def _polygonal(column: str) -> tuple[str, str]:
    """(the FROM additions, the select list) that write ``column`` as a MultiPolygon
    on the GRID, and count what that drops: line and point parts (of a collection,
    or of a sliver that collapsed on the grid; a line is its connected segments) and
    polygons that vanished.

    ST_SnapToGrid rounds to the grid as GDAL's GeoJSON writer does; where that leaves
    the polygon valid it is what is written (cheap, and GDAL's rounding of it changes
    nothing). Where it does not,
    ST_ReducePrecision snaps with a valid, polygonal result, and ST_MakeValid of the
    snapped polygon tells the parts that collapsed (what GDAL's writer would have
    made of it: Santiago Comaina's polygon plus a line)."""
    joins = f"""
        CROSS JOIN LATERAL (SELECT ST_SnapToGrid({column}, {GRID!r}) AS snapped) s
        CROSS JOIN LATERAL (SELECT COALESCE((ST_IsValidDetail(s.snapped)).valid, true) AS clean) v
        CROSS JOIN LATERAL (SELECT CASE WHEN v.clean THEN s.snapped ELSE ST_MakeValid(s.snapped) END AS parts) m"""
    select = f"""
        ST_AsBinary(ST_ForcePolygonCCW(ST_Multi(ST_CollectionExtract(
            CASE WHEN v.clean THEN s.snapped ELSE ST_ReducePrecision({column}, {GRID!r}) END, 3)))) AS geom,
        COALESCE(ST_NumGeometries(ST_LineMerge(ST_CollectionExtract(m.parts, 2))), 0) AS _dropped_lines,
        COALESCE(ST_NumGeometries(ST_CollectionExtract(m.parts, 1)), 0) AS _dropped_points,
        GREATEST(ST_NumGeometries(ST_CollectionExtract({column}, 3))
                 - ST_NumGeometries(ST_CollectionExtract(s.snapped, 3)), 0) AS _dropped_polygons"""
    return joins, select


def _points(column: str) -> str:
    return (f"ST_AsBinary(ST_SnapToGrid({column}, {GRID!r})) AS geom, "
            "0 AS _dropped_lines, 0 AS _dropped_points, 0 AS _dropped_polygons")


def _plot_scope(user, bbox, *, boundary: bool):
    policy.require_read(user, layers.PLOTS.resource, "your role cannot export plots")
    # The scope comes compiled from the policy's queryset (plot_list → visible_to).
    return selectors.plot_list(user=user, bbox=bbox).filter(boundary__isnull=not boundary)


def _plots_from(declared: layers.Layer, geometry: str, joins: str, inner: str) -> str:
    return f"""
        SELECT {declared.export_select()}, {geometry}
        FROM plots_plot p
        JOIN plots_producer r ON r.id = p.producer_id
        JOIN plots_organization o ON o.id = p.organization_id
        LEFT JOIN plots_adminarea d ON d.id = p.district_id{joins}
        WHERE p.id IN ({inner})
        ORDER BY p.id"""


def _plots_sql(user, bbox) -> tuple[str, list]:
    inner, params = _plot_scope(user, bbox, boundary=True).values("id").query.sql_with_params()
    joins, geometry = _polygonal("p.boundary")
    return _plots_from(layers.PLOTS, geometry, joins, inner), list(params)


def _plot_points_sql(user, bbox) -> tuple[str, list]:
    inner, params = _plot_scope(user, bbox, boundary=False).values("id").query.sql_with_params()
    return _plots_from(layers.PLOT_POINTS, _points("p.location"), "", inner), list(params)


def _bbox_clause(column: str, bbox) -> tuple[str, list]:
    if bbox is None:
        return "", []
    return f" AND {column} && ST_GeomFromEWKB(%s)", [bytes(bbox.ewkb)]


def _areas_sql(user, bbox) -> tuple[str, list]:
    where, params = _bbox_clause("a.geom", bbox)
    joins, geometry = _polygonal("a.geom")
    return (f"""SELECT {layers.PROTECTED_AREAS.export_select()}, {geometry}
                FROM plots_protectedarea a{joins}
                WHERE true{where} ORDER BY a.id""", params)


def _districts_sql(user, bbox) -> tuple[str, list]:
    where, params = _bbox_clause("a.geom", bbox)
    joins, geometry = _polygonal("a.geom")
    return (f"""SELECT {layers.DISTRICTS.export_select()}, {geometry}
                FROM plots_adminarea a LEFT JOIN plots_adminarea pr ON pr.id = a.parent_id{joins}
                WHERE a.level = 'district'{where} ORDER BY a.ubigeo, a.edition""", params)


# ------------------------------------------------------------------ the layers

@dataclass(frozen=True)
class ExportLayer:
    id: str
    declared: layers.Layer  # its export columns (api.layers)
    sql: Callable[[object, object], tuple[str, list]]  # (user, bbox) -> SELECT …, geom, _dropped_*
    geometry_type: str  # the one geometry type of the file layer
    placemark: str  # the column naming a KML placemark
    label: Callable[[dict], str]  # a feature, as a sentence names it
    companions: tuple[str, ...] = ()  # layers that formats holding several add to this one

    @property
    def file_layer(self) -> str:
        return self.id.replace("-", "_")


LAYERS = {layer.id: layer for layer in (
    ExportLayer("plots", layers.PLOTS, _plots_sql, "MultiPolygon", "code",
                lambda row: f"plot {row['code']}", companions=("plot-points",)),
    ExportLayer("plot-points", layers.PLOT_POINTS, _plot_points_sql, "Point", "code",
                lambda row: f"plot {row['code']}"),
    ExportLayer("protected-areas", layers.PROTECTED_AREAS, _areas_sql, "MultiPolygon", "name",
                lambda row: f"{row['name']} ({row['official_code']})"),
    ExportLayer("districts", layers.DISTRICTS, _districts_sql, "MultiPolygon", "name",
                lambda row: f"{row['name']} ({row['ubigeo']})"),
)}


# ------------------------------------------------------------------ reading

# PostgreSQL type OIDs -> the kind of column written.
_KINDS = {16: "bool", 20: "int64", 21: "int32", 23: "int32", 700: "float", 701: "float", 1700: "float",
          1082: "date", 1114: "datetime", 1184: "datetime"}


@dataclass
class Table:
    """One layer's rows as read: columns (name, kind), the rows, the WKB geometries and
    the dropped parts per feature (label, lines, points, polygons)."""

    layer: ExportLayer
    columns: list[tuple[str, str]]
    rows: list[tuple]
    geometries: list[bytes | None]
    dropped: list[tuple[str, int, int, int]]


def read(layer_id: str, user, bbox=None) -> Table:
    layer = LAYERS.get(layer_id)
    if layer is None:
        raise NotFound(f"no layer {layer_id!r} to export; the layers are: {', '.join(LAYERS)}")
    sql, params = layer.sql(user, bbox)
    with transaction.atomic(), connection.cursor() as cur:
        # The spatial functions look costly to the planner: compiling the query (JIT)
        # took 0.7 s of a 0.75 s read of 3,000 plots.
        cur.execute("SET LOCAL jit = off")
        cur.execute(sql, params)
        names = [c.name for c in cur.description]
        kinds = [_KINDS.get(c.type_code, "str") for c in cur.description]
        records = cur.fetchall()
    n = len(layer.declared.export)
    assert names[:n] == [c.name for c in layer.declared.export], names
    columns = list(zip(names[:n], kinds[:n]))
    geometries = [bytes(r[n]) if r[n] is not None else None for r in records]
    dropped = []
    for r in records:
        lines, points, polygons = r[n + 1:n + 4]
        if lines or points or polygons:
            dropped.append((layer.label(dict(zip(names, r))), lines, points, polygons))
    return Table(layer, columns, [r[:n] for r in records], geometries, dropped)


# ------------------------------------------------------------------ writing

def _utc(moment: datetime) -> datetime:
    """An aware time in UTC (a timestamp without a time zone is taken as UTC)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _iso(value) -> str | None:
    if value is None:
        return None
    return _utc(value).isoformat() if isinstance(value, datetime) else value.isoformat()


def _arrays(table: Table, fmt: str, spec: Format) -> tuple[list[str], list[np.ndarray], list, dict, dict]:
    """(fields, data, masks, GDAL time-zone offsets, the GDAL type of each date field)
    for pyogrio's raw writer. Raw, because a Date field needs a datetime64[D] array,
    which a pandas column cannot hold (a ``date`` object column is written as String)."""
    fields, data, masks, offsets, date_types = [], [], [], {}, {}
    for i, (name, kind) in enumerate(table.columns):
        values = [row[i] for row in table.rows]
        nulls = np.array([v is None for v in values], dtype=bool)
        mask = None
        if kind in ("date", "datetime") and not spec.typed_dates:
            array = np.array([_iso(v) for v in values], dtype=object)
            date_types[name] = "Date" if kind == "date" else "DateTime"
        elif kind == "date" or (kind == "datetime" and fmt == "shp"):
            # dBASE has no date-time: a Shapefile gets the UTC day.
            days = [_utc(v).date() if isinstance(v, datetime) else v for v in values]
            array = np.array([np.datetime64(d, "D") if d is not None else np.datetime64("NaT", "D") for d in days],
                             dtype="datetime64[D]")
        elif kind == "datetime":
            utc = [_utc(v).replace(tzinfo=None) if v is not None else None for v in values]
            array = np.array([np.datetime64(v, "us") if v is not None else np.datetime64("NaT", "us") for v in utc],
                             dtype="datetime64[us]")
            offsets[name] = np.full(len(values), 100, dtype=np.int32)  # GDAL's "UTC"
        elif kind in ("int32", "int64", "bool", "float"):
            dtype = {"int32": np.int32, "int64": np.int64, "bool": np.bool_, "float": np.float64}[kind]
            fill = {"bool": False, "float": 0.0}.get(kind, 0)
            array = np.array([fill if v is None else (float(v) if isinstance(v, Decimal) else v) for v in values],
                             dtype=dtype)
            mask = nulls
        else:
            array = np.array(values, dtype=object)
        fields.append(name)
        data.append(array)
        masks.append(mask)
    return fields, data, masks, offsets, date_types


def _write_layer(path: Path, table: Table, fmt: str, *, append: bool = False) -> None:
    spec = FORMATS[fmt]
    layer = table.layer
    fields, data, masks, offsets, date_types = _arrays(table, fmt, spec)
    dataset_options = dict(spec.dataset_options)
    if fmt == "kml":
        if layer.placemark.lower() == "name":
            dataset_options["NameField"] = layer.placemark
        else:
            # GDAL writes the "Name" field as the placemark's <name>, and leaves it
            # out of the data: a copy keeps the column itself (the plot code).
            source = fields.index(layer.placemark)
            fields, data, masks = ["Name", *fields], [data[source].copy(), *data], [None, *masks]
    if fmt == "shp":
        fields = [SHAPEFILE_FIELDS.get(f, f) for f in fields]
        assert len({f.lower() for f in fields}) == len(fields) and max(map(len, fields)) <= 10, fields
    ogr_write(
        str(path), geometry=np.array(table.geometries, dtype=object), field_data=data, fields=fields,
        field_mask=masks, layer=layer.file_layer, driver=spec.driver, geometry_type=layer.geometry_type,
        crs=CRS, promote_to_multi=False, append=append, layer_options=spec.layer_options or None,
        dataset_options=(dataset_options or None) if not append else None, gdal_tz_offsets=offsets or None)
    if fmt == "csv":
        _type_dates_in_csvt(path.with_suffix(".csvt"), ["WKT", *fields], date_types)


def _type_dates_in_csvt(csvt: Path, columns: list[str], date_types: dict[str, str]) -> None:
    """GDAL's .csvt types the ISO 8601 text columns String; they are Date and DateTime."""
    types = csvt.read_text().strip().split(",")
    assert len(types) == len(columns), (types, columns)
    csvt.write_text(",".join(date_types.get(c, t) for c, t in zip(columns, types)) + "\n")


@dataclass
class Exported:
    """What a file holds: features per file layer, the parts dropped, notes for the user."""

    layers: dict[str, int]
    dropped: list[tuple[str, int, int, int]]
    point_plots: int | None = None  # for a plots export: the plots in the plot-points export
    notes: list[str] = field(default_factory=list)

    @property
    def features(self) -> int:
        return sum(self.layers.values())

    @property
    def dropped_parts(self) -> int:
        return sum(lines + points + polygons for _, lines, points, polygons in self.dropped)

    def dropped_sentence(self, limit: int | None = None) -> str:
        if not self.dropped:
            return ""
        shown = self.dropped if limit is None else self.dropped[:limit]
        items = []
        for label, lines, points, polygons in shown:
            parts = [f"{n} {what}{'s' if n > 1 else ''}" for n, what in
                     ((lines, "line part"), (points, "point part"), (polygons, "polygon narrower than the grid"))
                     if n]
            items.append(f"{label}: {', '.join(parts)}")
        more = len(self.dropped) - len(shown)
        return (f"{self.dropped_parts} part(s) dropped to write polygons only (lines or points once on the "
                f"{GRID:g}-degree grid, ~1 cm): " + "; ".join(items)
                + (f"; and {more} more feature(s)" if more else ""))

def write(layer_id: str, fmt: str, user, out: Path, bbox=None) -> Exported:
    """Write the layer to ``out`` in ``fmt`` (with its companion layers where the
    format holds several). A csv goes into a zip with its .csvt and .prj, unless
    ``out`` ends in .csv: then they are written beside it."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"format must be one of {', '.join(FORMATS)} (got {fmt!r})", field="format")
    spec = FORMATS[fmt]
    main = read(layer_id, user, bbox)
    tables = [main]
    if spec.multi_layer:
        tables += [read(companion, user, bbox) for companion in main.layer.companions]
    out = Path(out)
    if fmt == "csv" and out.suffix.lower() == ".csv":
        # A .csv asked for by name (the command): the .csvt and .prj are written beside it.
        _write_layer(out, main, fmt)
    elif fmt in ("shp", "csv"):
        with tempfile.TemporaryDirectory(prefix="chacra-export-") as folder:
            files = []
            for table in tables:
                path = Path(folder) / f"{table.layer.file_layer}.{'shp' if fmt == 'shp' else 'csv'}"
                _write_layer(path, table, fmt)
                files += sorted(Path(folder).glob(f"{table.layer.file_layer}.*"))
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for f in files:
                    archive.write(f, f.name)
    else:
        for i, table in enumerate(tables):
            _write_layer(out, table, fmt, append=i > 0)
    exported = Exported(layers={t.layer.file_layer: len(t.rows) for t in tables},
                        dropped=[d for t in tables for d in t.dropped])
    if layer_id == "plots":
        held = next((len(t.rows) for t in tables if t.layer.id == "plot-points"), None)
        exported.point_plots = held if held is not None else _point_plots(user, bbox)
        if held is None and exported.point_plots:
            exported.notes.append(
                f"{exported.point_plots} plot(s) surveyed as a point are not in this file (one geometry type per "
                f"layer): they are in the plot-points export (/api/v1/exports/plot-points?format={fmt}, "
                f"chacra export plot-points), and in the plot_points layer of a gpkg or shp plots export.")
    if exported.dropped:
        log.info("export %s (%s): %s", layer_id, fmt, exported.dropped_sentence())
    return exported


def _point_plots(user, bbox) -> int:
    return _plot_scope(user, bbox, boundary=False).count()


def ascii_header(text: str, limit: int = 900) -> str:
    """``text`` for an HTTP header: ASCII (accents dropped: "Marañón" -> "Maranon"), one line, shortened."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    folded = " ".join(folded.split())
    return folded if len(folded) <= limit else folded[:limit - 3] + "..."

