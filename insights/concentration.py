"""Where fine-flavour smallholders are concentrated: aggregates for investors.

    concentration(metric="fine_flavour_ha", grid="h3:7", k=5, organization=…, clone=…,
                  planting_year=…, region=…) -> Concentration

Every figure is computed in the database over the active plots, per producer, then
summed over privacy units (insights.privacy) and over the cells of the requested grid:
an H3 cell (resolution 5–9) or a district, province or department (INEI UBIGEO):

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

Privacy: every area shown is a union of whole privacy units — groups of at least
k producers in which each contributor class is absent or at least k strong — so
every area, and every difference between two areas of any two maps, covers no
producer or at least k (insights.privacy explains the method). A unit coarser than
the requested grid is shown as its own cell, at its resolution. No plot,
producer, lot or member cell ever appears.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import date

import h3
from django.conf import settings
from django.db import connection

from insights import privacy
from plots.errors import Forbidden, ValidationFailed

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
# Figures only for roles that may see the plots (insights.privacy, point 4).
STAFF_METRICS = ("flagged_plots",)
ADMIN_LEVELS = ("district", "province", "department")
UBIGEO_DIGITS = {"district": 6, "province": 4, "department": 2}
H3_MIN, H3_MAX = 5, 9
FLAG_KINDS = ("protected_area_overlap", "plot_overlap", "deforestation")


@dataclass
class Area:
    key: str  # the H3 cell (hex) or UBIGEO
    level: str  # "h3:7", "district" …
    values: dict[str, float]


@dataclass
class Concentration:
    metric: str
    grid: str
    k: int
    filters: dict
    areas: list[Area]
    yield_by_age: list[tuple[int, float]]
    units: int = 0  # privacy units behind the areas
    cells: list = field(default_factory=list)  # the privacy.Cell behind each area (for tests; never served)


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


# ------------------------------------------------------------------------------ SQL

def production_sql() -> str:
    """SQL for the yield (kg/ha) of a plot from its planting year; unknown year: mature."""
    steps = yield_by_age()
    this_year = date.today().year
    mature = steps[-1][1]
    cases = " ".join(f"WHEN {this_year} - p.planting_year >= {age} THEN {float(kg)}" for age, kg in reversed(steps))
    return f"(CASE WHEN p.planting_year IS NULL THEN {float(mature)} {cases} ELSE 0.0 END)"


BASE = """
WITH latest AS (
    SELECT r.plot_id, r.outcome FROM plots_latest_check r
    WHERE r.kind IN ('protected_area_overlap', 'plot_overlap', 'deforestation')
),
flagged AS (SELECT plot_id FROM latest WHERE outcome = 'fail' GROUP BY plot_id),
grafted AS (
    SELECT g.plot_id, sum(g.grafted_ha)::float8 AS grafted_ha,
           COALESCE(sum(g.grafted_ha) FILTER (WHERE c.fine_flavour), 0)::float8 AS fine_flavour_ha,
           count(*) AS graftings, sum(g.grafts) AS grafts, COALESCE(sum(g.survivors), 0) AS survivors
    FROM nurseries_grafting g JOIN nurseries_clone c ON c.id = g.clone_id
    GROUP BY g.plot_id
),
planted AS (
    SELECT DISTINCT d.to_plot_id AS plot_id
    FROM nurseries_dispatch d JOIN nurseries_materiallot l ON l.id = d.lot_id
    WHERE d.to_plot_id IS NOT NULL AND l.kind IN ('rootstock_seedling', 'grafted_plant')
),
b AS (
    SELECT p.id, p.producer_id, p.h3_cell, d.ubigeo, pr.gender = 'female' AS female,
           COALESCE(p.area_ha, p.declared_area_ha, 0) AS ha,
           LEAST(COALESCE(gr.grafted_ha, 0), COALESCE(p.area_ha, p.declared_area_ha, 0)) AS grafted_ha,
           LEAST(COALESCE(gr.fine_flavour_ha, 0), COALESCE(p.area_ha, p.declared_area_ha, 0)) AS fine_flavour_ha,
           COALESCE(p.area_ha, p.declared_area_ha, 0) * {production} AS production_kg,
           f.plot_id IS NOT NULL AS flagged,
           COALESCE(gr.grafted_ha, 0) AS grafted_raw, COALESCE(gr.graftings, 0) AS graftings,
           COALESCE(gr.grafts, 0) AS grafts, COALESCE(gr.survivors, 0) AS survivors,
           pl.plot_id IS NOT NULL AS planted,
           round(COALESCE(p.area_ha, p.declared_area_ha, 0)::numeric, 4)::float8 AS area4
    FROM plots_plot p
    JOIN plots_producer pr ON pr.id = p.producer_id
    LEFT JOIN plots_adminarea d ON d.id = p.district_id
    LEFT JOIN grafted gr ON gr.plot_id = p.id
    LEFT JOIN flagged f ON f.plot_id = p.id
    LEFT JOIN planted pl ON pl.plot_id = p.id
    WHERE p.status = 'active' {where}
)
"""

# One row per producer: where they are placed (the H3 cell of their largest plot),
# their contributor classes, their districts' hectares and their additive figures.
PER_PRODUCER = """
    SELECT b.producer_id, (array_agg(b.h3_cell ORDER BY b.ha DESC, b.id))[1],
           bool_or(b.female), array_agg(b.ubigeo), array_agg(b.ha::float8),
           count(*), sum(b.ha), sum(b.grafted_ha), sum(b.fine_flavour_ha), sum(b.production_kg),
           count(*) FILTER (WHERE b.flagged),
           sum(b.grafted_raw), sum(b.graftings), sum(b.grafts), sum(b.survivors),
           count(*) FILTER (WHERE b.graftings > 0),
           COALESCE(sum(b.area4) FILTER (WHERE b.planted), 0), count(*) FILTER (WHERE b.planted)
    FROM b WHERE b.h3_cell IS NOT NULL GROUP BY b.producer_id ORDER BY b.producer_id
