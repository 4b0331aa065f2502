"""Ground truth joined to answers: exact live accuracy, and clear refusals."""

import gc

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
    feedback.remember("r", "1", [0])
    feedback.shadow_scored("r", "2", np.asarray([1]))
    [judged] = feedback.label([("r", 0, "versicolor")], CLASSES)
    assert judged.answers == {CHAMPION: ("1", "setosa"), CHALLENGER: ("2", "versicolor")}
    assert feedback.accuracy() == {(CHAMPION, "1"): (0.0, 1), (CHALLENGER, "2"): (1.0, 1)}


def test_unknown_request_ids_are_404() -> None:
    error = refusal(Feedback(10, 10), ("nope", 0, "setosa"))
    assert error.status == 404 and "'nope'" in error.detail and "X-Request-ID" in error.detail


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


def test_remembered_answers_are_left_alone_by_the_collector() -> None:
    """A full index is 100,000 entries: walked at every full collection, they stalled batches."""
    feedback = Feedback(capacity=100, window=100)
    feedback.remember("one", "3", [2])
    feedback.remember("batch", "3", np.asarray([0, 1]))
    feedback.shadow_scored("one", "4", [1])
    feedback.label([("one", 0, "virginica")], CLASSES)
    for _ in range(3):  # a tuple is untracked once the tuples in it are: a collection a level
        gc.collect()
    assert not any(gc.is_tracked(entry) for entry in feedback.answered.values())
    assert feedback.accuracy() == {(CHAMPION, "3"): (1.0, 1), (CHALLENGER, "4"): (0.0, 1)}
