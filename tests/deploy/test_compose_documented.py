"""The README's Docker Compose commands, run verbatim on a real engine, from nothing.

One deployment: `docker compose up -d mlflow`, then `docker compose up --build trainer`,
as the README's first Compose block says (only the published ports differ, so that tests
never collide with a stack on 5000/8000). The tests then check what that deployment is
and does: the curl commands, one image build, the containers' hardening, a retrain.
"""

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import deployed
from tests.deploy.engine import REPO, Deployment, build_lock
from tests.processes import wait_for

pytestmark = pytest.mark.timeout(900)
README = REPO / "README.md"
UID = "10001"
NOISE = ("Bad git executable", "Failed to resolve installed pip version", "No module named pip")


def documented_commands(text: str, first: str = "docker compose up -d mlflow") -> list[str]:
    """The command lines of the README's bash block that starts the stack with `first`."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    block = next(b for b in blocks if first in b)
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@dataclass
class Documented:
    deployment: Deployment
    commands: list[str]
    results: dict[str, subprocess.CompletedProcess[str]]
    mlflow_before_trainer: str

    def result(self, prefix: str) -> subprocess.CompletedProcess[str]:
        return next(r for command, r in self.results.items() if command.startswith(prefix))

    def curl(self, prefix: str) -> subprocess.CompletedProcess[str]:
        """The README's curl command, sent to this deployment's published API port."""
        command = next(c for c in self.commands if c.startswith(prefix))
        port = self.deployment.ports["API_PORT"]
        return self.deployment.shell(command.replace("localhost:8000", f"localhost:{port}"))


@pytest.fixture(scope="module")
def documented(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Documented]:
    commands = documented_commands(README.read_text())
    with deployed(tmp_path_factory, "documented") as deployment:
        first, then = (c for c in commands if c.startswith("docker compose"))
        with build_lock():  # the first build fills the layer cache for the others
            results = {first: deployment.shell(first)}
        mlflow = deployment.container("mlflow")
        results[then] = deployment.shell(then)
        yield Documented(deployment, commands, results, mlflow)


def served_version(api: str) -> str | None:
    response = httpx.get(f"{api}/ready", timeout=10)
    return str(response.json()["model_version"]) if response.status_code == 200 else None


def test_the_readme_starts_with_mlflow_then_the_trainer(documented: Documented) -> None:
    compose = [c.split("#")[0].strip() for c in documented.results]
    assert compose == ["docker compose up -d mlflow", "docker compose up --build trainer"]


def test_up_d_mlflow_builds_the_image_and_the_server_turns_healthy(
    documented: Documented,
) -> None:
    result = documented.result("docker compose up -d mlflow")
    assert result.returncode == 0, result.stderr
    documented.deployment.wait_healthy("mlflow")


def test_up_build_trainer_trains_once_and_exits_0(documented: Documented) -> None:
    result = documented.result("docker compose up --build trainer")
    assert result.returncode == 0, result.stdout + result.stderr
    assert documented.deployment.wait_exited("trainer") == 0
    assert "Decision: promoted (no champion yet)" in result.stdout


def test_the_trainer_prints_no_warnings_about_its_image(documented: Documented) -> None:
    output = documented.result("docker compose up --build trainer").stdout
    assert not [noise for noise in NOISE if noise in output], output


def test_the_tracking_server_is_not_recreated_by_the_trainers_build(
    documented: Documented,
) -> None:
    deployment = documented.deployment
    assert deployment.container("mlflow") == documented.mlflow_before_trainer
    assert deployment.inspect("mlflow")["Image"] == deployment.inspect("trainer")["Image"]


def test_one_image_per_dockerfile_target_and_nothing_dangling(documented: Documented) -> None:
    name = documented.deployment.name
    label = f"label=com.docker.compose.project={name}"
    listing = subprocess.run(
        [
            "docker",
            "image",
            "ls",
            "--all",
            "--filter",
            label,
            "--format",
            "{{.Repository}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(listing.stdout.split()) == [f"{name}-api", f"{name}-trainer"]


def test_the_readme_curl_commands_answer_as_it_shows(documented: Documented) -> None:
    api = documented.deployment.api
    wait_for(lambda: served_version(api) is not None, timeout=30, interval=0.5)
    health = documented.curl("curl http://localhost:8000/health")
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["status"] == "ok"
    prediction = documented.curl("curl -X POST http://localhost:8000/predict")
    assert prediction.returncode == 0, prediction.stderr
    assert json.loads(prediction.stdout)["prediction"] == "setosa"


# --- hardening, read from the running containers -------------------------------------

PROCESSES = """
import json, pathlib
found = {}
for status in pathlib.Path("/proc").glob("[0-9]*/status"):
    fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
    found[status.parent.name] = {k: fields[k].split() for k in
        ("Name", "Uid", "CapPrm", "CapEff", "CapBnd", "NoNewPrivs")}
