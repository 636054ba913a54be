"""Loading the official reference layers: INEI boundaries and SERNANP protected areas.

Reads the files as their publishers ship them (GeoJSON here; anything GDAL reads
through pyogrio), repairs invalid polygons only by ST_MakeValid-equivalent and
says so, and upserts by (code, edition) so loading the same edition twice changes
nothing. Issue-3 importers generalise this to any layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyogrio
import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.db import transaction

from plots import geometry
from plots.models import AdminArea, ProtectedArea


@dataclass
class LayerReport:
    layer: str
    loaded: int = 0
    skipped: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.layer}: {self.loaded} loaded"
        if self.repaired:
            text += f", {len(self.repaired)} repaired or merged ({'; '.join(self.repaired[:2])})"
        if self.skipped:
            text += f", {len(self.skipped)} without geometry ({'; '.join(self.skipped[:3])}{' …' if len(self.skipped) > 3 else ''})"
        return text


def _multipolygon(geom, label: str, report: LayerReport) -> GEOSGeometry | None:
    if geom is None or geom.is_empty:
        report.skipped.append(f"{label}: no geometry")
        return None
    g = GEOSGeometry(memoryview(shapely.to_wkb(shapely.force_2d(geom))), srid=4326)
    if geometry.validity_reason(g):
        reason = geometry.validity_reason(g)
        g, _ = geometry.repair(g, ["make_valid"])
        report.repaired.append(f"{label}: {reason}")
    return geometry.to_multipolygon(g)


def _merge_by_code(df, code_col: str, name_col: str, filename: str, report: LayerReport):
    """(code, name, geometry) per distinct code. The INEI 2007 province layer splits
    two provinces (2001 PIURA/"PUIRA", 0510 VICTOR FAJARDO/"FAFARDO") over two
    features each; their pieces are united and the larger piece's name kept."""
    groups: dict[str, list] = {}
    for i, row in enumerate(df.itertuples(index=False), start=1):
        groups.setdefault(str(getattr(row, code_col)), []).append((i, row))
    for code, members in groups.items():
        geoms = [r.geometry for _, r in members if r.geometry is not None and not r.geometry.is_empty]
        largest = max(members, key=lambda m: m[1].geometry.area if m[1].geometry is not None else -1)[1]
        label = f"{filename} feature {members[0][0]} ({code})"
        if len(members) > 1:
            report.repaired.append(f"{code}: {len(members)} features merged "
                                   f"({', '.join(sorted({str(getattr(r, name_col)) for _, r in members}))})")
        merged = shapely.union_all(geoms) if len(geoms) > 1 else (geoms[0] if geoms else None)
        yield code, str(getattr(largest, name_col)).strip(), _multipolygon(merged, label, report)


def _read(path: Path):
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    return pyogrio.read_dataframe(path).to_crs(4326)


@transaction.atomic
def load_inei_2007(folder: Path) -> list[LayerReport]:
    """Departments, provinces and districts of the INEI 2007 edition."""
    reports = []
    specs = [
        ("peru_departamental_simple.geojson", AdminArea.Level.DEPARTMENT, "FIRST_IDDP", "NOMBDEP", None),
        ("peru_provincial_simple.geojson", AdminArea.Level.PROVINCE, "FIRST_IDPR", "NOMBPROV", 2),
        ("peru_distrital_simple.geojson", AdminArea.Level.DISTRICT, "IDDIST", "NOMBDIST", 4),
    ]
    for filename, level, code_col, name_col, parent_len in specs:
        df = _read(folder / filename)
        report = LayerReport(f"INEI 2007 {level}s")
        parents = dict(AdminArea.objects.filter(edition=2007).values_list("ubigeo", "id")) if parent_len else {}
        rows = []
        for code, name, geom in _merge_by_code(df, code_col, name_col, filename, report):
            rows.append(AdminArea(ubigeo=code, name=name, level=level, edition=2007,
                                  parent_id=parents.get(code[:parent_len]) if parent_len else None,
                                  source="INEI 2007 limits via MINAM/GEOIDEP (juaneladio/peru-geojson, MPL-2.0)",
                                  geom=geom))
        AdminArea.objects.bulk_create(rows, update_conflicts=True, unique_fields=["ubigeo", "edition"],
                                      update_fields=["name", "level", "parent", "source", "geom"])
        report.loaded = len(rows)
        reports.append(report)
    return reports


