"""Plot imports: any registered format in, one report out.

Every importer yields the same SourceRecord; this module does what is common to
them all, once: map properties to plot fields, turn walked tracks into boundaries,
validate or repair polygons by named rules, check the country, upsert by plot code
(an unchanged boundary makes no new version), keep the raw tracks, and report each
feature as created / updated / unchanged / refused with its reason.

The import is one transaction. By default any refused feature means nothing is
written (the report says what to fix; re-running is safe). ``partial=True`` writes
the good features and reports the rest. ``dry_run=True`` runs everything and rolls
back, so the report is exactly what a real run would do.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction

from plots import geometry, roles, selectors
from plots.errors import DomainError, Forbidden, ValidationFailed
from plots.importers import ImportFileError, Limits, SourceRecord, registry
from plots.models import CheckResult, GpsTrack, Organization, Plot, Producer

# Rough national extents (lon/lat) for the "plots outside the expected country" guard.
COUNTRY_BOUNDS = {
    "PE": (-81.41, -18.35, -68.65, -0.03),
    "EC": (-92.01, -5.02, -75.19, 1.68),
    "CO": (-79.0, -4.23, -66.85, 13.4),
    "BO": (-69.65, -22.9, -57.45, -9.67),
    "CM": (8.49, 1.65, 16.19, 13.08),
    "GH": (-3.26, 4.74, 1.2, 11.17),
    "CI": (-8.6, 4.36, -2.49, 10.74),
}
DEFAULT_REPAIRS = ("remove_duplicate_vertices", "make_valid")
TRACK_METHOD_VERSION = "tracks-1"

# "name" last: a GPX track or KML placemark is usually named after its plot.
CODE_KEYS = ("code", "plot_code", "plot", "codigo", "codigo_parcela", "parcela", "id_parcela", "name")
PRODUCER_KEYS = ("producer", "producer_code", "productor", "codigo_productor", "farmer_id")
ATTRIBUTE_KEYS = {
    "declared_area": ("declared_area", "area_declarada", "area"),
    "declared_area_unit": ("declared_area_unit", "unit", "unidad"),
    "tenure": ("tenure", "tenencia"),
    "planting_year": ("planting_year", "anio_siembra", "year_planted"),
    "agroforestry_system": ("agroforestry_system", "sistema"),
    "survey_date": ("survey_date", "fecha_levantamiento"),
}


@dataclass
class FeatureResult:
    number: int
    label: str
    status: str  # created | updated | unchanged | refused
    code: str | None = None
    reason: str | None = None
    area_ha: float | None = None
    repairs: list[str] = field(default_factory=list)
    quality: dict | None = None


@dataclass
class ImportReport:
    file: str
    format: str
    dry_run: bool
    partial: bool
    features: list[FeatureResult] = field(default_factory=list)
    written: bool = False
    error: str | None = None  # a whole-file problem
    checks: dict | None = None
    mode: str = "per-feature"  # or "bulk" (plots.bulk, the set-based path for large layers)

    @property
    def counts(self) -> dict[str, int]:
        out = {"created": 0, "updated": 0, "unchanged": 0, "refused": 0}
        for f in self.features:
            out[f.status] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "dry_run": self.dry_run, "partial": self.partial,
                "written": self.written, "error": self.error, "counts": self.counts, "checks": self.checks,
                "mode": self.mode,
                "features": [asdict(f) for f in self.features]}


class ImportRefused(DomainError):
    """The file as a whole cannot be imported; carries the report."""

    status = 400
    code = "import_refused"

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------- guards every import takes
# Shared by the plot, nursery-sheet and traceability imports (each calls them at the
# start of its transaction).

# The refusal of a code held by a record the user cannot see. Codes are unique across
# Chacra, so that such a code is taken cannot be hidden; which organization, producer
# or plot holds it is.
def code_in_use(what: str, code: str) -> ValidationFailed:
    return ValidationFailed(f"{what} code {code!r} is already in use; choose another code", code="code_in_use")


RACE_REASON = ("another import wrote the same record at the same moment; nothing of this row was kept: "
               "run the import again")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class AlreadyImporting(DomainError):
    status = 409
    code = "import_in_progress"


def import_guard(*, what: str, digest: str, organization_id: int | None, name: str) -> None:
    """Within the caller's transaction: bound each statement's time, and refuse the
    same file (same bytes, same organization) while another import of it runs.

    A transaction-level advisory lock, tried without waiting: the second import of a
    file would otherwise wait on the first one's rows and end in a unique violation.
    Released by PostgreSQL at commit or rollback, so a crashed import never leaves
    it behind."""
    seconds = float(getattr(settings, "CHACRA_IMPORT_STATEMENT_TIMEOUT_S", 300))
    key = int.from_bytes(hashlib.sha256(f"{what}:{digest}:{organization_id}".encode()).digest()[:8], "big",
                         signed=True)
    with connection.cursor() as cur:
        # A hostile or huge file then ends in a clear refusal instead of holding the
        # transaction for many minutes (set_config(..., true) is SET LOCAL with a parameter).
        cur.execute("SELECT set_config('statement_timeout', %s, true)", [f"{int(seconds * 1000)}ms"])
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        if cur.fetchone()[0]:
            return
        cur.execute("SELECT min(a.xact_start) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                    "AND l.classid::bigint = %s AND l.objid::bigint = %s",
                    [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF])
        started = cur.fetchone()[0]
    when = f" (started {started:%Y-%m-%d %H:%M:%S %Z})" if started else ""
    raise AlreadyImporting(f"{name}: this file is already being imported{when}; wait for it to finish, then "
                           "run it again to see what is left to do")


def timed_out(exc: OperationalError) -> bool:
    """Whether the statement was cancelled by the statement_timeout import_guard set."""
    return getattr(exc.__cause__, "pgcode", None) == "57014"  # query_canceled


def timeout_reason() -> str:
    seconds = float(getattr(settings, "CHACRA_IMPORT_STATEMENT_TIMEOUT_S", 300))
    return (f"a step of the import ran longer than {seconds:g} s and was stopped; nothing was written "
            "(split the file into smaller ones)")


def public_reason(reason: str, path: Path, name: str) -> str:
    """``reason`` with the server's path of the file (an upload's temporary copy, which
    GDAL's messages quote) replaced by the name the user knows it by."""
    for shown in {str(Path(path).resolve()), str(path)}:
        reason = reason.replace(shown, name)
    return reason.replace(str(Path(path).resolve().parent) + "/", "").replace(str(Path(path).parent) + "/", "")


