"""Query-string parsing. Bad values become a 400 that names the parameter."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime, time
from datetime import timezone as dt_timezone

from django.contrib.gis.geos import Polygon
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.pagination import LimitOffsetPagination

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
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        # The database compares in UTC; year 1 or 9999 with an offset falls off
        # the calendar there (OverflowError, a 500) unless refused here.
        moment.astimezone(dt_timezone.utc)
    except (OverflowError, ValueError):
        raise ValidationFailed(f"{name} is outside the calendar (got {value!r})", field=name) from None
    return moment


# The largest value any integer parameter may take: PostgreSQL's bigint. A number
# past it would reach the database and fail there as a 500 (bigint out of range).
BIGINT_MAX = 2**63 - 1


def parse_int(value: str | None, name: str, *, default: int | None = None, minimum: int = 0,
              maximum: int = BIGINT_MAX) -> int | None:
    """The one reader of integer parameters: a whole number within [minimum, maximum],
    else a 400 that names the parameter. ``1.0``, ``1e3`` and ``٣`` are refused too."""
    if value is None or value == "":
        return default
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" else text
    # str.isdigit accepts superscripts (²) that int() refuses; ASCII only, at most
    # 19 digits so a megabyte of digits is not converted just to be refused.
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise ValidationFailed(f"{name} must be a whole number between {minimum} and {maximum} "
                               f"(got {value[:40]!r})", field=name)
    number = int(text)
    if not minimum <= number <= maximum:
        raise ValidationFailed(f"{name} must be between {minimum} and {maximum} (got {number})", field=name)
    return number


def safe_id(value: str) -> int | None:
    """An id taken from a path (a feature id): the integer, or None when it cannot be one."""
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > BIGINT_MAX:
        return None
    return int(value)


def parse_limit(value: str | None, *, default: int, maximum: int) -> int:
    return parse_int(value, "limit", default=default, minimum=1, maximum=maximum)


class Pagination(LimitOffsetPagination):
    """DRF's limit/offset paging, but a bad ``limit`` or ``offset`` is a 400 naming
    it: DRF silently replaces a bad value by the default, and passes a huge offset
    to the database (500)."""

    default_limit = 100
    max_limit = 1000

    def get_limit(self, request) -> int:
        return parse_limit(request.query_params.get(self.limit_query_param), default=self.default_limit,
                           maximum=self.max_limit)

    def get_offset(self, request) -> int:
        return parse_int(request.query_params.get(self.offset_query_param), "offset", default=0)


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
        last_id = safe_id(number)
        if last_id is None:
            raise ValueError
        return last_id
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
