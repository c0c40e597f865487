"""What the container tests share: podman as tests/container/run set it up, the image's
containers, HTTP probes without a client library (so a short body is seen as short), and the
data directory the containers mount."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import http.client
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("ARRAYD_IMAGE", "localhost/arrayd:test")
PODMAN = os.environ.get(
    "ARRAYD_PODMAN", "podman --runtime /usr/sbin/runc --cgroup-manager=cgroupfs"
).split()
ULIMITS = os.environ.get(
    "ARRAYD_ULIMITS", "--ulimit nofile=10000:10000 --ulimit nproc=1000:1000"
).split()
UID = 10001
# Every name a test makes starts with this, so a rerun can clear what a killed run left.
PREFIX = "arrayd-ct-"


def podman(*args, check=True, timeout=120):
    out = subprocess.run(PODMAN + list(args), text=True, timeout=timeout,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and out.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {out.returncode}\n{out.stderr}")
    return out


def cleanup():
    """Removes the containers, secrets and volumes of an earlier run of the tests."""
    names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    for name in names:
        if name.startswith(PREFIX):
            podman("rm", "-f", "-t", "0", name, check=False)
    for name in podman("secret", "ls", "--format", "{{.Name}}").stdout.split():
        if name.startswith(PREFIX):
            podman("secret", "rm", name, check=False)
    for name in podman("volume", "ls", "--format", "{{.Name}}").stdout.split():
        if name.startswith(PREFIX):
            podman("volume", "rm", "-f", name, check=False)
    for name in podman("network", "ls", "--format", "{{.Name}}").stdout.split():
        if name.startswith(PREFIX):
            podman("network", "rm", "-f", name, check=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secret(name, value):
    """A podman secret holding `value` (as Docker and Kubernetes secrets, a file in the
    container under /run/secrets)."""
    podman("secret", "rm", PREFIX + name, check=False)
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write(value)
    try:
        podman("secret", "create", PREFIX + name, f.name)
    finally:
        os.unlink(f.name)
    return PREFIX + name


def hardened():
    """The flags of a locked-down container: read-only root, no capabilities, a non-root
    uid, no privilege gain."""
    return ["--read-only", "--cap-drop=ALL", "--user", f"{UID}:{UID}",
            "--security-opt", "no-new-privileges"]


def run(name, *args, env=None, secrets=(), port=None):
    """Starts a detached container of the image; returns the host port of its 8080."""
    port = port or free_port()
    cmd = ["run", "-d", "--name", PREFIX + name, *ULIMITS, *hardened(),
           "-p", f"127.0.0.1:{port}:8080"]
    for key, value in (env or {}).items():
        cmd += ["-e", f"{key}={value}"]
    if secrets:
        # podman 4.3 cannot create a secret's mount point on a read-only root; Docker and
        # Kubernetes can. A tmpfs at /run/secrets gives it one.
        cmd += ["--tmpfs", "/run/secrets"]
    for sec, target in secrets:
        cmd += ["--secret", f"{sec},target=/run/secrets/{target},uid={UID},mode=0400"]
    cmd += list(args) + [IMAGE]
    podman(*cmd)
    return port


def logs(name):
    out = podman("logs", PREFIX + name, check=False)
    return out.stdout + out.stderr


def wait_log(name, text, timeout=5):
    """The container's log once it holds `text` (arrayd writes its lines every 100 ms), or
    the log as it is after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        log = logs(name)
        if text in log or time.monotonic() > deadline:
            return log
        time.sleep(0.1)


def state(name):
    """(running, exit code) of a container."""
    out = podman("inspect", PREFIX + name, "--format",
                 "{{.State.Running}} {{.State.ExitCode}}").stdout.split()
    return out[0] == "true", int(out[1])


def wait_exit(name, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running, code = state(name)
        if not running:
            return code
        time.sleep(0.1)
    raise AssertionError(f"{name} still running after {timeout} s:\n{logs(name)[-3000:]}")


def get(port, path, headers=None, method="GET", body=None, timeout=10):
    """One request on a fresh connection: (status, headers dict, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def wait_ready(port, timeout=30, name=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            status, _, _ = get(port, "/readyz", timeout=2)
            if status == 200:
                return
            last = status
        except OSError as e:
            last = e
        time.sleep(0.1)
    extra = logs(name)[-3000:] if name else ""
    raise AssertionError(f"port {port} not ready after {timeout} s ({last})\n{extra}")


def make_data_dir(parent, big_bytes=0):
    """A world-readable copy of the sample data/ under `parent` (the container's uid reads
    it), plus `big.npy`, a sparse float32 array of about `big_bytes`, when asked."""
    data = Path(parent) / "data"
    shutil.copytree(ROOT / "data", data)
    if big_bytes:
        rows = max(1, big_bytes // (4 * 16384))
        arr = np.lib.format.open_memmap(data / "big.npy", mode="w+", dtype="<f4",
                                        shape=(rows, 16384))
        # A few values that are not zero, so a wrong offset shows.
        arr[0, :4] = [1, 2, 3, 4]
        arr[-1, -1] = 5
        arr.flush()
        del arr
    for dirpath, dirs, files in os.walk(data):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    os.chmod(parent, 0o755)
    return data


class Check:
    """Counts passed and failed checks and prints one line each."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def __call__(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"  ok    {what}", flush=True)
        else:
            self.failed += 1
            print(f"  FAIL  {what}: {detail}", flush=True)
        return ok

    def summary(self, label):
        print(f"{label}: {self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0
