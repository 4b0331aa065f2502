"""A run trained again from its record, and whether the result is the same, bit for bit.

The record is checked first. A run's data that differs from the data here cannot be
rebuilt, so it is not trained again. Other package versions, another platform, other code
or parameters this code does not know are named, and the run is trained again anyway, in
this environment, from the pure stages of `irisops.training`: nothing is logged, registered
or published. The forest (its node arrays), the ONNX export (its bytes) and the metrics are
then compared with the record, and the verdict names the likeliest cause of a difference
among those the checks found. The attempt is recorded on the run, as tags.
"""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from pydantic import TypeAdapter, ValidationError

import irisops
from irisops.bundle import sha256_of
from irisops.training import data, evaluate, export, fit, provenance
from irisops.training.provenance import (
    ENV_PREFIX,
    NO_CHECKOUT,
    TAG_CHANGES,
    TAG_COMMIT,
    TAG_DATA,
    TAG_DIRTY,
    TAG_FOREST,
    TAG_IRISOPS,
    TAG_ONNX,
)

TAG_AT = "irisops.reproduced.at"
TAG_VERDICT = "irisops.reproduced.verdict"
TAG_ENVIRONMENT = "irisops.reproduced.environment"
IDENTICAL = "identical"
FOREST, ONNX, METRICS = "forest", "ONNX export", "metrics"
# The packages that can change each result, in the order a difference is blamed on them.
SHAPED_BY = {
    FOREST: ("scikit-learn", "numpy", "scipy", "python"),
    ONNX: ("skl2onnx", "onnx"),
    METRICS: ("scikit-learn", "numpy", "scipy"),
}
DIFF_PATH = f"{provenance.ARTIFACT_DIR}/{provenance.DIFF_FILE}"


class Kind(StrEnum):
    DATA = "data"
    PACKAGE = "a package version"
    CODE = "the code"
    PARAMETER = "a parameter"
    PLATFORM = "the platform"


@dataclass(frozen=True)
class Difference:
    """One line a person reads; `subject` is the package, parameter or thing it is about."""

    kind: Kind
    subject: str
    line: str


class NoRecord(Exception):
    """The run did not record what rebuilding it needs; the message says what is missing."""


@dataclass(frozen=True)
class Record:
    run_id: str
    params: fit.TrainParams
    logged_params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    inputs: dict[str, str]  # the digests MLflow logged for the train and test sets, by name


@dataclass(frozen=True)
class Outcome:
    forest_sha256: str
    onnx_sha256: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class Verdict:
    identical: bool
    text: str


def record_of(run: Any) -> Record:
    tags = dict(run.data.tags)
    missing = [tag for tag in (TAG_DATA, TAG_FOREST, TAG_ONNX) if tag not in tags]
    if missing:
        raise NoRecord(
            f"run {run.info.run_id} has no {', '.join(missing)}: it did not finish, or was "
            "trained before irisops recorded runs for reproduction; train a new one"
        )
    logged = dict(run.data.params)
    inputs = {i.dataset.name: i.dataset.digest for i in (run.inputs.dataset_inputs or [])}
    return Record(run.info.run_id, params_of(logged), logged, dict(run.data.metrics), tags, inputs)


def params_of(logged: dict[str, str]) -> fit.TrainParams:
    """The logged strings as parameters; one this code lacks takes its default (and is named)."""
    known = {f.name for f in fields(fit.TrainParams)}
    values = {k: None if v == "None" else v for k, v in logged.items() if k in known}
    try:
        return TypeAdapter(fit.TrainParams).validate_python(values)
    except ValidationError as exc:
        raise NoRecord(f"the run's parameters cannot be read back: {exc}") from None


def parameter_differences(logged: dict[str, str]) -> list[Difference]:
    defaults = fit.TrainParams().as_params()
    unknown = [
        Difference(Kind.PARAMETER, k, f"parameter {k}: {v} recorded, unknown to this code")
        for k, v in logged.items()
        if k not in defaults
    ]
    return unknown + [
        Difference(Kind.PARAMETER, k, f"parameter {k}: not recorded, its default {v} used")
        for k, v in defaults.items()
        if k not in logged
    ]


