"""Who may see and change what: one table of roles × resources, and a registry of
how each scope narrows each app's querysets.

Every REST view, OGC collection, tile, export, upload, web-map page and command that
acts for a user asks here (DESIGN.md, "Layers": the access policy is shared core).
This module imports no app: it reads the role by attribute
(``user.chacra_profile.role`` / ``.organization_id``; a superuser is an admin), and
each app registers, per resource, the filter that a scope kind means for its
querysets (``register`` — called from the app's ``AppConfig.ready``). So the
question "which rows?" is answered by the app that owns the rows, the question
"which scope?" only here, and SQL paths (tiles, exports) compile their filter from
the same querysets (``sql_filter``) instead of writing it again.

Reading the table: a cell is (read scope, write scope) of one role on one resource.

- ``all``: every row;
- ``own_organization``: the rows of the user's organization (each app says what
  "of" means: a producer's organization, a nursery's operator, a lot's owner …);
- ``supplied_to_me``: a buyer's harvest lots, those shipped to its organization,
  and those shipments (the origin of such a lot is then shown through the lot);
- ``aggregates_only``: no rows, only the protected aggregates (sums over privacy
  units of at least k producers, insights.privacy); a row query answers nothing;
- ``none``: nothing (lists are empty or refused, as each route documents).

Writes are ``all``, ``own_organization`` or ``none``. A command run without a user
(``actor=None``) is the operator and is not asked here: the services skip the check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from django.core.exceptions import EmptyResultSet
from django.db.models import QuerySet

from core.errors import DomainError, Forbidden

# --------------------------------------------------------------------------- roles
ANONYMOUS = "anonymous"  # not signed in, or signed in without a Chacra role
ADMIN, TECHNICIAN, COOPERATIVE, BUYER, INVESTOR = "admin", "technician", "cooperative", "buyer", "investor"
ROLES = (ANONYMOUS, ADMIN, TECHNICIAN, COOPERATIVE, BUYER, INVESTOR)
# The roles a profile can hold (plots.models.UserProfile.Role takes its values from here).
PROFILE_ROLES = ROLES[1:]
# Roles that read and write everything (the programme's own staff).
STAFF = frozenset({ADMIN, TECHNICIAN})

# --------------------------------------------------------------------------- scopes
ALL, OWN, SUPPLIED, AGGREGATES, NONE = "all", "own_organization", "supplied_to_me", "aggregates_only", "none"
SCOPES = (ALL, OWN, SUPPLIED, AGGREGATES, NONE)
# The scopes that filter rows by the user's organization, through a registered filter.
FILTERED = (OWN, SUPPLIED)


class Cell(NamedTuple):
    read: str
    write: str


# ----------------------------------------------------------------- THE TABLE
# Each cell is "read/write"; "-" alone is none/none. Short names: all, own
# (own_organization), supplied (supplied_to_me), aggregates (aggregates_only), - (none).
_RULES: dict[str, tuple[str, str, str, str, str, str]] = {
    #                        anonymous  admin      technician  cooperative  buyer           investor
    # Plots (geometries: REST, OGC, tiles, exports, the web map). A buyer sees the plots
    # of a lot shipped to it only inside that lot's origin (product_lot: supplied).
    "plot":                   ("-",     "all/all", "all/all",  "own/own",   "-",            "-"),
    # Producers (code, name, gender), and apart their national id and phone.
    "producer":               ("-",     "all/all", "all/all",  "own/own",   "-",            "-"),
    "producer_personal_data": ("-",     "all/all", "all/all",  "own/own",   "-",            "-"),
    # Organizations are created by the operator (admin site, commands), not through the API.
    "organization":           ("-",     "all/all", "all/all",  "own/-",     "-",            "-"),
    # Nurseries and plant-material lots: buyers read them all (the genetic origin of
    # what they buy); investors get the grafting aggregates only.
    "nursery":                ("-",     "all/all", "all/all",  "own/own",   "all/-",        "-"),
    "material_lot":           ("-",     "all/all", "all/all",  "own/own",   "all/-",        "-"),
    # Graftings and dispatches: rows for those who see plots, else the protected
    # statistics by region or district (sums over privacy units).
    "grafting":               ("-",     "all/all", "all/all",  "own/own",   "aggregates/-", "aggregates/-"),
    # Harvest lots and shipments: a buyer those shipped to its organization.
    "product_lot":            ("-",     "all/all", "all/all",  "own/own",   "supplied/-",   "-"),
    "shipment":               ("-",     "all/all", "all/all",  "own/own",   "supplied/-",   "-"),
    "facility":               ("-",     "all/all", "all/all",  "own/own",   "-",            "-"),
    # Check verdicts go with their plot; the system writes them.
    "check_result":           ("-",     "all/-",   "all/-",    "own/-",     "-",            "-"),
    # Admin and protected areas: every signed-in role; loaded by commands.
    "reference":              ("-",     "all/-",   "all/-",    "all/-",     "all/-",        "all/-"),
    # Concentration grid, site suggestions: staff unprotected, every other role protected.
    "aggregate":              ("-",     "all/-",   "all/-",    "aggregates/-", "aggregates/-", "aggregates/-"),
    # The raster catalog: every signed-in role; where the files lie on the servers is
    # operational detail, for staff only.
    "raster":                 ("-",     "all/-",   "all/-",    "all/-",     "all/-",        "all/-"),
    "raster_path":            ("-",     "all/-",   "all/-",    "-",         "-",            "-"),
}
_SHORT = {"all": ALL, "own": OWN, "supplied": SUPPLIED, "aggregates": AGGREGATES, "-": NONE}


def _cell(text: str) -> Cell:
    read, _, write = text.partition("/")
    return Cell(_SHORT[read], _SHORT[write or "-"])


TABLE: dict[str, dict[str, Cell]] = {
    resource: {role: _cell(text) for role, text in zip(ROLES, row, strict=True)} for resource, row in _RULES.items()}
RESOURCES = tuple(TABLE)


# --------------------------------------------------------------------------- who
def role_of(user) -> str:
    """The role ``user`` acts in: ANONYMOUS when not signed in or without a profile."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ANONYMOUS
    if getattr(user, "is_superuser", False):
        return ADMIN
    # getattr's default also covers a missing profile (Django's RelatedObjectDoesNotExist
    # is an AttributeError).
    profile = getattr(user, "chacra_profile", None)
    role = getattr(profile, "role", None)
    return role if role in PROFILE_ROLES else ANONYMOUS


