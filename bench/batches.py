"""What a 10,000-row batch costs the app, in process: the two answer forms, and GC pauses.

Both measured through the ASGI entry point (no server, no socket), so they show the
app's own work: parsing, inference, building and writing the answer.

- Forms: the default one-object-per-row answer against `?format=columnar`, in
  alternating rounds: milliseconds a request and bytes an answer.
- Pauses: the same batches with the heap frozen after the model loaded (what the
  server does) and unfrozen (as before), in alternating blocks: each request's time,
  and the full (generation 2) collections that ran during it.

`python -m bench.batches MODEL_DIR` prints the figures; `make bench` records them.
"""

import asyncio
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bench import asgi, workloads
from irisops.config import Settings
from irisops.serving.app import create_app

ROWS = 10_000
FORM_ROUNDS = 15
GC_BLOCKS = 6
GC_REQUESTS = 25  # a block; a request takes ~20-50 ms


class FullCollections:
    """Counts generation-2 collections and their time while installed in gc.callbacks."""

    def __init__(self) -> None:
        self.count, self.seconds, self._begin = 0, 0.0, 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._begin = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._begin


async def timed_ms(call: Callable[[], Awaitable[None]]) -> float:
    begin = time.perf_counter()
    await call()
    return (time.perf_counter() - begin) * 1e3


async def forms(rows: asgi.Caller, columnar: asgi.Caller) -> dict[str, Any]:
    measured: dict[str, list[float]] = {"rows": [], "columnar": []}
    callers = {"rows": rows, "columnar": columnar}
    for n in range(FORM_ROUNDS):
        for name in callers if n % 2 == 0 else reversed(list(callers)):
            measured[name].append(await timed_ms(callers[name]))
    ms = {name: statistics.median(times) for name, times in measured.items()}
    ratio = statistics.median(r / c for r, c in zip(*measured.values(), strict=True))
    return {
        "rounds": FORM_ROUNDS,
        "median_ms": ms,
        "rows_over_columnar": ratio,
        "bytes": {name: len(call.answer) for name, call in callers.items()},
    }


async def pauses(call: asgi.Caller) -> dict[str, Any]:
    times: dict[str, list[float]] = {"frozen": [], "unfrozen": []}
    collections = {name: FullCollections() for name in times}
    for block in range(GC_BLOCKS):
        name = ("frozen", "unfrozen")[block % 2]
        gc.freeze() if name == "frozen" else gc.unfreeze()
        gc.callbacks.append(collections[name])
        try:
            times[name] += [await timed_ms(call) for _ in range(GC_REQUESTS)]
        finally:
            gc.callbacks.remove(collections[name])
    gc.freeze()
    return {
        name: {
            "requests": len(each),
            "p50_ms": statistics.median(each),
            "p99_ms": statistics.quantiles(each, n=100, method="inclusive")[98],
            "max_ms": max(each),
            "full_collections": collections[name].count,
            "full_collection_ms": collections[name].seconds * 1e3,
        }
        for name, each in times.items()
    }


async def measure_app(model_dir: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as logs:
        app = create_app(Settings(model_dir=model_dir, inference_log_dir=Path(logs)))
        body = workloads.ours_batch(workloads.rows(ROWS))
        rows = asgi.Caller(app, "/predict/batch", body)
        columnar = asgi.Caller(app, "/predict/batch", body, b"format=columnar")
        async with AsyncExitStack() as lifespan:
            await lifespan.enter_async_context(app.router.lifespan_context(app))
            for call in (rows, columnar, rows, columnar):
                await call()
            result = {"rows": ROWS, "forms": await forms(rows, columnar)}
            result["gc"] = await pauses(rows)
        statuses = rows.statuses | columnar.statuses
        if statuses != {200}:
            raise RuntimeError(f"in-process /predict/batch answered {sorted(statuses)}")
    return result


def measure(model_dir: Path) -> dict[str, Any]:
    print(f"{ROWS:,}-row batches in process: answer forms and GC pauses…", flush=True)
    result = asyncio.run(measure_app(model_dir))
    forms_, frozen, unfrozen = result["forms"], result["gc"]["frozen"], result["gc"]["unfrozen"]
    print(
        f"  rows {forms_['median_ms']['rows']:.1f} ms / {forms_['bytes']['rows']:,} B, "
        f"columnar {forms_['median_ms']['columnar']:.1f} ms / {forms_['bytes']['columnar']:,} B",
        flush=True,
    )
    for name, each in (("frozen", frozen), ("unfrozen", unfrozen)):
        print(
            f"  heap {name}: p50 {each['p50_ms']:.1f}, p99 {each['p99_ms']:.1f}, "
            f"max {each['max_ms']:.1f} ms; {each['full_collections']} full collections, "
            f"{each['full_collection_ms']:.1f} ms",
            flush=True,
        )
    return result


if __name__ == "__main__":
    measure(Path(sys.argv[1]) if len(sys.argv) > 1 else Settings().served_model_dir)
