"""Layers out as files, written by GDAL (through pyogrio): GeoJSON, GeoPackage,
zipped Shapefile, KML and CSV.

    GET /api/v1/exports/{layer}?format=gpkg[&bbox=…]      (plots, protected-areas, districts)
    chacra export plots --format shp --out plots.zip

Plots are scoped to the caller's role as in the REST API. A plot is a polygon, or
a point for a small plot surveyed as one; formats that hold one geometry type per
layer (GeoPackage, Shapefile) get the points in a second layer, ``plot_points``
(in the same GeoPackage, or as a second shapefile in the same zip).

Shapefile field names are at most 10 characters; SHAPEFILE_FIELDS maps the long
names (the README lists it). Coordinates are WGS 84 longitude/latitude in every
format (EPSG:4326, with a .prj in the Shapefile).
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from django.db import connection

from api import layers
from core import policy
from plots import selectors
from plots.errors import NotFound, ValidationFailed

FORMATS = {
    # format: (GDAL driver, file suffix, content type, layer creation options)
    "geojson": ("GeoJSON", ".geojson", "application/geo+json", {"RFC7946": "YES"}),
    "gpkg": ("GPKG", ".gpkg", "application/geopackage+sqlite3", {}),
    "shp": ("ESRI Shapefile", ".zip", "application/zip", {"ENCODING": "UTF-8"}),
    "kml": ("KML", ".kml", "application/vnd.google-earth.kml+xml", {}),
    "csv": ("CSV", ".csv", "text/csv", {"GEOMETRY": "AS_WKT"}),
}

# Shapefile (dBASE) field names: at most 10 characters.
SHAPEFILE_FIELDS = {
    "organization": "org", "declared_area": "decl_area", "declared_area_unit": "decl_unit",
    "declared_area_ha": "decl_ha", "planting_year": "plant_year", "agroforestry_system": "agroforest",
    "survey_method": "survey_mth", "survey_date": "survey_dt", "official_code": "off_code",
    "district_name": "dist_name",
}


@dataclass(frozen=True)
class ExportLayer:
    id: str
    sql: Callable[[object, object], tuple[str, list]]  # (user, bbox) -> SELECT …, geom_wkb


def _plots_sql(user, bbox) -> tuple[str, list]:
    policy.require_read(user, layers.PLOTS.resource, "your role cannot export plots")
    # The scope comes compiled from the policy's queryset (plot_list → visible_to).
    qs = selectors.plot_list(user=user, bbox=bbox).values("id")
    inner, params = qs.query.sql_with_params()
    sql = f"""
        SELECT {layers.PLOTS.export_select()},
               ST_AsBinary(COALESCE(ST_ForcePolygonCCW(p.boundary)::geometry, p.location::geometry)) AS geom
        FROM plots_plot p
        JOIN plots_producer r ON r.id = p.producer_id
        JOIN plots_organization o ON o.id = p.organization_id
        LEFT JOIN plots_adminarea d ON d.id = p.district_id
        WHERE p.id IN ({inner})
        ORDER BY p.id"""
    return sql, list(params)


def _bbox_clause(column: str, bbox) -> tuple[str, list]:
    if bbox is None:
        return "", []
    return f" AND {column} && ST_GeomFromEWKB(%s)", [bytes(bbox.ewkb)]


def _areas_sql(user, bbox) -> tuple[str, list]:
    where, params = _bbox_clause("a.geom", bbox)
    return (f"""SELECT {layers.PROTECTED_AREAS.export_select()},
                       ST_AsBinary(ST_ForcePolygonCCW(a.geom)) AS geom
                FROM plots_protectedarea a WHERE true{where} ORDER BY a.id""", params)


def _districts_sql(user, bbox) -> tuple[str, list]:
    where, params = _bbox_clause("a.geom", bbox)
    return (f"""SELECT {layers.DISTRICTS.export_select()},
                       ST_AsBinary(ST_ForcePolygonCCW(a.geom)) AS geom
                FROM plots_adminarea a LEFT JOIN plots_adminarea pr ON pr.id = a.parent_id
                WHERE a.level = 'district'{where} ORDER BY a.ubigeo, a.edition""", params)


LAYERS = {layer.id: layer for layer in (
    ExportLayer("plots", _plots_sql),
    ExportLayer("protected-areas", _areas_sql),
    ExportLayer("districts", _districts_sql),
)}


def frame(layer_id: str, user, bbox=None) -> gpd.GeoDataFrame:
    layer = LAYERS.get(layer_id)
    if layer is None:
        raise NotFound(f"no layer {layer_id!r} to export; the layers are: {', '.join(LAYERS)}")
    sql, params = layer.sql(user, bbox)
    with connection.cursor() as cur:
        cur.execute(sql, params)
        names = [c.name for c in cur.description]
        rows = cur.fetchall()
    data = pd.DataFrame.from_records(rows, columns=names)
    geometry = shapely.from_wkb([bytes(g) if g is not None else None for g in data.pop("geom")]) if rows else []
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"), crs="EPSG:4326")


def write(layer_id: str, fmt: str, user, out: Path, bbox=None) -> int:
    """Write the layer to ``out`` in ``fmt``; returns the number of features."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"format must be one of {', '.join(FORMATS)} (got {fmt!r})", field="format")
    driver, _suffix, _type, options = FORMATS[fmt]
    data = frame(layer_id, user, bbox)
    name = layer_id.replace("-", "_")
    if fmt in ("gpkg", "shp"):
        kinds = data.geometry.geom_type.fillna("")
        parts = {name: data[kinds != "Point"], f"{name.rstrip('s')}_points": data[kinds == "Point"]}
        parts = {k: v for k, v in parts.items() if len(v) or k == name}
    else:
        parts = {name: data}
    if fmt == "shp":
        with tempfile.TemporaryDirectory(prefix="chacra-export-") as folder:
            files = []
            for part, df in parts.items():
                shp = Path(folder) / f"{part}.shp"
                df.rename(columns=SHAPEFILE_FIELDS).to_file(shp, driver=driver, engine="pyogrio",
                                                           layer_options=options)
                files += sorted(Path(folder).glob(f"{part}.*"))
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for f in files:
                    archive.write(f, f.name)
    else:
        for part, df in parts.items():
            extra = {"append": True} if fmt == "gpkg" and part != name else {}
            if fmt == "gpkg" and part == name:
                # GeoPackage 1.2: what the GDAL of older QGIS releases reads without a warning.
                extra["dataset_options"] = {"VERSION": "1.2"}
            df.to_file(out, driver=driver, engine="pyogrio", layer=part, layer_options=options, **extra)
    return len(data)
