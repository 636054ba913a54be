"""The EUDR exporter, checked by the separate validator (tests/eudr_validator.py)."""

from __future__ import annotations

import base64
import json
from datetime import date

import pytest
import shapely
from django.core.management import CommandError, call_command
from shapely.geometry import shape

from tests import eudr_validator
from tests.conftest import square
from traceability import eudr, services
from traceability.selectors import ExportRecord

D = date(2025, 5, 2)
# A 4-ha-ish square near Juanjuí with a square hole in the middle.
OUTER = [[-76.70, -7.18], [-76.698, -7.18], [-76.698, -7.178], [-76.70, -7.178], [-76.70, -7.18]]
HOLE = [[-76.6994, -7.1794], [-76.6994, -7.1786], [-76.6986, -7.1786], [-76.6986, -7.1794], [-76.6994, -7.1794]]


def record(plot="p1", producer="prod-1", name="Rosa Tuanama", polygon=None, point=None, area=None, declared=None):
    return ExportRecord(plot, producer, name, "Juanjuí", json.dumps(polygon) if polygon else None,
                        json.dumps(point) if point else None, area, declared)


def one_file(records, **kw):
    files = eudr.split_files(eudr.build(records, names=True), **kw)
    assert len(files) == 1
    assert eudr_validator.problems(files[0]) == []
    return json.loads(files[0])


def test_the_validator_refuses_what_the_rules_refuse():
    bad = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [OUTER, HOLE]},
         "properties": {"ProducerCountry": "PE", "Area": "4", "plot_id": 1}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-76.1234567, -7.1]},
         "properties": {"ProducerCountry": "Peru", "Area": 5}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
         "properties": {"ProducerCountry": "PE"}}]}
    found = " | ".join(eudr_validator.problems(json.dumps(bad)))
    for expected in ("has a hole", "is not a JSON number", "'plot_id' is not one of the four", "more than six",
                     "not ISO 3166", "outside 0.0001–4 ha", "LineString is not accepted"):
        assert expected in found


def test_a_polygon_with_a_hole_becomes_hole_free_pieces_covering_the_same_land():
    polygon = {"type": "MultiPolygon", "coordinates": [[OUTER, HOLE]]}
    doc = one_file([record(polygon=polygon, area=4.9)])
    geometry = doc["features"][0]["geometry"]
    assert geometry["type"] == "MultiPolygon" and len(geometry["coordinates"]) == 2
    assert all(len(piece) == 1 for piece in geometry["coordinates"])
    original = shapely.Polygon(OUTER, [HOLE])
    pieces = [shape({"type": "Polygon", "coordinates": rings}) for rings in geometry["coordinates"]]
    assert all(piece.is_valid for piece in pieces)
    assert pieces[0].intersection(pieces[1]).area == 0
    assert shapely.union_all(pieces).symmetric_difference(original).area < 1e-12
    assert doc["features"][0]["properties"] == {"ProducerName": "Rosa Tuanama", "ProducerCountry": "PE",
                                                "ProductionPlace": "p1, Juanjuí", "Area": 4.9}


