"""compose.yaml's `monitoring` profile: Prometheus, scraping the API, checked without an engine.

What Prometheus scrapes is proven elsewhere (tests/serving/test_metrics.py parses the
API's /metrics as Prometheus would); here, that the profile points it there.
"""

from pathlib import Path
from typing import Any

import yaml

from irisops.config import Settings
from irisops.serving.app import create_app
from tests.deploy.compose import COMPOSE_FILE, ENV_EXAMPLE, REPO, dotenv_for, load

CONFIG_TARGET = "/etc/prometheus/prometheus.yml"


def prometheus_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["prometheus"]
    return spec


def mounted_config() -> dict[str, Any]:
    """The repository file compose.yaml mounts as Prometheus' configuration."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    (mount,) = prometheus_spec()["configs"]
    assert mount["target"] == CONFIG_TARGET
    source = REPO / document["configs"][mount["source"]]["file"]
    assert source.is_file(), source
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    return config


def test_prometheus_runs_only_with_the_monitoring_profile(tmp_path: Path) -> None:
    assert "prometheus" not in load(env_file=tmp_path / "absent.env").start_order()
    env_file = tmp_path / ".env"
    env_file.write_text(dotenv_for(ENV_EXAMPLE.read_text(), "monitoring"))
    project = load(env_file=env_file)
    assert project.start_order() == ["mlflow", "api", "trainer", "prometheus"]
    prometheus = project.services["prometheus"]
    assert [(port.target, port.published) for port in prometheus.ports] == [(9090, 9090)]
    assert prometheus.healthcheck == ("wget", "-qO-", "http://127.0.0.1:9090/-/ready")
    assert [(m.volume, m.target) for m in prometheus.volumes] == [
        ("prometheus_data", "/prometheus")
    ]


def test_prometheus_scrapes_the_apis_metrics_over_the_compose_network() -> None:
    (job,) = [j for j in mounted_config()["scrape_configs"] if j["job_name"] == "irisops-api"]
    (targets,) = job["static_configs"]
    host, port = targets["targets"][0].split(":")
    api = load(env_file=Path("/dev/null")).services[host]
    assert int(port) == 8000 and api.environment["IRISOPS_API_PORT"] == port
    assert job["metrics_path"] in create_app(Settings()).openapi()["paths"]
