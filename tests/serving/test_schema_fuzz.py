"""Schemathesis against the API's own OpenAPI schema: no 5xx, no answer off the schema.

Cases are generated from the schema (valid bodies and, in negative mode, bodies that
break it) and sent to the real API over HTTP; every documented check runs on each
answer: status codes, content types and bodies must all be what the schema says.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.processes import Service

CASES_PER_OPERATION = 200
# Operation label -> generation mode -> cases sent.
Generated = dict[str, dict[str, int]]


@pytest.fixture(scope="module")
def api_schema(api: Service) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api.url}/openapi.json")


@pytest.fixture(scope="module")
def generated(figures: dict[str, object]) -> Iterator[Generated]:
    """Where each run notes its count for the report; no test reads another's."""
    counts: Generated = {}
    yield counts
    figures["schemathesis_cases"] = counts


def labels(schema: schemathesis.BaseSchema) -> list[str]:
    return [result.ok().label for result in schema.get_all_operations()]  # type: ignore[union-attr]


V2_INFER = ["POST /v2/models/{name}/infer", "POST /v2/models/{name}/versions/{version}/infer"]
WITH_BODY = ["POST /predict", "POST /predict/batch", "POST /feedback", *V2_INFER]
WITHOUT_INPUT = [
    "GET /health",
    "GET /ready",
    "GET /model",
    "GET /metrics",
    "GET /monitoring",
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
# Likewise feedback: a valid body names a request id, and a generated one was never
# answered (a 404, documented).
NOT_CHECKED: dict[str, list[CheckFunction]] = {
    label: [positive_data_acceptance] for label in [*V2_INFER, "POST /feedback"]
}
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Negative cases need an input to break: the GETs take none.
RUNS = [(label, mode) for label in WITH_BODY for mode in (POSITIVE, NEGATIVE)] + [
    (label, POSITIVE) for label in WITHOUT_INPUT
]


def expected_cases(label: str) -> int:
    """Every case asked for when there is a body to vary; the GETs take no input, so
    Hypothesis stops at the one distinct request each has."""
    return CASES_PER_OPERATION if label in WITH_BODY else 1


@pytest.mark.parametrize(
    ("label", "mode"), RUNS, ids=[f"{label}-{mode.value}" for label, mode in RUNS]
)
def test_every_operation_honours_its_schema(
    api: Service,
    api_schema: schemathesis.BaseSchema,
    generated: Generated,
    label: str,
    mode: schemathesis.GenerationMode,
) -> None:
    # Driven through Hypothesis directly: schemathesis' pytest plugin predates pytest 9.
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, labels(api_schema)

    path = {p.name: SERVED[p.name] for p in operation.path_parameters}
    sent = 0
    mark = api.mark()

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path))
    @settings(
        max_examples=CASES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def honours_schema(case: schemathesis.Case[Any]) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(timeout=30, excluded_checks=NOT_CHECKED.get(label, []))

    honours_schema()

    generated.setdefault(label, {})[mode.value] = sent
    assert sent >= expected_cases(label)
    assert httpx.get(f"{api.url}/health").status_code == 200, "the API survived"
    assert "Traceback" not in api.output(since=mark)


def test_the_schema_lists_every_operation(api_schema: schemathesis.BaseSchema) -> None:
    assert sorted(labels(api_schema)) == sorted(OPERATIONS)