def data_differences(record: Record, dataset: data.Dataset, split: data.Split) -> list[Difference]:
    """The data set first; its split only if the data set is the same (or it says nothing)."""
    recorded, here = record.tags[TAG_DATA], provenance.data_sha256(dataset)
    if recorded != here:
        line = f"data: Iris sha256 {recorded[:12]} recorded, {here[:12]} here"
        return [Difference(Kind.DATA, "data", line)]
    params = record.params
    return [
        Difference(
            Kind.DATA,
            name,
            f"data: the {name} set's digest {record.inputs[name]} recorded, {logged.digest} "
            f"here: the same data set splits otherwise (seed {params.seed}, test size "
            f"{params.test_size})",
        )
        for logged, _ in provenance.training_inputs(dataset, split)
        if (name := logged.name) in record.inputs and record.inputs[name] != logged.digest
    ]


def environment_differences(tags: dict[str, str], here: dict[str, str]) -> list[Difference]:
    here = here | {"irisops": irisops.__version__}
    recorded = {k.removeprefix(ENV_PREFIX): v for k, v in tags.items() if k.startswith(ENV_PREFIX)}
    recorded["irisops"] = tags.get(TAG_IRISOPS, "not recorded")
    return [
        Difference(
            Kind.PLATFORM if name == "platform" else Kind.PACKAGE,
            name,
            f"{name}: {recorded.get(name, 'not recorded')} recorded, {version} here",
        )
        for name, version in here.items()
        if recorded.get(name) != version
    ]


def code_differences(
    tags: dict[str, str], here: provenance.Source, recorded_diff: Callable[[], bytes]
) -> list[Difference]:
    """Same commit and same uncommitted changes, or one line on how to get the run's code."""
    commit, dirty = tags.get(TAG_COMMIT, NO_CHECKOUT), tags.get(TAG_DIRTY) == "true"
    if commit == NO_CHECKOUT:
        if here.commit is None:
            return []
        line = "code: the run was not trained from a git checkout; its irisops version names it"
        return [Difference(Kind.CODE, "code", line)]
    there = f"{commit[:12]}{' with uncommitted changes' if dirty else ' (clean)'}"
    if here.root is None or here.commit is None:
        line = f"code: the run was trained at {there}; irisops here is not a git checkout"
        return [Difference(Kind.CODE, "code", line)]
    changes = tags.get(TAG_CHANGES) if dirty else None
    if here.commit == commit and (here.changes_sha256 if here.dirty else None) == changes:
        return []
    now = here.describe()
    if here.commit == commit:
        now = f"the same commit with {'other' if here.dirty else 'no'} uncommitted changes"
    hint = rebuild_hint(here.root, commit, dirty, recorded_diff)
    line = f"code: the run was trained at {there}, this checkout is at {now}; {hint}"
    return [Difference(Kind.CODE, "code", line)]


def rebuild_hint(root: Path, commit: str, dirty: bool, recorded_diff: Callable[[], bytes]) -> str:
    short = commit[:12]
    if not provenance.has_commit(root, commit):
        return f"commit {short} is not in this repository: git fetch it"
    if not dirty:
        return f"`git checkout {short}` rebuilds it"
    if provenance.applies(root, commit, recorded_diff()):
        return f"the run's {DIFF_PATH} applies to {short}: `git checkout {short}` then `git apply`"
    return f"the run's {DIFF_PATH} does not apply to {short}: its code cannot be rebuilt here"


def rebuild(params: fit.TrainParams, dataset: data.Dataset, split: data.Split) -> Outcome:
    """The training run's fit, metrics and export, and nothing else: no MLflow at all."""
    model = fit.fit(split, params)
    metrics = evaluate.test_metrics(model, split) | evaluate.cross_validation(split, params)
    onnx_bytes = export.export(model, len(dataset.feature_names))
    return Outcome(provenance.forest_sha256(model), sha256_of(onnx_bytes), metrics)


def output_differences(record: Record, outcome: Outcome) -> dict[str, list[str]]:
    """What differs, by result: the forest, its export, each metric the rebuild computes."""
    found: dict[str, list[str]] = {}
    for result, tag, rebuilt in (
        (FOREST, TAG_FOREST, outcome.forest_sha256),
        (ONNX, TAG_ONNX, outcome.onnx_sha256),
    ):
        if record.tags[tag] != rebuilt:
            line = f"{result}: sha256 {record.tags[tag][:12]} recorded, {rebuilt[:12]} rebuilt"
            found[result] = [line]
    metrics = [
        f"metric {name}: {record.metrics.get(name, 'not recorded')!r} recorded, {value!r} rebuilt"
        for name, value in outcome.metrics.items()
        if record.metrics.get(name) != value
    ]
    if metrics:
        found[METRICS] = metrics
    return found


