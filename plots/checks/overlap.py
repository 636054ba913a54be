"""Plot–plot overlap: double claims.

Two active plots of DIFFERENT producers whose interiors overlap are a double
claim: the same land declared by two households. Outcome:

* ``fail`` — the plot shares more than DOUBLE_CLAIM_HA (0.01 ha = 100 m²) with
  other producers' plots. Below that it is a ``warning``: walked boundaries of
  two neighbours carry consumer-GPS error of 3–10 m, so a shared border 100 m
  long easily produces a 1 m-wide sliver of 100 m² on either side without anyone
  claiming the other's land.
* ``warning`` — overlaps only with plots of the same producer (a household that
  registered the same field twice, or an old and a new survey side by side), or a
  double-claim sliver, or a point plot inside another producer's plot (a point
  has no area to measure).
* ``pass`` — no overlap. Plots that merely touch (a shared edge, no shared
  interior) do not overlap.

figures::

    {"double_claim_ha": 0.52,                          # union of the parts shared with other producers
     "double_claims": [{"plot", "organization", "overlap_ha"}, …],
     "same_producer_ha": 0.0, "same_producer": [{"plot", "overlap_ha"}, …]}
"""

from __future__ import annotations

from django.db import connection

from plots.checks.base import BATCH_PLOTS, Check, id_array

DOUBLE_CLAIM_HA = 0.01

# Raw SQL, set-based per batch; the other plot comes from the whole active
# register through the GiST indexes on boundary and location.
SQL = f"""
WITH plots AS MATERIALIZED ({BATCH_PLOTS}),
candidates AS (
    -- Two index probes (boundary, location) rather than one OR, which no GiST index serves.
    SELECT pl.id AS plot_id, q.id AS other_id
    FROM plots pl JOIN plots_plot q ON ST_Intersects(q.boundary, pl.g)
    WHERE q.id <> pl.id AND q.status = 'active'
    UNION ALL
    SELECT pl.id, q.id
    FROM plots pl JOIN plots_plot q ON ST_Intersects(q.location, pl.g)
    WHERE q.id <> pl.id AND q.status = 'active'
),
pairs AS MATERIALIZED (
    SELECT pl.id AS plot_id, q.code, org.code AS organization, q.producer_id = pl.producer_id AS same_producer,
           CASE WHEN pl.is_point OR q.boundary IS NULL THEN NULL
                ELSE ST_CollectionExtract(ST_Intersection(q.boundary, pl.g), 3) END AS part
    FROM candidates c
    JOIN plots pl ON pl.id = c.plot_id
    JOIN plots_plot q ON q.id = c.other_id
    JOIN plots_organization org ON org.id = q.organization_id
    -- Interiors must meet: neighbours sharing only an edge do not overlap.
    WHERE NOT ST_Touches(COALESCE(q.boundary::geometry, q.location::geometry), pl.g)
),
measured AS (
    SELECT p.*, ST_Area(p.part::geography, true) / 10000.0 AS overlap_ha FROM pairs p
),
per_plot AS (
    SELECT m.plot_id,
           ST_Area(ST_UnaryUnion(ST_Collect(m.part ORDER BY m.code) FILTER (WHERE NOT m.same_producer))
                   ::geography, true) / 10000.0 AS double_claim_ha,
           count(*) FILTER (WHERE NOT m.same_producer) AS n_double,
           ST_Area(ST_UnaryUnion(ST_Collect(m.part ORDER BY m.code) FILTER (WHERE m.same_producer))
                   ::geography, true) / 10000.0 AS same_producer_ha,
           COALESCE(jsonb_agg(jsonb_build_object('plot', m.code, 'organization', m.organization,
                                                 'overlap_ha', m.overlap_ha)
                              ORDER BY m.overlap_ha DESC NULLS LAST, m.code) FILTER (WHERE NOT m.same_producer),
                    '[]'::jsonb) AS double_claims,
           COALESCE(jsonb_agg(jsonb_build_object('plot', m.code, 'overlap_ha', m.overlap_ha)
                              ORDER BY m.overlap_ha DESC NULLS LAST, m.code) FILTER (WHERE m.same_producer),
                    '[]'::jsonb) AS same_producer
    FROM measured m
    GROUP BY m.plot_id
)
SELECT pl.id AS plot_id,
       CASE WHEN pp.plot_id IS NULL THEN 'pass'
            WHEN pp.double_claim_ha > %(double_claim_ha)s THEN 'fail'
            ELSE 'warning' END AS outcome,
       jsonb_build_object(
           'double_claim_ha', CASE WHEN pl.is_point AND pp.n_double > 0 THEN NULL
                                   ELSE COALESCE(pp.double_claim_ha, 0) END,
           'double_claims', COALESCE(pp.double_claims, '[]'::jsonb),
           'same_producer_ha', CASE WHEN pl.is_point AND jsonb_array_length(pp.same_producer) > 0 THEN NULL
                                    ELSE COALESCE(pp.same_producer_ha, 0) END,
           'same_producer', COALESCE(pp.same_producer, '[]'::jsonb)) AS figures
FROM plots pl
LEFT JOIN per_plot pp ON pp.plot_id = pl.id
"""


CHECK = Check(kind="plot_overlap", sql=SQL, datasets=dict, params=lambda: {"double_claim_ha": DOUBLE_CLAIM_HA})

# A double claim has two sides: when some plots change, the plots they overlap now,
# and the ones they overlapped at their last check, need their verdict renewed too.
NEIGHBOURS_SQL = """
WITH plots AS MATERIALIZED (SELECT id, COALESCE(boundary::geometry, location::geometry) AS g
                            FROM plots_plot WHERE id = ANY(%(ids)s::bigint[]))
SELECT q.id FROM plots pl JOIN plots_plot q ON ST_Intersects(q.boundary, pl.g)
WHERE q.status = 'active'
UNION
SELECT q.id FROM plots pl JOIN plots_plot q ON ST_Intersects(q.location, pl.g)
WHERE q.status = 'active'
UNION
SELECT q.id
FROM (SELECT r.figures FROM plots_latest_check r
      WHERE r.kind = 'plot_overlap' AND r.plot_id = ANY(%(ids)s::bigint[])) last
CROSS JOIN LATERAL jsonb_array_elements(COALESCE(last.figures -> 'double_claims', '[]')
                                        || COALESCE(last.figures -> 'same_producer', '[]')) other
JOIN plots_plot q ON q.code = other ->> 'plot' AND q.status = 'active'
"""


def neighbours(ids: list[int]) -> set[int]:
    """Active plots, other than ``ids``, whose plot_overlap verdict may change with them."""
    with connection.cursor() as cur:
        cur.execute(NEIGHBOURS_SQL, {"ids": id_array(ids)})
        return {row[0] for row in cur.fetchall()} - set(ids)
