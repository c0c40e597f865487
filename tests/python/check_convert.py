#!/usr/bin/env python3
"""`arrayd convert` against NumPy, on generated text files.

    check_convert.py BIN WORKDIR [--seed N]

For every dtype arrayd converts (all it serves but complex), with random delimiters, number
spellings (signs, exponents, NaN and Inf in every case, 1e39 in f4), surrounding spaces,
CRLF line ends, comment and blank lines, a last line without newline, --skip-rows,
--usecols (negative too), one column and many, standard input, and files larger than one
block: the .npy written must equal np.save(np.loadtxt(...)) byte for byte. Empty float fields
must equal numpy.genfromtxt's NaN. Then bad inputs must fail with exit status 1, a message
naming line and column, and no file left in the output directory.
"""
import argparse
import io
import os
import random
import subprocess
import sys
import warnings

import numpy as np

FLOATS = ["<f2", "<f4", "<f8", ">f4", ">f8"]
INTS = ["|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", ">i4", ">u2"]
DTYPES = FLOATS + INTS + ["|b1"]
NAN_INF = ["nan", "NaN", "NAN", "-nan", "+nan", "inf", "Inf", "-inf", "+INF", "infinity",
           "-Infinity", "INFINITY"]


def float_text(rng, dtype):
    r = rng.random()
    if r < 0.08:
        return rng.choice(NAN_INF)
    if r < 0.1 and dtype.endswith("f4"):
        return rng.choice(["1e39", "-1e39", "1e-50", "3.4028235e38", "3.4028236e38"])
    if r < 0.1 and dtype.endswith("f2"):
        return rng.choice(["65504", "65520", "-65519", "6e-8", "1e-9"])
    v = rng.choice([rng.gauss(0, 1), rng.gauss(0, 1e6), rng.uniform(-1, 1) * 10 ** rng.randint(-40, 40)])
    fmt = rng.choice(["%.17g", "%.9g", "%e", "%E", "%.3f", "%g", "%.0f", "%+.5e"])
    text = fmt % v
    if rng.random() < 0.05 and "." in text:
        text = text.rstrip("0") if "e" not in text.lower() else text  # "1." spellings
    if rng.random() < 0.05 and text.startswith("0.") and text[2:3].isdigit():
        text = text[1:]  # ".5"
    if rng.random() < 0.05 and not text.startswith(("-", "+")):
        text = "+" + text
    return text


def int_text(rng, dtype):
    info = np.iinfo(np.dtype(dtype))
    r = rng.random()
    if r < 0.1:
        v = rng.choice([info.min, info.max])
    elif r < 0.5:
        v = rng.randint(max(info.min, -100), min(info.max, 100))
    else:
        v = rng.randint(int(info.min), int(info.max))
    text = str(v)
    if v >= 0 and rng.random() < 0.1:
        text = "+" + text
    return text


def value_text(rng, dtype):
    if dtype == "|b1":
        return str(rng.choice([0, 1, 1, 2, -3, 0]))
    if dtype in FLOATS:
        return float_text(rng, dtype)
    return int_text(rng, dtype)


def make_table(rng, dtype, rows, cols, delimiter, *, pad, crlf, last_newline, comments,
               ragged_extra=0):
    """Text of a rows x cols table, and the number of header lines (comments) written."""
    lines = []
    head = rng.randint(0, 2) if comments else 0
    for _ in range(head):
        lines.append("# a comment line, 1,2,3")
    for _ in range(rows):
        fields = [value_text(rng, dtype) for _ in range(cols + rng.randint(0, ragged_extra))]
        if pad and delimiter is not None:
            fields = [" " * rng.randint(0, 2) + f + " " * rng.randint(0, 2) for f in fields]
        sep = delimiter if delimiter is not None else rng.choice([" ", "  ", "\t", " \t "])
        line = sep.join(fields)
        if delimiter is None and pad:
            line = " " * rng.randint(0, 2) + line + " " * rng.randint(0, 2)
        if comments and rng.random() < 0.05:
            line += " # trailing comment"
        lines.append(line)
        if comments and rng.random() < 0.03:
            lines.append("# comment between rows")
        if rng.random() < 0.02:
            lines.append("")
    end = "\r\n" if crlf else "\n"
    text = end.join(lines)
    if last_newline:
        text += end
    return text, head


def loadtxt_npy(path, dtype, delimiter, skiprows, usecols, comments):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = np.loadtxt(path, dtype=dtype, delimiter=delimiter, skiprows=skiprows,
                       usecols=usecols, comments=comments or None, encoding="utf-8")
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue(), a


