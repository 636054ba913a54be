"""KML (Google Earth, Avenza, many phone apps) through GDAL (pyogrio).

The XML is streamed through defusedxml first (no DTD, no entities), then GDAL reads
every folder (each is a layer) in order, unless ``layer`` names one; placemarks are
numbered across the whole file. Properties: the placemark's name and description,
its folder and ExtendedData; GDAL's presentation fields (altitudeMode, extrude …)
are dropped. A LineString may be a walked boundary, so lines are also given as
``segments`` (KML lines carry no times). KML is WGS 84 by definition: ``srid`` is
ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plots.geometry import WGS84
from plots.importers import registry, sniff
from plots.importers.base import ImportFileError, Limits, SourceRecord
from plots.importers.formats._common import Layer, layer_names, read_layer, segments_of_lines, vector_record
from plots.importers.safety import check_file_size, check_xml

# Fields GDAL's LIBKML driver adds to every placemark that say how it is drawn, not what it is.
_PRESENTATION = {"altitudemode", "tessellate", "extrude", "visibility", "draworder", "icon", "snippet"}


class KmlImporter:
    name = "kml"
    extensions = (".kml",)
    description = "KML placemarks (polygons, points, lines), every folder or the one named"

    def read(self, path: Path, *, srid: int | None = None, limits: Limits = Limits(),
             layer: str | None = None) -> Iterator[SourceRecord]:
        path = Path(path)
        check_file_size(path, limits)
        check_kml_size(path, limits)
        sniff.expect(path, "xml", "KML")
        check_xml(path, name=path, kind="KML", root="kml")
        return kml_records(path, limits, layer=layer)


def check_kml_size(path: Path, limits: Limits) -> None:
    """GDAL holds a whole KML in memory (see ``Limits.max_kml_bytes``)."""
    size = path.stat().st_size
    if size > limits.max_kml_bytes:
        raise ImportFileError(path, f"the KML is {size / 2**20:,.1f} MB, more than the "
                                    f"{limits.max_kml_bytes / 2**20:,.0f} MB allowed: split it")


def kml_records(path: Path, limits: Limits, *, layer: str | None = None,
                source: Path | None = None) -> Iterator[SourceRecord]:
    """Read every folder (or ``layer``) of the KML at ``source`` (default ``path``);
    errors name ``path``. Reading is eager so whole-file errors surface at once."""
    layers = _read_folders(path, limits, layer, source)
    return _records(layers, limits)


def _read_folders(path: Path, limits: Limits, layer: str | None, source: Path | None) -> list[Layer]:
    names = [name for name, _ in layer_names(path, "KML", source)]
    if layer is not None:
        if layer not in names:
            raise ImportFileError(path, f"no folder {layer!r}; the file has: {', '.join(map(repr, names)) or 'none'}")
        names = [layer]
    layers: list[Layer] = []
    counted = 0
    for name in names:
        data = read_layer(path, limits, kind="KML", layer=name, source=source, already_counted=counted)
        counted += len(data.rows)
        layers.append(data)
    if counted == 0:
        raise ImportFileError(path, "it holds no placemarks")
    return layers


def _records(layers: list[Layer], limits: Limits) -> Iterator[SourceRecord]:
    number = 0
    for data in layers:
        for row in data.rows:
            number += 1
            row.properties = _properties(row.properties, data.name)
            record = vector_record(row, WGS84, limits, number=number, prefix="placemark")
            if record.geometry is not None:
                record.segments = segments_of_lines(record.geometry)
            yield record


def _properties(fields: dict[str, Any], folder: str) -> dict[str, Any]:
    lowered = {k.lower(): v for k, v in fields.items()}
    out: dict[str, Any] = {"name": lowered.get("name"), "description": lowered.get("description"), "folder": folder}
    for key, value in fields.items():
        low = key.lower()
        if low in ("name", "description") or low in _PRESENTATION:
            continue
        if value is None and low in ("id", "timestamp", "begin", "end"):
            continue
        out[key] = value
    return out


registry.register(KmlImporter())
