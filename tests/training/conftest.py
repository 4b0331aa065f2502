"""The data set and one forest fitted on its default split, shared by the stage tests; git
checkouts of the package's source of the tests' own, and runs trained from them."""

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient
from sklearn.ensemble import RandomForestClassifier

from irisops.training import data, fit
from tests.conftest import Champion, Tracking
from tests.processes import irisops

REPO = Path(__file__).resolve().parents[2]
# An uncommitted change that alters no result: the code differs, the forest does not.
CHANGE = "# An uncommitted comment.\n"
UNTRACKED = "notes.txt"


@pytest.fixture(scope="module")
def dataset() -> data.Dataset:
    return data.load()


@pytest.fixture(scope="module")
def model(dataset: data.Dataset) -> RandomForestClassifier:
    return fit.fit(data.split(dataset, 0.2, 42), fit.TrainParams())


def git(root: Path, *args: str) -> str:
    identity = ("-c", "user.name=irisops tests", "-c", "user.email=tests@example.invalid")
    command = ["git", "-C", str(root), *identity, *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


@dataclass(frozen=True)
class Checkout:
    """A git checkout of irisops's source: `irisops` run with `env` imports the package from it."""

    root: Path

    @property
    def commit(self) -> str:
        return git(self.root, "rev-parse", "HEAD")

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return {**env, "PYTHONPATH": str(self.root / "src")}

    def copy(self, to: Path) -> "Checkout":
        return Checkout(Path(shutil.copytree(self.root, to, symlinks=True)))


def committed_copy(root: Path) -> Checkout:
    """The package's source as one commit, with the project's .gitignore (for __pycache__)."""
    shutil.copytree(
        REPO / "src" / "irisops",
        root / "src" / "irisops",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    git(root, "init", "--quiet")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "irisops as it is")
    return Checkout(root)


@pytest.fixture(scope="session")
def dirty_checkout(tmp_path_factory: pytest.TempPathFactory) -> Checkout:
    """A checkout with a changed file and an untracked one: its runs are from a dirty tree."""
    checkout = committed_copy(tmp_path_factory.mktemp("dirty-checkout"))
    with (checkout.root / "src" / "irisops" / "training" / "fit.py").open("a") as source:
        source.write(CHANGE)
    (checkout.root / UNTRACKED).write_text("what I was trying\n")
    return checkout


def trained(env: dict[str, str], *args: str) -> str:
    """`irisops train ARGS`; the id of the run it made."""
    result = irisops("train", *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    run = re.search(r"/runs/([0-9a-f]{32})", result.stdout.replace("\n", ""))
    assert run is not None, result.stdout
    return run[1]


@pytest.fixture(scope="session")
def dirty_run(
    tracking: Tracking, dirty_checkout: Checkout, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A run trained from the dirty checkout, into a registered model of its own."""
    env = tracking.env(tmp_path_factory.mktemp("dirty"), IRISOPS_REGISTERED_MODEL="dirty-tree")
    return trained(dirty_checkout.env(env), "--n-estimators", "10")


def champion_run(tracking: Tracking, champion: Champion) -> str:
    """The session champion's run: trained from this checkout, by the suite's first train."""
    version = MlflowClient(tracking.uri).get_model_version("iris-classifier", champion.version)
    assert version.run_id is not None
    return version.run_id
