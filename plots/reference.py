"""Loading the official reference layers: INEI boundaries, SERNANP and WDPA protected areas.

Files are read as their publishers ship them (GeoJSON, GeoPackage, a shapefile or
a zipped one, in any CRS), through pyogrio under the same rules as plot uploads
(``plots.importers.vector_file``: the content must match the name, no VRT, no
network). Field names are recognised for
INEI (IDDIST, UBIGEO, NOMBDIST …), SERNANP (anp_codi, acr_nomb, anp_cate …) and
WDPA (WDPAID, NAME, DESIG_ENG); others can be named. Invalid polygons are repaired
by ST_MakeValid's rule and reported; features sharing a code are merged and
reported. Reloading an edition replaces it in one transaction: areas are upserted
by code (so references to them survive) and the ones gone from the file removed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pyogrio
import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.db import transaction
from pyogrio.errors import DataSourceError

from plots import geometry
from plots.errors import ValidationFailed
from plots.importers.base import ImportFileError
from plots.importers.vector_file import checked_source
from plots.models import AdminArea, Plot, ProtectedArea

CODE_FIELDS = {
    "department": ("FIRST_IDDP", "IDDPTO", "IDDEP", "CCDD", "UBIGEO", "ubigeo", "CODDEP"),
    "province": ("FIRST_IDPR", "IDPROV", "CCPP", "UBIGEO", "ubigeo", "CODPROV"),
    "district": ("IDDIST", "UBIGEO", "ubigeo", "CODDIST", "iddist"),
}
NAME_FIELDS = {
    "department": ("NOMBDEP", "nombre_departamento", "DEPARTAMEN", "NOMBRE", "name"),
    "province": ("NOMBPROV", "nombre_provincia", "PROVINCIA", "NOMBRE", "name"),
    "district": ("NOMBDIST", "nombre_distrito", "DISTRITO", "NOMBRE", "name"),
}
CODE_LENGTH = {"department": 2, "province": 4, "district": 6}
PA_CODE_FIELDS = ("anp_codi", "acr_codi", "acp_codi", "zr_codi", "za_codi", "WDPAID", "WDPA_PID", "wdpa_id", "codigo", "code",
                  "OBJECTID")
PA_NAME_FIELDS = ("anp_nomb", "acr_nomb", "acp_nomb", "zr_nomb", "za_nomb", "NAME", "ORIG_NAME", "pa_name", "nombre", "NOMBRE",
                  "name")
PA_SECTOR_FIELDS = ("anp_sect", "acr_sect", "sector")
PA_CATEGORY_FIELDS = ("anp_cate", "DESIG_ENG", "DESIG", "categoria", "category")
# Designations as SERNANP (Spanish) and WDPA (English) write them.
CATEGORY_WORDS = [
    ("amortiguamiento", "buffer_zone"), ("buffer", "buffer_zone"),
    ("parque nacional", "national_park"), ("national park", "national_park"),
    ("reserva nacional", "national_reserve"), ("national reserve", "national_reserve"),
    ("bosque de proteccion", "protection_forest"), ("protection forest", "protection_forest"),
    ("reserva comunal", "communal_reserve"), ("communal reserve", "communal_reserve"),
    ("conservacion regional", "regional"), ("regional conservation", "regional"),
    ("conservacion privada", "private"), ("private conservation", "private"),
    ("zona reservada", "reserved_zone"), ("reserved zone", "reserved_zone"),
]


@dataclass
class LayerReport:
    layer: str
    loaded: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.layer}: {self.loaded} loaded"
        if self.removed:
            text += f", {self.removed} no longer in the file removed"
        if self.repaired:
            text += f", {len(self.repaired)} repaired or merged ({'; '.join(self.repaired[:2])})"
        if self.skipped:
            text += f", {len(self.skipped)} skipped ({'; '.join(self.skipped[:3])}{' …' if len(self.skipped) > 3 else ''})"
        return text


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", str(text)) if not unicodedata.combining(c)).lower()


def _read(path: Path, srid: int | None):
    path = Path(path)
    if not path.exists():
        raise ValidationFailed(f"{path}: file not found")
    try:
        with checked_source(path) as source:
            df = pyogrio.read_dataframe(source)
    except ImportFileError as exc:
        raise ValidationFailed(f"{path.name}: {exc.reason}") from None
    except (DataSourceError, OSError, ValueError) as exc:
        raise ValidationFailed(f"{path.name}: GDAL cannot read it ({exc})") from None
    if df.crs is None:
        if srid is None:
            raise ValidationFailed(f"{path.name}: the file does not say its coordinate reference system; "
                                   "name it (e.g. --crs 32718)")
        df = df.set_crs(srid)
    return df.to_crs(4326)


def _pick(columns, wanted: str | None, candidates: tuple[str, ...], what: str, path: Path) -> str | None:
    if wanted:
        if wanted not in columns:
            raise ValidationFailed(f"{path.name}: no field {wanted!r}; fields are {', '.join(columns)}")
        return wanted
    for name in candidates:
        if name in columns:
            return name
    return None


def _multipolygon(geom, label: str, report: LayerReport) -> GEOSGeometry | None:
    if geom is None or geom.is_empty:
        report.skipped.append(f"{label}: no geometry")
        return None
    g = GEOSGeometry(memoryview(shapely.to_wkb(shapely.force_2d(geom))), srid=4326)
    if g.geom_type not in ("Polygon", "MultiPolygon"):
        raise ValidationFailed(f"{label}: a {g.geom_type} is not an area")
    reason = geometry.validity_reason(g)
    if reason:
        try:
            g, _ = geometry.repair(g, ["make_valid"])
        except geometry.GeometryError as exc:
            report.skipped.append(f"{label}: {reason}, and {exc.reason}")
            return None
        report.repaired.append(f"{label}: {reason}")
    return geometry.to_multipolygon(g)


def _merge_by_code(df, code_col: str, name_col: str, label_of, report: LayerReport):
    """(code, name, first row, geometry) per distinct code. The INEI 2007 province
    layer splits two provinces (2001 PIURA/"PUIRA", 0510 VICTOR FAJARDO/"FAFARDO")
    over two features each: their pieces are united, the larger piece's name kept."""
    groups: dict[str, list] = {}
    for i, row in enumerate(df.itertuples(index=False), start=1):
        groups.setdefault(str(getattr(row, code_col)), []).append((i, row))
    for code, members in groups.items():
        geoms = [r.geometry for _, r in members if r.geometry is not None and not r.geometry.is_empty]
        largest = max(members, key=lambda m: m[1].geometry.area if m[1].geometry is not None else -1)[1]
        if len(members) > 1:
            report.repaired.append(f"{code}: {len(members)} features merged "
                                   f"({', '.join(sorted({str(getattr(r, name_col)) for _, r in members}))})")
        merged = shapely.union_all(geoms) if len(geoms) > 1 else (geoms[0] if geoms else None)
        yield code, str(getattr(largest, name_col)).strip(), largest, _multipolygon(
            merged, label_of(members[0][0], code), report)