@transaction.atomic
def load_inei_2023_subset(path: Path) -> LayerReport:
    df = _read(path)
    report = LayerReport("INEI 2023 districts (subset)")
    provinces = dict(AdminArea.objects.filter(level=AdminArea.Level.PROVINCE).order_by("edition")
                     .values_list("ubigeo", "id"))
    rows = []
    for i, row in enumerate(df.itertuples(index=False), start=1):
        geom = _multipolygon(row.geometry, f"{path.name} feature {i} ({row.ubigeo})", report)
        rows.append(AdminArea(ubigeo=row.ubigeo, name=str(row.nombre_distrito).upper(), level=AdminArea.Level.DISTRICT,
                              edition=2023, parent_id=provinces.get(row.ubigeo[:4]),
                              source="INEI 2023 districts (light subset)", geom=geom))
    AdminArea.objects.bulk_create(rows, update_conflicts=True, unique_fields=["ubigeo", "edition"],
                                  update_fields=["name", "level", "parent", "source", "geom"])
    report.loaded = len(rows)
    return report


SERNANP_LAYERS = [
    # file, category, code column, name column, sector column, edition
    ("acr.geojson", ProtectedArea.Category.REGIONAL, "acr_codi", "acr_nomb", "acr_sect", "sernanp-2026-07"),
    ("acp.geojson", ProtectedArea.Category.PRIVATE, "acp_codi", "acp_nomb", None, "sernanp-2026-07"),
    ("zona_reservada.geojson", ProtectedArea.Category.RESERVED_ZONE, "zr_codi", "zr_nomb", "anp_sect", "sernanp-2026-07"),
]


@transaction.atomic
def load_protected_areas(folder: Path) -> list[LayerReport]:
    reports = []
    ca_path = folder / "cordillera_azul_4326.geojson"
    if ca_path.exists():
        report = LayerReport("Parque Nacional Cordillera Azul")
        df = _read(ca_path)
        geom = _multipolygon(df.geometry.iloc[0], f"{ca_path.name} feature 1", report)
        ProtectedArea.objects.update_or_create(
            official_code="PNCAZ", edition="2022-08",
            defaults={"name": "Parque Nacional Cordillera Azul", "category": ProtectedArea.Category.NATIONAL_PARK,
                      "source": "SERNANP via Reforestum/dynamic-world (CC BY 4.0)", "geom": geom})
        report.loaded = 1
        reports.append(report)
    for filename, category, code_col, name_col, sector_col, edition in SERNANP_LAYERS:
        path = folder / filename
        if not path.exists():
            continue
        df = _read(path)
        report = LayerReport(f"SERNANP {category.label.lower()}s")
        rows, seen = [], set()
        for i, row in enumerate(df.itertuples(index=False), start=1):
            code = str(getattr(row, code_col))
            name = str(getattr(row, name_col))
            sector = getattr(row, sector_col) if sector_col else None
            if isinstance(sector, str) and sector.strip():
                code, name = f"{code}-{sector.strip()}", f"{name} ({sector.strip()})"
            if code in seen:
                code = f"{code}#{i}"
            seen.add(code)
            geom = _multipolygon(row.geometry, f"{filename} feature {i} ({code})", report)
            if geom is None:
                continue
            rows.append(ProtectedArea(name=name, category=category, official_code=code, edition=edition,
                                      source="SERNANP public geoservice layers", geom=geom))
        ProtectedArea.objects.bulk_create(rows, update_conflicts=True, unique_fields=["official_code", "edition"],
                                          update_fields=["name", "category", "source", "geom"])
        report.loaded = len(rows)
        reports.append(report)
    return reports


def load_shared_layers(shared: Path) -> list[LayerReport]:
    """Everything available under ../shared/data; returns one report per layer."""
    reports: list[LayerReport] = []
    inei = shared / "peru_admin_boundaries_inei2007"
    if inei.exists():
        reports += load_inei_2007(inei)
    subset = shared / "peru_districts_inei2023_light_subset" / "distritos_inei2023_light_subset.geojson"
    if subset.exists():
        reports.append(load_inei_2023_subset(subset))
    pa = shared / "protected_areas"
    if pa.exists():
        reports += load_protected_areas(pa)
    return reports
