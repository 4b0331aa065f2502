"""The model being served, and the background task that swaps in new champions.

Requests read `store.model` once and use that object for the whole request, so a
swap (one reference assignment) can never mix two models in one response, and no
request waits for a load: loading happens in a worker thread beside the event loop.
"""

import asyncio
import gc
import logging
from typing import Protocol

from irisops.runtime import LoadedModel
from irisops.serving.sources import ModelSource

log = logging.getLogger("irisops.serving")


class StoreObserver(Protocol):
    """Told of every load and every failed attempt (metrics count them).

    A hook rather than an import, so the store knows nothing of Prometheus. Both calls
    come from the worker thread that ran the reload.
    """

    def model_loaded(self, model: LoadedModel) -> None: ...

    def reload_failed(self, reason: str) -> None: ...


def settle_heap() -> None:
    """Hide everything alive now (framework, settings, the new model) from the collector.

    A full collection walks every tracked object, and one that lands inside a large
    batch, which allocates thousands of objects, stalled it by up to ~100 ms. Frozen
    objects are never walked again; unfreezing first lets the previous model's cycles
    be collected once. bench/batches.py measures the pauses with and without.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ModelStore:
    def __init__(self, source: ModelSource, observer: StoreObserver | None = None) -> None:
        self.source = source
        self.observer = observer
        self.model: LoadedModel | None = None
        self.last_error: str | None = None
        self.reloads = 0
        self.draining = False  # set on SIGTERM: still answering, but not taking new work

    @property
    def not_ready_reason(self) -> str:
        if self.last_error:
            return f"no model loaded: {self.last_error}"
        return f"no model published yet in {self.source.description}"

    def refresh(self) -> None:
        """Load the source's latest model if it differs from the one being served."""
        try:
            key = self.source.latest()
            if key is None or (self.model is not None and key == self.model.key):
                return
            model = self.source.load(key)
        except Exception as exc:  # any failure keeps the previous model serving
            reason = str(exc) or type(exc).__name__
            if reason != self.last_error:  # logged once per distinct reason, counted every time
                log.error(
                    "model reload failed, still serving %s: %s",
                    self._serving(),
                    reason,
                    extra={"event": "model_reload_failed", "reason": reason},
                )
            self.last_error = reason
            if self.observer is not None:
                self.observer.reload_failed(reason)
            return
        previous = self._serving()
        # Whoever sees the new model (a request, a read of /model or /metrics) must also
        # see its reload counted and the old error gone, so those come first; the slow
        # heap settling comes last, once the swap is announced.
        self.last_error = None
        self.reloads += 1
        if self.observer is not None:
            self.observer.model_loaded(model)
        self.model = model
        log.info(
            "now serving model version %s (%s), was %s",
            model.version,
            model.key,
            previous,
            extra={"event": "model_loaded", "model_version": model.version, "model_key": key},
        )
        settle_heap()

    def _serving(self) -> str:
        return "nothing" if self.model is None else f"version {self.model.version}"

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.refresh)
