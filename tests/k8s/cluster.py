"""What the Kubernetes manifests run, as plain processes on loopback: no cluster.

One tracking server, N `irisops serve` replicas in registry mode (each with the
manifests' poll interval), and HAProxy in front playing the Service: it health-checks
`/ready` as the readiness probe does, and routes only to replicas that pass. Each piece
can be stopped and started again on the same port, as a pod restarts.

HAProxy stands in for what kube-proxy and an ingress controller do together, with one
difference that matters here: a Kubernetes pod is taken out of the Service's endpoints
when it starts terminating, *before* SIGTERM (preStop covers the gap), while HAProxy only
learns a replica is going from its failing `/ready` checks. So a rolling restart here is
harsher than in a cluster.
"""

import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from irisops.serving.server import DRAIN_TIMEOUT
from tests.processes import Service, environment, free_port, spawn, wait_http

# deploy/k8s/base/api.yaml's IRISOPS_POLL_INTERVAL.
POLL_INTERVAL = 2.0
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.7, 5.1, 1.6], [6.3, 2.8, 5.1, 1.5], [5.9, 3.0, 4.2, 1.5]]
# The balancer's checks: every 250 ms, out after 2 failures, back after 2 passes.
CHECK_INTERVAL_MS = 250
FALL = 2
RISE = 2
HAPROXY_CONFIG = """\
global
    maxconn 256
    # One line per request in haproxy.log beside the test's other logs.
    log stdout format raw local0
    stats socket {socket} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 2s
    log global
    option httplog
    # A request whose replica refused the connection, or closed it without answering or
    # mid-answer (one that exited, or was killed), is sent again, to another replica.
    # Prediction has no side effects, so a repeat is harmless. A request can only be sent
    # again if HAProxy holds all of it: http-buffer-request waits for the whole body
    # before choosing a replica (without it, requests in flight on a killed replica were
    # dropped). No status code is retried: a 5xx from a replica reaches the client.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response junk-response response-timeout
    option http-buffer-request

frontend api
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
    default-server check inter {inter}ms fall {fall} rise {rise}
    http-response set-header X-Served-By %[srv_name]
{servers}
"""


def tree_rss_mb(process: psutil.Process) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with suppress(psutil.Error):
            total += member.memory_info().rss
    return total / 2**20


@dataclass
class Restartable:
    """An `irisops` command on a fixed port and home, stopped and started like a pod."""

    name: str
    args: tuple[str, ...]
    env: dict[str, str]
    port: int
    log: Path
    ready_path: str
    service: Service | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        process = spawn([sys.executable, "-m", "irisops", *self.args], self.env, self.log)
        self.service = Service(process, self.url, self.log)
        wait_http(self.service, self.ready_path)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.service is not None
        code = self.service.stop(sig, timeout=DRAIN_TIMEOUT * 3)
        self.service = None
        return code

    def rss_mb(self) -> float:
        assert self.service is not None
        return tree_rss_mb(psutil.Process(self.service.process.pid))


def tracking_server(home: Path) -> Restartable:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = environment(home, IRISOPS_TRACKING_PORT=str(port))
    return Restartable("tracking", ("tracking",), env, port, home / "mlflow.log", "/health")


def replica(name: str, home: Path, tracking_uri: str, model: str) -> Restartable:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = environment(
        home,
        MLFLOW_TRACKING_URI=tracking_uri,
        IRISOPS_MODEL_URI=f"models:/{model}@champion",
        IRISOPS_REGISTERED_MODEL=model,
        IRISOPS_MODEL_DIR=str(home / "unused_model_data"),
        IRISOPS_API_PORT=str(port),
        IRISOPS_POLL_INTERVAL=str(POLL_INTERVAL),
    )
    return Restartable(name, ("serve",), env, port, home / f"{name}.log", "/ready")


