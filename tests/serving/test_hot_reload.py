"""Hot reload from the model directory: the API follows the `current` pointer by itself.

Each test publishes into a model directory of its own (never the session champion's),
the way the trainer does: a complete bundle under `versions/`, then one atomic swap of
`current`. The API must pick up good bundles without a restart, keep serving the
previous model when a bundle is broken, and never drop a request during a swap.
"""

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from irisops import bundle
from irisops.bundle import FOREST_FILE, METADATA_FILE, MODEL_FILE, BundleMetadata, ModelFiles
from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import SEED_BODY, Service, environment, serving_version, wait_for
from tests.serving.publishing import (
    RELOAD_TIMEOUT,
    as_version,
    champion_bundle,
    publish,
    truncated_onnx,
    write_forest,
)


def get_json(service: Service, path: str) -> tuple[int, Any]:
    response = httpx.get(service.url + path, timeout=10)
    return response.status_code, response.json()


def predict(service: Service) -> httpx.Response:
    return httpx.post(service.url + "/predict", content=SEED_BODY, timeout=10)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return (tmp_path / "model_data").resolve()


@pytest.fixture
def serving_v1(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, model_dir: Path
) -> Service:
    """An API on a model directory of its own, serving a copy of the champion (version 1)."""
    publish(model_dir, *champion_bundle(champion))
    service = api_factory.start(tracking.env(model_dir), ready_path="/ready")
    assert get_json(service, "/ready")[1]["model_version"] == "1"
    return service


def test_empty_model_dir_then_first_publish(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, model_dir: Path
) -> None:
    model_dir.mkdir()
    service = api_factory.start(tracking.env(model_dir))

    # Alive but not ready, and saying why.
    assert get_json(service, "/health") == (200, {"status": "ok"})
    status, ready = get_json(service, "/ready")
    assert status == 503
    assert ready["status"] == "not ready"
    assert ready["model_version"] is None
    assert "no model published yet" in ready["reason"]
    assert str(model_dir) in ready["reason"]
    refused = predict(service)
    assert refused.status_code == 503
    assert "no model published yet" in refused.json()["detail"]
    assert str(model_dir) in refused.json()["detail"]
    batch = httpx.post(service.url + "/predict/batch", json={"instances": []}, timeout=10)
    assert batch.status_code == 503
    status, info = get_json(service, "/model")
    assert status == 200
    assert info["version"] is None
    assert info["metadata"] is None

    # The first model published is picked up without a restart.
    publish(model_dir, *champion_bundle(champion))
    wait_for(serving_version(service, "1"), timeout=RELOAD_TIMEOUT)
    answer = predict(service)
    assert answer.status_code == 200, answer.text
    assert answer.json()["prediction"] == "setosa"
    assert answer.json()["model_version"] == "1"
    assert service.process.poll() is None


def test_missing_model_dir_is_not_fatal(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, model_dir: Path
) -> None:
    """The directory may not exist yet (a volume the trainer has not written to)."""
    service = api_factory.start(tracking.env(model_dir))
    status, ready = get_json(service, "/ready")
    assert status == 503
    assert str(model_dir) in ready["reason"]
    publish(model_dir, *champion_bundle(champion))
    wait_for(serving_version(service, "1"), timeout=RELOAD_TIMEOUT)


@dataclass
class Hammer:
    """A client thread posting the documented request until told to stop (or a bounded count)."""

    url: str
    max_requests: int = 2_000
    max_seconds: float = 10.0
    versions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def count(self) -> int:
        return sum(self.versions.values()) + len(self.failures)

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=10) as client:
            while (
                not self.stop.is_set()
                and self.count < self.max_requests
                and time.monotonic() < deadline
            ):
                try:
                    response = client.post(self.url + "/predict", content=SEED_BODY)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text}")
                else:
                    self.versions[response.json()["model_version"]] += 1


def test_new_bundle_is_swapped_in_without_dropping_requests(
    serving_v1: Service, champion: Champion, model_dir: Path
) -> None:
    files, metadata = champion_bundle(champion)
    hammer = Hammer(serving_v1.url)
    thread = threading.Thread(target=hammer.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: hammer.count >= 50, timeout=RELOAD_TIMEOUT)
        publish(model_dir, files, as_version(metadata, "99"))
        wait_for(lambda: hammer.versions["99"] >= 50 or not thread.is_alive(), RELOAD_TIMEOUT)
    finally:
        hammer.stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()

    assert hammer.failures == []
    assert set(hammer.versions) == {"1", "99"}, hammer.versions
    status, info = get_json(serving_v1, "/model")
    assert status == 200
    assert info["version"] == "99"
    assert info["metadata"]["version"] == "99"
    assert info["reloads"] == 2
    assert predict(serving_v1).json()["model_version"] == "99"
    assert serving_v1.process.poll() is None, "swapped without a restart"


