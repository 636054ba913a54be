"""Reads of the lot graph: lists, origin with verdicts, mass balance.

Origin is one recursive SQL statement (hot path, raw SQL with bound parameters):
it walks the graph upstream from the lot, carrying the fraction of the lot each
upstream lot stands for, and ends at the deliveries. The share of plot P in lot L
is the sum over every path P → … → L of the product of the edge fractions, where
an edge e into lot T carries ``kg_e × factor_e / received(T)`` and
``received(T) = Σ kg × factor`` over T's inputs. Shares are computed in numeric
(exact decimal arithmetic, 20+ significant digits), so a hand-worked graph gives
its fractions back; they sum to 1 for every lot that received anything.

Each plot is shown with the boundary (or point) in force on the last day its
beans reached the lot (PlotBoundary history; the first and last delivery days are
in the Feature), its latest protected-area and deforestation results, and its
season mass balance. A plot, and so the lot, is *not compliant* on evidence of a
problem (protected-area overlap, forest loss after the cut-off, a season over the
yield ceiling) and *incomplete* when evidence is missing (no geometry, more than
4 ha without a polygon, a check not yet run, mass with no recorded origin).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from core import policy
from plots.errors import NotFound
from traceability import reasons as reason_texts
from traceability.models import DRY_EQUIVALENT, MASS_TOLERANCE, ProductLot

COMPLIANT, NOT_COMPLIANT, INCOMPLETE = "compliant", "not_compliant", "incomplete"
# Plots above this area must be mapped as polygons (EUDR Art. 2(28)).
POINT_MAX_HA = 4.0


def _dry_case(column: str) -> tuple[str, dict[str, Any]]:
    """SQL CASE turning a lot form into its dry-equivalent factor, from DRY_EQUIVALENT
    (one table for Python and SQL, as plots does for area units), with its parameters."""
    whens, params = [], {}
    for i, (form, factor) in enumerate(DRY_EQUIVALENT.items()):
        whens.append(f"WHEN {column} = %(dry_form_{i})s THEN %(dry_factor_{i})s::numeric")
        params[f"dry_form_{i}"], params[f"dry_factor_{i}"] = str(form), factor
    return f"(CASE {' '.join(whens)} END)", params


def _upstream(lot_id: int) -> tuple[str, dict[str, Any]]:
    return _UPSTREAM, {"lot": lot_id}


def _seasons() -> tuple[str, dict[str, Any]]:
    dry, params = _dry_case("t.form")
    return _SEASONS.replace("{dry}", dry), params


# The upstream walk: every path from the lot back to a delivery, with the
# fraction of the lot it carries. UNION ALL, not UNION: two paths reaching the same
# upstream lot both carry mass and must both be summed.
_UPSTREAM = """
WITH RECURSIVE up(lot_id, share, depth) AS (
    SELECT %(lot)s::bigint, 1::numeric, 0
  UNION ALL
    SELECT e.source_lot_id, up.share * e.kg * e.factor / r.received, up.depth + 1
    FROM up
    JOIN traceability_lotinput e ON e.target_id = up.lot_id AND e.source_lot_id IS NOT NULL
    CROSS JOIN LATERAL (SELECT SUM(i.kg * i.factor) AS received FROM traceability_lotinput i
                        WHERE i.target_id = up.lot_id) r
    WHERE up.depth < 200  -- the triggers keep the graph acyclic; this bounds the walk should one slip in
),
delivered AS (
    SELECT d.source_plot_id AS plot_id, extract(year FROM d.date)::int AS season,
           SUM(up.share * d.kg * d.factor / r.received) AS share, MIN(d.date) AS first_day, MAX(d.date) AS last_day
    FROM up
    JOIN traceability_lotinput d ON d.target_id = up.lot_id AND d.source_plot_id IS NOT NULL
    CROSS JOIN LATERAL (SELECT SUM(i.kg * i.factor) AS received FROM traceability_lotinput i
                        WHERE i.target_id = up.lot_id) r
    GROUP BY 1, 2
),
plot_share AS (
    SELECT plot_id, SUM(share) AS share, MIN(first_day) AS first_day, MAX(last_day) AS last_day,
           array_agg(season ORDER BY season) AS seasons
    FROM delivered GROUP BY plot_id
)
"""

# A plot's dry-equivalent kg per season, for the seasons in which its beans reach
# the lot (ps.seasons). Season = calendar year of delivery: Peru's main (Mar–Jul)
# and mid (Oct–Dec) crops both fall inside one year. Every delivery of the plot in
# that season counts, whichever lot it went to. A lateral index probe per plot (on
# lotinput(source_plot, date)): joining a CTE instead is planned as a nested loop
# over CTE scans, quadratic in the number of plots.
_SEASONS = """
SELECT (array_agg(b.season ORDER BY b.dry_kg DESC))[1] AS worst_season, MAX(b.dry_kg) AS worst_dry_kg,
       json_agg(json_build_object('season', b.season, 'dry_kg', round(b.dry_kg, 3)) ORDER BY b.season)
           AS seasons_json
