"""Deterministic demo nurseries, lots, dispatches and graftings over the demo plots.

Run after plots.demo.generate. The story it tells, per region (San Martín,
Huánuco, Ucayali), scaled to the demo plots:

- a few plots per region are *mother plots* of one fine-flavour clone each
  (ICS-95, ICS-1, TSH-565 …); budwood lots (varetas) are cut from them;
- every town has a cacao nursery (run by its cooperative) that sows seed lots,
  raises rootstock seedlings from them, and grafts some of them with budwood into
  grafted-plant lots; each region has a clonal garden, a shade-tree nursery
  (Bolaina, Capirona) and a plantain nursery;
- *planted* plots receive rootstock seedlings (most, to be grafted in the field)
  or nursery-grafted plants (a few), at 1,111 plants/ha (3 m × 3 m), plus shade
  seedlings and plantain suckers when they are agroforestry plots;
- budwood is dispatched to the rootstock plots and grafted there; the grafted
  hectares of each region are its planted hectares times the programme's reported
  ratio (Ucayali 6,974/10,621, San Martín 8,927/9,895, Huánuco 6,761/8,572), and the
  planted hectares of the three regions stand in the programme's proportions.

Quantities are built from the plots up (dispatches first, then each lot holds what
it sent out plus a spare), so conservation holds by construction; the database
triggers check every row anyway. About 250 lots at scale 1.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from django.contrib.gis.geos import MultiPolygon, Polygon
from django.db import connection, transaction

from nurseries import services
from nurseries.models import Clone, Dispatch, Grafting, LotParent, MaterialLot, Nursery
from plots.demo import DEMO_PREFIX, _offset, read_towns
from plots.models import Organization, Plot

# Programme figures: (grafted ha, planted ha) by department UBIGEO.
PROGRAMME = {"22": (8_927, 9_895), "10": (6_761, 8_572), "25": (6_974, 10_621)}
PLANTED_SHARE = 0.55  # of the scarcest region's demo area that is planted
PLANTS_PER_HA = 1_111  # 3 m × 3 m
GRAFTS_PER_STICK = 4
NURSERY_GRAFTED_SHARE = 0.04  # planted plots that receive nursery-grafted plants instead of rootstock
MOTHER_PLOTS_PER_REGION = 3
PLOTS_PER_ROOTSTOCK_LOT = 11
PLOTS_PER_GRAFTED_LOT = 3
PLOTS_PER_SHADE_LOT = 18
PLOTS_PER_PLANTAIN_LOT = 22
BUDWOOD_LOTS_PER_REGION = 15
FINE = ["ICS-95", "ICS-1", "ICS-39", "TSH-565", "UF-613", "ICS-6", "EET-95", "VRAE-99"]
Q4 = Decimal("0.0001")


@dataclass
class RegionTotals:
    planted_ha: Decimal = Decimal(0)
    grafted_ha: Decimal = Decimal(0)
    plots_planted: int = 0
    plots_grafted: int = 0

    @property
    def ratio(self) -> float:
        return float(self.grafted_ha / self.planted_ha) if self.planted_ha else 0.0


@dataclass
class NurseryDemoSummary:
    nurseries: int
    lots: dict[str, int]
    dispatches: int
    graftings: int
    regions: dict[str | None, RegionTotals] = field(default_factory=dict)

    def line(self) -> str:
        parts = ", ".join(f"{self._name(k)} {v.grafted_ha:.1f}/{v.planted_ha:.1f} ha grafted/planted "
                          f"({v.ratio:.1%})" for k, v in sorted(self.regions.items(), key=lambda kv: kv[0] or ""))
        return (f"nurseries: {self.nurseries} nurseries, {sum(self.lots.values())} lots, {self.dispatches} dispatches, "
                f"{self.graftings} graftings; {parts}")

    @staticmethod
    def _name(key: str | None) -> str:
        return {"22": "San Martín", "10": "Huánuco", "25": "Ucayali"}.get(key or "", key or "no district")


@dataclass
class _Plot:
    id: int
    code: str
    town: str
    region: str | None
    area: Decimal  # round(area_ha, 4) as PostgreSQL computes it, the stats' planted area
    survey: date
    agroforestry: str
    boundary: MultiPolygon


def _demo_plots() -> list[_Plot]:
    """Active demo plots with a boundary, with their region by the stats' rule."""
    towns = {t.district_ubigeo: t.name for t in read_towns()}
    sql = """SELECT p.id, p.code, COALESCE(dep.ubigeo, left(dist.ubigeo, 2)), round(p.area_ha::numeric, 4),
                    p.survey_date, p.agroforestry_system
               FROM plots_plot p
               LEFT JOIN plots_adminarea dist ON dist.id = p.district_id
               LEFT JOIN plots_adminarea prov ON prov.id = dist.parent_id
               LEFT JOIN plots_adminarea dep ON dep.id = prov.parent_id
              WHERE p.code LIKE %s AND p.boundary IS NOT NULL AND p.status = 'active' ORDER BY p.id"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [DEMO_PREFIX + "%"])
        rows = cursor.fetchall()
    boundaries = dict(Plot.objects.filter(id__in=[r[0] for r in rows]).values_list("id", "boundary"))
    return [_Plot(pid, code, towns.get(code[len(DEMO_PREFIX):].split("-")[0], "?"), region, area, survey, agro,
                  boundaries[pid]) for pid, code, region, area, survey, agro in rows]


def _day(rng: random.Random, start: date, days: int) -> date:
    return start + timedelta(days=rng.randint(0, days))


def _chunks(items: list, size: int) -> list[list]:
    count = max(1, round(len(items) / size))
    return [items[i::count] for i in range(count)] if items else []


def _fan(boundary: MultiPolygon, fraction: float) -> Polygon | None:
    """A sub-polygon of a plot: its centroid fanned over the first boundary edges.
    It shares the boundary's own vertices, so it lies exactly within it; None when
    the centroid does not see those vertices (the fan would leave the plot)."""
    ring = boundary[0].exterior_ring.coords
    n = len(ring) - 1
    k = max(2, min(n - 1, round(fraction * n)))
    centre = boundary.centroid
    fan = Polygon([(centre.x, centre.y), *ring[: k + 1], (centre.x, centre.y)], srid=4326)
    return fan if fan.valid and boundary.covers(fan) else None


class _Builder:
    """Accumulates rows in memory; quantities are settled before anything is written."""

    def __init__(self, rng: random.Random, clones: dict[str, Clone]) -> None:
        self.rng = rng
        self.clones = clones
        self.lots: list[MaterialLot] = []
        self.edges: list[tuple[MaterialLot, MaterialLot, int]] = []
        self.dispatches: list[Dispatch] = []
        self.graftings: list[Grafting] = []
        self.outflow: dict[str, int] = defaultdict(int)
        self.numbers = itertools.count(1)

    def lot(self, **kw) -> MaterialLot:
        lot = MaterialLot(code=f"{DEMO_PREFIX}mat-{next(self.numbers):04d}", quantity=1, **kw)
        self.lots.append(lot)
        return lot

    def draw(self, parent: MaterialLot, child: MaterialLot, units: int) -> None:
        self.edges.append((parent, child, units))
        self.outflow[parent.code] += units

    def send(self, lot: MaterialLot, units: int, day: date, *, plot: _Plot | None = None,
             nursery: Nursery | None = None) -> None:
        self.dispatches.append(Dispatch(code=f"{DEMO_PREFIX}guia-{len(self.dispatches) + 1:06d}", lot=lot,
                                        quantity=units, dispatched_on=day, to_plot_id=plot.id if plot else None,
                                        to_nursery=nursery))
        self.outflow[lot.code] += units

    def settle(self, lot: MaterialLot, spare: tuple[float, float] = (1.03, 1.12)) -> None:
        """The lot held what left it plus a spare (losses, unsold plants)."""
        lot.quantity = max(1, math.ceil(self.outflow[lot.code] * self.rng.uniform(*spare)))


def _nurseries(rng: random.Random, towns, orgs: dict[str, Organization]) -> dict[tuple[str, str], Nursery]:
    """A cacao nursery per town; a clonal garden, a shade-tree and a plantain nursery per region."""
    out: dict[tuple[str, str], Nursery] = {}
    first_town: dict[str, object] = {}
    for t in towns:
        first_town.setdefault(t.department_ubigeo, t)
        lon, lat = _offset(t.lon, t.lat, rng.uniform(-1500, 1500), rng.uniform(-1500, 1500))
        out[("cacao_seedling", t.name)] = _nursery(t, "cacao_seedling", f"Vivero de cacao {t.name}", lon, lat,
                                                   orgs[t.name], 60_000)
    for region, t in first_town.items():
        for i, (kind, label, capacity) in enumerate([("clonal_garden", "Jardín clonal", 8_000),
                                                     ("shade_tree", "Vivero forestal", 40_000),
                                                     ("plantain", "Vivero de plátano", 20_000)]):
            lon, lat = _offset(t.lon, t.lat, 2500 * math.cos(i * 2.1), 2500 * math.sin(i * 2.1))
            out[(kind, region)] = _nursery(t, kind, f"{label} {t.department.title()}", lon, lat, orgs[t.name],
                                           capacity)
    return out


def _nursery(town, kind: str, name: str, lon: float, lat: float, org: Organization, capacity: int) -> Nursery:
    from django.contrib.gis.geos import Point

    slug = name.lower().replace(" ", "-").replace("í", "i").replace("á", "a")
    return services.nursery_create(code=f"{DEMO_PREFIX}{slug}"[:60], name=name, kind=kind,
                                   location=Point(lon, lat, srid=4326), established_on=date(2022, 3, 1),
                                   operator_organization=org, capacity_plants=capacity)


def _choose_planted(rng: random.Random, plots: list[_Plot]) -> tuple[dict[str, list[_Plot]], dict[str, list[_Plot]]]:
    """(mother plots, planted plots) per region, planted hectares in the programme's proportions."""
    by_region: dict[str, list[_Plot]] = defaultdict(list)
    for p in plots:
        if p.region in PROGRAMME:
            by_region[p.region].append(p)
    mothers, planted = {}, {}
    for region, items in by_region.items():
        rng.shuffle(items)
        mothers[region] = items[:MOTHER_PLOTS_PER_REGION]
        by_region[region] = items[MOTHER_PLOTS_PER_REGION:]
    unit = PLANTED_SHARE * min(float(sum(p.area for p in items)) / PROGRAMME[r][1] for r, items in by_region.items())
    for region, items in by_region.items():
        target, total, chosen = unit * PROGRAMME[region][1], 0.0, []
        for p in items:
            if total >= target:
                break
            chosen.append(p)
            total += float(p.area)
        planted[region] = chosen
    return mothers, planted