def test_rollback_by_pointing_current_at_an_older_bundle(
    serving_v1: Service, champion: Champion, model_dir: Path
) -> None:
    files, metadata = champion_bundle(champion)
    (original,) = (model_dir / bundle.VERSIONS).iterdir()
    publish(model_dir, files, as_version(metadata, "2"))
    wait_for(serving_version(serving_v1, "2"), timeout=RELOAD_TIMEOUT)
    bundle.activate(model_dir, original)
    wait_for(serving_version(serving_v1, "1"), timeout=RELOAD_TIMEOUT)
    assert predict(serving_v1).json()["model_version"] == "1"


def test_swap_is_logged(serving_v1: Service, champion: Champion, model_dir: Path) -> None:
    files, metadata = champion_bundle(champion)
    publish(model_dir, files, as_version(metadata, "2"))
    wait_for(serving_version(serving_v1, "2"), timeout=RELOAD_TIMEOUT)
    # The line follows the swap (after the heap is settled), so /ready can see it first.
    wait_for(lambda: "now serving model version 2" in serving_v1.output(), timeout=5)


# --- Broken bundles ------------------------------------------------------------------------


def missing_metadata(directory: Path, metadata: BundleMetadata, files: ModelFiles) -> None:
    (directory / MODEL_FILE).write_bytes(files.onnx)
    write_forest(directory, files)


def missing_model(directory: Path, metadata: BundleMetadata, files: ModelFiles) -> None:
    (directory / METADATA_FILE).write_text(metadata.model_dump_json())
    write_forest(directory, files)


def missing_forest(directory: Path, metadata: BundleMetadata, files: ModelFiles) -> None:
    (directory / METADATA_FILE).write_text(metadata.model_dump_json())
    (directory / MODEL_FILE).write_bytes(files.onnx)


def tampered_forest(directory: Path, metadata: BundleMetadata, files: ModelFiles) -> None:
    """One byte of the node arrays changed after the checksum was taken."""
    assert files.forest is not None
    (directory / METADATA_FILE).write_text(metadata.model_dump_json())
    (directory / MODEL_FILE).write_bytes(files.onnx)
    middle = len(files.forest) // 2
    flipped = files.forest[:middle] + bytes([files.forest[middle] ^ 1]) + files.forest[middle + 1 :]
    (directory / FOREST_FILE).write_bytes(flipped)


def garbage_metadata(directory: Path, metadata: BundleMetadata, files: ModelFiles) -> None:
    (directory / METADATA_FILE).write_text("{this is not json")
    (directory / MODEL_FILE).write_bytes(files.onnx)


def metadata_missing_fields(directory: Path, metadata: BundleMetadata, files: ModelFiles) -> None:
    fields = json.loads(metadata.model_dump_json())
    del fields["class_names"]
    (directory / METADATA_FILE).write_text(json.dumps(fields))
    (directory / MODEL_FILE).write_bytes(files.onnx)


def not_an_onnx_model(directory: Path, metadata: BundleMetadata, files: ModelFiles) -> None:
    """An ONNX-only bundle (as made before forest.npz), checksum right, content wrong:
    onnxruntime, which serves such bundles, must refuse it."""
    garbage = b"not an onnx model" * 100
    onnx_only = {"sha256": bundle.sha256_of(garbage), "forest_sha256": None}
    (directory / METADATA_FILE).write_text(metadata.model_copy(update=onnx_only).model_dump_json())
    (directory / MODEL_FILE).write_bytes(garbage)


def not_a_forest(directory: Path, metadata: BundleMetadata, files: ModelFiles) -> None:
    """Checksum right, content wrong: the forest file's reader must refuse it."""
    garbage = b"not node arrays" * 100
    update = {"forest_sha256": bundle.sha256_of(garbage)}
    (directory / METADATA_FILE).write_text(metadata.model_copy(update=update).model_dump_json())
    (directory / MODEL_FILE).write_bytes(files.onnx)
    (directory / FOREST_FILE).write_bytes(garbage)


def wrong_examples(directory: Path, metadata: BundleMetadata, files: ModelFiles) -> None:
    """A model that does not reproduce the probabilities recorded when it was trained."""
    flipped = [list(reversed(row)) for row in metadata.example_probabilities]
    broken = metadata.model_copy(update={"example_probabilities": flipped})
    (directory / METADATA_FILE).write_text(broken.model_dump_json())
    (directory / MODEL_FILE).write_bytes(files.onnx)
    write_forest(directory, files)


