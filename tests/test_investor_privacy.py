"""The investor differencing attack, run on the demo (plots and nurseries, default seed).

An investor fetches every aggregate it may: the concentration map on every grid
(h3:5 … h3:9, district, province, department), unfiltered and for each department,
the grafting statistics by region and district, and the site-suggestion demand at
every resolution. The attacker then subtracts: every published area from every
other that contains it (by who is counted), and every area minus the union of the
areas of one other output inside it (a province minus its published districts, an
H3 cell minus its published children, an unfiltered map minus a region's). Each
residual must hold no producer or at least k — and of each contributor class
(women, others, grafters, fine-flavour and other grafters, producers with ungrafted
land, receivers of planting material and others) none or at least k.

Who each published figure covers comes from the code (insights.privacy); that claim is
checked first: the API's figures must equal sums computed here, through the ORM,
over exactly those producers' plots, graftings and dispatches. The classes are
computed here too, from the ORM, not from the code under test.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from decimal import Decimal

import pytest
from django.conf import settings

from nurseries import demo as nursery_demo
from nurseries.models import Dispatch, Grafting
from insights import concentration, privacy
from plots import demo as plot_demo
from plots.models import Plot, Producer

pytestmark = pytest.mark.django_db
GRIDS = [f"h3:{r}" for r in range(5, 10)] + ["district", "province", "department"]
PLANTING = ("rootstock_seedling", "grafted_plant")


@pytest.fixture
def demo(db):
    plot_demo.generate(seed=2026, shared=None, scale=0.5)
    nursery_demo.generate(seed=2026, scale=0.5)


def test_no_difference_of_investor_outputs_singles_out_fewer_than_k(demo, investor):
    worst = differencing_attack(investor)
    assert worst >= settings.CHACRA_PRIVACY_K


def test_the_attack_catches_units_built_on_producer_counts_alone(demo, investor, monkeypatch):
    """Without the contributor classes (plain k-anonymity on producers), some area
    minus another leaves 1 … k−1 women, grafters or receivers of plants: the attack
    finds it, so it is not a check that cannot fail."""
    monkeypatch.setattr(privacy, "CLASSES", ())
    with pytest.raises(AssertionError):
        differencing_attack(investor)


def differencing_attack(investor) -> int:
    """Fetch every output, check who it covers, subtract; the smallest residual."""
    k = settings.CHACRA_PRIVACY_K
    truth = Truth()
    outputs: dict[str, list[frozenset[int]]] = {}
    for grid, region in itertools.product(GRIDS, [None, "10", "22", "25"]):
        outputs[f"concentration {grid} region={region}"] = concentration_sets(investor, truth, grid, region)
    for by in ("region", "district"):
        outputs[f"grafting by {by}"] = grafting_sets(investor, truth, by)
    for res in range(5, 9):
        outputs[f"site demand h3:{res}"] = demand_sets(investor, res)
    features = [(name, s) for name, sets in outputs.items() for s in sets]
    assert len(features) > 300 and all(len(s) >= k for _, s in features)

    masks = truth.class_masks()
    bits = {p: 1 << i for i, p in enumerate(sorted(truth.active_producers()))}
    as_mask = [(name, sum(bits[p] for p in s)) for name, s in features]
    worst, pairs = None, 0
    for (name_a, a), (name_b, b) in itertools.permutations(as_mask, 2):
        if b & ~a or a == b:
            continue  # the attacker subtracts B from A only when A covers everyone B does
        pairs += 1
        worst = _check(a & ~b, masks, k, (name_a, name_b), worst)
    unions = 0
    for name_a, a in as_mask:
        for family, sets in outputs.items():
            inside = [m for m in (sum(bits[p] for p in s) for s in sets) if not m & ~a and m != a]
            union = 0
            for m in inside:
                union |= m
            if union and union != a:
                unions += 1
                worst = _check(a & ~union, masks, k, (name_a, f"all of {family} inside it"), worst)
    print(f"differencing attack: {len(outputs)} outputs, {len(features)} published areas, {pairs:,} nested pairs, "
          f"{unions:,} area-minus-union residuals; smallest residual {worst} producers (k = {k})")
    assert pairs > 1000 and unions > 100 and worst is not None
    return worst


def _check(residual: int, masks: dict[str, int], k: int, what, worst):
    size = residual.bit_count()
    assert size >= k, (what, size)
    for name, mask in masks.items():
        n = (residual & mask).bit_count()
        assert n == 0 or n >= k, (what, name, n)
    return size if worst is None else min(worst, size)


# ------------------------------------------------------------------------------ outputs

def concentration_sets(investor, truth, grid: str, region: str | None) -> list[frozenset[int]]:
    """The producers behind each area of the investor's map, checked against the API's figures."""
    query = f"/api/v1/concentration?metric=hectares&grid={grid}" + (f"&region={region}" if region else "")
    response = investor.client.get(query)
    assert response.status_code == 200, response.content[:300]
    served = {f["id"]: f["properties"] for f in response.json()["features"]}
    result = concentration.concentration(metric="hectares", grid=grid, region=region)
    claimed = {area.key: frozenset(cell.producer_ids()) for area, cell in zip(result.areas, result.cells)}
    assert set(served) == set(claimed), grid
    for key, producers in claimed.items():
        props = served[key]
        assert "flagged_plots" not in props and "merged_from" not in props
        assert props["producers"] == len(producers)
        assert props["plots"] == truth.plots(producers)
        assert props["hectares"] == pytest.approx(truth.hectares(producers), abs=1e-3)
        assert props["grafted_ha"] == pytest.approx(truth.grafted_capped(producers), abs=1e-3)
    return list(claimed.values())


def grafting_sets(investor, truth, by: str) -> list[frozenset[int]]:
    body = investor.client.get(f"/api/v1/stats/grafting?by={by}").json()
    part = concentration.partition()
    cells = {c.key: frozenset(c.producer_ids())
             for c in privacy.admin_cells(part, {"region": 2, "district": 6}[by], by)}
    out = []
    for row in body["rows"]:
        producers = cells[row["key"]]
        assert row["clones"] is None
        assert Decimal(str(row["grafted_ha"])) == truth.grafted_exact(producers)
        assert row["graftings"] == truth.graftings(producers)
        assert row["plots_planted"] == truth.plots_planted(producers)
        out.append(producers)
    assert investor.client.get("/api/v1/stats/grafting?by=clone").status_code == 403
    return out


def demand_sets(investor, res: int) -> list[frozenset[int]]:
    body = investor.client.get(f"/api/v1/site-suggestions?n=1&resolution={res}").json()
    cells = {c.key: frozenset(c.producer_ids()) for c in privacy.h3_cells(concentration.partition(), res)}
    demand = [f["properties"] for f in body["features"] if f["properties"]["role"] == "demand"]
    for d in demand:
        assert d["producers"] == len(cells[d["cell"]])
    return [cells[d["cell"]] for d in demand]


# ------------------------------------------------------------------------------ independent truth

class Truth:
    """Sums over producers' active plots, read through the ORM."""

    def __init__(self):
        plots = Plot.objects.filter(status="active")
        self.plots_of: dict[int, list] = defaultdict(list)
        for plot in plots.values("id", "producer_id", "area_ha", "declared_area_ha"):
            self.plots_of[plot["producer_id"]].append(plot)
        self.grafted_by_plot: dict[int, Decimal] = defaultdict(Decimal)
        self.fine_by_plot: dict[int, Decimal] = defaultdict(Decimal)
        self.graftings_by_plot: dict[int, int] = defaultdict(int)
        for g in Grafting.objects.filter(plot__status="active").values("plot_id", "grafted_ha", "clone__fine_flavour"):
            self.grafted_by_plot[g["plot_id"]] += g["grafted_ha"]
            self.graftings_by_plot[g["plot_id"]] += 1
            if g["clone__fine_flavour"]:
                self.fine_by_plot[g["plot_id"]] += g["grafted_ha"]
        self.planted_plots = set(Dispatch.objects.filter(to_plot__status="active", lot__kind__in=PLANTING)
                                 .values_list("to_plot_id", flat=True))
        self.women = set(Producer.objects.filter(gender="female").values_list("id", flat=True))

    def active_producers(self) -> set[int]:
        return set(self.plots_of)

    def _each(self, producers):
        return [p for producer in producers for p in self.plots_of[producer]]

    @staticmethod
    def _area(plot) -> float:
        return plot["area_ha"] if plot["area_ha"] is not None else (plot["declared_area_ha"] or 0.0)

    def plots(self, producers) -> int:
        return len(self._each(producers))

    def hectares(self, producers) -> float:
        return sum(self._area(p) for p in self._each(producers))

    def grafted_capped(self, producers) -> float:
        return sum(min(float(self.grafted_by_plot[p["id"]]), self._area(p)) for p in self._each(producers))

    def grafted_exact(self, producers) -> Decimal:
        return sum((self.grafted_by_plot[p["id"]] for p in self._each(producers)), start=Decimal(0))

    def graftings(self, producers) -> int:
        return sum(self.graftings_by_plot[p["id"]] for p in self._each(producers))

    def plots_planted(self, producers) -> int:
        return sum(p["id"] in self.planted_plots for p in self._each(producers))

    def class_masks(self) -> dict[str, int]:
        """Each contributor class as a bit mask over the active producers (sorted ids)."""
        masks: dict[str, int] = defaultdict(int)
        for i, producer in enumerate(sorted(self.plots_of)):
            plots = self.plots_of[producer]
            bit = 1 << i
            grafted = [float(min(self.grafted_by_plot[p["id"]], Decimal(str(self._area(p))))) for p in plots]
            fine = [float(min(self.fine_by_plot[p["id"]], Decimal(str(self._area(p))))) for p in plots]
            member = {
                "women": producer in self.women, "others": producer not in self.women,
                "grafters": any(self.graftings_by_plot[p["id"]] for p in plots),
                "fine": sum(fine) > 1e-9, "other clones": sum(grafted) - sum(fine) > 1e-9,
                "ungrafted land": any(self._area(p) - g > 1e-9 or not self.graftings_by_plot[p["id"]]
                                      for p, g in zip(plots, grafted)),
                "planted": any(p["id"] in self.planted_plots for p in plots),
                "not planted": any(p["id"] not in self.planted_plots for p in plots),
            }
            for name, yes in member.items():
                if yes:
                    masks[name] |= bit
        return dict(masks)

