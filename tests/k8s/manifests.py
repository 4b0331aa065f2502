"""The rendered manifests: `kubectl kustomize` over each kustomization, as a cluster gets them."""

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.processes import unavailable

REPO = Path(__file__).resolve().parent.parent.parent
KUSTOMIZATIONS = {
    "local": REPO / "deploy/k8s/overlays/local",
    "production": REPO / "deploy/k8s/overlays/production",
    "kserve": REPO / "deploy/kserve",
}

Object = dict[str, Any]


def render(directory: Path) -> list[Object]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        unavailable("kubectl is not installed", "the Kubernetes manifest checks need its kustomize")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def named(objects: list[Object], kind: str, name: str) -> Object:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(obj: Object) -> Object | None:
    """The pod an object runs, wherever its kind keeps it; None for kinds that run none."""
    spec: Object = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    if obj["kind"] == "ServingRuntime":
        return spec
    template: Object | None = spec.get("template", {}).get("spec")
    return template


def containers(obj: Object) -> Iterator[tuple[Object, Object]]:
    """(pod spec, container) for every container and init container an object runs."""
    pod = pod_spec(obj)
    if pod is not None:
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            yield pod, container
