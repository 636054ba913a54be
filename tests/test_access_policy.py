"""core.policy: the one table of roles × resources, the scopes each app registers,
and a guard that no other module grows its own copy of the rule.

(a) the table covers every role × resource with known scopes, and every scope it
    uses has a filter registered by the owning app;
(b) on a small world (tests/security/conftest.py: two cooperatives, an exporter,
    one record of each kind, personas for every role) ``visible()`` for each role
    and resource returns what the role must see, written out by hand below, and what
    the selectors, querysets and SQL paths that serve it return;
(c) no module outside core/policy.py compares role names.
"""

from __future__ import annotations

import ast
import contextlib
from datetime import date
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection

from api import tiles
from api.views import concentration as concentration_view
from core import policy
from core.errors import Forbidden
from nurseries import selectors as nursery_selectors
from nurseries import services as nursery_services
from nurseries.models import Clone, Grafting, MaterialLot, Nursery
from plots import roles, selectors
from plots.models import AdminArea, CheckResult, Organization, Plot, Producer
from tests.security.conftest import DAY, build_world
from traceability import selectors as lot_selectors
from traceability import services as lot_services
from traceability.models import Facility, ProductLot, Shipment

ROLES = ("anonymous", "admin", "technician", "cooperative", "buyer", "investor")
RESOURCES = ("plot", "producer", "producer_personal_data", "organization", "nursery", "material_lot", "grafting",
             "product_lot", "shipment", "facility", "check_result", "reference", "aggregate", "raster",
             "raster_path")
ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- (a)
def test_the_table_covers_every_role_and_resource():
    print("\n" + policy.describe())
    assert policy.ROLES == ROLES
    assert set(policy.TABLE) == set(RESOURCES)
    for resource, row in policy.TABLE.items():
        assert set(row) == set(ROLES), resource
        for role, cell in row.items():
            assert cell.read in policy.SCOPES, (resource, role)
            assert cell.write in (policy.ALL, policy.OWN, policy.NONE), (resource, role)
        assert row["anonymous"] == (policy.NONE, policy.NONE), resource  # nothing without signing in
        assert row["admin"] == row["technician"], resource  # the staff roles are one column


def test_every_scope_the_table_uses_has_a_registered_filter(db):
    assert policy.missing_filters() == []


def test_an_unknown_resource_or_filter_is_refused():
    with pytest.raises(KeyError):
        policy.scope(AnonymousUser(), "plots")
    with pytest.raises(KeyError):
        policy.register("plot", everything=lambda qs, org: qs)


# ----------------------------------------------------------------------------- (b)
@pytest.fixture
def world(db):
    """The security suite's world, plus what it lacks for these resources: a facility
    per cooperative, a grafting on each plot, and coop B's lot shipped to a second buyer."""
    w = build_world()
    org_a, org_b = (Organization.objects.get(code=c) for c in ("sec-coop-a", "sec-coop-b"))
    other_buyer = Organization.objects.create(code="sec-exporter-2", name="Exportadora Tau", kind="exporter")
    for org in (org_a, org_b):
        lot_services.facility_upsert(code=f"{org.code}-centre", name="Centro", kind="collection_centre",
                                     organization=org)
    lot_services.shipment_upsert(code="sec-ship-b", seller=org_b, buyer=other_buyer,
                                 lots=[ProductLot.objects.get(code="sec-lot-b")], date=DAY)
    clone = Clone.objects.get(code="ICS-95")
    for plot in Plot.objects.filter(code__in=("sec-plot-a", "sec-plot-b")):
        nursery_services.grafting_create(code=f"{plot.code}-g", plot=plot, grafted_on=date(2025, 1, 10),
                                         clone=clone, grafts=10, grafted_ha=0.1)
    w.users["anonymous"] = AnonymousUser()
    w.org_a = org_a
    return w


def _codes(qs) -> set[str]:
    return set(qs.values_list("code", flat=True))


