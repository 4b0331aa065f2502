"""Types of the compiled request tallies (src/irisops/serving/_tally.c)."""

from array import array
from typing import Any

class Requests:
    """Request counts and latency histograms, one series per (method, route, status)."""

    def __init__(
        self, bounds: tuple[float, ...], methods: frozenset[str], other: str, /
    ) -> None: ...
    def record(self, method: str, route: str, status: int, seconds: float, /) -> None:
        """One request answered: its series' count in the bucket of the first bound >= seconds
        (or the last, above every bound) and its summed seconds. A method not in `methods` is
        counted as `other`."""

    def series(self) -> list[tuple[tuple[str, str, int], list[int], float]]:
        """Each series' (method, route, status), its count per bucket and its summed seconds."""

class Ring:
    """The feedback index's writes, over the containers Feedback reads."""

    next: int  # the slot the next answer overwrites
    capacity: int

    def __init__(
        self,
        hashes: array[int],
        versions: list[str | None],
        class_ids: list[Any],
        shadows: list[tuple[str, Any] | None],
        labelled: dict[int, tuple[int, ...]],
        /,
    ) -> None: ...
    def remember(self, request_id: str, version: str, class_ids: Any, /) -> int:
        """Keep an answer in the next slot, oldest first: the id's hash, the version, the
        compacted class ids; the slot's shadow answer and feedback cleared. The slot."""

def compact(class_ids: Any, /) -> Any:
    """One row's class id as the int it is, a longer list as a tuple, anything else as it is."""
