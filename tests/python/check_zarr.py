#!/usr/bin/env python3
"""The real Zarr clients against arrayd's /zarr view, NumPy as ground truth.

    check_zarr.py BASE_URL DIR --chunk-bytes N --admin-token T [--seed N]

DIR was written by make_fixtures.py and is what the server serves, with
`--zarr-chunk-bytes N` and the admin token T. Checked (README "Zarr"):
  * every fixture dataset through zarr-python, `zarr_format=3` and `=2`:
    metadata (shape, dtype, chunk shape by the documented rule), the whole
    array bit-exact (NaNs and byte order included) and random slices;
  * xarray `open_zarr` of the root, consolidated (both formats) and not (the
    HTML listing path, also with a trailing `/`): every dataset, its
    dimension names, its values bit-exact (no fill-value masking);
  * a registration over HTTP with dims and attrs, and a descriptor with dims
    and attrs picked up by a rescan, both in the consolidated metadata at once;
  * a chunk that became a 404 (the dataset re-registered smaller) read by
    zarr-python as the fill value 0.

Prints `N passed, M failed` last and exits 1 if M > 0.
"""
import argparse
import json
import os
import random
import sys
import traceback
import warnings

import numpy as np
import requests
import xarray as xr
import zarr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_data import load_truth  # noqa: E402

# Serving both formats at one root makes zarr-python warn which one it picked, and listing a
# group warns about keys it skips; neither is a failure.
warnings.filterwarnings("ignore", category=UserWarning)


def canon(x):
    """Bytes of x as a native-endian C-order array: equal iff values are bit-identical."""
    x = np.asarray(x)
    return np.ascontiguousarray(x.astype(x.dtype.newbyteorder("="))).tobytes()


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return "shape %s != %s" % (a.shape, b.shape)
    if a.dtype.newbyteorder("=") != b.dtype.newbyteorder("="):
        return "dtype %s != %s" % (a.dtype, b.dtype)
    if canon(a) != canon(b):
        return "values differ"
    return None


