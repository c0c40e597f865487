"""The /zarr benchmark: zarr-python reading arrayd's Zarr view against zarr-python reading
the same array written by zarr-python as an uncompressed store on disk and served by nginx,
in one run; plus a single chunk against /raw and nginx, and dask's sum against /stats.

Run through `bench/zarr`, which installs nginx if missing and builds the release
binary. Everything runs on loopback on free ports in a temporary directory and is stopped at
the end. Rounds alternate between the two servers, every figure is a median, and every ratio
compares two figures taken in this run.
"""

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Arrayd, Nginx, Table, numpy_seconds, warm, write_random_npy  # noqa: E402

import dask.array as da  # noqa: E402
import zarr  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning)


def seconds(fn, reps):
    """Median wall time of `fn` over `reps` runs, after one warm-up run."""
    fn()
    return numpy_seconds(fn, reps)


def interleaved(fns, reps, before=lambda: None):
    """Medians of several timed functions measured in alternation, so that load from other
    processes lands on all of them alike; `before` runs ahead of each round."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(reps):
        before()
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


async def chunk_rate(target, nchunks, chunk_bytes, seconds, conns=4):
    """Chunks a second that `conns` keep-alive connections fetch from `target(i)` (URL and
    headers of chunk i), each body read whole and its length checked."""
    import aiohttp
    rng = random.Random(3)
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as session:
        deadline = time.perf_counter() + seconds

        async def worker():
            nonlocal done
            while time.perf_counter() < deadline:
                url, headers = target(rng.randrange(nchunks))
                async with session.get(url, headers=headers) as resp:
                    body = await resp.read()
                    assert resp.status in (200, 206) and len(body) == chunk_bytes, (url, resp.status)
                done += 1

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        return done / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    ap.add_argument("--rows", type=int, default=16384)
    ap.add_argument("--cols", type=int, default=16384)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5, help="length of each random-chunk run")
    args = ap.parse_args()
    if args.quick:
        args.rows, args.cols, args.reps, args.seconds = 1024, 1024, 1, 1
    rows, cols = args.rows, args.cols
    nbytes = rows * cols * 4
    work = tempfile.mkdtemp(prefix="arrayd-zarr-bench-")
    started = []
    table = Table()
    try:
        data = os.path.join(work, "data")
        os.makedirs(data)
        print(f"making a {rows}x{cols} float32 array ({nbytes / 2**20:.0f} MiB) in {work}", flush=True)
        path = os.path.join(data, "big.npy")
        write_random_npy(path, rows, cols)

        server = Arrayd(data)
        started.append(server)
        ours = zarr.open_array(server.base + "/zarr/big", mode="r", zarr_format=3)
        chunk_rows = ours.chunks[0]
        nchunks = -(-rows // chunk_rows)
        chunk_bytes = chunk_rows * cols * 4
        print(f"arrayd's chunks: {ours.chunks} ({chunk_bytes / 2**20:.1f} MiB), {nchunks} of them", flush=True)

        # The same array, same chunks, written by zarr-python as an uncompressed store.
        store = os.path.join(work, "store")
        disk = zarr.create_array(store, shape=(rows, cols), chunks=ours.chunks, dtype="<f4",
                                 compressors=None, fill_value=0.0, zarr_format=3)
        mm = np.load(path, mmap_mode="r")
        for r in range(0, rows, chunk_rows):
            disk[r:r + chunk_rows] = mm[r:r + chunk_rows]
        del mm
        files = [path] + [os.path.join(d, f) for d, _, fs in os.walk(store) for f in fs]

        def warm_all():
            # Other processes on a shared machine may push either copy out of the page cache
            # between rounds; both are read back before each one.
            for f in files:
                warm(f)

        warm_all()
        # nginx with sendfile on and off; each figure is compared with the faster of the two.
        nginxes = [Nginx(work, sendfile, work) for sendfile in (True, False)]
        started.extend(nginxes)
        theirs = [zarr.open_array(n.base + "/store", mode="r", zarr_format=3) for n in nginxes]
        truth = np.load(path, mmap_mode="r")
        for z in [ours, *theirs]:
            assert np.array_equal(z[:chunk_rows], truth[:chunk_rows])
        print(f"machine: {os.cpu_count()} cores, load {open('/proc/loadavg').read().split()[:3]}", flush=True)

        def versus_nginx(label, key, size, reps):
            fns = [lambda z=z: z[key] for z in [ours, *theirs]]
            t_ours, *t_theirs = interleaved(fns, reps, warm_all)
            best = min(range(len(t_theirs)), key=lambda i: t_theirs[i])
            table.add(label, f"{size / t_ours / 1e9:.2f} GB/s",
                      f"nginx (sendfile {'on' if best == 0 else 'off'}) {size / t_theirs[best] / 1e9:.2f} GB/s",
                      f"{t_theirs[best] / t_ours:.2f}x", "bar >= 1.0x")

        versus_nginx("zarr-python, whole array", Ellipsis, nbytes, args.reps)
        # 64 chunks (or all of a smaller array) at a random place.
        n = min(64, nchunks)
        start = random.Random(2).randint(0, nchunks - n) * chunk_rows
        sub = slice(start, min(rows, start + n * chunk_rows))
        # A quarter of the bytes: twice the rounds, so a burst of load weighs as much.
        versus_nginx(f"zarr-python, {n} chunks", sub, (sub.stop - sub.start) * cols * 4, 2 * args.reps)

        # One random chunk a request on 4 connections, by one aiohttp client for all three:
        # the chunk key, the same bytes by a /raw Range, and nginx's chunk file. (wrk reads
        # multi-MiB bodies slowly enough here to measure itself.)
        targets = {
            "ours": lambda i: (server.base + f"/zarr/big/c/{i}/0", {}),
            "raw": lambda i: (server.base + "/v1/datasets/big/raw",
                              {"Range": f"bytes={i * chunk_bytes}-{(i + 1) * chunk_bytes - 1}"}),
        }
        for k, n in enumerate(nginxes):
            targets[f"nginx{k}"] = lambda i, n=n: (n.base + f"/store/c/{i}/0", {})
        rates = {name: [] for name in targets}
        for _ in range(max(1, args.reps // 2)):
            for name, target in targets.items():
                rates[name].append(asyncio.run(chunk_rate(target, nchunks, chunk_bytes, args.seconds)))
        r = {k: statistics.median(v) for k, v in rates.items()}
        r["theirs"] = max(r.pop("nginx0"), r.pop("nginx1"))
        chunk_gbs = lambda rate: f"{rate * chunk_bytes / 1e9:.2f} GB/s"
        table.add("random chunk, 4 conns", chunk_gbs(r["ours"]), f"nginx {chunk_gbs(r['theirs'])}",
                  f"{r['ours'] / r['theirs']:.2f}x", "bar >= 0.9x")
        table.add("random chunk vs /raw range", chunk_gbs(r["ours"]), f"/raw {chunk_gbs(r['raw'])}",
                  f"{r['ours'] / r['raw']:.2f}x", "")

        # dask over /zarr against the server's own sum.
        session = requests.Session()

        def stats_sum():
            resp = session.get(server.base + "/v1/datasets/big/stats", params={"ops": "sum"})
            resp.raise_for_status()
            return resp.json()["sum"]

        lazy = da.from_zarr(server.base + "/zarr/big")
        assert abs(float(lazy.sum(dtype="f8").compute()) - stats_sum()) <= 1e-6 * abs(stats_sum())
        t_dask = seconds(lambda: lazy.sum().compute(), max(1, args.reps // 2))
        t_stats = seconds(stats_sum, args.reps)
        table.add("dask from_zarr sum vs /stats", f"dask {t_dask:.3f} s", f"/stats {t_stats:.3f} s",
                  f"{t_dask / t_stats:.1f}x slower", "")
        table.print()
    finally:
        for s in reversed(started):
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
