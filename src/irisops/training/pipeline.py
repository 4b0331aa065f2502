"""The training job, stage by stage: connect, fit and log, export, register, judge, publish.

Everything that can fail for a reason of its own (the server, the export parity)
fails before the served model is touched: the model directory changes only in the
last stage, and only for a version that passed the promotion gate. The stages after
connecting run inside one MLflow run; leaving it by an exception marks the run FAILED,
so a job that broke off never looks successful. `step` hears each stage as it starts.
"""

import io
import logging
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import mlflow.models
import mlflow.sklearn
import numpy as np
import pandas as pd
import scipy
import sklearn
import skops
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.ensemble import RandomForestClassifier

from irisops import registry, release
from irisops.bundle import METADATA_FILE, BundleMetadata, ModelFiles, sha256_of, write_bundle
from irisops.config import Settings
from irisops.profile import ReferenceProfile, reference_profile
from irisops.registry import Decision, PromotionMode
from irisops.tracking import configure_client, run_url, wait_for_server
from irisops.training import comparison, data, evaluate, export, fit, provenance

REFERENCE_ARTIFACT = "reference_profile.json"
SKOPS_TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]
# The trainer image's virtualenv has no pip, by design: MLflow would warn on every run that
# it cannot put pip's version in the logged conda.yaml (which then names pip unversioned).
logging.getLogger("mlflow.utils.environment").addFilter(
    lambda record: "Failed to resolve installed pip version" not in record.getMessage()
)
# What MLflow prints while it registers a version, past its logger.
REGISTRY_NOTICES = re.compile(
    r"Successfully registered model |Registered model .* already exists|Created version "
)
# Passed explicitly: inferring them costs MLflow a 7 s subprocess per run.
PIP_REQUIREMENTS = [
    f"mlflow=={mlflow.__version__}",
    f"scikit-learn=={sklearn.__version__}",
    f"numpy=={np.__version__}",
    f"scipy=={scipy.__version__}",
    f"pandas=={pd.__version__}",
    f"skops=={skops.__version__}",
]


@dataclass(frozen=True)
class TrainingResult:
    run_id: str
    run_url: str
    version: str
    metrics: dict[str, float]
    decision: Decision
    parity: export.ParityReport
    published: Path | None


def _log_dataset(dataset: data.Dataset, split: data.Split) -> None:
    for inputs, context in provenance.training_inputs(dataset, split):
        mlflow.log_input(inputs, context=context)


def _log_plots(model: RandomForestClassifier, dataset: data.Dataset, split: data.Split) -> None:
    importances = evaluate.feature_importance_figure(model, dataset)
    mlflow.log_figure(importances, "plots/feature_importances.png")
    per_class = evaluate.per_class_figure(model, split, dataset)
    mlflow.log_figure(per_class, "plots/per_class_metrics.png")
    # MLflow's default evaluator draws the confusion matrix and per-class table from
    # static predictions, so it needs no model reload; class names make it readable.
    frame = pd.DataFrame(
        {
            "target": dataset.class_names_of(split.y_test),
            "prediction": dataset.class_names_of(model.predict(split.X_test)),
        }
    )
    mlflow.models.evaluate(  # type: ignore[no-untyped-call]
        data=frame, targets="target", predictions="prediction", model_type="classifier"
    )


def bundle_metadata(
    model: RandomForestClassifier,
    files: ModelFiles,
    dataset: data.Dataset,
    metrics: dict[str, float],
    run_id: str,
    settings: Settings,
    reference: ReferenceProfile,
) -> BundleMetadata:
    # One row per class: the loader re-predicts them and refuses a model that disagrees.
    examples = dataset.X[[int(np.flatnonzero(dataset.y == c)[0]) for c in model.classes_]]
    probabilities = model.predict_proba(dataset.features(examples.astype(np.float32)))
    return BundleMetadata(
        registered_model=settings.registered_model,
        run_id=run_id,
        class_names=list(dataset.class_names),
        feature_names=list(dataset.feature_names),
        metrics=metrics,
        sha256=sha256_of(files.onnx),
        forest_sha256=None if files.forest is None else sha256_of(files.forest),
        created_at=datetime.now(UTC),
        example_input=examples.tolist(),
        example_probabilities=probabilities.tolist(),
        reference=reference,
    )