# What each role must see in the world, by hand: resource -> role -> codes. Roles
# missing from a row see nothing. "A" is coop A (the cooperative persona's), "B" coop B.
EXPECTED: dict[str, dict[str, set[str]]] = {
    "plot": {"staff": {"sec-plot-a", "sec-plot-b", "sec-point-a"}, "cooperative": {"sec-plot-a", "sec-point-a"}},
    "producer": {"staff": {"sec-prod-a", "sec-prod-b"}, "cooperative": {"sec-prod-a"}},
    "producer_personal_data": {"staff": {"sec-prod-a", "sec-prod-b"}, "cooperative": {"sec-prod-a"}},
    "organization": {"staff": {"sec-coop-a", "sec-coop-b", "sec-exporter", "sec-exporter-2"},
                     "cooperative": {"sec-coop-a"}},
    "nursery": {"staff": {"sec-nursery-a", "sec-nursery-b"}, "cooperative": {"sec-nursery-a"},
                "buyer": {"sec-nursery-a", "sec-nursery-b"}},
    "material_lot": {"staff": {"sec-mlot-a", "sec-mlot-b"}, "cooperative": {"sec-mlot-a"},
                     "buyer": {"sec-mlot-a", "sec-mlot-b"}},
    "grafting": {"staff": {"sec-plot-a-g", "sec-plot-b-g"}, "cooperative": {"sec-plot-a-g"}},
    "product_lot": {"staff": {"sec-lot-a", "sec-lot-conf", "sec-lot-b"}, "cooperative": {"sec-lot-a", "sec-lot-conf"},
                    "buyer": {"sec-lot-a", "sec-lot-conf"}},
    "shipment": {"staff": {"sec-ship-a", "sec-ship-conf", "sec-ship-b"},
                 "cooperative": {"sec-ship-a", "sec-ship-conf"}, "buyer": {"sec-ship-a", "sec-ship-conf"}},
    "facility": {"staff": {"sec-coop-a-centre", "sec-coop-b-centre"}, "cooperative": {"sec-coop-a-centre"}},
}
MODELS = {"plot": Plot, "producer": Producer, "producer_personal_data": Producer, "organization": Organization,
          "nursery": Nursery, "material_lot": MaterialLot, "grafting": Grafting, "product_lot": ProductLot,
          "shipment": Shipment, "facility": Facility}


def _expected(resource: str, role: str) -> set[str]:
    row = EXPECTED[resource]
    return row.get("staff" if role in ("admin", "technician") else role, set())


def _or_forbidden(read):
    """What a selector answers, with a refusal as the empty set (the policy's none)."""
    try:
        return _codes(read())
    except Forbidden:
        return set()


# Each resource's existing readers: what the API, importers and services serve it by.
SELECTORS = {
    "plot": lambda u: _codes(Plot.objects.visible_to(u)) | _codes(selectors.plot_list(user=u, status="all")),
    "producer": lambda u: _codes(selectors.producer_list(user=u)),
    "producer_personal_data": lambda u: {p.code for p in Producer.objects.all() if roles.sees_personal_data_of(u, p)},
    "organization": lambda u: _codes(selectors.organization_list(user=u)),
    "nursery": lambda u: _or_forbidden(lambda: nursery_selectors.nursery_list(user=u)),
    "material_lot": lambda u: _or_forbidden(lambda: nursery_selectors.lot_list(user=u)),
    # Graftings are read through the plot (genetics) by those who may see plots.
    "grafting": lambda u: _codes(Grafting.objects.filter(plot__in=Plot.objects.visible_to(u))),
    "product_lot": lambda u: _codes(ProductLot.objects.visible_to(u))
    | _or_forbidden(lambda: lot_selectors.lot_list(user=u)),
    # The lot detail's shipments, over every lot the role sees.
    "shipment": lambda u: {s.code for lot in ProductLot.objects.visible_to(u)
                           for s in policy.visible(u, "shipment", lot.shipments.all())},
    # The traceability importer resolves facilities among the actor's organizations.
    "facility": lambda u: _codes(Facility.objects.filter(organization__in=selectors.organization_list(user=u))),
}


@pytest.mark.parametrize("resource", sorted(EXPECTED))
def test_visible_is_what_each_role_must_see_and_what_the_selectors_serve(world, resource):
    for role in ROLES:
        user = world.users[role]
        seen = _codes(policy.visible(user, resource, MODELS[resource].objects.all()))
        assert seen == _expected(resource, role), (resource, role)
        assert SELECTORS[resource](user) == seen, (resource, role)


def test_check_results_follow_their_plot(world):
    checked = set(CheckResult.objects.values_list("plot__code", flat=True))  # every plot with a result
    assert {"sec-plot-a", "sec-plot-b"} <= checked
    for role in ROLES:
        user = world.users[role]
        seen = set(policy.visible(user, "check_result", CheckResult.objects.all()).values_list("plot__code", flat=True))
        assert seen == _expected("plot", role) & checked, role


def test_reference_layers_aggregates_and_rasters_by_role(world):
    for role in ROLES:
        user = world.users[role]
        signed_in = role != "anonymous"
        everything = AdminArea.objects.count()
        assert policy.visible(user, "reference", AdminArea.objects.all()).count() == (everything if signed_in else 0)
        assert policy.may_read(user, "raster") == signed_in
        assert policy.may_read(user, "raster_path") == (role in ("admin", "technician"))
        # The concentration map's protected form is for every role that does not see it all.
        assert concentration_view.protected(user) == (policy.scope(user, "aggregate") != policy.ALL)
        assert concentration_view.protected(user) == (role not in ("admin", "technician"))
        assert policy.scope(user, "grafting") == {"admin": policy.ALL, "technician": policy.ALL,
                                                  "cooperative": policy.OWN, "anonymous": policy.NONE
                                                  }.get(role, policy.AGGREGATES)


