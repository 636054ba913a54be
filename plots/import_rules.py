"""The per-feature rules of plot imports, which both paths apply: the per-feature
path (plots.imports) feature by feature, the set-based path (plots.bulk) to the
features its vectorised checks cannot settle — so a reason or a repair is word for
word the same on either path. Neither path imports the other's internals: both
import this module.

Which property names a feature's plot code, producer and attributes; how an attribute
is read; a feature's geometry validated or repaired by named rules and kept inside
the expected country; the producers and plots an import may name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.imports import parse_date
from plots import geometry, selectors
from plots.errors import ValidationFailed
from plots.importers import Limits, SourceRecord
from plots.models import Organization, Plot, Producer

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


@dataclass(frozen=True)
class PlotImportOptions:
    """What a plot import was asked to do, as both paths take it (plots.imports.import_plots
    documents each)."""

    srid: int | None = None
    organization: Organization | None = None
    default_producer: Producer | None = None
    actor: Any = None
    country: str | None = "PE"
    repair_rules: tuple[str, ...] = DEFAULT_REPAIRS
    closure_tolerance_m: float = 25.0
    limits: Limits = Limits()
    code: str | None = None
    code_field: str | None = None


_CHOICES = {name: {str(v) for v, _ in Plot._meta.get_field(name).choices}
            for name in ("declared_area_unit", "tenure", "agroforestry_system")}


def first_value(props: dict, keys: tuple[str, ...]) -> Any:
    """The first non-empty value among ``keys``, property names compared in lower case."""
    lowered = {str(k).lower(): v for k, v in props.items()}
    for key in keys:
        value = lowered.get(key)
        if value not in (None, ""):
            return value
    return None


def plot_code(props: dict, *, code: str | None, code_field: str | None, first: bool) -> str:
    """The plot code of a feature: ``code`` (given for a one-feature file), the
    property ``code_field``, or the first of CODE_KEYS."""
    if code:
        if not first:
            raise ValidationFailed("a single plot code was given, but the file holds more than one feature")
        value = code
    elif code_field:
        value = props.get(code_field)
        if value in (None, ""):
            raise ValidationFailed(f"has no value in {code_field!r}")
    else:
        value = first_value(props, CODE_KEYS)
        if value is None:
            raise ValidationFailed(f"names no plot code (a property among: {', '.join(CODE_KEYS)}; or name the "
                                   "property holding it)")
    return str(value).strip()


def no_producer() -> ValidationFailed:
    return ValidationFailed(f"names no producer (a property among: {', '.join(PRODUCER_KEYS)})")


# --------------------------------------------------------------------------- attributes


def _convert(name: str, value: Any) -> Any:
    """An attribute as the plot field takes it; ValueError (or ValidationFailed, from
    the shared date parser) when it cannot be read."""
    if name == "declared_area":
        return float(value)
    if name == "planting_year":
        return int(float(value))
    if name == "survey_date":
        return parse_date(value, name)
    return value


def attributes(props: dict) -> dict[str, Any]:
    """The plot attributes a feature's properties set (the per-feature path: the model
    validates them when the plot is saved)."""
    attrs: dict[str, Any] = {}
    for name, keys in ATTRIBUTE_KEYS.items():
        value = first_value(props, keys)
        if value is None:
            continue
        try:
            attrs[name] = _convert(name, value)
        except (ValueError, ValidationFailed):
            raise ValidationFailed(f"{name} {value!r} is not a valid value") from None
    return attrs


def parse_attribute(name: str, value: Any) -> Any:
    """``value`` as attributes() and the model field would take it; raises ValueError
    whenever either would refuse it (the set-based path then sends the feature to the
    per-feature rules, which word the reason)."""
    try:
        converted = _convert(name, value)
    except ValidationFailed:
        raise ValueError(value) from None
    if name == "declared_area" and converted < 0:
        raise ValueError(value)
    if name == "planting_year" and not 1900 <= converted <= 2100:
        raise ValueError(value)
    if name in _CHOICES:
        converted = str(converted)
        if converted not in _CHOICES[name]:
            raise ValueError(value)
    return converted


# --------------------------------------------------------------------------- geometry


def check_country(geom, country: str | None) -> None:
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
class Prepared:
    clean: geometry.CleanGeometry
    quality: dict | None
    track: SourceRecord | None  # the record, when its walked track became the boundary


def prepare_geometry(record: SourceRecord, *, repair_rules: tuple[str, ...], closure_tolerance_m: float,
                     country: str | None) -> Prepared:
    """A feature's boundary: a walked track closed into a polygon, or the polygon
    validated and repaired by ``repair_rules``; inside ``country``. Raises GeometryError
    or ValidationFailed with the reason."""
    if record.geometry is None:
        raise ValidationFailed("has no geometry")
    if record.segments and record.geometry.geom_type in ("LineString", "MultiLineString"):
        from plots.geometry.tracks import track_to_boundary

        result = track_to_boundary(record.segments, closure_tolerance_m=closure_tolerance_m)
        clean = geometry.CleanGeometry(geom=result.geom, area_ha=result.area_ha, repairs=result.repairs)
        check_country(clean.geom, country)
        return Prepared(clean, result.quality, record)
    clean = geometry.clean_plot_geometry(record.geometry, repair_rules=repair_rules)
    check_country(clean.geom, country)
    return Prepared(clean, None, None)


# --------------------------------------------------------------------------- scope


def producers_for(actor):
    """The producers an import may name: those the actor reads (plots.selectors), so
    that another organization's producer is refused exactly like an unknown one."""
    return selectors.producer_list(user=actor) if actor is not None else Producer.objects.all()


def plots_for(actor):
    return Plot.objects.visible_to(actor) if actor is not None else Plot.objects.all()


def unknown_producer(code: Any, organization: Organization | None) -> ValidationFailed:
    where = f" in {organization.code}" if organization else ""
    return ValidationFailed(f"producer {code!r} is not registered{where}")
