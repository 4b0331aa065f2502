"""Running the API under uvicorn, with a drain on SIGTERM.

uvicorn's own graceful shutdown finishes the requests it has already parsed, but it
closes the listening socket first: connections still waiting in the kernel's accept
queue (a busy single worker has some) are reset. Here a stop signal first drains:
`/ready` turns 503 so balancers stop routing to us, the server keeps accepting and
answering until no request has been in flight for a few ticks (or the drain
timeout passes), and only then does uvicorn's shutdown begin.
"""

import signal
import time
from typing import Any

import uvicorn

from irisops.config import Settings
from irisops.serving.app import create_app
from irisops.serving.guard import guarded
from irisops.serving.logs import logging_config
from irisops.serving.store import ModelStore

IDLE_TICKS = 3  # uvicorn ticks every 0.1 s
DRAIN_TIMEOUT = 10.0


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, store: ModelStore) -> None:
        super().__init__(config)
        self.store = store
        self.drain_started: float | None = None
        self.idle_ticks = 0

    async def on_tick(self, counter: int) -> bool:
        stop = await super().on_tick(counter)
        if not stop or self.force_exit:
            return stop
        if self.drain_started is None:
            self.drain_started = time.monotonic()
            self.store.draining = True
        self.idle_ticks = 0 if self.server_state.tasks else self.idle_ticks + 1
        return (
            self.idle_ticks >= IDLE_TICKS or time.monotonic() - self.drain_started > DRAIN_TIMEOUT
        )


def run(settings: Settings) -> None:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        loop="uvloop",
        http=guarded(settings.header_timeout, settings.body_timeout, settings.max_connections),
        timeout_keep_alive=settings.keep_alive_timeout,
        access_log=False,
        log_config=logging_config(settings.log_format),
        timeout_graceful_shutdown=int(DRAIN_TIMEOUT),
    )
    # uvicorn re-raises the stop signal after shutting down, under the handler it found:
    # a no-op one makes a drained stop exit 0 instead of dying by the signal (143).
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _ignore)
    DrainingServer(config, app.state.serving.store).run()


def _ignore(*_: Any) -> None:
    """A stop signal after uvicorn has finished: the process is already on its way out."""