def _graft_shares(rng: random.Random, plots: list[_Plot], target: Decimal) -> list[Decimal]:
    """Grafted hectares per plot (4 decimals, ≤ the plot's area) summing exactly to ``target``."""
    capacity = sum((p.area for p in plots), Decimal(0))
    mean = float(target / capacity) if capacity else 0.0
    shares = [min(p.area, (p.area * Decimal(min(1.0, mean * rng.uniform(0.8, 1.2)))).quantize(Q4, ROUND_DOWN))
              for p in plots]
    gap = target - sum(shares, Decimal(0))
    for i, p in enumerate(plots):  # close the gap plot by plot, within [5 % of the plot, all of it]
        if gap == 0:
            break
        room = p.area - shares[i] if gap > 0 else -(shares[i] - (p.area * Decimal("0.05")).quantize(Q4))
        step = min(gap, room) if gap > 0 else max(gap, room)
        shares[i] += step
        gap -= step
    return shares


@transaction.atomic
def generate(*, seed: int = 2026, scale: float = 1.0) -> NurseryDemoSummary:
    """Create the demo nurseries, lots, dispatches and graftings over the loaded demo plots."""
    if Nursery.objects.filter(code__startswith=DEMO_PREFIX).exists():
        raise RuntimeError("nursery demo data is already loaded")
    rng = random.Random(seed)
    services.clones_load()
    clones = {c.code: c for c in Clone.objects.all()}
    towns = read_towns()
    orgs = {t.name: Organization.objects.get(code=f"{DEMO_PREFIX}coop-{t.name.lower().replace(' ', '-')}")
            for t in towns}
    nurseries = _nurseries(rng, towns, orgs)
    mothers, planted = _choose_planted(rng, _demo_plots())
    b = _Builder(rng, clones)
    totals: dict[str | None, RegionTotals] = {}
    for region in sorted(planted):
        totals[region] = _region(b, rng, region, mothers[region], planted[region], nurseries, towns, scale)
    _write(b)
    kinds: dict[str, int] = defaultdict(int)
    for lot in b.lots:
        kinds[lot.kind] += 1
    return NurseryDemoSummary(nurseries=len(nurseries), lots=dict(kinds), dispatches=len(b.dispatches),
                              graftings=len(b.graftings), regions=totals)


