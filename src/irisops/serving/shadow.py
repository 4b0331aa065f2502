"""The shadow challenger: live requests scored by the `challenger` alias, off their path.

A request answered by the champion may be offered here (a share of them, by
chance); the offer is a bounded deque append and nothing more, so the caller's
answer, its bytes and its latency are the champion's alone. A worker thread scores
the queued rows with the challenger and compares: the same class or not, and the
probability gap (per row, the largest absolute difference between the two
probability vectors). A full queue drops offers and counts them.

The challenger is loaded and hot-reloaded like the champion, from the registry;
while it is the champion's own version there is nothing to compare, and offers are
not scored.
"""

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from irisops.drain import Drain
from irisops.serving.schemas import FEATURES
from irisops.serving.store import ModelStore

log = logging.getLogger("irisops.serving")


@dataclass
class Agreement:
    """What one challenger version did on live traffic."""

    rows: int = 0
    agreed: int = 0
    gap_sum: float = 0.0

    @property
    def rate(self) -> float | None:
        return self.agreed / self.rows if self.rows else None

    @property
    def mean_gap(self) -> float | None:
        return self.gap_sum / self.rows if self.rows else None


@dataclass
class Offer:
    request_id: str | None
    feedback_slot: int | None  # where feedback keeps the champion's answer (feedback.py)
    champion_version: str
    classes: list[str]
    features: Any  # one row (a list) or an n x 4 array
    probabilities: npt.NDArray[np.float32]  # the champion's, n x classes


Scored = Callable[[Offer, str, npt.NDArray[np.float32], npt.NDArray[np.intp]], None]


class Shadow:
    def __init__(
        self, store: ModelStore, fraction: float, on_scored: Scored, queue_size: int = 1_000
    ) -> None:
        self.store = store
        self.fraction = fraction
        self.on_scored = on_scored
        self.versions: dict[str, Agreement] = {}
        self.queued = Drain("shadow", self._score_all, queue_size)

    @property
    def dropped(self) -> int:
        return self.queued.dropped

    def start(self) -> None:
        self.queued.start()

    def stop(self) -> None:
        self.queued.stop()

    def offer(self, offer: Offer) -> None:
        if self.fraction < 1.0 and random.random() >= self.fraction:
            return
        self.queued.put(offer)

    def _score_all(self, offers: list[Offer]) -> None:
        for offer in offers:
            try:
                self._score(offer)
            except Exception:  # a challenger that fails must never reach the champion
                log.exception("shadow scoring failed")

    def _score(self, offer: Offer) -> None:
        challenger = self.store.model
        if challenger is None or challenger.version == offer.champion_version:
            return
        rows = np.asarray(offer.features, dtype=np.float32).reshape(-1, FEATURES)
        probabilities = challenger.classifier.predict_proba(rows)
        classes = probabilities.argmax(axis=1)
        champion = offer.probabilities.reshape(len(rows), -1)
        stats = self.versions.setdefault(challenger.version, Agreement())
        stats.rows += len(rows)
        stats.agreed += int((classes == champion.argmax(axis=1)).sum())
        stats.gap_sum += float(np.abs(probabilities - champion).max(axis=1).sum())
        self.on_scored(offer, challenger.version, probabilities, classes)
