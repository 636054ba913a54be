"""What every check shares: the version, the batch of plots, and the one writer.

A check is a SELECT that yields ``(plot_id, outcome, figures jsonb)`` for the
plots of one batch (bound as ``%(ids)s``); ``write_results`` wraps it with the
current-boundary lookup and the skip-if-unchanged rule, in one statement.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection

METHOD_VERSION = "checks-1"  # bump when a method changes: every plot then gets a fresh result

# The plots of one batch, with the geometry every check starts from. A plot is
# either a boundary (MultiPolygon) or, for a small plot surveyed as a point, a
# location; COALESCE needs the casts because the two columns differ in typmod.
BATCH_PLOTS = """
    SELECT p.id, p.producer_id, p.area_ha, p.boundary IS NULL AS is_point,
           COALESCE(p.boundary::geometry, p.location::geometry) AS g
    FROM plots_plot p
    WHERE p.id = ANY(%(ids)s::bigint[])
"""


@dataclass(frozen=True)
class Check:
    """One kind of check: the SQL that computes it and the layer editions it reads."""

    kind: str
    sql: str  # SELECT plot_id, outcome, figures [, extra columns] … for the plots in %(ids)s
    datasets: Callable[[], dict]  # the editions of the layers used, computed once per run
    params: Callable[[], dict] = dict  # further bound parameters, computed once per run
    # An optional data-modifying CTE over ``computed`` (the district check updates the plot).
    side_effect: str = ""


# Raw SQL: this is the hot path of every check. Django cannot express DISTINCT ON
# with a conditional INSERT … SELECT, and doing it in Python would mean a round
# trip per plot. All values are bound parameters.
WRITE_SQL = """
WITH computed AS MATERIALIZED ({sql}),
{side_effect}
latest AS (
    SELECT r.plot_id, r.outcome, r.figures, r.datasets, r.method_version, r.boundary_id
    FROM plots_latest_check r
    WHERE r.kind = %(kind)s AND r.plot_id = ANY(%(ids)s::bigint[])
),
fresh AS (
    SELECT c.plot_id, b.id AS boundary_id, c.outcome, c.figures
    FROM computed c
    -- The id list lets the planner use the current-boundary index instead of hashing the whole table.
    LEFT JOIN plots_plotboundary b ON b.plot_id = c.plot_id AND b.valid_to IS NULL AND b.plot_id = ANY(%(ids)s::bigint[])
),
written AS (
    INSERT INTO plots_checkresult (plot_id, boundary_id, kind, outcome, figures, datasets, method_version,
                                   checked_at)
    SELECT f.plot_id, f.boundary_id, %(kind)s, f.outcome, f.figures, %(datasets)s::jsonb, %(method_version)s,
           statement_timestamp()
    FROM fresh f
    LEFT JOIN latest l ON l.plot_id = f.plot_id
    WHERE l.plot_id IS NULL
       OR (l.outcome::text, l.figures, l.datasets, l.method_version::text, l.boundary_id)
          IS DISTINCT FROM (f.outcome, f.figures, %(datasets)s::jsonb, %(method_version)s, f.boundary_id)
    RETURNING outcome
)
SELECT c.outcome, count(*), (SELECT count(*) FROM written w WHERE w.outcome = c.outcome)
FROM computed c
GROUP BY c.outcome
"""


def write_results(check: Check, ids: list[int], *, datasets: dict, params: dict) -> dict[str, tuple[int, int]]:
    """Compute ``check`` for the plots ``ids`` and store one CheckResult per plot.

    A result is written only when it differs from the latest one stored for the
    same (plot, kind) in outcome, figures, datasets, method version or checked
    boundary; re-running with nothing changed therefore writes nothing.
    Returns {outcome: (plots computed, rows written)}.
    """
    side_effect = f"{check.side_effect}," if check.side_effect else ""
    sql = WRITE_SQL.format(sql=check.sql, side_effect=side_effect)
    bound = {**params, "ids": id_array(ids), "kind": check.kind, "datasets": json.dumps(datasets, sort_keys=True),
             "method_version": METHOD_VERSION}
    with connection.cursor() as cur:
        cur.execute(sql, bound)
        return {outcome: (computed, written) for outcome, computed, written in cur.fetchall()}


def id_array(ids: list[int]) -> str:
    """``ids`` as one PostgreSQL array literal ('{1,2,3}', cast with ::bigint[] in the SQL).

    psycopg2 would send a list as ARRAY[1,2,3,…]: one expression node per element,
    parsed again wherever the statement names it; a literal is a single constant.
    """
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


def distinct_values(sql: str) -> list:
    with connection.cursor() as cur:
        cur.execute(sql)
        return sorted(row[0] for row in cur.fetchall())
