"""Real QGIS against a real server (issue 14, items 2 and 7).

Debian's QGIS (3.22) reads Chacra the way a user sets it up: an authentication
configuration of method Basic with the Id ``chacra1`` (user name, API token as the
password) in a throw-away authentication database, then

(a) every collection listed at /ogc/collections as an OAPIF layer: valid, with the
    feature count the API gives as numberMatched (timed);
(b) every vector tile layer (xyz, authcfg=chacra1): valid, and drawing features;
(c) every export layer in every format, downloaded with the token and opened with
    the OGR provider (each GeoPackage layer, each member of a zip through /vsizip/):
    feature counts as the API's, CRS EPSG:4326;
(d) PNGs over San Martín with plots and protected areas, from the tiles and from
    OAPIF (artifacts/qgis/): pixels inside Cordillera Azul (the real SERNANP polygon
    from ../shared/data; a synthetic area without it) have the protected-area fill;
(3) the project GET /api/v1/qgis-project serves: every layer valid, OAPIF layers
    with features, and its render shows each sampled plot in its verdict colour.

PyQGIS cannot load in the venv's interpreter: the scripts in tests/qgis/ run under
/usr/bin/python3 (CHACRA_QGIS_PYTHON to use another) and answer in JSON.

The data is the demo at a small scale, with the real reference layers when
../shared/data is there: built once for the module (about half a minute), served
by pytest-django's live server; the QGIS work runs once and each test asserts on
its results.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.test import APIClient

from api import exports, qgis_project, tiles

QGIS_PYTHON = os.environ.get("CHACRA_QGIS_PYTHON", "/usr/bin/python3")
SCRIPTS = Path(__file__).resolve().parent / "qgis"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "qgis"
SHARED = Path(settings.CHACRA_SHARED_DATA)
# 450 plots around nine towns: enough producers that the concentration grid (k = 5)
# has cells at its default resolution, few enough to load in seconds.
DEMO_SCALE = "0.15"
USERNAME = "demo-technician"
AREA_FILL = (200, 230, 201)  # the web map's protected-area colour (#c8e6c9), opaque for sampling
PLOT_FILL = (179, 38, 30)  # #b3261e
TOLERANCE = 8  # per channel: interiors, away from edges, are flat colour


# --------------------------------------------------------------------------- QGIS is there

def _qgis_problem() -> str | None:
    """Why PyQGIS cannot run here, or None."""
    probe = "from qgis.core import QgsApplication, Qgis; app = QgsApplication([], False); app.initQgis(); " \
            "print(Qgis.QGIS_VERSION)"
    try:
        done = subprocess.run([QGIS_PYTHON, "-c", probe], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{QGIS_PYTHON}: {exc}"
    return None if done.returncode == 0 else f"{QGIS_PYTHON} cannot import qgis: {done.stderr.strip()[-600:]}"


@pytest.fixture(scope="module")
def qgis_python():
    problem = _qgis_problem()
    if problem is None:
        return QGIS_PYTHON
    if os.geteuid() == 0:  # CI runs as root and scripts/test installs QGIS: missing is a failure
        pytest.fail(f"QGIS is missing ({problem}); scripts/test installs it: apt-get install qgis python3-qgis")
    pytest.skip(f"QGIS is not installed and we are not root to install it ({problem}); as root: "
                "apt-get install qgis python3-qgis")


def run_script(python: str, script: str, job: dict, folder: Path) -> dict:
    """Run tests/qgis/<script> with ``job``; its JSON results (the script's output on failure)."""
    folder.mkdir(parents=True, exist_ok=True)
    job_path, result_path = folder / f"{script}.job.json", folder / f"{script}.result.json"
    job_path.write_text(json.dumps(job, indent=1))
    result_path.unlink(missing_ok=True)
    # -X faulthandler: a crash inside QGIS still shows which Python line it was on.
    done = subprocess.run([python, "-X", "faulthandler", str(SCRIPTS / script), str(job_path), str(result_path)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    if not result_path.exists():
        pytest.fail(f"{script} wrote no results (exit {done.returncode}):\n{done.stdout[-3000:]}\n"
                    f"{done.stderr[-3000:]}")
    results = json.loads(result_path.read_text())
    if "fatal" in results:
        pytest.fail(f"{script} failed:\n{results['fatal']}\n--- its output ---\n{done.stderr[-3000:]}")
    return results


# --------------------------------------------------------------------------- the world

@dataclass
class World:
    base: str
    token: str
    collections: list[str]
    matched: dict[str, int]  # collection -> numberMatched from the API
    area_name: str
    layers: dict = field(default_factory=dict)  # check_layers.py results
    project: dict = field(default_factory=dict)  # check_project.py results
    job: dict = field(default_factory=dict)
    project_job: dict = field(default_factory=dict)
    project_xml: str = ""
    timings: dict = field(default_factory=dict)


def _shape(geom):
    import shapely

    return shapely.from_wkb(bytes(geom.wkb))


def _grid_points(area, count: int) -> list[tuple[float, float]]:
    """Up to ``count`` points spread over ``area`` (a shapely polygon)."""
    import shapely

    west, south, east, north = area.bounds
    steps = 12
    points = [shapely.Point(west + (east - west) * (i + 0.5) / steps, south + (north - south) * (j + 0.5) / steps)
              for i in range(steps) for j in range(steps)]
    inside = [p for p in points if area.contains(p)] or [area.representative_point()]
    stride = max(1, len(inside) // count)
    return [(round(p.x, 6), round(p.y, 6)) for p in inside[::stride][:count]]


def _target_area():
    """Cordillera Azul (real SERNANP polygon) when loaded, else the largest synthetic area."""
    from django.contrib.gis.db.models.functions import Area

    from plots.models import ProtectedArea

    real = ProtectedArea.objects.filter(official_code="PNCAZ").first()
    if real is not None:
        return real
    return (ProtectedArea.objects.exclude(category="buffer_zone").annotate(a=Area("geom")).order_by("-a").first())


def _overview_box(area) -> list[float]:
    """San Martín's outline when the real departments are loaded, else around the area."""
    from plots.models import AdminArea

    san_martin = AdminArea.objects.filter(level="department", ubigeo="22", geom__isnull=False).first()
    if san_martin is not None:
        west, south, east, north = san_martin.geom.extent
    else:
        west, south, east, north = area.geom.extent
        pad = max(east - west, north - south) * 0.5
        west, south, east, north = west - pad, south - pad, east + pad, north + pad
    return [west, south, east, north]


def _area_samples(area, box) -> list[tuple[float, float]]:
    """Points well inside ``area``, away from other protected areas and from plots."""
    import shapely
    from shapely.ops import unary_union

    from plots.models import Plot, ProtectedArea

    polygon = _shape(area.geom)
    inner = polygon.buffer(-min(0.02, 0.15 * polygon.area ** 0.5))
    others = [_shape(o.geom) for o in ProtectedArea.objects.exclude(id=area.id).filter(geom__intersects=area.geom)]
    plots = [_shape(p.boundary or p.location) for p in Plot.objects.filter(status="active")]
    avoid = unary_union([g.buffer(0.01) for g in others + plots]) if others or plots else shapely.Polygon()
    usable = inner.difference(avoid).intersection(shapely.box(*box))
    return _grid_points(usable, 12)


def _latest_outcome(plot_id: int, kind: str) -> str | None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT outcome FROM chacra_latest_check(%s, %s)", [plot_id, kind])
        row = cur.fetchone()
    return row[0] if row else None


def _closeup():
    """A close-up box around a plot that overlaps no other plot — one whose
    protected-area check failed when there is one (it lies across an area's edge) —
    and the interior points of the plots in it that overlap no other, with their
    protected-area verdicts (what the tiles colour them by)."""
    import shapely

    from plots.models import Plot

    plots = list(Plot.objects.filter(status="active", boundary__isnull=False).order_by("-area_ha"))
    shapes = {p.id: _shape(p.boundary) for p in plots}
    tree = shapely.STRtree(list(shapes.values()))
    ids = list(shapes)
    verdicts = {p.id: _latest_outcome(p.id, "protected_area_overlap") for p in plots}

    def alone(plot) -> bool:
        return all(ids[i] == plot.id for i in tree.query(shapes[plot.id], predicate="intersects"))

    anchor = (next((p for p in plots if verdicts[p.id] == "fail" and alone(p)), None)
              or next((p for p in plots if alone(p)), None))
    assert anchor is not None, "every demo plot overlaps another"
    centre = shapes[anchor.id].centroid
    # ~3 km across: the neighbours on the demo's 650 m grid too, ~3 m a pixel at 1200 px.
    box = [centre.x - 0.014, centre.y - 0.0105, centre.x + 0.014, centre.y + 0.0105]
    samples = []
    for plot in plots:
        geom = shapes[plot.id]
        if not geom.within(shapely.box(*box)) or not alone(plot):
            continue
        inner = geom.buffer(-0.0001)
        point = (inner if not inner.is_empty else geom).representative_point()
        samples.append({"code": plot.code, "lonlat": [round(point.x, 7), round(point.y, 7)],
                        "protected": verdicts[plot.id]})
    return box, samples


def _bounds(geoms):
    boxes = [g.bounds for g in geoms]
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _shared_subset(folder: Path) -> Path | None:
    """../shared/data as the demo reads it, less the 231 private conservation areas
    (acp.geojson: tiny areas, 14 of the demo's 30 seconds here): INEI boundaries,
    Cordillera Azul, the regional conservation areas and reserved zones. None when
    the shared data is absent (the demo then makes synthetic layers)."""
    if not SHARED.exists():
        return None
    for sub in ("peru_admin_boundaries_inei2007", "peru_districts_inei2023_light_subset", "protected_areas"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for source in (SHARED / sub).iterdir():
            if source.name != "acp.geojson":
                (folder / sub / source.name).symlink_to(source)
    return folder


def _download(url: str, token: str, folder: Path, stem: str, suffix: str) -> Path:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
    if body[:4] == b"PK\x03\x04" and suffix != ".qgz":
        suffix = ".zip"  # GDAL's /vsizip/ finds the archive by its suffix
    path = folder / f"{stem}{suffix}"
    path.write_bytes(body)
    return path


@pytest.fixture(scope="module")
def world(qgis_python, django_db_setup, django_db_blocker, live_server, tmp_path_factory):
    """The demo loaded, the API's answers taken, every QGIS check run once."""
    from plots import checks
    from plots.models import Plot

    tmp = tmp_path_factory.mktemp("qgis")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    shared = _shared_subset(tmp / "shared")
    with django_db_blocker.unblock(), override_settings(CHACRA_DEMO_DATA_DIR=str(tmp / "demo-data"),
                                                       CHACRA_SHARED_DATA=shared or SHARED):
        try:
            cache.clear()
            tokens_file = tmp / "tokens"
            options = [] if shared else ["--no-shared"]
            call_command("demo_data", "--scale", DEMO_SCALE, "--tokens-file", str(tokens_file), *options,
                         stdout=io.StringIO())
            checks.run_checks()  # the verdicts the plot tiles carry (scripts/demo runs them too)
            demo_seconds = time.monotonic() - began
            token = dict(line.split() for line in tokens_file.read_text().splitlines())["technician"]
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            listed = client.get("/ogc/collections?f=json")
            assert listed.status_code == 200, listed.content[:300]
            collections = [c["id"] for c in listed.json()["collections"]]
            extents = {c["id"]: c["extent"]["spatial"]["bbox"][0] for c in listed.json()["collections"]}
            matched = {}
            for collection in collections:
                page = client.get(f"/ogc/collections/{collection}/items?limit=1&f=json")
                assert page.status_code == 200, (collection, page.content[:300])
                matched[collection] = page.json()["numberMatched"]
            area = _target_area()
            assert area is not None, "the demo loaded no protected area"
            overview = _overview_box(area)
            area_points = _area_samples(area, overview)
            assert area_points, f"no point inside {area.name} away from other areas and plots"
            box, plot_samples = _closeup()
            point_plot = Plot.objects.filter(status="active", boundary__isnull=True).first()
            tile_specs = []
            for layer_id in tiles.LAYERS:
                spec = client.get(f"/tiles/{layer_id}.json").json()
                # Where the layer has features: its collection's extent; plots close up (a plot is
                # under a pixel at the scale of the whole programme), a point plot's surroundings.
                where = {"plots": box}.get(layer_id, extents.get(layer_id, overview))
                if layer_id == "plot-points" and point_plot is not None:
                    where = [point_plot.location.x - 0.01, point_plot.location.y - 0.0075,
                             point_plot.location.x + 0.01, point_plot.location.y + 0.0075]
                tile_specs.append({"id": layer_id, "minzoom": spec["minzoom"], "maxzoom": spec["maxzoom"],
                                   "lonlat_box": where})
            base = live_server.url
            downloads = []
            for layer_id in exports.LAYERS:
                for fmt in exports.FORMATS:
                    path = _download(f"{base}/api/v1/exports/{layer_id}?format={fmt}", token, tmp,
                                     f"{layer_id}-{fmt}", f".{fmt}")
                    downloads.append({"layer": layer_id, "format": fmt, "path": str(path)})
            job = {"base": base, "authcfg": qgis_project.AUTHCFG, "username": USERNAME, "token": token,
                   "auth_dir": str(tmp / "auth-layers"), "out_dir": str(ARTIFACTS), "collections": collections,
                   "tiles": tile_specs, "exports": downloads,
                   "overview": {"lonlat_box": overview, "size": [1200, 900], "area_points": area_points,
                                "area_fill": list(AREA_FILL), "plot_fill": list(PLOT_FILL)},
                   "closeup": {"lonlat_box": box, "size": [1200, 900],
                               "plot_points": [s["lonlat"] for s in plot_samples]}}
            started = time.monotonic()
            layer_results = run_script(qgis_python, "check_layers.py", job, tmp)
            layers_seconds = time.monotonic() - started
            project_path = _download(f"{base}/api/v1/qgis-project", token, tmp, "chacra", ".qgz")
            project_xml = zipfile.ZipFile(project_path).read("chacra.qgs").decode("utf-8")
            project_job = {"base": base, "authcfg": qgis_project.AUTHCFG, "username": USERNAME, "token": token,
                           "auth_dir": str(tmp / "auth-project"), "out_dir": str(ARTIFACTS),
                           "project": str(project_path),
                           "closeup": {"lonlat_box": box, "size": [1200, 900], "plot_points": job["closeup"][
                               "plot_points"], "plots": plot_samples}}
            started = time.monotonic()
            project_results = run_script(qgis_python, "check_project.py", project_job, tmp)
            project_seconds = time.monotonic() - started
            result = World(base=base, token=token, collections=collections, matched=matched, area_name=area.name,
                           layers=layer_results, project=project_results, job=job, project_job=project_job,
                           project_xml=project_xml,
                           timings={"demo_and_checks": round(demo_seconds, 1), "check_layers": round(layers_seconds, 1),
                                    "check_project": round(project_seconds, 1),
                                    "total": round(time.monotonic() - began, 1)})
            _report(result)
        finally:
            # Leave the database as a transactional test does (empty): the next tests expect it.
            call_command("flush", interactive=False, verbosity=0)
            cache.clear()
    yield result


def _report(world: World) -> None:
    """The numbers the issue asks for, in artifacts/qgis/results.json and on stdout (-s)."""
    summary = {
        "qgis": world.layers.get("qgis_version"), "area": world.area_name, "timings_s": world.timings,
        "oapif": {c: {"qgis_count": r.get("count"), "api_numberMatched": world.matched.get(c),
                      "seconds": r.get("seconds"), "valid": r.get("valid")}
                  for c, r in world.layers.get("oapif", {}).items()},
        "pngs": sorted({r["png"] for r in world.layers.get("renders", {}).values()}
                       | {r["png"] for r in world.project.get("renders", {}).values()}
                       | {r["under_png"] for r in world.project.get("renders", {}).values() if r.get("under_png")}
                       | {t["png"] for t in world.layers.get("tiles", {}).values() if t.get("png")}),
    }
    (ARTIFACTS / "results.json").write_text(json.dumps(summary, indent=1))
    print("\nQGIS", summary["qgis"], "— OGC collections read through OAPIF:")
    for collection, row in summary["oapif"].items():
        print(f"  {collection:<16} QGIS {row['qgis_count']!s:>6}  API {row['api_numberMatched']!s:>6}  "
              f"{row['seconds']} s")
    print("  PNGs:", *summary["pngs"], sep="\n    ")
    print("  timings (s):", world.timings)


def _close(rgb, expected, tolerance=TOLERANCE) -> bool:
    return rgb is not None and all(abs(a - b) <= tolerance for a, b in zip(rgb, expected))


def _blend(colour: str, background) -> tuple[int, ...]:
    """The web map's plot fill (r,g,b,alpha) drawn over ``background``."""
    r, g, b, a = (int(v) for v in colour.split(","))
    alpha = a / 255
    return tuple(round(alpha * c + (1 - alpha) * bg) for c, bg in zip((r, g, b), background))


# --------------------------------------------------------------------------- (a)

def test_qgis_reads_every_ogc_collection_with_the_api_count(world):
    results = world.layers["oapif"]
    assert set(results) == set(world.collections), "every collection at /ogc/collections is tried"
    for expected in ("plots", "plot-points", "protected-areas", "districts", "nurseries", "concentration"):
        assert expected in world.collections, f"/ogc/collections does not list {expected!r}: {world.collections}"
    problems = []
    for collection, row in results.items():
        if not row["valid"]:
            problems.append(f"{collection}: QGIS says the OAPIF layer is invalid: {row['error']}")
        elif row["count"] != world.matched[collection] or row["iterated"] != world.matched[collection]:
            problems.append(f"{collection}: QGIS counted {row['count']} (iterated {row['iterated']}), the API's "
                            f"numberMatched is {world.matched[collection]}")
        elif row["crs"] != "EPSG:4326":
            problems.append(f"{collection}: CRS {row['crs']}, expected EPSG:4326")
        elif world.matched[collection] == 0:
            problems.append(f"{collection}: the demo left it empty, so QGIS reading it proves nothing")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- (b)

def test_qgis_draws_every_vector_tile_layer(world):
    results = world.layers["tiles"]
    assert set(results) == set(tiles.LAYERS)
    for expected in ("plots", "plot-points", "protected-areas", "districts"):
        assert expected in results, f"no tile layer {expected!r}: {sorted(results)}"
    problems = [f"{layer}: invalid vector tile layer" if not row["valid"] else
                f"{layer}: nothing drawn over {next(t for t in world.job['tiles'] if t['id'] == layer)['lonlat_box']}"
                f" ({row['png']}; errors {row['render_errors']})"
                for layer, row in results.items() if not row["valid"] or not row.get("painted_pixels")]
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- (c)

def test_qgis_opens_every_export_format_with_the_api_counts(world):
    results = world.layers["exports"]
    problems = []
    for key, entry in results.items():
        layer, fmt = key.rsplit(".", 1)
        subs = entry["sublayers"]
        if entry.get("error") or not subs:
            problems.append(f"{key}: nothing opened ({entry.get('error')}; {entry['path']})")
            continue
        for name, sub in subs.items():
            if not sub["valid"]:
                problems.append(f"{key}: sublayer {name} ({sub['source']}) is invalid")
            elif sub["crs"] != "EPSG:4326":
                problems.append(f"{key}: sublayer {name} has CRS {sub['crs']!r}, expected EPSG:4326")
        # A file layer is the collection of its name (plot_points: plot-points; a GeoPackage or
        # Shapefile plots export carries the point plots as a second layer), or the export's own.
        counts: dict[str, int] = {}
        for name, sub in subs.items():
            collection = name.replace("_", "-") if name.replace("_", "-") in world.matched else layer
            counts[collection] = counts.get(collection, 0) + (sub["count"] or 0)
        if layer not in counts:
            problems.append(f"{key}: no layer for {layer} among {sorted(subs)}")
        for collection, count in counts.items():
            if collection in world.matched and count != world.matched[collection]:
                problems.append(f"{key}: {count} features of {collection} in {sorted(subs)}; the OGC collection "
                                f"has {world.matched[collection]}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- (d)

def _sample_problems(label: str, render: dict, expected, what: str) -> list[str]:
    wrong = [s for s in render["samples"] if not _close(s["rgb"], expected)]
    return [f"{label}: {len(wrong)} of {len(render['samples'])} points inside {what} are not {expected} in "
            f"{render['png']}: " + "; ".join(f"{s['lonlat']} at pixel {s['pixel']} is {s['rgb']}" for s in wrong[:6])
            ] if wrong else []


def test_qgis_renders_the_protected_area_over_san_martin(world):
    renders = world.layers["renders"]
    assert world.job["overview"]["area_points"]
    problems = []
    for source in ("tiles", "oapif"):
        render = renders[source]
        if render["render_errors"]:
            problems.append(f"{source}: render errors {render['render_errors']}")
        problems += _sample_problems(f"San Martín from {source}", render, AREA_FILL, world.area_name)
    assert "protected-areas" in renders["oapif"]["layers"]
    assert not problems, "\n".join(problems)


def test_qgis_renders_plots_from_the_tiles(world):
    render = world.layers["renders"]["closeup"]
    assert render["samples"], "no plot to sample in the close-up"
    assert not _sample_problems("plots close-up from the tiles", render, PLOT_FILL, "plots")


# --------------------------------------------------------------------------- (3) the project

def test_the_project_opens_in_qgis_with_every_layer_valid_and_filled(world):
    project = world.project
    assert project["read"], f"QGIS could not read the project: {project['error']}"
    assert project["crs"] == "EPSG:3857" and project["title"] == "Chacra"
    assert project["background"] == list(qgis_project.BACKGROUND), "the web map's background colour"
    layers = project["layers"]
    problems = []
    for layer_id, row in layers.items():
        if not row["valid"]:
            problems.append(f"{row['name']} ({layer_id}): invalid; source {row['source']}")
        if f"authcfg={qgis_project.AUTHCFG}" not in row["source"]:
            problems.append(f"{row['name']}: source does not name authcfg={qgis_project.AUTHCFG}: {row['source']}")
        if row["kind"] == "vector" and not row.get("count"):
            problems.append(f"{row['name']}: QGIS counts {row.get('count')} features")
        if row["kind"] == "vector-tile" and (row["renderer"] != "basic" or not row["styles"]):
            problems.append(f"{row['name']}: not styled ({row['renderer']}, {row['styles']})")
    assert not problems, "\n".join(problems)
    # The technician reads every layer: each collection as OAPIF, each tile layer.
    assert {row["source"].split("typename='")[1].split("'")[0] for row in layers.values() if row["kind"] == "vector"} \
        == set(world.collections)
    tile_sources = {row["source"].split("/tiles/")[1].split("/")[0] for row in layers.values()
                    if row["kind"] == "vector-tile"}
    assert tile_sources == set(tiles.LAYERS)
    # Shown: the tiles, as the web map (the grid is for roles that see no plot); the data group unticked.
    shown = set(project["shown"])
    assert {"chacra_tiles_plots", "chacra_tiles_protected_areas", "chacra_tiles_districts"} <= shown
    assert "chacra_tiles_concentration" not in shown and not any(i.startswith("chacra_ogc_") for i in shown)
    # The file holds no credential: without the configuration chacra1 no data layer opens.
    without = project["without_authcfg"]
    assert without and not any(without.values()), f"valid without {qgis_project.AUTHCFG}: {without}"


def test_the_project_renders_each_plot_in_its_verdict_colour(world):
    project = world.project
    close = project["renders"]["closeup"]
    plots = world.project_job["closeup"]["plots"]
    assert close["samples"] and len(close["samples"]) == len(plots)
    assert not close["render_errors"], close["render_errors"]
    # Expected: the verdict's fill (web map colour, 75 % opaque) over what the project draws
    # beneath the plots there (background, a protected area's hatching, a district line).
    wrong = []
    for plot, sample, under in zip(plots, close["samples"], close["under"]):
        expected = _blend(qgis_project.plot_fill(plot["protected"]), under["rgb"])
        if not _close(sample["rgb"], expected):
            wrong.append(f"{plot['code']} (protected: {plot['protected']}) at {sample['lonlat']}, pixel "
                         f"{sample['pixel']}: {sample['rgb']}, expected {expected} (beneath: {under['rgb']})")
    assert not wrong, f"in {close['png']} (beneath the plots: {close['under_png']}):\n" + "\n".join(wrong)
    verdicts = {plot["protected"] for plot in plots}
    assert verdicts & {"pass", "fail"}, verdicts
    # The project opens where the technician's plots are, and draws there.
    west, south, east, north = project["start_extent"]
    for sample in close["samples"]:
        lon, lat = sample["lonlat"]
        assert west <= lon <= east and south <= lat <= north
    assert project["renders"]["start"]["painted_pixels"] > 10_000


# --------------------------------------------------------------------------- the route and the command
# (no QGIS: the document itself)

def _project(response) -> ElementTree.Element:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == qgis_project.CONTENT_TYPE
    assert 'filename="chacra.qgz"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.namelist() == ["chacra.qgs"]
    return ElementTree.fromstring(archive.read("chacra.qgs"))


def _sources(root: ElementTree.Element) -> dict[str, str]:
    return {layer.findtext("id"): layer.findtext("datasource") for layer in root.iter("maplayer")}


@pytest.mark.django_db
def test_the_project_route_lists_what_each_role_may_read(anonymous, technician, owner, buyer, investor):
    assert anonymous.get("/api/v1/qgis-project").status_code == 401
    assert technician.client.get("/api/v1/qgis-project?x=1").status_code == 400
    everything = _sources(_project(technician.client.get("/api/v1/qgis-project")))
    assert {"chacra_ogc_plots", "chacra_ogc_plot_points", "chacra_ogc_nurseries", "chacra_ogc_concentration",
            "chacra_ogc_protected_areas", "chacra_ogc_districts", "chacra_tiles_plots",
            "chacra_tiles_plot_points", "chacra_tiles_protected_areas", "chacra_tiles_districts"} <= set(everything)
    for source in everything.values():
        assert source.endswith(f"authcfg={qgis_project.AUTHCFG}") and "http://testserver/" in source, source
    token = technician.client._credentials["HTTP_AUTHORIZATION"].split()[1]
    assert token not in technician.client.get("/api/v1/qgis-project").content.decode("latin-1")
    assert "chacra_ogc_plots" in _sources(_project(owner.client.get("/api/v1/qgis-project")))
    seen_by_buyer = set(_sources(_project(buyer.client.get("/api/v1/qgis-project"))))
    assert "chacra_ogc_nurseries" in seen_by_buyer and not {"chacra_ogc_plots", "chacra_tiles_plots"} & seen_by_buyer
    root = _project(investor.client.get("/api/v1/qgis-project"))
    seen_by_investor = set(_sources(root))
    assert not {i for i in seen_by_investor if "plot" in i or "nurser" in i}, seen_by_investor
    assert {"chacra_ogc_concentration", "chacra_tiles_concentration", "chacra_ogc_protected_areas"} <= seen_by_investor
    # Investors see the grid on the map, as on the web map.
    grid = next(n for n in root.iter("layer-tree-layer") if n.get("id") == "chacra_tiles_concentration")
    assert grid.get("checked") == "Qt::Checked"


@pytest.mark.django_db
def test_the_command_writes_a_project_for_a_base_url_and_a_user(tmp_path, investor):
    out = tmp_path / "chacra.qgz"
    call_command("qgis_project", "--out", str(out), "--base-url", "https://chacra.example.org/",
                 stdout=io.StringIO())
    sources = _sources(ElementTree.fromstring(zipfile.ZipFile(out).read("chacra.qgs")))
    assert sources["chacra_ogc_plots"] == (f"url='https://chacra.example.org/ogc' typename='plots' "
                                           f"authcfg={qgis_project.AUTHCFG}")
    assert sources["chacra_tiles_plots"].startswith(
        "type=xyz&url=https://chacra.example.org/tiles/plots/{z}/{x}/{y}.mvt&zmin=")
    call_command("qgis_project", "--out", str(out), "--user", investor.user.username, stdout=io.StringIO())
    assert "chacra_ogc_plots" not in _sources(ElementTree.fromstring(zipfile.ZipFile(out).read("chacra.qgs")))
    for bad in (["--base-url", "chacra.example.org"], ["--base-url", "https://x.org/?a=1"], ["--user", "nobody"],
                ["--out", str(tmp_path / "chacra.zip")]):
        with pytest.raises(CommandError):
            call_command("qgis_project", "--out", str(out), *bad, stdout=io.StringIO())