def _silent(_: str) -> None:
    pass


@dataclass(frozen=True)
class Job:
    """What the stages after connecting share: the server they log to and who hears them."""

    settings: Settings
    client: MlflowClient
    experiment_id: str
    step: Callable[[str], None]


def run_training(
    settings: Settings,
    params: fit.TrainParams,
    mode: PromotionMode,
    step: Callable[[str], None] = _silent,
) -> TrainingResult:
    """`step` hears each stage as it starts: the CLI shows them as progress."""
    dataset, split = prepare(params)
    code = checked_source(settings)
    job = connect(settings, step)
    # Leaving this block by an exception marks the run FAILED: it never looks successful.
    with mlflow.start_run(tags=provenance.input_tags(code, dataset)) as run:
        provenance.log_source(code)
        model, metrics = fit_and_log(job, params, dataset, split)
        files, parity = export_checked(job, model, dataset, params.seed)
        mlflow.set_tags(provenance.output_tags(model, files.onnx))
        reference = profile_training_data(dataset, split)
        metadata = bundle_metadata(
            model, files, dataset, metrics, run.info.run_id, settings, reference
        )
        version = register(job, model, split, files, metadata)
        decision = judge(job, mode, version, metrics, split)
        published = publish(job, version, files, metadata) if decision.promote else None
    return TrainingResult(
        run_id=run.info.run_id,
        run_url=run_url(settings.tracking_uri, job.experiment_id, run.info.run_id),
        version=version,
        metrics=metrics,
        decision=decision,
        parity=parity,
        published=published,
    )


def prepare(params: fit.TrainParams) -> tuple[data.Dataset, data.Split]:
    """The data and its split, first: options they rule out are refused before any connection."""
    dataset = data.load()
    split = data.split(dataset, params.test_size, params.seed)
    fit.check(params, split)
    return dataset, split


def checked_source(settings: Settings) -> provenance.Source:
    """The code that trains; refused before any connection if it must be a clean commit."""
    code = provenance.source()
    if settings.require_clean_tree:
        provenance.require_clean(code)
    return code


def connect(settings: Settings, step: Callable[[str], None]) -> Job:
    """Wait for a server that is still starting, rather than fail half-way through a run."""
    configure_client()
    step(f"connecting to the tracking server at {settings.tracking_uri}")
    wait_for_server(
        settings.tracking_uri,
        settings.tracking_retries,
        settings.tracking_backoff,
        on_retry=lambda attempt, delay: step(
            f"tracking server not answering; retry {attempt}/{settings.tracking_retries} "
            f"in {delay:.1f} s"
        ),
    )
    mlflow.set_tracking_uri(settings.tracking_uri)
    experiment = mlflow.set_experiment(settings.experiment)
    return Job(settings, MlflowClient(settings.tracking_uri), experiment.experiment_id, step)


def fit_and_log(
    job: Job, params: fit.TrainParams, dataset: data.Dataset, split: data.Split
) -> tuple[RandomForestClassifier, dict[str, float]]:
    """Logged before the export is tried, so a run that stops there still shows how it scored."""
    mlflow.log_params(params.as_params())
    _log_dataset(dataset, split)
    job.step(f"training a {params.n_estimators}-tree forest")
    model = fit.fit(split, params)
    job.step(f"evaluating on the test set and {params.cv_folds}-fold cross-validation")
    metrics = evaluate.test_metrics(model, split) | evaluate.cross_validation(split, params)
    mlflow.log_metrics(metrics)
    _log_plots(model, dataset, split)
    return model, metrics


