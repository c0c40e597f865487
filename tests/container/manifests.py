"""deploy/kubernetes/ validated with kubernetes-validate (strict, against the newest
Kubernetes schema it ships), then checked against what the image and the server expect:
the port, the probes, the uid, the drain fitting in the termination grace, the token files
and the volumes the Deployment mounts."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

import pod

KUBE = pod.ROOT / "deploy/kubernetes"


def main():
    check = pod.Check()
    files = sorted(p for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")
    validate = Path(sys.executable).parent / "kubernetes-validate"
    out = subprocess.run([str(validate), "--strict", *map(str, files)], text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    print(out.stdout.rstrip(), flush=True)
    check(out.returncode == 0 and "passed" in out.stdout,
          f"kubernetes-validate --strict: {len(files)} files", out.stdout[-1000:])

    docs = [d for p in files for d in yaml.safe_load_all(p.read_text()) if d]
    kinds = {d["kind"]: d for d in docs}
    listed = yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"]
    check(sorted(listed) == sorted(p.name for p in files),
          "kustomization.yaml lists every manifest", str(listed))
    for kind in ("Deployment", "Service", "PersistentVolumeClaim", "Secret",
                 "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        check(kind in kinds, f"a {kind}")

    dockerfile = (pod.ROOT / "Dockerfile").read_text()
    uid = int(re.search(r"^USER (\d+)", dockerfile, re.M).group(1))
    port = int(re.search(r"^EXPOSE (\d+)", dockerfile, re.M).group(1))
    grace = int(re.search(r"ARRAYD_SHUTDOWN_GRACE_SECS=(\d+)", dockerfile).group(1))

    pod_spec = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    sc = {**pod_spec["securityContext"], **container["securityContext"]}
    check(sc.get("runAsUser") == uid and sc.get("runAsNonRoot") is True,
          f"runs as the image's uid {uid}, non-root", str(sc))
    check(sc.get("readOnlyRootFilesystem") is True and sc["capabilities"]["drop"] == ["ALL"]
          and sc.get("allowPrivilegeEscalation") is False,
          "read-only root, no capabilities, no privilege escalation", str(sc))
    check(container["ports"][0]["containerPort"] == port, f"container port {port}")
    check(container["readinessProbe"]["httpGet"]["path"] == "/readyz"
          and container["livenessProbe"]["httpGet"]["path"] == "/healthz",
          "readiness on /readyz, liveness on /healthz")
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    sleep = int(pre_stop[-1])
    drain = int(env.get("ARRAYD_SHUTDOWN_GRACE_SECS", grace))
    check(sleep > 0 and pod_spec["terminationGracePeriodSeconds"] > sleep + drain,
          f"terminationGracePeriodSeconds > preStop {sleep} s + drain {drain} s",
          str(pod_spec["terminationGracePeriodSeconds"]))
    check(container["resources"]["requests"].keys() >= {"cpu", "memory"}, "resource requests")
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    check(mounts["data"]["mountPath"] == "/data" and mounts["data"].get("readOnly") is True
          and volumes["data"]["persistentVolumeClaim"].get("readOnly") is True,
          "/data mounted read-only")
    check(mounts["state"]["mountPath"] == "/state", "/state mounted")
    claims = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PersistentVolumeClaim"}
    data_claim = claims[volumes["data"]["persistentVolumeClaim"]["claimName"]]
    state_claim = claims[volumes["state"]["persistentVolumeClaim"]["claimName"]]
    check(data_claim["spec"]["accessModes"] == ["ReadOnlyMany"], "the data claim is ReadOnlyMany")
    check(state_claim["spec"]["accessModes"] == ["ReadWriteMany"],
          "the state claim is ReadWriteMany (replicas share it)")
    secret = kinds["Secret"]
    token_dir = mounts["tokens"]["mountPath"]
    for var in ("ARRAYD_READ_TOKEN_FILE", "ARRAYD_ADMIN_TOKEN_FILE"):
        key = env[var].removeprefix(token_dir + "/")
        check(env[var].startswith(token_dir + "/") and key in secret["stringData"],
              f"{var} names a key of the Secret", env[var])
    check(volumes["tokens"]["secret"]["secretName"] == secret["metadata"]["name"],
          "the token volume is the Secret")
    labels = kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    for kind in ("Service", "PodDisruptionBudget"):
        spec = kinds[kind]["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        check(selector == labels, f"the {kind} selects the Deployment's pods", str(selector))
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    check(target["name"] == kinds["Deployment"]["metadata"]["name"],
          "the autoscaler scales the Deployment")
    return check.summary("k8s-manifests")


if __name__ == "__main__":
    sys.exit(main())
