// The explorer page: the dataset list, one dataset's META, and a selection shown as a chart
// (a line chart for 1-d, a heat map for 2-d and more), stats, a histogram and JSON, with the
// curl and Python lines that fetch it. The location's hash holds what is shown
// (`#/NAME?slice=TEXT`), so a view can be bookmarked, reloaded and shared.
//
// The selection as typed goes to the server first (a HEAD of `format=bin` gives its output
// shape); the server's error, if any, is what the page shows. The chart asks first and the
// aggregates after it has drawn, so the picture is not kept waiting behind two full passes
// over a large selection.

import * as api from "./api.js";
import * as selection from "./selection.js";
import { decode } from "./decode.js";
import { LineChart } from "./linechart.js";
import { HeatMap } from "./heatmap.js";
import { Histogram } from "./histogram.js";
import { formatNumber } from "./axes.js";

const $ = (id) => document.getElementById(id);
/** How much of the JSON answer the preview reads before it drops the stream. */
const PREVIEW_BYTES = 64 * 1024;
const HISTOGRAM_BINS = 64;

let datasets = [];
/** Bumped by every new selection; answers to an older one are dropped. */
let generation = 0;
let charted = false;

const line = new LineChart($("line"), { onError: (e) => showError($("chart-error"), e), readout: $("line-readout") });
const heat = new HeatMap($("heat"), $("heat-readout"));
const histogram = new Histogram($("hist"), $("hist-readout"));

function showError(box, error) {
  box.hidden = false;
  box.textContent = error instanceof api.ApiError ? error.toString() : String((error && error.message) || error);
}

function hide(box) {
  box.hidden = true;
  box.textContent = "";
}

function humanBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return `${u === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${units[u]}`;
}

function shapeText(shape) {
  return `(${shape.join(", ")}${shape.length === 1 ? "," : ""})`;
}

function markCharted() {
  if (charted) return;
  charted = true;
  // Time from navigation start to the first chart with data, for people and tests alike.
  performance.mark("arrayd-first-chart");
  document.body.dataset.firstChartMs = performance.now().toFixed(1);
}
$("line").addEventListener("drawn", markCharted);
$("heat").addEventListener("drawn", markCharted);

// ---------------------------------------------------------------- token

function refreshTokenState() {
  $("token-state").hidden = !api.token();
}

api.setTokenPrompt((error) => new Promise((resolve) => {
  const dialog = $("token-dialog");
  $("token-message").textContent = error.toString();
  $("token-input").value = "";
  const done = (value) => {
    $("token-form").onsubmit = null;
    $("token-cancel").onclick = null;
    dialog.close();
    resolve(value);
    refreshTokenState();
  };
  $("token-form").onsubmit = (e) => {
    e.preventDefault();
    const value = $("token-input").value.trim();
    if (value) done(value);
  };
  $("token-cancel").onclick = () => done(null);
  dialog.oncancel = (e) => { e.preventDefault(); done(null); };
  dialog.showModal();
  $("token-input").focus();
}));

$("token-forget").addEventListener("click", () => {
  api.forgetToken();
  refreshTokenState();
});

// ---------------------------------------------------------------- the list

async function loadList() {
  hide($("list-error"));
  try {
    const answer = await api.json(api.apiUrl("/v1/datasets"));
    datasets = answer.datasets;
  } catch (e) {
    showError($("list-error"), e);
    return;
  }
  refreshTokenState();
  const body = $("datasets").tBodies[0];
  body.replaceChildren(...datasets.map((d) => {
    const row = document.createElement("tr");
    row.dataset.name = d.name;
    for (const text of [d.name, d.dtype, shapeText(d.shape), humanBytes(d.nbytes), d.order]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    row.addEventListener("click", () => { location.hash = `#/${d.name}`; });
    return row;
  }));
  document.body.dataset.listed = String(datasets.length);
  markChosen();
}

function markChosen() {
  const { name } = parseHash();
  for (const row of $("datasets").tBodies[0].rows) row.classList.toggle("chosen", row.dataset.name === name);
}

// ---------------------------------------------------------------- routing

function parseHash() {
  const m = /^#\/([^?]*)(?:\?(.*))?$/.exec(location.hash);
  if (!m) return { name: null, slice: "" };
  const params = new URLSearchParams(m[2] || "");
  return { name: decodeURIComponent(m[1]), slice: params.get("slice") || "" };
}

function hashFor(name, slice) {
  return `#/${name}${slice ? `?slice=${encodeURIComponent(slice)}` : ""}`;
}

async function route() {
  const { name, slice } = parseHash();
  markChosen();
  if (!name) return;
  const gen = ++generation;
  resetSelection();
  $("dataset-panel").hidden = false;
  $("dataset-name").textContent = name;
  $("slice").value = slice;
  hide($("meta-error"));
  let meta = datasets.find((d) => d.name === name);
  try {
    // The list may be stale (a rescan) or not loaded yet: ask for the one dataset.
    meta = await api.json(api.apiUrl(`/v1/datasets/${encodeURIComponent(name)}`));
  } catch (e) {
    if (gen !== generation) return;
    showError($("meta-error"), e);
    if (!meta) { resetSelection(); return; }
  }
  if (gen !== generation) return;
  $("meta").textContent = JSON.stringify(meta, null, 2);
  show(meta, slice, gen);
}

$("selection-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const { name } = parseHash();
  if (!name) return;
  const next = hashFor(name, $("slice").value.trim());
  if (next === location.hash) route(); else location.hash = next;
});
window.addEventListener("hashchange", route);

