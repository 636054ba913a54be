"""Grafting statistics and nursery output, aggregated in SQL.

Definitions (the programme's, as far as its reports state them):

- grafted hectares: the sum of Grafting.grafted_ha (numeric, 4 decimals, so the
  sums are exact and equal a sum of the same Decimals in Python);
- planted hectares: the area of every plot that received cacao planting material
  (rootstock seedlings or grafted plants) by dispatch, each plot counted once, its
  geodesic area (or, for a plot surveyed as a point, its declared area) rounded to
  4 decimals before summing, for the same exactness;
- clone mix: the grafted hectares of each group split by clone;
- region: the department above the plot's district (district → province →
  department in plots_adminarea), falling back to the district UBIGEO's first two
  digits when the parent chain is absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection

PLANTING_KINDS = ("rootstock_seedling", "grafted_plant")
GROUPINGS = ("region", "district", "clone", "plot")

_PER_PLOT = """
    g AS (
        SELECT plot_id, sum(grafted_ha) AS ha, count(*) AS n, sum(grafts) AS grafts, sum(survivors) AS survivors
          FROM nurseries_grafting GROUP BY plot_id
    ),
    planted AS (
        SELECT DISTINCT d.to_plot_id AS plot_id
          FROM nurseries_dispatch d JOIN nurseries_materiallot l ON l.id = d.lot_id
         WHERE d.to_plot_id IS NOT NULL AND l.kind = ANY(%(planting)s)
    ),
    per_plot AS (
        SELECT p.id, p.code, p.district_id, COALESCE(g.ha, 0) AS grafted_ha, COALESCE(g.n, 0) AS graftings,
               COALESCE(g.grafts, 0) AS grafts, COALESCE(g.survivors, 0) AS survivors,
               planted.plot_id IS NOT NULL AS planted,
               round(COALESCE(p.area_ha, p.declared_area_ha)::numeric, 4) AS area_ha
          FROM plots_plot p
          LEFT JOIN g ON g.plot_id = p.id
          LEFT JOIN planted ON planted.plot_id = p.id
         WHERE (g.plot_id IS NOT NULL OR planted.plot_id IS NOT NULL) {scope}
    )"""

_AREAS = """
    LEFT JOIN plots_adminarea dist ON dist.id = per_plot.district_id
    LEFT JOIN plots_adminarea prov ON prov.id = dist.parent_id
    LEFT JOIN plots_adminarea dep ON dep.id = prov.parent_id"""

_KEYS = {
    "region": ("COALESCE(dep.ubigeo, left(dist.ubigeo, 2))", "COALESCE(dep.name, '')"),
    "district": ("dist.ubigeo", "dist.name"),
    "plot": ("per_plot.code", "per_plot.code"),
}


@dataclass
class GraftingRow:
    key: str | None  # UBIGEO, clone code or plot code; None for plots without a district
    name: str | None
    grafted_ha: Decimal
    planted_ha: Decimal | None  # None when grouping by clone (plants are not split by clone here)
    graftings: int
    grafts: int
    survivors: int
    plots_grafted: int
    plots_planted: int | None
    clones: dict[str, Decimal] = field(default_factory=dict)  # grafted ha by clone (the clone mix)

    @property
    def grafted_share(self) -> float | None:
        """Grafted over planted hectares."""
        return float(self.grafted_ha / self.planted_ha) if self.planted_ha else None


def grafting_stats(*, by: str, organization_id: int | None = None) -> list[GraftingRow]:
    """Grafted and planted hectares grouped ``by`` region, district, clone or plot;
    ``organization_id`` limits the plots counted to one organization's."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {GROUPINGS}")
    scope = "AND p.organization_id = %(org)s" if organization_id is not None else ""
    params = {"planting": list(PLANTING_KINDS), "org": organization_id}
    if by == "clone":
        sql = f"""SELECT c.code, c.name, sum(gr.grafted_ha), NULL, count(*), sum(gr.grafts)::bigint,
                         COALESCE(sum(gr.survivors), 0)::bigint, count(DISTINCT gr.plot_id), NULL
                    FROM nurseries_grafting gr JOIN nurseries_clone c ON c.id = gr.clone_id
                    JOIN plots_plot p ON p.id = gr.plot_id
                   WHERE TRUE {scope}
                   GROUP BY c.code, c.name ORDER BY c.code"""
    else:
        key, name = _KEYS[by]
        sql = f"""WITH {_PER_PLOT.format(scope=scope)}
            SELECT {key} AS key, {name} AS name, sum(grafted_ha),
                   COALESCE(sum(area_ha) FILTER (WHERE planted), 0), sum(graftings)::bigint, sum(grafts)::bigint,
                   sum(survivors)::bigint,
                   count(*) FILTER (WHERE graftings > 0), count(*) FILTER (WHERE planted)
              FROM per_plot {_AREAS}
             GROUP BY 1, 2 ORDER BY 1 NULLS LAST"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [GraftingRow(*row) for row in cursor.fetchall()]
        if by != "clone":
            by_key = {row.key: row for row in rows}
            cursor.execute(_clone_mix_sql(by, scope), params)
            for key, clone, hectares in cursor.fetchall():
                by_key[key].clones[clone] = hectares
    return rows


def _clone_mix_sql(by: str, scope: str) -> str:
    """Grafted hectares by (group key, clone), with the same keys and scope as the main statement."""
    key, _ = _KEYS[by]
    return f"""SELECT {key} AS key, per_plot.clone, sum(per_plot.grafted_ha)
                 FROM (SELECT p.id, p.code, p.district_id, c.code AS clone, gr.grafted_ha
                         FROM nurseries_grafting gr JOIN plots_plot p ON p.id = gr.plot_id
                         JOIN nurseries_clone c ON c.id = gr.clone_id WHERE TRUE {scope}) per_plot {_AREAS}
                GROUP BY 1, 2 ORDER BY 1, 2"""


@dataclass(frozen=True)
class NurseryOutput:
    lots: int
    produced: int  # units of every lot produced there
    passed_on: int  # units drawn by child lots
    dispatched_to_plots: int
    dispatched_to_nurseries: int
    received: int  # units other nurseries dispatched to it


def nursery_output(nursery_ids: list[int]) -> dict[int, NurseryOutput]:
    """Plants (seeds, sticks) produced and dispatched per nursery, for the given nurseries."""
    sql = """
        SELECT n.id,
               (SELECT count(*) FROM nurseries_materiallot l WHERE l.nursery_id = n.id),
               (SELECT COALESCE(sum(l.quantity), 0) FROM nurseries_materiallot l WHERE l.nursery_id = n.id),
               (SELECT COALESCE(sum(e.quantity), 0) FROM nurseries_lotparent e
                  JOIN nurseries_materiallot l ON l.id = e.parent_id WHERE l.nursery_id = n.id),
               (SELECT COALESCE(sum(d.quantity), 0) FROM nurseries_dispatch d
                  JOIN nurseries_materiallot l ON l.id = d.lot_id WHERE l.nursery_id = n.id AND d.to_plot_id IS NOT NULL),
               (SELECT COALESCE(sum(d.quantity), 0) FROM nurseries_dispatch d
                  JOIN nurseries_materiallot l ON l.id = d.lot_id WHERE l.nursery_id = n.id
                   AND d.to_nursery_id IS NOT NULL),
               (SELECT COALESCE(sum(d.quantity), 0) FROM nurseries_dispatch d WHERE d.to_nursery_id = n.id)
          FROM nurseries_nursery n WHERE n.id = ANY(%(ids)s)"""
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": list(nursery_ids)})
        return {row[0]: NurseryOutput(*(int(v) for v in row[1:])) for row in cursor.fetchall()}
