#!/usr/bin/env python3
"""Aggregates over HTTP vs NumPy in-process, on the same page-cached file.

    aggregates.py --base URL --dataset NAME --path FILE.npy
                  [--downsample-dataset NAME --downsample-path FILE.npy] [--reps N]
                  [--only TEXT]

Times (median of --reps runs of each, after two warm-ups; the runs of arrayd and NumPy
alternate, so a change of load on a shared machine weighs on both sides alike):
  * GET /stats?ops=sum and /stats (all ops), whole array, slice=::3,::7, and
    axis=0 and axis=-1, against NumPy on np.load(path, mmap_mode='r'): np.sum(a)
    and (a.size, a.sum(), a.mean(), a.min(), a.max(), a.std(), a.var()) with the
    same axis;
  * GET /histogram?bins=100&range=50,150 against np.histogram(a, 100, (50, 150));
  * GET /downsample?buckets=2000 of the 1-d series (arrayd only).
Prints a table with the medians and the ratio arrayd / NumPy (lower is better).

What each side's time holds: NumPy's ends with its result (the arrays, float32 for the sums
of float32 data, as NumPy returns them) in memory; arrayd's ends with the answer parsed in
this process (request, reduction, JSON, compression as `requests` asks for it, transfer,
decompression and `json.loads`), which is what a client of the HTTP API gets.
"""
import argparse
import statistics
import time

import numpy as np
import requests


def median_times(fns, reps):
    """Median seconds of each of `fns`, whose runs alternate."""
    for fn in fns:  # warm-up (page tables, connection)
        fn()
        fn()
    times = [[] for _ in fns]
    for _ in range(reps):
        for fn, t in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--downsample-dataset")
    ap.add_argument("--downsample-path")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", help="time only the rows whose name contains this text (e.g. axis)")
    args = ap.parse_args()

    session = requests.Session()
    a = np.load(args.path, mmap_mode="r")

    def http(endpoint, **params):
        def go():
            r = session.get("%s/v1/datasets/%s/%s" % (args.base, args.dataset if endpoint != "downsample"
                                                     else args.downsample_dataset, endpoint), params=params)
            r.raise_for_status()
            return r.json()
        return go

    def all_ops(x, axis=None):
        return (x.size, x.sum(axis=axis), x.mean(axis=axis), x.min(axis=axis), x.max(axis=axis),
                x.std(axis=axis), x.var(axis=axis))

    strided = a[::3, ::7] if a.ndim == 2 else a[::21]
    rows = [
        ("sum, whole", http("stats", ops="sum"), lambda: np.sum(a)),
        ("all ops, whole", http("stats"), lambda: all_ops(a)),
        ("sum, ::3,::7", http("stats", ops="sum", slice="::3,::7"), lambda: np.sum(strided)),
        ("all ops, ::3,::7", http("stats", slice="::3,::7"), lambda: all_ops(strided)),
        ("sum, axis=0", http("stats", ops="sum", axis="0"), lambda: np.sum(a, axis=0)),
        ("sum, axis=-1", http("stats", ops="sum", axis="-1"), lambda: np.sum(a, axis=-1)),
        ("all ops, axis=0", http("stats", axis="0"), lambda: all_ops(a, 0)),
        ("all ops, axis=-1", http("stats", axis="-1"), lambda: all_ops(a, -1)),
        ("histogram 100", http("histogram", bins="100", range="50,150"),
         lambda: np.histogram(a, bins=100, range=(50, 150))),
    ]
    # Same answers (within float32 accumulation error of NumPy's own sum).
    got = http("stats")()
    ref = float(np.sum(a, dtype=np.float64))
    assert abs(got["sum"] - ref) <= 1e-6 * max(1.0, float(np.sum(np.abs(a[:64]))) * a.size / 64), (got, ref)

    if args.only:
        rows = [row for row in rows if args.only in row[0]]
    print("%-22s %12s %12s %8s" % ("what", "arrayd (s)", "numpy (s)", "ratio"))
    for name, ours, theirs in rows:
        t_ours, t_np = median_times([ours, theirs], args.reps)
        print("%-22s %12.4f %12.4f %8.2f" % (name, t_ours, t_np, t_ours / t_np))
    if args.downsample_dataset and (not args.only or args.only in "downsample 2000"):
        n = np.load(args.downsample_path, mmap_mode="r").shape[0]
        [t] = median_times([http("downsample", buckets=2000)], max(1, args.reps // 2))
        print("%-22s %12.4f %12s %8s   (%d elements, %.1f GB/s)" % ("downsample 2000", t, "-", "-", n,
                                                                    n * 4 / t / 1e9))


if __name__ == "__main__":
    main()
