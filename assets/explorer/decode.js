// Decoding `format=bin` answers: the elements as stored, in C order, of the dtype named by
// X-Array-Dtype (NumPy type string with byte order). Every dtype the server serves is read
// through a DataView, so either byte order works on any machine.

const SIZES = { b1: 1, i1: 1, u1: 1, i2: 2, u2: 2, f2: 2, i4: 4, u4: 4, f4: 4, i8: 8, u8: 8, f8: 8, c8: 8, c16: 16 };

/** The itemsize of `dtype` ("<f4" is 4).
 *  @throws Error for a dtype the page does not know. */
export function itemsize(dtype) {
  const size = SIZES[dtype.slice(1)];
  if (size === undefined) throw new Error(`dtype ${dtype} is not one the page can decode`);
  return size;
}

/** IEEE 754 binary16 bits to a number. */
export function halfToNumber(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** The elements of `buffer` (an ArrayBuffer) as numbers. Booleans are 0 and 1; 64-bit
 *  integers are rounded to the nearest double; complex values become `[re, im]` pairs in
 *  `parts` (two numbers per element) and their magnitude in the result.
 *  @returns {{values: Float64Array, parts: Float64Array|null}}
 *  @throws Error when the byte count is not a whole number of elements. */
export function decode(buffer, dtype) {
  const size = itemsize(dtype);
  const view = new DataView(buffer);
  if (buffer.byteLength % size !== 0) {
    throw new Error(`${buffer.byteLength} bytes are not a whole number of ${dtype} elements`);
  }
  const n = buffer.byteLength / size;
  const le = dtype[0] !== ">";
  const values = new Float64Array(n);
  let parts = null;
  const kind = dtype.slice(1);
  const read = {
    b1: (o) => (view.getUint8(o) ? 1 : 0),
    i1: (o) => view.getInt8(o),
    u1: (o) => view.getUint8(o),
    i2: (o) => view.getInt16(o, le),
    u2: (o) => view.getUint16(o, le),
    f2: (o) => halfToNumber(view.getUint16(o, le)),
    i4: (o) => view.getInt32(o, le),
    u4: (o) => view.getUint32(o, le),
    f4: (o) => view.getFloat32(o, le),
    i8: (o) => Number(view.getBigInt64(o, le)),
    u8: (o) => Number(view.getBigUint64(o, le)),
    f8: (o) => view.getFloat64(o, le),
  }[kind];
  if (read) {
    for (let i = 0; i < n; i++) values[i] = read(i * size);
    return { values, parts };
  }
  const half = size / 2;
  const part = half === 4 ? (o) => view.getFloat32(o, le) : (o) => view.getFloat64(o, le);
  parts = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    const re = part(i * size);
    const im = part(i * size + half);
    parts[2 * i] = re;
    parts[2 * i + 1] = im;
    values[i] = Math.hypot(re, im);
  }
  return { values, parts };
}
