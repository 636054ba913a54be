"""Maps rendered on the server as PNG (matplotlib): the concentration choropleth
and the suggested sites, with title, legend, scale bar, north arrow and district
outlines. Drawn in UTM zone 18 S (EPSG:32718, metres), where Peru's cacao
regions lie, so the scale bar measures true distances there."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on a server

import geopandas as gpd  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib_scalebar.scalebar import ScaleBar  # noqa: E402
from shapely.geometry import shape  # noqa: E402

from django.db import connection  # noqa: E402

CRS = "EPSG:32718"
COLOURS = ["#f7fcb9", "#addd8e", "#78c679", "#31a354", "#006837"]


def _districts(bounds: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    """District outlines (the most complete edition) around ``bounds`` (lon/lat)."""
    import shapely

    with connection.cursor() as cur:
        cur.execute("""
            WITH edition AS (SELECT edition FROM plots_adminarea WHERE level = 'district'
                             GROUP BY edition ORDER BY count(*) DESC, edition DESC LIMIT 1)
            SELECT ST_AsBinary(ST_SimplifyPreserveTopology(geom, 0.002)) FROM plots_adminarea
            WHERE level = 'district' AND edition = (SELECT edition FROM edition)
              AND geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)""", [float(v) for v in bounds])
        geoms = [shapely.from_wkb(bytes(r[0])) for r in cur.fetchall()]
    return gpd.GeoDataFrame(geometry=geoms, crs="EPSG:4326").to_crs(CRS)


def _frame(ax, bounds, title: str, subtitle: str) -> None:
    districts = _districts(bounds)
    if len(districts):
        districts.boundary.plot(ax=ax, color="#777777", linewidth=0.4, zorder=1)
    ax.set_title(title, fontsize=13, loc="left", fontweight="bold")
    ax.text(0, 1.005, subtitle, transform=ax.transAxes, fontsize=8.5, color="#444444", va="bottom")
    ax.add_artist(ScaleBar(1, "m", location="lower left", box_alpha=0.7, length_fraction=0.25))
    ax.annotate("N", xy=(0.95, 0.95), xytext=(0.95, 0.83), xycoords="axes fraction", ha="center", va="center",
                fontsize=12, fontweight="bold", arrowprops={"facecolor": "black", "width": 4, "headwidth": 12})
    ax.set_axis_off()


def _zoom(ax, frame: gpd.GeoDataFrame) -> None:
    xmin, ymin, xmax, ymax = frame.total_bounds
    pad = max(xmax - xmin, ymax - ymin) * 0.08 + 1000
    ax.set_xlim(xmin - pad, xmax + pad)
    ax.set_ylim(ymin - pad, ymax + pad)


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()


def choropleth_png(doc: dict, *, title: str | None = None) -> bytes:
    """The concentration GeoJSON (insights.concentration.to_geojson) as a choropleth."""
    metric = doc["metric"]
    features = [f for f in doc["features"] if f["geometry"]]
    fig, ax = plt.subplots(figsize=(8.5, 8.5))
    subtitle = (f"{doc['metric_description']} by {doc['grid']}; every area sums privacy units of at least "
                f"{doc['privacy']['k']} producers")
    if not features:
        ax.text(0.5, 0.5, "No area to show (no privacy unit of k producers)", ha="center", transform=ax.transAxes)
        _frame(ax, (-81.4, -18.4, -68.6, 0.0), title or f"Concentration: {metric}", subtitle)
        return _png(fig)
    frame = gpd.GeoDataFrame([f["properties"] for f in features],
                             geometry=[shape(f["geometry"]) for f in features], crs="EPSG:4326")
    bounds = tuple(frame.total_bounds)
    frame = frame.to_crs(CRS)
    breaks = doc["classes"]["breaks"]
    colours = COLOURS[-len(breaks):] if breaks else COLOURS[:1]
    frame["colour"] = [colours[c] if c is not None else "#dddddd" for c in frame["class"]]
    _zoom(ax, frame)
    frame.plot(ax=ax, color=frame["colour"], edgecolor="#333333", linewidth=0.3, zorder=2)
    lows = [min(frame[metric])] + breaks[:-1]
    handles = [Patch(facecolor=colours[i], edgecolor="#333333", label=f"{lows[i]:,.1f} – {upper:,.1f}")
               for i, upper in enumerate(breaks)]
    ax.legend(handles=handles, title=metric, loc="lower right", fontsize=8, title_fontsize=9, framealpha=0.85)
    _frame(ax, bounds, title or f"Concentration: {metric}", subtitle)
    return _png(fig)


def sites_png(doc: dict, *, title: str | None = None) -> bytes:
    """Suggested sites (insights.sites.to_geojson): demand cells sized by production,
    existing facilities and the new sites."""
    fig, ax = plt.subplots(figsize=(8.5, 8.5))
    demand = [f for f in doc["features"] if f["properties"]["role"] == "demand"]
    sites = [f for f in doc["features"] if f["properties"]["role"] in ("existing", "suggested")]
    frame = gpd.GeoDataFrame([f["properties"] for f in demand + sites],
                             geometry=[shape(f["geometry"]) for f in demand + sites], crs="EPSG:4326")
    bounds = tuple(frame.total_bounds) if len(frame) else (-81.4, -18.4, -68.6, 0.0)
    frame = frame.to_crs(CRS)
    if len(frame):
        _zoom(ax, frame)
    d = frame[frame["role"] == "demand"]
    if len(d):
        top = max(d["production_kg"].max(), 1)
        d.plot(ax=ax, markersize=8 + 120 * d["production_kg"] / top, color="#c49a6c", alpha=0.7, zorder=2)
    for role, marker, colour in (("existing", "s", "#555555"), ("suggested", "*", "#b3261e")):
        part = frame[frame["role"] == role]
        if len(part):
            part.plot(ax=ax, marker=marker, markersize=260 if role == "suggested" else 90, color=colour,
                      edgecolor="white", zorder=3)
            for _, row in part.iterrows():
                ax.annotate(str(row.get("label") or ""), (row.geometry.x, row.geometry.y), xytext=(6, 6),
                            textcoords="offset points", fontsize=8)
    handles = [Patch(facecolor="#c49a6c", label="estimated production (size)"),
               Patch(facecolor="#555555", label="existing facility"), Patch(facecolor="#b3261e", label="suggested site")]
    ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.85)
    s = doc["summary"]
    before = f"{s['mean_distance_km_before']:.1f} km" if s["mean_distance_km_before"] is not None else "no facility"
    subtitle = (f"{s['new_sites']} new site(s); production-weighted mean distance {before} → "
                f"{s['mean_distance_km_after']:.1f} km (geodesic)")
    _frame(ax, bounds, title or "Suggested collection / post-harvest centres", subtitle)
    return _png(fig)
