"""From per-tile sums to one deforestation verdict per plot.

Outcomes (CheckResult kind ``deforestation``):

- ``insufficient_data`` — no forest-loss product (Hansen lossyear) is registered, or
  less than ``coverage_min`` of the plot lies on valid cells of it (beyond the
  tiles, or on nodata cells). A plot we cannot see whole is never called clean.
- ``fail`` — loss after the 31 Dec 2020 cut-off of at least ``min_loss_ha``
  hectares, or of at least ``min_loss_share`` of the plot.
- ``pass`` — deforestation-free; the figures still show any loss below the thresholds.

Default thresholds, and why (configurable with CHACRA_SCREEN_* or ``chacra screen``):

- ``min_loss_ha`` 0.1 ha: one Hansen cell (30 m, ~0.08 ha at Peru's latitudes)
  rounded up. Hansen's geolocation is good to about one cell, so loss that adds
  up to less than one cell can be entirely from cells grazing the plot's edge,
  i.e. the neighbour's clearing; a whole cell of loss inside the plot is a finding.
- ``min_loss_share`` 0.5: a plot smaller than 0.2 ha is failed when half of it
  was lost, even though that is under one cell.
- ``coverage_min`` 0.999: a plot wholly on the product measures 1 within 1e-6
  (exact coverage, geodesic cell and plot areas); the slack only absorbs that.

figures::

    {"area_ha", "covered_share", "loss_ha_after_cutoff", "loss_share_after_cutoff",
     "loss_ha_before_cutoff", "tree_cover_2000_pct", "tree_cover_2020_pct",
     "forest_share_tmf", "ndvi_mean", "cutoff": "2020-12-31",
     "products": {product: version}, "thresholds": {...}, "reason" (insufficient data only)}

Hectares are rounded to 1e-6 ha (1 cm²) and shares to 1e-6, so a re-run on the
same inputs stores identical figures. ``tree_cover_2020_pct`` estimates cover
around 2020 as the plot's 2000 tree cover on the part not lost 2001–2020.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.env import env_float
from screening.zonal import CUTOFF_YEAR, TileSpec

METHOD_VERSION = "screening-1"  # bump when the method changes: every plot then gets a fresh result
LOSS_PRODUCT = "hansen-lossyear"


@dataclass(frozen=True)
class Thresholds:
    min_loss_ha: float = 0.1
    min_loss_share: float = 0.5
    coverage_min: float = 0.999

    @classmethod
    def from_environment(cls) -> Thresholds:
        """CHACRA_SCREEN_MIN_LOSS_HA, CHACRA_SCREEN_MIN_LOSS_SHARE, CHACRA_SCREEN_COVERAGE_MIN, or the defaults."""
        return cls(min_loss_ha=env_float("CHACRA_SCREEN_MIN_LOSS_HA", cls.min_loss_ha, minimum=0.0),
                   min_loss_share=env_float("CHACRA_SCREEN_MIN_LOSS_SHARE", cls.min_loss_share, minimum=0.0),
                   coverage_min=env_float("CHACRA_SCREEN_COVERAGE_MIN", cls.coverage_min, minimum=0.0))


def _by_product(per_tile: dict[int, dict[str, float]], tiles: dict[int, TileSpec]) -> dict[str, dict[str, float]]:
    """Sums per product over the plot's tiles, added in tile order (deterministic floats)."""
    totals: dict[str, dict[str, float]] = {}
    for tile_id in sorted(per_tile):
        into = totals.setdefault(tiles[tile_id].product, {})
        for name, value in per_tile[tile_id].items():
            into[name] = into.get(name, 0.0) + value
    return totals


def _ha(m2: float) -> float:
    return round(m2 / 10_000.0, 6)


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole > 0 else None


def _context(sums: dict[str, dict[str, float]], area_m2: float) -> dict:
    """Tree cover, forest share and NDVI, where those products cover the plot."""
    figures: dict = {}
    loss = sums.get(LOSS_PRODUCT, {})
    cover = sums.get("hansen-treecover2000")
    if cover and cover["covered_m2"] > 0:
        pct = 100.0 * cover["treecover_m2"] / cover["covered_m2"]
        figures["tree_cover_2000_pct"] = round(pct, 4)
        lost = loss.get("loss_before_m2", 0.0) / loss["covered_m2"] if loss.get("covered_m2") else 0.0
        figures["tree_cover_2020_pct"] = round(pct * (1.0 - lost), 4)
    tmf = sums.get("jrc-tmf")
    if tmf and tmf["covered_m2"] > 0:
        figures["forest_share_tmf"] = _share(tmf["forest_m2"], tmf["covered_m2"])
    ms = sums.get("multispectral")
    if ms and ms.get("ndvi_valid_m2", 0) > 0:
        figures["ndvi_mean"] = round(ms["ndvi_m2"] / ms["ndvi_valid_m2"], 6)
    return figures


def verdict(*, area_m2: float, per_tile: dict[int, dict[str, float]], tiles: dict[int, TileSpec],
            versions: dict[str, str], thresholds: Thresholds) -> tuple[str, dict]:
    """(outcome, figures) for one plot of geodesic area ``area_m2`` measured on ``per_tile``."""
    figures: dict = {"area_ha": _ha(area_m2), "cutoff": f"{CUTOFF_YEAR}-12-31",
                     "products": dict(sorted(versions.items())), "thresholds": asdict(thresholds)}
    if LOSS_PRODUCT not in versions:
        return "insufficient_data", {**figures, "reason": f"no {LOSS_PRODUCT} product is registered"}
    sums = _by_product(per_tile, tiles)
    loss = sums.get(LOSS_PRODUCT, {"covered_m2": 0.0, "loss_after_m2": 0.0, "loss_before_m2": 0.0})
    covered = min(1.0, loss["covered_m2"] / area_m2) if area_m2 > 0 else 0.0
    figures.update(covered_share=round(covered, 6), loss_ha_after_cutoff=_ha(loss["loss_after_m2"]),
                   loss_share_after_cutoff=_share(loss["loss_after_m2"], area_m2),
                   loss_ha_before_cutoff=_ha(loss["loss_before_m2"]), **_context(sums, area_m2))
    if covered < thresholds.coverage_min:
        figures["reason"] = (f"only {covered:.1%} of the plot lies on valid cells of {LOSS_PRODUCT} "
                             f"{versions[LOSS_PRODUCT]}")
        return "insufficient_data", figures
    after_ha = loss["loss_after_m2"] / 10_000.0
    share = loss["loss_after_m2"] / area_m2 if area_m2 > 0 else 0.0
    if after_ha >= thresholds.min_loss_ha or (after_ha > 0 and share >= thresholds.min_loss_share):
        return "fail", figures
    return "pass", figures
