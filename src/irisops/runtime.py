"""Inference with onnxruntime: the only model code the API process runs.

Kept free of scikit-learn and pandas so that the serving process (and its image)
stays small and starts fast.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from irisops.bundle import BundleError, BundleMetadata

PROBABILITY_TOLERANCE = 1e-5


def _session(onnx_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # One thread, no spinning: a 4-feature row takes microseconds, and spinning
    # threads would steal the CPU from the event loop serving the next request.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


class OnnxClassifier:
    """Class probabilities from an ONNX export of a classifier (ZipMap disabled)."""

    def __init__(self, onnx_bytes: bytes) -> None:
        self._session = _session(onnx_bytes)
        self._input = self._session.get_inputs()[0].name
        outputs = [o.name for o in self._session.get_outputs()]
        self._probabilities = outputs[1]

    def predict_proba(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        result = self._session.run([self._probabilities], {self._input: rows})
        return np.asarray(result[0], dtype=np.float32)


@dataclass(frozen=True)
class LoadedModel:
    """A verified model and everything a response needs, resolved once at load time."""

    key: str
    metadata: BundleMetadata
    classifier: OnnxClassifier

    @property
    def version(self) -> str:
        return self.metadata.version or "unregistered"


def load_model(key: str, metadata: BundleMetadata, onnx_bytes: bytes) -> LoadedModel:
    """Build a session and prove it reproduces the probabilities recorded at training."""
    try:
        classifier = OnnxClassifier(onnx_bytes)
        rows = np.asarray(metadata.example_input, dtype=np.float32)
        got = classifier.predict_proba(rows)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise BundleError(f"model {key} cannot be loaded by onnxruntime: {exc}") from exc
    expected = np.asarray(metadata.example_probabilities, dtype=np.float32)
    if got.shape != expected.shape or not np.allclose(got, expected, atol=PROBABILITY_TOLERANCE):
        raise BundleError(f"model {key} does not reproduce its recorded example predictions")
    if got.shape[1] != len(metadata.class_names):
        raise BundleError(f"model {key} has {got.shape[1]} outputs for {metadata.class_names}")
    return LoadedModel(key=key, metadata=metadata, classifier=classifier)
