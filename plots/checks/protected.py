"""Protected-area overlap.

Outcome: ``fail`` when the plot overlaps any protected area that is not a buffer
zone; ``buffer_zone`` when it overlaps buffer zones only; ``pass`` when it lies
outside every area (then ``nearest_m``, the geodesic distance to the nearest
area, and that area); ``insufficient_data`` when no protected-area layer is
loaded. A plot surveyed as a point is tested point-in-area and has no overlap
hectares. A plot that only touches an area's edge (no shared interior) passes,
with ``nearest_m`` 0.

figures::

    {"overlap_ha": 1.23, "share": 0.41,          # the plot's part inside any area (union over areas)
     "areas": [{"name", "category", "official_code", "edition", "overlap_ha", "share"}, …],
     "nearest_m": 1234.5, "nearest": {"name", "category", "official_code", "edition"}}   # pass only

Every area is geodesic (``ST_Area(geography)``, GeographicLib); every distance is
geodesic on the WGS 84 ellipsoid between the closest points of the two shapes, their
edges taken as drawn (straight in longitude/latitude; see chacra_map_distance_m).
"""

from __future__ import annotations

from plots.checks.base import BATCH_PLOTS, Check, distinct_values

# The overlap join runs against ProtectedAreaPiece (ST_Subdivide'd, ≤ 256 vertices,
# GiST-indexed), never against the whole areas: Cordillera Azul alone has ~4,000
# vertices, and every intersection with it would walk all of them.
#
# Nearest area. Distances are chacra_map_distance_m (migration 0007): the closest
# points with edges straight in lon/lat, as the overlap test treats them, measured
# on the ellipsoid; within a millionth of an independent equidistant-projection
# computation, where ST_Distance(geography) (spherical closest points) was 0.2 % off
# and ~40x slower, most of this check's time.
# KNN (<->) orders pieces by planar distance in degrees, which is not metric order,
# so it only gives an upper bound D1: the distance to the planar-nearest piece. Any
# piece nearer than D1 is nearer than D1 / m_min in degrees, m_min being the fewest
# metres a degree can span along such a path (110,000 m per degree of latitude
# anywhere; 111,000·cos φ per degree of longitude, φ the largest |latitude|
# reachable within D1). So the pieces within that planar distance (ST_DWithin,
# index-assisted) are the only candidates, and the least distance among them is
# the answer. (Plots within D1 of the antimeridian are not handled; Peru is far
# from it.)
SQL = f"""
WITH plots AS MATERIALIZED ({BATCH_PLOTS}),
hits AS MATERIALIZED (
    SELECT pl.id AS plot_id, pl.area_ha, pl.is_point, pc.area_id, pc.id AS piece_id, s.covered,
           -- A plot wholly inside a piece takes its own area: no intersection.
           CASE WHEN s.covered OR pl.is_point THEN NULL
                ELSE ST_CollectionExtract(ST_Intersection(pc.geom, pl.g), 3) END AS part
    FROM plots pl
    JOIN plots_protectedareapiece pc ON ST_Intersects(pc.geom, pl.g)
    CROSS JOIN LATERAL (SELECT ST_Covers(pc.geom, pl.g) AS covered) s
),
per_area AS (
    -- Pieces of one area do not overlap, but they share edges: their parts are
    -- united before measuring, unless there is only one. (Ordered aggregates here
    -- and below: the same inputs give the same bits, so a re-run finds nothing new.)
    SELECT h.plot_id, h.area_id, h.area_ha, h.is_point, bool_or(h.covered) AS covered,
           ST_Collect(h.part ORDER BY h.piece_id) AS parts, count(h.part) AS n_parts
    FROM hits h
    GROUP BY h.plot_id, h.area_id, h.area_ha, h.is_point
),
measured AS (
    SELECT a.*, CASE WHEN a.is_point THEN NULL
                     WHEN a.covered THEN a.area_ha
                     WHEN a.n_parts = 1 THEN ST_Area(ST_CollectionExtract(a.parts, 3)::geography, true) / 10000.0
                     ELSE ST_Area(ST_UnaryUnion(a.parts)::geography, true) / 10000.0 END AS overlap_ha
    FROM per_area a
),
inside AS (
    SELECT m.*, pa.name, pa.category, pa.official_code, pa.edition
    FROM measured m
    JOIN plots_protectedarea pa ON pa.id = m.area_id
    WHERE m.is_point OR m.overlap_ha > 0
),
flagged AS (
    SELECT o.plot_id,
           CASE WHEN bool_and(o.category = 'buffer_zone') THEN 'buffer_zone' ELSE 'fail' END AS outcome,
           CASE WHEN bool_or(o.is_point) THEN NULL
                WHEN count(*) = 1 THEN max(o.overlap_ha)
                WHEN bool_or(o.covered) THEN max(o.area_ha)
                -- Areas may overlap one another (a private area inside a reserved zone):
                -- the plot's protected part is the union, not the sum.
                ELSE ST_Area(ST_UnaryUnion(ST_Collect(o.parts ORDER BY o.area_id))::geography, true)
                     / 10000.0 END AS overlap_ha,
           max(o.area_ha) AS area_ha,
           jsonb_agg(jsonb_build_object(
               'name', o.name, 'category', o.category, 'official_code', o.official_code, 'edition', o.edition,
               'overlap_ha', o.overlap_ha, 'share', o.overlap_ha / NULLIF(o.area_ha, 0))
               ORDER BY o.overlap_ha DESC NULLS LAST, o.official_code, o.edition) AS areas
    FROM inside o
    GROUP BY o.plot_id
),
knn AS MATERIALIZED (
    SELECT pl.id AS plot_id, pl.g, k.id AS piece_id, k.area_id, chacra_map_distance_m(k.geom, pl.g) AS distance_m
    FROM plots pl
    CROSS JOIN LATERAL (
        SELECT pc.id, pc.area_id, pc.geom FROM plots_protectedareapiece pc ORDER BY pc.geom <-> pl.g LIMIT 1
    ) k
    WHERE NOT EXISTS (SELECT 1 FROM flagged f WHERE f.plot_id = pl.id)
),
candidates AS (
    SELECT k.plot_id, k.area_id, k.distance_m FROM knn k
    UNION ALL
    SELECT k.plot_id, pc.area_id, chacra_map_distance_m(pc.geom, k.g)
    FROM knn k
    JOIN plots_protectedareapiece pc
      ON pc.id <> k.piece_id
     AND ST_DWithin(pc.geom, k.g, k.distance_m / least(110000.0, 111000.0 * cos(radians(least(89.0,
             greatest(abs(ST_YMin(k.g)), abs(ST_YMax(k.g))) + k.distance_m / 110000.0)))))
),
nearest AS (
    SELECT DISTINCT ON (c.plot_id) c.plot_id, c.area_id, c.distance_m
    FROM candidates c
    ORDER BY c.plot_id, c.distance_m, c.area_id
)
SELECT pl.id AS plot_id,
       COALESCE(f.outcome, CASE WHEN n.plot_id IS NULL THEN 'insufficient_data' ELSE 'pass' END) AS outcome,
       CASE
           WHEN f.plot_id IS NOT NULL THEN jsonb_build_object(
               'overlap_ha', f.overlap_ha, 'share', f.overlap_ha / NULLIF(f.area_ha, 0), 'areas', f.areas)
           WHEN n.plot_id IS NULL THEN jsonb_build_object('reason', 'no protected-area layer is loaded')
           ELSE jsonb_build_object(
               'overlap_ha', CASE WHEN pl.is_point THEN NULL ELSE 0 END,
               'share', CASE WHEN pl.is_point THEN NULL ELSE 0 END, 'areas', '[]'::jsonb,
               'nearest_m', n.distance_m,
               'nearest', jsonb_build_object('name', pa.name, 'category', pa.category,
                                             'official_code', pa.official_code, 'edition', pa.edition))
       END AS figures
FROM plots pl
LEFT JOIN flagged f ON f.plot_id = pl.id
LEFT JOIN nearest n ON n.plot_id = pl.id
LEFT JOIN plots_protectedarea pa ON pa.id = n.area_id
"""


def datasets() -> dict:
    return {"protected_areas": distinct_values("SELECT DISTINCT edition FROM plots_protectedarea")}


CHECK = Check(kind="protected_area_overlap", sql=SQL, datasets=datasets)
