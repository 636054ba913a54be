"""Declared vs measured area.

The declared area (converted to hectares from its unit: ha, m², yugada = 2,700 m²,
topo = 3,493 m²) against the geodesic area of the current boundary. Outcome:
``warning`` when |declared_ha − area_ha| / area_ha exceeds the tolerance
(``settings.CHACRA_AREA_TOLERANCE``, default 0.20); ``pass`` otherwise;
``insufficient_data`` when no area was declared or the plot is a point (nothing
measured).

figures::

    {"declared": 2.0, "unit": "yugada", "declared_ha": 0.54, "measured_ha": 0.61,
     "difference_ha": -0.07, "relative": -0.115, "tolerance": 0.2}
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from plots.checks.base import Check

# Raw SQL for symmetry with the other checks (one statement per batch); the
# declared hectares are the generated column the model defines from the unit table.
SQL = """
SELECT p.id AS plot_id,
       CASE WHEN p.boundary IS NULL OR p.declared_area_ha IS NULL OR p.area_ha IS NULL OR p.area_ha = 0
                THEN 'insufficient_data'
            WHEN abs(p.declared_area_ha - p.area_ha) / p.area_ha > %(tolerance)s THEN 'warning'
            ELSE 'pass' END AS outcome,
       CASE WHEN p.boundary IS NULL THEN jsonb_build_object(
                'reason', 'the plot was surveyed as a point: no area to compare',
                'declared', p.declared_area, 'unit', p.declared_area_unit, 'declared_ha', p.declared_area_ha)
            WHEN p.declared_area_ha IS NULL THEN jsonb_build_object(
                'reason', 'no declared area', 'measured_ha', p.area_ha)
            ELSE jsonb_build_object(
                'declared', p.declared_area, 'unit', p.declared_area_unit, 'declared_ha', p.declared_area_ha,
                'measured_ha', p.area_ha, 'difference_ha', p.declared_area_ha - p.area_ha,
                'relative', (p.declared_area_ha - p.area_ha) / NULLIF(p.area_ha, 0),
                'tolerance', %(tolerance)s::float8) END AS figures
FROM plots_plot p
WHERE p.id = ANY(%(ids)s::bigint[])
"""


def tolerance() -> float:
    value = float(getattr(settings, "CHACRA_AREA_TOLERANCE", 0.20))
    if not value > 0:
        raise ImproperlyConfigured(f"CHACRA_AREA_TOLERANCE must be a positive fraction (got {value!r})")
    return value


CHECK = Check(kind="area_discrepancy", sql=SQL, datasets=dict, params=lambda: {"tolerance": tolerance()})
