"""Each served layer declared once: the policy resource that scopes it, where its
rows come from, the Feature properties it serves, the attributes its vector tiles
carry and the columns its exports write. The OGC collections (api.ogc), the tile
layers (api.tiles), the exports (api.exports) and the REST lists of the reference
layers (api.views.areas) are built from these declarations.

The three lists are not the same list on purpose: a tile carries what the web map
styles and shows on hover (for plots, the latest verdicts, which are no Feature
property); an export leaves out what a file would carry badly (arrays, a
producer's name). Each is declared here, beside the others, and
tests/test_layer_registry.py pins what every output really serves to them.

The plot Feature is built by a trigger (plots migration 0003: the text is stored
with the row, so lists leave the database without building it); its property list
here is what that trigger builds, and the test reads a stored feature to hold the
two together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import F, QuerySet

from core import policy
from nurseries.models import Nursery
from plots import selectors
from plots.models import AdminArea, Plot


@dataclass(frozen=True)
class Property:
    """One Feature property: its name, JSON type and meaning; ``source`` is the ORM
    path it is read from when the Feature is built by a query (default: ``name``)."""

    name: str
    type: str
    description: str
    source: str | None = None
    writable: bool = False  # sent in a Feature's properties to POST/PATCH (api.serializers)


@dataclass(frozen=True)
class Column:
    """One attribute of a tile or column of an export: its name and the SQL
    expression (over the layer's table aliases) that yields it."""

    name: str
    sql: str
    description: str = ""

    def select(self) -> str:
        return self.sql if self.sql.rsplit(".", 1)[-1] == self.name else f"{self.sql} AS {self.name}"


@dataclass(frozen=True)
class Layer:
    id: str
    title: str
    resource: str  # the core.policy resource whose read scope narrows the rows
    rows: Callable[[], QuerySet]  # every row the layer serves, before the policy
    properties: tuple[Property, ...]  # the Feature properties, in order
    tile: tuple[Column, ...]  # the vector-tile attributes, in order
    export: tuple[Column, ...]  # the export columns, in order (the geometry apart)

    def visible(self, user) -> QuerySet:
        """The rows ``user`` may read: the layer's rows narrowed by the policy."""
        return policy.visible(user, self.resource, self.rows())

    @property
    def property_names(self) -> list[str]:
        return [p.name for p in self.properties]

    @property
    def writable_names(self) -> list[str]:
        return [p.name for p in self.properties if p.writable]

    def feature_fields(self) -> dict[str, F]:
        """Property name -> ORM expression, for api.geojson.JSONBuildObject."""
        return {p.name: F(p.source or p.name) for p in self.properties}

    def tile_select(self) -> str:
        return ", ".join(c.select() for c in self.tile)

    def tile_fields(self) -> dict[str, str]:
        return {c.name: c.description for c in self.tile}

    def export_select(self) -> str:
        return ", ".join(c.select() for c in self.export)


def _columns(*specs: tuple) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


# ---------------------------------------------------------------------- plots

PLOTS = Layer(
    id="plots", title="Plots", resource="plot",
    # Retired plots are history: the REST list shows them on request (selectors.plot_list).
    rows=lambda: Plot.objects.active(),
    properties=(
        Property("code", "string", "plot code (stable)", writable=True),
        Property("producer", "string", "producer code", writable=True),
        Property("producer_name", "string", "producer (household) name"),
        Property("organization", "string", "organization code"),
        Property("status", "string", "active or retired"),
        Property("area_ha", "number", "geodesic area of the current boundary, ha"),
        Property("declared_area", "number", "area the farmer declared, in declared_area_unit", writable=True),
        Property("declared_area_unit", "string", "ha, m2, yugada or topo (core.units)", writable=True),
        Property("declared_area_ha", "number", "declared area in hectares"),
        Property("tenure", "string", "land tenure", writable=True),
        Property("planting_year", "integer", "year the cacao was planted", writable=True),
        Property("agroforestry_system", "string", "agroforestry system", writable=True),
        Property("shade_species", "array", "shade tree species", writable=True),
        Property("survey_method", "string", "how the boundary was surveyed", writable=True),
        Property("survey_date", "string", "date of the survey", writable=True),
        Property("gps_accuracy_m", "number", "GPS accuracy, m", writable=True),
        Property("district", "string", "district UBIGEO"),
        Property("district_name", "string", "district name"),
        Property("updated_at", "string", "last change (the OGC datetime filter)"),
    ),
    tile=_columns(
        ("code", "p.code", "plot code"),
        ("area_ha", "round(p.area_ha::numeric, 4)::float8", "geodesic area, ha"),
        ("organization", "o.code", "organization code"),
        ("protected", "COALESCE(pa.outcome, 'not_checked')", "latest protected-area verdict"),
        ("deforestation", "COALESCE(df.outcome, 'not_checked')", "latest deforestation verdict"),
        ("double_claim", "COALESCE(dc.outcome, 'not_checked')", "latest double-claim verdict"),
    ),
    export=_columns(
        ("code", "p.code"), ("producer", "r.code"), ("organization", "o.code"), ("district", "d.ubigeo"),
        ("district_name", "d.name"), ("area_ha", "p.area_ha"), ("declared_area", "p.declared_area"),
        ("declared_area_unit", "p.declared_area_unit"), ("declared_area_ha", "p.declared_area_ha"),
        ("tenure", "p.tenure"), ("planting_year", "p.planting_year"),
        ("agroforestry_system", "p.agroforestry_system"), ("survey_method", "p.survey_method"),
        ("survey_date", "p.survey_date::text"), ("status", "p.status"),
        ("updated_at", "to_char(p.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"),
    ),
)

# ------------------------------------------------------------ reference layers

PROTECTED_AREAS = Layer(
    id="protected-areas", title="Protected areas", resource="reference",
    rows=lambda: selectors.protected_area_list(),
    properties=(
        Property("name", "string", "name"),
        Property("category", "string", "category (national park, protection forest, buffer zone …)"),
        Property("official_code", "string", "official code"),
        Property("source", "string", "source (SERNANP, WDPA …)"),
        Property("edition", "string", "version or date of the source layer"),
        Property("synthetic", "boolean", "made up for the demo"),
    ),
    tile=_columns(
        ("id", "a.id", "protected area id"), ("name", "a.name", "name"),
        ("category", "a.category", "category"), ("official_code", "a.official_code", "code"),
        ("edition", "a.edition", "edition"),
    ),
    export=_columns(
        ("id", "a.id"), ("name", "a.name"), ("category", "a.category"), ("official_code", "a.official_code"),
        ("edition", "a.edition"), ("source", "a.source"),
    ),
)

DISTRICTS = Layer(
    id="districts", title="Districts", resource="reference",
    rows=lambda: selectors.admin_area_list(level=AdminArea.Level.DISTRICT),
    properties=(
        Property("ubigeo", "string", "INEI UBIGEO"),
        Property("name", "string", "name"),
        Property("level", "string", "department, province or district"),
        Property("edition", "integer", "boundary edition (year)"),
        Property("parent", "string", "UBIGEO of the parent area", source="parent__ubigeo"),
        Property("synthetic", "boolean", "made up for the demo"),
        Property("source", "string", "source"),
    ),
    tile=_columns(("ubigeo", "a.ubigeo", "UBIGEO"), ("name", "a.name", "name"), ("edition", "a.edition", "edition")),
    export=_columns(("ubigeo", "a.ubigeo"), ("name", "a.name"), ("edition", "a.edition"),
                    ("province", "pr.ubigeo")),
)

# The REST admin-area list serves every level with the districts' properties.
ADMIN_AREA_PROPERTIES = DISTRICTS.properties

# ------------------------------------------------------------------ nurseries

# Points; served by REST and OGC (no tiles, no export yet).
NURSERIES = Layer(
    id="nurseries", title="Nurseries", resource="nursery",
    rows=lambda: Nursery.objects.all(),
    properties=(
        Property("code", "string", "nursery code"),
        Property("name", "string", "name"),
        Property("kind", "string", "seedling, clonal garden, shade-tree or plantain nursery"),
        Property("operator_organization", "string", "operating organization code",
                 source="operator_organization__code"),
        Property("operator_producer", "string", "operating producer code", source="operator_producer__code"),
        Property("district", "string", "district UBIGEO", source="district__ubigeo"),
        Property("capacity_plants", "integer", "plants it can hold at once"),
        Property("established_on", "string", "date established"),
        Property("closed_on", "string", "date closed"),
    ),
    tile=(), export=(),
)

REGISTRY: dict[str, Layer] = {layer.id: layer for layer in (PLOTS, PROTECTED_AREAS, DISTRICTS, NURSERIES)}


def register(layer: Layer) -> None:
    """Add a layer (nurseries, the concentration grid)."""
    REGISTRY[layer.id] = layer


def layer(layer_id: str) -> Layer:
    return REGISTRY[layer_id]
