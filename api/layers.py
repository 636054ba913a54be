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
    expression (over the layer's table aliases) that yields it; for a computed
    layer, the SQL type its value is read as from the computed feature."""

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
    rows: Callable[[], QuerySet] | None  # every row the layer serves, before the policy
    properties: tuple[Property, ...]  # the Feature properties, in order
    tile: tuple[Column, ...]  # the vector-tile attributes, in order
    export: tuple[Column, ...]  # the export columns, in order (the geometry apart)
    # A layer computed in Python rather than read from rows (the concentration
    # grid): (user, query parameters) -> GeoJSON features.
    computed: Callable[[object, object], list[dict]] | None = None

    def visible(self, user) -> QuerySet:
        """The rows ``user`` may read: the layer's rows narrowed by the policy."""
        return policy.visible(user, self.resource, self.rows())

    def may_read(self, user) -> bool:
        """Whether ``user`` may read the layer at all (lists of layers leave out the
        others). A computed layer of aggregates is read in its protected form too."""
        if self.computed is not None:
            return policy.scope(user, self.resource) != policy.NONE
        return policy.may_read(user, self.resource)

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

PLOT_PROPERTIES = (
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
)

PLOT_TILE = _columns(
    ("code", "p.code", "plot code"),
    ("area_ha", "round(p.area_ha::numeric, 4)::float8", "geodesic area, ha"),
    ("organization", "o.code", "organization code"),
    ("protected", "COALESCE(pa.outcome, 'not_checked')", "latest protected-area verdict"),
    ("deforestation", "COALESCE(df.outcome, 'not_checked')", "latest deforestation verdict"),
    ("double_claim", "COALESCE(dc.outcome, 'not_checked')", "latest double-claim verdict"),
)

# An export carries every Feature property, in the same order and under the same
# names (Shapefile abbreviates them: api.exports.SHAPEFILE_FIELDS). A list is
# written as text, its items joined by LIST_SEPARATOR; dates and times keep their
# type (a GeoPackage Date and DateTime, a Shapefile Date).
LIST_SEPARATOR = "; "
PLOT_EXPORT = _columns(
    ("code", "p.code"), ("producer", "r.code"), ("producer_name", "r.name"), ("organization", "o.code"),
    ("status", "p.status"), ("area_ha", "p.area_ha"), ("declared_area", "p.declared_area"),
    ("declared_area_unit", "p.declared_area_unit"), ("declared_area_ha", "p.declared_area_ha"),
    ("tenure", "p.tenure"), ("planting_year", "p.planting_year"),
    ("agroforestry_system", "p.agroforestry_system"),
    ("shade_species", f"array_to_string(p.shade_species, '{LIST_SEPARATOR}')"),
    ("survey_method", "p.survey_method"), ("survey_date", "p.survey_date"), ("gps_accuracy_m", "p.gps_accuracy_m"),
    ("district", "d.ubigeo"), ("district_name", "d.name"), ("updated_at", "p.updated_at"),
)

# One geometry type per client layer: QGIS and GDAL type a layer by its
# declaration, so plots with a boundary (MultiPolygon) and plots surveyed as a
# single point (Point) are two layers with the same properties. The REST list
# (/api/v1/plots) serves both together.
PLOTS = Layer(
    id="plots", title="Plots", resource="plot",
    # Retired plots are history: the REST list shows them on request (selectors.plot_list).
    rows=lambda: Plot.objects.active().filter(boundary__isnull=False),
    properties=PLOT_PROPERTIES, tile=PLOT_TILE, export=PLOT_EXPORT,
)

PLOT_POINTS = Layer(
    id="plot-points", title="Plots surveyed as a point", resource="plot",
    rows=lambda: Plot.objects.active().filter(boundary__isnull=True),
    properties=PLOT_PROPERTIES, tile=PLOT_TILE, export=PLOT_EXPORT,
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
    # The Feature's properties, after the id a Feature carries beside them.
    export=_columns(
        ("id", "a.id"), ("name", "a.name"), ("category", "a.category"), ("official_code", "a.official_code"),
        ("source", "a.source"), ("edition", "a.edition"), ("synthetic", "a.synthetic"),
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
    export=_columns(("ubigeo", "a.ubigeo"), ("name", "a.name"), ("level", "a.level"), ("edition", "a.edition"),
                    ("parent", "pr.ubigeo"), ("synthetic", "a.synthetic"), ("source", "a.source")),
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

# ------------------------------------------------------------ the concentration grid

def _concentration_features(user, params) -> list[dict]:
    """The grid for these query parameters, as insights.cache keeps it (the REST
    route /api/v1/concentration, its tiles and its OGC collection share it)."""
    from api.views.concentration import cached_result

    return cached_result(params, user)["features"]


# Computed from privacy units (insights.privacy), never rows: every role may read
# it, roles that may not see plots get the protected form.
CONCENTRATION = Layer(
    id="concentration", title="Concentration of fine-flavour hectares", resource="aggregate", rows=None,
    computed=_concentration_features,
    properties=(
        Property("id", "string", "H3 cell (hex) or UBIGEO"),
        Property("level", "string", "the grid level of the area (h3:7, district …); a privacy unit coarser than "
                 "the grid shows as its own coarser cell"),
        Property("producers", "integer", "producers with a plot in the area"),
        Property("plots", "integer", "active plots"),
        Property("hectares", "number", "geodesic hectares"),
        Property("grafted_ha", "number", "grafted hectares"),
        Property("fine_flavour_ha", "number", "hectares grafted with fine-flavour clones"),
        Property("production_kg", "number", "estimated production, kg per season"),
        Property("women_share", "number", "share of producers that are women"),
        Property("flagged_plots", "integer", "plots with a failed check (technicians and admins only)"),
        Property("class", "integer", "class of the metric (0–4, Fisher-Jenks breaks)"),
    ),
    # What a tile carries: the chosen metric's value beside the figures the web map shows.
    tile=_columns(("level", "text", "grid level"), ("metric", "text", "metric"),
                  ("value", "float8", "the metric's value"), ("class", "int", "class (0–4)"),
                  ("producers", "int", "producers"), ("hectares", "float8", "hectares"),
                  ("fine_flavour_ha", "float8", "fine-flavour hectares")),
    export=(),
)

REGISTRY: dict[str, Layer] = {layer.id: layer for layer in (PLOTS, PLOT_POINTS, PROTECTED_AREAS, DISTRICTS, NURSERIES,
                                                            CONCENTRATION)}


def register(layer: Layer) -> None:
    """Add a layer (nurseries, the concentration grid)."""
    REGISTRY[layer.id] = layer


def layer(layer_id: str) -> Layer:
    return REGISTRY[layer_id]
