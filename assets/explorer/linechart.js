// The line chart of a 1-d selection, drawn from `/downsample` (M4: per bucket the first,
// last, min and max element). With one bucket per pixel column, the four points per column
// draw the same picture as every element would, so a 10^9-element series costs what a
// 10^3-element one does. Zooming (wheel, buttons) and panning (drag) change the view, a
// range of positions in the selection; the chart redraws the data it has at once and asks
// again for the view, one request in flight at a time, the latest view winning.

import { fitCanvas, plotArea, niceTicks, drawXAxis, drawYAxis, formatNumber, BACKGROUND, INK, LINE } from "./axes.js";

export class LineChart {
  /** @param canvas the chart's canvas
   *  @param fetchView async (lo, hi, buckets) => downsample answer for positions [lo, hi)
   *  @param onError (error) => void, for failed requests
   *  @param readout element that shows the bucket under the pointer */
  constructor(canvas, { fetchView, onError, readout, label }) {
    this.canvas = canvas;
    this.fetchView = fetchView;
    this.onError = onError;
    this.readout = readout;
    this.label = label || ((i) => formatNumber(i));
    this.n = 0;
    this.lo = 0;
    this.hi = 0;
    this.data = null; // { lo, hi, answer }
    this.inFlight = false;
    this.stale = false;
    this.draws = 0;
    this.bind();
  }

  /** Shows a new selection of `n` elements, whole. */
  show(n, fetchView, label) {
    this.n = n;
    this.fetchView = fetchView;
    this.label = label || this.label;
    this.data = null;
    this.draws = 0;
    this.canvas.dataset.draws = "0";
    this.reset();
  }

  reset() { this.setView(0, this.n); }

  /** Zooms by `factor` (> 1 is in) around the fraction `at` of the plot width. */
  zoom(factor, at = 0.5) {
    const span = this.hi - this.lo;
    const next = Math.max(Math.min(this.n, 2), Math.round(span / factor));
    const centre = this.lo + span * at;
    this.setView(Math.round(centre - next * at), Math.round(centre - next * at) + next);
  }

  /** Pans by `px` CSS pixels (positive moves the data right, showing earlier positions). */
  pan(px) {
    const area = plotArea(this.canvas.clientWidth, this.canvas.clientHeight);
    const shift = Math.round((px / area.width) * (this.hi - this.lo));
    if (shift !== 0) this.setView(this.lo - shift, this.hi - shift);
    return shift !== 0;
  }

  setView(lo, hi) {
    const span = Math.min(this.n, Math.max(hi - lo, 0));
    lo = Math.max(0, Math.min(lo, this.n - span));
    this.lo = lo;
    this.hi = lo + span;
    this.draw();
    this.request();
  }

  /** One bucket per device pixel column of the plot area. */
  buckets() {
    const area = plotArea(this.canvas.clientWidth, this.canvas.clientHeight);
    return Math.max(1, Math.min(1_000_000, Math.round(area.width * (window.devicePixelRatio || 1))));
  }

  async request() {
    if (this.n === 0) return;
    if (this.inFlight) { this.stale = true; return; }
    this.inFlight = true;
    const lo = this.lo, hi = this.hi, fetchView = this.fetchView;
    try {
      const answer = await fetchView(lo, hi, this.buckets());
      if (fetchView === this.fetchView) {
        this.data = { lo, hi, answer };
        this.draw();
      }
    } catch (e) {
      if (e.name !== "AbortError") this.onError(e);
    } finally {
      this.inFlight = false;
      if (this.stale) { this.stale = false; this.request(); }
    }
  }

  /** The value range of the data in view, NaN-free. */
  extent() {
    let lo = Infinity, hi = -Infinity;
    const a = this.data && this.data.answer;
    if (!a) return null;
    for (let b = 0; b < a.min.length; b++) {
      const start = this.data.lo + a.start[b];
      if (start >= this.hi) break;
      if (a.min[b] !== null && a.min[b] < lo) lo = a.min[b];
      if (a.max[b] !== null && a.max[b] > hi) hi = a.max[b];
    }
    if (!(hi >= lo)) return null;
    if (hi === lo) { lo -= 0.5; hi += 0.5; }
    const pad = (hi - lo) * 0.04;
    return [lo - pad, hi + pad];
  }

