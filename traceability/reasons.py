"""Why a plot makes a lot not compliant or incomplete: one code per reason, and its
message. The origin query (traceability.selectors) decides which reasons apply, in
SQL, and renders each from the template given here as a bound parameter
(PostgreSQL's format(): each %s takes one value, as text) — so the wording lives in
Python, in one place, and the Feature text still leaves the database whole."""

from __future__ import annotations

# Evidence of a problem: the plot makes the lot not compliant.
FAILURES = {
    "protected_area": "overlaps a protected area (%s)",  # the areas' names
    "forest_loss": "forest loss after the cut-off (31 December 2020)",
    "over_yield_ceiling": "delivered %s kg dry-equivalent in season %s, over the ceiling of %s kg (%s ha × %s kg/ha)",
}
# Missing evidence: the plot makes the lot incomplete.
MISSING = {
    "no_geometry": "no geometry: no boundary or point was in force on %s",  # the last delivery day
    "large_point": "more than 4 ha (%s ha declared) without a polygon",
    "point_without_area": "surveyed as a point with no declared area",
    "protected_area_not_run": "protected-area check not yet run",
    "protected_area_no_data": "protected-area check had insufficient data",
    "deforestation_not_run": "deforestation screening not yet run",
    "deforestation_no_data": "deforestation screening had insufficient data",
}

# Gaps of the lot itself (rendered in Python, str.format).
LOT = {
    "no_delivery": "no delivery from any plot reaches this lot",
    "mass_without_origin": "{missing} kg of the lot's {kg} kg have no recorded origin",
}


def sql_params() -> dict[str, str]:
    """The templates as the query's parameters: ``reason_<code>``."""
    return {f"reason_{code}": text for code, text in {**FAILURES, **MISSING}.items()}
