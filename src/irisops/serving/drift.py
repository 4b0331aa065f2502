"""A sliding window of live inputs, binned like the training reference.

A request only appends its rows to a queue (a deque append: tens of nanoseconds,
safe from any thread); the rows are binned in bulk, vectorised, every `FOLD_EVERY`
appends and before every read. The window keeps each row's bin per feature in a
ring, and the count per bin, so a read costs a few array operations however large
the window is.
"""

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from irisops.profile import ReferenceProfile, ks, psi

FOLD_EVERY = 256
# What one request adds: its rows as lists (the JSON routes) or as an array.
Rows = npt.NDArray[np.float32] | list[list[float]]


@dataclass(frozen=True)
class FeatureDrift:
    psi: float
    ks: float
    out_of_range_share: float


@dataclass(frozen=True)
class DriftReport:
    window_rows: int
    out_of_range_share: float
    features: dict[str, FeatureDrift]


def stacked(batches: list[Rows], width: int) -> npt.NDArray[np.float32]:
    """The queued rows as one float32 array, in order.

    Consecutive lists (single-row requests, most of the traffic) become one array in
    one call: converting each on its own cost more than binning them.
    """
    parts: list[npt.NDArray[np.float32]] = []
    run: list[list[float]] = []
    for batch in batches:
        if isinstance(batch, list):
            run.extend(batch)
            continue
        if run:
            parts.append(np.asarray(run, dtype=np.float32))
            run = []
        parts.append(batch)
    if run:
        parts.append(np.asarray(run, dtype=np.float32))
    rows = np.concatenate([np.reshape(p, (-1, width)) for p in parts])
    return rows.astype(np.float32, copy=False)


class DriftWindow:
    def __init__(self, reference: ReferenceProfile, size: int) -> None:
        self.reference = reference
        self.size = size
        # Compared in float32, as the model sees its inputs: a 3.1 sent as JSON and a
        # 3.1 in the training data then fall in the same bin, whichever path parsed it.
        self.edges = [np.asarray(f.edges, dtype=np.float32) for f in reference.features]
        self.shares = [np.asarray(f.shares) for f in reference.features]
        self.low = np.asarray([f.minimum for f in reference.features], dtype=np.float32)
        self.high = np.asarray([f.maximum for f in reference.features], dtype=np.float32)
        self.offsets = np.cumsum([0] + [len(s) for s in self.shares])[:-1]
        self.bins = np.zeros((size, len(self.edges)), dtype=np.intp)  # global bin ids
        self.outside = np.zeros((size, len(self.edges)), dtype=bool)
        self.counts = np.zeros(int(sum(len(s) for s in self.shares)), dtype=np.int64)
        self.filled = 0
        self.head = 0
        self.out_of_range_rows = 0  # since start, not only in the window
        self.pending: deque[Rows] = deque()
        self.lock = threading.Lock()

    def observe(self, rows: Rows) -> None:
        """Queue rows: a list of them (one request's), or an n x features array."""
        self.pending.append(rows)
        if len(self.pending) >= FOLD_EVERY:
            self.fold()

    def fold(self) -> None:
        with self.lock:
            batches = [self.pending.popleft() for _ in range(len(self.pending))]
            if batches:
                self._add(stacked(batches, len(self.edges)))

    def _add(self, rows: npt.NDArray[np.floating]) -> None:
        outside = (rows < self.low) | (rows > self.high)
        self.out_of_range_rows += int(outside.any(axis=1).sum())
        rows, outside = rows[-self.size :], outside[-self.size :]
        bins = (
            np.column_stack(
                [np.searchsorted(e, rows[:, i], side="right") for i, e in enumerate(self.edges)]
            )
            + self.offsets
        )
        at = (self.head + np.arange(len(rows))) % self.size
        evicted = at[at < self.filled]  # slots [0, filled) hold rows; the rest are empty
        size = len(self.counts)
        self.counts -= np.bincount(self.bins[evicted].ravel(), minlength=size)
        self.counts += np.bincount(bins.ravel(), minlength=size)
        self.bins[at], self.outside[at] = bins, outside
        self.head = int((self.head + len(rows)) % self.size)
        self.filled = min(self.size, self.filled + len(rows))

    def report(self) -> DriftReport:
        self.fold()
        with self.lock:
            n, counts = self.filled, self.counts.copy()
            outside = self.outside[:n]
        features = {}
        for i, feature in enumerate(self.reference.features):
            start = self.offsets[i]
            live = counts[start : start + len(self.shares[i])] / max(n, 1)
            features[feature.name] = FeatureDrift(
                psi=psi(live, self.shares[i]) if n else 0.0,
                ks=ks(live, self.shares[i]) if n else 0.0,
                out_of_range_share=float(outside[:, i].mean()) if n else 0.0,
            )
        share = float(outside.any(axis=1).mean()) if n else 0.0
        return DriftReport(window_rows=n, out_of_range_share=share, features=features)
