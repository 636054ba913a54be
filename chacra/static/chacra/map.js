/* The web map's behaviour (chacra/templates/map/map.html). */
"use strict";
// The page says what the role may see (data-sees-plots on <body>): no inline script,
// so the Content-Security-Policy can refuse every inline script.
const SEES_PLOTS = document.body.dataset.seesPlots === "true";
const sources = {
  districts: {type: "vector", url: "/tiles/districts.json"},
  protected: {type: "vector", url: "/tiles/protected-areas.json"},
  grid: {type: "vector", url: "/tiles/concentration.json"},
};
const layers = [
  {id: "background", type: "background", paint: {"background-color": "#eef2e8"}},
  {id: "protected-fill", type: "fill", source: "protected", "source-layer": "protected-areas",
   paint: {"fill-color": ["match", ["get", "category"], "buffer_zone", "#fff3c4", "#c8e6c9"], "fill-opacity": 0.7}},
  {id: "protected-line", type: "line", source: "protected", "source-layer": "protected-areas",
   paint: {"line-color": "#2e7d32", "line-width": 1}},
  {id: "grid-fill", type: "fill", source: "grid", "source-layer": "concentration",
   layout: {visibility: SEES_PLOTS ? "none" : "visible"},
   paint: {"fill-color": ["match", ["get", "class"], 0, "#f7fcb9", 1, "#addd8e", 2, "#78c679", 3, "#31a354",
                          4, "#006837", "#dddddd"], "fill-opacity": 0.75, "fill-outline-color": "#555"}},
  {id: "districts-line", type: "line", source: "districts", "source-layer": "districts",
   paint: {"line-color": "#555", "line-width": 0.8, "line-dasharray": [3, 2]}},
];
// Plots are two tile layers of one geometry type each (api/tiles.py): "plots", the
// surveyed boundaries, and "plot-points", the plots surveyed as a single point.
// Both are coloured by the latest protected-area verdict, outlined by deforestation.
const byVerdict = () => ["match", ["get", "protected"], "fail", "#b3261e", "buffer_zone", "#f29900",
                         "pass", "#2e7d32", "#9e9e9e"];
const byLoss = (fail, other) => ["match", ["get", "deforestation"], "fail", fail, other];
if (SEES_PLOTS) {
  sources.plots = {type: "vector", url: "/tiles/plots.json"};
  sources["plot-points"] = {type: "vector", url: "/tiles/plot-points.json"};
  layers.push(
    {id: "plots-fill", type: "fill", source: "plots", "source-layer": "plots",
     paint: {"fill-color": byVerdict(), "fill-opacity": 0.75}},
    {id: "plots-line", type: "line", source: "plots", "source-layer": "plots",
     paint: {"line-color": byLoss("#6a1b9a", "#1d2b1f"), "line-width": byLoss(3, 0.6)}},
    {id: "plots-point", type: "circle", source: "plot-points", "source-layer": "plot-points",
     paint: {"circle-radius": ["interpolate", ["linear"], ["zoom"], 8, 3, 16, 7], "circle-color": byVerdict(),
             "circle-opacity": 0.85, "circle-stroke-color": byLoss("#6a1b9a", "#1d2b1f"),
             "circle-stroke-width": byLoss(3, 1)}});
}
const map = new maplibregl.Map({
  container: "map", style: {version: 8, sources: sources, layers: layers},
  center: [-76.3, -8.3], zoom: 7, maxZoom: 18, attributionControl: false,
});
map.addControl(new maplibregl.NavigationControl(), "top-left");
map.addControl(new maplibregl.ScaleControl({unit: "metric"}), "bottom-left");
window.chacraMap = map;  // for the browser tests

// Start on the plots the user may see (the OGC collection's extent), or on the concentration grid.
fetch(SEES_PLOTS ? "/ogc/collections/plots?f=json" : "/ogc/collections/concentration?f=json", {credentials: "same-origin"})
  .then(r => r.ok ? r.json() : null)
  .then(doc => {
    const box = doc && doc.extent && doc.extent.spatial.bbox[0];
    if (box && box[0] > -180) map.fitBounds([[box[0], box[1]], [box[2], box[3]]], {padding: 30, duration: 0});
    window.chacraReady = true;
  }).catch(() => { window.chacraReady = true; });