def _region(b: _Builder, rng: random.Random, region: str, mothers: list[_Plot], planted: list[_Plot],
            nurseries, towns, scale: float) -> RegionTotals:
    garden = nurseries[("clonal_garden", region)]
    # Budwood: each mother plot carries one fine-flavour clone; lots are cut from it in early 2024.
    mother_clone = {m.id: b.clones[FINE[(int(region) + i) % len(FINE)]] for i, m in enumerate(mothers)}
    budwood = []
    for i in range(max(len(mothers), round(BUDWOOD_LOTS_PER_REGION * scale))):
        mother = mothers[i % len(mothers)]
        budwood.append(b.lot(kind="budwood", clone=mother_clone[mother.id], source_plot_id=mother.id,
                             produced_on=_day(rng, date(2024, 1, 15), 75)))
    rng.shuffle(planted)
    n_grafted = max(1, round(len(planted) * NURSERY_GRAFTED_SHARE))
    by_plants, by_rootstock = planted[:n_grafted], planted[n_grafted:]
    region_towns = [t for t in towns if t.department_ubigeo == region]
    for town in region_towns:
        _town(b, rng, nurseries[("cacao_seedling", town.name)], budwood,
              [p for p in by_plants if p.town == town.name], [p for p in by_rootstock if p.town == town.name])
    _agroforestry(b, rng, nurseries[("shade_tree", region)], nurseries[("plantain", region)], planted)
    totals = RegionTotals(planted_ha=sum((p.area for p in planted), Decimal(0)), plots_planted=len(planted))
    target = (totals.planted_ha * PROGRAMME[region][0] / PROGRAMME[region][1]).quantize(Q4, ROUND_DOWN)
    shares = _graft_shares(rng, by_rootstock, target)
    for plot, share in zip(by_rootstock, shares):
        if share > 0:
            totals.grafted_ha += _field_grafting(b, rng, plot, share, budwood[len(b.graftings) % len(budwood)])
            totals.plots_grafted += 1
    for lot in budwood:
        b.send(lot, max(1, math.ceil(b.outflow[lot.code] * 0.05)), lot.produced_on + timedelta(days=2),
               nursery=garden)  # spare sticks kept in the regional clonal garden
        b.settle(lot, (1.0, 1.05))
    return totals


