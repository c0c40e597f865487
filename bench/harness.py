"""The /data benchmark: arrayd against nginx (bytes) and NumPy (strided gathers), in one run.

Run through `bench/run`, which installs nginx and wrk if missing, builds the release binary
and calls this script with the project's venv. Everything it starts (arrayd, nginx) runs on
loopback on free ports in a temporary directory and is stopped at the end.

Every figure is a median of repeated measurements, and every ratio compares two figures
taken in this run on this machine, so the table says something even on a noisy, shared box.
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "arrayd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                r.read()
                return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def write_npy_sparse(path, shape, dtype="<f4"):
    """A .npy whose data is a hole: costs no disk, reads as zeros."""
    header = np.lib.format.header_data_from_array_1_0(np.empty((0,), dtype))
    header["shape"] = tuple(shape)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        offset = f.tell()
        f.truncate(offset + int(np.prod(shape, dtype=np.uint64)) * np.dtype(dtype).itemsize)
    return offset


def write_random_npy(path, rows, cols):
    """A rows x cols float32 .npy of uniform random values (seeded), written 256 rows at a time."""
    rng = np.random.default_rng(1)
    mm = np.lib.format.open_memmap(path, mode="w+", dtype="<f4", shape=(rows, cols))
    for r in range(0, rows, 256):
        mm[r:r + 256] = rng.random((min(256, rows - r), cols), dtype=np.float32)
    mm.flush()
    del mm


def evict(path):
    """Drops a file's pages from the page cache (posix_fadvise DONTNEED)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm(path):
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


class Arrayd:
    """arrayd as deployed: one log line per request (to a file, as a collector would take
    them) and /metrics counting; `binary` may be an older build to compare against."""

    def __init__(self, data_dir, *extra, binary=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [binary or BIN, "--data-dir", data_dir, "--listen", f"127.0.0.1:{self.port}", "--log", "info", *extra],
            stderr=self.log,
        )
        wait_http(self.base + "/healthz")

    def rss_anon_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
        raise RuntimeError("no RssAnon")

    def cpu_seconds(self):
        """User plus system CPU time the server has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def wrk_cpu(server, url, lua, seconds, conns):
    """wrk against an arrayd, with the server's CPU time per request (less noisy than the
    rate on a shared machine: what other jobs take costs wall time, not this process's CPU)."""
    before = server.cpu_seconds()
    rps, p50, p99, errors = wrk(url, lua, seconds, conns)
    return rps, p50, p99, errors, (server.cpu_seconds() - before) / max(rps * seconds, 1)


