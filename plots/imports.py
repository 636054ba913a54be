"""Plot imports: any registered format in, one report out.

Every importer yields the same SourceRecord; this module does what is common to
them all, once: map properties to plot fields, turn walked tracks into boundaries,
validate or repair polygons by named rules, check the country (plots.import_rules,
shared with the set-based path plots.bulk), upsert by plot code (an unchanged
boundary makes no new version), keep the raw tracks, and report each feature as
created / updated / unchanged / refused with its reason.

The import is one transaction, run by the shared machinery (core.imports.run_import).
By default any refused feature means nothing is written (the report says what to
fix; re-running is safe). ``partial=True`` writes the good features and reports the
rest. ``dry_run=True`` runs everything and rolls back, so the report is exactly what a
real run would do.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from core.imports import (RACE_REASON, ImportLock, ImportRefused, ImportReport, RowResult, code_in_use,
                          file_digest, import_row, public_reason, refuse_file, run_import)
from plots import bulk as bulk_path
from plots import geometry, roles
from plots.errors import Forbidden, ValidationFailed
from plots.import_rules import (COUNTRY_BOUNDS, DEFAULT_REPAIRS, PRODUCER_KEYS, PlotImportOptions, Prepared,
                                attributes, first_value, no_producer, plot_code, plots_for, prepare_geometry,
                                producers_for, unknown_producer)
from plots.importers import ImportFileError, Limits, SourceRecord, registry
from plots.models import CheckResult, GpsTrack, Organization, Plot, Producer

# Names other modules and the tests import from here since before the shared
# machinery: traceability.services (code_in_use), the upload view and the command
# (COUNTRY_BOUNDS, DEFAULT_REPAIRS), callers catching ImportRefused.
__all__ = ["COUNTRY_BOUNDS", "DEFAULT_REPAIRS", "RACE_REASON", "ImportRefused", "ImportReport", "code_in_use",
           "import_plots", "public_reason"]

TRACK_METHOD_VERSION = "tracks-1"


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
    name, path = display_name or Path(path).name, Path(path)
    if country and country not in COUNTRY_BOUNDS:
        raise ValidationFailed(f"unknown country {country!r}; known: {', '.join(COUNTRY_BOUNDS)} (or none)")
    if actor is not None and not roles.can_write_at_all(actor):
        raise Forbidden("your role cannot import plots")
    options = PlotImportOptions(srid=srid, organization=organization, default_producer=default_producer,
                                actor=actor, country=country, repair_rules=repair_rules,
                                closure_tolerance_m=closure_tolerance_m, limits=limits, code=code,
                                code_field=code_field)
    report = ImportReport(file=name, format=fmt or "?", dry_run=dry_run, partial=partial)
    changed: list[int] = []  # the plots created or updated, for the checks
    try:
        importer = registry.for_path(path, fmt)
        lock = ImportLock(what="plots", digest=file_digest(path), name=name,
                          organization_id=organization.id if organization else None)
        report.format = importer.name
        return run_import(
            report=report, lock=lock, unit="features", empty="the file holds no features",
            write=lambda report: changed.extend(_write(report, importer, path, options, bulk)),
            when_written=lambda report: _check(report, changed, run_checks))
    except ImportFileError as exc:
        report.format = fmt or "?"
        refuse_file(report, public_reason(exc.reason, path, name))
    except OSError as exc:
        report.format = fmt or "?"
        refuse_file(report, f"cannot open the file: {exc.strerror or 'unreadable'}")
    except ImportRefused as exc:
        exc.report.error = public_reason(exc.report.error, path, name) if exc.report.error else None
        exc.message = public_reason(exc.message, path, name)
        raise


def _write(report: ImportReport, importer, path: Path, options: PlotImportOptions, bulk: bool | None) -> list[int]:
    """Fill the report by one path or the other; the ids of the plots created or updated."""
    if bulk is not False and bulk_path.supports(importer):
        changed = bulk_path.import_layer(report, importer=importer, path=path, options=options,
                                         min_features=1 if bulk else bulk_path.BULK_MIN_FEATURES)
        if changed is not None:
            return changed
    return _per_feature(report, importer, path, options)


def _check(report: ImportReport, changed: list[int], run_checks: bool) -> None:
    # Inside the import's transaction: the checks see the rows just written.
    if run_checks and changed:
        report.checks = _run_checks(changed)


def _run_checks(plot_ids: list[int]) -> dict | None:
    try:
        from plots.checks import run_checks
    except ImportError:  # pragma: no cover - checks arrive with their own module
        return None
    summary = run_checks(plot_ids)
    return asdict(summary) if hasattr(summary, "__dataclass_fields__") else summary


# --------------------------------------------------------------------------- the per-feature path


def _per_feature(report: ImportReport, importer, path: Path, options: PlotImportOptions) -> list[int]:
    """Each feature in its savepoint (core.imports.import_row); a file that turns out
    unreadable half-way is refused as a whole, naming the reason."""
    changed: list[int] = []
    seen: dict[str, str] = {}  # plot code: the label of the feature that first named it
    first_number = None
    try:
        for record in importer.read(path, srid=options.srid, limits=options.limits):
            if first_number is None:
                first_number = record.number
            result, written = RowResult(number=record.number, label=record.label), []
            report.rows.append(import_row(result, lambda: _one(record, result, options, seen, written,
                                                               first=record.number == first_number,
                                                               name=report.file)))
            if result.status in ("created", "updated"):  # (the savepoint was kept)
                changed.extend(written)
    except ImportFileError as exc:
        report.error = exc.reason
    return changed


def _one(record: SourceRecord, result: RowResult, options: PlotImportOptions, seen: dict[str, str],
         written: list[int], *, first: bool, name: str) -> tuple[str, str]:
    # A geometry refused by plots.geometry (here or in the services) is the feature's
    # reason, as any domain error is (core.imports.import_row).
    try:
        return _feature(record, result, options, seen, written, first=first, name=name)
    except geometry.GeometryError as exc:
        raise ValidationFailed(exc.reason, code=exc.code) from None


def _feature(record: SourceRecord, result: RowResult, options: PlotImportOptions, seen: dict[str, str],
             written: list[int], *, first: bool, name: str) -> tuple[str, str]:
    """One feature, in the order the set-based path follows too: its own error, its
    code (once per file), its geometry, its producer and the right to write for it;
    the plot's id goes to ``written``."""
    if record.error:
        raise ValidationFailed(record.error)
    result.code = plot_code(record.properties, code=options.code, code_field=options.code_field, first=first)
    if result.code in seen:
        raise ValidationFailed(f"plot code {result.code} appears again (first in {seen[result.code]}); "
                               "each plot once per file")
    seen[result.code] = record.label
    prepared = _prepared(record, result, options)
    producer = _producer_for(record, options)
    if options.actor is not None and not roles.can_write_organization(options.actor, producer.organization_id):
        raise Forbidden("you may only import plots of your own organization")
    source = f"import: {name} {record.label}"
    status, plot = _upsert(record, prepared, producer=producer, code=result.code, source=source,
                           actor=options.actor)
    if prepared.track is not None and status != "unchanged":
        _keep_track(plot, prepared, source)
    written.append(plot.id)
    return result.code, status


