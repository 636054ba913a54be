"""Django settings, read from the environment (see README, "Configuration")."""

from __future__ import annotations

import os
from pathlib import Path

from chacra import pgcluster
from core.env import env_bool, env_database, env_float, env_int, env_list, env_steps, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)


def _local_secret_key() -> str:
    """A random key kept in the checkout (git-ignored) when SECRET_KEY is unset."""
    path = BASE_DIR / ".secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_gis",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "chacra",
    "plots",
    "nurseries",
    "traceability",
    "screening",
    "insights",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chacra.urls"
WSGI_APPLICATION = "chacra.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Without DATABASE_URL the private cluster in the checkout is used
# (scripts/bootstrap starts it; `chacra db status` shows it).
DATABASES = {"default": env_database("DATABASE_URL", pgcluster.cluster().database_url)}
# Each request is one transaction: a request that fails after a write leaves nothing.
DATABASES["default"]["ATOMIC_REQUESTS"] = True
# The test database's name (default test_<name>); set it to run two test sessions side by side.
if os.environ.get("CHACRA_TEST_DATABASE"):
    DATABASES["default"]["TEST"] = {"NAME": env_str("CHACRA_TEST_DATABASE", "")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "America/Lima")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True


def _package_dir(name: str, sub: str) -> Path | None:
    """A folder inside an installed package, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / sub
    return folder if folder.is_dir() else None


# MapLibre GL JS for the web map (/map/) comes from the installed ``maplibre``
# package and is served as /static/maplibre/maplibre-gl.js: no CDN, nothing vendored.
_MAPLIBRE = _package_dir("maplibre", "srcjs")
STATICFILES_DIRS = [("maplibre", _MAPLIBRE)] if _MAPLIBRE else []

# The web map uses a session login; API clients use tokens.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/map/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # ?format= is ours (exports: geojson, gpkg, shp …), not DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Chacra API",
    "DESCRIPTION": "Geo-referenced traceability for cacao supply chains. GeoJSON per RFC 7946 "
    "(WGS 84, lon/lat, counter-clockwise exterior rings). Authenticate with your API token: "
    "`Authorization: Token <key>`, `Authorization: Bearer <key>`, or HTTP Basic with your user name and the "
    "token (or your password) as the password.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["api.schema.drop_trailing_slash_duplicates"],
}

# Paging of GeoJSON lists.
CHACRA_PAGE_SIZE = env_int("CHACRA_PAGE_SIZE", 1000, minimum=1, maximum=100_000)
CHACRA_MAX_PAGE_SIZE = env_int("CHACRA_MAX_PAGE_SIZE", 10_000, minimum=1, maximum=1_000_000)
# Request body limit for uploads through the API.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("CHACRA_MAX_UPLOAD_BYTES", 25 * 1024 * 1024, minimum=1024)
# Largest file accepted by POST /api/v1/imports (the importers have their own limits).
CHACRA_MAX_IMPORT_BYTES = env_int("CHACRA_MAX_IMPORT_BYTES", 50 * 1024 * 1024, minimum=1024)
# Uploads are inflated and parsed under these bounds (plots.importers.safety): a KML
# (plain or in a KMZ) — GDAL's KML reader holds ~15x the file in memory —, any one
# zip entry, and a whole archive. Measured: a 31 MB KML peaks at 450 MB.
CHACRA_IMPORT_MAX_KML_BYTES = env_int("CHACRA_IMPORT_MAX_KML_BYTES", 32 * 1024 * 1024, minimum=1024)
CHACRA_IMPORT_MAX_ENTRY_BYTES = env_int("CHACRA_IMPORT_MAX_ENTRY_BYTES", 256 * 1024 * 1024, minimum=1024)
CHACRA_IMPORT_MAX_UNZIPPED_BYTES = env_int("CHACRA_IMPORT_MAX_UNZIPPED_BYTES", 512 * 1024 * 1024, minimum=1024)
# The longest one statement of an import may run (SET LOCAL statement_timeout), so a
# hostile or enormous file cannot hold a transaction open for ever; seconds.
CHACRA_IMPORT_STATEMENT_TIMEOUT_S = env_float("CHACRA_IMPORT_STATEMENT_TIMEOUT_S", 300.0, minimum=0.1)
# Where the real public layers live (see ../shared/data/README.md); optional.
CHACRA_SHARED_DATA = Path(env_str("CHACRA_SHARED_DATA", str(BASE_DIR.parent / "shared" / "data")))
# Files the demo writes for itself (its synthetic forest-loss tiles); the catalog points here.
CHACRA_DEMO_DATA_DIR = Path(env_str("CHACRA_DEMO_DATA_DIR", str(BASE_DIR / ".demo-data")))
# Mass balance (traceability.selectors): the most dry-equivalent cacao one hectare can
# yield in a season, in kg/ha. Default 2,300: the programme's best irrigated plot (its
# average was 518). A plot delivering more is flagged, with every lot it reaches.
CHACRA_YIELD_CEILING_KG_HA = env_float("CHACRA_YIELD_CEILING_KG_HA", 2300.0, minimum=1.0)
# Investor aggregates (insights.concentration). Fewer producers than this in an area
# and it is merged with its neighbours or suppressed (k-anonymity); requests may ask
# for a larger k, never a smaller one.
CHACRA_PRIVACY_K = env_int("CHACRA_PRIVACY_K", 5, minimum=2)
# Estimated yield of dry cacao by plant age, kg/ha per season, as from-age:kg steps.
# Cacao bears from the third year and is mature by the fifth; 518 kg/ha is the
# programme's average. Plots of unknown planting year count as mature.
CHACRA_YIELD_BY_AGE = env_steps("CHACRA_YIELD_BY_AGE", {0: 0.0, 3: 150.0, 4: 350.0, 5: 518.0})

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
    # GEOS prints a NOTICE for every invalid geometry it inspects; the reason is
    # already reported to the user by plots.geometry.
    "loggers": {"django.contrib.gis": {"level": "ERROR"}},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"

# GDAL 3.9+ can block file/network access while parsing spatial references. Debian
# 12 ships GDAL 3.6; Chacra only ever builds SpatialReference from integer EPSG
# codes (plots.geometry), never from user-supplied WKT or URLs.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]


# ------------------------------------------------------------------ security, headers, sign-in throttling
# (one block: the answers for a lost database, the browser headers, django-axes)
from datetime import timedelta  # noqa: E402

MIDDLEWARE = ["chacra.middleware.DatabaseUnavailableMiddleware", "chacra.middleware.SecurityHeadersMiddleware",
              *MIDDLEWARE, "axes.middleware.AxesMiddleware"]
INSTALLED_APPS += ["axes"]
# AxesStandaloneBackend first: it refuses a locked-out user name before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Every DRF view (REST, OGC API, tiles, exports) takes an API token as "Token <key>",
# "Bearer <key>" or Basic (user name, token or password: what QGIS and GDAL can send),
# and the web map's session. chacra.signin counts the failures of each.
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "chacra.signin.LockoutTokenAuthentication", "chacra.signin.LockoutBearerAuthentication",
    "chacra.signin.LockoutBasicAuthentication", "rest_framework.authentication.SessionAuthentication"]
# Paged lists are documented as the envelope they answer (api.schema.AutoSchema).
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "api.schema.AutoSchema"

# Failed sign-ins from one address for one user name before both are locked out,
# and for how long; the right password is refused too while locked.
AXES_FAILURE_LIMIT = env_int("CHACRA_SIGNIN_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("CHACRA_SIGNIN_COOLOFF_MINUTES", 15, minimum=1, maximum=7 * 24 * 60))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "chacra.signin.lockout_response"
# Behind a reverse proxy, CHACRA_TRUSTED_PROXIES says how many append to
# X-Forwarded-For; the lockout counts per client address found there (0 = REMOTE_ADDR).
CHACRA_TRUSTED_PROXIES = env_int("CHACRA_TRUSTED_PROXIES", 0, minimum=0, maximum=10)
AXES_CLIENT_IP_CALLABLE = "chacra.signin.client_address"
AXES_VERBOSE = False

# Seconds a client is told to wait (Retry-After) when the database is unavailable.
CHACRA_RETRY_AFTER_SECONDS = env_int("CHACRA_RETRY_AFTER_SECONDS", 5, minimum=1, maximum=3600)

# Content-Security-Policy of every HTML page: scripts and styles from our own files
# only (no inline code). MapLibre starts its workers from blob: URLs and draws
# sprites and the icon from data:/blob: images; Swagger UI's logos are data: images.
CHACRA_CSP = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
    "worker-src 'self' blob:", "child-src blob:", "connect-src 'self'", "font-src 'self'",
    "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
])
# Everything else (JSON, GeoJSON, tiles, files) runs nothing if a browser renders it.
CHACRA_CSP_NON_HTML = "default-src 'none'; frame-ancestors 'none'"
# No page uses the camera, microphone, location or payments.
CHACRA_PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
