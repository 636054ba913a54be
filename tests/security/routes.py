"""Every URL pattern of the URL configuration, with its path parameters filled from
the security world (tests/security/conftest.py).

A route is known by its name (``plot-detail``, ``admin:index``) or, when unnamed,
by its full pattern. Unnamed patterns that only add a trailing slash to a named
one are aliases: they are requested too, and must answer as the named one does.
A route whose parameters can name several kinds of record (a tile layer, an OGC
collection, a cooperative's own plot or another's) is requested once per
*variant*, and each variant needs its own expectation: a tile layer or
collection registered later, without one, fails the matrix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern


@dataclass(frozen=True)
class Route:
    pattern: str  # the full pattern, prefixes joined ("api/v1/plots/<slug:code>")
    name: str | None  # namespaced name, or None
    callback: object = field(compare=False, repr=False, default=None)

    @property
    def key(self) -> str:
        return self.name or self.pattern

    @property
    def params(self) -> list[str]:
        return [a or b for a, b in re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", self.pattern)]

    @property
    def methods(self) -> set[str]:
        """Write methods an API view implements (DRF views; Django's form views, whose
        POSTs are CSRF-protected forms, are covered by the hostile corpus)."""
        view = getattr(self.callback, "cls", None)
        if view is None:
            return set()
        return {m.upper() for m in ("post", "put", "patch", "delete") if hasattr(view, m)}


def _walk(patterns, prefix: str = "", namespace: str | None = None):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}:{p.namespace}" if namespace and p.namespace else (p.namespace or namespace)
            yield from _walk(p.url_patterns, prefix + _text(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else p.name
            yield Route(prefix + _text(p.pattern), name, p.callback)


def _text(pattern) -> str:
    text = str(pattern)
    if isinstance(pattern, RegexPattern):
        text = text.removeprefix("^").removesuffix("$")
    return text


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns))


def alias_of(route: Route, named: dict[str, Route]) -> Route | None:
    """The named route this unnamed one repeats with a trailing slash, if any."""
    if route.name is not None or not route.pattern.endswith("/"):
        return None
    return named.get(route.pattern[:-1])


# ------------------------------------------------------------------ filling parameters


def tile_xy(z: int, lon: float, lat: float) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@dataclass(frozen=True)
class Request:
    variant: str | None
    path: str  # with a leading slash and any query string


def _fill(pattern: str, values: dict[str, str]) -> str:
    def sub_route(m):
        return values[m.group(1)]

    text = re.sub(r"<(?:\w+:)?(\w+)>", sub_route, pattern)
    # (?P<name>…) groups of regex patterns; the admin's app_list and catch-all have no nested groups.
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], text)
    return "/" + text


# The record kind a ``code`` names, by the first path segment after /api/v1/.
_CODE_KIND = {"plots": "plot", "producers": "producer", "organizations": "organization", "nurseries": "nursery",
              "material-lots": "material-lot", "lots": "lot"}


def requests_for(route: Route, codes: dict[str, str], *, tile_layers, ogc_collections, export_layers,
                 import_kinds) -> list[Request]:
    """The requests that exercise ``route``: one per variant of its path parameters."""
    params = set(route.params)
    base = {"object_id": "1", "content_type_id": "1", "id": codes["user:id"], "app_label": "plots",
            "url": "no-such-page/", "uidb64": "MQ", "token": "set-password"}
    if not params - set(base):
        return [Request(None, _fill(route.pattern, base))]
    if params == {"code"}:
        segment = route.pattern.removeprefix("api/v1/").split("/")[0]
        kind = _CODE_KIND[segment]
        variants = sorted(k.split(":", 1)[1] for k in codes if k.startswith(kind + ":"))
        return [Request(v, _fill(route.pattern, {"code": codes[f"{kind}:{v}"]})) for v in variants]
    if params == {"layer"} and route.pattern.startswith("api/v1/exports"):
        return [Request(layer, _fill(route.pattern, {"layer": layer}) + "?format=geojson") for layer in export_layers]
    if params == {"layer"}:
        return [Request(layer, _fill(route.pattern, {"layer": layer})) for layer in tile_layers]
    if params == {"layer", "z", "x", "y"}:
        x, y = tile_xy(10, -76.41, -8.21)
        return [Request(layer, _fill(route.pattern, {"layer": layer, "z": "10", "x": str(x), "y": str(y)}))
                for layer in tile_layers]
    if params == {"kind"}:
        return [Request(kind, _fill(route.pattern, {"kind": kind})) for kind in import_kinds]
    if params == {"collection_id"}:
        return [Request(c, _fill(route.pattern, {"collection_id": c})) for c in ogc_collections]
    if params == {"collection_id", "feature_id"}:
        out = []
        for c in ogc_collections:
            for variant, fid in _feature_ids(c, codes):
                out.append(Request(f"{c}:{variant}", _fill(route.pattern, {"collection_id": c, "feature_id": fid})))
        return out
    raise AssertionError(f"the security matrix does not know how to fill {route.pattern!r}: "
                         f"add its parameters to tests/security/routes.py")


def _feature_ids(collection: str, codes: dict[str, str]) -> list[tuple[str, str]]:
    if collection == "plots":
        return [("own", codes["plot:own"]), ("other", codes["plot:other"])]
    if collection == "plot-points":
        return [("own", codes["plot-point:own"])]
    if collection == "nurseries":
        return [("own", codes["nursery:own"]), ("other", codes["nursery:other"])]
    if collection == "protected-areas":
        return [("one", codes["protected-area"])]
    if collection == "districts":
        return [("one", f"{codes['district']}-2007")]
    return [("none", "no-such-feature")]