  draw() {
    const { ctx, w, h } = fitCanvas(this.canvas);
    const area = plotArea(w, h);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, w, h);
    const span = Math.max(1, this.hi - this.lo);
    const x = (pos) => area.left + ((pos - this.lo + 0.5) / span) * area.width;
    drawXAxis(ctx, area, niceTicks(this.lo, this.hi - 1, 8).filter(Number.isInteger), x, this.label);
    const extent = this.extent();
    if (!extent) {
      ctx.fillStyle = INK;
      ctx.textAlign = "center";
      ctx.fillText(this.n === 0 ? "empty selection" : this.data ? "no finite values" : "loading…", area.left + area.width / 2, area.top + area.height / 2);
      return;
    }
    const [ylo, yhi] = extent;
    const y = (v) => area.top + (1 - (v - ylo) / (yhi - ylo)) * area.height;
    drawYAxis(ctx, area, niceTicks(ylo, yhi, 6), y);
    ctx.save();
    ctx.beginPath();
    ctx.rect(area.left, area.top, area.width, area.height);
    ctx.clip();
    ctx.strokeStyle = LINE;
    ctx.lineWidth = 1;
    ctx.beginPath();
    const a = this.data.answer;
    const base = this.data.lo;
    let pen = false;
    for (let b = 0; b < a.start.length; b++) {
      const end = b + 1 < a.start.length ? a.start[b + 1] : this.data.hi - base;
      // The bucket's points in the order of their positions, as the elements themselves run.
      const points = [[a.start[b], a.first[b]], [a.argmin[b], a.min[b]], [a.argmax[b], a.max[b]], [end - 1, a.last[b]]]
        .filter((p) => p[0] !== null && p[1] !== null)
        .sort((p, q) => p[0] - q[0]);
      if (a.min[b] === null) { pen = false; continue; }
      for (const [pos, v] of points) {
        const px = x(base + pos), py = y(v);
        if (pen) ctx.lineTo(px, py); else { ctx.moveTo(px, py); pen = true; }
      }
    }
    ctx.stroke();
    ctx.restore();
    if (this.data.lo === this.lo && this.data.hi === this.hi) {
      this.draws += 1;
      this.canvas.dataset.draws = String(this.draws);
      this.canvas.dataset.view = `${this.lo}:${this.hi}`;
      // The plot area in device pixels, where the line may be looked for.
      const dpr = window.devicePixelRatio || 1;
      this.canvas.dataset.plot = [area.left, area.top, area.width, area.height].map((v) => Math.round(v * dpr)).join(",");
      this.canvas.dispatchEvent(new CustomEvent("drawn"));
    }
  }

  /** The bucket under CSS x `px`, for the readout. */
  describe(px) {
    const a = this.data && this.data.answer;
    if (!a) return "";
    const area = plotArea(this.canvas.clientWidth, this.canvas.clientHeight);
    const pos = this.lo + Math.floor(((px - area.left) / area.width) * (this.hi - this.lo)) - this.data.lo;
    let b = 0;
    while (b + 1 < a.start.length && a.start[b + 1] <= pos) b++;
    if (pos < 0 || b >= a.start.length) return "";
    const end = b + 1 < a.start.length ? a.start[b + 1] : this.data.hi - this.data.lo;
    const from = this.data.lo + a.start[b], to = this.data.lo + end - 1;
    const where = from === to ? `[${from}]` : `[${from} … ${to}]`;
    return `${where}  min ${formatNumber(a.min[b])}  max ${formatNumber(a.max[b])}`;
  }

  bind() {
    const c = this.canvas;
    // The plot's width sets the bucket count: a new width (a window resize, a scroll bar
    // coming as the page grows) is a new request.
    let width = 0;
    new ResizeObserver(() => {
      if (c.clientWidth === width || c.clientWidth === 0) return;
      width = c.clientWidth;
      this.draw();
      this.request();
    }).observe(c);
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const area = plotArea(c.clientWidth, c.clientHeight);
      const at = Math.min(1, Math.max(0, (e.offsetX - area.left) / area.width));
      this.zoom(e.deltaY < 0 ? 1.5 : 1 / 1.5, at);
    }, { passive: false });
    let dragFrom = null;
    c.addEventListener("pointerdown", (e) => { dragFrom = e.offsetX; c.setPointerCapture(e.pointerId); });
    c.addEventListener("pointermove", (e) => {
      if (dragFrom !== null) {
        // Under a pixel's worth of positions the view stays, and the drag keeps adding up.
        if (this.pan(e.offsetX - dragFrom)) dragFrom = e.offsetX;
      }
      if (this.readout) this.readout.textContent = this.describe(e.offsetX);
    });
    const stop = () => { dragFrom = null; };
    c.addEventListener("pointerup", stop);
    c.addEventListener("pointercancel", stop);
    c.addEventListener("dblclick", () => this.reset());
    c.addEventListener("pointerleave", () => { if (this.readout) this.readout.textContent = ""; });
  }
}
