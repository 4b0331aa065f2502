"""The local overlay's containers, as rendered, run on a real Docker Engine.

No kubelet runs here, so each container of `deploy/k8s/overlays/local` is started with
`docker run` as the kubelet would start it: its image (built from this checkout, since
the manifests' digests are placeholders), its args, its environment with the Secret and
ConfigMap references resolved from the rendered objects, its security context (uid and
gid 10001, read-only root filesystem, every capability dropped, no privilege escalation,
the engine's default seccomp profile), its emptyDir volumes as tmpfs and its claim as a
volume, and the Service names as network aliases. That proves what the manifest checks
cannot: that the processes work inside those limits (nothing writes outside /tmp and
/data), that the train Job completes against the tracking server, that the API becomes
ready on the champion, and that each stops within its grace period on SIGTERM, the API as
PID 1 and the tracking server behind an init as `shareProcessNamespace` gives it.
"""

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.deploy.engine import LABEL, PREFIX, REPO, build_lock
from tests.k8s.manifests import KUSTOMIZATIONS, Object, named, render
from tests.processes import SEED_BODY, wait_for


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def checked(*args: str, timeout: float = 120) -> str:
    result = docker(*args, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args[:3])} ...:\n{result.stderr[-3000:]}"
    return result.stdout.strip()


@dataclass
class Cluster:
    """A network, a volume and two images standing in for a namespace and its registry."""

    project: str
    objects: list[Object]

    @property
    def network(self) -> str:
        return self.project

    def image(self, reference: str) -> str:
        target = "api" if "/api:" in reference else "trainer"
        return f"{self.project}-{target}"

    def env(self, container: Object) -> list[str]:
        """`-e NAME=value` for each variable, references resolved as the kubelet does."""
        found = []
        for var in container.get("env", []):
            value = var.get("value")
            source = var.get("valueFrom", {})
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                data = named(self.objects, "Secret", ref["name"])["data"][ref["key"]]
                value = base64.b64decode(data).decode()
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                value = named(self.objects, "ConfigMap", ref["name"])["data"][ref["key"]]
            found += ["-e", f"{var['name']}={value}"]
        for source in container.get("envFrom", []):
            assert source["secretRef"].get("optional"), "only optional secrets: none exist here"
        return found

    def run(self, obj: Object, alias: str | None, *extra: str) -> list[str]:
        """The `docker run` arguments for the first container of OBJ's pod."""
        spec = obj["spec"]
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        security = {**pod.get("securityContext", {}), **container["securityContext"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}  # the engine's default
        args = [
            "--label", f"{LABEL}={self.project}", "--network", self.network,
            "--user", f"{security['runAsUser']}:{security['runAsGroup']}",
            "--cap-drop", "ALL",
        ]  # fmt: skip
        if security["readOnlyRootFilesystem"]:
            args.append("--read-only")
        if security["allowPrivilegeEscalation"] is False:
            args += ["--security-opt", "no-new-privileges"]
        if pod.get("shareProcessNamespace"):
            args.append("--init")  # the pause container as PID 1
        if alias is not None:
            args += ["--network-alias", alias]
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if "emptyDir" in volume:
                args += ["--tmpfs", f"{mount['mountPath']}:rw,mode=1777"]
            else:
                claim = volume["persistentVolumeClaim"]["claimName"]
                args += ["--volume", f"{self.project}-{claim}:{mount['mountPath']}"]
        return [
            *args,
            *self.env(container),
            *extra,
            self.image(container["image"]),
            *container["args"],
        ]


@pytest.fixture(scope="module")
def cluster(engine: None) -> Iterator[Cluster]:
    project = f"{PREFIX}{os.getpid()}-k8s-pods"
    found = Cluster(project, render(KUSTOMIZATIONS["local"]))
    try:
        with build_lock():
            for target in ("api", "trainer"):
                checked(
                    "build", "--target", target, "--label", f"{LABEL}={project}",
                    "--tag", f"{project}-{target}", str(REPO), timeout=1800,
                )  # fmt: skip
        checked("network", "create", "--label", f"{LABEL}={project}", project)
        checked("volume", "create", "--label", f"{LABEL}={project}", f"{project}-mlflow-data")
        yield found
    finally:
        containers = docker("ps", "--all", "--quiet", "--filter", f"label={LABEL}={project}")
        if ids := containers.stdout.split():
            docker("rm", "--force", *ids)
        docker("network", "rm", project)
        docker("volume", "rm", "--force", f"{project}-mlflow-data")
        docker("image", "rm", "--force", f"{project}-api", f"{project}-trainer")


def logs(container: str) -> str:
    result = docker("logs", container)
    return result.stdout + result.stderr


def published(container: str, port: int) -> str:
    address = checked("port", container, f"{port}/tcp").splitlines()[0]
    return f"http://{address}"


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def stop(container: str, grace: int) -> tuple[int, float]:
    """`docker stop` with the pod's grace period: (exit code, seconds it took)."""
    started = time.monotonic()
    checked("stop", "--time", str(grace), container, timeout=grace + 30)
    took = time.monotonic() - started
    return int(checked("inspect", "--format", "{{.State.ExitCode}}", container)), took


def test_the_pods_work_inside_their_security_context_and_stop_in_their_grace_period(
    cluster: Cluster, figures: dict[str, Any]
) -> None:
    objects = cluster.objects
    mlflow = named(objects, "Deployment", "mlflow")
    tracking = checked(
        "run", "--detach", *cluster.run(mlflow, "mlflow", "--publish", "127.0.0.1::5000")
    )
    tracking_url = published(tracking, 5000)
    wait_for(lambda: answers(tracking_url + "/health"), timeout=180, interval=1)

    job = named(objects, "Job", "train")
    trainer = checked("run", "--detach", *cluster.run(job, None))
    assert checked("wait", trainer, timeout=900) == "0", logs(trainer)

    api_deployment = named(objects, "Deployment", "api")
    api = checked(
        "run", "--detach", *cluster.run(api_deployment, "api", "--publish", "127.0.0.1::8000")
    )
    api_url = published(api, 8000)
    wait_for(lambda: answers(api_url + "/ready"), timeout=180, interval=1)
    prediction = httpx.post(api_url + "/predict", content=SEED_BODY, timeout=10).json()
    assert (prediction["prediction"], prediction["model_version"]) == ("setosa", "1")

    api_grace = api_deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    tracking_grace = mlflow["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    api_exit, api_took = stop(api, api_grace)
    tracking_exit, tracking_took = stop(tracking, tracking_grace)
    figures["kubernetes_pods_on_docker_stop_seconds"] = {
        "api": round(api_took, 2),
        "api_grace": api_grace,
        "tracking": round(tracking_took, 2),
        "tracking_grace": tracking_grace,
    }
    assert api_exit == 0, logs(api)
    assert api_took < api_grace, "SIGTERM stopped the API as PID 1, before the SIGKILL"
    assert tracking_took < tracking_grace, "SIGTERM stopped the tracking server"
    assert tracking_exit != 137, "not killed at the end of the grace period"
    assert "Read-only file system" not in logs(api) + logs(tracking)
