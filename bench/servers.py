"""A server under test: its cold start, the peak memory of its process tree, a clean stop.

Both servers are started the same way, as a new session from this process, so the
measurements mean the same thing for each: cold start is from `Popen` to the first
200 from the readiness endpoint, and peak RSS is the largest sum, over every
sample, of the resident memory of the server and all its descendants (`mlflow
models serve` runs uvicorn as a child process).
"""

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

IRISOPS_SERVE = (sys.executable, "-m", "irisops", "serve")
READY_TIMEOUT = 180.0
READY_POLL = 0.01  # s; the cold start is known to this precision
RSS_SAMPLE = 0.05  # s
TREE_WALK = 1.0  # s


class TreeMemory(threading.Thread):
    """Samples the summed RSS of a process and its descendants until stopped.

    The tree is walked again only every TREE_WALK seconds, and the processes found are
    read in between. A walk reads every process on the machine (about 0.9 ms of CPU on
    a 2-vCPU benchmark host); walked at every sample, the sampler took 2% of a CPU from
    the server under test, and at one connection it was the p99: about 1 ms for every
    server, a bare constant answer's included, against 0.14 to 0.3 ms without it.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name=f"rss-{pid}")
        self.pid = pid
        self.peak_bytes = 0
        self._stopped = threading.Event()

    def run(self) -> None:
        tree: list[psutil.Process] = []
        walked = -math.inf  # walk at the first sample
        while not self._stopped.wait(RSS_SAMPLE):
            if time.monotonic() - walked >= TREE_WALK:
                tree, walked = self.walk(), time.monotonic()
            self.peak_bytes = max(self.peak_bytes, resident(tree))

    def walk(self) -> list[psutil.Process]:
        try:
            return process_tree(self.pid)
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def resident(processes: list[psutil.Process]) -> int:
    """The summed RSS of the processes, those that exited since counted as nothing."""
    total = 0
    for process in processes:
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_info().rss
    return int(total)


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (`mlflow models serve` runs uvicorn as a child)."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    memory: TreeMemory
    log: Path
    cold_start_s: float = 0.0

    @property
    def peak_rss_mib(self) -> float:
        return self.memory.peak_bytes / 2**20


@contextmanager
def started(
    name: str,
    argv: Sequence[str],
    *,
    env: dict[str, str],
    url: str,
    ready_path: str,
    log: Path,
) -> Iterator[Server]:
    """Start ARGV, wait until READY_PATH answers 200, and stop its whole session afterwards."""
    with log.open("ab") as out:
        begin = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    memory = TreeMemory(process.pid)
    memory.start()
    server = Server(name, url, process, memory, log)
    try:
        _wait_ready(server, ready_path)
        server.cold_start_s = time.perf_counter() - begin
        yield server
    finally:
        memory.stop()
        _stop(process)


def _wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited before it was ready:\n{_tail(server)}")
            with suppress(httpx.HTTPError):
                if client.get(server.url + path).status_code == 200:
                    return
            time.sleep(READY_POLL)
    raise TimeoutError(f"{server.name} not ready in {READY_TIMEOUT} s:\n{_tail(server)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(15)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(server: Server, lines: int = 40) -> str:
    return "\n".join(server.log.read_text(errors="replace").splitlines()[-lines:])
