"""Reads, scoped to the acting user.

- admin, technician: everything;
- cooperative: the nurseries its organization (or one of its producers) runs, the
  lots those nurseries produced, budwood cut from its plots and lots dispatched to
  its plots; lineage beyond that shows lots but not other organizations' plots;
- buyer: every nursery and lot, read-only; plots only as the plots API shows them
  to buyers (not at all), and never a producer's personal data;
- investor: aggregates only (grafting statistics by region, district or clone);
  anything that lists nurseries, lots or plots is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q, QuerySet

from nurseries import lineage, stats
from nurseries.models import Dispatch, Grafting, MaterialLot, Nursery
from plots import roles
from plots.errors import Forbidden, NotFound, ValidationFailed
from plots.models import Plot
from plots.selectors import plot_get, region_prefix

Role = roles.Role
INVESTOR_REFUSAL = "investors see aggregates only (/api/v1/stats/grafting), not nurseries, lots or plots"


def _reader_role(user) -> str:
    role = roles.role_of(user)
    if role == Role.INVESTOR:
        raise Forbidden(INVESTOR_REFUSAL)
    if role is None:
        raise Forbidden("your account has no role in Chacra")
    return role


def _org_id(user) -> int | None:
    org = roles.organization_of(user)
    return org.id if org else None


def nurseries_of_organization(organization_id: int | None) -> Q:
    return Q(operator_organization_id=organization_id) | Q(operator_producer__organization_id=organization_id)


def lots_of_organization(organization_id: int | None) -> Q:
    """Lots an organization answers for or received: its nurseries' lots, budwood cut
    from its plots, and lots dispatched to its plots or to its nurseries (budwood
    sent to a cooperative's nursery is grafted by that cooperative)."""
    received = Dispatch.objects.filter(lot=OuterRef("pk")).filter(
        Q(to_plot__organization_id=organization_id)
        | Q(to_nursery__operator_organization_id=organization_id)
        | Q(to_nursery__operator_producer__organization_id=organization_id))
    return (Q(nursery__operator_organization_id=organization_id)
            | Q(nursery__operator_producer__organization_id=organization_id)
            | Q(source_plot__organization_id=organization_id) | Q(Exists(received)))


def nursery_list(*, user, kind: str | None = None, district: str | None = None,
                 region: str | None = None) -> QuerySet[Nursery]:
    qs = Nursery.objects.all()
    if _reader_role(user) == Role.COOPERATIVE:
        qs = qs.filter(nurseries_of_organization(_org_id(user)))
    if kind:
        qs = qs.filter(kind=kind)
    if district:
        qs = qs.filter(district__ubigeo=district)
    if region:
        qs = qs.filter(district__ubigeo__startswith=region_prefix(region))
    return qs.order_by("id")


def nursery_get(*, user, code: str) -> Nursery:
    found = (nursery_list(user=user).select_related("operator_organization", "operator_producer", "district")
             .filter(code=code).first())
    if found is None:
        raise NotFound(f"no nursery with code {code!r} that you can see")
    return found


def nursery_output(nurseries: list[Nursery]) -> dict[int, stats.NurseryOutput]:
    return stats.nursery_output([n.id for n in nurseries])


def lot_list(*, user, nursery: str | None = None, kind: str | None = None, clone: str | None = None
             ) -> QuerySet[MaterialLot]:
    qs = MaterialLot.objects.select_related("clone", "nursery", "source_plot")
    if _reader_role(user) == Role.COOPERATIVE:
        qs = qs.filter(lots_of_organization(_org_id(user)))
    if nursery:
        qs = qs.filter(nursery__code=nursery)
    if kind:
        qs = qs.filter(kind=kind)
    if clone:
        qs = qs.filter(clone__code=clone)
    return qs.order_by("code")


def lot_get(*, user, code: str) -> MaterialLot:
    found = lot_list(user=user).filter(code=code).first()
    if found is None:
        raise NotFound(f"no material lot with code {code!r} that you can see")
    return found


def visible_plot_ids(user, plot_ids: set[int]) -> set[int]:
    """The subset of ``plot_ids`` the user may see (the plots API's rule)."""
    if roles.role_of(user) in roles.STAFF_ROLES:
        return set(plot_ids)  # staff see every plot: no need to ask the database
    return set(Plot.objects.visible_to(user).filter(id__in=plot_ids).values_list("id", flat=True))


@dataclass
class Lineage:
    root: MaterialLot
    direction: str
    lots: list[lineage.Node]
    edges: list[lineage.Edge]
    reached: list[lineage.Reach] = field(default_factory=list)  # direction "down" only
    plot_ids: set[int] = field(default_factory=set)  # every plot involved: reached, and mother plots
    visible_plot_ids: set[int] = field(default_factory=set)


def lot_lineage(*, user, code: str, direction: str) -> Lineage:
    """The lots above ("up": what the lot was made from, back to seed and mother plots)
    or below ("down": what was made from it, and every plot it reached) a lot."""
    if direction not in ("up", "down"):
        raise ValidationFailed("direction must be up (ancestors) or down (descendants)", field="direction")
    root = lot_get(user=user, code=code)
    lots, edges = lineage.closure(root.id, direction)
    result = Lineage(root=root, direction=direction, lots=lots, edges=edges)
    result.plot_ids = {lot.source_plot_id for lot in lots if lot.source_plot_id}
    if direction == "down":
        result.reached = lineage.plots_reached(root.id)
        result.plot_ids |= {r.plot_id for r in result.reached}
    result.visible_plot_ids = visible_plot_ids(user, result.plot_ids)
    return result


@dataclass
class Genetics:
    plot: Plot
    origin: list[lineage.OriginRow]
    edges: list[lineage.Edge]
    graftings: list[Grafting]
    dispatches: list[Dispatch]
    mother_plots: dict[int, Plot]
    visible_plot_ids: set[int]


def plot_genetics(*, user, code: str) -> Genetics:
    """The genetic origin of a plot: lots that reached it and their ancestry, clones,
    nurseries and mother plots, with its graftings and deliveries."""
    _reader_role(user)
    plot = plot_get(user=user, code=code)
    origin, edges = lineage.genetic_origin(plot.id)
    mother_ids = {row.source_plot_id for row in origin if row.source_plot_id}
    return Genetics(
        plot=plot, origin=origin, edges=edges,
        graftings=list(plot.graftings.select_related("clone", "budwood_lot").order_by("grafted_on", "code")),
        dispatches=list(plot.material_dispatches.select_related("lot", "lot__clone", "lot__nursery")
                        .order_by("dispatched_on", "code")),
        mother_plots={p.id: p for p in Plot.objects.filter(id__in=mother_ids).select_related("organization")},
        visible_plot_ids=visible_plot_ids(user, mother_ids),
    )


def grafting_stats(*, user, by: str) -> list[stats.GraftingRow]:
    """Grafted and planted hectares by region, district, clone or plot. Cooperative
    users get their organization's plots only; plot-level rows are for those who may
    see plots; buyers and investors get the protected table (sums over privacy
    units, nurseries.stats.protected_grafting_stats)."""
    role = roles.role_of(user)
    if role is None:
        raise Forbidden("your account has no role in Chacra")
    if by not in stats.GROUPINGS:
        raise ValidationFailed(f"by must be one of {', '.join(stats.GROUPINGS)} (got {by!r})", field="by")
    if by == "plot" and role not in roles.STAFF_ROLES | {Role.COOPERATIVE}:
        raise Forbidden("figures by plot are for technicians and cooperatives; use by=region, district or clone")
    if role not in roles.STAFF_ROLES | {Role.COOPERATIVE}:
        if by == "clone":
            raise Forbidden("figures by clone are for technicians and cooperatives: a clone grown in one area, "
                            "subtracted from that area's row, would single out fewer than k producers; use "
                            "by=region or by=district")
        return stats.protected_grafting_stats(by=by)
    organization_id = _org_id(user) if role == Role.COOPERATIVE else None
    return stats.grafting_stats(by=by, organization_id=organization_id)
