"""Reads, scoped to the acting user by the access policy (core.policy; what its
scopes mean for nurseries and lots is nurseries.access):

- admin, technician: everything;
- cooperative: the nurseries its organization (or one of its producers) runs, the
  lots those nurseries produced, budwood cut from its plots and lots dispatched to
  its plots; lineage beyond that shows lots but not other organizations' plots;
- buyer: every nursery and lot, read-only; plots only as the plots API shows them
  to buyers (not at all), and never a producer's personal data;
- investor: aggregates only (grafting statistics by region or district, insights.grafting);
  anything that lists nurseries, lots or plots is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from nurseries import lineage, stats
from nurseries.models import Dispatch, Grafting, MaterialLot, Nursery
from core import policy
from plots.errors import Forbidden, NotFound, ValidationFailed
from plots.models import Plot
from plots.selectors import plot_get, region_prefix

INVESTOR_REFUSAL = "investors see aggregates only (/api/v1/stats/grafting), not nurseries, lots or plots"


def _require_reader(user, resource: str) -> None:
    """Refuse a caller without a role, then one the policy gives no rows of ``resource``
    (investors: the aggregates only)."""
    if not policy.has_role(user):
        raise Forbidden("your account has no role in Chacra")
    policy.require_read(user, resource, INVESTOR_REFUSAL)


def nursery_list(*, user, kind: str | None = None, district: str | None = None,
                 region: str | None = None) -> QuerySet[Nursery]:
    _require_reader(user, "nursery")
    qs = policy.visible(user, "nursery", Nursery.objects.all())
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
    _require_reader(user, "material_lot")
    qs = policy.visible(user, "material_lot", MaterialLot.objects.select_related("clone", "nursery", "source_plot"))
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
    if policy.sees_all(user, "plot"):
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
    _require_reader(user, "material_lot")  # the genetics are lots and their lineage
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
