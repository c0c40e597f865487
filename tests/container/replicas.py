"""Three replicas of the image behind nginx, the way an orchestrator runs them: one shared
read-only data volume, one shared state directory, nginx (Debian's) balancing with passive
health checks and retrying idempotent requests on another replica. A bounded client keeps
mixed requests going through nginx while the replicas are restarted one by one (SIGTERM,
then wait for /readyz), one is killed (SIGKILL), a new file lands in the data volume and a
dataset is registered through one replica. Prints requests, failures and latency per
phase."""

import http.client
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import pod

ADMIN = "ct-replica-admin-token"
RESCAN_SECS = 2
WORKERS = 8
# Bounds of the client: no phase runs longer than this, no worker sends more than this.
PHASE_MAX_SECS = 60
MAX_REQUESTS_PER_WORKER = 200_000
BIG_ROWS = 4096  # big.npy: 4096 x 16384 float32, 256 MiB (sparse on disk)


class Load:
    """Workers sending mixed GETs through nginx; each result is filed under the phase in
    force when the request started."""

    def __init__(self, port):
        self.port = port
        self.phase = "steady"
        self.results = {}  # phase -> list of (ok, seconds)
        self.errors = {}  # phase -> a few error texts
        self.lock = threading.Lock()
        self.in_flight = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.worker, args=(i,), daemon=True)
                        for i in range(WORKERS)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def request(self, rng):
        kind = rng.random()
        if kind < 0.4:
            r = rng.randrange(0, 120)
            return f"/v1/datasets/image/data?slice={r}:{r + 4}&format=json", None
        if kind < 0.6:
            r = rng.randrange(0, 90000)
            return f"/v1/datasets/signal/data?slice={r}:{r + 1000}&format=bin", 4000
        if kind < 0.75:
            return "/v1/datasets/image/stats?ops=mean,max", None
        if kind < 0.9:
            return "/v1/datasets/climate.matrix/data?slice=0:20&format=csv", None
        # A 4 MiB stream: long enough to be caught in flight by a kill.
        r = rng.randrange(0, BIG_ROWS - 64)
        return f"/v1/datasets/big/data?slice={r}:{r + 64}&format=bin", 64 * 16384 * 4

    def worker(self, i):
        rng = random.Random(i)
        conn = None
        for _ in range(MAX_REQUESTS_PER_WORKER):
            if self.stop.is_set():
                break
            path, size = self.request(rng)
            phase = self.phase
            with self.lock:
                self.in_flight += 1
            t = time.perf_counter()
            ok, err = False, None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()  # IncompleteRead when a body ends short
                ok = resp.status == 200 and (size is None or len(body) == size)
                if not ok:
                    err = f"{resp.status} {len(body)} bytes {body[:60]!r} {path}"
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                err = f"{e.__class__.__name__}: {e} {path}"
                if conn is not None:
                    conn.close()
                conn = None
            elapsed = time.perf_counter() - t
            with self.lock:
                self.in_flight -= 1
                self.results.setdefault(phase, []).append((ok, elapsed))
                if err and len(self.errors.setdefault(phase, [])) < 5:
                    self.errors[phase].append(err)

    def table(self):
        rows = []
        for phase, results in self.results.items():
            lat = np.array([s for ok, s in results if ok]) * 1000
            fails = sum(1 for ok, _ in results if not ok)
            p50 = np.percentile(lat, 50) if len(lat) else float("nan")
            p99 = np.percentile(lat, 99) if len(lat) else float("nan")
            rows.append((phase, len(results), fails, p50, p99))
        return rows


def nginx_conf(prefix, listen, ports):
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in ports)
    return f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  upstream arrayd {{
{servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{listen};
    location / {{
      proxy_pass http://arrayd;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # Passive health checks: a replica that refuses, resets or answers 503 (draining,
      # overloaded) is skipped for fail_timeout, and the request goes to the next one.
      # POST and DELETE are never retried (nginx's default for non-idempotent methods).
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 1s;
      proxy_read_timeout 30s;
      # Streams pass through as they come, as arrayd sends them.
      proxy_buffering off;
      add_header X-Upstream $upstream_addr always;
    }}
  }}
}}
"""


def poll(port, path, want, timeout):
    """Seconds until GET `path` on `port` answers `want`, or None after `timeout`."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        try:
            if pod.get(port, path, timeout=2)[0] == want:
                return time.monotonic() - t
        except OSError:
            pass
        time.sleep(0.05)
    return None