// ---------------------------------------------------------------- one selection

function resetSelection() {
  for (const id of ["sel-error", "chart-error", "stats-error", "hist-error", "preview-error"]) hide($(id));
  $("sel-shape").textContent = "";
  $("chart-panel").hidden = true;
  $("results").hidden = true;
  $("code-curl").textContent = "";
  $("code-python").textContent = "";
  $("stats").tBodies[0].replaceChildren();
  histogram.clear();
  heat.clear();
  $("hist-nan").textContent = "";
  $("preview").textContent = "";
  $("preview-note").textContent = "";
  line.show(0, null);
}

async function show(meta, slice, gen) {
  resetSelection();
  // What the charts' draw counts (data-draws, reset above) now refer to.
  document.body.dataset.shown = `${meta.name}[${slice}]`;
  writeCode(meta.name, slice);
  const base = `/v1/datasets/${encodeURIComponent(meta.name)}`;
  let shape;
  try {
    const head = await api.call(api.apiUrl(`${base}/data`, { slice, format: "bin" }), { method: "HEAD" });
    const text = head.headers.get("X-Array-Shape") || "";
    shape = text === "" ? [] : text.split(",").map(Number);
  } catch (e) {
    if (gen === generation) showError($("sel-error"), e);
    return;
  }
  if (gen !== generation) return;
  writeCode(meta.name, slice);
  $("results").hidden = false;
  const count = shape.reduce((a, b) => a * b, 1);
  $("sel-shape").textContent = `shape ${shapeText(shape)}, ${count.toLocaleString("en")} elements, ${humanBytes(count * meta.itemsize)}`;
  let axes = null;
  try {
    axes = selection.resolve(slice, meta.shape);
    if (selection.outputShape(axes).join(",") !== shape.join(",")) axes = null;
  } catch (_) {
    axes = null;
  }
  preview(base, slice, gen);
  await chart(meta, base, axes, shape, gen);
  if (gen !== generation) return;
  stats(base, slice, gen);
  hist(base, slice, gen);
}

async function chart(meta, base, axes, shape, gen) {
  if (shape.length === 0) return;
  $("chart-panel").hidden = false;
  if (!axes) {
    showError($("chart-error"), "the page cannot derive views of this selection; try a simpler slice");
    return;
  }
  if (shape.length === 1) {
    $("line-box").hidden = false;
    $("heat-box").hidden = true;
    $("chart-title").textContent = `${meta.name}[${selection.format(axes)}]: ${shape[0].toLocaleString("en")} elements, one M4 bucket per pixel column`;
    const drawn = new Promise((resolve) => {
      $("line").addEventListener("drawn", resolve, { once: true });
      line.onError = (e) => { if (gen === generation) showError($("chart-error"), e); resolve(); };
    });
    const fetchView = (lo, hi, buckets) => api.json(api.apiUrl(`${base}/downsample`, {
      slice: selection.format(selection.narrow(axes, 0, lo, hi)),
      buckets,
    }));
    line.show(shape[0], fetchView, (i) => selection.coordinate(axes, 0, i).toLocaleString("en"));
    if (shape[0] === 0) return;
    await drawn;
    return;
  }
  $("line-box").hidden = true;
  $("heat-box").hidden = false;
  const plane = selection.keepLast(axes, 2);
  const rows = shape[shape.length - 2], cols = shape[shape.length - 1];
  if (!plane || rows === 0 || cols === 0) {
    $("chart-title").textContent = `${meta.name}: empty selection, nothing to draw`;
    return;
  }
  const px = heat.pixels();
  const rowStride = Math.max(1, Math.ceil(rows / px.height));
  const colStride = Math.max(1, Math.ceil(cols / px.width));
  const strided = selection.narrow(selection.narrow(plane, 0, 0, rows, rowStride), 1, 0, cols, colStride);
  const text = selection.format(strided);
  const note = [
    shape.length > 2 ? "first 2-d plane" : "",
    rowStride > 1 || colStride > 1 ? `every ${rowStride} row(s), ${colStride} column(s) to fit the canvas` : "",
  ].filter(Boolean).join("; ");
  $("chart-title").textContent = `${meta.name}[${text}]${note ? `: ${note}` : ""}`;
  try {
    const response = await api.call(api.apiUrl(`${base}/data`, { slice: text, format: "bin" }));
    const dtype = response.headers.get("X-Array-Dtype");
    const [r, c] = (response.headers.get("X-Array-Shape") || "").split(",").map(Number);
    const { values, parts } = decode(await response.arrayBuffer(), dtype);
    if (gen !== generation) return;
    const where = (i, j) => `[${strided.map((a, k) => {
      if (a.index !== undefined) return a.index;
      return k === strided.findIndex((b) => b.index === undefined) ? a.start + i * a.step : a.start + j * a.step;
    }).join(", ")}]`;
    heat.show({ values, parts, rows: r, cols: c, where });
  } catch (e) {
    if (gen === generation) showError($("chart-error"), e);
  }
}

