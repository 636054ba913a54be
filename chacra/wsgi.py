"""The WSGI application (gunicorn chacra.wsgi:application; chacra/gunicorn.conf.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chacra.settings")
application = get_wsgi_application()


def _warm() -> None:
    """Import now what the first requests would otherwise import: the URL configuration
    (every view, GeoPandas, GDAL bindings; about 1 s) and the class-break library the
    concentration grid imports lazily (mapclassify with SciPy; about 1.6 s). Under
    gunicorn's preload the workers fork with all of it loaded. No database
    connection is opened here, and any that were are closed before the fork."""
    from django.db import connections
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the import is the point
    try:
        import mapclassify  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency of the project; absent only in odd installs
        pass
    connections.close_all()


_warm()
