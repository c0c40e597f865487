"""Every float16 as arrayd writes it, against NumPy's own text for it.

    check_f16_text.py write DIR     # DIR/f16_all.npy: all 65,536 bit patterns
    check_f16_text.py check BASE    # GET its JSON and CSV, compare token by token

NumPy's `str(np.float16(x))` is the shortest decimal that reads back as x, and when two
decimals of that length do, the nearer one (0.015625 is `0.01563`). arrayd must write the
same decimal (the layout may differ: `6e-8` for NumPy's `6e-08`, `65500` for `65500.0`),
so tokens are compared as exact decimal values, and zeros by sign.
"""
import sys
from decimal import Decimal

import numpy as np
import requests

NAME = "f16_all"


def every_f16():
    return np.arange(1 << 16, dtype=np.uint16).view(np.float16)


def write(d):
    np.save("%s/%s.npy" % (d, NAME), every_f16())


def tokens(body, strip):
    return [t.strip() for t in body.strip().strip(strip).split(",") if t.strip()]


def expected_nonfinite(v, fmt):
    if np.isnan(v):
        return {"json": '"NaN"', "csv": "nan"}[fmt]
    neg = v < 0
    return {"json": '"-Infinity"' if neg else '"Infinity"', "csv": "-inf" if neg else "inf"}[fmt]


def check(base):
    values = every_f16()
    bad = []
    for fmt, query, strip in [
        ("json", "format=json&nonfinite=string", "[]"),
        ("csv", "format=csv", "\n"),
    ]:
        r = requests.get("%s/v1/datasets/%s/data?%s" % (base, NAME, query), timeout=60)
        r.raise_for_status()
        body = r.text if fmt == "json" else r.text.replace("\n", ",")
        got = tokens(body, strip)
        if len(got) != len(values):
            raise SystemExit("%s: %d tokens for %d values" % (fmt, len(got), len(values)))
        for bits, (v, t) in enumerate(zip(values, got)):
            if not np.isfinite(v):
                ok = t == expected_nonfinite(v, fmt)
            else:
                want = str(v)
                ok = Decimal(t) == Decimal(want) and t.startswith("-") == want.startswith("-")
            if not ok:
                bad.append("%s bits %#06x: arrayd %r, NumPy %r" % (fmt, bits, t, str(v)))
    if bad:
        print("\n".join(bad[:30]), file=sys.stderr)
        raise SystemExit("%d float16 texts differ from NumPy's" % len(bad))
    print("all %d float16 values written as NumPy writes them, in JSON and CSV" % len(values))


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