FROM (SELECT extract(year FROM d.date)::int AS season, SUM(d.kg * {dry}) AS dry_kg
      FROM traceability_lotinput d JOIN traceability_productlot t ON t.id = d.target_id
      WHERE d.source_plot_id = p.id AND extract(year FROM d.date)::int = ANY(ps.seasons)
      GROUP BY 1) b
"""

# Per plot: the boundary (or point) in force on its last delivery day reaching the
# lot, the latest protected-area and deforestation results, the season balance,
# and the reasons that make it not compliant (evidence of a problem) or incomplete
# (missing evidence), each rendered from its template in traceability.reasons. Feature text is built here so the list never becomes Python
# dicts (DESIGN.md, performance principles).
_ORIGIN_SELECT = """
, judged AS (
    SELECT ps.plot_id, ps.share, ps.first_day, ps.last_day, p.code, pr.code AS producer_code, pr.name AS producer,
           o.code AS organization, pb.id AS boundary_id, pb.geom, pb.location, pb.valid_from, pb.valid_to,
           pb.survey_method, pb.area_ha AS boundary_ha, p.declared_area_ha,
           COALESCE(pb.area_ha, p.declared_area_ha) AS area_ha,
           pa.outcome AS pa_outcome, pa.checked_at AS pa_at, pa.figures AS pa_figures,
           df.outcome AS df_outcome, df.checked_at AS df_at,
           mb.worst_season, mb.worst_dry_kg, mb.seasons_json,
           array_remove(ARRAY[
               CASE WHEN pa.outcome = 'fail' THEN format(%(reason_protected_area)s, COALESCE(
                   (SELECT string_agg(a->>'name', ', ') FROM jsonb_array_elements(pa.figures->'areas') a), '?')) END,
               CASE WHEN df.outcome = 'fail' THEN format(%(reason_forest_loss)s) END,
               CASE WHEN mb.worst_dry_kg > COALESCE(pb.area_ha, p.declared_area_ha) * %(ceiling)s
                    THEN format(%(reason_over_yield_ceiling)s, round(mb.worst_dry_kg, 1), mb.worst_season,
                                round((COALESCE(pb.area_ha, p.declared_area_ha) * %(ceiling)s)::numeric, 1),
                                round(COALESCE(pb.area_ha, p.declared_area_ha)::numeric, 4), %(ceiling)s) END
           ], NULL) AS failures,
           array_remove(ARRAY[
               CASE WHEN pb.id IS NULL THEN format(%(reason_no_geometry)s, ps.last_day) END,
               CASE WHEN pb.geom IS NULL AND pb.location IS NOT NULL AND p.declared_area_ha > %(point_max)s
                    THEN format(%(reason_large_point)s, round(p.declared_area_ha::numeric, 2)) END,
               CASE WHEN pb.geom IS NULL AND pb.location IS NOT NULL AND p.declared_area_ha IS NULL
                    THEN format(%(reason_point_without_area)s) END,
               CASE WHEN pa.outcome IS NULL THEN format(%(reason_protected_area_not_run)s)
                    WHEN pa.outcome = 'insufficient_data' THEN format(%(reason_protected_area_no_data)s) END,
               CASE WHEN df.outcome IS NULL THEN format(%(reason_deforestation_not_run)s)
                    WHEN df.outcome = 'insufficient_data' THEN format(%(reason_deforestation_no_data)s) END
           ], NULL) AS missing
    FROM plot_share ps
    JOIN plots_plot p ON p.id = ps.plot_id
    JOIN plots_producer pr ON pr.id = p.producer_id
    JOIN plots_organization o ON o.id = p.organization_id
    LEFT JOIN LATERAL (SELECT * FROM plots_plotboundary b WHERE b.plot_id = p.id AND b.valid_from <= ps.last_day
                       AND (b.valid_to IS NULL OR b.valid_to > ps.last_day)
                       ORDER BY b.valid_from DESC, b.id DESC LIMIT 1) pb ON true
    LEFT JOIN LATERAL chacra_latest_check(p.id, 'protected_area_overlap') pa ON true
    LEFT JOIN LATERAL chacra_latest_check(p.id, 'deforestation') df ON true
    LEFT JOIN LATERAL ({seasons}) mb ON true
)
SELECT j.code, j.share, j.failures, j.missing,
       -- What the lot received (kg × factor over its inputs), on every row: one round
       -- trip for the whole origin instead of a second statement (see origin_of).
       (SELECT COALESCE(SUM(i.kg * i.factor), 0) FROM traceability_lotinput i WHERE i.target_id = %(lot)s) AS received,
       json_build_object(
           'type', 'Feature', 'id', j.code,
           'geometry', ST_AsGeoJSON(ST_ForcePolygonCCW(COALESCE(j.geom, j.location)), 7)::json,
           'properties', json_build_object(
               'plot', j.code,
               'producer', CASE WHEN %(names)s THEN j.producer END,
               'producer_code', CASE WHEN %(names)s THEN j.producer_code END,
               'organization', j.organization,
               'share', j.share::float8, 'kg', round(j.share * %(lot_kg)s, 3)::float8,
               'first_delivery', j.first_day, 'last_delivery', j.last_day,
               'boundary', CASE WHEN j.boundary_id IS NULL THEN NULL ELSE json_build_object(
                   'valid_from', j.valid_from, 'valid_to', j.valid_to, 'survey_method', j.survey_method,
                   'kind', CASE WHEN j.geom IS NULL THEN 'point' ELSE 'polygon' END) END,
               'area_ha', round(j.area_ha::numeric, 4)::float8,
               'checks', json_build_object(
                   'protected_area_overlap', CASE WHEN j.pa_outcome IS NULL THEN NULL ELSE
                       json_build_object('outcome', j.pa_outcome, 'checked_at', j.pa_at) END,
                   'deforestation', CASE WHEN j.df_outcome IS NULL THEN NULL ELSE
                       json_build_object('outcome', j.df_outcome, 'checked_at', j.df_at) END),
               'mass_balance', json_build_object('seasons', j.seasons_json, 'ceiling_kg_ha', %(ceiling)s),
               'verdict', CASE WHEN cardinality(j.failures) > 0 THEN 'not_compliant'
                               WHEN cardinality(j.missing) > 0 THEN 'incomplete' ELSE 'compliant' END,
               'reasons', to_json(j.failures || j.missing)
           ))::text AS feature