print(json.dumps(found))
"""


@pytest.mark.parametrize("service", ["mlflow", "api"])
def test_every_process_runs_as_uid_10001_with_no_capabilities(
    documented: Documented, service: str
) -> None:
    processes = json.loads(documented.deployment.python(service, PROCESSES))
    assert len(processes) >= 2, "tini and the irisops process at least"
    for pid, fields in processes.items():
        assert set(fields["Uid"]) == {UID}, (pid, fields)
        for capabilities in ("CapPrm", "CapEff", "CapBnd"):
            assert int(fields[capabilities][0], 16) == 0, (pid, fields)
        assert fields["NoNewPrivs"] == ["1"], (pid, fields)


def test_model_data_is_read_only_in_the_api(documented: Documented) -> None:
    mounts = {m["Destination"]: m for m in documented.deployment.inspect("api")["Mounts"]}
    assert mounts["/data/model_data"]["RW"] is False
    attempt = documented.deployment.exec("api", "python", "-c", WRITE)
    assert attempt.returncode != 0
    assert "Read-only file system" in attempt.stderr


WRITE = "open('/data/model_data/intruder', 'w')"
CURRENT = """
import hashlib, json, pathlib
current = pathlib.Path("/data/model_data/current")
target = current.resolve(strict=True)
metadata = json.loads((target / "metadata.json").read_text())
digest = hashlib.sha256((target / "model.onnx").read_bytes()).hexdigest()
print(json.dumps({"link": str(current.readlink()), "target": str(target),
                  "matches": digest == metadata["sha256"]}))
"""


def test_the_current_pointer_resolves_inside_the_api_container(documented: Documented) -> None:
    pointer = json.loads(documented.deployment.python("api", CURRENT))
    assert not Path(pointer["link"]).is_absolute(), "relative, so any mount point works"
    assert pointer["target"].startswith("/data/model_data/versions/")
    assert pointer["matches"]


# --- a retrain while the stack runs ----------------------------------------------------


def test_a_retrain_is_served_by_the_running_api_without_a_restart(
    documented: Documented,
) -> None:
    deployment = documented.deployment
    wait_for(lambda: served_version(deployment.api) is not None, timeout=30, interval=0.5)
    before = deployment.inspect("api")
    result = deployment.compose("run", "--rm", "trainer", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    version = re.search(r"Version:\s+iris-classifier v(\d+)", result.stdout)
    assert version is not None and "Decision: promoted" in result.stdout, result.stdout
    wait_for(lambda: served_version(deployment.api) == version[1], timeout=30, interval=0.5)
    after = deployment.inspect("api")
    assert after["Id"] == before["Id"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert after["RestartCount"] == before["RestartCount"] == 0


# --- the images ----------------------------------------------------------------------

DISTRIBUTIONS = """
import importlib.metadata, json
print(json.dumps(sorted({d.metadata["Name"].lower() for d in importlib.metadata.distributions()})))
"""


def image_run(image: str, code: str) -> subprocess.CompletedProcess[str]:
    command = ["docker", "run", "--rm", "--entrypoint", "python", image, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def image_size(image: str) -> int:
    inspect = ["docker", "image", "inspect", "--format", "{{.Size}}", image]
    return int(subprocess.run(inspect, capture_output=True, text=True, check=True).stdout)


def test_the_api_image_has_no_training_stack_and_neither_image_has_pip(
    documented: Documented, figures: dict[str, object]
) -> None:
    deployment = documented.deployment
    api, trainer = f"{deployment.name}-api", f"{deployment.name}-trainer"
    installed = {
        image: set(json.loads(image_run(image, DISTRIBUTIONS).stdout)) for image in (api, trainer)
    }
    assert {"scikit-learn", "pandas", "mlflow", "scipy", "boto3"}.isdisjoint(installed[api])
    assert {"onnxruntime", "fastapi", "mlflow-skinny", "irisops"} <= installed[api]
    assert {"scikit-learn", "mlflow", "psycopg2-binary", "boto3"} <= installed[trainer]
    for image in (api, trainer):
        assert image_run(image, "import pip").returncode != 0, f"{image} ships pip"
    base = re.search(r"^ARG PYTHON_IMAGE=(.+)$", (REPO / "Dockerfile").read_text(), re.M)
    assert base is not None
    sizes = {name: image_size(image) for name, image in (("api", api), ("trainer", trainer))}
    added = {name: size - image_size(base[1]) for name, size in sizes.items()}
    figures["compose_image_sizes_mb"] = {
        **{name: round(size / 1e6, 1) for name, size in sizes.items()},
        **{f"{name}_above_base": round(size / 1e6, 1) for name, size in added.items()},
        "base": base[1],
    }
    assert added["api"] * 3 < added["trainer"], figures["compose_image_sizes_mb"]
