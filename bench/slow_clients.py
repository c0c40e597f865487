"""Many slow clients: N open streams of a 1 GiB array, half read at 64 KiB/s, half stalled,
while small requests are timed; arrayd against nginx serving the same file, in one run.

Run through `bench/slow_clients` (which installs nginx, builds the release binary and uses
the project's venv). Everything runs on loopback; every client count and phase is bounded
in number and time.

For each server and each N the table gives: the server's threads and RssAnon (peak during
the phase, RssAnon also as growth over idle), p50/p99 of the timed requests, how many timed
requests failed, and the bytes per second the slow readers got (their ideal is
N/2 x 64 KiB/s, which this Python client may not reach on a loaded box: nginx's figure,
taken with the same client, is the baseline).

The timed requests run in a process of their own, so that the many-clients event loop does
not delay them: for arrayd a 16-value JSON `/data`, `/stats?ops=sum` over 64 rows and
`/healthz`; for nginx a 64-byte range of the file and a tiny file (nginx has no /stats).
"""

import argparse
import asyncio
import http.client
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Arrayd, Nginx, write_npy_sparse  # noqa: E402

READ_RATE = 64 * 1024  # bytes per second per slow reader
TICK = 0.25  # a slow reader reads READ_RATE * TICK bytes per tick
CLIENT_RCVBUF = 64 * 1024  # keeps the kernel from buffering whole megabytes per stalled client


def proc_figures(pids):
    """(threads, RssAnon KiB) summed over processes."""
    threads = rss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Threads:"):
                        threads += int(line.split()[1])
                    elif line.startswith("RssAnon:"):
                        rss += int(line.split()[1])
        except FileNotFoundError:
            pass
    return threads, rss


def nginx_pids(master):
    pids = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(d))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    return pids


def probe(port, probes, seconds, out):
    """Runs in its own process: each probe path in turn on keep-alive connections, for
    `seconds`; puts {name: ([latency s], failures)} on `out`."""
    results = {name: ([], 0) for name, _ in probes}
    conns = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, path in probes:
            lat, fails = results[name]
            t = time.monotonic()
            try:
                if name not in conns:
                    conns[name] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                c = conns[name]
                c.request("GET", path[0], headers=path[1])
                r = c.getresponse()
                r.read()
                if r.status >= 400:
                    raise RuntimeError(r.status)
                lat.append(time.monotonic() - t)
            except Exception:
                results[name] = (lat, fails + 1)
                conns.pop(name, None)
        time.sleep(0.05)
    out.put(results)


