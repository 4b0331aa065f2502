"""Ground truth arriving later: `POST /feedback` joined to the answer it judges.

Each answered request is remembered by its request id (the `X-Request-ID` the
caller got back) in a bounded index of the most recent ones, with what the
champion answered and, once scored, what the shadow challenger answered. Feedback
names a request id, a row (0 for /predict) and the true class; live accuracy is
kept over the last `window` labelled rows, per role and model version.
"""

from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from irisops.serving._tally import Ring, compact
from irisops.serving.errors import ApiError

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class Judged:
    """One labelled row: what each model said, and the truth."""

    request_id: str
    row: int
    true_class: str
    answers: dict[str, tuple[str, str]]  # role -> (version, predicted class)


def rows_of(kept: Any) -> Any:
    return (kept,) if isinstance(kept, int) else kept


class Feedback:
    """The last `capacity` answers in a ring of preallocated slots, overwritten oldest first.

    Remembering an answer is every prediction's cost and looking one up only
    feedback's, so the ring is built for the first: an answer writes its request id's
    hash, its model version and its class ids into its slot, and the index keeps no
    object of its own for it, not even the id: one row's class id is kept as the int it
    is (a cached small int), a longer list as a tuple, which the collector stops walking
    once it has seen it, and an array as it is. An `OrderedDict` keyed by request id
    kept several objects an answer, 100,000 answers' worth of them, a working set
    that cost a /predict several percent of its server time (docs/benchmark.md,
    step 21). Feedback finds its answers by comparing hashes over the whole ring at
    once, in numpy: under a millisecond for 100,000 slots. The writes are C (_tally.c's
    `Ring`), so remembering an answer runs no Python function of ours.

    An id is known by its hash alone (Python's, keyed per process unless
    PYTHONHASHSEED fixes it): an id the index has never seen matches one of 100,000
    answers by chance about once in 10^14 lookups.
    """

    def __init__(self, capacity: int, window: int) -> None:
        self.capacity = capacity
        self.window = window
        self.hashes = array("q", bytes(8 * capacity))
        self.versions: list[str | None] = [None] * capacity  # None: never written
        self.class_ids: list[Any] = [None] * capacity
        self.shadows: list[tuple[str, Any] | None] = [None] * capacity
        self.labelled: dict[int, tuple[int, ...]] = {}  # slot -> its rows with feedback
        self.outcomes: dict[tuple[str, str], deque[bool]] = {}
        self.ring = Ring(self.hashes, self.versions, self.class_ids, self.shadows, self.labelled)
        # Keep an answer (request id, model version, class ids); the slot it is kept in.
        self.remember = self.ring.remember

    def shadow_scored(self, slot: int, request_id: str, version: str, class_ids: Any) -> None:
        """The challenger's answer to the request kept in `slot`, unless it has been overwritten."""
        if self.hashes[slot] == hash(request_id):
            self.shadows[slot] = (version, compact(class_ids))

    def slots(self, request_ids: set[str]) -> dict[str, int]:
        """Where each request id's latest answer is kept, for those still in the ring."""
        by_hash = {hash(request_id): request_id for request_id in request_ids}
        wanted = np.fromiter(by_hash, np.int64, len(by_hash))
        matched = np.flatnonzero(np.isin(np.frombuffer(self.hashes, np.int64), wanted)).tolist()
        found: dict[str, int] = {}
        # Oldest first, so a request id a client sent twice ends on its latest answer.
        for slot in sorted(matched, key=lambda s: (s - self.ring.next) % self.capacity):
            if self.versions[slot] is not None:
                found[by_hash[self.hashes[slot]]] = slot
        return found

    def label(self, items: list[tuple[str, int, str]], classes: list[str]) -> list[Judged]:
        """Record the true class of each (request id, row, class), or refuse them all."""
        slots = self.slots({request_id for request_id, _, _ in items})
        seen: set[tuple[str, int]] = set()
        for request_id, row, true_class in items:
            self._check(slots.get(request_id), request_id, row, true_class, classes)
            if (request_id, row) in seen:
                raise ApiError(409, f"request {request_id!r} row {row} is labelled twice")
            seen.add((request_id, row))
        return [self._apply(slots[item[0]], *item, classes) for item in items]

    def _check(
        self, slot: int | None, request_id: str, row: int, true_class: str, classes: list[str]
    ) -> None:
        if true_class not in classes:
            raise ApiError(
                422, f"true_class must be one of {', '.join(classes)}, got {true_class!r}"
            )
        if slot is None:
            raise ApiError(
                404,
                f"no answer with request id {request_id!r} among the last {self.capacity:,} "
                "(send the X-Request-ID header the prediction came back with)",
            )
        if not 0 <= row < (count := len(rows_of(self.class_ids[slot]))):
            raise ApiError(422, f"row must be 0 to {count - 1} for that request, got {row}")
        if row in self.labelled.get(slot, ()):
            raise ApiError(409, f"request {request_id!r} row {row} already has feedback")

    def _apply(
        self, slot: int, request_id: str, row: int, true_class: str, classes: list[str]
    ) -> Judged:
        self.labelled[slot] = (*self.labelled.get(slot, ()), row)
        version = self.versions[slot]
        assert version is not None  # a slot found by request id has been written
        answers = {CHAMPION: (version, classes[int(rows_of(self.class_ids[slot])[row])])}
        if (shadow := self.shadows[slot]) is not None:
            answers[CHALLENGER] = (shadow[0], classes[int(rows_of(shadow[1])[row])])
        for role, (answered_by, predicted) in answers.items():
            outcomes = self.outcomes.setdefault((role, answered_by), deque(maxlen=self.window))
            outcomes.append(predicted == true_class)
        return Judged(request_id, row, true_class, answers)

    def accuracy(self) -> dict[tuple[str, str], tuple[float, int]]:
        """(role, version) -> (live accuracy over the window, rows labelled in it)."""
        return {key: (sum(o) / len(o), len(o)) for key, o in self.outcomes.items() if o}
