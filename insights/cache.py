"""The concentration grid as served, kept five minutes per data version, options
and audience: a map asks for many tiles of one grid, and the OGC collection pages
through the same one; any write changes the version (concentration.data_version),
so a cached grid is never served for older data."""

from __future__ import annotations

from django.core.cache import cache

from insights import concentration

SECONDS = 300


def concentration_geojson(*, protected: bool, **options) -> dict:
    """concentration.to_geojson(concentration.concentration(protected=…, **options)), cached."""
    audience = "protected" if protected else "staff"
    key = (f"chacra:concentration:{concentration.data_version()}:{audience}:"
           + "&".join(f"{name}={value}" for name, value in sorted(options.items())))
    doc = cache.get(key)
    if doc is None:
        doc = concentration.to_geojson(concentration.concentration(protected=protected, **options))
        cache.set(key, doc, SECONDS)
    return doc