FROM judged j
ORDER BY j.share DESC, j.code
"""


@dataclass
class Origin:
    """A lot's origin: every contributing plot as a Feature, and the lot's verdict."""

    lot: ProductLot
    features: list[str]
    verdict: str
    reasons: list[dict[str, str]]
    received_kg: Decimal
    share_total: Decimal
    names_shown: bool
    plot_shares: dict[str, Decimal] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"code": self.lot.code, "form": self.lot.form, "kg": float(self.lot.kg), "date": self.lot.date,
                "organization": self.lot.organization.code, "received_kg": float(self.received_kg),
                "plots": len(self.features), "share_total": float(self.share_total)}


def lot_list(*, user, form: str | None = None, plot: str | None = None) -> QuerySet[ProductLot]:
    """The lots ``user`` may see (investors: refused); ``plot``: those that received
    a harvest delivery from that plot."""
    _refuse_investors(user)
    qs = ProductLot.objects.visible_to(user).select_related("organization", "facility")
    if form:
        qs = qs.filter(form=form)
    if plot:
        qs = qs.filter(inputs__source_plot__code=plot).distinct()
    return qs.order_by("code")


def _refuse_investors(user) -> None:
    policy.require_read(user, "product_lot", "your role does not see harvest lots or their origin")


def lot_get(*, user, code: str) -> ProductLot:
    """A lot ``user`` may see, or NotFound (a buyer learns nothing about other lots)."""
    _refuse_investors(user)
    lot = lot_list(user=user).filter(code=code).first()
    if lot is None:
        raise NotFound(f"no lot {code!r} that you may see")
    return lot


def names_visible(user, lot: ProductLot) -> bool:
    """Producer names: staff and the lot's cooperative always; a buyer only when no
    shipment of the lot to its organization is confidential (EUDR geoLocationConfidential)."""
    if policy.scope(user, "product_lot") != policy.SUPPLIED:
        return True
    mine = policy.visible(user, "shipment", lot.shipments.all())
    return not mine.filter(geolocation_confidential=True).exists()


def _received(lot_id: int) -> Decimal:
    with connection.cursor() as cur:
        cur.execute("SELECT COALESCE(SUM(kg * factor), 0) FROM traceability_lotinput WHERE target_id = %s", [lot_id])
        return Decimal(cur.fetchone()[0])


def origin_of(lot: ProductLot, *, names: bool = True) -> Origin:
    """Every plot contributing to ``lot`` with its share, as Features, and the verdict."""
    sql, params = _upstream(lot.id)
    seasons, dry_params = _seasons()
    params.update(dry_params)
    params.update(reason_texts.sql_params())
    params.update({"ceiling": settings.CHACRA_YIELD_CEILING_KG_HA, "point_max": POINT_MAX_HA, "names": names,
                   "lot_kg": lot.kg})
    with connection.cursor() as cur:
        cur.execute(sql + _ORIGIN_SELECT.replace("{seasons}", seasons), params)
        rows = cur.fetchall()
    # Every row carries the lot's received mass; a lot no plot reaches has no row to carry it.
    received = Decimal(rows[0][4]) if rows else _received(lot.id)
    reasons: list[dict[str, str]] = []
    for code, _share, failures, missing, _received_kg, _feature in rows:
        reasons += [{"plot": code, "verdict": NOT_COMPLIANT, "reason": r} for r in failures]
        reasons += [{"plot": code, "verdict": INCOMPLETE, "reason": r} for r in missing]
    reasons += _lot_reasons(lot, received, bool(rows))
    verdict = (NOT_COMPLIANT if any(r["verdict"] == NOT_COMPLIANT for r in reasons)
               else INCOMPLETE if reasons else COMPLIANT)
    shares = {row[0]: Decimal(row[1]) for row in rows}
    return Origin(lot=lot, features=[row[5] for row in rows], verdict=verdict, reasons=reasons,
                  received_kg=received, share_total=sum(shares.values(), Decimal(0)), names_shown=names,
                  plot_shares=shares)


def _lot_reasons(lot: ProductLot, received: Decimal, any_plot: bool) -> list[dict[str, str]]:
    """Lot-level gaps: mass with no recorded origin."""
    if not any_plot:
        return [{"plot": None, "verdict": INCOMPLETE, "reason": reason_texts.LOT["no_delivery"]}]
    converted = lot.kg / (1 + MASS_TOLERANCE)
    if received < converted:
        missing = (lot.kg - received).quantize(Decimal("0.001"))
        return [{"plot": None, "verdict": INCOMPLETE,
                 "reason": reason_texts.LOT["mass_without_origin"].format(missing=missing, kg=lot.kg)}]
    return []


def lot_origin(*, user, code: str) -> Origin:
    """The origin of a lot ``user`` may see, producer names hidden where confidential."""
    lot = lot_get(user=user, code=code)
    return origin_of(lot, names=names_visible(user, lot))


_BALANCE = """
SELECT p.code, b.season, round(b.dry_kg, 3)::float8, COALESCE(pb.area_ha, p.declared_area_ha),
       CASE WHEN pb.area_ha IS NOT NULL THEN 'boundary' WHEN p.declared_area_ha IS NOT NULL THEN 'declared' END
