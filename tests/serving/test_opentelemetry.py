"""FastAPI's own OpenTelemetry hooks: off unless a provider is there to report to.

Each case runs in a fresh interpreter: OpenTelemetry's global providers can be set
once per process.
"""

import subprocess
import sys
from pathlib import Path

PROLOGUE = """
from pathlib import Path
from starlette.testclient import TestClient
from irisops.config import Settings
from irisops.serving.app import create_app, fastapi_telemetry
from tests.serving.publishing import publish_small_forest
home = Path({home!r})
publish_small_forest(home / "model_data")
"""

TRACED = (
    """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)
"""
    + PROLOGUE
    + """
assert fastapi_telemetry() == {{}}, fastapi_telemetry()
with TestClient(create_app(Settings(home=home, inference_log=False))) as client:
    assert client.post("/predict", json={{"features": [5.1, 3.5, 1.4, 0.2]}}).status_code == 200
print(sorted(span.name for span in spans.get_finished_spans()))
"""
)

UNTRACED = (
    PROLOGUE
    + """
print(fastapi_telemetry())
with TestClient(create_app(Settings(home=home, inference_log=False))) as client:
    assert client.post("/predict", json={{"features": [5.1, 3.5, 1.4, 0.2]}}).status_code == 200
"""
)


def run(script: str, home: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script.format(home=str(home))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
        env={**_environment(), **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _environment() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FASTAPI_OTEL_"))}


def test_a_provider_set_before_the_app_gets_the_requests_spans(tmp_path: Path) -> None:
    assert "POST /predict" in run(TRACED, tmp_path)


def test_without_a_provider_the_hooks_are_off(tmp_path: Path) -> None:
    assert run(UNTRACED, tmp_path) == "{'tracing': False, 'metrics': False, 'logs': False}"


def test_fastapi_configuring_its_own_providers_keeps_them_on(tmp_path: Path) -> None:
    assert run(UNTRACED, tmp_path, FASTAPI_OTEL_AUTO_CONFIGURE="true") == "{}"