def likeliest(result: str, before: list[Difference]) -> str:
    """The difference found before training that best explains `result` differing."""
    packages = {d.subject: d for d in before if d.kind is Kind.PACKAGE}
    for name in SHAPED_BY[result]:
        if name in packages:
            return f"{Kind.PACKAGE} ({packages[name].line})"
    for kind in (Kind.CODE, Kind.PARAMETER, Kind.PLATFORM):
        if found := next((d for d in before if d.kind is kind), None):
            return f"{kind} ({found.line})"
    return {
        FOREST: "a parameter: the recorded parameters do not rebuild the recorded forest "
        "(the record was edited, or a parameter that shapes the forest is not recorded)",
        ONNX: "the export: the same forest exported to other bytes (the record was edited)",
        METRICS: "the recorded metrics: the same forest scores otherwise "
        "(they were logged again after the run)",
    }[result]


def judge(before: list[Difference], after: dict[str, list[str]]) -> Verdict:
    if not after:
        return Verdict(True, IDENTICAL)
    results = list(after)
    named = results[0] if len(results) == 1 else f"{', '.join(results[:-1])} and {results[-1]}"
    reason = likeliest(results[0], before)
    text = f"not identical: {named} differ{'s' if len(results) == 1 else ''}; most likely {reason}"
    return Verdict(False, text)


def unbuildable(before: list[Difference]) -> Verdict:
    data_lines = "; ".join(d.line for d in before if d.kind is Kind.DATA)
    text = f"not identical: the data differs, so nothing was trained ({data_lines})"
    return Verdict(False, text)


def environment_line(code: provenance.Source) -> str:
    environment = provenance.summary(provenance.environment(), irisops.__version__)
    return f"{environment}, code {code.describe()}"


def record_attempt(client: MlflowClient, run_id: str, verdict: Verdict, environment: str) -> None:
    """On the original run: the MLflow UI shows that, when, where and how it was reproduced."""
    client.set_tag(run_id, TAG_AT, datetime.now(UTC).isoformat(timespec="seconds"))
    client.set_tag(run_id, TAG_VERDICT, verdict.text)
    client.set_tag(run_id, TAG_ENVIRONMENT, environment)


def recorded_diff(client: MlflowClient, run_id: str) -> Callable[[], bytes]:
    """Fetched only when the code differs and the run had uncommitted changes."""

    def fetch() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            return Path(client.download_artifacts(run_id, DIFF_PATH, tmp)).read_bytes()

    return fetch


def checks(
    client: MlflowClient,
    record: Record,
    dataset: data.Dataset,
    split: data.Split,
    code: provenance.Source,
) -> list[Difference]:
    """Everything that can be compared before training: data, environment, code, parameters."""
    return (
        data_differences(record, dataset, split)
        + environment_differences(record.tags, provenance.environment())
        + code_differences(record.tags, code, recorded_diff(client, record.run_id))
        + parameter_differences(record.logged_params)
    )


def reproduce(
    client: MlflowClient, run: Any, step: Callable[[str], None], show: Callable[[str], None]
) -> Verdict:
    """`step` hears each stage as it starts; `show` each difference as it is found."""
    record, code = record_of(run), provenance.source()
    params, dataset = record.params, data.load()
    split = data.split(dataset, params.test_size, params.seed)
    step(f"checking run {record.run_id}'s record against this environment")
    before = checks(client, record, dataset, split, code)
    for difference in before:
        show(difference.line)
    if any(d.kind is Kind.DATA for d in before):
        verdict = unbuildable(before)
    else:
        step(f"training again: a {params.n_estimators}-tree forest, seed {params.seed}; exporting")
        after = output_differences(record, rebuild(params, dataset, split))
        for line in (line for result in after.values() for line in result):
            show(line)
        verdict = judge(before, after)
    record_attempt(client, record.run_id, verdict, environment_line(code))
    return verdict
