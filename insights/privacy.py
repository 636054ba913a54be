"""Disclosure control for every aggregate a role without plot access can obtain.

Investors (and buyers, and cooperatives outside their own plots) see figures, never
plots. A figure about fewer than k producers discloses them, and so does the
difference of two figures: a province minus its published districts, an H3 cell
minus its published children, an unfiltered map minus a filtered one. Suppressing
small cells one output at a time does not survive that; the published cells have
to be built so that *every* difference between them is itself a large group.

The method — threshold rule on contributors, with hierarchical aggregation into
fixed *privacy units* (the statistical offices' approach for grid statistics:
small cells are aggregated up a fixed hierarchy, and every table is then built
from the same aggregated cells, which is what makes complementary suppression
consistent across tables):

1. Each producer is placed once, at the H3 cell (resolution 9) of their largest
   plot; all of a producer's plots count where the producer is placed, so units
   never share a producer.
2. Units are formed bottom-up on the H3 tree (resolution 9 → 0). A group is *safe*
   when it holds at least k producers and, for every contributor class (women,
   men, grafters, fine-flavour grafters, receivers of planting material), either
   none or at least k of them — the threshold rule for
   each published figure: a figure is never made of 1 … k−1 contributors. At each
   cell the safe child groups close as units; the unsafe ones are pooled, and safe
   children are pulled into the pool (smallest first) until it is safe; the pool
   climbs to the parent. What is still unsafe at resolution 0 is withheld from
   every output.
3. Every published figure — concentration on any grid, with any allowed filter,
   grafting statistics, site-suggestion demand, PNGs, tiles, OGC — is a sum over
   whole units. The difference of two such sums is a sum over whole units too, so
   it covers no producer or at least k, and never 1 … k−1 contributors of a class.
   Member cells are never listed and no union of small cells is drawn: a unit
   coarser than the requested grid is drawn as its own (whole) cell.
4. Filters that cut through units (organization, clone, planting year) would break
   3 (unfiltered minus filtered), so only roles that may see plots get them; the
   others filter by region only, which selects whole units. k is fixed for them
   too (maps at two different k could be subtracted), and the count of flagged
   plots, which is no class of the units, is not theirs either.

The price: figures are placed at the unit's cell or its assigned district (the
district with most of the unit's hectares), not at each plot's own; documented in
README ("Investor privacy").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import h3.api.basic_int as h3i

# Contributor classes whose counts must be 0 or ≥ k in every unit (besides "any").
# Producers with a flagged plot are not a class: on the demo that one class alone
# coarsens the units from resolution 6 to 2–5, so flagged-plot counts go to roles
# that may see the plots (and their verdicts) anyway, and to no one else.
CLASSES = ("female", "not_female", "grafted", "fine", "bulk", "ungrafted", "planted", "unplanted")
TOP_RES = 9
# Units coarser than this (cells of ~1,800 km² and up: producers too scattered to be
# placed) are left off H3 grids; admin grids still count them in their district.
# Whole units are left off, so differences stay sums over whole units.
MIN_DRAWN_RES = 4


@dataclass
class Contributor:
    """One producer as the aggregates see them."""

    id: int
    cell: int  # H3 resolution-9 cell (integer form) of the producer's largest plot
    classes: frozenset[str]
    districts: dict[str, float] = field(default_factory=dict)  # UBIGEO -> hectares of the producer's plots
    values: dict[str, float] = field(default_factory=dict)  # additive figures


@dataclass
class Unit:
    """A privacy unit: the producers of ``cell`` (at ``res``) not in a finer unit."""

    id: int
    res: int
    cell: int
    members: list[Contributor]
    district: str | None = None  # UBIGEO holding most of its hectares (None: no district)

    def sums(self, names: Iterable[str]) -> dict[str, float]:
        out = dict.fromkeys(names, 0.0)
        for person in self.members:
            for name in out:
                out[name] += person.values.get(name) or 0.0
        return out


@dataclass
class Partition:
    k: int
    units: list[Unit]
    withheld: int  # producers in no unit (unsafe even at resolution 0)

    def unit_of(self) -> dict[int, Unit]:
        return {person.id: unit for unit in self.units for person in unit.members}


class _Group:
    __slots__ = ("cell", "res", "members", "counts")

    def __init__(self, cell: int, res: int, members: list[Contributor], counts: dict[str, int]):
        self.cell, self.res, self.members, self.counts = cell, res, members, counts

    @classmethod
    def of(cls, cell: int, res: int, members: list[Contributor]) -> _Group:
        counts = dict.fromkeys(CLASSES, 0)
        for person in members:
            for name in person.classes:
                if name in counts:
                    counts[name] += 1
        return cls(cell, res, members, counts)

    def absorb(self, other: _Group) -> None:
        self.members.extend(other.members)
        for name, n in other.counts.items():
            self.counts[name] += n


def is_safe(size: int, counts: dict[str, int], k: int) -> bool:
    """At least k producers, and of every class none or at least k."""
    return size >= k and all(n == 0 or n >= k for n in counts.values())


def build_units(people: list[Contributor], k: int) -> Partition:
    """The privacy units of ``people`` (see the module docstring, step 2)."""
    by_cell: dict[int, list[Contributor]] = defaultdict(list)
    for person in people:
        by_cell[person.cell].append(person)
    groups = [_Group.of(cell, TOP_RES, members) for cell, members in by_cell.items()]
    closed: list[_Group] = []
    for res in range(TOP_RES, 0, -1):
        by_parent: dict[int, list[_Group]] = defaultdict(list)
        for group in groups:
            by_parent[h3i.cell_to_parent(group.cell, res - 1)].append(group)
        groups = []
        for parent in sorted(by_parent):
            pool = _close_children(by_parent[parent], parent, res - 1, k, closed)
            if pool is not None:
                groups.append(pool)
    withheld = 0
    for group in groups:  # residuals of resolution-0 cells: nothing to merge them into
        if is_safe(len(group.members), group.counts, k):
            closed.append(group)
        else:
            withheld += len(group.members)
    units = [Unit(id=i, res=g.res, cell=g.cell, members=sorted(g.members, key=lambda p: p.id))
             for i, g in enumerate(sorted(closed, key=lambda g: (g.res, g.cell)), start=1)]
    for unit in units:
        unit.district = _main_district(unit.members)
    return Partition(k=k, units=units, withheld=withheld)


def _close_children(children: list[_Group], parent: int, res: int, k: int, closed: list[_Group]) -> _Group | None:
    """Close the safe children of ``parent`` as units; pool the rest (pulling safe
    children in, smallest first, until the pool is safe) into the parent's residual."""
    safe = sorted((g for g in children if is_safe(len(g.members), g.counts, k)),
                  key=lambda g: (len(g.members), g.cell))
    pool = _Group(parent, res, [], dict.fromkeys(CLASSES, 0))
    for group in children:
        if not is_safe(len(group.members), group.counts, k):
            pool.absorb(group)
    while pool.members and not is_safe(len(pool.members), pool.counts, k) and safe:
        pool.absorb(safe.pop(0))
    closed.extend(safe)
    return pool if pool.members else None


