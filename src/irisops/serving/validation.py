"""Validation failures in words a person can act on, instead of pydantic's.

pydantic-core validates every body (it is the fastest path there is); only when it
refuses one are its errors translated here, so the wording costs nothing on the
happy path. Each error keeps its own line, naming the field as a person points at
JSON (`instances[2][3]`), except when the whole body has the wrong shape for its
route: a list of rows sent to /predict, or one row sent to /predict/batch, gets one
line saying where to send it, not one per element.
"""

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from irisops.serving.errors import TOO_MANY_ROWS, ApiError
from irisops.serving.schemas import FEATURES

PREDICT, BATCH = "/predict", "/predict/batch"
ONE_ROW = '{"features": [5.1, 3.5, 1.4, 0.2]}'
ROWS = '{"instances": [[5.1, 3.5, 1.4, 0.2], ...]}'
TO_BATCH = f"to predict several rows, send {ROWS} to {BATCH}"
TO_PREDICT = f"to predict one row, send {ONE_ROW} to {PREDICT}"

Error = Mapping[str, Any]

# pydantic's error types, worded to follow the field's name; `value` is the input as
# a person names it, the other fields come from the error's context.
NUMBER = "must be a number, got {value}"
WHOLE_NUMBER = "must be a whole number, got {value}"
OBJECT = "must be a JSON object, got {value}"
TEMPLATES = {
    "float_type": NUMBER,
    "float_parsing": NUMBER,
    "int_type": WHOLE_NUMBER,
    "int_parsing": WHOLE_NUMBER,
    "int_from_float": WHOLE_NUMBER,
    "finite_number": "must be a finite number, got {value}",
    "string_type": "must be a string, got {value}",
    "model_type": OBJECT,
    "model_attributes_type": OBJECT,
    "dict_type": OBJECT,
    "missing": "is required",
    "extra_forbidden": "is not a field of this request",
    "too_short": "must have at least {min_length}, got {actual_length}",
    "greater_than_equal": "must be {ge} or more, got {value}",
    "literal_error": "must be {expected}, got {value}",
}


def field_name(loc: Sequence[int | str]) -> str:
    """('instances', 2, 3) -> 'instances[2][3]': the way a person points at a JSON value."""
    name = ""
    for part in loc:
        if part == "body":
            continue
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def described(value: Any) -> str:
    """A JSON value as a person would name it in a sentence."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return f"the string {json.dumps(value)}" if len(value) <= 20 else "a string"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("-Infinity" if value < 0 else "Infinity")
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return str(value)


def is_row(loc: Sequence[int | str]) -> bool:
    return tuple(loc) == ("features",) or (len(loc) == 2 and loc[0] == "instances")


def wording(error: Error) -> str:
    """What is wrong with one value, to follow its field's name."""
    kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx") or {}
    value = described(error.get("input"))
    if kind in {"too_short", "too_long"} and is_row(loc):
        return f"must be {FEATURES} numbers, got {ctx['actual_length']}"
    if kind == "list_type":
        rows = loc == ("instances",)
        what = f"a list of {FEATURES} numbers" if is_row(loc) else "a list" + " of rows" * rows
        return f"must be {what}, got {value}"
    if template := TEMPLATES.get(kind):
        return template.format(value=value, **ctx)
    message: str = error["msg"]
    return f"is invalid: {message[0].lower()}{message[1:]}"


def wrong_route(route: str, raw: bytes) -> str | None:
    """One line for a body meant for the other prediction route, or None.

    Read from the body itself, not from pydantic's errors, which see each element
    alone: `features` holds a list of rows only if every element is a list.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    if route == PREDICT:
        if "instances" in body and "features" not in body:
            return f"features is required: {TO_BATCH}"
        if _every(body.get("features"), lambda value: isinstance(value, list)):
            return f"features must be one row of {FEATURES} numbers, got a list of rows: {TO_BATCH}"
    if route == BATCH:
        if "features" in body and "instances" not in body:
            return f"instances is required: {TO_PREDICT}"
        if _every(body.get("instances"), lambda value: isinstance(value, int | float)):
            return f"instances must be a list of rows, got one row of numbers: {TO_PREDICT}"
    return None


def _every(values: Any, test: Callable[[Any], bool]) -> bool:
    return isinstance(values, list) and bool(values) and all(map(test, values))


def refusal(errors: Sequence[Error], hint: str | None = None) -> ApiError:
    """400 for JSON that does not parse, 413 for too many rows, 422 for wrong values.

    A `hint` (from `wrong_route`) replaces the per-field lines in the sentence; the
    fields are still listed one by one.
    """
    if malformed := next((e for e in errors if e["type"] == "json_invalid"), None):
        message: str = malformed["msg"]
        return ApiError(400, f"malformed JSON body: {message.removeprefix('Invalid JSON: ')}")
    if too_many := next((e for e in errors if e["type"] == TOO_MANY_ROWS), None):
        return ApiError(413, too_many["msg"])
    listed = [{"field": field_name(e["loc"]), "message": wording(e)} for e in errors]
    detail = hint or "; ".join(f"{e['field']} {e['message']}" for e in listed)
    return ApiError(422, detail, listed)