def _prepared(record: SourceRecord, result: RowResult, options: PlotImportOptions) -> Prepared:
    """The feature's boundary, its figures written into the report line at once (a
    feature refused later still reports its area and repairs)."""
    prepared = prepare_geometry(record, repair_rules=options.repair_rules,
                                closure_tolerance_m=options.closure_tolerance_m, country=options.country)
    result.area_ha = round(prepared.clean.area_ha, 6) if not prepared.clean.is_point else None
    result.repairs = [r.note for r in prepared.clean.repairs]
    result.quality = prepared.quality
    return prepared


def _producer_for(record: SourceRecord, options: PlotImportOptions) -> Producer:
    code = first_value(record.properties, PRODUCER_KEYS)
    if code is None:
        if options.default_producer is None:
            raise no_producer()
        return options.default_producer
    qs = producers_for(options.actor).filter(code=str(code))
    if options.organization is not None:
        qs = qs.filter(organization=options.organization)
    producer = qs.first()
    if producer is None:
        raise unknown_producer(code, options.organization)
    return producer


def _upsert(record: SourceRecord, prepared: Prepared, *, producer: Producer, code: str, source: str,
            actor) -> tuple[str, Plot]:
    from plots import services

    attrs = attributes(record.properties)
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


def _keep_track(plot: Plot, prepared: Prepared, source: str) -> None:
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
