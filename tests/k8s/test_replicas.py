"""Three API replicas behind a load balancer behave as the Kubernetes manifests promise.

No cluster: the same processes the pods run (tests/k8s/cluster.py): a tracking server,
three `irisops serve` replicas in registry mode polling every 2 s as in
deploy/k8s/base/api.yaml, and HAProxy health-checking `/ready` in front of them, as a
Service routes only to ready pods. Clients send predictions through it the whole time,
and every answer is checked: a 200, a model version that is one of the two registered,
and the probabilities of exactly that version. What each test measures is written to
test-artifacts/figures/kubernetes_*.json.

This module moves the champion of a model name of its own, on a tracking server of its
own (it restarts it), so no other module sees it.
"""

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from mlflow import MlflowClient

from irisops import bundle
from irisops.runtime import classifier
from tests.k8s.cluster import (
    POLL_INTERVAL,
    ROWS,
    Balancer,
    Load,
    Restartable,
    balancer,
    replica,
    tracking_server,
    tree_rss_mb,
)
from tests.k8s.manifests import KUSTOMIZATIONS, named, render
from tests.k8s.policy import quantity
from tests.processes import unavailable, wait_for

# Debian installs it in /usr/sbin, which not every PATH holds.
HAPROXY = (
    shutil.which("haproxy")
    or shutil.which("haproxy", path="/usr/sbin")
    or unavailable(
        "haproxy is not installed (make test installs Debian's)",
        "the replica tests need a real load balancer",
    )
)
MODEL = "iris-replicas-test"
REPLICAS = 3
# At most the requests in flight on the replica when it dies: one per client.
MAX_FAILED_ON_SIGKILL = 4
# Training two models and starting five servers comes before the first test.
pytestmark = pytest.mark.timeout(600)


@dataclass
class Stack:
    tracking: Restartable
    replicas: list[Restartable]
    balancer: Balancer
    expected: dict[str, np.ndarray[Any, np.dtype[np.float32]]]
    trainer_peak_rss_mb: float

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking.url)

    def champion(self) -> str:
        return str(self.client.get_model_version_by_alias(MODEL, "champion").version)

    def move_champion(self, version: str) -> float:
        """Moves the alias; returns when the registry has it."""
        self.client.set_registered_model_alias(MODEL, "champion", version)
        return time.monotonic()

    def load(self) -> Load:
        return Load(self.balancer.url, self.expected)

    def converge(self, version: str, since: float, timeout: float) -> dict[str, float]:
        """Seconds from SINCE until each replica's /ready names VERSION, asked of it directly."""
        reached: dict[str, float] = {}
        deadline = since + timeout
        while len(reached) < len(self.replicas) and time.monotonic() < deadline:
            for r in self.replicas:
                if r.name not in reached and serving(r) == version:
                    reached[r.name] = time.monotonic() - since
            time.sleep(0.05)
        assert len(reached) == len(self.replicas), f"only {sorted(reached)} reached v{version}"
        return reached

    def wait_routed(self, name: str) -> None:
        wait_for(lambda: self.balancer.status(name) == "UP", timeout=30, interval=0.05)


def serving(r: Restartable) -> str | None:
    try:
        response = httpx.get(r.url + "/ready", timeout=5)
    except httpx.HTTPError:
        return None
    return str(response.json().get("model_version")) if response.status_code == 200 else None


