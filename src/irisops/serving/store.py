"""The model being served, and the background task that swaps in new champions.

Requests read `store.model` once and use that object for the whole request, so a
swap (one reference assignment) can never mix two models in one response, and no
request waits for a load: loading happens in a worker thread beside the event loop.
"""

import asyncio
import logging

from irisops.runtime import LoadedModel
from irisops.serving.sources import ModelSource

log = logging.getLogger("irisops.serving")


class ModelStore:
    def __init__(self, source: ModelSource) -> None:
        self.source = source
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
            if reason != self.last_error:
                log.error("model reload failed, still serving %s: %s", self._serving(), reason)
            self.last_error = reason
            return
        previous = self._serving()
        self.model = model
        self.last_error = None
        self.reloads += 1
        log.info("now serving model version %s (%s), was %s", model.version, model.key, previous)

    def _serving(self) -> str:
        return "nothing" if self.model is None else f"version {self.model.version}"

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.refresh)
