"""The training job: train, evaluate, export, log, register, gate, publish.

Everything that can fail for a reason of its own (the server, the export parity)
fails before the served model is touched: the model directory changes only in the
last step, and only for a version that passed the promotion gate.
"""

import logging
import subprocess
import tempfile
from collections.abc import Callable
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
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import infer_signature
from sklearn.ensemble import RandomForestClassifier

from irisops import __version__, registry, release
from irisops.bundle import METADATA_FILE, MODEL_FILE, BundleMetadata, sha256_of, write_bundle
from irisops.config import Settings
from irisops.registry import Decision, PromotionMode
from irisops.tracking import configure_client, run_url, wait_for_server
from irisops.training import comparison, data, evaluate, export, fit

SKOPS_TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]
# The trainer image's virtualenv has no pip, by design: MLflow would warn on every run that
# it cannot put pip's version in the logged conda.yaml (which then names pip unversioned).
logging.getLogger("mlflow.utils.environment").addFilter(
    lambda record: "Failed to resolve installed pip version" not in record.getMessage()
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


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _log_dataset(dataset: data.Dataset, split: data.Split) -> None:
    for name, X, y, context in (
        ("iris-train", split.X_train, split.y_train, "training"),
        ("iris-test", split.X_test, split.y_test, "testing"),
    ):
        frame = X.assign(**{data.TARGET: dataset.class_names_of(y)})
        mlflow.log_input(from_pandas(frame, targets=data.TARGET, name=name), context=context)


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


def _bundle_metadata(
    model: RandomForestClassifier,
    onnx_bytes: bytes,
    dataset: data.Dataset,
    metrics: dict[str, float],
    run_id: str,
    settings: Settings,
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
        sha256=sha256_of(onnx_bytes),
        created_at=datetime.now(UTC),
        example_input=examples.tolist(),
        example_probabilities=probabilities.tolist(),
    )


def _silent(_: str) -> None:
    pass


def run_training(
    settings: Settings,
    params: fit.TrainParams,
    mode: PromotionMode,
    step: Callable[[str], None] = _silent,
) -> TrainingResult:
    """`step` hears each stage as it starts: the CLI shows them as progress."""
    dataset = data.load()
    split = data.split(dataset, params.test_size, params.seed)
    fit.check(params, split)
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
    client = MlflowClient(settings.tracking_uri)
    tags = {"irisops.version": __version__}
    if commit := git_commit():
        tags["git_commit"] = commit

    # Leaving this block by an exception marks the run FAILED: it never looks successful.
    with mlflow.start_run(tags=tags) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params(params.as_params())
        _log_dataset(dataset, split)
        step(f"training a {params.n_estimators}-tree forest")
        model = fit.fit(split, params)
        step(f"evaluating on the test set and {params.cv_folds}-fold cross-validation")
        metrics = evaluate.test_metrics(model, split) | evaluate.cross_validation(split, params)
        mlflow.log_metrics(metrics)
        _log_plots(model, dataset, split)

        step(f"exporting to ONNX and checking it on {export.RANDOM_POINTS:,} random points")
        onnx_bytes = export.export(model, len(dataset.feature_names))
        parity = export.check_parity(model, onnx_bytes, dataset, params.seed)
        mlflow.log_metrics(
            {"parity_max_probability_diff": parity.max_probability_diff, "parity_rows": parity.rows}
        )
        metadata = _bundle_metadata(model, onnx_bytes, dataset, metrics, run.info.run_id, settings)
        bundle_dir = Path(tmp)
        write_bundle(bundle_dir, onnx_bytes, metadata)

        step(f"logging the model and registering a version of {settings.registered_model}")
        # The serving bundle rides inside the registered version, so the registry holds
        # exactly what the API serves.
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(split.X_test, model.predict_proba(split.X_test)),
            input_example=split.X_test.head(3),
            pip_requirements=PIP_REQUIREMENTS,
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            extra_files=[str(bundle_dir / MODEL_FILE), str(bundle_dir / METADATA_FILE)],
            registered_model_name=settings.registered_model,
        )
        version = str(info.registered_model_version)
        client.set_registered_model_alias(settings.registered_model, registry.CHALLENGER, version)

        step(f"comparing v{version} with the champion on {settings.gate_metric}")
        metric = settings.gate_metric
        champion = comparison.rescored_champion(client, settings, split)
        decision = registry.decide(mode, metric, metrics[metric], champion)
        comparison.record(client, settings, version, champion, split)
        registry.record_decision(client, settings.registered_model, version, decision)
        published = None
        if decision.promote:
            step(f"publishing v{version} to {settings.served_model_dir}")
            registered = metadata.model_copy(update={"version": version})
            published = release.promote(client, settings, version, onnx_bytes, registered)
    return TrainingResult(
        run_id=run.info.run_id,
        run_url=run_url(settings.tracking_uri, experiment.experiment_id, run.info.run_id),
        version=version,
        metrics=metrics,
        decision=decision,
        parity=parity,
        published=published,
    )
