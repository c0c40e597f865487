// zarrita.js against arrayd's /zarr view: node read.mjs http://HOST/zarr
//
// The server serves c (5x7 <f4, C order, values (7i+j)/2), f (5x7 <i4, Fortran order,
// values 7i+j) and b (5x7 >u2, values 3(7i+j)). Each is opened as Zarr format 3 and 2 and
// read whole and sliced; every element is compared through the returned strides.
import * as zarr from "zarrita";

const base = process.argv[2];
const want = { c: (k) => k / 2, f: (k) => k, b: (k) => 3 * k };
let passed = 0;
let failed = 0;

function check(label, got, value, rows, cols, row0 = 0, col0 = 0) {
  const [s0, s1] = got.stride;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = Number(got.data[i * s0 + j * s1]);
      const w = value(7 * (i + row0) + (j + col0));
      if (v !== w) {
        failed++;
        console.log(`FAIL ${label}: [${i + row0}, ${j + col0}] = ${v}, want ${w}`);
        return;
      }
    }
  }
  passed++;
}

const store = new zarr.FetchStore(base);
for (const [name, value] of Object.entries(want)) {
  for (const open of [zarr.open.v3, zarr.open.v2, zarr.open]) {
    const label = `${name} ${open === zarr.open ? "any format" : open === zarr.open.v3 ? "v3" : "v2"}`;
    try {
      const arr = await open(zarr.root(store).resolve(name), { kind: "array" });
      if (String(arr.shape) !== "5,7") throw new Error(`shape ${arr.shape}`);
      check(`${label} whole`, await zarr.get(arr), value, 5, 7);
      const part = await zarr.get(arr, [zarr.slice(1, 4), zarr.slice(2, 7)]);
      check(`${label} [1:4, 2:7]`, part, value, 3, 5, 1, 2);
    } catch (e) {
      failed++;
      console.log(`FAIL ${label}: ${e}`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
