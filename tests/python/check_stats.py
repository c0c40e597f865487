#!/usr/bin/env python3
"""NumPy ground-truth cross-check of arrayd's /stats, /histogram and /downsample.

    check_stats.py BASE_URL DIR [--seed N] [--cases K] [--max-report R]

DIR is a directory written by make_fixtures.py and served by the server under
test. For every good dataset, K random selections (check_data.py's generator)
are reduced over HTTP and by NumPy on the same file:

  * /stats: a random subset of ops, a random axis (or none, negative too), a
    random ddof and NaN policy. count, integer/bool sums and min/max must be
    exact; float sums, means, var and std within the tolerances in README "Aggregates" (relative
    1e-9 for float64 data, 1e-6 for float32/float16 and integer var/std),
    measured against the float64 NumPy result (sums against sum(|x|), as a
    sum's condition number asks). Answers are asked with nonfinite=string, so
    NaN, Infinity and -Infinity must match NumPy's exactly: a cell holding ±Inf
    gives NumPy's inf, -inf or nan (std/var nan: inf - inf), a propagated NaN
    gives NaN, and null is only for the empty cases README "Aggregates" lists.
    Where float64 itself overflows (values beyond 1e150 squared, or sums near
    1e308) a non-finite answer against a finite one (or the reverse) is
    accepted: the order of additions decides overflow there.
  * /histogram: edges and counts exactly as np.histogram with the range made
    of the finite min and max (README "Aggregates"), NaNs in nan_count.
  * /downsample on 1-d selections: bucket starts, first/last, min/max and
    first-occurrence argmin/argmax, NaNs ignored, computed in Python.
  * complex data and bad parameters: 400 with the documented error codes.

Prints `N passed, M failed` last and exits 1 if M > 0.
"""
import argparse
import json
import math
import os
import random
import sys
import urllib.parse
from fractions import Fraction

import numpy as np
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_data import expected_of, gen_selection, load_truth  # noqa: E402

OPS = ["count", "sum", "mean", "min", "max", "std", "var"]


class Fail(Exception):
    pass


def flat(obj):
    """Nested JSON lists -> flat list in C order (a bare value -> [value])."""
    if not isinstance(obj, list):
        return [obj]
    out = []
    for o in obj:
        out.extend(flat(o))
    return out


def nested_shape(obj, shape):
    """Checks that obj nests like `shape`."""
    if not shape:
        if isinstance(obj, list):
            raise Fail("expected a bare value, got a list")
        return
    if not isinstance(obj, list) or len(obj) != shape[0]:
        raise Fail("expected a list of %d, got %r" % (shape[0], str(obj)[:80]))
    for o in obj:
        nested_shape(o, shape[1:])


def same_element(got, ref, dt):
    """A min/max/first/last element: exact, in the stored type."""
    if dt.kind == "b":
        return got is bool(ref)
    if dt.kind in "iu":
        return isinstance(got, int) and not isinstance(got, bool) and got == int(ref)
    ref = float(ref)
    if math.isnan(ref) or math.isinf(ref):
        return got is None
    if got is None:
        return False
    return np.array(got, dtype=dt.newbyteorder("=")) == np.array(ref, dtype=dt.newbyteorder("="))