def _town(b: _Builder, rng: random.Random, nursery: Nursery, budwood: list[MaterialLot], by_plants: list[_Plot],
          by_rootstock: list[_Plot]) -> None:
    """A town's seed → rootstock → grafted-plant chain, dispatched to its planted plots."""
    if not by_plants and not by_rootstock:
        return
    seeds = [b.lot(kind="seed", nursery=nursery, produced_on=_day(rng, date(2023, 5, 1), 45)) for _ in range(2)]
    rootstock_groups = _chunks(by_rootstock, PLOTS_PER_ROOTSTOCK_LOT) or [[]]
    rootstocks = []
    for k, group in enumerate(rootstock_groups):
        seed = seeds[k % 2]
        lot = b.lot(kind="rootstock_seedling", nursery=nursery, produced_on=seed.produced_on + timedelta(
            days=rng.randint(60, 100)))
        rootstocks.append(lot)
        for plot in group:
            b.send(lot, _plants(rng, plot), _day(rng, date(2023, 11, 1), 90), plot=plot)
    for k, group in enumerate(_chunks(by_plants, PLOTS_PER_GRAFTED_LOT)):
        stick_lot, stock = budwood[k % len(budwood)], rootstocks[k % len(rootstocks)]
        lot = b.lot(kind="grafted_plant", nursery=nursery, clone=stick_lot.clone,
                    produced_on=max(stick_lot.produced_on, stock.produced_on) + timedelta(days=rng.randint(20, 40)))
        for plot in group:
            b.send(lot, _plants(rng, plot), lot.produced_on + timedelta(days=rng.randint(60, 120)), plot=plot)
        b.settle(lot)
        b.draw(stock, lot, math.ceil(lot.quantity * 1.08))  # some grafts fail
        b.draw(stick_lot, lot, math.ceil(lot.quantity / GRAFTS_PER_STICK))
    for lot in rootstocks:
        b.settle(lot)
    for k, lot in enumerate(rootstocks):
        b.draw(seeds[k % 2], lot, math.ceil(lot.quantity * 1.15))  # germination losses
    for seed in seeds:
        b.settle(seed)
    if b.outflow[seeds[1].code] == 0:  # a single rootstock lot drew on the first seed lot only
        b.lots.remove(seeds[1])


