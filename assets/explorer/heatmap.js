// The heat map of a 2-d selection: the elements of a strided `format=bin` answer (at most
// one element per device pixel of the canvas), coloured by viridis between their finite
// minimum and maximum, with the colour scale beside it and the value under the pointer.

import { fitCanvas, formatNumber, BACKGROUND, INK, VIRIDIS } from "./axes.js";

const NAN_RGB = [200, 200, 200];
/** Room right of the picture for the colour scale and its labels, in CSS pixels. */
const SCALE_WIDTH = 90;

export class HeatMap {
  constructor(canvas, readout) {
    this.canvas = canvas;
    this.readout = readout;
    this.image = null;
    this.draws = 0;
    canvas.addEventListener("pointermove", (e) => { this.readout.textContent = this.describe(e.offsetX, e.offsetY); });
    canvas.addEventListener("pointerleave", () => { this.readout.textContent = ""; });
    new ResizeObserver(() => { if (this.image) this.draw(); }).observe(canvas);
  }

  /** The device pixels the picture may take: what the request's strides are sized to. */
  pixels() {
    const dpr = window.devicePixelRatio || 1;
    return {
      width: Math.round(Math.max(1, this.canvas.clientWidth - SCALE_WIDTH) * dpr),
      height: Math.round(this.canvas.clientHeight * dpr),
    };
  }

  /** Shows `values` (rows x cols, C order). `where(r, c)` names the dataset position of a
   *  cell for the readout; `parts` holds [re, im] pairs for complex data. */
  show({ values, parts, rows, cols, where }) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) {
      if (isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    }
    if (!(hi >= lo)) { lo = 0; hi = 1; }
    this.image = { values, parts, rows, cols, where, lo, hi };
    this.draw();
  }

  clear() {
    this.image = null;
    this.draws = 0;
    this.canvas.dataset.draws = "0";
    const { ctx, w, h } = fitCanvas(this.canvas);
    ctx.clearRect(0, 0, w, h);
  }

  /** Where the picture sits in the canvas, in CSS pixels: as large as fits with square
   *  cells, leaving room on its right for the colour scale. */
  box() {
    const { rows, cols } = this.image;
    const w = Math.max(1, this.canvas.clientWidth - SCALE_WIDTH), h = this.canvas.clientHeight;
    const scale = Math.min(w / cols, h / rows);
    return { left: 0, top: 0, width: cols * scale, height: rows * scale };
  }

  draw() {
    const { ctx, w, h } = fitCanvas(this.canvas);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, w, h);
    const { values, rows, cols, lo, hi } = this.image;
    if (rows === 0 || cols === 0) return;
    const pixels = new ImageData(cols, rows);
    const d = pixels.data;
    const scale = hi > lo ? 255 / (hi - lo) : 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      let r, g, b;
      if (isFinite(v)) {
        const k = Math.max(0, Math.min(255, Math.round((v - lo) * scale))) * 3;
        r = VIRIDIS[k]; g = VIRIDIS[k + 1]; b = VIRIDIS[k + 2];
      } else {
        // +Inf and -Inf take the ends of the scale; NaN is grey.
        const k = v === Infinity ? 255 * 3 : v === -Infinity ? 0 : -1;
        [r, g, b] = k < 0 ? NAN_RGB : [VIRIDIS[k], VIRIDIS[k + 1], VIRIDIS[k + 2]];
      }
      d[i * 4] = r; d[i * 4 + 1] = g; d[i * 4 + 2] = b; d[i * 4 + 3] = 255;
    }
    const off = document.createElement("canvas");
    off.width = cols;
    off.height = rows;
    off.getContext("2d").putImageData(pixels, 0, 0);
    const box = this.box();
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, box.left, box.top, box.width, box.height);
    this.drawScale(ctx, box);
    this.canvas.dataset.box = [box.left, box.top, box.width, box.height].map(Math.round).join(",");
    this.draws += 1;
    this.canvas.dataset.draws = String(this.draws);
    this.canvas.dispatchEvent(new CustomEvent("drawn"));
  }

  /** The colour scale, a bar as tall as the picture just right of it, with five labels. */
  drawScale(ctx, box) {
    const barW = 16, left = box.left + box.width + 8, top = box.top, barH = Math.max(2, box.height);
    for (let i = 0; i < barH; i++) {
      const k = Math.round((1 - i / Math.max(1, barH - 1)) * 255) * 3;
      ctx.fillStyle = `rgb(${VIRIDIS[k]},${VIRIDIS[k + 1]},${VIRIDIS[k + 2]})`;
      ctx.fillRect(left, top + i, barW, 1);
    }
    const { lo, hi } = this.image;
    ctx.fillStyle = INK;
    ctx.font = "11px sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      ctx.fillText(formatNumber(hi - f * (hi - lo)), left + barW + 4, Math.min(top + barH - 6, Math.max(top + 6, top + f * (barH - 1))));
    }
  }

  /** The cell under CSS point (px, py), as "[i, j] = value". */
  describe(px, py) {
    if (!this.image) return "";
    const { rows, cols, values, parts, where } = this.image;
    const box = this.box();
    const c = Math.floor(((px - box.left) / box.width) * cols);
    const r = Math.floor(((py - box.top) / box.height) * rows);
    if (r < 0 || c < 0 || r >= rows || c >= cols) return "";
    const i = r * cols + c;
    const value = parts ? `${formatNumber(parts[2 * i])}${parts[2 * i + 1] < 0 ? "-" : "+"}${formatNumber(Math.abs(parts[2 * i + 1]))}j (|z| ${formatNumber(values[i])})` : formatNumber(values[i]);
    return `${where(r, c)} = ${value}`;
  }
}