def _main_district(members: list[Contributor]) -> str | None:
    """The UBIGEO with most of the unit's hectares (ties: the smaller code)."""
    hectares: dict[str, float] = defaultdict(float)
    for person in members:
        for ubigeo, ha in person.districts.items():
            if ubigeo:
                hectares[ubigeo] += ha or 0.0
    if not hectares:
        return None
    return min(hectares, key=lambda u: (-hectares[u], u))


# ------------------------------------------------------------------------------ outputs

@dataclass
class Cell:
    """One published figure set: a sum over whole units."""

    key: str  # H3 cell (hex) or UBIGEO
    level: str  # "h3:7", "district" …
    units: list[Unit]

    @property
    def producers(self) -> int:
        return sum(len(u.members) for u in self.units)

    def producer_ids(self) -> set[int]:
        return {p.id for u in self.units for p in u.members}

    def sums(self, names: Iterable[str]) -> dict[str, float]:
        """The additive figures ``names`` summed over the cell's units."""
        out = dict.fromkeys(names, 0.0)
        for unit in self.units:
            for name, value in unit.sums(out).items():
                out[name] += value
        return out


def h3_cells(partition: Partition, res: int, units: Iterable[Unit] | None = None) -> list[Cell]:
    """Units on an H3 grid of resolution ``res``: finer units summed into their
    ancestor cell at ``res``; a coarser unit shown as its own cell at its resolution
    (none coarser than MIN_DRAWN_RES)."""
    grouped: dict[tuple[int, int], list[Unit]] = defaultdict(list)
    for unit in partition.units if units is None else units:
        if unit.res < MIN_DRAWN_RES:
            continue
        if unit.res >= res:
            grouped[(res, h3i.cell_to_parent(unit.cell, res))].append(unit)
        else:
            grouped[(unit.res, unit.cell)].append(unit)
    return [Cell(key=h3i.int_to_str(cell), level=f"h3:{r}", units=members)
            for (r, cell), members in sorted(grouped.items(), key=lambda kv: (-kv[0][0], kv[0][1]))]


def admin_cells(partition: Partition, digits: int, level: str, units: Iterable[Unit] | None = None) -> list[Cell]:
    """Units by their district's UBIGEO prefix (6 district, 4 province, 2 department)."""
    grouped: dict[str, list[Unit]] = defaultdict(list)
    for unit in partition.units if units is None else units:
        if unit.district:
            grouped[unit.district[:digits]].append(unit)
    return [Cell(key=key, level=level, units=members) for key, members in sorted(grouped.items())]


def in_region(partition: Partition, prefix: str | None) -> list[Unit]:
    """The units assigned to a district under ``prefix`` (all units when None)."""
    if not prefix:
        return list(partition.units)
    return [u for u in partition.units if u.district and u.district.startswith(prefix)]