def _first(props: dict, keys: tuple[str, ...]) -> Any:
    lowered = {str(k).lower(): v for k, v in props.items()}
    for key in keys:
        value = lowered.get(key)
        if value not in (None, ""):
            return value
    return None


def _attributes(props: dict) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for name, keys in ATTRIBUTE_KEYS.items():
        value = _first(props, keys)
        if value is None:
            continue
        try:
            if name == "declared_area":
                value = float(value)
            elif name == "planting_year":
                value = int(float(value))
            elif name == "survey_date":
                value = date.fromisoformat(str(value)[:10])
        except ValueError:
            raise ValidationFailed(f"{name} {value!r} is not a valid value") from None
        attrs[name] = value
    return attrs


def _check_country(geom, country: str | None) -> None:
    if not country:
        return
    xmin, ymin, xmax, ymax = COUNTRY_BOUNDS[country]
    cx, cy = geom.centroid.x, geom.centroid.y
    if xmin <= cx <= xmax and ymin <= cy <= ymax:
        return
    hint = ""
    if xmin <= cy <= xmax and ymin <= cx <= ymax:
        hint = " — latitude and longitude look swapped (GeoJSON and most tools want longitude first)"
    raise ValidationFailed(f"lies at longitude {cx:.5f}, latitude {cy:.5f}, outside {country}{hint}",
                           code="outside_country")


@dataclass
class _Prepared:
    clean: geometry.CleanGeometry
    quality: dict | None
    track: SourceRecord | None


