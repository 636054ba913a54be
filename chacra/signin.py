"""Sign-in throttling: the web map's login form (django-axes) and API tokens (a cache counter).

django-axes counts failed sign-ins in the database (so every gunicorn worker sees
the same count) per user name and client address, and refuses further attempts —
the right password included — for CHACRA_SIGNIN_COOLOFF_MINUTES. Its backend
guards every ``authenticate()`` call (the login form, the admin, DRF's Basic
authentication if it is ever enabled).

API tokens never reach ``authenticate()``. LockoutTokenAuthentication counts wrong
tokens per client address in the cache and, past the same limit, refuses every
token from that address for the cool-off. The cache, not axes' table: a lock check
in the database would cost a query on every API request (the list endpoints pin
their query counts), and a token is 160 random bits, so even a per-worker count
(the default local-memory cache) leaves guessing hopeless; a shared cache
(CACHES) makes the count exact.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from api.errors import error_response


def client_address(request) -> str:
    """AXES_CLIENT_IP_CALLABLE: REMOTE_ADDR, or behind CHACRA_TRUSTED_PROXIES proxies the
    address the outermost of them saw. Entries further left are the client's own
    claims, which a guesser would vary to escape the lockout."""
    hops = settings.CHACRA_TRUSTED_PROXIES
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def _cooloff_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the sign-in page again for browsers, the API's error shape otherwise."""
    headers = {"Retry-After": str(_cooloff_seconds())}
    if request.path.startswith(("/accounts/", "/admin/")):
        response = render(request, "registration/login.html",
                          {"locked_out": True, "cooloff_minutes": _cooloff_seconds() // 60}, status=429)
        response["Retry-After"] = headers["Retry-After"]
        return response
    return error_response(429, "locked_out", "too many failed sign-ins from here; try again in "
                          f"{_cooloff_seconds() // 60} minutes", headers=headers)


class LockedOut(exceptions.Throttled):
    default_code = "locked_out"


class LockoutTokenAuthentication(TokenAuthentication):
    """Token authentication that counts wrong tokens per client address and, past
    AXES_FAILURE_LIMIT, refuses every token from that address for the cool-off."""

    def authenticate(self, request):
        if not self._offers_token(request):
            return None
        key = "chacra:token-failures:" + client_address(request._request)
        if cache.get(key, 0) >= settings.AXES_FAILURE_LIMIT:
            raise LockedOut(wait=_cooloff_seconds(), detail="too many wrong tokens from here; try again later")
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            _count_failure(key)
            raise

    def authenticate_credentials(self, key):
        """DRF's, with the user's profile and organization in the same query: every
        request asks the policy for the role and organization next, and two round
        trips fewer per request were measurable under load (scripts/bench load-mix)."""
        model = self.get_model()
        try:
            token = model.objects.select_related("user__chacra_profile__organization").get(key=key)
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token

    def _offers_token(self, request) -> bool:
        parts = (request.META.get("HTTP_AUTHORIZATION") or "").split()
        return bool(parts) and parts[0].lower() == self.keyword.lower()


def _count_failure(key: str) -> None:
    # add() starts the window (the cool-off runs from the first failure); incr() is
    # atomic within one cache. A key expiring between the two starts a new window.
    if not cache.add(key, 1, timeout=_cooloff_seconds()):
        try:
            cache.incr(key)
        except ValueError:
            cache.add(key, 1, timeout=_cooloff_seconds())