def has_role(user) -> bool:
    """Signed in with a Chacra role (a profile, or a superuser)."""
    return role_of(user) != ANONYMOUS


def organization_id_of(user) -> int | None:
    """The organization the user acts for (a cooperative's, a buyer's), read without a query."""
    profile = getattr(user, "chacra_profile", None) if user is not None else None
    return getattr(profile, "organization_id", None)


def cell(user, resource: str) -> Cell:
    try:
        return TABLE[resource][role_of(user)]
    except KeyError:
        raise KeyError(f"no access rule for resource {resource!r}; the resources are: {', '.join(TABLE)}") from None


def scope(user, resource: str) -> str:
    """The read scope of ``user`` on ``resource`` (one of SCOPES)."""
    return cell(user, resource).read


def write_scope(user, resource: str) -> str:
    return cell(user, resource).write


def sees_all(user, resource: str) -> bool:
    """Reads every row: callers may skip a query (and tiles skip the filter)."""
    return scope(user, resource) == ALL


def may_read(user, resource: str) -> bool:
    """Reads some rows of ``resource`` (aggregates alone are not reading rows)."""
    return scope(user, resource) not in (NONE, AGGREGATES)


def is_staff(user) -> bool:
    """The programme's staff (admin, technician): they read and write everything."""
    return role_of(user) in STAFF


def writes_anything(user) -> bool:
    """Whether the role writes any resource: asked before any lookup, so that a role
    without write access learns nothing about which codes exist."""
    return any(row[role_of(user)].write != NONE for row in TABLE.values())


# --------------------------------------------------------------------------- registry
# resource -> scope kind -> (queryset, organization id) -> the narrowed queryset.
Filter = Callable[[QuerySet, int], QuerySet]
_FILTERS: dict[str, dict[str, Filter]] = {}


def register(resource: str, **filters: Filter) -> None:
    """An app says what a filtered scope means for its rows, e.g.
    ``register("plot", own_organization=lambda qs, org: qs.filter(organization_id=org))``.
    Called from the app's AppConfig.ready, so every process has them before a request."""
    if resource not in TABLE:
        raise KeyError(f"no access rule for resource {resource!r}; add its row to core.policy.TABLE first")
    unknown = set(filters) - set(FILTERED)
    if unknown:
        raise KeyError(f"{', '.join(sorted(unknown))}: only {', '.join(FILTERED)} take a filter")
    _FILTERS.setdefault(resource, {}).update(filters)


def visible(user, resource: str, queryset: QuerySet) -> QuerySet:
    """``queryset`` narrowed to the rows of ``resource`` that ``user`` may read."""
    kind = scope(user, resource)
    if kind == ALL:
        return queryset
    if kind not in FILTERED:  # none, aggregates only: no rows
        return queryset.none()
    organization_id = organization_id_of(user)
    if organization_id is None:  # a scope relative to an organization, without one
        return queryset.none()
    try:
        narrow = _FILTERS[resource][kind]
    except KeyError:
        raise LookupError(f"no {kind} filter registered for {resource!r} (the owning app registers it in "
                          "AppConfig.ready)") from None
    return narrow(queryset, organization_id)


