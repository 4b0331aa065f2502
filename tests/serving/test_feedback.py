"""Ground truth joined to answers: exact live accuracy, and clear refusals."""

import gc
import sys

import numpy as np
import pytest

from irisops.serving.errors import ApiError
from irisops.serving.feedback import CHALLENGER, CHAMPION, Feedback

CLASSES = ["setosa", "versicolor", "virginica"]


def refusal(feedback: Feedback, *items: tuple[str, int, str]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        feedback.label(list(items), CLASSES)
    return caught.value


def test_live_accuracy_is_exact_for_a_known_sequence() -> None:
    feedback = Feedback(capacity=100, window=100)
    predicted = [0, 1, 2, 2, 1, 0, 0, 1]
    truth = [0, 1, 1, 2, 2, 0, 1, 1]
    for n, class_id in enumerate(predicted):
        feedback.remember(f"r{n}", "3", [class_id])
    feedback.label([(f"r{n}", 0, CLASSES[t]) for n, t in enumerate(truth)], CLASSES)
    assert feedback.accuracy() == {(CHAMPION, "3"): (5 / 8, 8)}


def test_accuracy_is_over_the_last_window_rows() -> None:
    feedback = Feedback(capacity=100, window=2)
    feedback.remember("batch", "1", np.asarray([0, 0, 0]))
    feedback.label([("batch", 0, "virginica"), ("batch", 1, "setosa")], CLASSES)
    feedback.label([("batch", 2, "setosa")], CLASSES)
    assert feedback.accuracy() == {(CHAMPION, "1"): (1.0, 2)}


def test_the_challengers_answer_is_judged_too() -> None:
    feedback = Feedback(capacity=10, window=10)
    feedback.shadow_scored(feedback.remember("r", "1", [0]), "r", "2", np.asarray([1]))
    [judged] = feedback.label([("r", 0, "versicolor")], CLASSES)
    assert judged.answers == {CHAMPION: ("1", "setosa"), CHALLENGER: ("2", "versicolor")}
    assert feedback.accuracy() == {(CHAMPION, "1"): (0.0, 1), (CHALLENGER, "2"): (1.0, 1)}


def test_unknown_request_ids_are_404() -> None:
    error = refusal(Feedback(10, 10), ("nope", 0, "setosa"))
    assert error.status == 404 and "'nope'" in error.detail and "X-Request-ID" in error.detail
    assert refusal(Feedback(10, 10), ("", 0, "setosa")).status == 404, "hash('') is an empty slot's"


def test_only_the_most_recent_answers_can_be_labelled() -> None:
    feedback = Feedback(capacity=2, window=10)
    for n in range(3):
        feedback.remember(f"r{n}", "1", [0])
    assert refusal(feedback, ("r0", 0, "setosa")).status == 404
    feedback.label([("r2", 0, "setosa")], CLASSES)


def test_a_bad_class_or_row_is_422_naming_what_is_allowed() -> None:
    feedback = Feedback(10, 10)
    feedback.remember("r", "1", [0, 1])
    bad_class = refusal(feedback, ("r", 0, "rose"))
    assert bad_class.status == 422 and "setosa, versicolor, virginica" in bad_class.detail
    bad_row = refusal(feedback, ("r", 2, "setosa"))
    assert bad_row.status == 422 and "0 to 1" in bad_row.detail


def test_duplicates_are_409_and_a_refused_list_labels_nothing() -> None:
    feedback = Feedback(10, 10)
    feedback.remember("r", "1", [0, 1])
    feedback.label([("r", 0, "setosa")], CLASSES)
    assert refusal(feedback, ("r", 0, "setosa")).status == 409
    assert refusal(feedback, ("r", 1, "setosa"), ("r", 1, "setosa")).status == 409
    assert refusal(feedback, ("r", 1, "setosa"), ("x", 0, "setosa")).status == 404
    assert feedback.accuracy() == {(CHAMPION, "1"): (1.0, 1)}, "nothing of the refused lists"


def test_a_request_id_sent_twice_is_joined_to_its_latest_answer() -> None:
    feedback = Feedback(capacity=10, window=10)
    feedback.remember("same", "1", [0])
    feedback.remember("other", "1", [0])
    feedback.remember("same", "2", [1, 2])
    [judged] = feedback.label([("same", 1, "virginica")], CLASSES)
    assert judged.answers == {CHAMPION: ("2", "virginica")}


def test_an_overwritten_slot_starts_afresh() -> None:
    """The ring's slot is the next answer's: no label or shadow answer of the last one."""
    feedback = Feedback(capacity=1, window=10)
    first = feedback.remember("r0", "1", [0])
    feedback.shadow_scored(first, "r0", "2", [2])
    feedback.label([("r0", 0, "setosa")], CLASSES)
    assert feedback.remember("r1", "1", [2]) == first
    feedback.shadow_scored(first, "r0", "2", [2])  # scored after its slot was overwritten
    [judged] = feedback.label([("r1", 0, "virginica")], CLASSES)
    assert judged.answers == {CHAMPION: ("1", "virginica")}


def test_the_index_keeps_no_object_of_a_single_row_answer() -> None:
    """Neither the request id nor the list of class ids: a full index made no garbage."""
    feedback = Feedback(capacity=10, window=10)
    request_id, class_ids = "".join(["a"] * 32), [1]
    held = sys.getrefcount(request_id), sys.getrefcount(class_ids)
    feedback.remember(request_id, "1", class_ids)
    assert (sys.getrefcount(request_id), sys.getrefcount(class_ids)) == held
    [judged] = feedback.label([("a" * 32, 0, "versicolor")], CLASSES)
    assert judged.answers == {CHAMPION: ("1", "versicolor")}


def test_remembered_answers_are_left_alone_by_the_collector() -> None:
    """A full index is 100,000 entries: walked at every full collection, they stalled batches."""
    feedback = Feedback(capacity=100, window=100)
    feedback.remember("one", "3", [2, 0])
    feedback.remember("batch", "3", np.asarray([0, 1]))
    feedback.shadow_scored(0, "one", "4", [1, 1])
    feedback.label([("one", 0, "virginica")], CLASSES)
    for _ in range(3):  # a tuple is untracked once the tuples in it are: a collection a level
        gc.collect()
    kept = [*feedback.class_ids, *feedback.shadows, *feedback.labelled.values()]
    assert not any(gc.is_tracked(entry) for entry in kept)
    assert feedback.accuracy() == {(CHAMPION, "3"): (1.0, 1), (CHALLENGER, "4"): (0.0, 1)}