@dataclass
class Balancer:
    """HAProxy, and its runtime API (the stats socket) to read what it thinks of each replica."""

    service: Service
    socket_path: Path

    @property
    def url(self) -> str:
        return self.service.url

    def stat(self) -> dict[str, dict[str, str]]:
        """`show stat` for the replicas: status (UP/DOWN), retries, redispatches, ..."""
        with socket.socket(socket.AF_UNIX) as runtime:
            runtime.connect(str(self.socket_path))
            runtime.sendall(b"show stat\n")
            raw = b""
            while chunk := runtime.recv(65536):
                raw += chunk
        header, *lines = raw.decode().strip().splitlines()
        names = header.lstrip("# ").split(",")
        rows = [dict(zip(names, line.split(","), strict=False)) for line in lines]
        return {
            row["svname"]: row
            for row in rows
            if row["pxname"] == "replicas" and row["svname"] != "BACKEND"
        }

    def status(self, name: str) -> str:
        return self.stat()[name]["status"].split()[0]


@contextmanager
def balancer(home: Path, replicas: list[Restartable], haproxy: str) -> Iterator[Balancer]:
    port = free_port()
    socket_path = home / "haproxy.sock"
    servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port}" for r in replicas)
    config = home / "haproxy.cfg"
    config.write_text(
        HAPROXY_CONFIG.format(
            socket=socket_path,
            port=port,
            inter=CHECK_INTERVAL_MS,
            fall=FALL,
            rise=RISE,
            servers=servers,
        )
    )
    log = home / "haproxy.log"
    process = spawn([haproxy, "-db", "-f", str(config)], environment(home), log)
    service = Service(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_http(service, "/ready")
        yield Balancer(service, socket_path)
    finally:
        service.stop()


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    replica: str
    version: str


@dataclass
class Load:
    """Client threads through the balancer, every answer checked and recorded.

    An answer counts as good only if it is a 200 whose probabilities are exactly those of
    the model version it names, which must be one of `expected`. Bounded in time and count.
    """

    url: str
    expected: dict[str, np.ndarray[Any, np.dtype[np.float32]]]
    clients: int = 4
    max_seconds: float = 120.0
    max_requests: int = 50_000
    answers: list[Answer] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def one(self, client: httpx.Client, i: int) -> Answer:
        row = i % len(ROWS)
        started = time.monotonic()
        response = client.post("/predict", json={"features": ROWS[row]})
        ended = time.monotonic()
        if response.status_code != 200:
            raise AssertionError(f"{response.status_code} {response.text[:200]}")
        body = response.json()
        version = str(body["model_version"])
        if version not in self.expected:
            raise AssertionError(f"version {version} is neither of {sorted(self.expected)}")
        got = np.array(list(body["probabilities"].values()), dtype=np.float32)
        if not np.allclose(got, self.expected[version][row], atol=1e-6):
            raise AssertionError(f"row {row}: probabilities are not those of version {version}")
        return Answer(started, ended, response.headers.get("x-served-by", "?"), version)

    def client_loop(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = 0
            while not self.stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    if len(self.answers) + len(self.failures) >= self.max_requests:
                        return
                try:
                    answer = self.one(client, i)
                except Exception as exc:  # every failure is recorded; the tests count them
                    with self._lock:
                        self.failures.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))
                else:
                    with self._lock:
                        self.answers.append(answer)
                i += 1

    @contextmanager
    def running(self) -> Iterator["Load"]:
        threads = [
            threading.Thread(target=self.client_loop, daemon=True) for _ in range(self.clients)
        ]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(60)

    @property
    def requests(self) -> int:
        return len(self.answers) + len(self.failures)

    def backslides(self, old: str, new: str) -> list[str]:
        """Answers of OLD that a replica began after it had already answered NEW."""
        first_new: dict[str, float] = {}
        for answer in self.answers:
            if answer.version == new:
                first_new[answer.replica] = min(
                    first_new.get(answer.replica, answer.ended), answer.ended
                )
        return [
            f"{a.replica} answered v{old} to a request begun "
            f"{a.started - first_new[a.replica]:.3f} s after it had answered one with v{new}"
            for a in self.answers
            if a.version == old and a.replica in first_new and a.started > first_new[a.replica]
        ]
