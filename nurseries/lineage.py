"""The lineage queries, in recursive SQL.

Raw SQL here, with bound parameters, because the ORM has no recursive CTE and a
lineage walked in Python costs one query per generation per lot. Every walk uses
``UNION`` (not ``UNION ALL``) so a lot reached by two paths (a diamond: budwood and
rootstock of one grafted lot descending from one seed lot) is visited once and the
walk is linear in the lots it reaches. Lineage is acyclic (a trigger refuses
cycles), so the walks always end.

These functions answer for all data; the selectors (nurseries.selectors) apply
what the acting user may see.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

# Ids of the lots above (ancestors) or below (descendants) the seed lots, the seeds included.
UP = """
    up(id) AS (
        SELECT unnest(%(seeds)s::bigint[])
        UNION
        SELECT e.parent_id FROM nurseries_lotparent e JOIN up ON e.child_id = up.id
    )"""
DOWN = """
    down(id) AS (
        SELECT unnest(%(seeds)s::bigint[])
        UNION
        SELECT e.child_id FROM nurseries_lotparent e JOIN down ON e.parent_id = down.id
    )"""


def _rows(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def ancestor_ids(lot_id: int) -> list[int]:
    """Every lot the given lot was made from, directly or not (the lot itself excluded)."""
    sql = f"WITH RECURSIVE {UP} SELECT id FROM up WHERE id <> %(lot)s ORDER BY id"
    return [r[0] for r in _rows(sql, {"seeds": [lot_id], "lot": lot_id})]


def descendant_ids(lot_id: int) -> list[int]:
    """Every lot made from the given lot, directly or not (the lot itself excluded)."""
    sql = f"WITH RECURSIVE {DOWN} SELECT id FROM down WHERE id <> %(lot)s ORDER BY id"
    return [r[0] for r in _rows(sql, {"seeds": [lot_id], "lot": lot_id})]


@dataclass(frozen=True)
class Edge:
    parent_id: int
    child_id: int
    quantity: int


@dataclass(frozen=True)
class Node:
    """A lot of a lineage, with what the answer shows of it (one row of one statement)."""

    id: int
    code: str
    kind: str
    species: str
    clone: str | None
    fine_flavour: bool | None
    quantity: int
    produced_on: str
    nursery: str | None
    source_plot_id: int | None


def _walk(direction: str) -> tuple[str, str]:
    return (UP, "up") if direction == "up" else (DOWN, "down")


def closure(lot_id: int, direction: str) -> tuple[list[Node], list[Edge]]:
    """(lots, edges) of the lineage above ("up") or below ("down") a lot, the lot
    included; lots in production order. Two statements: nodes, then edges."""
    cte, name = _walk(direction)
    nodes_sql = f"""WITH RECURSIVE {cte}
        SELECT l.id, l.code, l.kind, l.species, c.code, c.fine_flavour, l.quantity, l.produced_on::text, n.code,
               l.source_plot_id
          FROM {name} JOIN nurseries_materiallot l ON l.id = {name}.id
          LEFT JOIN nurseries_clone c ON c.id = l.clone_id
          LEFT JOIN nurseries_nursery n ON n.id = l.nursery_id
         ORDER BY l.produced_on, l.code"""
    join = "e.child_id" if direction == "up" else "e.parent_id"
    edges_sql = f"""WITH RECURSIVE {cte}
        SELECT e.parent_id, e.child_id, e.quantity FROM {name} JOIN nurseries_lotparent e ON {join} = {name}.id
         ORDER BY e.parent_id, e.child_id"""
    params = {"seeds": [lot_id]}
    return [Node(*row) for row in _rows(nodes_sql, params)], [Edge(*row) for row in _rows(edges_sql, params)]


@dataclass(frozen=True)
class Reach:
    """What of a lineage reached one plot: units dispatched (planting material, budwood)
    and grafts made with its budwood, from which lots, over which days."""

    plot_id: int
    dispatched: int
    dispatches: int
    grafts: int
    graftings: int
    lot_ids: list[int]
    first: str
    last: str


def plots_reached(lot_id: int) -> list[Reach]:
    """Every plot that received material of the lot or of any lot descending from it,
    by dispatch or by a field grafting with its budwood; one row per plot."""
    sql = f"""WITH RECURSIVE {DOWN},
        arrivals AS (
            SELECT d.to_plot_id AS plot_id, d.quantity AS units, 0 AS grafts, d.lot_id, d.dispatched_on AS day
              FROM nurseries_dispatch d JOIN down ON d.lot_id = down.id WHERE d.to_plot_id IS NOT NULL
            UNION ALL
            SELECT g.plot_id, 0, g.grafts, g.budwood_lot_id, g.grafted_on
              FROM nurseries_grafting g JOIN down ON g.budwood_lot_id = down.id
        )
        SELECT plot_id, sum(units), count(*) FILTER (WHERE grafts = 0), sum(grafts), count(*) FILTER (WHERE grafts > 0),
               array_agg(DISTINCT lot_id ORDER BY lot_id), min(day)::text, max(day)::text
          FROM arrivals GROUP BY plot_id ORDER BY plot_id"""
    return [Reach(*row) for row in _rows(sql, {"seeds": [lot_id]})]


@dataclass(frozen=True)
class OriginRow:
    lot_id: int
    lot_code: str
    kind: str
    species: str
    clone: str | None
    fine_flavour: bool | None
    nursery: str | None
    source_plot_id: int | None
    direct: bool


_ORIGIN = """WITH RECURSIVE direct(id) AS (
            SELECT lot_id FROM nurseries_dispatch WHERE to_plot_id = %(plot)s
            UNION
            SELECT budwood_lot_id FROM nurseries_grafting WHERE plot_id = %(plot)s AND budwood_lot_id IS NOT NULL
        ),
        up(id) AS (
            SELECT id FROM direct
            UNION
            SELECT e.parent_id FROM nurseries_lotparent e JOIN up ON e.child_id = up.id
        )"""


def genetic_origin(plot_id: int) -> tuple[list[OriginRow], list[Edge]]:
    """The genetic origin of a plot: every lot back to the mother plants, with its
    clone, nursery and (budwood) source plot, and the edges between them."""
    rows_sql = _ORIGIN + """
        SELECT l.id, l.code, l.kind, l.species, c.code, c.fine_flavour, n.code, l.source_plot_id,
               EXISTS (SELECT 1 FROM direct WHERE direct.id = l.id)
          FROM up JOIN nurseries_materiallot l ON l.id = up.id
          LEFT JOIN nurseries_clone c ON c.id = l.clone_id
          LEFT JOIN nurseries_nursery n ON n.id = l.nursery_id
         ORDER BY l.produced_on, l.code"""
    edges_sql = _ORIGIN + """
        SELECT e.parent_id, e.child_id, e.quantity FROM up JOIN nurseries_lotparent e ON e.child_id = up.id
         ORDER BY e.child_id, e.parent_id"""
    params = {"plot": plot_id}
    return [OriginRow(*row) for row in _rows(rows_sql, params)], [Edge(*row) for row in _rows(edges_sql, params)]
