"""What a training run records so that it can be rebuilt: code, environment, data, results.

A commit alone does not name the code: a run from a tree with uncommitted changes has the
same commit as a clean one, so the diff rides along. A forest is rebuilt bit for bit only
from the same data, parameters and package versions, so all three are recorded, and the
forest and its ONNX export are recorded by digest, to be compared with a rebuild.

The code is the checkout the running `irisops` package was imported from, not the
working directory: that is the code that trained, wherever the command was started.
"""

import hashlib
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import numpy as np
from mlflow.data.pandas_dataset import PandasDataset, from_pandas
from sklearn.ensemble import RandomForestClassifier

import irisops
from irisops.bundle import sha256_of
from irisops.training import data

TAG_COMMIT = "irisops.git.commit"
TAG_DIRTY = "irisops.git.dirty"
TAG_CHANGES = "irisops.git.changes_sha256"
TAG_DATA = "irisops.data_sha256"
TAG_FOREST = "irisops.forest_sha256"
TAG_ONNX = "irisops.onnx_sha256"
TAG_IRISOPS = "irisops.version"
# What the MLflow UI shows as the run's git commit: ours, not MLflow's guess from argv[0].
TAG_MLFLOW_COMMIT = "mlflow.source.git.commit"
ENV_PREFIX = "irisops.env."
NO_CHECKOUT = "no git checkout"
# The run's artifacts beside its tags: the uncommitted changes, when there were any.
ARTIFACT_DIR = "provenance"
DIFF_FILE = "git.diff"
UNTRACKED_FILE = "untracked.txt"
# The packages whose versions shape the forest or its export; irisops is recorded apart.
PACKAGES = ("numpy", "scipy", "scikit-learn", "skl2onnx", "onnx", "onnxruntime")
PACKAGE_DIR = Path(irisops.__file__).resolve().parent


@dataclass(frozen=True)
class Source:
    """The code: a commit plus what was uncommitted, or no checkout at all (commit None)."""

    root: Path | None = None
    commit: str | None = None
    diff: bytes = b""
    untracked: tuple[str, ...] = ()

    @property
    def dirty(self) -> bool:
        return bool(self.diff or self.untracked)

    @property
    def changes_sha256(self) -> str:
        """The uncommitted changes: the diff, then the untracked files' names (not contents)."""
        return hashlib.sha256(self.diff + b"\0" + self.listing().encode()).hexdigest()

    def listing(self) -> str:
        return "".join(f"{path}\n" for path in self.untracked)

    def describe(self) -> str:
        if self.commit is None:
            return NO_CHECKOUT
        return f"{self.commit[:12]}{' with uncommitted changes' if self.dirty else ' (clean)'}"


class DirtyTree(Exception):
    """IRISOPS_REQUIRE_CLEAN_TREE is on and the code is not exactly a commit."""


def _git(root: Path, *args: str, env: dict[str, str] | None = None) -> bytes:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, check=True, timeout=10, env=env
    ).stdout


def source(package_dir: Path = PACKAGE_DIR) -> Source:
    """The checkout holding the running package; an installed package has none."""
    try:
        root = Path(_git(package_dir, "rev-parse", "--show-toplevel").decode().strip())
        # A package installed into a virtualenv inside some checkout is not that checkout's.
        _git(package_dir, "ls-files", "--error-unmatch", "__init__.py")
        commit = _git(root, "rev-parse", "HEAD").decode().strip()
        diff = _git(root, "diff", "HEAD", "--binary")
        others = _git(root, "ls-files", "--others", "--exclude-standard", "-z").decode()
    except (OSError, subprocess.SubprocessError):
        return Source()
    return Source(root, commit, diff, tuple(sorted(filter(None, others.split("\0")))))


def require_clean(code: Source) -> None:
    if code.commit is None:
        raise DirtyTree(
            f"IRISOPS_REQUIRE_CLEAN_TREE is on but irisops runs from {PACKAGE_DIR}, which is "
            "not a git checkout: train from a clean checkout, or unset IRISOPS_REQUIRE_CLEAN_TREE"
        )
    if code.dirty:
        changed = len([line for line in code.diff.splitlines() if line.startswith(b"diff --git")])
        raise DirtyTree(
            f"IRISOPS_REQUIRE_CLEAN_TREE is on and {code.root} has uncommitted changes "
            f"({changed} changed, {len(code.untracked)} untracked files): commit them, or "
            "stash them (git stash -u), and train again"
        )


