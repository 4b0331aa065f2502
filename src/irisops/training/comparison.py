"""The gate compares like with like: the champion is scored again on the challenger's test split.

Each version's recorded test score comes from its own split; a challenger trained with
another seed or test size would otherwise be judged on easier (or harder) rows than the
champion was. So the champion's served model (its bundle, from the registry) is run on
the challenger's test rows, and the gate compares those two scores, naming the rows' digest.
"""

import hashlib
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from mlflow import MlflowClient

from irisops import registry
from irisops.config import Settings
from irisops.registry import Champion, Decision, PromotionMode, VersionRecord
from irisops.runtime import classifier
from irisops.training import data, evaluate

TAG_CHAMPION_SCORE = "irisops.gate_champion_score"
TAG_DATA = "irisops.gate_test_split_sha256"


def split_digest(split: data.Split) -> str:
    rows = np.ascontiguousarray(split.X_test.to_numpy(np.float64))
    return hashlib.sha256(rows.tobytes() + np.asarray(split.y_test).tobytes()).hexdigest()


def rescored_champion(
    client: MlflowClient, settings: Settings, split: data.Split
) -> Champion | None:
    """The champion, with its score on `split`'s test rows instead of its own."""
    current = registry.champion(client, settings.registered_model, settings.gate_metric)
    return None if current is None else rescore(client, settings, current, split)


def rescore(
    client: MlflowClient, settings: Settings, champion: Champion, split: data.Split
) -> Champion:
    with tempfile.TemporaryDirectory() as tmp:
        _, files = registry.fetch_bundle(
            client, settings.registered_model, champion.version, Path(tmp)
        )
    rows = split.X_test.to_numpy(np.float32)
    probabilities = classifier(files, settings.backend).predict_proba(rows)
    score = evaluate.scores(split.y_test, probabilities)[settings.gate_metric]
    basis = f"on the same test split (sha256 {split_digest(split)[:12]})"
    return replace(champion, score=score, basis=basis)


def record(
    client: MlflowClient,
    settings: Settings,
    version: str,
    champion: Champion | None,
    split: data.Split,
) -> None:
    """Both scores' data, on the new version: what the decision was based on."""
    name = settings.registered_model
    client.set_model_version_tag(name, version, TAG_DATA, split_digest(split))
    if champion is not None and champion.score is not None:
        client.set_model_version_tag(name, version, TAG_CHAMPION_SCORE, f"{champion.score:.6f}")


def gate(client: MlflowClient, settings: Settings, candidate: VersionRecord) -> Decision:
    """The gate's decision for an already registered version, on that version's test split."""
    name, metric = settings.registered_model, settings.gate_metric
    current = registry.champion(client, name, metric)
    if current is not None and current.version == candidate.version:
        return Decision(False, f"v{candidate.version} is the champion already")
    score = candidate.metrics.get(metric)
    if score is None or candidate.run_id is None:
        return Decision(False, f"v{candidate.version} has no {metric}")
    params = candidate.params
    split = data.split(data.load(), float(params["test_size"]), int(params["seed"]))
    champion = None if current is None else rescore(client, settings, current, split)
    return registry.decide(PromotionMode.GATE, metric, score, champion)
