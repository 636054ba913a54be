"""Where to put N new collection or post-harvest centres: a weighted p-median.

    suggest_sites(n=3, keep_existing=True, organization=None, resolution=7) -> Suggestion

Demand is the estimated production (insights.concentration's production_kg) of the
active plots, gathered per H3 cell (resolution 7 by default, ~5 km² cells; a privacy
unit coarser than that at its own cell) at the cell's centre. Candidate sites are the centres of the cells with production that
lie outside every protected area (protected areas and buffer zones alike). Existing
collection centres and fermentaries (traceability.Facility with a location) are
kept fixed when ``keep_existing``. The p-median — choose the sites that minimise
the sum over cells of production × geodesic distance to the nearest open site — is
solved exactly as an integer programme by spopt (PySAL) with the CBC solver that
ships with PuLP. Distances are geodesic on WGS 84 (pyproj's Geod).

Privacy: demand is read through the privacy units (insights.privacy), so the
optimisation itself, and every figure it returns, sees only sums over groups of at
least k producers; never a plot or producer. Filtering by organization is for
roles that may see plots.
"""

from __future__ import annotations

from dataclasses import dataclass

import h3
import numpy as np
from django.conf import settings
from django.db import connection
from pyproj import Geod

from insights import privacy
from insights.concentration import check_protected, partition
from plots.errors import ValidationFailed

GEOD = Geod(ellps="WGS84")
MAX_CANDIDATES = 60  # the most productive eligible cells; keeps the integer programme small (seconds)
EXISTING_KINDS = ("collection_centre", "fermentary")


@dataclass
class Suggestion:
    demand: list[dict]  # {cell, lon, lat, production_kg, producers}
    existing: list[dict]  # {code, name, lon, lat}
    sites: list[dict]  # {lon, lat, cell, production_kg, producers, existing, code}
    before_km: float | None  # production-weighted mean distance to the existing facilities
    after_km: float
    new_sites: int
    k: int


def _demand(resolution: int, organization: str | None) -> list[tuple[str, float, float, float, int]]:
    """(cell, lon, lat, production kg, producers) per demand cell: the privacy units
    (insights.privacy) on the H3 grid of ``resolution``, so the optimisation, like every
    figure it returns, sees only sums over whole units."""
    part = partition(organization=organization)
    out = []
    for cell in privacy.h3_cells(part, resolution):
        production = sum(unit.sums(["production_kg"])["production_kg"] for unit in cell.units)
        if production <= 0:
            continue
        lat, lon = h3.cell_to_latlng(cell.key)
        out.append((cell.key, lon, lat, float(production), cell.producers))
    return out


def _outside_protected(points: list[tuple[float, float]]) -> list[bool]:
    if not points:
        return []
    with connection.cursor() as cur:
        cur.execute("""
            SELECT NOT EXISTS (SELECT 1 FROM plots_protectedareapiece pc
                               WHERE ST_Intersects(pc.geom, ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326)))
            FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS q(lon, lat, n) ORDER BY q.n""",
                    [[p[0] for p in points], [p[1] for p in points]])
        return [r[0] for r in cur.fetchall()]


def _existing(organization: str | None) -> list[dict]:
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('traceability_facility') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []
        sql = ("SELECT f.code, f.name, ST_X(f.location), ST_Y(f.location) FROM traceability_facility f "
               "JOIN plots_organization o ON o.id = f.organization_id "
               "WHERE f.location IS NOT NULL AND f.kind = ANY(%s)")
        params: list = [list(EXISTING_KINDS)]
        if organization:
            sql += " AND o.code = %s"
            params.append(organization)
        cur.execute(sql + " ORDER BY f.code", params)
        return [{"code": c, "name": n, "lon": x, "lat": y} for c, n, x, y in cur.fetchall()]


def distances_km(from_lon, from_lat, to_lon, to_lat) -> np.ndarray:
    """Geodesic distances (km), a matrix: rows the ``from`` points, columns the ``to`` points."""
    a_lon, b_lon = np.meshgrid(np.asarray(from_lon, float), np.asarray(to_lon, float), indexing="ij")
    a_lat, b_lat = np.meshgrid(np.asarray(from_lat, float), np.asarray(to_lat, float), indexing="ij")
    _, _, metres = GEOD.inv(a_lon.ravel(), a_lat.ravel(), b_lon.ravel(), b_lat.ravel())
    return np.asarray(metres).reshape(a_lon.shape) / 1000.0


def weighted_mean(cost: np.ndarray, weights: np.ndarray) -> float:
    """Production-weighted mean distance to the nearest of the columns of ``cost``."""
    return float((cost.min(axis=1) * weights).sum() / weights.sum())


