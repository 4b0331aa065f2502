"""The fast reading of plain bodies gives pydantic's rows exactly, or steps aside for pydantic.

Both forms: a batch's float32 rows (`plain_rows`), and /predict's one row of floats
(`_rows.parse_one`).
"""

import json
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from irisops.serving import _rows
from irisops.serving.routes.predict import features_of, plain_rows
from irisops.serving.schemas import FEATURES, BatchRequest, PredictRequest

MAX_ROWS = 50
finite = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63 - 1)
# Numbers that stay finite as float32 (larger ones are left to pydantic, as inf would be).
in_range = (
    st.floats(min_value=-3.4e38, max_value=3.4e38)
    | st.floats(width=32, allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**63 - 1)
)
row = st.lists(in_range, min_size=4, max_size=4)
anything = st.recursive(
    st.none() | st.booleans() | st.text(max_size=4) | finite,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


def validated(raw: bytes) -> np.ndarray | None:
    """What pydantic's path gives: the float32 rows, or None for a refusal."""
    try:
        body = BatchRequest.model_validate_json(raw, context={"max_rows": MAX_ROWS})
    except ValueError:
        return None
    return features_of(body.instances)


def assert_same_rows(raw: bytes) -> np.ndarray | None:
    fast = plain_rows(raw, MAX_ROWS)
    if fast is not None:
        expected = validated(raw)
        assert expected is not None, f"read a body pydantic refuses: {raw[:200]!r}"
        assert fast.dtype == np.float32 and fast.shape == expected.shape
        assert fast.tobytes() == expected.tobytes()
    return fast


@given(st.lists(row, min_size=1, max_size=MAX_ROWS))
def test_rows_of_finite_numbers_are_read_as_pydantic_reads_them(rows: list[list[Any]]) -> None:
    assert assert_same_rows(json.dumps({"instances": rows}).encode()) is not None


@given(st.lists(st.lists(anything, max_size=6), max_size=6))
def test_any_other_rows_give_pydantic_rows_or_step_aside(rows: list[Any]) -> None:
    assert_same_rows(json.dumps({"instances": rows}).encode())


@given(anything)
def test_any_other_body_gives_pydantic_rows_or_steps_aside(body: Any) -> None:
    assert_same_rows(json.dumps(body).encode())


@pytest.mark.parametrize(
    "raw",
    [
        b'{"instances": [[5.1, 3.5, 1.4, true]]}',  # numpy would take true for 1.0
        b'{"instances": [[5.1, 3.5, 1.4, "0.2"]]}',  # and "0.2" for 0.2, given a dtype
        b'{"instances": [[5.1, 3.5, 1.4, null]]}',
        b'{"instances": [[5.1, 3.5, 1.4, 1e999]]}',  # infinite
        b'{"instances": [[5.1, 3.5, 1.4, NaN]]}',
        b'{"instances": [[5.1, 3.5, 1.4]]}',
        b'{"instances": [[5.1, 3.5, 1.4, 0.2], [1, 2, 3]]}',
        b'{"instances": [[[5.1, 3.5, 1.4, 0.2]]]}',
        b'{"instances": [5.1, 3.5, 1.4, 0.2]}',
        b'{"instances": [[5.1, 3.5, 1.4, 0.2]], "extra": 1}',
        b'{"instances": [[5.1, 3.5, 1.4, 0.2]]} trailing',
        b'{"instances": [[1, 2, 3, 4]], "instances": [[5, 6, 7, 8]]}',  # a key twice
        b'{"instances": [[01, 2, 3, 4]]}',  # not JSON
        b'{"instances": [[1., 2, 3, 4]]}',
        b'{"instances": [[1, 2, 3, 4e]]}',
        b'{"instances": [[1, 2, 3, -]]}',
        b'{"instances": [[1, 2, 3, 4],]}',
        b'{"instances": [[1, 2, 3, 4] [1, 2, 3, 4]]}',
        b'{"instances": [[1, 2, 3, 3.4028236e38]]}',  # infinite as float32
        b'{"instances": [[1, 2, 3, 0.%b]]}' % (b"1" * 80),  # longer than any float32 needs
        b'{"instances": []}',
        json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * (MAX_ROWS + 1)}).encode(),
    ],
)
def test_what_pydantic_must_decide(raw: bytes) -> None:
    assert plain_rows(raw, MAX_ROWS) is None


