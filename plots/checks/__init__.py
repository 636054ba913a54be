"""The plot checks: protected-area overlap, double claims, district, declared area.

    run_checks(plot_ids=None, *, kinds=None, progress=None) -> CheckSummary

Each run computes, for every plot and kind asked for, one verdict
(plots.models.CheckResult) with its measured ``figures``, the ``datasets``
(editions of the reference layers) it read, the ``method_version`` and the
``boundary`` (the plot's current PlotBoundary) it judged. A result is stored only
when it differs from the latest stored result for that plot and kind in outcome,
figures, datasets, method version or boundary: re-running with nothing changed
writes no rows, and the history shows only real changes.

Work is set-based SQL per batch of plots (BATCH_SIZE), each batch in its own
transaction, never a per-plot Python loop over geometries. The methods are
described in each check's module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction

from plots.checks import area, district, overlap, protected
from plots.checks.base import METHOD_VERSION, Check, id_array, write_results
from plots.errors import ValidationFailed
from plots.models import CheckResult, Plot

__all__ = ["BATCH_SIZE", "CHECKS", "CheckSummary", "KindSummary", "METHOD_VERSION", "run_checks"]

BATCH_SIZE = 5_000

# In run order: the district check first, since it is the one that changes plots.
CHECKS: dict[str, Check] = {c.kind: c for c in (district.CHECK, protected.CHECK, overlap.CHECK, area.CHECK)}
FLAGGED = (CheckResult.Outcome.FAIL, CheckResult.Outcome.WARNING, CheckResult.Outcome.BUFFER_ZONE)


@dataclass
class KindSummary:
    outcomes: dict[str, int] = field(default_factory=dict)  # plots per outcome in this run
    written: int = 0  # new CheckResult rows; the others were unchanged

    @property
    def flagged(self) -> int:
        return sum(self.outcomes.get(o, 0) for o in FLAGGED)


@dataclass
class CheckSummary:
    plots: int = 0  # active plots checked
    skipped: int = 0  # ids asked for that are retired or do not exist
    neighbours: int = 0  # plots overlapping the given ones, re-checked for double claims only
    kinds: dict[str, KindSummary] = field(default_factory=dict)
    seconds: float = 0.0
    method_version: str = METHOD_VERSION

    @property
    def written(self) -> int:
        return sum(k.written for k in self.kinds.values())


def _kinds(kinds: set[str] | None) -> list[Check]:
    if kinds is None:
        return list(CHECKS.values())
    unknown = set(kinds) - set(CHECKS)
    if unknown:
        raise ValidationFailed(f"unknown check kind(s): {', '.join(sorted(unknown))}; "
                               f"available: {', '.join(CHECKS)}", field="kinds")
    return [c for kind, c in CHECKS.items() if kind in kinds]


def _plot_ids(plot_ids: list[int] | None) -> tuple[list[int], int]:
    active = Plot.objects.filter(status=Plot.Status.ACTIVE)
    if plot_ids is None:
        return list(active.order_by("id").values_list("id", flat=True)), 0
    wanted = set(plot_ids)
    found = sorted(active.filter(id__in=wanted).values_list("id", flat=True))
    return found, len(wanted) - len(found)


def _begin_batch(ids: list[int]) -> None:
    with connection.cursor() as cur:
        # Each batch statement runs for well under a second; JIT compilation of its
        # costly-looking spatial expressions would take longer than it saves.
        cur.execute("SET LOCAL jit = off")
        # Results are derived data that a re-run recomputes: a crash may lose the last
        # batch's rows but never corrupts anything, so a batch need not wait for its
        # commit to reach the disk.
        cur.execute("SET LOCAL synchronous_commit = off")
        # Two runs over the same plots take turns: the second then sees the first's
        # results and writes nothing twice; and no boundary changes mid-batch.
        cur.execute("SELECT id FROM plots_plot WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE", [id_array(ids)])


def run_checks(plot_ids: list[int] | None = None, *, kinds: set[str] | None = None,
               progress: Callable[[int], None] | None = None, batch_size: int = BATCH_SIZE) -> CheckSummary:
    """Run the checks on ``plot_ids`` (None: every active plot) for ``kinds`` (None: all).

    ``progress(n_done)`` is called after each batch with the number of plots done
    so far. Writes only results that changed (see the module docstring). When
    given plots are checked for double claims, the plots they overlap (now, or at
    their last check) are re-checked for it too: a claim has two sides.
    """
    checks = _kinds(kinds)
    if batch_size < 1:
        raise ValidationFailed("batch_size must be at least 1", field="batch_size")
    started = time.perf_counter()
    ids, skipped = _plot_ids(plot_ids)
    summary = CheckSummary(plots=len(ids), skipped=skipped, kinds={c.kind: KindSummary() for c in checks})
    # Read before this run writes: the overlaps the given plots had at their last check.
    others = sorted(overlap.neighbours(ids)) if plot_ids is not None and ids and overlap.CHECK in checks else []
    # The layer editions and parameters are read once, so every batch of one run
    # records the same inputs.
    inputs = {c.kind: (c.datasets(), c.params()) for c in checks}
    _run_batches(ids, checks, inputs, summary, batch_size, progress)
    if others:
        summary.neighbours = len(others)
        _run_batches(others, [overlap.CHECK], inputs, summary, batch_size, None)
    summary.seconds = time.perf_counter() - started
    return summary


def _run_batches(ids: list[int], checks: list[Check], inputs: dict, summary: CheckSummary, batch_size: int,
                 progress: Callable[[int], None] | None) -> None:
    for start in range(0, len(ids), batch_size):
        batch = ids[start:start + batch_size]
        with transaction.atomic():
            _begin_batch(batch)
            for check in checks:
                datasets, params = inputs[check.kind]
                counts = write_results(check, batch, datasets=datasets, params=params)
                kind = summary.kinds[check.kind]
                for outcome, (computed, written) in counts.items():
                    kind.outcomes[outcome] = kind.outcomes.get(outcome, 0) + computed
                    kind.written += written
        if progress:
            progress(start + len(batch))
