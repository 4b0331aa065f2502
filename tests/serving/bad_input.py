"""Bad input and how it is refused: the tables the live and the in-process tests share."""

from typing import Any

import httpx
import pytest

from tests.processes import SEED_BODY

SEED_ROW = [5.1, 3.5, 1.4, 0.2]


def assert_client_error(response: httpx.Response, status: int, *fragments: str) -> str:
    """A JSON error with the expected status whose `detail` contains every fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    for fragment in fragments:
        assert fragment in detail, f"{fragment!r} not in {detail!r}"
    return detail


def assert_refusal(response: Any, status: int, fragments: list[str]) -> None:
    """`assert_client_error`, and a 422 lists each invalid field, named in the sentence."""
    detail = assert_client_error(response, status, *fragments)
    if status == 422:
        errors = response.json()["errors"]
        assert errors, "a 422 lists each invalid field"
        assert all(error["field"] and error["message"] for error in errors)
        # The sentence names each field, unless it says where the body should go instead.
        if "to predict" not in detail:
            assert all(error["field"] in detail for error in errors)


BAD_PREDICT_BODIES = [
    pytest.param(
        '{"features":[5.1,3.5,1.4]}',
        422,
        ["features must be 4 numbers, got 3"],
        id="three-features",
    ),
    pytest.param(
        '{"features":[5.1,3.5,1.4,0.2,1.0]}',
        422,
        ["features must be 4 numbers, got 5"],
        id="five-features",
    ),
    pytest.param('{"features":[]}', 422, ["features must be 4 numbers, got 0"], id="no-features"),
    pytest.param(
        '{"features":[5.1,NaN,1.4,0.2]}',
        422,
        ["features[1] must be a finite number, got NaN"],
        id="nan",
    ),
    pytest.param(
        '{"features":[5.1,3.5,Infinity,0.2]}',
        422,
        ["features[2] must be a finite number, got Infinity"],
        id="infinity",
    ),
    pytest.param(
        '{"features":[5.1,3.5,1.4,-Infinity]}',
        422,
        ["features[3] must be a finite number, got -Infinity"],
        id="-infinity",
    ),
    pytest.param(
        '{"features":[1e999,3.5,1.4,0.2]}',
        422,
        ["features[0] must be a finite number, got Infinity"],
        id="1e999",
    ),
    pytest.param(
        '{"features":["5.1",3.5,1.4,0.2]}',
        422,
        ['features[0] must be a number, got the string "5.1"'],
        id="string",
    ),
    pytest.param(
        '{"features":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}',
        422,
        ["features must be one row of 4 numbers, got a list of rows", "/predict/batch"],
        id="rows-sent-to-predict",
    ),
    pytest.param(
        '{"features":["5.1","3.5","1.4","0.2"]}',
        422,
        ["features[0] must be a number", "features[3] must be a number"],
        id="all-strings",
    ),
    pytest.param(
        '{"features":[5.1,true,1.4,0.2]}',
        422,
        ["features[1] must be a number, got true"],
        id="boolean",
    ),
    pytest.param(
        '{"features":[5.1,3.5,null,0.2]}',
        422,
        ["features[2] must be a number, got null"],
        id="null-element",
    ),
    pytest.param(
        '{"features":null}',
        422,
        ["features must be a list of 4 numbers, got null"],
        id="null-features",
    ),
    pytest.param(
        '{"features":"5.1,3.5,1.4,0.2"}',
        422,
        ['features must be a list of 4 numbers, got the string "5.1,3.5,1.4,0.2"'],
        id="csv-string",
    ),
    pytest.param(
        '{"features":{"a":1}}',
        422,
        ["features must be a list of 4 numbers, got an object"],
        id="object-features",
    ),
    pytest.param("{}", 422, ["features is required"], id="missing-field"),
    pytest.param(
        '{"feature":[5.1,3.5,1.4,0.2]}',
        422,
        ["features is required", "feature is not a field of this request"],
        id="misspelled-field",
    ),
    pytest.param(
        '{"features":[5.1,3.5,1.4,0.2],"extra":1}',
        422,
        ["extra is not a field of this request"],
        id="unknown-field",
    ),
    pytest.param('{"features":[5.1,', 400, ["malformed JSON"], id="truncated-json"),
    pytest.param("", 400, ["malformed JSON"], id="empty-body"),
    pytest.param("features=5.1,3.5,1.4,0.2", 400, ["malformed JSON"], id="form-encoded"),
    pytest.param(SEED_BODY + " trailing", 400, ["malformed JSON"], id="trailing-garbage"),
    pytest.param(
        "[5.1,3.5,1.4,0.2]",
        422,
        ["body must be a JSON object, got a list of 4"],
        id="top-level-array",
    ),
    pytest.param(
        '"hello"',
        422,
        ['body must be a JSON object, got the string "hello"'],
        id="top-level-string",
    ),
]


BAD_BATCH_BODIES = [
    pytest.param(
        {"instances": [SEED_ROW, [5.1, 3.5, "x", 0.2]]},
        ['instances[1][2] must be a number, got the string "x"'],
        id="string-in-row-1",
    ),
    pytest.param(
        {"instances": [SEED_ROW, SEED_ROW, [5.1, 3.5]]},
        ["instances[2] must be 4 numbers, got 2"],
        id="short-row-2",
    ),
    pytest.param(
        {"instances": SEED_ROW},
        ["instances must be a list of rows, got one row of numbers", "to /predict"],
        id="flat-row",
    ),
    pytest.param(
        {"instances": [SEED_ROW, 5.1]},
        ["instances[1] must be a list of 4 numbers, got 5.1"],
        id="mixed",
    ),
    pytest.param(
        {"instances": None}, ["instances must be a list of rows, got null"], id="null-instances"
    ),
    pytest.param(
        {"features": SEED_ROW}, ["instances is required", "to /predict"], id="single-body"
    ),
]
