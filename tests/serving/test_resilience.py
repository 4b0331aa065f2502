"""The API under faults: a registry that disappears, and SIGTERM in the middle of requests."""

import json
import signal
import socket
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import environment, free_port, irisops, running, wait_for

SEED = {"features": [5.1, 3.5, 1.4, 0.2]}


def test_registry_outage_keeps_the_last_model_serving(
    api_factory: ApiFactory, tmp_path: Path, figures: dict[str, object]
) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    env = environment(
        tmp_path,
        IRISOPS_TRACKING_PORT=str(port),
        MLFLOW_TRACKING_URI=uri,
        IRISOPS_MODEL_DIR=str(tmp_path / "model_data"),
    )
    with running("tracking", env=env, url=uri, log=tmp_path / "mlflow.log") as server:
        assert irisops("train", "--n-estimators", "20", env=env).returncode == 0
        api = api_factory.start(
            {**env, "IRISOPS_MODEL_URI": "models:/iris-classifier@champion"}, ready_path="/ready"
        )
        server.stop(signal.SIGKILL)

    def outage_noticed() -> bool:
        return httpx.get(api.url + "/model", timeout=10).json()["last_error"] is not None

    wait_for(outage_noticed, timeout=60)
    answer = httpx.post(api.url + "/predict", json=SEED, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["model_version"] == "1"
    ready = httpx.get(api.url + "/ready", timeout=10)
    assert ready.status_code == 200, "still ready: a model is loaded"
    assert ready.json()["reason"], "but the failing refresh is reported"
    figures["registry_outage"] = {"faults": 1, "failed_predictions": 0}


def test_sigterm_lets_in_flight_requests_finish_then_exits_0(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, figures: dict[str, object]
) -> None:
    api = api_factory.start(tracking.env(champion.model_dir), ready_path="/ready")
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 10_000}).encode()
    host, port = api.url.removeprefix("http://").split(":")
    request = (
        f"POST /predict/batch HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    clients = 16
    sent = threading.Barrier(clients + 1)
    answers: list[tuple[float, bytes]] = []

    def in_flight_request() -> None:
        # Raw sockets: the whole request is on the wire before SIGTERM is sent.
        with socket.create_connection((host, int(port)), timeout=60) as connection:
            connection.sendall(request)
            sent.wait()
            answer = b"".join(iter(lambda: connection.recv(65536), b""))
            answers.append((time.monotonic(), answer))

    threads = [threading.Thread(target=in_flight_request) for _ in range(clients)]
    for thread in threads:
        thread.start()
    sent.wait()  # every request is on the wire: some being served, the rest queued
    # At once: a 10,000-row batch takes the server a few milliseconds, so any wait here
    # could let it answer all sixteen before the signal, leaving nothing in flight.
    signalled = time.monotonic()
    api.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(60)
    assert api.process.wait(30) == 0
    statuses = [answer.split(b"\r\n", 1)[0] for _, answer in answers]
    assert statuses == [b"HTTP/1.1 200 OK"] * clients
    assert all(answer.count(b'"prediction"') == 10_000 for _, answer in answers)
    after = sum(finished > signalled for finished, _ in answers)
    assert after > 0, "the signal came after every answer: nothing was in flight"
    assert "Shutting down" in api.output()
    figures["sigterm_in_flight"] = {
        "requests": clients,
        "completed": len(answers),
        "completed_after_sigterm": after,
    }