"""
# The additive figures of PER_PRODUCER, in its column order (concentration's, then
# the grafting statistics' own: raw grafted hectares, graftings, planted hectares …).
ADDITIVE = ("plots", "hectares", "grafted_ha", "fine_flavour_ha", "production_kg", "flagged_plots",
            "stats_grafted_ha", "graftings", "grafts", "survivors", "plots_grafted", "planted_ha", "plots_planted")
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


def contributors(where: str = "", params: list | None = None) -> list[privacy.Contributor]:
    """Every producer with an active located plot (``where`` narrows the plots), as
    the privacy units see them. Plots without an H3 cell are left out: the write
    paths set the cells, and a read never fills them (plots.h3cells)."""
    rows = _run(BASE.format(production=production_sql(), where=where) + PER_PRODUCER, list(params or []))
    people = []
    for producer, cell, female, ubigeos, hectares, *values in rows:
        figures = dict(zip(ADDITIVE, (float(v or 0) for v in values)))
        classes = contributor_classes(figures, female=bool(female))
        districts: dict[str, float] = {}
        for ubigeo, ha in zip(ubigeos, hectares):
            if ubigeo:
                districts[ubigeo] = districts.get(ubigeo, 0.0) + (ha or 0.0)
        figures["women"] = 1.0 if female else 0.0
        people.append(privacy.Contributor(id=producer, cell=int(cell), classes=classes, districts=districts,
                                          values=figures))
    return people


def contributor_classes(figures: dict[str, float], *, female: bool) -> frozenset[str]:
    """The classes (insights.privacy.CLASSES) a producer contributes to: each published
    figure, and each difference of two published figures of one area (hectares minus
    grafted hectares, grafted minus fine-flavour …), has its own contributors."""
    tiny = 1e-9
    member = {
        "female": female, "not_female": not female,
        "grafted": figures["graftings"] > 0, "fine": figures["fine_flavour_ha"] > tiny,
        "bulk": figures["grafted_ha"] - figures["fine_flavour_ha"] > tiny,
        "ungrafted": figures["hectares"] - figures["grafted_ha"] > tiny or figures["plots"] > figures["plots_grafted"],
        "planted": figures["plots_planted"] > 0,
        "unplanted": figures["plots"] > figures["plots_planted"] or figures["hectares"] - figures["planted_ha"] > tiny,
    }
    return frozenset(name for name, yes in member.items() if yes)


def data_version() -> str:
    """A fingerprint of what the aggregates read, from a few index probes: it changes
    with any plot, producer, grafting, dispatch, check or admin-area write made
    through the services or the import paths, so cached units and maps are never
    served for older data."""
    with connection.cursor() as cur:
        cur.execute("""SELECT (SELECT max(updated_at) FROM plots_plot), (SELECT max(id) FROM plots_plot),
                              (SELECT max(updated_at) FROM plots_producer),
                              (SELECT count(*) FROM nurseries_grafting), (SELECT max(id) FROM nurseries_grafting),
                              (SELECT count(*) FROM nurseries_dispatch), (SELECT max(id) FROM nurseries_dispatch),
                              (SELECT max(id) FROM plots_checkresult), (SELECT max(id) FROM plots_adminarea)""")
        # Hashed: a cache key without spaces or colons from the timestamps.
        return hashlib.sha1("|".join(str(v) for v in cur.fetchone()).encode()).hexdigest()[:16]


def partition(*, k: int | None = None, organization: str | None = None, clone: str | None = None,
              planting_year: str | None = None) -> privacy.Partition:
    """The privacy units of the producers the filters select (see insights.privacy),
    kept five minutes per data version: every map, tile and table of one version
    is built from the same units, and building them is most of a map's cost."""
    from django.core.cache import cache

    k = settings.CHACRA_PRIVACY_K if k is None else k
    # The filters as the client typed them, hashed: a key any cache backend takes.
    filters = hashlib.blake2b(repr((organization, clone, planting_year)).encode(), digest_size=16).hexdigest()
    key = f"chacra:units:{data_version()}:{k}:{filters}"
    found = cache.get(key)
    if found is None:
        where, params, _ = filters_sql(organization, clone, planting_year, None)
        found = privacy.build_units(contributors(where, params), k)
        cache.set(key, found, 300)
    return found


