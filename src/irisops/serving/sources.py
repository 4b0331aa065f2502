"""Where the API gets its model: the published model directory, or the registry.

A source answers two questions: "which model is current?" (`latest`, cheap, polled)
and "give me that model, verified" (`load`, expensive, only when the answer changes).
"""

import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from irisops.bundle import BundleError, current_target, read_bundle
from irisops.config import Backend
from irisops.runtime import LoadedModel, load_model

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ModelSource(Protocol):
    description: str

    def latest(self) -> str | None:
        """A key naming the model that should be served now, or None if there is none yet."""

    def load(self, key: str) -> LoadedModel: ...


class DirectorySource:
    """The `current` pointer of a model directory, as published by the trainer."""

    def __init__(self, model_dir: Path, backend: Backend = "forest") -> None:
        self.model_dir = model_dir
        self.backend: Backend = backend
        self.description = f"directory {model_dir}"

    def latest(self) -> str | None:
        return current_target(self.model_dir)

    def load(self, key: str) -> LoadedModel:
        metadata, files = read_bundle(self.model_dir / key)
        return load_model(key, metadata, files, self.backend)


class RegistrySource:
    """A `models:/name@alias` or `models:/name/version` URI, resolved through the registry.

    MLflow is imported only here, so serving from the model directory never loads it.
    """

    def __init__(
        self,
        model_uri: str,
        tracking_uri: str,
        cache_dir: Path | None = None,
        backend: Backend = "forest",
    ) -> None:
        match = MODEL_URI.match(model_uri)
        if match is None:
            raise ValueError(
                f"IRISOPS_MODEL_URI={model_uri!r} is not models:/<name>@<alias> "
                "or models:/<name>/<version>"
            )
        self.name = match["name"]
        self.alias: str | None = match["alias"]
        self.version: str | None = match["version"]
        self.description = f"registry {model_uri} at {tracking_uri}"
        self.cache_dir = cache_dir or Path(tempfile.gettempdir())
        self.backend: Backend = backend
        self._tracking_uri = tracking_uri
        self._client: MlflowClient | None = None

    @property
    def client(self) -> "MlflowClient":
        if self._client is None:
            from mlflow import MlflowClient

            from irisops.tracking import configure_client

            configure_client()
            self._client = MlflowClient(self._tracking_uri)
        return self._client

    def latest(self) -> str | None:
        if self.alias is None:
            return self.version
        from irisops.registry import alias_version

        version = alias_version(self.client, self.name, self.alias)
        return None if version is None else str(version.version)

    def load(self, key: str) -> LoadedModel:
        from irisops.registry import fetch_bundle

        destination = Path(tempfile.mkdtemp(prefix="irisops-", dir=self.cache_dir))
        try:
            metadata, files = fetch_bundle(self.client, self.name, key, destination)
        except BundleError:
            raise
        except Exception as exc:  # MLflow's client raises many kinds; the reason is what counts
            raise BundleError(f"cannot fetch {self.name} v{key} from the registry: {exc}") from exc
        finally:
            shutil.rmtree(destination, ignore_errors=True)
        return load_model(key, metadata, files, self.backend)
