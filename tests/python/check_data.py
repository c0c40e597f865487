#!/usr/bin/env python3
"""NumPy ground-truth cross-check of arrayd's /v1/datasets and /data endpoints.

    check_data.py BASE_URL DIR [--seed N] [--cases K] [--max-report R]
    check_data.py --self-test

DIR is a directory written by make_fixtures.py (it holds
fixtures-manifest.json); the server under test must be serving it
(`arrayd serve --data-dir DIR`). Ground truth is NumPy reading the same
files (np.load(mmap_mode='r') / np.memmap) and indexing them with the same
selection as a Python key.

Checked (see README.md "API"):
  * /v1/datasets lists exactly the good datasets (clashing names may be
    absent, or present as one of their candidates), no bad file;
  * /v1/datasets/{name} META: name dtype shape order itemsize nbytes file offset;
  * per dataset: some edge selections and K random selections, each fetched as
    json, csv, bin and npy (and json with nonfinite=string for float data):
    status, X-Array-Dtype, X-Array-Shape, Content-Type, exact bytes, exact
    Content-Length, npy header rules, JSON/CSV structure and values, shortest
    round-trip float text for the stored float type;
  * HEAD == GET headers, no body;
  * content negotiation; error cases (4xx + JSON error body, never 5xx).

Prints `N passed, M failed` last and exits 1 if M > 0.
"""
import argparse
import io
import json
import os
import random
import re
import socket
import struct
import sys
import time
import urllib.parse
from decimal import Decimal
from fractions import Fraction

import numpy as np

try:
    import requests
except ImportError:  # only the self-test unit part can run without it
    requests = None

I64_MIN, I64_MAX = -(2 ** 63), 2 ** 63 - 1
CT = {"json": "application/json", "csv": "text/csv",
      "bin": "application/octet-stream", "npy": "application/x-npy"}
CT_TO_FMT = {v: k for k, v in CT.items()}
FORMATS = ("json", "csv", "bin", "npy")
SAMPLE_DIGITS = 4000   # at most this many elements get the (slow) shortest-digits check


class Fail(Exception):
    pass


def short(x, n=120):
    s = x if isinstance(x, str) else repr(x)
    return s if len(s) <= n else s[: n - 3] + "..."


# ======================================================================
# ground truth
# ======================================================================

def load_truth(root, meta):
    """The dataset as NumPy sees it, with the stored dtype (byte order kept)."""
    dt = np.dtype(meta["dtype"])
    shape = tuple(meta["shape"])
    path = os.path.join(root, meta["path"])
    if meta["kind"] == "npy":
        try:
            a = np.load(path, mmap_mode="r")
        except (ValueError, OSError):      # e.g. zero-size arrays on some platforms
            a = np.load(path)
    else:
        if int(np.prod(shape, dtype=np.int64)) == 0:
            a = np.empty(shape, dtype=dt, order=meta["order"])
        else:
            a = np.memmap(path, dtype=dt, mode="r", offset=meta["offset"], shape=shape,
                          order=meta["order"])
    assert a.dtype == dt and a.shape == shape, (meta, a.dtype, a.shape)
    return a


def expected_of(a, key):
    """np.asarray(a[key]) with the stored dtype (NumPy scalars are native-endian)."""
    e = np.asarray(a[key])
    if e.dtype != a.dtype:
        e = e.astype(a.dtype)
    return e


def shape_header(shape):
    return ",".join(map(str, shape))


# ======================================================================
# selections
# ======================================================================

HUGE = [I64_MAX, I64_MIN, 2 ** 62, -(2 ** 40), 2 ** 31, -(2 ** 31) - 1]


def fmt_int(rng, v):
    r = rng.random()
    if v == 0 and r < 0.05:
        return "-0"
    if 0 <= v < 10 ** 6 and r < 0.04:
        return "00" + str(v)
    return str(v)


def gen_bound(rng, n):
    r = rng.random()
    if r < 0.4:
        return None
    if r < 0.85:
        return rng.randint(-n, n)
    if r < 0.95:
        return rng.randint(-n - 3, n + 3)   # out of range: clamps
    return rng.choice(HUGE)


def gen_item(rng, n):
    """(text, key item) for an axis of length n."""
    if n > 0 and rng.random() < 0.3:
        i = rng.randint(-n, n - 1)
        return fmt_int(rng, i), i
    start, stop = gen_bound(rng, n), gen_bound(rng, n)
    r = rng.random()
    s = lambda v: "" if v is None else fmt_int(rng, v)
    if r < 0.4:
        return "%s:%s" % (s(start), s(stop)), slice(start, stop)
    if r < 0.5:
        return "%s:%s:" % (s(start), s(stop)), slice(start, stop)
    step = rng.choice([1, 2, 3, -1, -2, -3, 7, n + 1, -(n + 1), I64_MAX, I64_MIN, -1, 2, -2])
    return "%s:%s:%s" % (s(start), s(stop), fmt_int(rng, step)), slice(start, stop, step)


def gen_selection(rng, shape):
    """A random valid selection: (text, key tuple)."""
    nd = len(shape)
    if nd == 0 or rng.random() < 0.04:
        text = rng.choice(["", "[]", "...", "[...]"])
        return text, ((Ellipsis,) if "..." in text else ())
    ellipsis = rng.random() < 0.25
    if ellipsis:
        nb = rng.randint(0, nd)
        na = rng.randint(0, nd - nb)
        axes_before, axes_after = list(range(nb)), list(range(nd - na, nd))
    else:
        nb = nd if rng.random() < 0.6 else rng.randint(0, nd)
        axes_before, axes_after = list(range(nb)), []
    items = [gen_item(rng, shape[ax]) for ax in axes_before]
    if ellipsis:
        items.append(("...", Ellipsis))
        items += [gen_item(rng, shape[ax]) for ax in axes_after]
    text = ",".join(t for t, _ in items)
    if rng.random() < 0.2:
        text = "[" + text + "]"
    return text, tuple(k for _, k in items)