def train(tracking: Restartable, model_dir: Path, *args: str) -> tuple[str, Any, float]:
    """One `irisops train` run; returns its version, its probabilities on ROWS, its peak RSS."""
    env = {**tracking.env, "MLFLOW_TRACKING_URI": tracking.url}
    env.update(IRISOPS_REGISTERED_MODEL=MODEL, IRISOPS_MODEL_DIR=str(model_dir))
    command = [sys.executable, "-m", "irisops", "train", *args]
    log = model_dir.with_suffix(".log")
    with log.open("wb") as out:
        process = psutil.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, tree_rss_mb(process))
            time.sleep(0.1)
    assert process.returncode == 0, log.read_text()
    _, metadata, files = bundle.read_current(model_dir)
    rows = np.asarray(ROWS, dtype=np.float32)
    return str(metadata.version), classifier(files).predict_proba(rows), peak


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("replicas")
    tracking = tracking_server(home / "tracking")
    tracking.start()
    replicas = [
        replica(f"r{i}", home / f"r{i}", tracking.url, MODEL) for i in range(1, REPLICAS + 1)
    ]
    try:
        # Two really different forests: every answer shows which one gave it.
        v1, p1, peak1 = train(tracking, home / "v1", "--n-estimators", "50")
        v2, p2, peak2 = train(
            tracking, home / "v2", "--n-estimators", "3", "--max-depth", "2", "--force-promote"
        )
        assert (v1, v2) == ("1", "2")
        assert not np.allclose(p1, p2, atol=1e-3)
        MlflowClient(tracking.url).set_registered_model_alias(MODEL, "champion", "1")
        for r in replicas:
            r.start()
        with balancer(home, replicas, HAPROXY) as front:
            found = Stack(tracking, replicas, front, {"1": p1, "2": p2}, max(peak1, peak2))
            for r in replicas:
                found.wait_routed(r.name)
            yield found
    finally:
        for r in replicas:
            if r.service is not None:
                r.stop()
        if tracking.service is not None:
            tracking.stop()


@pytest.fixture
def settled(stack: Stack) -> Stack:
    """Every process up, every replica routed and serving the champion, whatever ran before."""
    if stack.tracking.service is None:
        stack.tracking.start()
    for r in stack.replicas:
        if r.service is None:
            r.start()
    champion = stack.champion()
    stack.converge(champion, time.monotonic(), timeout=30)
    for r in stack.replicas:
        stack.wait_routed(r.name)
    return stack


def other(version: str) -> str:
    return "2" if version == "1" else "1"


def test_an_alias_move_reaches_every_replica_within_two_poll_intervals(
    settled: Stack, figures: dict[str, object]
) -> None:
    old = settled.champion()
    new = other(old)
    with settled.load().running() as load:
        time.sleep(1)
        moved = settled.move_champion(new)
        reached = settled.converge(new, moved, timeout=10 * POLL_INTERVAL)
        time.sleep(1)
    figures["kubernetes_alias_convergence"] = {
        "replicas": REPLICAS,
        "poll_interval_s": POLL_INTERVAL,
        "seconds_from_alias_move_to_each_replica": {k: round(v, 3) for k, v in reached.items()},
        "seconds_to_the_last_replica": round(max(reached.values()), 3),
        "requests": load.requests,
        "failed_requests": len(load.failures),
    }
    assert load.failures == [], load.failures[:5]
    assert max(reached.values()) <= 2 * POLL_INTERVAL, reached
    assert load.backslides(old, new) == []
    assert {a.replica for a in load.answers if a.version == new} == {
        r.name for r in settled.replicas
    }, "every replica answered with the new version through the balancer"


def test_a_rolling_restart_under_load_fails_no_request(
    settled: Stack, figures: dict[str, object]
) -> None:
    exits = []
    restarted_at = {}
    with settled.load().running() as load:
        time.sleep(1)
        for r in settled.replicas:
            exits.append(r.stop(signal.SIGTERM))  # drains, then exits
            r.start()  # until /ready: the champion loaded
            settled.wait_routed(r.name)
            restarted_at[r.name] = time.monotonic()
        time.sleep(1)
    figures["kubernetes_rolling_restart"] = {
        "replicas": REPLICAS,
        "requests": load.requests,
        "failed_requests": len(load.failures),
        "exit_codes": exits,
    }
    assert exits == [0] * REPLICAS, "each replica drained and exited 0"
    assert load.failures == [], load.failures[:5]
    for name, at in restarted_at.items():
        assert any(a.replica == name and a.started > at for a in load.answers), name


