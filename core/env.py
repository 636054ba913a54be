"""Typed readers for settings that come from the environment.

Each reader refuses a bad value with a message naming the variable, the value and
what would have been accepted, so a typo in a deployment fails at start-up rather
than as odd behaviour later. In the shared core because settings and domain apps
(screening's thresholds) both read the environment, and no app may import chacra.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class ImproperSetting(Exception):
    pass


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] = os.environ) -> str:
    value = environ.get(name)
    if value is None:
        if default is None:
            raise ImproperSetting(f"{name} must be set")
        return default
    return value


def env_bool(name: str, default: bool = False, *, environ: Mapping[str, str] = os.environ) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperSetting(f"{name}={raw!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None,
            environ: Mapping[str, str] = os.environ) -> int:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperSetting(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise ImproperSetting(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperSetting(f"{name}={value} is above the maximum {maximum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None,
              environ: Mapping[str, str] = os.environ) -> float:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperSetting(f"{name}={raw!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise ImproperSetting(f"{name}={value} is below the minimum {minimum}")
    return value


def env_list(name: str, default: list[str], *, environ: Mapping[str, str] = os.environ) -> list[str]:
    raw = environ.get(name)
    if raw is None:
        return list(default)
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise ImproperSetting(f"{name}={raw!r} has an empty item; separate values with single commas")
    return items


def env_steps(name: str, default: dict[int, float], *, environ: Mapping[str, str] = os.environ) -> dict[int, float]:
    """A step function written ``from:value,from:value`` (e.g. ``0:0,3:150,5:518``)."""
    raw = environ.get(name)
    if raw is None:
        return dict(default)
    steps: dict[int, float] = {}
    for item in raw.split(","):
        start, sep, value = item.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            steps[int(start)] = float(value)
        except ValueError:
            raise ImproperSetting(f"{name}={raw!r}: each item must be from:value, e.g. 0:0,3:150,5:518") from None
    if min(steps) != 0 or any(v < 0 for v in steps.values()):
        raise ImproperSetting(f"{name}={raw!r} must start at 0 and hold no negative value")
    return steps


def env_database(name: str, default_url: str, *, environ: Mapping[str, str] = os.environ) -> dict:
    """A Django DATABASES entry from a postgres:// (or postgis://) URL."""
    import dj_database_url

    url = environ.get(name) or default_url
    scheme = url.split(":", 1)[0]
    if scheme not in ("postgres", "postgresql", "postgis", "pgsql"):
        raise ImproperSetting(
            f"{name} must be a PostgreSQL/PostGIS URL such as postgres://user:pass@host:5432/db "
            f"(got scheme {scheme!r}); Chacra needs PostGIS"
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60)
    except Exception as exc:  # dj_database_url raises several types for malformed URLs
        raise ImproperSetting(f"{name} could not be parsed: {exc}") from None
    if not config.get("NAME"):
        raise ImproperSetting(f"{name} names no database (the path after the host)")
    config["ENGINE"] = "django.contrib.gis.db.backends.postgis"
    return config
