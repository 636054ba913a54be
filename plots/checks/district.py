"""District assignment: the district holding the largest share of the plot.

Which edition. Boundary editions supersede one another where they exist, but a
newer edition may be loaded for part of the country only (the INEI 2023 subset
covers 18 districts). So, per plot: the NEWEST edition whose districts together
cover at least half of the plot; if none does (a plot at the edge of a partial
edition, or mostly outside every layer), the edition covering the largest part
of it. Within that edition, the district with the largest share (ties: lowest
UBIGEO) becomes ``Plot.district`` — this is the one check that changes the plot.

Outcome: ``warning`` when the plot crosses a district border (more than one
district of the chosen edition holds part of its area; touching an edge is not
crossing); ``pass`` otherwise; ``insufficient_data`` when no loaded district
contains it (its district is then cleared). A point plot takes the district that
covers it.

figures::

    {"district": "221001", "name": "TOCACHE", "edition": 2007, "share": 0.83,
     "districts": [{"ubigeo", "name", "share", "area_ha"}, …],    # the chosen edition, largest first
     "coverage": {"2007": 1.0, "2023": 0.0}}                      # share of the plot each edition covers
"""

from __future__ import annotations

from django.db import connection

from plots.checks.base import BATCH_PLOTS, Check, distinct_values, id_array

# Raw SQL: per-district intersections for a whole batch in one statement; the
# GiST index on plots_adminarea.geom finds the candidate districts. A plot
# wholly inside a district (nearly all) takes share 1 without an intersection.
SHARES = """
WITH plots AS MATERIALIZED ({source}),
shares AS MATERIALIZED (
    SELECT pl.id AS plot_id, pl.is_point, a.id AS district_id, a.ubigeo, a.name, a.edition, s.share,
           s.share * pl.area_ha AS area_ha
    FROM plots pl
    JOIN plots_adminarea a ON a.level = 'district' AND ST_Intersects(a.geom, pl.g)
    CROSS JOIN LATERAL (
        SELECT CASE WHEN pl.is_point OR ST_Covers(a.geom, pl.g) THEN 1.0
                    ELSE ST_Area(ST_Intersection(a.geom, pl.g)::geography, true) / 10000.0
                         -- (a source may leave area_ha NULL: the bulk loader's staging table)
                         / NULLIF(COALESCE(pl.area_ha, ST_Area(pl.g::geography, true) / 10000.0), 0) END AS share
    ) s
    WHERE s.share > 0
),
coverage AS (
    -- Summed in a fixed order: the same inputs give the same bits on every run.
    SELECT plot_id, edition, sum(share ORDER BY district_id) AS coverage FROM shares GROUP BY plot_id, edition
),
chosen_edition AS (
    SELECT DISTINCT ON (plot_id) plot_id, edition
    FROM coverage
    ORDER BY plot_id, coverage >= 0.5 DESC, CASE WHEN coverage >= 0.5 THEN edition END DESC NULLS LAST,
             coverage DESC, edition DESC
),
ranked AS (
    SELECT s.*, row_number() OVER (PARTITION BY s.plot_id ORDER BY s.share DESC, s.ubigeo) AS rank
    FROM shares s
    JOIN chosen_edition e ON e.plot_id = s.plot_id AND e.edition = s.edition
),
per_plot AS (
    SELECT r.plot_id,
           max(r.district_id) FILTER (WHERE r.rank = 1) AS district_id,
           bool_or(r.is_point) AS is_point, count(*) AS n,
           jsonb_build_object(
               'district', max(r.ubigeo) FILTER (WHERE r.rank = 1),
               'name', max(r.name) FILTER (WHERE r.rank = 1),
               'edition', max(r.edition),
               'share', max(r.share) FILTER (WHERE r.rank = 1),
               'districts', jsonb_agg(jsonb_build_object('ubigeo', r.ubigeo, 'name', r.name, 'share', r.share,
                                                         'area_ha', r.area_ha) ORDER BY r.rank),
               'coverage', (SELECT jsonb_object_agg(c.edition::text, c.coverage ORDER BY c.edition)
                            FROM coverage c WHERE c.plot_id = r.plot_id)) AS figures
    FROM ranked r
    GROUP BY r.plot_id
)
SELECT pl.id AS plot_id, pp.district_id,
       CASE WHEN pp.plot_id IS NULL THEN 'insufficient_data'
            WHEN NOT pp.is_point AND pp.n > 1 THEN 'warning'
            ELSE 'pass' END AS outcome,
       COALESCE(pp.figures, jsonb_build_object('reason', 'no loaded district contains the plot')) AS figures
FROM plots pl
LEFT JOIN per_plot pp ON pp.plot_id = pl.id
"""

# Neighbours in a row (geometries sort along a Hilbert curve in PostGIS 3): the
# consecutive tests then meet the same district, whose prepared geometry PostGIS
# keeps between calls — a third less time on a batch of scattered plots.
NEIGHBOURS_FIRST = " ORDER BY g"
SQL = SHARES.format(source=BATCH_PLOTS + NEIGHBOURS_FIRST)

# The plot takes the chosen district; updated_at moves so that clients syncing
# with ?updated_since see the new district in the plot's feature.
UPDATE_PLOTS = """
side_effect AS (
    UPDATE plots_plot p SET district_id = c.district_id, updated_at = statement_timestamp()
    FROM computed c
    WHERE p.id = c.plot_id AND p.district_id IS DISTINCT FROM c.district_id
    RETURNING p.id
)"""


def datasets() -> dict:
    return {"admin_areas": distinct_values("SELECT DISTINCT edition FROM plots_adminarea WHERE level = 'district'")}


CHECK = Check(kind="district_assignment", sql=SQL, datasets=datasets, side_effect=UPDATE_PLOTS)

_ONE_GEOMETRY = """
    SELECT 0::bigint AS id, NULL::bigint AS producer_id, ST_Area(g::geography, true) / 10000.0 AS area_ha,
           GeometryType(g) = 'POINT' AS is_point, g
    FROM (SELECT ST_GeomFromEWKB(%(geom)s) AS g) s
"""


# Composed once from constant fragments; the geometry is always a bound parameter.
_ONE_DISTRICT_SQL = "SELECT district_id FROM (" + SHARES.format(source=_ONE_GEOMETRY) + ") d"


def district_id_for(geom) -> int | None:
    """The district a plot with this geometry (Point or (Multi)Polygon, SRID 4326) takes."""
    with connection.cursor() as cur:
        cur.execute(_ONE_DISTRICT_SQL, {"geom": bytes(geom.ewkb)})
        row = cur.fetchone()
    return row[0] if row else None


def assign_districts(plot_ids: list[int]) -> int:
    """Set Plot.district by the rule above, without writing check results. Returns plots changed."""
    sql = f"WITH computed AS MATERIALIZED ({SQL}), {UPDATE_PLOTS.strip()} SELECT count(*) FROM side_effect"
    with connection.cursor() as cur:
        cur.execute(sql, {"ids": id_array(plot_ids)})
        return cur.fetchone()[0]
