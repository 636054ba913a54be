"""Middleware: answers for a lost database, and the browser security headers."""

from __future__ import annotations

from django.conf import settings

from api.errors import database_unavailable


class DatabaseUnavailableMiddleware:
    """503 with Retry-After, in the API's error shape, for any view that loses the
    database — the DRF views map it themselves (api.errors.exception_handler); this
    covers the rest (the web map, sign-in) and the request's transaction, which
    ATOMIC_REQUESTS opens around the view and so outside DRF's handler."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return database_unavailable(exception)


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy, which Django 5.2 does not set.

    HTML pages get CHACRA_CSP (scripts and styles from our own files only); every
    other response gets CHACRA_CSP_NON_HTML, so JSON or a file that a browser is
    tricked into rendering runs nothing. A view may set its own header first.
    (X-Content-Type-Options, Referrer-Policy, Cross-Origin-Opener-Policy and
    X-Frame-Options come from Django's SecurityMiddleware and XFrameOptionsMiddleware.)
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        html = response.get("Content-Type", "").startswith("text/html")
        response.headers.setdefault("Content-Security-Policy", settings.CHACRA_CSP if html
                                    else settings.CHACRA_CSP_NON_HTML)
        response.headers.setdefault("Permissions-Policy", settings.CHACRA_PERMISSIONS_POLICY)
        return response
