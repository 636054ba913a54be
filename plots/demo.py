"""A deterministic synthetic demo: cooperatives, producers and plots around the
programme's towns in San Martín, Huánuco and Ucayali.

Plot shapes are irregular star-shaped polygons (6–14 vertices) of 0.3–12 ha, laid
on a jittered 600 m grid around each town so that they never overlap by accident;
a few are then placed on purpose over a neighbour or across a protected-area
boundary, so the overlap checks have something to find. About 5 % are small plots
surveyed as a single GPS point, and about 5 % carry an older survey in their
boundary history. The real INEI districts and SERNANP areas from ../shared/data are
loaded when that folder exists; otherwise stand-ins labelled synthetic are made.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.db import connection, transaction
from pyproj import Geod

from core.units import AREA_UNIT_SQUARE_METRES
from plots import geometry, h3cells
from plots.models import AdminArea, Organization, Plot, PlotBoundary, Producer, ProtectedArea
from plots.reference import LayerReport, load_shared_layers
from plots.services import plots_assign_districts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEMO_PREFIX = "demo-"
_GEOD = Geod(ellps="WGS84")

FIRST_NAMES_F = ["María", "Rosa", "Juana", "Carmen", "Elena", "Luz", "Marleni", "Nelly", "Gladys", "Flor",
                 "Yolanda", "Maritza", "Doris", "Edith", "Santos", "Delia", "Norma", "Aurelia"]
FIRST_NAMES_M = ["José", "Juan", "Luis", "Carlos", "Segundo", "Wilder", "Edwin", "Hernán", "Julio", "Víctor",
                 "Manuel", "Roger", "Elmer", "Teodoro", "Nilo", "Alfonso", "Jhony", "Agustín"]
SURNAMES = ["Ramírez", "Tuanama", "Panaifo", "Flores", "Vásquez", "Sangama", "García", "Huamán", "Pinedo",
            "Chávez", "Rengifo", "Cárdenas", "Shapiama", "Mendoza", "Torres", "Amasifuén", "Reátegui",
            "Ríos", "Saldaña", "Tapullima", "Ushiñahua", "Quispe", "Soria", "Campos", "Del Águila"]
SHADE = ["Bolaina", "Capirona", "Plátano", "Guaba (Inga)", "Shaina", "Caoba", "Tornillo"]


@dataclass(frozen=True)
class Town:
    name: str
    lon: float
    lat: float
    district_ubigeo: str
    district: str
    province_ubigeo: str
    province: str
    department_ubigeo: str
    department: str
    plots: int


def read_towns(path: Path = FIXTURES / "towns.csv") -> list[Town]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [Town(**{**row, "lon": float(row["lon"]), "lat": float(row["lat"]), "plots": int(row["plots"])})
                for row in csv.DictReader(fh)]


def _offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    """A point displaced by metres east/north, geodesically."""
    dist = math.hypot(east_m, north_m)
    if dist == 0:
        return lon, lat
    azimuth = math.degrees(math.atan2(east_m, north_m))
    x, y, _ = _GEOD.fwd(lon, lat, azimuth, dist)
    return x, y


def irregular_polygon(rng: random.Random, lon: float, lat: float, area_ha: float) -> Polygon:
    """A star-shaped (hence valid) polygon of ``area_ha`` geodesic hectares."""
    n = rng.randint(6, 14)
    # Evenly spread angles with jitter: every gap is below π, so the centre sees
    # every vertex and the ring is simple.
    step = 2 * math.pi / n
    angles = [i * step + rng.uniform(-0.35, 0.35) * step for i in range(n)]
    radii = [rng.uniform(0.7, 1.3) for _ in range(n)]
    # Shoelace area of the unit shape, then one scale factor to hit the target area.
    unit = 0.5 * abs(sum(radii[i] * radii[(i + 1) % n] * math.sin(angles[(i + 1) % n] - angles[i]) for i in range(n)))
    scale = math.sqrt(area_ha * 10_000 / unit)
    ring = [_offset(lon, lat, r * scale * math.sin(a), r * scale * math.cos(a)) for a, r in zip(angles, radii)]
    ring.reverse()  # angles ascend clockwise from north (azimuth), so reverse for CCW
    ring.append(ring[0])
    return Polygon(ring, srid=4326)


def _plot_area(rng: random.Random) -> float:
    # Log-normal around 2 ha, clipped to the programme's 0.3–12 ha range.
    return min(12.0, max(0.3, rng.lognormvariate(math.log(2.0), 0.8)))


def _ensure_synthetic_reference(towns: list[Town]) -> list[LayerReport]:
    """Stand-in departments/provinces/districts and protected areas, labelled synthetic."""
    report = LayerReport("synthetic admin areas")
    for t in towns:
        dept, _ = AdminArea.objects.get_or_create(
            ubigeo=t.department_ubigeo, edition=2007,
            defaults={"name": t.department, "level": "department", "synthetic": True, "source": "synthetic"})
        prov, _ = AdminArea.objects.get_or_create(
            ubigeo=t.province_ubigeo, edition=2007,
            defaults={"name": t.province, "level": "province", "parent": dept, "synthetic": True,
                      "source": "synthetic"})
        square = Polygon.from_bbox((t.lon - 0.15, t.lat - 0.15, t.lon + 0.15, t.lat + 0.15))
        square.srid = 4326
        _, created = AdminArea.objects.get_or_create(
            ubigeo=t.district_ubigeo, edition=2007,
            defaults={"name": f"{t.district} (synthetic)", "level": "district", "parent": prov, "synthetic": True,
                      "source": "synthetic square around the town", "geom": MultiPolygon(square, srid=4326)})
        report.loaded += int(created)
    pa_report = LayerReport("synthetic protected areas")
    for t in towns[:: 3]:
        # A forest reserve whose edge passes 4 km west of the town.
        square = Polygon.from_bbox((t.lon - 0.3, t.lat - 0.1, t.lon - 0.036, t.lat + 0.1))
        square.srid = 4326
        _, created = ProtectedArea.objects.get_or_create(
            official_code=f"SYN-{t.district_ubigeo}", edition="synthetic",
            defaults={"name": f"Bosque de {t.name} (synthetic)", "category": "protection_forest",
                      "source": "synthetic", "synthetic": True, "geom": MultiPolygon(square, srid=4326)})
        pa_report.loaded += int(created)
    return [report, pa_report]


def load_reference(shared: Path | None, towns: list[Town]) -> list[LayerReport]:
    if shared is not None and shared.exists():
        return load_shared_layers(shared)
    return _ensure_synthetic_reference(towns)


def _names(rng: random.Random, female: bool) -> str:
    first = rng.choice(FIRST_NAMES_F if female else FIRST_NAMES_M)
    return f"{first} {rng.choice(SURNAMES)} {rng.choice(SURNAMES)}"


def _organizations(towns: list[Town]) -> dict[str, list[Organization]]:
    """A dozen cooperatives: one per town, a second one in the three biggest."""
    by_town: dict[str, list[Organization]] = {}
    biggest = {t.name for t in sorted(towns, key=lambda t: -t.plots)[:3]}
    for t in towns:
        slug = t.name.lower().replace(" ", "-")
        orgs = [Organization(code=f"{DEMO_PREFIX}coop-{slug}", name=f"Cooperativa Agraria Cacaotera {t.name}",
                             kind=Organization.Kind.COOPERATIVE)]
        if t.name in biggest:
            orgs.append(Organization(code=f"{DEMO_PREFIX}asoc-{slug}", name=f"Asociación de Productores de Cacao "
                                     f"Fino de {t.name}", kind=Organization.Kind.ASSOCIATION))
        by_town[t.name] = orgs
    Organization.objects.bulk_create([o for orgs in by_town.values() for o in orgs])
    return by_town


def _grid_centres(rng: random.Random, town: Town, count: int) -> list[tuple[float, float]]:
    # Cells of 650 m with ±50 m jitter: two of the largest plots (12 ha, radius
    # ≤ 255 m) stay ≥ 550 m apart, so plots never overlap by chance.
    side = math.ceil(math.sqrt(count * 2.2))
    cells = [(i, j) for i in range(-side // 2, side // 2 + 1) for j in range(-side // 2, side // 2 + 1) if (i, j) != (0, 0)]
    rng.shuffle(cells)
    return [_offset(town.lon, town.lat, i * 650 + rng.uniform(-50, 50), j * 650 + rng.uniform(-50, 50))
            for i, j in cells[:count]]


def _near_protected_edge(town: Town) -> tuple[float, float] | None:
    """The point of the nearest protected area's boundary closest to the town."""
    here = Point(town.lon, town.lat, srid=4326)
    pa = (ProtectedArea.objects.filter(geom__dwithin=(here, 0.5)).exclude(category="private")
          .order_by("id").first())
    if pa is None:
        return None
    import shapely
    from shapely.ops import nearest_points

    edge = shapely.from_wkb(bytes(pa.geom.boundary.wkb))
    nearest = nearest_points(edge, shapely.Point(town.lon, town.lat))[0]
    return nearest.x, nearest.y