def _normalise_ubigeo(raw, level: str, label: str) -> str:
    text = str(raw).strip()
    if text.endswith(".0"):
        text = text[:-2]
    if text.isdigit():
        text = text.zfill(CODE_LENGTH[level])
    if not (text.isdigit() and len(text) == CODE_LENGTH[level]):
        raise ValidationFailed(f"{label}: UBIGEO {raw!r} is not {CODE_LENGTH[level]} digits, as a {level} code is")
    return text


@transaction.atomic
def load_admin_areas(path: Path, *, level: str, edition: int, code_field: str | None = None,
                     name_field: str | None = None, srid: int | None = None, source: str | None = None,
                     synthetic: bool = False) -> LayerReport:
    """Load one level of one boundary edition; parents come from the UBIGEO prefix."""
    if level not in CODE_LENGTH:
        raise ValidationFailed(f"level must be one of {', '.join(CODE_LENGTH)}")
    path = Path(path)
    df = _read(path, srid)
    code_col = _pick(df.columns, code_field, CODE_FIELDS[level], "code", path)
    name_col = _pick(df.columns, name_field, NAME_FIELDS[level], "name", path)
    if code_col is None or name_col is None:
        raise ValidationFailed(f"{path.name}: cannot tell the UBIGEO and name fields among {', '.join(df.columns)}; "
                               "name them (--code-field, --name-field)")
    report = LayerReport(f"{path.name}: {level}s, edition {edition}")
    df[code_col] = [_normalise_ubigeo(v, level, f"{path.name} feature {i}") for i, v in enumerate(df[code_col], 1)]
    parents = {}
    if level != "department":
        parent_len = CODE_LENGTH[level] - 2
        # The parent of the same edition when there is one, else the newest.
        for ubigeo, pid in AdminArea.objects.filter(ubigeo__regex=rf"^\d{{{parent_len}}}$").order_by(
                "edition").values_list("ubigeo", "id"):
            parents[ubigeo] = pid
        parents.update(AdminArea.objects.filter(edition=edition, ubigeo__regex=rf"^\d{{{parent_len}}}$")
                       .values_list("ubigeo", "id"))
    rows = []
    for code, name, _row, geom in _merge_by_code(df, code_col, name_col,
                                                 lambda i, c: f"{path.name} feature {i} ({c})", report):
        rows.append(AdminArea(ubigeo=code, name=name.upper(), level=level, edition=edition,
                              parent_id=parents.get(code[:-2]) if level != "department" else None,
                              source=source or path.name, synthetic=synthetic, geom=geom))
    AdminArea.objects.bulk_create(rows, update_conflicts=True, unique_fields=["ubigeo", "edition"],
                                  update_fields=["name", "level", "parent", "source", "synthetic", "geom"])
    gone = AdminArea.objects.filter(level=level, edition=edition).exclude(ubigeo__in=[r.ubigeo for r in rows])
    AdminArea.objects.filter(parent__in=gone).update(parent=None)
    Plot.objects.filter(district__in=gone).update(district=None)
    report.removed, _ = gone.delete()
    report.loaded = len(rows)
    if level == "district":
        from plots.services import plots_assign_districts

        plots_assign_districts()
    return report


