"""What a switchable part costs `/predict`: the same server with it on and off.

Two parts are measured: the per-request telemetry (`IRISOPS_TELEMETRY=false` removes
the request middleware: counts and latencies, X-Request-ID, the access log) and the
inference log (`IRISOPS_INFERENCE_LOG=false`: no record queued per answer). The two
servers of a pair differ in that one setting alone. Both stay up and short wrk runs
alternate between them (see pairs.py); the result is the median of the per-pair
ratios, with its quartiles.

The in-process half drives both apps' ASGI entry point directly, alternating every
few hundred requests, which cancels drift better still and shows the cost in
microseconds. It leaves out uvicorn's own work per request, so its ratio overstates
the cost relative to a real server.
"""

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench import asgi, pairs, servers, workloads
from bench import wrk as wrk_
from irisops.config import Settings
from irisops.serving.app import create_app
from tests.processes import free_port

PAIRS = 20
ASGI_ROUNDS = 150
ASGI_REQUESTS = 300
PREDICT = wrk_.Request("ours", "/predict", workloads.OURS_SINGLE)


def request_id_echoed(url: str) -> bool:
    """Whether the telemetry switch took: only with telemetry is an X-Request-ID answered."""
    response = httpx.post(f"{url}/predict", content=workloads.OURS_SINGLE, timeout=10)
    response.raise_for_status()
    return "x-request-id" in response.headers


def inference_logged(url: str) -> bool:
    """Whether the inference-log switch took: GET /monitoring reports the log's counts."""
    response = httpx.get(f"{url}/monitoring", timeout=10)
    response.raise_for_status()
    return response.json()["inference_log"] is not None


@dataclass(frozen=True)
class Switch:
    name: str
    variable: str  # the environment variable that turns it off
    field: str  # the same, as a Settings field
    took: Callable[[str], bool]  # asked of a running server: is the part on?


TELEMETRY = Switch("telemetry", "IRISOPS_TELEMETRY", "telemetry", request_id_echoed)
INFERENCE_LOG = Switch("inference log", "IRISOPS_INFERENCE_LOG", "inference_log", inference_logged)


def cost(
    switch: Switch,
    env: dict[str, str],
    home: Path,
    load: tuple[wrk_.Wrk, int, int, float],
    model_dir: Path,
) -> dict[str, Any]:
    """Both measures of one switch: in process, and over wrk."""
    return {"in_process": in_process(switch, model_dir), "wrk": over_wrk(switch, env, home, *load)}


def over_wrk(
    switch: Switch,
    env: dict[str, str],
    home: Path,
    wrk: wrk_.Wrk,
    connections: int,
    threads: int,
    warmup: float,
) -> dict[str, Any]:
    """PAIRS pairs of PAIR_SECONDS wrk runs on /predict, the part on and off, alternating."""
    print(
        f"{switch.name} cost: {PAIRS} alternating pairs of {pairs.PAIR_SECONDS:g} s wrk runs…",
        flush=True,
    )
    with both_servers(switch, env, home) as urls:
        switched = {name: switch.took(url) for name, url in urls.items()}

        def run(name: str, seconds: float) -> float:
            return wrk_.run(
                wrk,
                urls[name],
                PREDICT,
                connections=connections,
                threads=threads,
                seconds=seconds,
                script_dir=home,
            ).clean_requests_per_s()

        for name in urls:
            run(name, warmup)
        measured = pairs.alternate(
            {name: partial(run, name, pairs.PAIR_SECONDS) for name in ("on", "off")}, PAIRS
        )
    ratio = pairs.ratios(measured, "on", "off")
    print(
        f"  on/off req/s, median of {PAIRS} pairs: {ratio.median:.3f} "
        f"(quartiles {ratio.q1:.3f}-{ratio.q3:.3f})",
        flush=True,
    )
    return {
        "pairs": PAIRS,
        "pair_seconds": pairs.PAIR_SECONDS,
        "connections": connections,
        "requests_per_s": measured,
        "median_requests_per_s": {k: statistics.median(v) for k, v in measured.items()},
        "ratio": asdict(ratio),
        "switched": switched,
    }


@contextmanager
def both_servers(switch: Switch, env: dict[str, str], home: Path) -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        urls = {}
        slug = switch.field.replace("_", "-")
        for name, value in (("on", "true"), ("off", "false")):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            settings = {"IRISOPS_API_PORT": str(port), switch.variable: value}
            stack.enter_context(
                servers.started(
                    f"irisops serve, {switch.name} {name}",
                    servers.IRISOPS_SERVE,
                    env=env | settings,
                    url=url,
                    ready_path="/ready",
                    log=home / f"api-{slug}-{name}.log",
                )
            )
            urls[name] = url
        yield urls


def in_process(switch: Switch, model_dir: Path) -> dict[str, Any]:
    """Microseconds per /predict through each app's ASGI entry point, alternating."""
    print(f"{switch.name} cost in process (ASGI, no server)…", flush=True)
    with tempfile.TemporaryDirectory() as logs:
        apps = {
            name: create_app(
                Settings(
                    model_dir=model_dir,
                    inference_log_dir=Path(logs) / name,
                    **{switch.field: on},  # type: ignore[arg-type]
                )
            )
            for name, on in (("on", True), ("off", False))
        }
        measured = asyncio.run(_drive(apps))
    extra = [on - off for on, off in zip(measured["on"], measured["off"], strict=True)]
    us = {name: statistics.median(times) for name, times in measured.items()}
    print(f"  {us['on']:.1f} vs {us['off']:.1f} µs, +{statistics.median(extra):.1f} µs", flush=True)
    return {
        "rounds": ASGI_ROUNDS,
        "requests_per_round": ASGI_REQUESTS,
        "median_us": us,
        "extra_us": asdict(pairs.spread(extra)),
    }


async def _drive(apps: dict[str, Any]) -> dict[str, list[float]]:
    body = workloads.OURS_SINGLE
    callers = {name: asgi.Caller(app, "/predict", body) for name, app in apps.items()}

    async def round_us(call: asgi.Caller, requests: int) -> float:
        begin = time.perf_counter()
        for _ in range(requests):
            await call()
        return (time.perf_counter() - begin) / requests * 1e6

    measured: dict[str, list[float]] = {name: [] for name in apps}
    async with AsyncExitStack() as lifespans:
        for app in apps.values():
            await lifespans.enter_async_context(app.router.lifespan_context(app))
        for call in callers.values():
            await round_us(call, 1_000)
        for n in range(ASGI_ROUNDS):
            for name in apps if n % 2 == 0 else reversed(list(apps)):
                measured[name].append(await round_us(callers[name], ASGI_REQUESTS))
    statuses = set().union(*(call.statuses for call in callers.values()))
    if statuses != {200}:
        raise RuntimeError(f"in-process /predict answered {sorted(statuses)}")
    return measured
