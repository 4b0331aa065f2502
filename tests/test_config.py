"""Configuration comes from the environment only, with defaults that make the local stack work."""

from pathlib import Path

import pytest

from irisops.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "IRISOPS_HOME", "IRISOPS_MODEL_DIR", "IRISOPS_MODEL_URI"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_put_all_state_under_dot_irisops(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.state_dir == tmp_path / ".irisops"
    assert settings.served_model_dir == tmp_path / ".irisops" / "model_data"
    assert settings.mlflow_data_dir == tmp_path / ".irisops" / "mlflow_data"
    assert settings.mlflow_artifacts_dir == tmp_path / ".irisops" / "mlflow_artifacts"
    assert settings.api_port == 8000
    assert settings.tracking_port == 5000
    assert settings.tracking_uri == "http://127.0.0.1:5000"
    assert settings.max_batch_rows == 10_000


def test_sqlite_backend_is_an_absolute_path(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.backend_uri == f"sqlite:///{tmp_path}/mlflow_data/mlflow.db"
    assert settings.backend_uri.startswith("sqlite:////")


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("IRISOPS_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("IRISOPS_MODEL_URI", "models:/iris-classifier@champion")
    monkeypatch.setenv("IRISOPS_API_PORT", "9000")
    settings = Settings()
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.served_model_dir == tmp_path / "models"
    assert settings.model_uri == "models:/iris-classifier@champion"
    assert settings.api_port == 9000


def test_tracking_uri_follows_the_tracking_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRISOPS_TRACKING_PORT", "5055")
    assert Settings().tracking_uri == "http://127.0.0.1:5055"


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRISOPS_API_PORT", "eighty")
    with pytest.raises(ValueError, match="api_port"):
        Settings()