function esc(v) {
  return String(v === null || v === undefined ? "—" : v).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
async function getJSON(url) {
  const r = await fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}});
  return r.ok ? r.json() : {_status: r.status, _error: (await r.json().catch(() => ({}))).error};
}
function checksTable(doc) {
  const rows = (doc.results || doc.checks || []).map(c =>
    `<tr><td>${esc(c.kind)}</td><td class="${esc(c.outcome)}">${esc(c.outcome)}</td><td>${esc(summary(c))}</td></tr>`);
  return rows.length ? `<table>${rows.join("")}</table>` : "<p>No check has run yet.</p>";
}
function summary(c) {
  const f = c.figures || {};
  if (c.kind === "protected_area_overlap") return f.areas && f.areas.length ? `${f.areas[0].name}: ${(+f.overlap_ha).toFixed(3)} ha` : (f.nearest_m !== undefined ? `nearest ${Math.round(f.nearest_m)} m` : "");
  if (c.kind === "plot_overlap") return (f.double_claims || []).map(d => `${d.plot} ${(+d.overlap_ha).toFixed(3)} ha`).join(", ");
  if (c.kind === "district_assignment") return f.name ? `${f.name} (${f.district})` : "";
  if (c.kind === "deforestation") return f.loss_ha_after_cutoff !== undefined ? `${(+f.loss_ha_after_cutoff).toFixed(3)} ha lost after 2020` : (f.reason || "");
  if (c.kind === "area_discrepancy") return f.ratio !== undefined ? `measured/declared ${(+f.ratio).toFixed(2)}` : "";
  return "";
}
function genetics(doc) {
  if (doc._status) return `<p>${doc._status === 404 ? "No genetic record." : "Not available to your role."}</p>`;
  const clones = (doc.clones || doc.clone_mix || []).map(c => `${esc(c.clone || c.code)} ${c.share !== undefined ? Math.round(c.share * 100) + "%" : ""}`);
  const lots = (doc.lots || []).map(l => esc(l.code || l));
  return `<p>Clones: ${clones.join(", ") || "—"}</p><p>Material lots: ${lots.slice(0, 12).join(", ") || "—"}</p>`;
}
function harvestLots(doc) {
  if (doc._status) return "<p>Not available to your role.</p>";
  const lots = (doc.results || doc.lots || doc.features || []).map(l => esc(l.code || (l.properties && l.properties.code)));
  return lots.length ? `<p>${lots.join(", ")}</p>` : "<p>No harvest lot received beans from this plot.</p>";
}
async function showPlot(code) {
  const box = document.getElementById("details");
  box.innerHTML = `<h2>Plot ${esc(code)}</h2><p>Loading…</p>`;
  const enc = encodeURIComponent(code);
  const [plot, checks, gen, lots] = await Promise.all([
    getJSON(`/api/v1/plots/${enc}`), getJSON(`/api/v1/plots/${enc}/checks`),
    getJSON(`/api/v1/plots/${enc}/genetics`), getJSON(`/api/v1/lots?plot=${enc}`)]);
  const p = plot.properties || {};
  box.innerHTML = `<h2>Plot ${esc(code)}</h2>
    <table><tr><th>producer</th><td>${esc(p.producer_name || p.producer)}</td></tr>
    <tr><th>organization</th><td>${esc(p.organization)}</td></tr>
    <tr><th>district</th><td>${p.district ? esc(p.district_name) + " (" + esc(p.district) + ")" : "—"}</td></tr>
    <tr><th>area</th><td>${p.area_ha !== undefined ? (+p.area_ha).toFixed(3) + " ha (geodesic)" : "—"}</td></tr>
    <tr><th>declared</th><td>${p.declared_area !== null && p.declared_area !== undefined ? esc(p.declared_area) + " " + esc(p.declared_area_unit) : "—"}</td></tr></table>
    <h2>Checks</h2><div id="checks">${checksTable(checks)}</div>
    <h2>Genetics</h2><div id="genetics">${genetics(gen)}</div>
    <h2>Harvest lots</h2><div id="lots">${harvestLots(lots)}</div>`;
  box.dataset.plot = code;
}
document.getElementById("grid-toggle").addEventListener("change", e =>
  map.setLayoutProperty("grid-fill", "visibility", e.target.checked ? "visible" : "none"));
map.on("click", "grid-fill", e => {
  const p = e.features[0].properties;
  if (SEES_PLOTS && map.queryRenderedFeatures(e.point, {layers: ["plots-fill", "plots-point"]}).length) return;
  document.getElementById("details").innerHTML = `<h2>Area ${esc(p.id)}</h2>
    <table><tr><th>${esc(p.metric)}</th><td>${(+p.value).toFixed(2)}</td></tr><tr><th>producers</th><td>${esc(p.producers)}</td></tr>
    <tr><th>hectares</th><td>${(+p.hectares).toFixed(1)}</td></tr><tr><th>level</th><td>${esc(p.level)}${p.merged ? " (merged small cells)" : ""}</td></tr></table>`;
});
if (SEES_PLOTS) {
  for (const layer of ["plots-fill", "plots-point"]) {
    map.on("click", layer, e => showPlot(e.features[0].properties.code));
    map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
  }
}
document.getElementById("sign-out").addEventListener("click", e => {
  e.preventDefault();
  document.getElementById("logout").submit();
});
