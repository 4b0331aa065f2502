"""Alternating short runs: how the benchmark compares two things on a machine that drifts.

On a shared VM, throughput moves by ±25% over seconds, more than some of the
differences measured. A drift that lasts longer than two short runs hits both runs
of a pair alike, so the median of per-pair ratios is steady where one long run of
each is not. The order alternates (a-b, b-a, ...) so neither side always goes first.
"""

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

PAIR_SECONDS = 2.0
Measured = TypeVar("Measured")


@dataclass(frozen=True)
class Spread:
    median: float
    q1: float
    q3: float


def spread(values: list[float]) -> Spread:
    q1, median, q3 = statistics.quantiles(values, n=4)
    return Spread(median=median, q1=q1, q3=q3)


def alternate(runs: Mapping[str, Callable[[], Measured]], pairs: int) -> dict[str, list[Measured]]:
    """Each of the two RUNS, PAIRS times, in alternating order; what each run returned."""
    first, second = runs
    measured: dict[str, list[Measured]] = {first: [], second: []}
    for pair in range(pairs):
        for name in (first, second) if pair % 2 == 0 else (second, first):
            measured[name].append(runs[name]())
    return measured


def ratios(measured: dict[str, list[float]], numerator: str, denominator: str) -> Spread:
    return spread([a / b for a, b in zip(measured[numerator], measured[denominator], strict=True)])
