"""Query-string parsing. Bad values become a 400 that names the parameter."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime, time

from django.contrib.gis.geos import Polygon
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from plots.errors import ValidationFailed


def reject_unknown(params, allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValidationFailed(
            f"unknown query parameter(s): {', '.join(unknown)}; this endpoint takes: {', '.join(sorted(allowed))}",
            details=[{"field": name, "message": "unknown parameter"} for name in unknown],
            code="unknown_parameter")


def parse_bbox(value: str | None) -> Polygon | None:
    if not value:
        return None
    parts = value.split(",")
    try:
        if len(parts) != 4:
            raise ValueError
        xmin, ymin, xmax, ymax = (float(p) for p in parts)
    except ValueError:
        raise ValidationFailed("bbox must be four numbers: min longitude,min latitude,max longitude,max latitude",
                               field="bbox") from None
    if not (-180 <= xmin <= 180 and -180 <= xmax <= 180 and -90 <= ymin <= 90 and -90 <= ymax <= 90):
        raise ValidationFailed("bbox is out of range: longitudes within ±180, latitudes within ±90 "
                               "(order: minlon,minlat,maxlon,maxlat)", field="bbox")
    if xmin >= xmax or ymin >= ymax:
        raise ValidationFailed("bbox minimum must be below its maximum (order: minlon,minlat,maxlon,maxlat)",
                               field="bbox")
    return Polygon.from_bbox((xmin, ymin, xmax, ymax))


def parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        day = parse_date(value)
    except ValueError:
        day = None
    if day is None:
        raise ValidationFailed(f"{name} must be a date written YYYY-MM-DD (got {value!r})", field=name)
    return day


def parse_moment(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 date-time or date; naive values are read in the server's time zone."""
    if not value:
        return None
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime.combine(day, time.min) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationFailed(f"{name} must be an ISO 8601 date or date-time (got {value!r})", field=name)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def parse_limit(value: str | None, *, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except ValueError:
        raise ValidationFailed(f"limit must be a whole number (got {value!r})", field="limit") from None
    if not 1 <= limit <= maximum:
        raise ValidationFailed(f"limit must be between 1 and {maximum}", field="limit")
    return limit


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(value: str | None) -> int:
    if not value:
        return 0
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind != "id":
            raise ValueError
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this server issued; follow the 'next' link as given",
                               field="cursor") from None


def parse_choice(value: str | None, name: str, choices) -> str | None:
    if not value:
        return None
    allowed = [c for c, _ in choices]
    if value not in allowed:
        raise ValidationFailed(f"{name} must be one of {', '.join(allowed)} (got {value!r})", field=name)
    return value
