// Shared drawing helpers: canvas sizing, tick placement, number labels, colours.

/** Sizes `canvas`'s bitmap to its CSS box times the device pixel ratio and returns a context
 *  that draws in CSS pixels, with the box's width and height and the ratio. */
export function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, canvas.clientWidth);
  const h = Math.max(1, canvas.clientHeight);
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, w, h, dpr };
}

/** The plot area inside a canvas of `w` x `h` CSS pixels, leaving room for the axis labels. */
export function plotArea(w, h) {
  const left = 64, right = 12, top = 10, bottom = 26;
  return { left, top, width: Math.max(1, w - left - right), height: Math.max(1, h - top - bottom) };
}

export const BACKGROUND = "#ffffff";
export const INK = "#1f2933";
export const GRID = "#e4e7eb";
export const LINE = "#1d4ed8";

/** Up to about `count` round values between `lo` and `hi` (1, 2 or 5 times a power of ten). */
export function niceTicks(lo, hi, count) {
  if (!(hi > lo) || !isFinite(lo) || !isFinite(hi)) return isFinite(lo) ? [lo] : [];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return ticks;
}

/** A short label for `v`: at most about 6 significant digits, exponent form when large or tiny. */
export function formatNumber(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "bigint") return v.toString();
  if (!isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3).replace(/\.?0+e/, "e");
  return String(parseFloat(v.toPrecision(6)));
}

/** Draws the value axis (left) with grid lines for `ticks` mapped by `y`. */
export function drawYAxis(ctx, area, ticks, y) {
  ctx.font = "11px sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of ticks) {
    const py = y(t);
    if (py < area.top - 0.5 || py > area.top + area.height + 0.5) continue;
    ctx.strokeStyle = GRID;
    ctx.beginPath();
    ctx.moveTo(area.left, Math.round(py) + 0.5);
    ctx.lineTo(area.left + area.width, Math.round(py) + 0.5);
    ctx.stroke();
    ctx.fillStyle = INK;
    ctx.fillText(formatNumber(t), area.left - 6, py);
  }
}

/** Draws the index axis (bottom) with labels for `ticks` mapped by `x`. */
export function drawXAxis(ctx, area, ticks, x, label = formatNumber) {
  ctx.font = "11px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillStyle = INK;
  ctx.strokeStyle = INK;
  const base = area.top + area.height;
  for (const t of ticks) {
    const px = x(t);
    if (px < area.left - 0.5 || px > area.left + area.width + 0.5) continue;
    ctx.beginPath();
    ctx.moveTo(Math.round(px) + 0.5, base);
    ctx.lineTo(Math.round(px) + 0.5, base + 4);
    ctx.stroke();
    ctx.fillText(label(t), px, base + 6);
  }
  ctx.beginPath();
  ctx.moveTo(area.left, base + 0.5);
  ctx.lineTo(area.left + area.width, base + 0.5);
  ctx.stroke();
}

/** 256 RGB triples of viridis (perceptually uniform, readable in grey and by most colour-blind
 *  readers), interpolated from 9 of its stops. */
export const VIRIDIS = (() => {
  const stops = [
    [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
    [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
  ];
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const f = (i / 255) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(f));
    const t = f - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = stops[k][c] + (stops[k + 1][c] - stops[k][c]) * t;
  }
  return lut;
})();
