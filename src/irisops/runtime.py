"""Inference: the only model code the API process runs.

Two backends answer the same questions (`Classifier`): the forest's own compiled
walker over its node arrays (`forest`, the default: docs/performance.md says why) and
onnxruntime over the ONNX export (`onnx`: `IRISOPS_BACKEND=onnx`, and bundles made
before the forest file existed). Kept free of scikit-learn and pandas so that the
serving process (and its image) stays small and starts fast.
"""

import itertools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from irisops import forest
from irisops.bundle import FOREST_FILE, BundleError, BundleMetadata, ModelFiles
from irisops.config import Backend

PROBABILITY_TOLERANCE = 1e-5
# From this many rows a prediction is split into one chunk per CPU (chunks of 500+
# rows take milliseconds, so the thread hand-off is noise); below it, one call.
PARALLEL_ROWS = 1_000


def usable_cpus() -> int:
    """CPUs this process may run on: a container's cpuset, not the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


CHUNKS = usable_cpus()
# Shared by every loaded model; its threads start on first use and only run chunks.
_CHUNK_POOL = ThreadPoolExecutor(max_workers=CHUNKS, thread_name_prefix="predict")


def _session(onnx_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # One thread, no spinning: a 4-feature row takes microseconds, and spinning
    # threads would steal the CPU from the event loop serving the next request.
    # (With more intra-op threads onnxruntime splits even one row's 100 trees across
    # them: slower for a row, and the summation order, so the last bits, would change.)
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


class Classifier(Protocol):
    """What serving asks of a model: the class probabilities of one row, or of many."""

    backend: str

    def predict_one(self, features: Sequence[float]) -> npt.NDArray[np.float32]: ...

    def predict_proba(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...

    def predict_proba_serial(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """As `predict_proba`, on the calling thread alone, however many rows."""
        ...


def chunk_bounds(n_rows: int) -> list[tuple[int, int]]:
    """One contiguous slice of rows per CPU, as even as can be."""
    edges = np.linspace(0, n_rows, CHUNKS + 1).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


class ForestClassifier:
    """Class probabilities from the forest's node arrays, walked by compiled code.

    The same arithmetic as scikit-learn's predict_proba (float32 features widened to
    double, float64 thresholds, leaf probabilities summed in double in tree order), so
    it agrees with scikit-learn to the last float32 bit, which onnxruntime (summing in
    float32) does not quite.
    """

    backend = "forest"

    def __init__(self, forest_bytes: bytes) -> None:
        self._forest = forest.load(forest_bytes)
        self.n_features = self._forest.n_features
        self.n_classes = self._forest.n_classes

    def predict_one(self, features: Sequence[float]) -> npt.NDArray[np.float32]:
        """The class probabilities of one row, without building an array for its features."""
        out = np.empty(self.n_classes, dtype=np.float32)
        self._forest.predict_one(features, out)
        return out

    def predict_proba(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if len(rows) < PARALLEL_ROWS or CHUNKS == 1:
            return self.predict_proba_serial(rows)
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        out = np.empty((len(rows), self.n_classes), dtype=np.float32)

        # Large batches: one chunk per CPU at once (the walker releases the GIL), each
        # written in place into its rows of `out`. Every row is computed by the same
        # sequential code, so the answers are bit-identical to one call.
        def run(bounds: tuple[int, int]) -> None:
            start, stop = bounds
            self._forest.predict(rows[start:stop], out[start:stop])

        list(_CHUNK_POOL.map(run, chunk_bounds(len(rows))))
        return out

    def predict_proba_serial(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        out = np.empty((len(rows), self.n_classes), dtype=np.float32)
        self._forest.predict(rows, out)
        return out


class OnnxClassifier:
    """Class probabilities from an ONNX export of a classifier (ZipMap disabled)."""

    backend = "onnx"

    def __init__(self, onnx_bytes: bytes) -> None:
        self._session = _session(onnx_bytes)
        features = self._session.get_inputs()[0]
        probabilities = self._session.get_outputs()[1]
        self._input, self._probabilities = features.name, probabilities.name
        # Single rows go through buffers bound to the session once (an IOBinding): no
        # tensors to allocate and convert on each call. That saves most when the caches
        # are cold, as they are in the server between two requests (docs/benchmark.md).
        self._row = np.zeros((1, features.shape[1]), dtype=np.float32)
        self._row_probabilities = np.zeros((1, probabilities.shape[1]), dtype=np.float32)
        self._row_binding = binding = self._session.io_binding()
        row, out = self._row, self._row_probabilities
        binding.bind_input(self._input, "cpu", 0, np.float32, row.shape, row.ctypes.data)
        binding.bind_output(self._probabilities, "cpu", 0, np.float32, out.shape, out.ctypes.data)
        self._row_lock = threading.Lock()  # one call at a time owns the bound buffers

    def predict_one(self, features: Sequence[float]) -> npt.NDArray[np.float32]:
        """The class probabilities of one row (a copy: the bound buffers are reused)."""
        with self._row_lock:
            self._row[0] = features
            self._session.run_with_iobinding(self._row_binding)
            probabilities: npt.NDArray[np.float32] = self._row_probabilities[0].copy()
        return probabilities

    def predict_proba(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if len(rows) < PARALLEL_ROWS or CHUNKS == 1:
            return self.predict_proba_serial(rows)
        # Large batches: the single-threaded session on one chunk per CPU, at once
        # (onnxruntime releases the GIL while it runs). Each row is still computed by
        # the same sequential code, so the answers are bit-identical to one call.
        chunks = np.array_split(rows, CHUNKS)
        return np.concatenate(list(_CHUNK_POOL.map(self.predict_proba_serial, chunks)))

    def predict_proba_serial(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        result = self._session.run([self._probabilities], {self._input: rows})
        return np.asarray(result[0], dtype=np.float32)


def classifier(files: ModelFiles, backend: Backend = "forest") -> Classifier:
    """The backend asked for: `forest` when the bundle has its file, else onnxruntime."""
    if backend == "forest" and files.forest is not None:
        return ForestClassifier(files.forest)
    return OnnxClassifier(files.onnx)


@dataclass(frozen=True)
class LoadedModel:
    """A verified model and everything a response needs, resolved once at load time."""

    key: str
    metadata: BundleMetadata
    classifier: Classifier

    @property
    def version(self) -> str:
        return self.metadata.version or "unregistered"

    @property
    def backend(self) -> str:
        return self.classifier.backend


def load_model(
    key: str, metadata: BundleMetadata, files: ModelFiles, backend: Backend = "forest"
) -> LoadedModel:
    """Build the backend and prove it reproduces the probabilities recorded at training.

    `backend="forest"` falls back to onnxruntime for a bundle without a forest file (one
    made before it existed): such a bundle is served as it always was.
    """
    try:
        model = classifier(files, backend)
        rows = np.asarray(metadata.example_input, dtype=np.float32)
        got = model.predict_proba(rows)
        one_by_one = np.stack([model.predict_one(row) for row in metadata.example_input])
    except BundleError as exc:  # the forest file's own checks name the flaw
        raise BundleError(f"model {key} cannot be loaded: {exc}") from exc
    except Exception as exc:  # onnxruntime raises its own untyped errors
        engine = FOREST_FILE if files.forest is not None and backend == "forest" else "onnxruntime"
        raise BundleError(f"model {key} cannot be loaded by {engine}: {exc}") from exc
    expected = np.asarray(metadata.example_probabilities, dtype=np.float32)
    if got.shape != expected.shape or not np.allclose(got, expected, atol=PROBABILITY_TOLERANCE):
        raise BundleError(f"model {key} does not reproduce its recorded example predictions")
    if not np.array_equal(one_by_one, got):
        raise BundleError(f"model {key} predicts single rows unlike batches")
    if got.shape[1] != len(metadata.class_names):
        raise BundleError(f"model {key} has {got.shape[1]} outputs for {metadata.class_names}")
    return LoadedModel(key=key, metadata=metadata, classifier=model)