class Runner:
    def __init__(self, base, root, seed, cases, max_report):
        self.base = base.rstrip("/")
        self.root = root
        self.rng = random.Random(seed)
        self.cases = cases
        self.max_report = max_report
        self.passed = self.failed = 0
        self.s = requests.Session()
        with open(os.path.join(root, "fixtures-manifest.json")) as f:
            self.manifest = json.load(f)

    def record(self, label, fn):
        try:
            fn()
        except Fail as e:
            self.failed += 1
            if self.failed <= self.max_report:
                print("FAIL %s\n     %s" % (label, str(e)[:600]), flush=True)
        else:
            self.passed += 1

    def get(self, name, endpoint, params):
        url = "%s/v1/datasets/%s/%s" % (self.base, urllib.parse.quote(name, safe=""), endpoint)
        return self.s.get(url, params=params, timeout=120)

    def ok_json(self, r):
        if r.status_code != 200:
            raise Fail("status %d: %r" % (r.status_code, r.content[:300]))
        if r.headers.get("Content-Type", "").split(";")[0] != "application/json":
            raise Fail("Content-Type %r" % r.headers.get("Content-Type"))
        return r.json()

    # ------------------------------------------------------------ /stats
    def check_stats(self, name, a, sel, key):
        rng = self.rng
        e = expected_of(a, key)
        ops = rng.sample(OPS, rng.randint(1, len(OPS))) if rng.random() < 0.7 else None
        axis = None
        if e.ndim > 0 and rng.random() < 0.5:
            axis = rng.randint(-e.ndim, e.ndim - 1)
        ddof = rng.choice([0, 0, 1, 2])
        nan = rng.choice(["propagate", "ignore"])
        # Strings, so that NaN, +Inf and -Inf results are told apart (null is then only for
        # the empty cells, all-NaN cells with nan=ignore and ddof >= count).
        params = {"slice": sel, "ddof": str(ddof), "nan": nan, "nonfinite": "string"}
        if ops is not None:
            params["ops"] = ",".join(ops)
        if axis is not None:
            params["axis"] = str(axis)
        got = self.ok_json(self.get(name, "stats", params))
        want_ops = ops or OPS
        if list(got) != want_ops:
            raise Fail("keys %r, want %r" % (list(got), want_ops))
        ref = reference_stats(e, axis, ddof, nan)
        rshape = list(ref["count"].shape)
        dt = a.dtype
        for op in want_ops:
            nested_shape(got[op], rshape)
            vals, refs = flat(got[op]), ref[op].ravel().tolist() if hasattr(ref[op], "ravel") else [ref[op]]
            for i, (g, r) in enumerate(zip(vals, refs)):
                if not check_value(op, g, r, dt, ref, i):
                    raise Fail("%s axis=%s ddof=%d nan=%s: %s[%d] = %r, NumPy %r (shape %s)"
                               % (sel, axis, ddof, nan, op, i, g, r, e.shape))

    # ------------------------------------------------------------ /histogram
    def check_histogram(self, name, a, sel, key):
        rng = self.rng
        e = expected_of(a, key).ravel()
        if e.dtype.kind == "b":
            x = e.astype(np.uint8)
        else:
            x = e.astype(e.dtype.newbyteorder("="))
        bins = rng.choice([1, 2, 3, 10, 17, 100])
        params = {"slice": sel, "bins": str(bins)}
        finite = x[np.isfinite(x)] if x.dtype.kind == "f" else x
        if rng.random() < 0.4 and finite.size:
            lo, hi = float(np.min(finite)), float(np.max(finite))
            lo, hi = lo + (hi - lo) * 0.1, hi - (hi - lo) * 0.2
            if lo > hi:
                lo, hi = hi, lo
            params["range"] = "%r,%r" % (lo, hi)
            if not (math.isfinite(lo) and math.isfinite(hi)):
                return
            rng_ = (lo, hi)
        elif finite.size:
            rng_ = (float(np.min(finite)), float(np.max(finite)))
        else:
            rng_ = (0.0, 1.0)
        if x.dtype.kind == "f" and x.dtype.itemsize == 2 and bins > 10:
            params["bins"], bins = "10", 10
        r = self.get(name, "histogram", params)
        try:
            with np.errstate(all="ignore"):
                ref = self.histogram_ref(x, bins, rng_)
        except ValueError:
            ref = None
        if ref is None or not np.all(np.isfinite(ref[1])):
            # NumPy refuses ("Too many bins for data range") or returns non-finite edges.
            if r.status_code != 400 or r.json()["error"]["code"] not in ("bad_range", "bad_bins"):
                raise Fail("%s bins=%d range=%r: want 400, got %d %r" % (sel, bins, rng_, r.status_code, r.content[:200]))
            return
        got = self.ok_json(r)
        counts, edges = ref
        nan_count = int(np.isnan(x).sum()) if x.dtype.kind == "f" else 0
        if got.get("nan_count") != nan_count:
            raise Fail("%s: nan_count %r, want %d" % (sel, got.get("nan_count"), nan_count))
        if got.get("counts") != counts.tolist():
            raise Fail("%s bins=%d range=%r: counts %r, want %r" % (sel, bins, rng_, got.get("counts"), counts.tolist()))
        ge = got.get("edges")
        if len(ge) != len(edges) or not all(
                g is not None and np.array(g, dtype=edges.dtype) == r for g, r in zip(ge, edges)):
            raise Fail("%s: edges %r, want %r (%s)" % (sel, ge[:5], edges[:5].tolist(), edges.dtype))

    @staticmethod
    def histogram_ref(x, bins, rng_):
        if True:  # noqa: SIM108 -- one block, kept for the comment below
            # NumPy computes bin indices in the data's float type: float16, and float32 ranges
            # wider than float32 can hold, overflow there; use the definition instead.
            overflow = x.dtype.kind == "f" and not np.isfinite(
                np.array(rng_[1], x.dtype) - np.array(rng_[0], x.dtype))
            if x.dtype == np.float16 or overflow:
                counts, edges = exact_histogram(x, bins, rng_)
            else:
                counts, edges = np.histogram(x, bins=bins, range=rng_)
            if np.any(edges[:-1] >= edges[1:]):
                raise ValueError("edges not increasing")
            return counts, edges

    # ------------------------------------------------------------ /downsample
    def check_downsample(self, name, a, sel, key):
        e = expected_of(a, key)
        if e.ndim != 1:
            r = self.get(name, "downsample", {"slice": sel, "buckets": "3"})
            expect_error(r, "not_1d")
            return
        buckets = self.rng.choice([1, 2, 3, 7, 64, 1000])
        got = self.ok_json(self.get(name, "downsample", {"slice": sel, "buckets": str(buckets)}))
        x = e.astype(e.dtype.newbyteorder("="))
        n = x.size
        b = min(buckets, n)
        starts = [i * n // b for i in range(b)]
        if got["start"] != starts:
            raise Fail("%s: start %r, want %r" % (sel, got["start"][:5], starts[:5]))
        for i in range(b):
            seg = x[starts[i]:(starts[i + 1] if i + 1 < b else n)]
            vals = seg.astype(np.float64) if x.dtype.kind == "f" else seg
            valid = ~np.isnan(vals) if x.dtype.kind == "f" else np.ones(seg.size, bool)
            checks = [("first", seg[0]), ("last", seg[-1])]
            if valid.any():
                idx = np.flatnonzero(valid)
                imin = idx[np.argmin(vals[idx])]
                imax = idx[np.argmax(vals[idx])]
                checks += [("min", seg[imin]), ("max", seg[imax])]
                want_arg = (starts[i] + int(imin), starts[i] + int(imax))
            else:
                checks += [("min", np.nan), ("max", np.nan)]
                want_arg = (None, None)
            for field, ref in checks:
                if field in ("min", "max") and not valid.any():
                    ok = got[field][i] is None
                else:
                    ok = same_element(got[field][i], ref, x.dtype)
                if not ok:
                    raise Fail("%s bucket %d: %s %r, want %r" % (sel, i, field, got[field][i], ref))
            if (got["argmin"][i], got["argmax"][i]) != want_arg:
                raise Fail("%s bucket %d: argmin/argmax %r, want %r"
                           % (sel, i, (got["argmin"][i], got["argmax"][i]), want_arg))

    # ------------------------------------------------------------ errors
    def check_errors(self, real, cplx):
        cases = [
            ("stats", {"ops": "sum,median"}, "bad_op"),
            ("stats", {"axis": "7"}, "bad_axis"),
            ("stats", {"axis": "-8"}, "bad_axis"),
            ("stats", {"ddof": "-1"}, "bad_ddof"),
            ("stats", {"ddof": "x"}, "bad_ddof"),
            ("stats", {"nan": "omit"}, "bad_nan"),
            ("histogram", {"bins": "0"}, "bad_bins"),
            ("histogram", {"bins": "1000001"}, "bad_bins"),
            ("histogram", {"range": "2,1"}, "bad_range"),
            ("histogram", {"range": "0,inf"}, "bad_range"),
            ("histogram", {"range": "1"}, "bad_range"),
            ("downsample", {"buckets": "10"}, "not_1d"),
            ("downsample", {"slice": "0,0", "buckets": "0"}, "bad_buckets"),
            ("downsample", {"slice": "0,0"}, "bad_buckets"),
        ]
        for endpoint, params, code in cases:
            self.record("error %s %r" % (endpoint, params),
                        lambda: expect_error(self.get(real, endpoint, params), code))
        for endpoint in ("stats", "histogram", "downsample"):
            self.record("complex %s" % endpoint,
                        lambda: expect_error(self.get(cplx, endpoint, {"buckets": "2"} if endpoint == "downsample" else {}),
                                                 "unsupported_dtype"))

    def run(self):
        good = self.manifest["good"]
        for name in sorted(good):
            a = load_truth(self.root, good[name])
            if a.dtype.kind == "c":
                continue
            for case in range(self.cases):
                sel, key = gen_selection(self.rng, a.shape) if case else ("", ())
                self.record("stats %s [%s]" % (name, sel), lambda: self.check_stats(name, a, sel, key))
                self.record("histogram %s [%s]" % (name, sel), lambda: self.check_histogram(name, a, sel, key))
                self.record("downsample %s [%s]" % (name, sel), lambda: self.check_downsample(name, a, sel, key))
        real = next(n for n, m in sorted(good.items()) if m["dtype"] == "<f4" and len(m["shape"]) == 3)
        cplx = next(n for n, m in sorted(good.items()) if m["dtype"].endswith("c16"))
        self.check_errors(real, cplx)
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0


def exact_histogram(x, bins, rng_):
    """np.histogram's definition, placing values by comparison against the edges: NumPy's
    own float16 index arithmetic overflows for wide ranges (it computes in float16)."""
    lo, hi = rng_
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1).astype(x.dtype)
    keep = x[(x >= edges[0]) & (x <= edges[-1])]
    idx = np.minimum(np.searchsorted(edges, keep, side="right") - 1, bins - 1)
    return np.bincount(idx, minlength=bins), edges