def suggest_sites(*, n: int = 3, keep_existing: bool = True, organization: str | None = None,
                  resolution: int = 7, time_limit_s: int = 120, protected: bool = True) -> Suggestion:
    """``protected``: for a role that may not see plots (no organization filter)."""
    import pulp
    from spopt.locate import PMedian

    if not 1 <= n <= 20:
        raise ValidationFailed("n must be between 1 and 20 new sites", field="n")
    if not 5 <= resolution <= 8:
        raise ValidationFailed("resolution must be between 5 and 8 (H3)", field="resolution")
    if protected:
        check_protected(organization=organization)
    k = settings.CHACRA_PRIVACY_K
    demand = _demand(resolution, organization)
    if not demand:
        raise ValidationFailed("no production to serve: no active plot with an estimated production")
    existing = _existing(organization) if keep_existing else []
    weights = np.array([d[3] for d in demand])
    # Candidates: the most productive cells outside the protected areas.
    order = np.argsort(-weights, kind="stable")
    allowed = _outside_protected([(demand[i][1], demand[i][2]) for i in order])
    candidates = [int(i) for i, ok in zip(order, allowed) if ok][:MAX_CANDIDATES]
    if len(candidates) < n:
        raise ValidationFailed(f"only {len(candidates)} candidate site(s) outside the protected areas; ask for fewer")
    lon = np.array([d[1] for d in demand])
    lat = np.array([d[2] for d in demand])
    site_lon = np.concatenate([[e["lon"] for e in existing], lon[candidates]])
    site_lat = np.concatenate([[e["lat"] for e in existing], lat[candidates]])
    cost = distances_km(lon, lat, site_lon, site_lat)
    fixed = np.zeros(len(site_lon), dtype=bool)
    fixed[: len(existing)] = True
    model = PMedian.from_cost_matrix(cost, weights, p_facilities=len(existing) + n,
                                     predefined_facilities_arr=fixed if existing else None)
    # results=False: the allocation and distances are computed here (geodesic); spopt's own
    # mean distance divides by a None objective when every demand sits on a candidate.
    model = model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s), results=False)
    if pulp.LpStatus[model.problem.status] != "Optimal":
        raise ValidationFailed(f"the solver stopped without an optimal layout ({pulp.LpStatus[model.problem.status]})")
    chosen = [j for j, var in enumerate(model.fac_vars) if var.value() and var.value() > 0.5]
    nearest = np.array(chosen)[cost[:, chosen].argmin(axis=1)]
    sites = []
    for j in chosen:
        served = nearest == j
        producers = int(sum(demand[i][4] for i in np.flatnonzero(served)))
        is_existing = j < len(existing)
        site = {"lon": float(site_lon[j]), "lat": float(site_lat[j]), "existing": is_existing,
                "code": existing[j]["code"] if is_existing else None,
                "cell": None if is_existing else demand[candidates[j - len(existing)]][0],
                "producers": producers if producers >= k else None,
                "production_kg": float(weights[served].sum()) if producers >= k else None}
        sites.append(site)
    before = weighted_mean(cost[:, : len(existing)], weights) if existing else None
    after = weighted_mean(cost[:, chosen], weights)
    shown_demand = [{"cell": c, "lon": x, "lat": y, "production_kg": p, "producers": m}
                    for c, x, y, p, m in demand if m >= k]
    return Suggestion(demand=shown_demand, existing=existing, sites=sites, before_km=before, after_km=after,
                      new_sites=n, k=k)


def to_geojson(s: Suggestion) -> dict:
    features = []
    for d in s.demand:
        features.append({"type": "Feature", "id": f"demand-{d['cell']}",
                         "geometry": {"type": "Point", "coordinates": [round(d["lon"], 6), round(d["lat"], 6)]},
                         "properties": {"role": "demand", "cell": d["cell"], "production_kg": round(d["production_kg"], 1),
                                        "producers": d["producers"]}})
    for e in s.existing:
        features.append({"type": "Feature", "id": f"existing-{e['code']}",
                         "geometry": {"type": "Point", "coordinates": [round(e["lon"], 6), round(e["lat"], 6)]},
                         "properties": {"role": "existing", "code": e["code"], "label": e["name"]}})
    new = 0
    for site in s.sites:
        if site["existing"]:
            continue
        new += 1
        features.append({"type": "Feature", "id": f"site-{new}",
                         "geometry": {"type": "Point", "coordinates": [round(site["lon"], 6), round(site["lat"], 6)]},
                         "properties": {"role": "suggested", "label": f"site {new}", "cell": site["cell"],
                                        "production_kg": None if site["production_kg"] is None
                                        else round(site["production_kg"], 1),
                                        "producers": site["producers"]}})
    return {
        "type": "FeatureCollection",
        "method": "weighted p-median (spopt, CBC), geodesic distances, candidates outside protected areas",
        "summary": {"new_sites": s.new_sites, "existing_sites": len(s.existing),
                    "mean_distance_km_before": None if s.before_km is None else round(s.before_km, 3),
                    "mean_distance_km_after": round(s.after_km, 3), "privacy_k": s.k,
                    "served": [{"site": f.get("properties", {}).get("label"),
                                "production_kg": f["properties"].get("production_kg")}
                               for f in features if f["properties"]["role"] == "suggested"]},
        "features": features,
    }
