"""What the access policy's scopes mean for the traceability app's rows
(core.policy.register; called from TraceabilityConfig.ready).

A cooperative's own: its lots, facilities and the shipments it sends (the services
only ship a seller's own lots). A buyer's supplied-to-me: the shipments to its
organization and the lots they carry; their origin is then shown through the lot
(traceability.selectors.lot_origin).
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from core import policy


def _own_shipments(qs, org):
    from traceability.models import ProductLot

    # A shipment carrying one of its lots counts even if recorded with another seller
    # (the admin site does not enforce the services' seller = owner rule).
    carries_own = ProductLot.objects.filter(shipments=OuterRef("pk"), organization_id=org)
    return qs.filter(Q(seller_id=org) | Q(Exists(carries_own)))


def register() -> None:
    policy.register("product_lot",
                    own_organization=lambda qs, org: qs.filter(organization_id=org),
                    # distinct: a lot shipped twice to the same buyer is still one lot.
                    supplied_to_me=lambda qs, org: qs.filter(shipments__buyer_id=org).distinct())
    policy.register("shipment", own_organization=_own_shipments,
                    supplied_to_me=lambda qs, org: qs.filter(buyer_id=org))
    policy.register("facility", own_organization=lambda qs, org: qs.filter(organization_id=org))
