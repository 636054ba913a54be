"""Units farmers declare areas in, with their size in square metres: the one table
the model's generated column (plots.models.declared_area_ha_expression), the
demo, the benchmarks' synthetic plots and the tests read. A yugada is the land a
yoke of oxen ploughs in a day, 2,700 m² where Chacra's cooperatives use it; a topo
is 3,493 m² (the Cusco and Amazonas measure). Plain Python: no Django, so the
benchmark scripts import it too.

The plot Feature trigger (plots migration 0003) writes the same factors in SQL, as
a migration's SQL is frozen history; tests/test_layer_registry.py holds it to this
table.
"""

from __future__ import annotations

HECTARE_M2 = 10_000.0

AREA_UNIT_SQUARE_METRES: dict[str, float] = {
    "ha": HECTARE_M2,
    "m2": 1.0,
    "yugada": 2_700.0,
    "topo": 3_493.0,
}