def expect_error(r, code):
    if r.status_code != 400:
        raise Fail("status %d, want 400: %r" % (r.status_code, r.content[:200]))
    body = r.json()
    if body.get("error", {}).get("code") != code:
        raise Fail("error %r, want code %r" % (body, code))


def reference_stats(e, axis, ddof, nan):
    """NumPy's answers, in float64 (exact Python ints for integer sums), and where arrayd
    answers null instead: `_null_mean` (no value to average, min or max: an empty cell, or
    all NaN with nan=ignore) and `_null_var` (ddof >= count). With nan=propagate a NaN in a
    float cell makes every float result NaN, as in NumPy."""
    kind = e.dtype.kind
    x = e.astype(e.dtype.newbyteorder("="))
    ax = axis
    f = x.astype(np.float64)
    isnan = np.isnan(f)
    ignore = nan == "ignore" and kind == "f"
    n_valid = np.asarray(np.sum(~isnan, axis=ax))
    n_all = np.asarray(np.sum(np.ones(x.shape, bool), axis=ax))
    poisoned = np.asarray(np.any(isnan, axis=ax)) & (nan == "propagate")
    ref = {"count": np.asarray(n_valid if nan == "ignore" else n_all)}
    ref["_poisoned"] = poisoned & (kind == "f")
    ref["_null_mean"] = (n_valid == 0) & ~poisoned
    ref["_null_var"] = (n_valid - ddof <= 0) & ~poisoned
    with np.errstate(all="ignore"):
        if kind in "iub":
            ints = x.astype(object) if kind != "b" else x.astype(np.int64).astype(object)
            s = np.sum(ints, axis=ax) if x.size else np.zeros(ref["count"].shape, dtype=object)
            ref["sum"] = np.asarray(s, dtype=object)
            cnt = ref["count"].astype(object)
            mean = np.empty(ref["count"].shape, dtype=object)
            for i, (sv, c) in enumerate(zip(ref["sum"].ravel(), cnt.ravel())):
                mean.ravel()[i] = float(Fraction(int(sv), int(c))) if c else None
            ref["mean"] = mean
        else:
            ref["sum"] = np.asarray(np.nansum(f, axis=ax) if ignore else np.sum(f, axis=ax))
            ref["mean"] = np.asarray(np.nanmean(f, axis=ax) if ignore else np.mean(f, axis=ax))
        for op, fn, nanfn in (("min", np.min, np.nanmin), ("max", np.max, np.nanmax)):
            if x.size == 0 or (0 in [x.shape[ax]] if ax is not None else False):
                ref[op] = np.full(ref["count"].shape, None, dtype=object)
                continue
            src = x if kind != "f" else f
            val = nanfn(src, axis=ax) if ignore else fn(src, axis=ax)
            val = np.asarray(val)
            if kind != "f":
                ref[op] = val.astype(object) if kind != "b" else val
            else:
                ref[op] = val.astype(object)
        var = np.asarray(np.nanvar(f, axis=ax, ddof=ddof) if ignore else np.var(f, axis=ax, ddof=ddof))
        ref["var"] = var
        ref["std"] = np.sqrt(var)
        # scales for the tolerances, over the finite values; ±Inf elements are flagged
        finite = np.isfinite(f)
        absx = np.where(finite, np.abs(f), 0.0)
        ref["_abssum"] = np.asarray(np.sum(absx, axis=ax))
        ref["_absmax"] = np.asarray(np.max(absx, axis=ax, initial=0.0))
        ref["_inf"] = np.asarray(np.any(np.isinf(f), axis=ax))
        ref["_n"] = np.asarray(n_all)
    ref["_dtype"] = x.dtype
    return ref


NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def same_nonfinite(got, ref):
    """A NaN or ±Inf result, written as a string (nonfinite=string)."""
    if math.isnan(ref):
        return got == "NaN"
    return got == ("Infinity" if ref > 0 else "-Infinity")


def as_float(got):
    """A float answer: a JSON number, or a nonfinite string; None for anything else."""
    if isinstance(got, str):
        return NONFINITE.get(got)
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return float(got)
    return None


def check_value(op, g, r, dt, ref, i):
    kind = dt.kind
    cell = lambda key: ref[key].ravel()[i]  # noqa: E731
    if op == "count":
        return isinstance(g, int) and g == int(r)
    if op in ("min", "max", "mean") and cell("_null_mean") or op in ("std", "var") and cell("_null_var"):
        return g is None
    if op in ("min", "max"):
        if r is None:
            return g is None
        if kind == "f" and not math.isfinite(float(r)):
            return same_nonfinite(g, float(r))
        return same_element(g, r, dt.newbyteorder("="))
    if op == "sum" and kind in "iub":
        return isinstance(g, int) and not isinstance(g, bool) and g == int(r)
    if op == "mean" and kind in "iub":
        return (g is None) if r is None else (g is not None and abs(g - r) <= 1e-12 * abs(r) + 1e-300)
    tol = 1e-9 if (kind == "f" and dt.itemsize == 8) else 1e-6
    absmax = float(cell("_absmax"))
    n = max(1, int(cell("_n")))
    r = float(r)
    got = as_float(g)
    if got is None:
        return False
    if op in ("sum", "mean"):
        scale = float(cell("_abssum")) / (n if op == "mean" else 1)
        overflow = absmax * n > 1e300
    else:
        overflow = absmax > 1e150
        scale = abs(r) if math.isfinite(r) else 0.0
    if not math.isfinite(r) or not math.isfinite(got):
        # A cell holding ±Inf (never left out, unlike NaN) or a NaN that propagates gets
        # NumPy's non-finite answer whatever the order of additions (inf - inf is nan either
        # way). Where float64 itself overflows on finite values, the order of additions
        # decides between a finite answer and a non-finite one.
        if cell("_inf") or cell("_poisoned") or not overflow:
            return not math.isfinite(r) and same_nonfinite(g, r)
        return True
    return abs(got - r) <= tol * scale + 1e-300


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--max-report", type=int, default=30)
    args = ap.parse_args()
    sys.exit(Runner(args.base, args.dir, args.seed, args.cases, args.max_report).run())


if __name__ == "__main__":
    main()