def _plants(rng: random.Random, plot: _Plot) -> int:
    return max(1, round(float(plot.area) * PLANTS_PER_HA * rng.uniform(0.9, 1.0)))


def _agroforestry(b: _Builder, rng: random.Random, shade: Nursery, plantain: Nursery, planted: list[_Plot]) -> None:
    """Shade-tree seedlings (≈120/ha) and plantain suckers (≈400/ha) for agroforestry plots."""
    shaded = [p for p in planted if p.agroforestry in ("permanent_shade", "multistrata")]
    for group in _chunks(shaded, PLOTS_PER_SHADE_LOT):
        species = rng.choice(["Guazuma crinita (bolaina)", "Calycophyllum spruceanum (capirona)"])
        lot = b.lot(kind="shade_tree_seedling", species=species, nursery=shade,
                    produced_on=_day(rng, date(2023, 5, 1), 120))
        for plot in group:
            b.send(lot, max(1, round(float(plot.area) * 120)), _day(rng, date(2023, 12, 1), 90), plot=plot)
        b.settle(lot)
    temporary = [p for p in planted if p.agroforestry in ("temporary_shade", "multistrata")]
    for group in _chunks(temporary, PLOTS_PER_PLANTAIN_LOT):
        lot = b.lot(kind="plantain_sucker", species="Musa × paradisiaca", nursery=plantain,
                    produced_on=_day(rng, date(2023, 7, 1), 90))
        for plot in group:
            b.send(lot, max(1, round(float(plot.area) * 400)), _day(rng, date(2023, 11, 1), 60), plot=plot)
        b.settle(lot)


def _field_grafting(b: _Builder, rng: random.Random, plot: _Plot, share: Decimal, sticks: MaterialLot) -> Decimal:
    """Budwood sent to a plot and grafted there on ``share`` hectares (or a mapped part of it)."""
    day = _day(rng, max(date(2024, 4, 1), sticks.produced_on + timedelta(days=5)), 420)
    area = _fan(plot.boundary, float(share / plot.area)) if rng.random() < 0.1 and share < plot.area else None
    hectares = services.grafted_hectares(area) if area is not None else share
    grafts = max(1, round(float(hectares) * PLANTS_PER_HA * rng.uniform(0.85, 1.0)))
    b.send(sticks, math.ceil(grafts / GRAFTS_PER_STICK), day - timedelta(days=rng.randint(1, 3)), plot=plot)
    b.graftings.append(Grafting(
        code=f"{DEMO_PREFIX}inj-{len(b.graftings) + 1:05d}", plot_id=plot.id, grafted_on=day, clone=sticks.clone,
        budwood_lot=sticks, grafts=grafts, grafted_ha=hectares, area=MultiPolygon(area, srid=4326) if area else None,
        survivors=round(grafts * rng.uniform(0.7, 0.95)), survivors_counted_on=day + timedelta(days=90)))
    return hectares


def _write(b: _Builder) -> None:
    """Lots, then edges, dispatches and graftings; the triggers check every row as it goes in."""
    MaterialLot.objects.bulk_create(b.lots, batch_size=1000)
    LotParent.objects.bulk_create([LotParent(parent=p, child=c, quantity=q) for p, c, q in b.edges], batch_size=2000)
    for d in b.dispatches:
        d.lot_id = d.lot.id
    Dispatch.objects.bulk_create(b.dispatches, batch_size=2000)
    for g in b.graftings:
        g.budwood_lot_id = g.budwood_lot.id
    Grafting.objects.bulk_create(b.graftings, batch_size=1000)


@transaction.atomic
def reset() -> int:
    """Remove the demo nurseries and everything recorded about them. Returns the lots removed."""
    Grafting.objects.filter(code__startswith=DEMO_PREFIX).delete()
    Dispatch.objects.filter(code__startswith=DEMO_PREFIX).delete()
    lots = MaterialLot.objects.filter(code__startswith=DEMO_PREFIX)
    LotParent.objects.filter(child__in=lots).delete()
    count = lots.count()
    lots.delete()
    Nursery.objects.filter(code__startswith=DEMO_PREFIX).delete()
    return count