class Clients:
    """N streams of `path`: even ones read slowly, odd ones read the head and 64 KiB, then
    stop reading."""

    def __init__(self, port, path, n):
        self.port, self.path, self.n = port, path, n
        self.heads = 0
        self.failed = 0
        self.slow_bytes = 0
        self.stop = asyncio.Event()
        self.writers = []

    async def one(self, i, gate):
        async with gate:
            try:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
                sock.setblocking(False)
                await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
                reader, writer = await asyncio.open_connection(sock=sock, limit=CLIENT_RCVBUF)
                self.writers.append(writer)
                writer.write(f"GET {self.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head[:40])
                self.heads += 1
                await asyncio.wait_for(reader.readexactly(64 * 1024), 60)
            except Exception:
                self.failed += 1
                return
        if i % 2 == 1:
            await self.stop.wait()
            return
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                chunk = await asyncio.wait_for(reader.read(int(READ_RATE * TICK)), 30)
            except Exception:
                self.failed += 1
                return
            if not chunk:
                return
            self.slow_bytes += len(chunk)
            await asyncio.sleep(max(0.0, TICK - (time.monotonic() - t)))

    async def run(self, pids, probes, seconds, connect_seconds):
        gate = asyncio.Semaphore(256)
        tasks = [asyncio.create_task(self.one(i, gate)) for i in range(self.n)]
        deadline = time.monotonic() + connect_seconds
        while self.heads + self.failed < self.n and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        opened = time.monotonic()
        out = multiprocessing.Queue()
        prober = multiprocessing.Process(target=probe, args=(self.port, probes, seconds, out))
        prober.start()
        start_bytes = self.slow_bytes
        peak_threads = peak_rss = 0
        while prober.is_alive():
            threads, rss = proc_figures(pids)
            peak_threads, peak_rss = max(peak_threads, threads), max(peak_rss, rss)
            await asyncio.sleep(0.2)
            if not out.empty():
                break
        results = await asyncio.get_running_loop().run_in_executor(None, out.get)
        prober.join()
        rate = (self.slow_bytes - start_bytes) / (time.monotonic() - opened)
        self.stop.set()
        for w in self.writers:
            w.transport.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
        return peak_threads, peak_rss, results, rate


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run_one(label, port, pids, idle_rss, path, probes, n, seconds, rows):
    clients = Clients(port, path, n)
    threads, rss, results, rate = asyncio.run(clients.run(pids, probes, seconds, connect_seconds=120))
    timed = []
    for name, (lat, fails) in results.items():
        timed.append(f"{name} p50 {pct(lat, 50) * 1e3:.1f} ms p99 {pct(lat, 99) * 1e3:.1f} ms"
                     f" ({len(lat)} ok, {fails} failed)")
    rows.append((label, n, f"{clients.heads}/{n}", clients.failed, threads,
                 f"{rss / 1024:.1f} MiB (+{(rss - idle_rss) / 1024:.1f})",
                 f"{rate / 2**20:.1f} MiB/s ({rate / max(1, n // 2) / 1024:.1f} KiB/s each)",
                 "; ".join(timed)))
    r = rows[-1]
    print(f"  {r[0]} N={r[1]}: heads {r[2]}, client failures {r[3]}, threads {r[4]}, RssAnon {r[5]},"
          f" slow readers {r[6]}; {r[7]}", flush=True)
    # Let the server notice the closed sockets before the next phase.
    time.sleep(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="N = 40, 200 and a 64 MiB array; seconds")
    ap.add_argument("--clients", default="1000,10000", help="comma list of N")
    ap.add_argument("--seconds", type=int, default=20, help="timed phase per N")
    args = ap.parse_args()
    rows_n, cols = 16384, 16384
    if args.quick:
        args.clients, args.seconds, rows_n, cols = "40,200", 3, 4096, 4096
    counts = [int(x) for x in args.clients.split(",")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if max(counts) + 256 > hard:
        sys.exit(f"N={max(counts)} needs more open files than the hard limit {hard}")
    work = tempfile.mkdtemp(prefix="arrayd-slow-")
    data = os.path.join(work, "data")
    os.makedirs(data)
    # A sparse file: the benchmark is about connections, not disk; the pages read as zeros.
    write_npy_sparse(os.path.join(data, "big.npy"), (rows_n, cols))
    with open(os.path.join(data, "tiny.txt"), "w") as f:
        f.write("ok\n")
    print(f"{rows_n}x{cols} float32 ({rows_n * cols * 4 / 2**30:.2f} GiB), N = {counts}, "
          f"{args.seconds} s timed per N, {os.cpu_count()} cores", flush=True)
    rows = []
    # Stalled clients are held for the whole phase, not cut by the send timeout.
    server = Arrayd(data, "--send-timeout-secs", "3600", "--max-concurrent", str(max(counts) + 1024))
    try:
        idle_threads, idle = proc_figures([server.proc.pid])
        print(f"arrayd idle: {idle_threads} threads, RssAnon {idle / 1024:.1f} MiB", flush=True)
        probes = [("small /data", ("/v1/datasets/big/data?slice=7,0:16", {})),
                  ("/stats 64 rows", ("/v1/datasets/big/stats?ops=sum&slice=0:64", {})),
                  ("/healthz", ("/healthz", {}))]
        for n in counts:
            run_one("arrayd", server.port, [server.proc.pid], idle, "/v1/datasets/big/data?format=bin",
                    probes, n, args.seconds, rows)
    finally:
        server.stop()
    nginx = Nginx(data, True, work, connections=max(counts) + 256)
    try:
        time.sleep(0.5)
        pids = nginx_pids(nginx.proc.pid)
        _, idle = proc_figures(pids)
        probes = [("64-byte range", ("/big.npy", {"Range": "bytes=1000-1063"})),
                  ("tiny file", ("/tiny.txt", {}))]
        for n in counts:
            run_one("nginx", nginx.port, nginx_pids(nginx.proc.pid), idle, "/big.npy", probes, n,
                    args.seconds, rows)
    finally:
        nginx.stop()
    head = ("server", "N", "heads", "client failures", "threads", "RssAnon", "slow readers got", "timed requests")
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print("\nbars at N = 10,000 (arrayd): threads < 64, RssAnon < 128 MiB, small /data p99 < 50 ms,"
          " /stats answered")


if __name__ == "__main__":
    main()
