"""Where fine-flavour smallholders are concentrated: aggregates for investors.

    concentration(metric="fine_flavour_ha", grid="h3:7", k=5, organization=…, clone=…,
                  planting_year=…, region=…) -> Concentration

Every figure is computed in the database over the active plots, grouped by an H3
cell (resolution 5–9, ``chacra_h3_parent`` of the plot's stored resolution-9 cell)
or by district, province or department (INEI UBIGEO of the plot's district):

  producers        producers with a plot in the area
  plots            active plots
  hectares         geodesic area (declared area for a plot surveyed as a point)
  grafted_ha       grafted hectares (nurseries.Grafting), at most the plot's area
  fine_flavour_ha  hectares grafted with fine-flavour clones, at most the plot's area
  production_kg    estimated production: hectares × the yield for the plant age
                   (this year − planting year) from CHACRA_YIELD_BY_AGE
  women_share      share of the producers that are women (women-led households)
  flagged_plots    plots whose latest protected-area, double-claim or
                   deforestation verdict is a fail

Privacy (k-anonymity on producers): an area with fewer than ``k`` producers is
never shown alone. The small areas of one parent (the H3 parent cell one
resolution up, or the province / department) are merged and shown together as
one region — their union — when together they reach ``k``; otherwise they climb
another level; what is still below ``k`` at the top (H3 resolution 5, or the
department) is suppressed. The result lists what was merged and what suppressed.
No plot, producer or lot ever appears.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import h3
from django.conf import settings
from django.db import connection

from plots import h3cells
from plots.errors import ValidationFailed

METRICS = {
    "producers": "producers with a plot in the area",
    "plots": "active plots",
    "hectares": "geodesic hectares",
    "grafted_ha": "grafted hectares",
    "fine_flavour_ha": "hectares grafted with fine-flavour clones",
    "production_kg": "estimated production, kg per season (hectares × yield for the plant age)",
    "women_share": "share of producers that are women",
    "flagged_plots": "plots with a failed protected-area, double-claim or deforestation check",
}
ADMIN_LEVELS = ("district", "province", "department")
UBIGEO_DIGITS = {"district": 6, "province": 4, "department": 2}
H3_MIN, H3_MAX = 5, 9
FLAG_KINDS = ("protected_area_overlap", "plot_overlap", "deforestation")


@dataclass
class Area:
    key: str  # the H3 cell (hex) or UBIGEO
    level: str  # "h3:7", "district" …
    values: dict[str, float]
    members: list[str] = field(default_factory=list)  # the small areas merged into it (empty: shown as itself)

    @property
    def merged(self) -> bool:
        return bool(self.members)


@dataclass
class Concentration:
    metric: str
    grid: str
    k: int
    filters: dict
    areas: list[Area]
    suppressed: list[str]  # areas below k even after merging: not shown
    yield_by_age: list[tuple[int, float]]


# ------------------------------------------------------------------------------ parameters

def yield_by_age() -> list[tuple[int, float]]:
    """[(from age in years, kg/ha)] ascending, from CHACRA_YIELD_BY_AGE."""
    return sorted(settings.CHACRA_YIELD_BY_AGE.items())


def parse_grid(grid: str) -> tuple[str, int | None]:
    """("h3", res) or (admin level, None)."""
    if grid in ADMIN_LEVELS:
        return grid, None
    kind, _, res = grid.partition(":")
    if kind == "h3" and res.isdigit() and H3_MIN <= int(res) <= H3_MAX:
        return "h3", int(res)
    raise ValidationFailed(f"grid must be h3:{H3_MIN} … h3:{H3_MAX}, or one of {', '.join(ADMIN_LEVELS)} "
                           f"(got {grid!r})", field="grid")


def levels_of(grid: str) -> list[str]:
    """The grid, then the coarser levels small areas are merged into."""
    kind, res = parse_grid(grid)
    if kind == "h3":
        return [f"h3:{r}" for r in range(res, H3_MIN - 1, -1)]
    return list(ADMIN_LEVELS[ADMIN_LEVELS.index(kind):])


# ------------------------------------------------------------------------------ SQL

def production_sql() -> str:
    """SQL for the yield (kg/ha) of a plot from its planting year; unknown year: mature."""
    steps = yield_by_age()
    this_year = date.today().year
    mature = steps[-1][1]
    cases = " ".join(f"WHEN {this_year} - p.planting_year >= {age} THEN {float(kg)}" for age, kg in reversed(steps))
    return f"(CASE WHEN p.planting_year IS NULL THEN {float(mature)} {cases} ELSE 0.0 END)"


def _key_expr(level: str) -> str:
    if level.startswith("h3:"):
        return f"chacra_h3_parent(b.h3_cell, {int(level[3:])})"
    return f"left(b.ubigeo, {UBIGEO_DIGITS[level]})"


BASE = """
WITH latest AS (
    SELECT DISTINCT ON (r.plot_id, r.kind) r.plot_id, r.outcome
    FROM plots_checkresult r
    WHERE r.kind IN ('protected_area_overlap', 'plot_overlap', 'deforestation')
    ORDER BY r.plot_id, r.kind, r.checked_at DESC, r.id DESC
),
flagged AS (SELECT plot_id FROM latest WHERE outcome = 'fail' GROUP BY plot_id),
grafted AS (
    SELECT g.plot_id, sum(g.grafted_ha)::float8 AS grafted_ha,
           COALESCE(sum(g.grafted_ha) FILTER (WHERE c.fine_flavour), 0)::float8 AS fine_flavour_ha
    FROM nurseries_grafting g JOIN nurseries_clone c ON c.id = g.clone_id
    GROUP BY g.plot_id
),
b AS (
    SELECT p.id, p.producer_id, p.h3_cell, d.ubigeo, pr.gender = 'female' AS female,
           COALESCE(p.area_ha, p.declared_area_ha, 0) AS ha,
           LEAST(COALESCE(gr.grafted_ha, 0), COALESCE(p.area_ha, p.declared_area_ha, 0)) AS grafted_ha,
           LEAST(COALESCE(gr.fine_flavour_ha, 0), COALESCE(p.area_ha, p.declared_area_ha, 0)) AS fine_flavour_ha,
           COALESCE(p.area_ha, p.declared_area_ha, 0) * {production} AS production_kg,
           f.plot_id IS NOT NULL AS flagged
    FROM plots_plot p
    JOIN plots_producer pr ON pr.id = p.producer_id
    LEFT JOIN plots_adminarea d ON d.id = p.district_id
    LEFT JOIN grafted gr ON gr.plot_id = p.id
    LEFT JOIN flagged f ON f.plot_id = p.id
    WHERE p.status = 'active' {where}
)
"""

AGGREGATES = """
    count(DISTINCT b.producer_id) AS producers, count(*) AS plots, sum(b.ha) AS hectares,
    sum(b.grafted_ha) AS grafted_ha, sum(b.fine_flavour_ha) AS fine_flavour_ha,
    sum(b.production_kg) AS production_kg,
    count(DISTINCT b.producer_id) FILTER (WHERE b.female)::float8 / count(DISTINCT b.producer_id) AS women_share,
    count(*) FILTER (WHERE b.flagged) AS flagged_plots
