"""Loading a model: the backend asked for, proven against its recorded examples, or refused."""

from pathlib import Path

import numpy as np
import pytest

from irisops import bundle, forest
from irisops.bundle import BundleError, BundleMetadata, ModelFiles
from irisops.config import Settings
from irisops.runtime import ForestClassifier, OnnxClassifier, load_model
from irisops.serving.sources import DirectorySource
from irisops.training import data, export, fit
from irisops.training.pipeline import bundle_metadata, training_reference


@pytest.fixture(scope="module")
def trained() -> tuple[ModelFiles, BundleMetadata]:
    """A small forest's files and metadata, exactly as the trainer writes them."""
    dataset = data.load()
    split = data.split(dataset, 0.2, 0)
    model = fit.fit(split, fit.TrainParams(n_estimators=10))
    files = export.export_files(model, len(dataset.feature_names))
    reference = training_reference(dataset, split)
    metadata = bundle_metadata(model, files, dataset, {}, "in-process", Settings(), reference)
    return files, metadata.model_copy(update={"version": "1"})


def test_the_forest_backend_is_the_default(trained: tuple[ModelFiles, BundleMetadata]) -> None:
    files, metadata = trained
    model = load_model("key", metadata, files)
    assert model.backend == "forest"
    assert isinstance(model.classifier, ForestClassifier)


def test_the_backend_setting_switches_to_onnxruntime(
    trained: tuple[ModelFiles, BundleMetadata], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, metadata = trained
    bundle.activate(tmp_path, bundle.stage(tmp_path, files, metadata))
    monkeypatch.setenv("IRISOPS_BACKEND", "onnx")
    settings = Settings()
    assert settings.backend == "onnx"
    source = DirectorySource(tmp_path, settings.backend)
    model = source.load(str(source.latest()))
    assert model.backend == "onnx"
    assert isinstance(model.classifier, OnnxClassifier)


def test_an_unknown_backend_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRISOPS_BACKEND", "tl2cgen")
    with pytest.raises(ValueError, match="forest"):
        Settings()


def test_a_bundle_from_before_the_forest_file_is_served_by_onnxruntime(
    trained: tuple[ModelFiles, BundleMetadata], tmp_path: Path
) -> None:
    files, metadata = trained
    older = metadata.model_copy(update={"forest_sha256": None})
    bundle.activate(tmp_path, bundle.stage(tmp_path, ModelFiles(files.onnx), older))
    source = DirectorySource(tmp_path)  # backend "forest", the default
    model = source.load(str(source.latest()))
    assert model.backend == "onnx"
    rows = np.asarray(metadata.example_input, dtype=np.float32)
    assert np.allclose(model.classifier.predict_proba(rows), metadata.example_probabilities)


def test_both_backends_reproduce_the_recorded_examples(
    trained: tuple[ModelFiles, BundleMetadata],
) -> None:
    files, metadata = trained
    rows = np.asarray(metadata.example_input, dtype=np.float32)
    forest_answers = load_model("k", metadata, files, "forest").classifier.predict_proba(rows)
    onnx_answers = load_model("k", metadata, files, "onnx").classifier.predict_proba(rows)
    assert np.allclose(forest_answers, onnx_answers, atol=1e-5)
    # The recorded examples are scikit-learn's float64 answers: the forest gives them exactly.
    recorded = np.asarray(metadata.example_probabilities, dtype=np.float32)
    assert np.array_equal(forest_answers, recorded)


def test_a_corrupt_forest_file_is_refused_at_load(
    trained: tuple[ModelFiles, BundleMetadata],
) -> None:
    files, metadata = trained
    assert files.forest is not None
    arrays = forest.read_arrays(files.forest)
    arrays["feature"] = np.full_like(arrays["feature"], 9)
    broken = ModelFiles(files.onnx, forest.encode(arrays))
    with pytest.raises(BundleError, match=r"model k cannot be loaded: .* tests feature 9 of 4"):
        load_model("k", metadata, broken)


def test_a_forest_that_disagrees_with_its_examples_is_refused(
    trained: tuple[ModelFiles, BundleMetadata],
) -> None:
    files, metadata = trained
    flipped = [list(reversed(row)) for row in metadata.example_probabilities]
    wrong = metadata.model_copy(update={"example_probabilities": flipped})
    with pytest.raises(BundleError, match="does not reproduce"):
        load_model("k", wrong, files)
