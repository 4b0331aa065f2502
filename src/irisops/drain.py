"""A bounded queue drained by a thread: work taken off a request's path.

`put` is a length check and a deque append (both safe from any thread), so a
request never waits; past `size` queued items it drops the item and counts it.
A daemon thread hands everything queued to `handle` every `interval` seconds;
`stop` lets it finish and drains what is left, so a clean stop loses nothing.
The inference log and the shadow challenger both work this way.
"""

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
INTERVAL = 0.05


class Drain(Generic[Item]):
    def __init__(
        self, name: str, handle: Callable[[list[Item]], None], size: int, interval: float = INTERVAL
    ) -> None:
        self.handle = handle
        self.size = size
        self.interval = interval
        self.dropped = 0
        self.queue: deque[Item] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def put(self, item: Item) -> None:
        if len(self.queue) >= self.size:
            self.dropped += 1
            return
        self.queue.append(item)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.drain()

    def drain(self) -> None:
        """Hand everything queued now to `handle`, in one call."""
        items = [self.queue.popleft() for _ in range(len(self.queue))]
        if items:
            self.handle(items)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.drain()