"""
VALUE_NAMES = ("producers", "plots", "hectares", "grafted_ha", "fine_flavour_ha", "production_kg", "women_share",
               "flagged_plots")


def filters_sql(organization: str | None, clone: str | None, planting_year: str | None,
             region: str | None) -> tuple[str, list, dict]:
    from plots.selectors import region_prefix

    where, params, shown = "", [], {}
    if organization:
        where += " AND p.organization_id = (SELECT id FROM plots_organization WHERE code = %s)"
        params.append(organization)
        shown["organization"] = organization
    if clone:
        where += """ AND p.id IN (
            SELECT g.plot_id FROM nurseries_grafting g JOIN nurseries_clone c ON c.id = g.clone_id WHERE c.code = %s
            UNION
            SELECT d.to_plot_id FROM nurseries_dispatch d JOIN nurseries_materiallot l ON l.id = d.lot_id
            JOIN nurseries_clone c ON c.id = l.clone_id WHERE c.code = %s AND d.to_plot_id IS NOT NULL)"""
        params += [clone, clone]
        shown["clone"] = clone
    if planting_year:
        lo, _, hi = planting_year.partition("..")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise ValidationFailed("planting_year must be a year (2016) or a range (2014..2018)",
                                   field="planting_year") from None
        where += " AND p.planting_year BETWEEN %s AND %s"
        params += [first, last]
        shown["planting_year"] = planting_year
    if region:
        prefix = region_prefix(region)
        where += " AND d.ubigeo LIKE %s"
        params.append(prefix + "%")
        shown["region"] = prefix
    return where, params, shown


def _run(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute("SET LOCAL jit = off") if not connection.get_autocommit() else None
        cur.execute(sql, params)
        return cur.fetchall()


def _key_text(level: str, key) -> str:
    return h3.int_to_str(int(key)) if level.startswith("h3:") else str(key)


def _parent(level: str, key: str) -> str:
    """The area one level up (an H3 parent cell, or the UBIGEO of the province/department)."""
    if level.startswith("h3:"):
        return h3.cell_to_parent(key, int(level[3:]))
    return key[:UBIGEO_DIGITS[level]]


def concentration(*, metric: str = "fine_flavour_ha", grid: str = "h3:7", k: int | None = None,
                  organization: str | None = None, clone: str | None = None, planting_year: str | None = None,
                  region: str | None = None) -> Concentration:
    """One aggregate over the plots (see the module docstring), then the privacy rule.

    A single scan: the areas at the grid's level with their eight figures, and for
    each area below ``k`` producers also its producers (and which are women), at
    most k − 1 ids. Merging small areas one level up is then exact without reading
    the plots again: distinct producers are the union of those id sets, the other
    figures add up.
    """
    if metric not in METRICS:
        raise ValidationFailed(f"metric must be one of {', '.join(METRICS)} (got {metric!r})", field="metric")
    k = settings.CHACRA_PRIVACY_K if k is None else k
    if k < settings.CHACRA_PRIVACY_K:
        raise ValidationFailed(f"k may not be below the configured minimum of {settings.CHACRA_PRIVACY_K} "
                               "producers per area", field="k")
    levels = levels_of(grid)
    where, params, shown = filters_sql(organization, clone, planting_year, region)
    if levels[0].startswith("h3:"):
        h3cells.refresh()
        where += " AND p.h3_cell IS NOT NULL"
    else:
        where += " AND d.ubigeo IS NOT NULL"
    base = BASE.format(production=production_sql(), where=where)
    first = levels[0]
    rows = _run(f"""{base}
        SELECT {_key_expr(first)} AS key, {AGGREGATES},
               CASE WHEN count(DISTINCT b.producer_id) < %s THEN array_agg(DISTINCT b.producer_id) END,
               CASE WHEN count(DISTINCT b.producer_id) < %s
                    THEN array_agg(DISTINCT b.producer_id) FILTER (WHERE b.female) END
        FROM b GROUP BY 1""", params + [k, k])
    shown_areas: list[Area] = []
    # Small areas waiting to be merged: key -> (members, additive sums, producers, women)
    small: dict[str, tuple[list[str], dict[str, float], set, set]] = {}
    additive = [n for n in VALUE_NAMES if n not in ("producers", "women_share")]
    for key, *values in rows:
        producers, women = values[-2], values[-1]
        area = Area(_key_text(first, key), first, dict(zip(VALUE_NAMES, values[:-2])))
        if area.values["producers"] >= k:
            shown_areas.append(area)
        else:
            small[area.key] = ([area.key], {n: area.values[n] for n in additive}, set(producers or ()),
                               set(women or ()))
    for level in levels[1:]:
        if not small:
            break
        grouped: dict[str, tuple[list[str], dict[str, float], set, set]] = {}
        for key, (members, sums, producers, women) in small.items():
            parent = _parent(level, key)
            g = grouped.setdefault(parent, ([], {n: 0 for n in additive}, set(), set()))
            g[0].extend(members)
            for n in additive:
                g[1][n] += sums[n] or 0
            g[2].update(producers)
            g[3].update(women)
        small = {}
        for key, (members, sums, producers, women) in grouped.items():
            if len(producers) >= k:
                values = dict(sums, producers=len(producers), women_share=len(women) / len(producers))
                shown_areas.append(Area(key, level, {n: values[n] for n in VALUE_NAMES}, members=sorted(members)))
            else:
                small[key] = (members, sums, producers, women)
    suppressed = sorted(m for members, *_ in small.values() for m in members)
    shown_areas.sort(key=lambda a: (a.level, a.key))
    return Concentration(metric=metric, grid=grid, k=k, filters=shown, areas=shown_areas, suppressed=suppressed,
                         yield_by_age=yield_by_age())


# ------------------------------------------------------------------------------ output

def class_breaks(values: list[float], classes: int = 5) -> list[float]:
    """Upper bounds of up to ``classes`` classes (Fisher–Jenks natural breaks, mapclassify)."""
    import mapclassify
    import numpy as np

    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return []
    distinct = len(set(finite))
    if distinct <= classes:
        return sorted(set(finite))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Numba not installed": the pure-Python path is exact
        return [float(b) for b in mapclassify.FisherJenks(np.array(finite), k=classes).bins]


def class_of(value: float | None, breaks: list[float]) -> int | None:
    if value is None or not breaks:
        return None
    for i, upper in enumerate(breaks):
        if value <= upper:
            return i
    return len(breaks) - 1


def _h3_geometry(cells: list[str]) -> dict:
    shape = h3.cells_to_h3shape(cells)
    return h3.h3shape_to_geo(shape)


def _admin_geometries(keys: dict[str, list[str]]) -> dict[str, dict]:
    """GeoJSON geometry per output key: the union of its districts' outlines (of its
    merged members' districts when merged), simplified to ~100 m for a choropleth,
    each district from the newest edition that has it (a plot's district may come
    from a newer partial edition). One query for every area."""
    import json

    pairs = [(key, prefix) for key, members in keys.items() for prefix in (members or [key])]
    if not pairs:
        return {}
    with connection.cursor() as cur:
        cur.execute("""
            WITH district AS (SELECT DISTINCT ON (ubigeo) ubigeo, geom FROM plots_adminarea
                              WHERE level = 'district' ORDER BY ubigeo, edition DESC),
            wanted AS (SELECT * FROM unnest(%s::text[], %s::text[]) AS w(key, prefix))
            SELECT w.key, ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_Union(a.geom), 0.001), 6)
            FROM wanted w
            JOIN district a ON left(a.ubigeo, length(w.prefix)) = w.prefix
            GROUP BY w.key""", [[k for k, _ in pairs], [p for _, p in pairs]])
        return {key: json.loads(geojson) if geojson else None for key, geojson in cur.fetchall()}


def _admin_names(keys: list[str]) -> dict[str, str]:
    with connection.cursor() as cur:
        cur.execute("SELECT DISTINCT ON (ubigeo) ubigeo, name FROM plots_adminarea WHERE ubigeo = ANY(%s) "
                    "ORDER BY ubigeo, edition DESC", [keys])
        return dict(cur.fetchall())


def to_geojson(result: Concentration) -> dict:
    """A FeatureCollection ready for a choropleth: one feature per area shown (merged
    areas as the union of their members), the metric's class breaks, and what the
    privacy rule merged and suppressed."""
    values = [a.values[result.metric] for a in result.areas]
    breaks = class_breaks(values)
    if result.areas and not result.areas[0].level.startswith("h3:"):
        geoms = _admin_geometries({a.key: a.members for a in result.areas})
        names = _admin_names([a.key for a in result.areas])
    else:
        geoms = {a.key: _h3_geometry(a.members or [a.key]) for a in result.areas}
        names = {}
    features = []
    for area in result.areas:
        props = {"id": area.key, "level": area.level, "merged_from": area.members or None}
        if area.key in names:
            props["name"] = names[area.key]
        props.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in area.values.items()})
        props["class"] = class_of(area.values[result.metric], breaks)
        features.append({"type": "Feature", "id": area.key, "geometry": geoms.get(area.key), "properties": props})
    return {
        "type": "FeatureCollection",
        "metric": result.metric, "metric_description": METRICS[result.metric], "grid": result.grid,
        "filters": result.filters,
        "classes": {"method": "Fisher-Jenks natural breaks", "breaks": [round(b, 4) for b in breaks]},
        "privacy": {"k": result.k, "rule": "areas with fewer than k producers are merged with their small "
                    "neighbours in the parent area, or suppressed",
                    "merged": [{"id": a.key, "level": a.level, "members": a.members} for a in result.areas if a.merged],
                    "suppressed": result.suppressed},
        "yield_by_age_kg_ha": [{"from_age": age, "kg_ha": kg} for age, kg in result.yield_by_age],
        "features": features,
    }