class Nginx:
    def __init__(self, root, sendfile, workdir, connections=1024):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        conf = os.path.join(workdir, f"nginx-{self.port}.conf")
        user = "user root;" if os.geteuid() == 0 else ""
        with open(conf, "w") as f:
            f.write(
                textwrap.dedent(
                    f"""
                    {user}
                    worker_processes auto;
                    daemon off;
                    pid {workdir}/nginx-{self.port}.pid;
                    error_log {workdir}/nginx-{self.port}.err warn;
                    worker_rlimit_nofile {connections * 2 + 64};
                    events {{ worker_connections {connections}; }}
                    http {{
                        access_log off;
                        sendfile {"on" if sendfile else "off"};
                        tcp_nopush on;
                        keepalive_requests 1000000;
                        client_body_temp_path {workdir}/nb; proxy_temp_path {workdir}/np;
                        fastcgi_temp_path {workdir}/nf; uwsgi_temp_path {workdir}/nu;
                        scgi_temp_path {workdir}/ns;
                        types {{ application/octet-stream f32; }}
                        server {{ listen 127.0.0.1:{self.port}; root {root}; location / {{ }} }}
                    }}
                    """
                )
            )
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-e", f"{workdir}/nginx-{self.port}.err"])
        wait_port(self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def curl_seconds(url, headers=(), reps=5):
    """Median wall time of downloading url with curl (body discarded), and the byte count."""
    times, size = [], None
    args = ["curl", "-s", "-f", "-o", "/dev/null", "-w", "%{time_total} %{size_download}"]
    for h in headers:
        args += ["-H", h]
    for _ in range(reps):
        out = subprocess.run(args + [url], check=True, capture_output=True, text=True).stdout
        t, n = out.split()
        times.append(float(t))
        size = int(n)
    return statistics.median(times), size


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk(url, lua, seconds, conns, threads=2):
    """Runs wrk with a request-generating Lua script; returns (req/s, p50 s, p99 s, errors)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script, url],
            check=True, capture_output=True, text=True,
        ).stdout
    finally:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\b", out, re.M)
        return float(m.group(1)) * UNITS[m.group(2)]

    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return rps, pct(50), pct(99), errors


def lua_rows(path_for_row, rows, extra_header=""):
    return textwrap.dedent(
        f"""
        math.randomseed(os.time())
        request = function()
          local row = math.random(0, {rows - 1})
          {path_for_row}
        end
        """
    )


LUA_ARRAYD = 'return wrk.format("GET", "/v1/datasets/{name}/data?slice=" .. row .. ",0:{n}&format=bin")'
LUA_NGINX = (
    'local off = {offset} + row * {row_bytes}\n'
    '          return wrk.format("GET", "/{file}", {{["Range"] = "bytes=" .. off .. "-" .. (off + {last})}})'
)


def numpy_seconds(fn, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class Table:
    def __init__(self):
        self.rows = []

    def add(self, workload, ours, theirs, ratio, bar=""):
        self.rows.append((workload, ours, theirs, ratio, bar))
        print(f"  {workload}: arrayd {ours} | baseline {theirs} | ratio {ratio} {bar}", flush=True)

    def print(self):
        head = ("workload", "arrayd", "baseline", "ratio", "bar")
        widths = [max(len(str(r[i])) for r in self.rows + [head]) for i in range(5)]
        line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
        print()
        print(line(head))
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for r in self.rows:
            print(line(r))


def gbps(nbytes, seconds):
    return f"{nbytes / seconds / 1e9:.2f} GB/s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    ap.add_argument("--rows", type=int, default=16384)
    ap.add_argument("--cols", type=int, default=16384)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved wrk rounds per target")
    ap.add_argument("--rss-gib", type=float, default=4)
    ap.add_argument("--baseline-bin", help="an older arrayd build (bench/run --baseline REV makes one): "
                    "the small-request section runs it too, interleaved, to price what changed")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: contiguous,small,raw,strided,rss,scale,chunks,cold")
    args = ap.parse_args()
    if args.quick:
        args.rows, args.cols, args.seconds, args.reps, args.rss_gib, args.rounds = 1024, 1024, 1, 3, 0.0625, 1
    skip = set(filter(None, args.skip.split(",")))
    rows, cols = args.rows, args.cols
    row_bytes = cols * 4
    work = tempfile.mkdtemp(prefix="arrayd-bench-")
    data = os.path.join(work, "data")
    os.makedirs(data)
    started = []
    table = Table()
    try:
        print(f"making a {rows}x{cols} float32 array ({rows * row_bytes / 2**30:.2f} GiB) in {work}", flush=True)
        big = os.path.join(data, "big.npy")
        write_random_npy(big, rows, cols)
        raw = os.path.join(data, "big.f32")
        with open(big, "rb") as src, open(raw, "wb") as dst:
            np.lib.format.read_magic(src)
            np.lib.format.read_array_header_1_0(src)
            shutil.copyfileobj(src, dst, 16 << 20)
        npy_offset = os.path.getsize(big) - rows * row_bytes
        warm(big)
        warm(raw)

        server = Arrayd(data)
        started.append(server)
        nginxes = [Nginx(data, sendfile, work) for sendfile in (True, False)]
        started.extend(nginxes)
        for n in nginxes:
            curl_seconds(n.base + "/big.f32", reps=1)

        def best_nginx(measure, higher_is_better=True):
            """The faster of nginx with sendfile on and off, and which it was."""
            results = [(measure(n), "on" if i == 0 else "off") for i, n in enumerate(nginxes)]
            pick = max if higher_is_better else min
            return pick(results, key=lambda r: r[0])

        if "contiguous" not in skip:
            for nrows in (1024, 8192) if not args.quick else (64, 512):
                nrows = min(nrows, rows)
                nbytes = nrows * row_bytes
                t_ours, size = curl_seconds(f"{server.base}/v1/datasets/big/data?slice=0:{nrows}&format=bin", reps=args.reps)
                assert size == nbytes, (size, nbytes)
                rng_hdr = f"Range: bytes=0-{nbytes - 1}"
                (t_ng, sf) = best_nginx(lambda n: curl_seconds(n.base + "/big.f32", [rng_hdr], reps=args.reps)[0], higher_is_better=False)
                table.add(f"contiguous bin {nbytes >> 20} MiB (rows 0:{nrows}), curl", gbps(nbytes, t_ours),
                          f"{gbps(nbytes, t_ng)} (sendfile {sf})", f"{t_ng / t_ours:.2f}", ">= 0.9")

        if "small" not in skip:
            n = min(1024, cols)
            lua_ours = lua_rows(LUA_ARRAYD.format(name="big", n=n), rows)
            lua_ng = lua_rows(LUA_NGINX.format(offset=0, row_bytes=row_bytes, file="big.f32", last=n * 4 - 1), rows)
            # Interleaved rounds, medians per target: the box is shared and noisy.
            runs = {"ours": [], "on": [], "off": []}
            baseline = None
            if args.baseline_bin:
                baseline = Arrayd(data, binary=args.baseline_bin)
                started.append(baseline)
                runs["base"] = []
            for _ in range(args.rounds):
                runs["ours"].append(wrk_cpu(server, server.base, lua_ours, args.seconds, 16))
                runs["on"].append(wrk(nginxes[0].base, lua_ng, args.seconds, 16))
                runs["off"].append(wrk(nginxes[1].base, lua_ng, args.seconds, 16))
                if baseline:
                    runs["base"].append(wrk_cpu(baseline, baseline.base, lua_ours, args.seconds, 16))
            med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3)) + (sum(r[3] for r in v),)
                   for k, v in runs.items()}
            ours = med["ours"]
            theirs, sf = max((med["on"], "on"), (med["off"], "off"), key=lambda r: r[0][0])
            assert ours[3] == 0 and theirs[3] == 0, (ours, theirs)
            table.add(f"small 4 KiB random rows, c=16, {args.rounds}x{args.seconds} s, wrk: req/s", f"{ours[0]:.0f}",
                      f"{theirs[0]:.0f} (sendfile {sf})", f"{ours[0] / theirs[0]:.2f}", ">= 0.8")
            if baseline:
                base = med["base"]
                table.add(f"small 4 KiB: this build against {os.path.basename(args.baseline_bin)} (logs on in both): req/s",
                          f"{ours[0]:.0f}", f"{base[0]:.0f}", f"{ours[0] / base[0]:.2f}", ">= 0.97")
                cpu = {k: statistics.median(r[4] for r in runs[k]) * 1e6 for k in ("ours", "base")}
                table.add("small 4 KiB: server CPU per request (user + system, median of rounds)",
                          f"{cpu['ours']:.2f} us", f"{cpu['base']:.2f} us", f"{cpu['base'] / cpu['ours']:.2f}")
                baseline.stop()
                started.remove(baseline)
            table.add("small 4 KiB: p50 / p99 latency", f"{ours[1] * 1e3:.2f} / {ours[2] * 1e3:.2f} ms",
                      f"{theirs[1] * 1e3:.2f} / {theirs[2] * 1e3:.2f} ms", f"{theirs[1] / ours[1]:.2f} (p50)")

            # What the HTTP stack alone does on this machine: the ceiling for small requests.
            hz = wrk(server.base + "/healthz", "", args.seconds, 16)
            table.add("ceiling: GET /healthz (16-byte JSON), c=16, wrk: req/s", f"{hz[0]:.0f}",
                      f"{theirs[0]:.0f} (nginx 4 KiB above)", f"{hz[0] / theirs[0]:.2f}")

        if "raw" not in skip:
            raw_section(server, nginxes, rows, row_bytes, npy_offset, args, table)

        if "strided" not in skip:
            mm = np.load(big, mmap_mode="r")
            _, size = curl_seconds(f"{server.base}/v1/datasets/big/data?slice=:,5&format=bin", reps=1)
            assert size == rows * 4
            # Server-side latency without a process start per request: wrk, one connection.
            _, t_ours, _, err = wrk(f"{server.base}/v1/datasets/big/data?slice=:,5&format=bin", "", args.seconds, 1, threads=1)
            assert err == 0
            t_np = numpy_seconds(lambda: np.ascontiguousarray(mm[:, 5]), args.reps * 3)
            table.add(f"strided column :,5 ({rows} runs of 4 B) bin, p50 latency c=1", f"{t_ours * 1e3:.2f} ms",
                      f"{t_np * 1e3:.2f} ms (NumPy in-process)", f"{t_np / t_ours:.2f}")
            # Mapped pages survive eviction: unmap before the cold-cache section.
            del mm

        if "rss" not in skip:
            rss(server, work, args.rss_gib, table)

        if "scale" not in skip:
            scale(work, args, table)

        if "chunks" not in skip:
            server.stop()
            started.remove(server)
            chunk_sweep(data, rows, row_bytes, args, table)

        if "cold" not in skip:
            if server in started:  # its map would keep the pages resident
                server.stop()
                started.remove(server)
            cold(data, big, raw, rows, row_bytes, args, table, nginxes)
    finally:
        for p in started:
            try:
                p.stop()
            except Exception as e:
                print("stop failed:", e, file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    table.print()


def raw_section(server, nginxes, rows, row_bytes, npy_offset, args, table):
    """/raw against nginx: one large range, and random 4 KiB ranges at c=16."""
    nbytes = min(512 << 20, rows * row_bytes) if not args.quick else min(2 << 20, rows * row_bytes)
    rng_hdr = f"Range: bytes=0-{nbytes - 1}"
    t_ours, size = curl_seconds(f"{server.base}/v1/datasets/big/raw", [rng_hdr], reps=args.reps)
    assert size == nbytes, (size, nbytes)
    t_ng = min((curl_seconds(n.base + "/big.f32", [rng_hdr], reps=args.reps)[0], m) for n, m in zip(nginxes, ("on", "off")))
    table.add(f"/raw range of {nbytes >> 20} MiB, curl", gbps(nbytes, t_ours),
              f"{gbps(nbytes, t_ng[0])} (sendfile {t_ng[1]})", f"{t_ng[0] / t_ours:.2f}", ">= 0.9")
    lua_raw = lua_rows(LUA_NGINX.format(offset=0, row_bytes=row_bytes, file="v1/datasets/big/raw", last=4095), rows)
    lua_ng = lua_rows(LUA_NGINX.format(offset=0, row_bytes=row_bytes, file="big.f32", last=4095), rows)
    runs = {"ours": [], "on": [], "off": []}
    for _ in range(args.rounds):
        runs["ours"].append(wrk(server.base, lua_raw, args.seconds, 16)[0])
        runs["on"].append(wrk(nginxes[0].base, lua_ng, args.seconds, 16)[0])
        runs["off"].append(wrk(nginxes[1].base, lua_ng, args.seconds, 16)[0])
    med = {k: statistics.median(v) for k, v in runs.items()}
    best = max(("on", "off"), key=lambda k: med[k])
    table.add(f"/raw random 4 KiB ranges, c=16, {args.rounds}x{args.seconds} s, wrk: req/s", f"{med['ours']:.0f}",
              f"{med[best]:.0f} (sendfile {best})", f"{med['ours'] / med[best]:.2f}", ">= 0.8")


def rss(server, work, gib, table):
    """RssAnon of the server while a slow reader pulls `gib` GiB as bin, as JSON and as
    gzip-compressed JSON (the compressed stream is small, so its reader is slower still)."""
    data = os.path.join(work, "rss")
    os.makedirs(data)
    n = int(gib * 2**30) // 4
    write_npy_sparse(os.path.join(data, "huge.npy"), (n,))
    srv = Arrayd(data)
    try:
        idle = srv.rss_anon_kib()
        for fmt, coding, rate in (("bin", None, "400M"), ("json", None, "400M"), ("json", "gzip", "2M")):
            url = f"{srv.base}/v1/datasets/huge/data?format={fmt}"
            # Without --compressed curl does not decode: size_download is what went on the wire.
            extra = ["-H", f"Accept-Encoding: {coding}", "-D", "-"] if coding else []
            client = subprocess.Popen(["curl", "-s", "-f", "--limit-rate", rate, "-o", "/dev/null", *extra,
                                       "-w", "\n%{size_download}", url],
                                      stdout=subprocess.PIPE, text=True)
            peak = idle
            while client.poll() is None:
                peak = max(peak, srv.rss_anon_kib())
                time.sleep(0.05)
            out = client.stdout.read()
            size = int(out.split()[-1])
            assert client.returncode == 0, client.returncode
            if coding:
                assert f"content-encoding: {coding}" in out.lower(), out
                what, sent = f"{fmt} + {coding}", f"{size / 2**20:.1f} MiB compressed sent"
            else:
                assert size >= n * 4, size
                what, sent = fmt, f"{size / 2**30:.2f} GiB sent"
            table.add(f"RssAnon while streaming {gib:g} GiB as {what} to a {rate}B/s reader",
                      f"+{(peak - idle) / 1024:.1f} MiB (idle {idle / 1024:.1f} MiB)", sent, "", "< 32 MiB")
    finally:
        srv.stop()


def scale(work, args, table):
    """A 4 KiB selection from a 1 TiB sparse file against the same from a 1 MiB file."""
    data = os.path.join(work, "scale")
    os.makedirs(data)
    cols = 16384
    small_rows = 16
    tib_rows = (2**40 if not args.quick else 2**34) // (cols * 4)
    write_npy_sparse(os.path.join(data, "tib.npy"), (tib_rows, cols))
    write_npy_sparse(os.path.join(data, "mib.npy"), (small_rows, cols))
    srv = Arrayd(data)
    try:
        res = {}
        # The same selections on both: random rows among the first 16, so both read the same
        # bytes and only the dataset's size differs.
        for name in ("mib", "tib", "mib", "tib"):
            lua = lua_rows(LUA_ARRAYD.format(name=name, n=1024), small_rows)
            rps, p50, p99, err = wrk(srv.base, lua, max(2, args.seconds // 2), 1, threads=1)
            assert err == 0
            res.setdefault(name, []).append(p50)
        mib, tib = statistics.median(res["mib"]), statistics.median(res["tib"])
        size = "1 TiB" if not args.quick else "16 GiB"
        table.add(f"scale: 4 KiB row from a {size} sparse file vs a 1 MiB file, p50 latency c=1",
                  f"{tib * 1e6:.0f} us", f"{mib * 1e6:.0f} us (1 MiB file)", f"{tib / mib:.2f}", "<= 1.1")
    finally:
        srv.stop()


def chunk_sweep(data, rows, row_bytes, args, table):
    """--chunk-bytes against contiguous bin and JSON throughput."""
    nrows = min(8192, rows) if not args.quick else min(512, rows)
    json_rows = min(256, rows) if not args.quick else 16
    for kib in (64, 256, 1024, 4096, 16384):
        srv = Arrayd(data, "--chunk-bytes", str(kib * 1024))
        try:
            t_bin, n_bin = curl_seconds(f"{srv.base}/v1/datasets/big/data?slice=0:{nrows}&format=bin", reps=args.reps)
            t_json, n_json = curl_seconds(f"{srv.base}/v1/datasets/big/data?slice=0:{json_rows}&format=json", reps=max(3, args.reps // 2))
            table.add(f"--chunk-bytes {kib} KiB: bin {n_bin >> 20} MiB / json {json_rows} rows ({n_json >> 20} MiB text)",
                      f"{gbps(n_bin, t_bin)} / {n_json / t_json / 1e6:.0f} MB/s", "", "")
        finally:
            srv.stop()


def cold(data, big, raw, rows, row_bytes, args, table, nginxes):
    """Contiguous and strided reads with the file evicted from the page cache, hints on/off.

    Pages mapped into a running process's page tables survive POSIX_FADV_DONTNEED, so each
    measurement evicts the file with no server running and starts a fresh one.
    """
    nrows = min(8192, rows) if not args.quick else min(512, rows)
    nbytes = nrows * row_bytes
    reps = max(3, args.reps // 2)
    urls = {"bin": f"/v1/datasets/big/data?slice=0:{nrows}&format=bin",
            "strided": "/v1/datasets/big/data?slice=:,5&format=bin"}
    lua_small = lua_rows(LUA_ARRAYD.format(name="big", n=min(1024, row_bytes // 4)), rows)
    for hints in ("on", "off"):
        times = {"bin": [], "strided": []}
        for _ in range(reps):
            for what, url in urls.items():
                evict(big)
                srv = Arrayd(data, "--madvise", hints)
                try:
                    times[what].append(curl_seconds(srv.base + url, reps=1)[0])
                finally:
                    srv.stop()
        small = []
        for _ in range(reps):
            evict(big)
            srv = Arrayd(data, "--madvise", hints)
            try:
                small.append(wrk(srv.base, lua_small, max(1, args.seconds // 3), 4, threads=1)[0])
            finally:
                srv.stop()
        t_bin, t_str = statistics.median(times["bin"]), statistics.median(times["strided"])
        table.add(f"cold cache, madvise hints {hints}: bin {nbytes >> 20} MiB / strided :,5 / random 4 KiB rows c=4 (fresh server each)",
                  f"{gbps(nbytes, t_bin)} / {t_str * 1e3:.0f} ms / {statistics.median(small):.0f} req/s", "", "")
    for n, mode in zip(nginxes, ("on", "off")):
        ng_t = []
        for _ in range(reps):
            evict(raw)
            ng_t.append(curl_seconds(n.base + "/big.f32", [f"Range: bytes=0-{nbytes - 1}"], reps=1)[0])
        table.add(f"cold cache, nginx sendfile {mode}: {nbytes >> 20} MiB range", "", gbps(nbytes, statistics.median(ng_t)), "")
    warm(big)


if __name__ == "__main__":
    main()