def category_of(text: str | None) -> str | None:
    folded = _fold(text or "")
    for words, category in CATEGORY_WORDS:
        if words in folded:
            return category
    return None


@transaction.atomic
def load_protected_areas(path: Path, *, edition: str, category: str | None = None, source: str | None = None,
                         code_field: str | None = None, name_field: str | None = None, srid: int | None = None,
                         synthetic: bool = False) -> LayerReport:
    """Load a protected-area layer; ``category`` applies to every feature, otherwise
    it is read from the designation field (SERNANP anp_cate, WDPA DESIG_ENG)."""
    valid = [c for c, _ in ProtectedArea.Category.choices]
    if category is not None and category not in valid:
        raise ValidationFailed(f"category must be one of {', '.join(valid)}")
    path = Path(path)
    df = _read(path, srid)
    code_col = _pick(df.columns, code_field, PA_CODE_FIELDS, "code", path)
    name_col = _pick(df.columns, name_field, PA_NAME_FIELDS, "name", path)
    if code_col is None or name_col is None:
        raise ValidationFailed(f"{path.name}: cannot tell the code and name fields among {', '.join(df.columns)}; "
                               "name them (--code-field, --name-field)")
    sector_col = _pick(df.columns, None, PA_SECTOR_FIELDS, "sector", path)
    cat_col = _pick(df.columns, None, PA_CATEGORY_FIELDS, "category", path)
    report = LayerReport(f"{path.name}: protected areas, edition {edition}")
    rows, seen = [], set()
    for i, row in enumerate(df.itertuples(index=False), start=1):
        label = f"{path.name} feature {i}"
        code, name = str(getattr(row, code_col)), str(getattr(row, name_col))
        sector = getattr(row, sector_col) if sector_col else None
        if isinstance(sector, str) and sector.strip():
            code, name = f"{code}-{sector.strip()}", f"{name} ({sector.strip()})"
        if code in seen:
            code = f"{code}#{i}"
        seen.add(code)
        cat = category or category_of(getattr(row, cat_col) if cat_col else None)
        if cat is None:
            raise ValidationFailed(f"{label} ({name}): cannot tell its category"
                                   + (f" from {cat_col}={getattr(row, cat_col)!r}" if cat_col else "")
                                   + "; give --category")
        geom = _multipolygon(row.geometry, f"{label} ({code})", report)
        if geom is not None:
            rows.append(ProtectedArea(name=name, category=cat, official_code=code, edition=edition,
                                      source=source or path.name, synthetic=synthetic, geom=geom))
    ProtectedArea.objects.bulk_create(rows, update_conflicts=True, unique_fields=["official_code", "edition"],
                                      update_fields=["name", "category", "source", "synthetic", "geom"])
    gone = ProtectedArea.objects.filter(edition=edition, source=source or path.name).exclude(
        official_code__in=[r.official_code for r in rows])
    report.removed, _ = gone.delete()
    report.loaded = len(rows)
    return report


SERNANP_EDITION = "sernanp-2026-07"


def load_shared_layers(shared: Path) -> list[LayerReport]:
    """Everything available under ../shared/data; returns one report per layer."""
    reports: list[LayerReport] = []
    inei = shared / "peru_admin_boundaries_inei2007"
    inei_source = "INEI 2007 limits via MINAM/GEOIDEP (juaneladio/peru-geojson, MPL-2.0)"
    for filename, level in [("peru_departamental_simple.geojson", "department"),
                            ("peru_provincial_simple.geojson", "province"),
                            ("peru_distrital_simple.geojson", "district")]:
        if (inei / filename).exists():
            reports.append(load_admin_areas(inei / filename, level=level, edition=2007, source=inei_source))
    subset = shared / "peru_districts_inei2023_light_subset" / "distritos_inei2023_light_subset.geojson"
    if subset.exists():
        reports.append(load_admin_areas(subset, level="district", edition=2023,
                                        source="INEI 2023 districts (light subset)"))
    pa = shared / "protected_areas"
    layers = [("cordillera_azul_4326.geojson", "national_park", "2022-08",
               "SERNANP via Reforestum/dynamic-world (CC BY 4.0)"),
              ("acr.geojson", "regional", SERNANP_EDITION, "SERNANP public geoservice layers"),
              ("acp.geojson", "private", SERNANP_EDITION, "SERNANP public geoservice layers (ACP)"),
              ("zona_reservada.geojson", "reserved_zone", SERNANP_EDITION, "SERNANP public geoservice layers (ZR)")]
    for filename, category, edition, source in layers:
        if (pa / filename).exists():
            extra = {"code_field": "NOMBRE", "name_field": "NOMBRE"} if filename.startswith("cordillera") else {}
            reports.append(load_protected_areas(pa / filename, category=category, edition=edition, source=source,
                                                **extra))
    # The Cordillera Azul file carries only the acronym.
    ProtectedArea.objects.filter(official_code="PNCAZ", edition="2022-08").update(
        name="Parque Nacional Cordillera Azul")
    return reports