def _cells(part: privacy.Partition, grid: str, prefix: str | None) -> list[privacy.Cell]:
    kind, res = parse_grid(grid)
    units = privacy.in_region(part, prefix)
    if kind == "h3":
        return privacy.h3_cells(part, res, units)
    return privacy.admin_cells(part, UBIGEO_DIGITS[kind], kind, units)


def area_values(cell: privacy.Cell) -> dict[str, float]:
    """The figures of one published cell: sums over its units."""
    sums = cell.sums(ADDITIVE + ("women",))
    producers = cell.producers
    values = {name: sums[name] for name in VALUE_NAMES if name in sums}
    values.update(producers=producers, women_share=sums["women"] / producers if producers else 0.0)
    for name in ("plots", "flagged_plots"):
        values[name] = int(round(values[name]))
    return {name: values[name] for name in VALUE_NAMES}


def check_protected(*, metric: str | None = None, k: int | None = None, organization: str | None = None,
                    clone: str | None = None, planting_year: str | None = None) -> None:
    """Refuse what would let a role without plot access subtract two outputs down to
    fewer than k producers (insights.privacy, point 4)."""
    cut = [name for name, value in (("organization", organization), ("clone", clone),
                                    ("planting_year", planting_year)) if value]
    if cut:
        raise Forbidden(f"filtering by {', '.join(cut)} is for roles that may see plots: a filtered and an "
                        "unfiltered map could be subtracted to single out fewer than k producers; filter by "
                        "region instead")
    if k is not None and k != settings.CHACRA_PRIVACY_K:
        raise Forbidden(f"k is fixed at {settings.CHACRA_PRIVACY_K} for your role: maps at two values of k "
                        "could be subtracted")
    if metric in STAFF_METRICS:
        raise Forbidden(f"{metric} is for roles that may see the plots' verdicts")


