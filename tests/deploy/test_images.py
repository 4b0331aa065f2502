"""The api image carries only what serving needs; the trainer image all that training needs.

Read from this virtualenv's metadata (same pins as the Dockerfile's constraints.txt); the
deployment tests then run every service under its image's import guard.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.images import closure, image

TRAINING_ONLY = {"scikit-learn", "pandas", "scipy", "matplotlib", "skl2onnx", "onnx", "mlflow"}
SERVER_DRIVERS = {"boto3", "psycopg2-binary"}


def test_the_api_image_has_no_training_stack_and_no_full_mlflow() -> None:
    api = closure(())
    assert TRAINING_ONLY.isdisjoint(api), sorted(TRAINING_ONLY & api)
    assert SERVER_DRIVERS.isdisjoint(api)
    assert {"fastapi", "uvicorn", "onnxruntime", "mlflow-skinny", "irisops"} <= api


def test_the_trainer_image_has_training_the_tracking_server_and_its_drivers() -> None:
    trainer = closure(("train", "server"))
    assert closure(()) < trainer
    assert trainer >= (TRAINING_ONLY | SERVER_DRIVERS)
    assert {"pytest", "moto", "mypy"}.isdisjoint(trainer), "no development tools"


def test_the_api_image_is_under_a_third_of_the_trainer_image() -> None:
    assert image("api").size * 3 < image("trainer").size


# What Python can find, asked without importing (MLflow probes optional packages so).
PROBE = (
    "import importlib.util, sys; print(*(m for m in sys.argv[1:] if importlib.util.find_spec(m)))"
)


def findable(site: Path, modules: list[str]) -> set[str]:
    environment = {**os.environ, "PYTHONPATH": str(site)}
    command = [sys.executable, "-c", PROBE, *modules]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    return set(result.stdout.split())


@pytest.mark.parametrize(
    ("target", "present", "absent"),
    [
        ("api", ["irisops", "onnxruntime", "fastapi", "mlflow"], ["sklearn", "pandas", "boto3"]),
        ("trainer", ["irisops", "sklearn", "flask", "boto3", "psycopg2"], ["pytest", "moto"]),
    ],
)
def test_under_the_guard_a_process_finds_only_what_its_image_has(
    image_sites: dict[str, Path], target: str, present: list[str], absent: list[str]
) -> None:
    assert findable(image_sites[target], present + absent) == set(present)