def parse_selection(text, ndim):
    """Reference parser (used by the self-test fake server): text -> key tuple.
    Raises ValueError naming the offending item."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text == "":
        return ()
    int_re = r"-?[0-9]+"

    def num(s, item):
        if s == "":
            return None
        if not re.fullmatch(int_re, s):
            raise ValueError("bad integer %r in item %r" % (s, item))
        v = int(s)
        if not I64_MIN <= v <= I64_MAX:
            raise ValueError("integer %r in item %r does not fit in 64 bits" % (s, item))
        return v

    key = []
    for item in text.split(","):
        if item == "...":
            if Ellipsis in key:
                raise ValueError("second '...' in %r" % item)
            key.append(Ellipsis)
        elif ":" in item:
            parts = item.split(":")
            if len(parts) > 3:
                raise ValueError("bad slice item %r" % item)
            vals = [num(p, item) for p in parts] + [None] * (3 - len(parts))
            if vals[2] == 0:
                raise ValueError("slice step cannot be zero in item %r" % item)
            key.append(slice(*vals))
        else:
            v = num(item, item)
            if v is None:
                raise ValueError("empty item")
            key.append(v)
    if len([k for k in key if k is not Ellipsis]) > ndim:
        raise ValueError("too many indices: %d for %d dimensions" % (len(key), ndim))
    return tuple(key)


# ======================================================================
# float text rules
# ======================================================================

JSON_NUM_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
FLT = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
CSV_NUM_RE = re.compile(r"-?" + FLT + r"\Z")
CSV_INT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
CSV_CPLX_RE = re.compile(r"(?P<re>-?(?:%s|inf)|nan)(?P<sign>[+-])(?P<im>%s|inf|nan)j\Z" % (FLT, FLT))
CSV_IMAG_ONLY_RE = re.compile(r"(?P<im>-?(?:%s|inf)|nan)j\Z" % FLT)

UINT_OF = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def bits(v, T):
    return int(np.array(v, dtype=T).view(UINT_OF[np.dtype(T).itemsize]))


def sig_digits(text):
    mant = re.split("[eE]", text.lstrip("+-"))[0]
    d = mant.replace(".", "").lstrip("0").rstrip("0")
    return max(len(d), 1)


def shortest_text(v, T):
    return np.format_float_scientific(T(v), unique=True)


def rounds_to(text, v, T):
    """Exact: does the decimal `text` round (to nearest, ties to even) to v in T?"""
    x = Fraction(Decimal(text))
    v = T(v)
    fv = Fraction(float(v))
    with np.errstate(over="ignore"):
        lo, hi = np.nextafter(v, T(-np.inf)), np.nextafter(v, T(np.inf))
    if np.isinf(hi):
        hi_b = fv + (fv - Fraction(float(lo))) / 2
    else:
        hi_b = (fv + Fraction(float(hi))) / 2
    if np.isinf(lo):
        lo_b = fv - (Fraction(float(hi)) - fv) / 2
    else:
        lo_b = (fv + Fraction(float(lo))) / 2
    if x == 0:   # sign of zero must match; handled by the caller's bit compare
        return False
    even = bits(v, T) % 2 == 0
    return (lo_b < x < hi_b) or (even and (x == lo_b or x == hi_b))


def check_finite_texts(texts, vals, T, positions, describe, rng):
    """texts[i] is a numeric literal claimed to be vals[i] (finite, type T).
    Vectorised round-trip, exact fallback, sampled shortest-digits check."""
    if not texts:
        return
    U = UINT_OF[np.dtype(T).itemsize]
    with np.errstate(over="ignore"):
        parsed = np.array(texts, dtype=str).astype(np.float64).astype(T)
    want = np.asarray(vals).astype(T)
    bad = np.nonzero(parsed.view(U) != want.view(U))[0]
    for j in bad:
        t, v = texts[j], want[j]
        if v == 0 or not rounds_to(t, v, T):
            raise Fail("%s: %r is not %s %s (shortest %s)" % (
                describe(positions[j]), t, np.dtype(T).name, repr(float(v)), shortest_text(v, T)))
    n = len(texts)
    idx = range(n) if n <= SAMPLE_DIGITS else sorted(rng.sample(range(n), SAMPLE_DIGITS))
    for j in idx:
        t, v = texts[j], want[j]
        st = shortest_text(v, T)
        if sig_digits(t) > sig_digits(st):
            raise Fail("%s: %r is not the shortest round-trip form for %s (%s has %d significant digits)"
                       % (describe(positions[j]), t, np.dtype(T).name, st, sig_digits(st)))


def comp_type(dt):
    if dt.kind == "c":
        return np.float32 if dt.itemsize == 8 else np.float64
    return {2: np.float16, 4: np.float32, 8: np.float64}[dt.itemsize]


def native(exp):
    return exp.astype(exp.dtype.newbyteorder("="))


def components(exp):
    """(component values as a flat float array, components per element)."""
    flat = native(exp).reshape(-1)
    if exp.dtype.kind == "c":
        c = np.empty(flat.size * 2, dtype=comp_type(exp.dtype))
        c[0::2], c[1::2] = flat.real, flat.imag
        return c, 2
    return flat, 1


FINITE = object()


def nonfinite_tokens(comps, nf):
    """Per component: FINITE, or the token (nan, +inf, -inf) expected for it."""
    out = np.full(comps.shape, 0, dtype=np.int8)
    out[np.isnan(comps)] = 1
    out[np.isposinf(comps)] = 2
    out[np.isneginf(comps)] = 3
    table = (FINITE,) + tuple(nf)
    return [table[k] for k in out.tolist()]


def describer(shape, ncomp):
    def d(i):
        el = i // ncomp
        idx = tuple(int(x) for x in np.unravel_index(el, shape)) if shape else ()
        part = ("", "[re]", "[im]")[0 if ncomp == 1 else 1 + i % 2]
        return "element %s%s" % (idx, part)
    return d


# ======================================================================
# format checkers: body bytes vs expected array; raise Fail
# ======================================================================

class FTok(str):
    pass


class ITok(str):
    pass


def _no_constant(name):
    raise Fail("JSON contains the non-standard constant %s" % name)


def json_leaves(obj, shape):
    out = []

    def rec(o, d):
        if d == len(shape):
            out.append(o)
            return
        if not isinstance(o, list) or len(o) != shape[d]:
            raise Fail("JSON nesting: at depth %d expected a list of %d, got %s"
                       % (d, shape[d], short(o if not isinstance(o, list) else "list of %d" % len(o))))
        for x in o:
            rec(x, d + 1)

    rec(obj, 0)
    return out


def check_json(body, exp, nonfinite="null", rng=None):
    rng = rng or random.Random(0)
    try:
        text = body.decode("utf-8")
        obj = json.loads(text, parse_float=FTok, parse_int=ITok, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise Fail("body is not JSON: %s; body starts %r" % (e, body[:80]))
    leaves = json_leaves(obj, exp.shape)
    kind = exp.dtype.kind
    if kind in "biu":
        want = native(exp).reshape(-1).tolist()
        if kind == "b":
            fast_ok = all(type(o) is bool for o in leaves) and leaves == want
        else:
            fast_ok = all(type(o) is ITok for o in leaves) and list(map(int, leaves)) == want
        if fast_ok:
            return
        for i, (o, w) in enumerate(zip(leaves, want)):
            ok = (type(o) is bool and o == w) if kind == "b" else (isinstance(o, ITok) and int(o) == w)
            if not ok:
                raise Fail("%s: got %s, want %s" % (describer(exp.shape, 1)(i), short(o), json.dumps(w)))
        return
    comps, ncomp = components(exp)
    T = comp_type(exp.dtype)
    describe = describer(exp.shape, ncomp)
    if ncomp == 2:
        flat = []
        for i, o in enumerate(leaves):
            if not isinstance(o, list) or len(o) != 2:
                raise Fail("%s: complex must be [re, im], got %s" % (describe(2 * i), short(o)))
            flat += o
        leaves = flat
    nf = {"null": (None, None, None), "string": ("NaN", "Infinity", "-Infinity")}[nonfinite]
    wants = nonfinite_tokens(comps, nf)
    texts, pos = [], []
    for i, (o, w) in enumerate(zip(leaves, wants)):
        if w is FINITE:
            if type(o) is FTok or type(o) is ITok:
                texts.append(o); pos.append(i)
            else:
                raise Fail("%s: want number %s, got %s" % (describe(i), shortest_text(comps[i], T), short(o)))
        elif not (o is None and w is None) and not (type(o) is str and o == w):
            raise Fail("%s: non-finite %s must be %s, got %s"
                       % (describe(i), comps[i], json.dumps(w), short(o)))
    check_finite_texts(texts, comps[pos], T, pos, describe, rng)


def csv_table(exp):
    if exp.ndim == 0:
        return exp.reshape(1, 1)
    if exp.ndim == 1:
        return exp.reshape(-1, 1)
    return exp.reshape(-1, exp.shape[-1])


def check_csv(body, exp, rng=None):
    rng = rng or random.Random(0)
    if exp.size == 0:
        if body != b"":
            raise Fail("empty selection must give an empty body, got %r" % body[:80])
        return
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise Fail("CSV body is not ASCII: %r" % body[:80])
    if "\r" in text:
        raise Fail("CSV must use \\n line ends, found \\r")
    if not text.endswith("\n"):
        raise Fail("CSV must end with a newline; ends %r" % text[-40:])
    table = csv_table(exp)
    lines = text[:-1].split("\n")
    if len(lines) != table.shape[0]:
        raise Fail("CSV has %d lines, want %d (first line %r)" % (len(lines), table.shape[0], lines[0][:80]))
    fields = []
    for r, line in enumerate(lines):
        f = line.split(",")
        if len(f) != table.shape[1]:
            raise Fail("CSV line %d has %d fields, want %d: %r" % (r, len(f), table.shape[1], short(line)))
        fields += f
    kind = exp.dtype.kind
    if kind in "biu":
        want = native(exp).reshape(-1).tolist()
        for i, (f, w) in enumerate(zip(fields, want)):
            if kind == "b":
                ok = f == ("true" if w else "false")
            else:
                ok = bool(CSV_INT_RE.match(f)) and int(f) == w
            if not ok:
                raise Fail("%s: got %r, want %r" % (describer(exp.shape, 1)(i), f,
                                                   ("true" if w else "false") if kind == "b" else str(w)))
        return
    comps, ncomp = components(exp)
    T = comp_type(exp.dtype)
    describe = describer(exp.shape, ncomp)
    toks = []
    if ncomp == 2:
        for i, f in enumerate(fields):
            m = CSV_CPLX_RE.match(f)
            if m:
                im = m.group("im")
                # NumPy's spelling: an integral part has no ".0" (`1+2j`, `1.5-0j`).
                if any(re.search(r"\.0(e|$)", t) for t in (m.group("re"), im)):
                    raise Fail("%s: %r is not spelled as NumPy spells it (%s)" % (
                        describe(2 * i), f, str(np.complex128(complex(comps[2 * i], comps[2 * i + 1]))).strip("()")))
                if im != "nan" and m.group("sign") == "-":
                    im = "-" + im
                toks += [m.group("re"), im]
                continue
            m = CSV_IMAG_ONLY_RE.match(f)   # NumPy prints 1j for complex(+0.0, 1)
            if m and bits(comps[2 * i], T) == 0:
                toks += ["0", m.group("im")]
                continue
            raise Fail("%s: %r is not a complex like 1.5+2j / 1.5-2j" % (describe(2 * i), f))
    else:
        toks = fields
    wants = nonfinite_tokens(comps, ("nan", "inf", "-inf"))
    texts, pos = [], []
    match = CSV_NUM_RE.match
    for i, (t, w) in enumerate(zip(toks, wants)):
        if w is FINITE:
            if match(t):
                texts.append(t); pos.append(i)
            else:
                raise Fail("%s: %r is not a number (want %s)" % (describe(i), t, shortest_text(comps[i], T)))
        elif t != w:
            raise Fail("%s: non-finite %s must be %r, got %r" % (describe(i), comps[i], w, t))
    check_finite_texts(texts, comps[pos], T, pos, describe, rng)


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def check_bin(body, exp):
    want = exp.tobytes(order="C")
    if body != want:
        i = first_diff(body, want)
        raise Fail("bin body differs: got %d bytes, want %d; first difference at byte %d: got %r want %r"
                   % (len(body), len(want), i, body[i:i + 8], want[i:i + 8]))


def check_npy(body, exp):
    if body[:6] != b"\x93NUMPY":
        raise Fail("npy magic missing: %r" % body[:16])
    ver = body[6:8]
    if ver == b"\x01\x00":
        (hlen,), start = struct.unpack("<H", body[8:10]), 10
    elif ver in (b"\x02\x00", b"\x03\x00"):
        (hlen,), start = struct.unpack("<I", body[8:12]), 12
    else:
        raise Fail("npy version bytes %r" % ver)
    end = start + hlen
    if ver != b"\x01\x00" and hlen <= 65535:
        raise Fail("npy version %d.%d used but the header fits version 1.0" % (ver[0], ver[1]))
    if end % 64:
        raise Fail("npy header ends at byte %d, not a multiple of 64" % end)
    hdr_text = body[start:end].decode("latin1")
    if not hdr_text.endswith("\n"):
        raise Fail("npy header must end with a newline: %r" % hdr_text[-20:])
    try:
        import ast
        hdr = ast.literal_eval(hdr_text.strip())
    except (ValueError, SyntaxError):
        raise Fail("npy header is not a Python literal: %r" % short(hdr_text))
    want_hdr = {"descr": exp.dtype.str, "fortran_order": False, "shape": exp.shape}
    if hdr != want_hdr:
        raise Fail("npy header %r, want %r" % (hdr, want_hdr))
    try:
        arr = np.load(io.BytesIO(body))
    except Exception as e:   # noqa: BLE001 - anything np.load raises is a failure
        raise Fail("np.load failed: %s" % e)
    if arr.dtype.str != exp.dtype.str or arr.shape != exp.shape:
        raise Fail("np.load gave %s %s, want %s %s" % (arr.dtype.str, arr.shape, exp.dtype.str, exp.shape))
    check_bin(body[end:], exp)


CHECKERS = {"json": lambda b, e, rng: check_json(b, e, "null", rng),
            "json-string": lambda b, e, rng: check_json(b, e, "string", rng),
            "csv": lambda b, e, rng: check_csv(b, e, rng),
            "bin": lambda b, e, rng: check_bin(b, e),
            "npy": lambda b, e, rng: check_npy(b, e)}


# ======================================================================
# reference encoders (self-test and fake server only)
# ======================================================================

def ref_float(v, T, nonfinite):
    v = T(v)
    if np.isnan(v):
        return nonfinite[0]
    if np.isinf(v):
        return nonfinite[1] if v > 0 else nonfinite[2]
    if T is np.float64:
        return repr(float(v))
    if 1e-4 <= abs(float(v)) < 1e16:
        return np.format_float_positional(v, unique=True, trim="-")
    return np.format_float_scientific(v, unique=True, trim="-")


def ref_scalar_json(v, dt, nonfinite):
    if dt.kind == "b":
        return "true" if v else "false"
    if dt.kind in "iu":
        return str(int(v))
    nf = ("null", "null", "null") if nonfinite == "null" else ('"NaN"', '"Infinity"', '"-Infinity"')
    T = comp_type(dt)
    if dt.kind == "c":
        return "[%s,%s]" % (ref_float(v.real, T, nf), ref_float(v.imag, T, nf))
    return ref_float(v, T, nf)


def ref_json(exp, nonfinite="null"):
    dt = exp.dtype
    e = native(exp)

    def rec(x):
        if x.ndim == 0:
            return ref_scalar_json(x[()], dt, nonfinite)
        return "[" + ",".join(rec(y) for y in x) + "]"

    return rec(e).encode()


def ref_csv_field(v, dt):
    if dt.kind == "b":
        return "true" if v else "false"
    if dt.kind in "iu":
        return str(int(v))
    T = comp_type(dt)
    nf = ("nan", "inf", "-inf")
    if dt.kind == "c":
        re_, im = T(v.real), T(v.imag)
        sign = "-" if (not np.isnan(im) and np.signbit(im)) else "+"
        return "%s%s%sj" % (ref_float(re_, T, nf), sign, ref_float(abs(im), T, nf))
    return ref_float(v, T, nf)


def ref_csv(exp):
    if exp.size == 0:
        return b""
    t = csv_table(native(exp))
    return "".join(",".join(ref_csv_field(v, exp.dtype) for v in row) + "\n" for row in t).encode()


def ref_npy(exp):
    f = io.BytesIO()
    np.lib.format.write_array(f, exp if exp.flags.c_contiguous else exp.copy(order="C"), version=(1, 0))
    return f.getvalue()


def ref_encode(fmt, exp):
    if fmt == "json":
        return ref_json(exp)
    if fmt == "json-string":
        return ref_json(exp, "string")
    if fmt == "csv":
        return ref_csv(exp)
    if fmt == "bin":
        return exp.tobytes(order="C")
    return ref_npy(exp)


# ======================================================================
# HTTP runner
# ======================================================================

def edge_selections(shape):
    """Deterministic edge selections valid for `shape` (text, key)."""
    nd = len(shape)
    out = [("", ()), ("[]", ()), ("...", (Ellipsis,)), ("[...]", (Ellipsis,))]
    if nd == 0:
        return out
    n0 = shape[0]
    out += [("::-1", (slice(None, None, -1),)),
            ("::%d" % I64_MAX, (slice(None, None, I64_MAX),)),
            ("::%d" % I64_MIN, (slice(None, None, I64_MIN),)),
            ("%d:%d" % (I64_MIN, I64_MAX), (slice(I64_MIN, I64_MAX),)),
            ("%d:%d:-1" % (I64_MAX, I64_MIN), (slice(I64_MAX, I64_MIN, -1),)),
            ("%d:" % I64_MAX, (slice(I64_MAX, None),)),
            ("-1:-1000000:-2", (slice(-1, -1000000, -2),)),
            ("5:2", (slice(5, 2),))]
    if n0 > 0:
        out += [("-1", (-1,)), ("-0", (0,)), ("%d" % -n0, (-n0,)), ("[0]", (0,)),
                ("00%d" % (n0 - 1), (n0 - 1,))]
    if shape[-1] > 0:
        out += [("...,-1", (Ellipsis, -1)), ("...,::-1", (Ellipsis, slice(None, None, -1)))]
    if nd >= 2:
        out.append((":," * (nd - 1) + ":", (slice(None),) * nd))
        if shape[1] > 0:
            out.append((":,0", (slice(None), 0)))     # a column: one run per row in C
        if all(s > 0 for s in shape):
            idx = tuple(s - 1 for s in shape)
            out.append((",".join(map(str, idx)), idx))
            out.append(("[%s]" % ",".join("-%d" % s for s in shape), tuple(-s for s in shape)))
    return out


class Runner:
    def __init__(self, base, root, seed, cases, max_report):
        self.base = base.rstrip("/")
        self.root = root
        self.seed = seed
        self.cases = cases
        self.max_report = max_report
        self.passed = self.failed = 0
        self.s = requests.Session()
        self.s.headers.update({"Accept-Encoding": "identity", "User-Agent": "arrayd-numpy-check"})
        with open(os.path.join(root, "fixtures-manifest.json")) as f:
            self.manifest = json.load(f)

    # ---------------------------------------------------------- bookkeeping
    def record(self, label, fn):
        try:
            fn()
        except Fail as e:
            self.fail(label, str(e))
        except requests.RequestException as e:
            self.fail(label, "request failed: %s" % e)
        else:
            self.passed += 1

    def fail(self, label, msg):
        self.failed += 1
        if self.failed <= self.max_report:
            print("FAIL %s\n     %s" % (label, short(msg, 600)), flush=True)
        elif self.failed == self.max_report + 1:
            print("(further failures not shown)", flush=True)

    # ---------------------------------------------------------- requests
    def url(self, path, query=None):
        u = self.base + path
        if query:
            u += "?" + query
        return u

    @staticmethod
    def enc_slice(sel, style):
        # 0: everything percent-encoded; 1: ':' ',' '.' '-' left raw (valid in a query);
        # 2: '[' ']' raw too (curl -g style; not RFC 3986, only in a labelled spot check)
        safe = ["", ":,.-", ":,.-[]"][style]
        return urllib.parse.quote(sel, safe=safe)

    def data_query(self, sel, fmt, style=0, extra=""):
        q = []
        if sel != "" or style == 1:
            q.append("slice=" + self.enc_slice(sel, style))
        if fmt:
            q.append("format=" + fmt)
        if extra:
            q.append(extra)
        return "&".join(q)

    def get(self, path, query=None, headers=None, method="GET"):
        return self.s.request(method, self.url(path, query), headers=headers, timeout=60,
                              allow_redirects=False)

    @staticmethod
    def data_path(name):
        return "/v1/datasets/%s/data" % urllib.parse.quote(name, safe="")

    # ---------------------------------------------------------- checks
    @staticmethod
    def check_headers(r, exp, fmt):
        if r.status_code != 200:
            raise Fail("status %d, want 200; body %r" % (r.status_code, r.content[:200]))
        dt = r.headers.get("X-Array-Dtype")
        if dt != exp.dtype.str:
            raise Fail("X-Array-Dtype %r, want %r" % (dt, exp.dtype.str))
        if "X-Array-Shape" not in r.headers:
            raise Fail("X-Array-Shape header missing")
        sh = r.headers["X-Array-Shape"]
        if sh != shape_header(exp.shape):
            raise Fail("X-Array-Shape %r, want %r" % (sh, shape_header(exp.shape)))
        ct = r.headers.get("Content-Type", "").split(";")[0].strip().lower()
        want_ct = CT[fmt.split("-")[0]]
        if ct != want_ct:
            raise Fail("Content-Type %r, want %r" % (r.headers.get("Content-Type"), want_ct))
        if fmt in ("bin", "npy"):
            cl = r.headers.get("Content-Length")
            if cl is None or "chunked" in r.headers.get("Transfer-Encoding", "").lower():
                raise Fail("%s answer must carry an exact Content-Length (got %r, Transfer-Encoding %r)"
                           % (fmt, cl, r.headers.get("Transfer-Encoding")))
            if int(cl) != len(r.content):
                raise Fail("Content-Length %s but body has %d bytes" % (cl, len(r.content)))

    def check_data(self, name, sel, exp, fmt, rng, style):
        fmt_param = "json" if fmt == "json-string" else fmt
        extra = "nonfinite=string" if fmt == "json-string" else ""
        r = self.get(self.data_path(name), self.data_query(sel, fmt_param, style, extra))
        self.check_headers(r, exp, fmt_param)
        CHECKERS[fmt](r.content, exp, rng)

    def check_error(self, method, path, query, statuses, must_mention=None, headers=None):
        r = self.get(path, query, headers=headers, method=method)
        if r.status_code >= 500:
            raise Fail("server error %d: %r" % (r.status_code, r.content[:200]))
        if r.status_code not in statuses:
            raise Fail("status %d, want %s; body %r" % (r.status_code, sorted(statuses), r.content[:200]))
        check_error_body(r)
        if must_mention is not None:
            msg = r.json()["error"]["message"]
            if must_mention not in msg:
                raise Fail("error message %r does not name the offending item %r" % (msg, must_mention))

    # ---------------------------------------------------------- sections
    def run(self):
        t0 = time.time()
        try:
            self.s.get(self.url("/healthz"), timeout=10)
        except requests.RequestException as e:
            print("cannot reach %s: %s" % (self.base, e))
            print("0 passed, 1 failed")
            return 1
        good = self.manifest["good"]
        truths = {n: load_truth(self.root, m) for n, m in good.items()}
        listed = self.section_listing()
        for name in sorted(good):
            self.section_meta(name, good[name])
        for name, cands in sorted(self.manifest["ambiguous"].items()):
            self.section_ambiguous(name, cands, listed)
        for name in sorted(good):
            self.section_dataset(name, truths[name])
        self.section_head(truths)
        self.section_negotiation(truths)
        self.section_errors(truths)
        print("checked %d datasets in %.1f s" % (len(good), time.time() - t0))
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0

    def section_listing(self):
        listed = {}

        def t():
            r = self.get("/v1/datasets")
            if r.status_code != 200:
                raise Fail("GET /v1/datasets: status %d %r" % (r.status_code, r.content[:200]))
            body = r.json()
            if not isinstance(body, dict) or not isinstance(body.get("datasets"), list):
                raise Fail("want {\"datasets\": [...]}, got %s" % short(body))
            for m in body["datasets"]:
                listed[m.get("name")] = m
            names = set(listed)
            good = set(self.manifest["good"])
            amb = set(self.manifest["ambiguous"])
            missing = sorted(good - names)
            extra = sorted(names - good - amb)
            bad_names = {bad_name(p) for p in self.manifest["bad"]}
            msg = []
            if missing:
                msg.append("missing %d good datasets: %s" % (len(missing), missing[:10]))
            if extra:
                msg.append("unexpected datasets listed: %s%s" % (
                    extra[:10], " (from BAD files!)" if set(extra) & bad_names else ""))
            if msg:
                raise Fail("; ".join(msg))
        self.record("GET /v1/datasets lists exactly the good datasets", t)

        def t2():
            for name, m in sorted(self.manifest["good"].items()):
                if name in listed:
                    compare_meta(listed[name], name, m)
        self.record("GET /v1/datasets META entries", t2)
        return listed

    def section_meta(self, name, m):
        def t():
            r = self.get("/v1/datasets/" + urllib.parse.quote(name, safe=""))
            if r.status_code != 200:
                raise Fail("status %d %r" % (r.status_code, r.content[:200]))
            compare_meta(r.json(), name, m)
        self.record("META %s" % name, t)

    def section_ambiguous(self, name, cands, listed):
        def t():
            if name not in listed:
                return   # skipping both clashing files is allowed
            files = [c["path"] for c in cands]
            got = listed[name].get("file")
            if got not in files:
                raise Fail("clash %s: META file %r is none of %s" % (name, got, files))
            m = cands[files.index(got)]
            compare_meta(listed[name], name, m)
            a = load_truth(self.root, m)
            rng = random.Random("%s:%s" % (self.seed, name))
            for _ in range(3):
                sel, key = gen_selection(rng, a.shape)
                for fmt in FORMATS:
                    self.check_data(name, sel, expected_of(a, key), fmt, rng, 0)
        self.record("clash %s served as one candidate (or skipped)" % name, t)

    def section_dataset(self, name, a):
        rng = random.Random("%s:%s" % (self.seed, name))
        edges = edge_selections(a.shape)
        sels = rng.sample(edges, min(3, len(edges)))
        sels += [gen_selection(rng, a.shape) for _ in range(self.cases)]
        floaty = a.dtype.kind in "fc"
        for sel, key in sels:
            exp = expected_of(a, key)
            style = rng.randrange(2)
            fmts = list(FORMATS)
            if floaty and rng.random() < 0.5:
                fmts.append("json-string")
            for fmt in fmts:
                self.record("%s slice=%r format=%s (want shape %s)" % (name, sel, fmt, exp.shape),
                            lambda: self.check_data(name, sel, exp, fmt, rng, style))

    def section_head(self, truths):
        for name in sorted(truths):
            a = truths[name]
            rng = random.Random("head:%s:%s" % (self.seed, name))
            sel, key = gen_selection(rng, a.shape)
            exp = expected_of(a, key)
            for fmt in FORMATS:
                def t():
                    q = self.data_query(sel, fmt)
                    g = self.get(self.data_path(name), q)
                    self.check_headers(g, exp, fmt)
                    h = self.get(self.data_path(name), q, method="HEAD")
                    if h.status_code != 200:
                        raise Fail("HEAD status %d" % h.status_code)
                    if h.content:
                        raise Fail("HEAD answered with a body of %d bytes" % len(h.content))
                    for k in ("X-Array-Dtype", "X-Array-Shape", "Content-Type"):
                        if h.headers.get(k) != g.headers.get(k):
                            raise Fail("HEAD %s %r != GET %r" % (k, h.headers.get(k), g.headers.get(k)))
                    if fmt in ("bin", "npy") and h.headers.get("Content-Length") != g.headers.get("Content-Length"):
                        raise Fail("HEAD Content-Length %r != GET %r" % (
                            h.headers.get("Content-Length"), g.headers.get("Content-Length")))
                self.record("HEAD %s slice=%r format=%s" % (name, sel, fmt), t)
        # on the wire: no body bytes at all after a HEAD's headers
        name = "f8_le_C_3d" if "f8_le_C_3d" in truths else sorted(truths)[0]
        for fmt in FORMATS:
            self.record("HEAD on the wire sends no body (%s)" % fmt,
                        lambda: raw_head_no_body(self.base, self.data_path(name) + "?format=" + fmt))

    def section_negotiation(self, truths):
        name = "f8_le_C_2d" if "f8_le_C_2d" in truths else sorted(truths)[0]
        a = truths[name]
        sel, key = "1:3", (slice(1, 3),)
        exp = expected_of(a, key)
        browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        cases = [
            ("no format, no Accept", None, None, "json"),
            ("Accept: text/csv", None, "text/csv", "csv"),
            ("Accept: application/json", None, "application/json", "json"),
            ("Accept: application/octet-stream", None, "application/octet-stream", "bin"),
            ("Accept: application/x-npy", None, "application/x-npy", "npy"),
            ("format= beats Accept (json over csv)", "json", "text/csv", "json"),
            ("format= beats Accept (bin over json)", "bin", "application/json", "bin"),
            ("format=npy beats Accept: image/png", "npy", "image/png", "npy"),
            ("Accept: */*", None, "*/*", "json"),
            ("browser Accept", None, browser, "json"),
            ("q-values: csv;q=0.5 vs octet-stream", None, "text/csv;q=0.5, application/octet-stream", "bin"),
            ("q-values: json;q=0.1 vs csv;q=0.9", None, "application/json;q=0.1, text/csv;q=0.9", "csv"),
            ("q-values with spaces", None, "application/x-npy; q=0.2 , text/csv ; q=0.3", "csv"),
            ("unserved type first, served one later", None, "image/png, text/csv;q=0.1", "csv"),
            ("case-insensitive TEXT/CSV", None, "TEXT/CSV", "csv"),
            ("case-insensitive Application/X-NPY", None, "Application/X-NPY", "npy"),
            ("case-insensitive Q=", None, "text/csv;Q=0.1, application/octet-stream;Q=0.5", "bin"),
            ("Accept with charset param", None, "application/json; charset=utf-8", "json"),
        ]
        for label, fmt, accept, want in cases:
            def t():
                q = self.data_query(sel, fmt)
                r = self.get(self.data_path(name), q, headers={"Accept": accept})
                if r.status_code != 200:
                    raise Fail("status %d, want 200; body %r" % (r.status_code, r.content[:200]))
                self.check_headers(r, exp, want)
                CHECKERS[want](r.content, exp, random.Random(0))
            self.record("negotiation: %s -> %s" % (label, want), t)
        for label, accept in [("Accept: image/png only", "image/png"),
                              ("Accept: text/html, image/png", "text/html, image/png"),
                              ("Accept: application/xml", "application/xml")]:
            self.record("negotiation: %s -> 406 + JSON error" % label,
                        lambda: self.check_error("GET", self.data_path(name), self.data_query(sel, None),
                                                 {406}, headers={"Accept": accept}))
        def raw_brackets():
            r = self.get(self.data_path(name), "slice=[1:3]&format=bin")
            if r.status_code == 200:
                self.check_headers(r, exp, "bin")
                check_bin(r.content, exp)
            elif r.status_code == 400:
                check_error_body(r)
            else:
                raise Fail("status %d (want 200, or 400 with the JSON error body)" % r.status_code)
        self.record("raw '[' ']' in the query (curl -g): 200, or 400 + JSON", raw_brackets)
        self.record("negotiation: format=xml -> 400",
                    lambda: self.check_error("GET", self.data_path(name), "format=xml", {400}))
        self.record("negotiation: format=xml with Accept: text/csv -> 400",
                    lambda: self.check_error("GET", self.data_path(name), "format=xml", {400},
                                             headers={"Accept": "text/csv"}))

    def section_errors(self, truths):
        name = "f8_le_C_3d" if "f8_le_C_3d" in truths else sorted(truths)[0]
        p = self.data_path(name)
        shp = truths[name].shape            # (4, 5, 6) in the standard fixtures
        n0 = shp[0] if shp else 0
        bad = [  # (slice, must be named in the message or None)
            ("::0", None), ("1:2:0", None), ("-1::-0", None),
            ("...,...", None), ("0,...,...", None), ("[...,...]", None),
            (",".join(["0"] * (len(shp) + 1)), None), (",".join([":"] * (len(shp) + 1)), None),
            ("0,...,0,0,0", None),
            (str(n0), str(n0)), (str(-n0 - 1), str(-n0 - 1)), ("0,99", "99"), ("0,0,-99", "-99"),
            ("99999999999999999999", None), (":99999999999999999999", None),
            ("::99999999999999999999", None), ("-99999999999999999999:", None),
            ("9223372036854775808", None), ("-9223372036854775809:", None),
            ("::9223372036854775808", None), ("::-9223372036854775809", None),
            ("1" * 400, None),
            ("-9223372036854775808", "-9223372036854775808"), ("9223372036854775807", "9223372036854775807"),
            ("1 :2", None), (" 1", None), ("1 ", None), ("1, 2", None), ("[ ]", None), ("1:\t2", None),
            ("+1", None), ("1:+2", None), ("::+1", None),
            ("a", None), ("1:2:3:4", None), (":::", None), ("[1", None), ("1]", None), ("[[1]]", None),
            ("[]]", None), (",", None), ("1,", None), (",1", None), ("1,,2", None), ("--1", None),
            ("1.5", None), ("0x1", None), ("1e3", None), ("..", None), ("....", None), ("-", None),
            ("-:", None), ("\u2026", None), ("1\x002", None), ("１", None), ("1_000", None),
        ]
        for sel, mention in bad:
            self.record("error: %s slice=%r -> 400 + JSON" % (name, sel),
                        lambda: self.check_error("GET", p, "slice=" + urllib.parse.quote(sel, safe=""),
                                                 {400}, mention))
        # 0-d dataset: any index is too many
        zero_d = [n for n, a in sorted(truths.items()) if a.ndim == 0]
        for n in zero_d[:2]:
            for sel in ("0", ":", "...,0"):
                self.record("error: 0-d %s slice=%r -> 400" % (n, sel),
                            lambda: self.check_error("GET", self.data_path(n), "slice=" + urllib.parse.quote(sel, safe=""), {400}))
        # an integer index into a zero-length axis
        empties = [n for n, a in sorted(truths.items()) if a.ndim >= 2 and a.shape[1] == 0 and a.shape[0] > 0]
        for n in empties[:2]:
            self.record("error: %s slice='0,0' (zero-length axis) -> 400" % n,
                        lambda: self.check_error("GET", self.data_path(n), "slice=0,0", {400}))
        # unknown dataset / invalid names / methods / formats
        self.record("error: unknown dataset /data -> 404",
                    lambda: self.check_error("GET", self.data_path("no_such_dataset"), "", {404}))
        self.record("error: unknown dataset META -> 404",
                    lambda: self.check_error("GET", "/v1/datasets/no_such_dataset", "", {404}))
        self.record("error: unknown dataset with format=xml -> 400/404",
                    lambda: self.check_error("GET", self.data_path("no_such_dataset"), "format=xml", {400, 404}))
        for bad_path in ["/v1/datasets/bad%20name!/data", "/v1/datasets/..%2F..%2Fetc%2Fpasswd/data",
                         "/v1/datasets/%2Fetc%2Fpasswd/data", "/v1/datasets/" + "a" * 300 + "/data"]:
            self.record("error: invalid dataset name %s -> 400/404" % short(bad_path, 60),
                        lambda: self.check_error("GET", bad_path, "", {400, 404}))
        for bn in sorted({bad_name(x) for x in self.manifest["bad"]})[:6]:
            self.record("error: bad file's name %r is not served -> 400/404" % bn,
                        lambda: self.check_error("GET", self.data_path(bn), "", {400, 404}))
        self.record("error: unknown format -> 400", lambda: self.check_error("GET", p, "format=xml", {400}))
        self.record("error: unknown format FOO -> 400", lambda: self.check_error("GET", p, "format=parquet", {400}))
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            self.record("error: %s /data -> 405 + JSON" % method,
                        lambda: self.check_error(method, p, "", {405}))
        # over-long query
        long_sel = ",".join(["0"] * 50000)
        self.record("error: 100 KB slice -> 400/413/414/431 + JSON",
                    lambda: self.check_error("GET", p, "slice=" + long_sel, {400, 413, 414, 431}))
        self.record("error: 100 KB unknown parameter -> 400/413/414/431 + JSON",
                    lambda: self.check_error("GET", p, "pad=" + "x" * 100000, {400, 413, 414, 431}))
        self.record("server still answers after the long requests",
                    lambda: self.check_data(name, "0", expected_of(truths[name], (0,)), "bin", None, 0))


def bad_name(rel):
    for suf in (".npy", ".array.json"):
        if rel.endswith(suf):
            rel = rel[: -len(suf)]
    return rel.replace(os.sep, ".")


def compare_meta(got, name, m):
    if not isinstance(got, dict):
        raise Fail("META is not an object: %s" % short(got))
    dt = np.dtype(m["dtype"])
    n = int(np.prod(m["shape"], dtype=np.int64))
    want = {"name": name, "dtype": m["dtype"], "shape": list(m["shape"]), "order": m["order"],
            "itemsize": dt.itemsize, "nbytes": n * dt.itemsize, "file": m["path"].replace(os.sep, "/"),
            "offset": m["offset"]}
    diffs = []
    for k, w in want.items():
        g = got.get(k, "<missing>")
        if g != w or type(g) is bool or (k == "shape" and not all(type(x) is int for x in g)):
            diffs.append("%s=%s (want %s)" % (k, json.dumps(g), json.dumps(w)))
    if diffs:
        raise Fail("META %s: %s" % (name, "; ".join(diffs)))


def check_error_body(r):
    ct = r.headers.get("Content-Type", "").split(";")[0].strip().lower()
    try:
        body = r.json()
    except ValueError:
        raise Fail("error body is not JSON (Content-Type %r): %r" % (ct, r.content[:200]))
    err = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(err, dict) and isinstance(err.get("code"), str) and isinstance(err.get("message"), str)):
        raise Fail("error body must be {\"error\": {\"code\": str, \"message\": str}}, got %s" % short(body, 300))
    if ct != "application/json" and r.request.method != "HEAD":
        raise Fail("error Content-Type %r, want application/json" % ct)


def raw_head_no_body(base, path):
    u = urllib.parse.urlsplit(base)
    host, port = u.hostname, u.port or 80
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(("HEAD %s%s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
                   % (u.path.rstrip("/"), path, u.netloc)).encode())
        buf = b""
        deadline = time.time() + 5
        while b"\r\n\r\n" not in buf and time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        if b"\r\n\r\n" not in buf:
            raise Fail("no complete response head to HEAD: %r" % buf[:200])
        head, rest = buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 200"):
            raise Fail("HEAD status line %r" % head.split(b"\r\n")[0])
        s.settimeout(1.0)
        try:
            while len(rest) < 1 << 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
        except socket.timeout:
            pass
        if rest:
            raise Fail("HEAD response carried %d body bytes: %r" % (len(rest), rest[:60]))


# ======================================================================
# self-test: unit checks and an in-process reference server
# ======================================================================

def negotiate(fmt, accept):
    """Reference negotiation: returns format or None (406) or 'bad' (400)."""
    if fmt is not None:
        return fmt if fmt in FORMATS else "bad"
    if accept is None or accept.strip() == "":
        return "json"
    best, best_q = None, 0.0
    pref = ["json", "csv", "bin", "npy"]
    for i, part in enumerate(accept.split(",")):
        bits_ = [b.strip() for b in part.split(";")]
        mt = bits_[0].lower()
        q = 1.0
        for prm in bits_[1:]:
            k, _, v = prm.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if mt in CT_TO_FMT:
            cand = CT_TO_FMT[mt]
        elif mt in ("*/*", "application/*"):
            cand = "json"
        elif mt == "text/*":
            cand = "csv"
        else:
            continue
        if q > best_q or (q == best_q and best is not None and pref.index(cand) < pref.index(best)):
            best, best_q = cand, q
    return best


def make_fake_server(root, bug=None):
    """A tiny reference implementation of the /data contract, for validating this script."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    with open(os.path.join(root, "fixtures-manifest.json")) as f:
        man = json.load(f)
    arrays = {n: load_truth(root, m) for n, m in man["good"].items()}
    metas = {}
    for n, m in man["good"].items():
        dt = np.dtype(m["dtype"])
        metas[n] = {"name": n, "dtype": m["dtype"], "shape": m["shape"], "order": m["order"],
                    "itemsize": dt.itemsize, "nbytes": int(np.prod(m["shape"])) * dt.itemsize,
                    "file": m["path"], "offset": m["offset"]}
    for n, cands in man["ambiguous"].items():   # keep the first candidate
        m = cands[0]
        arrays[n] = load_truth(root, m)
        dt = np.dtype(m["dtype"])
        metas[n] = {"name": n, "dtype": m["dtype"], "shape": m["shape"], "order": m["order"],
                    "itemsize": dt.itemsize, "nbytes": int(np.prod(m["shape"])) * dt.itemsize,
                    "file": m["path"], "offset": m["offset"]}

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def send_error(self, code, message=None, explain=None):
            self.err(code, "http", message or "error")

        def err(self, code, ecode, msg, head=False):
            body = json.dumps({"error": {"code": ecode, "message": msg}}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head and self.command != "HEAD":
                self.wfile.write(body)

        def send_body(self, body, ctype, extra=()):
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
            parts = u.path.split("/")
            if u.path == "/v1/datasets":
                return self.send_body(json.dumps({"datasets": [metas[n] for n in sorted(metas)]}).encode(),
                                      "application/json")
            if len(parts) < 4 or parts[1:3] != ["v1", "datasets"]:
                return self.err(404, "not_found", "no route")
            name = urllib.parse.unquote(parts[3])
            if name not in metas:
                return self.err(404, "unknown_dataset", "no dataset %r" % name)
            if len(parts) == 4:
                return self.send_body(json.dumps(metas[name]).encode(), "application/json")
            if parts[4:] != ["data"]:
                return self.err(404, "not_found", "no route")
            a = arrays[name]
            fmt = negotiate(q["format"][0] if "format" in q else None, self.headers.get("Accept"))
            if fmt == "bad":
                return self.err(400, "bad_format", "unknown format")
            if fmt is None:
                return self.err(406, "not_acceptable", "no acceptable format")
            try:
                key = parse_selection(q.get("slice", [""])[0], a.ndim)
                exp = expected_of(a, key)
            except (ValueError, IndexError) as e:
                return self.err(400, "bad_slice", str(e))
            if fmt == "json" and q.get("nonfinite", ["null"])[0] == "string":
                fmt = "json-string"
            body = ref_encode(fmt, exp)
            if bug == "f4digits" and exp.dtype.kind == "f" and exp.dtype.itemsize == 4 and fmt == "json":
                body = json.dumps(native(exp).astype(np.float64).tolist()).encode().replace(b"NaN", b"null") \
                    .replace(b"-Infinity", b"null").replace(b"Infinity", b"null")
            if bug == "swap" and fmt == "bin" and exp.dtype.itemsize > 1:
                body = exp.byteswap().tobytes()
            if bug == "csvnl" and fmt == "csv":
                body = body.rstrip(b"\n")
            self.send_body(body, CT[fmt.split("-")[0]],
                           [("X-Array-Dtype", exp.dtype.str), ("X-Array-Shape", shape_header(exp.shape))])

        do_HEAD = do_GET

        def do_POST(self):
            self.err(405, "method_not_allowed", "no")

        do_PUT = do_DELETE = do_PATCH = do_POST

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    return srv


def expect_reject(label, fn):
    try:
        fn()
    except Fail:
        return True
    print("SELF-TEST: checker accepted bad output: %s" % label)
    return False


def expect_accept(label, fn):
    try:
        fn()
    except Fail as e:
        print("SELF-TEST: checker rejected good output: %s: %s" % (label, e))
        return False
    return True


def unit_self_test(root, seed):
    with open(os.path.join(root, "fixtures-manifest.json")) as f:
        man = json.load(f)
    ok = True
    rng = random.Random(seed)
    n_checks = 0
    t0 = time.time()
    # 1. generator + reference parser agree with NumPy; encoders pass the checkers
    for name, m in sorted(man["good"].items()):
        a = load_truth(root, m)
        r = random.Random("%s:%s" % (seed, name))
        sels = edge_selections(a.shape) + [gen_selection(r, a.shape) for _ in range(12)]
        for sel, key in sels:
            exp = expected_of(a, key)
            k2 = parse_selection(sel, a.ndim)
            e2 = expected_of(a, k2)
            if e2.shape != exp.shape or e2.tobytes() != exp.tobytes() or exp.dtype != a.dtype:
                print("SELF-TEST: parser/generator disagree on %s %r" % (name, sel))
                ok = False
            for fmt in ("json", "json-string", "csv", "bin", "npy"):
                if exp.size > 5000 and fmt.startswith(("json", "csv")) and rng.random() < 0.9:
                    continue   # the pure-Python reference encoders are slow
                body = ref_encode(fmt, exp)
                ok &= expect_accept("%s %r %s" % (name, sel, fmt), lambda: CHECKERS[fmt](body, exp, rng))
                n_checks += 1
    print("self-test: %d reference encodings accepted in %.1f s" % (n_checks, time.time() - t0))

    # 2. numbers: accepted spellings and rejected ones
    acc = [("0.1", 0.1, np.float16), ("0.1", 0.1, np.float32), ("1e-7", 1e-7, np.float32),
           ("1E-7", 1e-7, np.float32), ("1.0", 1.0, np.float64), ("1", 1.0, np.float64),
           ("1e+300", 1e300, np.float64), ("1e300", 1e300, np.float64), ("65500", 65504, np.float16), ("6.55e4", 65504, np.float16),
           ("6e-8", 6e-8, np.float16), ("-0.0", -0.0, np.float64), ("-0", -0.0, np.float32),
           ("340282350000000000000000000000000000000", 3.4028235e38, np.float32),
           ("5e-324", 5e-324, np.float64), ("1e-45", 1e-45, np.float32),
           ("0.30000000000000004", 0.30000000000000004, np.float64),
           ("6.104e-5", 6.1035156e-05, np.float16), ("6.0e-8", 6e-8, np.float16)]
    for t, v, T in acc:
        ok &= expect_accept("number %r as %s" % (t, T.__name__),
                            lambda: check_finite_texts([t], [T(v)], T, [0], str, rng))
    rej = [("0.0999755859375", 0.1, np.float16), ("0.099975586", 0.1, np.float16),
           ("0.10000000149011612", 0.1, np.float32), ("0.10000000000000001", 0.1, np.float64),
           ("0.2", 0.1, np.float32), ("0", -0.0, np.float64), ("-0", 0.0, np.float64),
           ("1e-8", 6e-8, np.float16), ("3.4028236e38", 3.4028235e38, np.float32),
           ("1e400", 1.7976931348623157e308, np.float64), ("1.00000001", 1.0, np.float64),
           ("65504", 65504, np.float16), ("6.1e-5", 6.1035156e-05, np.float16)]
    for t, v, T in rej:
        ok &= expect_reject("number %r as %s" % (t, T.__name__),
                            lambda: check_finite_texts([t], [T(v)], T, [0], str, rng))

    # 3. whole-body mutations
    def arr(descr, vals, shape=None):
        x = np.array(vals, dtype=np.dtype(descr).newbyteorder("=")).astype(descr)
        return x.reshape(shape) if shape else x

    f4 = arr("<f4", [0.1, np.nan, -np.inf, -0.0, 1e-7, 3.0], (2, 3))
    f2 = arr(">f2", [0.1, 65504, 6e-8, np.inf], (2, 2))
    i8 = arr(">i8", [-(2 ** 63), 2 ** 63 - 1, 0, 7], (2, 2))
    u8 = arr("<u8", [2 ** 64 - 1, 0, 12345678901234567890], (3,))
    b1 = arr("|b1", [True, False, True], (3,))
    c8 = arr("<c8", [complex(1.5, 2), complex(1.5, -2), complex(np.nan, np.inf), complex(0, 1),
                     complex(-np.inf, -0.0), complex(0.1, np.nan)], (2, 3))
    c3 = arr(">c16", [complex(0.1 * i, -1e300)for i in range(24)], (2, 3, 4))
    z = arr("<f8", 2.5, ())
    emp = np.zeros((3, 0, 2), dtype=">f4")
    goods = [
        ("json", f4, b"[[0.1,null,null],[-0.0,1e-7,3]]"),
        ("json", f4, b"[[0.1, null, null], [-0, 1E-7, 3.0]]"),
        ("json-string", f4, b'[[0.1,"NaN","-Infinity"],[-0.0,1e-07,3]]'),
        ("json", f2, b"[[0.1,65500],[6e-8,null]]"),  # f16 65504 is shortest as 6.55e4 (NumPy prints 65500.0)
        ("json", f2, b"[[0.1,6.55e4],[6.0e-8,null]]"),
        ("json", i8, b"[[-9223372036854775808,9223372036854775807],[0,7]]"),
        ("json", u8, b"[18446744073709551615,0,12345678901234567890]"),
        ("json", b1, b"[true,false,true]"),
        ("json", c8, b"[[[1.5,2],[1.5,-2],[null,null]],[[0,1],[null,-0.0],[0.1,null]]]"),
        ("json-string", c8, b'[[[1.5,2],[1.5,-2],["NaN","Infinity"]],[[0,1],["-Infinity",-0.0],[0.1,"NaN"]]]'),
        ("json", z, b"2.5"),
        ("json", emp, b"[[],[],[]]"),
        ("csv", f4, b"0.1,nan,-inf\n-0,1e-07,3\n"),
        ("csv", f2, b"0.1,65500\n6e-08,inf\n"),
        ("csv", i8, b"-9223372036854775808,9223372036854775807\n0,7\n"),
        ("csv", b1, b"true\nfalse\ntrue\n"),
        ("csv", c8, b"1.5+2j,1.5-2j,nan+infj\n0+1j,-inf-0j,0.1+nanj\n"),
        ("csv", c8, b"1.5+2j,1.5-2j,nan+infj\n1j,-inf-0j,0.1-nanj\n"),
        ("csv", c3, ref_csv(c3)),
        ("csv", c3, ref_csv(c3).replace(b"e+300", b"e300")),
        ("csv", z, b"2.5\n"),
        ("csv", emp, b""),
    ]
    for fmt, e, body in goods:
        ok &= expect_accept("%s %r" % (fmt, body[:50]), lambda: CHECKERS[fmt](body, e, rng))
    bads = [
        ("json", f4, b"[[0.10000000149011612,null,null],[-0.0,1e-7,3]]"),   # too many digits
        ("json", f4, b"[[0.1,NaN,null],[-0.0,1e-7,3]]"),                    # bare NaN
        ("json", f4, b"[[0.1,null,null],[0.0,1e-7,3]]"),                    # -0.0 lost
        ("json", f4, b"[[0.1,null,null],[-0.0,1e-7,3],[]]"),                # extra row
        ("json", f4, b"[0.1,null,null,-0.0,1e-7,3]"),                       # flattened
        ("json", f4, b'[[0.1,"NaN","-Infinity"],[-0.0,1e-7,3]]'),           # strings without nonfinite=string
        ("json-string", f4, b'[[0.1,"nan","-Infinity"],[-0.0,1e-7,3]]'),    # wrong spelling
        ("json-string", f4, b"[[0.1,null,null],[-0.0,1e-7,3]]"),            # null with nonfinite=string
        ("json", f2, b"[[0.0999755859375,65500],[6e-8,null]]"),             # f16 written as f64
        ("json", f2, b"[[0.099975586,65500],[6e-8,null]]"),                 # f16 written as f32
        ("json", f2, b"[[0.1,65504],[6e-8,null]]"),                         # 5 digits, 3 suffice
        ("json", i8, b"[[-9223372036854775808,9223372036854775807],[0,7.0]]"),
        ("json", i8, b"[[-9223372036854775808,9223372036854775806],[0,7]]"),
        ("json", u8, b"[18446744073709551615,0,12345678901234567000]"),     # through a double
        ("json", b1, b"[1,0,1]"),
        ("json", c8, b"[[[1.5,2],[1.5,-2],[null,null]],[[0,1],[null,0.0],[0.1,null]]]"),
        ("json", c8, b"[[1.5,1.5,null],[0,null,0.1]]"),                     # real parts only
        ("json", z, b"[2.5]"),                                              # 0-d must be bare
        ("json", emp, b"[]"),
        ("csv", f4, b"0.1,nan,-inf\n-0,1e-07,3"),                           # no trailing newline
        ("csv", f4, b"0.1,nan,-inf\r\n-0,1e-07,3\r\n"),                     # CRLF
        ("csv", f4, b"a,b,c\n0.1,nan,-inf\n-0,1e-07,3\n"),                  # header
        ("csv", f4, b"0.1,NaN,-inf\n-0,1e-07,3\n"),                         # NaN spelling
        ("csv", f4, b"0.1,nan,-inf\n-0,1.0000000116860974e-07,3\n"),        # too many digits
        ("csv", f4, b"0.1, nan, -inf\n-0, 1e-07, 3\n"),                     # spaces
        ("csv", f4, b"0.1,nan,-inf,-0,1e-07,3\n"),                          # not row per line
        ("csv", f2, b"0.0999755859375,65500\n6e-08,inf\n"),
        ("csv", f2, b"0.1,65504\n6e-08,inf\n"),                          # 5 digits, 3 suffice
        ("csv", b1, b"True\nFalse\nTrue\n"),
        ("csv", c8, b"(1.5+2j),(1.5-2j),(nan+infj)\n(1j),(-inf-0j),(0.1+nanj)\n"),  # parentheses
        ("csv", c8, b"1.5+2j,1.5+2j,nan+infj\n0+1j,-inf-0j,0.1+nanj\n"),    # sign of imag
        ("csv", c8, b"1.5+2j,1.5-2j,nan+infj\n-0+1j,-inf-0j,0.1+nanj\n"),   # sign of zero real
        ("csv", z, b"2.5"),
        ("csv", emp, b"\n"),
        ("csv", i8, b"-9223372036854775808,9223372036854775807\n0,7.0\n"),
    ]
    for fmt, e, body in bads:
        ok &= expect_reject("%s %r" % (fmt, body[:60]), lambda: CHECKERS[fmt](body, e, rng))
    for e in (f4, f2, i8, c8, c3):
        ok &= expect_reject("bin byteswapped %s" % e.dtype.str, lambda: check_bin(e.byteswap().tobytes(), e))
        ok &= expect_reject("bin F order %s" % e.dtype.str, lambda: check_bin(e.tobytes(order="F"), e))
        ok &= expect_reject("bin one byte short", lambda: check_bin(e.tobytes()[:-1], e))
        good = ref_npy(e)
        ok &= expect_accept("npy %s" % e.dtype.str, lambda: check_npy(good, e))
        f = io.BytesIO()
        np.lib.format.write_array(f, e, version=(2, 0))
        ok &= expect_reject("npy v2 header not needed", lambda: check_npy(f.getvalue(), e))
        sw = e.astype(e.dtype.newbyteorder("S"))
        ok &= expect_reject("npy other byte order", lambda: check_npy(ref_npy(sw), e))
        ok &= expect_reject("npy F order", lambda: check_npy(ref_npy_fortran(e), e))
        ok &= expect_reject("npy header not 64-aligned", lambda: check_npy(realign_npy(good, 16), e))
        ok &= expect_reject("npy truncated", lambda: check_npy(good[:-1], e))
        ok &= expect_reject("npy trailing garbage", lambda: check_npy(good + b"\0", e))
    return ok


def ref_npy_fortran(e):
    f = io.BytesIO()
    np.lib.format.write_array(f, np.asfortranarray(e), version=(1, 0))
    b = f.getvalue()
    if e.ndim < 2:   # 1-d stays C: force a lying header instead
        b = b.replace(b"'fortran_order': False", b"'fortran_order': True ")
    return b


def realign_npy(b, align):
    """Rewrite a v1 .npy so its header ends on a multiple of `align` but not of 64."""
    (hlen,) = struct.unpack("<H", b[8:10])
    hdr = b[10:10 + hlen].decode("latin1").rstrip()
    total = 10 + len(hdr) + 1
    pad = (-total) % align
    if (total + pad) % 64 == 0:
        pad += align
    new = hdr + " " * pad + "\n"
    return b[:8] + struct.pack("<H", len(new)) + new.encode("latin1") + b[10 + hlen:]


def self_test(seed, cases):
    import shutil
    import tempfile
    import threading
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_fixtures
    tmp = tempfile.mkdtemp(prefix="arrayd-numpy-selftest-")
    try:
        root = os.path.join(tmp, "data")
        make_fixtures.main([root, "--seed", str(seed)])
        ok = unit_self_test(root, seed)
        print("self-test unit checks: %s" % ("OK" if ok else "FAILED"))
        results = {}
        for bug in (None, "f4digits", "swap", "csvnl"):
            srv = make_fake_server(root, bug)
            th = threading.Thread(target=srv.serve_forever, daemon=True)
            th.start()
            base = "http://127.0.0.1:%d" % srv.server_address[1]
            t0 = time.time()
            print("---- end-to-end against the reference server (bug=%s) ----" % bug, flush=True)
            runner = Runner(base, root, seed, cases if bug is None else 1, max_report=3 if bug else 30)
            rc = runner.run()
            results[bug] = (rc, runner.passed, runner.failed, time.time() - t0)
            srv.shutdown()
            srv.server_close()
        for bug, (rc, p, f, dt) in results.items():
            print("  bug=%-8s rc=%d passed=%d failed=%d (%.1f s)" % (bug, rc, p, f, dt))
        e2e_ok = results[None][0] == 0 and all(results[b][0] != 0 for b in results if b)
        print("self-test end-to-end: %s" % ("OK" if e2e_ok else "FAILED"))
        return 0 if ok and e2e_ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_url", nargs="?")
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--cases", type=int, default=6, help="random selections per dataset (default 6)")
    ap.add_argument("--max-report", type=int, default=20, help="print details of at most this many failures")
    ap.add_argument("--self-test", action="store_true",
                    help="validate this script against NumPy and an in-process reference server")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test(args.seed, args.cases)
    if not args.base_url or not args.dir:
        ap.error("BASE_URL and DIR are required (or --self-test)")
    return Runner(args.base_url, args.dir, args.seed, args.cases, args.max_report).run()


if __name__ == "__main__":
    sys.exit(main())
