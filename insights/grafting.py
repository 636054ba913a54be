"""The grafting table (nurseries.stats) as each role may see it.

Technicians and admins get every row, cooperatives their organization's plots;
roles that may not see plots (buyers, investors) get the protected table: rows by
region or district only, each a sum over whole privacy units (insights.privacy).
The protected form lives here, above nurseries, because it is built from the same
units as the concentration maps.
"""

from __future__ import annotations

from decimal import Decimal

from core import policy
from insights import privacy
from insights.concentration import admin_names, partition
from nurseries import stats
from nurseries.stats import GraftingRow
from plots.errors import Forbidden, ValidationFailed


def grafting_stats(*, user, by: str) -> list[GraftingRow]:
    """Grafted and planted hectares by region, district, clone or plot. Cooperative
    users get their organization's plots only; plot-level rows are for those who may
    see plots; buyers and investors get the protected table (sums over privacy
    units, protected_grafting_stats)."""
    scope = policy.scope(user, "grafting")  # core.policy: all, own_organization or aggregates_only
    if scope == policy.NONE:
        raise Forbidden("your account has no role in Chacra")
    if by not in stats.GROUPINGS:
        raise ValidationFailed(f"by must be one of {', '.join(stats.GROUPINGS)} (got {by!r})", field="by")
    if by == "plot" and scope == policy.AGGREGATES:
        raise Forbidden("figures by plot are for technicians and cooperatives; use by=region, district or clone")
    if scope == policy.AGGREGATES:
        if by == "clone":
            raise Forbidden("figures by clone are for technicians and cooperatives: a clone grown in one area, "
                            "subtracted from that area's row, would single out fewer than k producers; use "
                            "by=region or by=district")
        return protected_grafting_stats(by=by)
    organization_id = policy.organization_id_of(user) if scope == policy.OWN else None
    return stats.grafting_stats(by=by, organization_id=organization_id)


# ------------------------------------------------------------------ protected (investors, buyers)

def protected_grafting_stats(*, by: str) -> list[GraftingRow]:
    """nurseries.stats.grafting_stats by region or district for roles that may not see plots: every
    row a sum over whole privacy units (insights.privacy), placed at the unit's
    district, so no row — and no difference of two rows, of this table or of the
    concentration maps — covers 1 … k−1 grafters or receivers of planting material.
    No clone mix and no rows by clone: a clone grown in one area cuts through the
    units, and its row subtracted from the area's would single out the few
    producers of the other clones there."""
    part = partition()
    digits = {"region": 2, "district": 6}[by]
    cells = privacy.admin_cells(part, digits, by)
    names = admin_names([c.key for c in cells])
    rows = []
    for cell in cells:
        sums = cell.sums(("stats_grafted_ha", "planted_ha", "graftings", "grafts", "survivors", "plots_grafted",
                          "plots_planted"))
        if not sums["graftings"] and not sums["plots_planted"]:
            continue
        rows.append(GraftingRow(
            key=cell.key, name=names.get(cell.key), grafted_ha=_ha(sums["stats_grafted_ha"]),
            planted_ha=_ha(sums["planted_ha"]), graftings=int(sums["graftings"]), grafts=int(sums["grafts"]),
            survivors=int(sums["survivors"]), plots_grafted=int(sums["plots_grafted"]),
            plots_planted=int(sums["plots_planted"])))
    return rows


def _ha(value: float) -> Decimal:
    return Decimal(str(round(value, 4)))

