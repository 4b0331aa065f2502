"""The row renderer writes, byte for byte, what orjson writes for one dict per row."""

from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pytest

from irisops.serving import _rows
from irisops.serving.rows import batch_answer, fragments, rendered
from tests.serving.stand_ins import IRIS, as_loaded


def dicts(
    names: list[str],
    version: str,
    probabilities: npt.NDArray[np.float32],
    out_of_range: list[list[str]] | None = None,
) -> list[dict[str, Any]]:
    """The answer objects as the API built them before the renderer."""
    rows = []
    for i, p in enumerate(probabilities):
        c = int(p.argmax())
        row = {
            "prediction": names[c],
            "class_id": c,
            "probabilities": dict(zip(names, p, strict=True)),
            "model_version": version,
        }
        if out_of_range is not None:
            row["out_of_range"] = out_of_range[i]
        rows.append(row)
    return rows


def dumped(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def random_probabilities(rows: int, classes: int, seed: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    raw = rng.dirichlet(np.full(classes, 0.3), size=rows)
    # Values a forest gives (exact 0 and 1, tenths) beside arbitrary float32s.
    raw[::7] = np.eye(classes)[rng.integers(0, classes, size=len(raw[::7]))]
    raw[::5] = np.round(raw[::5], 1)
    return raw.astype(np.float32)


@pytest.mark.parametrize(
    ("names", "version"),
    [
        (IRIS, "3"),
        (["a", "b"], "unregistered"),
        (['with "quotes"', "back\\slash", "ünïcode", "tab\t", "5"], 'v"1'),
    ],
)
def test_batch_answer_is_what_orjson_writes_for_the_dicts(names: list[str], version: str) -> None:
    model = as_loaded(names, version)
    for seed in range(5):
        probabilities = random_probabilities(500, len(names), seed)
        class_ids = probabilities.argmax(axis=1)
        expected = dumped(
            {"predictions": dicts(names, version, probabilities), "model_version": version}
        )
        assert batch_answer(model, class_ids, probabilities) == expected


def test_one_row_is_the_predict_answer() -> None:
    model = as_loaded(IRIS)
    probabilities = np.asarray([[0.02, 0.97, 0.01]], dtype=np.float32)
    answer = rendered(model, probabilities.argmax(axis=1), probabilities)
    assert answer == dumped(dicts(IRIS, "3", probabilities)[0])
    assert orjson.loads(answer)["probabilities"] == {
        "setosa": 0.02,
        "versicolor": 0.97,
        "virginica": 0.01,
    }


def test_out_of_range_features_close_each_row() -> None:
    model = as_loaded(IRIS)
    probabilities = random_probabilities(3, 3, 0)
    outside = [[], ["petal width (cm)"], ["sepal length (cm)", "petal length (cm)"]]
    answer = batch_answer(model, probabilities.argmax(axis=1), probabilities, outside)
    expected = dicts(IRIS, "3", probabilities, outside)
    assert answer == dumped({"predictions": expected, "model_version": "3"})


def test_an_empty_batch() -> None:
    empty = np.empty((0, 3), dtype=np.float32)
    answer = batch_answer(as_loaded(IRIS), empty.argmax(axis=1), empty)
    assert orjson.loads(answer) == {"predictions": [], "model_version": "3"}


def test_fragments_are_made_once_per_model() -> None:
    fragments.cache_clear()
    model = as_loaded(IRIS, "41")
    probabilities = random_probabilities(2, 3, 0)
    for _ in range(3):
        rendered(model, probabilities.argmax(axis=1), probabilities)
    assert fragments.cache_info().misses == 1


class TestRefusals:
    """The C renderer checks what it copies from: nothing it is given can make it read astray."""

    parts = fragments(tuple(IRIS), "3")
    matrix = dumped(np.asarray([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]], dtype=np.float32))

    def render(self, class_ids: Any, matrix: bytes, extras: Any = None) -> bytes:
        parts = self.parts
        return _rows.render(class_ids, matrix, parts.heads, parts.keys, parts.tail, extras)

    def test_a_well_formed_call(self) -> None:
        assert (
            orjson.loads(b"[%b]" % self.render(np.asarray([0, 1]), self.matrix))[1]["class_id"] == 1
        )

    @pytest.mark.parametrize(
        "matrix",
        [
            b"[[1.0,0.0,0.0]]",  # one row for two ids
            b"[[1.0,0.0,0.0],[0.0,0.5,0.5],[0.0,0.5,0.5]]",  # three rows
            b"[[1.0,0.0],[0.0,0.5]]",  # two numbers a row
            b"[[1.0,0.0,0.0,0.0],[0.0,0.5,0.5,0.0]]",  # four
            b"[[1.0,0.0,0.0],[0.0,0.5,0.5]",  # cut short
            b"[[1.0,0.0,0.0],[0.0,,0.5]]",  # an empty number
            b"",
            b"[]",
        ],
    )
    def test_a_matrix_of_another_shape(self, matrix: bytes) -> None:
        with pytest.raises(ValueError, match="matrix is not 2 rows of 3 numbers"):
            self.render(np.asarray([0, 1]), matrix)

    @pytest.mark.parametrize("class_id", [-1, 3, 2**40])
    def test_a_class_id_out_of_range(self, class_id: int) -> None:
        with pytest.raises(ValueError, match="has no head"):
            self.render(np.asarray([0, class_id]), self.matrix)

    @pytest.mark.parametrize(
        "class_ids",
        [np.asarray([0, 1], dtype=np.int32), np.asarray([0.0, 1.0]), np.asarray([[0, 1]])],
    )
    def test_class_ids_that_are_not_an_int64_vector(self, class_ids: Any) -> None:
        with pytest.raises(ValueError, match="int64 vector"):
            self.render(class_ids, self.matrix)

    def test_extras_must_match_the_rows(self) -> None:
        with pytest.raises(ValueError, match="one item per row"):
            self.render(np.asarray([0, 1]), self.matrix, (b"",))
        with pytest.raises(TypeError, match="extras must be a tuple of bytes"):
            self.render(np.asarray([0, 1]), self.matrix, (b"", "text"))