def main():
    check = pod.Check()
    pod.cleanup()
    tmp = tempfile.TemporaryDirectory(prefix="arrayd-ct-replicas-")
    tmpdir = Path(tmp.name)
    data = pod.make_data_dir(tmpdir, big_bytes=BIG_ROWS * 16384 * 4)
    state = tmpdir / "state"
    state.mkdir()
    os.chown(state, pod.UID, pod.UID)
    admin = pod.secret("replica-admin", ADMIN)
    names = [f"r{i}" for i in range(3)]
    ports = [pod.free_port() for _ in names]
    env = {"ARRAYD_ADMIN_TOKEN_FILE": "/run/secrets/arrayd-admin",
           "ARRAYD_RESCAN_SECS": str(RESCAN_SECS), "ARRAYD_THREADS": "1",
           "ARRAYD_SHUTDOWN_GRACE_SECS": "15"}
    nginx = None
    load = None
    try:
        for name, port in zip(names, ports):
            pod.run(name, "-v", f"{data}:/data:ro", "-v", f"{state}:/state", env=env,
                    secrets=[(admin, "arrayd-admin")], port=port)
        for name, port in zip(names, ports):
            pod.wait_ready(port, name=name)
        prefix = tmpdir / "nginx"
        prefix.mkdir()
        lb = pod.free_port()
        (prefix / "nginx.conf").write_text(nginx_conf(prefix, lb, ports))
        nginx = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        pod.wait_ready(lb)
        print(f"replicas: 3 containers on ports {ports}, nginx on {lb}, rescans every "
              f"{RESCAN_SECS} s, {WORKERS} client workers", flush=True)

        load = Load(lb)
        load.start()
        time.sleep(8)

        load.phase = "rolling restart"
        for name, port in zip(names, ports):
            t = time.monotonic()
            pod.podman("stop", "-t", "30", pod.PREFIX + name)  # SIGTERM: the drain
            stopped = time.monotonic() - t
            code = pod.state(name)[1]
            pod.podman("start", pod.PREFIX + name)
            pod.wait_ready(port, name=name)
            print(f"  {name}: drained and stopped in {stopped:.2f} s (exit {code}), ready "
                  f"again {time.monotonic() - t:.2f} s after the SIGTERM", flush=True)
            check(code == 0, f"{name} exited 0 on SIGTERM", str(code))
            time.sleep(1)
        time.sleep(2)

        load.phase = "SIGKILL one"
        time.sleep(1)
        with load.lock:
            in_flight = load.in_flight
        pod.podman("kill", "-s", "KILL", pod.PREFIX + names[1])
        time.sleep(4)
        pod.podman("start", pod.PREFIX + names[1])
        pod.wait_ready(ports[1], name=names[1])
        time.sleep(2)

        load.phase = "new file + rescan"
        fresh = np.arange(12, dtype="<i4").reshape(3, 4)
        # Written elsewhere and renamed in, as data files should be replaced.
        np.save(tmpdir / "fresh.npy", fresh)
        os.chmod(tmpdir / "fresh.npy", 0o644)
        os.rename(tmpdir / "fresh.npy", data / "fresh.npy")
        seen = [poll(p, "/v1/datasets/fresh", 200, RESCAN_SECS + 10) for p in ports]
        print(f"  fresh.npy served by each replica after {seen} s", flush=True)
        check(all(s is not None and s <= RESCAN_SECS + 1.5 for s in seen),
              f"every replica serves the new file within --rescan-secs ({RESCAN_SECS} s)",
              str(seen))
        status, _, body = pod.get(lb, "/v1/datasets/fresh/data?format=npy")
        check(status == 200 and np.array_equal(np.load(io.BytesIO(body)), fresh),
              "and its bytes through nginx are the file's")

        load.phase = "register + rescan"
        reg = json.dumps({"name": "ct.shared", "file": "signal.npy"}).encode()
        headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
        status = pod.get(ports[0], "/v1/datasets", method="POST", body=reg, headers=headers)[0]
        check(status == 201, "registered through r0", str(status))
        seen = [poll(p, "/v1/datasets/ct.shared", 200, RESCAN_SECS + 10) for p in ports[1:]]
        print(f"  ct.shared served by r1, r2 after {seen} s", flush=True)
        check(all(s is not None and s <= RESCAN_SECS + 1.5 for s in seen),
              "r1 and r2 serve the registration after their rescan", str(seen))
        status = pod.get(ports[2], "/v1/datasets", method="POST", body=reg, headers=headers)[0]
        check(status == 409, "registering the same name through r2 is 409", str(status))
        status = pod.get(ports[1], "/v1/datasets/ct.shared", method="DELETE",
                         headers=headers)[0]
        check(status == 204, "deleted through r1", str(status))
        gone = [poll(p, "/v1/datasets/ct.shared", 404, RESCAN_SECS + 10) for p in ports]
        check(all(s is not None for s in gone), "and every replica drops it after a rescan",
              str(gone))
        time.sleep(1)
        load.finish()
        load_rows = load.table()
    finally:
        if load is not None:
            load.finish()
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=10)
        pod.cleanup()
        tmp.cleanup()

    print(f"{'phase':<20} {'requests':>9} {'failures':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for phase, n, fails, p50, p99 in load_rows:
        print(f"{phase:<20} {n:>9} {fails:>9} {p50:>8.2f} {p99:>8.2f}")
    byphase = {row[0]: row for row in load_rows}
    for phase in ("steady", "rolling restart", "new file + rescan", "register + rescan"):
        row = byphase.get(phase)
        check(row is not None and row[1] > 0 and row[2] == 0,
              f"{phase}: no failed request", f"{row} {load.errors.get(phase)}")
    row = byphase.get("SIGKILL one")
    print(f"  requests in flight (all replicas) when r1 was killed: {in_flight}", flush=True)
    check(row is not None and row[2] <= in_flight,
          "SIGKILL: only requests in flight at the kill failed",
          f"{row} {load.errors.get('SIGKILL one')}")
    if load.errors.get("SIGKILL one"):
        print(f"  failures at the kill: {load.errors['SIGKILL one']}", flush=True)
    return check.summary("container-replicas")


if __name__ == "__main__":
    sys.exit(main())