def profile_training_data(dataset: data.Dataset, split: data.Split) -> ReferenceProfile:
    """What live inputs are compared with: it rides in the bundle and is logged to the run."""
    reference = training_reference(dataset, split)
    mlflow.log_dict(reference.model_dump(), REFERENCE_ARTIFACT)
    return reference


def training_reference(dataset: data.Dataset, split: data.Split) -> ReferenceProfile:
    features, classes = list(dataset.feature_names), list(dataset.class_names)
    return reference_profile(split.X_train.to_numpy(), split.y_train, features, classes)


def export_checked(
    job: Job, model: RandomForestClassifier, dataset: data.Dataset, seed: int
) -> tuple[ModelFiles, export.ParityReport]:
    """The API serves the exports, not the forest: one that predicts otherwise stops the job."""
    job.step(
        "exporting the node arrays and ONNX and checking both on "
        f"{export.RANDOM_POINTS:,} random points"
    )
    files = export.export_files(model, len(dataset.feature_names))
    parity = export.check_parity(model, files, dataset, seed)
    mlflow.log_metrics(
        {"parity_max_probability_diff": parity.max_probability_diff, "parity_rows": parity.rows}
        | {f"parity_{name}_max_probability_diff": d for name, d in parity.by_backend.items()}
    )
    return files, parity


@contextmanager
def _registry_notices_follow_the_logger() -> Iterator[None]:
    """MLflow's registry notices show only when its logger shows INFO lines (`--debug`).

    MLflow prints them with `eprint`, straight to stderr: no logger or level governs them,
    and its switch for that stream (`disable_logging`) is turned back on by its own lazy
    imports. So stderr is caught around the one call that prints them, and all else it
    caught is passed on.
    """
    if logging.getLogger("mlflow").isEnabledFor(logging.INFO):
        yield
        return
    caught = io.StringIO()
    try:
        with redirect_stderr(caught):
            yield
    finally:
        lines = caught.getvalue().splitlines(keepends=True)
        sys.stderr.write("".join(line for line in lines if not REGISTRY_NOTICES.match(line)))


def register(
    job: Job,
    model: RandomForestClassifier,
    split: data.Split,
    files: ModelFiles,
    metadata: BundleMetadata,
) -> str:
    """A new version, and `challenger`, whatever the gate decides next.

    The serving bundle rides inside the registered version, so the registry holds
    exactly what the API serves.
    """
    name = job.settings.registered_model
    job.step(f"logging the model and registering a version of {name}")
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = Path(tmp)
        write_bundle(bundle_dir, files, metadata)
        bundle_files = [str(bundle_dir / name) for name in [*files.names(), METADATA_FILE]]
        with _registry_notices_follow_the_logger():
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(split.X_test, model.predict_proba(split.X_test)),
                input_example=split.X_test.head(3),
                pip_requirements=PIP_REQUIREMENTS,
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
                extra_files=bundle_files,
                registered_model_name=name,
            )
    version = str(info.registered_model_version)
    job.client.set_registered_model_alias(name, registry.CHALLENGER, version)
    return version


def judge(
    job: Job, mode: PromotionMode, version: str, metrics: dict[str, float], split: data.Split
) -> Decision:
    """The gate, recorded on the version with what it was based on, promoted or not."""
    settings, client, metric = job.settings, job.client, job.settings.gate_metric
    job.step(f"comparing v{version} with the champion on {metric}")
    champion = comparison.rescored_champion(client, settings, split)
    decision = registry.decide(mode, metric, metrics[metric], champion)
    comparison.record(client, settings, version, champion, split)
    registry.record_decision(client, settings.registered_model, version, decision)
    return decision


def publish(job: Job, version: str, files: ModelFiles, metadata: BundleMetadata) -> Path:
    """The one stage that touches what the API serves: last, after everything that can fail."""
    job.step(f"publishing v{version} to {job.settings.served_model_dir}")
    registered = metadata.model_copy(update={"version": version})
    return release.promote(job.client, job.settings, version, files, registered)