/** Breaks nested JSON lists after each top-level item, as the text came (no reparse, so
 *  64-bit integers keep every digit). */
function layout(text) {
  let depth = 0;
  let out = "";
  for (const ch of text) {
    if (ch === "[") depth++;
    else if (ch === "]") depth--;
    out += ch;
    if (ch === "," && depth === 1 && text[0] === "[" && text[1] === "[") out += "\n ";
  }
  return out;
}

async function preview(base, slice, gen) {
  try {
    const { text, complete } = await api.head(api.apiUrl(`${base}/data`, { slice }), PREVIEW_BYTES);
    if (gen !== generation) return;
    $("preview").textContent = layout(text) + (complete ? "" : " …");
    $("preview-note").textContent = complete ? "" : `the first ${PREVIEW_BYTES / 1024} KiB`;
  } catch (e) {
    if (gen === generation) showError($("preview-error"), e);
  }
}

async function stats(base, slice, gen) {
  try {
    const nan = $("nan-ignore").checked ? "ignore" : undefined;
    const answer = await api.json(api.apiUrl(`${base}/stats`, { slice, nan, nonfinite: "string" }));
    if (gen !== generation) return;
    $("stats").tBodies[0].replaceChildren(...Object.entries(answer).map(([op, value]) => {
      const row = document.createElement("tr");
      const k = document.createElement("th");
      k.textContent = op;
      const v = document.createElement("td");
      v.textContent = typeof value === "number" ? formatNumber(value) : typeof value === "string" ? value : JSON.stringify(value);
      row.append(k, v);
      return row;
    }));
  } catch (e) {
    if (gen === generation) showError($("stats-error"), e);
  }
}

async function hist(base, slice, gen) {
  try {
    const answer = await api.json(api.apiUrl(`${base}/histogram`, { slice, bins: HISTOGRAM_BINS }));
    if (gen !== generation) return;
    histogram.show(answer);
    $("hist-nan").textContent = answer.nan_count ? `${answer.nan_count.toLocaleString("en")} NaN left out` : "";
  } catch (e) {
    if (gen === generation) showError($("hist-error"), e);
  }
}

// ---------------------------------------------------------------- curl and Python

function writeCode(name, slice) {
  const origin = location.origin;
  const path = `${origin}/v1/datasets/${name}/data`;
  // curl reads [ ] as a URL glob: write them escaped.
  const query = `${slice ? `slice=${slice.replaceAll("[", "%5B").replaceAll("]", "%5D")}&` : ""}format=npy`;
  const needsToken = Boolean(api.token());
  const file = `${name}.npy`;
  $("code-curl").textContent =
    `curl ${needsToken ? `-H "Authorization: Bearer $ARRAYD_READ_TOKEN" ` : ""}'${path}?${query}' -o ${file}`;
  const params = `{${slice ? `"slice": ${JSON.stringify(slice)}, ` : ""}"format": "npy"}`;
  const headers = needsToken ? `, headers={"Authorization": "Bearer " + os.environ["ARRAYD_READ_TOKEN"]}` : "";
  $("code-python").textContent =
    `import io${needsToken ? ", os" : ""}, numpy as np, requests; ` +
    `a = np.load(io.BytesIO(requests.get("${path}", params=${params}${headers}).content))`;
}

// ---------------------------------------------------------------- start

$("nan-ignore").addEventListener("change", () => {
  const { name, slice } = parseHash();
  if (name) stats(`/v1/datasets/${encodeURIComponent(name)}`, slice, generation);
});
$("zoom-in").addEventListener("click", () => line.zoom(2));
$("zoom-out").addEventListener("click", () => line.zoom(0.5));
$("zoom-reset").addEventListener("click", () => line.reset());

// Zoom and pan requests stay observable (performance.getEntriesByType("resource")) past
// the default 250 entries.
performance.setResourceTimingBufferSize(100000);

// For tests and the console: the page's decoders and selection arithmetic.
window.arraydExplorer = { api, selection, decode };

refreshTokenState();
loadList();
route();
