"""`arrayd convert` against numpy.loadtxt and pandas.read_csv, each followed by np.save.

Run through `bench/convert`, which builds the release binary and provides pandas and pyarrow.

The input is a CSV of 16 float32 columns written with "%.7g" (1 GiB; 16 MiB with --quick),
made once and kept in the cache directory: 8 MiB blocks of distinct random rows, 16 of them,
repeated in a random order up to the size (generating 1 GiB of distinct text through NumPy
takes minutes, and the parsers see no difference). It is read once before the timings, so
every tool reads it from the page cache.

Each tool runs as its own process, one after the other, round after round; the wall time is
the median over rounds and the peak RSS (GNU time's maximum resident set size of that
process) the largest. numpy.loadtxt reads the first eighth of the 1 GiB file (the whole
file with --quick) and its time is scaled by the size ratio; the table says so. The
arrayd output must equal np.save(np.loadtxt(...)) on the rows both read, bit for bit.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

COLUMNS = 16
BLOCK_BYTES = 8 << 20
DISTINCT_BLOCKS = 16

PY_LOADTXT = """
import sys, numpy as np
np.save(sys.argv[2], np.loadtxt(sys.argv[1], dtype=np.float32, delimiter=","))
"""
PY_PANDAS = """
import sys, numpy as np, pandas as pd
df = pd.read_csv(sys.argv[1], header=None, dtype=np.float32, engine=sys.argv[3])
np.save(sys.argv[2], df.to_numpy())
"""


def make_block(seed):
    """About BLOCK_BYTES of CSV text, whole lines."""
    gen = np.random.default_rng(seed)
    rows = BLOCK_BYTES // (COLUMNS * 11)
    scale = 10.0 ** gen.integers(-3, 4, size=(rows, 1))
    a = (gen.standard_normal((rows, COLUMNS)) * scale).astype(np.float32)
    line = ",".join(["%.7g"] * COLUMNS) + "\n"
    return "".join(line % tuple(r) for r in a.tolist()).encode()


def ensure_input(cache, total_bytes):
    """The cached CSV of at least total_bytes (and its first-eighth prefix), made once."""
    os.makedirs(cache, exist_ok=True)
    name = "convert-f32x%d-%dMiB" % (COLUMNS, total_bytes >> 20)
    path = os.path.join(cache, name + ".csv")
    prefix = os.path.join(cache, name + ".prefix.csv")
    if os.path.exists(path) and os.path.exists(prefix):
        return path, prefix
    print("generating %s (once)..." % path, file=sys.stderr, flush=True)
    n_distinct = min(DISTINCT_BLOCKS, max(1, total_bytes // BLOCK_BYTES))
    blocks = [make_block(seed) for seed in range(n_distinct)]
    rng = random.Random(0)
    written = 0
    order = []
    while written < total_bytes:
        i = rng.randrange(n_distinct) if written else 0
        order.append(i)
        written += len(blocks[i])
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for i in order:
            f.write(blocks[i])
    n_prefix = max(1, len(order) // 8)
    with open(prefix + ".tmp", "wb") as f:
        for i in order[:n_prefix]:
            f.write(blocks[i])
    os.rename(prefix + ".tmp", prefix)
    os.rename(tmp, path)
    return path, prefix


def measure(cmd):
    """(wall seconds, peak RSS in MiB) of one process.

    The peak comes from GNU time, a small process that forks the command: a child forked or
    vforked from this Python process would inherit its resident size into ru_maxrss.
    """
    with tempfile.NamedTemporaryFile("r") as report:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name] + cmd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit("failed (%d): %s\n%s" % (proc.returncode, " ".join(cmd),
                                                       proc.stderr.decode(errors="replace")))
        peak_kib = int(report.read().split()[-1])
    return wall, peak_kib / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    args = ap.parse_args()
    total = (16 << 20) if args.quick else (1 << 30)
    rounds = args.rounds or (1 if args.quick else 3)
    csv, prefix = ensure_input(args.cache, total)
    if args.quick:
        prefix = csv
    size, prefix_size = os.path.getsize(csv), os.path.getsize(prefix)
    for p in (csv, prefix):
        with open(p, "rb") as f:
            while f.read(16 << 20):
                pass
    try:
        import pyarrow  # noqa: F401
        engines = ["c", "pyarrow"]
    except ImportError:
        engines = ["c"]
        print("pandas pyarrow engine: SKIPPED (pyarrow is not installed)", file=sys.stderr)

    out = tempfile.mkdtemp(dir=args.cache)
    py = sys.executable
    tools = [
        ("arrayd convert", [args.bin, "convert", csv, os.path.join(out, "arrayd.npy"),
                            "--dtype", "f4", "--delimiter", ",", "--no-progress"], 1.0),
        ("numpy.loadtxt + np.save", [py, "-c", PY_LOADTXT, prefix, os.path.join(out, "loadtxt.npy")],
         size / prefix_size),
    ] + [
        ("pandas.read_csv(engine=%s) + np.save" % e,
         [py, "-c", PY_PANDAS, csv, os.path.join(out, "pandas-%s.npy" % e), e], 1.0)
        for e in engines
    ]
    times = {name: [] for name, _, _ in tools}
    rss = {name: [] for name, _, _ in tools}
    try:
        for _ in range(rounds):
            for name, cmd, _ in tools:
                wall, peak = measure(cmd)
                times[name].append(wall)
                rss[name].append(peak)
                if name.startswith("pandas"):
                    os.remove(cmd[4])
        # The contract: arrayd's array equals loadtxt's, bit for bit, on the rows both read.
        ours = np.load(os.path.join(out, "arrayd.npy"), mmap_mode="r")
        ref = np.load(os.path.join(out, "loadtxt.npy"))
        same = ours.shape[1:] == ref.shape[1:] and np.array_equal(
            ours[: ref.shape[0]].view(np.uint32), ref.view(np.uint32))
        if not same:
            raise SystemExit("arrayd's output differs from numpy.loadtxt's")
        n_rows = ours.shape[0]
    finally:
        shutil.rmtree(out, ignore_errors=True)

    load = open("/proc/loadavg").read().split()[:3]
    print("machine: %d cores, load %s (shared with other work: figures are medians, compare ratios)"
          % (os.cpu_count(), " ".join(load)))
    print("input: %.2f GiB CSV, %d rows x %d float32 columns; %d round(s)"
          % (size / (1 << 30), n_rows, COLUMNS, rounds))
    median = {name: statistics.median(t) * scale for (name, _, scale), t in zip(tools, times.values())}
    fastest_pandas = min(v for k, v in median.items() if k.startswith("pandas"))
    print("%-40s %10s %15s %18s  %s" % ("tool", "wall (s)", "peak RSS (MiB)", "vs fastest pandas",
                                        "rounds (s)"))
    for name, _, scale in tools:
        note = "" if scale == 1.0 else "  (x%.1f from %d MiB)" % (scale, prefix_size >> 20)
        spread = " ".join("%.2f" % (t * scale) for t in times[name])
        print("%-40s %10.2f %15.1f %18.2f  %s%s" % (name, median[name], max(rss[name]),
                                                   median[name] / fastest_pandas, spread, note))
    ratio = median["arrayd convert"] / fastest_pandas
    peak = max(rss["arrayd convert"])
    print("bar: faster than the fastest pandas engine: %s (ratio %.2f)" % ("held" if ratio < 1 else "MISSED", ratio))
    print("bar: peak RSS under 64 MiB: %s (%.1f MiB)" % ("held" if peak < 64 else "MISSED", peak))
    print("arrayd output equals numpy.loadtxt's bit for bit on the %s"
          % ("whole file" if args.quick else "first %d MiB" % (prefix_size >> 20)))


if __name__ == "__main__":
    main()