def test_a_point_plot_just_under_4_ha_is_a_point_with_its_area():
    doc = one_file([record(point={"type": "Point", "coordinates": [-76.512345678, -8.19876543]}, declared=3.99)])
    feature = doc["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [-76.512345, -8.198765]}
    assert feature["properties"]["Area"] == 3.99


def test_a_point_plot_just_over_4_ha_is_refused_by_name():
    with pytest.raises(eudr.ExportRefused) as info:
        eudr.build([record(plot="big-point", point={"type": "Point", "coordinates": [-76.5, -8.2]}, declared=4.01),
                    record(plot="fine", point={"type": "Point", "coordinates": [-76.5, -8.3]}, declared=1)],
                   names=True)
    assert info.value.details == [{"field": "big-point",
                                   "message": "more than 4 ha (4.01 ha declared) without a polygon"}]


def test_a_polygon_plot_over_4_ha_stays_a_polygon():
    polygon = {"type": "MultiPolygon", "coordinates": [[OUTER]]}
    feature = one_file([record(polygon=polygon, area=4.8912)])["features"][0]
    assert feature["geometry"]["type"] == "Polygon" and feature["properties"]["Area"] == 4.8912


def test_a_ring_that_collapses_after_truncation_is_refused():
    # Three distinct vertices only in the 7th decimal: all truncate to one position.
    sliver = {"type": "MultiPolygon", "coordinates": [[[[-76.5000001, -8.1000001], [-76.5000009, -8.1000001],
                                                        [-76.5000005, -8.1000008], [-76.5000001, -8.1000001]]]]}
    with pytest.raises(eudr.ExportRefused, match="plot sliver: the boundary collapses to 1 distinct position"):
        eudr.build([record(plot="sliver", polygon=sliver, area=0.0)], names=True)


def test_truncation_then_duplicate_removal_keeps_a_valid_ring():
    # Two vertices that differ only after the 6th decimal merge into one.
    ring = [[-76.5, -8.1], [-76.4990001, -8.1], [-76.4990004, -8.1000002], [-76.499, -8.099], [-76.5, -8.099],
            [-76.5, -8.1]]
    feature = one_file([record(polygon={"type": "MultiPolygon", "coordinates": [[ring]]}, area=1.2)])["features"][0]
    assert feature["geometry"]["coordinates"][0] == [[-76.5, -8.1], [-76.499, -8.1], [-76.499, -8.099],
                                                     [-76.5, -8.099], [-76.5, -8.1]]


def test_truncation_is_toward_zero_on_the_decimal_text():
    assert eudr.truncate(0.3) == 0.3
    assert eudr.truncate(-76.5091999) == -76.509199
    assert eudr.truncate(-8.19) == -8.19


def test_non_ascii_producer_names_survive_in_utf8():
    name = "María Ñaupari Ushiñahua — Asociación «Río Huallaga»"
    raw = eudr.split_files(eudr.build([record(name=name, polygon={"type": "MultiPolygon", "coordinates": [[OUTER]]},
                                              area=4.9)], names=True))[0]
    assert name.encode("utf-8") in raw
    assert eudr_validator.problems(raw) == []
    assert json.loads(raw)["features"][0]["properties"]["ProducerName"] == name


def test_names_can_be_left_out():
    props = json.loads(eudr.split_files(eudr.build([record(polygon={"type": "MultiPolygon", "coordinates": [[OUTER]]},
                                                           area=4.9)], names=False))[0])["features"][0]["properties"]
    assert "ProducerName" not in props and props["ProducerCountry"] == "PE"


def test_output_is_split_by_size_and_producer_count_keeping_producers_whole():
    records = [record(plot=f"p{i}-{j}", producer=f"prod-{i}", name=f"Productor {i}",
                      polygon={"type": "MultiPolygon", "coordinates": [[square(-76.5 + i * 0.01, -8.2 + j * 0.01)
                                                                        ["coordinates"][0]]]}, area=1.2)
               for i in range(30) for j in range(3)]
    producers = eudr.build(records, names=True)
    by_size = eudr.split_files(producers, max_bytes=3000)
    assert len(by_size) > 5
    seen = []
    for body in by_size:
        assert len(body) <= 3000
        assert eudr_validator.problems(body, max_bytes=3000) == []
        names = [f["properties"]["ProducerName"] for f in json.loads(body)["features"]]
        seen += sorted(set(names))
    assert len(seen) == len(set(seen)) == 30  # no producer spread over two files
    by_count = eudr.split_files(producers, max_producers=7)
    assert [len({f["properties"]["ProducerName"] for f in json.loads(b)["features"]}) for b in by_count] \
        == [7, 7, 7, 7, 2]
    assert all(eudr_validator.problems(b, max_producers=7) == [] for b in by_count)


def test_the_per_producer_form_holds_base64_point_and_polygon_files():
    records = [record(polygon={"type": "MultiPolygon", "coordinates": [[OUTER, HOLE]]}, area=4.9),
               record(plot="p2", producer="prod-2", name="José Panaifo",
                      point={"type": "Point", "coordinates": [-76.5, -8.2]}, declared=0.8)]
    payload = eudr.producer_payload(eudr.build(records, names=True), confidential=True)
    assert payload["geoLocationConfidential"] is True
    assert [(p["position"], p["country"], p["name"]) for p in payload["producers"]] == [
        (1, "PE", "Rosa Tuanama"), (2, "PE", "José Panaifo")]
    for entry in payload["producers"]:
        text = base64.b64decode(entry["geometryGeojson"])
        assert eudr_validator.problems(text, per_producer=True) == []
    first = json.loads(base64.b64decode(payload["producers"][0]["geometryGeojson"]))
    assert [f["geometry"]["type"] for f in first["features"]] == ["Polygon", "Polygon"]


def test_export_eudr_command_writes_a_file_the_validator_accepts(make_org, make_producer, make_plot, tmp_path):
    org = make_org()
    producer = make_producer(organization=org)
    holed = {"type": "Polygon", "coordinates": [OUTER, HOLE]}
    plot = make_plot(producer=producer, geometry_value=holed, valid_from=date(2020, 1, 1))
    lot, _ = services.lot_upsert(code="lot-1", organization=org, form="wet_beans", kg=50, date=D)
    services.delivery_record(plot=plot, lot=lot, kg=50, date=D)
    call_command("export_eudr", "lot-1", "--out", str(tmp_path))
    body = (tmp_path / "lot-1.geojson").read_bytes()
    assert eudr_validator.problems(body) == []
    geometry = json.loads(body)["features"][0]["geometry"]
    assert geometry["type"] == "MultiPolygon" and len(geometry["coordinates"]) == 2
    with pytest.raises(CommandError, match="no such lot: nope"):
        call_command("export_eudr", "nope", "--out", str(tmp_path))