FROM plot_share ps
JOIN plots_plot p ON p.id = ps.plot_id
LEFT JOIN LATERAL (SELECT b2.area_ha FROM plots_plotboundary b2 WHERE b2.plot_id = p.id
                   AND b2.valid_from <= ps.last_day AND (b2.valid_to IS NULL OR b2.valid_to > ps.last_day)
                   ORDER BY b2.valid_from DESC LIMIT 1) pb ON true
CROSS JOIN LATERAL (SELECT extract(year FROM d.date)::int AS season, SUM(d.kg * {dry}) AS dry_kg
                    FROM traceability_lotinput d JOIN traceability_productlot t ON t.id = d.target_id
                    WHERE d.source_plot_id = p.id AND extract(year FROM d.date)::int = ANY(ps.seasons)
                    GROUP BY 1) b
ORDER BY p.code, b.season
"""

_DOWNSTREAM = """
WITH RECURSIVE down(lot_id) AS (
    SELECT DISTINCT target_id FROM traceability_lotinput WHERE source_plot_id = %(plot)s
      AND extract(year FROM date)::int = %(season)s
  UNION
    SELECT e.target_id FROM traceability_lotinput e JOIN down ON e.source_lot_id = down.lot_id
)
SELECT l.code FROM down JOIN traceability_productlot l ON l.id = down.lot_id ORDER BY l.code
"""


def lot_mass_balance(*, user, code: str) -> dict[str, Any]:
    """Per contributing plot and season: delivered dry-equivalent kg against geodesic
    area × CHACRA_YIELD_CEILING_KG_HA. Flags plots over the ceiling, and for each the
    lots (visible to ``user``) its beans of that season reach."""
    lot = lot_get(user=user, code=code)
    ceiling = settings.CHACRA_YIELD_CEILING_KG_HA
    sql, params = _upstream(lot.id)
    dry, dry_params = _dry_case("t.form")
    with connection.cursor() as cur:
        cur.execute(sql + _BALANCE.replace("{dry}", dry), {**params, **dry_params})
        rows = cur.fetchall()
    visible = set(lot_list(user=user).values_list("code", flat=True))
    plots, flagged = [], False
    for plot, season, dry_kg, area_ha, source in rows:
        limit = area_ha * ceiling if area_ha is not None else None
        over = limit is not None and dry_kg > limit
        entry = {"plot": plot, "season": season, "dry_kg": dry_kg,
                 "area_ha": round(area_ha, 4) if area_ha is not None else None, "area_source": source,
                 "ceiling_kg": round(limit, 3) if limit is not None else None,
                 "yield_kg_ha": round(dry_kg / area_ha, 1) if area_ha else None,
                 "over_ceiling": over if limit is not None else None}
        if over:
            flagged = True
            entry["reaches"] = [c for c in _lots_reached(plot, season) if c in visible]
        plots.append(entry)
    return {"lot": lot.code, "ceiling_kg_ha": ceiling, "dry_equivalent": {str(k): v for k, v in DRY_EQUIVALENT.items()},
            "season": "calendar year of delivery", "flagged": flagged, "plots": plots}


def _lots_reached(plot_code: str, season: int) -> list[str]:
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM plots_plot WHERE code = %s", [plot_code])
        plot_id = cur.fetchone()[0]
        cur.execute(_DOWNSTREAM, {"plot": plot_id, "season": season})
        return [r[0] for r in cur.fetchall()]


_EXPORT_SELECT = """
SELECT p.code, pr.code, pr.name, COALESCE(d.name, ''), ST_AsGeoJSON(pb.geom, 15), ST_AsGeoJSON(pb.location, 15),
       pb.area_ha, p.declared_area_ha