def _prepare_geometry(record: SourceRecord, *, repair_rules: tuple[str, ...], closure_tolerance_m: float,
                      country: str | None) -> _Prepared:
    if record.geometry is None:
        raise ValidationFailed("has no geometry")
    if record.segments and record.geometry.geom_type in ("LineString", "MultiLineString"):
        from plots.geometry.tracks import track_to_boundary

        result = track_to_boundary(record.segments, closure_tolerance_m=closure_tolerance_m)
        clean = geometry.CleanGeometry(geom=result.geom, area_ha=result.area_ha, repairs=result.repairs)
        _check_country(clean.geom, country)
        return _Prepared(clean, result.quality, record)
    clean = geometry.clean_plot_geometry(record.geometry, repair_rules=repair_rules)
    _check_country(clean.geom, country)
    return _Prepared(clean, None, None)


def producers_for(actor):
    """The producers an import may name: those the actor reads (plots.selectors), so
    that another organization's producer is refused exactly like an unknown one."""
    return selectors.producer_list(user=actor) if actor is not None else Producer.objects.all()


def plots_for(actor):
    return Plot.objects.visible_to(actor) if actor is not None else Plot.objects.all()


def _producer_for(record: SourceRecord, organization: Organization | None, default_producer: Producer | None,
                  actor=None):
    code = _first(record.properties, PRODUCER_KEYS)
    if code is None:
        if default_producer is None:
            raise ValidationFailed(f"names no producer (a property among: {', '.join(PRODUCER_KEYS)})")
        return default_producer
    qs = producers_for(actor).filter(code=str(code))
    if organization is not None:
        qs = qs.filter(organization=organization)
    producer = qs.first()
    if producer is None:
        where = f" in {organization.code}" if organization else ""
        raise ValidationFailed(f"producer {code!r} is not registered{where}")
    return producer


def _upsert(record: SourceRecord, prepared: _Prepared, *, producer: Producer, code: str, source: str,
            actor) -> tuple[str, Plot]:
    from plots import services

    attrs = _attributes(record.properties)
    if prepared.track is not None:
        attrs.setdefault("survey_method", "gps_walked")
    plot = plots_for(actor).filter(code=code).first()
    if plot is None and Plot.objects.filter(code=code).exists():
        raise code_in_use("plot", code)
    if plot is None:
        plot = services.plot_create(code=code, producer=producer, geometry_value=prepared.clean, source=source,
                                    actor=actor, **attrs)
        return "created", plot
    if plot.producer_id != producer.id:
        raise ValidationFailed(f"plot {code} exists for producer {plot.producer.code}, not {producer.code}")
    plot, changed = services.plot_update_boundary(plot=plot, geometry_value=prepared.clean, source=source,
                                                  actor=actor, survey_date=attrs.get("survey_date"))
    different = {k: v for k, v in attrs.items() if getattr(plot, k) != v}
    if different:
        services.plot_update(plot=plot, actor=actor, **different)
    return ("updated" if changed or different else "unchanged"), plot


def _keep_track(plot: Plot, prepared: _Prepared, source: str) -> None:
    from django.contrib.gis.geos import LineString, MultiLineString

    segments = prepared.track.segments or []
    lines = [LineString([(p.lon, p.lat) for p in seg], srid=4326) for seg in segments if len(seg) >= 2]
    times = [p.time for seg in segments for p in seg if p.time is not None]
    boundary = plot.boundaries.filter(valid_to__isnull=True).first()
    GpsTrack.objects.create(
        plot=plot, boundary=boundary if boundary and not hasattr(boundary, "track") else None, source=source,
        geom=MultiLineString(lines, srid=4326),
        vertices=[[[p.lon, p.lat, p.time.isoformat() if p.time else None, p.accuracy_m] for p in seg]
                  for seg in segments],
        recorded_from=min(times) if times else None, recorded_to=max(times) if times else None,
        quality=prepared.quality or {})
    suspicious = (prepared.quality or {}).get("timestamps", {}).get("implausible")
    CheckResult.objects.create(
        plot=plot, boundary=boundary, kind=CheckResult.Kind.GEOMETRY_QUALITY,
        outcome=CheckResult.Outcome.WARNING if suspicious or prepared.clean.repairs else CheckResult.Outcome.PASS,
        figures=prepared.quality or {}, datasets={"source": source}, method_version=TRACK_METHOD_VERSION)


