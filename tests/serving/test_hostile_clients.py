"""Clients that hold connections without finishing their requests, over real sockets.

Slow or stalled clients get their connection answered 408 and closed once the header
or body timeout has passed (a request whose client is gone this way is counted 499 and
logs no error), while normal clients keep being answered; past the connection cap,
requests get a fast 503 with Retry-After and probes still pass; idle keep-alive
connections are closed. The server's descriptor count, read from /proc,
returns to its baseline afterwards.
"""

import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import SEED_BODY, Service, wait_for

HALF_SENT = 1_500
TIMEOUT = 2.0
PREDICT_HEADERS = (
    b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n"
)
SEED_REQUEST = PREDICT_HEADERS.replace(b"100", str(len(SEED_BODY)).encode()) + SEED_BODY.encode()


def descriptors(api: Service) -> int:
    return sum(1 for _ in Path(f"/proc/{api.process.pid}/fd").iterdir())


def sample(api: Service, peaks: list[int], until: float) -> None:
    """The server's descriptor count, every 20 ms until `until` (its highest is the peak)."""
    while time.monotonic() < until:
        peaks.append(descriptors(api))
        time.sleep(0.02)


@contextmanager
def held(api: Service, count: int, payloads: list[bytes]) -> Iterator[list[socket.socket]]:
    """`count` connections, each sending one of `payloads` (in turn) and then nothing."""
    port = int(api.url.rsplit(":", 1)[1])
    with ExitStack() as stack:
        sockets = []
        for n in range(count):
            connection = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
            connection.sendall(payloads[n % len(payloads)])
            sockets.append(connection)
        yield sockets


def answers_when_closed(sockets: list[socket.socket], deadline: float) -> dict[int, bytes]:
    """What each socket received by the time the server closed it (until `deadline`)."""
    received: dict[int, bytes] = {id(s): b"" for s in sockets}
    with selectors.DefaultSelector() as selector:
        for s in sockets:
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ)
        open_ = len(sockets)
        while open_ and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                chunk = key.fileobj.recv(4096)  # type: ignore[union-attr]
                if chunk:
                    received[id(key.fileobj)] += chunk
                else:
                    selector.unregister(key.fileobj)
                    open_ -= 1
    return received


def held_until_closed(api: Service, payload: bytes, then: bytes = b"") -> tuple[bytes, float]:
    """What one connection sending `payload` (and half a second later `then`, if any)
    received before the server closed it, and the seconds from its last bytes to that."""
    with held(api, 1, [payload]) as [connection]:
        if then:
            time.sleep(0.5)
            connection.sendall(then)
        started = time.monotonic()
        [answer] = answers_when_closed([connection], deadline=started + 10).values()
        return answer, time.monotonic() - started


def gone_requests(api: Service, route: str = "/predict") -> float:
    """`POST` requests to `route` counted 499 (the client gone before its answer)."""
    families = text_string_to_metric_families(httpx.get(api.url + "/metrics").text)
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "irisops_http_requests_total"
        and sample.labels == {"method": "POST", "route": route, "status": "499"}
    )


def start(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, **settings: str
) -> Service:
    env = tracking.env(champion.model_dir, IRISOPS_INFERENCE_LOG="false", **settings)
    return api_factory.start(env, ready_path="/ready")


