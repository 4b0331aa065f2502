"""Ground truth arriving later: `POST /feedback` joined to the answer it judges.

Each answered request is remembered by its request id (the `X-Request-ID` the
caller got back) in a bounded index of the most recent ones, with what the
champion answered and, once scored, what the shadow challenger answered. Feedback
names a request id, a row (0 for /predict) and the true class; live accuracy is
kept over the last `window` labelled rows, per role and model version.
"""

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, NamedTuple

from irisops.serving.errors import ApiError

CHAMPION, CHALLENGER = "champion", "challenger"


class Answered(NamedTuple):
    """What the index keeps of one answer, stored as a plain tuple (`tuple(answered)`).

    A plain tuple of strings, ints and arrays is one the collector stops walking after
    the first collection it survives (a NamedTuple or dataclass stays tracked). The index
    holds up to `capacity` answers, and full collections walking 100,000 tracked entries
    stalled the large batches that set them off.
    """

    version: str
    class_ids: Any  # one per row: a tuple, or a batch's array
    shadow: tuple[str, Any] | None = None  # (version, class ids), once scored
    labelled: tuple[int, ...] = ()


@dataclass
class Judged:
    """One labelled row: what each model said, and the truth."""

    request_id: str
    row: int
    true_class: str
    answers: dict[str, tuple[str, str]]  # role -> (version, predicted class)


def untracked(class_ids: Any) -> Any:
    """A list as a tuple (of ints: left alone by the collector); an array as it is."""
    return tuple(class_ids) if isinstance(class_ids, list) else class_ids


class Feedback:
    def __init__(self, capacity: int, window: int) -> None:
        self.capacity = capacity
        self.window = window
        self.answered: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self.outcomes: dict[tuple[str, str], deque[bool]] = {}

    def remember(self, request_id: str, version: str, class_ids: Any) -> None:
        self.answered[request_id] = (version, untracked(class_ids), None, ())
        if len(self.answered) > self.capacity:
            self.answered.popitem(last=False)

    def entry(self, request_id: str) -> Answered | None:
        found = self.answered.get(request_id)
        return None if found is None else Answered._make(found)

    def shadow_scored(self, request_id: str, version: str, class_ids: Any) -> None:
        if (answered := self.entry(request_id)) is not None:
            shadow = (version, untracked(class_ids))
            self.answered[request_id] = tuple(answered._replace(shadow=shadow))

    def label(self, items: list[tuple[str, int, str]], classes: list[str]) -> list[Judged]:
        """Record the true class of each (request id, row, class), or refuse them all."""
        seen: set[tuple[str, int]] = set()
        for request_id, row, true_class in items:
            self._check(request_id, row, true_class, classes)
            if (request_id, row) in seen:
                raise ApiError(409, f"request {request_id!r} row {row} is labelled twice")
            seen.add((request_id, row))
        return [self._apply(*item, classes) for item in items]

    def _check(self, request_id: str, row: int, true_class: str, classes: list[str]) -> None:
        if true_class not in classes:
            raise ApiError(
                422, f"true_class must be one of {', '.join(classes)}, got {true_class!r}"
            )
        answered = self.entry(request_id)
        if answered is None:
            raise ApiError(
                404,
                f"no answer with request id {request_id!r} among the last {self.capacity:,} "
                "(send the X-Request-ID header the prediction came back with)",
            )
        if not 0 <= row < len(answered.class_ids):
            last = len(answered.class_ids) - 1
            raise ApiError(422, f"row must be 0 to {last} for that request, got {row}")
        if row in answered.labelled:
            raise ApiError(409, f"request {request_id!r} row {row} already has feedback")

    def _apply(self, request_id: str, row: int, true_class: str, classes: list[str]) -> Judged:
        answered = Answered._make(self.answered[request_id])
        self.answered[request_id] = tuple(answered._replace(labelled=(*answered.labelled, row)))
        answers = {CHAMPION: (answered.version, classes[int(answered.class_ids[row])])}
        if answered.shadow is not None:
            version, ids = answered.shadow
            answers[CHALLENGER] = (version, classes[int(ids[row])])
        for role, (version, predicted) in answers.items():
            outcomes = self.outcomes.setdefault((role, version), deque(maxlen=self.window))
            outcomes.append(predicted == true_class)
        return Judged(request_id, row, true_class, answers)

    def accuracy(self) -> dict[tuple[str, str], tuple[float, int]]:
        """(role, version) -> (live accuracy over the window, rows labelled in it)."""
        return {key: (sum(o) / len(o), len(o)) for key, o in self.outcomes.items() if o}