def test_writes_follow_the_table(world):
    org_a, org_b = world.org_a.id, Organization.objects.get(code="sec-coop-b").id
    for role in ROLES:
        user = world.users[role]
        staff, coop = role in ("admin", "technician"), role == "cooperative"
        assert roles.can_write_at_all(user) == (staff or coop)
        for resource in ("plot", "producer", "nursery", "material_lot", "grafting", "product_lot", "shipment",
                         "facility"):
            assert policy.may_write(user, resource) == (staff or coop), (resource, role)
            assert policy.may_write(user, resource, org_a) == (staff or coop), (resource, role)
            assert policy.may_write(user, resource, org_b) == staff, (resource, role)
        with pytest.raises(Forbidden) if not staff else contextlib.nullcontext():
            policy.require_write(user, "plot", org_b, "not yours")


def test_tiles_take_the_compiled_scope_of_the_same_queryset(world):
    """Staff: no filter at all; a cooperative: its organization's plots by the plain
    column predicate (index-friendly, as the hand-written filter was); the others 403.
    Run as SQL, the filter selects exactly the plots visible() returns."""
    assert tiles.plot_scope(world.users["admin"]) == ("", {})
    sql, params = tiles.plot_scope(world.users["cooperative"])
    assert sql == 'AND p."organization_id" = %(scope_0)s' and params == {"scope_0": world.org_a.id}
    with connection.cursor() as cur:
        cur.execute(f"SELECT p.code FROM plots_plot p WHERE true {sql}", params)
        assert {r[0] for r in cur.fetchall()} == _expected("plot", "cooperative")
    for role in ("anonymous", "buyer", "investor"):
        with pytest.raises(Forbidden):
            tiles.plot_scope(world.users[role])


def test_a_joined_scope_compiles_to_a_subquery(world):
    buyer = world.users["buyer"]
    sql, params = policy.sql_filter(policy.visible(buyer, "product_lot", ProductLot.objects.all()), alias="l")
    assert sql.startswith("l.id IN (SELECT")
    with connection.cursor() as cur:
        cur.execute(f"SELECT l.code FROM traceability_productlot l WHERE {sql}", params)
        assert {r[0] for r in cur.fetchall()} == _expected("product_lot", "buyer")


# ----------------------------------------------------------------------------- (c)
ROLE_NAMES = {"admin", "technician", "cooperative", "buyer", "investor", "anonymous"}
ROLE_CONSTANTS = {name.upper() for name in ROLE_NAMES}
# Where role names may be compared, and why.
ALLOWED = {
    "core/policy.py": "the policy itself",
    # The demo's admin user also gets Django's is_staff (the admin site), which is
    # Django's flag, not Chacra's access policy.
    "chacra/management/commands/demo_data.py": "demo users",
}
SCANNED = ("api", "chacra", "core", "plots", "nurseries", "traceability", "insights", "screening")


def _is_role_constant(node: ast.AST) -> bool:
    """``Role.COOPERATIVE``, ``roles.Role.BUYER``, ``policy.INVESTOR`` …"""
    return isinstance(node, ast.Attribute) and node.attr in ROLE_CONSTANTS


def _name(node: ast.AST) -> str | None:
    return getattr(node, "id", None) or getattr(node, "attr", None)


def _mentions_roles(node: ast.AST) -> bool:
    """A role constant or name, a set of roles, or a role_of() call, anywhere in ``node``."""
    for sub in ast.walk(node):
        if _is_role_constant(sub) or (isinstance(sub, ast.Constant) and sub.value in ROLE_NAMES):
            return True
        if isinstance(sub, (ast.Name, ast.Attribute)) and _name(sub) in ("STAFF_ROLES", "PERSONAL_DATA_ROLES", "STAFF"):
            return True
        if isinstance(sub, ast.Call) and _name(sub.func) == "role_of":
            return True
    return False


def _role_comparisons(source: str, label: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename=label)):
        if isinstance(node, ast.Compare) and _mentions_roles(node):
            found.append(f"{label}:{node.lineno}: {ast.unparse(node)}")
        elif _is_role_constant(node) and _name(node.value) == "Role":  # the old choices, anywhere
            found.append(f"{label}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_outside_the_policy_compares_role_names():
    """A new route asks core.policy (scope, visible, may_write …); it does not test
    ``role == Role.COOPERATIVE`` or ``role in STAFF_ROLES`` itself."""
    assert all((ROOT / path).exists() for path in ALLOWED), "an allowed module moved: update ALLOWED"
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative in ALLOWED:
                continue
            found += _role_comparisons(path.read_text(), relative)
    assert found == [], "role checks outside core.policy:\n" + "\n".join(found)


def test_the_guard_catches_the_old_spellings():
    old = """
def f(user, role):
    a = roles.role_of(user) == roles.Role.BUYER
    b = role in roles.STAFF_ROLES | {Role.COOPERATIVE}
    c = profile.role != "investor"
    d = policy.role_of(user) in (policy.ADMIN, policy.TECHNICIAN)
"""
    assert len({line.split(":")[1] for line in _role_comparisons(old, "sample.py")}) == 4
