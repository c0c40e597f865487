"""deploy/compose.yaml run with podman-compose (from PyPI) as a user runs it: up, probe,
register with the admin token from the compose secret, stop (exit 0 after the drain), up
again on the same volume (the registration survived), down."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pod

PROJECT = pod.PREFIX + "compose"
TOKEN = "ct-compose-admin-token"


def main():
    check = pod.Check()
    pod.cleanup()
    tmp = tempfile.TemporaryDirectory(prefix="arrayd-ct-compose-")
    tmpdir = Path(tmp.name)
    data = pod.make_data_dir(tmpdir)
    secret = tmpdir / "arrayd-admin"
    secret.write_text(TOKEN + "\n")
    os.chmod(secret, 0o644)
    # podman-compose calls plain `podman`: the runtime, cgroup manager and ulimits this
    # machine needs come from a containers.conf instead of flags.
    conf = tmpdir / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=10000:10000", '
                    '"nproc=1000:1000"]\n[engine]\nruntime = "runc"\n'
                    'cgroup_manager = "cgroupfs"\n')
    port = pod.free_port()
    env = {**os.environ, "CONTAINERS_CONF": str(conf), "ARRAYD_IMAGE": pod.IMAGE,
           "ARRAYD_PORT": str(port), "ARRAYD_DATA": str(data),
           "ARRAYD_ADMIN_SECRET": str(secret)}
    compose = [str(Path(sys.executable).parent / "podman-compose"), "-p", PROJECT,
               "-f", str(pod.ROOT / "deploy/compose.yaml")]

    def run(*args):
        out = subprocess.run(compose + list(args), env=env, text=True, timeout=180,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if out.returncode != 0:
            raise AssertionError(f"podman-compose {' '.join(args)}: {out.returncode}\n"
                                 f"{out.stdout[-2000:]}")
        return out.stdout

    name = f"{PROJECT}_arrayd_1"
    try:
        print("compose: podman-compose up", flush=True)
        run("up", "-d")
        pod.wait_ready(port)
        info = pod.podman("inspect", name, "--format",
                          "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}").stdout.split()
        check(info == ["true", "10001:10001"], "read-only root and uid 10001 from the file",
              str(info))
        check(pod.get(port, "/healthz")[0] == 200, "/healthz 200")
        reg = json.dumps({"name": "ct.compose", "file": "signal.npy"}).encode()
        status = pod.get(port, "/v1/datasets", method="POST", body=reg, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})[0]
        check(status == 201, "registration with the token of the compose secret", str(status))
        run("stop")
        code = pod.podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip()
        check(code == "0", "podman-compose stop: exit 0 after the drain", code)
        run("up", "-d")
        pod.wait_ready(port)
        check(pod.get(port, "/v1/datasets/ct.compose")[0] == 200,
              "the registration survived on the compose volume")
        run("down", "-v")
        gone = pod.podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
        check(name not in gone, "podman-compose down removed the container")
    finally:
        subprocess.run(compose + ["down", "-v"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=180)
        pod.cleanup()
        tmp.cleanup()
    return check.summary("container-compose")


if __name__ == "__main__":
    sys.exit(main())
