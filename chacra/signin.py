"""Sign-in for people and programs: the web map's login form, and the API's three
ways to present a credential, each with a lockout for repeated failures.

The API (REST, OGC API – Features, vector tiles, exports: every DRF view) accepts

* ``Authorization: Token <key>`` and ``Authorization: Bearer <key>`` — the same
  API token under two spellings (Bearer is what tools without custom headers but
  with an "API key / bearer token" field send);
* ``Authorization: Basic base64(username:secret)``, the one scheme every QGIS LTR
  and GDAL can send from their own interface, where the secret is the user's API
  token key (recommended: revocable, and checked with one query) or the account
  password (hashed on every request: slow by design).

Two counters refuse guessing, each past AXES_FAILURE_LIMIT failures for the
cool-off (CHACRA_SIGNIN_COOLOFF_MINUTES), the right credential included:

* django-axes counts failed passwords in the database per user name and client
  address: the login form, the admin and the Basic password path all go through
  ``authenticate()``, which its backend (AxesStandaloneBackend) guards.
* Wrong tokens — ``Token``/``Bearer`` keys, Basic secrets shaped like a token key
  (40 hex digits) that are no token of that user, malformed headers — are counted
  per client address in the cache, which refuses every token from that address.
  The cache, not axes' table: a lock check in the database would cost a query on
  every API request (the list endpoints pin their query counts), and a token is
  160 random bits, so even a per-worker count (the default local-memory cache)
  leaves guessing hopeless; a shared cache (CACHES) makes the count exact.

A Basic secret that is not shaped like a token cannot be one, so it costs no token
query and never counts against the address's tokens: a user mistyping a password
in QGIS locks out that user name from that address, not the office's scripts.

Requests are transactions (ATOMIC_REQUESTS) and the API's error handler rolls a
failed one back — which would undo axes' failure records along with it. Refusals
of the Basic password path therefore carry ``keeps_sign_in_records`` and
the API's error handler (api.errors.exception_handler) keeps the
transaction: authentication runs before any view code, so those records are all
it holds.

Every refusal is logged (logger ``chacra.signin``) with the user name, if any,
and the client address; never with the secret.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import unicodedata
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.core.cache import cache
from django.shortcuts import render
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, TokenAuthentication

from api.errors import CHALLENGE, REALM, error_response

log = logging.getLogger("chacra.signin")

# CHALLENGE (api.errors): Basic first, as Qt (QGIS) only looks at the start of the
# header and libcurl (GDAL, curl) reads every scheme of the list.
# To a page's own scripts (the web map's fetch and tile requests, Swagger UI), whose
# 401 must not make the browser pop up its own password dialog.
SCRIPT_CHALLENGE = f'Token realm="{REALM}"'

# What rest_framework.authtoken generates: 20 random bytes in lower-case hex.
_TOKEN_KEY = re.compile(r"[0-9a-f]{40}")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


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


class SignInRefused(exceptions.AuthenticationFailed):
    """401: the credentials are wrong, malformed or the user's account is inactive."""


def _refused(message: str, *, keep_records: bool = False) -> SignInRefused:
    exc = SignInRefused(message)
    exc.keeps_sign_in_records = keep_records
    return exc


def _locked_out(detail: str, *, keep_records: bool = False) -> LockedOut:
    exc = LockedOut(wait=_cooloff_seconds(), detail=detail)
    exc.keeps_sign_in_records = keep_records
    return exc


# ------------------------------------------------------------------ the wrong-token counter (cache)

def _token_failures_key(address: str) -> str:
    return "chacra:token-failures:" + address


def _tokens_locked(address: str) -> bool:
    return cache.get(_token_failures_key(address), 0) >= settings.AXES_FAILURE_LIMIT


def _count_token_failure(address: str) -> None:
    # add() starts the window (the cool-off runs from the first failure); incr() is
    # atomic within one cache. A key expiring between the two starts a new window.
    key = _token_failures_key(address)
    if not cache.add(key, 1, timeout=_cooloff_seconds()):
        try:
            cache.incr(key)
        except ValueError:
            cache.add(key, 1, timeout=_cooloff_seconds())


def _token_with_user(**lookup):
    """The token, with its user's profile and organization in the same query: every
    request asks the policy for the role and organization next, and two round
    trips fewer per request were measurable under load (scripts/bench load-mix)."""
    from rest_framework.authtoken.models import Token

    return Token.objects.select_related("user__chacra_profile__organization").filter(**lookup).first()


# ------------------------------------------------------------------ the schemes

