"""All configuration, read once from the environment.

Every command reads the same `Settings`, so the local stack, the tests and the
containers are configured the same way: with environment variables only.
"""

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REGISTERED_MODEL = "iris-classifier"
# What evaluates the model: the forest's own compiled walker, or onnxruntime.
Backend = Literal["forest", "onnx"]
EXPERIMENT = "iris"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IRISOPS_", extra="ignore", frozen=True)

    home: Path = Field(Path(".irisops"), description="State directory of the local stack.")
    mlflow_tracking_uri: str | None = Field(
        None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI"),
        description="Tracking server; default http://127.0.0.1:<tracking port>.",
    )
    model_dir: Path | None = Field(None, description="Served-model directory.")
    model_uri: str | None = Field(
        None, description="Serve from the registry instead, e.g. models:/iris-classifier@champion."
    )

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    tracking_host: str = "127.0.0.1"
    tracking_port: int = Field(5000, ge=1, le=65535)
    backend_store_uri: str | None = Field(
        None, description="MLflow backend store; default SQLite under mlflow_data."
    )
    artifacts_destination: str | None = Field(
        None, description="Where the tracking server stores artifacts; default mlflow_artifacts."
    )
    allowed_hosts: str | None = Field(
        None, description="Host headers the tracking server accepts (replaces MLflow's defaults)."
    )
    tracking_auth: bool = Field(
        False,
        description="Run MLflow's basic-auth app; clients send MLFLOW_TRACKING_USERNAME/PASSWORD.",
    )
    auth_admin_username: str = "admin"

    experiment: str = EXPERIMENT
    registered_model: str = REGISTERED_MODEL
    gate_metric: str = "test_accuracy"
    require_clean_tree: bool = Field(
        False,
        description="Refuse to train from uncommitted changes or outside a git checkout (CI).",
    )
    tracking_retries: int = Field(5, ge=0)
    tracking_backoff: float = Field(1.0, ge=0)

    backend: Backend = Field(
        "forest",
        description="forest: the compiled walker over forest.npz (onnx for bundles without "
        "one); onnx: always onnxruntime over model.onnx.",
    )
    poll_interval: float = Field(2.0, gt=0)
    max_batch_rows: int = Field(10_000, ge=1)
    header_timeout: float = Field(
        10.0, gt=0, description="Seconds a request has to send its headers (408 after)."
    )
    body_timeout: float = Field(
        10.0, gt=0, description="Seconds a request has to send its body (408 after)."
    )
    keep_alive_timeout: int = Field(
        5, ge=1, description="Idle keep-alive connections are closed after it (seconds)."
    )
    max_connections: int = Field(
        2048, ge=1, description="Open connections past which requests get 503 (probes pass)."
    )
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Larger request bodies get 413 before parsing."
    )
    api_key: SecretStr | None = Field(
        None, description="When set, every route but probes, /metrics and the docs needs it."
    )
    cors_origins: str = Field(
        "", description="Comma-separated origins allowed by CORS; none by default."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="API logs: text for a terminal, json (one object a line) to ship."
    )
    telemetry: bool = Field(
        True,
        description="Request metrics, X-Request-ID and the access log; off when a proxy does them.",
    )
    access_log: bool | None = Field(
        None, description="One log line per request; default: on with json logs, off with text."
    )

    inference_log: bool = Field(
        True, description="Record every answered prediction in the inference log."
    )
    inference_log_dir: Path | None = Field(
        None, description="Inference log directory; default inference_log under the home."
    )
    inference_log_queue: int = Field(
        10_000, ge=1, description="Records waiting to be written; beyond it they are dropped."
    )
    inference_log_max_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Rotate at.")
    inference_log_max_age: float = Field(3600.0, gt=0, description="Rotate after (seconds).")
    inference_log_keep: int = Field(48, ge=1, description="Log files kept; older ones deleted.")
    drift_window: int = Field(1000, ge=10, description="Live rows compared with the reference.")
    drift_psi_threshold: float = Field(0.2, gt=0, description="PSI above it is drift.")
    drift_ks_threshold: float = Field(0.2, gt=0, description="KS above it is drift.")
    mark_out_of_range: bool = Field(
        False,
        description="Answers list features outside the training range (or ?out_of_range=true).",
    )
    shadow: bool = Field(False, description="Also score live requests with the challenger.")
    shadow_alias: str = "challenger"
    shadow_fraction: float = Field(1.0, gt=0, le=1, description="Share of requests shadowed.")
    feedback_window: int = Field(1000, ge=1, description="Labelled rows live accuracy is over.")
    feedback_capacity: int = Field(
        100_000, ge=1, description="Recent answers that feedback can still be joined to."
    )

    @property
    def access_log_enabled(self) -> bool:
        return self.access_log if self.access_log is not None else self.log_format == "json"

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @cached_property
    def state_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @cached_property
    def served_model_dir(self) -> Path:
        return (self.model_dir or self.state_dir / "model_data").expanduser().resolve()

    @cached_property
    def inference_log_path(self) -> Path:
        return (self.inference_log_dir or self.state_dir / "inference_log").expanduser().resolve()

    @cached_property
    def mlflow_data_dir(self) -> Path:
        return self.state_dir / "mlflow_data"

    @cached_property
    def mlflow_artifacts_dir(self) -> Path:
        return self.state_dir / "mlflow_artifacts"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"http://127.0.0.1:{self.tracking_port}"

    @property
    def backend_uri(self) -> str:
        # Four slashes: SQLAlchemy's spelling of an absolute SQLite path.
        return self.backend_store_uri or f"sqlite:///{self.mlflow_data_dir / 'mlflow.db'}"

    @property
    def artifacts_root(self) -> str:
        return self.artifacts_destination or str(self.mlflow_artifacts_dir)
