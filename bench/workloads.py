"""What the benchmark sends besides wrk's load: batches, in-process calls, answer checks."""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import orjson

from irisops.training import data

FEATURES = list(data.FEATURE_NAMES)
SEED_ROW = [5.1, 3.5, 1.4, 0.2]
OURS_SINGLE = orjson.dumps({"features": SEED_ROW})
MLFLOW_SINGLE = orjson.dumps({"dataframe_split": {"columns": FEATURES, "data": [SEED_ROW]}})
BATCH_WARMUP = 2


def rows(count: int, seed: int = 0) -> list[list[float]]:
    """Flowers drawn uniformly from the Iris feature box, measured to 0.1 cm like the real ones."""
    low, high = data.feature_box(data.load().X)
    drawn = np.random.default_rng(seed).uniform(low, high, size=(count, len(low)))
    return [[float(x) for x in row] for row in np.round(drawn, 1)]


def ours_batch(batch: list[list[float]]) -> bytes:
    return orjson.dumps({"instances": batch})


def mlflow_batch(batch: list[list[float]]) -> bytes:
    return orjson.dumps({"dataframe_split": {"columns": FEATURES, "data": batch}})


@dataclass(frozen=True)
class BatchResult:
    rows: int
    requests: int
    rows_per_s: float
    median_ms: float


def batch_throughput(url: str, body: bytes, row_count: int, requests: int) -> BatchResult:
    """REQUESTS sequential posts of one batch over one keep-alive connection.

    The warm-up answers are checked to hold one prediction per row (both servers
    answer {"predictions": [...]}, our columnar form {"class_ids": [...]}), so a server
    that answers less cannot look fast.
    """
    headers = {"Content-Type": "application/json"}
    times = []
    with httpx.Client(timeout=120) as client:
        for attempt in range(BATCH_WARMUP + requests):
            begin = time.perf_counter()
            response = client.post(url, content=body, headers=headers)
            elapsed = time.perf_counter() - begin
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
            if attempt < BATCH_WARMUP:
                answer = response.json()  # one prediction per row, or one class id (columnar)
                got = len(answer["predictions"] if "predictions" in answer else answer["class_ids"])
                if got != row_count:
                    raise RuntimeError(f"{url} answered {got} predictions for {row_count} rows")
            else:
                times.append(elapsed)
    return BatchResult(
        rows=row_count,
        requests=requests,
        rows_per_s=row_count * requests / sum(times),
        median_ms=statistics.median(times) * 1000,
    )


def median_call_us(call: Callable[[], object], *, calls: int, budget_s: float) -> float:
    """Median wall time of CALL, over CALLS calls or BUDGET_S seconds, whichever ends first."""
    for _ in range(min(calls // 10, 50)):
        call()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < calls and time.perf_counter() < deadline:
        begin = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - begin) / 1000)
    return statistics.median(times)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def answer_checks(url: str, version: str, class_names: list[str]) -> list[Check]:
    """Target 6: the answers carry what they did, and bad input still gets a clear 4xx."""
    checks: list[Check] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        single = client.post("/predict", content=OURS_SINGLE).json()
        checks.append(
            Check(
                "/predict carries prediction, class_id, probabilities, model_version",
                _is_prediction(single, version, class_names),
                orjson.dumps(single).decode(),
            )
        )
        batch = rows(1_000, seed=1)
        answer = client.post("/predict/batch", content=ours_batch(batch)).json()
        predictions = answer.get("predictions", [])
        singles = [client.post("/predict", json={"features": row}).json() for row in batch[:50]]
        checks.append(
            Check(
                "/predict/batch: every one of 1,000 answers complete, first 50 equal /predict's",
                answer.get("model_version") == version
                and len(predictions) == len(batch)
                and all(_is_prediction(p, version, class_names) for p in predictions)
                and predictions[:50] == singles,
                f"{len(predictions)} predictions, model_version {answer.get('model_version')}",
            )
        )
        for body, status in BAD_INPUTS:
            path = "/predict/batch" if b"instances" in body else "/predict"
            response = client.post(path, content=body)
            detail = response.json().get("detail", "") if response.content else ""
            checks.append(
                Check(
                    f"rejects {_shorten(body)} with {status}",
                    response.status_code == status and bool(detail),
                    f"{response.status_code}: {detail[:90]}",
                )
            )
    return checks


BAD_INPUTS = [
    (b'{"features":[5.1,3.5,1.4]}', 422),
    (b'{"features":[5.1,NaN,1.4,0.2]}', 422),
    (b'{"features":["5.1",3.5,1.4,0.2]}', 422),
    (b'{"features":[5.1,3.5,1.4,0.2],"extra":1}', 422),
    (b'{"features":[5.1,', 400),
    (b'{"instances":[[5.1,3.5,1.4,0.2],[5.1,3.5,"x",0.2]]}', 422),
    (ours_batch([SEED_ROW] * 10_001), 413),
]


def _is_prediction(answer: Any, version: str, class_names: list[str]) -> bool:
    if not isinstance(answer, dict) or set(answer) != {
        "prediction",
        "class_id",
        "probabilities",
        "model_version",
    }:
        return False
    probabilities = answer["probabilities"]
    return (
        answer["model_version"] == version
        and list(probabilities) == class_names
        and abs(sum(probabilities.values()) - 1) < 1e-4
        and answer["prediction"] == class_names[answer["class_id"]]
    )


def _shorten(body: bytes, limit: int = 48) -> str:
    text = body.decode()
    return f"`{text}`" if len(text) <= limit else f"`{text[:limit]}…` ({len(body):,} bytes)"