def _one(record: SourceRecord, ctx: dict) -> FeatureResult:
    result = FeatureResult(number=record.number, label=record.label, status="refused")
    try:
        if record.error:
            raise ValidationFailed(record.error)
        if ctx["code"]:
            if record.number != ctx["first_number"]:
                raise ValidationFailed("a single plot code was given, but the file holds more than one feature")
            code = ctx["code"]
        elif ctx["code_field"]:
            code = record.properties.get(ctx["code_field"])
            if code in (None, ""):
                raise ValidationFailed(f"has no value in {ctx['code_field']!r}")
        else:
            code = _first(record.properties, CODE_KEYS)
        if code is None:
            raise ValidationFailed(f"names no plot code (a property among: {', '.join(CODE_KEYS)}; or name the "
                                   "property holding it)")
        result.code = str(code).strip()
        if result.code in ctx["seen"]:
            raise ValidationFailed(f"plot code {result.code} appears again (first in {ctx['seen'][result.code]}); "
                                   "each plot once per file")
        ctx["seen"][result.code] = record.label
        prepared = _prepare_geometry(record, repair_rules=ctx["repair_rules"],
                                     closure_tolerance_m=ctx["closure_tolerance_m"], country=ctx["country"])
        result.area_ha = round(prepared.clean.area_ha, 6) if not prepared.clean.is_point else None
        result.repairs = [r.note for r in prepared.clean.repairs]
        result.quality = prepared.quality
        producer = _producer_for(record, ctx["organization"], ctx["default_producer"], ctx["actor"])
        if ctx["actor"] is not None and not roles.can_write_organization(ctx["actor"], producer.organization_id):
            raise Forbidden("you may only import plots of your own organization")
        source = f"import: {ctx['file']} {record.label}"
        with transaction.atomic():  # a savepoint: a refused feature leaves nothing behind
            result.status, plot = _upsert(record, prepared, producer=producer, code=result.code, source=source,
                                          actor=ctx["actor"])
            if prepared.track is not None and result.status != "unchanged":
                _keep_track(plot, prepared, source)
        if result.status in ("created", "updated"):
            ctx["changed_ids"].append(plot.id)
    except geometry.GeometryError as exc:
        result.reason = exc.reason
    except DomainError as exc:
        result.reason = exc.message
    except IntegrityError:  # the savepoint is gone with the row; the import goes on
        result.reason = RACE_REASON
    return result


def import_plots(*, path: Path, fmt: str | None = None, srid: int | None = None,
                 organization: Organization | None = None, default_producer: Producer | None = None,
                 actor=None, dry_run: bool = False, partial: bool = False, country: str | None = "PE",
                 repair_rules: tuple[str, ...] = DEFAULT_REPAIRS, closure_tolerance_m: float = 25.0,
                 limits: Limits = Limits(), run_checks: bool = True, display_name: str | None = None,
                 code: str | None = None, code_field: str | None = None, bulk: bool | None = None) -> ImportReport:
    """Import every feature of ``path``. Raises ImportRefused (with the report) when
    nothing was written because of a whole-file problem or, unless ``partial``, a
    refused feature.

    ``bulk``: None chooses the set-based path (plots.bulk) for GDAL polygon layers of
    plots.bulk.BULK_MIN_FEATURES features or more; True forces it for those formats;
    False keeps the per-feature path. Both give the same results and report."""
    name = display_name or Path(path).name
    if country and country not in COUNTRY_BOUNDS:
        raise ValidationFailed(f"unknown country {country!r}; known: {', '.join(COUNTRY_BOUNDS)} (or none)")
    if actor is not None and not roles.can_write_at_all(actor):
        raise Forbidden("your role cannot import plots")
    options = {"srid": srid, "organization": organization, "default_producer": default_producer, "actor": actor,
               "dry_run": dry_run, "partial": partial, "country": country, "repair_rules": repair_rules,
               "closure_tolerance_m": closure_tolerance_m, "limits": limits, "run_checks": run_checks,
               "code": code, "code_field": code_field, "bulk": bulk}
    try:
        importer = registry.for_path(Path(path), fmt)
        digest = file_digest(Path(path))
        with transaction.atomic():
            import_guard(what="plots", digest=digest, organization_id=organization.id if organization else None,
                         name=name)
            return _import_file(importer, Path(path), name, **options)
    except ImportFileError as exc:
        reason = public_reason(exc.reason, Path(path), name)
        raise ImportRefused(f"{name}: {reason}", ImportReport(name, fmt or "?", dry_run, partial,
                                                              error=reason)) from None
    except OSError as exc:
        reason = f"cannot open the file: {exc.strerror or 'unreadable'}"
        raise ImportRefused(f"{name}: {reason}", ImportReport(name, fmt or "?", dry_run, partial,
                                                              error=reason)) from None
    except ImportRefused as exc:
        exc.report.error = public_reason(exc.report.error, Path(path), name) if exc.report.error else None
        exc.message = public_reason(exc.message, Path(path), name)
        raise
    except IntegrityError:  # the set-based path's INSERT met another import's rows
        raise ImportRefused(f"{name}: {RACE_REASON}", ImportReport(name, importer.name, dry_run, partial,
                                                                   error=RACE_REASON)) from None
    except OperationalError as exc:
        if not timed_out(exc):
            raise
        reason = timeout_reason()
        raise ImportRefused(f"{name}: {reason}", ImportReport(name, importer.name, dry_run, partial,
                                                              error=reason)) from None