def concentration(*, metric: str = "fine_flavour_ha", grid: str = "h3:7", k: int | None = None,
                  organization: str | None = None, clone: str | None = None, planting_year: str | None = None,
                  region: str | None = None, protected: bool = True) -> Concentration:
    """The figures per published area (see the module docstring). ``protected``
    (every role that may not see plots) refuses the filters, k and metrics that
    would defeat the privacy units, and leaves out the flagged-plot counts.

    One scan gives every producer's figures; the privacy units are built from them
    and every area is a sum over whole units, so nothing is read twice and the
    areas of every grid add up from the same units.
    """
    if metric not in METRICS:
        raise ValidationFailed(f"metric must be one of {', '.join(METRICS)} (got {metric!r})", field="metric")
    if protected:
        check_protected(metric=metric, k=k, organization=organization, clone=clone, planting_year=planting_year)
    k = settings.CHACRA_PRIVACY_K if k is None else k
    if k < settings.CHACRA_PRIVACY_K:
        raise ValidationFailed(f"k may not be below the configured minimum of {settings.CHACRA_PRIVACY_K} "
                               "producers per area", field="k")
    parse_grid(grid)
    _, _, shown = filters_sql(organization, clone, planting_year, region)
    part = partition(k=k, organization=organization, clone=clone, planting_year=planting_year)
    cells = _cells(part, grid, shown.get("region"))
    areas = [Area(cell.key, cell.level, area_values(cell)) for cell in cells]
    if protected:
        for area in areas:
            for name in STAFF_METRICS:
                area.values.pop(name)
    return Concentration(metric=metric, grid=grid, k=k, filters=shown, areas=areas, yield_by_age=yield_by_age(),
                         units=len(part.units), cells=cells)


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


def _h3_geometry(cell: str) -> dict:
    return h3.cells_to_geo([cell])


def _admin_geometries(keys: list[str]) -> dict[str, dict]:
    """GeoJSON geometry per UBIGEO key: the union of its districts' outlines,
    simplified to ~100 m for a choropleth, each district from the newest edition
    that has it (a plot's district may come from a newer partial edition). One
    query for every area."""
    import json

    if not keys:
        return {}
    with connection.cursor() as cur:
        cur.execute("""
            WITH district AS (SELECT DISTINCT ON (ubigeo) ubigeo, geom FROM plots_adminarea
                              WHERE level = 'district' ORDER BY ubigeo, edition DESC)
            SELECT w.key, ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_Union(a.geom), 0.001), 6)
            FROM unnest(%s::text[]) AS w(key)
            JOIN district a ON left(a.ubigeo, length(w.key)) = w.key
            GROUP BY w.key""", [list(keys)])
        return {key: json.loads(geojson) if geojson else None for key, geojson in cur.fetchall()}


def admin_names(keys: list[str]) -> dict[str, str]:
    with connection.cursor() as cur:
        cur.execute("SELECT DISTINCT ON (ubigeo) ubigeo, name FROM plots_adminarea WHERE ubigeo = ANY(%s) "
                    "ORDER BY ubigeo, edition DESC", [keys])
        return dict(cur.fetchall())


PRIVACY_RULE = ("every area is a sum over whole privacy units: groups of at least k producers in which women, "
                "men, grafters, fine-flavour grafters, receivers of planting material and producers with a "
                "flagged plot are each absent or at least k; so every area, and every difference between areas "
                "of any two maps, covers no producer or at least k. A unit coarser than the grid is shown as its "
                "own cell (its level says which); its figures leave out the finer areas shown inside it")


def to_geojson(result: Concentration) -> dict:
    """A FeatureCollection ready for a choropleth: one feature per area shown, the
    metric's class breaks, and the privacy rule. Coarser cells come first, so a map
    that draws in order shows the finer areas on top of them."""
    values = [a.values[result.metric] for a in result.areas]
    breaks = class_breaks(values)
    admin = bool(result.areas) and not result.areas[0].level.startswith("h3:")
    if admin:
        geoms = _admin_geometries([a.key for a in result.areas])
        names = admin_names([a.key for a in result.areas])
    else:
        geoms = {a.key: _h3_geometry(a.key) for a in result.areas}
        names = {}
    features = []
    for area in sorted(result.areas, key=lambda a: (_resolution(a.level), a.key)):
        props = {"id": area.key, "level": area.level}
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
        "privacy": {"k": result.k, "method": "threshold rule with hierarchical aggregation into privacy units",
                    "rule": PRIVACY_RULE},
        "yield_by_age_kg_ha": [{"from_age": age, "kg_ha": kg} for age, kg in result.yield_by_age],
        "features": features,
    }


def _resolution(level: str) -> int:
    return int(level[3:]) if level.startswith("h3:") else 0
