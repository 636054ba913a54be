"""The set-based path of plot imports, for large polygon layers (GeoPackage,
zipped Shapefile, GeoJSON).

Same rules, same report, same atomicity as ``plots.imports`` — this module only
changes how the work is done:

* geometries are checked as arrays (shapely): type, vertex count, coordinate
  range, validity and the country guard in a handful of vectorised calls. A
  feature that fails any of them — or needs a repair — goes through the
  per-feature rules (``plots.import_rules``, which the per-feature path applies
  too), so its reason or repair is word for word what a small import reports;
* producers, existing plots and permissions are resolved with one query each;
* the clean features are COPY'd into a temporary staging table, and districts,
  new plots and their first boundary versions are computed and written with a few
  INSERT … SELECT statements (the district by the district check's own SQL).
  Existing plots whose boundary and attributes are unchanged are found in SQL; the
  few that changed go through the services, exactly as in a small import.

Nothing is written unless every feature is accepted (or ``partial``); a dry run
rolls back (``core.imports.run_import`` decides, around this path as around the
other). A layer holding plots surveyed as points is left to the per-feature path.
``chacra import-plots`` and the upload API choose this path for layers of
BULK_MIN_FEATURES features or more (``bulk=True/False`` forces it).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.db import connection, transaction
from django.utils import timezone

from core.imports import ImportReport, RowResult, code_in_use
from plots import geometry, h3cells, roles
from plots.checks.district import SHARES
from plots.errors import DomainError, Forbidden, ValidationFailed
from plots.import_rules import (ATTRIBUTE_KEYS, CODE_KEYS, COUNTRY_BOUNDS, PRODUCER_KEYS, PlotImportOptions,
                                attributes, first_value, no_producer, parse_attribute, plot_code, plots_for,
                                prepare_geometry, producers_for, unknown_producer)
from plots.importers import ImportFileError, Limits
from plots.importers.formats._common import json_value
from plots.models import Plot, Producer

BULK_MIN_FEATURES = 1_000
# The formats whose importers hand over a whole GDAL layer (``importer.layer``).
BULK_FORMATS = ("gpkg", "shapefile", "geojson")


def supports(importer) -> bool:
    return importer.name in BULK_FORMATS and hasattr(importer, "layer")


@dataclass(frozen=True)
class _Producer:
    """What the bulk path needs of a producer (a model instance per row costs more)."""

    id: int
    code: str
    organization_id: int


@dataclass
class _Row:
    """One feature that passed every per-row rule, waiting to be written."""

    index: int  # position in the layer and in the report
    code: str
    producer: _Producer | Producer
    attrs: dict[str, Any]
    ewkb_hex: str  # MultiPolygon, SRID 4326, rings oriented as RFC 7946 wants
    repairs: list[dict] = field(default_factory=list)
    plot_id: int | None = None  # the existing plot with this code


def _fast_geometries(wkb: list[bytes | None], srid: int, limits: Limits, country: str | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(shapes in 4326 as MultiPolygons with oriented rings, ok mask) for the features
    whose geometry passes every rule without help; the others (ok False) take the
    per-feature path, which says why or repairs them."""
    n = len(wkb)
    blobs = np.empty(n, dtype=object)
    blobs[:] = wkb
    ok = np.array([w is not None for w in wkb], dtype=bool)
    shapes = np.full(n, None, dtype=object)
    try:
        shapes[ok] = shapely.from_wkb(blobs[ok])
    except shapely.errors.GEOSException:
        # Some feature GEOS cannot build (an unclosed ring): every feature then takes
        # the per-feature path, which names the one.
        return shapes, np.zeros(n, dtype=bool)
    kind = shapely.get_type_id(shapes)
    ok &= np.isin(kind, (3, 6)) & ~shapely.is_empty(shapes) & ~shapely.has_z(shapes)
    ok &= shapely.get_num_coordinates(shapes) <= limits.max_vertices_per_feature
    if srid != geometry.WGS84 and ok.any():
        from pyproj import Transformer

        transformer = Transformer.from_crs(srid, geometry.WGS84, always_xy=True)
        shapes[ok] = shapely.transform(shapes[ok],
                                       lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
    bounds = shapely.bounds(shapes)
    with np.errstate(invalid="ignore"):
        ok &= np.isfinite(bounds).all(axis=1)
        ok &= (bounds[:, 0] >= -180) & (bounds[:, 2] <= 180) & (bounds[:, 1] >= -90) & (bounds[:, 3] <= 90)
    ok[ok] &= shapely.is_valid(shapes[ok])
    if country and ok.any():
        xmin, ymin, xmax, ymax = COUNTRY_BOUNDS[country]
        centre = shapely.centroid(shapes[ok])
        x, y = shapely.get_x(centre), shapely.get_y(centre)
        ok[ok] &= (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
    if ok.any():
        polygons = ok & (kind == 3)
        shapes[polygons] = shapely.multipolygons(shapes[polygons], indices=np.arange(int(polygons.sum())))
        shapes[ok] = shapely.set_srid(shapely.orient_polygons(shapes[ok], exterior_cw=False), geometry.WGS84)
    return shapes, ok


class _Columns:
    """The layer's attribute columns looked up as plots.import_rules.first_value looks
    up a feature's properties: names compared in lower case (of two names differing only in case,
    the later field wins), the first non-empty value among a list of names."""

    LABEL_KEYS = ("name", "nombre", "id", "uid", "plot_id", "code", "codigo", "código")

    def __init__(self, layer) -> None:
        self.n = len(layer)
        self._layer = layer
        self._lower: dict[str, int] = {}
        for k, name in enumerate(layer.fields):
            self._lower[name.lower()] = k
        self._cache: dict[int, list] = {}

    def column(self, k: int) -> list:
        if k not in self._cache:
            self._cache[k] = [json_value(v) for v in self._layer.columns[k]]
        return self._cache[k]

    def exact(self, name: str) -> list:
        k = self._layer.fields.index(name) if name in self._layer.fields else None
        return self.column(k) if k is not None else [None] * self.n

    def first(self, keys: tuple[str, ...]) -> list:
        out: list = [None] * self.n
        for key in reversed(keys):  # the earliest key wins: write it last
            k = self._lower.get(key)
            if k is None:
                continue
            for i, value in enumerate(self.column(k)):
                if value not in (None, ""):
                    out[i] = value
        return out

    def labels(self, numbers: range) -> list[str]:
        out = [f"feature {number}" for number in numbers]
        for key in reversed(self.LABEL_KEYS):
            k = self._lower.get(key)
            if k is None:
                continue
            original = self._layer.fields[k]
            for i, value in enumerate(self.column(k)):
                if value not in (None, ""):
                    shown = repr(value) if isinstance(value, str) else value
                    out[i] = f"feature {numbers[i]} ({original} {shown})"
        return out


_SLUG = re.compile(r"^[-a-zA-Z0-9_]+\Z")


def _columns_ok(cols: _Columns, *, code: str | None, code_field: str | None, default_producer
                ) -> tuple[list, list, list[dict], np.ndarray]:
    """(codes, producer codes, attributes, ok mask) read column-wise; ok False sends a
    feature to the per-feature rules, which give the reason in their words."""
    n = cols.n
    ok = np.ones(n, dtype=bool)
    if code:
        ok[:] = False  # one code for a one-feature file: the per-feature rules handle it
    raw_codes = cols.exact(code_field) if code_field else cols.first(CODE_KEYS)
    codes: list = [None] * n
    for i, value in enumerate(raw_codes):
        text = str(value).strip() if value not in (None, "") else ""
        if text and len(text) <= 60 and _SLUG.match(text):
            codes[i] = text
        else:
            ok[i] = False
    producers = cols.first(PRODUCER_KEYS)
    if default_producer is None:
        ok &= np.array([p is not None for p in producers], dtype=bool)
    attrs: list[dict] = [{} for _ in range(n)]
    for name, keys in ATTRIBUTE_KEYS.items():
        for i, value in enumerate(cols.first(keys)):
            if value is None:
                continue
            try:
                attrs[i][name] = parse_attribute(name, value)
            except (ValueError, TypeError, OverflowError):
                ok[i] = False
    return codes, producers, attrs, ok


def _by_feature_rules(record, options: PlotImportOptions) -> tuple[Any, str, list[dict], list[str], float]:
    """A feature's geometry and producer by the per-feature rules (plots.import_rules),
    in the per-feature path's order and words: (producer code, EWKB hex, repairs,
    repair notes, area in ha). Raises GeometryError or DomainError with the reason.
    Its attributes are read later, after the producer, as the per-feature path does."""
    prepared = prepare_geometry(record, repair_rules=options.repair_rules,
                                closure_tolerance_m=options.closure_tolerance_m, country=options.country)
    hexed = shapely.to_wkb(shapely.set_srid(shapely.from_wkb(bytes(prepared.clean.geom.wkb)), geometry.WGS84),
                           hex=True, include_srid=True)
    producer_code = first_value(record.properties, PRODUCER_KEYS)
    if producer_code is None and options.default_producer is None:
        raise no_producer()
    repairs = [{"rule": r.rule, "note": r.note} for r in prepared.clean.repairs]
    return (producer_code, hexed, repairs, [r.note for r in prepared.clean.repairs],
            round(prepared.clean.area_ha, 6))


def _full_clean(plot_code: str, attrs: dict) -> None:
    """The model's field validation of code and attributes, as services._save runs it."""
    from django.core.exceptions import ValidationError

    from plots.errors import from_django_validation

    plot = Plot(code=plot_code, **attrs)
    checked = {"code", *attrs}
    try:
        plot.full_clean(exclude=[f.name for f in Plot._meta.fields if f.name not in checked],
                        validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise from_django_validation(exc) from None


@dataclass
class _Batch:
    """The layer's features on their way through the rules, each list by position in
    the layer (and in the report); a code of None marks a feature already refused."""

    report: ImportReport
    codes: list
    producer_codes: list
    attrs: list[dict]
    hexes: list  # the clean geometry as EWKB hex
    repairs: list[list[dict]]
    slow: list[int]  # the features the vectorised checks could not settle …
    records: dict[int, Any] = field(default_factory=dict)  # … and their SourceRecords
    first_of: dict[str, int] = field(default_factory=dict)  # plot code: the first feature naming it


def import_layer(report: ImportReport, *, importer, path: Path, options: PlotImportOptions,
                 min_features: int = 1) -> list[int] | None:
    """Import one GDAL layer set-based into ``report``, within the import's transaction
    (core.imports.run_import keeps or rolls it back); see the module docstring. Returns
    the ids of the plots created or updated; or None, having done nothing, when the
    layer has fewer than ``min_features`` features (the per-feature path is then as
    quick) or holds points."""
    try:
        layer, srid = importer.layer(Path(path), srid=options.srid, limits=options.limits)
    except ImportFileError as exc:
        report.mode, report.error = "bulk", exc.reason
        return []
    n = len(layer)
    if n == 0 or n < min_features:
        return None  # (an empty layer is refused by the per-feature path, in its words)
    shapes, fast = _fast_geometries(layer.wkb, srid, options.limits, options.country)
    if any(w is not None and len(w) >= 5 and _is_point_wkb(w) for w in layer.wkb):
        return None  # plots surveyed as points: the per-feature path writes those
    report.mode = "bulk"
    batch = _batch(report, layer, shapes, fast, options)
    # The features that need the per-feature rules (a reason, or a repair), in the
    # per-feature path's order: the feature's own error and its code first …
    _slow_codes(batch, importer.records(Path(path), [layer.row(i) for i in batch.slow], srid, options.limits),
                options)
    # … each plot once per file, before its geometry is looked at …
    _once_per_file(batch)
    # … then the geometry (validated, or repaired by the named rules) and the producer named.
    _slow_geometries(batch, options)
    ready = _accept(batch, options)
    # The accepted features are written even when others were refused, so the report
    # says what each would become; run_import then rolls everything back.
    return _write(ready, report, name=report.file, actor=options.actor) if ready else []


def _batch(report: ImportReport, layer, shapes: np.ndarray, fast: np.ndarray, options: PlotImportOptions) -> _Batch:
    """The layer read column-wise: codes, producers, attributes and, for the features
    that passed every vectorised rule, their clean geometry; a report line for each."""
    cols = _Columns(layer)
    codes, producer_codes, attrs, columns_ok = _columns_ok(cols, code=options.code, code_field=options.code_field,
                                                           default_producer=options.default_producer)
    fast &= columns_ok
    labels = cols.labels(range(1, cols.n + 1))
    report.rows = [RowResult(number=i + 1, label=labels[i]) for i in range(cols.n)]
    hexes: list = [None] * cols.n
    if fast.any():
        for i, h in zip(np.flatnonzero(fast).tolist(), shapely.to_wkb(shapes[fast], hex=True, include_srid=True)):
            hexes[i] = h
    return _Batch(report=report, codes=codes, producer_codes=producer_codes, attrs=attrs, hexes=hexes,
                  repairs=[[] for _ in range(cols.n)], slow=np.flatnonzero(~fast).tolist())


def _slow_codes(batch: _Batch, records, options: PlotImportOptions) -> None:
    """The slow features' own errors and codes, by the per-feature rules."""
    for i, record in zip(batch.slow, records):
        batch.records[i] = record
        result = batch.report.rows[i]
        result.label = record.label
        try:
            if record.error:
                raise ValidationFailed(record.error)
            batch.codes[i] = plot_code(record.properties, code=options.code, code_field=options.code_field,
                                       first=(i == 0))
        except DomainError as exc:
            result.reason, batch.codes[i] = exc.message, None


def _once_per_file(batch: _Batch) -> None:
    for i, plot_code_ in enumerate(batch.codes):
        if plot_code_ is None:
            continue
        result = batch.report.rows[i]
        result.code = plot_code_
        if plot_code_ in batch.first_of:
            result.reason = (f"plot code {plot_code_} appears again (first in "
                             f"{batch.report.rows[batch.first_of[plot_code_]].label}); each plot once per file")
            batch.codes[i] = None
        else:
            batch.first_of[plot_code_] = i


def _slow_geometries(batch: _Batch, options: PlotImportOptions) -> None:
    for i, record in batch.records.items():
        if batch.codes[i] is None:
            continue
        result = batch.report.rows[i]
        try:
            (batch.producer_codes[i], batch.hexes[i], batch.repairs[i], result.repairs,
             result.area_ha) = _by_feature_rules(record, options)
        except geometry.GeometryError as exc:
            result.reason, batch.codes[i] = exc.reason, None
        except DomainError as exc:
            result.reason, batch.codes[i] = exc.message, None


def _accept(batch: _Batch, options: PlotImportOptions) -> list[_Row]:
    """The features still standing, checked against producers, existing plots and
    permissions (one query each); the rows to write."""
    wanted = {str(p) for i, p in enumerate(batch.producer_codes) if batch.codes[i] is not None and p is not None}
    producers = _producers(wanted, options.organization, options.actor)
    existing = _existing(list(batch.first_of), options.actor)
    allowed: dict[int, bool] = {}  # organization id: whether the actor writes for it
    ready: list[_Row] = []
    for i, plot_code_ in enumerate(batch.codes):
        if plot_code_ is None:
            continue
        try:
            ready.append(_accepted(batch, i, producers, existing, allowed, options))
        except DomainError as exc:
            result = batch.report.rows[i]
            result.reason = exc.message
            if result.area_ha is None:  # as the per-feature path reports it: the geometry was fine
                result.area_ha = round(geometry.geodesic_area_ha(GEOSGeometry(batch.hexes[i])), 6)
    return ready


def _accepted(batch: _Batch, i: int, producers: dict, existing: dict, allowed: dict[int, bool],
              options: PlotImportOptions) -> _Row:
    """Feature ``i`` as a row to write, or a DomainError with its reason."""
    plot_code_, producer_code = batch.codes[i], batch.producer_codes[i]
    if producer_code is None:
        producer = options.default_producer
    else:
        producer = producers.get(str(producer_code))
        if producer is None:
            raise unknown_producer(str(producer_code), options.organization)
    if options.actor is not None:
        if producer.organization_id not in allowed:
            allowed[producer.organization_id] = roles.can_write_organization(options.actor, producer.organization_id)
        if not allowed[producer.organization_id]:
            raise Forbidden("you may only import plots of your own organization")
    slow = i in batch.records
    if slow:
        batch.attrs[i] = attributes(batch.records[i].properties)
    plot_id, owner_id, owner = existing.get(plot_code_, (None, None, None))
    if owner is _HIDDEN:
        raise code_in_use("plot", plot_code_)
    if plot_id is not None and owner_id != producer.id:
        raise ValidationFailed(f"plot {plot_code_} exists for producer {owner}, not {producer.code}")
    if slow:
        _full_clean(plot_code_, batch.attrs[i])
    return _Row(index=i, code=plot_code_, producer=producer, attrs=batch.attrs[i], ewkb_hex=batch.hexes[i],
                repairs=batch.repairs[i], plot_id=plot_id)


def _is_point_wkb(wkb: bytes) -> bool:
    """Whether a WKB (ISO or EWKB, either byte order) is a Point or MultiPoint."""
    kind = int.from_bytes(wkb[1:5], "little" if wkb[0] == 1 else "big") & 0xFFFF
    return kind % 1000 in (1, 4)


# The owner shown for a plot the actor cannot see: its code is taken, nothing more is said.
_HIDDEN = object()


def _scoped(sql: str, params: list, column: str, visible) -> tuple[str, list]:
    """``sql`` restricted to the rows whose ``column`` is in ``visible`` (the reads'
    queryset, plots.querysets / plots.selectors); None: every row."""
    if visible is None:
        return sql, params
    inner, inner_params = visible.values("id").query.sql_with_params()
    return f"{sql} AND {column} IN ({inner})", [*params, *inner_params]


def _visible(actor, queryset):
    # Staff and the command line see every row: no need to ask the database.
    return None if actor is None or roles.is_staff_role(actor) else queryset


def _existing(codes: list[str], actor=None) -> dict[str, tuple]:
    """{plot code: (plot id, producer id, producer code)} for the codes already
    registered; (None, None, _HIDDEN) for those held by plots ``actor`` cannot see."""
    visible = _visible(actor, plots_for(actor))
    with connection.cursor() as cur:
        cur.execute("SELECT p.code, p.id, p.producer_id, r.code FROM plots_plot p "
                    "JOIN plots_producer r ON r.id = p.producer_id WHERE p.code = ANY(%s)", [codes])
        found = {code: (plot_id, producer_id, producer) for code, plot_id, producer_id, producer in cur.fetchall()}
        if visible is None or not found:
            return found
        cur.execute(*_scoped("SELECT p.code FROM plots_plot p WHERE p.code = ANY(%s)", [list(found)], "p.id", visible))
        shown = {code for (code,) in cur.fetchall()}
    return {code: row if code in shown else (None, None, _HIDDEN) for code, row in found.items()}


def _producers(codes: set[str], organization, actor=None) -> dict[str, _Producer]:
    """{code: Producer} for the producer codes named (in ``organization`` when given)
    among those ``actor`` reads; of two producers with one code in different
    organizations, the first registered."""
    if not codes:
        return {}
    sql = "SELECT id, code, organization_id FROM plots_producer WHERE code = ANY(%s)"
    params: list = [list(codes)]
    if organization is not None:
        sql += " AND organization_id = %s"
        params.append(organization.id)
    sql, params = _scoped(sql, params, "id", _visible(actor, producers_for(actor)))
    found: dict[str, _Producer] = {}
    with connection.cursor() as cur:
        cur.execute(sql + " ORDER BY id", params)
        for pk, code, organization_id in cur.fetchall():
            found.setdefault(code, _Producer(pk, code, organization_id))
    return found


# ------------------------------------------------------------------------------ writing

DROP_STAGING = "DROP TABLE IF EXISTS chacra_import_staging, chacra_import_district"
STAGING = """
CREATE TEMP TABLE chacra_import_staging (
    n integer PRIMARY KEY, code text NOT NULL, producer_id bigint NOT NULL, organization_id bigint NOT NULL,
    plot_id bigint, geom geometry(MultiPolygon, 4326) NOT NULL, h3_cell bigint NOT NULL, repairs jsonb NOT NULL,
    source text NOT NULL,
    declared_area double precision, declared_area_unit text, tenure text, planting_year integer,
    agroforestry_system text, survey_date date
) ON COMMIT DROP
"""

# The district each staged plot takes: the district check's own rule and SQL, fed
# from the staging table (area_ha NULL: only the check's figures use it).
DISTRICTS = "CREATE TEMP TABLE chacra_import_district ON COMMIT DROP AS SELECT plot_id AS n, district_id FROM (" + \
    SHARES.format(source="""
    SELECT s.n::bigint AS id, s.producer_id, NULL::double precision AS area_ha, false AS is_point, s.geom AS g
    FROM chacra_import_staging s WHERE s.plot_id IS NULL
    ORDER BY s.geom  -- see plots.checks.district.NEIGHBOURS_FIRST
""") + ") d"

# Existing plots: unchanged when the boundary has the same vertices (as
# services._same_geometry) and no attribute the file sets differs.
COMPARE = """
SELECT s.n,
       p.status = 'retired' AS retired,
       p.boundary IS NOT NULL AND ST_OrderingEquals(p.boundary, s.geom) AS same_boundary,
       (s.declared_area IS NULL OR s.declared_area IS NOT DISTINCT FROM p.declared_area)
       AND (s.declared_area_unit IS NULL OR s.declared_area_unit = p.declared_area_unit)
       AND (s.tenure IS NULL OR s.tenure = p.tenure)
       AND (s.planting_year IS NULL OR s.planting_year IS NOT DISTINCT FROM p.planting_year)
       AND (s.agroforestry_system IS NULL OR s.agroforestry_system = p.agroforestry_system)
       AND (s.survey_date IS NULL OR s.survey_date IS NOT DISTINCT FROM p.survey_date) AS same_attributes
FROM chacra_import_staging s
JOIN plots_plot p ON p.id = s.plot_id
"""

INSERT_PLOTS = """
WITH inserted AS (
    INSERT INTO plots_plot (code, producer_id, organization_id, boundary, h3_cell, district_id, declared_area,
                            declared_area_unit, tenure, planting_year, agroforestry_system, shade_species,
                            survey_method, survey_date, gps_accuracy_m, status, retired_reason, created_at, updated_at)
    SELECT s.code, s.producer_id, s.organization_id, s.geom, s.h3_cell, d.district_id, s.declared_area,
           COALESCE(s.declared_area_unit, %(unit)s), COALESCE(s.tenure, %(tenure)s), s.planting_year,
           COALESCE(s.agroforestry_system, %(agroforestry)s), '{}', %(survey_method)s, s.survey_date, NULL,
           'active', '', %(now)s, %(now)s
    FROM chacra_import_staging s
    LEFT JOIN chacra_import_district d ON d.n = s.n
    WHERE s.plot_id IS NULL
    ORDER BY s.n
    RETURNING id, code, boundary, survey_method, survey_date, area_ha
),
boundaries AS (
    INSERT INTO plots_plotboundary (plot_id, geom, location, valid_from, valid_to, source, survey_method,
                                    gps_accuracy_m, repairs, recorded_by_id, survey_date, created_at)
    SELECT i.id, i.boundary, NULL, COALESCE(i.survey_date, %(today)s), NULL, s.source, i.survey_method, NULL,
           s.repairs, %(actor)s, i.survey_date, %(now)s
    FROM inserted i
    JOIN chacra_import_staging s ON s.code = i.code AND s.plot_id IS NULL
)
SELECT s.n, i.id, i.area_ha FROM inserted i JOIN chacra_import_staging s ON s.code = i.code AND s.plot_id IS NULL
"""


def _copy_rows(ready: list[_Row], report: ImportReport, name: str) -> None:
    """COPY the accepted rows into the staging table (CSV: an empty unquoted field is NULL)."""
    # Each plot's H3 cell, from a point inside it (plots.h3cells), computed here so
    # that the INSERT writes it at once.
    inside = shapely.point_on_surface(shapely.from_wkb([row.ewkb_hex for row in ready]))
    cells = h3cells.cells_for(shapely.get_x(inside), shapely.get_y(inside))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(
        (row.index, row.code, row.producer.id, row.producer.organization_id, row.plot_id, row.ewkb_hex, int(cell),
         json.dumps(row.repairs) if row.repairs else "[]", f"import: {name} {report.features[row.index].label}",
         a.get("declared_area"), a.get("declared_area_unit"), a.get("tenure"), a.get("planting_year"),
         a.get("agroforestry_system"), a.get("survey_date"))
        for row, cell in zip(ready, cells) for a in (row.attrs,))
    buffer.seek(0)
    with connection.cursor() as cur:
        # ON COMMIT DROP is not enough when the import runs inside a caller's transaction.
        cur.execute(DROP_STAGING)
        cur.execute(STAGING)
        cur.copy_expert("COPY chacra_import_staging FROM STDIN WITH (FORMAT csv)", buffer)
        cur.execute("ANALYZE chacra_import_staging")


def _write(ready: list[_Row], report: ImportReport, *, name: str, actor) -> list[int]:
    """Write the accepted rows; fills their report lines. Returns the ids created or updated."""
    _copy_rows(ready, report, name)
    changed = _update_existing(ready, report, name=name, actor=actor)
    with connection.cursor() as cur:
        cur.execute("SET LOCAL jit = off")
        cur.execute(DISTRICTS)
        cur.execute(INSERT_PLOTS, {
            "unit": Plot._meta.get_field("declared_area_unit").get_default(),
            "tenure": Plot._meta.get_field("tenure").get_default(),
            "agroforestry": Plot._meta.get_field("agroforestry_system").get_default(),
            "survey_method": Plot._meta.get_field("survey_method").get_default(),
            "now": timezone.now(), "today": timezone.localdate(),
            "actor": actor.pk if getattr(actor, "pk", None) else None})
        for n, plot_id, area_ha in cur.fetchall():
            result = report.features[n]
            result.status, result.area_ha = "created", round(area_ha, 6)
            changed.append(plot_id)
        cur.execute(DROP_STAGING)
    return changed


def _update_existing(ready: list[_Row], report: ImportReport, *, name: str, actor) -> list[int]:
    """The staged rows of plots that exist: unchanged ones found in SQL, the others
    written through the services. Returns the ids updated."""
    from plots import services

    changed: list[int] = []
    by_index = {row.index: row for row in ready}
    with connection.cursor() as cur:
        cur.execute(COMPARE)
        compared = cur.fetchall()
    for n, retired, same_boundary, same_attributes in compared:
        row, result = by_index[n], report.features[n]
        if retired:
            result.reason = f"plot {row.code} is retired; its boundary can no longer change"
            continue
        if same_boundary and same_attributes:
            result.status = "unchanged"
            continue
        # A real change: through the services, as in a small import (new boundary
        # version from the survey date, attributes, district).
        plot = Plot.objects.get(pk=row.plot_id)
        clean = geometry.CleanGeometry(geom=_geos(row.ewkb_hex), area_ha=0.0,
                                       repairs=[geometry.Repair(rule=r["rule"], note=r["note"]) for r in row.repairs])
        try:
            with transaction.atomic():
                plot, moved = services.plot_update_boundary(
                    plot=plot, geometry_value=clean, source=f"import: {name} {result.label}", actor=actor,
                    survey_date=row.attrs.get("survey_date"))
                different = {k: v for k, v in row.attrs.items() if getattr(plot, k) != v}
                if different:
                    services.plot_update(plot=plot, actor=actor, **different)
        except DomainError as exc:
            result.reason = exc.message
            continue
        plot.refresh_from_db(fields=["area_ha"])
        result.status, result.area_ha = "updated", round(plot.area_ha, 6)
        changed.append(plot.id)
    return changed


def _geos(ewkb_hex: str):
    from django.contrib.gis.geos import GEOSGeometry

    return GEOSGeometry(ewkb_hex)