FROM plot_share ps
JOIN plots_plot p ON p.id = ps.plot_id
JOIN plots_producer pr ON pr.id = p.producer_id
LEFT JOIN plots_adminarea d ON d.id = p.district_id
LEFT JOIN LATERAL (SELECT b.geom, b.location, b.area_ha FROM plots_plotboundary b WHERE b.plot_id = p.id
                   AND b.valid_from <= ps.last_day AND (b.valid_to IS NULL OR b.valid_to > ps.last_day)
                   ORDER BY b.valid_from DESC, b.id DESC LIMIT 1) pb ON true
ORDER BY pr.code, p.code
"""


@dataclass(frozen=True)
class ExportRecord:
    """What the EUDR exporter needs of one plot: geometry in force on its last delivery
    reaching the lot (full-precision GeoJSON text), areas in hectares."""

    plot: str
    producer_code: str
    producer_name: str
    district: str
    polygon_geojson: str | None
    point_geojson: str | None
    area_ha: float | None
    declared_area_ha: float | None


def export_records(lot: ProductLot) -> list[ExportRecord]:
    """Every plot reaching ``lot``, ordered by producer then plot."""
    sql, params = _upstream(lot.id)
    with connection.cursor() as cur:
        cur.execute(sql + _EXPORT_SELECT, params)
        return [ExportRecord(*row) for row in cur.fetchall()]
