"""What the access policy's scopes mean for the plots app's rows (core.policy.register;
called from PlotsConfig.ready)."""

from __future__ import annotations

from core import policy


def register() -> None:
    # A cooperative's own: the rows of its organization (an index on organization_id
    # serves each; tiles compile the plot filter into their SQL, core.policy.sql_filter).
    policy.register("plot", own_organization=lambda qs, org: qs.filter(organization_id=org))
    policy.register("producer", own_organization=lambda qs, org: qs.filter(organization_id=org))
    policy.register("producer_personal_data", own_organization=lambda qs, org: qs.filter(organization_id=org))
    policy.register("organization", own_organization=lambda qs, org: qs.filter(pk=org))
    policy.register("check_result", own_organization=lambda qs, org: qs.filter(plot__organization_id=org))
