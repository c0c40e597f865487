// `slice=` text resolved against a dataset's shape exactly as NumPy's basic indexing does,
// so the page can derive narrower selections from the user's one (a zoomed view, a strided
// heat map) and write them back as `slice=` text. The server stays the judge of what the
// user typed: the page sends the text as typed first and shows the server's error if any;
// only an accepted selection is resolved here.

/** One axis of a resolved selection: an integer index (the axis is dropped from the output)
 *  or a range of `len` positions `start, start+step, ...`. */
function indexAxis(i) { return { index: i }; }
function rangeAxis(start, step, len) { return { start, step, len }; }

function parseInt64(text, item) {
  if (!/^-?[0-9]+$/.test(text)) throw new Error(`bad item ${JSON.stringify(item)}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`${text} is too large for the page`);
  return n;
}

/** NumPy's PySlice_AdjustIndices for a dimension of length `n`. */
function adjust(startText, stopText, stepText, n, item) {
  const step = stepText === undefined || stepText === "" ? 1 : parseInt64(stepText, item);
  if (step === 0) throw new Error("slice step cannot be zero");
  let start, stop;
  if (step > 0) {
    start = startText === "" ? 0 : parseInt64(startText, item);
    stop = stopText === "" ? n : parseInt64(stopText, item);
    if (start < 0) start = Math.max(0, start + n); else start = Math.min(start, n);
    if (stop < 0) stop = Math.max(0, stop + n); else stop = Math.min(stop, n);
    return rangeAxis(start, step, stop > start ? Math.ceil((stop - start) / step) : 0);
  }
  start = startText === "" ? n - 1 : parseInt64(startText, item);
  stop = stopText === "" ? -1 : parseInt64(stopText, item);
  if (startText !== "" && start < 0) start = Math.max(-1, start + n); else start = Math.min(start, n - 1);
  if (stopText !== "" && stop < 0) stop = Math.max(-1, stop + n); else stop = Math.min(stop, n - 1);
  return rangeAxis(start, step, start > stop ? Math.ceil((start - stop) / -step) : 0);
}

/** Resolves `text` against `shape`: one axis object per dataset axis.
 *  @throws Error for text the page cannot follow (the server has its own, better message). */
export function resolve(text, shape) {
  let body = text;
  if (body.startsWith("[") && body.endsWith("]")) body = body.slice(1, -1);
  let items = body === "" ? [] : body.split(",");
  const ellipses = items.filter((i) => i === "...").length;
  if (ellipses > 1) throw new Error("at most one ...");
  const concrete = items.length - ellipses;
  if (concrete > shape.length) throw new Error("more items than dimensions");
  if (ellipses === 1) {
    const at = items.indexOf("...");
    items = [...items.slice(0, at), ...Array(shape.length - concrete).fill(":"), ...items.slice(at + 1)];
  }
  while (items.length < shape.length) items.push(":");
  return items.map((item, k) => {
    const n = shape[k];
    const parts = item.split(":");
    if (parts.length === 1) {
      let i = parseInt64(item, item);
      if (i < 0) i += n;
      if (i < 0 || i >= n) throw new Error(`index ${item} is out of range for axis ${k}`);
      return indexAxis(i);
    }
    if (parts.length > 3) throw new Error(`bad item ${JSON.stringify(item)}`);
    return adjust(parts[0], parts[1], parts[2], n, item);
  });
}

/** The output shape of resolved `axes`. */
export function outputShape(axes) {
  return axes.filter((a) => a.index === undefined).map((a) => a.len);
}

/** `axes` as `slice=` text that selects the same elements. */
export function format(axes) {
  return axes.map((a) => {
    if (a.index !== undefined) return String(a.index);
    if (a.len === 0) return "0:0";
    const stop = a.start + a.len * a.step;
    const stepText = a.step === 1 ? "" : `:${a.step}`;
    // A negative step that runs down to element 0 has no stop that can be written as a
    // number (-1 would mean the last element): leave it empty.
    if (a.step < 0 && stop < 0) return `${a.start}::${a.step}`;
    return `${a.start}:${stop}${stepText}`;
  }).join(",");
}

/** The output axes' positions in `axes` (dataset axis numbers). */
function outputAxes(axes) {
  return axes.flatMap((a, k) => (a.index === undefined ? [k] : []));
}

/** `axes` with output axis `out` cut to its positions `[lo, hi)`, every `stride`-th one. */
export function narrow(axes, out, lo, hi, stride = 1) {
  const k = outputAxes(axes)[out];
  const a = axes[k];
  const from = Math.max(0, Math.min(lo, a.len));
  const to = Math.max(from, Math.min(hi, a.len));
  const copy = axes.slice();
  copy[k] = rangeAxis(a.start + from * a.step, a.step * stride, Math.ceil((to - from) / stride));
  return copy;
}

/** `axes` with every output axis but the last `keep` fixed at its first position, so that an
 *  N-d selection gives a `keep`-d one. Empty axes cannot be fixed; null then. */
export function keepLast(axes, keep) {
  const outs = outputAxes(axes);
  const copy = axes.slice();
  for (const k of outs.slice(0, Math.max(0, outs.length - keep))) {
    if (copy[k].len === 0) return null;
    copy[k] = indexAxis(copy[k].start);
  }
  return copy;
}

/** The dataset coordinate of position `i` along output axis `out`. */
export function coordinate(axes, out, i) {
  const a = axes[outputAxes(axes)[out]];
  return a.start + i * a.step;
}
