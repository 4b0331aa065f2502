"""irisops: train an Iris RandomForest, track it in MLflow, serve the champion fast."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("irisops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
