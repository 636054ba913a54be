"""drf-spectacular hooks."""


def drop_trailing_slash_duplicates(endpoints, **kwargs):
    """Hide the trailing-slash aliases of api/urls.py from the OpenAPI document."""
    return [e for e in endpoints if not (e[0].startswith("/api/v1/") and e[0].endswith("/"))]
