"""Property tests of input validation: what is accepted, and how everything else is refused.

The rules are checked in-process on thousands of generated inputs, then a sample of
arbitrary bodies goes to the real API, which must never answer 5xx.
"""

import json
import math
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from irisops.serving.errors import ApiError
from irisops.serving.schemas import BatchRequest, PredictRequest
from irisops.serving.validation import refusal as translated

finite = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**15), 10**15)
row = st.lists(finite, min_size=4, max_size=4)
not_a_number = (
    st.text(max_size=5)
    | st.booleans()
    | st.none()
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)
)


def refusal(
    model: type[PredictRequest] | type[BatchRequest], body: bytes, **context: Any
) -> ApiError:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(body, context=context)
    return translated(caught.value.errors())


@given(row)
def test_any_four_finite_numbers_are_accepted(features: list[float]) -> None:
    parsed = PredictRequest.model_validate_json(json.dumps({"features": features}))
    assert parsed.features == [float(x) for x in features]


@given(st.lists(finite, max_size=12).filter(lambda values: len(values) != 4))
def test_any_other_length_is_refused_naming_the_field(features: list[float]) -> None:
    error = refusal(PredictRequest, json.dumps({"features": features}).encode())
    assert error.status == 422
    assert error.detail == f"features must be 4 numbers, got {len(features)}"


@given(row, st.integers(0, 3), not_a_number)
def test_a_non_number_is_refused_naming_its_position(
    features: list[float], position: int, value: Any
) -> None:
    features = [*features]
    features[position] = value
    error = refusal(PredictRequest, json.dumps({"features": features}).encode())
    assert error.status == 422
    assert f"features[{position}]" in error.detail


@given(row, st.integers(0, 3), st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]))
def test_non_finite_numbers_are_refused(features: list[float], position: int, literal: str) -> None:
    cells = [json.dumps(x) for x in features]
    cells[position] = literal
    error = refusal(PredictRequest, f'{{"features":[{",".join(cells)}]}}'.encode())
    assert error.status == 422
    assert f"features[{position}] must be a finite number, got " in error.detail


@given(st.lists(row, min_size=1, max_size=30), st.data())
def test_one_bad_row_in_a_batch_is_pointed_at(rows: list[list[float]], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(rows) - 1))
    column = data.draw(st.integers(0, 3))
    cells: list[list[Any]] = [[*r] for r in rows]
    cells[index][column] = data.draw(not_a_number)
    error = refusal(BatchRequest, json.dumps({"instances": cells}).encode())
    assert error.status == 422
    assert f"instances[{index}][{column}]" in error.detail


@given(st.lists(row, min_size=0, max_size=20), st.integers(0, 20))
def test_the_row_limit_is_a_413_counted_before_validation(
    rows: list[list[float]], limit: int
) -> None:
    body = json.dumps({"instances": rows}).encode()
    if len(rows) <= limit:
        assert len(
            BatchRequest.model_validate_json(body, context={"max_rows": limit}).instances
        ) == len(rows)
    else:
        error = refusal(BatchRequest, body, max_rows=limit)
        assert error.status == 413
        assert f"limit of {limit}" in error.detail


@given(st.binary(max_size=64))
def test_arbitrary_bytes_are_a_400_or_422(body: bytes) -> None:
    try:
        PredictRequest.model_validate_json(body)
    except ValidationError as exc:
        assert translated(exc.errors()).status in {400, 422}


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_the_api_never_answers_5xx_to_any_body(client: httpx.Client, body: bytes) -> None:
    for path in ("/predict", "/predict/batch"):
        response = client.post(path, content=body)
        assert response.status_code in {400, 413, 422}, (body, response.text)
        assert response.json()["detail"]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(features=row)
def test_the_api_answers_every_valid_row(client: httpx.Client, features: list[float]) -> None:
    response = client.post("/predict", json={"features": features})
    assert response.status_code == 200, response.text
    body = response.json()
    assert math.isclose(sum(body["probabilities"].values()), 1.0, abs_tol=1e-4)
    assert body["model_version"] == "1"