def covers(user, resource: str, organization_id: int | None, *, write: bool = False) -> bool:
    """Whether the user's read (or write) scope on ``resource`` covers a record of
    ``organization_id``: ``all``, or ``own_organization`` and it is the user's."""
    kind = write_scope(user, resource) if write else scope(user, resource)
    if kind == ALL:
        return True
    own = organization_id_of(user)
    return kind == OWN and own is not None and own == organization_id


ANY_ORGANIZATION = object()  # may_write's default: "of some organization at all"


def may_write(user, resource: str, organization_id: Any = ANY_ORGANIZATION) -> bool:
    """Whether ``user`` may write ``resource`` for ``organization_id``; without it,
    whether the user may write ``resource`` at all."""
    if organization_id is ANY_ORGANIZATION:
        return write_scope(user, resource) != NONE
    return covers(user, resource, organization_id, write=True)


def require_write(user, resource: str, organization_id: Any = ANY_ORGANIZATION, message: str = "",
                  *, error: DomainError | None = None) -> None:
    """Raise ``error`` (Forbidden(message) by default) unless may_write. A service that
    must not confirm that a record exists passes its NotFound / ValidationFailed."""
    if not may_write(user, resource, organization_id):
        raise error if error is not None else Forbidden(message or f"your role cannot write {resource}")


def require_read(user, resource: str, message: str = "") -> None:
    """Raise Forbidden unless the user reads some rows of ``resource`` (routes that
    refuse a role outright instead of answering an empty list)."""
    if not may_read(user, resource):
        raise Forbidden(message or f"your role cannot read {resource}")


# --------------------------------------------------------------------------- SQL paths
def sql_filter(queryset: QuerySet, alias: str) -> tuple[str, list]:
    """The filter ``queryset`` applies, as SQL on ``alias`` (a hot path's name for the
    same table) with its parameters: the scope of a raw-SQL path compiled from the
    policy's queryset, never written again by hand.

    A filter on the table's own columns comes back as its WHERE clause with the
    column prefix swapped (``p.organization_id = %s``): an index-friendly predicate
    the planner treats as it treated the hand-written one. A filter that joins
    other tables becomes ``alias.pk IN (SELECT pk …)``. ``""`` when nothing is
    filtered. Raises EmptyResultSet for a queryset that can hold no row (.none())."""
    query = queryset.query
    compiler = query.get_compiler(using=queryset.db)
    if not query.where:
        return "", []
    table = query.get_initial_alias()
    joined = [a for a, j in query.alias_map.items() if a != table and query.alias_refcount.get(a)]
    if not joined:
        where, params = compiler.compile(query.where)
        column_prefix = f"{compiler.quote_name_unless_alias(table)}."
        return where.replace(column_prefix, f"{alias}."), list(params)
    pk = queryset.model._meta.pk.column
    # No ordering: with DISTINCT it would add its columns to the subquery's one.
    inner, params = queryset.order_by().values("pk").query.sql_with_params()
    return f"{alias}.{pk} IN ({inner})", list(params)


# --------------------------------------------------------------------------- reading it
def missing_filters() -> list[tuple[str, str]]:
    """(resource, scope kind) pairs the table uses and no app has registered a filter
    for: what visible() would refuse with LookupError (a test keeps this empty)."""
    used = {(resource, c.read) for resource, row in TABLE.items() for c in row.values() if c.read in FILTERED}
    return sorted(pair for pair in used if pair[1] not in _FILTERS.get(pair[0], {}))


def describe() -> str:
    """The table as text, one line per resource: ``read/write`` per role."""
    short = {scope: name for name, scope in _SHORT.items()}
    width = max(map(len, RESOURCES)) + 2
    lines = ["".ljust(width) + "".join(role.ljust(22) for role in ROLES)]
    for resource, row in TABLE.items():
        cells = (f"{short[row[role].read]} / {short[row[role].write]}".ljust(22) for role in ROLES)
        lines.append(resource.ljust(width) + "".join(cells))
    return "\n".join(line.rstrip() for line in lines)


__all__ = ["ALL", "OWN", "SUPPLIED", "AGGREGATES", "NONE", "ROLES", "RESOURCES", "TABLE", "EmptyResultSet",
           "role_of", "has_role", "organization_id_of", "scope", "write_scope", "sees_all", "may_read", "is_staff",
           "writes_anything", "register", "visible", "covers", "may_write", "require_write", "require_read",
           "sql_filter", "missing_filters", "describe"]