def has_commit(root: Path, commit: str) -> bool:
    try:
        _git(root, "cat-file", "-e", f"{commit}^{{commit}}")
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def applies(root: Path, commit: str, diff: bytes) -> bool:
    """Whether `diff` applies to `commit`'s tree: checked in a scratch index, nothing touched."""
    with tempfile.TemporaryDirectory() as tmp:
        patch = Path(tmp) / "git.diff"
        patch.write_bytes(diff)
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        try:
            _git(root, "read-tree", commit, env=env)
            _git(root, "apply", "--check", "--cached", str(patch), env=env)
        except (OSError, subprocess.SubprocessError):
            return False
    return True


def environment() -> dict[str, str]:
    """Python, the platform and the package versions, keyed as their tags (`irisops.env.*`)."""
    found = {"python": platform.python_version(), "platform": platform_name()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def platform_name() -> str:
    """The OS, the machine and the C library; not the kernel release, which moves weekly."""
    return " ".join(filter(None, (platform.system(), platform.machine(), *platform.libc_ver())))


def summary(env: dict[str, str], irisops_version: str) -> str:
    """One line for a person: what the run's numbers were computed with."""
    packages = ", ".join(f"{name} {env.get(name, '?')}" for name in PACKAGES)
    return f"Python {env['python']}, {packages}, irisops {irisops_version} on {env['platform']}"


def data_sha256(dataset: data.Dataset) -> str:
    """The data set itself, before any split: features and labels as stored."""
    X, y = np.ascontiguousarray(dataset.X), np.ascontiguousarray(dataset.y)
    return hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()


def forest_sha256(model: RandomForestClassifier) -> str:
    """The fitted trees' node arrays, tree by tree: equal only for a bit-identical forest."""
    digest = hashlib.sha256()
    for estimator in model.estimators_:
        tree = estimator.tree_
        for nodes in (
            tree.children_left,
            tree.children_right,
            tree.feature,
            tree.threshold,
            tree.value,
        ):
            digest.update(np.ascontiguousarray(nodes).tobytes())
    return digest.hexdigest()


def training_inputs(dataset: data.Dataset, split: data.Split) -> list[tuple[PandasDataset, str]]:
    """The train and test sets as MLflow logs them (with their digests), and their contexts."""
    inputs = []
    for name, X, y, context in (
        ("iris-train", split.X_train, split.y_train, "training"),
        ("iris-test", split.X_test, split.y_test, "testing"),
    ):
        frame = X.assign(**{data.TARGET: dataset.class_names_of(y)})
        inputs.append((from_pandas(frame, targets=data.TARGET, name=name), context))
    return inputs


def input_tags(code: Source, dataset: data.Dataset) -> dict[str, str]:
    """Known before fitting, so a run that fails later still says what it started from."""
    tags = {TAG_IRISOPS: irisops.__version__, TAG_DATA: data_sha256(dataset)}
    tags |= {ENV_PREFIX + name: value for name, value in environment().items()}
    if code.commit is None:
        return tags | {TAG_COMMIT: NO_CHECKOUT}
    tags |= {TAG_COMMIT: code.commit, TAG_MLFLOW_COMMIT: code.commit}
    tags[TAG_DIRTY] = str(code.dirty).lower()
    if code.dirty:
        tags[TAG_CHANGES] = code.changes_sha256
    return tags


def output_tags(model: RandomForestClassifier, onnx_bytes: bytes) -> dict[str, str]:
    return {
        TAG_FOREST: forest_sha256(model),
        TAG_ONNX: sha256_of(onnx_bytes),
    }


def log_source(code: Source) -> None:
    """The uncommitted changes as artifacts: with the commit, they rebuild the run's code."""
    if not code.dirty:
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / DIFF_FILE).write_bytes(code.diff)
        (directory / UNTRACKED_FILE).write_text(code.listing())
        mlflow.log_artifacts(tmp, ARTIFACT_DIR)