def test_half_sent_requests_are_dropped_in_time_and_normal_clients_never_fail(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, figures: dict[str, Any]
) -> None:
    api = start(
        api_factory,
        tracking,
        champion,
        IRISOPS_HEADER_TIMEOUT=str(TIMEOUT),
        IRISOPS_BODY_TIMEOUT=str(TIMEOUT),
    )
    baseline = descriptors(api)
    # Half of them stop inside the headers, half after the headers of a 100-byte body.
    with held(api, HALF_SENT, [b"POST /predict HTTP/1.1\r\nHost: 127", PREDICT_HEADERS]) as sockets:
        started = time.monotonic()
        peaks = [baseline]
        sampler = threading.Thread(target=sample, args=(api, peaks, started + TIMEOUT))
        sampler.start()
        with httpx.Client(base_url=api.url) as client:
            statuses = [client.post("/predict", content=SEED_BODY).status_code for _ in range(200)]
        sampler.join()
        peak = max(peaks)
        received = answers_when_closed(sockets, deadline=started + 10 * TIMEOUT)
        dropped_after = time.monotonic() - started
    assert statuses == [200] * 200, "normal clients were answered throughout"
    assert peak > baseline + HALF_SENT // 2, "the server did hold the connections"
    timed_out = [r for r in received.values() if r.startswith(b"HTTP/1.1 408")]
    assert len(timed_out) == HALF_SENT, f"{HALF_SENT - len(timed_out)} not answered 408"
    # The body-less half had reached the app: each is counted gone, and none is an error.
    wait_for(lambda: gone_requests(api) == HALF_SENT // 2)
    assert "unexpected error" not in api.output()
    wait_for(lambda: descriptors(api) <= baseline + 2, timeout=10)
    figures["hostile_half_sent"] = {
        "connections": HALF_SENT,
        "timeout_s": TIMEOUT,
        "all_dropped_after_s": round(dropped_after, 2),
        "descriptors": {"baseline": baseline, "peak": peak, "after": descriptors(api)},
        "normal_requests_ok": len(statuses),
    }


def test_past_the_connection_cap_requests_get_a_fast_503_and_probes_pass(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, figures: dict[str, Any]
) -> None:
    api = start(api_factory, tracking, champion, IRISOPS_MAX_CONNECTIONS="50")
    with held(api, 60, [b"GET /health HTTP/1.1\r\nHost"]):
        latencies, answers = [], []
        for _ in range(20):
            begin = time.perf_counter()
            answers.append(httpx.post(api.url + "/predict", content=SEED_BODY, timeout=5))
            latencies.append(time.perf_counter() - begin)
        assert all(a.status_code == 503 for a in answers)
        assert answers[0].headers["retry-after"] == "1"
        assert "too many connections" in answers[0].json()["detail"]
        assert httpx.get(api.url + "/health").status_code == 200
        assert httpx.get(api.url + "/ready").status_code == 200
    wait_for(lambda: httpx.post(api.url + "/predict", content=SEED_BODY).status_code == 200)
    figures["hostile_over_cap"] = {
        "cap": 50,
        "held": 60,
        "median_503_ms": round(sorted(latencies)[len(latencies) // 2] * 1000, 2),
        "max_503_ms": round(max(latencies) * 1000, 2),
    }
    assert max(latencies) < 1.0, "a 503 is an answer, not a wait"


def test_idle_keep_alive_connections_are_closed(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion
) -> None:
    api = start(api_factory, tracking, champion, IRISOPS_KEEP_ALIVE_TIMEOUT="1")
    answer, closed_after = held_until_closed(api, SEED_REQUEST)
    assert answer.startswith(b"HTTP/1.1 200")
    assert 0.5 < closed_after < 5, closed_after


def test_a_next_request_stalled_on_a_kept_alive_connection_gets_408(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion
) -> None:
    # The first request is answered; the second stops inside its headers. Its header
    # deadline, not the far longer idle one, must end the connection, with a 408.
    api = start(
        api_factory,
        tracking,
        champion,
        IRISOPS_HEADER_TIMEOUT="0.5",
        IRISOPS_KEEP_ALIVE_TIMEOUT="30",
    )
    answer, dropped_after = held_until_closed(api, SEED_REQUEST + b"GET /health HTTP/1.1\r\nHo")
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.count(b"HTTP/1.1 408") == 1, answer
    assert dropped_after < 3, dropped_after


def test_a_connection_refused_before_its_body_arrived_is_closed_once_idle(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion
) -> None:
    # A declared body over the limit is refused 413 before it arrives; once the client
    # has sent it all, the connection is idle and must be closed like any other.
    api = start(
        api_factory,
        tracking,
        champion,
        IRISOPS_MAX_BODY_BYTES="1024",
        IRISOPS_KEEP_ALIVE_TIMEOUT="1",
        IRISOPS_BODY_TIMEOUT="30",
    )
    # The 413 is sent while the body is still to come.
    headers = PREDICT_HEADERS.replace(b"100", b"2048")
    answer, closed_after = held_until_closed(api, headers, then=b" " * 2048)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert closed_after < 5, closed_after


def test_a_stalled_client_is_dropped_after_the_server_sat_idle(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion
) -> None:
    # The deadlines are swept only while connections are open: the sweep must start again.
    api = start(api_factory, tracking, champion, IRISOPS_HEADER_TIMEOUT="0.5")
    time.sleep(1.5)  # several sweep periods with no connection open
    answer, dropped_after = held_until_closed(api, b"GET /health HTTP/1.1\r\nHo")
    assert answer.startswith(b"HTTP/1.1 408")
    assert dropped_after < 2, dropped_after


def test_a_stalled_body_on_a_framework_route_is_dropped_quietly_too(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion
) -> None:
    # Predictions take the short way (lane.py); /feedback goes through FastAPI.
    api = start(api_factory, tracking, champion, IRISOPS_BODY_TIMEOUT="0.5")
    stalled = PREDICT_HEADERS.replace(b"/predict", b"/feedback")
    with held(api, 1, [stalled]) as [connection]:
        [answer] = answers_when_closed([connection], deadline=time.monotonic() + 10).values()
    assert answer.startswith(b"HTTP/1.1 408")
    wait_for(lambda: gone_requests(api, "/feedback") == 1)
    assert "unexpected error" not in api.output()