@pytest.mark.parametrize(
    "raw",
    [
        b' {\n "instances" :[ [1,2 , 3,\t4 ] ,[5,6,7,8]] }\r\n',  # JSON's four spaces
        b'{"instances": [[-0, 0.0, 1e-400, 1E+2]]}',
        b'{"instances": [[1, 2, 3, 18446744073709551615]]}',  # past int64, within uint64
        b'{"instances": [[18014399583223809, 2, 3, 4]]}',  # 2**54 + 2**30 + 1, via float64
        b'{"instances": [[1, 2, 3, 1000000000000000000000000000000]]}',  # past 64 bits
    ],
)
def test_edge_numbers_and_keys_are_read_as_pydantic_reads_them(raw: bytes) -> None:
    assert assert_same_rows(raw) is not None


# --- /predict's one row --------------------------------------------------------------------


def assert_same_row(raw: bytes) -> list[float] | None:
    fast = _rows.parse_one(raw, FEATURES)
    if fast is not None:
        try:
            expected = PredictRequest.model_validate_json(raw).features
        except ValueError:
            raise AssertionError(f"read a body pydantic refuses: {raw[:200]!r}") from None
        as_bits = [struct.pack("<d", number) for number in expected]  # -0.0 is not 0.0
        assert [struct.pack("<d", number) for number in fast] == as_bits
    return fast


@given(row)
def test_a_row_of_finite_numbers_is_read_as_pydantic_reads_it(features: list[Any]) -> None:
    assert assert_same_row(json.dumps({"features": features}).encode()) is not None


@given(st.lists(anything, max_size=6))
def test_any_other_row_gives_pydantic_floats_or_steps_aside(features: list[Any]) -> None:
    assert_same_row(json.dumps({"features": features}).encode())


@given(anything)
def test_any_other_single_body_gives_pydantic_floats_or_steps_aside(body: Any) -> None:
    assert_same_row(json.dumps(body).encode())


@pytest.mark.parametrize(
    "raw",
    [
        b'{"features": [5.1, 3.5, 1.4, true]}',
        b'{"features": [5.1, 3.5, 1.4, "0.2"]}',
        b'{"features": [5.1, 3.5, 1.4, null]}',
        b'{"features": [5.1, 3.5, 1.4, 1e999]}',
        b'{"features": [5.1, 3.5, 1.4]}',
        b'{"features": [5.1, 3.5, 1.4, 0.2, 1]}',
        b'{"features": [[5.1, 3.5, 1.4, 0.2]]}',
        b'{"features": [5.1, 3.5, 1.4, 0.2], "extra": 1}',
        b'{"features": [5.1, 3.5, 1.4, 0.2]} trailing',
        b'{"features": [1, 2, 3, 4], "features": [5, 6, 7, 8]}',
        b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',  # a batch sent to /predict
        b'{"features": [01, 2, 3, 4]}',
        b'{"features": [1, 2, 3, 3.4028236e38]}',  # pydantic takes it; the model sees inf
        b"[5.1, 3.5, 1.4, 0.2]",
    ],
)
def test_what_pydantic_must_decide_for_one_row(raw: bytes) -> None:
    assert _rows.parse_one(raw, FEATURES) is None


@pytest.mark.parametrize(
    "raw",
    [
        b' {\n "features" :[1,2 , 3,\t4 ] }\r\n',
        b'{"features": [-0, -0.0, 1e-400, 1E+2]}',
        b'{"features": [18014399583223809, 2, 3, 18446744073709551615]}',
    ],
)
def test_edge_numbers_in_one_row_are_read_as_pydantic_reads_them(raw: bytes) -> None:
    assert assert_same_row(raw) is not None
