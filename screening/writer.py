"""Storing screening verdicts with the checks' skip-if-unchanged writer."""

from __future__ import annotations

import json

from django.db import connection

from plots.checks.base import WRITE_SQL, id_array
from plots.models import CheckResult
from screening.verdicts import METHOD_VERSION

# The verdicts, computed in Python, enter the checks' one writer (plots.checks.base.
# WRITE_SQL) as the "computed" relation: a result is stored only when outcome,
# figures, datasets, method version or the judged boundary changed.
VERDICTS_SQL = """
    SELECT v.plot_id, v.outcome, v.figures
    FROM jsonb_to_recordset(%(verdicts)s::jsonb) AS v(plot_id bigint, outcome text, figures jsonb)
"""


def write_verdicts(verdicts: list[tuple[int, str, dict]], *, datasets: dict) -> dict[str, tuple[int, int]]:
    """Store (plot id, outcome, figures) verdicts; returns {outcome: (plots, rows written)}."""
    if not verdicts:
        return {}
    payload = json.dumps([{"plot_id": pid, "outcome": outcome, "figures": figures}
                          for pid, outcome, figures in verdicts])
    bound = {"verdicts": payload, "ids": id_array([v[0] for v in verdicts]),
             "kind": CheckResult.Kind.DEFORESTATION, "datasets": json.dumps(datasets, sort_keys=True),
             "method_version": METHOD_VERSION}
    with connection.cursor() as cur:
        cur.execute(WRITE_SQL.format(sql=VERDICTS_SQL, side_effect=""), bound)
        return {outcome: (computed, written) for outcome, computed, written in cur.fetchall()}