def _import_file(importer, path: Path, name: str, *, srid, organization, default_producer, actor, dry_run, partial,
                 country, repair_rules, closure_tolerance_m, limits, run_checks, code, code_field,
                 bulk) -> ImportReport:
    """import_plots once the file is known and the import guarded (see there)."""
    if bulk is not False:
        from plots import bulk as bulk_path

        if bulk_path.supports(importer):
            done = bulk_path.import_layer(
                importer=importer, path=Path(path), name=name, srid=srid, organization=organization,
                default_producer=default_producer, actor=actor, dry_run=dry_run, partial=partial, country=country,
                repair_rules=repair_rules, closure_tolerance_m=closure_tolerance_m, limits=limits,
                run_checks=run_checks, code=code, code_field=code_field,
                min_features=1 if bulk else bulk_path.BULK_MIN_FEATURES)
            if done is not None:
                return done
    report = ImportReport(file=name, format=importer.name, dry_run=dry_run, partial=partial)
    ctx = {"organization": organization, "default_producer": default_producer, "actor": actor, "file": name,
           "repair_rules": repair_rules, "closure_tolerance_m": closure_tolerance_m, "country": country,
           "changed_ids": [], "code": code, "code_field": code_field, "first_number": None, "seen": {}}
    with transaction.atomic():
        try:
            for record in importer.read(Path(path), srid=srid, limits=limits):
                if ctx["first_number"] is None:
                    ctx["first_number"] = record.number
                report.features.append(_one(record, ctx))
        except ImportFileError as exc:
            report.error = exc.reason
            transaction.set_rollback(True)
            raise ImportRefused(f"{name}: {exc.reason}", report) from None
        refused = report.counts["refused"]
        if not report.features:
            report.error = "the file holds no features"
        if dry_run or report.error or (refused and not partial):
            transaction.set_rollback(True)
        else:
            report.written = True
            if run_checks and ctx["changed_ids"]:
                report.checks = _run_checks(ctx["changed_ids"])
    if report.error:
        raise ImportRefused(f"{name}: {report.error}", report)
    if refused and not partial and not dry_run:
        raise ImportRefused(f"{name}: {refused} of {len(report.features)} features refused; nothing was written "
                            "(fix them, or import the others with --partial)", report)
    return report


def _run_checks(plot_ids: list[int]) -> dict | None:
    try:
        from plots.checks import run_checks
    except ImportError:  # pragma: no cover - checks arrive with their own module
        return None
    summary = run_checks(plot_ids)
    return asdict(summary) if hasattr(summary, "__dataclass_fields__") else summary