BROKEN_BUNDLES = [
    pytest.param(truncated_onnx, "does not match its sha256 checksum", id="truncated-onnx"),
    pytest.param(missing_metadata, "metadata.json is missing", id="missing-metadata"),
    pytest.param(missing_model, "model.onnx is missing", id="missing-model"),
    pytest.param(missing_forest, "forest.npz is missing", id="missing-forest"),
    pytest.param(tampered_forest, "forest.npz in", id="tampered-forest"),
    pytest.param(garbage_metadata, "invalid metadata.json", id="garbage-metadata"),
    pytest.param(metadata_missing_fields, "class_names", id="incomplete-metadata"),
    pytest.param(not_an_onnx_model, "cannot be loaded by onnxruntime", id="not-onnx"),
    pytest.param(not_a_forest, "forest.npz is not an .npz archive", id="not-a-forest"),
    pytest.param(wrong_examples, "does not reproduce", id="wrong-examples"),
]


@pytest.mark.parametrize(("breaker", "reason"), BROKEN_BUNDLES)
def test_broken_bundle_keeps_the_previous_model(
    serving_v1: Service,
    champion: Champion,
    model_dir: Path,
    breaker: Callable[[Path, BundleMetadata, ModelFiles], None],
    reason: str,
) -> None:
    files, metadata = champion_bundle(champion)
    broken = model_dir / bundle.VERSIONS / "v7-broken"
    broken.mkdir()
    breaker(broken, as_version(metadata, "7"), files)
    bundle.activate(model_dir, broken)

    def error_reported() -> bool:
        return get_json(serving_v1, "/model")[1]["last_error"] is not None

    wait_for(error_reported, timeout=RELOAD_TIMEOUT)
    status, info = get_json(serving_v1, "/model")
    assert status == 200
    assert reason in info["last_error"]
    assert info["version"] == "1"
    status, ready = get_json(serving_v1, "/ready")
    assert status == 200, "still ready: the previous model keeps serving"
    assert ready["model_version"] == "1"
    assert reason in ready["reason"]
    answer = predict(serving_v1)
    assert answer.status_code == 200
    assert answer.json()["model_version"] == "1"
    log = serving_v1.output()
    assert "model reload failed, still serving version 1" in log
    assert reason in log
    assert log.count("model reload failed") == 1, "the same failure is logged once, not per poll"

    # A good bundle afterwards is picked up and clears the error.
    publish(model_dir, files, as_version(metadata, "8"))
    wait_for(serving_version(serving_v1, "8"), timeout=RELOAD_TIMEOUT)
    status, info = get_json(serving_v1, "/model")
    assert info["last_error"] is None
    assert get_json(serving_v1, "/ready")[1]["reason"] is None
    assert predict(serving_v1).json()["model_version"] == "8"


def test_broken_first_bundle_is_not_ready_with_the_reason(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, model_dir: Path
) -> None:
    files, metadata = champion_bundle(champion)
    broken = model_dir / bundle.VERSIONS / "v1-broken"
    broken.mkdir(parents=True)
    truncated_onnx(broken, metadata, files)
    bundle.activate(model_dir, broken)
    service = api_factory.start(tracking.env(model_dir))
    status, ready = get_json(service, "/ready")
    assert status == 503
    assert "no model loaded" in ready["reason"]
    assert "sha256" in ready["reason"]
    refused = predict(service)
    assert refused.status_code == 503
    assert "sha256" in refused.json()["detail"]

    publish(model_dir, files, metadata)
    wait_for(serving_version(service, "1"), timeout=RELOAD_TIMEOUT)
    assert get_json(service, "/model")[1]["last_error"] is None


# --- What the serving process loads ----------------------------------------------------------

NO_TRAINING_STACK = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from starlette.testclient import TestClient

    import irisops.cli  # what `irisops serve` loads before starting uvicorn
    import uvicorn
    from irisops.config import Settings
    from irisops.serving.app import create_app

    app = create_app(Settings(model_dir=Path(sys.argv[1])))
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
        response = client.post("/predict", content=b'{"features":[5.1,3.5,1.4,0.2]}')
        assert response.status_code == 200, response.text
        assert client.get("/model").status_code == 200
    heavy = {"sklearn", "pandas", "mlflow", "matplotlib", "skl2onnx", "onnx", "scipy"}
    print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
    """
)


def test_serving_from_the_model_dir_never_imports_the_training_stack(
    champion: Champion, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_TRAINING_STACK, str(champion.model_dir)],
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
