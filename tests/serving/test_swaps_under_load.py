"""Load while the champion changes: no request fails, and no response mixes two models.

Two genuinely different models (different forests, different probabilities) are
registered under a model name of this module's own. Clients hammer `/predict` and
`/predict/batch` while the champion flips between them, through the model directory
and through alias moves in registry mode. Every answer must come, whole, from
exactly one of the published models: its probabilities are checked against what that
model gives for the same rows.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from mlflow import MlflowClient

from irisops import bundle
from irisops.bundle import BundleMetadata, ModelFiles
from irisops.runtime import classifier
from tests.conftest import ApiFactory, Tracking
from tests.processes import irisops, serving_version, wait_for

MODEL = "iris-swap-test"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.7, 5.1, 1.6], [6.3, 2.8, 5.1, 1.5], [5.9, 3.0, 4.2, 1.5]]
SWAPS = 10
MAX_SECONDS = 80.0


@dataclass(frozen=True)
class Published:
    files: ModelFiles
    metadata: BundleMetadata
    probabilities: np.ndarray[Any, np.dtype[np.float32]]


@pytest.fixture(scope="module")
def models(tracking: Tracking, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Published]:
    """Versions 1 and 2 of MODEL: a 50-tree forest and a 3-tree, depth-2 one."""
    found: dict[str, Published] = {}
    for version, args in (
        ("1", ["--n-estimators", "50"]),
        ("2", ["--n-estimators", "3", "--max-depth", "2", "--force-promote"]),
    ):
        model_dir = tmp_path_factory.mktemp(f"swap_v{version}")
        result = irisops(
            "train", *args, env=tracking.env(model_dir, IRISOPS_REGISTERED_MODEL=MODEL)
        )
        assert result.returncode == 0, result.stderr
        _, metadata, files = bundle.read_current(model_dir)
        assert metadata.version == version
        rows = np.asarray(ROWS, dtype=np.float32)
        found[version] = Published(files, metadata, classifier(files).predict_proba(rows))
    assert not np.allclose(found["1"].probabilities, found["2"].probabilities, atol=1e-3)
    return found


@dataclass
class Load:
    """Client threads on /predict and /predict/batch, checking every answer as it comes."""

    url: str
    models: dict[str, Published]
    stop: threading.Event = field(default_factory=threading.Event)
    versions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, results: list[dict[str, Any]], rows: list[int], version: str) -> None:
        expected = self.models.get(version)
        if expected is None:
            raise AssertionError(f"version {version} was never published")
        for result, row in zip(results, rows, strict=True):
            if result["model_version"] != version:
                raise AssertionError(
                    f"one response, two versions: {version} and {result['model_version']}"
                )
            got = np.array(list(result["probabilities"].values()), dtype=np.float32)
            if not np.allclose(got, expected.probabilities[row], atol=1e-6):
                raise AssertionError(f"row {row} answered by a model other than v{version}")

    def single(self, client: httpx.Client, i: int) -> str:
        row = i % len(ROWS)
        response = client.post("/predict", json={"features": ROWS[row]})
        response.raise_for_status()
        body = response.json()
        self.check([body], [row], body["model_version"])
        return str(body["model_version"])

    def batch(self, client: httpx.Client, i: int) -> str:
        order = [(i + k) % len(ROWS) for k in range(len(ROWS))] * 25
        response = client.post("/predict/batch", json={"instances": [ROWS[r] for r in order]})
        response.raise_for_status()
        body = response.json()
        self.check(body["predictions"], order, body["model_version"])
        return str(body["model_version"])

    def client_loop(self, kind: Callable[[httpx.Client, int], str]) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = 0
            while not self.stop.is_set():
                try:
                    version = kind(client, i)
                except Exception as exc:  # every failure is recorded, none may happen
                    with self._lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                else:
                    with self._lock:
                        self.versions[version] += 1
                with self._lock:
                    self.requests += 1
                i += 1

    @contextmanager
    def running(self, clients: int = 2) -> Iterator["Load"]:
        threads = [
            threading.Thread(target=self.client_loop, args=(kind,), daemon=True)
            for kind in (self.single, self.batch)
            for _ in range(clients)
        ]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(30)


def assert_clean(load: Load, figures: dict[str, object], name: str) -> None:
    figures[name] = {"swaps": SWAPS, "requests": load.requests, "failures": len(load.failures)}
    assert load.failures == [], load.failures[:5]
    assert set(load.versions) == {"1", "2"}
    assert load.requests > 100


def test_swaps_through_the_model_directory(
    api_factory: ApiFactory,
    tracking: Tracking,
    models: dict[str, Published],
    tmp_path: Path,
    figures: dict[str, object],
) -> None:
    model_dir = tmp_path / "model_data"
    first = models["1"]
    bundle.activate(model_dir, bundle.stage(model_dir, first.files, first.metadata))
    service = api_factory.start(tracking.env(model_dir), ready_path="/ready")
    deadline = time.monotonic() + MAX_SECONDS
    with Load(service.url, models).running() as load:
        for swap in range(SWAPS):
            version = "2" if swap % 2 == 0 else "1"
            published = models[version]
            staged = bundle.stage(model_dir, published.files, published.metadata)
            bundle.activate(model_dir, staged)
            wait_for(serving_version(service, version), timeout=deadline - time.monotonic())
            time.sleep(0.3)  # let the clients see this version for a while
    assert_clean(load, figures, "swaps_model_directory")
    assert "now serving model version" in service.output()


def test_swaps_through_alias_moves_in_registry_mode(
    api_factory: ApiFactory,
    tracking: Tracking,
    models: dict[str, Published],
    tmp_path: Path,
    figures: dict[str, object],
) -> None:
    client = MlflowClient(tracking.uri)
    client.set_registered_model_alias(MODEL, "champion", "1")
    env = tracking.env(tmp_path / "unused", IRISOPS_MODEL_URI=f"models:/{MODEL}@champion")
    service = api_factory.start(env, ready_path="/ready")
    deadline = time.monotonic() + MAX_SECONDS
    with Load(service.url, models).running() as load:
        for swap in range(SWAPS):
            version = "2" if swap % 2 == 0 else "1"
            client.set_registered_model_alias(MODEL, "champion", version)
            wait_for(serving_version(service, version), timeout=deadline - time.monotonic())
            time.sleep(0.3)
    assert_clean(load, figures, "swaps_registry_alias")
