"""What the access policy's scopes mean for the nurseries app's rows
(core.policy.register; called from NurseriesConfig.ready).

A cooperative's own: the nurseries its organization (or one of its producers) runs,
the lots those nurseries produced, budwood cut from its plots and lots dispatched
to its plots or nurseries; graftings on its plots. Lineage beyond that shows lots
but not other organizations' plots (nurseries.selectors.visible_plot_ids).
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from core import policy


def nurseries_of_organization(organization_id: int | None) -> Q:
    return Q(operator_organization_id=organization_id) | Q(operator_producer__organization_id=organization_id)


def lots_of_organization(organization_id: int | None) -> Q:
    """Lots an organization answers for or received: its nurseries' lots, budwood cut
    from its plots, and lots dispatched to its plots or to its nurseries (budwood
    sent to a cooperative's nursery is grafted by that cooperative)."""
    from nurseries.models import Dispatch

    received = Dispatch.objects.filter(lot=OuterRef("pk")).filter(
        Q(to_plot__organization_id=organization_id)
        | Q(to_nursery__operator_organization_id=organization_id)
        | Q(to_nursery__operator_producer__organization_id=organization_id))
    return (Q(nursery__operator_organization_id=organization_id)
            | Q(nursery__operator_producer__organization_id=organization_id)
            | Q(source_plot__organization_id=organization_id) | Q(Exists(received)))


def register() -> None:
    policy.register("nursery", own_organization=lambda qs, org: qs.filter(nurseries_of_organization(org)))
    policy.register("material_lot", own_organization=lambda qs, org: qs.filter(lots_of_organization(org)))
    policy.register("grafting", own_organization=lambda qs, org: qs.filter(plot__organization_id=org))