def expected_chunks(shape, itemsize, order, target):
    """The documented chunk rule, written independently of the server."""
    s = list(shape) if order == "C" else list(reversed(shape))
    chunk = [max(d, 1) for d in s]
    block = itemsize
    for k in range(len(s) - 1, -1, -1):
        whole = block * chunk[k]
        if whole > target:
            chunk[k] = min(max(target // block, 1), chunk[k])
            for j in range(k):
                chunk[j] = 1
            break
        block = whole
    return tuple(chunk if order == "C" else reversed(chunk))


def random_key(rng, shape):
    key = []
    for n in shape:
        r = rng.random()
        if n > 0 and r < 0.25:
            key.append(rng.randint(-n, n - 1))
        else:
            start = rng.choice([None, rng.randint(0, n)])
            stop = rng.choice([None, rng.randint(0, n)])
            step = rng.choice([None, 1, 2, 3])
            key.append(slice(start, stop, step))
    return tuple(key)


class Runner:
    def __init__(self, base, root, chunk_bytes, admin_token, seed):
        self.base, self.root = base.rstrip("/"), root
        self.zarr = self.base + "/zarr"
        self.chunk_bytes = chunk_bytes
        self.admin = {"Authorization": "Bearer " + admin_token}
        self.rng = random.Random(seed)
        self.passed = self.failed = 0
        with open(os.path.join(root, "fixtures-manifest.json")) as f:
            self.good = json.load(f)["good"]

    def check(self, label, fn):
        try:
            problem = fn()
        except Exception as e:  # noqa: BLE001 - any client error is a failure to report
            problem = "%s: %s" % (type(e).__name__, str(e)[:300])
            if os.environ.get("CHECK_ZARR_TRACE"):
                traceback.print_exc()
        if problem:
            self.failed += 1
            print("FAIL %s: %s" % (label, problem), flush=True)
        else:
            self.passed += 1

    # ------------------------------------------------------------------ arrays
    def array(self, name, meta, fmt):
        truth = load_truth(self.root, meta)
        z = zarr.open_array(self.zarr + "/" + name, mode="r", zarr_format=fmt)
        if tuple(z.shape) != truth.shape:
            return "shape %s, want %s" % (z.shape, truth.shape)
        want = expected_chunks(truth.shape, truth.dtype.itemsize, meta["order"], self.chunk_bytes)
        if tuple(z.chunks) != want:
            return "chunks %s, want %s" % (z.chunks, want)
        if z.dtype.newbyteorder("=") != truth.dtype.newbyteorder("="):
            return "dtype %s, want %s" % (z.dtype, truth.dtype)
        problem = same(z[...], truth)
        if problem:
            return "whole array: " + problem
        for _ in range(4):
            key = random_key(self.rng, truth.shape)
            problem = same(z[key], np.asarray(truth[key]))
            if problem:
                return "z[%r]: %s" % (key, problem)
        return None

    # ------------------------------------------------------------------ xarray
    def dataset(self, url, consolidated, fmt, names):
        ds = xr.open_zarr(url, consolidated=consolidated, zarr_format=fmt)
        missing = sorted(set(names) - set(ds.data_vars))
        if missing:
            return "missing %d datasets, e.g. %s" % (len(missing), missing[:3])
        for name in names:
            meta = self.good[name]
            truth = load_truth(self.root, meta)
            var = ds[name]
            want_dims = tuple("%s_dim_%d" % (name.replace(".", "_"), k) for k in range(truth.ndim))
            if var.dims != want_dims:
                return "%s dims %s, want %s" % (name, var.dims, want_dims)
            problem = same(var.values, truth)
            if problem:
                return "%s: %s" % (name, problem)
        return None

    # ------------------------------------------------------------------ registrations
    def post(self, body):
        r = requests.post(self.base + "/v1/datasets", json=body, headers=self.admin, timeout=30)
        if r.status_code != 201:
            raise AssertionError("POST %s: %d %s" % (body["name"], r.status_code, r.text[:200]))

    def delete(self, name):
        r = requests.delete(self.base + "/v1/datasets/" + name, headers=self.admin, timeout=30)
        if r.status_code != 204:
            raise AssertionError("DELETE %s: %d" % (name, r.status_code))

    def registered(self):
        npy = next(n for n, m in self.good.items()
                   if m["kind"] == "npy" and m["dtype"] == "<f4" and len(m["shape"]) == 3)
        meta = self.good[npy]
        attrs = {"units": "K", "levels": [1, 2.5], "nested": {"a": None}}
        self.post({"name": "reg.temps", "file": meta["path"], "dims": ["time", "lat", "lon"],
                   "attrs": attrs})
        truth = load_truth(self.root, meta)
        for fmt in (3, 2):
            ds = xr.open_zarr(self.zarr, consolidated=True, zarr_format=fmt)
            if "reg.temps" not in ds:
                return "format %d: registered dataset not in the consolidated metadata" % fmt
            var = ds["reg.temps"]
            if var.dims != ("time", "lat", "lon"):
                return "format %d: dims %s" % (fmt, var.dims)
            if dict(var.attrs) != attrs:
                return "format %d: attrs %s" % (fmt, dict(var.attrs))
            problem = same(var.values, truth)
            if problem:
                return "format %d: %s" % (fmt, problem)
        z = zarr.open_array(self.zarr + "/reg.temps", mode="r", zarr_format=3)
        if tuple(z.metadata.dimension_names) != ("time", "lat", "lon"):
            return "zarr-python dimension_names %s" % (z.metadata.dimension_names,)
        self.delete("reg.temps")
        ds = xr.open_zarr(self.zarr, consolidated=True, zarr_format=3)
        if "reg.temps" in ds:
            return "deleted dataset still in the consolidated metadata"
        return None

    def described(self):
        values = np.arange(24, dtype=">u2").reshape(4, 6)
        with open(os.path.join(self.root, "described.bin"), "wb") as f:
            f.write(b"xy" + values.tobytes())
        desc = {"file": "described.bin", "dtype": ">u2", "shape": [4, 6], "offset": 2,
                "dims": ["row", "col"], "attrs": {"source": "descriptor"}}
        with open(os.path.join(self.root, "described.array.json"), "w") as f:
            json.dump(desc, f)
        r = requests.post(self.base + "/v1/admin/rescan", headers=self.admin, timeout=30)
        if r.status_code != 200 or "described" not in r.json()["added"]:
            return "rescan: %d %s" % (r.status_code, r.text[:200])
        ds = xr.open_zarr(self.zarr, consolidated=True, zarr_format=2)
        var = ds["described"]
        if var.dims != ("row", "col") or dict(var.attrs) != {"source": "descriptor"}:
            return "dims %s attrs %s" % (var.dims, dict(var.attrs))
        return same(var.values, values)

    def fill_value(self):
        """Chunks past the end of a dataset re-registered smaller answer 404: read as 0."""
        n = self.chunk_bytes // 4 * 3 + 5      # four chunks of <i4, the last one partial
        values = np.arange(1, n + 1, dtype="<i4")
        with open(os.path.join(self.root, "shrinks.bin"), "wb") as f:
            f.write(values.tobytes())
        body = {"name": "shrinks", "file": "shrinks.bin", "dtype": "<i4", "shape": [n]}
        self.post(body)
        arrays = {fmt: zarr.open_array(self.zarr + "/shrinks", mode="r", zarr_format=fmt)
                  for fmt in (3, 2)}
        per_chunk = arrays[3].chunks[0]
        self.delete("shrinks")
        self.post(dict(body, shape=[per_chunk]))
        want = values.copy()
        want[per_chunk:] = 0
        for fmt, z in arrays.items():
            # The array objects still hold the old metadata: chunk 0 exists, the rest 404.
            problem = same(z[...], want)
            if problem:
                return "format %d: %s" % (fmt, problem)
        self.delete("shrinks")
        return None

    def run(self):
        names = sorted(self.good)
        for name in names:
            for fmt in (3, 2):
                self.check("%s format %d" % (name, fmt),
                           lambda name=name, fmt=fmt: self.array(name, self.good[name], fmt))
        for fmt in (3, 2):
            self.check("xarray consolidated format %d" % fmt,
                       lambda fmt=fmt: self.dataset(self.zarr, True, fmt, names))
            self.check("xarray listing format %d" % fmt,
                       lambda fmt=fmt: self.dataset(self.zarr, False, fmt, names))
        self.check("xarray listing, root with a trailing slash",
                   lambda: self.dataset(self.zarr + "/", False, 3, names[:5]))
        self.check("registration with dims and attrs", self.registered)
        self.check("descriptor with dims and attrs, rescan", self.described)
        self.check("404 chunk is the fill value", self.fill_value)
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_url")
    ap.add_argument("dir")
    ap.add_argument("--chunk-bytes", type=int, required=True)
    ap.add_argument("--admin-token", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    return Runner(args.base_url, args.dir, args.chunk_bytes, args.admin_token, args.seed).run()


if __name__ == "__main__":
    sys.exit(main())
