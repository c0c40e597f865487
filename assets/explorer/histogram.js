// The bar chart of a `/histogram` answer ({edges, counts, nan_count}).

import { fitCanvas, plotArea, niceTicks, drawXAxis, drawYAxis, formatNumber, BACKGROUND, LINE } from "./axes.js";

export class Histogram {
  constructor(canvas, readout) {
    this.canvas = canvas;
    this.readout = readout;
    this.answer = null;
    canvas.addEventListener("pointermove", (e) => { this.readout.textContent = this.describe(e.offsetX); });
    canvas.addEventListener("pointerleave", () => { this.readout.textContent = ""; });
    new ResizeObserver(() => { if (this.answer) this.draw(); }).observe(canvas);
  }

  show(answer) {
    this.answer = answer;
    this.draw();
  }

  clear() {
    this.answer = null;
    this.canvas.dataset.draws = "0";
    const { ctx, w, h } = fitCanvas(this.canvas);
    ctx.clearRect(0, 0, w, h);
  }

  draw() {
    const { ctx, w, h } = fitCanvas(this.canvas);
    const area = plotArea(w, h);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, w, h);
    const { edges, counts } = this.answer;
    const lo = edges[0], hi = edges[edges.length - 1];
    const top = counts.reduce((m, c) => (c > m ? c : m), 1);
    const x = (v) => area.left + ((v - lo) / (hi - lo || 1)) * area.width;
    const y = (c) => area.top + (1 - c / top) * area.height;
    drawYAxis(ctx, area, niceTicks(0, top, 5).filter(Number.isInteger), y);
    drawXAxis(ctx, area, niceTicks(lo, hi, 6), x);
    ctx.fillStyle = LINE;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i] === 0) continue;
      const x0 = x(edges[i]), x1 = x(edges[i + 1]);
      ctx.fillRect(x0, y(counts[i]), Math.max(1, x1 - x0 - (x1 - x0 > 3 ? 1 : 0)), area.top + area.height - y(counts[i]));
    }
    this.canvas.dataset.draws = String(Number(this.canvas.dataset.draws || 0) + 1);
  }

  describe(px) {
    if (!this.answer) return "";
    const { edges, counts } = this.answer;
    const area = plotArea(this.canvas.clientWidth, this.canvas.clientHeight);
    const i = Math.floor(((px - area.left) / area.width) * counts.length);
    if (i < 0 || i >= counts.length) return "";
    const close = i === counts.length - 1 ? "]" : ")";
    return `[${formatNumber(edges[i])}, ${formatNumber(edges[i + 1])}${close}: ${counts[i]}`;
  }
}