@dataclass
class DemoSummary:
    organizations: int
    producers: int
    plots: int
    point_plots: int
    with_history: int
    overlapping_pairs: int
    across_protected_edge: int
    reference: list[LayerReport]


@transaction.atomic
def generate(*, seed: int = 2026, shared: Path | None = None, scale: float = 1.0, progress=None) -> DemoSummary:
    """Create the demo dataset. Raises if demo data is already present (use reset())."""
    if Organization.objects.filter(code__startswith=DEMO_PREFIX).exists():
        raise RuntimeError("demo data is already loaded")
    rng = random.Random(seed)
    towns = read_towns()
    reference = load_reference(shared, towns)
    orgs_by_town = _organizations(towns)
    producers: list[Producer] = []
    plots: list[Plot] = []
    history: list[tuple[Plot, Polygon, date]] = []
    n_points = n_overlap = n_edge = 0
    for town in towns:
        count = max(1, round(town.plots * scale))
        edge = _near_protected_edge(town)
        edge_centres = [_offset(edge[0], edge[1], 0, 700 * i) for i in range(2)] if edge else []
        # Grid cells too close to the two plots placed on the protected-area edge are
        # dropped, so those plots overlap the area and nothing else.
        centres = [c for c in _grid_centres(rng, town, count + 12)
                   if all(_GEOD.inv(c[0], c[1], e[0], e[1])[2] > 560 for e in edge_centres)]
        centres = centres[:count]
        town_producers: list[Producer] = []
        for k, (lon, lat) in enumerate(centres):
            # ~1.5 plots per household: a new producer for two plots in three.
            if not town_producers or rng.random() < 0.67:
                female = rng.random() < 0.27
                org = rng.choice(orgs_by_town[town.name])
                town_producers.append(Producer(
                    code=f"{DEMO_PREFIX}p{len(producers) + len(town_producers) + 1:05d}", name=_names(rng, female),
                    gender="female" if female else "male", organization=org,
                    national_id=f"{rng.randint(0, 99_999_999):08d}", phone=f"9{rng.randint(0, 99_999_999):08d}"))
            producer = rng.choice(town_producers[-3:])
            area = _plot_area(rng)
            if k < 4 and k > 0 and plots:
                # Deliberate overlap with the previous plot of this town.
                prev = plots[-1].boundary or plots[-1].location.buffer(0.001)
                lon, lat = prev.centroid.x + 0.0006, prev.centroid.y
                n_overlap += 1
            elif k in (4, 5) and edge is not None:
                lon, lat = edge_centres[k - 4]
                n_edge += 1
            survey = date(2019, 1, 1) + timedelta(days=rng.randint(0, 5 * 365))
            plot = Plot(
                code=f"{DEMO_PREFIX}{town.district_ubigeo}-{k + 1:04d}", producer=producer, organization=producer.organization,
                tenure=rng.choice(["titled", "possession", "possession", "informal", "rented"]),
                planting_year=rng.randint(2008, 2022), survey_date=survey,
                agroforestry_system=rng.choice(["temporary_shade", "permanent_shade", "permanent_shade", "multistrata", "full_sun"]),
                gps_accuracy_m=round(rng.uniform(2.5, 12.0), 1))
            plot.shade_species = sorted(rng.sample(SHADE, rng.randint(0, 3))) if plot.agroforestry_system != "full_sun" else []
            if area < 4 and rng.random() < 0.05 and k >= 6:
                plot.location = Point(lon, lat, srid=4326)
                plot.survey_method = "gps_point"
                n_points += 1
            else:
                clean = geometry.clean_plot_geometry(irregular_polygon(rng, lon, lat, area))
                plot.boundary = clean.geom
                plot.survey_method = rng.choice(["gps_walked", "gps_walked", "gps_walked", "mobile_app", "imagery"])
                if rng.random() < 0.05:
                    older = irregular_polygon(rng, lon, lat, area * rng.uniform(0.8, 1.2))
                    history.append((plot, older, survey - timedelta(days=rng.randint(400, 900))))
            unit = rng.choices(["ha", "yugada", "topo", "m2"], weights=[80, 8, 8, 4])[0]
            declared_m2 = area * 10_000 * rng.uniform(0.8, 1.25)
            plot.declared_area_unit = unit
            plot.declared_area = round(declared_m2 / AREA_UNIT_SQUARE_METRES[unit], 2)
            plots.append(plot)
        producers.extend(town_producers)
        if progress:
            progress(town.name, len(plots))
    Producer.objects.bulk_create(producers, batch_size=2000)
    for plot in plots:
        plot.producer_id = plot.producer.id
    Plot.objects.bulk_create(plots, batch_size=1000)
    # The generator writes plots without the services, so it sets their H3 cells
    # itself (reads never do); the same point-on-surface rule as every write path.
    h3cells.refresh([p.id for p in plots])
    boundaries = []
    old_by_plot = {p.code: (g, d) for p, g, d in history}
    for plot in plots:
        start = plot.survey_date
        if plot.code in old_by_plot:
            old, since = old_by_plot[plot.code]
            boundaries.append(PlotBoundary(plot=plot, geom=geometry.to_multipolygon(geometry.orient_rfc7946(old)),
                                           valid_from=since, valid_to=start, source="demo: first survey",
                                           survey_method="mobile_app", survey_date=since))
        boundaries.append(PlotBoundary(plot=plot, geom=plot.boundary, location=plot.location, valid_from=start,
                                       source="demo", survey_method=plot.survey_method, survey_date=start,
                                       gps_accuracy_m=plot.gps_accuracy_m))
    PlotBoundary.objects.bulk_create(boundaries, batch_size=1000)
    # Fresh statistics before the district join: with the tables' estimates from before
    # the load (an empty or differently filled database, as in a test run) the planner
    # chose a plan that took minutes instead of a second for 1,500 plots.
    with connection.cursor() as cur:
        cur.execute("ANALYZE plots_adminarea; ANALYZE plots_plot; ANALYZE plots_plotboundary")
    plots_assign_districts([p.id for p in plots])
    return DemoSummary(
        organizations=sum(len(v) for v in orgs_by_town.values()), producers=len(producers), plots=len(plots),
        point_plots=n_points, with_history=len(history), overlapping_pairs=n_overlap, across_protected_edge=n_edge,
        reference=reference)


@transaction.atomic
def reset() -> int:
    """Remove the demo organizations, producers, plots and users (reference layers stay)."""
    from django.contrib.auth.models import User

    User.objects.filter(username__startswith=DEMO_PREFIX, chacra_profile__isnull=False).delete()
    plots = Plot.objects.filter(code__startswith=DEMO_PREFIX)
    PlotBoundary.objects.filter(plot__in=plots).delete()
    count = plots.count()
    plots.delete()
    Producer.objects.filter(code__startswith=DEMO_PREFIX).delete()
    Organization.objects.filter(code__startswith=DEMO_PREFIX).delete()
    return count
