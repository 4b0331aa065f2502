"""The request tallies in C: what each request writes down, and what they refuse."""

from array import array
from typing import Any

import numpy as np
import pytest

from irisops.serving._tally import Requests, Ring, compact

BOUNDS = (0.001, 0.01, 0.1)


def tally() -> Requests:
    return Requests(BOUNDS, frozenset({"GET", "POST"}), "OTHER")


def test_a_request_is_counted_in_the_first_bucket_whose_bound_it_does_not_exceed() -> None:
    """Prometheus' `le`: a latency equal to a bound is in that bound's bucket."""
    requests = tally()
    for seconds in (0.0005, 0.001, 0.0011, 0.1, 7):
        requests.record("GET", "/health", 200, seconds)
    [(key, counts, seconds)] = requests.series()
    assert key == ("GET", "/health", 200)
    assert counts == [2, 1, 1, 1], "the last bucket is everything above the last bound"
    assert seconds == pytest.approx(7.1026)


def test_each_method_route_and_status_is_a_series_of_its_own() -> None:
    requests = tally()
    requests.record("POST", "/predict", 200, 0.0002)
    requests.record("POST", "/predict", 422, 0.0002)
    requests.record("POST", "/predict", 200, 0.02)
    series = {key: counts for key, counts, _ in requests.series()}
    assert series == {
        ("POST", "/predict", 200): [1, 0, 1, 0],
        ("POST", "/predict", 422): [1, 0, 0, 0],
    }


def test_methods_clients_invent_share_one_series() -> None:
    requests = tally()
    for method in ("PROPFIND", "MKCOL", "BREW"):
        requests.record(method, "/health", 405, 0.0001)
    assert [key for key, _, _ in requests.series()] == [("OTHER", "/health", 405)]


@pytest.mark.parametrize("bounds", [(0.1, 0.01), (0.1, 0.1), ("fast",)])
def test_bounds_that_do_not_increase_are_refused(bounds: tuple[float, ...]) -> None:
    with pytest.raises((ValueError, TypeError)):
        Requests(bounds, frozenset({"GET"}), "OTHER")


def test_a_record_of_the_wrong_shape_is_a_type_error_and_counts_nothing() -> None:
    requests = tally()
    with pytest.raises(TypeError):
        requests.record("GET", "/health", 200)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        requests.record("GET", "/health", 200, "slow")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        requests.record(["GET"], "/health", 200, 0.1)  # type: ignore[arg-type]
    assert requests.series() == []


class Slots:
    """The containers a ring writes into, as Feedback holds them."""

    def __init__(self, capacity: int) -> None:
        self.hashes = array("q", bytes(8 * capacity))
        self.versions: list[str | None] = [None] * capacity
        self.class_ids: list[Any] = [None] * capacity
        self.shadows: list[tuple[str, Any] | None] = [("2", 1)] * capacity
        self.labelled: dict[int, tuple[int, ...]] = {}
        self.ring = Ring(self.hashes, self.versions, self.class_ids, self.shadows, self.labelled)


def test_the_ring_writes_each_answer_in_the_next_slot_oldest_first() -> None:
    slots = Slots(2)
    slots.labelled[0] = (0,)
    assert [slots.ring.remember(f"r{n}", str(n), [n]) for n in range(3)] == [0, 1, 0]
    assert slots.ring.next == 1
    assert list(slots.hashes) == [hash("r2"), hash("r1")]
    assert slots.versions == ["2", "1"] and slots.class_ids == [2, 1]
    assert slots.shadows == [None, None], "a new answer's slot has no shadow answer"
    assert slots.labelled == {}, "nor feedback"


def test_a_slot_keeps_one_rows_id_as_an_int_and_more_as_a_tuple_or_the_array() -> None:
    ids = np.asarray([0, 2])
    assert compact([2]) == 2 and compact([0, 1]) == (0, 1) and compact(ids) is ids


def test_the_ring_refuses_containers_that_do_not_match() -> None:
    with pytest.raises(ValueError, match="array"):
        Ring(array("q", bytes(16)), [None], [None, None], [None, None], {})
    with pytest.raises(ValueError, match="array"):
        Ring(array("d", bytes(16)), [None] * 2, [None] * 2, [None] * 2, {})  # type: ignore[arg-type]
    with pytest.raises(BufferError, match="not writable"):
        Ring(b"\0" * 16, [None] * 2, [None] * 2, [None] * 2, {})  # type: ignore[arg-type]


def test_the_hashes_cannot_be_resized_under_the_ring() -> None:
    slots = Slots(2)
    with pytest.raises(BufferError):
        slots.hashes.append(0)
    assert slots.ring.remember("r", "1", [0]) == 0
