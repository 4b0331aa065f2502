"""Schemathesis against the API's own OpenAPI schema: no 5xx, no answer off the schema.

Cases are generated from the schema (valid bodies and, in negative mode, bodies that
break it) and sent to the real API over HTTP; every documented check runs on each
answer: status codes, content types and bodies must all be what the schema says.
"""

from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.processes import Service

CASES_PER_OPERATION = 200
# Each operation with a body gets up to this many valid and as many invalid cases; the
# GETs take no input, so their cases are the few distinct requests there are.
cases: Counter[str] = Counter()


@pytest.fixture(scope="module")
def api_schema(api: Service) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api.url}/openapi.json")


def labels(schema: schemathesis.BaseSchema) -> list[str]:
    return [result.ok().label for result in schema.get_all_operations()]  # type: ignore[union-attr]


V2_INFER = ["POST /v2/models/{name}/infer", "POST /v2/models/{name}/versions/{version}/infer"]
WITH_BODY = ["POST /predict", "POST /predict/batch", *V2_INFER]
WITHOUT_INPUT = [
    "GET /health",
    "GET /ready",
    "GET /model",
    "GET /metrics",
    "GET /v2",
    "GET /v2/health/live",
    "GET /v2/health/ready",
    "GET /v2/models/{name}",
    "GET /v2/models/{name}/versions/{version}",
    "GET /v2/models/{name}/ready",
    "GET /v2/models/{name}/versions/{version}/ready",
]
OPERATIONS = WITH_BODY + WITHOUT_INPUT
# The V2 paths name the served model: generated names would only ever meet the 404 for
# an unknown model (test_open_inference covers it), never the body's validation.
SERVED = {"name": "iris-classifier", "version": "1"}
# A V2 inference body can be valid by the protocol's schema and still not fit the
# model (shape [2, 4] with 3 values, an input named "x"): a JSON schema cannot say
# that the data must hold shape[0] x 4 numbers. Those get a 400, so the check that
# schema-valid bodies are accepted does not apply to them; every other check does.
NOT_CHECKED: dict[str, list[CheckFunction]] = {
    label: [positive_data_acceptance] for label in V2_INFER
}
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Negative cases need an input to break: the GETs take none.
RUNS = [(label, mode) for label in WITH_BODY for mode in (POSITIVE, NEGATIVE)] + [
    (label, POSITIVE) for label in WITHOUT_INPUT
]


@pytest.mark.parametrize(
    ("label", "mode"), RUNS, ids=[f"{label}-{mode.value}" for label, mode in RUNS]
)
def test_every_operation_honours_its_schema(
    api_schema: schemathesis.BaseSchema, label: str, mode: schemathesis.GenerationMode
) -> None:
    # Driven through Hypothesis directly: schemathesis' pytest plugin predates pytest 9.
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, labels(api_schema)

    path = {p.name: SERVED[p.name] for p in operation.path_parameters}

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path))
    @settings(
        max_examples=CASES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def honours_schema(case: schemathesis.Case[Any]) -> None:
        cases[label] += 1
        case.call_and_validate(timeout=30, excluded_checks=NOT_CHECKED.get(label, []))

    honours_schema()


def test_the_schema_lists_every_operation(api_schema: schemathesis.BaseSchema) -> None:
    assert sorted(labels(api_schema)) == sorted(OPERATIONS)


def test_enough_cases_were_generated(api: Service, figures: dict[str, object]) -> None:
    figures["schemathesis_cases"] = dict(cases)
    for operation in WITH_BODY:
        assert cases[operation] >= CASES_PER_OPERATION, cases
    assert httpx.get(f"{api.url}/health").status_code == 200, "the API survived"
    assert "Traceback" not in api.output()