class ChallengeMixin:
    """The WWW-Authenticate challenge of every 401 (DRF takes the first class's)."""

    def authenticate_header(self, request):
        mode = request.META.get("HTTP_SEC_FETCH_MODE", "")
        return SCRIPT_CHALLENGE if mode and mode != "navigate" else CHALLENGE


class LockoutTokenAuthentication(ChallengeMixin, TokenAuthentication):
    """``Authorization: Token <key>``. Counts wrong tokens per client address and, past
    AXES_FAILURE_LIMIT, refuses every token from that address for the cool-off."""

    def authenticate(self, request):
        if not self._offers_token(request):
            return None
        address = client_address(request._request)
        if _tokens_locked(address):
            raise _locked_out("too many wrong tokens from here; try again later")
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            _count_token_failure(address)
            log.warning("refused %s credentials from %s", self.keyword, address)
            raise

    def authenticate_credentials(self, key):
        token = _token_with_user(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token

    def _offers_token(self, request) -> bool:
        parts = (request.META.get("HTTP_AUTHORIZATION") or "").split()
        return bool(parts) and parts[0].lower() == self.keyword.lower()


class LockoutBearerAuthentication(LockoutTokenAuthentication):
    """``Authorization: Bearer <key>``: the API token again, counted the same way."""

    keyword = "Bearer"


class LockoutBasicAuthentication(ChallengeMixin, BaseAuthentication):
    """``Authorization: Basic base64(username:secret)``; the secret is the user's API
    token key or the account password. See the module's docstring for the counting."""

    def authenticate(self, request):
        parts = (request.META.get("HTTP_AUTHORIZATION") or "").split()
        if not parts or parts[0].lower() != "basic":
            return None
        address = client_address(request._request)
        try:
            username, secret = decode_basic(parts[1:])
        except ValueError as exc:
            _count_token_failure(address)
            log.warning("refused malformed Basic credentials from %s: %s", address, exc)
            raise _refused(f"malformed Basic credentials: {exc}") from None
        if request.method not in _SAFE_METHODS and _cross_site(request):
            # A browser that once answered the Basic dialog sends the password with
            # any page's form; an API client never sends these headers.
            log.warning("refused Basic credentials of user %r from %s: a cross-site browser request",
                        username, address)
            raise exceptions.PermissionDenied("a browser may not send Basic credentials from another site")

        looks_like_token = bool(_TOKEN_KEY.fullmatch(secret))
        if looks_like_token:
            if _tokens_locked(address):
                log.warning("refused Basic credentials of user %r from %s: locked out (tokens)", username, address)
                raise _locked_out("too many wrong tokens from here; try again later")
            token = _token_with_user(key=secret, user__username=username)
            if token is not None:
                if token.user.is_active:
                    return token.user, token
                _count_token_failure(address)
                log.warning("refused Basic credentials of user %r from %s: inactive user", username, address)
                raise _refused("User inactive or deleted.")

        django_request = request._request
        user = authenticate(django_request, username=username, password=secret)
        if getattr(django_request, "axes_locked_out", False):
            if looks_like_token:
                _count_token_failure(address)
            log.warning("refused Basic credentials of user %r from %s: locked out", username, address)
            raise _locked_out("too many failed sign-ins from here; try again later", keep_records=True)
        if user is None:
            if looks_like_token:
                _count_token_failure(address)
            log.warning("refused Basic credentials of user %r from %s", username, address)
            raise _refused("Invalid username, token or password.", keep_records=True)
        if settings.AXES_RESET_ON_SUCCESS and address:
            from axes.utils import reset

            reset(ip=address, username=username)
        return user, None


def decode_basic(credentials: list[str]) -> tuple[str, str]:
    """The user name and secret of a Basic header's credentials (RFC 7617, UTF-8);
    ValueError saying what is wrong with them."""
    if len(credentials) != 1:
        raise ValueError("expected one base64 word after 'Basic'" if credentials else "no credentials")
    try:
        raw = base64.b64decode(credentials[0].encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError("not base64") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    username, colon, secret = text.partition(":")
    if not colon:
        raise ValueError("no ':' between user name and secret")
    if not username or not secret:
        raise ValueError("empty user name or secret")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ValueError("control characters")
    user_model = get_user_model()
    if len(username) > user_model._meta.get_field(user_model.USERNAME_FIELD).max_length:
        raise ValueError("user name too long")
    return username, secret


def _cross_site(request) -> bool:
    site = request.META.get("HTTP_SEC_FETCH_SITE")
    if site:
        return site not in ("same-origin", "none")
    # Browsers without Sec-Fetch-Site still send Origin with every cross-origin write.
    origin = request.META.get("HTTP_ORIGIN")
    return bool(origin) and urlsplit(origin).netloc != request.get_host()


# ------------------------------------------------------------------ the API's error answers
