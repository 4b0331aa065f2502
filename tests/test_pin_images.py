"""The release step that pins the Kubernetes manifests to the images a release pushed."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.processes import unavailable

REPO = Path(__file__).resolve().parent.parent
API = "ghcr.io/acme/irisops/api@sha256:" + "a1" * 32
TRAINER = "ghcr.io/acme/irisops/trainer@sha256:" + "b2" * 32


def copy_of_the_project(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "deploy", tmp_path / "deploy")
    (tmp_path / "ci").mkdir()
    shutil.copy(REPO / "ci" / "pin_images.py", tmp_path / "ci")
    return tmp_path


def pin(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = root / "ci" / "pin_images.py"
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=False
    )


def images(directory: Path) -> set[str]:
    kubectl = shutil.which("kubectl") or unavailable(
        "kubectl is not installed", "the pinning test renders the manifests with its kustomize"
    )
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    ).stdout
    found = set()
    for obj in yaml.safe_load_all(out):
        spec = (obj or {}).get("spec", {})
        spec = spec.get("jobTemplate", {}).get("spec", spec)
        pod = spec if obj["kind"] == "ServingRuntime" else spec.get("template", {}).get("spec", {})
        found |= {c["image"] for c in pod.get("containers", [])}
    return found


def test_every_overlay_and_the_kserve_runtime_get_the_pushed_digests(tmp_path: Path) -> None:
    root = copy_of_the_project(tmp_path)
    result = pin(root, "v1.2.3", API, TRAINER)
    assert result.returncode == 0, result.stderr
    api = "ghcr.io/acme/irisops/api:1.2.3@sha256:" + "a1" * 32
    trainer = "ghcr.io/acme/irisops/trainer:1.2.3@sha256:" + "b2" * 32
    for overlay in ("local", "production"):
        assert images(root / "deploy" / "k8s" / "overlays" / overlay) == {api, trainer}
    assert images(root / "deploy" / "kserve") == {api}


def test_only_the_image_entries_change(tmp_path: Path) -> None:
    root = copy_of_the_project(tmp_path)
    before = (root / "deploy/k8s/base/kustomization.yaml").read_text().splitlines()
    assert pin(root, "v1.2.3", API, TRAINER).returncode == 0
    after = (root / "deploy/k8s/base/kustomization.yaml").read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert [b.split(":")[0].strip() for _, b in changed] == ["newName", "newTag", "digest"] * 2


def test_refuses_what_is_not_a_release(tmp_path: Path) -> None:
    root = copy_of_the_project(tmp_path)
    original = (root / "deploy/kserve/kustomization.yaml").read_text()
    for args in (
        ("latest", API, TRAINER),
        ("v1.2.3", "ghcr.io/acme/irisops/api:1.2.3", TRAINER),
        ("v1.2.3", API),
    ):
        result = pin(root, *args)
        assert result.returncode != 0, args
        assert result.stderr.startswith("error: "), result.stderr
    assert (root / "deploy/kserve/kustomization.yaml").read_text() == original