def test_a_replica_killed_with_sigkill_is_routed_around(
    settled: Stack, figures: dict[str, object]
) -> None:
    victim = settled.replicas[0]
    before = settled.balancer.stat()[victim.name]
    with settled.load().running() as load:
        time.sleep(1)
        killed = time.monotonic()
        victim.stop(signal.SIGKILL)
        wait_for(lambda: settled.balancer.status(victim.name) == "DOWN", timeout=10, interval=0.02)
        down = time.monotonic() - killed
        time.sleep(1)
        after = settled.balancer.stat()[victim.name]
    failed = len(load.failures)
    figures["kubernetes_sigkill_one_replica"] = {
        "replicas": REPLICAS,
        "clients": load.clients,
        "requests": load.requests,
        "failed_requests": failed,
        "seconds_until_the_balancer_marked_it_down": round(down, 3),
        "requests_retried_by_the_balancer": int(after["wretr"]) - int(before["wretr"]),
        "requests_redispatched_to_another_replica": int(after["wredis"]) - int(before["wredis"]),
        "failures": [message for _, message in load.failures],
    }
    assert failed <= MAX_FAILED_ON_SIGKILL, load.failures
    later = [a for a in load.answers if a.started > killed + down]
    assert later and all(a.replica != victim.name for a in later)


def test_replicas_serve_through_a_tracking_server_restart_then_follow_the_alias(
    settled: Stack, figures: dict[str, object]
) -> None:
    old = settled.champion()
    new = other(old)
    with settled.load().running() as load:
        time.sleep(1)
        settled.tracking.stop()
        stopped = time.monotonic()
        time.sleep(3 * POLL_INTERVAL)  # every replica polls a registry that is gone
        settled.tracking.start()
        back = time.monotonic()
        moved = settled.move_champion(new)
        reached = settled.converge(new, moved, timeout=60)
        time.sleep(1)
    during = [a for a in load.answers if stopped <= a.started and a.ended <= back]
    figures["kubernetes_tracking_server_restart"] = {
        "replicas": REPLICAS,
        "requests": load.requests,
        "failed_requests": len(load.failures),
        "answered_while_the_tracking_server_was_down": len(during),
        "seconds_the_tracking_server_was_down": round(back - stopped, 3),
        "seconds_from_alias_move_to_each_replica": {k: round(v, 3) for k, v in reached.items()},
    }
    assert load.failures == [], load.failures[:5]
    assert during and {a.version for a in during} == {old}, "the last model kept serving"
    assert load.backslides(old, new) == []


def test_the_measured_memory_fits_the_manifests_limits(
    settled: Stack, figures: dict[str, object]
) -> None:
    """With a third of each limit to spare: the limits are not guesses."""
    objects = render(KUSTOMIZATIONS["production"])

    def limit_mb(kind: str, name: str) -> float:
        obj = named(objects, kind, name)
        pod = obj["spec"]["template"]["spec"]
        return quantity(pod["containers"][0]["resources"]["limits"]["memory"]) / 2**20

    with settled.load().running():
        time.sleep(2)
        replicas = max(r.rss_mb() for r in settled.replicas)
        tracking = settled.tracking.rss_mb()
    figures["kubernetes_memory_mb"] = {
        "api_replica_under_load": round(replicas, 1),
        "api_limit": limit_mb("Deployment", "api"),
        "tracking_server": round(tracking, 1),
        "tracking_limit": limit_mb("Deployment", "mlflow"),
        "trainer_peak": round(settled.trainer_peak_rss_mb, 1),
        "trainer_limit": limit_mb("Job", "train"),
    }
    assert replicas < limit_mb("Deployment", "api") / 1.5, replicas
    assert tracking < limit_mb("Deployment", "mlflow") / 1.5, tracking
    assert settled.trainer_peak_rss_mb < limit_mb("Job", "train") / 1.5