class Runner:
    def __init__(self, binary, workdir):
        self.binary = binary
        self.workdir = workdir
        self.n = 0
        self.failures = []

    def path(self, suffix):
        self.n += 1
        return os.path.join(self.workdir, "case%04d%s" % (self.n, suffix))

    def convert(self, src, out, dtype, delimiter=None, skiprows=0, usecols=None, comments="#",
                stdin=None, threads=None):
        cmd = [self.binary, "convert", src, out, "--dtype", dtype, "--no-progress"]
        if delimiter is not None:
            cmd += ["--delimiter", "\\t" if delimiter == "\t" else delimiter]
        if skiprows:
            cmd += ["--skip-rows", str(skiprows)]
        if usecols is not None:
            cmd += ["--usecols=" + ",".join(map(str, usecols))]
        if comments != "#":
            cmd += ["--comments", comments or ""]
        if threads:
            cmd += ["--threads", str(threads)]
        return subprocess.run(cmd, input=stdin, capture_output=True)

    def fail(self, what):
        self.failures.append(what)
        print("FAIL:", what, file=sys.stderr)

    def check_equal(self, text, dtype, delimiter=None, skiprows=0, usecols=None, comments="#",
                    via_stdin=False, threads=None, label=""):
        src = self.path(".txt")
        with open(src, "w", newline="") as f:
            f.write(text)
        out = self.path(".npy")
        want, ref = loadtxt_npy(src, dtype, delimiter, skiprows, usecols, comments)
        if via_stdin:
            res = self.convert("-", out, dtype, delimiter, skiprows, usecols, comments,
                               stdin=text.encode(), threads=threads)
        else:
            res = self.convert(src, out, dtype, delimiter, skiprows, usecols, comments,
                               threads=threads)
        what = "%s %s delimiter=%r skiprows=%d usecols=%r stdin=%s (%s)" % (
            label, dtype, delimiter, skiprows, usecols, via_stdin, src)
        if res.returncode != 0:
            self.fail("%s: exit %d: %s" % (what, res.returncode, res.stderr.decode()))
            return
        got = open(out, "rb").read()
        if got != want:
            mine = np.load(out)
            detail = "shape %s vs %s" % (mine.shape, ref.shape)
            if mine.shape == ref.shape:
                bits = "u%d" % mine.itemsize
                diff = np.flatnonzero(mine.reshape(-1).view(bits) != ref.reshape(-1).view(bits))
                if diff.size:
                    i = diff[0]
                    detail += "; first difference at flat index %d: %r vs %r" % (
                        i, mine.reshape(-1)[i], ref.reshape(-1)[i])
            self.fail("%s: output differs from np.save(np.loadtxt): %s" % (what, detail))
        os.remove(out)

    def check_refused(self, text, dtype, needles, delimiter=None, usecols=None, label="",
                      binary=None, numpy_refuses=True):
        src = self.path(".txt")
        with open(src, "wb") as f:
            f.write(binary if binary is not None else text.encode())
        outdir = self.path(".d")
        os.mkdir(outdir)
        out = os.path.join(outdir, "out.npy")
        res = self.convert(src, out, dtype, delimiter, usecols=usecols)
        err = res.stderr.decode(errors="replace")
        if res.returncode != 1:
            self.fail("%s: exit %d, want 1 (%s)" % (label, res.returncode, err))
        for needle in needles:
            if needle not in err:
                self.fail("%s: message %r lacks %r" % (label, err.strip(), needle))
        if os.listdir(outdir):
            self.fail("%s: files left behind: %s" % (label, os.listdir(outdir)))
        if numpy_refuses:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    np.loadtxt(src, dtype=dtype, delimiter=delimiter, usecols=usecols)
                self.fail("%s: numpy.loadtxt accepts it" % label)
            except (ValueError, TypeError, UnicodeDecodeError):
                pass
        print("refused as expected: %s: %s" % (label, err.strip()[:160]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("workdir")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    rng = random.Random(args.seed)
    run = Runner(args.binary, args.workdir)
    n_equal = 0

    # Every dtype, random shapes and syntax.
    for dtype in DTYPES:
        for rows, cols in [(1, 1), (1, 4), (7, 1), (37, 3), (400, 6)]:
            delimiter = rng.choice([",", "\t", ";", None])
            text, _ = make_table(rng, dtype, rows, cols, delimiter, pad=rng.random() < 0.5,
                                 crlf=rng.random() < 0.3, last_newline=rng.random() < 0.7,
                                 comments=True)
            run.check_equal(text, dtype, delimiter, label="table %dx%d" % (rows, cols))
            n_equal += 1

    # Larger than a block (1 MiB), so blocks are parsed in parallel and put back in order.
    for dtype, delimiter in [("<f8", ","), ("<f4", None), ("<i8", "\t")]:
        text, _ = make_table(rng, dtype, 20_000, 7, delimiter, pad=False, crlf=False,
                             last_newline=True, comments=True)
        assert len(text) > 3 << 19, len(text)
        run.check_equal(text, dtype, delimiter, threads=2, label="multi-block")
        n_equal += 1

    # --skip-rows counts every physical line, comments included; --usecols, negative too.
    text, head = make_table(rng, "<f8", 50, 5, ",", pad=True, crlf=False, last_newline=True,
                            comments=True)
    for skip in [0, 1, 3, 60]:
        run.check_equal(text, "<f8", ",", skiprows=skip, label="skip")
        n_equal += 1
    for usecols in [[0], [4], [1, 3], [-1, 0], [2, 2, -5]]:
        run.check_equal(text, "<f4", ",", usecols=usecols, label="usecols")
        n_equal += 1
    # Rows of different lengths are fine when --usecols picks columns every row has.
    text, _ = make_table(rng, "<i4", 30, 3, ",", pad=False, crlf=False, last_newline=True,
                         comments=False, ragged_extra=3)
    run.check_equal(text, "<i4", ",", usecols=[0, 2, 1], label="usecols ragged")
    # Another comment marker, none at all, and standard input.
    run.check_equal("1;2//c\n//x\n3;4\n", "<f8", ";", comments="//", label="comments //")
    run.check_equal("1,2\n3,4\n", "<f8", ",", comments="", label="no comments")
    text, _ = make_table(rng, "<u2", 3000, 4, None, pad=True, crlf=True, last_newline=False,
                         comments=True)
    run.check_equal(text, "<u2", None, via_stdin=True, label="stdin")
    # No data at all: (0,) as loadtxt (which warns).
    run.check_equal("# only a comment\n\n", "<f8", ",", label="empty")
    run.check_equal("", "<f4", ",", usecols=[0, 1], label="empty usecols")
    n_equal += 8

    # Missing values: an empty float field is NaN, as numpy.genfromtxt reads it.
    text = "1,,3\n4, ,6\n,8,\n"
    for dtype in ["<f8", "<f4", "<f2"]:
        src = run.path(".txt")
        open(src, "w").write(text)
        out = run.path(".npy")
        res = run.convert(src, out, dtype, ",")
        want = np.genfromtxt(src, delimiter=",", dtype=dtype)
        if res.returncode != 0:
            run.fail("missing values %s: %s" % (dtype, res.stderr.decode()))
        else:
            got = np.load(out)
            if got.shape != want.shape or got.tobytes() != want.tobytes():
                run.fail("missing values %s: %r vs genfromtxt %r" % (dtype, got, want))
        n_equal += 1

    # Bad input: exit status 1, line and column named, nothing left behind.
    run.check_refused("1\n2\n300\n", "|u1", ["line 3, column 1", '"300"', "uint8"], label="u1 out of range")
    run.check_refused("5\n-1\n", "<u4", ["line 2, column 1", '"-1"'], label="negative unsigned")
    run.check_refused("1,2\n3,\n", "<i4", ["line 2, column 2", "empty"], ",", label="empty int")
    run.check_refused("1,2\n3,x\n", "<f8", ["line 2, column 2", '"x"'], ",", label="not a number")
    run.check_refused("1.5\n", "<i8", ["line 1, column 1", '"1.5"'], label="float as int")
    run.check_refused("1 2 3\n# c\n4 5\n", "<f8", ["line 3", "2 columns", "line 1 has 3"], label="ragged")
    run.check_refused("1,2\n3,4\n", "<f8", ["line 1", "--usecols 5"], ",", usecols=[5], label="usecols past the end")
    npy = io.BytesIO()
    np.save(npy, np.arange(100, dtype="<f8"))
    run.check_refused(None, "<f8", ["line 1", "binary"], binary=npy.getvalue(), label="binary input")
    # Limits of our own, where numpy.loadtxt would read on (README: lines up to 1 MiB,
    # 65,536 columns): a 10^6-column line is over both.
    run.check_refused("1\n" + "7" * (3 << 20) + "\n2\n", "<f8", ["line 2", "longer than 1 MiB"],
                      label="long line", numpy_refuses=False)
    run.check_refused("1\n" + ",".join(["1"] * 1_000_000) + "\n", "<f8", ["line 2", "longer than 1 MiB"], ",",
                      label="10^6 columns", numpy_refuses=False)
    run.check_refused(",".join(["1"] * 70_000) + "\n", "<f8", ["line 1", "more than 65536 columns"], ",",
                      label="70,000 columns", numpy_refuses=False)
    run.check_refused("1\n", "<c8", ["complex"], label="complex", numpy_refuses=False)
    run.check_refused("1#2\n", "<f8", ["comment marker"], "#", label="delimiter in comments")

    # Paths: a missing output directory, the output over the input.
    src = run.path(".txt")
    open(src, "w").write("1\n")
    res = run.convert(src, os.path.join(args.workdir, "missing", "x.npy"), "<f8")
    if res.returncode != 1 or b"does not exist" not in res.stderr:
        run.fail("missing output directory: exit %d %r" % (res.returncode, res.stderr))
    res = run.convert(src, src, "<f8")
    if res.returncode != 1 or b"is the input" not in res.stderr or open(src).read() != "1\n":
        run.fail("output equal to input: exit %d %r" % (res.returncode, res.stderr))

    if run.failures:
        print("%d failures" % len(run.failures), file=sys.stderr)
        sys.exit(1)
    print("convert matches NumPy: %d conversions byte-equal to np.save(np.loadtxt) or genfromtxt, "
          "all bad inputs refused" % n_equal)


if __name__ == "__main__":
    main()
