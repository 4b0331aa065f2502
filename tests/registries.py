"""A registered model of a test's own, driven through the CLI: tests that move its aliases
each take a fresh one, so they hold alone and in any order."""

import subprocess
from pathlib import Path

from mlflow import MlflowClient

from irisops import bundle
from tests.conftest import Tracking
from tests.processes import irisops


class Registry:
    def __init__(self, tracking: Tracking, model_dir: Path, name: str) -> None:
        self.env = tracking.env(model_dir, IRISOPS_REGISTERED_MODEL=name)
        self.client = MlflowClient(tracking.uri)
        self.model_dir = model_dir
        self.name = name

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`irisops ARGS` against this registered model, whatever its outcome."""
        return irisops(*args, env={**self.env, "COLUMNS": "200"})

    def cli(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def alias(self, alias: str) -> str:
        return str(self.client.get_model_version_by_alias(self.name, alias).version)

    def champion(self) -> str:
        return self.alias("champion")

    def served(self) -> str | None:
        return bundle.read_current(self.model_dir)[1].version

    def reason(self, version: str) -> str:
        return self.client.get_model_version(self.name, version).tags["irisops.promotion_reason"]
